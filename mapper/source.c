#include "mapper/source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

/* Compressed bytes read per read() of a gzip file. */
enum { SOURCE_GZ_IN = 256 << 10 };

struct source {
    int fd;
    source_codec codec;
    pc_status broken;    /* a read failed: every later call repeats why_broken */
    char why_broken[160];

    /* gzip only */
    z_stream z;
    bool z_ready;        /* inflateInit2 succeeded: inflateEnd is due */
    unsigned char *in;   /* compressed input; z.next_in/avail_in point into it */
    bool in_eof;         /* read() of the compressed file returned 0 */
    bool any_in;         /* at least one compressed byte was read */
    bool member_done;    /* the last member ended (Z_STREAM_END): next comes a member or EOF */
    int64_t out_total;   /* uncompressed bytes produced so far, over all members */
};

source_codec source_codec_of(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcasecmp(path + n - 3, ".gz") == 0 ? SOURCE_CODEC_GZIP
                                                          : SOURCE_CODEC_PLAIN;
}

bool source_compressed(const source *s) { return s->codec != SOURCE_CODEC_PLAIN; }

void source_close(source *s)
{
    if (s == NULL) return;
    if (s->z_ready) inflateEnd(&s->z);
    if (s->fd >= 0) close(s->fd);
    free(s->in);
    free(s);
}

pc_status source_open(const char *path, int64_t start, source **out, char *err, size_t errlen)
{
    *out = NULL;
    source_codec codec = source_codec_of(path);
    if (codec != SOURCE_CODEC_PLAIN && start != 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL,
                      "%s: a compressed file cannot be read from byte %lld", path,
                      (long long)start);
    source *s = calloc(1, sizeof *s);
    if (s == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    s->codec = codec;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        pc_status st = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", path, strerror(errno));
        source_close(s);
        return st;
    }
    (void)posix_fadvise(s->fd, start, 0, POSIX_FADV_SEQUENTIAL);
    if (codec == SOURCE_CODEC_PLAIN) {
        if (start > 0 && lseek(s->fd, start, SEEK_SET) < 0) {
            pc_status st = pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(errno));
            source_close(s);
            return st;
        }
        *out = s;
        return PC_OK;
    }
    s->in = malloc(SOURCE_GZ_IN);
    if (s->in == NULL) {
        source_close(s);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory (gzip input buffer)",
                      path);
    }
    /* 15 + 16: a gzip wrapper (not zlib's, not raw deflate) with up to a 32 KiB window. */
    int rc = inflateInit2(&s->z, 15 + 16);
    if (rc != Z_OK) {
        source_close(s);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: cannot start zlib (%s)", path,
                      zError(rc));
    }
    s->z_ready = true;
    *out = s;
    return PC_OK;
}

/* Makes the failure sticky and returns it. */
static pc_status fail(source *s, pc_status code, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static pc_status fail(source *s, pc_status code, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why_broken, sizeof s->why_broken, fmt, ap);
    va_end(ap);
    s->broken = code;
    return pc_err(why, whylen, code, "%s", s->why_broken);
}

static pc_status read_plain(source *s, void *buf, size_t n, size_t *got, char *why,
                            size_t whylen)
{
    for (;;) {
        ssize_t r = read(s->fd, buf, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail(s, PC_ERR_IO, why, whylen, "%s", strerror(errno));
        *got = (size_t)r;
        return PC_OK;
    }
}

/* Inflates until at least one byte is out, or the file ends after a whole member, or an
 * error. */
static pc_status read_gzip(source *s, void *buf, size_t n, size_t *got, char *why,
                           size_t whylen)
{
    z_stream *z = &s->z;
    z->next_out = buf;
    z->avail_out = n > UINT_MAX ? UINT_MAX : (uInt)n;
    const uInt want = z->avail_out;
    pc_status st = PC_OK;
    while (z->avail_out == want) {
        if (z->avail_in == 0 && !s->in_eof) {
            ssize_t r = read(s->fd, s->in, SOURCE_GZ_IN);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                st = fail(s, PC_ERR_IO, why, whylen, "%s", strerror(errno));
                break;
            }
            if (r == 0) s->in_eof = true;
            if (r > 0) s->any_in = true;
            z->next_in = s->in;
            z->avail_in = (uInt)r;
        }
        if (z->avail_in == 0 && s->in_eof && (s->member_done || !s->any_in))
            break; /* the end, after a whole member (or of an empty file) */
        if (s->member_done) {
            /* More bytes after a member: they must be another member (gzip -d reads
             * concatenated members); inflate checks the header. */
            inflateReset(z);
            s->member_done = false;
        }
        if (z->avail_in == 0 && s->in_eof) {
            st = fail(s, PC_ERR_IO, why, whylen,
                      "truncated gzip file: it ends inside compressed data after %lld "
                      "uncompressed bytes",
                      (long long)s->out_total);
            break;
        }
        uInt before = z->avail_out;
        int rc = inflate(z, Z_NO_FLUSH);
        s->out_total += (int64_t)(before - z->avail_out);
        if (rc == Z_STREAM_END) {
            s->member_done = true;
        } else if (rc == Z_MEM_ERROR) {
            st = fail(s, PC_ERR_INTERNAL, why, whylen, "out of memory (zlib)");
            break;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            /* Z_DATA_ERROR (bad header, deflate data or CRC), Z_NEED_DICT, Z_STREAM_ERROR */
            st = fail(s, PC_ERR_IO, why, whylen,
                      "corrupt gzip data (%s) after %lld uncompressed bytes",
                      z->msg != NULL ? z->msg : zError(rc), (long long)s->out_total);
            break;
        }
    }
    *got = (size_t)(want - z->avail_out);
    /* Bytes inflated before an error are handed out first, so that the reader's message
     * names the line the data reached; the error (sticky) comes with the next call. */
    return *got > 0 ? PC_OK : st;
}

pc_status source_read(source *s, void *buf, size_t n, size_t *got, char *why, size_t whylen)
{
    *got = 0;
    if (s->broken != PC_OK) return pc_err(why, whylen, s->broken, "%s", s->why_broken);
    if (s->codec == SOURCE_CODEC_PLAIN) return read_plain(s, buf, n, got, why, whylen);
    return read_gzip(s, buf, n, got, why, whylen);
}
