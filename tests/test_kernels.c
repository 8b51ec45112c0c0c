/* Unit tests of kernels/: the ops against hand-computed values and against their naive
 * twins, the ONNX decoder on hand-made hostile bytes, and the golden tests — every fixture
 * model of tests/fixtures/make_fixtures.py through model_forward against numpy.
 * Fixtures: $PRECAST_FIXTURES, default build/fixtures (`make fixtures`). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef PRECAST_ONEDNN
#include <omp.h>
#endif

#include "kernels/model.h"
#include "kernels/onnx.h"
#include "kernels/ops.h"

static char err[PC_ERRLEN];

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *fixtures(void)
{
    const char *d = getenv("PRECAST_FIXTURES");
    return d != NULL && d[0] != '\0' ? d : "build/fixtures";
}

static char *fixture_path(const char *name, const char *ext)
{
    static char path[4][1024];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s%s", fixtures(), name, ext);
    return p;
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run `make fixtures`?)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 1);
    ck_assert(buf != NULL);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A PCT1 matrix file (see make_fixtures.py). */
static float *read_matrix(const char *path, int64_t *rows, int64_t *cols)
{
    size_t len;
    uint8_t *b = read_file(path, &len);
    ck_assert_msg(len >= 12 && memcmp(b, "PCT1", 4) == 0, "%s: not a PCT1 file", path);
    uint32_t r, c;
    memcpy(&r, b + 4, 4);
    memcpy(&c, b + 8, 4);
    ck_assert_msg(len == 12 + (size_t)r * c * 4, "%s: size does not match its header", path);
    float *m = malloc((size_t)r * c * 4 + 4);
    ck_assert(m != NULL);
    memcpy(m, b + 12, (size_t)r * c * 4);
    free(b);
    *rows = r;
    *cols = c;
    return m;
}

static uint64_t rng_state = 88172645463325252ull;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* Largest |a-b| / (1 + |b|): absolute near zero, relative for large values. */
static double max_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= worst)) worst = d; /* NaN counts as worst */
    }
    return worst;
}

static void expect_close(const float *got, const float *want, int64_t n, double tol,
                         const char *what)
{
    double d = max_diff(got, want, n);
    printf("%-28s largest difference %.3g\n", what, d);
    ck_assert_msg(d <= tol, "%s: largest difference %.3g exceeds %.1g", what, d, tol);
}

/* ---- ops against hand-computed values ------------------------------------------------------- */

START_TEST(test_dense_by_hand)
{
    /* in (2, 3) = [[1 2 3] [4 5 6]];  w (OC=2, C=3) = [[1 0 -1] [.5 .5 .5]];  bias = [3 -5]
     * row 0: 1-3+3 = 1,   .5*6-5 = -2;   row 1: 4-6+3 = 1,   .5*15-5 = 2.5 */
    const float in[6] = {1, 2, 3, 4, 5, 6};
    const float w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
    const float wt[6] = {1, 0.5f, 0, 0.5f, -1, 0.5f}; /* the same as (C=3, OC=2) */
    const float bias[2] = {3, -5};
    const float none[4] = {1, -2, 1, 2.5f}, relu[4] = {1, 0, 1, 2.5f},
                leaky[4] = {1, -0.2f, 1, 2.5f}, nobias[4] = {-2, 3, -2, 7.5f};
    float out[4];
    for (int naive = 0; naive < 2; naive++) {
        void (*f)(float *, const float *, const float *, const float *, int64_t, int64_t,
                  int64_t, bool, ops_act, float) = naive ? ops_dense_naive : ops_dense;
        f(out, in, w, bias, 2, 3, 2, true, OPS_ACT_NONE, 0);
        expect_close(out, none, 4, 1e-7, "dense (OC,C) by hand");
        f(out, in, wt, bias, 2, 3, 2, false, OPS_ACT_NONE, 0);
        expect_close(out, none, 4, 1e-7, "dense (C,OC) by hand");
        f(out, in, w, bias, 2, 3, 2, true, OPS_ACT_RELU, 0);
        expect_close(out, relu, 4, 1e-7, "dense+relu by hand");
        f(out, in, wt, bias, 2, 3, 2, false, OPS_ACT_LEAKY_RELU, 0.1f);
        expect_close(out, leaky, 4, 1e-7, "dense+leaky by hand");
        f(out, in, w, NULL, 2, 3, 2, true, OPS_ACT_NONE, 0);
        expect_close(out, nobias, 4, 1e-7, "dense no bias by hand");
    }
}
END_TEST

START_TEST(test_softmax_by_hand)
{
    /* [1 2 3]: e^-2, e^-1, 1 over 1.5032147 -> .0900306 .2447285 .6652410;
     * log: x - 3 - ln(1.5032147) = x - 3.4076059.
     * [1000 1000 1000]: 1/3 each, without overflow (the max is subtracted first). */
    const float in[6] = {1, 2, 3, 1000, 1000, 1000};
    const float sm[6] = {0.0900306f, 0.2447285f, 0.6652410f, 1 / 3.f, 1 / 3.f, 1 / 3.f};
    const float lsm[6] = {-2.4076059f, -1.4076059f, -0.4076059f, -1.0986123f, -1.0986123f,
                          -1.0986123f};
    float out[6];
    ops_softmax(out, in, 2, 3);
    expect_close(out, sm, 6, 1e-6, "softmax by hand");
    ops_softmax_naive(out, in, 2, 3);
    expect_close(out, sm, 6, 1e-6, "softmax_naive by hand");
    ops_log_softmax(out, in, 2, 3);
    expect_close(out, lsm, 6, 1e-6, "log_softmax by hand");
    ops_log_softmax_naive(out, in, 2, 3);
    expect_close(out, lsm, 6, 1e-6, "log_softmax_naive by hand");
    float inplace[6];
    memcpy(inplace, in, sizeof inplace);
    ops_softmax(inplace, inplace, 2, 3); /* out == in is allowed */
    expect_close(inplace, sm, 6, 1e-6, "softmax in place");
}
END_TEST

START_TEST(test_elementwise_by_hand)
{
    const float in[5] = {-2, -0.5f, 0, 1, 2};
    float out[5];
    /* sigmoid(x) = 1/(1+e^-x): .1192029 .3775407 .5 .7310586 .8807971 */
    const float sig[5] = {0.1192029f, 0.3775407f, 0.5f, 0.7310586f, 0.8807971f};
    const float th[5] = {-0.9640276f, -0.4621172f, 0, 0.7615942f, 0.9640276f};
    const float re[5] = {0, 0, 0, 1, 2}, lk[5] = {-0.02f, -0.005f, 0, 1, 2};
    ops_sigmoid(out, in, 5);
    expect_close(out, sig, 5, 1e-6, "sigmoid by hand");
    ops_tanh(out, in, 5);
    expect_close(out, th, 5, 1e-6, "tanh by hand");
    ops_relu(out, in, 5);
    expect_close(out, re, 5, 0, "relu by hand");
    ops_leaky_relu(out, in, 5, 0.01f);
    expect_close(out, lk, 5, 1e-7, "leaky_relu by hand");
    /* Extremes: no overflow to NaN, and NaN is not hidden by relu. */
    const float ext[3] = {-1000, 1000, NAN};
    ops_sigmoid(out, ext, 3);
    ck_assert(out[0] == 0.0f && out[1] == 1.0f && isnan(out[2]));
    ops_relu(out, ext, 3);
    ck_assert(out[0] == 0.0f && out[1] == 1000.0f && isnan(out[2]));

    /* a (2, 3) + row [10 20 30];  * row;  affine: a * [1 2 3] + [1 1 1] */
    const float a[6] = {1, 2, 3, 4, 5, 6}, row[3] = {10, 20, 30}, sc[3] = {1, 2, 3},
                sh[3] = {1, 1, 1};
    const float add[6] = {11, 22, 33, 14, 25, 36}, mul[6] = {10, 40, 90, 40, 100, 180},
                aff[6] = {2, 5, 10, 5, 11, 19};
    float o6[6];
    ops_add_row(o6, a, row, 2, 3);
    expect_close(o6, add, 6, 0, "add_row by hand");
    ops_mul_row(o6, a, row, 2, 3);
    expect_close(o6, mul, 6, 0, "mul_row by hand");
    ops_channel_affine(o6, a, sc, sh, 2, 3, 1);
    expect_close(o6, aff, 6, 0, "channel_affine by hand");
    /* (B=1, C=2, inner=3): channel 0 * 1 + 1, channel 1 * 2 + 1 */
    const float aff3[6] = {2, 3, 4, 9, 11, 13};
    ops_channel_affine(o6, a, sc, sh, 1, 2, 3);
    expect_close(o6, aff3, 6, 0, "channel_affine inner=3");
    ops_add(o6, a, a, 6);
    ck_assert(o6[5] == 12.0f);
    ops_mul(o6, a, a, 6);
    ck_assert(o6[5] == 36.0f);
}
END_TEST

START_TEST(test_topk_by_hand)
{
    /* [3 1 3 5 NaN 2]: top 3 = 5@3, 3@0, 3@2 (a tie: the lower index first); NaN ranks last */
    const float in[6] = {3, 1, 3, 5, NAN, 2};
    float v[6];
    int64_t ix[6];
    for (int naive = 0; naive < 2; naive++) {
        (naive ? ops_topk_naive : ops_topk)(v, ix, in, 1, 6, 3);
        ck_assert(ix[0] == 3 && ix[1] == 0 && ix[2] == 2);
        ck_assert(v[0] == 5 && v[1] == 3 && v[2] == 3);
        (naive ? ops_topk_naive : ops_topk)(v, ix, in, 1, 6, 6);
        const int64_t want[6] = {3, 0, 2, 5, 1, 4};
        for (int i = 0; i < 6; i++) ck_assert_int_eq(ix[i], want[i]);
        ck_assert(isnan(v[5]));
        (naive ? ops_topk_naive : ops_topk)(v, ix, in, 1, 6, 1);
        ck_assert(ix[0] == 3);
    }
}
END_TEST

/* ---- ops_dense_batch: the forward pass's dense layer, batch-invariant ------------------------ */

/* A dense layer as the forward pass runs it: oneDNN's fused layer if f, else ops_dense_batch
 * through g, with bias and ReLU. */
typedef struct dense_way {
    ops_gemm g;
    ops_fused_dense *f;
} dense_way;

/* Runs the layer on a batch buffer of Bfull rows whose first B rows are rows
 * first..first+B-1 of x, the buffer's other rows filled with NaN (stale scratch), into out. */
static void dense_batch_of(float *out, float *buf, const float *x, int64_t first, int64_t B,
                           int64_t Bfull, const float *w, const float *bias, int64_t C,
                           int64_t OC, dense_way way)
{
    for (int64_t i = 0; i < Bfull * C; i++) buf[i] = NAN;
    memcpy(buf, x + first * C, (size_t)(B * C) * sizeof *buf);
    if (way.f != NULL) ck_assert(ops_fused_dense_run(way.f, out, buf, B));
    else ops_dense_batch(out, buf, w, bias, B, Bfull, C, OC, way.g, OPS_ACT_RELU, 0);
}

START_TEST(test_dense_batch_invariant)
{
    /* A row's result must be bit for bit the same whatever batch it shares and wherever in the
     * batch it sits: the table may not depend on the rank count.  Neither BLAS is that by
     * itself (ops.c lists what was seen), so ops_dense_batch always runs the whole buffer and
     * ops_dense_choose tries each library on the shape first.  Each shape is checked through
     * the chosen library and through the row-by-row fallback, which must always pass. */
    static const int64_t shapes[3][3] = {{128, 1024, 128}, {37, 300, 132}, {64, 64, 12}};
    for (int t = 0; t < 3; t++) {
        int64_t Bfull = shapes[t][0], C = shapes[t][1], OC = shapes[t][2], rows = 3 * Bfull;
        float *x = malloc((size_t)(rows * C) * 4), *w = malloc((size_t)(C * OC) * 4);
        float *bias = malloc((size_t)OC * 4), *buf = malloc((size_t)(Bfull * C) * 4);
        float *want = malloc((size_t)(rows * OC) * 4), *got = malloc((size_t)(Bfull * OC) * 4);
        float *naive = malloc((size_t)(rows * OC) * 4);
        fill(w, C * OC, 0.1f);
        fill(x, rows * C, 2.0f);
        fill(bias, OC, 0.5f);
        ops_dense_naive(naive, x, w, bias, rows, C, OC, false, OPS_ACT_RELU, 0);
        ck_assert(ops_dense_rows_agree(OPS_GEMM_ROWWISE, Bfull, C, OC, w));
        const ops_gemm by[2] = {ops_dense_choose(Bfull, C, OC, w), OPS_GEMM_ROWWISE};
        /* k = 2: oneDNN's fused layer, where it builds and passes its trial. */
        ops_fused_dense *fused = ops_fused_dense_new(Bfull, C, OC, w, bias, OPS_ACT_RELU, 0);
        for (int k = 0; k < 3; k++) {
            ops_gemm g = by[k < 2 ? k : 0];
            if (k == 2 && fused == NULL) break;
            dense_way way = {g, k == 2 ? fused : NULL};
            /* The reference: every row in a full batch at its first place. */
            for (int64_t r = 0; r < rows; r += Bfull) {
                dense_batch_of(got, buf, x, r, Bfull, Bfull, w, bias, C, OC, way);
                memcpy(want + r * OC, got, (size_t)(Bfull * OC) * 4);
            }
            char what[80];
            snprintf(what, sizeof what, "dense_batch %lldx%lldx%lld %s", (long long)Bfull,
                     (long long)C, (long long)OC, k == 2 ? "oneDNN fused" : ops_gemm_name(g));
            expect_close(want, naive, rows * OC, 1e-4, what);
            static const int64_t firsts[] = {0, 1, 5, 50};
            static const int64_t sizes[] = {1, 2, 3, 7, 31, 1000};
            for (size_t f = 0; f < sizeof firsts / sizeof *firsts; f++)
                for (size_t n = 0; n < sizeof sizes / sizeof *sizes; n++) {
                    int64_t first = firsts[f], B = sizes[n] < Bfull ? sizes[n] : Bfull;
                    dense_batch_of(got, buf, x, first, B, Bfull, w, bias, C, OC, way);
                    ck_assert_msg(memcmp(got, want + first * OC, (size_t)(B * OC) * 4) == 0,
                                  "%s: rows %lld..%lld in a batch of %lld differ from a full "
                                  "batch", what, (long long)first, (long long)(first + B - 1),
                                  (long long)B);
                }
        }
        ops_fused_dense_free(fused);
        free(x), free(w), free(bias), free(buf), free(want), free(got), free(naive);
    }
}
END_TEST

START_TEST(test_fused_dense_acts)
{
    /* oneDNN's fused layer against the naive dense, for each activation it fuses, with and
     * without bias, in a partial batch.  Skipped where it is not built (make ONEDNN=0). */
    enum { B_FULL = 64, B = 45, C = 100, OC = 128 };
    float *x = malloc(B_FULL * C * 4), *w = malloc(C * OC * 4), *bias = malloc(OC * 4);
    float *got = malloc(B_FULL * OC * 4), *want = malloc(B * OC * 4);
    fill(x, B_FULL * C, 2.0f);
    fill(w, C * OC, 0.1f);
    fill(bias, OC, 0.5f);
    static const ops_act acts[3] = {OPS_ACT_NONE, OPS_ACT_RELU, OPS_ACT_LEAKY_RELU};
    for (int a = 0; a < 3; a++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *b = with_bias ? bias : NULL;
            ops_fused_dense *f = ops_fused_dense_new(B_FULL, C, OC, w, b, acts[a], 0.05f);
            if (f == NULL) {
                printf("fused dense                  not built (no oneDNN)\n");
                goto out;
            }
            float *in = malloc(B_FULL * C * 4);
            memcpy(in, x, B_FULL * C * 4);
            ck_assert(ops_fused_dense_run(f, got, in, B));
            ops_dense_naive(want, x, w, b, B, C, OC, false, acts[a], 0.05f);
            char what[64];
            snprintf(what, sizeof what, "fused act=%d bias=%d/naive", a, with_bias);
            expect_close(got, want, B * OC, 1e-5, what);
            for (int64_t i = B * C; i < B_FULL * C; i++) ck_assert(in[i] == 0.0f);
            free(in);
            ops_fused_dense_free(f);
        }
out:
    free(x), free(w), free(bias), free(got), free(want);
}
END_TEST

START_TEST(test_onednn_trial)
{
    /* The trial must catch a CPU whose kernels treat some places of a batch apart.
     * Restricted to AVX2, oneDNN's sgemm does that here for 37 rows of K = 300, N = 132 (and
     * not for 48).  DNNL_MAX_CPU_ISA is read once per process, so this needs Check's fork per
     * test (not valgrind's CK_FORK=no, nor a CPU without AVX2, nor make ONEDNN=0). */
#ifdef PRECAST_ONEDNN
    const char *fork_mode = getenv("CK_FORK");
    if ((fork_mode != NULL && strcmp(fork_mode, "no") == 0) || !__builtin_cpu_supports("avx2")) {
        printf("oneDNN trial                 skipped (no fork per test, or no AVX2)\n");
        return;
    }
    setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
    float *w = malloc(300 * 132 * 4);
    fill(w, 300 * 132, 0.1f);
    ck_assert_msg(!ops_dense_rows_agree(OPS_GEMM_ONEDNN, 37, 300, 132, w),
                  "the trial passed 37 rows on oneDNN's AVX2 kernels, which differ by place");
    ck_assert(ops_dense_rows_agree(OPS_GEMM_ONEDNN, 48, 300, 132, w));
    ck_assert(ops_dense_choose(37, 300, 132, w) != OPS_GEMM_ONEDNN);
    ck_assert(ops_fused_dense_new(37, 300, 132, w, NULL, OPS_ACT_NONE, 0) == NULL);
    printf("oneDNN trial                 37 rows refused, 48 accepted (AVX2 kernels)\n");
    free(w);
#else
    float w[4] = {1, 2, 3, 4};
    ck_assert(!ops_dense_rows_agree(OPS_GEMM_ONEDNN, 2, 1, 4, w));
#endif
}
END_TEST

/* ---- ops: fast against naive on random data ------------------------------------------------ */

START_TEST(test_fast_vs_naive)
{
    enum { B = 37, C = 131, OC = 67 };
    float *in = malloc(B * C * 4), *w = malloc(OC * C * 4), *bias = malloc(OC * 4);
    float *o1 = malloc(B * C * 4), *o2 = malloc(B * C * 4);
    fill(in, B * C, 3.0f);
    fill(w, OC * C, 0.2f);
    fill(bias, OC, 1.0f);
    static const ops_act acts[3] = {OPS_ACT_NONE, OPS_ACT_RELU, OPS_ACT_LEAKY_RELU};
    for (int t = 0; t < 2; t++)
        for (int a = 0; a < 3; a++) {
            ops_dense(o1, in, w, bias, B, C, OC, t, acts[a], 0.05f);
            ops_dense_naive(o2, in, w, bias, B, C, OC, t, acts[a], 0.05f);
            char what[64];
            snprintf(what, sizeof what, "dense fast/naive w_oc_c=%d act=%d", t, a);
            expect_close(o1, o2, B * OC, 1e-5, what);
        }
    ops_softmax(o1, in, B, C);
    ops_softmax_naive(o2, in, B, C);
    expect_close(o1, o2, B * C, 1e-6, "softmax fast/naive");
    ops_log_softmax(o1, in, B, C);
    ops_log_softmax_naive(o2, in, B, C);
    expect_close(o1, o2, B * C, 1e-6, "log_softmax fast/naive");
    ops_sigmoid(o1, in, B * C);
    ops_sigmoid_naive(o2, in, B * C);
    expect_close(o1, o2, B * C, 1e-6, "sigmoid fast/naive");
    ops_tanh(o1, in, B * C);
    ops_tanh_naive(o2, in, B * C);
    expect_close(o1, o2, B * C, 1e-6, "tanh fast/naive");
    ops_relu(o1, in, B * C);
    ops_relu_naive(o2, in, B * C);
    expect_close(o1, o2, B * C, 0, "relu fast/naive");
    ops_leaky_relu(o1, in, B * C, 0.1f);
    ops_leaky_relu_naive(o2, in, B * C, 0.1f);
    expect_close(o1, o2, B * C, 1e-7, "leaky_relu fast/naive");
    ops_add_row(o1, in, w, B, C);
    ops_add_row_naive(o2, in, w, B, C);
    expect_close(o1, o2, B * C, 1e-7, "add_row fast/naive");
    ops_mul_row(o1, in, w, B, C);
    ops_mul_row_naive(o2, in, w, B, C);
    expect_close(o1, o2, B * C, 1e-7, "mul_row fast/naive");
    ops_channel_affine(o1, in, w, w + C, B, C, 1);
    ops_channel_affine_naive(o2, in, w, w + C, B, C, 1);
    expect_close(o1, o2, B * C, 1e-6, "channel_affine fast/naive");
    memcpy(o1, in, B * C * 4);
    ops_bias_act(o1, w, B, C, OPS_ACT_RELU, 0);
    memcpy(o2, in, B * C * 4);
    ops_bias_act_naive(o2, w, B, C, OPS_ACT_RELU, 0);
    expect_close(o1, o2, B * C, 1e-7, "bias_act fast/naive");

    /* top-k on data full of ties: must agree exactly, indices included. */
    for (int i = 0; i < B * C; i++) in[i] = (float)(int)(frand() * 5);
    int64_t *i1 = malloc(B * 9 * 8), *i2 = malloc(B * 9 * 8);
    ops_topk(o1, i1, in, B, C, 9);
    ops_topk_naive(o2, i2, in, B, C, 9);
    ck_assert(memcmp(i1, i2, B * 9 * 8) == 0);
    ck_assert(memcmp(o1, o2, B * 9 * 4) == 0);
    printf("%-28s identical (%d rows, k=9)\n", "topk fast/naive", B);
    free(i1);
    free(i2);
    free(in);
    free(w);
    free(bias);
    free(o1);
    free(o2);
}
END_TEST

/* ---- the protobuf decoder on hand-made bytes ------------------------------------------------ */

START_TEST(test_varint)
{
    const uint8_t a[] = {0x96, 0x01}; /* 150 = 0b1_0010110: 0x16|0x80, 0x01 */
    const uint8_t *p = a;
    uint64_t v = 0;
    ck_assert(onnx_varint(&p, a + 2, &v) && v == 150 && p == a + 2);
    const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    p = max;
    ck_assert(onnx_varint(&p, max + 10, &v) && v == UINT64_MAX);
    const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    p = over; /* bit 64 and above: overflow */
    ck_assert(!onnx_varint(&p, over + 10, &v) && p == over);
    const uint8_t longv[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = longv; /* 11 bytes */
    ck_assert(!onnx_varint(&p, longv + 11, &v));
    const uint8_t trunc[] = {0x80};
    p = trunc;
    ck_assert(!onnx_varint(&p, trunc + 1, &v));
    ck_assert(!onnx_varint(&p, trunc, &v)); /* empty */
}
END_TEST

static pc_status parse(const uint8_t *b, size_t len)
{
    onnx_model *m = NULL;
    err[0] = '\0';
    pc_status st = onnx_parse(b, len, "crafted.onnx", &m, err, sizeof err);
    if (st == PC_OK) ck_assert(m != NULL);
    else ck_assert(m == NULL && strncmp(err, "crafted.onnx: ", 14) == 0);
    printf("crafted: %s\n", st == PC_OK ? "ok" : err);
    onnx_free(m);
    return st;
}

START_TEST(test_crafted_bytes)
{
    /* ModelProto field 7 (graph, wire type 2: key 0x3a) claiming 100 bytes; 3 follow. */
    const uint8_t past_end[] = {0x3a, 0x64, 0x0a, 0x00, 0x00};
    ck_assert_int_eq(parse(past_end, sizeof past_end), PC_ERR_CONFIG);
    ck_assert(strstr(err, "past the end") != NULL);
    /* A length that is itself cut short: 0x3a then a varint continuation byte. */
    const uint8_t trunc_len[] = {0x08, 0x07, 0x3a, 0x80};
    ck_assert_int_eq(parse(trunc_len, sizeof trunc_len), PC_ERR_CONFIG);
    ck_assert(strstr(err, "truncated length") != NULL);
    /* Wire type 3 (a protobuf group) for field 1. */
    const uint8_t group[] = {0x0b, 0x0c};
    ck_assert_int_eq(parse(group, sizeof group), PC_ERR_CONFIG);
    /* ir_version (field 1) as a string: the wrong wire type. */
    const uint8_t wrong[] = {0x0a, 0x01, 0x41};
    ck_assert_int_eq(parse(wrong, sizeof wrong), PC_ERR_CONFIG);
    ck_assert(strstr(err, "wire type") != NULL);
    /* Nothing at all, and ir_version only: no graph. */
    ck_assert_int_eq(parse(past_end, 0), PC_ERR_CONFIG);
    ck_assert(strstr(err, "no graph") != NULL);
    /* Huge dims product: model { graph (0x3a) { initializer (0x2a) { dims 2^20 (0x08 80 80 40)
     * twice, data_type 1 (0x10 01), name "w" (0x42 01 77) } } }: 2^40 elements. */
    const uint8_t huge[] = {0x3a, 0x0f, 0x2a, 0x0d, 0x08, 0x80, 0x80, 0x40, 0x08, 0x80,
                            0x80, 0x40, 0x10, 0x01, 0x42, 0x01, 0x77};
    ck_assert_int_eq(parse(huge, sizeof huge), PC_ERR_CONFIG);
    ck_assert(strstr(err, "initializer 'w'") != NULL && strstr(err, "2^31") != NULL);
    /* raw_data of 8 bytes (0x4a 08 ...) for dims [4] float: 16 needed. */
    const uint8_t short_raw[] = {0x3a, 0x13, 0x2a, 0x11, 0x08, 0x04, 0x10, 0x01, 0x42, 0x01, 0x77,
                                 0x4a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(parse(short_raw, sizeof short_raw), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "initializer 'w': raw_data holds 8 bytes, dims need 16") != NULL,
                  "%s", err);
    /* float_data with 1 value (0x25 + 4 bytes: field 4, wire 5) for dims [2]. */
    const uint8_t short_fd[] = {0x3a, 0x0e, 0x2a, 0x0c, 0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 0x77,
                                0x25, 0, 0, 0x80, 0x3f};
    ck_assert_int_eq(parse(short_fd, sizeof short_fd), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "float_data holds 1 values, dims need 2") != NULL, "%s", err);
    /* External data: data_location (field 14, 0x70) = 1. */
    const uint8_t ext[] = {0x3a, 0x09, 0x2a, 0x07, 0x10, 0x01, 0x42, 0x01, 0x77, 0x70, 0x01};
    ck_assert_int_eq(parse(ext, sizeof ext), PC_ERR_CONFIG);
    ck_assert(strstr(err, "external") != NULL);
    /* Rank 9. */
    const uint8_t rank9[] = {0x3a, 0x19, 0x2a, 0x17, 0x08, 1, 0x08, 1, 0x08, 1, 0x08, 1, 0x08, 1,
                             0x08, 1, 0x08, 1, 0x08, 1, 0x08, 1, 0x10, 0x01, 0x42, 0x01, 0x77};
    ck_assert_int_eq(parse(rank9, sizeof rank9), PC_ERR_CONFIG);
    ck_assert(strstr(err, "rank 9") != NULL);
    /* Unsupported data type (float16 = 10). */
    const uint8_t f16[] = {0x3a, 0x09, 0x2a, 0x07, 0x08, 0x01, 0x10, 0x0a, 0x42, 0x01, 0x77};
    ck_assert_int_eq(parse(f16, sizeof f16), PC_ERR_CONFIG);
    ck_assert(strstr(err, "float16") != NULL);
    /* A well-formed scalar: dims [] float_data packed (0x22 04 <1.0f>). */
    const uint8_t ok[] = {0x3a, 0x0d, 0x2a, 0x0b, 0x10, 0x01, 0x42, 0x01, 0x77, 0x22, 0x04,
                          0, 0, 0x80, 0x3f};
    ck_assert_int_eq(parse(ok, sizeof ok), PC_OK);
}
END_TEST

/* A tiny protobuf writer for whole crafted models. */
typedef struct pbw {
    uint8_t b[4096];
    size_t n;
} pbw;

static void w_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        w->b[w->n++] = byte | (v ? 0x80 : 0);
    } while (v);
}
static void w_int(pbw *w, int field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}
static void w_bytes(pbw *w, int field, const void *p, size_t len)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}
static void w_str(pbw *w, int field, const char *s) { w_bytes(w, field, s, strlen(s)); }
static void w_msg(pbw *w, int field, const pbw *m) { w_bytes(w, field, m->b, m->n); }

/* ValueInfoProto name: float tensor of shape (N, width). */
static void w_value_info(pbw *w, int field, const char *name, int64_t width)
{
    pbw d0 = {0}, d1 = {0}, shape = {0}, tt = {0}, type = {0}, vi = {0};
    w_str(&d0, 2, "N");
    w_int(&d1, 1, (uint64_t)width);
    w_msg(&shape, 1, &d0);
    w_msg(&shape, 1, &d1);
    w_int(&tt, 1, 1);
    w_msg(&tt, 2, &shape);
    w_msg(&type, 1, &tt);
    w_str(&vi, 1, name);
    w_msg(&vi, 2, &type);
    w_msg(w, field, &vi);
}

/* model { opset; graph { node op(in) -> y named "Node_0"; input x (N,4); output y (N,4) } } */
static pbw relu_model(int64_t opset, const char *op, const char *domain, const char *in)
{
    pbw node = {0}, graph = {0}, os = {0}, model = {0};
    w_str(&node, 1, in);
    w_str(&node, 2, "y");
    w_str(&node, 3, "Node_0");
    w_str(&node, 4, op);
    if (domain) w_str(&node, 7, domain);
    w_msg(&graph, 1, &node);
    w_str(&graph, 2, "g");
    w_value_info(&graph, 11, "x", 4);
    w_value_info(&graph, 12, "y", 4);
    w_int(&os, 2, (uint64_t)opset);
    w_int(&model, 1, 8);
    w_msg(&model, 7, &graph);
    w_msg(&model, 8, &os);
    return model;
}

START_TEST(test_crafted_models)
{
    model *m = NULL;
    pbw ok = relu_model(11, "Relu", NULL, "x");
    ck_assert_int_eq(model_load(ok.b, ok.n, "relu.onnx", 3, &m, err, sizeof err), PC_OK);
    float *x = model_input_buffer(m, 0);
    const float in[12] = {-1, 2, -3, 4, 5, -6, 7, -8, 0, 1, 2, 3};
    memcpy(x, in, sizeof in);
    ck_assert_int_eq(model_forward(m, 3, err, sizeof err), PC_OK);
    const float *y = model_output(m, 0);
    for (int i = 0; i < 12; i++) ck_assert(y[i] == (in[i] < 0 ? 0 : in[i]));
    ck_assert(x[0] == -1); /* the input is not overwritten */
    ck_assert_int_eq(model_forward(m, 0, err, sizeof err), PC_ERR_USAGE);
    ck_assert_int_eq(model_forward(m, 4, err, sizeof err), PC_ERR_USAGE);
    model_close(m);

    pbw old = relu_model(5, "Relu", NULL, "x");
    ck_assert_int_eq(model_load(old.b, old.n, "o.onnx", 3, &m, err, sizeof err), PC_ERR_CONFIG);
    ck_assert(m == NULL && strstr(err, "opset 5") != NULL);
    pbw new = relu_model(18, "Relu", NULL, "x");
    ck_assert_int_eq(model_load(new.b, new.n, "o.onnx", 3, &m, err, sizeof err), PC_ERR_CONFIG);
    ck_assert(strstr(err, "opset 18") != NULL);
    pbw dom = relu_model(13, "Relu", "com.microsoft", "x");
    ck_assert_int_eq(model_load(dom.b, dom.n, "d.onnx", 3, &m, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "node 'Node_0'") && strstr(err, "com.microsoft"), "%s", err);
    pbw undef = relu_model(13, "Relu", NULL, "nowhere");
    ck_assert_int_eq(model_load(undef.b, undef.n, "u.onnx", 3, &m, err, sizeof err),
                     PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "node 'Node_0'") && strstr(err, "'nowhere'"), "%s", err);
    printf("crafted: %s\n", err);
    pbw conv = relu_model(13, "Conv", NULL, "x");
    ck_assert_int_eq(model_load(conv.b, conv.n, "c.onnx", 3, &m, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "c.onnx: node 'Node_0' (op Conv) is not supported; supported ops: "
                              "Gemm, MatMul"),
                  "%s", err);
    ck_assert_int_eq(model_load(ok.b, ok.n, "relu.onnx", 0, &m, err, sizeof err), PC_ERR_USAGE);
}
END_TEST

/* ---- golden tests: fixture models against numpy ---------------------------------------------- */

typedef struct golden {
    const char *name;
    model_final final;
} golden;

static const golden goldens[] = {
    {"mlp_softmax", MODEL_FINAL_SOFTMAX},         {"mlp_logits", MODEL_FINAL_NONE},
    {"matmul_tanh_sigmoid", MODEL_FINAL_SIGMOID}, {"batchnorm_mlp", MODEL_FINAL_SOFTMAX},
    {"leaky_logsoftmax", MODEL_FINAL_LOGSOFTMAX}, {"gemm_trans", MODEL_FINAL_NONE},
    {"torch_mlp", MODEL_FINAL_SOFTMAX},           {"small_softmax", MODEL_FINAL_SOFTMAX},
    {"small_logits", MODEL_FINAL_NONE},           {"small_sigmoid", MODEL_FINAL_SIGMOID},
};

START_TEST(test_golden)
{
    const golden *g = &goldens[_i];
    int64_t rows, cols, orows, ocols;
    float *x = read_matrix(fixture_path(g->name, ".in"), &rows, &cols);
    float *want = read_matrix(fixture_path(g->name, ".out"), &orows, &ocols);
    ck_assert_int_eq(rows, orows);
    float *got = malloc((size_t)(rows * ocols) * sizeof *got);
    static const int64_t batches[] = {1, 7, 1024, 1500};
    for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
        int64_t bs = batches[bi];
        model *m = NULL;
        pc_status st = model_load_file(fixture_path(g->name, ".onnx"), bs, &m, err, sizeof err);
        ck_assert_msg(st == PC_OK, "%s", err);
        ck_assert_int_eq(model_batch_rows(m), bs);
        ck_assert_int_eq(model_input_count(m), 1);
        ck_assert_int_eq(model_input_elem(m, 0), MODEL_ELEM_FLOAT);
        ck_assert_int_eq(model_input_width(m, 0), cols);
        ck_assert_int_eq(model_output_count(m), 1);
        ck_assert_int_eq(model_output_width(m, 0), ocols);
        ck_assert_int_eq(model_output_final(m, 0), g->final);
        float *in = model_input_buffer(m, 0);
        /* Batches of 1 run over the first 100 rows only: 1500 forwards add nothing. */
        int64_t n = bs == 1 ? 100 : rows;
        for (int64_t r0 = 0; r0 < n; r0 += bs) {
            int64_t k = n - r0 < bs ? n - r0 : bs;
            memcpy(in, x + r0 * cols, (size_t)(k * cols) * sizeof *in);
            ck_assert_msg(model_forward(m, k, err, sizeof err) == PC_OK, "%s", err);
            memcpy(got + r0 * ocols, model_output(m, 0), (size_t)(k * ocols) * sizeof *got);
        }
        char what[96];
        snprintf(what, sizeof what, "%s batch %lld", g->name, (long long)bs);
        expect_close(got, want, n * ocols, 1e-5, what);
        model_close(m);
    }
    free(x);
    free(want);
    free(got);
}
END_TEST

static char *describe(const model *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    model_describe(m, f);
    fclose(f);
    return text;
}

START_TEST(test_describe_and_fusions)
{
    model *m = NULL;
    ck_assert_int_eq(model_load_file(fixture_path("torch_mlp", ".onnx"), 64, &m, err, sizeof err),
                     PC_OK);
    char *t = describe(m);
    printf("%s", t);
    ck_assert(strstr(t, "opset: 13") && strstr(t, "producer: pytorch"));
    ck_assert(strstr(t, "features: float32 [batch, 20]"));
    ck_assert(strstr(t, "probs: float32 [batch, 5]") && strstr(t, "final op: softmax"));
    ck_assert(strstr(t, "Gemm x3") && strstr(t, "BatchNormalization x1"));
    /* BatchNorm folded and ReLU fused: 3 dense steps and the softmax, nothing else. */
    ck_assert(strstr(t, "plan: 4 steps") && strstr(t, "batchnorm folded"));
    ck_assert(strstr(t, "supported: yes"));
    /* 20*64+64 + 4*64 + 64*32+32 + 32*5+5 */
    ck_assert_int_eq(model_param_count(m), 20 * 64 + 64 + 4 * 64 + 64 * 32 + 32 + 32 * 5 + 5);
    ck_assert(model_flops_per_row(m) > 2.0 * (20 * 64 + 64 * 32 + 32 * 5));
    ck_assert_int_eq(model_dense_count(m), 3);
    int64_t ci, co;
    model_dense_shape(m, 1, &ci, &co);
    ck_assert(ci == 64 && co == 32);
    free(t);
    model_close(m);

    /* Initializers listed as inputs (mlp_logits is written that way) are not inputs. */
    ck_assert_int_eq(model_load_file(fixture_path("mlp_logits", ".onnx"), 8, &m, err, sizeof err),
                     PC_OK);
    ck_assert_int_eq(model_input_count(m), 1);
    ck_assert_str_eq(model_input_name(m, 0), "x");
    ck_assert_str_eq(model_output_name(m, 0), "out");
    model_close(m);

    /* The stand-alone BatchNormalization (after a ReLU) stays a step. */
    ck_assert_int_eq(model_load_file(fixture_path("batchnorm_mlp", ".onnx"), 8, &m, err,
                                     sizeof err),
                     PC_OK);
    t = describe(m);
    ck_assert_msg(strstr(t, "batchnorm folded") && strstr(t, "batchnorm over 24"), "%s", t);
    free(t);
    model_close(m);
    model_close(NULL);
}
END_TEST

START_TEST(test_missing_and_unsupported)
{
    model *m = (model *)1;
    ck_assert_int_eq(model_load_file("no/such/model.onnx", 8, &m, err, sizeof err),
                     PC_ERR_NOINPUT);
    ck_assert(m == NULL);
    ck_assert_msg(strstr(err, "no/such/model.onnx: No such file") != NULL, "%s", err);
    const char *path = fixture_path("unsupported_op", ".onnx");
    ck_assert_int_eq(model_load_file(path, 8, &m, err, sizeof err), PC_ERR_CONFIG);
    printf("unsupported: %s\n", err);
    ck_assert_msg(strstr(err, path) && strstr(err, "node 'Conv_3' (op Conv) is not supported") &&
                      strstr(err, "supported ops: Gemm"),
                  "%s", err);
}
END_TEST

START_TEST(test_truncated_models)
{
    /* Every prefix of a real model is refused with PC_ERR_CONFIG, never a crash. */
    size_t len;
    uint8_t *b = read_file(fixture_path("small_softmax", ".onnx"), &len);
    for (size_t n = 0; n < len; n++) {
        model *m = NULL;
        pc_status st = model_load(b, n, "truncated.onnx", 4, &m, err, sizeof err);
        ck_assert_msg(st == PC_ERR_CONFIG && m == NULL, "prefix of %zu bytes: %d %s", n, st, err);
        ck_assert(strncmp(err, "truncated.onnx: ", 16) == 0);
    }
    printf("truncated: %zu prefixes refused, e.g. %s\n", len, err);
    free(b);
}
END_TEST

START_TEST(test_corrupted_models)
{
    /* Random byte changes of a real model: loads or is refused, never crashes. */
    size_t len;
    uint8_t *b = read_file(fixture_path("mlp_softmax", ".onnx"), &len);
    uint8_t *c = malloc(len);
    int refused = 0, loaded = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(c, b, len);
        int flips = 1 + (int)((frand() + 1) * 2);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)((frand() + 1) / 2 * (double)len) % len;
            c[at] = (uint8_t)(rng_state >> 24);
        }
        model *m = NULL;
        pc_status st = model_load(c, len, "fuzz.onnx", 16, &m, err, sizeof err);
        ck_assert_msg(st == PC_OK || st == PC_ERR_CONFIG || st == PC_ERR_INTERNAL, "%d", st);
        if (st == PC_OK) {
            loaded++;
            ck_assert_int_eq(model_forward(m, 16, err, sizeof err), PC_OK);
            model_close(m);
        } else {
            refused++;
        }
    }
    printf("corrupted: %d loaded, %d refused\n", loaded, refused);
    free(b);
    free(c);
}
END_TEST

/* ---- the N-D kernels: fast against naive ------------------------------------------------------ */

START_TEST(test_nd_kernels)
{
    /* Broadcasting on rank 4: a (2, 3, 4, 5) op b of every broadcastable shape pattern. */
    enum { A0 = 2, A1 = 3, A2 = 4, A3 = 5, N = A0 * A1 * A2 * A3 };
    float a[N], b[N], o1[N], o2[N];
    fill(a, N, 2.0f);
    fill(b, N, 2.0f);
    for (int i = 0; i < N; i++) b[i] = b[i] < 0 ? b[i] - 0.5f : b[i] + 0.5f; /* no 0 divisor */
    const int64_t dims[4] = {A0, A1, A2, A3};
    for (int mask = 0; mask < 16; mask++) { /* bit i: b has dim 1 on axis i */
        int64_t bd[4], bs[4], as[4] = {A1 * A2 * A3, A2 * A3, A3, 1};
        for (int i = 0; i < 4; i++) bd[i] = mask >> i & 1 ? 1 : dims[i];
        int64_t st = 1;
        for (int i = 3; i >= 0; i--) {
            bs[i] = bd[i] == 1 ? 0 : st;
            st *= bd[i];
        }
        for (int op = 0; op < 4; op++) {
            ops_broadcast(o1, a, b, 4, dims, as, bs, (ops_binop)op);
            ops_broadcast_naive(o2, a, b, 4, dims, as, bs, (ops_binop)op);
            double d = max_diff(o1, o2, N);
            ck_assert_msg(d <= 1e-6, "broadcast mask %d op %d: %g", mask, op, d);
        }
    }
    printf("%-28s 16 shapes x 4 ops agree\n", "broadcast rank 4");
    /* a (3, 1, 5) + b (4, 1): out (3, 4, 5), both sides broadcast. */
    {
        const int64_t od[3] = {3, 4, 5}, as[3] = {5, 0, 1}, bs[3] = {0, 1, 0};
        ops_broadcast(o1, a, b, 3, od, as, bs, OPS_BIN_SUB);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 5; k++)
                    ck_assert(o1[(i * 4 + j) * 5 + k] == a[i * 5 + k] - b[j]);
    }
    /* Transpose: every permutation of rank 4, fast against naive; int64 too. */
    int perms = 0;
    for (int p0 = 0; p0 < 4; p0++)
        for (int p1 = 0; p1 < 4; p1++)
            for (int p2 = 0; p2 < 4; p2++) {
                int p3 = 6 - p0 - p1 - p2;
                if (p0 == p1 || p0 == p2 || p1 == p2 || p3 < 0 || p3 > 3 || p3 == p0 ||
                    p3 == p1 || p3 == p2)
                    continue;
                const int perm[4] = {p0, p1, p2, p3};
                ops_transpose(o1, a, 4, 4, dims, perm);
                ops_transpose_naive(o2, a, 4, 4, dims, perm);
                ck_assert(memcmp(o1, o2, sizeof o1) == 0);
                perms++;
            }
    ck_assert_int_eq(perms, 24);
    int64_t i1[N], i2[N], ii[N];
    for (int i = 0; i < N; i++) ii[i] = i;
    const int perm[4] = {3, 1, 0, 2};
    ops_transpose(i1, ii, 8, 4, dims, perm);
    ops_transpose_naive(i2, ii, 8, 4, dims, perm);
    ck_assert(memcmp(i1, i2, sizeof i1) == 0);
    printf("%-28s 24 permutations identical\n", "transpose rank 4");
    /* Reductions over every subset of axes. */
    for (int mask = 0; mask < 16; mask++) {
        bool red[4];
        for (int i = 0; i < 4; i++) red[i] = mask >> i & 1;
        ops_reduce(o1, a, 4, dims, red, mask & 1);
        ops_reduce_naive(o2, a, 4, dims, red, mask & 1);
        int64_t on = 1;
        for (int i = 0; i < 4; i++) on *= red[i] ? 1 : dims[i];
        double d = max_diff(o1, o2, on);
        ck_assert_msg(d <= 1e-5, "reduce mask %d: %g", mask, d);
    }
    printf("%-28s 16 axis sets agree\n", "reduce rank 4");
    /* Softmax along a middle axis: (outer 6, N 4, inner 5). */
    for (int lg = 0; lg < 2; lg++) {
        ops_softmax_axis(o1, a, 6, 4, 5, lg);
        ops_softmax_axis_naive(o2, a, 6, 4, 5, lg);
        expect_close(o1, o2, N, 1e-6, lg ? "log_softmax axis fast/naive" : "softmax axis fast/naive");
    }
    /* Gather: (outer 2, D 3, inner 20) at [2, -1, 0]; an index of 3 is refused, nothing read. */
    const int64_t idx[3] = {2, -1, 0}, bad[2] = {1, 3};
    ck_assert_int_eq(ops_gather(o1, a, 4, idx, 3, 2, 3, 20), -1);
    for (int o = 0; o < 2; o++)
        for (int p = 0; p < 3; p++)
            ck_assert(memcmp(o1 + (o * 3 + p) * 20, a + (o * 3 + (idx[p] + 3) % 3) * 20, 80) == 0);
    ck_assert_int_eq(ops_gather(o1, a, 4, bad, 2, 2, 3, 20), 1);
    /* Arg-max with ties: first or last. */
    const float t[6] = {1, 3, 3, 0, 3, -1};
    int64_t am[2];
    ops_argmax(am, t, 1, 6, 1, false);
    ck_assert_int_eq(am[0], 1);
    ops_argmax(am, t, 1, 6, 1, true);
    ck_assert_int_eq(am[0], 4);
    ops_argmax(am, t, 1, 3, 2, false); /* (3, 2): columns [1 3 3] and [3 0 -1] */
    ck_assert(am[0] == 1 && am[1] == 0);
}
END_TEST

START_TEST(test_sparse_kernel)
{
    enum { B = 5, C = 40, OC = 12 };
    float w[C * OC], bias[OC], dense[B * C], o1[B * OC], o2[B * OC], o3[B * OC];
    fill(w, C * OC, 0.3f);
    fill(bias, OC, 1.0f);
    int64_t rp[B + 1] = {0};
    int32_t cols[B * C];
    float vals[B * C];
    memset(dense, 0, sizeof dense);
    for (int r = 0; r < B; r++) { /* row r has r*3 entries (row 0 empty: bias only) */
        rp[r + 1] = rp[r];
        for (int k = 0; k < r * 3; k++) {
            int c = (r * 7 + k * 3) % C; /* distinct within a row */
            cols[rp[r + 1]] = c;
            vals[rp[r + 1]] = frand();
            dense[r * C + c] = vals[rp[r + 1]];
            rp[r + 1]++;
        }
    }
    for (int a = 0; a < 2; a++) {
        ops_act act = a ? OPS_ACT_RELU : OPS_ACT_NONE;
        ops_dense_sparse(o1, rp, cols, vals, w, bias, B, OC, act, 0);
        ops_dense_sparse_naive(o2, rp, cols, vals, w, bias, B, OC, act, 0);
        ops_dense(o3, dense, w, bias, B, C, OC, false, act, 0);
        expect_close(o1, o2, B * OC, 1e-6, "dense_sparse fast/naive");
        expect_close(o1, o3, B * OC, 1e-6, "dense_sparse vs dense");
    }
}
END_TEST

/* ---- properties --------------------------------------------------------------------------- */

START_TEST(test_softmax_properties)
{
    /* Rows of softmax sum to 1 within 1e-6, whatever the scale of the logits. */
    enum { B = 50, N = 333 };
    float *x = malloc(B * N * 4), *y = malloc(B * N * 4), lse[B], lse2[B];
    static const float scales[] = {0.01f, 1.0f, 30.0f, 1e4f};
    for (size_t s = 0; s < sizeof scales / sizeof *scales; s++) {
        fill(x, B * N, scales[s]);
        ops_softmax(y, x, B, N);
        double worst = 0;
        for (int b = 0; b < B; b++) {
            double sum = 0;
            for (int j = 0; j < N; j++) {
                ck_assert(isfinite(y[b * N + j]) && y[b * N + j] >= 0);
                sum += y[b * N + j];
            }
            if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
        }
        printf("softmax scale %-8g rows sum to 1 within %.2g\n", (double)scales[s], worst);
        ck_assert_msg(worst <= 1e-6, "scale %g: %g", (double)scales[s], worst);
        ops_log_softmax(y, x, B, N);
        for (int i = 0; i < B * N; i++) ck_assert(isfinite(y[i]) && y[i] <= 0);
        ops_log_sum_exp(lse, x, B, N);
        ops_log_sum_exp_naive(lse2, x, B, N);
        for (int b = 0; b < B; b++) ck_assert(isfinite(lse[b]));
        expect_close(lse, lse2, B, 1e-6, "log_sum_exp fast/naive");
    }
    /* Logits of +-1e4: finite, and the exact answers. */
    const float ext[4] = {1e4f, -1e4f, 1e4f, -1e4f};
    float o[4], l[2];
    ops_softmax(o, ext, 1, 4);
    ck_assert(o[0] == 0.5f && o[1] == 0.0f && o[2] == 0.5f && o[3] == 0.0f);
    ops_log_softmax(o, ext, 1, 4);
    ck_assert(fabsf(o[0] + logf(2)) < 1e-6f && fabsf(o[1] + 2e4f) < 1.0f && isfinite(o[3]));
    ops_log_sum_exp(l, ext, 1, 4);
    ck_assert_msg(fabsf(l[0] - (1e4f + logf(2))) <= 1e-3f, "%g", (double)l[0]);
    const float all_low[3] = {-INFINITY, -INFINITY, -INFINITY};
    ops_log_sum_exp(l, all_low, 1, 3);
    ck_assert(isinf(l[0]) && l[0] < 0);
    ops_softmax_axis(o, ext, 1, 2, 2, false); /* (1, 2, 2): pairs (1e4, 1e4), (-1e4, -1e4) */
    ck_assert(o[0] == 0.5f && o[2] == 0.5f && o[1] == 0.5f && o[3] == 0.5f);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_topk_properties)
{
    /* Top-k is sorted, equals the arg-max set (every value left out is <= the smallest kept),
     * its first entry is ops_argmax's, and it matches the naive twin, on rows full of ties. */
    enum { B = 40, N = 97, K = 7 };
    float x[B * N], v[B * K], v2[B * K];
    int64_t ix[B * K], ix2[B * K], am[B];
    for (int i = 0; i < B * N; i++) x[i] = (float)(int)(frand() * 6);
    for (int largest = 0; largest < 2; largest++) {
        ops_topk_ordered(v, ix, x, B, N, K, largest);
        ops_topk_ordered_naive(v2, ix2, x, B, N, K, largest);
        ck_assert(memcmp(ix, ix2, sizeof ix) == 0 && memcmp(v, v2, sizeof v) == 0);
        for (int b = 0; b < B; b++) {
            for (int j = 1; j < K; j++)
                ck_assert(largest ? v[b * K + j - 1] >= v[b * K + j]
                                  : v[b * K + j - 1] <= v[b * K + j]);
            for (int j = 0; j < N; j++) {
                bool kept = false;
                for (int p = 0; p < K; p++) kept |= ix[b * K + p] == j;
                if (!kept)
                    ck_assert(largest ? x[b * N + j] <= v[b * K + K - 1]
                                      : x[b * N + j] >= v[b * K + K - 1]);
            }
        }
    }
    ops_topk(v, ix, x, B, N, K);
    ops_argmax(am, x, B, N, 1, false);
    for (int b = 0; b < B; b++) ck_assert_int_eq(ix[b * K], am[b]);
    printf("%-28s sorted, the arg-max set, first = argmax\n", "topk properties");

    /* 50,000 classes, k = 10: the heap selection against the naive twin, and its speed. */
    enum { BB = 8, NN = 50000, KK = 10 };
    float *big = malloc((size_t)BB * NN * 4), vb[BB * KK], vb2[BB * KK];
    int64_t ib[BB * KK], ib2[BB * KK];
    fill(big, (int64_t)BB * NN, 10.0f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int rep = 0; rep < 10; rep++) ops_topk(vb, ib, big, BB, NN, KK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 10;
    ops_topk_naive(vb2, ib2, big, BB, NN, KK);
    ck_assert(memcmp(ib, ib2, sizeof ib) == 0 && memcmp(vb, vb2, sizeof vb) == 0);
    printf("%-28s %d rows of 50000 in %.3f ms (%.1f ns/class)\n", "topk k=10", BB, ms,
           ms * 1e6 / (BB * (double)NN));
    free(big);
}
END_TEST

/* ---- golden tests of graphs with several inputs and outputs ------------------------------- */

typedef struct mat {
    int64_t rows, cols;
    bool i64;
    void *data;
} mat;

/* A PCT1 (float32) or PCI1 (int64) matrix file; false if it does not exist. */
static bool read_mat(const char *path, mat *m)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return false;
    fclose(f);
    size_t len;
    uint8_t *b = read_file(path, &len);
    ck_assert_msg(len >= 12 && (memcmp(b, "PCT1", 4) == 0 || memcmp(b, "PCI1", 4) == 0),
                  "%s: not a PCT1/PCI1 file", path);
    uint32_t r, c;
    memcpy(&r, b + 4, 4);
    memcpy(&c, b + 8, 4);
    m->i64 = b[2] == 'I';
    size_t es = m->i64 ? 8 : 4;
    ck_assert_msg(len == 12 + (size_t)r * c * es, "%s: size does not match its header", path);
    m->rows = r;
    m->cols = c;
    m->data = malloc((size_t)r * c * es + 8);
    memcpy(m->data, b + 12, (size_t)r * c * es);
    free(b);
    return true;
}

static const char *const io_goldens[] = {"nd_ops", "embed_mlp", "topk_argmax", "shape_reshape"};

START_TEST(test_golden_io)
{
    const char *name = io_goldens[_i];
    mat in[8], out[8];
    int nin = 0, nout = 0;
    char ext[16];
    for (;; nin++) {
        snprintf(ext, sizeof ext, ".in%d", nin);
        if (!read_mat(fixture_path(name, ext), &in[nin])) break;
    }
    for (;; nout++) {
        snprintf(ext, sizeof ext, ".out%d", nout);
        if (!read_mat(fixture_path(name, ext), &out[nout])) break;
    }
    ck_assert(nin > 0 && nout > 0);
    int64_t rows = in[0].rows;
    static const int64_t batches[] = {1, 7, 64, 300};
    for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
        int64_t bs = batches[bi];
        model *m = NULL;
        ck_assert_msg(model_load_file(fixture_path(name, ".onnx"), bs, &m, err, sizeof err) ==
                          PC_OK,
                      "%s", err);
        ck_assert_int_eq(model_input_count(m), nin);
        ck_assert_int_eq(model_output_count(m), nout);
        ck_assert(!model_is_static(m));
        void *got[8];
        for (int k = 0; k < nin; k++) {
            ck_assert_int_eq(model_input_width(m, k), in[k].cols);
            ck_assert_int_eq(model_input_elem(m, k), in[k].i64 ? MODEL_ELEM_INT64 : MODEL_ELEM_FLOAT);
            ck_assert_int_eq(model_input_index(m, model_input_name(m, k)), k);
        }
        for (int k = 0; k < nout; k++) {
            ck_assert_int_eq(model_output_width(m, k), out[k].cols);
            ck_assert_int_eq(model_output_elem(m, k), out[k].i64 ? MODEL_ELEM_INT64 : MODEL_ELEM_FLOAT);
            ck_assert((model_output(m, k) == NULL) == out[k].i64);
            ck_assert((model_output_i64(m, k) == NULL) == !out[k].i64);
            got[k] = malloc((size_t)(rows * out[k].cols) * 8);
        }
        ck_assert_int_eq(model_input_index(m, "no such input"), -1);
        int64_t n = bs == 1 ? 40 : rows;
        for (int64_t r0 = 0; r0 < n; r0 += bs) {
            int64_t k = n - r0 < bs ? n - r0 : bs; /* the last batch is short: rows < batch_rows */
            for (int j = 0; j < nin; j++) {
                size_t es = in[j].i64 ? 8 : 4;
                memcpy(model_input_buffer(m, j), (char *)in[j].data + (size_t)(r0 * in[j].cols) * es,
                       (size_t)(k * in[j].cols) * es);
            }
            ck_assert_msg(model_forward(m, k, err, sizeof err) == PC_OK, "%s", err);
            for (int j = 0; j < nout; j++) {
                size_t es = out[j].i64 ? 8 : 4;
                const void *src = out[j].i64 ? (const void *)model_output_i64(m, j)
                                             : (const void *)model_output(m, j);
                memcpy((char *)got[j] + (size_t)(r0 * out[j].cols) * es, src,
                       (size_t)(k * out[j].cols) * es);
            }
        }
        for (int j = 0; j < nout; j++) {
            char what[96];
            snprintf(what, sizeof what, "%s out%d batch %lld", name, j, (long long)bs);
            if (out[j].i64) {
                ck_assert_msg(memcmp(got[j], out[j].data, (size_t)(n * out[j].cols) * 8) == 0,
                              "%s: int64 outputs differ", what);
                printf("%-28s identical\n", what);
            } else {
                expect_close(got[j], out[j].data, n * out[j].cols, 1e-5, what);
            }
            free(got[j]);
        }
        model_close(m);
    }
    for (int k = 0; k < nin; k++) free(in[k].data);
    for (int k = 0; k < nout; k++) free(out[k].data);
}
END_TEST

START_TEST(test_gather_out_of_range)
{
    model *m = NULL;
    ck_assert_int_eq(model_load_file(fixture_path("embed_mlp", ".onnx"), 8, &m, err, sizeof err),
                     PC_OK);
    int ids = model_input_index(m, "ids"), dense = model_input_index(m, "dense");
    ck_assert(ids >= 0 && dense >= 0);
    char *t = describe(m);
    printf("%s", t);
    ck_assert(strstr(t, "ids: int64 [batch, 3]") && strstr(t, "(embedding)") &&
              strstr(t, "reduce_mean") && strstr(t, "concat"));
    free(t);
    int64_t *id = model_input_buffer(m, ids);
    memset(model_input_buffer(m, dense), 0, 8 * 5 * sizeof(float));
    for (int i = 0; i < 8 * 3; i++) id[i] = i % 20;
    ck_assert_int_eq(model_forward(m, 8, err, sizeof err), PC_OK);
    id[3 * 3 + 1] = 20; /* row 3: one past the table */
    ck_assert_int_eq(model_forward(m, 8, err, sizeof err), PC_ERR_DATA);
    printf("out of range: %s\n", err);
    ck_assert_msg(strstr(err, "node '") && strstr(err, "(op Gather)") && strstr(err, "index 20") &&
                      strstr(err, "row 3") && strstr(err, "20 entries"),
                  "%s", err);
    id[3 * 3 + 1] = -21; /* below -20 */
    ck_assert_int_eq(model_forward(m, 8, err, sizeof err), PC_ERR_DATA);
    id[3 * 3 + 1] = -20; /* the first row, counted from the end */
    ck_assert_int_eq(model_forward(m, 8, err, sizeof err), PC_OK);
    /* The dense input feeds a Concat, not only dense layers: no sparse rows for it. */
    ck_assert(!model_input_sparse_ok(m, dense));
    int64_t rp[2] = {0, 0};
    int32_t cols[1] = {0};
    float vals[1] = {0};
    ck_assert_int_eq(model_input_set_sparse(m, dense, rp, cols, vals, err, sizeof err),
                     PC_ERR_USAGE);
    model_close(m);
}
END_TEST

START_TEST(test_loop_refused)
{
    model *m = NULL;
    ck_assert_int_eq(model_load_file(fixture_path("embedding_bag", ".onnx"), 8, &m, err,
                                     sizeof err),
                     PC_ERR_CONFIG);
    printf("embedding bag: %s\n", err);
    ck_assert_msg(strstr(err, "(op Loop)") && strstr(err, "nn.EmbeddingBag") &&
                      strstr(err, "nn.Embedding followed by .mean(dim=1)"),
                  "%s", err);
}
END_TEST

START_TEST(test_sparse_input)
{
    /* torch_mlp's input feeds only its first dense layer: rows may come as CSR.  The same rows
     * (the entries below 1 in magnitude dropped) densely and sparsely give the same outputs. */
    int64_t rows, cols, orows, ocols;
    float *x = read_matrix(fixture_path("torch_mlp", ".in"), &rows, &cols);
    free(read_matrix(fixture_path("torch_mlp", ".out"), &orows, &ocols));
    enum { BS = 64 };
    model *m = NULL;
    ck_assert_int_eq(model_load_file(fixture_path("torch_mlp", ".onnx"), BS, &m, err, sizeof err),
                     PC_OK);
    ck_assert(model_input_sparse_ok(m, 0));
    int64_t rp[BS + 1];
    int32_t *ci = malloc((size_t)BS * cols * sizeof *ci);
    float *cv = malloc((size_t)BS * cols * sizeof *cv);
    float *dense_out = malloc((size_t)BS * ocols * 4);
    double worst = 0;
    int64_t nnz_all = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += BS) {
        int64_t k = rows - r0 < BS ? rows - r0 : BS;
        float *in = model_input_buffer(m, 0);
        rp[0] = 0;
        for (int64_t r = 0; r < k; r++) {
            rp[r + 1] = rp[r];
            for (int64_t j = 0; j < cols; j++) {
                float v = x[(r0 + r) * cols + j];
                if (fabsf(v) < 1.0f) v = 0.0f;
                in[r * cols + j] = v;
                if (v != 0.0f) {
                    ci[rp[r + 1]] = (int32_t)j;
                    cv[rp[r + 1]++] = v;
                }
            }
        }
        nnz_all += rp[k];
        ck_assert_int_eq(model_forward(m, k, err, sizeof err), PC_OK);
        memcpy(dense_out, model_output(m, 0), (size_t)(k * ocols) * 4);
        memset(in, 0, (size_t)(k * cols) * 4); /* the sparse forward must not read it */
        ck_assert_int_eq(model_input_set_sparse(m, 0, rp, ci, cv, err, sizeof err), PC_OK);
        ck_assert_int_eq(model_forward(m, k, err, sizeof err), PC_OK);
        double d = max_diff(model_output(m, 0), dense_out, k * ocols);
        if (d > worst) worst = d;
    }
    printf("%-28s largest difference %.3g (%lld of %lld entries stored)\n", "sparse vs dense",
           worst, (long long)nnz_all, (long long)(rows * cols));
    ck_assert(worst <= 1e-5);
    /* A column past the input's width: PC_ERR_DATA naming the row; then back to dense. */
    rp[0] = 0;
    rp[1] = 1;
    rp[2] = 2;
    ci[0] = 3;
    ci[1] = (int32_t)cols;
    ck_assert_int_eq(model_input_set_sparse(m, 0, rp, ci, cv, err, sizeof err), PC_OK);
    ck_assert_int_eq(model_forward(m, 2, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "row 1") && strstr(err, "column 20"), "%s", err);
    ck_assert_int_eq(model_forward(m, 2, err, sizeof err), PC_OK); /* dense again */
    model_close(m);
    free(x);
    free(ci);
    free(cv);
    free(dense_out);
}
END_TEST

int main(void)
{
    /* One thread for oneDNN, as model_load sets for precast: the ops tests call the kernels
     * without a model (and oneDNN's AVX2 kernels, split over threads, read 32 bytes past
     * their own buffers, which valgrind reports). */
#ifdef PRECAST_ONEDNN
    omp_set_num_threads(1);
#endif
    Suite *s = suite_create("kernels");
    TCase *ops = tcase_create("ops");
    tcase_add_test(ops, test_dense_by_hand);
    tcase_add_test(ops, test_softmax_by_hand);
    tcase_add_test(ops, test_elementwise_by_hand);
    tcase_add_test(ops, test_topk_by_hand);
    tcase_add_test(ops, test_fast_vs_naive);
    tcase_add_test(ops, test_dense_batch_invariant);
    tcase_add_test(ops, test_onednn_trial);
    tcase_add_test(ops, test_fused_dense_acts);
    tcase_add_test(ops, test_nd_kernels);
    tcase_add_test(ops, test_sparse_kernel);
    tcase_add_test(ops, test_softmax_properties);
    tcase_add_test(ops, test_topk_properties);
    suite_add_tcase(s, ops);
    TCase *onnx = tcase_create("onnx");
    tcase_add_test(onnx, test_varint);
    tcase_add_test(onnx, test_crafted_bytes);
    tcase_add_test(onnx, test_crafted_models);
    suite_add_tcase(s, onnx);
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 300); /* valgrind */
    tcase_add_loop_test(model, test_golden, 0, (int)(sizeof goldens / sizeof *goldens));
    tcase_add_test(model, test_describe_and_fusions);
    tcase_add_test(model, test_missing_and_unsupported);
    tcase_add_test(model, test_truncated_models);
    tcase_add_test(model, test_corrupted_models);
    tcase_add_loop_test(model, test_golden_io, 0, (int)(sizeof io_goldens / sizeof *io_goldens));
    tcase_add_test(model, test_gather_out_of_range);
    tcase_add_test(model, test_loop_refused);
    tcase_add_test(model, test_sparse_input);
    suite_add_tcase(s, model);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
