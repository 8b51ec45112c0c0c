#include "storage/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---- */

static bool buf_reserve(json_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void json_buf_append(json_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void json_buf_puts(json_buf *b, const char *s)
{
    json_buf_append(b, s, strlen(s));
}

void json_buf_printf(json_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void json_buf_string(json_buf *b, const char *s, size_t n)
{
    json_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes s[i-run..i) still to copy verbatim */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                esc = hex;
            }
        }
        if (esc == NULL) {
            run++;
            continue;
        }
        json_buf_append(b, s + i - run, run);
        run = 0;
        json_buf_puts(b, esc);
    }
    json_buf_append(b, s + n - run, run);
    json_buf_append(b, "\"", 1);
}

/* Length of the well-formed UTF-8 sequence at s (s < end), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong */
        if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f; /* <= U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - s) < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

bool json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t k = utf8_seq(p, end);
        if (k == 0)
            return false;
        p += k;
    }
    return true;
}

/* ---- parser ---- */

typedef struct parser {
    const char *start, *p, *end;
    char *err;
    size_t errlen;
    pc_status rc; /* first error, PC_OK until then */
} parser;

static bool fail(parser *ps, pc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(parser *ps, pc_status code, const char *fmt, ...)
{
    if (ps->rc != PC_OK)
        return false;
    size_t line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ps->rc = pc_err(ps->err, ps->errlen, code, "line %zu, column %zu: %s", line, col, what);
    return false;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at ps->p into *u. */
static bool read_hex4(parser *ps, unsigned *u)
{
    if (ps->end - ps->p < 4)
        return fail(ps, PC_ERR_IO, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0)
            return fail(ps, PC_ERR_IO, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *u = v;
    return true;
}

static void put_utf8(json_buf *b, unsigned cp)
{
    char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xc0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xe0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        s[0] = (char)(0xf0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    json_buf_append(b, s, n);
}

/* Parses a string literal at ps->p (which is '"') into a malloc'd buffer. */
static bool parse_string(parser *ps, char **out, size_t *outlen)
{
    json_buf b = {0};
    ps->p++; /* opening quote */
    for (;;) {
        if (ps->p >= ps->end) {
            free(b.data);
            return fail(ps, PC_ERR_IO, "unterminated string");
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return fail(ps, PC_ERR_IO, "unescaped control character 0x%02x in string", c);
        }
        if (c == '\\') {
            ps->p++;
            if (ps->p >= ps->end) {
                free(b.data);
                return fail(ps, PC_ERR_IO, "unterminated escape");
            }
            char e = *ps->p++;
            char ch;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                unsigned u;
                if (!read_hex4(ps, &u)) {
                    free(b.data);
                    return false;
                }
                if (u >= 0xdc00 && u <= 0xdfff) {
                    free(b.data);
                    return fail(ps, PC_ERR_IO, "lone low surrogate \\u%04x", u);
                }
                if (u >= 0xd800 && u <= 0xdbff) {
                    unsigned lo;
                    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                        free(b.data);
                        return fail(ps, PC_ERR_IO, "high surrogate \\u%04x not followed by a low one", u);
                    }
                    ps->p += 2;
                    if (!read_hex4(ps, &lo)) {
                        free(b.data);
                        return false;
                    }
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        free(b.data);
                        return fail(ps, PC_ERR_IO, "high surrogate \\u%04x not followed by a low one", u);
                    }
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(&b, u);
                continue;
            }
            default:
                free(b.data);
                ps->p--;
                return fail(ps, PC_ERR_IO, "bad escape \\%c", (e >= 0x20 && e < 0x7f) ? e : '?');
            }
            json_buf_append(&b, &ch, 1);
            continue;
        }
        /* A run of plain bytes: validate UTF-8 as we go. */
        const char *run = ps->p;
        while (ps->p < ps->end) {
            unsigned char d = (unsigned char)*ps->p;
            if (d == '"' || d == '\\' || d < 0x20)
                break;
            size_t k = utf8_seq((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (k == 0) {
                free(b.data);
                return fail(ps, PC_ERR_IO, "invalid UTF-8 in string");
            }
            ps->p += k;
        }
        json_buf_append(&b, run, (size_t)(ps->p - run));
    }
    if (b.failed) {
        free(b.data);
        return fail(ps, PC_ERR_INTERNAL, "out of memory");
    }
    if (b.data == NULL) {
        b.data = malloc(1);
        if (b.data == NULL)
            return fail(ps, PC_ERR_INTERNAL, "out of memory");
        b.data[0] = '\0';
    }
    *out = b.data;
    *outlen = b.len;
    return true;
}

static bool parse_number(parser *ps, json_value *v)
{
    const char *s = ps->p;
    const char *q = s;
    if (q < ps->end && *q == '-')
        q++;
    if (q >= ps->end || !(*q >= '0' && *q <= '9'))
        return fail(ps, PC_ERR_IO, "bad number");
    if (*q == '0') {
        q++;
    } else {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
            ps->p = q;
            return fail(ps, PC_ERR_IO, "bad number: digit expected after '.'");
        }
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
            ps->p = q;
            return fail(ps, PC_ERR_IO, "bad number: digit expected in exponent");
        }
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t n = (size_t)(q - s);
    v->str = malloc(n + 1);
    if (v->str == NULL)
        return fail(ps, PC_ERR_INTERNAL, "out of memory");
    memcpy(v->str, s, n);
    v->str[n] = '\0';
    v->len = n;
    v->type = JSON_TYPE_NUMBER;
    ps->p = q;
    return true;
}

static bool parse_value(parser *ps, json_value *v, int depth);

/* Appends a zeroed slot to an array or object under construction. */
static json_value *grow(parser *ps, json_value *v, size_t *cap, bool keys)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        if (nc > SIZE_MAX / sizeof(json_value)) {
            fail(ps, PC_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        json_value *items = realloc(v->items, nc * sizeof *items);
        if (items == NULL) {
            fail(ps, PC_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        v->items = items;
        if (keys) {
            char **k = realloc(v->keys, nc * sizeof *k);
            if (k == NULL) {
                fail(ps, PC_ERR_INTERNAL, "out of memory");
                return NULL;
            }
            v->keys = k;
            size_t *kl = realloc(v->keylens, nc * sizeof *kl);
            if (kl == NULL) {
                fail(ps, PC_ERR_INTERNAL, "out of memory");
                return NULL;
            }
            v->keylens = kl;
        }
        *cap = nc;
    }
    json_value *slot = &v->items[v->n];
    memset(slot, 0, sizeof *slot);
    return slot;
}

static bool parse_array(parser *ps, json_value *v, int depth)
{
    v->type = JSON_TYPE_ARRAY;
    size_t cap = 0;
    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return true;
    }
    for (;;) {
        json_value *slot = grow(ps, v, &cap, false);
        if (slot == NULL)
            return false;
        v->n++; /* counted now so that json_free frees a half-parsed child */
        if (!parse_value(ps, slot, depth + 1))
            return false;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, PC_ERR_IO, "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return true;
        }
        return fail(ps, PC_ERR_IO, "',' or ']' expected");
    }
}

static bool parse_object(parser *ps, json_value *v, int depth)
{
    v->type = JSON_TYPE_OBJECT;
    size_t cap = 0;
    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return true;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, PC_ERR_IO, ps->p >= ps->end ? "unterminated object"
                                                         : "string key expected");
        char *key;
        size_t keylen;
        if (!parse_string(ps, &key, &keylen))
            return false;
        json_value *slot = grow(ps, v, &cap, true);
        if (slot == NULL) {
            free(key);
            return false;
        }
        v->keys[v->n] = key;
        v->keylens[v->n] = keylen;
        v->n++;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail(ps, PC_ERR_IO, "':' expected");
        ps->p++;
        if (!parse_value(ps, slot, depth + 1))
            return false;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, PC_ERR_IO, "unterminated object");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return true;
        }
        return fail(ps, PC_ERR_IO, "',' or '}' expected");
    }
}

static bool literal(parser *ps, const char *word, json_value *v, json_type t)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, PC_ERR_IO, "unexpected character");
    ps->p += n;
    v->type = t;
    return true;
}

static bool parse_value(parser *ps, json_value *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(ps, PC_ERR_IO, "nested deeper than %d levels", JSON_MAX_DEPTH);
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, PC_ERR_IO, "value expected, found end of text");
    switch (*ps->p) {
    case '{': return parse_object(ps, v, depth);
    case '[': return parse_array(ps, v, depth);
    case '"':
        v->type = JSON_TYPE_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't': return literal(ps, "true", v, JSON_TYPE_TRUE);
    case 'f': return literal(ps, "false", v, JSON_TYPE_FALSE);
    case 'n': return literal(ps, "null", v, JSON_TYPE_NULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, v);
        return fail(ps, PC_ERR_IO, "unexpected character");
    }
}

static void free_children(json_value *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        free_children(&v->items[i]);
        if (v->type == JSON_TYPE_OBJECT)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->keylens);
}

void json_free(json_value *v)
{
    if (v == NULL)
        return;
    free_children(v);
    free(v);
}

pc_status json_parse(const char *text, size_t len, json_value **out, char *err, size_t errlen)
{
    *out = NULL;
    json_value *v = calloc(1, sizeof *v);
    if (v == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    parser ps = {.start = text, .p = text, .end = text + len, .err = err, .errlen = errlen};
    if (parse_value(&ps, v, 0)) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            fail(&ps, PC_ERR_IO, "trailing characters after the value");
    }
    if (ps.rc != PC_OK) {
        json_free(v);
        return ps.rc;
    }
    *out = v;
    return PC_OK;
}

int json_get(const json_value *obj, const char *key, const json_value **v)
{
    *v = NULL;
    if (obj == NULL || obj->type != JSON_TYPE_OBJECT)
        return 0;
    size_t klen = strlen(key);
    int found = 0;
    for (size_t i = 0; i < obj->n; i++) {
        if (obj->keylens[i] == klen && memcmp(obj->keys[i], key, klen) == 0) {
            if (found) {
                *v = NULL;
                return -1;
            }
            found = 1;
            *v = &obj->items[i];
        }
    }
    return found;
}

bool json_int64(const json_value *v, int64_t *out)
{
    if (v == NULL || v->type != JSON_TYPE_NUMBER)
        return false;
    for (size_t i = 0; i < v->len; i++)
        if (v->str[i] == '.' || v->str[i] == 'e' || v->str[i] == 'E')
            return false;
    errno = 0;
    char *end;
    long long x = strtoll(v->str, &end, 10);
    if (errno != 0 || *end != '\0' || end == v->str)
        return false;
    *out = (int64_t)x;
    return true;
}
