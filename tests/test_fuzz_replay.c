/* test_fuzz_replay.c — `make check` replays the seed corpora of the fuzz targets through the
 * fuzzers' own checks: every file of tests/corpus/<target>/ (dot files aside) goes through
 * the harness tests/fuzz_<target>.c, built here by the normal compiler and flags (so under
 * `make check-asan` with ASan and UBSan, under `make check-valgrind` with valgrind).
 *
 * The harnesses are the libFuzzer targets of tests/fuzz.mk; tests/fuzz_util.h gives each
 * entry point its own name here (-DFUZZ_ENTRY=fuzz_<target>_one).  A broken invariant traps
 * after printing "FILE:LINE: invariant broken: CONDITION (input PATH)": Check reports the
 * signal under the target's test.
 *
 * Files named finding-* are reproducers of known, not yet fixed findings (tests/fuzz.mk lists
 * them); they are skipped unless PRECAST_FUZZ_FINDINGS=1.  PRECAST_FUZZ_CORPUS replaces
 * tests/corpus (the path is relative to the repository root, where tests/run-all.sh runs). */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read by the harnesses' failure messages (tests/fuzz_util.h). */
const char *fuzz_replay_input;

int fuzz_csv_one(const uint8_t *data, size_t size);
int fuzz_libsvm_one(const uint8_t *data, size_t size);
int fuzz_job_one(const uint8_t *data, size_t size);
int fuzz_manifest_one(const uint8_t *data, size_t size);
int fuzz_value_one(const uint8_t *data, size_t size);
int fuzz_http_one(const uint8_t *data, size_t size);

/* Fewer seeds than this means the corpus went missing or lost files: a replay of nothing
 * must not pass. */
#define MIN_SEEDS 5

/* The whole file, in an allocation of exactly its size (so that a read past the end shows
 * under ASan and valgrind); NULL for an empty file, with *n = 0. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    ck_assert(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    ck_assert(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
    *n = (size_t)len;
    uint8_t *data = len > 0 ? malloc((size_t)len) : NULL;
    ck_assert(len == 0 || data != NULL);
    ck_assert_msg(len == 0 || fread(data, 1, (size_t)len, f) == (size_t)len, "%s: short read",
                  path);
    fclose(f);
    return data;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay(const char *target, int (*one)(const uint8_t *, size_t))
{
    const char *root = getenv("PRECAST_FUZZ_CORPUS");
    const char *findings = getenv("PRECAST_FUZZ_FINDINGS");
    bool with_findings = findings != NULL && strcmp(findings, "1") == 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root != NULL ? root : "tests/corpus", target);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: cannot open the corpus", dir);
    char **names = NULL;
    size_t count = 0, skipped = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!with_findings && strncmp(e->d_name, "finding-", 8) == 0) {
            skipped++;
            continue;
        }
        names = realloc(names, (count + 1) * sizeof *names);
        ck_assert(names != NULL);
        names[count] = strdup(e->d_name);
        ck_assert(names[count] != NULL);
        count++;
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t n;
        uint8_t *data = slurp(path, &n);
        fuzz_replay_input = path;
        ck_assert_int_eq(one(data, n), 0);
        fuzz_replay_input = NULL;
        free(data);
        free(names[i]);
    }
    free(names);
    ck_assert_msg(count >= MIN_SEEDS, "%s: %zu seeds, expected at least %d", dir, count,
                  MIN_SEEDS);
    if (skipped > 0)
        fprintf(stderr, "%s: %zu seeds replayed, %zu finding-* reproducers skipped "
                        "(PRECAST_FUZZ_FINDINGS=1 runs them)\n", dir, count, skipped);
}

START_TEST(test_replay_csv) { replay("csv", fuzz_csv_one); }
END_TEST

START_TEST(test_replay_libsvm) { replay("libsvm", fuzz_libsvm_one); }
END_TEST

START_TEST(test_replay_job) { replay("job", fuzz_job_one); }
END_TEST

START_TEST(test_replay_manifest) { replay("manifest", fuzz_manifest_one); }
END_TEST

START_TEST(test_replay_value) { replay("value", fuzz_value_one); }
END_TEST

START_TEST(test_replay_http) { replay("http", fuzz_http_one); }
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz_replay");
    TCase *tc = tcase_create("corpora");
    /* Under valgrind the CSV and LIBSVM seeds take seconds (every seed is read some ten ways). */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_replay_csv);
    tcase_add_test(tc, test_replay_libsvm);
    tcase_add_test(tc, test_replay_job);
    tcase_add_test(tc, test_replay_manifest);
    tcase_add_test(tc, test_replay_value);
    tcase_add_test(tc, test_replay_http);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
