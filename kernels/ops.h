/*
 * ops.h — the forward-pass kernels (kernels/ internal; the module's public API is model.h).
 *
 * Style of llm.c: every kernel takes its output first, then its inputs, then sizes, with the
 * shape of every tensor in a comment; sizes are int64_t; nothing allocates; nothing fails
 * (the compiler in model.c checks every shape before a plan may call a kernel).
 * Every kernel has a `_naive` twin written as plain loops in double precision: the tests
 * compare the two, and the naive twin is the reference, not the fast one.
 *
 * Aliasing: the element-wise kernels, the row-broadcast kernels, the softmaxes and
 * ops_channel_affine accept out == in (the same pointer; never a partial overlap).
 * ops_dense and ops_topk require out not to overlap any input.
 *
 * Threads: ops_dense calls cblas_sgemm, which uses however many threads OpenBLAS was told to;
 * model_load sets one thread (one rank per core is the parallelism of precast).
 */
#ifndef PRECAST_OPS_H
#define PRECAST_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* An activation fused into ops_dense. */
typedef enum ops_act {
    OPS_ACT_NONE = 0,
    OPS_ACT_RELU,       /* max(0, x); NaN stays NaN */
    OPS_ACT_LEAKY_RELU  /* x < 0 ? alpha*x : x */
} ops_act;

/* out (B, OC) = act(in (B, C) · W + bias (OC)), where W (C, OC) is
 *   w (OC, C) transposed if w_oc_c (PyTorch Linear / ONNX Gemm transB=1), or
 *   w (C, OC) as it is otherwise (ONNX MatMul, Gemm transB=0).
 * bias may be NULL (no bias); alpha is the LeakyRelu slope (ignored otherwise).
 * REQUIRES: B, C, OC < 2^31 (BLAS ints); out does not overlap in, w or bias. */
void ops_dense(float *out, const float *in, const float *w, const float *bias,
               int64_t B, int64_t C, int64_t OC, bool w_oc_c, ops_act act, float alpha);
void ops_dense_naive(float *out, const float *in, const float *w, const float *bias,
                     int64_t B, int64_t C, int64_t OC, bool w_oc_c, ops_act act, float alpha);

/* out (B, N) = act(out (B, N) + bias (N)), in place; bias may be NULL. */
void ops_bias_act(float *out, const float *bias, int64_t B, int64_t N, ops_act act, float alpha);
void ops_bias_act_naive(float *out, const float *bias, int64_t B, int64_t N, ops_act act,
                        float alpha);

/* out (n) = f(in (n)) element by element. */
void ops_relu(float *out, const float *in, int64_t n);
void ops_relu_naive(float *out, const float *in, int64_t n);
void ops_leaky_relu(float *out, const float *in, int64_t n, float alpha);
void ops_leaky_relu_naive(float *out, const float *in, int64_t n, float alpha);
void ops_sigmoid(float *out, const float *in, int64_t n);
void ops_sigmoid_naive(float *out, const float *in, int64_t n);
void ops_tanh(float *out, const float *in, int64_t n);
void ops_tanh_naive(float *out, const float *in, int64_t n);

/* out (B, N) = softmax / log_softmax of each row of in (B, N), computed stably (the row's
 * maximum is subtracted first, so large logits do not overflow). */
void ops_softmax(float *out, const float *in, int64_t B, int64_t N);
void ops_softmax_naive(float *out, const float *in, int64_t B, int64_t N);
void ops_log_softmax(float *out, const float *in, int64_t B, int64_t N);
void ops_log_softmax_naive(float *out, const float *in, int64_t B, int64_t N);

/* out (n) = a (n) + b (n);  out (n) = a (n) * b (n). */
void ops_add(float *out, const float *a, const float *b, int64_t n);
void ops_add_naive(float *out, const float *a, const float *b, int64_t n);
void ops_mul(float *out, const float *a, const float *b, int64_t n);
void ops_mul_naive(float *out, const float *a, const float *b, int64_t n);

/* out (B, N) = a (B, N) + row (N) broadcast over rows;  likewise * for ops_mul_row. */
void ops_add_row(float *out, const float *a, const float *row, int64_t B, int64_t N);
void ops_add_row_naive(float *out, const float *a, const float *row, int64_t B, int64_t N);
void ops_mul_row(float *out, const float *a, const float *row, int64_t B, int64_t N);
void ops_mul_row_naive(float *out, const float *a, const float *row, int64_t B, int64_t N);

/* out (B, C, inner) = in (B, C, inner) * scale (C) + shift (C), per channel c
 * (BatchNormalization in inference mode, once scale and shift are folded from its
 * gamma, beta, mean, var and epsilon). */
void ops_channel_affine(float *out, const float *in, const float *scale, const float *shift,
                        int64_t B, int64_t C, int64_t inner);
void ops_channel_affine_naive(float *out, const float *in, const float *scale,
                              const float *shift, int64_t B, int64_t C, int64_t inner);

/* val (B, k), idx (B, k) = the k largest entries of each row of in (B, N), largest first;
 * ties go to the lower index first; NaN ranks below every number.
 * Partial selection: O(N·k) per row, meant for small k.  REQUIRES: 0 < k <= N. */
void ops_topk(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k);
void ops_topk_naive(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k);

#endif
