#include "mapper/map.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapper/csv.h"
#include "mapper/featstats.h"
#include "mapper/libsvm.h"
#include "mapper/source.h"
#include "mapper/numparse.h"

/* A model input with the columns that fill it. */
typedef struct bound_input {
    int input;               /* model input index */
    const char *name;
    model_elem elem;
    int64_t width;
    const map_binding *b;    /* NULL: the single float input fed by `features` */
    bool bag;                /* one multi-valued column fills the whole input */
    int64_t sketch_first;    /* input drift: its first dense feature / id column in the sketch */
} bound_input;

/* Column indices of one input file, per bound input. */
typedef struct file_columns {
    int64_t ncols;
    int64_t id;
    int64_t **cols;          /* cols[i][j]: the column of element j of bound input i */
    bool *is_float;          /* ncols: the column feeds a float input (the reader parses it) */
} file_columns;

/* Keys of the rows in the current batch, with their origins, packed in one growing arena. */
typedef struct batch_keys {
    char *bytes;
    size_t len, cap;
    size_t *offsets;         /* rows + 1 */
    int32_t *files;
    int64_t *lines;
    int64_t *file_offsets;   /* byte offset of each row in its file */
    char *raw;               /* with skip_bad_rows: each row's raw bytes, for the rejects */
    size_t raw_len, raw_cap;
    size_t *raw_offsets;     /* rows + 1 */
} batch_keys;

/* The current batch of LIBSVM rows, as CSR. */
typedef struct sparse_batch {
    int64_t *row_ptr;        /* batch_rows + 1 */
    int32_t *cols;
    float *vals;
    size_t nnz, cap;
} sparse_batch;

typedef struct map_state {
    model *m;
    head *h;
    const map_config *cfg;
    map_emit_fn emit;
    void *ctx;
    map_stats *stats;
    const char *const *paths;
    bound_input *inputs;
    int ninputs;
    int64_t rows;            /* rows in the current batch */
    int64_t row_limit;       /* > 0: stop reading once this many rows were read (map_probe) */
    batch_keys keys;
    sparse_batch sparse;
    bool use_sparse;         /* LIBSVM rows go to the model as CSR */
    char *value;             /* one encoded value */
    size_t value_cap;
    /* input drift (cfg->sketch): per int64 input, the batch's id keys (rows x width) and for a
     * bag the ids per row; output drift (cfg->output_sketch): the batch's scores and classes */
    uint64_t **id_keys;
    int32_t **bag_ids;
    float *out_scores;
    int64_t *out_classes;
    bool note_spellings;     /* a PROFILE sketch (precast stats): string ids' spellings kept */
} map_state;

uint64_t map_hash_id(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int find_model_input(const model *m, const char *name)
{
    for (int i = 0; i < model_input_count(m); i++)
        if (strcmp(model_input_name(m, i), name) == 0) return i;
    return -1;
}

/* Checks one binding against its model input. */
static pc_status check_binding(const model *m, int i, const map_binding *b, char *err, size_t errlen)
{
    const char *name = model_input_name(m, i);
    int64_t width = model_input_width(m, i);
    if (model_input_elem(m, i) == MODEL_ELEM_FLOAT) {
        if (b->ncolumns != width)
            return pc_err(err, errlen, PC_ERR_CONFIG, "map.%s names %lld columns, but the model's input '%s' takes %lld",
                          name, (long long)b->ncolumns, name, (long long)width);
        if (b->hash_buckets > 0 || b->vocab > 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "model input '%s' is float32: hashing and vocab apply to int64 id inputs",
                          name);
    } else if (b->ncolumns != width && b->ncolumns != 1) {
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "map.%s names %lld columns, but the model's input '%s' takes %lld ids (one column per id, "
                      "or one multi-valued column)", name, (long long)b->ncolumns, name, (long long)width);
    }
    return PC_OK;
}

pc_status map_check_config(const model *m, const map_config *cfg, char *err, size_t errlen)
{
    int n = model_input_count(m);
    if (cfg->format == MAP_FORMAT_LIBSVM || cfg->nbindings == 0) {
        if (n != 1 || model_input_elem(m, 0) != MODEL_ELEM_FLOAT)
            return pc_err(err, errlen, PC_ERR_CONFIG,
                          "the model has %d inputs%s: map each one with a `map.NAME = columns` line in [input]",
                          n, n == 1 ? " (int64)" : "");
        if (cfg->format == MAP_FORMAT_LIBSVM && cfg->nbindings > 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "map.NAME lines apply to CSV input, not libsvm");
        return PC_OK;
    }
    for (int k = 0; k < cfg->nbindings; k++) {
        if (find_model_input(m, cfg->bindings[k].input) < 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "map.%s: the model has no input '%s' (its first input is '%s')",
                          cfg->bindings[k].input, cfg->bindings[k].input, model_input_name(m, 0));
        for (int j = 0; j < k; j++)
            if (strcmp(cfg->bindings[j].input, cfg->bindings[k].input) == 0)
                return pc_err(err, errlen, PC_ERR_CONFIG, "map.%s is given twice", cfg->bindings[k].input);
    }
    for (int i = 0; i < n; i++) {
        const map_binding *b = NULL;
        for (int k = 0; k < cfg->nbindings; k++)
            if (strcmp(cfg->bindings[k].input, model_input_name(m, i)) == 0) b = &cfg->bindings[k];
        if (b == NULL)
            return pc_err(err, errlen, PC_ERR_CONFIG, "model input '%s' has no `map.%s = columns` line in [input]",
                          model_input_name(m, i), model_input_name(m, i));
        pc_status s = check_binding(m, i, b, err, errlen);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

static pc_status bind_inputs(map_state *st, char *err, size_t errlen)
{
    const map_config *cfg = st->cfg;
    pc_status s = map_check_config(st->m, cfg, err, errlen);
    if (s != PC_OK) return s;
    st->ninputs = model_input_count(st->m);
    st->inputs = calloc((size_t)st->ninputs, sizeof(bound_input));
    if (st->inputs == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < st->ninputs; i++) {
        bound_input *bi = &st->inputs[i];
        bi->input = i;
        bi->name = model_input_name(st->m, i);
        bi->elem = model_input_elem(st->m, i);
        bi->width = model_input_width(st->m, i);
        for (int k = 0; k < cfg->nbindings; k++)
            if (strcmp(cfg->bindings[k].input, bi->name) == 0) bi->b = &cfg->bindings[k];
        bi->bag = bi->b && bi->elem == MODEL_ELEM_INT64 && bi->b->ncolumns == 1 && bi->width > 1;
    }
    /* the sketch's columns in model-input order: float inputs' columns are its dense
     * features, int64 inputs' columns its id columns (a bag is one) */
    int64_t ndense = 0, nids = 0;
    for (int i = 0; i < st->ninputs; i++) {
        bound_input *bi = &st->inputs[i];
        bi->sketch_first = bi->elem == MODEL_ELEM_FLOAT ? ndense : nids;
        if (bi->elem == MODEL_ELEM_FLOAT) ndense += bi->width;
        else nids += bi->bag ? 1 : bi->width;
    }
    const featstats *fs = cfg->sketch;
    if (fs != NULL && (featstats_dense_count(fs) != ndense || featstats_id_count(fs) != nids))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "input drift: the sketch has %lld dense and %lld id columns, the inputs %lld and %lld",
                      (long long)featstats_dense_count(fs), (long long)featstats_id_count(fs), (long long)ndense,
                      (long long)nids);
    return PC_OK;
}

static void file_columns_clear(file_columns *fc, int ninputs)
{
    for (int i = 0; fc->cols && i < ninputs; i++) free(fc->cols[i]);
    free(fc->cols);
    free(fc->is_float);
    memset(fc, 0, sizeof *fc);
}

/* Resolves the column names of one bound input against a file's header. */
static pc_status resolve_input_columns(const char *path, const csv_header *h, const map_config *cfg,
                                       const bound_input *bi, int64_t id_col, int64_t **out,
                                       char *err, size_t errlen)
{
    const char *const *names = bi->b ? bi->b->columns : cfg->features;
    int64_t n = bi->b ? bi->b->ncolumns : cfg->features ? cfg->nfeatures : h->ncols - 1;
    if (bi->b == NULL && n != bi->width)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: %lld feature columns, but the model's input '%s' takes %lld",
                      path, (long long)n, bi->name, (long long)bi->width);
    int64_t *cols = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (cols == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int64_t j = 0, next = 0; j < n; j++) {
        if (names != NULL) {
            cols[j] = csv_header_find(h, names[j]);
            if (cols[j] < 0) {
                free(cols);
                return pc_err(err, errlen, PC_ERR_CONFIG, "%s: header has no column '%s' (for input '%s')", path,
                              names[j], bi->name);
            }
        } else {
            if (next == id_col) next++;
            cols[j] = next++;
        }
    }
    *out = cols;
    return PC_OK;
}

/* Maps the columns of `path` to the model inputs by name. */
static pc_status map_columns(const map_state *st, const char *path, file_columns *fc, char *err,
                             size_t errlen)
{
    csv_header h;
    pc_status s = csv_read_header(path, &h, err, errlen);
    if (s != PC_OK) return s;
    memset(fc, 0, sizeof *fc);
    fc->ncols = h.ncols;
    fc->id = csv_header_find(&h, st->cfg->id_column);
    if (fc->id < 0) s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: header has no id column '%s'", path, st->cfg->id_column);
    else if ((fc->cols = calloc((size_t)st->ninputs, sizeof(int64_t *))) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int i = 0; s == PC_OK && i < st->ninputs; i++)
        s = resolve_input_columns(path, &h, st->cfg, &st->inputs[i], fc->id, &fc->cols[i], err, errlen);
    if (s == PC_OK && (fc->is_float = calloc((size_t)fc->ncols + 1, sizeof(bool))) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int i = 0; s == PC_OK && i < st->ninputs; i++)
        for (int64_t j = 0; st->inputs[i].elem == MODEL_ELEM_FLOAT && j < st->inputs[i].width; j++)
            fc->is_float[fc->cols[i][j]] = true;
    csv_header_free(&h);
    if (s != PC_OK) file_columns_clear(fc, st->ninputs);
    return s;
}

/* Appends n bytes to a growing buffer; false when out of memory (buffer unchanged). */
static bool grow_append(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n) c *= 2;
        char *p = realloc(*buf, c);
        if (p == NULL) return false;
        *buf = p;
        *cap = c;
    }
    if (n) memcpy(*buf + *len, src, n);
    *len += n;
    return true;
}

/* Keeps a row's raw bytes beside its key (only when bad rows are skipped). */
static pc_status keys_push_raw(batch_keys *k, int64_t row, int64_t offset, const char *raw, size_t len,
                               char *err, size_t errlen)
{
    k->file_offsets[row] = offset;
    if (k->raw_offsets == NULL) return PC_OK;
    k->raw_offsets[row] = k->raw_len;
    if (raw != NULL && !grow_append(&k->raw, &k->raw_len, &k->raw_cap, raw, len))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for batch rows");
    k->raw_offsets[row + 1] = k->raw_len;
    return PC_OK;
}

static pc_status keys_push(batch_keys *k, int64_t row, const char *key, size_t klen, int32_t file,
                           int64_t line, char *err, size_t errlen)
{
    if (k->len + klen > k->cap) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap < k->len + klen) cap *= 2;
        char *p = realloc(k->bytes, cap);
        if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for batch keys");
        k->bytes = p;
        k->cap = cap;
    }
    memcpy(k->bytes + k->len, key, klen);
    k->offsets[row] = k->len;
    k->len += klen;
    k->offsets[row + 1] = k->len;
    k->files[row] = file;
    k->lines[row] = line;
    return PC_OK;
}

/* Hands the batch's CSR rows to the model, or scatters them into its dense input. */
static pc_status load_sparse(map_state *st, char *err, size_t errlen)
{
    sparse_batch *sb = &st->sparse;
    if (st->use_sparse)
        return model_input_set_sparse(st->m, 0, sb->row_ptr, sb->cols, sb->vals, err, errlen);
    float *dense = model_input_buffer(st->m, 0);
    int64_t width = st->inputs[0].width;
    memset(dense, 0, (size_t)(st->rows * width) * sizeof(float));
    for (int64_t r = 0; r < st->rows; r++)
        for (int64_t k = sb->row_ptr[r]; k < sb->row_ptr[r + 1]; k++) dense[r * width + sb->cols[k]] = sb->vals[k];
    return PC_OK;
}

/* A bad row: with bad_rows = fail its error (status s, message in err) stands; with skip it
 * goes to the reject callback, is counted, and the map goes on (PC_OK). */
static pc_status bad_row(map_state *st, pc_status s, int32_t file, int64_t line, int64_t offset,
                         const char *reason, const char *raw, size_t raw_len, char *err, size_t errlen)
{
    if (s != PC_ERR_DATA || !st->cfg->skip_bad_rows) return s;
    char message[PC_ERRLEN];
    snprintf(message, sizeof message, "%s", err);
    st->stats->rows_rejected++;
    return st->cfg->reject(st->cfg->reject_ctx, file, line, offset, reason, message, raw, raw_len, err, errlen);
}

/* Input drift: adds the batch's model inputs to the sketch (the rows as the model sees them,
 * ids as their keys). */
static pc_status sketch_inputs(map_state *st, char *err, size_t errlen)
{
    featstats *fs = st->cfg->sketch;
    pc_status s = PC_OK;
    for (int i = 0; s == PC_OK && i < st->ninputs; i++) {
        const bound_input *bi = &st->inputs[i];
        if (bi->elem == MODEL_ELEM_FLOAT) {
            featstats_add_dense(fs, bi->sketch_first, model_input_buffer(st->m, bi->input), st->rows, bi->width);
        } else if (bi->bag) {
            for (int64_t r = 0; s == PC_OK && r < st->rows; r++)
                s = featstats_add_id_keys(fs, bi->sketch_first, st->id_keys[i] + r * bi->width, st->bag_ids[i][r], 1,
                                          err, errlen);
        } else {
            for (int64_t j = 0; s == PC_OK && j < bi->width; j++)
                s = featstats_add_id_keys(fs, bi->sketch_first + j, st->id_keys[i] + j, st->rows, bi->width, err, errlen);
        }
    }
    return s;
}

/* Output drift: each row's score (the largest value of the first output; with a TopK graph
 * its first value) and class (its arg-max; with a TopK graph the first index). */
static pc_status sketch_outputs(map_state *st, char *err, size_t errlen)
{
    int64_t w = model_output_width(st->m, 0);
    bool topk = model_output_count(st->m) >= 2 && model_output_elem(st->m, 1) == MODEL_ELEM_INT64 &&
                model_output_elem(st->m, 0) == MODEL_ELEM_FLOAT;
    if (model_output_elem(st->m, 0) != MODEL_ELEM_FLOAT) { /* an ArgMax graph: classes only */
        const int64_t *o = model_output_i64(st->m, 0);
        for (int64_t r = 0; r < st->rows; r++) st->out_scores[r] = NAN, st->out_classes[r] = o[r * w];
    } else {
        const float *o = model_output(st->m, 0);
        const int64_t *idx = topk ? model_output_i64(st->m, 1) : NULL;
        int64_t wi = topk ? model_output_width(st->m, 1) : 0;
        for (int64_t r = 0; r < st->rows; r++) {
            const float *row = o + r * w;
            int64_t best = 0;
            for (int64_t j = 1; !topk && j < w; j++)
                if (row[j] > row[best]) best = j;
            st->out_scores[r] = row[best];
            st->out_classes[r] = topk ? idx[r * wi] : best;
        }
    }
    featstats_add_dense(st->cfg->output_sketch, 0, st->out_scores, st->rows, 1);
    return featstats_add_ids_i64(st->cfg->output_sketch, 0, st->out_classes, st->rows, err, errlen);
}

/* Runs the forward pass on the batch and emits every row's prediction. */
static pc_status flush_batch(map_state *st, char *err, size_t errlen)
{
    if (st->rows == 0) return PC_OK;
    pc_status s = st->cfg->format == MAP_FORMAT_LIBSVM ? load_sparse(st, err, errlen) : PC_OK;
    if (s == PC_OK && st->cfg->sketch != NULL) s = sketch_inputs(st, err, errlen);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s == PC_OK) s = model_forward(st->m, st->rows, err, errlen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st->stats->forward_ns += (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    if (s == PC_OK && st->cfg->output_sketch != NULL) s = sketch_outputs(st, err, errlen);
    if (s != PC_OK) return s;
    int nout = model_output_count(st->m) < 2 ? model_output_count(st->m) : 2;
    const void *rowp[2] = {NULL, NULL};
    for (int64_t r = 0; r < st->rows && s == PC_OK; r++) {
        for (int i = 0; i < nout; i++) {
            int64_t w = model_output_width(st->m, i);
            rowp[i] = model_output_elem(st->m, i) == MODEL_ELEM_INT64
                          ? (const void *)(model_output_i64(st->m, i) + r * w)
                          : (const void *)(model_output(st->m, i) + r * w);
        }
        size_t vlen;
        char why[256];
        s = head_encode(st->h, rowp, st->value, st->value_cap, &vlen, why, sizeof why);
        if (s == PC_ERR_DATA) {
            batch_keys *k = &st->keys;
            s = pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %s", st->paths[k->files[r]], (long long)k->lines[r], why);
            const char *raw = k->raw_offsets ? k->raw + k->raw_offsets[r] : NULL;
            size_t raw_len = k->raw_offsets ? k->raw_offsets[r + 1] - k->raw_offsets[r] : 0;
            s = bad_row(st, s, k->files[r], k->lines[r], k->file_offsets[r], "output", raw, raw_len, err, errlen);
        } else if (s != PC_OK) {
            s = pc_err(err, errlen, s, "%s", why);
        } else {
            size_t off = st->keys.offsets[r];
            s = st->emit(st->ctx, st->keys.bytes + off, st->keys.offsets[r + 1] - off, st->value,
                         vlen, st->keys.files[r], st->keys.lines[r], err, errlen);
            if (s == PC_OK) st->stats->rows_emitted++;
        }
    }
    st->rows = 0;
    st->keys.len = 0;
    st->keys.raw_len = 0;
    st->sparse.nnz = 0;
    return s;
}

/* Parses one id: an integer, or a hashed string; then the vocabulary check. */
/* key (may be NULL) receives the id's input-drift key: the full FNV-1a 64 of a hashed string,
 * the integer as read (before any out-of-vocabulary replacement). */
static pc_status parse_id(map_state *st, const bound_input *bi, const char *s, size_t len, int64_t *id,
                          uint64_t *key, char *err, size_t errlen)
{
    const map_binding *b = bi->b;
    if (b->hash_buckets > 0) {
        uint64_t h = map_hash_id(s, len);
        if (key) *key = h;
        *id = (int64_t)(h % (uint64_t)b->hash_buckets);
        return PC_OK;
    }
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return pc_err(err, errlen, PC_ERR_DATA, "input '%s': not an integer id: '%.*s'", bi->name, (int)(len < 40 ? len : 40), s);
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    while (*end == ' ') end++;
    if (errno || end == buf || *end != '\0')
        return pc_err(err, errlen, PC_ERR_DATA, "input '%s': not an integer id: '%s'", bi->name, buf);
    if (key) *key = (uint64_t)(int64_t)v;
    if (v < 0 || (b->vocab > 0 && v >= b->vocab)) {
        if (st->cfg->oov_bucket < 0)
            return pc_err(err, errlen, PC_ERR_DATA, "input '%s': id %lld is outside the vocabulary [0, %lld)",
                          bi->name, v, (long long)b->vocab);
        v = st->cfg->oov_bucket;
        st->stats->oov_ids++;
    }
    *id = v;
    return PC_OK;
}

/* Splits a multi-valued field into ids, padded with pad_id to the input's width. */
static pc_status fill_bag(map_state *st, const bound_input *bi, const char *field, size_t len, int64_t *row,
                          uint64_t *keys, int32_t *nkeys, char *err, size_t errlen)
{
    int64_t n = 0;
    const char *p = field, *end = field + len;
    while (len > 0 && p <= end) {
        const char *sep = memchr(p, st->cfg->bag_separator, (size_t)(end - p));
        const char *stop = sep ? sep : end;
        if (n == bi->width)
            return pc_err(err, errlen, PC_ERR_DATA, "input '%s': more than %lld ids in '%.*s'", bi->name,
                          (long long)bi->width, (int)(len < 60 ? len : 60), field);
        pc_status s = parse_id(st, bi, p, (size_t)(stop - p), &row[n], keys ? &keys[n] : NULL, err, errlen);
        if (s == PC_OK && st->note_spellings && bi->b->hash_buckets > 0)
            s = featstats_note_spelling(st->cfg->sketch, bi->sketch_first, keys[n], p, (size_t)(stop - p), err, errlen);
        n++;
        if (s != PC_OK) return s;
        if (nkeys) *nkeys = (int32_t)n;
        if (sep == NULL) break;
        p = sep + 1;
    }
    for (; n < bi->width; n++) row[n] = st->cfg->pad_id;
    return PC_OK;
}

/* Fills row `r` of every model input from one CSV record. */
static pc_status fill_inputs(map_state *st, const file_columns *fc, const csv_record *rec, char *err,
                             size_t errlen)
{
    for (int i = 0; i < st->ninputs; i++) {
        const bound_input *bi = &st->inputs[i];
        const int64_t *cols = fc->cols[i];
        pc_status s = PC_OK;
        if (bi->elem == MODEL_ELEM_FLOAT && rec->values != NULL) {
            /* the reader parsed every float column while it split the record */
            float *row = (float *)model_input_buffer(st->m, bi->input) + st->rows * bi->width;
            for (int64_t j = 0; j < bi->width; j++) row[j] = rec->values[cols[j]];
        } else if (bi->elem == MODEL_ELEM_FLOAT) {
            float *row = (float *)model_input_buffer(st->m, bi->input) + st->rows * bi->width;
            for (int64_t j = 0; s == PC_OK && j < bi->width; j++) {
                char why[160];
                if (parse_float(rec->fields[cols[j]], rec->lens[cols[j]], &row[j], why, sizeof why) != PC_OK)
                    s = pc_err(err, errlen, PC_ERR_DATA, "column %lld: %s", (long long)cols[j] + 1, why);
            }
        } else {
            int64_t *row = (int64_t *)model_input_buffer(st->m, bi->input) + st->rows * bi->width;
            uint64_t *keys = st->id_keys && st->id_keys[i] ? st->id_keys[i] + st->rows * bi->width : NULL;
            if (bi->bag) {
                int32_t *nkeys = keys ? &st->bag_ids[i][st->rows] : NULL;
                if (nkeys) *nkeys = 0;
                s = fill_bag(st, bi, rec->fields[cols[0]], rec->lens[cols[0]], row, keys, nkeys, err, errlen);
            } else {
                for (int64_t j = 0; s == PC_OK && j < bi->width; j++) {
                    s = parse_id(st, bi, rec->fields[cols[j]], rec->lens[cols[j]], &row[j], keys ? &keys[j] : NULL,
                                 err, errlen);
                    if (s == PC_OK && st->note_spellings && bi->b->hash_buckets > 0)
                        s = featstats_note_spelling(st->cfg->sketch, bi->sketch_first + j, keys[j], rec->fields[cols[j]],
                                                    rec->lens[cols[j]], err, errlen);
                }
            }
        }
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

/* Adds one CSV record to the batch. PC_ERR_DATA names file and line. */
static pc_status add_csv_record(map_state *st, const file_columns *fc, int32_t file, const csv_record *rec,
                                const char **reason, char *err, size_t errlen)
{
    const char *path = st->paths[file];
    if (rec->nfields != fc->ncols) {
        *reason = "fields";
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %lld fields, the header has %lld", path,
                      (long long)rec->line, (long long)rec->nfields, (long long)fc->ncols);
    }
    if (rec->lens[fc->id] == 0) {
        *reason = "empty_id";
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: empty id", path, (long long)rec->line);
    }
    char why[PC_ERRLEN / 2];
    if (fill_inputs(st, fc, rec, why, sizeof why) != PC_OK) {
        *reason = "value";
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %s", path, (long long)rec->line, why);
    }
    pc_status s = keys_push(&st->keys, st->rows, rec->fields[fc->id], rec->lens[fc->id], file, rec->line, err, errlen);
    if (s == PC_OK) s = keys_push_raw(&st->keys, st->rows, rec->offset, rec->raw, rec->raw_len, err, errlen);
    if (s == PC_OK) st->rows++;
    return s;
}

/* Adds one LIBSVM record to the CSR batch. */
static pc_status add_sparse_record(map_state *st, int32_t file, const libsvm_record *rec, char *err, size_t errlen)
{
    sparse_batch *sb = &st->sparse;
    if (rec->id_len == 0)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: empty id", st->paths[file], (long long)rec->line);
    if (sb->nnz + (size_t)rec->nnz > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 4096;
        while (cap < sb->nnz + (size_t)rec->nnz) cap *= 2;
        int32_t *c = realloc(sb->cols, cap * sizeof(int32_t));
        if (c) sb->cols = c;
        float *v = realloc(sb->vals, cap * sizeof(float));
        if (v) sb->vals = v;
        if (c == NULL || v == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for sparse rows");
        sb->cap = cap;
    }
    if (rec->nnz > 0) { /* a row without pairs may come before any buffer exists */
        memcpy(sb->cols + sb->nnz, rec->idx, (size_t)rec->nnz * sizeof(int32_t));
        memcpy(sb->vals + sb->nnz, rec->vals, (size_t)rec->nnz * sizeof(float));
    }
    sb->nnz += (size_t)rec->nnz;
    sb->row_ptr[st->rows + 1] = (int64_t)sb->nnz;
    pc_status s = keys_push(&st->keys, st->rows, rec->id, rec->id_len, file, rec->line, err, errlen);
    if (s == PC_OK) s = keys_push_raw(&st->keys, st->rows, rec->offset, rec->raw, rec->raw_len, err, errlen);
    if (s == PC_OK) st->rows++;
    return s;
}

static pc_status map_csv_segment(map_state *st, const split_segment *seg, const file_columns *fc, char *err,
                                 size_t errlen)
{
    csv_reader *r = NULL;
    pc_status s = csv_reader_open(st->paths[seg->file], seg, &r, err, errlen);
    if (s == PC_OK) s = csv_reader_set_float_columns(r, fc->is_float, fc->ncols, err, errlen);
    while (s == PC_OK) {
        csv_record rec;
        bool eof = false;
        s = csv_reader_next(r, &rec, &eof, err, errlen);
        if (s == PC_ERR_DATA) { /* a malformed record, consumed by the reader */
            st->stats->rows_in++;
            s = bad_row(st, s, seg->file, rec.line, rec.offset, "csv", rec.raw, rec.raw_len, err, errlen);
            continue;
        }
        if (s != PC_OK || eof) break;
        st->stats->rows_in++;
        if (st->row_limit > 0 && st->stats->rows_in > st->row_limit) {
            st->stats->rows_in--;
            break;
        }
        const char *reason = "value";
        s = add_csv_record(st, fc, seg->file, &rec, &reason, err, errlen);
        if (s == PC_ERR_DATA) s = bad_row(st, s, seg->file, rec.line, rec.offset, reason, rec.raw, rec.raw_len, err, errlen);
        else if (s == PC_OK && st->rows == model_batch_rows(st->m)) s = flush_batch(st, err, errlen);
    }
    csv_reader_close(r);
    return s;
}

static pc_status map_libsvm_segment(map_state *st, const split_segment *seg, char *err, size_t errlen)
{
    libsvm_options opts = {.one_based = st->cfg->one_based, .width = st->inputs[0].width};
    libsvm_reader *r = NULL;
    pc_status s = libsvm_reader_open(st->paths[seg->file], seg, &opts, &r, err, errlen);
    while (s == PC_OK) {
        libsvm_record rec;
        bool eof = false;
        s = libsvm_reader_next(r, &rec, &eof, err, errlen);
        if (s == PC_ERR_DATA) { /* a malformed row, consumed by the reader */
            st->stats->rows_in++;
            s = bad_row(st, s, seg->file, rec.line, rec.offset, "libsvm", rec.raw, rec.raw_len, err, errlen);
            continue;
        }
        if (s != PC_OK || eof) break;
        st->stats->rows_in++;
        s = add_sparse_record(st, seg->file, &rec, err, errlen);
        if (s == PC_ERR_DATA) s = bad_row(st, s, seg->file, rec.line, rec.offset, "empty_id", rec.raw, rec.raw_len, err, errlen);
        else if (s == PC_OK && st->rows == model_batch_rows(st->m)) s = flush_batch(st, err, errlen);
    }
    libsvm_reader_close(r);
    return s;
}

static pc_status map_state_init(map_state *st, split_plan *plan, char *err, size_t errlen)
{
    int64_t batch = model_batch_rows(st->m);
    int nfiles = split_plan_file_count(plan);
    st->keys.offsets = malloc((size_t)(batch + 1) * sizeof(size_t));
    st->keys.files = malloc((size_t)batch * sizeof(int32_t));
    st->keys.lines = malloc((size_t)batch * sizeof(int64_t));
    st->keys.file_offsets = malloc((size_t)batch * sizeof(int64_t));
    if (st->cfg->skip_bad_rows && (st->keys.raw_offsets = calloc((size_t)batch + 1, sizeof(size_t))) == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    st->sparse.row_ptr = calloc((size_t)batch + 1, sizeof(int64_t));
    st->value_cap = head_value_max_bytes(st->h) + 1;
    st->value = malloc(st->value_cap);
    const char **paths = calloc((size_t)nfiles + 1, sizeof(char *));
    st->paths = paths;
    if (!(st->keys.offsets && st->keys.files && st->keys.lines && st->keys.file_offsets && st->sparse.row_ptr &&
          st->value && paths))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < nfiles; i++) paths[i] = split_plan_file_path(plan, i);
    pc_status s = bind_inputs(st, err, errlen);
    if (s == PC_OK && st->cfg->format == MAP_FORMAT_LIBSVM) st->use_sparse = model_input_sparse_ok(st->m, 0);
    if (s == PC_OK && st->cfg->sketch != NULL && st->cfg->format == MAP_FORMAT_LIBSVM)
        s = pc_err(err, errlen, PC_ERR_CONFIG, "input.drift applies to CSV input, not libsvm");
    st->note_spellings = st->cfg->sketch != NULL && featstats_mode_of(st->cfg->sketch) == FEATSTATS_PROFILE;
    if (s == PC_OK && st->cfg->sketch != NULL) {
        st->id_keys = calloc((size_t)st->ninputs, sizeof *st->id_keys);
        st->bag_ids = calloc((size_t)st->ninputs, sizeof *st->bag_ids);
        if (st->id_keys == NULL || st->bag_ids == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        for (int i = 0; s == PC_OK && i < st->ninputs; i++) {
            const bound_input *bi = &st->inputs[i];
            if (bi->elem == MODEL_ELEM_FLOAT) continue;
            st->id_keys[i] = malloc((size_t)(batch * bi->width) * sizeof **st->id_keys);
            st->bag_ids[i] = bi->bag ? malloc((size_t)batch * sizeof **st->bag_ids) : NULL;
            if (st->id_keys[i] == NULL || (bi->bag && st->bag_ids[i] == NULL))
                s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        }
    }
    if (s == PC_OK && st->cfg->output_sketch != NULL) {
        st->out_scores = malloc((size_t)batch * sizeof *st->out_scores);
        st->out_classes = malloc((size_t)batch * sizeof *st->out_classes);
        if (st->out_scores == NULL || st->out_classes == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    return s;
}

static void map_state_clear(map_state *st)
{
    for (int i = 0; st->id_keys && i < st->ninputs; i++) free(st->id_keys[i]);
    for (int i = 0; st->bag_ids && i < st->ninputs; i++) free(st->bag_ids[i]);
    free(st->id_keys);
    free(st->bag_ids);
    free(st->out_scores);
    free(st->out_classes);
    free(st->inputs);
    free(st->keys.bytes);
    free(st->keys.offsets);
    free(st->keys.files);
    free(st->keys.lines);
    free(st->keys.file_offsets);
    free(st->keys.raw);
    free(st->keys.raw_offsets);
    free(st->sparse.row_ptr);
    free(st->sparse.cols);
    free(st->sparse.vals);
    free(st->value);
    free((void *)st->paths);
}

struct mapper {
    map_state st;
    split_plan *plan;
    file_columns *cols;    /* per input file, resolved on first use */
    int nfiles;
};

pc_status map_open(model *m, head *h, split_plan *plan, const map_config *cfg, map_emit_fn emit,
                   void *ctx, map_stats *stats, mapper **out, char *err, size_t errlen)
{
    *out = NULL;
    memset(stats, 0, sizeof *stats);
    mapper *mp = calloc(1, sizeof *mp);
    if (mp == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    mp->st = (map_state){.m = m, .h = h, .cfg = cfg, .emit = emit, .ctx = ctx, .stats = stats};
    mp->plan = plan;
    mp->nfiles = split_plan_file_count(plan);
    mp->cols = calloc((size_t)mp->nfiles + 1, sizeof(file_columns));
    pc_status s = mp->cols ? map_state_init(&mp->st, plan, err, errlen)
                           : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s != PC_OK) {
        map_abort(mp);
        return s;
    }
    *out = mp;
    return PC_OK;
}

/* Reads a gzip file to its end: PC_OK if the stream is whole, else its I/O error.  Corrupt
 * deflate data can inflate to garbage rows before zlib notices (at the latest at the CRC), so
 * a bad row in a .gz file is only reported as such once the file itself is known sound. */
static pc_status gzip_sound(const char *path, char *err, size_t errlen)
{
    source *src = NULL;
    pc_status s = source_open(path, 0, &src, err, errlen);
    char buf[1 << 16], why[PC_ERRLEN];
    size_t got = 1;
    while (s == PC_OK && got > 0) s = source_read(src, buf, sizeof buf, &got, why, sizeof why);
    if (s != PC_OK && src != NULL) s = pc_err(err, errlen, s, "%s: %s", path, why);
    source_close(src);
    return s;
}

pc_status map_segment(mapper *mp, int64_t index, char *err, size_t errlen)
{
    const split_segment *seg = &split_plan_segments(mp->plan)[index];
    const char *path = mp->st.paths[seg->file];
    pc_status s;
    if (mp->st.cfg->format == MAP_FORMAT_LIBSVM) {
        s = map_libsvm_segment(&mp->st, seg, err, errlen);
    } else {
        file_columns *fc = &mp->cols[seg->file];
        s = fc->cols == NULL ? map_columns(&mp->st, path, fc, err, errlen) : PC_OK;
        if (s == PC_OK) s = map_csv_segment(&mp->st, seg, fc, err, errlen);
    }
    if (s == PC_ERR_DATA && source_codec_of(path) == SOURCE_CODEC_GZIP) {
        char e2[PC_ERRLEN];
        if (gzip_sound(path, e2, sizeof e2) != PC_OK) s = pc_err(err, errlen, PC_ERR_IO, "%s", e2);
    }
    return s;
}

void map_abort(mapper *mp)
{
    if (mp == NULL) return;
    for (int i = 0; mp->cols && i < mp->nfiles; i++) file_columns_clear(&mp->cols[i], mp->st.ninputs);
    free(mp->cols);
    map_state_clear(&mp->st);
    free(mp);
}

pc_status map_flush(mapper *mp, char *err, size_t errlen)
{
    return flush_batch(&mp->st, err, errlen);
}

pc_status map_close(mapper *mp, char *err, size_t errlen)
{
    pc_status s = flush_batch(&mp->st, err, errlen);
    map_abort(mp);
    return s;
}

pc_status map_probe(model *m, head *h, split_plan *plan, const map_config *cfg, int64_t max_rows,
                    map_emit_fn emit, void *ctx, map_stats *stats, char *err, size_t errlen)
{
    mapper *mp = NULL;
    pc_status s = map_open(m, h, plan, cfg, emit, ctx, stats, &mp, err, errlen);
    if (s == PC_OK) mp->st.row_limit = max_rows;
    int64_t n = split_plan_segment_count(plan);
    for (int64_t i = 0; s == PC_OK && i < n && stats->rows_in < max_rows; i++) s = map_segment(mp, i, err, errlen);
    if (s != PC_OK) {
        map_abort(mp);
        return s;
    }
    return map_close(mp, err, errlen);
}

pc_status map_head_create(const model *m, const head_config *cfg, head **out, char *err, size_t errlen)
{
    head_output outs[2];
    int n = model_output_count(m) < 2 ? model_output_count(m) : 2;
    if (n < 1) return pc_err(err, errlen, PC_ERR_CONFIG, "the model has no output");
    for (int i = 0; i < n; i++)
        outs[i] = (head_output){.width = model_output_width(m, i), .elem = model_output_elem(m, i),
                                .final = model_output_final(m, i)};
    return head_create(cfg, outs, n, out, err, errlen);
}
