/*
 * diff.h — tonight's table against the version it replaces: keys added and removed, the share
 * of keys whose top-1 class changed, and the predicted-class distribution before and after.
 *
 * Both versions are read in key order (table_scan) and merge-joined, so memory is bounded by
 * the number of distinct classes (capped at DIFF_MAX_CLASSES; the rest counted as "(other)"),
 * not by the table. A value's top-1 class is its JSON "label" (softmax_topk, sigmoid,
 * one_vs_all, graph heads); values without one (raw, embedding, f32) are compared as bytes,
 * so "changed" then means the value changed.
 *
 * Ownership: a table_diff owns its class labels; diff_free() releases them. No MPI.
 */
#ifndef PRECAST_DIFF_H
#define PRECAST_DIFF_H

#include <stdint.h>

#include "jobs/report.h"
#include "kernels/status.h"

#define DIFF_MAX_CLASSES 1000

typedef struct table_diff {
    run_report_diff report;   /* what the run report prints; points into this struct */
    run_report_class *classes;
    size_t *label_lens;       /* strlen of each class label: the lookup runs once per key */
    char previous[256];
} table_diff;

/* Diffs version `previous` of table_dir against the (unpublished) version in new_dir, which
 * holds its MANIFEST.json. On failure the diff is empty and freed. */
pc_status diff_versions(const char *table_dir, const char *previous, const char *new_dir, table_diff *out,
                        char *err, size_t errlen);

/* A key range [lo, hi), NULL for no bound (table_scan_set_range). */
typedef struct diff_range {
    const char *lo, *hi;
    size_t lo_len, hi_len;
} diff_range;

/* The same over the keys in range only (range NULL: all), so that ranks can each diff their
 * part of the key space and rank 0 merge the parts: a diff of a large table is then no longer
 * a serial scan on one rank while the others wait. */
pc_status diff_versions_range(const char *table_dir, const char *previous, const char *new_dir,
                              const diff_range *range, table_diff *out, char *err, size_t errlen);

/* An empty diff against `previous` (for merging into). */
pc_status diff_init(table_diff *out, const char *previous, char *err, size_t errlen);

/* A diff's counts and classes as bytes (*buf malloc'ed, the caller frees it), and the sum of
 * such a packed diff into another: the same counts a single diff over the union would give. */
pc_status diff_pack(const table_diff *d, char **buf, size_t *len, char *err, size_t errlen);
pc_status diff_merge_packed(table_diff *into, const char *buf, size_t len, char *err, size_t errlen);
/* The share of the previous version's keys that changed: removed, or top-1 changed (added keys
 * count against the new size). 0 when there was nothing before. */
double diff_changed_share(const table_diff *d);
void diff_free(table_diff *d);

#endif
