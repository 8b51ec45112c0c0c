/*
 * lock.h — one run of a job at a time: an exclusive flock(2) on a lock file.
 *
 * `precast run` takes the job's lock before any work and keeps it until the end, so that a
 * run cron starts while last night's is still going exits at once with PC_ERR_LOCKED (75)
 * and a message naming the holder:
 *   job 'nightly' is running: host node7, pid 4242, since 2026-11-26T02:00:03Z (lock <path>)
 * The holder writes "HOST PID START\n" (START in ISO 8601 UTC) into the file so that the
 * message can name it; the lock itself is the flock, not the content.
 *
 * Stale locks cannot happen: the kernel drops an flock when the last descriptor of its open
 * file goes away, so a run that is killed (kill -9, OOM killer, node reboot) releases the
 * lock with its process; the content it left is overwritten by the next holder. The
 * descriptor is opened O_CLOEXEC, so programs the holder starts do not inherit the lock.
 * Release unlocks but keeps the file: removing it would let a waiting process lock the
 * removed file while a third creates and locks a new one, and both would run.
 *
 * Network file systems: flock is only as good as the file system's lock service. Linux NFS
 * clients (since 2.6.12) turn flock into whole-file NFS byte-range locks, which do exclude
 * other clients when the lock service (NLM/lockd for NFSv3, built in for NFSv4) works; with
 * the `nolock` or `local_lock=flock` mount options, or on old clients, the lock only excludes
 * processes on the same host. Lustre needs the `flock` mount option (otherwise flock fails
 * with ENOSYS and job_lock_acquire reports it). A lock held by a client that crashed is
 * released by NFS lease expiry, not at once. When the table lives on such a file system and
 * the job always starts on the same host, point the lock at a local path (`[run] lock`).
 * On a Slurm cluster, also let Slurm exclude overlap: `sbatch --dependency=singleton`.
 *
 * Thread and MPI rules: no MPI; rank 0 alone takes the lock. A job_lock is one thread's.
 * Two acquisitions in one process conflict like two processes (flock locks open files).
 */
#ifndef PRECAST_LOCK_H
#define PRECAST_LOCK_H

#include <stddef.h>

#include "kernels/status.h"

typedef struct job_lock job_lock;

/* Formats the default lock path "<table_dir>/.lock-<job>" into out (cap bytes).
 * PC_ERR_CONFIG if it does not fit; out is then "". */
pc_status job_lock_default_path(char *out, size_t cap, const char *table_dir, const char *job,
                                char *err, size_t errlen);

/* Takes the exclusive lock on lock_path without waiting: creates the file (mode 0644) and its
 * missing parent directories, flock(LOCK_EX|LOCK_NB), then rewrites the content with
 * "HOST PID START\n". job names the job in messages only.
 * Errors (*out is NULL, nothing is held; a created file or directory stays):
 *   PC_ERR_LOCKED    another process holds it: "job 'J' is running: host H, pid P, since T
 *                    (lock PATH)" from the file's content (or "holder not recorded yet" when
 *                    the holder has not written it)
 *   PC_ERR_CANTCREAT the file or its directory cannot be created or opened
 *   PC_ERR_IO        flock is not supported there (ENOLCK, ENOSYS, EOPNOTSUPP; the message
 *                    suggests [run] lock), or the content cannot be written
 *   PC_ERR_INTERNAL  out of memory
 * The caller releases a held lock with job_lock_release. */
pc_status job_lock_acquire(const char *lock_path, const char *job, job_lock **out, char *err,
                           size_t errlen);

/* The content written at acquire, without the newline ("node7 4242 2026-11-26T02:00:03Z").
 * Valid until job_lock_release. */
const char *job_lock_holder(const job_lock *l);

/* Unlocks and frees; the file stays. Accepts NULL. Exiting (or being killed) without calling
 * it releases the lock too. */
void job_lock_release(job_lock *l);

#endif
