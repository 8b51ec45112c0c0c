#define _GNU_SOURCE /* memmem */
#include "jobs/diff.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reducer/kv.h"
#include "storage/table.h"

/* The value's top-1 label: the JSON string after "label": (escapes kept as written, which is
 * enough to compare and count). Returns false when the value has none. The encoder writes the
 * label first, so the prefix test settles nearly every value; memmem covers the others (the
 * diff reads every pair of two versions, and a memcmp at every offset was a tenth of it). */
static bool value_label(const char *v, size_t n, const char **label, size_t *len)
{
    static const char key[] = "\"label\":\"";
    static const char first[] = "{\"label\":\"";
    const char *at = NULL;
    if (n >= sizeof first - 1 && memcmp(v, first, sizeof first - 1) == 0) at = v + 1;
    else at = memmem(v, n, key, sizeof key - 1);
    if (at == NULL) return false;
    size_t start = (size_t)(at - v) + sizeof key - 1, j = start;
    while (j < n && v[j] != '"') j += v[j] == '\\' ? 2 : 1;
    if (j > n) return false;
    *label = v + start;
    *len = j - start;
    return true;
}

/* The index of class label in d, added if new (the long tail past DIFF_MAX_CLASSES folds
 * into the last slot, "(other)"); -1 when out of memory. */
static int64_t class_index(table_diff *d, const char *label, size_t len)
{
    run_report_diff *r = &d->report;
    int64_t i = 0;
    for (; i < r->nclasses; i++)
        if (d->label_lens[i] == len && memcmp(d->classes[i].label, label, len) == 0) return i;
    if (r->nclasses == DIFF_MAX_CLASSES) {
        i = r->nclasses - 1;
        if (strcmp(d->classes[i].label, "(other)") != 0) {
            char *other = strdup("(other)");
            if (other == NULL) return -1;
            free((char *)d->classes[i].label);
            d->classes[i].label = other;
            d->label_lens[i] = strlen(other);
        }
        return i;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) return -1;
    if (len) memcpy(copy, label, len);
    copy[len] = '\0';
    d->classes[i] = (run_report_class){.label = copy};
    d->label_lens[i] = len;
    r->nclasses++;
    return i;
}

/* Counts a key's class on one side (0 before, 1 after). */
static pc_status count_class(table_diff *d, const char *label, size_t len, int side, char *err, size_t errlen)
{
    int64_t i = class_index(d, label, len);
    if (i < 0) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (side == 0) d->classes[i].before++;
    else d->classes[i].after++;
    return PC_OK;
}

/* One side's current pair (owned copies, since a scan's pointers die at the next call). */
typedef struct side {
    table_scan *scan;
    char *key, *val;
    size_t klen, vlen, kcap, vcap;
    bool eof;
} side;

static pc_status side_next(side *s, char *err, size_t errlen)
{
    const char *k, *v;
    size_t kl, vl;
    pc_status st = table_scan_next(s->scan, &k, &kl, &v, &vl, &s->eof, err, errlen);
    if (st != PC_OK || s->eof) return st;
    if (kl + 1 > s->kcap) {
        char *p = realloc(s->key, kl + 1);
        if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        s->key = p;
        s->kcap = kl + 1;
    }
    if (vl + 1 > s->vcap) {
        char *p = realloc(s->val, vl + 1);
        if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        s->val = p;
        s->vcap = vl + 1;
    }
    if (kl) memcpy(s->key, k, kl);
    if (vl) memcpy(s->val, v, vl);
    s->klen = kl;
    s->vlen = vl;
    return PC_OK;
}

static pc_status count_side(table_diff *d, const side *s, int which, char *err, size_t errlen)
{
    const char *label;
    size_t len;
    return value_label(s->val, s->vlen, &label, &len) ? count_class(d, label, len, which, err, errlen) : PC_OK;
}

static bool top1_changed(const side *a, const side *b)
{
    const char *la, *lb;
    size_t na, nb;
    bool ha = value_label(a->val, a->vlen, &la, &na), hb = value_label(b->val, b->vlen, &lb, &nb);
    if (ha && hb) return na != nb || memcmp(la, lb, na) != 0;
    return a->vlen != b->vlen || memcmp(a->val, b->val, a->vlen) != 0;
}

/* Merge-joins the two sorted scans. */
static pc_status join(table_diff *d, side *old, side *new, char *err, size_t errlen)
{
    run_report_diff *r = &d->report;
    pc_status s = side_next(old, err, errlen);
    if (s == PC_OK) s = side_next(new, err, errlen);
    while (s == PC_OK && !(old->eof && new->eof)) {
        int c = old->eof ? 1 : new->eof ? -1 : kv_key_compare(old->key, old->klen, new->key, new->klen);
        if (c <= 0) {
            r->keys_before++;
            s = count_side(d, old, 0, err, errlen);
        }
        if (s == PC_OK && c >= 0) {
            r->keys_after++;
            s = count_side(d, new, 1, err, errlen);
        }
        if (c < 0) r->keys_removed++;
        else if (c > 0) r->keys_added++;
        else {
            r->keys_compared++;
            r->top1_changed += top1_changed(old, new);
        }
        if (s == PC_OK && c <= 0) s = side_next(old, err, errlen);
        if (s == PC_OK && c >= 0) s = side_next(new, err, errlen);
    }
    return s;
}

pc_status diff_init(table_diff *out, const char *previous, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->previous, sizeof out->previous, "%s", previous);
    out->report.previous_version = out->previous;
    out->classes = calloc(DIFF_MAX_CLASSES, sizeof(run_report_class));
    out->label_lens = calloc(DIFF_MAX_CLASSES, sizeof(size_t));
    out->report.classes = out->classes;
    if (out->classes != NULL && out->label_lens != NULL) return PC_OK;
    diff_free(out);
    return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
}

/* Opens one side's scan, restricted to [lo, hi) when a bound is given. */
static pc_status open_side(side *sd, const char *table_dir, const char *version, const char *dir, const diff_range *range,
                           char *err, size_t errlen)
{
    pc_status s = version != NULL ? table_scan_open(table_dir, version, &sd->scan, err, errlen)
                                  : table_scan_open_dir(dir, &sd->scan, err, errlen);
    if (s == PC_OK && range != NULL)
        s = table_scan_set_range(sd->scan, range->lo, range->lo_len, range->hi, range->hi_len, err, errlen);
    return s;
}

pc_status diff_versions_range(const char *table_dir, const char *previous, const char *new_dir,
                              const diff_range *range, table_diff *out, char *err, size_t errlen)
{
    pc_status s = diff_init(out, previous, err, errlen);
    if (s != PC_OK) return s;
    side old = {0}, new = {0};
    s = open_side(&old, table_dir, previous, NULL, range, err, errlen);
    if (s == PC_OK) s = open_side(&new, NULL, NULL, new_dir, range, err, errlen);
    if (s == PC_OK) s = join(out, &old, &new, err, errlen);
    table_scan_close(old.scan);
    table_scan_close(new.scan);
    free(old.key);
    free(old.val);
    free(new.key);
    free(new.val);
    if (s != PC_OK) diff_free(out);
    return s;
}

pc_status diff_versions(const char *table_dir, const char *previous, const char *new_dir, table_diff *out,
                        char *err, size_t errlen)
{
    return diff_versions_range(table_dir, previous, new_dir, NULL, out, err, errlen);
}

/* Packed: 6 counts, nclasses, then per class before, after, label length and bytes (int64
 * fields in host order: the ranks of one job run one build). */
#define DIFF_COUNTS 6

static char *put_i64(char *p, int64_t v)
{
    memcpy(p, &v, sizeof v);
    return p + sizeof v;
}

pc_status diff_pack(const table_diff *d, char **buf, size_t *len, char *err, size_t errlen)
{
    const run_report_diff *r = &d->report;
    size_t n = (DIFF_COUNTS + 1) * 8;
    for (int64_t i = 0; i < r->nclasses; i++) n += 3 * 8 + d->label_lens[i];
    char *p = malloc(n);
    if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    *buf = p;
    *len = n;
    int64_t counts[DIFF_COUNTS] = {r->keys_before, r->keys_after, r->keys_added, r->keys_removed, r->keys_compared,
                                   r->top1_changed};
    for (int i = 0; i < DIFF_COUNTS; i++) p = put_i64(p, counts[i]);
    p = put_i64(p, r->nclasses);
    for (int64_t i = 0; i < r->nclasses; i++) {
        p = put_i64(p, d->classes[i].before);
        p = put_i64(p, d->classes[i].after);
        p = put_i64(p, (int64_t)d->label_lens[i]);
        if (d->label_lens[i]) memcpy(p, d->classes[i].label, d->label_lens[i]);
        p += d->label_lens[i];
    }
    return PC_OK;
}

/* Reads the next int64 of a packed diff, false past its end. */
static bool get_i64(const char **p, const char *end, int64_t *v)
{
    if ((size_t)(end - *p) < sizeof *v) return false;
    memcpy(v, *p, sizeof *v);
    *p += sizeof *v;
    return true;
}

pc_status diff_merge_packed(table_diff *into, const char *buf, size_t len, char *err, size_t errlen)
{
    const char *p = buf, *end = buf + len;
    int64_t counts[DIFF_COUNTS], n = 0;
    for (int i = 0; i < DIFF_COUNTS; i++)
        if (!get_i64(&p, end, &counts[i])) return pc_err(err, errlen, PC_ERR_INTERNAL, "diff: short packed counts");
    if (!get_i64(&p, end, &n) || n < 0) return pc_err(err, errlen, PC_ERR_INTERNAL, "diff: bad packed class count");
    run_report_diff *r = &into->report;
    r->keys_before += counts[0];
    r->keys_after += counts[1];
    r->keys_added += counts[2];
    r->keys_removed += counts[3];
    r->keys_compared += counts[4];
    r->top1_changed += counts[5];
    for (int64_t c = 0; c < n; c++) {
        int64_t before, after, l;
        if (!get_i64(&p, end, &before) || !get_i64(&p, end, &after) || !get_i64(&p, end, &l) || l < 0 ||
            (size_t)(end - p) < (size_t)l)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "diff: short packed class");
        int64_t i = class_index(into, p, (size_t)l);
        if (i < 0) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        into->classes[i].before += before;
        into->classes[i].after += after;
        p += l;
    }
    return PC_OK;
}

double diff_changed_share(const table_diff *d)
{
    const run_report_diff *r = &d->report;
    if (r->keys_before == 0) return 0.0;
    return (double)(r->keys_removed + r->top1_changed) / (double)r->keys_before;
}

void diff_free(table_diff *d)
{
    for (int64_t i = 0; d->classes && i < d->report.nclasses; i++) free((char *)d->classes[i].label);
    free(d->classes);
    free(d->label_lens);
    memset(d, 0, sizeof *d);
}
