#include "mapper/head.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

struct head {
    head_kind kind;      /* resolved: never HEAD_AUTO */
    model_final final;
    int64_t width;
    int64_t top_k;
    double threshold;
    value_format format;
    char **labels;       /* width names, owned */
    size_t max_label_json; /* longest quoted label */
    float *probs;        /* scratch row (width) */
    int64_t *top;        /* scratch (top_k): class indices */
    float *topv;         /* scratch (top_k): their probabilities */
};

static const char *const HEAD_NAMES[] = {"auto", "softmax_topk", "sigmoid", "raw"};
static const char *const FORMAT_NAMES[] = {"json", "f32"};

bool head_kind_parse(const char *s, head_kind *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, HEAD_NAMES[i]) == 0) {
            *out = (head_kind)i;
            return true;
        }
    return false;
}

const char *head_kind_name(head_kind k) { return HEAD_NAMES[k]; }

bool value_format_parse(const char *s, value_format *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(s, FORMAT_NAMES[i]) == 0) {
            *out = (value_format)i;
            return true;
        }
    return false;
}

const char *value_format_name(value_format f) { return FORMAT_NAMES[f]; }

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if the bytes are not one. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (n == 0 || n > len) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

size_t json_quote(char *out, size_t cap, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = 0;
#define PUT(c) do { if (n + 1 < cap) out[n] = (char)(c); n++; } while (0)
    PUT('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT(c);
        } else if (c >= 0x20 && c < 0x7F) {
            PUT(c);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            PUT('\\');
            PUT(c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c >= 0x80 && utf8_sequence(s + i, len - i) > 0) {
            size_t k = utf8_sequence(s + i, len - i);
            for (size_t j = 0; j < k; j++) PUT(s[i + j]);
            i += k - 1;
        } else {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            for (int j = 0; j < 6; j++) PUT(esc[j]);
        }
    }
    PUT('"');
#undef PUT
    if (cap > 0) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static head_kind resolve_auto(int64_t width, model_final final)
{
    if (final == MODEL_FINAL_SOFTMAX || final == MODEL_FINAL_LOGSOFTMAX) return HEAD_SOFTMAX_TOPK;
    if (final == MODEL_FINAL_SIGMOID && width == 1) return HEAD_SIGMOID;
    return HEAD_RAW;
}

pc_status head_create(const head_config *cfg, int64_t width, model_final final, head **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    head_kind kind = cfg->kind == HEAD_AUTO ? resolve_auto(width, final) : cfg->kind;
    if (width < 1) return pc_err(err, errlen, PC_ERR_CONFIG, "model output has no elements");
    if (kind == HEAD_SIGMOID && width != 1)
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "head sigmoid needs a model output of width 1, this one has %lld",
                      (long long)width);
    if (kind == HEAD_SOFTMAX_TOPK && width < 2)
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "head softmax_topk needs at least 2 classes, the model output has 1");
    if (cfg->top_k < 1) return pc_err(err, errlen, PC_ERR_CONFIG, "top_k must be at least 1");
    int64_t nclass = kind == HEAD_SIGMOID ? 2 : width;
    if (cfg->labels != NULL && cfg->nlabels != nclass)
        return pc_err(err, errlen, PC_ERR_CONFIG, "labels file has %lld names, the model has %lld classes",
                      (long long)cfg->nlabels, (long long)nclass);
    head *h = calloc(1, sizeof *h);
    if (h == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    h->kind = kind;
    h->final = final;
    h->width = width;
    h->top_k = cfg->top_k < width ? cfg->top_k : width;
    h->threshold = cfg->threshold;
    h->format = cfg->format;
    h->labels = calloc((size_t)nclass, sizeof(char *));
    h->probs = malloc((size_t)width * sizeof(float));
    h->top = malloc((size_t)h->top_k * sizeof(int64_t));
    h->topv = malloc((size_t)h->top_k * sizeof(float));
    bool ok = h->labels && h->probs && h->top && h->topv;
    for (int64_t i = 0; ok && i < nclass; i++) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)i);
        h->labels[i] = strdup(cfg->labels ? cfg->labels[i] : num);
        ok = h->labels[i] != NULL;
        if (ok) {
            size_t q = json_quote(NULL, 0, h->labels[i], strlen(h->labels[i]));
            if (q > h->max_label_json) h->max_label_json = q;
        }
    }
    if (!ok) {
        head_free(h);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    *out = h;
    return PC_OK;
}

void head_free(head *h)
{
    if (h == NULL) return;
    int64_t nclass = h->kind == HEAD_SIGMOID ? 2 : h->width;
    if (h->labels)
        for (int64_t i = 0; i < nclass; i++) free(h->labels[i]);
    free(h->labels);
    free(h->probs);
    free(h->top);
    free(h->topv);
    free(h);
}

head_kind head_effective_kind(const head *h) { return h->kind; }

/* A float as JSON needs at most 15 bytes with %.6g ("-1.23457e-38"); 16 with the comma. */
#define FLOAT_JSON 16

size_t head_value_max_bytes(const head *h)
{
    if (h->format == VALUE_FORMAT_F32) return (size_t)h->width * 4;
    switch (h->kind) {
    case HEAD_SOFTMAX_TOPK:
        return 64 + h->max_label_json * (size_t)(1 + h->top_k) + (size_t)h->top_k * (FLOAT_JSON + 8);
    case HEAD_SIGMOID: return 64 + h->max_label_json + FLOAT_JSON;
    default: return 32 + (size_t)h->width * FLOAT_JSON;
    }
}

/* Fills h->probs with the head's probabilities (or raw scores), applying softmax or the
 * logistic function only when the graph did not. */
static void head_probabilities(head *h, const float *scores)
{
    if (h->kind == HEAD_SOFTMAX_TOPK && h->final == MODEL_FINAL_NONE)
        ops_softmax(h->probs, scores, 1, h->width);
    else if (h->kind == HEAD_SOFTMAX_TOPK && h->final == MODEL_FINAL_LOGSOFTMAX)
        for (int64_t i = 0; i < h->width; i++) h->probs[i] = expf(scores[i]);
    else if (h->kind == HEAD_SIGMOID && h->final != MODEL_FINAL_SIGMOID)
        ops_sigmoid(h->probs, scores, h->width);
    else
        memcpy(h->probs, scores, (size_t)h->width * sizeof(float));
}

/* Appends to out at *n, never past cap; the caller sized cap with head_value_max_bytes(). */
static void append(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len < cap) memcpy(out + *n, s, len);
    *n += len;
}

static void append_label(const head *h, char *out, size_t cap, size_t *n, int64_t cls)
{
    size_t room = *n < cap ? cap - *n : 0;
    *n += json_quote(out + (*n < cap ? *n : 0), room, h->labels[cls], strlen(h->labels[cls]));
}

static void append_float(char *out, size_t cap, size_t *n, float v)
{
    char num[FLOAT_JSON + 8];
    int k = snprintf(num, sizeof num, "%.6g", (double)v);
    append(out, cap, n, num, (size_t)k);
}

pc_status head_encode(head *h, const float *scores, char *out, size_t cap, size_t *len,
                      char *err, size_t errlen)
{
    for (int64_t i = 0; i < h->width; i++)
        if (!isfinite(scores[i]))
            return pc_err(err, errlen, PC_ERR_DATA, "model output %lld is %s", (long long)i,
                          isnan(scores[i]) ? "NaN" : "infinite");
    head_probabilities(h, scores);
    size_t n = 0;
    if (h->format == VALUE_FORMAT_F32) {
        append(out, cap, &n, (const char *)h->probs, (size_t)h->width * sizeof(float));
    } else if (h->kind == HEAD_SOFTMAX_TOPK) {
        ops_topk(h->topv, h->top, h->probs, 1, h->width, h->top_k);
        append(out, cap, &n, "{\"label\":", 9);
        append_label(h, out, cap, &n, h->top[0]);
        append(out, cap, &n, ",\"p\":", 5);
        append_float(out, cap, &n, h->probs[h->top[0]]);
        append(out, cap, &n, ",\"top\":[", 8);
        for (int64_t i = 0; i < h->top_k; i++) {
            append(out, cap, &n, i ? ",[" : "[", i ? 2 : 1);
            append_label(h, out, cap, &n, h->top[i]);
            append(out, cap, &n, ",", 1);
            append_float(out, cap, &n, h->probs[h->top[i]]);
            append(out, cap, &n, "]", 1);
        }
        append(out, cap, &n, "]}", 2);
    } else if (h->kind == HEAD_SIGMOID) {
        append(out, cap, &n, "{\"label\":", 9);
        append_label(h, out, cap, &n, h->probs[0] >= h->threshold ? 1 : 0);
        append(out, cap, &n, ",\"p\":", 5);
        append_float(out, cap, &n, h->probs[0]);
        append(out, cap, &n, "}", 1);
    } else {
        append(out, cap, &n, "{\"scores\":[", 11);
        for (int64_t i = 0; i < h->width; i++) {
            if (i) append(out, cap, &n, ",", 1);
            append_float(out, cap, &n, h->probs[i]);
        }
        append(out, cap, &n, "]}", 2);
    }
    if (n >= cap) return pc_err(err, errlen, PC_ERR_INTERNAL, "value of %zu bytes exceeds its buffer", n);
    *len = n;
    return PC_OK;
}
