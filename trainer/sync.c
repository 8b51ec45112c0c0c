#include "trainer/sync.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum pkind { P_DENSE = 0, P_SPARSE, P_BUFFER } pkind;

struct grad_sync {
    MPI_Comm comm;
    int rank, nranks;
    int nparams;
    pkind *kind;        /* (nparams) */
    int64_t dense_len;  /* floats of the dense part: dense grads, then buffer values */
    float *dense;       /* (dense_len) */
    float *saved;       /* running statistics at the step's start (deterministic) */
    int64_t saved_len;
    /* packets (sparse rows for allreduce; whole chunks for deterministic steps) */
    char *mine;
    size_t mine_len, mine_cap;
    char *all;
    size_t all_cap;
    int *counts, *displs;
    uint8_t **seen;     /* (nparams) per sparse table: rows already zeroed this reduce */
};

static pc_status oom(char *err, size_t errlen) { return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); }

pc_status grad_sync_create(net *n, MPI_Comm comm, grad_sync **out, char *err, size_t errlen)
{
    *out = NULL;
    grad_sync *g = calloc(1, sizeof *g);
    if (g == NULL) return oom(err, errlen);
    g->comm = comm;
    MPI_Comm_rank(comm, &g->rank);
    MPI_Comm_size(comm, &g->nranks);
    g->nparams = net_param_count(n);
    g->kind = calloc((size_t)g->nparams + 1, sizeof *g->kind);
    g->seen = calloc((size_t)g->nparams + 1, sizeof *g->seen);
    g->counts = calloc((size_t)g->nranks, sizeof(int));
    g->displs = calloc((size_t)g->nranks, sizeof(int));
    if (!g->kind || !g->seen || !g->counts || !g->displs) {
        grad_sync_free(g);
        return oom(err, errlen);
    }
    for (int i = 0; i < g->nparams; i++) {
        net_param p;
        net_param_get(n, i, &p);
        g->kind[i] = p.grad == NULL ? P_BUFFER : p.touched_rows != NULL ? P_SPARSE : P_DENSE;
        if (g->kind[i] == P_SPARSE) {
            if ((g->seen[i] = calloc((size_t)(p.count / p.row_width) + 1, 1)) == NULL) {
                grad_sync_free(g);
                return oom(err, errlen);
            }
        } else {
            g->dense_len += p.count;
        }
        if (g->kind[i] == P_BUFFER) g->saved_len += p.count;
    }
    g->dense = calloc((size_t)g->dense_len + GRAD_SYNC_MAX_EXTRA, sizeof(float));
    g->saved = calloc((size_t)g->saved_len + 1, sizeof(float));
    if (!g->dense || !g->saved) {
        grad_sync_free(g);
        return oom(err, errlen);
    }
    *out = g;
    return PC_OK;
}

void grad_sync_free(grad_sync *g)
{
    if (g == NULL) return;
    for (int i = 0; g->seen && i < g->nparams; i++) free(g->seen[i]);
    free(g->seen);
    free(g->kind);
    free(g->dense);
    free(g->saved);
    free(g->mine);
    free(g->all);
    free(g->counts);
    free(g->displs);
    free(g);
}

static bool reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (p == NULL) return false;
    *buf = p;
    *cap = c;
    return true;
}

static bool put(grad_sync *g, const void *x, size_t n)
{
    if (!reserve(&g->mine, &g->mine_cap, g->mine_len + n)) return false;
    memcpy(g->mine + g->mine_len, x, n);
    g->mine_len += n;
    return true;
}

/* Appends the sparse parameters' touched rows, scaled: per parameter, count, rows, values. */
static bool pack_sparse(grad_sync *g, net *n, double weight)
{
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        int64_t count = weight > 0 ? p.touched_count : 0;
        if (!put(g, &count, sizeof count)) return false;
        if (count > 0 && !put(g, p.touched_rows, (size_t)count * sizeof(int64_t))) return false;
        size_t at = g->mine_len, row_bytes = (size_t)p.row_width * sizeof(float);
        if (!reserve(&g->mine, &g->mine_cap, at + (size_t)count * row_bytes)) return false;
        float *dst = (float *)(void *)(g->mine + at);
        for (int64_t k = 0; k < count; k++) {
            const float *src = p.grad + p.touched_rows[k] * p.row_width;
            for (int64_t j = 0; j < p.row_width; j++) dst[k * p.row_width + j] = (float)(src[j] * weight);
        }
        g->mine_len += (size_t)count * row_bytes;
    }
    return true;
}

/* Zeroes the grad rows this rank's net lists as touched (they may hold stale or local values). */
static void clear_touched(grad_sync *g, net *n)
{
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        for (int64_t k = 0; k < p.touched_count; k++)
            memset(p.grad + p.touched_rows[k] * p.row_width, 0, (size_t)p.row_width * sizeof(float));
    }
}

/* Reads the sparse part of one packet at *at, adding its rows into the grads (and registering
 * them as touched the first time a row is seen this reduce). */
static const char *add_sparse(grad_sync *g, net *n, const char *at)
{
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        int64_t count;
        memcpy(&count, at, sizeof count);
        at += sizeof count;
        const char *rows = at;
        at += (size_t)count * sizeof(int64_t);
        const char *vals = at;
        at += (size_t)count * (size_t)p.row_width * sizeof(float);
        for (int64_t k = 0; k < count; k++) {
            int64_t row;
            memcpy(&row, rows + k * (int64_t)sizeof row, sizeof row);
            float *dst = p.grad + row * p.row_width;
            if (!g->seen[i][row]) {
                g->seen[i][row] = 1;
                memset(dst, 0, (size_t)p.row_width * sizeof(float));
                net_param_touch(n, i, row);
            }
            for (int64_t j = 0; j < p.row_width; j++) {
                float v;
                memcpy(&v, vals + (k * p.row_width + j) * (int64_t)sizeof v, sizeof v);
                dst[j] += v;
            }
        }
    }
    return at;
}

/* Clears the seen marks of the rows registered during this reduce. */
static void reset_seen(grad_sync *g, net *n)
{
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        for (int64_t k = 0; k < p.touched_count; k++) g->seen[i][p.touched_rows[k]] = 0;
    }
}

/* MPI_Allgatherv of every rank's `mine` into `all` (counts and displacements per rank). */
static pc_status gather_packets(grad_sync *g, char *err, size_t errlen)
{
    int len = g->mine_len > (size_t)INT32_MAX ? -1 : (int)g->mine_len;
    MPI_Allgather(&len, 1, MPI_INT, g->counts, 1, MPI_INT, g->comm);
    int64_t total = 0;
    bool bad = false;
    for (int r = 0; r < g->nranks; r++) {
        bad |= g->counts[r] < 0;
        g->displs[r] = (int)total;
        total += g->counts[r];
    }
    if (bad || total > INT32_MAX)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "a step's gradients exceed 2 GiB: lower train.batch_rows");
    int ok = reserve(&g->all, &g->all_cap, (size_t)total + 1), all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, g->comm);
    if (!all_ok) return oom(err, errlen);
    MPI_Allgatherv(g->mine, len, MPI_BYTE, g->all, g->counts, g->displs, MPI_BYTE, g->comm);
    return PC_OK;
}

pc_status grad_sync_allreduce(grad_sync *g, net *n, double weight, float *extra, int nextra, char *err,
                              size_t errlen)
{
    if (nextra > GRAD_SYNC_MAX_EXTRA) nextra = GRAD_SYNC_MAX_EXTRA;
    /* dense part: grads and running statistics, scaled by the rank's share of the rows */
    int64_t at = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] == P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        const float *src = g->kind[i] == P_BUFFER ? p.value : p.grad;
        for (int64_t j = 0; j < p.count; j++) g->dense[at + j] = weight > 0 ? (float)(src[j] * weight) : 0.0f;
        at += p.count;
    }
    for (int i = 0; i < nextra; i++) g->dense[g->dense_len + i] = extra[i];
    if (g->nranks > 1)
        MPI_Allreduce(MPI_IN_PLACE, g->dense, (int)g->dense_len + nextra, MPI_FLOAT, MPI_SUM, g->comm);
    for (int i = 0; i < nextra; i++) extra[i] = g->dense[g->dense_len + i];
    at = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] == P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        memcpy(g->kind[i] == P_BUFFER ? p.value : p.grad, g->dense + at, (size_t)p.count * sizeof(float));
        at += p.count;
    }
    /* sparse part: only touched rows travel */
    bool any_sparse = false;
    for (int i = 0; i < g->nparams; i++) any_sparse |= g->kind[i] == P_SPARSE;
    if (!any_sparse) return PC_OK;
    g->mine_len = 0;
    int ok = pack_sparse(g, n, weight), all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, g->comm);
    if (!all_ok) return oom(err, errlen);
    pc_status s = gather_packets(g, err, errlen);
    if (s != PC_OK) return s;
    clear_touched(g, n);
    for (int r = 0; r < g->nranks; r++) add_sparse(g, n, g->all + g->displs[r]);
    reset_seen(g, n);
    return PC_OK;
}

void grad_sync_step_begin(grad_sync *g, net *n)
{
    int64_t at = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_BUFFER) continue;
        net_param p;
        net_param_get(n, i, &p);
        memcpy(g->saved + at, p.value, (size_t)p.count * sizeof(float));
        at += p.count;
    }
    g->mine_len = 0;
}

void grad_sync_chunk_begin(grad_sync *g, net *n)
{
    int64_t at = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_BUFFER) continue;
        net_param p;
        net_param_get(n, i, &p);
        memcpy(p.value, g->saved + at, (size_t)p.count * sizeof(float));
        at += p.count;
    }
}

pc_status grad_sync_chunk_store(grad_sync *g, net *n, int64_t chunk, double weight, char *err, size_t errlen)
{
    bool ok = put(g, &chunk, sizeof chunk);
    for (int i = 0; ok && i < g->nparams; i++) {
        if (g->kind[i] == P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        const float *src = g->kind[i] == P_BUFFER ? p.value : p.grad;
        size_t start = g->mine_len;
        if (!(ok = reserve(&g->mine, &g->mine_cap, start + (size_t)p.count * sizeof(float)))) break;
        float *dst = (float *)(void *)(g->mine + start);
        for (int64_t j = 0; j < p.count; j++) dst[j] = (float)(src[j] * weight);
        g->mine_len += (size_t)p.count * sizeof(float);
    }
    if (ok) ok = pack_sparse(g, n, weight);
    return ok ? PC_OK : oom(err, errlen);
}

/* Walks one packet: returns the byte after it, and its chunk number and dense part. */
static const char *packet_skip(grad_sync *g, net *n, const char *at, int64_t *chunk, const char **dense)
{
    memcpy(chunk, at, sizeof *chunk);
    at += sizeof *chunk;
    *dense = at;
    at += (size_t)g->dense_len * sizeof(float);
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] != P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        int64_t count;
        memcpy(&count, at, sizeof count);
        at += sizeof count + (size_t)count * sizeof(int64_t) + (size_t)count * (size_t)p.row_width * sizeof(float);
    }
    return at;
}

pc_status grad_sync_chunks_reduce(grad_sync *g, net *n, int64_t nchunks, char *err, size_t errlen)
{
    pc_status s = gather_packets(g, err, errlen);
    if (s != PC_OK) return s;
    const char **packet = calloc((size_t)nchunks + 1, sizeof *packet);
    const char **dense = calloc((size_t)nchunks + 1, sizeof *dense);
    int ok = packet && dense, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, g->comm);
    if (!all_ok) {
        free(packet);
        free(dense);
        return oom(err, errlen);
    }
    for (int r = 0; r < g->nranks; r++) {
        const char *at = g->all + g->displs[r], *end = at + g->counts[r];
        while (at < end) {
            int64_t chunk;
            const char *d;
            const char *next = packet_skip(g, n, at, &chunk, &d);
            if (chunk >= 0 && chunk < nchunks) {
                packet[chunk] = at + sizeof chunk + (size_t)g->dense_len * sizeof(float);
                dense[chunk] = d;
            }
            at = next;
        }
    }
    /* dense part: chunk 0 + chunk 1 + ... in order, on every rank alike */
    for (int64_t j = 0; j < g->dense_len; j++) g->dense[j] = 0.0f;
    for (int64_t c = 0; c < nchunks; c++) {
        if (dense[c] == NULL) continue;
        for (int64_t j = 0; j < g->dense_len; j++) {
            float v;
            memcpy(&v, dense[c] + j * (int64_t)sizeof v, sizeof v);
            g->dense[j] += v;
        }
    }
    int64_t at = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (g->kind[i] == P_SPARSE) continue;
        net_param p;
        net_param_get(n, i, &p);
        memcpy(g->kind[i] == P_BUFFER ? p.value : p.grad, g->dense + at, (size_t)p.count * sizeof(float));
        at += p.count;
    }
    clear_touched(g, n);
    for (int64_t c = 0; c < nchunks; c++)
        if (packet[c]) add_sparse(g, n, packet[c]);
    reset_seen(g, n);
    free(packet);
    free(dense);
    g->mine_len = 0;
    return PC_OK;
}

bool grad_sync_check_identical(grad_sync *g, net *n)
{
    if (g->nranks == 1) return false;
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < g->nparams; i++) {
        net_param p;
        net_param_get(n, i, &p);
        for (int64_t j = 0; j < p.count; j++) {
            uint32_t u;
            memcpy(&u, &p.value[j], sizeof u);
            h = (h ^ u) * 1099511628211ULL;
        }
    }
    uint64_t lo, hi;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, g->comm);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, g->comm);
    if (lo == hi) return false;
    for (int i = 0; i < g->nparams; i++) {
        net_param p;
        net_param_get(n, i, &p);
        for (int64_t off = 0; off < p.count; off += 1 << 28) {
            int64_t len = p.count - off < (1 << 28) ? p.count - off : (1 << 28);
            MPI_Bcast(p.value + off, (int)len, MPI_FLOAT, 0, g->comm);
        }
    }
    return true;
}
