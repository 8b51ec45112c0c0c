/*
 * spill.h — an append-only pair store under a memory budget, spilling sorted runs to files,
 * read back by a sequential scan or by a k-way merge in key order.
 *
 * A kv_spill holds the pairs appended to it in an in-memory table (a kv_buffer) of at most
 * `budget_bytes`. When the next pair would not fit, the table is sorted by key and written out
 * as one run file in the spill directory, and emptied. So the store holds any number of pairs
 * in bounded memory; kv_merge_open() yields them all in key order by merging the runs (each
 * read sequentially through a buffer of KV_RUN_BUFFER bytes) with the sorted table.
 *
 * Memory accounting (what `budget_bytes` bounds): the in-memory table's allocated capacity,
 * arena (key and value bytes) + KV_ENTRY_BYTES per entry + the sort's scratch of half as many
 * entries, i.e. arena + 48 bytes per pair. Growth is clamped to the budget. A single pair
 * larger than the budget is held alone (the budget is then exceeded by that pair). Outside
 * the budget, and independent of the input size:
 *   - a reservoir of up to KV_SPILL_SAMPLES keys of at most KV_SAMPLE_KEY_MAX bytes
 *     (KV_SPILL_SAMPLES * (KV_SAMPLE_KEY_MAX + 2) = 260 KiB), for splitters;
 *   - while a run is written: a write buffer of KV_RUN_BUFFER (64 KiB);
 *   - a scan: one run reader, KV_RUN_BUFFER;
 *   - a merge: up to KV_MERGE_FANIN run readers of KV_RUN_BUFFER (4 MiB) + one writer when
 *     there are more runs than that (intermediate passes merge KV_MERGE_FANIN runs at a time
 *     into one, so memory does not grow with the number of runs);
 *   - a reader's buffer grows to hold a pair larger than KV_RUN_BUFFER, and the merge keeps
 *     one more copy of the largest key: add twice the largest pair to the constant.
 * So a store costs at most budget_bytes + 4.5 MiB + 2 * (largest pair).
 *
 * Run file (host byte order; spill files are read only by the process that wrote them):
 *   header  32 bytes: magic "PCSPILL\0", u32 version (1), u32 header size (32),
 *                     u64 pairs, u64 payload bytes
 *   payload pairs in key order, each [u32 klen][u32 vlen][i32 file][i64 line][key][value]
 *                     (the kv_pack() layout)
 *   trailer 16 bytes: u32 CRC-32 (zlib) of the payload, u32 zero, magic "PCSPEND\0"
 * The reader checks the file's length against the header, every pair's lengths against the
 * payload left, the pair count and the CRC: a truncated or corrupt run is PC_ERR_IO naming the
 * file, never a crash or an unbounded allocation.
 *
 * Files: "<dir>/<prefix>-XXXXXX.run" (mkstemps: unique across stores and processes that share
 * the prefix). kv_spill_free() removes them; so does every failing call that created one.
 * Files a killed process left behind are removed by kv_spill_sweep(dir, prefix).
 *
 * Ownership and lifetime: the store owns its memory and files. Pointers yielded by a scan or
 * a merge stay valid until the next call on that scan or merge (or its close). While a scan
 * or merge is open, kv_spill_append() is refused; several may be opened one after another.
 * Not thread safe; no MPI.
 */
#ifndef PRECAST_SPILL_H
#define PRECAST_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "reducer/kv.h"

#define KV_RUN_BUFFER ((size_t)64 * 1024) /* read and write buffer per run file */
#define KV_MERGE_FANIN 64                 /* runs merged at once */
#define KV_SPILL_SAMPLES 2048             /* keys kept by the reservoir */
#define KV_SAMPLE_KEY_MAX 128             /* bytes of a sampled key kept (a prefix) */
#define KV_SPILL_UNLIMITED SIZE_MAX       /* a budget that never spills */

typedef struct kv_spill kv_spill;
typedef struct kv_scan kv_scan;
typedef struct kv_merge kv_merge;

/* One pair read back. key/val point into the reader's memory: valid until the next call on
 * the scan or merge that returned them. */
typedef struct kv_pair {
    const char *key, *val;
    size_t klen, vlen;
    kv_origin origin;
} kv_pair;

/* Creates an empty store whose runs go to `dir` (an existing directory, checked here) with
 * names starting "<prefix>-". prefix: 1..200 bytes, no '/'. budget_bytes: see above;
 * KV_SPILL_UNLIMITED never spills. On failure (*out = NULL): PC_ERR_CANTCREAT when dir is not
 * a directory, PC_ERR_USAGE for a bad prefix, PC_ERR_INTERNAL when out of memory. */
pc_status kv_spill_create(const char *dir, const char *prefix, size_t budget_bytes, kv_spill **out,
                          char *err, size_t errlen);

/* Removes the store's run files and frees it. Accepts NULL. */
void kv_spill_free(kv_spill *s);

/* Copies one pair in; spills the in-memory table to a new run first when the pair does not
 * fit in the budget. Also offers the key to the reservoir sample. On failure the pair is not
 * added and the store holds what it held: PC_ERR_DATA (key or value over 4 GiB),
 * PC_ERR_CANTCREAT (no run file can be created in dir), PC_ERR_IO (writing the run failed; the
 * partial file is removed), PC_ERR_INTERNAL (out of memory, or a scan or merge is open). */
pc_status kv_spill_append(kv_spill *s, const void *key, size_t klen, const void *val, size_t vlen,
                          kv_origin origin, char *err, size_t errlen);

/* Pairs appended in all. */
int64_t kv_spill_count(const kv_spill *s);
/* Bytes written to run files so far (headers included), merge passes not counted. */
int64_t kv_spill_spilled_bytes(const kv_spill *s);
/* Run files the store holds now. */
int64_t kv_spill_run_count(const kv_spill *s);
/* Path of run i (0 <= i < kv_spill_run_count), valid until the next call on the store. */
const char *kv_spill_run_path(const kv_spill *s, int64_t i);
/* The in-memory table's accounted bytes now (what the budget bounds). */
size_t kv_spill_memory(const kv_spill *s);

/* The reservoir: a uniform sample (deterministic: a fixed seed) of the appended keys, each
 * cut to KV_SAMPLE_KEY_MAX bytes. REQUIRES 0 <= i < kv_spill_sample_count(s). Pointers stay
 * valid until the next append. */
int64_t kv_spill_sample_count(const kv_spill *s);
const char *kv_spill_sample(const kv_spill *s, int64_t i, size_t *klen);

/* Sequential scan of every pair, in no particular order (runs first, then the in-memory
 * table). On failure *out = NULL and PC_ERR_INTERNAL (out of memory) or PC_ERR_IO. */
pc_status kv_scan_open(kv_spill *s, kv_scan **out, char *err, size_t errlen);
/* Yields the next pair into *p, or sets *eof. PC_ERR_IO for a run file that is truncated,
 * corrupt or unreadable (the message names it); after an error only close is allowed. */
pc_status kv_scan_next(kv_scan *sc, kv_pair *p, bool *eof, char *err, size_t errlen);
void kv_scan_close(kv_scan *sc); /* accepts NULL */

/* k-way merge of every run and the in-memory table (sorted here, in place): yields the pairs
 * in key order; equal keys come out next to each other, in the order they were appended.
 * When there are more than KV_MERGE_FANIN runs, first merges groups of them into longer runs
 * (written to dir, the old ones removed). On failure *out = NULL: PC_ERR_IO (a bad run or a
 * failed write), PC_ERR_CANTCREAT, PC_ERR_INTERNAL (out of memory). */
pc_status kv_merge_open(kv_spill *s, kv_merge **out, char *err, size_t errlen);
/* As kv_scan_next(), in key order. */
pc_status kv_merge_next(kv_merge *m, kv_pair *p, bool *eof, char *err, size_t errlen);
void kv_merge_close(kv_merge *m); /* accepts NULL */

/* Removes the files "<dir>/<prefix>-XXXXXX.run" (exactly that shape: six characters of
 * [A-Za-z0-9]) that a killed run left. Call it only while no live store uses the prefix (the
 * job holds its lock). Several processes may sweep one dir at once. A missing dir is not an
 * error. *removed (may be NULL) counts the files this call removed. PC_ERR_IO when dir cannot
 * be read or a file cannot be removed (named).
 * A job-wide prefix ("precast-<job>", the same on every rank: mkstemps keeps the names
 * apart) lets every rank sweep what any earlier run left in its spill_dir, whatever that
 * run's rank count and whether spill_dir is shared or local to each host: every rank sweeps,
 * then MPI_Barrier, then the stores are created. A per-rank prefix ("precast-<job>-r<rank>")
 * misses the files of ranks that the new run does not have. */
pc_status kv_spill_sweep(const char *dir, const char *prefix, int64_t *removed, char *err,
                         size_t errlen);

#endif
