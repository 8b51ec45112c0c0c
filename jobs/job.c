#include "jobs/job.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/ini.h"

const char *duplicates_name(duplicates_policy p)
{
    return p == DUPLICATES_FIRST ? "first" : p == DUPLICATES_LAST ? "last" : "fail";
}

/* Every key a job file may hold. A key not listed here is an error, so a typo such as
 * `top-k = 3` is caught instead of silently ignored. */
static const char *const KNOWN_KEYS[][2] = {
    {"model", "path"},       {"model", "labels"},
    {"input", "paths"},      {"input", "format"},      {"input", "id_column"},
    {"input", "features"},   {"input", "bad_rows"},    {"input", "one_based"},
    {"input", "bag_separator"}, {"input", "pad_id"},   {"input", "oov"},
    {"input", "max_bad_rows"}, {"input", "rejects"},
    {"input", "drift"},      {"input", "drift_stats"}, {"input", "drift_psi_warn"},
    {"input", "drift_psi_gate"}, {"input", "drift_unseen_warn"}, {"input", "drift_unseen_gate"},
    {"output", "table"},     {"output", "head"},       {"output", "top_k"},
    {"output", "threshold"}, {"output", "value_format"}, {"output", "duplicates"},
    {"output", "thresholds"}, {"output", "max_labels"}, {"output", "all_scores"},
    {"output", "shards"},    {"output", "keep_versions"}, {"output", "diff"},
    {"output", "max_changed"},
    {"run", "name"},         {"run", "batch_rows"},    {"run", "memory_mb"},
    {"run", "spill_dir"},    {"run", "split_mb"},      {"run", "lock"},
    {"run", "report"},       {"run", "metrics_textfile"}, {"run", "checkpoint"},
    {"run", "checkpoint_dir"},
};

static pc_status check_known_keys(const ini *f, char *err, size_t errlen)
{
    for (int64_t i = 0; i < ini_count(f); i++) {
        const char *sec, *key, *val;
        int64_t line;
        ini_entry(f, i, &sec, &key, &val, &line);
        /* per-input keys: map.NAME, hash.NAME, vocab.NAME */
        bool known = strcmp(sec, "input") == 0 && (strncmp(key, "map.", 4) == 0 ||
                     strncmp(key, "hash.", 5) == 0 || strncmp(key, "vocab.", 6) == 0);
        for (size_t k = 0; k < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0]; k++)
            known |= strcmp(KNOWN_KEYS[k][0], sec) == 0 && strcmp(KNOWN_KEYS[k][1], key) == 0;
        if (!known)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: unknown key '%s' in section [%s]",
                          ini_path(f), (long long)line, key, sec);
    }
    return PC_OK;
}

static pc_status required(const ini *f, const char *sec, const char *key, const char **val,
                          char *err, size_t errlen)
{
    *val = ini_get(f, sec, key, NULL);
    if (*val == NULL || **val == '\0')
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: missing required key '%s' in section [%s]",
                      ini_path(f), key, sec);
    return PC_OK;
}

pc_status labels_read(const char *path, char ***labels, int64_t *n, char *err, size_t errlen)
{
    *labels = NULL;
    *n = 0;
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return pc_err(err, errlen, errno == ENOENT ? PC_ERR_NOINPUT : PC_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL, **items = NULL;
    size_t cap = 0;
    int64_t count = 0, alloc = 0, lineno = 0;
    pc_status s = PC_OK;
    ssize_t len;
    while (s == PC_OK && (len = getline(&line, &cap, fp)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) {
            int c = fgetc(fp);
            if (c == EOF) break; /* a final empty line */
            ungetc(c, fp);
            s = pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: empty label", path, (long long)lineno);
            break;
        }
        if (count == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            char **p = realloc(items, (size_t)alloc * sizeof(char *));
            if (p == NULL) { s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory"); break; }
            items = p;
        }
        if ((items[count] = strdup(line)) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        else count++;
    }
    free(line);
    fclose(fp);
    if (s != PC_OK) {
        ini_list_free(items, count);
        return s;
    }
    *labels = items;
    *n = count;
    return PC_OK;
}

void labels_free(char **labels, int64_t n) { ini_list_free(labels, n); }

static pc_status load_model_section(const ini *f, job_config *c, char *err, size_t errlen)
{
    const char *v;
    pc_status s = required(f, "model", "path", &v, err, errlen);
    if (s != PC_OK) return s;
    if ((c->model_path = ini_resolve_path(c->job_file, v)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((v = ini_get(f, "model", "labels", NULL)) != NULL && *v) {
        if ((c->labels_path = ini_resolve_path(c->job_file, v)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        s = labels_read(c->labels_path, &c->labels, &c->nlabels, err, errlen);
        if (s == PC_ERR_NOINPUT) s = PC_ERR_CONFIG; /* the job names a file that is not there */
        if (s != PC_OK) return s;
        c->head.labels = (const char *const *)c->labels;
        c->head.nlabels = c->nlabels;
    }
    return PC_OK;
}

/* The map.NAME = columns lines, with their hash.NAME and vocab.NAME options. */
static pc_status load_bindings(const ini *f, job_config *c, char *err, size_t errlen)
{
    int64_t n = 0;
    for (int64_t i = 0; i < ini_count(f); i++) {
        const char *sec, *key, *val;
        int64_t line;
        ini_entry(f, i, &sec, &key, &val, &line);
        n += strcmp(sec, "input") == 0 && strncmp(key, "map.", 4) == 0;
    }
    c->bindings = calloc((size_t)n + 1, sizeof(map_binding));
    c->binding_columns = calloc((size_t)n + 1, sizeof(char **));
    if (c->bindings == NULL || c->binding_columns == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char at[PATH_MAX + 32];
    for (int64_t i = 0; i < ini_count(f); i++) {
        const char *sec, *key, *val;
        int64_t line;
        ini_entry(f, i, &sec, &key, &val, &line);
        if (strcmp(sec, "input") != 0) continue;
        bool is_map = strncmp(key, "map.", 4) == 0;
        if (!is_map && strncmp(key, "hash.", 5) != 0 && strncmp(key, "vocab.", 6) != 0) continue;
        const char *name = strchr(key, '.') + 1; /* each prefix above has its '.' */
        if (*name == '\0')
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.%s: missing the input's name", ini_where(f, "input", key, at, sizeof at), key);
        char mapkey[256];
        snprintf(mapkey, sizeof mapkey, "map.%s", name);
        if (!is_map && ini_get(f, "input", mapkey, NULL) == NULL)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.%s without a map.%s line", ini_where(f, "input", key, at, sizeof at), key, name);
        if (!is_map) continue;
        map_binding *b = &c->bindings[c->map.nbindings];
        char hashkey[256], vocabkey[256];
        snprintf(hashkey, sizeof hashkey, "hash.%s", name);
        snprintf(vocabkey, sizeof vocabkey, "vocab.%s", name);
        pc_status s = ini_split_list(val, ",", &c->binding_columns[c->map.nbindings], &b->ncolumns, err, errlen);
        /* Counted now, so that job_config_free frees the column list if a check below fails. */
        if (s == PC_OK) c->map.nbindings++;
        if (s == PC_OK && b->ncolumns == 0)
            s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.%s names no column", ini_where(f, "input", key, at, sizeof at), key);
        if (s == PC_OK) s = ini_get_int(f, "input", hashkey, 0, 1, INT64_MAX, &b->hash_buckets, err, errlen);
        if (s == PC_OK) s = ini_get_int(f, "input", vocabkey, 0, 1, INT64_MAX, &b->vocab, err, errlen);
        if (s != PC_OK) return s;
        b->columns = (const char *const *)c->binding_columns[c->map.nbindings - 1];
        if ((b->input = strdup(name)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    c->map.bindings = c->bindings;
    return PC_OK;
}

/* A thresholds file: one number in [0, 1] per line, per class. */
static pc_status thresholds_read(const char *path, float **out, int64_t *n, char *err, size_t errlen)
{
    char **lines = NULL;
    int64_t count = 0;
    pc_status s = labels_read(path, &lines, &count, err, errlen);
    if (s == PC_ERR_NOINPUT) s = PC_ERR_CONFIG;
    if (s != PC_OK) return s;
    float *t = malloc(((size_t)count + 1) * sizeof(float));
    if (t == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    for (int64_t i = 0; s == PC_OK && i < count; i++) {
        char *end;
        double v = strtod(lines[i], &end);
        if (end == lines[i] || *end != '\0' || !(v >= 0 && v <= 1))
            s = pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: '%s' is not a threshold in [0, 1]", path,
                       (long long)i + 1, lines[i]);
        else t[i] = (float)v;
    }
    labels_free(lines, count);
    if (s != PC_OK) {
        free(t);
        return s;
    }
    *out = t;
    *n = count;
    return PC_OK;
}

/* input.max_bad_rows: a count ("1000") or a share of the rows read ("0.5%"); none = no
 * limit. input.rejects: where skipped rows go. */
static pc_status load_bad_row_budget(const ini *f, job_config *c, char *err, size_t errlen)
{
    char at[PATH_MAX + 32];
    c->max_bad_rows = -1;
    c->max_bad_share = -1.0;
    const char *v = ini_get(f, "input", "max_bad_rows", NULL);
    if (v != NULL) {
        char *end;
        double x = strtod(v, &end);
        bool pct = *end == '%' && end[1] == '\0';
        /* Range first: converting a double outside int64_t (or NaN) is undefined. */
        bool in_range = x >= 0 && x <= (pct ? 100.0 : 9.0e18);
        if (end == v || (!pct && *end != '\0') || !in_range || (!pct && x != (double)(int64_t)x))
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.max_bad_rows = '%s': expected a count or a percentage like 0.5%%",
                          ini_where(f, "input", "max_bad_rows", at, sizeof at), v);
        if (pct) c->max_bad_share = x / 100.0;
        else c->max_bad_rows = (int64_t)x;
    }
    return PC_OK;
}

/* input.drift and its thresholds (docs/DRIFT.md).  The stats file defaults to the model's
 * path with ".onnx" replaced by ".stats.json", where `precast train` writes it. */
static pc_status load_drift(const ini *f, job_config *c, char *err, size_t errlen)
{
    char at[PATH_MAX + 32];
    const char *v = ini_get(f, "input", "drift", NULL);
    if (v != NULL) {
        if (strcmp(v, "warn") == 0) c->drift = DRIFT_WARN;
        else if (strcmp(v, "gate") == 0) c->drift = DRIFT_GATE;
        else if (strcmp(v, "off") != 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.drift = '%s': expected off, warn or gate",
                          ini_where(f, "input", "drift", at, sizeof at), v);
    }
    pc_status s = ini_get_real(f, "input", "drift_psi_warn", 0.2, 0, 1e9, false, &c->drift_psi_warn, err, errlen);
    if (s == PC_OK) s = ini_get_real(f, "input", "drift_psi_gate", 0.25, 0, 1e9, false, &c->drift_psi_gate, err, errlen);
    if (s == PC_OK) s = ini_get_real(f, "input", "drift_unseen_warn", 0.05, 0, 1, false, &c->drift_unseen_warn, err, errlen);
    if (s == PC_OK) s = ini_get_real(f, "input", "drift_unseen_gate", 0.1, 0, 1, false, &c->drift_unseen_gate, err, errlen);
    if (s != PC_OK) return s;
    v = ini_get(f, "input", "drift_stats", NULL);
    c->drift_stats_set = v != NULL && *v;
    if (c->drift_stats_set) {
        c->drift_stats = ini_resolve_path(c->job_file, v);
    } else {
        size_t n = strlen(c->model_path);
        if (n > 5 && strcmp(c->model_path + n - 5, ".onnx") == 0) n -= 5;
        if ((c->drift_stats = malloc(n + 12)) != NULL) snprintf(c->drift_stats, n + 12, "%.*s.stats.json", (int)n, c->model_path);
    }
    return c->drift_stats ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
}

static pc_status load_input_section(const ini *f, job_config *c, char *err, size_t errlen)
{
    const char *v;
    char at[PATH_MAX + 32];
    pc_status s = required(f, "input", "paths", &v, err, errlen);
    int64_t n = 0;
    char **patterns = NULL;
    if (s == PC_OK) s = ini_split_list(v, " ,\t", &patterns, &n, err, errlen);
    if (s != PC_OK) return s;
    c->input_patterns = calloc((size_t)n + 1, sizeof(char *));
    for (int64_t i = 0; c->input_patterns && i < n; i++)
        c->input_patterns[i] = ini_resolve_path(c->job_file, patterns[i]);
    c->ninputs = (int)n;
    ini_list_free(patterns, n);
    if (c->input_patterns == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((v = ini_get(f, "input", "format", NULL)) != NULL) {
        if (strcmp(v, "libsvm") == 0) c->map.format = MAP_FORMAT_LIBSVM;
        else if (strcmp(v, "csv") != 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.format = '%s': expected csv or libsvm",
                          ini_where(f, "input", "format", at, sizeof at), v);
    }
    if ((s = ini_get_bool(f, "input", "one_based", false, &c->map.one_based, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "input", "pad_id", 0, 0, INT64_MAX, &c->map.pad_id, err, errlen)) != PC_OK) return s;
    c->map.bag_separator = '|';
    if ((v = ini_get(f, "input", "bag_separator", NULL)) != NULL) {
        if (strlen(v) != 1 || *v == ',' || *v == '"')
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.bag_separator = '%s': expected one character, not ',' or '\"'",
                          ini_where(f, "input", "bag_separator", at, sizeof at), v);
        c->map.bag_separator = *v;
    }
    c->map.oov_bucket = -1;
    if ((v = ini_get(f, "input", "oov", NULL)) != NULL && strcmp(v, "reject") != 0 &&
        (s = ini_get_int(f, "input", "oov", 0, 0, INT64_MAX, &c->map.oov_bucket, err, errlen)) != PC_OK)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.oov = '%s': expected reject or an id",
                      ini_where(f, "input", "oov", at, sizeof at), v);
    if ((v = ini_get(f, "input", "bad_rows", NULL)) != NULL) {
        if (strcmp(v, "skip") == 0) c->map.skip_bad_rows = true;
        else if (strcmp(v, "fail") != 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: input.bad_rows = '%s': expected fail or skip",
                          ini_where(f, "input", "bad_rows", at, sizeof at), v);
    }
    if ((s = load_bad_row_budget(f, c, err, errlen)) != PC_OK) return s;
    if ((s = load_drift(f, c, err, errlen)) != PC_OK) return s;
    v = ini_get(f, "input", "id_column", NULL);
    if ((c->id_column = strdup(v && *v ? v : "id")) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((v = ini_get(f, "input", "features", NULL)) != NULL && *v &&
        (s = ini_split_list(v, ",", &c->features, &c->nfeatures, err, errlen)) != PC_OK)
        return s;
    if ((s = load_bindings(f, c, err, errlen)) != PC_OK) return s;
    c->map.id_column = c->id_column;
    c->map.features = (const char *const *)c->features;
    c->map.nfeatures = c->nfeatures;
    if (c->map.nbindings > 0 && c->features != NULL)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: use either input.features or map.NAME lines, not both", ini_path(f));
    return PC_OK;
}

static pc_status load_output_section(const ini *f, job_config *c, char *err, size_t errlen)
{
    const char *v;
    char at[PATH_MAX + 32];
    pc_status s = required(f, "output", "table", &v, err, errlen);
    if (s != PC_OK) return s;
    if ((c->table_dir = ini_resolve_path(c->job_file, v)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if ((v = ini_get(f, "output", "head", NULL)) != NULL && !head_kind_parse(v, &c->head.kind))
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.head = '%s': expected auto, softmax_topk, sigmoid, "
                      "one_vs_all, multilabel, raw or embedding",
                      ini_where(f, "output", "head", at, sizeof at), v);
    if ((v = ini_get(f, "output", "value_format", NULL)) != NULL && !value_format_parse(v, &c->head.format))
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.value_format = '%s': expected json or f32",
                      ini_where(f, "output", "value_format", at, sizeof at), v);
    if ((v = ini_get(f, "output", "duplicates", NULL)) != NULL) {
        if (strcmp(v, "first") == 0) c->duplicates = DUPLICATES_FIRST;
        else if (strcmp(v, "last") == 0) c->duplicates = DUPLICATES_LAST;
        else if (strcmp(v, "fail") != 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.duplicates = '%s': expected fail, first or last",
                          ini_where(f, "output", "duplicates", at, sizeof at), v);
    }
    if ((v = ini_get(f, "output", "shards", NULL)) != NULL) {
        if (strcmp(v, "1") == 0) c->single_shard = true;
        else if (strcmp(v, "ranks") != 0)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.shards = '%s': expected ranks or 1",
                          ini_where(f, "output", "shards", at, sizeof at), v);
    }
    if ((s = ini_get_int(f, "output", "top_k", 1, 1, 1000000, &c->head.top_k, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "output", "max_labels", 0, 0, INT64_MAX, &c->head.max_labels, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_int(f, "output", "keep_versions", 3, 0, 100000, &c->keep_versions, err, errlen)) != PC_OK) return s;
    if ((s = ini_get_bool(f, "output", "diff", true, &c->diff, err, errlen)) != PC_OK) return s;
    c->max_changed = -1.0;
    if ((v = ini_get(f, "output", "max_changed", NULL)) != NULL) {
        char *end;
        double x = strtod(v, &end);
        bool pct = *end == '%' && end[1] == '\0';
        if (pct) x /= 100.0;
        if (end == v || (!pct && *end != '\0') || !(x >= 0 && x <= 1))
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.max_changed = '%s': expected a share in [0, 1] or a percentage",
                          ini_where(f, "output", "max_changed", at, sizeof at), v);
        c->max_changed = x;
    }
    if ((s = ini_get_bool(f, "output", "all_scores", false, &c->head.all_scores, err, errlen)) != PC_OK) return s;
    if ((v = ini_get(f, "output", "thresholds", NULL)) != NULL && *v) {
        if ((c->thresholds_path = ini_resolve_path(c->job_file, v)) == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        if ((s = thresholds_read(c->thresholds_path, &c->thresholds, &c->head.nthresholds, err, errlen)) != PC_OK) return s;
        c->head.thresholds = c->thresholds;
    }
    c->head.threshold = 0.5;
    if ((v = ini_get(f, "output", "threshold", NULL)) != NULL) {
        char *end;
        c->head.threshold = strtod(v, &end);
        if (end == v || *end != '\0' || !(c->head.threshold >= 0 && c->head.threshold <= 1))
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s: output.threshold = '%s': expected a number in [0, 1]",
                          ini_where(f, "output", "threshold", at, sizeof at), v);
    }
    return PC_OK;
}

static pc_status load_run_section(const ini *f, job_config *c, char *err, size_t errlen)
{
    const char *v = ini_get(f, "run", "name", NULL);
    char at[PATH_MAX + 32];
    if (v != NULL) {
        for (const char *p = v; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                return pc_err(err, errlen, PC_ERR_CONFIG, "%s: run.name = '%s': use letters, digits, '-' and '_'",
                              ini_where(f, "run", "name", at, sizeof at), v);
        c->name = strdup(v);
    } else {
        /* The job file's base name without .ini, cleaned to the characters a version dir
         * name may hold. */
        char *copy = strdup(c->job_file);
        const char *base = copy ? basename(copy) : "job";
        c->name = strdup(base);
        free(copy);
        if (c->name) {
            char *dot = strrchr(c->name, '.');
            if (dot && dot != c->name) *dot = '\0';
            for (char *p = c->name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')) *p = '_';
        }
    }
    if (c->name == NULL || *c->name == '\0') return pc_err(err, errlen, PC_ERR_CONFIG, "%s: empty job name", c->job_file);
    pc_status s = ini_get_int(f, "run", "batch_rows", JOB_DEFAULT_BATCH_ROWS, 1, 1 << 20, &c->batch_rows,
                               err, errlen);
    if (s == PC_OK) s = ini_get_int(f, "run", "memory_mb", 512, 1, (int64_t)1 << 24, &c->memory_mb, err, errlen);
    if (s == PC_OK) s = ini_get_int(f, "run", "split_mb", 64, 1, (int64_t)1 << 20, &c->split_mb, err, errlen);
    if (s != PC_OK) return s;
    const char *dir = ini_get(f, "run", "spill_dir", NULL);
    const char *tmp = getenv("TMPDIR");
    c->spill_dir = dir && *dir ? ini_resolve_path(c->job_file, dir) : strdup(tmp && *tmp ? tmp : "/tmp");
    if (c->spill_dir == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    return PC_OK;
}

/* *out = the job file's value of [run] key (resolved), else TABLE/<prefix><job><suffix>
 * (or NULL when prefix is NULL). */
static pc_status run_file(const ini *f, const job_config *c, const char *sec, const char *key, const char *prefix,
                          const char *suffix, char **out, char *err, size_t errlen)
{
    const char *v = ini_get(f, sec, key, NULL);
    *out = NULL;
    if (v != NULL && *v) *out = ini_resolve_path(c->job_file, v);
    else if (prefix == NULL) return PC_OK;
    else {
        size_t n = strlen(c->table_dir) + strlen(prefix) + strlen(c->name) + strlen(suffix) + 2;
        if ((*out = malloc(n)) != NULL) snprintf(*out, n, "%s/%s%s%s", c->table_dir, prefix, c->name, suffix);
    }
    return *out ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
}

/* The files a run keeps beside its table unless the job names others. */
static pc_status resolve_run_files(const ini *f, job_config *c, char *err, size_t errlen)
{
    pc_status s = run_file(f, c, "input", "rejects", "rejects-", ".jsonl", &c->rejects_path, err, errlen);
    if (s == PC_OK) s = run_file(f, c, "run", "lock", ".lock-", "", &c->lock_path, err, errlen);
    if (s == PC_OK) s = run_file(f, c, "run", "report", "report-", ".json", &c->report_path, err, errlen);
    if (s == PC_OK) s = run_file(f, c, "run", "metrics_textfile", NULL, "", &c->metrics_path, err, errlen);
    if (s == PC_OK) s = run_file(f, c, "run", "checkpoint_dir", ".checkpoint-", "", &c->checkpoint_dir, err, errlen);
    const char *ck = ini_get(f, "run", "checkpoint", NULL);
    c->checkpoint_auto = ck == NULL || strcmp(ck, "auto") == 0;
    if (s == PC_OK && !c->checkpoint_auto) s = ini_get_bool(f, "run", "checkpoint", true, &c->checkpoint, err, errlen);
    return s;
}

/* Validates and resolves an ini (consumed) into *out; job_file names it and anchors relative
 * paths. */
static pc_status job_config_from_ini(ini *f, const char *job_file, char *const *overrides, int noverrides,
                                     job_config **out, char *err, size_t errlen)
{
    pc_status s = PC_OK;
    for (int i = 0; s == PC_OK && i < noverrides; i++) s = ini_set(f, overrides[i], err, errlen);
    job_config *c = calloc(1, sizeof *c);
    if (s == PC_OK && (c == NULL || (c->job_file = strdup(job_file)) == NULL))
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) {
        c->head.kind = HEAD_AUTO;
        c->head.format = VALUE_FORMAT_JSON;
        s = check_known_keys(f, err, errlen);
    }
    if (s == PC_OK) s = load_model_section(f, c, err, errlen);
    if (s == PC_OK) s = load_input_section(f, c, err, errlen);
    if (s == PC_OK) s = load_output_section(f, c, err, errlen);
    if (s == PC_OK) s = load_run_section(f, c, err, errlen);
    if (s == PC_OK) s = resolve_run_files(f, c, err, errlen);
    ini_free(f);
    if (s != PC_OK) {
        job_config_free(c);
        return s;
    }
    *out = c;
    return PC_OK;
}

pc_status job_config_load(const char *path, char *const *overrides, int noverrides,
                          job_config **out, char *err, size_t errlen)
{
    *out = NULL;
    ini *f = NULL;
    pc_status s = ini_load(path, &f, err, errlen);
    if (s != PC_OK) return s;
    return job_config_from_ini(f, path, overrides, noverrides, out, err, errlen);
}

pc_status job_config_from_assignments(const char *name, char *const *assignments, int n, job_config **out,
                                      char *err, size_t errlen)
{
    *out = NULL;
    ini *f = ini_create(name);
    if (f == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    /* "./NAME": relative paths resolve against the working directory, as a user typing
     * flags expects. */
    char anchor[256];
    snprintf(anchor, sizeof anchor, "./%s", name);
    return job_config_from_ini(f, anchor, assignments, n, out, err, errlen);
}

void job_config_free(job_config *c)
{
    if (c == NULL) return;
    free(c->job_file);
    free(c->name);
    free(c->model_path);
    free(c->labels_path);
    labels_free(c->labels, c->nlabels);
    ini_list_free(c->input_patterns, c->ninputs);
    free(c->id_column);
    ini_list_free(c->features, c->nfeatures);
    free(c->table_dir);
    for (int i = 0; c->bindings && i < c->map.nbindings; i++) {
        free((char *)c->bindings[i].input);
        ini_list_free(c->binding_columns[i], c->bindings[i].ncolumns);
    }
    free(c->bindings);
    free(c->binding_columns);
    free(c->thresholds_path);
    free(c->spill_dir);
    free(c->rejects_path);
    free(c->drift_stats);
    free(c->lock_path);
    free(c->report_path);
    free(c->metrics_path);
    free(c->checkpoint_dir);
    free(c->thresholds);
    free(c);
}
