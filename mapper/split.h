/*
 * split.h — cutting the input files into byte ranges, one part per rank, such that every
 * record is read by exactly one part whatever the number of parts.
 *
 * The concatenation of all input files (sorted by path) is cut into `nparts` contiguous byte
 * ranges of nearly equal size; part k covers global bytes [k*T/nparts, (k+1)*T/nparts) of
 * the total T. A part is a list of segments (file, start, end), one per file it touches.
 * A record belongs to the segment that holds its first byte.
 *
 * Where a record starts depends on the quote parity from the start of its file, which no
 * rank can know from its own bytes alone. So:
 *   1. every rank builds the same plan (split_plan_create: same patterns, same nparts);
 *   2. every rank calls split_count on its own part's segments (one pass over its bytes);
 *   3. the driver sums quotes/newlines of all segments across ranks (each rank contributes
 *      its own segments, zeros elsewhere: an MPI_Allreduce of two int64 arrays);
 *   4. every rank copies the sums back into its plan and calls split_resolve, which fills
 *      each segment's quote parity and physical line number at its start;
 *   5. csv_reader_open (csv.h) on each of the part's segments reads its records.
 * Nothing here talks MPI.
 *
 * Ownership: the plan owns its file paths and segments; pointers returned by the accessors
 * stay valid until split_plan_free. A plan is not thread-safe; distinct plans are.
 */
#ifndef PRECAST_MAPPER_SPLIT_H
#define PRECAST_MAPPER_SPLIT_H

#include <stdint.h>

#include "kernels/status.h"

typedef struct split_segment {
    int32_t file;           /* index into the file list */
    int64_t start, end;     /* byte range [start, end) of that file; never empty */
    int64_t quotes;         /* filled by split_count: '"' bytes in [start,end) */
    int64_t newlines;       /* filled by split_count: '\n' bytes in [start,end) */
    int in_quotes_at_start; /* filled by split_resolve: quote parity before start (0/1) */
    int64_t line_at_start;  /* filled by split_resolve: 1 + newlines before start */
} split_segment;

/* Opaque: the files (path, size), the segments, the index of each part's first segment. */
typedef struct split_plan split_plan;

/* Expands the glob patterns (relative ones against base_dir if base_dir is not NULL; glob
 * characters inside base_dir are taken literally) into a sorted (strcmp on the path),
 * de-duplicated (same path, or same device and inode) list of regular files, stats them and
 * cuts their concatenation into nparts parts of nearly equal size. Empty files get no
 * segment; parts may be empty when there are fewer bytes than parts.
 * Errors: a pattern matching no regular file -> PC_ERR_NOINPUT naming the pattern; a file
 * that cannot be stat'ed -> PC_ERR_NOINPUT; npatterns < 1 -> PC_ERR_NOINPUT; nparts < 1 ->
 * PC_ERR_USAGE; out of memory -> PC_ERR_INTERNAL. On failure *out is set to NULL. */
pc_status split_plan_create(const char *const *patterns, int npatterns, const char *base_dir,
                            int nparts, split_plan **out, char *err, size_t errlen);

/* As split_plan_create, but the boundaries between parts are the given global byte offsets
 * into the concatenation of the files: cuts[0..nparts-2], non-decreasing, each within
 * [0, total size] (else PC_ERR_USAGE). cuts == NULL means the even split. Tests use it to
 * put a boundary at every byte. */
pc_status split_plan_create_at(const char *const *patterns, int npatterns,
                               const char *base_dir, int nparts, const int64_t *cuts,
                               split_plan **out, char *err, size_t errlen);

/* Frees the plan; NULL is fine. */
void split_plan_free(split_plan *p);

int split_plan_file_count(const split_plan *p);
/* Path of file i (0 <= i < file_count), as matched by glob; owned by the plan. */
const char *split_plan_file_path(const split_plan *p, int i);
/* Size in bytes of file i when the plan was made. */
int64_t split_plan_file_size(const split_plan *p, int i);
/* Sum of all file sizes. */
int64_t split_plan_total_size(const split_plan *p);
int split_plan_part_count(const split_plan *p);

/* Number of segments over all parts. */
int64_t split_plan_segment_count(const split_plan *p);
/* The segments, ordered by part then file position (which is also global byte order);
 * owned by the plan, which callers fill through this pointer (counts, then resolve). */
split_segment *split_plan_segments(split_plan *p);
/* Index of part's first segment (0 <= part <= nparts); part_first(nparts) = segment_count,
 * so part k's segments are [part_first(k), part_first(k+1)). */
int64_t split_plan_part_first(const split_plan *p, int part);

/* Reads bytes [seg->start, seg->end) of seg's file and fills seg->quotes and seg->newlines.
 * Errors: cannot open -> PC_ERR_NOINPUT; read error, or the file is shorter than the
 * segment (it changed since the plan) -> PC_ERR_IO; on failure seg is unchanged. */
pc_status split_count(const split_plan *p, split_segment *seg, char *err, size_t errlen);

/* REQUIRES: every segment's quotes/newlines filled (summed from all ranks).
 * Fills in_quotes_at_start and line_at_start of every segment. Cannot fail. */
void split_resolve(split_plan *p);

#endif
