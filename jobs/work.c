#include "jobs/work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reducer/agree.h"
#include "storage/table.h"

/* Rank 0's window: the next unit, then the rows and bytes done so far. */
enum { SLOT_NEXT = 0, SLOT_ROWS = 1, SLOT_BYTES = 2, SLOTS = 3 };

struct work_queue {
    MPI_Win win;
    int64_t *counter;  /* rank 0's window memory (SLOTS values); NULL elsewhere */
    int64_t count;
};

/* Adds delta to the shared counter; returns its value before. */
static int64_t fetch_add(work_queue *q, int64_t delta)
{
    int64_t old = 0;
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
    MPI_Fetch_and_op(&delta, &old, MPI_INT64_T, 0, SLOT_NEXT, MPI_SUM, q->win);
    MPI_Win_unlock(0, q->win);
    return old;
}

pc_status work_queue_open(MPI_Comm comm, int64_t count, work_queue **out, char *err, size_t errlen)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    *out = NULL;
    work_queue *q = calloc(1, sizeof *q);
    int ok = q != NULL, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
    if (!all) {
        free(q);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the work queue");
    }
    q->count = count;
    MPI_Aint size = rank == 0 ? (MPI_Aint)(SLOTS * sizeof(int64_t)) : 0;
    MPI_Win_allocate(size, sizeof(int64_t), MPI_INFO_NULL, comm, &q->counter, &q->win);
    if (rank == 0) {
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win);
        for (int i = 0; i < SLOTS; i++) q->counter[i] = 0;
        MPI_Win_unlock(0, q->win);
    }
    MPI_Barrier(comm); /* the counter is 0 before anyone takes work */
    *out = q;
    return PC_OK;
}

int64_t work_queue_next(work_queue *q)
{
    return fetch_add(q, 1);
}

void work_queue_cancel(work_queue *q)
{
    /* Push the counter past the end for good: later fetches all see >= count. */
    fetch_add(q, q->count + 1);
}

void work_queue_report(work_queue *q, int64_t rows, int64_t bytes)
{
    int64_t v[2] = {rows, bytes};
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
    MPI_Accumulate(v, 2, MPI_INT64_T, 0, SLOT_ROWS, 2, MPI_INT64_T, MPI_SUM, q->win);
    MPI_Win_unlock(0, q->win);
}

void work_queue_progress(work_queue *q, int64_t *rows, int64_t *bytes)
{
    int64_t v[2] = {0, 0};
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
    MPI_Get(v, 2, MPI_INT64_T, 0, SLOT_ROWS, 2, MPI_INT64_T, q->win);
    MPI_Win_unlock(0, q->win);
    *rows = v[0];
    *bytes = v[1];
}

void work_queue_close(work_queue *q)
{
    if (q == NULL) return;
    MPI_Win_free(&q->win);
    free(q);
}

/* ---- the plan of input segments, agreed by all ranks ---- */

/* A hash of the planned file names and sizes, to check that all ranks planned alike. */
static uint64_t plan_fingerprint(const split_plan *p)
{
    uint64_t h = 0;
    for (int i = 0; i < split_plan_file_count(p); i++) {
        const char *path = split_plan_file_path(p, i);
        char size[24];
        snprintf(size, sizeof size, "%lld", (long long)split_plan_file_size(p, i));
        h += table_pair_hash(path, strlen(path), size, strlen(size)) * (uint64_t)(2 * i + 1);
    }
    return h;
}

/* mpi_agree, or the status as it is when alone. */
static pc_status agree(pc_status s, MPI_Comm comm, char *err, size_t errlen)
{
    return comm == MPI_COMM_NULL ? s : mpi_agree(s, comm, err, errlen);
}

/* Counts the quotes and newlines of this rank's segments, sums them over the ranks and
 * resolves every segment's first record. */
static pc_status resolve_starts(MPI_Comm comm, int rank, split_plan *plan, char *err, size_t errlen)
{
    int64_t nsegs = split_plan_segment_count(plan);
    split_segment *segs = split_plan_segments(plan);
    int64_t *counts = calloc((size_t)(2 * nsegs + 1), sizeof(int64_t));
    pc_status s = counts ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    int64_t first = split_plan_part_first(plan, rank), end = split_plan_part_first(plan, rank + 1);
    for (int64_t i = first; s == PC_OK && i < end; i++) {
        s = split_count(plan, &segs[i], err, errlen);
        counts[2 * i] = segs[i].quotes;
        counts[2 * i + 1] = segs[i].newlines;
    }
    if ((s = agree(s, comm, err, errlen)) == PC_OK) {
        if (comm != MPI_COMM_NULL)
            MPI_Allreduce(MPI_IN_PLACE, counts, (int)(2 * nsegs), MPI_INT64_T, MPI_SUM, comm);
        for (int64_t i = 0; i < nsegs; i++) {
            segs[i].quotes = counts[2 * i];
            segs[i].newlines = counts[2 * i + 1];
        }
        split_resolve(plan);
    }
    free(counts);
    return s;
}

pc_status work_plan_splits(MPI_Comm comm, const char *const *patterns, int n, const split_options *opts,
                           split_plan **out, char *err, size_t errlen)
{
    int rank = 0;
    if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
    pc_status s = split_plan_create_opts(patterns, n, NULL, opts, out, err, errlen);
    if ((s = agree(s, comm, err, errlen)) != PC_OK) {
        split_plan_free(*out);
        *out = NULL;
        return s;
    }
    if (comm != MPI_COMM_NULL) {
        uint64_t mine = plan_fingerprint(*out), lo = 0, hi = 0;
        MPI_Allreduce(&mine, &lo, 1, MPI_UINT64_T, MPI_MIN, comm);
        MPI_Allreduce(&mine, &hi, 1, MPI_UINT64_T, MPI_MAX, comm);
        if (lo != hi)
            s = pc_err(err, errlen, PC_ERR_IO, "ranks see different input files or sizes "
                                               "(are the inputs still being written?)");
    }
    if (s == PC_OK) s = resolve_starts(comm, rank, *out, err, errlen);
    if (s != PC_OK) {
        split_plan_free(*out);
        *out = NULL;
    }
    return s;
}
