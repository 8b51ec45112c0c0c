/*
 * shuffle.h — sample sort over MPI: after it, rank r holds key range r, sorted.
 *
 * Steps (all collective over `comm`): sort the local pairs; each rank draws regular samples of
 * its sorted keys; MPI_Allgatherv of the samples; every rank sorts them and picks the same
 * nranks-1 splitters; the local pairs are cut at the splitters (equal keys always land on the
 * same rank, so duplicates stay detectable locally); MPI_Alltoallv ships each range to its
 * rank; each rank merges the nranks sorted runs it received with a k-way merge.
 *
 * Ownership: shuffle_sample_sort() consumes nothing: `local` is left sorted, and *out is a new
 * buffer the caller frees with kv_free().
 *
 * MPI: every function here is collective; all ranks of comm must call it. A failure on one
 * rank is agreed on by all (mpi_agree) so that no rank is left waiting; every rank then
 * returns the same status and the failing rank's message.
 */
#ifndef PRECAST_SHUFFLE_H
#define PRECAST_SHUFFLE_H

#include <mpi.h>

#include "reducer/kv.h"

/* Samples drawn per rank and per destination rank: more samples balance shards better. */
#define SHUFFLE_OVERSAMPLE 64

/* Collective. Sorts `local`, redistributes all pairs by key range and returns this rank's
 * range in *out, sorted. Keys on rank r are all smaller than keys on rank r+1. */
pc_status shuffle_sample_sort(kv_buffer *local, MPI_Comm comm, kv_buffer **out, char *err,
                              size_t errlen);

/* k-way merge of sorted runs into *out (a new buffer). runs[i] must be sorted. Exposed for
 * tests; not collective. */
pc_status shuffle_merge_runs(kv_buffer *const *runs, int nruns, kv_buffer **out, char *err,
                             size_t errlen);

#endif
