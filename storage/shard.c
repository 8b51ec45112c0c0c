/* shard.c — the pair hash, the LevelDB shard writer and the shard scan (storage/table.h). */
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

/* Write-batch limits: big enough to amortise LevelDB's per-write cost, small enough that a
 * batch is a negligible part of a rank's memory budget. */
#define BATCH_MAX_BYTES ((size_t)1 << 20)
#define BATCH_MAX_PUTS 4096
/* LevelDB memtable size: larger than the 4 MiB default means fewer, larger level-0 files when
 * loading a big shard in order. */
#define WRITE_BUFFER_BYTES ((size_t)8 << 20)
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

static uint64_t fnv_len(uint64_t h, size_t n)
{
    unsigned char le[8];
    uint64_t x = (uint64_t)n;
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(x >> (8 * i));
    return fnv_bytes(h, le, 8);
}

uint64_t table_pair_hash(const void *key, size_t klen, const void *val, size_t vlen)
{
    uint64_t h = FNV_OFFSET;
    h = fnv_len(h, klen);
    h = fnv_bytes(h, key, klen);
    h = fnv_len(h, vlen);
    h = fnv_bytes(h, val, vlen);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
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
    leveldb_writeoptions_t *wopts; /* no sync */
    leveldb_writeoptions_t *wsync; /* sync, for the final write */
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
    if (w->wsync != NULL)
        leveldb_writeoptions_destroy(w->wsync);
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
    w->wsync = leveldb_writeoptions_create();
    w->batch = leveldb_writebatch_create();
    if (w->opts == NULL || w->bloom == NULL || w->wopts == NULL || w->wsync == NULL ||
        w->batch == NULL) {
        writer_free(w);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    leveldb_options_set_create_if_missing(w->opts, 1);
    leveldb_options_set_error_if_exists(w->opts, 1);
    leveldb_options_set_paranoid_checks(w->opts, 1);
    leveldb_options_set_filter_policy(w->opts, w->bloom);
    leveldb_options_set_write_buffer_size(w->opts, WRITE_BUFFER_BYTES);
    leveldb_options_set_compression(w->opts, leveldb_snappy_compression);
    leveldb_writeoptions_set_sync(w->wopts, 0);
    leveldb_writeoptions_set_sync(w->wsync, 1);
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

static pc_status writer_flush(shard_writer *w, leveldb_writeoptions_t *wo, char *err,
                              size_t errlen)
{
    char *lerr = NULL;
    leveldb_write(w->db, wo, w->batch, &lerr);
    if (lerr != NULL) {
        w->failed = true;
        return st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s: write", w->path);
    }
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
    w->checksum += table_pair_hash(key, klen, val, vlen);
    w->batch_bytes += klen + vlen;
    w->batch_puts++;
    if (w->batch_bytes >= BATCH_MAX_BYTES || w->batch_puts >= BATCH_MAX_PUTS)
        return writer_flush(w, w->wopts, err, errlen);
    return PC_OK;
}

/* Writes the memtable out as a table file, so that the published shard holds all its pairs
 * in table files and an empty log: every reader's open would otherwise replay the log and
 * build the same table file again in its private view (view.c).  LevelDB's C API has no
 * flush; a compaction of a range past the last key flushes the memtable and then finds
 * nothing to compact, so no table file is rewritten. */
static pc_status writer_flush_memtable(shard_writer *w, char *err, size_t errlen)
{
    size_t n = w->prev_len + 1; /* prev + "\0": the least key after the last one */
    char *past = malloc(n);
    if (past == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", w->path);
    if (w->prev_len > 0)
        memcpy(past, w->prev, w->prev_len);
    past[w->prev_len] = '\0';
    leveldb_compact_range(w->db, past, n, past, n);
    free(past);
    return PC_OK;
}

pc_status shard_writer_close(shard_writer *w, shard_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    pc_status rc = PC_OK;
    if (w->failed)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: writer failed earlier", w->path);
    else
        rc = writer_flush(w, w->wsync, err, errlen); /* synced, even if the batch is empty */
    if (rc == PC_OK && w->rows > 0)
        rc = writer_flush_memtable(w, err, errlen);
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
