/* manifest.c — MANIFEST.json: writer, strict reader, validation (storage/table.h). */
#include "storage/table.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/fsutil.h"
#include "storage/internal.h"
#include "storage/json.h"

/* A manifest names a few files and one entry per shard: 64 MiB is far beyond any real one and
 * bounds what a hostile file can make us allocate. */
#define MANIFEST_MAX_BYTES ((size_t)64 << 20)
#define MANIFEST_FORMAT_VERSION 1

/* ---- validation shared by writer and reader ---- */

static bool plain_name(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0 && strlen(s) <= 255;
}

/* Checks the invariants every manifest must hold; a failure returns `code` with a message
 * prefixed by `where`. */
static pc_status manifest_check(const manifest *m, pc_status code, const char *where, char *err,
                                size_t errlen)
{
    if (m->created == NULL || m->job == NULL || m->version == NULL)
        return pc_err(err, errlen, code, "%s: created, job and version must be set", where);
    if (!plain_name(m->version))
        return pc_err(err, errlen, code, "%s: version \"%s\" is not a plain directory name", where,
                      m->version);
    if (m->ninputs < 0 || (m->ninputs > 0 && (m->input_paths == NULL || m->input_sizes == NULL)))
        return pc_err(err, errlen, code, "%s: bad input list", where);
    for (int64_t i = 0; i < m->ninputs; i++)
        if (m->input_paths[i] == NULL || m->input_sizes[i] < 0)
            return pc_err(err, errlen, code, "%s: inputs[%" PRId64 "]: path missing or size < 0",
                          where, i);
    if (m->rows_in < 0 || m->rows_written < 0 || m->rows_rejected < 0 || m->rows_dropped < 0 ||
        m->ranks < 0)
        return pc_err(err, errlen, code, "%s: negative row or rank count", where);
    if (m->nshards < 0 || (m->nshards > 0 && m->shards == NULL))
        return pc_err(err, errlen, code, "%s: bad shard list", where);
    const shard_info *prev = NULL; /* last non-empty shard */
    for (int64_t i = 0; i < m->nshards; i++) {
        const shard_info *s = &m->shards[i];
        if (!plain_name(s->dir))
            return pc_err(err, errlen, code, "%s: shards[%" PRId64 "]: dir is not a plain name",
                          where, i);
        if (s->rows < 0 || s->bytes < 0)
            return pc_err(err, errlen, code, "%s: shards[%" PRId64 "]: negative rows or bytes",
                          where, i);
        if ((s->first_key == NULL) != (s->last_key == NULL))
            return pc_err(err, errlen, code,
                          "%s: shards[%" PRId64 "]: first_key and last_key must both be set or "
                          "both null", where, i);
        if (s->first_key == NULL) {
            if (s->rows != 0)
                return pc_err(err, errlen, code,
                              "%s: shards[%" PRId64 "]: no key range but %" PRId64 " rows",
                              where, i, s->rows);
            continue;
        }
        if (s->rows == 0)
            return pc_err(err, errlen, code, "%s: shards[%" PRId64 "]: key range but 0 rows",
                          where, i);
        if (st_key_cmp(s->first_key, s->first_key_len, s->last_key, s->last_key_len) > 0 ||
            (s->rows == 1 &&
             st_key_cmp(s->first_key, s->first_key_len, s->last_key, s->last_key_len) != 0))
            return pc_err(err, errlen, code, "%s: shards[%" PRId64 "]: bad key range", where, i);
        if (prev != NULL &&
            st_key_cmp(prev->last_key, prev->last_key_len, s->first_key, s->first_key_len) >= 0)
            return pc_err(err, errlen, code,
                          "%s: shards[%" PRId64 "]: key range overlaps or precedes an earlier "
                          "shard's", where, i);
        prev = s;
    }
    return PC_OK;
}

/* ---- writer ---- */

static void put_hex(json_buf *b, const char *s, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    json_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {digits[(unsigned char)s[i] >> 4], digits[(unsigned char)s[i] & 15]};
        json_buf_append(b, h, 2);
    }
    json_buf_append(b, "\"", 1);
}

/* Appends `"name": <bytes>` in the reversible scheme of manifest_write: null, a JSON string
 * if s is valid UTF-8, else `"name_hex": "<hex>"`. */
static void put_bytes(json_buf *b, const char *name, const char *s, size_t n)
{
    if (s == NULL) {
        json_buf_printf(b, "\"%s\": null", name);
    } else if (json_utf8_valid(s, n)) {
        json_buf_printf(b, "\"%s\": ", name);
        json_buf_string(b, s, n);
    } else {
        json_buf_printf(b, "\"%s_hex\": ", name);
        put_hex(b, s, n);
    }
}

static void put_str(json_buf *b, const char *name, const char *s)
{
    put_bytes(b, name, s, s != NULL ? strlen(s) : 0);
}

pc_status manifest_write(const char *path, const manifest *m, char *err, size_t errlen)
{
    pc_status rc = manifest_check(m, PC_ERR_INTERNAL, path, err, errlen);
    if (rc != PC_OK)
        return rc;
    json_buf b = {0};
    json_buf_printf(&b, "{\n  \"format_version\": %d,\n  ", MANIFEST_FORMAT_VERSION);
    put_str(&b, "created", m->created);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "job", m->job);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "version", m->version);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "model_path", m->model_path);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "model_sha256", m->model_sha256);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "job_file", m->job_file);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "job_text", m->job_text);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "job_overrides", m->job_overrides);
    json_buf_puts(&b, ",\n  \"inputs\": [");
    for (int64_t i = 0; i < m->ninputs; i++) {
        json_buf_puts(&b, i == 0 ? "\n    {" : ",\n    {");
        put_str(&b, "path", m->input_paths[i]);
        json_buf_printf(&b, ", \"size\": %" PRId64, m->input_sizes[i]);
        if (m->input_mtimes == NULL || m->input_mtimes[i] == MANIFEST_TIME_UNKNOWN)
            json_buf_puts(&b, ", \"mtime\": null}");
        else
            json_buf_printf(&b, ", \"mtime\": %" PRId64 "}", m->input_mtimes[i]);
    }
    json_buf_puts(&b, m->ninputs > 0 ? "\n  ],\n" : "],\n");
    json_buf_printf(&b,
                    "  \"rows_in\": %" PRId64 ",\n  \"rows_written\": %" PRId64
                    ",\n  \"rows_rejected\": %" PRId64 ",\n  \"rows_dropped\": %" PRId64
                    ",\n  \"checksum\": \"%016" PRIx64 "\",\n  ",
                    m->rows_in, m->rows_written, m->rows_rejected, m->rows_dropped, m->checksum);
    put_str(&b, "value_format", m->value_format);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "head", m->head);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "labels_path", m->labels_path);
    json_buf_printf(&b, ",\n  \"ranks\": %" PRId64 ",\n  ", m->ranks);
    put_str(&b, "host", m->host);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "precast_version", m->precast_version);
    json_buf_puts(&b, ",\n  ");
    put_str(&b, "previous", m->previous);
    json_buf_puts(&b, ",\n  \"shards\": [");
    for (int64_t i = 0; i < m->nshards; i++) {
        const shard_info *s = &m->shards[i];
        json_buf_puts(&b, i == 0 ? "\n    {" : ",\n    {");
        put_str(&b, "dir", s->dir);
        json_buf_puts(&b, ", ");
        put_bytes(&b, "first_key", s->first_key, s->first_key_len);
        json_buf_puts(&b, ", ");
        put_bytes(&b, "last_key", s->last_key, s->last_key_len);
        json_buf_printf(&b,
                        ", \"rows\": %" PRId64 ", \"bytes\": %" PRId64
                        ", \"checksum\": \"%016" PRIx64 "\"}",
                        s->rows, s->bytes, s->checksum);
    }
    json_buf_puts(&b, m->nshards > 0 ? "\n  ]\n}\n" : "]\n}\n");
    if (b.failed) {
        free(b.data);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    rc = fs_write_atomic(path, b.data, b.len, NULL, err, errlen);
    free(b.data);
    return rc;
}

/* ---- reader ---- */

/* Context of one manifest_read: the file's path for messages. */
typedef struct rd {
    const char *path;
    char *err;
    size_t errlen;
} rd;

static pc_status bad(rd *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pc_status bad(rd *r, const char *field, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pc_err(r->err, r->errlen, PC_ERR_IO, "%s: %s: %s", r->path, field, what);
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

/* Reads the byte-string field `name` (or `name_hex`) of obj.  *out is a malloc'd
 * NUL-terminated copy, or NULL for JSON null (or an absent field when `optional`). */
static pc_status get_bytes(rd *r, const json_value *obj, const char *name, bool optional,
                           char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    char hexname[64];
    snprintf(hexname, sizeof hexname, "%s_hex", name);
    const json_value *v, *h;
    int nv = json_get(obj, name, &v), nh = json_get(obj, hexname, &h);
    if (nv < 0 || nh < 0)
        return bad(r, name, "field given more than once");
    if (nv && nh)
        return bad(r, name, "both %s and %s given", name, hexname);
    if (!nv && !nh) {
        if (optional)
            return PC_OK;
        return bad(r, name, "missing");
    }
    if (nv) {
        if (v->type == JSON_TYPE_NULL)
            return PC_OK;
        if (v->type != JSON_TYPE_STRING)
            return bad(r, name, "string or null expected");
        *out = st_memdup(v->str, v->len);
        *len = v->len;
    } else {
        if (h->type != JSON_TYPE_STRING || h->len % 2 != 0)
            return bad(r, hexname, "string of hex digit pairs expected");
        char *s = malloc(h->len / 2 + 1);
        if (s == NULL)
            return pc_err(r->err, r->errlen, PC_ERR_INTERNAL, "%s: out of memory", r->path);
        for (size_t i = 0; i < h->len / 2; i++) {
            int hi = hexval(h->str[2 * i]), lo = hexval(h->str[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(s);
                return bad(r, hexname, "bad hex digit");
            }
            s[i] = (char)(hi * 16 + lo);
        }
        s[h->len / 2] = '\0';
        *out = s;
        *len = h->len / 2;
    }
    if (*out == NULL)
        return pc_err(r->err, r->errlen, PC_ERR_INTERNAL, "%s: out of memory", r->path);
    return PC_OK;
}

/* A byte-string field that must be a C string (no NUL inside). */
static pc_status get_str(rd *r, const json_value *obj, const char *name, bool optional,
                         char **out)
{
    size_t len;
    pc_status rc = get_bytes(r, obj, name, optional, out, &len);
    if (rc == PC_OK && *out != NULL && strlen(*out) != len) {
        free(*out);
        *out = NULL;
        return bad(r, name, "contains a NUL character");
    }
    return rc;
}

static pc_status get_i64(rd *r, const json_value *obj, const char *name, int64_t *out)
{
    const json_value *v;
    int n = json_get(obj, name, &v);
    if (n < 0)
        return bad(r, name, "field given more than once");
    if (n == 0)
        return bad(r, name, "missing");
    if (!json_int64(v, out))
        return bad(r, name, "integer expected");
    if (*out < 0)
        return bad(r, name, "negative");
    return PC_OK;
}

/* An optional count: absent (manifests before rows_dropped existed) -> 0. */
static pc_status get_count_or_zero(rd *r, const json_value *obj, const char *name, int64_t *out)
{
    const json_value *v;
    *out = 0;
    return json_get(obj, name, &v) == 0 ? PC_OK : get_i64(r, obj, name, out);
}

/* An optional integer that may be negative (a time): absent or null -> MANIFEST_TIME_UNKNOWN. */
static pc_status get_time(rd *r, const json_value *obj, const char *name, int64_t *out)
{
    const json_value *v;
    *out = MANIFEST_TIME_UNKNOWN;
    int n = json_get(obj, name, &v);
    if (n < 0)
        return bad(r, name, "field given more than once");
    if (n == 0 || v->type == JSON_TYPE_NULL)
        return PC_OK;
    if (!json_int64(v, out) || *out == MANIFEST_TIME_UNKNOWN) {
        *out = MANIFEST_TIME_UNKNOWN;
        return bad(r, name, "integer or null expected");
    }
    return PC_OK;
}

static pc_status get_hex64(rd *r, const json_value *obj, const char *name, uint64_t *out)
{
    const json_value *v;
    int n = json_get(obj, name, &v);
    if (n < 0)
        return bad(r, name, "field given more than once");
    if (n == 0)
        return bad(r, name, "missing");
    if (v->type != JSON_TYPE_STRING || v->len != 16)
        return bad(r, name, "string of 16 hex digits expected");
    uint64_t x = 0;
    for (size_t i = 0; i < 16; i++) {
        int d = hexval(v->str[i]);
        if (d < 0)
            return bad(r, name, "string of 16 hex digits expected");
        x = x * 16 + (uint64_t)d;
    }
    *out = x;
    return PC_OK;
}

static pc_status get_array(rd *r, const json_value *obj, const char *name,
                           const json_value **out)
{
    int n = json_get(obj, name, out);
    if (n < 0)
        return bad(r, name, "field given more than once");
    if (n == 0)
        return bad(r, name, "missing");
    if ((*out)->type != JSON_TYPE_ARRAY)
        return bad(r, name, "array expected");
    return PC_OK;
}

void manifest_free(manifest *m)
{
    if (m == NULL)
        return;
    free(m->created);
    free(m->job);
    free(m->version);
    free(m->model_path);
    free(m->model_sha256);
    free(m->job_file);
    if (m->input_paths != NULL)
        for (int64_t i = 0; i < m->ninputs; i++)
            free(m->input_paths[i]);
    free(m->input_paths);
    free(m->input_sizes);
    free(m->input_mtimes);
    free(m->job_text);
    free(m->job_overrides);
    free(m->precast_version);
    free(m->host);
    free(m->previous);
    free(m->value_format);
    free(m->head);
    free(m->labels_path);
    if (m->shards != NULL)
        for (int64_t i = 0; i < m->nshards; i++)
            shard_info_clear(&m->shards[i]);
    free(m->shards);
    free(m);
}

static pc_status read_shard(rd *r, const json_value *o, int64_t i, shard_info *s)
{
    char field[64];
    snprintf(field, sizeof field, "shards[%" PRId64 "]", i);
    if (o->type != JSON_TYPE_OBJECT)
        return bad(r, field, "object expected");
    pc_status rc;
    if ((rc = get_str(r, o, "dir", false, &s->dir)) != PC_OK ||
        (rc = get_bytes(r, o, "first_key", false, &s->first_key, &s->first_key_len)) != PC_OK ||
        (rc = get_bytes(r, o, "last_key", false, &s->last_key, &s->last_key_len)) != PC_OK ||
        (rc = get_i64(r, o, "rows", &s->rows)) != PC_OK ||
        (rc = get_i64(r, o, "bytes", &s->bytes)) != PC_OK ||
        (rc = get_hex64(r, o, "checksum", &s->checksum)) != PC_OK)
        return rc;
    if (s->dir == NULL)
        return bad(r, field, "dir is null");
    return PC_OK;
}

static pc_status read_manifest(rd *r, const json_value *root, manifest *m)
{
    if (root->type != JSON_TYPE_OBJECT)
        return bad(r, "top level", "object expected");
    pc_status rc;
    int64_t fv;
    const json_value *v;
    int n = json_get(root, "format_version", &v);
    if (n <= 0 || !json_int64(v, &fv))
        return bad(r, "format_version", n < 0 ? "field given more than once"
                                              : "missing or not an integer");
    if (fv != MANIFEST_FORMAT_VERSION)
        return bad(r, "format_version", "%" PRId64 " is not supported (this precast reads %d)",
                   fv, MANIFEST_FORMAT_VERSION);
    m->format_version = (int)fv;
    if ((rc = get_str(r, root, "created", false, &m->created)) != PC_OK ||
        (rc = get_str(r, root, "job", false, &m->job)) != PC_OK ||
        (rc = get_str(r, root, "version", false, &m->version)) != PC_OK ||
        (rc = get_str(r, root, "model_path", false, &m->model_path)) != PC_OK ||
        (rc = get_str(r, root, "model_sha256", false, &m->model_sha256)) != PC_OK ||
        (rc = get_str(r, root, "job_file", false, &m->job_file)) != PC_OK ||
        (rc = get_i64(r, root, "rows_in", &m->rows_in)) != PC_OK ||
        (rc = get_i64(r, root, "rows_written", &m->rows_written)) != PC_OK ||
        (rc = get_i64(r, root, "rows_rejected", &m->rows_rejected)) != PC_OK ||
        (rc = get_count_or_zero(r, root, "rows_dropped", &m->rows_dropped)) != PC_OK ||
        (rc = get_hex64(r, root, "checksum", &m->checksum)) != PC_OK ||
        (rc = get_str(r, root, "value_format", false, &m->value_format)) != PC_OK ||
        (rc = get_str(r, root, "head", false, &m->head)) != PC_OK ||
        (rc = get_str(r, root, "labels_path", true, &m->labels_path)) != PC_OK ||
        (rc = get_i64(r, root, "ranks", &m->ranks)) != PC_OK ||
        /* provenance: absent from manifests older than precast 0.4.0 */
        (rc = get_str(r, root, "job_text", true, &m->job_text)) != PC_OK ||
        (rc = get_str(r, root, "job_overrides", true, &m->job_overrides)) != PC_OK ||
        (rc = get_str(r, root, "host", true, &m->host)) != PC_OK ||
        (rc = get_str(r, root, "precast_version", true, &m->precast_version)) != PC_OK ||
        (rc = get_str(r, root, "previous", true, &m->previous)) != PC_OK)
        return rc;
    if (m->created == NULL || m->job == NULL || m->version == NULL)
        return bad(r, "created/job/version", "must not be null");

    const json_value *inputs, *shards;
    if ((rc = get_array(r, root, "inputs", &inputs)) != PC_OK ||
        (rc = get_array(r, root, "shards", &shards)) != PC_OK)
        return rc;
    /* Counts come from the parsed text, so they are bounded by the file size. */
    m->input_paths = calloc(inputs->n + 1, sizeof *m->input_paths);
    m->input_sizes = calloc(inputs->n + 1, sizeof *m->input_sizes);
    m->input_mtimes = calloc(inputs->n + 1, sizeof *m->input_mtimes);
    m->shards = calloc(shards->n + 1, sizeof *m->shards);
    if (m->input_paths == NULL || m->input_sizes == NULL || m->input_mtimes == NULL ||
        m->shards == NULL)
        return pc_err(r->err, r->errlen, PC_ERR_INTERNAL, "%s: out of memory", r->path);
    for (size_t i = 0; i < inputs->n; i++) {
        const json_value *o = &inputs->items[i];
        m->ninputs = (int64_t)i + 1; /* so that manifest_free frees what is read */
        if (o->type != JSON_TYPE_OBJECT)
            return bad(r, "inputs", "[%zu]: object expected", i);
        if ((rc = get_str(r, o, "path", false, &m->input_paths[i])) != PC_OK ||
            (rc = get_i64(r, o, "size", &m->input_sizes[i])) != PC_OK ||
            (rc = get_time(r, o, "mtime", &m->input_mtimes[i])) != PC_OK)
            return rc;
        if (m->input_paths[i] == NULL)
            return bad(r, "inputs", "[%zu]: path is null", i);
    }
    for (size_t i = 0; i < shards->n; i++) {
        m->nshards = (int64_t)i + 1;
        if ((rc = read_shard(r, &shards->items[i], (int64_t)i, &m->shards[i])) != PC_OK)
            return rc;
    }
    return manifest_check(m, PC_ERR_IO, r->path, r->err, r->errlen);
}

pc_status manifest_read(const char *path, manifest **out, char *err, size_t errlen)
{
    *out = NULL;
    char *text;
    size_t len;
    pc_status rc = fs_read_file(path, MANIFEST_MAX_BYTES, &text, &len, err, errlen);
    if (rc != PC_OK)
        return rc;
    json_value *root;
    char jerr[PC_ERRLEN];
    rc = json_parse(text, len, &root, jerr, sizeof jerr);
    free(text);
    if (rc != PC_OK)
        return pc_err(err, errlen, rc, "%s: %s", path, jerr);
    manifest *m = calloc(1, sizeof *m);
    if (m == NULL) {
        json_free(root);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    rd r = {.path = path, .err = err, .errlen = errlen};
    rc = read_manifest(&r, root, m);
    json_free(root);
    if (rc != PC_OK) {
        manifest_free(m);
        return rc;
    }
    *out = m;
    return PC_OK;
}
