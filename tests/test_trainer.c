/*
 * test_trainer.c — precast train's pieces that need no MPI run: the job file's checks, the
 * ONNX writer (round trip through kernels/model.h against a double-precision forward pass
 * written here), and the diagnostics detectors on synthetic curves, each of which must fire
 * on its own failure and stay quiet on a healthy run.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/model.h"
#include "tests/test_files.h"
#include "trainer/diagnose.h"
#include "trainer/onnx_write.h"
#include "trainer/train_config.h"

static char dir[512];
static char err[PC_ERRLEN];

static void setup(void) { make_tmpdir(dir, sizeof dir, "trainer"); }
static void teardown(void) { rm_rf(dir); }

static const char *job_path(const char *name, const char *text)
{
    static char path[1024];
    write_str(dir, name, text);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static const char *BASE = "[data]\npaths = d.csv\nlabel_column = y\n[output]\nmodel = out/m.onnx\n";

/* ---- job file ---------------------------------------------------------------------------- */

START_TEST(test_config_defaults_and_paths)
{
    char text[2048];
    snprintf(text, sizeof text, "%s[model]\nlayers = dense 16 relu, batchnorm, dropout 0.25, dense 8 leaky_relu 0.2, "
             "dense 4 tanh x3\nembed.user = 8\nhash.user = 1000\n", BASE);
    train_config *c = NULL;
    ck_assert_int_eq(train_config_load(job_path("ok.ini", text), NULL, 0, &c, err, sizeof err), PC_OK);
    ck_assert_int_eq(c->nlayers, 7);
    ck_assert_int_eq(c->layers[0].units, 16);
    ck_assert_int_eq(c->layers[1].kind, TRAIN_LAYER_BATCHNORM);
    ck_assert(fabs(c->layers[2].p - 0.25) < 1e-12);
    ck_assert_int_eq(c->layers[3].act, TRAIN_ACT_LEAKY_RELU);
    ck_assert(fabs(c->layers[3].alpha - 0.2) < 1e-12);
    ck_assert_int_eq(c->layers[6].act, TRAIN_ACT_TANH);
    ck_assert_int_eq(c->nembeds, 1);
    ck_assert_int_eq(c->embeds[0].hash_buckets, 1000);
    ck_assert_int_eq(c->head, TRAIN_HEAD_SOFTMAX);
    ck_assert_int_eq(c->epochs, 10);
    ck_assert(fabs(c->validation - 0.2) < 1e-12);
    /* paths resolve against the job file's folder; outputs default beside the model */
    char want[1100];
    snprintf(want, sizeof want, "%s/out/m.onnx", dir);
    ck_assert_str_eq(c->model_path, want);
    snprintf(want, sizeof want, "%s/out/m.labels", dir);
    ck_assert_str_eq(c->labels_path, want);
    snprintf(want, sizeof want, "%s/out/m.report.json", dir);
    ck_assert_str_eq(c->report_path, want);
    snprintf(want, sizeof want, "%s/out/loss.png", dir);
    ck_assert_str_eq(c->plot_path, want);
    train_config_free(c);
    /* --set overrides the file */
    char *sets[] = {"train.epochs=3", "model.head=one_vs_all"};
    ck_assert_int_eq(train_config_load(job_path("ok2.ini", BASE), sets, 2, &c, err, sizeof err), PC_OK);
    ck_assert_int_eq(c->epochs, 3);
    ck_assert_int_eq(c->head, TRAIN_HEAD_ONE_VS_ALL);
    train_config_free(c);
}
END_TEST

/* Loads text and expects PC_ERR_CONFIG with `want` in the message. */
static void expect_error(const char *name, const char *text, char *const *sets, int nsets, const char *want)
{
    train_config *c = (train_config *)1;
    pc_status s = train_config_load(job_path(name, text), sets, nsets, &c, err, sizeof err);
    ck_assert_msg(s == PC_ERR_CONFIG, "%s: status %d (%s)", name, s, err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, want) != NULL, "%s: '%s' lacks '%s'", name, err, want);
}

START_TEST(test_config_errors_name_file_and_line)
{
    char text[2048], want[1100];
    snprintf(text, sizeof text, "%s[train]\nepochs = 3\nlearning_rat = 0.1\n", BASE);
    snprintf(want, sizeof want, "%s/e1.ini:8: unknown key 'learning_rat' in section [train]", dir);
    expect_error("e1.ini", text, NULL, 0, want);
    snprintf(text, sizeof text, "%s[model]\nlayers = dense 16 relu, dense abc\n", BASE);
    snprintf(want, sizeof want, "%s/e2.ini:7: 'dense' needs a unit count", dir);
    expect_error("e2.ini", text, NULL, 0, want);
    snprintf(text, sizeof text, "%s[model]\nlayers = dense 16 swish\n", BASE);
    expect_error("e3.ini", text, NULL, 0, "unknown activation 'swish'");
    snprintf(text, sizeof text, "%s[model]\nhead = regression\n", BASE);
    expect_error("e4.ini", text, NULL, 0, "model.head = regression cannot learn data.label_kind = class");
    expect_error("e5.ini", "[data]\npaths = d.csv\n[output]\nmodel = m.onnx\n", NULL, 0,
                 "missing required key 'label_column' in section [data]");
    expect_error("e6.ini", "[data]\npaths = d.csv\nlabel_column = y\n", NULL, 0, "missing required key 'model' in section [output]");
    snprintf(text, sizeof text, "%s[train]\nbatch_rows = 0\n", BASE);
    expect_error("e7.ini", text, NULL, 0, "train.batch_rows = '0': expected an integer in 1..");
    snprintf(text, sizeof text, "%s[model]\nhash.user = 10\n", BASE);
    expect_error("e8.ini", text, NULL, 0, "column 'user' has no embed.user = DIM line");
    snprintf(text, sizeof text, "%s[train]\nearly_stopping = 3\n", BASE);
    char *noval[] = {"data.validation=0"};
    expect_error("e9.ini", text, noval, 1, "needs a validation split");
    char *bad[] = {"data.validation=1.5"};
    expect_error("e10.ini", BASE, bad, 1, "--set data.validation: data.validation = '1.5'");
    char *typo[] = {"train.epoch=3"};
    expect_error("e11.ini", BASE, typo, 1, "--set train.epoch: unknown key 'epoch'");
    snprintf(text, sizeof text, "%s[model]\nlayers = dropout 1\n", BASE);
    expect_error("e12.ini", text, NULL, 0, "'dropout' needs a probability in [0, 1)");
    snprintf(text, sizeof text, "%s[train]\noptimizer = rmsprop\n", BASE);
    expect_error("e13.ini", text, NULL, 0, "train.optimizer = 'rmsprop': expected adam | sgd");
}
END_TEST

/* ---- ONNX writer round trip ------------------------------------------------------------------ */

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2 - 1);
}

static double act(train_activation a, double alpha, double x)
{
    switch (a) {
    case TRAIN_ACT_RELU: return x > 0 ? x : 0;
    case TRAIN_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case TRAIN_ACT_TANH: return tanh(x);
    case TRAIN_ACT_SIGMOID: return 1 / (1 + exp(-x));
    default: return x;
    }
}

/* The network the writer is given, computed in double: embeddings mean-pooled and concatenated
 * after the dense features, then the layers, then softmax. */
static void reference_forward(const onnx_write_spec *s, const float *x, const int64_t *ids, double *out)
{
    double a[64], b[64];
    int64_t w = 0;
    for (int64_t i = 0; i < s->dense_width; i++) a[w++] = x[i];
    for (int e = 0; e < s->nembeds; e++) {
        const onnx_write_embed *em = &s->embeds[e];
        for (int64_t d = 0; d < em->dim; d++) {
            double sum = 0;
            for (int64_t k = 0; k < em->bag; k++) sum += em->table[ids[k] * em->dim + d];
            a[w++] = sum / (double)em->bag;
        }
    }
    for (int l = 0; l < s->nlayers; l++) {
        const onnx_write_layer *L = &s->layers[l];
        if (L->kind == TRAIN_LAYER_DROPOUT) continue;
        for (int64_t o = 0; o < L->out; o++) {
            if (L->kind == TRAIN_LAYER_BATCHNORM) {
                b[o] = (a[o] - L->bn_mean[o]) / sqrt((double)L->bn_var[o] + L->bn_eps) * L->bn_scale[o] + L->bn_bias[o];
                continue;
            }
            double sum = L->bias ? L->bias[o] : 0;
            for (int64_t i = 0; i < L->in; i++) sum += (double)L->weight[o * L->in + i] * a[i];
            b[o] = act(L->act, L->alpha, sum);
        }
        w = L->out;
        memcpy(a, b, sizeof a);
    }
    double mx = a[0], z = 0;
    for (int64_t i = 1; i < w; i++) mx = a[i] > mx ? a[i] : mx;
    for (int64_t i = 0; i < w; i++) z += exp(a[i] - mx);
    for (int64_t i = 0; i < w; i++) out[i] = exp(a[i] - mx) / z;
}

START_TEST(test_onnx_writer_round_trip)
{
    uint64_t seed = 7;
    float params[4096];
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) params[i] = frand(&seed);
    float var[8];
    for (int i = 0; i < 8; i++) var[i] = 0.5f + (float)i / 8; /* variances must be positive */
    /* embedding: vocab 6, dim 3, bag 2 */
    onnx_write_embed em = {"items", 6, 3, 2, params + 3000};
    onnx_write_layer layers[] = {
        {.kind = TRAIN_LAYER_DENSE, .in = 8, .out = 8, .act = TRAIN_ACT_LEAKY_RELU, .alpha = 0.1, .weight = params, .bias = params + 100},
        {.kind = TRAIN_LAYER_DROPOUT, .in = 8, .out = 8},
        {.kind = TRAIN_LAYER_BATCHNORM, .in = 8, .out = 8, .bn_scale = params + 200, .bn_bias = params + 210,
         .bn_mean = params + 220, .bn_var = var, .bn_eps = 1e-5},
        {.kind = TRAIN_LAYER_DENSE, .in = 8, .out = 6, .act = TRAIN_ACT_TANH, .weight = params + 300, .bias = params + 400},
        {.kind = TRAIN_LAYER_DENSE, .in = 6, .out = 5, .act = TRAIN_ACT_SIGMOID, .weight = params + 500, .bias = params + 600},
        {.kind = TRAIN_LAYER_DENSE, .in = 5, .out = 4, .act = TRAIN_ACT_NONE, .weight = params + 700, .bias = params + 800},
    };
    onnx_write_spec spec = {.dense_input = "features", .dense_width = 5, .embeds = &em, .nembeds = 1,
                            .layers = layers, .nlayers = 6, .final = ONNX_WRITE_FINAL_SOFTMAX,
                            .output = "probabilities", .doc = "test"};
    uint8_t *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(onnx_write_bytes(&spec, &bytes, &len, err, sizeof err), PC_OK);
    model *m = NULL;
    pc_status s = model_load(bytes, len, "written.onnx", 4, &m, err, sizeof err);
    ck_assert_msg(s == PC_OK, "model_load: %s", err);
    ck_assert_int_eq(model_input_count(m), 2);
    int xi = model_input_index(m, "features"), ii = model_input_index(m, "items");
    ck_assert_int_ge(xi, 0);
    ck_assert_int_ge(ii, 0);
    ck_assert_int_eq(model_input_width(m, ii), 2);
    ck_assert_int_eq(model_output_width(m, 0), 4);
    float *x = model_input_buffer(m, xi);
    int64_t *ids = model_input_buffer(m, ii);
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 5; i++) x[r * 5 + i] = frand(&seed) * 3;
        ids[r * 2] = r;
        ids[r * 2 + 1] = (r * 5 + 1) % 6;
    }
    free(bytes);
    bytes = NULL;
    ck_assert_int_eq(model_forward(m, 4, err, sizeof err), PC_OK);
    const float *y = model_output(m, 0);
    double worst = 0;
    for (int r = 0; r < 4; r++) {
        double want[8];
        reference_forward(&spec, x + r * 5, ids + r * 2, want);
        for (int o = 0; o < 4; o++) worst = fmax(worst, fabs(want[o] - y[r * 4 + o]));
    }
    printf("onnx writer round trip: largest difference %.3g\n", worst);
    ck_assert_msg(worst < 1e-5, "largest difference %g", worst);
    model_close(m);
    /* a file on disk loads the same way; a layer that does not fit the one before is refused */
    char path[1024];
    snprintf(path, sizeof path, "%s/w.onnx", dir);
    ck_assert_int_eq(onnx_write_file(&spec, path, err, sizeof err), PC_OK);
    ck_assert_int_eq(model_load_file(path, 2, &m, err, sizeof err), PC_OK);
    model_close(m);
    layers[3].in = 7;
    ck_assert_int_eq(onnx_write_bytes(&spec, &bytes, &len, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_ptr_null(bytes);
    ck_assert_ptr_nonnull(strstr(err, "layer 3 takes 7 inputs but gets 8"));
}
END_TEST

/* ---- diagnostics --------------------------------------------------------------------------- */

#define STEPS 200
#define EPOCHS 10
#define LAYERS 3

typedef struct synth {
    double loss[STEPS], norm[STEPS * LAYERS], tl[EPOCHS], vl[EPOCHS], dead[EPOCHS * LAYERS];
    int64_t epoch[STEPS];
    diag_curves c;
} synth;

static const char *const NAMES[LAYERS] = {"dense0", "dense1", "head"};

/* A healthy run: loss decays from 2.3 to 0.1 with a little noise, validation follows, gradient
 * norms of the same order in every layer, a few dead units. */
static void healthy(synth *s)
{
    uint64_t seed = 3;
    for (int i = 0; i < STEPS; i++) {
        s->epoch[i] = i / (STEPS / EPOCHS);
        s->loss[i] = 0.1 + 2.2 * exp(-i / 30.0) * (1 + 0.05 * frand(&seed));
        for (int l = 0; l < LAYERS; l++) s->norm[i * LAYERS + l] = (0.5 + 0.2 * l) * (1 + 0.1 * frand(&seed));
    }
    for (int e = 0; e < EPOCHS; e++) {
        s->tl[e] = 0.1 + 2.2 * exp(-e * 20 / 30.0);
        s->vl[e] = 0.15 + 2.2 * exp(-e * 20 / 30.0);
        for (int l = 0; l < LAYERS; l++) s->dead[e * LAYERS + l] = l == LAYERS - 1 ? -1 : 0.05;
    }
    s->c = (diag_curves){STEPS, s->loss, s->epoch, LAYERS, NAMES, s->norm, EPOCHS, s->tl, s->vl, s->dead};
}

/* Runs the detectors; returns a bit mask of the kinds found. */
static unsigned kinds(const synth *s)
{
    diag_finding f[16];
    int n = diag_run(&s->c, f, 16);
    unsigned mask = 0;
    for (int i = 0; i < n && i < 16; i++) {
        mask |= 1u << f[i].kind;
        ck_assert(strlen(f[i].evidence) > 10);
    }
    return mask;
}

START_TEST(test_diag_healthy_is_quiet)
{
    synth s;
    healthy(&s);
    ck_assert_uint_eq(kinds(&s), 0);
    for (int k = 0; k < DIAG_KIND_COUNT; k++) {
        ck_assert(strlen(diag_name(k)) > 3);
        ck_assert(strlen(diag_explain(k)) > 20);
        ck_assert(strlen(diag_advice(k)) > 20);
    }
}
END_TEST

START_TEST(test_diag_each_failure)
{
    synth s;
    /* flat loss: not decreasing */
    healthy(&s);
    for (int i = 0; i < STEPS; i++) s.loss[i] = 2.3 + 0.001 * (i % 3);
    for (int e = 0; e < EPOCHS; e++) s.tl[e] = s.vl[e] = 2.3;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_NOT_DECREASING);
    /* NaN: diverging (and not "not decreasing") */
    healthy(&s);
    s.loss[150] = NAN;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_DIVERGING);
    /* growing loss: diverging */
    healthy(&s);
    for (int i = 0; i < STEPS; i++) s.loss[i] = 2.3 * exp(i / 60.0);
    ck_assert(kinds(&s) & (1u << DIAG_DIVERGING));
    /* a blow-up that settles at the starting loss (dead units, chance level): diverging */
    healthy(&s);
    s.loss[3] = 1e6;
    for (int i = 4; i < STEPS; i++) s.loss[i] = 2.3;
    ck_assert(kinds(&s) & (1u << DIAG_DIVERGING));
    /* a spike that training recovers from: jumping, not diverging */
    healthy(&s);
    s.loss[3] = 1e6;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_JUMPING);
    /* big swings around a slowly falling trend: jumping */
    healthy(&s);
    for (int i = 0; i < STEPS; i++) s.loss[i] = 1.5 - i / 400.0 + (i % 2 ? 0.8 : -0.8);
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_JUMPING);
    /* validation U-shape while training falls: overfitting */
    healthy(&s);
    for (int e = 0; e < EPOCHS; e++) s.vl[e] = 1.0 + 0.05 * (e - 3) * (e - 3);
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_OVERFITTING);
    /* ...but a small wobble is not */
    healthy(&s);
    for (int e = 5; e < EPOCHS; e++) s.vl[e] = s.vl[4] * 1.1;
    ck_assert_uint_eq(kinds(&s), 0);
    /* lowest layer's gradients 1e-6 of the top's: vanishing */
    healthy(&s);
    for (int i = 0; i < STEPS; i++) s.norm[i * LAYERS] = 1e-6;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_VANISHING);
    /* norms growing a thousandfold: exploding */
    healthy(&s);
    for (int i = 0; i < STEPS; i++) s.norm[i * LAYERS + 1] = 0.5 * exp(i / 25.0);
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_EXPLODING);
    /* an infinite norm: exploding */
    healthy(&s);
    s.norm[40 * LAYERS + 2] = INFINITY;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_EXPLODING);
    /* most units dead in the last epoch: dead_relu, naming the layer */
    healthy(&s);
    s.dead[(EPOCHS - 1) * LAYERS + 1] = 0.8;
    ck_assert_uint_eq(kinds(&s), 1u << DIAG_DEAD_RELU);
    diag_finding f[4];
    ck_assert_int_eq(diag_run(&s.c, f, 4), 1);
    ck_assert_int_eq(f[0].layer, 1);
    ck_assert_ptr_nonnull(strstr(f[0].evidence, "80 % of the units of dense1"));
    /* without a validation split nothing about overfitting is claimed */
    healthy(&s);
    for (int e = 0; e < EPOCHS; e++) s.vl[e] = 1.0 + 0.05 * (e - 3) * (e - 3);
    s.c.val_loss = NULL;
    ck_assert_uint_eq(kinds(&s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("trainer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_defaults_and_paths);
    tcase_add_test(tc, test_config_errors_name_file_and_line);
    tcase_add_test(tc, test_onnx_writer_round_trip);
    tcase_add_test(tc, test_diag_healthy_is_quiet);
    tcase_add_test(tc, test_diag_each_failure);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
