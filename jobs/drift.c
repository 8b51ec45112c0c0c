#include "jobs/drift.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/csv.h"

/* ---- columns ---- */

/* Appends a copy of name to a growing list. */
static bool push_name(char ***list, int64_t *n, const char *name)
{
    char **p = realloc(*list, (size_t)(*n + 1) * sizeof *p);
    if (p == NULL) return false;
    *list = p;
    if ((p[*n] = strdup(name)) == NULL) return false;
    (*n)++;
    return true;
}

static const map_binding *binding_of(const job_config *cfg, const char *input)
{
    for (int k = 0; k < cfg->map.nbindings; k++)
        if (strcmp(cfg->map.bindings[k].input, input) == 0) return &cfg->map.bindings[k];
    return NULL;
}

/* The single float input's columns without bindings: input.features, or the header of the
 * first file but the id column. */
static pc_status default_features(const job_config *cfg, const char *first_csv, drift_columns *c, char *err,
                                  size_t errlen)
{
    if (cfg->features != NULL) {
        for (int64_t j = 0; j < cfg->nfeatures; j++)
            if (!push_name(&c->dense, &c->ndense, cfg->features[j])) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        return PC_OK;
    }
    if (first_csv == NULL) return pc_err(err, errlen, PC_ERR_CONFIG, "input drift: no input file to read the feature names from");
    csv_header h;
    pc_status s = csv_read_header(first_csv, &h, err, errlen);
    for (int64_t j = 0; s == PC_OK && j < h.ncols; j++)
        if (strcmp(h.names[j], cfg->id_column) != 0 && !push_name(&c->dense, &c->ndense, h.names[j]))
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    csv_header_free(&h);
    return s;
}

pc_status drift_columns_of(const job_config *cfg, const model *m, const char *first_csv, drift_columns *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (cfg->map.format != MAP_FORMAT_CSV)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.drift applies to CSV input, not libsvm", cfg->job_file);
    pc_status s = PC_OK;
    for (int i = 0; s == PC_OK && i < model_input_count(m); i++) {
        const map_binding *b = binding_of(cfg, model_input_name(m, i));
        int64_t width = model_input_width(m, i);
        if (model_input_elem(m, i) == MODEL_ELEM_FLOAT) {
            if (b == NULL) {
                s = default_features(cfg, first_csv, out, err, errlen);
                continue;
            }
            for (int64_t j = 0; s == PC_OK && j < b->ncolumns; j++)
                if (!push_name(&out->dense, &out->ndense, b->columns[j])) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
            continue;
        }
        if (b == NULL) return pc_err(err, errlen, PC_ERR_CONFIG, "input drift: model input '%s' has no map line", model_input_name(m, i));
        int64_t ncols = b->ncolumns == 1 && width > 1 ? 1 : b->ncolumns; /* a bag is one column */
        for (int64_t j = 0; s == PC_OK && j < ncols; j++) {
            featstats_id_kind *k = realloc(out->kinds, (size_t)(out->nids + 1) * sizeof *k);
            if (k == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
            out->kinds = k;
            k[out->nids] = b->hash_buckets > 0 ? FEATSTATS_ID_STRING : FEATSTATS_ID_INT;
            if (!push_name(&out->ids, &out->nids, b->columns[j])) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        }
    }
    return s;
}

void drift_columns_free(drift_columns *c)
{
    for (int64_t i = 0; c->dense && i < c->ndense; i++) free(c->dense[i]);
    for (int64_t i = 0; c->ids && i < c->nids; i++) free(c->ids[i]);
    free(c->dense);
    free(c->ids);
    free(c->kinds);
    memset(c, 0, sizeof *c);
}

/* ---- distances ---- */

static int64_t total_of(const int64_t *h, int n)
{
    int64_t t = 0;
    for (int i = 0; i < n; i++) t += h[i];
    return t;
}

double drift_psi(const int64_t *p, const int64_t *q, int n)
{
    int64_t np = total_of(p, n), nq = total_of(q, n);
    if (np == 0 || nq == 0) return 0.0;
    double psi = 0.0;
    for (int i = 0; i < n; i++) {
        double a = (double)p[i] / (double)np, b = (double)q[i] / (double)nq;
        if (a < DRIFT_EPS) a = DRIFT_EPS;
        if (b < DRIFT_EPS) b = DRIFT_EPS;
        psi += (b - a) * log(b / a);
    }
    return psi;
}

double drift_js(const int64_t *p, const int64_t *q, int n)
{
    int64_t np = total_of(p, n), nq = total_of(q, n);
    if (np == 0 || nq == 0) return 0.0;
    double jsd = 0.0;
    for (int i = 0; i < n; i++) {
        double a = (double)p[i] / (double)np, b = (double)q[i] / (double)nq, m = (a + b) / 2;
        if (a > 0) jsd += 0.5 * a * log2(a / m);
        if (b > 0) jsd += 0.5 * b * log2(b / m);
    }
    return jsd > 0 ? sqrt(jsd < 1 ? jsd : 1) : 0.0;
}

void drift_buckets(const featstats_dense *d, int64_t out[DRIFT_BUCKETS])
{
    out[0] = d->below;
    memcpy(out + 1, d->bins, sizeof d->bins);
    out[FEATSTATS_BINS + 1] = d->above;
    out[FEATSTATS_BINS + 2] = d->missing;
}

/* ---- comparing ---- */

static double share(int64_t part, int64_t whole)
{
    return whole > 0 ? (double)part / (double)whole : 0.0;
}

static drift_level level_of(double x, double warn, double gate)
{
    return x >= gate ? DRIFT_LEVEL_GATE : x >= warn ? DRIFT_LEVEL_WARN : DRIFT_LEVEL_OK;
}

pc_status drift_compare_inputs(const job_config *cfg, const char *stats_path, const featstats *reference,
                               const featstats *tonight, drift_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int64_t nd = featstats_dense_count(tonight), ni = featstats_id_count(tonight);
    out->items = calloc((size_t)(nd + ni) + 1, sizeof *out->items);
    out->stats_path = strdup(stats_path);
    if (out->items == NULL || out->stats_path == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int64_t i = 0; i < nd; i++) {
        featstats_dense q, p;
        featstats_dense_get(tonight, i, &q);
        if (!q.tracked) continue; /* the statistics lack it: the driver warned */
        featstats_dense_get(reference, featstats_dense_find(reference, q.name), &p);
        int64_t hp[DRIFT_BUCKETS], hq[DRIFT_BUCKETS];
        drift_buckets(&p, hp);
        drift_buckets(&q, hq);
        drift_item *it = &out->items[out->n++];
        if ((it->name = strdup(q.name)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        it->psi = drift_psi(hp, hq, DRIFT_BUCKETS);
        it->js = drift_js(hp, hq, DRIFT_BUCKETS);
        it->out_of_range = share(q.below + q.above, q.count);
        it->missing = share(q.missing, q.count);
        it->missing_train = share(p.missing, p.count);
        it->unseen = NAN;
        it->mean = q.mean;
        it->mean_train = p.mean;
        it->std_train = p.std;
        it->level = q.count > 0 ? level_of(it->psi, cfg->drift_psi_warn, cfg->drift_psi_gate) : DRIFT_LEVEL_OK;
        if (q.count > out->rows) out->rows = q.count;
    }
    for (int64_t i = 0; i < ni; i++) {
        featstats_ids v;
        featstats_ids_get(tonight, i, &v);
        if (!v.tracked) continue;
        drift_item *it = &out->items[out->n++];
        if ((it->name = strdup(v.name)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        it->id = true;
        it->psi = it->js = it->out_of_range = it->mean = it->mean_train = it->std_train = NAN;
        it->missing = it->missing_train = 0;
        it->unseen = share(v.unseen, v.count);
        it->level = level_of(it->unseen, cfg->drift_unseen_warn, cfg->drift_unseen_gate);
        if (v.unseen == 0) it->level = DRIFT_LEVEL_OK; /* a 0 threshold flags only real unseen ids */
    }
    for (int64_t i = 0; i < out->n; i++)
        if (out->items[i].level > out->worst) out->worst = out->items[i].level;
    return PC_OK;
}

/* PSI of class shares over the union of both sketches' classes. */
static pc_status class_psi(const featstats *before, const featstats *tonight, double *out, char *err, size_t errlen)
{
    uint64_t *kb = NULL, *kt = NULL;
    int64_t *cb = NULL, *ct = NULL, nb = 0, nt = 0;
    pc_status s = featstats_id_entries(before, 0, &kb, &cb, &nb, err, errlen);
    if (s == PC_OK) s = featstats_id_entries(tonight, 0, &kt, &ct, &nt, err, errlen);
    int64_t *p = calloc((size_t)(nb + nt) + 1, sizeof *p), *q = calloc((size_t)(nb + nt) + 1, sizeof *q);
    if (s == PC_OK && (p == NULL || q == NULL)) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    int64_t n = 0;
    for (int64_t i = 0; s == PC_OK && i < nb; i++, n++) {
        p[n] = cb[i];
        for (int64_t j = 0; j < nt; j++)
            if (kt[j] == kb[i]) q[n] = ct[j];
    }
    for (int64_t j = 0; s == PC_OK && j < nt; j++) {
        bool seen = false;
        for (int64_t i = 0; i < nb && !seen; i++) seen = kb[i] == kt[j];
        if (!seen) q[n++] = ct[j];
    }
    if (s == PC_OK) *out = n > 0 ? drift_psi(p, q, (int)n) : 0.0;
    free(kb), free(kt), free(cb), free(ct), free(p), free(q);
    return s;
}

pc_status drift_compare_outputs(drift_result *r, const char *previous, const featstats *before,
                                const featstats *tonight, char *err, size_t errlen)
{
    if (featstats_dense_count(before) != 1 || featstats_id_count(before) != 1)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output statistics must hold one score and one class column", previous);
    featstats_dense p, q;
    featstats_dense_get(before, 0, &p);
    featstats_dense_get(tonight, 0, &q);
    if (p.lo != q.lo || p.hi != q.hi)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output statistics have a score range other than [0, 1]", previous);
    int64_t hp[DRIFT_BUCKETS], hq[DRIFT_BUCKETS];
    drift_buckets(&p, hp);
    drift_buckets(&q, hq);
    pc_status s = class_psi(before, tonight, &r->class_psi, err, errlen);
    if (s != PC_OK) return s;
    r->score_psi = drift_psi(hp, hq, DRIFT_BUCKETS);
    free(r->previous);
    if ((r->previous = strdup(previous)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    r->have_output = true;
    return PC_OK;
}

pc_status drift_output_sketch(featstats **out, char *err, size_t errlen)
{
    static const char *const dense[] = {"score"}, *const ids[] = {"class"};
    pc_status s = featstats_create(dense, 1, ids, NULL, 1, out, err, errlen);
    if (s == PC_OK && (s = featstats_set_range(*out, 0, 0.0, 1.0, err, errlen)) != PC_OK) {
        featstats_free(*out);
        *out = NULL;
    }
    return s;
}

/* ---- saying it ---- */

/* How far past its gate threshold an item is (for ranking). */
static double severity(const job_config *cfg, const drift_item *it)
{
    if (it->id) return cfg->drift_unseen_gate > 0 ? it->unseen / cfg->drift_unseen_gate : it->unseen * 1e6;
    return cfg->drift_psi_gate > 0 ? it->psi / cfg->drift_psi_gate : it->psi * 1e6;
}

static bool ranks_before(const job_config *cfg, const drift_item *a, const drift_item *b)
{
    double sa = severity(cfg, a), sb = severity(cfg, b);
    return sa > sb || (sa == sb && strcmp(a->name, b->name) < 0);
}

int64_t drift_ranked(const job_config *cfg, const drift_result *r, drift_level min_level, int64_t *idx, int64_t cap)
{
    int64_t n = 0;
    for (int64_t i = 0; i < r->n && n < cap; i++)
        if (r->items[i].level >= min_level) idx[n++] = i;
    for (int64_t k = 1; k < n; k++) /* insertion sort: a handful of items */
        for (int64_t j = k; j > 0 && ranks_before(cfg, &r->items[idx[j]], &r->items[idx[j - 1]]); j--) {
            int64_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    return n;
}

static void describe(const drift_item *it, char *buf, size_t cap)
{
    if (it->id) snprintf(buf, cap, "%s (%.1f%% unseen ids)", it->name, 100 * it->unseen);
    else snprintf(buf, cap, "%s (PSI %.2f)", it->name, it->psi);
}

void drift_summary(const job_config *cfg, const drift_result *r, int64_t max, char *buf, size_t cap)
{
    buf[0] = '\0';
    int64_t *idx = malloc((size_t)(r->n + 1) * sizeof *idx);
    if (idx == NULL) return;
    int64_t n = drift_ranked(cfg, r, DRIFT_LEVEL_WARN, idx, r->n);
    size_t used = 0;
    for (int64_t k = 0; k < n && k < max && used + 1 < cap; k++) {
        char one[300];
        describe(&r->items[idx[k]], one, sizeof one);
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", k ? ", " : "", one);
    }
    if (n > max && used + 1 < cap) snprintf(buf + used, cap - used, " and %lld more", (long long)(n - max));
    free(idx);
}

typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->len + (size_t)n + 1) c *= 2;
        char *p = realloc(b->data, c);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = c;
    }
}

/* A JSON string; names are CSV column names (valid UTF-8 is not checked here: bytes >= 0x80
 * pass through as they are, as in the rest of the report). */
static void sb_string(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\u%04x", *p);
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

static void sb_num(sbuf *b, double x)
{
    if (isfinite(x)) sb_printf(b, "%.6g", x);
    else sb_printf(b, "null");
}

static const char *level_name(drift_level l)
{
    return l == DRIFT_LEVEL_GATE ? "gate" : l == DRIFT_LEVEL_WARN ? "warn" : "ok";
}

char *drift_report_json(const job_config *cfg, const drift_result *r)
{
    sbuf b = {0};
    sb_printf(&b, "{\"mode\":\"%s\",\"checked\":%s,\"stats\":", cfg->drift == DRIFT_GATE ? "gate" : "warn",
              r->stats_path ? "true" : "false");
    if (r->stats_path) sb_string(&b, r->stats_path);
    else sb_printf(&b, "null");
    sb_printf(&b, ",\"rows\":%lld,\"level\":\"%s\",\"thresholds\":{\"psi_warn\":", (long long)r->rows, level_name(r->worst));
    sb_num(&b, cfg->drift_psi_warn);
    sb_printf(&b, ",\"psi_gate\":");
    sb_num(&b, cfg->drift_psi_gate);
    sb_printf(&b, ",\"unseen_warn\":");
    sb_num(&b, cfg->drift_unseen_warn);
    sb_printf(&b, ",\"unseen_gate\":");
    sb_num(&b, cfg->drift_unseen_gate);
    sb_printf(&b, "},\n \"features\":[");
    for (int64_t i = 0; i < r->n; i++) {
        const drift_item *it = &r->items[i];
        sb_printf(&b, "%s{\"name\":", i ? ",\n  " : "\n  ");
        sb_string(&b, it->name);
        if (it->id) {
            sb_printf(&b, ",\"kind\":\"id\",\"unseen_share\":");
            sb_num(&b, it->unseen);
        } else {
            sb_printf(&b, ",\"kind\":\"dense\",\"psi\":");
            sb_num(&b, it->psi);
            sb_printf(&b, ",\"js\":");
            sb_num(&b, it->js);
            sb_printf(&b, ",\"out_of_range_share\":");
            sb_num(&b, it->out_of_range);
            sb_printf(&b, ",\"missing_share\":");
            sb_num(&b, it->missing);
            sb_printf(&b, ",\"missing_share_train\":");
            sb_num(&b, it->missing_train);
            sb_printf(&b, ",\"mean_train\":");
            sb_num(&b, it->mean_train);
            sb_printf(&b, ",\"std_train\":");
            sb_num(&b, it->std_train);
        }
        sb_printf(&b, ",\"level\":\"%s\"}", level_name(it->level));
    }
    sb_printf(&b, "],\n \"output\":");
    if (r->have_output) {
        sb_printf(&b, "{\"previous_version\":");
        sb_string(&b, r->previous);
        sb_printf(&b, ",\"score_psi\":");
        sb_num(&b, r->score_psi);
        sb_printf(&b, ",\"class_psi\":");
        sb_num(&b, r->class_psi);
        sb_printf(&b, "}}");
    } else {
        sb_printf(&b, "null}");
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* A label value escaped as the exposition format says. */
static void sb_label(sbuf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '"') sb_printf(b, "\\%c", *p);
        else if (*p == '\n') sb_printf(b, "\\n");
        else sb_printf(b, "%c", *p);
    }
}

static void sb_sample(sbuf *b, const char *metric, const char *job, const char *lname, const char *lvalue, double v)
{
    sb_printf(b, "%s{job=\"", metric);
    sb_label(b, job);
    sb_printf(b, "\",%s=\"", lname);
    sb_label(b, lvalue);
    sb_printf(b, "\"} ");
    if (isfinite(v)) sb_printf(b, "%.6g\n", v);
    else sb_printf(b, "NaN\n");
}

char *drift_metrics_text(const drift_result *r, const char *job)
{
    sbuf b = {0};
    sb_printf(&b, "# HELP precast_feature_psi Population stability index of an input feature against its training histogram.\n"
                  "# TYPE precast_feature_psi gauge\n");
    for (int64_t i = 0; i < r->n; i++)
        if (!r->items[i].id) sb_sample(&b, "precast_feature_psi", job, "feature", r->items[i].name, r->items[i].psi);
    sb_printf(&b, "# HELP precast_feature_unseen_ids_share Share of an id column's values never seen in training.\n"
                  "# TYPE precast_feature_unseen_ids_share gauge\n");
    for (int64_t i = 0; i < r->n; i++)
        if (r->items[i].id) sb_sample(&b, "precast_feature_unseen_ids_share", job, "feature", r->items[i].name, r->items[i].unseen);
    if (r->have_output) {
        sb_printf(&b, "# HELP precast_output_psi Population stability index of the model's outputs against the previous version's.\n"
                      "# TYPE precast_output_psi gauge\n");
        sb_sample(&b, "precast_output_psi", job, "output", "score", r->score_psi);
        sb_sample(&b, "precast_output_psi", job, "output", "class", r->class_psi);
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

void drift_result_free(drift_result *r)
{
    for (int64_t i = 0; r->items && i < r->n; i++) free(r->items[i].name);
    free(r->items);
    free(r->stats_path);
    free(r->previous);
    memset(r, 0, sizeof *r);
}
