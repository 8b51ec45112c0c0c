#include "reducer/agree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pc_status mpi_agree(pc_status mine, MPI_Comm comm, char *err, size_t errlen)
{
    int rank, nranks, local = (int)mine, worst = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm);
    if (worst == PC_OK) return PC_OK;
    /* The lowest rank that failed with the worst status speaks for all. An error every rank
     * hit (a bad job file, a missing model) is the job's, not one rank's: no rank prefix. */
    int candidate = local == worst ? rank : nranks, speaker = nranks;
    int failing = local == worst, nfailing = 0;
    MPI_Allreduce(&candidate, &speaker, 1, MPI_INT, MPI_MIN, comm);
    MPI_Allreduce(&failing, &nfailing, 1, MPI_INT, MPI_SUM, comm);
    char *msg = calloc(1, PC_ERRLEN);
    if (msg == NULL) { /* cannot carry the message; every rank still agrees on the status */
        MPI_Barrier(comm);
        return (pc_status)worst;
    }
    if (rank == speaker) {
        if (nfailing < nranks) {
            char host[MPI_MAX_PROCESSOR_NAME] = "?";
            int hlen;
            MPI_Get_processor_name(host, &hlen);
            snprintf(msg, PC_ERRLEN, "rank %d on %s: %s", rank, host, err);
        } else {
            snprintf(msg, PC_ERRLEN, "%s", err);
        }
    }
    MPI_Bcast(msg, PC_ERRLEN, MPI_CHAR, speaker, comm);
    snprintf(err, errlen, "%s", msg);
    free(msg);
    return (pc_status)worst;
}
