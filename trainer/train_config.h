/*
 * train_config.h — a training job file (`precast train TRAIN.ini`) read, validated, resolved.
 *
 * Sections and keys (docs/TRAINING.md has the full list with defaults):
 *   [data]   paths, format = csv | libsvm, id_column, label_column, label_kind = class |
 *            multilabel | binary | value, labels, features, validation, test, label_separator,
 *            max_memory_mb, one_based
 *   [model]  layers, embed.COLUMN = DIM, hash.COLUMN = BUCKETS, vocab.COLUMN = N,
 *            bag.COLUMN = L, head, sampled, sampler, init_bias, init
 *   [train]  epochs, batch_rows, optimizer, learning_rate, momentum, beta1, beta2, eps,
 *            schedule, step_size, gamma, l2, clip_norm, seed, early_stopping, deterministic,
 *            micro_rows, lazy_sparse
 *   [output] model, report, curves, plot, predictions
 * Every key is checked: an unknown key, a bad value or a missing required key is
 * PC_ERR_CONFIG "FILE:LINE: ..." (or "--set section.key: ...") before any data is read.
 * Paths are relative to the job file's folder, as in `precast run`.
 *
 * Ownership: train_config_load returns a config that owns all its strings and arrays;
 * train_config_free releases it. Nothing here talks MPI; every rank loads the file itself.
 */
#ifndef PRECAST_TRAIN_CONFIG_H
#define PRECAST_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"

typedef enum train_label_kind {
    TRAIN_LABEL_CLASS = 0,   /* one class name per row */
    TRAIN_LABEL_MULTILABEL,  /* names separated by label_separator ("a|b|c"), possibly none */
    TRAIN_LABEL_BINARY,      /* 0/1, true/false, yes/no, or one of the two names in labels */
    TRAIN_LABEL_VALUE        /* one number per label column (regression) */
} train_label_kind;

typedef enum train_head {
    TRAIN_HEAD_SOFTMAX = 0,
    TRAIN_HEAD_SAMPLED_SOFTMAX,
    TRAIN_HEAD_ONE_VS_ALL,
    TRAIN_HEAD_MULTILABEL,
    TRAIN_HEAD_SIGMOID,
    TRAIN_HEAD_REGRESSION
} train_head;

typedef enum train_layer_kind { TRAIN_LAYER_DENSE = 0, TRAIN_LAYER_BATCHNORM, TRAIN_LAYER_DROPOUT } train_layer_kind;
typedef enum train_activation {
    TRAIN_ACT_NONE = 0, TRAIN_ACT_RELU, TRAIN_ACT_LEAKY_RELU, TRAIN_ACT_TANH, TRAIN_ACT_SIGMOID
} train_activation;

typedef struct train_layer {
    train_layer_kind kind;
    int64_t units;          /* DENSE */
    train_activation act;   /* DENSE */
    double alpha;           /* DENSE with leaky_relu: negative slope, default 0.01 */
    double p;               /* DROPOUT: drop probability in [0, 1) */
} train_layer;

typedef struct train_embed {
    char *column;           /* the id column's name (CSV header) */
    int64_t dim;            /* embed.COLUMN */
    int64_t hash_buckets;   /* hash.COLUMN: string ids hashed (FNV-1a 64, as precast run); 0 = integer ids */
    int64_t vocab;          /* vocab.COLUMN: ids must be < vocab; 0 = max id in the data + 1 */
    int64_t bag;            /* bag.COLUMN: ids per row (padded with id 0); 0 = longest bag in the data */
} train_embed;

typedef enum train_optimizer { TRAIN_OPT_ADAM = 0, TRAIN_OPT_SGD } train_optimizer;
typedef enum train_schedule { TRAIN_SCHED_CONSTANT = 0, TRAIN_SCHED_STEP, TRAIN_SCHED_COSINE } train_schedule;
typedef enum train_sampler { TRAIN_SAMPLER_UNIFORM = 0, TRAIN_SAMPLER_LOG_UNIFORM } train_sampler;
typedef enum train_format { TRAIN_FORMAT_CSV = 0, TRAIN_FORMAT_LIBSVM } train_format;

typedef struct train_config {
    char *job_file;
    char *name;              /* the job file's base name without .ini */
    /* [data] */
    char **paths;            /* globs, resolved against the job file's folder (required) */
    int npaths;
    char **test_paths;       /* [data] test: held-back rows scored once after training, or NULL */
    int ntest_paths;
    train_format format;
    char *id_column;         /* CSV: optional key column (excluded from the features) */
    char **label_columns;    /* CSV: required; several only for label_kind = value */
    int64_t nlabel_columns;
    train_label_kind label_kind;
    char *labels_path;       /* class names, one per line: read if present, written if absent;
                                default: beside the model, MODEL minus .onnx plus .labels */
    char **features;         /* dense feature columns, NULL = every column that is not the id,
                                a label or an embedding column */
    int64_t nfeatures;
    int64_t libsvm_width;    /* [data] features = N for LIBSVM; 0 = largest index + 1 */
    bool one_based;          /* LIBSVM indices start at 1 (default true) */
    double validation;       /* share of rows held back, by a hash of the row (default 0.2) */
    char label_separator;    /* multilabel and bags: default '|' */
    int64_t max_memory_mb;   /* each rank's in-memory rows may not exceed this (default 2048) */
    /* [model] */
    train_layer *layers;
    int nlayers;
    train_embed *embeds;
    int nembeds;
    train_head head;
    int64_t sampled;         /* negatives per batch for sampled_softmax (default 64) */
    train_sampler sampler;
    bool has_init_bias;
    double init_bias;        /* dense biases start at this value (to provoke dead ReLUs) */
    /* [train] */
    int64_t epochs;          /* default 10 */
    int64_t batch_rows;      /* global batch: rows per optimiser step over all ranks (default 128) */
    train_optimizer optimizer;
    double learning_rate;    /* default 0.001 (adam) or 0.01 (sgd) */
    double momentum, beta1, beta2, eps;
    train_schedule schedule;
    int64_t step_size;       /* schedule = step: epochs between decays (default 10) */
    double gamma;            /* schedule = step: factor per decay (default 0.1) */
    double l2;
    double clip_norm;        /* 0 = no clipping */
    uint64_t seed;           /* default 1 */
    int64_t early_stopping;  /* patience in epochs; 0 = off */
    bool deterministic;      /* bit-identical models whatever the rank count */
    int64_t micro_rows;      /* deterministic: rows per micro-batch (default 32) */
    bool lazy_sparse;        /* embedding tables and a sampled head update only the rows a step
                                used (LazyAdam); default false: every row, as PyTorch's dense Adam */
    /* [output] */
    char *model_path;        /* required */
    char *report_path;       /* default MODEL minus .onnx plus .report.json (and .report.txt) */
    char *curves_path;       /* default MODEL minus .onnx plus .curves.csv */
    char *plot_path;         /* default MODEL's folder/loss.png; "" = no plot */
    char *predictions_path;  /* CSV of the test rows' (else validation rows') predictions, or NULL */
    char *stats_path;        /* MODEL minus .onnx plus .stats.json */
} train_config;

/* Loads path, applies "section.key=value" overrides in order, validates and resolves.
 * On failure *out is NULL. */
pc_status train_config_load(const char *path, char *const *overrides, int noverrides,
                            train_config **out, char *err, size_t errlen);
void train_config_free(train_config *c); /* accepts NULL */

/* Names as written in the job file, for reports. Never NULL. */
const char *train_head_name(train_head h);
const char *train_label_kind_name(train_label_kind k);
const char *train_activation_name(train_activation a);
const char *train_optimizer_name(train_optimizer o);
const char *train_schedule_name(train_schedule s);

/* Parses a [model] layers value ("dense 128 relu, batchnorm, dropout 0.2, dense 64 leaky_relu
 * 0.1") into a new array; `where` prefixes messages ("job.ini:7"). */
pc_status train_layers_parse(const char *value, const char *where, train_layer **out, int *n,
                             char *err, size_t errlen);

#endif
