/* Unit tests of trainer/net.c and trainer/optim.c: whole training steps against PyTorch
 * (fixtures of tests/fixtures/make_train_step.py: same initial weights and batch, every
 * gradient, parameter, running statistic, loss and inference output within 1e-5), the sampled
 * softmax against the full one, the whole backward pass against finite differences for every
 * head, sparse embedding gradients, determinism, dropout, dead units, errors, and the
 * optimisers' formulas (schedules, clipping, L2, momentum, Adam's first step).
 * Fixtures: $PRECAST_FIXTURES/train, default build/fixtures/train (`make fixtures`). */
#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/net.h"
#include "trainer/optim.h"

static char err[PC_ERRLEN];

/* |got - want| <= TOL * max(1, |want|): absolute for small values, relative for large. */
#define TOL 1e-5

static double rel_err(double got, double want)
{
    double e = fabs(got - want) / fmax(1.0, fabs(want));
    return e == e ? e : INFINITY; /* NaN is the worst */
}

/* ---- the fixture format (see make_train_step.py) ------------------------------------------- */

#define MAX_TENSORS 64

typedef struct tensor {
    char name[80];
    int64_t count;
    double *v;
} tensor;

typedef struct fixture {
    net_spec spec;
    optim_config opt;
    int64_t rows, steps;
    tensor dense, cls, target, ids[NET_MAX_EMBEDS], output;
    tensor init[MAX_TENSORS], grad[MAX_TENSORS], final[MAX_TENSORS];
    int ninit, ngrad, nfinal;
    double loss[16];
} fixture;

static const char *fixture_dir(void)
{
    const char *d = getenv("PRECAST_FIXTURES");
    return d != NULL && d[0] != '\0' ? d : "build/fixtures";
}

/* Reads "COUNT v..." from the tokenizer into t. */
static void read_tensor(tensor *t, const char *name, char **save)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    char *tok = strtok_r(NULL, " \n", save);
    ck_assert_ptr_nonnull(tok);
    t->count = strtoll(tok, NULL, 10);
    t->v = malloc((size_t)(t->count > 0 ? t->count : 1) * sizeof *t->v);
    ck_assert_ptr_nonnull(t->v);
    for (int64_t i = 0; i < t->count; i++) {
        tok = strtok_r(NULL, " \n", save);
        ck_assert_msg(tok != NULL, "%s: %lld values expected", name, (long long)t->count);
        t->v[i] = strtod(tok, NULL);
    }
}

static net_act act_of(const char *s)
{
    if (strcmp(s, "relu") == 0) return NET_ACT_RELU;
    if (strcmp(s, "leaky_relu") == 0) return NET_ACT_LEAKY_RELU;
    if (strcmp(s, "tanh") == 0) return NET_ACT_TANH;
    if (strcmp(s, "sigmoid") == 0) return NET_ACT_SIGMOID;
    return NET_ACT_NONE;
}

static net_head head_of(const char *s)
{
    static const char *names[] = {"softmax", "sampled_softmax", "one_vs_all", "multilabel",
                                  "sigmoid", "regression"};
    for (int h = 0; h < 6; h++)
        if (strcmp(s, names[h]) == 0) return (net_head)h;
    ck_abort_msg("unknown head %s", s);
    return NET_HEAD_SOFTMAX;
}

static void load_fixture(fixture *f, const char *name)
{
    memset(f, 0, sizeof *f);
    net_spec_init(&f->spec);
    char path[1024];
    snprintf(path, sizeof path, "%s/train/%s.txt", fixture_dir(), name);
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s (run `make fixtures`)", path);
    static char line[1 << 20];
    while (fgets(line, sizeof line, fp) != NULL) {
        char *save = NULL, *key = strtok_r(line, " \n", &save);
        if (key == NULL) continue;
        char *a = NULL;
        if (strcmp(key, "spec") == 0) {
            strtok_r(NULL, " \n", &save);
            f->spec.dense_width = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
        } else if (strcmp(key, "embed") == 0) {
            net_embed_spec *e = &f->spec.embeds[f->spec.n_embeds++];
            snprintf(e->name, sizeof e->name, "%s", strtok_r(NULL, " \n", &save));
            e->vocab = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
            e->dim = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
            e->bag = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
            e->padding_idx = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
        } else if (strcmp(key, "layer") == 0) {
            net_layer_spec *l = &f->spec.layers[f->spec.n_layers++];
            a = strtok_r(NULL, " \n", &save);
            if (strcmp(a, "dense") == 0) {
                l->kind = NET_LAYER_DENSE;
                l->units = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
                l->act = act_of(strtok_r(NULL, " \n", &save));
                l->alpha = strtof(strtok_r(NULL, " \n", &save), NULL);
            } else if (strcmp(a, "batchnorm") == 0) {
                l->kind = NET_LAYER_BATCHNORM;
            } else {
                l->kind = NET_LAYER_DROPOUT;
                l->p = strtof(strtok_r(NULL, " \n", &save), NULL);
            }
        } else if (strcmp(key, "head") == 0) {
            f->spec.head = head_of(strtok_r(NULL, " \n", &save));
            f->spec.outputs = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
        } else if (strcmp(key, "optim") == 0) {
            a = strtok_r(NULL, " \n", &save);
            bool adam = strcmp(a, "adam") == 0;
            optim_config_init(&f->opt, adam ? OPTIM_ADAM : OPTIM_SGD);
            f->opt.lr = strtod(strtok_r(NULL, " \n", &save), NULL);
            if (adam) {
                f->opt.beta1 = strtod(strtok_r(NULL, " \n", &save), NULL);
                f->opt.beta2 = strtod(strtok_r(NULL, " \n", &save), NULL);
                f->opt.eps = strtod(strtok_r(NULL, " \n", &save), NULL);
            } else {
                f->opt.momentum = strtod(strtok_r(NULL, " \n", &save), NULL);
            }
            f->opt.l2 = strtod(strtok_r(NULL, " \n", &save), NULL);
        } else if (strcmp(key, "rows") == 0) {
            f->rows = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
        } else if (strcmp(key, "steps") == 0) {
            f->steps = strtoll(strtok_r(NULL, " \n", &save), NULL, 10);
            ck_assert(f->steps >= 1 && f->steps <= 16);
        } else if (strcmp(key, "dense") == 0) {
            read_tensor(&f->dense, "dense", &save);
        } else if (strcmp(key, "ids") == 0) {
            int e = atoi(strtok_r(NULL, " \n", &save));
            ck_assert(e >= 0 && e < NET_MAX_EMBEDS);
            read_tensor(&f->ids[e], "ids", &save);
        } else if (strcmp(key, "class") == 0) {
            read_tensor(&f->cls, "class", &save);
        } else if (strcmp(key, "target") == 0) {
            read_tensor(&f->target, "target", &save);
        } else if (strcmp(key, "output") == 0) {
            read_tensor(&f->output, "output", &save);
        } else if (strcmp(key, "loss") == 0) {
            int s = atoi(strtok_r(NULL, " \n", &save));
            ck_assert(s >= 0 && s < 16);
            f->loss[s] = strtod(strtok_r(NULL, " \n", &save), NULL);
        } else {
            tensor *t = NULL;
            if (strcmp(key, "init") == 0 && f->ninit < MAX_TENSORS) t = &f->init[f->ninit++];
            if (strcmp(key, "grad") == 0 && f->ngrad < MAX_TENSORS) t = &f->grad[f->ngrad++];
            if (strcmp(key, "final") == 0 && f->nfinal < MAX_TENSORS) t = &f->final[f->nfinal++];
            ck_assert_msg(t != NULL, "%s: unknown line '%s'", path, key);
            read_tensor(t, strtok_r(NULL, " \n", &save), &save);
        }
    }
    fclose(fp);
    ck_assert_msg(f->rows > 0 && f->steps > 0 && f->ninit > 0, "%s: incomplete", path);
}

static void free_tensor(tensor *t) { free(t->v); }

static void free_fixture(fixture *f)
{
    free_tensor(&f->dense);
    free_tensor(&f->cls);
    free_tensor(&f->target);
    free_tensor(&f->output);
    for (int e = 0; e < NET_MAX_EMBEDS; e++) free_tensor(&f->ids[e]);
    for (int i = 0; i < f->ninit; i++) free_tensor(&f->init[i]);
    for (int i = 0; i < f->ngrad; i++) free_tensor(&f->grad[i]);
    for (int i = 0; i < f->nfinal; i++) free_tensor(&f->final[i]);
}

/* Largest error of a float array against the reference tensor; prints it. */
static double compare(const char *what, const char *name, const float *got, const tensor *want)
{
    double worst = 0.0;
    for (int64_t i = 0; i < want->count; i++) {
        double e = rel_err(got[i], want->v[i]);
        if (e > worst) worst = e;
    }
    printf("    %-6s %-22s largest difference %.2e\n", what, name, worst);
    return worst;
}

static void fill_inputs(net *n, const fixture *f)
{
    const net_spec *s = &f->spec;
    ck_assert_int_eq(f->dense.count, f->rows * s->dense_width);
    for (int64_t i = 0; i < f->dense.count; i++) net_dense_input(n)[i] = (float)f->dense.v[i];
    for (int e = 0; e < s->n_embeds; e++) {
        ck_assert_int_eq(f->ids[e].count, f->rows * s->embeds[e].bag);
        for (int64_t i = 0; i < f->ids[e].count; i++) net_embed_input(n, e)[i] = (int64_t)f->ids[e].v[i];
    }
    for (int64_t b = 0; b < f->rows; b++) net_label_class(n)[b] = (int32_t)f->cls.v[b];
    for (int64_t i = 0; i < f->target.count; i++) net_label_target(n)[i] = (float)f->target.v[i];
}

/* Loads the fixture's initial parameters and buffers into n; every one of n's parameters
 * must be in the fixture (and the other way round), with the same size. */
static void load_params(net *n, const fixture *f)
{
    ck_assert_int_eq(net_param_count(n), f->ninit);
    for (int i = 0; i < f->ninit; i++) {
        int k = net_param_find(n, f->init[i].name);
        ck_assert_msg(k >= 0, "the net has no parameter %s", f->init[i].name);
        net_param p;
        ck_assert_int_eq(net_param_get(n, k, &p), PC_OK);
        ck_assert_msg(p.count == f->init[i].count, "%s: %lld values, PyTorch has %lld", p.name,
                      (long long)p.count, (long long)f->init[i].count);
        for (int64_t j = 0; j < p.count; j++) p.value[j] = (float)f->init[i].v[j];
    }
}

static const char *pytorch_cases[] = {"mlp_softmax_adam", "mlp_softmax_sgd", "mlp_dropout_adam",
                                      "embed_softmax_adam",
                                      "embed_only_sgd",   "one_vs_all",      "multilabel",
                                      "binary",           "regression",      "no_hidden"};

START_TEST(test_against_pytorch)
{
    const char *name = pytorch_cases[_i];
    printf("  %s\n", name);
    static fixture f;
    load_fixture(&f, name);
    net *n = NULL;
    /* a net for more rows than the batch: a short last batch must work the same */
    ck_assert_msg(net_create(&f.spec, f.rows + 5, &n, err, sizeof err) == PC_OK, "%s", err);
    load_params(n, &f);
    fill_inputs(n, &f);
    optim *o = NULL;
    ck_assert_msg(optim_create(&f.opt, n, &o, err, sizeof err) == PC_OK, "%s", err);
    double worst = 0.0;
    for (int64_t step = 0; step < f.steps; step++) {
        double loss = NAN;
        ck_assert_msg(net_forward_train(n, f.rows, (uint64_t)step, &loss, err, sizeof err) == PC_OK,
                      "%s", err);
        double e = rel_err(loss, f.loss[step]);
        printf("    loss   step %lld: %.9f, PyTorch %.9f\n", (long long)step, loss, f.loss[step]);
        worst = fmax(worst, e);
        net_backward(n, f.rows);
        if (step == 0)
            for (int i = 0; i < f.ngrad; i++) {
                net_param p;
                ck_assert_int_eq(net_param_get(n, net_param_find(n, f.grad[i].name), &p), PC_OK);
                ck_assert_ptr_nonnull(p.grad);
                worst = fmax(worst, compare("grad", p.name, p.grad, &f.grad[i]));
            }
        optim_step(o, n, f.opt.lr);
    }
    ck_assert_int_eq(optim_steps(o), f.steps);
    ck_assert_int_eq(f.nfinal, net_param_count(n));
    for (int i = 0; i < f.nfinal; i++) {
        net_param p;
        ck_assert_int_eq(net_param_get(n, net_param_find(n, f.final[i].name), &p), PC_OK);
        worst = fmax(worst, compare("after", p.name, p.value, &f.final[i]));
    }
    ck_assert_int_eq(net_forward_eval(n, f.rows, NULL, err, sizeof err), PC_OK);
    worst = fmax(worst, compare("output", "(inference)", net_output(n), &f.output));
    ck_assert_msg(worst <= TOL, "%s: differs from PyTorch by %.3e", name, worst);
    optim_free(o);
    net_free(n);
    free_fixture(&f);
}
END_TEST

/* ---- nets built here ------------------------------------------------------------------------ */

/* A small spec: 5 dense features, one embedding bag, dense 12 relu, batchnorm, dropout, dense 7
 * tanh, and the given head. */
static net_spec small_spec(net_head head, int64_t outputs, uint64_t seed)
{
    net_spec s;
    net_spec_init(&s);
    s.dense_width = 5;
    s.n_embeds = 1;
    snprintf(s.embeds[0].name, sizeof s.embeds[0].name, "item");
    s.embeds[0].vocab = 40;
    s.embeds[0].dim = 3;
    s.embeds[0].bag = 2;
    s.embeds[0].padding_idx = 0;
    s.n_layers = 4;
    s.layers[0] = (net_layer_spec){.kind = NET_LAYER_DENSE, .units = 12, .act = NET_ACT_RELU};
    s.layers[1] = (net_layer_spec){.kind = NET_LAYER_BATCHNORM};
    s.layers[2] = (net_layer_spec){.kind = NET_LAYER_DROPOUT, .p = 0.2f};
    s.layers[3] = (net_layer_spec){.kind = NET_LAYER_DENSE, .units = 7, .act = NET_ACT_TANH};
    s.head = head;
    s.outputs = outputs;
    s.seed = seed;
    return s;
}

/* Deterministic inputs for rows rows: ids 1..39 with some padding, labels, 0/1 or real targets. */
static void fill_batch(net *n, int64_t rows, uint64_t salt)
{
    const net_spec *s = net_get_spec(n);
    for (int64_t b = 0; b < rows; b++) {
        for (int64_t j = 0; j < s->dense_width; j++)
            net_dense_input(n)[b * s->dense_width + j] = (float)sin(0.7 * (double)(b * 5 + j) + (double)salt);
        for (int e = 0; e < s->n_embeds; e++)
            for (int64_t l = 0; l < s->embeds[e].bag; l++)
                net_embed_input(n, e)[b * s->embeds[e].bag + l] =
                    (b + l + (int64_t)salt) % 3 == 0 ? 0 : 1 + (b * 7 + l * 3 + (int64_t)salt) % (s->embeds[e].vocab - 1);
        net_label_class(n)[b] = (int32_t)((b * 3 + (int64_t)salt) % s->outputs);
        for (int64_t j = 0; j < s->outputs; j++)
            net_label_target(n)[b * s->outputs + j] =
                s->head == NET_HEAD_REGRESSION ? (float)cos((double)(b + j)) : (float)((b + j + salt) % 2);
    }
}

static net *make_net(const net_spec *s, int64_t batch)
{
    net *n = NULL;
    ck_assert_msg(net_create(s, batch, &n, err, sizeof err) == PC_OK, "%s", err);
    return n;
}

START_TEST(test_sampled_all_negatives_is_softmax)
{
    /* negatives >= classes with the uniform sampler: the loss and every gradient equal the full
     * softmax's (same seed, so the same initial weights) */
    net_spec full = small_spec(NET_HEAD_SOFTMAX, 6, 3), samp = full;
    samp.head = NET_HEAD_SAMPLED_SOFTMAX;
    samp.negatives = 10;
    samp.sampler = GRAD_SAMPLER_UNIFORM;
    net *a = make_net(&full, 16), *b = make_net(&samp, 16);
    fill_batch(a, 16, 1);
    fill_batch(b, 16, 1);
    double la, lb;
    ck_assert_int_eq(net_forward_train(a, 16, 4, &la, err, sizeof err), PC_OK);
    ck_assert_int_eq(net_forward_train(b, 16, 4, &lb, err, sizeof err), PC_OK);
    net_backward(a, 16);
    net_backward(b, 16);
    printf("  sampled (all negatives) loss %.9f, full softmax %.9f\n", lb, la);
    ck_assert_msg(fabs(la - lb) < 1e-6, "loss %.9g vs %.9g", lb, la);
    ck_assert_int_eq(net_param_count(a), net_param_count(b));
    for (int k = 0; k < net_param_count(a); k++) {
        net_param pa, pb;
        net_param_get(a, k, &pa);
        net_param_get(b, k, &pb);
        ck_assert_str_eq(pa.name, pb.name);
        if (pa.grad == NULL) continue;
        double worst = 0;
        for (int64_t i = 0; i < pa.count; i++) worst = fmax(worst, rel_err(pb.grad[i], pa.grad[i]));
        ck_assert_msg(worst < 1e-6, "%s: gradient differs by %.3e", pa.name, worst);
    }
    /* evaluation of a sampled head is the full softmax */
    double ea, eb;
    ck_assert_int_eq(net_forward_eval(a, 16, &ea, err, sizeof err), PC_OK);
    ck_assert_int_eq(net_forward_eval(b, 16, &eb, err, sizeof err), PC_OK);
    ck_assert_double_eq_tol(ea, eb, 1e-9);
    net_free(a);
    net_free(b);
}
END_TEST

START_TEST(test_sampled_sparse_head)
{
    /* 200 classes, 8 negatives: only the labels' and the negatives' rows of the output layer
     * get a gradient, they are listed as touched, and the next step clears them */
    net_spec s = small_spec(NET_HEAD_SAMPLED_SOFTMAX, 200, 5);
    s.negatives = 8;
    s.sampler = GRAD_SAMPLER_LOG_UNIFORM;
    net *n = make_net(&s, 10);
    int kw = net_param_find(n, "head.weight"), kb = net_param_find(n, "head.bias");
    ck_assert(kw >= 0 && kb >= 0);
    for (uint64_t step = 0; step < 3; step++) {
        fill_batch(n, 10, step);
        double loss;
        ck_assert_int_eq(net_forward_train(n, 10, step, &loss, err, sizeof err), PC_OK);
        ck_assert(isfinite(loss) && loss > 0);
        net_backward(n, 10);
        net_param w, bias;
        net_param_get(n, kw, &w);
        net_param_get(n, kb, &bias);
        ck_assert_ptr_nonnull(w.touched_rows);
        ck_assert_int_eq(w.touched_count, bias.touched_count);
        /* at most 10 labels + 8 negatives, at least the 8 negatives */
        ck_assert(w.touched_count >= 8 && w.touched_count <= 18);
        uint8_t touched[200] = {0};
        for (int64_t t = 0; t < w.touched_count; t++) touched[w.touched_rows[t]] = 1;
        for (int64_t b = 0; b < 10; b++) ck_assert(touched[net_label_class(n)[b]]);
        int64_t nonzero_rows = 0;
        for (int64_t c = 0; c < 200; c++) {
            bool nz = bias.grad[c] != 0.0f;
            for (int64_t d = 0; d < w.row_width; d++) nz |= w.grad[c * w.row_width + d] != 0.0f;
            ck_assert_msg(!nz || touched[c], "class %lld has a gradient but is not touched", (long long)c);
            nonzero_rows += nz;
        }
        ck_assert(nonzero_rows >= 8);
    }
    net_free(n);
}
END_TEST

/* Net-level finite differences: the loss of net_forward_train at a fixed step is a
 * deterministic function of the parameters (same dropout mask, same negatives), so a few
 * coordinates of every parameter are perturbed in float and compared with net_backward. */
static void check_net_fd(net_head head, int64_t outputs, int64_t negatives, grad_sampler sampler)
{
    net_spec s = small_spec(head, outputs, 11);
    s.negatives = negatives;
    s.sampler = sampler;
    /* eval-mode-free batch norm would need large batches for stable statistics; 24 rows */
    net *n = make_net(&s, 24);
    fill_batch(n, 24, 2);
    double loss;
    ck_assert_int_eq(net_forward_train(n, 24, 9, &loss, err, sizeof err), PC_OK);
    net_backward(n, 24);
    double worst = 0;
    for (int k = 0; k < net_param_count(n); k++) {
        net_param p;
        net_param_get(n, k, &p);
        if (p.grad == NULL) continue;
        /* a snapshot of the gradient: forward_train clears it */
        float *g = malloc((size_t)p.count * sizeof *g);
        ck_assert_ptr_nonnull(g);
        memcpy(g, p.grad, (size_t)p.count * sizeof *g);
        for (int64_t probe = 0; probe < 6; probe++) {
            int64_t i = (probe * 7919 + k * 31) % p.count;
            if (p.is_embedding) {
                /* a row the batch used (the first touched one), any column */
                i = p.touched_rows[probe % p.touched_count] * p.row_width + probe % p.row_width;
            }
            float keep = p.value[i];
            double h = 3e-4, lp, lm; /* small: BN after ReLU bends the loss within 1e-3 */
            p.value[i] = keep + (float)h;
            ck_assert_int_eq(net_forward_train(n, 24, 9, &lp, err, sizeof err), PC_OK);
            p.value[i] = keep - (float)h;
            ck_assert_int_eq(net_forward_train(n, 24, 9, &lm, err, sizeof err), PC_OK);
            p.value[i] = keep;
            double fd = (lp - lm) / (2 * h);
            /* float rounding of the loss (~1e-7) over 2h leaves ~2e-4 of noise: floor 5e-2 */
            double e = fabs(fd - g[i]) / fmax(5e-2, fabs(fd));
            if (e > worst) worst = e;
            ck_assert_msg(e < 2e-2, "head %d: %s[%lld]: backward %.6g, finite difference %.6g",
                          (int)head, p.name, (long long)i, g[i], fd);
        }
        free(g);
        /* the probes ran forward passes; restore this step's gradients for the next one */
        ck_assert_int_eq(net_forward_train(n, 24, 9, &loss, err, sizeof err), PC_OK);
        net_backward(n, 24);
    }
    printf("  head %d: whole-net backward vs finite differences (float): worst %.2e\n", (int)head,
           worst);
    net_free(n);
}

START_TEST(test_net_finite_differences)
{
    switch (_i) {
    case 0: check_net_fd(NET_HEAD_SOFTMAX, 5, 0, GRAD_SAMPLER_UNIFORM); break;
    case 1: check_net_fd(NET_HEAD_SAMPLED_SOFTMAX, 30, 6, GRAD_SAMPLER_LOG_UNIFORM); break;
    case 2: check_net_fd(NET_HEAD_SAMPLED_SOFTMAX, 30, 6, GRAD_SAMPLER_UNIFORM); break;
    case 3: check_net_fd(NET_HEAD_ONE_VS_ALL, 4, 0, GRAD_SAMPLER_UNIFORM); break;
    case 4: check_net_fd(NET_HEAD_MULTILABEL, 4, 0, GRAD_SAMPLER_UNIFORM); break;
    case 5: check_net_fd(NET_HEAD_SIGMOID, 1, 0, GRAD_SAMPLER_UNIFORM); break;
    default: check_net_fd(NET_HEAD_REGRESSION, 3, 0, GRAD_SAMPLER_UNIFORM); break;
    }
}
END_TEST

START_TEST(test_embedding_sparse)
{
    net_spec s = small_spec(NET_HEAD_SOFTMAX, 3, 2);
    net *n = make_net(&s, 8);
    int k = net_param_find(n, "embed.item");
    ck_assert(k >= 0);
    net_param p;
    net_param_get(n, k, &p);
    ck_assert(p.is_embedding);
    ck_assert_int_eq(p.row_width, 3);
    ck_assert_int_eq(p.count, 40 * 3);
    /* the padding row starts at zero */
    for (int d = 0; d < 3; d++) ck_assert_float_eq(p.value[d], 0.0f);
    for (uint64_t step = 0; step < 2; step++) {
        fill_batch(n, 8, step);
        double loss;
        ck_assert_int_eq(net_forward_train(n, 8, step, &loss, err, sizeof err), PC_OK);
        net_backward(n, 8);
        net_param_get(n, k, &p);
        uint8_t used[40] = {0};
        for (int64_t i = 0; i < 8 * 2; i++) used[net_embed_input(n, 0)[i]] = 1;
        used[0] = 0; /* padding */
        int64_t nused = 0;
        for (int v = 0; v < 40; v++) nused += used[v];
        ck_assert_int_eq(p.touched_count, nused);
        for (int64_t t = 0; t < p.touched_count; t++) ck_assert(used[p.touched_rows[t]]);
        for (int v = 0; v < 40; v++)
            if (!used[v])
                for (int d = 0; d < 3; d++)
                    ck_assert_msg(p.grad[v * 3 + d] == 0.0f, "row %d (unused) has a gradient", v);
    }
    /* a row another rank's gradient reached is cleared by the next step once touched */
    net_param_get(n, k, &p);
    p.grad[39 * 3] = 1.0f;
    net_param_touch(n, k, 39);
    net_param_get(n, k, &p);
    fill_batch(n, 8, 0); /* row 39 is not used by this batch */
    double loss;
    ck_assert_int_eq(net_forward_train(n, 8, 5, &loss, err, sizeof err), PC_OK);
    net_backward(n, 8);
    net_param_get(n, k, &p);
    ck_assert_float_eq(p.grad[39 * 3], 0.0f);
    net_free(n);
}
END_TEST

/* Trains a copy of small_spec for 4 steps and returns a checksum-free copy of all values. */
static float *train_values(const net_spec *s, int64_t *total)
{
    net *n = make_net(s, 12);
    optim_config c;
    optim_config_init(&c, OPTIM_ADAM);
    c.lr = 0.01;
    optim *o = NULL;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
    for (uint64_t step = 0; step < 4; step++) {
        fill_batch(n, 12, step);
        double loss;
        ck_assert_int_eq(net_forward_train(n, 12, step, &loss, err, sizeof err), PC_OK);
        net_backward(n, 12);
        optim_step(o, n, c.lr);
    }
    *total = 0;
    for (int k = 0; k < net_param_count(n); k++) {
        net_param p;
        net_param_get(n, k, &p);
        *total += p.count;
    }
    float *v = malloc((size_t)*total * sizeof *v), *q = v;
    for (int k = 0; k < net_param_count(n); k++) {
        net_param p;
        net_param_get(n, k, &p);
        memcpy(q, p.value, (size_t)p.count * sizeof *q);
        q += p.count;
    }
    optim_free(o);
    net_free(n);
    return v;
}

START_TEST(test_deterministic)
{
    net_spec s = small_spec(NET_HEAD_SAMPLED_SOFTMAX, 9, 77);
    s.negatives = 4;
    int64_t n1, n2, n3;
    float *a = train_values(&s, &n1), *b = train_values(&s, &n2);
    ck_assert_int_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof *a) == 0, "the same seed gave different weights");
    s.seed = 78;
    float *c = train_values(&s, &n3);
    ck_assert_msg(memcmp(a, c, (size_t)n1 * sizeof *a) != 0, "another seed gave the same weights");
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(test_dropout_and_eval)
{
    /* eval ignores dropout: a net with dropout 0.5 and one without, with the same weights
     * (dropout has no parameters, so the same seed initialises both alike), agree exactly in
     * inference; in training the dropout changes the loss */
    net_spec with = small_spec(NET_HEAD_SOFTMAX, 4, 8), without = with;
    with.layers[2].p = 0.5f;
    without.n_layers = 3;
    without.layers[2] = with.layers[3];
    net *a = make_net(&with, 10), *b = make_net(&without, 10);
    fill_batch(a, 10, 3);
    fill_batch(b, 10, 3);
    ck_assert_int_eq(net_forward_eval(a, 10, NULL, err, sizeof err), PC_OK);
    ck_assert_int_eq(net_forward_eval(b, 10, NULL, err, sizeof err), PC_OK);
    ck_assert_mem_eq(net_output(a), net_output(b), 10 * 4 * sizeof(float));
    for (int b_ = 0; b_ < 10; b_++) {
        double s = 0;
        for (int j = 0; j < 4; j++) s += net_output(a)[b_ * 4 + j];
        ck_assert_double_eq_tol(s, 1.0, 1e-5);
    }
    double la, lb;
    ck_assert_int_eq(net_forward_train(a, 10, 0, &la, err, sizeof err), PC_OK);
    ck_assert_int_eq(net_forward_train(b, 10, 0, &lb, err, sizeof err), PC_OK);
    ck_assert_msg(la != lb, "dropout 0.5 did not change the training loss");
    /* a different row key changes the mask, hence the loss */
    net_row_keys(a)[0] = 1000;
    double lc;
    ck_assert_int_eq(net_forward_train(a, 10, 0, &lc, err, sizeof err), PC_OK);
    ck_assert_msg(lc != la, "the row key did not change the dropout mask");
    net_free(a);
    net_free(b);
}
END_TEST

START_TEST(test_dead_units)
{
    net_spec s = small_spec(NET_HEAD_SOFTMAX, 3, 4);
    net *n = make_net(&s, 16);
    ck_assert_double_eq(net_dead_share(n, 0), -1.0); /* no rows seen yet */
    fill_batch(n, 16, 0);
    double loss;
    ck_assert_int_eq(net_forward_train(n, 16, 0, &loss, err, sizeof err), PC_OK);
    double alive = net_dead_share(n, 0);
    ck_assert_msg(alive >= 0.0 && alive < 0.5, "dead share %.3f with the default init", alive);
    ck_assert_double_eq(net_dead_share(n, 1), -1.0); /* batch norm */
    ck_assert_double_eq(net_dead_share(n, 3), -1.0); /* tanh */
    net_free(n);
    /* a bias of -100 kills every ReLU unit */
    s.has_bias_init = true;
    s.bias_init = -100.0f;
    n = make_net(&s, 16);
    fill_batch(n, 16, 0);
    ck_assert_int_eq(net_forward_train(n, 16, 0, &loss, err, sizeof err), PC_OK);
    printf("  dead share: %.3f with bias -100 (default init: %.3f)\n", net_dead_share(n, 0), alive);
    ck_assert_double_eq(net_dead_share(n, 0), 1.0);
    net_dead_reset(n);
    ck_assert_double_eq(net_dead_share(n, 0), -1.0);
    net_free(n);
}
END_TEST

START_TEST(test_layers_and_params)
{
    net_spec s = small_spec(NET_HEAD_REGRESSION, 2, 1);
    net *n = make_net(&s, 4);
    ck_assert_int_eq(net_input_width(n), 5 + 3);
    ck_assert_int_eq(net_layer_count(n), 5);
    net_layer l;
    ck_assert_int_eq(net_layer_get(n, 0, &l), PC_OK);
    ck_assert(l.kind == NET_LAYER_DENSE && l.in == 8 && l.out == 12 && l.act == NET_ACT_RELU && !l.is_head);
    ck_assert_int_eq(net_layer_get(n, 1, &l), PC_OK);
    ck_assert(l.kind == NET_LAYER_BATCHNORM && l.out == 12 && l.running_var != NULL);
    ck_assert_float_eq_tol(l.eps, 1e-5f, 1e-12f);
    ck_assert_int_eq(net_layer_get(n, 2, &l), PC_OK);
    ck_assert(l.kind == NET_LAYER_DROPOUT && l.p == 0.2f);
    ck_assert_int_eq(net_layer_get(n, 4, &l), PC_OK);
    ck_assert(l.is_head && l.in == 7 && l.out == 2 && l.act == NET_ACT_NONE);
    ck_assert_int_eq(net_layer_get(n, 5, &l), PC_ERR_USAGE);
    static const char *names[] = {"embed.item", "dense0.weight", "dense0.bias", "bn1.weight",
                                  "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                  "dense3.weight", "dense3.bias", "head.weight", "head.bias"};
    ck_assert_int_eq(net_param_count(n), 11);
    for (int k = 0; k < 11; k++) {
        net_param p;
        ck_assert_int_eq(net_param_get(n, k, &p), PC_OK);
        ck_assert_str_eq(p.name, names[k]);
        ck_assert_int_eq(net_param_find(n, names[k]), k);
        ck_assert((p.grad == NULL) == (strstr(p.name, "running") != NULL));
    }
    net_param p;
    ck_assert_int_eq(net_param_get(n, 11, &p), PC_ERR_USAGE);
    /* Kaiming-uniform init: dense0 weights within 1/sqrt(8), spread over the interval */
    net_param_get(n, 1, &p);
    double lo = 1, hi = -1, bound = 1 / sqrt(8.0);
    for (int64_t i = 0; i < p.count; i++) {
        lo = fmin(lo, p.value[i]);
        hi = fmax(hi, p.value[i]);
    }
    ck_assert_msg(lo >= -bound && hi <= bound && lo < -0.8 * bound && hi > 0.8 * bound,
                  "init range [%g, %g], bound %g", lo, hi, bound);
    net_param_get(n, 6, &p); /* running_var starts at 1 */
    for (int64_t i = 0; i < p.count; i++) ck_assert_float_eq(p.value[i], 1.0f);
    net_free(n);
}
END_TEST

START_TEST(test_bad_specs_and_inputs)
{
    net *n = NULL;
    net_spec s = small_spec(NET_HEAD_SOFTMAX, 3, 1);
    s.layers[2].p = 1.0f;
    ck_assert_int_eq(net_create(&s, 4, &n, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_null(n);
    ck_assert_msg(strstr(err, "layer 2") != NULL && strstr(err, "dropout") != NULL, "%s", err);
    s = small_spec(NET_HEAD_SIGMOID, 3, 1);
    ck_assert_int_eq(net_create(&s, 4, &n, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "sigmoid") != NULL, "%s", err);
    s = small_spec(NET_HEAD_SOFTMAX, 3, 1);
    s.embeds[0].padding_idx = 40;
    ck_assert_int_eq(net_create(&s, 4, &n, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "'item'") != NULL, "%s", err);
    s = small_spec(NET_HEAD_SOFTMAX, 3, 1);
    s.layers[0].units = 0;
    ck_assert_int_eq(net_create(&s, 4, &n, err, sizeof err), PC_ERR_CONFIG);
    s = small_spec(NET_HEAD_SAMPLED_SOFTMAX, 3, 1);
    ck_assert_int_eq(net_create(&s, 4, &n, err, sizeof err), PC_ERR_CONFIG); /* 0 negatives */
    s = small_spec(NET_HEAD_SOFTMAX, 3, 1);
    ck_assert_int_eq(net_create(&s, 0, &n, err, sizeof err), PC_ERR_CONFIG);

    n = make_net(&s, 4);
    fill_batch(n, 4, 0);
    double loss;
    net_embed_input(n, 0)[5] = 40; /* row 2, slot 1 */
    ck_assert_int_eq(net_forward_train(n, 4, 0, &loss, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "row 2") != NULL && strstr(err, "'item'") != NULL && strstr(err, "40") != NULL, "%s", err);
    ck_assert_int_eq(net_forward_eval(n, 4, NULL, err, sizeof err), PC_ERR_DATA);
    fill_batch(n, 4, 0);
    net_label_class(n)[3] = 3;
    ck_assert_int_eq(net_forward_train(n, 4, 0, &loss, err, sizeof err), PC_ERR_DATA);
    ck_assert_msg(strstr(err, "row 3") != NULL && strstr(err, "class 3") != NULL, "%s", err);
    /* labels are not read when evaluating without a loss */
    ck_assert_int_eq(net_forward_eval(n, 4, NULL, err, sizeof err), PC_OK);
    ck_assert_int_eq(net_forward_train(n, 5, 0, &loss, err, sizeof err), PC_ERR_USAGE);
    ck_assert_int_eq(net_forward_train(n, 0, 0, &loss, err, sizeof err), PC_ERR_USAGE);
    net_free(n);
    net_free(NULL);
}
END_TEST

/* ---- optimiser formulas ------------------------------------------------------------------- */

/* A net with a single head layer (no hidden layers) to drive the optimiser by hand. */
static net *tiny_net(void)
{
    net_spec s;
    net_spec_init(&s);
    s.dense_width = 3;
    s.head = NET_HEAD_REGRESSION;
    s.outputs = 2;
    return make_net(&s, 1);
}

static void set_grads(net *n, float g)
{
    for (int k = 0; k < net_param_count(n); k++) {
        net_param p;
        net_param_get(n, k, &p);
        for (int64_t i = 0; i < p.count; i++) p.grad[i] = g * (float)(i + 1) * (k == 0 ? 1.0f : -1.0f);
    }
}

START_TEST(test_schedules)
{
    ck_assert_double_eq(optim_schedule_lr(OPTIM_SCHEDULE_CONSTANT, 0.1, 500, 1000, 10, 0.5), 0.1);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_STEP, 0.1, 0, 0, 10, 0.5), 0.1, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_STEP, 0.1, 9, 0, 10, 0.5), 0.1, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_STEP, 0.1, 10, 0, 10, 0.5), 0.05, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_STEP, 0.1, 35, 0, 10, 0.5), 0.0125, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, 0, 100, 0, 0), 0.2, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, 50, 100, 0, 0), 0.1, 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, 25, 100, 0, 0),
                            0.1 * (1 + sqrt(0.5)), 1e-15);
    ck_assert_double_eq_tol(optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, 100, 100, 0, 0), 0.0, 1e-15);
    ck_assert_double_eq(optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, 150, 100, 0, 0), 0.0);
    /* monotone decreasing over the run */
    double prev = 1;
    for (int64_t t = 0; t <= 100; t++) {
        double lr = optim_schedule_lr(OPTIM_SCHEDULE_COSINE, 0.2, t, 100, 0, 0);
        ck_assert(lr <= prev);
        prev = lr;
    }
}
END_TEST

START_TEST(test_clip_global_norm)
{
    net *n = tiny_net();
    set_grads(n, 1.0f);
    /* weight grads 1..6, bias grads -1, -2: norm sqrt(91 + 5) */
    double want = sqrt(91.0 + 5.0);
    ck_assert_double_eq_tol(optim_clip_global_norm(n, 0.0), want, 1e-12); /* measure only */
    ck_assert_double_eq_tol(optim_clip_global_norm(n, 100.0), want, 1e-12); /* below: kept */
    net_param w;
    net_param_get(n, 0, &w);
    ck_assert_float_eq(w.grad[5], 6.0f);
    ck_assert_double_eq_tol(optim_clip_global_norm(n, 2.0), want, 1e-12);
    double after = optim_clip_global_norm(n, 0.0);
    printf("  clip: norm %.6f -> %.6f (max 2)\n", want, after);
    ck_assert_double_eq_tol(after, 2.0, 1e-5);
    /* the direction is kept */
    ck_assert_float_eq_tol(w.grad[5] / w.grad[0], 6.0f, 1e-5f);
    ck_assert_double_eq_tol(optim_param_grad_norm(n, 0), sqrt(91.0) * 2.0 / want, 1e-5);
    net_free(n);
}
END_TEST

START_TEST(test_sgd_momentum_l2)
{
    net *n = tiny_net();
    optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    c.momentum = 0.9;
    c.l2 = 0.1;
    optim *o = NULL;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
    net_param w;
    net_param_get(n, 0, &w);
    for (int64_t i = 0; i < w.count; i++) w.value[i] = 1.0f;
    /* step 1: d = g + l2 w = 0.5 + 0.1; buf = d; w = 1 - lr d */
    set_grads(n, 0.0f);
    for (int64_t i = 0; i < w.count; i++) w.grad[i] = 0.5f;
    optim_step(o, n, 0.1);
    double w1 = 1 - 0.1 * 0.6, buf = 0.6;
    ck_assert_double_eq_tol(w.value[3], w1, 1e-6);
    /* step 2: d = 0.5 + 0.1 w1; buf = 0.9 buf + d */
    optim_step(o, n, 0.1);
    buf = 0.9 * buf + 0.5 + 0.1 * w1;
    ck_assert_double_eq_tol(w.value[3], w1 - 0.1 * buf, 1e-6);
    optim_free(o);
    /* plain SGD with L2 on a zero gradient: pure decay w -= lr l2 w */
    optim_config_init(&c, OPTIM_SGD);
    c.l2 = 0.5;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
    set_grads(n, 0.0f);
    float before = w.value[0];
    optim_step(o, n, 0.2);
    ck_assert_double_eq_tol(w.value[0], before * (1 - 0.2 * 0.5), 1e-6);
    optim_free(o);
    net_free(n);
}
END_TEST

START_TEST(test_adam_first_steps)
{
    /* Adam's first step moves each parameter by lr * g/(|g| + eps'), i.e. by ~lr against the
     * sign of its gradient, whatever the gradient's size; a zero gradient does not move it */
    net *n = tiny_net();
    optim_config c;
    optim_config_init(&c, OPTIM_ADAM);
    optim *o = NULL;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
    net_param w, b;
    net_param_get(n, 0, &w);
    net_param_get(n, 1, &b);
    float w0[6], b0[2];
    memcpy(w0, w.value, sizeof w0);
    memcpy(b0, b.value, sizeof b0);
    set_grads(n, 1e-3f);
    b.grad[1] = 0.0f;
    optim_step(o, n, 0.01);
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(w.value[i], w0[i] - 0.01, 1e-6);
    ck_assert_double_eq_tol(b.value[0], b0[0] + 0.01, 1e-6);
    ck_assert_float_eq(b.value[1], b0[1]);
    /* second step with the same gradient: m̂ = g, v̂ = g², the same move again */
    optim_step(o, n, 0.01);
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(w.value[i], w0[i] - 0.02, 2e-6);
    ck_assert_int_eq(optim_steps(o), 2);
    optim_free(o);
    /* bad configurations */
    c.lr = -1;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_ptr_null(o);
    optim_config_init(&c, OPTIM_ADAM);
    c.beta2 = 1.0;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, "beta") != NULL, "%s", err);
    optim_free(NULL);
    net_free(n);
}
END_TEST


START_TEST(test_lazy_sparse)
{
    /* lazy_sparse: rows of the embedding that the step did not touch keep their values even
     * with momentum and L2; the dense default moves them (PyTorch's semantics) */
    for (int lazy = 0; lazy < 2; lazy++) {
        net_spec s = small_spec(NET_HEAD_SOFTMAX, 3, 6);
        net *n = make_net(&s, 8);
        optim_config c;
        optim_config_init(&c, OPTIM_ADAM);
        c.l2 = 0.1;
        c.lazy_sparse = lazy;
        optim *o = NULL;
        ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
        int k = net_param_find(n, "embed.item");
        net_param p;
        net_param_get(n, k, &p);
        float *before = malloc((size_t)p.count * sizeof *before);
        ck_assert_ptr_nonnull(before);
        int64_t moved_untouched = 0, moved_touched = 0, dense_moved = 0;
        for (uint64_t step = 0; step < 2; step++) {
            fill_batch(n, 8, step);
            double loss;
            ck_assert_int_eq(net_forward_train(n, 8, step, &loss, err, sizeof err), PC_OK);
            net_backward(n, 8);
            net_param_get(n, k, &p);
            memcpy(before, p.value, (size_t)p.count * sizeof *before);
            net_param dw;
            net_param_get(n, net_param_find(n, "dense0.weight"), &dw);
            float w0 = dw.value[0];
            optim_step(o, n, 0.01);
            dense_moved += dw.value[0] != w0;
            uint8_t touched[40] = {0};
            for (int64_t t = 0; t < p.touched_count; t++) touched[p.touched_rows[t]] = 1;
            for (int v = 1; v < 40; v++) {
                bool moved = memcmp(before + v * 3, p.value + v * 3, 3 * sizeof(float)) != 0;
                if (touched[v]) moved_touched += moved;
                else moved_untouched += moved;
            }
        }
        printf("  lazy_sparse %d: untouched rows moved %lld times, touched %lld\n", lazy,
               (long long)moved_untouched, (long long)moved_touched);
        ck_assert(moved_touched > 0);
        ck_assert_int_eq(dense_moved, 2); /* dense parameters update either way */
        if (lazy)
            ck_assert_int_eq(moved_untouched, 0);
        else
            ck_assert(moved_untouched > 0);
        free(before);
        optim_free(o);
        net_free(n);
    }
}
END_TEST


START_TEST(test_step_allocates_nothing)
{
    /* after a warm-up step (OpenBLAS sets its buffers up on first use), training steps,
     * evaluation and optimiser updates leave the heap exactly as they found it; mallinfo2 sees
     * glibc's heap (under ASan or valgrind it reports nothing and this proves nothing) */
    net_spec s = small_spec(NET_HEAD_SAMPLED_SOFTMAX, 50, 9);
    s.negatives = 7;
    s.sampler = GRAD_SAMPLER_LOG_UNIFORM;
    net *n = make_net(&s, 16);
    optim_config c;
    optim_config_init(&c, OPTIM_ADAM);
    optim *o = NULL;
    ck_assert_int_eq(optim_create(&c, n, &o, err, sizeof err), PC_OK);
    double loss;
    fill_batch(n, 16, 0);
    ck_assert_int_eq(net_forward_train(n, 16, 0, &loss, err, sizeof err), PC_OK);
    net_backward(n, 16);
    optim_step(o, n, 1e-3);
    ck_assert_int_eq(net_forward_eval(n, 16, &loss, err, sizeof err), PC_OK);
    struct mallinfo2 before = mallinfo2();
    for (uint64_t step = 1; step < 6; step++) {
        fill_batch(n, 16, step);
        ck_assert_int_eq(net_forward_train(n, 16, step, &loss, err, sizeof err), PC_OK);
        net_backward(n, 16);
        optim_clip_global_norm(n, 1.0);
        optim_step(o, n, 1e-3);
        ck_assert_int_eq(net_forward_eval(n, 9, &loss, err, sizeof err), PC_OK);
    }
    struct mallinfo2 after = mallinfo2();
    ck_assert_msg(after.uordblks == before.uordblks && after.hblkhd == before.hblkhd,
                  "the heap changed during training steps: %zu -> %zu bytes in use, %zu -> %zu mmapped",
                  before.uordblks, after.uordblks, before.hblkhd, after.hblkhd);
    optim_free(o);
    net_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *py = tcase_create("pytorch");
    tcase_set_timeout(py, 300); /* valgrind */
    tcase_add_loop_test(py, test_against_pytorch, 0, (int)(sizeof pytorch_cases / sizeof *pytorch_cases));
    suite_add_tcase(s, py);
    TCase *net_t = tcase_create("net");
    tcase_set_timeout(net_t, 300);
    tcase_add_test(net_t, test_sampled_all_negatives_is_softmax);
    tcase_add_test(net_t, test_sampled_sparse_head);
    tcase_add_loop_test(net_t, test_net_finite_differences, 0, 7);
    tcase_add_test(net_t, test_embedding_sparse);
    tcase_add_test(net_t, test_deterministic);
    tcase_add_test(net_t, test_dropout_and_eval);
    tcase_add_test(net_t, test_dead_units);
    tcase_add_test(net_t, test_layers_and_params);
    tcase_add_test(net_t, test_bad_specs_and_inputs);
    tcase_add_test(net_t, test_step_allocates_nothing);
    suite_add_tcase(s, net_t);
    TCase *opt = tcase_create("optim");
    tcase_add_test(opt, test_schedules);
    tcase_add_test(opt, test_clip_global_norm);
    tcase_add_test(opt, test_sgd_momentum_l2);
    tcase_add_test(opt, test_adam_first_steps);
    tcase_add_test(opt, test_lazy_sparse);
    suite_add_tcase(s, opt);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
