/*
 * head.h — turns a model output row into the value stored in the table.
 *
 * A head is applied after the graph: it reads the graph's output scores for one row and
 * encodes the prediction as the table's value. Value encoding lives here rather than in
 * storage/ because the map loop needs it and mapper/ does not depend on storage/; to storage a
 * value is opaque bytes.
 *
 * Heads (output.head in the job file):
 *   auto          the graph's output as is: probabilities if the graph ends in Softmax
 *                 (softmax_topk), a probability if it ends in Sigmoid with one output
 *                 (sigmoid), else the raw vector (raw).
 *   softmax_topk  class probabilities; applies softmax only if the graph did not already end
 *                 in Softmax (exp() after LogSoftmax), so no model gets softmax twice.
 *                 Value: {"label":"7","p":0.981,"top":[["7",0.981],["1",0.012]]}
 *   sigmoid       binary: one output; applies the logistic function unless the graph ended in
 *                 Sigmoid. Value: {"label":"1","p":0.93} with p = P(class 1) and label
 *                 labels[1] (or "1") when p >= threshold, else labels[0] (or "0").
 *   raw           the output vector. Value: {"scores":[0.1,-2.5,...]}
 * value_format f32 stores, for any head, the head's probability (or raw) vector as
 * little-endian float32 instead of JSON.
 *
 * Ownership: a head copies the labels it is given; head_free() releases them. A head has a
 * scratch row of the output's width, so one head serves one thread.
 */
#ifndef PRECAST_HEAD_H
#define PRECAST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/model.h"
#include "kernels/status.h"

typedef enum head_kind { HEAD_AUTO = 0, HEAD_SOFTMAX_TOPK, HEAD_SIGMOID, HEAD_RAW } head_kind;
typedef enum value_format { VALUE_FORMAT_JSON = 0, VALUE_FORMAT_F32 } value_format;

typedef struct head_config {
    head_kind kind;
    int64_t top_k;        /* classes listed in "top" (softmax_topk); default 1 */
    double threshold;     /* sigmoid: p >= threshold means class 1; default 0.5 */
    value_format format;
    const char *const *labels; /* class names, may be NULL: class i is then named "i" */
    int64_t nlabels;
} head_config;

typedef struct head head;

/* Parses "auto" | "softmax_topk" | "sigmoid" | "raw" (and "json" | "f32"); false if unknown. */
bool head_kind_parse(const char *s, head_kind *out);
const char *head_kind_name(head_kind k);
bool value_format_parse(const char *s, value_format *out);
const char *value_format_name(value_format f);

/* Builds the head for an output of `width` scores that the graph finished with `final`.
 * Resolves HEAD_AUTO. Errors (PC_ERR_CONFIG): sigmoid on a width other than 1, a labels list
 * whose length differs from the width, top_k < 1. */
pc_status head_create(const head_config *cfg, int64_t width, model_final final, head **out,
                      char *err, size_t errlen);
void head_free(head *h); /* accepts NULL */
head_kind head_effective_kind(const head *h);

/* Encodes one row's scores (`width` floats) into out (cap bytes), setting *len. Returns
 * PC_ERR_DATA if a score is NaN or infinite ("model output 3 is NaN"), PC_ERR_INTERNAL if cap
 * is too small (head_value_max_bytes() gives a sufficient cap). */
pc_status head_encode(head *h, const float *scores, char *out, size_t cap, size_t *len,
                      char *err, size_t errlen);
size_t head_value_max_bytes(const head *h);

/* Writes s as a JSON string literal (with quotes) into out; returns the bytes needed (like
 * snprintf: the output is cut at cap, always NUL-terminated when cap > 0). Valid UTF-8 passes
 * through; control characters, '"' and '\\' are escaped; a byte that is not part of valid
 * UTF-8 becomes \u00XX, so the output is always valid JSON. */
size_t json_quote(char *out, size_t cap, const char *s, size_t len);

#endif
