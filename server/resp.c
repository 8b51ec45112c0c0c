/*
 * resp.c — RESP2 requests and replies (contract in resp.h).
 *
 * The parser keeps no state between calls: every call starts again at the first byte of the
 * command.  A command that arrives in pieces is therefore scanned more than once, but every
 * command is bounded by resp_limits, and there is no per-connection parser state to get out
 * of step with the buffer.  What makes the restart safe is the prefix rule that every step
 * below keeps: a decision is taken only from bytes that are in the buffer, in order, and a
 * result other than RESP_INCOMPLETE for buf[0..k) is the same result (same consumed, same
 * arguments, same message) for any longer buffer that starts with those k bytes.  It is also
 * what makes a limit violation an error as soon as the header that shows it has arrived.
 *
 * Numbers ("*N", "$L") follow Redis's string2ll: an optional '-', then "0" or digits without
 * a leading zero, within int64_t; so "+1", "01", "-0", " 1" and "" are all invalid.
 */
#include "server/resp.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Longest "*N" or "$L" header line, its CRLF excluded.  The type byte, a sign and the 19
 * digits of an int64_t make 21; past 32 bytes without CRLF the client is not sending a
 * header, and waiting for one would let it hold a connection open with an endless number. */
#define RESP_HEADER_MAX 32

/* Where a parse step stands: the caller's input, the position reached, and where a
 * protocol error's message goes. */
typedef struct resp_cursor {
    const char *buf;
    size_t len;
    size_t pos;
    char *err;
    size_t errlen;
} resp_cursor;

/* Fills the caller's err with msg and returns RESP_BAD, so that error paths are one line. */
static resp_result resp_bad(resp_cursor *c, const char *msg)
{
    if (c->errlen > 0) snprintf(c->err, c->errlen, "%s", msg);
    return RESP_BAD;
}

/* string2ll's grammar (see the top of the file); false on anything else or on overflow. */
static bool resp_parse_ll(const char *s, size_t n, long long *out)
{
    bool neg = n > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n) return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[i] < '1' || s[i] > '9') return false; /* "", "-", "01", "-0", "+1" */
    /* Accumulate the magnitude unsigned: LLONG_MIN's does not fit in a long long. */
    unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    /* -(v - 1) - 1 rather than -v: negating LLONG_MIN's magnitude as a long long overflows. */
    *out = neg ? -(long long)(v - 1) - 1 : (long long)v;
    return true;
}

/* Reads the header line at c->pos ("*N" or "$L", type byte included) and parses its number
 * into *value, leaving c->pos after its CRLF.  too_long is the message for a line with no CR
 * in RESP_HEADER_MAX bytes, invalid the one for a line that is not a number or whose CR is
 * not followed by LF.  RESP_DONE when *value is set. */
static resp_result resp_read_header(resp_cursor *c, const char *too_long, const char *invalid,
                                    long long *value)
{
    const char *line = c->buf + c->pos;
    size_t avail = c->len - c->pos;
    size_t window = avail < RESP_HEADER_MAX + 1 ? avail : RESP_HEADER_MAX + 1;
    const char *cr = memchr(line, '\r', window);
    if (cr == NULL)
        return avail > RESP_HEADER_MAX ? resp_bad(c, too_long) : RESP_INCOMPLETE;
    size_t n = (size_t)(cr - line);
    if (n + 1 == avail) return RESP_INCOMPLETE; /* the LF has not arrived */
    if (cr[1] != '\n') return resp_bad(c, invalid);
    if (!resp_parse_ll(line + 1, n - 1, value)) return resp_bad(c, invalid);
    c->pos += n + 2;
    return RESP_DONE;
}

/* "Protocol error: expected '$', got 'X'", as Redis words it; a byte that is not printable
 * ASCII is shown as \xHH so that the message stays one line of text. */
static resp_result resp_bad_type(resp_cursor *c, unsigned char got)
{
    if (c->errlen == 0) return RESP_BAD;
    if (got >= 0x20 && got < 0x7f)
        snprintf(c->err, c->errlen, "Protocol error: expected '$', got '%c'", got);
    else
        snprintf(c->err, c->errlen, "Protocol error: expected '$', got '\\x%02x'", got);
    return RESP_BAD;
}

/* Parses one "$L\r\n<L bytes>\r\n" at c->pos into *arg, leaving c->pos after it.  Each
 * check runs as soon as its bytes are there: the type byte, then the length against the
 * limit, then the CR and the LF after the payload, so a bad element is never waited for. */
static resp_result resp_parse_bulk(resp_cursor *c, const resp_limits *lim, resp_arg *arg)
{
    if (c->pos == c->len) return RESP_INCOMPLETE;
    if (c->buf[c->pos] != '$') return resp_bad_type(c, (unsigned char)c->buf[c->pos]);
    long long l;
    resp_result r = resp_read_header(c, "Protocol error: too big bulk count string",
                                     "Protocol error: invalid bulk length", &l);
    if (r != RESP_DONE) return r;
    if (l < 0 || (unsigned long long)l > lim->max_arg_bytes)
        return resp_bad(c, "Protocol error: invalid bulk length");
    size_t n = (size_t)l;
    size_t avail = c->len - c->pos;
    if (avail <= n) return RESP_INCOMPLETE; /* payload, or its CR, still to come */
    const char *p = c->buf + c->pos;
    if (p[n] != '\r' || (avail > n + 1 && p[n + 1] != '\n'))
        return resp_bad(c, "Protocol error: bulk string not followed by CRLF");
    if (avail == n + 1) return RESP_INCOMPLETE;
    arg->ptr = p;
    arg->len = n;
    c->pos += n + 2;
    return RESP_DONE;
}

/* "*N\r\n" and N bulk strings.  N <= 0 is an empty command, as in Redis (redis-cli never
 * sends one, but Redis accepts it).  N above max_args fails at the header, before any
 * element is read or waited for. */
static resp_result resp_parse_multibulk(resp_cursor *c, const resp_limits *lim, resp_arg *argv,
                                        size_t *argc)
{
    const char *invalid = "Protocol error: invalid multibulk length";
    long long n;
    resp_result r = resp_read_header(c, "Protocol error: too big mbulk count string", invalid,
                                     &n);
    if (r != RESP_DONE) return r;
    if (n <= 0) return RESP_EMPTY;
    if ((unsigned long long)n > lim->max_args) return resp_bad(c, invalid);
    for (size_t i = 0; i < (size_t)n; i++) {
        r = resp_parse_bulk(c, lim, &argv[i]);
        if (r != RESP_DONE) return r;
    }
    *argc = (size_t)n;
    return RESP_DONE;
}

/* Finds the end of the inline line at the start of c->buf: *end is its length without the
 * "\n" or "\r\n", and c->pos is set after the terminator.  The line may be at most
 * lim->max_inline bytes, so the search stops at max_inline + 2 bytes (the longest line and
 * its "\r\n"); a longer line is an error as soon as that many bytes have arrived. */
static resp_result resp_inline_line(resp_cursor *c, const resp_limits *lim, size_t *end)
{
    const char *too_big = "Protocol error: too big inline request";
    size_t window = c->len;
    if (lim->max_inline < SIZE_MAX - 2 && window > lim->max_inline + 2)
        window = lim->max_inline + 2;
    const char *nl = memchr(c->buf, '\n', window);
    if (nl == NULL) {
        /* No LF yet: the line holds at least these bytes, but a final CR may be the
         * terminator's. */
        size_t sofar = window;
        if (c->buf[sofar - 1] == '\r') sofar--;
        return sofar > lim->max_inline ? resp_bad(c, too_big) : RESP_INCOMPLETE;
    }
    size_t e = (size_t)(nl - c->buf);
    c->pos = e + 1;
    if (e > 0 && c->buf[e - 1] == '\r') e--;
    if (e > lim->max_inline) return resp_bad(c, too_big);
    *end = e;
    return RESP_DONE;
}

static bool resp_is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* An inline command: words separated by spaces and tabs.  Unlike Redis, quotes are not
 * interpreted ("a b" is two words, '"a' and 'b"'): inline commands are for a person at a
 * telnet prompt, and every argument that needs quoting can be sent as a bulk string. */
static resp_result resp_parse_inline(resp_cursor *c, const resp_limits *lim, resp_arg *argv,
                                     size_t *argc)
{
    size_t end;
    resp_result r = resp_inline_line(c, lim, &end);
    if (r != RESP_DONE) return r;
    size_t n = 0;
    for (size_t i = 0; i < end;) {
        if (resp_is_blank(c->buf[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < end && !resp_is_blank(c->buf[i])) i++;
        if (n == lim->max_args) return resp_bad(c, "Protocol error: too many arguments");
        if (i - start > lim->max_arg_bytes)
            return resp_bad(c, "Protocol error: too big inline argument");
        argv[n].ptr = c->buf + start;
        argv[n].len = i - start;
        n++;
    }
    if (n == 0) return RESP_EMPTY;
    *argc = n;
    return RESP_DONE;
}

resp_result resp_parse(const char *buf, size_t len, const resp_limits *lim, resp_arg *argv,
                       size_t *argc, size_t *consumed, char *err, size_t errlen)
{
    resp_cursor c = {.buf = buf, .len = len, .pos = 0, .err = err, .errlen = errlen};
    *argc = 0;
    *consumed = 0;
    if (len == 0) return RESP_INCOMPLETE;
    resp_result r = buf[0] == '*' ? resp_parse_multibulk(&c, lim, argv, argc)
                                  : resp_parse_inline(&c, lim, argv, argc);
    if (r == RESP_DONE || r == RESP_EMPTY) *consumed = c.pos;
    return r;
}

/* ASCII only: tolower() would follow the locale, and command names are ASCII. */
static char resp_ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

bool resp_arg_is(const resp_arg *a, const char *name)
{
    size_t n = strlen(name);
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++)
        if (resp_ascii_lower(a->ptr[i]) != resp_ascii_lower(name[i])) return false;
    return true;
}

/* ---- replies ---- */

/* Bytes left in out; none if *len is already past cap (a caller's bug: refuse to write). */
static size_t resp_room(size_t cap, const size_t *len)
{
    return *len <= cap ? cap - *len : 0;
}

/* Appends type, s[0..n) with every CR and LF replaced by a space, and CRLF: one line that a
 * client reads as one reply whatever s holds. */
static bool resp_put_line(char *out, size_t cap, size_t *len, char type, const char *s,
                          size_t n)
{
    size_t room = resp_room(cap, len);
    if (room < 3 || n > room - 3) return false;
    char *o = out + *len;
    *o++ = type;
    for (size_t i = 0; i < n; i++) o[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
    o[n] = '\r';
    o[n + 1] = '\n';
    *len += n + 3;
    return true;
}

bool resp_put_simple(char *out, size_t cap, size_t *len, const char *s)
{
    return resp_put_line(out, cap, len, '+', s, strlen(s));
}

bool resp_put_error(char *out, size_t cap, size_t *len, const char *msg)
{
    return resp_put_line(out, cap, len, '-', msg, strlen(msg));
}

/* Writes v's decimal digits ending just before end; returns where they start.  Replies
 * carry a length or two each, and snprintf's format interpretation was a tenth of a pipelined
 * GET's instructions (callgrind). */
static char *resp_digits(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

bool resp_put_int(char *out, size_t cap, size_t *len, long long v)
{
    char num[24]; /* "-9223372036854775808" */
    /* The magnitude unsigned: LLONG_MIN's does not fit in a long long. */
    unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *p = resp_digits(num + sizeof num, mag);
    if (v < 0)
        *--p = '-';
    return resp_put_line(out, cap, len, ':', p, (size_t)(num + sizeof num - p));
}

bool resp_put_nil(char *out, size_t cap, size_t *len)
{
    return resp_put_line(out, cap, len, '$', "-1", 2);
}

bool resp_put_array(char *out, size_t cap, size_t *len, size_t n)
{
    char num[24];
    char *p = resp_digits(num + sizeof num, n);
    return resp_put_line(out, cap, len, '*', p, (size_t)(num + sizeof num - p));
}

bool resp_put_bulk(char *out, size_t cap, size_t *len, const void *p, size_t n)
{
    char buf[32]; /* "$18446744073709551615\r\n" */
    char *head = resp_digits(buf + sizeof buf - 2, n) - 1;
    head[0] = '$';
    memcpy(buf + sizeof buf - 2, "\r\n", 2);
    size_t h = (size_t)(buf + sizeof buf - head);
    size_t room = resp_room(cap, len);
    /* h + n + 2 <= room, written so that no sum can wrap. */
    if (h > room || n > room - h || room - h - n < 2) return false;
    char *o = out + *len;
    memcpy(o, head, h);
    if (n > 0) memcpy(o + h, p, n); /* p may be NULL when n is 0 */
    memcpy(o + h + n, "\r\n", 2);
    *len += h + n + 2;
    return true;
}

size_t resp_bulk_size(size_t n)
{
    size_t digits = 1;
    for (size_t v = n; v >= 10; v /= 10) digits++;
    size_t frame = 1 + digits + 2 + 2; /* "$", the digits, CRLF, and the closing CRLF */
    return n > SIZE_MAX - frame ? SIZE_MAX : frame + n;
}
