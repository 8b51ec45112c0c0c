/* respd.c — the Redis-protocol front end: epoll loops over connections (see respd.h). */
/* accept4: a connection non-blocking and close-on-exec in one call, with no window between. */
#define _GNU_SOURCE
#include "server/respd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "server/resp.h"

#define READ_CHUNK 16384
/* Stop reading a connection's commands while this many reply bytes wait to be sent: a
 * client that pipelines without reading cannot make the server buffer without bound. */
#define WBUF_HIGH ((size_t)1 << 20)
#define MAX_EVENTS 64
#define INLINE_MAX 65536

typedef struct conn {
    int fd;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf;
    size_t wlen, woff, wcap;
    size_t parsed;  /* rbuf[0..parsed) was found to be an incomplete command */
    bool closing;  /* close once wbuf is sent */
    uint32_t events; /* what epoll watches for now: changed only when it must change */
    time_t last_active;
    struct conn *prev, *next;
} conn;

typedef struct worker {
    struct resp_server *srv;
    int ep, wake;
    pthread_t thread;
    bool started;
    bool listening;
    conn *conns;
    resp_arg *argv; /* lim.max_batch + 1 entries */
    const char **values; /* lim.max_batch + 1 entries, as argv */
    size_t *vlens;
    const char **keys;
    size_t *klens;
    /* What one process() call shares between the commands it answers: the version (taken
     * at the first lookup and released at the end, so a pipelined batch takes the holder's
     * lock once, not once per command) and the metrics, added to the shared counters once. */
    holder_ver *ver;
    metrics_tally tally;
} worker;

struct resp_server {
    const serve_ctx *ctx;
    int listen_fd;
    resp_limits plim;
    size_t rbuf_max; /* the largest command the limits allow, plus a read */
    atomic_bool quiesce, stop;
    unsigned nworkers;
    worker *workers;
};

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* ---- replies into a connection's write buffer ---- */

static bool out_reserve(conn *c, size_t n)
{
    if (c->wlen + n <= c->wcap)
        return true;
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + n)
        cap *= 2;
    char *p = realloc(c->wbuf, cap);
    if (p == NULL)
        return false;
    c->wbuf = p;
    c->wcap = cap;
    return true;
}

/* Each reply helper reserves room first; out of memory closes the connection. */
static void reply_error(conn *c, const char *msg)
{
    if (!out_reserve(c, strlen(msg) + 8) || !resp_put_error(c->wbuf, c->wcap, &c->wlen, msg))
        c->closing = true;
}

static void reply_simple(conn *c, const char *s)
{
    if (!out_reserve(c, strlen(s) + 8) || !resp_put_simple(c->wbuf, c->wcap, &c->wlen, s))
        c->closing = true;
}

static void reply_int(conn *c, long long v)
{
    if (!out_reserve(c, 32) || !resp_put_int(c->wbuf, c->wcap, &c->wlen, v))
        c->closing = true;
}

static void reply_bulk(conn *c, const void *p, size_t n)
{
    if (!out_reserve(c, resp_bulk_size(n)) || !resp_put_bulk(c->wbuf, c->wcap, &c->wlen, p, n))
        c->closing = true;
}

static void reply_nil(conn *c)
{
    if (!out_reserve(c, 8) || !resp_put_nil(c->wbuf, c->wcap, &c->wlen))
        c->closing = true;
}

static void reply_array(conn *c, size_t n)
{
    if (!out_reserve(c, 32) || !resp_put_array(c->wbuf, c->wcap, &c->wlen, n))
        c->closing = true;
}

/* ---- commands ---- */

/* Commands that would change data in Redis: refused as on a read-only replica. */
static const char *const WRITE_COMMANDS[] = {
    "set", "setnx", "setex", "psetex", "mset", "msetnx", "getset", "getdel", "getex", "del",
    "unlink", "append", "incr", "incrby", "incrbyfloat", "decr", "decrby", "expire",
    "pexpire", "expireat", "pexpireat", "persist", "rename", "renamenx", "flushdb",
    "flushall", "lpush", "rpush", "sadd", "hset", "hmset", "zadd", "setrange", "copy",
    "move", "restore", "swapdb", NULL};

static bool is_write_command(const resp_arg *a)
{
    for (size_t i = 0; WRITE_COMMANDS[i] != NULL; i++)
        if (resp_arg_is(a, WRITE_COMMANDS[i]))
            return true;
    return false;
}

/* The command name, printable and cut short, for an error message. */
static void show_name(const resp_arg *a, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < a->len && n + 4 < cap && i < 48; i++)
        out[n++] = a->ptr[i] >= 0x20 && a->ptr[i] < 0x7f && a->ptr[i] != '\'' ? a->ptr[i] : '?';
    out[n] = '\0';
}

static void wrong_args(conn *c, const char *name)
{
    char msg[96];
    snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", name);
    reply_error(c, msg);
}

/* GET, MGET and EXISTS: one version for all the keys of the command. */
static bool lookup_keys(worker *w, conn *c, const resp_arg *keys, size_t n, bool *owned,
                        size_t *misses)
{
    const serve_ctx *ctx = w->srv->ctx;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].len > ctx->lim.max_key_bytes) {
            char msg[96];
            snprintf(msg, sizeof msg, "ERR key of %zu bytes exceeds the limit of %zu",
                     keys[i].len, ctx->lim.max_key_bytes);
            reply_error(c, msg);
            return false;
        }
        w->keys[i] = keys[i].ptr;
        w->klens[i] = keys[i].len;
    }
    if (w->ver == NULL)
        w->ver = holder_acquire(ctx->h); /* released by process() */
    char err[PC_ERRLEN], msg[PC_ERRLEN + 8];
    pc_status rc = serve_lookup_batch(w->ver, n, w->keys, w->klens, w->values, w->vlens, owned,
                                      misses, err, sizeof err);
    if (rc != PC_OK) {
        snprintf(msg, sizeof msg, "ERR %s", err);
        reply_error(c, msg);
        return false;
    }
    return true;
}

static bool cmd_get_keys(worker *w, conn *c, const resp_arg *argv, size_t argc, size_t *nkeys,
                         size_t *misses)
{
    bool mget = resp_arg_is(&argv[0], "mget"), exists = resp_arg_is(&argv[0], "exists");
    if ((mget || exists) ? argc < 2 : argc != 2) {
        wrong_args(c, mget ? "mget" : exists ? "exists" : "get");
        return false;
    }
    size_t n = argc - 1;
    *nkeys = n;
    bool owned;
    if (!lookup_keys(w, c, argv + 1, n, &owned, misses))
        return false;
    if (exists)
        reply_int(c, (long long)(n - *misses));
    else if (mget)
        reply_array(c, n);
    for (size_t i = 0; !exists && i < n; i++) {
        if (w->values[i] != NULL)
            reply_bulk(c, w->values[i], w->vlens[i]);
        else
            reply_nil(c);
    }
    serve_values_free(w->values, n, owned);
    return true;
}

static void cmd_info(worker *w, conn *c)
{
    holder_ver *v = holder_acquire(w->srv->ctx->h);
    const manifest *m = table_manifest(holder_ver_table(v));
    const memindex *ix = holder_ver_index(v); /* NULL: answered from LevelDB */
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "# Server\r\nredis_version:7.0.0\r\nprecast_version:%s\r\n"
                     "# Keyspace\r\ndb0:keys=%lld,expires=0,avg_ttl=0\r\n"
                     "# Precast\r\ntable_version:%s\r\nvalue_format:%s\r\ncreated:%s\r\n"
                     "memory_index_keys:%llu\r\n",
                     m->precast_version != NULL ? m->precast_version : "unknown",
                     (long long)m->rows_written, m->version, m->value_format,
                     m->created != NULL ? m->created : "unknown",
                     ix != NULL ? (unsigned long long)memindex_count(ix) : 0ull);
    holder_release(w->srv->ctx->h, v);
    reply_bulk(c, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : strlen(text));
}

/* CONFIG GET: redis-benchmark asks for save and appendonly; the answer describes a cache
 * without persistence, which is what a precast table looks like to it. */
static void cmd_config(conn *c, const resp_arg *argv, size_t argc)
{
    if (argc != 3 || !resp_arg_is(&argv[1], "get")) {
        reply_error(c, "ERR only CONFIG GET is supported");
        return;
    }
    if (resp_arg_is(&argv[2], "save") || resp_arg_is(&argv[2], "appendonly")) {
        bool save = resp_arg_is(&argv[2], "save");
        reply_array(c, 2);
        reply_bulk(c, save ? "save" : "appendonly", save ? 4 : 10);
        reply_bulk(c, save ? "" : "no", save ? 0 : 2);
    } else {
        reply_array(c, 0);
    }
}

static void cmd_other(worker *w, conn *c, const resp_arg *argv, size_t argc)
{
    const resp_arg *a = &argv[0];
    if (resp_arg_is(a, "ping"))
        argc == 1 ? reply_simple(c, "PONG") : argc == 2 ? reply_bulk(c, argv[1].ptr, argv[1].len)
                                                       : wrong_args(c, "ping");
    else if (resp_arg_is(a, "echo"))
        argc == 2 ? reply_bulk(c, argv[1].ptr, argv[1].len) : wrong_args(c, "echo");
    else if (resp_arg_is(a, "info"))
        cmd_info(w, c);
    else if (resp_arg_is(a, "dbsize")) {
        holder_ver *v = holder_acquire(w->srv->ctx->h);
        reply_int(c, (long long)table_manifest(holder_ver_table(v))->rows_written);
        holder_release(w->srv->ctx->h, v);
    } else if (resp_arg_is(a, "select"))
        argc == 2 && argv[1].len == 1 && argv[1].ptr[0] == '0'
            ? reply_simple(c, "OK")
            : reply_error(c, "ERR DB index is out of range");
    else if (resp_arg_is(a, "command"))
        reply_array(c, 0);
    else if (resp_arg_is(a, "config"))
        cmd_config(c, argv, argc);
    else if (resp_arg_is(a, "client") || resp_arg_is(a, "readonly") || resp_arg_is(a, "reset"))
        reply_simple(c, "OK");
    else if (resp_arg_is(a, "hello"))
        reply_error(c, "NOPROTO sorry, this protocol version is not supported");
    else if (resp_arg_is(a, "quit")) {
        reply_simple(c, "OK");
        c->closing = true;
    } else if (is_write_command(a)) {
        char name[64], msg[128];
        show_name(a, name, sizeof name);
        snprintf(msg, sizeof msg, "READONLY precast tables are read only: '%s' is not allowed",
                 name);
        reply_error(c, msg);
    } else {
        char name[64], msg[128];
        show_name(a, name, sizeof name);
        snprintf(msg, sizeof msg, "ERR unknown command '%s'", name);
        reply_error(c, msg);
    }
}

static void execute(worker *w, conn *c, const resp_arg *argv, size_t argc, uint64_t t0)
{
    size_t nkeys = 0, misses = 0;
    bool ok = true;
    if (resp_arg_is(&argv[0], "get") || resp_arg_is(&argv[0], "mget") ||
        resp_arg_is(&argv[0], "exists"))
        ok = cmd_get_keys(w, c, argv, argc, &nkeys, &misses);
    else
        cmd_other(w, c, argv, argc);
    metrics_tally_add(&w->tally, nkeys, misses, !ok, metrics_now_us() - t0);
}

/* ---- connections ---- */

static void conn_close(worker *w, conn *c)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    atomic_fetch_sub(&w->srv->ctx->m->connections[METRICS_RESP], 1);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

/* Answers every whole command in rbuf, until replies pile up past WBUF_HIGH. */
static void process(worker *w, conn *c)
{
    /* The parser restarts from the start of a command.  A command can only become whole
     * when its last newline arrives, so without a newline in the new bytes there is nothing
     * to parse: a client trickling a large command byte by byte costs no re-scans. */
    if (c->parsed > 0 && memchr(c->rbuf + c->parsed, '\n', c->rlen - c->parsed) == NULL)
        return;
    c->parsed = 0;
    size_t off = 0;
    bool incomplete = false;
    uint64_t t0 = metrics_now_us();
    while (!c->closing && off < c->rlen && c->wlen - c->woff < WBUF_HIGH) {
        size_t argc = 0, used = 0;
        char err[160];
        resp_result r = resp_parse(c->rbuf + off, c->rlen - off, &w->srv->plim, w->argv, &argc,
                                   &used, err, sizeof err);
        if (r == RESP_INCOMPLETE) {
            incomplete = true;
            break;
        }
        if (r == RESP_BAD) {
            char msg[200];
            snprintf(msg, sizeof msg, "ERR %s", err);
            reply_error(c, msg);
            metrics_tally_add(&w->tally, 0, 0, 1, metrics_now_us() - t0);
            c->closing = true; /* the stream cannot be resynchronised */
            break;
        }
        off += used;
        if (r == RESP_DONE)
            execute(w, c, w->argv, argc, t0);
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (incomplete)
        c->parsed = c->rlen;
    if (w->ver != NULL) {
        holder_release(w->srv->ctx->h, w->ver);
        w->ver = NULL;
    }
    metrics_tally_flush(w->srv->ctx->m, METRICS_RESP, &w->tally);
}

static void set_events(worker *w, conn *c)
{
    bool backlog = c->woff < c->wlen;
    bool want_in = !c->closing && c->wlen - c->woff < WBUF_HIGH;
    uint32_t events = (want_in ? EPOLLIN : 0) | (backlog ? EPOLLOUT : 0) | EPOLLRDHUP;
    if (events == c->events)
        return; /* the common case — read, answer, all sent — costs no system call */
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

/* Sends what it can; false if the connection is gone. */
static bool flush_out(conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }
    c->woff = c->wlen = 0;
    /* A burst of large replies should not pin its buffer for the connection's lifetime. */
    if (c->wcap > WBUF_HIGH) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    return true;
}

/* Reads what is there; false when the peer closed or the connection failed. */
static bool read_in(worker *w, conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < READ_CHUNK) {
            if (c->rcap >= w->srv->rbuf_max) {
                reply_error(c, "ERR Protocol error: request too large");
                c->closing = true;
                return true;
            }
            size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK * 2;
            if (cap > w->srv->rbuf_max)
                cap = w->srv->rbuf_max;
            char *p = realloc(c->rbuf, cap);
            if (p == NULL)
                return false;
            c->rbuf = p;
            c->rcap = cap;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            if (c->rcap - c->rlen >= READ_CHUNK)
                return true; /* drained for now (level-triggered: more wakes us) */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void on_conn_event(worker *w, conn *c, uint32_t events)
{
    c->last_active = now_s();
    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(w, c);
        return;
    }
    bool alive = true;
    if (events & EPOLLIN)
        alive = read_in(w, c);
    if (alive) {
        process(w, c);
        alive = flush_out(c);
        /* Replies drained below the mark: commands left in rbuf can go on now. */
        while (alive && !c->closing && c->woff == c->wlen && c->rlen > 0) {
            size_t before = c->rlen;
            process(w, c);
            alive = flush_out(c);
            if (c->rlen == before)
                break;
        }
    }
    if (!alive || (c->closing && c->woff == c->wlen) ||
        ((events & EPOLLRDHUP) && c->woff == c->wlen && c->rlen == 0)) {
        conn_close(w, c);
        return;
    }
    set_events(w, c);
}

static void refuse(resp_server *s, int fd)
{
    static const char busy[] = "-ERR max number of clients reached\r\n";
    ssize_t n = write(fd, busy, sizeof busy - 1);
    (void)n;
    close(fd);
    atomic_fetch_add(&s->ctx->m->rejected_connections[METRICS_RESP], 1);
}

static void on_accept(worker *w)
{
    resp_server *s = w->srv;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: another worker took it, or none left */
        if (atomic_load(&s->ctx->m->connections[METRICS_RESP]) >= s->ctx->lim.max_connections) {
            refuse(s, fd);
            continue;
        }
        /* Replies are small and each one is awaited: send them at once, as Redis does,
         * rather than let Nagle's algorithm hold a tail back until the client's ACK. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (c == NULL || (c->fd = fd, epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->last_active = now_s();
        c->events = ev.events;
        c->next = w->conns;
        if (w->conns != NULL)
            w->conns->prev = c;
        w->conns = c;
        atomic_fetch_add(&s->ctx->m->connections[METRICS_RESP], 1);
    }
}

static void close_idle(worker *w, time_t now)
{
    unsigned idle = w->srv->ctx->lim.idle_seconds;
    for (conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (idle > 0 && now - c->last_active >= (time_t)idle)
            conn_close(w, c);
    }
}

/* At shutdown: answer what was received, give the replies a second to go out, close. */
static void drain(worker *w)
{
    for (conn *c = w->conns; c != NULL; c = c->next) {
        process(w, c);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl >= 0)
            fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {.tv_sec = 1};
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        (void)flush_out(c);
    }
    while (w->conns != NULL)
        conn_close(w, w->conns);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    resp_server *s = w->srv;
    struct epoll_event ev[MAX_EVENTS];
    time_t last_sweep = now_s();
    while (!atomic_load(&s->stop)) {
        if (w->listening && atomic_load(&s->quiesce)) {
            epoll_ctl(w->ep, EPOLL_CTL_DEL, s->listen_fd, NULL);
            w->listening = false;
        }
        int n = epoll_wait(w->ep, ev, MAX_EVENTS, 1000);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL)
                on_accept(w);
            else if (ev[i].data.ptr == (void *)w) {
                uint64_t x;
                ssize_t r = read(w->wake, &x, sizeof x);
                (void)r;
            } else
                on_conn_event(w, ev[i].data.ptr, ev[i].events);
        }
        time_t t = now_s();
        if (t != last_sweep) {
            close_idle(w, t);
            last_sweep = t;
        }
    }
    drain(w);
    return NULL;
}

static pc_status worker_init(resp_server *s, worker *w, char *err, size_t errlen)
{
    size_t nargs = s->plim.max_args;
    w->srv = s;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->argv = calloc(nargs, sizeof *w->argv);
    w->values = calloc(nargs, sizeof *w->values);
    w->vlens = calloc(nargs, sizeof *w->vlens);
    w->keys = calloc(nargs, sizeof *w->keys);
    w->klens = calloc(nargs, sizeof *w->klens);
    if (w->ep < 0 || w->wake < 0 || !w->argv || !w->values || !w->vlens || !w->keys || !w->klens)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "resp: cannot set up a worker: %s",
                      strerror(errno));
    struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = w};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, s->listen_fd, &lev) != 0 ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &wev) != 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "resp: epoll: %s", strerror(errno));
    w->listening = true;
    return PC_OK;
}

static void worker_free(worker *w)
{
    if (w->ep >= 0)
        close(w->ep);
    if (w->wake >= 0)
        close(w->wake);
    free(w->argv);
    free(w->values);
    free(w->vlens);
    free(w->keys);
    free(w->klens);
}

static void wake_all(resp_server *s)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].wake >= 0 && write(s->workers[i].wake, &one, sizeof one) < 0)
            continue;
}

void resp_stop(resp_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    wake_all(s);
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
        worker_free(&s->workers[i]);
    }
    free(s->workers);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}

void resp_quiesce(resp_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->quiesce, true);
    wake_all(s);
}

pc_status resp_start(const struct sockaddr *addr, const serve_ctx *ctx, resp_server **out,
                     struct sockaddr_storage *bound, char *err, size_t errlen)
{
    *out = NULL;
    resp_server *s = calloc(1, sizeof *s);
    unsigned n = ctx->lim.threads ? ctx->lim.threads : 1;
    if (s == NULL || (s->workers = calloc(n, sizeof *s->workers)) == NULL) {
        free(s);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    s->ctx = ctx;
    s->nworkers = n;
    s->listen_fd = -1;
    for (unsigned i = 0; i < n; i++)
        s->workers[i].ep = s->workers[i].wake = -1;
    /* MGET carries max_batch keys; PING/ECHO arguments are held to the key limit too. */
    s->plim = (resp_limits){.max_args = ctx->lim.max_batch + 1,
                            .max_arg_bytes = ctx->lim.max_key_bytes,
                            .max_inline = INLINE_MAX};
    s->rbuf_max = s->plim.max_args * (s->plim.max_arg_bytes + 32) + INLINE_MAX + 2 * READ_CHUNK;
    pc_status rc = serve_listen(addr, &s->listen_fd, bound, err, errlen);
    for (unsigned i = 0; rc == PC_OK && i < n; i++)
        rc = worker_init(s, &s->workers[i], err, errlen);
    for (unsigned i = 0; rc == PC_OK && i < n; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "resp: cannot start a thread");
        else
            s->workers[i].started = true;
    }
    if (rc != PC_OK) {
        resp_stop(s);
        return rc;
    }
    *out = s;
    return PC_OK;
}
