#include "trainer/train_report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapper/head.h"

extern char **environ;

static pc_status oom(char *err, size_t errlen) { return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); }

pc_status train_curves_init(train_curves *c, int nlayers, const char *const *names, const bool *relu, char *err,
                            size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->nlayers = nlayers;
    c->layer_names = calloc((size_t)nlayers + 1, sizeof(char *));
    c->layer_relu = calloc((size_t)nlayers + 1, sizeof(bool));
    if (!c->layer_names || !c->layer_relu) return oom(err, errlen);
    for (int i = 0; i < nlayers; i++) {
        if ((c->layer_names[i] = strdup(names[i])) == NULL) return oom(err, errlen);
        c->layer_relu[i] = relu[i];
    }
    return PC_OK;
}

static bool grow_d(double **p, int64_t cap)
{
    double *g = realloc(*p, (size_t)cap * sizeof **p);
    if (g == NULL) return false;
    *p = g;
    return true;
}

pc_status train_curves_add_step(train_curves *c, int64_t epoch, double loss, double lr, double grad_norm,
                                const double *layer_norms, char *err, size_t errlen)
{
    if (c->nsteps == c->step_cap) {
        int64_t cap = c->step_cap ? 2 * c->step_cap : 1024;
        int64_t *ep = realloc(c->epoch, (size_t)cap * sizeof *ep);
        if (ep == NULL) return oom(err, errlen);
        c->epoch = ep;
        if (!grow_d(&c->loss, cap) || !grow_d(&c->lr, cap) || !grow_d(&c->grad_norm, cap) ||
            !grow_d(&c->layer_norm, cap * (c->nlayers ? c->nlayers : 1)))
            return oom(err, errlen);
        c->step_cap = cap;
    }
    int64_t i = c->nsteps++;
    c->epoch[i] = epoch;
    c->loss[i] = loss;
    c->lr[i] = lr;
    c->grad_norm[i] = grad_norm;
    for (int l = 0; l < c->nlayers; l++) c->layer_norm[i * c->nlayers + l] = layer_norms[l];
    return PC_OK;
}

pc_status train_curves_add_epoch(train_curves *c, double train_loss, double val_loss, double val_metric,
                                 double rows_per_s, double seconds, const double *dead, char *err, size_t errlen)
{
    if (c->nepochs == c->epoch_cap) {
        int64_t cap = c->epoch_cap ? 2 * c->epoch_cap : 64;
        if (!grow_d(&c->train_loss, cap) || !grow_d(&c->val_loss, cap) || !grow_d(&c->val_metric, cap) ||
            !grow_d(&c->rows_per_s, cap) || !grow_d(&c->seconds, cap) ||
            !grow_d(&c->dead, cap * (c->nlayers ? c->nlayers : 1)))
            return oom(err, errlen);
        c->epoch_cap = cap;
    }
    int64_t e = c->nepochs++;
    c->train_loss[e] = train_loss;
    c->val_loss[e] = val_loss;
    c->val_metric[e] = val_metric;
    c->rows_per_s[e] = rows_per_s;
    c->seconds[e] = seconds;
    for (int l = 0; l < c->nlayers; l++) c->dead[e * c->nlayers + l] = dead[l];
    return PC_OK;
}

void train_curves_free(train_curves *c)
{
    for (int i = 0; c->layer_names && i < c->nlayers; i++) free(c->layer_names[i]);
    free(c->layer_names);
    free(c->layer_relu);
    free(c->loss);
    free(c->lr);
    free(c->grad_norm);
    free(c->layer_norm);
    free(c->epoch);
    free(c->train_loss);
    free(c->val_loss);
    free(c->val_metric);
    free(c->rows_per_s);
    free(c->seconds);
    free(c->dead);
    memset(c, 0, sizeof *c);
}

void train_curves_diag(const train_curves *c, bool have_val, diag_curves *d)
{
    memset(d, 0, sizeof *d);
    d->nsteps = c->nsteps;
    d->step_loss = c->loss;
    d->step_epoch = c->epoch;
    d->nlayers = c->nlayers;
    d->layer_names = (const char *const *)c->layer_names;
    d->grad_norm = c->layer_norm;
    d->nepochs = c->nepochs;
    d->train_loss = c->train_loss;
    d->val_loss = have_val ? c->val_loss : NULL;
    d->dead_share = c->dead;
}

/* Opens path.tmp for writing; train_file_close renames it into place. */
static FILE *open_tmp(const char *path, char *tmp, size_t cap, char *err, size_t errlen, pc_status *s)
{
    snprintf(tmp, cap, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) *s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    return f;
}

static pc_status close_tmp(FILE *f, const char *tmp, const char *path, char *err, size_t errlen)
{
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    return PC_OK;
}

/* A number for CSV/JSON: finite as %.6g, else empty (CSV) or null (JSON). */
static void num(FILE *f, double v, bool json)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else if (json) fputs("null", f);
    else if (isnan(v)) fputs("nan", f);
    else fputs(v > 0 ? "inf" : "-inf", f);
}

pc_status train_curves_write_csv(const train_curves *c, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    pc_status s = PC_OK;
    FILE *f = open_tmp(path, tmp, sizeof tmp, err, errlen, &s);
    if (f == NULL) return s;
    fputs("step,epoch,loss,lr,grad_norm", f);
    for (int l = 0; l < c->nlayers; l++) fprintf(f, ",grad_norm.%s", c->layer_names[l]);
    for (int l = 0; l < c->nlayers; l++)
        if (c->layer_relu[l]) fprintf(f, ",dead.%s", c->layer_names[l]);
    fputs(",val_loss,val_metric\n", f);
    for (int64_t i = 0; i < c->nsteps; i++) {
        int64_t e = c->epoch[i];
        bool last = i + 1 == c->nsteps || c->epoch[i + 1] != e;
        fprintf(f, "%lld,%lld,", (long long)i, (long long)e + 1);
        num(f, c->loss[i], false);
        fprintf(f, ",%.6g,", c->lr[i]);
        num(f, c->grad_norm[i], false);
        for (int l = 0; l < c->nlayers; l++) {
            fputc(',', f);
            num(f, c->layer_norm[i * c->nlayers + l], false);
        }
        for (int l = 0; l < c->nlayers; l++) {
            if (!c->layer_relu[l]) continue;
            fputc(',', f);
            if (last && e < c->nepochs && c->dead[e * c->nlayers + l] >= 0) fprintf(f, "%.4f", c->dead[e * c->nlayers + l]);
        }
        fputc(',', f);
        if (last && e < c->nepochs && isfinite(c->val_loss[e])) num(f, c->val_loss[e], false);
        fputc(',', f);
        if (last && e < c->nepochs && isfinite(c->val_metric[e])) num(f, c->val_metric[e], false);
        fputc('\n', f);
    }
    return close_tmp(f, tmp, path, err, errlen);
}

static void jstr(FILE *f, const char *s)
{
    size_t need = json_quote(NULL, 0, s, strlen(s));
    char *buf = malloc(need + 1);
    if (buf == NULL) {
        fputs("\"\"", f);
        return;
    }
    json_quote(buf, need + 1, s, strlen(s));
    fputs(buf, f);
    free(buf);
}

static void layers_text(const train_config *cfg, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < cfg->nlayers; i++) {
        const train_layer *l = &cfg->layers[i];
        size_t at = strlen(out);
        if (l->kind == TRAIN_LAYER_DENSE)
            snprintf(out + at, cap - at, "%sdense %lld %s", i ? ", " : "", (long long)l->units,
                     train_activation_name(l->act));
        else if (l->kind == TRAIN_LAYER_BATCHNORM)
            snprintf(out + at, cap - at, "%sbatchnorm", i ? ", " : "");
        else
            snprintf(out + at, cap - at, "%sdropout %g", i ? ", " : "", l->p);
    }
}

/* report.json -> report.txt */
static void text_path(const char *json, char *out, size_t cap)
{
    size_t n = strlen(json);
    if (n > 5 && strcmp(json + n - 5, ".json") == 0) snprintf(out, cap, "%.*s.txt", (int)(n - 5), json);
    else snprintf(out, cap, "%s.txt", json);
}

static pc_status write_json(const train_summary *s, const train_curves *c, const diag_finding *f, int nfound,
                            char *err, size_t errlen)
{
    const train_config *cfg = s->cfg;
    char tmp[4096];
    pc_status st = PC_OK;
    FILE *o = open_tmp(cfg->report_path, tmp, sizeof tmp, err, errlen, &st);
    if (o == NULL) return st;
    char layers[8192];
    layers_text(cfg, layers, sizeof layers);
    fputs("{\n  \"job\": ", o);
    jstr(o, cfg->job_file);
    fprintf(o, ",\n  \"ranks\": %d,\n  \"deterministic\": %s,\n", s->ranks, cfg->deterministic ? "true" : "false");
    fprintf(o, "  \"data\": {\"train_rows\": %lld, \"validation_rows\": %lld, \"test_rows\": %lld, "
               "\"dense_features\": %lld, \"classes\": %lld, \"label_kind\": \"%s\"},\n",
            (long long)s->train_rows, (long long)s->val_rows, (long long)s->test_rows, (long long)s->dense_width,
            (long long)s->classes, train_label_kind_name(cfg->label_kind));
    fputs("  \"model\": {\"path\": ", o);
    jstr(o, cfg->model_path);
    fputs(", \"layers\": ", o);
    jstr(o, layers);
    fprintf(o, ", \"head\": \"%s\", \"outputs\": %lld, \"parameters\": %lld},\n", train_head_name(cfg->head),
            (long long)s->outputs, (long long)s->params);
    fprintf(o, "  \"train\": {\"optimizer\": \"%s\", \"learning_rate\": %g, \"schedule\": \"%s\", \"batch_rows\": %lld, "
               "\"epochs\": %lld, \"epochs_run\": %lld, \"best_epoch\": %lld, \"stopped_early\": %s, "
               "\"stopped_nan\": %s, \"seed\": %llu, \"seconds\": %.3f, \"rows_per_second\": %.1f, "
               "\"weights_resynced\": %s},\n",
            train_optimizer_name(cfg->optimizer), cfg->learning_rate, train_schedule_name(cfg->schedule),
            (long long)cfg->batch_rows, (long long)cfg->epochs, (long long)c->nepochs, (long long)s->best_epoch,
            s->stopped_early ? "true" : "false", s->stopped_nan ? "true" : "false", (unsigned long long)cfg->seed,
            s->seconds, s->rows_per_s, s->weights_resynced ? "true" : "false");
    fprintf(o, "  \"metric\": \"%s\",\n  \"epochs\": [", s->metric_name);
    for (int64_t e = 0; e < c->nepochs; e++) {
        fprintf(o, "%s\n    {\"epoch\": %lld, \"train_loss\": ", e ? "," : "", (long long)e + 1);
        num(o, c->train_loss[e], true);
        fputs(", \"val_loss\": ", o);
        num(o, c->val_loss[e], true);
        fputs(", \"val_metric\": ", o);
        num(o, c->val_metric[e], true);
        fprintf(o, ", \"rows_per_second\": %.1f, \"dead\": {", c->rows_per_s[e]);
        bool first = true;
        for (int l = 0; l < c->nlayers; l++) {
            if (!c->layer_relu[l]) continue;
            fprintf(o, "%s\"%s\": ", first ? "" : ", ", c->layer_names[l]);
            num(o, c->dead[e * c->nlayers + l], true);
            first = false;
        }
        fputs("}}", o);
    }
    fputs("\n  ],\n  \"final\": {\"val_loss\": ", o);
    int64_t b = s->best_epoch - 1;
    num(o, b >= 0 && b < c->nepochs ? c->val_loss[b] : NAN, true);
    fputs(", \"val_metric\": ", o);
    num(o, b >= 0 && b < c->nepochs ? c->val_metric[b] : NAN, true);
    fputs(", \"test_loss\": ", o);
    num(o, s->test_loss, true);
    fputs(", \"test_metric\": ", o);
    num(o, s->test_metric, true);
    fputs(", \"test_accuracy\": ", o);
    num(o, s->test_accuracy, true);
    fputs(", \"test_top10_recall\": ", o);
    num(o, s->test_top10, true);
    fputs("},\n  \"diagnostics\": [", o);
    for (int i = 0; i < nfound; i++) {
        fprintf(o, "%s\n    {\"name\": \"%s\", \"title\": ", i ? "," : "", diag_name(f[i].kind));
        jstr(o, diag_title(f[i].kind));
        fputs(", \"evidence\": ", o);
        jstr(o, f[i].evidence);
        fputs(", \"explanation\": ", o);
        jstr(o, diag_explain(f[i].kind));
        fputs(", \"advice\": ", o);
        jstr(o, diag_advice(f[i].kind));
        fputc('}', o);
    }
    fputs(nfound ? "\n  ],\n" : "],\n", o);
    fputs("  \"outputs\": {\"model\": ", o);
    jstr(o, cfg->model_path);
    fputs(", \"labels\": ", o);
    jstr(o, cfg->labels_path);
    fputs(", \"curves\": ", o);
    jstr(o, cfg->curves_path);
    fputs(", \"plot\": ", o);
    jstr(o, cfg->plot_path);
    fputs(", \"stats\": ", o);
    if (s->stats_note) fputs("null", o);
    else jstr(o, cfg->stats_path);
    if (s->stats_note) {
        fputs(", \"stats_note\": ", o);
        jstr(o, s->stats_note);
    }
    fputs("}\n}\n", o);
    return close_tmp(o, tmp, cfg->report_path, err, errlen);
}

static pc_status write_text(const train_summary *s, const train_curves *c, const diag_finding *f, int nfound,
                            char *err, size_t errlen)
{
    const train_config *cfg = s->cfg;
    char path[4096], tmp[4200];
    text_path(cfg->report_path, path, sizeof path);
    pc_status st = PC_OK;
    FILE *o = open_tmp(path, tmp, sizeof tmp, err, errlen, &st);
    if (o == NULL) return st;
    char layers[8192];
    layers_text(cfg, layers, sizeof layers);
    fprintf(o, "precast train %s (%d rank%s%s)\n\n", cfg->job_file, s->ranks, s->ranks == 1 ? "" : "s",
            cfg->deterministic ? ", deterministic" : "");
    fprintf(o, "data     %lld training rows, %lld validation rows, %lld test rows; %lld dense features, %lld classes\n",
            (long long)s->train_rows, (long long)s->val_rows, (long long)s->test_rows, (long long)s->dense_width,
            (long long)s->classes);
    fprintf(o, "model    %s -> %s head, %lld outputs, %lld parameters\n", layers[0] ? layers : "(no hidden layer)",
            train_head_name(cfg->head), (long long)s->outputs, (long long)s->params);
    fprintf(o, "train    %s lr %g (%s), batch %lld rows, %lld of %lld epochs in %.2f s (%.0f rows/s)%s%s\n\n",
            train_optimizer_name(cfg->optimizer), cfg->learning_rate, train_schedule_name(cfg->schedule),
            (long long)cfg->batch_rows, (long long)c->nepochs, (long long)cfg->epochs, s->seconds, s->rows_per_s,
            s->stopped_early ? ", stopped early" : "", s->stopped_nan ? ", stopped: the loss is not a number" : "");
    fprintf(o, "epoch  train_loss  val_loss    val_%-12s rows/s\n", s->metric_name);
    for (int64_t e = 0; e < c->nepochs; e++)
        fprintf(o, "%5lld  %-10.5g  %-10.5g  %-16.5g %.0f%s\n", (long long)e + 1, c->train_loss[e], c->val_loss[e],
                c->val_metric[e], c->rows_per_s[e], e + 1 == s->best_epoch ? "   <- exported" : "");
    if (isfinite(s->test_metric))
        fprintf(o, "\ntest     loss %.5g, %s %.5g\n", s->test_loss, s->metric_name, s->test_metric);
    fprintf(o, "\ndiagnostics: %s\n", nfound ? "" : "none (the curves look healthy)");
    for (int i = 0; i < nfound; i++)
        fprintf(o, "\n* %s [%s]\n  seen:   %s\n  means:  %s\n  advice: %s\n", diag_title(f[i].kind),
                diag_name(f[i].kind), f[i].evidence, diag_explain(f[i].kind), diag_advice(f[i].kind));
    fprintf(o, "\noutputs: %s, %s, %s, %s%s%s\n", cfg->model_path, cfg->labels_path, cfg->curves_path,
            cfg->plot_path, s->stats_note ? "" : ", ", s->stats_note ? "" : cfg->stats_path);
    if (s->stats_note) fprintf(o, "feature statistics: %s\n", s->stats_note);
    return close_tmp(o, tmp, path, err, errlen);
}

pc_status train_report_write(const train_summary *s, const train_curves *c, const diag_finding *f, int nfound,
                             char *err, size_t errlen)
{
    pc_status st = write_json(s, c, f, nfound, err, errlen);
    if (st == PC_OK) st = write_text(s, c, f, nfound, err, errlen);
    return st;
}

/* True if an executable called name is on PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL) return false;
    char dir[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, path, name);
        if (access(dir, X_OK) == 0) return true;
        path += n;
        if (*path == ':') path++;
    }
    return false;
}

/* Writes s into a gnuplot string literal (single quotes doubled). */
static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

bool train_plot(const train_curves *c, const char *csv_path, const char *png_path, char *why, size_t whylen)
{
    if (!on_path("gnuplot")) {
        snprintf(why, whylen, "gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox)");
        return false;
    }
    bool positive = true;
    for (int64_t i = 0; i < c->nsteps; i++)
        if (isfinite(c->loss[i]) && c->loss[i] <= 0) positive = false;
    char script[4200];
    snprintf(script, sizeof script, "%s.gp", png_path);
    FILE *f = fopen(script, "w");
    if (f == NULL) {
        snprintf(why, whylen, "%s: %s", script, strerror(errno));
        return false;
    }
    /* the curves CSV: column 3 is the step loss; the last column the validation metric, the
     * one before it the validation loss */
    int val_col = 5 + c->nlayers + 1;
    for (int l = 0; l < c->nlayers; l++) val_col += c->layer_relu[l];
    fputs("set terminal pngcairo size 960,540 noenhanced\nset output ", f);
    gp_str(f, png_path);
    fputs("\nset datafile separator ','\nset datafile columnheaders\nset key top right\nset grid\nset xlabel 'step'\nset ylabel 'loss'\n", f);
    if (positive) fputs("set logscale y\n", f);
    fputs("set title 'precast train: training loss per step, validation loss per epoch'\nplot ", f);
    gp_str(f, csv_path);
    fprintf(f, " using 1:3 with lines lc rgb '#4477aa' title 'train loss (step)', ");
    gp_str(f, csv_path);
    fprintf(f, " using 1:(column(%d) > 0 ? column(%d) : NaN) with linespoints pt 7 lc rgb '#cc3311' "
               "title 'validation loss (epoch)'\n", val_col, val_col);
    fclose(f);
    pid_t pid;
    char *argv[] = {"gnuplot", script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    bool ok = rc == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    unlink(script);
    if (!ok) snprintf(why, whylen, "gnuplot failed to draw %s", png_path);
    return ok;
}
