/*
 * run.c — `precast run JOB.ini`: the MPI driver wiring mapper → reducer → storage.
 *
 * Every phase ends with the ranks agreeing on its status (mpi_agree), so a failure anywhere
 * stops every rank at the same point and rank 0 prints the failing rank's message. Nothing is
 * published unless every rank's shard closed cleanly and the "nothing lost" check passed:
 * rows in = rows written + rows rejected, and the order-independent checksum of the pairs
 * computed at map time equals the checksum of a full scan of the written shards.
 */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "jobs/checkpoint.h"
#include "jobs/commands.h"
#include "jobs/diff.h"
#include "jobs/drift.h"
#include "jobs/job.h"
#include "jobs/lock.h"
#include "jobs/progress.h"
#include "jobs/report.h"
#include "jobs/work.h"
#include "kernels/model.h"
#include "mapper/featstats.h"
#include "mapper/head.h"
#include "mapper/map.h"
#include "mapper/split.h"
#include "reducer/agree.h"
#include "reducer/kv.h"
#include "reducer/shuffle.h"
#include "reducer/spill.h"
#include "storage/sha256.h"
#include "storage/table.h"

/* Largest piece of a broadcast: MPI counts are int. */
#define BCAST_CHUNK (1 << 30)

typedef struct run_state {
    MPI_Comm comm;
    int rank, nranks;
    job_config *cfg;
    model *m;
    head *h;
    split_plan *plan;
    kv_spill *local;       /* this rank's predictions, in map order (spills above its budget) */
    kv_spill *received;    /* this rank's key range after the shuffle (spills likewise) */
    kv_merge *merge;       /* received, in key order, while the shard is written */
    shuffle_stats shuffle;
    uint64_t map_checksum; /* sum of table_pair_hash over mapped pairs */
    map_stats stats;       /* this rank's */
    map_stats total;       /* all ranks' */
    char staging[PATH_MAX];
    shard_info shard;
    char version[256];
    double started;
    int64_t segments_done; /* input segments this rank mapped */
    int64_t spilled_bytes; /* written to spill files by this rank */
    int64_t dup_dropped;   /* duplicate rows not written (output.duplicates = first | last) */
    uint64_t dup_dropped_sum;
    int64_t rows_written;  /* all ranks: rows in the written shards (verified by a scan) */
    int64_t shard_rows;    /* this rank's shard, once scanned (-1 before): what the report
                              counts as written, duplicates dropped by policy excluded */
    int64_t duplicates_dropped; /* all ranks */
    FILE *rejects;         /* this rank's part of the rejects file, once a row was skipped */
    int64_t bytes_read;    /* input bytes of the segments this rank mapped */
    double wall_start;     /* epoch seconds at start, for the report */
    job_lock *lock;        /* rank 0: the job's lock while it runs */
    checkpoint *ckpt;      /* per-segment map outputs (run.checkpoint), or NULL */
    bool ckpt_active;      /* a segment's outputs are being written to ckpt */
    bool resume;           /* --resume: reuse finished segments' outputs */
    int64_t segments_reused;
    char model_sha256[SHA256_HEX_BYTES]; /* rank 0: of the model file's bytes */
    table_diff diff;       /* rank 0: against the previous version, when have_diff */
    bool have_diff;
    bool keep_staging;     /* a version blocked by output.max_changed stays staged */
    char **sets;           /* the --set overrides, for the manifest */
    int nsets;
    struct {
        double setup, map, shuffle, write, publish; /* seconds of this rank in each stage */
    } sec;
    /* input.drift (docs/DRIFT.md) */
    featstats *drift_ref;  /* the training statistics (every rank), or NULL */
    featstats *drift_in;   /* this rank's sketch of its rows; merged on rank 0 */
    featstats *drift_out;  /* this rank's output sketch; merged on rank 0 */
    drift_result drift;    /* rank 0: tonight against the training statistics */
    bool have_drift;       /* rank 0: drift holds a comparison */
    char *drift_json;      /* rank 0: the report's "drift" value */
    char *drift_metrics;   /* rank 0: its Prometheus samples */
    bool verbose;          /* --verbose: a per-rank table on stderr at the end */
    bool check_only;       /* --check: validate the job and exit */
} run_state;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast run JOB.ini [--set section.key=value]...\n"
            "       mpirun -np N precast run JOB.ini\n"
            "\n"
            "Runs a batch-prediction job: every rank reads its byte range of the inputs, runs\n"
            "the model, the predictions are sorted by id across ranks and written as one\n"
            "LevelDB shard per rank; the table's new version is published atomically.\n"
            "\n"
            "  --set section.key=value   override a job-file key (repeatable)\n"
            "  --resume                  after a killed run: reuse the map outputs of the\n"
            "                            segments it finished (run.checkpoint, on by default)\n"
            "  --check                   validate and exit: job file, model, the first rows\n"
            "                            through the model and head, table dir writable\n"
            "  -v, --verbose             at the end, a table per rank on stderr: segments,\n"
            "                            rows, seconds per stage, peak memory\n"
            "  -h, --help                this help\n"
            "\n"
            "Exit status: 0 published, 64 usage, 65 bad input rows, 66 input missing,\n"
            "70 internal error, 73 cannot create the output, 74 I/O error, 75 another run of\n"
            "this job holds its lock, 78 job or model rejected. The cause is printed on stderr.\n");
}

/* Broadcasts a byte buffer from rank 0 in chunks; *len and *buf are set on other ranks.
 * Collective. */
static pc_status bcast_bytes(run_state *st, char **buf, int64_t *len, char *err, size_t errlen)
{
    MPI_Bcast(len, 1, MPI_INT64_T, 0, st->comm);
    pc_status s = PC_OK;
    if (st->rank != 0 && (*buf = malloc((size_t)*len + 1)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for %lld model bytes", (long long)*len);
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    for (int64_t off = 0; off < *len; off += BCAST_CHUNK) {
        int n = (int)(*len - off < BCAST_CHUNK ? *len - off : BCAST_CHUNK);
        MPI_Bcast(*buf + off, n, MPI_BYTE, 0, st->comm);
    }
    return PC_OK;
}

/* Rank 0 reads the model once and broadcasts its bytes; every rank compiles its own plan.
 * Collective. */
static pc_status load_model(run_state *st, char *err, size_t errlen)
{
    char *bytes = NULL;
    size_t size = 0;
    pc_status s = st->rank == 0 ? model_file_read(st->cfg->model_path, &bytes, &size, err, errlen) : PC_OK;
    int64_t len = (int64_t)size;
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    if (st->rank == 0 && s == PC_OK) sha256_hex(bytes, (size_t)len, st->model_sha256);
    if ((s = bcast_bytes(st, &bytes, &len, err, errlen)) == PC_OK) {
        s = model_load(bytes, (size_t)len, st->cfg->model_path, st->cfg->batch_rows, &st->m, err, errlen);
        if (s == PC_OK && model_output_count(st->m) < 1)
            s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: model has no output", st->cfg->model_path);
        if (s == PC_OK) s = map_head_create(st->m, &st->cfg->head, &st->h, err, errlen);
        if (s == PC_OK) s = map_check_config(st->m, &st->cfg->map, err, errlen);
        if (s != PC_OK && strncmp(err, st->cfg->model_path, strlen(st->cfg->model_path)) != 0) {
            char tmp[PC_ERRLEN];
            snprintf(tmp, sizeof tmp, "%s", err);
            pc_err(err, errlen, s, "%s: %s", st->cfg->model_path, tmp);
        }
    }
    free(bytes);
    return mpi_agree(s, st->comm, err, errlen);
}

/* Plans the byte ranges, every rank alike, each segment knowing where its first record
 * starts. Collective. */
static pc_status plan_splits(run_state *st, char *err, size_t errlen)
{
    split_options opts = {.nparts = st->nranks, .split_bytes = st->cfg->split_mb << 20,
                          .segments_per_part = SPLIT_SEGMENTS_PER_PART};
    return work_plan_splits(st->comm, (const char *const *)st->cfg->input_patterns, st->cfg->ninputs, &opts,
                            &st->plan, err, errlen);
}

/* Path of rank r's part of the rejects file. */
static void rejects_part(const run_state *st, int r, char *path, size_t cap)
{
    snprintf(path, cap, "%s.rank-%d", st->cfg->rejects_path, r);
}

/* bad_rows = skip: one JSON line per skipped row into this rank's part of the rejects file,
 * opened on the first bad row (so a clean night writes nothing). */
static pc_status reject_row(void *ctx, int32_t file, int64_t line_no, int64_t offset, const char *reason,
                            const char *message, const char *raw, size_t raw_len, char *err, size_t errlen)
{
    run_state *st = ctx;
    char path[PATH_MAX + 32];
    rejects_part(st, st->rank, path, sizeof path);
    if (st->rejects == NULL) {
        /* The default rejects file lives in the table dir, which a first run has not made. */
        char dir[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s", st->cfg->rejects_path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0777);
        }
        if ((st->rejects = fopen(path, "w")) == NULL)
            return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    }
    const char *fpath = split_plan_file_path(st->plan, file);
    char *q1 = malloc(json_quote(NULL, 0, fpath, strlen(fpath)) + 1);
    char *q2 = malloc(json_quote(NULL, 0, message, strlen(message)) + 1);
    char *q3 = malloc(json_quote(NULL, 0, raw ? raw : "", raw ? raw_len : 0) + 1);
    pc_status s = q1 && q2 && q3 ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) {
        json_quote(q1, SIZE_MAX, fpath, strlen(fpath));
        json_quote(q2, SIZE_MAX, message, strlen(message));
        json_quote(q3, SIZE_MAX, raw ? raw : "", raw ? raw_len : 0);
        size_t cap = strlen(q1) + strlen(q2) + strlen(q3) + strlen(reason) + 128;
        char *line = malloc(cap);
        int n = line ? snprintf(line, cap, "{\"file\": %s, \"line\": %lld, \"offset\": %lld, \"reason\": \"%s\", "
                                           "\"message\": %s, \"row\": %s}\n",
                                q1, (long long)line_no, (long long)offset, reason, q2, raw ? q3 : "null")
                     : -1;
        if (n < 0) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        else if (fwrite(line, 1, (size_t)n, st->rejects) != (size_t)n)
            s = pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(errno));
        else if (st->ckpt_active)
            s = checkpoint_reject(st->ckpt, line, (size_t)n, err, errlen);
        free(line);
    }
    free(q1);
    free(q2);
    free(q3);
    return s;
}

/* Rank 0: joins the ranks' parts into rejects_path.tmp, renames it over rejects_path, removes
 * the parts. With no bad row at all, an older rejects file is removed: it is not tonight's. */
static pc_status concat_rejects(run_state *st, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 32], part[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", st->cfg->rejects_path);
    if (st->total.rows_rejected == 0) {
        unlink(st->cfg->rejects_path);
        return PC_OK;
    }
    FILE *out = fopen(tmp, "w");
    if (out == NULL) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    pc_status s = PC_OK;
    char buf[65536];
    for (int r = 0; r < st->nranks; r++) {
        rejects_part(st, r, part, sizeof part);
        FILE *in = fopen(part, "r");
        if (in == NULL) continue; /* that rank had no bad row */
        size_t n;
        while (s == PC_OK && (n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n) s = pc_err(err, errlen, PC_ERR_IO, "%s: %s", tmp, strerror(errno));
        fclose(in);
        unlink(part);
    }
    if (fclose(out) != 0 && s == PC_OK) s = pc_err(err, errlen, PC_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (s == PC_OK && rename(tmp, st->cfg->rejects_path) != 0)
        s = pc_err(err, errlen, PC_ERR_IO, "%s: %s", st->cfg->rejects_path, strerror(errno));
    if (s != PC_OK) unlink(tmp);
    return s;
}

static pc_status emit_pair(void *ctx, const char *key, size_t klen, const char *val, size_t vlen,
                           int32_t file, int64_t line, char *err, size_t errlen)
{
    run_state *st = ctx;
    st->map_checksum += table_pair_hash(key, klen, val, vlen);
    pc_status s = kv_spill_append(st->local, key, klen, val, vlen, (kv_origin){file, line}, err, errlen);
    if (s == PC_OK && st->ckpt_active)
        s = checkpoint_pair(st->ckpt, key, klen, val, vlen, (kv_origin){file, line}, err, errlen);
    return s;
}

/* --resume: a finished segment's pairs and rejects, read back from its checkpoint. */
static pc_status reuse_pair(void *ctx, const char *key, size_t klen, const char *val, size_t vlen, kv_origin o,
                            char *err, size_t errlen)
{
    run_state *st = ctx;
    st->map_checksum += table_pair_hash(key, klen, val, vlen);
    return kv_spill_append(st->local, key, klen, val, vlen, o, err, errlen);
}

static pc_status reuse_rejects(void *ctx, const char *lines, size_t len, char *err, size_t errlen)
{
    run_state *st = ctx;
    char path[PATH_MAX + 32];
    rejects_part(st, st->rank, path, sizeof path);
    if (st->rejects == NULL && (st->rejects = fopen(path, "w")) == NULL)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    if (fwrite(lines, 1, len, st->rejects) != len) return pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(errno));
    return PC_OK;
}

/* Maps one segment, or with --resume reuses its checkpointed outputs; with checkpoints on,
 * seals the segment's outputs once it is done. */
static pc_status map_one_segment(run_state *st, mapper *mp, int64_t i, char *err, size_t errlen)
{
    if (st->ckpt != NULL && st->resume) {
        map_stats got;
        bool found = false;
        pc_status s = checkpoint_load(st->ckpt, i, reuse_pair, reuse_rejects, st, &got, &found, err, errlen);
        if (s != PC_OK) return s;
        if (found) {
            st->stats.rows_in += got.rows_in;
            st->stats.rows_emitted += got.rows_emitted;
            st->stats.rows_rejected += got.rows_rejected;
            st->stats.oov_ids += got.oov_ids;
            st->segments_reused++;
            return PC_OK;
        }
    }
    map_stats before = st->stats;
    pc_status s = st->ckpt ? checkpoint_begin(st->ckpt, i, err, errlen) : PC_OK;
    st->ckpt_active = st->ckpt != NULL && s == PC_OK;
    if (s == PC_OK) s = map_segment(mp, i, err, errlen);
    if (s == PC_OK && st->ckpt) s = map_flush(mp, err, errlen); /* the segment's outputs end here */
    st->ckpt_active = false;
    if (s == PC_OK && st->ckpt) {
        map_stats delta = {.rows_in = st->stats.rows_in - before.rows_in,
                           .rows_emitted = st->stats.rows_emitted - before.rows_emitted,
                           .rows_rejected = st->stats.rows_rejected - before.rows_rejected,
                           .oov_ids = st->stats.oov_ids - before.oov_ids};
        s = checkpoint_commit(st->ckpt, &delta, err, errlen);
    }
    return s;
}

/* How run.memory_mb is shared (reducer/shuffle.h): the local store and the received store
 * 40% each, the exchange's send and receive chunks 10% each. */
enum memory_share { MEMORY_SHARE_LOCAL = 40, MEMORY_SHARE_RECEIVED = 40, MEMORY_SHARE_CHUNK = 10 };

static size_t memory_share(const run_state *st, enum memory_share percent)
{
    return (size_t)st->cfg->memory_mb * (1u << 20) / 100 * (size_t)percent;
}

/* A spill store in run.spill_dir named after the job, so that a later run sweeps what a
 * killed one left. */
static pc_status open_spill(run_state *st, enum memory_share share, kv_spill **out, char *err, size_t errlen)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "precast-%s", st->cfg->name);
    return kv_spill_create(st->cfg->spill_dir, prefix, memory_share(st, share), out, err, errlen);
}

/* Removes run files a killed run of this job left in spill_dir. Collective: every rank
 * sweeps (spill_dir may be local to each host), then all wait, then stores are created. */
static pc_status sweep_spills(run_state *st, char *err, size_t errlen)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "precast-%s", st->cfg->name);
    pc_status s = kv_spill_sweep(st->cfg->spill_dir, prefix, NULL, err, errlen);
    return mpi_agree(s, st->comm, err, errlen);
}

/* The run's checkpoint key: a hash of what decides every segment's outputs — the model's
 * bytes, the job's settings and overrides, the input files' names, sizes and mtimes. */
static void checkpoint_key(const run_state *st, char hex[SHA256_HEX_BYTES])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, st->model_sha256, strlen(st->model_sha256));
    char *text = NULL;
    size_t len = 0;
    if (model_file_read(st->cfg->job_file, &text, &len, NULL, 0) == PC_OK) sha256_update(&c, text, len);
    free(text);
    for (int i = 0; i < st->nsets; i++) sha256_update(&c, st->sets[i], strlen(st->sets[i]) + 1);
    for (int i = 0; i < split_plan_file_count(st->plan); i++) {
        struct stat sb;
        const char *path = split_plan_file_path(st->plan, i);
        int64_t id[2] = {split_plan_file_size(st->plan, i), stat(path, &sb) == 0 ? (int64_t)sb.st_mtime : 0};
        sha256_update(&c, path, strlen(path) + 1);
        sha256_update(&c, id, sizeof id);
    }
    int64_t split = split_plan_split_bytes(st->plan);
    sha256_update(&c, &split, sizeof split);
    uint8_t digest[32];
    sha256_final(&c, digest);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* run.checkpoint: rank 0 clears old checkpoints unless --resume, computes the key and shares
 * it; every rank opens the dir. Collective. */
static pc_status open_checkpoints(run_state *st, char *err, size_t errlen)
{
    /* auto: large inputs, or a --resume (which then reuses whatever an earlier run left) */
    if (st->cfg->checkpoint_auto)
        st->cfg->checkpoint = st->resume || split_plan_total_size(st->plan) >= JOB_CHECKPOINT_AUTO_BYTES;
    if (!st->cfg->checkpoint) {
        if (st->resume) return mpi_agree(pc_err(err, errlen, PC_ERR_USAGE, "--resume needs run.checkpoint = true"),
                                         st->comm, err, errlen);
        return PC_OK;
    }
    char key[SHA256_HEX_BYTES] = "";
    if (st->rank == 0) {
        if (!st->resume) checkpoint_clear(st->cfg->checkpoint_dir);
        checkpoint_key(st, key);
    }
    MPI_Bcast(key, sizeof key, MPI_CHAR, 0, st->comm);
    MPI_Barrier(st->comm); /* cleared before anyone writes */
    pc_status s = checkpoint_open(st->cfg->checkpoint_dir, key, &st->ckpt, err, errlen);
    return mpi_agree(s, st->comm, err, errlen);
}

/* Test hook (PRECAST_TEST_CRASH=POINT:RANK): the rank kills itself with SIGKILL at the named
 * point, as a crash or an operator's kill -9 would, so that tests can show what survives:
 * mid_map (after the rank's second segment), after_map, mid_shuffle, mid_write, after_write
 * (every shard written and scanned), before_publish; storage/ adds before_current (between
 * the version's rename and CURRENT) and mid_retention (table.c, versions.c). */
static void crash_point(const run_state *st, const char *point)
{
    const char *v = getenv("PRECAST_TEST_CRASH");
    char name[64];
    int rank = -1;
    if (v != NULL && sscanf(v, "%63[a-z_]:%d", name, &rank) == 2 && rank == st->rank && strcmp(name, point) == 0)
        raise(SIGKILL);
}

/* Test hook (PRECAST_TEST_SLOW_RANK=R:MS): rank R sleeps MS milliseconds per segment, so a
 * test can show that a straggler holds the job back by about one segment, not by its share. */
static void test_slowdown(const run_state *st)
{
    const char *v = getenv("PRECAST_TEST_SLOW_RANK");
    int rank = -1, ms = 0;
    if (v != NULL && sscanf(v, "%d:%d", &rank, &ms) == 2 && rank == st->rank && ms > 0)
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}, NULL);
}

/* Maps segments as they are handed out by the work queue, until none is left. Collective. */
static pc_status map_phase(run_state *st, char *err, size_t errlen)
{
    work_queue *q = NULL;
    mapper *mp = NULL;
    pc_status s = open_spill(st, MEMORY_SHARE_LOCAL, &st->local, err, errlen);
    st->cfg->map.reject = reject_row;
    st->cfg->map.reject_ctx = st;
    if (s == PC_OK) s = map_open(st->m, st->h, st->plan, &st->cfg->map, emit_pair, st, &st->stats, &mp, err, errlen);
    pc_status qs = work_queue_open(st->comm, split_plan_segment_count(st->plan), &q, err, errlen);
    if (s == PC_OK) s = qs;
    int64_t nsegs = split_plan_segment_count(st->plan);
    progress *prog = NULL;
    if (st->rank == 0 && s == PC_OK)
        progress_create(stderr, split_plan_total_size(st->plan), isatty(2), MPI_Wtime(), &prog, NULL, 0);
    const split_segment *segs = split_plan_segments(st->plan);
    for (int64_t i; s == PC_OK && (i = work_queue_next(q)) < nsegs;) {
        test_slowdown(st);
        int64_t rows_before = st->stats.rows_in;
        s = map_one_segment(st, mp, i, err, errlen);
        st->segments_done++;
        if (st->segments_done == 2) crash_point(st, "mid_map");
        st->bytes_read += segs[i].end - segs[i].start;
        work_queue_report(q, st->stats.rows_in - rows_before, segs[i].end - segs[i].start);
        if (prog != NULL) {
            int64_t rows, bytes;
            work_queue_progress(q, &rows, &bytes);
            progress_update(prog, rows, bytes, MPI_Wtime());
        }
    }
    if (prog != NULL) {
        int64_t rows, bytes;
        work_queue_progress(q, &rows, &bytes);
        progress_finish(prog, rows, bytes, MPI_Wtime());
    }
    if (s == PC_OK) s = map_close(mp, err, errlen);
    else map_abort(mp);
    if (s != PC_OK && q != NULL) work_queue_cancel(q); /* the others stop taking work */
    work_queue_close(q);
    if (st->rejects != NULL && fclose(st->rejects) != 0 && s == PC_OK)
        s = pc_err(err, errlen, PC_ERR_IO, "%s: cannot write the rejects: %s", st->cfg->rejects_path, strerror(errno));
    st->rejects = NULL;
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    _Static_assert(sizeof(map_stats) == 5 * sizeof(int64_t), "map_stats is summed as 5 int64");
    MPI_Allreduce(&st->stats, &st->total, 5, MPI_INT64_T, MPI_SUM, st->comm);
    return PC_OK;
}

/* The rejects of every rank, in rank order, into the job's rejects file (replaced atomically);
 * then the error budget: more bad rows than input.max_bad_rows fails the job (65). Collective. */
static pc_status collect_rejects(run_state *st, char *err, size_t errlen)
{
    if (!st->cfg->map.skip_bad_rows) return PC_OK;
    pc_status s = PC_OK;
    if (st->rank == 0) s = concat_rejects(st, err, errlen);
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    int64_t bad = st->total.rows_rejected, in = st->total.rows_in;
    bool over = (st->cfg->max_bad_rows >= 0 && bad > st->cfg->max_bad_rows) ||
                (st->cfg->max_bad_share >= 0 && in > 0 && (double)bad > st->cfg->max_bad_share * (double)in);
    if (over)
        return pc_err(err, errlen, PC_ERR_DATA, "%lld bad rows of %lld exceed input.max_bad_rows (%s%s); they are in %s",
                      (long long)bad, (long long)in, st->cfg->max_bad_share >= 0 ? "" : "a count of ",
                      st->cfg->max_bad_share >= 0 ? "a share" : "rows", st->cfg->rejects_path);
    return PC_OK;
}

/* Sums the map counters and moves every pair to its rank's key range, in bounded memory:
 * splitters from every rank's reservoir sample, then rounds of at most chunk bytes.
 * Collective. */
static pc_status shuffle_phase(run_state *st, char *err, size_t errlen)
{
    kv_buffer *splitters = NULL;
    pc_status s = shuffle_pick_splitters(st->local, st->comm, &splitters, err, errlen); /* agreed */
    if (s != PC_OK) return s;
    s = mpi_agree(open_spill(st, MEMORY_SHARE_RECEIVED, &st->received, err, errlen), st->comm, err, errlen);
    crash_point(st, "mid_shuffle");
    if (s == PC_OK)
        s = shuffle_exchange(st->local, splitters, memory_share(st, MEMORY_SHARE_CHUNK), st->received, st->comm,
                             &st->shuffle, err, errlen); /* agreed inside */
    st->spilled_bytes += kv_spill_spilled_bytes(st->local);
    kv_spill_free(st->local);
    st->local = NULL;
    kv_free(splitters);
    if (s == PC_OK) s = kv_merge_open(st->received, &st->merge, err, errlen);
    return mpi_agree(s, st->comm, err, errlen);
}

/* One (key, value) pair of the sorted stream, with where it came from. Pointers are valid
 * until the next pair is taken. */
typedef struct pair {
    const char *key, *val;
    size_t klen, vlen;
    kv_origin origin;
} pair;

/* The next pair of this rank's key range, in order; false at the end or on an error (*s). */
static bool next_sorted(run_state *st, pair *p, pc_status *s, char *err, size_t errlen)
{
    kv_pair kp;
    bool eof = true;
    if ((*s = kv_merge_next(st->merge, &kp, &eof, err, errlen)) != PC_OK || eof) return false;
    *p = (pair){.key = kp.key, .val = kp.val, .klen = kp.klen, .vlen = kp.vlen, .origin = kp.origin};
    return true;
}

/* An owned copy of a pair (a merge's pointers die at its next call). */
typedef struct held_pair {
    char *key, *val;
    size_t klen, vlen, kcap, vcap;
    kv_origin origin;
} held_pair;

static pc_status hold(held_pair *h, const pair *p, char *err, size_t errlen)
{
    if (p->klen > h->kcap) {
        char *k = realloc(h->key, p->klen);
        if (k == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        h->key = k;
        h->kcap = p->klen;
    }
    if (p->vlen > h->vcap) {
        char *v = realloc(h->val, p->vlen);
        if (v == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        h->val = v;
        h->vcap = p->vlen;
    }
    if (p->klen) memcpy(h->key, p->key, p->klen);
    if (p->vlen) memcpy(h->val, p->val, p->vlen);
    h->klen = p->klen;
    h->vlen = p->vlen;
    h->origin = p->origin;
    return PC_OK;
}

static pair held_as_pair(const held_pair *h)
{
    return (pair){.key = h->key, .val = h->val, .klen = h->klen, .vlen = h->vlen, .origin = h->origin};
}

/* This rank's key range with duplicate ids resolved by output.duplicates: fail names the id
 * and both places; first / last keep the row that comes first / last in input order (file,
 * then line), whatever order the shuffle delivered them in. One pair is held back to see
 * whether the next has the same key. */
typedef struct unique_stream {
    held_pair pending, out;
    bool have;
    int64_t dropped;        /* duplicate rows not written */
    uint64_t dropped_sum;   /* their table_pair_hash, for the nothing-lost check */
} unique_stream;

static bool origin_before(kv_origin a, kv_origin b)
{
    return a.file < b.file || (a.file == b.file && a.line < b.line);
}

static bool next_unique(run_state *st, unique_stream *u, pair *out, pc_status *s, char *err, size_t errlen)
{
    pair p;
    for (;;) {
        bool got = next_sorted(st, &p, s, err, errlen);
        if (*s != PC_OK) return false;
        if (!got) {
            if (!u->have) return false;
            u->have = false;
            *out = held_as_pair(&u->pending);
            return true;
        }
        if (!u->have) {
            u->have = true;
            if ((*s = hold(&u->pending, &p, err, errlen)) != PC_OK) return false;
            continue;
        }
        if (kv_key_compare(u->pending.key, u->pending.klen, p.key, p.klen) == 0) {
            kv_origin a = u->pending.origin, b = p.origin;
            if (st->cfg->duplicates == DUPLICATES_FAIL) {
                if (origin_before(b, a)) a = p.origin, b = u->pending.origin;
                char quoted[256];
                json_quote(quoted, sizeof quoted, p.key, p.klen < 200 ? p.klen : 200);
                *s = pc_err(err, errlen, PC_ERR_DATA, "duplicate id %s: %s:%lld and %s:%lld", quoted,
                            split_plan_file_path(st->plan, a.file), (long long)a.line,
                            split_plan_file_path(st->plan, b.file), (long long)b.line);
                return false;
            }
            bool take_new = st->cfg->duplicates == DUPLICATES_LAST ? origin_before(a, b) : origin_before(b, a);
            const pair dropped = take_new ? held_as_pair(&u->pending) : p;
            u->dropped++;
            u->dropped_sum += table_pair_hash(dropped.key, dropped.klen, dropped.val, dropped.vlen);
            if (take_new && (*s = hold(&u->pending, &p, err, errlen)) != PC_OK) return false;
            continue;
        }
        /* A new key: hand out the held pair, hold this one. */
        if ((*s = hold(&u->out, &(pair){.key = u->pending.key, .val = u->pending.val, .klen = u->pending.klen,
                                        .vlen = u->pending.vlen, .origin = u->pending.origin},
                       err, errlen)) != PC_OK ||
            (*s = hold(&u->pending, &p, err, errlen)) != PC_OK)
            return false;
        *out = held_as_pair(&u->out);
        return true;
    }
}

static void unique_stream_done(run_state *st, unique_stream *u)
{
    st->dup_dropped += u->dropped;
    st->dup_dropped_sum += u->dropped_sum;
    free(u->pending.key);
    free(u->pending.val);
    free(u->out.key);
    free(u->out.val);
}

/* Writes this rank's sorted pairs into an open shard writer, checking for duplicates. */
static pc_status write_own_pairs(run_state *st, shard_writer *w, char *err, size_t errlen)
{
    unique_stream u = {0};
    pc_status s = PC_OK;
    pair p;
    for (int64_t n = 0; s == PC_OK && next_unique(st, &u, &p, &s, err, errlen); n++) {
        s = shard_writer_put(w, p.key, p.klen, p.val, p.vlen, err, errlen);
        if (n == 100) crash_point(st, "mid_write");
    }
    unique_stream_done(st, &u);
    return s;
}

/* output.shards = 1: ranks 1..P-1 stream their ranges to rank 0 in chunks, in rank (= key)
 * order, each chunk [int32 status][packed pairs]; status 0 = more, 1 = done, 2 = failed.
 * Rank 0 always drains every rank, also after a failure, so that no sender blocks forever. */
#define STREAM_CHUNK (4 << 20)
enum { STREAM_MORE = 0, STREAM_DONE = 1, STREAM_FAILED = 2 };

static pc_status send_pairs_to_root(run_state *st, char *err, size_t errlen)
{
    char *buf = malloc(STREAM_CHUNK);
    unique_stream u = {0};
    pc_status s = buf ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    size_t used = 4;
    pair p;
    while (s == PC_OK && next_unique(st, &u, &p, &s, err, errlen)) {
        size_t need = 4 + 4 + 4 + 8 + p.klen + p.vlen;
        if (s == PC_OK && 4 + need > STREAM_CHUNK)
            s = pc_err(err, errlen, PC_ERR_DATA, "a pair of %zu bytes exceeds the stream chunk", need);
        if (s == PC_OK && used + need > STREAM_CHUNK) {
            int32_t more = STREAM_MORE;
            memcpy(buf, &more, 4);
            MPI_Send(buf, (int)used, MPI_BYTE, 0, 0, st->comm);
            used = 4;
        }
        if (s == PC_OK) {
            uint32_t kl = (uint32_t)p.klen, vl = (uint32_t)p.vlen;
            memcpy(buf + used, &kl, 4);
            memcpy(buf + used + 4, &vl, 4);
            memcpy(buf + used + 8, &p.origin.file, 4);
            memcpy(buf + used + 12, &p.origin.line, 8);
            memcpy(buf + used + 20, p.key, p.klen);
            memcpy(buf + used + 20 + p.klen, p.val, p.vlen);
            used += need;
        }
    }
    int32_t last = s == PC_OK ? STREAM_DONE : STREAM_FAILED;
    char tiny[4];
    char *out = buf ? buf : tiny;
    if (s != PC_OK) used = 4;
    memcpy(out, &last, 4);
    MPI_Send(out, (int)used, MPI_BYTE, 0, 0, st->comm);
    free(buf);
    unique_stream_done(st, &u);
    return s;
}

/* Rank 0: receives every other rank's stream in order into buf (STREAM_CHUNK bytes) and
 * writes it, unless something already failed. */
static pc_status receive_pairs_at_root(run_state *st, shard_writer *w, char *buf, pc_status s, char *err,
                                       size_t errlen)
{
    for (int r = 1; r < st->nranks; r++) {
        for (int32_t status = STREAM_MORE; status == STREAM_MORE;) {
            MPI_Status ms;
            int n = 0;
            MPI_Recv(buf, STREAM_CHUNK, MPI_BYTE, r, 0, st->comm, &ms);
            MPI_Get_count(&ms, MPI_BYTE, &n);
            memcpy(&status, buf, 4);
            if (s == PC_OK && status == STREAM_FAILED)
                s = pc_err(err, errlen, PC_ERR_INTERNAL, "rank %d failed while streaming its pairs", r);
            if (s != PC_OK) continue; /* drain, so that no sender blocks */
            kv_buffer *kv = kv_create();
            s = kv ? kv_unpack_append(kv, buf + 4, (size_t)n - 4, err, errlen)
                   : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
            for (int64_t i = 0; s == PC_OK && i < kv_count(kv); i++) {
                size_t kl, vl;
                const char *k = kv_key(kv, i, &kl), *v = kv_value(kv, i, &vl);
                s = shard_writer_put(w, k, kl, v, vl, err, errlen);
            }
            kv_free(kv);
        }
    }
    return s;
}

/* Rank 0 makes a fresh staging dir; every rank writes its shard into it, or with
 * output.shards = 1 every rank streams to rank 0, which writes the one shard. Collective. */
static pc_status write_shards(run_state *st, char *err, size_t errlen)
{
    pc_status s = PC_OK;
    bool one = st->cfg->single_shard;
    char *chunk = NULL; /* rank 0's receive buffer for output.shards = 1 */
    if (st->rank == 0)
        s = table_staging_create(st->cfg->table_dir, st->cfg->name, st->staging, sizeof st->staging, err, errlen);
    if (s == PC_OK && one && st->rank == 0 && (chunk = malloc(STREAM_CHUNK)) == NULL)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) {
        free(chunk);
        return s;
    }
    MPI_Bcast(st->staging, sizeof st->staging, MPI_CHAR, 0, st->comm);

    if (one && st->rank != 0) {
        s = send_pairs_to_root(st, err, errlen);
    } else {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/shard-%05d", st->staging, st->rank);
        shard_writer *w = NULL;
        s = shard_writer_open(path, &w, err, errlen);
        if (s == PC_OK) s = write_own_pairs(st, w, err, errlen);
        if (one) s = receive_pairs_at_root(st, w, chunk, s, err, errlen);
        if (s == PC_OK) s = shard_writer_close(w, &st->shard, err, errlen);
        else shard_writer_abort(w);
    }
    free(chunk);
    kv_merge_close(st->merge);
    st->merge = NULL;
    st->spilled_bytes += kv_spill_spilled_bytes(st->received);
    kv_spill_free(st->received);
    st->received = NULL;
    return mpi_agree(s, st->comm, err, errlen);
}

/* The "nothing lost" check: a full scan of every written shard against the map-time counts
 * and checksum. Collective. */
static pc_status verify_written(run_state *st, uint64_t *checksum, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    int64_t rows = 0;
    uint64_t sum = 0;
    pc_status s = PC_OK;
    if (st->shard.dir != NULL) { /* with output.shards = 1 only rank 0 wrote one */
        snprintf(path, sizeof path, "%s/%s", st->staging, st->shard.dir);
        s = shard_scan(path, &rows, &sum, err, errlen);
    }
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) return s;
    int64_t all_rows = 0;
    uint64_t all_sum = 0, all_map_sum = 0;
    MPI_Allreduce(&rows, &all_rows, 1, MPI_INT64_T, MPI_SUM, st->comm);
    MPI_Allreduce(&sum, &all_sum, 1, MPI_UINT64_T, MPI_SUM, st->comm);
    MPI_Allreduce(&st->map_checksum, &all_map_sum, 1, MPI_UINT64_T, MPI_SUM, st->comm);
    int64_t dropped = 0;
    uint64_t dropped_sum = 0;
    MPI_Allreduce(&st->dup_dropped, &dropped, 1, MPI_INT64_T, MPI_SUM, st->comm);
    MPI_Allreduce(&st->dup_dropped_sum, &dropped_sum, 1, MPI_UINT64_T, MPI_SUM, st->comm);
    *checksum = all_sum;
    st->rows_written = all_rows;
    st->shard_rows = rows;
    st->duplicates_dropped = dropped;
    /* Every row read is in the table, in the rejects, or a duplicate dropped by policy. */
    if (st->total.rows_in != all_rows + st->total.rows_rejected + dropped)
        return pc_err(err, errlen, PC_ERR_INTERNAL,
                      "nothing-lost check failed: %lld rows in, %lld in the shards, %lld rejected, %lld duplicates dropped",
                      (long long)st->total.rows_in, (long long)all_rows, (long long)st->total.rows_rejected,
                      (long long)dropped);
    if (all_sum + dropped_sum != all_map_sum)
        return pc_err(err, errlen, PC_ERR_INTERNAL,
                      "nothing-lost check failed: shard checksum %016llx differs from map-time %016llx",
                      (unsigned long long)all_sum, (unsigned long long)all_map_sum);
    return PC_OK;
}

/* Packs a shard_info for the gather: rows, bytes, checksum, lengths, then the key bytes. */
static char *pack_shard(const shard_info *s, int *len)
{
    size_t n = 3 * 8 + 2 * 8 + s->first_key_len + s->last_key_len;
    char *buf = malloc(n), *p = buf;
    if (buf == NULL) return NULL;
    uint64_t f[5] = {(uint64_t)s->rows, (uint64_t)s->bytes, s->checksum, s->first_key_len, s->last_key_len};
    memcpy(p, f, sizeof f);
    p += sizeof f;
    if (s->first_key_len) memcpy(p, s->first_key, s->first_key_len);
    p += s->first_key_len;
    if (s->last_key_len) memcpy(p, s->last_key, s->last_key_len);
    *len = (int)n;
    return buf;
}

static pc_status unpack_shard(const char *p, int rank, shard_info *s)
{
    uint64_t f[5];
    memcpy(f, p, sizeof f);
    p += sizeof f;
    memset(s, 0, sizeof *s);
    char dir[32];
    snprintf(dir, sizeof dir, "shard-%05d", rank);
    s->dir = strdup(dir);
    s->rows = (int64_t)f[0];
    s->bytes = (int64_t)f[1];
    s->checksum = f[2];
    s->first_key_len = f[3];
    s->last_key_len = f[4];
    if (f[3]) s->first_key = malloc(f[3]);
    if (f[4]) s->last_key = malloc(f[4]);
    if (s->dir == NULL || (f[3] && !s->first_key) || (f[4] && !s->last_key)) return PC_ERR_INTERNAL;
    if (f[3]) memcpy(s->first_key, p, f[3]);
    if (f[4]) memcpy(s->last_key, p + f[3], f[4]);
    return PC_OK;
}

/* Gathers every rank's shard_info on rank 0, in rank (= key) order. Collective. */
/* Every rank gets every rank's shard_info (rank 0 writes them into the manifest; every rank
 * finds its part of the diff from them). Collective. */
static pc_status gather_shards(run_state *st, shard_info **out, char *err, size_t errlen)
{
    *out = NULL;
    int len = 0;
    char *mine = pack_shard(&st->shard, &len);
    int *lens = calloc((size_t)st->nranks, sizeof(int)), *displs = calloc((size_t)st->nranks, sizeof(int));
    pc_status s = mine && lens && displs ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char *all = NULL;
    if ((s = mpi_agree(s, st->comm, err, errlen)) == PC_OK) {
        MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, st->comm);
        int64_t total = 0;
        for (int r = 0; r < st->nranks; r++) {
            displs[r] = (int)total;
            total += lens[r];
        }
        all = malloc((size_t)total + 1);
        s = all ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    if (s == PC_OK && (s = mpi_agree(s, st->comm, err, errlen)) == PC_OK) {
        MPI_Allgatherv(mine, len, MPI_BYTE, all, lens, displs, MPI_BYTE, st->comm);
        *out = calloc((size_t)st->nranks, sizeof(shard_info));
        for (int r = 0; *out && r < st->nranks; r++)
            if (unpack_shard(all + displs[r], r, &(*out)[r]) != PC_OK)
                s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        if (*out == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        s = mpi_agree(s, st->comm, err, errlen);
    }
    free(mine);
    free(lens);
    free(displs);
    free(all);
    return s;
}

static void shards_free(shard_info *shards, int n)
{
    for (int r = 0; shards && r < n; r++) shard_info_clear(&shards[r]);
    free(shards);
}

/* Retention may remove another job's staging dir only if it is this job's own (we hold its
 * lock); other jobs' staging dirs may belong to a run in progress. */
static bool staging_is_stale(const char *job, void *ctx)
{
    const run_state *st = ctx;
    return strcmp(job, st->cfg->name) == 0;
}

/* This rank's part of the key space for the diff: from the first key of its shard to the
 * first key of the next non-empty shard (the first non-empty rank from the start, the last to
 * the end); none when its shard is empty. The old version's keys fall into exactly one part. */
static bool my_key_part(const run_state *st, const shard_info *shards, diff_range *out)
{
    if (shards[st->rank].rows == 0) return false;
    *out = (diff_range){0};
    bool first = true;
    for (int r = 0; r < st->rank; r++) first = first && shards[r].rows == 0;
    if (!first) out->lo = shards[st->rank].first_key, out->lo_len = shards[st->rank].first_key_len;
    for (int r = st->rank + 1; r < st->nranks; r++)
        if (shards[r].rows > 0) {
            out->hi = shards[r].first_key, out->hi_len = shards[r].first_key_len;
            break;
        }
    return true;
}

/* Rank 0 gets the sum of every rank's packed diff in st->diff. Collective. */
static pc_status merge_diffs(run_state *st, const table_diff *mine, const char *previous, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    pc_status s = diff_pack(mine, &buf, &len, err, errlen);
    if (s == PC_OK && len > INT_MAX) s = pc_err(err, errlen, PC_ERR_INTERNAL, "diff: too many classes to gather");
    int n = s == PC_OK ? (int)len : 0;
    int *lens = st->rank == 0 ? calloc((size_t)st->nranks, sizeof(int)) : NULL;
    int *displs = st->rank == 0 ? calloc((size_t)st->nranks, sizeof(int)) : NULL;
    if (st->rank == 0 && (lens == NULL || displs == NULL)) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((s = mpi_agree(s, st->comm, err, errlen)) != PC_OK) goto done;
    MPI_Gather(&n, 1, MPI_INT, lens, 1, MPI_INT, 0, st->comm);
    char *all = NULL;
    int64_t total = 0;
    if (st->rank == 0) {
        for (int r = 0; r < st->nranks; r++) displs[r] = (int)total, total += lens[r];
        if (total > INT_MAX || (all = malloc((size_t)total + 1)) == NULL)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "diff: out of memory gathering");
    }
    if ((s = mpi_agree(s, st->comm, err, errlen)) == PC_OK) {
        MPI_Gatherv(buf, n, MPI_BYTE, all, lens, displs, MPI_BYTE, 0, st->comm);
        if (st->rank == 0) s = diff_init(&st->diff, previous, err, errlen);
        for (int r = 0; s == PC_OK && st->rank == 0 && r < st->nranks; r++)
            s = diff_merge_packed(&st->diff, all + displs[r], (size_t)lens[r], err, errlen);
        if (s != PC_OK && st->rank == 0) diff_free(&st->diff);
    }
    free(all);
done:
    free(buf);
    free(lens);
    free(displs);
    return mpi_agree(s, st->comm, err, errlen);
}

/* Tonight's version against `previous`, every rank diffing its own key range (a serial diff
 * on rank 0 was a tenth of a two-rank run, and on a cluster would scan the whole table on one
 * node while the others wait). Collective; the merged diff lands on rank 0. */
static pc_status diff_ranks(run_state *st, const char *previous, const shard_info *shards, char *err, size_t errlen)
{
    table_diff mine = {0};
    diff_range range;
    pc_status s = my_key_part(st, shards, &range)
                      ? diff_versions_range(st->cfg->table_dir, previous, st->staging, &range, &mine, err, errlen)
                      : diff_init(&mine, previous, err, errlen);
    if ((s = mpi_agree(s, st->comm, err, errlen)) == PC_OK) s = merge_diffs(st, &mine, previous, err, errlen);
    if (mine.classes != NULL) diff_free(&mine);
    return s;
}

/* The diff against the previous version and output.max_changed's gate: over the gate, the
 * version stays staged and the run fails (65). Without a gate, a diff that cannot be made is a
 * warning. Collective (previous is the same on every rank). */
static pc_status diff_and_gate(run_state *st, const char *previous, const shard_info *shards, char *err,
                               size_t errlen)
{
    if (!st->cfg->diff && st->cfg->max_changed < 0) return PC_OK;
    char why[PC_ERRLEN];
    if (diff_ranks(st, previous, shards, why, sizeof why) != PC_OK) {
        if (st->cfg->max_changed >= 0)
            return pc_err(err, errlen, PC_ERR_IO, "output.max_changed: cannot diff against %s: %s", previous, why);
        if (st->rank == 0) fprintf(stderr, "precast: warning: no diff against %s: %s\n", previous, why);
        return PC_OK;
    }
    if (st->rank != 0) return PC_OK;
    st->have_diff = true;
    double share = diff_changed_share(&st->diff);
    if (st->cfg->max_changed >= 0 && share > st->cfg->max_changed) {
        st->diff.report.blocked = true;
        st->keep_staging = true;
        return pc_err(err, errlen, PC_ERR_DATA,
                      "%.1f%% of %s's keys changed (%lld removed, %lld top-1 changed), over output.max_changed "
                      "%.1f%%: not published; the new version is staged in %s",
                      100 * share, previous, (long long)st->diff.report.keys_removed,
                      (long long)st->diff.report.top1_changed, 100 * st->cfg->max_changed, st->staging);
    }
    return PC_OK;
}

/* Rank 0: names the job's columns that the statistics lack (e.g. hashed id columns, which
 * `precast train` does not profile): they are not checked. */
static void warn_untracked(const featstats *fs, const char *path)
{
    char names[600] = "";
    size_t used = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < featstats_dense_count(fs) + featstats_id_count(fs); i++) {
        featstats_dense d;
        featstats_ids v;
        const char *name;
        bool tracked;
        if (i < featstats_dense_count(fs)) {
            featstats_dense_get(fs, i, &d);
            name = d.name, tracked = d.tracked;
        } else {
            featstats_ids_get(fs, i - featstats_dense_count(fs), &v);
            name = v.name, tracked = v.tracked;
        }
        if (tracked || used + 1 >= sizeof names) continue;
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", n++ ? ", " : "", name);
    }
    if (n > 0) fprintf(stderr, "precast: warning: input drift: %s has no statistics of %s: not checked\n", path, names);
}

/* input.drift: every rank reads the training statistics and makes its sketches; a missing
 * statistics file is an error (78) with drift = gate or an explicit input.drift_stats, else a
 * warning and no input check (docs/DRIFT.md).  Collective. */
static pc_status drift_setup(run_state *st, char *err, size_t errlen)
{
    const job_config *cfg = st->cfg;
    if (cfg->drift == DRIFT_OFF) return PC_OK;
    drift_columns cols;
    const char *first = split_plan_file_count(st->plan) > 0 ? split_plan_file_path(st->plan, 0) : NULL;
    pc_status s = drift_columns_of(cfg, st->m, first, &cols, err, errlen);
    char why[PC_ERRLEN];
    pc_status rs = s == PC_OK ? featstats_read_json(cfg->drift_stats, &st->drift_ref, why, sizeof why) : PC_OK;
    if (rs == PC_ERR_NOINPUT && cfg->drift != DRIFT_GATE && !cfg->drift_stats_set) {
        if (st->rank == 0)
            fprintf(stderr, "precast: warning: input.drift = warn: no training statistics (%s); input drift not checked "
                            "(write them with `precast stats`)\n", why);
    } else if (rs == PC_ERR_NOINPUT) {
        s = pc_err(err, errlen, PC_ERR_CONFIG, "input.drift = %s: training statistics %s (write them with `precast stats` "
                   "or set input.drift_stats)", cfg->drift == DRIFT_GATE ? "gate" : "warn", why);
    } else if (rs != PC_OK) {
        s = pc_err(err, errlen, rs == PC_ERR_INTERNAL ? rs : PC_ERR_CONFIG, "input drift: %s", why);
    }
    /* every rank reads the file itself: all must have it, or none (else they would part ways
     * at the merge) */
    int have = st->drift_ref != NULL, lo = 0, hi = 0;
    MPI_Allreduce(&have, &lo, 1, MPI_INT, MPI_MIN, st->comm);
    MPI_Allreduce(&have, &hi, 1, MPI_INT, MPI_MAX, st->comm);
    if (s == PC_OK && lo != hi)
        s = pc_err(err, errlen, PC_ERR_NOINPUT, "input drift: %s is readable on some ranks only", cfg->drift_stats);
    if (s == PC_OK && st->drift_ref != NULL) {
        s = featstats_create_compare(st->drift_ref, (const char *const *)cols.dense, cols.ndense,
                                     (const char *const *)cols.ids, cols.nids, &st->drift_in, why, sizeof why);
        if (s != PC_OK) s = pc_err(err, errlen, s, "%s: %s", cfg->drift_stats, why);
        else if (st->rank == 0) warn_untracked(st->drift_in, cfg->drift_stats);
    }
    if (s == PC_OK) s = drift_output_sketch(&st->drift_out, err, errlen);
    st->cfg->map.sketch = st->drift_in;
    st->cfg->map.output_sketch = st->drift_out;
    drift_columns_free(&cols);
    return mpi_agree(s, st->comm, err, errlen);
}

/* The output statistics of a version: VERSION_DIR/output.stats.json. */
static void output_stats_path(const char *table_dir, const char *version, char *path, size_t cap)
{
    if (version == NULL) snprintf(path, cap, "%s/output.stats.json", table_dir);
    else snprintf(path, cap, "%s/%s/output.stats.json", table_dir, version);
}

/* Rank 0: tonight's output statistics against the published version's (when it has them). */
static void drift_outputs(run_state *st)
{
    char previous[256], path[PATH_MAX + 300], why[PC_ERRLEN];
    if (table_current(st->cfg->table_dir, previous, sizeof previous, why, sizeof why) != PC_OK) return;
    output_stats_path(st->cfg->table_dir, previous, path, sizeof path);
    featstats *before = NULL;
    pc_status s = featstats_read_json(path, &before, why, sizeof why);
    if (s == PC_OK) s = drift_compare_outputs(&st->drift, previous, before, st->drift_out, why, sizeof why);
    if (s != PC_OK && s != PC_ERR_NOINPUT) fprintf(stderr, "precast: warning: output drift: %s\n", why);
    featstats_free(before);
}

/* After the map: the sketches merged on rank 0 (exact, whatever the number of ranks), compared
 * with the training statistics and the previous version's outputs; a warning names the
 * drifted features.  Collective. */
static pc_status drift_collect(run_state *st, char *err, size_t errlen)
{
    if (st->cfg->drift == DRIFT_OFF) return PC_OK;
    pc_status s = st->drift_in ? featstats_merge(st->drift_in, st->comm, err, errlen) : PC_OK;
    if (s == PC_OK) s = featstats_merge(st->drift_out, st->comm, err, errlen);
    if (s == PC_OK && st->rank == 0 && st->drift_in != NULL)
        s = drift_compare_inputs(st->cfg, st->cfg->drift_stats, st->drift_ref, st->drift_in, &st->drift, err, errlen);
    if (s == PC_OK && st->rank == 0) {
        st->have_drift = true;
        drift_outputs(st);
        st->drift_json = drift_report_json(st->cfg, &st->drift);
        st->drift_metrics = drift_metrics_text(&st->drift, st->cfg->name);
        char named[1024];
        drift_summary(st->cfg, &st->drift, 5, named, sizeof named);
        if (named[0] != '\0')
            fprintf(stderr, "precast: warning: input drift against %s: %s\n", st->cfg->drift_stats, named);
        if (st->drift.have_output && st->drift.class_psi >= st->cfg->drift_psi_warn)
            fprintf(stderr, "precast: warning: output drift against %s: class shares PSI %.2f\n", st->drift.previous,
                    st->drift.class_psi);
        if (st->drift.have_output && st->drift.score_psi >= st->cfg->drift_psi_warn)
            fprintf(stderr, "precast: warning: output drift against %s: score histogram PSI %.2f\n", st->drift.previous,
                    st->drift.score_psi);
    }
    return mpi_agree(s, st->comm, err, errlen);
}

/* Rank 0, beside the manifest: tonight's output statistics go into the version, for the next
 * run's output drift (also into a version a gate keeps staged). */
static pc_status drift_write_outputs(run_state *st, char *err, size_t errlen)
{
    if (st->cfg->drift == DRIFT_OFF || !st->have_drift) return PC_OK;
    char path[PATH_MAX + 300];
    output_stats_path(st->staging, NULL, path, sizeof path);
    return featstats_write_json(st->drift_out, path, err, errlen);
}

/* Rank 0, before the publish: input.drift = gate with a column at gate level keeps the version
 * staged and fails the run (65) naming the columns. */
static pc_status drift_gate(run_state *st, char *err, size_t errlen)
{
    if (st->cfg->drift != DRIFT_GATE || !st->have_drift || st->drift.worst < DRIFT_LEVEL_GATE) return PC_OK;
    int64_t *idx = malloc((size_t)(st->drift.n + 1) * sizeof *idx);
    if (idx == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    int64_t n = drift_ranked(st->cfg, &st->drift, DRIFT_LEVEL_GATE, idx, st->drift.n);
    char names[700] = "";
    size_t used = 0;
    for (int64_t k = 0; k < n && used + 1 < sizeof names; k++) {
        const drift_item *it = &st->drift.items[idx[k]];
        if (it->id)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s (%.1f%% unseen ids)", k ? ", " : "", it->name,
                                     100 * it->unseen);
        else
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s (PSI %.2f)", k ? ", " : "", it->name, it->psi);
    }
    free(idx);
    st->keep_staging = true;
    return pc_err(err, errlen, PC_ERR_DATA,
                  "input drift over input.drift_psi_gate %.2f / drift_unseen_gate %.2f: %s; not published: version %s is "
                  "staged in %s (publish it with `precast versions %s --publish-staged %s`)",
                  st->cfg->drift_psi_gate, st->cfg->drift_unseen_gate, names, st->version, st->staging,
                  st->cfg->table_dir, st->version);
}

/* The --set overrides, one "section.key=value" per line (NULL when none). */
static char *join_overrides(const run_state *st)
{
    size_t n = 1;
    for (int i = 0; i < st->nsets; i++) n += strlen(st->sets[i]) + 1;
    char *out = st->nsets ? calloc(1, n) : NULL;
    for (int i = 0; out && i < st->nsets; i++) {
        strcat(out, st->sets[i]);
        strcat(out, "\n");
    }
    return out;
}

/* Rank 0 writes the manifest, with the run's provenance, into staging, publishes the version
 * and applies retention. Collective. */
/* Rank 0: the version's name and its manifest in staging; *previous is the version CURRENT
 * names ("" when none). */
static pc_status write_staging_manifest(run_state *st, uint64_t checksum, shard_info *shards, char *previous,
                                        size_t cap, char *err, size_t errlen)
{
    pc_status s = table_version_name(st->cfg->table_dir, st->cfg->name, st->version, sizeof st->version, err, errlen);
    char created[32], host[256] = "", why[PC_ERRLEN];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    bool has_previous = table_current(st->cfg->table_dir, previous, cap, why, sizeof why) == PC_OK;
    if (!has_previous) previous[0] = '\0';
    gethostname(host, sizeof host - 1);
    int nfiles = split_plan_file_count(st->plan);
    char **paths = calloc((size_t)nfiles + 1, sizeof(char *));
    int64_t *sizes = calloc((size_t)nfiles + 1, sizeof(int64_t));
    int64_t *mtimes = calloc((size_t)nfiles + 1, sizeof(int64_t));
    for (int i = 0; paths && sizes && mtimes && i < nfiles; i++) {
        struct stat sb;
        paths[i] = (char *)split_plan_file_path(st->plan, i);
        sizes[i] = split_plan_file_size(st->plan, i);
        mtimes[i] = stat(paths[i], &sb) == 0 ? (int64_t)sb.st_mtime : MANIFEST_TIME_UNKNOWN;
    }
    char *job_text = NULL;
    size_t job_len = 0;
    model_file_read(st->cfg->job_file, &job_text, &job_len, why, sizeof why); /* NULL if gone */
    char *overrides = join_overrides(st);
    manifest m = {
        .format_version = 1, .created = created, .job = st->cfg->name, .version = st->version,
        .model_path = st->cfg->model_path, .model_sha256 = st->model_sha256, .job_file = st->cfg->job_file,
        .ninputs = nfiles, .input_paths = paths, .input_sizes = sizes, .input_mtimes = mtimes,
        .rows_in = st->total.rows_in, .rows_written = st->rows_written,
        .rows_rejected = st->total.rows_rejected, .rows_dropped = st->duplicates_dropped,
        .checksum = checksum,
        .value_format = (char *)value_format_name(st->cfg->head.format),
        .head = (char *)head_kind_name(head_effective_kind(st->h)),
        .labels_path = st->cfg->labels_path, .ranks = st->nranks,
        .nshards = st->cfg->single_shard ? 1 : st->nranks, .shards = shards,
        .job_text = job_text, .job_overrides = overrides, .precast_version = PRECAST_VERSION,
        .host = host, .previous = has_previous ? previous : NULL};
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/MANIFEST.json", st->staging);
    if (paths == NULL || sizes == NULL || mtimes == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) s = manifest_write(path, &m, err, errlen);
    free(paths);
    free(sizes);
    free(mtimes);
    free(job_text);
    free(overrides);
    return s;
}

/* Rank 0 writes the manifest into staging, all ranks diff it against the previous version,
 * and rank 0 publishes it (gate permitting) and applies retention. Collective. */
static pc_status publish(run_state *st, uint64_t checksum, char *err, size_t errlen)
{
    shard_info *shards = NULL;
    char previous[256] = "";
    pc_status s = gather_shards(st, &shards, err, errlen);
    if (s != PC_OK) {
        shards_free(shards, st->nranks);
        return s;
    }
    if (st->rank == 0) s = write_staging_manifest(st, checksum, shards, previous, sizeof previous, err, errlen);
    if (s == PC_OK && st->rank == 0) s = drift_write_outputs(st, err, errlen);
    if ((s = mpi_agree(s, st->comm, err, errlen)) == PC_OK) {
        MPI_Bcast(previous, sizeof previous, MPI_CHAR, 0, st->comm);
        if (previous[0] != '\0') s = diff_and_gate(st, previous, shards, err, errlen);
        if (s == PC_OK && st->rank == 0) s = drift_gate(st, err, errlen);
        s = mpi_agree(s, st->comm, err, errlen);
    }
    if (st->rank == 0) {
        char why[PC_ERRLEN];
        crash_point(st, "before_publish");
        if (s == PC_OK) s = table_publish(st->cfg->table_dir, st->staging, st->version, err, errlen);
        if (s == PC_OK) st->staging[0] = '\0'; /* published: nothing to clean up */
        if (s == PC_OK && st->cfg->checkpoint) checkpoint_clear(st->cfg->checkpoint_dir); /* no longer needed */
        /* Retention after CURRENT names the new version; a failure leaves old versions on
         * disk but does not undo the publish. */
        int64_t removed = 0;
        if (s == PC_OK && table_retain(st->cfg->table_dir, st->cfg->keep_versions, staging_is_stale, st, NULL, 0,
                                       &removed, why, sizeof why) != PC_OK)
            fprintf(stderr, "precast: warning: retention: %s (the new version is published)\n", why);
    }
    shards_free(shards, st->nranks);
    return mpi_agree(s, st->comm, err, errlen);
}

/* Rows --check runs through the model. */
#define CHECK_ROWS 1000

/* Seconds since the previous mark, added to *stage. */
static void stage_mark(double *last, double *stage)
{
    double now = MPI_Wtime();
    *stage += now - *last;
    *last = now;
}

/* --check: the table dir can be written (created if missing): a file is made and removed. */
static pc_status check_table_writable(const run_state *st, char *err, size_t errlen)
{
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s", st->cfg->table_dir);
    for (char *p = probe + 1; *p; p++) /* mkdir -p */
        if (*p == '/') {
            *p = '\0';
            mkdir(probe, 0777);
            *p = '/';
        }
    mkdir(probe, 0777);
    snprintf(probe, sizeof probe, "%s/.precast-check-%ld", st->cfg->table_dir, (long)getpid());
    FILE *f = fopen(probe, "w");
    if (f == NULL) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot write: %s", st->cfg->table_dir, strerror(errno));
    fclose(f);
    unlink(probe);
    return PC_OK;
}

static pc_status discard_pair(void *ctx, const char *key, size_t klen, const char *val, size_t vlen, int32_t file,
                              int64_t line, char *err, size_t errlen)
{
    (void)ctx, (void)key, (void)klen, (void)val, (void)vlen, (void)file, (void)line, (void)err, (void)errlen;
    return PC_OK;
}

/* precast run --check: the job file (already read), the model, the first rows through the
 * model and the head, and the table dir, without writing a version. Collective. */
static pc_status check_job(run_state *st, char *err, size_t errlen)
{
    pc_status s = load_model(st, err, errlen);
    if (s == PC_OK) s = plan_splits(st, err, errlen);
    if (s == PC_OK) s = drift_setup(st, err, errlen); /* the statistics read and match the columns */
    if (s != PC_OK) return s;
    if (st->rank == 0) {
        map_stats probe;
        s = map_probe(st->m, st->h, st->plan, &st->cfg->map, CHECK_ROWS, discard_pair, st, &probe, err, errlen);
        if (s == PC_OK) s = check_table_writable(st, err, errlen);
        if (s == PC_OK)
            printf("precast: %s: ok: model %s loads (%d input%s), the first %lld rows of %d file%s map and predict, "
                   "%s is writable\n", st->cfg->name, st->cfg->model_path, model_input_count(st->m),
                   model_input_count(st->m) == 1 ? "" : "s", (long long)probe.rows_in,
                   split_plan_file_count(st->plan), split_plan_file_count(st->plan) == 1 ? "" : "s",
                   st->cfg->table_dir);
    }
    return mpi_agree(s, st->comm, err, errlen);
}

static pc_status run_job(run_state *st, char *err, size_t errlen)
{
    if (st->check_only) return check_job(st, err, errlen);
    uint64_t checksum = 0;
    double t = MPI_Wtime();
    pc_status s = load_model(st, err, errlen);
    if (s == PC_OK) s = plan_splits(st, err, errlen);
    if (s == PC_OK) s = sweep_spills(st, err, errlen);
    if (s == PC_OK) s = open_checkpoints(st, err, errlen);
    if (s == PC_OK) s = drift_setup(st, err, errlen);
    stage_mark(&t, &st->sec.setup);
    if (s == PC_OK) s = map_phase(st, err, errlen);
    if (s == PC_OK) s = drift_collect(st, err, errlen);
    crash_point(st, "after_map");
    if (s == PC_OK) s = collect_rejects(st, err, errlen);
    stage_mark(&t, &st->sec.map);
    if (s == PC_OK) s = shuffle_phase(st, err, errlen);
    stage_mark(&t, &st->sec.shuffle);
    if (s == PC_OK) s = write_shards(st, err, errlen);
    if (s == PC_OK) s = verify_written(st, &checksum, err, errlen);
    crash_point(st, "after_write"); /* every shard written and scanned, nothing published */
    stage_mark(&t, &st->sec.write);
    if (s == PC_OK) s = publish(st, checksum, err, errlen);
    stage_mark(&t, &st->sec.publish);
    if (s != PC_OK && st->rank == 0 && st->staging[0] != '\0' && !st->keep_staging) table_staging_remove(st->staging);
    return s;
}

/* Per-rank figures gathered on rank 0 for the report and --verbose. */
enum { RF_SEGMENTS, RF_ROWS_IN, RF_REJECTED, RF_WRITTEN, RF_BYTES_READ, RF_SETUP, RF_PARSE, RF_FORWARD, RF_SHUFFLE,
       RF_WRITE, RF_PUBLISH, RF_RSS_MB, RF_SPILLED, RF_COUNT };

/* Collective. Returns a malloc'd array of RF_COUNT doubles per rank on rank 0 (NULL elsewhere,
 * or when out of memory). */
static double *gather_rank_figures(run_state *st)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double fwd = (double)st->stats.forward_ns / 1e9;
    double mine[RF_COUNT] = {
        [RF_SEGMENTS] = (double)st->segments_done, [RF_ROWS_IN] = (double)st->stats.rows_in,
        [RF_REJECTED] = (double)st->stats.rows_rejected, [RF_WRITTEN] = (double)(st->shard_rows >= 0 ? st->shard_rows : st->stats.rows_emitted),
        [RF_BYTES_READ] = (double)st->bytes_read, [RF_SETUP] = st->sec.setup, [RF_PARSE] = st->sec.map - fwd,
        [RF_FORWARD] = fwd, [RF_SHUFFLE] = st->sec.shuffle, [RF_WRITE] = st->sec.write,
        [RF_PUBLISH] = st->sec.publish, [RF_RSS_MB] = (double)ru.ru_maxrss / 1024.0,
        [RF_SPILLED] = (double)st->spilled_bytes};
    /* ~100 bytes per rank: the allocation cannot sensibly fail, and MPI needs the buffer. */
    double *all = st->rank == 0 ? calloc((size_t)st->nranks * RF_COUNT + 1, sizeof(double)) : NULL;
    MPI_Gather(mine, RF_COUNT, MPI_DOUBLE, all, RF_COUNT, MPI_DOUBLE, 0, st->comm);
    return all;
}

/* --verbose: one line per rank — what it did and how long each stage took — so that an
 * operator sees stragglers and memory. Rank 0 only. */
static void print_rank_figures(const run_state *st, const double *all)
{
    fprintf(stderr, "rank  segments      rows_in      written   setup_s  read+parse_s  forward_s  "
                    "shuffle_s  write_s  publish_s  peak_rss_mb  spilled_mb\n");
    for (int r = 0; r < st->nranks; r++) {
        const double *v = all + (size_t)r * RF_COUNT;
        fprintf(stderr, "%4d  %8.0f  %11.0f  %11.0f  %8.2f  %12.2f  %9.2f  %9.2f  %7.2f  %9.2f  %11.1f  %10.1f\n", r,
                v[RF_SEGMENTS], v[RF_ROWS_IN], v[RF_WRITTEN], v[RF_SETUP], v[RF_PARSE], v[RF_FORWARD], v[RF_SHUFFLE],
                v[RF_WRITE], v[RF_PUBLISH], v[RF_RSS_MB], v[RF_SPILLED] / 1048576.0);
    }
}

/* Rank 0: the run report (JSON) and, if configured, the Prometheus textfile. A failure to
 * write them is a warning: it does not change the run's outcome. */
static void write_report(run_state *st, const double *all, pc_status s, const char *message)
{
    run_report_rank *ranks = calloc((size_t)st->nranks, sizeof *ranks);
    if (ranks == NULL || all == NULL) {
        free(ranks);
        fprintf(stderr, "precast: warning: out of memory writing the run report\n");
        return;
    }
    for (int r = 0; r < st->nranks; r++) {
        const double *v = all + (size_t)r * RF_COUNT;
        ranks[r] = (run_report_rank){
            .segments = (int64_t)v[RF_SEGMENTS], .rows_read = (int64_t)v[RF_ROWS_IN],
            .rows_rejected = (int64_t)v[RF_REJECTED], .rows_written = (int64_t)v[RF_WRITTEN],
            .bytes_read = (int64_t)v[RF_BYTES_READ], .spilled_bytes = (int64_t)v[RF_SPILLED],
            .seconds = {.setup = v[RF_SETUP], .map = v[RF_PARSE] + v[RF_FORWARD], .forward = v[RF_FORWARD],
                        .shuffle = v[RF_SHUFFLE], .write = v[RF_WRITE], .publish = v[RF_PUBLISH]}};
    }
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int hlen;
    MPI_Get_processor_name(host, &hlen);
    run_report r = {.job = st->cfg->name, .job_file = st->cfg->job_file, .host = host, .start = st->wall_start,
                    .end = run_report_now(), .exit_status = (int)s, .message = s == PC_OK ? NULL : message,
                    .version = s == PC_OK ? st->version : NULL, .seconds = ranks[0].seconds,
                    .input_bytes = st->plan ? split_plan_total_size(st->plan) : 0, .ranks = ranks,
                    .nranks = st->nranks, .diff = st->have_diff ? &st->diff.report : NULL,
                    .drift_json = st->drift_json, .drift_metrics = st->drift_metrics};
    char err[PC_ERRLEN];
    if (run_report_write(st->cfg->report_path, &r, err, sizeof err) != PC_OK)
        fprintf(stderr, "precast: warning: %s\n", err);
    if (st->cfg->metrics_path && metrics_textfile_write(st->cfg->metrics_path, &r, err, sizeof err) != PC_OK)
        fprintf(stderr, "precast: warning: %s\n", err);
    free(ranks);
}

/* Rank 0 takes the job's lock (a second run of the job exits 75 naming the holder); every
 * rank agrees. Collective. */
static pc_status take_lock(run_state *st, char *err, size_t errlen)
{
    pc_status s = st->rank == 0 ? job_lock_acquire(st->cfg->lock_path, st->cfg->name, &st->lock, err, errlen) : PC_OK;
    return mpi_agree(s, st->comm, err, errlen);
}

static void run_state_clear(run_state *st)
{
    checkpoint_close(st->ckpt);
    if (st->have_diff) diff_free(&st->diff);
    drift_result_free(&st->drift);
    free(st->drift_json);
    free(st->drift_metrics);
    featstats_free(st->drift_in);
    featstats_free(st->drift_out);
    featstats_free(st->drift_ref);
    job_lock_release(st->lock);
    if (st->rejects != NULL) fclose(st->rejects);
    if (st->cfg != NULL && st->cfg->map.skip_bad_rows) { /* a part left by a failed map */
        char part[PATH_MAX + 32];
        rejects_part(st, st->rank, part, sizeof part);
        unlink(part);
    }
    job_config_free(st->cfg);
    model_close(st->m);
    head_free(st->h);
    split_plan_free(st->plan);
    kv_merge_close(st->merge);
    kv_spill_free(st->local);     /* removes its run files: also after a failure */
    kv_spill_free(st->received);
    shard_info_clear(&st->shard);
}

/* Parses the command line; returns 0 to go on, else an exit status (after printing). */
static int parse_args(int argc, char **argv, const char **job, char ***sets, int *nsets, run_state *st)
{
    int rank = st->rank;
    static const struct option opts[] = {{"set", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"check", no_argument, NULL, 'c'},
                                         {"resume", no_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    *sets = calloc((size_t)argc, sizeof(char *));
    *nsets = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        if (c == 's') (*sets)[(*nsets)++] = optarg;
        else if (c == 'v') st->verbose = true;
        else if (c == 'c') st->check_only = true;
        else if (c == 'r') st->resume = true;
        else if (c == 'h') {
            if (rank == 0) usage(stdout);
            return -1;
        } else {
            if (rank == 0) usage(stderr);
            return PC_ERR_USAGE;
        }
    }
    if (optind != argc - 1) {
        if (rank == 0) {
            fprintf(stderr, "precast run: expected one job file\n");
            usage(stderr);
        }
        return PC_ERR_USAGE;
    }
    *job = argv[optind];
    return 0;
}

/* Runs a job (from a file, or for `predict` from assignments alone when job is NULL), prints
 * the outcome on rank 0, finalises MPI. Collective. Takes ownership of sets (the array). */
static int run_and_report(run_state *stp, const char *job, char **sets, int nsets)
{
    run_state st = *stp;
    char err[PC_ERRLEN] = "";
    st.sets = sets;
    st.nsets = nsets;
    pc_status s = job ? job_config_load(job, sets, nsets, &st.cfg, err, sizeof err)
                      : job_config_from_assignments("predict", sets, nsets, &st.cfg, err, sizeof err);
    s = mpi_agree(s, st.comm, err, sizeof err);
    if (s == PC_OK && !st.check_only) s = take_lock(&st, err, sizeof err);
    bool locked = s == PC_OK && !st.check_only; /* the report and metrics belong to the run holding the lock */
    if (s == PC_OK) s = run_job(&st, err, sizeof err);
    if (locked || st.verbose) {
        double *all = gather_rank_figures(&st);
        if (st.rank == 0 && st.verbose && all) print_rank_figures(&st, all);
        if (st.rank == 0 && locked) write_report(&st, all, s, err);
        free(all);
    }
    double seconds = MPI_Wtime() - st.started;
    int64_t reused = 0; /* segments taken from checkpoints (--resume), all ranks */
    MPI_Reduce(&st.segments_reused, &reused, 1, MPI_INT64_T, MPI_SUM, 0, st.comm);
    if (st.rank == 0) {
        if (s != PC_OK) {
            fprintf(stderr, "precast: %s\n", err);
        } else if (!st.check_only) {
            char oov[96] = "";
            if (st.total.oov_ids > 0)
                snprintf(oov, sizeof oov, ", %lld out-of-vocabulary id%s mapped to %lld",
                         (long long)st.total.oov_ids, st.total.oov_ids == 1 ? "" : "s",
                         (long long)st.cfg->map.oov_bucket);
            int shards = st.cfg->single_shard ? 1 : st.nranks;
            char rejected[PATH_MAX + 32] = "";
            if (st.total.rows_rejected > 0) snprintf(rejected, sizeof rejected, " (in %s)", st.cfg->rejects_path);
            char dups[160] = "";
            if (reused > 0) snprintf(dups, 64, ", %lld segment%s reused", (long long)reused, reused == 1 ? "" : "s");
            if (st.duplicates_dropped > 0)
                snprintf(dups + strlen(dups), sizeof dups - strlen(dups), ", %lld duplicate%s dropped (%s)", (long long)st.duplicates_dropped,
                         st.duplicates_dropped == 1 ? "" : "s", duplicates_name(st.cfg->duplicates));
            char drifted[1100] = "";
            if (st.have_drift) { /* the top drifted features (docs/DRIFT.md) */
                char named[1024];
                drift_summary(st.cfg, &st.drift, 3, named, sizeof named);
                snprintf(drifted, sizeof drifted, ", input drift: %s",
                         st.drift_in == NULL ? "not checked (no statistics)" : named[0] ? named : "none");
            }
            printf("precast: %s: %lld rows in, %lld written, %lld rejected%s%s%s, %.2f s, %.0f rows/s, "
                   "%d shard%s%s, published %s\n",
                   st.cfg->name, (long long)st.total.rows_in, (long long)st.rows_written,
                   (long long)st.total.rows_rejected, rejected, dups, oov, seconds,
                   seconds > 0 ? (double)st.total.rows_in / seconds : 0.0, shards,
                   shards == 1 ? "" : "s", drifted, st.version);
        }
    }
    run_state_clear(&st);
    free(sets);
    MPI_Finalize();
    return (int)s;
}

int cmd_run(int argc, char **argv)
{
    /* --help needs no MPI: answer before MPI_Init, which is slow and needs a runtime. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    MPI_Init(&argc, &argv);
    run_state st = {.comm = MPI_COMM_WORLD, .shard_rows = -1};
    MPI_Comm_rank(st.comm, &st.rank);
    MPI_Comm_size(st.comm, &st.nranks);
    st.started = MPI_Wtime();
    st.wall_start = run_report_now();
    const char *job = NULL;
    char **sets = NULL;
    int nsets = 0;
    int rc = parse_args(argc, argv, &job, &sets, &nsets, &st);
    if (rc != 0) {
        free(sets);
        MPI_Finalize();
        return rc < 0 ? 0 : rc;
    }
    return run_and_report(&st, job, sets, nsets);
}


static void predict_usage(FILE *out)
{
    fprintf(out,
            "usage: precast predict --model M.onnx --input 'GLOB' --table DIR [options]\n"
            "       mpirun -np N precast predict ...\n"
            "\n"
            "A one-off run without a job file: every flag stands for a job-file key, and the\n"
            "job is named 'predict'. Relative paths are taken from the working directory.\n"
            "\n"
            "  --model M.onnx        [model] path\n"
            "  --labels FILE         [model] labels\n"
            "  --input 'GLOB'        [input] paths (quote globs; repeatable)\n"
            "  --format csv|libsvm   [input] format\n"
            "  --id-column C         [input] id_column (default id)\n"
            "  --table DIR           [output] table\n"
            "  --head H              [output] head (default auto)\n"
            "  --top-k K             [output] top_k\n"
            "  --set section.key=value   any other key (repeatable)\n"
            "  --check, -v/--verbose as for `precast run`\n");
}

int cmd_predict(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            predict_usage(stdout);
            return 0;
        }
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"labels", required_argument, NULL, 'l'},
        {"input", required_argument, NULL, 'i'},   {"format", required_argument, NULL, 'f'},
        {"id-column", required_argument, NULL, 'd'}, {"table", required_argument, NULL, 't'},
        {"head", required_argument, NULL, 'H'},    {"top-k", required_argument, NULL, 'k'},
        {"set", required_argument, NULL, 's'},     {"verbose", no_argument, NULL, 'v'},
        {"check", no_argument, NULL, 'c'},         {NULL, 0, NULL, 0}};
    /* Each flag becomes the "section.key=value" assignment it stands for. */
    static const struct { int flag; const char *key; } keys[] = {
        {'m', "model.path"}, {'l', "model.labels"}, {'f', "input.format"}, {'d', "input.id_column"},
        {'t', "output.table"}, {'H', "output.head"}, {'k', "output.top_k"}};
    char **sets = calloc((size_t)argc + 2, sizeof(char *)), **owned = calloc((size_t)argc + 2, sizeof(char *));
    char *inputs = NULL;
    int nsets = 0, nowned = 0, c, rc = 0;
    bool verbose = false, check = false;
    optind = 1;
    while (sets && owned && rc == 0 && (c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        if (c == 's') sets[nsets++] = optarg;
        else if (c == 'v') verbose = true;
        else if (c == 'c') check = true;
        else if (c == 'i') { /* several --input flags make one space-separated list */
            size_t n = (inputs ? strlen(inputs) + 1 : 0) + strlen(optarg) + 1;
            char *p = realloc(inputs, n);
            if (p == NULL) rc = PC_ERR_INTERNAL;
            else {
                if (inputs == NULL) p[0] = '\0';
                else strcat(p, " ");
                inputs = strcat(p, optarg);
            }
        } else {
            const char *key = NULL;
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                if (keys[k].flag == c) key = keys[k].key;
            if (key == NULL) {
                predict_usage(stderr);
                rc = PC_ERR_USAGE;
                break;
            }
            size_t n = strlen(key) + strlen(optarg) + 2;
            char *a = malloc(n);
            if (a == NULL) rc = PC_ERR_INTERNAL;
            else {
                snprintf(a, n, "%s=%s", key, optarg);
                sets[nsets++] = owned[nowned++] = a;
            }
        }
    }
    if (rc == 0 && (sets == NULL || owned == NULL)) rc = PC_ERR_INTERNAL;
    if (rc == 0 && optind != argc) {
        fprintf(stderr, "precast predict: unexpected argument '%s'\n", argv[optind]);
        rc = PC_ERR_USAGE;
    }
    if (rc == 0 && inputs != NULL) {
        size_t n = strlen(inputs) + 16;
        char *a = malloc(n);
        if (a == NULL) rc = PC_ERR_INTERNAL;
        else {
            snprintf(a, n, "input.paths=%s", inputs);
            sets[nsets++] = owned[nowned++] = a;
        }
    }
    free(inputs);
    if (rc != 0) {
        for (int i = 0; i < nowned; i++) free(owned[i]);
        free(owned);
        free(sets);
        return rc;
    }
    MPI_Init(&argc, &argv);
    run_state st = {.comm = MPI_COMM_WORLD, .verbose = verbose, .check_only = check, .shard_rows = -1};
    MPI_Comm_rank(st.comm, &st.rank);
    MPI_Comm_size(st.comm, &st.nranks);
    st.started = MPI_Wtime();
    st.wall_start = run_report_now();
    rc = run_and_report(&st, NULL, sets, nsets);
    for (int i = 0; i < nowned; i++) free(owned[i]);
    free(owned);
    return rc;
}
