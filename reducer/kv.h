/*
 * kv.h — an append-only buffer of (key, value) pairs, sorted in place by key.
 *
 * The mapper appends one pair per predicted row; the reducer sorts, ships and merges them.
 * Keys and values are copied into one growing byte arena, so a pair costs its bytes plus a
 * 32-byte entry and nothing else. Every pair also carries its origin (input file index and
 * line) so that a duplicate id can be reported with both places it came from.
 *
 * Order is LevelDB's bytewise order: memcmp over the common prefix, then the shorter key
 * first. Keys compare equal only if they are identical bytes.
 *
 * Ownership: the buffer owns all bytes; pointers returned by kv_key()/kv_value() stay valid
 * until the next kv_append() or kv_free(). Not thread safe.
 */
#ifndef PRECAST_KV_H
#define PRECAST_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

typedef struct kv_buffer kv_buffer;

/* Where a pair came from: an index into the job's input file list and a 1-based line. */
typedef struct kv_origin {
    int32_t file;
    int64_t line;
} kv_origin;

/* Returns a new empty buffer, or NULL when out of memory. */
kv_buffer *kv_create(void);
void kv_free(kv_buffer *kv); /* accepts NULL */

/* Copies key and value in. On failure (out of memory, a key or value over 4 GiB) returns an
 * error and leaves the buffer as it was. */
pc_status kv_append(kv_buffer *kv, const void *key, size_t klen, const void *val, size_t vlen,
                    kv_origin origin, char *err, size_t errlen);

int64_t kv_count(const kv_buffer *kv);
/* Total key + value bytes held. */
int64_t kv_bytes(const kv_buffer *kv);

/* REQUIRES 0 <= i < kv_count(kv). */
const char *kv_key(const kv_buffer *kv, int64_t i, size_t *klen);
const char *kv_value(const kv_buffer *kv, int64_t i, size_t *vlen);
kv_origin kv_origin_of(const kv_buffer *kv, int64_t i);
/* A hint that pair i (in the current order) is read soon: after kv_sort, reading pairs in
 * order jumps around the arena, and each pair's first touch was a cache miss. No effect when
 * i is out of range. */
void kv_prefetch(const kv_buffer *kv, int64_t i);

/* Sorts the pairs by key (bytewise); pairs with equal keys keep their order (stable). Needs a
 * scratch array of count/2 entries; when that cannot be had, returns PC_ERR_INTERNAL and the
 * buffer is unchanged. */
pc_status kv_sort(kv_buffer *kv, char *err, size_t errlen);

/* Compares two keys in LevelDB's bytewise order: <0, 0, >0. */
int kv_key_compare(const void *a, size_t alen, const void *b, size_t blen);

/* In a sorted buffer, finds the first pair whose key equals the next one's. Returns true and
 * sets *index to it if there is one. */
bool kv_find_duplicate(const kv_buffer *kv, int64_t *index);

/* Bytes of one pair's entry (besides its key and value bytes); kv_sort() needs a scratch of
 * count/2 + 1 more entries. Used by callers that account for a buffer's memory. */
#define KV_ENTRY_BYTES 32

/* Bytes allocated for the arena and the entries (capacity, not what the pairs use). */
size_t kv_memory(const kv_buffer *kv);

/* Sets the capacities to exactly `bytes` key + value bytes and `count` entries (never below
 * what is held), so that appends within them allocate nothing; may shrink. On failure (out
 * of memory) returns PC_ERR_INTERNAL; the pairs are unchanged (a capacity may be). */
pc_status kv_reserve(kv_buffer *kv, size_t bytes, size_t count, char *err, size_t errlen);

/* Capacities as set by kv_reserve() or grown by kv_append(). */
size_t kv_arena_capacity(const kv_buffer *kv);
size_t kv_entry_capacity(const kv_buffer *kv);

/* Forgets every pair and keeps the memory, for reuse. */
void kv_clear(kv_buffer *kv);

/* Serialised form, used to ship pairs between ranks: for each pair
 * [u32 klen][u32 vlen][i32 file][i64 line][key][value], little-endian as the host is (ranks of
 * one job run the same binary on the same architecture). */
#define KV_PACKED_HEADER 20
size_t kv_packed_size(const kv_buffer *kv, int64_t first, int64_t end);
/* Writes pairs [first, end) into out, which has kv_packed_size() bytes. */
void kv_pack(const kv_buffer *kv, int64_t first, int64_t end, char *out);
/* Appends the pairs of a packed block. A block that does not parse (lengths past its end) is
 * PC_ERR_INTERNAL and nothing is appended. */
pc_status kv_unpack_append(kv_buffer *kv, const char *packed, size_t len, char *err, size_t errlen);

#endif
