/*
 * source.h — the bytes of one input file, plain or gzip-compressed, read sequentially.
 *
 * The readers (csv.h, libsvm.h) read through a source so that they need not know how a file
 * is stored:
 *   - a plain file is read from a byte offset onwards (read() after a seek), so a reader of
 *     a segment [start, end) reads its bytes and the tail of its last record past end;
 *   - a file whose name ends in ".gz" (any case) is inflated (zlib) from its first byte to
 *     its end: a compressed file cannot be entered in the middle, so split.h never cuts it
 *     and its one segment is the whole file. Offsets and lengths are then those of the
 *     uncompressed bytes. Concatenated gzip members (`cat a.gz b.gz`, pigz) are read one
 *     after the other, as gzip -d does; anything else after a member, a bad header or CRC,
 *     corrupt deflate data, or a file that ends inside a member is an error — never rows
 *     silently lost.
 * The compressed size is the file's size on disk; the uncompressed size is not known until
 * the file has been read, and nothing here asks for it.
 *
 * zstd (.zst) is not supported: Debian's libzstd-dev is not part of the build.
 *
 * Memory: a plain source holds nothing but its descriptor; a gzip source holds zlib's
 * inflate state (about 44 KiB) and a 256 KiB input buffer. A source is not thread-safe;
 * distinct sources are.
 */
#ifndef PRECAST_MAPPER_SOURCE_H
#define PRECAST_MAPPER_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

typedef struct source source;

/* How a file's bytes are stored, by its name. */
typedef enum source_codec {
    SOURCE_CODEC_PLAIN = 0,
    SOURCE_CODEC_GZIP = 1 /* name ends in ".gz", case-insensitively */
} source_codec;

/* The codec of path, by its name alone (the file is not opened). */
source_codec source_codec_of(const char *path);

/* Opens path for reading from byte `start` of its (uncompressed) contents.
 * REQUIRES: start >= 0, and start == 0 for a compressed file.
 * A plain file that is shorter than start opens fine and reads as empty.
 * Errors: cannot open -> PC_ERR_NOINPUT naming the path; seek error -> PC_ERR_IO; start > 0
 * on a compressed file -> PC_ERR_INTERNAL (a caller's bug); out of memory ->
 * PC_ERR_INTERNAL. On failure *out is NULL and nothing is left open. */
pc_status source_open(const char *path, int64_t start, source **out, char *err, size_t errlen);

/* Reads up to n bytes (n >= 1) into buf: *got = bytes read, 0 only at the end of the file.
 * Errors (the file named by the caller, who knows where it was — file and line):
 * read error -> PC_ERR_IO with `why` = strerror; bad gzip data -> PC_ERR_IO with `why`
 * saying what is wrong and after how many uncompressed bytes. *got is then 0 and the source
 * is unusable: later calls fail again. Bytes inflated before the damage was found are
 * returned first (PC_OK), the error with the next call; corrupt deflate data may inflate to
 * garbage before zlib notices (at the latest at the member's CRC), so a caller must treat
 * an error as fatal for everything read from the file. */
pc_status source_read(source *s, void *buf, size_t n, size_t *got, char *why, size_t whylen);

/* True if the source inflates a compressed file (its one segment is the whole file). */
bool source_compressed(const source *s);

/* Closes the file and frees everything; NULL is fine. */
void source_close(source *s);

#endif
