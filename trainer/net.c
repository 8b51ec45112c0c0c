/* net.c — the trainable network; see net.h for the contract.
 *
 * Memory: net_create lays out every buffer twice with the same code (layout()): once to add
 * up the bytes, once to carve them out of a single allocation.  Parameters sit together, then
 * their gradients in the same order, then activations and scratch.
 *
 * Activations: act[i] (B, width_i) is the input of layer i; act[n_layers] feeds the head and
 * act[n_layers + 1] holds the head's logits.  dact[i] has the shape of act[i] and holds the
 * gradient of the loss with respect to it.  A dense layer with an activation keeps its
 * pre-activation z for the backward pass of ReLU / LeakyReLU. */
#include "trainer/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

#define ALIGN 64
/* BLAS sizes are ints; every product of a batch and a width stays below this. */
#define MAX_ELEMS ((int64_t)1 << 31)
#define MAX_PARAMS (NET_MAX_EMBEDS + 4 * (NET_MAX_LAYERS + 1))
/* Keys that keep the initialisation's random numbers apart from dropout's and sampling's. */
#define INIT_STEP 0x494e495449414c53ULL /* "INITIALS" */

typedef struct lay {
    net_layer_kind kind;
    bool is_head;
    int64_t in, out;
    net_act act;
    float alpha, p;
    float *w, *b, *dw, *db;      /* dense: weight (out, in), bias; batch norm: gamma, beta */
    float *running_mean, *running_var;
    float *mean, *rstd;          /* batch norm: this batch's statistics (out) */
    float *eval_scale, *eval_shift; /* batch norm in inference: folded running statistics */
    float *z;                    /* dense with an activation: pre-activation (B, out) */
    float *mask;                 /* dropout (B, out) */
    uint8_t *alive;              /* ReLU / LeakyReLU: unit seen > 0 since the reset (out) */
} lay;

typedef struct emb {
    float *table, *dtable;       /* (vocab, dim) */
    int64_t *ids;                /* (B, bag) */
    uint8_t *mark;               /* (vocab) */
    int64_t *touched;            /* (vocab) */
    int64_t touched_count;
    int64_t offset;              /* column of act[0] where the pooled vector starts */
} emb;

typedef struct param {
    char name[NET_NAME_MAX + 16];
    int layer, embed;
    float *value, *grad;
    int64_t count, row_width;
    bool is_embedding;
    int64_t *touched;            /* sparse gradients: the owner's touched list, else NULL */
    int64_t *touched_count;
    uint8_t *mark;
} param;

struct net {
    net_spec spec;
    int64_t B, in0;
    int nl;                      /* layers including the head */
    lay layers[NET_MAX_LAYERS + 1];
    emb embeds[NET_MAX_EMBEDS];
    float *act[NET_MAX_LAYERS + 2], *dact[NET_MAX_LAYERS + 2];
    float *dense_in, *label_target, *onehot, *output;
    int32_t *label_class;
    uint64_t *row_keys;
    /* sampled softmax */
    int64_t S;                   /* negatives actually drawn: min(negatives, outputs) */
    int64_t *neg;
    float *neg_logq, *true_logq, *work;
    uint8_t *sample_mark, *head_mark;
    int64_t *head_touched;
    int64_t head_touched_count;
    /* bookkeeping */
    param params[MAX_PARAMS];
    int nparams;
    int64_t dead_rows;           /* training rows seen since net_dead_reset */
    int64_t fwd_rows;            /* rows of the last forward_train, 0 if none since */
    void *block;
};

void net_spec_init(net_spec *s)
{
    memset(s, 0, sizeof *s);
    s->head = NET_HEAD_SOFTMAX;
    s->init = NET_INIT_KAIMING_UNIFORM;
    s->sampler = GRAD_SAMPLER_UNIFORM;
    s->bn_eps = 1e-5f;
    s->bn_momentum = 0.1f;
    for (int e = 0; e < NET_MAX_EMBEDS; e++) {
        s->embeds[e].bag = 1;
        s->embeds[e].padding_idx = -1;
    }
}

/* ---- validation ------------------------------------------------------------------------ */

static bool is_class_head(net_head h)
{
    return h == NET_HEAD_SOFTMAX || h == NET_HEAD_SAMPLED_SOFTMAX || h == NET_HEAD_ONE_VS_ALL;
}

static pc_status check_spec(const net_spec *s, int64_t B, char *err, size_t errlen)
{
    if (B < 1 || B >= MAX_ELEMS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "batch_rows %lld outside [1, 2^31)", (long long)B);
    if (s->n_embeds < 0 || s->n_embeds > NET_MAX_EMBEDS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%d embedding columns (at most %d)", s->n_embeds,
                      NET_MAX_EMBEDS);
    if (s->n_layers < 0 || s->n_layers > NET_MAX_LAYERS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%d layers (at most %d)", s->n_layers,
                      NET_MAX_LAYERS);
    if (s->dense_width < 0)
        return pc_err(err, errlen, PC_ERR_CONFIG, "dense input width %lld", (long long)s->dense_width);
    int64_t width = s->dense_width;
    for (int e = 0; e < s->n_embeds; e++) {
        const net_embed_spec *es = &s->embeds[e];
        if (es->name[0] == '\0' || memchr(es->name, '\0', NET_NAME_MAX) == NULL)
            return pc_err(err, errlen, PC_ERR_CONFIG, "embedding %d: no name", e);
        if (es->vocab < 1 || es->dim < 1 || es->bag < 1 || es->vocab >= MAX_ELEMS ||
            es->dim >= MAX_ELEMS || es->bag >= MAX_ELEMS || es->vocab * es->dim >= MAX_ELEMS ||
            B * es->bag >= MAX_ELEMS)
            return pc_err(err, errlen, PC_ERR_CONFIG,
                          "embedding '%s': vocabulary %lld, dimension %lld, bag %lld: each must be "
                          ">= 1 and the table below 2^31 floats",
                          es->name, (long long)es->vocab, (long long)es->dim, (long long)es->bag);
        if (es->padding_idx < -1 || es->padding_idx >= es->vocab)
            return pc_err(err, errlen, PC_ERR_CONFIG,
                          "embedding '%s': padding id %lld outside [0, %lld)", es->name,
                          (long long)es->padding_idx, (long long)es->vocab);
        width += es->dim;
    }
    if (width < 1 || width >= MAX_ELEMS || B * width >= MAX_ELEMS)
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "input width %lld (dense features plus embedding dimensions) must be >= 1",
                      (long long)width);
    for (int i = 0; i < s->n_layers; i++) {
        const net_layer_spec *l = &s->layers[i];
        switch (l->kind) {
        case NET_LAYER_DENSE:
            if (l->units < 1 || B * l->units >= MAX_ELEMS || width * l->units >= MAX_ELEMS)
                return pc_err(err, errlen, PC_ERR_CONFIG, "layer %d (dense): %lld units", i,
                              (long long)l->units);
            if ((unsigned)l->act > NET_ACT_SIGMOID || !isfinite(l->alpha))
                return pc_err(err, errlen, PC_ERR_CONFIG, "layer %d (dense): unknown activation", i);
            width = l->units;
            break;
        case NET_LAYER_BATCHNORM:
            if (!(s->bn_eps > 0.0f) || !(s->bn_momentum >= 0.0f && s->bn_momentum <= 1.0f))
                return pc_err(err, errlen, PC_ERR_CONFIG,
                              "layer %d (batchnorm): eps %g must be > 0 and momentum %g in [0, 1]",
                              i, (double)s->bn_eps, (double)s->bn_momentum);
            break;
        case NET_LAYER_DROPOUT:
            if (!(l->p >= 0.0f && l->p < 1.0f))
                return pc_err(err, errlen, PC_ERR_CONFIG, "layer %d (dropout): p %g outside [0, 1)",
                              i, (double)l->p);
            break;
        default: return pc_err(err, errlen, PC_ERR_CONFIG, "layer %d: unknown kind", i);
        }
    }
    if ((unsigned)s->head > NET_HEAD_REGRESSION)
        return pc_err(err, errlen, PC_ERR_CONFIG, "unknown head");
    if (s->outputs < 1 || B * s->outputs >= MAX_ELEMS || width * s->outputs >= MAX_ELEMS)
        return pc_err(err, errlen, PC_ERR_CONFIG, "head: %lld outputs", (long long)s->outputs);
    if (s->head == NET_HEAD_SIGMOID && s->outputs != 1)
        return pc_err(err, errlen, PC_ERR_CONFIG, "head sigmoid: 1 output, not %lld",
                      (long long)s->outputs);
    if (is_class_head(s->head) && s->outputs > INT32_MAX)
        return pc_err(err, errlen, PC_ERR_CONFIG, "head: %lld classes", (long long)s->outputs);
    if (s->head == NET_HEAD_SAMPLED_SOFTMAX) {
        if (s->negatives < 1 || (unsigned)s->sampler > GRAD_SAMPLER_LOG_UNIFORM)
            return pc_err(err, errlen, PC_ERR_CONFIG,
                          "head sampled_softmax: %lld negatives (must be >= 1)",
                          (long long)s->negatives);
        int64_t S = s->negatives < s->outputs ? s->negatives : s->outputs;
        if (S * width >= MAX_ELEMS || B * (S + 1) >= MAX_ELEMS)
            return pc_err(err, errlen, PC_ERR_CONFIG, "head sampled_softmax: %lld negatives",
                          (long long)s->negatives);
    }
    if ((unsigned)s->init > NET_INIT_XAVIER_UNIFORM || (s->has_bias_init && !isfinite(s->bias_init)))
        return pc_err(err, errlen, PC_ERR_CONFIG, "unknown initialisation");
    return PC_OK;
}

/* ---- layout ------------------------------------------------------------------------------ */

typedef struct arena {
    char *base; /* NULL while counting */
    size_t used;
} arena;

static void *carve(arena *a, size_t count, size_t size)
{
    size_t off = (a->used + ALIGN - 1) / ALIGN * ALIGN;
    a->used = off + (count > 0 ? count : 1) * size;
    return a->base != NULL ? a->base + off : NULL;
}

#define CARVE(a, ptr, count) ((ptr) = carve((a), (size_t)(count), sizeof *(ptr)))

static void add_param(net *n, const char *name, int layer, int embed, float *value, float *grad,
                      int64_t count, int64_t row_width)
{
    param *p = &n->params[n->nparams++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->layer = layer;
    p->embed = embed;
    p->value = value;
    p->grad = grad;
    p->count = count;
    p->row_width = row_width;
}

/* Lays out every buffer of n (base NULL: only counts). Parameters first, then gradients in the
 * same order, so that each block is contiguous. */
static void layout(net *n, arena *a)
{
    const net_spec *s = &n->spec;
    int64_t B = n->B;
    /* values */
    for (int e = 0; e < s->n_embeds; e++) CARVE(a, n->embeds[e].table, s->embeds[e].vocab * s->embeds[e].dim);
    for (int i = 0; i < n->nl; i++) {
        lay *l = &n->layers[i];
        if (l->kind == NET_LAYER_DENSE) {
            CARVE(a, l->w, l->out * l->in);
            CARVE(a, l->b, l->out);
        } else if (l->kind == NET_LAYER_BATCHNORM) {
            CARVE(a, l->w, l->out);
            CARVE(a, l->b, l->out);
            CARVE(a, l->running_mean, l->out);
            CARVE(a, l->running_var, l->out);
        }
    }
    /* gradients */
    for (int e = 0; e < s->n_embeds; e++) CARVE(a, n->embeds[e].dtable, s->embeds[e].vocab * s->embeds[e].dim);
    for (int i = 0; i < n->nl; i++) {
        lay *l = &n->layers[i];
        if (l->kind == NET_LAYER_DENSE) {
            CARVE(a, l->dw, l->out * l->in);
            CARVE(a, l->db, l->out);
        } else if (l->kind == NET_LAYER_BATCHNORM) {
            CARVE(a, l->dw, l->out);
            CARVE(a, l->db, l->out);
        }
    }
    /* activations and per-layer scratch */
    CARVE(a, n->act[0], B * n->in0);
    CARVE(a, n->dact[0], B * n->in0);
    for (int i = 0; i < n->nl; i++) {
        lay *l = &n->layers[i];
        CARVE(a, n->act[i + 1], B * l->out);
        CARVE(a, n->dact[i + 1], B * l->out);
        if (l->kind == NET_LAYER_DENSE && l->act != NET_ACT_NONE) CARVE(a, l->z, B * l->out);
        if (l->kind == NET_LAYER_DENSE && (l->act == NET_ACT_RELU || l->act == NET_ACT_LEAKY_RELU))
            CARVE(a, l->alive, l->out);
        if (l->kind == NET_LAYER_BATCHNORM) {
            CARVE(a, l->mean, l->out);
            CARVE(a, l->rstd, l->out);
            CARVE(a, l->eval_scale, l->out);
            CARVE(a, l->eval_shift, l->out);
        }
        if (l->kind == NET_LAYER_DROPOUT) CARVE(a, l->mask, B * l->out);
    }
    for (int e = 0; e < s->n_embeds; e++) {
        emb *m = &n->embeds[e];
        CARVE(a, m->ids, B * s->embeds[e].bag);
        CARVE(a, m->mark, s->embeds[e].vocab);
        CARVE(a, m->touched, s->embeds[e].vocab);
    }
    /* inputs and head */
    int64_t N = s->outputs;
    CARVE(a, n->dense_in, B * s->dense_width);
    CARVE(a, n->label_class, B);
    CARVE(a, n->label_target, B * N);
    CARVE(a, n->row_keys, B);
    CARVE(a, n->output, B * N);
    if (s->head == NET_HEAD_ONE_VS_ALL) CARVE(a, n->onehot, B * N);
    if (s->head == NET_HEAD_SAMPLED_SOFTMAX) {
        int64_t H = n->layers[n->nl - 1].in;
        CARVE(a, n->neg, n->S);
        CARVE(a, n->neg_logq, n->S);
        CARVE(a, n->true_logq, B);
        CARVE(a, n->work, n->S * H + B * (n->S + 1));
        CARVE(a, n->sample_mark, N);
        CARVE(a, n->head_mark, N);
        CARVE(a, n->head_touched, N);
    }
}

/* Describes the layers (sizes, kinds) from the spec, before layout. */
static void plan_layers(net *n)
{
    const net_spec *s = &n->spec;
    n->in0 = s->dense_width;
    for (int e = 0; e < s->n_embeds; e++) {
        n->embeds[e].offset = n->in0;
        n->in0 += s->embeds[e].dim;
    }
    int64_t width = n->in0;
    for (int i = 0; i < s->n_layers; i++) {
        const net_layer_spec *ls = &s->layers[i];
        lay *l = &n->layers[i];
        l->kind = ls->kind;
        l->in = width;
        l->out = ls->kind == NET_LAYER_DENSE ? ls->units : width;
        l->act = ls->kind == NET_LAYER_DENSE ? ls->act : NET_ACT_NONE;
        l->alpha = ls->alpha;
        l->p = ls->kind == NET_LAYER_DROPOUT ? ls->p : 0.0f;
        width = l->out;
    }
    lay *h = &n->layers[s->n_layers];
    h->kind = NET_LAYER_DENSE;
    h->is_head = true;
    h->in = width;
    h->out = s->outputs;
    h->act = NET_ACT_NONE;
    n->nl = s->n_layers + 1;
    n->S = s->negatives < s->outputs ? s->negatives : s->outputs;
}

/* Registers the parameters in a fixed order: embeddings, then each layer's. */
static void register_params(net *n)
{
    const net_spec *s = &n->spec;
    char name[NET_NAME_MAX + 16];
    for (int e = 0; e < s->n_embeds; e++) {
        emb *m = &n->embeds[e];
        snprintf(name, sizeof name, "embed.%s", s->embeds[e].name);
        add_param(n, name, -1, e, m->table, m->dtable, s->embeds[e].vocab * s->embeds[e].dim,
                  s->embeds[e].dim);
        param *p = &n->params[n->nparams - 1];
        p->is_embedding = true;
        p->touched = m->touched;
        p->touched_count = &m->touched_count;
        p->mark = m->mark;
    }
    for (int i = 0; i < n->nl; i++) {
        lay *l = &n->layers[i];
        char prefix[32];
        if (l->is_head)
            snprintf(prefix, sizeof prefix, "head");
        else
            snprintf(prefix, sizeof prefix, "%s%d", l->kind == NET_LAYER_DENSE ? "dense" : "bn", i);
        if (l->kind == NET_LAYER_DENSE) {
            snprintf(name, sizeof name, "%s.weight", prefix);
            add_param(n, name, i, -1, l->w, l->dw, l->out * l->in, l->in);
            snprintf(name, sizeof name, "%s.bias", prefix);
            add_param(n, name, i, -1, l->b, l->db, l->out, 1);
            if (l->is_head && s->head == NET_HEAD_SAMPLED_SOFTMAX)
                for (int k = n->nparams - 2; k < n->nparams; k++) {
                    n->params[k].touched = n->head_touched;
                    n->params[k].touched_count = &n->head_touched_count;
                    n->params[k].mark = n->head_mark;
                }
        } else if (l->kind == NET_LAYER_BATCHNORM) {
            snprintf(name, sizeof name, "%s.weight", prefix);
            add_param(n, name, i, -1, l->w, l->dw, l->out, 1);
            snprintf(name, sizeof name, "%s.bias", prefix);
            add_param(n, name, i, -1, l->b, l->db, l->out, 1);
            snprintf(name, sizeof name, "%s.running_mean", prefix);
            add_param(n, name, i, -1, l->running_mean, NULL, l->out, 1);
            snprintf(name, sizeof name, "%s.running_var", prefix);
            add_param(n, name, i, -1, l->running_var, NULL, l->out, 1);
        }
    }
}

/* ---- initialisation ------------------------------------------------------------------------ */

static double init_uniform(const net *n, int param, int64_t i)
{
    return grad_rng_uniform(n->spec.seed, INIT_STEP, (uint64_t)param, (uint64_t)i);
}

/* A standard normal number (Box-Muller on two of the parameter's uniforms). */
static double init_normal(const net *n, int param, int64_t i)
{
    double u1 = init_uniform(n, param, 2 * i), u2 = init_uniform(n, param, 2 * i + 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

static void init_params(net *n)
{
    const net_spec *s = &n->spec;
    for (int k = 0; k < n->nparams; k++) {
        param *p = &n->params[k];
        if (p->is_embedding) {
            /* PyTorch's nn.Embedding: N(0, 1), the padding row zero */
            const net_embed_spec *es = &s->embeds[p->embed];
            for (int64_t i = 0; i < p->count; i++) p->value[i] = (float)init_normal(n, k, i);
            if (es->padding_idx >= 0) memset(p->value + es->padding_idx * es->dim, 0, (size_t)es->dim * sizeof(float));
            continue;
        }
        lay *l = &n->layers[p->layer];
        bool is_bias = strstr(p->name, ".bias") != NULL;
        if (l->kind == NET_LAYER_BATCHNORM) {
            float v = strstr(p->name, ".weight") != NULL || strstr(p->name, "running_var") != NULL ? 1.0f : 0.0f;
            for (int64_t i = 0; i < p->count; i++) p->value[i] = v;
            continue;
        }
        double bound;
        if (s->init == NET_INIT_XAVIER_UNIFORM)
            bound = is_bias ? 0.0 : sqrt(6.0 / (double)(l->in + l->out));
        else
            bound = 1.0 / sqrt((double)l->in); /* kaiming_uniform(a=sqrt(5)) and nn.Linear's bias */
        for (int64_t i = 0; i < p->count; i++)
            p->value[i] = (float)(bound * (2.0 * init_uniform(n, k, i) - 1.0));
        if (is_bias && s->has_bias_init && !l->is_head)
            for (int64_t i = 0; i < p->count; i++) p->value[i] = s->bias_init;
    }
}

pc_status net_create(const net_spec *spec, int64_t batch_rows, net **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    pc_status st = check_spec(spec, batch_rows, err, errlen);
    if (st != PC_OK) return st;
    net *n = calloc(1, sizeof *n);
    if (n == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the net");
    n->spec = *spec;
    n->B = batch_rows;
    plan_layers(n);
    arena a = {NULL, 0};
    layout(n, &a);
    n->block = calloc(1, a.used);
    if (n->block == NULL) {
        free(n);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory: the net needs %zu MB",
                      a.used >> 20);
    }
    a = (arena){n->block, 0};
    layout(n, &a);
    register_params(n);
    init_params(n);
    for (int64_t b = 0; b < n->B; b++) n->row_keys[b] = (uint64_t)b;
    net_dead_reset(n);
    *out = n;
    return PC_OK;
}

void net_free(net *n)
{
    if (n == NULL) return;
    free(n->block);
    free(n);
}

const net_spec *net_get_spec(const net *n) { return &n->spec; }
int64_t net_batch_rows(const net *n) { return n->B; }
int64_t net_input_width(const net *n) { return n->in0; }
float *net_dense_input(net *n) { return n->dense_in; }
int32_t *net_label_class(net *n) { return n->label_class; }
float *net_label_target(net *n) { return n->label_target; }
uint64_t *net_row_keys(net *n) { return n->row_keys; }
const float *net_output(const net *n) { return n->output; }

int64_t *net_embed_input(net *n, int e)
{
    return e >= 0 && e < n->spec.n_embeds ? n->embeds[e].ids : NULL;
}

/* ---- forward ------------------------------------------------------------------------------- */

static pc_status check_ids(const net *n, int64_t rows, char *err, size_t errlen)
{
    for (int e = 0; e < n->spec.n_embeds; e++) {
        const net_embed_spec *es = &n->spec.embeds[e];
        const int64_t *ids = n->embeds[e].ids;
        for (int64_t i = 0; i < rows * es->bag; i++)
            if (ids[i] < 0 || ids[i] >= es->vocab)
                return pc_err(err, errlen, PC_ERR_DATA,
                              "batch row %lld: column '%s': id %lld outside the vocabulary [0, %lld)",
                              (long long)(i / es->bag), es->name, (long long)ids[i],
                              (long long)es->vocab);
    }
    return PC_OK;
}

static pc_status check_labels(const net *n, int64_t rows, char *err, size_t errlen)
{
    if (!is_class_head(n->spec.head)) return PC_OK;
    for (int64_t b = 0; b < rows; b++)
        if (n->label_class[b] < 0 || n->label_class[b] >= n->spec.outputs)
            return pc_err(err, errlen, PC_ERR_DATA, "batch row %lld: class %d outside [0, %lld)",
                          (long long)b, (int)n->label_class[b], (long long)n->spec.outputs);
    return PC_OK;
}

/* act[0] = [dense features | pooled embedding of each id column] */
static void forward_input(net *n, int64_t rows)
{
    const net_spec *s = &n->spec;
    if (s->dense_width > 0)
        for (int64_t b = 0; b < rows; b++)
            memcpy(n->act[0] + b * n->in0, n->dense_in + b * s->dense_width,
                   (size_t)s->dense_width * sizeof(float));
    for (int e = 0; e < s->n_embeds; e++)
        grad_embed_bag_forward(n->act[0] + n->embeds[e].offset, n->in0, n->embeds[e].table,
                               n->embeds[e].ids, rows, s->embeds[e].bag, s->embeds[e].dim);
}

static void apply_act(float *out, const float *z, int64_t count, net_act act, float alpha)
{
    switch (act) {
    case NET_ACT_NONE: break;
    case NET_ACT_RELU: ops_relu(out, z, count); break;
    case NET_ACT_LEAKY_RELU: ops_leaky_relu(out, z, count, alpha); break;
    case NET_ACT_TANH: ops_tanh(out, z, count); break;
    case NET_ACT_SIGMOID: ops_sigmoid(out, z, count); break;
    }
}

static void record_alive(lay *l, const float *y, int64_t rows)
{
    for (int64_t b = 0; b < rows; b++) {
        const float *r = y + b * l->out;
        for (int64_t j = 0; j < l->out; j++) l->alive[j] |= r[j] > 0.0f;
    }
}

/* Layer i: act[i] -> act[i+1], in training or inference mode. */
static void forward_layer(net *n, int i, int64_t rows, bool train, uint64_t step)
{
    lay *l = &n->layers[i];
    const float *x = n->act[i];
    float *y = n->act[i + 1];
    switch (l->kind) {
    case NET_LAYER_DENSE:
        if (train && l->z != NULL) {
            ops_dense(l->z, x, l->w, l->b, rows, l->in, l->out, true, OPS_ACT_NONE, 0.0f);
            apply_act(y, l->z, rows * l->out, l->act, l->alpha);
        } else {
            /* ReLU and LeakyReLU fuse into the product; tanh and sigmoid follow in place */
            ops_act fused = l->act == NET_ACT_RELU         ? OPS_ACT_RELU
                            : l->act == NET_ACT_LEAKY_RELU ? OPS_ACT_LEAKY_RELU
                                                           : OPS_ACT_NONE;
            ops_dense(y, x, l->w, l->b, rows, l->in, l->out, true, fused, l->alpha);
            if (l->act == NET_ACT_TANH || l->act == NET_ACT_SIGMOID)
                apply_act(y, y, rows * l->out, l->act, l->alpha);
        }
        if (train && l->alive != NULL) record_alive(l, y, rows);
        break;
    case NET_LAYER_BATCHNORM:
        if (train) {
            grad_batchnorm_forward(y, l->mean, l->rstd, l->running_mean, l->running_var, x, l->w,
                                   l->b, rows, l->out, n->spec.bn_eps, n->spec.bn_momentum);
        } else {
            for (int64_t c = 0; c < l->out; c++) {
                l->eval_scale[c] = l->w[c] / sqrtf(l->running_var[c] + n->spec.bn_eps);
                l->eval_shift[c] = l->b[c] - l->running_mean[c] * l->eval_scale[c];
            }
            ops_channel_affine(y, x, l->eval_scale, l->eval_shift, rows, l->out, 1);
        }
        break;
    case NET_LAYER_DROPOUT:
        if (train)
            grad_dropout_forward(y, l->mask, x, n->row_keys, rows, l->out, l->p, n->spec.seed, step);
        else
            memcpy(y, x, (size_t)(rows * l->out) * sizeof *y);
        break;
    }
}

/* Zeroes every gradient at the start of a training step; sparse ones cost their touched rows. */
static void zero_grads(net *n)
{
    if (n->spec.head == NET_HEAD_SAMPLED_SOFTMAX) {
        /* the head's weight and bias share one touched list: the bias first, since clearing
         * the weight's rows resets the list */
        lay *h = &n->layers[n->nl - 1];
        for (int64_t i = 0; i < n->head_touched_count; i++) h->db[n->head_touched[i]] = 0.0f;
        grad_embed_clear(h->dw, n->head_mark, n->head_touched, &n->head_touched_count, h->in);
    }
    for (int k = 0; k < n->nparams; k++) {
        param *p = &n->params[k];
        if (p->grad == NULL) continue;
        if (p->is_embedding)
            grad_embed_clear(p->grad, p->mark, p->touched, p->touched_count, p->row_width);
        else if (p->touched == NULL)
            memset(p->grad, 0, (size_t)p->count * sizeof(float));
    }
}

/* The sampled head's part of the training forward pass: loss, dh, and the gradient of the
 * rows of the output layer that the batch's labels and negatives reach. */
static double forward_sampled(net *n, int64_t rows, uint64_t step)
{
    const net_spec *s = &n->spec;
    lay *h = &n->layers[n->nl - 1];
    double tries = 0;
    grad_sample_negatives(n->neg, n->neg_logq, &tries, n->sample_mark, s->sampler, s->outputs,
                          n->S, s->seed, step);
    for (int64_t b = 0; b < rows; b++)
        n->true_logq[b] = (float)grad_sampler_logq(s->sampler, n->label_class[b], s->outputs, n->S,
                                                   tries);
    double loss = grad_sampled_softmax(n->dact[n->nl - 1], h->dw, h->db, n->work, n->act[n->nl - 1],
                                       h->w, h->b, n->label_class, n->true_logq, n->neg,
                                       n->neg_logq, rows, h->in, n->S);
    for (int64_t j = 0; j < n->S; j++)
        if (!n->head_mark[n->neg[j]]) {
            n->head_mark[n->neg[j]] = 1;
            n->head_touched[n->head_touched_count++] = n->neg[j];
        }
    for (int64_t b = 0; b < rows; b++)
        if (!n->head_mark[n->label_class[b]]) {
            n->head_mark[n->label_class[b]] = 1;
            n->head_touched[n->head_touched_count++] = n->label_class[b];
        }
    return loss;
}

/* The head's loss on logits act[nl]; with dlogits (training) its gradient into dact[nl]. */
static double head_loss(net *n, int64_t rows, float *dlogits)
{
    const net_spec *s = &n->spec;
    const float *logits = n->act[n->nl];
    int64_t N = s->outputs;
    switch (s->head) {
    case NET_HEAD_SOFTMAX:
    case NET_HEAD_SAMPLED_SOFTMAX:
        return grad_softmax_xent(dlogits, n->output, logits, n->label_class, rows, N);
    case NET_HEAD_ONE_VS_ALL:
        memset(n->onehot, 0, (size_t)(rows * N) * sizeof(float));
        for (int64_t b = 0; b < rows; b++) n->onehot[b * N + n->label_class[b]] = 1.0f;
        return grad_sigmoid_xent(dlogits, n->output, logits, n->onehot, rows, N);
    case NET_HEAD_MULTILABEL:
    case NET_HEAD_SIGMOID:
        return grad_sigmoid_xent(dlogits, n->output, logits, n->label_target, rows, N);
    case NET_HEAD_REGRESSION:
        memcpy(n->output, logits, (size_t)(rows * N) * sizeof(float));
        return grad_mse(dlogits, logits, n->label_target, rows, N);
    }
    return NAN;
}

/* Inference outputs from the logits, without labels. */
static void head_output(net *n, int64_t rows)
{
    const float *logits = n->act[n->nl];
    int64_t N = n->spec.outputs;
    switch (n->spec.head) {
    case NET_HEAD_SOFTMAX:
    case NET_HEAD_SAMPLED_SOFTMAX: ops_softmax(n->output, logits, rows, N); break;
    case NET_HEAD_REGRESSION: memcpy(n->output, logits, (size_t)(rows * N) * sizeof(float)); break;
    default: ops_sigmoid(n->output, logits, rows * N); break;
    }
}

pc_status net_forward_train(net *n, int64_t rows, uint64_t step, double *loss, char *err,
                            size_t errlen)
{
    if (rows < 1 || rows > n->B)
        return pc_err(err, errlen, PC_ERR_USAGE, "batch of %lld rows (the net takes 1 to %lld)",
                      (long long)rows, (long long)n->B);
    pc_status st = check_ids(n, rows, err, errlen);
    if (st == PC_OK) st = check_labels(n, rows, err, errlen);
    if (st != PC_OK) return st;
    n->fwd_rows = 0;
    zero_grads(n);
    forward_input(n, rows);
    for (int i = 0; i < n->nl - 1; i++) forward_layer(n, i, rows, true, step);
    double l;
    if (n->spec.head == NET_HEAD_SAMPLED_SOFTMAX) {
        l = forward_sampled(n, rows, step);
    } else {
        forward_layer(n, n->nl - 1, rows, true, step);
        l = head_loss(n, rows, n->dact[n->nl]);
    }
    n->dead_rows += rows;
    n->fwd_rows = rows;
    if (loss != NULL) *loss = l;
    return PC_OK;
}

pc_status net_forward_eval(net *n, int64_t rows, double *loss, char *err, size_t errlen)
{
    if (rows < 1 || rows > n->B)
        return pc_err(err, errlen, PC_ERR_USAGE, "batch of %lld rows (the net takes 1 to %lld)",
                      (long long)rows, (long long)n->B);
    pc_status st = check_ids(n, rows, err, errlen);
    if (st == PC_OK && loss != NULL) st = check_labels(n, rows, err, errlen);
    if (st != PC_OK) return st;
    n->fwd_rows = 0; /* the activations of the last training pass are overwritten */
    forward_input(n, rows);
    for (int i = 0; i < n->nl; i++) forward_layer(n, i, rows, false, 0);
    if (loss != NULL)
        *loss = head_loss(n, rows, NULL);
    else
        head_output(n, rows);
    return PC_OK;
}

/* ---- backward ------------------------------------------------------------------------------ */

/* Layer i: dact[i+1] -> dact[i] and the layer's parameter gradients. */
static void backward_layer(net *n, int i, int64_t rows, bool need_din)
{
    lay *l = &n->layers[i];
    float *dy = n->dact[i + 1], *dx = need_din ? n->dact[i] : NULL;
    int64_t count = rows * l->out;
    switch (l->kind) {
    case NET_LAYER_DENSE:
        switch (l->act) {
        case NET_ACT_NONE: break;
        case NET_ACT_RELU: grad_relu(dy, dy, l->z, count); break;
        case NET_ACT_LEAKY_RELU: grad_leaky_relu(dy, dy, l->z, count, l->alpha); break;
        case NET_ACT_TANH: grad_tanh(dy, dy, n->act[i + 1], count); break;
        case NET_ACT_SIGMOID: grad_sigmoid(dy, dy, n->act[i + 1], count); break;
        }
        grad_dense(dx, l->dw, l->db, dy, n->act[i], l->w, rows, l->in, l->out);
        break;
    case NET_LAYER_BATCHNORM:
        /* its input gradient comes with the parameters' (dact[i] always exists) */
        grad_batchnorm_backward(n->dact[i], l->dw, l->db, dy, n->act[i], l->mean, l->rstd, l->w,
                                rows, l->out);
        break;
    case NET_LAYER_DROPOUT:
        if (dx != NULL) grad_dropout_backward(dx, dy, l->mask, count);
        break;
    }
}

void net_backward(net *n, int64_t rows)
{
    if (n->fwd_rows == 0 || rows != n->fwd_rows) return; /* REQUIRES violated: do no harm */
    const net_spec *s = &n->spec;
    int top = n->nl - 1;
    if (s->head != NET_HEAD_SAMPLED_SOFTMAX) backward_layer(n, top, rows, true);
    /* the input gradient of layer 0 is needed only to reach the embeddings */
    for (int i = top - 1; i >= 0; i--) backward_layer(n, i, rows, i > 0 || s->n_embeds > 0);
    for (int e = 0; e < s->n_embeds; e++) {
        emb *m = &n->embeds[e];
        grad_embed_bag_backward(m->dtable, m->mark, m->touched, &m->touched_count,
                                n->dact[0] + m->offset, n->in0, m->ids, rows, s->embeds[e].bag,
                                s->embeds[e].dim, s->embeds[e].padding_idx);
    }
    n->fwd_rows = 0;
}

/* ---- parameters and layers ---------------------------------------------------------------- */

int net_param_count(const net *n) { return n->nparams; }

pc_status net_param_get(net *n, int i, net_param *p)
{
    if (i < 0 || i >= n->nparams) return PC_ERR_USAGE;
    const param *q = &n->params[i];
    *p = (net_param){
        .name = q->name,
        .layer = q->layer,
        .embed = q->embed,
        .value = q->value,
        .grad = q->grad,
        .count = q->count,
        .row_width = q->row_width,
        .is_embedding = q->is_embedding,
        .touched_rows = q->touched,
        .touched_count = q->touched != NULL ? *q->touched_count : 0,
    };
    return PC_OK;
}

int net_param_find(const net *n, const char *name)
{
    for (int k = 0; k < n->nparams; k++)
        if (strcmp(n->params[k].name, name) == 0) return k;
    return -1;
}

void net_param_touch(net *n, int i, int64_t row)
{
    if (i < 0 || i >= n->nparams) return;
    param *p = &n->params[i];
    if (p->touched == NULL || row < 0 || row * p->row_width >= p->count) return;
    if (!p->mark[row]) {
        p->mark[row] = 1;
        p->touched[(*p->touched_count)++] = row;
    }
}

int net_layer_count(const net *n) { return n->nl; }

pc_status net_layer_get(const net *n, int i, net_layer *out)
{
    if (i < 0 || i >= n->nl) return PC_ERR_USAGE;
    const lay *l = &n->layers[i];
    *out = (net_layer){
        .kind = l->kind,
        .is_head = l->is_head,
        .in = l->in,
        .out = l->out,
        .act = l->act,
        .alpha = l->alpha,
        .p = l->p,
        .eps = n->spec.bn_eps,
        .momentum = n->spec.bn_momentum,
        .weight = l->w,
        .bias = l->b,
        .running_mean = l->running_mean,
        .running_var = l->running_var,
    };
    return PC_OK;
}

/* ---- diagnostics --------------------------------------------------------------------------- */

void net_dead_reset(net *n)
{
    for (int i = 0; i < n->nl; i++)
        if (n->layers[i].alive != NULL) memset(n->layers[i].alive, 0, (size_t)n->layers[i].out);
    n->dead_rows = 0;
}

double net_dead_share(const net *n, int layer)
{
    if (layer < 0 || layer >= n->nl || n->layers[layer].alive == NULL || n->dead_rows == 0)
        return -1.0;
    const lay *l = &n->layers[layer];
    int64_t dead = 0;
    for (int64_t j = 0; j < l->out; j++) dead += !l->alive[j];
    return (double)dead / (double)l->out;
}
