#include "trainer/diagnose.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name, *title, *explain, *advice;
} INFO[DIAG_KIND_COUNT] = {
    [DIAG_NOT_DECREASING] = {"not_decreasing", "Loss not decreasing",
                             "The training loss stayed where it started: the steps are too small to move the weights, "
                             "or training stopped long before it could converge.",
                             "Raise the learning rate (by 10x at a time), or train for more epochs; check that the "
                             "labels are what the features can predict."},
    [DIAG_DIVERGING] = {"diverging", "Loss diverging or NaN",
                        "The training loss grew instead of falling, or became NaN/inf: each step overshoots the "
                        "minimum by more than it gains.",
                        "Lower the learning rate (by 10x), set train.clip_norm (e.g. 1.0), and check the features "
                        "for huge or unscaled values."},
    [DIAG_JUMPING] = {"jumping", "Loss jumping around",
                      "The training loss moves up and down by a large share of its level from one step or epoch "
                      "to the next instead of settling: the steps are too large for the curvature, or the batches "
                      "too small to estimate the gradient.",
                      "Lower the learning rate (or use a step/cosine schedule), or raise train.batch_rows."},
    [DIAG_OVERFITTING] = {"overfitting", "Overfitting",
                          "The validation loss rose again while the training loss kept falling: the network is "
                          "learning the training rows rather than the pattern.",
                          "Add dropout or L2 (train.l2), use train.early_stopping, get more training data, or "
                          "make the network smaller."},
    [DIAG_VANISHING] = {"vanishing_gradients", "Vanishing gradients",
                        "The lowest layers' gradients are orders of magnitude smaller than the top layer's, so the "
                        "lowest layers barely learn (typical of deep sigmoid/tanh stacks).",
                        "Use ReLU or LeakyReLU instead of sigmoid/tanh, add batch norm, use fewer layers, or a "
                        "variance-preserving initialisation."},
    [DIAG_EXPLODING] = {"exploding_gradients", "Exploding gradients",
                        "The gradient norms grew without bound (or became NaN/inf) during training.",
                        "Add batch norm, lower the learning rate, and clip the gradient norm (train.clip_norm)."},
    [DIAG_DEAD_RELU] = {"dead_relu", "Dead ReLU units",
                        "Many ReLU units output zero for every training row of the last epoch; a dead unit gets no "
                        "gradient and never recovers.",
                        "Lower the learning rate, use LeakyReLU, check the bias initialisation (it should not be "
                        "large and negative), add batch norm before the activation."},
};

const char *diag_name(diag_kind k) { return (unsigned)k < DIAG_KIND_COUNT ? INFO[k].name : "?"; }
const char *diag_title(diag_kind k) { return (unsigned)k < DIAG_KIND_COUNT ? INFO[k].title : "?"; }
const char *diag_explain(diag_kind k) { return (unsigned)k < DIAG_KIND_COUNT ? INFO[k].explain : "?"; }
const char *diag_advice(diag_kind k) { return (unsigned)k < DIAG_KIND_COUNT ? INFO[k].advice : "?"; }

typedef struct sink {
    diag_finding *out;
    int max, n;
} sink;

static void found(sink *s, diag_kind k, int layer, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void found(sink *s, diag_kind k, int layer, const char *fmt, ...)
{
    if (s->n < s->max) {
        diag_finding *f = &s->out[s->n];
        f->kind = k;
        f->layer = layer;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->evidence, sizeof f->evidence, fmt, ap);
        va_end(ap);
    }
    s->n++;
}

/* Mean of v[from, to) (finite values only; NaN if none). */
static double mean_of(const double *v, int64_t from, int64_t to)
{
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = from; i < to; i++)
        if (isfinite(v[i])) {
            sum += v[i];
            n++;
        }
    return n ? sum / (double)n : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of column `col` of a (rows, stride) matrix over rows [from, to); NaN if empty. */
static double median_col(const double *m, int stride, int col, int64_t from, int64_t to)
{
    if (to <= from) return NAN;
    double *tmp = malloc((size_t)(to - from) * sizeof *tmp);
    if (tmp == NULL) return NAN;
    int64_t n = 0;
    for (int64_t i = from; i < to; i++)
        if (isfinite(m[i * stride + col])) tmp[n++] = m[i * stride + col];
    double med = NAN;
    if (n > 0) {
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
        med = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    }
    free(tmp);
    return med;
}

/* First step of the last epoch (0 if epochs are not recorded). */
static int64_t last_epoch_start(const diag_curves *c)
{
    if (c->nsteps == 0 || c->step_epoch == NULL) return 0;
    int64_t last = c->step_epoch[c->nsteps - 1], i = c->nsteps;
    while (i > 0 && c->step_epoch[i - 1] == last) i--;
    return i;
}

static int64_t first_epoch_end(const diag_curves *c)
{
    if (c->step_epoch == NULL) return c->nsteps;
    int64_t i = 0;
    while (i < c->nsteps && c->step_epoch[i] == c->step_epoch[0]) i++;
    return i;
}

/* The step whose loss is largest, if it is above 10x the first step's; else -1. */
static int64_t spike_step(const diag_curves *c)
{
    if (c->nsteps < 2 || !(c->step_loss[0] > 0)) return -1;
    int64_t peak = 0;
    for (int64_t i = 1; i < c->nsteps; i++)
        if (c->step_loss[i] > c->step_loss[peak]) peak = i;
    return c->step_loss[peak] > 10 * c->step_loss[0] ? peak : -1;
}

static bool detect_diverging(const diag_curves *c, sink *s)
{
    for (int64_t i = 0; i < c->nsteps; i++)
        if (!isfinite(c->step_loss[i])) {
            found(s, DIAG_DIVERGING, -1, "the loss became %g at step %lld (epoch %lld)", c->step_loss[i], (long long)i,
                  (long long)(c->step_epoch ? c->step_epoch[i] + 1 : 1));
            return true;
        }
    /* a blow-up that settles back near the starting loss (often into dead units: chance-level
     * predictions) is divergence too; one the training recovers from well below the start is
     * jumping (detect_jumping) */
    int64_t peak = spike_step(c);
    if (peak >= 0 && c->nsteps >= 10) {
        int64_t tenth = c->nsteps / 10;
        double last = mean_of(c->step_loss, c->nsteps - tenth, c->nsteps);
        if (!(last < 0.5 * c->step_loss[0])) {
            found(s, DIAG_DIVERGING, -1, "the loss reached %.4g at step %lld, %.3gx its initial value %.4g, and ended at %.4g",
                  c->step_loss[peak], (long long)peak, c->step_loss[peak] / c->step_loss[0], c->step_loss[0], last);
            return true;
        }
    }
    if (c->nsteps >= 10) {
        int64_t tenth = c->nsteps / 10;
        double first = mean_of(c->step_loss, 0, tenth), last = mean_of(c->step_loss, c->nsteps - tenth, c->nsteps);
        if (last > 1.5 * first) {
            found(s, DIAG_DIVERGING, -1, "the last tenth of the steps averages a loss of %.4g, %.1fx the first tenth's %.4g",
                  last, last / first, first);
            return true;
        }
    }
    if (c->nepochs >= 2 && c->train_loss && isfinite(c->train_loss[0]) &&
        c->train_loss[c->nepochs - 1] > 1.5 * c->train_loss[0]) {
        found(s, DIAG_DIVERGING, -1, "train loss went from %.4g (epoch 1) to %.4g (epoch %lld)", c->train_loss[0],
              c->train_loss[c->nepochs - 1], (long long)c->nepochs);
        return true;
    }
    return false;
}

static void detect_not_decreasing(const diag_curves *c, sink *s)
{
    if (c->nsteps < 10) return;
    int64_t tenth = c->nsteps / 10;
    double first = mean_of(c->step_loss, 0, tenth), last = mean_of(c->step_loss, c->nsteps - tenth, c->nsteps);
    if (first > 0 && last > 0.95 * first)
        found(s, DIAG_NOT_DECREASING, -1,
              "the last tenth of the %lld steps averages a loss of %.4g against %.4g for the first tenth (%.1f %% lower)",
              (long long)c->nsteps, last, first, 100 * (first - last) / first);
}

static void detect_jumping(const diag_curves *c, sink *s)
{
    int64_t peak = spike_step(c);
    if (peak >= 0) {
        found(s, DIAG_JUMPING, -1, "the loss spiked to %.4g at step %lld, %.3gx its initial value %.4g, before coming back down",
              c->step_loss[peak], (long long)peak, c->step_loss[peak] / c->step_loss[0], c->step_loss[0]);
        return;
    }
    if (c->nsteps >= 20) {
        int64_t tenth = c->nsteps / 10, half = c->nsteps / 2;
        int64_t w = c->nsteps / 20 > 3 ? c->nsteps / 20 : 3;
        double first = mean_of(c->step_loss, 0, tenth), sq = 0;
        int64_t n = 0;
        for (int64_t i = half; i < c->nsteps; i++) {
            int64_t lo = i - w >= 0 ? i - w : 0, hi = i + w + 1 <= c->nsteps ? i + w + 1 : c->nsteps;
            double r = c->step_loss[i] - mean_of(c->step_loss, lo, hi);
            if (isfinite(r)) {
                sq += r * r;
                n++;
            }
        }
        double sd = n ? sqrt(sq / (double)n) : 0;
        if (first > 0 && sd > 0.2 * first) {
            found(s, DIAG_JUMPING, -1,
                  "over the second half of the steps the loss swings around its moving average by %.4g (standard "
                  "deviation), %.0f %% of the initial loss %.4g",
                  sd, 100 * sd / first, first);
            return;
        }
    }
    if (c->nepochs >= 4 && c->train_loss) {
        int64_t rises = 0;
        for (int64_t e = 1; e < c->nepochs; e++)
            if (c->train_loss[e] > 1.1 * c->train_loss[e - 1]) rises++;
        if (3 * rises >= c->nepochs - 1)
            found(s, DIAG_JUMPING, -1, "the epoch train loss rose by more than 10 %% in %lld of %lld epochs",
                  (long long)rises, (long long)(c->nepochs - 1));
    }
}

static void detect_overfitting(const diag_curves *c, sink *s)
{
    if (c->val_loss == NULL || c->train_loss == NULL || c->nepochs < 3) return;
    int64_t best = -1;
    for (int64_t e = 0; e < c->nepochs; e++)
        if (isfinite(c->val_loss[e]) && (best < 0 || c->val_loss[e] < c->val_loss[best])) best = e;
    if (best < 0) return;
    int64_t last = c->nepochs - 1;
    double v = c->val_loss[last];
    if (isfinite(v) && last - best >= 3 && v > 1.2 * c->val_loss[best] && c->train_loss[last] < c->train_loss[best])
        found(s, DIAG_OVERFITTING, -1,
              "validation loss was lowest at epoch %lld (%.4g) and ended at %.4g (+%.0f %%) while the train loss "
              "fell from %.4g to %.4g",
              (long long)best + 1, c->val_loss[best], v, 100 * (v / c->val_loss[best] - 1), c->train_loss[best],
              c->train_loss[last]);
}

static void detect_vanishing(const diag_curves *c, sink *s)
{
    if (c->nlayers < 2 || c->grad_norm == NULL || c->nsteps == 0) return;
    int64_t from = last_epoch_start(c);
    double low = median_col(c->grad_norm, c->nlayers, 0, from, c->nsteps);
    double top = median_col(c->grad_norm, c->nlayers, c->nlayers - 1, from, c->nsteps);
    if (isfinite(low) && isfinite(top) && top > 0 && low < 1e-3 * top)
        found(s, DIAG_VANISHING, 0,
              "in the last epoch the median gradient norm of %s (lowest layer) is %.3g, %.1e times that of %s (top) at %.3g",
              c->layer_names ? c->layer_names[0] : "layer 0", low, low / top,
              c->layer_names ? c->layer_names[c->nlayers - 1] : "the top layer", top);
}

static void detect_exploding(const diag_curves *c, sink *s)
{
    if (c->nlayers < 1 || c->grad_norm == NULL || c->nsteps == 0) return;
    for (int64_t i = 0; i < c->nsteps; i++)
        for (int l = 0; l < c->nlayers; l++)
            if (!isfinite(c->grad_norm[i * c->nlayers + l])) {
                found(s, DIAG_EXPLODING, l, "the gradient norm of %s became %g at step %lld",
                      c->layer_names ? c->layer_names[l] : "a layer", c->grad_norm[i * c->nlayers + l], (long long)i);
                return;
            }
    int64_t first_end = first_epoch_end(c), from = last_epoch_start(c);
    for (int l = 0; l < c->nlayers; l++) {
        double base = median_col(c->grad_norm, c->nlayers, l, 0, first_end), peak = 0;
        for (int64_t i = from; i < c->nsteps; i++)
            if (c->grad_norm[i * c->nlayers + l] > peak) peak = c->grad_norm[i * c->nlayers + l];
        if (from > 0 && base > 0 && peak > 100 * base && peak > 10) {
            found(s, DIAG_EXPLODING, l,
                  "the gradient norm of %s reached %.3g in the last epoch, %.0fx its first-epoch median %.3g",
                  c->layer_names ? c->layer_names[l] : "a layer", peak, peak / base, base);
            return;
        }
    }
}

static void detect_dead(const diag_curves *c, sink *s)
{
    if (c->dead_share == NULL || c->nepochs == 0) return;
    const double *last = c->dead_share + (c->nepochs - 1) * c->nlayers;
    for (int l = 0; l < c->nlayers; l++)
        if (last[l] >= 0.5)
            found(s, DIAG_DEAD_RELU, l, "%.0f %% of the units of %s output zero for every row of epoch %lld",
                  100 * last[l], c->layer_names ? c->layer_names[l] : "a layer", (long long)c->nepochs);
}

int diag_run(const diag_curves *c, diag_finding *out, int max)
{
    sink s = {out, max, 0};
    bool diverging = false;
    /* Findings come out in diag_kind order; diverging is decided first because two others
     * (not decreasing, jumping) mean nothing once the loss blows up. */
    sink probe = {NULL, 0, 0};
    diverging = detect_diverging(c, &probe);
    if (!diverging) detect_not_decreasing(c, &s);
    if (diverging) detect_diverging(c, &s);
    if (!diverging) detect_jumping(c, &s);
    detect_overfitting(c, &s);
    detect_vanishing(c, &s);
    detect_exploding(c, &s);
    detect_dead(c, &s);
    return s.n;
}
