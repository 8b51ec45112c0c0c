/* Unit tests of mapper/head: the value each head encodes, on hand-computed scores. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mapper/head.h"

static char err[PC_ERRLEN];

static const char *encode(head_kind kind, model_final final, const float *scores, int64_t width,
                          int64_t top_k, const char *const *labels, int64_t nlabels)
{
    static char out[1024];
    head_config cfg = {.kind = kind, .top_k = top_k, .threshold = 0.5, .labels = labels, .nlabels = nlabels};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, width, final, &h, err, sizeof err), PC_OK);
    size_t len = 0;
    ck_assert_uint_le(head_value_max_bytes(h), sizeof out);
    ck_assert_int_eq(head_encode(h, scores, out, sizeof out, &len, err, sizeof err), PC_OK);
    out[len] = '\0';
    head_free(h);
    return out;
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
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, 3, MODEL_FINAL_NONE, &h, err, sizeof err), PC_OK);
    char out[64];
    size_t len = 0;
    ck_assert_int_eq(head_encode(h, v, out, sizeof out, &len, err, sizeof err), PC_OK);
    ck_assert_uint_eq(len, 12);
    ck_assert(memcmp(out, v, 12) == 0);
    head_free(h);
}
END_TEST

START_TEST(test_nan_output_rejected)
{
    head_config cfg = {.kind = HEAD_RAW, .top_k = 1};
    head *h = NULL;
    ck_assert_int_eq(head_create(&cfg, 2, MODEL_FINAL_NONE, &h, err, sizeof err), PC_OK);
    float v[2] = {1.0f, NAN};
    char out[128];
    size_t len;
    ck_assert_int_eq(head_encode(h, v, out, sizeof out, &len, err, sizeof err), PC_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(err, "NaN"));
    head_free(h);
}
END_TEST

START_TEST(test_config_errors)
{
    head *h = NULL;
    head_config sig = {.kind = HEAD_SIGMOID, .top_k = 1};
    ck_assert_int_eq(head_create(&sig, 3, MODEL_FINAL_NONE, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "width 1"));
    const char *labels[] = {"a", "b"};
    head_config lab = {.kind = HEAD_SOFTMAX_TOPK, .top_k = 1, .labels = labels, .nlabels = 2};
    ck_assert_int_eq(head_create(&lab, 3, MODEL_FINAL_NONE, &h, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "2 names"));
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
