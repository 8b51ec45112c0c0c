/* Unit tests of mapper/head: the value each head encodes, on hand-computed scores. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "mapper/head.h"

static char err[PC_ERRLEN];

/* Encodes one row of a single float output with the given config; returns the JSON. */
static const char *encode_cfg(const head_config *cfg, model_final final, const float *scores, int64_t width)
{
    static char out[4096];
    head_output o = {.width = width, .elem = MODEL_ELEM_FLOAT, .final = final};
    head *h = NULL;
    ck_assert_msg(head_create(cfg, &o, 1, &h, err, sizeof err) == PC_OK, "%s", err);
    size_t len = 0;
    ck_assert_uint_le(head_value_max_bytes(h), sizeof out);
    const void *rows[1] = {scores};
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_OK);
    out[len] = '\0';
    head_free(h);
    return out;
}

static const char *encode(head_kind kind, model_final final, const float *scores, int64_t width,
                          int64_t top_k, const char *const *labels, int64_t nlabels)
{
    head_config cfg = {.kind = kind, .top_k = top_k, .threshold = 0.5, .labels = labels, .nlabels = nlabels};
    return encode_cfg(&cfg, final, scores, width);
}

START_TEST(test_softmax_applied_to_logits)
{
    /* softmax([0, ln 3]) = [0.25, 0.75] */
    float logits[2] = {0.0f, logf(3.0f)};
    ck_assert_str_eq(encode(HEAD_SOFTMAX_TOPK, MODEL_FINAL_NONE, logits, 2, 2, NULL, 0),
                     "{\"label\":\"1\",\"p\":0.75,\"top\":[[\"1\",0.75],[\"0\",0.25]]}");
}
END_TEST

START_TEST(test_softmax_not_applied_twice)
{
    float probs[3] = {0.2f, 0.5f, 0.3f};
    const char *labels[] = {"cat", "dog", "bird"};
    ck_assert_str_eq(encode(HEAD_SOFTMAX_TOPK, MODEL_FINAL_SOFTMAX, probs, 3, 1, labels, 3),
                     "{\"label\":\"dog\",\"p\":0.5,\"top\":[[\"dog\",0.5]]}");
    /* auto on a Softmax graph is softmax_topk on the probabilities as they are */
    ck_assert_str_eq(encode(HEAD_AUTO, MODEL_FINAL_SOFTMAX, probs, 3, 1, labels, 3),
                     "{\"label\":\"dog\",\"p\":0.5,\"top\":[[\"dog\",0.5]]}");
}
END_TEST

START_TEST(test_log_softmax_exponentiated)
{
    float logp[2] = {logf(0.125f), logf(0.875f)};
    ck_assert_str_eq(encode(HEAD_SOFTMAX_TOPK, MODEL_FINAL_LOGSOFTMAX, logp, 2, 1, NULL, 0),
                     "{\"label\":\"1\",\"p\":0.875,\"top\":[[\"1\",0.875]]}");
}
END_TEST

START_TEST(test_sigmoid_threshold_and_labels)
{
    float logit = 0.0f; /* sigmoid(0) = 0.5 >= threshold 0.5 -> class 1 */
    const char *labels[] = {"no", "yes"};
    ck_assert_str_eq(encode(HEAD_SIGMOID, MODEL_FINAL_NONE, &logit, 1, 1, labels, 2),
                     "{\"label\":\"yes\",\"p\":0.5}");
    float p = 0.25f; /* already a probability: not squashed again */
    ck_assert_str_eq(encode(HEAD_AUTO, MODEL_FINAL_SIGMOID, &p, 1, 1, NULL, 0),
                     "{\"label\":\"0\",\"p\":0.25}");
}
END_TEST

START_TEST(test_raw_and_f32)
{
    float v[3] = {1.5f, -2.0f, 0.0f};
    ck_assert_str_eq(encode(HEAD_RAW, MODEL_FINAL_NONE, v, 3, 1, NULL, 0), "{\"scores\":[1.5,-2,0]}");
    head_config cfg = {.kind = HEAD_RAW, .top_k = 1, .format = VALUE_FORMAT_F32};
    head_output o = {.width = 3, .elem = MODEL_ELEM_FLOAT};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, &o, 1, &h, err, sizeof err), PC_OK);
    char out[64];
    size_t len = 0;
    const void *rows[1] = {v};
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_OK);
    ck_assert_uint_eq(len, 12);
    ck_assert(memcmp(out, v, 12) == 0);
    head_free(h);
}
END_TEST

START_TEST(test_nan_output_rejected)
{
    head_config cfg = {.kind = HEAD_RAW, .top_k = 1};
    head_output o = {.width = 2, .elem = MODEL_ELEM_FLOAT};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, &o, 1, &h, err, sizeof err), PC_OK);
    float v[2] = {1.0f, NAN};
    char out[128];
    size_t len;
    const void *rows[1] = {v};
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(err, "NaN"));
    head_free(h);
}
END_TEST

START_TEST(test_config_errors)
{
    head *h = NULL;
    head_output three = {.width = 3, .elem = MODEL_ELEM_FLOAT};
    head_config sig = {.kind = HEAD_SIGMOID, .top_k = 1};
    ck_assert_int_eq(head_create(&sig, &three, 1, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "width 1"));
    const char *labels[] = {"a", "b"};
    head_config lab = {.kind = HEAD_SOFTMAX_TOPK, .top_k = 1, .labels = labels, .nlabels = 2};
    ck_assert_int_eq(head_create(&lab, &three, 1, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "2 names"));
    float th[2] = {0.5f, 0.5f};
    head_config thr = {.kind = HEAD_MULTILABEL, .top_k = 1, .thresholds = th, .nthresholds = 2};
    ck_assert_int_eq(head_create(&thr, &three, 1, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "thresholds file has 2 values for 3 classes"));
    head_output ids = {.width = 1, .elem = MODEL_ELEM_INT64};
    head_config raw = {.kind = HEAD_RAW, .top_k = 1};
    ck_assert_int_eq(head_create(&raw, &ids, 1, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "needs a float32 model output"));
    ck_assert_ptr_null(h);
}
END_TEST

START_TEST(test_json_quote)
{
    char out[64];
    ck_assert_uint_eq(json_quote(out, sizeof out, "a\"b\\c\n\x01", 7), 17);
    ck_assert_str_eq(out, "\"a\\\"b\\\\c\\n\\u0001\"");
    json_quote(out, sizeof out, "caf\xc3\xa9", 5); /* valid UTF-8 passes through */
    ck_assert_str_eq(out, "\"caf\xc3\xa9\"");
    json_quote(out, sizeof out, "\xff", 1);        /* invalid UTF-8 is escaped */
    ck_assert_str_eq(out, "\"\\u00ff\"");
    ck_assert_uint_eq(json_quote(out, 4, "abcdef", 6), 8); /* truncated, but counts all */
    ck_assert_str_eq(out, "\"ab");
}
END_TEST

START_TEST(test_one_vs_all)
{
    /* sigmoid(0) = 0.5, sigmoid(2) = 0.880797, sigmoid(-1) = 0.268941 */
    float logits[3] = {0.0f, 2.0f, -1.0f};
    head_config cfg = {.kind = HEAD_ONE_VS_ALL, .top_k = 1, .all_scores = true};
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_NONE, logits, 3),
                     "{\"label\":\"1\",\"p\":0.880797,\"scores\":[0.5,0.880797,0.268941]}");
    float probs[3] = {0.1f, 0.2f, 0.7f}; /* a Sigmoid graph: not squashed again */
    cfg.all_scores = false;
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_SIGMOID, probs, 3), "{\"label\":\"2\",\"p\":0.7}");
}
END_TEST

START_TEST(test_multilabel_thresholds_and_max)
{
    float p[4] = {0.9f, 0.35f, 0.6f, 0.45f};
    const char *labels[] = {"a", "b", "c", "d"};
    float th[4] = {0.5f, 0.3f, 0.7f, 0.4f}; /* a, b and d pass; c (0.6 < 0.7) does not */
    head_config cfg = {.kind = HEAD_MULTILABEL, .top_k = 1, .threshold = 0.5, .thresholds = th,
                       .nthresholds = 4, .labels = labels, .nlabels = 4};
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_SIGMOID, p, 4),
                     "{\"labels\":[\"a\",\"d\",\"b\"],\"p\":[0.9,0.45,0.35]}");
    cfg.max_labels = 2;
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_SIGMOID, p, 4), "{\"labels\":[\"a\",\"d\"],\"p\":[0.9,0.45]}");
    head_config global = {.kind = HEAD_MULTILABEL, .top_k = 1, .threshold = 0.95};
    ck_assert_str_eq(encode_cfg(&global, MODEL_FINAL_SIGMOID, p, 4), "{\"labels\":[],\"p\":[]}");
}
END_TEST

START_TEST(test_embedding_vector)
{
    float v[2] = {0.25f, -3.0f};
    head_config cfg = {.kind = HEAD_EMBEDDING, .top_k = 1};
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_NONE, v, 2), "{\"vector\":[0.25,-3]}");
}
END_TEST

START_TEST(test_extreme_logits_stay_finite)
{
    float logits[3] = {1e4f, -1e4f, 9990.0f}; /* p = 1/(1+e^-10) for class 0 */
    head_config cfg = {.kind = HEAD_SOFTMAX_TOPK, .top_k = 3};
    ck_assert_str_eq(encode_cfg(&cfg, MODEL_FINAL_NONE, logits, 3),
                     "{\"label\":\"0\",\"p\":0.999955,\"top\":[[\"0\",0.999955],[\"2\",4.53979e-05],[\"1\",0]]}");
}
END_TEST

/* Property: over 50,000 classes, softmax_topk's top 10 equal the naive sort of a full softmax. */
START_TEST(test_topk_many_classes_matches_naive)
{
    enum { N = 50000, K = 10 };
    static float logits[N], probs[N];
    unsigned seed = 3;
    double mx = -1e30, sum = 0;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        logits[i] = (float)((seed >> 8) % 100000) / 5000.0f - 10.0f;
        if (logits[i] > mx) mx = logits[i];
    }
    for (int i = 0; i < N; i++) sum += exp(logits[i] - mx);
    for (int i = 0; i < N; i++) probs[i] = (float)(exp(logits[i] - mx) / sum);
    head_config cfg = {.kind = HEAD_SOFTMAX_TOPK, .top_k = K, .format = VALUE_FORMAT_JSON};
    head_output o = {.width = N, .elem = MODEL_ELEM_FLOAT, .final = MODEL_FINAL_NONE};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, &o, 1, &h, err, sizeof err), PC_OK);
    char out[2048];
    size_t len;
    const void *rows[1] = {logits};
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_OK);
    out[len] = '\0';
    head_free(h);
    /* the naive top 10: repeated arg-max */
    int picked[K];
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int i = 0; i < N; i++) {
            bool used = false;
            for (int j = 0; j < k; j++) used |= picked[j] == i;
            if (!used && (best < 0 || probs[i] > probs[best])) best = i;
        }
        picked[k] = best;
    }
    const char *p = strstr(out, "\"top\":[");
    ck_assert_ptr_nonnull(p);
    for (int k = 0; k < K; k++) {
        char cls[32];
        snprintf(cls, sizeof cls, "[\"%d\",", picked[k]);
        p = strstr(p, cls);
        ck_assert_msg(p != NULL, "class %d (rank %d) missing or out of order in %s", picked[k], k, out);
        double got = strtod(p + strlen(cls), NULL);
        ck_assert_msg(fabs(got - probs[picked[k]]) <= 1e-6 + 1e-5 * probs[picked[k]], "p %g vs %g", got, probs[picked[k]]);
    }
}
END_TEST

START_TEST(test_graph_topk_and_argmax)
{
    const char *labels[] = {"x", "y", "z", "w"};
    float vals[2] = {0.7f, 0.2f};
    int64_t idx[2] = {3, 0};
    head_output outs[2] = {{.width = 2, .elem = MODEL_ELEM_FLOAT}, {.width = 2, .elem = MODEL_ELEM_INT64}};
    head_config cfg = {.kind = HEAD_AUTO, .top_k = 5, .labels = labels, .nlabels = 4};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, outs, 2, &h, err, sizeof err), PC_OK);
    ck_assert_int_eq(head_effective_kind(h), HEAD_GRAPH_TOPK);
    char out[256];
    size_t len;
    const void *rows[2] = {vals, idx};
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_OK);
    out[len] = '\0';
    ck_assert_str_eq(out, "{\"label\":\"w\",\"p\":0.7,\"top\":[[\"w\",0.7],[\"x\",0.2]]}");
    idx[0] = 9; /* a class index past the labels is a bad row, not a crash */
    ck_assert_int_eq(head_encode(h, rows, out, sizeof out, &len, err, sizeof err), PC_ERR_DATA);
    head_free(h);
    head_output am = {.width = 1, .elem = MODEL_ELEM_INT64};
    head_config plain = {.kind = HEAD_AUTO, .top_k = 1};
    ck_assert_int_eq(head_create(&plain, &am, 1, &h, err, sizeof err), PC_OK);
    int64_t cls = 12;
    const void *r1[1] = {&cls};
    ck_assert_int_eq(head_encode(h, r1, out, sizeof out, &len, err, sizeof err), PC_OK);
    out[len] = '\0';
    ck_assert_str_eq(out, "{\"label\":\"12\"}");
    head_free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("head");
    TCase *tc = tcase_create("head");
    tcase_add_test(tc, test_softmax_applied_to_logits);
    tcase_add_test(tc, test_softmax_not_applied_twice);
    tcase_add_test(tc, test_log_softmax_exponentiated);
    tcase_add_test(tc, test_sigmoid_threshold_and_labels);
    tcase_add_test(tc, test_raw_and_f32);
    tcase_add_test(tc, test_nan_output_rejected);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_json_quote);
    tcase_add_test(tc, test_one_vs_all);
    tcase_add_test(tc, test_multilabel_thresholds_and_max);
    tcase_add_test(tc, test_embedding_vector);
    tcase_add_test(tc, test_extreme_logits_stay_finite);
    tcase_add_test(tc, test_topk_many_classes_matches_naive);
    tcase_add_test(tc, test_graph_topk_and_argmax);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
