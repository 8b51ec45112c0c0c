/*
 * model.c — compile an ONNX graph into a plan of kernel calls, and run it; see model.h.
 *
 * Compilation, in order:
 *   1. onnx_parse (kernels/onnx.c) decodes the file.
 *   2. Every name in the graph is interned in a value table; uses are counted (node inputs and
 *      graph outputs), so that fusions can tell whether an intermediate has other readers.
 *   3. Initializers become constants; graph inputs (minus initializers) get their shapes.
 *   4. Nodes are compiled in file order, which ONNX requires to be topological: a node that
 *      reads a value nobody defined yet is an error naming the node.  For each node the
 *      output shapes are inferred; then, if every input is a constant, the node is evaluated
 *      at once by the very code that runs steps (constant folding: the Shape → Gather →
 *      Unsqueeze → Concat → Reshape chains torch emits end up as constants); otherwise it
 *      becomes a step, is fused into the step before it (BatchNormalization, bias Add, ReLU
 *      into a dense layer), or aliases its input (Identity, Dropout, Flatten, Reshape,
 *      Squeeze, Unsqueeze: the data of a contiguous row-major tensor does not move).
 *   5. Liveness: each step's output gets a buffer; buffers whose values are dead are reused.
 *      Graph inputs and outputs keep their own buffers.
 *   6. One block holds parameters and all buffers; steps get their pointers into it.
 *
 * The batch dim.  A symbolic dim of a graph input ("batch", "N") is the batch axis.  Every
 * tensor's shape (tshape) records its batch axis `bax` (or -1) and a multiplier: at run time
 * dims[bax] = mult * rows, every other dim is fixed.  Shapes are inferred symbolically (a
 * batch dim broadcasts only against 1 or itself, is never contracted, ...), and the int64
 * constants folded from Shape carry, per element, how many times the batch size they hold
 * (`bk`), so that a Reshape whose target came from Shape(x) is right for any rows <=
 * batch_rows; what cannot be expressed that way is refused at load, naming the node.
 * A graph without any symbolic dim is static: it runs with its fixed shapes.
 *
 * Layout: every tensor is contiguous row-major in its ONNX dims (with the batch extent of
 * the current forward).  Input buffers are batch-outermost (row r at r*width): an input whose
 * batch axis is not axis 0 is transposed into ONNX layout by the first steps, and an output
 * likewise into batch-first order by the last.
 */
#include "kernels/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef PRECAST_ONEDNN
#include <omp.h>
#endif

#include "kernels/onnx.h"
#include "kernels/ops.h"

#define MAX_RANK ONNX_MAX_RANK
#define MAX_NAMES ((int64_t)1 << 24) /* values in one graph; far above any real model */
#define ALIGN 64
#define MAX_BUFFER_ELEMS ((int64_t)1 << 40) /* per tensor, so that byte sizes never overflow */
#define MAX_FOLD_BYTES ((int64_t)1 << 28)   /* per constant computed at load */
/* All constants computed at load: 64 MiB plus 16 bytes per byte of the file, so that a small
 * hostile file cannot broadcast its way to gigabytes. */
#define FOLD_BUDGET(len) (((int64_t)64 << 20) + 16 * (int64_t)(len))
#define OPSET_MIN 6
#define OPSET_MAX 17
#define SUPPORTED_OPS                                                                        \
    "Gemm, MatMul, Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, " \
    "BatchNormalization, Dropout, Identity, Flatten, Reshape, Concat, Gather, ReduceMean, "   \
    "ReduceSum, Cast, Unsqueeze, Squeeze, Transpose, Constant, Shape, TopK, ArgMax"

/* ---- shapes --------------------------------------------------------------------------------- */

typedef struct tshape {
    int rank;
    int bax;                 /* the batch axis, -1 if none */
    int64_t mult;            /* at run time dims[bax] = mult * rows */
    int64_t dims[MAX_RANK];  /* with rows = the compiled batch size */
} tshape;

/* The shape's dims for a forward of `rows` rows. */
static void rt_dims(const tshape *s, int64_t rows, int64_t *d)
{
    for (int i = 0; i < s->rank; i++) d[i] = s->dims[i];
    if (s->bax >= 0) d[s->bax] = s->mult * rows;
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= d[i];
    return n;
}

static int64_t rt_count(const tshape *s, int64_t rows)
{
    int64_t d[MAX_RANK];
    rt_dims(s, rows, d);
    return prod(d, 0, s->rank);
}

static void strides_of(int rank, const int64_t *d, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= d[i];
    }
}

/* ---- the compiled model -------------------------------------------------------------------- */

typedef enum step_kind {
    ST_DENSE,     /* in (..., C) · W (C, OC) + bias, act; W a parameter */
    ST_MATMUL,    /* batched matrix product of two tensors (Gemm with trans, MatMul) */
    ST_UNARY,     /* sub: unary_kind */
    ST_BINARY,    /* sub: ops_binop, numpy broadcasting */
    ST_SOFTMAX,   /* sub: 1 for log; flag: opset < 13 (flatten [axis, rank)) */
    ST_AFFINE,    /* per-channel scale and shift on axis 1 (BatchNormalization) */
    ST_TRANSPOSE,
    ST_CONCAT,
    ST_GATHER,
    ST_REDUCE,    /* flag: mean */
    ST_CAST,
    ST_COPY,
    ST_TOPK,      /* flag: largest */
    ST_ARGMAX     /* flag: select_last_index */
} step_kind;

typedef enum unary_kind { UN_RELU, UN_LEAKY, UN_SIGMOID, UN_TANH, UN_SCALE } unary_kind;

typedef struct operand {
    int val;                 /* value id while compiling */
    int elem;                /* ONNX_DTYPE_FLOAT or ONNX_DTYPE_INT64 */
    tshape sh;
    void *ptr;               /* resolved at the end of compilation */
} operand;

typedef struct step {
    step_kind kind;
    int sub;
    bool flag, trans_a, trans_b, w_oc_c;
    int n_in, n_out;
    operand *in;             /* n_in of them, owned */
    operand out[2];
    int w, b, scratch;       /* buffer ids, -1 if none */
    const float *pw, *pb;
    void *pscratch;
    int64_t C, OC;           /* dense: widths */
    int64_t OCp;             /* dense: OC rounded up to 4, the width W is stored with */
    int64_t Mfull;           /* dense: rows of its batch buffers once finalized, else 0 */
    ops_gemm gemm;           /* dense: ops_dense_choose's answer, once planned */
    ops_fused_dense *fused;  /* dense on oneDNN: its fused layer, or NULL; owned */
    int64_t axis, k;
    ops_act act;
    float alpha;
    int perm[MAX_RANK];
    bool red[MAX_RANK];
    int sparse_in;           /* dense: the model input whose CSR batch may replace in[0] */
    double flops;            /* at the compiled batch size */
    char label[200];         /* "node 'Gather_3' (op Gather)", for run-time errors */
    char desc[160];          /* for model_describe */
} step;

typedef struct model_io {
    char *name;
    model_elem elem;
    int rank;
    int64_t dims[MAX_RANK];
    int batch_axis;
    char *batch_sym;         /* the dim_param, or NULL */
    int64_t width;
    int buf;
    void *ptr;
    model_final final;
    int val;                 /* compile time: the graph value */
    bool sparse_ok;
    bool sp_set;             /* a CSR batch is set for the next forward */
    const int64_t *sp_row_ptr;
    const int32_t *sp_cols;
    const float *sp_vals;
} model_io;

struct model {
    char *name;
    int64_t batch_rows;
    bool is_static;          /* no symbolic dim: fixed shapes */
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

static size_t esize_of(int elem)
{
    return elem == ONNX_DTYPE_INT64 ? 8 : 4;
}

/* ---- running a step ------------------------------------------------------------------------ */

/* Matrix-product geometry of A (ad, ar) · B (bd, br) with Gemm's transposes: numpy matmul
 * rules (1-D operands, broadcast batch dims).  Fills M, K, N, the broadcast batch dims and
 * each operand's element stride per batch dim.  Returns 0, or -1 if the shapes do not fit. */
typedef struct mm_geom {
    int64_t M, K, N;
    int nb;
    int64_t bd[MAX_RANK], as[MAX_RANK], bs[MAX_RANK];
} mm_geom;

static int mm_geometry(const int64_t *ad, int ar, const int64_t *bd, int br, bool ta, bool tb,
                       mm_geom *g)
{
    if (ar < 1 || br < 1) return -1;
    int64_t am = ar >= 2 ? ad[ar - 2] : 1, ak = ad[ar - 1];
    if (ta) {
        int64_t t = am;
        am = ak;
        ak = t;
    }
    int64_t bk = br >= 2 ? bd[br - 2] : bd[0], bn = br >= 2 ? bd[br - 1] : 1;
    if (tb && br >= 2) {
        int64_t t = bk;
        bk = bn;
        bn = t;
    }
    if (ak != bk) return -1;
    g->M = am;
    g->K = ak;
    g->N = bn;
    int na = ar > 2 ? ar - 2 : 0, nbb = br > 2 ? br - 2 : 0;
    g->nb = na > nbb ? na : nbb;
    int64_t ast = am * ak, bst = bk * bn;
    for (int i = g->nb - 1; i >= 0; i--) {
        int ia = i - (g->nb - na), ib = i - (g->nb - nbb);
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1) return -1;
        g->bd[i] = da > db ? da : db;
        if (da == 0 || db == 0) g->bd[i] = 0;
        g->as[i] = da == 1 ? 0 : ast;
        g->bs[i] = db == 1 ? 0 : bst;
        ast *= da;
        bst *= db;
    }
    return 0;
}

static void matmul_run(const step *s, int64_t rows)
{
    int64_t ad[MAX_RANK], bd[MAX_RANK];
    const operand *A = &s->in[0], *Bo = &s->in[1];
    rt_dims(&A->sh, rows, ad);
    rt_dims(&Bo->sh, rows, bd);
    mm_geom g;
    if (mm_geometry(ad, A->sh.rank, bd, Bo->sh.rank, s->trans_a, s->trans_b, &g) < 0) return;
    int64_t nb = prod(g.bd, 0, g.nb), ctr[MAX_RANK] = {0};
    float *out = s->out[0].ptr;
    const float *a = A->ptr, *b = Bo->ptr;
    for (int64_t e = 0; e < nb; e++) {
        int64_t ao = 0, bo = 0;
        for (int i = 0; i < g.nb; i++) {
            ao += ctr[i] * g.as[i];
            bo += ctr[i] * g.bs[i];
        }
        float *o = out + e * g.M * g.N;
        if (g.M > 0 && g.N > 0) {
            if (g.K == 0) {
                memset(o, 0, (size_t)(g.M * g.N) * sizeof *o);
            } else {
                cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans,
                            s->trans_b ? CblasTrans : CblasNoTrans, (blasint)g.M, (blasint)g.N,
                            (blasint)g.K, s->alpha, a + ao, (blasint)(s->trans_a ? g.M : g.K),
                            b + bo, (blasint)(s->trans_b ? g.K : g.N), 0.0f, o, (blasint)g.N);
            }
        }
        for (int i = g.nb - 1; i >= 0 && ++ctr[i] == g.bd[i]; i--) ctr[i] = 0;
    }
}

/* Element strides of operand x read as a tensor of out's rank and dims (right-aligned, 0
 * along broadcast axes). */
static void bcast_strides(const int64_t *xd, int xr, int orank, int64_t *st)
{
    int64_t cs[MAX_RANK];
    strides_of(xr, xd, cs);
    for (int i = 0; i < orank; i++) {
        int j = i - (orank - xr);
        st[i] = j < 0 || xd[j] == 1 ? 0 : cs[j];
    }
}

static int64_t f2i(float x)
{
    /* Out of range and NaN have no defined conversion in C; ONNX leaves them undefined too. */
    if (!(x > -9.2233715e18f && x < 9.2233715e18f)) return INT64_MIN;
    return (int64_t)x;
}

static pc_status step_run(model *m, const step *s, int64_t rows, char *err, size_t errlen)
{
    int64_t d[MAX_RANK], od[MAX_RANK];
    const operand *in0 = s->n_in > 0 ? &s->in[0] : NULL;
    rt_dims(&s->out[0].sh, rows, od);
    int64_t on = prod(od, 0, s->out[0].sh.rank);
    if (in0 != NULL) rt_dims(&in0->sh, rows, d);
    switch (s->kind) {
    case ST_DENSE: {
        int64_t M = s->C > 0 ? rt_count(&in0->sh, rows) / s->C : on / s->OC;
        model_io *io = m != NULL && s->sparse_in >= 0 ? &m->in[s->sparse_in] : NULL;
        float *o = s->OCp != s->OC ? s->pscratch : s->out[0].ptr;
        if (io != NULL && io->sp_set)
            ops_dense_sparse(o, io->sp_row_ptr, io->sp_cols, io->sp_vals, s->pw, s->pb, M,
                             s->OCp, s->act, s->alpha);
        else if (s->fused != NULL && ops_fused_dense_run(s->fused, o, in0->ptr, M))
            break; /* oneDNN's fused layer wrote o; OCp == OC on oneDNN (see plan_dense) */
        else if (s->Mfull > 0)
            ops_dense_batch(o, in0->ptr, s->pw, s->pb, M, s->Mfull, s->C, s->OCp, s->gemm,
                            s->act, s->alpha);
        else
            ops_dense(o, in0->ptr, s->pw, s->pb, M, s->C, s->OCp, s->w_oc_c, s->act, s->alpha);
        if (o != s->out[0].ptr) {
            float *y = s->out[0].ptr;
            for (int64_t r = 0; r < M; r++)
                memcpy(y + r * s->OC, o + r * s->OCp, (size_t)s->OC * sizeof *y);
        }
        break;
    }
    case ST_MATMUL: matmul_run(s, rows); break;
    case ST_UNARY: {
        float *o = s->out[0].ptr;
        const float *x = in0->ptr;
        switch ((unary_kind)s->sub) {
        case UN_RELU: ops_relu(o, x, on); break;
        case UN_LEAKY: ops_leaky_relu(o, x, on, s->alpha); break;
        case UN_SIGMOID: ops_sigmoid(o, x, on); break;
        case UN_TANH: ops_tanh(o, x, on); break;
        case UN_SCALE:
            for (int64_t j = 0; j < on; j++) o[j] = x[j] * s->alpha;
            break;
        }
        break;
    }
    case ST_BINARY: {
        int64_t bd[MAX_RANK], as[MAX_RANK], bs[MAX_RANK];
        int orank = s->out[0].sh.rank;
        rt_dims(&s->in[1].sh, rows, bd);
        bcast_strides(d, in0->sh.rank, orank, as);
        bcast_strides(bd, s->in[1].sh.rank, orank, bs);
        if (s->out[0].elem == ONNX_DTYPE_FLOAT)
            ops_broadcast(s->out[0].ptr, in0->ptr, s->in[1].ptr, orank, od, as, bs,
                          (ops_binop)s->sub);
        else
            ops_broadcast_i64(s->out[0].ptr, in0->ptr, s->in[1].ptr, orank, od, as, bs,
                              (ops_binop)s->sub);
        break;
    }
    case ST_SOFTMAX: {
        int r = in0->sh.rank, ax = (int)s->axis;
        int64_t outer = prod(d, 0, ax);
        int64_t N = s->flag ? prod(d, ax, r) : d[ax], inner = s->flag ? 1 : prod(d, ax + 1, r);
        if (N > 0 && outer > 0 && inner > 0)
            ops_softmax_axis(s->out[0].ptr, in0->ptr, outer, N, inner, s->sub != 0);
        break;
    }
    case ST_AFFINE:
        ops_channel_affine(s->out[0].ptr, in0->ptr, s->pw, s->pb, d[0], d[1],
                           prod(d, 2, in0->sh.rank));
        break;
    case ST_TRANSPOSE:
        ops_transpose(s->out[0].ptr, in0->ptr, esize_of(in0->elem), in0->sh.rank, d, s->perm);
        break;
    case ST_CONCAT: {
        int ax = (int)s->axis, r = s->out[0].sh.rank;
        size_t es = esize_of(s->out[0].elem);
        int64_t outer = prod(od, 0, ax), inner = prod(od, ax + 1, r);
        char *o = s->out[0].ptr;
        int64_t at = 0;
        for (int i = 0; i < s->n_in; i++) {
            int64_t id[MAX_RANK];
            rt_dims(&s->in[i].sh, rows, id);
            size_t chunk = (size_t)(id[ax] * inner) * es, ostride = (size_t)(od[ax] * inner) * es;
            const char *x = s->in[i].ptr;
            if (chunk > 0)
                for (int64_t p = 0; p < outer; p++)
                    memcpy(o + (size_t)p * ostride + (size_t)at * es, x + (size_t)p * chunk,
                           chunk);
            at += id[ax] * inner;
        }
        break;
    }
    case ST_GATHER: {
        int ax = (int)s->axis;
        const operand *ix = &s->in[1];
        int64_t nidx = rt_count(&ix->sh, rows), D = d[ax];
        int64_t bad = ops_gather(s->out[0].ptr, in0->ptr, esize_of(in0->elem), ix->ptr, nidx,
                                 prod(d, 0, ax), D, prod(d, ax + 1, in0->sh.rank));
        if (bad >= 0) {
            int64_t v = ((const int64_t *)ix->ptr)[bad];
            if (ix->sh.bax == 0 && rows > 0 && nidx > 0)
                return pc_err(err, errlen, PC_ERR_DATA,
                              "%s: index %lld (row %lld of the batch) is out of range: the "
                              "table has %lld entries",
                              s->label, (long long)v, (long long)(bad / (nidx / rows)),
                              (long long)D);
            return pc_err(err, errlen, PC_ERR_DATA,
                          "%s: index %lld is out of range: the axis has %lld entries", s->label,
                          (long long)v, (long long)D);
        }
        break;
    }
    case ST_REDUCE:
        ops_reduce(s->out[0].ptr, in0->ptr, in0->sh.rank, d, s->red, s->flag);
        break;
    case ST_CAST: {
        int64_t n = on;
        if (in0->elem == s->out[0].elem) {
            memmove(s->out[0].ptr, in0->ptr, (size_t)n * esize_of(in0->elem));
        } else if (in0->elem == ONNX_DTYPE_FLOAT) {
            const float *x = in0->ptr;
            int64_t *o = s->out[0].ptr;
            for (int64_t j = 0; j < n; j++) o[j] = f2i(x[j]);
        } else {
            const int64_t *x = in0->ptr;
            float *o = s->out[0].ptr;
            for (int64_t j = 0; j < n; j++) o[j] = (float)x[j];
        }
        break;
    }
    case ST_COPY:
        memmove(s->out[0].ptr, in0->ptr, (size_t)on * esize_of(in0->elem));
        break;
    case ST_TOPK: {
        int ax = (int)s->axis, r = in0->sh.rank;
        int64_t outer = prod(d, 0, ax), N = d[ax], inner = prod(d, ax + 1, r), k = s->k;
        float *val = s->out[0].ptr;
        int64_t *idx = s->out[1].ptr;
        if (k == 0 || outer == 0 || inner == 0) break;
        if (inner == 1) {
            ops_topk_ordered(val, idx, in0->ptr, outer, N, k, s->flag);
            break;
        }
        /* scratch: a row (N floats), its top k values (k floats) and indices (k int64s) */
        int64_t *si = s->pscratch;
        float *sv = (float *)(si + k), *row = sv + k;
        const float *x = in0->ptr;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                for (int64_t j = 0; j < N; j++) row[j] = x[(o * N + j) * inner + i];
                ops_topk_ordered(sv, si, row, 1, N, k, s->flag);
                for (int64_t j = 0; j < k; j++) {
                    val[(o * k + j) * inner + i] = sv[j];
                    idx[(o * k + j) * inner + i] = si[j];
                }
            }
        break;
    }
    case ST_ARGMAX: {
        int ax = (int)s->axis, r = in0->sh.rank;
        ops_argmax(s->out[0].ptr, in0->ptr, prod(d, 0, ax), d[ax], prod(d, ax + 1, r), s->flag);
        break;
    }
    }
    return PC_OK;
}

/* ---- compile-time state ---------------------------------------------------------------------- */

typedef struct cval {
    const char *name;
    bool defined, is_const, is_output, is_input;
    int elem;                /* ONNX_DTYPE_FLOAT or ONNX_DTYPE_INT64 */
    tshape sh;               /* constants: bax == -1 */
    int64_t count;           /* constants: number of elements */
    const float *cf;         /* constants: data (borrowed from the parsed file or c->tmp) */
    const int64_t *ci;
    const int64_t *bk;       /* int64 constants: per element, the multiple of the batch size
                                it holds (0: a plain number; -1: depends on it otherwise);
                                NULL if all 0 */
    int pbuf;                /* constants read by a step: their parameter buffer, or -1 */
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
    void *param;             /* parameter data to copy into the block (owned), or NULL */
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
    bool batched;            /* the graph has a symbolic dim */
    cval *v;
    int64_t nv, capv;
    int *hash;
    size_t hmask;
    step *s;
    int64_t ns, caps;
    cbuf *b;
    int64_t nb, capb;
    const model_const_input *bind;  /* graph inputs fixed by the caller */
    int n_bind;
    int64_t fold_bytes, fold_budget;
    void **tmp;              /* memory of folded constants, freed after load */
    int64_t ntmp, captmp;
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

/* Zeroed memory for a folded constant, freed when loading ends; NULL (and c->st set) if out
 * of memory. */
static void *tmp_alloc(comp *c, size_t bytes)
{
    if (grow(c, (void **)&c->tmp, &c->captmp, c->ntmp + 1, sizeof *c->tmp) < 0) return NULL;
    void *p = calloc(bytes > 0 ? bytes : 1, 1);
    if (p == NULL) {
        coom(c);
        return NULL;
    }
    c->tmp[c->ntmp++] = p;
    return p;
}

/* ---- value table -------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int val_init(comp *c, const char *name)
{
    /* c->v is reserved up front for every name and every anonymous value compilation may
     * add (see compile), so pointers into it stay valid. */
    if (c->nv >= c->capv) return coom(c);
    int id = (int)c->nv++;
    cval *v = &c->v[id];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->alias = -1;
    v->prod = -1;
    v->buf = -1;
    v->pbuf = -1;
    v->last = -1;
    v->sh.bax = -1;
    v->sh.mult = 1;
    return id;
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
    int id = val_init(c, name);
    if (id < 0) return -2;
    c->hash[i] = id;
    return id;
}

/* A value with no name in the graph (a transposed input, a scaled Gemm C). */
static int val_anon(comp *c, const char *what)
{
    int id = val_init(c, what);
    if (id >= 0) c->v[id].defined = true;
    return id;
}

static int root(const comp *c, int id)
{
    return c->v[id].alias >= 0 ? c->v[id].alias : id;
}

/* "(N, 4, 3)": the shape with the batch dim shown as N (or 2N). */
static const char *shape_str(const tshape *s, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "(");
    for (int i = 0; i < s->rank && at < len; i++) {
        const char *sep = i ? ", " : "";
        if (i == s->bax && s->mult == 1)
            at += (size_t)snprintf(buf + at, len - at, "%sN", sep);
        else if (i == s->bax)
            at += (size_t)snprintf(buf + at, len - at, "%s%lldN", sep, (long long)s->mult);
        else
            at += (size_t)snprintf(buf + at, len - at, "%s%lld", sep, (long long)s->dims[i]);
    }
    if (at < len) snprintf(buf + at, len - at, "%s)", s->rank == 1 ? "," : "");
    return buf;
}

static int64_t sh_count(const tshape *s)
{
    return prod(s->dims, 0, s->rank);
}

/* Elements of the shape per batch row (every dim but the batch axis, times the multiple). */
static int64_t sh_width(const tshape *s)
{
    int64_t w = 1;
    for (int i = 0; i < s->rank; i++) w *= i == s->bax ? s->mult : s->dims[i];
    return w;
}

/* ---- buffers and parameters ------------------------------------------------------------------ */

/* A new buffer of `bytes`; if `param` is given, the buffer takes ownership of it. */
static int buf_new(comp *c, size_t bytes, void *param, bool slot)
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

/* A parameter of n elements of esize bytes, copied from src (or zeroed if src is NULL);
 * returns its buffer id.  The data stays reachable through c->b[id].param until the block is
 * laid out. */
static int param_new(comp *c, const void *src, int64_t n, size_t esize)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), esize);
    if (p == NULL) return coom(c);
    if (src != NULL && n > 0) memcpy(p, src, (size_t)n * esize);
    return buf_new(c, (size_t)n * esize, p, false);
}

static float *param_f(comp *c, int id)
{
    return c->b[id].param;
}

/* The parameter buffer holding constant `id` (made once). */
static int const_param(comp *c, int id)
{
    cval *v = &c->v[id];
    if (v->pbuf < 0) {
        v->pbuf = v->elem == ONNX_DTYPE_FLOAT ? param_new(c, v->cf, v->count, 4)
                                              : param_new(c, v->ci, v->count, 8);
        if (v->pbuf < 0) return -1;
    }
    return v->pbuf;
}

/* ---- node helpers ---------------------------------------------------------------------------- */

typedef struct nctx {
    const onnx_node *n;
    int64_t opset;
    char label[200];   /* "node 'Gemm_0' (op Gemm)" */
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

/* Defines output k of the node (float, shape set by the caller); returns its id or -1. */
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

/* Is output k of the node read by anything (a node or the graph's outputs)? */
static bool out_used(comp *c, nctx *x, int64_t k)
{
    if (k >= x->n->n_out || x->n->out[k][0] == '\0') return false;
    int id = val_lookup(c, x->n->out[k], false);
    return id >= 0 && c->v[id].uses > 0;
}

static int attr_int(comp *c, nctx *x, const char *name, int64_t dflt, int64_t *out)
{
    const onnx_attr *a = onnx_node_attr(x->n, name);
    *out = dflt;
    if (a == NULL) return 0;
    if (a->type != ONNX_ATTR_INT)
        return cfail(c, "%s: attribute '%s' should be an int", x->label, name);
    *out = a->i;
    return 0;
}

static int attr_float(comp *c, nctx *x, const char *name, float dflt, float *out)
{
    const onnx_attr *a = onnx_node_attr(x->n, name);
    *out = dflt;
    if (a == NULL) return 0;
    if (a->type != ONNX_ATTR_FLOAT)
        return cfail(c, "%s: attribute '%s' should be a float", x->label, name);
    *out = a->f;
    return 0;
}

/* An ints attribute: *n = -1 if absent. */
static int attr_ints(comp *c, nctx *x, const char *name, const int64_t **v, int64_t *n)
{
    const onnx_attr *a = onnx_node_attr(x->n, name);
    *v = NULL;
    *n = -1;
    if (a == NULL) return 0;
    if (a->type != ONNX_ATTR_INTS)
        return cfail(c, "%s: attribute '%s' should be a list of ints", x->label, name);
    *v = a->ints;
    *n = a->n;
    return 0;
}

static bool has_bk(const cval *v)
{
    if (v->bk == NULL) return false;
    for (int64_t i = 0; i < v->count; i++)
        if (v->bk[i] != 0) return true;
    return false;
}

/* Input `id` must be a constant int64 tensor not derived from the batch size (axes, k). */
static int need_const_ints(comp *c, nctx *x, int id, const char *what)
{
    const cval *v = &c->v[id];
    if (!v->is_const)
        return cfail(c, "%s: %s '%.200s' must be a constant (an initializer, a Constant or "
                        "computable at load)",
                     x->label, what, v->name);
    if (v->ci == NULL) return cfail(c, "%s: %s '%.200s' must be int64", x->label, what, v->name);
    if (has_bk(v))
        return cfail(c, "%s: %s '%.200s' depends on the batch size", x->label, what, v->name);
    return 0;
}

static int need_const_float(comp *c, nctx *x, int id, const char *what)
{
    const cval *v = &c->v[id];
    if (!v->is_const)
        return cfail(c, "%s: %s '%.200s' must be a constant (an initializer); a computed %s "
                        "is not supported",
                     x->label, what, v->name, what);
    if (v->cf == NULL) return cfail(c, "%s: %s '%.200s' must be float", x->label, what, v->name);
    if (has_bk(v))
        return cfail(c, "%s: %s '%.200s' depends on the batch size", x->label, what, v->name);
    return 0;
}

static int need_float(comp *c, nctx *x, int id, const char *what)
{
    if (c->v[id].elem != ONNX_DTYPE_FLOAT)
        return cfail(c, "%s: %s '%.200s' is int64; this op needs float32", x->label, what,
                     c->v[id].name);
    return 0;
}

/* Normalises axis a of a tensor of `rank` dims (negative counts from the end). */
static int norm_axis(comp *c, nctx *x, int64_t a, int rank, int64_t *out)
{
    *out = 0;
    if (a < -rank || a >= rank)
        return cfail(c, "%s: axis %lld is out of range for rank %d", x->label, (long long)a, rank);
    *out = a < 0 ? a + rank : a;
    return 0;
}

/* Checks an inferred shape: non-negative dims whose product stays addressable. */
static int shape_check(comp *c, nctx *x, const tshape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        int64_t d = s->dims[i];
        if (d < 0) return cfail(c, "%s: inferred a negative dim", x->label);
        if (d > 0 && n > MAX_BUFFER_ELEMS / d)
            return cfail(c, "%s: the output would have more than 2^40 elements (lower "
                            "batch_rows?)",
                         x->label);
        n *= d;
    }
    return 0;
}

static operand opnd(const comp *c, int id)
{
    operand o;
    memset(&o, 0, sizeof o);
    o.val = id;
    o.elem = c->v[id].elem;
    o.sh = c->v[id].sh;
    return o;
}

static void step_init(step *s, nctx *x, step_kind kind, int n_in)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n_in = n_in;
    s->n_out = 1;
    s->w = s->b = s->scratch = -1;
    s->sparse_in = -1;
    s->alpha = 1.0f;
    snprintf(s->label, sizeof s->label, "%s", x->label);
}

static int step_alloc_in(comp *c, step *s)
{
    s->in = calloc((size_t)(s->n_in > 0 ? s->n_in : 1), sizeof *s->in);
    return s->in == NULL ? coom(c) : 0;
}

/* Defines `out` as `in` seen with shape sh (same data: Identity, Reshape, Squeeze, ...). */
static int make_alias(comp *c, nctx *x, int in, int out, const tshape *sh)
{
    if (shape_check(c, x, sh) < 0) return -1;
    cval *o = &c->v[out], *i = &c->v[in];
    o->elem = i->elem;
    o->sh = *sh;
    if (i->is_const) {
        o->is_const = true;
        o->count = i->count;
        o->cf = i->cf;
        o->ci = i->ci;
        o->bk = i->bk;
        o->sh.bax = -1;
        return 0;
    }
    int r = root(c, in);
    o->alias = r;
    o->final = i->final;
    /* This node's read of `in` is replaced by the reads of `out`. */
    c->v[r].uses += o->uses - 1;
    if (o->is_output) c->v[r].is_output = true;
    return 0;
}

static double step_flops(const step *s)
{
    double on = (double)sh_count(&s->out[0].sh);
    switch (s->kind) {
    case ST_DENSE:
        return 2.0 * on * (double)s->C + (s->b >= 0 ? on : 0.0) +
               (s->act != OPS_ACT_NONE ? on : 0.0);
    case ST_MATMUL: {
        const tshape *a = &s->in[0].sh;
        int64_t K = s->trans_a ? a->dims[a->rank >= 2 ? a->rank - 2 : 0] : a->dims[a->rank - 1];
        return 2.0 * on * (double)K;
    }
    case ST_SOFTMAX: return 3.0 * on;
    case ST_AFFINE: return 2.0 * on;
    case ST_REDUCE: return (double)sh_count(&s->in[0].sh);
    case ST_TOPK: return (double)sh_count(&s->in[0].sh);
    case ST_ARGMAX: return (double)sh_count(&s->in[0].sh);
    default: return on; /* element-wise, and the data movement of gathers and copies */
    }
}

static int fold(comp *c, nctx *x, step *st);

/* Adds the step (its outputs' shapes and elements set by the caller), or evaluates it at
 * once if every input is a constant.  Takes ownership of st->in. */
static int emit(comp *c, nctx *x, step *st)
{
    bool all_const = true;
    for (int i = 0; i < st->n_in; i++) all_const &= c->v[st->in[i].val].is_const;
    if (all_const) {
        int r = fold(c, x, st);
        free(st->in);
        st->in = NULL;
        return r;
    }
    for (int k = 0; k < st->n_out; k++)
        if (shape_check(c, x, &st->out[k].sh) < 0) goto fail;
    for (int i = 0; i < st->n_in; i++) {
        int id = st->in[i].val;
        if (!c->v[id].is_const) continue;
        if (has_bk(&c->v[id])) {
            cfail(c, "%s reads '%.200s', which is computed from the batch size; precast runs "
                     "any batch size, so it cannot use that as data",
                  x->label, c->v[id].name);
            goto fail;
        }
        if (const_param(c, id) < 0) goto fail;
    }
    if (grow(c, (void **)&c->s, &c->caps, c->ns + 1, sizeof *c->s) < 0) goto fail;
    st->flops = step_flops(st);
    for (int k = 0; k < st->n_out; k++) {
        cval *o = &c->v[st->out[k].val];
        o->elem = st->out[k].elem;
        o->sh = st->out[k].sh;
        o->prod = (int)c->ns;
    }
    c->s[c->ns++] = *st;
    st->in = NULL;
    return 0;
fail:
    free(st->in);
    st->in = NULL;
    return -1;
}

/* Runs `st` on constant inputs into new constants, and works out which elements of the
 * results hold the batch size (bk). */
static int fold(comp *c, nctx *x, step *st)
{
    for (int k = 0; k < st->n_out; k++) {
        operand *o = &st->out[k];
        if (shape_check(c, x, &o->sh) < 0) return -1;
        int64_t n = sh_count(&o->sh);
        c->fold_bytes += n * 8;
        if (n > MAX_FOLD_BYTES / 8 || c->fold_bytes > c->fold_budget)
            return cfail(c, "%s: the constants computed at load would take more than %lld "
                            "bytes",
                         x->label, (long long)(n > MAX_FOLD_BYTES / 8 ? MAX_FOLD_BYTES
                                                                       : c->fold_budget));
        if ((o->ptr = tmp_alloc(c, (size_t)n * esize_of(o->elem))) == NULL) return -1;
    }
    bool any_bk = false;
    for (int i = 0; i < st->n_in; i++) {
        cval *v = &c->v[st->in[i].val];
        st->in[i].ptr = v->elem == ONNX_DTYPE_FLOAT ? (void *)v->cf : (void *)v->ci;
        any_bk |= has_bk(v);
    }
    char msg[PC_ERRLEN];
    if (step_run(NULL, st, c->B, msg, sizeof msg) != PC_OK) return cfail(c, "%s", msg);
    for (int k = 0; k < st->n_out; k++) {
        cval *o = &c->v[st->out[k].val];
        o->is_const = true;
        o->elem = st->out[k].elem;
        o->sh = st->out[k].sh;
        o->sh.bax = -1;
        o->count = sh_count(&o->sh);
        o->cf = o->elem == ONNX_DTYPE_FLOAT ? st->out[k].ptr : NULL;
        o->ci = o->elem == ONNX_DTYPE_INT64 ? st->out[k].ptr : NULL;
    }
    if (!any_bk) return 0;

    /* Where the batch size went: data movement moves the bk marks along with the data; a
     * product with a plain number scales them; anything else marks every element -1. */
    cval *o0 = &c->v[st->out[0].val];
    int64_t n0 = o0->count;
    int64_t *bk = tmp_alloc(c, (size_t)n0 * 8);
    if (bk == NULL) return -1;
    o0->bk = bk;
    step t = *st;
    operand ins[2];
    operand *many = NULL;
    bool moved = false;
    if (st->kind == ST_CONCAT || st->kind == ST_TRANSPOSE || st->kind == ST_COPY ||
        (st->kind == ST_CAST && st->in[0].elem == ONNX_DTYPE_INT64 &&
         st->out[0].elem == ONNX_DTYPE_INT64)) {
        if ((many = tmp_alloc(c, (size_t)st->n_in * sizeof *many)) == NULL) return -1;
        for (int i = 0; i < st->n_in; i++) {
            cval *v = &c->v[st->in[i].val];
            many[i] = st->in[i];
            many[i].elem = ONNX_DTYPE_INT64;
            if (v->bk != NULL) {
                many[i].ptr = (void *)v->bk;
            } else if ((many[i].ptr = tmp_alloc(c, (size_t)v->count * 8)) == NULL) {
                return -1;
            }
        }
        t.in = many;
        moved = true;
    } else if (st->kind == ST_GATHER && !has_bk(&c->v[st->in[1].val])) {
        ins[0] = st->in[0];
        ins[0].elem = ONNX_DTYPE_INT64;
        ins[0].ptr = (void *)c->v[st->in[0].val].bk;
        ins[1] = st->in[1];
        t.in = ins;
        moved = true;
    } else if (st->kind == ST_BINARY && st->sub == OPS_BIN_MUL &&
               st->out[0].elem == ONNX_DTYPE_INT64) {
        int side = has_bk(&c->v[st->in[0].val]) ? 0 : 1;
        bool ok = !has_bk(&c->v[st->in[1 - side].val]);
        const cval *v = &c->v[st->in[side].val];
        for (int64_t i = 0; ok && i < v->count; i++) ok = v->bk[i] >= 0;
        if (ok) {
            ins[0] = st->in[0];
            ins[1] = st->in[1];
            ins[side].ptr = (void *)v->bk;
            t.in = ins;
            moved = true;
        }
    }
    if (moved) {
        t.out[0].ptr = bk;
        t.out[0].elem = ONNX_DTYPE_INT64;
        t.n_out = 1;
        if (step_run(NULL, &t, c->B, msg, sizeof msg) != PC_OK) return cfail(c, "%s", msg);
    } else {
        for (int64_t i = 0; i < n0; i++) bk[i] = -1;
    }
    for (int k = 1; k < st->n_out; k++) { /* second outputs (TopK): not tracked */
        cval *o = &c->v[st->out[k].val];
        int64_t *b2 = tmp_alloc(c, (size_t)o->count * 8);
        if (b2 == NULL) return -1;
        for (int64_t i = 0; i < o->count; i++) b2[i] = -1;
        o->bk = b2;
    }
    return 0;
}

/* The dense step that writes the value `id` (through aliases), if its result may be changed
 * in place: it has no other reader, is no graph output and has no activation yet. */
static int fusable_dense(const comp *c, int id)
{
    int r = root(c, id);
    const cval *v = &c->v[r];
    if (v->is_const || v->prod < 0 || v->uses != 1 || v->is_output || v->is_input) return -1;
    const step *s = &c->s[v->prod];
    if (s->kind != ST_DENSE || s->act != OPS_ACT_NONE || s->out[0].val != r) return -1;
    return v->prod;
}

/* Makes the step write `out` (whose shape has the same elements) instead of its current
 * output, whose only reader is being folded into the step. */
static void step_retarget(comp *c, int si, int out)
{
    step *s = &c->s[si];
    c->v[s->out[0].val].prod = -1;
    s->out[0].val = out;
    s->out[0].sh = c->v[out].sh;
    c->v[out].prod = si;
    c->v[out].elem = ONNX_DTYPE_FLOAT;
}

static void desc_append(step *s, const char *fmt, const char *arg)
{
    size_t at = strlen(s->desc);
    if (at < sizeof s->desc) snprintf(s->desc + at, sizeof s->desc - at, fmt, arg);
}

/* ---- shape rules ----------------------------------------------------------------------------- */

/* numpy broadcasting of a and b into o; a batch dim matches only itself or 1. */
static int bcast_shape(comp *c, nctx *x, const tshape *a, const tshape *b, tshape *o)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    char s1[96], s2[96];
    memset(o, 0, sizeof *o);
    o->rank = r;
    o->bax = -1;
    o->mult = 1;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        bool sa = ia >= 0 && ia == a->bax, sb = ib >= 0 && ib == b->bax;
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        bool ok = true;
        if (sa || sb) {
            const tshape *s = sa ? a : b;
            ok = sa && sb ? a->mult == b->mult : (sa ? db : da) == 1;
            o->dims[i] = sa ? da : db;
            o->bax = i;
            o->mult = s->mult;
        } else if (da == db || db == 1) {
            o->dims[i] = da;
        } else if (da == 1) {
            o->dims[i] = db;
        } else {
            ok = false;
        }
        if (!ok)
            return cfail(c, "%s: shapes %s and %s do not broadcast", x->label,
                         shape_str(a, s1, sizeof s1), shape_str(b, s2, sizeof s2));
    }
    return 0;
}

/* ---- shape-only ops: aliases ------------------------------------------------------------------ */

static int op_identity(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0) return -1;
    if (strcmp(x->n->op_type, "Dropout") == 0) {
        int tm = node_in(c, x, 2);
        if (tm == -1) return -1;
        if (tm >= 0) {
            const cval *t = &c->v[tm];
            if (!t->is_const || t->count != 1 || (t->ci ? t->ci[0] : t->cf[0]) != 0)
                return cfail(c, "%s: training_mode must be a constant false", x->label);
        }
        if (out_used(c, x, 1)) return cfail(c, "%s: the mask output is not supported", x->label);
    }
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    return make_alias(c, x, in, out, &c->v[in].sh);
}

static int op_flatten(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0) return -1;
    const tshape *s = &c->v[in].sh;
    int64_t axis;
    if (attr_int(c, x, "axis", 1, &axis) < 0) return -1;
    if (axis < -s->rank || axis > s->rank)
        return cfail(c, "%s: axis %lld is out of range for rank %d", x->label, (long long)axis,
                     s->rank);
    if (axis < 0) axis += s->rank;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    tshape o = {.rank = 2, .bax = -1, .mult = 1};
    o.dims[0] = prod(s->dims, 0, (int)axis);
    o.dims[1] = prod(s->dims, (int)axis, s->rank);
    if (s->bax >= 0) {
        int side = s->bax < axis ? 0 : 1;
        int lo = side == 0 ? 0 : (int)axis, hi = side == 0 ? (int)axis : s->rank;
        o.bax = side;
        o.mult = s->mult;
        for (int i = lo; i < hi; i++)
            if (i != s->bax) o.mult *= s->dims[i];
    }
    return make_alias(c, x, in, out, &o);
}

static int op_reshape(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "data"), sid;
    if (in < 0 || (sid = node_in_req(c, x, 1, "shape")) < 0) return -1;
    const cval *sv = &c->v[sid];
    if (!sv->is_const || sv->ci == NULL)
        return cfail(c, "%s: the shape '%.200s' must be an int64 constant (an initializer, or "
                        "computable at load from Shape)",
                     x->label, sv->name);
    if (sv->sh.rank != 1 || sv->count > MAX_RANK)
        return cfail(c, "%s: the shape '%.200s' must be a list of at most %d dims", x->label,
                     sv->name, MAX_RANK);
    int64_t allowzero;
    if (attr_int(c, x, "allowzero", 0, &allowzero) < 0) return -1;
    const tshape *s = &c->v[in].sh;
    char sh[96];
    tshape o = {.rank = (int)sv->count, .bax = -1, .mult = 1};
    int infer = -1;
    int64_t known = 1;       /* product of the fixed dims */
    int sym = -1;            /* the dim that holds the batch */
    int64_t sym_mult = 0;
    for (int i = 0; i < o.rank; i++) {
        int64_t t = sv->ci[i], k = sv->bk ? sv->bk[i] : 0;
        if (k < 0)
            return cfail(c, "%s: dim %d of the shape is computed from the batch size in a way "
                            "precast cannot follow",
                         x->label, i);
        if (k > 0 || (t == 0 && !allowzero && i == s->bax)) {
            if (sym >= 0)
                return cfail(c, "%s: two dims of the target shape hold the batch size", x->label);
            sym = i;
            sym_mult = k > 0 ? k : s->mult;
            o.dims[i] = k > 0 ? t : s->dims[i];
            continue;
        }
        if (t == 0 && !allowzero) {
            if (i >= s->rank)
                return cfail(c, "%s: dim %d of the shape is 0 (copy) but the input %s has no "
                                "dim %d",
                             x->label, i, shape_str(s, sh, sizeof sh), i);
            t = s->dims[i];
        } else if (t == -1) {
            if (infer >= 0) return cfail(c, "%s: the shape has two -1 dims", x->label);
            infer = i;
            continue;
        } else if (t < 0) {
            return cfail(c, "%s: dim %d of the shape is %lld", x->label, i, (long long)t);
        }
        o.dims[i] = t;
        if (t > 0 && known > MAX_BUFFER_ELEMS / t)
            return cfail(c, "%s: the target shape is too large", x->label);
        known *= t;
    }
    /* Elements per batch row of the input, and in all (at the compiled batch size). */
    int64_t total = sh_count(s), per = s->bax >= 0 ? sh_width(s) : total;
    if (s->bax < 0 && sym >= 0)
        return cfail(c, "%s: reshaping the fixed-size %s to a shape that holds the batch size "
                        "is not supported",
                     x->label, shape_str(s, sh, sizeof sh));
    if (s->bax >= 0 && sym >= 0) { /* (per * rows) = sym_mult * rows * known * infer */
        int64_t rest = per;
        if (known == 0 || sym_mult <= 0 || rest % (sym_mult * known) != 0 ||
            (infer < 0 && rest != sym_mult * known))
            return cfail(c, "%s: cannot reshape %s so: the elements per row do not match",
                         x->label, shape_str(s, sh, sizeof sh));
        if (infer >= 0) o.dims[infer] = rest / (sym_mult * known);
        o.bax = sym;
        o.mult = sym_mult;
    } else if (s->bax >= 0) { /* the -1 takes the batch */
        if (infer < 0)
            return cfail(c, "%s: reshaping %s to a fixed shape would bake one batch size into "
                            "the model; export with a dynamic batch axis (or -1 there)",
                         x->label, shape_str(s, sh, sizeof sh));
        if (known == 0 || per % known != 0)
            return cfail(c, "%s: cannot reshape %s so: %lld elements per row do not divide by "
                            "%lld",
                         x->label, shape_str(s, sh, sizeof sh), (long long)per,
                         (long long)known);
        o.bax = infer;
        o.mult = per / known;
        o.dims[infer] = o.mult * c->B;
    } else {
        if (infer >= 0) {
            if (known == 0 || total % known != 0)
                return cfail(c, "%s: cannot reshape %s: %lld elements do not divide by %lld",
                             x->label, shape_str(s, sh, sizeof sh), (long long)total,
                             (long long)known);
            o.dims[infer] = total / known;
        }
    }
    if (sh_count(&o) != total)
        return cfail(c, "%s: cannot reshape %s to %lld elements", x->label,
                     shape_str(s, sh, sizeof sh), (long long)sh_count(&o));
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    return make_alias(c, x, in, out, &o);
}

/* The axes of Squeeze / Unsqueeze / ReduceSum: an attribute before opset 13 (ReduceMean: up
 * to 17), an optional input since.  *n = -1 if none is given. */
static int get_axes(comp *c, nctx *x, bool from_input, const int64_t **axes, int64_t *n)
{
    if (!from_input) return attr_ints(c, x, "axes", axes, n);
    *axes = NULL;
    *n = -1;
    int id = node_in(c, x, 1);
    if (id == -1) return -1;
    if (id == -2) return 0;
    if (need_const_ints(c, x, id, "axes") < 0) return -1;
    *axes = c->v[id].ci;
    *n = c->v[id].count;
    return 0;
}

static int op_squeeze(comp *c, nctx *x, bool unsqueeze)
{
    int in = node_in_req(c, x, 0, "data");
    if (in < 0) return -1;
    const int64_t *axes;
    int64_t n;
    if (get_axes(c, x, x->opset >= 13, &axes, &n) < 0) return -1;
    const tshape *s = &c->v[in].sh;
    char sh[96];
    tshape o = {.rank = 0, .bax = -1, .mult = s->mult};
    if (unsqueeze) {
        if (n < 0) return cfail(c, "%s: axes are missing", x->label);
        int64_t r = s->rank + n;
        if (r > MAX_RANK) return cfail(c, "%s: the result would have rank %lld", x->label, (long long)r);
        bool ins[MAX_RANK] = {false};
        for (int64_t i = 0; i < n; i++) {
            int64_t a;
            if (norm_axis(c, x, axes[i], (int)r, &a) < 0) return -1;
            if (ins[a]) return cfail(c, "%s: axis %lld is given twice", x->label, (long long)a);
            ins[a] = true;
        }
        for (int i = 0, j = 0; i < r; i++) {
            if (ins[i]) {
                o.dims[i] = 1;
                continue;
            }
            if (j == s->bax) o.bax = i;
            o.dims[i] = s->dims[j++];
        }
        o.rank = (int)r;
    } else {
        bool drop[MAX_RANK] = {false};
        for (int64_t i = 0; i < n; i++) {
            int64_t a;
            if (norm_axis(c, x, axes[i], s->rank, &a) < 0) return -1;
            if (a == s->bax || s->dims[a] != 1)
                return cfail(c, "%s: axis %lld of %s is not 1 and cannot be squeezed", x->label,
                             (long long)a, shape_str(s, sh, sizeof sh));
            drop[a] = true;
        }
        if (n < 0)
            for (int i = 0; i < s->rank; i++) drop[i] = s->dims[i] == 1 && i != s->bax;
        for (int i = 0; i < s->rank; i++) {
            if (drop[i]) continue;
            if (i == s->bax) o.bax = o.rank;
            o.dims[o.rank++] = s->dims[i];
        }
    }
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    return make_alias(c, x, in, out, &o);
}

static int op_shape(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "data");
    if (in < 0) return -1;
    const tshape *s = &c->v[in].sh;
    int64_t start, end;
    if (attr_int(c, x, "start", 0, &start) < 0 || attr_int(c, x, "end", s->rank, &end) < 0)
        return -1;
    if (start < 0) start += s->rank;
    if (end < 0) end += s->rank;
    start = start < 0 ? 0 : start > s->rank ? s->rank : start;
    end = end < 0 ? 0 : end > s->rank ? s->rank : end;
    int64_t n = end > start ? end - start : 0;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    int64_t *d = tmp_alloc(c, (size_t)(n + 1) * 8), *bk = tmp_alloc(c, (size_t)(n + 1) * 8);
    if (d == NULL || bk == NULL) return -1;
    bool any = false;
    for (int64_t i = 0; i < n; i++) {
        d[i] = s->dims[start + i];
        bk[i] = start + i == s->bax ? s->mult : 0;
        any |= bk[i] != 0;
    }
    cval *o = &c->v[out];
    o->is_const = true;
    o->elem = ONNX_DTYPE_INT64;
    o->sh = (tshape){.rank = 1, .bax = -1, .mult = 1, .dims = {n}};
    o->count = n;
    o->ci = d;
    o->bk = any ? bk : NULL;
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
    o->sh.bax = -1;
    o->sh.mult = 1;
    switch (a->type) {
    case ONNX_ATTR_TENSOR:
        o->sh.rank = a->t->rank;
        memcpy(o->sh.dims, a->t->dims, sizeof o->sh.dims);
        o->count = a->t->count;
        o->cf = a->t->f;
        o->ci = a->t->i;
        break;
    case ONNX_ATTR_FLOAT: o->sh.rank = 0; o->count = 1; o->cf = &a->f; break;
    case ONNX_ATTR_INT: o->sh.rank = 0; o->count = 1; o->ci = &a->i; break;
    case ONNX_ATTR_FLOATS: o->sh.rank = 1; o->sh.dims[0] = o->count = a->n; o->cf = a->floats; break;
    case ONNX_ATTR_INTS: o->sh.rank = 1; o->sh.dims[0] = o->count = a->n; o->ci = a->ints; break;
    default: return cfail(c, "%s: attribute '%s' has an unsupported type", x->label, a->name);
    }
    if (o->cf == NULL && o->ci == NULL)
        return cfail(c, "%s: the constant has no data precast can read", x->label);
    o->elem = o->cf != NULL ? ONNX_DTYPE_FLOAT : ONNX_DTYPE_INT64;
    return 0;
}

/* ---- data movement ---------------------------------------------------------------------------- */

static int op_transpose(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "data");
    if (in < 0) return -1;
    const tshape *s = &c->v[in].sh;
    const int64_t *perm;
    int64_t n;
    if (attr_ints(c, x, "perm", &perm, &n) < 0) return -1;
    if (n >= 0 && n != s->rank)
        return cfail(c, "%s: perm has %lld entries for rank %d", x->label, (long long)n, s->rank);
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    step st;
    step_init(&st, x, ST_TRANSPOSE, 1);
    bool seen[MAX_RANK] = {false};
    for (int i = 0; i < s->rank; i++) {
        int64_t p = n >= 0 ? perm[i] : s->rank - 1 - i;
        if (p < 0 || p >= s->rank || seen[p])
            return cfail(c, "%s: perm is not a permutation of 0..%d", x->label, s->rank - 1);
        seen[p] = true;
        st.perm[i] = (int)p;
    }
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = opnd(c, in);
    operand *o = &st.out[0];
    o->val = out;
    o->elem = c->v[in].elem;
    o->sh = (tshape){.rank = s->rank, .bax = -1, .mult = s->mult};
    for (int i = 0; i < s->rank; i++) {
        o->sh.dims[i] = s->dims[st.perm[i]];
        if (st.perm[i] == s->bax) o->sh.bax = i;
    }
    snprintf(st.desc, sizeof st.desc, "transpose");
    return emit(c, x, &st);
}

static int op_concat(comp *c, nctx *x)
{
    int64_t n = x->n->n_in, axis;
    if (n < 1) return cfail(c, "%s has no inputs", x->label);
    const onnx_attr *aa = onnx_node_attr(x->n, "axis");
    if (aa == NULL) return cfail(c, "%s: the axis attribute is missing", x->label);
    if (attr_int(c, x, "axis", 0, &axis) < 0) return -1;
    step st;
    step_init(&st, x, ST_CONCAT, (int)n);
    if (step_alloc_in(c, &st) < 0) return -1;
    char s1[96], s2[96];
    int64_t sum = 0, msum = 0;
    int nbatched = 0;
    for (int64_t i = 0; i < n; i++) {
        int id = node_in_req(c, x, i, "input");
        if (id < 0) goto fail;
        st.in[i] = opnd(c, id);
        const tshape *s = &st.in[i].sh, *f = &st.in[0].sh;
        if (i == 0 && norm_axis(c, x, axis, s->rank, &axis) < 0) goto fail;
        if (s->rank != f->rank || st.in[i].elem != st.in[0].elem) {
            cfail(c, "%s: inputs %s and %s differ in rank or type", x->label,
                  shape_str(f, s1, sizeof s1), shape_str(s, s2, sizeof s2));
            goto fail;
        }
        for (int k = 0; k < s->rank; k++) {
            if (k == axis) continue;
            bool same = (k == s->bax) == (k == f->bax) &&
                        (k == s->bax ? s->mult == f->mult : s->dims[k] == f->dims[k]);
            if (!same) {
                cfail(c, "%s: inputs %s and %s differ outside axis %lld", x->label,
                      shape_str(f, s1, sizeof s1), shape_str(s, s2, sizeof s2), (long long)axis);
                goto fail;
            }
        }
        sum += s->dims[axis];
        if (s->bax == axis) {
            nbatched++;
            msum += s->mult;
        }
    }
    if (nbatched != 0 && nbatched != n) {
        cfail(c, "%s: concatenating batch-sized and fixed-size tensors along axis %lld is not "
                 "supported",
              x->label, (long long)axis);
        goto fail;
    }
    int out = node_out(c, x, 0);
    if (out < 0) goto fail;
    st.axis = axis;
    st.out[0].val = out;
    st.out[0].elem = st.in[0].elem;
    st.out[0].sh = st.in[0].sh;
    st.out[0].sh.dims[axis] = sum;
    if (nbatched) st.out[0].sh.mult = msum;
    snprintf(st.desc, sizeof st.desc, "concat %lld inputs on axis %lld", (long long)n,
             (long long)axis);
    return emit(c, x, &st);
fail:
    free(st.in);
    return -1;
}

static int op_gather(comp *c, nctx *x)
{
    int d = node_in_req(c, x, 0, "data"), ix;
    if (d < 0 || (ix = node_in_req(c, x, 1, "indices")) < 0) return -1;
    if (c->v[ix].elem != ONNX_DTYPE_INT64)
        return cfail(c, "%s: indices '%.200s' must be int64 or int32", x->label, c->v[ix].name);
    const tshape *s = &c->v[d].sh, *is = &c->v[ix].sh;
    int64_t axis;
    if (attr_int(c, x, "axis", 0, &axis) < 0 || norm_axis(c, x, axis, s->rank, &axis) < 0)
        return -1;
    char s1[96];
    if (s->rank - 1 + is->rank > MAX_RANK)
        return cfail(c, "%s: the result would have rank %d", x->label, s->rank - 1 + is->rank);
    if (s->bax >= 0 && is->bax >= 0 && s->bax != axis)
        return cfail(c, "%s: data %s and indices both hold the batch", x->label,
                     shape_str(s, s1, sizeof s1));
    if (s->dims[axis] == 0 && sh_count(is) > 0)
        return cfail(c, "%s: gathers from an empty axis", x->label);
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    step st;
    step_init(&st, x, ST_GATHER, 2);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = opnd(c, d);
    st.in[1] = opnd(c, ix);
    st.axis = axis;
    tshape *o = &st.out[0].sh;
    *o = (tshape){.rank = 0, .bax = -1, .mult = 1};
    for (int i = 0; i < axis; i++) {
        if (i == s->bax) o->bax = o->rank, o->mult = s->mult;
        o->dims[o->rank++] = s->dims[i];
    }
    for (int i = 0; i < is->rank; i++) {
        if (i == is->bax) o->bax = o->rank, o->mult = is->mult;
        o->dims[o->rank++] = is->dims[i];
    }
    for (int i = (int)axis + 1; i < s->rank; i++) {
        if (i == s->bax) o->bax = o->rank, o->mult = s->mult;
        o->dims[o->rank++] = s->dims[i];
    }
    st.out[0].val = out;
    st.out[0].elem = c->v[d].elem;
    snprintf(st.desc, sizeof st.desc, "gather %lld of %lld on axis %lld%s",
             (long long)sh_width(is), (long long)s->dims[axis], (long long)axis,
             c->v[d].is_const ? " (embedding)" : "");
    return emit(c, x, &st);
}

static int op_cast(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0) return -1;
    int64_t to;
    if (attr_int(c, x, "to", 0, &to) < 0) return -1;
    if (to != ONNX_DTYPE_FLOAT && to != ONNX_DTYPE_INT64)
        return cfail(c, "%s: Cast to %s is not supported (float32 and int64 are)", x->label,
                     onnx_dtype_str((int32_t)to));
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    step st;
    step_init(&st, x, ST_CAST, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = opnd(c, in);
    st.out[0].val = out;
    st.out[0].elem = (int)to;
    st.out[0].sh = c->v[in].sh;
    snprintf(st.desc, sizeof st.desc, "cast to %s", onnx_dtype_str((int32_t)to));
    return emit(c, x, &st);
}

/* ---- reductions --------------------------------------------------------------------------- */

static int op_reduce(comp *c, nctx *x, bool mean)
{
    int in = node_in_req(c, x, 0, "data");
    if (in < 0 || need_float(c, x, in, "data") < 0) return -1;
    const int64_t *axes;
    int64_t n, keep, noop;
    if (get_axes(c, x, !mean && x->opset >= 13, &axes, &n) < 0 ||
        attr_int(c, x, "keepdims", 1, &keep) < 0 ||
        attr_int(c, x, "noop_with_empty_axes", 0, &noop) < 0)
        return -1;
    const tshape *s = &c->v[in].sh;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    if (n <= 0 && noop) return make_alias(c, x, in, out, s);
    step st;
    step_init(&st, x, ST_REDUCE, 1);
    st.flag = mean;
    for (int64_t i = 0; i < n; i++) {
        int64_t a;
        if (norm_axis(c, x, axes[i], s->rank, &a) < 0) return -1;
        st.red[a] = true;
    }
    if (n <= 0)
        for (int i = 0; i < s->rank; i++) st.red[i] = true;
    tshape *o = &st.out[0].sh;
    *o = (tshape){.rank = 0, .bax = -1, .mult = s->mult};
    for (int i = 0; i < s->rank; i++) {
        if (st.red[i] && !keep) continue;
        if (i == s->bax && !st.red[i]) o->bax = o->rank;
        o->dims[o->rank++] = st.red[i] ? 1 : s->dims[i];
    }
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = opnd(c, in);
    st.out[0].val = out;
    st.out[0].elem = ONNX_DTYPE_FLOAT;
    char sh[96];
    snprintf(st.desc, sizeof st.desc, "reduce_%s of %s", mean ? "mean" : "sum",
             shape_str(s, sh, sizeof sh));
    return emit(c, x, &st);
}

/* ---- element-wise ------------------------------------------------------------------------------ */

/* Opset < 7 Add/Sub/Mul/Div: with broadcast=1, B's dims line up with A's from `axis` (by
 * default, A's trailing dims); rewritten here as numpy broadcasting of B padded with 1s. */
static int legacy_broadcast(comp *c, nctx *x, const tshape *a, tshape *b)
{
    int64_t bc, axis;
    if (attr_int(c, x, "broadcast", 0, &bc) < 0 || bc == 0) return c->st == PC_OK ? 0 : -1;
    if (attr_int(c, x, "axis", a->rank - b->rank, &axis) < 0) return -1;
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return cfail(c, "%s: legacy broadcast axis %lld does not fit", x->label, (long long)axis);
    tshape p = {.rank = a->rank, .bax = b->bax >= 0 ? b->bax + (int)axis : -1, .mult = b->mult};
    for (int i = 0; i < a->rank; i++)
        p.dims[i] = i >= axis && i < axis + b->rank ? b->dims[i - axis] : 1;
    *b = p;
    return 0;
}

/* Is constant k a row for a tensor whose last dim is N: one element, or dims (1, ..., N)? */
static bool is_row_of(const cval *k, int64_t N)
{
    if (k->count == 1) return true;
    if (k->sh.rank < 1 || k->sh.dims[k->sh.rank - 1] != N) return false;
    for (int i = 0; i + 1 < k->sh.rank; i++)
        if (k->sh.dims[i] != 1) return false;
    return true;
}

/* A row parameter of N floats from constant k (a row of N or one element), scaled. */
static int row_param(comp *c, const cval *k, int64_t N, double scale)
{
    int id = param_new(c, NULL, N, 4);
    if (id < 0) return -1;
    float *p = param_f(c, id);
    for (int64_t j = 0; j < N; j++) p[j] = (float)(scale * k->cf[k->count == 1 ? 0 : j]);
    return id;
}

static int op_binary(comp *c, nctx *x, ops_binop op)
{
    int a = node_in_req(c, x, 0, "A"), b;
    if (a < 0 || (b = node_in_req(c, x, 1, "B")) < 0) return -1;
    static const char *const names[] = {"add", "sub", "mul", "div"};
    if (c->v[a].elem != c->v[b].elem)
        return cfail(c, "%s: inputs '%.200s' and '%.200s' differ in type", x->label,
                     c->v[a].name, c->v[b].name);
    step st;
    step_init(&st, x, ST_BINARY, 2);
    st.sub = op;
    operand oa = opnd(c, a), ob = opnd(c, b);
    if (x->opset < 7 && legacy_broadcast(c, x, &oa.sh, &ob.sh) < 0) return -1;
    tshape os;
    if (bcast_shape(c, x, &oa.sh, &ob.sh, &os) < 0) return -1;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    c->v[out].sh = os;
    /* MatMul + Add of a constant row: the dense layer's bias. */
    if (op == OPS_BIN_ADD && oa.elem == ONNX_DTYPE_FLOAT) {
        int rt = c->v[a].is_const ? b : a, k = rt == a ? b : a;
        int di = c->v[k].is_const ? fusable_dense(c, rt) : -1;
        if (di >= 0 && c->s[di].b < 0 && !has_bk(&c->v[k]) && is_row_of(&c->v[k], c->s[di].OC) &&
            c->v[k].sh.rank <= c->v[rt].sh.rank &&
            memcmp(&os, &c->v[rt].sh, sizeof os) == 0) {
            int bias = row_param(c, &c->v[k], c->s[di].OC, 1.0);
            if (bias < 0) return -1;
            c->s[di].b = bias;
            c->s[di].flops += (double)sh_count(&os);
            step_retarget(c, di, out);
            desc_append(&c->s[di], "%s", " +bias");
            return 0;
        }
    }
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = oa;
    st.in[1] = ob;
    st.out[0].val = out;
    st.out[0].elem = oa.elem;
    st.out[0].sh = os;
    char s1[96];
    snprintf(st.desc, sizeof st.desc, "%s %s", names[op], shape_str(&os, s1, sizeof s1));
    return emit(c, x, &st);
}

static int op_unary(comp *c, nctx *x, unary_kind kind)
{
    int in = node_in_req(c, x, 0, "X");
    if (in < 0 || need_float(c, x, in, "X") < 0) return -1;
    float alpha = 0.0f;
    if (kind == UN_LEAKY && attr_float(c, x, "alpha", 0.01f, &alpha) < 0) return -1;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    c->v[out].sh = c->v[in].sh;
    static const char *const names[] = {"relu", "leaky_relu", "sigmoid", "tanh", "scale"};
    int di = (kind == UN_RELU || kind == UN_LEAKY) ? fusable_dense(c, in) : -1;
    if (di >= 0) {
        step *s = &c->s[di];
        s->act = kind == UN_RELU ? OPS_ACT_RELU : OPS_ACT_LEAKY_RELU;
        s->alpha = alpha;
        s->flops += (double)sh_count(&c->v[in].sh);
        step_retarget(c, di, out);
        desc_append(s, " %s", names[kind]);
        return 0;
    }
    step st;
    step_init(&st, x, ST_UNARY, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.sub = kind;
    st.alpha = alpha;
    st.in[0] = opnd(c, in);
    st.out[0].val = out;
    st.out[0].elem = ONNX_DTYPE_FLOAT;
    st.out[0].sh = c->v[in].sh;
    snprintf(st.desc, sizeof st.desc, "%s", names[kind]);
    if (emit(c, x, &st) < 0) return -1;
    if (kind == UN_SIGMOID) c->v[out].final = MODEL_FINAL_SIGMOID;
    return 0;
}

static int op_softmax(comp *c, nctx *x, bool log)
{
    int in = node_in_req(c, x, 0, "input");
    if (in < 0 || need_float(c, x, in, "input") < 0) return -1;
    const tshape *s = &c->v[in].sh;
    int64_t axis;
    bool old = x->opset < 13;
    if (attr_int(c, x, "axis", old ? 1 : -1, &axis) < 0) return -1;
    if (s->rank == 0) return cfail(c, "%s: the input is a scalar", x->label);
    if (norm_axis(c, x, axis, s->rank, &axis) < 0) return -1;
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    step st;
    step_init(&st, x, ST_SOFTMAX, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.sub = log;
    st.flag = old; /* before opset 13: over the flattened dims [axis, rank) */
    st.axis = axis;
    st.in[0] = opnd(c, in);
    st.out[0].val = out;
    st.out[0].elem = ONNX_DTYPE_FLOAT;
    st.out[0].sh = *s;
    int64_t N = old ? prod(s->dims, (int)axis, s->rank) : s->dims[axis];
    snprintf(st.desc, sizeof st.desc, "%s over %lld%s", log ? "log_softmax" : "softmax",
             (long long)N, s->bax >= (int)axis && (old || s->bax == axis) ? " (across rows)" : "");
    if (emit(c, x, &st) < 0) return -1;
    c->v[out].final = log ? MODEL_FINAL_LOGSOFTMAX : MODEL_FINAL_SOFTMAX;
    return 0;
}

static int op_batchnorm(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "X");
    if (in < 0 || need_float(c, x, in, "X") < 0) return -1;
    int p[4];
    static const char *const pn[4] = {"scale", "B", "mean", "var"};
    const tshape *X = &c->v[in].sh;
    char sh[96];
    if (X->rank < 2 || X->bax == 1)
        return cfail(c, "%s: X %s needs a channel dim at axis 1", x->label,
                     shape_str(X, sh, sizeof sh));
    int64_t C = X->dims[1];
    for (int i = 0; i < 4; i++) {
        if ((p[i] = node_in_req(c, x, i + 1, pn[i])) < 0) return -1;
        if (need_const_float(c, x, p[i], pn[i]) < 0) return -1;
        if (c->v[p[i]].count != C)
            return cfail(c, "%s: %s '%.200s' has %lld values for %lld channels", x->label, pn[i],
                         c->v[p[i]].name, (long long)c->v[p[i]].count, (long long)C);
    }
    int64_t training = 0, spatial = 1;
    float eps = 0.0f;
    if (attr_int(c, x, "training_mode", 0, &training) < 0 ||
        attr_int(c, x, "spatial", 1, &spatial) < 0 ||
        attr_float(c, x, "epsilon", 1e-5f, &eps) < 0)
        return -1;
    for (int64_t k = 1; k < x->n->n_out; k++) training |= out_used(c, x, k);
    if (training)
        return cfail(c, "%s: training mode (batch statistics, running statistics outputs) is "
                        "not supported",
                     x->label);
    if (!spatial) return cfail(c, "%s: spatial=0 is not supported", x->label);
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    c->v[out].sh = *X;
    /* y = (x - mean) / sqrt(var + eps) * scale + B  =  x * s + t */
    int sc = param_new(c, NULL, C, 4), sf = param_new(c, NULL, C, 4);
    if (sc < 0 || sf < 0) return -1;
    float *s = param_f(c, sc), *t = param_f(c, sf);
    const cval *g = &c->v[p[0]], *be = &c->v[p[1]], *mu = &c->v[p[2]], *var = &c->v[p[3]];
    for (int64_t j = 0; j < C; j++) {
        double sj = (double)g->cf[j] / sqrt((double)var->cf[j] + (double)eps);
        s[j] = (float)sj;
        t[j] = (float)((double)be->cf[j] - (double)mu->cf[j] * sj);
    }
    int di = X->rank == 2 ? fusable_dense(c, in) : -1;
    if (di >= 0 && c->s[di].OC == C) { /* fold: W' = W * s per output channel, b' = b*s + t */
        step *d = &c->s[di];
        float *w = param_f(c, d->w);
        for (int64_t o = 0; o < d->OC; o++)
            for (int64_t k = 0; k < d->C; k++) {
                float *wv = d->w_oc_c ? &w[o * d->C + k] : &w[k * d->OC + o];
                *wv = (float)((double)*wv * s[o]);
            }
        if (d->b >= 0) {
            float *b = param_f(c, d->b);
            for (int64_t o = 0; o < d->OC; o++) t[o] = (float)((double)b[o] * s[o] + t[o]);
        } else {
            d->flops += (double)sh_count(X);
        }
        d->b = sf;
        c->b[sc].bytes = 0; /* the scale is no longer needed */
        step_retarget(c, di, out);
        if (!strstr(d->desc, "+bias")) desc_append(d, "%s", " +bias");
        desc_append(d, "%s", " (batchnorm folded)");
        return 0;
    }
    if (c->v[in].is_const)
        return cfail(c, "%s: BatchNormalization of a constant is not supported", x->label);
    step st;
    step_init(&st, x, ST_AFFINE, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.in[0] = opnd(c, in);
    st.w = sc;
    st.b = sf;
    st.out[0].val = out;
    st.out[0].elem = ONNX_DTYPE_FLOAT;
    st.out[0].sh = *X;
    snprintf(st.desc, sizeof st.desc, "batchnorm over %lld channels", (long long)C);
    return emit(c, x, &st);
}

/* ---- dense layers and matrix products ---------------------------------------------------------- */

/* A dense step: out = in (..., K) · W + bias, W a copy of constant `wid` (K, OC) or (OC, K)
 * if w_oc_c, scaled by alpha.  A graph input read this way gets W stored (K, OC), the layout
 * the sparse × dense kernel reads. */
static int dense_new(comp *c, nctx *x, int a, int wid, bool w_oc_c, float alpha, int out,
                     step *st)
{
    const cval *A = &c->v[a], *W = &c->v[wid];
    int64_t K = w_oc_c ? W->sh.dims[1] : W->sh.dims[0], OC = w_oc_c ? W->sh.dims[0] : W->sh.dims[1];
    step_init(st, x, ST_DENSE, 1);
    if (K > INT32_MAX || OC > INT32_MAX) return cfail(c, "%s: the weight is too large", x->label);
    int w = param_new(c, W->cf, W->count, 4);
    if (w < 0) return -1;
    float *p = param_f(c, w);
    if (alpha != 1.0f)
        for (int64_t i = 0; i < W->count; i++) p[i] *= alpha;
    if (step_alloc_in(c, st) < 0) return -1;
    st->in[0] = opnd(c, a);
    st->w = w;
    st->C = K;
    st->OC = st->OCp = OC;
    st->w_oc_c = w_oc_c;
    st->out[0].val = out;
    st->out[0].elem = ONNX_DTYPE_FLOAT;
    st->out[0].sh = A->sh;
    st->out[0].sh.dims[A->sh.rank - 1] = OC;
    snprintf(st->desc, sizeof st->desc, "dense %lld->%lld", (long long)K, (long long)OC);
    return 0;
}

/* The shape of a matrix product (symbolic batch: never contracted). */
static int mm_shape(comp *c, nctx *x, const tshape *a, const tshape *b, bool ta, bool tb,
                    tshape *o)
{
    char s1[96], s2[96];
    mm_geom g;
    int ka = ta ? (a->rank >= 2 ? a->rank - 2 : 0) : a->rank - 1;
    int kb = b->rank >= 2 ? (tb ? b->rank - 1 : b->rank - 2) : 0;
    if (a->rank < 1 || b->rank < 1 || mm_geometry(a->dims, a->rank, b->dims, b->rank, ta, tb, &g) < 0 ||
        a->bax == ka || b->bax == kb)
        return cfail(c, "%s: cannot multiply %s by %s%s%s", x->label, shape_str(a, s1, sizeof s1),
                     shape_str(b, s2, sizeof s2), ta ? " (transA)" : "", tb ? " (transB)" : "");
    *o = (tshape){.rank = 0, .bax = -1, .mult = 1};
    /* Batch dims: broadcast like an element-wise op. */
    tshape ba = {.rank = a->rank > 2 ? a->rank - 2 : 0, .bax = a->bax < a->rank - 2 ? a->bax : -1,
                 .mult = a->mult};
    tshape bb = {.rank = b->rank > 2 ? b->rank - 2 : 0, .bax = b->bax < b->rank - 2 ? b->bax : -1,
                 .mult = b->mult};
    memcpy(ba.dims, a->dims, sizeof ba.dims);
    memcpy(bb.dims, b->dims, sizeof bb.dims);
    if (bcast_shape(c, x, &ba, &bb, o) < 0) return -1;
    if (a->rank >= 2) {
        int ma = ta ? a->rank - 1 : a->rank - 2;
        if (ma == a->bax) o->bax = o->rank, o->mult = a->mult;
        o->dims[o->rank++] = g.M;
    }
    if (b->rank >= 2) {
        int nb = tb ? b->rank - 2 : b->rank - 1;
        if (nb == b->bax) {
            if (o->bax >= 0) return cfail(c, "%s: both operands hold the batch", x->label);
            o->bax = o->rank, o->mult = b->mult;
        }
        o->dims[o->rank++] = g.N;
    }
    if (g.M > INT32_MAX || g.N > INT32_MAX || g.K > INT32_MAX)
        return cfail(c, "%s: the matrices are too large", x->label);
    return 0;
}

static int matmul_new(comp *c, nctx *x, int a, int b, bool ta, bool tb, float alpha, int out,
                      step *st)
{
    step_init(st, x, ST_MATMUL, 2);
    if (need_float(c, x, a, "A") < 0 || need_float(c, x, b, "B") < 0) return -1;
    tshape o;
    if (mm_shape(c, x, &c->v[a].sh, &c->v[b].sh, ta, tb, &o) < 0) return -1;
    if (step_alloc_in(c, st) < 0) return -1;
    st->in[0] = opnd(c, a);
    st->in[1] = opnd(c, b);
    st->trans_a = ta;
    st->trans_b = tb;
    st->alpha = alpha;
    st->out[0].val = out;
    st->out[0].elem = ONNX_DTYPE_FLOAT;
    st->out[0].sh = o;
    char s1[96], s2[96];
    snprintf(st->desc, sizeof st->desc, "matmul %s%s x %s%s", shape_str(&c->v[a].sh, s1, sizeof s1),
             ta ? "'" : "", shape_str(&c->v[b].sh, s2, sizeof s2), tb ? "'" : "");
    return 0;
}

/* Gemm: Y = alpha * A' B' + beta * C;  MatMul: Y = A B. */
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
    if (need_float(c, x, a, "A") < 0 || need_float(c, x, bm, "B") < 0) return -1;
    const cval *A = &c->v[a], *Bv = &c->v[bm];
    char sa[96], sb[96];
    if (gemm && (A->sh.rank != 2 || Bv->sh.rank != 2))
        return cfail(c, "%s: A %s and B %s must be 2-D", x->label, shape_str(&A->sh, sa, sizeof sa),
                     shape_str(&Bv->sh, sb, sizeof sb));
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    /* With C, the product goes to an intermediate value unless C folds into a bias. */
    int prodv = out;
    bool c_bias = false;
    if (cm >= 0) {
        const cval *Cv = &c->v[cm];
        c_bias = Cv->is_const && Cv->cf != NULL && !has_bk(Cv) && Cv->sh.rank <= 2;
        if ((prodv = val_anon(c, "(gemm product)")) < 0) return -1;
    }
    step st;
    bool dense = !A->is_const && Bv->is_const && !ta && Bv->sh.rank == 2 && !has_bk(Bv) &&
                 A->sh.rank >= 1 && A->sh.bax != A->sh.rank - 1 && Bv->sh.dims[0] > 0 &&
                 Bv->sh.dims[1] > 0;
    if (dense) {
        if (A->sh.dims[A->sh.rank - 1] != Bv->sh.dims[tb ? 1 : 0])
            return cfail(c, "%s: A '%.200s' %s has %lld features but B '%.200s' %s%s expects "
                            "%lld",
                         x->label, A->name, shape_str(&A->sh, sa, sizeof sa),
                         (long long)A->sh.dims[A->sh.rank - 1], Bv->name,
                         shape_str(&Bv->sh, sb, sizeof sb), tb ? " (transB=1)" : "",
                         (long long)Bv->sh.dims[tb ? 1 : 0]);
        if (dense_new(c, x, a, bm, tb != 0, alpha, prodv, &st) < 0) return -1;
        int64_t OC = st.OC;
        if (c_bias && is_row_of(&c->v[cm], OC)) {
            if (beta != 0.0f && (st.b = row_param(c, &c->v[cm], OC, beta)) < 0) {
                free(st.in);
                return -1;
            }
            if (st.b >= 0) desc_append(&st, "%s", " +bias");
            st.out[0].val = out;
            prodv = out;
            cm = -2;
        }
    } else if (matmul_new(c, x, a, bm, ta != 0, tb != 0, alpha, prodv, &st) < 0) {
        return -1;
    }
    if (prodv != out) c->v[prodv].uses = 1;
    if (emit(c, x, &st) < 0) return -1;
    if (cm < 0) return 0;
    /* Y = product + beta * C, broadcast. */
    int cv = cm;
    if (beta != 1.0f) {
        if ((cv = val_anon(c, "(gemm beta*C)")) < 0) return -1;
        c->v[cv].uses = 1;
        step sc;
        step_init(&sc, x, ST_UNARY, 1);
        if (step_alloc_in(c, &sc) < 0) return -1;
        sc.sub = UN_SCALE;
        sc.alpha = beta;
        sc.in[0] = opnd(c, cm);
        sc.out[0].val = cv;
        sc.out[0].elem = ONNX_DTYPE_FLOAT;
        sc.out[0].sh = c->v[cm].sh;
        snprintf(sc.desc, sizeof sc.desc, "scale by beta");
        if (emit(c, x, &sc) < 0) return -1;
    }
    tshape os;
    if (bcast_shape(c, x, &c->v[prodv].sh, &c->v[cv].sh, &os) < 0) return -1;
    step ad;
    step_init(&ad, x, ST_BINARY, 2);
    if (step_alloc_in(c, &ad) < 0) return -1;
    ad.sub = OPS_BIN_ADD;
    ad.in[0] = opnd(c, prodv);
    ad.in[1] = opnd(c, cv);
    ad.out[0].val = out;
    ad.out[0].elem = ONNX_DTYPE_FLOAT;
    ad.out[0].sh = os;
    snprintf(ad.desc, sizeof ad.desc, "add C");
    return emit(c, x, &ad);
}

/* ---- top-k and arg-max ---------------------------------------------------------------------- */

static int op_topk(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "X");
    if (in < 0 || need_float(c, x, in, "X") < 0) return -1;
    int64_t k, axis, largest, sorted;
    if (x->opset < 10) {
        if (attr_int(c, x, "k", -1, &k) < 0) return -1;
    } else {
        int kid = node_in_req(c, x, 1, "K");
        if (kid < 0 || need_const_ints(c, x, kid, "K") < 0) return -1;
        if (c->v[kid].count != 1) return cfail(c, "%s: K must hold one number", x->label);
        k = c->v[kid].ci[0];
    }
    if (attr_int(c, x, "axis", -1, &axis) < 0 || attr_int(c, x, "largest", 1, &largest) < 0 ||
        attr_int(c, x, "sorted", 1, &sorted) < 0)
        return -1;
    const tshape *s = &c->v[in].sh;
    if (s->rank == 0) return cfail(c, "%s: the input is a scalar", x->label);
    if (norm_axis(c, x, axis, s->rank, &axis) < 0) return -1;
    char sh[96];
    if (axis == s->bax)
        return cfail(c, "%s: top-k along the batch axis of %s is not supported", x->label,
                     shape_str(s, sh, sizeof sh));
    if (k < 0 || k > s->dims[axis])
        return cfail(c, "%s: k = %lld for an axis of %lld", x->label, (long long)k,
                     (long long)s->dims[axis]);
    int ov = node_out(c, x, 0), oi;
    if (ov < 0 || (oi = node_out(c, x, 1)) < 0) return -1;
    step st;
    step_init(&st, x, ST_TOPK, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.n_out = 2;
    st.axis = axis;
    st.k = k;
    st.flag = largest != 0; /* sorted = 0 leaves the order open: sorted order is one */
    st.in[0] = opnd(c, in);
    st.out[0].val = ov;
    st.out[0].elem = ONNX_DTYPE_FLOAT;
    st.out[0].sh = *s;
    st.out[0].sh.dims[axis] = k;
    st.out[1] = st.out[0];
    st.out[1].val = oi;
    st.out[1].elem = ONNX_DTYPE_INT64;
    int64_t inner = prod(s->dims, (int)axis + 1, s->rank);
    if (inner > 1 && !c->v[in].is_const) {
        st.scratch = buf_new(c, (size_t)(s->dims[axis] + 3 * k) * 4 + 8, NULL, false);
        if (st.scratch < 0) {
            free(st.in);
            return -1;
        }
    } else if (inner > 1) { /* folded now: scratch from the fold memory */
        if ((st.pscratch = tmp_alloc(c, (size_t)(s->dims[axis] + 3 * k) * 4 + 8)) == NULL) {
            free(st.in);
            return -1;
        }
    }
    snprintf(st.desc, sizeof st.desc, "top %lld of %lld (%s)", (long long)k,
             (long long)s->dims[axis], largest ? "largest" : "smallest");
    return emit(c, x, &st);
}

static int op_argmax(comp *c, nctx *x)
{
    int in = node_in_req(c, x, 0, "data");
    if (in < 0 || need_float(c, x, in, "data") < 0) return -1;
    int64_t axis, keep, last;
    if (attr_int(c, x, "axis", 0, &axis) < 0 || attr_int(c, x, "keepdims", 1, &keep) < 0 ||
        attr_int(c, x, "select_last_index", 0, &last) < 0)
        return -1;
    const tshape *s = &c->v[in].sh;
    if (s->rank == 0) return cfail(c, "%s: the input is a scalar", x->label);
    if (norm_axis(c, x, axis, s->rank, &axis) < 0) return -1;
    char sh[96];
    if (axis == s->bax || s->dims[axis] == 0)
        return cfail(c, "%s: arg-max along axis %lld of %s is not supported", x->label,
                     (long long)axis, shape_str(s, sh, sizeof sh));
    int out = node_out(c, x, 0);
    if (out < 0) return -1;
    step st;
    step_init(&st, x, ST_ARGMAX, 1);
    if (step_alloc_in(c, &st) < 0) return -1;
    st.axis = axis;
    st.flag = last != 0;
    st.in[0] = opnd(c, in);
    st.out[0].val = out;
    st.out[0].elem = ONNX_DTYPE_INT64;
    tshape *o = &st.out[0].sh;
    *o = (tshape){.rank = 0, .bax = -1, .mult = s->mult};
    for (int i = 0; i < s->rank; i++) {
        if (i == axis && !keep) continue;
        if (i == s->bax) o->bax = o->rank;
        o->dims[o->rank++] = i == axis ? 1 : s->dims[i];
    }
    snprintf(st.desc, sizeof st.desc, "argmax of %lld", (long long)s->dims[axis]);
    return emit(c, x, &st);
}

static int compile_node(comp *c, int64_t idx)
{
    nctx x;
    x.n = &c->om->node[idx];
    x.opset = c->om->opset;
    const char *op = x.n->op_type;
    if (x.n->name[0] != '\0')
        snprintf(x.label, sizeof x.label, "node '%.120s' (op %.60s)", x.n->name, op);
    else
        snprintf(x.label, sizeof x.label, "node #%lld (op %.60s)", (long long)idx, op);
    if (x.n->domain[0] != '\0' && strcmp(x.n->domain, "ai.onnx") != 0)
        return cfail(c, "%s is in domain '%.100s', which is not supported (only the default "
                        "ONNX domain is)",
                     x.label, x.n->domain);
    if (strcmp(op, "Gemm") == 0) return op_dense(c, &x, true);
    if (strcmp(op, "MatMul") == 0) return op_dense(c, &x, false);
    if (strcmp(op, "Add") == 0) return op_binary(c, &x, OPS_BIN_ADD);
    if (strcmp(op, "Sub") == 0) return op_binary(c, &x, OPS_BIN_SUB);
    if (strcmp(op, "Mul") == 0) return op_binary(c, &x, OPS_BIN_MUL);
    if (strcmp(op, "Div") == 0) return op_binary(c, &x, OPS_BIN_DIV);
    if (strcmp(op, "Relu") == 0) return op_unary(c, &x, UN_RELU);
    if (strcmp(op, "LeakyRelu") == 0) return op_unary(c, &x, UN_LEAKY);
    if (strcmp(op, "Sigmoid") == 0) return op_unary(c, &x, UN_SIGMOID);
    if (strcmp(op, "Tanh") == 0) return op_unary(c, &x, UN_TANH);
    if (strcmp(op, "Softmax") == 0) return op_softmax(c, &x, false);
    if (strcmp(op, "LogSoftmax") == 0) return op_softmax(c, &x, true);
    if (strcmp(op, "BatchNormalization") == 0) return op_batchnorm(c, &x);
    if (strcmp(op, "Dropout") == 0 || strcmp(op, "Identity") == 0) return op_identity(c, &x);
    if (strcmp(op, "Flatten") == 0) return op_flatten(c, &x);
    if (strcmp(op, "Reshape") == 0) return op_reshape(c, &x);
    if (strcmp(op, "Squeeze") == 0) return op_squeeze(c, &x, false);
    if (strcmp(op, "Unsqueeze") == 0) return op_squeeze(c, &x, true);
    if (strcmp(op, "Shape") == 0) return op_shape(c, &x);
    if (strcmp(op, "Constant") == 0) return op_const(c, &x);
    if (strcmp(op, "Transpose") == 0) return op_transpose(c, &x);
    if (strcmp(op, "Concat") == 0) return op_concat(c, &x);
    if (strcmp(op, "Gather") == 0) return op_gather(c, &x);
    if (strcmp(op, "ReduceMean") == 0) return op_reduce(c, &x, true);
    if (strcmp(op, "ReduceSum") == 0) return op_reduce(c, &x, false);
    if (strcmp(op, "Cast") == 0) return op_cast(c, &x);
    if (strcmp(op, "TopK") == 0) return op_topk(c, &x);
    if (strcmp(op, "ArgMax") == 0) return op_argmax(c, &x);
    if (strcmp(op, "Loop") == 0)
        return cfail(c, "%s is not supported: PyTorch exports nn.EmbeddingBag as a Loop; export "
                        "nn.Embedding followed by .mean(dim=1) (or .sum(dim=1)) instead, which "
                        "precast runs as a gather and a reduction",
                     x.label);
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
        if (c->v[id].is_const) continue;
        for (int k = 0; vi->has_shape && k < vi->rank; k++) c->batched |= vi->dims[k] < 0;
    }
    m->is_static = !c->batched;
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
        if (!vi->has_shape || (c->batched && vi->rank < 1))
            return cfail(c, "graph input '%.200s' has no shape; precast needs (N, features)",
                         vi->name);
        int axis = -1;
        for (int k = 0; k < vi->rank; k++) {
            if (vi->dims[k] >= 0) continue;
            if (axis >= 0)
                return cfail(c, "graph input '%.200s': dims %d and %d are both symbolic; only "
                                "the batch dim may be",
                             vi->name, axis, k);
            axis = k;
        }
        if (c->batched && axis < 0)
            return cfail(c, "graph input '%.200s' has no symbolic (batch) dim while another "
                            "input has one; precast needs the batch dim on every input",
                         vi->name);
        v->defined = true;
        v->elem = vi->elem_type;
        v->sh = (tshape){.rank = vi->rank, .bax = axis, .mult = 1};
        int64_t width = 1;
        for (int k = 0; k < vi->rank; k++) {
            v->sh.dims[k] = k == axis ? c->B : vi->dims[k];
            if (k == axis || (!c->batched && k == 0)) continue;
            if (vi->dims[k] < 0 || (vi->dims[k] > 0 && width > (ONNX_MAX_ELEMS - 1) / vi->dims[k]))
                return cfail(c, "graph input '%.200s': dim %d (%lld) is not supported", vi->name,
                             k, (long long)vi->dims[k]);
            width *= vi->dims[k];
        }
        int64_t rows = c->batched ? c->B : vi->rank > 0 ? vi->dims[0] : 1;
        if (rows > 0 && width > MAX_BUFFER_ELEMS / rows)
            return cfail(c, "graph input '%.200s' would need %lld x %lld elements; lower "
                            "batch_rows",
                         vi->name, (long long)rows, (long long)width);
        model_io *io = &m->in[m->n_in++];
        io->name = dupstr(vi->name);
        io->batch_sym = axis >= 0 && vi->dim_param[axis] ? dupstr(vi->dim_param[axis]) : NULL;
        if (io->name == NULL || (axis >= 0 && vi->dim_param[axis] && io->batch_sym == NULL))
            return coom(c);
        io->elem = (model_elem)vi->elem_type;
        io->rank = v->sh.rank;
        memcpy(io->dims, v->sh.dims, sizeof io->dims);
        io->batch_axis = axis;
        io->width = width;
        io->val = id;
        io->buf = buf_new(c, (size_t)(rows * width) * esize_of(v->elem), NULL, false);
        if (io->buf < 0) return -1;
        if (axis <= 0) {
            v->buf = io->buf;
            v->is_input = true;
            continue;
        }
        /* Rows arrive batch-first: transpose them into the graph's layout. */
        int p = val_anon(c, "(input rows)");
        if (p < 0) return -1;
        cval *pv = &c->v[p];
        pv->elem = v->elem;
        pv->is_input = true;
        pv->buf = io->buf;
        pv->uses = 1;
        pv->sh = (tshape){.rank = vi->rank, .bax = 0, .mult = 1};
        pv->sh.dims[0] = c->B;
        for (int k = 0, j = 1; k < vi->rank; k++)
            if (k != axis) pv->sh.dims[j++] = v->sh.dims[k];
        nctx x = {.n = NULL, .opset = om->opset};
        snprintf(x.label, sizeof x.label, "graph input '%.150s'", vi->name);
        step st;
        step_init(&st, &x, ST_TRANSPOSE, 1);
        if (step_alloc_in(c, &st) < 0) return -1;
        for (int k = 0, j = 1; k < vi->rank; k++) st.perm[k] = k == axis ? 0 : j++;
        st.in[0] = opnd(c, p);
        st.out[0].val = id;
        st.out[0].elem = v->elem;
        st.out[0].sh = v->sh;
        snprintf(st.desc, sizeof st.desc, "transpose input '%.100s' (batch to axis %d)", vi->name,
                 axis);
        if (emit(c, &x, &st) < 0) return -1;
    }
    if (m->n_in == 0 && c->batched)
        return cfail(c, "the graph has no inputs (other than initializers)");
    m->batch_rows = c->B;
    if (!c->batched) /* fixed shapes: a "row" is a slice of the first input's first dim */
        m->batch_rows = m->n_in > 0 && m->in[0].rank > 0 && m->in[0].dims[0] > 0
                            ? m->in[0].dims[0] : 1;
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
        char sh[96];
        const cval *v = &c->v[id];
        if (v->is_const && (c->batched || has_bk(v)))
            return cfail(c, "graph output '%.200s' is a constant; it does not depend on the rows",
                         name);
        if (c->batched && (v->sh.bax < 0 || v->sh.mult != 1))
            return cfail(c, "graph output '%.200s' %s does not have one row per input row",
                         name, shape_str(&v->sh, sh, sizeof sh));
        nctx x = {.n = NULL, .opset = om->opset};
        snprintf(x.label, sizeof x.label, "graph output '%.150s'", name);
        int r = v->is_const ? -1 : root(c, id);
        bool shared = false;
        for (int k = 0; k < m->n_out && r >= 0; k++) shared |= root(c, m->out[k].val) == r;
        int ov = id;
        if (r >= 0 && (c->v[r].is_input || shared || v->sh.bax > 0)) {
            /* An output of its own, batch first. */
            if ((ov = val_anon(c, "(output)")) < 0) return -1;
            step st;
            bool tr = v->sh.bax > 0;
            step_init(&st, &x, tr ? ST_TRANSPOSE : ST_COPY, 1);
            if (step_alloc_in(c, &st) < 0) return -1;
            st.in[0] = opnd(c, id);
            st.out[0] = st.in[0];
            st.out[0].val = ov;
            if (tr) {
                int b = v->sh.bax;
                st.perm[0] = b;
                for (int k = 0, j = 1; k < v->sh.rank; k++)
                    if (k != b) st.perm[j++] = k;
                for (int k = 0; k < v->sh.rank; k++) st.out[0].sh.dims[k] = v->sh.dims[st.perm[k]];
                st.out[0].sh.bax = 0;
            }
            snprintf(st.desc, sizeof st.desc, "%s output '%.100s'", tr ? "transpose" : "copy", name);
            c->v[ov].is_output = true;
            c->v[ov].final = v->final;
            c->v[ov].uses = 1;
            if (emit(c, &x, &st) < 0) return -1;
            r = ov;
        }
        v = &c->v[id];
        model_io *io = &m->out[m->n_out++];
        const char *sym = om->output[i].rank > 0 ? om->output[i].dim_param[0] : NULL;
        io->name = dupstr(name);
        io->batch_sym = sym != NULL ? dupstr(sym) : NULL;
        if (io->name == NULL || (sym != NULL && io->batch_sym == NULL)) return coom(c);
        io->elem = (model_elem)v->elem;
        io->val = ov;
        io->rank = v->sh.rank;
        memcpy(io->dims, v->sh.dims, sizeof io->dims);
        io->batch_axis = v->sh.bax;
        io->width = c->batched ? sh_width(&v->sh)
                               : v->sh.rank > 0 ? prod(v->sh.dims, 1, v->sh.rank) : 1;
        io->final = v->final;
        io->buf = -1;
        if (r >= 0) c->v[r].is_output = true;
        else if (const_param(c, id) < 0) return -1;
    }
    return 0;
}

/* ---- liveness, buffers, the block ------------------------------------------------------------ */

static size_t val_bytes(const cval *v)
{
    return (size_t)sh_count(&v->sh) * esize_of(v->elem);
}

static bool step_inplace_ok(const step *s)
{
    switch (s->kind) {
    case ST_UNARY:
    case ST_SOFTMAX:
    case ST_AFFINE:
    case ST_COPY: return true;
    case ST_BINARY: return s->in[0].sh.rank == s->out[0].sh.rank &&
                           memcmp(s->in[0].sh.dims, s->out[0].sh.dims,
                                  (size_t)s->out[0].sh.rank * sizeof(int64_t)) == 0;
    default: return false;
    }
}

static int assign_buffers(comp *c)
{
    /* Last reader of every root value; graph outputs live to the end. */
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        for (int k = 0; k < s->n_in; k++) {
            int r = root(c, s->in[k].val);
            if (!c->v[r].is_const) c->v[r].last = i;
        }
        for (int k = 0; k < s->n_out; k++)
            if (c->v[s->out[k].val].last < i) c->v[s->out[k].val].last = i;
    }
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        for (int k = 0; k < s->n_out; k++) {
            cval *o = &c->v[s->out[k].val];
            size_t need = val_bytes(o);
            if (o->is_output || o->is_input) {
                if (o->buf < 0 && (o->buf = buf_new(c, need, NULL, false)) < 0) return -1;
                continue;
            }
            int pick = -1;
            if (k == 0 && s->n_in > 0 && step_inplace_ok(s)) {
                int r = root(c, s->in[0].val);
                const cval *in = &c->v[r];
                bool alone = true;
                for (int j = 1; j < s->n_in; j++) alone &= root(c, s->in[j].val) != r;
                if (!in->is_const && in->last == i && in->buf >= 0 && c->b[in->buf].slot &&
                    alone && val_bytes(in) == need)
                    pick = in->buf; /* the input dies here: write over it */
            }
            for (int64_t b = 0; b < c->nb && pick < 0; b++) {
                cbuf *cb = &c->b[b];
                if (cb->slot && cb->free_after < i && cb->bytes >= need) pick = (int)b;
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
    }
    model *m = c->m;
    for (int i = 0; i < m->n_out; i++) {
        const cval *v = &c->v[m->out[i].val];
        m->out[i].buf = v->is_const ? v->pbuf : c->v[root(c, m->out[i].val)].buf;
    }
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
    /* Parameters are bounded by the bytes of the file; activations are not: a tiny hostile
     * file can claim an input of 2^30 columns. Refuse a plan whose activations exceed
     * MODEL_MAX_ACTIVATION_BYTES before allocating anything. */
    if (off - m->param_bytes > MODEL_MAX_ACTIVATION_BYTES) {
        c->st = pc_err(c->err, c->errlen, PC_ERR_CONFIG,
                       "%s: the plan for batch_rows %lld needs %zu MiB of activations, over the "
                       "%d MiB limit: lower run.batch_rows, or check the model's input shapes",
                       c->file, (long long)c->B, (off - m->param_bytes) >> 20,
                       (int)(MODEL_MAX_ACTIVATION_BYTES >> 20));
        return -1;
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
#define PTR(id) ((id) >= 0 ? (void *)(base + c->b[(id)].off) : NULL)
    m->steps = calloc((size_t)c->ns + 1, sizeof *m->steps);
    if (m->steps == NULL) return coom(c);
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        for (int k = 0; k < s->n_in; k++) {
            const cval *v = &c->v[s->in[k].val];
            s->in[k].ptr = v->is_const ? PTR(v->pbuf) : PTR(c->v[root(c, s->in[k].val)].buf);
        }
        for (int k = 0; k < s->n_out; k++) s->out[k].ptr = PTR(c->v[s->out[k].val].buf);
        s->pw = PTR(s->w);
        s->pb = PTR(s->b);
        s->pscratch = PTR(s->scratch);
        m->steps[i] = *s;
        s->in = NULL; /* now owned by m->steps */
    }
    m->n_step = (int)c->ns;
    for (int i = 0; i < m->n_in; i++) m->in[i].ptr = PTR(m->in[i].buf);
    for (int i = 0; i < m->n_out; i++) m->out[i].ptr = PTR(m->out[i].buf);
#undef PTR
    return 0;
}

/* Every dense layer's weight, once all fusions are done, is stored (K, OC) and padded to a
 * multiple of 4 columns (the output then goes through a scratch buffer): OpenBLAS's AVX-512
 * sgemm rounds a row differently with its place in the batch when it transposes B or when
 * N % 16 is 1-3 or 5-7.  That is not the whole guarantee that a table does not depend on how
 * rows were batched: plan_dense tries each layer's library at load (ops_dense_choose), and
 * ops_dense_batch runs every GEMM over the whole batch buffer.  (K, OC) rows are also what
 * the sparse × dense kernel reads. */
static int dense_finalize(comp *c)
{
    for (int64_t i = 0; i < c->ns; i++) {
        step *s = &c->s[i];
        if (s->kind != ST_DENSE) continue;
        int64_t K = s->C, OC = s->OC, OCp = (OC + 3) / 4 * 4;
        if (s->w_oc_c || OCp != OC) {
            int nw = param_new(c, NULL, K * OCp, 4);
            if (nw < 0) return -1;
            const float *w = param_f(c, s->w);
            float *p = param_f(c, nw);
            for (int64_t k = 0; k < K; k++)
                for (int64_t o = 0; o < OC; o++)
                    p[k * OCp + o] = s->w_oc_c ? w[o * K + k] : w[k * OC + o];
            c->b[s->w].bytes = 0; /* the unpadded copy is no longer needed */
            s->w = nw;
            s->w_oc_c = false;
        }
        /* The rows its input and output buffers were planned for (what ops_dense_batch may
         * run a GEMM over); constant folding ran dense steps before this, with ops_dense. */
        s->Mfull = sh_count(&s->out[0].sh) / OC;
        if (OCp == OC) continue;
        if (s->b >= 0) {
            int nb = param_new(c, param_f(c, s->b), OC, 4);
            if (nb < 0) return -1;
            c->b[nb].bytes = (size_t)OCp * 4;
            float *p = realloc(c->b[nb].param, (size_t)OCp * 4);
            if (p == NULL) return coom(c);
            memset(p + OC, 0, (size_t)(OCp - OC) * 4);
            c->b[nb].param = p;
            s->b = nb;
        }
        if ((s->scratch = buf_new(c, (size_t)(s->Mfull * OCp) * 4, NULL, false)) < 0) return -1;
        s->OCp = OCp;
    }
    return 0;
}

/* The most bytes of weights a model keeps twice for oneDNN's fused layers (its packed copy
 * beside the plan's): half of the 64 MiB that a rank may hold beyond the model and memory_mb.
 * Larger layers gain least from fusing (bias and ReLU are a smaller share of their time). */
#define FUSED_WEIGHTS_BUDGET ((int64_t)32 << 20)

/* Who computes each dense layer (ops_dense_choose), once the plan's buffers and parameters
 * are where they stay: the trial runs on the final weights.  A layer on oneDNN whose output
 * needs no padding also gets oneDNN's fused matmul (bias and activation in its kernel), in
 * plan order while FUSED_WEIGHTS_BUDGET lasts, if that passes the trial too; otherwise it
 * stays on ops_dense_batch. */
static void plan_dense(model *m)
{
    int64_t packed = 0;
    for (int i = 0; i < m->n_step; i++) {
        step *s = &m->steps[i];
        if (s->kind != ST_DENSE || s->Mfull <= 0) continue;
        s->gemm = ops_dense_choose(s->Mfull, s->C, s->OCp, s->pw);
        int64_t bytes = s->C * s->OC * (int64_t)sizeof(float);
        bool fuse = s->gemm == OPS_GEMM_ONEDNN && s->OCp == s->OC &&
                    packed + bytes <= FUSED_WEIGHTS_BUDGET;
        if (fuse)
            s->fused = ops_fused_dense_new(s->Mfull, s->C, s->OC, s->pw, s->pb, s->act, s->alpha);
        if (s->fused != NULL) packed += bytes;
        desc_append(s, " [%s", ops_gemm_name(s->gemm));
        desc_append(s, "%s]", s->fused != NULL ? ", fused" : "");
    }
}

/* Inputs whose rows may come as a CSR batch: 2-D float, batch first, read only as the left
 * operand of dense layers. */
static void find_sparse_inputs(comp *c)
{
    model *m = c->m;
    for (int i = 0; i < m->n_in; i++) {
        model_io *io = &m->in[i];
        const cval *v = &c->v[io->val];
        bool ok = io->elem == MODEL_ELEM_FLOAT && io->rank == 2 && io->batch_axis == 0 &&
                  v->is_input && !v->is_output;
        int readers = 0;
        for (int64_t s = 0; s < c->ns && ok; s++) {
            const step *st = &c->s[s];
            for (int k = 0; k < st->n_in; k++) {
                if (root(c, st->in[k].val) != io->val) continue;
                readers++;
                ok &= st->kind == ST_DENSE && k == 0 && !st->w_oc_c &&
                      st->in[0].sh.rank == 2 && st->in[0].sh.bax == 0;
            }
        }
        io->sparse_ok = ok && readers > 0;
        for (int64_t s = 0; s < c->ns && io->sparse_ok; s++)
            if (c->s[s].kind == ST_DENSE && root(c, c->s[s].in[0].val) == io->val) {
                c->s[s].sparse_in = i;
                desc_append(&c->s[s], "%s", " (sparse input ok)");
            }
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
    if (om->opset < OPSET_MIN || om->opset > OPSET_MAX)
        return cfail(c, "opset %lld is not supported; precast reads opsets %d to %d "
                        "(re-export with opset_version=13)",
                     (long long)om->opset, OPSET_MIN, OPSET_MAX);
    m->ir_version = om->ir_version;
    m->opset = om->opset;
    char prod_s[256];
    snprintf(prod_s, sizeof prod_s, "%s%s%s", om->producer_name,
             om->producer_version[0] ? " " : "", om->producer_version);
    if ((m->producer = dupstr(prod_s)) == NULL) return coom(c);

    /* Pass A: intern every name, count uses.  The value table is reserved for every name and
     * every anonymous value (two per node at most, one per graph input and output). */
    int64_t names = om->n_init + om->n_input + om->n_output;
    for (int64_t i = 0; i < om->n_node; i++) names += om->node[i].n_in + om->node[i].n_out;
    if (names > MAX_NAMES) return cfail(c, "the graph has too many values (%lld)", (long long)names);
    int64_t reserve = names + 2 * om->n_node + om->n_input + om->n_output + 16;
    if (grow(c, (void **)&c->v, &c->capv, reserve, sizeof *c->v) < 0) return -1;
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
        v->sh.rank = t->rank;
        memcpy(v->sh.dims, t->dims, sizeof v->sh.dims);
        v->count = t->count;
        v->cf = t->f;
        v->ci = t->i;
        v->elem = t->f != NULL ? ONNX_DTYPE_FLOAT : ONNX_DTYPE_INT64;
        m->params += t->count;
    }
    for (int64_t i = 0; i < om->n_input; i++)
        if (val_lookup(c, om->input[i].name, true) < 0) return -1;
    for (int i = 0; i < c->n_bind; i++) {
        const model_const_input *b = &c->bind[i];
        int id = b->name != NULL ? val_lookup(c, b->name, false) : -1;
        bool is_input = false;
        for (int64_t k = 0; id >= 0 && k < om->n_input; k++)
            is_input |= strcmp(om->input[k].name, b->name) == 0;
        if (id < 0 || !is_input || c->v[id].defined)
            return cfail(c, "'%.200s' (given a constant value) is no graph input",
                         b->name ? b->name : "(null)");
        if (b->rank < 0 || b->rank > MAX_RANK || (b->elem != MODEL_ELEM_FLOAT &&
                                                  b->elem != MODEL_ELEM_INT64))
            return cfail(c, "the constant value of '%.200s' has rank %d, element type %d",
                         b->name, b->rank, (int)b->elem);
        cval *v = &c->v[id];
        v->sh = (tshape){.rank = b->rank, .bax = -1, .mult = 1};
        int64_t n = 1;
        for (int k = 0; k < b->rank; k++) {
            if (b->dims[k] < 0 || (b->dims[k] > 0 && n > (ONNX_MAX_ELEMS - 1) / b->dims[k]))
                return cfail(c, "the constant value of '%.200s' has a bad dim", b->name);
            v->sh.dims[k] = b->dims[k];
            n *= b->dims[k];
        }
        void *data = tmp_alloc(c, (size_t)n * esize_of((int)b->elem));
        if (data == NULL) return -1;
        if (n > 0) memcpy(data, b->data, (size_t)n * esize_of((int)b->elem));
        v->defined = v->is_const = true;
        v->elem = (int)b->elem;
        v->count = n;
        v->cf = b->elem == MODEL_ELEM_FLOAT ? data : NULL;
        v->ci = b->elem == MODEL_ELEM_INT64 ? data : NULL;
    }
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

    /* torch 1.13 exports nn.EmbeddingBag as a Loop behind a few ops precast lacks too
     * (ReduceProd, Range, Slice): name the Loop, which is what the user can change. */
    for (int64_t i = 0; i < om->n_node; i++)
        if (strcmp(om->node[i].op_type, "Loop") == 0 && compile_node(c, i) < 0) return -1;
    if (compile_inputs(c) < 0) return -1;
    for (int64_t i = 0; i < om->n_node; i++)
        if (compile_node(c, i) < 0) return -1;
    if (compile_outputs(c) < 0 || dense_finalize(c) < 0 || assign_buffers(c) < 0 ||
        count_ops(c) < 0)
        return -1;
    find_sparse_inputs(c);
    double total = 0.0;
    for (int64_t i = 0; i < c->ns; i++) total += c->s[i].flops;
    m->flops = total / (double)m->batch_rows;
    if (layout_block(c) < 0) return -1;
    plan_dense(m);
    return 0;
}

pc_status model_load(const void *bytes, size_t len, const char *name, int64_t batch_rows,
                     model **out, char *err, size_t errlen)
{
    return model_load_bound(bytes, len, name, batch_rows, NULL, 0, out, err, errlen);
}

pc_status model_load_bound(const void *bytes, size_t len, const char *name, int64_t batch_rows,
                           const model_const_input *consts, int n_consts, model **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (name == NULL) name = "model";
    if (batch_rows < 1 || batch_rows > INT32_MAX)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: batch_rows %lld is out of range (1 to %d)",
                      name, (long long)batch_rows, INT32_MAX);
    /* One OpenBLAS thread: precast runs one MPI rank per core, so BLAS threads would only
     * oversubscribe them. Process-wide and idempotent, so setting it on every load is fine. */
    openblas_set_num_threads(1);
#ifdef PRECAST_ONEDNN
    omp_set_num_threads(1); /* oneDNN's sgemm threads through OpenMP (see ops.h) */
#endif

    onnx_model *om = NULL;
    pc_status st = onnx_parse(bytes, len, name, &om, err, errlen);
    if (st != PC_OK) return st;
    model *m = calloc(1, sizeof *m);
    comp c = {.file = name, .err = err, .errlen = errlen, .st = PC_OK, .om = om,
              .B = batch_rows, .m = m, .bind = consts, .n_bind = n_consts > 0 ? n_consts : 0,
              .fold_budget = FOLD_BUDGET(len)};
    if (m == NULL) {
        coom(&c);
    } else {
        m->batch_rows = batch_rows;
        if ((m->name = dupstr(name)) == NULL) coom(&c);
        else compile(&c);
    }
    for (int64_t i = 0; i < c.nb; i++) free(c.b[i].param);
    for (int64_t i = 0; i < c.ns; i++) free(c.s[i].in);
    for (int64_t i = 0; i < c.ntmp; i++) free(c.tmp[i]);
    free(c.tmp);
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
    buf[n] = '\0'; /* the loop above always leaves room: it grows before a read at cap */
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
    for (int i = 0; m->steps != NULL && i < m->n_step; i++) {
        free(m->steps[i].in);
        ops_fused_dense_free(m->steps[i].fused);
    }
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

/* Checks the CSR batch of input i for `rows` rows. */
static pc_status sparse_check(const model *m, const model_io *io, int64_t rows, char *err,
                              size_t errlen)
{
    const int64_t *rp = io->sp_row_ptr;
    if (rp[0] < 0)
        return pc_err(err, errlen, PC_ERR_DATA, "%s: input '%s': row_ptr[0] is %lld", m->name,
                      io->name, (long long)rp[0]);
    for (int64_t r = 0; r < rows; r++) {
        if (rp[r + 1] < rp[r])
            return pc_err(err, errlen, PC_ERR_DATA, "%s: input '%s': row_ptr decreases at row %lld",
                          m->name, io->name, (long long)r);
        for (int64_t p = rp[r]; p < rp[r + 1]; p++)
            if (io->sp_cols[p] < 0 || io->sp_cols[p] >= io->width)
                return pc_err(err, errlen, PC_ERR_DATA,
                              "%s: input '%s': row %lld has column %lld, outside the input's "
                              "%lld features",
                              m->name, io->name, (long long)r, (long long)io->sp_cols[p],
                              (long long)io->width);
    }
    return PC_OK;
}

pc_status model_forward(model *m, int64_t rows, char *err, size_t errlen)
{
    pc_status st = PC_OK;
    if (rows <= 0 || rows > m->batch_rows)
        st = pc_err(err, errlen, PC_ERR_USAGE,
                    "%s: model_forward of %lld rows; the model was compiled for 1 to %lld",
                    m->name, (long long)rows, (long long)m->batch_rows);
    for (int i = 0; i < m->n_in && st == PC_OK; i++)
        if (m->in[i].sp_set) st = sparse_check(m, &m->in[i], rows, err, errlen);
    for (int i = 0; i < m->n_step && st == PC_OK; i++) {
        char msg[PC_ERRLEN];
        st = step_run(m, &m->steps[i], rows, msg, sizeof msg);
        if (st != PC_OK) pc_err(err, errlen, st, "%s: %s", m->name, msg);
    }
    for (int i = 0; i < m->n_in; i++) m->in[i].sp_set = false; /* one forward only */
    return st;
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
model_elem model_output_elem(const model *m, int i) { return m->out[i].elem; }
int64_t model_param_count(const model *m) { return m->params; }
double model_flops_per_row(const model *m) { return m->flops; }
bool model_is_static(const model *m) { return m->is_static; }

const float *model_output(const model *m, int i)
{
    return m->out[i].elem == MODEL_ELEM_FLOAT ? m->out[i].ptr : NULL;
}

const int64_t *model_output_i64(const model *m, int i)
{
    return m->out[i].elem == MODEL_ELEM_INT64 ? m->out[i].ptr : NULL;
}

int model_input_index(const model *m, const char *name)
{
    for (int i = 0; i < m->n_in; i++)
        if (strcmp(m->in[i].name, name) == 0) return i;
    return -1;
}

static int io_shape(const model_io *io, bool is_static, int64_t *dims)
{
    for (int k = 0; k < io->rank; k++) dims[k] = k == io->batch_axis && !is_static ? -1 : io->dims[k];
    return io->rank;
}

int model_input_shape(const model *m, int i, int64_t *dims)
{
    return io_shape(&m->in[i], m->is_static, dims);
}

int model_output_shape(const model *m, int i, int64_t *dims)
{
    return io_shape(&m->out[i], m->is_static, dims);
}

bool model_input_sparse_ok(const model *m, int i) { return m->in[i].sparse_ok; }

pc_status model_input_set_sparse(model *m, int i, const int64_t *row_ptr, const int32_t *cols,
                                 const float *vals, char *err, size_t errlen)
{
    model_io *io = &m->in[i];
    if (!io->sparse_ok)
        return pc_err(err, errlen, PC_ERR_USAGE,
                      "%s: input '%s' cannot take sparse rows (it is not read only by dense "
                      "layers)",
                      m->name, io->name);
    if (row_ptr == NULL || (cols == NULL || vals == NULL))
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: input '%s': NULL CSR arrays", m->name,
                      io->name);
    io->sp_row_ptr = row_ptr;
    io->sp_cols = cols;
    io->sp_vals = vals;
    io->sp_set = true;
    return PC_OK;
}

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
    if (m->is_static)
        fprintf(f, "shapes: static (no symbolic batch dim): %lld rows per forward\n",
                (long long)m->batch_rows);
    fprintf(f, "inputs:\n");
    for (int i = 0; i < m->n_in; i++) {
        print_io(f, &m->in[i]);
        if (m->in[i].sparse_ok) fputs("  (sparse rows ok)", f);
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
