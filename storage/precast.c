/* precast.c — the installed lookup library: a thin, stable face over storage/table.h. */
#include "storage/precast.h"

#include <stdlib.h>

#include "storage/table.h"

/* The public handle is the storage table itself; the cast keeps the public header free of
 * internal types. */
int precast_table_open(const char *dir, precast_table **t, char *err, size_t errlen)
{
    table *tab = NULL;
    pc_status s = table_open(dir, &tab, err, errlen);
    *t = (precast_table *)tab;
    return (int)s;
}

int precast_table_open_opts(const char *dir, const precast_open_options *opts, precast_table **t,
                            char *err, size_t errlen)
{
    table *tab = NULL;
    pc_status s = table_open_cached(dir, opts != NULL ? opts->cache_bytes : 0, &tab, err, errlen);
    *t = (precast_table *)tab;
    return (int)s;
}

int precast_table_get(precast_table *t, const void *key, size_t klen, char **value, size_t *vlen,
                      bool *found, char *err, size_t errlen)
{
    return (int)table_get((table *)t, key, klen, value, vlen, found, err, errlen);
}

int precast_table_multi_get(precast_table *t, size_t n, const void *const *keys, const size_t *klens,
                            char **values, size_t *vlens, bool *found, char *err, size_t errlen)
{
    return (int)table_multi_get((table *)t, n, keys, klens, values, vlens, found, err, errlen);
}

const char *precast_table_version(const precast_table *t)
{
    return table_manifest((const table *)t)->version;
}

const char *precast_table_value_format(const precast_table *t)
{
    return table_manifest((const table *)t)->value_format;
}

void precast_table_close(precast_table *t)
{
    table_close((table *)t);
}

void precast_free(void *p)
{
    free(p);
}
