/* test_resp.c — unit tests of server/resp.c: the RESP2 request parser (multibulk and inline,
 * pipelining, restarts, every limit, hostile numbers, malformed framing) and the reply
 * writers (exact bytes, "does not fit", CR/LF sanitising); and a replay of the fuzzing seed
 * corpus (tests/corpus/resp/) through the fuzzer's own checks (tests/fuzz_resp.c).
 *
 * Every input is parsed from an allocation of exactly its size, so that a read past the end
 * shows under `make check-asan` and `make check-valgrind`. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/resp.h"

/* In tests/fuzz_resp.c (linked in by tests/fuzz.mk): true when every invariant of the fuzzer
 * held for this input, otherwise false with why naming the check. */
bool resp_fuzz_check(const uint8_t *data, size_t size, char *why, size_t whylen);

/* A string literal and its length, NULs included. */
#define S(lit) (lit), (sizeof(lit) - 1)

#define ARGV_CAP 64 /* room for every max_args used below */

static const resp_limits lim_std = {.max_args = 16, .max_arg_bytes = 64, .max_inline = 128};

/* ---- helpers ---- */

typedef struct parsed {
    char *copy; /* the input, in an allocation of exactly len bytes */
    size_t len;
    resp_result r;
    size_t argc, consumed;
    resp_arg argv[ARGV_CAP];
    char err[128];
} parsed;

static void parse_with(parsed *p, const char *buf, size_t len, const resp_limits *lim)
{
    ck_assert(lim->max_args <= ARGV_CAP);
    p->copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(p->copy);
    if (len > 0) memcpy(p->copy, buf, len);
    p->len = len;
    p->argc = p->consumed = 12345; /* must be overwritten */
    p->err[0] = '\0';
    p->r = resp_parse(p->copy, len, lim, p->argv, &p->argc, &p->consumed, p->err, sizeof p->err);
}

static void parsed_free(parsed *p)
{
    free(p->copy);
    p->copy = NULL;
}

static const char *result_name(resp_result r)
{
    switch (r) {
    case RESP_DONE: return "RESP_DONE";
    case RESP_INCOMPLETE: return "RESP_INCOMPLETE";
    case RESP_EMPTY: return "RESP_EMPTY";
    case RESP_BAD: return "RESP_BAD";
    }
    return "(not a resp_result)";
}

/* buf[0..len) as a C string literal's body, cut to fit out, for failure messages. */
static const char *escaped(const char *buf, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r' || c == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", c == '\r' ? 'r' : 'n');
        else if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

static void assert_result(const parsed *p, resp_result want)
{
    char show[200];
    ck_assert_msg(p->r == want, "\"%s\": %s, expected %s (err \"%s\")",
                  escaped(p->copy, p->len, show, sizeof show), result_name(p->r),
                  result_name(want), p->err);
}

/* buf[0..len) is RESP_BAD with exactly msg, and nothing consumed. */
static void expect_bad(const char *buf, size_t len, const resp_limits *lim, const char *msg)
{
    parsed p;
    parse_with(&p, buf, len, lim);
    assert_result(&p, RESP_BAD);
    ck_assert_str_eq(p.err, msg);
    ck_assert_uint_eq(p.consumed, 0);
    ck_assert_uint_eq(p.argc, 0);
    parsed_free(&p);
}

static void expect_incomplete(const char *buf, size_t len, const resp_limits *lim)
{
    parsed p;
    parse_with(&p, buf, len, lim);
    assert_result(&p, RESP_INCOMPLETE);
    ck_assert_uint_eq(p.consumed, 0);
    ck_assert_uint_eq(p.argc, 0);
    parsed_free(&p);
}

static void expect_empty(const char *buf, size_t len, const resp_limits *lim, size_t consumed)
{
    parsed p;
    parse_with(&p, buf, len, lim);
    assert_result(&p, RESP_EMPTY);
    ck_assert_uint_eq(p.consumed, consumed);
    ck_assert_uint_eq(p.argc, 0);
    parsed_free(&p);
}

/* An expected argument: bytes and length (binary-safe). */
typedef struct want_arg {
    const char *p;
    size_t n;
} want_arg;

#define W(lit) {(lit), sizeof(lit) - 1}

/* p is RESP_DONE with consumed bytes and exactly the arguments want[0..n). */
static void assert_cmd(const parsed *p, size_t consumed, const want_arg *want, size_t n)
{
    assert_result(p, RESP_DONE);
    ck_assert_uint_eq(p->consumed, consumed);
    ck_assert_uint_eq(p->argc, n);
    for (size_t i = 0; i < n; i++) {
        const resp_arg *a = &p->argv[i];
        char got[100], exp[100];
        ck_assert_msg(a->len == want[i].n && memcmp(a->ptr, want[i].p, want[i].n) == 0,
                      "argument %zu: \"%s\", expected \"%s\"", i,
                      escaped(a->ptr, a->len, got, sizeof got),
                      escaped(want[i].p, want[i].n, exp, sizeof exp));
        /* Arguments point into the caller's buffer, not into a copy. */
        ck_assert(a->ptr >= p->copy && a->ptr + a->len <= p->copy + consumed);
    }
}

static void expect_cmd(const char *buf, size_t len, const resp_limits *lim, size_t consumed,
                       const want_arg *want, size_t n)
{
    parsed p;
    parse_with(&p, buf, len, lim);
    assert_cmd(&p, consumed, want, n);
    parsed_free(&p);
}

/* Every strict prefix of buf is RESP_INCOMPLETE and the whole of it gives want (RESP_DONE or
 * RESP_EMPTY, consuming all of buf); with bytes after it, the same. */
static void expect_prefixes(const char *buf, size_t len, const resp_limits *lim, resp_result want)
{
    for (size_t k = 0; k < len; k++) {
        parsed p;
        parse_with(&p, buf, k, lim);
        ck_assert_msg(p.r == RESP_INCOMPLETE, "prefix of %zu of %zu bytes: %s (%s)", k, len,
                      result_name(p.r), p.err);
        parsed_free(&p);
    }
    char *more = malloc(len + 5);
    ck_assert_ptr_nonnull(more);
    memcpy(more, buf, len);
    memcpy(more + len, "*1\r\nX", 5);
    for (size_t extra = 0; extra <= 5; extra++) {
        parsed p;
        parse_with(&p, more, len + extra, lim);
        ck_assert_msg(p.r == want && p.consumed == len, "%zu bytes and %zu more: %s consumed %zu",
                      len, extra, result_name(p.r), p.consumed);
        parsed_free(&p);
    }
    free(more);
}

/* ---- multibulk ---- */

START_TEST(test_multibulk_get)
{
    want_arg want[] = {W("GET"), W("42")};
    expect_cmd(S("*2\r\n$3\r\nGET\r\n$2\r\n42\r\n"), &lim_std, 21, want, 2);
    /* Arguments may be empty. */
    want_arg empty[] = {W("GET"), W("")};
    expect_cmd(S("*2\r\n$3\r\nGET\r\n$0\r\n\r\n"), &lim_std, 19, empty, 2);
}
END_TEST

START_TEST(test_multibulk_binary)
{
    /* NUL, CR, LF, a would-be header, high bytes and an empty key are all plain bytes. */
    static const char cmd[] = "*6\r\n$4\r\nMGET\r\n$3\r\na\0b\r\n$2\r\n\r\n\r\n"
                              "$4\r\n$3\r\n\r\n$2\r\n\xff\xfe\r\n$0\r\n\r\n";
    want_arg want[] = {W("MGET"), W("a\0b"), W("\r\n"), W("$3\r\n"), W("\xff\xfe"), W("")};
    expect_cmd(S(cmd), &lim_std, sizeof cmd - 1, want, 6);
    expect_prefixes(S(cmd), &lim_std, RESP_DONE);
}
END_TEST

START_TEST(test_arg_points_into_buffer)
{
    parsed p;
    parse_with(&p, S("*2\r\n$3\r\nGET\r\n$2\r\n42\r\n"), &lim_std);
    assert_result(&p, RESP_DONE);
    ck_assert_ptr_eq(p.argv[0].ptr, p.copy + 8);
    ck_assert_ptr_eq(p.argv[1].ptr, p.copy + 17);
    parsed_free(&p);
}
END_TEST

/* A server's loop over one buffer: commands one after the other, then the partial one. */
START_TEST(test_pipeline)
{
    static const char buf[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                              "PING\r\n"
                              "*0\r\n"
                              "\r\n"
                              "*3\r\n$4\r\nMGET\r\n$1\r\nb\r\n$1\r\nc\r\n"
                              "*2\r\n$3\r\nGET\r\n$1";
    size_t len = sizeof buf - 1, pos = 0;
    parsed p;

    want_arg get[] = {W("GET"), W("a")};
    parse_with(&p, buf + pos, len - pos, &lim_std);
    assert_cmd(&p, 20, get, 2);
    pos += p.consumed;
    parsed_free(&p);

    want_arg ping[] = {W("PING")};
    parse_with(&p, buf + pos, len - pos, &lim_std);
    assert_cmd(&p, 6, ping, 1);
    pos += p.consumed;
    parsed_free(&p);

    for (size_t skip = 4; skip >= 2; skip -= 2) { /* "*0\r\n", then "\r\n" */
        parse_with(&p, buf + pos, len - pos, &lim_std);
        assert_result(&p, RESP_EMPTY);
        ck_assert_uint_eq(p.consumed, skip);
        pos += p.consumed;
        parsed_free(&p);
    }

    want_arg mget[] = {W("MGET"), W("b"), W("c")};
    parse_with(&p, buf + pos, len - pos, &lim_std);
    assert_cmd(&p, 28, mget, 3);
    pos += p.consumed;
    parsed_free(&p);

    expect_incomplete(buf + pos, len - pos, &lim_std);
}
END_TEST

/* The restart contract, as a server sees it: bytes arrive one at a time, and after each one
 * the parser is called again from the start of the unfinished command. */
START_TEST(test_restart_byte_by_byte)
{
    static const char stream[] = "*2\r\n$3\r\nGET\r\n$3\r\nk\0y\r\n"
                                 "mget  a\tb\r\n"
                                 "\n"
                                 "*-1\r\n"
                                 "*1\r\n$4\r\nPING\r\n";
    want_arg want[][3] = {{W("GET"), W("k\0y")}, {W("mget"), W("a"), W("b")}, {W("PING")}};
    size_t want_argc[] = {2, 3, 1};
    size_t len = sizeof stream - 1, start = 0, cmds = 0, empties = 0;
    for (size_t have = 0; have <= len; have++) {
        parsed p;
        parse_with(&p, stream + start, have - start, &lim_std);
        if (p.r == RESP_DONE) {
            ck_assert_uint_lt(cmds, 3);
            assert_cmd(&p, have - start, want[cmds], want_argc[cmds]);
            cmds++;
            start = have;
        } else if (p.r == RESP_EMPTY) {
            ck_assert_uint_eq(p.consumed, have - start); /* decided on its last byte */
            empties++;
            start = have;
        } else {
            assert_result(&p, RESP_INCOMPLETE);
        }
        parsed_free(&p);
    }
    ck_assert_uint_eq(cmds, 3);
    ck_assert_uint_eq(empties, 2);
    ck_assert_uint_eq(start, len);
}
END_TEST

START_TEST(test_every_prefix)
{
    expect_prefixes(S("*2\r\n$3\r\nGET\r\n$2\r\n42\r\n"), &lim_std, RESP_DONE);
    expect_prefixes(S("*3\r\n$4\r\nMGET\r\n$0\r\n\r\n$10\r\n0123456789\r\n"), &lim_std,
                    RESP_DONE);
    expect_prefixes(S("GET 42\r\n"), &lim_std, RESP_DONE);
    expect_prefixes(S("GET 42\n"), &lim_std, RESP_DONE);
    expect_prefixes(S("*0\r\n"), &lim_std, RESP_EMPTY);
    expect_prefixes(S("*-1\r\n"), &lim_std, RESP_EMPTY);
    expect_prefixes(S(" \t\r\n"), &lim_std, RESP_EMPTY);
    expect_prefixes(S("\n"), &lim_std, RESP_EMPTY);
}
END_TEST

START_TEST(test_multibulk_limits)
{
    resp_limits lim = {.max_args = 3, .max_arg_bytes = 5, .max_inline = 64};
    want_arg three[] = {W("a"), W("12345"), W("")};
    expect_cmd(S("*3\r\n$1\r\na\r\n$5\r\n12345\r\n$0\r\n\r\n"), &lim, 28, three, 3);
    /* One over a limit is an error as soon as the header shows it, nothing else sent. */
    expect_bad(S("*4\r\n"), &lim, "Protocol error: invalid multibulk length");
    expect_bad(S("*1\r\n$6\r\n"), &lim, "Protocol error: invalid bulk length");
    expect_bad(S("*2\r\n$1\r\na\r\n$6\r\n"), &lim, "Protocol error: invalid bulk length");
    /* Before its CRLF, a header is not judged: "*4" might be "*40" or "*4\r\n". */
    expect_incomplete(S("*4\r"), &lim);
    expect_incomplete(S("*1\r\n$6"), &lim);
}
END_TEST

START_TEST(test_huge_numbers)
{
    const char *mb = "Protocol error: invalid multibulk length";
    const char *bl = "Protocol error: invalid bulk length";
    expect_bad(S("*2147483648\r\n"), &lim_std, mb);
    expect_bad(S("*2147483647\r\n"), &lim_std, mb);
    expect_bad(S("*9223372036854775807\r\n"), &lim_std, mb);
    expect_bad(S("*9223372036854775808\r\n"), &lim_std, mb); /* overflows int64 */
    expect_bad(S("*99999999999999999999\r\n"), &lim_std, mb);
    expect_bad(S("*1\r\n$99999999999999999999\r\n"), &lim_std, bl);
    expect_bad(S("*1\r\n$9223372036854775807\r\n"), &lim_std, bl);
    expect_bad(S("*1\r\n$18446744073709551616\r\n"), &lim_std, bl); /* SIZE_MAX + 1 */
    /* Without a limit on argument size the length is waited for, without wrapping around. */
    resp_limits open = {.max_args = 4, .max_arg_bytes = SIZE_MAX, .max_inline = 64};
    expect_incomplete(S("*1\r\n$9223372036854775807\r\n"), &open);
    expect_incomplete(S("*1\r\n$9223372036854775807\r\nabc\r\n"), &open);
    /* The most negative count is still a count, so an empty command, as in Redis. */
    expect_empty(S("*-9223372036854775808\r\n"), &lim_std, 23);
    expect_bad(S("*-9223372036854775809\r\n"), &lim_std, mb);
}
END_TEST

START_TEST(test_bad_numbers)
{
    const char *mb = "Protocol error: invalid multibulk length";
    const char *bl = "Protocol error: invalid bulk length";
    /* Redis's string2ll: no sign but '-', no leading zero, no blanks, no empty number. */
    static const char *const counts[] = {"*\r\n", "*+1\r\n", "*01\r\n", "*-0\r\n", "*1a\r\n",
                                         "* 1\r\n", "*1 \r\n", "*-\r\n", "*0x1\r\n", "*1\r\r\n"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        expect_bad(counts[i], strlen(counts[i]), &lim_std, mb);
    static const char *const lens[] = {"*1\r\n$-1\r\n", "*1\r\n$-5\r\n", "*1\r\n$\r\n",
                                       "*1\r\n$+3\r\n", "*1\r\n$03\r\n", "*1\r\n$-0\r\n",
                                       "*1\r\n$3x\r\n", "*1\r\n$ 3\r\n"};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        expect_bad(lens[i], strlen(lens[i]), &lim_std, bl);
    /* A header's CR must be followed by LF. */
    expect_bad(S("*1\rX"), &lim_std, mb);
    expect_bad(S("*1\r\n$3\r$"), &lim_std, bl);
}
END_TEST

START_TEST(test_endless_header)
{
    /* 32 bytes of header may still be followed by CRLF; 33 may not. */
    char line[64];
    memset(line, '1', sizeof line);
    line[0] = '*';
    expect_incomplete(line, 32, &lim_std);
    expect_bad(line, 33, &lim_std, "Protocol error: too big mbulk count string");
    expect_bad(line, sizeof line, &lim_std, "Protocol error: too big mbulk count string");
    char bulk[4 + 40];
    memcpy(bulk, "*1\r\n$", 5);
    memset(bulk + 5, '9', sizeof bulk - 5);
    expect_incomplete(bulk, 4 + 32, &lim_std);
    expect_bad(bulk, 4 + 33, &lim_std, "Protocol error: too big bulk count string");
    /* LF-only headers are not RESP: they never end, so they hit the same bound. */
    expect_incomplete(S("*1\n$3\nGET\n"), &lim_std);
    static const char lf[] = "*1\n$3\nGET\n$3\nGET\n$3\nGET\n$3\nGET\n$3\nGET\n";
    ck_assert_uint_ge(sizeof lf - 1, 33);
    expect_bad(S(lf), &lim_std, "Protocol error: too big mbulk count string");
}
END_TEST

START_TEST(test_wrong_type)
{
    /* The wrong byte is an error as soon as it arrives. */
    expect_bad(S("*1\r\n:"), &lim_std, "Protocol error: expected '$', got ':'");
    expect_bad(S("*2\r\n$3\r\nGET\r\n:42\r\n"), &lim_std, "Protocol error: expected '$', got ':'");
    expect_bad(S("*2\r\n$3\r\nGET\r\n+"), &lim_std, "Protocol error: expected '$', got '+'");
    expect_bad(S("*1\r\n*1\r\n$1\r\na\r\n"), &lim_std, "Protocol error: expected '$', got '*'");
    /* An unprintable byte is shown escaped, so that the message stays one line of text. */
    expect_bad(S("*1\r\n\r\n"), &lim_std, "Protocol error: expected '$', got '\\x0d'");
    expect_bad(S("*1\r\n\0"), &lim_std, "Protocol error: expected '$', got '\\x00'");
    expect_bad(S("*1\r\n\xff"), &lim_std, "Protocol error: expected '$', got '\\xff'");
}
END_TEST

START_TEST(test_missing_crlf)
{
    const char *msg = "Protocol error: bulk string not followed by CRLF";
    expect_bad(S("*1\r\n$3\r\nGETX"), &lim_std, msg); /* at once, not after more bytes */
    expect_bad(S("*1\r\n$3\r\nGET\rX"), &lim_std, msg);
    expect_bad(S("*1\r\n$3\r\nGET\n\r"), &lim_std, msg);
    expect_bad(S("*2\r\n$1\r\nab\r\n$1\r\nc\r\n"), &lim_std, msg); /* a length one short */
    expect_incomplete(S("*1\r\n$3\r\nGET"), &lim_std);
    expect_incomplete(S("*1\r\n$3\r\nGET\r"), &lim_std);
}
END_TEST

START_TEST(test_empty_commands)
{
    expect_empty(S("*0\r\n"), &lim_std, 4);
    expect_empty(S("*-1\r\n"), &lim_std, 5);
    expect_empty(S("*-7\r\n*1\r\n$4\r\nPING\r\n"), &lim_std, 5);
    expect_empty(S("\n"), &lim_std, 1);
    expect_empty(S("\r\n"), &lim_std, 2);
    expect_empty(S(" \t \r\n"), &lim_std, 5);
    expect_empty(S("\t\nPING\r\n"), &lim_std, 2);
    expect_incomplete(S(""), &lim_std);
    expect_incomplete(S(" \t "), &lim_std);
}
END_TEST

/* ---- inline ---- */

START_TEST(test_inline)
{
    want_arg get[] = {W("GET"), W("42")};
    expect_cmd(S("GET 42\r\n"), &lim_std, 8, get, 2);
    expect_cmd(S("GET 42\n"), &lim_std, 7, get, 2);
    expect_cmd(S("\tGET \t\t42 \t\r\n"), &lim_std, 13, get, 2);
    expect_cmd(S("GET 42\r\nPING\r\n"), &lim_std, 8, get, 2);
    want_arg ping[] = {W("PING")};
    expect_cmd(S("PING\n"), &lim_std, 5, ping, 1);
    /* Quotes are plain bytes; a CR not before the LF is part of a word; so is a NUL. */
    want_arg quoted[] = {W("SET"), W("\"a"), W("b\"")};
    expect_cmd(S("SET \"a b\"\r\n"), &lim_std, 11, quoted, 3);
    want_arg cr[] = {W("GET"), W("a\rb"), W("c\r")};
    expect_cmd(S("GET a\rb c\r\r\n"), &lim_std, 12, cr, 3);
    want_arg nul[] = {W("GET"), W("a\0b")};
    expect_cmd(S("GET a\0b\n"), &lim_std, 8, nul, 2);
    /* A line that starts like a header but not with '*' is inline. */
    want_arg dollar[] = {W("$3")};
    expect_cmd(S("$3\r\n"), &lim_std, 4, dollar, 1);
    expect_incomplete(S("PING"), &lim_std);
    expect_incomplete(S("PING\r"), &lim_std);
}
END_TEST

START_TEST(test_inline_limits)
{
    resp_limits lim = {.max_args = 3, .max_arg_bytes = 4, .max_inline = 12};
    /* Exactly max_inline bytes, with either terminator. */
    want_arg twelve[] = {W("abcd"), W("efgh"), W("ij")};
    expect_cmd(S("abcd efgh ij\r\n"), &lim, 14, twelve, 3);
    expect_cmd(S("abcd efgh ij\n"), &lim, 13, twelve, 3);
    expect_incomplete(S("abcd efgh ij\r"), &lim);
    expect_incomplete(S("abcd efgh ij"), &lim);
    const char *big = "Protocol error: too big inline request";
    expect_bad(S("abcd efgh ijk\r\n"), &lim, big);
    expect_bad(S("abcd efgh ijk\n"), &lim, big);
    /* Thirteen bytes without LF can only become a longer line: an error at once. */
    expect_bad(S("abcd efgh ijk"), &lim, big);
    expect_bad(S("abcd efgh ij\rX"), &lim, big);
    expect_bad(S("             "), &lim, big); /* blank, but still too long */
    /* Arguments: count and size. */
    expect_bad(S("a b c d\r\n"), &lim, "Protocol error: too many arguments");
    expect_bad(S("a bcdef\r\n"), &lim, "Protocol error: too big inline argument");
    want_arg four[] = {W("a"), W("bcde")};
    expect_cmd(S("a bcde\r\n"), &lim, 8, four, 2);
}
END_TEST

START_TEST(test_zero_limits)
{
    /* Nothing fits; argv is never written (it has no room: NULL here). */
    resp_limits lim = {.max_args = 0, .max_arg_bytes = 0, .max_inline = 0};
    size_t argc, consumed;
    char err[128];
    ck_assert_int_eq(resp_parse(S("*1\r\n"), &lim, NULL, &argc, &consumed, err, sizeof err),
                     RESP_BAD);
    ck_assert_int_eq(resp_parse(S("P\n"), &lim, NULL, &argc, &consumed, err, sizeof err),
                     RESP_BAD);
    ck_assert_str_eq(err, "Protocol error: too big inline request");
    ck_assert_int_eq(resp_parse(S("*0\r\n"), &lim, NULL, &argc, &consumed, err, sizeof err),
                     RESP_EMPTY);
    ck_assert_int_eq(resp_parse(S("\r\n"), &lim, NULL, &argc, &consumed, err, sizeof err),
                     RESP_EMPTY);
    ck_assert_uint_eq(consumed, 2);
    resp_limits one = {.max_args = 0, .max_arg_bytes = 0, .max_inline = 8};
    ck_assert_int_eq(resp_parse(S("PING\r\n"), &one, NULL, &argc, &consumed, err, sizeof err),
                     RESP_BAD);
    ck_assert_str_eq(err, "Protocol error: too many arguments");
    /* A zero-length argument fits max_arg_bytes 0. */
    resp_limits empty_args = {.max_args = 1, .max_arg_bytes = 0, .max_inline = 0};
    want_arg e[] = {W("")};
    expect_cmd(S("*1\r\n$0\r\n\r\n"), &empty_args, 10, e, 1);
    expect_bad(S("*1\r\n$1\r\n"), &empty_args, "Protocol error: invalid bulk length");
}
END_TEST

START_TEST(test_err_buffer)
{
    resp_arg argv[ARGV_CAP];
    size_t argc, consumed;
    /* No room for a message: still RESP_BAD. */
    ck_assert_int_eq(resp_parse(S("*x\r\n"), &lim_std, argv, &argc, &consumed, NULL, 0), RESP_BAD);
    ck_assert_int_eq(resp_parse(S("*1\r\n:"), &lim_std, argv, &argc, &consumed, NULL, 0), RESP_BAD);
    /* A short buffer holds the message's start, NUL-terminated. */
    char err[10];
    memset(err, 'Z', sizeof err);
    ck_assert_int_eq(resp_parse(S("*x\r\n"), &lim_std, argv, &argc, &consumed, err, sizeof err),
                     RESP_BAD);
    ck_assert_str_eq(err, "Protocol ");
    memset(err, 'Z', sizeof err);
    ck_assert_int_eq(resp_parse(S("*1\r\n:"), &lim_std, argv, &argc, &consumed, err, sizeof err),
                     RESP_BAD);
    ck_assert_str_eq(err, "Protocol ");
    /* err is written only for RESP_BAD. */
    char keep[16] = "untouched";
    ck_assert_int_eq(resp_parse(S("*1\r\n$4\r\nPING\r\n"), &lim_std, argv, &argc, &consumed, keep,
                                sizeof keep), RESP_DONE);
    ck_assert_int_eq(resp_parse(S("*1\r\n$4\r\nPI"), &lim_std, argv, &argc, &consumed, keep,
                                sizeof keep), RESP_INCOMPLETE);
    ck_assert_int_eq(resp_parse(S("\r\n"), &lim_std, argv, &argc, &consumed, keep, sizeof keep),
                     RESP_EMPTY);
    ck_assert_str_eq(keep, "untouched");
}
END_TEST

START_TEST(test_arg_is)
{
    resp_arg get = {"GET", 3}, mixed = {"mGeT", 4}, nul = {"g\0t", 3};
    ck_assert(resp_arg_is(&get, "get"));
    ck_assert(resp_arg_is(&get, "GET"));
    ck_assert(resp_arg_is(&mixed, "MGET"));
    ck_assert(!resp_arg_is(&get, "ge"));
    ck_assert(!resp_arg_is(&get, "gets"));
    ck_assert(!resp_arg_is(&get, ""));
    ck_assert(!resp_arg_is(&nul, "g"));
    ck_assert(!resp_arg_is(&nul, "gat"));
    /* Case folding is for letters only: '@' and '`', '[' and '{' differ by the case bit. */
    resp_arg at = {"@", 1}, bracket = {"[", 1}, hi = {"\xc9", 1};
    ck_assert(!resp_arg_is(&at, "`"));
    ck_assert(!resp_arg_is(&bracket, "{"));
    ck_assert(!resp_arg_is(&hi, "\xe9"));
}
END_TEST

/* ---- writers ---- */

typedef bool (*put_fn)(char *out, size_t cap, size_t *len, const void *arg);

/* The writers behind one signature: arg is the string, the number, or a want_arg. */
static bool put_simple(char *o, size_t c, size_t *l, const void *a)
{
    return resp_put_simple(o, c, l, a);
}

static bool put_error(char *o, size_t c, size_t *l, const void *a)
{
    return resp_put_error(o, c, l, a);
}

static bool put_int(char *o, size_t c, size_t *l, const void *a)
{
    return resp_put_int(o, c, l, *(const long long *)a);
}

static bool put_nil(char *o, size_t c, size_t *l, const void *a)
{
    (void)a;
    return resp_put_nil(o, c, l);
}

static bool put_array(char *o, size_t c, size_t *l, const void *a)
{
    return resp_put_array(o, c, l, *(const size_t *)a);
}

static bool put_bulk(char *o, size_t c, size_t *l, const void *a)
{
    const want_arg *w = a;
    return resp_put_bulk(o, c, l, w->p, w->n);
}

/* The reply written by put must be want[0..n): it fits in exactly n bytes after any prefix,
 * and in one byte less it does not, leaving the length and every byte as they were. */
static void expect_put(put_fn put, const void *arg, const char *want, size_t n)
{
    for (size_t len0 = 0; len0 <= 3; len0 += 3) {
        for (size_t cap = len0 + n - 1; cap <= len0 + n + 1; cap++) {
            char *out = malloc(cap > 0 ? cap : 1);
            ck_assert_ptr_nonnull(out);
            memset(out, '#', cap);
            size_t len = len0;
            bool ok = put(out, cap, &len, arg);
            if (cap < len0 + n) {
                ck_assert_msg(!ok, "fits in %zu bytes, needs %zu", cap - len0, n);
                ck_assert_uint_eq(len, len0);
                for (size_t i = 0; i < cap; i++) ck_assert_int_eq(out[i], '#');
            } else {
                ck_assert_msg(ok, "does not fit in %zu bytes, needs %zu", cap - len0, n);
                ck_assert_uint_eq(len, len0 + n);
                ck_assert_msg(memcmp(out + len0, want, n) == 0, "wrote \"%.*s\", expected \"%.*s\"",
                              (int)n, out + len0, (int)n, want);
                for (size_t i = 0; i < len0; i++) ck_assert_int_eq(out[i], '#');
                for (size_t i = len; i < cap; i++) ck_assert_int_eq(out[i], '#');
            }
            free(out);
        }
    }
}

START_TEST(test_put_exact_bytes)
{
    expect_put(put_simple, "OK", S("+OK\r\n"));
    expect_put(put_simple, "", S("+\r\n"));
    expect_put(put_error, "ERR unknown command 'SET'", S("-ERR unknown command 'SET'\r\n"));
    long long v[] = {0, -1, 42, LLONG_MAX, LLONG_MIN};
    expect_put(put_int, &v[0], S(":0\r\n"));
    expect_put(put_int, &v[1], S(":-1\r\n"));
    expect_put(put_int, &v[2], S(":42\r\n"));
    expect_put(put_int, &v[3], S(":9223372036854775807\r\n"));
    expect_put(put_int, &v[4], S(":-9223372036854775808\r\n"));
    want_arg bulk = W("a\0b\r\n"), none = {NULL, 0};
    expect_put(put_bulk, &bulk, S("$5\r\na\0b\r\n\r\n"));
    expect_put(put_bulk, &none, S("$0\r\n\r\n"));
    expect_put(put_nil, NULL, S("$-1\r\n"));
    size_t n[] = {0, 3, SIZE_MAX};
    expect_put(put_array, &n[0], S("*0\r\n"));
    expect_put(put_array, &n[1], S("*3\r\n"));
    expect_put(put_array, &n[2], S("*18446744073709551615\r\n"));
}
END_TEST

START_TEST(test_put_sanitises)
{
    /* A message must never end the reply early or start another one. */
    expect_put(put_error, "ERR bad key 'a\r\n+OK'", S("-ERR bad key 'a  +OK'\r\n"));
    expect_put(put_error, "\r", S("- \r\n"));
    expect_put(put_simple, "a\nb\rc\r\n", S("+a b c  \r\n"));
}
END_TEST

START_TEST(test_put_sequence)
{
    /* Replies append; one that does not fit leaves the ones before it. */
    char out[64];
    size_t len = 0;
    ck_assert(resp_put_array(out, sizeof out, &len, 2));
    ck_assert(resp_put_bulk(out, sizeof out, &len, "v1", 2));
    ck_assert(resp_put_nil(out, sizeof out, &len));
    ck_assert(resp_put_int(out, sizeof out, &len, 7));
    static const char want[] = "*2\r\n$2\r\nv1\r\n$-1\r\n:7\r\n";
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert(memcmp(out, want, len) == 0);
    char big[64];
    memset(big, 'x', sizeof big);
    ck_assert(!resp_put_bulk(out, sizeof out, &len, big, sizeof big));
    ck_assert_uint_eq(len, sizeof want - 1);
    /* A length already past cap is refused, not trusted. */
    len = sizeof out + 1;
    ck_assert(!resp_put_nil(out, sizeof out, &len));
    ck_assert(!resp_put_simple(out, sizeof out, &len, ""));
    ck_assert(!resp_put_bulk(out, sizeof out, &len, NULL, 0));
    ck_assert_uint_eq(len, sizeof out + 1);
}
END_TEST

START_TEST(test_bulk_size)
{
    /* Against what resp_put_bulk writes, across every change in the number of digits. */
    static char payload[100001];
    size_t ns[] = {0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000, 99999, 100000};
    char *out = malloc(sizeof payload + 32);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t len = 0;
        ck_assert(resp_put_bulk(out, sizeof payload + 32, &len, payload, ns[i]));
        char head[32];
        int h = snprintf(head, sizeof head, "$%zu\r\n", ns[i]);
        ck_assert_uint_eq(len, (size_t)h + ns[i] + 2);
        /* The header's digits as printf writes them (resp.c formats them by hand). */
        ck_assert_msg(memcmp(out, head, (size_t)h) == 0, "header \"%.*s\", expected \"%s\"", h,
                      out, head);
        ck_assert_uint_eq(resp_bulk_size(ns[i]), len);
    }
    free(out);
    ck_assert_uint_eq(resp_bulk_size(0), 6);
    ck_assert_uint_eq(resp_bulk_size(10), 17);
    /* Too big to frame: saturates rather than wrapping to a small size. */
    ck_assert_uint_eq(resp_bulk_size(SIZE_MAX), SIZE_MAX);
    ck_assert_uint_eq(resp_bulk_size(SIZE_MAX - 10), SIZE_MAX);
    ck_assert(resp_bulk_size(SIZE_MAX - 100) > SIZE_MAX - 100);
}
END_TEST

/* ---- the fuzzing seeds ---- */

/* Reads path whole; *n bytes, malloc'd (never NULL). */
static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
    }
    ck_assert_msg(!ferror(f), "%s: read error", path);
    fclose(f);
    *n = len;
    return buf;
}

/* What the first command of some seeds must give under lim_std, so that a seed keeps
 * meaning what its name says; the others only go through the fuzzer's checks. */
static const struct {
    const char *file;
    resp_result first;
} seed_meaning[] = {
    {"get.txt", RESP_DONE},
    {"inline_ping.txt", RESP_DONE},
    {"truncated_array.txt", RESP_INCOMPLETE},
    {"huge_count.txt", RESP_BAD},
    {"huge_length.txt", RESP_BAD},
    {"negative_length.txt", RESP_BAD},
    {"wrong_type.txt", RESP_BAD},
    {"missing_crlf.txt", RESP_BAD},
    {"endless_header.txt", RESP_BAD},
    {"long_inline.txt", RESP_BAD},
};

static void check_seed_meaning(const char *name, const char *data, size_t n)
{
    for (size_t i = 0; i < sizeof seed_meaning / sizeof seed_meaning[0]; i++) {
        if (strcmp(name, seed_meaning[i].file) != 0) continue;
        parsed p;
        parse_with(&p, data, n, &lim_std);
        ck_assert_msg(p.r == seed_meaning[i].first, "%s: %s, expected %s", name,
                      result_name(p.r), result_name(seed_meaning[i].first));
        parsed_free(&p);
    }
}

/* tests/corpus/resp/ (or $PRECAST_RESP_CORPUS), relative to the repository root where
 * tests/run-all.sh runs; every file but dot files goes through resp_fuzz_check. */
START_TEST(test_corpus_replay)
{
    const char *dir = getenv("PRECAST_RESP_CORPUS");
    if (dir == NULL) dir = "tests/corpus/resp";
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s (run from the repository root or set PRECAST_RESP_CORPUS)",
                  dir, strerror(errno));
    size_t files = 0, named = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        ck_assert_int_lt(snprintf(path, sizeof path, "%s/%s", dir, e->d_name), (int)sizeof path);
        size_t n;
        char *data = read_file(path, &n);
        char why[256] = "";
        ck_assert_msg(resp_fuzz_check((const uint8_t *)data, n, why, sizeof why), "%s: %s", path,
                      why);
        check_seed_meaning(e->d_name, data, n);
        for (size_t i = 0; i < sizeof seed_meaning / sizeof seed_meaning[0]; i++)
            named += strcmp(e->d_name, seed_meaning[i].file) == 0;
        free(data);
        files++;
    }
    closedir(d);
    /* A corpus that went missing or lost files must not pass by checking nothing. */
    ck_assert_uint_ge(files, 10);
    ck_assert_uint_eq(named, sizeof seed_meaning / sizeof seed_meaning[0]);
}
END_TEST

static Suite *resp_suite(void)
{
    Suite *s = suite_create("resp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_multibulk_get);
    tcase_add_test(tc, test_multibulk_binary);
    tcase_add_test(tc, test_arg_points_into_buffer);
    tcase_add_test(tc, test_pipeline);
    tcase_add_test(tc, test_restart_byte_by_byte);
    tcase_add_test(tc, test_every_prefix);
    tcase_add_test(tc, test_multibulk_limits);
    tcase_add_test(tc, test_huge_numbers);
    tcase_add_test(tc, test_bad_numbers);
    tcase_add_test(tc, test_endless_header);
    tcase_add_test(tc, test_wrong_type);
    tcase_add_test(tc, test_missing_crlf);
    tcase_add_test(tc, test_empty_commands);
    tcase_add_test(tc, test_inline);
    tcase_add_test(tc, test_inline_limits);
    tcase_add_test(tc, test_zero_limits);
    tcase_add_test(tc, test_err_buffer);
    tcase_add_test(tc, test_arg_is);
    tcase_add_test(tc, test_put_exact_bytes);
    tcase_add_test(tc, test_put_sanitises);
    tcase_add_test(tc, test_put_sequence);
    tcase_add_test(tc, test_bulk_size);
    tcase_add_test(tc, test_corpus_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(resp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
