/*
 * metrics.h — the server's counters and latency histograms, rendered for Prometheus.
 *
 * Every counter is a C11 atomic, so request threads of both protocols update one
 * serve_metrics without locks.  The caller owns the struct (zero it, or metrics_init) and
 * keeps it alive while any thread uses it.
 */
#ifndef PRECAST_SERVER_METRICS_H
#define PRECAST_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Latency bucket upper bounds, in microseconds; one more bucket counts the rest (+Inf). */
#define METRICS_NBUCKETS 13

typedef enum metrics_proto { METRICS_HTTP, METRICS_RESP, METRICS_NPROTO } metrics_proto;

typedef struct metrics_latency {
    atomic_uint_fast64_t bucket[METRICS_NBUCKETS + 1]; /* not cumulative; rendered cumulative */
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t count;
} metrics_latency;

typedef struct serve_metrics {
    atomic_uint_fast64_t requests[METRICS_NPROTO]; /* requests answered (any outcome) */
    atomic_uint_fast64_t errors[METRICS_NPROTO];   /* malformed requests and failed lookups */
    atomic_uint_fast64_t keys[METRICS_NPROTO];     /* keys looked up */
    atomic_uint_fast64_t misses[METRICS_NPROTO];   /* keys not in the table */
    atomic_uint_fast64_t connections[METRICS_NPROTO]; /* open now */
    atomic_uint_fast64_t rejected_connections[METRICS_NPROTO]; /* over --max-connections */
    atomic_uint_fast64_t reloads, reload_failures;
    atomic_uint_fast64_t index_keys, index_bytes; /* the served version's memory index; 0: none */
    metrics_latency latency[METRICS_NPROTO];
} serve_metrics;

void metrics_init(serve_metrics *m);

/* Counts one request: its protocol, keys looked up, misses, whether it failed, and its
 * duration in microseconds. */
void metrics_request(serve_metrics *m, metrics_proto p, uint64_t keys, uint64_t misses,
                     int failed, uint64_t micros);

/* One thread's counts of a run of requests, added to the shared counters at once by
 * metrics_tally_flush: a pipelined batch of commands then costs a few atomic additions, not a
 * dozen per command on cache lines that every request thread writes.  Owned by one thread;
 * zero it before use. */
typedef struct metrics_tally {
    uint64_t requests, errors, keys, misses, sum_us;
    uint64_t bucket[METRICS_NBUCKETS + 1];
} metrics_tally;

/* metrics_request into a tally. */
void metrics_tally_add(metrics_tally *t, uint64_t keys, uint64_t misses, int failed,
                       uint64_t micros);

/* Adds t to m's counters of protocol p and zeroes t. */
void metrics_tally_flush(serve_metrics *m, metrics_proto p, metrics_tally *t);

/* Microseconds on the monotonic clock, for request timing. */
uint64_t metrics_now_us(void);

/* Renders every metric in the Prometheus text format (version 0.0.4) into out (cap bytes,
 * always NUL-terminated).  version is the table version being served, published_unix its
 * creation time (seconds since the epoch; <= 0 when unknown).  Returns the length the whole
 * text needs (like snprintf): a result >= cap means it was cut. */
size_t metrics_render(const serve_metrics *m, const char *version, int64_t published_unix,
                      char *out, size_t cap);

#endif
