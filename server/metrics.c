/* metrics.c — lock-free request counters and their Prometheus rendering. */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const uint64_t BUCKET_US[METRICS_NBUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

static const char *const PROTO_NAME[METRICS_NPROTO] = {"http", "resp"};

void metrics_init(serve_metrics *m)
{
    memset(m, 0, sizeof *m);
}

uint64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_request(serve_metrics *m, metrics_proto p, uint64_t keys, uint64_t misses,
                     int failed, uint64_t micros)
{
    atomic_fetch_add_explicit(&m->requests[p], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->keys[p], keys, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->misses[p], misses, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&m->errors[p], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < METRICS_NBUCKETS && micros > BUCKET_US[b])
        b++;
    metrics_latency *l = &m->latency[p];
    atomic_fetch_add_explicit(&l->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_us, micros, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed);
}

void metrics_tally_add(metrics_tally *t, uint64_t keys, uint64_t misses, int failed,
                       uint64_t micros)
{
    t->requests++;
    t->keys += keys;
    t->misses += misses;
    t->errors += failed != 0;
    t->sum_us += micros;
    size_t b = 0;
    while (b < METRICS_NBUCKETS && micros > BUCKET_US[b])
        b++;
    t->bucket[b]++;
}

void metrics_tally_flush(serve_metrics *m, metrics_proto p, metrics_tally *t)
{
    if (t->requests == 0)
        return;
    atomic_fetch_add_explicit(&m->requests[p], t->requests, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->keys[p], t->keys, memory_order_relaxed);
    if (t->misses != 0)
        atomic_fetch_add_explicit(&m->misses[p], t->misses, memory_order_relaxed);
    if (t->errors != 0)
        atomic_fetch_add_explicit(&m->errors[p], t->errors, memory_order_relaxed);
    metrics_latency *l = &m->latency[p];
    for (size_t b = 0; b <= METRICS_NBUCKETS; b++)
        if (t->bucket[b] != 0)
            atomic_fetch_add_explicit(&l->bucket[b], t->bucket[b], memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_us, t->sum_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->count, t->requests, memory_order_relaxed);
    memset(t, 0, sizeof *t);
}

/* snprintf into a cursor that keeps counting past the end, so that the caller learns the
 * length the whole text needs. */
typedef struct out_cursor {
    char *buf;
    size_t cap, len;
} out_cursor;

__attribute__((format(printf, 2, 3))) static void put(out_cursor *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room > 0 ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static uint64_t load(const atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* A label value: version names are printable (no newline) but may hold '"' and '\\'. */
static void put_label_value(out_cursor *o, const char *s)
{
    for (; *s != '\0'; s++)
        put(o, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
}

static void put_per_proto(out_cursor *o, const char *name, const char *type, const char *help,
                          const atomic_uint_fast64_t *v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (int p = 0; p < METRICS_NPROTO; p++)
        put(o, "%s{protocol=\"%s\"} %llu\n", name, PROTO_NAME[p], (unsigned long long)load(&v[p]));
}

static void put_histogram(out_cursor *o, const serve_metrics *m)
{
    const char *name = "precast_request_duration_seconds";
    put(o, "# HELP %s Time from a request's arrival to its answer.\n# TYPE %s histogram\n", name,
        name);
    for (int p = 0; p < METRICS_NPROTO; p++) {
        const metrics_latency *l = &m->latency[p];
        uint64_t cum = 0;
        for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
            cum += load(&l->bucket[b]);
            put(o, "%s_bucket{protocol=\"%s\",le=\"%g\"} %llu\n", name, PROTO_NAME[p],
                (double)BUCKET_US[b] / 1e6, (unsigned long long)cum);
        }
        cum += load(&l->bucket[METRICS_NBUCKETS]);
        put(o, "%s_bucket{protocol=\"%s\",le=\"+Inf\"} %llu\n", name, PROTO_NAME[p],
            (unsigned long long)cum);
        put(o, "%s_sum{protocol=\"%s\"} %.6f\n", name, PROTO_NAME[p], (double)load(&l->sum_us) / 1e6);
        put(o, "%s_count{protocol=\"%s\"} %llu\n", name, PROTO_NAME[p],
            (unsigned long long)load(&l->count));
    }
}

size_t metrics_render(const serve_metrics *m, const char *version, int64_t published_unix,
                      char *out, size_t cap)
{
    out_cursor o = {out, cap, 0};
    if (cap > 0)
        out[0] = '\0';
    put_per_proto(&o, "precast_requests_total", "counter", "Requests answered.", m->requests);
    put_per_proto(&o, "precast_request_errors_total", "counter",
                  "Malformed requests and failed lookups.", m->errors);
    put_per_proto(&o, "precast_keys_total", "counter", "Keys looked up.", m->keys);
    put_per_proto(&o, "precast_misses_total", "counter", "Keys not in the table.", m->misses);
    put_per_proto(&o, "precast_connections", "gauge", "Open client connections.", m->connections);
    put_per_proto(&o, "precast_rejected_connections_total", "counter",
                  "Connections refused over the connection limit.", m->rejected_connections);
    put_histogram(&o, m);
    put(&o, "# HELP precast_reloads_total Versions switched to after CURRENT changed.\n"
            "# TYPE precast_reloads_total counter\nprecast_reloads_total %llu\n",
        (unsigned long long)load(&m->reloads));
    put(&o, "# HELP precast_reload_failures_total New versions that could not be opened.\n"
            "# TYPE precast_reload_failures_total counter\nprecast_reload_failures_total %llu\n",
        (unsigned long long)load(&m->reload_failures));
    put(&o, "# HELP precast_memory_index_keys Keys of the served version held in memory "
            "(--preload; 0: answered from LevelDB).\n"
            "# TYPE precast_memory_index_keys gauge\nprecast_memory_index_keys %llu\n",
        (unsigned long long)load(&m->index_keys));
    put(&o, "# HELP precast_memory_index_bytes Bytes of the served version's memory index.\n"
            "# TYPE precast_memory_index_bytes gauge\nprecast_memory_index_bytes %llu\n",
        (unsigned long long)load(&m->index_bytes));
    put(&o, "# HELP precast_version_info The table version being served.\n"
            "# TYPE precast_version_info gauge\nprecast_version_info{version=\"");
    put_label_value(&o, version);
    put(&o, "\"} 1\n");
    if (published_unix > 0) {
        put(&o, "# HELP precast_version_created_seconds When the served version was created.\n"
                "# TYPE precast_version_created_seconds gauge\n"
                "precast_version_created_seconds %lld\n",
            (long long)published_unix);
        put(&o, "# HELP precast_version_age_seconds Age of the served version.\n"
                "# TYPE precast_version_age_seconds gauge\nprecast_version_age_seconds %lld\n",
            (long long)(time(NULL) - published_unix));
    }
    return o.len;
}
