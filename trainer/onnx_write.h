/*
 * onnx_write.h — writes a trained network as an ONNX model (protobuf encoded by hand, opset 13,
 * IR version 8) built only of ops that kernels/model.h loads and `onnx.checker` accepts:
 *
 *   features (N, W) float ──────────────────────────────┐
 *   COLUMN (N, L) int64 → Gather(table) → ReduceMean(1) ─┴→ Concat(1) → [Gemm → act | BN]... → final
 *
 * Dense layers are Gemm (transB = 1 for PyTorch's (out, in) weight layout), activations Relu,
 * LeakyRelu(alpha), Tanh, Sigmoid; batch norm is BatchNormalization with its running
 * statistics (inference mode); dropout is the identity and writes nothing. The final op is
 * Softmax (axis 1), Sigmoid, or nothing (regression). The batch dimension is symbolic ("N").
 * A bag of L ids is mean-pooled over its L slots (the padding id 0 has a zero row), as
 * PyTorch's emb(bag).mean(dim=1).
 *
 * Ownership: the writer borrows every pointer of the spec for the call only.
 */
#ifndef PRECAST_ONNX_WRITE_H
#define PRECAST_ONNX_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "trainer/train_config.h"

typedef struct onnx_write_layer {
    train_layer_kind kind;
    int64_t in, out;            /* units in and out (equal for batch norm and dropout) */
    train_activation act;       /* DENSE */
    double alpha;               /* DENSE leaky_relu */
    const float *weight;        /* DENSE: (out, in) row-major, or (in, out) when weight_in_out */
    bool weight_in_out;
    const float *bias;          /* DENSE: (out), or NULL for none */
    const float *bn_scale, *bn_bias, *bn_mean, *bn_var; /* BATCHNORM: (out) each */
    double bn_eps;
} onnx_write_layer;

typedef struct onnx_write_embed {
    const char *input;          /* graph input name (the id column) */
    int64_t vocab, dim, bag;    /* table (vocab, dim); bag = ids per row */
    const float *table;         /* (vocab, dim) row-major */
} onnx_write_embed;

typedef enum onnx_write_final { ONNX_WRITE_FINAL_NONE = 0, ONNX_WRITE_FINAL_SOFTMAX, ONNX_WRITE_FINAL_SIGMOID } onnx_write_final;

typedef struct onnx_write_spec {
    const char *dense_input;    /* name of the float input, e.g. "features" */
    int64_t dense_width;        /* 0 = no float input */
    const onnx_write_embed *embeds;
    int nembeds;
    const onnx_write_layer *layers;
    int nlayers;
    onnx_write_final final;
    const char *output;         /* graph output name, e.g. "probabilities" */
    const char *doc;            /* the graph's doc_string (job, columns), or NULL */
} onnx_write_spec;

/* Encodes the model into a new buffer (*bytes malloc'd, the caller frees it).
 * Errors: a layer whose `in` does not match the width before it, no input, or a missing
 * weight -> PC_ERR_INTERNAL naming the layer (the caller's bug); out of memory ->
 * PC_ERR_INTERNAL. On failure *bytes is NULL. */
pc_status onnx_write_bytes(const onnx_write_spec *s, uint8_t **bytes, size_t *len, char *err, size_t errlen);

/* onnx_write_bytes, then writes path atomically (path.tmp, fsync, rename): a reader never sees
 * half a model. Cannot create or write -> PC_ERR_CANTCREAT naming the path. */
pc_status onnx_write_file(const onnx_write_spec *s, const char *path, char *err, size_t errlen);

#endif
