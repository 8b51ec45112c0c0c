/* holder.c — reference-counted table versions for the server (see holder.h). */
#include "server/holder.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct holder_ver {
    table *t;
    memindex *ix;       /* NULL: lookups go to LevelDB */
    char note[PC_ERRLEN]; /* why a version was not preloaded, or "" */
    double load_seconds;
    int64_t created;
    long refs; /* requests using it; guarded by holder.mu */
};

struct holder {
    char dir[PATH_MAX];
    holder_opts opts;
    /* The last version whose preload failed, and when: holder_reload does not scan it again
     * before opts.preload_retry_s.  Used by the reload thread only. */
    char failed[NAME_MAX + 1];
    double failed_at;
    pc_status failed_rc;
    char failed_err[PC_ERRLEN];
    pthread_mutex_t mu;
    holder_ver *cur; /* guarded by mu */
};

/* "2026-11-26T02:00:00Z" -> seconds since the epoch, 0 if it does not parse. */
static int64_t parse_created(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (iso == NULL || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon,
                              &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used == 0 || iso[used] != '\0')
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads v's pairs into a memory index.  Over the cap or out of memory, v is served from
 * LevelDB and v->note says why (PC_OK); a damaged version is an error (*damaged set). */
static pc_status ver_preload(const holder *h, holder_ver *v, bool *damaged, char *err,
                             size_t errlen)
{
    double t0 = now_seconds();
    char why[PC_ERRLEN];
    pc_status rc = memindex_build(table_version_dir(v->t), h->opts.preload_max_bytes, &v->ix,
                                  why, sizeof why);
    if (rc == PC_OK) {
        v->load_seconds = now_seconds() - t0;
        return PC_OK;
    }
    if (rc == PC_ERR_CONFIG || rc == PC_ERR_INTERNAL) {
        snprintf(v->note, sizeof v->note, "%s", why);
        return PC_OK;
    }
    *damaged = true;
    return pc_err(err, errlen, rc, "preload: %s", why);
}

static void ver_close(holder_ver *v)
{
    memindex_free(v->ix);
    table_close(v->t);
    free(v);
}

/* Opens a version (and preloads it if asked); *damaged is set when the preload's scan found
 * the version damaged. */
static pc_status ver_open(const holder *h, const char *version, holder_ver **out, bool *damaged,
                          char *err, size_t errlen)
{
    *out = NULL;
    *damaged = false;
    holder_ver *v = calloc(1, sizeof *v);
    if (v == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    size_t cache = h->opts.cache_bytes;
    pc_status rc = version != NULL
                       ? table_open_version_cached(h->dir, version, cache, &v->t, err, errlen)
                       : table_open_cached(h->dir, cache, &v->t, err, errlen);
    if (rc != PC_OK) {
        free(v);
        return rc;
    }
    if (h->opts.preload && (rc = ver_preload(h, v, damaged, err, errlen)) != PC_OK) {
        ver_close(v);
        return rc;
    }
    v->created = parse_created(table_manifest(v->t)->created);
    *out = v;
    return PC_OK;
}

pc_status holder_open(const char *table_dir, const holder_opts *o, holder **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (strlen(table_dir) >= PATH_MAX)
        return pc_err(err, errlen, PC_ERR_NOINPUT, "table path too long");
    holder *h = calloc(1, sizeof *h);
    if (h == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    strcpy(h->dir, table_dir);
    h->opts = *o;
    bool damaged;
    pc_status rc = ver_open(h, NULL, &h->cur, &damaged, err, errlen);
    if (rc != PC_OK) {
        free(h);
        return rc;
    }
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return PC_OK;
}

void holder_close(holder *h)
{
    if (h == NULL)
        return;
    ver_close(h->cur);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

holder_ver *holder_acquire(holder *h)
{
    pthread_mutex_lock(&h->mu);
    holder_ver *v = h->cur;
    v->refs++;
    pthread_mutex_unlock(&h->mu);
    return v;
}

void holder_release(holder *h, holder_ver *v)
{
    pthread_mutex_lock(&h->mu);
    bool last = --v->refs == 0 && v != h->cur;
    pthread_mutex_unlock(&h->mu);
    if (last)
        ver_close(v); /* outside the lock: closing LevelDB waits for its compactions */
}

table *holder_ver_table(const holder_ver *v)
{
    return v->t;
}

const char *holder_ver_name(const holder_ver *v)
{
    return table_manifest(v->t)->version;
}

int64_t holder_ver_created(const holder_ver *v)
{
    return v->created;
}

const memindex *holder_ver_index(const holder_ver *v)
{
    return v->ix;
}

const char *holder_ver_note(const holder_ver *v)
{
    return v->note;
}

double holder_ver_load_seconds(const holder_ver *v)
{
    return v->load_seconds;
}

pc_status holder_reload(holder *h, bool *switched, char *err, size_t errlen)
{
    *switched = false;
    char name[NAME_MAX + 1];
    pc_status rc = table_current(h->dir, name, sizeof name, err, errlen);
    if (rc != PC_OK)
        return rc;
    /* Only this thread changes cur, so reading its name without the lock is safe. */
    if (strcmp(name, holder_ver_name(h->cur)) == 0)
        return PC_OK;
    double now = now_seconds();
    if (strcmp(name, h->failed) == 0 && now - h->failed_at < (double)h->opts.preload_retry_s)
        return pc_err(err, errlen, h->failed_rc, "%s", h->failed_err);
    holder_ver *fresh;
    bool damaged;
    if ((rc = ver_open(h, name, &fresh, &damaged, err, errlen)) != PC_OK) {
        if (damaged) {
            snprintf(h->failed, sizeof h->failed, "%s", name);
            snprintf(h->failed_err, sizeof h->failed_err, "%s", err);
            h->failed_rc = rc;
            h->failed_at = now;
        }
        return rc;
    }
    h->failed[0] = '\0';
    pthread_mutex_lock(&h->mu);
    holder_ver *old = h->cur;
    h->cur = fresh;
    bool idle = old->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (idle)
        ver_close(old);
    *switched = true;
    return PC_OK;
}
