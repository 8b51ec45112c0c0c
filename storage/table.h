/*
 * table.h — storage/: the prediction table on disk.  Public API of the module.
 *
 * A table is a directory:
 *
 *   TABLE/
 *     CURRENT                    name of the published version + "\n"; replaced atomically
 *                                (CURRENT.tmp written, fsynced, renamed, directory fsynced)
 *     v20261126T020000Z-<job>/   one version (UTC time of publish; -2, -3... if taken)
 *       MANIFEST.json            what the version holds (see `manifest` below)
 *       shard-00000/ ...         LevelDB databases; shard i holds a contiguous key range;
 *                                keys ordered bytewise (LevelDB's default comparator), so each
 *                                shard is a plain LevelDB any LevelDB tool can open
 *     .staging-<job>/            a version being written; never read; replaced by a later run
 *     .trash-<name>/             a version (or staging dir) being removed by retention; never
 *                                read; swept by the next table_retain
 *     .precast-table.lock        the table lock (flock) of publish, rollback and retention
 *
 * Life of a version (the writer side, driven by jobs/):
 *   table_staging_create  ->  shard_writer_open/put/close for each shard, in the staging dir
 *   ->  shard_scan (the "nothing lost" check)  ->  table_version_name  ->  table_current (the
 *   manifest's `previous`)  ->  manifest_write (staging/MANIFEST.json with version = that
 *   name)  ->  table_publish  ->  table_retain (keep_versions).
 * Readers (precast get/serve/verify) use table_open / table_get; the run report's diff uses
 * table_scan_*; `precast versions` uses table_versions_list, table_rollback, table_retain.
 *
 * Errors: every fallible function returns a pc_status (kernels/status.h) and on failure writes
 * a one-line message naming the path into the caller's (err, errlen).  Codes used here:
 * PC_ERR_NOINPUT (no table / no CURRENT), PC_ERR_CANTCREAT (cannot create an output file or
 * directory), PC_ERR_IO (I/O error or corruption of something already written, including a
 * malformed MANIFEST.json), PC_ERR_CONFIG (a job name not usable in a file name),
 * PC_ERR_INTERNAL (a broken precondition, e.g. keys out of order, or out of memory).
 * Paths are built into PATH_MAX buffers; a path that does not fit is an error, never cut.
 *
 * Ownership: functions borrow their pointer arguments for the duration of the call only.
 * Whatever a function returns through an out-pointer belongs to the caller, with the
 * matching free function named in its comment.
 *
 * Threads: no global mutable state.  Different handles may be used from different threads;
 * one shard_writer is for one thread at a time.  A `table` handle is read-only after
 * table_open and table_get may be called from several threads at once.
 * MPI: storage knows nothing of MPI; each rank writes its own shard, rank 0 publishes.
 */
#ifndef PRECAST_STORAGE_TABLE_H
#define PRECAST_STORAGE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kernels/status.h"

/* The precast release, recorded in every manifest (manifest.precast_version). */
#ifndef PRECAST_VERSION
#define PRECAST_VERSION "0.4.0"
#endif

/* ------------------------------------------------------------------------------------------
 * Checksums
 * ---------------------------------------------------------------------------------------- */

/* Hash of one (key, value) pair.  The checksum of a shard or table is the sum (mod 2^64) of
 * this over all its pairs, so it does not depend on the order the pairs were seen in (map
 * time vs. scan of the sorted shards).
 * Definition (stable; `precast verify` of old tables relies on it):
 *   h = FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes
 *       klen as 8 bytes little-endian, key[0..klen), vlen as 8 bytes little-endian,
 *       val[0..vlen);
 *   then the splitmix64 finaliser:
 *       h ^= h >> 30; h *= 0xbf58476d1ce4e5b9; h ^= h >> 27; h *= 0x94d049bb133111eb;
 *       h ^= h >> 31.
 * The lengths make ("ab","c") and ("a","bc") differ.  key/val may be NULL when their
 * length is 0. */
uint64_t table_pair_hash(const void *key, size_t klen, const void *val, size_t vlen);

/* ------------------------------------------------------------------------------------------
 * Shards
 * ---------------------------------------------------------------------------------------- */

/* What one shard holds.  Every pointer is owned by the struct (malloc'd); free them with
 * shard_info_clear.  A zero-initialised shard_info is valid and empty. */
typedef struct shard_info {
    char *dir;                             /* shard directory name relative to the version
                                              dir, e.g. "shard-00003" (no '/') */
    char *first_key; size_t first_key_len; /* NULL/0 for an empty shard; otherwise malloc'd,
                                              NUL-terminated for convenience (may hold NULs) */
    char *last_key;  size_t last_key_len;  /* as first_key */
    int64_t rows;                          /* number of pairs */
    int64_t bytes;                         /* sum of key + value bytes */
    uint64_t checksum;                     /* sum of table_pair_hash over the pairs */
} shard_info;

/* Frees the strings of s and zeroes it.  Accepts NULL. */
void shard_info_clear(shard_info *s);

typedef struct shard_writer shard_writer;

/* Creates a new LevelDB database at path (it must not exist: an existing path ->
 * PC_ERR_CANTCREAT) for writing keys in order.  Options (chosen by tests/bench_write.c, see
 * shard.c): bloom filter 10 bits/key, no compression, 2 KiB blocks, 4 MiB write buffer; puts
 * are grouped in write batches of ~1 MiB or 4096 puts, none synced.  On success *out is a writer the caller ends with
 * shard_writer_close or shard_writer_abort; on failure *out is NULL and nothing is left open
 * (a directory LevelDB created before failing may remain; the staging dir is removed as a
 * whole on failure). */
pc_status shard_writer_open(const char *path, shard_writer **out, char *err, size_t errlen);

/* Adds a pair; key and val are copied (the caller keeps them).  REQUIRES: keys strictly
 * increasing bytewise (memcmp order, a proper prefix before its extensions).  A key <= the
 * previous one -> PC_ERR_INTERNAL naming both keys; the writer is unchanged by such a call and
 * may go on.  A LevelDB write error -> PC_ERR_IO naming the shard, after which the writer is
 * failed: every later put or close returns an error. */
pc_status shard_writer_put(shard_writer *w, const void *key, size_t klen, const void *val,
                           size_t vlen, char *err, size_t errlen);

/* Writes the pending batch, then flushes the memtable into a table file (LevelDB syncs that
 * file and the MANIFEST, which makes the shard durable without its log), closes the database and fills *info (dir = basename of the path; first/last key, rows,
 * bytes, checksum).  Frees w whatever the outcome.  On failure *info is zeroed, the shard must
 * be considered unusable and the error names the shard. */
pc_status shard_writer_close(shard_writer *w, shard_info *info, char *err, size_t errlen);

/* Closes and frees w without promising anything about what is on disk (use it on the
 * failure path, then remove the staging dir).  Accepts NULL. */
void shard_writer_abort(shard_writer *w);

/* Full scan of a closed shard at path (opened without creating, paranoid checks on, every
 * block checksum verified): counts rows and sums table_pair_hash into *checksum, and checks
 * that keys are strictly increasing.  A missing shard, any LevelDB error or corruption ->
 * PC_ERR_IO naming the shard path; *rows and *checksum are then 0.
 * Note: LevelDB's open is not read-only — it may rewrite its log and MANIFEST files. */
pc_status shard_scan(const char *path, int64_t *rows, uint64_t *checksum, char *err,
                     size_t errlen);

/* The same scan, also checking that every key lies within [expect->first_key,
 * expect->last_key] and that rows, bytes, checksum and the first and last keys equal
 * expect's (expect->dir is not looked at).  A difference -> PC_ERR_IO naming the shard and
 * the first field that differs.  This is what `precast verify` does for each shard. */
pc_status shard_verify(const char *path, const shard_info *expect, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------------
 * Manifest (MANIFEST.json of a version)
 * ---------------------------------------------------------------------------------------- */

/* Every pointer is owned by the struct when it comes from manifest_read (free it with
 * manifest_free); a caller filling one in for manifest_write owns its own pointers.
 * String fields are UTF-8 or arbitrary bytes (see the JSON format below); a NULL string is
 * written as JSON null and read back as NULL.  created, job and version must not be NULL. */
typedef struct manifest {
    int format_version;        /* 1 (manifest_write always writes 1; a reader refuses > 1) */
    char *created;             /* ISO 8601 UTC, e.g. "2026-11-26T02:00:00Z" (table_iso8601) */
    char *job;                 /* job name */
    char *version;             /* version dir name (from table_version_name) */
    char *model_path; char *model_sha256;
    char *job_file;            /* path of the job file */
    int64_t ninputs; char **input_paths; int64_t *input_sizes; /* ninputs each */
    int64_t rows_in, rows_written, rows_rejected;
    int64_t rows_dropped;      /* duplicate ids not written by policy (output.duplicates =
                                  first | last); 0 in manifests written before it existed */
    uint64_t checksum;         /* sum over all shards; written as 16 hex digits */
    char *value_format;        /* "json" | "f32" */
    char *head;                /* "softmax_topk" | "sigmoid" | "raw" | "auto" ... */
    char *labels_path;         /* may be NULL */
    int64_t ranks;
    int64_t nshards; shard_info *shards;  /* in key order, ranges disjoint */

    /* Provenance (written since precast 0.4.0; manifests written before lack these fields and
     * read back with the strings NULL and every input mtime MANIFEST_TIME_UNKNOWN).  The
     * writer writes NULL strings as JSON null; input_mtimes may be NULL in a caller-filled
     * manifest (every mtime unknown); manifest_read always allocates it (ninputs entries). */
    int64_t *input_mtimes;     /* ninputs: modification time, seconds since the epoch (UTC) */
    char *job_text;            /* the job file's contents, as read by the run */
    char *job_overrides;       /* the run's --set overrides, "section.key=value" one per line
                                  (each ending in '\n'); NULL when there were none */
    char *precast_version;     /* PRECAST_VERSION of the precast that wrote it */
    char *host;                /* host name of rank 0 (which publishes) */
    char *previous;            /* the version CURRENT named before this one was published;
                                  NULL for a table's first version.  Recorded whatever
                                  keep_versions is: the version itself may have been removed */
} manifest;

/* An input mtime that is not known (an old manifest, or JSON null). */
#define MANIFEST_TIME_UNKNOWN INT64_MIN

/* Writes m as JSON to path atomically (path.tmp, fsync, rename, fsync of the directory).
 * The JSON (UTF-8, one object):
 *   {"format_version": 1, "created": "...", "job": "...", "version": "...",
 *    "model_path": ..., "model_sha256": ..., "job_file": ...,
 *    "job_text": ..., "job_overrides": ..., "inputs": [{"path": "...", "size": N, "mtime": N or null}, ...],
 *    "rows_in": N, "rows_written": N, "rows_rejected": N, "rows_dropped": N,
 *    "checksum": "0123456789abcdef",     (a string: JSON numbers lose 64-bit precision)
 *    "value_format": ..., "head": ..., "labels_path": ... or null, "ranks": N,
 *    "host": ..., "precast_version": ..., "previous": ... or null,
 *    "shards": [{"dir": "shard-00000", "first_key": ..., "last_key": ..., "rows": N,
 *                "bytes": N, "checksum": "16 hex digits"}, ...]}
 * Byte strings (keys, and any string field) are written reversibly: if the bytes are valid
 * UTF-8, as a JSON string under the field's name ("first_key": "a\"b\u0001"; '"', '\\' and
 * control characters escaped); otherwise as lower-case hex under the name + "_hex"
 * ("first_key_hex": "ff00").  An empty shard has "first_key": null, "last_key": null.
 * Invalid m (NULL created/job/version/shard dir, negative counts, a shard's key range
 * inconsistent) -> PC_ERR_INTERNAL and nothing is written.  I/O failure -> PC_ERR_CANTCREAT /
 * PC_ERR_IO; path then holds what it held before (path.tmp is removed) — except when only the
 * last step, the fsync of the directory, failed: path then holds the new manifest, not yet
 * known to be durable.  The manifest is not checked against the shards (table_verify does). */
pc_status manifest_write(const char *path, const manifest *m, char *err, size_t errlen);

/* Reads and validates what manifest_write wrote: strict JSON (at most 64 MiB), every field
 * above present with its type (labels_path and the provenance fields job_text, job_overrides,
 * mtime, host, precast_version and previous may be absent: older manifests), format_version 1, shard dirs
 * plain names, shard ranges ordered and disjoint, checksums 16 hex digits; unknown fields are
 * ignored.  Anything else -> PC_ERR_IO "path: line L, column C: what" or "path: field: what"
 * (never a crash); missing file -> PC_ERR_NOINPUT.  On success *out is the caller's, freed
 * with manifest_free; on failure *out is NULL. */
pc_status manifest_read(const char *path, manifest **out, char *err, size_t errlen);

/* Frees a manifest from manifest_read: every string and array in it, and m.  Accepts NULL.
 * (Not for a caller-filled manifest with stack or static pointers.) */
void manifest_free(manifest *m);

/* ------------------------------------------------------------------------------------------
 * Versions and publishing
 * ---------------------------------------------------------------------------------------- */

/* A job name becomes part of directory names, so it must be 1..128 characters of
 * [A-Za-z0-9._-] not starting with '.' or '-'.  Functions taking `job` return PC_ERR_CONFIG
 * for any other name. */
bool table_job_name_valid(const char *job);

/* Writes t as "YYYY-mm-ddTHH:MM:SSZ" (UTC) into buf (cap >= 21, else PC_ERR_INTERNAL). */
pc_status table_iso8601(time_t t, char *buf, size_t cap, char *err, size_t errlen);

/* Creates table_dir (mkdir -p) and a fresh, empty table_dir/.staging-<job>: a staging dir
 * left by a killed run is removed first (recursively, never following symlinks, nothing
 * outside it).  Writes the staging path into staging (cap bytes).  Cannot create ->
 * PC_ERR_CANTCREAT naming the path; a stale staging dir that cannot be removed -> PC_ERR_IO. */
pc_status table_staging_create(const char *table_dir, const char *job, char *staging,
                               size_t cap, char *err, size_t errlen);

/* Removes a staging dir and everything in it (after a failed run); best effort, errors are
 * ignored.  Refuses (does nothing) unless the last path component starts with ".staging-".
 * Accepts NULL. */
void table_staging_remove(const char *staging);

/* Picks the name of the next version: "v<YYYYmmddTHHMMSSZ>-<job>" for the current UTC time,
 * or with "-2", "-3"... appended if that name is taken in table_dir.  The name is not
 * reserved: the job's lock keeps two publishers of one job apart.  Writes it into name
 * (cap bytes; too small -> PC_ERR_INTERNAL). */
pc_status table_version_name(const char *table_dir, const char *job, char *name, size_t cap,
                             char *err, size_t errlen);
/* The same for a given time t (for tests and reproducible runs). */
pc_status table_version_name_at(const char *table_dir, const char *job, time_t t, char *name,
                                size_t cap, char *err, size_t errlen);

/* Publishes staging as version `version`:
 *   1. checks that staging/MANIFEST.json reads and names `version` (else PC_ERR_INTERNAL,
 *      or PC_ERR_IO if unreadable) and that table_dir/version does not exist;
 *   2. fsyncs every file and directory of the staging tree;
 *   3. renames staging to table_dir/version and fsyncs table_dir;
 *   4. writes table_dir/CURRENT atomically ("version\n").
 * On failure CURRENT is as it was and the old version stays readable; if step 4 fails the
 * version dir is renamed back to staging (best effort).  Errors: PC_ERR_NOINPUT if staging is
 * missing, PC_ERR_CANTCREAT / PC_ERR_IO for the file system. */
pc_status table_publish(const char *table_dir, const char *staging, const char *version,
                        char *err, size_t errlen);

/* Reads the name of the published version from table_dir/CURRENT into version (cap bytes).
 * No table dir or no CURRENT -> PC_ERR_NOINPUT; a CURRENT that is not one plain name + "\n",
 * or does not fit in cap -> PC_ERR_IO. */
pc_status table_current(const char *table_dir, char *version, size_t cap, char *err,
                        size_t errlen);

/* ------------------------------------------------------------------------------------------
 * The versions of a table: listing, rollback, retention
 *
 * A version dir is a directory (never a symbolic link) of table_dir whose name is
 * "v<YYYYmmddTHHMMSSZ>-<job>[-N]", as table_version_name makes them; anything else in
 * table_dir (CURRENT, rejects files, a user's own dirs) is neither listed nor removed, except
 * ".staging-<job>" dirs (retention, when the caller says the job is not running) and
 * ".trash-<name>" dirs (what an interrupted removal left; swept by the next retention).
 * "Newest" orders by the time in the name, then by the -N suffix.
 *
 * Table lock: table_publish (steps 3-4), table_rollback and table_retain serialise on an
 * exclusive flock(2) of table_dir/.precast-table.lock (created on first use), so that a
 * rollback or a publish never races a removal.  It is held for renames only, never while a
 * tree is removed or fsynced.
 * ---------------------------------------------------------------------------------------- */

/* One version, as table_versions_list returns it. */
typedef struct table_version_info {
    char *name;        /* version dir name (malloc'd) */
    bool current;      /* CURRENT names it */
    manifest *m;       /* its manifest (manifest_read), or NULL if it did not read */
    char *problem;     /* why m is NULL (malloc'd message), else NULL */
} table_version_info;

/* Lists table_dir's version dirs, newest first, each with its manifest read (a version whose
 * manifest does not read is listed with m NULL and the reason in problem, not an error).
 * *current (cap bytes, may be NULL) receives the name CURRENT holds, "" if there is no
 * CURRENT.  On success *out (n entries; NULL when n is 0) is the caller's, freed with
 * table_versions_free.  Errors: no table_dir, or neither CURRENT nor any version in it ->
 * PC_ERR_NOINPUT; a corrupt CURRENT or an unreadable directory -> PC_ERR_IO; out of memory ->
 * PC_ERR_INTERNAL; *out is then NULL and *n 0. */
pc_status table_versions_list(const char *table_dir, table_version_info **out, int64_t *n,
                              char *current, size_t cap, char *err, size_t errlen);

/* Frees what table_versions_list returned.  Accepts NULL. */
void table_versions_free(table_version_info *v, int64_t n);

/* Makes `version` the current one: checks that table_dir/version is a version dir (not a
 * symlink) whose manifest reads and names it and whose shard dirs all exist with a LevelDB
 * CURRENT file, then, holding the table lock, replaces table_dir/CURRENT atomically (write,
 * fsync, rename, fsync of table_dir).  Already current: nothing is written, PC_OK.
 * Errors: no table or no such version -> PC_ERR_NOINPUT; a damaged or half version (manifest
 * missing or unreadable, a shard missing) -> PC_ERR_IO naming what is wrong; I/O failures ->
 * PC_ERR_CANTCREAT / PC_ERR_IO.  On any failure CURRENT is unchanged (the one exception, as
 * fs_write_atomic: the final fsync of table_dir failed after the rename). */
pc_status table_rollback(const char *table_dir, const char *version, char *err,
                         size_t errlen);

/* A version a run left staged, complete and verified but not published (input.drift = gate
 * or output.max_changed blocked it): table_dir/.staging-<job> holding a MANIFEST.json. */
typedef struct table_staged_info {
    char *dir;         /* ".staging-<job>" (malloc'd) */
    manifest *m;       /* its manifest; m->version is the name it would be published as */
} table_staged_info;

/* Lists table_dir's staging dirs whose MANIFEST.json reads (others — a run in progress, a dead
 * one — are skipped), in no particular order.  *out (n entries) is freed with
 * table_staged_free.  Errors as table_versions_list's directory errors. */
pc_status table_staged_list(const char *table_dir, table_staged_info **out, int64_t *n, char *err,
                            size_t errlen);
void table_staged_free(table_staged_info *v, int64_t n); /* accepts NULL */

/* Publishes the staged version named `version` (the staging dir whose manifest names it) with
 * table_publish: renamed into place, CURRENT replaced atomically.  No such staged version ->
 * PC_ERR_NOINPUT; otherwise table_publish's errors.  The caller makes sure the run that staged
 * it has ended (its staging dir is not being written). */
pc_status table_publish_staged(const char *table_dir, const char *version, char *err, size_t errlen);

/* Tells table_retain whether table_dir/.staging-<job> is stale, i.e. job is not running now
 * and its staging dir may be removed.  ctx is table_retain's. */
typedef bool (*table_staging_stale_fn)(const char *job, void *ctx);

/* Retention, run after a publish (or by `precast versions --keep`):
 *   1. removes every ".trash-*" dir an earlier, interrupted call left;
 *   2. holding the table lock: reads CURRENT (missing -> PC_ERR_NOINPUT and nothing is
 *      removed), keeps CURRENT's version and `keep` others — first the version CURRENT's
 *      manifest says it replaced ("previous", which after a rollback is not the newest),
 *      then the newest by name — and
 *      renames each older version dir V to ".trash-V", and each ".staging-<job>" dir for
 *      which stale(job, ctx) is true (stale NULL: no staging dir is touched) to
 *      ".trash-.staging-<job>"; fsyncs table_dir;
 *   3. removes the renamed dirs recursively, never following a symbolic link (a link is
 *      removed, its target is not touched).
 * A crash at any point leaves CURRENT's version whole and every kept version whole; a
 * half-removed dir is only ever a ".trash-*" one, which no reader opens and the next call
 * sweeps.  REQUIRES keep >= 0.
 * Outputs (each may be NULL): *nremoved, the number of dirs removed (versions, staging and
 * trash dirs); removed (cap bytes), their names as they were in table_dir, separated by
 * single spaces, cut with "..." if they do not fit.
 * Errors: a removal that fails -> PC_ERR_IO naming the path; the call goes on with the other
 * victims and returns the first error; what it could not remove is left as ".trash-*" for
 * the next call.  A corrupt CURRENT -> PC_ERR_IO, nothing removed. */
pc_status table_retain(const char *table_dir, int64_t keep, table_staging_stale_fn stale,
                       void *ctx, char *removed, size_t cap, int64_t *nremoved, char *err,
                       size_t errlen);

/* ------------------------------------------------------------------------------------------
 * Sorted scan of a whole version (the run report's diff against the previous version)
 * ---------------------------------------------------------------------------------------- */

typedef struct table_scan table_scan;

/* Opens a scan of every pair of table_dir/version (NULL: the version CURRENT names) in key
 * order: shard after shard, in manifest order (the shards' ranges are disjoint and ordered).
 * One shard is open at a time, read with checksums verified and without filling a cache, so
 * memory stays bounded (a few MiB plus the longest key) whatever the table's size.
 * Errors: as table_current / table_open_version (PC_ERR_NOINPUT no such version, PC_ERR_IO a
 * damaged one); *out is then NULL.  On success *out is closed with table_scan_close.
 * Like table_open, a shard cannot be scanned while another handle (a `precast serve`, a
 * table_open) holds its LevelDB lock: that open fails with PC_ERR_IO "lock ...". */
pc_status table_scan_open(const char *table_dir, const char *version, table_scan **out,
                          char *err, size_t errlen);

/* The same for a version dir given by its path, e.g. a staging dir that holds its
 * MANIFEST.json but is not published yet. */
pc_status table_scan_open_dir(const char *version_dir, table_scan **out, char *err,
                              size_t errlen);

/* The next pair: *key, *klen and *val, *vlen point into the scan (valid until the next
 * table_scan_next or table_scan_close; do not free them).  At the end *eof = true and the
 * pointers are NULL/0.  Checks as it goes: keys strictly increasing across the whole
 * version, each shard's rows and checksum equal to its manifest entry (checked when the
 * shard ends).  A difference, corruption or LevelDB error -> PC_ERR_IO naming the shard; the
 * scan is then failed and every later call returns PC_ERR_IO. */
pc_status table_scan_next(table_scan *s, const char **key, size_t *klen, const char **val,
                          size_t *vlen, bool *eof, char *err, size_t errlen);

/* Restricts the scan to keys in [lo, hi) (bytewise), lo == NULL meaning from the first key
 * and hi == NULL to the last; the bounds are copied.  Call before the first table_scan_next.
 * Shards wholly outside the range are not opened, and the first one is entered by a seek, so
 * ranks can split one scan of a large version by key range.  A ranged scan reads parts of
 * shards: it still checks key order and the shards' key ranges, not their row counts and
 * checksums (`precast verify` and whole scans do).  Errors: PC_ERR_INTERNAL when called
 * after the scan began or out of memory. */
pc_status table_scan_set_range(table_scan *s, const char *lo, size_t lo_len, const char *hi,
                               size_t hi_len, char *err, size_t errlen);

/* The manifest of the scanned version; owned by s, valid until table_scan_close. */
const manifest *table_scan_manifest(const table_scan *s);

/* Closes the open shard and frees s.  Accepts NULL. */
void table_scan_close(table_scan *s);

/* ------------------------------------------------------------------------------------------
 * Lookups
 * ---------------------------------------------------------------------------------------- */

typedef struct table table;

/* Opens the version CURRENT names: reads its manifest and opens every shard (never creating
 * one; bloom filter policy set, paranoid checks, checksums verified on reads, one 32 MiB
 * block cache shared by the shards).  On success *out is the caller's, closed with
 * table_close; the version stays usable even if CURRENT moves on.  Errors: as table_current,
 * manifest_read, or PC_ERR_IO naming a shard that does not open; *out is then NULL.
 * LevelDB limits: opening a shard takes its LOCK file, so one handle in one process at a time
 * can have a given version open (a second open fails with PC_ERR_IO "lock ... held"), and the
 * version dir must be writable (LevelDB writes its LOG, a new log and MANIFEST on open). */
pc_status table_open(const char *table_dir, table **out, char *err, size_t errlen);

/* table_open with a block cache of cache_bytes (0: the default, 32 MiB) shared by the
 * version's shards.  Shards are written uncompressed, so LevelDB reads their blocks from the
 * mapped files and the cache holds only index and filter blocks beyond the mapping limit:
 * a larger cache helps tables of more than ~1000 files per reading process. */
pc_status table_open_cached(const char *table_dir, size_t cache_bytes, table **out, char *err,
                            size_t errlen);
pc_status table_open_version_cached(const char *table_dir, const char *version,
                                    size_t cache_bytes, table **out, char *err, size_t errlen);

/* The same for a named version (rollback, inspection). */
pc_status table_open_version(const char *table_dir, const char *version, table **out,
                             char *err, size_t errlen);

/* Looks key up: binary search of the shards' [first_key, last_key] ranges, then one LevelDB
 * Get in that shard (none if the key is outside every range).  Found: *found = true, *val a
 * malloc'd copy of the value (NUL-terminated for convenience; *vlen excludes the NUL), freed
 * by the caller with free().  Miss: *found = false, *val = NULL, *vlen = 0.  A LevelDB error
 * -> PC_ERR_IO naming the shard, outputs as for a miss.  Thread-safe. */
/* table_get for n keys: vals[i], vlens[i], found[i] as table_get's outputs for keys[i] (a miss
 * has vals[i] == NULL, so found may be NULL).  On failure every value already looked up is
 * freed and every vals[i] is NULL; the error is the failing key's. */
pc_status table_multi_get(table *t, size_t n, const void *const *keys, const size_t *klens,
                          char **vals, size_t *vlens, bool *found, char *err, size_t errlen);

pc_status table_get(table *t, const void *key, size_t klen, char **val, size_t *vlen,
                    bool *found, char *err, size_t errlen);

/* The manifest of the open version; owned by t, valid until table_close(t). */
const manifest *table_manifest(const table *t);

/* Directory of the open version (table_dir/version); owned by t, valid until table_close. */
const char *table_version_dir(const table *t);

/* Closes every shard and frees t.  Accepts NULL. */
void table_close(table *t);

/* ------------------------------------------------------------------------------------------
 * Verification (`precast verify`)
 * ---------------------------------------------------------------------------------------- */

/* Checks a version against its manifest: shard_verify on every shard (a full scan), the
 * shards' rows and checksums summing to the manifest's rows_written and checksum, and
 * rows_in = rows_written + rows_rejected + rows_dropped.  version NULL means the one CURRENT
 * names.
 * Writes the number of rows scanned into *rows (if not NULL).  A difference or corruption ->
 * PC_ERR_IO naming the shard or the field; otherwise errors as table_current and
 * manifest_read.  Changes nothing it checks: shards are read through private views
 * (storage/view.c), so it may run while the version is open here or in another process. */
pc_status table_verify(const char *table_dir, const char *version, int64_t *rows, char *err,
                       size_t errlen);

#endif
