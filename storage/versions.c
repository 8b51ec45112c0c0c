/* versions.c — the versions of a table: listing, rollback and retention (storage/table.h). */
#include "storage/table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fsutil.h"
#include "storage/internal.h"

#define STAGING_PREFIX ".staging-"
#define TRASH_PREFIX ".trash-"

/* "v" YYYYmmdd "T" HHMMSS "Z-" <at least one character>, as table_version_name makes. */
static bool version_dir_name(const char *s)
{
    static const char shape[] = "vddddddddTddddddZ-";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        char c = s[i];
        if (shape[i] == 'd' ? !(c >= '0' && c <= '9') : c != shape[i])
            return false;
    }
    return s[sizeof shape - 1] != '\0' && st_version_name_valid(s, strlen(s));
}

/* Newest first: by the time in the name, then the -N suffix (a longer name of one stamp and
 * job has a suffix; among equal lengths bytewise order is numeric order). */
static int newest_first(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int c = memcmp(a, b, 17); /* "vYYYYmmddTHHMMSSZ" */
    if (c != 0)
        return -c;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? 1 : -1;
    return -strcmp(a, b);
}

/* The names in table_dir that are real directories (lstat: a symlink is not one) and that
 * `want` accepts, sorted newest first when `sort`.  *names (n entries) is malloc'd, each name
 * too; free with free_names. */
typedef bool (*name_filter)(const char *);

static void free_names(char **names, int64_t n)
{
    if (names != NULL)
        for (int64_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
}

static pc_status list_dirs(const char *table_dir, name_filter want, bool sort, char ***names,
                           int64_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    int dfd = open(table_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return pc_err(err, errlen, errno == ENOENT || errno == ENOTDIR ? PC_ERR_NOINPUT : PC_ERR_IO,
                      "%s: %s", table_dir,
                      errno == ENOENT ? "no such table" : strerror(errno));
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        close(dfd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: opendir: %s", table_dir, strerror(e));
    }
    pc_status rc = PC_OK;
    char **v = NULL;
    int64_t cnt = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (!want(de->d_name)) {
            errno = 0;
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
            errno = 0;
            continue;
        }
        if (cnt == cap) {
            int64_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, (size_t)nc * sizeof *nv);
            if (nv == NULL) {
                rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        if ((v[cnt] = strdup(de->d_name)) == NULL) {
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
            break;
        }
        cnt++;
        errno = 0;
    }
    if (rc == PC_OK && errno != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: readdir: %s", table_dir, strerror(errno));
    closedir(d);
    if (rc != PC_OK) {
        free_names(v, cnt);
        return rc;
    }
    if (sort && cnt > 1)
        qsort(v, (size_t)cnt, sizeof *v, newest_first);
    *names = v;
    *n = cnt;
    return PC_OK;
}

/* CURRENT's name into cur, "" if there is none (a table dir without CURRENT). */
static pc_status current_or_none(const char *table_dir, char *cur, size_t cap, char *err,
                                 size_t errlen)
{
    char path[PATH_MAX];
    pc_status rc = fs_path(path, sizeof path, PC_ERR_NOINPUT, err, errlen, "%s/CURRENT",
                           table_dir);
    if (rc != PC_OK)
        return rc;
    cur[0] = '\0';
    if (!fs_exists(path))
        return PC_OK;
    return table_current(table_dir, cur, cap, err, errlen);
}

/* ---- listing ---- */

void table_versions_free(table_version_info *v, int64_t n)
{
    if (v == NULL)
        return;
    for (int64_t i = 0; i < n; i++) {
        free(v[i].name);
        manifest_free(v[i].m);
        free(v[i].problem);
    }
    free(v);
}

pc_status table_versions_list(const char *table_dir, table_version_info **out, int64_t *n,
                              char *current, size_t cap, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char cur[NAME_MAX + 1];
    char **names;
    int64_t cnt;
    pc_status rc = list_dirs(table_dir, version_dir_name, true, &names, &cnt, err, errlen);
    if (rc != PC_OK)
        return rc;
    rc = current_or_none(table_dir, cur, sizeof cur, err, errlen);
    if (rc != PC_OK) {
        free_names(names, cnt);
        return rc;
    }
    if (cnt == 0 && cur[0] == '\0') {
        free_names(names, cnt);
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: not a table: no CURRENT, no version",
                      table_dir);
    }
    if (current != NULL && cap > 0)
        snprintf(current, cap, "%s", cur);
    table_version_info *v = calloc((size_t)cnt + 1, sizeof *v);
    if (v == NULL) {
        free_names(names, cnt);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
    }
    for (int64_t i = 0; i < cnt; i++) {
        v[i].name = names[i];
        names[i] = NULL;
        v[i].current = strcmp(v[i].name, cur) == 0;
        char mpath[PATH_MAX], merr[PC_ERRLEN];
        pc_status mr = fs_path(mpath, sizeof mpath, PC_ERR_IO, merr, sizeof merr,
                               "%s/%s/MANIFEST.json", table_dir, v[i].name);
        if (mr == PC_OK)
            mr = manifest_read(mpath, &v[i].m, merr, sizeof merr);
        if (mr == PC_OK && strcmp(v[i].m->version, v[i].name) != 0) {
            pc_err(merr, sizeof merr, PC_ERR_IO, "%s: names version %s", mpath,
                   v[i].m->version);
            manifest_free(v[i].m);
            v[i].m = NULL;
            mr = PC_ERR_IO;
        }
        if (mr == PC_ERR_INTERNAL) {
            free_names(names, cnt);
            table_versions_free(v, cnt);
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s", merr);
        }
        if (mr != PC_OK && (v[i].problem = strdup(merr)) == NULL) {
            free_names(names, cnt);
            table_versions_free(v, cnt);
            return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
        }
    }
    free_names(names, cnt);
    *out = v;
    *n = cnt;
    return PC_OK;
}

/* ---- rollback ---- */

/* Checks that table_dir/version is a whole version: a real directory, its manifest reads
 * and names it, every shard dir exists and holds a LevelDB CURRENT file. */
static pc_status check_whole(const char *table_dir, const char *version, char *err,
                             size_t errlen)
{
    char vdir[PATH_MAX], mpath[PATH_MAX];
    pc_status rc;
    if ((rc = fs_path(vdir, sizeof vdir, PC_ERR_NOINPUT, err, errlen, "%s/%s", table_dir,
                      version)) != PC_OK ||
        (rc = fs_path(mpath, sizeof mpath, PC_ERR_NOINPUT, err, errlen, "%s/MANIFEST.json",
                      vdir)) != PC_OK)
        return rc;
    struct stat st;
    if (lstat(vdir, &st) != 0)
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no such version", vdir);
    if (!S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_IO, "%s: not a version directory", vdir);
    manifest *m;
    rc = manifest_read(mpath, &m, err, errlen);
    if (rc == PC_ERR_NOINPUT) /* a version dir without its manifest is half a version */
        return pc_err(err, errlen, PC_ERR_IO, "%s: missing: not a whole version", mpath);
    if (rc != PC_OK)
        return rc;
    if (strcmp(m->version, version) != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: names version %s, not %s", mpath, m->version,
                    version);
    for (int64_t i = 0; rc == PC_OK && i < m->nshards; i++) {
        char spath[PATH_MAX];
        rc = fs_path(spath, sizeof spath, PC_ERR_IO, err, errlen, "%s/%s/CURRENT", vdir,
                     m->shards[i].dir);
        if (rc == PC_OK && (stat(spath, &st) != 0 || !S_ISREG(st.st_mode)))
            rc = pc_err(err, errlen, PC_ERR_IO, "%s/%s: shard missing or not a LevelDB", vdir,
                        m->shards[i].dir);
    }
    manifest_free(m);
    return rc;
}

pc_status table_rollback(const char *table_dir, const char *version, char *err, size_t errlen)
{
    if (version == NULL || !st_version_name_valid(version, strlen(version)))
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: \"%s\" is not a version name", table_dir,
                      version != NULL ? version : "(null)");
    struct stat st;
    if (stat(table_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no such table", table_dir);
    int lock;
    pc_status rc = st_table_lock(table_dir, &lock, err, errlen);
    if (rc != PC_OK)
        return rc;
    /* Checked under the lock: a retention cannot remove it between the check and CURRENT. */
    rc = check_whole(table_dir, version, err, errlen);
    char cur[NAME_MAX + 1];
    if (rc == PC_OK)
        rc = current_or_none(table_dir, cur, sizeof cur, err, errlen);
    if (rc == PC_OK && strcmp(cur, version) != 0) {
        char path[PATH_MAX], line[NAME_MAX + 2];
        rc = fs_path(path, sizeof path, PC_ERR_CANTCREAT, err, errlen, "%s/CURRENT", table_dir);
        int k = snprintf(line, sizeof line, "%s\n", version);
        if (rc == PC_OK && (k < 0 || (size_t)k >= sizeof line))
            rc = pc_err(err, errlen, PC_ERR_NOINPUT, "version name too long: %s", version);
        if (rc == PC_OK)
            rc = fs_write_atomic(path, line, (size_t)k, NULL, err, errlen);
    }
    st_table_unlock(lock);
    return rc;
}

/* ---- retention ---- */

static bool any_dir_name(const char *s)
{
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static bool trash_name(const char *s)
{
    return strncmp(s, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0 && s[strlen(TRASH_PREFIX)] != '\0';
}

static bool staging_name(const char *s)
{
    return strncmp(s, STAGING_PREFIX, strlen(STAGING_PREFIX)) == 0 &&
           s[strlen(STAGING_PREFIX)] != '\0';
}

/* What table_retain reports: a count and a space-separated list cut with "...". */
typedef struct removed_list {
    char *buf;
    size_t cap, len;
    bool cut;
    int64_t n;
} removed_list;

static void note_removed(removed_list *r, const char *name)
{
    r->n++;
    if (r->buf == NULL || r->cap == 0 || r->cut)
        return;
    size_t need = strlen(name) + (r->len > 0 ? 1 : 0);
    if (r->len + need + 1 > r->cap) {
        /* room for " ..." is kept by cutting at the last name that leaves it */
        const char *dots = r->len > 0 ? " ..." : "...";
        if (r->len + strlen(dots) + 1 <= r->cap) {
            memcpy(r->buf + r->len, dots, strlen(dots) + 1);
            r->len += strlen(dots);
        }
        r->cut = true;
        return;
    }
    r->len += (size_t)snprintf(r->buf + r->len, r->cap - r->len, "%s%s", r->len > 0 ? " " : "",
                               name);
}

/* Removes table_dir/<trash name> recursively; on failure keeps the first error. */
static void remove_trash(const char *table_dir, const char *name, const char *shown,
                         removed_list *r, pc_status *first, char *err, size_t errlen)
{
    char path[PATH_MAX], e2[PC_ERRLEN];
    pc_status rc = fs_path(path, sizeof path, PC_ERR_IO, e2, sizeof e2, "%s/%s", table_dir, name);
    if (rc == PC_OK)
        rc = fs_remove_tree(path, e2, sizeof e2);
    if (rc == PC_OK)
        note_removed(r, shown);
    else if (*first == PC_OK)
        *first = pc_err(err, errlen, rc, "%s", e2);
}

/* Renames table_dir/name to table_dir/.trash-name; on success writes the new name into
 * trash (cap NAME_MAX + 1). */
static pc_status to_trash(const char *table_dir, const char *name, char *trash, char *err,
                          size_t errlen)
{
    char from[PATH_MAX], to[PATH_MAX];
    pc_status rc;
    if ((rc = fs_path(trash, NAME_MAX + 1, PC_ERR_IO, err, errlen, TRASH_PREFIX "%s", name)) !=
            PC_OK ||
        (rc = fs_path(from, sizeof from, PC_ERR_IO, err, errlen, "%s/%s", table_dir, name)) !=
            PC_OK ||
        (rc = fs_path(to, sizeof to, PC_ERR_IO, err, errlen, "%s/%s", table_dir, trash)) !=
            PC_OK)
        return rc;
    /* A leftover of the same name (swept just before unless it could not be) is in the way. */
    if (fs_exists(to))
        return pc_err(err, errlen, PC_ERR_IO, "%s: still there, cannot move %s aside", to, from);
    if (rename(from, to) != 0)
        return pc_err(err, errlen, PC_ERR_IO, "rename %s -> %s: %s", from, to, strerror(errno));
    return PC_OK;
}

/* Moves one victim (a version or a stale staging dir) to the trash and records it as
 * victims[*nvict] (its trash name) and shown[*nvict] (its name). A failure to move it is
 * remembered in *first (the first such) and the next victim is tried; only running out of
 * memory stops the loop (returned). */
static pc_status trash_victim(const char *table_dir, char *name, char **shown, char **victims,
                              int64_t *nvict, pc_status *first, char *err, size_t errlen)
{
    shown[*nvict] = name;
    victims[*nvict] = malloc(NAME_MAX + 1);
    if (victims[*nvict] == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
    char e2[PC_ERRLEN];
    pc_status vr = to_trash(table_dir, name, victims[*nvict], e2, sizeof e2);
    if (vr == PC_OK) {
        (*nvict)++;
        return PC_OK;
    }
    free(victims[*nvict]);
    victims[*nvict] = NULL;
    if (*first == PC_OK) *first = pc_err(err, errlen, vr, "%s", e2);
    return PC_OK;
}

/* Test hook (PRECAST_TEST_CRASH=mid_retention:RANK, any rank): SIGKILL after the victims
 * were moved aside to .trash-* and before they are removed (tests/drills/). */
#include <signal.h>
static void retention_crash_point(const char *point)
{
    const char *v = getenv("PRECAST_TEST_CRASH");
    char name[64];
    int rank;
    if (v != NULL && sscanf(v, "%63[a-z_]:%d", name, &rank) == 2 && strcmp(name, point) == 0)
        raise(SIGKILL);
}

/* The version that cur's manifest says it replaced ("previous"), if it names a version dir
 * that still exists.  Any failure to tell is "none": retention then keeps by name alone. */
static bool replaced_version(const char *table_dir, const char *cur, char *prev, size_t cap)
{
    char mpath[PATH_MAX], vdir[PATH_MAX], e2[PC_ERRLEN];
    manifest *m = NULL;
    bool ok = fs_path(mpath, sizeof mpath, PC_ERR_IO, e2, sizeof e2, "%s/%s/MANIFEST.json",
                      table_dir, cur) == PC_OK &&
              manifest_read(mpath, &m, e2, sizeof e2) == PC_OK && m->previous != NULL &&
              strlen(m->previous) < cap && version_dir_name(m->previous) &&
              fs_path(vdir, sizeof vdir, PC_ERR_IO, e2, sizeof e2, "%s/%s", table_dir,
                      m->previous) == PC_OK &&
              fs_exists(vdir);
    if (ok)
        strcpy(prev, m->previous);
    manifest_free(m);
    return ok;
}

pc_status table_retain(const char *table_dir, int64_t keep, table_staging_stale_fn stale,
                       void *ctx, char *removed, size_t cap, int64_t *nremoved, char *err,
                       size_t errlen)
{
    removed_list r = {.buf = removed, .cap = cap};
    if (removed != NULL && cap > 0)
        removed[0] = '\0';
    if (nremoved != NULL)
        *nremoved = 0;
    if (keep < 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "keep_versions %" PRId64 " < 0", keep);
    pc_status first = PC_OK;

    /* 1. What an interrupted call left. */
    char **trash;
    int64_t ntrash;
    pc_status rc = list_dirs(table_dir, trash_name, false, &trash, &ntrash, err, errlen);
    if (rc != PC_OK)
        return rc;
    for (int64_t i = 0; i < ntrash; i++)
        remove_trash(table_dir, trash[i], trash[i], &r, &first, err, errlen);
    free_names(trash, ntrash);

    /* 2. Under the lock: choose, and move aside. */
    int lock;
    rc = st_table_lock(table_dir, &lock, err, errlen);
    if (rc != PC_OK)
        goto out;
    char cur[NAME_MAX + 1];
    rc = table_current(table_dir, cur, sizeof cur, err, errlen);
    char **names = NULL;
    int64_t nnames = 0;
    if (rc == PC_OK)
        rc = list_dirs(table_dir, any_dir_name, false, &names, &nnames, err, errlen);
    char **victims = NULL; /* names moved aside: "<trash name>" */
    char **shown = NULL;   /* ... and their names before */
    int64_t nvict = 0;
    if (rc == PC_OK) {
        victims = calloc((size_t)nnames + 1, sizeof *victims);
        shown = calloc((size_t)nnames + 1, sizeof *shown);
        if (victims == NULL || shown == NULL)
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
    }
    if (rc == PC_OK) {
        /* versions, newest first, then CURRENT's skipped and `keep` others kept */
        char **vers = calloc((size_t)nnames + 1, sizeof *vers);
        int64_t nv = 0;
        if (vers == NULL)
            rc = pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
        for (int64_t i = 0; rc == PC_OK && i < nnames; i++)
            if (version_dir_name(names[i]))
                vers[nv++] = names[i];
        if (nv > 1)
            qsort(vers, (size_t)nv, sizeof *vers, newest_first);
        /* The version CURRENT replaced is kept first: after a rollback it is not the newest
         * by name, yet it was current a moment ago and readers may still be opening it. */
        char prev[NAME_MAX + 1];
        bool keep_prev = keep > 0 && replaced_version(table_dir, cur, prev, sizeof prev);
        int64_t kept = keep_prev ? 1 : 0;
        for (int64_t i = 0; rc == PC_OK && i < nv; i++) {
            if (strcmp(vers[i], cur) == 0 || (keep_prev && strcmp(vers[i], prev) == 0))
                continue;
            if (kept < keep) {
                kept++;
                continue;
            }
            rc = trash_victim(table_dir, vers[i], shown, victims, &nvict, &first, err, errlen);
        }
        free(vers);
        for (int64_t i = 0; rc == PC_OK && stale != NULL && i < nnames; i++) {
            if (!staging_name(names[i]) || !stale(names[i] + strlen(STAGING_PREFIX), ctx))
                continue;
            rc = trash_victim(table_dir, names[i], shown, victims, &nvict, &first, err, errlen);
        }
        if (nvict > 0) {
            char e2[PC_ERRLEN];
            /* Not fatal: the renames stand whether or not they are durable yet. */
            pc_status fr = fs_fsync_path(table_dir, e2, sizeof e2);
            if (fr != PC_OK && first == PC_OK)
                first = pc_err(err, errlen, fr, "%s", e2);
        }
    }
    st_table_unlock(lock);

    /* 3. Out of the lock: the removals themselves, which may take long. */
    if (nvict > 0)
        retention_crash_point("mid_retention");
    for (int64_t i = 0; i < nvict; i++)
        remove_trash(table_dir, victims[i], shown[i], &r, &first, err, errlen);
    if (victims != NULL)
        for (int64_t i = 0; i < nvict; i++)
            free(victims[i]);
    free(victims);
    free(shown);
    free_names(names, nnames);
out:
    if (nremoved != NULL)
        *nremoved = r.n;
    return rc != PC_OK ? rc : first;
}

/* ---- staged versions (input.drift = gate, output.max_changed) ---- */

void table_staged_free(table_staged_info *v, int64_t n)
{
    for (int64_t i = 0; v != NULL && i < n; i++) {
        free(v[i].dir);
        manifest_free(v[i].m);
    }
    free(v);
}

pc_status table_staged_list(const char *table_dir, table_staged_info **out, int64_t *n, char *err,
                            size_t errlen)
{
    *out = NULL;
    *n = 0;
    char **names;
    int64_t cnt;
    pc_status rc = list_dirs(table_dir, staging_name, false, &names, &cnt, err, errlen);
    if (rc != PC_OK)
        return rc;
    table_staged_info *v = calloc((size_t)cnt + 1, sizeof *v);
    if (v == NULL) {
        free_names(names, cnt);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", table_dir);
    }
    int64_t k = 0;
    for (int64_t i = 0; i < cnt; i++) {
        char path[PATH_MAX], why[PC_ERRLEN];
        manifest *m = NULL;
        /* a staging dir without a manifest that reads is a run in progress or a dead one */
        if (fs_path(path, sizeof path, PC_ERR_IO, why, sizeof why, "%s/%s/MANIFEST.json", table_dir,
                    names[i]) != PC_OK ||
            manifest_read(path, &m, why, sizeof why) != PC_OK)
            continue;
        v[k].dir = names[i];
        v[k].m = m;
        names[i] = NULL;
        k++;
    }
    free_names(names, cnt);
    *out = v;
    *n = k;
    return PC_OK;
}

pc_status table_publish_staged(const char *table_dir, const char *version, char *err, size_t errlen)
{
    table_staged_info *v;
    int64_t n;
    pc_status rc = table_staged_list(table_dir, &v, &n, err, errlen);
    if (rc != PC_OK)
        return rc;
    const char *dir = NULL;
    for (int64_t i = 0; i < n && dir == NULL; i++)
        if (v[i].m->version != NULL && strcmp(v[i].m->version, version) == 0)
            dir = v[i].dir;
    char staging[PATH_MAX];
    if (dir == NULL)
        rc = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: no staged version %s", table_dir, version);
    else
        rc = fs_path(staging, sizeof staging, PC_ERR_IO, err, errlen, "%s/%s", table_dir, dir);
    if (rc == PC_OK)
        rc = table_publish(table_dir, staging, version, err, errlen);
    table_staged_free(v, n);
    return rc;
}
