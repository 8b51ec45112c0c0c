/*
 * train_report.h — what a training run records and writes: the per-step curves (CSV), the
 * report (JSON and text) with the diagnostics, and loss.png (gnuplot).
 *
 * Only rank 0 records and writes; the figures it records are already global (gradients are
 * summed before they are measured, losses reduced across ranks).
 *
 * Ownership: a train_curves owns its arrays (grown as steps are added); train_curves_free
 * releases them. The writers borrow everything for the call.
 */
#ifndef PRECAST_TRAIN_REPORT_H
#define PRECAST_TRAIN_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"
#include "trainer/diagnose.h"
#include "trainer/train_config.h"

typedef struct train_curves {
    int nlayers;             /* dense layers with gradient norms (lowest first, head last) */
    char **layer_names;      /* "dense0", ..., "head" */
    bool *layer_relu;        /* has a dead-unit share */
    int64_t nsteps, step_cap;
    double *loss, *lr, *grad_norm; /* (nsteps) grad_norm: global, before clipping */
    double *layer_norm;      /* (nsteps, nlayers) */
    int64_t *epoch;          /* (nsteps) 0-based */
    int64_t nepochs, epoch_cap;
    double *train_loss, *val_loss, *val_metric, *rows_per_s, *seconds; /* (nepochs) */
    double *dead;            /* (nepochs, nlayers), -1 where not a ReLU layer */
} train_curves;

/* names: nlayers layer names (copied); relu[i]: layer i has dead-unit shares. */
pc_status train_curves_init(train_curves *c, int nlayers, const char *const *names, const bool *relu, char *err,
                            size_t errlen);
pc_status train_curves_add_step(train_curves *c, int64_t epoch, double loss, double lr, double grad_norm,
                                const double *layer_norms, char *err, size_t errlen);
pc_status train_curves_add_epoch(train_curves *c, double train_loss, double val_loss, double val_metric,
                                 double rows_per_s, double seconds, const double *dead, char *err, size_t errlen);
void train_curves_free(train_curves *c);

/* The detectors' view of the curves (pointers into c). */
void train_curves_diag(const train_curves *c, bool have_val, diag_curves *d);

/* step,epoch,loss,lr,grad_norm,grad_norm.<layer>...,dead.<layer>...,val_loss,val_metric:
 * one line per step; the dead shares and validation figures on each epoch's last step. */
pc_status train_curves_write_csv(const train_curves *c, const char *path, char *err, size_t errlen);

/* Everything the report says besides the curves. */
typedef struct train_summary {
    const train_config *cfg;
    int ranks;
    int64_t train_rows, val_rows, test_rows;
    int64_t dense_width, classes, outputs, params;
    const char *metric_name;    /* "accuracy", "top10_recall", "mse" */
    int64_t best_epoch;         /* 1-based epoch whose weights were exported */
    bool stopped_early;
    bool stopped_nan;
    double seconds, rows_per_s;
    double test_loss, test_metric; /* NaN without test rows */
    double test_accuracy;       /* class heads: top-1 accuracy on the test rows, else NaN */
    double test_top10;          /* class heads: top-10 recall on the test rows, else NaN */
    const char *stats_note;     /* why model.stats.json is missing, or NULL */
    bool weights_resynced;      /* ranks' weights had drifted apart and were re-broadcast */
} train_summary;

/* report_path (JSON) and report_path with .json replaced by .txt (or + ".txt"). */
pc_status train_report_write(const train_summary *s, const train_curves *c, const diag_finding *f, int nfound,
                             char *err, size_t errlen);

/* Draws loss.png from the curves CSV with gnuplot. Returns false (and a reason in why) when
 * gnuplot is missing or fails: the caller warns; no plot is not an error. */
bool train_plot(const train_curves *c, const char *csv_path, const char *png_path, char *why, size_t whylen);

#endif
