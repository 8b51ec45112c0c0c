/*
 * train.c — `precast train TRAIN.ini`: the data-parallel training loop.
 *
 * Every rank reads its split of the data into memory (dataset.h), builds the same net from the
 * same seed, and runs the same number of steps per epoch. A step: each rank takes its share of
 * the global batch (train.batch_rows rows over all ranks, in proportion to the rows it holds),
 * forward + backward, then the gradients are summed across ranks (sync.h), clipped, and the
 * optimiser updates every rank's weights alike. With train.deterministic, every rank holds all
 * rows, the global batch is cut into fixed micro-batches handed round-robin to the ranks and
 * summed in a fixed order, so the model's bytes do not depend on the number of ranks.
 *
 * After each epoch the validation rows are scored (each rank its own, sums reduced) and rank
 * 0 prints a progress line. At the end rank 0 writes the model (ONNX), labels, curves, report
 * (with the diagnostics), the plot and the feature statistics.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mpi.h>

#include "jobs/commands.h"
#include "mapper/featstats.h"
#include "reducer/agree.h"
#include "trainer/dataset.h"
#include "trainer/diagnose.h"
#include "trainer/net.h"
#include "trainer/onnx_write.h"
#include "trainer/optim.h"
#include "trainer/sync.h"
#include "trainer/train_config.h"
#include "trainer/train_report.h"

#define MAX_FINDINGS 32

typedef struct trainer {
    MPI_Comm comm;
    int rank, nranks;
    train_config *cfg;
    data_layout layout;
    dataset train, val, test;
    data_load_stats load;
    int64_t total_train, total_val; /* over all ranks (deterministic: the rows, once) */
    int64_t *rank_rows;   /* (nranks) training rows of each rank (non-deterministic) */
    net *nt;
    optim *opt;
    grad_sync *sync;
    int64_t *perm;        /* this epoch's order of the rows this rank trains on */
    int64_t steps_per_epoch;
    int64_t step;         /* global step counter */
    /* per dense layer (gradient norms and dead shares): net layer index and param index */
    int ndense;
    int *dense_layer, *dense_param;
    train_curves curves;
    float *best;          /* parameter values of the best epoch (early stopping), or NULL */
    int64_t best_epoch;   /* 1-based */
    double best_val;
    bool stopped_early, stopped_nan, resynced;
    const char *metric_name;
    double started;
} trainer;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast train TRAIN.ini [--set section.key=value]...\n"
            "       mpirun -np N precast train TRAIN.ini\n"
            "\n"
            "Trains a network on labelled CSV or LIBSVM rows and writes it as ONNX for\n"
            "`precast run`. Each rank holds its split of the rows in memory; gradients are\n"
            "summed across ranks every step. Prints one line per epoch (train loss,\n"
            "validation loss and metric, rows/s) and writes, beside the model: MODEL.labels,\n"
            "MODEL.report.json and .txt (with diagnostics of the loss curves),\n"
            "MODEL.curves.csv, loss.png (gnuplot) and MODEL.stats.json (feature statistics).\n"
            "\n"
            "  --set section.key=value   override a job-file key (repeatable)\n"
            "  -h, --help                this help\n"
            "\n"
            "Job file sections: [data] [model] [train] [output]; see docs/TRAINING.md.\n"
            "Exit status: 0 trained, 64 usage, 65 bad input rows, 66 input missing, 70 internal\n"
            "error, 73 cannot create an output, 74 I/O error, 78 job file rejected.\n");
}

static pc_status oom(char *err, size_t errlen) { return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); }

/* ---- the net ------------------------------------------------------------------------------ */

static net_head net_head_of(train_head h)
{
    static const net_head map[] = {NET_HEAD_SOFTMAX, NET_HEAD_SAMPLED_SOFTMAX, NET_HEAD_ONE_VS_ALL,
                                   NET_HEAD_MULTILABEL, NET_HEAD_SIGMOID, NET_HEAD_REGRESSION};
    return map[h];
}

static pc_status make_spec(const trainer *t, net_spec *s, char *err, size_t errlen)
{
    const train_config *c = t->cfg;
    const data_layout *l = &t->layout;
    net_spec_init(s);
    s->dense_width = l->dense_width;
    if (l->nembeds > NET_MAX_EMBEDS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: %d embedding columns, at most %d", c->job_file, l->nembeds,
                      NET_MAX_EMBEDS);
    if (c->nlayers > NET_MAX_LAYERS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: model.layers lists %d layers, at most %d", c->job_file, c->nlayers,
                      NET_MAX_LAYERS);
    s->n_embeds = l->nembeds;
    for (int e = 0; e < l->nembeds; e++) {
        net_embed_spec *em = &s->embeds[e];
        snprintf(em->name, sizeof em->name, "%s", l->embed_names[e]);
        em->vocab = l->embed_vocab[e];
        em->dim = l->embed_dim[e];
        em->bag = l->embed_bag[e];
        em->padding_idx = em->bag > 1 ? 0 : -1;
    }
    s->n_layers = c->nlayers;
    for (int i = 0; i < c->nlayers; i++) {
        const train_layer *tl = &c->layers[i];
        net_layer_spec *nl = &s->layers[i];
        nl->kind = tl->kind == TRAIN_LAYER_DENSE ? NET_LAYER_DENSE
                 : tl->kind == TRAIN_LAYER_BATCHNORM ? NET_LAYER_BATCHNORM
                                                     : NET_LAYER_DROPOUT;
        nl->units = tl->units;
        nl->act = (net_act)tl->act; /* same order: none relu leaky_relu tanh sigmoid */
        nl->alpha = (float)tl->alpha;
        nl->p = (float)tl->p;
    }
    s->head = net_head_of(c->head);
    s->outputs = l->outputs;
    s->negatives = c->sampled;
    s->sampler = c->sampler == TRAIN_SAMPLER_UNIFORM ? GRAD_SAMPLER_UNIFORM : GRAD_SAMPLER_LOG_UNIFORM;
    s->seed = c->seed;
    s->has_bias_init = c->has_init_bias;
    s->bias_init = (float)c->init_bias;
    return PC_OK;
}

/* The dense layers (hidden and head) whose gradient norms and dead shares are recorded. */
static pc_status find_dense_layers(trainer *t, char *err, size_t errlen)
{
    int nl = net_layer_count(t->nt);
    t->dense_layer = calloc((size_t)nl + 1, sizeof(int));
    t->dense_param = calloc((size_t)nl + 1, sizeof(int));
    char **names = calloc((size_t)nl + 1, sizeof(char *));
    bool *relu = calloc((size_t)nl + 1, sizeof(bool));
    if (!t->dense_layer || !t->dense_param || !names || !relu) {
        free(names);
        free(relu);
        return oom(err, errlen);
    }
    char buf[NET_MAX_LAYERS + 1][32];
    for (int i = 0; i < nl; i++) {
        net_layer l;
        net_layer_get(t->nt, i, &l);
        if (l.kind != NET_LAYER_DENSE) continue;
        char pname[48];
        if (l.is_head) snprintf(pname, sizeof pname, "head.weight");
        else snprintf(pname, sizeof pname, "dense%d.weight", i);
        int k = t->ndense++;
        t->dense_layer[k] = i;
        t->dense_param[k] = net_param_find(t->nt, pname);
        if (l.is_head) snprintf(buf[k], sizeof buf[k], "head");
        else snprintf(buf[k], sizeof buf[k], "dense%d", i);
        names[k] = buf[k];
        relu[k] = !l.is_head && (l.act == NET_ACT_RELU || l.act == NET_ACT_LEAKY_RELU);
    }
    pc_status s = PC_OK;
    if (t->rank == 0) s = train_curves_init(&t->curves, t->ndense, (const char *const *)names, relu, err, errlen);
    free(names);
    free(relu);
    return s;
}

/* ---- shuffling ------------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* perm = a permutation of 0..n-1 drawn from (seed, epoch, who). */
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch, int64_t who)
{
    uint64_t st = seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t)epoch * 0xd1b54a32d192ed03ULL ^ (uint64_t)(who + 1) * 0x8cb92ba72f3d8dd7ULL;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(splitmix(&st) % (uint64_t)(i + 1));
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* ---- evaluation ----------------------------------------------------------------------------- */

typedef struct eval_sums {
    double loss;      /* sum over rows of the row's mean loss */
    double hits;      /* the metric's count: accuracy, top-10 hits (sampled), correct labels */
    double top1, top10; /* class heads: rows whose class is first / among the first ten */
    double sq;        /* squared errors (regression) */
    double rows;
    double units;     /* rows * outputs for per-output metrics */
} eval_sums;

/* Whether the true class is among the k highest outputs: fewer than k outputs beat it. */
static bool in_top_k(const float *p, int64_t n, int32_t label, int k)
{
    int above = 0;
    for (int64_t c = 0; c < n && above < k; c++) above += p[c] > p[label] || (p[c] == p[label] && c < label);
    return above < k;
}

static int64_t arg_max(const float *p, int64_t n)
{
    int64_t best = 0;
    for (int64_t c = 1; c < n; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

/* Adds the metric of rows [0, n) of the last eval pass to *s. */
static void score_rows(const trainer *t, const dataset *d, const int64_t *idx, int64_t n, eval_sums *s)
{
    const float *out = net_output(t->nt);
    int64_t C = t->layout.outputs;
    train_head h = t->cfg->head;
    for (int64_t i = 0; i < n; i++) {
        const float *p = out + i * C;
        int64_t r = idx[i];
        if (h == TRAIN_HEAD_SOFTMAX || h == TRAIN_HEAD_ONE_VS_ALL || h == TRAIN_HEAD_SAMPLED_SOFTMAX) {
            bool first = arg_max(p, C) == d->cls[r], ten = in_top_k(p, C, d->cls[r], 10);
            s->top1 += first;
            s->top10 += ten;
            s->hits += h == TRAIN_HEAD_SAMPLED_SOFTMAX ? ten : first;
        } else if (h == TRAIN_HEAD_SIGMOID) {
            s->hits += (p[0] >= 0.5f) == (d->target[r] >= 0.5f);
        } else if (h == TRAIN_HEAD_MULTILABEL) {
            for (int64_t c = 0; c < C; c++) {
                bool truth = false;
                for (int64_t j = d->ml_off[r]; j < d->ml_off[r + 1]; j++) truth |= d->ml_cls[j] == c;
                s->hits += (p[c] >= 0.5f) == truth;
            }
        } else {
            for (int64_t c = 0; c < C; c++) {
                double e = (double)p[c] - d->target[r * C + c];
                s->sq += e * e;
            }
        }
    }
    s->rows += (double)n;
    s->units += (double)(n * C);
}

static double metric_of(const trainer *t, const eval_sums *s)
{
    train_head h = t->cfg->head;
    if (h == TRAIN_HEAD_REGRESSION) return s->units > 0 ? s->sq / s->units : NAN;
    if (h == TRAIN_HEAD_MULTILABEL) return s->units > 0 ? s->hits / s->units : NAN;
    return s->rows > 0 ? s->hits / s->rows : NAN;
}

/* Scores rows [first, end) stepping by `stride` of d (inference mode). */
static pc_status eval_rows(trainer *t, const dataset *d, int64_t first, int64_t stride, eval_sums *s, FILE *pred,
                           char *err, size_t errlen)
{
    int64_t B = net_batch_rows(t->nt);
    int64_t *idx = malloc((size_t)B * sizeof *idx);
    if (idx == NULL) return oom(err, errlen);
    pc_status st = PC_OK;
    int64_t r = first;
    while (st == PC_OK && r < d->rows) {
        int64_t n = 0;
        for (; n < B && r < d->rows; r += stride) idx[n++] = r;
        dataset_fill(d, &t->layout, idx, n, t->nt);
        double loss = 0;
        st = net_forward_eval(t->nt, n, &loss, err, errlen);
        if (st != PC_OK) break;
        s->loss += loss * (double)n;
        score_rows(t, d, idx, n, s);
        if (pred) {
            const float *out = net_output(t->nt);
            int64_t C = t->layout.outputs;
            for (int64_t i = 0; i < n; i++) {
                const float *p = out + i * C;
                fprintf(pred, "%s", dataset_key(d, idx[i]));
                train_head h = t->cfg->head;
                if (h == TRAIN_HEAD_SOFTMAX || h == TRAIN_HEAD_SAMPLED_SOFTMAX || h == TRAIN_HEAD_ONE_VS_ALL) {
                    int64_t c = arg_max(p, C);
                    fprintf(pred, ",%s,%.9g,%s\n", t->layout.classes[c], p[c], t->layout.classes[d->cls[idx[i]]]);
                } else {
                    for (int64_t c = 0; c < C; c++) fprintf(pred, ",%.9g", p[c]);
                    fputc('\n', pred);
                }
            }
        }
    }
    free(idx);
    return st;
}

/* Validation over all ranks: each scores its own rows (deterministic: every nranks-th row). */
static pc_status validate(trainer *t, double *loss, double *metric, char *err, size_t errlen)
{
    eval_sums s = {0};
    pc_status st = PC_OK;
    if (t->val.rows > 0) {
        int64_t first = t->cfg->deterministic ? t->rank : 0, stride = t->cfg->deterministic ? t->nranks : 1;
        st = eval_rows(t, &t->val, first, stride, &s, NULL, err, errlen);
    }
    st = mpi_agree(st, t->comm, err, errlen);
    if (st != PC_OK) return st;
    double v[7] = {s.loss, s.hits, s.top1, s.top10, s.sq, s.rows, s.units};
    MPI_Allreduce(MPI_IN_PLACE, v, 7, MPI_DOUBLE, MPI_SUM, t->comm);
    eval_sums all = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    *loss = all.rows > 0 ? all.loss / all.rows : NAN;
    *metric = metric_of(t, &all);
    return PC_OK;
}

/* ---- one epoch ------------------------------------------------------------------------------- */

static double lr_at(const trainer *t, int64_t step)
{
    const train_config *c = t->cfg;
    int64_t total = c->epochs * t->steps_per_epoch;
    optim_schedule s = c->schedule == TRAIN_SCHED_STEP ? OPTIM_SCHEDULE_STEP
                     : c->schedule == TRAIN_SCHED_COSINE ? OPTIM_SCHEDULE_COSINE
                                                         : OPTIM_SCHEDULE_CONSTANT;
    return optim_schedule_lr(s, c->learning_rate, step, total, c->step_size * t->steps_per_epoch, c->gamma);
}

/* Rows [lo, hi) of this rank's epoch order for step s of S: an even share of its rows. */
static void step_range(int64_t n, int64_t s, int64_t S, int64_t *lo, int64_t *hi)
{
    *lo = (int64_t)((__int128)n * s / S);
    *hi = (int64_t)((__int128)n * (s + 1) / S);
}

/* Forward and backward on rows idx[0..n) of the training set; *loss gets the mean loss. */
static pc_status run_rows(trainer *t, const int64_t *idx, int64_t n, double *loss, char *err, size_t errlen)
{
    dataset_fill(&t->train, &t->layout, idx, n, t->nt);
    uint64_t *keys = net_row_keys(t->nt);
    /* dropout masks keyed by the row itself, so they do not depend on who computes it */
    for (int64_t i = 0; i < n; i++) keys[i] = (uint64_t)idx[i] + (t->cfg->deterministic ? 0 : (uint64_t)t->rank << 40);
    pc_status s = net_forward_train(t->nt, n, (uint64_t)t->step, loss, err, errlen);
    if (s == PC_OK) net_backward(t->nt, n);
    return s;
}

/* One step of the default (all-reduce) mode. *loss: the step's mean loss over all ranks. */
static pc_status step_allreduce(trainer *t, int64_t s, double *loss, int64_t *rows_done, char *err, size_t errlen)
{
    int64_t lo, hi, step_rows = 0;
    for (int r = 0; r < t->nranks; r++) {
        int64_t a, b;
        step_range(t->rank_rows[r], s, t->steps_per_epoch, &a, &b);
        step_rows += b - a;
    }
    step_range(t->train.rows, s, t->steps_per_epoch, &lo, &hi);
    double mine = 0;
    pc_status st = PC_OK;
    if (hi > lo) st = run_rows(t, t->perm + lo, hi - lo, &mine, err, errlen);
    double weight = step_rows > 0 && hi > lo && st == PC_OK ? (double)(hi - lo) / (double)step_rows : 0;
    /* the step's loss and whether any rank failed ride on the gradients' all-reduce: one
     * collective per step for a dense net (small batches are latency-bound) */
    float extra[2] = {st != PC_OK ? 1.0f : 0.0f, (float)(mine * weight)};
    pc_status s2 = grad_sync_allreduce(t->sync, t->nt, weight, extra, 2, err, errlen);
    if (extra[0] > 0) return mpi_agree(st != PC_OK ? st : PC_OK, t->comm, err, errlen);
    if (s2 != PC_OK) return s2;
    *loss = extra[1];
    *rows_done += step_rows;
    return PC_OK;
}

/* One step of the deterministic mode: global batch s of the epoch order (the same on every
 * rank), cut into micro-batches handed out round-robin. */
static pc_status step_chunks(trainer *t, int64_t s, double *loss, int64_t *rows_done, char *err, size_t errlen)
{
    int64_t B = t->cfg->batch_rows, M = net_batch_rows(t->nt);
    int64_t lo = s * B, hi = lo + B < t->train.rows ? lo + B : t->train.rows;
    int64_t nchunks = (hi - lo + M - 1) / M;
    grad_sync_step_begin(t->sync, t->nt);
    pc_status st = PC_OK;
    double mine = 0;
    for (int64_t k = t->rank; st == PC_OK && k < nchunks; k += t->nranks) {
        int64_t a = lo + k * M, b = a + M < hi ? a + M : hi;
        double l = 0, w = (double)(b - a) / (double)(hi - lo);
        grad_sync_chunk_begin(t->sync, t->nt);
        st = run_rows(t, t->perm + a, b - a, &l, err, errlen);
        if (st == PC_OK) st = grad_sync_chunk_store(t->sync, t->nt, k, w, err, errlen);
        mine += l * w;
    }
    st = mpi_agree(st, t->comm, err, errlen);
    if (st == PC_OK) st = grad_sync_chunks_reduce(t->sync, t->nt, nchunks, err, errlen);
    if (st != PC_OK) return st;
    MPI_Allreduce(&mine, loss, 1, MPI_DOUBLE, MPI_SUM, t->comm);
    *rows_done += hi - lo;
    return PC_OK;
}

static pc_status run_epoch(trainer *t, int64_t epoch, double *train_loss, double *rows_per_s, char *err,
                           size_t errlen)
{
    const train_config *c = t->cfg;
    shuffle(t->perm, t->train.rows, c->seed, epoch, c->deterministic ? -1 : t->rank);
    net_dead_reset(t->nt);
    double started = MPI_Wtime(), sum = 0;
    int64_t rows = 0, counted = 0;
    double *norms = calloc((size_t)t->ndense + 1, sizeof(double));
    if (norms == NULL) return oom(err, errlen);
    pc_status st = PC_OK, rec = PC_OK;
    for (int64_t s = 0; st == PC_OK && s < t->steps_per_epoch; s++) {
        double loss = 0;
        st = c->deterministic ? step_chunks(t, s, &loss, &rows, err, errlen)
                              : step_allreduce(t, s, &loss, &rows, err, errlen);
        if (st != PC_OK) break;
        double lr = lr_at(t, t->step);
        for (int k = 0; t->rank == 0 && k < t->ndense; k++)
            norms[k] = t->dense_param[k] >= 0 ? optim_param_grad_norm(t->nt, t->dense_param[k]) : NAN;
        double gnorm = optim_clip_global_norm(t->nt, c->clip_norm);
        optim_step(t->opt, t->nt, lr);
        /* rank 0 alone records; a failure to (out of memory) is agreed at the epoch's end */
        if (t->rank == 0 && rec == PC_OK) rec = train_curves_add_step(&t->curves, epoch, loss, lr, gnorm, norms, err, errlen);
        sum += loss;
        counted++;
        t->step++;
    }
    free(norms);
    if (st == PC_OK) st = mpi_agree(rec, t->comm, err, errlen);
    *train_loss = counted ? sum / (double)counted : NAN;
    double secs = MPI_Wtime() - started;
    *rows_per_s = secs > 0 ? (double)rows / secs : 0;
    return st;
}

/* Dead-unit shares of the epoch: a unit is dead when no rank saw it fire, so the global share
 * is at most the smallest rank's; that bound is what is reported. */
static void dead_shares(trainer *t, double *dead)
{
    for (int k = 0; k < t->ndense; k++) {
        double d = net_dead_share(t->nt, t->dense_layer[k]);
        dead[k] = d < 0 ? 2.0 : d; /* no rows or not a ReLU: neutral for MIN */
    }
    MPI_Allreduce(MPI_IN_PLACE, dead, t->ndense, MPI_DOUBLE, MPI_MIN, t->comm);
    for (int k = 0; k < t->ndense; k++)
        if (dead[k] > 1.5) dead[k] = -1;
}

static pc_status snapshot(trainer *t, bool restore, char *err, size_t errlen)
{
    int np = net_param_count(t->nt);
    int64_t total = 0;
    for (int i = 0; i < np; i++) {
        net_param p;
        net_param_get(t->nt, i, &p);
        total += p.count;
    }
    if (t->best == NULL && (t->best = malloc((size_t)total * sizeof(float) + 1)) == NULL) return oom(err, errlen);
    int64_t at = 0;
    for (int i = 0; i < np; i++) {
        net_param p;
        net_param_get(t->nt, i, &p);
        if (restore) memcpy(p.value, t->best + at, (size_t)p.count * sizeof(float));
        else memcpy(t->best + at, p.value, (size_t)p.count * sizeof(float));
        at += p.count;
    }
    return PC_OK;
}

static pc_status train_loop(trainer *t, char *err, size_t errlen)
{
    const train_config *c = t->cfg;
    bool have_val = t->total_val > 0;
    int64_t since_best = 0;
    t->best_val = INFINITY;
    double *dead = calloc((size_t)t->ndense + 1, sizeof(double));
    if (dead == NULL) return oom(err, errlen);
    pc_status st = PC_OK;
    for (int64_t e = 0; st == PC_OK && e < c->epochs; e++) {
        double tl = NAN, rps = 0, vl = NAN, vm = NAN;
        double t0 = MPI_Wtime();
        st = run_epoch(t, e, &tl, &rps, err, errlen);
        if (st != PC_OK) break;
        dead_shares(t, dead);
        if (grad_sync_check_identical(t->sync, t->nt)) t->resynced = true;
        if (have_val) st = validate(t, &vl, &vm, err, errlen);
        if (st != PC_OK) break;
        if (t->rank == 0) {
            st = train_curves_add_epoch(&t->curves, tl, vl, vm, rps, MPI_Wtime() - t0, dead, err, errlen);
            char val[160] = "";
            if (have_val) snprintf(val, sizeof val, "  val loss %.5f  val %s %.4f", vl, t->metric_name, vm);
            fprintf(stderr, "precast train: epoch %lld/%lld  train loss %.5f%s  %.0f rows/s  lr %.3g\n",
                    (long long)e + 1, (long long)c->epochs, tl, val, rps, lr_at(t, t->step > 0 ? t->step - 1 : 0));
        }
        st = mpi_agree(st, t->comm, err, errlen);
        /* the epoch whose weights are exported: the best validation loss with early stopping,
         * else the last */
        bool better = have_val && isfinite(vl) && vl < t->best_val;
        if (better) t->best_val = vl;
        if (c->early_stopping > 0) {
            if (better) {
                t->best_epoch = e + 1;
                since_best = 0;
                if (st == PC_OK) st = snapshot(t, false, err, errlen);
            } else if (++since_best >= c->early_stopping) {
                t->stopped_early = true;
                break;
            }
        } else {
            t->best_epoch = e + 1;
        }
        if (!isfinite(tl)) {
            t->stopped_nan = true; /* every later step would compute NaN too */
            break;
        }
    }
    free(dead);
    if (st == PC_OK && c->early_stopping > 0 && t->best != NULL) st = snapshot(t, true, err, errlen);
    if (st == PC_OK && t->best_epoch == 0) t->best_epoch = t->rank == 0 ? t->curves.nepochs : 1;
    return st;
}

/* ---- outputs -------------------------------------------------------------------------------- */

static pc_status export_onnx(trainer *t, char *err, size_t errlen)
{
    int nl = net_layer_count(t->nt);
    onnx_write_layer *layers = calloc((size_t)nl + 1, sizeof *layers);
    onnx_write_embed *embeds = calloc((size_t)t->layout.nembeds + 1, sizeof *embeds);
    if (!layers || !embeds) {
        free(layers);
        free(embeds);
        return oom(err, errlen);
    }
    for (int i = 0; i < nl; i++) {
        net_layer l;
        net_layer_get(t->nt, i, &l);
        onnx_write_layer *w = &layers[i];
        w->in = l.in;
        w->out = l.out;
        if (l.kind == NET_LAYER_DENSE) {
            w->kind = TRAIN_LAYER_DENSE;
            w->act = (train_activation)l.act;
            w->alpha = l.alpha;
            w->weight = l.weight;
            w->bias = l.bias;
        } else if (l.kind == NET_LAYER_BATCHNORM) {
            w->kind = TRAIN_LAYER_BATCHNORM;
            w->bn_scale = l.weight;
            w->bn_bias = l.bias;
            w->bn_mean = l.running_mean;
            w->bn_var = l.running_var;
            w->bn_eps = l.eps;
        } else {
            w->kind = TRAIN_LAYER_DROPOUT;
        }
    }
    for (int e = 0; e < t->layout.nembeds; e++) {
        char pname[NET_NAME_MAX + 8];
        snprintf(pname, sizeof pname, "embed.%s", t->layout.embed_names[e]);
        net_param p;
        net_param_get(t->nt, net_param_find(t->nt, pname), &p);
        embeds[e] = (onnx_write_embed){t->layout.embed_names[e], t->layout.embed_vocab[e], t->layout.embed_dim[e],
                                       t->layout.embed_bag[e], p.value};
    }
    train_head h = t->cfg->head;
    char doc[1024];
    snprintf(doc, sizeof doc, "precast train %s: %lld dense features (input 'features', columns in the order of the "
             "training file's header), head %s", t->cfg->job_file, (long long)t->layout.dense_width, train_head_name(h));
    onnx_write_spec spec = {
        .dense_input = "features",
        .dense_width = t->layout.dense_width,
        .embeds = embeds,
        .nembeds = t->layout.nembeds,
        .layers = layers,
        .nlayers = nl,
        .final = (h == TRAIN_HEAD_SOFTMAX || h == TRAIN_HEAD_SAMPLED_SOFTMAX) ? ONNX_WRITE_FINAL_SOFTMAX
               : h == TRAIN_HEAD_REGRESSION                                  ? ONNX_WRITE_FINAL_NONE
                                                                             : ONNX_WRITE_FINAL_SIGMOID,
        .output = h == TRAIN_HEAD_REGRESSION ? "values" : "probabilities",
        .doc = doc,
    };
    pc_status s = onnx_write_file(&spec, t->cfg->model_path, err, errlen);
    free(layers);
    free(embeds);
    return s;
}

/* MODEL.labels beside the model, when the class names live elsewhere (data.labels). */
static pc_status write_model_labels(trainer *t, char *err, size_t errlen)
{
    if (t->layout.nclasses == 0) return PC_OK;
    size_t n = strlen(t->cfg->model_path);
    char *path = malloc(n + 8);
    if (path == NULL) return oom(err, errlen);
    if (n > 5 && strcmp(t->cfg->model_path + n - 5, ".onnx") == 0) n -= 5;
    snprintf(path, n + 8, "%.*s.labels", (int)n, t->cfg->model_path);
    pc_status s = PC_OK;
    if (strcmp(path, t->cfg->labels_path) != 0) {
        FILE *f = fopen(path, "w");
        if (f == NULL) s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
        for (int64_t i = 0; f && i < t->layout.nclasses; i++) fprintf(f, "%s\n", t->layout.classes[i]);
        if (f && fclose(f) != 0) s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: write failed", path);
    }
    free(path);
    return s;
}

/* The feature statistics of the rows read (training and validation). Collective. Returns a
 * note when the file could not be made (the training result stands without it). */
static const char *write_stats(trainer *t, char *err, size_t errlen)
{
    const data_layout *l = &t->layout;
    int nids = 0;
    const char *ids[NET_MAX_EMBEDS];
    int which[NET_MAX_EMBEDS];
    for (int e = 0; e < l->nembeds; e++)
        if (t->cfg->embeds[e].hash_buckets == 0) { /* hashed ids are buckets, not the ids written */
            which[nids] = e;
            ids[nids++] = l->embed_names[e];
        }
    featstats *fs = NULL;
    pc_status s = featstats_create((const char *const *)l->feature_names, l->dense_width, ids, NULL, nids, &fs, err,
                                   errlen);
    s = mpi_agree(s, t->comm, err, errlen);
    /* deterministic runs hold every row on every rank: count them once */
    bool mine = !t->cfg->deterministic || t->rank == 0;
    const dataset *sets[2] = {&t->train, &t->val};
    for (int pass = 0; s == PC_OK && pass < 2; pass++) {
        for (int k = 0; mine && k < 2; k++) {
            if (sets[k]->rows == 0) continue;
            if (l->dense_width > 0) featstats_add_dense(fs, 0, sets[k]->dense, sets[k]->rows, l->dense_width);
            for (int j = 0; pass == 0 && s == PC_OK && j < nids; j++)
                s = featstats_add_ids_i64(fs, j, sets[k]->ids[which[j]], sets[k]->rows * l->embed_bag[which[j]], err,
                                          errlen);
        }
        s = mpi_agree(s, t->comm, err, errlen);
        if (s == PC_OK && pass == 0) s = featstats_profile_pass2(fs, t->comm, err, errlen);
    }
    if (s == PC_OK) s = featstats_merge(fs, t->comm, err, errlen);
    if (s == PC_OK && t->rank == 0) s = featstats_write_json(fs, t->cfg->stats_path, err, errlen);
    s = mpi_agree(s, t->comm, err, errlen);
    featstats_free(fs);
    return s == PC_OK ? NULL : err;
}

/* Rank 0: test rows, predictions file, report, curves, plot. */
static pc_status finish(trainer *t, const char *stats_note, char *err, size_t errlen)
{
    const train_config *c = t->cfg;
    train_summary sm = {.cfg = c, .ranks = t->nranks, .train_rows = t->total_train, .val_rows = t->total_val,
                        .dense_width = t->layout.dense_width, .classes = t->layout.nclasses,
                        .outputs = t->layout.outputs, .metric_name = t->metric_name, .best_epoch = t->best_epoch,
                        .stopped_early = t->stopped_early, .stopped_nan = t->stopped_nan,
                        .test_loss = NAN, .test_metric = NAN, .test_accuracy = NAN, .test_top10 = NAN,
                        .stats_note = stats_note,
                        .weights_resynced = t->resynced};
    for (int i = 0; i < net_param_count(t->nt); i++) {
        net_param p;
        net_param_get(t->nt, i, &p);
        if (p.grad) sm.params += p.count;
    }
    sm.seconds = MPI_Wtime() - t->started;
    double rows_total = 0, secs = 0;
    for (int64_t e = 0; e < t->curves.nepochs; e++) {
        rows_total += t->curves.rows_per_s[e] * t->curves.seconds[e];
        secs += t->curves.seconds[e];
    }
    sm.rows_per_s = secs > 0 ? rows_total / secs : 0;
    pc_status s = PC_OK;
    FILE *pred = NULL;
    if (c->predictions_path && *c->predictions_path) {
        pred = fopen(c->predictions_path, "w");
        if (pred == NULL) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", c->predictions_path, strerror(errno));
        bool cls = c->head == TRAIN_HEAD_SOFTMAX || c->head == TRAIN_HEAD_SAMPLED_SOFTMAX || c->head == TRAIN_HEAD_ONE_VS_ALL;
        fputs(cls ? "key,label,p,truth\n" : "key,outputs...\n", pred);
    }
    if (c->ntest_paths > 0) {
        s = dataset_load_test(c, &t->layout, &t->test, err, errlen);
        eval_sums es = {0};
        if (s == PC_OK) s = eval_rows(t, &t->test, 0, 1, &es, pred, err, errlen);
        sm.test_rows = t->test.rows;
        if (s == PC_OK && es.rows > 0) {
            sm.test_loss = es.loss / es.rows;
            sm.test_metric = metric_of(t, &es);
            if (c->head == TRAIN_HEAD_SOFTMAX || c->head == TRAIN_HEAD_ONE_VS_ALL || c->head == TRAIN_HEAD_SAMPLED_SOFTMAX) {
                sm.test_accuracy = es.top1 / es.rows;
                sm.test_top10 = es.top10 / es.rows;
            }
        }
    } else if (pred != NULL && s == PC_OK) {
        eval_sums es = {0};
        s = eval_rows(t, &t->val, 0, 1, &es, pred, err, errlen); /* rank 0's validation rows */
    }
    if (pred && fclose(pred) != 0 && s == PC_OK)
        s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: write failed", c->predictions_path);
    if (s != PC_OK) return s;
    diag_curves dc;
    train_curves_diag(&t->curves, t->total_val > 0, &dc);
    diag_finding found[MAX_FINDINGS];
    int nfound = diag_run(&dc, found, MAX_FINDINGS);
    if (nfound > MAX_FINDINGS) nfound = MAX_FINDINGS;
    if ((s = train_curves_write_csv(&t->curves, c->curves_path, err, errlen)) != PC_OK) return s;
    if ((s = train_report_write(&sm, &t->curves, found, nfound, err, errlen)) != PC_OK) return s;
    char why[512];
    if (c->plot_path[0] && !train_plot(&t->curves, c->curves_path, c->plot_path, why, sizeof why))
        fprintf(stderr, "precast train: warning: no plot: %s\n", why);
    if (isfinite(sm.test_metric))
        fprintf(stderr, "precast train: test rows %lld: loss %.5f, %s %.4f\n", (long long)sm.test_rows, sm.test_loss,
                t->metric_name, sm.test_metric);
    for (int i = 0; i < nfound; i++)
        fprintf(stderr, "precast train: diagnostic: %s: %s\n", diag_name(found[i].kind), found[i].evidence);
    printf("precast train: %s: %lld epochs, exported epoch %lld%s, %lld training rows, %.2f s; wrote %s (report %s)\n",
           c->name, (long long)t->curves.nepochs, (long long)t->best_epoch, t->stopped_early ? " (early stopping)" : "",
           (long long)t->total_train, sm.seconds, c->model_path, c->report_path);
    return PC_OK;
}

/* ---- the command ---------------------------------------------------------------------------- */

static pc_status setup(trainer *t, char *err, size_t errlen)
{
    const train_config *c = t->cfg;
    pc_status s = dataset_load(c, t->comm, &t->layout, &t->train, &t->val, &t->load, err, errlen);
    if (s != PC_OK) return s;
    int64_t mine[2] = {t->train.rows, t->val.rows};
    if (c->deterministic) {
        t->total_train = mine[0];
        t->total_val = mine[1];
    } else {
        MPI_Allreduce(MPI_IN_PLACE, mine, 2, MPI_INT64_T, MPI_SUM, t->comm);
        t->total_train = mine[0];
        t->total_val = mine[1];
    }
    t->rank_rows = calloc((size_t)t->nranks, sizeof(int64_t));
    t->perm = malloc((size_t)t->train.rows * sizeof(int64_t) + 1);
    if (!t->rank_rows || !t->perm) s = oom(err, errlen);
    if ((s = mpi_agree(s, t->comm, err, errlen)) != PC_OK) return s;
    MPI_Allgather(&t->train.rows, 1, MPI_INT64_T, t->rank_rows, 1, MPI_INT64_T, t->comm);
    t->steps_per_epoch = (t->total_train + c->batch_rows - 1) / c->batch_rows;
    net_spec spec;
    s = make_spec(t, &spec, err, errlen);
    int64_t batch = c->deterministic ? (c->micro_rows < c->batch_rows ? c->micro_rows : c->batch_rows) : c->batch_rows;
    if (s == PC_OK) s = net_create(&spec, batch, &t->nt, err, errlen);
    optim_config oc;
    optim_config_init(&oc, c->optimizer == TRAIN_OPT_SGD ? OPTIM_SGD : OPTIM_ADAM);
    oc.lr = c->learning_rate;
    oc.momentum = c->optimizer == TRAIN_OPT_SGD ? c->momentum : 0;
    oc.beta1 = c->beta1;
    oc.beta2 = c->beta2;
    oc.eps = c->eps;
    oc.l2 = c->l2;
    oc.lazy_sparse = c->lazy_sparse;
    if (s == PC_OK) s = optim_create(&oc, t->nt, &t->opt, err, errlen);
    if (s == PC_OK) s = grad_sync_create(t->nt, t->comm, &t->sync, err, errlen);
    if (s == PC_OK) s = find_dense_layers(t, err, errlen);
    t->metric_name = c->head == TRAIN_HEAD_REGRESSION ? "mse"
                   : c->head == TRAIN_HEAD_SAMPLED_SOFTMAX ? "top10_recall"
                                                           : "accuracy";
    s = mpi_agree(s, t->comm, err, errlen);
    if (s == PC_OK && t->rank == 0)
        fprintf(stderr, "precast train: %lld training rows, %lld validation rows on %d rank%s; %lld steps of %lld rows "
                "per epoch; %lld features, %lld outputs\n", (long long)t->total_train, (long long)t->total_val,
                t->nranks, t->nranks == 1 ? "" : "s", (long long)t->steps_per_epoch, (long long)c->batch_rows,
                (long long)t->layout.dense_width, (long long)t->layout.outputs);
    return s;
}

static void trainer_clear(trainer *t)
{
    optim_free(t->opt);
    grad_sync_free(t->sync);
    net_free(t->nt);
    dataset_free(&t->train);
    dataset_free(&t->val);
    dataset_free(&t->test);
    data_layout_free(&t->layout);
    if (t->rank == 0) train_curves_free(&t->curves);
    free(t->rank_rows);
    free(t->perm);
    free(t->dense_layer);
    free(t->dense_param);
    free(t->best);
    train_config_free(t->cfg);
}

/* Creates the model's folder (and its parents) so that hours of training do not end in
 * "cannot create"; an existing folder that cannot be written to is found here too. */
static pc_status make_output_dir(const char *model_path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) snprintf(dir, sizeof dir, ".");
    else *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", dir, strerror(errno));
    if (access(dir, W_OK) != 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot write the model there: %s", dir, strerror(errno));
    return PC_OK;
}

static pc_status run_training(trainer *t, const char *job, char **sets, int nsets, char *err, size_t errlen)
{
    pc_status s = train_config_load(job, sets, nsets, &t->cfg, err, errlen);
    if (s == PC_OK && t->rank == 0) s = make_output_dir(t->cfg->model_path, err, errlen);
    if ((s = mpi_agree(s, t->comm, err, errlen)) != PC_OK) return s;
    if ((s = setup(t, err, errlen)) != PC_OK) return s;
    if ((s = train_loop(t, err, errlen)) != PC_OK) return s;
    if (t->rank == 0) {
        s = export_onnx(t, err, errlen);
        if (s == PC_OK) s = write_model_labels(t, err, errlen);
    }
    if ((s = mpi_agree(s, t->comm, err, errlen)) != PC_OK) return s;
    char note[PC_ERRLEN];
    const char *why = write_stats(t, note, sizeof note);
    if (why != NULL && t->rank == 0) fprintf(stderr, "precast train: warning: no feature statistics: %s\n", why);
    if (t->rank == 0) s = finish(t, why, err, errlen);
    return mpi_agree(s, t->comm, err, errlen);
}

int cmd_train(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    static const struct option opts[] = {{"set", required_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
    char **sets = calloc((size_t)argc + 1, sizeof(char *));
    int nsets = 0, c;
    if (sets == NULL) return PC_ERR_INTERNAL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's') {
            sets[nsets++] = optarg;
        } else {
            usage(stderr);
            free(sets);
            return PC_ERR_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "precast train: expected one job file\n");
        usage(stderr);
        free(sets);
        return PC_ERR_USAGE;
    }
    const char *job = argv[optind];
    MPI_Init(&argc, &argv);
    trainer t = {.comm = MPI_COMM_WORLD};
    MPI_Comm_rank(t.comm, &t.rank);
    MPI_Comm_size(t.comm, &t.nranks);
    t.started = MPI_Wtime();
    char err[PC_ERRLEN] = "";
    pc_status s = run_training(&t, job, sets, nsets, err, sizeof err);
    if (s != PC_OK && t.rank == 0) fprintf(stderr, "precast: %s\n", err);
    trainer_clear(&t);
    free(sets);
    MPI_Finalize();
    return (int)s;
}
