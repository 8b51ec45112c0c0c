/* test_storage.c — unit tests of storage/: shards, manifest, staging, publish, lookups,
 * versions (listing, rollback, retention), the sorted scan and SHA-256. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fsutil.h" /* private, used here for temp-dir cleanup and its own tests */
#include "storage/internal.h" /* private: the read views */
#include "storage/sha256.h"
#include "storage/table.h"

/* ---- helpers ---- */

/* A fresh temporary directory; removed by rm_tmp. */
static void mk_tmp(char *dir, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, cap, "%s/test_storage.XXXXXX", base != NULL ? base : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void rm_tmp(const char *dir)
{
    char err[PC_ERRLEN];
    ck_assert_msg(fs_remove_tree(dir, err, sizeof err) == PC_OK, "%s", err);
}

static void join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s/%s", a, b);
    ck_assert(n > 0 && (size_t)n < cap);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

static char *read_text(const char *path, size_t *len)
{
    char *data, err[PC_ERRLEN];
    size_t n;
    ck_assert_msg(fs_read_file(path, 1 << 26, &data, &n, err, sizeof err) == PC_OK, "%s", err);
    if (len != NULL)
        *len = n;
    return data;
}

/* Writes a shard at path with the given NULL-terminated keys (in order) and values
 * "<tag>:<key>"; fills *info. */
static void write_shard(const char *path, const char *const *keys, const char *tag,
                        shard_info *info)
{
    char err[PC_ERRLEN];
    shard_writer *w;
    ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
    for (int i = 0; keys[i] != NULL; i++) {
        char val[256];
        snprintf(val, sizeof val, "%s:%s", tag, keys[i]);
        ck_assert_msg(shard_writer_put(w, keys[i], strlen(keys[i]), val, strlen(val), err,
                                       sizeof err) == PC_OK, "%s", err);
    }
    ck_assert_msg(shard_writer_close(w, info, err, sizeof err) == PC_OK, "%s", err);
}

/* A manifest with every field set; strings are static, so do not manifest_free it. */
static manifest sample_manifest(const char *version, int64_t nshards, shard_info *shards)
{
    static char *paths[] = {"/data/in-1.csv", "/data/in-2.csv"};
    static int64_t sizes[] = {1234, 5678};
    manifest m = {
        .format_version = 1,
        .created = "2026-11-26T02:00:00Z",
        .job = "nightly",
        .version = (char *)version,
        .model_path = "/models/m.onnx",
        .model_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        .job_file = "/etc/precast/nightly.ini",
        .ninputs = 2,
        .input_paths = paths,
        .input_sizes = sizes,
        .value_format = "json",
        .head = "softmax_topk",
        .labels_path = NULL,
        .ranks = nshards,
        .nshards = nshards,
        .shards = shards,
    };
    for (int64_t i = 0; i < nshards; i++) {
        m.rows_written += shards[i].rows;
        m.checksum += shards[i].checksum;
    }
    m.rows_in = m.rows_written + 3;
    m.rows_rejected = 3;
    return m;
}

/* Builds and publishes a version of table tdir: shard i holds shard_keys[i] (NULL-terminated)
 * with values "<tag>:<key>".  Writes the version's name into version. */
static void publish_version(const char *tdir, const char *job, time_t t, const char *tag,
                            int nshards, const char *const *const *shard_keys, char *version,
                            size_t cap)
{
    char err[PC_ERRLEN], staging[PATH_MAX], path[PATH_MAX];
    ck_assert_msg(table_staging_create(tdir, job, staging, sizeof staging, err, sizeof err) ==
                  PC_OK, "%s", err);
    shard_info shards[8];
    ck_assert(nshards <= 8);
    for (int i = 0; i < nshards; i++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%05d", i);
        join(path, sizeof path, staging, name);
        write_shard(path, shard_keys[i], tag, &shards[i]);
    }
    ck_assert_msg(table_version_name_at(tdir, job, t, version, cap, err, sizeof err) == PC_OK,
                  "%s", err);
    manifest m = sample_manifest(version, nshards, shards);
    join(path, sizeof path, staging, "MANIFEST.json");
    ck_assert_msg(manifest_write(path, &m, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(table_publish(tdir, staging, version, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(!is_dir(staging));
    for (int i = 0; i < nshards; i++)
        shard_info_clear(&shards[i]);
}

/* Looks key up in t and checks the outcome: expect == NULL means a miss. */
static void expect_get(table *t, const char *key, const char *expect)
{
    char err[PC_ERRLEN], *val = NULL;
    size_t vlen = 99;
    bool found = true;
    ck_assert_msg(table_get(t, key, strlen(key), &val, &vlen, &found, err, sizeof err) == PC_OK,
                  "%s", err);
    if (expect == NULL) {
        ck_assert_msg(!found, "key %s: expected a miss, got \"%s\"", key, val ? val : "");
        ck_assert(val == NULL && vlen == 0);
    } else {
        ck_assert_msg(found, "key %s: expected \"%s\", got a miss", key, expect);
        ck_assert_uint_eq(vlen, strlen(expect));
        ck_assert_str_eq(val, expect);
    }
    free(val);
}

/* ---- pair hash ---- */

START_TEST(test_pair_hash)
{
    /* Pinned values (computed independently in Python from the definition in table.h). */
    const char *v = "{\"label\":\"7\"}";
    ck_assert_uint_eq(table_pair_hash("key-1", 5, v, strlen(v)), 0x4accd8855afdc689ULL);
    ck_assert_uint_eq(table_pair_hash(NULL, 0, NULL, 0), 0x68752350ae1d483fULL);
    /* The split between key and value matters. */
    ck_assert_uint_ne(table_pair_hash("ab", 2, "c", 1), table_pair_hash("a", 1, "bc", 1 + 1));
    ck_assert_uint_ne(table_pair_hash("a", 1, "b", 1), table_pair_hash("b", 1, "a", 1));
}
END_TEST

/* ---- shards ---- */

START_TEST(test_shard_round_trip)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "shard-00007");
    shard_writer *w;
    ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
    /* Enough pairs to cross several write batches (4096 puts) and values of varying size,
     * including empty ones and binary bytes. */
    const int64_t n = 10000;
    uint64_t sum = 0;
    int64_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        char key[32], val[300];
        int kl = snprintf(key, sizeof key, "id-%08" PRId64, i);
        size_t vl = (size_t)(i % 257);
        for (size_t j = 0; j < vl; j++)
            val[j] = (char)((i * 31 + (int64_t)j) & 0xff);
        sum += table_pair_hash(key, (size_t)kl, val, vl);
        bytes += kl + (int64_t)vl;
        ck_assert_msg(shard_writer_put(w, key, (size_t)kl, val, vl, err, sizeof err) == PC_OK,
                      "%s", err);
    }
    shard_info info;
    ck_assert_msg(shard_writer_close(w, &info, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(info.dir, "shard-00007");
    ck_assert_int_eq(info.rows, n);
    ck_assert_int_eq(info.bytes, bytes);
    ck_assert_uint_eq(info.checksum, sum);
    ck_assert_uint_eq(info.first_key_len, 11);
    ck_assert_mem_eq(info.first_key, "id-00000000", 11);
    ck_assert_uint_eq(info.last_key_len, 11);
    ck_assert_mem_eq(info.last_key, "id-00009999", 11);

    int64_t rows = -1;
    uint64_t cs = 0;
    ck_assert_msg(shard_scan(path, &rows, &cs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(rows, n);
    ck_assert_uint_eq(cs, sum);
    ck_assert_msg(shard_verify(path, &info, err, sizeof err) == PC_OK, "%s", err);

    /* shard_verify notices each kind of difference. */
    info.rows--;
    ck_assert_int_eq(shard_verify(path, &info, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "rows"));
    info.rows++;
    info.checksum ^= 1;
    ck_assert_int_eq(shard_verify(path, &info, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "checksum"));
    info.checksum ^= 1;
    info.last_key[10] = '8';
    ck_assert_int_eq(shard_verify(path, &info, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "last key"));
    shard_info_clear(&info);
    ck_assert_ptr_null(info.dir);

    /* A second writer on the same path is refused. */
    ck_assert_int_eq(shard_writer_open(path, &w, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_null(w);
    /* A missing shard is an I/O error, and scanning it does not create it. */
    join(path, sizeof path, dir, "no-such-shard");
    ck_assert_int_eq(shard_scan(path, &rows, &cs, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "no-such-shard"));
    ck_assert(!fs_exists(path));
    rm_tmp(dir);
}
END_TEST

START_TEST(test_shard_empty)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "shard-00000");
    shard_writer *w;
    ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
    shard_info info;
    ck_assert_msg(shard_writer_close(w, &info, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(info.rows, 0);
    ck_assert_ptr_null(info.first_key);
    ck_assert_ptr_null(info.last_key);
    ck_assert_uint_eq(info.checksum, 0);
    int64_t rows = -1;
    uint64_t cs = 1;
    ck_assert_msg(shard_scan(path, &rows, &cs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(rows, 0);
    ck_assert_uint_eq(cs, 0);
    ck_assert_msg(shard_verify(path, &info, err, sizeof err) == PC_OK, "%s", err);
    shard_info_clear(&info);
    shard_writer_abort(NULL);
    shard_info_clear(NULL);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_shard_out_of_order)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "shard-00000");
    shard_writer *w;
    ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(shard_writer_put(w, "", 0, "e", 1, err, sizeof err), PC_OK);
    ck_assert_int_eq(shard_writer_put(w, "abc", 3, "1", 1, err, sizeof err), PC_OK);
    /* equal */
    ck_assert_int_eq(shard_writer_put(w, "abc", 3, "2", 1, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_msg(strstr(err, "\"abc\"") != NULL && strstr(err, "out of order") != NULL, "%s",
                  err);
    /* a prefix comes before its extensions */
    ck_assert_int_eq(shard_writer_put(w, "ab", 2, "3", 1, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_msg(strstr(err, "\"ab\"") != NULL && strstr(err, "\"abc\"") != NULL, "%s", err);
    /* bytewise: 0x80 sorts after 'z' (unsigned), and binary keys are shown escaped */
    ck_assert_int_eq(shard_writer_put(w, "abc\x80", 4, "4", 1, err, sizeof err), PC_OK);
    ck_assert_int_eq(shard_writer_put(w, "abcz", 4, "5", 1, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_msg(strstr(err, "abc\\x80") != NULL, "%s", err);
    ck_assert_int_eq(shard_writer_put(w, "", 0, "6", 1, err, sizeof err), PC_ERR_INTERNAL);
    /* the writer goes on after a refused put */
    ck_assert_int_eq(shard_writer_put(w, "b", 1, "7", 1, err, sizeof err), PC_OK);
    shard_info info;
    ck_assert_msg(shard_writer_close(w, &info, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(info.rows, 4);
    ck_assert_uint_eq(info.first_key_len, 0);
    ck_assert_ptr_nonnull(info.first_key); /* the empty key, not an empty shard */
    ck_assert_uint_eq(info.last_key_len, 1);
    int64_t rows;
    uint64_t cs;
    ck_assert_msg(shard_scan(path, &rows, &cs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(rows, 4);
    ck_assert_uint_eq(cs, info.checksum);
    shard_info_clear(&info);
    rm_tmp(dir);
}
END_TEST

/* Flips n bytes in the middle of the largest file of dir whose name ends with suffix. */
static void corrupt_file(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char best[PATH_MAX] = "";
    off_t best_size = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name), sl = strlen(suffix);
        if (nl < sl || strcmp(de->d_name + nl - sl, suffix) != 0)
            continue;
        char p[PATH_MAX];
        join(p, sizeof p, dir, de->d_name);
        struct stat st;
        ck_assert(stat(p, &st) == 0);
        if (st.st_size > best_size) {
            best_size = st.st_size;
            memcpy(best, p, sizeof p);
        }
    }
    closedir(d);
    ck_assert_msg(best_size > 4096, "no %s file of more than 4 KiB in %s", suffix, dir);
    int fd = open(best, O_RDWR);
    ck_assert(fd >= 0);
    unsigned char buf[64];
    off_t at = best_size / 2;
    ck_assert(pread(fd, buf, sizeof buf, at) == (ssize_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] ^= 0x5a;
    ck_assert(pwrite(fd, buf, sizeof buf, at) == (ssize_t)sizeof buf);
    close(fd);
}

static void write_big_shard(const char *path, shard_info *info)
{
    char err[PC_ERRLEN];
    shard_writer *w;
    ck_assert_msg(shard_writer_open(path, &w, err, sizeof err) == PC_OK, "%s", err);
    for (int i = 0; i < 3000; i++) {
        char key[32], val[128];
        int kl = snprintf(key, sizeof key, "k%06d", i);
        /* values that do not compress away, so the files are large */
        for (size_t j = 0; j < sizeof val; j++)
            val[j] = (char)(((unsigned)i * 2654435761u + (unsigned)j * 40503u) >> 13);
        ck_assert_msg(shard_writer_put(w, key, (size_t)kl, val, sizeof val, err, sizeof err) ==
                      PC_OK, "%s", err);
    }
    ck_assert_msg(shard_writer_close(w, info, err, sizeof err) == PC_OK, "%s", err);
}

/* "name size" per entry of dir, sorted, into out: the shard's files as a reader sees them. */
static void list_files(const char *dir, char *out, size_t cap)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX];
        join(p, sizeof p, dir, names[i]->d_name);
        struct stat st;
        ck_assert(lstat(p, &st) == 0);
        len += (size_t)snprintf(out + len, cap - len, "%s %lld %lld\n", names[i]->d_name,
                                (long long)st.st_size, (long long)st.st_mtime);
        ck_assert_uint_lt(len, cap);
        free(names[i]);
    }
    free(names);
}

START_TEST(test_shard_sealed_and_read_only)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "shard-00000");
    shard_info info;
    write_big_shard(path, &info);
    /* The writer leaves every pair in table files: logs are empty, so readers replay nothing. */
    char before[8192], after[8192];
    list_files(path, before, sizeof before);
    ck_assert_msg(strstr(before, ".ldb") != NULL, "%s", before);
    for (const char *l = before; (l = strstr(l, ".log ")) != NULL; l++)
        ck_assert_msg(strncmp(l, ".log 0 ", 7) == 0, "a log with pairs left:\n%s", before);
    /* Two readers at once (LevelDB alone would refuse the second: its lock), and neither
     * writes a byte into the shard. */
    st_shard_view a = {0}, b = {0};
    leveldb_options_t *opts = leveldb_options_create();
    ck_assert_msg(st_shard_view_open(path, opts, &a, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(st_shard_view_open(path, opts, &b, err, sizeof err) == PC_OK, "%s", err);
    int64_t rows;
    uint64_t cs;
    ck_assert_msg(shard_scan(path, &rows, &cs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_uint_eq(cs, info.checksum);
    char view[PATH_MAX];
    memcpy(view, a.dir, sizeof view);
    st_shard_view_close(&a);
    st_shard_view_close(&b);
    leveldb_options_destroy(opts);
    ck_assert_msg(!fs_exists(view), "%s left behind", view);
    list_files(path, after, sizeof after);
    ck_assert_str_eq(before, after);
    shard_info_clear(&info);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_shard_corrupt_table)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "shard-00000");
    shard_info info;
    write_big_shard(path, &info);
    int64_t rows;
    uint64_t cs;
    ck_assert_msg(shard_scan(path, &rows, &cs, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_uint_eq(cs, info.checksum);
    corrupt_file(path, ".ldb");
    ck_assert_int_eq(shard_scan(path, &rows, &cs, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    ck_assert_int_eq(shard_verify(path, &info, err, sizeof err), PC_ERR_IO);
    shard_info_clear(&info);
    rm_tmp(dir);
}
END_TEST

/* ---- manifest ---- */

static void check_key(const char *got, size_t glen, const char *want, size_t wlen)
{
    if (want == NULL) {
        ck_assert_ptr_null(got);
        return;
    }
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(glen, wlen);
    ck_assert_mem_eq(got, want, wlen);
    ck_assert_int_eq(got[glen], '\0');
}

START_TEST(test_manifest_round_trip)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "MANIFEST.json");
    /* Keys in order, each exercising one part of the encoding. */
#define K(s) {s, sizeof(s) - 1}
    static const struct { const char *k; size_t n; } keys[] = {
        K(""),                                /* the empty key */
        K("\x00\x01\x1f"),                    /* NUL and control bytes */
        K("a\"quoted\"\\back\\slash\n\t\x7f"), /* quote, backslash, controls, DEL */
        K("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), /* valid UTF-8 */
        K("d\xc0\x80"),                       /* overlong NUL: not UTF-8 */
        K("e\xed\xa0\x80"),                   /* a surrogate: not UTF-8 */
        K("f\xff\xfe\"\\"),                   /* bytes that are never UTF-8 */
        K("g\xe2\x82"),                       /* truncated sequence */
    };
#undef K
    shard_info shards[5] = {
        {.dir = "shard-00000", .first_key = (char *)keys[0].k, .first_key_len = keys[0].n,
         .last_key = (char *)keys[1].k, .last_key_len = keys[1].n, .rows = 2, .bytes = 10,
         .checksum = 0xffffffffffffffffULL},
        {.dir = "shard-00001", .first_key = (char *)keys[2].k, .first_key_len = keys[2].n,
         .last_key = (char *)keys[3].k, .last_key_len = keys[3].n, .rows = 7, .bytes = 70,
         .checksum = 0x8000000000000001ULL},
        {.dir = "shard-00002"}, /* empty */
        {.dir = "shard-00003", .first_key = (char *)keys[4].k, .first_key_len = keys[4].n,
         .last_key = (char *)keys[5].k, .last_key_len = keys[5].n, .rows = 3, .bytes = 31,
         .checksum = 1},
        {.dir = "shard-00004", .first_key = (char *)keys[6].k, .first_key_len = keys[6].n,
         .last_key = (char *)keys[7].k, .last_key_len = keys[7].n, .rows = 9000000000LL,
         .bytes = INT64_MAX, .checksum = 0x0123456789abcdefULL},
    };
    manifest m = sample_manifest("v20261126T020000Z-nightly", 5, shards);
    char *paths[] = {"/data/\xff\xfe-latin1-\xe9.csv", "/data/\"quoted\" \\ path\n.csv",
                     "/data/ok.csv"};
    int64_t sizes[] = {0, INT64_MAX, 42};
    m.ninputs = 3;
    m.input_paths = paths;
    m.input_sizes = sizes;
    m.labels_path = "/models/labels \xe2\x9c\x93.txt";
    m.checksum = 0xfedcba9876543210ULL;
    m.rows_in = 9000000010LL;
    ck_assert_msg(manifest_write(path, &m, err, sizeof err) == PC_OK, "%s", err);

    char tmp[PATH_MAX];
    int tn = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert(tn > 0 && (size_t)tn < sizeof tmp);
    ck_assert(!fs_exists(tmp));
    char *text = read_text(path, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"checksum\": \"fedcba9876543210\""));
    ck_assert_ptr_nonnull(strstr(text, "\"first_key_hex\": \"64c080\""));
    ck_assert_ptr_nonnull(strstr(text, "\"last_key\": \"\\u0000\\u0001\\u001f\""));
    free(text);

    manifest *r;
    ck_assert_msg(manifest_read(path, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(r->format_version, 1);
    ck_assert_str_eq(r->created, m.created);
    ck_assert_str_eq(r->job, m.job);
    ck_assert_str_eq(r->version, m.version);
    ck_assert_str_eq(r->model_path, m.model_path);
    ck_assert_str_eq(r->model_sha256, m.model_sha256);
    ck_assert_str_eq(r->job_file, m.job_file);
    ck_assert_int_eq(r->ninputs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(r->input_paths[i], paths[i]);
        ck_assert_int_eq(r->input_sizes[i], sizes[i]);
    }
    ck_assert_int_eq(r->rows_in, m.rows_in);
    ck_assert_int_eq(r->rows_written, m.rows_written);
    ck_assert_int_eq(r->rows_rejected, m.rows_rejected);
    ck_assert_uint_eq(r->checksum, m.checksum);
    ck_assert_str_eq(r->value_format, "json");
    ck_assert_str_eq(r->head, "softmax_topk");
    ck_assert_str_eq(r->labels_path, m.labels_path);
    ck_assert_int_eq(r->ranks, 5);
    ck_assert_int_eq(r->nshards, 5);
    for (int i = 0; i < 5; i++) {
        const shard_info *g = &r->shards[i], *w = &shards[i];
        ck_assert_str_eq(g->dir, w->dir);
        check_key(g->first_key, g->first_key_len, w->first_key, w->first_key_len);
        check_key(g->last_key, g->last_key_len, w->last_key, w->last_key_len);
        ck_assert_int_eq(g->rows, w->rows);
        ck_assert_int_eq(g->bytes, w->bytes);
        ck_assert_uint_eq(g->checksum, w->checksum);
    }
    manifest_free(r);

    /* labels_path NULL and no inputs, no shards */
    manifest m2 = sample_manifest("v1-x", 0, NULL);
    m2.labels_path = NULL;
    m2.model_sha256 = NULL;
    m2.ninputs = 0;
    m2.input_paths = NULL;
    m2.input_sizes = NULL;
    ck_assert_msg(manifest_write(path, &m2, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(manifest_read(path, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_ptr_null(r->labels_path);
    ck_assert_ptr_null(r->model_sha256);
    ck_assert_int_eq(r->ninputs, 0);
    ck_assert_int_eq(r->nshards, 0);
    manifest_free(r);
    manifest_free(NULL);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_manifest_write_refuses_invalid)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "MANIFEST.json");
    shard_info shards[2] = {
        {.dir = "shard-00000", .first_key = "b", .first_key_len = 1, .last_key = "d",
         .last_key_len = 1, .rows = 2},
        {.dir = "shard-00001", .first_key = "c", .first_key_len = 1, .last_key = "e",
         .last_key_len = 1, .rows = 2},
    };
    manifest m = sample_manifest("v1", 2, shards);
    ck_assert_int_eq(manifest_write(path, &m, err, sizeof err), PC_ERR_INTERNAL); /* overlap */
    ck_assert_ptr_nonnull(strstr(err, "shards[1]"));
    shards[1].dir = "../escape";
    shards[1].first_key = "x";
    shards[1].last_key = "y";
    ck_assert_int_eq(manifest_write(path, &m, err, sizeof err), PC_ERR_INTERNAL);
    shards[1].dir = "shard-00001";
    m.version = NULL;
    ck_assert_int_eq(manifest_write(path, &m, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert(!fs_exists(path));
    /* An unwritable place: nothing left behind, the right code. */
    m.version = "v1";
    join(path, sizeof path, dir, "no-such-dir/MANIFEST.json");
    ck_assert_int_eq(manifest_write(path, &m, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_nonnull(strstr(err, "no-such-dir"));
    rm_tmp(dir);
}
END_TEST

/* A small valid manifest as text, for the hostile-input tests. */
static const char *valid_json =
    "{\"format_version\": 1, \"created\": \"2026-11-26T02:00:00Z\", \"job\": \"j\", "
    "\"version\": \"v1\", \"model_path\": \"m\", \"model_sha256\": null, \"job_file\": \"f\", "
    "\"inputs\": [{\"path\": \"i\", \"size\": 3}], \"rows_in\": 3, \"rows_written\": 3, "
    "\"rows_rejected\": 0, \"checksum\": \"00000000000000ff\", \"value_format\": \"json\", "
    "\"head\": \"auto\", \"labels_path\": null, \"ranks\": 2, \"unknown\": [1, {\"x\": true}], "
    "\"shards\": [{\"dir\": \"shard-00000\", \"first_key\": \"a\\u00e9\\ud83d\\ude00\", "
    "\"last_key_hex\": \"62ff\", \"rows\": 2, \"bytes\": 4, \"checksum\": \"000000000000000f\"},"
    " {\"dir\": \"shard-00001\", \"first_key\": null, \"last_key\": null, \"rows\": 0, "
    "\"bytes\": 0, \"checksum\": \"0000000000000000\"}]}\n";

START_TEST(test_manifest_hostile)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "MANIFEST.json");
    manifest *m = (manifest *)1;
    ck_assert_int_eq(manifest_read(path, &m, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(m);

    write_text(path, valid_json);
    ck_assert_msg(manifest_read(path, &m, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_uint_eq(m->shards[0].first_key_len, 7);
    ck_assert_mem_eq(m->shards[0].first_key, "a\xc3\xa9\xf0\x9f\x98\x80", 7);
    ck_assert_mem_eq(m->shards[0].last_key, "b\xff", 2);
    ck_assert_ptr_null(m->shards[1].first_key);
    manifest_free(m);

    static const char *bad[] = {
        "",
        "   ",
        "null",
        "[]",
        "{",
        "{}",
        "{\"format_version\": 2}",
        "{\"format_version\": 1.0}",
        "{\"format_version\": 01}",
        "{\"format_version\": 1,}",
        "{\"format_version\": 1} x",
        "{\"format_version\": 99999999999999999999999}",
        "{\"a\": \"\\ud800\"}",
        "{\"a\": \"\\udc00x\"}",
        "{\"a\": \"\\u12\"}",
        "{\"a\": \"\\x\"}",
        "{\"a\": \"\xff\"}",
        "{\"a\": \"\xc0\x80\"}",
        "{\"a\": \"tab\there\"}",
        "{\"a\": tru}",
        "{\"a\" 1}",
        "{1: 1}",
        "{\"a\": -}",
        "{\"a\": 1e}",
        "{\"a\": .5}",
        "{\"a\": [1, 2,]}",
        "{\"a\": \"unterminated",
        "{\"a\": \"esc\\",
        "\xef\xbb\xbf{}", /* a byte-order mark is not JSON */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i]);
        m = (manifest *)1;
        err[0] = '\0';
        pc_status rc = manifest_read(path, &m, err, sizeof err);
        ck_assert_msg(rc == PC_ERR_IO, "case %zu (%s): status %d", i, bad[i], rc);
        ck_assert_ptr_null(m);
        ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "case %zu: %s", i, err);
    }

    /* Field-level violations of an otherwise valid manifest. */
    static const struct { const char *from, *to; } edits[] = {
        {"\"rows_in\": 3", "\"rows_in\": -3"},
        {"\"rows_in\": 3", "\"rows_in\": \"3\""},
        {"\"rows_in\": 3", "\"rows_in\": 3, \"rows_in\": 3"},
        {"\"checksum\": \"00000000000000ff\"", "\"checksum\": \"ff\""},
        {"\"checksum\": \"00000000000000ff\"", "\"checksum\": 255"},
        {"\"checksum\": \"00000000000000ff\"", "\"checksum\": \"00000000000000fg\""},
        {"\"dir\": \"shard-00000\"", "\"dir\": \"../../etc\""},
        {"\"dir\": \"shard-00000\"", "\"dir\": \"\""},
        {"\"dir\": \"shard-00000\"", "\"dir\": null"},
        {"\"job\": \"j\"", "\"job\": \"j\\u0000k\""},
        {"\"job\": \"j\"", "\"job\": null"},
        {"\"job\": \"j\"", "\"job_hex\": \"6a\", \"job\": \"j\""},
        {"\"job\": \"j\"", "\"job_hex\": \"6\""},
        {"\"job\": \"j\"", "\"job_hex\": \"zz\""},
        {"\"last_key_hex\": \"62ff\"", "\"last_key_hex\": \"00\""}, /* last < first */
        {"\"last_key_hex\": \"62ff\"", "\"last_key\": null"},
        {"\"rows\": 0", "\"rows\": 1"},
        {"\"first_key\": null, \"last_key\": null",
         "\"first_key\": \"a\", \"last_key\": \"c\""}, /* overlaps shard 0 */
        {"\"version\": \"v1\"", "\"version\": \"a/b\""},
        {"\"inputs\": [{\"path\": \"i\", \"size\": 3}]", "\"inputs\": {}"},
        {"\"inputs\": [{\"path\": \"i\", \"size\": 3}]", "\"inputs\": [3]"},
        {"\"shards\": [", "\"shards\": [7, "},
        {"\"ranks\": 2, ", ""},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(valid_json, edits[i].from);
        ck_assert_msg(at != NULL, "edit %zu: '%s' not in the sample", i, edits[i].from);
        char text[4096];
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - valid_json), valid_json, edits[i].to,
                 at + strlen(edits[i].from));
        write_text(path, text);
        m = (manifest *)1;
        pc_status rc = manifest_read(path, &m, err, sizeof err);
        ck_assert_msg(rc == PC_ERR_IO, "edit %zu (%s): status %d", i, edits[i].to, rc);
        ck_assert_ptr_null(m);
    }

    /* Every proper prefix of a valid manifest is refused (the last two bytes are "}\n"). */
    size_t n = strlen(valid_json);
    for (size_t len = 0; len + 1 < n; len++) {
        char *text = malloc(len + 1);
        memcpy(text, valid_json, len);
        text[len] = '\0';
        write_text(path, text);
        free(text);
        m = (manifest *)1;
        ck_assert_msg(manifest_read(path, &m, err, sizeof err) == PC_ERR_IO, "prefix %zu", len);
        ck_assert_ptr_null(m);
    }

    /* Deep nesting is refused, not a stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    write_text(path, deep);
    free(deep);
    ck_assert_int_eq(manifest_read(path, &m, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "nested"));

    /* Random byte changes: any outcome but a crash or a leak (valgrind/ASan watch). */
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 300; round++) {
        char text[4096];
        memcpy(text, valid_json, n + 1);
        for (int k = 0; k < 1 + round % 4; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(s >> 33) % n;
            text[at] = (char)(s >> 20);
            if (text[at] == '\0')
                text[at] = '\x01';
        }
        write_text(path, text);
        m = NULL;
        pc_status rc = manifest_read(path, &m, err, sizeof err);
        ck_assert(rc == PC_OK || rc == PC_ERR_IO);
        ck_assert((rc == PC_OK) == (m != NULL));
        manifest_free(m);
    }
    rm_tmp(dir);
}
END_TEST

/* ---- staging, versions, publish ---- */

START_TEST(test_staging_stale_replaced)
{
    char dir[PATH_MAX], tdir[PATH_MAX], staging[PATH_MAX], p[PATH_MAX], outside[PATH_MAX],
        err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "a/b/table"); /* mkdir -p */
    ck_assert_msg(table_staging_create(tdir, "nightly", staging, sizeof staging, err,
                                       sizeof err) == PC_OK, "%s", err);
    join(p, sizeof p, tdir, ".staging-nightly");
    ck_assert_str_eq(staging, p);
    ck_assert(is_dir(staging));

    /* What a killed run leaves: files, a half-written shard, and a symlink to the outside. */
    join(outside, sizeof outside, dir, "outside");
    ck_assert(mkdir(outside, 0777) == 0);
    join(p, sizeof p, outside, "precious");
    write_text(p, "keep me");
    join(p, sizeof p, staging, "MANIFEST.json.tmp");
    write_text(p, "{");
    join(p, sizeof p, staging, "shard-00000");
    shard_info info;
    const char *keys[] = {"a", "b", NULL};
    write_shard(p, keys, "old", &info);
    shard_info_clear(&info);
    join(p, sizeof p, staging, "link");
    ck_assert(symlink(outside, p) == 0);

    char staging2[PATH_MAX];
    ck_assert_msg(table_staging_create(tdir, "nightly", staging2, sizeof staging2, err,
                                       sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(staging2, staging);
    DIR *d = opendir(staging);
    ck_assert_ptr_nonnull(d);
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            entries++;
    closedir(d);
    ck_assert_int_eq(entries, 0);
    join(p, sizeof p, outside, "precious");
    ck_assert(fs_exists(p)); /* the symlink was removed, not followed */

    /* table_staging_remove only removes staging dirs. */
    table_staging_remove(outside);
    ck_assert(fs_exists(p));
    table_staging_remove(NULL);
    table_staging_remove(staging);
    ck_assert(!fs_exists(staging));

    /* Bad job names, a table dir that cannot be made, a path that does not fit. */
    ck_assert_int_eq(table_staging_create(tdir, "../x", staging, sizeof staging, err, sizeof err),
                     PC_ERR_CONFIG);
    ck_assert_int_eq(table_staging_create(tdir, "", staging, sizeof staging, err, sizeof err),
                     PC_ERR_CONFIG);
    ck_assert_int_eq(table_staging_create(tdir, ".hidden", staging, sizeof staging, err,
                                          sizeof err), PC_ERR_CONFIG);
    join(p, sizeof p, outside, "precious/table"); /* under a regular file */
    ck_assert_int_eq(table_staging_create(p, "j", staging, sizeof staging, err, sizeof err),
                     PC_ERR_CANTCREAT);
    char *longdir = malloc(PATH_MAX + 100);
    memset(longdir, 'x', PATH_MAX + 99);
    longdir[PATH_MAX + 99] = '\0';
    ck_assert_int_eq(table_staging_create(longdir, "j", staging, sizeof staging, err,
                                          sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
    free(longdir);
    char small[8];
    ck_assert_int_eq(table_staging_create(tdir, "j", small, sizeof small, err, sizeof err),
                     PC_ERR_INTERNAL);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_version_names)
{
    char dir[PATH_MAX], p[PATH_MAX], name[256], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    time_t t = 1795658400; /* 2026-11-26T02:00:00Z */
    ck_assert_msg(table_version_name_at(dir, "nightly", t, name, sizeof name, err, sizeof err) ==
                  PC_OK, "%s", err);
    ck_assert_str_eq(name, "v20261126T020000Z-nightly");
    join(p, sizeof p, dir, name);
    ck_assert(mkdir(p, 0777) == 0);
    ck_assert_int_eq(table_version_name_at(dir, "nightly", t, name, sizeof name, err, sizeof err),
                     PC_OK);
    ck_assert_str_eq(name, "v20261126T020000Z-nightly-2");
    join(p, sizeof p, dir, name);
    ck_assert(mkdir(p, 0777) == 0);
    ck_assert_int_eq(table_version_name_at(dir, "nightly", t, name, sizeof name, err, sizeof err),
                     PC_OK);
    ck_assert_str_eq(name, "v20261126T020000Z-nightly-3");
    ck_assert_int_eq(table_version_name_at(dir, "a/b", t, name, sizeof name, err, sizeof err),
                     PC_ERR_CONFIG);
    ck_assert_int_eq(table_version_name_at(dir, "nightly", t, name, 10, err, sizeof err),
                     PC_ERR_INTERNAL);
    ck_assert_int_eq(table_version_name(dir, "nightly", name, sizeof name, err, sizeof err),
                     PC_OK);
    ck_assert_int_eq(name[0], 'v');
    char iso[32];
    ck_assert_int_eq(table_iso8601(t, iso, sizeof iso, err, sizeof err), PC_OK);
    ck_assert_str_eq(iso, "2026-11-26T02:00:00Z");
    ck_assert_int_eq(table_iso8601(t, iso, 20, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert(table_job_name_valid("Nightly_2.v-1"));
    ck_assert(!table_job_name_valid("-x"));
    ck_assert(!table_job_name_valid("a b"));
    ck_assert(!table_job_name_valid(NULL));
    rm_tmp(dir);
}
END_TEST

START_TEST(test_current_missing_or_corrupt)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], v[256], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "none");
    ck_assert_int_eq(table_current(tdir, v, sizeof v, err, sizeof err), PC_ERR_NOINPUT);
    table *t = (table *)1;
    ck_assert_int_eq(table_open(tdir, &t, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(table_current(dir, v, sizeof v, err, sizeof err), PC_ERR_NOINPUT);
    join(p, sizeof p, dir, "CURRENT");
    static const char *bad[] = {"", "\n", "v1", "v1\nv2\n", "../x\n", ".staging-j\n",
                                "a/b\n", "v 1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(p, bad[i]);
        ck_assert_msg(table_current(dir, v, sizeof v, err, sizeof err) == PC_ERR_IO, "case %zu",
                      i);
    }
    write_text(p, "v20261126T020000Z-nightly\n");
    ck_assert_int_eq(table_current(dir, v, sizeof v, err, sizeof err), PC_OK);
    ck_assert_str_eq(v, "v20261126T020000Z-nightly");
    ck_assert_int_eq(table_current(dir, v, 8, err, sizeof err), PC_ERR_IO);
    /* CURRENT names a version that is not there */
    ck_assert_int_eq(table_open(dir, &t, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(t);
    table_close(NULL);
    rm_tmp(dir);
}
END_TEST

static const char *const keys_a[] = {"apple", "banana", "cherry", NULL};
static const char *const keys_b[] = {"date", "elder", NULL};

START_TEST(test_publish_twice)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], v1[256], v2[256], cur[256],
        err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    const char *const *shards[] = {keys_a, keys_b};
    time_t t = 1795658400;
    publish_version(tdir, "nightly", t, "one", 2, shards, v1, sizeof v1);
    ck_assert_int_eq(table_current(tdir, cur, sizeof cur, err, sizeof err), PC_OK);
    ck_assert_str_eq(cur, v1);
    table *tb;
    ck_assert_msg(table_open(tdir, &tb, err, sizeof err) == PC_OK, "%s", err);
    expect_get(tb, "banana", "one:banana");
    table_close(tb);

    /* Same second: the second version gets "-2". */
    publish_version(tdir, "nightly", t, "two", 2, shards, v2, sizeof v2);
    ck_assert_str_eq(v1, "v20261126T020000Z-nightly");
    ck_assert_str_eq(v2, "v20261126T020000Z-nightly-2");
    ck_assert_int_eq(table_current(tdir, cur, sizeof cur, err, sizeof err), PC_OK);
    ck_assert_str_eq(cur, v2);
    join(p, sizeof p, tdir, v1);
    ck_assert(is_dir(p));
    join(p, sizeof p, tdir, v2);
    ck_assert(is_dir(p));
    join(p, sizeof p, tdir, "CURRENT.tmp");
    ck_assert(!fs_exists(p));
    char *text = read_text(strcat(strcpy(p, tdir), "/CURRENT"), NULL);
    char want[300];
    snprintf(want, sizeof want, "%s\n", v2);
    ck_assert_str_eq(text, want);
    free(text);

    ck_assert_msg(table_open(tdir, &tb, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(table_manifest(tb)->version, v2);
    ck_assert_int_eq(table_manifest(tb)->rows_written, 5);
    expect_get(tb, "apple", "two:apple");
    expect_get(tb, "elder", "two:elder");
    ck_assert_ptr_nonnull(strstr(table_version_dir(tb), v2));
    table_close(tb);

    /* The old version stays readable by name (rollback). */
    ck_assert_msg(table_open_version(tdir, v1, &tb, err, sizeof err) == PC_OK, "%s", err);
    expect_get(tb, "apple", "one:apple");
    table_close(tb);
    ck_assert_int_eq(table_open_version(tdir, "../table", &tb, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_int_eq(table_open_version(tdir, "v-none", &tb, err, sizeof err), PC_ERR_NOINPUT);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_publish_failures_leave_current)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], v1[256], v2[256], cur[256],
        staging[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    const char *const *shards[] = {keys_a, keys_b};
    publish_version(tdir, "nightly", 1795658400, "one", 2, shards, v1, sizeof v1);

    /* 1. The staging dir does not exist. */
    join(p, sizeof p, tdir, ".staging-nightly");
    ck_assert_int_eq(table_publish(tdir, p, "v20300101T000000Z-nightly", err, sizeof err),
                     PC_ERR_NOINPUT);
    ck_assert_ptr_nonnull(strstr(err, ".staging-nightly"));

    /* 2. Staging without a manifest; 3. a manifest naming another version;
     * 4. a version name that is taken. */
    ck_assert_int_eq(table_staging_create(tdir, "nightly", staging, sizeof staging, err,
                                          sizeof err), PC_OK);
    join(p, sizeof p, staging, "shard-00000");
    shard_info info;
    write_shard(p, keys_a, "two", &info);
    ck_assert_int_eq(table_version_name(tdir, "nightly", v2, sizeof v2, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_publish(tdir, staging, v2, err, sizeof err), PC_ERR_INTERNAL);
    manifest m = sample_manifest("v-other", 1, &info);
    join(p, sizeof p, staging, "MANIFEST.json");
    ck_assert_int_eq(manifest_write(p, &m, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_publish(tdir, staging, v2, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err, "another version"));
    m.version = v1;
    ck_assert_msg(manifest_write(p, &m, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(table_publish(tdir, staging, v1, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_nonnull(strstr(err, "exists"));
    ck_assert_int_eq(table_publish(tdir, staging, "../x", err, sizeof err), PC_ERR_INTERNAL);
    ck_assert(is_dir(staging)); /* untouched by the failures */

    /* 5. CURRENT cannot be replaced (a directory sits at CURRENT.tmp): the new version is put
     * back into staging. */
    m.version = v2;
    ck_assert_int_eq(manifest_write(p, &m, err, sizeof err), PC_OK);
    char blocker[PATH_MAX];
    join(blocker, sizeof blocker, tdir, "CURRENT.tmp");
    ck_assert(mkdir(blocker, 0777) == 0);
    ck_assert_int_eq(table_publish(tdir, staging, v2, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert(is_dir(staging));
    join(p, sizeof p, tdir, v2);
    ck_assert(!fs_exists(p));
    ck_assert(rmdir(blocker) == 0);

    ck_assert_int_eq(table_current(tdir, cur, sizeof cur, err, sizeof err), PC_OK);
    ck_assert_str_eq(cur, v1);
    table *tb;
    ck_assert_msg(table_open(tdir, &tb, err, sizeof err) == PC_OK, "%s", err);
    expect_get(tb, "cherry", "one:cherry");
    expect_get(tb, "date", "one:date");
    table_close(tb);

    /* And after all that, the publish goes through. */
    ck_assert_msg(table_publish(tdir, staging, v2, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(table_open(tdir, &tb, err, sizeof err) == PC_OK, "%s", err);
    expect_get(tb, "cherry", "two:cherry");
    expect_get(tb, "date", NULL);
    table_close(tb);
    shard_info_clear(&info);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_verify)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], v[256], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    const char *const *shards[] = {keys_a, keys_b};
    int64_t rows = -1;
    ck_assert_int_eq(table_verify(tdir, NULL, &rows, err, sizeof err), PC_ERR_NOINPUT);
    publish_version(tdir, "nightly", 1795658400, "one", 2, shards, v, sizeof v);
    ck_assert_msg(table_verify(tdir, NULL, &rows, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(rows, 5);
    ck_assert_msg(table_verify(tdir, v, NULL, err, sizeof err) == PC_OK, "%s", err);

    /* A manifest whose totals disagree with its shards. */
    char mpath[PATH_MAX];
    join(p, sizeof p, tdir, v);
    join(mpath, sizeof mpath, p, "MANIFEST.json");
    manifest *m;
    ck_assert_msg(manifest_read(mpath, &m, err, sizeof err) == PC_OK, "%s", err);
    m->rows_written++;
    ck_assert_int_eq(manifest_write(mpath, m, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_verify(tdir, v, &rows, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "rows_written") != NULL, "%s", err);
    m->rows_written--;
    m->checksum++;
    ck_assert_int_eq(manifest_write(mpath, m, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_verify(tdir, v, &rows, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "checksum") != NULL, "%s", err);
    m->checksum--;
    m->rows_in++;
    ck_assert_int_eq(manifest_write(mpath, m, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_verify(tdir, v, &rows, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "rows_in") != NULL, "%s", err);
    m->rows_in--;
    ck_assert_int_eq(manifest_write(mpath, m, err, sizeof err), PC_OK);
    ck_assert_msg(table_verify(tdir, v, &rows, err, sizeof err) == PC_OK, "%s", err);
    manifest_free(m);

    /* A shard replaced by one with other values. */
    char spath[PATH_MAX];
    join(spath, sizeof spath, p, "shard-00001");
    rm_tmp(spath);
    shard_info info;
    write_shard(spath, keys_b, "two", &info);
    shard_info_clear(&info);
    ck_assert_int_eq(table_verify(tdir, v, &rows, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "shard-00001") != NULL && strstr(err, "checksum") != NULL, "%s",
                  err);
    /* A shard gone. */
    rm_tmp(spath);
    ck_assert_int_eq(table_verify(tdir, v, &rows, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "shard-00001") != NULL, "%s", err);
    ck_assert(!fs_exists(spath));
    rm_tmp(dir);
}
END_TEST

/* ---- SHA-256 (FIPS 180-4 / NIST CSRC example vectors) ---- */

START_TEST(test_sha256_vectors)
{
    static const struct { const char *msg; const char *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[SHA256_HEX_BYTES];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        ck_assert_str_eq(hex, v[i].hex);
        /* every split into two updates gives the same digest */
        size_t n = strlen(v[i].msg);
        for (size_t cut = 0; cut <= n; cut++) {
            sha256_ctx c;
            unsigned char d[SHA256_DIGEST_BYTES];
            sha256_init(&c);
            sha256_update(&c, v[i].msg, cut);
            sha256_update(&c, v[i].msg + cut, n - cut);
            sha256_final(&c, d);
            char h2[SHA256_HEX_BYTES];
            for (int j = 0; j < 32; j++)
                snprintf(h2 + 2 * j, 3, "%02x", d[j]);
            ck_assert_str_eq(h2, v[i].hex);
        }
    }
    /* one million 'a', fed in pieces of awkward sizes */
    static char a[1000];
    memset(a, 'a', sizeof a);
    sha256_ctx c;
    sha256_init(&c);
    size_t fed = 0, piece = 1;
    while (fed < 1000000) {
        size_t k = piece < 1000000 - fed ? piece : 1000000 - fed;
        if (k > sizeof a)
            k = sizeof a;
        sha256_update(&c, a, k);
        fed += k;
        piece = piece * 7 % 997 + 1;
    }
    unsigned char d[SHA256_DIGEST_BYTES];
    sha256_final(&c, d);
    for (int j = 0; j < 32; j++)
        snprintf(hex + 2 * j, 3, "%02x", d[j]);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* a file: the same digest as its bytes; a missing file */
    char dir[PATH_MAX], p[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(p, sizeof p, dir, "f");
    write_text(p, v[3].msg);
    ck_assert_msg(sha256_file(p, hex, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(hex, v[3].hex);
    join(p, sizeof p, dir, "none");
    ck_assert_int_eq(sha256_file(p, hex, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_str_eq(hex, "");
    ck_assert_msg(strstr(err, "none") != NULL, "%s", err);
    rm_tmp(dir);
}
END_TEST

/* ---- provenance in the manifest ---- */

START_TEST(test_manifest_provenance)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(path, sizeof path, dir, "MANIFEST.json");
    shard_info sh = {.dir = "shard-00000", .first_key = "a", .first_key_len = 1,
                     .last_key = "b", .last_key_len = 1, .rows = 2, .bytes = 8, .checksum = 5};
    manifest m = sample_manifest("v20261126T020000Z-nightly", 1, &sh);
    int64_t mtimes[] = {1795658400, -86400}; /* a time before 1970 is a time too */
    m.input_mtimes = mtimes;
    m.job_text = "[model]\npath = m.onnx\n# \"quoted\" \\ caf\xc3\xa9\n";
    m.job_overrides = "output.top_k=3\ninput.paths=/data/x \xff.csv\n"; /* not UTF-8 */
    m.precast_version = PRECAST_VERSION;
    m.host = "node-17.cluster";
    m.previous = "v20261125T020000Z-nightly";
    ck_assert_msg(manifest_write(path, &m, err, sizeof err) == PC_OK, "%s", err);
    char *text = read_text(path, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"mtime\": 1795658400"));
    ck_assert_ptr_nonnull(strstr(text, "\"precast_version\": \"" PRECAST_VERSION "\""));
    free(text);
    manifest *r;
    ck_assert_msg(manifest_read(path, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(r->input_mtimes[0], mtimes[0]);
    ck_assert_int_eq(r->input_mtimes[1], mtimes[1]);
    ck_assert_str_eq(r->job_text, m.job_text);
    ck_assert_str_eq(r->job_overrides, m.job_overrides);
    ck_assert_str_eq(r->precast_version, PRECAST_VERSION);
    ck_assert_str_eq(r->host, m.host);
    ck_assert_str_eq(r->previous, m.previous);
    ck_assert_str_eq(r->model_sha256, m.model_sha256);
    manifest_free(r);

    /* Nothing known: NULL strings, no mtimes -> null, read back as NULL / unknown. */
    m.input_mtimes = NULL;
    m.job_text = m.job_overrides = m.precast_version = m.host = m.previous = NULL;
    ck_assert_msg(manifest_write(path, &m, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(manifest_read(path, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(r->input_mtimes[0], MANIFEST_TIME_UNKNOWN);
    ck_assert_int_eq(r->input_mtimes[1], MANIFEST_TIME_UNKNOWN);
    ck_assert_ptr_null(r->job_text);
    ck_assert_ptr_null(r->host);
    ck_assert_ptr_null(r->precast_version);
    ck_assert_ptr_null(r->previous);
    manifest_free(r);

    /* A manifest as precast 0.3 wrote it: no provenance fields at all. */
    write_text(path,
               "{\n  \"format_version\": 1,\n  \"created\": \"2026-11-01T02:00:00Z\",\n"
               "  \"job\": \"old\",\n  \"version\": \"v20261101T020000Z-old\",\n"
               "  \"model_path\": \"m.onnx\",\n  \"model_sha256\": null,\n"
               "  \"job_file\": \"old.ini\",\n  \"inputs\": [{\"path\": \"in.csv\", \"size\": 10}],\n"
               "  \"rows_in\": 2,\n  \"rows_written\": 2,\n  \"rows_rejected\": 0,\n"
               "  \"checksum\": \"0000000000000005\",\n  \"value_format\": \"json\",\n"
               "  \"head\": \"auto\",\n  \"labels_path\": null,\n  \"ranks\": 1,\n"
               "  \"shards\": [{\"dir\": \"shard-00000\", \"first_key\": \"a\", \"last_key\": \"b\","
               " \"rows\": 2, \"bytes\": 8, \"checksum\": \"0000000000000005\"}]\n}\n");
    ck_assert_msg(manifest_read(path, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(r->ninputs, 1);
    ck_assert_int_eq(r->input_sizes[0], 10);
    ck_assert_int_eq(r->input_mtimes[0], MANIFEST_TIME_UNKNOWN);
    ck_assert_ptr_null(r->job_text);
    ck_assert_ptr_null(r->job_overrides);
    ck_assert_ptr_null(r->host);
    ck_assert_ptr_null(r->precast_version);
    ck_assert_ptr_null(r->previous);
    manifest_free(r);

    /* A bad mtime is an error naming the field; so is a provenance string of another type. */
    write_text(path,
               "{\"format_version\": 1, \"created\": \"c\", \"job\": \"j\", \"version\": \"v\","
               " \"model_path\": null, \"model_sha256\": null, \"job_file\": null,"
               " \"inputs\": [{\"path\": \"p\", \"size\": 1, \"mtime\": \"yesterday\"}],"
               " \"rows_in\": 0, \"rows_written\": 0, \"rows_rejected\": 0,"
               " \"checksum\": \"0000000000000000\", \"value_format\": \"json\", \"head\": \"auto\","
               " \"ranks\": 1, \"shards\": []}");
    ck_assert_int_eq(manifest_read(path, &r, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "mtime") != NULL, "%s", err);
    write_text(path,
               "{\"format_version\": 1, \"created\": \"c\", \"job\": \"j\", \"version\": \"v\","
               " \"model_path\": null, \"model_sha256\": null, \"job_file\": null, \"inputs\": [],"
               " \"rows_in\": 0, \"rows_written\": 0, \"rows_rejected\": 0,"
               " \"checksum\": \"0000000000000000\", \"value_format\": \"json\", \"head\": \"auto\","
               " \"ranks\": 1, \"shards\": [], \"host\": 42}");
    ck_assert_int_eq(manifest_read(path, &r, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "host") != NULL, "%s", err);
    rm_tmp(dir);
}
END_TEST

/* ---- versions: listing, rollback, retention ---- */

static const char *const *const one_shard[] = {keys_a};

/* The names in dir (except "." and ".."), sorted, joined by spaces, into buf. */
static void dir_listing(const char *dir, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *names[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            ck_assert(n < 64);
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    buf[0] = '\0';
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int k = snprintf(buf + o, cap - o, "%s%s", i ? " " : "", names[i]);
        ck_assert(k > 0 && (size_t)k < cap - o);
        o += (size_t)k;
        free(names[i]);
    }
}

static void current_is(const char *tdir, const char *want)
{
    char cur[256], err[PC_ERRLEN];
    ck_assert_msg(table_current(tdir, cur, sizeof cur, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(cur, want);
}

START_TEST(test_versions_list_and_rollback)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], err[PC_ERRLEN];
    char v[4][256];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    table_version_info *list;
    int64_t n;
    char cur[256];
    ck_assert_int_eq(table_versions_list(tdir, &list, &n, cur, sizeof cur, err, sizeof err),
                     PC_ERR_NOINPUT);
    ck_assert_ptr_null(list);
    const char *tags[] = {"t0", "t1", "t2", "t3"};
    for (int i = 0; i < 3; i++)
        publish_version(tdir, "nightly", 1795658400 + 86400 * i, tags[i], 1, one_shard, v[i],
                        sizeof v[i]);
    /* the same second again: "-2" is newer than the plain name */
    publish_version(tdir, "nightly", 1795658400 + 86400 * 2, tags[3], 1, one_shard, v[3],
                    sizeof v[3]);
    ck_assert_msg(strstr(v[3], "-nightly-2") != NULL, "%s", v[3]);
    ck_assert_msg(table_versions_list(tdir, &list, &n, cur, sizeof cur, err, sizeof err) ==
                  PC_OK, "%s", err);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(cur, v[3]);
    const int order[] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(list[i].name, v[order[i]]);
        ck_assert(list[i].current == (i == 0));
        ck_assert_ptr_nonnull(list[i].m);
        ck_assert_int_eq(list[i].m->rows_written, 3);
    }
    table_versions_free(list, n);

    /* Rollback to the oldest: lookups answer with its values. */
    ck_assert_msg(table_rollback(tdir, v[0], err, sizeof err) == PC_OK, "%s", err);
    current_is(tdir, v[0]);
    table *t;
    ck_assert_msg(table_open(tdir, &t, err, sizeof err) == PC_OK, "%s", err);
    expect_get(t, "banana", "t0:banana");
    table_close(t);
    ck_assert_msg(table_rollback(tdir, v[0], err, sizeof err) == PC_OK, "%s", err); /* no-op */
    current_is(tdir, v[0]);

    /* Refusals leave CURRENT as it was. */
    ck_assert_int_eq(table_rollback(tdir, "v20991231T000000Z-nightly", err, sizeof err),
                     PC_ERR_NOINPUT);
    ck_assert_msg(strstr(err, "no such version") != NULL, "%s", err);
    ck_assert_int_eq(table_rollback(tdir, "../escape", err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_int_eq(table_rollback(tdir, ".staging-nightly", err, sizeof err), PC_ERR_NOINPUT);
    /* a half version: a shard missing */
    char vdir[PATH_MAX], spath[PATH_MAX];
    join(vdir, sizeof vdir, tdir, v[1]);
    join(spath, sizeof spath, vdir, "shard-00000");
    rm_tmp(spath);
    ck_assert_int_eq(table_rollback(tdir, v[1], err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "shard-00000") != NULL, "%s", err);
    /* ... its manifest missing */
    join(p, sizeof p, vdir, "MANIFEST.json");
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(table_rollback(tdir, v[1], err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "MANIFEST.json") != NULL, "%s", err);
    /* ... a symlink that looks like a version */
    join(p, sizeof p, tdir, "v20300101T000000Z-nightly");
    ck_assert_int_eq(symlink(v[2], p), 0);
    ck_assert_int_eq(table_rollback(tdir, "v20300101T000000Z-nightly", err, sizeof err),
                     PC_ERR_IO);
    current_is(tdir, v[0]);
    /* No such table. */
    join(p, sizeof p, dir, "nothing");
    ck_assert_int_eq(table_rollback(p, v[0], err, sizeof err), PC_ERR_NOINPUT);

    /* The damaged version is listed with its problem; the symlink is not listed. */
    ck_assert_msg(table_versions_list(tdir, &list, &n, cur, sizeof cur, err, sizeof err) ==
                  PC_OK, "%s", err);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(list[3].name, v[0]);
    ck_assert(list[3].current);
    ck_assert_str_eq(list[2].name, v[1]);
    ck_assert_ptr_null(list[2].m);
    ck_assert_msg(strstr(list[2].problem, "MANIFEST.json") != NULL, "%s", list[2].problem);
    table_versions_free(list, n);
    table_versions_free(NULL, 0);
    rm_tmp(dir);
}
END_TEST

static bool stale_only_other(const char *job, void *ctx)
{
    (*(int *)ctx)++;
    return strcmp(job, "other") == 0;
}

START_TEST(test_retain)
{
    char dir[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX], q[PATH_MAX], err[PC_ERRLEN];
    char v[5][256], removed[1024], ls[4096];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    int64_t nrem = -1;
    /* no table, no CURRENT: nothing to decide on */
    ck_assert_int_eq(table_retain(tdir, 1, NULL, NULL, removed, sizeof removed, &nrem, err,
                                  sizeof err), PC_ERR_NOINPUT);
    const char *tags[] = {"t0", "t1", "t2", "t3", "t4"};
    for (int i = 0; i < 5; i++)
        publish_version(tdir, "nightly", 1795658400 + 86400 * i, tags[i], 1, one_shard, v[i],
                        sizeof v[i]);
    /* CURRENT is the oldest (a rollback): it stays, with the 2 newest others. */
    ck_assert_msg(table_rollback(tdir, v[0], err, sizeof err) == PC_OK, "%s", err);

    /* Things retention must leave alone or treat with care. */
    char outside[PATH_MAX];
    join(outside, sizeof outside, dir, "outside");
    ck_assert_int_eq(mkdir(outside, 0777), 0);
    join(p, sizeof p, outside, "precious");
    write_text(p, "keep me");
    join(p, sizeof p, tdir, v[1]);
    join(q, sizeof q, p, "link-out"); /* a symlink inside a victim */
    ck_assert_int_eq(symlink(outside, q), 0);
    join(p, sizeof p, tdir, "v20000101T000000Z-linked"); /* a symlink named like a version */
    ck_assert_int_eq(symlink(outside, p), 0);
    join(p, sizeof p, tdir, "rejects-nightly.jsonl");
    write_text(p, "{}\n");
    join(p, sizeof p, tdir, "backup");
    ck_assert_int_eq(mkdir(p, 0777), 0);
    join(p, sizeof p, tdir, ".staging-other");
    ck_assert_int_eq(mkdir(p, 0777), 0);
    join(p, sizeof p, tdir, ".staging-busy");
    ck_assert_int_eq(mkdir(p, 0777), 0);
    /* what a removal killed half-way left */
    join(p, sizeof p, tdir, ".trash-v20250101T000000Z-nightly");
    ck_assert_int_eq(mkdir(p, 0777), 0);
    join(q, sizeof q, p, "shard-00000");
    ck_assert_int_eq(mkdir(q, 0777), 0);
    join(p, sizeof p, q, "000005.ldb");
    write_text(p, "half");
    join(p, sizeof p, q, "link-out");
    ck_assert_int_eq(symlink(outside, p), 0);

    int calls = 0;
    ck_assert_msg(table_retain(tdir, 2, stale_only_other, &calls, removed, sizeof removed,
                               &nrem, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(nrem, 4);
    char want[2048];
    snprintf(want, sizeof want, ".trash-v20250101T000000Z-nightly %s %s .staging-other", v[2],
             v[1]);
    ck_assert_str_eq(removed, want);
    dir_listing(tdir, ls, sizeof ls);
    snprintf(want, sizeof want,
             ".precast-table.lock .staging-busy CURRENT backup rejects-nightly.jsonl "
             "v20000101T000000Z-linked %s %s %s", v[0], v[3], v[4]);
    ck_assert_str_eq(ls, want);
    current_is(tdir, v[0]);
    join(p, sizeof p, outside, "precious");
    ck_assert(fs_exists(p));
    table *t;
    ck_assert_msg(table_open(tdir, &t, err, sizeof err) == PC_OK, "%s", err);
    expect_get(t, "apple", "t0:apple");
    table_close(t);

    /* keep 0: only CURRENT's version; staging dirs untouched without a callback. */
    ck_assert_msg(table_retain(tdir, 0, NULL, NULL, removed, sizeof removed, &nrem, err,
                               sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(nrem, 2);
    snprintf(want, sizeof want, "%s %s", v[4], v[3]);
    ck_assert_str_eq(removed, want);
    dir_listing(tdir, ls, sizeof ls);
    snprintf(want, sizeof want,
             ".precast-table.lock .staging-busy CURRENT backup rejects-nightly.jsonl "
             "v20000101T000000Z-linked %s", v[0]);
    ck_assert_str_eq(ls, want);
    ck_assert_msg(table_verify(tdir, NULL, NULL, err, sizeof err) == PC_OK, "%s", err);

    /* Nothing to do, a small output buffer, NULL outputs. */
    ck_assert_int_eq(table_retain(tdir, 0, NULL, NULL, NULL, 0, NULL, err, sizeof err), PC_OK);
    for (int i = 0; i < 3; i++)
        publish_version(tdir, "nightly", 1795658400 + 86400 * (10 + i), tags[i], 1, one_shard,
                        v[i], sizeof v[i]);
    char small[12];
    ck_assert_msg(table_retain(tdir, 0, NULL, NULL, small, sizeof small, &nrem, err,
                               sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(nrem, 3); /* the old CURRENT and two of the three new versions */
    ck_assert_str_eq(small, "...");
    current_is(tdir, v[2]);
    ck_assert_int_eq(table_retain(tdir, -1, NULL, NULL, NULL, 0, NULL, err, sizeof err),
                     PC_ERR_INTERNAL);

    /* A corrupt CURRENT: nothing removed. */
    join(p, sizeof p, tdir, "CURRENT");
    write_text(p, "../../etc\n");
    ck_assert_int_eq(table_retain(tdir, 0, NULL, NULL, NULL, 0, &nrem, err, sizeof err),
                     PC_ERR_IO);
    ck_assert_int_eq(nrem, 0);
    join(p, sizeof p, tdir, v[2]);
    ck_assert(is_dir(p));
    rm_tmp(dir);
}
END_TEST

/* ---- sorted scan of a version ---- */

START_TEST(test_scan)
{
    char dir[PATH_MAX], tdir[PATH_MAX], v[256], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    static const char *const s0[] = {"a", "a\x01", "ab", NULL};
    static const char *const s1[] = {NULL}; /* empty */
    static const char *const s2[] = {"m", "m0", NULL};
    static const char *const s3[] = {"x", "y", "z", NULL};
    const char *const *shards[] = {s0, s1, s2, s3};
    table_scan *s;
    ck_assert_int_eq(table_scan_open(tdir, NULL, &s, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(s);
    publish_version(tdir, "scan", 1795658400, "x", 4, shards, v, sizeof v);
    const char *want[] = {"a", "a\x01", "ab", "m", "m0", "x", "y", "z"};
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_msg(table_scan_open(tdir, pass == 0 ? NULL : v, &s, err, sizeof err) == PC_OK,
                      "%s", err);
        ck_assert_int_eq(table_scan_manifest(s)->nshards, 4);
        int i = 0;
        for (;;) {
            const char *k, *val;
            size_t kl, vl;
            bool eof;
            ck_assert_msg(table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err) == PC_OK,
                          "%s", err);
            if (eof) {
                ck_assert_ptr_null(k);
                break;
            }
            ck_assert_int_lt(i, 8);
            ck_assert_uint_eq(kl, strlen(want[i]));
            ck_assert(memcmp(k, want[i], kl) == 0);
            char wv[16];
            snprintf(wv, sizeof wv, "x:%s", want[i]);
            ck_assert_uint_eq(vl, strlen(wv));
            ck_assert(memcmp(val, wv, vl) == 0);
            i++;
        }
        ck_assert_int_eq(i, 8);
        const char *k, *val;
        size_t kl, vl;
        bool eof = false;
        ck_assert_int_eq(table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err), PC_OK);
        ck_assert(eof); /* stays at the end */
        table_scan_close(s);
    }
    table_scan_close(NULL);
    ck_assert_int_eq(table_scan_open(tdir, "v20991231T000000Z-scan", &s, err, sizeof err),
                     PC_ERR_NOINPUT);

    /* A manifest that disagrees with a shard: the scan fails at that shard's end. */
    char vdir[PATH_MAX], mpath[PATH_MAX];
    join(vdir, sizeof vdir, tdir, v);
    join(mpath, sizeof mpath, vdir, "MANIFEST.json");
    manifest *m;
    ck_assert_msg(manifest_read(mpath, &m, err, sizeof err) == PC_OK, "%s", err);
    m->shards[2].checksum++;
    m->checksum++;
    ck_assert_int_eq(manifest_write(mpath, m, err, sizeof err), PC_OK);
    manifest_free(m);
    ck_assert_msg(table_scan_open_dir(vdir, &s, err, sizeof err) == PC_OK, "%s", err);
    pc_status rc;
    int got = 0;
    for (;;) {
        const char *k, *val;
        size_t kl, vl;
        bool eof;
        rc = table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err);
        if (rc != PC_OK || eof)
            break;
        got++;
    }
    ck_assert_int_eq(rc, PC_ERR_IO);
    ck_assert_int_eq(got, 5);
    ck_assert_msg(strstr(err, "shard-00002") != NULL && strstr(err, "checksum") != NULL, "%s",
                  err);
    const char *k, *val;
    size_t kl, vl;
    bool eof;
    ck_assert_int_eq(table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err), PC_ERR_IO);
    table_scan_close(s);
    rm_tmp(dir);
}
END_TEST

/* The keys a scan of tdir restricted to [lo, hi) returns, joined by ',' into out. */
static void scan_range_keys(const char *tdir, const char *lo, const char *hi, char *out, size_t cap)
{
    char err[PC_ERRLEN];
    table_scan *s;
    ck_assert_msg(table_scan_open(tdir, NULL, &s, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_msg(table_scan_set_range(s, lo, lo ? strlen(lo) : 0, hi, hi ? strlen(hi) : 0, err,
                                       sizeof err) == PC_OK, "%s", err);
    out[0] = '\0';
    for (;;) {
        const char *k, *val;
        size_t kl, vl;
        bool eof;
        ck_assert_msg(table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err) == PC_OK, "%s",
                      err);
        if (eof)
            break;
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%.*s", n ? "," : "", (int)kl, k);
    }
    table_scan_close(s);
}

/* Ranged scans (the diff split across ranks): exactly the keys in [lo, hi), across shard
 * boundaries and empty shards, and the parts of a split are the whole. */
START_TEST(test_scan_range)
{
    char dir[PATH_MAX], tdir[PATH_MAX], v[256], err[PC_ERRLEN], got[256];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    static const char *const s0[] = {"a", "ab", "c", NULL};
    static const char *const s1[] = {NULL}; /* empty */
    static const char *const s2[] = {"m", "m0", NULL};
    static const char *const s3[] = {"x", "y", "z", NULL};
    const char *const *shards[] = {s0, s1, s2, s3};
    publish_version(tdir, "range", 1795658400, "x", 4, shards, v, sizeof v);
    scan_range_keys(tdir, NULL, NULL, got, sizeof got);
    ck_assert_str_eq(got, "a,ab,c,m,m0,x,y,z");
    scan_range_keys(tdir, "ab", "m0", got, sizeof got); /* lo inclusive, hi exclusive */
    ck_assert_str_eq(got, "ab,c,m");
    scan_range_keys(tdir, "b", "n", got, sizeof got); /* bounds between keys and shards */
    ck_assert_str_eq(got, "c,m,m0");
    scan_range_keys(tdir, NULL, "a", got, sizeof got);
    ck_assert_str_eq(got, "");
    scan_range_keys(tdir, "y", NULL, got, sizeof got);
    ck_assert_str_eq(got, "y,z");
    scan_range_keys(tdir, "zz", NULL, got, sizeof got);
    ck_assert_str_eq(got, "");
    /* Three parts at arbitrary split keys cover every key once. */
    char a[128], b[128], c[128], all[400];
    scan_range_keys(tdir, NULL, "c", a, sizeof a);
    scan_range_keys(tdir, "c", "m00", b, sizeof b);
    scan_range_keys(tdir, "m00", NULL, c, sizeof c);
    snprintf(all, sizeof all, "%s,%s,%s", a, b, c);
    ck_assert_str_eq(all, "a,ab,c,m,m0,x,y,z");
    /* Too late: the range must be set before the first pair. */
    table_scan *s;
    ck_assert_msg(table_scan_open(tdir, NULL, &s, err, sizeof err) == PC_OK, "%s", err);
    const char *k, *val;
    size_t kl, vl;
    bool eof;
    ck_assert_int_eq(table_scan_next(s, &k, &kl, &val, &vl, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(table_scan_set_range(s, "m", 1, NULL, 0, err, sizeof err), PC_ERR_INTERNAL);
    table_scan_close(s);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_get_routing)
{
    char dir[PATH_MAX], tdir[PATH_MAX], v[256], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    join(tdir, sizeof tdir, dir, "table");
    static const char *const s0[] = {"b10", "b20", "b30", NULL};
    static const char *const s1[] = {NULL}; /* an empty shard among the others */
    static const char *const s2[] = {"d", "d\x01", "dd", NULL};
    static const char *const s3[] = {"f10", "f20", NULL};
    const char *const *shards[] = {s0, s1, s2, s3};
    publish_version(tdir, "routing", 1795658400, "x", 4, shards, v, sizeof v);
    table *t;
    ck_assert_msg(table_open(tdir, &t, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(table_manifest(t)->nshards, 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; shards[i][j] != NULL; j++) {
            char want[64];
            snprintf(want, sizeof want, "x:%s", shards[i][j]);
            expect_get(t, shards[i][j], want);
        }
    expect_get(t, "", NULL);     /* before every range */
    expect_get(t, "a", NULL);
    expect_get(t, "b1", NULL);   /* a prefix of the first key */
    expect_get(t, "b15", NULL);  /* inside a range, absent */
    expect_get(t, "c", NULL);    /* between ranges */
    expect_get(t, "d\x02", NULL);
    expect_get(t, "e", NULL);
    expect_get(t, "f", NULL);
    expect_get(t, "f30", NULL);  /* after every range */
    expect_get(t, "zzz", NULL);
    /* a key with a NUL inside */
    char *val;
    size_t vlen;
    bool found;
    ck_assert_int_eq(table_get(t, "d\x00", 2, &val, &vlen, &found, err, sizeof err), PC_OK);
    ck_assert(!found);
    table_close(t);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_fs_helpers)
{
    char dir[PATH_MAX], p[PATH_MAX], err[PC_ERRLEN];
    mk_tmp(dir, sizeof dir);
    char buf[8];
    ck_assert_int_eq(fs_path(buf, sizeof buf, PC_ERR_IO, err, sizeof err, "%s", "1234567"),
                     PC_OK);
    ck_assert_int_eq(fs_path(buf, sizeof buf, PC_ERR_IO, err, sizeof err, "%s", "12345678"),
                     PC_ERR_IO);
    ck_assert_str_eq(buf, "");
    join(p, sizeof p, dir, "f");
    bool replaced = true;
    ck_assert_int_eq(fs_write_atomic(p, "abc", 3, &replaced, err, sizeof err), PC_OK);
    ck_assert(replaced);
    size_t n;
    char *text = read_text(p, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(text, "abc");
    free(text);
    char *data;
    ck_assert_int_eq(fs_read_file(p, 2, &data, &n, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(fs_read_file(dir, 100, &data, &n, err, sizeof err), PC_ERR_IO);
    ck_assert_int_eq(fs_fsync_tree(dir, err, sizeof err), PC_OK);
    rm_tmp(dir);
    ck_assert(!fs_exists(dir));
    ck_assert_int_eq(fs_remove_tree(dir, err, sizeof err), PC_OK); /* missing is fine */
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pair_hash);
    tcase_add_test(tc, test_shard_round_trip);
    tcase_add_test(tc, test_shard_empty);
    tcase_add_test(tc, test_shard_out_of_order);
    tcase_add_test(tc, test_shard_sealed_and_read_only);
    tcase_add_test(tc, test_shard_corrupt_table);
    tcase_add_test(tc, test_manifest_round_trip);
    tcase_add_test(tc, test_manifest_write_refuses_invalid);
    tcase_add_test(tc, test_manifest_hostile);
    tcase_add_test(tc, test_staging_stale_replaced);
    tcase_add_test(tc, test_version_names);
    tcase_add_test(tc, test_current_missing_or_corrupt);
    tcase_add_test(tc, test_publish_twice);
    tcase_add_test(tc, test_publish_failures_leave_current);
    tcase_add_test(tc, test_get_routing);
    tcase_add_test(tc, test_verify);
    tcase_add_test(tc, test_fs_helpers);
    tcase_add_test(tc, test_sha256_vectors);
    tcase_add_test(tc, test_manifest_provenance);
    tcase_add_test(tc, test_versions_list_and_rollback);
    tcase_add_test(tc, test_retain);
    tcase_add_test(tc, test_scan);
    tcase_add_test(tc, test_scan_range);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(storage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
