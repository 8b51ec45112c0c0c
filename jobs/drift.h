/*
 * drift.h — input and output drift (issue 10, docs/DRIFT.md): which columns a job sketches,
 * the distances between a run's sketch and the training statistics, and what the run says
 * about them (report, summary line, Prometheus samples, the gate).
 *
 * Measures, per dense feature, over 23 buckets — below the training range, the 20 training
 * bins, above the range, missing:
 *   PSI  = sum_i (q_i - p_i) * ln(q_i / p_i), p the training shares, q tonight's, each share
 *          below DRIFT_EPS raised to DRIFT_EPS (so an empty bucket costs a finite amount);
 *   JS   = the Jensen–Shannon distance sqrt(JSD) with log base 2, in [0, 1] (no epsilon:
 *          0 log 0 = 0);
 *   the share of tonight's values outside the training [min, max] (below + above buckets),
 *   the share of missing values.
 * Per id column: the share of tonight's ids that the training vocabulary lacks.
 * Output drift: the PSI of the score histogram ([0, 1], 20 bins + below/above/missing) and of
 * the class shares (union of both versions' classes, same epsilon) against the previous
 * published version's output statistics (VERSION/output.stats.json).
 *
 * Levels: a dense feature is at warn level when PSI >= input.drift_psi_warn, at gate level when
 * PSI >= input.drift_psi_gate; an id column likewise with its unseen share against
 * drift_unseen_warn / drift_unseen_gate.  Output drift only warns (it follows from the inputs
 * and the model, and a new model changes it on purpose).
 *
 * Ownership: results own their strings; drift_result_free releases them.  No MPI here: the
 * driver merges the sketches (featstats_merge) before calling these on rank 0.
 */
#ifndef PRECAST_DRIFT_H
#define PRECAST_DRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/job.h"
#include "kernels/model.h"
#include "kernels/status.h"
#include "mapper/featstats.h"

#define DRIFT_EPS 1e-4               /* smallest share a PSI bucket counts with */
#define DRIFT_BUCKETS (FEATSTATS_BINS + 3)

/* The columns a job's map loop sketches, in the sketch's order (mapper/map.h): for each model
 * input in order, a float input's columns are dense features, an int64 input's columns id
 * columns (a bag column is one; hashed columns are string ids).  Without bindings or
 * features, the dense features are the header columns of first_csv but the id column. */
typedef struct drift_columns {
    char **dense;
    int64_t ndense;
    char **ids;
    int64_t nids;
    featstats_id_kind *kinds;
} drift_columns;

pc_status drift_columns_of(const job_config *cfg, const model *m, const char *first_csv, drift_columns *out,
                           char *err, size_t errlen);
void drift_columns_free(drift_columns *c);

/* PSI and JS distance of two histograms of n buckets (counts; p the reference).  An all-zero
 * histogram on either side gives 0 (nothing to compare). */
double drift_psi(const int64_t *p, const int64_t *q, int n);
double drift_js(const int64_t *p, const int64_t *q, int n);

/* The 23 buckets of a dense feature: below, bins, above, missing. */
void drift_buckets(const featstats_dense *d, int64_t out[DRIFT_BUCKETS]);

typedef enum drift_level { DRIFT_LEVEL_OK = 0, DRIFT_LEVEL_WARN, DRIFT_LEVEL_GATE } drift_level;

typedef struct drift_item {
    char *name;
    bool id;                 /* an id column (unseen is set; psi, js, out_of_range are NaN) */
    double psi, js;
    double out_of_range;     /* share of tonight's values outside the training range */
    double missing;          /* share of tonight's values missing */
    double missing_train;    /* the same share in training */
    double unseen;           /* id columns: share of ids the training vocabulary lacks */
    double mean, mean_train, std_train; /* mean: tonight's is not sketched (NaN) */
    drift_level level;
} drift_item;

typedef struct drift_result {
    char *stats_path;        /* the training statistics compared with; NULL: inputs not checked
                                (no statistics file, drift = warn) */
    drift_item *items;       /* dense features, then id columns, in sketch order */
    int64_t n;
    int64_t rows;            /* rows sketched tonight */
    drift_level worst;
    /* output drift against the previous version, when have_output */
    bool have_output;
    char *previous;          /* that version's name */
    double score_psi, class_psi;
} drift_result;

/* Compares a merged COMPARE sketch with its reference (the training statistics read from
 * stats_path).  Fills *out (zeroed first). */
pc_status drift_compare_inputs(const job_config *cfg, const char *stats_path, const featstats *reference,
                               const featstats *tonight, drift_result *out, char *err, size_t errlen);

/* Adds the output drift of tonight's output profile against the previous version's. */
pc_status drift_compare_outputs(drift_result *r, const char *previous, const featstats *before,
                                const featstats *tonight, char *err, size_t errlen);

/* The output sketch of a run: a PROFILE of "score" (range [0, 1]) and id column "class". */
pc_status drift_output_sketch(featstats **out, char *err, size_t errlen);

/* Indices of r's items at level >= min_level, worst first (PSI or unseen share relative to
 * its gate threshold, then name); returns how many.  REQUIRES cap >= r->n for all of them. */
int64_t drift_ranked(const job_config *cfg, const drift_result *r, drift_level min_level, int64_t *idx, int64_t cap);

/* "x3 (PSI 4.21), user (12.5% unseen ids)" — at most max of r's drifted items (level >=
 * warn), worst first; "" when none.  Writes at most cap bytes. */
void drift_summary(const job_config *cfg, const drift_result *r, int64_t max, char *buf, size_t cap);

/* The report's "drift" value (JSON) and the Prometheus samples for the textfile, malloc'd;
 * NULL when out of memory. */
char *drift_report_json(const job_config *cfg, const drift_result *r);
char *drift_metrics_text(const drift_result *r, const char *job);

void drift_result_free(drift_result *r); /* accepts a zeroed result */

#endif
