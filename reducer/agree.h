/*
 * agree.h — ranks agree on success before anything is published.
 *
 * Collective: all ranks of comm call mpi_agree() at the same point with their own status.
 * Every rank returns the worst (largest) status, and every rank's err then holds the message
 * of the lowest-numbered rank that failed with that status, prefixed with that rank's number
 * and host when only some ranks failed ("rank 2 on node7: input.csv:17: ..."); an error all
 * ranks hit carries no prefix. So rank 0 can print the real cause, whichever rank hit it.
 */
#ifndef PRECAST_AGREE_H
#define PRECAST_AGREE_H

#include <mpi.h>

#include "kernels/status.h"

/* REQUIRES errlen >= 1 and err to hold this rank's message when mine != PC_OK. */
pc_status mpi_agree(pc_status mine, MPI_Comm comm, char *err, size_t errlen);

#endif
