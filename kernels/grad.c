/* grad.c — training kernels and their double-precision naive twins; see grad.h. */
#include "kernels/grad.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/map.h" /* MAP: element-wise loops that GCC -O2 vectorises */

/* ---- random numbers ------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    /* splitmix64's finaliser: every input bit reaches every output bit. */
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The part of grad_rng_uniform's hash that does not depend on the column: computed once per
 * row, it leaves one mix per element (dropout spends most of its time here). */
static inline uint64_t rng_row(uint64_t seed, uint64_t step, uint64_t key)
{
    return mix64(mix64(mix64(seed) ^ step) ^ key);
}

static inline uint64_t rng_bits(uint64_t row, uint64_t col)
{
    return mix64(row ^ col) >> 11; /* 53 bits */
}

double grad_rng_uniform(uint64_t seed, uint64_t step, uint64_t key, uint64_t col)
{
    return (double)rng_bits(rng_row(seed, step, key), col) * 0x1.0p-53;
}

/* ---- dense ---------------------------------------------------------------------------- */

void grad_dense(float *din, float *dw, float *db, const float *dout, const float *in,
                const float *w, int64_t B, int64_t C, int64_t OC)
{
    if (B <= 0 || C <= 0 || OC <= 0) {
        if (din != NULL && B > 0 && C > 0) memset(din, 0, (size_t)(B * C) * sizeof *din);
        return;
    }
    if (din != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)B, (blasint)C,
                    (blasint)OC, 1.0f, dout, (blasint)OC, w, (blasint)C, 0.0f, din, (blasint)C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)OC, (blasint)C, (blasint)B,
                1.0f, dout, (blasint)OC, in, (blasint)C, 1.0f, dw, (blasint)C);
    if (db != NULL)
        for (int64_t b = 0; b < B; b++) {
            const float *g = dout + b * OC;
            for (int64_t o = 0; o < OC; o++) db[o] += g[o];
        }
}

void grad_dense_naive(double *din, double *dw, double *db, const double *dout,
                      const double *in, const double *w, int64_t B, int64_t C, int64_t OC)
{
    for (int64_t b = 0; b < B; b++) {
        if (din != NULL)
            for (int64_t c = 0; c < C; c++) {
                double s = 0.0;
                for (int64_t o = 0; o < OC; o++) s += dout[b * OC + o] * w[o * C + c];
                din[b * C + c] = s;
            }
        for (int64_t o = 0; o < OC; o++) {
            for (int64_t c = 0; c < C; c++) dw[o * C + c] += dout[b * OC + o] * in[b * C + c];
            if (db != NULL) db[o] += dout[b * OC + o];
        }
    }
}

/* ---- activations ---------------------------------------------------------------------- */

/* Both values are computed before the choice, so the choice compiles to a blend, not a branch
 * on random signs. */
static inline float relu_grad1(float g, float x)
{
    return x > 0.0f ? g : 0.0f;
}

static inline float leaky_grad1(float g, float x, float alpha)
{
    float neg = alpha * g;
    return x > 0.0f ? g : neg;
}

void grad_relu(float *din, const float *dout, const float *x, int64_t n)
{
    MAP(din, n, relu_grad1(dout[j], x[j]));
}

void grad_relu_naive(double *din, const double *dout, const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) din[i] = x[i] > 0.0 ? dout[i] : 0.0;
}

void grad_leaky_relu(float *din, const float *dout, const float *x, int64_t n, float alpha)
{
    MAP(din, n, leaky_grad1(dout[j], x[j], alpha));
}

void grad_leaky_relu_naive(double *din, const double *dout, const double *x, int64_t n,
                           double alpha)
{
    for (int64_t i = 0; i < n; i++) din[i] = x[i] > 0.0 ? dout[i] : alpha * dout[i];
}

void grad_tanh(float *din, const float *dout, const float *y, int64_t n)
{
    MAP(din, n, dout[j] * (1.0f - y[j] * y[j]));
}

void grad_tanh_naive(double *din, const double *dout, const double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * (1.0 - y[i] * y[i]);
}

void grad_sigmoid(float *din, const float *dout, const float *y, int64_t n)
{
    MAP(din, n, dout[j] * y[j] * (1.0f - y[j]));
}

void grad_sigmoid_naive(double *din, const double *dout, const double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * y[i] * (1.0 - y[i]);
}

/* ---- batch normalisation -------------------------------------------------------------- */

/* The unbiased-variance factor of PyTorch's running_var update; a batch of one row has no
 * unbiased estimate, and PyTorch refuses it, so the biased one is used. */
static double unbias(int64_t B)
{
    return B > 1 ? (double)B / (double)(B - 1) : 1.0;
}

/* Column statistics are accumulated in double (a float running sum over a large batch would
 * lose the digits the tests compare) over blocks of BN_BLOCK columns, reading each row's
 * block contiguously. */
#define BN_BLOCK 16

void grad_batchnorm_forward(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *in, const float *gamma,
                            const float *beta, int64_t B, int64_t C, float eps, float momentum)
{
    for (int64_t c0 = 0; c0 < C; c0 += BN_BLOCK) {
        int64_t w = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        double s[BN_BLOCK] = {0}, v[BN_BLOCK] = {0}, m[BN_BLOCK];
        for (int64_t b = 0; b < B; b++) {
            const float *x = in + b * C + c0;
            for (int64_t k = 0; k < w; k++) s[k] += x[k];
        }
        for (int64_t k = 0; k < w; k++) m[k] = s[k] / (double)B;
        for (int64_t b = 0; b < B; b++) {
            const float *x = in + b * C + c0;
            for (int64_t k = 0; k < w; k++) v[k] += (x[k] - m[k]) * (x[k] - m[k]);
        }
        for (int64_t k = 0; k < w; k++) {
            int64_t c = c0 + k;
            double var = v[k] / (double)B;
            mean[c] = (float)m[k];
            rstd[c] = (float)(1.0 / sqrt(var + eps));
            if (running_mean != NULL)
                running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m[k]);
            if (running_var != NULL)
                running_var[c] =
                    (float)((1.0 - momentum) * running_var[c] + momentum * var * unbias(B));
        }
    }
    for (int64_t b = 0; b < B; b++) {
        const float *x = in + b * C;
        float *y = out + b * C;
        for (int64_t c = 0; c < C; c++) y[c] = gamma[c] * ((x[c] - mean[c]) * rstd[c]) + beta[c];
    }
}

void grad_batchnorm_forward_naive(double *out, double *mean, double *rstd, double *running_mean,
                                  double *running_var, const double *in, const double *gamma,
                                  const double *beta, int64_t B, int64_t C, double eps,
                                  double momentum)
{
    for (int64_t c = 0; c < C; c++) {
        double s = 0.0;
        for (int64_t b = 0; b < B; b++) s += in[b * C + c];
        double m = s / (double)B, v = 0.0;
        for (int64_t b = 0; b < B; b++) v += (in[b * C + c] - m) * (in[b * C + c] - m);
        v /= (double)B;
        mean[c] = m;
        rstd[c] = 1.0 / sqrt(v + eps);
        if (running_mean != NULL) running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * m;
        if (running_var != NULL)
            running_var[c] = (1.0 - momentum) * running_var[c] + momentum * v * unbias(B);
        for (int64_t b = 0; b < B; b++)
            out[b * C + c] = gamma[c] * (in[b * C + c] - m) * rstd[c] + beta[c];
    }
}

void grad_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                             const float *in, const float *mean, const float *rstd,
                             const float *gamma, int64_t B, int64_t C)
{
    /* din = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * gamma. */
    for (int64_t c0 = 0; c0 < C; c0 += BN_BLOCK) {
        int64_t w = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        double sg[BN_BLOCK] = {0}, sgx[BN_BLOCK] = {0};
        for (int64_t b = 0; b < B; b++) {
            const float *g = dout + b * C + c0, *x = in + b * C + c0;
            for (int64_t k = 0; k < w; k++) {
                double xhat = (double)(x[k] - mean[c0 + k]) * rstd[c0 + k];
                sg[k] += g[k];
                sgx[k] += g[k] * xhat;
            }
        }
        float a[BN_BLOCK], mg[BN_BLOCK], mgx[BN_BLOCK];
        for (int64_t k = 0; k < w; k++) {
            int64_t c = c0 + k;
            dgamma[c] += (float)sgx[k];
            dbeta[c] += (float)sg[k];
            a[k] = gamma[c] * rstd[c];
            mg[k] = (float)(sg[k] / (double)B);
            mgx[k] = (float)(sgx[k] / (double)B);
        }
        for (int64_t b = 0; b < B; b++) {
            const float *g = dout + b * C + c0, *x = in + b * C + c0;
            float *d = din + b * C + c0;
            for (int64_t k = 0; k < w; k++) {
                float xhat = (x[k] - mean[c0 + k]) * rstd[c0 + k];
                d[k] = a[k] * (g[k] - mg[k] - xhat * mgx[k]);
            }
        }
    }
}

void grad_batchnorm_backward_naive(double *din, double *dgamma, double *dbeta,
                                   const double *dout, const double *in, const double *mean,
                                   const double *rstd, const double *gamma, int64_t B, int64_t C)
{
    for (int64_t c = 0; c < C; c++) {
        double sg = 0.0, sgx = 0.0;
        for (int64_t b = 0; b < B; b++) {
            sg += dout[b * C + c];
            sgx += dout[b * C + c] * (in[b * C + c] - mean[c]) * rstd[c];
        }
        dgamma[c] += sgx;
        dbeta[c] += sg;
        for (int64_t b = 0; b < B; b++) {
            double xhat = (in[b * C + c] - mean[c]) * rstd[c];
            din[b * C + c] = gamma[c] * rstd[c] *
                             (dout[b * C + c] - sg / (double)B - xhat * sgx / (double)B);
        }
    }
}

/* ---- inverted dropout ----------------------------------------------------------------- */

/* The keep scale of element (b, j): 0 when dropped, 1/(1-p) when kept. */
static double dropout_scale(const uint64_t *row_key, int64_t b, int64_t j, double p,
                            uint64_t seed, uint64_t step)
{
    if (p <= 0.0) return 1.0;
    uint64_t key = row_key != NULL ? row_key[b] : (uint64_t)b;
    return grad_rng_uniform(seed, step, key, (uint64_t)j) < p ? 0.0 : 1.0 / (1.0 - p);
}

void grad_dropout_forward(float *out, float *mask, const float *in, const uint64_t *row_key,
                          int64_t B, int64_t N, float p, uint64_t seed, uint64_t step)
{
    if (p <= 0.0f) {
        for (int64_t i = 0; i < B * N; i++) mask[i] = 1.0f;
        if (out != in) memcpy(out, in, (size_t)(B * N) * sizeof *out);
        return;
    }
    /* u < p  <=>  53-bit integer < p * 2^53: the same decisions as dropout_scale, with one
     * hash per element */
    uint64_t cut = (uint64_t)((double)p * 0x1.0p53);
    float keep = (float)(1.0 / (1.0 - (double)p));
    for (int64_t b = 0; b < B; b++) {
        uint64_t row = rng_row(seed, step, row_key != NULL ? row_key[b] : (uint64_t)b);
        float *m = mask + b * N;
        for (int64_t j = 0; j < N; j++) m[j] = rng_bits(row, (uint64_t)j) < cut ? 0.0f : keep;
        const float *x = in + b * N;
        float *y = out + b * N;
        MAP(y, N, x[j] * m[j]);
    }
}

void grad_dropout_forward_naive(double *out, double *mask, const double *in,
                                const uint64_t *row_key, int64_t B, int64_t N, double p,
                                uint64_t seed, uint64_t step)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++) {
            mask[b * N + j] = dropout_scale(row_key, b, j, p, seed, step);
            out[b * N + j] = in[b * N + j] * mask[b * N + j];
        }
}

void grad_dropout_backward(float *din, const float *dout, const float *mask, int64_t n)
{
    MAP(din, n, dout[j] * mask[j]);
}

void grad_dropout_backward_naive(double *din, const double *dout, const double *mask,
                                 int64_t n)
{
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * mask[i];
}

/* ---- embedding bags ------------------------------------------------------------------- */

void grad_embed_bag_forward(float *out, int64_t ld_out, const float *table, const int64_t *ids,
                            int64_t B, int64_t L, int64_t D)
{
    float inv = 1.0f / (float)L;
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * ld_out;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int64_t l = 0; l < L; l++) {
            const float *row = table + ids[b * L + l] * D;
            for (int64_t d = 0; d < D; d++) o[d] += row[d];
        }
        if (L > 1)
            for (int64_t d = 0; d < D; d++) o[d] *= inv;
    }
}

void grad_embed_bag_forward_naive(double *out, int64_t ld_out, const double *table,
                                  const int64_t *ids, int64_t B, int64_t L, int64_t D)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) {
            double s = 0.0;
            for (int64_t l = 0; l < L; l++) s += table[ids[b * L + l] * D + d];
            out[b * ld_out + d] = s / (double)L;
        }
}

static inline void touch(uint8_t *mark, int64_t *touched, int64_t *touched_count, int64_t id)
{
    if (!mark[id]) {
        mark[id] = 1;
        touched[(*touched_count)++] = id;
    }
}

void grad_embed_bag_backward(float *dtable, uint8_t *mark, int64_t *touched,
                             int64_t *touched_count, const float *dout, int64_t ld_dout,
                             const int64_t *ids, int64_t B, int64_t L, int64_t D,
                             int64_t padding_idx)
{
    float inv = 1.0f / (float)L;
    for (int64_t b = 0; b < B; b++) {
        const float *g = dout + b * ld_dout;
        for (int64_t l = 0; l < L; l++) {
            int64_t id = ids[b * L + l];
            if (id == padding_idx) continue;
            touch(mark, touched, touched_count, id);
            float *row = dtable + id * D;
            for (int64_t d = 0; d < D; d++) row[d] += g[d] * inv;
        }
    }
}

void grad_embed_bag_backward_naive(double *dtable, uint8_t *mark, int64_t *touched,
                                   int64_t *touched_count, const double *dout, int64_t ld_dout,
                                   const int64_t *ids, int64_t B, int64_t L, int64_t D,
                                   int64_t padding_idx)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++) {
            int64_t id = ids[b * L + l];
            if (id == padding_idx) continue;
            touch(mark, touched, touched_count, id);
            for (int64_t d = 0; d < D; d++) dtable[id * D + d] += dout[b * ld_dout + d] / (double)L;
        }
}

void grad_embed_clear(float *dtable, uint8_t *mark, const int64_t *touched,
                      int64_t *touched_count, int64_t D)
{
    for (int64_t i = 0; i < *touched_count; i++) {
        memset(dtable + touched[i] * D, 0, (size_t)D * sizeof *dtable);
        mark[touched[i]] = 0;
    }
    *touched_count = 0;
}

/* ---- losses --------------------------------------------------------------------------- */

double grad_softmax_xent(float *dlogits, float *probs, const float *logits,
                         const int32_t *labels, int64_t B, int64_t N)
{
    /* One expf per logit, kept in probs (or dlogits) between the sum and the scaling: with
     * 20,000 classes the exponentials are most of the loss's cost. */
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const float *x = logits + b * N;
        float *e = probs != NULL ? probs + b * N : dlogits != NULL ? dlogits + b * N : NULL;
        float m = x[0];
        for (int64_t j = 1; j < N; j++) m = x[j] > m ? x[j] : m;
        int32_t y = labels[b];
        float xy = x[y]; /* read before e (which may be x itself) is written */
        double s = 0.0;
        if (e != NULL) {
            for (int64_t j = 0; j < N; j++) {
                e[j] = expf(x[j] - m);
                s += e[j];
            }
        } else {
            for (int64_t j = 0; j < N; j++) s += expf(x[j] - m);
        }
        total += (double)m + log(s) - xy;
        if (e == NULL) continue;
        float inv = (float)(1.0 / s), invb = (float)(1.0 / (double)B);
        if (probs != NULL)
            for (int64_t j = 0; j < N; j++) probs[b * N + j] = e[j] * inv;
        if (dlogits != NULL) {
            float *d = dlogits + b * N;
            const float *p = probs != NULL ? probs + b * N : NULL;
            if (p != NULL)
                for (int64_t j = 0; j < N; j++) d[j] = p[j] * invb;
            else
                for (int64_t j = 0; j < N; j++) d[j] = e[j] * inv * invb;
            d[y] -= invb;
        }
    }
    return B > 0 ? total / (double)B : 0.0;
}

double grad_softmax_xent_naive(double *dlogits, double *probs, const double *logits,
                               const int32_t *labels, int64_t B, int64_t N)
{
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const double *x = logits + b * N;
        double m = x[0];
        for (int64_t j = 1; j < N; j++)
            if (x[j] > m) m = x[j];
        double s = 0.0;
        for (int64_t j = 0; j < N; j++) s += exp(x[j] - m);
        double lse = m + log(s);
        total += lse - x[labels[b]];
        for (int64_t j = 0; j < N; j++) {
            double p = exp(x[j] - lse);
            if (probs != NULL) probs[b * N + j] = p;
            if (dlogits != NULL) dlogits[b * N + j] = (p - (j == labels[b] ? 1.0 : 0.0)) / (double)B;
        }
    }
    return B > 0 ? total / (double)B : 0.0;
}

/* sigmoid(x) without overflow for either sign. */
static inline double sigmoid_d(double x)
{
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* max(x,0) - x*t + log(1 + exp(-|x|)): -t log s(x) - (1-t) log(1 - s(x)), never overflowing. */
static inline double bce_logit(double x, double t)
{
    return (x > 0.0 ? x : 0.0) - x * t + log1p(exp(-fabs(x)));
}

double grad_sigmoid_xent(float *dlogits, float *probs, const float *logits,
                         const float *targets, int64_t B, int64_t N)
{
    double total = 0.0;
    for (int64_t i = 0; i < B * N; i++) {
        double x = logits[i], t = targets[i];
        total += bce_logit(x, t);
        double p = sigmoid_d(x);
        if (probs != NULL) probs[i] = (float)p;
        if (dlogits != NULL) dlogits[i] = (float)((p - t) / (double)B);
    }
    return B > 0 ? total / (double)B : 0.0;
}

double grad_sigmoid_xent_naive(double *dlogits, double *probs, const double *logits,
                               const double *targets, int64_t B, int64_t N)
{
    double total = 0.0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++) {
            double x = logits[b * N + j], t = targets[b * N + j];
            double p = sigmoid_d(x);
            total += bce_logit(x, t);
            if (probs != NULL) probs[b * N + j] = p;
            if (dlogits != NULL) dlogits[b * N + j] = (p - t) / (double)B;
        }
    return B > 0 ? total / (double)B : 0.0;
}

double grad_mse(float *dpred, const float *pred, const float *targets, int64_t B, int64_t N)
{
    double total = 0.0, n = (double)(B * N);
    for (int64_t i = 0; i < B * N; i++) {
        double d = (double)pred[i] - targets[i];
        total += d * d;
        if (dpred != NULL) dpred[i] = (float)(2.0 * d / n);
    }
    return B * N > 0 ? total / n : 0.0;
}

double grad_mse_naive(double *dpred, const double *pred, const double *targets, int64_t B,
                      int64_t N)
{
    double total = 0.0, n = (double)(B * N);
    for (int64_t i = 0; i < B * N; i++) {
        double d = pred[i] - targets[i];
        total += d * d;
        if (dpred != NULL) dpred[i] = 2.0 * d / n;
    }
    return B * N > 0 ? total / n : 0.0;
}

/* ---- sampled softmax ------------------------------------------------------------------ */

/* Salts that keep the sampler's random numbers apart from dropout's (same seed and step). */
#define SAMPLER_KEY_UNIFORM 0x53414d50554e4946ULL /* "SAMPUNIF" */
#define SAMPLER_KEY_LOGUNI 0x53414d504c4f4755ULL  /* "SAMPLOGU" */

static double log_uniform_p(int64_t c, int64_t N)
{
    return log((double)(c + 2) / (double)(c + 1)) / log((double)N + 1.0);
}

double grad_sampler_logq(grad_sampler sampler, int64_t c, int64_t N, int64_t S, double tries)
{
    if (S >= N) return 0.0;
    if (sampler == GRAD_SAMPLER_UNIFORM) return log((double)S / (double)N);
    /* P(c in sample) after `tries` independent draws: 1 - (1 - P(c))^tries. */
    return log(-expm1(tries * log1p(-log_uniform_p(c, N))));
}

void grad_sample_negatives(int64_t *neg, float *neg_logq, double *tries, uint8_t *mark,
                           grad_sampler sampler, int64_t N, int64_t S, uint64_t seed,
                           uint64_t step)
{
    int64_t n = 0;
    double t = 0.0;
    if (S >= N) {
        for (int64_t c = 0; c < N; c++) neg[n++] = c;
    } else if (sampler == GRAD_SAMPLER_UNIFORM) {
        /* Floyd's algorithm: S distinct classes in S draws, each set equally likely. */
        for (int64_t j = N - S; j < N; j++) {
            int64_t r = (int64_t)(grad_rng_uniform(seed, step, SAMPLER_KEY_UNIFORM, (uint64_t)j) *
                                  (double)(j + 1));
            if (r > j) r = j;
            int64_t c = mark[r] ? j : r;
            mark[c] = 1;
            neg[n++] = c;
        }
        t = (double)S;
    } else {
        /* TensorFlow's log-uniform sampler, drawing until S distinct classes are found.  The
         * rare classes make that slow when S nears N; past a bound the rest are filled by the
         * most likely classes not yet drawn (their logQ then understates them slightly). */
        double logn1 = log((double)N + 1.0);
        uint64_t draws = 0, limit = (uint64_t)(64 * N + 1000 * S);
        while (n < S && draws < limit) {
            double u = grad_rng_uniform(seed, step, SAMPLER_KEY_LOGUNI, draws++);
            int64_t c = (int64_t)floor(exp(u * logn1)) - 1;
            if (c < 0) c = 0;
            if (c >= N) c = N - 1;
            if (!mark[c]) {
                mark[c] = 1;
                neg[n++] = c;
            }
        }
        for (int64_t c = 0; n < S && c < N; c++)
            if (!mark[c]) {
                mark[c] = 1;
                neg[n++] = c;
            }
        t = (double)draws;
    }
    for (int64_t j = 0; j < n; j++) {
        if (S < N) mark[neg[j]] = 0;
        neg_logq[j] = (float)grad_sampler_logq(sampler, neg[j], N, S, t);
    }
    if (tries != NULL) *tries = t;
}

double grad_sampled_softmax(float *dh, float *dw, float *db, float *work, const float *h,
                            const float *w, const float *bias, const int32_t *labels,
                            const float *true_logq, const int64_t *neg, const float *neg_logq,
                            int64_t B, int64_t H, int64_t S)
{
    int64_t K = S + 1; /* candidates per row: column 0 is the true class */
    float *wneg = work;          /* (S, H): the negatives' rows of w, later their gradient */
    float *logit = work + S * H; /* (B, K): logits, then their gradient */
    for (int64_t j = 0; j < S; j++) memcpy(wneg + j * H, w + neg[j] * H, (size_t)H * sizeof *w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)B, (blasint)S, (blasint)H,
                1.0f, h, (blasint)H, wneg, (blasint)H, 0.0f, logit + 1, (blasint)K);
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        float *z = logit + b * K;
        int32_t y = labels[b];
        double t = 0.0;
        for (int64_t d = 0; d < H; d++) t += (double)h[b * H + d] * w[y * H + d];
        z[0] = (float)(t + (bias != NULL ? bias[y] : 0.0) - true_logq[b]);
        float m = z[0];
        for (int64_t j = 0; j < S; j++) {
            if (neg[j] == y) { /* an accidental hit: the true class is not its own negative */
                z[j + 1] = -INFINITY;
                continue;
            }
            z[j + 1] += (bias != NULL ? bias[neg[j]] : 0.0f) - neg_logq[j];
            m = z[j + 1] > m ? z[j + 1] : m;
        }
        double s = 0.0;
        for (int64_t j = 0; j < K; j++) s += exp((double)(z[j] - m));
        double lse = m + log(s);
        total += lse - z[0];
        for (int64_t j = 0; j < K; j++)
            z[j] = (float)((exp((double)z[j] - lse) - (j == 0)) / (double)B);
    }
    /* dh = dz[:, 1:] · wneg + dz[:, 0] * w[label] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)B, (blasint)H, (blasint)S,
                1.0f, logit + 1, (blasint)K, wneg, (blasint)H, 0.0f, dh, (blasint)H);
    for (int64_t b = 0; b < B; b++) {
        float g = logit[b * K];
        const float *wy = w + (int64_t)labels[b] * H;
        for (int64_t d = 0; d < H; d++) dh[b * H + d] += g * wy[d];
    }
    /* dw[neg] += dz[:, 1:]ᵀ · h, through wneg (no longer needed as weights) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)S, (blasint)H, (blasint)B,
                1.0f, logit + 1, (blasint)K, h, (blasint)H, 0.0f, wneg, (blasint)H);
    for (int64_t j = 0; j < S; j++) {
        float *row = dw + neg[j] * H;
        for (int64_t d = 0; d < H; d++) row[d] += wneg[j * H + d];
    }
    for (int64_t b = 0; b < B; b++) {
        float g = logit[b * K];
        float *row = dw + (int64_t)labels[b] * H;
        for (int64_t d = 0; d < H; d++) row[d] += g * h[b * H + d];
        if (db != NULL) {
            db[labels[b]] += g;
            for (int64_t j = 0; j < S; j++) db[neg[j]] += logit[b * K + j + 1];
        }
    }
    return B > 0 ? total / (double)B : 0.0;
}

double grad_sampled_softmax_naive(double *dh, double *dw, double *db, const double *h,
                                  const double *w, const double *bias, const int32_t *labels,
                                  const double *true_logq, const int64_t *neg,
                                  const double *neg_logq, int64_t B, int64_t H, int64_t S)
{
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        int32_t y = labels[b];
        const double *hb = h + b * H;
        /* candidate k = 0 is the true class, k = j+1 the negative neg[j] */
        double zmax = -INFINITY, s = 0.0, z0 = 0.0;
        for (int64_t k = 0; k <= S; k++) {
            int64_t c = k == 0 ? y : neg[k - 1];
            if (k > 0 && c == y) continue;
            double z = (bias != NULL ? bias[c] : 0.0) - (k == 0 ? true_logq[b] : neg_logq[k - 1]);
            for (int64_t d = 0; d < H; d++) z += hb[d] * w[c * H + d];
            if (k == 0) z0 = z;
            if (z > zmax) zmax = z;
        }
        for (int64_t pass = 0; pass < 2; pass++) {
            for (int64_t k = 0; k <= S; k++) {
                int64_t c = k == 0 ? y : neg[k - 1];
                if (k > 0 && c == y) continue;
                double z = (bias != NULL ? bias[c] : 0.0) -
                           (k == 0 ? true_logq[b] : neg_logq[k - 1]);
                for (int64_t d = 0; d < H; d++) z += hb[d] * w[c * H + d];
                if (pass == 0) {
                    s += exp(z - zmax);
                    continue;
                }
                double g = (exp(z - zmax) / s - (k == 0 ? 1.0 : 0.0)) / (double)B;
                for (int64_t d = 0; d < H; d++) {
                    dh[b * H + d] += g * w[c * H + d];
                    dw[c * H + d] += g * hb[d];
                }
                if (db != NULL) db[c] += g;
            }
            if (pass == 0) {
                total += zmax + log(s) - z0;
                for (int64_t d = 0; d < H; d++) dh[b * H + d] = 0.0;
            }
        }
    }
    return B > 0 ? total / (double)B : 0.0;
}
