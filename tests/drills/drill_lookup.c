/* drill_lookup TABLE KEYFILE SECONDS — the library side of the concurrency drill
 * (tests/drills/concurrency.sh): for SECONDS, opens TABLE (precast_table_open: CURRENT's
 * version), looks every key of KEYFILE up in one precast_table_multi_get, checks that each is
 * found and that all values come from one version (the number of '[' in a value tells top_k 1
 * from top_k 2: the drill's two kinds of versions), and closes it; a second, long-lived
 * handle opened at the start is asked too (a version stays readable while a reader holds it,
 * unless retention removes it: counted apart). Prints one line:
 *   drill_lookup: rounds=R failed=F mixed=M versions=V held_failed=H
 * and the first few failures on stderr; exit 1 if F or M is non-zero. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/precast.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int brackets(const char *v, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += v[i] == '[';
    return c;
}

/* 0 ok, 1 a lookup failed, 2 mixed versions */
static int round_on(precast_table *t, size_t n, const char **keys, const size_t *klens, char *err, size_t errlen)
{
    char **vals = calloc(n, sizeof *vals);
    size_t *vlens = calloc(n, sizeof *vlens);
    bool *found = calloc(n, sizeof *found);
    int rc = 0;
    if (precast_table_multi_get(t, n, (const void *const *)keys, klens, vals, vlens, found, err, errlen) != 0) {
        rc = 1;
    } else {
        int want = -1;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!found[i]) {
                snprintf(err, errlen, "%s: key %s not found", precast_table_version(t), keys[i]);
                rc = 1;
            } else {
                int b = brackets(vals[i], vlens[i]);
                if (want < 0) want = b;
                if (b != want) {
                    snprintf(err, errlen, "%s: key %s has %d '[', the batch's first %d", precast_table_version(t), keys[i], b, want);
                    rc = 2;
                }
            }
        }
        for (size_t i = 0; i < n; i++) precast_free(vals[i]);
    }
    free(vals);
    free(vlens);
    free(found);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: drill_lookup TABLE KEYFILE SECONDS\n");
        return 64;
    }
    FILE *f = fopen(argv[2], "r");
    if (f == NULL) { perror(argv[2]); return 66; }
    size_t n = 0, cap = 64;
    const char **keys = malloc(cap * sizeof *keys);
    size_t *klens = malloc(cap * sizeof *klens);
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (n == cap) {
            cap *= 2;
            keys = realloc(keys, cap * sizeof *keys);
            klens = realloc(klens, cap * sizeof *klens);
        }
        keys[n] = strdup(line);
        klens[n] = strlen(line);
        n++;
    }
    fclose(f);
    double end = now_s() + atof(argv[3]);
    char err[1024], last[64] = "";
    long rounds = 0, failed = 0, mixed = 0, versions = 0, held_failed = 0;
    precast_table *held = NULL;
    if (precast_table_open(argv[1], &held, err, sizeof err) != 0) {
        fprintf(stderr, "drill_lookup: open: %s\n", err);
        for (size_t i = 0; i < n; i++) free((char *)keys[i]);
        free(keys);
        free(klens);
        return 1;
    }
    while (now_s() < end) {
        precast_table *t;
        rounds++;
        if (precast_table_open(argv[1], &t, err, sizeof err) != 0) {
            if (failed++ < 5) fprintf(stderr, "drill_lookup: open: %s\n", err);
            continue;
        }
        if (strcmp(precast_table_version(t), last) != 0) {
            versions++;
            snprintf(last, sizeof last, "%s", precast_table_version(t));
        }
        int r = round_on(t, n, keys, klens, err, sizeof err);
        if (r == 1 && failed++ < 5) fprintf(stderr, "drill_lookup: %s\n", err);
        if (r == 2 && mixed++ < 5) fprintf(stderr, "drill_lookup: mixed: %s\n", err);
        precast_table_close(t);
        if (held != NULL && round_on(held, n, keys, klens, err, sizeof err) != 0) {
            if (held_failed++ < 2) fprintf(stderr, "drill_lookup: the handle held since the start: %s\n", err);
        }
    }
    precast_table_close(held);
    for (size_t i = 0; i < n; i++) free((char *)keys[i]);
    free(keys);
    free(klens);
    printf("drill_lookup: rounds=%ld failed=%ld mixed=%ld versions=%ld held_failed=%ld\n", rounds, failed, mixed,
           versions, held_failed);
    return failed || mixed ? 1 : 0;
}
