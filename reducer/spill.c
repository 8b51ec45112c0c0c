#include "reducer/spill.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RUN_MAGIC "PCSPILL\0"
#define RUN_END_MAGIC "PCSPEND\0"
#define RUN_VERSION 1u
#define RUN_HEADER 32
#define RUN_TRAILER 16
#define PREFIX_MAX 200
/* Per pair in the in-memory table: its entry and half an entry of sort scratch. */
#define MEM_PER_PAIR (KV_ENTRY_BYTES + KV_ENTRY_BYTES / 2)

struct kv_spill {
    char *dir, *prefix;
    size_t budget;
    kv_buffer *mem;     /* the in-memory table */
    bool mem_sorted;    /* mem is in key order (set by a merge, cleared by an append) */
    double avg_pair;    /* bytes per pair of the last run written, to size the table */
    char **runs;        /* run file paths, in the order written (equal keys: append order) */
    int64_t nruns, runs_cap;
    int64_t count, spilled_bytes;
    int readers;        /* scans and merges open: appends are refused meanwhile */
    char *samples;      /* KV_SPILL_SAMPLES slots of KV_SAMPLE_KEY_MAX bytes */
    uint16_t *sample_len;
    int64_t nsamples;
    uint64_t rng;
};

/* ---------------------------------------------------------------------------------------- */
/* helpers */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* splitmix64: a deterministic stream for the reservoir. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint32_t crc_update(uint32_t crc, const void *p, size_t n)
{
    return n ? (uint32_t)crc32_z(crc, p, n) : crc;
}

static pc_status write_all(int fd, const char *p, size_t n, const char *path, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t w = write(fd, p, min_size(n, (size_t)1 << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return pc_err(err, errlen, PC_ERR_IO, "%s: writing spill run: %s", path,
                          w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return PC_OK;
}

/* Reads exactly n bytes; *got < n only at end of file. */
static pc_status read_full(int fd, char *p, size_t n, size_t *got, const char *path, char *err,
                           size_t errlen)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, min_size(n - *got, (size_t)1 << 30));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return pc_err(err, errlen, PC_ERR_IO, "%s: reading spill run: %s", path, strerror(errno));
        if (r == 0) break;
        *got += (size_t)r;
    }
    return PC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* run writer */

typedef struct run_writer {
    int fd;
    char *path;
    char *buf;
    size_t len;
    uint32_t crc;
    uint64_t pairs, payload;
} run_writer;

static void writer_abort(run_writer *w)
{
    if (w->fd >= 0) close(w->fd);
    if (w->path) unlink(w->path);
    free(w->path);
    free(w->buf);
    *w = (run_writer){.fd = -1};
}

static pc_status writer_open(const kv_spill *s, run_writer *w, char *err, size_t errlen)
{
    *w = (run_writer){.fd = -1};
    size_t n = strlen(s->dir) + strlen(s->prefix) + 16;
    w->path = malloc(n);
    w->buf = malloc(KV_RUN_BUFFER);
    if (w->path == NULL || w->buf == NULL) {
        writer_abort(w);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory opening a spill run");
    }
    snprintf(w->path, n, "%s/%s-XXXXXX.run", s->dir, s->prefix);
    w->fd = mkstemps(w->path, 4);
    if (w->fd < 0) {
        pc_status st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot create spill run: %s",
                              w->path, strerror(errno));
        free(w->path); /* nothing was created: nothing to unlink */
        w->path = NULL;
        writer_abort(w);
        return st;
    }
    memset(w->buf, 0, RUN_HEADER); /* rewritten by writer_finish() */
    w->len = RUN_HEADER;
    return PC_OK;
}

static pc_status writer_flush(run_writer *w, char *err, size_t errlen)
{
    pc_status st = write_all(w->fd, w->buf, w->len, w->path, err, errlen);
    w->len = 0;
    return st;
}

/* Adds bytes to the payload (counted in the CRC). */
static pc_status writer_bytes(run_writer *w, const void *p, size_t n, char *err, size_t errlen)
{
    w->crc = crc_update(w->crc, p, n);
    w->payload += n;
    if (w->len + n > KV_RUN_BUFFER) {
        pc_status st = writer_flush(w, err, errlen);
        if (st != PC_OK) return st;
        if (n > KV_RUN_BUFFER) return write_all(w->fd, p, n, w->path, err, errlen);
    }
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
    return PC_OK;
}

static pc_status writer_put(run_writer *w, const char *key, size_t klen, const char *val,
                            size_t vlen, kv_origin o, char *err, size_t errlen)
{
    char h[KV_PACKED_HEADER];
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    memcpy(h, &kl, 4);
    memcpy(h + 4, &vl, 4);
    memcpy(h + 8, &o.file, 4);
    memcpy(h + 12, &o.line, 8);
    pc_status st = writer_bytes(w, h, sizeof h, err, errlen);
    if (st == PC_OK) st = writer_bytes(w, key, klen, err, errlen);
    if (st == PC_OK) st = writer_bytes(w, val, vlen, err, errlen);
    if (st == PC_OK) w->pairs++;
    return st;
}

/* Writes the trailer and the header and closes the file. On success *path is the file (the
 * caller owns it) and *bytes its size; on failure the file is removed. */
static pc_status writer_finish(run_writer *w, char **path, int64_t *bytes, char *err, size_t errlen)
{
    char t[RUN_TRAILER] = {0}, h[RUN_HEADER] = {0};
    memcpy(t, &w->crc, 4);
    memcpy(t + 8, RUN_END_MAGIC, 8);
    uint32_t version = RUN_VERSION, hsize = RUN_HEADER;
    memcpy(h, RUN_MAGIC, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &hsize, 4);
    memcpy(h + 16, &w->pairs, 8);
    memcpy(h + 24, &w->payload, 8);
    pc_status st = PC_OK;
    if (w->len + RUN_TRAILER > KV_RUN_BUFFER) st = writer_flush(w, err, errlen);
    if (st == PC_OK) {
        memcpy(w->buf + w->len, t, RUN_TRAILER);
        w->len += RUN_TRAILER;
        st = writer_flush(w, err, errlen);
    }
    if (st == PC_OK && pwrite(w->fd, h, RUN_HEADER, 0) != RUN_HEADER)
        st = pc_err(err, errlen, PC_ERR_IO, "%s: writing spill run header: %s", w->path, strerror(errno));
    if (st == PC_OK) {
        int rc = close(w->fd);
        w->fd = -1;
        if (rc != 0)
            st = pc_err(err, errlen, PC_ERR_IO, "%s: closing spill run: %s", w->path, strerror(errno));
    }
    if (st != PC_OK) {
        writer_abort(w);
        return st;
    }
    *path = w->path;
    *bytes = (int64_t)(RUN_HEADER + w->payload + RUN_TRAILER);
    w->path = NULL;
    free(w->buf);
    *w = (run_writer){.fd = -1};
    return PC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* run reader */

typedef struct run_reader {
    int fd;
    char *path;
    char *buf;
    size_t cap, pos, end;
    uint64_t file_left;  /* payload bytes not yet read into buf */
    uint64_t pairs_left;
    uint32_t crc, want_crc;
} run_reader;

static void reader_close(run_reader *r)
{
    if (r->fd >= 0) close(r->fd);
    free(r->path);
    free(r->buf);
    *r = (run_reader){.fd = -1};
}

static pc_status corrupt(const run_reader *r, char *err, size_t errlen, const char *what)
{
    return pc_err(err, errlen, PC_ERR_IO, "spill run %s: %s", r->path, what);
}

static pc_status reader_open(run_reader *r, const char *path, char *err, size_t errlen)
{
    *r = (run_reader){.fd = -1};
    r->path = strdup(path);
    r->buf = malloc(KV_RUN_BUFFER);
    if (r->path == NULL || r->buf == NULL) {
        reader_close(r);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory opening a spill run");
    }
    r->cap = KV_RUN_BUFFER;
    pc_status st = PC_OK;
    struct stat sb;
    char h[RUN_HEADER], t[RUN_TRAILER];
    uint32_t version, hsize;
    uint64_t payload;
    if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(r->fd, &sb) != 0)
        st = pc_err(err, errlen, PC_ERR_IO, "spill run %s: %s", path, strerror(errno));
    else if (sb.st_size < RUN_HEADER + RUN_TRAILER)
        st = corrupt(r, err, errlen, "truncated (shorter than its header)");
    else if (pread(r->fd, h, RUN_HEADER, 0) != RUN_HEADER ||
             pread(r->fd, t, RUN_TRAILER, sb.st_size - RUN_TRAILER) != RUN_TRAILER)
        st = corrupt(r, err, errlen, "cannot read header or trailer");
    if (st == PC_OK) {
        memcpy(&version, h + 8, 4);
        memcpy(&hsize, h + 12, 4);
        memcpy(&r->pairs_left, h + 16, 8);
        memcpy(&payload, h + 24, 8);
        memcpy(&r->want_crc, t, 4);
        if (memcmp(h, RUN_MAGIC, 8) != 0) st = corrupt(r, err, errlen, "bad magic number");
        else if (version != RUN_VERSION || hsize != RUN_HEADER)
            st = corrupt(r, err, errlen, "unknown format version");
        else if (payload != (uint64_t)sb.st_size - RUN_HEADER - RUN_TRAILER)
            st = corrupt(r, err, errlen, "length does not match its header (truncated?)");
        else if (r->pairs_left > payload / KV_PACKED_HEADER)
            st = corrupt(r, err, errlen, "pair count does not fit its length");
        else if (memcmp(t + 8, RUN_END_MAGIC, 8) != 0)
            st = corrupt(r, err, errlen, "bad trailer");
        else if (lseek(r->fd, RUN_HEADER, SEEK_SET) != RUN_HEADER)
            st = pc_err(err, errlen, PC_ERR_IO, "spill run %s: %s", path, strerror(errno));
        r->file_left = payload;
    }
    if (st != PC_OK) reader_close(r);
    return st;
}

/* Makes n bytes available at buf + pos, growing the buffer only for a pair larger than it
 * (n is checked against the payload left first, so a bad length cannot allocate). */
static pc_status reader_ensure(run_reader *r, size_t n, char *err, size_t errlen)
{
    size_t have = r->end - r->pos;
    if (have >= n) return PC_OK;
    if ((uint64_t)(n - have) > r->file_left) return corrupt(r, err, errlen, "truncated (a pair runs past the end)");
    memmove(r->buf, r->buf + r->pos, have);
    r->pos = 0;
    r->end = have;
    if (n > r->cap) {
        char *b = realloc(r->buf, n);
        if (b == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory reading a %zu-byte pair from %s", n, r->path);
        r->buf = b;
        r->cap = n;
    }
    size_t want = (size_t)(r->file_left < r->cap - r->end ? r->file_left : r->cap - r->end), got;
    pc_status st = read_full(r->fd, r->buf + r->end, want, &got, r->path, err, errlen);
    if (st != PC_OK) return st;
    if (got != want) return corrupt(r, err, errlen, "truncated while being read");
    r->crc = crc_update(r->crc, r->buf + r->end, got);
    r->end += got;
    r->file_left -= got;
    return PC_OK;
}

static pc_status reader_next(run_reader *r, kv_pair *p, bool *eof, char *err, size_t errlen)
{
    *eof = false;
    if (r->pairs_left == 0) {
        if (r->pos != r->end || r->file_left != 0) return corrupt(r, err, errlen, "bytes after its last pair");
        if (r->crc != r->want_crc) return corrupt(r, err, errlen, "checksum mismatch");
        *eof = true;
        return PC_OK;
    }
    pc_status st = reader_ensure(r, KV_PACKED_HEADER, err, errlen);
    if (st != PC_OK) return st;
    uint32_t kl, vl;
    const char *h = r->buf + r->pos;
    memcpy(&kl, h, 4);
    memcpy(&vl, h + 4, 4);
    memcpy(&p->origin.file, h + 8, 4);
    memcpy(&p->origin.line, h + 12, 8);
    size_t need = KV_PACKED_HEADER + (size_t)kl + vl;
    if ((uint64_t)need > (uint64_t)(r->end - r->pos) + r->file_left)
        return corrupt(r, err, errlen, "a pair's length runs past the end");
    if ((st = reader_ensure(r, need, err, errlen)) != PC_OK) return st;
    p->key = r->buf + r->pos + KV_PACKED_HEADER;
    p->klen = kl;
    p->val = p->key + kl;
    p->vlen = vl;
    r->pos += need;
    r->pairs_left--;
    return PC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the store */

pc_status kv_spill_create(const char *dir, const char *prefix, size_t budget_bytes, kv_spill **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen == 0 || plen > PREFIX_MAX || strchr(prefix, '/') != NULL)
        return pc_err(err, errlen, PC_ERR_USAGE, "spill prefix '%s' must be 1 to %d bytes without '/'",
                      prefix ? prefix : "", PREFIX_MAX);
    struct stat sb;
    if (dir == NULL || stat(dir, &sb) != 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: spill directory: %s", dir ? dir : "(null)",
                      strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: spill directory: not a directory", dir);
    kv_spill *s = calloc(1, sizeof *s);
    if (s == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    s->dir = strdup(dir);
    s->prefix = strdup(prefix);
    s->mem = kv_create();
    s->samples = malloc((size_t)KV_SPILL_SAMPLES * KV_SAMPLE_KEY_MAX);
    s->sample_len = malloc(KV_SPILL_SAMPLES * sizeof(uint16_t));
    s->budget = budget_bytes;
    s->rng = 0x7072656361737431u; /* fixed: the same appends give the same sample */
    if (!s->dir || !s->prefix || !s->mem || !s->samples || !s->sample_len) {
        kv_spill_free(s);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    *out = s;
    return PC_OK;
}

void kv_spill_free(kv_spill *s)
{
    if (s == NULL) return;
    for (int64_t i = 0; i < s->nruns; i++) {
        unlink(s->runs[i]);
        free(s->runs[i]);
    }
    free(s->runs);
    kv_free(s->mem);
    free(s->samples);
    free(s->sample_len);
    free(s->dir);
    free(s->prefix);
    free(s);
}

int64_t kv_spill_count(const kv_spill *s) { return s->count; }
int64_t kv_spill_spilled_bytes(const kv_spill *s) { return s->spilled_bytes; }
int64_t kv_spill_run_count(const kv_spill *s) { return s->nruns; }
const char *kv_spill_run_path(const kv_spill *s, int64_t i) { return s->runs[i]; }
int64_t kv_spill_sample_count(const kv_spill *s) { return s->nsamples; }

const char *kv_spill_sample(const kv_spill *s, int64_t i, size_t *klen)
{
    *klen = s->sample_len[i];
    return s->samples + (size_t)i * KV_SAMPLE_KEY_MAX;
}

/* Accounted bytes of a table with these capacities (saturating). */
static size_t mem_cost(size_t arena, size_t entries)
{
    if (arena > SIZE_MAX / 2 || entries > (SIZE_MAX / 2 - KV_ENTRY_BYTES) / MEM_PER_PAIR) return SIZE_MAX;
    return arena + entries * MEM_PER_PAIR + KV_ENTRY_BYTES;
}

size_t kv_spill_memory(const kv_spill *s)
{
    return mem_cost(kv_arena_capacity(s->mem), kv_entry_capacity(s->mem));
}

/* Room for one more run path, before the run is written (so a written run is never lost). */
static pc_status runs_reserve(kv_spill *s, char *err, size_t errlen)
{
    if (s->nruns < s->runs_cap) return PC_OK;
    int64_t cap = s->runs_cap ? 2 * s->runs_cap : 16;
    char **r = realloc(s->runs, (size_t)cap * sizeof(char *));
    if (r == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    s->runs = r;
    s->runs_cap = cap;
    return PC_OK;
}

/* Sorts the in-memory table and writes it out as a new run; the table is then empty. On
 * failure the table still holds its pairs (sorted) and no file is left. */
static pc_status spill_table(kv_spill *s, char *err, size_t errlen)
{
    run_writer w;
    pc_status st = runs_reserve(s, err, errlen);
    if (st == PC_OK) st = kv_sort(s->mem, err, errlen);
    if (st == PC_OK) st = writer_open(s, &w, err, errlen);
    if (st != PC_OK) return st;
    int64_t n = kv_count(s->mem);
    for (int64_t i = 0; st == PC_OK && i < n; i++) {
        size_t kl, vl;
        const char *k = kv_key(s->mem, i, &kl), *v = kv_value(s->mem, i, &vl);
        st = writer_put(&w, k, kl, v, vl, kv_origin_of(s->mem, i), err, errlen);
    }
    char *path = NULL;
    int64_t bytes = 0;
    if (st == PC_OK) st = writer_finish(&w, &path, &bytes, err, errlen);
    else writer_abort(&w);
    if (st != PC_OK) return st;
    s->runs[s->nruns++] = path;
    s->spilled_bytes += bytes;
    s->avg_pair = n ? (double)kv_bytes(s->mem) / (double)n : 0;
    kv_clear(s->mem);
    return PC_OK;
}

/* Makes room in the table for a pair of b key + value bytes: grows its capacities (doubling,
 * clamped to the budget) or spills it. */
static pc_status make_room(kv_spill *s, size_t b, char *err, size_t errlen)
{
    kv_buffer *m = s->mem;
    size_t used = (size_t)kv_bytes(m), n = (size_t)kv_count(m);
    size_t a = kv_arena_capacity(m), e = kv_entry_capacity(m);
    if (used + b <= a && n + 1 <= e) return PC_OK;
    size_t amin = max_size(a, used + b), emin = max_size(e, n + 1);
    if (mem_cost(amin, emin) > s->budget) {
        if (n > 0) {
            pc_status st = spill_table(s, err, errlen);
            return st != PC_OK ? st : make_room(s, b, err, errlen);
        }
        /* Empty: size the table afresh, from the last run's pair size when there was one, so
         * that neither array keeps room the other needs; a pair larger than the budget is
         * held alone. */
        size_t avg = (size_t)s->avg_pair + 1, budget = s->budget > KV_ENTRY_BYTES ? s->budget - KV_ENTRY_BYTES : 0;
        size_t et = budget / (avg + MEM_PER_PAIR);
        if (et < 1) et = 1;
        size_t at = budget > et * MEM_PER_PAIR ? budget - et * MEM_PER_PAIR : 0;
        amin = max_size(b, at);
        emin = et;
        if (mem_cost(amin, emin) > s->budget) {
            amin = b;
            emin = 1;
        }
        return kv_reserve(m, amin, emin, err, errlen);
    }
    /* Grow what is short by doubling, within what the budget leaves. */
    size_t spare = s->budget - mem_cost(amin, emin), anew = amin, enew = emin;
    bool grow_a = used + b > a, grow_e = n + 1 > e;
    size_t share = grow_a && grow_e ? spare / 2 : spare;
    if (grow_a) {
        size_t target = max_size(max_size(used + b, 2 * a), 64 * 1024);
        size_t extra = min_size(target - amin, share);
        anew += extra;
        spare -= extra;
    }
    if (grow_e) {
        size_t target = max_size(max_size(n + 1, 2 * e), 1024);
        enew += min_size(target - emin, spare / MEM_PER_PAIR);
    }
    return kv_reserve(m, anew, enew, err, errlen);
}

static void sample_offer(kv_spill *s, const void *key, size_t klen)
{
    int64_t n = s->count, slot = n;
    if (n >= KV_SPILL_SAMPLES) {
        slot = (int64_t)(next_random(&s->rng) % (uint64_t)(n + 1));
        if (slot >= KV_SPILL_SAMPLES) return;
    }
    size_t len = min_size(klen, KV_SAMPLE_KEY_MAX);
    if (len) memcpy(s->samples + (size_t)slot * KV_SAMPLE_KEY_MAX, key, len);
    s->sample_len[slot] = (uint16_t)len;
    if (s->nsamples < KV_SPILL_SAMPLES) s->nsamples++;
}

pc_status kv_spill_append(kv_spill *s, const void *key, size_t klen, const void *val, size_t vlen,
                          kv_origin origin, char *err, size_t errlen)
{
    if (s->readers > 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "append to a spill store while it is being read");
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return pc_err(err, errlen, PC_ERR_DATA, "key or value longer than 4 GiB");
    pc_status st = make_room(s, klen + vlen, err, errlen);
    if (st == PC_OK) st = kv_append(s->mem, key, klen, val, vlen, origin, err, errlen);
    if (st != PC_OK) return st;
    s->mem_sorted = false;
    sample_offer(s, key, klen);
    s->count++;
    return PC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* scan */

struct kv_scan {
    kv_spill *s;
    int64_t run;      /* next run to open */
    run_reader rd;
    bool rd_open;
    int64_t mem_pos;
};

pc_status kv_scan_open(kv_spill *s, kv_scan **out, char *err, size_t errlen)
{
    *out = calloc(1, sizeof(kv_scan));
    if (*out == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    (*out)->s = s;
    (*out)->rd.fd = -1;
    s->readers++;
    return PC_OK;
}

pc_status kv_scan_next(kv_scan *sc, kv_pair *p, bool *eof, char *err, size_t errlen)
{
    *eof = false;
    for (;;) {
        if (sc->rd_open) {
            bool done;
            pc_status st = reader_next(&sc->rd, p, &done, err, errlen);
            if (st != PC_OK || !done) return st;
            reader_close(&sc->rd);
            sc->rd_open = false;
        }
        if (sc->run >= sc->s->nruns) break;
        pc_status st = reader_open(&sc->rd, sc->s->runs[sc->run++], err, errlen);
        if (st != PC_OK) return st;
        sc->rd_open = true;
    }
    if (sc->mem_pos >= kv_count(sc->s->mem)) {
        *eof = true;
        return PC_OK;
    }
    kv_buffer *m = sc->s->mem;
    p->key = kv_key(m, sc->mem_pos, &p->klen);
    p->val = kv_value(m, sc->mem_pos, &p->vlen);
    p->origin = kv_origin_of(m, sc->mem_pos);
    sc->mem_pos++;
    return PC_OK;
}

void kv_scan_close(kv_scan *sc)
{
    if (sc == NULL) return;
    if (sc->rd_open) reader_close(&sc->rd);
    sc->s->readers--;
    free(sc);
}

/* ---------------------------------------------------------------------------------------- */
/* merge */

/* One input of a merge: a run file, or the in-memory table (mem = true). */
typedef struct source {
    run_reader rd;
    bool mem, done;
    int64_t mem_pos;
    kv_pair cur;
} source;

struct kv_merge {
    kv_spill *s;
    source *src;
    int nsrc;
    int *heap;
    int size;
    int last; /* source of the pair yielded last, advanced on the next call; -1 at first */
};

static pc_status source_advance(kv_merge *m, source *src, char *err, size_t errlen)
{
    if (src->mem) {
        kv_buffer *t = m->s->mem;
        if (src->mem_pos >= kv_count(t)) {
            src->done = true;
            return PC_OK;
        }
        kv_prefetch(t, src->mem_pos + 16); /* sorted order visits the arena at random */
        src->cur.key = kv_key(t, src->mem_pos, &src->cur.klen);
        src->cur.val = kv_value(t, src->mem_pos, &src->cur.vlen);
        src->cur.origin = kv_origin_of(t, src->mem_pos);
        src->mem_pos++;
        return PC_OK;
    }
    return reader_next(&src->rd, &src->cur, &src->done, err, errlen);
}

static bool source_less(const kv_merge *m, int a, int b)
{
    const kv_pair *x = &m->src[a].cur, *y = &m->src[b].cur;
    int c = kv_key_compare(x->key, x->klen, y->key, y->klen);
    return c < 0 || (c == 0 && a < b); /* ties by source: runs in the order written, table last */
}

static void heap_down(kv_merge *m, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, best = i;
        if (l < m->size && source_less(m, m->heap[l], m->heap[best])) best = l;
        if (r < m->size && source_less(m, m->heap[r], m->heap[best])) best = r;
        if (best == i) return;
        int t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

static void merge_free(kv_merge *m)
{
    if (m == NULL) return;
    for (int i = 0; i < m->nsrc; i++)
        if (!m->src[i].mem) reader_close(&m->src[i].rd);
    free(m->src);
    free(m->heap);
    free(m);
}

/* A merge of runs [first, first + n) and, if with_mem, the table. Not counted as a reader. */
static pc_status merge_init(kv_spill *s, int64_t first, int n, bool with_mem, kv_merge **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    kv_merge *m = calloc(1, sizeof *m);
    int total = n + (with_mem ? 1 : 0);
    if (m == NULL || (m->src = calloc((size_t)total + 1, sizeof(source))) == NULL ||
        (m->heap = calloc((size_t)total + 1, sizeof(int))) == NULL) {
        merge_free(m);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory opening a merge");
    }
    m->s = s;
    m->last = -1;
    pc_status st = PC_OK;
    for (int i = 0; i < n && st == PC_OK; i++) {
        st = reader_open(&m->src[i].rd, s->runs[first + i], err, errlen);
        if (st == PC_OK) m->nsrc++;
    }
    if (st == PC_OK && with_mem) m->src[m->nsrc++] = (source){.mem = true, .rd.fd = -1};
    for (int i = 0; i < m->nsrc && st == PC_OK; i++) {
        st = source_advance(m, &m->src[i], err, errlen);
        if (st == PC_OK && !m->src[i].done) m->heap[m->size++] = i;
    }
    if (st != PC_OK) {
        merge_free(m);
        return st;
    }
    for (int i = m->size / 2 - 1; i >= 0; i--) heap_down(m, i);
    *out = m;
    return PC_OK;
}

static pc_status merge_step(kv_merge *m, kv_pair *p, bool *eof, char *err, size_t errlen)
{
    *eof = false;
    if (m->last >= 0) {
        source *src = &m->src[m->last];
        pc_status st = source_advance(m, src, err, errlen);
        if (st != PC_OK) return st;
        if (src->done) m->heap[0] = m->heap[--m->size];
        heap_down(m, 0);
        m->last = -1;
    }
    if (m->size == 0) {
        *eof = true;
        return PC_OK;
    }
    m->last = m->heap[0];
    *p = m->src[m->last].cur;
    return PC_OK;
}

/* Replaces runs [first, first + n) by one run that merges them. On failure the runs are as
 * they were and no new file is left. */
static pc_status merge_group(kv_spill *s, int64_t first, int n, char *err, size_t errlen)
{
    kv_merge *m = NULL;
    run_writer w = {.fd = -1};
    pc_status st = merge_init(s, first, n, false, &m, err, errlen);
    if (st == PC_OK) st = writer_open(s, &w, err, errlen);
    bool eof = false;
    while (st == PC_OK) {
        kv_pair p;
        st = merge_step(m, &p, &eof, err, errlen);
        if (st != PC_OK || eof) break;
        st = writer_put(&w, p.key, p.klen, p.val, p.vlen, p.origin, err, errlen);
    }
    merge_free(m);
    char *path = NULL;
    int64_t bytes = 0;
    if (st == PC_OK) st = writer_finish(&w, &path, &bytes, err, errlen);
    else writer_abort(&w);
    if (st != PC_OK) return st;
    for (int i = 0; i < n; i++) {
        unlink(s->runs[first + i]);
        free(s->runs[first + i]);
    }
    s->runs[first] = path;
    memmove(s->runs + first + 1, s->runs + first + n, (size_t)(s->nruns - first - n) * sizeof(char *));
    s->nruns -= n - 1;
    return PC_OK;
}

pc_status kv_merge_open(kv_spill *s, kv_merge **out, char *err, size_t errlen)
{
    *out = NULL;
    if (s->readers > 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "merge of a spill store that is being read");
    /* Passes over consecutive groups keep the runs' order, so equal keys keep theirs. */
    while (s->nruns > KV_MERGE_FANIN) {
        for (int64_t g = 0; g < s->nruns; g++) {
            int n = (int)(s->nruns - g < KV_MERGE_FANIN ? s->nruns - g : KV_MERGE_FANIN);
            if (n < 2) continue;
            pc_status st = merge_group(s, g, n, err, errlen);
            if (st != PC_OK) return st;
        }
    }
    if (!s->mem_sorted) {
        pc_status st = kv_sort(s->mem, err, errlen);
        if (st != PC_OK) return st;
        s->mem_sorted = true;
    }
    pc_status st = merge_init(s, 0, (int)s->nruns, true, out, err, errlen);
    if (st == PC_OK) s->readers++;
    return st;
}

pc_status kv_merge_next(kv_merge *m, kv_pair *p, bool *eof, char *err, size_t errlen)
{
    return merge_step(m, p, eof, err, errlen);
}

void kv_merge_close(kv_merge *m)
{
    if (m == NULL) return;
    m->s->readers--;
    merge_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* sweep */

static bool is_run_name(const char *name, const char *prefix, size_t plen)
{
    if (strlen(name) != plen + 1 + 6 + 4 || strncmp(name, prefix, plen) != 0 || name[plen] != '-')
        return false;
    for (size_t i = plen + 1; i < plen + 7; i++)
        if (!isalnum((unsigned char)name[i])) return false;
    return strcmp(name + plen + 7, ".run") == 0;
}

pc_status kv_spill_sweep(const char *dir, const char *prefix, int64_t *removed, char *err,
                         size_t errlen)
{
    if (removed) *removed = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen == 0 || plen > PREFIX_MAX || strchr(prefix, '/') != NULL)
        return pc_err(err, errlen, PC_ERR_USAGE, "spill prefix '%s' must be 1 to %d bytes without '/'",
                      prefix ? prefix : "", PREFIX_MAX);
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return PC_OK;
        return pc_err(err, errlen, PC_ERR_IO, "%s: %s", dir, strerror(errno));
    }
    pc_status st = PC_OK;
    size_t n = strlen(dir) + plen + 16;
    char *path = malloc(n);
    if (path == NULL) st = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (struct dirent *de; st == PC_OK && (de = readdir(d)) != NULL;) {
        if (!is_run_name(de->d_name, prefix, plen)) continue;
        snprintf(path, n, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0) {
            if (removed) (*removed)++;
        } else if (errno != ENOENT) { /* ENOENT: another rank sweeping the same dir took it */
            st = pc_err(err, errlen, PC_ERR_IO, "%s: cannot remove stale spill run: %s", path, strerror(errno));
        }
    }
    free(path);
    closedir(d);
    return st;
}
