/* Unit tests of jobs/drift: PSI and Jensen–Shannon distance on hand-computed histograms, the
 * levels and the summary of a comparison, the report and metrics text, and the job file's
 * input.drift keys.  The expected numbers are worked out by hand (comments show how). */
#include <check.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/drift.h"
#include "jobs/job.h"

static char err[PC_ERRLEN];
static char tmpdir[256];

START_TEST(test_psi_values)
{
    const int64_t p[] = {50, 50}, q[] = {90, 10};
    ck_assert_double_eq(drift_psi(p, p, 2), 0.0);
    /* (0.9-0.5) ln(0.9/0.5) + (0.1-0.5) ln(0.1/0.5) = 0.4 ln 1.8 + 0.4 ln 5 = 0.4 ln 9 */
    ck_assert_double_eq_tol(drift_psi(p, q, 2), 0.4 * log(9.0), 1e-12);
    /* empty buckets take DRIFT_EPS: shares (1, eps) against (eps, 1) -> 2 (1 - eps) ln(1/eps) */
    const int64_t a[] = {100, 0}, b[] = {0, 100};
    ck_assert_double_eq_tol(drift_psi(a, b, 2), 2 * (1 - DRIFT_EPS) * log(1 / DRIFT_EPS), 1e-9);
    /* the shares matter, not the counts */
    const int64_t p2[] = {5, 5};
    ck_assert_double_eq(drift_psi(p2, p, 2), 0.0);
    /* nothing on one side: nothing to compare */
    const int64_t z[] = {0, 0};
    ck_assert_double_eq(drift_psi(z, q, 2), 0.0);
}
END_TEST

START_TEST(test_js_values)
{
    const int64_t p[] = {50, 50}, q[] = {90, 10}, a[] = {1, 0}, b[] = {0, 1};
    ck_assert_double_eq(drift_js(p, p, 2), 0.0);
    ck_assert_double_eq_tol(drift_js(a, b, 2), 1.0, 1e-12); /* disjoint: JSD = 1 bit */
    /* m = (0.7, 0.3); JSD = 1/2 [0.5 log2(5/7) + 0.5 log2(5/3)] + 1/2 [0.9 log2(9/7) + 0.1 log2(1/3)] */
    double jsd = 0.5 * (0.5 * log2(5.0 / 7) + 0.5 * log2(5.0 / 3)) + 0.5 * (0.9 * log2(9.0 / 7) + 0.1 * log2(1.0 / 3));
    ck_assert_double_eq_tol(drift_js(p, q, 2), sqrt(jsd), 1e-12);
    ck_assert_double_eq_tol(sqrt(jsd), 0.3831, 1e-4); /* by hand: JSD = 0.14679 */
}
END_TEST

static job_config *load_job(const char *extra, pc_status want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/job.ini", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fprintf(f, "[model]\npath = m.onnx\n[input]\npaths = a.csv\n%s\n[output]\ntable = t\n", extra);
    fclose(f);
    job_config *c = NULL;
    pc_status s = job_config_load(path, NULL, 0, &c, err, sizeof err);
    ck_assert_msg(s == want, "status %d: %s", s, err);
    return c;
}

START_TEST(test_job_keys)
{
    job_config *c = load_job("", PC_OK);
    ck_assert_int_eq(c->drift, DRIFT_OFF);
    ck_assert_double_eq(c->drift_psi_warn, 0.2);
    ck_assert_double_eq(c->drift_psi_gate, 0.25);
    ck_assert(!c->drift_stats_set);
    char want[600];
    snprintf(want, sizeof want, "%s/m.stats.json", tmpdir);
    ck_assert_str_eq(c->drift_stats, want);
    job_config_free(c);
    c = load_job("drift = gate\ndrift_psi_gate = 0.5\ndrift_stats = s.json", PC_OK);
    ck_assert_int_eq(c->drift, DRIFT_GATE);
    ck_assert_double_eq(c->drift_psi_gate, 0.5);
    ck_assert(c->drift_stats_set);
    job_config_free(c);
    ck_assert(load_job("drift = maybe", PC_ERR_CONFIG) == NULL);
    ck_assert_msg(strstr(err, "job.ini:5") != NULL && strstr(err, "input.drift") != NULL, "%s", err);
    ck_assert(load_job("drift_psi_warn = -1", PC_ERR_CONFIG) == NULL);
    ck_assert(load_job("drift_unseen_gate = 2", PC_ERR_CONFIG) == NULL);
}
END_TEST

/* A profile of 2 dense features (values 0..99 each) and one id column (ids 0..9), and a
 * tonight sketch: "a" as in training, "b" shifted out of range, ids half unseen. */
START_TEST(test_compare_levels_and_text)
{
    const char *dn[] = {"a", "b"}, *in[] = {"u"};
    featstats *ref = NULL, *tn = NULL;
    ck_assert_int_eq(featstats_create(dn, 2, in, NULL, 1, &ref, err, sizeof err), PC_OK);
    float x[200];
    int64_t ids[100];
    for (int i = 0; i < 100; i++) x[2 * i] = x[2 * i + 1] = (float)i, ids[i] = i % 10;
    featstats_add_dense(ref, 0, x, 100, 2);
    ck_assert_int_eq(featstats_add_ids_i64(ref, 0, ids, 100, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_profile_pass2(ref, MPI_COMM_SELF, err, sizeof err), PC_OK);
    featstats_add_dense(ref, 0, x, 100, 2);
    ck_assert_int_eq(featstats_create_compare(ref, NULL, 0, NULL, 0, &tn, err, sizeof err), PC_OK);
    for (int i = 0; i < 100; i++) x[2 * i + 1] = 1000.0f + (float)i, ids[i] = i % 20;
    featstats_add_dense(tn, 0, x, 100, 2);
    ck_assert_int_eq(featstats_add_ids_i64(tn, 0, ids, 100, err, sizeof err), PC_OK);

    job_config cfg = {.drift = DRIFT_WARN, .drift_psi_warn = 0.2, .drift_psi_gate = 0.25, .drift_unseen_warn = 0.05,
                      .drift_unseen_gate = 0.1};
    drift_result r;
    ck_assert_int_eq(drift_compare_inputs(&cfg, "s.json", ref, tn, &r, err, sizeof err), PC_OK);
    ck_assert_int_eq(r.n, 3);
    ck_assert_str_eq(r.items[0].name, "a");
    ck_assert_double_eq(r.items[0].psi, 0.0);
    ck_assert_int_eq(r.items[0].level, DRIFT_LEVEL_OK);
    /* b: all of tonight above the range, training all inside: shares (eps..) vs 1 above */
    ck_assert_double_eq(r.items[1].out_of_range, 1.0);
    ck_assert_int_eq(r.items[1].level, DRIFT_LEVEL_GATE);
    ck_assert(r.items[2].id);
    ck_assert_double_eq(r.items[2].unseen, 0.5);
    ck_assert_int_eq(r.items[2].level, DRIFT_LEVEL_GATE);
    ck_assert_int_eq(r.worst, DRIFT_LEVEL_GATE);

    char line[512];
    drift_summary(&cfg, &r, 5, line, sizeof line);
    /* b's PSI (~18 / 0.25) ranks before u's unseen share (0.5 / 0.1) */
    ck_assert_msg(strncmp(line, "b (PSI ", 7) == 0 && strstr(line, ", u (50.0% unseen ids)") != NULL, "%s", line);
    ck_assert(strstr(line, "a (") == NULL);
    drift_summary(&cfg, &r, 1, line, sizeof line);
    ck_assert_msg(strstr(line, "and 1 more") != NULL, "%s", line);

    char *json = drift_report_json(&cfg, &r);
    ck_assert(json != NULL);
    ck_assert_msg(strstr(json, "\"name\":\"u\",\"kind\":\"id\",\"unseen_share\":0.5,\"level\":\"gate\"") != NULL, "%s", json);
    char *prom = drift_metrics_text(&r, "nightly");
    ck_assert_msg(strstr(prom, "precast_feature_psi{job=\"nightly\",feature=\"a\"} 0\n") != NULL, "%s", prom);
    ck_assert(strstr(prom, "precast_feature_unseen_ids_share{job=\"nightly\",feature=\"u\"} 0.5\n") != NULL);
    free(json);
    free(prom);
    drift_result_free(&r);
    featstats_free(tn);
    featstats_free(ref);
}
END_TEST

START_TEST(test_output_compare)
{
    featstats *a = NULL, *b = NULL;
    ck_assert_int_eq(drift_output_sketch(&a, err, sizeof err), PC_OK);
    ck_assert_int_eq(drift_output_sketch(&b, err, sizeof err), PC_OK);
    const float sa[] = {0.9f, 0.9f, 0.6f, 0.6f}, sb[] = {0.9f, 0.9f, 0.6f, 0.6f};
    const int64_t ca[] = {0, 0, 1, 1}, cb[] = {0, 0, 0, 2};
    featstats_add_dense(a, 0, sa, 4, 1);
    featstats_add_dense(b, 0, sb, 4, 1);
    ck_assert_int_eq(featstats_add_ids_i64(a, 0, ca, 4, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_ids_i64(b, 0, cb, 4, err, sizeof err), PC_OK);
    drift_result r = {0};
    ck_assert_int_eq(drift_compare_outputs(&r, "v1", a, b, err, sizeof err), PC_OK);
    ck_assert(r.have_output);
    ck_assert_double_eq(r.score_psi, 0.0);
    /* classes 0, 1, 2: shares (.5, .5, eps) before, (.75, eps, .25) tonight */
    double e = DRIFT_EPS;
    double want = (0.75 - 0.5) * log(0.75 / 0.5) + (e - 0.5) * log(e / 0.5) + (0.25 - e) * log(0.25 / e);
    ck_assert_double_eq_tol(r.class_psi, want, 1e-12);
    drift_result_free(&r);
    featstats_free(a);
    featstats_free(b);
}
END_TEST

/* These tests call MPI_Init, whose allocations (Open MPI's dlopen'd components) LeakSanitizer
 * cannot attribute or suppress (tests/integration/lib.sh); leaks of featstats and drift are
 * checked with a non-MPI leak report filtered for their frames (docs/DRIFT.md). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_drift.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) return 1;
    Suite *s = suite_create("drift");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_psi_values);
    tcase_add_test(tc, test_js_values);
    tcase_add_test(tc, test_job_keys);
    tcase_add_test(tc, test_compare_levels_and_text);
    tcase_add_test(tc, test_output_compare);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) failed++;
    MPI_Finalize();
    return failed ? 1 : 0;
}
