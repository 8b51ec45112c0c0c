/*
 * fsutil.h — private file-system helpers of storage/: checked path formatting, fsync of
 * files and directories, atomic small-file replacement, mkdir -p, and a recursive removal
 * that never follows symbolic links.  Not part of the public API (see storage/table.h).
 *
 * All functions are reentrant; none keeps state.  Errors are reported as in the rest of
 * precast: a pc_status and a message naming the path in (err, errlen).
 */
#ifndef PRECAST_STORAGE_FSUTIL_H
#define PRECAST_STORAGE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/status.h"

/* Formats a path into buf (cap bytes).  If it would not fit (or cap is 0), returns `code`
 * with a message "path too long: <start of path>..." and leaves buf holding an empty string;
 * never returns a silently truncated path. */
pc_status fs_path(char *buf, size_t cap, pc_status code, char *err, size_t errlen,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Opens path (a file or a directory) read-only and fsyncs it.  Failure -> PC_ERR_IO. */
pc_status fs_fsync_path(const char *path, char *err, size_t errlen);

/* Fsyncs the directory that contains path (".", if path has no '/').  Failure -> PC_ERR_IO. */
pc_status fs_fsync_parent(const char *path, char *err, size_t errlen);

/* Fsyncs every regular file and directory below and including dir, without following
 * symbolic links.  Failure -> PC_ERR_IO naming the path. */
pc_status fs_fsync_tree(const char *dir, char *err, size_t errlen);

/* Replaces path atomically with len bytes of data: writes path.tmp, fsyncs it, renames it
 * over path and fsyncs the directory.  Creating or renaming fails -> PC_ERR_CANTCREAT,
 * writing or syncing fails -> PC_ERR_IO.  On failure before the rename, path is untouched
 * (old content, or still absent) and path.tmp is removed; only the last step, the fsync of
 * the directory, can fail after the rename: then path already has the new content (not yet
 * durable).  *replaced (if not NULL) tells which: true once the rename was done. */
pc_status fs_write_atomic(const char *path, const void *data, size_t len, bool *replaced,
                          char *err, size_t errlen);

/* Reads the whole regular file at path into a malloc'd, NUL-terminated buffer (*data, the
 * caller frees it; *len excludes the NUL).  A file larger than max_len bytes is refused.
 * Missing file -> PC_ERR_NOINPUT; unreadable or too large -> PC_ERR_IO; out of memory ->
 * PC_ERR_INTERNAL.  On failure *data is NULL. */
pc_status fs_read_file(const char *path, size_t max_len, char **data, size_t *len,
                       char *err, size_t errlen);

/* mkdir -p with mode 0777 (before umask).  An existing directory is fine; an existing
 * non-directory, or a failure -> PC_ERR_CANTCREAT naming the component. */
pc_status fs_mkdir_p(const char *path, char *err, size_t errlen);

/* Removes path and, if it is a directory, everything below it.  Symbolic links are removed,
 * never followed, so nothing outside path is touched.  A missing path is success.
 * Failure -> PC_ERR_IO naming the entry that could not be removed; what was removed before
 * the failure stays removed. */
pc_status fs_remove_tree(const char *path, char *err, size_t errlen);

/* True if path exists (lstat succeeds: a dangling symlink exists). */
bool fs_exists(const char *path);

#endif
