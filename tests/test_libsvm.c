/* Unit tests of mapper/libsvm: the LIBSVM / svmlight sparse row reader.
 *
 * Round trips of hand-written files (comments, blank lines, CRLF, 0- and 1-based indices,
 * rows without pairs, long rows straddling refills of tiny buffers), every malformed-row
 * error with its line number and the row after it still read, and the split property: for
 * any way of cutting the inputs into parts, reading every part's segments and concatenating
 * the rows gives exactly what one part reads — same rows, same errors, same line numbers,
 * each once — also with segments of any size from 1 byte up, and with .gz files (written
 * here with zlib, in several gzip members), alone or mixed with plain ones. Truncated and
 * corrupt .gz files fail with PC_ERR_IO naming the file and line. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mapper/libsvm.h"
#include "mapper/split.h"
#include "tests/test_files.h"

/* ---------------------------------------------------------------- reader helpers */

static libsvm_reader *open_whole(const char *path, size_t size, const libsvm_options *o)
{
    char err[PC_ERRLEN];
    split_segment seg = {.file = 0, .start = 0, .end = (int64_t)size, .line_at_start = 1};
    libsvm_reader *r = NULL;
    ck_assert_msg(libsvm_reader_open(path, &seg, o, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* The next row must be good: id, line, and pairs "i:v i:v" (values compared exactly). */
static void expect_row(libsvm_reader *r, int64_t line, const char *id, int64_t nnz,
                       const int32_t *idx, const float *vals)
{
    char err[PC_ERRLEN];
    libsvm_record rec;
    bool eof = true;
    ck_assert_msg(libsvm_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "line %lld: %s",
                  (long long)line, err);
    ck_assert(!eof);
    ck_assert_int_eq(rec.line, line);
    ck_assert_str_eq(rec.id, id);
    ck_assert_uint_eq(rec.id_len, strlen(id));
    ck_assert_int_eq(rec.nnz, nnz);
    for (int64_t k = 0; k < nnz; k++) {
        ck_assert_int_eq(rec.idx[k], idx[k]);
        ck_assert_msg(rec.vals[k] == vals[k], "line %lld pair %lld: %.9g != %.9g",
                      (long long)line, (long long)k, (double)rec.vals[k], (double)vals[k]);
    }
}

/* The next row must be a PC_ERR_DATA whose message contains want, at line. */
static void expect_error(libsvm_reader *r, const char *want, int64_t line)
{
    char err[PC_ERRLEN];
    libsvm_record rec;
    bool eof = false;
    pc_status st = libsvm_reader_next(r, &rec, &eof, err, sizeof err);
    ck_assert_msg(st == PC_ERR_DATA, "want an error '%s' at line %lld, got status %d", want,
                  (long long)line, st);
    ck_assert_msg(strstr(err, want) != NULL, "'%s' does not contain '%s'", err, want);
    ck_assert_int_eq(rec.line, line);
    ck_assert_int_eq(rec.nnz, 0);
}

static void expect_eof(libsvm_reader *r)
{
    char err[PC_ERRLEN];
    libsvm_record rec;
    bool eof = false;
    ck_assert_msg(libsvm_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
    ck_assert(eof);
}

/* ---------------------------------------------------------------- round trips */

/* 0-based: comments (whole-line, trailing, glued to a pair), blank and whitespace-only
 * lines, CRLF, tabs, leading spaces, a BOM, rows without pairs, no final newline. */
static const char R0[] =
    "\xEF\xBB\xBFu1 0:1.5 3:-2 10:0.25\n"     /* 1 */
    "# a comment line\n"                      /* 2 */
    "\n"                                      /* 3 */
    "u2\r\n"                                  /* 4: nnz 0, CRLF */
    "  \t u3\t2:1e3   5:7 # trailing\r\n"     /* 5 */
    "   \r\n"                                 /* 6: whitespace only */
    "u\"4 0:0 1:+3.0#glued\n"                 /* 7: a quote in an id is an ordinary byte */
    "u5 #only a comment after the id\n"       /* 8: nnz 0 */
    "u6 99:1e-3";                             /* 9: no final newline */

START_TEST(test_libsvm_round_trip)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_str(dir, "r0.svm", R0);
    snprintf(path, sizeof path, "%s/r0.svm", dir);
    static const size_t buffers[] = {0, 1, 2, 3, 7, 64};
    for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++) {
        libsvm_options o = {.one_based = false, .width = 100, .buffer_size = buffers[b]};
        libsvm_reader *r = open_whole(path, sizeof R0 - 1, &o);
        expect_row(r, 1, "u1", 3, (int32_t[]){0, 3, 10}, (float[]){1.5f, -2.f, 0.25f});
        expect_row(r, 4, "u2", 0, NULL, NULL);
        expect_row(r, 5, "u3", 2, (int32_t[]){2, 5}, (float[]){1e3f, 7.f});
        expect_row(r, 7, "u\"4", 2, (int32_t[]){0, 1}, (float[]){0.f, 3.f});
        expect_row(r, 8, "u5", 0, NULL, NULL);
        expect_row(r, 9, "u6", 1, (int32_t[]){99}, (float[]){1e-3f});
        expect_eof(r);
        expect_eof(r); /* and stays at eof */
        libsvm_reader_close(r);
    }
    /* offsets and raw bytes: the line as in the file, without "\n" or "\r\n" */
    libsvm_options o = {.width = 100, .buffer_size = 5};
    libsvm_reader *r = open_whole(path, sizeof R0 - 1, &o);
    static const int64_t lines[] = {1, 4, 5, 7, 8, 9};
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
        libsvm_record rec;
        bool eof;
        ck_assert_msg(libsvm_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
        ck_assert_int_eq(rec.line, lines[k]);
        int64_t nl = 1, off = 0; /* offset of line lines[k], counted from the text */
        while (nl < lines[k]) nl += R0[off++] == '\n';
        ck_assert_int_eq(rec.offset, off);
        ck_assert(memcmp(rec.raw, R0 + off, rec.raw_len) == 0);
        char after = R0[off + (int64_t)rec.raw_len];
        ck_assert(after == '\r' || after == '\n' || after == '\0');
        ck_assert(rec.raw_len == 0 || rec.raw[rec.raw_len - 1] != '\r');
    }
    expect_eof(r);
    libsvm_reader_close(r);

    /* empty file and comment-only file: no rows */
    write_str(dir, "e.svm", "");
    snprintf(path, sizeof path, "%s/e.svm", dir);
    r = open_whole(path, 0, &o);
    expect_eof(r);
    libsvm_reader_close(r);
    write_str(dir, "c.svm", "# nothing\n\n  # here\r\n");
    snprintf(path, sizeof path, "%s/c.svm", dir);
    r = open_whole(path, 22, &o);
    expect_eof(r);
    libsvm_reader_close(r);
    rm_rf(dir);
}
END_TEST

/* 1-based: indices converted to 0-based; index == width is the last feature. */
START_TEST(test_libsvm_one_based)
{
    char dir[4096], path[4200], want[4400];
    make_tmpdir(dir, sizeof dir, "libsvm");
    static const char data[] =
        "a 1:1 2:2 784:3\n"   /* 1 */
        "b 0:1 2:2\n"         /* 2: 0 in a 1-based file */
        "c 785:1\n"           /* 3: beyond width */
        "d\n"                 /* 4 */
        "e 5:0.5 6:-0.5\n";   /* 5 */
    write_str(dir, "one.svm", data);
    snprintf(path, sizeof path, "%s/one.svm", dir);
    libsvm_options o = {.one_based = true, .width = 784};
    libsvm_reader *r = open_whole(path, sizeof data - 1, &o);
    expect_row(r, 1, "a", 3, (int32_t[]){0, 1, 783}, (float[]){1.f, 2.f, 3.f});
    snprintf(want, sizeof want, "%s:2: bad index (0 in a 1-based file) in '0:1'", path);
    expect_error(r, want, 2);
    snprintf(want, sizeof want,
             "%s:3: bad index (the model takes 784 features: at most 784) in '785:1'", path);
    expect_error(r, want, 3);
    expect_row(r, 4, "d", 0, NULL, NULL);
    expect_row(r, 5, "e", 2, (int32_t[]){4, 5}, (float[]){0.5f, -0.5f});
    expect_eof(r);
    libsvm_reader_close(r);

    /* the same file 0-based: 0 is fine, 784 is beyond a width of 784 */
    o.one_based = false;
    r = open_whole(path, sizeof data - 1, &o);
    snprintf(want, sizeof want,
             "%s:1: bad index (the model takes 784 features: at most 783) in '784:3'", path);
    expect_error(r, want, 1);
    expect_row(r, 2, "b", 2, (int32_t[]){0, 2}, (float[]){1.f, 2.f});
    expect_error(r, "in '785:1'", 3);
    expect_row(r, 4, "d", 0, NULL, NULL);
    expect_row(r, 5, "e", 2, (int32_t[]){5, 6}, (float[]){0.5f, -0.5f});
    expect_eof(r);
    libsvm_reader_close(r);
    rm_rf(dir);
}
END_TEST

/* Every malformed-row error: message with path and line, the row consumed, id and raw bytes
 * still given, and the next row read. */
START_TEST(test_libsvm_errors)
{
    char dir[4096], path[4200], want[4400], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "libsvm");
    static const char data[] =
        "ok1 1:1\n"                          /* 1 */
        "x1 1:1 2 3:3\n"                     /* 2: pair without ':' */
        "x2 a:1\n"                           /* 3: index not an integer */
        "x3 :1\n"                            /* 4: empty index */
        "x4 1.5:2\n"                         /* 5 */
        "x5 -3:1\n"                          /* 6: negative */
        "x6 99999999999999999999999:1\n"     /* 7: huge */
        "x7 2147483648:1\n"                  /* 8: 2^31 */
        "x8 3:abc\n"                         /* 9: bad value */
        "x9 3:\n"                            /* 10: empty value */
        "x10 3:nan\n"                        /* 11 */
        "x11 3:1e39\n"                       /* 12: beyond float32 */
        "x12 3:1 3:2\n"                      /* 13: duplicate */
        "x13 1:1 5:1 4:1\n"                  /* 14: descending */
        "x14 +1:1\n"                         /* 15: a sign is not part of an index */
        "x15 1:2:3\n"                        /* 16: a value with a ':' */
        "ok2 0:1 7:2\n";                     /* 17 */
    write_str(dir, "bad.svm", data);
    snprintf(path, sizeof path, "%s/bad.svm", dir);
    for (size_t buffer = 0; buffer <= 4; buffer += 4) {
        libsvm_options o = {.width = 10, .buffer_size = buffer};
        libsvm_reader *r = open_whole(path, sizeof data - 1, &o);
        expect_row(r, 1, "ok1", 1, (int32_t[]){1}, (float[]){1.f});
        snprintf(want, sizeof want, "%s:2: no ':' in '2'", path);
        expect_error(r, want, 2);
        snprintf(want, sizeof want, "%s:3: bad index (not an integer) in 'a:1'", path);
        expect_error(r, want, 3);
        expect_error(r, "bad index (not an integer) in ':1'", 4);
        expect_error(r, "bad index (not an integer) in '1.5:2'", 5);
        snprintf(want, sizeof want, "%s:6: bad index (negative) in '-3:1'", path);
        expect_error(r, want, 6);
        expect_error(r, "bad index (the model takes 10 features: at most 9) in "
                        "'99999999999999999999999:1'", 7);
        expect_error(r, "at most 9) in '2147483648:1'", 8);
        snprintf(want, sizeof want, "%s:9: bad value (not a number: 'abc') in '3:abc'", path);
        expect_error(r, want, 9);
        expect_error(r, "bad value (not a number: '') in '3:'", 10);
        expect_error(r, "bad value (not a number: 'nan') in '3:nan'", 11);
        expect_error(r, "bad value (number out of float32 range: '1e39') in '3:1e39'", 12);
        snprintf(want, sizeof want,
                 "%s:13: duplicate index (after 3): indices must be strictly ascending in '3:2'",
                 path);
        expect_error(r, want, 13);
        expect_error(r, "descending index (after 5): indices must be strictly ascending in '4:1'",
                     14);
        expect_error(r, "bad index (not an integer) in '+1:1'", 15);
        expect_error(r, "bad value (not a number: '2:3') in '1:2:3'", 16);
        expect_row(r, 17, "ok2", 2, (int32_t[]){0, 7}, (float[]){1.f, 2.f});
        expect_eof(r);
        libsvm_reader_close(r);
    }

    /* the failed row's id, offset and raw bytes are given (for a rejects file) */
    libsvm_options o = {.width = 10};
    libsvm_reader *r = open_whole(path, sizeof data - 1, &o);
    libsvm_record rec;
    bool eof;
    ck_assert_int_eq(libsvm_reader_next(r, &rec, &eof, err, sizeof err), PC_OK);
    ck_assert_int_eq(libsvm_reader_next(r, &rec, &eof, err, sizeof err), PC_ERR_DATA);
    ck_assert_str_eq(rec.id, "x1");
    ck_assert_uint_eq(rec.id_len, 2);
    ck_assert_int_eq(rec.offset, 8);
    ck_assert_uint_eq(rec.raw_len, strlen("x1 1:1 2 3:3"));
    ck_assert(memcmp(rec.raw, "x1 1:1 2 3:3", rec.raw_len) == 0);
    libsvm_reader_close(r);

    /* long pairs are shortened in messages */
    write_str(dir, "longpair.svm",
              "z 1:123456789012345678901234567890123456789012345678901234567890x\n");
    snprintf(path, sizeof path, "%s/longpair.svm", dir);
    r = open_whole(path, 100, &o);
    expect_error(r, "in '1:12345678901234567890123456789012345678...'", 1);
    expect_eof(r);
    libsvm_reader_close(r);
    rm_rf(dir);
}
END_TEST

/* Long rows of random pairs written with %.9g (which round-trips float32), read back exact,
 * with buffers from 1 byte (a refill per byte) to the default. */
START_TEST(test_libsvm_long_rows)
{
    char dir[4096], path[4200];
    make_tmpdir(dir, sizeof dir, "libsvm");
    enum { NROWS = 40, WIDTH = 100000 };
    static int32_t idx[NROWS][3000];
    static float vals[NROWS][3000];
    static int64_t nnz[NROWS];
    sbuf file = {0};
    uint64_t s = 12345;
#define NEXT() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    for (int i = 0; i < NROWS; i++) {
        nnz[i] = (int64_t)(NEXT() % 3000);
        if (i % 7 == 0) nnz[i] = 0;
        int32_t at = -1;
        sb_printf(&file, "row%d", i);
        for (int64_t k = 0; k < nnz[i]; k++) {
            at += 1 + (int32_t)(NEXT() % 30);
            idx[i][k] = at;
            uint32_t bits = (uint32_t)NEXT();
            float f = (float)((double)(bits % 2000000) / 1000.0 - 1000.0);
            if (k % 5 == 0) f *= 1e-20f;
            vals[i][k] = f;
            sb_printf(&file, "%s%d:%.9g", k % 3 ? " " : "\t", at + 1, (double)f);
        }
        ck_assert_int_lt(at, WIDTH);
        sb_add(&file, i % 2 ? "\r\n" : "\n", i % 2 ? 2 : 1);
    }
#undef NEXT
    write_bytes(dir, "long.svm", file.s, file.len);
    snprintf(path, sizeof path, "%s/long.svm", dir);
    static const size_t buffers[] = {1, 13, 4096, 0};
    for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++) {
        libsvm_options o = {.one_based = true, .width = WIDTH, .buffer_size = buffers[b]};
        libsvm_reader *r = open_whole(path, file.len, &o);
        for (int i = 0; i < NROWS; i++) {
            char id[32];
            snprintf(id, sizeof id, "row%d", i);
            expect_row(r, i + 1, id, nnz[i], idx[i], vals[i]);
        }
        expect_eof(r);
        libsvm_reader_close(r);
    }
    free(file.s);
    rm_rf(dir);
}
END_TEST

START_TEST(test_libsvm_too_long)
{
    char dir[4096], path[4200], want[4400];
    make_tmpdir(dir, sizeof dir, "libsvm");
    /* max_record = 10 bytes, terminator included */
    write_str(dir, "l.svm",
              "abc 1:234\n"      /* 1: exactly 10 bytes: fine */
              "abcd 1:234\n"     /* 2: 11 bytes */
              "b 1:1 2:2 3:3 4:4 5:5\n" /* 3 */
              "c 2:1\n"          /* 4 */
              "d 3:1234567");    /* 5: 11 bytes, at EOF without newline */
    snprintf(path, sizeof path, "%s/l.svm", dir);
    for (size_t buffer = 1; buffer <= 64; buffer *= 4) {
        libsvm_options o = {.width = 10, .max_record = 10, .buffer_size = buffer};
        libsvm_reader *r = open_whole(path, 1000, &o);
        expect_row(r, 1, "abc", 1, (int32_t[]){1}, (float[]){234.f});
        snprintf(want, sizeof want, "%s:2: line longer than 10 bytes", path);
        expect_error(r, want, 2);
        expect_error(r, "line longer than 10 bytes", 3);
        expect_row(r, 4, "c", 1, (int32_t[]){2}, (float[]){1.f});
        expect_error(r, "line longer than 10 bytes", 5);
        expect_eof(r);
        libsvm_reader_close(r);
    }
    /* exactly 10 bytes at end of file, without a newline: fine */
    write_str(dir, "m.svm", "abc 1:2345");
    snprintf(path, sizeof path, "%s/m.svm", dir);
    for (size_t buffer = 1; buffer <= 64; buffer *= 4) {
        libsvm_options o = {.width = 10, .max_record = 10, .buffer_size = buffer};
        libsvm_reader *r = open_whole(path, 1000, &o);
        expect_row(r, 1, "abc", 1, (int32_t[]){1}, (float[]){2345.f});
        expect_eof(r);
        libsvm_reader_close(r);
    }
    rm_rf(dir);
}
END_TEST

/* With the default sizes: a 3 MiB row grows the 1 MiB buffer; a 17 MiB one is refused and
 * skipped, and the row after it is read with the right line number. */
START_TEST(test_libsvm_default_limits)
{
    char dir[4096], path[4200], want[4400];
    make_tmpdir(dir, sizeof dir, "libsvm");
    sbuf file = {0};
    sb_add(&file, "mid", 3);
    int64_t mid_nnz = 0;
    while (file.len < ((size_t)3 << 20)) {
        sb_printf(&file, " %lld:1", (long long)mid_nnz);
        mid_nnz++;
    }
    sb_add(&file, "\nbig 0:", 7);
    size_t at = file.len, big = (size_t)17 << 20;
    sb_add(&file, "", 0);
    while (file.len < at + big) sb_add(&file, "00000000000000000000000000000000", 32);
    sb_add(&file, "1\nlast 1:2\n", 11);
    write_bytes(dir, "big.svm", file.s, file.len);
    snprintf(path, sizeof path, "%s/big.svm", dir);
    libsvm_options o = {.width = 1 << 30};
    libsvm_reader *r = open_whole(path, file.len, &o);
    char err[PC_ERRLEN];
    libsvm_record rec;
    bool eof;
    ck_assert_msg(libsvm_reader_next(r, &rec, &eof, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(rec.nnz, mid_nnz);
    ck_assert_int_eq(rec.idx[mid_nnz - 1], mid_nnz - 1);
    snprintf(want, sizeof want, "%s:2: line longer than 16777216 bytes", path);
    expect_error(r, want, 2);
    expect_row(r, 3, "last", 1, (int32_t[]){1}, (float[]){2.f});
    expect_eof(r);
    libsvm_reader_close(r);
    free(file.s);
    rm_rf(dir);
}
END_TEST

/* Opening: missing file, bad width; reading a directory is an I/O error that sticks. */
START_TEST(test_libsvm_open_and_io_errors)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "libsvm");
    split_segment seg = {.file = 0, .start = 0, .end = 10, .line_at_start = 1};
    libsvm_options o = {.width = 10};
    libsvm_reader *r = (libsvm_reader *)&seg;
    snprintf(path, sizeof path, "%s/missing.svm", dir);
    ck_assert_int_eq(libsvm_reader_open(path, &seg, &o, &r, err, sizeof err), PC_ERR_NOINPUT);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "missing.svm") != NULL, "%s", err);

    write_str(dir, "w.svm", "a 1:1\n");
    snprintf(path, sizeof path, "%s/w.svm", dir);
    int64_t bad_widths[] = {0, -1, ((int64_t)1 << 31) + 1};
    for (size_t k = 0; k < sizeof bad_widths / sizeof bad_widths[0]; k++) {
        o.width = bad_widths[k];
        r = (libsvm_reader *)&seg;
        ck_assert_int_eq(libsvm_reader_open(path, &seg, &o, &r, err, sizeof err), PC_ERR_CONFIG);
        ck_assert_ptr_null(r);
        ck_assert_msg(strstr(err, "width") != NULL, "%s", err);
    }
    /* 2^31 is the widest: index 2^31 - 1 is the largest int32 */
    write_str(dir, "max.svm", "a 2147483647:1\n");
    snprintf(path, sizeof path, "%s/max.svm", dir);
    o.width = (int64_t)1 << 31;
    r = open_whole(path, 100, &o);
    expect_row(r, 1, "a", 1, (int32_t[]){2147483647}, (float[]){1.f});
    expect_eof(r);
    libsvm_reader_close(r);

    /* a directory opens but cannot be read */
    o.width = 10;
    ck_assert_int_eq(libsvm_reader_open(dir, &seg, &o, &r, err, sizeof err), PC_OK);
    libsvm_record rec;
    bool eof;
    ck_assert_int_eq(libsvm_reader_next(r, &rec, &eof, err, sizeof err), PC_ERR_IO);
    ck_assert_msg(strstr(err, dir) != NULL, "%s", err);
    ck_assert_int_eq(libsvm_reader_next(r, &rec, &eof, err, sizeof err), PC_ERR_IO);
    libsvm_reader_close(r);

    /* a segment beyond the end of the file (it shrank since the plan): no rows */
    snprintf(path, sizeof path, "%s/w.svm", dir);
    split_segment late = {.file = 0, .start = 50, .end = 60, .line_at_start = 9};
    ck_assert_int_eq(libsvm_reader_open(path, &late, &o, &r, err, sizeof err), PC_OK);
    expect_eof(r);
    libsvm_reader_close(r);
    libsvm_reader_close(NULL);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- split alignment */

/* What the driver does over MPI, for one process: every part counts its own segments into
 * a zeroed array, the arrays are summed, the sums go back into the plan, then resolve. */
static void count_and_resolve(split_plan *p)
{
    int64_t n = split_plan_segment_count(p);
    split_segment *seg = split_plan_segments(p);
    int64_t *sum = calloc((size_t)(2 * n + 1), sizeof *sum);
    ck_assert_ptr_nonnull(sum);
    for (int part = 0; part < split_plan_part_count(p); part++) {
        for (int64_t i = split_plan_part_first(p, part); i < split_plan_part_first(p, part + 1);
             i++) {
            char err[PC_ERRLEN];
            ck_assert_msg(split_count(p, &seg[i], err, sizeof err) == PC_OK, "%s", err);
            sum[2 * i] += seg[i].quotes;
            sum[2 * i + 1] += seg[i].newlines;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        seg[i].quotes = sum[2 * i];
        seg[i].newlines = sum[2 * i + 1];
    }
    free(sum);
    split_resolve(p);
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

/* Reads all parts of a resolved plan in order; returns the serialised rows and errors.
 * *nrec and *nerr count good rows and PC_ERR_DATA errors. */
static char *read_plan(split_plan *p, const libsvm_options *o, int64_t *nrec, int64_t *nerr)
{
    sbuf out = {0};
    sb_add(&out, "", 0);
    *nrec = *nerr = 0;
    split_segment *seg = split_plan_segments(p);
    for (int part = 0; part < split_plan_part_count(p); part++) {
        for (int64_t i = split_plan_part_first(p, part); i < split_plan_part_first(p, part + 1);
             i++) {
            char err[PC_ERRLEN];
            libsvm_reader *r;
            const char *path = split_plan_file_path(p, seg[i].file);
            ck_assert_msg(libsvm_reader_open(path, &seg[i], o, &r, err, sizeof err) == PC_OK,
                          "%s", err);
            for (;;) {
                libsvm_record rec;
                bool eof;
                pc_status st = libsvm_reader_next(r, &rec, &eof, err, sizeof err);
                if (st == PC_ERR_DATA) {
                    sb_printf(&out, "f%d l%lld o%lld ERROR %s\n", seg[i].file,
                              (long long)rec.line, (long long)rec.offset, err);
                    (*nerr)++;
                    continue;
                }
                ck_assert_msg(st == PC_OK, "%s", err);
                if (eof) break;
                sb_printf(&out, "f%d l%lld o%lld id[%zu]", seg[i].file, (long long)rec.line,
                          (long long)rec.offset, rec.id_len);
                sb_add(&out, rec.id, rec.id_len);
                for (int64_t k = 0; k < rec.nnz; k++)
                    sb_printf(&out, " %d:%.9g", rec.idx[k], (double)rec.vals[k]);
                sb_add(&out, "\n", 1);
                (*nrec)++;
            }
            libsvm_reader_close(r);
        }
    }
    return out.s;
}

/* Small files with everything a cut can land on: CRLFs, comments, blank lines at the start
 * and end, odd quote counts (parity must not matter), errors, no final newline, an empty
 * file, a comment-only file, a one-byte file. */
static const char *const SET[][2] = {
    {"a.svm", R0},
    {"b.svm", ""},
    {"c.svm", "\n\n\"q 1:1\r\n\"\"r\" 2:2 4:4\r\n\r\ns\"\n"},
    {"d.svm", "# only\n# comments\n"},
    {"e.svm", "e1 1:1 1:2\ne2 x\n\ne3 3:3 # c\ne4 -1:1\ne5 2:abc\ne6"},
    {"f.svm", "z"},
    {"g.svm", "g1 0:1 1:2 2:3 3:4 4:5 5:6 6:7 7:8 8:9 9:10\ng2 1:1\n"},
};
#define NSET ((int)(sizeof SET / sizeof SET[0]))

static void write_gz(const char *dir, const char *name, const char *data, size_t len,
                     int members)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    ck_assert_int_eq(fclose(f), 0);
    /* gzopen's "ab" appends a new gzip member each time */
    for (int m = 0; m < members; m++) {
        size_t a = len * (size_t)m / (size_t)members, b = len * (size_t)(m + 1) / (size_t)members;
        gzFile g = gzopen(path, "ab9");
        ck_assert_ptr_nonnull(g);
        if (b > a) ck_assert_int_eq(gzwrite(g, data + a, (unsigned)(b - a)), (int)(b - a));
        ck_assert_int_eq(gzclose(g), Z_OK);
    }
}

/* The set; files whose bit is set in gz_mask are written as NAME.gz instead, with 1 to 3
 * gzip members cut anywhere (mid-line too). */
static void write_set_as(const char *dir, unsigned gz_mask)
{
    for (int i = 0; i < NSET; i++) {
        if (gz_mask & (1u << i)) {
            char name[64];
            snprintf(name, sizeof name, "%s.gz", SET[i][0]);
            write_gz(dir, name, SET[i][1], strlen(SET[i][1]), 1 + i % 3);
        } else {
            write_str(dir, SET[i][0], SET[i][1]);
        }
    }
}

static void write_set(const char *dir) { write_set_as(dir, 0); }

static const libsvm_options SPLIT_OPTS[] = {
    {.width = 100},
    {.width = 100, .buffer_size = 3},
    {.width = 100, .one_based = true, .buffer_size = 7},
    {.width = 100, .max_record = 14, .buffer_size = 5}, /* too-long errors must align too */
};
#define NSPLIT_OPTS ((int)(sizeof SPLIT_OPTS / sizeof SPLIT_OPTS[0]))

static char *reference(const char *dir, int o, int64_t *nrec, int64_t *nerr)
{
    split_plan *p = plan_at(dir, "*.svm", 1, NULL);
    char *s = read_plan(p, &SPLIT_OPTS[o], nrec, nerr);
    split_plan_free(p);
    return s;
}

START_TEST(test_libsvm_split_reference_sane)
{
    /* The reference itself: the right rows and errors, so that the equality checks below
     * compare something real. */
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_set(dir);
    int64_t nrec, nerr;
    char *ref = reference(dir, 0, &nrec, &nerr);
    /* a: 6, b/d: 0, c: 3, e: 2 + 4 errors, f: 1, g: 2 */
    ck_assert_int_eq(nrec, 6 + 3 + 2 + 1 + 2);
    ck_assert_int_eq(nerr, 4);
    ck_assert_msg(strstr(ref, "f2 l3 o2 id[2]\"q 1:1\n") != NULL, "%s", ref);
    ck_assert_msg(strstr(ref, "f2 l6 o26 id[2]s\"\n") != NULL, "%s", ref);
    ck_assert_msg(strstr(ref, "e.svm:5: bad index (negative)") != NULL, "%s", ref);
    ck_assert_msg(strstr(ref, "f4 l7 o45 id[2]e6\n") != NULL, "%s", ref);
    ck_assert_msg(strstr(ref, "f5 l1 o0 id[1]z\n") != NULL, "%s", ref);
    free(ref);
    rm_rf(dir);
}
END_TEST

START_TEST(test_libsvm_split_nparts)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_set(dir);
    for (int o = 0; o < NSPLIT_OPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.svm", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        int parts[] = {1, 2, 3, 4, 5, 6, 13, (int)total, (int)total + 3};
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            split_plan *p = plan_at(dir, "*.svm", parts[k], NULL);
            char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
            ck_assert_msg(strcmp(got, ref) == 0, "opts %d nparts %d:\n--- got\n%s--- want\n%s",
                          o, parts[k], got, ref);
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

/* A boundary at every byte of the concatenation: between \r and \n, on a line's first
 * byte, on its '\n', inside comments, at file boundaries, at the very end. */
START_TEST(test_libsvm_split_every_cut)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_set(dir);
    for (int o = 0; o < NSPLIT_OPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.svm", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        for (int64_t cut = 0; cut <= total; cut++) {
            split_plan *p = plan_at(dir, "*.svm", 2, &cut);
            char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
            ck_assert_msg(strcmp(got, ref) == 0, "opts %d cut %lld:\n--- got\n%s--- want\n%s",
                          o, (long long)cut, got, ref);
            free(got);
            split_plan_free(p);
        }
        free(ref);
    }
    rm_rf(dir);
}
END_TEST

/* Four parts with pseudo-random cut triples (deterministic), some of them equal. */
START_TEST(test_libsvm_split_random_cuts)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_set(dir);
    int64_t nrec, nerr, n2, e2;
    char *ref = reference(dir, 1, &nrec, &nerr);
    split_plan *one = plan_at(dir, "*.svm", 1, NULL);
    int64_t total = split_plan_total_size(one);
    split_plan_free(one);
    uint64_t s = 88172645463325252u;
    for (int it = 0; it < 200; it++) {
        int64_t cuts[3];
        for (int k = 0; k < 3; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            cuts[k] = (int64_t)(s % (uint64_t)(total + 1));
        }
        for (int a = 0; a < 3; a++) /* sort */
            for (int b = a + 1; b < 3; b++)
                if (cuts[b] < cuts[a]) {
                    int64_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        if (it % 10 == 0) cuts[1] = cuts[0];
        split_plan *p = plan_at(dir, "*.svm", 4, cuts);
        char *got = read_plan(p, &SPLIT_OPTS[1], &n2, &e2);
        ck_assert_msg(strcmp(got, ref) == 0, "cuts %lld %lld %lld", (long long)cuts[0],
                      (long long)cuts[1], (long long)cuts[2]);
        free(got);
        split_plan_free(p);
    }
    free(ref);
    rm_rf(dir);
}
END_TEST

/* ---------------------------------------------------------------- bounded splits, .gz */

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
    /* segments within the split size, compressed files whole */
    const split_segment *seg = split_plan_segments(p);
    for (int64_t i = 0; i < split_plan_segment_count(p); i++) {
        if (split_plan_file_compressed(p, seg[i].file))
            ck_assert(seg[i].start == 0 && seg[i].end == split_plan_file_size(p, seg[i].file));
        else if (split_bytes > 0)
            ck_assert_int_le(seg[i].end - seg[i].start, split_bytes);
    }
    return p;
}

/* Removes every occurrence of `what` from s. */
static void strip_all(char *s, const char *what)
{
    size_t n = strlen(what);
    char *o = s;
    for (const char *i = s; *i;) {
        if (strncmp(i, what, n) == 0) {
            i += n;
            continue;
        }
        *o++ = *i++;
    }
    *o = '\0';
}

/* Every split size from 1 byte to past the total, with 1, 2, 3 and 6 counting parts (all
 * of them for the small sizes, one in turn above: valgrind's time). */
START_TEST(test_libsvm_split_bytes)
{
    char dir[4096];
    make_tmpdir(dir, sizeof dir, "libsvm");
    write_set(dir);
    for (int o = 0; o < NSPLIT_OPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(dir, o, &nrec, &nerr);
        split_plan *one = plan_at(dir, "*.svm", 1, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        for (int64_t S = 1; S <= total + 1; S++) {
            const int nparts[] = {1, 2, 3, 6};
            for (size_t k = 0; k < 4; k++) {
                if (S > 12 && (S + o) % 4 != (int64_t)k) continue;
                split_plan *p = plan_opts(dir, "*.svm", nparts[k], S, NULL);
                if (S == 1) ck_assert_int_eq(split_plan_segment_count(p), total);
                char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
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

/* The set compressed reads like the plain set; so does a mix of the two, for every split
 * size and a part boundary at every byte. */
START_TEST(test_libsvm_gz_like_plain)
{
    char plain[4096], dir[4096], mixed[4096];
    make_tmpdir(plain, sizeof plain, "libsvm");
    make_tmpdir(dir, sizeof dir, "libsvm");
    make_tmpdir(mixed, sizeof mixed, "libsvm");
    write_set(plain);
    write_set_as(dir, ~0u);
    write_set_as(mixed, 0x2b); /* a, b (empty), d, f compressed */
    for (int o = 0; o < NSPLIT_OPTS; o++) {
        int64_t nrec, nerr, n2, e2;
        char *ref = reference(plain, o, &nrec, &nerr);
        strip_all(ref, plain);
        const int64_t sizes[] = {0, 1, 3, 100};
        for (size_t a = 0; a < 4; a++)
            for (int np = 1; np <= 9; np += 4) {
                split_plan *p = plan_opts(dir, "*.svm.gz", np, sizes[a], NULL);
                ck_assert_int_eq(split_plan_segment_count(p), NSET);
                char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
                strip_all(got, dir);
                strip_all(got, ".gz");
                ck_assert_msg(strcmp(got, ref) == 0,
                              "opts %d split %lld nparts %d:\n--- got\n%s--- want\n%s", o,
                              (long long)sizes[a], np, got, ref);
                free(got);
                split_plan_free(p);
            }
        split_plan *one = plan_opts(mixed, "*", 1, 0, NULL);
        int64_t total = split_plan_total_size(one);
        split_plan_free(one);
        for (int64_t S = 1 + o; S <= total + 1; S += NSPLIT_OPTS) {
            split_plan *p = plan_opts(mixed, "*", 1 + (int)(S % 4), S, NULL);
            char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
            strip_all(got, mixed);
            strip_all(got, ".gz");
            ck_assert_msg(strcmp(got, ref) == 0, "mixed opts %d split %lld:\n--- got\n%s--- want\n%s",
                          o, (long long)S, got, ref);
            free(got);
            split_plan_free(p);
        }
        for (int64_t cut = 0; o == 1 && cut <= total; cut++) {
            split_plan *p = plan_opts(mixed, "*", 2, 2, &cut);
            char *got = read_plan(p, &SPLIT_OPTS[o], &n2, &e2);
            strip_all(got, mixed);
            strip_all(got, ".gz");
            ck_assert_msg(strcmp(got, ref) == 0, "mixed cut %lld", (long long)cut);
            free(got);
            split_plan_free(p);
        }
        free(ref);
    }
    rm_rf(plain);
    rm_rf(dir);
    rm_rf(mixed);
}
END_TEST

/* A truncated or corrupt .gz: rows before the damage, then PC_ERR_IO naming the file and
 * the line reached, and the error sticks. An empty .gz reads as no rows. */
START_TEST(test_libsvm_gz_damaged_and_empty)
{
    char dir[4096], path[4200], err[PC_ERRLEN];
    make_tmpdir(dir, sizeof dir, "libsvm");
    sbuf body = {0};
    for (int i = 0; i < 6000; i++) sb_printf(&body, "r%d %d:%d.5 %d:1\n", i, i % 7, i, 7 + i % 90);
    write_gz(dir, "big.svm.gz", body.s, body.len, 1);
    snprintf(path, sizeof path, "%s/big.svm.gz", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *gz = malloc(1 << 20);
    ck_assert_ptr_nonnull(gz);
    size_t gzlen = fread(gz, 1, 1 << 20, f);
    fclose(f);
    ck_assert_uint_gt(gzlen, 10000);
    ck_assert_uint_lt(gzlen, 1 << 20);
    libsvm_options o = {.width = 100, .buffer_size = 5};
    for (int c = 0; c < 4; c++) {
        unsigned char *b = malloc(gzlen);
        ck_assert_ptr_nonnull(b);
        memcpy(b, gz, gzlen);
        size_t n = c == 0 ? gzlen / 3 : c == 1 ? gzlen - 4 : gzlen;
        if (c == 2) b[gzlen - 7] ^= 0x5a; /* CRC */
        if (c == 3) b[3] = 0xe0;           /* reserved header flags */
        write_bytes(dir, "bad.svm.gz", (const char *)b, n);
        free(b);
        snprintf(path, sizeof path, "%s/bad.svm.gz", dir);
        libsvm_reader *r = open_whole(path, n, &o);
        int64_t rows = 0;
        pc_status st;
        for (;;) {
            libsvm_record rec;
            bool eof;
            st = libsvm_reader_next(r, &rec, &eof, err, sizeof err);
            if (st != PC_OK || eof) break;
            ck_assert_int_eq(rec.line, rows + 1);
            rows++;
        }
        ck_assert_msg(st == PC_ERR_IO, "case %d: status %d %s", c, st, err);
        ck_assert_msg(strstr(err, "bad.svm.gz:") != NULL, "%s", err);
        ck_assert_msg(strstr(err, c < 2 ? "truncated gzip" : "corrupt gzip") != NULL, "%s", err);
        long long line = strtoll(strstr(err, "bad.svm.gz:") + 11, NULL, 10);
        ck_assert_msg(line >= rows + 1 || (c == 3 && line == 1), "%s after %lld rows", err,
                      (long long)rows);
        if (c == 0) ck_assert_int_gt(rows, 1000);
        if (c == 3) ck_assert_int_eq(rows, 0);
        libsvm_record rec;
        bool eof;
        ck_assert_int_eq(libsvm_reader_next(r, &rec, &eof, err, sizeof err), PC_ERR_IO);
        libsvm_reader_close(r);
    }
    free(gz);
    free(body.s);

    /* empty stream, zero-byte file, comments only */
    write_gz(dir, "e1.svm.gz", "", 0, 1);
    write_bytes(dir, "e2.svm.gz", "", 0);
    write_gz(dir, "e3.svm.gz", "# nothing\n\n", 11, 2);
    const char *names[] = {"e1.svm.gz", "e2.svm.gz", "e3.svm.gz"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        libsvm_reader *r = open_whole(path, 1, &o);
        expect_eof(r);
        libsvm_reader_close(r);
    }
    split_plan *p = plan_opts(dir, "e*.svm.gz", 3, 1, NULL);
    ck_assert_int_eq(split_plan_file_count(p), 3);
    ck_assert_int_eq(split_plan_segment_count(p), 2); /* the zero-byte file has none */
    int64_t nrec, nerr;
    char *got = read_plan(p, &o, &nrec, &nerr);
    ck_assert_str_eq(got, "");
    free(got);
    split_plan_free(p);
    rm_rf(dir);
}
END_TEST

static Suite *libsvm_suite(void)
{
    Suite *s = suite_create("libsvm");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_libsvm_round_trip);
    tcase_add_test(tc, test_libsvm_one_based);
    tcase_add_test(tc, test_libsvm_errors);
    tcase_add_test(tc, test_libsvm_long_rows);
    tcase_add_test(tc, test_libsvm_too_long);
    tcase_add_test(tc, test_libsvm_default_limits);
    tcase_add_test(tc, test_libsvm_open_and_io_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("split");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_libsvm_split_reference_sane);
    tcase_add_test(tc, test_libsvm_split_nparts);
    tcase_add_test(tc, test_libsvm_split_every_cut);
    tcase_add_test(tc, test_libsvm_split_random_cuts);
    tcase_add_test(tc, test_libsvm_split_bytes);
    tcase_add_test(tc, test_libsvm_gz_like_plain);
    tcase_add_test(tc, test_libsvm_gz_damaged_and_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(libsvm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
