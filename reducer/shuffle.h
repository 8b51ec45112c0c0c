/*
 * shuffle.h — sample sort over MPI in bounded memory: after it, rank r holds key range r.
 *
 * Every rank's pairs sit in a kv_spill (reducer/spill.h), which keeps a reservoir sample of
 * its keys; splitters come from the gathered samples, weighted by each rank's pair count;
 * pairs travel to their ranks in rounds of bounded size and land in each rank's receiving
 * kv_spill, whose k-way merge then yields the rank's key range in order. Equal keys always
 * land on one rank, so duplicates are found locally.
 *
 * MPI: shuffle_pick_splitters and shuffle_exchange are collective; all ranks of comm must
 * call them. A failure on one rank is agreed on by all (mpi_agree) so that no rank is left
 * waiting; every rank then returns the same status and the failing rank's message.
 */
#ifndef PRECAST_SHUFFLE_H
#define PRECAST_SHUFFLE_H

#include <mpi.h>

#include "reducer/kv.h"
#include "reducer/spill.h"

/* ------------------------------------------------------------------------------------------
 * The driver's sequence, all ranks:
 *   kv_spill_sweep(spill_dir, "precast-<job>"); MPI_Barrier                    stale runs
 *   kv_spill_create(spill_dir, "precast-<job>", local_budget, &local)          map into it
 *   shuffle_pick_splitters(local, comm, &splitters)                            collective
 *   kv_spill_create(spill_dir, same prefix, recv_budget, &received)
 *   shuffle_exchange(local, splitters, chunk_bytes, received, comm, &stats)    collective
 *   kv_spill_free(local)
 *   kv_merge_open(received) ... kv_merge_next() ... kv_merge_close()           this rank's
 *                                                  key range in key order, into the shard
 *   kv_spill_free(received)
 * Failures: every call above agrees (or, for the local ones, the driver agrees with mpi_agree)
 * before the next collective; free both stores on every path so no run file is left.
 * Duplicate ids: equal keys reach one rank and come out of the merge next to each other, but
 * in arrival order (which depends on the rounds), so a first/last policy must choose by
 * origin (file, line), not by position in the stream.
 *
 * Memory per rank, M = run.memory_mb: local_budget = 0.4 M, recv_budget = 0.4 M, chunk_bytes
 * = 0.1 M (the exchange holds a send and a receive buffer of chunk_bytes each: 0.2 M). The
 * budgets bound the in-memory tables (spill.h); every other buffer is a constant that does not
 * grow with the input: per store the reservoir (260 KiB), a merge's run readers
 * (KV_MERGE_FANIN x KV_RUN_BUFFER = 4 MiB) plus one writer and one scan reader (64 KiB each),
 * the splitters and the gathered samples (packed, then sorted in a buffer: about 3 x nranks x
 * KV_SPILL_SAMPLES x (key bytes, at most KV_SAMPLE_KEY_MAX, + 32), during
 * shuffle_pick_splitters only), and twice the largest pair. So
 *   peak RSS <= memory_mb + model + ~5 MiB + 2 x largest pair + nranks x 6144 x (key + 32) B
 * (with 16-byte ids: 5 MiB + 0.3 MiB per rank of the job).
 * ---------------------------------------------------------------------------------------- */

/* What shuffle_exchange() did on this rank. */
typedef struct shuffle_stats {
    int64_t rounds;          /* exchange rounds (the same on every rank) */
    int64_t pairs_sent;      /* pairs of `local` routed, to this rank included */
    int64_t bytes_sent;      /* packed bytes sent to other ranks */
    int64_t pairs_received;  /* pairs appended to `received`, from this rank included */
    int64_t bytes_received;  /* packed bytes received from other ranks */
} shuffle_stats;

/* Collective. Gathers every rank's reservoir sample of `local` (MPI_Allgatherv, with each
 * rank's pair count so that a rank's samples weigh count/samples) and picks the same nranks-1
 * splitters on every rank, at the quantiles i/nranks of the weighted sample: shards come out
 * balanced to a few percent whatever the key distribution (KV_SPILL_SAMPLES per rank; the
 * relative error is about 1/sqrt(KV_SPILL_SAMPLES)), except that equal keys (duplicates) stay
 * on one rank. *splitters is a new buffer (pair i = splitter i, keys only), freed with
 * kv_free(); NULL on failure, which every rank agrees on. */
pc_status shuffle_pick_splitters(const kv_spill *local, MPI_Comm comm, kv_buffer **splitters,
                                 char *err, size_t errlen);

/* The rank that receives a key: the number of splitters strictly smaller than it (binary
 * search). Equal keys share a rank. Not collective. */
int shuffle_destination(const kv_buffer *splitters, const void *key, size_t klen);

/* Collective. Streams every pair of `local` (a scan; local is not changed) to its destination
 * rank and appends the pairs this rank receives to `received` (which spills as it fills).
 * Rounds: each rank packs at most chunk_bytes / nranks bytes per destination (so at most
 * chunk_bytes in all, and each rank receives at most chunk_bytes), MPI_Alltoall of the counts,
 * MPI_Alltoallv of the bytes; pairs for this rank itself are appended directly, without MPI.
 * Rounds go on until no rank has anything left (MPI_Allreduce). No message exceeds
 * chunk_bytes / nranks; chunk_bytes above INT_MAX is taken as INT_MAX. REQUIRES the same
 * splitters and chunk_bytes on every rank, and local != received.
 * Failure, agreed by every rank (mpi_agree; no rank is left waiting): PC_ERR_DATA when a pair
 * is larger than chunk_bytes / nranks (raise memory_mb), PC_ERR_USAGE for a chunk too small
 * for the rank count, or whatever a scan of `local` or an append to `received` returned
 * (PC_ERR_IO, PC_ERR_CANTCREAT, ...); `received` then holds an unspecified part of the pairs
 * and should be freed. *stats (may be NULL) is filled in either case. */
pc_status shuffle_exchange(kv_spill *local, const kv_buffer *splitters, size_t chunk_bytes,
                           kv_spill *received, MPI_Comm comm, shuffle_stats *stats, char *err,
                           size_t errlen);

#endif
