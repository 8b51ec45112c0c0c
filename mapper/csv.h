/*
 * csv.h — streaming reader of CSV files (RFC 4180 with a header row), one segment at a time.
 *
 * Format: fields separated by ',', optionally enclosed in '"', where '""' inside a quoted
 * field stands for one '"'. Records end with "\n" or "\r\n"; newlines (and CRs) may appear
 * inside quoted fields. No trimming of spaces. The first record of a file is its header.
 * A UTF-8 byte-order mark before the header is dropped.
 *
 * Record boundaries: a record ends at the first '\n' where the number of '"' bytes since the
 * record's start is even, and at end of file. This rule holds for malformed records too, so
 * a reader that starts mid-file (split.h gives it the quote parity there) cuts the file at
 * exactly the same places as one that starts at byte 0: with any number of parts, every
 * record — good or malformed — is read once. Lines that are empty (or only "\r") are not
 * records and are skipped silently.
 *
 * Line numbers are physical (1-based, counting every '\n', those inside quoted fields too).
 *
 * Bytes come through source.h: a plain file is read from the segment's start, a ".gz" file
 * is inflated whole (it is always one segment).
 *
 * Memory: one buffer (1 MiB by default) that grows only to hold a single record up to the
 * maximum record size (16 MiB by default); a longer record is an error, skipped without
 * buffering. A reader is not thread-safe; distinct readers are.
 */
#ifndef PRECAST_MAPPER_CSV_H
#define PRECAST_MAPPER_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "mapper/split.h"

typedef struct csv_reader csv_reader;

typedef struct csv_record {
    int64_t nfields;
    char **fields;     /* unescaped, NUL-terminated, owned by the reader, valid until next call */
    size_t *lens;      /* lens[i] = length of fields[i] (fields may hold NUL bytes) */
    int64_t line;      /* physical line where the record starts */
    int64_t offset;    /* byte offset in the file where it starts */
    const char *raw;   /* the record's raw bytes, without the terminator (for rejects files) */
    size_t raw_len;
    const float *values; /* with csv_reader_set_float_columns: values[c] = field c parsed by
                            parse_float, for every float column c; NULL when the record was
                            not parsed that way (see there). Owned by the reader, valid until
                            the next call */
} csv_record;

/* Buffer sizes; csv_reader_open uses the defaults. */
typedef struct csv_reader_options {
    size_t buffer_size; /* initial read buffer; default CSV_DEFAULT_BUFFER (0 = default) */
    size_t max_record;  /* longest record accepted, terminator included; default
                           CSV_DEFAULT_MAX_RECORD (0 = default) */
} csv_reader_options;

#define CSV_DEFAULT_BUFFER ((size_t)1 << 20)
#define CSV_DEFAULT_MAX_RECORD ((size_t)16 << 20)

/* Opens a reader for one segment of path. REQUIRES: seg->in_quotes_at_start and
 * seg->line_at_start filled by split_resolve (for seg->start == 0 they are not used).
 * The reader returns the records whose first byte lies in [seg->start, seg->end); the last
 * one may run past seg->end. For start == 0 the header record is skipped. seg is copied.
 * A compressed file (a name ending in ".gz", source.h) is read whole: REQUIRES
 * seg->start == 0; seg->end (its compressed size) is not used, and record offsets are
 * offsets into the uncompressed bytes.
 * Errors: cannot open -> PC_ERR_NOINPUT; read error -> PC_ERR_IO; seg->start > 0 on a
 * compressed file, or out of memory -> PC_ERR_INTERNAL. On failure *out is NULL.
 * Close with csv_reader_close. */
pc_status csv_reader_open(const char *path, const split_segment *seg, csv_reader **out,
                          char *err, size_t errlen);

/* As csv_reader_open with explicit buffer sizes (opts may be NULL: the defaults). */
pc_status csv_reader_open_opts(const char *path, const split_segment *seg,
                               const csv_reader_options *opts, csv_reader **out, char *err,
                               size_t errlen);

/* Next record of the segment: PC_OK with *eof = false and *rec filled, or PC_OK with
 * *eof = true at the end of the segment (and on every later call).
 * A malformed record (unterminated quote, a quote inside an unquoted field, text after a
 * closing quote, record longer than the maximum) returns PC_ERR_DATA with
 * "PATH:LINE: reason" and is consumed, so the caller may call again for the next record;
 * then rec->line, rec->offset are set, rec->nfields = 0, and rec->raw/raw_len hold the raw
 * bytes (NULL/0 for a record too long to buffer).
 * I/O error, or compressed data that is corrupt or ends too soon -> PC_ERR_IO with
 * "PATH:LINE: reason" (LINE: the line the data reached), out of memory -> PC_ERR_INTERNAL:
 * the reader is then unusable (later calls repeat the error's code). */
pc_status csv_reader_next(csv_reader *r, csv_record *rec, bool *eof, char *err, size_t errlen);

/* Asks csv_reader_next to parse the float columns of each record as it splits it: one pass
 * over the bytes finds the field ends and reads the digits (numparse.h's
 * parse_float_fields), much faster than splitting first and parsing each field after.
 * is_float[c] marks column c (ncols entries, copied). From the next record on, rec->values
 * is set when the record has exactly ncols fields, no '"', and every float column parses;
 * values[c] is then what parse_float gives for field c (other entries unspecified). Any
 * other record has values = NULL: the caller parses its fields itself, and so sees the same
 * errors as without this call. Fields, lens and everything else are filled as always.
 * Errors: out of memory -> PC_ERR_INTERNAL, the reader unchanged. */
pc_status csv_reader_set_float_columns(csv_reader *r, const bool *is_float, int64_t ncols,
                                       char *err, size_t errlen);

/* Closes the file and frees everything, including the last record's fields. NULL is fine. */
void csv_reader_close(csv_reader *r);

typedef struct csv_header {
    int64_t ncols;
    char **names; /* ncols NUL-terminated names, owned by the header */
} csv_header;

/* Reads the header (first record) of a file into *out (free with csv_header_free); a
 * compressed file is inflated as far as its first record.
 * An empty file gives ncols = 0 and PC_OK; a header-only file is fine.
 * Errors: cannot open -> PC_ERR_NOINPUT; empty first line while the file is not empty, or a
 * malformed header -> PC_ERR_DATA "PATH:LINE: reason"; read error -> PC_ERR_IO; out of
 * memory -> PC_ERR_INTERNAL. On failure *out is {0, NULL}. */
pc_status csv_read_header(const char *path, csv_header *out, char *err, size_t errlen);

/* Frees the names and zeroes *h; NULL or a zeroed header is fine. */
void csv_header_free(csv_header *h);

/* Column index of the first column called `name` in h, or -1. */
int64_t csv_header_find(const csv_header *h, const char *name);

#endif
