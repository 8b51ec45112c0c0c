/*
 * ops.h — the forward-pass kernels (kernels/ internal; the module's public API is model.h).
 *
 * Style of llm.c: every kernel takes its output first, then its inputs, then sizes, with the
 * shape of every tensor in a comment; sizes are int64_t; nothing allocates and nothing fails
 * (the compiler in model.c checks every shape before a plan may call a kernel), but for what
 * runs at load: ops_dense_choose and ops_fused_dense_new.
 * Every kernel has a `_naive` twin written as plain loops in double precision: the tests
 * compare the two, and the naive twin is the reference, not the fast one.
 *
 * Aliasing: the element-wise kernels, the row-broadcast kernels, the softmaxes and
 * ops_channel_affine accept out == in (the same pointer; never a partial overlap).
 * ops_dense and ops_topk require out not to overlap any input.
 *
 * Threads: ops_dense calls cblas_sgemm, which uses however many threads OpenBLAS was told to;
 * ops_dense_batch and the fused layer call oneDNN, which uses OpenMP's; model_load sets one of
 * each (one rank per core is the parallelism of precast).
 */
#ifndef PRECAST_OPS_H
#define PRECAST_OPS_H

#include <stdbool.h>
#include <stddef.h>
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

/* Who computes a dense layer's GEMM in the forward pass (ops_dense_batch). */
typedef enum ops_gemm {
    OPS_GEMM_ROWWISE = 0, /* precast's own row-by-row loops: slow, alike at every place */
    OPS_GEMM_OPENBLAS,    /* cblas_sgemm */
    OPS_GEMM_ONEDNN       /* dnnl_sgemm (not in make ONEDNN=0 builds) */
} ops_gemm;

/* "row by row", "OpenBLAS", "oneDNN". */
const char *ops_gemm_name(ops_gemm g);

/* Chooses, once per layer at load, who computes a dense layer with batch buffers of B_full
 * rows and W (C, OC): oneDNN first from 128 outputs up and OpenBLAS first below (ops.c has the
 * measurements), each taken only if its trial on w passes (ops_dense_rows_agree), and the
 * row-by-row loops if neither does.  Never timed, so every rank and every run computes a layer
 * the same way.  Allocates and frees B_full * (C + OC) floats per trial. */
ops_gemm ops_dense_choose(int64_t B_full, int64_t C, int64_t OC, const float *w);

/* The trial: B_full copies of one pseudo-random row through g with W (C, OC) give B_full
 * identical rows, i.e. g computes every place of such a batch alike.  False also if g cannot
 * run (oneDNN not built in, or out of memory). */
bool ops_dense_rows_agree(ops_gemm g, int64_t B_full, int64_t C, int64_t OC, const float *w);

/* ops_dense with W (C, OC), for a layer of the forward pass whose batch buffers hold B_full
 * rows of which the first B are this batch, computed by g (ops_dense_choose's answer).  A
 * BLAS GEMM always spans all B_full rows, because both libraries sum a row in an order that
 * depends on how many rows the call has, and a row's result must not depend on how many rows
 * shared its batch: rows B..B_full-1 of in are zeroed first (the buffer's own scratch), and
 * the same rows of out are left undefined.
 * REQUIRES: as ops_dense, and B <= B_full; in and out have B_full rows. */
void ops_dense_batch(float *out, float *in, const float *w, const float *bias, int64_t B,
                     int64_t B_full, int64_t C, int64_t OC, ops_gemm g, ops_act act,
                     float alpha);

/* A dense layer on oneDNN's matmul primitive, bias and activation fused into its kernel,
 * weights packed into oneDNN's layout at creation: measured here 110-112 GFLOP/s with bias and
 * ReLU included, against 109-111 for dnnl_sgemm without them (then a pass over the output).
 * Opaque; it owns its primitive and its packed copy of w and bias; the caller owns it and
 * frees it with ops_fused_dense_free.  Like ops_dense_batch, it always runs all B_full rows. */
typedef struct ops_fused_dense ops_fused_dense;

/* Builds the layer for batch buffers of B_full rows, W (C, OC), bias (OC) or NULL, act with
 * alpha (LeakyRelu); NULL if oneDNN is not built in or cannot build it, or if its trial
 * (as ops_dense_rows_agree) fails: the caller then keeps ops_dense_batch. */
ops_fused_dense *ops_fused_dense_new(int64_t B_full, int64_t C, int64_t OC, const float *w,
                                     const float *bias, ops_act act, float alpha);
/* out (B_full, OC) = act(in (B_full, C) . W + bias), of which the first B rows are the batch;
 * rows B..B_full-1 of in are zeroed first.  False if oneDNN failed (then nothing is promised
 * about out, and the caller computes the layer otherwise). */
bool ops_fused_dense_run(ops_fused_dense *f, float *out, float *in, int64_t B);
void ops_fused_dense_free(ops_fused_dense *f);

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
 * Same as ops_topk_ordered(..., largest = true).  REQUIRES: 0 < k <= N. */
void ops_topk(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k);
void ops_topk_naive(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k);

/* Like ops_topk, with the order chosen: largest first (largest) or smallest first; NaN ranks
 * last either way; ties go to the lower index first.  A heap of the k best seen so far:
 * O(N log k) per row at worst, O(N) when most entries lose to the heap's root (the usual
 * case), so N = 50,000 with k = 10 costs about one pass over the row.
 * REQUIRES: 0 < k <= N; val and idx do not overlap in. */
void ops_topk_ordered(float *val, int64_t *idx, const float *in, int64_t B, int64_t N, int64_t k,
                      bool largest);
void ops_topk_ordered_naive(float *val, int64_t *idx, const float *in, int64_t B, int64_t N,
                            int64_t k, bool largest);

/* out (B) = log(sum_j exp(in[b, j])) over each row of in (B, N), computed as
 * m + log(sum exp(x - m)) with m the row's maximum: logits of +-1e4 give finite results.
 * A row of all -inf gives -inf; a row with +inf gives +inf; a NaN gives NaN. REQUIRES N > 0. */
void ops_log_sum_exp(float *out, const float *in, int64_t B, int64_t N);
void ops_log_sum_exp_naive(float *out, const float *in, int64_t B, int64_t N);

/* Softmax / log-softmax along the middle axis of in (outer, N, inner), stably; inner == 1 is
 * ops_softmax / ops_log_softmax. out == in is allowed. */
void ops_softmax_axis(float *out, const float *in, int64_t outer, int64_t N, int64_t inner,
                      bool log);
void ops_softmax_axis_naive(float *out, const float *in, int64_t outer, int64_t N,
                            int64_t inner, bool log);

/* Element-wise binary operation with numpy broadcasting, on tensors of any rank:
 * out (dims[0..rank)) = a op b, where a and b are read at the element strides as and bs
 * (0 along a broadcast axis), out is contiguous.  out may equal a when as are out's own
 * contiguous strides (likewise b).  rank <= OPS_MAX_RANK. */
#define OPS_MAX_RANK 8
typedef enum ops_binop { OPS_BIN_ADD = 0, OPS_BIN_SUB, OPS_BIN_MUL, OPS_BIN_DIV } ops_binop;
void ops_broadcast(float *out, const float *a, const float *b, int rank, const int64_t *dims,
                   const int64_t *as, const int64_t *bs, ops_binop op);
void ops_broadcast_naive(float *out, const float *a, const float *b, int rank,
                         const int64_t *dims, const int64_t *as, const int64_t *bs, ops_binop op);
/* The same on int64 (shape arithmetic); division truncates, x/0 gives 0. */
void ops_broadcast_i64(int64_t *out, const int64_t *a, const int64_t *b, int rank,
                       const int64_t *dims, const int64_t *as, const int64_t *bs, ops_binop op);

/* out = in with its axes permuted: out dims[i] = dims[perm[i]]; elements of esize bytes
 * (4 or 8). out must not overlap in. */
void ops_transpose(void *out, const void *in, size_t esize, int rank, const int64_t *dims,
                   const int *perm);
void ops_transpose_naive(void *out, const void *in, size_t esize, int rank, const int64_t *dims,
                         const int *perm);

/* out (outer, nidx, inner) = data (outer, D, inner) gathered along D at idx (nidx); a negative
 * index counts from the end (-1 is D-1).  Elements of esize bytes.  Returns -1, or the
 * position in idx of the first index outside [-D, D), in which case nothing is read out of
 * bounds and out is partly written. */
int64_t ops_gather(void *out, const void *data, size_t esize, const int64_t *idx, int64_t nidx,
                   int64_t outer, int64_t D, int64_t inner);

/* out = sum (or mean) of in (dims) over the axes where reduce[i] is true; out has the shape
 * of in with those axes set to 1 (contiguous).  out must not overlap in. */
void ops_reduce(float *out, const float *in, int rank, const int64_t *dims, const bool *reduce,
                bool mean);
void ops_reduce_naive(float *out, const float *in, int rank, const int64_t *dims,
                      const bool *reduce, bool mean);

/* out (outer, inner) = the index along N of the largest entry of in (outer, N, inner); ties
 * go to the first (or, if last, the last) such index; NaN counts as the largest (numpy). */
void ops_argmax(int64_t *out, const float *in, int64_t outer, int64_t N, int64_t inner,
                bool last);

/* Sparse rows times a dense weight: out (B, OC) = act(bias (OC) + sum over p in
 * [row_ptr[b], row_ptr[b+1]) of vals[p] * w[cols[p], :]), w (C, OC) row-major.
 * REQUIRES: row_ptr (B+1) non-decreasing, every cols[p] in [0, C); bias may be NULL. */
void ops_dense_sparse(float *out, const int64_t *row_ptr, const int32_t *cols,
                      const float *vals, const float *w, const float *bias, int64_t B,
                      int64_t OC, ops_act act, float alpha);
void ops_dense_sparse_naive(float *out, const int64_t *row_ptr, const int32_t *cols,
                            const float *vals, const float *w, const float *bias, int64_t B,
                            int64_t OC, ops_act act, float alpha);

#endif
