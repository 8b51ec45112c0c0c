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
    char previous[256];
} table_diff;

/* Diffs version `previous` of table_dir against the (unpublished) version in new_dir, which
 * holds its MANIFEST.json. On failure the diff is empty and freed. */
pc_status diff_versions(const char *table_dir, const char *previous, const char *new_dir, table_diff *out,
                        char *err, size_t errlen);
/* The share of the previous version's keys that changed: removed, or top-1 changed (added keys
 * count against the new size). 0 when there was nothing before. */
double diff_changed_share(const table_diff *d);
void diff_free(table_diff *d);

#endif
