/*
 * readbuf.h — the read buffer that the segment readers (csv.c, libsvm.c) share: bytes of a
 * source (plain or gzip) with a consumed prefix, grown only while one record does not fit.
 *
 * Valid bytes are buf[0, len); the next unconsumed byte is buf[pos]; buf[0] is at file offset
 * file_off; `line` is the physical line of buf[pos] (the reader keeps it up to date as it
 * consumes). The reader that embeds a readbuf owns it and frees buf and src.
 */
#ifndef PRECAST_READBUF_H
#define PRECAST_READBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "mapper/source.h"

typedef struct readbuf {
    source *src;
    const char *path;    /* for messages; borrowed from the reader */
    char *buf;
    size_t cap, len, pos, max_cap;
    int64_t file_off;
    int64_t line;
    bool file_eof;       /* the source returned 0 bytes */
} readbuf;

/* Discards buf[0, pos), then reads more bytes after the valid ones, growing the buffer (up to
 * max_cap) if it is full. *got = bytes read: 0 at end of file, or when the buffer is full at
 * max_cap (then file_eof is false). A read error names the path and the line reached;
 * out of memory names `what` ("record", "line"). */
pc_status readbuf_fill(readbuf *b, size_t *got, const char *what, char *err, size_t errlen);

#endif
