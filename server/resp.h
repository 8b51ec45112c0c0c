/*
 * resp.h — the Redis serialization protocol (RESP2), server side: an incremental request
 * parser and reply writers.  No I/O, no global state: the caller owns every buffer.
 *
 * Requests arrive as RESP arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$2\r\n42\r\n"), as
 * redis-cli and redis-benchmark send them, or as inline commands ("GET 42\r\n", as typed
 * into telnet: words split on spaces and tabs, "\n" alone also ends the line).  Bulk strings
 * are binary-safe; inline words are not quoted as in Redis ('"a b"' is two words).
 *
 * The parser keeps no state between calls: after RESP_INCOMPLETE, call it again from the
 * start of the same command once more bytes are appended.  A result other than
 * RESP_INCOMPLETE never changes when more bytes arrive after those it was given.
 *
 * The parser trusts nothing: every count and length is checked against resp_limits before
 * anything is allocated or waited for, so a hostile "*2147483647\r\n" or "$999999999999\r\n"
 * is an error at once, not a buffer that grows until memory runs out.
 */
#ifndef PRECAST_SERVER_RESP_H
#define PRECAST_SERVER_RESP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct resp_limits {
    size_t max_args;      /* most arguments in one command, the command name included */
    size_t max_arg_bytes; /* longest argument (bulk string or inline word) */
    size_t max_inline;    /* longest inline command line, "\r\n" excluded */
} resp_limits;

/* One argument: bytes inside the caller's input buffer (not NUL-terminated). */
typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg;

typedef enum resp_result {
    RESP_DONE,       /* a whole command: *argc arguments in argv, *consumed bytes used */
    RESP_INCOMPLETE, /* buf holds only the start of a command: read more and call again */
    RESP_EMPTY,      /* a blank inline line, or an array of 0 or fewer elements ("*0",
                        "*-1"), as in Redis: *consumed bytes to skip, no command */
    RESP_BAD         /* protocol error: err holds a Redis-style message; close the connection */
} resp_result;

/* Parses the first command in buf[0..len).  argv has room for lim->max_args entries; on
 * RESP_DONE they point into buf, so buf must not move until the caller is done with them.
 * *argc and *consumed are 0 unless the result is RESP_DONE or RESP_EMPTY; argv's entries
 * mean nothing unless it is RESP_DONE.  On RESP_BAD, and only then, err (errlen bytes, may
 * be NULL if errlen is 0) holds a NUL-terminated message such as
 * "Protocol error: invalid multibulk length" (no "ERR " prefix, no CRLF).  A command that
 * exceeds a limit is RESP_BAD as soon as its header shows it, whether or not the rest has
 * arrived; so is a "*N" or "$L" line of more than 32 bytes.  Never reads outside
 * buf[0..len); never allocates. */
resp_result resp_parse(const char *buf, size_t len, const resp_limits *lim, resp_arg *argv,
                       size_t *argc, size_t *consumed, char *err, size_t errlen);

/* Case-insensitive comparison of an argument with an ASCII command name ("get"). */
bool resp_arg_is(const resp_arg *a, const char *name);

/* ---- replies ----
 * Each writer appends one reply to out (cap bytes, *len used so far) and returns true, or
 * returns false and leaves *len and out unchanged if it does not fit (or if *len > cap).
 * Simple strings and errors are one line: any CR or LF in s or msg is written as a space,
 * so that no text can end the reply early or inject another.  resp_put_bulk's p may be
 * NULL when n is 0. */
bool resp_put_simple(char *out, size_t cap, size_t *len, const char *s);          /* +s   */
bool resp_put_error(char *out, size_t cap, size_t *len, const char *msg);         /* -msg */
bool resp_put_int(char *out, size_t cap, size_t *len, long long v);               /* :v   */
bool resp_put_bulk(char *out, size_t cap, size_t *len, const void *p, size_t n);  /* $n.. */
bool resp_put_nil(char *out, size_t cap, size_t *len);                            /* $-1  */
bool resp_put_array(char *out, size_t cap, size_t *len, size_t n);                /* *n   */

/* Bytes resp_put_bulk needs for an n-byte string ("$n\r\n", n bytes, "\r\n"); SIZE_MAX if
 * that does not fit in a size_t. */
size_t resp_bulk_size(size_t n);

#endif
