/* Unit tests of mapper/ input splitting, the CSV reader and the float parser.
 *
 * The core property (test_split_*): for any way of cutting the inputs into parts, reading
 * every part's segments and concatenating the records gives exactly what one part reads —
 * same records, same errors, same line numbers, each once. It is checked for tricky files
 * (quotes, embedded newlines and CRLFs, malformed rows, empty and header-only files) with a
 * boundary at every byte, for nparts = 1..8 and more parts than bytes, and with tiny read
 * buffers so that records straddle refills; then with bounded splits (every split size
 * from 1 byte up, several counting parts), with .gz files (written here with zlib, in
 * several gzip members) alone and mixed with plain ones (test_gz_*), and damaged .gz files
 * (truncated, corrupt, trailing bytes) that must fail with PC_ERR_IO naming file and line. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mapper/csv.h"
#include "mapper/numparse.h"
#include "mapper/source.h"
#include "mapper/split.h"
#include "tests/test_files.h"

/* ---------------------------------------------------------------- reading whole plans */

/* What the driver does over MPI, for one process: every part counts its own segments into
 * a zeroed array, the arrays are summed, the sums go back into the plan, then resolve. */
static void count_and_resolve(split_plan *p)
{
    int64_t n = split_plan_segment_count(p);
    split_segment *seg = split_plan_segments(p);
    int64_t *sum = calloc((size_t)(2 * n + 1), sizeof *sum);
    ck_assert_ptr_nonnull(sum);
    for (int part = 0; part < split_plan_part_count(p); part++) {
        int64_t *mine = calloc((size_t)(2 * n + 1), sizeof *mine);
        ck_assert_ptr_nonnull(mine);
        for (int64_t i = split_plan_part_first(p, part); i < split_plan_part_first(p, part + 1);
             i++) {
            char err[PC_ERRLEN];
            ck_assert_msg(split_count(p, &seg[i], err, sizeof err) == PC_OK, "%s", err);
            mine[2 * i] = seg[i].quotes;
            mine[2 * i + 1] = seg[i].newlines;
        }
        for (int64_t i = 0; i < 2 * n; i++) sum[i] += mine[i];
        free(mine);
    }
    for (int64_t i = 0; i < n; i++) {
        seg[i].quotes = sum[2 * i];
        seg[i].newlines = sum[2 * i + 1];
    }
    free(sum);
    split_resolve(p);
}

/* Serialises one record (or error) so that two readings can be compared as strings. */
static void add_record(sbuf *out, int file, const csv_record *rec)
{
    sb_printf(out, "f%d l%lld o%lld n%lld:", file, (long long)rec->line,
              (long long)rec->offset, (long long)rec->nfields);
    for (int64_t i = 0; i < rec->nfields; i++) {
        ck_assert_uint_eq(strlen(rec->fields[i]), rec->lens[i]);
        sb_printf(out, "[%zu]", rec->lens[i]);
        sb_add(out, rec->fields[i], rec->lens[i]);
    }
    sb_add(out, "\n", 1);
}

/* Reads all parts of a resolved plan in order; returns the serialised records. *nrec and
 * *nerr count good records and PC_ERR_DATA errors. */
static char *read_plan(split_plan *p, const csv_reader_options *opts, int64_t *nrec,
                       int64_t *nerr)
{
    sbuf out = {0};
    sb_add(&out, "", 0);
    *nrec = *nerr = 0;
    split_segment *seg = split_plan_segments(p);
    for (int part = 0; part < split_plan_part_count(p); part++) {
        for (int64_t i = split_plan_part_first(p, part); i < split_plan_part_first(p, part + 1);
             i++) {
            char err[PC_ERRLEN];
            csv_reader *r;
            const char *path = split_plan_file_path(p, seg[i].file);
            ck_assert_msg(csv_reader_open_opts(path, &seg[i], opts, &r, err, sizeof err) == PC_OK,
                          "%s", err);
            for (;;) {
                csv_record rec;
                bool eof;
                pc_status st = csv_reader_next(r, &rec, &eof, err, sizeof err);
                if (st == PC_ERR_DATA) {
                    sb_printf(&out, "f%d l%lld o%lld ERROR %s\n", seg[i].file,
                              (long long)rec.line, (long long)rec.offset, err);
                    (*nerr)++;
                    continue;
                }
                ck_assert_msg(st == PC_OK, "%s", err);
                if (eof) break;
                add_record(&out, seg[i].file, &rec);
                (*nrec)++;
            }
            csv_reader_close(r);
        }
    }
    return out.s;
}

/* Every segment's resolved parity and line, recomputed from the file's bytes. */
static void check_resolved(split_plan *p)
{
    split_segment *seg = split_plan_segments(p);
    for (int64_t i = 0; i < split_plan_segment_count(p); i++) {
        FILE *f = fopen(split_plan_file_path(p, seg[i].file), "rb");
        ck_assert_ptr_nonnull(f);
        int64_t q = 0, nl = 0;
        for (int64_t k = 0; k < seg[i].start; k++) {
            int c = fgetc(f);
            ck_assert_int_ne(c, EOF);
            q += c == '"';
            nl += c == '\n';
        }
        fclose(f);
        ck_assert_int_eq(seg[i].in_quotes_at_start, (int)(q & 1));
        ck_assert_int_eq(seg[i].line_at_start, 1 + nl);
        ck_assert_int_lt(seg[i].start, seg[i].end);
    }
}

static split_plan *plan_at(const char *dir, const char *pattern, int nparts, const int64_t *cuts)
{
    const char *pats[] = {pattern};
    split_plan *p;
    char err[PC_ERRLEN];
    ck_assert_msg(split_plan_create_at(pats, 1, dir, nparts, cuts, &p, err, sizeof err) == PC_OK,
                  "%s", err);
    count_and_resolve(p);
    return p;
}

/* ---------------------------------------------------------------- tricky inputs */

/* a.csv: quoting of every kind, CRLF ends, an embedded CRLF, a blank line, no final EOL. */
static const char A_CSV[] =
    "id,text,x\r\n"
    "1,\"hello, world\",1.5\r\n"
    "2,\"say \"\"hi\"\"\",2\r\n"
    "3,\"multi\nline\r\nfield\",3\r\n"
    "4,,\r\n"
    "5,\"\",\"\"\r\n"
    "\r\n"
    "6,\"x\"\"\",\n"
    "7,plain,\"q\"\"\nq\"";

/* e.csv: malformed records; the last one is an unterminated quote running to EOF. */
static const char E_CSV[] =
    "\"hea\nder\",b\n"          /* lines 1-2: header with an embedded newline */
    "1,ab\"c\"d\n"              /* 3: quote inside an unquoted field */
    "2,\"ok\"x\n"               /* 4: text after the closing quote */
    "3,good\n"                  /* 5 */
    "4,\"a\"\"b\n5,x\"\n"       /* 6-7: one record, field 2 = a"b\n5,x */
    "\n\n"                      /* 8-9: blank */
    "6,\"unterminated\n7,z\n";  /* 10-11: unterminated quoted field */

static const char *const TRICKY[][2] = {
    {"a.csv", A_CSV},
    {"b.csv", ""},
    {"c.csv", "h1,h2\n"},
    {"d.csv", "\"h,1\",h2"},
    {"e.csv", E_CSV},
    {"f.csv", "h\n1\n2\n3\n\n\n"},
    {"g.csv", "\"x\r\ny\",z\r\n1,2\r\n\"3\n\",4"},
    {"h.csv", "k,v\n10,a\n11,b\n12,\"c,\"\"d\"\"\"\n13,\n"},
};
#define NTRICKY ((int)(sizeof TRICKY / sizeof TRICKY[0]))

/* Writes data as a gzip file of `members` gzip members: the data cut into that many pieces
 * (anywhere, mid-record too), each compressed on its own and concatenated, as
 * `cat a.gz b.gz` or pigz make them. */
static void write_gz(const char *dir, const char *name, const char *data, size_t len,
                     int members)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    for (int m = 0; m < members; m++) {
        size_t a = len * (size_t)m / (size_t)members, b = len * (size_t)(m + 1) / (size_t)members;
        z_stream z;
        memset(&z, 0, sizeof z);
        ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        uLong bound = deflateBound(&z, (uLong)(b - a));
        unsigned char *out = malloc(bound);
        ck_assert_ptr_nonnull(out);
        z.next_in = (Bytef *)(data + a);
        z.avail_in = (uInt)(b - a);
        z.next_out = out;
        z.avail_out = (uInt)bound;
        ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
        ck_assert_uint_eq(fwrite(out, 1, z.total_out, f), z.total_out);
        deflateEnd(&z);
        free(out);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* The tricky set; files whose bit is set in gz_mask are written as NAME.gz instead (with
 * 1 to 3 gzip members). Sorted by name, the files keep their order either way. */
static void write_tricky_as(const char *dir, unsigned gz_mask)
{
    for (int i = 0; i < NTRICKY; i++) {
        if (gz_mask & (1u << i)) {
            char name[64];
            snprintf(name, sizeof name, "%s.gz", TRICKY[i][0]);
            write_gz(dir, name, TRICKY[i][1], strlen(TRICKY[i][1]), 1 + i % 3);
        } else {
            write_str(dir, TRICKY[i][0], TRICKY[i][1]);
        }
    }
}

static void write_tricky(const char *dir) { write_tricky_as(dir, 0); }

/* Removes every ".gz" from s (paths in error messages), so that a reading of compressed
 * files compares equal to the reading of their plain twins. */
static void strip_gz(char *s)
{
    char *o = s;
    for (const char *i = s; *i;) {
        if (strncmp(i, ".gz", 3) == 0) {
            i += 3;
            continue;
        }
        *o++ = *i++;
    }
    *o = '\0';
}

/* ---------------------------------------------------------------- CSV reader */

START_TEST(test_csv_quoting)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "a.csv", A_CSV);
    snprintf(path, sizeof path, "%s/a.csv", dir);
    struct { int64_t line; int64_t n; const char *f[3]; } want[] = {
        {2, 3, {"1", "hello, world", "1.5"}},
        {3, 3, {"2", "say \"hi\"", "2"}},
        {4, 3, {"3", "multi\nline\r\nfield", "3"}},
        {7, 3, {"4", "", ""}},
        {8, 3, {"5", "", ""}},
        {10, 3, {"6", "x\"", ""}},
        {11, 3, {"7", "plain", "q\"\nq"}},
    };
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)strlen(A_CSV), .line_at_start = 1};
    for (int pass = 0; pass < 2; pass++) {
        /* pass 1: a 3-byte buffer, so that every record straddles refills */
        csv_reader_options o = {.buffer_size = pass ? 3 : 0, .max_record = 0};
        csv_reader *r;
        ck_assert_int_eq(csv_reader_open_opts(path, &seg, &o, &r, err, sizeof err), PC_OK);
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
            csv_record rec;
            bool eof;
            ck_assert_msg(csv_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
            ck_assert(!eof);
            ck_assert_int_eq(rec.line, want[k].line);
            ck_assert_int_eq(rec.nfields, want[k].n);
            for (int i = 0; i < 3; i++) {
                ck_assert_str_eq(rec.fields[i], want[k].f[i]);
                ck_assert_uint_eq(rec.lens[i], strlen(want[k].f[i]));
            }
            /* raw bytes are the record as in the file, without its terminator */
            ck_assert(rec.offset >= 0 && (size_t)rec.offset + rec.raw_len <= strlen(A_CSV));
            ck_assert(memcmp(rec.raw, A_CSV + rec.offset, rec.raw_len) == 0);
            char after = A_CSV[rec.offset + (int64_t)rec.raw_len];
            ck_assert(after == '\r' || after == '\n' || after == '\0');
        }
        csv_record rec;
        bool eof = false;
        ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
        ck_assert(eof);
        ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
        ck_assert(eof); /* and stays at eof */
        csv_reader_close(r);
    }
    rm_rf(dir);
}
END_TEST

START_TEST(test_csv_raw_and_fields)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    /* one field only, trailing comma, NUL byte inside a field, lone CR inside an unquoted field */
    static const char data[] = "h\nonly\na,b,\nx\0y,\"q\"\nc\rd,e\n";
    write_bytes(dir, "r.csv", data, sizeof data - 1);
    snprintf(path, sizeof path, "%s/r.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = sizeof data - 1, .line_at_start = 1};
    csv_reader *r;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
    csv_record rec;
    bool eof;
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(rec.nfields, 1);
    ck_assert_str_eq(rec.fields[0], "only");
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(rec.nfields, 3);
    ck_assert_str_eq(rec.fields[2], "");
    ck_assert_uint_eq(rec.raw_len, 4);
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(rec.nfields, 2);
    ck_assert_uint_eq(rec.lens[0], 3);
    ck_assert(memcmp(rec.fields[0], "x\0y", 4) == 0);
    ck_assert_str_eq(rec.fields[1], "q");
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(rec.nfields, 2);
    ck_assert_str_eq(rec.fields[0], "c\rd");
    ck_assert_int_eq(rec.line, 5);
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert(eof);
    csv_reader_close(r);
    rm_rf(dir);
}
END_TEST

static void expect_data_error(csv_reader *r, const char *want_substr, int64_t want_line)
{
    char err[PC_ERRLEN];
    csv_record rec;
    bool eof = false;
    pc_status st = csv_reader_next(r, &rec, &eof, err, sizeof err);
    ck_assert_msg(st == PC_ERR_DATA, "want an error '%s', got status %d", want_substr, st);
    ck_assert_msg(strstr(err, want_substr) != NULL, "'%s' does not contain '%s'", err,
                  want_substr);
    ck_assert_int_eq(rec.line, want_line);
    ck_assert_int_eq(rec.nfields, 0);
}

static void expect_record(csv_reader *r, int64_t line, const char *f0, const char *f1)
{
    char err[PC_ERRLEN];
    csv_record rec;
    bool eof = true;
    ck_assert_msg(csv_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(!eof);
    ck_assert_int_eq(rec.line, line);
    ck_assert_int_eq(rec.nfields, 2);
    ck_assert_str_eq(rec.fields[0], f0);
    ck_assert_str_eq(rec.fields[1], f1);
}

static void expect_eof(csv_reader *r)
{
    char err[PC_ERRLEN];
    csv_record rec;
    bool eof = false;
    ck_assert_msg(csv_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(eof);
}

/* Many records of many fields of random lengths, read back and compared with what was
 * written: fields end at every position of the reader's 8-byte words. */
START_TEST(test_csv_many_fields)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    enum { NREC = 300, MAXF = 40 };
    static char text[NREC][MAXF][16];
    static int nfields[NREC];
    sbuf file = {0};
    sb_add(&file, "h\n", 2);
    uint64_t s = 99;
    for (int i = 0; i < NREC; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        nfields[i] = 1 + (int)(s % MAXF);
        for (int j = 0; j < nfields[i]; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            int len = (int)(s % 13);
            for (int c = 0; c < len; c++) text[i][j][c] = "abc123 .-e\t"[(s >> (4 * c)) % 11];
            text[i][j][len] = '\0';
            if (i % 3 == 0 && j == 0) { /* some records quoted, taking the other path */
                sb_printf(&file, "\"%s\"", text[i][j]);
            } else {
                sb_add(&file, text[i][j], (size_t)len);
            }
            sb_add(&file, j + 1 < nfields[i] ? "," : "\n", 1);
        }
        if (nfields[i] == 1 && text[i][0][0] == '\0' && i % 3 != 0) nfields[i] = 0; /* blank */
    }
    write_bytes(dir, "m.csv", file.s, file.len);
    snprintf(path, sizeof path, "%s/m.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)file.len, .line_at_start = 1};
    csv_reader *r;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
    for (int i = 0; i < NREC; i++) {
        if (nfields[i] == 0) continue;
        csv_record rec;
        bool eof;
        ck_assert_msg(csv_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
        ck_assert(!eof);
        ck_assert_int_eq(rec.line, i + 2);
        ck_assert_int_eq(rec.nfields, nfields[i]);
        for (int j = 0; j < nfields[i]; j++) {
            ck_assert_str_eq(rec.fields[j], text[i][j]);
            ck_assert_uint_eq(rec.lens[j], strlen(text[i][j]));
        }
    }
    expect_eof(r);
    csv_reader_close(r);
    free(file.s);
    rm_rf(dir);
}
END_TEST

START_TEST(test_csv_malformed_consumed)
{
    char dir[4096], path[4200], err[PC_ERRLEN], want[4400];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "e.csv", E_CSV);
    snprintf(path, sizeof path, "%s/e.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)strlen(E_CSV), .line_at_start = 1};
    csv_reader *r;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
    expect_data_error(r, "quote inside unquoted field", 3);
    snprintf(want, sizeof want, "%s:4: text after closing quote", path);
    expect_data_error(r, want, 4);
    expect_record(r, 5, "3", "good");
    expect_record(r, 6, "4", "a\"b\n5,x");
    snprintf(want, sizeof want, "%s:10: unterminated quoted field", path);
    expect_data_error(r, want, 10);
    expect_eof(r);
    csv_reader_close(r);
    rm_rf(dir);
}
END_TEST

START_TEST(test_csv_unterminated_line)
{
    char dir[4096], path[4200], err[PC_ERRLEN], want[4400];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "u.csv", "h,v\n1,\"a\nb\"\n2,ok\n3,\"abc\n4,x\n5,y\n");
    snprintf(path, sizeof path, "%s/u.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = 1000, .line_at_start = 1};
    csv_reader *r;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
    expect_record(r, 2, "1", "a\nb");
    expect_record(r, 4, "2", "ok");
    snprintf(want, sizeof want, "%s:5: unterminated quoted field", path);
    expect_data_error(r, want, 5);
    expect_eof(r);
    csv_reader_close(r);
    rm_rf(dir);
}
END_TEST

START_TEST(test_csv_record_too_long)
{
    char dir[4096], path[4200], err[PC_ERRLEN], want[4400];
    make_tmpdir(dir, sizeof dir, "mapper");
    /* max_record = 10 bytes, terminator included */
    write_str(dir, "l.csv",
              "h,v\n"
              "1234567,9\n"                  /* 2: exactly 10 bytes: fine */
              "12345678,9\n"                 /* 3: 11 bytes */
              "1,\"a\n\nb\nccccccccccccc\"\n" /* 4-7: long, with embedded newlines */
              "2,ok\n"                       /* 8 */
              "3,xxxxxxxxxx");               /* 9: long, at EOF without newline */
    snprintf(path, sizeof path, "%s/l.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = 1000, .line_at_start = 1};
    for (size_t buffer = 1; buffer <= 64; buffer *= 4) {
        csv_reader_options o = {.buffer_size = buffer, .max_record = 10};
        csv_reader *r;
        ck_assert_int_eq(csv_reader_open_opts(path, &seg, &o, &r, err, sizeof err), PC_OK);
        expect_record(r, 2, "1234567", "9");
        snprintf(want, sizeof want, "%s:3: record longer than 10 bytes", path);
        expect_data_error(r, want, 3);
        snprintf(want, sizeof want, "%s:4: record longer than 10 bytes", path);
        expect_data_error(r, want, 4);
        expect_record(r, 8, "2", "ok");
        expect_data_error(r, "record longer than 10 bytes", 9);
        expect_eof(r);
        csv_reader_close(r);
    }
    /* exactly 10 bytes at end of file, without a newline: fine */
    write_str(dir, "m.csv", "h,v\n1234567,90");
    snprintf(path, sizeof path, "%s/m.csv", dir);
    for (size_t buffer = 1; buffer <= 64; buffer *= 4) {
        csv_reader_options o = {.buffer_size = buffer, .max_record = 10};
        csv_reader *r;
        ck_assert_int_eq(csv_reader_open_opts(path, &seg, &o, &r, err, sizeof err), PC_OK);
        expect_record(r, 2, "1234567", "90");
        expect_eof(r);
        csv_reader_close(r);
    }
    rm_rf(dir);
}
END_TEST

/* With the default sizes: a 3 MiB record grows the 1 MiB buffer; a 17 MiB one is refused
 * and skipped, and the record after it is read with the right line number. */
START_TEST(test_csv_default_limits)
{
    char dir[4096], path[4200], err[PC_ERRLEN], want[4400];
    make_tmpdir(dir, sizeof dir, "mapper");
    size_t big = (size_t)17 << 20, mid = (size_t)3 << 20;
    size_t total = 4 + 2 + mid + 2 + 2 + big + 2 + 5;
    char *data = malloc(total), *p = data;
    ck_assert_ptr_nonnull(data);
    memcpy(p, "h,v\n1,", 6), p += 6;
    memset(p, 'm', mid), p += mid;
    memcpy(p, "\n2,\"", 4), p += 4;
    memset(p, 'b', big), p += big;
    memcpy(p, "\"\n3,ok\n", 7), p += 7;
    ck_assert_uint_eq((size_t)(p - data), total);
    write_bytes(dir, "big.csv", data, total);
    free(data);
    snprintf(path, sizeof path, "%s/big.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)total, .line_at_start = 1};
    csv_reader *r;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
    csv_record rec;
    bool eof;
    ck_assert_int_eq(csv_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_uint_eq(rec.lens[1], mid);
    snprintf(want, sizeof want, "%s:3: record longer than 16777216 bytes", path);
    expect_data_error(r, want, 3);
    expect_record(r, 4, "3", "ok");
    expect_eof(r);
    csv_reader_close(r);
    rm_rf(dir);
}
END_TEST

/* csv_reader_set_float_columns: the same records as without it (fields, lens, lines, raw),
 * and values set exactly when every float column parses (then equal to parse_float on the
 * field, bit for bit): checked on random records of numbers in many shapes, ids, bad
 * numbers, quoted fields, missing and extra fields, through a tiny buffer and the default. */
START_TEST(test_csv_float_columns)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    enum { NCOLS = 9, NREC = 3000 };
    /* id, 3 floats, a label, 4 floats: runs of both kinds, starting with a non-float one */
    const bool is_float[NCOLS] = {false, true, true, true, false, true, true, true, true};
    static const char *const shapes[] = {
        "0.0262", "1", "-0", "1e3", "-1.5E-7", "3.4028235e38", "1e39", "  2.5 ", "nan", "",
        "12345678", "123456789012345678901234", "0.000000000000000000001", ".5", "5.", "-",
        "1e", "0x10", "\"7\"", "1.2.3", "99999999999999999999e-60", "7e-46", "+.5e+1",
        "1234567.", "0.1234567", "-9999999"};
    enum { NSHAPES = sizeof shapes / sizeof shapes[0] };
    sbuf file = {0};
    sb_add(&file, "id,a,b,c,label,d,e,f,g\n", 24);
    uint64_t s = 7;
    for (int i = 0; i < NREC; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int nf = s % 10 == 0 ? (int)((s >> 8) % (NCOLS + 3)) : NCOLS; /* sometimes 0..11 */
        for (int c = 0; c < nf; c++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            if (c == 0 || c == 4) {
                sb_printf(&file, "%s%d", c == 0 ? "u" : "l", i);
            } else if (s % 4 != 0) {
                sb_printf(&file, "%d.%0*d", (int)((s >> 12) % 3), (int)((s >> 20) % 5),
                          (int)((s >> 24) % 10000)); /* the common case */
            } else {
                sb_printf(&file, "%s", shapes[(s >> 8) % NSHAPES]);
            }
            sb_add(&file, c + 1 < nf ? "," : "\n", 1);
        }
        if (nf == 0) sb_add(&file, "x\n", 2);
    }
    write_bytes(dir, "f.csv", file.s, file.len);
    snprintf(path, sizeof path, "%s/f.csv", dir);
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)file.len, .line_at_start = 1};
    int64_t with_values = 0, without = 0;
    for (int pass = 0; pass < 2; pass++) {
        csv_reader_options o = {.buffer_size = pass ? 5 : 0, .max_record = 0};
        csv_reader *plain, *fast;
        ck_assert_int_eq(csv_reader_open_opts(path, &seg, &o, &plain, err, sizeof err), PC_OK);
        ck_assert_int_eq(csv_reader_open_opts(path, &seg, &o, &fast, err, sizeof err), PC_OK);
        ck_assert_int_eq(csv_reader_set_float_columns(fast, is_float, NCOLS, err, sizeof err),
                         PC_OK);
        for (;;) {
            csv_record a, b;
            bool eof_a, eof_b;
            char err_b[PC_ERRLEN];
            pc_status sa = csv_reader_next(plain, &a, &eof_a, err, sizeof err);
            pc_status sb = csv_reader_next(fast, &b, &eof_b, err_b, sizeof err_b);
            ck_assert_int_eq(sa, sb);
            ck_assert_int_eq(eof_a, eof_b);
            if (sa != PC_OK) ck_assert_str_eq(err, err_b);
            if (sa != PC_OK || eof_a) {
                if (sa != PC_OK) continue;
                break;
            }
            ck_assert(a.values == NULL);
            ck_assert_int_eq(a.line, b.line);
            ck_assert_int_eq(a.offset, b.offset);
            ck_assert_uint_eq(a.raw_len, b.raw_len);
            ck_assert_int_eq(a.nfields, b.nfields);
            bool all_parse = a.nfields == NCOLS && memchr(a.raw, '"', a.raw_len) == NULL;
            for (int64_t c = 0; c < a.nfields; c++) {
                ck_assert_uint_eq(a.lens[c], b.lens[c]);
                ck_assert(memcmp(a.fields[c], b.fields[c], a.lens[c] + 1) == 0);
                float f;
                if (c < NCOLS && is_float[c] &&
                    parse_float(a.fields[c], a.lens[c], &f, NULL, 0) != PC_OK)
                    all_parse = false;
            }
            ck_assert_msg((b.values != NULL) == all_parse, "line %lld: values %s",
                          (long long)a.line, b.values ? "set" : "NULL");
            for (int64_t c = 0; b.values != NULL && c < NCOLS; c++) {
                float f;
                if (!is_float[c]) continue;
                ck_assert_int_eq(parse_float(a.fields[c], a.lens[c], &f, NULL, 0), PC_OK);
                ck_assert_msg(memcmp(&f, &b.values[c], sizeof f) == 0, "line %lld col %lld: %a %a",
                              (long long)a.line, (long long)c, f, b.values[c]);
            }
            if (b.values != NULL) with_values++;
            else without++;
        }
        /* no float column: values stay NULL */
        const bool none[NCOLS] = {false};
        ck_assert_int_eq(csv_reader_set_float_columns(fast, none, NCOLS, err, sizeof err), PC_OK);
        csv_reader_close(plain);
        csv_reader_close(fast);
    }
    ck_assert_int_gt(with_values, NREC / 4);
    ck_assert_int_gt(without, NREC / 4);
    free(file.s);
    rm_rf(dir);
}
END_TEST

START_TEST(test_csv_header)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    csv_header h;

    write_str(dir, "a.csv", A_CSV);
    snprintf(path, sizeof path, "%s/a.csv", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(h.ncols, 3);
    ck_assert_str_eq(h.names[0], "id");
    ck_assert_str_eq(h.names[2], "x");
    ck_assert_int_eq(csv_header_find(&h, "text"), 1);
    ck_assert_int_eq(csv_header_find(&h, "nope"), -1);
    csv_header_free(&h);
    ck_assert_int_eq(h.ncols, 0);
    csv_header_free(&h); /* twice is fine */

    /* quoted header over two lines, CRLF */
    write_str(dir, "g.csv", "\"x\r\ny\",\"z\"\"\"\r\n1,2\r\n");
    snprintf(path, sizeof path, "%s/g.csv", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(h.ncols, 2);
    ck_assert_str_eq(h.names[0], "x\r\ny");
    ck_assert_str_eq(h.names[1], "z\"");
    csv_header_free(&h);

    /* a UTF-8 BOM is dropped from the header; data rows are unaffected */
    write_str(dir, "bom.csv", "\xEF\xBB\xBFid,v\n1,2\n");
    snprintf(path, sizeof path, "%s/bom.csv", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(csv_header_find(&h, "id"), 0);
    csv_header_free(&h);

    /* empty: no columns, no rows; header-only: columns */
    write_str(dir, "empty.csv", "");
    snprintf(path, sizeof path, "%s/empty.csv", dir);
    ck_assert_int_eq(csv_read_header(path, &h, err, sizeof err), PC_OK);
    ck_assert_int_eq(h.ncols, 0);
    csv_header_free(&h);
    write_str(dir, "ho.csv", "a,b");
    snprintf(path, sizeof path, "%s/ho.csv", dir);
    ck_assert_int_eq(csv_read_header(path, &h, err, sizeof err), PC_OK);
    ck_assert_int_eq(h.ncols, 2);
    csv_header_free(&h);

    /* no header: the first line is empty */
    write_str(dir, "nohead.csv", "\n1,2\n");
    snprintf(path, sizeof path, "%s/nohead.csv", dir);
    ck_assert_int_eq(csv_read_header(path, &h, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "nohead.csv:1:") != NULL, "%s", err);
    ck_assert_int_eq(h.ncols, 0);
    ck_assert_ptr_null(h.names);

    /* malformed header */
    write_str(dir, "badhead.csv", "a,b\"c\"\n1,2\n");
    snprintf(path, sizeof path, "%s/badhead.csv", dir);
    ck_assert_int_eq(csv_read_header(path, &h, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "quote inside unquoted field") != NULL, "%s", err);

    /* missing */
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    ck_assert_int_eq(csv_read_header(path, &h, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_msg(strstr(err, "missing.csv") != NULL, "%s", err);
    split_segment seg = {.file = 0, .start = 0, .end = 10, .line_at_start = 1};
    csv_reader *r = (csv_reader *)&seg;
    ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(r);
    csv_reader_close(NULL);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- split alignment */

static const csv_reader_options OPTS[] = {
    {0, 0},   /* defaults */
    {1, 0},   /* one byte per read */
    {7, 0},
    {3, 14},  /* small records limit: too-long errors must align too */
};
#define NOPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

/* Reference reading (one part) of the tricky set, per options. */
static char *reference(const char *dir, int o, int64_t *nrec, int64_t *nerr)
{
    split_plan *p = plan_at(dir, "*.csv", 1, NULL);
    char *s = read_plan(p, &OPTS[o], nrec, nerr);
    split_plan_free(p);
    return s;
}

START_TEST(test_split_reference_sane)
{
    /* The reference itself: the right number of rows and errors, so that the equality
     * checks below compare something real. */
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    int64_t nrec, nerr;
    char *ref = reference(dir, 0, &nrec, &nerr);
    /* a: 7, b/c/d: 0, e: 2 (+3 errors), f: 3, g: 2, h: 4 */
    ck_assert_int_eq(nrec, 7 + 2 + 3 + 2 + 4);
    ck_assert_int_eq(nerr, 3);
    ck_assert_msg(strstr(ref, "f6 l4 o15 n2:[2]3\n[1]4\n") != NULL, "%s", ref); /* g.csv */
    free(ref);
    /* the same with a tiny buffer */
    ref = reference(dir, 1, &nrec, &nerr);
    ck_assert_int_eq(nrec, 18);
    free(ref);
    rm_rf(dir);
}
END_TEST

START_TEST(test_split_nparts)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    for (int o = 0; o < NOPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.csv", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        int parts[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, (int)total - 1, (int)total, (int)total + 5};
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            split_plan *p = plan_at(dir, "*.csv", parts[k], NULL);
            check_resolved(p);
            /* parts are nearly equal: sizes differ by at most one byte */
            split_segment *seg = split_plan_segments(p);
            int64_t lo = INT64_MAX, hi = 0;
            for (int part = 0; part < parts[k]; part++) {
                int64_t sz = 0;
                for (int64_t i = split_plan_part_first(p, part);
                     i < split_plan_part_first(p, part + 1); i++)
                    sz += seg[i].end - seg[i].start;
                lo = sz < lo ? sz : lo;
                hi = sz > hi ? sz : hi;
            }
            ck_assert_int_le(hi - lo, 1);
            char *got = read_plan(p, &OPTS[o], &n2, &e2);
            ck_assert_msg(strcmp(got, ref) == 0, "opts %d nparts %d:\n--- got\n%s--- want\n%s", o,
                          parts[k], got, ref);
            ck_assert_int_eq(n2, nrec);
            ck_assert_int_eq(e2, nerr);
            free(got);
            split_plan_free(p);
        }
        free(ref);
    }
    rm_rf(dir);
}
END_TEST

/* A boundary at every byte of the concatenation: inside quoted fields, between \r and \n,
 * on the first byte of a record, inside headers, on the last byte, at file boundaries. */
START_TEST(test_split_every_cut)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    for (int o = 0; o < NOPTS; o++) {
        if (OPTS[o].buffer_size == 1) continue; /* a read() per byte: slow under valgrind */
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.csv", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        for (int64_t cut = 0; cut <= total; cut++) {
            split_plan *p = plan_at(dir, "*.csv", 2, &cut);
            char *got = read_plan(p, &OPTS[o], &n2, &e2);
            ck_assert_msg(strcmp(got, ref) == 0, "opts %d cut %lld:\n--- got\n%s--- want\n%s", o,
                          (long long)cut, got, ref);
            free(got);
            split_plan_free(p);
        }
        free(ref);
    }
    rm_rf(dir);
}
END_TEST

/* Three parts with pseudo-random cut pairs (deterministic), some of them equal. */
START_TEST(test_split_random_cuts)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    int64_t nrec, nerr, n2, e2;
    char *ref = reference(dir, 0, &nrec, &nerr);
    split_plan *one = plan_at(dir, "*.csv", 1, NULL);
    int64_t total = split_plan_total_size(one);
    split_plan_free(one);
    uint64_t s = 88172645463325252u;
    for (int it = 0; it < 300; it++) {
        int64_t cuts[4];
        for (int k = 0; k < 4; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            cuts[k] = (int64_t)(s % (uint64_t)(total + 1));
        }
        for (int a = 0; a < 4; a++) /* sort */
            for (int b = a + 1; b < 4; b++)
                if (cuts[b] < cuts[a]) {
                    int64_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        if (it % 10 == 0) cuts[1] = cuts[0];
        split_plan *p = plan_at(dir, "*.csv", 5, cuts);
        char *got = read_plan(p, &OPTS[it % NOPTS ? 0 : 2], &n2, &e2);
        ck_assert_msg(strcmp(got, ref) == 0, "cuts %lld %lld %lld %lld", (long long)cuts[0],
                      (long long)cuts[1], (long long)cuts[2], (long long)cuts[3]);
        free(got);
        split_plan_free(p);
    }
    free(ref);
    rm_rf(dir);
}
END_TEST

START_TEST(test_split_segments_layout)
{
    char dir[4096], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "1.csv", "0123456789");
    write_str(dir, "2.csv", "");
    write_str(dir, "3.csv", "abcde");
    split_plan *p = plan_at(dir, "*.csv", 3, NULL); /* 15 bytes: [0,5) [5,10) [10,15) */
    ck_assert_int_eq(split_plan_file_count(p), 3);
    ck_assert_int_eq(split_plan_file_size(p, 0), 10);
    ck_assert_int_eq(split_plan_segment_count(p), 3);
    split_segment *s = split_plan_segments(p);
    ck_assert(s[0].file == 0 && s[0].start == 0 && s[0].end == 5);
    ck_assert(s[1].file == 0 && s[1].start == 5 && s[1].end == 10);
    ck_assert(s[2].file == 2 && s[2].start == 0 && s[2].end == 5);
    ck_assert_int_eq(split_plan_part_first(p, 3), 3);
    split_plan_free(p);

    int64_t cuts[] = {7, 7, 12};
    p = plan_at(dir, "*.csv", 4, cuts); /* [0,7) [) [7,12) [12,15) */
    s = split_plan_segments(p);
    ck_assert_int_eq(split_plan_segment_count(p), 4);
    ck_assert_int_eq(split_plan_part_first(p, 1), 1);
    ck_assert_int_eq(split_plan_part_first(p, 2), 1); /* empty part */
    ck_assert(s[1].file == 0 && s[1].start == 7 && s[1].end == 10);
    ck_assert(s[2].file == 2 && s[2].start == 0 && s[2].end == 2);
    ck_assert(s[3].file == 2 && s[3].start == 2 && s[3].end == 5);
    split_plan_free(p);

    /* bad cuts and nparts */
    const char *pats[] = {"*.csv"};
    int64_t bad[] = {8, 3};
    ck_assert_int_eq(split_plan_create_at(pats, 1, dir, 3, bad, &p, err, sizeof err),
                     PC_ERR_USAGE);
    ck_assert_ptr_null(p);
    int64_t beyond[] = {16};
    ck_assert_int_eq(split_plan_create_at(pats, 1, dir, 2, beyond, &p, err, sizeof err),
                     PC_ERR_USAGE);
    ck_assert_int_eq(split_plan_create(pats, 1, dir, 0, &p, err, sizeof err), PC_ERR_USAGE);
    split_plan_free(NULL);
    rm_rf(dir);
}
END_TEST

START_TEST(test_split_count_file_changed)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "x.csv", "h\n1\n2\n\"3\"\n");
    const char *pats[] = {"x.csv"};
    split_plan *p;
    ck_assert_int_eq(split_plan_create(pats, 1, dir, 2, &p, err, sizeof err), PC_OK);
    split_segment *s = split_plan_segments(p);
    ck_assert_int_eq(split_count(p, &s[1], err, sizeof err), PC_OK);
    ck_assert_int_eq(s[1].quotes, 2);
    ck_assert_int_eq(s[1].newlines, 2);
    /* the file shrinks under us: an I/O error, the segment unchanged */
    snprintf(path, sizeof path, "%s/x.csv", dir);
    ck_assert_int_eq(truncate(path, 7), 0);
    s[1].quotes = -5;
    ck_assert_int_eq(split_count(p, &s[1], err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "x.csv") != NULL, "%s", err);
    ck_assert_int_eq(s[1].quotes, -5);
    /* the file disappears */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(split_count(p, &s[0], err, sizeof err), PC_ERR_NOINPUT);
    split_plan_free(p);
    rm_rf(dir);
}
END_TEST

/* split_count against a byte loop on random bytes rich in '"' and '\n', over segments of
 * every alignment and long enough for the word-at-a-time counter's inner rounds. */
START_TEST(test_split_count_random)
{
    char dir[4096], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    size_t n = 50000;
    char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int k = (int)(s % 8);
        /* long runs of the same byte fill every lane of the SWAR accumulators */
        data[i] = i > 20000 && i < 32000 ? (i < 26000 ? '"' : '\n')
                  : k == 0 ? '"' : k == 1 ? '\n' : (char)(s >> 32);
    }
    write_bytes(dir, "r.bin", data, n);
    int64_t cuts[] = {1, 9, 17, 2047, 2048, 20001, 23999, 40000, 49999};
    split_plan *p = plan_at(dir, "r.bin", 10, cuts);
    split_segment *seg = split_plan_segments(p);
    ck_assert_int_eq(split_plan_segment_count(p), 10);
    for (int64_t i = 0; i < 10; i++) {
        int64_t q = 0, nl = 0;
        for (int64_t k = seg[i].start; k < seg[i].end; k++) {
            q += data[k] == '"';
            nl += data[k] == '\n';
        }
        ck_assert_int_eq(seg[i].quotes, q);
        ck_assert_int_eq(seg[i].newlines, nl);
    }
    check_resolved(p);
    (void)err;
    split_plan_free(p);
    free(data);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- bounded splits */

static split_plan *plan_opts(const char *dir, const char *pattern, int nparts,
                             int64_t split_bytes, const int64_t *cuts)
{
    const char *pats[] = {pattern};
    split_options o = {.nparts = nparts, .split_bytes = split_bytes, .cuts = cuts};
    split_plan *p;
    char err[PC_ERRLEN];
    ck_assert_msg(split_plan_create_opts(pats, 1, dir, &o, &p, err, sizeof err) == PC_OK, "%s",
                  err);
    count_and_resolve(p);
    return p;
}

/* The plan's shape: each file's segments are consecutive and tile it from byte 0; a plain
 * file's segments hold at most split_bytes and cross no part boundary; a compressed file is
 * one whole segment; the parts are a contiguous partition of the segment list. */
static void check_layout(split_plan *p)
{
    const split_segment *seg = split_plan_segments(p);
    int64_t n = split_plan_segment_count(p), S = split_plan_split_bytes(p);
    int nparts = split_plan_part_count(p);
    ck_assert_int_eq(split_plan_part_first(p, 0), 0);
    ck_assert_int_eq(split_plan_part_first(p, nparts), n);
    for (int k = 0; k < nparts; k++)
        ck_assert_int_le(split_plan_part_first(p, k), split_plan_part_first(p, k + 1));
    int64_t i = 0;
    for (int f = 0; f < split_plan_file_count(p); f++) {
        int64_t size = split_plan_file_size(p, f), at = 0;
        for (; i < n && seg[i].file == f; i++) {
            ck_assert_int_eq(seg[i].start, at);
            ck_assert_int_lt(seg[i].start, seg[i].end);
            if (split_plan_file_compressed(p, f)) {
                ck_assert_int_eq(seg[i].end, size);
                ck_assert(i + 1 == n || seg[i + 1].file != f);
            } else if (S > 0) {
                ck_assert_int_le(seg[i].end - seg[i].start, S);
            }
            at = seg[i].end;
        }
        ck_assert_int_eq(at, size);
    }
    ck_assert_int_eq(i, n);
}

START_TEST(test_split_bytes_layout)
{
    char dir[4096], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_str(dir, "1.csv", "0123456789");
    write_str(dir, "2.csv", "");
    write_str(dir, "3.csv", "abcde");
    /* 15 bytes, parts [0,7) [7,15), split_bytes 4: file 1 is cut at 4 and 8 (its own
     * offsets) and at 7 (the part boundary) */
    int64_t cut = 7;
    split_plan *p = plan_opts(dir, "*.csv", 2, 4, &cut);
    check_layout(p);
    ck_assert_int_eq(split_plan_split_bytes(p), 4);
    const split_segment *s = split_plan_segments(p);
    int64_t want[][3] = {{0, 0, 4}, {0, 4, 7}, {0, 7, 8}, {0, 8, 10}, {2, 0, 4}, {2, 4, 5}};
    ck_assert_int_eq(split_plan_segment_count(p), 6);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(s[i].file == want[i][0] && s[i].start == want[i][1] && s[i].end == want[i][2],
                      "segment %d: file %d [%lld, %lld)", i, s[i].file, (long long)s[i].start,
                      (long long)s[i].end);
    ck_assert_int_eq(split_plan_part_first(p, 1), 2);
    split_plan_free(p);

    /* the even split of 15 bytes into 2 parts is at 7 too */
    p = plan_opts(dir, "*.csv", 2, 4, NULL);
    ck_assert_int_eq(split_plan_segment_count(p), 6);
    ck_assert_int_eq(split_plan_part_first(p, 1), 2);
    split_plan_free(p);

    /* many more segments than parts: 1 part, 1-byte splits */
    p = plan_opts(dir, "*.csv", 1, 1, NULL);
    check_layout(p);
    ck_assert_int_eq(split_plan_segment_count(p), 15);
    split_plan_free(p);

    /* a compressed file between them: one segment of its compressed size, in the part
     * where it begins, never cut however small the split size */
    const char *body = "k\n1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    write_gz(dir, "2.csv.gz", body, strlen(body), 1);
    int64_t cuts[] = {5, 12}; /* the .gz begins at global byte 10, in part 1 */
    p = plan_opts(dir, "*.csv*", 3, 2, cuts);
    check_layout(p);
    ck_assert_int_eq(split_plan_file_count(p), 4);
    ck_assert(split_plan_file_compressed(p, 2) && !split_plan_file_compressed(p, 0));
    int64_t gz = split_plan_file_size(p, 2);
    ck_assert_int_gt(gz, 10);
    s = split_plan_segments(p);
    int64_t ngz = 0;
    for (int64_t i = 0; i < split_plan_segment_count(p); i++) {
        if (s[i].file != 2) continue;
        ngz++;
        ck_assert(s[i].start == 0 && s[i].end == gz);
        ck_assert_int_eq(s[i].quotes, 0);
        ck_assert_int_eq(s[i].newlines, 0);
        ck_assert_int_eq(s[i].in_quotes_at_start, 0);
        ck_assert_int_eq(s[i].line_at_start, 1);
        /* it is in part 1, where the file begins, though it runs past part 1's end */
        ck_assert(i >= split_plan_part_first(p, 1) && i < split_plan_part_first(p, 2));
    }
    ck_assert_int_eq(ngz, 1);
    ck_assert_int_eq(split_plan_total_size(p), 15 + gz);
    split_plan_free(p);

    /* bad options; failure leaves *out NULL */
    const char *pats[] = {"*.csv"};
    split_options bad = {.nparts = 2, .split_bytes = -1};
    p = (split_plan *)1;
    ck_assert_int_eq(split_plan_create_opts(pats, 1, dir, &bad, &p, err, sizeof err),
                     PC_ERR_USAGE);
    ck_assert_ptr_null(p);
    bad = (split_options){.nparts = 0, .split_bytes = 4};
    ck_assert_int_eq(split_plan_create_opts(pats, 1, dir, &bad, &p, err, sizeof err),
                     PC_ERR_USAGE);
    int64_t beyond = 16;
    bad = (split_options){.nparts = 2, .split_bytes = 4, .cuts = &beyond};
    ck_assert_int_eq(split_plan_create_opts(pats, 1, dir, &bad, &p, err, sizeof err),
                     PC_ERR_USAGE);
    rm_rf(dir);
}
END_TEST

/* segments_per_part: segments shrink below split_bytes until each part has about that many,
 * but not below SPLIT_MIN_BYTES, and never grow past split_bytes.  The files are sparse (a
 * plan only stats them), so a gigabyte costs nothing. */
START_TEST(test_split_segments_per_part)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    snprintf(path, sizeof path, "%s/big.csv", dir);
    static const struct {
        int64_t size, split;
        int nparts;
        int64_t want_split;
    } cases[] = {
        {(int64_t)1 << 30, (int64_t)64 << 20, 2, (int64_t)16 << 20}, /* 1 GiB / (2 x 32) */
        {(int64_t)1 << 30, (int64_t)8 << 20, 2, (int64_t)8 << 20},   /* already smaller */
        {(int64_t)100 << 20, (int64_t)64 << 20, 2, SPLIT_MIN_BYTES},  /* the floor */
        {(int64_t)100 << 20, 1 << 20, 2, 1 << 20},                    /* under the floor: kept */
        {(int64_t)64 << 30, (int64_t)64 << 20, 4, (int64_t)64 << 20}, /* the cap */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ck_assert(fd >= 0 && ftruncate(fd, cases[i].size) == 0);
        close(fd);
        const char *pats[] = {"big.csv"};
        split_options o = {.nparts = cases[i].nparts, .split_bytes = cases[i].split,
                           .segments_per_part = SPLIT_SEGMENTS_PER_PART};
        split_plan *p;
        ck_assert_msg(split_plan_create_opts(pats, 1, dir, &o, &p, err, sizeof err) == PC_OK,
                      "%s", err);
        ck_assert_int_eq(split_plan_split_bytes(p), cases[i].want_split);
        int64_t S = cases[i].want_split, per = (cases[i].size / cases[i].nparts + S - 1) / S;
        for (int k = 0; k < cases[i].nparts; k++)
            ck_assert_int_eq(split_plan_part_first(p, k + 1) - split_plan_part_first(p, k), per);
        check_layout(p);
        split_plan_free(p);
    }
    rm_rf(dir);
}
END_TEST

/* Every split size from 1 byte to past the total, with several numbers of counting parts
 * and reader buffers (all combinations for the small sizes, a rotation of them above —
 * valgrind's time): the same records, errors and lines as one whole reading. */
START_TEST(test_split_bytes_every_size)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    const int opts[] = {0, 2, 3};
    const int nparts[] = {1, 2, 3, 7};
    for (size_t oi = 0; oi < sizeof opts / sizeof opts[0]; oi++) {
        int o = opts[oi];
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.csv", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        for (int64_t S = 1; S <= total + 1; S++) {
            if (S > 16 && (S + (int64_t)oi) % 3 != 0) continue;
            for (size_t k = 0; k < sizeof nparts / sizeof nparts[0]; k++) {
                if (S > 16 && (S / 3 + (int64_t)oi) % 4 != (int64_t)k) continue;
                split_plan *p = plan_opts(dir, "*.csv", nparts[k], S, NULL);
                check_layout(p);
                if (S == 1) ck_assert_int_eq(split_plan_segment_count(p), total);
                if (S <= 2) check_resolved(p);
                char *got = read_plan(p, &OPTS[o], &n2, &e2);
                ck_assert_msg(strcmp(got, ref) == 0,
                              "opts %d split %lld nparts %d:\n--- got\n%s--- want\n%s", o,
                              (long long)S, nparts[k], got, ref);
                ck_assert_int_eq(n2, nrec);
                ck_assert_int_eq(e2, nerr);
                free(got);
                split_plan_free(p);
            }
        }
        free(ref);
    }
    rm_rf(dir);
}
END_TEST

/* Random split sizes with random part boundaries (deterministic). */
START_TEST(test_split_bytes_random)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(dir);
    int64_t nrec, nerr, n2, e2;
    char *ref = reference(dir, 0, &nrec, &nerr);
    split_plan *one = plan_at(dir, "*.csv", 1, NULL);
    int64_t total = split_plan_total_size(one);
    split_plan_free(one);
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int it = 0; it < 300; it++) {
        int64_t cuts[3];
        for (int k = 0; k < 3; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            cuts[k] = (int64_t)(s % (uint64_t)(total + 1));
        }
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (cuts[b] < cuts[a]) {
                    int64_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int64_t S = 1 + (int64_t)(s % 40);
        split_plan *p = plan_opts(dir, "*.csv", 4, S, cuts);
        check_layout(p);
        char *got = read_plan(p, &OPTS[it % 4 ? 0 : 2], &n2, &e2);
        ck_assert_msg(strcmp(got, ref) == 0, "split %lld cuts %lld %lld %lld", (long long)S,
                      (long long)cuts[0], (long long)cuts[1], (long long)cuts[2]);
        free(got);
        split_plan_free(p);
    }
    free(ref);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- compressed input */

/* The byte source itself: names, exact bytes over several members through reads of every
 * size, incompressible data larger than the input buffer, a start offset. */
START_TEST(test_source_bytes)
{
    char dir[4096], path[4200], err[PC_ERRLEN], why[PC_ERRLEN];
    ck_assert_int_eq(source_codec_of("a/b.csv.gz"), SOURCE_CODEC_GZIP);
    ck_assert_int_eq(source_codec_of("B.GZ"), SOURCE_CODEC_GZIP);
    ck_assert_int_eq(source_codec_of("x.gz.csv"), SOURCE_CODEC_PLAIN);
    ck_assert_int_eq(source_codec_of("gz"), SOURCE_CODEC_PLAIN);
    ck_assert_int_eq(source_codec_of(".gz"), SOURCE_CODEC_GZIP);

    make_tmpdir(dir, sizeof dir, "mapper");
    size_t n = 400000; /* > the 256 KiB input buffer even compressed: random bytes */
    char *data = malloc(n), *back = malloc(n + 1);
    ck_assert(data != NULL && back != NULL);
    uint64_t s = 7;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        data[i] = i < 300000 ? (char)(s >> 40) : (char)('a' + (s >> 40) % 4);
    }
    write_gz(dir, "r.gz", data, n, 3);
    write_bytes(dir, "r.bin", data, n);
    const size_t reads[] = {1, 7, 4096, n + 1};
    for (size_t k = 0; k < sizeof reads / sizeof reads[0]; k++) {
        for (int gz = 0; gz < 2; gz++) {
            snprintf(path, sizeof path, "%s/%s", dir, gz ? "r.gz" : "r.bin");
            source *src = NULL;
            ck_assert_msg(source_open(path, 0, &src, err, sizeof err) == PC_OK, "%s", err);
            ck_assert(source_compressed(src) == (gz == 1));
            size_t have = 0, got;
            for (;;) {
                /* tiny reads for the first and last few KiB only: valgrind's time */
                size_t step = have < 5000 || have > n - 5000 ? reads[k] : 65536;
                size_t want = step < n + 1 - have ? step : n + 1 - have;
                ck_assert_msg(source_read(src, back + have, want, &got, why, sizeof why) == PC_OK,
                              "%s", why);
                if (got == 0) break;
                have += got;
                ck_assert_uint_le(have, n);
            }
            ck_assert_uint_eq(have, n);
            ck_assert(memcmp(back, data, n) == 0);
            /* at the end: 0 again */
            ck_assert_int_eq(source_read(src, back, 10, &got, why, sizeof why), PC_OK);
            ck_assert_uint_eq(got, 0);
            source_close(src);
        }
    }
    /* a plain file from an offset; past its end it is empty */
    snprintf(path, sizeof path, "%s/r.bin", dir);
    source *src;
    size_t got;
    ck_assert_int_eq(source_open(path, 12345, &src, err, sizeof err), PC_OK);
    ck_assert_int_eq(source_read(src, back, 100, &got, why, sizeof why), PC_OK);
    ck_assert_uint_eq(got, 100);
    ck_assert(memcmp(back, data + 12345, 100) == 0);
    source_close(src);
    ck_assert_int_eq(source_open(path, (int64_t)n + 10, &src, err, sizeof err), PC_OK);
    ck_assert_int_eq(source_read(src, back, 100, &got, why, sizeof why), PC_OK);
    ck_assert_uint_eq(got, 0);
    source_close(src);
    /* a compressed file cannot be entered in the middle; missing files */
    snprintf(path, sizeof path, "%s/r.gz", dir);
    src = (source *)1;
    ck_assert_int_eq(source_open(path, 1, &src, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_ptr_null(src);
    ck_assert_msg(strstr(err, "r.gz") != NULL, "%s", err);
    snprintf(path, sizeof path, "%s/missing.gz", dir);
    ck_assert_int_eq(source_open(path, 0, &src, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_msg(strstr(err, "missing.gz") != NULL, "%s", err);
    source_close(NULL);
    free(data);
    free(back);
    rm_rf(dir);
}
END_TEST

/* The tricky set compressed reads exactly like the plain set (offsets and lines are those
 * of the uncompressed bytes), for every reader buffer, split size and number of parts. */
START_TEST(test_gz_csv_like_plain)
{
    char plain[4096], dir[4096];
    make_tmpdir(plain, sizeof plain, "mapper");
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky(plain);
    write_tricky_as(dir, ~0u);
    for (int o = 0; o < NOPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(plain, o, &nrec, &nerr);
        strip_gz(ref); /* the dirs differ: compare from the file name on */
        const int64_t sizes[] = {0, 1, 2, 5, 64};
        const int nparts[] = {1, 2, 3, 5, 40};
        for (size_t a = 0; a < 5; a++)
            for (size_t b = 0; b < 5; b++) {
                split_plan *p = plan_opts(dir, "*.csv.gz", nparts[b], sizes[a], NULL);
                check_layout(p);
                ck_assert_int_eq(split_plan_segment_count(p), NTRICKY); /* whole files */
                char *got = read_plan(p, &OPTS[o], &n2, &e2);
                strip_gz(got);
                /* error messages name the path: drop the directories */
                char *g = got, *r = ref;
                for (char *q; (q = strstr(g, dir)) != NULL;)
                    memmove(q, q + strlen(dir), strlen(q + strlen(dir)) + 1);
                for (char *q; (q = strstr(r, plain)) != NULL;)
                    memmove(q, q + strlen(plain), strlen(q + strlen(plain)) + 1);
                ck_assert_msg(strcmp(got, ref) == 0,
                              "opts %d split %lld nparts %d:\n--- got\n%s--- want\n%s", o,
                              (long long)sizes[a], nparts[b], got, ref);
                ck_assert_int_eq(n2, nrec);
                ck_assert_int_eq(e2, nerr);
                free(got);
                split_plan_free(p);
            }
        free(ref);
    }
    /* headers through the inflater: BOM dropped, CRLF inside a quoted name */
    char path[4200], err[PC_ERRLEN];
    csv_header h;
    snprintf(path, sizeof path, "%s/g.csv.gz", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(h.ncols, 2);
    ck_assert_str_eq(h.names[0], "x\r\ny");
    csv_header_free(&h);
    const char *bom = "\xEF\xBB\xBFid,v\n1,2\n";
    write_gz(dir, "bom.csv.gz", bom, strlen(bom), 2);
    snprintf(path, sizeof path, "%s/bom.csv.gz", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(csv_header_find(&h, "id"), 0);
    csv_header_free(&h);
    rm_rf(plain);
    rm_rf(dir);
}
END_TEST

/* Plain and compressed files in one plan: every split size with 1, 2 and 4 counting
 * parts, and a part boundary at every byte. */
START_TEST(test_gz_mixed_plan)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_tricky_as(dir, 0x55); /* a, c, e, g compressed */
    int64_t nrec, nerr, n2, e2;
    split_plan *one = plan_opts(dir, "*", 1, 0, NULL);
    int64_t total = split_plan_total_size(one);
    char *ref = read_plan(one, &OPTS[0], &nrec, &nerr);
    split_plan_free(one);
    ck_assert_int_eq(nrec, 18); /* as test_split_reference_sane */
    ck_assert_int_eq(nerr, 3);
    for (int64_t S = 1; S <= total + 1; S++) {
        const int nparts[] = {1, 2, 4};
        for (size_t k = 0; k < 3; k++) {
            if (S > 16 && S % 3 != (int64_t)k) continue; /* valgrind's time */
            split_plan *p = plan_opts(dir, "*", nparts[k], S, NULL);
            check_layout(p);
            char *got = read_plan(p, &OPTS[S % 3 == 0 ? 2 : 0], &n2, &e2);
            ck_assert_msg(strcmp(got, ref) == 0, "split %lld nparts %d:\n--- got\n%s--- want\n%s",
                          (long long)S, nparts[k], got, ref);
            free(got);
            split_plan_free(p);
        }
    }
    for (int64_t cut = 0; cut <= total; cut++) {
        split_plan *p = plan_opts(dir, "*", 2, 1 + cut % 5, &cut);
        check_layout(p);
        char *got = read_plan(p, &OPTS[0], &n2, &e2);
        ck_assert_msg(strcmp(got, ref) == 0, "cut %lld", (long long)cut);
        free(got);
        split_plan_free(p);
    }
    free(ref);
    rm_rf(dir);
}
END_TEST

/* Reads path (one whole segment) until the end or an error that is not PC_ERR_DATA and
 * returns the status; err holds the message and *last the line of the last record. Lines
 * must increase; with exact, every record must be good and record i on line i + 2 (after
 * the header). Corrupt deflate data may inflate to garbage rows before zlib notices (at
 * the latest at the member's CRC): such a file fails the job, but not before its end. */
static pc_status read_until_error(const char *path, const csv_reader_options *opts, bool exact,
                                  int64_t *last, char *err, size_t errlen)
{
    split_segment seg = {.file = 0, .start = 0, .end = 1, .line_at_start = 1};
    csv_reader *r;
    pc_status st = csv_reader_open_opts(path, &seg, opts, &r, err, errlen);
    if (st != PC_OK) return st;
    *last = 0;
    for (int64_t i = 0;; i++) {
        csv_record rec;
        bool eof;
        st = csv_reader_next(r, &rec, &eof, err, errlen);
        if (st == PC_ERR_DATA && !exact) {
            ck_assert_int_gt(rec.line, *last);
            *last = rec.line;
            continue;
        }
        if (st != PC_OK || eof) break;
        if (exact) {
            ck_assert_int_eq(rec.line, i + 2);
            ck_assert_int_eq(rec.nfields, 2);
        }
        ck_assert_int_gt(rec.line, *last);
        *last = rec.line;
    }
    if (st != PC_OK) {
        /* the reader is unusable: the error repeats */
        char again[PC_ERRLEN];
        csv_record rec;
        bool eof;
        ck_assert_int_eq(csv_reader_next(r, &rec, &eof, again, sizeof again), st);
    }
    csv_reader_close(r);
    return st;
}

/* Truncated and corrupt .gz files fail with PC_ERR_IO naming the file and the line reached,
 * whatever the damage and the buffer sizes; never a crash, never rows silently dropped. */
START_TEST(test_gz_damaged)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    sbuf body = {0};
    sb_printf(&body, "id,v\n");
    uint64_t s = 99;
    for (int i = 0; i < 8000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        sb_printf(&body, "u%d,%llu\n", i, (unsigned long long)(s % 1000000));
    }
    write_gz(dir, "good.csv.gz", body.s, body.len, 1);
    snprintf(path, sizeof path, "%s/good.csv.gz", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *gz = malloc(1 << 20);
    ck_assert_ptr_nonnull(gz);
    size_t gzlen = fread(gz, 1, 1 << 20, f);
    fclose(f);
    ck_assert_uint_gt(gzlen, 20000);
    ck_assert_uint_lt(gzlen, 1 << 20);
    int64_t last;
    ck_assert_msg(read_until_error(path, NULL, true, &last, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(last, 8001);

    typedef struct damage {
        const char *name, *want;
        size_t keep;     /* bytes of the good file kept */
        long flip;       /* byte to invert, or -1 */
        const char *tail; /* bytes appended */
        size_t tail_len;
    } damage;
    const damage cases[] = {
        {"half.csv.gz", "truncated", gzlen / 2, -1, "", 0},
        {"notrailer.csv.gz", "truncated", gzlen - 8, -1, "", 0},
        {"onebyte.csv.gz", "truncated", gzlen - 1, -1, "", 0},
        {"header.csv.gz", "truncated", 10, -1, "", 0},
        {"magic.csv.gz", "truncated", 1, -1, "", 0},
        {"mid.csv.gz", "corrupt", gzlen, (long)gzlen / 2, "", 0},
        {"crc.csv.gz", "corrupt", gzlen, (long)gzlen - 6, "", 0},
        {"size.csv.gz", "corrupt", gzlen, (long)gzlen - 2, "", 0},
        {"first.csv.gz", "corrupt", gzlen, 0, "", 0},
        {"garbage.csv.gz", "corrupt", gzlen, -1, "trailing garbage", 16},
        {"zeros.csv.gz", "corrupt", gzlen, -1, "\0\0\0\0", 4}, /* gzip(1) would pass it */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const damage *d = &cases[c];
        unsigned char *b = malloc(d->keep + 32);
        ck_assert_ptr_nonnull(b);
        memcpy(b, gz, d->keep);
        if (d->flip >= 0) b[d->flip] ^= 0xff;
        size_t n = d->keep;
        memcpy(b + n, d->tail, d->tail_len);
        n += d->tail_len;
        write_bytes(dir, d->name, (const char *)b, n);
        free(b);
        snprintf(path, sizeof path, "%s/%s", dir, d->name);
        for (int o = 0; o < 3; o++) {
            const csv_reader_options opts[] = {{0, 0}, {7, 0}, {1000, 0}};
            pc_status st = read_until_error(path, &opts[o], d->want[0] == 't', &last, err, sizeof err);
            ck_assert_msg(st == PC_ERR_IO, "%s opts %d: status %d: %s", d->name, o, st, err);
            ck_assert_msg(strstr(err, d->want) != NULL, "%s: %s", d->name, err);
            /* "PATH:LINE: ...", LINE at or after the last good record */
            ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
                          "%s", err);
            long long line = strtoll(err + strlen(path) + 1, NULL, 10);
            ck_assert_msg(line >= 1 && line >= last, "%s: line %lld, last record %lld", err,
                          line, (long long)last);
            if (d->keep == gzlen / 2) ck_assert_int_gt(last, 1000); /* rows before it read */
            if (d->keep == gzlen / 2 && o == 0) ck_assert_int_lt(last, 8000);
            if (getenv("SHOW_GZ_ERRORS") && o == 0) fprintf(stderr, "%s\n", err);
        }
        /* the plan reads nothing (it stats); the header read fails too unless the damage
         * is past the header's bytes */
        csv_header h;
        pc_status st = csv_read_header(path, &h, err, sizeof err);
        ck_assert_msg(st == PC_OK || st == PC_ERR_IO, "%s", err);
        if (st == PC_OK) {
            ck_assert_int_eq(h.ncols, 2);
            csv_header_free(&h);
        } else {
            ck_assert_msg(strstr(err, d->name) != NULL, "%s", err);
        }
    }
    /* not gzip at all */
    write_str(dir, "plain.csv.gz", "id,v\n1,2\n");
    snprintf(path, sizeof path, "%s/plain.csv.gz", dir);
    ck_assert_int_eq(read_until_error(path, NULL, true, &last, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, "plain.csv.gz:1: corrupt gzip data") != NULL, "%s", err);
    free(gz);
    free(body.s);
    rm_rf(dir);
}
END_TEST

/* Empty compressed files: a gzip stream of no bytes is a segment with no records; a
 * zero-byte .gz gets no segment (as any empty file) and reads as empty; header only. */
START_TEST(test_gz_empty)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    write_gz(dir, "a.csv.gz", "", 0, 1);
    write_bytes(dir, "b.csv.gz", "", 0);
    write_gz(dir, "c.csv.gz", "h1,h2\n", 6, 2);
    write_gz(dir, "d.csv.gz", "", 0, 3); /* three empty members */
    split_plan *p = plan_opts(dir, "*.gz", 2, 1, NULL);
    check_layout(p);
    ck_assert_int_eq(split_plan_file_count(p), 4);
    ck_assert_int_eq(split_plan_segment_count(p), 3);
    int64_t nrec, nerr;
    char *got = read_plan(p, NULL, &nrec, &nerr);
    ck_assert_str_eq(got, "");
    ck_assert_int_eq(nrec + nerr, 0);
    free(got);
    split_plan_free(p);
    const char *names[] = {"a.csv.gz", "b.csv.gz", "d.csv.gz"};
    for (int i = 0; i < 3; i++) {
        csv_header h;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
        ck_assert_int_eq(h.ncols, 0);
        split_segment seg = {.file = 0, .start = 0, .end = 1, .line_at_start = 1};
        csv_reader *r;
        ck_assert_int_eq(csv_reader_open(path, &seg, &r, err, sizeof err), PC_OK);
        expect_eof(r);
        csv_reader_close(r);
    }
    csv_header h;
    snprintf(path, sizeof path, "%s/c.csv.gz", dir);
    ck_assert_msg(csv_read_header(path, &h, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(h.ncols, 2);
    ck_assert_str_eq(h.names[1], "h2");
    csv_header_free(&h);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- glob */

START_TEST(test_glob)
{
    char dir[4096], sub[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "mapper");
    /* base_dir with glob characters in its name: they are taken literally */
    snprintf(sub, sizeof sub, "%s/in[1]*", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_str(sub, "b.csv", "x\n");
    write_str(sub, "a.csv", "x\n1\n");
    write_str(sub, "c10.csv", "x\n");
    write_str(sub, "c2.csv", "x\n");
    write_str(sub, "notes.txt", "x\n");
    char subdir[4300];
    snprintf(subdir, sizeof subdir, "%s/dir.csv", sub);
    ck_assert_int_eq(mkdir(subdir, 0700), 0); /* a directory matching *.csv: not a file */

    split_plan *p;
    const char *pats[] = {"c*.csv", "*.csv", "a.csv", "./a.csv"};
    ck_assert_msg(split_plan_create(pats, 4, sub, 2, &p, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(split_plan_file_count(p), 4); /* sorted, each once */
    /* "./a.csv" is a.csv again (same inode); it sorts first, so it is the one kept */
    const char *want[] = {"./a.csv", "b.csv", "c10.csv", "c2.csv"};
    for (int i = 0; i < 4; i++) {
        char w[4400];
        snprintf(w, sizeof w, "%s/%s", sub, want[i]);
        ck_assert_str_eq(split_plan_file_path(p, i), w);
    }
    ck_assert_int_eq(split_plan_file_size(p, 0), 4);
    ck_assert_int_eq(split_plan_total_size(p), 10);
    split_plan_free(p);

    /* absolute patterns ignore base_dir */
    char abs[4400];
    snprintf(abs, sizeof abs, "%s/in?1?\\*/b.csv", dir);
    const char *apats[] = {abs};
    ck_assert_msg(split_plan_create(apats, 1, "/nonexistent", 1, &p, err, sizeof err) == PC_OK,
                  "%s", err);
    ck_assert_int_eq(split_plan_file_count(p), 1);
    split_plan_free(p);

    /* no match -> NOINPUT naming the pattern; a directory alone is no match */
    const char *none[] = {"*.csv", "*.parquet"};
    p = (split_plan *)1;
    ck_assert_int_eq(split_plan_create(none, 2, sub, 1, &p, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "'*.parquet'") != NULL, "%s", err);
    const char *dirs[] = {"dir.*"};
    ck_assert_int_eq(split_plan_create(dirs, 1, sub, 1, &p, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_int_eq(split_plan_create(none, 0, sub, 1, &p, err, sizeof err), PC_ERR_NOINPUT);
    /* relative pattern without base_dir is relative to the working directory */
    const char *rel[] = {"a.csv"};
    ck_assert_int_eq(split_plan_create(rel, 1, NULL, 1, &p, err, sizeof err), PC_ERR_NOINPUT);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- parse_float */

static void check_like_strtof(const char *s)
{
    char err[PC_ERRLEN];
    char *end;
    errno = 0;
    float want = strtof(s, &end);
    float got = 12345.0f;
    pc_status st = parse_float(s, strlen(s), &got, err, sizeof err);
    if (!isfinite(want)) {
        ck_assert_msg(st == PC_ERR_DATA, "'%s' overflows but was accepted as %a", s, got);
        return;
    }
    ck_assert_msg(st == PC_OK, "'%s': %s", s, err);
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "'%s': got %a want %a", s, got, want);
}

START_TEST(test_parse_float_fixed)
{
    const char *ok[] = {
        "0", "-0", "+0", "0.0", "00000", "1", "-1", "1.5", ".5", "5.", "-.5", "1e3", "1E3",
        "1e+3", "1e-3", "  2.5  ", "\t7\t", "3.14159265358979", "16777216", "16777217",
        "16777218", "1.6777217e7", "33554431", "3.4028235e38", "3.40282346e38",
        "3.4028235677973366e38", "1.17549435e-38", "1.4e-45", "1e-45", "7e-46", "1e-50",
        "0.000000000000000000000000000000000000000000001401298464324817",
        "0.1", "0.2", "0.3", "9999999", "9999999e10", "9999999e-10", "1234567e-10",
        "0.0000000001", "1e10", "1e11", "123456789012345678901234567890",
        "0.00000000000000000000000000000000000000000000000000000000000000000123e60",
        "1.00000005960464477539062499999999999999999999999999999999999999999999999999999"
        "999999999999999999999999999999999999999999999999999999999999999999999999999999"
        "9999999999999999999999999999999999999999999999999999999999999999999999999999",
        "1.0000000596046447753906250000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000000000001",
        "1e-99999999999", "0e99999999999", "-4.2e-07", "100000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) check_like_strtof(ok[i]);
}
END_TEST

START_TEST(test_parse_float_rejects)
{
    const char *bad[] = {"", " ", "nan", "NaN", "inf", "-inf", "infinity", "1e", "1e+",
                         "1.2.3", "abc", "0x10", "1,5", "--1", "+-1", ".", "+", "-", "e5",
                         "1e39", "-1e39", "3.4028236e38", "1 2", "1f", "1e5x", "1e99999999999",
                         "\"1\"", "1_000"};
    char err[PC_ERRLEN];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float f = 42.0f;
        ck_assert_msg(parse_float(bad[i], strlen(bad[i]), &f, err, sizeof err) == PC_ERR_DATA,
                      "'%s' accepted as %a", bad[i], f);
        ck_assert_msg(f == 42.0f, "'%s': *out changed on failure", bad[i]);
    }
    ck_assert_int_eq(parse_float("abc", 3, &(float){0}, err, sizeof err), PC_ERR_DATA);
    ck_assert_str_eq(err, "not a number: 'abc'");
    /* only len bytes are looked at */
    float f;
    ck_assert_int_eq(parse_float("12junk", 2, &f, err, sizeof err), PC_OK);
    ck_assert(f == 12.0f);
}
END_TEST

START_TEST(test_parse_float_random)
{
    uint64_t s = 0x9E3779B97F4A7C15u;
#define NEXT() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    char buf[128];
    int fast = 0;
    for (int it = 0; it < 80000; it++) {
        int nd = 1 + (int)(NEXT() % (it % 3 ? 9 : 20));
        int point = (int)(NEXT() % (uint64_t)(nd + 2)) - 1;
        int n = 0;
        if (NEXT() % 2) buf[n++] = '-';
        for (int i = 0; i < nd; i++) {
            if (i == point) buf[n++] = '.';
            buf[n++] = (char)('0' + NEXT() % 10);
        }
        if (NEXT() % 3) {
            int e = (int)(NEXT() % (it % 2 ? 25 : 90)) - (it % 2 ? 12 : 50);
            n += snprintf(buf + n, sizeof buf - (size_t)n, "e%d", e);
        }
        buf[n] = '\0';
        fast += nd <= 7;
        check_like_strtof(buf);
    }
    /* floats printed with 9 digits come back exactly, and so do their neighbours */
    for (int it = 0; it < 40000; it++) {
        uint32_t bits = (uint32_t)NEXT();
        float x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        snprintf(buf, sizeof buf, "%.9g", x);
        check_like_strtof(buf);
        snprintf(buf, sizeof buf, "%.8e", (double)x);
        check_like_strtof(buf);
        /* midpoints between x and its neighbour: round-half-even must match strtof */
        snprintf(buf, sizeof buf, "%.17g", ((double)x + (double)nextafterf(x, INFINITY)) / 2);
        check_like_strtof(buf);
    }
    ck_assert_int_gt(fast, 1000);
#undef NEXT
}
END_TEST

START_TEST(test_parse_float_locale)
{
    /* Under a locale whose decimal mark is ',' the result must not change. The test needs
     * such a locale installed; without one it checks the C locale only. */
    const char *names[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "ru_RU.UTF-8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (setlocale(LC_NUMERIC, names[i]) != NULL) break;
    char err[PC_ERRLEN];
    float f = 0;
    ck_assert_int_eq(parse_float("1.25", 4, &f, err, sizeof err), PC_OK);
    ck_assert(f == 1.25f);
    ck_assert_int_eq(parse_float("1.234567891e-3", 14, &f, err, sizeof err), PC_OK);
    ck_assert(f == 1.234567891e-3f);
    ck_assert_int_eq(parse_float("1,25", 4, &f, err, sizeof err), PC_ERR_DATA);
    setlocale(LC_NUMERIC, "C");
}
END_TEST

static Suite *mapper_suite(void)
{
    Suite *s = suite_create("mapper");
    TCase *tc = tcase_create("csv");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_csv_quoting);
    tcase_add_test(tc, test_csv_raw_and_fields);
    tcase_add_test(tc, test_csv_many_fields);
    tcase_add_test(tc, test_csv_malformed_consumed);
    tcase_add_test(tc, test_csv_unterminated_line);
    tcase_add_test(tc, test_csv_record_too_long);
    tcase_add_test(tc, test_csv_default_limits);
    tcase_add_test(tc, test_csv_header);
    tcase_add_test(tc, test_csv_float_columns);
    suite_add_tcase(s, tc);

    tc = tcase_create("split");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_split_reference_sane);
    tcase_add_test(tc, test_split_nparts);
    tcase_add_test(tc, test_split_every_cut);
    tcase_add_test(tc, test_split_random_cuts);
    tcase_add_test(tc, test_split_segments_layout);
    tcase_add_test(tc, test_split_count_file_changed);
    tcase_add_test(tc, test_split_count_random);
    tcase_add_test(tc, test_glob);
    tcase_add_test(tc, test_split_bytes_layout);
    tcase_add_test(tc, test_split_segments_per_part);
    tcase_add_test(tc, test_split_bytes_every_size);
    tcase_add_test(tc, test_split_bytes_random);
    suite_add_tcase(s, tc);

    tc = tcase_create("compressed");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_source_bytes);
    tcase_add_test(tc, test_gz_csv_like_plain);
    tcase_add_test(tc, test_gz_mixed_plan);
    tcase_add_test(tc, test_gz_damaged);
    tcase_add_test(tc, test_gz_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("numparse");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_parse_float_fixed);
    tcase_add_test(tc, test_parse_float_rejects);
    tcase_add_test(tc, test_parse_float_random);
    tcase_add_test(tc, test_parse_float_locale);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mapper_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
