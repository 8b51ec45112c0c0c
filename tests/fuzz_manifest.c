/* libFuzzer harness over the manifest reader (storage/table.h manifest_read: the strict JSON
 * parser of storage/json.h, then the field-by-field reading and validation of
 * storage/manifest.c) and the writer behind it.  `make check-fuzz-manifest` runs it;
 * `make check` replays tests/corpus/manifest/ through it.
 *
 * The input is a MANIFEST.json's bytes, written to a scratch file (manifest_read takes a
 * path).  manifest_read must fail with PC_ERR_IO and a one-line message naming the file, and
 * no manifest; or succeed with a manifest that holds every documented invariant (checked
 * here from table.h's words, not by calling the reader's own check): format_version 1,
 * created/job/version set, version and shard dirs plain names, counts not negative, each
 * shard's key range set with rows or empty without, ranges ordered and disjoint.
 * A manifest that reads must write back (manifest_write) and read again to the same fields,
 * and writing that copy must give the same bytes: the format is reversible, keys and strings
 * that are not UTF-8 included. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/table.h"
#include "tests/fuzz_util.h"

static bool plain_name(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0 && strlen(s) <= 255;
}

/* LevelDB's bytewise order. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen;
}

static void check_manifest(const manifest *m)
{
    FUZZ_REQUIRE(m->format_version == 1);
    FUZZ_REQUIRE(m->created != NULL && m->job != NULL && plain_name(m->version));
    FUZZ_REQUIRE(m->ninputs >= 0 && m->input_paths != NULL && m->input_sizes != NULL &&
                 m->input_mtimes != NULL);
    for (int64_t i = 0; i < m->ninputs; i++)
        FUZZ_REQUIRE(m->input_paths[i] != NULL && m->input_sizes[i] >= 0);
    FUZZ_REQUIRE(m->rows_in >= 0 && m->rows_written >= 0 && m->rows_rejected >= 0 &&
                 m->rows_dropped >= 0);
    FUZZ_REQUIRE(m->ranks >= 0 && m->nshards >= 0 && m->shards != NULL);
    const shard_info *prev = NULL;
    for (int64_t i = 0; i < m->nshards; i++) {
        const shard_info *s = &m->shards[i];
        FUZZ_REQUIRE(plain_name(s->dir) && s->rows >= 0 && s->bytes >= 0);
        FUZZ_REQUIRE((s->first_key == NULL) == (s->last_key == NULL));
        if (s->first_key == NULL) {
            FUZZ_REQUIRE(s->rows == 0 && s->first_key_len == 0 && s->last_key_len == 0);
            continue;
        }
        FUZZ_REQUIRE(s->rows > 0);
        FUZZ_REQUIRE(s->first_key[s->first_key_len] == '\0');
        FUZZ_REQUIRE(s->last_key[s->last_key_len] == '\0');
        int c = key_cmp(s->first_key, s->first_key_len, s->last_key, s->last_key_len);
        FUZZ_REQUIRE(c <= 0 && (s->rows != 1 || c == 0)); /* one row: first == last */
        if (prev != NULL)
            FUZZ_REQUIRE(key_cmp(prev->last_key, prev->last_key_len, s->first_key,
                                 s->first_key_len) < 0);
        prev = s;
    }
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return (a == NULL) == (b == NULL) && alen == blen && (a == NULL || memcmp(a, b, alen) == 0);
}

static void check_same(const manifest *a, const manifest *b)
{
    FUZZ_REQUIRE(a->format_version == b->format_version);
    FUZZ_REQUIRE(same_str(a->created, b->created) && same_str(a->job, b->job));
    FUZZ_REQUIRE(same_str(a->version, b->version) && same_str(a->model_path, b->model_path));
    FUZZ_REQUIRE(same_str(a->model_sha256, b->model_sha256));
    FUZZ_REQUIRE(same_str(a->job_file, b->job_file) && same_str(a->job_text, b->job_text));
    FUZZ_REQUIRE(same_str(a->job_overrides, b->job_overrides));
    FUZZ_REQUIRE(same_str(a->value_format, b->value_format) && same_str(a->head, b->head));
    FUZZ_REQUIRE(same_str(a->labels_path, b->labels_path) && same_str(a->host, b->host));
    FUZZ_REQUIRE(same_str(a->precast_version, b->precast_version));
    FUZZ_REQUIRE(same_str(a->previous, b->previous));
    FUZZ_REQUIRE(a->rows_in == b->rows_in && a->rows_written == b->rows_written);
    FUZZ_REQUIRE(a->rows_rejected == b->rows_rejected && a->rows_dropped == b->rows_dropped);
    FUZZ_REQUIRE(a->checksum == b->checksum);
    FUZZ_REQUIRE(a->ranks == b->ranks);
    FUZZ_REQUIRE(a->ninputs == b->ninputs && a->nshards == b->nshards);
    for (int64_t i = 0; i < a->ninputs; i++) {
        FUZZ_REQUIRE(same_str(a->input_paths[i], b->input_paths[i]));
        FUZZ_REQUIRE(a->input_sizes[i] == b->input_sizes[i]);
        FUZZ_REQUIRE(a->input_mtimes[i] == b->input_mtimes[i]);
    }
    for (int64_t i = 0; i < a->nshards; i++) {
        const shard_info *s = &a->shards[i], *t = &b->shards[i];
        FUZZ_REQUIRE(same_str(s->dir, t->dir));
        FUZZ_REQUIRE(same_bytes(s->first_key, s->first_key_len, t->first_key, t->first_key_len));
        FUZZ_REQUIRE(same_bytes(s->last_key, s->last_key_len, t->last_key, t->last_key_len));
        FUZZ_REQUIRE(s->rows == t->rows && s->bytes == t->bytes && s->checksum == t->checksum);
    }
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    FUZZ_REQUIRE(f != NULL);
    fuzz_buf b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) fuzz_buf_add(&b, chunk, got);
    fclose(f);
    fuzz_buf_add(&b, "", 0);
    *n = b.len;
    return b.p;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_tmpdir("manifest");
    char in[PATH_MAX], out1[PATH_MAX], out2[PATH_MAX];
    fuzz_path(in, sizeof in, dir, "MANIFEST.json");
    fuzz_path(out1, sizeof out1, dir, "written.json");
    fuzz_path(out2, sizeof out2, dir, "rewritten.json");
    fuzz_write_file(in, data, size);

    manifest *m = (manifest *)&size;
    char err[PC_ERRLEN];
    err[0] = '\0';
    pc_status st = manifest_read(in, &m, err, sizeof err);
    FUZZ_REQUIRE((st == PC_OK) == (m != NULL));
    if (st != PC_OK) {
        FUZZ_REQUIRE(st == PC_ERR_IO);
        FUZZ_REQUIRE(strncmp(err, in, strlen(in)) == 0 && strncmp(err + strlen(in), ": ", 2) == 0);
        FUZZ_REQUIRE(strlen(err) > strlen(in) + 2);
        unlink(in);
        return 0;
    }
    check_manifest(m);

    st = manifest_write(out1, m, err, sizeof err);
    FUZZ_REQUIRE(st == PC_OK);
    manifest *again = NULL;
    st = manifest_read(out1, &again, err, sizeof err);
    FUZZ_REQUIRE(st == PC_OK && again != NULL);
    check_same(m, again);
    FUZZ_REQUIRE(manifest_write(out2, again, err, sizeof err) == PC_OK);
    size_t n1, n2;
    char *w1 = slurp(out1, &n1), *w2 = slurp(out2, &n2);
    FUZZ_REQUIRE(n1 == n2 && memcmp(w1, w2, n1) == 0);
    free(w1);
    free(w2);
    manifest_free(again);
    manifest_free(m);
    unlink(out1);
    unlink(out2);
    unlink(in);
    return 0;
}
