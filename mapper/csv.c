#include "mapper/csv.h"

#include <stdlib.h>
#include <string.h>

#include "mapper/numparse.h"
#include "mapper/readbuf.h"
#include "mapper/source.h"

/* Bytes after a record's copy in fbuf that word-at-a-time scans may read: zeroed, so they
 * hold no separator and no digit, and valgrind sees them initialised. */
#define FIELD_PADDING PARSE_FLOAT_PADDING

struct csv_reader {
    readbuf rb;          /* bytes of the segment's source */
    char *path;
    int64_t end;         /* records starting at or after this file offset are not ours */

    size_t max_record;   /* longest record accepted, terminator included */
    bool done;           /* no more records for this segment */
    pc_status broken;    /* a non-data error happened: the reader is unusable */

    bool skip_first;     /* the next record is the file's header: consume it silently */
    bool keep_blank;     /* return empty lines too (csv_read_header) */
    bool strip_bom;      /* drop a UTF-8 BOM at file offset 0 (csv_read_header) */

    /* The current record's unescaped fields. fbuf has FIELD_PADDING bytes after fcap. */
    char *fbuf;
    size_t fcap;
    char **fields;
    size_t *lens;
    int64_t fields_cap;

    /* csv_reader_set_float_columns: the columns as runs of alternately other and float
     * columns (runs[0] other, possibly 0 long), parsed into values; ends is scratch for
     * parse_float_fields, as long as the longest float run. float_ncols = 0: not asked. */
    int64_t float_ncols;
    int64_t *runs;
    int64_t nruns;
    float *values;
    size_t *ends;
};

typedef enum scan_stop { SCAN_NEWLINE, SCAN_EOF, SCAN_FULL } scan_stop;


/* Scans from buf[pos + *rel] for the first '\n' reached with an even count of '"' (the
 * count starts at *quotes), refilling as needed. On return *rel is the length from pos to
 * just past that '\n' (SCAN_NEWLINE), or to the end of the data (SCAN_EOF: end of file;
 * SCAN_FULL: keep and the buffer is at max_cap). *quotes and *nls (newlines passed, the
 * final one included) are updated. keep = false discards the bytes as they are scanned
 * (pos moves along and *rel stays small): for skipping, without memory growth. */
static pc_status scan_to_end(csv_reader *r, bool keep, size_t *rel, int64_t *quotes,
                             int64_t *nls, scan_stop *stop, char *err, size_t errlen)
{
    for (;;) {
        const char *p = r->rb.buf + r->rb.pos + *rel, *data_end = r->rb.buf + r->rb.len;
        while (p < data_end) {
            const char *nl = memchr(p, '\n', (size_t)(data_end - p));
            const char *lim = nl != NULL ? nl : data_end;
            for (const char *q = p; (q = memchr(q, '"', (size_t)(lim - q))) != NULL; q++)
                (*quotes)++;
            if (nl == NULL) {
                p = data_end;
                break;
            }
            (*nls)++;
            p = nl + 1;
            if ((*quotes & 1) == 0) {
                *rel = (size_t)(p - (r->rb.buf + r->rb.pos));
                *stop = SCAN_NEWLINE;
                return PC_OK;
            }
        }
        *rel = (size_t)(p - (r->rb.buf + r->rb.pos));
        if (!keep) {
            r->rb.pos += *rel;
            *rel = 0;
        }
        size_t got;
        pc_status st = readbuf_fill(&r->rb, &got, "record", err, errlen);
        if (st != PC_OK) return st;
        if (got == 0) {
            *stop = r->rb.file_eof ? SCAN_EOF : SCAN_FULL;
            return PC_OK;
        }
    }
}

static pc_status reserve_fields(csv_reader *r, int64_t n, char *err, size_t errlen)
{
    if (n <= r->fields_cap) return PC_OK;
    int64_t ncap = r->fields_cap ? 2 * r->fields_cap : 64;
    while (ncap < n) ncap *= 2;
    char **nf = realloc(r->fields, (size_t)ncap * sizeof *nf);
    if (nf != NULL) r->fields = nf;
    size_t *nl = nf != NULL ? realloc(r->lens, (size_t)ncap * sizeof *nl) : NULL;
    if (nl == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (%lld fields)", r->path,
                      (long long)ncap);
    r->lens = nl;
    r->fields_cap = ncap;
    return PC_OK;
}

/* 0x80 in each byte of the 8 bytes at p that is a ',' (exact: no false positives). */
static inline uint64_t comma_mask(const char *p)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fu;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t x = w ^ 0x2c2c2c2c2c2c2c2cu; /* zero bytes at commas */
    return ~(((x & low7) + low7) | x) & ~low7;
}

/* Offset of the first ',' in b[pos, n), or n. REQUIRES b[n, n + FIELD_PADDING) readable. */
static inline size_t find_comma(const char *b, size_t pos, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* whole words, the padding included: ids and labels are short, a call per field costs
     * more than the scan */
    for (size_t k = pos; k < n; k += 8) {
        uint64_t m = comma_mask(b + k);
        if (m != 0) {
            size_t at = k + (size_t)(__builtin_ctzll(m) >> 3);
            return at < n ? at : n;
        }
    }
    return n;
#else
    const char *c = memchr(b + pos, ',', n - pos);
    return c != NULL ? (size_t)(c - b) : n;
#endif
}

/* Splits the record copied to b[0, n) (NUL at b[n], padding after) into r->float_ncols
 * fields as parse_fields does, parsing the float columns into r->values on the way.
 * Returns false, with b partly cut, when the record has another number of fields or a float
 * column that does not parse: the caller splits it again from the raw bytes. */
static bool split_parse_floats(csv_reader *r, char *b, size_t n)
{
    /* locals: stores through b (a char *) could alias r's members, which the compiler
     * would otherwise reload for every field */
    char **fields = r->fields;
    size_t *lens = r->lens, *ends = r->ends;
    float *values = r->values;
    const int64_t *runs = r->runs, nruns = r->nruns;
    size_t pos = 0; /* start of the next field */
    int64_t c = 0;
    for (int64_t k = 0; k < nruns; k++) {
        int64_t cnt = runs[k];
        if (cnt == 0) continue;
        if (pos > n) return false; /* the record ended before column c */
        if (k & 1) {
            size_t base = pos;
            if (parse_float_fields(b + base, n - base, ',', (size_t)cnt, values + c, ends, NULL,
                                   0) < (size_t)cnt)
                return false;
            for (int64_t i = 0; i < cnt; i++, c++) {
                size_t e = base + ends[i];
                fields[c] = b + pos;
                lens[c] = e - pos;
                b[e] = '\0';
                pos = e + 1;
            }
        } else {
            for (int64_t i = 0; i < cnt; i++, c++) {
                if (pos > n) return false;
                size_t e = find_comma(b, pos, n);
                fields[c] = b + pos;
                lens[c] = e - pos;
                b[e] = '\0';
                pos = e + 1;
            }
        }
    }
    return pos == n + 1; /* the last column's field ended the record */
}

/* Splits the record p[0, n) into unescaped fields in r->fbuf. may_quote = false (no '"' in
 * the record) skips the quote checks. Returns PC_ERR_DATA for a malformed record. */
static pc_status parse_fields(csv_reader *r, csv_record *rec, const char *p, size_t n,
                              bool may_quote, char *err, size_t errlen)
{
    /* Every field's text shrinks or stays; its NUL takes its separator's place. */
    if (r->fcap < n + 1) {
        size_t ncap = r->fcap ? r->fcap : 256;
        while (ncap < n + 1) ncap *= 2;
        char *nb = realloc(r->fbuf, ncap + FIELD_PADDING);
        if (nb == NULL) {
            r->broken = PC_ERR_INTERNAL;
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (field buffer)",
                          r->path);
        }
        r->fbuf = nb;
        r->fcap = ncap;
    }
    if (!may_quote && r->float_ncols > 0) {
        memcpy(r->fbuf, p, n);
        memset(r->fbuf + n, 0, FIELD_PADDING);
        if (split_parse_floats(r, r->fbuf, n)) {
            rec->nfields = r->float_ncols;
            rec->fields = r->fields;
            rec->lens = r->lens;
            rec->values = r->values;
            return PC_OK;
        }
    }
    if (!may_quote) {
        /* No quotes: copy once, then cut at the commas. Fields of numeric CSVs are a few
         * bytes long, so a byte loop beats a memchr call per field. */
        char *b = r->fbuf;
        memcpy(b, p, n);
        b[n] = '\0';
        int64_t nf = 0;
        size_t fs = 0, k = 0;
        pc_status st;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* eight bytes at a time: a mask of the commas in the word, then each set bit (the
         * lowest set bit is the first byte on a little-endian machine) */
        for (; k + 8 <= n; k += 8) {
            uint64_t m = comma_mask(b + k);
            while (m != 0) {
                size_t at = k + (size_t)(__builtin_ctzll(m) >> 3);
                m &= m - 1;
                if (nf == r->fields_cap && (st = reserve_fields(r, nf + 1, err, errlen)) != PC_OK)
                    return r->broken = st;
                b[at] = '\0';
                r->fields[nf] = b + fs;
                r->lens[nf++] = at - fs;
                fs = at + 1;
            }
        }
#endif
        for (; k <= n; k++) {
            if (k < n && b[k] != ',') continue;
            if (nf == r->fields_cap && (st = reserve_fields(r, nf + 1, err, errlen)) != PC_OK)
                return r->broken = st;
            b[k] = '\0';
            r->fields[nf] = b + fs;
            r->lens[nf++] = k - fs;
            fs = k + 1;
        }
        rec->nfields = nf;
        rec->fields = r->fields;
        rec->lens = r->lens;
        return PC_OK;
    }
    char *o = r->fbuf;
    const char *i = p, *e = p + n;
    int64_t nf = 0;
    const char *why = NULL;
    for (;;) {
        pc_status st = reserve_fields(r, nf + 1, err, errlen);
        if (st != PC_OK) {
            r->broken = st;
            return st;
        }
        char *fs = o;
        if (may_quote && i < e && *i == '"') {
            i++;
            for (;;) {
                const char *q = memchr(i, '"', (size_t)(e - i));
                if (q == NULL) {
                    why = "unterminated quoted field";
                    break;
                }
                memcpy(o, i, (size_t)(q - i));
                o += q - i;
                if (q + 1 < e && q[1] == '"') {
                    *o++ = '"';
                    i = q + 2;
                    continue;
                }
                i = q + 1;
                break;
            }
            if (why == NULL && i < e && *i != ',') why = "text after closing quote";
            if (why != NULL) break;
            *o = '\0';
            r->fields[nf] = fs;
            r->lens[nf++] = (size_t)(o - fs);
            o++;
            if (i == e) break;
            i++; /* the ',' */
        } else {
            const char *c = memchr(i, ',', (size_t)(e - i));
            const char *fe = c != NULL ? c : e;
            if (may_quote && memchr(i, '"', (size_t)(fe - i)) != NULL) {
                why = "quote inside unquoted field";
                break;
            }
            memcpy(o, i, (size_t)(fe - i));
            o += fe - i;
            *o = '\0';
            r->fields[nf] = fs;
            r->lens[nf++] = (size_t)(o - fs);
            o++;
            if (c == NULL) break;
            i = c + 1;
        }
    }
    if (why != NULL)
        return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: %s (field %lld)", r->path,
                      (long long)rec->line, why, (long long)(nf + 1));
    rec->nfields = nf;
    rec->fields = r->fields;
    rec->lens = r->lens;
    return PC_OK;
}

pc_status csv_reader_next(csv_reader *r, csv_record *rec, bool *eof, char *err, size_t errlen)
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
            st = readbuf_fill(&r->rb, &got, "record", err, errlen);
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
        int64_t line = r->rb.line, quotes = 0, nls = 0;
        size_t rel = 0;
        scan_stop stop;
        st = scan_to_end(r, true, &rel, &quotes, &nls, &stop, err, errlen);
        if (st != PC_OK) return r->broken = st;

        bool skip = r->skip_first;
        r->skip_first = false;
        memset(rec, 0, sizeof *rec);
        rec->line = line;
        rec->offset = offset;
        rec->fields = r->fields;
        rec->lens = r->lens;
        if (stop == SCAN_FULL) {
            /* Too long to buffer: skip to its end by the same rule, keeping nothing. */
            st = scan_to_end(r, false, &rel, &quotes, &nls, &stop, err, errlen);
            if (st != PC_OK) return r->broken = st;
            r->rb.pos += rel;
            r->rb.line += nls;
            if (skip) continue;
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: record longer than %zu bytes",
                          r->path, (long long)line, r->max_record);
        }
        const char *raw = r->rb.buf + r->rb.pos;
        size_t n = rel - (stop == SCAN_NEWLINE);
        if (n > 0 && raw[n - 1] == '\r') n--;
        r->rb.pos += rel;
        r->rb.line += nls;
        if (skip) continue;
        if (r->strip_bom && offset == 0 && n >= 3 && memcmp(raw, "\xEF\xBB\xBF", 3) == 0) {
            raw += 3;
            n -= 3;
        }
        rec->raw = raw;
        rec->raw_len = n;
        if (stop == SCAN_EOF && (quotes & 1))
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: unterminated quoted field",
                          r->path, (long long)line);
        if (rel > r->max_record)
            return pc_err(err, errlen, PC_ERR_DATA, "%s:%lld: record longer than %zu bytes",
                          r->path, (long long)line, r->max_record);
        if (n == 0 && !r->keep_blank) continue;
        return parse_fields(r, rec, raw, n, quotes > 0, err, errlen);
    }
}

pc_status csv_reader_open_opts(const char *path, const split_segment *seg,
                               const csv_reader_options *opts, csv_reader **out, char *err,
                               size_t errlen)
{
    *out = NULL;
    csv_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    r->rb.cap = opts != NULL && opts->buffer_size > 0 ? opts->buffer_size : CSV_DEFAULT_BUFFER;
    r->max_record = opts != NULL && opts->max_record > 0 ? opts->max_record
                                                          : CSV_DEFAULT_MAX_RECORD;
    /* One byte more than the longest record: a full buffer without an end is too long. */
    r->rb.max_cap = r->max_record + 1 > r->rb.cap ? r->max_record + 1 : r->rb.cap;
    r->end = seg->end;
    r->path = strdup(path);
    r->rb.path = r->path;
    r->rb.buf = malloc(r->rb.cap);
    if (r->path == NULL || r->rb.buf == NULL) {
        csv_reader_close(r);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    /* Mid-file, the source starts one byte early: that byte tells whether a record starts
     * exactly at seg->start. */
    pc_status st = source_open(path, seg->start > 0 ? seg->start - 1 : 0, &r->rb.src, err, errlen);
    if (st != PC_OK) {
        csv_reader_close(r);
        return st;
    }
    /* A compressed file is one segment, read to its end (offsets are uncompressed ones). */
    if (source_compressed(r->rb.src)) r->end = INT64_MAX;
    if (seg->start == 0) {
        r->rb.line = 1;
        r->skip_first = true;
        *out = r;
        return PC_OK;
    }
    /* Mid-file: find the first '\n' at or after start-1 with even quote parity from the
     * start of the file; the record after it is our first one. */
    r->rb.file_off = seg->start - 1;
    r->rb.line = seg->line_at_start; /* for a read error's message; set exactly below */
    size_t got = 0;
    if (st == PC_OK) st = readbuf_fill(&r->rb, &got, "record", err, errlen);
    if (st == PC_OK && got == 0) r->done = true; /* the file shrank; nothing to read */
    if (st == PC_OK && got > 0) {
        int64_t quotes = seg->in_quotes_at_start ^ (r->rb.buf[0] == '"');
        int64_t nls = 0;
        size_t rel = 0;
        scan_stop stop;
        r->rb.line = seg->line_at_start - (r->rb.buf[0] == '\n');
        st = scan_to_end(r, false, &rel, &quotes, &nls, &stop, err, errlen);
        if (st == PC_OK) {
            r->rb.pos += rel;
            r->rb.line += nls;
            if (stop != SCAN_NEWLINE) r->done = true;
        }
    }
    if (st != PC_OK) {
        csv_reader_close(r);
        return st;
    }
    *out = r;
    return PC_OK;
}

pc_status csv_reader_open(const char *path, const split_segment *seg, csv_reader **out,
                          char *err, size_t errlen)
{
    return csv_reader_open_opts(path, seg, NULL, out, err, errlen);
}

pc_status csv_reader_set_float_columns(csv_reader *r, const bool *is_float, int64_t ncols,
                                       char *err, size_t errlen)
{
    /* run k holds float columns when k is odd: a new run starts where that changes */
    int64_t k = 0, nfloat = 0;
    for (int64_t c = 0; c < ncols; c++) {
        if (is_float[c] != (bool)(k & 1)) k++;
        nfloat += is_float[c];
    }
    int64_t nruns = k + 1, longest = 0;
    int64_t *runs = NULL;
    float *values = NULL;
    size_t *ends = NULL;
    if (nfloat > 0) {
        pc_status st = reserve_fields(r, ncols, err, errlen);
        if (st != PC_OK) return st;
        runs = calloc((size_t)nruns, sizeof *runs);
        if (runs != NULL) {
            k = 0;
            for (int64_t c = 0; c < ncols; c++) {
                if (is_float[c] != (bool)(k & 1)) k++;
                runs[k]++;
            }
            for (k = 1; k < nruns; k += 2)
                if (runs[k] > longest) longest = runs[k];
        }
        values = calloc((size_t)ncols, sizeof *values);
        ends = calloc((size_t)longest + 1, sizeof *ends);
        if (runs == NULL || values == NULL || ends == NULL) {
            free(runs);
            free(values);
            free(ends);
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (%lld float columns)",
                          r->path, (long long)ncols);
        }
    }
    free(r->runs);
    free(r->values);
    free(r->ends);
    r->runs = runs;
    r->nruns = nfloat > 0 ? nruns : 0;
    r->values = values;
    r->ends = ends;
    r->float_ncols = nfloat > 0 ? ncols : 0;
    return PC_OK;
}

void csv_reader_close(csv_reader *r)
{
    if (r == NULL) return;
    source_close(r->rb.src);
    free(r->path);
    free(r->rb.buf);
    free(r->fbuf);
    free(r->fields);
    free(r->lens);
    free(r->runs);
    free(r->values);
    free(r->ends);
    free(r);
}

pc_status csv_read_header(const char *path, csv_header *out, char *err, size_t errlen)
{
    out->ncols = 0;
    out->names = NULL;
    split_segment seg = {.file = 0, .start = 0, .end = 1, .line_at_start = 1};
    csv_reader *r;
    pc_status st = csv_reader_open(path, &seg, &r, err, errlen);
    if (st != PC_OK) return st;
    r->skip_first = false;
    r->keep_blank = true;
    r->strip_bom = true;
    csv_record rec;
    bool eof;
    st = csv_reader_next(r, &rec, &eof, err, errlen);
    if (st == PC_OK && !eof && rec.raw_len == 0)
        st = pc_err(err, errlen, PC_ERR_DATA, "%s:1: no header (the first line is empty)", path);
    if (st == PC_OK && !eof) {
        char **names = calloc((size_t)rec.nfields, sizeof *names);
        for (int64_t i = 0; names != NULL && i < rec.nfields; i++) {
            names[i] = malloc(rec.lens[i] + 1);
            if (names[i] == NULL) {
                csv_header tmp = {i, names};
                csv_header_free(&tmp);
                names = NULL;
                break;
            }
            memcpy(names[i], rec.fields[i], rec.lens[i] + 1);
        }
        if (names == NULL) {
            st = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (header)", path);
        } else {
            out->ncols = rec.nfields;
            out->names = names;
        }
    }
    csv_reader_close(r);
    return st;
}

void csv_header_free(csv_header *h)
{
    if (h == NULL) return;
    for (int64_t i = 0; i < h->ncols; i++) free(h->names[i]);
    free(h->names);
    h->ncols = 0;
    h->names = NULL;
}

int64_t csv_header_find(const csv_header *h, const char *name)
{
    for (int64_t i = 0; i < h->ncols; i++)
        if (strcmp(h->names[i], name) == 0) return i;
    return -1;
}
