#include "mapper/head.h"
#include "mapper/numparse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

struct head {
    head_kind kind;        /* resolved: never HEAD_AUTO */
    model_final final;     /* of output 0 */
    int64_t width;         /* of output 0 */
    int64_t nclass;        /* classes that have names */
    int64_t top_k;
    double threshold;
    float *thresholds;     /* nclass, multilabel */
    int64_t max_labels;
    bool all_scores;
    value_format format;
    char **labels;         /* nclass names, owned */
    size_t max_label_json; /* longest quoted label */
    float *probs;          /* scratch row (width) */
    int64_t *top;          /* scratch (top_k or width): class indices */
    float *topv;           /* scratch (top_k or width): their scores */
};

static const char *const HEAD_NAMES[] = {"auto", "softmax_topk", "sigmoid", "one_vs_all", "multilabel",
                                         "raw", "embedding", "graph_topk", "graph_argmax"};
/* head_kind_parse accepts the names up to here; the rest only come from auto. */
#define USER_HEADS 7
static const char *const FORMAT_NAMES[] = {"json", "f32"};

bool head_kind_parse(const char *s, head_kind *out)
{
    for (int i = 0; i < USER_HEADS; i++)
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
/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0: only such sequences may pass into JSON unescaped, or a
 * strict parser — ours included — rejects the document. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (n == 0 || n > len) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    /* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
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

/* Appends n bytes of p at out[*len] (cap bytes, NUL kept room for), counting past the end. */
static void put_bytes(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++, (*len)++)
        if (*len + 1 < cap)
            out[*len] = p[i];
}

size_t value_json(char *out, size_t cap, const char *val, size_t vlen, value_format f)
{
    size_t n = 0;
    if (f == VALUE_FORMAT_F32) {
        put_bytes(out, cap, &n, "[", 1);
        for (size_t i = 0; i + 4 <= vlen; i += 4) {
            float x;
            memcpy(&x, val + i, 4);
            char num[32];
            int k = snprintf(num, sizeof num, "%s%.9g", i ? "," : "", (double)x);
            put_bytes(out, cap, &n, num, (size_t)k);
        }
        put_bytes(out, cap, &n, "]", 1);
    } else {
        put_bytes(out, cap, &n, val, vlen);
    }
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static head_kind resolve_auto(const head_output *o, int n)
{
    if (n >= 2 && o[0].elem == MODEL_ELEM_FLOAT && o[1].elem == MODEL_ELEM_INT64 && o[0].width == o[1].width)
        return HEAD_GRAPH_TOPK;
    if (o[0].elem == MODEL_ELEM_INT64) return HEAD_GRAPH_ARGMAX;
    if (o[0].final == MODEL_FINAL_SOFTMAX || o[0].final == MODEL_FINAL_LOGSOFTMAX) return HEAD_SOFTMAX_TOPK;
    if (o[0].final == MODEL_FINAL_SIGMOID && o[0].width == 1) return HEAD_SIGMOID;
    return HEAD_RAW;
}

/* Checks that the head fits the outputs; returns the number of named classes or -1. */
static int64_t head_classes(head_kind kind, const head_output *o, int n, char *err, size_t errlen)
{
    const char *name = HEAD_NAMES[kind];
    bool int_head = kind == HEAD_GRAPH_ARGMAX;
    if (!int_head && o[0].elem != MODEL_ELEM_FLOAT) {
        pc_err(err, errlen, PC_ERR_CONFIG, "head %s needs a float32 model output, the first is int64", name);
        return -1;
    }
    if (kind == HEAD_GRAPH_TOPK && (n < 2 || o[1].elem != MODEL_ELEM_INT64 || o[1].width != o[0].width)) {
        pc_err(err, errlen, PC_ERR_CONFIG, "head graph_topk needs outputs (values, int64 indices) of one width");
        return -1;
    }
    if (kind == HEAD_SIGMOID && o[0].width != 1) {
        pc_err(err, errlen, PC_ERR_CONFIG, "head sigmoid needs a model output of width 1, this one has %lld",
               (long long)o[0].width);
        return -1;
    }
    if ((kind == HEAD_SOFTMAX_TOPK || kind == HEAD_ONE_VS_ALL) && o[0].width < 2) {
        pc_err(err, errlen, PC_ERR_CONFIG, "head %s needs at least 2 classes, the model output has 1", name);
        return -1;
    }
    if (kind == HEAD_SIGMOID) return 2;
    if (kind == HEAD_GRAPH_TOPK || kind == HEAD_GRAPH_ARGMAX) return 0; /* any class index */
    return o[0].width;
}

pc_status head_create(const head_config *cfg, const head_output *outputs, int noutputs, head **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    if (noutputs < 1 || outputs[0].width < 1)
        return pc_err(err, errlen, PC_ERR_CONFIG, "model output has no elements");
    head_kind kind = cfg->kind == HEAD_AUTO ? resolve_auto(outputs, noutputs) : cfg->kind;
    int64_t nclass = head_classes(kind, outputs, noutputs, err, errlen);
    if (nclass < 0) return PC_ERR_CONFIG;
    if (cfg->top_k < 1) return pc_err(err, errlen, PC_ERR_CONFIG, "top_k must be at least 1");
    if (cfg->labels != NULL && nclass == 0) nclass = cfg->nlabels; /* graph heads: names by index */
    if (cfg->labels != NULL && cfg->nlabels != nclass)
        return pc_err(err, errlen, PC_ERR_CONFIG, "labels file has %lld names, the model has %lld classes",
                      (long long)cfg->nlabels, (long long)nclass);
    if (cfg->thresholds != NULL && (kind != HEAD_MULTILABEL || cfg->nthresholds != nclass))
        return pc_err(err, errlen, PC_ERR_CONFIG, "thresholds file has %lld values for %lld classes%s",
                      (long long)cfg->nthresholds, (long long)nclass,
                      kind != HEAD_MULTILABEL ? " (only the multilabel head uses it)" : "");
    head *h = calloc(1, sizeof *h);
    if (h == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    h->kind = kind;
    h->final = outputs[0].final;
    h->width = outputs[0].width;
    h->nclass = nclass;
    h->top_k = cfg->top_k < h->width ? cfg->top_k : h->width;
    h->threshold = cfg->threshold;
    h->max_labels = cfg->max_labels;
    h->all_scores = cfg->all_scores;
    h->format = cfg->format;
    size_t nscratch = (size_t)h->width;
    h->labels = calloc((size_t)nclass + 1, sizeof(char *));
    h->probs = malloc(nscratch * sizeof(float));
    h->top = malloc(nscratch * sizeof(int64_t));
    h->topv = malloc(nscratch * sizeof(float));
    h->thresholds = malloc(((size_t)nclass + 1) * sizeof(float));
    bool ok = h->labels && h->probs && h->top && h->topv && h->thresholds;
    for (int64_t i = 0; ok && i < nclass; i++) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)i);
        h->labels[i] = strdup(cfg->labels ? cfg->labels[i] : num);
        h->thresholds[i] = cfg->thresholds ? cfg->thresholds[i] : (float)cfg->threshold;
        ok = h->labels[i] != NULL;
        if (ok) {
            size_t q = json_quote(NULL, 0, h->labels[i], strlen(h->labels[i]));
            if (q > h->max_label_json) h->max_label_json = q;
        }
    }
    if (nclass == 0) h->max_label_json = 24; /* class indices printed as numbers */
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
    if (h->labels)
        for (int64_t i = 0; i < h->nclass; i++) free(h->labels[i]);
    free(h->labels);
    free(h->probs);
    free(h->top);
    free(h->topv);
    free(h->thresholds);
    free(h);
}

head_kind head_effective_kind(const head *h) { return h->kind; }

/* A float as JSON needs at most 15 bytes with %.6g ("-1.23457e-38"); 16 with the comma. */
#define FLOAT_JSON 16

size_t head_value_max_bytes(const head *h)
{
    size_t label = h->max_label_json + 4, row = (size_t)h->width;
    if (h->format == VALUE_FORMAT_F32) return row * 4 + 16;
    switch (h->kind) {
    case HEAD_SOFTMAX_TOPK:
    case HEAD_GRAPH_TOPK: return 64 + label * (size_t)(1 + h->top_k) + (size_t)h->top_k * (FLOAT_JSON + 8);
    case HEAD_SIGMOID:
    case HEAD_GRAPH_ARGMAX: return 64 + label + FLOAT_JSON;
    case HEAD_ONE_VS_ALL: return 64 + label + FLOAT_JSON + row * FLOAT_JSON;
    case HEAD_MULTILABEL: return 64 + row * (label + FLOAT_JSON);
    default: return 32 + row * FLOAT_JSON;
    }
}

/* Appends to out at *n, never past cap; the caller sized cap with head_value_max_bytes(). */
static void append(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len < cap) memcpy(out + *n, s, len);
    *n += len;
}
#define APPEND_LIT(out, cap, n, lit) append(out, cap, n, lit, sizeof(lit) - 1)

static void append_label(const head *h, char *out, size_t cap, size_t *n, int64_t cls)
{
    if (h->nclass == 0) { /* a graph head without labels: the class index as a string */
        char num[32];
        int k = snprintf(num, sizeof num, "\"%lld\"", (long long)cls);
        append(out, cap, n, num, (size_t)k);
        return;
    }
    size_t room = *n < cap ? cap - *n : 0;
    *n += json_quote(out + (*n < cap ? *n : 0), room, h->labels[cls], strlen(h->labels[cls]));
}

static void append_float(char *out, size_t cap, size_t *n, float v)
{
    char num[FORMAT_G6_MAX];
    int k = format_float_g6(num, v); /* snprintf's "%.6g", exactly, without printf's cost */
    append(out, cap, n, num, (size_t)k);
}

static void append_floats(char *out, size_t cap, size_t *n, const float *v, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        if (i) APPEND_LIT(out, cap, n, ",");
        append_float(out, cap, n, v[i]);
    }
}

/* {"label":L,"p":P,"top":[[L,P],...]} from classes idx with probabilities p. */
static void append_top(const head *h, char *out, size_t cap, size_t *n, const int64_t *idx,
                       const float *p, int64_t k)
{
    APPEND_LIT(out, cap, n, "{\"label\":");
    append_label(h, out, cap, n, idx[0]);
    APPEND_LIT(out, cap, n, ",\"p\":");
    append_float(out, cap, n, p[0]);
    APPEND_LIT(out, cap, n, ",\"top\":[");
    for (int64_t i = 0; i < k; i++) {
        append(out, cap, n, i ? ",[" : "[", i ? 2 : 1);
        append_label(h, out, cap, n, idx[i]);
        APPEND_LIT(out, cap, n, ",");
        append_float(out, cap, n, p[i]);
        APPEND_LIT(out, cap, n, "]");
    }
    APPEND_LIT(out, cap, n, "]}");
}

/* Top k classes of a softmax output row, with probabilities, into h->top / h->topv. From
 * logits only the k winners are exponentiated: p_i = exp(l_i - m) / sum_j exp(l_j - m) with m
 * the largest logit (the first of the top k), the stable form of log-sum-exp. Shifting by m
 * rather than subtracting a float log-sum-exp keeps precision when logits are large (1e4). */
static void softmax_top(head *h, const float *scores)
{
    ops_topk(h->topv, h->top, scores, 1, h->width, h->top_k);
    if (h->final == MODEL_FINAL_SOFTMAX) return;
    if (h->final == MODEL_FINAL_LOGSOFTMAX) {
        for (int64_t i = 0; i < h->top_k; i++) h->topv[i] = expf(h->topv[i]);
        return;
    }
    float m = h->topv[0];
    double sum = 0.0;
    for (int64_t j = 0; j < h->width; j++) sum += expf(scores[j] - m);
    for (int64_t i = 0; i < h->top_k; i++) h->topv[i] = (float)(exp((double)h->topv[i] - m) / sum);
}

/* The per-class sigmoid of a row into h->probs (as is if the graph ended in Sigmoid). */
static const float *sigmoids(head *h, const float *scores)
{
    if (h->final == MODEL_FINAL_SIGMOID) return scores;
    ops_sigmoid(h->probs, scores, h->width);
    return h->probs;
}

static void encode_multilabel(head *h, const float *p, char *out, size_t cap, size_t *n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < h->width; i++)
        if (p[i] >= h->thresholds[i]) h->top[k++] = i;
    /* by decreasing p, ties by class index: an insertion sort, k is small */
    for (int64_t i = 1; i < k; i++) {
        int64_t c = h->top[i], j = i;
        while (j > 0 && p[h->top[j - 1]] < p[c]) {
            h->top[j] = h->top[j - 1];
            j--;
        }
        h->top[j] = c;
    }
    if (h->max_labels > 0 && k > h->max_labels) k = h->max_labels;
    APPEND_LIT(out, cap, n, "{\"labels\":[");
    for (int64_t i = 0; i < k; i++) {
        if (i) APPEND_LIT(out, cap, n, ",");
        append_label(h, out, cap, n, h->top[i]);
    }
    APPEND_LIT(out, cap, n, "],\"p\":[");
    for (int64_t i = 0; i < k; i++) {
        if (i) APPEND_LIT(out, cap, n, ",");
        append_float(out, cap, n, p[h->top[i]]);
    }
    APPEND_LIT(out, cap, n, "]}");
}

static pc_status check_finite(const float *v, int64_t n, char *err, size_t errlen)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return pc_err(err, errlen, PC_ERR_DATA, "model output %lld is %s", (long long)i,
                          isnan(v[i]) ? "NaN" : "infinite");
    return PC_OK;
}

static pc_status check_classes(const head *h, const int64_t *idx, int64_t n, char *err, size_t errlen)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || (h->nclass > 0 && idx[i] >= h->nclass))
            return pc_err(err, errlen, PC_ERR_DATA, "model output class %lld is out of range", (long long)idx[i]);
    return PC_OK;
}

/* The float vector a head stores with value_format f32. */
static const float *f32_vector(head *h, const float *scores)
{
    switch (h->kind) {
    case HEAD_SOFTMAX_TOPK:
        if (h->final == MODEL_FINAL_SOFTMAX) return scores;
        if (h->final == MODEL_FINAL_LOGSOFTMAX) {
            for (int64_t i = 0; i < h->width; i++) h->probs[i] = expf(scores[i]);
        } else {
            ops_softmax(h->probs, scores, 1, h->width);
        }
        return h->probs;
    case HEAD_SIGMOID:
    case HEAD_ONE_VS_ALL:
    case HEAD_MULTILABEL: return sigmoids(h, scores);
    default: return scores;
    }
}

pc_status head_encode(head *h, const void *const *rows, char *out, size_t cap, size_t *len,
                      char *err, size_t errlen)
{
    size_t n = 0;
    pc_status s = PC_OK;
    if (h->kind == HEAD_GRAPH_ARGMAX) {
        const int64_t *cls = rows[0];
        if ((s = check_classes(h, cls, 1, err, errlen)) != PC_OK) return s;
        APPEND_LIT(out, cap, &n, "{\"label\":");
        append_label(h, out, cap, &n, cls[0]);
        APPEND_LIT(out, cap, &n, "}");
    } else if ((s = check_finite(rows[0], h->width, err, errlen)) != PC_OK) {
        return s;
    } else if (h->format == VALUE_FORMAT_F32) {
        append(out, cap, &n, (const char *)f32_vector(h, rows[0]), (size_t)h->width * sizeof(float));
    } else if (h->kind == HEAD_GRAPH_TOPK) {
        if ((s = check_classes(h, rows[1], h->width, err, errlen)) != PC_OK) return s;
        int64_t k = h->top_k < h->width ? h->top_k : h->width;
        append_top(h, out, cap, &n, rows[1], rows[0], k);
    } else if (h->kind == HEAD_SOFTMAX_TOPK) {
        softmax_top(h, rows[0]);
        append_top(h, out, cap, &n, h->top, h->topv, h->top_k);
    } else if (h->kind == HEAD_SIGMOID) {
        float p = sigmoids(h, rows[0])[0];
        APPEND_LIT(out, cap, &n, "{\"label\":");
        append_label(h, out, cap, &n, p >= h->threshold ? 1 : 0);
        APPEND_LIT(out, cap, &n, ",\"p\":");
        append_float(out, cap, &n, p);
        APPEND_LIT(out, cap, &n, "}");
    } else if (h->kind == HEAD_ONE_VS_ALL) {
        const float *p = sigmoids(h, rows[0]);
        int64_t best = 0;
        for (int64_t i = 1; i < h->width; i++)
            if (p[i] > p[best]) best = i;
        APPEND_LIT(out, cap, &n, "{\"label\":");
        append_label(h, out, cap, &n, best);
        APPEND_LIT(out, cap, &n, ",\"p\":");
        append_float(out, cap, &n, p[best]);
        if (h->all_scores) {
            APPEND_LIT(out, cap, &n, ",\"scores\":[");
            append_floats(out, cap, &n, p, h->width);
            APPEND_LIT(out, cap, &n, "]");
        }
        APPEND_LIT(out, cap, &n, "}");
    } else if (h->kind == HEAD_MULTILABEL) {
        encode_multilabel(h, sigmoids(h, rows[0]), out, cap, &n);
    } else {
        if (h->kind == HEAD_EMBEDDING) APPEND_LIT(out, cap, &n, "{\"vector\":[");
        else APPEND_LIT(out, cap, &n, "{\"scores\":[");
        append_floats(out, cap, &n, rows[0], h->width);
        APPEND_LIT(out, cap, &n, "]}");
    }
    if (n >= cap) return pc_err(err, errlen, PC_ERR_INTERNAL, "value of %zu bytes exceeds its buffer", n);
    *len = n;
    return PC_OK;
}
