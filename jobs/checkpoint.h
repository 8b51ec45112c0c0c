/*
 * checkpoint.h — map outputs kept per input segment, so that `precast run --resume` after a
 * killed run maps only the segments that had not finished.
 *
 * For every segment a rank finishes, its pairs and its rejects lines are written to
 *   DIR/seg-<index>-<key>.pairs and DIR/seg-<index>-<key>.rejects
 * through ".tmp" names, fsynced and renamed — the .pairs rename is the commit point, so a
 * segment either has complete outputs or none. <key> is a hash of everything that decides a
 * segment's outputs: the input files (names, sizes, mtimes), the segment's byte range, the
 * model's bytes and the job's settings; any change makes old files unusable (never wrong).
 * DIR must be visible to every rank (a segment may be handed to another rank on the rerun);
 * the default is in the table dir. The driver clears DIR at the start of a run without
 * --resume and after a publish.
 *
 * .pairs format: magic "PCCKPT1\0", then pairs in the kv_pack layout ([u32 klen][u32 vlen]
 * [i32 file][i64 line][key][value]), then a footer: u64 rows_in, rows_emitted, rows_rejected,
 * oov_ids, pairs, and magic "PCCKEND\0". A file that does not check out is ignored (mapped
 * again), never trusted.
 *
 * Ownership: a checkpoint handle owns its open files. One rank's; no MPI.
 */
#ifndef PRECAST_CHECKPOINT_H
#define PRECAST_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"
#include "mapper/map.h"
#include "reducer/kv.h"

typedef struct checkpoint checkpoint;

/* Opens (creating) DIR for this rank's segments; key is the run's hash (hex). */
pc_status checkpoint_open(const char *dir, const char *key, checkpoint **out, char *err, size_t errlen);
void checkpoint_close(checkpoint *c); /* abandons an unfinished segment; accepts NULL */

/* Starts writing segment `index`'s outputs. */
pc_status checkpoint_begin(checkpoint *c, int64_t index, char *err, size_t errlen);
pc_status checkpoint_pair(checkpoint *c, const char *key, size_t klen, const char *val, size_t vlen,
                          kv_origin origin, char *err, size_t errlen);
pc_status checkpoint_reject(checkpoint *c, const char *line, size_t len, char *err, size_t errlen);
/* Seals the segment with its counts: fsync, then rename (rejects first, pairs last). */
pc_status checkpoint_commit(checkpoint *c, const map_stats *counts, char *err, size_t errlen);

/* Reuses segment `index` if its outputs are complete and valid: every pair goes to on_pair,
 * every rejects line to on_reject, the counts to *counts, and *found = true. A missing or
 * invalid file gives *found = false and PC_OK (the segment is mapped again). */
typedef pc_status (*checkpoint_pair_fn)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen,
                                        kv_origin origin, char *err, size_t errlen);
typedef pc_status (*checkpoint_reject_fn)(void *ctx, const char *line, size_t len, char *err, size_t errlen);
pc_status checkpoint_load(checkpoint *c, int64_t index, checkpoint_pair_fn on_pair, checkpoint_reject_fn on_reject,
                          void *ctx, map_stats *counts, bool *found, char *err, size_t errlen);

/* Removes DIR's segment files and DIR itself (best effort; a missing DIR is fine). */
void checkpoint_clear(const char *dir);

#endif
