/*
 * net.h — the trainable network of `precast train`: embeddings for id columns concatenated
 * with the dense features, a stack of dense / batch-norm / dropout layers, and a head (an
 * output dense layer plus its loss).  Forward in training and inference mode, backward into
 * per-parameter gradient buffers; the optimiser (optim.h) and the trainer read and write the
 * parameters through net_param_get.
 *
 * Ownership: net_create copies the spec and allocates, once, every buffer a step needs for up
 * to batch_rows rows (parameters, gradients, activations, masks, scratch); a step allocates
 * nothing.  Every pointer the net hands out (inputs, outputs, parameter values and gradients,
 * names) belongs to the net and stays valid until net_free.
 *
 * Determinism: parameters are initialised from spec->seed, dropout masks and sampled negatives
 * from (seed, step, row key): the same spec, seed, data and steps give bit-identical weights.
 *
 * Layer numbering (net_layer_get, net_param.layer, net_dead_share): the spec's layers are
 * 0 .. n_layers-1 in order, and the head's output dense layer is n_layers (the last).
 * Parameter names: "embed.<column>", "dense<i>.weight" (out, in) / "dense<i>.bias",
 * "bn<i>.weight" / "bn<i>.bias" (gamma, beta), "bn<i>.running_mean" / "bn<i>.running_var"
 * (buffers: grad NULL), "head.weight" (outputs, in) / "head.bias".
 *
 * Threads: one net per thread; MPI is the trainer's business (nothing here talks MPI).
 */
#ifndef PRECAST_NET_H
#define PRECAST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/grad.h"
#include "kernels/status.h"

#define NET_MAX_LAYERS 64
#define NET_MAX_EMBEDS 32
#define NET_NAME_MAX 64

typedef enum net_act {
    NET_ACT_NONE = 0,
    NET_ACT_RELU,
    NET_ACT_LEAKY_RELU, /* x < 0 ? alpha*x : x */
    NET_ACT_TANH,
    NET_ACT_SIGMOID
} net_act;

typedef enum net_layer_kind {
    NET_LAYER_DENSE = 0, /* units outputs, then the activation */
    NET_LAYER_BATCHNORM, /* BatchNorm1d over the previous layer's outputs */
    NET_LAYER_DROPOUT    /* inverted dropout with probability p while training */
} net_layer_kind;

typedef enum net_head {
    NET_HEAD_SOFTMAX = 0,     /* classes: softmax cross-entropy; output probabilities */
    NET_HEAD_SAMPLED_SOFTMAX, /* classes: sampled softmax while training, full when evaluating */
    NET_HEAD_ONE_VS_ALL,      /* classes: one logistic output per class, one-hot targets */
    NET_HEAD_MULTILABEL,      /* 0/1 targets per class (net_label_target) */
    NET_HEAD_SIGMOID,         /* binary: outputs == 1, target 0/1 */
    NET_HEAD_REGRESSION       /* outputs values, mean squared error */
} net_head;

typedef enum net_init {
    NET_INIT_KAIMING_UNIFORM = 0, /* PyTorch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in))
                                     for weights and biases */
    NET_INIT_XAVIER_UNIFORM       /* U(-a, a), a = sqrt(6/(in+out)); biases 0 */
} net_init;

typedef struct net_embed_spec {
    char name[NET_NAME_MAX]; /* the id column, used in the parameter's name */
    int64_t vocab;           /* rows of the table: ids in [0, vocab) */
    int64_t dim;             /* width of the pooled vector */
    int64_t bag;             /* L: ids per row; > 1 mean-pools L slots */
    int64_t padding_idx;     /* id of empty bag slots (its row stays zero), or -1 */
} net_embed_spec;

typedef struct net_layer_spec {
    net_layer_kind kind;
    int64_t units; /* DENSE */
    net_act act;   /* DENSE */
    float alpha;   /* DENSE with LEAKY_RELU: the negative slope */
    float p;       /* DROPOUT: probability of dropping a unit, in [0, 1) */
} net_layer_spec;

typedef struct net_spec {
    int64_t dense_width; /* dense input features per row (may be 0 with embeddings) */
    int n_embeds;
    net_embed_spec embeds[NET_MAX_EMBEDS];
    int n_layers;
    net_layer_spec layers[NET_MAX_LAYERS];
    net_head head;
    int64_t outputs;      /* classes, or targets for regression (1 for SIGMOID) */
    int64_t negatives;    /* SAMPLED_SOFTMAX: negatives per batch (>= outputs: all classes) */
    grad_sampler sampler; /* SAMPLED_SOFTMAX */
    uint64_t seed;
    net_init init;
    bool has_bias_init; /* every hidden dense layer's bias set to bias_init (dead-ReLU drills) */
    float bias_init;
    float bn_eps;      /* default 1e-5 */
    float bn_momentum; /* default 0.1 (PyTorch's) */
} net_spec;

/* Fills *s with an empty spec and the defaults above (softmax head, Kaiming init, eps 1e-5,
 * momentum 0.1, padding none).  Call it before filling a spec. */
void net_spec_init(net_spec *s);

typedef struct net net;

/* Builds a net for batches of up to batch_rows rows, with freshly initialised parameters.
 * On error (a size of 0, a vocabulary or dimension out of range, dropout p outside [0, 1),
 * a SIGMOID head with outputs != 1, out of memory) returns non-OK with a message naming the
 * layer or column, and *out is NULL.  The caller frees *out with net_free. */
pc_status net_create(const net_spec *spec, int64_t batch_rows, net **out, char *err,
                     size_t errlen);
void net_free(net *n); /* NULL is fine */

const net_spec *net_get_spec(const net *n);
int64_t net_batch_rows(const net *n);
/* Width of the first layer's input: dense_width + the embedding dimensions. */
int64_t net_input_width(const net *n);

/* ---- inputs the trainer fills before each forward pass (first `rows` rows count) ------ */
float *net_dense_input(net *n);           /* (batch_rows, dense_width) */
int64_t *net_embed_input(net *n, int e);  /* (batch_rows, bag) ids of embedding e */
int32_t *net_label_class(net *n);         /* (batch_rows): SOFTMAX, SAMPLED, ONE_VS_ALL */
float *net_label_target(net *n);          /* (batch_rows, outputs): MULTILABEL, SIGMOID,
                                             REGRESSION */
/* (batch_rows) keys of the rows for dropout masks; net_create sets 0..batch_rows-1.  The
 * trainer may write a global row number so that masks do not depend on the rank count. */
uint64_t *net_row_keys(net *n);

/* ---- passes ----------------------------------------------------------------------------- */

/* Training forward pass on the first `rows` rows (1 <= rows <= batch_rows).  It starts a
 * step: every parameter's gradient is cleared first (sparse ones: their touched rows).  Dropout on
 * (masks from seed, step, row keys), batch norm on batch statistics (updating the running
 * statistics), the loss from the labels into *loss (mean over rows; see grad.h for each
 * head's definition; may be NaN or inf when training diverges).  It also records which ReLU
 * units produced a positive output (net_dead_share).  For a SAMPLED_SOFTMAX head the loss is
 * the sampled one and net_output is not filled.
 * Fails (PC_ERR_DATA, "row R: ...", nothing updated that matters) on a label outside
 * [0, outputs) or an embedding id outside [0, vocab). */
pc_status net_forward_train(net *n, int64_t rows, uint64_t step, double *loss, char *err,
                            size_t errlen);

/* Backward pass of the last net_forward_train (same rows): fills every trainable parameter's
 * grad with the gradient of the mean loss.  Embedding tables (and a sampled head's weight and
 * bias) get sparse gradients: only the rows in touched_rows are non-zero, and only those rows
 * are cleared by the next net_forward_train.
 * REQUIRES: a successful net_forward_train on `rows` rows, and no net_forward_eval since (it
 * overwrites the activations); otherwise nothing is done. */
void net_backward(net *n, int64_t rows);

/* Inference forward pass (dropout off, batch norm on running statistics, full softmax for a
 * sampled head) on the first `rows` rows; fills net_output.  If loss is not NULL, the labels
 * are read and *loss is the mean loss (full softmax cross-entropy for a sampled head).
 * Fails like net_forward_train on bad ids, or on bad labels when loss is not NULL. */
pc_status net_forward_eval(net *n, int64_t rows, double *loss, char *err, size_t errlen);

/* (batch_rows, outputs): probabilities (softmax heads: each row sums to 1; logistic heads:
 * per output) or values (regression), for the rows of the last pass that filled it. */
const float *net_output(const net *n);

/* ---- parameters ------------------------------------------------------------------------- */

typedef struct net_param {
    const char *name;            /* owned by the net */
    int layer;                   /* net_layer_get index; -1 for an embedding table */
    int embed;                   /* embedding index for a table, else -1 */
    float *value;                /* count floats; the trainer may write them (loading, sync) */
    float *grad;                 /* count floats; NULL for non-trainable buffers */
    int64_t count;
    int64_t row_width;           /* floats per row (D for a table, in for a weight, 1 else) */
    bool is_embedding;
    /* Sparse gradient: when touched_rows is not NULL only these rows (each row_width floats)
     * of grad are non-zero after net_backward (unsorted order, each row once). */
    const int64_t *touched_rows;
    int64_t touched_count;
} net_param;

int net_param_count(const net *n);
/* Fills *p for parameter i in [0, net_param_count); returns PC_ERR_USAGE for another i. */
pc_status net_param_get(net *n, int i, net_param *p);
/* Index of the parameter named name, or -1. */
int net_param_find(const net *n, const char *name);
/* Adds row to parameter i's touched rows (a row another rank's gradient reached, written into
 * grad by the trainer), so that the next net_backward clears it. No-op for dense gradients. */
void net_param_touch(net *n, int i, int64_t row);

/* ---- layers (for the ONNX writer and the diagnostics) ----------------------------------- */

typedef struct net_layer {
    net_layer_kind kind;
    bool is_head;            /* the output dense layer (activation NONE; head says the rest) */
    int64_t in, out;         /* widths */
    net_act act;
    float alpha;
    float p;                 /* dropout */
    float eps, momentum;     /* batch norm */
    const float *weight;     /* DENSE (out, in); BATCHNORM gamma (out) */
    const float *bias;       /* DENSE (out); BATCHNORM beta (out) */
    const float *running_mean, *running_var; /* BATCHNORM (out) */
} net_layer;

int net_layer_count(const net *n); /* spec layers + 1 (the head) */
pc_status net_layer_get(const net *n, int i, net_layer *l);

/* ---- diagnostics ------------------------------------------------------------------------ */

/* Starts a new dead-unit window (e.g. at each epoch). */
void net_dead_reset(net *n);
/* Share (0..1) of dense layer i's units whose output was <= 0 for every row of every
 * net_forward_train since the reset; -1 if layer i is not a ReLU/LeakyReLU dense layer or no
 * training row was seen. */
double net_dead_share(const net *n, int layer);

#endif
