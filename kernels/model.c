/*
 * model.c — compile an ONNX graph into a plan of kernel calls, and run it; see model.h.
 *
 * Compilation, in order:
 *   1. onnx_parse (kernels/onnx.c) decodes the file.
 *   2. Every name in the graph is interned in a value table; uses are counted (node inputs and
 *      graph outputs), so that fusions can tell whether an intermediate has other readers.
 *   3. Initializers become constants; graph inputs (minus initializers) get their shapes with
 *      the batch dim set to batch_rows.
 *   4. Nodes are compiled in file order, which ONNX requires to be topological: a node that
 *      reads a value nobody defined yet is an error naming the node.  Each node either
 *      becomes a step, is folded into the step before it (BatchNormalization, bias Add, ReLU),
 *      or aliases its input (Identity, Dropout, Flatten).  Shapes are inferred as we go.
 *   5. Liveness: each step's output gets a buffer; buffers whose values are dead are reused.
 *      Graph inputs and outputs keep their own buffers.
 *   6. One block holds parameters and all buffers; steps get their pointers into it.
 *
 * Physical layout: runtime tensors are stored batch-outermost, row-major over the remaining
 * dims.  An input whose symbolic dim is axis 1 of a 2-D tensor (shape (K, N)) is therefore
 * stored as (N, K) — its ONNX transpose — which is exactly what a Gemm with transA=1 wants.
 */
#include "kernels/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/onnx.h"
#include "kernels/ops.h"

#define MAX_RANK ONNX_MAX_RANK
#define MAX_NAMES ((int64_t)1 << 24) /* values in one graph; far above any real model */
#define ALIGN 64
#define MAX_BUFFER_ELEMS ((int64_t)1 << 40) /* per tensor, so that byte sizes never overflow */
#define SUPPORTED_OPS                                                                        \
    "Gemm, MatMul, Add, Mul, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, "         \
    "BatchNormalization, Dropout, Identity, Flatten, Constant"

/* ---- the compiled model -------------------------------------------------------------------- */

typedef enum step_kind {
    ST_DENSE,      /* ops_dense (+ bias, + fused act) */
    ST_RELU,
    ST_LEAKY,
    ST_SIGMOID,
    ST_TANH,
    ST_SOFTMAX,
    ST_LOGSOFTMAX,
    ST_ADD,        /* two runtime tensors of one shape */
    ST_MUL,
    ST_ADD_ROW,    /* runtime tensor + constant row */
    ST_MUL_ROW,
    ST_AFFINE      /* per-channel scale and shift (BatchNormalization not folded) */
} step_kind;

typedef struct step {
    step_kind kind;
    int in, in2, out;       /* value ids while compiling */
    int w, b, aux;          /* parameter buffer ids, -1 if none */
    int64_t C, OC;          /* dense: in and out widths; row ops: N = row length; affine: C */
    int64_t per_row;        /* kernel rows per batch row (row ops), elements per batch row
                               (element-wise), inner size (affine) */
    bool w_oc_c;
    ops_act act;
    float alpha;
    char desc[120];         /* for model_describe */
    /* resolved at the end of compilation */
    float *pin, *pin2, *pout;
    const float *pw, *pb, *paux;
} step;

typedef struct model_io {
    char *name;
    model_elem elem;
    int rank;
    int64_t dims[MAX_RANK];
    int batch_axis;
    char *batch_sym;        /* the dim_param, or NULL */
    int64_t width;
    int buf;
    void *ptr;
    model_final final;
} model_io;

struct model {
    char *name;
    int64_t batch_rows;
    int64_t ir_version, opset;
    char *producer;
    int n_in, n_out, n_step, n_ops;
    model_io *in, *out;
    step *steps;
    struct opcount {
        char *op;
        int64_t n;
    } *ops;
    void *block;
    size_t block_bytes, param_bytes;
    int64_t params;
    double flops;
};

/* ---- compile-time state ---------------------------------------------------------------------- */

typedef struct cval {
    const char *name;
    bool defined, is_const, is_output, is_input;
    int elem;                /* ONNX_DTYPE_FLOAT or ONNX_DTYPE_INT64 */
    int rank;
    int64_t dims[MAX_RANK];  /* runtime values: dims[batch_axis] == batch_rows */
    int batch_axis;          /* -1 for constants */
    int64_t count;           /* constants: number of elements */
    const float *cf;         /* constants: data (borrowed from the parsed file) */
    const int64_t *ci;
    int alias;               /* the runtime value whose buffer this one shares, or -1 */
    int prod;                /* the step writing it, or -1 */
    int64_t uses;            /* node inputs reading it + graph outputs naming it */
    int64_t last;            /* last step reading it */
    int buf;                 /* buffer id, or -1 */
    model_final final;
} cval;

typedef struct cbuf {
    size_t bytes;
    size_t off;
    float *param;            /* parameter data to copy into the block (owned), or NULL */
    int64_t free_after;      /* slot buffers: the step after which the slot is free */
    bool slot;               /* a reusable activation buffer */
} cbuf;

typedef struct comp {
    const char *file;
    char *err;
    size_t errlen;
    pc_status st;
    const onnx_model *om;
    int64_t B;
    cval *v;
    int64_t nv, capv;
    int *hash;
    size_t hmask;
    step *s;
    int64_t ns, caps;
    cbuf *b;
    int64_t nb, capb;
    model *m;
} comp;

__attribute__((format(printf, 2, 3))) static int cfail(comp *c, const char *fmt, ...)
{
    char msg[PC_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = pc_err(c->err, c->errlen, PC_ERR_CONFIG, "%s: %s", c->file, msg);
    return -1;
}

static int coom(comp *c)
{
    c->st = pc_err(c->err, c->errlen, PC_ERR_INTERNAL, "%s: out of memory compiling the model",
                   c->file);
    return -1;
}

/* Grows *arr (of *cap elements of size `size`) to hold at least `need`; -1 if out of memory. */
static int grow(comp *c, void **arr, int64_t *cap, int64_t need, size_t size)
{
    if (need <= *cap) return 0;
    int64_t ncap = *cap > 0 ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * size);
    if (p == NULL) return coom(c);
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* ---- value table -------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The id of the value called `name`, created (undefined) if `create`; -1 if absent. */
static int val_lookup(comp *c, const char *name, bool create)
{
    size_t i = (size_t)hash_str(name) & c->hmask;
    while (c->hash[i] >= 0) {
        if (strcmp(c->v[c->hash[i]].name, name) == 0) return c->hash[i];
        i = (i + 1) & c->hmask;
    }
    if (!create) return -1;
    /* The table was sized for every name in the graph, so it never fills up. */
    if (grow(c, (void **)&c->v, &c->capv, c->nv + 1, sizeof *c->v) < 0) return -2;
    int id = (int)c->nv++;
    cval *v = &c->v[id];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->alias = -1;
    v->prod = -1;
    v->buf = -1;
    v->last = -1;
    v->batch_axis = -1;
    c->hash[i] = id;
    return id;
}

static int root(const comp *c, int id)
{
    return c->v[id].alias >= 0 ? c->v[id].alias : id;
}

static int64_t val_width(const cval *v)
{
    int64_t w = 1;
    for (int i = 0; i < v->rank; i++)
        if (i != v->batch_axis) w *= v->dims[i];
    return w;
}

/* "(N, 4, 3)": the shape with the batch dim shown as N. */
static const char *shape_str(const cval *v, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "(");
    for (int i = 0; i < v->rank && at < len; i++) {
        if (i == v->batch_axis)
            at += (size_t)snprintf(buf + at, len - at, "%sN", i ? ", " : "");
        else
            at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "",
                                   (long long)v->dims[i]);
    }
    if (at < len) snprintf(buf + at, len - at, ")");
    return buf;
}

/* ---- buffers and parameters ------------------------------------------------------------------ */

/* A new buffer of `bytes`; if `param` is given, the buffer takes ownership of it. */
static int buf_new(comp *c, size_t bytes, float *param, bool slot)
{
    if (grow(c, (void **)&c->b, &c->capb, c->nb + 1, sizeof *c->b) < 0) {
        free(param);
        return -1;
    }
    cbuf *b = &c->b[c->nb];
    b->bytes = bytes;
    b->param = param;
    b->slot = slot;
    b->free_after = -1;
    return (int)c->nb++;
}

/* A parameter of n floats, copied from src (or zeroed if src is NULL); returns its buffer id.
 * The data stays reachable through c->b[id].param until the block is laid out. */
static int param_new(comp *c, const float *src, int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (p == NULL) return coom(c);
    if (src != NULL && n > 0) memcpy(p, src, (size_t)n * sizeof *p);
    return buf_new(c, (size_t)n * sizeof *p, p, false);
}

static int step_new(comp *c, step_kind kind, int in, int out)
{
    if (grow(c, (void **)&c->s, &c->caps, c->ns + 1, sizeof *c->s) < 0) return -1;
    step *s = &c->s[c->ns];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->in = in;
    s->in2 = -1;
    s->out = out;
    s->w = s->b = s->aux = -1;
    c->v[out].prod = (int)c->ns;
    return (int)c->ns++;
}

/* ---- node helpers ---------------------------------------------------------------------------- */

typedef struct nctx {
    const onnx_node *n;
    char label[300];   /* "node 'Gemm_0' (op Gemm)" */
} nctx;

/* Input i of the node: its value id, -2 if omitted (optional), -1 on error (undefined). */
static int node_in(comp *c, nctx *x, int64_t i)
{
    if (i >= x->n->n_in || x->n->in[i][0] == '\0') return -2;
    int id = val_lookup(c, x->n->in[i], false);
    if (id < 0 || !c->v[id].defined)
        return cfail(c, "%s reads '%.200s', which no earlier node, initializer or graph input "
                        "defines (graph not in topological order?)",
                     x->label, x->n->in[i]);
    return id;
}

static int node_in_req(comp *c, nctx *x, int64_t i, const char *what)
{
    int id = node_in(c, x, i);
    if (id == -2) return cfail(c, "%s: input %lld (%s) is missing", x->label, (long long)i, what);
    return id;
}

/* Defines output k of the node as a runtime float value shaped like `like` (or as given
 * later by the caller); returns its id or -1. */
static int node_out(comp *c, nctx *x, int64_t k)
{
    if (k >= x->n->n_out || x->n->out[k][0] == '\0')
        return cfail(c, "%s has no output %lld", x->label, (long long)k);
    int id = val_lookup(c, x->n->out[k], false);
    if (id < 0) return coom(c); /* interned in pass A; cannot happen */
    if (c->v[id].defined)
        return cfail(c, "%s defines '%.200s', which is already defined", x->label,
                     x->n->out[k]);
    c->v[id].defined = true;
    c->v[id].elem = ONNX_DTYPE_FLOAT;
    return id;
}

static void shape_copy(cval *dst, const cval *src)
{
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->batch_axis = src->batch_axis;
}

static int attr_int(comp *c, nctx *x, const char *name, int64_t dflt, int64_t *out)
{
    const onnx_attr *a = onnx_node_attr(x->n, name);
    if (a == NULL) {
        *out = dflt;
        return 0;
    }
    if (a->type != ONNX_ATTR_INT)
        return cfail(c, "%s: attribute '%s' should be an int", x->label, name);
    *out = a->i;
    return 0;
}

static int attr_float(comp *c, nctx *x, const char *name, float dflt, float *out)
{
    const onnx_attr *a = onnx_node_attr(x->n, name);
    if (a == NULL) {
        *out = dflt;
        return 0;
    }
    if (a->type != ONNX_ATTR_FLOAT)
        return cfail(c, "%s: attribute '%s' should be a float", x->label, name);
    *out = a->f;
    return 0;
}

/* REQUIRES the value to be a runtime float tensor (what every compute kernel reads). */
static int need_runtime(comp *c, nctx *x, int id, const char *what)
{
    const cval *v = &c->v[id];
    if (v->is_const)
        return cfail(c, "%s: %s '%.200s' is a constant; precast needs it to depend on the "
                        "input rows",
                     x->label, what, v->name);
    if (v->elem != ONNX_DTYPE_FLOAT)
        return cfail(c, "%s: %s '%.200s' is int64; this op needs float32", x->label, what,
                     v->name);
    return 0;
}

static int need_batch_first(comp *c, nctx *x, int id, const char *what)
{
    const cval *v = &c->v[id];
    if (v->batch_axis != 0)
        return cfail(c, "%s: %s '%.200s' has its batch dim at axis %d; this op needs it first",
                     x->label, what, v->name, v->batch_axis);
    return 0;
}

static int need_const_float(comp *c, nctx *x, int id, const char *what)
{
    const cval *v = &c->v[id];
    if (!v->is_const)
        return cfail(c, "%s: %s '%.200s' must be a constant (an initializer); a computed %s "
                        "is not supported",
                     x->label, what, v->name, what);
    if (v->cf == NULL)
        return cfail(c, "%s: %s '%.200s' must be float", x->label, what, v->name);
    return 0;
}

/* The dense step that writes the value `id` (through aliases), if its result may be changed
 * in place: it has no other reader, is no graph output and has no activation yet. */
static int fusable_dense(const comp *c, int id)
{
    int r = root(c, id);
    const cval *v = &c->v[r];
    if (v->prod < 0 || v->uses != 1 || v->is_output || v->is_input) return -1;
    const step *s = &c->s[v->prod];
    if (s->kind != ST_DENSE || s->act != OPS_ACT_NONE || s->out != r) return -1;
    return v->prod;
}

/* Makes the step write `out` instead of its current output (whose only reader is being
 * folded into the step). */
static void step_retarget(comp *c, int si, int out)
{
    c->v[c->s[si].out].prod = -1;
    c->s[si].out = out;
    c->v[out].prod = si;
}

static void desc_append(step *s, const char *fmt, const char *arg)
{
    size_t at = strlen(s->desc);
    if (at < sizeof s->desc) snprintf(s->desc + at, sizeof s->desc - at, fmt, arg);
}

/* Is constant k a row vector for a runtime tensor whose last dim is N: all dims 1 except
 * the last, which is N; or a single element? */
static bool is_row_of(const cval *k, int64_t N)
{
    if (k->count == 1) return true;
    if (k->rank < 1 || k->dims[k->rank - 1] != N) return false;
    for (int i = 0; i + 1 < k->rank; i++)
        if (k->dims[i] != 1) return false;
    return true;
}

/* A row parameter of N floats from constant k (a row of N or one element), scaled. */
static int row_param(comp *c, const cval *k, int64_t N, double scale)
{
    int id = param_new(c, NULL, N);
    if (id < 0) return -1;
    float *p = c->b[id].param;
    for (int64_t j = 0; j < N; j++) p[j] = (float)(scale * k->cf[k->count == 1 ? 0 : j]);
    return id;
}

/* ---- ops ------------------------------------------------------------------------------------ */

static int op_alias(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0) return -1;
    if (strcmp(x->n->op_type, "Dropout") == 0) {
        int tm = node_in(c, x, 2);
        if (tm == -1) return -1;
        if (tm >= 0 && (!c->v[tm].is_const || c->v[tm].count != 1 ||
                        (c->v[tm].ci ? c->v[tm].ci[0] : c->v[tm].cf[0]) != 0))
            return cfail(c, "%s: training_mode must be a constant false", x->label);
        if (x->n->n_out > 1 && x->n->out[1][0] != '\0') {
            int mk = val_lookup(c, x->n->out[1], false);
            if (mk >= 0 && c->v[mk].uses > 0)
                return cfail(c, "%s: the mask output is not supported", x->label);
        }
    }
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    cval *o = &c->v[out], *i = &c->v[in];
    if (i->is_const) { /* a constant passed through: the same constant */
        bool def = o->defined;
        int64_t uses = o->uses;
        bool isout = o->is_output;
        const char *name = o->name;
        *o = *i;
        o->name = name;
        o->defined = def;
        o->uses = uses;
        o->is_output = isout;
        if (strcmp(x->n->op_type, "Flatten") == 0) { /* (prod dims[:axis], prod dims[axis:]) */
            int64_t axis = 0;
            if (attr_int(c, x, "axis", 1, &axis) < 0) return -1;
            if (axis < 0) axis += o->rank;
            if (axis < 0 || axis > o->rank)
                return cfail(c, "%s: axis %lld is out of range", x->label, (long long)axis);
            int64_t outer = 1;
            for (int k = 0; k < axis; k++) outer *= o->dims[k];
            o->rank = 2;
            o->dims[0] = outer;
            o->dims[1] = outer > 0 ? o->count / outer : 0;
        }
        return 0;
    }
    int r = root(c, in);
    shape_copy(o, i);
    o->elem = i->elem;
    o->alias = r;
    o->final = i->final;
    /* This node's read of `in` is replaced by the reads of `out`. */
    c->v[r].uses += o->uses - 1;
    if (o->is_output) c->v[r].is_output = true;
    if (strcmp(x->n->op_type, "Flatten") == 0) {
        int64_t axis = 0;
        if (attr_int(c, x, "axis", 1, &axis) < 0) return -1;
        if (axis < 0) axis += i->rank;
        if (i->batch_axis != 0 || axis != 1)
            return cfail(c, "%s: only Flatten(axis=1) with the batch dim first is supported "
                            "(axis %lld of %s)",
                         x->label, (long long)axis, shape_str(i, (char[96]){0}, 96));
        o->rank = 2;
        o->dims[0] = c->B;
        o->dims[1] = val_width(i);
        o->batch_axis = 0;
    }
    return 0;
}

static int op_const(comp *c, nctx *x)
{
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    cval *o = &c->v[out];
    const onnx_attr *a = NULL;
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    for (size_t i = 0; i < sizeof names / sizeof *names && a == NULL; i++)
        a = onnx_node_attr(x->n, names[i]);
    if (a == NULL)
        return cfail(c, "%s: only value, value_float(s) and value_int(s) are supported",
                     x->label);
    o->is_const = true;
    o->batch_axis = -1;
    switch (a->type) {
    case ONNX_ATTR_TENSOR:
        o->rank = a->t->rank;
        memcpy(o->dims, a->t->dims, sizeof o->dims);
        o->count = a->t->count;
        o->cf = a->t->f;
        o->ci = a->t->i;
        break;
    case ONNX_ATTR_FLOAT: o->rank = 0; o->count = 1; o->cf = &a->f; break;
    case ONNX_ATTR_INT: o->rank = 0; o->count = 1; o->ci = &a->i; break;
    case ONNX_ATTR_FLOATS: o->rank = 1; o->dims[0] = o->count = a->n; o->cf = a->floats; break;
    case ONNX_ATTR_INTS: o->rank = 1; o->dims[0] = o->count = a->n; o->ci = a->ints; break;
    default: return cfail(c, "%s: attribute '%s' has an unsupported type", x->label, a->name);
    }
    o->elem = o->cf != NULL ? ONNX_DTYPE_FLOAT : ONNX_DTYPE_INT64;
    return 0;
}

/* Gemm: Y = alpha * A' B' + beta * C;  MatMul: Y = A B. B (and C) must be constants. */
static int op_dense(comp *c, nctx *x, bool gemm)
{
    int a = node_in_req(c, x, 0, "A"), bm;
    if (a < 0 || (bm = node_in_req(c, x, 1, "B")) < 0) return -1;
    int cm = gemm ? node_in(c, x, 2) : -2;
    if (cm == -1) return -1;
    int64_t ta = 0, tb = 0;
    float alpha = 1.0f, beta = 1.0f;
    if (gemm && (attr_int(c, x, "transA", 0, &ta) < 0 || attr_int(c, x, "transB", 0, &tb) < 0 ||
                 attr_float(c, x, "alpha", 1.0f, &alpha) < 0 ||
                 attr_float(c, x, "beta", 1.0f, &beta) < 0))
        return -1;
    if (need_runtime(c, x, a, "A") < 0 || need_const_float(c, x, bm, "B") < 0) return -1;
    const cval *A = &c->v[a], *Bv = &c->v[bm];
    char sa[96], sb[96];
    if (A->rank != 2)
        return cfail(c, "%s: A '%.200s' is %s; only 2-D inputs are supported", x->label,
                     A->name, shape_str(A, sa, sizeof sa));
    if (Bv->rank != 2)
        return cfail(c, "%s: B '%.200s' is %s; it must be 2-D", x->label, Bv->name,
                     shape_str(Bv, sb, sizeof sb));
    /* Rows must stay independent: the batch dim must be A's row dim after transA. */
    int want_axis = ta ? 1 : 0;
    if (A->batch_axis != want_axis)
        return cfail(c, "%s: A '%.200s' %s with transA=%lld would mix rows of the batch", x->label,
                     A->name, shape_str(A, sa, sizeof sa), (long long)ta);
    int64_t K = A->dims[ta ? 0 : 1];
    int64_t bk = Bv->dims[tb ? 1 : 0], OC = Bv->dims[tb ? 0 : 1];
    if (bk != K)
        return cfail(c, "%s: A '%.200s' %s has %lld features but B '%.200s' %s%s expects %lld",
                     x->label, A->name, shape_str(A, sa, sizeof sa), (long long)K, Bv->name,
                     shape_str(Bv, sb, sizeof sb), tb ? " (transB=1)" : "", (long long)bk);
    if (K <= 0 || OC <= 0)
        return cfail(c, "%s: empty weight %s", x->label, shape_str(Bv, sb, sizeof sb));
    int w = param_new(c, Bv->cf, Bv->count);
    if (w < 0) return -1;
    if (alpha != 1.0f)
        for (int64_t i = 0; i < Bv->count; i++) c->b[w].param[i] *= alpha;
    int bias = -1;
    if (cm >= 0) {
        if (need_const_float(c, x, cm, "C") < 0) return -1;
        const cval *Cv = &c->v[cm];
        if (!is_row_of(Cv, OC) || Cv->rank > 2)
            return cfail(c, "%s: C '%.200s' %s does not broadcast to (N, %lld)", x->label,
                         Cv->name, shape_str(Cv, sb, sizeof sb), (long long)OC);
        if (beta != 0.0f && (bias = row_param(c, Cv, OC, beta)) < 0) return -1;
    }
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    cval *o = &c->v[out];
    o->rank = 2;
    o->dims[0] = c->B;
    o->dims[1] = OC;
    o->batch_axis = 0;
    int si = step_new(c, ST_DENSE, a, out);
    if (si < 0) return -1;
    step *s = &c->s[si];
    s->w = w;
    s->b = bias;
    s->C = K;
    s->OC = OC;
    s->w_oc_c = tb != 0;
    snprintf(s->desc, sizeof s->desc, "dense %lld->%lld%s", (long long)K, (long long)OC,
             bias >= 0 ? " +bias" : "");
    return 0;
}

static int op_unary(comp *c, nctx *x, step_kind kind)
{
    int in = node_in_req(c, x, 0, "X");
    if (in < 0 || need_runtime(c, x, in, "X") < 0) return -1;
    float alpha = 0.0f;
    if (kind == ST_LEAKY && attr_float(c, x, "alpha", 0.01f, &alpha) < 0) return -1;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    shape_copy(&c->v[out], &c->v[in]);
    const char *name = kind == ST_RELU ? "relu" : kind == ST_LEAKY ? "leaky_relu"
                     : kind == ST_SIGMOID ? "sigmoid" : "tanh";
    int di = (kind == ST_RELU || kind == ST_LEAKY) ? fusable_dense(c, in) : -1;
    if (di >= 0) {
        step *s = &c->s[di];
        s->act = kind == ST_RELU ? OPS_ACT_RELU : OPS_ACT_LEAKY_RELU;
        s->alpha = alpha;
        step_retarget(c, di, out);
        desc_append(s, " %s", name);
        return 0;
    }
    if (kind == ST_SIGMOID) c->v[out].final = MODEL_FINAL_SIGMOID;
    int si = step_new(c, kind, in, out);
    if (si < 0) return -1;
    step *s = &c->s[si];
    s->alpha = alpha;
    s->per_row = val_width(&c->v[in]);
    snprintf(s->desc, sizeof s->desc, "%s", name);
    return 0;
}

static int op_softmax(comp *c, nctx *x, bool log)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0 || need_runtime(c, x, in, "input") < 0 || need_batch_first(c, x, in, "input") < 0)
        return -1;
    const cval *v = &c->v[in];
    int64_t axis = 0;
    if (attr_int(c, x, "axis", c->om->opset < 13 ? 1 : -1, &axis) < 0) return -1;
    if (axis < 0) axis += v->rank;
    char sh[96];
    if (axis <= 0 || axis >= v->rank)
        return cfail(c, "%s: axis %lld of %s is not supported: softmax must run within a row",
                     x->label, (long long)axis, shape_str(v, sh, sizeof sh));
    /* Opset 13 normalises along one axis; before, over the flattened dims [axis, rank). */
    if (c->om->opset >= 13 && axis != v->rank - 1)
        return cfail(c, "%s: softmax along axis %lld of %s (not the last) is not supported",
                     x->label, (long long)axis, shape_str(v, sh, sizeof sh));
    int64_t N = 1;
    for (int i = (int)axis; i < v->rank; i++) N *= v->dims[i];
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    shape_copy(&c->v[out], v);
    c->v[out].final = log ? MODEL_FINAL_LOGSOFTMAX : MODEL_FINAL_SOFTMAX;
    int si = step_new(c, log ? ST_LOGSOFTMAX : ST_SOFTMAX, in, out);
    if (si < 0) return -1;
    c->s[si].C = N;
    c->s[si].per_row = val_width(&c->v[in]) / N;
    snprintf(c->s[si].desc, sizeof c->s[si].desc, "%s over %lld", log ? "log_softmax" : "softmax",
             (long long)N);
    return 0;
}

static int op_binary(comp *c, nctx *x, bool add)
{
    int a = node_in_req(c, x, 0, "A"), b;
    if (a < 0 || (b = node_in_req(c, x, 1, "B")) < 0) return -1;
    const char *name = add ? "add" : "mul";
    char s1[96], s2[96];
    if (c->v[a].is_const && !c->v[b].is_const) { /* both ops commute */
        int t = a;
        a = b;
        b = t;
    }
    if (need_runtime(c, x, a, "input") < 0) return -1;
    const cval *A = &c->v[a], *Bv = &c->v[b];
    if (!Bv->is_const) {
        if (need_runtime(c, x, b, "input") < 0) return -1;
        if (A->rank != Bv->rank || A->batch_axis != Bv->batch_axis ||
            memcmp(A->dims, Bv->dims, sizeof A->dims) != 0)
            return cfail(c, "%s: shapes %s and %s differ; broadcasting between two computed "
                            "tensors is not supported yet",
                         x->label, shape_str(A, s1, sizeof s1), shape_str(Bv, s2, sizeof s2));
        int out = node_out(c, x, 0);
        if (out < 0) return -1;
        shape_copy(&c->v[out], A);
        int si = step_new(c, add ? ST_ADD : ST_MUL, a, out);
        if (si < 0) return -1;
        c->s[si].in2 = b;
        c->s[si].per_row = val_width(A);
        snprintf(c->s[si].desc, sizeof c->s[si].desc, "%s", name);
        return 0;
    }
    if (need_const_float(c, x, b, "B") < 0 || need_batch_first(c, x, a, "A") < 0) return -1;
    int64_t N = A->rank >= 2 ? A->dims[A->rank - 1] : 1;
    if (!is_row_of(Bv, N) || Bv->rank > A->rank)
        return cfail(c, "%s: constant '%.200s' %s does not broadcast along the rows of %s",
                     x->label, Bv->name, shape_str(Bv, s2, sizeof s2),
                     shape_str(A, s1, sizeof s1));
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    shape_copy(&c->v[out], A);
    int di = add ? fusable_dense(c, a) : -1;
    if (di >= 0 && c->s[di].b < 0 && A->rank == 2) { /* MatMul + Add: the dense's bias */
        int bias = row_param(c, Bv, N, 1.0);
        if (bias < 0) return -1;
        c->s[di].b = bias;
        step_retarget(c, di, out);
        desc_append(&c->s[di], "%s", " +bias");
        return 0;
    }
    int row = row_param(c, Bv, N, 1.0);
    if (row < 0) return -1;
    int si = step_new(c, add ? ST_ADD_ROW : ST_MUL_ROW, a, out);
    if (si < 0) return -1;
    c->s[si].aux = row;
    c->s[si].C = N;
    c->s[si].per_row = val_width(A) / N;
    snprintf(c->s[si].desc, sizeof c->s[si].desc, "%s row of %lld", name, (long long)N);
    return 0;
}

static int op_batchnorm(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "X");
    if (in < 0 || need_runtime(c, x, in, "X") < 0 || need_batch_first(c, x, in, "X") < 0)
        return -1;
    int p[4];
    static const char *const pn[4] = {"scale", "B", "mean", "var"};
    const cval *X = &c->v[in];
    char sh[96];
    if (X->rank < 2)
        return cfail(c, "%s: X %s needs a channel dim", x->label, shape_str(X, sh, sizeof sh));
    int64_t C = X->dims[1];
    for (int i = 0; i < 4; i++) {
        if ((p[i] = node_in_req(c, x, i + 1, pn[i])) < 0) return -1;
        if (need_const_float(c, x, p[i], pn[i]) < 0) return -1;
        if (c->v[p[i]].count != C)
            return cfail(c, "%s: %s '%.200s' has %lld values for %lld channels", x->label, pn[i],
                         c->v[p[i]].name, (long long)c->v[p[i]].count, (long long)C);
    }
    int64_t training = 0;
    float eps = 0.0f;
    if (attr_int(c, x, "training_mode", 0, &training) < 0 ||
        attr_float(c, x, "epsilon", 1e-5f, &eps) < 0)
        return -1;
    for (int64_t k = 1; k < x->n->n_out; k++) {
        int id = x->n->out[k][0] ? val_lookup(c, x->n->out[k], false) : -1;
        if (id >= 0 && c->v[id].uses > 0) training = 1;
    }
    if (training)
        return cfail(c, "%s: training mode (running statistics outputs) is not supported",
                     x->label);
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    shape_copy(&c->v[out], X);
    /* y = (x - mean) / sqrt(var + eps) * scale + B  =  x * s + t */
    int sc = param_new(c, NULL, C), sf = param_new(c, NULL, C);
    if (sc < 0 || sf < 0) return -1;
    float *s = c->b[sc].param, *t = c->b[sf].param;
    const cval *g = &c->v[p[0]], *be = &c->v[p[1]], *mu = &c->v[p[2]], *var = &c->v[p[3]];
    for (int64_t j = 0; j < C; j++) {
        double sj = (double)g->cf[j] / sqrt((double)var->cf[j] + (double)eps);
        s[j] = (float)sj;
        t[j] = (float)((double)be->cf[j] - (double)mu->cf[j] * sj);
    }
    int di = X->rank == 2 ? fusable_dense(c, in) : -1;
    if (di >= 0) { /* fold into the dense layer: W' = W * s per output channel, b' = b*s + t */
        step *d = &c->s[di];
        float *w = c->b[d->w].param;
        for (int64_t o = 0; o < d->OC; o++)
            for (int64_t k = 0; k < d->C; k++) {
                float *wv = d->w_oc_c ? &w[o * d->C + k] : &w[k * d->OC + o];
                *wv = (float)((double)*wv * s[o]);
            }
        if (d->b < 0) {
            d->b = sf;
        } else {
            float *b = c->b[d->b].param;
            for (int64_t o = 0; o < d->OC; o++) t[o] = (float)((double)b[o] * s[o] + t[o]);
            d->b = sf;
        }
        c->b[sc].bytes = 0; /* the scale is no longer needed */
        step_retarget(c, di, out);
        if (!strstr(d->desc, "+bias")) desc_append(d, "%s", " +bias");
        desc_append(d, "%s", " (batchnorm folded)");
        return 0;
    }
    int si = step_new(c, ST_AFFINE, in, out);
    if (si < 0) return -1;
    c->s[si].w = sc;
    c->s[si].b = sf;
    c->s[si].C = C;
    c->s[si].per_row = val_width(X) / C;
    snprintf(c->s[si].desc, sizeof c->s[si].desc, "batchnorm over %lld channels", (long long)C);
    return 0;
}

static int compile_node(comp *c, int64_t idx)
{
    nctx x;
    x.n = &c->om->node[idx];
    const char *op = x.n->op_type;
    if (x.n->name[0] != '\0')
        snprintf(x.label, sizeof x.label, "node '%.200s' (op %.60s)", x.n->name, op);
    else
        snprintf(x.label, sizeof x.label, "node #%lld (op %.60s)", (long long)idx, op);
    if (x.n->domain[0] != '\0' && strcmp(x.n->domain, "ai.onnx") != 0)
        return cfail(c, "%s is in domain '%.100s', which is not supported (only the default "
                        "ONNX domain is)",
                     x.label, x.n->domain);
    if (strcmp(op, "Gemm") == 0) return op_dense(c, &x, true);
    if (strcmp(op, "MatMul") == 0) return op_dense(c, &x, false);
    if (strcmp(op, "Add") == 0) return op_binary(c, &x, true);
    if (strcmp(op, "Mul") == 0) return op_binary(c, &x, false);
    if (strcmp(op, "Relu") == 0) return op_unary(c, &x, ST_RELU);
    if (strcmp(op, "LeakyRelu") == 0) return op_unary(c, &x, ST_LEAKY);
    if (strcmp(op, "Sigmoid") == 0) return op_unary(c, &x, ST_SIGMOID);
    if (strcmp(op, "Tanh") == 0) return op_unary(c, &x, ST_TANH);
    if (strcmp(op, "Softmax") == 0) return op_softmax(c, &x, false);
    if (strcmp(op, "LogSoftmax") == 0) return op_softmax(c, &x, true);
    if (strcmp(op, "BatchNormalization") == 0) return op_batchnorm(c, &x);
    if (strcmp(op, "Dropout") == 0 || strcmp(op, "Identity") == 0 || strcmp(op, "Flatten") == 0)
        return op_alias(c, &x);
    if (strcmp(op, "Constant") == 0) return op_const(c, &x);
    return cfail(c, "%s is not supported; supported ops: " SUPPORTED_OPS, x.label);
}

/* ---- graph inputs and outputs ---------------------------------------------------------------- */

static int compile_inputs(comp *c)
{
    const onnx_model *om = c->om;
    model *m = c->m;
    m->in = calloc((size_t)om->n_input + 1, sizeof *m->in);
    if (m->in == NULL) return coom(c);
    for (int64_t i = 0; i < om->n_input; i++) {
        const onnx_value_info *vi = &om->input[i];
        int id = val_lookup(c, vi->name, false);
        cval *v = &c->v[id];
        if (v->is_const) continue; /* an initializer listed as an input: a constant */
        if (v->defined) return cfail(c, "graph input '%.200s' is listed twice", vi->name);
        if (vi->elem_type != ONNX_DTYPE_FLOAT && vi->elem_type != ONNX_DTYPE_INT64)
            return cfail(c, "graph input '%.200s' has element type %s; inputs must be float32 "
                            "or int64 tensors",
                         vi->name, vi->elem_type ? onnx_dtype_str(vi->elem_type) : "(none)");
        if (!vi->has_shape || vi->rank < 1)
            return cfail(c, "graph input '%.200s' has no shape; precast needs (N, features)",
                         vi->name);
        /* The batch dim: the one symbolic dim, or axis 0 if all are numbers (exported with a
         * fixed batch size, which precast replaces by its own). */
        int axis = -1;
        for (int k = 0; k < vi->rank; k++) {
            if (vi->dims[k] >= 0) continue;
            if (axis >= 0)
                return cfail(c, "graph input '%.200s': dims %d and %d are both symbolic; only "
                                "the batch dim may be",
                             vi->name, axis, k);
            axis = k;
        }
        if (axis < 0) axis = 0;
        v->defined = true;
        v->is_input = true;
        v->elem = vi->elem_type;
        v->rank = vi->rank;
        v->batch_axis = axis;
        int64_t width = 1;
        for (int k = 0; k < vi->rank; k++) {
            v->dims[k] = k == axis ? c->B : vi->dims[k];
            if (k == axis) continue;
            if (vi->dims[k] <= 0 || width > (ONNX_MAX_ELEMS - 1) / vi->dims[k])
                return cfail(c, "graph input '%.200s': dim %d (%lld) is not supported", vi->name,
                             k, (long long)vi->dims[k]);
            width *= vi->dims[k];
        }
        if (c->B > MAX_BUFFER_ELEMS / width)
            return cfail(c, "graph input '%.200s' would need %lld x %lld elements; lower "
                            "batch_rows",
                         vi->name, (long long)c->B, (long long)width);
        model_io *io = &m->in[m->n_in++];
        io->name = dupstr(vi->name);
        io->batch_sym = vi->dim_param[axis] ? dupstr(vi->dim_param[axis]) : NULL;
        if (io->name == NULL || (vi->dim_param[axis] && io->batch_sym == NULL)) return coom(c);
        io->elem = (model_elem)vi->elem_type;
        io->rank = v->rank;
        memcpy(io->dims, v->dims, sizeof io->dims);
        io->batch_axis = axis;
        io->width = width;
        io->buf = buf_new(c, (size_t)(c->B * width) * 8, NULL, false);
        if (io->buf < 0) return -1;
        if (io->elem == MODEL_ELEM_FLOAT) c->b[io->buf].bytes /= 2;
        v->buf = io->buf;
    }
    if (m->n_in == 0) return cfail(c, "the graph has no inputs (other than initializers)");
    return 0;
}

static int compile_outputs(comp *c)
{
    const onnx_model *om = c->om;
    model *m = c->m;
    if (om->n_output == 0) return cfail(c, "the graph has no outputs");
    m->out = calloc((size_t)om->n_output, sizeof *m->out);
    if (m->out == NULL) return coom(c);
    for (int64_t i = 0; i < om->n_output; i++) {
        const char *name = om->output[i].name;
        int id = val_lookup(c, name, false);
        if (id < 0 || !c->v[id].defined)
            return cfail(c, "graph output '%.200s' is not computed by any node", name);
        cval *v = &c->v[id];
        if (v->is_const)
            return cfail(c, "graph output '%.200s' is a constant; it does not depend on the rows",
                         name);
        if (v->elem != ONNX_DTYPE_FLOAT)
            return cfail(c, "graph output '%.200s' is int64; only float outputs are supported",
                         name);
        char sh[96];
        if (v->batch_axis != 0)
            return cfail(c, "graph output '%.200s' %s does not have the batch dim first", name,
                         shape_str(v, sh, sizeof sh));
        model_io *io = &m->out[m->n_out++];
        const char *sym = om->output[i].rank > 0 ? om->output[i].dim_param[0] : NULL;
        io->name = dupstr(name);
        io->batch_sym = sym != NULL ? dupstr(sym) : NULL;
        if (io->name == NULL || (sym != NULL && io->batch_sym == NULL)) return coom(c);
        io->elem = MODEL_ELEM_FLOAT;
        io->rank = v->rank;
        memcpy(io->dims, v->dims, sizeof io->dims);
        io->batch_axis = 0;
        io->width = val_width(v);
        io->final = v->final;
        io->buf = -1;
        c->v[root(c, id)].is_output = true;
    }
    return 0;
}

/* ---- liveness, buffers, the block ------------------------------------------------------------ */

static size_t val_bytes(const comp *c, const cval *v)
{
    return (size_t)(c->B * val_width(v)) * (v->elem == ONNX_DTYPE_INT64 ? 8 : 4);
}

static bool step_inplace_ok(step_kind k)
{
    return k != ST_DENSE;
}

static int assign_buffers(comp *c)
{
    /* Last reader of every root value; graph outputs live to the end. */
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        s->in = root(c, s->in);
        if (s->in2 >= 0) s->in2 = root(c, s->in2);
        c->v[s->in].last = i;
        if (s->in2 >= 0) c->v[s->in2].last = i;
        if (c->v[s->out].last < i) c->v[s->out].last = i;
    }
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        cval *o = &c->v[s->out];
        if (c->B > MAX_BUFFER_ELEMS / val_width(o))
            return cfail(c, "'%.200s' would need %lld x %lld elements; lower batch_rows", o->name,
                         (long long)c->B, (long long)val_width(o));
        size_t need = val_bytes(c, o);
        if (o->is_output) {
            o->buf = buf_new(c, need, NULL, false);
            if (o->buf < 0) return -1;
            continue;
        }
        int pick = -1;
        const cval *in = &c->v[s->in];
        if (step_inplace_ok(s->kind) && in->last == i && in->buf >= 0 && c->b[in->buf].slot &&
            s->in2 != s->in && val_bytes(c, in) == need)
            pick = in->buf; /* the input dies here: write over it */
        for (int64_t b = 0; b < c->nb && pick < 0; b++) {
            cbuf *cb = &c->b[b];
            if (!cb->slot || cb->free_after >= i) continue;
            if (cb->bytes >= need) pick = (int)b;
        }
        for (int64_t b = 0; b < c->nb && pick < 0; b++) { /* none large enough: grow one */
            cbuf *cb = &c->b[b];
            if (cb->slot && cb->free_after < i) pick = (int)b;
        }
        if (pick < 0 && (pick = buf_new(c, need, NULL, true)) < 0) return -1;
        if (c->b[pick].bytes < need) c->b[pick].bytes = need;
        c->b[pick].free_after = o->last;
        o->buf = pick;
    }
    model *m = c->m;
    for (int i = 0; i < m->n_out; i++) m->out[i].buf = c->v[root(c, val_lookup(c, m->out[i].name, false))].buf;
    return 0;
}

static int layout_block(comp *c)
{
    model *m = c->m;
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) /* parameters first, then activations */
        for (int64_t i = 0; i < c->nb; i++) {
            cbuf *b = &c->b[i];
            if ((b->param != NULL) != (pass == 0)) continue;
            size_t sz = (b->bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
            if (sz < b->bytes || off > SIZE_MAX / 2 - sz)
                return cfail(c, "the plan for batch_rows %lld needs more memory than can be "
                                "addressed",
                             (long long)c->B);
            b->off = off;
            off += sz;
            if (pass == 0) m->param_bytes = off;
        }
    if (off == 0) off = ALIGN;
    m->block = aligned_alloc(ALIGN, off);
    if (m->block == NULL) {
        c->st = pc_err(c->err, c->errlen, PC_ERR_INTERNAL,
                       "%s: out of memory allocating %zu bytes for batch_rows %lld", c->file, off,
                       (long long)c->B);
        return -1;
    }
    m->block_bytes = off;
    memset(m->block, 0, off); /* rows never filled read as zeros, not garbage */
    char *base = m->block;
    for (int64_t i = 0; i < c->nb; i++)
        if (c->b[i].param != NULL) memcpy(base + c->b[i].off, c->b[i].param, c->b[i].bytes);
#define PTR(id) ((id) >= 0 ? (float *)(base + c->b[(id)].off) : NULL)
    m->steps = calloc((size_t)c->ns + 1, sizeof *m->steps);
    if (m->steps == NULL) return coom(c);
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        s->pin = PTR(c->v[s->in].buf);
        s->pin2 = s->in2 >= 0 ? PTR(c->v[s->in2].buf) : NULL;
        s->pout = PTR(c->v[s->out].buf);
        s->pw = PTR(s->w);
        s->pb = PTR(s->b);
        s->paux = PTR(s->aux);
        m->steps[i] = *s;
    }
    m->n_step = (int)c->ns;
    for (int i = 0; i < m->n_in; i++) m->in[i].ptr = PTR(m->in[i].buf);
    for (int i = 0; i < m->n_out; i++) m->out[i].ptr = PTR(m->out[i].buf);
#undef PTR
    return 0;
}

static double step_flops(const step *s)
{
    switch (s->kind) {
    case ST_DENSE:
        return 2.0 * (double)s->C * (double)s->OC + (s->b >= 0 ? (double)s->OC : 0.0) +
               (s->act != OPS_ACT_NONE ? (double)s->OC : 0.0);
    case ST_SOFTMAX:
    case ST_LOGSOFTMAX: return 3.0 * (double)s->C * (double)s->per_row;
    case ST_ADD_ROW:
    case ST_MUL_ROW: return (double)s->C * (double)s->per_row;
    case ST_AFFINE: return 2.0 * (double)s->C * (double)s->per_row;
    default: return (double)s->per_row;
    }
}

static int count_ops(comp *c)
{
    model *m = c->m;
    const onnx_model *om = c->om;
    m->ops = calloc((size_t)om->n_node + 1, sizeof *m->ops);
    if (m->ops == NULL) return coom(c);
    for (int64_t i = 0; i < om->n_node; i++) {
        int k = 0;
        while (k < m->n_ops && strcmp(m->ops[k].op, om->node[i].op_type) != 0) k++;
        if (k == m->n_ops) {
            if ((m->ops[k].op = dupstr(om->node[i].op_type)) == NULL) return coom(c);
            m->n_ops++;
        }
        m->ops[k].n++;
    }
    return 0;
}

/* ---- load ----------------------------------------------------------------------------------- */

static int compile(comp *c)
{
    const onnx_model *om = c->om;
    model *m = c->m;
    if (om->opset == 0)
        return cfail(c, "imports no version of the default ONNX domain (opset_import)");
    if (om->opset < 11 || om->opset > 17)
        return cfail(c, "opset %lld is not supported; precast reads opsets 11 to 17 "
                        "(re-export with opset_version=13)",
                     (long long)om->opset);
    m->ir_version = om->ir_version;
    m->opset = om->opset;
    char prod[256];
    snprintf(prod, sizeof prod, "%s%s%s", om->producer_name, om->producer_version[0] ? " " : "",
             om->producer_version);
    if ((m->producer = dupstr(prod)) == NULL) return coom(c);

    /* Pass A: intern every name, count uses. */
    int64_t names = om->n_init + om->n_input + om->n_output;
    for (int64_t i = 0; i < om->n_node; i++) names += om->node[i].n_in + om->node[i].n_out;
    if (names > MAX_NAMES) return cfail(c, "the graph has too many values (%lld)", (long long)names);
    size_t hcap = 16;
    while (hcap < (size_t)names * 2) hcap *= 2;
    c->hash = malloc(hcap * sizeof *c->hash);
    if (c->hash == NULL) return coom(c);
    memset(c->hash, 0xff, hcap * sizeof *c->hash); /* -1: empty */
    c->hmask = hcap - 1;
    for (int64_t i = 0; i < om->n_init; i++) {
        int id = val_lookup(c, om->init[i].name, true);
        if (id < 0) return -1;
        cval *v = &c->v[id];
        if (v->defined)
            return cfail(c, "initializer '%.200s' is defined twice", om->init[i].name);
        const onnx_tensor *t = &om->init[i];
        v->defined = v->is_const = true;
        v->rank = t->rank;
        memcpy(v->dims, t->dims, sizeof v->dims);
        v->count = t->count;
        v->cf = t->f;
        v->ci = t->i;
        v->elem = t->f != NULL ? ONNX_DTYPE_FLOAT : ONNX_DTYPE_INT64;
        m->params += t->count;
    }
    for (int64_t i = 0; i < om->n_input; i++)
        if (val_lookup(c, om->input[i].name, true) < 0) return -1;
    for (int64_t i = 0; i < om->n_node; i++) {
        const onnx_node *n = &om->node[i];
        for (int64_t k = 0; k < n->n_out; k++)
            if (n->out[k][0] && val_lookup(c, n->out[k], true) < 0) return -1;
        for (int64_t k = 0; k < n->n_in; k++) {
            if (!n->in[k][0]) continue;
            int id = val_lookup(c, n->in[k], true);
            if (id < 0) return -1;
            c->v[id].uses++;
        }
    }
    for (int64_t i = 0; i < om->n_output; i++) {
        int id = val_lookup(c, om->output[i].name, true);
        if (id < 0) return -1;
        c->v[id].uses++;
        c->v[id].is_output = true;
    }

    if (compile_inputs(c) < 0) return -1;
    for (int64_t i = 0; i < om->n_node; i++)
        if (compile_node(c, i) < 0) return -1;
    if (compile_outputs(c) < 0 || assign_buffers(c) < 0 || count_ops(c) < 0) return -1;
    for (int64_t i = 0; i < c->ns; i++) m->flops += step_flops(&c->s[i]);
    return layout_block(c);
}

pc_status model_load(const void *bytes, size_t len, const char *name, int64_t batch_rows,
                     model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (name == NULL) name = "model";
    if (batch_rows < 1 || batch_rows > INT32_MAX)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: batch_rows %lld is out of range (1 to %d)",
                      name, (long long)batch_rows, INT32_MAX);
    /* One OpenBLAS thread: precast runs one MPI rank per core, so BLAS threads would only
     * oversubscribe them. Process-wide and idempotent, so setting it on every load is fine. */
    openblas_set_num_threads(1);

    onnx_model *om = NULL;
    pc_status st = onnx_parse(bytes, len, name, &om, err, errlen);
    if (st != PC_OK) return st;
    model *m = calloc(1, sizeof *m);
    comp c = {.file = name, .err = err, .errlen = errlen, .st = PC_OK, .om = om,
              .B = batch_rows, .m = m};
    if (m == NULL) {
        coom(&c);
    } else {
        m->batch_rows = batch_rows;
        if ((m->name = dupstr(name)) == NULL) coom(&c);
        else compile(&c);
    }
    for (int64_t i = 0; i < c.nb; i++) free(c.b[i].param);
    free(c.b);
    free(c.s);
    free(c.v);
    free(c.hash);
    onnx_free(om);
    if (c.st != PC_OK) {
        model_close(m);
        return c.st;
    }
    *out = m;
    return PC_OK;
}

pc_status model_file_read(const char *path, char **bytes, size_t *len, char *err, size_t errlen)
{
    *bytes = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    /* Read by doubling rather than trusting the file's size, so a pipe or a file that grows
     * while read is still read whole. */
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    pc_status st = buf ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    while (st == PC_OK) {
        if (n == cap) {
            char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                st = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory reading it", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (st == PC_OK && ferror(f))
        st = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", path, errno ? strerror(errno) : "read error");
    fclose(f);
    if (st != PC_OK) {
        free(buf);
        return st;
    }
    *bytes = buf;
    *len = n;
    return PC_OK;
}

pc_status model_load_file(const char *path, int64_t batch_rows, model **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    pc_status st = model_file_read(path, &buf, &len, err, errlen);
    if (st == PC_OK) st = model_load(buf, len, path, batch_rows, out, err, errlen);
    free(buf);
    return st;
}

void model_close(model *m)
{
    if (m == NULL) return;
    for (int i = 0; i < m->n_in; i++) {
        free(m->in[i].name);
        free(m->in[i].batch_sym);
    }
    for (int i = 0; i < m->n_out; i++) {
        free(m->out[i].name);
        free(m->out[i].batch_sym);
    }
    for (int i = 0; i < m->n_ops; i++) free(m->ops[i].op);
    free(m->in);
    free(m->out);
    free(m->ops);
    free(m->steps);
    free(m->block);
    free(m->producer);
    free(m->name);
    free(m);
}

/* ---- forward ----------------------------------------------------------------------------------- */

pc_status model_forward(model *m, int64_t rows, char *err, size_t errlen)
{
    if (rows <= 0 || rows > m->batch_rows)
        return pc_err(err, errlen, PC_ERR_USAGE,
                      "%s: model_forward of %lld rows; the model was compiled for 1 to %lld",
                      m->name, (long long)rows, (long long)m->batch_rows);
    for (int i = 0; i < m->n_step; i++) {
        const step *s = &m->steps[i];
        int64_t n = rows * s->per_row;
        switch (s->kind) {
        case ST_DENSE:
            ops_dense(s->pout, s->pin, s->pw, s->pb, rows, s->C, s->OC, s->w_oc_c, s->act,
                      s->alpha);
            break;
        case ST_RELU: ops_relu(s->pout, s->pin, n); break;
        case ST_LEAKY: ops_leaky_relu(s->pout, s->pin, n, s->alpha); break;
        case ST_SIGMOID: ops_sigmoid(s->pout, s->pin, n); break;
        case ST_TANH: ops_tanh(s->pout, s->pin, n); break;
        case ST_SOFTMAX: ops_softmax(s->pout, s->pin, n, s->C); break;
        case ST_LOGSOFTMAX: ops_log_softmax(s->pout, s->pin, n, s->C); break;
        case ST_ADD: ops_add(s->pout, s->pin, s->pin2, n); break;
        case ST_MUL: ops_mul(s->pout, s->pin, s->pin2, n); break;
        case ST_ADD_ROW: ops_add_row(s->pout, s->pin, s->paux, n, s->C); break;
        case ST_MUL_ROW: ops_mul_row(s->pout, s->pin, s->paux, n, s->C); break;
        case ST_AFFINE:
            ops_channel_affine(s->pout, s->pin, s->pw, s->pb, rows, s->C, s->per_row);
            break;
        }
    }
    return PC_OK;
}

/* ---- accessors --------------------------------------------------------------------------------- */

int64_t model_batch_rows(const model *m) { return m->batch_rows; }
int model_input_count(const model *m) { return m->n_in; }
const char *model_input_name(const model *m, int i) { return m->in[i].name; }
model_elem model_input_elem(const model *m, int i) { return m->in[i].elem; }
int64_t model_input_width(const model *m, int i) { return m->in[i].width; }
void *model_input_buffer(model *m, int i) { return m->in[i].ptr; }
int model_output_count(const model *m) { return m->n_out; }
const char *model_output_name(const model *m, int i) { return m->out[i].name; }
int64_t model_output_width(const model *m, int i) { return m->out[i].width; }
model_final model_output_final(const model *m, int i) { return m->out[i].final; }
const float *model_output(const model *m, int i) { return m->out[i].ptr; }
int64_t model_param_count(const model *m) { return m->params; }
double model_flops_per_row(const model *m) { return m->flops; }

int model_dense_count(const model *m)
{
    int n = 0;
    for (int i = 0; i < m->n_step; i++) n += m->steps[i].kind == ST_DENSE;
    return n;
}

void model_dense_shape(const model *m, int i, int64_t *in, int64_t *out)
{
    for (int k = 0; k < m->n_step; k++) {
        if (m->steps[k].kind != ST_DENSE) continue;
        if (i-- == 0) {
            *in = m->steps[k].C;
            *out = m->steps[k].OC;
            return;
        }
    }
    *in = *out = 0;
}

static void print_io(FILE *f, const model_io *io)
{
    fprintf(f, "  %s: %s [", io->name, io->elem == MODEL_ELEM_INT64 ? "int64" : "float32");
    for (int k = 0; k < io->rank; k++) {
        if (k) fputs(", ", f);
        if (k == io->batch_axis) fputs(io->batch_sym ? io->batch_sym : "N", f);
        else fprintf(f, "%lld", (long long)io->dims[k]);
    }
    fprintf(f, "]  (%lld per row)", (long long)io->width);
}

void model_describe(const model *m, FILE *f)
{
    static const char *const finals[] = {"none", "softmax", "log_softmax", "sigmoid"};
    fprintf(f, "model: %s\n", m->name);
    fprintf(f, "ir_version: %lld  opset: %lld  producer: %s\n", (long long)m->ir_version,
            (long long)m->opset, m->producer[0] ? m->producer : "(unknown)");
    fprintf(f, "inputs:\n");
    for (int i = 0; i < m->n_in; i++) {
        print_io(f, &m->in[i]);
        fputc('\n', f);
    }
    fprintf(f, "outputs:\n");
    for (int i = 0; i < m->n_out; i++) {
        print_io(f, &m->out[i]);
        fprintf(f, "  final op: %s\n", finals[m->out[i].final]);
    }
    fprintf(f, "ops:");
    for (int i = 0; i < m->n_ops; i++)
        fprintf(f, "%s %s x%lld", i ? "," : "", m->ops[i].op, (long long)m->ops[i].n);
    fprintf(f, "\nplan: %d steps for batches of %lld rows\n", m->n_step, (long long)m->batch_rows);
    for (int i = 0; i < m->n_step; i++) fprintf(f, "  %d. %s\n", i + 1, m->steps[i].desc);
    fprintf(f, "parameters: %lld\n", (long long)m->params);
    fprintf(f, "flops/row: %.0f\n", m->flops);
    fprintf(f, "memory: %zu bytes (%zu of parameters)\n", m->block_bytes, m->param_bytes);
    fprintf(f, "supported: yes\n");
}
