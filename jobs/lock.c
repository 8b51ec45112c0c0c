#include "jobs/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct job_lock {
    int fd;
    char holder[HOST_NAME_MAX + 64];
};

pc_status job_lock_default_path(char *out, size_t cap, const char *table_dir, const char *job,
                                char *err, size_t errlen)
{
    int n = snprintf(out, cap, "%s/.lock-%s", table_dir, job);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0) out[0] = '\0';
        return pc_err(err, errlen, PC_ERR_CONFIG, "%s: lock path too long", table_dir);
    }
    return PC_OK;
}

/* mkdir -p of the directory part of path (nothing if path has no '/'). */
static pc_status make_parent(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof dir) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: path too long", path);
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) return PC_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: mkdir: %s", dir, strerror(errno));
        *p = c;
        if (c == '\0') break;
    }
    return PC_OK;
}

/* The holder's first line, "HOST PID START", from fd (read from offset 0); "" if none. */
static void read_holder(int fd, char *buf, size_t cap)
{
    ssize_t n;
    do n = pread(fd, buf, cap - 1, 0);
    while (n < 0 && errno == EINTR);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static pc_status locked_error(int fd, const char *path, const char *job, char *err, size_t errlen)
{
    char line[512], host[256], start[64];
    long pid;
    read_holder(fd, line, sizeof line);
    if (sscanf(line, "%255s %ld %63s", host, &pid, start) == 3)
        return pc_err(err, errlen, PC_ERR_LOCKED, "job '%s' is running: host %s, pid %ld, since %s (lock %s)",
                      job, host, pid, start, path);
    return pc_err(err, errlen, PC_ERR_LOCKED, "job '%s' is running: holder not recorded yet (lock %s)", job,
                  path);
}

/* Writes the holder line at offset 0, then cuts the file to it: a reader never sees an empty
 * file, and parses only the first line, so a longer previous content does not matter. */
static pc_status write_holder(job_lock *l, const char *path, char *err, size_t errlen)
{
    char host[HOST_NAME_MAX + 1] = "unknown";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == ' ' || *p == '\n') *p = '_';
    char start[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(l->holder, sizeof l->holder, "%s %ld %s", host, (long)getpid(), start);
    char line[sizeof l->holder + 1];
    size_t len = (size_t)snprintf(line, sizeof line, "%s\n", l->holder);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(l->fd, line + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return pc_err(err, errlen, PC_ERR_IO, "%s: write: %s", path, strerror(n < 0 ? errno : EIO));
        done += (size_t)n;
    }
    if (ftruncate(l->fd, (off_t)len) != 0)
        return pc_err(err, errlen, PC_ERR_IO, "%s: ftruncate: %s", path, strerror(errno));
    return PC_OK;
}

pc_status job_lock_acquire(const char *lock_path, const char *job, job_lock **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    pc_status s = make_parent(lock_path, err, errlen);
    if (s != PC_OK) return s;
    job_lock *l = calloc(1, sizeof *l);
    if (l == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the job lock");
    l->fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: cannot open lock file: %s", lock_path, strerror(errno));
        free(l);
        return s;
    }
    int rc;
    do rc = flock(l->fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        if (errno == EWOULDBLOCK)
            s = locked_error(l->fd, lock_path, job, err, errlen);
        else
            s = pc_err(err, errlen, PC_ERR_IO,
                       "%s: flock: %s (the file system may not support locks: set [run] lock to a local path)",
                       lock_path, strerror(errno));
        close(l->fd);
        free(l);
        return s;
    }
    if ((s = write_holder(l, lock_path, err, errlen)) != PC_OK) {
        close(l->fd); /* unlocks */
        free(l);
        return s;
    }
    *out = l;
    return PC_OK;
}

const char *job_lock_holder(const job_lock *l)
{
    return l->holder;
}

void job_lock_release(job_lock *l)
{
    if (l == NULL) return;
    flock(l->fd, LOCK_UN);
    close(l->fd);
    free(l);
}
