/*
 * precast.h — the installed C library for point lookups in a precast table.
 *
 *   #include <precast.h>
 *   cc app.c $(pkg-config --cflags --libs precast)
 *
 * A table is the directory a `precast run` publishes into; precast_table_open() opens the
 * version CURRENT names (its manifest and every shard, read by key range) and keeps it until
 * precast_table_close(), so a lookup costs one binary search over the shards' key ranges and
 * one LevelDB Get (a bloom filter answers most misses without a disk read). A newer version
 * published meanwhile is seen by opening the table again.
 *
 * Values are the bytes the job stored: JSON text for value_format = json (see the README's
 * "Heads and values"), little-endian float32 for f32; precast_table_value_format() says which.
 *
 * Return values are sysexits-style codes (0 = success; 66 no table or no CURRENT, 74 I/O
 * error or corruption, 70 out of memory); on failure `err` (errlen bytes, may be NULL) holds
 * a one-line message. Ownership: values returned are malloc'd and freed with precast_free().
 * Threads: any number of threads may call precast_table_get/multi_get on one open table.
 * LevelDB keeps a lock per shard: one process at a time can hold a given version open.
 */
#ifndef PRECAST_H
#define PRECAST_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct precast_table precast_table;

/* Opens dir's current version. On failure *t is NULL. */
int precast_table_open(const char *dir, precast_table **t, char *err, size_t errlen);

/* Options for precast_table_open_opts; zero-initialise, then set what you need. */
typedef struct precast_open_options {
    size_t cache_bytes; /* LevelDB block cache for the version's shards; 0: 32 MiB */
} precast_open_options;

/* precast_table_open with options (opts may be NULL: the defaults). */
int precast_table_open_opts(const char *dir, const precast_open_options *opts, precast_table **t,
                            char *err, size_t errlen);

/* Looks one key up. Found: *found = true and *value (malloc'd, NUL-terminated, *vlen bytes
 * without the NUL). Miss: *found = false, *value = NULL. */
int precast_table_get(precast_table *t, const void *key, size_t klen, char **value, size_t *vlen,
                      bool *found, char *err, size_t errlen);

/* Looks n keys up: values[i], vlens[i], found[i] as for precast_table_get. On failure the
 * values already returned are freed and every values[i] is NULL. */
int precast_table_multi_get(precast_table *t, size_t n, const void *const *keys, const size_t *klens,
                            char **values, size_t *vlens, bool *found, char *err, size_t errlen);

/* The open version's name and value format ("json" | "f32"); owned by t. */
const char *precast_table_version(const precast_table *t);
const char *precast_table_value_format(const precast_table *t);

void precast_table_close(precast_table *t); /* accepts NULL */
void precast_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
