/* tool_bench_lookup TABLE [--gets N] [--keys K] [--threads T] [--miss] [--seed S] [--cold]
 *
 * Benchmark helper (scripts/bench_serve.sh): in-process lookups through the installed library
 * (storage/precast.h).  Opens TABLE once with precast_table_open; T threads share the handle
 * and do N gets between them (N/T each, default 2,000,000 from 1 thread) of random keys
 * "key:%012d" over [0, K) (default K = 1,000,000: the keys redis-benchmark -r K asks for).
 * --miss asks "key:%012d-miss" instead: keys that are absent but lie inside the shards' key
 * ranges, so each reaches LevelDB and is answered by the bloom filter (a key outside every
 * range would be answered by the range check alone).
 *
 * The table is warmed first (issue 7's target is the p99 "on a warm table"): one untimed get
 * of each present key of [0, K), in order, so that every block the run reads has been read
 * once (mapped pages, index and filter blocks in the cache).  --cold skips it.
 *
 * Each precast_table_get call is timed alone with clock_gettime(CLOCK_MONOTONIC) (key
 * formatting and precast_free are outside the interval); gets/s is N over the wall time from
 * the threads' common start to the last one's end, everything included.  Prints one line:
 *
 *   tool_bench_lookup: threads=T gets=N miss=0|1 warm=0|1 seconds=S gets_per_s=R p50_us=A
 *       p99_us=B found=F
 *
 * and fails (exit 1) if a hit run misses a key or a miss run finds one; nothing is asserted
 * on timing. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/precast.h"

typedef struct options {
    const char *table;
    uint64_t gets, keys, seed;
    unsigned threads;
    bool miss;
    bool cold; /* no warm-up pass */
} options;

/* One thread's share of the run; everything it writes is its own. */
typedef struct worker {
    precast_table *t;
    const options *o;
    pthread_barrier_t *start;
    uint64_t gets;            /* this thread's share */
    uint64_t rng;             /* splitmix64 state */
    uint32_t *lat_ns;         /* gets entries */
    uint64_t found;
    double t0, t1;            /* monotonic seconds at its start and end */
    int status;               /* 0, or precast's code */
    char err[1024];
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int format_key(char *key, size_t cap, uint64_t n, bool miss)
{
    return snprintf(key, cap, miss ? "key:%012" PRIu64 "-miss" : "key:%012" PRIu64, n);
}

/* One timed get; returns precast's status. */
static int timed_get(worker *w, const char *key, size_t klen, uint32_t *lat)
{
    char *value = NULL;
    size_t vlen = 0;
    bool found = false;
    uint64_t a = now_ns();
    int rc = precast_table_get(w->t, key, klen, &value, &vlen, &found, w->err, sizeof w->err);
    uint64_t b = now_ns();
    *lat = (uint32_t)(b - a > UINT32_MAX ? UINT32_MAX : b - a);
    w->found += found;
    precast_free(value);
    return rc;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    char key[64];
    pthread_barrier_wait(w->start);
    w->t0 = now_s();
    for (uint64_t i = 0; i < w->gets && w->status == 0; i++) {
        int klen = format_key(key, sizeof key, splitmix64(&w->rng) % w->o->keys, w->o->miss);
        w->status = timed_get(w, key, (size_t)klen, &w->lat_ns[i]);
    }
    w->t1 = now_s();
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: tool_bench_lookup TABLE [--gets N] [--keys K] [--threads T] [--miss] [--seed S] [--cold]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* Returns 0, or 2 after printing the usage. */
static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.gets = 2000000, .keys = 1000000, .seed = 1, .threads = 1};
    if (argc < 2 || argv[1][0] == '-')
        return usage();
    o->table = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        uint64_t v = 0;
        bool has_value = i + 1 < argc;
        if (strcmp(argv[i], "--miss") == 0)
            o->miss = true;
        else if (strcmp(argv[i], "--cold") == 0)
            o->cold = true;
        else if (strcmp(argv[i], "--gets") == 0 && has_value && parse_u64(argv[++i], &v))
            o->gets = v;
        else if (strcmp(argv[i], "--keys") == 0 && has_value && parse_u64(argv[++i], &v))
            o->keys = v;
        else if (strcmp(argv[i], "--seed") == 0 && has_value && parse_u64(argv[++i], &v))
            o->seed = v;
        else if (strcmp(argv[i], "--threads") == 0 && has_value && parse_u64(argv[++i], &v) && v <= 64)
            o->threads = (unsigned)v;
        else {
            fprintf(stderr, "tool_bench_lookup: bad argument '%s'%s%s%s\n", arg, arg != argv[i] ? " '" : "",
                    arg != argv[i] ? argv[i] : "", arg != argv[i] ? "'" : "");
            return usage();
        }
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted[0..n), nearest rank, in microseconds. */
static double quantile_us(const uint32_t *sorted, uint64_t n, double q)
{
    double want = q * (double)n;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++; /* ceil */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1] / 1000.0;
}

/* Starts the workers on one barrier and joins them.  Returns 0 or 1 (message printed). */
static int run_workers(worker *w, unsigned n, pthread_barrier_t *start)
{
    pthread_t tid[64];
    unsigned started = 0;
    int rc = 0;
    for (; started < n; started++) {
        int e = pthread_create(&tid[started], NULL, run_worker, &w[started]);
        if (e != 0) {
            fprintf(stderr, "tool_bench_lookup: pthread_create: %s\n", strerror(e));
            rc = 1;
            break;
        }
    }
    if (rc != 0) {
        /* The barrier waits for n threads: let the started ones through with no work. */
        for (unsigned i = 0; i < started; i++)
            w[i].gets = 0;
        for (unsigned i = started; i < n; i++)
            pthread_barrier_wait(start);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return rc;
}

/* Runs the measurement with lat (o->gets entries) shared out among the workers. */
static int measure(precast_table *t, const options *o, uint32_t *lat)
{
    worker w[64];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, o->threads);
    uint64_t off = 0;
    for (unsigned i = 0; i < o->threads; i++) {
        uint64_t share = o->gets / o->threads + (i < o->gets % o->threads);
        w[i] = (worker){.t = t, .o = o, .start = &start, .gets = share, .rng = o->seed * 1000003u + i, .lat_ns = lat + off};
        off += share;
    }
    int rc = run_workers(w, o->threads, &start);
    pthread_barrier_destroy(&start);
    double t0 = w[0].t0, t1 = w[0].t1;
    uint64_t found = 0;
    for (unsigned i = 0; i < o->threads && rc == 0; i++) {
        if (w[i].status != 0) {
            fprintf(stderr, "tool_bench_lookup: %s\n", w[i].err);
            rc = 1;
        }
        t0 = w[i].t0 < t0 ? w[i].t0 : t0;
        t1 = w[i].t1 > t1 ? w[i].t1 : t1;
        found += w[i].found;
    }
    if (rc != 0)
        return rc;
    qsort(lat, o->gets, sizeof *lat, cmp_u32);
    printf("tool_bench_lookup: threads=%u gets=%" PRIu64 " miss=%d warm=%d seconds=%.3f gets_per_s=%.0f p50_us=%.2f p99_us=%.2f found=%" PRIu64 "\n",
           o->threads, o->gets, o->miss, !o->cold, t1 - t0, (double)o->gets / (t1 - t0), quantile_us(lat, o->gets, 0.50),
           quantile_us(lat, o->gets, 0.99), found);
    if (found != (o->miss ? 0 : o->gets)) {
        fprintf(stderr, "tool_bench_lookup: %" PRIu64 " of %" PRIu64 " %s keys found (does %s hold key:%012d.. key:%012" PRIu64 "?)\n",
                found, o->gets, o->miss ? "absent" : "present", o->table, 0, o->keys - 1);
        return 1;
    }
    return 0;
}

/* One untimed get of each present key of [0, keys), in key order.  Returns 0 or 1 (message
 * printed, e.g. when the table lacks a key). */
static int warm_up(precast_table *t, const options *o)
{
    char key[64], err[1024];
    for (uint64_t i = 0; i < o->keys; i++) {
        int klen = format_key(key, sizeof key, i, false);
        char *value = NULL;
        size_t vlen = 0;
        bool found = false;
        int rc = precast_table_get(t, key, (size_t)klen, &value, &vlen, &found, err, sizeof err);
        precast_free(value);
        if (rc != 0 || !found) {
            fprintf(stderr, "tool_bench_lookup: warm-up: %s\n", rc != 0 ? err : "a key of [0, --keys) is missing");
            if (rc == 0)
                fprintf(stderr, "tool_bench_lookup: %s lacks %s\n", o->table, key);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    uint32_t *lat = malloc(o.gets * sizeof *lat);
    if (lat == NULL) {
        fprintf(stderr, "tool_bench_lookup: out of memory for %" PRIu64 " latencies\n", o.gets);
        return 1;
    }
    char err[1024];
    precast_table *t = NULL;
    int rc = precast_table_open(o.table, &t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "tool_bench_lookup: %s\n", err);
        free(lat);
        return 1;
    }
    if (!o.cold)
        rc = warm_up(t, &o);
    if (rc == 0)
        rc = measure(t, &o, lat);
    precast_table_close(t);
    free(lat);
    return rc;
}
