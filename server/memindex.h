/*
 * memindex.h — an in-memory read index of one table version, for `precast serve --preload`:
 * every (key, value) pair copied into one arena, found through an open-addressing hash table.
 *
 * Why: a LevelDB get walks the version, the bloom filter, the index block and a data block
 * whose checksum it verifies — about 20,000 instructions per key here (callgrind, see
 * docs/SERVING.md), which caps a pipelined server well below redis-server.  A table that fits
 * in RAM can be answered from a hash probe and one memcmp instead, with no allocation and no
 * copy: the value handed out points into the arena.
 *
 * Layout (why it is compact): the arena holds the records back to back, each
 *   varint klen, varint vlen, key bytes, value bytes
 * (LEB128 varints: 2 bytes of overhead for short keys and values), and the hash table is one
 * array of 8-byte slots, each 0 (empty) or (16-bit hash tag << 48 | record offset + 1).
 * Linear probing at a load of at most 0.7; the tag makes a probe that meets another key skip
 * it without touching the arena.  Bytes used: the records + 8 bytes × slots (a power of two
 * >= count / 0.7), no per-entry malloc.  Keys are hashed with a per-index random seed, so
 * that keys chosen to collide in one process do not collide in another.
 *
 * Ownership: memindex_new / memindex_build return an index the caller frees with
 * memindex_free.  Values returned by memindex_get point into the index and stay valid until
 * it is freed.
 * Threads: building (memindex_add) is for one thread; once built, memindex_get may be called
 * from any number of threads at once (nothing is written by a lookup).
 */
#ifndef PRECAST_SERVER_MEMINDEX_H
#define PRECAST_SERVER_MEMINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

typedef struct memindex memindex;

/* The most bytes an index of rows pairs holding data_bytes of keys and values (the
 * manifest's rows and bytes) takes: records with their longest varints, and the slots.
 * SIZE_MAX if that does not fit in a size_t. */
size_t memindex_estimate(uint64_t rows, uint64_t data_bytes);

/* An empty index that may grow to max_bytes (records + slots; 0 means no cap), sized up front
 * for rows_hint pairs of data_hint key and value bytes (hints only: it grows past them).
 * Errors: the hints' estimate over max_bytes -> PC_ERR_CONFIG with both sizes; out of
 * memory -> PC_ERR_INTERNAL.  *out is NULL on failure. */
pc_status memindex_new(uint64_t rows_hint, uint64_t data_hint, size_t max_bytes, memindex **out,
                       char *err, size_t errlen);

/* Adds a pair (copied; key and val may be NULL when their length is 0).  Errors, after which
 * the index is unchanged: the key is already there -> PC_ERR_DATA; the index would pass
 * its max_bytes -> PC_ERR_CONFIG naming the cap; out of memory -> PC_ERR_INTERNAL. */
pc_status memindex_add(memindex *ix, const void *key, size_t klen, const void *val, size_t vlen,
                       char *err, size_t errlen);

/* Looks key up (key may be NULL when klen is 0).  Found: true, *val (not NUL-terminated,
 * owned by the index) and *vlen.  Missing: false, *val NULL and *vlen 0. */
bool memindex_get(const memindex *ix, const void *key, size_t klen, const char **val,
                  size_t *vlen);

/* Pairs held. */
uint64_t memindex_count(const memindex *ix);

/* Bytes the index holds allocated (arena + slots). */
size_t memindex_bytes(const memindex *ix);

/* Builds the index of the version at version_dir (a directory holding MANIFEST.json and its
 * shards) by one sorted scan (table_scan_open_dir: each shard's checksum and row count checked
 * against the manifest), refusing before it reads a pair if the manifest's rows and bytes
 * need more than max_bytes (0: no cap).  The arena is trimmed to its size at the end.
 * Errors: over the cap -> PC_ERR_CONFIG ("needs N MiB, over the cap of M MiB"); out of
 * memory -> PC_ERR_INTERNAL; a missing, damaged or inconsistent version -> what the scan
 * returns (PC_ERR_NOINPUT, PC_ERR_IO) naming the shard.  *out is NULL on failure. */
pc_status memindex_build(const char *version_dir, size_t max_bytes, memindex **out, char *err,
                         size_t errlen);

/* Frees the index.  Accepts NULL. */
void memindex_free(memindex *ix);

#endif
