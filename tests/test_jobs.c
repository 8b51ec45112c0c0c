/* Unit tests of jobs/: the INI reader, --set overrides, job validation, labels files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/ini.h"
#include "jobs/job.h"

static char err[PC_ERRLEN];
static char dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/precast-jobs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *GOOD =
    "# nightly job\n"
    "[model]\n"
    "path = m.onnx\n"
    "labels = labels.txt\n"
    "\n"
    "[input]\n"
    "; comment\n"
    "paths = a.csv, more/*.csv\n"
    "id_column = user\n"
    "features = f1, f2 ,f3\n"
    "[output]\n"
    "table = /abs/table\n"
    "head = softmax_topk\n"
    "top_k = 3\n";

START_TEST(test_ini_parse_and_lines)
{
    ini *f = NULL;
    ck_assert_int_eq(ini_load(write_file("a.ini", GOOD), &f, err, sizeof err), PC_OK);
    int64_t line = -1;
    ck_assert_str_eq(ini_get(f, "input", "id_column", &line), "user");
    ck_assert_int_eq(line, 9);
    ck_assert_ptr_null(ini_get(f, "input", "nothing", NULL));
    ck_assert_int_eq(ini_set(f, "output.top_k=5", err, sizeof err), PC_OK);
    ck_assert_str_eq(ini_get(f, "output", "top_k", &line), "5");
    ck_assert_int_eq(line, 0);
    ck_assert_int_eq(ini_set(f, "nodot=1", err, sizeof err), PC_ERR_USAGE);
    ini_free(f);
}
END_TEST

START_TEST(test_ini_errors_name_line)
{
    ini *f = NULL;
    ck_assert_int_eq(ini_load(write_file("b.ini", "[a]\nx = 1\nx = 2\n"), &f, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "b.ini:3: key 'a.x' already set on line 2"));
    ck_assert_int_eq(ini_load(write_file("c.ini", "x = 1\n"), &f, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "c.ini:1: key 'x' is outside any [section]"));
    ck_assert_int_eq(ini_load(write_file("d.ini", "[a]\njunk\n"), &f, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "d.ini:2:"));
    ck_assert_int_eq(ini_load("/nonexistent/job.ini", &f, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(f);
}
END_TEST

START_TEST(test_job_resolves_paths_and_defaults)
{
    write_file("labels.txt", "cat\ndog\r\nbird\n");
    job_config *c = NULL;
    char *sets[] = {"run.batch_rows=77"};
    ck_assert_int_eq(job_config_load(write_file("nightly.ini", GOOD), sets, 1, &c, err, sizeof err), PC_OK);
    char want[256];
    snprintf(want, sizeof want, "%s/m.onnx", dir);
    ck_assert_str_eq(c->model_path, want);
    ck_assert_str_eq(c->table_dir, "/abs/table");
    ck_assert_int_eq(c->ninputs, 2);
    snprintf(want, sizeof want, "%s/more/*.csv", dir);
    ck_assert_str_eq(c->input_patterns[1], want);
    ck_assert_int_eq(c->nfeatures, 3);
    ck_assert_str_eq(c->features[1], "f2");
    ck_assert_int_eq(c->nlabels, 3);
    ck_assert_str_eq(c->labels[1], "dog");
    ck_assert_str_eq(c->name, "nightly");
    ck_assert_int_eq(c->batch_rows, 77);
    ck_assert_int_eq(c->head.kind, HEAD_SOFTMAX_TOPK);
    ck_assert_int_eq(c->head.top_k, 3);
    ck_assert(c->head.threshold == 0.5);
    job_config_free(c);
}
END_TEST

START_TEST(test_job_rejects)
{
    job_config *c = NULL;
    const char *base = "[model]\npath = m.onnx\n[input]\npaths = a.csv\n[output]\ntable = t\n";
    char text[512];
    snprintf(text, sizeof text, "%s%s", base, "top-k = 3\n");
    ck_assert_int_eq(job_config_load(write_file("e.ini", text), NULL, 0, &c, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "e.ini:7: unknown key 'top-k' in section [output]"));
    snprintf(text, sizeof text, "%s%s", base, "head = bogus\n");
    ck_assert_int_eq(job_config_load(write_file("f.ini", text), NULL, 0, &c, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "f.ini:7: output.head = 'bogus'"));
    char *sets[] = {"output.top_k=0"};
    ck_assert_int_eq(job_config_load(write_file("g.ini", base), sets, 1, &c, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "--set output.top_k"));
    ck_assert_int_eq(job_config_load(write_file("h.ini", "[model]\npath = m.onnx\n"), NULL, 0, &c, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "missing required key 'paths' in section [input]"));
    snprintf(text, sizeof text, "%s%s", base, "[model]\n");
    char *lab[] = {"model.labels=nolabels.txt"};
    ck_assert_int_eq(job_config_load(write_file("i.ini", base), lab, 1, &c, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "nolabels.txt"));
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_labels_file)
{
    char **labels = NULL;
    int64_t n = 0;
    ck_assert_int_eq(labels_read(write_file("l1.txt", "a\nb"), &labels, &n, err, sizeof err), PC_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(labels[1], "b");
    labels_free(labels, n);
    ck_assert_int_eq(labels_read(write_file("l2.txt", "a\n\nb\n"), &labels, &n, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "l2.txt:2: empty label"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("jobs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ini_parse_and_lines);
    tcase_add_test(tc, test_ini_errors_name_line);
    tcase_add_test(tc, test_job_resolves_paths_and_defaults);
    tcase_add_test(tc, test_job_rejects);
    tcase_add_test(tc, test_labels_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
