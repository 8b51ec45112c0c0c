/*
 * optim.h — the optimisers of `precast train` (SGD with momentum, Adam), gradient clipping by
 * global norm and the learning-rate schedules, each defined exactly as PyTorch's
 * (torch.optim.SGD / Adam with weight_decay, clip_grad_norm_, StepLR, CosineAnnealingLR), so
 * that one step can be checked against PyTorch.
 *
 * Ownership: optim_create allocates the optimiser's state (momentum buffer, or Adam's two
 * moments) for every trainable parameter of the net it is given, once; a step allocates
 * nothing.  The optimiser keeps no pointer into the net between calls: pass the same net (or
 * one built from the same spec) to every optim_step.
 *
 * Sparse gradients: by default every element of every trainable parameter is updated each
 * step, as PyTorch does for a dense-gradient embedding (a row not used this step still moves
 * while its momentum decays; the gradient of rows not in touched_rows is zero); with
 * optim_config.lazy_sparse only the touched rows are.
 */
#ifndef PRECAST_OPTIM_H
#define PRECAST_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"
#include "trainer/net.h"

typedef enum optim_kind {
    OPTIM_SGD = 0, /* buf = momentum*buf + g (buf = g at the first step); p -= lr*buf */
    OPTIM_ADAM     /* m, v with bias correction; p -= lr*mhat/(sqrt(vhat)+eps) */
} optim_kind;

typedef struct optim_config {
    optim_kind kind;
    double lr;       /* base learning rate (optim_step takes the scheduled one) */
    double momentum; /* SGD; 0 = plain SGD */
    double beta1;    /* Adam; 0.9 is PyTorch's default */
    double beta2;    /* Adam; 0.999 */
    double eps;      /* Adam; 1e-8 */
    double l2;       /* weight decay: g += l2 * p before the update (PyTorch's weight_decay),
                        on every trainable parameter */
    bool lazy_sparse; /* false (default): every element moves each step, as PyTorch's dense
                         optimisers do.  true: a parameter with a sparse gradient (embedding
                         tables, a sampled head) updates only its touched rows, whose moments
                         and momentum alone advance (TensorFlow's LazyAdam, PyTorch's
                         SparseAdam): a step then costs the rows used, not the vocabulary or
                         the class count (a 20,000 x 64 head: most of the step otherwise) */
} optim_config;

/* Fills *c with PyTorch's defaults for kind (lr 1e-3, momentum 0, betas 0.9/0.999, eps 1e-8,
 * l2 0, lazy_sparse false). */
void optim_config_init(optim_config *c, optim_kind kind);

typedef struct optim optim;

/* Creates an optimiser for net's trainable parameters.  On error (a negative or non-finite
 * rate, betas outside [0, 1), out of memory) returns non-OK with a message and *out is NULL.
 * The caller frees *out with optim_free. */
pc_status optim_create(const optim_config *cfg, const net *n, optim **out, char *err,
                       size_t errlen);
void optim_free(optim *o); /* NULL is fine */

/* One update of every trainable parameter of n from its grad, at learning rate lr_now. */
void optim_step(optim *o, net *n, double lr_now);

/* Number of optim_step calls so far (Adam's t). */
int64_t optim_steps(const optim *o);

/* The L2 norm of all trainable gradients together (computed in double); if it exceeds
 * max_norm (> 0), every gradient is scaled by max_norm / (norm + 1e-6) as
 * clip_grad_norm_ does.  max_norm <= 0 only measures.  Returns the norm before clipping
 * (NaN or inf if a gradient is). */
double optim_clip_global_norm(net *n, double max_norm);

/* L2 norm of the gradient of one parameter (0 for a buffer). */
double optim_param_grad_norm(net *n, int param);

typedef enum optim_schedule {
    OPTIM_SCHEDULE_CONSTANT = 0,
    OPTIM_SCHEDULE_STEP,  /* base * gamma^floor(step / step_size) (StepLR) */
    OPTIM_SCHEDULE_COSINE /* base * (1 + cos(pi * step / total_steps)) / 2 (CosineAnnealingLR,
                             eta_min 0); total_steps and beyond give 0 */
} optim_schedule;

/* The learning rate at step (0-based) of a schedule; step_size <= 0 is taken as 1 and
 * total_steps <= 0 as constant. */
double optim_schedule_lr(optim_schedule s, double base, int64_t step, int64_t total_steps,
                         int64_t step_size, double gamma);

#endif
