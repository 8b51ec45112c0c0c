/* powerloss_shim.so — LD_PRELOAD shim for the power-loss drill (tests/drills/powerloss.sh).
 *
 * LevelDB's FaultInjectionTestEnv idea applied to the files precast writes: what survives a
 * power cut is what was fsynced. The shim records, for every file and directory under
 * $PL_ROOT, the moments their state became durable, into the journal $PL_JOURNAL (one line
 * per event, appended with O_APPEND by every process of the run, so one global order):
 *
 *   F <pid> <ino> <snapshot> <path>   fsync/fdatasync of a regular file returned 0; <snapshot>
 *                                     is a copy of its bytes taken just BEFORE the call (so
 *                                     it holds no byte the fsync did not cover)
 *   D <pid> <ino> <path> <entries>    fsync of a directory returned 0; <entries> is its listing
 *                                     read just BEFORE the call, name(hex)/ino/type,...
 *   C <pid> <ino> <f|d> <path>        a file (open/creat with O_CREAT that created it) or a
 *                                     directory (mkdir) was created: a new inode, with no
 *                                     durable content and no durable entries yet
 *
 * tests/drills/powerloss_check.py replays any prefix of the journal on top of a baseline (the
 * table as it was, synced, before the run) and rebuilds the durable state: each directory as
 * its last fsynced listing, each file as its last fsynced snapshot (a new file never fsynced is
 * empty, an entry created or renamed without a directory fsync is not there).
 *
 * $PL_IGNORE=SUBSTRING leaves fsyncs of paths containing SUBSTRING out of the journal, as if
 * precast had not made them: the drill's self-test, which must then find damage.
 *
 * Also, for the disk-full drill: $PL_ENOSPC=SUBSTRING makes write/pwrite on a file whose path
 * contains SUBSTRING fail with ENOSPC (places a small tmpfs cannot reach precisely).
 *
 * Not covered (see docs/RELIABILITY.md): writes through stdio (glibc calls its own internal
 * write/open, which a preload cannot see; precast's reports and rejects files use stdio),
 * sync(2)/syncfs(2)/O_SYNC/O_DSYNC (treated as not syncing: pessimistic), mmap'd writes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);

static const char *root, *journal, *store, *enospc, *ignore;
static size_t root_len;
static unsigned long snap_counter;

static void init(void)
{
    static int done;
    if (done) return;
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    root = getenv("PL_ROOT");
    journal = getenv("PL_JOURNAL");
    store = getenv("PL_STORE");
    enospc = getenv("PL_ENOSPC");
    if (enospc != NULL && *enospc == '\0') enospc = NULL;
    ignore = getenv("PL_IGNORE");
    if (ignore != NULL && *ignore == '\0') ignore = NULL;
    root_len = root ? strlen(root) : 0;
    done = 1;
}

static int fd_path(int fd, char *buf, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, cap - 1);
    if (n < 0) return -1;
    buf[n] = '\0';
    return 0;
}

static int under_root(const char *path)
{
    return root_len > 0 && strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0');
}

/* One record, one write(2) with O_APPEND: records of concurrent processes never interleave. */
static void emit(const char *rec, size_t len)
{
    if (journal == NULL) return;
    int fd = real_open(journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    (void)real_write(fd, rec, len);
    close(fd);
}

/* A copy of the file's current bytes in $PL_STORE; its name into out. */
static int snapshot(int fd, char *out, size_t cap)
{
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    int in = real_open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    snprintf(out, cap, "%s/snap-%ld-%lu", store, (long)getpid(), ++snap_counter);
    int o = real_open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o < 0) { close(in); return -1; }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (real_write(o, buf, (size_t)n) != n) { rc = -1; break; }
    if (n < 0) rc = -1;
    close(in);
    close(o);
    return rc;
}

/* The listing of an open directory, appended to rec as name(hex)/ino/type, ... */
static char *listing(int fd, const char *path, unsigned long ino)
{
    size_t cap = 4096, len = 0;
    char *rec = malloc(cap);
    if (rec == NULL) return NULL;
    len = (size_t)snprintf(rec, cap, "D %ld %lu %s ", (long)getpid(), ino, path);
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    DIR *d = opendir(src);
    if (d == NULL) { free(rec); return NULL; }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'o';
        size_t need = strlen(de->d_name) * 2 + 48;
        if (len + need + 2 > cap) {
            cap = (cap + need) * 2;
            char *r2 = realloc(rec, cap);
            if (r2 == NULL) { free(rec); closedir(d); return NULL; }
            rec = r2;
        }
        for (const unsigned char *p = (const unsigned char *)de->d_name; *p; p++)
            len += (size_t)sprintf(rec + len, "%02x", *p);
        len += (size_t)sprintf(rec + len, "/%lu/%c,", (unsigned long)st.st_ino, type);
    }
    closedir(d);
    rec[len++] = '\n';
    rec[len] = '\0';
    return rec;
}

static int do_sync(int fd, int (*fn)(int))
{
    init();
    char path[PATH_MAX];
    struct stat st;
    if (journal == NULL || fd_path(fd, path, sizeof path) != 0 || !under_root(path) || fstat(fd, &st) != 0 ||
        (ignore != NULL && strstr(path, ignore) != NULL))
        return fn(fd);
    if (S_ISDIR(st.st_mode)) {
        char *rec = listing(fd, path, (unsigned long)st.st_ino);
        int rc = fn(fd);
        int e = errno;
        if (rc == 0 && rec != NULL) emit(rec, strlen(rec));
        free(rec);
        errno = e;
        return rc;
    }
    if (!S_ISREG(st.st_mode)) return fn(fd);
    char snap[PATH_MAX];
    int have = snapshot(fd, snap, sizeof snap) == 0;
    int rc = fn(fd);
    int e = errno;
    if (rc == 0 && have) {
        char rec[3 * PATH_MAX];
        int n = snprintf(rec, sizeof rec, "F %ld %lu %s %s\n", (long)getpid(), (unsigned long)st.st_ino, snap, path);
        if (n > 0 && (size_t)n < sizeof rec) emit(rec, (size_t)n);
    }
    errno = e;
    return rc;
}

int fsync(int fd) { init(); return do_sync(fd, real_fsync); }
int fdatasync(int fd) { init(); return do_sync(fd, real_fdatasync); }

static void note_created(int fd, char type)
{
    char path[PATH_MAX];
    struct stat st;
    if (journal == NULL || fd < 0 || fd_path(fd, path, sizeof path) != 0 || !under_root(path) || fstat(fd, &st) != 0)
        return;
    char rec[PATH_MAX + 96];
    int n = snprintf(rec, sizeof rec, "C %ld %lu %c %s\n", (long)getpid(), (unsigned long)st.st_ino, type, path);
    if (n > 0 && (size_t)n < sizeof rec) emit(rec, (size_t)n);
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
    init();
    int existed = 1;
    if ((flags & O_CREAT) && journal != NULL) {
        struct stat st;
        existed = fstatat(dirfd, path, &st, 0) == 0;
    }
    int fd = real_openat(dirfd, path, flags, mode);
    if (fd >= 0 && !existed) note_created(fd, 'f');
    return fd;
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); }
    return open_common(AT_FDCWD, path, flags, mode);
}
int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); }
    return open_common(AT_FDCWD, path, flags, mode);
}
int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); }
    return open_common(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); }
    return open_common(dirfd, path, flags, mode);
}
int creat(const char *path, mode_t mode) { return open_common(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return open_common(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode); }

static void note_mkdir(int dirfd, const char *path)
{
    if (journal == NULL) return;
    int fd = real_openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    note_created(fd, 'd');
    close(fd);
}
int mkdir(const char *path, mode_t mode)
{
    init();
    int rc = real_mkdir(path, mode);
    if (rc == 0) { int e = errno; note_mkdir(AT_FDCWD, path); errno = e; }
    return rc;
}
int mkdirat(int dirfd, const char *path, mode_t mode)
{
    init();
    int rc = real_mkdirat(dirfd, path, mode);
    if (rc == 0) { int e = errno; note_mkdir(dirfd, path); errno = e; }
    return rc;
}

static int full(int fd)
{
    char path[PATH_MAX];
    return enospc != NULL && fd > 2 && fd_path(fd, path, sizeof path) == 0 && strstr(path, enospc) != NULL;
}
ssize_t write(int fd, const void *buf, size_t n)
{
    init();
    if (n > 0 && full(fd)) { errno = ENOSPC; return -1; }
    return real_write(fd, buf, n);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    init();
    if (n > 0 && full(fd)) { errno = ENOSPC; return -1; }
    return real_pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}
