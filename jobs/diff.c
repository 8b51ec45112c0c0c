#include "jobs/diff.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reducer/kv.h"
#include "storage/table.h"

/* The value's top-1 label: the JSON string after "label": (escapes kept as written, which is
 * enough to compare and count). Returns false when the value has none. */
static bool value_label(const char *v, size_t n, const char **label, size_t *len)
{
    static const char key[] = "\"label\":\"";
    for (size_t i = 0; i + sizeof key - 1 <= n; i++) {
        if (memcmp(v + i, key, sizeof key - 1) != 0) continue;
        size_t start = i + sizeof key - 1, j = start;
        while (j < n && v[j] != '"') j += v[j] == '\\' ? 2 : 1;
        if (j > n) return false;
        *label = v + start;
        *len = j - start;
        return true;
    }
    return false;
}

/* Counts a key's class on one side (0 before, 1 after). */
static pc_status count_class(table_diff *d, const char *label, size_t len, int side, char *err, size_t errlen)
{
    run_report_diff *r = &d->report;
    int64_t i = 0;
    for (; i < r->nclasses; i++)
        if (strlen(d->classes[i].label) == len && memcmp(d->classes[i].label, label, len) == 0) break;
    if (i == r->nclasses) {
        if (r->nclasses == DIFF_MAX_CLASSES) { /* fold the long tail into the last slot */
            i = r->nclasses - 1;
            if (strcmp(d->classes[i].label, "(other)") != 0) {
                free((char *)d->classes[i].label);
                d->classes[i].label = strdup("(other)");
            }
        } else {
            char *copy = malloc(len + 1);
            if (copy == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
            memcpy(copy, label, len);
            copy[len] = '\0';
            d->classes[i] = (run_report_class){.label = copy};
            r->nclasses++;
        }
    }
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

pc_status diff_versions(const char *table_dir, const char *previous, const char *new_dir, table_diff *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->previous, sizeof out->previous, "%s", previous);
    out->report.previous_version = out->previous;
    out->classes = calloc(DIFF_MAX_CLASSES, sizeof(run_report_class));
    side old = {0}, new = {0};
    pc_status s = out->classes ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) s = table_scan_open(table_dir, previous, &old.scan, err, errlen);
    if (s == PC_OK) s = table_scan_open_dir(new_dir, &new.scan, err, errlen);
    out->report.classes = out->classes;
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
    memset(d, 0, sizeof *d);
}
