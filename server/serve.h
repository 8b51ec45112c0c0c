/*
 * serve.h — what the protocol front ends of `precast serve` share: the version holder, the
 * metrics and the limits, plus the address parser and the lookup of a batch of keys.
 *
 * Ownership: serve.c (cmd_serve) owns the serve_ctx and everything it points to, and keeps
 * them alive until both front ends have stopped.
 */
#ifndef PRECAST_SERVER_SERVE_H
#define PRECAST_SERVER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "kernels/status.h"
#include "server/holder.h"
#include "server/metrics.h"

typedef struct serve_limits {
    size_t max_key_bytes;   /* longest key accepted */
    size_t max_batch;       /* most keys in one batchGet / MGET / EXISTS */
    size_t max_body_bytes;  /* largest HTTP request body */
    unsigned max_connections; /* per protocol */
    unsigned idle_seconds;  /* a connection idle this long is closed */
    unsigned threads;       /* request threads per protocol */
} serve_limits;

typedef struct serve_ctx {
    holder *h;
    serve_metrics *m;
    serve_limits lim;
} serve_ctx;

/* Looks n keys up in one version (so a batch never mixes versions): values[i] and vlens[i]
 * for keys[i], values[i] NULL on a miss; *misses counts the misses.  From a preloaded version
 * the values point into its memory index (no copy: valid while v is held) and *owned is
 * false; from LevelDB they are malloc'd copies and *owned is true.  Either way the caller
 * ends with serve_values_free.  On failure every values[i] is NULL (nothing to free). */
pc_status serve_lookup_batch(holder_ver *v, size_t n, const char *const *keys,
                             const size_t *klens, const char **values, size_t *vlens,
                             bool *owned, size_t *misses, char *err, size_t errlen);
/* Frees values[0..n) if owned and sets them to NULL. */
void serve_values_free(const char **values, size_t n, bool owned);

/* Parses "HOST:PORT" ("127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080", ":8080" for 127.0.0.1;
 * HOST must be a numeric address) into *ss / *len.  PC_ERR_USAGE with a message if not. */
pc_status serve_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                           char *err, size_t errlen);

/* Creates a listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR) bound to addr;
 * *bound gets the address bound (the port chosen when addr's is 0).  Failure ->
 * PC_ERR_CANTCREAT naming the address ("address in use"). */
pc_status serve_listen(const struct sockaddr *addr, int *fd, struct sockaddr_storage *bound,
                       char *err, size_t errlen);

/* "127.0.0.1:8080" for a bound socket address. */
void serve_format_addr(const struct sockaddr *sa, char *out, size_t cap);

#endif
