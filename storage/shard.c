/*
 * shard.c — the pair hash, the LevelDB shard writer and the shard scan (storage/table.h).
 *
 * The writer's options, chosen by measurement (issue 7: writing a job's sorted pairs through
 * storage/ at >= 90 % of a bare program writing them into LevelDB with the same options).
 * tests/bench_write.c writes the same 1,000,000 pairs (the first of var/scale/table: 9-byte
 * keys, 58 bytes a pair) through shard_writer and through bare LevelDB in one run, best of
 * 3 each, then asks the shard 200,000 random keys through table_open/table_get, 1 thread:
 *
 *   build/bin/bench_write --from var/scale/table --gets 200000 \
 *       --compression none --block-size 2k --write-buffer 4m --batch-bytes 1m --batch-puts 4096
 *
 * (the flags set the bare side; for each row shard.c was built with the same constants and
 * this file's writer: pairs hashed four at a time, no synced last write).  A 2-vCPU VM
 * shared with other jobs: each figure is the best of 2 x 2 runs, and wall figures move by
 * 5-10 % from one run to the next.  ratio = precast keys/s over leveldb keys/s:
 *
 *   compress. block buffer | leveldb keys/s ratio | bytes/pair files | hits/s  misses/s
 *   snappy     4K    8 MiB |   2,070,000    0.91  |  24.4   11       | 279,000  514,000
 *   snappy     4K    4 MiB |   2,050,000    0.91  |  24.4   21       | 273,000  532,000
 *   snappy    16K    8 MiB |   2,210,000    0.90  |  22.8   11       | 127,000  535,000
 *   snappy     4K   64 MiB |   2,460,000    0.82  |  24.4    2       | 262,000  512,000
 *   none      16K    4 MiB |   2,360,000    0.90  |  63.2   21       | 177,000  539,000
 *   none       4K    4 MiB |   2,220,000    0.91  |  63.7   21       | 379,000  517,000
 *   none       4K    8 MiB |   2,230,000    0.89  |  63.7   11       | 390,000  526,000
 *   none       2K    4 MiB |   2,080,000    0.91  |  64.5   21       | 460,000  499,000  chosen
 *   none       2K    8 MiB |   2,180,000    0.90  |  64.5   11       | 524,000  504,000
 *   none       2K   32 MiB |   2,220,000    0.83  |  64.5    3       | 492,000  505,000
 *   none       2K   64 MiB |   1,970,000    0.84  |  64.6    2       | 490,000  501,000
 *   none       1K    4 MiB |   1,860,000    0.96  |  66.0   21       | 529,000  485,000
 *   batches (none 2K 4 MiB): 256 KiB/1024 puts 0.92, 1 MiB/4096 0.91, 4 MiB/16384 0.91.
 *
 * On a quiet machine, `build/bin/bench_write` as it is (var/bench/table's 1,000,000 pairs,
 * 1,000,000 gets), three times each, interleaved with the same bench linked against the
 * former shard.c and table.c (snappy, 4K, 8 MiB, a synced last write, the pair hash one pair
 * at a time, readers keeping 64 files open):
 *   former  leveldb 3,820,000 keys/s, precast 2,860,000: 0.75-0.76; 248,000 hits/s
 *   chosen  leveldb 3,600,000 keys/s, precast 3,410,000: 0.94-0.97; 477,000 hits/s
 * and 0.95 with 1,030,000 pairs of var/scale/table (the last memtable then full, see the
 * buffer below), 0.92 with 10,000,000 (204 table files).
 * Misses cost a stat() of the version dir each (table.c): about 500,000/s whatever the options.
 *
 * Why:
 * - No compression.  LevelDB maps the table files and reads an uncompressed block in place,
 *   checking its CRC; a snappy block is also decompressed, then kept in the block cache, so
 *   snappy reads are fast only while the whole table fits the cache (with a 128 MiB cache
 *   this table gave 510,000 hits per CPU-second once warm, with the 32 MiB one 240,000), and
 *   a table bigger than the cache pays the decompression at every cache miss.  Uncompressed
 *   reads cost the same at any table size.  The write ratio is the same either way; the shard
 *   takes 2.6 times the disk (65 bytes a pair against 24 here).
 * - 2 KiB blocks: a lookup reads and checksums one block, so smaller blocks make hits faster
 *   (16K 177,000, 4K 380,000, 2K 460,000-520,000, 1K 530,000 hits/s) at the price of a larger
 *   index and more write work (in CPU time the bare write took 11 % more with 1K than with
 *   2K, and 3 % more with 2K than with 4K).
 * - 4 MiB write buffer (LevelDB's default).  The writer flushes the last memtable at close
 *   (writer_flush_memtable) while the bare program leaves it in its log, and that flush is the
 *   one part of the writer's work LevelDB's background thread does not overlap: up to a full
 *   memtable's worth.  Measured against the same writer without it: 1-3 % at 4 MiB (the last
 *   memtable 27 % and nearly 100 % full), 6 % at 8 MiB (46 % full); 32 and 64 MiB also slowed
 *   the bare writes (a larger skiplist).  Smaller memtables make more table files (about 20
 *   per million pairs), which readers keep open (table.c READ_MAX_OPEN_FILES).
 * - Batches of 1 MiB or 4096 puts: larger or smaller batches changed nothing measurable.
 * - Bloom filter 10 bits per key: about 1 % of misses read a block, which more bits would
 *   save but which does not show behind the stat() above.
 * - The last batch is written without sync: the memtable flush syncs the table file and the
 *   MANIFEST that replace the log, so a synced log write only made the disk write the log
 *   twice (2-8 % of the write while other jobs used the disk).
 * - Per put, the writer checks the key order against the previous key and keeps a copy of it
 *   (a few % together, left as they are), and sums table_pair_hash over the pairs: one pair
 *   at a time that took 75 ns a pair, a sixth of the writer's CPU time and 10-20 % of its wall
 *   time; the batch's pairs hashed four at a time (batch_checksum) take 41 ns, and the hash's
 *   wall-clock cost is now within the noise.
 */
#include "storage/table.h"

#include <errno.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/fsutil.h"
#include "storage/internal.h"

/* The options measured above.  Write batches: big enough to amortise LevelDB's per-write
 * cost, small enough that a batch is a negligible part of a rank's memory budget. */
#define BATCH_MAX_BYTES ((size_t)1 << 20)
#define BATCH_MAX_PUTS 4096
/* LevelDB's memtable: it holds up to twice this (one filling, one being written out). */
#define WRITE_BUFFER_BYTES ((size_t)4 << 20)
#define BLOCK_BYTES ((size_t)2 << 10)
#define COMPRESSION leveldb_no_compression
#define BLOOM_BITS_PER_KEY 10

/* ---- helpers shared within storage/ (internal.h) ---- */

int st_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

const char *st_key_show(char *buf, size_t cap, const char *key, size_t len)
{
    size_t o = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        char piece[8];
        if (i == 48) {
            snprintf(piece, sizeof piece, "...");
            i = len;
        } else if (c >= 0x20 && c < 0x7f && c != '\\')
            snprintf(piece, sizeof piece, "%c", c);
        else
            snprintf(piece, sizeof piece, "\\x%02x", c);
        size_t pl = strlen(piece);
        if (o + pl >= cap)
            break;
        memcpy(buf + o, piece, pl + 1);
        o += pl;
    }
    return buf;
}

char *st_memdup(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

pc_status st_ldb_err(char *err, size_t errlen, pc_status code, char *lerr, const char *fmt, ...)
{
    char what[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pc_err(err, errlen, code, "%s: %s", what, lerr != NULL ? lerr : "unknown LevelDB error");
    if (lerr != NULL)
        leveldb_free(lerr);
    return code;
}

/* ---- pair hash ---- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_bytes(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* FNV_PRIME^j for j = 0..8.  A zero byte leaves h unchanged by the xor, so a run of j zero
 * bytes is h *= FNV_PRIME^j: the high zero bytes of a length cost one multiply, not one per
 * byte (a length prefix is 8 bytes, most of them zero). */
static const uint64_t fnv_prime_pow[9] = {
    0x1ULL,
    0x100000001b3ULL,
    0x366000002e329ULL,
    0x8a97b0004e7feabULL,
    0x9ffaac085635bc91ULL,
    0xcaee32a7d4f6a63ULL,
    0xdc966432edf1c639ULL,
    0xc5527b8a51d3d2dbULL,
    0x1efac7090aef4a21ULL,
};

/* The number of low bytes of x up to its highest non-zero one (0 for x = 0). */
static int significant_bytes(uint64_t x)
{
    int k = 0;
    while (k < 8 && (x >> (8 * k)) != 0)
        k++;
    return k;
}

/* h advanced over the 8 little-endian bytes of n. */
static uint64_t fnv_len(uint64_t h, size_t n)
{
    uint64_t x = (uint64_t)n;
    int k = significant_bytes(x);
    for (int i = 0; i < k; i++)
        h = (h ^ (unsigned char)(x >> (8 * i))) * FNV_PRIME;
    return h * fnv_prime_pow[8 - k];
}

/* splitmix64's finaliser, the last step of table_pair_hash. */
static uint64_t pair_hash_finish(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

uint64_t table_pair_hash(const void *key, size_t klen, const void *val, size_t vlen)
{
    uint64_t h = FNV_OFFSET;
    h = fnv_len(h, klen);
    h = fnv_bytes(h, key, klen);
    h = fnv_len(h, vlen);
    h = fnv_bytes(h, val, vlen);
    return pair_hash_finish(h);
}

/* ---- the pair hash of four pairs at once (the writer's checksum) ----
 *
 * FNV-1a is one chain of dependent multiplies: a byte costs a multiply's latency (about 4
 * cycles) while the multiplier could start one multiply a cycle.  Hashing one pair at a time
 * took a sixth of the writer's CPU time (the top comment); four pairs advanced side by side
 * keep four chains in flight, and each pair's hash is still exactly table_pair_hash. */

/* Four byte strings (one part of each of four pairs): p[i][0..n[i]). */
typedef struct fnv4_part {
    const unsigned char *p[4];
    size_t n[4];
} fnv4_part;

/* Advances h[i] over part->p[i]: the bytes all four have in lockstep, then each one's rest. */
static void fnv4_bytes(uint64_t h[4], const fnv4_part *part)
{
    size_t m = part->n[0];
    for (int i = 1; i < 4; i++)
        m = part->n[i] < m ? part->n[i] : m;
    uint64_t a = h[0], b = h[1], c = h[2], d = h[3];
    const unsigned char *pa = part->p[0], *pb = part->p[1], *pc = part->p[2], *pd = part->p[3];
    for (size_t j = 0; j < m; j++) {
        a = (a ^ pa[j]) * FNV_PRIME;
        b = (b ^ pb[j]) * FNV_PRIME;
        c = (c ^ pc[j]) * FNV_PRIME;
        d = (d ^ pd[j]) * FNV_PRIME;
    }
    h[0] = a, h[1] = b, h[2] = c, h[3] = d;
    for (int i = 0; i < 4; i++)
        h[i] = fnv_bytes(h[i], part->p[i] + m, part->n[i] - m);
}

/* Advances h[i] over the 8 little-endian bytes of n[i], as fnv_len: the low bytes up to the
 * highest non-zero one of any of the four in lockstep, then the zero bytes left in one
 * multiply. */
static void fnv4_len(uint64_t h[4], const size_t n[4])
{
    int k = significant_bytes((uint64_t)(n[0] | n[1] | n[2] | n[3]));
    for (int j = 0; j < k; j++)
        for (int i = 0; i < 4; i++)
            h[i] = (h[i] ^ (unsigned char)((uint64_t)n[i] >> (8 * j))) * FNV_PRIME;
    for (int i = 0; i < 4; i++)
        h[i] *= fnv_prime_pow[8 - k];
}

/* The sum of table_pair_hash over four pairs (keys key->p[i], values val->p[i]). */
static uint64_t pair_hash4_sum(const fnv4_part *key, const fnv4_part *val)
{
    uint64_t h[4] = {FNV_OFFSET, FNV_OFFSET, FNV_OFFSET, FNV_OFFSET};
    fnv4_len(h, key->n);
    fnv4_bytes(h, key);
    fnv4_len(h, val->n);
    fnv4_bytes(h, val);
    uint64_t sum = 0;
    for (int i = 0; i < 4; i++)
        sum += pair_hash_finish(h[i]);
    return sum;
}

/* The sum of table_pair_hash over the pairs of a write batch, taken four at a time. */
typedef struct batch_sum {
    fnv4_part key, val; /* up to 4 pairs waiting */
    int waiting;
    uint64_t sum;
} batch_sum;

static void batch_sum_put(void *state, const char *k, size_t klen, const char *v, size_t vlen)
{
    batch_sum *s = state;
    int i = s->waiting++;
    s->key.p[i] = (const unsigned char *)k;
    s->key.n[i] = klen;
    s->val.p[i] = (const unsigned char *)v;
    s->val.n[i] = vlen;
    if (s->waiting == 4) {
        s->sum += pair_hash4_sum(&s->key, &s->val);
        s->waiting = 0;
    }
}

static void batch_sum_delete(void *state, const char *k, size_t klen)
{
    (void)state, (void)k, (void)klen; /* the writer puts only */
}

static uint64_t batch_checksum(const leveldb_writebatch_t *batch)
{
    batch_sum s = {.waiting = 0};
    leveldb_writebatch_iterate(batch, &s, batch_sum_put, batch_sum_delete);
    for (int i = 0; i < s.waiting; i++)
        s.sum += table_pair_hash(s.key.p[i], s.key.n[i], s.val.p[i], s.val.n[i]);
    return s.sum;
}

void shard_info_clear(shard_info *s)
{
    if (s == NULL)
        return;
    free(s->dir);
    free(s->first_key);
    free(s->last_key);
    memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

struct shard_writer {
    char path[PATH_MAX];
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_filterpolicy_t *bloom;
    leveldb_writeoptions_t *wopts; /* no sync: the memtable flush at close makes it durable */
    leveldb_writebatch_t *batch;
    size_t batch_bytes;
    int batch_puts;
    char *first; /* first key (malloc'd), NULL until the first put */
    size_t first_len;
    char *prev; /* previous key, in a buffer of prev_cap bytes */
    size_t prev_len, prev_cap;
    bool failed;
    int64_t rows, bytes;
    uint64_t checksum;
};

static void writer_free(shard_writer *w)
{
    if (w->db != NULL)
        leveldb_close(w->db);
    /* The filter policy must outlive the database that uses it. */
    if (w->opts != NULL)
        leveldb_options_destroy(w->opts);
    if (w->bloom != NULL)
        leveldb_filterpolicy_destroy(w->bloom);
    if (w->wopts != NULL)
        leveldb_writeoptions_destroy(w->wopts);
    if (w->batch != NULL)
        leveldb_writebatch_destroy(w->batch);
    free(w->first);
    free(w->prev);
    free(w);
}

pc_status shard_writer_open(const char *path, shard_writer **out, char *err, size_t errlen)
{
    *out = NULL;
    shard_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    pc_status rc = fs_path(w->path, sizeof w->path, PC_ERR_CANTCREAT, err, errlen, "%s", path);
    if (rc != PC_OK) {
        free(w);
        return rc;
    }
    if (fs_exists(path)) {
        free(w);
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: shard already exists", path);
    }
    w->opts = leveldb_options_create();
    w->bloom = leveldb_filterpolicy_create_bloom(BLOOM_BITS_PER_KEY);
    w->wopts = leveldb_writeoptions_create();
    w->batch = leveldb_writebatch_create();
    if (w->opts == NULL || w->bloom == NULL || w->wopts == NULL || w->batch == NULL) {
        writer_free(w);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    leveldb_options_set_create_if_missing(w->opts, 1);
    leveldb_options_set_error_if_exists(w->opts, 1);
    leveldb_options_set_paranoid_checks(w->opts, 1);
    leveldb_options_set_filter_policy(w->opts, w->bloom);
    leveldb_options_set_write_buffer_size(w->opts, WRITE_BUFFER_BYTES);
    leveldb_options_set_block_size(w->opts, BLOCK_BYTES);
    leveldb_options_set_compression(w->opts, COMPRESSION);
    leveldb_writeoptions_set_sync(w->wopts, 0);
    char *lerr = NULL;
    w->db = leveldb_open(w->opts, path, &lerr);
    if (lerr != NULL || w->db == NULL) {
        w->db = NULL;
        writer_free(w);
        return st_ldb_err(err, errlen, PC_ERR_CANTCREAT, lerr, "%s: create shard", path);
    }
    *out = w;
    return PC_OK;
}

static pc_status writer_flush(shard_writer *w, char *err, size_t errlen)
{
    /* The checksum of the pairs as the batch holds them, i.e. as LevelDB writes them. */
    uint64_t sum = batch_checksum(w->batch);
    char *lerr = NULL;
    leveldb_write(w->db, w->wopts, w->batch, &lerr);
    if (lerr != NULL) {
        w->failed = true;
        return st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s: write", w->path);
    }
    w->checksum += sum;
    leveldb_writebatch_clear(w->batch);
    w->batch_bytes = 0;
    w->batch_puts = 0;
    return PC_OK;
}

pc_status shard_writer_put(shard_writer *w, const void *key, size_t klen, const void *val,
                           size_t vlen, char *err, size_t errlen)
{
    if (w->failed)
        return pc_err(err, errlen, PC_ERR_IO, "%s: writer failed earlier", w->path);
    if (w->rows > 0 && st_key_cmp(key, klen, w->prev, w->prev_len) <= 0) {
        char a[ST_KEY_SHOW], b[ST_KEY_SHOW];
        return pc_err(err, errlen, PC_ERR_INTERNAL,
                      "%s: keys out of order: \"%s\" (%zu bytes) after \"%s\" (%zu bytes)",
                      w->path, st_key_show(a, sizeof a, key, klen), klen,
                      st_key_show(b, sizeof b, w->prev, w->prev_len), w->prev_len);
    }
    /* Every allocation first, so that running out of memory changes nothing. */
    if (klen + 1 > w->prev_cap) {
        size_t cap = w->prev_cap ? w->prev_cap : 64;
        while (cap < klen + 1)
            cap *= 2;
        char *p = realloc(w->prev, cap);
        if (p == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory for a %zu-byte key",
                          w->path, klen);
        w->prev = p;
        w->prev_cap = cap;
    }
    if (w->rows == 0) {
        w->first = st_memdup(key, klen);
        if (w->first == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", w->path);
        w->first_len = klen;
    }
    leveldb_writebatch_put(w->batch, key, klen, val, vlen);
    if (klen > 0)
        memcpy(w->prev, key, klen);
    w->prev_len = klen;
    w->rows++;
    w->bytes += (int64_t)(klen + vlen);
    w->batch_bytes += klen + vlen;
    w->batch_puts++;
    if (w->batch_bytes >= BATCH_MAX_BYTES || w->batch_puts >= BATCH_MAX_PUTS)
        return writer_flush(w, err, errlen);
    return PC_OK;
}

/* Writes the memtable out as a table file, so that the published shard holds all its pairs
 * in table files and an empty log: every reader's open would otherwise replay the log and
 * build the same table file again in its private view (view.c).  LevelDB's C API has no
 * flush; a compaction of a range past the last key flushes the memtable and then finds
 * nothing to compact, so no table file is rewritten.  The flush also makes the shard
 * durable: LevelDB syncs the new table file and then the MANIFEST that lists it.
 * REQUIRES: at least one put (prev holds the last key, in a buffer of more than prev_len
 * bytes). */
static void writer_flush_memtable(shard_writer *w)
{
    w->prev[w->prev_len] = '\0'; /* prev + "\0": the least key after the last one */
    leveldb_compact_range(w->db, w->prev, w->prev_len + 1, w->prev, w->prev_len + 1);
}

pc_status shard_writer_close(shard_writer *w, shard_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    pc_status rc = PC_OK;
    if (w->failed)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: writer failed earlier", w->path);
    else if (w->batch_puts > 0)
        rc = writer_flush(w, err, errlen);
    /* Not synced: the memtable flush makes the log obsolete and syncs what replaces it, and a
     * shard with no rows is as leveldb_open made it (its MANIFEST and CURRENT synced). */
    if (rc == PC_OK && w->rows > 0)
        writer_flush_memtable(w);
    if (rc == PC_OK) {
        const char *slash = strrchr(w->path, '/');
        info->dir = strdup(slash != NULL ? slash + 1 : w->path);
        if (w->rows > 0) {
            info->first_key = w->first;
            info->first_key_len = w->first_len;
            w->first = NULL;
            info->last_key = st_memdup(w->prev, w->prev_len);
            info->last_key_len = w->prev_len;
        }
        info->rows = w->rows;
        info->bytes = w->bytes;
        info->checksum = w->checksum;
        if (info->dir == NULL || (w->rows > 0 && info->last_key == NULL)) {
            shard_info_clear(info);
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", w->path);
        }
    }
    writer_free(w);
    return rc;
}

void shard_writer_abort(shard_writer *w)
{
    if (w != NULL)
        writer_free(w);
}

/* ---- scan ---- */

/* Scans the shard at path and fills *got (dir = basename of path) with what it holds.
 * On failure *got is zeroed. */
static pc_status scan_shard(const char *path, shard_info *got, char *err, size_t errlen)
{
    memset(got, 0, sizeof *got);
    /* LevelDB's open creates the directory even without create_if_missing: check first so
     * that scanning a missing shard does not create an empty one. */
    struct stat st;
    if (stat(path, &st) != 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: shard missing: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_IO, "%s: shard is not a directory", path);
    leveldb_options_t *opts = leveldb_options_create();
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    pc_status rc = PC_OK;
    st_shard_view view = {0};
    leveldb_iterator_t *it = NULL;
    char *prev = NULL;
    size_t prev_len = 0, prev_cap = 0;
    if (opts == NULL || ro == NULL) {
        rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
        goto out;
    }
    leveldb_options_set_create_if_missing(opts, 0);
    leveldb_options_set_paranoid_checks(opts, 1);
    leveldb_readoptions_set_verify_checksums(ro, 1);
    leveldb_readoptions_set_fill_cache(ro, 0);
    if ((rc = st_shard_view_open(path, opts, &view, err, errlen)) != PC_OK)
        goto out;
    it = leveldb_create_iterator(view.db, ro);
    if (it == NULL) {
        rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
        goto out;
    }
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = leveldb_iter_key(it, &klen);
        const char *v = leveldb_iter_value(it, &vlen);
        if (got->rows > 0 && st_key_cmp(k, klen, prev, prev_len) <= 0) {
            char a[ST_KEY_SHOW], b[ST_KEY_SHOW];
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: keys out of order: \"%s\" after \"%s\"",
                        path, st_key_show(a, sizeof a, k, klen),
                        st_key_show(b, sizeof b, prev, prev_len));
            goto out;
        }
        if (klen + 1 > prev_cap) {
            size_t cap = prev_cap ? prev_cap : 64;
            while (cap < klen + 1)
                cap *= 2;
            char *p = realloc(prev, cap);
            if (p == NULL) {
                rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
                goto out;
            }
            prev = p;
            prev_cap = cap;
        }
        if (got->rows == 0) {
            got->first_key = st_memdup(k, klen);
            got->first_key_len = klen;
            if (got->first_key == NULL) {
                rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
                goto out;
            }
        }
        if (klen > 0)
            memcpy(prev, k, klen);
        prev_len = klen;
        got->rows++;
        got->bytes += (int64_t)(klen + vlen);
        got->checksum += table_pair_hash(k, klen, v, vlen);
    }
    char *lerr = NULL;
    leveldb_iter_get_error(it, &lerr);
    if (lerr != NULL) {
        rc = st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s: scan", path);
        goto out;
    }
    if (got->rows > 0) {
        got->last_key = st_memdup(prev, prev_len);
        got->last_key_len = prev_len;
    }
    const char *slash = strrchr(path, '/');
    got->dir = strdup(slash != NULL ? slash + 1 : path);
    if (got->dir == NULL || (got->rows > 0 && got->last_key == NULL))
        rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
out:
    if (it != NULL)
        leveldb_iter_destroy(it);
    st_shard_view_close(&view);
    if (ro != NULL)
        leveldb_readoptions_destroy(ro);
    if (opts != NULL)
        leveldb_options_destroy(opts);
    free(prev);
    if (rc != PC_OK)
        shard_info_clear(got);
    return rc;
}

pc_status shard_scan(const char *path, int64_t *rows, uint64_t *checksum, char *err,
                     size_t errlen)
{
    shard_info got;
    *rows = 0;
    *checksum = 0;
    pc_status rc = scan_shard(path, &got, err, errlen);
    if (rc != PC_OK)
        return rc;
    *rows = got.rows;
    *checksum = got.checksum;
    shard_info_clear(&got);
    return PC_OK;
}

static bool key_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if ((a == NULL) != (b == NULL))
        return false;
    return a == NULL || st_key_cmp(a, alen, b, blen) == 0;
}

pc_status shard_verify(const char *path, const shard_info *expect, char *err, size_t errlen)
{
    shard_info got;
    pc_status rc = scan_shard(path, &got, err, errlen);
    if (rc != PC_OK)
        return rc;
    char a[ST_KEY_SHOW], b[ST_KEY_SHOW];
    if (got.rows != expect->rows)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: %" PRId64 " rows, the manifest says %" PRId64,
                    path, got.rows, expect->rows);
    else if (got.checksum != expect->checksum)
        rc = pc_err(err, errlen, PC_ERR_IO,
                    "%s: checksum %016" PRIx64 ", the manifest says %016" PRIx64, path,
                    got.checksum, expect->checksum);
    else if (got.bytes != expect->bytes)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: %" PRId64 " bytes, the manifest says %" PRId64,
                    path, got.bytes, expect->bytes);
    else if (!key_eq(got.first_key, got.first_key_len, expect->first_key,
                     expect->first_key_len))
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: first key \"%s\", the manifest says \"%s\"",
                    path, st_key_show(a, sizeof a, got.first_key, got.first_key_len),
                    st_key_show(b, sizeof b, expect->first_key, expect->first_key_len));
    else if (!key_eq(got.last_key, got.last_key_len, expect->last_key, expect->last_key_len))
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: last key \"%s\", the manifest says \"%s\"",
                    path, st_key_show(a, sizeof a, got.last_key, got.last_key_len),
                    st_key_show(b, sizeof b, expect->last_key, expect->last_key_len));
    shard_info_clear(&got);
    return rc;
}
