/*
 * progress.h — progress of a run on rank 0: rows done, percent of the input bytes, rows per
 * second and the time left.
 *
 * On a terminal (tty = true) one line is redrawn in place with '\r', at most 5 times a
 * second:
 *   precast:   1234567 rows   45.2%   101645 rows/s   ETA 0:01:23
 * Otherwise (a log, cron, Slurm) one line every 10 seconds, the first 10 seconds in:
 *   precast: progress: 1234567 rows, 45.2% of 1.2 GiB, 101645 rows/s, ETA 0:01:23
 * ETA is the bytes left at the byte rate so far ("--" before any byte is done, or when the
 * total is 0). The percentage never exceeds 100.
 *
 * No threads and no clock of its own: the driver calls progress_update between pieces of
 * work with the counts so far (across all ranks, as far as rank 0 knows them) and the time
 * `now` in seconds from any monotonic clock (MPI_Wtime), so tests pass a fake clock.
 * Output errors are ignored: progress never fails a run. No MPI; one thread's.
 */
#ifndef PRECAST_PROGRESS_H
#define PRECAST_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/status.h"

typedef struct progress progress;

/* Starts measuring at `now`. out (usually stderr) is borrowed and must outlive the handle;
 * tty selects the in-place line (the driver passes isatty(fileno(out))). total_bytes <= 0
 * means unknown: no percentage, no ETA. Only fails for lack of memory (PC_ERR_INTERNAL;
 * *out_p is NULL). */
pc_status progress_create(FILE *out, int64_t total_bytes, bool tty, double now, progress **out_p,
                          char *err, size_t errlen);

/* Records the counts so far and prints if it is time to: on a tty when 0.2 s have passed
 * since the last drawing (the first update always draws), otherwise when 10 s have passed
 * since the last line (or since create). Counts may only grow; smaller ones are ignored. */
void progress_update(progress *p, int64_t rows_done, int64_t bytes_done, double now);

/* Ends the display and frees p: on a tty draws the final counts and ends the line, so that
 * what follows starts on a fresh line; otherwise prints nothing (the run's summary line
 * follows). Accepts NULL. */
void progress_finish(progress *p, int64_t rows_done, int64_t bytes_done, double now);

#endif
