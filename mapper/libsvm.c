#include "mapper/libsvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/numparse.h"
#include "mapper/readbuf.h"
#include "mapper/source.h"

struct libsvm_reader {
    readbuf rb;          /* bytes of the segment's source */
    char *path;
    int64_t end;         /* lines starting at or after this file offset are not ours */
    bool one_based;
    int64_t width;

    size_t max_record;   /* longest record accepted, terminator included */
    bool done;           /* no more records for this segment */
    pc_status broken;    /* a non-data error happened: the reader is unusable */

    /* The current record: its ID (NUL-terminated copy) and its pairs. */
    char *id;
    size_t id_cap;
    int32_t *idx;
    float *vals;
    int64_t pairs_cap;
};

typedef enum scan_stop { SCAN_NEWLINE, SCAN_EOF, SCAN_FULL } scan_stop;


/* Scans from buf[pos + *rel] for the next '\n', refilling as needed. On return *rel is the
 * length from pos to just past that '\n' (SCAN_NEWLINE), or to the end of the data
 * (SCAN_EOF: end of file; SCAN_FULL: keep and the buffer is at max_cap). keep = false
 * discards the bytes as they are scanned (pos moves along and *rel stays small): for
 * skipping, without memory growth. */
static pc_status scan_line(libsvm_reader *r, bool keep, size_t *rel, scan_stop *stop,
                           char *err, size_t errlen)
{
    for (;;) {
        const char *p = r->rb.buf + r->rb.pos + *rel, *data_end = r->rb.buf + r->rb.len;
        const char *nl = p < data_end ? memchr(p, '\n', (size_t)(data_end - p)) : NULL;
        if (nl != NULL) {
            *rel = (size_t)(nl + 1 - (r->rb.buf + r->rb.pos));
            *stop = SCAN_NEWLINE;
            return PC_OK;
        }
        *rel = (size_t)(data_end - (r->rb.buf + r->rb.pos));
        if (!keep) {
            r->rb.pos += *rel;
            *rel = 0;
        }
        size_t got;
        pc_status st = readbuf_fill(&r->rb, &got, "line", err, errlen);
        if (st != PC_OK) return st;
        if (got == 0) {
            *stop = r->rb.file_eof ? SCAN_EOF : SCAN_FULL;
            return PC_OK;
        }
    }
}

static inline bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Pairs are quoted in messages up to this many bytes. */
#define LIBSVM_SHOWN 40

static pc_status pair_error(const libsvm_reader *r, const libsvm_record *rec, const char *t,
                            const char *te, char *err, size_t errlen, const char *what)
{
    size_t n = (size_t)(te - t);
    int shown = n > LIBSVM_SHOWN ? LIBSVM_SHOWN : (int)n;
    return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %s in '%.*s%s'", r->path,
                  (long long)rec->line, what, shown, t, n > LIBSVM_SHOWN ? "..." : "");
}

static pc_status grow_pairs(libsvm_reader *r, char *err, size_t errlen)
{
    int64_t ncap = r->pairs_cap ? 2 * r->pairs_cap : 256;
    int32_t *ni = realloc(r->idx, (size_t)ncap * sizeof *ni);
    if (ni != NULL) r->idx = ni;
    float *nv = ni != NULL ? realloc(r->vals, (size_t)ncap * sizeof *nv) : NULL;
    if (nv == NULL)
        return r->broken = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (%lld pairs)",
                                  r->path, (long long)ncap);
    r->vals = nv;
    r->pairs_cap = ncap;
    return PC_OK;
}

/* Parses the line p[0, n) (without its terminator) into rec. *blank = true for a line
 * without an ID (only whitespace and a comment): not a record. */
static pc_status parse_line(libsvm_reader *r, libsvm_record *rec, const char *p, size_t n,
                            bool *blank, char *err, size_t errlen)
{
    const char *e = p + n;
    if (rec->offset == 0 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    const char *hash = memchr(p, '#', (size_t)(e - p));
    if (hash != NULL) e = hash;
    while (p < e && is_ws(*p)) p++;
    *blank = p == e;
    if (*blank) return PC_OK;

    const char *id = p;
    while (p < e && !is_ws(*p)) p++;
    size_t id_len = (size_t)(p - id);
    if (id_len + 1 > r->id_cap) {
        size_t ncap = r->id_cap ? r->id_cap : 64;
        while (ncap < id_len + 1) ncap *= 2;
        char *nb = realloc(r->id, ncap);
        if (nb == NULL)
            return r->broken = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (id)",
                                      r->path);
        r->id = nb;
        r->id_cap = ncap;
    }
    memcpy(r->id, id, id_len);
    r->id[id_len] = '\0';
    rec->id = r->id;
    rec->id_len = id_len;

    int64_t nnz = 0, prev = -1;
    const int64_t base = r->one_based ? 1 : 0;
    for (;;) {
        while (p < e && is_ws(*p)) p++;
        if (p == e) break;
        const char *t = p;
        while (p < e && !is_ws(*p)) p++;
        const char *te = p;
        const char *colon = memchr(t, ':', (size_t)(te - t));
        if (colon == NULL) return pair_error(r, rec, t, te, err, errlen, "no ':'");

        /* Index: digits only (a '-' is recognised to say "negative"). Past 2^40 the value
         * stops growing: it is out of range anyway, and cannot overflow. */
        const char *q = t;
        bool neg = q < colon && *q == '-';
        q += neg;
        if (q == colon) return pair_error(r, rec, t, te, err, errlen, "bad index (not an integer)");
        uint64_t v = 0;
        for (; q < colon; q++) {
            unsigned d = (unsigned)(unsigned char)*q - '0';
            if (d > 9) return pair_error(r, rec, t, te, err, errlen, "bad index (not an integer)");
            if (v < ((uint64_t)1 << 40)) v = 10 * v + d;
        }
        if (neg) return pair_error(r, rec, t, te, err, errlen, "bad index (negative)");
        if (r->one_based && v == 0)
            return pair_error(r, rec, t, te, err, errlen, "bad index (0 in a 1-based file)");
        if (v - (uint64_t)base >= (uint64_t)r->width) {
            char what[96];
            snprintf(what, sizeof what, "bad index (the model takes %lld features: at most %lld)",
                     (long long)r->width, (long long)(r->width - 1 + base));
            return pair_error(r, rec, t, te, err, errlen, what);
        }
        int64_t ix = (int64_t)v - base;
        if (ix <= prev) {
            char what[96];
            snprintf(what, sizeof what, "%s index (after %lld): indices must be strictly ascending",
                     ix == prev ? "duplicate" : "descending", (long long)(prev + base));
            return pair_error(r, rec, t, te, err, errlen, what);
        }

        float f;
        char why[PC_ERRLEN];
        if (parse_float(colon + 1, (size_t)(te - colon - 1), &f, why, sizeof why) != PC_OK) {
            char what[PC_ERRLEN + 16];
            snprintf(what, sizeof what, "bad value (%s)", why);
            return pair_error(r, rec, t, te, err, errlen, what);
        }
        pc_status st;
        if (nnz == r->pairs_cap && (st = grow_pairs(r, err, errlen)) != PC_OK) return st;
        r->idx[nnz] = (int32_t)ix;
        r->vals[nnz] = f;
        nnz++;
        prev = ix;
    }
    rec->nnz = nnz;
    rec->idx = r->idx;
    rec->vals = r->vals;
    return PC_OK;
}

pc_status libsvm_reader_next(libsvm_reader *r, libsvm_record *rec, bool *eof, char *err,
                             size_t errlen)
{
    *eof = false;
    if (r->broken != PC_OK)
        return pc_err(err, errlen, r->broken, "%s: reader failed earlier", r->path);
    for (;;) {
        if (r->done) {
            *eof = true;
            return PC_OK;
        }
        pc_status st;
        if (r->rb.pos == r->rb.len) {
            size_t got;
            st = readbuf_fill(&r->rb, &got, "line", err, errlen);
            if (st != PC_OK) return r->broken = st;
            if (got == 0) {
                r->done = true;
                continue;
            }
        }
        int64_t offset = r->rb.file_off + (int64_t)r->rb.pos;
        if (offset >= r->end) {
            r->done = true;
            continue;
        }
        int64_t line = r->rb.line;
        size_t rel = 0;
        scan_stop stop;
        st = scan_line(r, true, &rel, &stop, err, errlen);
        if (st != PC_OK) return r->broken = st;

        memset(rec, 0, sizeof *rec);
        rec->line = line;
        rec->offset = offset;
        rec->idx = r->idx;
        rec->vals = r->vals;
        if (stop == SCAN_FULL) {
            /* Too long to buffer: skip to its end, keeping nothing. */
            st = scan_line(r, false, &rel, &stop, err, errlen);
            if (st != PC_OK) return r->broken = st;
            r->rb.pos += rel;
            r->rb.line += stop == SCAN_NEWLINE;
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: line longer than %zu bytes",
                          r->path, (long long)line, r->max_record);
        }
        const char *raw = r->rb.buf + r->rb.pos;
        size_t n = rel - (stop == SCAN_NEWLINE);
        if (n > 0 && raw[n - 1] == '\r') n--;
        r->rb.pos += rel;
        r->rb.line += stop == SCAN_NEWLINE;
        rec->raw = raw;
        rec->raw_len = n;
        if (rel > r->max_record)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: line longer than %zu bytes",
                          r->path, (long long)line, r->max_record);
        bool blank;
        st = parse_line(r, rec, raw, n, &blank, err, errlen);
        if (st == PC_OK && blank) continue;
        return st;
    }
}

pc_status libsvm_reader_open(const char *path, const split_segment *seg,
                             const libsvm_options *opts, libsvm_reader **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    if (opts->width < 1 || opts->width > ((int64_t)1 << 31))
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "%s: model width %lld outside what sparse rows support [1, 2^31]", path,
                      (long long)opts->width);
    libsvm_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    r->one_based = opts->one_based;
    r->width = opts->width;
    r->rb.cap = opts->buffer_size > 0 ? opts->buffer_size : LIBSVM_DEFAULT_BUFFER;
    r->max_record = opts->max_record > 0 ? opts->max_record : LIBSVM_DEFAULT_MAX_RECORD;
    /* One byte more than the longest line: a full buffer without an end is too long. */
    r->rb.max_cap = r->max_record + 1 > r->rb.cap ? r->max_record + 1 : r->rb.cap;
    r->end = seg->end;
    r->path = strdup(path);
    r->rb.path = r->path;
    r->rb.buf = malloc(r->rb.cap);
    if (r->path == NULL || r->rb.buf == NULL) {
        libsvm_reader_close(r);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    /* Mid-file, the source starts one byte early: that byte tells whether a line starts
     * exactly at seg->start. */
    pc_status st = source_open(path, seg->start > 0 ? seg->start - 1 : 0, &r->rb.src, err, errlen);
    if (st != PC_OK) {
        libsvm_reader_close(r);
        return st;
    }
    /* A compressed file is one segment, read to its end (offsets are uncompressed ones). */
    if (source_compressed(r->rb.src)) r->end = INT64_MAX;
    if (seg->start == 0) {
        r->rb.line = 1;
        *out = r;
        return PC_OK;
    }
    /* Mid-file: our first line is the one after the first '\n' at or after start-1 (a line
     * starting exactly at start has its '\n' at start-1). */
    r->rb.file_off = seg->start - 1;
    r->rb.line = seg->line_at_start; /* for a read error's message; set exactly below */
    size_t got = 0;
    if (st == PC_OK) st = readbuf_fill(&r->rb, &got, "line", err, errlen);
    if (st == PC_OK && got == 0) r->done = true; /* the file shrank; nothing to read */
    if (st == PC_OK && got > 0) {
        size_t rel = 0;
        scan_stop stop;
        /* line_at_start counts the '\n's before start, the one at start-1 included */
        r->rb.line = seg->line_at_start - (r->rb.buf[0] == '\n');
        st = scan_line(r, false, &rel, &stop, err, errlen);
        if (st == PC_OK) {
            r->rb.pos += rel;
            r->rb.line += stop == SCAN_NEWLINE;
            if (stop != SCAN_NEWLINE) r->done = true;
        }
    }
    if (st != PC_OK) {
        libsvm_reader_close(r);
        return st;
    }
    *out = r;
    return PC_OK;
}

void libsvm_reader_close(libsvm_reader *r)
{
    if (r == NULL) return;
    source_close(r->rb.src);
    free(r->path);
    free(r->rb.buf);
    free(r->id);
    free(r->idx);
    free(r->vals);
    free(r);
}
