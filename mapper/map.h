/*
 * map.h — the map loop: rows of a rank's input segments → batches → forward pass → head →
 * (key, value) pairs handed to an emit callback.
 *
 * CSV input. For each file the loop reads the header once and maps columns by name: the id
 * column becomes the key (its bytes as they are); each model input is filled from its
 * binding's columns, in order:
 *   - a float32 input: one number per column;
 *   - an int64 input (ids for an embedding): one id per column, an integer, or a string
 *     hashed into hash_buckets with FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
 *     0x100000001b3, over the field's bytes) modulo hash_buckets;
 *   - an int64 input of width W bound to ONE column: a multi-valued column (a bag), ids
 *     separated by bag_separator ("12|845|3"), padded with pad_id up to W; more than W ids is
 *     a bad row.
 * An id < 0 or >= vocab (when vocab is set) is out of vocabulary: replaced by oov_bucket
 * (counted in oov_ids) or, when oov_bucket < 0, a bad row.
 * Without bindings, the model's only input (float32) takes `features` (default: every column
 * but the id, in header order).
 *
 * LIBSVM input (`id idx:val ...`): the model's only input is float32 of the file's width;
 * rows go to the model as a sparse (CSR) batch when the model can take one
 * (model_input_sparse_ok), else they are scattered into the dense input buffer.
 *
 * A file whose header lacks a column, or whose columns do not add up to an input's width, is
 * an error naming the file, the input and both numbers. A row with the wrong number of fields,
 * a feature that is not a finite number, a bad id, an empty key, a malformed record, or a model
 * output that is NaN or infinite is a bad row: with skip_bad_rows it is handed to the reject
 * callback and counted in rows_rejected; otherwise the map stops with PC_ERR_DATA naming file
 * and line.
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

typedef enum map_format { MAP_FORMAT_CSV = 0, MAP_FORMAT_LIBSVM } map_format;

/* Receives one bad row when bad rows are skipped: where it was (file index, 1-based line,
 * byte offset), a short reason code ("csv", "fields", "empty_id", "value", "output",
 * "libsvm"), the one-line message, and the row's raw bytes (NULL when the row was too long to
 * keep). A non-OK return stops the map loop. */
typedef pc_status (*map_reject_fn)(void *ctx, int32_t file, int64_t line, int64_t offset,
                                   const char *reason, const char *message, const char *raw,
                                   size_t raw_len, char *err, size_t errlen);

/* CSV columns feeding one model input. */
typedef struct map_binding {
    const char *input;             /* model input name */
    const char *const *columns;    /* CSV column names, in the input's element order */
    int64_t ncolumns;
    int64_t hash_buckets;          /* int64 inputs: 0 = integer ids, else hashed strings */
    int64_t vocab;                 /* int64 inputs: ids must be < vocab; 0 = unchecked */
} map_binding;

typedef struct map_config {
    map_format format;
    const char *id_column;         /* CSV: name of the key column; required */
    const map_binding *bindings;   /* CSV: one per model input, or NULL (single float input) */
    int nbindings;
    const char *const *features;   /* CSV without bindings: column names, or NULL: all but id */
    int64_t nfeatures;
    char bag_separator;            /* default '|' */
    int64_t pad_id;                /* default 0 */
    int64_t oov_bucket;            /* id for out-of-vocabulary ids; < 0 rejects the row */
    bool one_based;                /* LIBSVM: indices start at 1 */
    bool skip_bad_rows;            /* bad_rows = skip: a bad row goes to reject, the map goes on */
    map_reject_fn reject;          /* REQUIRED when skip_bad_rows */
    void *reject_ctx;
    /* Input drift (docs/DRIFT.md), CSV only: a COMPARE or PROFILE sketch (mapper/featstats.h)
     * whose columns are the model inputs' columns in input order — a float input's columns
     * are dense features, an int64 input's columns id columns (a bag column is one, each of
     * its ids a value) — or NULL.  Each batch is added just before the forward pass, so the
     * rows sketched are those the model sees (a row rejected for a bad model output is in
     * it).  Ids are keyed as featstats.h says: a hashed column by the FNV-1a 64 of its string,
     * an integer by its value before any oov replacement. */
    struct featstats *sketch;
    /* Output drift: a PROFILE sketch of one dense feature (the score: the largest value of
     * the first output, or a TopK graph's first value; NaN for an ArgMax graph) and one int id
     * column (the class: the arg-max, or the TopK graph's first index), or NULL. */
    struct featstats *output_sketch;
} map_config;

typedef struct map_stats {
    int64_t rows_in;       /* data records read */
    int64_t rows_emitted;  /* pairs handed to emit */
    int64_t rows_rejected; /* bad rows skipped (0 while bad_rows = fail) */
    int64_t oov_ids;       /* ids replaced by oov_bucket */
    int64_t forward_ns;    /* time spent in model_forward (the rest of the map is read+parse) */
} map_stats;

/* FNV-1a 64 of s, the documented hash of string ids. */
uint64_t map_hash_id(const char *s, size_t len);

/* Checks the bindings against the model before any row is read: every model input bound
 * once, element types, widths of float bindings. PC_ERR_CONFIG naming the input. */
pc_status map_check_config(const model *m, const map_config *cfg, char *err, size_t errlen);

/* Builds the head for the model's outputs (the first, and the second for a TopK graph). */
pc_status map_head_create(const model *m, const head_config *cfg, head **out, char *err, size_t errlen);

/* The map loop as a handle, so that a driver can feed it segments as they are handed out.
 * map_open borrows m, h, plan, cfg and stats until map_close/map_abort; rows are batched
 * across segments. map_segment maps one segment (an index into split_plan_segments(plan);
 * REQUIRES split_resolve() done). map_close runs the last partial batch and frees the
 * handle; map_abort frees it without running anything (after a failure). */
typedef struct mapper mapper;
pc_status map_open(model *m, head *h, split_plan *plan, const map_config *cfg, map_emit_fn emit,
                   void *ctx, map_stats *stats, mapper **out, char *err, size_t errlen);
pc_status map_segment(mapper *mp, int64_t index, char *err, size_t errlen);
pc_status map_close(mapper *mp, char *err, size_t errlen);
/* Runs the partial batch now, so that everything read so far has been emitted (a segment's
 * outputs end with the segment: checkpoints need that). */
pc_status map_flush(mapper *mp, char *err, size_t errlen);
void map_abort(mapper *mp); /* accepts NULL */

/* Maps the plan's first rows (at least max_rows, or all there are), in segment order, through
 * the model and head, handing pairs to emit: how `run --check` proves that the inputs parse.
 * Not collective. */
pc_status map_probe(model *m, head *h, split_plan *plan, const map_config *cfg, int64_t max_rows,
                    map_emit_fn emit, void *ctx, map_stats *stats, char *err, size_t errlen);


#endif
