/* bench_write [--rows N] [--from TABLE | --synthetic] [--dir DIR] [--runs R] [--gets G]
 *             [--compression snappy|none] [--block-size B] [--write-buffer B]
 *             [--batch-bytes B] [--batch-puts P] [--bloom-bits K]
 *
 * Benchmark of the table write (issue 7): storage/'s shard writer against a bare program that
 * writes the same sorted pairs into a fresh LevelDB with the same options, in the same run,
 * then the random-read speed of what storage/ wrote, through the production read path.
 *
 * Pairs: the first N (default 1,000,000) pairs of TABLE's current version, read with
 * table_scan (default var/bench/table, the table `make bench` leaves, if it has a current
 * version), else N synthetic pairs shaped like var/bench's (a 10-class softmax_topk job with
 * top_k = 1): keys "r0000000".., values {"label":"6","p":0.107721,"top":[["6",0.107721]]}.
 * They are loaded into memory first, so that neither writer is timed reading them.
 *
 * Each of R runs (default 3) times, interleaved so that drift of the machine hits both alike:
 *   leveldb  leveldb_open (create, error if exists), puts in key order grouped into write
 *            batches as the shard writer groups them, leveldb_close;
 *   precast  shard_writer_open, shard_writer_put x N, shard_writer_close (which also flushes
 *            the memtable into a table file and hands back the rows, bytes and checksum,
 *            checked here against the pairs).
 * Each figure is the best of the R runs: the machine's noise only ever slows a run down.
 * The options flags set the bare LevelDB side only; their defaults are storage/shard.c's
 * constants and must be kept equal to them (the comment at the top of shard.c records the
 * sweep that chose them, made by building shard.c with each row's constants).  Besides wall
 * time, the CPU time of the whole process (LevelDB's background thread included) is shown:
 * on a machine shared with other jobs it moves less than the wall time.
 *
 * Reads: the last precast shard is published as a one-shard table; R times, it is opened with
 * table_open (storage/table.c's options) and asked G (default 1,000,000) random keys of the
 * pairs from 1 thread with the block cache cold (as after a server's start), G other random
 * keys with the cache warm, and G absent keys (a key + "~": inside the shard's range, so that
 * LevelDB and its bloom filter answer, not the range check); best of the R.  Output, one
 * line each:
 *
 *   pairs: 1000000 from var/bench/table, 56.8 bytes/pair
 *   options: compression=none block_size=2048 write_buffer=4194304 batch=1048576 bytes/...
 *   write: leveldb 3450000 keys/s
 *   write: precast 3300000 keys/s (0.96 of leveldb)
 *   cpu: leveldb 0.450 s, precast 0.510 s (0.88 of leveldb's keys/cpu-s)
 *   disk: precast 64.5 bytes/pair in 21 table files
 *   read: precast 460000 gets/s hit, 500000 miss
 *   read: precast 470000 gets/s hit, warm cache
 *   cpu: reads 460000 gets/cpu-s hit, 470000 warm, 500000 miss
 *
 * Exit 0, or 1 after a message (a failed write, a wrong count or checksum, a key not found, a
 * miss found); 2 for a bad command line. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/fsutil.h" /* private: path formatting and removal of the work dirs */
#include "storage/table.h"

#define DEFAULT_TABLE "var/bench/table"

/* One pair: offsets into the arena, the key's bytes followed by the value's. */
typedef struct pair_ref {
    size_t off;
    uint32_t klen, vlen;
} pair_ref;

typedef struct pairs {
    char *arena;
    size_t used, cap;
    pair_ref *ref;
    int64_t n, cap_n;
    size_t max_klen;
    char source[PATH_MAX + 32];
} pairs;

/* The bare side's LevelDB options and batching (defaults: storage/shard.c's constants). */
typedef struct ldb_conf {
    int compression; /* leveldb_no_compression or leveldb_snappy_compression */
    size_t block_size, write_buffer, batch_bytes;
    int64_t batch_puts;
    int bloom_bits;
} ldb_conf;

typedef struct options {
    int64_t rows, gets;
    int runs;
    const char *from; /* NULL: DEFAULT_TABLE if it has a current version, else synthetic */
    bool synthetic;
    const char *dir;  /* NULL: a fresh directory under $TMPDIR, removed at the end */
    ldb_conf conf;
} options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (every thread, LevelDB's background one included). */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- the pairs ---- */

static const char *pair_key(const pairs *p, int64_t i)
{
    return p->arena + p->ref[i].off;
}

static const char *pair_val(const pairs *p, int64_t i)
{
    return p->arena + p->ref[i].off + p->ref[i].klen;
}

static void pairs_free(pairs *p)
{
    free(p->arena);
    free(p->ref);
    memset(p, 0, sizeof *p);
}

/* Appends a copy of (key, val).  Returns 0, or 1 after a message (out of memory). */
static int pairs_add(pairs *p, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        fprintf(stderr, "bench_write: a pair of %zu + %zu bytes is too large\n", klen, vlen);
        return 1;
    }
    if (p->used + klen + vlen > p->cap) {
        size_t cap = p->cap ? p->cap : (size_t)64 << 20;
        while (cap < p->used + klen + vlen)
            cap *= 2;
        char *a = realloc(p->arena, cap);
        if (a == NULL)
            goto oom;
        p->arena = a;
        p->cap = cap;
    }
    if (p->n == p->cap_n) {
        int64_t cap = p->cap_n ? 2 * p->cap_n : 1 << 20;
        pair_ref *r = realloc(p->ref, (size_t)cap * sizeof *r);
        if (r == NULL)
            goto oom;
        p->ref = r;
        p->cap_n = cap;
    }
    memcpy(p->arena + p->used, key, klen);
    memcpy(p->arena + p->used + klen, val, vlen);
    p->ref[p->n++] = (pair_ref){.off = p->used, .klen = (uint32_t)klen, .vlen = (uint32_t)vlen};
    p->used += klen + vlen;
    if (klen > p->max_klen)
        p->max_klen = klen;
    return 0;
oom:
    fprintf(stderr, "bench_write: out of memory for %" PRId64 " pairs\n", p->n + 1);
    return 1;
}

/* Reads the first `rows` pairs of table's current version (fewer if it holds fewer).
 * Returns 0, or 1 after a message. */
static int pairs_from_table(pairs *p, const char *table, int64_t rows)
{
    char err[PC_ERRLEN];
    table_scan *s = NULL;
    if (table_scan_open(table, NULL, &s, err, sizeof err) != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    int rc = 0;
    while (rc == 0 && p->n < rows) {
        const char *k, *v;
        size_t kl, vl;
        bool eof = false;
        if (table_scan_next(s, &k, &kl, &v, &vl, &eof, err, sizeof err) != PC_OK) {
            fprintf(stderr, "bench_write: %s\n", err);
            rc = 1;
        } else if (eof)
            break;
        else
            rc = pairs_add(p, k, kl, v, vl);
    }
    table_scan_close(s);
    snprintf(p->source, sizeof p->source, "%s", table);
    return rc;
}

/* `rows` pairs shaped like var/bench's (bench.onnx, a 10-class softmax_topk job with
 * top_k = 1): keys "r" + a zero-padded row number (at least 7 digits, as many as the last row
 * needs, so that they sort), values {"label":"6","p":0.107721,"top":[["6",0.107721]]} with
 * that model's skewed labels and probabilities near 0.1, so that they compress as its values
 * do.  Returns 0, or 1 after a message. */
static int pairs_synthetic(pairs *p, int64_t rows)
{
    /* Labels in about the proportions bench.onnx gives them, one draw picking a character. */
    static const char labels[] = "66666666888899990014";
    int digits = snprintf(NULL, 0, "%" PRId64, rows - 1);
    digits = digits < 7 ? 7 : digits;
    uint64_t rng = 7;
    for (int64_t i = 0; i < rows; i++) {
        char key[32], val[96];
        int kl = snprintf(key, sizeof key, "r%0*" PRId64, digits, i);
        char label = labels[splitmix64(&rng) % (sizeof labels - 1)];
        double prob = 0.1 + (double)(splitmix64(&rng) % 12000) * 1e-6;
        int vl = snprintf(val, sizeof val, "{\"label\":\"%c\",\"p\":%.6f,\"top\":[[\"%c\",%.6f]]}",
                          label, prob, label, prob);
        if (pairs_add(p, key, (size_t)kl, val, (size_t)vl) != 0)
            return 1;
    }
    snprintf(p->source, sizeof p->source, "synthetic");
    return 0;
}

/* Whether table has a current version we can read, without a message if not. */
static bool table_readable(const char *table)
{
    char version[NAME_MAX + 1], err[PC_ERRLEN];
    return table_current(table, version, sizeof version, err, sizeof err) == PC_OK;
}

static int pairs_load(pairs *p, const options *o)
{
    if (o->synthetic)
        return pairs_synthetic(p, o->rows);
    if (o->from != NULL)
        return pairs_from_table(p, o->from, o->rows);
    if (table_readable(DEFAULT_TABLE))
        return pairs_from_table(p, DEFAULT_TABLE, o->rows);
    return pairs_synthetic(p, o->rows);
}

/* ---- the two writers ---- */

/* Wall and CPU seconds of one write, from the open to the end of the close. */
typedef struct timing {
    double wall, cpu;
} timing;

static timing timing_start(void)
{
    return (timing){.wall = now_s(), .cpu = cpu_s()};
}

static timing timing_since(timing t0)
{
    return (timing){.wall = now_s() - t0.wall, .cpu = cpu_s() - t0.cpu};
}

/* Writes every pair into a fresh LevelDB at path with c's options, batched as c says, and
 * closes it; *took is the time from the open to the end of the close.  Returns 0 or 1. */
static int write_leveldb(const pairs *p, const ldb_conf *c, const char *path, timing *took)
{
    leveldb_options_t *o = leveldb_options_create();
    leveldb_filterpolicy_t *bloom = leveldb_filterpolicy_create_bloom(c->bloom_bits);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writebatch_t *batch = leveldb_writebatch_create();
    leveldb_options_set_create_if_missing(o, 1);
    leveldb_options_set_error_if_exists(o, 1);
    leveldb_options_set_paranoid_checks(o, 1);
    leveldb_options_set_filter_policy(o, bloom);
    leveldb_options_set_write_buffer_size(o, c->write_buffer);
    leveldb_options_set_block_size(o, c->block_size);
    leveldb_options_set_compression(o, c->compression);
    char *lerr = NULL;
    timing t0 = timing_start();
    leveldb_t *db = leveldb_open(o, path, &lerr);
    size_t bytes = 0;
    int64_t puts = 0;
    for (int64_t i = 0; lerr == NULL && i < p->n; i++) {
        const pair_ref *r = &p->ref[i];
        leveldb_writebatch_put(batch, pair_key(p, i), r->klen, pair_val(p, i), r->vlen);
        bytes += (size_t)r->klen + r->vlen;
        if (++puts >= c->batch_puts || bytes >= c->batch_bytes || i + 1 == p->n) {
            leveldb_write(db, wo, batch, &lerr);
            leveldb_writebatch_clear(batch);
            bytes = 0;
            puts = 0;
        }
    }
    if (db != NULL)
        leveldb_close(db);
    *took = timing_since(t0);
    int rc = 0;
    if (lerr != NULL) {
        fprintf(stderr, "bench_write: %s: %s\n", path, lerr);
        leveldb_free(lerr);
        rc = 1;
    }
    leveldb_writebatch_destroy(batch);
    leveldb_writeoptions_destroy(wo);
    leveldb_options_destroy(o);
    leveldb_filterpolicy_destroy(bloom);
    return rc;
}

/* Writes every pair through storage/'s shard writer into a new shard at path; fills *info
 * (the caller clears it) and *took (open to the end of the close).  Returns 0 or 1. */
static int write_precast(const pairs *p, const char *path, shard_info *info, timing *took)
{
    char err[PC_ERRLEN];
    shard_writer *w = NULL;
    memset(info, 0, sizeof *info);
    timing t0 = timing_start();
    pc_status rc = shard_writer_open(path, &w, err, sizeof err);
    for (int64_t i = 0; rc == PC_OK && i < p->n; i++)
        rc = shard_writer_put(w, pair_key(p, i), p->ref[i].klen, pair_val(p, i), p->ref[i].vlen,
                              err, sizeof err);
    if (rc == PC_OK)
        rc = shard_writer_close(w, info, err, sizeof err);
    else
        shard_writer_abort(w);
    *took = timing_since(t0);
    if (rc != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    return 0;
}

/* Bytes and number of the LevelDB table files (*.ldb) in dir. */
static void table_files(const char *dir, int64_t *bytes, int64_t *files)
{
    *bytes = 0;
    *files = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[PATH_MAX];
        struct stat st;
        if (n < 4 || strcmp(e->d_name + n - 4, ".ldb") != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            stat(path, &st) == 0) {
            *bytes += st.st_size;
            (*files)++;
        }
    }
    closedir(d);
}

static int remove_tree(const char *path)
{
    char err[PC_ERRLEN];
    if (fs_remove_tree(path, err, sizeof err) != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    return 0;
}

/* The sum of table_pair_hash over every pair: what the writer's checksum must be. */
static uint64_t pairs_checksum(const pairs *p)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < p->n; i++)
        sum += table_pair_hash(pair_key(p, i), p->ref[i].klen, pair_val(p, i), p->ref[i].vlen);
    return sum;
}

/* Whether the writer's account of what it wrote is right.  Returns 0, or 1 after a message. */
static int check_info(const pairs *p, const shard_info *info, uint64_t checksum)
{
    if (info->rows == p->n && info->bytes == (int64_t)p->used && info->checksum == checksum)
        return 0;
    fprintf(stderr,
            "bench_write: the writer reports %" PRId64 " rows, %" PRId64
            " bytes, checksum %016" PRIx64 "; wrote %" PRId64 ", %zu, %016" PRIx64 "\n",
            info->rows, info->bytes, info->checksum, p->n, p->used, checksum);
    return 1;
}

/* The best (least) time of each writer over o->runs interleaved runs.  The last run's
 * precast shard is left at shard_path with its *info, for the reads.  Returns 0 or 1. */
static void keep_best(timing *best, timing t)
{
    best->wall = t.wall < best->wall ? t.wall : best->wall;
    best->cpu = t.cpu < best->cpu ? t.cpu : best->cpu;
}

static int bench_writes(const pairs *p, const options *o, const char *scratch,
                        const char *shard_path, timing *best_ldb, timing *best_pc,
                        shard_info *info)
{
    *best_ldb = *best_pc = (timing){.wall = 1e300, .cpu = 1e300};
    uint64_t checksum = pairs_checksum(p);
    for (int r = 0; r < o->runs; r++) {
        timing t;
        if (write_leveldb(p, &o->conf, scratch, &t) != 0 || remove_tree(scratch) != 0)
            return 1;
        keep_best(best_ldb, t);
        shard_info_clear(info);
        if (write_precast(p, shard_path, info, &t) != 0 || check_info(p, info, checksum) != 0)
            return 1;
        keep_best(best_pc, t);
        if (r + 1 < o->runs && remove_tree(shard_path) != 0)
            return 1;
    }
    return 0;
}

/* ---- the reads ---- */

/* Publishes the staging dir (holding shard-00000, described by *info) as a version of
 * table_dir.  Returns 0 or 1. */
static int publish_one_shard(const char *table_dir, const char *staging, shard_info *info,
                             int64_t rows)
{
    char err[PC_ERRLEN], version[NAME_MAX + 1], mpath[PATH_MAX], created[32];
    static char *no_paths[1];
    static int64_t no_sizes[1];
    manifest m = {
        .format_version = 1, .created = created, .job = "bench", .version = version,
        .input_paths = no_paths, .input_sizes = no_sizes, .rows_in = rows,
        .rows_written = rows, .checksum = info->checksum, .value_format = "json",
        .head = "softmax_topk", .ranks = 1, .nshards = 1, .shards = info,
    };
    pc_status rc = table_iso8601(time(NULL), created, sizeof created, err, sizeof err);
    if (rc == PC_OK)
        rc = table_version_name(table_dir, "bench", version, sizeof version, err, sizeof err);
    if (rc == PC_OK)
        rc = fs_path(mpath, sizeof mpath, PC_ERR_CANTCREAT, err, sizeof err, "%s/MANIFEST.json",
                     staging);
    if (rc == PC_OK)
        rc = manifest_write(mpath, &m, err, sizeof err);
    if (rc == PC_OK)
        rc = table_publish(table_dir, staging, version, err, sizeof err);
    if (rc != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    return 0;
}

/* The keys of `gets` lookups, drawn at random from p (miss: each key + "~", absent), laid
 * out one after the other so that the timed loop reads them in order, not scattered over
 * the pairs.  Returns the buffer (the caller frees it) with (*off)[i] the start of key i and
 * (*off)[gets] the end, or NULL after a message. */
static char *draw_keys(const pairs *p, int64_t gets, bool miss, uint64_t seed, size_t **off)
{
    size_t per = p->max_klen + 1;
    char *keys = malloc((size_t)gets * per);
    *off = malloc(((size_t)gets + 1) * sizeof **off);
    if (keys == NULL || *off == NULL) {
        fprintf(stderr, "bench_write: out of memory for %" PRId64 " keys\n", gets);
        free(keys);
        free(*off);
        return NULL;
    }
    uint64_t rng = seed;
    size_t used = 0;
    for (int64_t i = 0; i < gets; i++) {
        int64_t j = (int64_t)(splitmix64(&rng) % (uint64_t)p->n);
        (*off)[i] = used;
        memcpy(keys + used, pair_key(p, j), p->ref[j].klen);
        used += p->ref[j].klen;
        if (miss)
            keys[used++] = '~';
    }
    (*off)[gets] = used;
    return keys;
}

/* Times `gets` lookups of random keys of p (miss: absent ones, see draw_keys; seed: which)
 * through t into *took.  Returns 0, or 1 after a message (an error, a wrong answer). */
static int time_gets(table *t, const pairs *p, int64_t gets, bool miss, uint64_t seed,
                     timing *took)
{
    char err[PC_ERRLEN];
    size_t *off = NULL;
    char *keys = draw_keys(p, gets, miss, seed, &off);
    if (keys == NULL)
        return 1;
    int64_t found_n = 0;
    pc_status rc = PC_OK;
    timing t0 = timing_start();
    for (int64_t i = 0; i < gets && rc == PC_OK; i++) {
        char *val = NULL;
        size_t vlen = 0;
        bool found = false;
        rc = table_get(t, keys + off[i], off[i + 1] - off[i], &val, &vlen, &found, err,
                       sizeof err);
        found_n += found;
        free(val);
    }
    *took = timing_since(t0);
    free(keys);
    free(off);
    if (rc != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    if (found_n != (miss ? 0 : gets)) {
        fprintf(stderr, "bench_write: %" PRId64 " of %" PRId64 " %s keys found\n", found_n, gets,
                miss ? "absent" : "present");
        return 1;
    }
    return 0;
}

/* One open of the table: hits from the fresh open (cold: the block cache fills as it goes,
 * as after a server's start), hits again (warm) and misses, `gets` of each; took[] gets
 * their times in that order.  Returns 0 or 1. */
static int read_once(const char *table_dir, const pairs *p, int64_t gets, timing took[3])
{
    char err[PC_ERRLEN];
    table *t = NULL;
    if (table_open(table_dir, &t, err, sizeof err) != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    int rc = time_gets(t, p, gets, false, 1, &took[0]);
    if (rc == 0)
        rc = time_gets(t, p, gets, false, 3, &took[1]);
    if (rc == 0)
        rc = time_gets(t, p, gets, true, 2, &took[2]);
    table_close(t);
    return rc;
}

/* The best of `runs` read_once.  Returns 0 or 1. */
static int bench_reads(const char *table_dir, const pairs *p, int64_t gets, int runs,
                       timing best[3])
{
    for (int i = 0; i < 3; i++)
        best[i] = (timing){.wall = 1e300, .cpu = 1e300};
    for (int r = 0; r < runs; r++) {
        timing took[3];
        if (read_once(table_dir, p, gets, took) != 0)
            return 1;
        for (int i = 0; i < 3; i++)
            keep_best(&best[i], took[i]);
    }
    return 0;
}

/* ---- command line ---- */

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_write [--rows N] [--from TABLE | --synthetic] [--dir DIR] [--runs R]\n"
            "                   [--gets G] [--compression snappy|none] [--block-size B]\n"
            "                   [--write-buffer B] [--batch-bytes B] [--batch-puts P]\n"
            "                   [--bloom-bits K]     (B: bytes, or with a k or m suffix)\n");
    return 2;
}

/* A positive integer with an optional k or m suffix (KiB, MiB). */
static bool parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024, end++;
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > INT64_MAX / mult)
        return false;
    *out = (int64_t)v * mult;
    return true;
}

/* Applies one "--name value" option.  Returns false if it is not one. */
static bool set_option(options *o, const char *name, const char *arg)
{
    int64_t v = 0;
    if (strcmp(name, "--from") == 0)
        o->from = arg;
    else if (strcmp(name, "--dir") == 0)
        o->dir = arg;
    else if (strcmp(name, "--compression") == 0 && strcmp(arg, "snappy") == 0)
        o->conf.compression = leveldb_snappy_compression;
    else if (strcmp(name, "--compression") == 0 && strcmp(arg, "none") == 0)
        o->conf.compression = leveldb_no_compression;
    else if (!parse_size(arg, &v))
        return false;
    else if (strcmp(name, "--rows") == 0)
        o->rows = v;
    else if (strcmp(name, "--gets") == 0)
        o->gets = v;
    else if (strcmp(name, "--runs") == 0 && v <= 100)
        o->runs = (int)v;
    else if (strcmp(name, "--block-size") == 0)
        o->conf.block_size = (size_t)v;
    else if (strcmp(name, "--write-buffer") == 0)
        o->conf.write_buffer = (size_t)v;
    else if (strcmp(name, "--batch-bytes") == 0)
        o->conf.batch_bytes = (size_t)v;
    else if (strcmp(name, "--batch-puts") == 0)
        o->conf.batch_puts = v;
    else if (strcmp(name, "--bloom-bits") == 0 && v <= 100)
        o->conf.bloom_bits = (int)v;
    else
        return false;
    return true;
}

/* Returns 0, or 2 after printing the usage.  The conf defaults are shard.c's constants. */
static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){
        .rows = 1000000,
        .gets = 1000000,
        .runs = 3,
        .conf = {.compression = leveldb_no_compression,
                 .block_size = 2048,
                 .write_buffer = (size_t)4 << 20,
                 .batch_bytes = (size_t)1 << 20,
                 .batch_puts = 4096,
                 .bloom_bits = 10},
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--synthetic") == 0)
            o->synthetic = true;
        else if (i + 1 >= argc || !set_option(o, argv[i], argv[i + 1])) {
            fprintf(stderr, "bench_write: bad argument '%s'\n", argv[i]);
            return usage();
        } else
            i++;
    }
    if (o->synthetic && o->from != NULL) {
        fprintf(stderr, "bench_write: --from and --synthetic exclude each other\n");
        return usage();
    }
    return 0;
}

/* ---- main ---- */

static void print_setup(const pairs *p, const ldb_conf *c)
{
    printf("pairs: %" PRId64 " from %s, %.1f bytes/pair\n", p->n, p->source,
           (double)p->used / (double)p->n);
    printf("options: compression=%s block_size=%zu write_buffer=%zu batch=%zu bytes/%" PRId64
           " puts bloom=%d\n",
           c->compression == leveldb_snappy_compression ? "snappy" : "none", c->block_size,
           c->write_buffer, c->batch_bytes, c->batch_puts, c->bloom_bits);
}

/* Everything after the pairs are loaded, in the work directory dir. */
static int run(const pairs *p, const options *o, const char *dir)
{
    char scratch[PATH_MAX], table_dir[PATH_MAX], staging[PATH_MAX], shard[PATH_MAX];
    char err[PC_ERRLEN];
    snprintf(scratch, sizeof scratch, "%s/leveldb", dir);
    snprintf(table_dir, sizeof table_dir, "%s/table", dir);
    if (remove_tree(scratch) != 0 || remove_tree(table_dir) != 0)
        return 1;
    if (table_staging_create(table_dir, "bench", staging, sizeof staging, err, sizeof err) !=
            PC_OK ||
        fs_path(shard, sizeof shard, PC_ERR_CANTCREAT, err, sizeof err, "%s/shard-00000",
                staging) != PC_OK) {
        fprintf(stderr, "bench_write: %s\n", err);
        return 1;
    }
    timing ldb, pc;
    timing reads[3];
    shard_info info = {0};
    int rc = bench_writes(p, o, scratch, shard, &ldb, &pc, &info);
    if (rc == 0) {
        double n = (double)p->n;
        int64_t bytes, files;
        table_files(shard, &bytes, &files);
        printf("write: leveldb %.0f keys/s\n", n / ldb.wall);
        printf("write: precast %.0f keys/s (%.2f of leveldb)\n", n / pc.wall, ldb.wall / pc.wall);
        printf("cpu: leveldb %.3f s, precast %.3f s (%.2f of leveldb's keys/cpu-s)\n", ldb.cpu,
               pc.cpu, ldb.cpu / pc.cpu);
        printf("disk: precast %.1f bytes/pair in %" PRId64 " table files\n", (double)bytes / n,
               files);
        fflush(stdout);
        rc = publish_one_shard(table_dir, staging, &info, p->n);
    }
    if (rc == 0)
        rc = bench_reads(table_dir, p, o->gets, o->runs, reads);
    if (rc == 0) {
        double g = (double)o->gets;
        printf("read: precast %.0f gets/s hit, %.0f miss\n", g / reads[0].wall,
               g / reads[2].wall);
        printf("read: precast %.0f gets/s hit, warm cache\n", g / reads[1].wall);
        printf("cpu: reads %.0f gets/cpu-s hit, %.0f warm, %.0f miss\n", g / reads[0].cpu,
               g / reads[1].cpu, g / reads[2].cpu);
    }
    shard_info_clear(&info);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    pairs p = {0};
    int loaded = pairs_load(&p, &o);
    if (loaded == 0 && p.n == 0)
        fprintf(stderr, "bench_write: no pairs to write\n");
    if (loaded != 0 || p.n == 0) {
        pairs_free(&p);
        return 1;
    }
    print_setup(&p, &o.conf);
    char tmp[PATH_MAX];
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    const char *dir = o.dir;
    if (dir == NULL) {
        snprintf(tmp, sizeof tmp, "%s/bench-write-XXXXXX", base);
        dir = mkdtemp(tmp);
    }
    int rc = 1;
    if (dir == NULL)
        fprintf(stderr, "bench_write: mkdtemp %s: %s\n", tmp, strerror(errno));
    else
        rc = run(&p, &o, dir);
    if (dir != NULL && o.dir == NULL)
        (void)remove_tree(dir);
    pairs_free(&p);
    return rc;
}
