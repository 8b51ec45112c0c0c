#include "jobs/ini.h"

#include <ctype.h>
#include <errno.h>
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
