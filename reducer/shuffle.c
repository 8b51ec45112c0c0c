#include "reducer/shuffle.h"

#include "reducer/agree.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int shuffle_destination(const kv_buffer *splitters, const void *key, size_t klen)
{
    int64_t lo = 0, hi = kv_count(splitters);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        size_t slen;
        const char *sk = kv_key(splitters, mid, &slen);
        if (kv_key_compare(sk, slen, key, klen) < 0) lo = mid + 1;
        else hi = mid;
    }
    return (int)lo;
}

pc_status shuffle_pick_splitters(const kv_spill *local, MPI_Comm comm, kv_buffer **splitters,
                                 char *err, size_t errlen)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    *splitters = NULL;
    kv_buffer *mine = kv_create(), *all = NULL;
    char *sendbuf = NULL, *recvbuf = NULL;
    int *counts = calloc((size_t)nranks, sizeof(int)), *displs = calloc((size_t)nranks, sizeof(int));
    int64_t *info = calloc(2 * (size_t)nranks, sizeof(int64_t)); /* per rank: pairs, samples */
    pc_status s = (mine && counts && displs && info) ? PC_OK
                                                     : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    /* origin.file carries the sampling rank, so each sample can be weighed after the sort. */
    for (int64_t i = 0; s == PC_OK && i < kv_spill_sample_count(local); i++) {
        size_t klen;
        const char *key = kv_spill_sample(local, i, &klen);
        s = kv_append(mine, key, klen, NULL, 0, (kv_origin){rank, 0}, err, errlen);
    }
    size_t packed = s == PC_OK ? kv_packed_size(mine, 0, kv_count(mine)) : 0;
    if (s == PC_OK && (sendbuf = malloc(packed + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    kv_pack(mine, 0, kv_count(mine), sendbuf);
    int count = (int)packed; /* <= KV_SPILL_SAMPLES * (KV_PACKED_HEADER + KV_SAMPLE_KEY_MAX) */
    int64_t my_info[2] = {kv_spill_count(local), kv_count(mine)};
    MPI_Allgather(my_info, 2, MPI_INT64_T, info, 2, MPI_INT64_T, comm);
    MPI_Allgather(&count, 1, MPI_INT, counts, 1, MPI_INT, comm);
    int64_t total = 0;
    for (int r = 0; r < nranks; r++) {
        displs[r] = (int)(total <= INT_MAX ? total : 0);
        total += counts[r];
    }
    if (total > INT_MAX) s = pc_err(err, errlen, PC_ERR_DATA, "samples of %d ranks exceed 2 GiB", nranks);
    else if ((recvbuf = malloc((size_t)total + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for %lld sample bytes", (long long)total);
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    MPI_Allgatherv(sendbuf, count, MPI_BYTE, recvbuf, counts, displs, MPI_BYTE, comm);

    all = kv_create();
    s = all ? kv_unpack_append(all, recvbuf, (size_t)total, err, errlen)
            : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) s = kv_sort(all, err, errlen);
    if (s == PC_OK && (*splitters = kv_create()) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    /* Sample i of rank r stands for info[r].pairs / info[r].samples pairs. Splitter j is the
     * first sample at which the weight of the samples up to it reaches (j+1)/nranks of all:
     * rank j then receives the keys in (splitter j-1, splitter j]. */
    double weight_all = 0, cum = 0;
    for (int r = 0; r < nranks; r++) weight_all += (double)info[2 * r];
    int64_t ns = s == PC_OK ? kv_count(all) : 0;
    int j = 0;
    for (int64_t i = 0; s == PC_OK && i < ns && j < nranks - 1; i++) {
        int r = kv_origin_of(all, i).file;
        if (r < 0 || r >= nranks || info[2 * r + 1] <= 0) {
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "sample from unknown rank %d", r);
            break;
        }
        cum += (double)info[2 * r] / (double)info[2 * r + 1];
        while (s == PC_OK && j < nranks - 1 && cum >= weight_all * (j + 1) / nranks) {
            size_t klen;
            const char *key = kv_key(all, i, &klen);
            s = kv_append(*splitters, key, klen, NULL, 0, (kv_origin){0, 0}, err, errlen);
            j++;
        }
    }
    s = mpi_agree(s, comm, err, errlen);
done:
    if (s != PC_OK) {
        kv_free(*splitters);
        *splitters = NULL;
    }
    kv_free(mine);
    kv_free(all);
    free(sendbuf);
    free(recvbuf);
    free(counts);
    free(displs);
    free(info);
    return s;
}

/* Appends a packed block (kv_pack layout) received from another rank. */
static pc_status append_packed(kv_spill *to, const char *p, size_t len, int64_t *pairs, char *err,
                               size_t errlen)
{
    for (size_t pos = 0; pos < len;) {
        uint32_t klen, vlen;
        kv_origin o;
        if (len - pos < KV_PACKED_HEADER) goto bad;
        memcpy(&klen, p + pos, 4);
        memcpy(&vlen, p + pos + 4, 4);
        memcpy(&o.file, p + pos + 8, 4);
        memcpy(&o.line, p + pos + 12, 8);
        if ((uint64_t)klen + vlen > len - pos - KV_PACKED_HEADER) goto bad;
        const char *key = p + pos + KV_PACKED_HEADER;
        pc_status s = kv_spill_append(to, key, klen, key + klen, vlen, o, err, errlen);
        if (s != PC_OK) return s;
        (*pairs)++;
        pos += KV_PACKED_HEADER + (size_t)klen + vlen;
    }
    return PC_OK;
bad:
    return pc_err(err, errlen, PC_ERR_INTERNAL, "received shuffle block of %zu bytes is malformed", len);
}

static void pack_pair(char *out, const kv_pair *p)
{
    uint32_t kl = (uint32_t)p->klen, vl = (uint32_t)p->vlen;
    memcpy(out, &kl, 4);
    memcpy(out + 4, &vl, 4);
    memcpy(out + 8, &p->origin.file, 4);
    memcpy(out + 12, &p->origin.line, 8);
    if (p->klen) memcpy(out + KV_PACKED_HEADER, p->key, p->klen);
    if (p->vlen) memcpy(out + KV_PACKED_HEADER + p->klen, p->val, p->vlen);
}

pc_status shuffle_exchange(kv_spill *local, const kv_buffer *splitters, size_t chunk_bytes,
                           kv_spill *received, MPI_Comm comm, shuffle_stats *stats, char *err,
                           size_t errlen)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    shuffle_stats st = {0};
    size_t chunk = chunk_bytes < INT_MAX ? chunk_bytes : INT_MAX;
    size_t slot = chunk / (size_t)nranks; /* per destination per round: each rank receives <= chunk */
    char *sendbuf = NULL, *recvbuf = NULL;
    int *scount = calloc((size_t)nranks, sizeof(int)), *sdispl = calloc((size_t)nranks, sizeof(int));
    int *rcount = calloc((size_t)nranks, sizeof(int)), *rdispl = calloc((size_t)nranks, sizeof(int));
    kv_scan *sc = NULL;
    pc_status s = PC_OK;
    if (slot <= KV_PACKED_HEADER)
        s = pc_err(err, errlen, PC_ERR_USAGE, "shuffle chunk of %zu bytes is too small for %d ranks",
                   chunk_bytes, nranks);
    else if (!scount || !sdispl || !rcount || !rdispl || !(sendbuf = malloc(chunk)) ||
             !(recvbuf = malloc(chunk)))
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for shuffle buffers of %zu bytes", chunk);
    else
        s = kv_scan_open(local, &sc, err, errlen);
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    for (int r = 0; r < nranks; r++) sdispl[r] = rdispl[r] = (int)((size_t)r * slot);

    kv_pair p;
    bool pending = false, eof = false;
    for (;;) {
        /* Pack this round: pairs in scan order until one does not fit its destination's slot
         * (it waits for the next round). A rank that fails here still takes part in the round
         * with what it packed; the status is agreed on at the end of the round. */
        for (int r = 0; r < nranks; r++) scount[r] = 0;
        while (s == PC_OK && !eof) {
            if (!pending) {
                s = kv_scan_next(sc, &p, &eof, err, errlen);
                if (s != PC_OK || eof) break;
                pending = true;
            }
            int d = shuffle_destination(splitters, p.key, p.klen);
            if (d == rank) {
                s = kv_spill_append(received, p.key, p.klen, p.val, p.vlen, p.origin, err, errlen);
                if (s == PC_OK) {
                    pending = false;
                    st.pairs_sent++;
                    st.pairs_received++;
                }
                continue;
            }
            size_t need = KV_PACKED_HEADER + p.klen + p.vlen;
            if (need > slot) {
                s = pc_err(err, errlen, PC_ERR_DATA,
                           "a pair of %zu bytes is larger than the shuffle's share per rank (%zu "
                           "bytes of a %zu-byte chunk over %d ranks): raise run.memory_mb",
                           need, slot, chunk, nranks);
                break;
            }
            if ((size_t)scount[d] + need > slot) break;
            pack_pair(sendbuf + (size_t)sdispl[d] + (size_t)scount[d], &p);
            scount[d] += (int)need;
            pending = false;
            st.pairs_sent++;
            st.bytes_sent += (int64_t)need;
        }
        MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm);
        for (int r = 0; r < nranks; r++)
            if (rcount[r] < 0 || (size_t)rcount[r] > slot) { /* cannot happen: senders keep to slot */
                s = pc_err(err, errlen, PC_ERR_INTERNAL, "rank %d announced %d shuffle bytes", r, rcount[r]);
                rcount[r] = 0;
            }
        MPI_Alltoallv(sendbuf, scount, sdispl, MPI_BYTE, recvbuf, rcount, rdispl, MPI_BYTE, comm);
        for (int r = 0; r < nranks && s == PC_OK; r++) {
            if (r == rank || rcount[r] == 0) continue;
            s = append_packed(received, recvbuf + rdispl[r], (size_t)rcount[r], &st.pairs_received, err, errlen);
            st.bytes_received += rcount[r];
        }
        st.rounds++;
        int v[2] = {(int)s, (pending || !eof) ? 1 : 0};
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, comm);
        if (v[0] != PC_OK) {
            s = mpi_agree(s, comm, err, errlen);
            break;
        }
        if (v[1] == 0) break;
    }
done:
    kv_scan_close(sc);
    free(sendbuf);
    free(recvbuf);
    free(scount);
    free(sdispl);
    free(rcount);
    free(rdispl);
    if (stats) *stats = st;
    return s;
}
