/* onnx_conformance — runs the ONNX backend test cases (Debian's libonnx-testdata) through
 * precast's loader and forward pass.
 *
 * Usage: onnx_conformance [DATA_DIR [CASE_FILTER]]
 *   DATA_DIR     default /usr/share/libonnx-testdata/data; the cases are DATA_DIR/{node,
 *                pytorch-converted,pytorch-operator,simple}/CASE/ with model.onnx and
 *                test_data_set_N/{input,output}_K.pb (TensorProto files)
 *   CASE_FILTER  only cases whose name contains it (for debugging one case)
 *
 * A case precast refuses at load is skipped, with the loader's reason (the unsupported op and
 * node, or the element type); a case that loads must reproduce every output of every data set
 * within rtol 1e-3, atol 1e-7 (the backend suite's tolerance; int64 outputs exactly).  One
 * line per skip and per failure, then `onnx conformance: N passed, N failed, N skipped` as
 * the last line.  Exit status 1 if any case failed, 2 on a usage or I/O problem.
 *
 * The .pb files are TensorProto messages, decoded here by a small reader of the few fields
 * test data uses (dims, data_type, float/int32/int64/double data, raw_data, name): kernels/
 * onnx.h decodes tensors only inside a model.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/model.h"
#include "kernels/onnx.h"

#define MAX_DIMS 8
#define MAX_IO 16
#define RTOL 1e-3
#define ATOL 1e-7


/* snprintf that truncates quietly (paths and messages here are far below their buffers). */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}

/* ---- TensorProto --------------------------------------------------------------------------- */

typedef struct tensor {
    char name[256];
    int32_t dtype;
    int rank;
    int64_t dims[MAX_DIMS];
    int64_t count;
    float *f;     /* FLOAT, DOUBLE (narrowed) */
    int64_t *i;   /* INT64, INT32, BOOL (widened) */
} tensor;

static void tensor_free(tensor *t)
{
    free(t->f);
    free(t->i);
    memset(t, 0, sizeof *t);
}

static size_t elem_bytes(int32_t dt)
{
    switch (dt) {
    case ONNX_DTYPE_FLOAT:
    case ONNX_DTYPE_INT32: return 4;
    case ONNX_DTYPE_INT64:
    case ONNX_DTYPE_DOUBLE: return 8;
    case ONNX_DTYPE_BOOL: return 1;
    default: return 0;
    }
}

/* Values of a repeated scalar field, packed or not, appended to v (of *n, capacity cap). */
typedef struct vals {
    uint64_t *v;
    int64_t n, cap;
} vals;

static int vals_push(vals *a, uint64_t x)
{
    if (a->n == a->cap) {
        int64_t nc = a->cap ? a->cap * 2 : 64;
        uint64_t *p = realloc(a->v, (size_t)nc * sizeof *p);
        if (p == NULL) return -1;
        a->v = p;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Decodes a TensorProto file's bytes.  Returns 0, or -1 with why filled. */
static int tensor_decode(const uint8_t *b, size_t len, tensor *t, char *why, size_t wl)
{
    memset(t, 0, sizeof *t);
    const uint8_t *p = b, *end = b + len, *raw = NULL;
    uint64_t raw_len = 0;
    vals dims = {0}, fdata = {0}, idata = {0}, ddata = {0};
    int fixed_w = 0; /* element width of fdata/ddata entries: 4 floats, 8 doubles */
    int rc = -1;
    while (p < end) {
        uint64_t key, v;
        if (!onnx_varint(&p, end, &key)) goto bad;
        int field = (int)(key >> 3), wt = (int)(key & 7);
        if (wt == 0) {
            if (!onnx_varint(&p, end, &v)) goto bad;
            if (field == 1 && vals_push(&dims, v) < 0) goto oom;
            if (field == 2) t->dtype = (int32_t)v;
            if ((field == 5 || field == 7 || field == 11) && vals_push(&idata, v) < 0) goto oom;
        } else if (wt == 2) {
            if (!onnx_varint(&p, end, &v) || v > (uint64_t)(end - p)) goto bad;
            const uint8_t *q = p, *qe = p + v;
            p = qe;
            if (field == 1 || field == 5 || field == 7 || field == 11) { /* packed varints */
                while (q < qe) {
                    uint64_t x;
                    if (!onnx_varint(&q, qe, &x)) goto bad;
                    if (vals_push(field == 1 ? &dims : &idata, x) < 0) goto oom;
                }
            } else if (field == 4 || field == 10) { /* packed floats / doubles */
                int w = field == 4 ? 4 : 8;
                fixed_w = w;
                for (; q + w <= qe; q += w) {
                    uint64_t x = 0;
                    memcpy(&x, q, (size_t)w);
                    if (vals_push(field == 4 ? &fdata : &ddata, x) < 0) goto oom;
                }
            } else if (field == 8) {
                size_t n = v < sizeof t->name - 1 ? (size_t)v : sizeof t->name - 1;
                memcpy(t->name, q, n);
                t->name[n] = '\0';
            } else if (field == 9) {
                raw = q;
                raw_len = v;
            }
        } else if (wt == 5) {
            if (end - p < 4) goto bad;
            uint64_t x = 0;
            memcpy(&x, p, 4);
            p += 4;
            if (field == 4 && vals_push(&fdata, x) < 0) goto oom;
            fixed_w = 4;
        } else if (wt == 1) {
            if (end - p < 8) goto bad;
            uint64_t x;
            memcpy(&x, p, 8);
            p += 8;
            if (field == 10 && vals_push(&ddata, x) < 0) goto oom;
        } else {
            goto bad;
        }
    }
    (void)fixed_w;
    if (dims.n > MAX_DIMS) {
        fmt(why, wl, "rank %lld", (long long)dims.n);
        goto out;
    }
    t->rank = (int)dims.n;
    t->count = 1;
    for (int k = 0; k < t->rank; k++) {
        t->dims[k] = (int64_t)dims.v[k];
        if (t->dims[k] < 0 || t->dims[k] > ((int64_t)1 << 31)) goto bad;
        t->count *= t->dims[k];
        if (t->count > ((int64_t)1 << 31)) goto bad;
    }
    size_t eb = elem_bytes(t->dtype);
    if (eb == 0) {
        fmt(why, wl, "element type %s", onnx_dtype_str(t->dtype));
        goto out;
    }
    bool is_f = t->dtype == ONNX_DTYPE_FLOAT || t->dtype == ONNX_DTYPE_DOUBLE;
    size_t n = (size_t)t->count;
    if (is_f) t->f = malloc((n ? n : 1) * sizeof *t->f);
    else t->i = malloc((n ? n : 1) * sizeof *t->i);
    if (t->f == NULL && t->i == NULL) goto oom;
    if (raw != NULL) {
        if (raw_len != n * eb) {
            fmt(why, wl, "raw_data holds %llu bytes for %zu elements",
                     (unsigned long long)raw_len, n);
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            const uint8_t *e = raw + k * eb;
            switch (t->dtype) {
            case ONNX_DTYPE_FLOAT: memcpy(&t->f[k], e, 4); break;
            case ONNX_DTYPE_DOUBLE: {
                double d;
                memcpy(&d, e, 8);
                t->f[k] = (float)d;
                break;
            }
            case ONNX_DTYPE_INT64: memcpy(&t->i[k], e, 8); break;
            case ONNX_DTYPE_INT32: {
                int32_t x;
                memcpy(&x, e, 4);
                t->i[k] = x;
                break;
            }
            default: t->i[k] = e[0] != 0; break;
            }
        }
    } else {
        const vals *src = t->dtype == ONNX_DTYPE_FLOAT ? &fdata
                        : t->dtype == ONNX_DTYPE_DOUBLE ? &ddata : &idata;
        if ((size_t)src->n != n) {
            fmt(why, wl, "holds %lld values for %zu elements", (long long)src->n, n);
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            uint64_t x = src->v[k];
            if (t->dtype == ONNX_DTYPE_FLOAT) {
                uint32_t u = (uint32_t)x;
                memcpy(&t->f[k], &u, 4);
            } else if (t->dtype == ONNX_DTYPE_DOUBLE) {
                double d;
                memcpy(&d, &x, 8);
                t->f[k] = (float)d;
            } else if (t->dtype == ONNX_DTYPE_INT32) {
                t->i[k] = (int32_t)(uint32_t)x;
            } else {
                t->i[k] = (int64_t)x;
            }
        }
    }
    rc = 0;
    goto out;
bad:
    fmt(why, wl, "malformed TensorProto");
    goto out;
oom:
    fmt(why, wl, "out of memory");
out:
    free(dims.v);
    free(fdata.v);
    free(idata.v);
    free(ddata.v);
    if (rc != 0) tensor_free(t);
    return rc;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 1 << 12, n = 0;
    uint8_t *b = malloc(cap);
    while (b != NULL) {
        if (n == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *len = n;
    return b;
}

static int tensor_read(const char *path, tensor *t, char *why, size_t wl)
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    if (b == NULL) {
        fmt(why, wl, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = tensor_decode(b, len, t, why, wl);
    free(b);
    return rc;
}

static bool file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* ---- one case -------------------------------------------------------------------------------- */

typedef enum verdict { V_PASS, V_FAIL, V_SKIP } verdict;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shape precast uses for io i (static: its dims; batched: -1 at the batch axis, which the
 * data set fixes). Returns 0 if t fits it, filling *rows with the batch extent. */
static bool shape_fits(int rank, const int64_t *dims, const tensor *t, int64_t *rows)
{
    if (rank != t->rank) return false;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0) {
            if (rows) *rows = t->dims[k];
            continue;
        }
        if (dims[k] != t->dims[k]) return false;
    }
    return true;
}

static void shape_text(int rank, const int64_t *d, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int k = 0; k < rank && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", k ? "," : "", (long long)d[k]);
    if (at < len) snprintf(buf + at, len - at, ")");
}

/* Does the graph read input `name` where precast needs a constant (a shape, axes, k, the
 * statistics of BatchNormalization)?  Those inputs are fixed at load (model_load_bound) with
 * the data set's values. */
static bool const_slot(const onnx_model *om, const char *name)
{
    static const struct {
        const char *op;
        int from, to;
    } slots[] = {{"Reshape", 1, 1},   {"Squeeze", 1, 1}, {"Unsqueeze", 1, 1},
                 {"ReduceSum", 1, 1}, {"ReduceMean", 1, 1}, {"TopK", 1, 1},
                 {"BatchNormalization", 1, 4}, {"Dropout", 1, 2}};
    for (int64_t i = 0; i < om->n_node; i++) {
        const onnx_node *n = &om->node[i];
        for (size_t k = 0; k < sizeof slots / sizeof *slots; k++) {
            if (strcmp(n->op_type, slots[k].op) != 0) continue;
            for (int j = slots[k].from; j <= slots[k].to && j < n->n_in; j++)
                if (strcmp(n->in[j], name) == 0) return true;
        }
    }
    return false;
}

typedef struct gcase {
    const char *dir;
    char *bytes;
    size_t len;
    onnx_model *om;
    int n_in;                      /* graph inputs that are not initializers */
    const char *in_name[MAX_IO];
    bool bound[MAX_IO];
} gcase;

/* Loads the model for data set ds (inputs in t[]), binding the constant-slot inputs.
 * Returns PC_OK or the loader's status with err filled. */
static pc_status load_for(const gcase *g, tensor *t, model **m, char *err, size_t errlen)
{
    model_const_input ci[MAX_IO];
    int nb = 0;
    for (int k = 0; k < g->n_in; k++) {
        if (!g->bound[k]) continue;
        ci[nb].name = g->in_name[k];
        ci[nb].elem = t[k].f != NULL ? MODEL_ELEM_FLOAT : MODEL_ELEM_INT64;
        ci[nb].rank = t[k].rank;
        ci[nb].dims = t[k].dims;
        ci[nb].data = t[k].f != NULL ? (const void *)t[k].f : (const void *)t[k].i;
        nb++;
    }
    char path[4200];
    fmt(path, sizeof path, "%s/model.onnx", g->dir);
    pc_status st = model_load_bound(g->bytes, g->len, path, 1, ci, nb, m, err, errlen);
    if (st != PC_OK || model_is_static(*m)) return st;
    /* A graph with a batch dim: compile it for the data's batch. */
    int64_t rows = 0, dims[MAX_DIMS];
    for (int k = 0; k < g->n_in && rows == 0; k++) {
        int i = g->bound[k] ? -1 : model_input_index(*m, g->in_name[k]);
        if (i < 0) continue;
        int r = model_input_shape(*m, i, dims);
        if (!shape_fits(r, dims, &t[k], &rows)) rows = 0;
    }
    model_close(*m);
    *m = NULL;
    if (rows < 1) {
        fmt(err, errlen, "no input fits the model's shape");
        return PC_ERR_DATA;
    }
    return model_load_bound(g->bytes, g->len, path, rows, ci, nb, m, err, errlen);
}

/* Runs data set `ds` (inputs already in t[]) on model m. */
static verdict run_set(const gcase *g, model *m, const char *ds, tensor *t, char *why,
                       size_t wl)
{
    char path[4096], err[PC_ERRLEN];
    int nout = model_output_count(m);
    for (int k = 0; k < g->n_in; k++) {
        if (g->bound[k]) continue;
        int idx = model_input_index(m, g->in_name[k]);
        if (idx < 0) {
            fmt(why, wl, "input '%s' is not an input of the compiled model", g->in_name[k]);
            return V_FAIL;
        }
        int64_t dims[MAX_DIMS], rows = 1;
        int r = model_input_shape(m, idx, dims);
        bool is_f = t[k].f != NULL;
        if (!shape_fits(r, dims, &t[k], &rows) ||
            (!model_is_static(m) && rows != model_batch_rows(m))) {
            char a[128], b[128];
            shape_text(r, dims, a, sizeof a);
            shape_text(t[k].rank, t[k].dims, b, sizeof b);
            fmt(why, wl, "input %d: precast has shape %s, the data %s", k, a, b);
            return V_FAIL;
        }
        if (is_f != (model_input_elem(m, idx) == MODEL_ELEM_FLOAT)) {
            fmt(why, wl, "input %d: element type differs", k);
            return V_FAIL;
        }
        if (is_f) memcpy(model_input_buffer(m, idx), t[k].f, (size_t)t[k].count * sizeof(float));
        else memcpy(model_input_buffer(m, idx), t[k].i, (size_t)t[k].count * sizeof(int64_t));
    }
    if (model_forward(m, model_batch_rows(m), err, sizeof err) != PC_OK) {
        fmt(why, wl, "forward: %s", err);
        return V_FAIL;
    }
    for (int k = 0; k < nout; k++) {
        fmt(path, sizeof path, "%s/output_%d.pb", ds, k);
        tensor o;
        if (tensor_read(path, &o, why, wl) < 0) return V_FAIL;
        int idx = k;
        for (int j = 0; o.name[0] && j < nout; j++)
            if (strcmp(model_output_name(m, j), o.name) == 0) idx = j;
        int64_t dims[MAX_DIMS];
        int r = model_output_shape(m, idx, dims);
        for (int j = 0; j < r; j++)
            if (dims[j] < 0) dims[j] = model_batch_rows(m);
        verdict v = V_PASS;
        if (!shape_fits(r, dims, &o, NULL)) {
            char a[128], b[128];
            shape_text(r, dims, a, sizeof a);
            shape_text(o.rank, o.dims, b, sizeof b);
            fmt(why, wl, "output %d: precast has shape %s, expected %s", k, a, b);
            v = V_FAIL;
        } else if (o.f != NULL) {
            const float *got = model_output(m, idx);
            if (got == NULL) {
                fmt(why, wl, "output %d is int64, expected float", k);
                v = V_FAIL;
            }
            int64_t at = -1;
            for (int64_t e = 0; v == V_PASS && e < o.count; e++) {
                double gv = got[e], w = o.f[e];
                bool ok = (isnan(gv) && isnan(w)) || gv == w ||
                          fabs(gv - w) <= ATOL + RTOL * fabs(w);
                if (!ok) {
                    at = e;
                    break;
                }
            }
            if (at >= 0) {
                fmt(why, wl, "output %d: element %lld is %.9g, expected %.9g", k, (long long)at,
                    (double)got[at], (double)o.f[at]);
                v = V_FAIL;
            }
        } else {
            const int64_t *got = model_output_i64(m, idx);
            if (got == NULL) {
                fmt(why, wl, "output %d is float, expected integers", k);
                v = V_FAIL;
            }
            for (int64_t e = 0; v == V_PASS && e < o.count; e++)
                if (got[e] != o.i[e]) {
                    fmt(why, wl, "output %d: element %lld is %lld, expected %lld", k,
                        (long long)e, (long long)got[e], (long long)o.i[e]);
                    v = V_FAIL;
                }
        }
        tensor_free(&o);
        if (v != V_PASS) return v;
    }
    return V_PASS;
}

/* The loader's message without the file name and the list of supported ops. */
static void short_reason(const char *err, const char *path, char *out, size_t len)
{
    size_t pl = strlen(path);
    if (strncmp(err, path, pl) == 0 && strncmp(err + pl, ": ", 2) == 0) err += pl + 2;
    fmt(out, len, "%s", err);
    char *cut = strstr(out, "; supported ops:");
    if (cut) *cut = '\0';
}

static verdict run_case(const char *dir, char *why, size_t wl)
{
    char path[4096], err[PC_ERRLEN];
    fmt(path, sizeof path, "%s/model.onnx", dir);
    gcase g = {.dir = dir};
    if (model_file_read(path, &g.bytes, &g.len, err, sizeof err) != PC_OK) {
        fmt(why, wl, "%s", err);
        return V_FAIL;
    }
    /* Fewer inputs than the graph lists: an initializer may be listed as an input. */
    if (onnx_parse(g.bytes, g.len, path, &g.om, err, sizeof err) != PC_OK) {
        short_reason(err, path, why, wl);
        free(g.bytes);
        return V_SKIP;
    }
    for (int64_t i = 0; i < g.om->n_input && g.n_in < MAX_IO; i++) {
        bool init = false;
        for (int64_t k = 0; k < g.om->n_init && !init; k++)
            init = strcmp(g.om->init[k].name, g.om->input[i].name) == 0;
        if (init) continue;
        g.in_name[g.n_in] = g.om->input[i].name;
        g.bound[g.n_in] = const_slot(g.om, g.om->input[i].name);
        g.n_in++;
    }
    verdict v = V_PASS;
    int sets = 0;
    for (int s = 0; v == V_PASS; s++) {
        char ds[4096];
        fmt(ds, sizeof ds, "%s/test_data_set_%d", dir, s);
        fmt(path, sizeof path, "%s/output_0.pb", ds);
        if (!file_exists(path)) break;
        tensor t[MAX_IO];
        memset(t, 0, sizeof t);
        char w2[1024] = "";
        for (int k = 0; k < g.n_in && v == V_PASS; k++) {
            fmt(path, sizeof path, "%s/input_%d.pb", ds, k);
            char w3[900];
            if (tensor_read(path, &t[k], w3, sizeof w3) < 0) {
                /* Not a float/int tensor (uint8, strings, sequences...): no input precast takes. */
                fmt(w2, sizeof w2, "input %d: %s", k, w3);
                v = s == 0 ? V_SKIP : V_FAIL;
            }
        }
        model *m = NULL;
        if (v == V_PASS) {
            pc_status st = load_for(&g, t, &m, err, sizeof err);
            if (st != PC_OK) {
                fmt(path, sizeof path, "%s/model.onnx", dir);
                short_reason(err, path, w2, sizeof w2);
                v = s == 0 && st != PC_ERR_DATA ? V_SKIP : V_FAIL;
            }
        }
        if (v == V_PASS) v = run_set(&g, m, ds, t, w2, sizeof w2);
        if (v == V_FAIL) fmt(why, wl, "data set %d: %s", s, w2);
        if (v == V_SKIP) fmt(why, wl, "%s", w2);
        model_close(m);
        for (int k = 0; k < g.n_in; k++) tensor_free(&t[k]);
        sets++;
    }
    if (v == V_PASS && sets == 0) {
        fmt(why, wl, "no data sets");
        v = V_SKIP;
    }
    onnx_free(g.om);
    free(g.bytes);
    return v;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "/usr/share/libonnx-testdata/data";
    const char *filter = argc > 2 ? argv[2] : NULL;
    static const char *const groups[] = {"node", "pytorch-converted", "pytorch-operator",
                                         "simple"};
    int passed = 0, failed = 0, skipped = 0, found_dirs = 0;
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        char gdir[4096];
        fmt(gdir, sizeof gdir, "%s/%s", root, groups[g]);
        DIR *d = opendir(gdir);
        if (d == NULL) continue;
        found_dirs++;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            if (filter && !strstr(e->d_name, filter)) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                char **nn = realloc(names, cap * sizeof *names);
                if (nn == NULL) {
                    fprintf(stderr, "onnx_conformance: out of memory\n");
                    return 2;
                }
                names = nn;
            }
            names[n] = strdup(e->d_name);
            if (names[n] == NULL) return 2;
            n++;
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char dir[8192], why[2048] = "";
            fmt(dir, sizeof dir, "%s/%s", gdir, names[i]);
            char mp[8300];
            fmt(mp, sizeof mp, "%s/model.onnx", dir);
            if (file_exists(mp)) {
                verdict v = run_case(dir, why, sizeof why);
                if (v == V_PASS) passed++;
                else if (v == V_FAIL) failed++;
                else skipped++;
                if (v != V_PASS)
                    printf("%s %s/%s: %s\n", v == V_FAIL ? "FAIL" : "skip", groups[g], names[i],
                           why);
            }
            free(names[i]);
        }
        free(names);
    }
    if (found_dirs == 0) {
        fprintf(stderr, "onnx_conformance: no test cases under %s (install libonnx-testdata)\n",
                root);
        return 2;
    }
    printf("onnx conformance: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed > 0 ? 1 : 0;
}
