#include "reducer/kv.h"

#include <stdlib.h>
#include <string.h>

typedef struct kv_entry {
    uint64_t offset;  /* of the key in the arena; the value follows the key */
    uint64_t prefix;  /* first 8 key bytes, big-endian, zero-padded: most comparisons end
                         here (ids like "r0668784" share their first 4 bytes by the thousand) */
    uint32_t klen;
    uint32_t vlen;
    uint64_t origin;  /* file << ORIGIN_LINE_BITS | line, to keep the entry at 32 bytes */
} kv_entry;

#define ORIGIN_LINE_BITS 40
#define ORIGIN_MAX_LINE ((INT64_C(1) << ORIGIN_LINE_BITS) - 1)
#define ORIGIN_MAX_FILE ((INT32_C(1) << (64 - ORIGIN_LINE_BITS)) - 1)

struct kv_buffer {
    char *arena;
    size_t arena_len, arena_cap;
    kv_entry *entries;
    size_t count, cap;
};

/* Packed pair header: klen, vlen, file, line. */
#define PACKED_HEADER KV_PACKED_HEADER
_Static_assert(PACKED_HEADER == 4 + 4 + 4 + 8, "packed header is klen, vlen, file, line");
_Static_assert(sizeof(kv_entry) == KV_ENTRY_BYTES, "KV_ENTRY_BYTES is the entry's size");

kv_buffer *kv_create(void)
{
    return calloc(1, sizeof(kv_buffer));
}

void kv_free(kv_buffer *kv)
{
    if (kv == NULL) return;
    free(kv->arena);
    free(kv->entries);
    free(kv);
}

static uint64_t key_prefix(const unsigned char *key, size_t klen)
{
    uint64_t p = 0;
    for (size_t i = 0; i < 8; i++) p = (p << 8) | (i < klen ? key[i] : 0u);
    return p;
}

/* Grows *buf to hold at least `need` elements of `size` bytes, doubling. On failure *buf is
 * unchanged and false is returned. */
static bool grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 1024;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) return false;
        n *= 2;
    }
    void *p = realloc(*buf, n * size);
    if (p == NULL) return false;
    *buf = p;
    *cap = n;
    return true;
}

pc_status kv_append(kv_buffer *kv, const void *key, size_t klen, const void *val, size_t vlen,
                    kv_origin origin, char *err, size_t errlen)
{
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return pc_err(err, errlen, PC_ERR_DATA, "key or value longer than 4 GiB");
    if (origin.file < 0 || origin.file > ORIGIN_MAX_FILE || origin.line < 0 ||
        origin.line > ORIGIN_MAX_LINE)
        return pc_err(err, errlen, PC_ERR_DATA, "origin out of range: file %d, line %lld",
                      (int)origin.file, (long long)origin.line);
    if (!grow((void **)&kv->arena, &kv->arena_cap, kv->arena_len + klen + vlen, 1) ||
        !grow((void **)&kv->entries, &kv->cap, kv->count + 1, sizeof(kv_entry)))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory holding %zu pairs (%zu bytes)",
                      kv->count + 1, kv->arena_len + klen + vlen);
    kv_entry *e = &kv->entries[kv->count++];
    e->offset = kv->arena_len;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->origin = (uint64_t)origin.file << ORIGIN_LINE_BITS | (uint64_t)origin.line;
    e->prefix = key_prefix(key, klen);
    if (klen) memcpy(kv->arena + kv->arena_len, key, klen);
    if (vlen) memcpy(kv->arena + kv->arena_len + klen, val, vlen);
    kv->arena_len += klen + vlen;
    return PC_OK;
}

size_t kv_memory(const kv_buffer *kv) { return kv->arena_cap + kv->cap * sizeof(kv_entry); }
size_t kv_arena_capacity(const kv_buffer *kv) { return kv->arena_cap; }
size_t kv_entry_capacity(const kv_buffer *kv) { return kv->cap; }

void kv_clear(kv_buffer *kv)
{
    kv->count = 0;
    kv->arena_len = 0;
}

pc_status kv_reserve(kv_buffer *kv, size_t bytes, size_t count, char *err, size_t errlen)
{
    if (bytes < kv->arena_len) bytes = kv->arena_len;
    if (count < kv->count) count = kv->count;
    if (count > SIZE_MAX / sizeof(kv_entry))
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory reserving %zu pairs", count);
    if (bytes != kv->arena_cap) {
        /* realloc(p, 0) may free p and return NULL: keep a byte so NULL always means failure. */
        char *arena = realloc(kv->arena, bytes ? bytes : 1);
        if (arena == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory reserving %zu bytes of pairs", bytes);
        kv->arena = arena;
        kv->arena_cap = bytes;
    }
    if (count != kv->cap) {
        kv_entry *e = realloc(kv->entries, (count ? count : 1) * sizeof(kv_entry));
        if (e == NULL) /* the arena keeps its new capacity: still >= what is held */
            return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory reserving %zu pairs", count);
        kv->entries = e;
        kv->cap = count;
    }
    return PC_OK;
}

int64_t kv_count(const kv_buffer *kv) { return (int64_t)kv->count; }
int64_t kv_bytes(const kv_buffer *kv) { return (int64_t)kv->arena_len; }

const char *kv_key(const kv_buffer *kv, int64_t i, size_t *klen)
{
    const kv_entry *e = &kv->entries[i];
    *klen = e->klen;
    return kv->arena + e->offset;
}

const char *kv_value(const kv_buffer *kv, int64_t i, size_t *vlen)
{
    const kv_entry *e = &kv->entries[i];
    *vlen = e->vlen;
    return kv->arena + e->offset + e->klen;
}

void kv_prefetch(const kv_buffer *kv, int64_t i)
{
    if (i < 0 || (size_t)i >= kv->count) return;
    const kv_entry *e = &kv->entries[i];
    const char *p = kv->arena + e->offset;
    __builtin_prefetch(p);
    __builtin_prefetch(p + e->klen + e->vlen - 1); /* a pair may straddle two cache lines */
}

kv_origin kv_origin_of(const kv_buffer *kv, int64_t i)
{
    uint64_t o = kv->entries[i].origin;
    return (kv_origin){.file = (int32_t)(o >> ORIGIN_LINE_BITS), .line = (int64_t)(o & ORIGIN_MAX_LINE)};
}

int kv_key_compare(const void *a, size_t alen, const void *b, size_t blen)
{
    /* Ids are mostly 8 bytes or longer ("r0668784"): one big-endian word compare settles most
     * pairs without a call to memcmp, which the merge and the duplicate check make per pair. */
    if (alen >= 8 && blen >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
    }
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return (alen > blen) - (alen < blen);
}

static int entry_compare(const kv_entry *x, const kv_entry *y, const char *arena)
{
    if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
    return kv_key_compare(arena + x->offset, x->klen, arena + y->offset, y->klen);
}

/* Merge sort of entries (stable, O(n log n) worst case; qsort offers no context pointer in C11).
 * tmp has room for n entries. */
static void sort_entries(kv_entry *a, kv_entry *tmp, size_t n, const char *arena)
{
    if (n < 16) {
        for (size_t i = 1; i < n; i++) {
            kv_entry x = a[i];
            size_t j = i;
            while (j > 0 && entry_compare(&x, &a[j - 1], arena) < 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    size_t mid = n / 2;
    sort_entries(a, tmp, mid, arena);
    sort_entries(a + mid, tmp, n - mid, arena);
    if (entry_compare(&a[mid - 1], &a[mid], arena) <= 0) return; /* already in order */
    memcpy(tmp, a, mid * sizeof(kv_entry));
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) a[k++] = entry_compare(&a[j], &tmp[i], arena) < 0 ? a[j++] : tmp[i++];
    while (i < mid) a[k++] = tmp[i++];
}

pc_status kv_sort(kv_buffer *kv, char *err, size_t errlen)
{
    if (kv->count < 2) return PC_OK;
    kv_entry *tmp = malloc((kv->count / 2 + 1) * sizeof(kv_entry));
    if (tmp == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory sorting %zu pairs", kv->count);
    sort_entries(kv->entries, tmp, kv->count, kv->arena);
    free(tmp);
    return PC_OK;
}

bool kv_find_duplicate(const kv_buffer *kv, int64_t *index)
{
    for (size_t i = 1; i < kv->count; i++) {
        if (entry_compare(&kv->entries[i - 1], &kv->entries[i], kv->arena) == 0) {
            *index = (int64_t)(i - 1);
            return true;
        }
    }
    return false;
}

size_t kv_packed_size(const kv_buffer *kv, int64_t first, int64_t end)
{
    size_t n = 0;
    for (int64_t i = first; i < end; i++)
        n += PACKED_HEADER + kv->entries[i].klen + kv->entries[i].vlen;
    return n;
}

void kv_pack(const kv_buffer *kv, int64_t first, int64_t end, char *out)
{
    for (int64_t i = first; i < end; i++) {
        const kv_entry *e = &kv->entries[i];
        memcpy(out, &e->klen, 4);
        memcpy(out + 4, &e->vlen, 4);
        kv_origin o = kv_origin_of(kv, i);
        memcpy(out + 8, &o.file, 4);
        memcpy(out + 12, &o.line, 8);
        memcpy(out + PACKED_HEADER, kv->arena + e->offset, (size_t)e->klen + e->vlen);
        out += PACKED_HEADER + e->klen + e->vlen;
    }
}

pc_status kv_unpack_append(kv_buffer *kv, const char *packed, size_t len, char *err, size_t errlen)
{
    /* Validate the whole block first so that a bad one appends nothing. */
    for (size_t pos = 0; pos < len;) {
        uint32_t klen, vlen;
        if (len - pos < PACKED_HEADER) goto bad;
        memcpy(&klen, packed + pos, 4);
        memcpy(&vlen, packed + pos + 4, 4);
        if ((uint64_t)klen + vlen > len - pos - PACKED_HEADER) goto bad;
        pos += PACKED_HEADER + (size_t)klen + vlen;
    }
    size_t count0 = kv->count, arena0 = kv->arena_len;
    for (size_t pos = 0; pos < len;) {
        uint32_t klen, vlen;
        kv_origin o;
        memcpy(&klen, packed + pos, 4);
        memcpy(&vlen, packed + pos + 4, 4);
        memcpy(&o.file, packed + pos + 8, 4);
        memcpy(&o.line, packed + pos + 12, 8);
        const char *key = packed + pos + PACKED_HEADER;
        pc_status s = kv_append(kv, key, klen, key + klen, vlen, o, err, errlen);
        if (s != PC_OK) {
            kv->count = count0;
            kv->arena_len = arena0;
            return s;
        }
        pos += PACKED_HEADER + (size_t)klen + vlen;
    }
    return PC_OK;
bad:
    return pc_err(err, errlen, PC_ERR_INTERNAL, "packed pair block of %zu bytes is malformed", len);
}
