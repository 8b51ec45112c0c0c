/*
 * diagnose.h — what went wrong in a training run, read from its curves.
 *
 * The detectors are pure functions of the recorded curves (per-step loss and per-layer
 * gradient norms, per-epoch train/validation loss and dead-unit shares), so that each can be
 * tested on synthetic curves and each claim in the report is backed by the curves CSV.
 * Each finding has a stable name, a one-line explanation with the figures that triggered it,
 * and the standard advice.
 *
 * Thresholds (chosen so a healthy run on digits triggers none, and each provoked failure of
 * tests/integration/test_train.sh triggers its own):
 *   diverging       a non-finite loss; a step loss above 10x the first step's while the last
 *                   tenth of the steps stays above half the first step's loss; or the last
 *                   tenth of the steps averages more than 1.5x the first tenth (or the last
 *                   epoch's train loss > 1.5x the first's)
 *   not_decreasing  not diverging, and the last tenth of the steps averages more than 0.95x
 *                   the first tenth (less than 5 % progress)
 *   jumping         not diverging: a step loss above 10x the first step's that training
 *                   recovered from; or over the second half of the steps, the loss minus its
 *                   moving average has a standard deviation above 0.2x the initial loss; or
 *                   (4+ epochs) the epoch train loss rose by more than 10 % in a third of the
 *                   epochs
 *   overfitting     validation loss ended more than 20 % above its minimum, at least three
 *                   epochs after it, while the train loss kept falling
 *   vanishing       over the last epoch, the lowest dense layer's median gradient norm is
 *                   below 1e-3 times the top (head) layer's
 *   exploding       a non-finite gradient norm, or the last epoch's largest gradient norm is
 *                   above 100x the first epoch's median (and above 10)
 *   dead_relu       a ReLU layer's units that output <= 0 for every row of the last epoch
 *                   make up 50 % or more of it
 *
 * Ownership: the curves are borrowed for the call; findings are written into the caller's array.
 */
#ifndef PRECAST_DIAGNOSE_H
#define PRECAST_DIAGNOSE_H

#include <stdint.h>

typedef enum diag_kind {
    DIAG_NOT_DECREASING = 0,
    DIAG_DIVERGING,
    DIAG_JUMPING,
    DIAG_OVERFITTING,
    DIAG_VANISHING,
    DIAG_EXPLODING,
    DIAG_DEAD_RELU,
    DIAG_KIND_COUNT
} diag_kind;

typedef struct diag_curves {
    int64_t nsteps;
    const double *step_loss;     /* (nsteps) training loss of each step */
    const int64_t *step_epoch;   /* (nsteps) 0-based epoch of each step */
    int nlayers;                 /* dense layers with gradient norms, lowest first, head last */
    const char *const *layer_names; /* (nlayers) e.g. "dense0", "head" */
    const double *grad_norm;     /* (nsteps, nlayers) L2 norm of each layer's weight gradient */
    int64_t nepochs;
    const double *train_loss;    /* (nepochs) mean training loss of each epoch */
    const double *val_loss;      /* (nepochs) validation loss, or NULL / NaN without a split */
    const double *dead_share;    /* (nepochs, nlayers) share of dead units, < 0 when not a ReLU */
} diag_curves;

typedef struct diag_finding {
    diag_kind kind;
    int layer;                   /* the layer concerned, or -1 */
    char evidence[320];          /* the figures that triggered it */
} diag_finding;

/* Runs every detector; writes at most max findings (in diag_kind order, dead_relu one per
 * layer) and returns how many were found (which may exceed max). */
int diag_run(const diag_curves *c, diag_finding *out, int max);

const char *diag_name(diag_kind k);     /* "diverging", ... */
const char *diag_title(diag_kind k);    /* "Loss diverging or NaN" */
const char *diag_explain(diag_kind k);  /* what it means */
const char *diag_advice(diag_kind k);   /* the standard remedies */

#endif
