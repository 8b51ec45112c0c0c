#include "jobs/progress.h"

#include <stdlib.h>
#include <string.h>

/* Seconds between drawings: on a terminal, fast enough to look live without costing the
 * job; in a log, few enough lines to read. */
#define PROGRESS_TTY_INTERVAL 0.2
#define PROGRESS_LOG_INTERVAL 10.0

struct progress {
    FILE *out;
    int64_t total_bytes;
    bool tty;
    double start;
    double last;         /* time of the last drawing (tty) or line; start before any */
    bool drawn;          /* tty: a line is on the screen */
    size_t drawn_len;    /* its length, to blank what a shorter line leaves */
    int64_t rows, bytes;
};

pc_status progress_create(FILE *out, int64_t total_bytes, bool tty, double now, progress **out_p,
                          char *err, size_t errlen)
{
    *out_p = NULL;
    progress *p = calloc(1, sizeof *p);
    if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the progress display");
    p->out = out;
    p->total_bytes = total_bytes;
    p->tty = tty;
    p->start = p->last = now;
    *out_p = p;
    return PC_OK;
}

/* "1:02:03" for h:mm:ss, "--" when unknown. */
static void format_eta(char *out, size_t cap, const progress *p, double now)
{
    double elapsed = now - p->start;
    if (p->total_bytes <= 0 || p->bytes <= 0 || elapsed <= 0) {
        snprintf(out, cap, "--");
        return;
    }
    int64_t left = p->total_bytes > p->bytes ? p->total_bytes - p->bytes : 0;
    double eta = (double)left / ((double)p->bytes / elapsed);
    if (!(eta < 1e8)) {
        snprintf(out, cap, "--");
        return;
    }
    long s = (long)(eta + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* Tenths of a percent of the input bytes done, at most 1000. */
static int percent_tenths(const progress *p)
{
    double pc = 1000.0 * (double)p->bytes / (double)p->total_bytes;
    return pc >= 1000.0 ? 1000 : (int)pc;
}

static void format_size(char *out, size_t cap, int64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) v /= 1024.0, u++;
    if (u == 0) snprintf(out, cap, "%lld B", (long long)bytes);
    else snprintf(out, cap, "%.1f %s", v, units[u]);
}

static void draw(progress *p, double now)
{
    char eta[32], pc[64] = "", line[256];
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->rows / elapsed : 0.0;
    format_eta(eta, sizeof eta, p, now);
    if (p->tty) {
        if (p->total_bytes > 0) {
            int t = percent_tenths(p);
            snprintf(pc, sizeof pc, "   %3d.%d%%", t / 10, t % 10);
        }
        int n = snprintf(line, sizeof line, "precast: %11lld rows%s   %9.0f rows/s   ETA %s", (long long)p->rows,
                         pc, rate, eta);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        /* Spaces over what is left of a longer previous line, no terminal escapes. */
        fprintf(p->out, "\r%s%*s", line, (int)(p->drawn_len > len ? p->drawn_len - len : 0), "");
        p->drawn = true;
        p->drawn_len = len;
    } else {
        if (p->total_bytes > 0) {
            char size[24];
            int t = percent_tenths(p);
            format_size(size, sizeof size, p->total_bytes);
            snprintf(pc, sizeof pc, ", %d.%d%% of %s", t / 10, t % 10, size);
        }
        fprintf(p->out, "precast: progress: %lld rows%s, %.0f rows/s, ETA %s\n", (long long)p->rows, pc, rate,
                eta);
    }
    fflush(p->out);
    p->last = now;
}

static void record(progress *p, int64_t rows_done, int64_t bytes_done)
{
    if (rows_done > p->rows) p->rows = rows_done;
    if (bytes_done > p->bytes) p->bytes = bytes_done;
}

void progress_update(progress *p, int64_t rows_done, int64_t bytes_done, double now)
{
    record(p, rows_done, bytes_done);
    if (p->tty ? (!p->drawn || now - p->last >= PROGRESS_TTY_INTERVAL) : now - p->last >= PROGRESS_LOG_INTERVAL)
        draw(p, now);
}

void progress_finish(progress *p, int64_t rows_done, int64_t bytes_done, double now)
{
    if (p == NULL) return;
    record(p, rows_done, bytes_done);
    if (p->tty) {
        draw(p, now);
        fputc('\n', p->out);
        fflush(p->out);
    }
    free(p);
}
