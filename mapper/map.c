#include "mapper/map.h"

#include <stdlib.h>
#include <string.h>

#include "mapper/csv.h"
#include "mapper/numparse.h"

/* Column mapping of one input file. */
typedef struct file_columns {
    int64_t ncols;
    int64_t id;
    int64_t *features; /* model input element j comes from column features[j] */
} file_columns;

/* Keys of the rows in the current batch, with their origins, packed in one growing arena. */
typedef struct batch_keys {
    char *bytes;
    size_t len, cap;
    size_t *offsets; /* rows + 1 */
    int32_t *files;
    int64_t *lines;
} batch_keys;

typedef struct map_state {
    model *m;
    head *h;
    const map_config *cfg;
    map_emit_fn emit;
    void *ctx;
    map_stats *stats;
    float *input;      /* the model's input buffer */
    int64_t width;     /* features per row */
    int64_t rows;      /* rows in the current batch */
    batch_keys keys;
    char *value;       /* one encoded value */
    size_t value_cap;
} map_state;

static void file_columns_clear(file_columns *fc)
{
    free(fc->features);
    memset(fc, 0, sizeof *fc);
}

/* Maps the columns of `path` to the model input by name. */
static pc_status map_columns(const char *path, const map_config *cfg, const char *input_name,
                             int64_t width, file_columns *fc, char *err, size_t errlen)
{
    csv_header h;
    pc_status s = csv_read_header(path, &h, err, errlen);
    if (s != PC_OK) return s;
    memset(fc, 0, sizeof *fc);
    fc->ncols = h.ncols;
    fc->id = csv_header_find(&h, cfg->id_column);
    int64_t nfeat = cfg->features ? cfg->nfeatures : h.ncols - (fc->id >= 0 ? 1 : 0);
    if (fc->id < 0) {
        s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: header has no id column '%s'", path, cfg->id_column);
    } else if (nfeat != width) {
        s = pc_err(err, errlen, PC_ERR_CONFIG,
                   "%s: %lld feature columns, but the model's input '%s' takes %lld", path,
                   (long long)nfeat, input_name, (long long)width);
    } else if ((fc->features = malloc((size_t)(nfeat ? nfeat : 1) * sizeof(int64_t))) == NULL) {
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    for (int64_t j = 0, col = 0; s == PC_OK && j < nfeat; j++) {
        if (cfg->features) {
            fc->features[j] = csv_header_find(&h, cfg->features[j]);
            if (fc->features[j] < 0)
                s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: header has no feature column '%s'",
                           path, cfg->features[j]);
        } else {
            if (col == fc->id) col++;
            fc->features[j] = col++;
        }
    }
    csv_header_free(&h);
    if (s != PC_OK) file_columns_clear(fc);
    return s;
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

/* Runs the forward pass on the batch and emits every row's prediction. */
static pc_status flush_batch(map_state *st, const char *const *paths, char *err, size_t errlen)
{
    if (st->rows == 0) return PC_OK;
    pc_status s = model_forward(st->m, st->rows, err, errlen);
    if (s != PC_OK) return s;
    const float *out = model_output(st->m, 0);
    int64_t owidth = model_output_width(st->m, 0);
    for (int64_t r = 0; r < st->rows && s == PC_OK; r++) {
        size_t vlen;
        char why[256];
        s = head_encode(st->h, out + r * owidth, st->value, st->value_cap, &vlen, why, sizeof why);
        if (s == PC_ERR_DATA) {
            s = pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %s", paths[st->keys.files[r]],
                       (long long)st->keys.lines[r], why);
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
    return s;
}

/* Parses one record into the batch. PC_ERR_DATA names file and line. */
static pc_status add_record(map_state *st, const file_columns *fc, const char *path, int32_t file,
                            const csv_record *rec, char *err, size_t errlen)
{
    if (rec->nfields != fc->ncols)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %lld fields, the header has %lld", path,
                      (long long)rec->line, (long long)rec->nfields, (long long)fc->ncols);
    if (rec->lens[fc->id] == 0)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: empty id", path, (long long)rec->line);
    float *row = st->input + st->rows * st->width;
    for (int64_t j = 0; j < st->width; j++) {
        int64_t c = fc->features[j];
        char why[160];
        if (parse_float(rec->fields[c], rec->lens[c], &row[j], why, sizeof why) != PC_OK)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: column %lld: %s", path,
                          (long long)rec->line, (long long)c + 1, why);
    }
    pc_status s = keys_push(&st->keys, st->rows, rec->fields[fc->id], rec->lens[fc->id], file,
                            rec->line, err, errlen);
    if (s == PC_OK) st->rows++;
    return s;
}

static pc_status map_segment(map_state *st, const split_segment *seg,
                             const file_columns *fc, const char *const *paths, char *err,
                             size_t errlen)
{
    const char *path = paths[seg->file];
    csv_reader *r = NULL;
    pc_status s = csv_reader_open(path, seg, &r, err, errlen);
    while (s == PC_OK) {
        csv_record rec;
        bool eof = false;
        s = csv_reader_next(r, &rec, &eof, err, errlen);
        if (s != PC_OK || eof) break;
        st->stats->rows_in++;
        s = add_record(st, fc, path, seg->file, &rec, err, errlen);
        if (s == PC_OK && st->rows == model_batch_rows(st->m)) s = flush_batch(st, paths, err, errlen);
    }
    csv_reader_close(r);
    return s;
}

pc_status map_segments(model *m, head *h, split_plan *plan, int64_t first, int64_t end,
                       const map_config *cfg, map_emit_fn emit, void *ctx, map_stats *stats,
                       char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    if (model_input_elem(m, 0) != MODEL_ELEM_FLOAT)
        return pc_err(err, errlen, PC_ERR_CONFIG, "model input '%s' is not float32",
                      model_input_name(m, 0));
    int64_t batch = model_batch_rows(m);
    int nfiles = split_plan_file_count(plan);
    map_state st = {.m = m, .h = h, .cfg = cfg, .emit = emit, .ctx = ctx, .stats = stats,
                    .input = model_input_buffer(m, 0), .width = model_input_width(m, 0)};
    st.keys.offsets = malloc((size_t)(batch + 1) * sizeof(size_t));
    st.keys.files = malloc((size_t)batch * sizeof(int32_t));
    st.keys.lines = malloc((size_t)batch * sizeof(int64_t));
    st.value_cap = head_value_max_bytes(h) + 1;
    st.value = malloc(st.value_cap);
    file_columns *cols = calloc((size_t)nfiles, sizeof(file_columns));
    const char **paths = calloc((size_t)nfiles, sizeof(char *));
    pc_status s = (st.keys.offsets && st.keys.files && st.keys.lines && st.value && cols && paths)
                      ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int i = 0; s == PC_OK && i < nfiles; i++) paths[i] = split_plan_file_path(plan, i);
    const split_segment *segs = split_plan_segments(plan);
    for (int64_t i = first; s == PC_OK && i < end; i++) {
        const split_segment *seg = &segs[i];
        file_columns *fc = &cols[seg->file];
        if (fc->features == NULL)
            s = map_columns(paths[seg->file], cfg, model_input_name(m, 0), st.width, fc, err, errlen);
        if (s == PC_OK) s = map_segment(&st, seg, fc, paths, err, errlen);
    }
    if (s == PC_OK) s = flush_batch(&st, paths, err, errlen);
    for (int i = 0; cols && i < nfiles; i++) file_columns_clear(&cols[i]);
    free(cols);
    free(paths);
    free(st.keys.bytes);
    free(st.keys.offsets);
    free(st.keys.files);
    free(st.keys.lines);
    free(st.value);
    return s;
}
