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
    int64_t created;
    long refs; /* requests using it; guarded by holder.mu */
};

struct holder {
    char dir[PATH_MAX];
    size_t cache_bytes;
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

static pc_status ver_open(const holder *h, const char *version, holder_ver **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    holder_ver *v = calloc(1, sizeof *v);
    if (v == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    pc_status rc = version != NULL
                       ? table_open_version_cached(h->dir, version, h->cache_bytes, &v->t, err, errlen)
                       : table_open_cached(h->dir, h->cache_bytes, &v->t, err, errlen);
    if (rc != PC_OK) {
        free(v);
        return rc;
    }
    v->created = parse_created(table_manifest(v->t)->created);
    *out = v;
    return PC_OK;
}

static void ver_close(holder_ver *v)
{
    table_close(v->t);
    free(v);
}

pc_status holder_open(const char *table_dir, size_t cache_bytes, holder **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (strlen(table_dir) >= PATH_MAX)
        return pc_err(err, errlen, PC_ERR_NOINPUT, "table path too long");
    holder *h = calloc(1, sizeof *h);
    if (h == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    strcpy(h->dir, table_dir);
    h->cache_bytes = cache_bytes;
    pc_status rc = ver_open(h, NULL, &h->cur, err, errlen);
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
    holder_ver *fresh;
    if ((rc = ver_open(h, name, &fresh, err, errlen)) != PC_OK)
        return rc;
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
