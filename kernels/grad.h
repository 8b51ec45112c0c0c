/*
 * grad.h — the training kernels: train-mode forward passes that the inference kernels of ops.h
 * do not have (batch norm on batch statistics, inverted dropout, embedding bags, negative
 * sampling) and the backward twin of every layer, with each loss fused with its gradient.
 * Used by trainer/net.c; kernels/ internal like ops.h.
 *
 * Style of ops.h (llm.c): outputs first (gradients of the inputs, then of the parameters),
 * then inputs, then sizes, with every tensor's shape in a comment; sizes are int64_t; nothing
 * allocates (scratch space comes from the caller); nothing fails (the net checks every shape,
 * label and id before it calls a kernel: the REQUIRES lines are its job).
 *
 * Gradient conventions: the gradient of an INPUT (din, dh) is overwritten; the gradient of a
 * PARAMETER (dw, db, dgamma, dbeta, dtable) is accumulated (+=), so that the caller zeroes it
 * once per step and a parameter used twice sums its contributions.  Weights are in PyTorch's
 * layout: a dense layer's w is (OC, C), out = in · wᵀ + b.
 *
 * Every kernel has a `_naive` twin written as plain loops on double arrays: the tests check
 * the naive twin against central finite differences of the double-precision forward pass, and
 * the fast float kernel against the naive twin.
 *
 * Randomness (dropout masks, negative samples) comes from a counter-based generator keyed by
 * (seed, step, row key, column): the same key gives the same number on every rank and with
 * any number of ranks, and no generator state is kept anywhere.
 *
 * Threads: the dense kernels call cblas_sgemm with however many threads OpenBLAS was told to
 * use (one per rank in precast).
 */
#ifndef PRECAST_GRAD_H
#define PRECAST_GRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random numbers ------------------------------------------------------------------- */

/* A uniform double in [0, 1) that depends only on its four keys (splitmix64 of the keys). */
double grad_rng_uniform(uint64_t seed, uint64_t step, uint64_t key, uint64_t col);

/* ---- dense ---------------------------------------------------------------------------- */

/* Backward of out (B, OC) = in (B, C) · w (OC, C)ᵀ + bias (OC):
 *   din (B, C)  = dout (B, OC) · w          (overwritten; din may be NULL: not needed)
 *   dw (OC, C) += dout ᵀ · in
 *   db (OC)    += sum over rows of dout      (db may be NULL: no bias)
 * REQUIRES: B, C, OC < 2^31; din does not overlap the other arrays. */
void grad_dense(float *din, float *dw, float *db, const float *dout, const float *in,
                const float *w, int64_t B, int64_t C, int64_t OC);
void grad_dense_naive(double *din, double *dw, double *db, const double *dout,
                      const double *in, const double *w, int64_t B, int64_t C, int64_t OC);

/* ---- activations ---------------------------------------------------------------------- */

/* din (n) = dout (n) * f'(x), overwritten; din may equal dout (same pointer).
 * ReLU and LeakyReLU read the activation's INPUT x (the derivative at 0 is 0 for ReLU and
 * alpha for LeakyReLU, as in PyTorch); tanh and sigmoid read its OUTPUT y. */
void grad_relu(float *din, const float *dout, const float *x, int64_t n);
void grad_relu_naive(double *din, const double *dout, const double *x, int64_t n);
void grad_leaky_relu(float *din, const float *dout, const float *x, int64_t n, float alpha);
void grad_leaky_relu_naive(double *din, const double *dout, const double *x, int64_t n,
                           double alpha);
void grad_tanh(float *din, const float *dout, const float *y, int64_t n);
void grad_tanh_naive(double *din, const double *dout, const double *y, int64_t n);
void grad_sigmoid(float *din, const float *dout, const float *y, int64_t n);
void grad_sigmoid_naive(double *din, const double *dout, const double *y, int64_t n);

/* ---- batch normalisation (training mode) ---------------------------------------------- */

/* out (B, C) = gamma (C) * (in (B, C) - mean) * rstd + beta (C), with the batch's statistics
 * per column: mean (C) and rstd (C) = 1/sqrt(biased variance + eps) are written for the
 * backward pass.  The running statistics (C) are updated as PyTorch's BatchNorm1d does:
 * running = (1 - momentum) * running + momentum * batch, with the unbiased variance
 * (B/(B-1); the biased one when B == 1).  running_mean/running_var may be NULL (no update).
 * REQUIRES: B >= 1; out does not overlap in. */
void grad_batchnorm_forward(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *in, const float *gamma,
                            const float *beta, int64_t B, int64_t C, float eps, float momentum);
void grad_batchnorm_forward_naive(double *out, double *mean, double *rstd, double *running_mean,
                                  double *running_var, const double *in, const double *gamma,
                                  const double *beta, int64_t B, int64_t C, double eps,
                                  double momentum);

/* Backward of grad_batchnorm_forward (the batch statistics depend on the input too):
 *   din (B, C) overwritten; dgamma (C) += sum dout * xhat; dbeta (C) += sum dout,
 * where xhat = (in - mean) * rstd.  REQUIRES: din does not overlap dout or in. */
void grad_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                             const float *in, const float *mean, const float *rstd,
                             const float *gamma, int64_t B, int64_t C);
void grad_batchnorm_backward_naive(double *din, double *dgamma, double *dbeta,
                                   const double *dout, const double *in, const double *mean,
                                   const double *rstd, const double *gamma, int64_t B, int64_t C);

/* ---- inverted dropout ----------------------------------------------------------------- */

/* out (B, N) = in (B, N) * mask (B, N), where mask[b, j] = 1/(1-p) with probability 1-p and
 * 0 otherwise, drawn from grad_rng_uniform(seed, step, row_key[b], j) (dropped when u < p).
 * row_key (B) names each row (the trainer passes a global row number, so that the mask does
 * not depend on which rank holds the row); NULL means row b has key b.  p == 0 gives a mask
 * of ones.  out may equal in.  REQUIRES: 0 <= p < 1. */
void grad_dropout_forward(float *out, float *mask, const float *in, const uint64_t *row_key,
                          int64_t B, int64_t N, float p, uint64_t seed, uint64_t step);
void grad_dropout_forward_naive(double *out, double *mask, const double *in,
                                const uint64_t *row_key, int64_t B, int64_t N, double p,
                                uint64_t seed, uint64_t step);

/* din (n) = dout (n) * mask (n); din may equal dout. */
void grad_dropout_backward(float *din, const float *dout, const float *mask, int64_t n);
void grad_dropout_backward_naive(double *din, const double *dout, const double *mask,
                                 int64_t n);

/* ---- embedding bags ------------------------------------------------------------------- */

/* out[b, 0..D) = (1/L) * sum over l of table[ids[b*L + l], :] for each row b of a batch of B
 * bags of L ids; table (V, D).  Like PyTorch's emb(bag).mean(dim=1): a padding slot reads the
 * padding row (kept at zero by the caller) and still counts in the 1/L.  out rows are
 * ld_out floats apart (the pooled vectors of several columns sit side by side in one row).
 * REQUIRES: every id in [0, V); ld_out >= D. */
void grad_embed_bag_forward(float *out, int64_t ld_out, const float *table, const int64_t *ids,
                            int64_t B, int64_t L, int64_t D);
void grad_embed_bag_forward_naive(double *out, int64_t ld_out, const double *table,
                                  const int64_t *ids, int64_t B, int64_t L, int64_t D);

/* Backward: dtable[id, :] += dout[b, :] / L for every slot of every bag, except slots whose
 * id is padding_idx (-1: none), whose row never receives a gradient (PyTorch's padding_idx).
 * Only the rows the batch used are written.  Each row written for the first time since the
 * last grad_embed_clear is marked in mark (V, all zero initially) and appended to
 * touched[*touched_count] (capacity V), so the caller can reduce and update those rows alone.
 * dout rows are ld_dout floats apart.  REQUIRES: every id in [0, V). */
void grad_embed_bag_backward(float *dtable, uint8_t *mark, int64_t *touched,
                             int64_t *touched_count, const float *dout, int64_t ld_dout,
                             const int64_t *ids, int64_t B, int64_t L, int64_t D,
                             int64_t padding_idx);
void grad_embed_bag_backward_naive(double *dtable, uint8_t *mark, int64_t *touched,
                                   int64_t *touched_count, const double *dout, int64_t ld_dout,
                                   const int64_t *ids, int64_t B, int64_t L, int64_t D,
                                   int64_t padding_idx);

/* Zeroes the touched rows of dtable (V, D) and their marks, and sets *touched_count to 0:
 * the per-step reset that costs the rows used, not the vocabulary. */
void grad_embed_clear(float *dtable, uint8_t *mark, const int64_t *touched,
                      int64_t *touched_count, int64_t D);

/* ---- losses, each fused with its gradient ----------------------------------------------- */

/* Softmax cross-entropy over B rows of N logits with class labels (B):
 *   probs (B, N) = softmax(logits) (may be NULL);
 *   dlogits (B, N) = (probs - onehot(label)) / B (may be NULL: evaluation only);
 * returns the mean over rows of -log softmax(logits)[label], computed stably (log-sum-exp).
 * REQUIRES: every label in [0, N); N >= 1. dlogits may equal logits. */
double grad_softmax_xent(float *dlogits, float *probs, const float *logits,
                         const int32_t *labels, int64_t B, int64_t N);
double grad_softmax_xent_naive(double *dlogits, double *probs, const double *logits,
                               const int32_t *labels, int64_t B, int64_t N);

/* Sigmoid binary cross-entropy on B rows of N independent logits with 0/1 targets (B, N):
 * the binary head (N = 1), one-vs-all (targets one-hot) and multi-label.
 *   probs (B, N) = sigmoid(logits) (may be NULL);  dlogits (B, N) = (probs - target) / B;
 * returns the mean over rows of the SUM over the N outputs of
 * max(x,0) - x*t + log(1 + exp(-|x|)) (stable for any logit).  Summing over outputs keeps
 * each output's gradient on the scale of a softmax's, whatever N is.  Targets need not be
 * exactly 0/1 (any value in [0, 1] is a soft label).  dlogits may equal logits. */
double grad_sigmoid_xent(float *dlogits, float *probs, const float *logits,
                         const float *targets, int64_t B, int64_t N);
double grad_sigmoid_xent_naive(double *dlogits, double *probs, const double *logits,
                               const double *targets, int64_t B, int64_t N);

/* Mean squared error (PyTorch's MSELoss): returns mean over all B*N of (pred - target)^2;
 * dpred (B, N) = 2 (pred - target) / (B*N) (may be NULL).  dpred may equal pred. */
double grad_mse(float *dpred, const float *pred, const float *targets, int64_t B, int64_t N);
double grad_mse_naive(double *dpred, const double *pred, const double *targets, int64_t B,
                      int64_t N);

/* ---- sampled softmax -------------------------------------------------------------------- */

typedef enum grad_sampler {
    GRAD_SAMPLER_UNIFORM = 0, /* every class equally likely */
    GRAD_SAMPLER_LOG_UNIFORM  /* Zipf-like: P(c) = log((c+2)/(c+1)) / log(N+1); classes
                                 numbered by falling frequency, as TensorFlow's sampler */
} grad_sampler;

/* Draws S distinct negative classes out of N, shared by every row of the batch of `step`
 * (and by every rank), into neg (S), with neg_logq (S) = log of each one's expected count
 * (its probability of being in the sample): S/N for uniform; 1 - (1-P(c))^tries for
 * log-uniform, where tries is the number of draws it took to find S distinct classes
 * (written to *tries for grad_sampler_logq).  S >= N takes every class (logq = 0).
 * mark (N) is scratch, all zero on entry and on return.  REQUIRES: S >= 1, N >= 1. */
void grad_sample_negatives(int64_t *neg, float *neg_logq, double *tries, uint8_t *mark,
                           grad_sampler sampler, int64_t N, int64_t S, uint64_t seed,
                           uint64_t step);

/* log of class c's expected count in a sample drawn as above (the logQ of the true class). */
double grad_sampler_logq(grad_sampler sampler, int64_t c, int64_t N, int64_t S, double tries);

/* Sampled softmax cross-entropy on hidden vectors h (B, H) and the output layer's w (N, H),
 * bias (N) (bias may be NULL): each row b scores its true class labels[b] and the S shared
 * negatives neg (S); every candidate's logit is corrected by subtracting its logQ
 * (true_logq (B), neg_logq (S)), a negative equal to the row's own label is left out
 * (an "accidental hit"), and the loss is the cross-entropy with the true class.
 *   dh (B, H) overwritten;  dw rows labels[b] and neg[j] (N, H) +=;  db likewise (may be NULL);
 * returns the mean loss over rows.  work (S*H + B*(S+1)) is scratch.
 * With uniform logQ and every class a negative, this is exactly softmax cross-entropy.
 * REQUIRES: labels in [0, N), neg in [0, N) and distinct; dh does not overlap h or w. */
double grad_sampled_softmax(float *dh, float *dw, float *db, float *work, const float *h,
                            const float *w, const float *bias, const int32_t *labels,
                            const float *true_logq, const int64_t *neg, const float *neg_logq,
                            int64_t B, int64_t H, int64_t S);
double grad_sampled_softmax_naive(double *dh, double *dw, double *db, const double *h,
                                  const double *w, const double *bias, const int32_t *labels,
                                  const double *true_logq, const int64_t *neg,
                                  const double *neg_logq, int64_t B, int64_t H, int64_t S);

#endif
