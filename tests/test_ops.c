/* Unit tests of the operations modules of jobs/: the job lock, the run report, the Prometheus
 * textfile and the progress display. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "jobs/lock.h"
#include "jobs/progress.h"
#include "jobs/report.h"

static char err[PC_ERRLEN];
static char dir[64];

static const char *path_in(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

/* The whole file in a static buffer ("" if missing). */
static const char *slurp(const char *path)
{
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/precast-ops.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- lock --------------------------------------------------------------------------------- */

START_TEST(test_lock_default_path)
{
    char p[64];
    ck_assert_int_eq(job_lock_default_path(p, sizeof p, "/data/table", "nightly", err, sizeof err), PC_OK);
    ck_assert_str_eq(p, "/data/table/.lock-nightly");
    ck_assert_int_eq(job_lock_default_path(p, 10, "/data/table", "nightly", err, sizeof err), PC_ERR_CONFIG);
    ck_assert_str_eq(p, "");
}
END_TEST

START_TEST(test_lock_acquire_writes_holder_and_release_keeps_file)
{
    const char *lp = path_in("table/sub/.lock-nightly"); /* parents are created */
    job_lock *l = NULL;
    ck_assert_int_eq(job_lock_acquire(lp, "nightly", &l, err, sizeof err), PC_OK);
    ck_assert_ptr_nonnull(l);
    char host[256], start[64], extra[8];
    long pid;
    const char *content = slurp(lp);
    ck_assert_int_eq(sscanf(content, "%255s %ld %63s %7s", host, &pid, start, extra), 3);
    ck_assert_int_eq(pid, (long)getpid());
    ck_assert_int_eq(strlen(start), 20); /* 2026-11-26T02:00:03Z */
    ck_assert_int_eq(start[10], 'T');
    ck_assert_int_eq(start[19], 'Z');
    ck_assert_int_eq(content[strlen(content) - 1], '\n');
    ck_assert_ptr_nonnull(strstr(content, job_lock_holder(l)));
    job_lock_release(l);
    ck_assert_int_eq(access(lp, F_OK), 0); /* kept */
    ck_assert_int_eq(job_lock_acquire(lp, "nightly", &l, err, sizeof err), PC_OK);
    job_lock_release(l);
    job_lock_release(NULL);
}
END_TEST

START_TEST(test_lock_twice_in_one_process)
{
    const char *lp = path_in(".lock-j");
    job_lock *a = NULL, *b = (job_lock *)1;
    ck_assert_int_eq(job_lock_acquire(lp, "j", &a, err, sizeof err), PC_OK);
    ck_assert_int_eq(job_lock_acquire(lp, "j", &b, err, sizeof err), PC_ERR_LOCKED);
    ck_assert_ptr_null(b);
    char want[64];
    snprintf(want, sizeof want, ", pid %ld, since ", (long)getpid());
    ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);
    job_lock_release(a);
}
END_TEST

/* The child takes the lock, tells the parent, then waits until the parent closes `go`; it
 * exits (or is killed) without releasing. */
static pid_t child_holding(const char *lp, int *go_w)
{
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        job_lock *l = NULL;
        char e[PC_ERRLEN];
        char ok = job_lock_acquire(lp, "nightly", &l, e, sizeof e) == PC_OK ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1) _exit(2);
        char c;
        while (read(go[0], &c, 1) > 0) {
        }
        _exit(0); /* no job_lock_release: the exit releases */
    }
    close(ready[1]);
    close(go[0]);
    char ok = 0;
    ck_assert_int_eq(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    ck_assert_int_eq(ok, 'y');
    *go_w = go[1];
    return pid;
}

static void check_held_by(const char *lp, pid_t pid)
{
    job_lock *l = (job_lock *)1;
    ck_assert_int_eq(job_lock_acquire(lp, "nightly", &l, err, sizeof err), PC_ERR_LOCKED);
    ck_assert_ptr_null(l);
    char want[64];
    snprintf(want, sizeof want, ", pid %ld, since ", (long)pid);
    ck_assert_msg(strncmp(err, "job 'nightly' is running: host ", 31) == 0, "message: %s", err);
    ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, lp) != NULL, "message names the lock file: %s", err);
}

START_TEST(test_lock_held_by_child_released_on_exit)
{
    const char *lp = path_in(".lock-nightly");
    int go;
    pid_t pid = child_holding(lp, &go);
    check_held_by(lp, pid);
    close(go);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    job_lock *l = NULL;
    ck_assert_msg(job_lock_acquire(lp, "nightly", &l, err, sizeof err) == PC_OK, "%s", err);
    job_lock_release(l);
}
END_TEST

START_TEST(test_lock_killed_holder_leaves_no_stale_lock)
{
    const char *lp = path_in(".lock-nightly");
    int go;
    pid_t pid = child_holding(lp, &go);
    check_held_by(lp, pid);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(go);
    ck_assert(WIFSIGNALED(status));
    job_lock *l = NULL;
    ck_assert_msg(job_lock_acquire(lp, "nightly", &l, err, sizeof err) == PC_OK, "%s", err);
    /* The dead holder's line is replaced by ours. */
    char want[32];
    snprintf(want, sizeof want, " %ld ", (long)getpid());
    ck_assert_ptr_nonnull(strstr(slurp(lp), want));
    job_lock_release(l);
}
END_TEST

START_TEST(test_lock_holder_not_recorded)
{
    const char *lp = path_in(".lock-j");
    int fd = open(lp, O_RDWR | O_CREAT, 0644); /* locked, nothing written: a holder just started */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);
    job_lock *l = NULL;
    ck_assert_int_eq(job_lock_acquire(lp, "j", &l, err, sizeof err), PC_ERR_LOCKED);
    ck_assert_msg(strstr(err, "job 'j' is running: holder not recorded yet") != NULL, "%s", err);
    close(fd);
}
END_TEST

START_TEST(test_lock_cannot_create)
{
    spit(path_in("file"), "x");
    job_lock *l = (job_lock *)1;
    ck_assert_int_eq(job_lock_acquire(path_in("file/.lock-j"), "j", &l, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(err, "file") != NULL, "%s", err);
}
END_TEST

/* ---- report --------------------------------------------------------------------------------- */

/* Runs python3 on a script that reads the JSON file argv[1]; its exit status (0 = all
 * assertions held). NaN and Infinity are refused, as strict JSON parsers do. */
static int check_json(const char *path, const char *asserts)
{
    const char *py = path_in("check.py");
    FILE *f = fopen(py, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "import json, sys\n"
            "def bad(c): raise ValueError('not JSON: ' + c)\n"
            "r = json.load(open(sys.argv[1], encoding='utf-8'), parse_constant=bad)\n"
            "%s\n",
            asserts);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", py, path);
    return system(cmd);
}

static run_report_rank RANKS[2] = {
    {.host = "node7", .segments = 3, .rows_read = 600, .rows_rejected = 2, .rows_written = 598,
     .bytes_read = 60000, .spilled_bytes = 4096, .seconds = {0.1, 2.0, 1.5, 0.5, 0.25, 0.0}},
    {.host = "node8", .segments = 2, .rows_read = 400, .rows_rejected = 0, .rows_written = 400,
     .bytes_read = 40000, .spilled_bytes = 0, .seconds = {0.1, 1.9, 1.4, 0.5, 0.3, 0.0}},
};
static run_report_class CLASSES[2] = {{"cat", 500, 480}, {"d\"og", 498, 518}};
static run_report_diff DIFF = {.previous_version = "v20261125T020003Z-nightly", .keys_before = 998,
                               .keys_after = 998, .keys_added = 10, .keys_removed = 10,
                               .keys_compared = 988, .top1_changed = 19, .blocked = false,
                               .classes = CLASSES, .nclasses = 2};

static run_report good_report(void)
{
    return (run_report){.job = "nightly", .job_file = "/etc/precast/nightly.ini", .host = "node7",
                        .start = 1795658403.0 /* 2026-11-26T02:00:03Z */, .end = 1795658413.0,
                        .exit_status = 0, .message = NULL, .version = "v20261126T020003Z-nightly",
                        .seconds = {0.1, 2.0, 1.5, 0.5, 0.3, 0.01}, .input_bytes = 100000,
                        .ranks = RANKS, .nranks = 2, .diff = &DIFF};
}

START_TEST(test_report_json_success)
{
    run_report r = good_report();
    const char *p = path_in("report.json");
    ck_assert_msg(run_report_write(p, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(access(path_in("report.json.tmp"), F_OK), -1);
    ck_assert_int_eq(check_json(p,
        "assert r['job'] == 'nightly' and r['host'] == 'node7' and r['ranks'] == 2, r\n"
        "assert r['start'] == '2026-11-26T02:00:03Z' and r['end'] == '2026-11-26T02:00:13Z', r\n"
        "assert r['duration_seconds'] == 10 and r['exit_status'] == 0 and r['status'] == 'ok'\n"
        "assert r['message'] == '' and r['version'] == 'v20261126T020003Z-nightly'\n"
        "assert r['seconds'] == {'setup': 0.1, 'map': 2.0, 'forward': 1.5, 'shuffle': 0.5,"
        " 'write': 0.3, 'publish': 0.01}, r['seconds']\n"
        "assert (r['rows_read'], r['rows_rejected'], r['rows_written']) == (1000, 2, 998)\n"
        "assert r['rows_per_second'] == 100.0 and r['segments'] == 5\n"
        "assert (r['input_bytes'], r['bytes_read'], r['spilled_bytes']) == (100000, 100000, 4096)\n"
        "k = r['per_rank']\n"
        "assert [x['rank'] for x in k] == [0, 1] and k[1]['host'] == 'node8'\n"
        "assert k[0]['rows_rejected'] == 2 and k[1]['seconds']['write'] == 0.3\n"
        "d = r['diff']\n"
        "assert d['keys_added'] == 10 and d['keys_removed'] == 10 and d['top1_changed'] == 19\n"
        "assert abs(d['top1_changed_share'] - 19 / 988) < 1e-6 and d['blocked'] is False\n"
        "assert d['classes'] == [{'label': 'cat', 'before': 500, 'after': 480},"
        " {'label': 'd\"og', 'before': 498, 'after': 518}], d['classes']\n"), 0);
}
END_TEST

START_TEST(test_report_json_failure_escapes_and_nulls)
{
    run_report r = {.job = "night\\ly", .start = 1795658403.0, .end = 1795658403.5,
                    .exit_status = 65, .message = "in.csv:7: \"bad\"\trow\n\x01 \xff end",
                    .seconds = {.setup = 0.0 / 0.0}};
    const char *p = path_in("report.json");
    ck_assert_msg(run_report_write(p, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(check_json(p,
        "assert r['job'] == 'night\\\\ly' and r['job_file'] is None and r['host'] is None\n"
        "assert r['exit_status'] == 65 and r['status'] == 'bad input data'\n"
        "assert r['message'] == 'in.csv:7: \"bad\"\\trow\\n\\x01 \\xff end', repr(r['message'])\n"
        "assert r['version'] is None and r['diff'] is None and r['per_rank'] == []\n"
        "assert r['seconds']['setup'] is None and r['rows_read'] == 0\n"), 0);
}
END_TEST

START_TEST(test_report_failed_write_leaves_old_file)
{
    const char *p = path_in("report.json");
    spit(p, "{\"old\": true}\n");
    ck_assert_int_eq(mkdir(path_in("report.json.tmp"), 0755), 0); /* the temporary cannot be created */
    run_report r = good_report();
    ck_assert_int_eq(run_report_write(p, &r, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_msg(strstr(err, "report.json.tmp") != NULL, "%s", err);
    ck_assert_str_eq(slurp(p), "{\"old\": true}\n");
    ck_assert_int_eq(rmdir(path_in("report.json.tmp")), 0);
    ck_assert_int_eq(run_report_write(path_in("no/such/dir/r.json"), &r, err, sizeof err), PC_ERR_CANTCREAT);
    r.job = NULL;
    ck_assert_int_eq(run_report_write(p, &r, err, sizeof err), PC_ERR_INTERNAL);
    ck_assert_str_eq(slurp(p), "{\"old\": true}\n");
}
END_TEST

START_TEST(test_report_iso8601)
{
    char t[32];
    ck_assert_str_eq(run_report_iso8601(0.0, t), "1970-01-01T00:00:00Z");
    ck_assert_str_eq(run_report_iso8601(1795658403.9, t), "2026-11-26T02:00:03Z");
    ck_assert(run_report_now() > 1.7e9);
}
END_TEST

/* ---- metrics ----------------------------------------------------------------------------- */

static const char *EXPECTED_METRICS =
    "# HELP precast_last_success_timestamp_seconds End of the last run that published a version (0: never).\n"
    "# TYPE precast_last_success_timestamp_seconds gauge\n"
    "precast_last_success_timestamp_seconds{job=\"nightly\"} 1795658413.000\n"
    "# HELP precast_last_run_timestamp_seconds End of the last run, whatever its outcome.\n"
    "# TYPE precast_last_run_timestamp_seconds gauge\n"
    "precast_last_run_timestamp_seconds{job=\"nightly\"} 1795658413.000\n"
    "# HELP precast_last_exit_status Exit status of the last run (0 published, see README).\n"
    "# TYPE precast_last_exit_status gauge\n"
    "precast_last_exit_status{job=\"nightly\"} 0\n"
    "# HELP precast_duration_seconds Duration of the last run.\n"
    "# TYPE precast_duration_seconds gauge\n"
    "precast_duration_seconds{job=\"nightly\"} 10.000\n"
    "# HELP precast_rows_total Input rows read, over all runs.\n"
    "# TYPE precast_rows_total counter\n"
    "precast_rows_total{job=\"nightly\"} 1000\n"
    "# HELP precast_rejected_rows_total Input rows rejected, over all runs.\n"
    "# TYPE precast_rejected_rows_total counter\n"
    "precast_rejected_rows_total{job=\"nightly\"} 2\n";

START_TEST(test_metrics_format)
{
    run_report r = good_report();
    const char *p = path_in("precast_nightly.prom");
    ck_assert_msg(metrics_textfile_write(p, &r, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_str_eq(slurp(p), EXPECTED_METRICS);
    ck_assert_int_eq(access(path_in("precast_nightly.prom.tmp"), F_OK), -1);
}
END_TEST

/* The value of one sample line "NAME{...} VALUE" of text, or -1 if absent. */
static double sample(const char *text, const char *name_and_labels)
{
    char want[256];
    snprintf(want, sizeof want, "\n%s ", name_and_labels);
    const char *at = strstr(text, want);
    return at == NULL ? -1.0 : strtod(at + strlen(want), NULL);
}

START_TEST(test_metrics_failure_keeps_last_success)
{
    run_report r = good_report();
    const char *p = path_in("precast_nightly.prom");
    ck_assert_int_eq(metrics_textfile_write(p, &r, err, sizeof err), PC_OK);
    /* The next night fails. */
    r.start += 86400;
    r.end += 86400 + 5;
    r.exit_status = 74;
    r.version = NULL;
    ck_assert_int_eq(metrics_textfile_write(p, &r, err, sizeof err), PC_OK);
    const char *t = slurp(p);
    ck_assert_double_eq(sample(t, "precast_last_success_timestamp_seconds{job=\"nightly\"}"), 1795658413.0);
    ck_assert_double_eq(sample(t, "precast_last_run_timestamp_seconds{job=\"nightly\"}"), 1795658413.0 + 86405);
    ck_assert_double_eq(sample(t, "precast_last_exit_status{job=\"nightly\"}"), 74);
    ck_assert_double_eq(sample(t, "precast_duration_seconds{job=\"nightly\"}"), 15);
    ck_assert_double_eq(sample(t, "precast_rows_total{job=\"nightly\"}"), 2000);
    ck_assert_double_eq(sample(t, "precast_rejected_rows_total{job=\"nightly\"}"), 4);
    /* And the one after succeeds. */
    r.start += 86400;
    r.end += 86400;
    r.exit_status = 0;
    ck_assert_int_eq(metrics_textfile_write(p, &r, err, sizeof err), PC_OK);
    t = slurp(p);
    ck_assert_double_eq(sample(t, "precast_last_success_timestamp_seconds{job=\"nightly\"}"), r.end);
    ck_assert_double_eq(sample(t, "precast_rows_total{job=\"nightly\"}"), 3000);
}
END_TEST

START_TEST(test_metrics_never_succeeded_and_other_job)
{
    const char *p = path_in("x.prom");
    /* A previous file of another job, and garbage: neither is carried over. */
    spit(p, "precast_last_success_timestamp_seconds{job=\"other\"} 12345\n"
            "precast_rows_total{job=\"other\"} 99\nprecast_rows_total{job=\"a\\\"b\"} nonsense\n");
    run_report r = good_report();
    r.job = "a\"b";
    r.exit_status = 75;
    ck_assert_int_eq(metrics_textfile_write(p, &r, err, sizeof err), PC_OK);
    const char *t = slurp(p);
    ck_assert_double_eq(sample(t, "precast_last_success_timestamp_seconds{job=\"a\\\"b\"}"), 0);
    ck_assert_double_eq(sample(t, "precast_last_exit_status{job=\"a\\\"b\"}"), 75);
    ck_assert_double_eq(sample(t, "precast_rows_total{job=\"a\\\"b\"}"), 1000);
    ck_assert_ptr_null(strstr(t, "other"));
}
END_TEST

START_TEST(test_metrics_failed_write_leaves_old_file)
{
    const char *p = path_in("m.prom");
    spit(p, EXPECTED_METRICS);
    ck_assert_int_eq(mkdir(path_in("m.prom.tmp"), 0755), 0);
    run_report r = good_report();
    ck_assert_int_eq(metrics_textfile_write(p, &r, err, sizeof err), PC_ERR_CANTCREAT);
    ck_assert_str_eq(slurp(p), EXPECTED_METRICS);
}
END_TEST

/* ---- progress ----------------------------------------------------------------------------- */

/* Output of a progress display into memory. */
static char *out_buf;
static size_t out_len;

static FILE *open_out(void)
{
    FILE *f = open_memstream(&out_buf, &out_len);
    ck_assert_ptr_nonnull(f);
    return f;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

START_TEST(test_progress_tty)
{
    FILE *f = open_out();
    progress *p = NULL;
    ck_assert_int_eq(progress_create(f, 1000, true, 100.0, &p, err, sizeof err), PC_OK);
    progress_update(p, 0, 0, 100.0);      /* first update draws */
    progress_update(p, 100, 100, 100.1);  /* too soon */
    progress_update(p, 150, 150, 100.19); /* too soon */
    progress_update(p, 500, 500, 101.0);  /* draws */
    fflush(f);
    ck_assert_int_eq(count_char(out_buf, '\r'), 2);
    ck_assert_int_eq(count_char(out_buf, '\n'), 0);
    const char *last = strrchr(out_buf, '\r') + 1;
    ck_assert_str_eq(last, "precast:         500 rows    50.0%         500 rows/s   ETA 0:00:01");
    ck_assert_ptr_nonnull(strstr(out_buf, "\rprecast:           0 rows     0.0%           0 rows/s   ETA --"));
    for (int i = 1; i <= 50; i++) progress_update(p, 500 + i, 500 + i, 101.0 + i * 0.01); /* 0.5 s */
    fflush(f);
    ck_assert_int_eq(count_char(out_buf, '\r'), 4); /* at 101.2 and 101.4 */
    progress_finish(p, 1000, 1200, 102.0);
    fclose(f);
    ck_assert_int_eq(count_char(out_buf, '\r'), 5);
    ck_assert_int_eq(out_buf[out_len - 1], '\n');
    ck_assert_ptr_nonnull(strstr(out_buf, "\rprecast:        1000 rows   100.0%         500 rows/s   ETA 0:00:00\n"));
    free(out_buf);
}
END_TEST

START_TEST(test_progress_tty_blanks_a_shorter_line)
{
    FILE *f = open_out();
    progress *p = NULL;
    ck_assert_int_eq(progress_create(f, 1000000000, true, 0.0, &p, err, sizeof err), PC_OK);
    progress_update(p, 10, 10000, 1.0);         /* ETA 27:46:39 */
    progress_update(p, 20, 999990000, 2.0);     /* ETA 0:00:00 */
    progress_finish(p, 20, 999990000, 2.0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(out_buf, "ETA 27:46:39\r"));
    const char *second = strchr(out_buf + 1, '\r');
    ck_assert_int_eq(second - out_buf, (long)(strchr(second + 1, '\r') - second)); /* equal lengths */
    ck_assert_ptr_nonnull(strstr(second, "ETA 0:00:00 \r"));
    free(out_buf);
}
END_TEST

START_TEST(test_progress_log_every_10_seconds)
{
    FILE *f = open_out();
    progress *p = NULL;
    ck_assert_int_eq(progress_create(f, 2 * 1048576, false, 0.0, &p, err, sizeof err), PC_OK);
    for (int t = 1; t <= 25; t++) progress_update(p, t * 1000, t * 40000, (double)t);
    progress_update(p, 1, 1, 26.0); /* smaller counts are ignored */
    fflush(f);
    ck_assert_int_eq(count_char(out_buf, '\n'), 2);
    ck_assert_int_eq(count_char(out_buf, '\r'), 0);
    ck_assert_str_eq(out_buf, "precast: progress: 10000 rows, 19.0% of 2.0 MiB, 1000 rows/s, ETA 0:00:42\n"
                              "precast: progress: 20000 rows, 38.1% of 2.0 MiB, 1000 rows/s, ETA 0:00:32\n");
    progress_update(p, 0, 0, 30.0);
    fflush(f);
    ck_assert_ptr_nonnull(strstr(out_buf, "\nprecast: progress: 25000 rows, 47.6% of 2.0 MiB, 833 rows/s, ETA"));
    size_t before = out_len;
    progress_finish(p, 50000, 2 * 1048576, 31.0); /* nothing more in a log */
    fclose(f);
    ck_assert_int_eq(out_len, before);
    free(out_buf);
}
END_TEST

START_TEST(test_progress_unknown_total)
{
    FILE *f = open_out();
    progress *p = NULL;
    ck_assert_int_eq(progress_create(f, 0, false, 0.0, &p, err, sizeof err), PC_OK);
    progress_update(p, 5000, 123, 10.0);
    progress_finish(p, 5000, 123, 10.0);
    fclose(f);
    ck_assert_str_eq(out_buf, "precast: progress: 5000 rows, 500 rows/s, ETA --\n");
    free(out_buf);
    progress_finish(NULL, 0, 0, 0.0);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *lock = tcase_create("lock");
    tcase_add_checked_fixture(lock, setup, teardown);
    tcase_add_test(lock, test_lock_default_path);
    tcase_add_test(lock, test_lock_acquire_writes_holder_and_release_keeps_file);
    tcase_add_test(lock, test_lock_twice_in_one_process);
    tcase_add_test(lock, test_lock_held_by_child_released_on_exit);
    tcase_add_test(lock, test_lock_killed_holder_leaves_no_stale_lock);
    tcase_add_test(lock, test_lock_holder_not_recorded);
    tcase_add_test(lock, test_lock_cannot_create);
    suite_add_tcase(s, lock);
    TCase *report = tcase_create("report");
    tcase_add_checked_fixture(report, setup, teardown);
    tcase_set_timeout(report, 30);
    tcase_add_test(report, test_report_json_success);
    tcase_add_test(report, test_report_json_failure_escapes_and_nulls);
    tcase_add_test(report, test_report_failed_write_leaves_old_file);
    tcase_add_test(report, test_report_iso8601);
    tcase_add_test(report, test_metrics_format);
    tcase_add_test(report, test_metrics_failure_keeps_last_success);
    tcase_add_test(report, test_metrics_never_succeeded_and_other_job);
    tcase_add_test(report, test_metrics_failed_write_leaves_old_file);
    suite_add_tcase(s, report);
    TCase *prog = tcase_create("progress");
    tcase_add_test(prog, test_progress_tty);
    tcase_add_test(prog, test_progress_tty_blanks_a_shorter_line);
    tcase_add_test(prog, test_progress_log_every_10_seconds);
    tcase_add_test(prog, test_progress_unknown_total);
    suite_add_tcase(s, prog);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
