/*
 * serve.c — `precast serve TABLE`: the HTTP/JSON and Redis-protocol front ends over one
 * version holder, hot reload when CURRENT changes, and a draining shutdown on SIGTERM.
 *
 * Threads: the front ends run their own request threads; this thread only waits for
 * signals and, every --reload-interval, asks the holder whether CURRENT moved.
 */
#include "server/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs/commands.h"
#include "server/http.h"
#include "server/respd.h"

/* ---- shared by the front ends ---- */

pc_status serve_lookup_batch(holder_ver *v, size_t n, const char *const *keys,
                             const size_t *klens, const char **values, size_t *vlens,
                             bool *owned, size_t *misses, char *err, size_t errlen)
{
    *misses = 0;
    const memindex *ix = holder_ver_index(v);
    *owned = ix == NULL;
    if (ix != NULL) {
        for (size_t i = 0; i < n; i++)
            *misses += !memindex_get(ix, keys[i], klens[i], &values[i], &vlens[i]);
        return PC_OK;
    }
    /* table_multi_get fills char *values; the array is ours, so it lends it the storage. */
    pc_status rc = table_multi_get(holder_ver_table(v), n, (const void *const *)keys, klens,
                                   (char **)values, vlens, NULL, err, errlen);
    for (size_t i = 0; rc == PC_OK && i < n; i++)
        *misses += values[i] == NULL;
    return rc;
}

void serve_values_free(const char **values, size_t n, bool owned)
{
    for (size_t i = 0; i < n; i++) {
        if (owned)
            free((char *)values[i]);
        values[i] = NULL;
    }
}

pc_status serve_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                           char *err, size_t errlen)
{
    memset(ss, 0, sizeof *ss);
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: expected HOST:PORT", s);
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: bad port", s);
    char host[INET6_ADDRSTRLEN + 2];
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof host)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: bad address", s);
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
        return PC_OK;
    }
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)port);
            *len = sizeof *in6;
            return PC_OK;
        }
    }
    return pc_err(err, errlen, PC_ERR_USAGE,
                  "%s: the host must be a numeric address (127.0.0.1, 0.0.0.0, [::1])", s);
}

void serve_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", host, port);
        return;
    }
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    port = ntohs(in4->sin_port);
    snprintf(out, cap, "%s:%u", host, port);
}

pc_status serve_listen(const struct sockaddr *addr, int *fd, struct sockaddr_storage *bound,
                       char *err, size_t errlen)
{
    char shown[INET6_ADDRSTRLEN + 16];
    serve_format_addr(addr, shown, sizeof shown);
    socklen_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in);
    *fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: socket: %s", shown, strerror(errno));
    int one = 1;
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t blen = sizeof *bound;
    if (bind(*fd, addr, alen) != 0 || listen(*fd, 512) != 0 ||
        getsockname(*fd, (struct sockaddr *)bound, &blen) != 0) {
        pc_status rc = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot listen: %s", shown,
                              strerror(errno));
        close(*fd);
        *fd = -1;
        return rc;
    }
    return PC_OK;
}

/* ---- the command ---- */

/* How long a version whose preload found it damaged waits before it is scanned again (a new
 * CURRENT is tried at once). */
#define PRELOAD_RETRY_S 60

typedef struct serve_opts {
    const char *table;
    const char *http, *resp;            /* as given; NULL: that endpoint is off */
    struct sockaddr_storage http_addr, resp_addr; /* parsed once, by parse_opts */
    long reload_ms;
    long cache_mb;
    bool preload;
    long preload_max_mb;
    serve_limits lim;
} serve_opts;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast serve TABLE [--http ADDR:PORT] [--resp ADDR:PORT] [options]\n"
            "\n"
            "Answers point lookups from the table's current version over HTTP/JSON and the\n"
            "Redis protocol (read only), and switches to a new version when CURRENT changes:\n"
            "requests in progress finish on the old version, which is then closed.\n"
            "\n"
            "  --http ADDR:PORT       HTTP/JSON endpoint (default 127.0.0.1:8080 when neither\n"
            "                         --http nor --resp is given; port 0 picks a free one)\n"
            "  --resp ADDR:PORT       Redis-protocol endpoint (GET, MGET, EXISTS, PING, INFO...)\n"
            "  --threads N            request threads per endpoint (default: the CPUs)\n"
            "  --max-connections N    per endpoint (default 1024)\n"
            "  --idle-timeout SEC     close connections idle this long (default 300; 0 never)\n"
            "  --max-key-bytes N      longest key (default 4096)\n"
            "  --max-batch N          keys per batchGet, MGET or EXISTS (default 1000)\n"
            "  --max-body-bytes N     largest HTTP request body (default 1048576)\n"
            "  --reload-interval MS   how often CURRENT is checked (default 1000); SIGHUP checks\n"
            "                         at once\n"
            "  --cache-mb N           LevelDB block cache per version (default 32)\n"
            "  --preload              read each version into memory when it is opened (before\n"
            "                         it is switched to) and answer lookups from there; a\n"
            "                         version over --preload-max-mb is answered from LevelDB\n"
            "  --preload-max-mb N     the most one version's index may take (default: a\n"
            "                         quarter of the RAM; a reload holds two for a moment)\n"
            "\n"
            "HTTP: GET /v1/predictions/{key} (404 on a miss), POST /v1/predictions:batchGet\n"
            "with [\"k1\",\"k2\"] or {\"keys\": [...]}, GET /healthz, GET /metrics (Prometheus).\n"
            "Binds 127.0.0.1 unless an address says otherwise. SIGTERM or SIGINT: stop\n"
            "accepting, finish the requests in progress, exit 0.\n"
            "Exit status: 0 after SIGTERM, 64 usage, 66 no table, 73 cannot listen, 74 I/O.\n");
}

/* Parses a positive count for option name; false (with a message) if it is not one. */
static bool parse_count(const char *name, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "precast serve: %s: expected a number from %ld to %ld, got '%s'\n",
                name, min, max, s);
        return false;
    }
    *out = v;
    return true;
}

/* A quarter of the RAM, in MiB: a reload holds the old version's index and the new one's at
 * once, and the rest of the machine needs memory too. */
static long default_preload_mb(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return 1024;
    long mb = (long)((double)pages * (double)page / 4 / 1048576.0);
    return mb > 0 ? mb : 1;
}

/* Returns 0 to go on, -1 after --help, or an exit status. */
static int parse_opts(int argc, char **argv, serve_opts *o)
{
    static const struct option opts[] = {
        {"http", required_argument, NULL, 'H'},        {"resp", required_argument, NULL, 'R'},
        {"threads", required_argument, NULL, 't'},     {"max-connections", required_argument, NULL, 'c'},
        {"idle-timeout", required_argument, NULL, 'i'}, {"max-key-bytes", required_argument, NULL, 'k'},
        {"max-batch", required_argument, NULL, 'b'},   {"max-body-bytes", required_argument, NULL, 'B'},
        {"reload-interval", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {"cache-mb", required_argument, NULL, 'C'},    {"preload", no_argument, NULL, 'P'},
        {"preload-max-mb", required_argument, NULL, 'M'},
        {NULL, 0, NULL, 0}};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = ncpu > 0 ? ncpu : 2, conns = 1024, idle = 300, key = 4096, batch = 1000,
         body = 1 << 20;
    o->reload_ms = 1000;
    o->cache_mb = 32;
    o->preload_max_mb = default_preload_mb();
    optind = 1;
    int c;
    bool ok = true;
    while (ok && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': o->http = optarg; break;
        case 'R': o->resp = optarg; break;
        case 't': ok = parse_count("--threads", optarg, 1, 256, &threads); break;
        case 'c': ok = parse_count("--max-connections", optarg, 1, 1000000, &conns); break;
        case 'i': ok = parse_count("--idle-timeout", optarg, 0, 86400 * 365, &idle); break;
        case 'k': ok = parse_count("--max-key-bytes", optarg, 1, 1 << 20, &key); break;
        case 'b': ok = parse_count("--max-batch", optarg, 1, 1000000, &batch); break;
        case 'B': ok = parse_count("--max-body-bytes", optarg, 1, 1L << 30, &body); break;
        case 'r': ok = parse_count("--reload-interval", optarg, 10, 3600000, &o->reload_ms); break;
        case 'C': ok = parse_count("--cache-mb", optarg, 1, 1 << 20, &o->cache_mb); break;
        case 'P': o->preload = true; break;
        case 'M': ok = parse_count("--preload-max-mb", optarg, 1, 1L << 30, &o->preload_max_mb); break;
        case 'h': usage(stdout); return -1;
        default: ok = false; break;
        }
    }
    if (!ok || optind != argc - 1) {
        if (ok)
            fprintf(stderr, "precast serve: expected one table directory\n");
        usage(stderr);
        return PC_ERR_USAGE;
    }
    o->table = argv[optind];
    if (o->http == NULL && o->resp == NULL)
        o->http = "127.0.0.1:8080";
    /* Before the table is opened: a typo in an address is a usage error, not a late one. */
    const char *addrs[2] = {o->http, o->resp};
    struct sockaddr_storage *parsed[2] = {&o->http_addr, &o->resp_addr};
    for (int i = 0; i < 2; i++) {
        socklen_t len;
        char err[PC_ERRLEN];
        if (addrs[i] != NULL && serve_parse_addr(addrs[i], parsed[i], &len, err, sizeof err) != PC_OK) {
            fprintf(stderr, "precast serve: %s\n", err);
            return PC_ERR_USAGE;
        }
    }
    o->lim = (serve_limits){.max_key_bytes = (size_t)key, .max_batch = (size_t)batch,
                            .max_body_bytes = (size_t)body, .max_connections = (unsigned)conns,
                            .idle_seconds = (unsigned)idle, .threads = (unsigned)threads};
    return 0;
}

/* Says how the version will be answered (from memory, or why not) and publishes the index's
 * size in the metrics. */
static void report_version(const serve_ctx *ctx, holder_ver *v, bool preload)
{
    const memindex *ix = holder_ver_index(v);
    atomic_store(&ctx->m->index_keys, ix != NULL ? memindex_count(ix) : 0);
    atomic_store(&ctx->m->index_bytes, ix != NULL ? memindex_bytes(ix) : 0);
    if (ix != NULL)
        fprintf(stderr, "precast serve: version %s preloaded: %llu keys, %.1f MiB, %.2f s\n",
                holder_ver_name(v), (unsigned long long)memindex_count(ix),
                (double)memindex_bytes(ix) / 1048576.0, holder_ver_load_seconds(v));
    else if (preload)
        fprintf(stderr, "precast serve: version %s not preloaded, answering from LevelDB: %s\n",
                holder_ver_name(v), holder_ver_note(v));
}

/* Checks CURRENT; says what changed, and each new failure once. */
static void reload(serve_ctx *ctx, bool preload, char *last_err, size_t cap)
{
    char err[PC_ERRLEN];
    bool switched = false;
    pc_status rc = holder_reload(ctx->h, &switched, err, sizeof err);
    if (rc != PC_OK) {
        atomic_fetch_add(&ctx->m->reload_failures, 1);
        if (strcmp(err, last_err) != 0)
            fprintf(stderr, "precast serve: keeping the current version: %s\n", err);
        snprintf(last_err, cap, "%s", err);
        return;
    }
    last_err[0] = '\0';
    if (switched) {
        atomic_fetch_add(&ctx->m->reloads, 1);
        holder_ver *v = holder_acquire(ctx->h);
        fprintf(stderr, "precast serve: now serving version %s\n", holder_ver_name(v));
        report_version(ctx, v, preload);
        holder_release(ctx->h, v);
    }
}

/* Waits for SIGTERM or SIGINT, reloading every interval and on SIGHUP. */
static void serve_until_signal(serve_ctx *ctx, const sigset_t *set, long reload_ms, bool preload)
{
    char last_err[PC_ERRLEN] = "";
    struct timespec ts = {.tv_sec = reload_ms / 1000, .tv_nsec = (reload_ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "precast serve: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        if (sig < 0 && errno == EINTR)
            continue;
        reload(ctx, preload, last_err, sizeof last_err);
    }
}

/* Starts the endpoints asked for; on failure stops what was started. */
static pc_status start_endpoints(const serve_opts *o, const serve_ctx *ctx, http_server **hs,
                                 resp_server **rs, char *err, size_t errlen)
{
    struct sockaddr_storage bound;
    char shown[80];
    pc_status rc = PC_OK;
    if (o->http != NULL &&
        (rc = http_start((const struct sockaddr *)&o->http_addr, ctx, hs, &bound, err, errlen)) == PC_OK) {
        serve_format_addr((struct sockaddr *)&bound, shown, sizeof shown);
        fprintf(stderr, "precast serve: http listening on %s\n", shown);
    }
    if (rc == PC_OK && o->resp != NULL &&
        (rc = resp_start((const struct sockaddr *)&o->resp_addr, ctx, rs, &bound, err, errlen)) == PC_OK) {
        serve_format_addr((struct sockaddr *)&bound, shown, sizeof shown);
        fprintf(stderr, "precast serve: resp listening on %s\n", shown);
    }
    if (rc != PC_OK) {
        http_stop(*hs);
        resp_stop(*rs);
        *hs = NULL;
        *rs = NULL;
    }
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {0};
    int st = parse_opts(argc, argv, &o);
    if (st != 0)
        return st < 0 ? 0 : st;
    /* Signals are taken by sigtimedwait in this thread only: block them before any other
     * thread exists, so that every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-reply is an EPIPE, not a dead server */
    char err[PC_ERRLEN];
    serve_metrics metrics;
    metrics_init(&metrics);
    serve_ctx ctx = {.m = &metrics, .lim = o.lim};
    holder_opts hopts = {.cache_bytes = (size_t)o.cache_mb << 20, .preload = o.preload,
                         .preload_max_bytes = (size_t)o.preload_max_mb << 20,
                         .preload_retry_s = PRELOAD_RETRY_S};
    pc_status rc = holder_open(o.table, &hopts, &ctx.h, err, sizeof err);
    if (rc != PC_OK) {
        fprintf(stderr, "precast serve: %s\n", err);
        return rc;
    }
    holder_ver *v = holder_acquire(ctx.h);
    fprintf(stderr, "precast serve: serving %s version %s (%lld keys)\n", o.table,
            holder_ver_name(v), (long long)table_manifest(holder_ver_table(v))->rows_written);
    report_version(&ctx, v, o.preload);
    holder_release(ctx.h, v);
    http_server *hs = NULL;
    resp_server *rs = NULL;
    rc = start_endpoints(&o, &ctx, &hs, &rs, err, sizeof err);
    if (rc == PC_OK) {
        serve_until_signal(&ctx, &set, o.reload_ms, o.preload);
        http_quiesce(hs);
        resp_quiesce(rs);
        http_stop(hs);
        resp_stop(rs);
        fprintf(stderr, "precast serve: stopped\n");
    } else {
        fprintf(stderr, "precast serve: %s\n", err);
    }
    holder_close(ctx.h);
    return rc;
}
