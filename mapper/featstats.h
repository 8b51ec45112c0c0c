/*
 * featstats.h — feature statistics: a training profile of the model's input columns, and the
 * run-time sketch that compares tonight's rows with it (input drift, issue 10).
 *
 * A featstats holds, for a fixed list of DENSE feature columns (float values) and ID columns
 * (categorical ids, integers or strings):
 *   dense: count (values seen, missing included), missing (NaN or +-Inf), exact mean and std,
 *          min and max of the finite values, and a FEATSTATS_BINS-bin equal-width histogram
 *          on [lo, hi] with counts of the values below lo and above hi;
 *   ids:   count of ids, the number of distinct ids, the FEATSTATS_TOP_IDS most frequent with
 *          their shares, and the vocabulary (every distinct id, at most FEATSTATS_VOCAB_MAX).
 *
 * Two modes:
 *   PROFILE (training data, `precast train`, `precast stats`): two passes over the same rows.
 *     Pass 1 (featstats_add_*) gathers counts, moments, min/max and the id counts; then
 *     featstats_profile_pass2() agrees on the global min/max (lo = min, hi = max) and every
 *     later featstats_add_dense() call fills only the histogram: feed the same rows again.
 *     (A feature given a fixed range with featstats_set_range() fills its histogram in pass 1;
 *     if every dense feature has one, pass 2 may be skipped.) ID columns are only counted in
 *     pass 1.
 *   COMPARE (run time, `precast run`): made from a profile (featstats_create_compare); the bin
 *     edges are the profile's, so one pass suffices.  To stay cheap (one counter per value)
 *     it keeps only count, missing, the bins and below/above — no mean, std, min or max
 *     (featstats_dense_get gives NaN for them); ids are looked up in the profile's
 *     vocabulary and counted as seen or unseen (top ids and vocabulary are not kept).
 *
 * Bins: a finite x < lo counts in `below`, x > hi in `above`; otherwise its bin is
 * min(FEATSTATS_BINS-1, (int)((x - lo) * (FEATSTATS_BINS / (hi - lo)))) computed in double,
 * and bin 0 when hi == lo.  The rule is one function of (x, lo, hi), and lo and hi round-trip
 * exactly through the JSON file (%.17g), so a compare sketch of the training rows reproduces
 * the profile's histogram bin for bin.
 *
 * Ids are keyed by 64 bits: an integer id by its value (int64 as uint64), a string id by its
 * FNV-1a 64 hash (the same function as map_hash_id, computed over the full string — never a
 * hash_buckets remainder), so a hashed column's vocabulary does not depend on the model's
 * bucket count.  In the JSON file every id is written as a string: decimal for `int` columns,
 * the id itself for `string` columns.
 *
 * Merging is exact: sums are kept as integer accumulators per float32 exponent (every float32
 * is an integer times 2^(e-150)), counts as int64, min/max as doubles; featstats_merge() adds
 * them with MPI reductions, so the merged statistics — and the JSON bytes featstats_write_json
 * produces from them — are identical whatever the number of ranks and the split of the rows.
 * Limits: 2^39 values per feature per exponent per rank (about 5e11); at most
 * FEATSTATS_MAX_DISTINCT distinct ids per column per rank are counted (later new ids add to
 * `count` and to `overflow` only; the file then says "vocab_complete": false).
 *
 * Ownership: a featstats copies the names it is given; featstats_free() releases everything.
 * Names returned by the accessors stay valid until featstats_free(); the top ids of
 * featstats_ids_get until the next featstats_ids_get of that column, add, merge or free.  Not
 * thread safe; one featstats per rank.  MPI: only featstats_profile_pass2 and featstats_merge talk
 * MPI, and they are collective over the communicator they are given.
 */
#ifndef PRECAST_FEATSTATS_H
#define PRECAST_FEATSTATS_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

#define FEATSTATS_FORMAT_VERSION 1        /* "version" in the JSON file */
#define FEATSTATS_BINS 20                 /* histogram bins between lo and hi */
#define FEATSTATS_TOP_IDS 10              /* most frequent ids listed with their shares */
#define FEATSTATS_VOCAB_MAX 100000        /* ids written to an id column's vocabulary */
#define FEATSTATS_MAX_DISTINCT 1000000    /* distinct ids counted per column per rank */

typedef enum featstats_mode { FEATSTATS_PROFILE = 0, FEATSTATS_COMPARE } featstats_mode;
typedef enum featstats_id_kind { FEATSTATS_ID_INT = 0, FEATSTATS_ID_STRING } featstats_id_kind;

typedef struct featstats featstats;

/* ---- creating ---- */

/* A PROFILE sketch for ndense dense feature names and nids id column names (with their kinds;
 * kinds may be NULL: all FEATSTATS_ID_INT).  Either count may be 0.  Names must be non-empty
 * and unique within their list (PC_ERR_CONFIG naming the name).  On failure *out is NULL. */
pc_status featstats_create(const char *const *dense, int64_t ndense, const char *const *ids,
                           const featstats_id_kind *kinds, int64_t nids, featstats **out, char *err,
                           size_t errlen);

/* Fixes the histogram range of dense feature i of a PROFILE sketch to [lo, hi] (lo <= hi,
 * finite) before any row is added; its histogram then fills in pass 1.  Used for model scores
 * (range [0, 1]).  PC_ERR_USAGE if rows were already added or the range is bad. */
pc_status featstats_set_range(featstats *fs, int64_t i, double lo, double hi, char *err, size_t errlen);

/* A COMPARE sketch with the bin edges and vocabularies of `reference` (a profile, from
 * featstats_read_json or a finished featstats_create sketch), which it borrows: keep reference
 * alive until this sketch is freed.  Its columns are the dense features and id columns named
 * (in that order; dense / ids NULL: all of the reference's, in its order).  A column the
 * reference lacks is kept but not tracked (`tracked` false in featstats_dense_get /
 * featstats_ids_get: its counts mean nothing); none of the columns in the reference ->
 * PC_ERR_CONFIG. */
pc_status featstats_create_compare(const featstats *reference, const char *const *dense, int64_t ndense,
                                   const char *const *ids, int64_t nids, featstats **out, char *err,
                                   size_t errlen);

void featstats_free(featstats *fs); /* accepts NULL */

/* ---- adding rows ---- */

/* Adds a block of rows to dense features first .. first+width-1: x is rows x width, row major
 * (x[r * width + j] is feature first + j of row r).  NaN and +-Inf count as missing.
 * REQUIRES: 0 <= first, first + width <= featstats_dense_count(fs). */
void featstats_add_dense(featstats *fs, int64_t first, const float *x, int64_t rows, int64_t width);

/* Adds n ids of id column col, keys[k * stride] for k in [0, n): integer ids as
 * (uint64_t)value, string ids as featstats_id_key(). In PROFILE mode for a STRING column this
 * records no spelling (the id is written as "#<hex key>"): use featstats_add_ids_str there.
 * Out of memory while growing the id table in PROFILE mode -> PC_ERR_INTERNAL. */
pc_status featstats_add_id_keys(featstats *fs, int64_t col, const uint64_t *keys, int64_t n, int64_t stride,
                                char *err, size_t errlen);

/* Adds n integer ids of id column col. */
pc_status featstats_add_ids_i64(featstats *fs, int64_t col, const int64_t *ids, int64_t n, char *err,
                                size_t errlen);

/* Adds n string ids of id column col (ids[k], lens[k] bytes each; need not be NUL-terminated;
 * the JSON file keeps their spelling, which must be valid UTF-8 — else the id is written as
 * "#<hex key>"). */
pc_status featstats_add_ids_str(featstats *fs, int64_t col, const char *const *ids, const size_t *lens,
                                int64_t n, char *err, size_t errlen);

/* PROFILE, pass 1: remembers the spelling of string id `key` of column col (the first given
 * wins), so that ids added by key alone (featstats_add_id_keys: the map loop) are written
 * with it; spellings stay on their rank until featstats_merge, which must then be called
 * (also with one process) before writing.  A lookup once the key is known.  No-op in COMPARE
 * mode or pass 2.  Out of memory -> PC_ERR_INTERNAL. */
pc_status featstats_note_spelling(featstats *fs, int64_t col, uint64_t key, const char *s, size_t len, char *err,
                                  size_t errlen);

/* The 64-bit key of a string id: FNV-1a 64 over its bytes (= map_hash_id). */
uint64_t featstats_id_key(const char *s, size_t len);

/* ---- passes and merging ---- */

/* PROFILE: ends pass 1.  Collective over comm (MPI_COMM_SELF for one process): every rank gets
 * the global min and max of each dense feature as its histogram range (unless fixed), and
 * later featstats_add_dense calls fill the histogram only.  PC_ERR_USAGE in COMPARE mode or if
 * called twice. */
pc_status featstats_profile_pass2(featstats *fs, MPI_Comm comm, char *err, size_t errlen);

/* Sums every rank's statistics into rank 0's fs (MPI_Reduce of the integer accumulators,
 * MIN/MAX of min/max; the id tables are gathered to rank 0).  Collective over comm; every rank
 * must hold a sketch of the same columns and mode (checked: PC_ERR_INTERNAL otherwise, on
 * every rank).  Afterwards rank 0 holds the totals and the other ranks' sketches are reset to
 * empty.  A failure on any rank is returned on every rank. */
pc_status featstats_merge(featstats *fs, MPI_Comm comm, char *err, size_t errlen);

/* ---- reading the results ---- */

featstats_mode featstats_mode_of(const featstats *fs);
int64_t featstats_dense_count(const featstats *fs);
int64_t featstats_id_count(const featstats *fs);
/* Index of the dense feature / id column called name, or -1. */
int64_t featstats_dense_find(const featstats *fs, const char *name);
int64_t featstats_id_find(const featstats *fs, const char *name);

typedef struct featstats_dense {
    const char *name;
    bool tracked;                  /* false: a COMPARE column its reference lacks */
    int64_t count;                 /* values seen, missing included */
    int64_t missing;               /* NaN or +-Inf */
    double mean, std;              /* of the finite values (population std); 0 when none;
                                      NaN in COMPARE mode */
    double min, max;               /* of the finite values; NaN when none or in COMPARE mode */
    double lo, hi;                 /* histogram range (NaN in pass 1 of a profile) */
    int64_t bins[FEATSTATS_BINS];
    int64_t below, above;          /* finite values < lo, > hi */
} featstats_dense;

typedef struct featstats_ids {
    const char *name;
    bool tracked;                  /* false: a COMPARE column its reference lacks */
    featstats_id_kind kind;
    int64_t count;                 /* ids seen */
    int64_t distinct;              /* PROFILE: distinct ids counted (see vocab_complete) */
    bool vocab_complete;           /* PROFILE: every distinct id is in the vocabulary */
    int64_t unseen;                /* COMPARE: ids not in the reference's vocabulary */
    int64_t ntop;                  /* PROFILE: entries in top / top_counts (<= FEATSTATS_TOP_IDS) */
    const char *const *top;        /* most frequent ids (ties: smaller key first), spelled */
    const int64_t *top_counts;
} featstats_ids;

/* Fills *out with dense feature i / id column i (REQUIRES: i in range).  Mean and std are
 * computed from the exact accumulators in a fixed order, so they are a function of the
 * multiset of values only.  The pointers in *out are borrowed (see the top of this file). */
void featstats_dense_get(const featstats *fs, int64_t i, featstats_dense *out);
void featstats_ids_get(const featstats *fs, int64_t i, featstats_ids *out);

/* PROFILE: id column col's ids and counts, most frequent first (ties: smaller key first), as
 * two malloc'd arrays of *n entries the caller frees (NULL, NULL, 0 for a COMPARE sketch).  For
 * a sketch read from a file: the vocabulary and its counts. */
pc_status featstats_id_entries(const featstats *fs, int64_t col, uint64_t **keys, int64_t **counts, int64_t *n,
                               char *err, size_t errlen);

/* True if key is in id column col's vocabulary (PROFILE sketches only; false otherwise). */
bool featstats_vocab_has(const featstats *fs, int64_t col, uint64_t key);

/* ---- the JSON file ---- */

/* Writes a PROFILE sketch (after pass 2, or pass 1 if every range is fixed) to path, via a
 * temporary file renamed into place.  Format (docs/DRIFT.md):
 *   {"format": "precast-featstats", "version": 1, "bins": 20,
 *    "dense": [{"name", "count", "missing", "mean", "std", "min", "max", "lo", "hi",
 *               "hist": [20 counts], "below", "above"}...],
 *    "ids": [{"name", "kind": "int"|"string", "count", "distinct", "vocab_complete",
 *             "top": [["id", count, share]...], "vocab": ["id"...], "counts": [count...]}...]}
 * (share = count / the column's count, 6 digits; the reader checks its type only)
 * The output is a function of the statistics only (fixed key order, %.17g doubles, vocabulary
 * sorted by count then key), so identical statistics give identical bytes.
 * PC_ERR_USAGE in COMPARE mode or before the histogram is complete; PC_ERR_CANTCREAT /
 * PC_ERR_IO naming the path. */
pc_status featstats_write_json(const featstats *fs, const char *path, char *err, size_t errlen);

/* Reads a stats file into a PROFILE sketch that can serve as a compare reference (*out NULL
 * on failure).  Strict: unknown format or version, missing or mistyped fields, a histogram of
 * the wrong length, negative counts, lo > hi, duplicate names are PC_ERR_CONFIG with a message
 * "PATH: what" (and the JSON line and column for syntax errors); an unreadable file is
 * PC_ERR_NOINPUT naming the path. */
pc_status featstats_read_json(const char *path, featstats **out, char *err, size_t errlen);

#endif
