/* Unit tests of kernels/grad.c: every backward kernel's double-precision naive twin against
 * central finite differences of the double-precision forward pass, and every fast (float)
 * kernel against its naive twin on the same inputs.  Each check prints its largest error. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/grad.h"

/* Central differences with step FD_H on smooth double functions are accurate to ~1e-10;
 * the analytic gradients must agree to FD_TOL relative (absolute below FD_FLOOR). */
#define FD_H 1e-5
#define FD_TOL 1e-6
#define FD_FLOOR 1e-2
/* float kernels against the double twin: float rounding of sums of a few hundred terms. */
#define FAST_TOL 2e-5

/* ---- helpers ------------------------------------------------------------------------------- */

static uint64_t rng_state;

static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

/* x (n) uniform in [lo, hi), kept at least `gap` away from 0 (kinks of ReLU sit at 0). */
static double *rand_d(int64_t n, double lo, double hi, double gap)
{
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) {
        do x[i] = lo + (hi - lo) * urand();
        while (fabs(x[i]) < gap);
    }
    return x;
}

static double *zeros_d(int64_t n)
{
    double *x = calloc((size_t)(n > 0 ? n : 1), sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

static float *zeros_f(int64_t n)
{
    float *x = calloc((size_t)(n > 0 ? n : 1), sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

/* Rounds x to float in place and returns a float copy: the fast kernel and the naive twin
 * then see exactly the same numbers. */
static float *to_f(double *x, int64_t n)
{
    float *f = zeros_f(n);
    for (int64_t i = 0; i < n; i++) {
        f[i] = (float)x[i];
        x[i] = f[i];
    }
    return f;
}

/* Largest |fast - naive| / max(1, |naive|) over n values. */
static double fast_err(const float *fast, const double *naive, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(fast[i] - naive[i]) / fmax(1.0, fabs(naive[i]));
        if (!(e <= worst)) worst = e; /* NaN counts as the worst */
    }
    return worst;
}

typedef double (*loss_fn)(void *ctx);

/* Largest relative error between the analytic gradient g (n) of f with respect to x (n) and
 * the central difference (f(x + h e_i) - f(x - h e_i)) / 2h. */
static double fd_err(loss_fn f, void *ctx, double *x, const double *g, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + FD_H;
        double fp = f(ctx);
        x[i] = keep - FD_H;
        double fm = f(ctx);
        x[i] = keep;
        double fd = (fp - fm) / (2.0 * FD_H);
        double e = fabs(fd - g[i]) / fmax(FD_FLOOR, fmax(fabs(fd), fabs(g[i])));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

#define CHECK_FD(what, err)                                                                    \
    do {                                                                                       \
        double e_ = (err);                                                                     \
        printf("  %-40s finite-difference error %.2e\n", what, e_);                           \
        ck_assert_msg(e_ < FD_TOL, "%s: gradient off by %.3e against finite differences",    \
                      what, e_);                                                               \
    } while (0)

#define CHECK_FAST(what, err)                                                                  \
    do {                                                                                       \
        double e_ = (err);                                                                     \
        printf("  %-40s fast vs naive error %.2e\n", what, e_);                               \
        ck_assert_msg(e_ < FAST_TOL, "%s: fast kernel off by %.3e from its naive twin", what,  \
                      e_);                                                                     \
    } while (0)

static double dot_d(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- dense ----------------------------------------------------------------------------- */

typedef struct dense_ctx {
    double *in, *w, *b, *r, *out;
    int64_t B, C, OC;
} dense_ctx;

/* sum r ⊙ (in · wᵀ + b): a scalar whose gradient with respect to out is r. */
static double dense_loss(void *p)
{
    dense_ctx *c = p;
    for (int64_t i = 0; i < c->B; i++)
        for (int64_t o = 0; o < c->OC; o++) {
            double s = c->b[o];
            for (int64_t k = 0; k < c->C; k++) s += c->in[i * c->C + k] * c->w[o * c->C + k];
            c->out[i * c->OC + o] = s;
        }
    return dot_d(c->r, c->out, c->B * c->OC);
}

START_TEST(test_dense)
{
    rng_state = 1;
    dense_ctx c = {.B = 5, .C = 7, .OC = 4};
    int64_t nin = c.B * c.C, nw = c.OC * c.C, nout = c.B * c.OC;
    c.in = rand_d(nin, -1, 1, 0);
    c.w = rand_d(nw, -1, 1, 0);
    c.b = rand_d(c.OC, -1, 1, 0);
    c.r = rand_d(nout, -1, 1, 0);
    c.out = zeros_d(nout);
    double *din = zeros_d(nin), *dw = zeros_d(nw), *db = zeros_d(c.OC);
    grad_dense_naive(din, dw, db, c.r, c.in, c.w, c.B, c.C, c.OC);
    CHECK_FD("dense d(in)", fd_err(dense_loss, &c, c.in, din, nin));
    CHECK_FD("dense d(weight)", fd_err(dense_loss, &c, c.w, dw, nw));
    CHECK_FD("dense d(bias)", fd_err(dense_loss, &c, c.b, db, c.OC));

    /* fast vs naive, on sizes that are not multiples of anything, accumulating onto a
     * non-zero dw/db (parameter gradients accumulate) */
    int64_t B = 33, C = 70, OC = 17;
    double *in = rand_d(B * C, -1, 1, 0), *w = rand_d(OC * C, -1, 1, 0);
    double *dout = rand_d(B * OC, -1, 1, 0), *dwn = rand_d(OC * C, -1, 1, 0);
    double *dbn = rand_d(OC, -1, 1, 0), *dinn = zeros_d(B * C);
    float *inf_ = to_f(in, B * C), *wf = to_f(w, OC * C), *doutf = to_f(dout, B * OC);
    float *dwf = to_f(dwn, OC * C), *dbf = to_f(dbn, OC), *dinf = zeros_f(B * C);
    grad_dense_naive(dinn, dwn, dbn, dout, in, w, B, C, OC);
    grad_dense(dinf, dwf, dbf, doutf, inf_, wf, B, C, OC);
    CHECK_FAST("dense d(in)", fast_err(dinf, dinn, B * C));
    CHECK_FAST("dense d(weight) accumulated", fast_err(dwf, dwn, OC * C));
    CHECK_FAST("dense d(bias) accumulated", fast_err(dbf, dbn, OC));
    /* din NULL and db NULL are allowed */
    grad_dense(NULL, dwf, NULL, doutf, inf_, wf, B, C, OC);

    free(c.in); free(c.w); free(c.b); free(c.r); free(c.out); free(din); free(dw); free(db);
    free(in); free(w); free(dout); free(dwn); free(dbn); free(dinn);
    free(inf_); free(wf); free(doutf); free(dwf); free(dbf); free(dinf);
}
END_TEST

/* ---- activations ----------------------------------------------------------------------- */

enum { ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID, ACT_COUNT };
static const char *act_names[] = {"relu", "leaky_relu", "tanh", "sigmoid"};
#define LEAKY_ALPHA 0.07

static double act_d(int kind, double x)
{
    switch (kind) {
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_LEAKY: return x > 0 ? x : LEAKY_ALPHA * x;
    case ACT_TANH: return tanh(x);
    default: return 1.0 / (1.0 + exp(-x));
    }
}

typedef struct act_ctx {
    int kind;
    double *x, *r;
    int64_t n;
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    double s = 0.0;
    for (int64_t i = 0; i < c->n; i++) s += c->r[i] * act_d(c->kind, c->x[i]);
    return s;
}

static void act_backward_naive(int kind, double *din, const double *dout, const double *x,
                               const double *y, int64_t n)
{
    switch (kind) {
    case ACT_RELU: grad_relu_naive(din, dout, x, n); break;
    case ACT_LEAKY: grad_leaky_relu_naive(din, dout, x, n, LEAKY_ALPHA); break;
    case ACT_TANH: grad_tanh_naive(din, dout, y, n); break;
    default: grad_sigmoid_naive(din, dout, y, n); break;
    }
}

static void act_backward(int kind, float *din, const float *dout, const float *x,
                         const float *y, int64_t n)
{
    switch (kind) {
    case ACT_RELU: grad_relu(din, dout, x, n); break;
    case ACT_LEAKY: grad_leaky_relu(din, dout, x, n, (float)LEAKY_ALPHA); break;
    case ACT_TANH: grad_tanh(din, dout, y, n); break;
    default: grad_sigmoid(din, dout, y, n); break;
    }
}

START_TEST(test_activation)
{
    int kind = _i;
    rng_state = 100 + (uint64_t)kind;
    int64_t n = 301;
    act_ctx c = {.kind = kind, .n = n};
    /* |x| >= 0.01 keeps the finite differences off the ReLU kink */
    c.x = rand_d(n, -4, 4, 0.01);
    c.r = rand_d(n, -1, 1, 0);
    double *y = zeros_d(n), *din = zeros_d(n);
    for (int64_t i = 0; i < n; i++) y[i] = act_d(kind, c.x[i]);
    act_backward_naive(kind, din, c.r, c.x, y, n);
    char what[64];
    snprintf(what, sizeof what, "%s d(in)", act_names[kind]);
    CHECK_FD(what, fd_err(act_loss, &c, c.x, din, n));

    float *xf = to_f(c.x, n), *rf = to_f(c.r, n), *yf = zeros_f(n), *dinf = zeros_f(n);
    for (int64_t i = 0; i < n; i++) {
        y[i] = act_d(kind, c.x[i]);
        yf[i] = (float)y[i];
        y[i] = yf[i];
    }
    act_backward_naive(kind, din, c.r, c.x, y, n);
    act_backward(kind, dinf, rf, xf, yf, n);
    CHECK_FAST(what, fast_err(dinf, din, n));
    /* in place: din == dout */
    act_backward(kind, rf, rf, xf, yf, n);
    CHECK_FAST(what, fast_err(rf, din, n));
    /* at exactly 0, ReLU's derivative is 0 and LeakyReLU's is alpha (PyTorch's choice) */
    float zero = 0.0f, one = 1.0f, d = -1.0f;
    grad_relu(&d, &one, &zero, 1);
    ck_assert_float_eq(d, 0.0f);
    grad_leaky_relu(&d, &one, &zero, 1, 0.25f);
    ck_assert_float_eq(d, 0.25f);
    free(c.x); free(c.r); free(y); free(din); free(xf); free(rf); free(yf); free(dinf);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------------------ */

typedef struct bn_ctx {
    double *in, *gamma, *beta, *r, *out, *mean, *rstd;
    int64_t B, C;
    double eps;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *c = p;
    grad_batchnorm_forward_naive(c->out, c->mean, c->rstd, NULL, NULL, c->in, c->gamma, c->beta,
                                 c->B, c->C, c->eps, 0.1);
    return dot_d(c->r, c->out, c->B * c->C);
}

START_TEST(test_batchnorm)
{
    rng_state = 7;
    bn_ctx c = {.B = 6, .C = 5, .eps = 1e-5};
    int64_t n = c.B * c.C;
    c.in = rand_d(n, -2, 3, 0);
    c.gamma = rand_d(c.C, 0.5, 1.5, 0);
    c.beta = rand_d(c.C, -1, 1, 0);
    c.r = rand_d(n, -1, 1, 0);
    c.out = zeros_d(n);
    c.mean = zeros_d(c.C);
    c.rstd = zeros_d(c.C);
    double *din = zeros_d(n), *dg = zeros_d(c.C), *dbt = zeros_d(c.C);
    bn_loss(&c);
    grad_batchnorm_backward_naive(din, dg, dbt, c.r, c.in, c.mean, c.rstd, c.gamma, c.B, c.C);
    CHECK_FD("batchnorm d(in)", fd_err(bn_loss, &c, c.in, din, n));
    CHECK_FD("batchnorm d(gamma)", fd_err(bn_loss, &c, c.gamma, dg, c.C));
    CHECK_FD("batchnorm d(beta)", fd_err(bn_loss, &c, c.beta, dbt, c.C));

    /* running statistics, against a hand computation of column 0 */
    double rm[5] = {0.5, 0, 0, 0, 0}, rv[5] = {2.0, 1, 1, 1, 1};
    grad_batchnorm_forward_naive(c.out, c.mean, c.rstd, rm, rv, c.in, c.gamma, c.beta, c.B, c.C,
                                 c.eps, 0.1);
    double m = 0, v = 0;
    for (int64_t b = 0; b < c.B; b++) m += c.in[b * c.C] / (double)c.B;
    for (int64_t b = 0; b < c.B; b++) v += (c.in[b * c.C] - m) * (c.in[b * c.C] - m);
    ck_assert_double_eq_tol(rm[0], 0.9 * 0.5 + 0.1 * m, 1e-12);
    ck_assert_double_eq_tol(rv[0], 0.9 * 2.0 + 0.1 * v / (double)(c.B - 1), 1e-12);
    ck_assert_double_eq_tol(c.rstd[0], 1.0 / sqrt(v / (double)c.B + c.eps), 1e-12);

    /* fast vs naive, forward (with running stats) and backward */
    int64_t B = 40, C = 23;
    double *in = rand_d(B * C, -3, 5, 0), *g = rand_d(C, 0.5, 2, 0), *bt = rand_d(C, -1, 1, 0);
    double *dout = rand_d(B * C, -1, 1, 0), *rmn = rand_d(C, -1, 1, 0), *rvn = rand_d(C, 0.5, 2, 0);
    float *inf_ = to_f(in, B * C), *gf = to_f(g, C), *btf = to_f(bt, C), *doutf = to_f(dout, B * C);
    float *rmf = to_f(rmn, C), *rvf = to_f(rvn, C);
    double *out = zeros_d(B * C), *mean = zeros_d(C), *rstd = zeros_d(C);
    float *outf = zeros_f(B * C), *meanf = zeros_f(C), *rstdf = zeros_f(C);
    grad_batchnorm_forward_naive(out, mean, rstd, rmn, rvn, in, g, bt, B, C, 1e-5, 0.1);
    grad_batchnorm_forward(outf, meanf, rstdf, rmf, rvf, inf_, gf, btf, B, C, 1e-5f, 0.1f);
    CHECK_FAST("batchnorm forward", fast_err(outf, out, B * C));
    CHECK_FAST("batchnorm running mean", fast_err(rmf, rmn, C));
    CHECK_FAST("batchnorm running var", fast_err(rvf, rvn, C));
    double *dinn = zeros_d(B * C), *dgn = zeros_d(C), *dbn = zeros_d(C);
    float *dinf = zeros_f(B * C), *dgf = zeros_f(C), *dbf = zeros_f(C);
    for (int64_t j = 0; j < C; j++) {
        mean[j] = meanf[j];
        rstd[j] = rstdf[j];
    }
    grad_batchnorm_backward_naive(dinn, dgn, dbn, dout, in, mean, rstd, g, B, C);
    grad_batchnorm_backward(dinf, dgf, dbf, doutf, inf_, meanf, rstdf, gf, B, C);
    CHECK_FAST("batchnorm d(in)", fast_err(dinf, dinn, B * C));
    CHECK_FAST("batchnorm d(gamma)", fast_err(dgf, dgn, C));
    CHECK_FAST("batchnorm d(beta)", fast_err(dbf, dbn, C));

    free(c.in); free(c.gamma); free(c.beta); free(c.r); free(c.out); free(c.mean); free(c.rstd);
    free(din); free(dg); free(dbt);
    free(in); free(g); free(bt); free(dout); free(rmn); free(rvn); free(inf_); free(gf); free(btf);
    free(doutf); free(rmf); free(rvf); free(out); free(mean); free(rstd); free(outf); free(meanf);
    free(rstdf); free(dinn); free(dgn); free(dbn); free(dinf); free(dgf); free(dbf);
}
END_TEST

/* ---- dropout --------------------------------------------------------------------------- */

typedef struct drop_ctx {
    double *in, *r, *out, *mask;
    int64_t B, N;
    double p;
} drop_ctx;

static double drop_loss(void *p)
{
    drop_ctx *c = p;
    grad_dropout_forward_naive(c->out, c->mask, c->in, NULL, c->B, c->N, c->p, 42, 3);
    return dot_d(c->r, c->out, c->B * c->N);
}

START_TEST(test_dropout)
{
    rng_state = 9;
    drop_ctx c = {.B = 8, .N = 9, .p = 0.3};
    int64_t n = c.B * c.N;
    c.in = rand_d(n, -1, 1, 0);
    c.r = rand_d(n, -1, 1, 0);
    c.out = zeros_d(n);
    c.mask = zeros_d(n);
    double *din = zeros_d(n);
    drop_loss(&c);
    grad_dropout_backward_naive(din, c.r, c.mask, n);
    CHECK_FD("dropout d(in)", fd_err(drop_loss, &c, c.in, din, n));

    /* the fast kernel draws the same mask; the keep share is 1-p and kept units scale by
     * 1/(1-p) */
    int64_t B = 200, N = 500;
    float *x = zeros_f(B * N), *y = zeros_f(B * N), *mask = zeros_f(B * N);
    double *xd = zeros_d(B * N), *yd = zeros_d(B * N), *maskd = zeros_d(B * N);
    for (int64_t i = 0; i < B * N; i++) x[i] = (float)(xd[i] = 1.0);
    grad_dropout_forward(y, mask, x, NULL, B, N, 0.25f, 7, 11);
    grad_dropout_forward_naive(yd, maskd, xd, NULL, B, N, 0.25, 7, 11);
    CHECK_FAST("dropout forward", fast_err(y, yd, B * N));
    int64_t kept = 0;
    for (int64_t i = 0; i < B * N; i++) {
        ck_assert_msg(mask[i] == 0.0f || fabsf(mask[i] - 1.0f / 0.75f) < 1e-6f,
                      "mask value %g", mask[i]);
        kept += mask[i] != 0.0f;
    }
    double share = (double)kept / (double)(B * N);
    printf("  dropout p=0.25 keeps %.4f of 100000 units\n", share);
    /* 100,000 Bernoulli(0.75) draws: sd 0.0014, so 0.01 is 7 sd */
    ck_assert_msg(fabs(share - 0.75) < 0.01, "keep share %.4f", share);
    /* a row's mask depends on its key, not its position in the batch: the same two rows in
     * swapped order, with their keys, get swapped masks (so the rank count does not matter) */
    uint64_t keys[2] = {1000, 77};
    uint64_t swapped[2] = {77, 1000};
    float m1[2 * 64], m2[2 * 64], o[2 * 64], ones[2 * 64];
    for (int i = 0; i < 128; i++) ones[i] = 1.0f;
    grad_dropout_forward(o, m1, ones, keys, 2, 64, 0.5f, 5, 6);
    grad_dropout_forward(o, m2, ones, swapped, 2, 64, 0.5f, 5, 6);
    ck_assert_mem_eq(m1, m2 + 64, 64 * sizeof(float));
    ck_assert_mem_eq(m1 + 64, m2, 64 * sizeof(float));
    /* another step gives another mask; p = 0 is the identity */
    grad_dropout_forward(o, m2, ones, keys, 2, 64, 0.5f, 5, 7);
    ck_assert_msg(memcmp(m1, m2, sizeof m1) != 0, "the mask did not change with the step");
    grad_dropout_forward(o, m2, ones, keys, 2, 64, 0.0f, 5, 7);
    for (int i = 0; i < 128; i++) ck_assert_float_eq(o[i], 1.0f);

    free(c.in); free(c.r); free(c.out); free(c.mask); free(din);
    free(x); free(y); free(mask); free(xd); free(yd); free(maskd);
}
END_TEST

/* ---- embedding bags -------------------------------------------------------------------- */

typedef struct emb_ctx {
    double *table, *r, *out;
    const int64_t *ids;
    int64_t B, L, D, ld;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    grad_embed_bag_forward_naive(c->out, c->ld, c->table, c->ids, c->B, c->L, c->D);
    double s = 0.0;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t d = 0; d < c->D; d++) s += c->r[b * c->ld + d] * c->out[b * c->ld + d];
    return s;
}

START_TEST(test_embed_bag)
{
    rng_state = 11;
    enum { V = 10, D = 3, B = 4, L = 3, LD = 5, PAD = 0 };
    /* row 2 repeats id 4; id 0 is padding; ids 1, 6, 8, 9 are never used */
    static const int64_t ids[B * L] = {4, 4, 0, 2, 3, 0, 7, 5, 3, 0, 0, 0};
    emb_ctx c = {.ids = ids, .B = B, .L = L, .D = D, .ld = LD};
    c.table = rand_d(V * D, -1, 1, 0);
    for (int d = 0; d < D; d++) c.table[PAD * D + d] = 0.0;
    c.r = rand_d(B * LD, -1, 1, 0);
    c.out = zeros_d(B * LD);
    double *dt = zeros_d(V * D);
    uint8_t mark[V] = {0};
    int64_t touched[V], nt = 0;
    grad_embed_bag_backward_naive(dt, mark, touched, &nt, c.r, LD, ids, B, L, D, PAD);
    /* the padding row's gradient is kept at zero on purpose, so check it apart */
    double *dt_fd = zeros_d(V * D);
    memcpy(dt_fd, dt, V * D * sizeof *dt);
    for (int d = 0; d < D; d++) dt_fd[PAD * D + d] = 0;
    double e = 0;
    {
        /* finite differences on every row but the padding one */
        for (int64_t i = D; i < V * D; i++) {
            double k = c.table[i];
            c.table[i] = k + FD_H;
            double fp = emb_loss(&c);
            c.table[i] = k - FD_H;
            double fm = emb_loss(&c);
            c.table[i] = k;
            double fd = (fp - fm) / (2 * FD_H);
            double ei = fabs(fd - dt[i]) / fmax(FD_FLOOR, fmax(fabs(fd), fabs(dt[i])));
            if (!(ei <= e)) e = ei;
        }
    }
    CHECK_FD("embedding bag d(table)", e);
    for (int d = 0; d < D; d++) ck_assert_double_eq(dt[PAD * D + d], 0.0);
    /* touched: exactly the non-padding ids used, once each */
    static const int64_t used[] = {2, 3, 4, 5, 7};
    ck_assert_int_eq(nt, 5);
    for (int u = 0; u < 5; u++) {
        int found = 0;
        for (int64_t t = 0; t < nt; t++) found += touched[t] == used[u];
        ck_assert_msg(found == 1, "id %lld touched %d times", (long long)used[u], found);
    }
    for (int64_t v = 0; v < V; v++) ck_assert_int_eq(mark[v], v == 2 || v == 3 || v == 4 || v == 5 || v == 7);

    /* the fast kernels agree, and grad_embed_clear leaves an all-zero table and marks */
    float *tf = to_f(c.table, V * D), *rf = to_f(c.r, B * LD), *outf = zeros_f(B * LD);
    float *dtf = zeros_f(V * D);
    grad_embed_bag_forward(outf, LD, tf, ids, B, L, D);
    emb_loss(&c);
    double eo = 0;
    for (int b = 0; b < B; b++) {
        double x = fast_err(outf + b * LD, c.out + b * LD, D);
        eo = x > eo ? x : eo;
    }
    CHECK_FAST("embedding bag forward", eo);
    uint8_t markf[V] = {0};
    int64_t touchedf[V], ntf = 0;
    memset(dt, 0, V * D * sizeof *dt);
    memset(mark, 0, sizeof mark);
    nt = 0;
    grad_embed_bag_backward_naive(dt, mark, touched, &nt, c.r, LD, ids, B, L, D, PAD);
    grad_embed_bag_backward(dtf, markf, touchedf, &ntf, rf, LD, ids, B, L, D, PAD);
    CHECK_FAST("embedding bag d(table)", fast_err(dtf, dt, V * D));
    ck_assert_int_eq(ntf, nt);
    ck_assert_mem_eq(markf, mark, V);
    grad_embed_clear(dtf, markf, touchedf, &ntf, D);
    ck_assert_int_eq(ntf, 0);
    for (int i = 0; i < V * D; i++) ck_assert_float_eq(dtf[i], 0.0f);
    for (int i = 0; i < V; i++) ck_assert_int_eq(markf[i], 0);

    free(c.table); free(c.r); free(c.out); free(dt); free(dt_fd); free(tf); free(rf); free(outf);
    free(dtf);
}
END_TEST

/* ---- losses ---------------------------------------------------------------------------- */

typedef struct loss_ctx {
    double *x, *t;
    const int32_t *labels;
    int64_t B, N;
    int kind; /* 0 softmax, 1 sigmoid, 2 mse */
} loss_ctx;

static double loss_eval(void *p)
{
    loss_ctx *c = p;
    switch (c->kind) {
    case 0: return grad_softmax_xent_naive(NULL, NULL, c->x, c->labels, c->B, c->N);
    case 1: return grad_sigmoid_xent_naive(NULL, NULL, c->x, c->t, c->B, c->N);
    default: return grad_mse_naive(NULL, c->x, c->t, c->B, c->N);
    }
}

START_TEST(test_losses)
{
    static const char *names[] = {"softmax cross-entropy", "sigmoid cross-entropy", "mse"};
    static const int32_t labels[6] = {0, 3, 4, 1, 1, 2};
    for (int kind = 0; kind < 3; kind++) {
        rng_state = 20 + (uint64_t)kind;
        loss_ctx c = {.B = 6, .N = 5, .labels = labels, .kind = kind};
        int64_t n = c.B * c.N;
        c.x = rand_d(n, -3, 3, 0);
        c.t = rand_d(n, 0, 1, 0);
        for (int64_t i = 0; i < n && kind == 1; i++) c.t[i] = c.t[i] < 0.5 ? 0.0 : 1.0;
        double *dx = zeros_d(n), *probs = zeros_d(n);
        double l0 = 0;
        switch (kind) {
        case 0: l0 = grad_softmax_xent_naive(dx, probs, c.x, labels, c.B, c.N); break;
        case 1: l0 = grad_sigmoid_xent_naive(dx, probs, c.x, c.t, c.B, c.N); break;
        default: l0 = grad_mse_naive(dx, c.x, c.t, c.B, c.N); break;
        }
        ck_assert_double_eq_tol(l0, loss_eval(&c), 1e-15);
        char what[64];
        snprintf(what, sizeof what, "%s d(logits)", names[kind]);
        CHECK_FD(what, fd_err(loss_eval, &c, c.x, dx, n));
        /* the loss itself from its textbook definition */
        double ref = 0;
        for (int64_t b = 0; b < c.B; b++) {
            double s = 0;
            for (int64_t j = 0; j < c.N; j++) s += exp(c.x[b * c.N + j]);
            for (int64_t j = 0; j < c.N; j++) {
                double x = c.x[b * c.N + j], t = c.t[b * c.N + j], sg = 1 / (1 + exp(-x));
                if (kind == 0 && j == labels[b]) ref += -log(exp(x) / s) / (double)c.B;
                if (kind == 1) ref += -(t * log(sg) + (1 - t) * log(1 - sg)) / (double)c.B;
                if (kind == 2) ref += (x - t) * (x - t) / (double)(c.B * c.N);
            }
        }
        ck_assert_msg(fabs(l0 - ref) < 1e-12, "%s: %.15g, textbook %.15g", names[kind], l0, ref);

        /* fast vs naive (loss, probabilities, gradient) */
        float *xf = to_f(c.x, n), *tf = to_f(c.t, n), *dxf = zeros_f(n), *pf = zeros_f(n);
        double lf = 0;
        switch (kind) {
        case 0:
            l0 = grad_softmax_xent_naive(dx, probs, c.x, labels, c.B, c.N);
            lf = grad_softmax_xent(dxf, pf, xf, labels, c.B, c.N);
            break;
        case 1:
            l0 = grad_sigmoid_xent_naive(dx, probs, c.x, c.t, c.B, c.N);
            lf = grad_sigmoid_xent(dxf, pf, xf, tf, c.B, c.N);
            break;
        default:
            l0 = grad_mse_naive(dx, c.x, c.t, c.B, c.N);
            lf = grad_mse(dxf, xf, tf, c.B, c.N);
            break;
        }
        CHECK_FAST(what, fast_err(dxf, dx, n));
        if (kind != 2) CHECK_FAST(names[kind], fast_err(pf, probs, n));
        ck_assert_msg(fabs(lf - l0) < 1e-6 * fmax(1, fabs(l0)), "%s loss %.9g vs %.9g",
                      names[kind], lf, l0);
        /* in place: dlogits == logits */
        switch (kind) {
        case 0: grad_softmax_xent(xf, NULL, xf, labels, c.B, c.N); break;
        case 1: grad_sigmoid_xent(xf, NULL, xf, tf, c.B, c.N); break;
        default: grad_mse(xf, xf, tf, c.B, c.N); break;
        }
        CHECK_FAST(what, fast_err(xf, dx, n));
        free(c.x); free(c.t); free(dx); free(probs); free(xf); free(tf); free(dxf); free(pf);
    }
}
END_TEST

START_TEST(test_losses_extreme_logits)
{
    /* logits of +-1e4 must give finite losses and gradients (log-sum-exp, stable BCE) */
    float x[4] = {1e4f, -1e4f, 0.0f, 5e3f}, d[4], p[4];
    int32_t y[1] = {1};
    double l = grad_softmax_xent(d, p, x, y, 1, 4);
    ck_assert_msg(isfinite(l) && fabs(l - 2e4) < 1, "softmax loss %g", l);
    for (int j = 0; j < 4; j++) ck_assert(isfinite(d[j]) && isfinite(p[j]));
    float t[4] = {0, 1, 1, 1};
    l = grad_sigmoid_xent(d, p, x, t, 1, 4);
    ck_assert_msg(isfinite(l) && fabs(l - (1e4 + 1e4 + log(2.0))) < 1e-2, "bce loss %g", l);
    for (int j = 0; j < 4; j++) ck_assert(isfinite(d[j]) && isfinite(p[j]));
}
END_TEST

/* ---- sampled softmax ------------------------------------------------------------------- */

typedef struct ss_ctx {
    double *h, *w, *bias, *tlq, *nlq;
    const int32_t *labels;
    const int64_t *neg;
    int64_t B, H, N, S;
} ss_ctx;

static double ss_loss(void *p)
{
    ss_ctx *c = p;
    double *dh = zeros_d(c->B * c->H), *dw = zeros_d(c->N * c->H), *db = zeros_d(c->N);
    double l = grad_sampled_softmax_naive(dh, dw, db, c->h, c->w, c->bias, c->labels, c->tlq,
                                          c->neg, c->nlq, c->B, c->H, c->S);
    free(dh);
    free(dw);
    free(db);
    return l;
}

START_TEST(test_sampled_softmax_fd)
{
    /* a small case with a non-uniform logQ and an accidental hit (row 1's label 3 is also a
     * negative), checked by finite differences and against the loss written out by hand */
    rng_state = 31;
    enum { N = 8, H = 4, B = 3, S = 4 };
    static const int32_t labels[B] = {1, 3, 6};
    static const int64_t neg[S] = {3, 0, 5, 7};
    ss_ctx c = {.labels = labels, .neg = neg, .B = B, .H = H, .N = N, .S = S};
    c.h = rand_d(B * H, -1, 1, 0);
    c.w = rand_d(N * H, -1, 1, 0);
    c.bias = rand_d(N, -0.5, 0.5, 0);
    c.nlq = rand_d(S, -3, -0.1, 0);
    c.tlq = rand_d(B, -3, -0.1, 0);
    double *dh = zeros_d(B * H), *dw = zeros_d(N * H), *db = zeros_d(N);
    double l = grad_sampled_softmax_naive(dh, dw, db, c.h, c.w, c.bias, labels, c.tlq, neg, c.nlq,
                                          B, H, S);
    CHECK_FD("sampled softmax d(h)", fd_err(ss_loss, &c, c.h, dh, B * H));
    CHECK_FD("sampled softmax d(w)", fd_err(ss_loss, &c, c.w, dw, N * H));
    CHECK_FD("sampled softmax d(bias)", fd_err(ss_loss, &c, c.bias, db, N));
    /* by hand: z_c = h·w_c + b_c - logQ_c over {label} ∪ negatives without the label */
    double ref = 0;
    for (int b = 0; b < B; b++) {
        double z[S + 1];
        int k = 0;
        for (int j = -1; j < S; j++) {
            int64_t cl = j < 0 ? labels[b] : neg[j];
            if (j >= 0 && cl == labels[b]) continue;
            double s = c.bias[cl] - (j < 0 ? c.tlq[b] : c.nlq[j]);
            for (int d = 0; d < H; d++) s += c.h[b * H + d] * c.w[cl * H + d];
            z[k++] = s;
        }
        double se = 0;
        for (int i = 0; i < k; i++) se += exp(z[i]);
        ref += (log(se) - z[0]) / B;
    }
    ck_assert_msg(fabs(l - ref) < 1e-12, "sampled loss %.15g, by hand %.15g", l, ref);
    /* rows of w that are neither a label nor a negative get no gradient (class 2, 4) */
    for (int d = 0; d < H; d++) ck_assert(dw[2 * H + d] == 0.0 && dw[4 * H + d] == 0.0);

    /* fast vs naive on the same case, accumulating onto non-zero dw/db */
    float *hf = to_f(c.h, B * H), *wf = to_f(c.w, N * H), *bf = to_f(c.bias, N);
    float *tlqf = to_f(c.tlq, B), *nlqf = to_f(c.nlq, S);
    double *dwn = rand_d(N * H, -1, 1, 0), *dbn = rand_d(N, -1, 1, 0);
    float *dwf = to_f(dwn, N * H), *dbf = to_f(dbn, N), *dhf = zeros_f(B * H);
    float work[S * H + B * (S + 1)];
    l = grad_sampled_softmax_naive(dh, dwn, dbn, c.h, c.w, c.bias, labels, c.tlq, neg, c.nlq, B,
                                   H, S);
    double lf = grad_sampled_softmax(dhf, dwf, dbf, work, hf, wf, bf, labels, tlqf, neg, nlqf, B,
                                     H, S);
    ck_assert_msg(fabs(lf - l) < 1e-6, "fast loss %.9g, naive %.9g", lf, l);
    CHECK_FAST("sampled softmax d(h)", fast_err(dhf, dh, B * H));
    CHECK_FAST("sampled softmax d(w)", fast_err(dwf, dwn, N * H));
    CHECK_FAST("sampled softmax d(bias)", fast_err(dbf, dbn, N));
    free(c.h); free(c.w); free(c.bias); free(c.nlq); free(c.tlq); free(dh); free(dw); free(db);
    free(hf); free(wf); free(bf); free(tlqf); free(nlqf); free(dwn); free(dbn); free(dwf);
    free(dbf); free(dhf);
}
END_TEST

START_TEST(test_sampled_equals_full_softmax)
{
    /* every class a negative, uniform sampler: the sampled loss and gradients are exactly
     * those of softmax cross-entropy over h · wᵀ + b */
    rng_state = 41;
    enum { N = 9, H = 5, B = 4 };
    static const int32_t labels[B] = {0, 8, 3, 3};
    int64_t neg[N];
    float nlq[N];
    uint8_t mark[N] = {0};
    double tries = 0;
    grad_sample_negatives(neg, nlq, &tries, mark, GRAD_SAMPLER_UNIFORM, N, N, 1, 2);
    for (int c = 0; c < N; c++) {
        ck_assert_int_eq(neg[c], c);
        ck_assert_float_eq(nlq[c], 0.0f);
    }
    double *h = rand_d(B * H, -1, 1, 0), *w = rand_d(N * H, -1, 1, 0), *bias = rand_d(N, -1, 1, 0);
    double tlq[B], nlqd[N];
    for (int b = 0; b < B; b++) tlq[b] = grad_sampler_logq(GRAD_SAMPLER_UNIFORM, labels[b], N, N, tries);
    for (int c = 0; c < N; c++) nlqd[c] = nlq[c];
    double *dh = zeros_d(B * H), *dw = zeros_d(N * H), *db = zeros_d(N);
    double ls = grad_sampled_softmax_naive(dh, dw, db, h, w, bias, labels, tlq, neg, nlqd, B, H, N);
    /* full softmax through the dense and loss twins */
    double logits[B * N], dlog[B * N];
    for (int b = 0; b < B; b++)
        for (int c = 0; c < N; c++) {
            double s = bias[c];
            for (int d = 0; d < H; d++) s += h[b * H + d] * w[c * H + d];
            logits[b * N + c] = s;
        }
    double lf = grad_softmax_xent_naive(dlog, NULL, logits, labels, B, N);
    double *dh2 = zeros_d(B * H), *dw2 = zeros_d(N * H), *db2 = zeros_d(N);
    grad_dense_naive(dh2, dw2, db2, dlog, h, w, B, H, N);
    printf("  sampled (all classes) loss %.12f, full softmax %.12f\n", ls, lf);
    ck_assert_double_eq_tol(ls, lf, 1e-12);
    for (int i = 0; i < B * H; i++) ck_assert_double_eq_tol(dh[i], dh2[i], 1e-12);
    for (int i = 0; i < N * H; i++) ck_assert_double_eq_tol(dw[i], dw2[i], 1e-12);
    for (int i = 0; i < N; i++) ck_assert_double_eq_tol(db[i], db2[i], 1e-12);
    free(h); free(w); free(bias); free(dh); free(dw); free(db); free(dh2); free(dw2); free(db2);
}
END_TEST

START_TEST(test_samplers)
{
    enum { N = 1000, S = 50 };
    int64_t neg[S];
    float lq[S];
    uint8_t mark[N] = {0};
    for (int s = 0; s < 2; s++) {
        grad_sampler kind = s == 0 ? GRAD_SAMPLER_UNIFORM : GRAD_SAMPLER_LOG_UNIFORM;
        double tries = 0;
        int64_t low = 0;
        /* over many steps: distinct, in range, marks cleared, logQ as documented */
        for (uint64_t step = 0; step < 200; step++) {
            grad_sample_negatives(neg, lq, &tries, mark, kind, N, S, 99, step);
            ck_assert(tries >= S);
            for (int j = 0; j < S; j++) {
                ck_assert(neg[j] >= 0 && neg[j] < N);
                for (int k = 0; k < j; k++) ck_assert(neg[k] != neg[j]);
                double q = kind == GRAD_SAMPLER_UNIFORM
                               ? (double)S / N
                               : 1 - pow(1 - log((neg[j] + 2.0) / (neg[j] + 1.0)) / log(N + 1.0),
                                         tries);
                ck_assert_msg(fabs(lq[j] - log(q)) < 1e-5, "logq %g, expected %g", lq[j], log(q));
                low += neg[j] < 10;
            }
            for (int c = 0; c < N; c++) ck_assert_int_eq(mark[c], 0);
        }
        /* the ten most frequent classes: 1 % of uniform draws, far more under log-uniform
         * (each of them is in nearly every sample: 200 steps * 10 = 2000) */
        printf("  sampler %d: classes < 10 drawn %lld times in 200 samples of %d\n", s,
               (long long)low, S);
        if (kind == GRAD_SAMPLER_UNIFORM)
            ck_assert_msg(low > 40 && low < 180, "uniform drew classes < 10 %lld times", (long long)low);
        else
            ck_assert_msg(low > 1500, "log-uniform drew classes < 10 only %lld times", (long long)low);
        /* deterministic in (seed, step) */
        int64_t again[S];
        float lq2[S];
        grad_sample_negatives(neg, lq, &tries, mark, kind, N, S, 99, 5);
        grad_sample_negatives(again, lq2, &tries, mark, kind, N, S, 99, 5);
        ck_assert_mem_eq(neg, again, sizeof neg);
    }
}
END_TEST

START_TEST(test_rng)
{
    /* uniform in [0,1), mean 1/2, and a different number for each key */
    double s = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        double u = grad_rng_uniform(1, 2, i, 3);
        ck_assert(u >= 0 && u < 1);
        s += u;
    }
    ck_assert_msg(fabs(s / 100000 - 0.5) < 0.005, "mean %g", s / 100000);
    ck_assert(grad_rng_uniform(1, 2, 3, 4) != grad_rng_uniform(2, 2, 3, 4));
    ck_assert(grad_rng_uniform(1, 2, 3, 4) != grad_rng_uniform(1, 3, 3, 4));
    ck_assert(grad_rng_uniform(1, 2, 3, 4) != grad_rng_uniform(1, 2, 4, 4));
    ck_assert(grad_rng_uniform(1, 2, 3, 4) != grad_rng_uniform(1, 2, 3, 5));
    ck_assert(grad_rng_uniform(1, 2, 3, 4) == grad_rng_uniform(1, 2, 3, 4));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grad");
    TCase *t = tcase_create("kernels");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_rng);
    tcase_add_test(t, test_dense);
    tcase_add_loop_test(t, test_activation, 0, ACT_COUNT);
    tcase_add_test(t, test_batchnorm);
    tcase_add_test(t, test_dropout);
    tcase_add_test(t, test_embed_bag);
    tcase_add_test(t, test_losses);
    tcase_add_test(t, test_losses_extreme_logits);
    tcase_add_test(t, test_sampled_softmax_fd);
    tcase_add_test(t, test_sampled_equals_full_softmax);
    tcase_add_test(t, test_samplers);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
