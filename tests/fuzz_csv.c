/* libFuzzer harness over the CSV reader (mapper/csv.h), the read buffer and sources under it
 * (plain and gzip, mapper/source.h), the split plan's cuts (mapper/split.h) and the number
 * parser (mapper/numparse.h).  `make check-fuzz-csv` runs it; `make check` replays
 * tests/corpus/csv/ through it (tests/test_fuzz_replay.c).
 *
 * The input is a CSV file's bytes.  A naive twin (below: a character-at-a-time state
 * machine written from csv.h's rules, not from csv.c) lists the records the file holds —
 * each good one with its fields, each malformed one with its reason — and the reader must
 * return exactly that list, record by record (line, offset, raw bytes, fields, message):
 *   - read whole with the default buffer, and with a buffer of a few bytes (records straddle
 *     refills and outgrow the buffer);
 *   - read segment by segment after the split plan cut the file into many small segments,
 *     and into three parts at arbitrary offsets (every record read once, whatever the cuts);
 *   - read from a gzip copy of the file (one or two members);
 *   - csv_read_header against the twin's header.
 * The longest record accepted (max_record) is picked by the last byte: 16, 100, 1000 bytes
 * or the default.  Every field of every good record goes through parse_float against its
 * twin (strtof on the same text, fuzz_util.h), and so does the whole input.
 * Where numparse.h has parse_float_fields (PARSE_FLOAT_PADDING defined), the fast path of
 * numeric CSVs is checked too: a read with csv_reader_set_float_columns must give the same
 * records, with values exactly when csv.h says and each equal to parse_float's; and
 * parse_float_fields on every record's raw bytes (asked for fewer, as many and more fields
 * than it has, with different padding bytes) against parse_float field by field.
 * An input that starts with gzip's magic bytes is also read as a .gz file as it is: if zlib
 * inflates it cleanly the records must be the twin's of the inflated bytes, otherwise the
 * reader must end with an I/O error (never rows silently lost). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/csv.h"
#include "tests/fuzz_util.h"

/* ---- the twin ---- */

typedef enum tw_kind { TW_OK, TW_BAD, TW_UNTERMINATED, TW_LONG } tw_kind;

typedef struct tw_rec {
    tw_kind kind;
    int64_t line, offset;
    size_t raw_len;   /* without "\n" or "\r\n" */
    size_t rel;       /* with the terminator: what max_record limits */
    int64_t nfields;  /* TW_OK */
    size_t fields_at; /* TW_OK: where its fields start in twin.fields */
    char why[64];     /* TW_BAD: "reason (field N)" */
} tw_rec;

typedef struct twin {
    tw_rec *rec;
    size_t n, cap;
    fuzz_buf fields; /* per field: its length (size_t) then its bytes */
    /* csv_read_header: 0 = empty file (no columns), 1 = a header, 2 = an error */
    int header;
    int64_t header_nfields;
    size_t header_at;
} twin;

static void tw_field(fuzz_buf *b, const char *p, size_t n)
{
    fuzz_buf_add(b, &n, sizeof n);
    fuzz_buf_add(b, p, n);
}

/* Splits p[0, n) into fields (appended to out) by csv.h's rules, one byte at a time. */
static bool tw_fields(const char *p, size_t n, fuzz_buf *out, int64_t *nf, char *why,
                      size_t whylen)
{
    enum { START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } state = START;
    fuzz_buf f = {0};
    fuzz_buf_add(&f, "", 0);
    *nf = 0;
    const char *reason = NULL;
    for (size_t i = 0; i <= n && reason == NULL; i++) {
        bool end = i == n;
        char c = end ? '\0' : p[i];
        switch (state) {
        case START:
        case UNQUOTED:
            if (end || c == ',') {
                tw_field(out, f.p, f.len);
                (*nf)++;
                f.len = 0;
                state = START;
            } else if (c == '"') {
                if (state == UNQUOTED) reason = "quote inside unquoted field";
                state = QUOTED;
            } else {
                fuzz_buf_add(&f, &c, 1);
                state = UNQUOTED;
            }
            break;
        case QUOTED:
            if (end) reason = "unterminated quoted field";
            else if (c == '"') state = QUOTE_IN_QUOTED;
            else fuzz_buf_add(&f, &c, 1);
            break;
        case QUOTE_IN_QUOTED:
            if (end || c == ',') {
                tw_field(out, f.p, f.len);
                (*nf)++;
                f.len = 0;
                state = START;
            } else if (c == '"') {
                fuzz_buf_add(&f, &c, 1);
                state = QUOTED;
            } else {
                reason = "text after closing quote";
            }
            break;
        }
    }
    fuzz_buf_free(&f);
    if (reason != NULL) snprintf(why, whylen, "%s (field %lld)", reason, (long long)*nf + 1);
    return reason == NULL;
}

/* The record starting at data[pos]: its length with the terminator (*rel), without it and
 * a CR before it (*n), whether a '\n' ended it, its '"' and '\n' counts. */
static void tw_scan(const uint8_t *data, size_t size, size_t pos, size_t *rel, size_t *n,
                    bool *newline, int64_t *quotes, int64_t *nls)
{
    *quotes = *nls = 0;
    size_t i = pos;
    *newline = false;
    for (; i < size; i++) {
        if (data[i] == '"') (*quotes)++;
        if (data[i] == '\n') {
            (*nls)++;
            if ((*quotes & 1) == 0) {
                *newline = true;
                i++;
                break;
            }
        }
    }
    *rel = i - pos;
    *n = *rel - *newline;
    if (*n > 0 && data[pos + *n - 1] == '\r') (*n)--;
}

static void twin_build(twin *t, const uint8_t *data, size_t size, size_t max_record)
{
    memset(t, 0, sizeof *t);
    fuzz_buf_add(&t->fields, "", 0);
    int64_t line = 1;
    for (size_t pos = 0; pos < size;) {
        size_t rel, n;
        bool newline;
        int64_t quotes, nls;
        tw_scan(data, size, pos, &rel, &n, &newline, &quotes, &nls);
        const char *raw = (const char *)data + pos;
        if (pos == 0) {
            /* csv_read_header: the first record, BOM dropped, an empty one an error. */
            size_t hn = n;
            const char *h = raw;
            if (hn >= 3 && memcmp(h, "\xEF\xBB\xBF", 3) == 0) h += 3, hn -= 3;
            char why[64];
            t->header = 2;
            t->header_at = t->fields.len;
            if (!(!newline && (quotes & 1)) && hn > 0 &&
                tw_fields(h, hn, &t->fields, &t->header_nfields, why, sizeof why))
                t->header = 1;
        } else {
            tw_rec r = {.line = line, .offset = (int64_t)pos, .raw_len = n, .rel = rel};
            bool keep = true;
            if (!newline && (quotes & 1)) {
                r.kind = TW_UNTERMINATED;
            } else if (rel > max_record) {
                r.kind = TW_LONG;
            } else if (n == 0) {
                keep = false; /* an empty line is not a record */
            } else {
                r.fields_at = t->fields.len;
                size_t mark = t->fields.len;
                r.kind = tw_fields(raw, n, &t->fields, &r.nfields, r.why, sizeof r.why)
                             ? TW_OK
                             : TW_BAD;
                if (r.kind == TW_BAD) t->fields.len = mark;
            }
            if (keep) {
                if (t->n == t->cap) {
                    t->cap = t->cap ? 2 * t->cap : 64;
                    t->rec = realloc(t->rec, t->cap * sizeof *t->rec);
                    if (t->rec == NULL) exit(1);
                }
                t->rec[t->n++] = r;
            }
        }
        line += nls;
        pos += rel;
    }
}

static void twin_free(twin *t)
{
    free(t->rec);
    fuzz_buf_free(&t->fields);
}

/* ---- the reader against the twin ---- */

typedef struct run {
    const uint8_t *data; /* the uncompressed bytes */
    size_t size;
    const twin *tw;
    size_t next; /* the twin's record the reader must return next */
    size_t max_record;
    const bool *is_float; /* csv_reader_set_float_columns for ncols columns, or NULL */
    int64_t ncols;
} run;

/* Checks one record or error the reader returned against the twin's next one. */
static void check_record(run *r, const char *path, pc_status st, const csv_record *rec,
                         const char *err)
{
    FUZZ_REQUIRE(r->next < r->tw->n); /* no record the twin does not have */
    const tw_rec *t = &r->tw->rec[r->next++];
    FUZZ_REQUIRE(rec->line == t->line && rec->offset == t->offset);
    if (rec->raw != NULL) {
        FUZZ_REQUIRE(rec->raw_len == t->raw_len);
        FUZZ_REQUIRE(memcmp(rec->raw, r->data + t->offset, t->raw_len) == 0);
    }
    if (st == PC_OK) {
        FUZZ_REQUIRE(t->kind == TW_OK);
        FUZZ_REQUIRE(rec->raw != NULL);
        FUZZ_REQUIRE(rec->nfields == t->nfields && rec->nfields >= 1);
        const char *f = r->tw->fields.p + t->fields_at;
        /* with float columns: values exactly when the record has ncols fields, no '"', and
         * every float column parses (csv.h), each then parse_float's; with none of the
         * columns a float one, never (csv.c: "not asked") */
        bool any_float = false;
        for (int64_t i = 0; r->is_float != NULL && i < r->ncols; i++) any_float |= r->is_float[i];
        bool parsed = any_float && rec->nfields == r->ncols &&
                      memchr(r->data + t->offset, '"', t->raw_len) == NULL;
        float want[64];
        for (int64_t i = 0; i < rec->nfields; i++) {
            size_t len;
            memcpy(&len, f, sizeof len);
            f += sizeof len;
            FUZZ_REQUIRE(rec->lens[i] == len);
            FUZZ_REQUIRE(memcmp(rec->fields[i], f, len) == 0 && rec->fields[i][len] == '\0');
            if (parsed && r->is_float[i]) parsed = fuzz_float_twin(f, len, &want[i]);
            f += len;
        }
#ifdef PARSE_FLOAT_PADDING
        if (r->is_float != NULL) {
            FUZZ_REQUIRE((rec->values != NULL) == parsed);
            for (int64_t i = 0; parsed && i < rec->nfields; i++)
                if (r->is_float[i]) FUZZ_REQUIRE(memcmp(&rec->values[i], &want[i], 4) == 0);
        }
#else
        (void)parsed;
#endif
        return;
    }
    FUZZ_REQUIRE(st == PC_ERR_DATA && t->kind != TW_OK);
    FUZZ_REQUIRE(rec->nfields == 0);
    char prefix[PC_ERRLEN];
    int k = snprintf(prefix, sizeof prefix, "%s:%lld: ", path, (long long)t->line);
    FUZZ_REQUIRE(strncmp(err, prefix, (size_t)k) == 0);
    const char *why = err + k;
    char toolong[64];
    snprintf(toolong, sizeof toolong, "record longer than %zu bytes", r->max_record);
    bool is_long = strcmp(why, toolong) == 0;
    /* Only a record too long to buffer has no raw bytes. */
    FUZZ_REQUIRE(rec->raw != NULL || (is_long && t->rel > r->max_record));
    switch (t->kind) {
    case TW_BAD: FUZZ_REQUIRE(strcmp(why, t->why) == 0); break;
    case TW_LONG: FUZZ_REQUIRE(is_long); break;
    case TW_UNTERMINATED:
        /* Unterminated at the end of the file and also too long: a reader that had to give up
         * buffering it says "too long", one that holds it says "unterminated". */
        FUZZ_REQUIRE(strcmp(why, "unterminated quoted field") == 0 ||
                     (is_long && t->rel > r->max_record));
        break;
    default: FUZZ_REQUIRE(false);
    }
}

/* Reads one segment of path to its end; every record must be the twin's next one, and after
 * it every twin record that starts before seg->end must have been read. */
static void read_segment(run *r, const char *path, const split_segment *seg,
                         const csv_reader_options *opts, bool compressed)
{
    char err[PC_ERRLEN];
    csv_reader *rd = NULL;
    pc_status st = csv_reader_open_opts(path, seg, opts, &rd, err, sizeof err);
    FUZZ_REQUIRE(st == PC_OK && rd != NULL);
#ifdef PARSE_FLOAT_PADDING
    if (r->is_float != NULL)
        FUZZ_REQUIRE(csv_reader_set_float_columns(rd, r->is_float, r->ncols, err, sizeof err) ==
                     PC_OK);
#endif
    for (size_t calls = 0;; calls++) {
        FUZZ_REQUIRE(calls <= r->tw->n + 1);
        csv_record rec;
        bool eof = true;
        err[0] = '\0';
        st = csv_reader_next(rd, &rec, &eof, err, sizeof err);
        if (st == PC_OK && eof) break;
        FUZZ_REQUIRE(!eof);
        FUZZ_REQUIRE(rec.offset >= seg->start && (compressed || rec.offset < seg->end));
        check_record(r, path, st, &rec, err);
    }
    bool eof = false;
    csv_record rec;
    FUZZ_REQUIRE(csv_reader_next(rd, &rec, &eof, err, sizeof err) == PC_OK && eof);
    csv_reader_close(rd);
    int64_t end = compressed ? INT64_MAX : seg->end;
    FUZZ_REQUIRE(r->next == r->tw->n || r->tw->rec[r->next].offset >= end);
}

static void read_whole(const uint8_t *data, size_t size, const twin *tw, const char *path,
                       size_t max_record, size_t buffer, int64_t file_size, bool compressed,
                       const bool *is_float, int64_t ncols)
{
    run r = {.data = data, .size = size, .tw = tw, .max_record = max_record,
             .is_float = is_float, .ncols = ncols};
    split_segment seg = {.file = 0, .start = 0, .end = file_size, .line_at_start = 1};
    csv_reader_options opts = {.buffer_size = buffer, .max_record = max_record};
    read_segment(&r, path, &seg, &opts, compressed);
    FUZZ_REQUIRE(r.next == tw->n);
}

/* Cuts the file with opts and reads the segments one after the other. */
static void read_split(const uint8_t *data, size_t size, const twin *tw, const char *path,
                       size_t max_record, size_t buffer, const split_options *sopts)
{
    split_plan *p = fuzz_plan(path, sopts);
    FUZZ_REQUIRE(p != NULL);
    int64_t nseg = split_plan_segment_count(p);
    FUZZ_REQUIRE((nseg == 0) == (size == 0));
    run r = {.data = data, .size = size, .tw = tw, .max_record = max_record};
    csv_reader_options opts = {.buffer_size = buffer, .max_record = max_record};
    const split_segment *seg = split_plan_segments(p);
    int64_t at = 0;
    for (int64_t i = 0; i < nseg; i++) {
        FUZZ_REQUIRE(seg[i].start == at && seg[i].end > seg[i].start); /* they tile the file */
        at = seg[i].end;
        read_segment(&r, path, &seg[i], &opts, false);
    }
    FUZZ_REQUIRE(at == (int64_t)size && r.next == tw->n);
    split_plan_free(p);
}

static void check_header(const char *path, const twin *tw)
{
    csv_header h = {.ncols = 99};
    char err[PC_ERRLEN];
    pc_status st = csv_read_header(path, &h, err, sizeof err);
    if (tw->header == 0 || tw->header == 1) {
        FUZZ_REQUIRE(st == PC_OK);
        int64_t want = tw->header == 0 ? 0 : tw->header_nfields;
        FUZZ_REQUIRE(h.ncols == want);
        const char *f = tw->fields.p + tw->header_at;
        for (int64_t i = 0; i < h.ncols; i++) {
            size_t len;
            memcpy(&len, f, sizeof len);
            f += sizeof len;
            /* names are C strings: a NUL inside a name ends it */
            FUZZ_REQUIRE(memcmp(h.names[i], f, len) == 0 && h.names[i][len] == '\0');
            f += len;
            FUZZ_REQUIRE(csv_header_find(&h, h.names[i]) <= i);
        }
    } else {
        FUZZ_REQUIRE(st == PC_ERR_DATA && h.ncols == 0 && h.names == NULL);
        FUZZ_REQUIRE(strncmp(err, path, strlen(path)) == 0 && strchr(err, '\n') == NULL);
    }
    csv_header_free(&h);
    FUZZ_REQUIRE(h.ncols == 0 && h.names == NULL);
}

/* A clean inflate of every member of a gzip file (source.h's rule: only whole members, one
 * after the other), up to cap bytes out. 1 = clean, 0 = damaged, -1 = more than cap. */
static int gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, size_t cap)
{
    uint8_t *o = malloc(cap + 1);
    if (o == NULL) exit(1);
    *out = o;
    *outlen = 0;
    size_t pos = 0;
    while (pos < n) {
        z_stream z = {0};
        if (inflateInit2(&z, 15 + 16) != Z_OK) exit(1);
        z.next_in = (unsigned char *)(uintptr_t)(in + pos);
        z.avail_in = (uInt)(n - pos);
        z.next_out = o + *outlen;
        z.avail_out = (uInt)(cap + 1 - *outlen);
        int rc = inflate(&z, Z_FINISH);
        *outlen = cap + 1 - z.avail_out;
        pos = n - z.avail_in;
        inflateEnd(&z);
        if (*outlen > cap) return -1;
        if (rc != Z_STREAM_END) return 0;
    }
    return 1;
}

/* The input read as a .gz file as it is. */
static void read_raw_gzip(const char *dir, const uint8_t *data, size_t size)
{
    char path[PATH_MAX];
    fuzz_path(path, sizeof path, dir, "raw.csv.gz");
    fuzz_write_file(path, data, size);
    uint8_t *plain;
    size_t plen;
    int clean = gunzip(data, size, &plain, &plen, 256 << 10);
    if (clean >= 0) {
        twin tw;
        twin_build(&tw, plain, plen, 1000);
        run r = {.data = plain, .size = plen, .tw = &tw, .max_record = 1000};
        split_segment seg = {.file = 0, .start = 0, .end = (int64_t)size, .line_at_start = 1};
        csv_reader_options opts = {.buffer_size = 64, .max_record = 1000};
        char err[PC_ERRLEN];
        csv_reader *rd = NULL;
        FUZZ_REQUIRE(csv_reader_open_opts(path, &seg, &opts, &rd, err, sizeof err) == PC_OK);
        pc_status st = PC_OK;
        for (size_t calls = 0;; calls++) {
            FUZZ_REQUIRE(calls <= tw.n + 1);
            csv_record rec;
            bool eof = true;
            st = csv_reader_next(rd, &rec, &eof, err, sizeof err);
            if (st == PC_ERR_IO) break;
            if (st == PC_OK && eof) break;
            /* damaged data may inflate to bytes the twin never saw: only a clean file's
             * records are compared */
            if (clean == 1) check_record(&r, path, st, &rec, err);
            else FUZZ_REQUIRE(st == PC_OK || st == PC_ERR_DATA);
        }
        if (clean == 1) {
            FUZZ_REQUIRE(st == PC_OK && r.next == tw.n);
        } else {
            /* never a clean end: the damage is an error, and it sticks */
            FUZZ_REQUIRE(st == PC_ERR_IO);
            FUZZ_REQUIRE(strncmp(err, path, strlen(path)) == 0);
            csv_record rec;
            bool eof;
            FUZZ_REQUIRE(csv_reader_next(rd, &rec, &eof, err, sizeof err) == PC_ERR_IO);
        }
        csv_reader_close(rd);
        twin_free(&tw);
    }
    free(plain);
    unlink(path);
}

#ifdef PARSE_FLOAT_PADDING
/* parse_float_fields (numparse.h) on s[0, n) for nf fields, against parse_float on each
 * field; the padding after s holds `pad` (its value must not matter). */
static void float_fields_once(const char *raw, size_t n, size_t nf, char pad)
{
    char *s = malloc(n + PARSE_FLOAT_PADDING); /* exactly: reading past the padding is ASan's */
    float *out = malloc(nf * sizeof *out);
    size_t *ends = malloc(nf * sizeof *ends);
    FUZZ_REQUIRE(s != NULL && out != NULL && ends != NULL);
    memcpy(s, raw, n);
    memset(s + n, pad, PARSE_FLOAT_PADDING);
    char err[PC_ERRLEN];
    err[0] = '\0';
    size_t k = parse_float_fields(s, n, ',', nf, out, ends, err, sizeof err);
    size_t start = 0;
    for (size_t i = 0;; i++) {
        const char *c = memchr(s + start, ',', n - start);
        size_t end = c != NULL ? (size_t)(c - s) : n;
        float want;
        if (!fuzz_float_twin(s + start, end - start, &want)) {
            /* field i is not a number: k == i, with parse_float's message */
            FUZZ_REQUIRE(k == i);
            char why[PC_ERRLEN];
            float unused;
            FUZZ_REQUIRE(parse_float(s + start, end - start, &unused, why, sizeof why) ==
                         PC_ERR_DATA);
            FUZZ_REQUIRE(strcmp(err, why) == 0);
            break;
        }
        FUZZ_REQUIRE(k > i && ends[i] == end && memcmp(&out[i], &want, 4) == 0);
        if (i + 1 == nf) { /* all asked for */
            FUZZ_REQUIRE(k == nf);
            break;
        }
        if (end == n) { /* s held only i + 1 fields */
            FUZZ_REQUIRE(k == i + 1);
            break;
        }
        start = end + 1;
    }
    free(s);
    free(out);
    free(ends);
}

/* Fewer fields than the record has, exactly as many, and more; two paddings. */
static void check_float_fields(const char *raw, size_t n, uint64_t h)
{
    size_t nf = 1;
    for (size_t i = 0; i < n; i++) nf += raw[i] == ',';
    float_fields_once(raw, n, nf, (h >> 6) & 1 ? '7' : ',');
    float_fields_once(raw, n, nf + 1, '\0');
    if (nf > 1) float_fields_once(raw, n, nf - 1, '.');
}
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_tmpdir("csv");
    char path[PATH_MAX], gz[PATH_MAX];
    fuzz_path(path, sizeof path, dir, "in.csv");
    fuzz_path(gz, sizeof gz, dir, "in.csv.gz");
    fuzz_write_file(path, data, size);

    static const size_t max_records[4] = {16, 100, CSV_DEFAULT_MAX_RECORD, 1000};
    size_t max_record = max_records[size > 0 ? data[size - 1] % 4 : 2];
    uint64_t h = fuzz_hash(data, size);
    twin tw;
    twin_build(&tw, data, size, max_record);

    read_whole(data, size, &tw, path, max_record, 0, (int64_t)size, false, NULL, 0);
    read_whole(data, size, &tw, path, max_record, 1 + h % 7, (int64_t)size, false, NULL, 0);
#ifdef PARSE_FLOAT_PADDING
    /* The fast path of numeric CSVs: float columns (a pattern from the hash) as many as the
     * first good record has fields, parsed as the records are split. */
    bool is_float[64];
    int64_t ncols = 1 + (int64_t)(h % 4);
    for (size_t i = 0; i < tw.n; i++)
        if (tw.rec[i].kind == TW_OK) {
            ncols = tw.rec[i].nfields < 64 ? tw.rec[i].nfields : 64;
            break;
        }
    for (int64_t c = 0; c < ncols; c++)
        is_float[c] = c == 0 ? (h >> 62) & 1 : ((h >> c) & 3) != 0; /* the id: mostly not */
    read_whole(data, size, &tw, path, max_record, (h >> 5) & 1 ? 0 : 3, (int64_t)size, false,
               is_float, ncols);
    for (size_t i = 0; i < tw.n; i++)
        if (tw.rec[i].raw_len > 0)
            check_float_fields((const char *)data + tw.rec[i].offset, tw.rec[i].raw_len, h);
#endif

    /* Small segments everywhere (at most about 64 of them), then three parts cut anywhere. */
    int64_t split = 1 + (int64_t)((h >> 8) % 31);
    if (split < (int64_t)size / 64 + 1) split = (int64_t)size / 64 + 1;
    split_options a = {.nparts = 1, .split_bytes = split};
    read_split(data, size, &tw, path, max_record, 8 + (h >> 16) % 57, &a);
    int64_t cuts[2];
    cuts[0] = size > 0 ? (int64_t)((h >> 24) % (size + 1)) : 0;
    cuts[1] = cuts[0] + (size > 0 ? (int64_t)((h >> 40) % (size - (size_t)cuts[0] + 1)) : 0);
    split_options b = {.nparts = 3, .split_bytes = 0, .cuts = cuts};
    read_split(data, size, &tw, path, max_record, 64, &b);

    unsigned char *z;
    size_t zlen;
    if (fuzz_gzip(data, size, size > 0 ? (size_t)(h >> 32) % size : 0, (int)(h % 10), &z,
                  &zlen)) {
        fuzz_write_file(gz, z, zlen);
        free(z);
        read_whole(data, size, &tw, gz, max_record, (h >> 4) & 1 ? 0 : 5, (int64_t)zlen, true,
                   NULL, 0);
        unlink(gz);
    }
    check_header(path, &tw);

    /* The number parser on every field, and on the whole input. */
    for (size_t i = 0; i < tw.n; i++) {
        if (tw.rec[i].kind != TW_OK) continue;
        const char *f = tw.fields.p + tw.rec[i].fields_at;
        for (int64_t k = 0; k < tw.rec[i].nfields; k++) {
            size_t len;
            memcpy(&len, f, sizeof len);
            f += sizeof len;
            float v;
            fuzz_check_float(f, len, &v);
            f += len;
        }
    }
    float v;
    fuzz_check_float((const char *)data, size, &v);

    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) read_raw_gzip(dir, data, size);
    twin_free(&tw);
    unlink(path);
    return 0;
}
