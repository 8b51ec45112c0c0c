/* test_memindex.c — unit tests of server/memindex (the index of `precast serve --preload`) and
 * of the version holder with preloading: every pair found with its bytes, misses, hostile
 * sizes, the memory cap, growth past the hints, a real table's index, a reload that swaps the
 * index while the old version is still held, and a damaged version (kept out, retried). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/holder.h"
#include "server/memindex.h"
#include "storage/table.h"
#include "test_files.h"

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Pair i of a generated set: a key that is unique by construction (its number in the first 8
 * bytes, then filler of i-dependent length and bytes, NULs and 0xff included) and a value of
 * i-dependent length, written into the caller's buffers. */
static size_t gen_key(uint64_t i, unsigned char *k, size_t cap)
{
    size_t n = 8 + (size_t)(i * 7919 % 300); /* 8..307 bytes: one- and two-byte varints */
    ck_assert(n <= cap);
    memcpy(k, &i, 8);
    for (size_t j = 8; j < n; j++)
        k[j] = (unsigned char)(i * 31 + j * 17);
    return n;
}

static size_t gen_val(uint64_t i, unsigned char *v, size_t cap)
{
    size_t n = (size_t)(i * 104729 % 2000); /* 0..1999 bytes, the empty value included */
    ck_assert(n <= cap);
    for (size_t j = 0; j < n; j++)
        v[j] = (unsigned char)(i ^ (j * 131));
    return n;
}

static void expect_found(const memindex *ix, const void *k, size_t kl, const void *want,
                         size_t wl)
{
    const char *v = (const char *)"not set";
    size_t vl = 12345;
    ck_assert_msg(memindex_get(ix, k, kl, &v, &vl), "a key of %zu bytes is missing", kl);
    ck_assert_uint_eq(vl, wl);
    ck_assert_msg(wl == 0 || memcmp(v, want, wl) == 0, "a value of %zu bytes differs", wl);
}

static void expect_missing(const memindex *ix, const void *k, size_t kl)
{
    const char *v = (const char *)"not set";
    size_t vl = 12345;
    ck_assert_msg(!memindex_get(ix, k, kl, &v, &vl), "a key of %zu bytes is found", kl);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(vl, 0);
}

static memindex *new_index(uint64_t rows, uint64_t bytes, size_t cap)
{
    char err[PC_ERRLEN];
    memindex *ix = NULL;
    ck_assert_msg(memindex_new(rows, bytes, cap, &ix, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_ptr_nonnull(ix);
    return ix;
}

static void add_ok(memindex *ix, const void *k, size_t kl, const void *v, size_t vl)
{
    char err[PC_ERRLEN];
    ck_assert_msg(memindex_add(ix, k, kl, v, vl, err, sizeof err) == PC_OK, "%s", err);
}

/* ---- the index on its own ---- */

/* 20,000 generated pairs with hints of 0 (so the slots double 11 times and the arena grows):
 * each found with its exact bytes, and keys one byte off, cut short or extended are not. */
START_TEST(test_every_pair_found_after_growth)
{
    memindex *ix = new_index(0, 0, 0);
    unsigned char k[400], v[2000], probe[401];
    const uint64_t n = 20000;
    for (uint64_t i = 0; i < n; i++) {
        size_t kl = gen_key(i, k, sizeof k), vl = gen_val(i, v, sizeof v);
        add_ok(ix, k, kl, v, vl);
    }
    ck_assert_uint_eq(memindex_count(ix), n);
    for (uint64_t i = 0; i < n; i++) {
        size_t kl = gen_key(i, k, sizeof k), vl = gen_val(i, v, sizeof v);
        expect_found(ix, k, kl, v, vl);
        memcpy(probe, k, kl);
        probe[kl - 1] ^= 1; /* the last byte changed */
        expect_missing(ix, probe, kl);
        expect_missing(ix, k, kl - 1); /* a prefix */
        memcpy(probe, k, kl);
        probe[kl] = 0; /* an extension by a NUL, which a C string compare would miss */
        expect_missing(ix, probe, kl + 1);
    }
    uint64_t absent = n + 1;
    expect_missing(ix, &absent, 8);
    expect_missing(ix, NULL, 0);
    memindex_free(ix);
}
END_TEST

/* Sizes at the edges: the empty key, the empty value, one byte, a 1 MiB value (three-byte
 * varint), a 64 KiB key, and keys equal but for their length. */
START_TEST(test_hostile_sizes)
{
    memindex *ix = new_index(4, 16, 0);
    size_t big = 1 << 20;
    unsigned char *bigv = malloc(big), *bigk = malloc(65536);
    ck_assert(bigv != NULL && bigk != NULL);
    uint64_t s = 42;
    for (size_t i = 0; i < big; i++)
        bigv[i] = (unsigned char)rng_next(&s);
    memset(bigk, 0, 65536);
    bigk[65535] = 7;
    add_ok(ix, NULL, 0, "empty key", 9);
    add_ok(ix, "e", 1, NULL, 0);
    add_ok(ix, "a", 1, "b", 1);
    add_ok(ix, "a\0", 2, "a-nul", 5);
    add_ok(ix, "big", 3, bigv, big);
    add_ok(ix, bigk, 65536, "long key", 8);
    expect_found(ix, NULL, 0, "empty key", 9);
    expect_found(ix, "", 0, "empty key", 9);
    expect_found(ix, "e", 1, NULL, 0);
    expect_found(ix, "a", 1, "b", 1);
    expect_found(ix, "a\0", 2, "a-nul", 5);
    expect_found(ix, "big", 3, bigv, big);
    expect_found(ix, bigk, 65536, "long key", 8);
    expect_missing(ix, bigk, 65535);
    expect_missing(ix, "a\0\0", 3);
    ck_assert_uint_eq(memindex_count(ix), 6);
    ck_assert_uint_ge(memindex_bytes(ix), big + 65536);
    memindex_free(ix);
    free(bigv);
    free(bigk);
}
END_TEST

START_TEST(test_duplicate_key_refused)
{
    memindex *ix = new_index(2, 8, 0);
    char err[PC_ERRLEN];
    add_ok(ix, "k", 1, "first", 5);
    ck_assert_int_eq(memindex_add(ix, "k", 1, "second", 6, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "twice") != NULL, "%s", err);
    ck_assert_uint_eq(memindex_count(ix), 1);
    expect_found(ix, "k", 1, "first", 5);
    memindex_free(ix);
}
END_TEST

/* The cap: hints over it fail at once; growing past it fails on the add that would pass it,
 * leaving what was added before intact and the index within the cap. */
START_TEST(test_memory_cap)
{
    char err[PC_ERRLEN];
    memindex *ix = NULL;
    ck_assert_int_eq(memindex_new(1000000, 50000000, 1 << 20, &ix, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_null(ix);
    ck_assert_msg(strstr(err, "over the cap of 1.0 MiB") != NULL, "%s", err);
    /* At least the data, a one-byte length each for key and value, and 8-byte slots at a load
     * of at most 0.7 (memindex.h). */
    ck_assert_uint_ge(memindex_estimate(1000000, 50000000),
                      50000000u + 2u * 1000000 + 8u * 1000000 * 10 / 7);

    size_t cap = 64 << 10;
    ix = new_index(0, 0, cap);
    unsigned char v[100];
    memset(v, 'v', sizeof v);
    uint64_t i = 0;
    pc_status rc = PC_OK;
    for (; i < 100000 && rc == PC_OK; i++) {
        rc = memindex_add(ix, &i, sizeof i, v, sizeof v, err, sizeof err);
        ck_assert_uint_le(memindex_bytes(ix), cap);
    }
    ck_assert_int_eq(rc, PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "over the cap") != NULL, "%s", err);
    uint64_t added = i - 1; /* the last add failed */
    ck_assert_uint_eq(memindex_count(ix), added);
    ck_assert_uint_gt(added, 100); /* most of 64 KiB was usable */
    for (uint64_t j = 0; j < added; j++)
        expect_found(ix, &j, sizeof j, v, sizeof v);
    expect_missing(ix, &added, sizeof added);
    memindex_free(ix);
}
END_TEST

START_TEST(test_estimate_overflow)
{
    ck_assert_uint_eq(memindex_estimate(UINT64_MAX, 0), SIZE_MAX);
    ck_assert_uint_eq(memindex_estimate(10, UINT64_MAX), SIZE_MAX);
    ck_assert_uint_lt(memindex_estimate(0, 0), 1024);
    char err[PC_ERRLEN];
    memindex *ix = NULL;
    ck_assert_int_ne(memindex_new(UINT64_MAX, 0, 0, &ix, err, sizeof err), PC_OK);
    ck_assert_ptr_null(ix);
    memindex_free(NULL);
}
END_TEST

/* ---- over a real table ---- */

/* Publishes a version of tdir whose shard i holds keys "<prefix><i>-<n>" for n in [0, per)
 * with values "<tag>:<key>"; writes its name into version. */
static void publish(const char *tdir, time_t t, const char *tag, int nshards, int per,
                    char *version, size_t cap)
{
    char err[PC_ERRLEN], staging[PATH_MAX], path[PATH_MAX + 32];
    ck_assert_msg(table_staging_create(tdir, "job", staging, sizeof staging, err, sizeof err) ==
                  PC_OK, "%s", err);
    shard_info shards[4];
    ck_assert(nshards <= 4);
    for (int s = 0; s < nshards; s++) {
        snprintf(path, sizeof path, "%s/shard-%05d", staging, s);
        shard_writer *w;
        ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
        for (int n = 0; n < per; n++) {
            char key[64], val[128];
            snprintf(key, sizeof key, "k%d-%06d", s, n);
            snprintf(val, sizeof val, "%s:%s", tag, key);
            ck_assert_msg(shard_writer_put(w, key, strlen(key), val, strlen(val), err, sizeof err) ==
                          PC_OK, "%s", err);
        }
        ck_assert_msg(shard_writer_close(w, &shards[s], err, sizeof err) == PC_OK, "%s", err);
    }
    ck_assert_msg(table_version_name_at(tdir, "job", t, version, cap, err, sizeof err) == PC_OK,
                  "%s", err);
    manifest m = {.format_version = 1, .created = "2026-11-26T02:00:00Z", .job = "job",
                  .version = version, .value_format = "json", .head = "raw",
                  .ranks = nshards, .nshards = nshards, .shards = shards};
    for (int s = 0; s < nshards; s++) {
        m.rows_written += shards[s].rows;
        m.checksum += shards[s].checksum;
    }
    m.rows_in = m.rows_written;
    snprintf(path, sizeof path, "%s/MANIFEST.json", staging);
    ck_assert_msg(manifest_write(path, &m, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(table_publish(tdir, staging, version, err, sizeof err) == PC_OK, "%s", err);
    for (int s = 0; s < nshards; s++)
        shard_info_clear(&shards[s]);
}

/* Every key of every shard found with "<tag>:<key>"; keys around them are not. */
static void expect_table(const memindex *ix, const char *tag, int nshards, int per)
{
    ck_assert_uint_eq(memindex_count(ix), (uint64_t)nshards * (uint64_t)per);
    for (int s = 0; s < nshards; s++) {
        for (int n = 0; n < per; n++) {
            char key[64], val[128];
            snprintf(key, sizeof key, "k%d-%06d", s, n);
            snprintf(val, sizeof val, "%s:%s", tag, key);
            expect_found(ix, key, strlen(key), val, strlen(val));
        }
        char key[64];
        snprintf(key, sizeof key, "k%d-%06d", s, per);
        expect_missing(ix, key, strlen(key));
        snprintf(key, sizeof key, "k%d-", s);
        expect_missing(ix, key, strlen(key));
    }
}

static void version_dir(char *out, size_t cap, const char *tdir, const char *version)
{
    ck_assert_int_lt(snprintf(out, cap, "%s/%s", tdir, version), (int)cap);
}

START_TEST(test_build_from_table)
{
    char tdir[512], version[NAME_MAX + 1], vdir[PATH_MAX], err[PC_ERRLEN];
    make_tmpdir(tdir, sizeof tdir, "memindex");
    publish(tdir, 1700000000, "one", 3, 2000, version, sizeof version);
    version_dir(vdir, sizeof vdir, tdir, version);
    memindex *ix = NULL;
    ck_assert_msg(memindex_build(vdir, 0, &ix, err, sizeof err) == PC_OK, "%s", err);
    expect_table(ix, "one", 3, 2000);
    memindex_free(ix);
    /* A cap under what the manifest's rows and bytes need: refused before any pair is read. */
    ix = NULL;
    ck_assert_int_eq(memindex_build(vdir, 100 << 10, &ix, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_null(ix);
    ck_assert_msg(strstr(err, "over the cap of 0.1 MiB") != NULL, "%s", err);
    /* A version with a shard gone: an error naming it, no index. */
    char shard[PATH_MAX + 16];
    snprintf(shard, sizeof shard, "%s/shard-00001", vdir);
    rm_rf(shard);
    pc_status rc = memindex_build(vdir, 0, &ix, err, sizeof err);
    ck_assert_msg(rc == PC_ERR_IO || rc == PC_ERR_NOINPUT, "status %d: %s", rc, err);
    ck_assert_ptr_null(ix);
    ck_assert_msg(strstr(err, "shard-00001") != NULL, "%s", err);
    rm_rf(tdir);
}
END_TEST

static void holder_expect(holder *h, const char *key, const char *want)
{
    holder_ver *v = holder_acquire(h);
    const memindex *ix = holder_ver_index(v);
    ck_assert_ptr_nonnull(ix);
    if (want != NULL)
        expect_found(ix, key, strlen(key), want, strlen(want));
    else
        expect_missing(ix, key, strlen(key));
    holder_release(h, v);
}

/* A reload builds the new version's index before the switch; a request that still holds the
 * old version keeps reading the old index, later ones read the new one. */
START_TEST(test_holder_reload_swaps_index)
{
    char tdir[512], v1[NAME_MAX + 1], v2[NAME_MAX + 1], err[PC_ERRLEN];
    make_tmpdir(tdir, sizeof tdir, "memindex");
    publish(tdir, 1700000000, "one", 2, 500, v1, sizeof v1);
    holder *h = NULL;
    holder_opts o = {.preload = true};
    ck_assert_msg(holder_open(tdir, &o, &h, err, sizeof err) == PC_OK, "%s", err);
    holder_ver *old = holder_acquire(h);
    ck_assert_str_eq(holder_ver_name(old), v1);
    ck_assert_str_eq(holder_ver_note(old), "");
    expect_table(holder_ver_index(old), "one", 2, 500);

    publish(tdir, 1700000100, "two", 3, 400, v2, sizeof v2);
    bool switched = false;
    ck_assert_msg(holder_reload(h, &switched, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(switched);
    holder_ver *cur = holder_acquire(h);
    ck_assert_str_eq(holder_ver_name(cur), v2);
    expect_table(holder_ver_index(cur), "two", 3, 400);
    expect_table(holder_ver_index(old), "one", 2, 500); /* still held: still whole */
    holder_release(h, old);
    holder_release(h, cur);
    holder_expect(h, "k2-000399", "two:k2-000399");
    holder_expect(h, "k1-000450", NULL); /* in v1 only */
    holder_close(h);
    rm_rf(tdir);
}
END_TEST

/* Over the cap: the version is served from LevelDB (no index) and the note says why. */
START_TEST(test_holder_over_cap_falls_back)
{
    char tdir[512], v1[NAME_MAX + 1], err[PC_ERRLEN];
    make_tmpdir(tdir, sizeof tdir, "memindex");
    publish(tdir, 1700000000, "one", 2, 3000, v1, sizeof v1);
    holder *h = NULL;
    holder_opts o = {.preload = true, .preload_max_bytes = 64 << 10};
    ck_assert_msg(holder_open(tdir, &o, &h, err, sizeof err) == PC_OK, "%s", err);
    holder_ver *v = holder_acquire(h);
    ck_assert_ptr_null(holder_ver_index(v));
    ck_assert_msg(strstr(holder_ver_note(v), "over the cap") != NULL, "%s", holder_ver_note(v));
    char *val = NULL;
    size_t vlen = 0;
    bool found = false;
    ck_assert_msg(table_get(holder_ver_table(v), "k1-000007", 9, &val, &vlen, &found, err,
                            sizeof err) == PC_OK, "%s", err);
    ck_assert(found);
    ck_assert_str_eq(val, "one:k1-000007");
    free(val);
    holder_release(h, v);
    holder_close(h);
    rm_rf(tdir);
}
END_TEST

/* The table files of shard-00000 of tdir/version, whole, so that a test can damage them and
 * put them back. */
typedef struct saved_files {
    int n;
    char path[8][PATH_MAX + 400];
    unsigned char *data[8];
    size_t len[8];
} saved_files;

/* Saves every .ldb file of the shard into sv, then flips bytes 100..2000 of each (data blocks:
 * the footer and index at the end stay whole, so LevelDB still opens the shard). */
static void damage_shard(const char *tdir, const char *version, saved_files *sv)
{
    char shard[PATH_MAX + 64];
    snprintf(shard, sizeof shard, "%s/%s/shard-00000", tdir, version);
    DIR *d = opendir(shard);
    ck_assert_ptr_nonnull(d);
    sv->n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".ldb") != 0)
            continue;
        ck_assert_int_lt(sv->n, 8);
        char *path = sv->path[sv->n];
        snprintf(path, sizeof sv->path[0], "%s/%s", shard, e->d_name);
        FILE *f = fopen(path, "r+b");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        ck_assert_int_gt(size, 2000);
        sv->len[sv->n] = (size_t)size;
        sv->data[sv->n] = malloc((size_t)size);
        ck_assert_ptr_nonnull(sv->data[sv->n]);
        fseek(f, 0, SEEK_SET);
        ck_assert_uint_eq(fread(sv->data[sv->n], 1, (size_t)size, f), (size_t)size);
        for (long off = 100; off < 2000; off += 7) {
            fseek(f, off, SEEK_SET);
            fputc(0x5a, f);
        }
        fclose(f);
        sv->n++;
    }
    closedir(d);
    ck_assert_int_gt(sv->n, 0);
}

static void repair_shard(saved_files *sv)
{
    for (int i = 0; i < sv->n; i++) {
        FILE *f = fopen(sv->path[i], "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(sv->data[i], 1, sv->len[i], f), sv->len[i]);
        fclose(f);
        free(sv->data[i]);
    }
    sv->n = 0;
}

/* A new version whose data is damaged: the preload's scan finds it, the reload fails and the
 * old version (and its index) keeps answering.  With preload_retry_s, the same version is not
 * scanned again (even once repaired) until the time is up, but a newer CURRENT is tried at
 * once; with 0, the repaired version is taken at the next reload. */
static void damaged_version(unsigned retry_s)
{
    char tdir[512], v1[NAME_MAX + 1], v2[NAME_MAX + 1], v3[NAME_MAX + 1], err[PC_ERRLEN];
    make_tmpdir(tdir, sizeof tdir, "memindex");
    publish(tdir, 1700000000, "one", 1, 500, v1, sizeof v1);
    holder *h = NULL;
    holder_opts o = {.preload = true, .preload_retry_s = retry_s};
    ck_assert_msg(holder_open(tdir, &o, &h, err, sizeof err) == PC_OK, "%s", err);
    publish(tdir, 1700000100, "two", 1, 500, v2, sizeof v2);
    saved_files sv;
    damage_shard(tdir, v2, &sv);
    bool switched = true;
    ck_assert_int_eq(holder_reload(h, &switched, err, sizeof err), PC_ERR_IO);
    ck_assert(!switched);
    ck_assert_msg(strstr(err, "preload") != NULL, "%s", err);
    holder_expect(h, "k0-000123", "one:k0-000123");
    char first[PC_ERRLEN];
    snprintf(first, sizeof first, "%s", err);

    repair_shard(&sv);
    pc_status rc = holder_reload(h, &switched, err, sizeof err);
    if (retry_s > 0) {
        ck_assert_int_eq(rc, PC_ERR_IO); /* not scanned again: the same answer */
        ck_assert(!switched);
        ck_assert_str_eq(err, first);
        holder_expect(h, "k0-000123", "one:k0-000123");
        publish(tdir, 1700000200, "three", 1, 500, v3, sizeof v3);
        ck_assert_msg(holder_reload(h, &switched, err, sizeof err) == PC_OK, "%s", err);
        ck_assert(switched);
        holder_expect(h, "k0-000123", "three:k0-000123");
    } else {
        ck_assert_msg(rc == PC_OK, "%s", err);
        ck_assert(switched);
        holder_expect(h, "k0-000123", "two:k0-000123");
    }
    holder_close(h);
    rm_rf(tdir);
}

START_TEST(test_holder_damaged_version_not_switched)
{
    damaged_version(1000000000u);
}
END_TEST

START_TEST(test_holder_damaged_version_retried)
{
    damaged_version(0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memindex");
    TCase *tc = tcase_create("index");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_pair_found_after_growth);
    tcase_add_test(tc, test_hostile_sizes);
    tcase_add_test(tc, test_duplicate_key_refused);
    tcase_add_test(tc, test_memory_cap);
    tcase_add_test(tc, test_estimate_overflow);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("table");
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, test_build_from_table);
    tcase_add_test(tt, test_holder_reload_swaps_index);
    tcase_add_test(tt, test_holder_over_cap_falls_back);
    tcase_add_test(tt, test_holder_damaged_version_not_switched);
    tcase_add_test(tt, test_holder_damaged_version_retried);
    suite_add_tcase(s, tt);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
