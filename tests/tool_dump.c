/* tool_dump TABLE — test helper: prints every (key, value) of the current version in shard
 * order as `KEY<TAB>VALUE` lines (both JSON-quoted), and fails (exit 1) if keys are not
 * strictly increasing within and across shards, fall outside their shard's manifest range, or
 * differ in number from the manifest. Reads LevelDB directly so that it checks the table
 * independently of storage/'s reader. */
#include <leveldb/c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/head.h"
#include "reducer/kv.h"
#include "storage/table.h"

static void print_quoted(const char *s, size_t len)
{
    size_t n = json_quote(NULL, 0, s, len) + 1;
    char *q = malloc(n);
    json_quote(q, n, s, len);
    fputs(q, stdout);
    free(q);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tool_dump TABLE\n");
        return 2;
    }
    char err[PC_ERRLEN], version[256], path[PATH_MAX];
    if (table_current(argv[1], version, sizeof version, err, sizeof err) != PC_OK) {
        fprintf(stderr, "tool_dump: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s/MANIFEST.json", argv[1], version);
    manifest *m = NULL;
    if (manifest_read(path, &m, err, sizeof err) != PC_OK) {
        fprintf(stderr, "tool_dump: %s\n", err);
        return 1;
    }
    char *prev = NULL;
    size_t prev_len = 0;
    int bad = 0;
    int64_t total = 0;
    for (int64_t i = 0; i < m->nshards && !bad; i++) {
        const shard_info *si = &m->shards[i];
        snprintf(path, sizeof path, "%s/%s/%s", argv[1], version, si->dir);
        leveldb_options_t *opt = leveldb_options_create();
        char *lerr = NULL;
        leveldb_t *db = leveldb_open(opt, path, &lerr);
        if (db == NULL) {
            fprintf(stderr, "tool_dump: %s: %s\n", path, lerr);
            return 1;
        }
        leveldb_readoptions_t *ro = leveldb_readoptions_create();
        leveldb_iterator_t *it = leveldb_create_iterator(db, ro);
        int64_t rows = 0;
        for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
            size_t kl, vl;
            const char *k = leveldb_iter_key(it, &kl), *v = leveldb_iter_value(it, &vl);
            if (prev && kv_key_compare(prev, prev_len, k, kl) >= 0) {
                fprintf(stderr, "tool_dump: %s: key out of order\n", si->dir);
                bad = 1;
            }
            if (rows == 0 && (kl != si->first_key_len || memcmp(k, si->first_key, kl) != 0)) {
                fprintf(stderr, "tool_dump: %s: first key differs from the manifest\n", si->dir);
                bad = 1;
            }
            free(prev);
            prev = malloc(kl + 1);
            memcpy(prev, k, kl);
            prev_len = kl;
            print_quoted(k, kl);
            putchar('\t');
            print_quoted(v, vl);
            putchar('\n');
            rows++;
        }
        if (rows != si->rows) {
            fprintf(stderr, "tool_dump: %s: %lld rows, manifest says %lld\n", si->dir, (long long)rows, (long long)si->rows);
            bad = 1;
        }
        if (rows > 0 && (prev_len != si->last_key_len || memcmp(prev, si->last_key, prev_len) != 0)) {
            fprintf(stderr, "tool_dump: %s: last key differs from the manifest\n", si->dir);
            bad = 1;
        }
        total += rows;
        leveldb_iter_destroy(it);
        leveldb_readoptions_destroy(ro);
        leveldb_close(db);
        leveldb_options_destroy(opt);
    }
    if (!bad && total != m->rows_written) {
        fprintf(stderr, "tool_dump: %lld rows, manifest rows_written %lld\n", (long long)total, (long long)m->rows_written);
        bad = 1;
    }
    free(prev);
    manifest_free(m);
    return bad;
}
