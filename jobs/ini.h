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

#endif
