/*
 * report.h — what a run did, for people and for monitoring: the run report (JSON) and the
 * Prometheus textfile.
 *
 * The driver fills a run_report (plain data: it borrows every string and array, nothing is
 * freed here) at the end of a run, whatever its outcome, and hands it to run_report_write and
 * metrics_textfile_write. Both write a temporary file beside the target (PATH.tmp), fsync it,
 * rename it over PATH and fsync the directory, so a reader sees the previous file or the new
 * one, never a part. The fixed .tmp name assumes one writer per path: the job's lock holder.
 * A failure leaves PATH as it was and removes PATH.tmp, except a failing fsync of the
 * directory, after the rename: PATH then has the new content, not yet durable.
 *
 * Report (one JSON object; numbers of rows and bytes are integers, seconds are decimals):
 *   {"job":"nightly","job_file":"/etc/precast/nightly.ini","host":"node7","ranks":4,
 *    "start":"2026-11-26T02:00:03Z","end":"2026-11-26T02:09:41Z","duration_seconds":578.2,
 *    "exit_status":0,"status":"ok","message":"",
 *    "version":"v20261126T020003Z-nightly",          (null when nothing was published)
 *    "seconds":{"setup":..,"map":..,"forward":..,"shuffle":..,"write":..,"publish":..},
 *    "rows_read":..,"rows_rejected":..,"rows_written":..,"rows_per_second":..,
 *    "segments":..,"input_bytes":..,"bytes_read":..,"spilled_bytes":..,
 *    "per_rank":[{"rank":0,"host":"node7","segments":..,"rows_read":..,"rows_rejected":..,
 *                 "rows_written":..,"bytes_read":..,"spilled_bytes":..,"seconds":{...}},...],
 *    "diff":null | {"previous_version":"v..","keys_before":..,"keys_after":..,
 *                   "keys_added":..,"keys_removed":..,"keys_compared":..,
 *                   "top1_changed":..,"top1_changed_share":0.0123,"blocked":false,
 *                   "classes":[{"label":"two","before":..,"after":..},...]}}
 * Totals (rows_*, segments, bytes_read, spilled_bytes) are the sums of per_rank;
 * rows_per_second is rows_read / duration_seconds. A number that is not finite is null.
 *
 * Prometheus textfile (node_exporter --collector.textfile.directory; one file per job, whose
 * name ends in .prom), every sample labelled {job="NAME"}:
 *   precast_last_success_timestamp_seconds  gauge    end of the last run that exited 0
 *                                                    (kept from the previous file on failure;
 *                                                    0 if the job never succeeded)
 *   precast_last_run_timestamp_seconds      gauge    end of the last run, whatever its outcome
 *   precast_last_exit_status                gauge    its exit status (0, 65, 75, ...)
 *   precast_duration_seconds                gauge    its duration
 *   precast_rows_total                      counter  input rows read, summed over runs
 *   precast_rejected_rows_total             counter  rows rejected, summed over runs
 * The counters carry on from the previous file; a missing or unreadable previous file starts
 * them (and last_success) from 0, as a counter reset, which Prometheus' rate() handles.
 *
 * No MPI and no global state: rank 0 calls these after gathering the per-rank rows.
 */
#ifndef PRECAST_REPORT_H
#define PRECAST_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

/* Seconds in each stage (map includes forward: map - forward is read + parse). */
typedef struct run_report_seconds {
    double setup, map, forward, shuffle, write, publish;
} run_report_seconds;

typedef struct run_report_rank {
    const char *host;        /* may be NULL (then omitted) */
    int64_t segments;        /* input segments this rank mapped */
    int64_t rows_read;
    int64_t rows_rejected;
    int64_t rows_written;    /* pairs this rank wrote to its shard (or sent to rank 0) */
    int64_t bytes_read;      /* input bytes of the segments it mapped */
    int64_t spilled_bytes;
    run_report_seconds seconds;
} run_report_rank;

typedef struct run_report_class {
    const char *label;
    int64_t before, after;   /* keys whose top-1 class is label, in the previous / new version */
} run_report_class;

/* The new version against the previous one. */
typedef struct run_report_diff {
    const char *previous_version;
    int64_t keys_before, keys_after;
    int64_t keys_added, keys_removed;
    int64_t keys_compared;   /* keys in both versions */
    int64_t top1_changed;    /* of keys_compared, those whose top-1 class changed */
    bool blocked;            /* the change exceeded output.max_changed: not published */
    const run_report_class *classes;
    int64_t nclasses;
} run_report_diff;

typedef struct run_report {
    const char *job;         /* required */
    const char *job_file;    /* may be NULL */
    const char *host;        /* rank 0's; may be NULL */
    double start, end;       /* wall clock, seconds since the epoch (run_report_now()) */
    int exit_status;         /* the pc_status the run returns; 0 = published */
    const char *message;     /* the error message, or NULL / "" on success */
    const char *version;     /* published version, or NULL */
    run_report_seconds seconds; /* the job's: rank 0's wall clock per stage (stages end
                                   together, at a collective) */
    int64_t input_bytes;     /* size of the inputs on disk (compressed size for .gz) */
    const run_report_rank *ranks; /* nranks rows, rank order; may be NULL when nranks is 0
                                     (a run that failed before the ranks reported) */
    int nranks;
    const run_report_diff *diff; /* NULL: "diff": null */
    const char *drift_json;  /* input drift (docs/DRIFT.md): a JSON value written as "drift"
                                after "diff"; NULL: no "drift" key (input.drift = off) */
    const char *drift_metrics; /* Prometheus samples (whole lines) appended to the textfile
                                  (precast_feature_psi...), or NULL */
} run_report;

/* Seconds since the epoch, from CLOCK_REALTIME (MPI_Wtime has no defined epoch). */
double run_report_now(void);

/* Formats t (seconds since the epoch) as ISO 8601 UTC, "2026-11-26T02:00:03Z", into out;
 * returns out. */
char *run_report_iso8601(double t, char out[32]);

/* Writes r as JSON to path, atomically (above). Errors: PC_ERR_CANTCREAT (the temporary
 * cannot be created, or the rename fails), PC_ERR_IO (a write or fsync fails),
 * PC_ERR_INTERNAL (out of memory, or r->job is NULL). On error path is unchanged (but see
 * the directory fsync above). */
pc_status run_report_write(const char *path, const run_report *r, char *err, size_t errlen);

/* Writes the Prometheus textfile for r->job to path, atomically, reading the previous path
 * (if any) for the counters and the last success. Errors as run_report_write. */
pc_status metrics_textfile_write(const char *path, const run_report *r, char *err, size_t errlen);

#endif
