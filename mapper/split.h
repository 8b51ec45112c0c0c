/*
 * split.h — cutting the input files into segments (byte ranges of bounded size, the units
 * of work that ranks take as they become free), such that every record is read exactly once
 * with its right line number, whatever the split size and whatever the number of ranks.
 *
 * The concatenation of all input files (sorted by path) is cut in two ways at once:
 *   - into `nparts` contiguous *parts* of nearly equal size, one per rank, for the counting
 *     pass below: part k covers global bytes [k*T/nparts, (k+1)*T/nparts) of the total T;
 *   - within each file, at every multiple of `split_bytes` (file offsets 0, S, 2S, ...).
 * A segment is a maximal byte range (file, start, end) not crossed by either kind of cut nor
 * by a file boundary: it never spans two files and holds at most split_bytes bytes. Part k's
 * segments are a contiguous run of the segment list. A record belongs to the segment that
 * holds its first byte.
 *
 * Compressed files (a name ending in ".gz"; source.h) cannot be entered in the middle: each
 * is one segment, [0, compressed size), never cut, in the part where the file begins. Its
 * size in the concatenation is the compressed size (the uncompressed one is not known until
 * it is read), and counting it reads nothing (below).
 *
 * Where a record starts depends on the quote parity from the start of its file, which no
 * rank can know from its own bytes alone. So:
 *   1. every rank builds the same plan (same patterns, same options);
 *   2. every rank calls split_count on its own part's segments (one pass over its bytes;
 *      nothing for compressed files);
 *   3. the driver sums quotes/newlines of all segments across ranks (each rank contributes
 *      its own segments, zeros elsewhere: an MPI_Allreduce of two int64 arrays);
 *   4. every rank copies the sums back into its plan and calls split_resolve, which fills
 *      each segment's quote parity and physical line number at its start;
 *   5. then any rank may read any segment, in any order: csv_reader_open (csv.h) or
 *      libsvm_reader_open (libsvm.h) on it returns its records. The segments are the units
 *      of work that the driver hands out as ranks become free.
 * Nothing here talks MPI.
 *
 * Ownership: the plan owns its file paths and segments; pointers returned by the accessors
 * stay valid until split_plan_free. A plan is not thread-safe; distinct plans are.
 */
#ifndef PRECAST_MAPPER_SPLIT_H
#define PRECAST_MAPPER_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

typedef struct split_segment {
    int32_t file;           /* index into the file list */
    int64_t start, end;     /* byte range [start, end) of that file; never empty. For a
                               compressed file [0, compressed size): the whole file */
    int64_t quotes;         /* filled by split_count: '"' bytes in [start,end) */
    int64_t newlines;       /* filled by split_count: '\n' bytes in [start,end) */
    int in_quotes_at_start; /* filled by split_resolve: quote parity before start (0/1) */
    int64_t line_at_start;  /* filled by split_resolve: 1 + newlines before start */
} split_segment;

/* Opaque: the files (path, size, codec), the segments, the index of each part's first
 * segment. */
typedef struct split_plan split_plan;

/* A reasonable split size for real jobs: large enough that opening a segment is cheap,
 * small enough that a slow rank holds the job back by little. */
#define SPLIT_DEFAULT_BYTES ((int64_t)64 << 20)
/* The floor of split_options.segments_per_part: below a few MiB, opening a segment and the
 * pairs' per-segment bookkeeping would start to show. */
#define SPLIT_MIN_BYTES ((int64_t)4 << 20)
/* What jobs ask for: ranks hand segments out as they become free, so a rank that runs slower
 * (a noisy neighbour, a slower core) finishes at most one segment after the others; 32 per
 * rank keeps that under about 3 % of the map phase.  Measured with make bench's 450 MB input
 * on 2 ranks: 64 MiB segments (4 a rank) ended the map phase at 1.50-1.52 s, 8 MiB ones at
 * 1.39-1.43 s, and cost nothing measurable on 1 rank (54 segments against 7). */
#define SPLIT_SEGMENTS_PER_PART 32

typedef struct split_options {
    int nparts;          /* counting parts, >= 1 (the driver uses the number of ranks) */
    int64_t split_bytes; /* longest segment of an uncompressed file, >= 0; 0 = no limit
                            (then a file is cut only where parts meet: one segment per file
                            per part). The default, {0}, is no limit; jobs use
                            SPLIT_DEFAULT_BYTES. Tests use tiny values, 1 byte up. */
    int segments_per_part; /* > 0: segments shorter than split_bytes (but not shorter than
                              SPLIT_MIN_BYTES) so that each part has about this many; the
                              plan's split_plan_split_bytes is then that length.  0 (the
                              default): split_bytes as given. */
    const int64_t *cuts; /* NULL (default): parts of nearly equal size; else the boundaries
                            between parts as global byte offsets into the concatenation:
                            cuts[0..nparts-2], non-decreasing, each within [0, total size].
                            Tests use it to put a boundary at every byte. Borrowed for the
                            call only. */
} split_options;

/* Expands the glob patterns (relative ones against base_dir if base_dir is not NULL; glob
 * characters inside base_dir are taken literally) into a sorted (strcmp on the path),
 * de-duplicated (same path, or same device and inode) list of regular files, stats them and
 * cuts them into segments and parts as described at the top. Empty files get no segment;
 * parts may be empty when there are fewer bytes than parts (or when a compressed file
 * spans a part's whole range).
 * Errors: a pattern matching no regular file -> PC_ERR_NOINPUT naming the pattern; a file
 * that cannot be stat'ed -> PC_ERR_NOINPUT; npatterns < 1 -> PC_ERR_NOINPUT; nparts < 1,
 * split_bytes < 0, or bad cuts -> PC_ERR_USAGE; out of memory -> PC_ERR_INTERNAL. On
 * failure *out is set to NULL. */
pc_status split_plan_create_opts(const char *const *patterns, int npatterns,
                                 const char *base_dir, const split_options *opts,
                                 split_plan **out, char *err, size_t errlen);

/* split_plan_create_opts with {nparts, split_bytes = 0 (no limit), cuts = NULL}: nparts
 * parts of nearly equal size, one segment per file per part (the plan before issue 4). */
pc_status split_plan_create(const char *const *patterns, int npatterns, const char *base_dir,
                            int nparts, split_plan **out, char *err, size_t errlen);

/* split_plan_create_opts with {nparts, split_bytes = 0 (no limit), cuts}: cuts == NULL
 * means the even split. */
pc_status split_plan_create_at(const char *const *patterns, int npatterns,
                               const char *base_dir, int nparts, const int64_t *cuts,
                               split_plan **out, char *err, size_t errlen);

/* Frees the plan; NULL is fine. */
void split_plan_free(split_plan *p);

int split_plan_file_count(const split_plan *p);
/* Path of file i (0 <= i < file_count), as matched by glob; owned by the plan. */
const char *split_plan_file_path(const split_plan *p, int i);
/* Size in bytes of file i on disk when the plan was made (compressed size for a .gz). */
int64_t split_plan_file_size(const split_plan *p, int i);
/* True if file i is compressed (source.h: by its name): it is one segment, read whole. */
bool split_plan_file_compressed(const split_plan *p, int i);
/* Sum of all file sizes (on disk). */
int64_t split_plan_total_size(const split_plan *p);
int split_plan_part_count(const split_plan *p);
/* The split size the plan was made with (0 = no limit). */
int64_t split_plan_split_bytes(const split_plan *p);

/* Number of segments over all parts. */
int64_t split_plan_segment_count(const split_plan *p);
/* The segments, ordered by part then file position (which is also global byte order, so a
 * file's segments are consecutive and tile it from byte 0);
 * owned by the plan, which callers fill through this pointer (counts, then resolve). */
split_segment *split_plan_segments(split_plan *p);
/* Index of part's first segment (0 <= part <= nparts); part_first(nparts) = segment_count,
 * so part k's segments are [part_first(k), part_first(k+1)). */
int64_t split_plan_part_first(const split_plan *p, int part);

/* Reads bytes [seg->start, seg->end) of seg's file and fills seg->quotes and seg->newlines.
 * A compressed file's segment is the whole file, so nothing before it needs counting: it
 * gets 0 and 0 without reading (and split_resolve then gives it parity 0, line 1).
 * Errors: cannot open -> PC_ERR_NOINPUT; read error, or the file is shorter than the
 * segment (it changed since the plan) -> PC_ERR_IO; on failure seg is unchanged. */
pc_status split_count(const split_plan *p, split_segment *seg, char *err, size_t errlen);

/* REQUIRES: every segment's quotes/newlines filled (summed from all ranks).
 * Fills in_quotes_at_start and line_at_start of every segment. Cannot fail. */
void split_resolve(split_plan *p);

#endif
