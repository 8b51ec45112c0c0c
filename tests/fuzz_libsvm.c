/* libFuzzer harness over the LIBSVM reader (mapper/libsvm.h), with the read buffer, sources
 * (plain and gzip) and split plan under it, and parse_float for the values.
 * `make check-fuzz-libsvm` runs it; `make check` replays tests/corpus/libsvm/ through it.
 *
 * The input is a LIBSVM file's bytes.  A naive twin written from libsvm.h's rules lists the
 * rows the file holds — each good one with its ID, indices and values, each malformed one
 * with its reason and the pair it quotes — and the reader must return exactly that list:
 * read whole with the default buffer and with one of a few bytes, segment by segment after
 * the split plan cut the file into small segments and into three parts at arbitrary
 * offsets, and from a gzip copy (one or two members).  The options come from the input:
 * one_based and the width (1, 3, 10, 1000 or 2^31) from a hash of the bytes, the longest
 * line (16, 100, 1000 bytes or the default) from the last byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/libsvm.h"
#include "tests/fuzz_util.h"

/* ---- the twin ---- */

typedef enum tw_kind { TW_OK, TW_BAD, TW_LONG } tw_kind;

typedef struct tw_row {
    tw_kind kind;
    int64_t line, offset;
    size_t raw_len, rel;
    size_t id_off, id_len; /* the ID as bytes of the file; id_len 0: none read */
    int64_t nnz;
    size_t pairs_at;       /* TW_OK: nnz (int32 index, float value) pairs in twin.pairs */
    char why[2 * PC_ERRLEN]; /* TW_BAD: the message after "PATH:LINE: " (may be longer than
                                the reader's error buffer, which cuts it) */
} tw_row;

typedef struct twin {
    tw_row *row;
    size_t n, cap;
    fuzz_buf pairs;
} twin;

static bool tw_ws(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* "WHAT in 'PAIR'", the pair cut at 40 bytes (and, being printed with %s, at a NUL). */
static void tw_pair_error(tw_row *r, const char *what, const uint8_t *t, size_t n)
{
    int shown = n > 40 ? 40 : (int)n;
    int k = snprintf(r->why, sizeof r->why, "%s in '%.*s%s'", what, shown, (const char *)t,
                     n > 40 ? "..." : "");
    FUZZ_REQUIRE(k > 0 && (size_t)k < sizeof r->why);
    r->kind = TW_BAD;
}

/* Parses line p[0, n) at file offset `offset`; false for a line without an ID. */
static bool tw_parse(tw_row *r, fuzz_buf *pairs, const uint8_t *p, size_t n, bool one_based,
                     int64_t width)
{
    size_t i = 0;
    if (r->offset == 0 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) i = 3;
    for (size_t k = i; k < n; k++)
        if (p[k] == '#') {
            n = k;
            break;
        }
    while (i < n && tw_ws(p[i])) i++;
    if (i == n) return false;
    r->id_off = (size_t)r->offset + i;
    while (i < n && !tw_ws(p[i])) i++, r->id_len++;
    r->kind = TW_OK;
    r->pairs_at = pairs->len;
    int64_t prev = -1, base = one_based ? 1 : 0;
    for (;;) {
        while (i < n && tw_ws(p[i])) i++;
        if (i == n) break;
        size_t t = i;
        while (i < n && !tw_ws(p[i])) i++;
        size_t tn = i - t;
        const uint8_t *tok = p + t, *colon = memchr(tok, ':', tn);
        if (colon == NULL) {
            tw_pair_error(r, "no ':'", tok, tn);
            break;
        }
        size_t il = (size_t)(colon - tok);
        bool neg = il > 0 && tok[0] == '-', digits = il > (size_t)neg;
        uint64_t v = 0;
        for (size_t k = neg; k < il; k++) {
            if (tok[k] < '0' || tok[k] > '9') digits = false;
            else if (v < ((uint64_t)1 << 40)) v = 10 * v + (tok[k] - '0');
        }
        char what[PC_ERRLEN + 16];
        if (!digits) {
            tw_pair_error(r, "bad index (not an integer)", tok, tn);
            break;
        }
        if (neg) {
            tw_pair_error(r, "bad index (negative)", tok, tn);
            break;
        }
        if (one_based && v == 0) {
            tw_pair_error(r, "bad index (0 in a 1-based file)", tok, tn);
            break;
        }
        if (v < (uint64_t)base || v - (uint64_t)base >= (uint64_t)width) {
            snprintf(what, sizeof what, "bad index (the model takes %lld features: at most %lld)",
                     (long long)width, (long long)(width - 1 + base));
            tw_pair_error(r, what, tok, tn);
            break;
        }
        int64_t ix = (int64_t)v - base;
        if (ix <= prev) {
            snprintf(what, sizeof what, "%s index (after %lld): indices must be strictly ascending",
                     ix == prev ? "duplicate" : "descending", (long long)(prev + base));
            tw_pair_error(r, what, tok, tn);
            break;
        }
        float f;
        if (!fuzz_check_float((const char *)colon + 1, tn - il - 1, &f)) {
            char why[PC_ERRLEN];
            float unused;
            parse_float((const char *)colon + 1, tn - il - 1, &unused, why, sizeof why);
            snprintf(what, sizeof what, "bad value (%s)", why);
            tw_pair_error(r, what, tok, tn);
            break;
        }
        int32_t i32 = (int32_t)ix;
        fuzz_buf_add(pairs, &i32, sizeof i32);
        fuzz_buf_add(pairs, &f, sizeof f);
        r->nnz++;
        prev = ix;
    }
    if (r->kind == TW_BAD) {
        pairs->len = r->pairs_at;
        r->nnz = 0;
    }
    return true;
}

static void twin_build(twin *t, const uint8_t *data, size_t size, size_t max_record,
                       bool one_based, int64_t width)
{
    memset(t, 0, sizeof *t);
    fuzz_buf_add(&t->pairs, "", 0);
    int64_t line = 1;
    for (size_t pos = 0; pos < size;) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t rel = nl != NULL ? (size_t)(nl - data) + 1 - pos : size - pos;
        size_t n = rel - (nl != NULL);
        if (n > 0 && data[pos + n - 1] == '\r') n--;
        tw_row r = {.line = line, .offset = (int64_t)pos, .raw_len = n, .rel = rel};
        bool keep = true;
        if (rel > max_record) r.kind = TW_LONG;
        else keep = tw_parse(&r, &t->pairs, data + pos, n, one_based, width);
        if (keep) {
            if (t->n == t->cap) {
                t->cap = t->cap ? 2 * t->cap : 64;
                t->row = realloc(t->row, t->cap * sizeof *t->row);
                if (t->row == NULL) exit(1);
            }
            t->row[t->n++] = r;
        }
        line += nl != NULL;
        pos += rel;
    }
}

/* ---- the reader against the twin ---- */

typedef struct run {
    const uint8_t *data;
    const twin *tw;
    size_t next;
    size_t max_record;
} run;

static void check_row(run *r, const char *path, pc_status st, const libsvm_record *rec,
                      const char *err)
{
    FUZZ_REQUIRE(r->next < r->tw->n);
    const tw_row *t = &r->tw->row[r->next++];
    FUZZ_REQUIRE(rec->line == t->line && rec->offset == t->offset);
    if (rec->raw != NULL)
        FUZZ_REQUIRE(rec->raw_len == t->raw_len &&
                     memcmp(rec->raw, r->data + t->offset, t->raw_len) == 0);
    else
        FUZZ_REQUIRE(st == PC_ERR_DATA && t->kind == TW_LONG);
    if (t->id_len > 0) {
        FUZZ_REQUIRE(rec->id != NULL && rec->id_len == t->id_len);
        FUZZ_REQUIRE(memcmp(rec->id, r->data + t->id_off, t->id_len) == 0);
        FUZZ_REQUIRE(rec->id[rec->id_len] == '\0');
    } else {
        FUZZ_REQUIRE(rec->id == NULL && rec->id_len == 0);
    }
    if (st == PC_OK) {
        FUZZ_REQUIRE(t->kind == TW_OK && rec->nnz == t->nnz);
        const char *p = r->tw->pairs.p + t->pairs_at;
        for (int64_t k = 0; k < rec->nnz; k++) {
            int32_t ix;
            float v;
            memcpy(&ix, p, sizeof ix);
            memcpy(&v, p + sizeof ix, sizeof v);
            p += sizeof ix + sizeof v;
            FUZZ_REQUIRE(rec->idx[k] == ix && memcmp(&rec->vals[k], &v, sizeof v) == 0);
        }
        return;
    }
    FUZZ_REQUIRE(st == PC_ERR_DATA && t->kind != TW_OK && rec->nnz == 0);
    char prefix[PC_ERRLEN];
    int k = snprintf(prefix, sizeof prefix, "%s:%lld: ", path, (long long)t->line);
    FUZZ_REQUIRE(strncmp(err, prefix, (size_t)k) == 0);
    if (t->kind == TW_LONG) {
        char want[64];
        snprintf(want, sizeof want, "line longer than %zu bytes", r->max_record);
        FUZZ_REQUIRE(strcmp(err + k, want) == 0);
    } else {
        /* the message may be cut to the error buffer */
        FUZZ_REQUIRE(strncmp(err + k, t->why, PC_ERRLEN - 1 - (size_t)k) == 0);
    }
}

static void read_segment(run *r, const char *path, const split_segment *seg,
                         const libsvm_options *opts, bool compressed)
{
    char err[PC_ERRLEN];
    libsvm_reader *rd = NULL;
    pc_status st = libsvm_reader_open(path, seg, opts, &rd, err, sizeof err);
    FUZZ_REQUIRE(st == PC_OK && rd != NULL);
    for (size_t calls = 0;; calls++) {
        FUZZ_REQUIRE(calls <= r->tw->n + 1);
        libsvm_record rec;
        bool eof = true;
        err[0] = '\0';
        st = libsvm_reader_next(rd, &rec, &eof, err, sizeof err);
        if (st == PC_OK && eof) break;
        FUZZ_REQUIRE(!eof);
        FUZZ_REQUIRE(rec.offset >= seg->start && (compressed || rec.offset < seg->end));
        check_row(r, path, st, &rec, err);
    }
    libsvm_record rec;
    bool eof = false;
    FUZZ_REQUIRE(libsvm_reader_next(rd, &rec, &eof, err, sizeof err) == PC_OK && eof);
    libsvm_reader_close(rd);
    int64_t end = compressed ? INT64_MAX : seg->end;
    FUZZ_REQUIRE(r->next == r->tw->n || r->tw->row[r->next].offset >= end);
}

static void read_whole(const uint8_t *data, const twin *tw, const char *path,
                       libsvm_options opts, size_t buffer, int64_t file_size, bool compressed)
{
    run r = {.data = data, .tw = tw, .max_record = opts.max_record};
    split_segment seg = {.file = 0, .start = 0, .end = file_size, .line_at_start = 1};
    opts.buffer_size = buffer;
    read_segment(&r, path, &seg, &opts, compressed);
    FUZZ_REQUIRE(r.next == tw->n);
}

static void read_split(const uint8_t *data, size_t size, const twin *tw, const char *path,
                       libsvm_options opts, size_t buffer, const split_options *sopts)
{
    split_plan *p = fuzz_plan(path, sopts);
    FUZZ_REQUIRE(p != NULL);
    int64_t nseg = split_plan_segment_count(p);
    FUZZ_REQUIRE((nseg == 0) == (size == 0));
    run r = {.data = data, .tw = tw, .max_record = opts.max_record};
    opts.buffer_size = buffer;
    const split_segment *seg = split_plan_segments(p);
    int64_t at = 0;
    for (int64_t i = 0; i < nseg; i++) {
        FUZZ_REQUIRE(seg[i].start == at && seg[i].end > seg[i].start);
        at = seg[i].end;
        read_segment(&r, path, &seg[i], &opts, false);
    }
    FUZZ_REQUIRE(at == (int64_t)size && r.next == tw->n);
    split_plan_free(p);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_tmpdir("libsvm");
    char path[PATH_MAX], gz[PATH_MAX];
    fuzz_path(path, sizeof path, dir, "in.svm");
    fuzz_path(gz, sizeof gz, dir, "in.svm.gz");
    fuzz_write_file(path, data, size);

    static const size_t max_records[4] = {16, 100, LIBSVM_DEFAULT_MAX_RECORD, 1000};
    static const int64_t widths[5] = {1, 3, 10, 1000, (int64_t)1 << 31};
    uint64_t h = fuzz_hash(data, size);
    libsvm_options opts = {
        .one_based = (h >> 60) & 1,
        .width = widths[(h >> 56) % 5],
        .max_record = max_records[size > 0 ? data[size - 1] % 4 : 2],
    };
    twin tw;
    twin_build(&tw, data, size, opts.max_record, opts.one_based, opts.width);

    read_whole(data, &tw, path, opts, 0, (int64_t)size, false);
    read_whole(data, &tw, path, opts, 1 + h % 7, (int64_t)size, false);
    int64_t split = 1 + (int64_t)((h >> 8) % 31);
    if (split < (int64_t)size / 64 + 1) split = (int64_t)size / 64 + 1;
    split_options a = {.nparts = 1, .split_bytes = split};
    read_split(data, size, &tw, path, opts, 8 + (h >> 16) % 57, &a);
    int64_t cuts[2];
    cuts[0] = size > 0 ? (int64_t)((h >> 24) % (size + 1)) : 0;
    cuts[1] = cuts[0] + (size > 0 ? (int64_t)((h >> 40) % (size - (size_t)cuts[0] + 1)) : 0);
    split_options b = {.nparts = 3, .cuts = cuts};
    read_split(data, size, &tw, path, opts, 64, &b);

    unsigned char *z;
    size_t zlen;
    if (fuzz_gzip(data, size, size > 0 ? (size_t)(h >> 32) % size : 0, (int)(h % 10), &z,
                  &zlen)) {
        fuzz_write_file(gz, z, zlen);
        free(z);
        read_whole(data, &tw, gz, opts, (h >> 4) & 1 ? 0 : 5, (int64_t)zlen, true);
        unlink(gz);
    }

    /* Width outside [1, 2^31] is refused at open, and nothing is left open. */
    libsvm_options badw = opts;
    badw.width = (h >> 3) & 1 ? 0 : ((int64_t)1 << 31) + 1;
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)size, .line_at_start = 1};
    libsvm_reader *rd = (libsvm_reader *)&badw;
    char err[PC_ERRLEN];
    FUZZ_REQUIRE(libsvm_reader_open(path, &seg, &badw, &rd, err, sizeof err) == PC_ERR_CONFIG);
    FUZZ_REQUIRE(rd == NULL);

    free(tw.row);
    fuzz_buf_free(&tw.pairs);
    unlink(path);
    return 0;
}
