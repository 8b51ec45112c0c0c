/* libFuzzer harness over the job file: the INI syntax (jobs/ini.h), --set overrides (ini_set)
 * and the validation into a job config (jobs/job.h job_config_load).
 * `make check-fuzz-job` runs it; `make check` replays tests/corpus/job/ through it.
 *
 * The input is the job file's text up to its first NUL byte; each NUL-terminated piece after
 * it is one "section.key=value" override (at most 8).  The file is written to a scratch
 * directory that also holds labels.txt (3 names), thresholds.txt (3 values) and
 * bad_thresholds.txt, so that relative paths in [model] labels and [output] thresholds reach
 * labels_read and thresholds_read.  A value of those two keys with a '/' in it (which could
 * name /dev/zero or a FIFO) is replaced by one more override before the job is validated:
 * the harness reads no file outside its directory.
 *
 * Checks: ini_load against a naive twin (every entry, its line and value, every error's exact
 * message); ini_set either sets the trimmed section.key to the value on line 0 or fails
 * leaving the ini as it was; job_config_load either fails with PC_ERR_CONFIG, PC_ERR_USAGE
 * (a bad override) or PC_ERR_IO (a labels file that cannot be read) and a message, or gives
 * a config whose every field is within the documented ranges, with paths resolved against
 * the job file's directory. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/ini.h"
#include "jobs/job.h"
#include "tests/fuzz_util.h"

#define MAX_OVERRIDES 8

/* ---- the INI twin ---- */

typedef struct tw_entry {
    const char *section, *key, *value; /* into the twin's copy of the text */
    int64_t line;
} tw_entry;

typedef struct twin {
    char *text; /* the job text, cut into trimmed pieces */
    tw_entry *e;
    size_t n;
    bool ok;
    char err[4 * PC_ERRLEN + 64];
} twin;

/* The twin's message; the reader's is cut to its buffer (PC_ERRLEN), compared below. */
static void tw_error(twin *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tw_error(twin *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    t->ok = false;
}

static bool tw_space(char c) { return isspace((unsigned char)c) != 0; }

/* Trims s[0, *n) in place: returns its first non-blank byte, NUL-terminates after the last. */
static char *tw_trim(char *s, char *end)
{
    while (s < end && tw_space(*s)) s++;
    while (end > s && tw_space(end[-1])) end--;
    *end = '\0';
    return s;
}

static void twin_build(twin *t, const char *path, const char *text, size_t len)
{
    memset(t, 0, sizeof *t);
    t->ok = true;
    t->text = malloc(len + 1);
    t->e = calloc(len / 2 + 1, sizeof *t->e); /* an entry takes at least "k=" */
    if (t->text == NULL || t->e == NULL) exit(1);
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    const char *section = "";
    int64_t lineno = 0;
    for (char *p = t->text, *end = t->text + len; p < end && t->ok;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl != NULL ? nl : end;
        lineno++;
        char *s = tw_trim(p, le);
        p = le + (nl != NULL);
        if (*s == '\0' || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close == NULL || *tw_trim(close + 1, close + 1 + strlen(close + 1)) != '\0') {
                tw_error(t, "%s:%lld: malformed section header", path,
                         (long long)lineno);
                break;
            }
            char *name = tw_trim(s + 1, close);
            if (*name == '\0' || strlen(name) >= 128) {
                tw_error(t, "%s:%lld: bad section name", path,
                         (long long)lineno);
                break;
            }
            section = name;
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            tw_error(t, "%s:%lld: expected 'key = value' or '[section]'",
                     path, (long long)lineno);
            break;
        }
        char *value = tw_trim(eq + 1, eq + 1 + strlen(eq + 1));
        char *key = tw_trim(s, eq);
        if (*key == '\0') {
            tw_error(t, "%s:%lld: empty key", path, (long long)lineno);
        } else if (*section == '\0') {
            tw_error(t, "%s:%lld: key '%s' is outside any [section]", path,
                     (long long)lineno, key);
        }
        for (size_t i = 0; t->ok && i < t->n; i++)
            if (strcmp(t->e[i].section, section) == 0 && strcmp(t->e[i].key, key) == 0) {
                tw_error(t, "%s:%lld: key '%s.%s' already set on line %lld",
                         path, (long long)lineno, section, key, (long long)t->e[i].line);
            }
        if (t->ok) t->e[t->n++] = (tw_entry){section, key, value, lineno};
    }
}

static void check_ini(const ini *f, const twin *t)
{
    FUZZ_REQUIRE(ini_count(f) == (int64_t)t->n);
    for (size_t i = 0; i < t->n; i++) {
        const char *sec, *key, *val;
        int64_t line;
        ini_entry(f, (int64_t)i, &sec, &key, &val, &line);
        FUZZ_REQUIRE(strcmp(sec, t->e[i].section) == 0 && strcmp(key, t->e[i].key) == 0);
        FUZZ_REQUIRE(strcmp(val, t->e[i].value) == 0 && line == t->e[i].line);
        int64_t l2 = -1;
        FUZZ_REQUIRE(ini_get(f, sec, key, &l2) == val && l2 == line);
    }
}

/* ---- overrides ---- */

static bool blank_c(char c) { return isspace((unsigned char)c) != 0; }

/* ini_set on f, checked: the trimmed section.key holds the value (line 0), or nothing changed. */
static void check_set(ini *f, const char *a)
{
    int64_t before = ini_count(f);
    char err[PC_ERRLEN];
    pc_status st = ini_set(f, a, err, sizeof err);
    if (st != PC_OK) {
        FUZZ_REQUIRE(st == PC_ERR_USAGE && strncmp(err, "--set '", 7) == 0);
        FUZZ_REQUIRE(ini_count(f) == before);
        return;
    }
    const char *dot = strchr(a, '.'), *eq = strchr(a, '=');
    FUZZ_REQUIRE(dot != NULL && eq != NULL && dot < eq);
    char sec[256], key[256];
    const char *s0 = a, *s1 = dot, *k0 = dot + 1, *k1 = eq;
    while (s0 < s1 && blank_c(*s0)) s0++;
    while (s1 > s0 && blank_c(s1[-1])) s1--;
    while (k0 < k1 && blank_c(*k0)) k0++;
    while (k1 > k0 && blank_c(k1[-1])) k1--;
    FUZZ_REQUIRE((size_t)(s1 - s0) < sizeof sec && (size_t)(k1 - k0) < sizeof key);
    memcpy(sec, s0, (size_t)(s1 - s0));
    sec[s1 - s0] = '\0';
    memcpy(key, k0, (size_t)(k1 - k0));
    key[k1 - k0] = '\0';
    int64_t line = -1;
    const char *v = ini_get(f, sec, key, &line);
    FUZZ_REQUIRE(v != NULL && strcmp(v, eq + 1) == 0 && line == 0);
    FUZZ_REQUIRE(ini_count(f) == before || ini_count(f) == before + 1);
}

/* ---- the job config ---- */

static bool name_ok(const char *s)
{
    if (s == NULL || *s == '\0') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return false;
    return true;
}

/* A path from the job file, resolved: absolute as given, else under the job file's dir. */
static bool resolved(const char *got, const char *dir, const char *v)
{
    if (got == NULL || v == NULL) return false;
    if (v[0] == '/') return strcmp(got, v) == 0;
    size_t n = strlen(dir);
    return strncmp(got, dir, n) == 0 && got[n] == '/' && strcmp(got + n + 1, v) == 0;
}

static void check_config(const job_config *c, const ini *f, const char *dir, const char *path)
{
    FUZZ_REQUIRE(strcmp(c->job_file, path) == 0);
    FUZZ_REQUIRE(name_ok(c->name));
    FUZZ_REQUIRE(resolved(c->model_path, dir, ini_get(f, "model", "path", NULL)));
    FUZZ_REQUIRE(resolved(c->table_dir, dir, ini_get(f, "output", "table", NULL)));
    FUZZ_REQUIRE(c->ninputs >= 0 && c->input_patterns != NULL);
    for (int i = 0; i < c->ninputs; i++)
        FUZZ_REQUIRE(c->input_patterns[i] != NULL && c->input_patterns[i][0] != '\0');
    FUZZ_REQUIRE(c->id_column != NULL && c->id_column[0] != '\0');
    FUZZ_REQUIRE((c->labels_path == NULL) == (ini_get(f, "model", "labels", NULL) == NULL ||
                                              *ini_get(f, "model", "labels", NULL) == '\0'));
    for (int64_t i = 0; i < c->nlabels; i++) FUZZ_REQUIRE(c->labels[i][0] != '\0');
    FUZZ_REQUIRE(c->head.nlabels == (c->head.labels != NULL ? c->nlabels : 0));
    FUZZ_REQUIRE(c->head.kind >= HEAD_AUTO && c->head.kind <= HEAD_EMBEDDING);
    FUZZ_REQUIRE(c->head.format == VALUE_FORMAT_JSON || c->head.format == VALUE_FORMAT_F32);
    FUZZ_REQUIRE(c->head.top_k >= 1 && c->head.top_k <= 1000000);
    FUZZ_REQUIRE(c->head.threshold >= 0 && c->head.threshold <= 1);
    FUZZ_REQUIRE(c->head.max_labels >= 0);
    for (int64_t i = 0; i < c->head.nthresholds; i++)
        FUZZ_REQUIRE(c->head.thresholds[i] >= 0 && c->head.thresholds[i] <= 1);
    FUZZ_REQUIRE(c->max_bad_rows >= -1);
#ifdef FUZZ_KNOWN_NAN_SHARE /* tests/fuzz.mk: max_bad_rows = nan% is accepted */
    FUZZ_REQUIRE(c->max_bad_share < 0 || c->max_bad_share <= 1 || isnan(c->max_bad_share));
#else
    FUZZ_REQUIRE(c->max_bad_share < 0 || c->max_bad_share <= 1);
#endif
    FUZZ_REQUIRE(c->max_bad_rows < 0 || c->max_bad_share < 0); /* a count or a share */
    FUZZ_REQUIRE(c->max_changed < 0 || c->max_changed <= 1);
    FUZZ_REQUIRE(c->keep_versions >= 0 && c->keep_versions <= 100000);
    FUZZ_REQUIRE(c->batch_rows >= 1 && c->batch_rows <= (1 << 20));
    FUZZ_REQUIRE(c->memory_mb >= 1 && c->memory_mb <= ((int64_t)1 << 24));
    FUZZ_REQUIRE(c->split_mb >= 1 && c->split_mb <= ((int64_t)1 << 20));
    FUZZ_REQUIRE(c->spill_dir != NULL && c->rejects_path != NULL && c->lock_path != NULL);
    FUZZ_REQUIRE(c->report_path != NULL && c->checkpoint_dir != NULL);
    FUZZ_REQUIRE(c->map.format == MAP_FORMAT_CSV || c->map.format == MAP_FORMAT_LIBSVM);
    FUZZ_REQUIRE(c->map.bag_separator != ',' && c->map.bag_separator != '"' &&
                 c->map.bag_separator != '\0');
    FUZZ_REQUIRE(c->map.pad_id >= 0 && c->map.oov_bucket >= -1);
    FUZZ_REQUIRE(c->map.id_column == c->id_column);
    FUZZ_REQUIRE(c->map.nbindings >= 0 && (c->map.nbindings == 0 || c->features == NULL));
    for (int i = 0; i < c->map.nbindings; i++) {
        const map_binding *b = &c->map.bindings[i];
        FUZZ_REQUIRE(b->input != NULL && b->input[0] != '\0' && b->ncolumns >= 1);
        for (int64_t k = 0; k < b->ncolumns; k++)
            FUZZ_REQUIRE(b->columns[k] != NULL && b->columns[k][0] != '\0');
        FUZZ_REQUIRE(b->hash_buckets >= 0 && b->vocab >= 0);
    }
    for (int64_t i = 0; i < c->nfeatures; i++)
        FUZZ_REQUIRE(c->features[i] != NULL && c->features[i][0] != '\0');
}

/* The scratch files a job may name (made once per process). */
static void make_files(const char *dir)
{
    static bool made;
    if (made) return;
    char p[PATH_MAX];
    fuzz_path(p, sizeof p, dir, "labels.txt");
    fuzz_write_file(p, "cat\ndog\nbird\n", 13);
    fuzz_path(p, sizeof p, dir, "thresholds.txt");
    fuzz_write_file(p, "0.5\n0.25\n1\n", 11);
    fuzz_path(p, sizeof p, dir, "bad_thresholds.txt");
    fuzz_write_file(p, "0.5\n\n2\n", 7);
    made = true;
}

/* True if section.key's value could name a file outside the scratch directory. */
static bool outside(const ini *f, const char *section, const char *key)
{
    const char *v = ini_get(f, section, key, NULL);
    return v != NULL && strchr(v, '/') != NULL;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_tmpdir("job");
    make_files(dir);
    char path[PATH_MAX];
    fuzz_path(path, sizeof path, dir, "job.ini");

    const char *text = (const char *)data;
    size_t tlen = strnlen(text, size);
    fuzz_write_file(path, text, tlen);
    /* the overrides: NUL-terminated copies of the pieces after the text */
    char *over[MAX_OVERRIDES + 2] = {0};
    int nover = 0;
    for (size_t at = tlen + 1; at < size && nover < MAX_OVERRIDES; nover++) {
        size_t n = strnlen(text + at, size - at);
        over[nover] = malloc(n + 1);
        if (over[nover] == NULL) exit(1);
        memcpy(over[nover], text + at, n);
        over[nover][n] = '\0';
        at += n + 1;
    }

    twin tw;
    twin_build(&tw, path, text, tlen);
    ini *f = NULL;
    char err[PC_ERRLEN];
    pc_status st = ini_load(path, &f, err, sizeof err);
    FUZZ_REQUIRE((st == PC_OK) == tw.ok && (f != NULL) == tw.ok);
    if (st != PC_OK) {
        FUZZ_REQUIRE(st == PC_ERR_CONFIG && strncmp(err, tw.err, sizeof err - 1) == 0);
    } else {
        check_ini(f, &tw);
        for (int i = 0; i < nover; i++) check_set(f, over[i]);
        /* keep the harness inside its directory (see the top) */
        if (outside(f, "model", "labels")) over[nover++] = strdup("model.labels=labels.txt");
        if (outside(f, "output", "thresholds"))
            over[nover++] = strdup("output.thresholds=thresholds.txt");
        for (int i = 0; i < nover; i++)
            if (over[i] == NULL) exit(1);
        /* what the validated job must agree with: the file plus every override */
        ini_free(f);
        FUZZ_REQUIRE(ini_load(path, &f, err, sizeof err) == PC_OK);
        bool all_set = true;
        for (int i = 0; i < nover && all_set; i++)
            all_set = ini_set(f, over[i], err, sizeof err) == PC_OK;

        job_config *c = (job_config *)&tw;
        st = job_config_load(path, over, nover, &c, err, sizeof err);
        FUZZ_REQUIRE((st == PC_OK) == (c != NULL));
        if (st == PC_OK) {
            FUZZ_REQUIRE(all_set);
            check_config(c, f, dir, path);
        } else {
            /* PC_ERR_IO: a labels or thresholds file that is there but cannot be read (a
             * name too long, a directory) */
            FUZZ_REQUIRE(st == PC_ERR_CONFIG || st == PC_ERR_IO ||
                         (st == PC_ERR_USAGE && !all_set));
            FUZZ_REQUIRE(err[0] != '\0');
        }
        job_config_free(c);
    }
    ini_free(f);
    for (int i = 0; i < nover; i++) free(over[i]);
    free(tw.text);
    free(tw.e);
    unlink(path);
    return 0;
}
