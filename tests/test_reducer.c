/* Unit tests of reducer/: kv buffer, sort, duplicates, packing, k-way merge, and the MPI sample
 * sort. Run alone (1 rank) and under `mpirun -np 3` (CK_FORK=no): the shuffle tests check
 * properties that hold for any rank count. */
#include <check.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reducer/kv.h"
#include "reducer/shuffle.h"

static char err[PC_ERRLEN];

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

START_TEST(test_merge_runs)
{
    kv_buffer *runs[3] = {kv_create(), kv_create(), kv_create()};
    append_str(runs[0], "a", "", 0);
    append_str(runs[0], "d", "", 0);
    append_str(runs[1], "b", "", 0);
    append_str(runs[1], "c", "", 0);
    append_str(runs[1], "e", "", 0);
    kv_buffer *out = NULL;
    ck_assert_int_eq(shuffle_merge_runs(runs, 3, &out, err, sizeof err), PC_OK);
    ck_assert_int_eq(kv_count(out), 5);
    const char *want[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) ck_assert(key_is(out, i, want[i]));
    kv_free(out);
    for (int i = 0; i < 3; i++) kv_free(runs[i]);
}
END_TEST

/* Every rank makes `per_rank` pairs with skewed keys (a common prefix, very different
 * lengths); after the sample sort the union must be the same pairs, sorted within and across
 * ranks. */
static void check_shuffle(int per_rank, int skew)
{
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    kv_buffer *local = kv_create();
    uint64_t sum_in = 0;
    for (int i = 0; i < per_rank; i++) {
        char k[64], v[32];
        int id = i * nranks + rank;
        if (skew) snprintf(k, sizeof k, "user-000000%0*d", 1 + id % 7, id);
        else snprintf(k, sizeof k, "%d", id);
        snprintf(v, sizeof v, "v%d", id);
        append_str(local, k, v, i);
        sum_in += (uint64_t)id * 2654435761u;
    }
    kv_buffer *out = NULL;
    ck_assert_int_eq(shuffle_sample_sort(local, MPI_COMM_WORLD, &out, err, sizeof err), PC_OK);
    int64_t n = kv_count(out), total = 0;
    uint64_t sum_out = 0, sum_all_in = 0, sum_all_out = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t kl, vl;
        const char *k = kv_key(out, i, &kl);
        const char *v = kv_value(out, i, &vl);
        ck_assert(vl > 1 && v[0] == 'v');
        char num[32] = {0};
        memcpy(num, v + 1, vl - 1 < 31 ? vl - 1 : 31); /* values are not NUL-terminated */
        sum_out += (uint64_t)strtoll(num, NULL, 10) * 2654435761u;
        if (i > 0) {
            size_t pl;
            const char *p = kv_key(out, i - 1, &pl);
            ck_assert_int_lt(kv_key_compare(p, pl, k, kl), 0);
        }
    }
    MPI_Allreduce(&n, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&sum_in, &sum_all_in, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&sum_out, &sum_all_out, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    ck_assert_int_eq(total, (int64_t)per_rank * nranks);
    ck_assert(sum_all_in == sum_all_out);
    /* Across ranks: my last key < the next non-empty rank's first key. */
    char first[64] = {0}, last[64] = {0};
    if (n > 0) {
        size_t kl;
        const char *k = kv_key(out, 0, &kl);
        memcpy(first, k, kl < 63 ? kl : 63);
        k = kv_key(out, n - 1, &kl);
        memcpy(last, k, kl < 63 ? kl : 63);
    }
    char *firsts = malloc(64 * (size_t)nranks), *lasts = malloc(64 * (size_t)nranks);
    int64_t *counts = malloc(sizeof(int64_t) * (size_t)nranks);
    MPI_Allgather(first, 64, MPI_CHAR, firsts, 64, MPI_CHAR, MPI_COMM_WORLD);
    MPI_Allgather(last, 64, MPI_CHAR, lasts, 64, MPI_CHAR, MPI_COMM_WORLD);
    MPI_Allgather(&n, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
    const char *prev_last = NULL;
    for (int r = 0; r < nranks; r++) {
        if (counts[r] == 0) continue;
        if (prev_last) ck_assert_msg(strcmp(prev_last, firsts + 64 * r) < 0, "rank %d out of order", r);
        prev_last = lasts + 64 * r;
        /* Balance: regular sampling keeps every shard within 25% of the mean here. */
        if (per_rank >= 1000)
            ck_assert_msg(counts[r] < per_rank * 5 / 4 && counts[r] > per_rank * 3 / 4,
                          "rank %d holds %lld of %d per rank", r, (long long)counts[r], per_rank);
    }
    free(firsts);
    free(lasts);
    free(counts);
    kv_free(out);
    kv_free(local);
}

START_TEST(test_shuffle_numeric_ids) { check_shuffle(5000, 0); }
END_TEST
START_TEST(test_shuffle_skewed_ids) { check_shuffle(5000, 1); }
END_TEST
START_TEST(test_shuffle_tiny_and_empty) { check_shuffle(1, 0); check_shuffle(0, 0); }
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
    tcase_add_test(tc, test_duplicate_found_with_origins);
    tcase_add_test(tc, test_pack_round_trip_and_malformed);
    tcase_add_test(tc, test_merge_runs);
    suite_add_tcase(s, tc);
    TCase *mpi = tcase_create("shuffle");
    tcase_add_test(mpi, test_shuffle_numeric_ids);
    tcase_add_test(mpi, test_shuffle_skewed_ids);
    tcase_add_test(mpi, test_shuffle_tiny_and_empty);
    tcase_set_timeout(mpi, 120);
    suite_add_tcase(s, mpi);
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
