#include "jobs/ini.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ini_entry_t {
    char *section, *key, *value;
    int64_t line;
} ini_entry_t;

struct ini {
    char *path;
    ini_entry_t *entries;
    int64_t count, cap;
};

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) *--end = '\0';
    return s;
}

static ini_entry_t *find(const ini *f, const char *section, const char *key)
{
    for (int64_t i = 0; i < f->count; i++)
        if (strcmp(f->entries[i].section, section) == 0 && strcmp(f->entries[i].key, key) == 0)
            return &f->entries[i];
    return NULL;
}

/* Adds or replaces section.key; false when out of memory (f unchanged). */
static bool put(ini *f, const char *section, const char *key, const char *value, int64_t line)
{
    char *v = strdup(value);
    if (v == NULL) return false;
    ini_entry_t *e = find(f, section, key);
    if (e != NULL) {
        free(e->value);
        e->value = v;
        e->line = line;
        return true;
    }
    if (f->count == f->cap) {
        int64_t cap = f->cap ? f->cap * 2 : 16;
        ini_entry_t *p = realloc(f->entries, (size_t)cap * sizeof *p);
        if (p == NULL) {
            free(v);
            return false;
        }
        f->entries = p;
        f->cap = cap;
    }
    e = &f->entries[f->count];
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = v;
    e->line = line;
    if (e->section == NULL || e->key == NULL) {
        free(e->section);
        free(e->key);
        free(v);
        return false;
    }
    f->count++;
    return true;
}

static pc_status parse_line(ini *f, char *line, int64_t lineno, char *section, size_t seccap,
                            char *err, size_t errlen)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';') return PC_OK;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || *trim(close + 1) != '\0')
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: malformed section header", f->path, (long long)lineno);
        *close = '\0';
        char *name = trim(s + 1);
        if (*name == '\0' || strlen(name) >= seccap)
            return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: bad section name", f->path, (long long)lineno);
        strcpy(section, name);
        return PC_OK;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: expected 'key = value' or '[section]'", f->path, (long long)lineno);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (*key == '\0')
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: empty key", f->path, (long long)lineno);
    if (*section == '\0')
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: key '%s' is outside any [section]", f->path, (long long)lineno, key);
    ini_entry_t *dup = find(f, section, key);
    if (dup != NULL)
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s:%lld: key '%s.%s' already set on line %lld", f->path,
                      (long long)lineno, section, key, (long long)dup->line);
    if (!put(f, section, key, value, lineno)) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    return PC_OK;
}

pc_status ini_load(const char *path, ini **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return pc_err(err, errlen, errno == ENOENT ? PC_ERR_NOINPUT : PC_ERR_IO, "%s: %s", path, strerror(errno));
    ini *f = calloc(1, sizeof *f);
    pc_status s = PC_OK;
    if (f == NULL || (f->path = strdup(path)) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char section[128] = "";
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    while (s == PC_OK && getline(&line, &cap, fp) != -1) {
        lineno++;
        s = parse_line(f, line, lineno, section, sizeof section, err, errlen);
    }
    if (s == PC_OK && ferror(fp)) s = pc_err(err, errlen, PC_ERR_IO, "%s: read error", path);
    free(line);
    fclose(fp);
    if (s != PC_OK) {
        ini_free(f);
        return s;
    }
    *out = f;
    return PC_OK;
}

ini *ini_create(const char *label)
{
    ini *f = calloc(1, sizeof *f);
    if (f != NULL && (f->path = strdup(label)) == NULL) {
        free(f);
        f = NULL;
    }
    return f;
}

pc_status ini_set(ini *f, const char *assignment, char *err, size_t errlen)
{
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    if (dot == NULL || eq == NULL || dot > eq || dot == assignment || eq == dot + 1)
        return pc_err(err, errlen, PC_ERR_USAGE, "--set '%s': expected section.key=value", assignment);
    char section[128], key[128];
    size_t slen = (size_t)(dot - assignment), klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof section || klen >= sizeof key)
        return pc_err(err, errlen, PC_ERR_USAGE, "--set '%s': name too long", assignment);
    memcpy(section, assignment, slen);
    section[slen] = '\0';
    memcpy(key, dot + 1, klen);
    key[klen] = '\0';
    if (!put(f, trim(section), trim(key), eq + 1, 0)) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    return PC_OK;
}

const char *ini_get(const ini *f, const char *section, const char *key, int64_t *line)
{
    ini_entry_t *e = find(f, section, key);
    if (e && line) *line = e->line;
    return e ? e->value : NULL;
}

int64_t ini_count(const ini *f) { return f->count; }

void ini_entry(const ini *f, int64_t i, const char **section, const char **key,
               const char **value, int64_t *line)
{
    *section = f->entries[i].section;
    *key = f->entries[i].key;
    *value = f->entries[i].value;
    *line = f->entries[i].line;
}

const char *ini_path(const ini *f) { return f->path; }

void ini_free(ini *f)
{
    if (f == NULL) return;
    for (int64_t i = 0; i < f->count; i++) {
        free(f->entries[i].section);
        free(f->entries[i].key);
        free(f->entries[i].value);
    }
    free(f->entries);
    free(f->path);
    free(f);
}

/* ---- typed values ---- */

const char *ini_where(const ini *f, const char *section, const char *key, char *buf, size_t cap)
{
    int64_t line = 0;
    ini_get(f, section, key, &line);
    if (line == 0) snprintf(buf, cap, "--set %s.%s", section, key);
    else snprintf(buf, cap, "%s:%lld", ini_path(f), (long long)line);
    return buf;
}

/* PC_ERR_CONFIG "WHERE: section.key = 'value': expected WHAT". */
static pc_status bad_value(const ini *f, const char *section, const char *key, const char *v, const char *what,
                           char *err, size_t errlen)
{
    char at[PATH_MAX + 64];
    return pc_err(err, errlen, PC_ERR_CONFIG, "%s: %s.%s = '%s': expected %s",
                  ini_where(f, section, key, at, sizeof at), section, key, v, what);
}

pc_status ini_get_int(const ini *f, const char *section, const char *key, int64_t dflt, int64_t lo,
                      int64_t hi, int64_t *out, char *err, size_t errlen)
{
    const char *v = ini_get(f, section, key, NULL);
    *out = dflt;
    if (v == NULL) return PC_OK;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0' || x < lo || x > hi) {
        char what[96];
        snprintf(what, sizeof what, "an integer in %lld..%lld", (long long)lo, (long long)hi);
        return bad_value(f, section, key, v, what, err, errlen);
    }
    *out = x;
    return PC_OK;
}

pc_status ini_get_real(const ini *f, const char *section, const char *key, double dflt, double lo,
                       double hi, bool hi_open, double *out, char *err, size_t errlen)
{
    const char *v = ini_get(f, section, key, NULL);
    *out = dflt;
    if (v == NULL) return PC_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end != '\0' || !isfinite(x) || x < lo || x > hi || (hi_open && x >= hi)) {
        char what[96];
        snprintf(what, sizeof what, "a number in %g..%g%s", lo, hi, hi_open ? " (exclusive)" : "");
        return bad_value(f, section, key, v, what, err, errlen);
    }
    *out = x;
    return PC_OK;
}

pc_status ini_get_bool(const ini *f, const char *section, const char *key, bool dflt, bool *out,
                       char *err, size_t errlen)
{
    const char *v = ini_get(f, section, key, NULL);
    *out = dflt;
    if (v == NULL) return PC_OK;
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0) *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0) *out = false;
    else return bad_value(f, section, key, v, "true or false", err, errlen);
    return PC_OK;
}

pc_status ini_get_choice(const ini *f, const char *section, const char *key,
                         const char *const *names, int n, int dflt, int *out, char *err,
                         size_t errlen)
{
    const char *v = ini_get(f, section, key, NULL);
    *out = dflt;
    if (v == NULL) return PC_OK;
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return PC_OK;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " | " : "", names[i]);
    return bad_value(f, section, key, v, list, err, errlen);
}

pc_status ini_split_list(const char *s, const char *seps, char ***out, int64_t *n, char *err,
                         size_t errlen)
{
    char *copy = strdup(s);
    char **items = calloc(strlen(s) / 2 + 2, sizeof(char *));
    *n = 0;
    *out = NULL;
    if (copy == NULL || items == NULL) {
        free(copy);
        free(items);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, seps, &save); tok; tok = strtok_r(NULL, seps, &save)) {
        while (*tok == ' ' || *tok == '\t') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
        if (*tok && (items[*n] = strdup(tok)) != NULL) (*n)++;
    }
    free(copy);
    *out = items;
    return PC_OK;
}

void ini_list_free(char **items, int64_t n)
{
    for (int64_t i = 0; items && i < n; i++) free(items[i]);
    free(items);
}

char *ini_resolve_path(const char *job_file, const char *path)
{
    if (path[0] == '/') return strdup(path);
    char *copy = strdup(job_file);
    if (copy == NULL) return NULL;
    const char *dir = dirname(copy);
    char *out;
    if (strcmp(dir, ".") == 0) {
        out = strdup(path);
    } else {
        size_t n = strlen(dir) + strlen(path) + 2;
        out = malloc(n);
        if (out != NULL) snprintf(out, n, "%s/%s", dir, path);
    }
    free(copy);
    return out;
}
