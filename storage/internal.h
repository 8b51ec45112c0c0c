/*
 * internal.h — helpers shared by the .c files of storage/; not part of the public API.
 */
#ifndef PRECAST_STORAGE_INTERNAL_H
#define PRECAST_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <leveldb/c.h>
#include <limits.h>

#include "kernels/status.h"

/* Bytewise comparison of two keys (memcmp order, a proper prefix first): <0, 0, >0. */
int st_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Writes a printable rendering of key into buf (cap bytes): printable ASCII as is, '\\' and
 * other bytes as \xNN, cut after 48 bytes with "...".  Returns buf. */
const char *st_key_show(char *buf, size_t cap, const char *key, size_t len);

/* malloc'd copy of p[0..n) with a NUL after it; NULL if out of memory. */
char *st_memdup(const void *p, size_t n);

/* Takes a LevelDB error string (lerr, may be NULL), formats "<fmt...>: <lerr>" into err,
 * frees lerr with leveldb_free and returns code. */
pc_status st_ldb_err(char *err, size_t errlen, pc_status code, char *lerr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A version name as CURRENT may hold it: a plain directory name, printable, not hidden. */
bool st_version_name_valid(const char *v, size_t n);

/* Resolves a version given by name, or NULL for CURRENT's, into its name (name, NAME_MAX + 1
 * bytes) and its directory path (vdir, PATH_MAX bytes). PC_ERR_NOINPUT for no CURRENT, an
 * invalid name or a path too long; nothing is checked on disk beyond CURRENT. */
pc_status st_version_resolve(const char *table_dir, const char *version, char *name, char *vdir, char *err,
                             size_t errlen);

/* Takes the table lock (table.h: exclusive flock of table_dir/.precast-table.lock, created if
 * missing; waits for it).  On success *fd is the lock's descriptor for st_table_unlock.
 * Failure -> PC_ERR_CANTCREAT (cannot create the lock file) or PC_ERR_IO, *fd = -1. */
pc_status st_table_lock(const char *table_dir, int *fd, char *err, size_t errlen);

/* Releases a lock from st_table_lock; accepts -1. */
void st_table_unlock(int fd);

/* A published shard opened for reading through a private view (view.c): the table's files
 * are never written, no lock is taken on them, and any number of processes may read one
 * shard at once.  db is NULL and dir empty when closed. */
typedef struct st_shard_view {
    leveldb_t *db;
    char dir[PATH_MAX]; /* the view: $TMPDIR/precast-view-<pid>-XXXXXX */
} st_shard_view;

/* Opens the shard directory `shard` with opts (which must not create missing databases).
 * Failure -> PC_ERR_IO naming the shard (PC_ERR_CANTCREAT if the view cannot be made), and
 * v is left closed. */
pc_status st_shard_view_open(const char *shard, const leveldb_options_t *opts, st_shard_view *v,
                             char *err, size_t errlen);

/* Closes the database and removes the view; accepts a closed view. */
void st_shard_view_close(st_shard_view *v);

#define ST_TABLE_LOCK_NAME ".precast-table.lock"

/* Size of a buffer for st_key_show. */
#define ST_KEY_SHOW 200

#endif
