/* optim.c — optimisers, clipping and schedules; see optim.h.  The update formulas follow
 * PyTorch 1.13's single-tensor implementations step by step (including where they compute in
 * float), so that test_net can compare one step with PyTorch's to 1e-5. */
#include "trainer/optim.h"

#include <math.h>
#include <stdlib.h>

struct optim {
    optim_config cfg;
    int64_t t;       /* steps taken */
    int nparams;     /* the net's parameter count when created */
    int64_t *offset; /* (nparams) start of each trainable parameter's state, -1 for buffers */
    int64_t *count;  /* (nparams) its element count, to catch a different net */
    float *state;    /* SGD: momentum buffer; Adam: m then v, each `total` floats */
    int64_t total;
};

void optim_config_init(optim_config *c, optim_kind kind)
{
    c->kind = kind;
    c->lr = 1e-3;
    c->momentum = 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->l2 = 0.0;
    c->lazy_sparse = false;
}

static pc_status check_config(const optim_config *c, char *err, size_t errlen)
{
    if (c->kind != OPTIM_SGD && c->kind != OPTIM_ADAM)
        return pc_err(err, errlen, PC_ERR_CONFIG, "unknown optimizer");
    if (!(isfinite(c->lr) && c->lr >= 0.0))
        return pc_err(err, errlen, PC_ERR_CONFIG, "learning rate %g must be a number >= 0", c->lr);
    if (!(isfinite(c->momentum) && c->momentum >= 0.0))
        return pc_err(err, errlen, PC_ERR_CONFIG, "momentum %g must be a number >= 0", c->momentum);
    if (!(c->beta1 >= 0.0 && c->beta1 < 1.0) || !(c->beta2 >= 0.0 && c->beta2 < 1.0))
        return pc_err(err, errlen, PC_ERR_CONFIG, "Adam betas %g, %g must be in [0, 1)", c->beta1,
                      c->beta2);
    if (c->kind == OPTIM_ADAM && !(isfinite(c->eps) && c->eps > 0.0))
        return pc_err(err, errlen, PC_ERR_CONFIG, "Adam eps %g must be > 0", c->eps);
    if (!(isfinite(c->l2) && c->l2 >= 0.0))
        return pc_err(err, errlen, PC_ERR_CONFIG, "l2 %g must be a number >= 0", c->l2);
    return PC_OK;
}

pc_status optim_create(const optim_config *cfg, const net *n, optim **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    pc_status st = check_config(cfg, err, errlen);
    if (st != PC_OK) return st;
    optim *o = calloc(1, sizeof *o);
    int np = net_param_count(n);
    if (o != NULL) {
        o->offset = calloc((size_t)np + 1, sizeof *o->offset);
        o->count = calloc((size_t)np + 1, sizeof *o->count);
    }
    if (o == NULL || o->offset == NULL || o->count == NULL) {
        optim_free(o);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the optimizer");
    }
    o->cfg = *cfg;
    o->nparams = np;
    for (int k = 0; k < np; k++) {
        net_param p;
        net_param_get((net *)n, k, &p); /* reads only */
        o->count[k] = p.count;
        o->offset[k] = p.grad != NULL ? o->total : -1;
        if (p.grad != NULL) o->total += p.count;
    }
    size_t per = cfg->kind == OPTIM_ADAM ? 2 : 1;
    o->state = calloc((size_t)(o->total > 0 ? o->total : 1) * per, sizeof *o->state);
    if (o->state == NULL) {
        optim_free(o);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the optimizer state (%lld MB)",
                      (long long)((o->total * (int64_t)per * 4) >> 20));
    }
    *out = o;
    return PC_OK;
}

void optim_free(optim *o)
{
    if (o == NULL) return;
    free(o->offset);
    free(o->count);
    free(o->state);
    free(o);
}

int64_t optim_steps(const optim *o) { return o->t; }

static void sgd_update(const optim_config *c, float *w, const float *g, float *buf, int64_t n,
                       float lr, bool first)
{
    float l2 = (float)c->l2, mom = (float)c->momentum;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + l2 * w[i];
        if (mom != 0.0f) {
            buf[i] = first ? d : mom * buf[i] + d;
            d = buf[i];
        }
        w[i] -= lr * d;
    }
}

/* Adam in blocks of ADAM_BLOCK elements through local arrays: every load of a block before
 * every store, so GCC -O2 vectorises all but the square roots (which stay scalar calls
 * because of errno) without run-time alias checks. */
#define ADAM_BLOCK 8

static inline void adam_block(float *w, const float *g, float *m, float *v, int64_t n, float l2, float b1,
                       float b2, float eps, float step_size, float bc2_sqrt)
{
    float mm[ADAM_BLOCK], vv[ADAM_BLOCK], den[ADAM_BLOCK];
    for (int64_t k = 0; k < n; k++) {
        float d = g[k] + l2 * w[k];
        mm[k] = m[k] * b1 + (1.0f - b1) * d;
        vv[k] = v[k] * b2 + (1.0f - b2) * d * d;
    }
    for (int64_t k = 0; k < n; k++) den[k] = sqrtf(vv[k]);
    for (int64_t k = 0; k < n; k++) {
        m[k] = mm[k];
        v[k] = vv[k];
        w[k] -= step_size * (mm[k] / (den[k] / bc2_sqrt + eps));
    }
}

static void adam_update(const optim_config *c, float *w, const float *g, float *m, float *v,
                        int64_t n, double lr, int64_t t)
{
    float l2 = (float)c->l2, b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    int64_t i = 0;
    for (; i + ADAM_BLOCK <= n; i += ADAM_BLOCK) /* a constant trip count: vectorised */
        adam_block(w + i, g + i, m + i, v + i, ADAM_BLOCK, l2, b1, b2, eps, step_size, bc2_sqrt);
    if (i < n) adam_block(w + i, g + i, m + i, v + i, n - i, l2, b1, b2, eps, step_size, bc2_sqrt);
}

/* One update of n elements of a parameter; state is its slice of the SGD buffer or of m
 * (v sits `total` floats further). */
static void update(const optim *o, float *w, const float *g, float *state, int64_t n,
                   double lr_now)
{
    if (o->cfg.kind == OPTIM_SGD)
        sgd_update(&o->cfg, w, g, state, n, (float)lr_now, o->t == 1);
    else
        adam_update(&o->cfg, w, g, state, state + o->total, n, lr_now, o->t);
}

void optim_step(optim *o, net *n, double lr_now)
{
    int np = net_param_count(n);
    if (np != o->nparams) return; /* another net: nothing sensible to do */
    o->t++;
    for (int k = 0; k < np; k++) {
        net_param p;
        net_param_get(n, k, &p);
        if (p.grad == NULL || o->offset[k] < 0 || p.count != o->count[k]) continue;
        float *s = o->state + o->offset[k];
        if (o->cfg.lazy_sparse && p.touched_rows != NULL) {
            for (int64_t r = 0; r < p.touched_count; r++) {
                int64_t at = p.touched_rows[r] * p.row_width;
                update(o, p.value + at, p.grad + at, s + at, p.row_width, lr_now);
            }
        } else {
            update(o, p.value, p.grad, s, p.count, lr_now);
        }
    }
}

/* Sum of squares of a parameter's gradient, over its touched rows when it is sparse. */
static double grad_sumsq(const net_param *p)
{
    double s = 0.0;
    if (p->grad == NULL) return 0.0;
    if (p->touched_rows == NULL) {
        for (int64_t i = 0; i < p->count; i++) s += (double)p->grad[i] * p->grad[i];
        return s;
    }
    for (int64_t r = 0; r < p->touched_count; r++) {
        const float *g = p->grad + p->touched_rows[r] * p->row_width;
        for (int64_t i = 0; i < p->row_width; i++) s += (double)g[i] * g[i];
    }
    return s;
}

static void grad_scale(const net_param *p, float f)
{
    if (p->grad == NULL) return;
    if (p->touched_rows == NULL) {
        for (int64_t i = 0; i < p->count; i++) p->grad[i] *= f;
        return;
    }
    for (int64_t r = 0; r < p->touched_count; r++) {
        float *g = p->grad + p->touched_rows[r] * p->row_width;
        for (int64_t i = 0; i < p->row_width; i++) g[i] *= f;
    }
}

double optim_param_grad_norm(net *n, int param)
{
    net_param p;
    if (net_param_get(n, param, &p) != PC_OK) return 0.0;
    return sqrt(grad_sumsq(&p));
}

double optim_clip_global_norm(net *n, double max_norm)
{
    int np = net_param_count(n);
    double s = 0.0;
    for (int k = 0; k < np; k++) {
        net_param p;
        net_param_get(n, k, &p);
        s += grad_sumsq(&p);
    }
    double norm = sqrt(s);
    if (max_norm > 0.0) {
        double coef = max_norm / (norm + 1e-6); /* clip_grad_norm_'s formula */
        if (coef < 1.0)
            for (int k = 0; k < np; k++) {
                net_param p;
                net_param_get(n, k, &p);
                grad_scale(&p, (float)coef);
            }
    }
    return norm;
}

double optim_schedule_lr(optim_schedule s, double base, int64_t step, int64_t total_steps,
                         int64_t step_size, double gamma)
{
    if (step < 0) step = 0;
    switch (s) {
    case OPTIM_SCHEDULE_STEP:
        if (step_size <= 0) step_size = 1;
        return base * pow(gamma, (double)(step / step_size));
    case OPTIM_SCHEDULE_COSINE:
        if (total_steps <= 0) return base;
        if (step >= total_steps) return 0.0;
        return base * (1.0 + cos(M_PI * (double)step / (double)total_steps)) / 2.0;
    case OPTIM_SCHEDULE_CONSTANT:
    default: return base;
    }
}
