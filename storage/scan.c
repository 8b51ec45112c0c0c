/* scan.c — a sorted, bounded-memory scan of every pair of a version (storage/table.h). */
#include "storage/table.h"

#include <errno.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/fsutil.h"
#include "storage/internal.h"

struct table_scan {
    char dir[PATH_MAX];   /* version dir */
    manifest *m;
    int64_t shard;        /* index of the open shard, or of the next one to open */
    leveldb_options_t *opts;
    leveldb_readoptions_t *ro;
    st_shard_view view;   /* the open shard; closed between shards */
    leveldb_iterator_t *it;
    bool started;         /* it has been positioned (the current pair is returned) */
    int64_t rows;         /* of the open shard so far */
    uint64_t checksum;
    char *prev;           /* the previous key of the whole scan */
    size_t prev_len, prev_cap;
    bool have_prev;
    bool failed, done;
    /* table_scan_set_range: [lo, hi) with NULL for no bound; a ranged scan reads parts of
     * shards, so it checks key order and ranges but not the shards' counts and checksums. */
    char *lo, *hi;
    size_t lo_len, hi_len;
    bool ranged;
};

const manifest *table_scan_manifest(const table_scan *s)
{
    return s->m;
}

static void close_shard(table_scan *s)
{
    if (s->it != NULL)
        leveldb_iter_destroy(s->it);
    st_shard_view_close(&s->view);
    s->it = NULL;
    s->started = false;
}

void table_scan_close(table_scan *s)
{
    if (s == NULL)
        return;
    close_shard(s);
    if (s->ro != NULL)
        leveldb_readoptions_destroy(s->ro);
    if (s->opts != NULL)
        leveldb_options_destroy(s->opts);
    manifest_free(s->m);
    free(s->prev);
    free(s->lo);
    free(s->hi);
    free(s);
}

pc_status table_scan_open_dir(const char *version_dir, table_scan **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    table_scan *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char mpath[PATH_MAX];
    pc_status rc;
    if ((rc = fs_path(s->dir, sizeof s->dir, PC_ERR_NOINPUT, err, errlen, "%s", version_dir)) !=
            PC_OK ||
        (rc = fs_path(mpath, sizeof mpath, PC_ERR_NOINPUT, err, errlen, "%s/MANIFEST.json",
                      version_dir)) != PC_OK)
        goto fail;
    struct stat st;
    if (stat(s->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no such version", s->dir);
        goto fail;
    }
    rc = manifest_read(mpath, &s->m, err, errlen);
    if (rc == PC_ERR_NOINPUT)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: missing", mpath);
    if (rc != PC_OK)
        goto fail;
    s->opts = leveldb_options_create();
    s->ro = leveldb_readoptions_create();
    if (s->opts == NULL || s->ro == NULL) {
        rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", s->dir);
        goto fail;
    }
    leveldb_options_set_create_if_missing(s->opts, 0);
    leveldb_options_set_paranoid_checks(s->opts, 1);
    leveldb_readoptions_set_verify_checksums(s->ro, 1);
    /* One pass over everything: caching blocks would only grow the process. */
    leveldb_readoptions_set_fill_cache(s->ro, 0);
    *out = s;
    return PC_OK;
fail:
    table_scan_close(s);
    return rc;
}

pc_status table_scan_open(const char *table_dir, const char *version, table_scan **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    char name[NAME_MAX + 1], vdir[PATH_MAX];
    pc_status rc = st_version_resolve(table_dir, version, name, vdir, err, errlen);
    if (rc != PC_OK)
        return rc;
    version = name;
    table_scan *s;
    rc = table_scan_open_dir(vdir, &s, err, errlen);
    if (rc != PC_OK)
        return rc;
    if (strcmp(s->m->version, version) != 0) {
        rc = pc_err(err, errlen, PC_ERR_IO, "%s/MANIFEST.json: names version %s, not %s", vdir,
                    s->m->version, version);
        table_scan_close(s);
        return rc;
    }
    *out = s;
    return PC_OK;
}

/* A copy of a bound (NULL stays NULL). */
static bool copy_bound(char **dst, size_t *dst_len, const char *src, size_t len)
{
    *dst = NULL;
    *dst_len = 0;
    if (src == NULL)
        return true;
    if ((*dst = malloc(len + 1)) == NULL)
        return false;
    if (len > 0)
        memcpy(*dst, src, len);
    *dst_len = len;
    return true;
}

pc_status table_scan_set_range(table_scan *s, const char *lo, size_t lo_len, const char *hi,
                               size_t hi_len, char *err, size_t errlen)
{
    if (s->have_prev || s->view.db != NULL || s->done || s->failed)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: scan range set after the scan began",
                      s->dir);
    free(s->lo);
    free(s->hi);
    if (!copy_bound(&s->lo, &s->lo_len, lo, lo_len) || !copy_bound(&s->hi, &s->hi_len, hi, hi_len))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", s->dir);
    s->ranged = true;
    return PC_OK;
}

/* Ranged scans: is the shard wholly below lo (skip it) or at or above hi (the scan ends)? */
static bool shard_below_range(const table_scan *s, const shard_info *si)
{
    if (si->first_key == NULL)
        return true; /* empty: nothing in range */
    return s->lo != NULL && st_key_cmp(si->last_key, si->last_key_len, s->lo, s->lo_len) < 0;
}

static bool key_at_or_above_hi(const table_scan *s, const char *k, size_t kl)
{
    return s->hi != NULL && st_key_cmp(k, kl, s->hi, s->hi_len) >= 0;
}

static pc_status fail(table_scan *s, pc_status rc)
{
    s->failed = true;
    close_shard(s);
    return rc;
}

/* Opens shard s->shard. */
static pc_status open_shard(table_scan *s, char *err, size_t errlen)
{
    const shard_info *si = &s->m->shards[s->shard];
    char path[PATH_MAX];
    pc_status rc = fs_path(path, sizeof path, PC_ERR_IO, err, errlen, "%s/%s", s->dir, si->dir);
    if (rc != PC_OK)
        return rc;
    struct stat st; /* LevelDB's open would create a missing directory */
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_IO, "%s: shard missing", path);
    if ((rc = st_shard_view_open(path, s->opts, &s->view, err, errlen)) != PC_OK)
        return rc;
    s->it = leveldb_create_iterator(s->view.db, s->ro);
    if (s->it == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    s->rows = 0;
    s->checksum = 0;
    s->started = false;
    return PC_OK;
}

/* The open shard ended: its counts against the manifest. */
static pc_status end_shard(table_scan *s, char *err, size_t errlen)
{
    const shard_info *si = &s->m->shards[s->shard];
    char *lerr = NULL;
    leveldb_iter_get_error(s->it, &lerr);
    if (lerr != NULL)
        return st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s/%s: scan", s->dir, si->dir);
    if (s->ranged) {
        close_shard(s);
        s->shard++;
        return PC_OK;
    }
    if (s->rows != si->rows)
        return pc_err(err, errlen, PC_ERR_IO, "%s/%s: %" PRId64 " rows, the manifest says %" PRId64,
                      s->dir, si->dir, s->rows, si->rows);
    if (s->checksum != si->checksum)
        return pc_err(err, errlen, PC_ERR_IO,
                      "%s/%s: checksum %016" PRIx64 ", the manifest says %016" PRIx64, s->dir,
                      si->dir, s->checksum, si->checksum);
    close_shard(s);
    s->shard++;
    return PC_OK;
}

pc_status table_scan_next(table_scan *s, const char **key, size_t *klen, const char **val,
                          size_t *vlen, bool *eof, char *err, size_t errlen)
{
    *key = NULL;
    *val = NULL;
    *klen = 0;
    *vlen = 0;
    *eof = false;
    if (s->failed)
        return pc_err(err, errlen, PC_ERR_IO, "%s: scan failed earlier", s->dir);
    pc_status rc;
    for (;;) {
        if (s->done || s->shard >= s->m->nshards) {
            s->done = true;
            *eof = true;
            return PC_OK;
        }
        if (s->view.db == NULL) {
            const shard_info *next = &s->m->shards[s->shard];
            if (s->ranged && shard_below_range(s, next)) {
                s->shard++;
                continue;
            }
            if (s->ranged && key_at_or_above_hi(s, next->first_key, next->first_key_len)) {
                s->done = true;
                continue;
            }
            if ((rc = open_shard(s, err, errlen)) != PC_OK)
                return fail(s, rc);
        }
        if (!s->started) {
            if (s->lo != NULL)
                leveldb_iter_seek(s->it, s->lo, s->lo_len);
            else
                leveldb_iter_seek_to_first(s->it);
            s->started = true;
        } else {
            leveldb_iter_next(s->it);
        }
        if (leveldb_iter_valid(s->it))
            break;
        if ((rc = end_shard(s, err, errlen)) != PC_OK)
            return fail(s, rc);
    }
    size_t kl, vl;
    const char *k = leveldb_iter_key(s->it, &kl);
    const char *v = leveldb_iter_value(s->it, &vl);
    const shard_info *si = &s->m->shards[s->shard];
    if (key_at_or_above_hi(s, k, kl)) {
        close_shard(s);
        s->done = true;
        *eof = true;
        return PC_OK;
    }
    if (s->have_prev && st_key_cmp(k, kl, s->prev, s->prev_len) <= 0) {
        char a[ST_KEY_SHOW], b[ST_KEY_SHOW];
        return fail(s, pc_err(err, errlen, PC_ERR_IO, "%s/%s: key \"%s\" not after \"%s\"",
                              s->dir, si->dir, st_key_show(a, sizeof a, k, kl),
                              st_key_show(b, sizeof b, s->prev, s->prev_len)));
    }
    if (si->first_key == NULL ||
        st_key_cmp(k, kl, si->first_key, si->first_key_len) < 0 ||
        st_key_cmp(k, kl, si->last_key, si->last_key_len) > 0) {
        char a[ST_KEY_SHOW];
        return fail(s, pc_err(err, errlen, PC_ERR_IO,
                              "%s/%s: key \"%s\" outside the shard's range in the manifest",
                              s->dir, si->dir, st_key_show(a, sizeof a, k, kl)));
    }
    if (kl + 1 > s->prev_cap) {
        size_t cap = s->prev_cap ? s->prev_cap : 64;
        while (cap < kl + 1)
            cap *= 2;
        char *p = realloc(s->prev, cap);
        if (p == NULL)
            return fail(s, pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", s->dir));
        s->prev = p;
        s->prev_cap = cap;
    }
    if (kl > 0)
        memcpy(s->prev, k, kl);
    s->prev_len = kl;
    s->have_prev = true;
    s->rows++;
    s->checksum += table_pair_hash(k, kl, v, vl);
    *key = k;
    *klen = kl;
    *val = v;
    *vlen = vl;
    return PC_OK;
}
