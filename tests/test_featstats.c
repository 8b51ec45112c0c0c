/* Unit tests of mapper/featstats: exact moments, histogram bins, ids, order independence of
 * the merged file, the compare sketch of the training rows, the JSON round trip and strict
 * reading of bad files.  Expected values are worked out by hand from the bin rule in
 * featstats.h, not copied from the program's output.  Runs in one process (MPI_COMM_SELF);
 * the merge across -np 1..4 is tests/integration/test_drift.sh. */
#include <check.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapper/featstats.h"

static char tmpdir[256];
static char err[PC_ERRLEN];

static const char *tmp_path(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

static featstats *make_profile(int64_t ndense, int64_t nids)
{
    static const char *dn[] = {"a", "b", "c"};
    static const char *in[] = {"user", "city"};
    static const featstats_id_kind kinds[] = {FEATSTATS_ID_INT, FEATSTATS_ID_STRING};
    featstats *fs = NULL;
    ck_assert_msg(featstats_create(dn, ndense, in, kinds, nids, &fs, err, sizeof err) == PC_OK, "%s", err);
    return fs;
}

START_TEST(test_moments_exact)
{
    featstats *fs = make_profile(1, 0);
    const float x[] = {1, 2, 3, 4, NAN, INFINITY};
    featstats_add_dense(fs, 0, x, 6, 1);
    featstats_dense d;
    featstats_dense_get(fs, 0, &d);
    ck_assert_int_eq(d.count, 6);
    ck_assert_int_eq(d.missing, 2);
    ck_assert_double_eq(d.mean, 2.5);
    ck_assert_double_eq_tol(d.std, sqrt(1.25), 1e-15);
    ck_assert_double_eq(d.min, 1);
    ck_assert_double_eq(d.max, 4);
    featstats_free(fs);

    /* a large offset with a small spread: a naive float sum would lose the spread */
    fs = make_profile(1, 0);
    float y[1000];
    for (int i = 0; i < 1000; i++) y[i] = 1e6f + (i % 2 ? 0.5f : -0.5f);
    featstats_add_dense(fs, 0, y, 1000, 1);
    featstats_dense_get(fs, 0, &d);
    ck_assert_double_eq(d.mean, 1e6);
    ck_assert_double_eq_tol(d.std, 0.5, 1e-9);
    /* negative values and subnormals */
    featstats_free(fs);
    fs = make_profile(1, 0);
    const float z[] = {-3, 1e-45f, -1e-45f, 3};
    featstats_add_dense(fs, 0, z, 4, 1);
    featstats_dense_get(fs, 0, &d);
    ck_assert_double_eq(d.mean, 0.0);
    featstats_free(fs);
}
END_TEST

/* Values 0..19 and one 20 on [0, 20]: scale = 1, so value v lands in bin v, and 20 (== hi)
 * is clamped into bin 19. */
START_TEST(test_histogram_two_passes)
{
    featstats *fs = make_profile(1, 0);
    float x[21];
    for (int i = 0; i <= 20; i++) x[i] = (float)i;
    featstats_add_dense(fs, 0, x, 21, 1);
    ck_assert_int_eq(featstats_write_json(fs, tmp_path("early.json"), err, sizeof err), PC_ERR_USAGE);
    ck_assert_int_eq(featstats_profile_pass2(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    featstats_add_dense(fs, 0, x, 21, 1);
    featstats_dense d;
    featstats_dense_get(fs, 0, &d);
    ck_assert_int_eq(d.count, 21); /* pass 2 does not count twice */
    ck_assert_double_eq(d.lo, 0);
    ck_assert_double_eq(d.hi, 20);
    for (int k = 0; k < 19; k++) ck_assert_int_eq(d.bins[k], 1);
    ck_assert_int_eq(d.bins[19], 2);
    ck_assert_int_eq(d.below + d.above, 0);

    /* compare against it: -1 below, 25 above, 2.5 in bin 2 */
    featstats *cmp = NULL;
    ck_assert_int_eq(featstats_create_compare(fs, NULL, 0, NULL, 0, &cmp, err, sizeof err), PC_OK);
    const float y[] = {-1, 25, 2.5f, NAN};
    featstats_add_dense(cmp, 0, y, 4, 1);
    featstats_dense_get(cmp, 0, &d);
    ck_assert_int_eq(d.below, 1);
    ck_assert_int_eq(d.above, 1);
    ck_assert_int_eq(d.bins[2], 1);
    ck_assert_int_eq(d.missing, 1);
    ck_assert_int_eq(d.count, 4);
    featstats_free(cmp);
    featstats_free(fs);
}
END_TEST

START_TEST(test_fixed_range)
{
    featstats *fs = make_profile(1, 0);
    ck_assert_int_eq(featstats_set_range(fs, 0, 0, 1, err, sizeof err), PC_OK);
    const float x[] = {0.01f, 0.99f, 1.0f, 1.5f, -0.1f, 0.5f};
    featstats_add_dense(fs, 0, x, 6, 1);
    featstats_dense d;
    featstats_dense_get(fs, 0, &d);
    ck_assert_int_eq(d.bins[0], 1);
    ck_assert_int_eq(d.bins[10], 1);
    ck_assert_int_eq(d.bins[19], 2);
    ck_assert_int_eq(d.above, 1);
    ck_assert_int_eq(d.below, 1);
    ck_assert_int_eq(featstats_set_range(fs, 0, 0, 1, err, sizeof err), PC_ERR_USAGE); /* rows added */
    ck_assert_int_eq(featstats_write_json(fs, tmp_path("fixed.json"), err, sizeof err), PC_OK);
    featstats_free(fs);
}
END_TEST

/* Three features interleaved in a row-major block: each column lands in its own feature. */
START_TEST(test_block_columns)
{
    featstats *fs = make_profile(3, 0);
    const float x[] = {1, 10, 100, 2, 20, 200};
    featstats_add_dense(fs, 1, x, 3, 2); /* rows (1,10) (100,2) (20,200) into b, c */
    featstats_dense d;
    featstats_dense_get(fs, 0, &d);
    ck_assert_int_eq(d.count, 0);
    featstats_dense_get(fs, 1, &d);
    ck_assert_double_eq(d.mean, (1 + 100 + 20) / 3.0);
    featstats_dense_get(fs, 2, &d);
    ck_assert_double_eq(d.mean, (10 + 2 + 200) / 3.0);
    featstats_free(fs);
}
END_TEST

START_TEST(test_ids_top_and_unseen)
{
    featstats *fs = make_profile(0, 2);
    const int64_t users[] = {7, 7, 7, 3, 3, 9};
    const char *cities[] = {"oslo", "rome", "oslo", "lima", "oslo", "rome"};
    const size_t lens[] = {4, 4, 4, 4, 4, 4};
    ck_assert_int_eq(featstats_add_ids_i64(fs, 0, users, 6, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_ids_str(fs, 1, cities, lens, 6, err, sizeof err), PC_OK);
    featstats_ids v;
    featstats_ids_get(fs, 0, &v);
    ck_assert_int_eq(v.count, 6);
    ck_assert_int_eq(v.distinct, 3);
    ck_assert(v.vocab_complete);
    ck_assert_int_eq(v.ntop, 3);
    ck_assert_str_eq(v.top[0], "7");
    ck_assert_int_eq(v.top_counts[0], 3);
    ck_assert_str_eq(v.top[1], "3");
    ck_assert_str_eq(v.top[2], "9");
    featstats_ids_get(fs, 1, &v);
    ck_assert_str_eq(v.top[0], "oslo");
    ck_assert_str_eq(v.top[1], "rome");
    ck_assert(featstats_vocab_has(fs, 1, featstats_id_key("lima", 4)));
    ck_assert(!featstats_vocab_has(fs, 1, featstats_id_key("kyiv", 4)));

    featstats *cmp = NULL;
    ck_assert_int_eq(featstats_create_compare(fs, NULL, 0, NULL, 0, &cmp, err, sizeof err), PC_OK);
    const int64_t u2[] = {7, 8, 8, 3};
    uint64_t keys[] = {featstats_id_key("kyiv", 4), 0, featstats_id_key("oslo", 4), 0};
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 0, u2, 4, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_id_keys(cmp, 1, keys, 2, 2, err, sizeof err), PC_OK);
    featstats_ids_get(cmp, 0, &v);
    ck_assert_int_eq(v.count, 4);
    ck_assert_int_eq(v.unseen, 2);
    featstats_ids_get(cmp, 1, &v);
    ck_assert_int_eq(v.count, 2);
    ck_assert_int_eq(v.unseen, 1);
    featstats_free(cmp);
    featstats_free(fs);
}
END_TEST

/* The same rows in two orders and splits (two sketches merged by hand through the file
 * content) give the same bytes. */
static void profile_of(const float *x, int64_t rows, const int64_t *ids, int order, const char *path)
{
    featstats *fs = make_profile(2, 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t r0 = 0; r0 < rows; r0++) {
            int64_t r = order ? rows - 1 - r0 : r0;
            featstats_add_dense(fs, 0, x + 2 * r, 1, 2);
            if (pass == 0) ck_assert_int_eq(featstats_add_ids_i64(fs, 0, &ids[r], 1, err, sizeof err), PC_OK);
        }
        if (pass == 0) ck_assert_int_eq(featstats_profile_pass2(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    }
    ck_assert_int_eq(featstats_merge(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    ck_assert_msg(featstats_write_json(fs, path, err, sizeof err) == PC_OK, "%s", err);
    featstats_free(fs);
}

START_TEST(test_order_independent_and_round_trip)
{
    enum { N = 5000 };
    float *x = malloc(2 * N * sizeof *x);
    int64_t *ids = malloc(N * sizeof *ids);
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[2 * i] = (float)((double)(s % 100000) / 997.0 - 30.0);
        x[2 * i + 1] = (float)((double)(s >> 40) * 1e-3);
        ids[i] = (int64_t)(s % 37);
    }
    profile_of(x, N, ids, 0, tmp_path("fwd.json"));
    profile_of(x, N, ids, 1, tmp_path("rev.json"));
    char *a = slurp(tmp_path("fwd.json")), *b = slurp(tmp_path("rev.json"));
    ck_assert_str_eq(a, b);

    /* read it back and write it again: the same bytes */
    featstats *rd = NULL;
    ck_assert_msg(featstats_read_json(tmp_path("fwd.json"), &rd, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(featstats_dense_count(rd), 2);
    ck_assert_int_eq(featstats_id_count(rd), 1);
    ck_assert_int_eq(featstats_dense_find(rd, "b"), 1);
    ck_assert_int_eq(featstats_id_find(rd, "user"), 0);
    ck_assert_int_eq(featstats_write_json(rd, tmp_path("again.json"), err, sizeof err), PC_OK);
    char *c = slurp(tmp_path("again.json"));
    ck_assert_str_eq(a, c);

    /* the compare sketch of the same rows reproduces the histogram bin for bin, no unseen */
    featstats *cmp = NULL;
    ck_assert_int_eq(featstats_create_compare(rd, NULL, 0, NULL, 0, &cmp, err, sizeof err), PC_OK);
    featstats_add_dense(cmp, 0, x, N, 2);
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 0, ids, N, err, sizeof err), PC_OK);
    for (int j = 0; j < 2; j++) {
        featstats_dense p, q;
        featstats_dense_get(rd, j, &p);
        featstats_dense_get(cmp, j, &q);
        for (int k = 0; k < FEATSTATS_BINS; k++) ck_assert_int_eq(p.bins[k], q.bins[k]);
        ck_assert_int_eq(q.below + q.above, 0);
        ck_assert_int_eq(q.count, p.count);
        ck_assert(isnan(q.mean) && isnan(q.min)); /* a compare sketch keeps no moments */
    }
    featstats_ids v;
    featstats_ids_get(cmp, 0, &v);
    ck_assert_int_eq(v.unseen, 0);
    featstats_free(cmp);
    featstats_free(rd);
    free(a), free(b), free(c), free(x), free(ids);
}
END_TEST

/* A valid file with one field replaced. */
static const char *GOOD =
    "{\"format\": \"precast-featstats\", \"version\": 1, \"bins\": 20,\n"
    " \"dense\": [{\"name\": \"a\", \"count\": 3, \"missing\": 1, \"mean\": 1, \"std\": 0.5, \"min\": 0.5, \"max\": 1.5,"
    " \"lo\": 0.5, \"hi\": 1.5, \"hist\": [1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1], \"below\": 0, \"above\": 0}],\n"
    " \"ids\": [{\"name\": \"u\", \"kind\": \"string\", \"count\": 2, \"distinct\": 2, \"vocab_complete\": true,"
    " \"top\": [[\"x\", 1, 0.5], [\"y\", 1, 0.5]], \"vocab\": [\"x\", \"y\"], \"counts\": [1, 1]}]}\n";

static void expect_bad(const char *from, const char *to, pc_status code, const char *needle)
{
    const char *at = strstr(GOOD, from);
    ck_assert_msg(at != NULL, "fixture lacks %s", from);
    char text[4096];
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
    const char *path = tmp_path("bad.json");
    spit(path, text);
    featstats *fs = (featstats *)1;
    pc_status s = featstats_read_json(path, &fs, err, sizeof err);
    ck_assert_msg(s == code, "'%s' -> '%s': status %d (%s)", from, to, s, err);
    ck_assert(fs == NULL);
    ck_assert_msg(strstr(err, path) != NULL, "message does not name the file: %s", err);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

START_TEST(test_bad_files)
{
    featstats *fs = NULL;
    spit(tmp_path("good.json"), GOOD);
    ck_assert_msg(featstats_read_json(tmp_path("good.json"), &fs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(featstats_vocab_has(fs, 0, featstats_id_key("y", 1)));
    featstats_free(fs);

    expect_bad("\"version\": 1", "\"version\": 2", PC_ERR_CONFIG, "version 2");
    expect_bad("precast-featstats", "something-else", PC_ERR_CONFIG, "\"format\"");
    expect_bad("0,0,0,1]", "0,0,1]", PC_ERR_CONFIG, "\"hist\" has 19 entries");
    expect_bad("\"missing\": 1,", "", PC_ERR_CONFIG, "missing field \"missing\"");
    expect_bad("\"lo\": 0.5", "\"lo\": 2", PC_ERR_CONFIG, "above \"hi\"");
    expect_bad("\"count\": 3", "\"count\": -3", PC_ERR_CONFIG, "non-negative");
    expect_bad("\"count\": 3", "\"count\": 4", PC_ERR_CONFIG, "add up to 2");
    expect_bad("\"kind\": \"string\"", "\"kind\": \"float\"", PC_ERR_CONFIG, "\"kind\"");
    expect_bad("[\"x\", \"y\"]", "[\"x\", \"x\"]", PC_ERR_CONFIG, "twice");
    expect_bad("\"bins\": 20,\n", "\"bins\": 20,\n,", PC_ERR_CONFIG, "line 2, column 1");
    expect_bad("]}]}\n", "]}]}\n{}", PC_ERR_CONFIG, "trailing");
    /* an escaped newline in a string before the error does not shift the line count */
    expect_bad("\"name\": \"u\"", "\"name\": \"u\\n\\u000a\",\n \"oops\"", PC_ERR_CONFIG, "line 4, column 8");
    expect_bad("\"std\": 0.5", "\"std\": \"0.5\"", PC_ERR_CONFIG, "\"std\" must be a number");
    expect_bad(GOOD, "", PC_ERR_CONFIG, "empty file");
    expect_bad("\"counts\": [1, 1]", "\"counts\": [1]", PC_ERR_CONFIG, "\"counts\" has 1 entries");
    expect_bad("\"counts\": [1, 1]", "\"counts\": [1, 2]", PC_ERR_CONFIG, "decreasing");
    expect_bad("[\"x\", 1, 0.5]", "[\"x\", 1]", PC_ERR_CONFIG, "[\"id\", count, share]");

    fs = (featstats *)1;
    ck_assert_int_eq(featstats_read_json(tmp_path("nonexistent.json"), &fs, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert(strstr(err, "nonexistent.json") != NULL);
    ck_assert(fs == NULL);
}
END_TEST

/* Ids added by key alone are written with a spelling noted for the key (the map loop's path
 * for hashed string columns); without one they are written as #<key>, and both read back. */
START_TEST(test_noted_spellings)
{
    const char *in[] = {"city"};
    const featstats_id_kind kinds[] = {FEATSTATS_ID_STRING};
    featstats *fs = NULL;
    ck_assert_int_eq(featstats_create(NULL, 0, in, kinds, 1, &fs, err, sizeof err), PC_OK);
    uint64_t keys[] = {featstats_id_key("oslo", 4), featstats_id_key("oslo", 4), featstats_id_key("rome", 4)};
    ck_assert_int_eq(featstats_note_spelling(fs, 0, keys[0], "oslo", 4, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_id_keys(fs, 0, keys, 3, 1, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_profile_pass2(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_merge(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_write_json(fs, tmp_path("spell.json"), err, sizeof err), PC_OK);
    char *text = slurp(tmp_path("spell.json"));
    char rome[32];
    snprintf(rome, sizeof rome, "\"#%016llx\"", (unsigned long long)keys[2]);
    ck_assert_msg(strstr(text, "\"top\": [[\"oslo\", 2, 0.666667], [") != NULL && strstr(text, rome) != NULL, "%s", text);
    featstats *rd = NULL;
    ck_assert_msg(featstats_read_json(tmp_path("spell.json"), &rd, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(featstats_vocab_has(rd, 0, keys[0]));
    ck_assert(featstats_vocab_has(rd, 0, keys[2]));
    free(text);
    featstats_free(rd);
    featstats_free(fs);
}
END_TEST

/* Unseen ids through both membership sets: small ids (a bitmap) and large or negative ones (a
 * table, with -1 = the table's empty marker as a real id). */
START_TEST(test_unseen_sets)
{
    const char *in[] = {"small", "wide"};
    featstats *fs = NULL, *cmp = NULL;
    ck_assert_int_eq(featstats_create(NULL, 0, in, NULL, 2, &fs, err, sizeof err), PC_OK);
    const int64_t small[] = {0, 3, 64, 65, 999}, wide[] = {-1, 5, (int64_t)1 << 40};
    ck_assert_int_eq(featstats_add_ids_i64(fs, 0, small, 5, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_ids_i64(fs, 1, wide, 3, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_profile_pass2(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_create_compare(fs, NULL, 0, NULL, 0, &cmp, err, sizeof err), PC_OK);
    const int64_t s2[] = {0, 1, 64, 66, 999, 1000, -3, 65}; /* unseen: 1, 66, 1000, -3 */
    const int64_t w2[] = {-1, 5, 6, (int64_t)1 << 40, -2, ((int64_t)1 << 40) + 1}; /* unseen: 6, -2, 2^40+1 */
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 0, s2, 8, err, sizeof err), PC_OK);
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 1, w2, 6, err, sizeof err), PC_OK);
    featstats_ids v;
    featstats_ids_get(cmp, 0, &v);
    ck_assert_int_eq(v.count, 8);
    ck_assert_int_eq(v.unseen, 4);
    featstats_ids_get(cmp, 1, &v);
    ck_assert_int_eq(v.count, 6);
    ck_assert_int_eq(v.unseen, 3);
    /* 200 ids in blocks past the prefetch block of 64, half of them unseen */
    int64_t many[200];
    for (int i = 0; i < 200; i++) many[i] = i % 2 ? -1 : ((int64_t)1 << 41) + i;
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 1, many, 200, err, sizeof err), PC_OK);
    featstats_ids_get(cmp, 1, &v);
    ck_assert_int_eq(v.unseen, 3 + 100);
    featstats_free(cmp);
    featstats_free(fs);
}
END_TEST

/* Compare columns by name: another order, and a column the reference lacks (untracked). */
START_TEST(test_compare_by_name)
{
    featstats *fs = make_profile(2, 1), *cmp = NULL;
    const float x[] = {1, 100, 2, 200};
    featstats_add_dense(fs, 0, x, 2, 2);
    ck_assert_int_eq(featstats_profile_pass2(fs, MPI_COMM_SELF, err, sizeof err), PC_OK);
    featstats_add_dense(fs, 0, x, 2, 2);
    const char *dn[] = {"b", "zz", "a"}, *in[] = {"nope"};
    ck_assert_int_eq(featstats_create_compare(fs, dn, 3, in, 1, &cmp, err, sizeof err), PC_OK);
    const float y[] = {150, 7, 1.5f}; /* b, zz, a */
    featstats_add_dense(cmp, 0, y, 1, 3);
    const int64_t u[] = {12345};
    ck_assert_int_eq(featstats_add_ids_i64(cmp, 0, u, 1, err, sizeof err), PC_OK);
    featstats_dense d;
    featstats_dense_get(cmp, 0, &d);
    ck_assert(d.tracked);
    ck_assert_str_eq(d.name, "b");
    ck_assert_double_eq(d.lo, 100); /* b's range, not a's */
    ck_assert_int_eq(d.bins[10], 1);   /* 150 on [100, 200]: bin 10 */
    featstats_dense_get(cmp, 1, &d);
    ck_assert(!d.tracked);
    featstats_dense_get(cmp, 2, &d);
    ck_assert(d.tracked && d.bins[10] == 1);
    featstats_ids v;
    featstats_ids_get(cmp, 0, &v);
    ck_assert(!v.tracked);
    ck_assert_int_eq(v.unseen, 0);
    featstats_free(cmp);
    const char *none[] = {"zz"}, *noids[] = {"nope"};
    ck_assert_int_eq(featstats_create_compare(fs, none, 1, noids, 0, &cmp, err, sizeof err), PC_ERR_CONFIG);
    ck_assert(cmp == NULL);
    featstats_free(fs);
}
END_TEST

START_TEST(test_bad_names)
{
    const char *dup[] = {"a", "a"};
    featstats *fs = NULL;
    ck_assert_int_eq(featstats_create(dup, 2, NULL, NULL, 0, &fs, err, sizeof err), PC_ERR_CONFIG);
    ck_assert(strstr(err, "'a'") != NULL);
    ck_assert(fs == NULL);
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_featstats.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) return 1;
    Suite *s = suite_create("featstats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_moments_exact);
    tcase_add_test(tc, test_histogram_two_passes);
    tcase_add_test(tc, test_fixed_range);
    tcase_add_test(tc, test_block_columns);
    tcase_add_test(tc, test_ids_top_and_unseen);
    tcase_add_test(tc, test_order_independent_and_round_trip);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_noted_spellings);
    tcase_add_test(tc, test_unseen_sets);
    tcase_add_test(tc, test_compare_by_name);
    tcase_add_test(tc, test_bad_names);
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
