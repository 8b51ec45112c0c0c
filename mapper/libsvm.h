/*
 * libsvm.h — streaming reader of LIBSVM / svmlight sparse rows, one segment at a time.
 *
 * Format: one row per line, `ID idx:val idx:val ...`.
 *   - ID is the first whitespace-separated field of the line: any bytes but whitespace and
 *     '#' (it becomes the table key). Leading whitespace before it is skipped.
 *   - each pair is an integer index, ':', and a value parsed by parse_float (numparse.h);
 *     indices must be strictly ascending. With one_based, index i is returned as i - 1.
 *   - whitespace is ' ', '\t', '\r', '\v', '\f'; lines end with "\n" (so "\r\n" works).
 *   - '#' starts a comment to the end of the line, wherever it is (svmlight's rule).
 *   - lines that hold nothing but whitespace and a comment are skipped; a line with an ID
 *     and no pair is a valid row with nnz = 0. No header. A UTF-8 byte-order mark at the
 *     very start of a file is not part of the first ID.
 * Unlike svmlight's files there is no label (the first field is the ID) and no "qid:".
 *
 * Record boundaries: a record is a line; it belongs to the segment (split.h) that holds its
 * first byte. '"' is an ordinary byte here, so seg->in_quotes_at_start is ignored, and a
 * reader that starts mid-file cuts the file at the same '\n's as one that starts at byte 0:
 * with any number of parts, every line — good or malformed — is read exactly once. Line
 * numbers are physical (1-based, counting every '\n'), from seg->line_at_start.
 *
 * Bytes come through source.h: a plain file is read from the segment's start, a ".gz" file
 * is inflated whole (it is always one segment).
 *
 * Memory: one read buffer (1 MiB by default) that grows only to hold a single line up to
 * the maximum record size (16 MiB by default); a longer line is an error, skipped without
 * buffering. The index and value arrays grow with the longest row read (bounded by the
 * maximum record size). A reader is not thread-safe; distinct readers are.
 */
#ifndef PRECAST_MAPPER_LIBSVM_H
#define PRECAST_MAPPER_LIBSVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "mapper/split.h"

typedef struct libsvm_reader libsvm_reader;

typedef struct libsvm_options {
    bool one_based;    /* indices in the file start at 1 (svmlight's usual); else at 0 */
    int64_t width;     /* features the model takes: an index >= width (after conversion to
                          0-based) is an error. REQUIRES 1 <= width <= 2^31. */
    size_t max_record; /* longest line accepted, terminator included; 0 = default
                          LIBSVM_DEFAULT_MAX_RECORD */
    size_t buffer_size; /* initial read buffer; 0 = default LIBSVM_DEFAULT_BUFFER (tests use
                           tiny ones so that lines straddle refills) */
} libsvm_options;

#define LIBSVM_DEFAULT_BUFFER ((size_t)1 << 20)
#define LIBSVM_DEFAULT_MAX_RECORD ((size_t)16 << 20)

typedef struct libsvm_record {
    const char *id;      /* the row's ID, NUL-terminated, owned by the reader */
    size_t id_len;
    int64_t nnz;         /* pairs in the row */
    const int32_t *idx;  /* nnz 0-based indices, strictly ascending, each < width */
    const float *vals;   /* nnz finite values, vals[k] belongs to idx[k] */
    int64_t line;        /* physical line of the row */
    int64_t offset;      /* byte offset in the file where the line starts */
    const char *raw;     /* the line's raw bytes without "\n" or "\r\n" (for rejects files) */
    size_t raw_len;
} libsvm_record;
/* Every pointer in a record is owned by the reader and valid until the next call to
 * libsvm_reader_next or libsvm_reader_close on that reader. */

/* Opens a reader for one segment of path. REQUIRES: seg->line_at_start filled by
 * split_resolve (not used when seg->start == 0); opts != NULL. The reader returns the lines
 * whose first byte lies in [seg->start, seg->end); the last one may run past seg->end.
 * seg and opts are copied.
 * A compressed file (a name ending in ".gz", source.h) is read whole: REQUIRES
 * seg->start == 0; seg->end (its compressed size) is not used, and row offsets are offsets
 * into the uncompressed bytes.
 * Errors: width outside [1, 2^31] -> PC_ERR_CONFIG; cannot open -> PC_ERR_NOINPUT; read
 * error -> PC_ERR_IO; seg->start > 0 on a compressed file, or out of memory ->
 * PC_ERR_INTERNAL. On failure *out is NULL and nothing is left open. Close with
 * libsvm_reader_close. */
pc_status libsvm_reader_open(const char *path, const split_segment *seg,
                             const libsvm_options *opts, libsvm_reader **out, char *err,
                             size_t errlen);

/* Next row of the segment: PC_OK with *eof = false and *rec filled, or PC_OK with
 * *eof = true at the end of the segment (and on every later call).
 * A malformed row returns PC_ERR_DATA with "PATH:LINE: reason" and is consumed, so the
 * caller may call again for the next row; then rec->line, rec->offset and rec->raw/raw_len
 * are set (raw NULL/0 for a line too long to buffer), rec->id/id_len are the row's ID if it
 * has been read (else NULL/0), and rec->nnz = 0. Reasons: a pair without ':'; an index
 * that is not an integer, negative, 0 when one_based, or >= width; a value parse_float
 * rejects; an index not above the one before it (duplicate or descending); a line longer
 * than the maximum record size. Messages quote the pair as written (1-based if the file is).
 * I/O error, or compressed data that is corrupt or ends too soon -> PC_ERR_IO with
 * "PATH:LINE: reason" (LINE: the line the data reached), out of memory -> PC_ERR_INTERNAL:
 * the reader is then unusable (later calls repeat the error's code). */
pc_status libsvm_reader_next(libsvm_reader *r, libsvm_record *rec, bool *eof, char *err,
                             size_t errlen);

/* Closes the file and frees everything, including the last record. NULL is fine. */
void libsvm_reader_close(libsvm_reader *r);

#endif
