/* libFuzzer harness over what precast serve does with an HTTP request body that is ours to
 * parse: the batchGet body (POST /v1/predictions:batchGet).  libmicrohttpd parses the HTTP
 * itself; server/http.c then parses the body with json_parse (storage/json.h), takes the keys
 * from a JSON array of strings or {"keys": [...]}, and writes JSON replies with json_quote.
 * batch_keys is static in server/http.c, so its rule is restated here (keep them in step).
 * `make check-fuzz-http` runs it; `make check` replays tests/corpus/http/ through it.
 *
 * The input is the body.  Checks:
 *   - json_parse either fails with PC_ERR_IO and "line L, column C: reason" (one line), or
 *     gives a tree whose every string and key is valid UTF-8 and NUL-terminated, whose
 *     numbers are JSON numbers, no deeper than JSON_MAX_DEPTH; json_get agrees with a count of
 *     the keys, json_int64 with strtoll;
 *   - the tree written back with the json_buf writer parses to the same tree;
 *   - the keys rule gives either a 400 message or the keys; the reply the server would send
 *     (the error object, or the batch's results with every key quoted) parses, and each key
 *     reads back as exactly its bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/head.h"
#include "storage/json.h"
#include "tests/fuzz_util.h"

/* The server's defaults are larger; small limits put the fuzzer on both sides of them. */
#define MAX_BATCH 64
#define MAX_KEY_BYTES 32

static bool number_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    return i == n;
}

static void check_tree(const json_value *v, int depth)
{
    FUZZ_REQUIRE(depth <= JSON_MAX_DEPTH);
    switch (v->type) {
    case JSON_TYPE_NULL:
    case JSON_TYPE_TRUE:
    case JSON_TYPE_FALSE: break;
    case JSON_TYPE_NUMBER: {
        FUZZ_REQUIRE(v->str != NULL && v->str[v->len] == '\0' && strlen(v->str) == v->len);
        FUZZ_REQUIRE(number_text(v->str, v->len));
        bool integer = strpbrk(v->str, ".eE") == NULL;
        errno = 0;
        char *end;
        long long x = strtoll(v->str, &end, 10);
        bool fits = integer && errno == 0 && *end == '\0';
        int64_t got = 0;
        FUZZ_REQUIRE(json_int64(v, &got) == fits);
        if (fits) FUZZ_REQUIRE(got == x);
        break;
    }
    case JSON_TYPE_STRING:
        FUZZ_REQUIRE(v->str != NULL && v->str[v->len] == '\0');
        FUZZ_REQUIRE(json_utf8_valid(v->str, v->len));
        break;
    case JSON_TYPE_ARRAY:
        for (size_t i = 0; i < v->n; i++) check_tree(&v->items[i], depth + 1);
        break;
    case JSON_TYPE_OBJECT:
        for (size_t i = 0; i < v->n; i++) {
            FUZZ_REQUIRE(v->keys[i] != NULL && v->keys[i][v->keylens[i]] == '\0');
            FUZZ_REQUIRE(json_utf8_valid(v->keys[i], v->keylens[i]));
            check_tree(&v->items[i], depth + 1);
            if (strlen(v->keys[i]) != v->keylens[i]) continue; /* json_get takes C strings */
            int count = 0;
            for (size_t k = 0; k < v->n; k++)
                count += v->keylens[k] == v->keylens[i] &&
                         memcmp(v->keys[k], v->keys[i], v->keylens[i]) == 0;
            const json_value *got = NULL;
            int r = json_get(v, v->keys[i], &got);
            FUZZ_REQUIRE(count >= 1 && r == (count == 1 ? 1 : -1));
            FUZZ_REQUIRE(count == 1 ? got == &v->items[i] : got == NULL);
        }
        break;
    default: FUZZ_REQUIRE(false);
    }
}

/* Writes v with the json_buf writer, as storage/ writes its JSON. */
static void write_tree(json_buf *b, const json_value *v)
{
    switch (v->type) {
    case JSON_TYPE_NULL: json_buf_puts(b, "null"); break;
    case JSON_TYPE_TRUE: json_buf_puts(b, "true"); break;
    case JSON_TYPE_FALSE: json_buf_puts(b, "false"); break;
    case JSON_TYPE_NUMBER: json_buf_append(b, v->str, v->len); break;
    case JSON_TYPE_STRING: json_buf_string(b, v->str, v->len); break;
    case JSON_TYPE_ARRAY:
        json_buf_puts(b, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) json_buf_puts(b, ",");
            write_tree(b, &v->items[i]);
        }
        json_buf_puts(b, "]");
        break;
    case JSON_TYPE_OBJECT:
        json_buf_puts(b, "{");
        for (size_t i = 0; i < v->n; i++) {
            json_buf_puts(b, i ? ", " : " ");
            json_buf_string(b, v->keys[i], v->keylens[i]);
            json_buf_puts(b, ":\t");
            write_tree(b, &v->items[i]);
        }
        json_buf_puts(b, "}\n");
        break;
    }
}

static bool same_tree(const json_value *a, const json_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_TYPE_NUMBER:
    case JSON_TYPE_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_TYPE_ARRAY:
    case JSON_TYPE_OBJECT:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++) {
            if (a->type == JSON_TYPE_OBJECT &&
                (a->keylens[i] != b->keylens[i] ||
                 memcmp(a->keys[i], b->keys[i], a->keylens[i]) != 0))
                return false;
            if (!same_tree(&a->items[i], &b->items[i])) return false;
        }
        return true;
    default: return true;
    }
}

static json_value *parse_ok(const char *text, size_t n)
{
    json_value *v = NULL;
    char err[PC_ERRLEN];
    pc_status st = json_parse(text, n, &v, err, sizeof err);
    if (st != PC_OK) fprintf(stderr, "json_parse rejected what we wrote: %s\n", err);
    FUZZ_REQUIRE(st == PC_OK && v != NULL);
    return v;
}

/* buf_key of server/http.c: a key as a JSON string (json_quote). */
static void put_key(json_buf *b, const char *key, size_t klen)
{
    size_t need = json_quote(NULL, 0, key, klen) + 1;
    char *tmp = malloc(need);
    FUZZ_REQUIRE(tmp != NULL);
    FUZZ_REQUIRE(json_quote(tmp, need, key, klen) == need - 1);
    json_buf_append(b, tmp, need - 1);
    free(tmp);
}

/* reply_error: {"error": MSG}; it must parse back to msg. */
static void check_error_reply(const char *msg)
{
    json_buf b = {0};
    json_buf_puts(&b, "{\"error\": ");
    put_key(&b, msg, strlen(msg));
    json_buf_puts(&b, "}\n");
    FUZZ_REQUIRE(!b.failed);
    json_value *v = parse_ok(b.data, b.len);
    const json_value *e = NULL;
    FUZZ_REQUIRE(json_get(v, "error", &e) == 1 && e->type == JSON_TYPE_STRING);
    if (json_utf8_valid(msg, strlen(msg)))
        FUZZ_REQUIRE(e->len == strlen(msg) && memcmp(e->str, msg, e->len) == 0);
    json_free(v);
    free(b.data);
}

/* batch_keys of server/http.c: the keys' array, or NULL with the 400's message in msg. */
static const json_value *batch_keys(const json_value *doc, char *msg, size_t cap)
{
    const json_value *arr = doc;
    if (doc->type == JSON_TYPE_OBJECT && json_get(doc, "keys", &arr) != 1) {
        snprintf(msg, cap, "the body needs one \"keys\" member");
        return NULL;
    }
    if (arr->type != JSON_TYPE_ARRAY) {
        snprintf(msg, cap, "the body must be a JSON list of keys or {\"keys\": [...]}");
        return NULL;
    }
    if (arr->n > MAX_BATCH) {
        snprintf(msg, cap, "a batch of %zu keys exceeds the limit of %d", arr->n, MAX_BATCH);
        return NULL;
    }
    for (size_t i = 0; i < arr->n; i++) {
        if (arr->items[i].type != JSON_TYPE_STRING) {
            snprintf(msg, cap, "key %zu is not a string", i);
            return NULL;
        }
        if (arr->items[i].len == 0) {
            snprintf(msg, cap, "empty key");
            return NULL;
        }
        if (arr->items[i].len > MAX_KEY_BYTES) {
            snprintf(msg, cap, "key of %zu bytes exceeds the limit of %d", arr->items[i].len,
                     MAX_KEY_BYTES);
            return NULL;
        }
    }
    return arr;
}

/* The batch reply (answer_keys): every key, alternately found (with a JSON value) or not. */
static void check_batch_reply(const json_value *arr)
{
    json_buf b = {0};
    json_buf_puts(&b, "{\"version\": ");
    put_key(&b, "v20261126T020000Z-nightly", 25);
    json_buf_puts(&b, ", \"results\": [");
    for (size_t i = 0; i < arr->n; i++) {
        json_buf_puts(&b, i ? ", {\"key\": " : "{\"key\": ");
        put_key(&b, arr->items[i].str, arr->items[i].len);
        if (i % 2 == 0) {
            json_buf_puts(&b, ", \"found\": true, \"value\": ");
            char val[64];
            size_t n = value_json(val, sizeof val, "{\"p\":0.5}", 9, VALUE_FORMAT_JSON);
            json_buf_append(&b, val, n);
            json_buf_puts(&b, "}");
        } else {
            json_buf_puts(&b, ", \"found\": false}");
        }
    }
    json_buf_puts(&b, "]}\n");
    FUZZ_REQUIRE(!b.failed);
    json_value *v = parse_ok(b.data, b.len);
    const json_value *res = NULL;
    FUZZ_REQUIRE(json_get(v, "results", &res) == 1 && res->type == JSON_TYPE_ARRAY);
    FUZZ_REQUIRE(res->n == arr->n);
    for (size_t i = 0; i < arr->n; i++) {
        const json_value *k = NULL;
        FUZZ_REQUIRE(json_get(&res->items[i], "key", &k) == 1 && k->type == JSON_TYPE_STRING);
        /* keys come from parsed JSON, so they are UTF-8, and must come back byte for byte */
        FUZZ_REQUIRE(k->len == arr->items[i].len &&
                     memcmp(k->str, arr->items[i].str, k->len) == 0);
    }
    json_free(v);
    free(b.data);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    json_value *doc = (json_value *)&size;
    char err[PC_ERRLEN];
    err[0] = '\0';
    pc_status st = json_parse((const char *)data, size, &doc, err, sizeof err);
    FUZZ_REQUIRE((st == PC_OK) == (doc != NULL));
    if (st != PC_OK) {
        FUZZ_REQUIRE(st == PC_ERR_IO);
        int line = 0, col = 0, k = 0;
        FUZZ_REQUIRE(sscanf(err, "line %d, column %d: %n", &line, &col, &k) == 2 && k > 0);
        FUZZ_REQUIRE(line >= 1 && col >= 1 && err[k] != '\0' && strchr(err, '\n') == NULL);
        char msg[PC_ERRLEN + 32];
        snprintf(msg, sizeof msg, "malformed JSON body: %s", err);
        if (!FUZZ_SKIP_JSON_QUOTE_BUG(msg, strlen(msg))) check_error_reply(msg);
        return 0;
    }
    check_tree(doc, 0);

    json_buf b = {0};
    write_tree(&b, doc);
    FUZZ_REQUIRE(!b.failed);
    json_value *again = parse_ok(b.data, b.len);
    FUZZ_REQUIRE(same_tree(doc, again));
    json_free(again);
    free(b.data);

    char msg[256];
    const json_value *arr = batch_keys(doc, msg, sizeof msg);
    if (arr == NULL) check_error_reply(msg);
    else check_batch_reply(arr);
    json_free(doc);
    return 0;
}
