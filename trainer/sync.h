/*
 * sync.h — data-parallel gradient exchange: after a step's backward passes, every rank's net
 * holds the same summed gradients (and the same batch-norm running statistics), so the same
 * optimiser update keeps every rank's weights identical.
 *
 * Two ways, both collective over the communicator given at creation:
 *   - grad_sync_allreduce (the default): each rank computed the mean-loss gradient of its own
 *     rows; the gradients are scaled by the rank's share of the step's rows and summed —
 *     dense parameters with one MPI_Allreduce of a packed buffer, sparse ones (embedding
 *     tables, a sampled head) by gathering only the touched rows (MPI_Allgatherv) and adding
 *     them in rank order on every rank. Batch-norm running statistics are averaged the same
 *     way (weighted by rows).
 *   - chunks (train.deterministic): the global batch is cut into fixed micro-batches, chunk k
 *     computed by rank k mod nranks; each chunk's scaled gradients and running statistics are
 *     packed (grad_sync_chunk_store), all packets are gathered, and every rank adds them in
 *     chunk order. The result is a function of the chunks alone, so the model's bytes do not
 *     depend on the number of ranks.
 * Sparse rows reached by another rank's gradient are registered with net_param_touch so that
 * the optimiser sees them and the next backward clears them.
 *
 * Ownership: a grad_sync owns its packing buffers (sized at creation for the dense part; the
 * sparse part grows); it borrows nothing between calls.
 */
#ifndef PRECAST_SYNC_H
#define PRECAST_SYNC_H

#include <mpi.h>
#include <stdbool.h>

#include "kernels/status.h"
#include "trainer/net.h"

typedef struct grad_sync grad_sync;

pc_status grad_sync_create(net *n, MPI_Comm comm, grad_sync **out, char *err, size_t errlen);
void grad_sync_free(grad_sync *g); /* accepts NULL */

/* Sums every rank's gradients, each scaled by its weight (its rows / the step's rows; 0 for
 * a rank that ran no backward this step: its gradients are then taken as zero whatever its
 * buffers hold). extra[0..nextra) (nextra <= GRAD_SYNC_MAX_EXTRA) are summed across ranks in
 * the same MPI_Allreduce, so that a step's loss and failure flags cost no collective of their
 * own. Collective. Out of memory -> PC_ERR_INTERNAL on every rank. */
#define GRAD_SYNC_MAX_EXTRA 8
pc_status grad_sync_allreduce(grad_sync *g, net *n, double weight, float *extra, int nextra, char *err,
                              size_t errlen);

/* Deterministic steps: step_begin saves the running statistics; chunk_begin restores them
 * before each chunk's forward pass (so each chunk starts from the step's statistics);
 * chunk_store packs the chunk's gradients scaled by weight (its rows / the batch's) and its
 * running statistics (scaled likewise); chunks_reduce gathers every rank's packets and adds
 * them in chunk order into every rank's net. Collective: chunks_reduce. */
void grad_sync_step_begin(grad_sync *g, net *n);
void grad_sync_chunk_begin(grad_sync *g, net *n);
pc_status grad_sync_chunk_store(grad_sync *g, net *n, int64_t chunk, double weight, char *err, size_t errlen);
pc_status grad_sync_chunks_reduce(grad_sync *g, net *n, int64_t nchunks, char *err, size_t errlen);

/* Makes sure every rank holds rank 0's parameter values: compares a checksum (two small
 * allreduces) and broadcasts rank 0's values when they differ. Returns true if they had
 * differed (a bug worth reporting). Collective. */
bool grad_sync_check_identical(grad_sync *g, net *n);

#endif
