#include "trainer/train_config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/ini.h"

/* Every key a training job may hold; anything else is a typo and an error. Per-column keys
 * (embed.C, hash.C, vocab.C, bag.C) are checked separately. */
static const char *const KNOWN_KEYS[][2] = {
    {"data", "paths"},        {"data", "format"},        {"data", "id_column"},
    {"data", "label_column"}, {"data", "label_kind"},    {"data", "labels"},
    {"data", "features"},     {"data", "validation"},    {"data", "test"},
    {"data", "label_separator"}, {"data", "max_memory_mb"}, {"data", "one_based"},
    {"model", "layers"},      {"model", "head"},         {"model", "sampled"},
    {"model", "sampler"},     {"model", "init_bias"},
    {"train", "epochs"},      {"train", "batch_rows"},   {"train", "optimizer"},
    {"train", "learning_rate"}, {"train", "momentum"},   {"train", "beta1"},
    {"train", "beta2"},       {"train", "eps"},          {"train", "schedule"},
    {"train", "step_size"},   {"train", "gamma"},        {"train", "l2"},
    {"train", "clip_norm"},   {"train", "seed"},         {"train", "early_stopping"},
    {"train", "deterministic"}, {"train", "micro_rows"}, {"train", "lazy_sparse"},
    {"output", "model"},      {"output", "report"},      {"output", "curves"},
    {"output", "plot"},       {"output", "predictions"},
};

static const char *const COLUMN_KEYS[] = {"embed.", "hash.", "vocab.", "bag."};

const char *train_head_name(train_head h)
{
    static const char *const names[] = {"softmax", "sampled_softmax", "one_vs_all", "multilabel",
                                        "sigmoid", "regression"};
    return (unsigned)h < 6 ? names[h] : "?";
}

const char *train_label_kind_name(train_label_kind k)
{
    static const char *const names[] = {"class", "multilabel", "binary", "value"};
    return (unsigned)k < 4 ? names[k] : "?";
}

const char *train_activation_name(train_activation a)
{
    static const char *const names[] = {"none", "relu", "leaky_relu", "tanh", "sigmoid"};
    return (unsigned)a < 5 ? names[a] : "?";
}

const char *train_optimizer_name(train_optimizer o) { return o == TRAIN_OPT_SGD ? "sgd" : "adam"; }

const char *train_schedule_name(train_schedule s)
{
    return s == TRAIN_SCHED_STEP ? "step" : s == TRAIN_SCHED_COSINE ? "cosine" : "constant";
}

static pc_status check_known_keys(const ini *f, char *err, size_t errlen)
{
    for (int64_t i = 0; i < ini_count(f); i++) {
        const char *sec, *key, *val;
        int64_t line;
        ini_entry(f, i, &sec, &key, &val, &line);
        bool known = false;
        for (size_t k = 0; k < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0]; k++)
            known |= strcmp(KNOWN_KEYS[k][0], sec) == 0 && strcmp(KNOWN_KEYS[k][1], key) == 0;
        for (size_t k = 0; strcmp(sec, "model") == 0 && k < sizeof COLUMN_KEYS / sizeof COLUMN_KEYS[0]; k++)
            known |= strncmp(key, COLUMN_KEYS[k], strlen(COLUMN_KEYS[k])) == 0 && key[strlen(COLUMN_KEYS[k])] != '\0';
        if (!known) {
            if (line == 0)
                return pc_err(err, errlen, PC_ERR_CONFIG, "--set %s.%s: unknown key '%s' in section [%s]", sec,
                              key, key, sec);
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: unknown key '%s' in section [%s]", ini_path(f),
                          (long long)line, key, sec);
        }
    }
    return PC_OK;
}

static pc_status oom(char *err, size_t errlen) { return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); }

/* Parses one layer ("dense 128 relu", "dense 10", "dense 64 leaky_relu 0.2", "batchnorm",
 * "dropout 0.2"), with an optional repeat suffix "x20" as its last word. */
static pc_status parse_one_layer(char *text, const char *where_, train_layer *l, int64_t *repeat, char *err,
                                 size_t errlen)
{
    char *words[6];
    int nw = 0;
    char *save = NULL;
    for (char *w = strtok_r(text, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (nw == 6) return pc_err(err, errlen, PC_ERR_CONFIG, "%s: layer '%s ...': too many words", where_, words[0]);
        words[nw++] = w;
    }
    *repeat = 1;
    if (nw > 1 && words[nw - 1][0] == 'x' && words[nw - 1][1] >= '0' && words[nw - 1][1] <= '9') {
        char *end;
        long long r = strtoll(words[nw - 1] + 1, &end, 10);
        if (*end != '\0' || r < 1 || r > 1000)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: layer repeat '%s': expected x1..x1000", where_,
                          words[nw - 1]);
        *repeat = r;
        nw--;
    }
    memset(l, 0, sizeof *l);
    if (nw == 0) return pc_err(err, errlen, PC_ERR_CONFIG, "%s: empty layer in the layers list", where_);
    char *end;
    if (strcmp(words[0], "dense") == 0) {
        l->kind = TRAIN_LAYER_DENSE;
        long long u = nw > 1 ? strtoll(words[1], &end, 10) : 0;
        if (nw < 2 || *end != '\0' || u < 1 || u > (1 << 24))
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: 'dense' needs a unit count in 1..16777216 (dense 128 relu)",
                          where_);
        l->units = u;
        l->act = TRAIN_ACT_NONE;
        l->alpha = 0.01;
        if (nw > 2) {
            static const char *const acts[] = {"none", "relu", "leaky_relu", "tanh", "sigmoid"};
            int a = -1;
            for (int i = 0; i < 5; i++)
                if (strcmp(words[2], acts[i]) == 0) a = i;
            if (a < 0)
                return pc_err(err, errlen, PC_ERR_CONFIG,
                              "%s: unknown activation '%s': expected none | relu | leaky_relu | tanh | sigmoid", where_,
                              words[2]);
            l->act = (train_activation)a;
        }
        if (nw > 3) {
            double al = strtod(words[3], &end);
            if (l->act != TRAIN_ACT_LEAKY_RELU || *end != '\0' || !(al > 0 && al < 1))
                return pc_err(err, errlen, PC_ERR_CONFIG,
                              "%s: '%s' after %s: only leaky_relu takes a slope, in (0, 1)", where_, words[3], words[2]);
            l->alpha = al;
        }
        if (nw > 4) return pc_err(err, errlen, PC_ERR_CONFIG, "%s: unexpected '%s' in a dense layer", where_, words[4]);
    } else if (strcmp(words[0], "batchnorm") == 0) {
        l->kind = TRAIN_LAYER_BATCHNORM;
        if (nw > 1) return pc_err(err, errlen, PC_ERR_CONFIG, "%s: 'batchnorm' takes no argument", where_);
    } else if (strcmp(words[0], "dropout") == 0) {
        l->kind = TRAIN_LAYER_DROPOUT;
        double p = nw > 1 ? strtod(words[1], &end) : -1;
        if (nw != 2 || *end != '\0' || !(p >= 0 && p < 1))
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: 'dropout' needs a probability in [0, 1) (dropout 0.2)",
                          where_);
        l->p = p;
    } else {
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: unknown layer '%s': expected dense, batchnorm or dropout",
                      where_, words[0]);
    }
    return PC_OK;
}

pc_status train_layers_parse(const char *value, const char *where_, train_layer **out, int *n, char *err,
                             size_t errlen)
{
    *out = NULL;
    *n = 0;
    char **items;
    int64_t nitems;
    pc_status s = ini_split_list(value, ",", &items, &nitems, err, errlen);
    if (s != PC_OK) return s;
    int cap = 0;
    train_layer *layers = NULL;
    for (int64_t i = 0; s == PC_OK && i < nitems; i++) {
        train_layer l;
        int64_t repeat = 0;
        s = parse_one_layer(items[i], where_, &l, &repeat, err, errlen);
        for (int64_t r = 0; s == PC_OK && r < repeat; r++) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 8;
                train_layer *grown = realloc(layers, (size_t)cap * sizeof *layers);
                if (grown == NULL) {
                    s = oom(err, errlen);
                    break;
                }
                layers = grown;
            }
            layers[(*n)++] = l;
        }
    }
    ini_list_free(items, nitems);
    if (s == PC_OK && *n > 4096) s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: more than 4096 layers", where_);
    if (s != PC_OK) {
        free(layers);
        *n = 0;
        return s;
    }
    *out = layers;
    return PC_OK;
}

/* Finds or adds the embedding entry of column col. */
static train_embed *embed_for(train_config *c, const char *col)
{
    for (int i = 0; i < c->nembeds; i++)
        if (strcmp(c->embeds[i].column, col) == 0) return &c->embeds[i];
    train_embed *grown = realloc(c->embeds, (size_t)(c->nembeds + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    c->embeds = grown;
    train_embed *e = &c->embeds[c->nembeds];
    memset(e, 0, sizeof *e);
    if ((e->column = strdup(col)) == NULL) return NULL;
    c->nembeds++;
    return e;
}

/* [model] embed.C, hash.C, vocab.C, bag.C: every column named by hash/vocab/bag must also
 * have embed.C. */
static pc_status parse_embeds(const ini *f, train_config *c, char *err, size_t errlen)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < ini_count(f); i++) {
            const char *sec, *key, *val;
            int64_t line;
            ini_entry(f, i, &sec, &key, &val, &line);
            if (strcmp(sec, "model") != 0) continue;
            const char *dot = strchr(key, '.');
            if (dot == NULL) continue;
            size_t plen = (size_t)(dot - key) + 1;
            bool is_embed = strncmp(key, "embed.", plen) == 0 && plen == 6;
            if (pass == 0 && !is_embed) continue;
            if (pass == 1 && is_embed) continue;
            const char *col = dot + 1;
            char at[PATH_MAX + 32];
            ini_where(f, sec, key, at, sizeof at);
            int64_t lo = strncmp(key, "vocab.", 6) == 0 ? 2 : 1, hi = strncmp(key, "bag.", 4) == 0 ? 4096 : (int64_t)1 << 40;
            if (is_embed) hi = 65536;
            char *end;
            errno = 0;
            long long x = strtoll(val, &end, 10);
            if (errno || end == val || *end != '\0' || x < lo || x > hi)
                return pc_err(err, errlen, PC_ERR_CONFIG, "%s: model.%s = '%s': expected an integer in %lld..%lld", at,
                              key, val, (long long)lo, (long long)hi);
            train_embed *e = NULL;
            for (int k = 0; k < c->nembeds; k++)
                if (strcmp(c->embeds[k].column, col) == 0) e = &c->embeds[k];
            if (pass == 0) {
                if ((e = embed_for(c, col)) == NULL) return oom(err, errlen);
                e->dim = x;
                continue;
            }
            if (e == NULL)
                return pc_err(err, errlen, PC_ERR_CONFIG, "%s: model.%s: column '%s' has no embed.%s = DIM line", at, key,
                              col, col);
            if (key[0] == 'h') e->hash_buckets = x;
            else if (key[0] == 'v') e->vocab = x;
            else e->bag = x;
        }
    }
    for (int k = 0; k < c->nembeds; k++)
        if (c->embeds[k].hash_buckets > 0 && c->embeds[k].vocab > 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: column '%s' has both hash.%s and vocab.%s (hashed ids are < hash buckets)",
                          ini_path(f), c->embeds[k].column, c->embeds[k].column, c->embeds[k].column);
    return PC_OK;
}

/* "model.onnx" -> "model" + suffix (the model's path without .onnx). */
static char *beside_model(const char *model, const char *suffix)
{
    size_t n = strlen(model);
    if (n > 5 && strcmp(model + n - 5, ".onnx") == 0) n -= 5;
    char *out = malloc(n + strlen(suffix) + 1);
    if (out == NULL) return NULL;
    memcpy(out, model, n);
    strcpy(out + n, suffix);
    return out;
}

/* The folder of path plus "/" name. */
static char *in_folder_of(const char *path, const char *name) { return ini_resolve_path(path, name); }

/* A path key resolved against the job file, or dflt (owned, may be NULL) when absent. */
static pc_status path_key(const ini *f, const train_config *c, const char *sec, const char *key, char *dflt,
                          char **out, char *err, size_t errlen)
{
    const char *v = ini_get(f, sec, key, NULL);
    if (v == NULL) {
        *out = dflt;
        return PC_OK;
    }
    free(dflt);
    if (*v == '\0') {
        *out = strdup("");
        return *out ? PC_OK : oom(err, errlen);
    }
    *out = ini_resolve_path(c->job_file, v);
    return *out ? PC_OK : oom(err, errlen);
}

static pc_status parse_globs(const ini *f, train_config *c, const char *key, char ***out, int *n, char *err,
                             size_t errlen)
{
    const char *v = ini_get(f, "data", key, NULL);
    *out = NULL;
    *n = 0;
    if (v == NULL) return PC_OK;
    char **items;
    int64_t nitems;
    pc_status s = ini_split_list(v, ", \t", &items, &nitems, err, errlen);
    if (s != PC_OK) return s;
    for (int64_t i = 0; i < nitems; i++) {
        char *r = ini_resolve_path(c->job_file, items[i]);
        if (r == NULL) {
            ini_list_free(items, nitems);
            return oom(err, errlen);
        }
        free(items[i]);
        items[i] = r;
    }
    *out = items;
    *n = (int)nitems;
    return PC_OK;
}

static pc_status parse_data(const ini *f, train_config *c, char *err, size_t errlen)
{
    char at[PATH_MAX + 32];
    pc_status s = parse_globs(f, c, "paths", &c->paths, &c->npaths, err, errlen);
    if (s != PC_OK) return s;
    if (c->npaths == 0)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: missing required key 'paths' in section [data]", ini_path(f));
    if ((s = parse_globs(f, c, "test", &c->test_paths, &c->ntest_paths, err, errlen)) != PC_OK) return s;
    int choice;
    static const char *const formats[] = {"csv", "libsvm"};
    if ((s = ini_get_choice(f, "data", "format", formats, 2, 0, &choice, err, errlen)) != PC_OK) return s;
    c->format = (train_format)choice;
    static const char *const kinds[] = {"class", "multilabel", "binary", "value"};
    if ((s = ini_get_choice(f, "data", "label_kind", kinds, 4, 0, &choice, err, errlen)) != PC_OK) return s;
    c->label_kind = (train_label_kind)choice;
    const char *v = ini_get(f, "data", "id_column", NULL);
    if (v != NULL && *v && (c->id_column = strdup(v)) == NULL) return oom(err, errlen);
    v = ini_get(f, "data", "label_column", NULL);
    if (c->format == TRAIN_FORMAT_CSV) {
        if (v == NULL || *v == '\0')
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: missing required key 'label_column' in section [data]",
                          ini_path(f));
        if ((s = ini_split_list(v, ",", &c->label_columns, &c->nlabel_columns, err, errlen)) != PC_OK) return s;
        if (c->nlabel_columns > 1 && c->label_kind != TRAIN_LABEL_VALUE)
            return pc_err(err, errlen, PC_ERR_CONFIG,
                          "%s: data.label_column lists %lld columns: only label_kind = value takes several",
                          ini_where(f, "data", "label_column", at, sizeof at), (long long)c->nlabel_columns);
    } else if (v != NULL) {
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "%s: data.label_column: a LIBSVM row's label is its first field (no columns)",
                      ini_where(f, "data", "label_column", at, sizeof at));
    }
    v = ini_get(f, "data", "features", NULL);
    if (v != NULL && c->format == TRAIN_FORMAT_LIBSVM) {
        if ((s = ini_get_int(f, "data", "features", 0, 1, (int64_t)1 << 31, &c->libsvm_width, err, errlen)) != PC_OK)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: data.features = '%s': for LIBSVM, the feature count (1..2^31)",
                          ini_where(f, "data", "features", at, sizeof at), v);
    } else if (v != NULL) {
        if ((s = ini_split_list(v, ",", &c->features, &c->nfeatures, err, errlen)) != PC_OK) return s;
    }
    if ((s = ini_get_bool(f, "data", "one_based", true, &c->one_based, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "data", "validation", 0.2, 0, 1, true, &c->validation, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "data", "max_memory_mb", 2048, 1, (int64_t)1 << 30, &c->max_memory_mb, err, errlen)) != PC_OK)
        return s;
    v = ini_get(f, "data", "label_separator", NULL);
    c->label_separator = '|';
    if (v != NULL) {
        if (strlen(v) != 1 || v[0] == ',' || v[0] == '"')
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: data.label_separator = '%s': expected one character, not ',' or '\"'",
                          ini_where(f, "data", "label_separator", at, sizeof at), v);
        c->label_separator = v[0];
    }
    return PC_OK;
}

static pc_status parse_model(const ini *f, train_config *c, char *err, size_t errlen)
{
    char at[PATH_MAX + 32];
    const char *v = ini_get(f, "model", "layers", NULL);
    pc_status s;
    if (v != NULL && *v) {
        ini_where(f, "model", "layers", at, sizeof at);
        if ((s = train_layers_parse(v, at, &c->layers, &c->nlayers, err, errlen)) != PC_OK) return s;
    }
    if ((s = parse_embeds(f, c, err, errlen)) != PC_OK) return s;
    int choice;
    static const char *const heads[] = {"softmax", "sampled_softmax", "one_vs_all", "multilabel", "sigmoid", "regression"};
    int dflt = c->label_kind == TRAIN_LABEL_MULTILABEL ? TRAIN_HEAD_MULTILABEL
             : c->label_kind == TRAIN_LABEL_BINARY     ? TRAIN_HEAD_SIGMOID
             : c->label_kind == TRAIN_LABEL_VALUE      ? TRAIN_HEAD_REGRESSION
                                                       : TRAIN_HEAD_SOFTMAX;
    if ((s = ini_get_choice(f, "model", "head", heads, 6, dflt, &choice, err, errlen)) != PC_OK) return s;
    c->head = (train_head)choice;
    /* Which heads can learn which labels. */
    bool fits = (c->label_kind == TRAIN_LABEL_CLASS && (c->head == TRAIN_HEAD_SOFTMAX || c->head == TRAIN_HEAD_SAMPLED_SOFTMAX ||
                                                         c->head == TRAIN_HEAD_ONE_VS_ALL)) ||
                (c->label_kind == TRAIN_LABEL_MULTILABEL && c->head == TRAIN_HEAD_MULTILABEL) ||
                (c->label_kind == TRAIN_LABEL_BINARY && c->head == TRAIN_HEAD_SIGMOID) ||
                (c->label_kind == TRAIN_LABEL_VALUE && c->head == TRAIN_HEAD_REGRESSION);
    if (!fits)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: model.head = %s cannot learn data.label_kind = %s (class: softmax, "
                      "sampled_softmax or one_vs_all; multilabel: multilabel; binary: sigmoid; value: regression)",
                      ini_where(f, "model", "head", at, sizeof at), train_head_name(c->head),
                      train_label_kind_name(c->label_kind));
    if ((s = ini_get_int(f, "model", "sampled", 64, 1, 1 << 20, &c->sampled, err, errlen)) != PC_OK) return s;
    static const char *const samplers[] = {"uniform", "log_uniform"};
    if ((s = ini_get_choice(f, "model", "sampler", samplers, 2, 1, &choice, err, errlen)) != PC_OK) return s;
    c->sampler = (train_sampler)choice;
    c->has_init_bias = ini_get(f, "model", "init_bias", NULL) != NULL;
    if ((s = ini_get_real(f, "model", "init_bias", 0, -1e6, 1e6, false, &c->init_bias, err, errlen)) != PC_OK) return s;
    return PC_OK;
}

static pc_status parse_train(const ini *f, train_config *c, char *err, size_t errlen)
{
    pc_status s;
    int choice;
    if ((s = ini_get_int(f, "train", "epochs", 10, 1, 1000000, &c->epochs, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "train", "batch_rows", 128, 1, 1 << 20, &c->batch_rows, err, errlen)) != PC_OK) return s;
    static const char *const opts[] = {"adam", "sgd"};
    if ((s = ini_get_choice(f, "train", "optimizer", opts, 2, 0, &choice, err, errlen)) != PC_OK) return s;
    c->optimizer = (train_optimizer)choice;
    double lr_default = c->optimizer == TRAIN_OPT_ADAM ? 0.001 : 0.01;
    if ((s = ini_get_real(f, "train", "learning_rate", lr_default, 0, 1e6, false, &c->learning_rate, err, errlen)) != PC_OK)
        return s;
    if (c->learning_rate <= 0) {
        char at[PATH_MAX + 32];
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: train.learning_rate must be above 0",
                      ini_where(f, "train", "learning_rate", at, sizeof at));
    }
    if ((s = ini_get_real(f, "train", "momentum", 0.9, 0, 1, true, &c->momentum, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "beta1", 0.9, 0, 1, true, &c->beta1, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "beta2", 0.999, 0, 1, true, &c->beta2, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "eps", 1e-8, 1e-30, 1, false, &c->eps, err, errlen)) != PC_OK) return s;
    static const char *const scheds[] = {"constant", "step", "cosine"};
    if ((s = ini_get_choice(f, "train", "schedule", scheds, 3, 0, &choice, err, errlen)) != PC_OK) return s;
    c->schedule = (train_schedule)choice;
    if ((s = ini_get_int(f, "train", "step_size", 10, 1, 1000000, &c->step_size, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "gamma", 0.1, 0, 1, false, &c->gamma, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "l2", 0, 0, 1e3, false, &c->l2, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_real(f, "train", "clip_norm", 0, 0, 1e12, false, &c->clip_norm, err, errlen)) != PC_OK) return s;
    int64_t seed;
    if ((s = ini_get_int(f, "train", "seed", 1, 0, INT64_MAX, &seed, err, errlen)) != PC_OK) return s;
    c->seed = (uint64_t)seed;
    if ((s = ini_get_int(f, "train", "early_stopping", 0, 0, 1000000, &c->early_stopping, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_bool(f, "train", "deterministic", false, &c->deterministic, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "train", "micro_rows", 32, 1, 1 << 20, &c->micro_rows, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_bool(f, "train", "lazy_sparse", false, &c->lazy_sparse, err, errlen)) != PC_OK) return s;
    if (c->early_stopping > 0 && c->validation <= 0) {
        char at[PATH_MAX + 32];
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: train.early_stopping needs a validation split (data.validation > 0)",
                      ini_where(f, "train", "early_stopping", at, sizeof at));
    }
    return PC_OK;
}

static pc_status parse_output(const ini *f, train_config *c, char *err, size_t errlen)
{
    const char *v = ini_get(f, "output", "model", NULL);
    if (v == NULL || *v == '\0')
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: missing required key 'model' in section [output]", ini_path(f));
    if ((c->model_path = ini_resolve_path(c->job_file, v)) == NULL) return oom(err, errlen);
    pc_status s;
    if ((s = path_key(f, c, "output", "report", beside_model(c->model_path, ".report.json"), &c->report_path, err,
                      errlen)) != PC_OK)
        return s;
    if ((s = path_key(f, c, "output", "curves", beside_model(c->model_path, ".curves.csv"), &c->curves_path, err,
                      errlen)) != PC_OK)
        return s;
    if ((s = path_key(f, c, "output", "plot", in_folder_of(c->model_path, "loss.png"), &c->plot_path, err, errlen)) !=
        PC_OK)
        return s;
    if ((s = path_key(f, c, "output", "predictions", NULL, &c->predictions_path, err, errlen)) != PC_OK) return s;
    const char *lv = ini_get(f, "data", "labels", NULL);
    if (lv != NULL && *lv) c->labels_path = ini_resolve_path(c->job_file, lv);
    else c->labels_path = beside_model(c->model_path, ".labels");
    c->stats_path = beside_model(c->model_path, ".stats.json");
    if (c->report_path == NULL || c->curves_path == NULL || c->plot_path == NULL || c->labels_path == NULL ||
        c->stats_path == NULL)
        return oom(err, errlen);
    return PC_OK;
}

/* The job's name: the file's base name without ".ini". */
static char *job_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".ini") == 0) n -= 4;
    return strndup(base, n);
}

pc_status train_config_load(const char *path, char *const *overrides, int noverrides, train_config **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    ini *f = NULL;
    pc_status s = ini_load(path, &f, err, errlen);
    if (s != PC_OK) return s;
    for (int i = 0; s == PC_OK && i < noverrides; i++) s = ini_set(f, overrides[i], err, errlen);
    train_config *c = calloc(1, sizeof *c);
    if (s == PC_OK && c == NULL) s = oom(err, errlen);
    if (s == PC_OK && ((c->job_file = strdup(path)) == NULL || (c->name = job_name(path)) == NULL)) s = oom(err, errlen);
    if (s == PC_OK) s = check_known_keys(f, err, errlen);
    if (s == PC_OK) s = parse_data(f, c, err, errlen);
    if (s == PC_OK) s = parse_model(f, c, err, errlen);
    if (s == PC_OK) s = parse_train(f, c, err, errlen);
    if (s == PC_OK) s = parse_output(f, c, err, errlen);
    ini_free(f);
    if (s != PC_OK) {
        train_config_free(c);
        return s;
    }
    *out = c;
    return PC_OK;
}

void train_config_free(train_config *c)
{
    if (c == NULL) return;
    free(c->job_file);
    free(c->name);
    ini_list_free(c->paths, c->npaths);
    ini_list_free(c->test_paths, c->ntest_paths);
    free(c->id_column);
    ini_list_free(c->label_columns, c->nlabel_columns);
    free(c->labels_path);
    ini_list_free(c->features, c->nfeatures);
    free(c->layers);
    for (int i = 0; i < c->nembeds; i++) free(c->embeds[i].column);
    free(c->embeds);
    free(c->model_path);
    free(c->report_path);
    free(c->curves_path);
    free(c->plot_path);
    free(c->predictions_path);
    free(c->stats_path);
    free(c);
}
