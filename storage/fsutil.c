#include "storage/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pc_status fs_path(char *buf, size_t cap, pc_status code, char *err, size_t errlen,
                  const char *fmt, ...)
{
    if (cap == 0)
        return pc_err(err, errlen, code, "path buffer of 0 bytes");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        pc_status rc = pc_err(err, errlen, code, "path too long (%d bytes, limit %zu): %.80s...",
                              n, cap - 1, buf);
        buf[0] = '\0';
        return rc;
    }
    return PC_OK;
}

pc_status fs_fsync_path(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: open for fsync: %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", path, strerror(e));
    }
    close(fd);
    return PC_OK;
}

pc_status fs_fsync_parent(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return fs_fsync_path(".", err, errlen);
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/name": the parent is "/" */
    if (n >= sizeof dir)
        return pc_err(err, errlen, PC_ERR_IO, "path too long: %.80s...", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return fs_fsync_path(dir, err, errlen);
}

/* Fsyncs every file and directory below the open directory dfd (which it closes), at most
 * `depth` levels deep.  `path` names dfd in messages. */
static pc_status fsync_tree_fd(int dfd, const char *path, int depth, char *err, size_t errlen)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        close(dfd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: opendir: %s", path, strerror(e));
    }
    pc_status rc = PC_OK;
    struct dirent *de;
    errno = 0;
    while (rc == PC_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        rc = fs_path(sub, sizeof sub, PC_ERR_IO, err, errlen, "%s/%s", path, de->d_name);
        if (rc != PC_OK)
            break;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: stat: %s", sub, strerror(errno));
            break;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: open: %s", sub, strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth <= 0) {
                close(fd);
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: directories nested too deep", sub);
                break;
            }
            rc = fsync_tree_fd(fd, sub, depth - 1, err, errlen); /* closes fd */
        } else {
            if (fsync(fd) != 0)
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", sub, strerror(errno));
            close(fd);
        }
        errno = 0;
    }
    if (rc == PC_OK && errno != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: readdir: %s", path, strerror(errno));
    if (rc == PC_OK && fsync(dirfd(d)) != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", path, strerror(errno));
    closedir(d);
    return rc;
}

pc_status fs_fsync_tree(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: open: %s", dir, strerror(errno));
    return fsync_tree_fd(fd, dir, 16, err, errlen);
}

pc_status fs_write_atomic(const char *path, const void *data, size_t len, bool *replaced,
                          char *err, size_t errlen)
{
    if (replaced != NULL)
        *replaced = false;
    char tmp[PATH_MAX];
    pc_status rc = fs_path(tmp, sizeof tmp, PC_ERR_CANTCREAT, err, errlen, "%s.tmp", path);
    if (rc != PC_OK)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: write: %s", tmp,
                        n < 0 ? strerror(errno) : "wrote nothing");
            goto fail_fd;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
        goto fail_fd;
    }
    if (close(fd) != 0) {
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: close: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        rc = pc_err(err, errlen, PC_ERR_CANTCREAT, "rename %s -> %s: %s", tmp, path,
                    strerror(errno));
        unlink(tmp);
        return rc;
    }
    /* The rename is done: path has its new content even if this fsync fails, but it is not
     * yet durable, which the caller must hear about. */
    if (replaced != NULL)
        *replaced = true;
    return fs_fsync_parent(path, err, errlen);

fail_fd:
    close(fd);
    unlink(tmp);
    return rc;
}

pc_status fs_read_file(const char *path, size_t max_len, char **data, size_t *len,
                       char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pc_err(err, errlen, errno == ENOENT ? PC_ERR_NOINPUT : PC_ERR_IO, "%s: %s", path,
                      strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_len) {
        close(fd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: %lld bytes, more than the limit of %zu", path,
                      (long long)st.st_size, max_len);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return pc_err(err, errlen, PC_ERR_IO, "%s: read: %s", path, strerror(e));
        }
        if (n == 0)
            break; /* the file shrank: parse what is there, the parser will judge */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return PC_OK;
}

pc_status fs_mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    pc_status rc = fs_path(buf, sizeof buf, PC_ERR_CANTCREAT, err, errlen, "%s", path);
    if (rc != PC_OK)
        return rc;
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    if (n == 0)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "empty directory path");
    for (char *p = buf + 1;; p++) {
        bool last = (*p == '\0');
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: mkdir: %s", buf,
                              e == EEXIST ? "exists and is not a directory" : strerror(e));
        }
        if (last)
            break;
        *p = '/';
    }
    return PC_OK;
}

/* Empties the open directory dfd (which it closes), at most `depth` levels deep. */
static pc_status remove_tree_fd(int dfd, const char *path, int depth, char *err, size_t errlen)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        close(dfd);
        return pc_err(err, errlen, PC_ERR_IO, "%s: opendir: %s", path, strerror(e));
    }
    pc_status rc = PC_OK;
    struct dirent *de;
    errno = 0;
    while (rc == PC_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        rc = fs_path(sub, sizeof sub, PC_ERR_IO, err, errlen, "%s/%s", path, de->d_name);
        if (rc != PC_OK)
            break;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: stat: %s", sub, strerror(errno));
            errno = 0;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth <= 0) {
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: directories nested too deep", sub);
                break;
            }
            int fd = openat(dirfd(d), de->d_name,
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: open: %s", sub, strerror(errno));
                break;
            }
            rc = remove_tree_fd(fd, sub, depth - 1, err, errlen);
            if (rc == PC_OK && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
                rc = pc_err(err, errlen, PC_ERR_IO, "%s: rmdir: %s", sub, strerror(errno));
        } else if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
            rc = pc_err(err, errlen, PC_ERR_IO, "%s: unlink: %s", sub, strerror(errno));
        }
        errno = 0;
    }
    if (rc == PC_OK && errno != 0)
        rc = pc_err(err, errlen, PC_ERR_IO, "%s: readdir: %s", path, strerror(errno));
    closedir(d);
    return rc;
}

pc_status fs_remove_tree(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return PC_OK;
        return pc_err(err, errlen, PC_ERR_IO, "%s: stat: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return pc_err(err, errlen, PC_ERR_IO, "%s: unlink: %s", path, strerror(errno));
        return PC_OK;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: open: %s", path, strerror(errno));
    pc_status rc = remove_tree_fd(fd, path, 16, err, errlen);
    if (rc != PC_OK)
        return rc;
    if (rmdir(path) != 0 && errno != ENOENT)
        return pc_err(err, errlen, PC_ERR_IO, "%s: rmdir: %s", path, strerror(errno));
    return PC_OK;
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}
