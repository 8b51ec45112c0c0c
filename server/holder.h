/*
 * holder.h — the version a server answers from, switched when CURRENT changes.
 *
 * A request acquires the current version, does all its lookups in it (so one batch is never
 * answered from two versions), and releases it.  holder_reload() opens the version CURRENT
 * names now, if it is another one, and makes it current: requests that start afterwards use
 * it, requests still running keep theirs, and the old version is closed when its last
 * request releases it.  A version that fails to open is not switched to; the old one keeps
 * answering.
 *
 * With preloading on (holder_opts.preload), each version is also read whole into a memory
 * index (server/memindex.h) when it is opened, before it is made current, so that requests
 * never wait for the load: lookups then never reach LevelDB.  A version whose index would
 * pass the cap, or for which memory runs out, is served from LevelDB instead (holder_ver_note
 * says why); a version whose scan finds it damaged is not opened at all.
 *
 * Ownership: the holder owns every open version and its index; a holder_ver pointer, and any
 * value its index handed out, is valid from holder_acquire until the matching
 * holder_release.  Thread safety: acquire and release from
 * any number of threads; reload and close from one thread (the server's main loop).
 */
#ifndef PRECAST_SERVER_HOLDER_H
#define PRECAST_SERVER_HOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"
#include "server/memindex.h"
#include "storage/table.h"

typedef struct holder holder;
typedef struct holder_ver holder_ver;

typedef struct holder_opts {
    size_t cache_bytes;       /* LevelDB block cache of each version (0: the default) */
    bool preload;             /* read each version into a memory index */
    size_t preload_max_bytes; /* the most one version's index may take (0: no cap) */
    unsigned preload_retry_s; /* a version whose preload found it damaged is scanned again
                                 only after this many seconds (0: at every holder_reload):
                                 a reload check runs every second, a scan reads the whole
                                 version */
} holder_opts;

/* Opens table_dir's current version (and, with o->preload, its memory index).  Errors as
 * table_open (66 no table or no CURRENT, 74 I/O or corruption, the preload's scan
 * included). */
pc_status holder_open(const char *table_dir, const holder_opts *o, holder **out, char *err,
                      size_t errlen);

/* Closes every version; REQUIRES: no version is acquired. Accepts NULL. */
void holder_close(holder *h);

holder_ver *holder_acquire(holder *h);
void holder_release(holder *h, holder_ver *v);

table *holder_ver_table(const holder_ver *v);
const char *holder_ver_name(const holder_ver *v);
/* Creation time of the version (its manifest's "created"), seconds since the epoch; 0 when
 * unknown. */
int64_t holder_ver_created(const holder_ver *v);
/* The version's memory index, or NULL when lookups go to LevelDB (preloading off, or this
 * version not preloaded: see holder_ver_note). */
const memindex *holder_ver_index(const holder_ver *v);
/* Why a version was not preloaded although preloading is on ("" otherwise). */
const char *holder_ver_note(const holder_ver *v);
/* Seconds the preload of the version took (0 when not preloaded). */
double holder_ver_load_seconds(const holder_ver *v);

/* Re-reads CURRENT.  *switched is true when another version was opened and made current.
 * On failure (new version unreadable) the current version is kept and err says why.  Within
 * preload_retry_s of a failed preload of the same version, the failure is returned again
 * without opening it. */
pc_status holder_reload(holder *h, bool *switched, char *err, size_t errlen);

#endif
