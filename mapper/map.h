/*
 * map.h — the map loop: rows of a rank's input segments → batches → forward pass → head →
 * (key, value) pairs handed to an emit callback.
 *
 * For each input file the loop reads the header once and maps columns by name: the id
 * column becomes the key (its bytes as they are), the feature columns (by default every other
 * column, in header order) fill the model's input row. A file whose header lacks a column, or
 * whose feature count differs from the model's input width, is an error naming the file and
 * both numbers. A row with the wrong number of fields, a feature that is not a finite number,
 * an empty id, or a model output that is NaN or infinite is a bad row: with bad_rows = fail
 * the job stops with PC_ERR_DATA naming file and line.
 *
 * Ownership: the map loop borrows the model, plan and head; it allocates its batch state and
 * frees it before returning. The emit callback's key and value pointers are valid only during
 * the call. Not thread safe (the model's buffers are one batch's).
 */
#ifndef PRECAST_MAP_H
#define PRECAST_MAP_H

#include <stdint.h>

#include "kernels/model.h"
#include "mapper/head.h"
#include "mapper/split.h"

/* Receives one prediction. file is the index in the plan's file list; line is 1-based. A
 * non-OK return stops the map loop with that status and message. */
typedef pc_status (*map_emit_fn)(void *ctx, const char *key, size_t klen, const char *val,
                                 size_t vlen, int32_t file, int64_t line, char *err,
                                 size_t errlen);

typedef struct map_config {
    const char *id_column;           /* name of the key column; required */
    const char *const *features;     /* feature column names, or NULL: every other column */
    int64_t nfeatures;
} map_config;

typedef struct map_stats {
    int64_t rows_in;       /* data records read */
    int64_t rows_emitted;  /* pairs handed to emit */
    int64_t rows_rejected; /* bad rows skipped (0 while bad_rows = fail) */
} map_stats;

/* Maps segments [first, end) of the plan (REQUIRES split_resolve() done). Uses the model's
 * first input and first output. On failure returns the first error; *stats counts what was
 * done until then. */
pc_status map_segments(model *m, head *h, split_plan *plan, int64_t first, int64_t end,
                       const map_config *cfg, map_emit_fn emit, void *ctx, map_stats *stats,
                       char *err, size_t errlen);

#endif
