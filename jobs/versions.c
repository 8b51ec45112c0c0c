/*
 * versions.c — `precast versions TABLE [--json] [--rollback V] [--publish-staged V]
 * [--keep N [--sweep-staging]]`
 * and `precast verify TABLE [V]`: the operator's view of a table's versions, rollback,
 * retention on demand, and the full re-read of a version against its manifest.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/commands.h"
#include "mapper/head.h"
#include "storage/table.h"

static void versions_usage(FILE *out)
{
    fprintf(out,
            "usage: precast versions TABLE [--json] [--rollback V] [--publish-staged V]\n"
            "                        [--keep N [--sweep-staging]]\n"
            "\n"
            "Lists the table's versions, newest first: name, created (UTC), rows written,\n"
            "rows rejected, model sha256 (first 12 digits), input bytes, shards; '*' marks the\n"
            "one CURRENT names.  --json prints one JSON object instead.\n"
            "  --rollback V      make version V current (atomically; V must be whole: its\n"
            "                    manifest reads and every shard is there), then list\n"
            "  --publish-staged V  publish version V that a run left staged (input.drift = gate\n"
            "                    or output.max_changed blocked it; see the staged list), once\n"
            "                    that run has ended\n"
            "  --keep N          remove all but CURRENT's version and the N newest others now\n"
            "                    (what a run does after publishing with output.keep_versions)\n"
            "  --sweep-staging   with --keep: also remove every .staging-* dir; only when no\n"
            "                    job writing this table is running\n"
            "Exit status: 0 done, 64 usage, 66 no such table or version, 74 a damaged version,\n"
            "a corrupt CURRENT or an I/O error.\n");
}

static void verify_usage(FILE *out)
{
    fprintf(out,
            "usage: precast verify TABLE [VERSION]\n"
            "\n"
            "Re-reads every shard of VERSION (default: the one CURRENT names) and checks it\n"
            "against the manifest: key order, each shard's key range, row counts, bytes, per-shard\n"
            "and total checksums, and rows_in = rows_written + rows_rejected + rows_dropped\n"
            "(duplicates dropped by policy).  Prints one line.  Safe beside `precast serve`:\n"
            "readers never write into a version.\n"
            "Exit status: 0 the version is intact, 64 usage, 66 no such table or version,\n"
            "74 a difference or corruption (the message names the shard and what differs).\n");
}

/* Prints s as a JSON string (null for NULL). */
static void put_json(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    size_t n = json_quote(NULL, 0, s, strlen(s)) + 1;
    char *q = malloc(n);
    if (q == NULL) {
        fputs("null", out);
        return;
    }
    json_quote(q, n, s, strlen(s));
    fputs(q, out);
    free(q);
}

static int64_t input_bytes(const manifest *m)
{
    int64_t sum = 0;
    for (int64_t i = 0; i < m->ninputs; i++)
        if (m->input_sizes[i] > 0 && sum <= INT64_MAX - m->input_sizes[i])
            sum += m->input_sizes[i];
    return sum;
}

static void print_json(const char *table_dir, const char *cur, const table_version_info *v,
                       int64_t n)
{
    fputs("{\"table\": ", stdout);
    put_json(stdout, table_dir);
    fputs(", \"current\": ", stdout);
    put_json(stdout, cur[0] != '\0' ? cur : NULL);
    fputs(", \"versions\": [", stdout);
    for (int64_t i = 0; i < n; i++) {
        const manifest *m = v[i].m;
        fputs(i == 0 ? "\n  {\"name\": " : ",\n  {\"name\": ", stdout);
        put_json(stdout, v[i].name);
        printf(", \"current\": %s, \"ok\": %s", v[i].current ? "true" : "false",
               m != NULL ? "true" : "false");
        if (m == NULL) {
            fputs(", \"error\": ", stdout);
            put_json(stdout, v[i].problem);
            fputs("}", stdout);
            continue;
        }
        fputs(", \"created\": ", stdout);
        put_json(stdout, m->created);
        fputs(", \"job\": ", stdout);
        put_json(stdout, m->job);
        printf(", \"rows_in\": %" PRId64 ", \"rows_written\": %" PRId64
               ", \"rows_rejected\": %" PRId64 ", \"rows_dropped\": %" PRId64
               ", \"checksum\": \"%016" PRIx64 "\"",
               m->rows_in, m->rows_written, m->rows_rejected, m->rows_dropped, m->checksum);
        fputs(", \"model_path\": ", stdout);
        put_json(stdout, m->model_path);
        fputs(", \"model_sha256\": ", stdout);
        put_json(stdout, m->model_sha256);
        printf(", \"inputs\": %" PRId64 ", \"input_bytes\": %" PRId64 ", \"shards\": %" PRId64
               ", \"ranks\": %" PRId64,
               m->ninputs, input_bytes(m), m->nshards, m->ranks);
        fputs(", \"value_format\": ", stdout);
        put_json(stdout, m->value_format);
        fputs(", \"head\": ", stdout);
        put_json(stdout, m->head);
        fputs(", \"host\": ", stdout);
        put_json(stdout, m->host);
        fputs(", \"precast_version\": ", stdout);
        put_json(stdout, m->precast_version);
        fputs(", \"previous\": ", stdout);
        put_json(stdout, m->previous);
        fputs("}", stdout);
    }
    fputs(n > 0 ? "\n]}\n" : "]}\n", stdout);
}

static void print_text(const table_version_info *v, int64_t n)
{
    int w = 7; /* "VERSION" */
    for (int64_t i = 0; i < n; i++)
        if ((int)strlen(v[i].name) > w)
            w = (int)strlen(v[i].name);
    printf("  %-*s  %-20s  %10s  %8s  %-12s  %12s  %6s\n", w, "VERSION", "CREATED", "ROWS",
           "REJECTED", "MODEL", "INPUT_BYTES", "SHARDS");
    for (int64_t i = 0; i < n; i++) {
        const manifest *m = v[i].m;
        if (m == NULL) {
            printf("%c %-*s  damaged: %s\n", v[i].current ? '*' : ' ', w, v[i].name,
                   v[i].problem != NULL ? v[i].problem : "?");
            continue;
        }
        char model[13];
        snprintf(model, sizeof model, "%s", m->model_sha256 != NULL ? m->model_sha256 : "-");
        printf("%c %-*s  %-20s  %10" PRId64 "  %8" PRId64 "  %-12s  %12" PRId64 "  %6" PRId64
               "\n",
               v[i].current ? '*' : ' ', w, v[i].name, m->created, m->rows_written,
               m->rows_rejected, model, input_bytes(m), m->nshards);
    }
}

/* Versions a run left staged (not published), one line each; on stderr with --json. */
static void print_staged(const char *table_dir, bool json)
{
    table_staged_info *v;
    int64_t n;
    char err[PC_ERRLEN];
    if (table_staged_list(table_dir, &v, &n, err, sizeof err) != PC_OK)
        return;
    FILE *out = json ? stderr : stdout;
    for (int64_t i = 0; i < n; i++)
        fprintf(out, "staged: %s  %-20s  %10" PRId64 " rows  in %s/%s  (precast versions %s --publish-staged %s)\n",
                v[i].m->version, v[i].m->created, v[i].m->rows_written, table_dir, v[i].dir, table_dir,
                v[i].m->version);
    table_staged_free(v, n);
}

static bool stale_always(const char *job, void *ctx)
{
    (void)job;
    (void)ctx;
    return true;
}

/* A non-negative decimal integer, all of s. */
static bool parse_count(const char *s, int64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || x < 0)
        return false;
    *out = (int64_t)x;
    return true;
}

int cmd_versions(int argc, char **argv)
{
    const char *table_dir = NULL, *rollback = NULL, *publish_staged = NULL;
    bool json = false, sweep = false;
    int64_t keep = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            versions_usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--sweep-staging") == 0) {
            sweep = true;
        } else if (strcmp(a, "--rollback") == 0 && i + 1 < argc) {
            rollback = argv[++i];
        } else if (strcmp(a, "--publish-staged") == 0 && i + 1 < argc) {
            publish_staged = argv[++i];
        } else if (strcmp(a, "--keep") == 0 && i + 1 < argc) {
            if (!parse_count(argv[++i], &keep)) {
                fprintf(stderr, "precast: versions: --keep wants a count >= 0, not '%s'\n",
                        argv[i]);
                return PC_ERR_USAGE;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "precast: versions: unknown or incomplete option '%s'\n", a);
            versions_usage(stderr);
            return PC_ERR_USAGE;
        } else if (table_dir == NULL) {
            table_dir = a;
        } else {
            fprintf(stderr, "precast: versions: unexpected argument '%s'\n", a);
            versions_usage(stderr);
            return PC_ERR_USAGE;
        }
    }
    if (table_dir == NULL || (sweep && keep < 0)) {
        if (table_dir != NULL)
            fprintf(stderr, "precast: versions: --sweep-staging goes with --keep N\n");
        versions_usage(stderr);
        return PC_ERR_USAGE;
    }
    FILE *say = json ? stderr : stdout; /* --json keeps stdout for the JSON alone */
    char err[PC_ERRLEN], cur[NAME_MAX + 1];
    pc_status s;
    if (publish_staged != NULL) {
        char was[NAME_MAX + 1] = "";
        if (table_current(table_dir, was, sizeof was, err, sizeof err) != PC_OK)
            was[0] = '\0';
        s = table_publish_staged(table_dir, publish_staged, err, sizeof err);
        if (s != PC_OK) {
            fprintf(stderr, "precast: versions: publish refused, CURRENT unchanged: %s\n", err);
            return s;
        }
        fprintf(say, "precast: %s: published the staged %s; CURRENT is now %s (was %s)\n", table_dir,
                publish_staged, publish_staged, was[0] != '\0' ? was : "none");
    }
    if (rollback != NULL) {
        char was[NAME_MAX + 1] = "";
        if (table_current(table_dir, was, sizeof was, err, sizeof err) != PC_OK)
            was[0] = '\0';
        s = table_rollback(table_dir, rollback, err, sizeof err);
        if (s != PC_OK) {
            fprintf(stderr, "precast: versions: rollback refused, CURRENT unchanged: %s\n", err);
            return s;
        }
        if (strcmp(was, rollback) == 0)
            fprintf(say, "precast: %s: %s is already current\n", table_dir, rollback);
        else
            fprintf(say, "precast: %s: CURRENT is now %s (was %s)\n", table_dir, rollback,
                    was[0] != '\0' ? was : "none");
    }
    if (keep >= 0) {
        char removed[4096];
        int64_t nrem = 0;
        s = table_retain(table_dir, keep, sweep ? stale_always : NULL, NULL, removed,
                         sizeof removed, &nrem, err, sizeof err);
        if (nrem > 0)
            fprintf(say, "precast: %s: removed %" PRId64 ": %s\n", table_dir, nrem, removed);
        else if (s == PC_OK)
            fprintf(say, "precast: %s: nothing to remove (keeping CURRENT and %" PRId64
                    " other%s)\n", table_dir, keep, keep == 1 ? "" : "s");
        if (s != PC_OK) {
            fprintf(stderr, "precast: versions: %s\n", err);
            return s;
        }
    }
    table_version_info *v;
    int64_t n;
    s = table_versions_list(table_dir, &v, &n, cur, sizeof cur, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: versions: %s\n", err);
        return s;
    }
    if (json)
        print_json(table_dir, cur, v, n);
    else
        print_text(v, n);
    print_staged(table_dir, json);
    bool found = cur[0] == '\0';
    for (int64_t i = 0; i < n; i++)
        found = found || v[i].current;
    table_versions_free(v, n);
    if (!found) {
        fprintf(stderr, "precast: versions: %s/CURRENT names %s, which is missing\n", table_dir,
                cur);
        return PC_ERR_IO;
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            verify_usage(stdout);
            return 0;
        }
    if (argc < 2 || argc > 3 || argv[1][0] == '-' || (argc == 3 && argv[2][0] == '-')) {
        verify_usage(stderr);
        return PC_ERR_USAGE;
    }
    const char *table_dir = argv[1];
    char err[PC_ERRLEN], version[NAME_MAX + 1];
    pc_status s;
    if (argc == 3) {
        if (strlen(argv[2]) >= sizeof version) {
            fprintf(stderr, "precast: verify: %s: no such version: name too long\n", table_dir);
            return PC_ERR_NOINPUT;
        }
        snprintf(version, sizeof version, "%s", argv[2]);
    } else if ((s = table_current(table_dir, version, sizeof version, err, sizeof err)) !=
               PC_OK) {
        fprintf(stderr, "precast: verify: %s\n", err);
        return s;
    }
    int64_t rows = 0;
    s = table_verify(table_dir, version, &rows, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: verify: %s %s FAILED: %s\n", table_dir, version, err);
        return s;
    }
    /* The figures of the summary line come from the manifest just checked. */
    char mpath[PATH_MAX + NAME_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/%s/MANIFEST.json", table_dir, version);
    manifest *m;
    s = manifest_read(mpath, &m, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: verify: %s\n", err);
        return s;
    }
    printf("precast: verify: %s %s ok: %" PRId64 " rows in %" PRId64 " shard%s, %" PRId64
           " rejected, checksum %016" PRIx64 "\n",
           table_dir, version, rows, m->nshards, m->nshards == 1 ? "" : "s", m->rows_rejected,
           m->checksum);
    manifest_free(m);
    return 0;
}
