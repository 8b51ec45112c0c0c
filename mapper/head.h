/*
 * head.h — turns one row of model outputs into the value stored in the table.
 *
 * A head is applied after the graph: it reads the graph's outputs for one row and encodes the
 * prediction as the table's value. Value encoding lives here rather than in storage/ because
 * the map loop needs it and mapper/ does not depend on storage/; to storage a value is opaque
 * bytes. No head applies softmax (or the logistic function) to an output the graph already
 * ended with it.
 *
 * Heads (output.head in the job file) and their JSON values:
 *   softmax_topk  {"label":"7","p":0.981,"top":[["7",0.981],["1",0.012]]} — the top k classes
 *                 of a softmax; from logits by a stable log-sum-exp without materialising all
 *                 probabilities (so 50,000 classes cost one pass), from a Softmax graph as is,
 *                 from LogSoftmax by exp().
 *   sigmoid       {"label":"1","p":0.93} — binary, one output; p = P(class 1); label is
 *                 labels[1] (or "1") when p >= threshold, else labels[0] (or "0").
 *   one_vs_all    {"label":"c3","p":0.91} — a sigmoid per class, the arg-max wins; with
 *                 all_scores also "scores":[...] (every class's sigmoid).
 *   multilabel    {"labels":["a","c"],"p":[0.9,0.7]} — a sigmoid per class; every class at or
 *                 above its threshold (global, or per class from a thresholds file), by
 *                 decreasing p, at most max_labels.
 *   raw           {"scores":[0.1,-2.5,...]} — the output vector.
 *   embedding     {"vector":[0.1,-2.5,...]} — the output vector (a user or item embedding).
 *   auto          resolved from the graph: a TopK graph (outputs values + int64 indices) gives
 *                 graph_topk {"label":..,"p":..,"top":[..]}; one int64 output (ArgMax) gives
 *                 graph_argmax {"label":".."}; a Softmax/LogSoftmax ending gives softmax_topk;
 *                 a one-wide Sigmoid ending gives sigmoid; anything else raw.
 * value_format f32 stores the head's float vector (probabilities, sigmoids, or the raw vector)
 * as little-endian float32 instead of JSON. Numbers in JSON have 6 significant digits.
 *
 * Ownership: a head copies the labels and thresholds it is given; head_free() releases them.
 * A head has scratch rows, so one head serves one thread.
 */
#ifndef PRECAST_HEAD_H
#define PRECAST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/model.h"
#include "kernels/status.h"

typedef enum head_kind {
    HEAD_AUTO = 0,
    HEAD_SOFTMAX_TOPK,
    HEAD_SIGMOID,
    HEAD_ONE_VS_ALL,
    HEAD_MULTILABEL,
    HEAD_RAW,
    HEAD_EMBEDDING,
    HEAD_GRAPH_TOPK,   /* only from auto */
    HEAD_GRAPH_ARGMAX  /* only from auto */
} head_kind;
typedef enum value_format { VALUE_FORMAT_JSON = 0, VALUE_FORMAT_F32 } value_format;

typedef struct head_config {
    head_kind kind;
    int64_t top_k;            /* classes listed in "top" (softmax_topk); default 1 */
    double threshold;         /* sigmoid / multilabel; default 0.5 */
    const float *thresholds;  /* multilabel per-class thresholds, or NULL */
    int64_t nthresholds;
    int64_t max_labels;       /* multilabel: 0 = no limit */
    bool all_scores;          /* one_vs_all: add every class's score */
    value_format format;
    const char *const *labels;/* class names, may be NULL: class i is then named "i" */
    int64_t nlabels;
} head_config;

/* What the head is told about each graph output it reads. */
typedef struct head_output {
    int64_t width;            /* elements per row */
    model_elem elem;          /* float32 or int64 */
    model_final final;        /* what the graph's last op did */
} head_output;

typedef struct head head;

/* Parses a head name (user-selectable ones only) or a value format; false if unknown. */
bool head_kind_parse(const char *s, head_kind *out);
const char *head_kind_name(head_kind k);
bool value_format_parse(const char *s, value_format *out);
const char *value_format_name(value_format f);

/* Builds the head for a graph with these outputs (the head reads outputs[0], and outputs[1]
 * for a TopK graph). Resolves HEAD_AUTO. Errors (PC_ERR_CONFIG, naming the conflict): a head
 * that does not fit the outputs (sigmoid on a width other than 1, softmax_topk on one class,
 * any float head on an int64 output), a labels list or thresholds list whose length differs
 * from the number of classes, top_k < 1. */
pc_status head_create(const head_config *cfg, const head_output *outputs, int noutputs,
                      head **out, char *err, size_t errlen);
void head_free(head *h); /* accepts NULL */
head_kind head_effective_kind(const head *h);

/* Encodes one row into out (cap bytes), setting *len. rows[i] points at this row's elements
 * of output i (float or int64 as described at create). PC_ERR_DATA if a score is NaN or
 * infinite or a class index is out of range ("model output 3 is NaN"); PC_ERR_INTERNAL if cap
 * is too small (head_value_max_bytes() is always enough). */
pc_status head_encode(head *h, const void *const *rows, char *out, size_t cap, size_t *len,
                      char *err, size_t errlen);
size_t head_value_max_bytes(const head *h);

/* Writes s as a JSON string literal (with quotes) into out; returns the bytes needed (like
 * snprintf: the output is cut at cap, always NUL-terminated when cap > 0). Valid UTF-8 passes
 * through; '"', '\\' and control characters are escaped (\n \r \t short); a byte that is not
 * part of valid UTF-8 becomes \u00XX, so the output is always valid JSON. */
size_t json_quote(char *out, size_t cap, const char *s, size_t len);

/* Writes a stored value (vlen bytes, as head_encode made it) as JSON text into out, like
 * json_quote: VALUE_FORMAT_JSON values are JSON already and are copied; VALUE_FORMAT_F32
 * values become an array of numbers ("%.9g", enough to read each float back exactly). */
size_t value_json(char *out, size_t cap, const char *val, size_t vlen, value_format f);

#endif
