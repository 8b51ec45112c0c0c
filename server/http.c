/* http.c — the HTTP/JSON front end (see http.h). */
#include "server/http.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapper/head.h"
#include "storage/json.h"

#define PREDICTIONS "/v1/predictions/"
#define BATCH_GET "/v1/predictions:batchGet"
#define METRICS_CAP (64u << 10)

struct http_server {
    struct MHD_Daemon *d;
    int listen_fd;
};

/* What one request has gathered between libmicrohttpd's calls (the body of a POST). */
typedef struct http_req {
    uint64_t t0;
    json_buf body;
    bool too_big;
} http_req;

/* Queues a response that takes ownership of b's buffer (even on failure). */
static enum MHD_Result reply_buf(struct MHD_Connection *c, unsigned status, json_buf *b,
                                 const char *type)
{
    if (b->failed) {
        free(b->data);
        static const char oom[] = "{\"error\": \"out of memory\"}\n";
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ok = MHD_queue_response(c, 500, r);
        MHD_destroy_response(r);
        return ok;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(b->data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, POST");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

typedef size_t (*render_fn)(char *out, size_t cap, const char *s, size_t n, value_format f);

/* Appends what render writes (snprintf-style).  Keys and values are mostly short: a stack
 * buffer serves them, so a response does not allocate once per key. */
static void buf_render(json_buf *b, render_fn render, const char *s, size_t n, value_format f)
{
    char stack[512];
    size_t need = render(stack, sizeof stack, s, n, f) + 1;
    if (need <= sizeof stack) {
        json_buf_append(b, stack, need - 1);
        return;
    }
    char *tmp = malloc(need);
    if (tmp == NULL) {
        b->failed = true;
        return;
    }
    render(tmp, need, s, n, f);
    json_buf_append(b, tmp, need - 1);
    free(tmp);
}

static size_t render_quoted(char *out, size_t cap, const char *s, size_t n, value_format f)
{
    (void)f;
    return json_quote(out, cap, s, n);
}

/* A key as a JSON string: any bytes (json_quote escapes what is not UTF-8). */
static void buf_key(json_buf *b, const char *key, size_t klen)
{
    buf_render(b, render_quoted, key, klen, VALUE_FORMAT_JSON);
}

static void buf_value(json_buf *b, const char *val, size_t vlen, value_format f)
{
    buf_render(b, value_json, val, vlen, f);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    json_buf b = {0};
    json_buf_puts(&b, "{\"error\": ");
    buf_key(&b, msg, strlen(msg));
    json_buf_puts(&b, "}\n");
    return reply_buf(c, status, &b, "application/json");
}

static value_format ver_format(const holder_ver *v)
{
    return strcmp(table_manifest(holder_ver_table(v))->value_format, "f32") == 0
               ? VALUE_FORMAT_F32
               : VALUE_FORMAT_JSON;
}

/* Checks a key against the limits; on failure queues a 400 and returns false. */
static bool key_ok(struct MHD_Connection *c, const serve_ctx *ctx, size_t klen,
                   enum MHD_Result *res)
{
    char msg[160];
    if (klen == 0)
        snprintf(msg, sizeof msg, "empty key");
    else if (klen > ctx->lim.max_key_bytes)
        snprintf(msg, sizeof msg, "key of %zu bytes exceeds the limit of %zu", klen,
                 ctx->lim.max_key_bytes);
    else
        return true;
    *res = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
    return false;
}

/* Answers n keys from one version; the caller has checked each key's length. */
static enum MHD_Result answer_keys(struct MHD_Connection *c, const serve_ctx *ctx, bool batch,
                                   size_t n, const char *const *keys, const size_t *klens,
                                   size_t *misses, bool *failed)
{
    const char **vals = calloc(n ? n : 1, sizeof *vals);
    size_t *vlens = calloc(n ? n : 1, sizeof *vlens);
    if (vals == NULL || vlens == NULL) {
        free(vals);
        free(vlens);
        *failed = true;
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    holder_ver *v = holder_acquire(ctx->h);
    char err[PC_ERRLEN];
    bool owned;
    pc_status rc = serve_lookup_batch(v, n, keys, klens, vals, vlens, &owned, misses, err,
                                      sizeof err);
    if (rc != PC_OK) {
        holder_release(ctx->h, v);
        free(vals);
        free(vlens);
        *failed = true;
        return reply_error(c, rc == PC_ERR_INTERNAL ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                                    : MHD_HTTP_SERVICE_UNAVAILABLE,
                           err);
    }
    value_format f = ver_format(v);
    json_buf b = {0};
    unsigned status = MHD_HTTP_OK;
    if (batch) {
        json_buf_puts(&b, "{\"version\": ");
        buf_key(&b, holder_ver_name(v), strlen(holder_ver_name(v)));
        json_buf_puts(&b, ", \"results\": [");
        for (size_t i = 0; i < n; i++) {
            json_buf_puts(&b, i ? ", {\"key\": " : "{\"key\": ");
            buf_key(&b, keys[i], klens[i]);
            if (vals[i] != NULL) {
                json_buf_puts(&b, ", \"found\": true, \"value\": ");
                buf_value(&b, vals[i], vlens[i], f);
                json_buf_puts(&b, "}");
            } else {
                json_buf_puts(&b, ", \"found\": false}");
            }
        }
        json_buf_puts(&b, "]}\n");
    } else {
        bool hit = vals[0] != NULL;
        status = hit ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND;
        json_buf_puts(&b, hit ? "{\"key\": " : "{\"error\": \"not found\", \"key\": ");
        buf_key(&b, keys[0], klens[0]);
        json_buf_puts(&b, ", \"version\": ");
        buf_key(&b, holder_ver_name(v), strlen(holder_ver_name(v)));
        if (hit) {
            json_buf_puts(&b, ", \"value\": ");
            buf_value(&b, vals[0], vlens[0], f);
        }
        json_buf_puts(&b, "}\n");
    }
    serve_values_free(vals, n, owned); /* before the release: they may point into v's index */
    holder_release(ctx->h, v);
    free(vals);
    free(vlens);
    return reply_buf(c, status, &b, "application/json");
}

/* The keys of a batchGet body: a JSON array of strings, or {"keys": [...]}. Returns the
 * array node, or NULL after queueing a 400. */
static const json_value *batch_keys(struct MHD_Connection *c, const serve_ctx *ctx,
                                    const json_value *doc, enum MHD_Result *res)
{
    const json_value *arr = doc;
    if (doc->type == JSON_TYPE_OBJECT && json_get(doc, "keys", &arr) != 1) {
        *res = reply_error(c, MHD_HTTP_BAD_REQUEST, "the body needs one \"keys\" member");
        return NULL;
    }
    if (arr->type != JSON_TYPE_ARRAY) {
        *res = reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "the body must be a JSON list of keys or {\"keys\": [...]}");
        return NULL;
    }
    char msg[160];
    if (arr->n > ctx->lim.max_batch) {
        snprintf(msg, sizeof msg, "a batch of %zu keys exceeds the limit of %zu", arr->n,
                 ctx->lim.max_batch);
        *res = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
        return NULL;
    }
    for (size_t i = 0; i < arr->n; i++) {
        if (arr->items[i].type != JSON_TYPE_STRING) {
            snprintf(msg, sizeof msg, "key %zu is not a string", i);
            *res = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
            return NULL;
        }
        if (!key_ok(c, ctx, arr->items[i].len, res))
            return NULL;
    }
    return arr;
}

static enum MHD_Result batch_get(struct MHD_Connection *c, const serve_ctx *ctx, http_req *rq,
                                 size_t *nkeys, size_t *misses, bool *failed)
{
    json_value *doc = NULL;
    char err[PC_ERRLEN], msg[PC_ERRLEN + 32];
    if (json_parse(rq->body.data != NULL ? rq->body.data : "", rq->body.len, &doc, err,
                   sizeof err) != PC_OK) {
        *failed = true;
        snprintf(msg, sizeof msg, "malformed JSON body: %s", err);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
    }
    enum MHD_Result res = MHD_NO;
    const json_value *arr = batch_keys(c, ctx, doc, &res);
    if (arr == NULL) {
        *failed = true;
        json_free(doc);
        return res;
    }
    const char **keys = calloc(arr->n + 1, sizeof *keys);
    size_t *klens = calloc(arr->n + 1, sizeof *klens);
    if (keys == NULL || klens == NULL) {
        *failed = true;
        res = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    } else {
        for (size_t i = 0; i < arr->n; i++) {
            keys[i] = arr->items[i].str;
            klens[i] = arr->items[i].len;
        }
        *nkeys = arr->n;
        res = answer_keys(c, ctx, true, arr->n, keys, klens, misses, failed);
    }
    free(keys);
    free(klens);
    json_free(doc);
    return res;
}

static enum MHD_Result healthz(struct MHD_Connection *c, const serve_ctx *ctx)
{
    holder_ver *v = holder_acquire(ctx->h);
    json_buf b = {0};
    json_buf_puts(&b, "{\"status\": \"ok\", \"version\": ");
    buf_key(&b, holder_ver_name(v), strlen(holder_ver_name(v)));
    json_buf_printf(&b, ", \"rows\": %lld, \"created\": ",
                    (long long)table_manifest(holder_ver_table(v))->rows_written);
    const char *created = table_manifest(holder_ver_table(v))->created;
    buf_key(&b, created != NULL ? created : "", created != NULL ? strlen(created) : 0);
    json_buf_puts(&b, "}\n");
    holder_release(ctx->h, v);
    return reply_buf(c, MHD_HTTP_OK, &b, "application/json");
}

static enum MHD_Result metrics(struct MHD_Connection *c, const serve_ctx *ctx)
{
    holder_ver *v = holder_acquire(ctx->h);
    json_buf b = {0};
    b.data = malloc(METRICS_CAP);
    if (b.data == NULL) {
        b.failed = true;
    } else {
        size_t n = metrics_render(ctx->m, holder_ver_name(v), holder_ver_created(v), b.data,
                                  METRICS_CAP);
        b.len = n < METRICS_CAP ? n : METRICS_CAP - 1;
    }
    holder_release(ctx->h, v);
    return reply_buf(c, MHD_HTTP_OK, &b, "text/plain; version=0.0.4");
}

/* Routes a whole request (a POST's body gathered). */
static enum MHD_Result route(struct MHD_Connection *c, const serve_ctx *ctx, const char *url,
                             const char *method, http_req *rq)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    size_t nkeys = 0, misses = 0;
    bool failed = false;
    enum MHD_Result res;
    size_t plen = strlen(PREDICTIONS);
    if (strncmp(url, PREDICTIONS, plen) == 0 && get) {
        const char *key = url + plen;
        size_t klen = strlen(key);
        nkeys = 1;
        if (!key_ok(c, ctx, klen, &res))
            failed = true;
        else
            res = answer_keys(c, ctx, false, 1, &key, &klen, &misses, &failed);
    } else if (strcmp(url, BATCH_GET) == 0 && post) {
        if (rq->too_big) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes",
                     ctx->lim.max_body_bytes);
            failed = true;
            res = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        } else {
            res = batch_get(c, ctx, rq, &nkeys, &misses, &failed);
        }
    } else if (strcmp(url, "/healthz") == 0 && get) {
        res = healthz(c, ctx);
    } else if (strcmp(url, "/metrics") == 0 && get) {
        res = metrics(c, ctx);
    } else if (strncmp(url, PREDICTIONS, plen) == 0 || strcmp(url, BATCH_GET) == 0 ||
               strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0) {
        failed = true;
        res = reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    } else {
        failed = true;
        res = reply_error(c, MHD_HTTP_NOT_FOUND, "no such path");
    }
    metrics_request(ctx->m, METRICS_HTTP, nkeys, misses, failed, metrics_now_us() - rq->t0);
    return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    const serve_ctx *ctx = cls;
    http_req *rq = *state;
    if (rq == NULL) {
        /* The headers: set up and answer on a later call.  A response queued on this first
         * call counts as one given before the request was read, and libmicrohttpd then
         * closes the connection instead of keeping it alive. */
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        rq->t0 = metrics_now_us();
        *state = rq;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a piece of the body */
        if (!rq->too_big && rq->body.len + *upload_size > ctx->lim.max_body_bytes)
            rq->too_big = true;
        if (!rq->too_big)
            json_buf_append(&rq->body, upload, *upload_size);
        if (rq->body.failed)
            rq->too_big = true;
        *upload_size = 0;
        return MHD_YES;
    }
    return route(c, ctx, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    http_req *rq = *state;
    if (rq != NULL) {
        free(rq->body.data);
        free(rq);
    }
    *state = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_state,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_state;
    const serve_ctx *ctx = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&ctx->m->connections[METRICS_HTTP], 1);
    else
        atomic_fetch_sub(&ctx->m->connections[METRICS_HTTP], 1);
}

/* libmicrohttpd's own diagnostics (e.g. a refused connection) go to stderr, one line each. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("precast serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

pc_status http_start(const struct sockaddr *addr, const serve_ctx *ctx, http_server **out,
                     struct sockaddr_storage *bound, char *err, size_t errlen)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    pc_status rc = serve_listen(addr, &s->listen_fd, bound, err, errlen);
    if (rc != PC_OK) {
        free(s);
        return rc;
    }
    /* The memory limit bounds one connection's headers and buffered body chunks; the body
     * itself is gathered by on_request up to max_body_bytes. */
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0,
        NULL, NULL, on_request, (void *)ctx, MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, ctx->lim.threads, MHD_OPTION_CONNECTION_LIMIT,
        ctx->lim.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, ctx->lim.idle_seconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 << 10, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)ctx,
        MHD_OPTION_END);
    if (s->d == NULL) {
        close(s->listen_fd);
        free(s);
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "http: cannot start the server");
    }
    *out = s;
    return PC_OK;
}

void http_quiesce(http_server *s)
{
    if (s == NULL || s->listen_fd < 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->listen_fd = -1;
}

void http_stop(http_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}
