/* Unit tests of reducer/: kv buffer, sort, duplicates, packing, k-way merge, the spill store
 * (runs under a budget, merge, corrupt runs, sweep), and the MPI sample sort in memory and out
 * of core. Run alone (1 rank) and under `mpirun -np 3` (CK_FORK=no): the shuffle tests check
 * properties that hold for any rank count. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reducer/kv.h"
#include "reducer/shuffle.h"
#include "reducer/spill.h"

static char err[PC_ERRLEN];

/* Rank 0 prints: figures once, not once per rank. */
static bool is_rank0(void)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank == 0;
}

static void append_str(kv_buffer *kv, const char *k, const char *v, int64_t line)
{
    ck_assert_int_eq(kv_append(kv, k, strlen(k), v, strlen(v), (kv_origin){1, line}, err, sizeof err), PC_OK);
}

static int key_is(const kv_buffer *kv, int64_t i, const char *want)
{
    size_t klen;
    const char *k = kv_key(kv, i, &klen);
    return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

START_TEST(test_sort_bytewise)
{
    kv_buffer *kv = kv_create();
    const char *keys[] = {"b", "abc", "ab", "", "a\xff", "a", "\x01", "abd"};
    const char *want[] = {"", "\x01", "a", "ab", "abc", "abd", "a\xff", "b"};
    for (int i = 0; i < 8; i++) append_str(kv, keys[i], "v", i);
    ck_assert_int_eq(kv_sort(kv, err, sizeof err), PC_OK);
    for (int i = 0; i < 8; i++) ck_assert_msg(key_is(kv, i, want[i]), "position %d", i);
    int64_t dup;
    ck_assert(!kv_find_duplicate(kv, &dup));
    kv_free(kv);
}
END_TEST

START_TEST(test_sort_large_random)
{
    kv_buffer *kv = kv_create();
    unsigned seed = 7;
    for (int i = 0; i < 20000; i++) {
        char k[32];
        seed = seed * 1103515245u + 12345u;
        snprintf(k, sizeof k, "k%u", seed % 100000u);
        append_str(kv, k, k, i);
    }
    ck_assert_int_eq(kv_sort(kv, err, sizeof err), PC_OK);
    for (int64_t i = 1; i < kv_count(kv); i++) {
        size_t al, bl;
        const char *a = kv_key(kv, i - 1, &al), *b = kv_key(kv, i, &bl);
        ck_assert_int_le(kv_key_compare(a, al, b, bl), 0);
        size_t vl;
        const char *v = kv_value(kv, i, &vl); /* values travel with their keys */
        ck_assert(vl == bl && memcmp(v, b, bl) == 0);
    }
    kv_free(kv);
}
END_TEST

/* The sign of a bytewise comparison, by the definition: the first differing byte as unsigned,
 * else the shorter key first. */
static int naive_key_compare(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    for (size_t i = 0; i < al && i < bl; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return (al > bl) - (al < bl);
}

/* kv_key_compare's word-at-a-time path against the definition: keys of 0..20 bytes from a
 * small alphabet with high bytes, so that long shared prefixes, differences in any of the
 * first 8 bytes and bytes >= 0x80 (signedness) all occur. */
START_TEST(test_key_compare_definition)
{
    const unsigned char alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff};
    uint64_t seed = 0x243F6A8885A308D3ULL;
    unsigned char a[20], b[20];
    for (int t = 0; t < 200000; t++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t al = seed % 21, bl = (seed >> 8) % 21;
        for (size_t i = 0; i < 20; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            a[i] = alphabet[seed & 7];
            b[i] = (seed >> 3) % 4 == 0 ? alphabet[(seed >> 5) & 7] : a[i]; /* mostly equal */
        }
        int want = naive_key_compare(a, al, b, bl), got = kv_key_compare(a, al, b, bl);
        ck_assert_msg((got > 0) - (got < 0) == want, "lengths %zu %zu: got %d, want %d", al, bl, got, want);
    }
}
END_TEST

START_TEST(test_duplicate_found_with_origins)
{
    kv_buffer *kv = kv_create();
    append_str(kv, "x", "1", 10);
    append_str(kv, "y", "2", 11);
    append_str(kv, "x", "3", 12);
    ck_assert_int_eq(kv_sort(kv, err, sizeof err), PC_OK);
    int64_t dup = -1;
    ck_assert(kv_find_duplicate(kv, &dup));
    ck_assert(key_is(kv, dup, "x") && key_is(kv, dup + 1, "x"));
    int64_t l1 = kv_origin_of(kv, dup).line, l2 = kv_origin_of(kv, dup + 1).line;
    ck_assert((l1 == 10 && l2 == 12) || (l1 == 12 && l2 == 10));
    kv_free(kv);
}
END_TEST

START_TEST(test_pack_round_trip_and_malformed)
{
    kv_buffer *a = kv_create(), *b = kv_create();
    append_str(a, "key1", "value one", 5);
    append_str(a, "k2", "", 6);
    size_t n = kv_packed_size(a, 0, 2);
    char *buf = malloc(n);
    kv_pack(a, 0, 2, buf);
    ck_assert_int_eq(kv_unpack_append(b, buf, n, err, sizeof err), PC_OK);
    ck_assert_int_eq(kv_count(b), 2);
    ck_assert(key_is(b, 1, "k2"));
    ck_assert_int_eq(kv_origin_of(b, 0).line, 5);
    /* A truncated block appends nothing. */
    ck_assert_int_eq(kv_unpack_append(b, buf, n - 1, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_int_eq(kv_count(b), 2);
    free(buf);
    kv_free(a);
    kv_free(b);
}
END_TEST



/* ------------------------------------------------------------------------------------------ */
/* spill store */

static char *make_tmpdir(void)
{
    char *d = strdup("/tmp/precast-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

/* Files in dir (all of them: the stores' runs are the only files the tests put there). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Removes an empty test dir: fails the test if a store left a file behind. */
static void remove_tmpdir(char *dir)
{
    ck_assert_msg(count_files(dir) == 0, "%s: %d files left", dir, count_files(dir));
    ck_assert_int_eq(rmdir(dir), 0);
    free(dir);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3u;
    return h;
}

static uint64_t pair_hash(const kv_pair *p)
{
    uint64_t h = fnv(0xcbf29ce484222325u, &p->klen, sizeof p->klen);
    h = fnv(h, p->key, p->klen);
    h = fnv(h, p->val, p->vlen);
    h = fnv(h, &p->origin.file, sizeof p->origin.file);
    return fnv(h, &p->origin.line, sizeof p->origin.line);
}

/* Pair i of a deterministic test stream: keys of lengths 0..40 with duplicates, values of
 * 0..300 bytes. */
static void test_pair(int i, char *k, size_t *kl, char *v, size_t *vl)
{
    unsigned x = (unsigned)i * 2654435761u;
    int id = (int)(x % 2000u); /* 3000 pairs over 2000 ids: duplicates */
    int n = snprintf(k, 64, "%0*d", 1 + id % 30, id);
    if (id % 97 == 0) n = 0; /* empty keys too */
    *kl = (size_t)n;
    *vl = (x >> 7) % 301;
    for (size_t j = 0; j < *vl; j++) v[j] = (char)('a' + (i + (int)j) % 26);
}

static kv_spill *fill_spill(const char *dir, size_t budget, int npairs)
{
    kv_spill *s = NULL;
    ck_assert_int_eq(kv_spill_create(dir, "t", budget, &s, err, sizeof err), PC_OK);
    char k[64], v[512];
    for (int i = 0; i < npairs; i++) {
        size_t kl, vl;
        test_pair(i, k, &kl, v, &vl);
        ck_assert_msg(kv_spill_append(s, k, kl, v, vl, (kv_origin){i % 3, i}, err, sizeof err) == PC_OK, "%s", err);
        /* The budget bounds the in-memory table; a budget below one pair's cost (at most
         * 30 + 300 bytes + 48 per pair + 32 here) holds that pair alone. */
        size_t one = 30 + 300 + 48 + KV_ENTRY_BYTES;
        ck_assert_uint_le(kv_spill_memory(s), budget > one ? budget : one);
    }
    ck_assert_int_eq(kv_spill_count(s), npairs);
    return s;
}

START_TEST(test_spill_merge_any_budget)
{
    const int n = 3000;
    char *dir = make_tmpdir();
    /* Reference: the same pairs in one buffer, stable-sorted. */
    kv_buffer *ref = kv_create();
    char k[64], v[512];
    for (int i = 0; i < n; i++) {
        size_t kl, vl;
        test_pair(i, k, &kl, v, &vl);
        ck_assert_int_eq(kv_append(ref, k, kl, v, vl, (kv_origin){i % 3, i}, err, sizeof err), PC_OK);
    }
    ck_assert_int_eq(kv_sort(ref, err, sizeof err), PC_OK);
    const size_t budgets[] = {1, 700, 4096, 65536, KV_SPILL_UNLIMITED};
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        kv_spill *s = fill_spill(dir, budgets[b], n);
        int64_t runs = kv_spill_run_count(s);
        if (is_rank0()) printf("spill budget %zu: %lld runs, %lld bytes spilled\n", budgets[b], (long long)runs,
               (long long)kv_spill_spilled_bytes(s));
        ck_assert_int_eq(count_files(dir), (int)runs);
        if (budgets[b] == KV_SPILL_UNLIMITED) ck_assert_int_eq(runs, 0);
        if (budgets[b] == 1) ck_assert_int_ge(runs, n - 1); /* a pair per run: > KV_MERGE_FANIN */
        if (budgets[b] == 4096) ck_assert_int_ge(runs, 100);
        /* A scan sees the same multiset. */
        kv_scan *sc = NULL;
        ck_assert_int_eq(kv_scan_open(s, &sc, err, sizeof err), PC_OK);
        uint64_t sum_scan = 0, sum_ref = 0;
        int64_t nscan = 0;
        for (;;) {
            kv_pair p;
            bool eof;
            ck_assert_int_eq(kv_scan_next(sc, &p, &eof, err, sizeof err), PC_OK);
            if (eof) break;
            sum_scan += pair_hash(&p);
            nscan++;
        }
        kv_scan_close(sc);
        ck_assert_int_eq(nscan, n);
        /* Twice: a merge can be reopened (the second one after the merge passes). */
        for (int pass = 0; pass < 2; pass++) {
            kv_merge *m = NULL;
            ck_assert_msg(kv_merge_open(s, &m, err, sizeof err) == PC_OK, "%s", err);
            ck_assert_int_le(kv_spill_run_count(s), KV_MERGE_FANIN);
            ck_assert_int_eq(count_files(dir), (int)kv_spill_run_count(s));
            int64_t i = 0;
            for (;; i++) {
                kv_pair p;
                bool eof;
                ck_assert_int_eq(kv_merge_next(m, &p, &eof, err, sizeof err), PC_OK);
                if (eof) break;
                ck_assert_int_lt(i, n);
                /* Exactly the reference order, equal keys in append order included. */
                kv_pair r;
                r.key = kv_key(ref, i, &r.klen);
                r.val = kv_value(ref, i, &r.vlen);
                r.origin = kv_origin_of(ref, i);
                ck_assert_msg(p.klen == r.klen && memcmp(p.key, r.key, r.klen) == 0, "budget %zu pair %lld key", budgets[b], (long long)i);
                ck_assert_msg(p.vlen == r.vlen && memcmp(p.val, r.val, r.vlen) == 0, "budget %zu pair %lld value", budgets[b], (long long)i);
                ck_assert_int_eq(p.origin.line, r.origin.line);
                ck_assert_int_eq(p.origin.file, r.origin.file);
                if (pass == 0) sum_ref += pair_hash(&r);
            }
            ck_assert_int_eq(i, n);
            /* Appends are refused while a merge is open. */
            ck_assert_int_eq(kv_spill_append(s, "x", 1, "", 0, (kv_origin){0, 0}, err, sizeof err), PC_ERR_INTERNAL);
            kv_merge_close(m);
        }
        ck_assert(sum_scan == sum_ref);
        kv_spill_free(s);
        ck_assert_int_eq(count_files(dir), 0);
    }
    kv_free(ref);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_spill_create_refused)
{
    kv_spill *s = (kv_spill *)1;
    ck_assert_int_eq(kv_spill_create("/nonexistent-precast-dir", "p", 100, &s, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-precast-dir"));
    ck_assert_int_eq(kv_spill_create("/tmp", "a/b", 100, &s, err, sizeof err), PC_ERR_USAGE);
    ck_assert_int_eq(kv_spill_create("/tmp", "", 100, &s, err, sizeof err), PC_ERR_USAGE);
    ck_assert_int_eq(kv_spill_create("/etc/passwd", "p", 100, &s, err, sizeof err), PC_ERR_CANTCREAT);
}
END_TEST

/* A failing append, merge or write changes nothing and leaves no file; free removes the rest. */
START_TEST(test_spill_failures_leave_no_files)
{
    char *dir = make_tmpdir();
    kv_spill *s = NULL;
    ck_assert_int_eq(kv_spill_create(dir, "f", 2000, &s, err, sizeof err), PC_OK);
    char v[600];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%03d", i);
        ck_assert_int_eq(kv_spill_append(s, k, strlen(k), v, sizeof v, (kv_origin){0, i}, err, sizeof err), PC_OK);
    }
    int64_t runs = kv_spill_run_count(s);
    ck_assert_int_ge(runs, 5);
    /* The directory goes away: the next spill cannot create its run. */
    char moved[512];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    ck_assert_int_eq(rename(dir, moved), 0);
    pc_status st = PC_OK;
    int tries = 0;
    for (; st == PC_OK && tries < 10; tries++)
        st = kv_spill_append(s, "z", 1, v, sizeof v, (kv_origin){0, 99}, err, sizeof err);
    ck_assert_int_eq(st, PC_ERR_CANTCREAT);
    ck_assert_ptr_nonnull(strstr(err, dir));
    ck_assert_int_eq(kv_spill_count(s), 20 + tries - 1);
    ck_assert_int_eq(kv_spill_run_count(s), runs);
    ck_assert_int_eq(rename(moved, dir), 0);
    ck_assert_int_eq(count_files(dir), (int)runs);
    /* Writes that fail part way (a file size limit: EFBIG): the partial run is removed. */
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    st = PC_OK;
    for (int i = 0; st == PC_OK && i < 10; i++)
        st = kv_spill_append(s, "y", 1, v, sizeof v, (kv_origin){0, 100 + i}, err, sizeof err);
    ck_assert_int_eq(st, PC_ERR_IO);
    ck_assert_int_eq(count_files(dir), (int)runs);
    /* A merge pass that cannot write its output leaves the runs as they were. */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    int64_t count = kv_spill_count(s);
    for (int i = 0; i < 200; i++) /* 2000-byte budget, 620-byte pairs: > KV_MERGE_FANIN runs */
        ck_assert_int_eq(kv_spill_append(s, "w", 1, v, sizeof v, (kv_origin){0, 200 + i}, err, sizeof err), PC_OK);
    runs = kv_spill_run_count(s);
    ck_assert_int_gt(runs, KV_MERGE_FANIN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    kv_merge *m = NULL;
    ck_assert_int_eq(kv_merge_open(s, &m, err, sizeof err), PC_ERR_IO);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    ck_assert_int_eq(kv_spill_run_count(s), runs);
    ck_assert_int_eq(count_files(dir), (int)runs);
    /* ... and then succeeds with every pair. */
    ck_assert_int_eq(kv_merge_open(s, &m, err, sizeof err), PC_OK);
    int64_t seen = 0;
    for (bool eof = false;;) {
        kv_pair p;
        ck_assert_int_eq(kv_merge_next(m, &p, &eof, err, sizeof err), PC_OK);
        if (eof) break;
        seen++;
    }
    kv_merge_close(m);
    ck_assert_int_eq(seen, count + 200);
    kv_spill_free(s);
    remove_tmpdir(dir);
}
END_TEST

/* Damages run 0 of a fresh store in one way; reading it back must fail with PC_ERR_IO naming
 * the file, through a merge and through a scan. */
static void check_corrupt(int how)
{
    char *dir = make_tmpdir();
    kv_spill *s = fill_spill(dir, 8192, 300);
    ck_assert_int_ge(kv_spill_run_count(s), 2);
    const char *path = kv_spill_run_path(s, 0);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint32_t big = 0xfffffff0u;
    uint64_t huge = UINT64_C(1) << 62;
    switch (how) {
    case 0: ck_assert_int_eq(ftruncate(fd, sb.st_size - 1), 0); break;      /* one byte short */
    case 1: ck_assert_int_eq(ftruncate(fd, 10), 0); break;                  /* header cut */
    case 2: ck_assert_int_eq(pwrite(fd, "X", 1, 0), 1); break;              /* magic */
    case 3: ck_assert_int_eq(pwrite(fd, &huge, 8, 24), 8); break;           /* payload length */
    case 4: ck_assert_int_eq(pwrite(fd, &big, 4, 32), 4); break;            /* first klen */
    case 5: ck_assert_int_eq(pwrite(fd, "#", 1, sb.st_size / 2), 1); break; /* a byte: CRC */
    case 6: ck_assert_int_eq(pwrite(fd, &huge, 8, 16), 8); break;           /* pair count */
    default: { /* cut in the middle, a trailer and the header's length fixed up to match */
        uint64_t payload = (uint64_t)sb.st_size / 2 + 8 - 48;
        ck_assert_int_eq(pwrite(fd, "PCSPEND", 8, sb.st_size / 2), 8);
        ck_assert_int_eq(pwrite(fd, &payload, 8, 24), 8);
        ck_assert_int_eq(ftruncate(fd, sb.st_size / 2 + 8), 0);
        break;
    }
    }
    close(fd);
    for (int via = 0; via < 2; via++) {
        pc_status st = PC_OK;
        kv_merge *m = NULL;
        kv_scan *sc = NULL;
        st = via == 0 ? kv_merge_open(s, &m, err, sizeof err) : kv_scan_open(s, &sc, err, sizeof err);
        int64_t n = 0;
        while (st == PC_OK) {
            kv_pair p;
            bool eof;
            st = via == 0 ? kv_merge_next(m, &p, &eof, err, sizeof err) : kv_scan_next(sc, &p, &eof, err, sizeof err);
            if (st == PC_OK && eof) break;
            n++;
        }
        kv_merge_close(m);
        kv_scan_close(sc);
        ck_assert_msg(st == PC_ERR_IO, "damage %d via %s: status %d after %lld pairs", how,
                      via ? "scan" : "merge", st, (long long)n);
        ck_assert_msg(strstr(err, path) != NULL, "damage %d: '%s' does not name %s", how, err, path);
    }
    kv_spill_free(s);
    remove_tmpdir(dir);
}

START_TEST(test_spill_corrupt_run) { check_corrupt(_i); }
END_TEST

START_TEST(test_spill_sweep)
{
    char *dir = make_tmpdir();
    const char *names[] = {"pfx-abc123.run", "pfx-ZZ9zz9.run", /* stale: removed */
                           "pfx-abc12.run", "pfx-abc1234.run", "pfx2-abc123.run", "other-abc123.run",
                           "pfx-abc123.runx", "pfx-ab_123.run", "pfx-b-abc123.run", "xpfx-abc123.run"};
    for (int i = 0; i < 10; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    /* A live store with a longer prefix is not touched either. */
    kv_spill *live = fill_spill(dir, 4096, 100);
    int before = count_files(dir);
    int64_t removed = -1;
    ck_assert_int_eq(kv_spill_sweep(dir, "pfx", &removed, err, sizeof err), PC_OK);
    ck_assert_int_eq(removed, 2);
    ck_assert_int_eq(count_files(dir), before - 2);
    ck_assert_int_eq(kv_spill_sweep(dir, "pfx", &removed, err, sizeof err), PC_OK);
    ck_assert_int_eq(removed, 0);
    /* The store's own files ("t-XXXXXX.run") go with a sweep of "t". */
    ck_assert_int_eq(kv_spill_sweep(dir, "t", &removed, err, sizeof err), PC_OK);
    ck_assert_int_eq(removed, kv_spill_run_count(live));
    kv_spill_free(live); /* its files are gone already: not an error */
    ck_assert_int_eq(kv_spill_sweep("/nonexistent-precast-dir", "pfx", &removed, err, sizeof err), PC_OK);
    ck_assert_int_eq(removed, 0);
    ck_assert_int_eq(kv_spill_sweep(dir, "a/b", NULL, err, sizeof err), PC_ERR_USAGE);
    for (int i = 2; i < 10; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        ck_assert_msg(unlink(p) == 0, "%s was removed", names[i]);
    }
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_spill_reservoir)
{
    char *dir = make_tmpdir();
    kv_spill *a = NULL, *b = NULL;
    ck_assert_int_eq(kv_spill_create(dir, "r", KV_SPILL_UNLIMITED, &a, err, sizeof err), PC_OK);
    ck_assert_int_eq(kv_spill_create(dir, "r", KV_SPILL_UNLIMITED, &b, err, sizeof err), PC_OK);
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        char k[300];
        int len = snprintf(k, sizeof k, "%06d", i);
        if (i % 1000 == 0) { /* a long key: sampled as its first KV_SAMPLE_KEY_MAX bytes */
            memset(k + len, 'x', 250);
            len += 250;
        }
        ck_assert_int_eq(kv_spill_append(a, k, (size_t)len, "", 0, (kv_origin){0, i}, err, sizeof err), PC_OK);
        ck_assert_int_eq(kv_spill_append(b, k, (size_t)len, "", 0, (kv_origin){0, i}, err, sizeof err), PC_OK);
    }
    ck_assert_int_eq(kv_spill_sample_count(a), KV_SPILL_SAMPLES);
    double mean = 0;
    int64_t below_half = 0;
    for (int64_t i = 0; i < kv_spill_sample_count(a); i++) {
        size_t al, bl;
        const char *ka = kv_spill_sample(a, i, &al), *kb = kv_spill_sample(b, i, &bl);
        ck_assert(al == bl && memcmp(ka, kb, al) == 0); /* deterministic */
        ck_assert_uint_le(al, KV_SAMPLE_KEY_MAX);
        char num[8] = {0};
        memcpy(num, ka, 6);
        int id = atoi(num);
        mean += id;
        below_half += id < n / 2;
    }
    mean /= KV_SPILL_SAMPLES;
    if (is_rank0()) printf("reservoir: mean id %.0f of %d, %lld of %d below half\n", mean, n, (long long)below_half, KV_SPILL_SAMPLES);
    /* Uniform: the mean is n/2 within 5 standard errors (n / sqrt(12 * 2048) ~ 255). */
    ck_assert_double_lt(mean > n / 2.0 ? mean - n / 2.0 : n / 2.0 - mean, 5 * 255);
    kv_spill_free(a);
    kv_spill_free(b);
    remove_tmpdir(dir);
}
END_TEST



/* ------------------------------------------------------------------------------------------ */
/* out-of-core shuffle (collective tests) */

/* Key of id under a distribution: 0 plain numbers; 1 skewed: a long common prefix, very
 * different lengths, a few heavy prefixes. */
static int skewed_key(char *k, size_t cap, int id, int skew)
{
    if (!skew) return snprintf(k, cap, "%d", id);
    switch (id % 10) {
    case 0: case 1: case 2: case 3: case 4:
        return snprintf(k, cap, "user-00000000000000000000%d", id);
    case 5: case 6: case 7:
        return snprintf(k, cap, "heavy/%0*d", 1 + id % 13, id);
    case 8:
        return snprintf(k, cap, "h/%x", (unsigned)id);
    default:
        return snprintf(k, cap, "%.100s%d", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", id);
    }
}

/* What one exchange produced, the same on every rank (reduced). */
typedef struct exchange_result {
    pc_status status;
    int64_t total;          /* pairs held by all ranks after */
    uint64_t sum;           /* order-independent hash of all pairs */
    uint64_t seq[16];       /* order-dependent hash of each rank's stream (ranks < 16) */
    int64_t counts[16];     /* pairs per rank */
    int64_t rounds;
} exchange_result;

/* Every rank r makes n_r pairs (ids interleaved over ranks; none when r == empty_rank), maps
 * them into a local store with local_budget, picks splitters, exchanges them with chunk into a
 * received store with recv_budget, and merges it. Checks order within and across ranks. */
static exchange_result run_exchange(int base, int skew, int empty_rank, size_t local_budget,
                                    size_t recv_budget, size_t chunk, int fail_rank)
{
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    exchange_result res = {0};
    char *dir = make_tmpdir();
    kv_spill *local = NULL, *recv = NULL;
    ck_assert_int_eq(kv_spill_create(dir, "x", local_budget, &local, err, sizeof err), PC_OK);
    ck_assert_int_eq(kv_spill_create(dir, "x", recv_budget, &recv, err, sizeof err), PC_OK);
    /* Unequal amounts per rank, so that the splitters must weigh each rank's samples. */
    int n = rank == empty_rank ? 0 : base * (1 + rank % 3);
    uint64_t sum_in = 0;
    for (int i = 0; i < n; i++) {
        char k[256], v[64];
        int id = i * nranks + rank;
        int kl = skewed_key(k, sizeof k, id, skew);
        int vl = snprintf(v, sizeof v, "v%d", id * 7);
        kv_pair p = {.key = k, .klen = (size_t)kl, .val = v, .vlen = (size_t)vl, .origin = {rank, i + 1}};
        sum_in += pair_hash(&p);
        ck_assert_int_eq(kv_spill_append(local, k, (size_t)kl, v, (size_t)vl, p.origin, err, sizeof err), PC_OK);
    }
    kv_buffer *splitters = NULL;
    ck_assert_msg(shuffle_pick_splitters(local, MPI_COMM_WORLD, &splitters, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_le(kv_count(splitters), nranks - 1);
    char *gone = NULL;
    if (rank == fail_rank) { /* test hook: this rank's spill directory disappears */
        gone = malloc(strlen(dir) + 8);
        sprintf(gone, "%s.gone", dir);
        ck_assert_int_eq(rename(dir, gone), 0);
    }
    shuffle_stats stats;
    res.status = shuffle_exchange(local, splitters, chunk, recv, MPI_COMM_WORLD, &stats, err, sizeof err);
    res.rounds = stats.rounds;
    if (gone) {
        ck_assert_int_eq(rename(gone, dir), 0);
        free(gone);
    }
    /* Both tables stayed within their budgets (pairs here cost under 400 bytes each). */
    ck_assert_uint_le(kv_spill_memory(local), local_budget > 400 ? local_budget : 400);
    ck_assert_uint_le(kv_spill_memory(recv), recv_budget > 400 ? recv_budget : 400);
    kv_spill_free(local);
    if (res.status == PC_OK) {
        kv_merge *m = NULL;
        ck_assert_msg(kv_merge_open(recv, &m, err, sizeof err) == PC_OK, "%s", err);
        char first[256] = {0}, last[256] = {0}, prev[256];
        size_t prevlen = 0;
        int64_t cnt = 0;
        uint64_t seq = 0, sum = 0;
        for (;;) {
            kv_pair p;
            bool eof;
            ck_assert_int_eq(kv_merge_next(m, &p, &eof, err, sizeof err), PC_OK);
            if (eof) break;
            ck_assert_uint_lt(p.klen, 255);
            if (cnt > 0) ck_assert_int_lt(kv_key_compare(prev, prevlen, p.key, p.klen), 0);
            ck_assert_int_eq(shuffle_destination(splitters, p.key, p.klen), rank);
            memcpy(prev, p.key, p.klen);
            prevlen = p.klen;
            if (cnt == 0) memcpy(first, p.key, p.klen);
            uint64_t h = pair_hash(&p);
            sum += h;
            seq = seq * 1099511628211u + h;
            cnt++;
        }
        memcpy(last, prev, prevlen);
        kv_merge_close(m);
        ck_assert_int_eq(stats.pairs_received, cnt);
        /* Across ranks: each non-empty rank's first key is above the previous one's last. */
        char *firsts = malloc(256 * (size_t)nranks), *lasts = malloc(256 * (size_t)nranks);
        int64_t *counts = malloc(sizeof(int64_t) * (size_t)nranks);
        uint64_t *seqs = malloc(sizeof(uint64_t) * (size_t)nranks);
        MPI_Allgather(first, 256, MPI_CHAR, firsts, 256, MPI_CHAR, MPI_COMM_WORLD);
        MPI_Allgather(last, 256, MPI_CHAR, lasts, 256, MPI_CHAR, MPI_COMM_WORLD);
        MPI_Allgather(&cnt, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
        MPI_Allgather(&seq, 1, MPI_UINT64_T, seqs, 1, MPI_UINT64_T, MPI_COMM_WORLD);
        const char *prev_last = NULL;
        for (int r = 0; r < nranks; r++) {
            if (r < 16) {
                res.counts[r] = counts[r];
                res.seq[r] = seqs[r];
            }
            res.total += counts[r];
            if (counts[r] == 0) continue;
            if (prev_last) ck_assert_msg(strcmp(prev_last, firsts + 256 * r) < 0, "rank %d out of order", r);
            prev_last = lasts + 256 * r;
        }
        uint64_t sum_all_in = 0;
        MPI_Allreduce(&sum, &res.sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(&sum_in, &sum_all_in, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        ck_assert(res.sum == sum_all_in); /* every pair arrived once, with its value and origin */
        free(firsts);
        free(lasts);
        free(counts);
        free(seqs);
    }
    kv_free(splitters);
    kv_spill_free(recv);
    remove_tmpdir(dir);
    return res;
}

static int64_t total_pairs(int base, int empty_rank)
{
    int nranks;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int64_t t = 0;
    for (int r = 0; r < nranks; r++) t += r == empty_rank ? 0 : (int64_t)base * (1 + r % 3);
    return t;
}

/* Tiny budgets and a tiny chunk (many runs, many rounds) give exactly what large ones give. */
START_TEST(test_exchange_tiny_equals_large)
{
    int nranks, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int skew = 0; skew < 2; skew++) {
        exchange_result big = run_exchange(1500, skew, -1, KV_SPILL_UNLIMITED, KV_SPILL_UNLIMITED,
                                           (size_t)64 << 20, -1);
        exchange_result tiny = run_exchange(1500, skew, -1, 3000, 2000, 256 * (size_t)nranks, -1);
        ck_assert_int_eq(big.status, PC_OK);
        ck_assert_int_eq(tiny.status, PC_OK);
        ck_assert_int_eq(big.total, total_pairs(1500, -1));
        ck_assert_int_eq(tiny.total, big.total);
        ck_assert(tiny.sum == big.sum);
        for (int r = 0; r < nranks && r < 16; r++) {
            ck_assert_int_eq(tiny.counts[r], big.counts[r]);
            ck_assert(tiny.seq[r] == big.seq[r]);
        }
        if (rank == 0)
            printf("exchange skew %d: %lld rounds with a %d-byte chunk, %lld with 64 MiB\n", skew,
                   (long long)tiny.rounds, 256 * nranks, (long long)big.rounds);
        if (nranks > 1) ck_assert_int_gt(tiny.rounds, 10);
    }
}
END_TEST

/* Shards within 10% of the mean on skewed ids, with unequal amounts per rank. */
START_TEST(test_exchange_balanced_skewed)
{
    int nranks, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    exchange_result res = run_exchange(10000, 1, -1, 256 * 1024, 256 * 1024, 1 << 20, -1);
    ck_assert_int_eq(res.status, PC_OK);
    double mean = (double)res.total / nranks;
    for (int r = 0; r < nranks && r < 16; r++) {
        if (rank == 0) printf("skewed ids: shard %d holds %lld (mean %.0f, %+.1f%%)\n", r,
                              (long long)res.counts[r], mean, 100.0 * ((double)res.counts[r] - mean) / mean);
        ck_assert_msg(res.counts[r] >= 0.9 * mean && res.counts[r] <= 1.1 * mean, "shard %d: %lld of mean %.0f",
                      r, (long long)res.counts[r], mean);
    }
}
END_TEST

START_TEST(test_exchange_empty_rank)
{
    int nranks;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int empty = nranks > 1 ? 1 : 0;
    exchange_result res = run_exchange(800, 0, empty, 2000, 2000, 4096, -1);
    ck_assert_int_eq(res.status, PC_OK);
    ck_assert_int_eq(res.total, total_pairs(800, empty));
    /* Nothing anywhere. */
    res = run_exchange(0, 0, -1, 2000, 2000, 4096, -1);
    ck_assert_int_eq(res.status, PC_OK);
    ck_assert_int_eq(res.total, 0);
}
END_TEST

/* One rank's receiving spill fails part way through: every rank returns the same error. */
START_TEST(test_exchange_failure_agreed)
{
    int nranks, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int fail = nranks > 1 ? 1 : 0;
    exchange_result res = run_exchange(600, 0, -1, KV_SPILL_UNLIMITED, 500, 512 * (size_t)nranks, fail);
    ck_assert_int_eq(res.status, PC_ERR_CANTCREAT);
    char mine[PC_ERRLEN], *all = malloc(PC_ERRLEN * (size_t)nranks);
    snprintf(mine, sizeof mine, "%s", err);
    MPI_Allgather(mine, PC_ERRLEN, MPI_CHAR, all, PC_ERRLEN, MPI_CHAR, MPI_COMM_WORLD);
    for (int r = 0; r < nranks; r++) ck_assert_str_eq(all + (size_t)PC_ERRLEN * r, mine);
    if (nranks > 1) ck_assert_msg(strncmp(mine, "rank 1 on ", 10) == 0, "%s", mine);
    ck_assert_ptr_nonnull(strstr(mine, "cannot create spill run"));
    if (rank == 0) printf("agreed failure: %s\n", mine);
    free(all);
}
END_TEST

/* A pair larger than the chunk's share per rank, and a chunk too small: refused by all. */
START_TEST(test_exchange_refusals_agreed)
{
    int nranks, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *dir = make_tmpdir();
    kv_spill *local = NULL, *recv = NULL;
    ck_assert_int_eq(kv_spill_create(dir, "x", 4096, &local, err, sizeof err), PC_OK);
    ck_assert_int_eq(kv_spill_create(dir, "x", 4096, &recv, err, sizeof err), PC_OK);
    char big[3000];
    memset(big, 'b', sizeof big);
    /* Keys "a..." and "z...": the big pair's "z048-0" is above the 95th percentile, so with 2+
     * ranks it goes to the last rank, not to rank 0 which holds it. */
    for (int i = 0; i < 50; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "%c%03d-%d", i % 2 ? 'a' : 'z', i, rank);
        ck_assert_int_eq(kv_spill_append(local, k, (size_t)kl, big, i == 48 && rank == 0 ? sizeof big : 10,
                                         (kv_origin){0, i}, err, sizeof err), PC_OK);
    }
    kv_buffer *splitters = NULL;
    ck_assert_int_eq(shuffle_pick_splitters(local, MPI_COMM_WORLD, &splitters, err, sizeof err), PC_OK);
    err[0] = 0;
    pc_status st = shuffle_exchange(local, splitters, 1024 * (size_t)nranks, recv, MPI_COMM_WORLD, NULL, err, sizeof err);
    if (nranks > 1) {
        ck_assert_msg(st == PC_ERR_DATA, "status %d: %s", st, err);
        ck_assert_msg(strstr(err, "rank 0 on ") == err && strstr(err, "raise run.memory_mb"), "%s", err);
    }
    else ck_assert_int_eq(st, PC_OK); /* alone, nothing travels over MPI */
    st = shuffle_exchange(local, splitters, 10 * (size_t)nranks, recv, MPI_COMM_WORLD, NULL, err, sizeof err);
    ck_assert_int_eq(st, PC_ERR_USAGE);
    kv_free(splitters);
    kv_spill_free(local);
    kv_spill_free(recv);
    remove_tmpdir(dir);
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    Suite *s = suite_create("reducer");
    TCase *tc = tcase_create("kv");
    tcase_add_test(tc, test_sort_bytewise);
    tcase_add_test(tc, test_sort_large_random);
    tcase_add_test(tc, test_key_compare_definition);
    tcase_add_test(tc, test_duplicate_found_with_origins);
    tcase_add_test(tc, test_pack_round_trip_and_malformed);
    suite_add_tcase(s, tc);
    TCase *mpi = tcase_create("shuffle");
    tcase_set_timeout(mpi, 120);
    suite_add_tcase(s, mpi);
    TCase *sp = tcase_create("spill");
    tcase_add_test(sp, test_spill_merge_any_budget);
    tcase_add_test(sp, test_spill_create_refused);
    tcase_add_test(sp, test_spill_failures_leave_no_files);
    tcase_add_loop_test(sp, test_spill_corrupt_run, 0, 8);
    tcase_add_test(sp, test_spill_sweep);
    tcase_add_test(sp, test_spill_reservoir);
    tcase_set_timeout(sp, 120);
    suite_add_tcase(s, sp);
    TCase *ex = tcase_create("exchange");
    tcase_add_test(ex, test_exchange_tiny_equals_large);
    tcase_add_test(ex, test_exchange_balanced_skewed);
    tcase_add_test(ex, test_exchange_empty_rank);
    tcase_add_test(ex, test_exchange_failure_agreed);
    tcase_add_test(ex, test_exchange_refusals_agreed);
    tcase_set_timeout(ex, 120);
    suite_add_tcase(s, ex);
    SRunner *sr = srunner_create(s);
    /* MPI and fork() do not mix: collective tests must run in this process. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr), any = 0;
    srunner_free(sr);
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
