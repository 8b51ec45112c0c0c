#include "jobs/report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mapper/head.h"

double run_report_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *run_report_iso8601(double t, char out[32])
{
    time_t s = (time_t)floor(t);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
    return out;
}

/* ---- atomic replacement ---------------------------------------------------------------- */

static pc_status fsync_parent(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return pc_err(err, errlen, PC_ERR_IO, "%s: open: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) return pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", dir, strerror(e));
    return PC_OK;
}

/* path.tmp, fsync, rename over path, fsync of the directory. */
static pc_status write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot create: %s", tmp, strerror(errno));
    pc_status s = PC_OK;
    for (size_t done = 0; done < len && s == PC_OK;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) s = pc_err(err, errlen, PC_ERR_IO, "%s: write: %s", tmp, strerror(w < 0 ? errno : EIO));
        else done += (size_t)w;
    }
    if (s == PC_OK && fsync(fd) != 0) s = pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && s == PC_OK) s = pc_err(err, errlen, PC_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (s == PC_OK && rename(tmp, path) != 0)
        s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: rename to %s: %s", tmp, path, strerror(errno));
    if (s != PC_OK) {
        unlink(tmp);
        return s;
    }
    return fsync_parent(path, err, errlen);
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* A JSON string literal, or null for NULL. */
static void put_str(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    size_t len = strlen(s);
    char small[256];
    size_t need = json_quote(NULL, 0, s, len) + 1;
    char *q = need <= sizeof small ? small : malloc(need);
    if (q == NULL) {
        fputs("\"(out of memory)\"", f);
        return;
    }
    json_quote(q, need, s, len);
    fputs(q, f);
    if (q != small) free(q);
}

static void put_num(FILE *f, double v, const char *fmt)
{
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

static void put_seconds(FILE *f, const run_report_seconds *s)
{
    const struct { const char *name; double v; } fields[] = {
        {"setup", s->setup}, {"map", s->map}, {"forward", s->forward},
        {"shuffle", s->shuffle}, {"write", s->write}, {"publish", s->publish}};
    fputc('{', f);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", fields[i].name);
        put_num(f, fields[i].v, "%.3f");
    }
    fputc('}', f);
}

static void put_diff(FILE *f, const run_report_diff *d)
{
    if (d == NULL) {
        fputs("null", f);
        return;
    }
    fputs("{\"previous_version\":", f);
    put_str(f, d->previous_version);
    fprintf(f, ",\"keys_before\":%lld,\"keys_after\":%lld,\"keys_added\":%lld,\"keys_removed\":%lld,"
               "\"keys_compared\":%lld,\"top1_changed\":%lld,\"top1_changed_share\":",
            (long long)d->keys_before, (long long)d->keys_after, (long long)d->keys_added,
            (long long)d->keys_removed, (long long)d->keys_compared, (long long)d->top1_changed);
    put_num(f, d->keys_compared > 0 ? (double)d->top1_changed / (double)d->keys_compared : 0.0, "%.6g");
    fprintf(f, ",\"blocked\":%s,\"classes\":[", d->blocked ? "true" : "false");
    for (int64_t i = 0; i < d->nclasses; i++) {
        fputs(i ? ",{\"label\":" : "{\"label\":", f);
        put_str(f, d->classes[i].label);
        fprintf(f, ",\"before\":%lld,\"after\":%lld}", (long long)d->classes[i].before,
                (long long)d->classes[i].after);
    }
    fputs("]}", f);
}

static void report_json(FILE *f, const run_report *r)
{
    run_report_rank sum = {0};
    for (int i = 0; i < r->nranks; i++) {
        sum.segments += r->ranks[i].segments;
        sum.rows_read += r->ranks[i].rows_read;
        sum.rows_rejected += r->ranks[i].rows_rejected;
        sum.rows_written += r->ranks[i].rows_written;
        sum.bytes_read += r->ranks[i].bytes_read;
        sum.spilled_bytes += r->ranks[i].spilled_bytes;
    }
    double duration = r->end - r->start;
    char t0[32], t1[32];
    fputs("{\"job\":", f);
    put_str(f, r->job);
    fputs(",\"job_file\":", f);
    put_str(f, r->job_file);
    fputs(",\"host\":", f);
    put_str(f, r->host);
    fprintf(f, ",\"ranks\":%d,\"start\":\"%s\",\"end\":\"%s\",\"duration_seconds\":", r->nranks,
            run_report_iso8601(r->start, t0), run_report_iso8601(r->end, t1));
    put_num(f, duration, "%.3f");
    fprintf(f, ",\"exit_status\":%d,\"status\":", r->exit_status);
    put_str(f, pc_status_str((pc_status)r->exit_status));
    fputs(",\"message\":", f);
    put_str(f, r->message != NULL ? r->message : "");
    fputs(",\"version\":", f);
    put_str(f, r->version != NULL && r->version[0] != '\0' ? r->version : NULL);
    fputs(",\n\"seconds\":", f);
    put_seconds(f, &r->seconds);
    fprintf(f, ",\n\"rows_read\":%lld,\"rows_rejected\":%lld,\"rows_written\":%lld,\"rows_per_second\":",
            (long long)sum.rows_read, (long long)sum.rows_rejected, (long long)sum.rows_written);
    put_num(f, duration > 0 ? (double)sum.rows_read / duration : 0.0, "%.1f");
    fprintf(f, ",\"segments\":%lld,\"input_bytes\":%lld,\"bytes_read\":%lld,\"spilled_bytes\":%lld,\n\"per_rank\":[",
            (long long)sum.segments, (long long)r->input_bytes, (long long)sum.bytes_read,
            (long long)sum.spilled_bytes);
    for (int i = 0; i < r->nranks; i++) {
        const run_report_rank *k = &r->ranks[i];
        fprintf(f, "%s\n {\"rank\":%d,", i ? "," : "", i);
        if (k->host != NULL) {
            fputs("\"host\":", f);
            put_str(f, k->host);
            fputc(',', f);
        }
        fprintf(f, "\"segments\":%lld,\"rows_read\":%lld,\"rows_rejected\":%lld,\"rows_written\":%lld,"
                   "\"bytes_read\":%lld,\"spilled_bytes\":%lld,\"seconds\":",
                (long long)k->segments, (long long)k->rows_read, (long long)k->rows_rejected,
                (long long)k->rows_written, (long long)k->bytes_read, (long long)k->spilled_bytes);
        put_seconds(f, &k->seconds);
        fputc('}', f);
    }
    fputs("],\n\"diff\":", f);
    put_diff(f, r->diff);
    if (r->drift_json != NULL) {
        fputs(",\n\"drift\":", f);
        fputs(r->drift_json, f);
    }
    fputs("}\n", f);
}

/* Builds a document with fn into memory, then replaces path with it. */
static pc_status write_built(const char *path, void (*fn)(FILE *, const void *), const void *arg, char *err,
                             size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    fn(f, arg);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    pc_status s = write_atomic(path, buf, len, err, errlen);
    free(buf);
    return s;
}

static void report_json_fn(FILE *f, const void *r)
{
    report_json(f, r);
}

pc_status run_report_write(const char *path, const run_report *r, char *err, size_t errlen)
{
    if (r->job == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: run report without a job name", path);
    return write_built(path, report_json_fn, r, err, errlen);
}

/* ---- Prometheus textfile ------------------------------------------------------------------ */

typedef struct metrics_doc {
    const run_report *r;
    char label[1024];          /* {job="..."} with the value escaped */
    double last_success;
    int64_t rows, rejected;    /* counters, this run included */
} metrics_doc;

/* {job="NAME"}: backslash, double quote and newline escaped as the exposition format says. */
static bool make_label(char *out, size_t cap, const char *job)
{
    size_t n = 0;
    const char *head = "{job=\"";
    for (const char *p = head; *p; p++) out[n++] = *p;
    for (const char *p = job; *p; p++) {
        if (n + 4 >= cap) return false;
        if (*p == '\\' || *p == '"') out[n++] = '\\', out[n++] = *p;
        else if (*p == '\n') out[n++] = '\\', out[n++] = 'n';
        else out[n++] = *p;
    }
    if (n + 3 > cap) return false;
    out[n++] = '"';
    out[n++] = '}';
    out[n] = '\0';
    return true;
}

/* Reads "NAME{job="J"} VALUE" samples of the previous file, if any; anything it cannot read
 * is left at its default. */
static void read_previous(const char *path, metrics_doc *d, double *prev_rows, double *prev_rejected)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    static const char *const names[] = {"precast_last_success_timestamp_seconds", "precast_rows_total",
                                        "precast_rejected_rows_total"};
    double *dest[] = {&d->last_success, prev_rows, prev_rejected};
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        for (int i = 0; i < 3; i++) {
            size_t nl = strlen(names[i]), ll = strlen(d->label);
            if (strncmp(line, names[i], nl) != 0 || strncmp(line + nl, d->label, ll) != 0 || line[nl + ll] != ' ')
                continue;
            char *end;
            double v = strtod(line + nl + ll + 1, &end);
            if (end != line + nl + ll + 1 && isfinite(v) && v >= 0) *dest[i] = v;
        }
    }
    free(line);
    fclose(f);
}

static void metrics_text(FILE *f, const void *arg)
{
    const metrics_doc *d = arg;
    const char *l = d->label;
    fprintf(f,
            "# HELP precast_last_success_timestamp_seconds End of the last run that published a version (0: never).\n"
            "# TYPE precast_last_success_timestamp_seconds gauge\n"
            "precast_last_success_timestamp_seconds%s %.3f\n"
            "# HELP precast_last_run_timestamp_seconds End of the last run, whatever its outcome.\n"
            "# TYPE precast_last_run_timestamp_seconds gauge\n"
            "precast_last_run_timestamp_seconds%s %.3f\n"
            "# HELP precast_last_exit_status Exit status of the last run (0 published, see README).\n"
            "# TYPE precast_last_exit_status gauge\n"
            "precast_last_exit_status%s %d\n"
            "# HELP precast_duration_seconds Duration of the last run.\n"
            "# TYPE precast_duration_seconds gauge\n"
            "precast_duration_seconds%s %.3f\n"
            "# HELP precast_rows_total Input rows read, over all runs.\n"
            "# TYPE precast_rows_total counter\n"
            "precast_rows_total%s %lld\n"
            "# HELP precast_rejected_rows_total Input rows rejected, over all runs.\n"
            "# TYPE precast_rejected_rows_total counter\n"
            "precast_rejected_rows_total%s %lld\n",
            l, d->last_success, l, d->r->end, l, d->r->exit_status, l,
            isfinite(d->r->end - d->r->start) ? d->r->end - d->r->start : 0.0, l, (long long)d->rows, l,
            (long long)d->rejected);
    if (d->r->drift_metrics != NULL) fputs(d->r->drift_metrics, f);
}

pc_status metrics_textfile_write(const char *path, const run_report *r, char *err, size_t errlen)
{
    if (r->job == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: metrics without a job name", path);
    metrics_doc d = {.r = r};
    if (!make_label(d.label, sizeof d.label, r->job))
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: job name too long for a label", path);
    double prev_rows = 0, prev_rejected = 0;
    read_previous(path, &d, &prev_rows, &prev_rejected);
    if (r->exit_status == 0) d.last_success = r->end;
    d.rows = (int64_t)prev_rows;
    d.rejected = (int64_t)prev_rejected;
    for (int i = 0; i < r->nranks; i++) {
        d.rows += r->ranks[i].rows_read;
        d.rejected += r->ranks[i].rows_rejected;
    }
    return write_built(path, metrics_text, &d, err, errlen);
}
