/*
 * json.h — a growable byte buffer with a JSON string writer, and a small strict JSON parser
 * (RFC 8259) into a tree: storage/'s MANIFEST.json, and mapper/featstats' statistics file
 * (json.c needs nothing but libc, so mapper/ may link it without the rest of storage/).
 *
 * The parser never trusts its input: it accepts only valid UTF-8 text, rejects unescaped
 * control characters, lone surrogates, leading zeros, trailing commas and trailing garbage,
 * limits nesting to JSON_MAX_DEPTH, and reports "line L, column C: what" — never a crash.
 * Numbers are kept as their source text so that 64-bit integers are read exactly.
 *
 * No global state; every function is reentrant.
 */
#ifndef PRECAST_STORAGE_JSON_H
#define PRECAST_STORAGE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

/* ---- writer ---- */

/* A growable byte buffer.  Zero-initialise it ({0}); free data with free().  After an
 * allocation failure `failed` is set and every later append is a no-op, so a writer can
 * append freely and check once at the end. */
typedef struct json_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    bool failed;
} json_buf;

void json_buf_append(json_buf *b, const void *p, size_t n);
void json_buf_puts(json_buf *b, const char *s);
void json_buf_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a JSON string literal (with its quotes) holding the bytes s[0..n).  REQUIRES:
 * json_utf8_valid(s, n).  '"', '\\' and control characters (U+0000..U+001F, U+007F) are
 * escaped; the rest is copied as is. */
void json_buf_string(json_buf *b, const char *s, size_t n);

/* True if s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
bool json_utf8_valid(const char *s, size_t n);

/* ---- parser ---- */

#define JSON_MAX_DEPTH 32

typedef enum json_type {
    JSON_TYPE_NULL,
    JSON_TYPE_FALSE,
    JSON_TYPE_TRUE,
    JSON_TYPE_NUMBER,
    JSON_TYPE_STRING,
    JSON_TYPE_ARRAY,
    JSON_TYPE_OBJECT
} json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    /* STRING: the decoded bytes (may contain NUL), NUL-terminated.  NUMBER: source text. */
    char *str;
    size_t len;
    /* ARRAY, OBJECT: n children in items[]; OBJECT: keys[i] (keylens[i] bytes) names items[i]. */
    size_t n;
    json_value *items;
    char **keys;
    size_t *keylens;
};

/* Parses text[0..len) (one JSON value, surrounded by optional whitespace).  On success *out
 * is a tree the caller frees with json_free.  On failure *out is NULL and err holds
 * "line L, column C: reason"; bad input -> PC_ERR_IO, out of memory -> PC_ERR_INTERNAL. */
pc_status json_parse(const char *text, size_t len, json_value **out, char *err, size_t errlen);

/* Frees a tree from json_parse; accepts NULL. */
void json_free(json_value *v);

/* Looks key up in obj.  Returns 1 and sets *v if it occurs exactly once, 0 if it is absent
 * (or obj is not an object), -1 if it occurs more than once. */
int json_get(const json_value *obj, const char *key, const json_value **v);

/* Reads an integer NUMBER (no fraction or exponent) that fits in int64_t. */
bool json_int64(const json_value *v, int64_t *out);

#endif
