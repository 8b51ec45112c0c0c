/*
 * status.h — the result codes every precast function returns, and the error-buffer helper.
 *
 * Every fallible function in precast returns a pc_status and, on failure, writes a one-line
 * message into a caller-owned buffer `char *err, size_t errlen` (NUL-terminated, truncated to
 * fit). The codes are the exit statuses of sysexits.h, so `main` can return them as they are
 * and an operator's script can tell "bad input" from "disk full" from "locked".
 *
 * This header lives in kernels/ because kernels/ is the bottom of the dependency graph
 * (jobs -> mapper, reducer, storage -> kernels): every module can include it.
 */
#ifndef PRECAST_STATUS_H
#define PRECAST_STATUS_H

#include <stddef.h>

typedef enum pc_status {
    PC_OK = 0,
    PC_ERR_USAGE = 64,     /* bad command line */
    PC_ERR_DATA = 65,      /* input rows rejected (malformed row, duplicate id, bad values) */
    PC_ERR_NOINPUT = 66,   /* an input file or model is missing or unreadable */
    PC_ERR_INTERNAL = 70,  /* a bug or an out-of-memory: never the user's fault */
    PC_ERR_CANTCREAT = 73, /* cannot create the output (table dir, staging, shard) */
    PC_ERR_IO = 74,        /* I/O error or corruption of something already written */
    PC_ERR_LOCKED = 75,    /* another run holds the job's lock */
    PC_ERR_CONFIG = 78     /* job file or model rejected */
} pc_status;

/* A short, static, lower-case name for a status ("ok", "bad input data", ...). Never NULL. */
const char *pc_status_str(pc_status s);

/* Formats a message into err (if err != NULL and errlen > 0) and returns `code`, so that
 * failure paths read `return pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(errno));`.
 * The message is truncated to errlen-1 bytes; err is always NUL-terminated. */
pc_status pc_err(char *err, size_t errlen, pc_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Size of the error buffers precast passes around: room for a path, a line and a reason. */
#define PC_ERRLEN 1024

#endif
