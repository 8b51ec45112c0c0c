/*
 * view.c — opening a published shard for reading without writing into it.
 *
 * LevelDB has no read-only mode: leveldb_open takes an exclusive lock on the database's LOCK
 * file, starts a new log and MANIFEST, and writes its info LOG.  Opened in place, a published
 * shard could be read by one process at a time (a server holding it would make `precast get`
 * and the nightly job's diff fail), a reader would need write access to the table, and
 * readers would rewrite files of a version that is meant to be immutable.
 *
 * So a reader opens a private view instead: a fresh directory under $TMPDIR holding symbolic
 * links to the shard's files (not LOCK and LOG, which belong to whoever opens the view).
 * LevelDB writes its lock, log, new MANIFEST and CURRENT into the view — replacing links, never
 * their targets — and only reads the table files through the links; it never modifies a table
 * file, so the shard stays byte for byte as published.  The view is removed on close; a view
 * left by a killed process is swept by the next reader (its directory name carries the pid).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "storage/fsutil.h"
#include "storage/internal.h"

#define VIEW_PREFIX "precast-view-"

static const char *view_base(void)
{
    const char *t = getenv("TMPDIR");
    return t != NULL && t[0] == '/' ? t : "/tmp";
}

/* Removes views whose process is gone.  Best effort: a view we cannot remove is left. */
static void sweep_dead_views(const char *base)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, VIEW_PREFIX, strlen(VIEW_PREFIX)) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + strlen(VIEW_PREFIX), &end, 10);
        if (pid <= 0 || *end != '-' || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to judge */
        char path[PATH_MAX], e2[PC_ERRLEN];
        if (fs_path(path, sizeof path, PC_ERR_IO, e2, sizeof e2, "%s/%s", base, e->d_name) == PC_OK)
            (void)fs_remove_tree(path, e2, sizeof e2);
    }
    closedir(d);
}

/* Whether a file of the shard belongs in a view: not the lock and info log of the writer. */
static bool view_takes(const char *name)
{
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && strcmp(name, "LOCK") != 0 &&
           strcmp(name, "LOG") != 0 && strcmp(name, "LOG.old") != 0;
}

/* Links every file of shard (an absolute path) into view. */
static pc_status link_files(const char *shard, const char *view, char *err, size_t errlen)
{
    DIR *d = opendir(shard);
    if (d == NULL)
        return pc_err(err, errlen, PC_ERR_IO, "%s: %s", shard, strerror(errno));
    pc_status rc = PC_OK;
    struct dirent *e;
    while (rc == PC_OK && (e = readdir(d)) != NULL) {
        if (!view_takes(e->d_name))
            continue;
        char target[PATH_MAX], link[PATH_MAX];
        rc = fs_path(target, sizeof target, PC_ERR_IO, err, errlen, "%s/%s", shard, e->d_name);
        if (rc == PC_OK)
            rc = fs_path(link, sizeof link, PC_ERR_IO, err, errlen, "%s/%s", view, e->d_name);
        if (rc == PC_OK && symlink(target, link) != 0)
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: cannot link into %s: %s", target, view,
                        strerror(errno));
    }
    closedir(d);
    return rc;
}

pc_status st_shard_view_open(const char *shard, const leveldb_options_t *opts, st_shard_view *v,
                             char *err, size_t errlen)
{
    v->db = NULL;
    v->dir[0] = '\0';
    char abs[PATH_MAX];
    if (realpath(shard, abs) == NULL)
        return pc_err(err, errlen, PC_ERR_IO, "%s: shard missing: %s", shard, strerror(errno));
    const char *base = view_base();
    sweep_dead_views(base);
    pc_status rc = fs_path(v->dir, sizeof v->dir, PC_ERR_IO, err, errlen, "%s/" VIEW_PREFIX "%ld-XXXXXX",
                           base, (long)getpid());
    if (rc != PC_OK)
        return rc;
    if (mkdtemp(v->dir) == NULL) {
        rc = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot create a read view of %s: %s",
                    v->dir, shard, strerror(errno));
        v->dir[0] = '\0';
        return rc;
    }
    rc = link_files(abs, v->dir, err, errlen);
    if (rc == PC_OK) {
        char *lerr = NULL;
        v->db = leveldb_open(opts, v->dir, &lerr);
        if (lerr != NULL || v->db == NULL) {
            v->db = NULL;
            rc = st_ldb_err(err, errlen, PC_ERR_IO, lerr, "%s: open shard", shard);
        }
    }
    if (rc != PC_OK)
        st_shard_view_close(v);
    return rc;
}

void st_shard_view_close(st_shard_view *v)
{
    if (v->db != NULL)
        leveldb_close(v->db);
    v->db = NULL;
    if (v->dir[0] != '\0') {
        char e2[PC_ERRLEN];
        (void)fs_remove_tree(v->dir, e2, sizeof e2);
    }
    v->dir[0] = '\0';
}
