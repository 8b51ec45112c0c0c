#include "reducer/shuffle.h"

#include "reducer/agree.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Draws `want` regularly spaced keys from sorted `kv` into a packed block (kv_pack format). */
static pc_status draw_samples(const kv_buffer *kv, int want, kv_buffer **samples, char *err,
                              size_t errlen)
{
    *samples = kv_create();
    if (*samples == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    int64_t n = kv_count(kv);
    if (n == 0) return PC_OK;
    if (want > n) want = (int)n;
    for (int i = 0; i < want; i++) {
        int64_t idx = (int64_t)(((double)i + 0.5) * (double)n / want);
        size_t klen;
        const char *key = kv_key(kv, idx, &klen);
        pc_status s = kv_append(*samples, key, klen, NULL, 0, (kv_origin){0, 0}, err, errlen);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

/* Gathers every rank's samples, sorts them and picks nranks-1 splitters (into a buffer whose
 * pair i is splitter i). Collective. */
static pc_status pick_splitters(const kv_buffer *local, MPI_Comm comm, kv_buffer **splitters,
                                char *err, size_t errlen)
{
    int nranks;
    MPI_Comm_size(comm, &nranks);
    kv_buffer *mine = NULL, *all = NULL;
    char *sendbuf = NULL, *recvbuf = NULL;
    int *counts = NULL, *displs = NULL;
    *splitters = NULL;
    pc_status s = draw_samples(local, SHUFFLE_OVERSAMPLE * nranks, &mine, err, errlen);
    size_t packed = s == PC_OK ? kv_packed_size(mine, 0, kv_count(mine)) : 0;
    if (s == PC_OK && packed > INT_MAX)
        s = pc_err(err, errlen, PC_ERR_DATA, "sample keys too long (%zu bytes)", packed);
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;

    int count = (int)packed;
    counts = calloc((size_t)nranks, sizeof(int));
    displs = calloc((size_t)nranks, sizeof(int));
    sendbuf = malloc(packed + 1);
    s = (counts && displs && sendbuf) ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    kv_pack(mine, 0, kv_count(mine), sendbuf);
    MPI_Allgather(&count, 1, MPI_INT, counts, 1, MPI_INT, comm);
    int64_t total = 0;
    for (int r = 0; r < nranks; r++) {
        displs[r] = (int)total;
        total += counts[r];
    }
    if (total > INT_MAX) s = pc_err(err, errlen, PC_ERR_DATA, "sample keys too long in total");
    else if ((recvbuf = malloc((size_t)total + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    MPI_Allgatherv(sendbuf, count, MPI_BYTE, recvbuf, counts, displs, MPI_BYTE, comm);

    all = kv_create();
    s = all ? kv_unpack_append(all, recvbuf, (size_t)total, err, errlen)
            : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) s = kv_sort(all, err, errlen);
    if (s == PC_OK && (*splitters = kv_create()) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    /* Splitter i is the sample at quantile (i+1)/nranks; ranks whose share of samples is
     * empty simply receive nothing. */
    int64_t ns = s == PC_OK ? kv_count(all) : 0;
    for (int i = 0; s == PC_OK && ns > 0 && i < nranks - 1; i++) {
        size_t klen;
        const char *key = kv_key(all, (int64_t)(i + 1) * ns / nranks, &klen);
        s = kv_append(*splitters, key, klen, NULL, 0, (kv_origin){0, 0}, err, errlen);
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
    return s;
}

/* Destination rank of a key: the number of splitters strictly smaller than it. Equal keys
 * share a destination. */
static int destination(const kv_buffer *splitters, const char *key, size_t klen)
{
    return shuffle_destination(splitters, key, klen);
}

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

/* A binary min-heap of run indices ordered by each run's current key. */
typedef struct merge_state {
    kv_buffer *const *runs;
    int64_t *pos;
    int *heap;
    int size;
} merge_state;

static int run_less(const merge_state *m, int a, int b)
{
    size_t al, bl;
    const char *ak = kv_key(m->runs[a], m->pos[a], &al);
    const char *bk = kv_key(m->runs[b], m->pos[b], &bl);
    int c = kv_key_compare(ak, al, bk, bl);
    return c < 0 || (c == 0 && a < b); /* ties by run index: deterministic output */
}

static void sift_down(merge_state *m, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, best = i;
        if (l < m->size && run_less(m, m->heap[l], m->heap[best])) best = l;
        if (r < m->size && run_less(m, m->heap[r], m->heap[best])) best = r;
        if (best == i) return;
        int t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

pc_status shuffle_merge_runs(kv_buffer *const *runs, int nruns, kv_buffer **out, char *err,
                             size_t errlen)
{
    merge_state m = {.runs = runs};
    m.pos = calloc((size_t)nruns + 1, sizeof(int64_t));
    m.heap = calloc((size_t)nruns + 1, sizeof(int));
    *out = kv_create();
    pc_status s = (m.pos && m.heap && *out) ? PC_OK
                                            : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int r = 0; s == PC_OK && r < nruns; r++)
        if (kv_count(runs[r]) > 0) m.heap[m.size++] = r;
    for (int i = m.size / 2 - 1; s == PC_OK && i >= 0; i--) sift_down(&m, i);
    while (s == PC_OK && m.size > 0) {
        int r = m.heap[0];
        size_t klen, vlen;
        const char *key = kv_key(runs[r], m.pos[r], &klen);
        const char *val = kv_value(runs[r], m.pos[r], &vlen);
        s = kv_append(*out, key, klen, val, vlen, kv_origin_of(runs[r], m.pos[r]), err, errlen);
        if (++m.pos[r] == kv_count(runs[r])) m.heap[0] = m.heap[--m.size];
        sift_down(&m, 0);
    }
    free(m.pos);
    free(m.heap);
    if (s != PC_OK) {
        kv_free(*out);
        *out = NULL;
    }
    return s;
}

/* Ships each rank's slice of sorted `local` to its destination and returns the runs received,
 * one per source rank. Collective. */
static pc_status exchange(const kv_buffer *local, const kv_buffer *splitters, MPI_Comm comm,
                          kv_buffer **runs, char *err, size_t errlen)
{
    int nranks;
    MPI_Comm_size(comm, &nranks);
    int64_t *first = calloc((size_t)nranks + 1, sizeof(int64_t));
    int *scount = calloc((size_t)nranks, sizeof(int)), *sdispl = calloc((size_t)nranks, sizeof(int));
    int *rcount = calloc((size_t)nranks, sizeof(int)), *rdispl = calloc((size_t)nranks, sizeof(int));
    char *sendbuf = NULL, *recvbuf = NULL;
    pc_status s = (first && scount && sdispl && rcount && rdispl)
                      ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    /* local is sorted, so each destination's pairs are one contiguous slice. */
    int64_t n = kv_count(local), i = 0;
    for (int r = 0; s == PC_OK && r < nranks; r++) {
        first[r] = i;
        while (i < n) {
            size_t klen;
            const char *key = kv_key(local, i, &klen);
            if (destination(splitters, key, klen) != r) break;
            i++;
        }
    }
    if (s == PC_OK) first[nranks] = n;
    int64_t total = 0;
    for (int r = 0; s == PC_OK && r < nranks; r++) {
        size_t bytes = kv_packed_size(local, first[r], first[r + 1]);
        /* MPI counts are int: a slice over 2 GiB needs chunking (the scale issue's work). */
        if (bytes > INT_MAX || total + (int64_t)bytes > INT_MAX) {
            s = pc_err(err, errlen, PC_ERR_DATA, "shuffle slice of %zu bytes exceeds 2 GiB", bytes);
            break;
        }
        scount[r] = (int)bytes;
        sdispl[r] = (int)total;
        total += (int64_t)bytes;
    }
    if (s == PC_OK && (sendbuf = malloc((size_t)total + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for %lld shuffle bytes", (long long)total);
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    for (int r = 0; r < nranks; r++) kv_pack(local, first[r], first[r + 1], sendbuf + sdispl[r]);

    MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm);
    int64_t rtotal = 0;
    for (int r = 0; r < nranks; r++) {
        rdispl[r] = (int)rtotal;
        rtotal += rcount[r];
    }
    if (rtotal > INT_MAX) s = pc_err(err, errlen, PC_ERR_DATA, "rank receives over 2 GiB in the shuffle");
    else if ((recvbuf = malloc((size_t)rtotal + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for %lld shuffle bytes", (long long)rtotal);
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    MPI_Alltoallv(sendbuf, scount, sdispl, MPI_BYTE, recvbuf, rcount, rdispl, MPI_BYTE, comm);

    for (int r = 0; s == PC_OK && r < nranks; r++) {
        runs[r] = kv_create();
        s = runs[r] ? kv_unpack_append(runs[r], recvbuf + rdispl[r], (size_t)rcount[r], err, errlen)
                    : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    s = mpi_agree(s, comm, err, errlen);
done:
    free(first);
    free(scount);
    free(sdispl);
    free(rcount);
    free(rdispl);
    free(sendbuf);
    free(recvbuf);
    return s;
}

pc_status shuffle_sample_sort(kv_buffer *local, MPI_Comm comm, kv_buffer **out, char *err,
                              size_t errlen)
{
    int nranks;
    MPI_Comm_size(comm, &nranks);
    *out = NULL;
    kv_buffer *splitters = NULL;
    kv_buffer **runs = calloc((size_t)nranks, sizeof(kv_buffer *));
    pc_status s = runs ? kv_sort(local, err, errlen)
                       : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, comm, err, errlen)) != PC_OK) goto done;
    if ((s = pick_splitters(local, comm, &splitters, err, errlen)) != PC_OK) goto done;
    if ((s = exchange(local, splitters, comm, runs, err, errlen)) != PC_OK) goto done;
    s = mpi_agree(shuffle_merge_runs(runs, nranks, out, err, errlen), comm, err, errlen);
done:
    if (runs)
        for (int r = 0; r < nranks; r++) kv_free(runs[r]);
    free(runs);
    kv_free(splitters);
    if (s != PC_OK) {
        kv_free(*out);
        *out = NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Out-of-core shuffle */

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
