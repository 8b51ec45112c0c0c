/*
 * http.h — the HTTP/JSON front end of `precast serve`, on GNU libmicrohttpd.
 *
 *   GET  /v1/predictions/{key}         200 {"key": K, "version": V, "value": ...}
 *                                      404 {"error": "not found", "key": K, "version": V}
 *   POST /v1/predictions:batchGet      body ["k1", "k2"] or {"keys": ["k1", "k2"]}
 *                                      200 {"version": V, "results": [{"key": K, "found":
 *                                          true, "value": ...}, {"key": K, "found": false}]}
 *   GET  /healthz                      200 {"status": "ok", "version": V, ...}
 *   GET  /metrics                      Prometheus text (server/metrics.h)
 * Errors are JSON {"error": "..."}: 400 malformed request, 404 unknown path, 405 wrong
 * method, 413 body over the limit, 503 a shard that cannot be read (never a wrong value).
 *
 * Why libmicrohttpd: HTTP/1.1 parsing (chunked bodies, keep-alive, pipelining, header
 * limits) is where hand-written servers break; libmicrohttpd is small, a GNU project packaged
 * by Debian, and gives a thread pool over epoll, per-connection memory limits, connection
 * limits and idle timeouts as options.
 */
#ifndef PRECAST_SERVER_HTTP_H
#define PRECAST_SERVER_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "kernels/status.h"
#include "server/serve.h"

typedef struct http_server http_server;

/* Listens on addr and serves ctx (which must outlive the server) from ctx->lim.threads
 * threads.  *bound gets the address actually bound (port 0 picks one).  Failure ->
 * PC_ERR_CANTCREAT (cannot listen) with a message. */
pc_status http_start(const struct sockaddr *addr, const serve_ctx *ctx, http_server **out,
                     struct sockaddr_storage *bound, char *err, size_t errlen);

/* Stops accepting connections; requests in progress go on. */
void http_quiesce(http_server *s);

/* Waits for requests in progress to end, then frees the server. Accepts NULL. */
void http_stop(http_server *s);

#endif
