#include "jobs/work.h"

#include <stdlib.h>

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
