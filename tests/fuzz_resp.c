/* libFuzzer harness over the RESP parser and reply writers (server/resp.c).  `make check-fuzz`
 * builds it with clang and runs it for FUZZ_SECONDS (tests/fuzz.mk), seeded from
 * tests/corpus/resp/.
 *
 * Every check lives in resp_fuzz_check(), which tests/test_resp.c also runs over each seed
 * file, so that `make check` replays the corpus without a fuzzer (fuzz.mk links this file's
 * object into test_resp; without libFuzzer, LLVMFuzzerTestOneInput is an unused function).
 *
 * For each input, under each of a few resp_limits (zero, small, Redis-like):
 *   - the input is consumed as a server would: resp_parse from the start, skip what a
 *     RESP_DONE or RESP_EMPTY consumed, stop at RESP_INCOMPLETE or RESP_BAD;
 *   - each result is checked: consumed <= len, arguments inside the consumed bytes and within
 *     the limits, argv written only within max_args entries (it is allocated to exactly that),
 *     a one-line "Protocol error: ..." message on RESP_BAD;
 *   - the prefix rule that makes the stateless parser restartable: for a shorter buffer
 *     holding the same first bytes (copied into an allocation of exactly that size, so that
 *     ASan sees any read past it) the result is RESP_INCOMPLETE or the very same result;
 *   - a multibulk command re-encoded with the writers gives back exactly its bytes (numbers
 *     have one spelling), and an inline one parses back to the same arguments.
 * Then the writers run on bytes of the input with caps around the exact size each reply
 * needs, into allocations of exactly cap bytes, and must write exactly what an independent
 * formatting says, or nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/resp.h"

/* Also declared in tests/test_resp.c.  True when every invariant held; otherwise false with
 * why (whylen bytes) naming the broken check and its line in this file. */
bool resp_fuzz_check(const uint8_t *data, size_t size, char *why, size_t whylen);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    char *why;
    size_t whylen;
    const resp_limits *lim;
} fz;

static bool fz_fail(fz *f, int line, const char *what)
{
    snprintf(f->why, f->whylen, "fuzz_resp.c:%d: limits %zu/%zu/%zu: %s", line,
             f->lim != NULL ? f->lim->max_args : 0, f->lim != NULL ? f->lim->max_arg_bytes : 0,
             f->lim != NULL ? f->lim->max_inline : 0, what);
    return false;
}

#define REQUIRE(f, c)                                          \
    do {                                                       \
        if (!(c)) return fz_fail((f), __LINE__, #c);           \
    } while (0)

/* No allocation may fail quietly into a pass: an out-of-memory skips the input instead. */
static void *fz_dup(const char *p, size_t n)
{
    char *q = malloc(n > 0 ? n : 1);
    if (q != NULL && n > 0) memcpy(q, p, n);
    return q;
}

/* One parse: its result and outputs, with argv allocated to exactly max_args entries. */
typedef struct fz_parse {
    resp_result r;
    size_t argc, consumed;
    char err[128];
    resp_arg *argv;
} fz_parse;

static void fz_run(fz_parse *p, const char *buf, size_t n, const resp_limits *lim)
{
    p->err[0] = '\0';
    p->r = resp_parse(buf, n, lim, p->argv, &p->argc, &p->consumed, p->err, sizeof p->err);
}

static bool fz_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The invariants of one result on its own. */
static bool fz_check_result(fz *f, const char *buf, size_t n, const fz_parse *p)
{
    const resp_limits *lim = f->lim;
    REQUIRE(f, p->r == RESP_DONE || p->r == RESP_INCOMPLETE || p->r == RESP_EMPTY ||
                   p->r == RESP_BAD);
    REQUIRE(f, p->consumed <= n);
    if (p->r == RESP_INCOMPLETE || p->r == RESP_BAD) REQUIRE(f, p->consumed == 0 && p->argc == 0);
    if (p->r == RESP_EMPTY) REQUIRE(f, p->consumed > 0 && p->argc == 0);
    if (p->r == RESP_BAD) {
        REQUIRE(f, strncmp(p->err, "Protocol error: ", 16) == 0);
        REQUIRE(f, strlen(p->err) > 16 && strlen(p->err) < sizeof p->err - 1);
        REQUIRE(f, strpbrk(p->err, "\r\n") == NULL);
    }
    if (p->r != RESP_DONE) return true;
    REQUIRE(f, p->consumed > 0 && p->argc > 0 && p->argc <= lim->max_args);
    uintptr_t lo = (uintptr_t)buf, hi = lo + p->consumed;
    for (size_t i = 0; i < p->argc; i++) {
        uintptr_t a = (uintptr_t)p->argv[i].ptr;
        REQUIRE(f, a >= lo && a <= hi && p->argv[i].len <= hi - a);
        REQUIRE(f, p->argv[i].len <= lim->max_arg_bytes);
    }
    return true;
}

/* Inline specifics: a whole line ending in '\n', words without blanks, in order; an empty
 * result is a blank line. */
static bool fz_check_inline(fz *f, const char *buf, const fz_parse *p)
{
    if (p->r != RESP_DONE && p->r != RESP_EMPTY) return true;
    REQUIRE(f, buf[p->consumed - 1] == '\n');
    REQUIRE(f, memchr(buf, '\n', p->consumed - 1) == NULL);
    size_t end = p->consumed - 1;
    if (end > 0 && buf[end - 1] == '\r') end--;
    REQUIRE(f, end <= f->lim->max_inline);
    if (p->r == RESP_EMPTY) {
        for (size_t i = 0; i < end; i++) REQUIRE(f, fz_is_blank(buf[i]));
        return true;
    }
    const char *prev_end = buf;
    for (size_t i = 0; i < p->argc; i++) {
        const resp_arg *a = &p->argv[i];
        REQUIRE(f, a->len > 0 && a->ptr >= prev_end && a->ptr + a->len <= buf + end);
        for (size_t k = 0; k < a->len; k++) REQUIRE(f, !fz_is_blank(a->ptr[k]));
        for (const char *q = prev_end; q < a->ptr; q++) REQUIRE(f, fz_is_blank(*q));
        prev_end = a->ptr + a->len;
    }
    for (const char *q = prev_end; q < buf + end; q++) REQUIRE(f, fz_is_blank(*q));
    return true;
}

/* Same result, consumed, message and arguments (as offsets, the buffers differing). */
static bool fz_same(fz *f, const char *a_buf, const fz_parse *a, const char *b_buf,
                    const fz_parse *b)
{
    REQUIRE(f, a->r == b->r && a->consumed == b->consumed && a->argc == b->argc);
    if (a->r == RESP_BAD) REQUIRE(f, strcmp(a->err, b->err) == 0);
    for (size_t i = 0; i < a->argc; i++) {
        REQUIRE(f, a->argv[i].ptr - a_buf == b->argv[i].ptr - b_buf);
        REQUIRE(f, a->argv[i].len == b->argv[i].len);
    }
    return true;
}

/* The prefix rule, on buf[0..k) in an allocation of exactly k bytes: RESP_INCOMPLETE or the
 * full result; and the full result itself once k covers what a RESP_DONE or RESP_EMPTY used
 * (the parser must not need a byte beyond the command to decide). */
static bool fz_check_prefix(fz *f, const char *buf, const fz_parse *full, size_t k,
                            resp_arg *scratch, bool *oom)
{
    char *copy = fz_dup(buf, k);
    if (copy == NULL) return !(*oom = true);
    fz_parse p = {.argv = scratch};
    fz_run(&p, copy, k, f->lim);
    bool decided = (full->r == RESP_DONE || full->r == RESP_EMPTY) && k >= full->consumed;
    bool ok = fz_check_result(f, copy, k, &p);
    if (ok && (p.r != RESP_INCOMPLETE || decided)) ok = fz_same(f, buf, full, copy, &p);
    free(copy);
    return ok;
}

static bool fz_check_prefixes(fz *f, const char *buf, size_t n, const fz_parse *full,
                              resp_arg *scratch, bool *oom)
{
    size_t end = full->r == RESP_DONE || full->r == RESP_EMPTY ? full->consumed : n;
    size_t ks[] = {end, end - 1, end / 2, end / 3};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        if (ks[i] > end) continue; /* end - 1 when end is 0 */
        if (!fz_check_prefix(f, buf, full, ks[i], scratch, oom)) return false;
    }
    return true;
}

/* Writes the command back with the writers, into exactly the bytes they need. */
static char *fz_encode(const fz_parse *p, size_t *n)
{
    size_t cap = 32; /* "*N\r\n" */
    for (size_t i = 0; i < p->argc; i++) cap += resp_bulk_size(p->argv[i].len);
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    *n = 0;
    bool ok = resp_put_array(out, cap, n, p->argc);
    for (size_t i = 0; i < p->argc && ok; i++)
        ok = resp_put_bulk(out, cap, n, p->argv[i].ptr, p->argv[i].len);
    if (!ok) __builtin_trap(); /* cap was computed to fit: a writer is wrong */
    return out;
}

/* A multibulk command's bytes are its only encoding; an inline one means the same as its
 * encoding.  Either way the encoding parses back to the same arguments. */
static bool fz_check_encoding(fz *f, const char *buf, const fz_parse *p, resp_arg *scratch,
                              bool *oom)
{
    if (p->r != RESP_DONE) return true;
    size_t n;
    char *enc = fz_encode(p, &n);
    if (enc == NULL) return !(*oom = true);
    bool ok = true;
    if (buf[0] == '*')
        ok = (n == p->consumed && memcmp(enc, buf, n) == 0) ||
             fz_fail(f, __LINE__, "multibulk bytes differ from their re-encoding");
    fz_parse q = {.argv = scratch};
    if (ok) {
        fz_run(&q, enc, n, f->lim);
        ok = (q.r == RESP_DONE && q.consumed == n && q.argc == p->argc) ||
             fz_fail(f, __LINE__, "the re-encoded command does not parse back");
    }
    for (size_t i = 0; ok && i < p->argc; i++)
        ok = (q.argv[i].len == p->argv[i].len &&
              memcmp(q.argv[i].ptr, p->argv[i].ptr, p->argv[i].len) == 0) ||
             fz_fail(f, __LINE__, "the re-encoded command parses to other arguments");
    free(enc);
    return ok;
}

/* resp_arg_is against the argument's own bytes in the other case, and against a near miss. */
static bool fz_check_arg_is(fz *f, const resp_arg *a)
{
    char name[16];
    size_t n = a->len;
    if (n + 2 > sizeof name || memchr(a->ptr, '\0', n) != NULL) return true;
    for (size_t i = 0; i < n; i++) {
        char c = a->ptr[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        name[i] = letter ? (char)(c ^ 0x20) : c; /* the other case */
    }
    name[n] = '\0';
    REQUIRE(f, resp_arg_is(a, name));
    if (n > 0) { /* another byte in either case: case folding changes bit 5 only */
        name[n - 1] ^= 1;
        REQUIRE(f, !resp_arg_is(a, name));
        name[n - 1] ^= 1;
    }
    name[n] = 'x';
    name[n + 1] = '\0';
    REQUIRE(f, !resp_arg_is(a, name));
    return true;
}

/* The whole stream under one set of limits, as a server would consume it. */
static bool fz_check_stream(fz *f, const char *data, size_t size, bool *oom)
{
    size_t nargs = f->lim->max_args;
    resp_arg *argv = malloc(nargs * sizeof *argv + 1), *scratch = malloc(nargs * sizeof *argv + 1);
    bool ok = argv != NULL && scratch != NULL;
    if (!ok) *oom = true;
    /* Ends with the parse of the empty rest once everything has been consumed. */
    for (size_t pos = 0; ok;) {
        const char *buf = data + pos;
        size_t n = size - pos;
        fz_parse p = {.argv = argv};
        fz_run(&p, buf, n, f->lim);
        ok = fz_check_result(f, buf, n, &p) &&
             ((n > 0 && buf[0] == '*') || fz_check_inline(f, buf, &p)) &&
             fz_check_prefixes(f, buf, n, &p, scratch, oom) &&
             fz_check_encoding(f, buf, &p, scratch, oom);
        for (size_t i = 0; ok && i < p.argc; i++) ok = fz_check_arg_is(f, &p.argv[i]);
        if (ok && p.r == RESP_BAD) {
            /* Without room for a message the result is the same, and a short err holds the
             * start of the message, NUL-terminated. */
            fz_parse q = {.argv = scratch};
            q.r = resp_parse(buf, n, f->lim, q.argv, &q.argc, &q.consumed, NULL, 0);
            ok = q.r == RESP_BAD || fz_fail(f, __LINE__, "result depends on errlen 0");
            char small[8];
            memset(small, 'z', sizeof small);
            q.r = resp_parse(buf, n, f->lim, q.argv, &q.argc, &q.consumed, small, sizeof small);
            ok = ok && ((q.r == RESP_BAD && memchr(small, '\0', sizeof small) != NULL &&
                         strncmp(small, p.err, sizeof small - 1) == 0) ||
                        fz_fail(f, __LINE__, "a short err is not the message's start"));
        }
        if (p.r != RESP_DONE && p.r != RESP_EMPTY) break;
        pos += p.consumed;
    }
    free(argv);
    free(scratch);
    return ok;
}

/* ---- writers ---- */

enum fz_reply { FZ_SIMPLE, FZ_ERROR, FZ_INT, FZ_BULK, FZ_NIL, FZ_ARRAY, FZ_NREPLIES };

/* What one writer call gets: a string (NUL-terminated), bytes, or a number. */
typedef struct fz_value {
    const char *s;
    const char *p;
    size_t n;
    long long v;
} fz_value;

static bool fz_call(enum fz_reply kind, char *out, size_t cap, size_t *len, const fz_value *x)
{
    switch (kind) {
    case FZ_SIMPLE: return resp_put_simple(out, cap, len, x->s);
    case FZ_ERROR: return resp_put_error(out, cap, len, x->s);
    case FZ_INT: return resp_put_int(out, cap, len, x->v);
    case FZ_BULK: return resp_put_bulk(out, cap, len, x->p, x->n);
    case FZ_NIL: return resp_put_nil(out, cap, len);
    default: return resp_put_array(out, cap, len, x->n);
    }
}

/* The naive twin: the reply's bytes, formatted the obvious way, into *exp (malloc'd). */
static size_t fz_expect(enum fz_reply kind, const fz_value *x, char **exp)
{
    size_t sl = strlen(x->s);
    char *e = malloc(64 + sl + (kind == FZ_BULK ? x->n : 0));
    if (e == NULL) return 0;
    int k = 0;
    switch (kind) {
    case FZ_SIMPLE:
    case FZ_ERROR:
        e[0] = kind == FZ_SIMPLE ? '+' : '-';
        for (size_t i = 0; i < sl; i++)
            e[1 + i] = x->s[i] == '\r' || x->s[i] == '\n' ? ' ' : x->s[i];
        memcpy(e + 1 + sl, "\r\n", 2);
        *exp = e;
        return sl + 3;
    case FZ_INT: k = snprintf(e, 64, ":%lld\r\n", x->v); break;
    case FZ_NIL: k = snprintf(e, 64, "$-1\r\n"); break;
    case FZ_ARRAY: k = snprintf(e, 64, "*%zu\r\n", x->n); break;
    case FZ_BULK:
        k = snprintf(e, 64, "$%zu\r\n", x->n);
        if (x->n > 0) memcpy(e + k, x->p, x->n);
        memcpy(e + k + x->n, "\r\n", 2);
        k += (int)x->n + 2;
        break;
    default: break;
    }
    *exp = e;
    return (size_t)k;
}

/* One writer into out[cap] (an allocation of exactly cap bytes) already holding len0 bytes:
 * true exactly when the reply fits, then exactly the expected bytes after the first len0;
 * false leaves *len and every byte alone. */
static bool fz_check_put(fz *f, enum fz_reply kind, const fz_value *x, const char *exp,
                         size_t need, size_t cap, size_t len0, bool *oom)
{
    char *out = malloc(cap > 0 ? cap : 1), *before = malloc(cap > 0 ? cap : 1);
    if (out == NULL || before == NULL) {
        free(out);
        free(before);
        return !(*oom = true);
    }
    for (size_t i = 0; i < cap; i++) out[i] = (char)('a' + i % 26);
    memcpy(before, out, cap);
    size_t len = len0;
    bool put = fz_call(kind, out, cap, &len, x);
    bool fits = len0 <= cap && need <= cap - len0;
    bool ok = put == fits || fz_fail(f, __LINE__, "a writer's answer is not 'fits'");
    if (ok && !put)
        ok = (len == len0 && memcmp(out, before, cap) == 0) ||
             fz_fail(f, __LINE__, "a writer that did not fit changed something");
    if (ok && put)
        ok = (len == len0 + need && memcmp(out, before, len0) == 0 &&
              memcmp(out + len0, exp, need) == 0 &&
              memcmp(out + len, before + len, cap - len) == 0) ||
             fz_fail(f, __LINE__, "a writer wrote other bytes than the reply");
    free(out);
    free(before);
    return ok;
}

static bool fz_check_writers(fz *f, const char *data, size_t size, bool *oom)
{
    char s[96];
    size_t sl = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, sl);
    s[sl] = '\0'; /* the string ends at the first NUL of the input, if any */
    fz_value x = {.s = s, .p = data, .n = size, .v = 0};
    memcpy(&x.v, data, size < sizeof x.v ? size : sizeof x.v);
    bool ok = true;
    for (int kind = 0; ok && kind < FZ_NREPLIES; kind++) {
        if (kind == FZ_ARRAY) memcpy(&x.n, data, size < sizeof x.n ? size : sizeof x.n);
        char *exp = NULL;
        size_t need = fz_expect((enum fz_reply)kind, &x, &exp);
        if (exp == NULL) return !(*oom = true);
        if (kind == FZ_BULK)
            ok = resp_bulk_size(x.n) == need || fz_fail(f, __LINE__, "resp_bulk_size");
        size_t caps[] = {0, 1, need - 1, need, need + 1, need + 7};
        for (size_t i = 0; ok && i < sizeof caps / sizeof caps[0]; i++) {
            if (caps[i] > need + 7) continue; /* need - 1 when need is 0 */
            ok = fz_check_put(f, (enum fz_reply)kind, &x, exp, need, caps[i], 0, oom) &&
                 fz_check_put(f, (enum fz_reply)kind, &x, exp, need, caps[i] + 5, 5, oom) &&
                 fz_check_put(f, (enum fz_reply)kind, &x, exp, need, caps[i], caps[i] + 1, oom);
        }
        free(exp);
        x.n = size;
    }
    return ok;
}

/* Zero limits (nothing fits), small ones (every limit within a few bytes of the input) and
 * Redis-like ones (what the seeds mean). */
static const resp_limits fz_limits[] = {
    {.max_args = 0, .max_arg_bytes = 0, .max_inline = 0},
    {.max_args = 3, .max_arg_bytes = 8, .max_inline = 16},
    {.max_args = 16, .max_arg_bytes = 64, .max_inline = 256},
    {.max_args = 1024, .max_arg_bytes = 1 << 20, .max_inline = 65536},
};

bool resp_fuzz_check(const uint8_t *data, size_t size, char *why, size_t whylen)
{
    fz f = {.why = why, .whylen = whylen, .lim = NULL};
    bool oom = false, ok = true;
    const char *d = (const char *)data;
    for (size_t i = 0; ok && i < sizeof fz_limits / sizeof fz_limits[0]; i++) {
        f.lim = &fz_limits[i];
        ok = fz_check_stream(&f, d, size, &oom);
    }
    f.lim = NULL;
    if (ok) ok = fz_check_writers(&f, d, size, &oom);
    if (!ok && oom) return true; /* out of memory in the harness, not a finding */
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (!resp_fuzz_check(data, size, why, sizeof why)) {
        fprintf(stderr, "fuzz_resp: %s\n", why);
        __builtin_trap();
    }
    return 0;
}
