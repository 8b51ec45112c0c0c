/*
 * job.h — a job file (INI, see README "Job file") read, validated and resolved.
 *
 * Paths in the job file are relative to the job file's folder, so a job behaves the same
 * whatever directory cron starts it from. Every key is checked: an unknown section or key, a
 * bad value or a missing required key is PC_ERR_CONFIG naming FILE:LINE and the key, before
 * any rank starts work.
 *
 * Ownership: job_config_load() returns a config that owns all its strings; job_config_free()
 * releases it.
 */
#ifndef PRECAST_JOB_H
#define PRECAST_JOB_H

#include <stdint.h>

#include "kernels/status.h"
#include "mapper/head.h"
#include "mapper/map.h"

/* output.duplicates: what two rows with one id do. */
typedef enum duplicates_policy { DUPLICATES_FAIL = 0, DUPLICATES_FIRST, DUPLICATES_LAST } duplicates_policy;
const char *duplicates_name(duplicates_policy p);

/* input.drift (issue 10, docs/DRIFT.md): compare tonight's rows with the training statistics. */
typedef enum drift_mode { DRIFT_OFF = 0, DRIFT_WARN, DRIFT_GATE } drift_mode;

/* run.checkpoint = auto checkpoints inputs of at least this size.  A checkpoint writes every
 * pair a second time (about 8 % of a 1,000,000-row, 450 MB run on 2 ranks: 2.70 against
 * 2.50 s), which pays only when a rerun would cost minutes; below this a whole rerun takes
 * seconds per rank. */
#define JOB_CHECKPOINT_AUTO_BYTES (1LL << 30)
/* run.batch_rows' default: the fastest batch of make bench's sweep for all three model kinds
 * (2026-11-27, rows/s on one core at 256 / 1024 / 4096 rows: example 645,549 / 607,850 /
 * 541,626; wide 32,262 / 31,416 / 31,089; embed 1,432,338 / 1,419,811 / 1,170,289): small
 * enough that a batch's activations stay in cache, large enough for the GEMMs. */
#define JOB_DEFAULT_BATCH_ROWS 256

typedef struct job_config {
    char *job_file;       /* as given */
    char *name;           /* job name: [run] name, default the job file's base name */
    char *model_path;     /* [model] path (required) */
    char *labels_path;    /* [model] labels, or NULL */
    char **labels;        /* read from labels_path, one name per line */
    int64_t nlabels;
    char **input_patterns;/* [input] paths: globs separated by spaces or commas (required) */
    int ninputs;
    char *id_column;      /* [input] id_column, default "id" */
    char **features;      /* [input] features: comma-separated names, NULL = all but the id */
    int64_t nfeatures;
    map_config map;       /* [input] format, one_based, map.NAME / hash.NAME / vocab.NAME,
                             bag_separator, pad_id, oov; points into this config */
    map_binding *bindings;/* owned; map.bindings points here */
    char ***binding_columns; /* owned column-name lists of the bindings */
    char *thresholds_path;/* [output] thresholds, or NULL */
    char *rejects_path;   /* [input] rejects: JSON lines of skipped rows (bad_rows = skip);
                             default TABLE/rejects-<job>.jsonl */
    drift_mode drift;     /* [input] drift = off (default) | warn | gate */
    char *drift_stats;    /* [input] drift_stats, default the model's path with .onnx replaced
                             by .stats.json (model.onnx -> model.stats.json) */
    bool drift_stats_set; /* drift_stats was given (a missing file is then an error) */
    double drift_psi_warn, drift_psi_gate;       /* PSI thresholds, default 0.2 and 0.25 */
    double drift_unseen_warn, drift_unseen_gate; /* unseen-id shares, default 0.05 and 0.1 */
    int64_t max_bad_rows; /* [input] max_bad_rows as a count; -1 = no limit */
    double max_bad_share; /* [input] max_bad_rows given as a percentage, as a share; < 0 = none */
    char *table_dir;      /* [output] table (required) */
    head_config head;     /* [output] head, top_k, threshold(s), max_labels, all_scores,
                             value_format (labels from [model]) */
    float *thresholds;    /* owned; head.thresholds points here */
    bool single_shard;    /* [output] shards = ranks (default) | 1 */
    duplicates_policy duplicates; /* [output] duplicates = fail (default) | first | last */
    int64_t keep_versions;/* [output] keep_versions: older versions kept besides CURRENT, default 3 */
    bool diff;            /* [output] diff: compare with the previous version (default true) */
    double max_changed;   /* [output] max_changed: share (0..1, or "N%") of keys whose top-1 may
                             change or vanish before the publish is blocked; < 0 = no gate */
    int64_t batch_rows;   /* [run] batch_rows, default 1024 */
    int64_t memory_mb;    /* [run] memory_mb per rank for pairs and shuffle buffers, default 512 */
    char *spill_dir;      /* [run] spill_dir, default $TMPDIR or /tmp */
    int64_t split_mb;     /* [run] split_mb: largest input segment, default 64 */
    char *lock_path;      /* [run] lock, default TABLE/.lock-<job> */
    char *report_path;    /* [run] report (JSON), default TABLE/report-<job>.json */
    char *metrics_path;   /* [run] metrics_textfile (Prometheus), or NULL */
    /* [run] checkpoint: keep per-segment map outputs for --resume.  auto (the default): only
     * when the input is at least JOB_CHECKPOINT_AUTO_BYTES (the run decides, jobs/run.c). */
    bool checkpoint, checkpoint_auto;
    char *checkpoint_dir; /* [run] checkpoint_dir, default TABLE/.checkpoint-<job> */
} job_config;

/* Loads path, applies "section.key=value" overrides in order, validates and resolves.
 * On failure *out is NULL. */
pc_status job_config_load(const char *path, char *const *overrides, int noverrides,
                          job_config **out, char *err, size_t errlen);
/* A job given only by "section.key=value" assignments (`precast predict`): relative paths are
 * taken from the working directory; `name` (e.g. "predict") stands for the file in messages
 * and is the default job name. */
pc_status job_config_from_assignments(const char *name, char *const *assignments, int n, job_config **out,
                                      char *err, size_t errlen);
void job_config_free(job_config *c); /* accepts NULL */

/* Reads a labels file: one class name per line, trailing '\r' stripped, a final empty line
 * ignored. An empty label or an unreadable file is an error naming file and line. */
pc_status labels_read(const char *path, char ***labels, int64_t *n, char *err, size_t errlen);
void labels_free(char **labels, int64_t n);

#endif
