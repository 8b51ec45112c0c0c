/*
 * work.h — hands out units of work (input segments) to ranks as they become free.
 *
 * A shared counter on rank 0, read and advanced with MPI one-sided fetch-and-add (passive
 * target), so no rank serves as a busy coordinator and a slow rank simply takes fewer
 * segments: the job waits on it for about one segment at most.
 *
 * MPI: work_queue_open and work_queue_close are collective; work_queue_next and
 * work_queue_cancel are not (any rank, any time in between).
 */
#ifndef PRECAST_WORK_H
#define PRECAST_WORK_H

#include <mpi.h>
#include <stdint.h>

#include "kernels/status.h"
#include "mapper/split.h"

typedef struct work_queue work_queue;

/* Collective. A queue of units [0, count). On failure *out is NULL on every rank. */
pc_status work_queue_open(MPI_Comm comm, int64_t count, work_queue **out, char *err, size_t errlen);
/* The next unit for this rank, or a value >= count when none is left (or the queue was
 * cancelled). */
int64_t work_queue_next(work_queue *q);
/* Makes every later work_queue_next on every rank return "none left": a failing rank calls it
 * so that the others stop taking work it would be thrown away. */
void work_queue_cancel(work_queue *q);
/* Adds a finished unit's rows and bytes to the job-wide progress counters on rank 0 (one-sided
 * accumulate: no rank waits on another). */
void work_queue_report(work_queue *q, int64_t rows, int64_t bytes);
/* Rank 0: the job-wide rows and bytes reported so far. */
void work_queue_progress(work_queue *q, int64_t *rows, int64_t *bytes);
/* Collective. Accepts NULL on every rank. */
void work_queue_close(work_queue *q);

/* Collective (comm may be MPI_COMM_NULL: one process alone).  The input segments of
 * patterns[0, n) planned alike on every rank: each rank plans on its own, the ranks check that
 * they saw the same files and sizes (on a shared file system a file appearing or growing
 * meanwhile would lose or repeat rows), each counts the quotes and newlines of its own part
 * (opts->nparts parts; part r is rank r's), and the sums tell every segment where its first
 * record starts.  On failure *out is NULL on every rank and err names the cause. */
pc_status work_plan_splits(MPI_Comm comm, const char *const *patterns, int n, const split_options *opts,
                           split_plan **out, char *err, size_t errlen);

#endif
