/* ops.c — forward kernels and their naive twins; see ops.h for the contracts. */
#include "kernels/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/map.h" /* MAP: element-wise loops that GCC -O2 vectorises */

#ifdef PRECAST_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

static inline float relu1(float x)
{
    return x < 0.0f ? 0.0f : x; /* written so that NaN stays NaN */
}

static inline float leaky1(float x, float alpha)
{
    return x < 0.0f ? alpha * x : x;
}

static inline double act_apply_d(double x, ops_act act, double alpha)
{
    if (act == OPS_ACT_RELU) {
        if (x < 0.0) return 0.0;
    } else if (act == OPS_ACT_LEAKY_RELU) {
        if (x < 0.0) return alpha * x;
    }
    return x;
}

/* ---- dense ---------------------------------------------------------------------------- */

void ops_dense(float *out, const float *in, const float *w, const float *bias,
               int64_t B, int64_t C, int64_t OC, bool w_oc_c, ops_act act, float alpha)
{
    if (B <= 0 || OC <= 0) return;
    if (C <= 0) {
        /* An empty contraction is all zeros; BLAS implementations disagree about K = 0. */
        memset(out, 0, (size_t)(B * OC) * sizeof *out);
    } else if (w_oc_c) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)B, (blasint)OC,
                    (blasint)C, 1.0f, in, (blasint)C, w, (blasint)C, 0.0f, out, (blasint)OC);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)B, (blasint)OC,
                    (blasint)C, 1.0f, in, (blasint)C, w, (blasint)OC, 0.0f, out, (blasint)OC);
    }
    if (bias != NULL || act != OPS_ACT_NONE) ops_bias_act(out, bias, B, OC, act, alpha);
}

/* oneDNN's sgemm (Debian's libdnnl, a JIT for the CPU it runs on) against OpenBLAS's, one
 * thread, C = A (M, K) * W (K, N), GFLOP/s measured here (AMD EPYC, AVX-512, 2026-11-27):
 *
 *     M     K     N   OpenBLAS  oneDNN        M     K     N   OpenBLAS  oneDNN
 *   256    64   256     100.1   109.4      1024   512  1024     103.2   109.7
 *   256   256   256     104.3   112.8      1024  1024  1024     102.4   109.5
 *   256    16   256      83.9    96.7      1024   512   128     103.2   114.9
 *    16   256   256      83.6   111.3       256  4096   256      97.1   110.6
 *   256   256   100      99.2    97.3      1024  1024   100      97.1    96.6
 *   256   256    10      71.8    50.0       256    64    32     114.1   110.7
 *
 * oneDNN wins by 5-30 % from 128 output columns up, whatever K and M; below that OpenBLAS ties
 * or wins.  (W transposed, as PyTorch stores it, is slower for both.)  Restricted to their
 * AVX2 kernels (OPENBLAS_CORETYPE=Haswell, DNNL_MAX_CPU_ISA=AVX2) both reach 105-108 at the
 * large shapes, so the same rule stands there.
 *
 * Neither library promises that a row's result is the same in every batch, and a table must
 * not depend on how rows were batched or how many ranks ran.  What was seen here: both sum a
 * row in an order that depends on the number of rows in the call (OpenBLAS's small-matrix
 * kernel for 37 rows of K = 300, N = 132; oneDNN's gemv for one row, its K blocking for
 * K = 1024), and on some CPUs in an order that depends on the row's place in the batch
 * (OpenBLAS's Haswell and Zen kernels for 4 of 64 rows of K = 64, N = 12; oneDNN's AVX2
 * kernels for 33, 37 or 44 rows of K = 300, N = 132, but not 36 or 48).  So every call spans
 * the whole batch buffer, and ops_dense_choose tries each library on the layer at load. */

static const char *const gemm_names[] = {"row by row", "OpenBLAS", "oneDNN"};

const char *ops_gemm_name(ops_gemm g)
{
    return g >= OPS_GEMM_ROWWISE && g <= OPS_GEMM_ONEDNN ? gemm_names[g] : "?";
}

/* out (B, OC) = in (B, C) . W (C, OC), every row on its own: each output is the sum over c in
 * order of in * w, as separate multiplies and adds (no fused multiply-add), so a row comes
 * out the same in any batch at any place.  Four rows go through each block of 64 columns at
 * a time, which keeps the block of W in cache.  Several times slower than a BLAS: the
 * fallback for a CPU where neither library passes the trial. */
static void dense_rowwise(float *out, const float *in, const float *w, int64_t B, int64_t C,
                          int64_t OC)
{
    enum { ROWS = 4, COLS = 64 };
    for (int64_t j0 = 0; j0 < OC; j0 += COLS) {
        int64_t nj = OC - j0 < COLS ? OC - j0 : COLS;
        for (int64_t b0 = 0; b0 < B; b0 += ROWS) {
            int64_t nb = B - b0 < ROWS ? B - b0 : ROWS;
            float acc[ROWS][COLS] = {{0}};
            for (int64_t c = 0; c < C; c++) {
                const float *wc = w + c * OC + j0;
                for (int64_t r = 0; r < nb; r++) {
                    const float a = in[(b0 + r) * C + c];
                    for (int64_t j = 0; j < nj; j++) {
                        const float p = a * wc[j]; /* its own statement: never contracted */
                        acc[r][j] += p;
                    }
                }
            }
            for (int64_t r = 0; r < nb; r++)
                memcpy(out + (b0 + r) * OC + j0, acc[r], (size_t)nj * sizeof *out);
        }
    }
}

/* out = in . W over `rows` rows through g; false if the library failed (oneDNN, when it
 * cannot allocate its packing buffers). */
static bool gemm_rows(ops_gemm g, float *out, const float *in, const float *w, int64_t rows,
                      int64_t C, int64_t OC)
{
    switch (g) {
    case OPS_GEMM_ONEDNN:
#ifdef PRECAST_ONEDNN
        return dnnl_sgemm('N', 'N', rows, OC, C, 1.0f, in, C, w, OC, 0.0f, out, OC) ==
               dnnl_success;
#else
        return false;
#endif
    case OPS_GEMM_OPENBLAS:
        ops_dense(out, in, w, NULL, rows, C, OC, false, OPS_ACT_NONE, 0);
        return true;
    case OPS_GEMM_ROWWISE:
        dense_rowwise(out, in, w, rows, C, OC);
        return true;
    }
    return false;
}

/* The row the trials repeat: C pseudo-random values in [-1, 1), the same at every load. */
static void trial_row(float *x, int64_t C)
{
    uint32_t r = 0x9e3779b9u;
    for (int64_t c = 0; c < C; c++) {
        r = r * 1664525u + 1013904223u;
        x[c] = (float)(int32_t)r * 0x1p-31f;
    }
}

/* A layer the trial can run: out = layer(in) over `rows` rows; false if it could not run. */
typedef bool (*trial_layer)(void *layer, float *out, float *in, int64_t rows);

/* The trial: B_full copies of trial_row through the layer (C inputs, OC outputs) must give
 * B_full identical rows.  False also if it cannot run or allocate. */
static bool trial_rows_agree(trial_layer run, void *layer, int64_t B_full, int64_t C, int64_t OC)
{
    float *x = malloc((size_t)(B_full * C) * sizeof *x);
    float *y = malloc((size_t)(B_full * OC) * sizeof *y);
    bool ok = x != NULL && y != NULL;
    if (ok) {
        trial_row(x, C);
        for (int64_t b = 1; b < B_full; b++) memcpy(x + b * C, x, (size_t)C * sizeof *x);
        ok = run(layer, y, x, B_full);
        for (int64_t b = 1; ok && b < B_full; b++)
            ok = memcmp(y + b * OC, y, (size_t)OC * sizeof *y) == 0;
    }
    free(x);
    free(y);
    return ok;
}

/* A GEMM through one library, as a trial_layer. */
typedef struct gemm_layer {
    ops_gemm g;
    const float *w;
    int64_t C, OC;
} gemm_layer;

static bool gemm_layer_run(void *layer, float *out, float *in, int64_t rows)
{
    const gemm_layer *l = layer;
    return gemm_rows(l->g, out, in, l->w, rows, l->C, l->OC);
}

bool ops_dense_rows_agree(ops_gemm g, int64_t B_full, int64_t C, int64_t OC, const float *w)
{
    gemm_layer l = {g, w, C, OC};
    return trial_rows_agree(gemm_layer_run, &l, B_full, C, OC);
}

ops_gemm ops_dense_choose(int64_t B_full, int64_t C, int64_t OC, const float *w)
{
    ops_gemm order[2] = {OPS_GEMM_OPENBLAS, OPS_GEMM_ONEDNN};
#ifdef PRECAST_ONEDNN
    bool dnnl_ok = B_full <= INT32_MAX && C <= INT32_MAX && OC <= INT32_MAX;
    if (OC >= 128) order[0] = OPS_GEMM_ONEDNN, order[1] = OPS_GEMM_OPENBLAS;
#else
    bool dnnl_ok = false;
#endif
    if (B_full < 2 || C < 1) return OPS_GEMM_OPENBLAS; /* one row: always alone in its call */
    for (int i = 0; i < 2; i++) {
        bool can = order[i] != OPS_GEMM_ONEDNN || dnnl_ok;
        if (can && ops_dense_rows_agree(order[i], B_full, C, OC, w)) return order[i];
    }
    return OPS_GEMM_ROWWISE;
}

void ops_dense_batch(float *out, float *in, const float *w, const float *bias, int64_t B,
                     int64_t B_full, int64_t C, int64_t OC, ops_gemm g, ops_act act,
                     float alpha)
{
    if (B <= 0) return;
    int64_t rows = g == OPS_GEMM_ROWWISE ? B : B_full;
    if (B < rows) memset(in + B * C, 0, (size_t)((rows - B) * C) * sizeof *in);
    /* oneDNN out of memory for its packing buffers: the same layer, row by row (right to
     * float rounding, but not bit for bit what oneDNN gives the other batches). */
    if (!gemm_rows(g, out, in, w, rows, C, OC)) dense_rowwise(out, in, w, B, C, OC);
    if (bias != NULL || act != OPS_ACT_NONE) ops_bias_act(out, bias, B, OC, act, alpha);
}

/* ---- oneDNN's matmul primitive with bias and activation fused ---------------------------- */

#ifdef PRECAST_ONEDNN
struct ops_fused_dense {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t src, weights, bias, dst; /* weights and bias: oneDNN's own copies */
    int64_t B_full, C, OC;
};

void ops_fused_dense_free(ops_fused_dense *f)
{
    if (f == NULL) return;
    dnnl_memory_destroy(f->src);
    dnnl_memory_destroy(f->weights);
    dnnl_memory_destroy(f->bias);
    dnnl_memory_destroy(f->dst);
    dnnl_primitive_destroy(f->prim);
    dnnl_stream_destroy(f->stream);
    dnnl_engine_destroy(f->engine);
    free(f);
}

/* Copies W (C, OC) into f->weights, in the layout the primitive asked for. */
static dnnl_status_t fused_pack_weights(ops_fused_dense *f, const dnnl_memory_desc_t *want,
                                        const float *w)
{
    dnnl_memory_desc_t plain;
    dnnl_memory_t from = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&plain, 2, (dnnl_dims_t){f->C, f->OC},
                                                    dnnl_f32, dnnl_ab);
    if (st == dnnl_success) st = dnnl_memory_create(&from, &plain, f->engine, (void *)w);
    if (st == dnnl_success) st = dnnl_memory_create(&f->weights, want, f->engine, DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&rpd, &plain, f->engine, want, f->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&reorder, rpd);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, f->weights}};
        st = dnnl_primitive_execute(reorder, f->stream, 2, args);
    }
    if (st == dnnl_success) st = dnnl_stream_wait(f->stream);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    return st;
}

/* The primitive with its attributes (the activation as a post-op) and its memories. */
static dnnl_status_t fused_build(ops_fused_dense *f, const float *w, const float *bias,
                                 ops_act act, float alpha)
{
    dnnl_memory_desc_t src_md, w_md, bias_md, dst_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_engine_create(&f->engine, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&f->stream, f->engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&src_md, 2, (dnnl_dims_t){f->B_full, f->C}, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&w_md, 2, (dnnl_dims_t){f->C, f->OC}, dnnl_f32,
                                          dnnl_format_tag_any);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&bias_md, 2, (dnnl_dims_t){1, f->OC}, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&dst_md, 2, (dnnl_dims_t){f->B_full, f->OC}, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&md, &src_md, &w_md, bias != NULL ? &bias_md : NULL, &dst_md);
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && act != OPS_ACT_NONE) {
        st = dnnl_post_ops_create(&post);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_relu,
                                              act == OPS_ACT_LEAKY_RELU ? alpha : 0.0f, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, post);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &md, attr, f->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&f->prim, pd);
    if (st == dnnl_success)
        st = fused_pack_weights(f, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), w);
    if (st == dnnl_success && bias != NULL) {
        st = dnnl_memory_create(&f->bias, &bias_md, f->engine, DNNL_MEMORY_ALLOCATE);
        void *p = NULL;
        if (st == dnnl_success) st = dnnl_memory_get_data_handle(f->bias, &p);
        if (st == dnnl_success) memcpy(p, bias, (size_t)f->OC * sizeof *bias);
    }
    /* src and dst point at the batch buffers, set at each run. */
    if (st == dnnl_success) st = dnnl_memory_create(&f->src, &src_md, f->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&f->dst, &dst_md, f->engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(post);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

bool ops_fused_dense_run(ops_fused_dense *f, float *out, float *in, int64_t B)
{
    if (B < f->B_full) memset(in + B * f->C, 0, (size_t)((f->B_full - B) * f->C) * sizeof *in);
    if (dnnl_memory_set_data_handle(f->src, in) != dnnl_success ||
        dnnl_memory_set_data_handle(f->dst, out) != dnnl_success)
        return false;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, f->src}, {DNNL_ARG_WEIGHTS, f->weights},
                               {DNNL_ARG_DST, f->dst}, {DNNL_ARG_BIAS, f->bias}};
    if (dnnl_primitive_execute(f->prim, f->stream, f->bias != NULL ? 4 : 3, args) != dnnl_success)
        return false;
    return dnnl_stream_wait(f->stream) == dnnl_success;
}

/* The fused layer as a trial_layer (it always runs its B_full rows). */
static bool fused_layer_run(void *layer, float *out, float *in, int64_t rows)
{
    return ops_fused_dense_run(layer, out, in, rows);
}

ops_fused_dense *ops_fused_dense_new(int64_t B_full, int64_t C, int64_t OC, const float *w,
                                     const float *bias, ops_act act, float alpha)
{
    if (B_full < 2 || C < 1 || OC < 1) return NULL;
    ops_fused_dense *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    *f = (ops_fused_dense){.B_full = B_full, .C = C, .OC = OC};
    if (fused_build(f, w, bias, act, alpha) != dnnl_success ||
        !trial_rows_agree(fused_layer_run, f, B_full, C, OC)) {
        ops_fused_dense_free(f);
        return NULL;
    }
    return f;
}
#else
ops_fused_dense *ops_fused_dense_new(int64_t B_full, int64_t C, int64_t OC, const float *w,
                                     const float *bias, ops_act act, float alpha)
{
    (void)B_full, (void)C, (void)OC, (void)w, (void)bias, (void)act, (void)alpha;
    return NULL;
}
bool ops_fused_dense_run(ops_fused_dense *f, float *out, float *in, int64_t B)
{
    (void)f, (void)out, (void)in, (void)B;
    return false;
}
void ops_fused_dense_free(ops_fused_dense *f)
{
    (void)f;
}
#endif

void ops_dense_naive(float *out, const float *in, const float *w, const float *bias,
                     int64_t B, int64_t C, int64_t OC, bool w_oc_c, ops_act act, float alpha)
{
    for (int64_t b = 0; b < B; b++) {
        for (int64_t o = 0; o < OC; o++) {
            double s = bias != NULL ? bias[o] : 0.0;
            for (int64_t c = 0; c < C; c++) {
                double wv = w_oc_c ? w[o * C + c] : w[c * OC + o];
                s += (double)in[b * C + c] * wv;
            }
            out[b * OC + o] = (float)act_apply_d(s, act, alpha);
        }
    }
}

void ops_bias_act(float *out, const float *bias, int64_t B, int64_t N, ops_act act, float alpha)
{
    /* One loop per (bias?, act) case so that each inner loop is branch-free and vectorises. */
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * N;
        if (bias != NULL) {
            switch (act) {
            case OPS_ACT_NONE: MAP(o, N, o[j] + bias[j]); break;
            case OPS_ACT_RELU: MAP(o, N, relu1(o[j] + bias[j])); break;
            case OPS_ACT_LEAKY_RELU: MAP(o, N, leaky1(o[j] + bias[j], alpha)); break;
            }
        } else {
            switch (act) {
            case OPS_ACT_NONE: break;
            case OPS_ACT_RELU: MAP(o, N, relu1(o[j])); break;
            case OPS_ACT_LEAKY_RELU: MAP(o, N, leaky1(o[j], alpha)); break;
            }
        }
    }
}

void ops_bias_act_naive(float *out, const float *bias, int64_t B, int64_t N, ops_act act,
                        float alpha)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++) {
            double x = (double)out[b * N + j] + (bias != NULL ? bias[j] : 0.0);
            out[b * N + j] = (float)act_apply_d(x, act, alpha);
        }
}

/* ---- element-wise --------------------------------------------------------------------- */

void ops_relu(float *out, const float *in, int64_t n)
{
    MAP(out, n, relu1(in[j]));
}

void ops_relu_naive(float *out, const float *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (in[i] < 0.0f)
            out[i] = 0.0f;
        else
            out[i] = in[i];
    }
}

void ops_leaky_relu(float *out, const float *in, int64_t n, float alpha)
{
    MAP(out, n, leaky1(in[j], alpha));
}

void ops_leaky_relu_naive(float *out, const float *in, int64_t n, float alpha)
{
    for (int64_t i = 0; i < n; i++) {
        double x = in[i];
        out[i] = (float)(x < 0.0 ? (double)alpha * x : x);
    }
}

void ops_sigmoid(float *out, const float *in, int64_t n)
{
    /* 1/(1+e^-x) is already stable in IEEE arithmetic: e^-x overflows to +inf for very
     * negative x and the quotient is then exactly 0. */
    for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-in[i]));
}

void ops_sigmoid_naive(float *out, const float *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double x = in[i];
        if (x >= 0.0) {
            out[i] = (float)(1.0 / (1.0 + exp(-x)));
        } else {
            double e = exp(x);
            out[i] = (float)(e / (1.0 + e));
        }
    }
}

void ops_tanh(float *out, const float *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(in[i]);
}

void ops_tanh_naive(float *out, const float *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)tanh((double)in[i]);
}

/* ---- softmax -------------------------------------------------------------------------- */

static inline float row_max(const float *x, int64_t N)
{
    float m = x[0];
    for (int64_t j = 1; j < N; j++) m = x[j] > m ? x[j] : m;
    return m;
}

void ops_softmax(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        float *y = out + b * N;
        float m = row_max(x, N);
        double s = 0.0; /* a float sum of 50,000 terms would drift past 1e-6 */
        for (int64_t j = 0; j < N; j++) {
            y[j] = expf(x[j] - m); /* reads x[j] before writing y[j]: out == in is fine */
            s += y[j];
        }
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < N; j++) y[j] *= inv;
    }
}

void ops_softmax_naive(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        double m = x[0];
        for (int64_t j = 1; j < N; j++)
            if (x[j] > m) m = x[j];
        double s = 0.0;
        for (int64_t j = 0; j < N; j++) s += exp((double)x[j] - m);
        for (int64_t j = 0; j < N; j++) out[b * N + j] = (float)(exp((double)x[j] - m) / s);
    }
}

void ops_log_softmax(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        float *y = out + b * N;
        float m = row_max(x, N);
        double s = 0.0;
        for (int64_t j = 0; j < N; j++) s += expf(x[j] - m);
        /* (x - m) - log(s), not x - (m + log(s)): the latter rounds m + log(s) at the scale
         * of m and loses the digits of log(s) when the logits are large. */
        float ls = (float)log(s);
        for (int64_t j = 0; j < N; j++) y[j] = (x[j] - m) - ls;
    }
}

void ops_log_softmax_naive(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        double m = x[0];
        for (int64_t j = 1; j < N; j++)
            if (x[j] > m) m = x[j];
        double s = 0.0;
        for (int64_t j = 0; j < N; j++) s += exp((double)x[j] - m);
        double lse = m + log(s);
        for (int64_t j = 0; j < N; j++) out[b * N + j] = (float)((double)x[j] - lse);
    }
}

/* ---- binary, with a row vector broadcast ------------------------------------------------ */

void ops_add(float *out, const float *a, const float *b, int64_t n)
{
    MAP(out, n, a[j] + b[j]);
}

void ops_add_naive(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)((double)a[i] + (double)b[i]);
}

void ops_mul(float *out, const float *a, const float *b, int64_t n)
{
    MAP(out, n, a[j] * b[j]);
}

void ops_mul_naive(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)((double)a[i] * (double)b[i]);
}

void ops_add_row(float *out, const float *a, const float *row, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = a + b * N;
        MAP(out + b * N, N, x[j] + row[j]);
    }
}

void ops_add_row_naive(float *out, const float *a, const float *row, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++)
            out[b * N + j] = (float)((double)a[b * N + j] + (double)row[j]);
}

void ops_mul_row(float *out, const float *a, const float *row, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = a + b * N;
        MAP(out + b * N, N, x[j] * row[j]);
    }
}

void ops_mul_row_naive(float *out, const float *a, const float *row, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++)
            out[b * N + j] = (float)((double)a[b * N + j] * (double)row[j]);
}

void ops_channel_affine(float *out, const float *in, const float *scale, const float *shift,
                        int64_t B, int64_t C, int64_t inner)
{
    if (inner == 1) {
        for (int64_t b = 0; b < B; b++) {
            const float *x = in + b * C;
            MAP(out + b * C, C, x[j] * scale[j] + shift[j]);
        }
        return;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *x = in + (b * C + c) * inner;
            float *y = out + (b * C + c) * inner;
            float s = scale[c], t = shift[c];
            MAP(y, inner, x[j] * s + t);
        }
}

void ops_channel_affine_naive(float *out, const float *in, const float *scale,
                              const float *shift, int64_t B, int64_t C, int64_t inner)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (b * C + c) * inner + i;
                out[at] = (float)((double)in[at] * scale[c] + shift[c]);
            }
}

/* ---- top-k ------------------------------------------------------------------------------ */

/* Does (a at index ia) rank strictly above (b at index ib)? NaN ranks below every number;
 * equal values rank by index, the lower first. */
static inline bool better(float a, int64_t ia, float b, int64_t ib, bool largest)
{
    bool na = isnan(a), nb = isnan(b);
    if (na || nb) return na && nb ? ia < ib : nb;
    if (a != b) return largest ? a > b : a < b;
    return ia < ib;
}

/* Sift the entry at p down a heap of n whose root is the WORST kept entry. */
static void heap_down(float *v, int64_t *ix, int64_t n, int64_t p, bool largest)
{
    for (;;) {
        int64_t l = 2 * p + 1, r = l + 1, w = p;
        if (l < n && better(v[w], ix[w], v[l], ix[l], largest)) w = l;
        if (r < n && better(v[w], ix[w], v[r], ix[r], largest)) w = r;
        if (w == p) return;
        float tv = v[p];
        v[p] = v[w];
        v[w] = tv;
        int64_t ti = ix[p];
        ix[p] = ix[w];
        ix[w] = ti;
        p = w;
    }
}

void ops_topk_ordered(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k,
                      bool largest)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        float *v = val + b * k;
        int64_t *ix = idx + b * k;
        /* v/ix[0..k) is a heap with the worst kept entry at the root: a new entry only has to
         * beat the root, which most entries of a long row do not. */
        for (int64_t j = 0; j < k; j++) {
            v[j] = x[j];
            ix[j] = j;
        }
        for (int64_t p = k / 2 - 1; p >= 0; p--) heap_down(v, ix, k, p, largest);
        for (int64_t j = k; j < N; j++) {
            if (!better(x[j], j, v[0], ix[0], largest)) continue;
            v[0] = x[j];
            ix[0] = j;
            heap_down(v, ix, k, 0, largest);
        }
        /* Heap sort in place: move the worst to the end, repeatedly; the best ends first. */
        for (int64_t n = k - 1; n > 0; n--) {
            float tv = v[0];
            v[0] = v[n];
            v[n] = tv;
            int64_t ti = ix[0];
            ix[0] = ix[n];
            ix[n] = ti;
            heap_down(v, ix, n, 0, largest);
        }
    }
}

void ops_topk(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k)
{
    ops_topk_ordered(val, idx, in, B, N, k, true);
}

void ops_topk_ordered_naive(float *val, int64_t *idx, const float *in, int64_t B, int64_t N,
                            int64_t k, bool largest)
{
    /* Selection: the i-th pick is the best entry not picked yet, the lowest index on ties.
     * "Not picked yet" is checked against earlier picks, O(N·k²) per row; fine for a test. */
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        for (int64_t i = 0; i < k; i++) {
            int64_t best = -1;
            for (int64_t j = 0; j < N; j++) {
                bool taken = false;
                for (int64_t p = 0; p < i; p++)
                    if (idx[b * k + p] == j) taken = true;
                if (taken) continue;
                if (best < 0 || better(x[j], j, x[best], best, largest)) best = j;
            }
            idx[b * k + i] = best;
            val[b * k + i] = x[best];
        }
    }
}

void ops_topk_naive(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k)
{
    ops_topk_ordered_naive(val, idx, in, B, N, k, true);
}

/* ---- log-sum-exp and softmax along any axis ------------------------------------------------ */

static float lse1(const float *x, int64_t N, int64_t stride)
{
    float m = x[0];
    for (int64_t j = 1; j < N; j++) {
        float v = x[j * stride];
        if (v > m || isnan(v)) m = v;
        if (isnan(m)) return m;
    }
    if (isinf(m)) return m; /* all -inf: -inf; any +inf: +inf */
    double s = 0.0;
    for (int64_t j = 0; j < N; j++) s += expf(x[j * stride] - m);
    return (float)((double)m + log(s)); /* s >= 1: the maximum contributes exp(0) */
}

void ops_log_sum_exp(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) out[b] = lse1(in + b * N, N, 1);
}

void ops_log_sum_exp_naive(float *out, const float *in, int64_t B, int64_t N)
{
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * N;
        double m = -INFINITY;
        bool nan = false;
        for (int64_t j = 0; j < N; j++) {
            nan |= isnan(x[j]);
            if (x[j] > m) m = x[j];
        }
        if (nan || isinf(m)) {
            out[b] = nan ? NAN : (float)m;
            continue;
        }
        double s = 0.0;
        for (int64_t j = 0; j < N; j++) s += exp((double)x[j] - m);
        out[b] = (float)(m + log(s));
    }
}

void ops_softmax_axis(float *out, const float *in, int64_t outer, int64_t N, int64_t inner,
                      bool as_log)
{
    if (inner == 1) {
        (as_log ? ops_log_softmax : ops_softmax)(out, in, outer, N);
        return;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in + o * N * inner + i;
            float *y = out + o * N * inner + i;
            float m = x[0];
            for (int64_t j = 1; j < N; j++) m = x[j * inner] > m ? x[j * inner] : m;
            double s = 0.0;
            for (int64_t j = 0; j < N; j++) s += expf(x[j * inner] - m);
            if (as_log) {
                float ls = (float)log(s);
                for (int64_t j = 0; j < N; j++) y[j * inner] = (x[j * inner] - m) - ls;
            } else {
                float inv = (float)(1.0 / s);
                for (int64_t j = 0; j < N; j++) y[j * inner] = expf(x[j * inner] - m) * inv;
            }
        }
}

void ops_softmax_axis_naive(float *out, const float *in, int64_t outer, int64_t N,
                            int64_t inner, bool as_log)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in + o * N * inner + i;
            double m = x[0];
            for (int64_t j = 1; j < N; j++)
                if (x[j * inner] > m) m = x[j * inner];
            double s = 0.0;
            for (int64_t j = 0; j < N; j++) s += exp((double)x[j * inner] - m);
            for (int64_t j = 0; j < N; j++) {
                double d = (double)x[j * inner] - m;
                out[o * N * inner + i + j * inner] = (float)(as_log ? d - log(s) : exp(d) / s);
            }
        }
}

/* ---- N-D iteration ------------------------------------------------------------------------ */

/* Merges adjacent axes that every stride array treats as one (stride[i] == stride[i+1] *
 * dims[i+1] in each), so that loops run over as few, as long axes as possible.  st holds
 * nst stride arrays.  Returns the new rank (>= 1). */
static int collapse(int rank, int64_t *dims, int64_t **st, int nst)
{
    if (rank == 0) {
        dims[0] = 1;
        for (int s = 0; s < nst; s++) st[s][0] = 0;
        return 1;
    }
    int r = 0;
    for (int i = 1; i < rank; i++) {
        int64_t di = dims[i]; /* read before dims[r] is written: r may reach i */
        if (di == 1) continue; /* a length-1 axis moves nothing */
        bool merge = true;
        for (int s = 0; s < nst && merge; s++) merge = st[s][r] == st[s][i] * di;
        if (!merge && dims[r] != 1) {
            r++;
            dims[r] = 1;
        }
        dims[r] *= di;
        for (int s = 0; s < nst; s++) st[s][r] = st[s][i];
    }
    return r + 1;
}

/* Advances the counter ctr over dims[0..rank-1) (all but the last axis) and the offsets by the
 * strides; returns false after the last position. */
static inline bool next_pos(int rank, const int64_t *dims, int64_t *ctr, int64_t **st,
                            int64_t *off, int nst)
{
    for (int i = rank - 2; i >= 0; i--) {
        ctr[i]++;
        for (int s = 0; s < nst; s++) off[s] += st[s][i];
        if (ctr[i] < dims[i]) return true;
        for (int s = 0; s < nst; s++) off[s] -= st[s][i] * dims[i];
        ctr[i] = 0;
    }
    return false;
}

static void contiguous_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

static int64_t count_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

/* ---- broadcast binary ----------------------------------------------------------------------- */

#define BIN_LOOP(T, o, x, y, n, sa, sb, OPX)                                                    \
    do {                                                                                     \
        if (sa == 1 && sb == 1) MAP(o, n, OPX(x[j], y[j]));                                  \
        else if (sa == 1 && sb == 0) { T y0 = y[0]; MAP(o, n, OPX(x[j], y0)); }             \
        else if (sa == 0 && sb == 1) { T x0 = x[0]; MAP(o, n, OPX(x0, y[j])); }             \
        else for (int64_t j = 0; j < n; j++) o[j] = OPX(x[j * sa], y[j * sb]);               \
    } while (0)
#define OP_ADD(p, q) ((p) + (q))
#define OP_SUB(p, q) ((p) - (q))
#define OP_MUL(p, q) ((p) * (q))
#define OP_DIV(p, q) ((p) / (q))
#define OP_IDIV(p, q) ((q) == 0 ? 0 : ((p) == INT64_MIN && (q) == -1) ? (p) : (p) / (q))

void ops_broadcast(float *out, const float *a, const float *b, int rank, const int64_t *dims,
                   const int64_t *as, const int64_t *bs, ops_binop op)
{
    int64_t d[OPS_MAX_RANK + 1], os[OPS_MAX_RANK + 1], sa[OPS_MAX_RANK + 1],
        sb[OPS_MAX_RANK + 1], ctr[OPS_MAX_RANK + 1] = {0};
    memcpy(d, dims, (size_t)rank * sizeof *d);
    contiguous_strides(rank, dims, os);
    memcpy(sa, as, (size_t)rank * sizeof *sa);
    memcpy(sb, bs, (size_t)rank * sizeof *sb);
    if (count_of(rank, dims) == 0) return;
    int64_t *st[3] = {os, sa, sb};
    int r = collapse(rank, d, st, 3);
    int64_t off[3] = {0, 0, 0}, n = d[r - 1], ia = sa[r - 1], ib = sb[r - 1];
    do {
        float *o = out + off[0];
        const float *x = a + off[1], *y = b + off[2];
        switch (op) {
        case OPS_BIN_ADD: BIN_LOOP(float, o, x, y, n, ia, ib, OP_ADD); break;
        case OPS_BIN_SUB: BIN_LOOP(float, o, x, y, n, ia, ib, OP_SUB); break;
        case OPS_BIN_MUL: BIN_LOOP(float, o, x, y, n, ia, ib, OP_MUL); break;
        case OPS_BIN_DIV: BIN_LOOP(float, o, x, y, n, ia, ib, OP_DIV); break;
        }
    } while (next_pos(r, d, ctr, st, off, 3));
}

void ops_broadcast_i64(int64_t *out, const int64_t *a, const int64_t *b, int rank,
                       const int64_t *dims, const int64_t *as, const int64_t *bs, ops_binop op)
{
    int64_t n = count_of(rank, dims), ctr[OPS_MAX_RANK] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < rank; i++) {
            oa += ctr[i] * as[i];
            ob += ctr[i] * bs[i];
        }
        int64_t x = a[oa], y = b[ob];
        switch (op) {
        case OPS_BIN_ADD: out[e] = (int64_t)((uint64_t)x + (uint64_t)y); break;
        case OPS_BIN_SUB: out[e] = (int64_t)((uint64_t)x - (uint64_t)y); break;
        case OPS_BIN_MUL: out[e] = (int64_t)((uint64_t)x * (uint64_t)y); break;
        case OPS_BIN_DIV: out[e] = OP_IDIV(x, y); break;
        }
        for (int i = rank - 1; i >= 0 && ++ctr[i] == dims[i]; i--) ctr[i] = 0;
    }
}

void ops_broadcast_naive(float *out, const float *a, const float *b, int rank,
                         const int64_t *dims, const int64_t *as, const int64_t *bs, ops_binop op)
{
    int64_t n = count_of(rank, dims), ctr[OPS_MAX_RANK] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < rank; i++) {
            oa += ctr[i] * as[i];
            ob += ctr[i] * bs[i];
        }
        double x = a[oa], y = b[ob];
        double r = op == OPS_BIN_ADD ? x + y : op == OPS_BIN_SUB ? x - y
                 : op == OPS_BIN_MUL ? x * y : x / y;
        out[e] = (float)r;
        for (int i = rank - 1; i >= 0 && ++ctr[i] == dims[i]; i--) ctr[i] = 0;
    }
}

/* ---- data movement --------------------------------------------------------------------------- */

void ops_transpose(void *out, const void *in, size_t esize, int rank, const int64_t *dims,
                   const int *perm)
{
    int64_t ist[OPS_MAX_RANK + 1], d[OPS_MAX_RANK + 1], os[OPS_MAX_RANK + 1],
        is[OPS_MAX_RANK + 1], ctr[OPS_MAX_RANK + 1] = {0};
    contiguous_strides(rank, dims, ist);
    for (int i = 0; i < rank; i++) {
        d[i] = dims[perm[i]];
        is[i] = ist[perm[i]];
    }
    contiguous_strides(rank, d, os);
    if (count_of(rank, d) == 0) return;
    int64_t *st[2] = {os, is};
    int r = collapse(rank, d, st, 2);
    int64_t off[2] = {0, 0}, n = d[r - 1], s = is[r - 1];
    do {
        if (esize == 4) {
            float *o = (float *)out + off[0];
            const float *x = (const float *)in + off[1];
            for (int64_t j = 0; j < n; j++) o[j] = x[j * s];
        } else {
            int64_t *o = (int64_t *)out + off[0];
            const int64_t *x = (const int64_t *)in + off[1];
            for (int64_t j = 0; j < n; j++) o[j] = x[j * s];
        }
    } while (next_pos(r, d, ctr, st, off, 2));
}

void ops_transpose_naive(void *out, const void *in, size_t esize, int rank, const int64_t *dims,
                         const int *perm)
{
    int64_t ist[OPS_MAX_RANK], d[OPS_MAX_RANK], ctr[OPS_MAX_RANK] = {0};
    contiguous_strides(rank, dims, ist);
    for (int i = 0; i < rank; i++) d[i] = dims[perm[i]];
    int64_t n = count_of(rank, d);
    for (int64_t e = 0; e < n; e++) {
        int64_t src = 0;
        for (int i = 0; i < rank; i++) src += ctr[i] * ist[perm[i]];
        memcpy((char *)out + (size_t)e * esize, (const char *)in + (size_t)src * esize, esize);
        for (int i = rank - 1; i >= 0 && ++ctr[i] == d[i]; i--) ctr[i] = 0;
    }
}

int64_t ops_gather(void *out, const void *data, size_t esize, const int64_t *idx, int64_t nidx,
                   int64_t outer, int64_t D, int64_t inner)
{
    size_t row = (size_t)inner * esize;
    for (int64_t p = 0; p < nidx; p++)
        if (idx[p] < -D || idx[p] >= D) return p;
    char *o = out;
    const char *d = data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t p = 0; p < nidx; p++) {
            int64_t i = idx[p] < 0 ? idx[p] + D : idx[p];
            memcpy(o, d + ((size_t)(a * D + i)) * row, row);
            o += row;
        }
    return -1;
}

/* ---- reductions ------------------------------------------------------------------------------ */

void ops_reduce(float *out, const float *in, int rank, const int64_t *dims, const bool *reduce,
                bool mean)
{
    int64_t d[OPS_MAX_RANK + 1], is[OPS_MAX_RANK + 1], os[OPS_MAX_RANK + 1],
        od[OPS_MAX_RANK + 1], ctr[OPS_MAX_RANK + 1] = {0};
    int64_t on = 1, rn = 1;
    for (int i = 0; i < rank; i++) {
        od[i] = reduce[i] ? 1 : dims[i];
        on *= od[i];
        if (reduce[i]) rn *= dims[i];
    }
    contiguous_strides(rank, dims, is);
    contiguous_strides(rank, od, os);
    for (int i = 0; i < rank; i++)
        if (reduce[i]) os[i] = 0;
    memset(out, 0, (size_t)on * sizeof *out);
    memcpy(d, dims, (size_t)rank * sizeof *d);
    if (count_of(rank, dims) > 0) {
        int64_t *st[2] = {is, os};
        int r = collapse(rank, d, st, 2);
        int64_t off[2] = {0, 0}, n = d[r - 1], so = os[r - 1];
        do {
            const float *x = in + off[0];
            float *o = out + off[1];
            if (so == 0) {
                float s = 0.0f;
                for (int64_t j = 0; j < n; j++) s += x[j];
                o[0] += s;
            } else {
                MAP(o, n, o[j] + x[j]);
            }
        } while (next_pos(r, d, ctr, st, off, 2));
    }
    if (mean) {
        float inv = rn > 0 ? 1.0f / (float)rn : NAN;
        MAP(out, on, out[j] * inv);
    }
}

void ops_reduce_naive(float *out, const float *in, int rank, const int64_t *dims,
                      const bool *reduce, bool mean)
{
    int64_t od[OPS_MAX_RANK] = {0}, os[OPS_MAX_RANK] = {0}, ctr[OPS_MAX_RANK] = {0}, on = 1,
            rn = 1;
    for (int i = 0; i < rank; i++) {
        od[i] = reduce[i] ? 1 : dims[i];
        on *= od[i];
        if (reduce[i]) rn *= dims[i];
    }
    contiguous_strides(rank, od, os);
    for (int64_t j = 0; j < on; j++) out[j] = 0.0f;
    int64_t n = count_of(rank, dims);
    for (int64_t e = 0; e < n; e++) {
        int64_t o = 0;
        for (int i = 0; i < rank; i++) o += reduce[i] ? 0 : ctr[i] * os[i];
        out[o] = (float)((double)out[o] + in[e]);
        for (int i = rank - 1; i >= 0 && ++ctr[i] == dims[i]; i--) ctr[i] = 0;
    }
    if (mean)
        for (int64_t j = 0; j < on; j++) out[j] = (float)((double)out[j] / (double)rn);
}

void ops_argmax(int64_t *out, const float *in, int64_t outer, int64_t N, int64_t inner,
                bool last)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in + o * N * inner + i;
            int64_t best = 0;
            for (int64_t j = 1; j < N; j++) {
                float v = x[j * inner], b = x[best * inner];
                if (isnan(b)) break; /* the first NaN wins, as in numpy */
                if (isnan(v) || v > b || (last && v == b)) best = j;
            }
            if (last && isnan(x[best * inner]))
                for (int64_t j = N - 1; j > best; j--)
                    if (isnan(x[j * inner])) {
                        best = j;
                        break;
                    }
            out[o * inner + i] = best;
        }
}

/* ---- sparse × dense ------------------------------------------------------------------------- */

void ops_dense_sparse(float *out, const int64_t *row_ptr, const int32_t *cols,
                      const float *vals, const float *w, const float *bias, int64_t B,
                      int64_t OC, ops_act act, float alpha)
{
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * OC;
        if (bias != NULL) memcpy(o, bias, (size_t)OC * sizeof *o);
        else memset(o, 0, (size_t)OC * sizeof *o);
        for (int64_t p = row_ptr[b]; p < row_ptr[b + 1]; p++) {
            const float *wr = w + (int64_t)cols[p] * OC;
            float v = vals[p];
            MAP(o, OC, o[j] + v * wr[j]);
        }
    }
    if (act != OPS_ACT_NONE) ops_bias_act(out, NULL, B, OC, act, alpha);
}

void ops_dense_sparse_naive(float *out, const int64_t *row_ptr, const int32_t *cols,
                            const float *vals, const float *w, const float *bias, int64_t B,
                            int64_t OC, ops_act act, float alpha)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < OC; o++) {
            double s = bias != NULL ? bias[o] : 0.0;
            for (int64_t p = row_ptr[b]; p < row_ptr[b + 1]; p++)
                s += (double)vals[p] * w[(int64_t)cols[p] * OC + o];
            out[b * OC + o] = (float)act_apply_d(s, act, alpha);
        }
}
