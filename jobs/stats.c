/*
 * stats.c — `precast stats DATA.csv... --job JOB.ini [-o model.stats.json]`: the training
 * statistics (mapper/featstats.h) of a data set, for input drift checks of a model trained
 * elsewhere (docs/DRIFT.md).
 *
 * The rows go through the job's own map loop (mapper/map.h) with a PROFILE sketch attached, so
 * the columns, their parsing, hashing and bad-row handling are exactly what `precast run`
 * sketches at run time: statistics of a data set compare as zero drift with a run over the
 * same data.  The loop runs twice (the histogram's range is known after the first pass); the
 * model's forward pass runs too (the map loop's shape), which costs time but no correctness.
 * Under mpirun every rank maps its byte range; the merge is exact, so the file's bytes do not
 * depend on the number of ranks.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "jobs/commands.h"
#include "jobs/drift.h"
#include "jobs/work.h"
#include "jobs/job.h"
#include "kernels/model.h"
#include "mapper/featstats.h"
#include "mapper/head.h"
#include "mapper/map.h"
#include "mapper/split.h"
#include "reducer/agree.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast stats DATA.csv... --job JOB.ini [-o OUT.stats.json] [--set section.key=value]...\n"
            "       mpirun -np N precast stats ...\n"
            "\n"
            "Writes the feature statistics of DATA (the training data) that input.drift compares\n"
            "tonight's rows with: per feature count, missing, mean, std, min, max and a 20-bin\n"
            "histogram; per id column the top ids and the vocabulary.  The job file says which\n"
            "columns feed the model (its [input] and the model's inputs); its input.paths are\n"
            "replaced by DATA.  OUT defaults to input.drift_stats (model.onnx -> model.stats.json).\n"
            "\n"
            "Exit status: 0 written, 64 usage, 65 bad rows (input.bad_rows = fail), 66 input\n"
            "missing, 73/74 cannot write OUT, 78 job or model rejected.\n");
}

typedef struct stats_state {
    MPI_Comm comm;
    int rank, nranks;
    job_config *cfg;
    model *m;
    head *h;
    split_plan *plan;
    featstats *fs;
    int64_t rows, rejected;
} stats_state;

static pc_status discard(void *ctx, const char *key, size_t klen, const char *val, size_t vlen, int32_t file,
                         int64_t line, char *err, size_t errlen)
{
    (void)ctx, (void)key, (void)klen, (void)val, (void)vlen, (void)file, (void)line, (void)err, (void)errlen;
    return PC_OK;
}

static pc_status skip_row(void *ctx, int32_t file, int64_t line, int64_t offset, const char *reason,
                          const char *message, const char *raw, size_t raw_len, char *err, size_t errlen)
{
    (void)ctx, (void)file, (void)line, (void)offset, (void)reason, (void)message, (void)raw, (void)raw_len;
    (void)err, (void)errlen;
    return PC_OK;
}

/* Plans the byte ranges over the ranks and resolves record starts (as precast run). Collective. */
static pc_status plan(stats_state *st, char *err, size_t errlen)
{
    split_options opts = {.nparts = st->nranks, .split_bytes = st->cfg->split_mb << 20,
                          .segments_per_part = SPLIT_SEGMENTS_PER_PART};
    return work_plan_splits(st->comm, (const char *const *)st->cfg->input_patterns, st->cfg->ninputs, &opts,
                            &st->plan, err, errlen);
}

/* Every rank loads the model (small next to the data) and makes the sketch. Collective. */
static pc_status setup(stats_state *st, char *err, size_t errlen)
{
    pc_status s = model_load_file(st->cfg->model_path, st->cfg->batch_rows, &st->m, err, errlen);
    if (s == PC_OK) s = map_head_create(st->m, &st->cfg->head, &st->h, err, errlen);
    if (s == PC_OK) s = map_check_config(st->m, &st->cfg->map, err, errlen);
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    if ((s = plan(st, err, errlen)) != PC_OK) return s;
    drift_columns cols;
    const char *first = split_plan_file_count(st->plan) > 0 ? split_plan_file_path(st->plan, 0) : NULL;
    s = drift_columns_of(st->cfg, st->m, first, &cols, err, errlen);
    if (s == PC_OK)
        s = featstats_create((const char *const *)cols.dense, cols.ndense, (const char *const *)cols.ids, cols.kinds,
                             cols.nids, &st->fs, err, errlen);
    drift_columns_free(&cols);
    st->cfg->map.sketch = st->fs;
    st->cfg->map.reject = skip_row;
    return mpi_agree(s, st->comm, err, errlen);
}

/* One pass of this rank's segments through the map loop. Collective (agrees at the end). */
static pc_status map_pass(stats_state *st, char *err, size_t errlen)
{
    mapper *mp = NULL;
    map_stats ms;
    pc_status s = map_open(st->m, st->h, st->plan, &st->cfg->map, discard, st, &ms, &mp, err, errlen);
    int64_t first = split_plan_part_first(st->plan, st->rank), end = split_plan_part_first(st->plan, st->rank + 1);
    for (int64_t i = first; s == PC_OK && i < end; i++) s = map_segment(mp, i, err, errlen);
    if (s == PC_OK) s = map_close(mp, err, errlen);
    else map_abort(mp);
    st->rows = ms.rows_in;
    st->rejected = ms.rows_rejected;
    return mpi_agree(s, st->comm, err, errlen);
}

static pc_status stats_run(stats_state *st, const char *out, char *err, size_t errlen)
{
    pc_status s = setup(st, err, errlen);
    if (s == PC_OK) s = map_pass(st, err, errlen);
    if (s == PC_OK) s = featstats_profile_pass2(st->fs, st->comm, err, errlen);
    if (s == PC_OK) s = map_pass(st, err, errlen);
    if (s == PC_OK) s = featstats_merge(st->fs, st->comm, err, errlen);
    int64_t mine[2] = {st->rows, st->rejected}, all[2] = {0, 0};
    if (s == PC_OK) MPI_Reduce(mine, all, 2, MPI_INT64_T, MPI_SUM, 0, st->comm);
    if (s == PC_OK && st->rank == 0) s = featstats_write_json(st->fs, out, err, errlen);
    if (s == PC_OK && st->rank == 0)
        printf("precast: stats: %s: %lld rows (%lld rejected), %lld dense feature%s, %lld id column%s\n", out,
               (long long)all[0], (long long)all[1], (long long)featstats_dense_count(st->fs),
               featstats_dense_count(st->fs) == 1 ? "" : "s", (long long)featstats_id_count(st->fs),
               featstats_id_count(st->fs) == 1 ? "" : "s");
    return mpi_agree(s, st->comm, err, errlen);
}

/* The job's overrides plus input.paths = DATA (one assignment, paths space-separated).  DATA
 * paths relative to the working directory are made absolute: the job file's relative paths
 * resolve against its own folder. */
static char **overrides_with_paths(char **sets, int nsets, char **data, int ndata, int *n)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
    size_t len = strlen("input.paths=") + 1;
    for (int i = 0; i < ndata; i++) len += strlen(cwd) + strlen(data[i]) + 2;
    char *paths = malloc(len);
    char **all = calloc((size_t)nsets + 2, sizeof *all);
    if (paths == NULL || all == NULL) {
        free(paths), free(all);
        return NULL;
    }
    strcpy(paths, "input.paths=");
    for (int i = 0; i < ndata; i++) {
        if (strchr(data[i], ' ') != NULL) { /* input.paths splits at spaces */
            free(paths), free(all);
            return NULL;
        }
        if (data[i][0] != '/') {
            strcat(paths, cwd);
            strcat(paths, "/");
        }
        strcat(paths, data[i]);
        strcat(paths, i + 1 < ndata ? " " : "");
    }
    for (int i = 0; i < nsets; i++) all[i] = sets[i];
    all[nsets] = paths;
    *n = nsets + 1;
    return all;
}

int cmd_stats(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    static const struct option opts[] = {{"job", required_argument, NULL, 'j'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"set", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *job = NULL, *out = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, c;
    optind = 1;
    while (sets != NULL && (c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'j') job = optarg;
        else if (c == 'o') out = optarg;
        else if (c == 's') sets[nsets++] = optarg;
        else {
            usage(stderr);
            free(sets);
            return PC_ERR_USAGE;
        }
    }
    if (sets == NULL || job == NULL || optind >= argc) {
        if (sets != NULL) fprintf(stderr, "precast: stats: expected DATA files and --job JOB.ini\n");
        usage(stderr);
        free(sets);
        return PC_ERR_USAGE;
    }
    int nall = 0;
    char **all = overrides_with_paths(sets, nsets, argv + optind, argc - optind, &nall);
    if (all == NULL) {
        fprintf(stderr, "precast: stats: a DATA path with a space (or out of memory)\n");
        free(sets);
        return PC_ERR_USAGE;
    }
    MPI_Init(&argc, &argv);
    stats_state st = {.comm = MPI_COMM_WORLD};
    MPI_Comm_rank(st.comm, &st.rank);
    MPI_Comm_size(st.comm, &st.nranks);
    char err[PC_ERRLEN] = "";
    pc_status s = job_config_load(job, all, nall, &st.cfg, err, sizeof err);
    s = mpi_agree(s, st.comm, err, sizeof err);
    if (s == PC_OK) s = stats_run(&st, out ? out : st.cfg->drift_stats, err, sizeof err);
    if (s != PC_OK && st.rank == 0) fprintf(stderr, "precast: stats: %s\n", err);
    featstats_free(st.fs);
    split_plan_free(st.plan);
    head_free(st.h);
    model_close(st.m);
    job_config_free(st.cfg);
    free(all[nall - 1]);
    free(all);
    free(sets);
    MPI_Finalize();
    return (int)s;
}
