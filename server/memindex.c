/* memindex.c — the in-memory read index of `precast serve --preload` (see memindex.h). */
#include "server/memindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "storage/table.h"

/* A slot: 0 (empty) or TAG << 48 | (record offset + 1).  48 bits of offset address 256 TiB of
 * arena, far more than any machine's RAM. */
#define OFF_BITS 48
#define OFF_MASK (((uint64_t)1 << OFF_BITS) - 1)
#define OFF_LIMIT (OFF_MASK - 1) /* largest arena length a record may end at */
#define MIN_SLOTS ((size_t)16)
#define VARINT_MAX 10 /* bytes of a 64-bit LEB128 varint */
#define MIB(b) ((double)(b) / 1048576.0)

struct memindex {
    unsigned char *arena; /* records back to back (memindex.h) */
    size_t arena_len, arena_cap;
    uint64_t *slots;
    size_t nslots; /* a power of two */
    uint64_t count;
    uint64_t seed;
    size_t max_bytes; /* 0: no cap */
};

/* ---- hashing ---- */

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t fmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Eight bytes at a time (murmur3's word step), the tail zero-padded, the length mixed in so
 * that "a" and "a\0" differ.  Keys are short (a few dozen bytes): this costs a handful of
 * multiplications where a byte-at-a-time hash would cost a loop per byte. */
static uint64_t key_hash(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15u);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= rotl64(w * 0x87c37b91114253d5u, 31) * 0x4cf5ad432745937fu;
        h = rotl64(h, 27) * 5 + 0x52dce729;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        h ^= rotl64(w * 0x87c37b91114253d5u, 31) * 0x4cf5ad432745937fu;
    }
    return fmix64(h);
}

static uint64_t slot_tag(uint64_t hash)
{
    return hash >> OFF_BITS; /* the high bits; the slot position uses the low ones */
}

/* ---- records ---- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        p[n++] = (unsigned char)(v | 0x80);
    p[n++] = (unsigned char)v;
    return n;
}

/* Decodes a varint this file wrote (so it is well formed and ends within the arena). */
static const unsigned char *varint_get(const unsigned char *p, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift = 0;
    while (*p & 0x80) {
        x |= (uint64_t)(*p++ & 0x7f) << shift;
        shift += 7;
    }
    *v = x | (uint64_t)*p++ << shift;
    return p;
}

/* The record a slot points at: its key and value. */
static void record_at(const memindex *ix, uint64_t slot, const unsigned char **key,
                      size_t *klen, const unsigned char **val, size_t *vlen)
{
    const unsigned char *p = ix->arena + ((slot & OFF_MASK) - 1);
    uint64_t k, v;
    p = varint_get(p, &k);
    p = varint_get(p, &v);
    *key = p;
    *klen = (size_t)k;
    *val = p + k;
    *vlen = (size_t)v;
}

/* ---- sizing ---- */

/* Slots for rows pairs at a load of at most 0.7; 0 if that does not fit in a size_t. */
static size_t slots_for(uint64_t rows)
{
    if (rows > SIZE_MAX / 16)
        return 0;
    size_t n = MIN_SLOTS;
    while ((uint64_t)n * 7 < rows * 10)
        n *= 2;
    return n;
}

size_t memindex_estimate(uint64_t rows, uint64_t data_bytes)
{
    size_t slots = slots_for(rows);
    if (slots == 0 || slots > SIZE_MAX / 8)
        return SIZE_MAX;
    size_t s = slots * 8;
    /* Records with one-byte varints: the least they can take. */
    if (rows > (SIZE_MAX - s) / 2)
        return SIZE_MAX;
    s += (size_t)rows * 2;
    return data_bytes > SIZE_MAX - s ? SIZE_MAX : s + (size_t)data_bytes;
}

static bool within_cap(const memindex *ix, size_t bytes)
{
    return ix->max_bytes == 0 || bytes <= ix->max_bytes;
}

static pc_status over_cap(const memindex *ix, size_t need, char *err, size_t errlen)
{
    return pc_err(err, errlen, PC_ERR_CONFIG,
                  "the index of %llu keys needs %.1f MiB or more, over the cap of %.1f MiB",
                  (unsigned long long)ix->count + 1, MIB(need), MIB(ix->max_bytes));
}

static uint64_t random_seed(const void *salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)salt; /* no entropy yet: still varies */
    return fmix64(seed);
}

pc_status memindex_new(uint64_t rows_hint, uint64_t data_hint, size_t max_bytes, memindex **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    size_t need = memindex_estimate(rows_hint, data_hint);
    if (max_bytes != 0 && need > max_bytes)
        return pc_err(err, errlen, PC_ERR_CONFIG,
                      "the index of %llu keys (%.1f MiB of keys and values) needs %.1f MiB or "
                      "more, over the cap of %.1f MiB",
                      (unsigned long long)rows_hint, MIB(data_hint), MIB(need), MIB(max_bytes));
    if (need == SIZE_MAX)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "an index of %llu keys does not fit in memory",
                      (unsigned long long)rows_hint);
    memindex *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for the index");
    ix->max_bytes = max_bytes;
    ix->nslots = slots_for(rows_hint);
    ix->arena_cap = need - ix->nslots * 8;
    ix->slots = calloc(ix->nslots, sizeof *ix->slots);
    ix->arena = ix->arena_cap > 0 ? malloc(ix->arena_cap) : NULL;
    if (ix->slots == NULL || (ix->arena_cap > 0 && ix->arena == NULL)) {
        memindex_free(ix);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for an index of %.1f MiB",
                      MIB(need));
    }
    ix->seed = random_seed(ix);
    *out = ix;
    return PC_OK;
}

/* Makes room for n more arena bytes: doubles the arena, or as much as the cap allows. */
static pc_status arena_reserve(memindex *ix, size_t n, char *err, size_t errlen)
{
    if (n > OFF_LIMIT - ix->arena_len)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "the index arena would pass 256 TiB");
    size_t need = ix->arena_len + n;
    if (need <= ix->arena_cap)
        return PC_OK;
    size_t slot_bytes = ix->nslots * 8;
    if (!within_cap(ix, need + slot_bytes))
        return over_cap(ix, need + slot_bytes, err, errlen);
    size_t cap = ix->arena_cap > need / 2 ? ix->arena_cap * 2 : need;
    if (cap < need || cap > OFF_LIMIT)
        cap = need;
    if (ix->max_bytes != 0 && cap > ix->max_bytes - slot_bytes)
        cap = ix->max_bytes - slot_bytes; /* >= need: checked above */
    unsigned char *p = realloc(ix->arena, cap);
    if (p == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for an index arena of %.1f MiB",
                      MIB(cap));
    ix->arena = p;
    ix->arena_cap = cap;
    return PC_OK;
}

/* Places a record's slot at the first empty position of its probe sequence. */
static void slot_place(uint64_t *slots, size_t nslots, uint64_t hash, uint64_t slot)
{
    size_t mask = nslots - 1;
    size_t i = (size_t)hash & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = slot;
}

/* Doubles the slots when one more pair would pass a load of 0.7. */
static pc_status slots_reserve(memindex *ix, char *err, size_t errlen)
{
    if ((ix->count + 1) * 10 <= (uint64_t)ix->nslots * 7)
        return PC_OK;
    if (ix->nslots > SIZE_MAX / 16)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "too many keys for one index");
    size_t n = ix->nslots * 2;
    if (!within_cap(ix, ix->arena_len + n * 8))
        return over_cap(ix, ix->arena_len + n * 8, err, errlen);
    uint64_t *fresh = calloc(n, sizeof *fresh);
    if (fresh == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory for %zu index slots", n);
    for (size_t i = 0; i < ix->nslots; i++) {
        if (ix->slots[i] == 0)
            continue;
        const unsigned char *k, *v;
        size_t kl, vl;
        record_at(ix, ix->slots[i], &k, &kl, &v, &vl);
        slot_place(fresh, n, key_hash(ix->seed, k, kl), ix->slots[i]);
    }
    free(ix->slots);
    ix->slots = fresh;
    ix->nslots = n;
    /* The arena's unused room counts against the cap too: give back what the slots took. */
    if (ix->max_bytes != 0 && ix->arena_cap > ix->max_bytes - n * 8) {
        size_t cap = ix->max_bytes - n * 8; /* >= arena_len: checked above */
        unsigned char *p = cap > 0 ? realloc(ix->arena, cap) : NULL;
        if (cap == 0)
            free(ix->arena);
        if (p != NULL || cap == 0) { /* a failed shrink keeps the larger, still valid block */
            ix->arena = p;
            ix->arena_cap = cap;
        }
    }
    return PC_OK;
}

/* The slot holding key, or the empty slot where its probe sequence ends; *hit says which. */
static size_t slot_find(const memindex *ix, uint64_t hash, const unsigned char *key, size_t klen,
                        bool *hit)
{
    size_t mask = ix->nslots - 1;
    uint64_t tag = slot_tag(hash);
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        uint64_t s = ix->slots[i];
        if (s == 0) {
            *hit = false;
            return i;
        }
        if ((s >> OFF_BITS) != tag)
            continue;
        const unsigned char *k, *v;
        size_t kl, vl;
        record_at(ix, s, &k, &kl, &v, &vl);
        if (kl == klen && (klen == 0 || memcmp(k, key, klen) == 0)) {
            *hit = true;
            return i;
        }
    }
}

pc_status memindex_add(memindex *ix, const void *key, size_t klen, const void *val, size_t vlen,
                       char *err, size_t errlen)
{
    size_t head = varint_len(klen) + varint_len(vlen);
    if (klen > OFF_LIMIT || vlen > OFF_LIMIT - klen || head > OFF_LIMIT - klen - vlen)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "a pair of %zu + %zu bytes is too large", klen,
                      vlen);
    pc_status rc = slots_reserve(ix, err, errlen);
    if (rc == PC_OK)
        rc = arena_reserve(ix, head + klen + vlen, err, errlen);
    if (rc != PC_OK)
        return rc;
    uint64_t hash = key_hash(ix->seed, key, klen);
    bool hit;
    size_t i = slot_find(ix, hash, key, klen, &hit);
    if (hit)
        return pc_err(err, errlen, PC_ERR_DATA, "key of %zu bytes added twice to the index", klen);
    size_t off = ix->arena_len;
    unsigned char *p = ix->arena + off;
    p += varint_put(p, klen);
    p += varint_put(p, vlen);
    if (klen > 0)
        memcpy(p, key, klen);
    if (vlen > 0)
        memcpy(p + klen, val, vlen);
    ix->arena_len += head + klen + vlen;
    ix->slots[i] = slot_tag(hash) << OFF_BITS | ((uint64_t)off + 1);
    ix->count++;
    return PC_OK;
}

bool memindex_get(const memindex *ix, const void *key, size_t klen, const char **val,
                  size_t *vlen)
{
    bool hit;
    size_t i = slot_find(ix, key_hash(ix->seed, key, klen), key, klen, &hit);
    if (!hit) {
        *val = NULL;
        *vlen = 0;
        return false;
    }
    const unsigned char *k, *v;
    size_t kl;
    record_at(ix, ix->slots[i], &k, &kl, &v, vlen);
    *val = (const char *)v;
    return true;
}

uint64_t memindex_count(const memindex *ix)
{
    return ix->count;
}

size_t memindex_bytes(const memindex *ix)
{
    return ix->arena_cap + ix->nslots * 8;
}

void memindex_free(memindex *ix)
{
    if (ix == NULL)
        return;
    free(ix->arena);
    free(ix->slots);
    free(ix);
}

/* Gives back the arena's unused room once nothing more will be added. */
static void arena_trim(memindex *ix)
{
    if (ix->arena_len == ix->arena_cap || ix->arena_len == 0)
        return;
    unsigned char *p = realloc(ix->arena, ix->arena_len);
    if (p != NULL) { /* a failed shrink keeps the larger block, which is still valid */
        ix->arena = p;
        ix->arena_cap = ix->arena_len;
    }
}

pc_status memindex_build(const char *version_dir, size_t max_bytes, memindex **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    table_scan *s;
    pc_status rc = table_scan_open_dir(version_dir, &s, err, errlen);
    if (rc != PC_OK)
        return rc;
    /* The manifest sizes the index before a pair is read; the scan checks it as it goes, and
     * the index grows (within the cap) if it was short. */
    const manifest *m = table_scan_manifest(s);
    uint64_t rows = 0, bytes = 0;
    for (int64_t i = 0; i < m->nshards; i++) {
        rows += m->shards[i].rows > 0 ? (uint64_t)m->shards[i].rows : 0;
        bytes += m->shards[i].bytes > 0 ? (uint64_t)m->shards[i].bytes : 0;
    }
    memindex *ix = NULL;
    rc = memindex_new(rows, bytes, max_bytes, &ix, err, errlen);
    for (bool eof = false; rc == PC_OK;) {
        const char *k, *v;
        size_t kl, vl;
        rc = table_scan_next(s, &k, &kl, &v, &vl, &eof, err, errlen);
        if (rc != PC_OK || eof)
            break;
        rc = memindex_add(ix, k, kl, v, vl, err, errlen);
    }
    table_scan_close(s);
    if (rc != PC_OK) {
        memindex_free(ix);
        return rc;
    }
    arena_trim(ix);
    *out = ix;
    return PC_OK;
}
