/* table.c — staging, version names, atomic publish, CURRENT, and lookups (storage/table.h). */
#include "storage/table.h"

#include <errno.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fsutil.h"
#include "storage/internal.h"

#define STAGING_PREFIX ".staging-"
#define JOB_NAME_MAX 128
/* CURRENT holds one name: anything much longer is not ours. */
#define CURRENT_MAX_BYTES 4096
/* Readers; the choices go with the writer's and are measured in storage/shard.c's top comment.
 * READ_MAX_OPEN_FILES: LevelDB keeps max_open_files - 10 table files of a shard open, and a
 * lookup in a file that is not open first reads its footer, index and filter: with the
 * former 64, a 10M-row shard (204 files) answered 20,000 gets/s instead of 280,000.  1000 is
 * LevelDB's default, and LevelDB bounds the descriptors itself: it maps up to 1000 table
 * files per process (holding no descriptor), keeps at most a fifth of RLIMIT_NOFILE open for
 * the others and opens the rest at each read.
 * READ_CACHE_BYTES: one block cache for all the shards.  Shards are written uncompressed, and
 * LevelDB reads an uncompressed block of a mapped file in place without caching it (the page
 * cache holds it), so the cache only fills with blocks of files past the 1000 mapped ones;
 * it allocates what it holds, no more.
 * BLOOM_BITS_PER_KEY: the writer's (about 1 % false positives). */
#define READ_CACHE_BYTES ((size_t)32 << 20)
#define READ_MAX_OPEN_FILES 1000
#define BLOOM_BITS_PER_KEY 10

bool table_job_name_valid(const char *job)
{
    if (job == NULL || job[0] == '\0' || job[0] == '.' || job[0] == '-')
        return false;
    size_t n = 0;
    for (const char *p = job; *p != '\0'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= JOB_NAME_MAX)
            return false;
    }
    return true;
}

static pc_status check_job(const char *job, char *err, size_t errlen)
{
    if (table_job_name_valid(job))
        return PC_OK;
    return pc_err(err, errlen, PC_ERR_CONFIG,
                  "job name \"%.*s\" unusable in a directory name: it must be 1..%d characters "
                  "of [A-Za-z0-9._-], not starting with '.' or '-'",
                  200, job != NULL ? job : "(null)", JOB_NAME_MAX);
}

/* A version name as CURRENT may hold it: a plain directory name, printable, not hidden. */
bool st_version_name_valid(const char *v, size_t n)
{
    if (n == 0 || n > 255 || v[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c == 0x7f || c == '/')
            return false;
    }
    return true;
}

pc_status st_table_lock(const char *table_dir, int *fd, char *err, size_t errlen)
{
    *fd = -1;
    char path[PATH_MAX];
    pc_status rc = fs_path(path, sizeof path, PC_ERR_CANTCREAT, err, errlen,
                           "%s/" ST_TABLE_LOCK_NAME, table_dir);
    if (rc != PC_OK)
        return rc;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (f < 0)
        return pc_err(err, errlen, errno == ENOENT ? PC_ERR_NOINPUT : PC_ERR_CANTCREAT,
                      "%s: %s", path, strerror(errno));
    while (flock(f, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(f);
        return pc_err(err, errlen, PC_ERR_IO, "%s: flock: %s", path, strerror(e));
    }
    *fd = f;
    return PC_OK;
}

void st_table_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

pc_status table_iso8601(time_t t, char *buf, size_t cap, char *err, size_t errlen)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "time %lld out of range", (long long)t);
    if (cap < 21 || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "time buffer of %zu bytes too small", cap);
    return PC_OK;
}

/* ---- staging ---- */

pc_status table_staging_create(const char *table_dir, const char *job, char *staging,
                               size_t cap, char *err, size_t errlen)
{
    pc_status rc = check_job(job, err, errlen);
    if (rc != PC_OK)
        return rc;
    char path[PATH_MAX];
    rc = fs_path(path, sizeof path, PC_ERR_CANTCREAT, err, errlen, "%s/" STAGING_PREFIX "%s",
                 table_dir, job);
    if (rc != PC_OK)
        return rc;
    if (strlen(path) >= cap)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: staging buffer of %zu bytes too small",
                      path, cap);
    rc = fs_mkdir_p(table_dir, err, errlen);
    if (rc != PC_OK)
        return rc;
    /* A staging dir left by a killed run: never published, nobody reads it. */
    rc = fs_remove_tree(path, err, errlen);
    if (rc != PC_OK)
        return rc; /* PC_ERR_IO, naming what could not be removed */
    if (mkdir(path, 0777) != 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: mkdir: %s", path, strerror(errno));
    memcpy(staging, path, strlen(path) + 1);
    return PC_OK;
}

void table_staging_remove(const char *staging)
{
    if (staging == NULL)
        return;
    const char *slash = strrchr(staging, '/');
    const char *base = slash != NULL ? slash + 1 : staging;
    if (strncmp(base, STAGING_PREFIX, strlen(STAGING_PREFIX)) != 0)
        return;
    char err[PC_ERRLEN];
    (void)fs_remove_tree(staging, err, sizeof err);
}

/* ---- versions ---- */

pc_status table_version_name_at(const char *table_dir, const char *job, time_t t, char *name,
                                size_t cap, char *err, size_t errlen)
{
    pc_status rc = check_job(job, err, errlen);
    if (rc != PC_OK)
        return rc;
    struct tm tm;
    char stamp[32];
    if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "time %lld out of range", (long long)t);
    for (int k = 1; k < 10000; k++) {
        char cand[NAME_MAX + 1], path[PATH_MAX];
        if (k == 1)
            rc = fs_path(cand, sizeof cand, PC_ERR_INTERNAL, err, errlen, "v%s-%s", stamp, job);
        else
            rc = fs_path(cand, sizeof cand, PC_ERR_INTERNAL, err, errlen, "v%s-%s-%d", stamp,
                         job, k);
        if (rc != PC_OK)
            return rc;
        rc = fs_path(path, sizeof path, PC_ERR_CANTCREAT, err, errlen, "%s/%s", table_dir, cand);
        if (rc != PC_OK)
            return rc;
        if (fs_exists(path))
            continue;
        if (strlen(cand) >= cap)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "version name buffer of %zu bytes too small",
                          cap);
        memcpy(name, cand, strlen(cand) + 1);
        return PC_OK;
    }
    return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: no free version name for v%s-%s",
                  table_dir, stamp, job);
}

pc_status table_version_name(const char *table_dir, const char *job, char *name, size_t cap,
                             char *err, size_t errlen)
{
    return table_version_name_at(table_dir, job, time(NULL), name, cap, err, errlen);
}

pc_status st_version_resolve(const char *table_dir, const char *version, char *name, char *vdir, char *err,
                             size_t errlen)
{
    if (version == NULL) {
        pc_status rc = table_current(table_dir, name, NAME_MAX + 1, err, errlen);
        if (rc != PC_OK)
            return rc;
    } else {
        if (strlen(version) > NAME_MAX || !st_version_name_valid(version, strlen(version)))
            return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: \"%s\" is not a version name", table_dir, version);
        strcpy(name, version);
    }
    return fs_path(vdir, PATH_MAX, PC_ERR_NOINPUT, err, errlen, "%s/%s", table_dir, name);
}

pc_status table_current(const char *table_dir, char *version, size_t cap, char *err,
                        size_t errlen)
{
    char path[PATH_MAX];
    pc_status rc = fs_path(path, sizeof path, PC_ERR_NOINPUT, err, errlen, "%s/CURRENT",
                           table_dir);
    if (rc != PC_OK)
        return rc;
    char *text;
    size_t len;
    rc = fs_read_file(path, CURRENT_MAX_BYTES, &text, &len, err, errlen);
    if (rc != PC_OK)
        return rc;
    if (len < 2 || text[len - 1] != '\n' || !st_version_name_valid(text, len - 1)) {
        free(text);
        return pc_err(err, errlen, PC_ERR_IO, "%s: corrupt: not one version name and a newline",
                      path);
    }
    if (len - 1 >= cap) {
        free(text);
        return pc_err(err, errlen, PC_ERR_IO, "%s: version name longer than %zu bytes", path,
                      cap);
    }
    memcpy(version, text, len - 1);
    version[len - 1] = '\0';
    free(text);
    return PC_OK;
}

/* Test hook (PRECAST_TEST_CRASH=before_current:RANK, any rank: only rank 0 publishes): the
 * process kills itself with SIGKILL after the version dir has its name and before CURRENT
 * names it, so that tests/drills/ can show a version renamed but not current is harmless. */
#include <signal.h>
static void publish_crash_point(const char *point)
{
    const char *v = getenv("PRECAST_TEST_CRASH");
    char name[64];
    int rank;
    if (v != NULL && sscanf(v, "%63[a-z_]:%d", name, &rank) == 2 && strcmp(name, point) == 0)
        raise(SIGKILL);
}

pc_status table_publish(const char *table_dir, const char *staging, const char *version,
                        char *err, size_t errlen)
{
    if (version == NULL || !st_version_name_valid(version, strlen(version)))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "version name \"%s\" is not a plain name",
                      version != NULL ? version : "(null)");
    char dest[PATH_MAX], mpath[PATH_MAX], current[PATH_MAX];
    pc_status rc;
    if ((rc = fs_path(dest, sizeof dest, PC_ERR_CANTCREAT, err, errlen, "%s/%s", table_dir,
                      version)) != PC_OK ||
        (rc = fs_path(mpath, sizeof mpath, PC_ERR_CANTCREAT, err, errlen, "%s/MANIFEST.json",
                      staging)) != PC_OK ||
        (rc = fs_path(current, sizeof current, PC_ERR_CANTCREAT, err, errlen, "%s/CURRENT",
                      table_dir)) != PC_OK)
        return rc;
    struct stat st;
    if (lstat(staging, &st) != 0)
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: staging dir missing: %s", staging,
                      strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: staging is not a directory", staging);

    /* 1. The manifest is there and names this version. */
    manifest *m;
    rc = manifest_read(mpath, &m, err, errlen);
    if (rc == PC_ERR_NOINPUT)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: missing: write it before publishing",
                      mpath);
    if (rc != PC_OK)
        return rc;
    bool same = strcmp(m->version, version) == 0;
    manifest_free(m);
    if (!same)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: names another version than %s", mpath,
                      version);
    if (fs_exists(dest))
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: version already exists", dest);

    /* 2. Everything in the version is durable before anything points at it. */
    rc = fs_fsync_tree(staging, err, errlen);
    if (rc != PC_OK)
        return rc;

    /* 3. The version appears under its name.  Under the table lock, so that a retention
     * running elsewhere cannot take the new version for an old one between the rename and
     * CURRENT (table.h). */
    int lock;
    rc = st_table_lock(table_dir, &lock, err, errlen);
    if (rc != PC_OK)
        return rc;
    if (rename(staging, dest) != 0) {
        rc = pc_err(err, errlen, PC_ERR_CANTCREAT, "rename %s -> %s: %s", staging, dest,
                    strerror(errno));
        st_table_unlock(lock);
        return rc;
    }
    rc = fs_fsync_path(table_dir, err, errlen);
    publish_crash_point("before_current");

    /* 4. CURRENT names it. */
    bool replaced = false;
    if (rc == PC_OK) {
        char line[NAME_MAX + 2];
        int n = snprintf(line, sizeof line, "%s\n", version);
        if (n < 0 || (size_t)n >= sizeof line)
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "version name too long: %s", version);
        else
            rc = fs_write_atomic(current, line, (size_t)n, &replaced, err, errlen);
    }
    if (rc != PC_OK && !replaced) {
        /* CURRENT still names the old version: put the new one back where it was, so that a
         * retry starts from the same state. */
        if (rename(dest, staging) == 0) {
            char e2[PC_ERRLEN];
            (void)fs_fsync_path(table_dir, e2, sizeof e2);
        }
    }
    st_table_unlock(lock);
    return rc;
}

/* ---- lookups ---- */

struct table {
    char dir[PATH_MAX]; /* version dir */
    manifest *m;
    leveldb_options_t *opts;
    leveldb_filterpolicy_t *bloom;
    leveldb_cache_t *cache;
    leveldb_readoptions_t *ro;
    st_shard_view *shards; /* m->nshards, each open through a private view */
    int64_t *route;   /* indices of the non-empty shards, in key order */
    int64_t nroute;
};

void table_close(table *t)
{
    if (t == NULL)
        return;
    if (t->shards != NULL)
        for (int64_t i = 0; i < t->m->nshards; i++)
            st_shard_view_close(&t->shards[i]);
    free(t->shards);
    free(t->route);
    /* The filter policy and cache must outlive the databases that use them. */
    if (t->ro != NULL)
        leveldb_readoptions_destroy(t->ro);
    if (t->opts != NULL)
        leveldb_options_destroy(t->opts);
    if (t->bloom != NULL)
        leveldb_filterpolicy_destroy(t->bloom);
    if (t->cache != NULL)
        leveldb_cache_destroy(t->cache);
    manifest_free(t->m);
    free(t);
}

pc_status table_open_version(const char *table_dir, const char *version, table **out,
                             char *err, size_t errlen)
{
    return table_open_version_cached(table_dir, version, 0, out, err, errlen);
}

pc_status table_open_version_cached(const char *table_dir, const char *version,
                                    size_t cache_bytes, table **out, char *err, size_t errlen)
{
    *out = NULL;
    if (version == NULL || !st_version_name_valid(version, strlen(version)))
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: \"%s\" is not a version name", table_dir,
                      version != NULL ? version : "(null)");
    table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char mpath[PATH_MAX];
    pc_status rc;
    if ((rc = fs_path(t->dir, sizeof t->dir, PC_ERR_NOINPUT, err, errlen, "%s/%s", table_dir,
                      version)) != PC_OK ||
        (rc = fs_path(mpath, sizeof mpath, PC_ERR_NOINPUT, err, errlen, "%s/MANIFEST.json",
                      t->dir)) != PC_OK)
        goto fail;
    struct stat st;
    if (stat(t->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no such version", t->dir);
        goto fail;
    }
    rc = manifest_read(mpath, &t->m, err, errlen);
    if (rc == PC_ERR_NOINPUT) /* a version without its manifest is damaged, not missing */
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: missing", mpath);
    if (rc != PC_OK)
        goto fail;
    if (strcmp(t->m->version, version) != 0) {
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: names version %s, not %s", mpath,
                    t->m->version, version);
        goto fail;
    }
    t->opts = leveldb_options_create();
    t->bloom = leveldb_filterpolicy_create_bloom(BLOOM_BITS_PER_KEY);
    t->cache = leveldb_cache_create_lru(cache_bytes > 0 ? cache_bytes : READ_CACHE_BYTES);
    t->ro = leveldb_readoptions_create();
    int64_t n = t->m->nshards;
    t->shards = calloc((size_t)n + 1, sizeof *t->shards);
    t->route = calloc((size_t)n + 1, sizeof *t->route);
    if (t->opts == NULL || t->bloom == NULL || t->cache == NULL || t->ro == NULL ||
        t->shards == NULL || t->route == NULL) {
        rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", t->dir);
        goto fail;
    }
    leveldb_options_set_create_if_missing(t->opts, 0);
    leveldb_options_set_paranoid_checks(t->opts, 1);
    leveldb_options_set_filter_policy(t->opts, t->bloom);
    leveldb_options_set_cache(t->opts, t->cache);
    leveldb_options_set_max_open_files(t->opts, READ_MAX_OPEN_FILES);
    leveldb_readoptions_set_verify_checksums(t->ro, 1);
    for (int64_t i = 0; i < n; i++) {
        const shard_info *s = &t->m->shards[i];
        char spath[PATH_MAX];
        if ((rc = fs_path(spath, sizeof spath, PC_ERR_IO, err, errlen, "%s/%s", t->dir,
                          s->dir)) != PC_OK)
            goto fail;
        /* LevelDB's open would create a missing directory: check first. */
        if (stat(spath, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: shard missing", spath);
            goto fail;
        }
        if ((rc = st_shard_view_open(spath, t->opts, &t->shards[i], err, errlen)) != PC_OK)
            goto fail;
        if (s->first_key != NULL)
            t->route[t->nroute++] = i;
    }
    *out = t;
    return PC_OK;
fail:
    table_close(t);
    return rc;
}

pc_status table_open(const char *table_dir, table **out, char *err, size_t errlen)
{
    return table_open_cached(table_dir, 0, out, err, errlen);
}

pc_status table_open_cached(const char *table_dir, size_t cache_bytes, table **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    char version[NAME_MAX + 1], again[NAME_MAX + 1];
    pc_status rc = table_current(table_dir, version, sizeof version, err, errlen);
    /* Retention may remove the version CURRENT named between our reading CURRENT and
     * opening it (CURRENT has moved on by then): read CURRENT again and retry. */
    for (int tries = 0; rc == PC_OK; tries++) {
        rc = table_open_version_cached(table_dir, version, cache_bytes, out, err, errlen);
        char e2[PC_ERRLEN];
        if (rc == PC_OK || tries == 3 ||
            table_current(table_dir, again, sizeof again, e2, sizeof e2) != PC_OK ||
            strcmp(again, version) == 0)
            return rc;
        strcpy(version, again);
    }
    return rc;
}

/* LevelDB opens a table file at the first lookup that needs it, and reports a file that is
 * gone (ENOENT) as NotFound: a version removed while it was open would answer misses.  So a
 * miss inside a shard's range is confirmed by the version directory still being there
 * (retention renames it away first); one stat, paid only by misses that reach LevelDB. */
static pc_status miss_or_gone(const table *t, char *err, size_t errlen)
{
    struct stat st;
    if (stat(t->dir, &st) != 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: version removed while open (%s)", t->dir,
                      strerror(errno));
    return PC_OK;
}

pc_status table_get(table *t, const void *key, size_t klen, char **val, size_t *vlen,
                    bool *found, char *err, size_t errlen)
{
    *val = NULL;
    *vlen = 0;
    *found = false;
    /* The last non-empty shard whose first key is <= key. */
    int64_t lo = 0, hi = t->nroute;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const shard_info *s = &t->m->shards[t->route[mid]];
        if (st_key_cmp(s->first_key, s->first_key_len, key, klen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return PC_OK; /* before every range */
    int64_t i = t->route[lo - 1];
    const shard_info *s = &t->m->shards[i];
    if (st_key_cmp(key, klen, s->last_key, s->last_key_len) > 0)
        return PC_OK; /* between two ranges, or after the last */
    char *lerr = NULL;
    size_t n = 0;
    char *v = leveldb_get(t->shards[i].db, t->ro, key, klen, &n, &lerr);
    if (lerr != NULL) {
        if (v != NULL)
            leveldb_free(v);
        return st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s/%s: get", t->dir, s->dir);
    }
    if (v == NULL)
        return miss_or_gone(t, err, errlen);
    /* Our copy, so that the caller can free() it whatever allocator LevelDB uses. */
    char *copy = st_memdup(v, n);
    leveldb_free(v);
    if (copy == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for a %zu-byte value", n);
    *val = copy;
    *vlen = n;
    *found = true;
    return PC_OK;
}

pc_status table_multi_get(table *t, size_t n, const void *const *keys, const size_t *klens,
                          char **vals, size_t *vlens, bool *found, char *err, size_t errlen)
{
    pc_status rc = PC_OK;
    size_t i = 0;
    for (; i < n && rc == PC_OK; i++) {
        bool hit;
        rc = table_get(t, keys[i], klens[i], &vals[i], &vlens[i], &hit, err, errlen);
        if (found != NULL)
            found[i] = hit;
    }
    for (size_t j = 0; rc != PC_OK && j < n; j++) {
        if (j < i)
            free(vals[j]);
        vals[j] = NULL;
    }
    return rc;
}

const manifest *table_manifest(const table *t)
{
    return t->m;
}

const char *table_version_dir(const table *t)
{
    return t->dir;
}

/* ---- verify ---- */

pc_status table_verify(const char *table_dir, const char *version, int64_t *rows, char *err,
                       size_t errlen)
{
    if (rows != NULL)
        *rows = 0;
    char name[NAME_MAX + 1], vdir[PATH_MAX], mpath[PATH_MAX];
    pc_status rc = st_version_resolve(table_dir, version, name, vdir, err, errlen);
    if (rc != PC_OK)
        return rc;
    version = name;
    if ((rc = fs_path(mpath, sizeof mpath, PC_ERR_NOINPUT, err, errlen, "%s/MANIFEST.json",
                      vdir)) != PC_OK)
        return rc;
    struct stat st;
    if (stat(vdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no such version", vdir);
    manifest *m;
    rc = manifest_read(mpath, &m, err, errlen);
    if (rc == PC_ERR_NOINPUT)
        return pc_err(err, errlen, PC_ERR_IO, "%s: missing", mpath);
    if (rc != PC_OK)
        return rc;
    int64_t total = 0;
    uint64_t sum = 0;
    if (strcmp(m->version, version) != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: names version %s, not %s", mpath, m->version,
                    version);
    for (int64_t i = 0; rc == PC_OK && i < m->nshards; i++) {
        char spath[PATH_MAX];
        rc = fs_path(spath, sizeof spath, PC_ERR_IO, err, errlen, "%s/%s", vdir,
                     m->shards[i].dir);
        if (rc == PC_OK)
            rc = shard_verify(spath, &m->shards[i], err, errlen);
        total += m->shards[i].rows;
        sum += m->shards[i].checksum;
    }
    if (rc == PC_OK && total != m->rows_written)
        rc = pc_err(err, errlen, PC_ERR_IO,
                    "%s: rows_written %" PRId64 " but the shards hold %" PRId64, mpath,
                    m->rows_written, total);
    if (rc == PC_OK && sum != m->checksum)
        rc = pc_err(err, errlen, PC_ERR_IO,
                    "%s: checksum %016" PRIx64 " but the shards sum to %016" PRIx64, mpath,
                    m->checksum, sum);
    if (rc == PC_OK && (m->rows_rejected > INT64_MAX - m->rows_written ||
                        m->rows_dropped > INT64_MAX - m->rows_written - m->rows_rejected ||
                        m->rows_in != m->rows_written + m->rows_rejected + m->rows_dropped))
        rc = pc_err(err, errlen, PC_ERR_IO,
                    "%s: rows_in %" PRId64 " != rows_written %" PRId64 " + rows_rejected %" PRId64
                    " + rows_dropped %" PRId64,
                    mpath, m->rows_in, m->rows_written, m->rows_rejected, m->rows_dropped);
    manifest_free(m);
    if (rc == PC_OK && rows != NULL)
        *rows = total;
    return rc;
}
