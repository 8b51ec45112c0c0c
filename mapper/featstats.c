#include "mapper/featstats.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapper/map.h"
#include "storage/json.h" /* json_buf, the writer the manifests use too */

/* Every float32 is m * 2^(k - 150) with m a signed integer of at most 24 bits and k in
 * [1, 254] (k = 1 for subnormals), so sums of floats are kept exactly as one int64 per k. */
#define NEXP 256

typedef struct dense_acc {
    char *name;
    int64_t count, missing;
    double min, max;               /* of the finite values; +inf/-inf while none */
    double lo, hi, scale;          /* histogram range, scale = BINS / (hi - lo) or 0 */
    bool ranged;                   /* lo/hi known: fixed, pass 2, or compare */
    bool fixed;                    /* featstats_set_range: bins filled in pass 1 */
    int64_t bins[FEATSTATS_BINS];
    int64_t below, above;
    int64_t sum[NEXP];             /* sum of the signed mantissas of exponent k */
    uint64_t sq_hi[NEXP];          /* sum of mantissa squares of exponent k = hi * 2^32 + lo */
    uint64_t sq_lo[NEXP];
    bool loaded;                   /* read from a file: mean/std below, no accumulators */
    bool untracked;                /* COMPARE: the reference lacks this column */
    double mean_loaded, std_loaded;
} dense_acc;

/* An open-addressing table of id keys with their counts and (string columns) spellings. */
/* One slot: 32 bytes, so that a probe of a table too big for the cache costs one miss. */
typedef struct id_slot {
    uint64_t key;
    int64_t count;                 /* 0: empty slot */
    int64_t spell;                 /* offset into the arena, -1: none */
    uint32_t spell_len;
} id_slot;

typedef struct id_table {
    id_slot *slots;
    size_t cap, used;
    char *arena;
    size_t arena_len, arena_cap;
} id_table;

/* COMPARE: the reference vocabulary as a membership set built for lookups at map time: a
 * bitmap when the keys are small non-negative integers (a few KiB for ids below 10^5, which
 * stay in cache), else an open-addressing table of keys alone, probed after a prefetch of
 * every slot of a block of ids (the misses overlap instead of queueing). */
typedef struct member_set {
    uint64_t *bits;                /* bitmap mode: bit k set <=> key k is in; keys < range */
    uint64_t range;
    uint64_t *keys;                /* table mode: cap slots, MEMBER_EMPTY = free */
    size_t cap;
    bool has_empty_key;            /* MEMBER_EMPTY itself is in the vocabulary */
} member_set;

#define MEMBER_EMPTY UINT64_MAX

typedef struct id_acc {
    char *name;
    featstats_id_kind kind;
    int64_t count;
    int64_t unseen;                /* COMPARE */
    int64_t overflow;              /* PROFILE: ids not counted because the table was full */
    int64_t distinct_loaded;       /* read from a file */
    bool complete_loaded;
    id_table t;                    /* PROFILE: the ids counted */
    const id_table *ref_t;         /* COMPARE: the reference column's ids */
    member_set member;             /* COMPARE: ref_t's keys, for the lookups */
    id_table spell_t;              /* PROFILE: spellings noted by key (featstats_note_spelling) */
    /* featstats_ids_get's view (sorted top ids), rebuilt on demand */
    char **top;
    int64_t top_counts[FEATSTATS_TOP_IDS];
    int64_t ntop;
} id_acc;

struct featstats {
    featstats_mode mode;
    bool pass2;                    /* PROFILE: pass 1 ended */
    bool added;                    /* rows were added */
    bool loaded;                   /* read from a file */
    int64_t since_carry;           /* rows added since carry_squares */
    const featstats *ref;          /* COMPARE: the profile */
    int64_t ndense, nids;
    dense_acc *dense;
    id_acc *ids;
};

/* ---- ids ---- */

/* The run's own id hash: a training id and tonight's must key alike, so there is one definition. */
uint64_t featstats_id_key(const char *s, size_t len)
{
    return map_hash_id(s, len);
}

/* A key's home slot: the keys of integer columns are small consecutive numbers, so mix. */
static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static size_t table_find(const id_table *t, uint64_t key)
{
    size_t i = slot_of(key, t->cap);
    while (t->slots[i].count != 0 && t->slots[i].key != key) i = (i + 1) & (t->cap - 1);
    return i;
}

static void table_free(id_table *t)
{
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

static bool table_resize(id_table *t, size_t cap)
{
    id_table n = {.cap = cap, .used = t->used, .arena = t->arena, .arena_len = t->arena_len,
                  .arena_cap = t->arena_cap};
    if ((n.slots = calloc(cap, sizeof *n.slots)) == NULL) return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].count == 0) continue;
        n.slots[table_find(&n, t->slots[i].key)] = t->slots[i];
    }
    free(t->slots);
    *t = n;
    return true;
}

/* Adds count to key (with its spelling if new and given).  Returns the slot, or -1 when a new
 * key does not fit (the table is at `limit` keys) and -2 when out of memory. */
static int64_t table_add(id_table *t, uint64_t key, int64_t count, const char *spell, size_t len, size_t limit)
{
    if (t->cap == 0 || (t->used + 1) * 4 > t->cap * 3) {
        if (t->cap != 0 && t->used >= limit) {
            size_t i = table_find(t, key);
            if (t->slots[i].count == 0) return -1;
            t->slots[i].count += count;
            return (int64_t)i;
        }
        if (!table_resize(t, t->cap ? t->cap * 2 : 1024)) return -2;
    }
    size_t i = table_find(t, key);
    if (t->slots[i].count != 0) {
        t->slots[i].count += count;
        return (int64_t)i;
    }
    if (t->used >= limit) return -1;
    t->slots[i].key = key;
    t->slots[i].count = count;
    t->slots[i].spell = -1;
    t->slots[i].spell_len = 0;
    if (spell != NULL && len < UINT32_MAX) {
        if (t->arena_len + len > t->arena_cap) {
            size_t c = t->arena_cap ? t->arena_cap : 4096;
            while (c < t->arena_len + len) c *= 2;
            char *p = realloc(t->arena, c);
            if (p == NULL) return -2;
            t->arena = p;
            t->arena_cap = c;
        }
        if (len) memcpy(t->arena + t->arena_len, spell, len);
        t->slots[i].spell = (int64_t)t->arena_len;
        t->slots[i].spell_len = (uint32_t)len;
        t->arena_len += len;
    }
    t->used++;
    return (int64_t)i;
}

static bool table_has(const id_table *t, uint64_t key)
{
    return t->cap != 0 && t->slots[table_find(t, key)].count != 0;
}

/* ---- creating ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void dense_reset(dense_acc *d)
{
    char *name = d->name;
    double lo = d->lo, hi = d->hi, scale = d->scale;
    bool ranged = d->ranged, fixed = d->fixed;
    memset(d, 0, sizeof *d);
    d->name = name;
    d->min = INFINITY;
    d->max = -INFINITY;
    d->lo = lo, d->hi = hi, d->scale = scale, d->ranged = ranged, d->fixed = fixed;
}

static void set_range(dense_acc *d, double lo, double hi)
{
    d->lo = lo;
    d->hi = hi;
    d->scale = hi > lo ? FEATSTATS_BINS / (hi - lo) : 0.0;
    d->ranged = true;
}

static pc_status check_names(const char *const *names, int64_t n, const char *what, char *err, size_t errlen)
{
    for (int64_t i = 0; i < n; i++) {
        if (names[i] == NULL || names[i][0] == '\0')
            return pc_err(err, errlen, PC_ERR_CONFIG, "featstats: %s %lld has an empty name", what, (long long)i);
        for (int64_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return pc_err(err, errlen, PC_ERR_CONFIG, "featstats: %s '%s' is named twice", what, names[i]);
    }
    return PC_OK;
}

static pc_status alloc_columns(featstats *fs, int64_t ndense, int64_t nids, char *err, size_t errlen)
{
    fs->ndense = ndense;
    fs->nids = nids;
    fs->dense = calloc((size_t)ndense + 1, sizeof *fs->dense);
    fs->ids = calloc((size_t)nids + 1, sizeof *fs->ids);
    if (fs->dense == NULL || fs->ids == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    for (int64_t i = 0; i < ndense; i++) {
        fs->dense[i].lo = fs->dense[i].hi = NAN;
        dense_reset(&fs->dense[i]);
    }
    return PC_OK;
}

pc_status featstats_create(const char *const *dense, int64_t ndense, const char *const *ids,
                           const featstats_id_kind *kinds, int64_t nids, featstats **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (ndense < 0 || nids < 0) return pc_err(err, errlen, PC_ERR_USAGE, "featstats: negative column count");
    pc_status s = check_names(dense, ndense, "dense feature", err, errlen);
    if (s == PC_OK) s = check_names(ids, nids, "id column", err, errlen);
    if (s != PC_OK) return s;
    featstats *fs = calloc(1, sizeof *fs);
    if (fs == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    fs->mode = FEATSTATS_PROFILE;
    s = alloc_columns(fs, ndense, nids, err, errlen);
    for (int64_t i = 0; s == PC_OK && i < ndense; i++)
        if ((fs->dense[i].name = dup_str(dense[i])) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    for (int64_t i = 0; s == PC_OK && i < nids; i++) {
        fs->ids[i].kind = kinds ? kinds[i] : FEATSTATS_ID_INT;
        if ((fs->ids[i].name = dup_str(ids[i])) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    }
    if (s != PC_OK) {
        featstats_free(fs);
        return s;
    }
    *out = fs;
    return PC_OK;
}

pc_status featstats_set_range(featstats *fs, int64_t i, double lo, double hi, char *err, size_t errlen)
{
    if (fs->mode != FEATSTATS_PROFILE || fs->added || fs->pass2 || i < 0 || i >= fs->ndense)
        return pc_err(err, errlen, PC_ERR_USAGE, "featstats_set_range: a profile's feature, before any row");
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return pc_err(err, errlen, PC_ERR_USAGE, "featstats_set_range: bad range [%g, %g]", lo, hi);
    set_range(&fs->dense[i], lo, hi);
    fs->dense[i].fixed = true;
    return PC_OK;
}

/* Builds the membership set of a reference table; false when out of memory. */
static bool member_build(member_set *m, const id_table *t)
{
    uint64_t max = 0;
    bool small = true;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].count != 0) {
            if (t->slots[i].key > max) max = t->slots[i].key;
            small = small && t->slots[i].key < ((uint64_t)1 << 32);
        }
    /* a bitmap when it is no bigger than the table would be (16 bytes per id) or 64 KiB */
    uint64_t limit = (uint64_t)t->used * 128 > (1u << 19) ? (uint64_t)t->used * 128 : (1u << 19);
    if (small && max < limit) {
        m->range = max + 1;
        m->bits = calloc((size_t)(m->range / 64 + 1), sizeof *m->bits);
        if (m->bits == NULL) return false;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].count != 0) m->bits[t->slots[i].key >> 6] |= (uint64_t)1 << (t->slots[i].key & 63);
        return true;
    }
    m->cap = 16;
    while (m->cap < (size_t)t->used * 2) m->cap *= 2;
    m->keys = malloc(m->cap * sizeof *m->keys);
    if (m->keys == NULL) return false;
    for (size_t i = 0; i < m->cap; i++) m->keys[i] = MEMBER_EMPTY;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].count == 0) continue;
        uint64_t k = t->slots[i].key;
        if (k == MEMBER_EMPTY) {
            m->has_empty_key = true;
            continue;
        }
        size_t j = slot_of(k, m->cap);
        while (m->keys[j] != MEMBER_EMPTY) j = (j + 1) & (m->cap - 1);
        m->keys[j] = k;
    }
    return true;
}

/* How many of n keys (keys[k * stride]) the set lacks. */
static int64_t member_missing(const member_set *m, const uint64_t *keys, int64_t n, int64_t stride)
{
    int64_t missing = 0;
    if (m->bits != NULL) {
        for (int64_t k = 0; k < n; k++) {
            uint64_t key = keys[k * stride];
            missing += key >= m->range || !((m->bits[key >> 6] >> (key & 63)) & 1);
        }
        return missing;
    }
    enum { BLOCK = 64 };
    size_t slot[BLOCK];
    for (int64_t k0 = 0; k0 < n; k0 += BLOCK) {
        int64_t b = n - k0 < BLOCK ? n - k0 : BLOCK;
        for (int64_t k = 0; k < b; k++) {
            slot[k] = slot_of(keys[(k0 + k) * stride], m->cap);
            __builtin_prefetch(&m->keys[slot[k]]);
        }
        for (int64_t k = 0; k < b; k++) {
            uint64_t key = keys[(k0 + k) * stride];
            if (key == MEMBER_EMPTY) {
                missing += !m->has_empty_key;
                continue;
            }
            size_t j = slot[k];
            while (m->keys[j] != MEMBER_EMPTY && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
            missing += m->keys[j] == MEMBER_EMPTY;
        }
    }
    return missing;
}

/* Index of name in the reference's dense features (ids: id columns), or -1. */
static int64_t ref_find(const featstats *ref, bool ids, const char *name)
{
    return ids ? featstats_id_find(ref, name) : featstats_dense_find(ref, name);
}

pc_status featstats_create_compare(const featstats *reference, const char *const *dense, int64_t ndense,
                                   const char *const *ids, int64_t nids, featstats **out, char *err, size_t errlen)
{
    *out = NULL;
    if (reference->mode != FEATSTATS_PROFILE)
        return pc_err(err, errlen, PC_ERR_USAGE, "featstats_create_compare: the reference must be a profile");
    for (int64_t i = 0; i < reference->ndense; i++)
        if (!reference->dense[i].ranged)
            return pc_err(err, errlen, PC_ERR_USAGE, "featstats_create_compare: the reference's histogram of '%s' is not complete",
                          reference->dense[i].name);
    if (dense == NULL) ndense = reference->ndense;
    if (ids == NULL) nids = reference->nids;
    int64_t found = (dense ? 0 : ndense) + (ids ? 0 : nids);
    for (int64_t i = 0; dense && i < ndense; i++) found += ref_find(reference, false, dense[i]) >= 0;
    for (int64_t i = 0; ids && i < nids; i++) found += ref_find(reference, true, ids[i]) >= 0;
    if (found == 0 && ndense + nids > 0)
        return pc_err(err, errlen, PC_ERR_CONFIG, "the statistics have none of the columns (the first is '%s')",
                      ndense > 0 ? dense[0] : ids[0]);
    featstats *fs = calloc(1, sizeof *fs);
    if (fs == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    fs->mode = FEATSTATS_COMPARE;
    fs->ref = reference;
    pc_status s = alloc_columns(fs, ndense, nids, err, errlen);
    for (int64_t i = 0; s == PC_OK && i < fs->ndense; i++) {
        int64_t k = dense ? ref_find(reference, false, dense[i]) : i;
        dense_acc *d = &fs->dense[i];
        if ((d->name = dup_str(dense ? dense[i] : reference->dense[i].name)) == NULL)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
        d->untracked = k < 0; /* counted into a dummy range, never compared */
        set_range(d, k >= 0 ? reference->dense[k].lo : 0.0, k >= 0 ? reference->dense[k].hi : 0.0);
    }
    for (int64_t i = 0; s == PC_OK && i < fs->nids; i++) {
        int64_t k = ids ? ref_find(reference, true, ids[i]) : i;
        id_acc *a = &fs->ids[i];
        a->kind = k >= 0 ? reference->ids[k].kind : FEATSTATS_ID_INT;
        a->ref_t = k >= 0 ? &reference->ids[k].t : NULL;
        if (a->ref_t != NULL && !member_build(&a->member, a->ref_t))
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
        if ((a->name = dup_str(ids ? ids[i] : reference->ids[i].name)) == NULL)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    }
    if (s != PC_OK) {
        featstats_free(fs);
        return s;
    }
    *out = fs;
    return PC_OK;
}

static void ids_view_free(id_acc *a)
{
    for (int64_t k = 0; a->top && k < a->ntop; k++) free(a->top[k]);
    free(a->top);
    a->top = NULL;
    a->ntop = 0;
}

void featstats_free(featstats *fs)
{
    if (fs == NULL) return;
    for (int64_t i = 0; fs->dense && i < fs->ndense; i++) free(fs->dense[i].name);
    for (int64_t i = 0; fs->ids && i < fs->nids; i++) {
        free(fs->ids[i].name);
        table_free(&fs->ids[i].t);
        table_free(&fs->ids[i].spell_t);
        free(fs->ids[i].member.bits);
        free(fs->ids[i].member.keys);
        ids_view_free(&fs->ids[i]);
    }
    free(fs->dense);
    free(fs->ids);
    free(fs);
}

/* ---- adding rows ---- */

static inline void bin_add(dense_acc *d, double x)
{
    if (x < d->lo) {
        d->below++;
    } else if (x > d->hi) {
        d->above++;
    } else {
        int b = (int)((x - d->lo) * d->scale);
        d->bins[b < FEATSTATS_BINS ? b : FEATSTATS_BINS - 1]++;
    }
}

/* Missing, min/max and the exact moments of one value (count is added per block).  The low
 * words of the squares are not carried here: featstats_add_dense carries every
 * CARRY_ROWS rows (see carry_squares).  False for a missing value. */
static inline bool moments_add(dense_acc *d, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t e = (u >> 23) & 0xffu;
    if (e == 0xffu) {
        d->missing++;
        return false;
    }
    uint32_t normal = e != 0;
    uint64_t m = (u & 0x7fffffu) | (normal << 23);
    uint32_t k = e + !normal;          /* subnormals share exponent 1's scale */
    uint64_t neg = -(uint64_t)(u >> 31); /* all ones for a negative value */
    d->sum[k] += (int64_t)((m ^ neg) - neg);
    d->sq_lo[k] += m * m;
    d->min = x < d->min ? x : d->min;
    d->max = x > d->max ? x : d->max;
    return true;
}

/* A square is below 2^48, so the low words (below 2^32 after a carry) take 2^15 values before
 * they could wrap: every feature carries at least that often. */
#define CARRY_ROWS 32768

static void carry_squares(featstats *fs)
{
    for (int64_t j = 0; j < fs->ndense; j++) {
        dense_acc *d = &fs->dense[j];
        for (int k = 0; k < NEXP; k++)
            if (d->sq_lo[k] >> 32) {
                d->sq_hi[k] += d->sq_lo[k] >> 32;
                d->sq_lo[k] &= 0xffffffffULL;
            }
    }
    fs->since_carry = 0;
}

/* COMPARE mode: the bins, below/above and missing counts only — one counter per value, the
 * whole cost of input drift in the map loop.  Rows run in the outer loop so that one
 * feature's counters are touched again only after every other feature's (no chain of
 * dependent read-modify-writes). */
static void compare_add(dense_acc *ds, const float *x, int64_t rows, int64_t width)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * width;
        for (int64_t j = 0; j < width; j++) {
            dense_acc *d = &ds[j];
            float v = row[j];
            uint32_t u;
            memcpy(&u, &v, sizeof u);
            if ((u & 0x7f800000u) == 0x7f800000u) d->missing++;
            else bin_add(d, v);
        }
    }
    for (int64_t j = 0; j < width; j++) ds[j].count += rows;
}

void featstats_add_dense(featstats *fs, int64_t first, const float *x, int64_t rows, int64_t width)
{
    if (rows <= 0 || width <= 0) return;
    fs->added = true;
    dense_acc *ds = fs->dense + first;
    if (fs->mode == FEATSTATS_PROFILE && fs->pass2) { /* pass 2: the histogram only */
        for (int64_t j = 0; j < width; j++) {
            dense_acc *d = &ds[j];
            if (d->fixed) continue;  /* filled in pass 1 */
            for (int64_t r = 0; r < rows; r++) {
                float v = x[r * width + j];
                if (isfinite(v)) bin_add(d, v);
            }
        }
        return;
    }
    if (fs->mode == FEATSTATS_COMPARE) {
        compare_add(ds, x, rows, width);
        return;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += CARRY_ROWS) {
        int64_t n = rows - r0 < CARRY_ROWS ? rows - r0 : CARRY_ROWS;
        if (fs->since_carry + n > CARRY_ROWS) carry_squares(fs);
        fs->since_carry += n;
        for (int64_t r = r0; r < r0 + n; r++) {
            const float *row = x + r * width;
            for (int64_t j = 0; j < width; j++) {
                dense_acc *d = &ds[j];
                if (moments_add(d, row[j]) && d->ranged) bin_add(d, row[j]);
            }
        }
    }
    for (int64_t j = 0; j < width; j++) ds[j].count += rows;
}

static pc_status id_add(featstats *fs, int64_t col, uint64_t key, const char *spell, size_t len, char *err,
                        size_t errlen)
{
    id_acc *a = &fs->ids[col];
    a->count++;
    if (fs->mode == FEATSTATS_COMPARE) {
        if (a->ref_t != NULL) a->unseen += member_missing(&a->member, &key, 1, 1);
        return PC_OK;
    }
    if (fs->pass2) { /* ids are counted in pass 1 only */
        a->count--;
        return PC_OK;
    }
    int64_t slot = table_add(&a->t, key, 1, spell, len, FEATSTATS_MAX_DISTINCT);
    if (slot == -1) a->overflow++;
    if (slot == -2) return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory for the ids of '%s'", a->name);
    return PC_OK;
}

pc_status featstats_add_id_keys(featstats *fs, int64_t col, const uint64_t *keys, int64_t n, int64_t stride,
                                char *err, size_t errlen)
{
    fs->added = true;
    if (fs->mode == FEATSTATS_COMPARE) { /* the map loop's path: a block at a time */
        id_acc *a = &fs->ids[col];
        a->count += n;
        if (a->ref_t != NULL) a->unseen += member_missing(&a->member, keys, n, stride);
        return PC_OK;
    }
    for (int64_t k = 0; k < n; k++) {
        pc_status s = id_add(fs, col, keys[k * stride], NULL, 0, err, errlen);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

pc_status featstats_add_ids_i64(featstats *fs, int64_t col, const int64_t *ids, int64_t n, char *err,
                                size_t errlen)
{
    fs->added = true;
    if (fs->mode == FEATSTATS_COMPARE) /* int64 and uint64 share their representation */
        return featstats_add_id_keys(fs, col, (const uint64_t *)ids, n, 1, err, errlen);
    for (int64_t k = 0; k < n; k++) {
        pc_status s = id_add(fs, col, (uint64_t)ids[k], NULL, 0, err, errlen);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

pc_status featstats_add_ids_str(featstats *fs, int64_t col, const char *const *ids, const size_t *lens,
                                int64_t n, char *err, size_t errlen)
{
    fs->added = true;
    for (int64_t k = 0; k < n; k++) {
        pc_status s = id_add(fs, col, featstats_id_key(ids[k], lens[k]), ids[k], lens[k], err, errlen);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

pc_status featstats_note_spelling(featstats *fs, int64_t col, uint64_t key, const char *s, size_t len, char *err,
                                  size_t errlen)
{
    if (fs->mode != FEATSTATS_PROFILE || fs->pass2) return PC_OK;
    id_table *t = &fs->ids[col].spell_t;
    if (table_has(t, key)) return PC_OK;
    if (table_add(t, key, 1, s, len, FEATSTATS_MAX_DISTINCT) == -2)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory for the ids of '%s'", fs->ids[col].name);
    return PC_OK;
}

/* The spelling of key in column a: from its own table, else from the noted spellings; NULL
 * when unknown. */
static const char *spelling_of(const id_acc *a, size_t slot, uint32_t *len)
{
    const id_table *t = &a->t;
    if (t->slots[slot].spell >= 0) {
        *len = t->slots[slot].spell_len;
        return t->arena + t->slots[slot].spell;
    }
    if (a->spell_t.cap == 0) return NULL;
    size_t i = table_find(&a->spell_t, t->slots[slot].key);
    if (a->spell_t.slots[i].count == 0 || a->spell_t.slots[i].spell < 0) return NULL;
    *len = a->spell_t.slots[i].spell_len;
    return a->spell_t.arena + a->spell_t.slots[i].spell;
}

/* Copies noted spellings into the id table's entries that lack one (before the table is
 * gathered: the noted spellings stay on their rank). */
static bool adopt_spellings(id_acc *a)
{
    id_table *t = &a->t;
    for (size_t i = 0; i < t->cap; i++) {
        uint32_t len;
        const char *sp;
        if (t->slots[i].count == 0 || t->slots[i].spell >= 0 || (sp = spelling_of(a, i, &len)) == NULL) continue;
        if (t->arena_len + len > t->arena_cap) {
            size_t c = t->arena_cap ? t->arena_cap : 4096;
            while (c < t->arena_len + len) c *= 2;
            char *p = realloc(t->arena, c);
            if (p == NULL) return false;
            t->arena = p;
            t->arena_cap = c;
        }
        if (len) memcpy(t->arena + t->arena_len, sp, len);
        t->slots[i].spell = (int64_t)t->arena_len;
        t->slots[i].spell_len = len;
        t->arena_len += len;
    }
    return true;
}

/* ---- passes and merging ---- */

/* Agrees on a status: the worst (largest) code of any rank; the message of a failed rank is
 * kept locally, the others get a generic one naming that another rank failed. */
static pc_status agree(pc_status s, MPI_Comm comm, char *err, size_t errlen)
{
    int mine = (int)s, worst = 0;
    if (MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Allreduce failed");
    if (worst != PC_OK && s == PC_OK)
        return pc_err(err, errlen, (pc_status)worst, "featstats: another rank failed to merge its statistics");
    return (pc_status)worst;
}

pc_status featstats_profile_pass2(featstats *fs, MPI_Comm comm, char *err, size_t errlen)
{
    if (fs->mode != FEATSTATS_PROFILE || fs->pass2 || fs->loaded)
        return pc_err(err, errlen, PC_ERR_USAGE, "featstats_profile_pass2: only once, on a profile");
    int64_t n = fs->ndense;
    double *mm = malloc(((size_t)n * 2 + 1) * sizeof *mm), *gm = malloc(((size_t)n * 2 + 1) * sizeof *gm);
    pc_status s = mm && gm ? PC_OK : pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    s = agree(s, comm, err, errlen);
    if (s == PC_OK) {
        /* max as -min so that one MPI_MIN reduction does both */
        for (int64_t i = 0; i < n; i++) mm[2 * i] = fs->dense[i].min, mm[2 * i + 1] = -fs->dense[i].max;
        if (MPI_Allreduce(mm, gm, (int)(2 * n), MPI_DOUBLE, MPI_MIN, comm) != MPI_SUCCESS)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Allreduce failed");
    }
    for (int64_t i = 0; s == PC_OK && i < n; i++) {
        dense_acc *d = &fs->dense[i];
        if (d->fixed) continue;
        double lo = gm[2 * i], hi = -gm[2 * i + 1];
        if (lo > hi) lo = hi = 0.0; /* no finite value anywhere */
        set_range(d, lo, hi);
    }
    if (s == PC_OK) fs->pass2 = true;
    free(mm);
    free(gm);
    return s;
}

/* The integer accumulators of one dense feature, packed for MPI: int64 [count, missing,
 * below, above, bins..., sum...], uint64 [sq_hi..., sq_lo...] (normalised: lo < 2^32). */
#define DENSE_I64 (4 + FEATSTATS_BINS + NEXP)
#define DENSE_U64 (2 * NEXP)

static void dense_pack(dense_acc *d, int64_t *i64, uint64_t *u64, double *mm)
{
    i64[0] = d->count, i64[1] = d->missing, i64[2] = d->below, i64[3] = d->above;
    memcpy(i64 + 4, d->bins, sizeof d->bins);
    memcpy(i64 + 4 + FEATSTATS_BINS, d->sum, sizeof d->sum);
    for (int k = 0; k < NEXP; k++) {
        u64[k] = d->sq_hi[k] + (d->sq_lo[k] >> 32);
        u64[NEXP + k] = d->sq_lo[k] & 0xffffffffULL;
    }
    mm[0] = d->min;
    mm[1] = -d->max;
}

static void dense_unpack(dense_acc *d, const int64_t *i64, const uint64_t *u64, const double *mm)
{
    d->count = i64[0], d->missing = i64[1], d->below = i64[2], d->above = i64[3];
    memcpy(d->bins, i64 + 4, sizeof d->bins);
    memcpy(d->sum, i64 + 4 + FEATSTATS_BINS, sizeof d->sum);
    for (int k = 0; k < NEXP; k++) { /* one canonical (hi, lo) whatever the ranks' split */
        d->sq_hi[k] = u64[k] + (u64[NEXP + k] >> 32);
        d->sq_lo[k] = u64[NEXP + k] & 0xffffffffULL;
    }
    d->min = mm[0];
    d->max = -mm[1];
}

static pc_status merge_dense(featstats *fs, int rank, MPI_Comm comm, char *err, size_t errlen)
{
    int64_t n = fs->ndense;
    if (n == 0) return PC_OK;
    size_t ni = (size_t)n * DENSE_I64, nu = (size_t)n * DENSE_U64, nm = (size_t)n * 2;
    int64_t *i64 = malloc(ni * sizeof *i64), *gi64 = malloc(ni * sizeof *gi64);
    uint64_t *u64 = malloc(nu * sizeof *u64), *gu64 = malloc(nu * sizeof *gu64);
    double *mm = malloc(nm * sizeof *mm), *gmm = malloc(nm * sizeof *gmm);
    pc_status s = i64 && gi64 && u64 && gu64 && mm && gmm ? PC_OK
                                                          : pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    s = agree(s, comm, err, errlen);
    if (s == PC_OK) {
        for (int64_t i = 0; i < n; i++) dense_pack(&fs->dense[i], i64 + i * DENSE_I64, u64 + i * DENSE_U64, mm + 2 * i);
        if (ni > INT_MAX || nu > INT_MAX ||
            MPI_Reduce(i64, gi64, (int)ni, MPI_INT64_T, MPI_SUM, 0, comm) != MPI_SUCCESS ||
            MPI_Reduce(u64, gu64, (int)nu, MPI_UINT64_T, MPI_SUM, 0, comm) != MPI_SUCCESS ||
            MPI_Reduce(mm, gmm, (int)nm, MPI_DOUBLE, MPI_MIN, 0, comm) != MPI_SUCCESS)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Reduce of the dense statistics failed");
    }
    for (int64_t i = 0; s == PC_OK && i < n; i++) {
        if (rank == 0) dense_unpack(&fs->dense[i], gi64 + i * DENSE_I64, gu64 + i * DENSE_U64, gmm + 2 * i);
        else dense_reset(&fs->dense[i]);
    }
    free(i64), free(gi64), free(u64), free(gu64), free(mm), free(gmm);
    return s;
}

/* Serialises a rank's id table: per id, key (8), count (8), spelling length (4, 0xffffffff =
 * none), spelling bytes. */
static bool ids_serialize(const id_table *t, char **out, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].count != 0) n += 20 + (t->slots[i].spell >= 0 ? t->slots[i].spell_len : 0);
    char *p = malloc(n + 1);
    if (p == NULL) return false;
    size_t o = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].count == 0) continue;
        uint32_t sl = t->slots[i].spell >= 0 ? t->slots[i].spell_len : UINT32_MAX;
        memcpy(p + o, &t->slots[i].key, 8);
        memcpy(p + o + 8, &t->slots[i].count, 8);
        memcpy(p + o + 16, &sl, 4);
        o += 20;
        if (sl != UINT32_MAX) {
            memcpy(p + o, t->arena + t->slots[i].spell, sl);
            o += sl;
        }
    }
    *out = p;
    *len = n;
    return true;
}

static bool ids_deserialize_add(id_table *t, const char *p, size_t len)
{
    size_t o = 0;
    while (o + 20 <= len) {
        uint64_t key;
        int64_t count;
        uint32_t sl;
        memcpy(&key, p + o, 8);
        memcpy(&count, p + o + 8, 8);
        memcpy(&sl, p + o + 16, 4);
        o += 20;
        const char *spell = sl != UINT32_MAX ? p + o : NULL;
        if (sl != UINT32_MAX) o += sl;
        /* rank 0 holds the union: no distinct limit when merging */
        if (table_add(t, key, count, spell, spell ? sl : 0, SIZE_MAX) < 0) return false;
    }
    return true;
}

static pc_status merge_id_column(id_acc *a, int rank, int size, MPI_Comm comm, char *err, size_t errlen)
{
    char *mine = NULL, *all = NULL;
    size_t mylen = 0;
    int *lens = NULL, *displs = NULL;
    pc_status s = PC_OK;
    if (rank != 0 && !ids_serialize(&a->t, &mine, &mylen)) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    if (s == PC_OK && mylen > INT_MAX)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: the ids of '%s' exceed 2 GiB on one rank", a->name);
    if (rank == 0 && ((lens = calloc((size_t)size, sizeof *lens)) == NULL ||
                      (displs = calloc((size_t)size, sizeof *displs)) == NULL))
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    s = agree(s, comm, err, errlen);
    int ml = (int)mylen;
    if (s == PC_OK && MPI_Gather(&ml, 1, MPI_INT, lens, 1, MPI_INT, 0, comm) != MPI_SUCCESS)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Gather failed");
    size_t total = 0;
    if (s == PC_OK && rank == 0) {
        for (int r = 0; r < size; r++) displs[r] = (int)total, total += (size_t)lens[r];
        if (total > INT_MAX) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: the ids of '%s' exceed 2 GiB", a->name);
        else if ((all = malloc(total + 1)) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    }
    s = agree(s, comm, err, errlen);
    if (s == PC_OK && MPI_Gatherv(mine, ml, MPI_BYTE, all, lens, displs, MPI_BYTE, 0, comm) != MPI_SUCCESS)
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Gatherv failed");
    if (s == PC_OK && rank == 0 && !ids_deserialize_add(&a->t, all, total))
        s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory merging the ids of '%s'", a->name);
    if (s == PC_OK && rank != 0) table_free(&a->t);
    free(mine), free(all), free(lens), free(displs);
    return s;
}

pc_status featstats_merge(featstats *fs, MPI_Comm comm, char *err, size_t errlen)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    /* every rank must hold the same shape */
    int64_t shape[4] = {fs->ndense, fs->nids, fs->mode, fs->pass2}, lo[4], hi[4];
    MPI_Allreduce(shape, lo, 4, MPI_INT64_T, MPI_MIN, comm);
    MPI_Allreduce(shape, hi, 4, MPI_INT64_T, MPI_MAX, comm);
    if (memcmp(lo, hi, 4 * sizeof *lo) != 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats_merge: the ranks' sketches differ in columns or mode");
    pc_status s = merge_dense(fs, rank, comm, err, errlen);
    int64_t n = fs->nids;
    int64_t *c = malloc(((size_t)n * 3 + 1) * sizeof *c), *g = malloc(((size_t)n * 3 + 1) * sizeof *g);
    if (s == PC_OK && (c == NULL || g == NULL)) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    s = agree(s, comm, err, errlen);
    if (s == PC_OK && n > 0) {
        for (int64_t i = 0; i < n; i++)
            c[3 * i] = fs->ids[i].count, c[3 * i + 1] = fs->ids[i].unseen, c[3 * i + 2] = fs->ids[i].overflow;
        if (MPI_Reduce(c, g, (int)(3 * n), MPI_INT64_T, MPI_SUM, 0, comm) != MPI_SUCCESS)
            s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: MPI_Reduce failed");
        for (int64_t i = 0; s == PC_OK && i < n; i++) {
            id_acc *a = &fs->ids[i];
            a->count = rank == 0 ? g[3 * i] : 0;
            a->unseen = rank == 0 ? g[3 * i + 1] : 0;
            a->overflow = rank == 0 ? g[3 * i + 2] : 0;
        }
    }
    for (int64_t i = 0; s == PC_OK && fs->mode == FEATSTATS_PROFILE && i < n; i++) {
        if (!adopt_spellings(&fs->ids[i])) s = pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
        s = agree(s, comm, err, errlen);
        if (s == PC_OK) s = merge_id_column(&fs->ids[i], rank, size, comm, err, errlen);
    }
    free(c);
    free(g);
    return s;
}

/* ---- reading the results ---- */

featstats_mode featstats_mode_of(const featstats *fs) { return fs->mode; }
int64_t featstats_dense_count(const featstats *fs) { return fs->ndense; }
int64_t featstats_id_count(const featstats *fs) { return fs->nids; }

int64_t featstats_dense_find(const featstats *fs, const char *name)
{
    for (int64_t i = 0; i < fs->ndense; i++)
        if (strcmp(fs->dense[i].name, name) == 0) return i;
    return -1;
}

int64_t featstats_id_find(const featstats *fs, const char *name)
{
    for (int64_t i = 0; i < fs->nids; i++)
        if (strcmp(fs->ids[i].name, name) == 0) return i;
    return -1;
}

/* Mean and population std from the exact accumulators, summed in a fixed order (exponent
 * ascending) in long double: a function of the accumulators alone. */
static void dense_moments(const dense_acc *d, double *mean, double *std)
{
    int64_t n = d->count - d->missing;
    if (d->loaded) {
        *mean = d->mean_loaded;
        *std = d->std_loaded;
        return;
    }
    if (n <= 0) {
        *mean = *std = 0.0;
        return;
    }
    long double s = 0.0L, ss = 0.0L;
    for (int k = 0; k < NEXP; k++) {
        if (d->sum[k] != 0) s += ldexpl((long double)d->sum[k], k - 150);
        if (d->sq_hi[k] != 0 || d->sq_lo[k] != 0)
            ss += ldexpl(ldexpl((long double)d->sq_hi[k], 32) + (long double)d->sq_lo[k], 2 * k - 300);
    }
    long double m = s / (long double)n;
    long double var = ss / (long double)n - m * m;
    *mean = (double)m;
    *std = var > 0 ? (double)sqrtl(var) : 0.0;
}

void featstats_dense_get(const featstats *fs, int64_t i, featstats_dense *out)
{
    const dense_acc *d = &fs->dense[i];
    memset(out, 0, sizeof *out);
    out->name = d->name;
    out->tracked = !d->untracked;
    out->count = d->count;
    out->missing = d->missing;
    dense_moments(d, &out->mean, &out->std);
    if (fs->mode == FEATSTATS_COMPARE) out->mean = out->std = NAN; /* not kept (cost) */
    bool any = d->min <= d->max;
    out->min = any ? d->min : NAN;
    out->max = any ? d->max : NAN;
    out->lo = d->ranged ? d->lo : NAN;
    out->hi = d->ranged ? d->hi : NAN;
    memcpy(out->bins, d->bins, sizeof out->bins);
    out->below = d->below;
    out->above = d->above;
}

/* Orders ids by count descending, then key ascending: a total order, so the top ids and the
 * written vocabulary do not depend on the table's slot order. */
typedef struct id_ref {
    uint64_t key;
    int64_t count;
    size_t slot;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* The table's ids in id_ref_cmp order (*n of them); NULL when out of memory. */
static id_ref *ids_sorted(const id_table *t, size_t *n)
{
    id_ref *v = malloc((t->used + 1) * sizeof *v);
    if (v == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].count != 0) v[k++] = (id_ref){t->slots[i].key, t->slots[i].count, i};
    qsort(v, k, sizeof *v, id_ref_cmp);
    *n = k;
    return v;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* The spelling of the id in slot i: decimal for integer columns, the string for string
 * columns, "#<16 hex digits>" for a string id whose spelling is unknown or not UTF-8.  Returns
 * a malloc'd NUL-terminated string (NULL when out of memory) and its length. */
static char *id_spelling(const id_acc *a, size_t slot, size_t *len)
{
    const id_table *t = &a->t;
    char buf[32];
    const char *src = buf;
    size_t n;
    uint32_t sl = 0;
    const char *sp = a->kind == FEATSTATS_ID_STRING ? spelling_of(a, slot, &sl) : NULL;
    if (a->kind == FEATSTATS_ID_INT) {
        n = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)(int64_t)t->slots[slot].key);
    } else if (sp != NULL && utf8_valid((const unsigned char *)sp, sl) && !(sl == 17 && sp[0] == '#')) {
        src = sp;
        n = sl;
    } else {
        n = (size_t)snprintf(buf, sizeof buf, "#%016llx", (unsigned long long)t->slots[slot].key);
    }
    char *p = malloc(n + 1);
    if (p == NULL) return NULL;
    memcpy(p, src, n);
    p[n] = '\0';
    *len = n;
    return p;
}

void featstats_ids_get(const featstats *fs, int64_t i, featstats_ids *out)
{
    id_acc *a = &fs->ids[i]; /* the top-ids view is a cache: rebuilt here */
    memset(out, 0, sizeof *out);
    out->name = a->name;
    out->tracked = fs->mode == FEATSTATS_PROFILE || a->ref_t != NULL;
    out->kind = a->kind;
    out->count = a->count;
    out->unseen = a->unseen;
    if (fs->mode != FEATSTATS_PROFILE) return;
    out->distinct = fs->loaded ? a->distinct_loaded : (int64_t)a->t.used;
    out->vocab_complete = fs->loaded ? a->complete_loaded
                                     : a->overflow == 0 && a->t.used <= FEATSTATS_VOCAB_MAX;
    if (!fs->loaded || a->top == NULL) {
        ids_view_free(a);
        size_t n = 0;
        id_ref *v = a->t.cap ? ids_sorted(&a->t, &n) : NULL;
        size_t ntop = n < FEATSTATS_TOP_IDS ? n : FEATSTATS_TOP_IDS;
        a->top = calloc(ntop + 1, sizeof *a->top);
        for (size_t k = 0; a->top && k < ntop; k++) {
            size_t len;
            a->top[k] = id_spelling(a, v[k].slot, &len);
            a->top_counts[k] = v[k].count;
            if (a->top[k] == NULL) break;
            a->ntop = (int64_t)k + 1;
        }
        free(v);
    }
    out->ntop = a->ntop;
    out->top = (const char *const *)a->top;
    out->top_counts = a->top_counts;
}

pc_status featstats_id_entries(const featstats *fs, int64_t col, uint64_t **keys, int64_t **counts, int64_t *n,
                               char *err, size_t errlen)
{
    *keys = NULL;
    *counts = NULL;
    *n = 0;
    if (fs->mode != FEATSTATS_PROFILE) return PC_OK;
    const id_table *t = &fs->ids[col].t;
    size_t m = 0;
    id_ref *v = t->cap ? ids_sorted(t, &m) : NULL;
    uint64_t *k = malloc((m + 1) * sizeof *k);
    int64_t *c = malloc((m + 1) * sizeof *c);
    if ((t->cap && v == NULL) || k == NULL || c == NULL) {
        free(v), free(k), free(c);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: out of memory");
    }
    for (size_t i = 0; i < m; i++) k[i] = v[i].key, c[i] = v[i].count;
    free(v);
    *keys = k;
    *counts = c;
    *n = (int64_t)m;
    return PC_OK;
}

bool featstats_vocab_has(const featstats *fs, int64_t col, uint64_t key)
{
    return fs->mode == FEATSTATS_PROFILE && table_has(&fs->ids[col].t, key);
}

/* ---- writing JSON ---- */

/* A finite double, or null. */
static void ob_double(json_buf *b, double x)
{
    if (isfinite(x)) json_buf_printf(b, "%.17g", x);
    else json_buf_puts(b, "null");
}

static void write_dense(json_buf *b, const featstats *fs, int64_t i)
{
    featstats_dense d;
    featstats_dense_get(fs, i, &d);
    json_buf_puts(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
    json_buf_string(b, d.name, strlen(d.name));
    json_buf_printf(b, ", \"count\": %lld, \"missing\": %lld, \"mean\": ", (long long)d.count, (long long)d.missing);
    ob_double(b, d.mean);
    json_buf_puts(b, ", \"std\": ");
    ob_double(b, d.std);
    json_buf_puts(b, ", \"min\": ");
    ob_double(b, d.min);
    json_buf_puts(b, ", \"max\": ");
    ob_double(b, d.max);
    json_buf_puts(b, ", \"lo\": ");
    ob_double(b, d.lo);
    json_buf_puts(b, ", \"hi\": ");
    ob_double(b, d.hi);
    json_buf_puts(b, ",\n   \"hist\": [");
    for (int k = 0; k < FEATSTATS_BINS; k++) json_buf_printf(b, k ? ", %lld" : "%lld", (long long)d.bins[k]);
    json_buf_printf(b, "], \"below\": %lld, \"above\": %lld}", (long long)d.below, (long long)d.above);
}

static bool write_ids(json_buf *b, const featstats *fs, int64_t i)
{
    id_acc *a = &fs->ids[i];
    featstats_ids v;
    featstats_ids_get(fs, i, &v);
    json_buf_puts(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
    json_buf_string(b, a->name, strlen(a->name));
    json_buf_printf(b, ", \"kind\": \"%s\", \"count\": %lld, \"distinct\": %lld, \"vocab_complete\": %s,\n   \"top\": [",
              a->kind == FEATSTATS_ID_INT ? "int" : "string", (long long)v.count, (long long)v.distinct,
              v.vocab_complete ? "true" : "false");
    for (int64_t k = 0; k < v.ntop; k++) {
        json_buf_puts(b, k ? ", [" : "[");
        json_buf_string(b, v.top[k], strlen(v.top[k]));
        json_buf_printf(b, ", %lld, %.6g]", (long long)v.top_counts[k],
                  v.count > 0 ? (double)v.top_counts[k] / (double)v.count : 0.0);
    }
    json_buf_puts(b, "],\n   \"vocab\": [");
    size_t n = 0;
    id_ref *ids = a->t.cap ? ids_sorted(&a->t, &n) : NULL;
    if (a->t.cap && ids == NULL) return false;
    if (n > FEATSTATS_VOCAB_MAX) n = FEATSTATS_VOCAB_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t len;
        char *s = id_spelling(a, ids[k].slot, &len);
        if (s == NULL) {
            free(ids);
            return false;
        }
        if (k) json_buf_puts(b, k % 10 ? ", " : ",\n    ");
        json_buf_string(b, s, len);
        free(s);
    }
    json_buf_puts(b, "],\n   \"counts\": [");
    for (size_t k = 0; k < n; k++) {
        if (k) json_buf_puts(b, k % 20 ? ", " : ",\n    ");
        json_buf_printf(b, "%lld", (long long)ids[k].count);
    }
    free(ids);
    json_buf_puts(b, "]}");
    return true;
}

static pc_status write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (tmp == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        pc_status s = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    bool ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0) {
        e = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(e));
    }
    free(tmp);
    return PC_OK;
}

pc_status featstats_write_json(const featstats *fs, const char *path, char *err, size_t errlen)
{
    if (fs->mode != FEATSTATS_PROFILE)
        return pc_err(err, errlen, PC_ERR_USAGE, "%s: only a profile is written, not a compare sketch", path);
    for (int64_t i = 0; i < fs->ndense; i++)
        if (!fs->dense[i].ranged)
            return pc_err(err, errlen, PC_ERR_USAGE, "%s: the histogram of '%s' is not complete (no second pass)", path,
                          fs->dense[i].name);
    json_buf b = {0};
    json_buf_printf(&b, "{\"format\": \"precast-featstats\", \"version\": %d, \"bins\": %d,\n \"dense\": [",
              FEATSTATS_FORMAT_VERSION, FEATSTATS_BINS);
    for (int64_t i = 0; i < fs->ndense; i++) write_dense(&b, fs, i);
    json_buf_puts(&b, "],\n \"ids\": [");
    bool ok = true;
    for (int64_t i = 0; ok && i < fs->nids; i++) ok = write_ids(&b, fs, i);
    json_buf_puts(&b, "]}\n");
    if (!ok || b.failed) {
        free(b.data);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    pc_status s = write_file(path, b.data, b.len, err, errlen);
    free(b.data);
    return s;
}

/* ---- reading JSON: a small strict parser into a tree ----
 *
 * Not storage/json's json_parse, on purpose: that one allocates every value, and every rank
 * reads this file before mapping. On make bench's embed statistics (10 MB, 8 id columns of
 * 100,000 ids) json_parse took 0.59-0.64 s against this parser's 0.27-0.38 s. */

typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval jval;
struct jval {
    jtype type;
    bool b;
    char *str;          /* STR: decoded bytes; NUM: source text */
    size_t len;
    jval *items;        /* ARR / OBJ values */
    char **keys;        /* OBJ keys */
    size_t n, cap;
};

/* The parser decodes strings in place (a decoded string is never longer than its source) and
 * points numbers into the text, so the tree holds no allocation per value: the text buffer
 * must be writable and outlive the tree. */
typedef struct jparser {
    const char *p, *start, *end;
    char *buf;                     /* = start, writable */
    int64_t line;                  /* of p; raw newlines occur only between tokens (a string */
    const char *line_start;        /* rejects them), so jskip counts them all */
    char msg[200];
    int depth;
} jparser;

static void jfree(jval *v)
{
    if (v == NULL) return;
    for (size_t i = 0; i < v->n; i++) jfree(&v->items[i]); /* strings and keys live in the text */
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static bool jfail(jparser *jp, const char *what)
{
    if (jp->msg[0] == '\0') /* not by rescanning: the strings before p are decoded in place */
        snprintf(jp->msg, sizeof jp->msg, "line %lld, column %lld: %s", (long long)jp->line,
                 (long long)(jp->p - jp->line_start) + 1, what);
    return false;
}

static void jskip(jparser *jp)
{
    for (; jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'); jp->p++)
        if (*jp->p == '\n') jp->line++, jp->line_start = jp->p + 1;
}

static bool jvalue(jparser *jp, jval *v);

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool jhex4(jparser *jp, uint32_t *out)
{
    if (jp->end - jp->p < 4) return jfail(jp, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(jp->p[i]);
        if (h < 0) return jfail(jp, "bad \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    jp->p += 4;
    *out = v;
    return true;
}

static bool jstring(jparser *jp, char **out, size_t *outlen)
{
    jp->p++; /* opening quote */
    const char *q = jp->p;
    while (q < jp->end && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= jp->end) return jfail(jp, "unterminated string");
    char *s = jp->buf + (jp->p - jp->start), *o = s; /* writes trail the reads */
    while (jp->p < jp->end && *jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p;
        if (c < 0x20) {
            return jfail(jp, "control character in a string");
        }
        if (c != '\\') {
            *o++ = (char)c;
            jp->p++;
            continue;
        }
        jp->p++;
        char e = jp->p < jp->end ? *jp->p++ : '\0';
        uint32_t cp;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!jhex4(jp, &cp)) break;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo2;
                if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u') {
                            return jfail(jp, "lone surrogate in a \\u escape");
                }
                jp->p += 2;
                if (!jhex4(jp, &lo2)) break;
                if (lo2 < 0xdc00 || lo2 > 0xdfff) {
                            return jfail(jp, "lone surrogate in a \\u escape");
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo2 - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return jfail(jp, "lone surrogate in a \\u escape");
            }
            /* \uXXXX takes 6 source bytes (12 for a pair) and at most 4 in UTF-8: fits */
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) *o++ = (char)(0xc0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3f));
            else if (cp < 0x10000)
                *o++ = (char)(0xe0 | (cp >> 12)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3f)), *o++ = (char)(0x80 | (cp & 0x3f));
            else
                *o++ = (char)(0xf0 | (cp >> 18)), *o++ = (char)(0x80 | ((cp >> 12) & 0x3f)),
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f)), *o++ = (char)(0x80 | (cp & 0x3f));
            break;
        default:
            return jfail(jp, "bad escape in a string");
        }
        if (jp->msg[0]) return false;
    }
    jp->p++; /* closing quote */
    *o = '\0';
    if (!utf8_valid((const unsigned char *)s, (size_t)(o - s))) return jfail(jp, "string is not valid UTF-8");
    *out = s;
    *outlen = (size_t)(o - s);
    return true;
}

#define JNUM_MAX 63

/* A number's text, NUL-terminated in buf. */
static const char *jnum_text(const jval *v, char buf[JNUM_MAX + 1])
{
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    return buf;
}

static bool jnumber(jparser *jp, jval *v)
{
    const char *q = jp->p;
    if (q < jp->end && *q == '-') q++;
    if (q >= jp->end || !(*q >= '0' && *q <= '9')) return jfail(jp, "bad number");
    if (*q == '0' && q + 1 < jp->end && q[1] >= '0' && q[1] <= '9') return jfail(jp, "leading zero in a number");
    while (q < jp->end && *q >= '0' && *q <= '9') q++;
    if (q < jp->end && *q == '.') {
        q++;
        if (q >= jp->end || !(*q >= '0' && *q <= '9')) return jfail(jp, "bad number");
        while (q < jp->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < jp->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < jp->end && (*q == '+' || *q == '-')) q++;
        if (q >= jp->end || !(*q >= '0' && *q <= '9')) return jfail(jp, "bad number");
        while (q < jp->end && *q >= '0' && *q <= '9') q++;
    }
    v->type = J_NUM;
    v->len = (size_t)(q - jp->p);
    if (v->len > JNUM_MAX) return jfail(jp, "number too long");
    v->str = jp->buf + (jp->p - jp->start); /* not NUL-terminated: see jnum_text */
    jp->p = q;
    return true;
}

static bool jpush(jparser *jp, jval *v, char *key)
{
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 8;
        jval *items = realloc(v->items, c * sizeof *items);
        if (items) v->items = items;
        char **keys = v->type == J_OBJ ? realloc(v->keys, c * sizeof *keys) : NULL;
        if (keys) v->keys = keys;
        if (items == NULL || (v->type == J_OBJ && keys == NULL)) return jfail(jp, "out of memory");
        v->cap = c;
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (v->type == J_OBJ) v->keys[v->n] = key;
    v->n++;
    return true;
}

static bool jcontainer(jparser *jp, jval *v, bool obj)
{
    if (++jp->depth > 16) return jfail(jp, "nested too deeply");
    v->type = obj ? J_OBJ : J_ARR;
    jp->p++;
    jskip(jp);
    if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
        jp->p++;
        jp->depth--;
        return true;
    }
    for (;;) {
        char *key = NULL;
        jskip(jp);
        if (obj) {
            size_t klen;
            if (jp->p >= jp->end || *jp->p != '"') return jfail(jp, "expected a key string");
            if (!jstring(jp, &key, &klen)) return false;
            for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->keys[i], key) == 0) return jfail(jp, "duplicate key");
            jskip(jp);
            if (jp->p >= jp->end || *jp->p != ':') return jfail(jp, "expected ':'");
            jp->p++;
        }
        if (!jpush(jp, v, key) || !jvalue(jp, &v->items[v->n - 1])) return false;
        jskip(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
            jp->p++;
            jp->depth--;
            return true;
        }
        return jfail(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool jvalue(jparser *jp, jval *v)
{
    jskip(jp);
    if (jp->p >= jp->end) return jfail(jp, "unexpected end of file");
    char c = *jp->p;
    if (c == '{' || c == '[') return jcontainer(jp, v, c == '{');
    if (c == '"') {
        v->type = J_STR;
        return jstring(jp, &v->str, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return jnumber(jp, v);
    static const struct { const char *word; jtype t; bool b; } lits[] = {
        {"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].word);
        if ((size_t)(jp->end - jp->p) >= n && memcmp(jp->p, lits[i].word, n) == 0) {
            v->type = lits[i].t;
            v->b = lits[i].b;
            jp->p += n;
            return true;
        }
    }
    return jfail(jp, "unexpected character");
}

/* ---- reading JSON: the stats file ---- */

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
    char where[160];     /* "dense[3] ('f3')" */
} reader;

static pc_status rfail(reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pc_status rfail(reader *rd, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pc_err(rd->err, rd->errlen, PC_ERR_CONFIG, "%s: %s%s%s", rd->path, rd->where, rd->where[0] ? ": " : "",
                  what);
}

static const jval *jget(const jval *obj, const char *key)
{
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

static pc_status rfield(reader *rd, const jval *obj, const char *key, jtype t, const jval **out)
{
    static const char *names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    const jval *v = jget(obj, key);
    if (v == NULL) return rfail(rd, "missing field \"%s\"", key);
    if (v->type != t) return rfail(rd, "\"%s\" must be %s, not %s", key, names[t], names[v->type]);
    *out = v;
    return PC_OK;
}

/* A non-negative integer count. */
static pc_status rcount(reader *rd, const jval *v, const char *what, int64_t *out)
{
    if (v->type != J_NUM) return rfail(rd, "%s must be a number", what);
    char buf[JNUM_MAX + 1], *end;
    const char *text = jnum_text(v, buf);
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || *end != '\0' || x < 0) return rfail(rd, "%s must be a non-negative integer, not %s", what, text);
    *out = x;
    return PC_OK;
}

static pc_status rint_field(reader *rd, const jval *obj, const char *key, int64_t *out)
{
    const jval *v;
    pc_status s = rfield(rd, obj, key, J_NUM, &v);
    return s == PC_OK ? rcount(rd, v, key, out) : s;
}

/* A finite double, or (nullable) null -> NaN. */
static pc_status rdouble_field(reader *rd, const jval *obj, const char *key, bool nullable, double *out)
{
    const jval *v = jget(obj, key);
    if (v == NULL) return rfail(rd, "missing field \"%s\"", key);
    if (v->type == J_NULL && nullable) {
        *out = NAN;
        return PC_OK;
    }
    if (v->type != J_NUM) return rfail(rd, "\"%s\" must be a number", key);
    char buf[JNUM_MAX + 1], *end;
    const char *text = jnum_text(v, buf);
    errno = 0;
    double x = strtod(text, &end);
    if (*end != '\0' || !isfinite(x)) return rfail(rd, "\"%s\" is out of range: %s", key, text);
    *out = x;
    return PC_OK;
}

static pc_status read_dense(reader *rd, const jval *o, dense_acc *d)
{
    const jval *v, *hist;
    pc_status s = o->type == J_OBJ ? PC_OK : rfail(rd, "must be an object");
    if (s == PC_OK) s = rfield(rd, o, "name", J_STR, &v);
    if (s == PC_OK && (v->len == 0 || strlen(v->str) != v->len)) s = rfail(rd, "\"name\" must be a non-empty string");
    if (s == PC_OK && (d->name = dup_str(v->str)) == NULL) s = rfail(rd, "out of memory");
    if (s == PC_OK) {
        char name[80];
        snprintf(name, sizeof name, "%s", d->name);
        size_t l = strlen(rd->where);
        snprintf(rd->where + l, sizeof rd->where - l, " ('%s')", name);
    }
    if (s == PC_OK) s = rint_field(rd, o, "count", &d->count);
    if (s == PC_OK) s = rint_field(rd, o, "missing", &d->missing);
    if (s == PC_OK && d->missing > d->count) s = rfail(rd, "\"missing\" exceeds \"count\"");
    double mn, mx, lo, hi;
    if (s == PC_OK) s = rdouble_field(rd, o, "mean", false, &d->mean_loaded);
    if (s == PC_OK) s = rdouble_field(rd, o, "std", false, &d->std_loaded);
    if (s == PC_OK && d->std_loaded < 0) s = rfail(rd, "\"std\" is negative");
    if (s == PC_OK) s = rdouble_field(rd, o, "min", true, &mn);
    if (s == PC_OK) s = rdouble_field(rd, o, "max", true, &mx);
    if (s == PC_OK) s = rdouble_field(rd, o, "lo", false, &lo);
    if (s == PC_OK) s = rdouble_field(rd, o, "hi", false, &hi);
    if (s == PC_OK && lo > hi) s = rfail(rd, "\"lo\" %.17g is above \"hi\" %.17g", lo, hi);
    if (s == PC_OK && (isnan(mn) != isnan(mx) || mn > mx)) s = rfail(rd, "\"min\" and \"max\" disagree");
    if (s == PC_OK) s = rfield(rd, o, "hist", J_ARR, &hist);
    if (s == PC_OK && hist->n != FEATSTATS_BINS)
        s = rfail(rd, "\"hist\" has %zu entries, expected %d", hist->n, FEATSTATS_BINS);
    int64_t total = 0;
    for (int k = 0; s == PC_OK && k < FEATSTATS_BINS; k++) {
        s = rcount(rd, &hist->items[k], "a \"hist\" entry", &d->bins[k]);
        total += d->bins[k];
    }
    if (s == PC_OK) s = rint_field(rd, o, "below", &d->below);
    if (s == PC_OK) s = rint_field(rd, o, "above", &d->above);
    if (s == PC_OK && total + d->below + d->above != d->count - d->missing)
        s = rfail(rd, "\"hist\", \"below\" and \"above\" add up to %lld, but count - missing is %lld",
                  (long long)(total + d->below + d->above), (long long)(d->count - d->missing));
    if (s != PC_OK) return s;
    d->min = isnan(mn) ? INFINITY : mn;
    d->max = isnan(mx) ? -INFINITY : mx;
    d->loaded = true;
    set_range(d, lo, hi);
    return PC_OK;
}

/* The key of a spelled id of column a (see id_spelling). */
static pc_status id_key_of(reader *rd, const id_acc *a, const jval *v, uint64_t *key)
{
    if (v->type != J_STR) return rfail(rd, "ids must be strings");
    if (a->kind == FEATSTATS_ID_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v->str, &end, 10);
        if (errno || end == v->str || *end != '\0') return rfail(rd, "\"%s\" is not an integer id", v->str);
        *key = (uint64_t)(int64_t)x;
        return PC_OK;
    }
    if (v->len == 17 && v->str[0] == '#') {
        uint64_t k = 0;
        for (int i = 1; i < 17; i++) {
            int h = hexval(v->str[i]);
            if (h < 0) return rfail(rd, "\"%s\" is not a #<16 hex digits> id key", v->str);
            k = k * 16 + (uint64_t)h;
        }
        *key = k;
        return PC_OK;
    }
    *key = featstats_id_key(v->str, v->len);
    return PC_OK;
}

static pc_status read_ids(reader *rd, const jval *o, id_acc *a)
{
    const jval *v, *top, *vocab, *counts;
    pc_status s = o->type == J_OBJ ? PC_OK : rfail(rd, "must be an object");
    if (s == PC_OK) s = rfield(rd, o, "name", J_STR, &v);
    if (s == PC_OK && (v->len == 0 || strlen(v->str) != v->len)) s = rfail(rd, "\"name\" must be a non-empty string");
    if (s == PC_OK && (a->name = dup_str(v->str)) == NULL) s = rfail(rd, "out of memory");
    if (s == PC_OK) {
        size_t l = strlen(rd->where);
        snprintf(rd->where + l, sizeof rd->where - l, " ('%.60s')", a->name);
    }
    if (s == PC_OK) s = rfield(rd, o, "kind", J_STR, &v);
    if (s == PC_OK) {
        if (strcmp(v->str, "int") == 0) a->kind = FEATSTATS_ID_INT;
        else if (strcmp(v->str, "string") == 0) a->kind = FEATSTATS_ID_STRING;
        else s = rfail(rd, "\"kind\" must be \"int\" or \"string\", not \"%s\"", v->str);
    }
    if (s == PC_OK) s = rint_field(rd, o, "count", &a->count);
    if (s == PC_OK) s = rint_field(rd, o, "distinct", &a->distinct_loaded);
    if (s == PC_OK) s = rfield(rd, o, "vocab_complete", J_BOOL, &v);
    if (s == PC_OK) a->complete_loaded = v->b;
    if (s == PC_OK) s = rfield(rd, o, "top", J_ARR, &top);
    if (s == PC_OK && top->n > FEATSTATS_TOP_IDS) s = rfail(rd, "\"top\" lists more than %d ids", FEATSTATS_TOP_IDS);
    if (s == PC_OK) s = rfield(rd, o, "vocab", J_ARR, &vocab);
    if (s == PC_OK) s = rfield(rd, o, "counts", J_ARR, &counts);
    if (s == PC_OK && counts->n != vocab->n)
        s = rfail(rd, "\"counts\" has %zu entries, \"vocab\" %zu", counts->n, vocab->n);
    if (s == PC_OK && vocab->n > FEATSTATS_VOCAB_MAX)
        s = rfail(rd, "\"vocab\" lists more than %d ids", FEATSTATS_VOCAB_MAX);
    if (s == PC_OK && (int64_t)vocab->n > a->distinct_loaded)
        s = rfail(rd, "\"vocab\" lists %zu ids, more than \"distinct\" %lld", vocab->n, (long long)a->distinct_loaded);
    if (s == PC_OK && a->complete_loaded && (int64_t)vocab->n != a->distinct_loaded)
        s = rfail(rd, "\"vocab_complete\" is true but \"vocab\" lists %zu of %lld ids", vocab->n,
                  (long long)a->distinct_loaded);
    int64_t total = 0, prev_count = INT64_MAX;
    size_t cap = 1024; /* sized once: no rehashing while 10^5 ids go in */
    while (s == PC_OK && cap * 3 < (vocab->n + 1) * 4) cap *= 2;
    if (s == PC_OK && vocab->n > 0 && !table_resize(&a->t, cap)) s = rfail(rd, "out of memory");
    for (size_t k = 0; s == PC_OK && k < vocab->n; k++) {
        uint64_t key = 0;
        int64_t count = 0;
        s = id_key_of(rd, a, &vocab->items[k], &key);
        if (s == PC_OK) s = rcount(rd, &counts->items[k], "a \"counts\" entry", &count);
        if (s == PC_OK && count == 0) s = rfail(rd, "\"counts\" holds a 0");
        if (s == PC_OK && count > prev_count) s = rfail(rd, "\"counts\" is not in decreasing order");
        prev_count = count;
        total += count;
        /* an integer id's spelling is its decimal: only string ids keep theirs.  One probe per
         * id (the table is megabytes: every probe is a cache miss); a repeat shows as an add
         * that made no new entry. */
        bool spelled = a->kind == FEATSTATS_ID_STRING;
        size_t before = a->t.used;
        if (s == PC_OK && table_add(&a->t, key, count, spelled ? vocab->items[k].str : NULL,
                                    spelled ? vocab->items[k].len : 0, SIZE_MAX) < 0)
            s = rfail(rd, "out of memory");
        if (s == PC_OK && a->t.used == before) s = rfail(rd, "\"vocab\" lists \"%s\" twice", vocab->items[k].str);
    }
    if (s == PC_OK && total > a->count) s = rfail(rd, "\"counts\" add up to more than \"count\"");
    if (s == PC_OK && (a->top = calloc(top->n + 1, sizeof *a->top)) == NULL) s = rfail(rd, "out of memory");
    for (size_t k = 0; s == PC_OK && k < top->n; k++) {
        const jval *e = &top->items[k];
        if (e->type != J_ARR || e->n != 3 || e->items[0].type != J_STR || e->items[2].type != J_NUM)
            s = rfail(rd, "\"top\" entries must be [\"id\", count, share]");
        if (s == PC_OK) s = rcount(rd, &e->items[1], "a \"top\" count", &a->top_counts[k]);
        if (s == PC_OK && (a->top[k] = dup_str(e->items[0].str)) == NULL) s = rfail(rd, "out of memory");
        if (s == PC_OK) a->ntop = (int64_t)k + 1;
    }
    return s;
}

static pc_status read_stats(reader *rd, const jval *root, featstats *fs)
{
    const jval *v, *dense, *ids;
    int64_t version, bins;
    if (root->type != J_OBJ) return rfail(rd, "not a JSON object");
    pc_status s = rfield(rd, root, "format", J_STR, &v);
    if (s == PC_OK && strcmp(v->str, "precast-featstats") != 0)
        s = rfail(rd, "\"format\" is \"%s\", not \"precast-featstats\"", v->str);
    if (s == PC_OK) s = rint_field(rd, root, "version", &version);
    if (s == PC_OK && version != FEATSTATS_FORMAT_VERSION)
        s = rfail(rd, "version %lld; this precast reads version %d", (long long)version, FEATSTATS_FORMAT_VERSION);
    if (s == PC_OK) s = rint_field(rd, root, "bins", &bins);
    if (s == PC_OK && bins != FEATSTATS_BINS) s = rfail(rd, "\"bins\" is %lld, expected %d", (long long)bins, FEATSTATS_BINS);
    if (s == PC_OK) s = rfield(rd, root, "dense", J_ARR, &dense);
    if (s == PC_OK) s = rfield(rd, root, "ids", J_ARR, &ids);
    if (s == PC_OK) s = alloc_columns(fs, (int64_t)dense->n, (int64_t)ids->n, rd->err, rd->errlen);
    for (size_t i = 0; s == PC_OK && i < dense->n; i++) {
        snprintf(rd->where, sizeof rd->where, "dense[%zu]", i);
        s = read_dense(rd, &dense->items[i], &fs->dense[i]);
        for (size_t j = 0; s == PC_OK && j < i; j++)
            if (strcmp(fs->dense[j].name, fs->dense[i].name) == 0) s = rfail(rd, "the name is used twice");
    }
    for (size_t i = 0; s == PC_OK && i < ids->n; i++) {
        snprintf(rd->where, sizeof rd->where, "ids[%zu]", i);
        s = read_ids(rd, &ids->items[i], &fs->ids[i]);
        for (size_t j = 0; s == PC_OK && j < i; j++)
            if (strcmp(fs->ids[j].name, fs->ids[i].name) == 0) s = rfail(rd, "the name is used twice");
    }
    return s;
}

pc_status featstats_read_json(const char *path, featstats **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    json_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) json_buf_append(&b, chunk, got);
    bool rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(b.data);
        return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: read error", path);
    }
    if (b.failed) {
        free(b.data);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", path);
    }
    jparser jp = {.p = b.data, .start = b.data, .end = b.data + b.len, .buf = b.data, .line = 1, .line_start = b.data};
    jval root = {0};
    bool ok = b.len > 0 ? jvalue(&jp, &root) : jfail(&jp, "empty file");
    if (ok) {
        jskip(&jp);
        if (jp.p != jp.end) ok = jfail(&jp, "trailing characters after the JSON value");
    }
    pc_status s = PC_OK;
    if (!ok) s = pc_err(err, errlen, PC_ERR_CONFIG, "%s: %s", path, jp.msg);
    featstats *fs = NULL;
    if (s == PC_OK && (fs = calloc(1, sizeof *fs)) == NULL) s = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    if (s == PC_OK) {
        fs->mode = FEATSTATS_PROFILE;
        fs->loaded = fs->pass2 = fs->added = true;
        reader rd = {.path = path, .err = err, .errlen = errlen};
        s = read_stats(&rd, &root, fs);
    }
    jfree(&root);
    free(b.data);
    if (s != PC_OK) {
        featstats_free(fs);
        return s;
    }
    *out = fs;
    return PC_OK;
}
