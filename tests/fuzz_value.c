/* libFuzzer harness over the value codec (mapper/head.h): head_create, head_encode for every
 * head kind on float32 and int64 outputs decoded from the input, value_json for both value
 * formats, and json_quote.  Every JSON text they make is parsed by the strict parser of
 * storage/json.h.  `make check-fuzz-value` runs it; `make check` replays
 * tests/corpus/value/ through it.
 *
 * Input layout (short inputs are padded with zeros):
 *   [0] head kind (auto, softmax_topk, sigmoid, one_vs_all, multilabel, raw, embedding)
 *   [1] bit 0 value_format f32, 1 all_scores, 2 labels, 3 per-class thresholds,
 *       4-5 what the graph ended with (none, Softmax, LogSoftmax, Sigmoid),
 *       6 output 0 is int64 (ArgMax), 7 a second output of int64 indices (TopK)
 *   [2] width - 1 (mod 24)   [3] top_k (mod 30; 0 is refused)
 *   [4] bits 0-2 max_labels (mod 6), bit 3 one label too many, [5] threshold (/255)
 *   then up to 3 rows: output 0 (width float32 or int64), output 1 (width int64) if any;
 *   then labels, one per line (missing ones are "c<i>").
 * Float outputs are made what the graph's last op can give (a probability after Softmax or
 * Sigmoid, a value <= 0 after LogSoftmax); NaN and infinities are kept, to reach the check.
 *
 * Checks: head_create refuses with PC_ERR_CONFIG or resolves auto as head.h says; head_encode
 * writes into an allocation of exactly head_value_max_bytes() and fails (PC_ERR_DATA) exactly
 * for a NaN/infinite score or an out-of-range class; the JSON value parses and has the head's
 * shape (keys, lengths, labels, numbers as "%.6g" of the outputs, probabilities in [0, 1] and
 * in order); an f32 value is width floats that value_json prints exactly; value_json and
 * json_quote follow their snprintf-like contract, and json_quote's output always parses and
 * holds exactly the input when the input is valid UTF-8. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/head.h"
#include "storage/json.h"
#include "tests/fuzz_util.h"

#define MAX_WIDTH 24
#define MAX_ROWS 3

typedef struct input {
    const uint8_t *p;
    size_t n, at;
} input;

static uint8_t take8(input *in) { return in->at < in->n ? in->p[in->at++] : 0; }

static void take(input *in, void *out, size_t n)
{
    for (size_t i = 0; i < n; i++) ((uint8_t *)out)[i] = take8(in);
}

/* A probability from any finite float: |x|, or 1/|x| above 1. */
static float prob(float x)
{
    if (!isfinite(x)) return x;
    x = fabsf(x);
    return x > 1.0f ? 1.0f / x : x;
}

/* json_quote's contract on s[0, n): the same length with or without room, NUL-terminated
 * prefixes, output that parses, and exactly s back when s is valid UTF-8. */
static void check_quote(const char *s, size_t n)
{
    if (FUZZ_SKIP_JSON_QUOTE_BUG(s, n)) return;
    size_t q = json_quote(NULL, 0, s, n);
    FUZZ_REQUIRE(q >= n + 2);
    char *buf = malloc(q + 1), *cut = malloc(q / 2 + 1);
    FUZZ_REQUIRE(buf != NULL && cut != NULL);
    FUZZ_REQUIRE(json_quote(buf, q + 1, s, n) == q && buf[q] == '\0');
    FUZZ_REQUIRE(json_quote(cut, q / 2 + 1, s, n) == q);
    FUZZ_REQUIRE(memcmp(cut, buf, q / 2) == 0 && cut[q / 2] == '\0');
    json_value *v = NULL;
    char err[PC_ERRLEN];
    pc_status st = json_parse(buf, q, &v, err, sizeof err);
    if (st != PC_OK) fprintf(stderr, "json_quote output rejected: %s\n", err);
    FUZZ_REQUIRE(st == PC_OK && v->type == JSON_TYPE_STRING);
    if (json_utf8_valid(s, n)) FUZZ_REQUIRE(v->len == n && memcmp(v->str, s, n) == 0);
    json_free(v);
    free(buf);
    free(cut);
}

/* The head's label for class c as the JSON parser decodes it. */
static bool label_is(const json_value *v, const head_config *cfg, int64_t c)
{
    if (v == NULL || v->type != JSON_TYPE_STRING) return false;
    char num[32];
    const char *want = num;
    if (cfg->labels != NULL && c >= 0 && c < cfg->nlabels) want = cfg->labels[c];
    else snprintf(num, sizeof num, "%lld", (long long)c);
    size_t wn = strlen(want);
    if (!json_utf8_valid(want, wn)) return true; /* escaped byte by byte: not comparable */
    return v->len == wn && memcmp(v->str, want, wn) == 0;
}

/* A label string among the head's classes (its index, or -1). */
static int64_t label_index(const json_value *v, const head_config *cfg, int64_t nclass)
{
    for (int64_t c = 0; c < nclass; c++)
        if (label_is(v, cfg, c)) return c;
    return -1;
}

static double number(const json_value *v)
{
    FUZZ_REQUIRE(v != NULL && v->type == JSON_TYPE_NUMBER);
    return strtod(v->str, NULL);
}

static const json_value *member(const json_value *obj, const char *key)
{
    const json_value *v = NULL;
    FUZZ_REQUIRE(json_get(obj, key, &v) == 1);
    return v;
}

static bool is_prob(double p) { return p >= 0.0 && p <= 1.0; }

/* "%.6g" of x: how head.c must print each number. */
static bool printed_as(const json_value *v, float x)
{
    char want[32];
    snprintf(want, sizeof want, "%.6g", (double)x);
    return v != NULL && v->type == JSON_TYPE_NUMBER && strcmp(v->str, want) == 0;
}

static void check_json_value(const json_value *doc, head_kind kind, const head_config *cfg,
                             int64_t width, int64_t nclass, const float *row, model_final fin)
{
    FUZZ_REQUIRE(doc->type == JSON_TYPE_OBJECT);
    switch (kind) {
    case HEAD_SOFTMAX_TOPK:
    case HEAD_GRAPH_TOPK: {
        const json_value *top = member(doc, "top");
        int64_t k = cfg->top_k < width ? cfg->top_k : width;
        FUZZ_REQUIRE(top->type == JSON_TYPE_ARRAY && (int64_t)top->n == k && doc->n == 3);
        double prev = INFINITY;
        for (size_t i = 0; i < top->n; i++) {
            const json_value *e = &top->items[i];
            FUZZ_REQUIRE(e->type == JSON_TYPE_ARRAY && e->n == 2);
            FUZZ_REQUIRE(e->items[0].type == JSON_TYPE_STRING);
            double p = number(&e->items[1]);
            if (kind == HEAD_SOFTMAX_TOPK) {
                FUZZ_REQUIRE(is_prob(p) && p <= prev);
                FUZZ_REQUIRE(nclass == 0 || label_index(&e->items[0], cfg, nclass) >= 0);
            }
            prev = p;
        }
        const json_value *label = member(doc, "label"), *p = member(doc, "p");
        FUZZ_REQUIRE(label->len == top->items[0].items[0].len &&
                     memcmp(label->str, top->items[0].items[0].str, label->len) == 0);
        FUZZ_REQUIRE(strcmp(p->str, top->items[0].items[1].str) == 0);
        break;
    }
    case HEAD_SIGMOID: {
        const json_value *label = member(doc, "label"), *p = member(doc, "p");
        FUZZ_REQUIRE(doc->n == 2 && is_prob(number(p)));
        FUZZ_REQUIRE(label_is(label, cfg, 0) || label_is(label, cfg, 1));
        if (fin == MODEL_FINAL_SIGMOID) FUZZ_REQUIRE(printed_as(p, row[0]));
        break;
    }
    case HEAD_ONE_VS_ALL: {
        const json_value *label = member(doc, "label"), *p = member(doc, "p");
        FUZZ_REQUIRE(is_prob(number(p)) && label_index(label, cfg, nclass) >= 0);
        const json_value *scores = NULL;
        int has = json_get(doc, "scores", &scores);
        FUZZ_REQUIRE(has == (cfg->all_scores ? 1 : 0) && doc->n == 2u + (size_t)has);
        if (has) {
            FUZZ_REQUIRE(scores->type == JSON_TYPE_ARRAY && (int64_t)scores->n == width);
            bool found = false;
            for (size_t i = 0; i < scores->n; i++) {
                FUZZ_REQUIRE(is_prob(number(&scores->items[i])) &&
                             number(&scores->items[i]) <= number(p));
                found |= strcmp(scores->items[i].str, p->str) == 0;
                if (fin == MODEL_FINAL_SIGMOID) FUZZ_REQUIRE(printed_as(&scores->items[i], row[i]));
            }
            FUZZ_REQUIRE(found);
        }
        break;
    }
    case HEAD_MULTILABEL: {
        const json_value *labels = member(doc, "labels"), *p = member(doc, "p");
        FUZZ_REQUIRE(doc->n == 2 && labels->type == JSON_TYPE_ARRAY && p->type == JSON_TYPE_ARRAY);
        FUZZ_REQUIRE(labels->n == p->n && (int64_t)p->n <= width);
        FUZZ_REQUIRE(cfg->max_labels == 0 || (int64_t)p->n <= cfg->max_labels);
        double prev = INFINITY;
        for (size_t i = 0; i < p->n; i++) {
            double x = number(&p->items[i]);
            FUZZ_REQUIRE(is_prob(x) && x <= prev);
            prev = x;
            FUZZ_REQUIRE(label_index(&labels->items[i], cfg, nclass) >= 0);
        }
        break;
    }
    case HEAD_RAW:
    case HEAD_EMBEDDING: {
        const json_value *v = member(doc, kind == HEAD_RAW ? "scores" : "vector");
        FUZZ_REQUIRE(doc->n == 1 && v->type == JSON_TYPE_ARRAY && (int64_t)v->n == width);
        for (size_t i = 0; i < v->n; i++) FUZZ_REQUIRE(printed_as(&v->items[i], row[i]));
        break;
    }
    case HEAD_GRAPH_ARGMAX:
        FUZZ_REQUIRE(doc->n == 1 && member(doc, "label")->type == JSON_TYPE_STRING);
        break;
    default: FUZZ_REQUIRE(false);
    }
}

/* value_json's snprintf-like contract, and the text it makes parses. */
static json_value *check_value_json(const char *val, size_t vlen, value_format f)
{
    size_t n = value_json(NULL, 0, val, vlen, f);
    char *full = malloc(n + 1), *cut = malloc(n / 2 + 1);
    FUZZ_REQUIRE(full != NULL && cut != NULL);
    FUZZ_REQUIRE(value_json(full, n + 1, val, vlen, f) == n && full[n] == '\0');
    FUZZ_REQUIRE(value_json(cut, n / 2 + 1, val, vlen, f) == n);
    FUZZ_REQUIRE(memcmp(cut, full, n / 2) == 0 && cut[n / 2] == '\0');
    if (f == VALUE_FORMAT_JSON) FUZZ_REQUIRE(n == vlen && memcmp(full, val, n) == 0);
    json_value *doc = NULL;
    char err[PC_ERRLEN];
    pc_status st = json_parse(full, n, &doc, err, sizeof err);
    if (st != PC_OK) fprintf(stderr, "value rejected by json_parse: %s\n", err);
    FUZZ_REQUIRE(st == PC_OK);
    free(full);
    free(cut);
    return doc;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    input in = {data, size, 0};
    static const head_kind kinds[7] = {HEAD_AUTO, HEAD_SOFTMAX_TOPK, HEAD_SIGMOID,
                                       HEAD_ONE_VS_ALL, HEAD_MULTILABEL, HEAD_RAW,
                                       HEAD_EMBEDDING};
    uint8_t k0 = take8(&in), flags = take8(&in), w = take8(&in), tk = take8(&in);
    uint8_t b4 = take8(&in), thr = take8(&in);
    head_config cfg = {
        .kind = kinds[k0 % 7],
        .top_k = tk % 30,
        .threshold = thr / 255.0,
        .max_labels = (b4 & 7) % 6,
        .all_scores = flags & 2,
        .format = flags & 1 ? VALUE_FORMAT_F32 : VALUE_FORMAT_JSON,
    };
    int64_t width = 1 + w % MAX_WIDTH;
    head_output outs[2] = {
        {.width = width, .elem = flags & 64 ? MODEL_ELEM_INT64 : MODEL_ELEM_FLOAT,
         .final = (model_final)((flags >> 4) & 3)},
        {.width = width, .elem = MODEL_ELEM_INT64, .final = MODEL_FINAL_NONE},
    };
    int nout = flags & 128 ? 2 : 1;

    /* The rows. */
    float f[MAX_ROWS][MAX_WIDTH];
    int64_t i0[MAX_ROWS][MAX_WIDTH], i1[MAX_ROWS][MAX_WIDTH];
    for (int r = 0; r < MAX_ROWS; r++) {
        for (int64_t i = 0; i < width; i++) {
            if (outs[0].elem == MODEL_ELEM_INT64) {
                take(&in, &i0[r][i], sizeof i0[r][i]);
                i0[r][i] %= 40; /* mostly in range, sometimes negative or past the labels */
            } else {
                float x;
                take(&in, &x, sizeof x);
                if (outs[0].final == MODEL_FINAL_SOFTMAX || outs[0].final == MODEL_FINAL_SIGMOID)
                    x = prob(x);
                else if (outs[0].final == MODEL_FINAL_LOGSOFTMAX && isfinite(x))
                    x = -fabsf(x);
                f[r][i] = x;
            }
        }
        for (int64_t i = 0; nout == 2 && i < width; i++) {
            take(&in, &i1[r][i], sizeof i1[r][i]);
            i1[r][i] %= 40;
        }
    }

    /* What auto resolves to (head.h), and how many classes have names. */
    head_kind want = cfg.kind;
    if (want == HEAD_AUTO) {
        if (nout == 2 && outs[0].elem == MODEL_ELEM_FLOAT) want = HEAD_GRAPH_TOPK;
        else if (outs[0].elem == MODEL_ELEM_INT64) want = HEAD_GRAPH_ARGMAX;
        else if (outs[0].final == MODEL_FINAL_SOFTMAX || outs[0].final == MODEL_FINAL_LOGSOFTMAX)
            want = HEAD_SOFTMAX_TOPK;
        else if (outs[0].final == MODEL_FINAL_SIGMOID && width == 1) want = HEAD_SIGMOID;
        else want = HEAD_RAW;
    }
    int64_t nclass = want == HEAD_SIGMOID ? 2 : width;

    /* Labels: the rest of the input, one per line, padded to the classes. */
    char *labels[MAX_WIDTH + 1] = {0};
    int64_t nlabels = nclass + ((b4 >> 3) & 1);
    const char *rest = (const char *)data + (in.at < size ? in.at : size);
    size_t rest_n = size - (in.at < size ? in.at : size);
    for (int64_t c = 0; c < nlabels; c++) {
        const char *nl = memchr(rest, '\n', rest_n);
        size_t n = nl != NULL ? (size_t)(nl - rest) : rest_n;
        char name[32];
        snprintf(name, sizeof name, "c%lld", (long long)c);
        labels[c] = n > 0 ? strndup(rest, n) : strdup(name);
        FUZZ_REQUIRE(labels[c] != NULL);
        if (FUZZ_SKIP_JSON_QUOTE_BUG(labels[c], strlen(labels[c]))) {
            free(labels[c]);
            labels[c] = strdup(name);
            FUZZ_REQUIRE(labels[c] != NULL);
        }
        rest += n + (nl != NULL);
        rest_n -= n + (nl != NULL);
    }
    float thresholds[MAX_WIDTH + 1];
    for (int64_t c = 0; c < nclass; c++) thresholds[c] = (float)((thr + 37 * c) % 256) / 255.0f;
    if (flags & 4) {
        cfg.labels = (const char *const *)labels;
        cfg.nlabels = nlabels;
    }
    if (flags & 8) {
        cfg.thresholds = thresholds;
        cfg.nthresholds = nclass;
    }

    /* json_quote on every label and on the whole input. */
    for (int64_t c = 0; c < nlabels; c++) check_quote(labels[c], strlen(labels[c]));
    check_quote((const char *)data, size);

    head *h = NULL;
    char err[PC_ERRLEN];
    pc_status st = head_create(&cfg, outs, nout, &h, err, sizeof err);
    FUZZ_REQUIRE((st == PC_OK) == (h != NULL));
    if (st != PC_OK) {
        FUZZ_REQUIRE(st == PC_ERR_CONFIG && err[0] != '\0');
    } else {
        FUZZ_REQUIRE(head_effective_kind(h) == want);
        FUZZ_REQUIRE(cfg.top_k >= 1);
        size_t cap = head_value_max_bytes(h);
        int64_t named = cfg.labels != NULL ? cfg.nlabels : 0;
        for (int r = 0; r < MAX_ROWS; r++) {
            char *out = malloc(cap); /* exactly: a write past it is ASan's */
            FUZZ_REQUIRE(out != NULL);
            const void *rows[2] = {outs[0].elem == MODEL_ELEM_INT64 ? (const void *)i0[r]
                                                                      : (const void *)f[r],
                                   i1[r]};
            size_t len = 0;
            st = head_encode(h, rows, out, cap, &len, err, sizeof err);
            /* when it must fail */
            bool bad = false;
            if (want == HEAD_GRAPH_ARGMAX) {
                bad = i0[r][0] < 0 || (named > 0 && i0[r][0] >= named);
            } else {
                for (int64_t i = 0; i < width; i++) bad |= !isfinite(f[r][i]);
                if (!bad && want == HEAD_GRAPH_TOPK && cfg.format == VALUE_FORMAT_JSON)
                    for (int64_t i = 0; i < width; i++)
                        bad |= i1[r][i] < 0 || (named > 0 && i1[r][i] >= named);
            }
            FUZZ_REQUIRE(st == (bad ? PC_ERR_DATA : PC_OK));
            if (st == PC_OK) {
                FUZZ_REQUIRE(len < cap);
                bool f32 = cfg.format == VALUE_FORMAT_F32 && want != HEAD_GRAPH_ARGMAX;
                if (f32) FUZZ_REQUIRE(len == (size_t)width * 4);
                json_value *doc =
                    check_value_json(out, len, f32 ? VALUE_FORMAT_F32 : VALUE_FORMAT_JSON);
                if (f32) {
                    FUZZ_REQUIRE(doc->type == JSON_TYPE_ARRAY && (int64_t)doc->n == width);
                    for (int64_t i = 0; i < width; i++) {
                        float x, back = strtof(doc->items[i].str, NULL);
                        memcpy(&x, out + 4 * i, 4);
                        FUZZ_REQUIRE(isfinite(x) && memcmp(&x, &back, 4) == 0);
                    }
                } else {
                    check_json_value(doc, want, &cfg, width, named > 0 ? named : nclass, f[r],
                                     outs[0].final);
                }
                json_free(doc);
            } else {
                FUZZ_REQUIRE(strncmp(err, "model output ", 13) == 0);
            }
            free(out);
        }
    }
    head_free(h);
    for (int64_t c = 0; c < nlabels; c++) free(labels[c]);
    return 0;
}
