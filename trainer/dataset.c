/* dataset.c — reading training rows into memory. A load is two phases: rows are read into a
 * builder that keeps labels and ids as written (names, sparse pairs, ragged bags), the ranks
 * agree on what depends on all rows (class names, widths, vocabularies, bag lengths), and the
 * builder is then packed into the dense arrays the net's batches are copied from. */
#include "trainer/dataset.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobs/job.h"
#include "jobs/work.h"
#include "mapper/csv.h"
#include "mapper/libsvm.h"
#include "mapper/map.h"
#include "mapper/numparse.h"
#include "mapper/split.h"
#include "reducer/agree.h"

#define LIBSVM_WIDTH_UNKNOWN ((int64_t)1 << 31)

/* A growing array of elements of `size` bytes; grow() counts what it allocates. */
typedef struct vec {
    void *p;
    int64_t n, cap;
} vec;

typedef struct builder {
    const train_config *cfg;
    int64_t rows;
    int64_t width;       /* dense width (CSV: known from the header; LIBSVM: grows) */
    vec dense;           /* float: CSV rows * width */
    vec sp_off, sp_idx, sp_val; /* LIBSVM: int64 offsets (rows+1), int32 indices, float values */
    vec *e_off, *e_ids;  /* per embedding: int64 offsets (rows+1), int64 ids */
    vec lab_off, lab;    /* label text: int64 offsets (rows+1), chars (class, multilabel, binary) */
    vec target;          /* float: value labels, rows * nlabel_columns */
    vec key_off, keys;   /* int64 offsets (rows+1), chars: the id column's values (when set) */
    vec file, line;      /* int32 file index, int64 line: for messages and default keys */
    int64_t bytes;       /* allocated so far */
    int64_t max_bytes;
    int64_t max_id[NET_MAX_EMBEDS];  /* largest id seen (integer ids) */
    int64_t max_bag[NET_MAX_EMBEDS]; /* longest bag seen */
    int64_t max_index;   /* LIBSVM: largest feature index seen */
} builder;

static pc_status oom(char *err, size_t errlen) { return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); }

static pc_status grow(builder *b, vec *v, size_t size, int64_t more, char *err, size_t errlen)
{
    if (v->n + more <= v->cap) return PC_OK;
    int64_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + more) cap *= 2;
    b->bytes += (cap - v->cap) * (int64_t)size;
    if (b->bytes > b->max_bytes)
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "the training rows of this rank need more than data.max_memory_mb = %lld MiB (%lld rows read): "
                      "precast train keeps each rank's rows in memory; use more ranks or raise data.max_memory_mb",
                      (long long)(b->max_bytes >> 20), (long long)b->rows);
    void *p = realloc(v->p, (size_t)cap * size);
    if (p == NULL) return oom(err, errlen);
    v->p = p;
    v->cap = cap;
    return PC_OK;
}

static pc_status push(builder *b, vec *v, size_t size, const void *x, int64_t n, char *err, size_t errlen)
{
    pc_status s = grow(b, v, size, n, err, errlen);
    if (s != PC_OK) return s;
    if (n > 0) memcpy((char *)v->p + (size_t)v->n * size, x, (size_t)n * size);
    v->n += n;
    return PC_OK;
}

static pc_status push_i64(builder *b, vec *v, int64_t x, char *err, size_t errlen)
{
    return push(b, v, sizeof x, &x, 1, err, errlen);
}

static void vec_free(vec *v)
{
    free(v->p);
    *v = (vec){0};
}

static pc_status builder_init(builder *b, const train_config *cfg, int64_t max_bytes, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->max_bytes = max_bytes;
    b->max_index = -1;
    b->e_off = calloc((size_t)cfg->nembeds + 1, sizeof(vec));
    b->e_ids = calloc((size_t)cfg->nembeds + 1, sizeof(vec));
    if (!b->e_off || !b->e_ids) return oom(err, errlen);
    for (int e = 0; e < NET_MAX_EMBEDS; e++) b->max_id[e] = -1;
    pc_status s = PC_OK;
    for (int e = 0; s == PC_OK && e < cfg->nembeds; e++) s = push_i64(b, &b->e_off[e], 0, err, errlen);
    if (s == PC_OK) s = push_i64(b, &b->lab_off, 0, err, errlen);
    if (s == PC_OK) s = push_i64(b, &b->key_off, 0, err, errlen);
    if (s == PC_OK) s = push_i64(b, &b->sp_off, 0, err, errlen);
    return s;
}

static void builder_free(builder *b)
{
    vec_free(&b->dense);
    vec_free(&b->sp_off);
    vec_free(&b->sp_idx);
    vec_free(&b->sp_val);
    for (int e = 0; b->e_off && e < b->cfg->nembeds; e++) {
        vec_free(&b->e_off[e]);
        vec_free(&b->e_ids[e]);
    }
    free(b->e_off);
    free(b->e_ids);
    vec_free(&b->lab_off);
    vec_free(&b->lab);
    vec_free(&b->target);
    vec_free(&b->key_off);
    vec_free(&b->keys);
    vec_free(&b->file);
    vec_free(&b->line);
    memset(b, 0, sizeof *b);
}

/* ---- the split: every record goes to train or validation by a hash of its bytes ---------- */

static bool is_validation(const char *raw, size_t len, double share)
{
    if (share <= 0) return false;
    uint64_t h = map_hash_id(raw, len);
    h ^= h >> 33; /* murmur3's finaliser spreads the FNV bits */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (double)(h >> 11) * 0x1.0p-53 < share;
}

/* ---- CSV columns -------------------------------------------------------------------------- */

typedef struct colmap {
    int64_t ncols;
    int64_t *feat;   /* (width) column of each dense feature */
    int64_t *label;  /* (nlabel_columns) */
    int64_t *embed;  /* (nembeds) */
    int64_t id;      /* or -1 */
} colmap;

static void colmap_free(colmap *m)
{
    free(m->feat);
    free(m->label);
    free(m->embed);
    memset(m, 0, sizeof *m);
}

static bool is_special(const train_config *c, const char *name)
{
    if (c->id_column && strcmp(name, c->id_column) == 0) return true;
    for (int64_t i = 0; i < c->nlabel_columns; i++)
        if (strcmp(name, c->label_columns[i]) == 0) return true;
    for (int e = 0; e < c->nembeds; e++)
        if (strcmp(name, c->embeds[e].column) == 0) return true;
    return false;
}

static pc_status find_col(const csv_header *h, const char *path, const char *name, const char *what, int64_t *out,
                          char *err, size_t errlen)
{
    *out = csv_header_find(h, name);
    if (*out < 0)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s:1: no column '%s' (%s) in the header", path, name, what);
    return PC_OK;
}

/* The feature names: data.features, or every column of the first file that is not the id, a
 * label or an embedding column. */
static pc_status feature_names(const train_config *c, const csv_header *h, data_layout *l, char *err, size_t errlen)
{
    int64_t n = 0;
    l->feature_names = calloc((size_t)(c->features ? c->nfeatures : h->ncols) + 1, sizeof(char *));
    if (l->feature_names == NULL) return oom(err, errlen);
    if (c->features) {
        for (int64_t i = 0; i < c->nfeatures; i++)
            if ((l->feature_names[n++] = strdup(c->features[i])) == NULL) return oom(err, errlen);
    } else {
        for (int64_t i = 0; i < h->ncols; i++)
            if (!is_special(c, h->names[i]) && (l->feature_names[n++] = strdup(h->names[i])) == NULL)
                return oom(err, errlen);
    }
    l->dense_width = n;
    return PC_OK;
}

static pc_status colmap_make(const train_config *c, const data_layout *l, const char *path, colmap *m, char *err,
                             size_t errlen)
{
    csv_header h = {0};
    pc_status s = csv_read_header(path, &h, err, errlen);
    if (s != PC_OK) return s;
    memset(m, 0, sizeof *m);
    m->ncols = h.ncols;
    m->feat = calloc((size_t)l->dense_width + 1, sizeof(int64_t));
    m->label = calloc((size_t)c->nlabel_columns + 1, sizeof(int64_t));
    m->embed = calloc((size_t)c->nembeds + 1, sizeof(int64_t));
    m->id = -1;
    if (!m->feat || !m->label || !m->embed) s = oom(err, errlen);
    for (int64_t i = 0; s == PC_OK && i < l->dense_width; i++)
        s = find_col(&h, path, l->feature_names[i], "a feature", &m->feat[i], err, errlen);
    for (int64_t i = 0; s == PC_OK && i < c->nlabel_columns; i++)
        s = find_col(&h, path, c->label_columns[i], "data.label_column", &m->label[i], err, errlen);
    for (int e = 0; s == PC_OK && e < c->nembeds; e++)
        s = find_col(&h, path, c->embeds[e].column, "an embed. column", &m->embed[e], err, errlen);
    if (s == PC_OK && c->id_column) s = find_col(&h, path, c->id_column, "data.id_column", &m->id, err, errlen);
    csv_header_free(&h);
    if (s != PC_OK) colmap_free(m);
    return s;
}

/* ---- one row ------------------------------------------------------------------------------ */

/* The ids of one embedding field: integers, or strings hashed into hash buckets; a bag holds
 * several separated by label_separator. */
static pc_status add_ids(builder *b, int e, const char *field, size_t len, const char *path, int64_t line, char *err,
                         size_t errlen)
{
    const train_embed *em = &b->cfg->embeds[e];
    int64_t count = 0;
    const char *p = field, *end = field + len;
    pc_status s = PC_OK;
    while (s == PC_OK && len > 0) {
        const char *q = memchr(p, b->cfg->label_separator, (size_t)(end - p));
        if (q == NULL) q = end;
        int64_t id;
        if (em->hash_buckets > 0) {
            id = (int64_t)(map_hash_id(p, (size_t)(q - p)) % (uint64_t)em->hash_buckets);
        } else {
            char buf[32];
            size_t n = (size_t)(q - p);
            char *stop;
            if (n == 0 || n >= sizeof buf)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s': '%.*s' is not an integer id (set "
                              "model.hash.%s = BUCKETS for string ids)", path, (long long)line, em->column,
                              (int)(n > 40 ? 40 : n), p, em->column);
            memcpy(buf, p, n);
            buf[n] = '\0';
            errno = 0;
            id = strtoll(buf, &stop, 10);
            if (errno || *stop != '\0' || id < 0)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s': '%s' is not an id (a non-negative "
                              "integer; set model.hash.%s = BUCKETS for string ids)", path, (long long)line,
                              em->column, buf, em->column);
            if (em->vocab > 0 && id >= em->vocab)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s': id %lld is outside model.vocab.%s = %lld",
                              path, (long long)line, em->column, (long long)id, em->column, (long long)em->vocab);
        }
        if (id > b->max_id[e]) b->max_id[e] = id;
        s = push_i64(b, &b->e_ids[e], id, err, errlen);
        count++;
        if (q == end) break;
        p = q + 1;
    }
    if (s != PC_OK) return s;
    if (em->bag > 0 && count > em->bag)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s' holds %lld ids, more than model.bag.%s = %lld", path,
                      (long long)line, em->column, (long long)count, em->column, (long long)em->bag);
    if (count > b->max_bag[e]) b->max_bag[e] = count;
    return push_i64(b, &b->e_off[e], b->e_ids[e].n, err, errlen);
}

static pc_status add_label_text(builder *b, const char *text, size_t len, char *err, size_t errlen)
{
    pc_status s = push(b, &b->lab, 1, text, (int64_t)len, err, errlen);
    char nul = '\0';
    if (s == PC_OK) s = push(b, &b->lab, 1, &nul, 1, err, errlen);
    if (s == PC_OK) s = push_i64(b, &b->lab_off, b->lab.n, err, errlen);
    return s;
}

static pc_status add_where(builder *b, int32_t file, int64_t line, const char *key, size_t klen, char *err,
                           size_t errlen)
{
    pc_status s = push(b, &b->file, sizeof file, &file, 1, err, errlen);
    if (s == PC_OK) s = push(b, &b->line, sizeof line, &line, 1, err, errlen);
    if (s == PC_OK && key) {
        char nul = '\0';
        s = push(b, &b->keys, 1, key, (int64_t)klen, err, errlen);
        if (s == PC_OK) s = push(b, &b->keys, 1, &nul, 1, err, errlen);
        if (s == PC_OK) s = push_i64(b, &b->key_off, b->keys.n, err, errlen);
    }
    if (s == PC_OK) b->rows++;
    return s;
}

static pc_status add_csv_row(builder *b, const data_layout *l, const colmap *m, const csv_record *rec, int32_t file,
                             const char *path, char *err, size_t errlen)
{
    const train_config *c = b->cfg;
    if (rec->nfields != m->ncols)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %lld fields, the header has %lld", path, (long long)rec->line,
                      (long long)rec->nfields, (long long)m->ncols);
    pc_status s = grow(b, &b->dense, sizeof(float), l->dense_width, err, errlen);
    if (s != PC_OK) return s;
    float *x = (float *)b->dense.p + b->dense.n;
    for (int64_t i = 0; i < l->dense_width; i++) {
        int64_t col = m->feat[i];
        char why[128];
        if (rec->values) x[i] = rec->values[col];
        else if (parse_float(rec->fields[col], rec->lens[col], &x[i], why, sizeof why) != PC_OK)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s': %s", path, (long long)rec->line,
                          l->feature_names[i], why);
    }
    b->dense.n += l->dense_width;
    for (int e = 0; s == PC_OK && e < c->nembeds; e++)
        s = add_ids(b, e, rec->fields[m->embed[e]], rec->lens[m->embed[e]], path, rec->line, err, errlen);
    if (s != PC_OK) return s;
    if (c->label_kind == TRAIN_LABEL_VALUE) {
        for (int64_t i = 0; s == PC_OK && i < c->nlabel_columns; i++) {
            float y;
            char why[128];
            int64_t col = m->label[i];
            if (parse_float(rec->fields[col], rec->lens[col], &y, why, sizeof why) != PC_OK)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: label column '%s': %s", path, (long long)rec->line,
                              c->label_columns[i], why);
            s = push(b, &b->target, sizeof y, &y, 1, err, errlen);
        }
    } else {
        int64_t col = m->label[0];
        if (rec->lens[col] == 0 && c->label_kind != TRAIN_LABEL_MULTILABEL)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: empty label in column '%s'", path, (long long)rec->line,
                          c->label_columns[0]);
        s = add_label_text(b, rec->fields[col], rec->lens[col], err, errlen);
    }
    if (s != PC_OK) return s;
    return add_where(b, file, rec->line, m->id >= 0 ? rec->fields[m->id] : NULL, m->id >= 0 ? rec->lens[m->id] : 0,
                     err, errlen);
}

static pc_status add_libsvm_row(builder *b, const libsvm_record *rec, int32_t file, const char *path, char *err,
                                size_t errlen)
{
    const train_config *c = b->cfg;
    pc_status s = push(b, &b->sp_idx, sizeof(int32_t), rec->idx, rec->nnz, err, errlen);
    if (s == PC_OK) s = push(b, &b->sp_val, sizeof(float), rec->vals, rec->nnz, err, errlen);
    if (s == PC_OK) s = push_i64(b, &b->sp_off, b->sp_idx.n, err, errlen);
    if (s != PC_OK) return s;
    if (rec->nnz > 0 && rec->idx[rec->nnz - 1] > b->max_index) b->max_index = rec->idx[rec->nnz - 1];
    if (c->label_kind == TRAIN_LABEL_VALUE) {
        float y;
        char why[128];
        if (parse_float(rec->id, rec->id_len, &y, why, sizeof why) != PC_OK)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: label (first field): %s", path, (long long)rec->line, why);
        s = push(b, &b->target, sizeof y, &y, 1, err, errlen);
    } else {
        s = add_label_text(b, rec->id, rec->id_len, err, errlen);
    }
    if (s != PC_OK) return s;
    return add_where(b, file, rec->line, NULL, 0, err, errlen);
}

/* ---- reading segments --------------------------------------------------------------------- */

static pc_status read_csv_segment(const split_plan *plan, const split_segment *seg, const data_layout *l,
                                  const colmap *m, builder *train, builder *val, double share, int64_t *bytes,
                                  char *err, size_t errlen)
{
    const char *path = split_plan_file_path(plan, seg->file);
    csv_reader *r = NULL;
    pc_status s = csv_reader_open(path, seg, &r, err, errlen);
    if (s != PC_OK) return s;
    bool *is_float = calloc((size_t)m->ncols + 1, sizeof(bool));
    if (is_float == NULL) s = oom(err, errlen);
    for (int64_t i = 0; s == PC_OK && i < l->dense_width; i++) is_float[m->feat[i]] = true;
    if (s == PC_OK) s = csv_reader_set_float_columns(r, is_float, m->ncols, err, errlen);
    free(is_float);
    while (s == PC_OK) {
        csv_record rec;
        bool eof;
        s = csv_reader_next(r, &rec, &eof, err, errlen);
        if (s != PC_OK || eof) break;
        *bytes += (int64_t)rec.raw_len + 1;
        builder *b = is_validation(rec.raw, rec.raw_len, share) ? val : train;
        s = add_csv_row(b, l, m, &rec, seg->file, path, err, errlen);
    }
    csv_reader_close(r);
    return s;
}

static pc_status read_libsvm_segment(const split_plan *plan, const split_segment *seg, const train_config *c,
                                     builder *train, builder *val, double share, int64_t *bytes, char *err,
                                     size_t errlen)
{
    const char *path = split_plan_file_path(plan, seg->file);
    libsvm_options o = {.one_based = c->one_based, .width = c->libsvm_width > 0 ? c->libsvm_width : LIBSVM_WIDTH_UNKNOWN};
    libsvm_reader *r = NULL;
    pc_status s = libsvm_reader_open(path, seg, &o, &r, err, errlen);
    while (s == PC_OK) {
        libsvm_record rec;
        bool eof;
        s = libsvm_reader_next(r, &rec, &eof, err, errlen);
        if (s != PC_OK || eof) break;
        *bytes += (int64_t)rec.raw_len + 1;
        builder *b = is_validation(rec.raw, rec.raw_len, share) ? val : train;
        s = add_libsvm_row(b, &rec, seg->file, path, err, errlen);
    }
    libsvm_reader_close(r);
    return s;
}

/* Reads segments [first, end) of the plan. */
static pc_status read_segments(const train_config *c, split_plan *plan, int64_t first, int64_t end,
                               const data_layout *l, builder *train, builder *val, double share, int64_t *bytes,
                               char *err, size_t errlen)
{
    pc_status s = PC_OK;
    colmap *maps = NULL;
    int nfiles = split_plan_file_count(plan);
    if (c->format == TRAIN_FORMAT_CSV) {
        maps = calloc((size_t)nfiles + 1, sizeof *maps);
        if (maps == NULL) return oom(err, errlen);
    }
    split_segment *segs = split_plan_segments(plan);
    for (int64_t i = first; s == PC_OK && i < end; i++) {
        if (c->format == TRAIN_FORMAT_LIBSVM) {
            s = read_libsvm_segment(plan, &segs[i], c, train, val, share, bytes, err, errlen);
            continue;
        }
        colmap *m = &maps[segs[i].file];
        if (m->feat == NULL) s = colmap_make(c, l, split_plan_file_path(plan, segs[i].file), m, err, errlen);
        if (s == PC_OK) s = read_csv_segment(plan, &segs[i], l, m, train, val, share, bytes, err, errlen);
    }
    for (int f = 0; maps && f < nfiles; f++) colmap_free(&maps[f]);
    free(maps);
    return s;
}

/* ---- class names -------------------------------------------------------------------------- */

static bool all_integers(char **names, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        (void)strtoll(names[i], &end, 10);
        if (errno || end == names[i] || *end != '\0') return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_num(const void *a, const void *b)
{
    long long x = strtoll(*(char *const *)a, NULL, 10), y = strtoll(*(char *const *)b, NULL, 10);
    return x < y ? -1 : x > y;
}

/* Sorts names and drops duplicates (freeing them); returns the new count. */
static int64_t sort_unique(char **names, int64_t n)
{
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(names[k - 1], names[i]) == 0) free(names[i]);
        else names[k++] = names[i];
    }
    return k;
}

/* Every label name in b (split at the separator for multilabel), appended to *names. */
static pc_status collect_names(const builder *b, bool multi, char sep, char ***names, int64_t *n, int64_t *cap,
                               char *err, size_t errlen)
{
    const int64_t *off = b->lab_off.p;
    const char *text = b->lab.p;
    for (int64_t r = 0; r < b->rows; r++) {
        const char *p = text + off[r], *end = text + off[r + 1] - 1;
        while (p < end || (!multi && p == end)) {
            const char *q = multi ? memchr(p, sep, (size_t)(end - p)) : NULL;
            if (q == NULL) q = end;
            if (q > p || !multi) {
                if (*n == *cap) {
                    *cap = *cap ? 2 * *cap : 256;
                    char **grown = realloc(*names, (size_t)*cap * sizeof(char *));
                    if (grown == NULL) return oom(err, errlen);
                    *names = grown;
                }
                if (((*names)[*n] = strndup(p, (size_t)(q - p))) == NULL) return oom(err, errlen);
                (*n)++;
            }
            if (q == end) break;
            p = q + 1;
        }
        if (*n > 4 * 1048576) *n = sort_unique(*names, *n); /* keep memory bounded on big inputs */
    }
    return PC_OK;
}

/* Gathers the class names of every rank's rows: sorted, unique, as numbers if all are integers. */
static pc_status gather_classes(const builder *train, const builder *val, bool multi, char sep, MPI_Comm comm,
                                data_layout *l, char *err, size_t errlen)
{
    char **names = NULL;
    int64_t n = 0, cap = 0;
    pc_status s = collect_names(train, multi, sep, &names, &n, &cap, err, errlen);
    if (s == PC_OK) s = collect_names(val, multi, sep, &names, &n, &cap, err, errlen);
    if (s == PC_OK) n = sort_unique(names, n);
    int64_t bytes = 0;
    for (int64_t i = 0; s == PC_OK && i < n; i++) bytes += (int64_t)strlen(names[i]) + 1;
    if (s == PC_OK && bytes > INT_MAX / 4) s = pc_err(err, errlen, PC_ERR_CONFIG, "more than 512 MiB of class names");
    char *mine = s == PC_OK ? malloc((size_t)bytes + 1) : NULL;
    if (s == PC_OK && mine == NULL) s = oom(err, errlen);
    s = mpi_agree(s, comm, err, errlen);
    int nranks;
    MPI_Comm_size(comm, &nranks);
    int *lens = calloc((size_t)nranks, sizeof(int)), *displs = calloc((size_t)nranks, sizeof(int));
    char *all = NULL;
    if (s == PC_OK) {
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            size_t len = strlen(names[i]) + 1;
            memcpy(mine + at, names[i], len);
            at += (int64_t)len;
        }
        int len = (int)bytes;
        MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, comm);
        int64_t total = 0;
        for (int r = 0; r < nranks; r++) {
            displs[r] = (int)total;
            total += lens[r];
        }
        all = malloc((size_t)total + 1);
        if (total > INT_MAX || all == NULL) s = oom(err, errlen);
        s = mpi_agree(s, comm, err, errlen);
        if (s == PC_OK) {
            MPI_Allgatherv(mine, len, MPI_CHAR, all, lens, displs, MPI_CHAR, comm);
            int64_t count = 0;
            for (int64_t i = 0; i < total; i++) count += all[i] == '\0';
            char **every = calloc((size_t)count + 1, sizeof(char *));
            if (every == NULL) s = oom(err, errlen);
            int64_t k = 0;
            for (int64_t i = 0; s == PC_OK && i < total; i += (int64_t)strlen(all + i) + 1)
                if ((every[k++] = strdup(all + i)) == NULL) s = oom(err, errlen);
            if (s == PC_OK) {
                k = sort_unique(every, k);
                if (all_integers(every, k)) qsort(every, (size_t)k, sizeof *every, cmp_num);
                l->classes = every;
                l->nclasses = k;
            } else {
                for (int64_t i = 0; every && i < k; i++) free(every[i]);
                free(every);
            }
        }
    }
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(mine);
    free(all);
    free(lens);
    free(displs);
    return s;
}

/* ---- packing the builder into a dataset ----------------------------------------------------- */

typedef struct class_index {
    char **sorted;  /* names sorted bytewise */
    int32_t *index; /* their class numbers */
    int64_t n;
} class_index;

static int cmp_pair_name(const void *a, const void *b, void *names)
{
    char **nm = names;
    return strcmp(nm[*(const int32_t *)a], nm[*(const int32_t *)b]);
}

/* Class numbers sorted by name (qsort_r is not C11), for binary search while packing. */
static pc_status class_index_make(const data_layout *l, class_index *ci, char *err, size_t errlen)
{
    ci->n = l->nclasses;
    ci->sorted = calloc((size_t)l->nclasses + 1, sizeof(char *));
    ci->index = calloc((size_t)l->nclasses + 1, sizeof(int32_t));
    if (!ci->sorted || !ci->index) return oom(err, errlen);
    for (int64_t i = 0; i < l->nclasses; i++) ci->index[i] = (int32_t)i;
    /* shell sort of indices by name: class lists are small next to the rows */
    for (int64_t gap = l->nclasses / 2; gap > 0; gap /= 2)
        for (int64_t i = gap; i < l->nclasses; i++)
            for (int64_t j = i; j >= gap && cmp_pair_name(&ci->index[j - gap], &ci->index[j], l->classes) > 0; j -= gap) {
                int32_t t = ci->index[j];
                ci->index[j] = ci->index[j - gap];
                ci->index[j - gap] = t;
            }
    for (int64_t i = 0; i < l->nclasses; i++) ci->sorted[i] = l->classes[ci->index[i]];
    return PC_OK;
}

static int32_t class_lookup(const class_index *ci, const char *name, size_t len)
{
    int64_t lo = 0, hi = ci->n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strncmp(ci->sorted[mid], name, len);
        if (c == 0 && ci->sorted[mid][len] != '\0') c = 1;
        if (c < 0) lo = mid + 1;
        else if (c > 0) hi = mid;
        else return ci->index[mid];
    }
    return -1;
}

static void class_index_free(class_index *ci)
{
    free(ci->sorted);
    free(ci->index);
}

/* A binary label: 0/1 words, or one of the two class names. */
static int binary_value(const data_layout *l, const char *t)
{
    if (l->nclasses == 2) {
        if (strcmp(t, l->classes[0]) == 0) return 0;
        if (strcmp(t, l->classes[1]) == 0) return 1;
    }
    if (!strcmp(t, "1") || !strcasecmp(t, "true") || !strcasecmp(t, "yes") || !strcmp(t, "1.0")) return 1;
    if (!strcmp(t, "0") || !strcasecmp(t, "false") || !strcasecmp(t, "no") || !strcmp(t, "0.0") || !strcmp(t, "-1"))
        return 0;
    return -1;
}

static pc_status pack_labels(const builder *b, const data_layout *l, const class_index *ci, char *const *files,
                             dataset *d, char *err, size_t errlen)
{
    const train_config *c = b->cfg;
    const int64_t *off = b->lab_off.p;
    const char *text = b->lab.p;
    const int32_t *file = b->file.p;
    const int64_t *line = b->line.p;
    if (c->label_kind == TRAIN_LABEL_VALUE) {
        d->target = malloc((size_t)(b->rows * l->outputs + 1) * sizeof(float));
        if (d->target == NULL) return oom(err, errlen);
        if (b->rows > 0) memcpy(d->target, b->target.p, (size_t)(b->rows * l->outputs) * sizeof(float));
        return PC_OK;
    }
    if (c->label_kind == TRAIN_LABEL_BINARY) {
        d->target = malloc((size_t)b->rows * sizeof(float) + 1);
        if (d->target == NULL) return oom(err, errlen);
        for (int64_t r = 0; r < b->rows; r++) {
            int v = binary_value(l, text + off[r]);
            if (v < 0)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: binary label '%s': expected 0/1, true/false, yes/no "
                              "(or one of the two names of data.labels)", files[file[r]], (long long)line[r], text + off[r]);
            d->target[r] = (float)v;
        }
        return PC_OK;
    }
    if (c->label_kind == TRAIN_LABEL_CLASS) {
        d->cls = malloc((size_t)b->rows * sizeof(int32_t) + 1);
        if (d->cls == NULL) return oom(err, errlen);
        for (int64_t r = 0; r < b->rows; r++) {
            const char *t = text + off[r];
            if ((d->cls[r] = class_lookup(ci, t, strlen(t))) < 0)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: label '%s' is not one of the %lld classes of %s",
                              files[file[r]], (long long)line[r], t, (long long)l->nclasses, c->labels_path);
        }
        return PC_OK;
    }
    /* multilabel */
    d->ml_off = malloc((size_t)(b->rows + 1) * sizeof(int64_t));
    d->ml_cls = malloc((size_t)(b->lab.n + 1) * sizeof(int32_t)); /* at most one class per byte */
    if (!d->ml_off || !d->ml_cls) return oom(err, errlen);
    int64_t k = 0;
    for (int64_t r = 0; r < b->rows; r++) {
        d->ml_off[r] = k;
        const char *p = text + off[r], *end = text + off[r + 1] - 1;
        while (p < end) {
            const char *q = memchr(p, c->label_separator, (size_t)(end - p));
            if (q == NULL) q = end;
            if (q > p) {
                int32_t cl = class_lookup(ci, p, (size_t)(q - p));
                if (cl < 0)
                    return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: label '%.*s' is not one of the %lld classes of %s",
                                  files[file[r]], (long long)line[r], (int)(q - p), p, (long long)l->nclasses,
                                  c->labels_path);
                d->ml_cls[k++] = cl;
            }
            if (q == end) break;
            p = q + 1;
        }
    }
    d->ml_off[b->rows] = k;
    return PC_OK;
}

static pc_status pack(const builder *b, const data_layout *l, const class_index *ci, char *const *files, dataset *d,
                      char *err, size_t errlen)
{
    const train_config *c = b->cfg;
    memset(d, 0, sizeof *d);
    d->rows = b->rows;
    int64_t w = l->dense_width;
    d->dense = calloc((size_t)(b->rows * w + 1), sizeof(float));
    if (d->dense == NULL) return oom(err, errlen);
    if (c->format == TRAIN_FORMAT_CSV) {
        if (b->rows > 0 && w > 0) memcpy(d->dense, b->dense.p, (size_t)(b->rows * w) * sizeof(float));
    } else {
        const int64_t *off = b->sp_off.p;
        const int32_t *idx = b->sp_idx.p;
        const float *val = b->sp_val.p;
        for (int64_t r = 0; r < b->rows; r++)
            for (int64_t k = off[r]; k < off[r + 1]; k++) {
                if (idx[k] >= w)
                    return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: feature index %d is beyond the %lld features of training",
                                  files[((const int32_t *)b->file.p)[r]], (long long)((const int64_t *)b->line.p)[r],
                                  idx[k] + (c->one_based ? 1 : 0), (long long)w);
                d->dense[r * w + idx[k]] = val[k];
            }
    }
    d->ids = calloc((size_t)l->nembeds + 1, sizeof(int64_t *));
    if (d->ids == NULL) return oom(err, errlen);
    for (int e = 0; e < l->nembeds; e++) {
        int64_t L = l->embed_bag[e];
        d->ids[e] = calloc((size_t)(b->rows * L + 1), sizeof(int64_t)); /* padding id 0 */
        if (d->ids[e] == NULL) return oom(err, errlen);
        const int64_t *off = b->e_off[e].p, *ids = b->e_ids[e].p;
        for (int64_t r = 0; r < b->rows; r++) {
            if (off[r + 1] - off[r] > L)
                return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s' holds %lld ids, the model takes %lld",
                              files[((const int32_t *)b->file.p)[r]], (long long)((const int64_t *)b->line.p)[r],
                              l->embed_names[e], (long long)(off[r + 1] - off[r]), (long long)L);
            for (int64_t k = off[r]; k < off[r + 1]; k++) {
                if (ids[k] >= l->embed_vocab[e])
                    return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column '%s': id %lld is outside the vocabulary of %lld",
                                  files[((const int32_t *)b->file.p)[r]], (long long)((const int64_t *)b->line.p)[r],
                                  l->embed_names[e], (long long)ids[k], (long long)l->embed_vocab[e]);
                d->ids[e][r * L + (k - off[r])] = ids[k];
            }
        }
    }
    pc_status s = pack_labels(b, l, ci, files, d, err, errlen);
    if (s != PC_OK) return s;
    /* keys: the id column, else "FILE:LINE" with the file's base name */
    d->key_off = malloc((size_t)(b->rows + 1) * sizeof(int64_t));
    if (d->key_off == NULL) return oom(err, errlen);
    if (b->keys.n > 0 || b->rows == 0) {
        d->keys = malloc((size_t)b->keys.n + 1);
        if (d->keys == NULL) return oom(err, errlen);
        if (b->keys.n) memcpy(d->keys, b->keys.p, (size_t)b->keys.n);
        memcpy(d->key_off, b->key_off.p, (size_t)b->rows * sizeof(int64_t));
        return PC_OK;
    }
    size_t cap = 0;
    for (int64_t r = 0; r < b->rows; r++) cap += strlen(files[((const int32_t *)b->file.p)[r]]) + 24;
    d->keys = malloc(cap + 1);
    if (d->keys == NULL) return oom(err, errlen);
    size_t at = 0;
    for (int64_t r = 0; r < b->rows; r++) {
        const char *f = files[((const int32_t *)b->file.p)[r]], *base = strrchr(f, '/');
        d->key_off[r] = (int64_t)at;
        at += (size_t)snprintf(d->keys + at, cap + 1 - at, "%s:%lld", base ? base + 1 : f,
                               (long long)((const int64_t *)b->line.p)[r]) + 1;
    }
    return PC_OK;
}

/* Packs builders b[0, n) into out[0, n); rows name their files by the plan's paths. */
static pc_status pack_from_plan(const split_plan *plan, const builder *const *b, const data_layout *l,
                                const class_index *ci, dataset *const *out, int n, char *err, size_t errlen)
{
    int nfiles = split_plan_file_count(plan);
    char **files = calloc((size_t)nfiles + 1, sizeof(char *));
    pc_status s = files ? PC_OK : oom(err, errlen);
    for (int i = 0; s == PC_OK && i < nfiles; i++) files[i] = (char *)split_plan_file_path(plan, i);
    for (int i = 0; s == PC_OK && i < n; i++) s = pack(b[i], l, ci, files, out[i], err, errlen);
    free(files);
    return s;
}

/* ---- the layout --------------------------------------------------------------------------- */

static pc_status layout_embeds(const train_config *c, data_layout *l, char *err, size_t errlen)
{
    l->nembeds = c->nembeds;
    l->embed_names = calloc((size_t)c->nembeds + 1, sizeof(char *));
    l->embed_vocab = calloc((size_t)c->nembeds + 1, sizeof(int64_t));
    l->embed_bag = calloc((size_t)c->nembeds + 1, sizeof(int64_t));
    l->embed_dim = calloc((size_t)c->nembeds + 1, sizeof(int64_t));
    if (!l->embed_names || !l->embed_vocab || !l->embed_bag || !l->embed_dim) return oom(err, errlen);
    for (int e = 0; e < c->nembeds; e++) {
        if ((l->embed_names[e] = strdup(c->embeds[e].column)) == NULL) return oom(err, errlen);
        l->embed_dim[e] = c->embeds[e].dim;
        l->embed_vocab[e] = c->embeds[e].hash_buckets > 0 ? c->embeds[e].hash_buckets : c->embeds[e].vocab;
        l->embed_bag[e] = c->embeds[e].bag;
    }
    return PC_OK;
}

/* What all rows decide: LIBSVM width, bag lengths, vocabularies (largest id + 1). Collective. */
static pc_status agree_sizes(const train_config *c, const builder *train, const builder *val, MPI_Comm comm,
                             data_layout *l, char *err, size_t errlen)
{
    int64_t mine[2 * NET_MAX_EMBEDS + 1], all[2 * NET_MAX_EMBEDS + 1];
    mine[0] = train->max_index > val->max_index ? train->max_index : val->max_index;
    for (int e = 0; e < c->nembeds; e++) {
        mine[1 + 2 * e] = train->max_id[e] > val->max_id[e] ? train->max_id[e] : val->max_id[e];
        mine[2 + 2 * e] = train->max_bag[e] > val->max_bag[e] ? train->max_bag[e] : val->max_bag[e];
    }
    MPI_Allreduce(mine, all, 1 + 2 * c->nembeds, MPI_INT64_T, MPI_MAX, comm);
    if (c->format == TRAIN_FORMAT_LIBSVM) {
        int64_t w = c->libsvm_width > 0 ? c->libsvm_width : all[0] + 1;
        if (w < 1) return pc_err(err, errlen, PC_ERR_CONFIG, "the LIBSVM rows hold no feature at all");
        l->dense_width = w;
        l->feature_names = calloc((size_t)w + 1, sizeof(char *));
        if (l->feature_names == NULL) return oom(err, errlen);
        for (int64_t i = 0; i < w; i++) {
            char name[32];
            snprintf(name, sizeof name, "f%lld", (long long)i);
            if ((l->feature_names[i] = strdup(name)) == NULL) return oom(err, errlen);
        }
    }
    for (int e = 0; e < c->nembeds; e++) {
        if (l->embed_vocab[e] == 0) l->embed_vocab[e] = all[1 + 2 * e] + 1 > 2 ? all[1 + 2 * e] + 1 : 2;
        if (l->embed_bag[e] == 0) l->embed_bag[e] = all[2 + 2 * e] > 1 ? all[2 + 2 * e] : 1;
    }
    return PC_OK;
}

static pc_status write_labels(const char *path, const data_layout *l, char *err, size_t errlen)
{
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (tmp == NULL) return oom(err, errlen);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    pc_status s = PC_OK;
    if (f == NULL) s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    for (int64_t i = 0; f && i < l->nclasses; i++) fprintf(f, "%s\n", l->classes[i]);
    if (f && fclose(f) != 0) s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    if (s == PC_OK && rename(tmp, path) != 0) s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    free(tmp);
    return s;
}

static pc_status layout_labels_from_file(const train_config *c, data_layout *l, bool *have, char *err, size_t errlen)
{
    *have = false;
    if (c->label_kind == TRAIN_LABEL_VALUE) return PC_OK;
    FILE *f = fopen(c->labels_path, "r");
    if (f == NULL) return PC_OK; /* absent: gathered from the data and written */
    fclose(f);
    pc_status s = labels_read(c->labels_path, &l->classes, &l->nclasses, err, errlen);
    if (s != PC_OK) return s;
    *have = true;
    if (c->label_kind == TRAIN_LABEL_BINARY && l->nclasses != 2)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: %lld names, a binary label needs exactly two", c->labels_path,
                      (long long)l->nclasses);
    return PC_OK;
}

static void set_outputs(const train_config *c, data_layout *l)
{
    if (c->label_kind == TRAIN_LABEL_VALUE) l->outputs = c->nlabel_columns ? c->nlabel_columns : 1;
    else if (c->label_kind == TRAIN_LABEL_BINARY) l->outputs = 1;
    else l->outputs = l->nclasses;
}

pc_status dataset_load(const train_config *cfg, MPI_Comm comm, data_layout *layout, dataset *train, dataset *val,
                       data_load_stats *stats, char *err, size_t errlen)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    memset(layout, 0, sizeof *layout);
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(stats, 0, sizeof *stats);
    builder tb, vb;
    int64_t budget = cfg->max_memory_mb << 20;
    pc_status s = builder_init(&tb, cfg, budget, err, errlen);
    if (s == PC_OK) s = builder_init(&vb, cfg, budget, err, errlen);
    bool have_labels = false;
    if (s == PC_OK) s = layout_embeds(cfg, layout, err, errlen);
    if (s == PC_OK) s = layout_labels_from_file(cfg, layout, &have_labels, err, errlen);
    split_plan *plan = NULL;
    s = mpi_agree(s, comm, err, errlen);
    if (s == PC_OK) /* as `precast run` plans them */
        s = work_plan_splits(comm, (const char *const *)cfg->paths, cfg->npaths, &(split_options){.nparts = nranks},
                             &plan, err, errlen);
    if (s == PC_OK && cfg->format == TRAIN_FORMAT_CSV) {
        csv_header h = {0};
        s = csv_read_header(split_plan_file_path(plan, 0), &h, err, errlen);
        if (s == PC_OK) s = feature_names(cfg, &h, layout, err, errlen);
        csv_header_free(&h);
        s = mpi_agree(s, comm, err, errlen);
    }
    if (s == PC_OK) {
        int64_t first = cfg->deterministic ? 0 : split_plan_part_first(plan, rank);
        int64_t end = cfg->deterministic ? split_plan_segment_count(plan) : split_plan_part_first(plan, rank + 1);
        s = read_segments(cfg, plan, first, end, layout, &tb, &vb, cfg->validation, &stats->bytes_read, err, errlen);
        /* both builders count against one budget */
        if (s == PC_OK && tb.bytes + vb.bytes > budget)
            s = pc_err(err, errlen, PC_ERR_CONFIG, "the training rows of this rank need more than data.max_memory_mb = "
                       "%lld MiB: precast train keeps each rank's rows in memory; use more ranks or raise it",
                       (long long)cfg->max_memory_mb);
        s = mpi_agree(s, comm, err, errlen);
    }
    if (s == PC_OK) s = mpi_agree(agree_sizes(cfg, &tb, &vb, comm, layout, err, errlen), comm, err, errlen);
    if (s == PC_OK) {
        int64_t rows[2] = {tb.rows, vb.rows};
        MPI_Allreduce(MPI_IN_PLACE, rows, 2, MPI_INT64_T, MPI_SUM, comm);
        if (rows[0] == 0) s = pc_err(err, errlen, PC_ERR_CONFIG, "no training rows in data.paths (after the validation split)");
    }
    if (s == PC_OK && !have_labels && (cfg->label_kind == TRAIN_LABEL_CLASS || cfg->label_kind == TRAIN_LABEL_MULTILABEL)) {
        s = gather_classes(&tb, &vb, cfg->label_kind == TRAIN_LABEL_MULTILABEL, cfg->label_separator, comm, layout, err,
                           errlen);
        layout->labels_written = true;
        if (s == PC_OK && layout->nclasses < 2 && cfg->label_kind == TRAIN_LABEL_CLASS)
            s = pc_err(err, errlen, PC_ERR_CONFIG, "the label column holds %lld class%s: a classifier needs at least two",
                       (long long)layout->nclasses, layout->nclasses == 1 ? "" : "es");
    }
    set_outputs(cfg, layout);
    class_index ci = {0};
    if (s == PC_OK) s = class_index_make(layout, &ci, err, errlen);
    if (s == PC_OK) s = pack_from_plan(plan, (const builder *[]){&tb, &vb}, layout, &ci, (dataset *[]){train, val}, 2,
                                       err, errlen);
    stats->rows_read = tb.rows + vb.rows;
    stats->memory_bytes = tb.bytes + vb.bytes;
    class_index_free(&ci);
    builder_free(&tb);
    builder_free(&vb);
    split_plan_free(plan);
    s = mpi_agree(s, comm, err, errlen);
    if (s == PC_OK && rank == 0 && layout->labels_written) s = write_labels(cfg->labels_path, layout, err, errlen);
    s = mpi_agree(s, comm, err, errlen);
    if (s != PC_OK) {
        dataset_free(train);
        dataset_free(val);
        data_layout_free(layout);
    }
    return s;
}

pc_status dataset_load_test(const train_config *cfg, const data_layout *layout, dataset *test, char *err, size_t errlen)
{
    memset(test, 0, sizeof *test);
    builder tb, none;
    int64_t budget = cfg->max_memory_mb << 20;
    pc_status s = builder_init(&tb, cfg, budget, err, errlen);
    if (s == PC_OK) s = builder_init(&none, cfg, budget, err, errlen);
    split_plan *plan = NULL;
    if (s == PC_OK)
        s = work_plan_splits(MPI_COMM_NULL, (const char *const *)cfg->test_paths, cfg->ntest_paths,
                             &(split_options){.nparts = 1}, &plan, err, errlen);
    int64_t bytes = 0;
    if (s == PC_OK)
        s = read_segments(cfg, plan, 0, split_plan_segment_count(plan), layout, &tb, &none, 0, &bytes, err, errlen);
    class_index ci = {0};
    if (s == PC_OK) s = class_index_make(layout, &ci, err, errlen);
    if (s == PC_OK) s = pack_from_plan(plan, (const builder *[]){&tb}, layout, &ci, (dataset *[]){test}, 1, err, errlen);
    class_index_free(&ci);
    builder_free(&tb);
    builder_free(&none);
    split_plan_free(plan);
    if (s != PC_OK) dataset_free(test);
    return s;
}

void dataset_fill(const dataset *d, const data_layout *l, const int64_t *idx, int64_t n, net *nt)
{
    int64_t w = l->dense_width;
    float *x = net_dense_input(nt);
    for (int64_t i = 0; w > 0 && i < n; i++) memcpy(x + i * w, d->dense + idx[i] * w, (size_t)w * sizeof(float));
    for (int e = 0; e < l->nembeds; e++) {
        int64_t L = l->embed_bag[e];
        int64_t *ids = net_embed_input(nt, e);
        for (int64_t i = 0; i < n; i++) memcpy(ids + i * L, d->ids[e] + idx[i] * L, (size_t)L * sizeof(int64_t));
    }
    if (d->cls) {
        int32_t *y = net_label_class(nt);
        for (int64_t i = 0; i < n; i++) y[i] = d->cls[idx[i]];
    } else if (d->ml_off) {
        float *t = net_label_target(nt);
        memset(t, 0, (size_t)(n * l->outputs) * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = d->ml_off[idx[i]]; k < d->ml_off[idx[i] + 1]; k++) t[i * l->outputs + d->ml_cls[k]] = 1.0f;
    } else if (d->target) {
        float *t = net_label_target(nt);
        for (int64_t i = 0; i < n; i++)
            memcpy(t + i * l->outputs, d->target + idx[i] * l->outputs, (size_t)l->outputs * sizeof(float));
    }
}

const char *dataset_key(const dataset *d, int64_t r) { return d->keys + d->key_off[r]; }

void dataset_free(dataset *d)
{
    free(d->dense);
    for (int e = 0; d->ids && d->ids[e]; e++) free(d->ids[e]);
    free(d->ids);
    free(d->cls);
    free(d->ml_off);
    free(d->ml_cls);
    free(d->target);
    free(d->keys);
    free(d->key_off);
    memset(d, 0, sizeof *d);
}

void data_layout_free(data_layout *l)
{
    for (int64_t i = 0; l->feature_names && i < l->dense_width; i++) free(l->feature_names[i]);
    free(l->feature_names);
    for (int e = 0; l->embed_names && e < l->nembeds; e++) free(l->embed_names[e]);
    free(l->embed_names);
    free(l->embed_vocab);
    free(l->embed_bag);
    free(l->embed_dim);
    labels_free(l->classes, l->nclasses);
    memset(l, 0, sizeof *l);
}
