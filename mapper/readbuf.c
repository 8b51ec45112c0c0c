#include "mapper/readbuf.h"

#include <stdlib.h>
#include <string.h>

pc_status readbuf_fill(readbuf *b, size_t *got, const char *what, char *err, size_t errlen)
{
    *got = 0;
    if (b->file_eof) return PC_OK;
    if (b->pos > 0) {
        memmove(b->buf, b->buf + b->pos, b->len - b->pos);
        b->file_off += (int64_t)b->pos;
        b->len -= b->pos;
        b->pos = 0;
    }
    if (b->len == b->cap) {
        if (b->cap >= b->max_cap) return PC_OK;
        size_t ncap = b->cap > b->max_cap / 2 ? b->max_cap : 2 * b->cap;
        char *nb = realloc(b->buf, ncap);
        if (nb == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (%zu-byte %s buffer)", b->path, ncap,
                          what);
        b->buf = nb;
        b->cap = ncap;
    }
    size_t n;
    char why[PC_ERRLEN];
    pc_status st = source_read(b->src, b->buf + b->len, b->cap - b->len, &n, why, sizeof why);
    if (st != PC_OK) {
        /* Name the line reached: the one after the last '\n' buffered. */
        int64_t line = b->line;
        for (const char *p = b->buf + b->pos, *e = b->buf + b->len;
             p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
            line++;
        return pc_err(err, errlen, st, "%s:%lld: %s", b->path, (long long)line, why);
    }
    if (n == 0) b->file_eof = true;
    b->len += n;
    *got = n;
    return PC_OK;
}
