/*
 * ini.h — the job file's INI syntax: `[section]` lines, `key = value` lines, `#` or `;`
 * comments on their own line, blank lines. Keys and values are trimmed; a value may be empty.
 * Every entry remembers its line so that errors name FILE:LINE.
 *
 * Ownership: an ini owns copies of all strings; pointers returned by ini_get()/ini_entry()
 * stay valid until ini_free(). Not thread safe.
 */
#ifndef PRECAST_INI_H
#define PRECAST_INI_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"

typedef struct ini ini;

/* Reads and parses path. Missing file -> PC_ERR_NOINPUT; a line that is neither a section, an
 * assignment nor a comment, a key outside any section, or a key given twice in one section ->
 * PC_ERR_CONFIG "path:line: reason". On failure *out is NULL. */
pc_status ini_load(const char *path, ini **out, char *err, size_t errlen);

/* An empty ini, for a job given only by --set-style assignments (`precast predict`); `label`
 * stands for the file name in messages. NULL when out of memory. */
ini *ini_create(const char *label);

/* Applies a command-line override "section.key=value", replacing the file's value or adding
 * the key (its line is then 0). Malformed -> PC_ERR_USAGE. */
pc_status ini_set(ini *f, const char *assignment, char *err, size_t errlen);

/* The value of section.key, or NULL. *line (if not NULL) gets its line (0 = from --set). */
const char *ini_get(const ini *f, const char *section, const char *key, int64_t *line);

int64_t ini_count(const ini *f);
void ini_entry(const ini *f, int64_t i, const char **section, const char **key,
               const char **value, int64_t *line);
const char *ini_path(const ini *f);

void ini_free(ini *f); /* accepts NULL */

/* ---- typed values, shared by the job file (jobs/job.c) and the training job
 * (trainer/train_config.c), so both say the same thing about the same mistake ----
 * Each leaves dflt in *out when the key is absent, and on a bad value returns PC_ERR_CONFIG
 * "FILE:LINE: section.key = 'value': expected ..." (or "--set section.key" for an override). */

/* "FILE:LINE" of section.key, or "--set section.key" when it came from --set; buf holds it. */
const char *ini_where(const ini *f, const char *section, const char *key, char *buf, size_t cap);
/* An integer in [lo, hi]. */
pc_status ini_get_int(const ini *f, const char *section, const char *key, int64_t dflt, int64_t lo,
                      int64_t hi, int64_t *out, char *err, size_t errlen);
/* A finite number in [lo, hi] (hi_open: strictly below hi). */
pc_status ini_get_real(const ini *f, const char *section, const char *key, double dflt, double lo,
                       double hi, bool hi_open, double *out, char *err, size_t errlen);
/* true/yes/1 or false/no/0. */
pc_status ini_get_bool(const ini *f, const char *section, const char *key, bool dflt, bool *out,
                       char *err, size_t errlen);
/* One of names[0, n): its index. */
pc_status ini_get_choice(const ini *f, const char *section, const char *key,
                         const char *const *names, int n, int dflt, int *out, char *err,
                         size_t errlen);
/* s split at any of seps into a new array of *n trimmed non-empty strings (ini_list_free). */
pc_status ini_split_list(const char *s, const char *seps, char ***out, int64_t *n, char *err,
                         size_t errlen);
void ini_list_free(char **items, int64_t n);
/* A path from the job file, resolved against the job file's folder (absolute paths as they
 * are; "a.csv" beside a job file in "." stays "a.csv"). A malloc'ed string, NULL when out of
 * memory. */
char *ini_resolve_path(const char *job_file, const char *path);

#endif
