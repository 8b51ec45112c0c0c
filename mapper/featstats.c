#include "mapper/featstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Stub while the implementation lands (issue 10): the API compiles and links. */
struct featstats {
    featstats_mode mode;
};

static pc_status not_yet(char *err, size_t errlen)
{
    return pc_err(err, errlen, PC_ERR_INTERNAL, "featstats: not implemented yet");
}

pc_status featstats_create(const char *const *dense, int64_t ndense, const char *const *ids,
                           const featstats_id_kind *kinds, int64_t nids, featstats **out, char *err,
                           size_t errlen)
{
    (void)dense, (void)ndense, (void)ids, (void)kinds, (void)nids;
    *out = NULL;
    return not_yet(err, errlen);
}
pc_status featstats_set_range(featstats *fs, int64_t i, double lo, double hi, char *err, size_t errlen)
{
    (void)fs, (void)i, (void)lo, (void)hi;
    return not_yet(err, errlen);
}
pc_status featstats_create_compare(const featstats *reference, featstats **out, char *err, size_t errlen)
{
    (void)reference;
    *out = NULL;
    return not_yet(err, errlen);
}
void featstats_free(featstats *fs) { free(fs); }
void featstats_add_dense(featstats *fs, int64_t first, const float *x, int64_t rows, int64_t width)
{
    (void)fs, (void)first, (void)x, (void)rows, (void)width;
}
pc_status featstats_add_id_keys(featstats *fs, int64_t col, const uint64_t *keys, int64_t n, int64_t stride,
                                char *err, size_t errlen)
{
    (void)fs, (void)col, (void)keys, (void)n, (void)stride;
    return not_yet(err, errlen);
}
pc_status featstats_add_ids_i64(featstats *fs, int64_t col, const int64_t *ids, int64_t n, char *err,
                                size_t errlen)
{
    (void)fs, (void)col, (void)ids, (void)n;
    return not_yet(err, errlen);
}
pc_status featstats_add_ids_str(featstats *fs, int64_t col, const char *const *ids, const size_t *lens,
                                int64_t n, char *err, size_t errlen)
{
    (void)fs, (void)col, (void)ids, (void)lens, (void)n;
    return not_yet(err, errlen);
}
uint64_t featstats_id_key(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
pc_status featstats_profile_pass2(featstats *fs, MPI_Comm comm, char *err, size_t errlen)
{
    (void)fs, (void)comm;
    return not_yet(err, errlen);
}
pc_status featstats_merge(featstats *fs, MPI_Comm comm, char *err, size_t errlen)
{
    (void)fs, (void)comm;
    return not_yet(err, errlen);
}
featstats_mode featstats_mode_of(const featstats *fs) { return fs->mode; }
int64_t featstats_dense_count(const featstats *fs) { (void)fs; return 0; }
int64_t featstats_id_count(const featstats *fs) { (void)fs; return 0; }
int64_t featstats_dense_find(const featstats *fs, const char *name) { (void)fs, (void)name; return -1; }
int64_t featstats_id_find(const featstats *fs, const char *name) { (void)fs, (void)name; return -1; }
void featstats_dense_get(const featstats *fs, int64_t i, featstats_dense *out)
{
    (void)fs, (void)i;
    memset(out, 0, sizeof *out);
}
void featstats_ids_get(const featstats *fs, int64_t i, featstats_ids *out)
{
    (void)fs, (void)i;
    memset(out, 0, sizeof *out);
}
bool featstats_vocab_has(const featstats *fs, int64_t col, uint64_t key) { (void)fs, (void)col, (void)key; return false; }
pc_status featstats_write_json(const featstats *fs, const char *path, char *err, size_t errlen)
{
    (void)fs, (void)path;
    return not_yet(err, errlen);
}
pc_status featstats_read_json(const char *path, featstats **out, char *err, size_t errlen)
{
    (void)path;
    *out = NULL;
    return not_yet(err, errlen);
}
