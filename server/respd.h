/*
 * respd.h — the Redis-protocol front end of `precast serve`: read-only GET, MGET, EXISTS,
 * PING, ECHO, INFO, DBSIZE, SELECT 0, COMMAND, CONFIG GET, CLIENT, QUIT — enough for
 * redis-cli, redis-benchmark and the Redis client libraries.  Write commands get
 * "-READONLY ...", others "-ERR unknown command ...".  Values are the stored bytes (JSON
 * text, or float32 for value_format = f32).
 *
 * Why a plain epoll loop rather than libevent: the protocol is a request/reply loop over
 * one buffer per connection, and an epoll loop of a few hundred lines keeps every limit
 * (buffer sizes, connection count, idle time, back-pressure on pipelined replies) in plain
 * sight, with the parser (resp.h) free of I/O so that it is fuzzed on its own.
 *
 * ctx->lim.threads threads each run an epoll loop; they share the listening socket
 * (EPOLLEXCLUSIVE wakes one of them per connection) and never share a connection.
 */
#ifndef PRECAST_SERVER_RESPD_H
#define PRECAST_SERVER_RESPD_H

#include <sys/socket.h>

#include "kernels/status.h"
#include "server/serve.h"

typedef struct resp_server resp_server;

/* Listens on addr and serves ctx (which must outlive the server).  *bound gets the address
 * bound.  Failure -> PC_ERR_CANTCREAT with a message. */
pc_status resp_start(const struct sockaddr *addr, const serve_ctx *ctx, resp_server **out,
                     struct sockaddr_storage *bound, char *err, size_t errlen);

/* Stops accepting connections; connections already open are still served. */
void resp_quiesce(resp_server *s);

/* Answers the commands already received, sends what is pending (for at most a second),
 * closes every connection and frees the server.  Accepts NULL. */
void resp_stop(resp_server *s);

#endif
