#include "jobs/checkpoint.h"

#include "kernels/model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = "PCCKPT1";
static const char END[8] = "PCCKEND";

struct checkpoint {
    char dir[PATH_MAX - 128]; /* room left for "/seg-<index>-<key>.rejects.tmp" */
    char key[17];             /* the first 16 hex digits of the run's hash */
    int64_t index;       /* segment being written, -1 when none */
    FILE *pairs, *rejects;
    int64_t npairs;
};

static void seg_path(const checkpoint *c, int64_t index, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%lld-%s.%s", c->dir, (long long)index, c->key, ext);
}

pc_status checkpoint_open(const char *dir, const char *key, checkpoint **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strlen(dir) >= PATH_MAX - 128) return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: path too long", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", dir, strerror(errno));
    checkpoint *c = calloc(1, sizeof *c);
    if (c == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    snprintf(c->key, sizeof c->key, "%.16s", key);
    c->index = -1;
    *out = c;
    return PC_OK;
}

/* Closes and removes the unfinished segment's .tmp files. */
static void abandon(checkpoint *c)
{
    char path[PATH_MAX];
    if (c->pairs) fclose(c->pairs);
    if (c->rejects) fclose(c->rejects);
    c->pairs = c->rejects = NULL;
    if (c->index >= 0) {
        seg_path(c, c->index, "pairs.tmp", path, sizeof path);
        unlink(path);
        seg_path(c, c->index, "rejects.tmp", path, sizeof path);
        unlink(path);
    }
    c->index = -1;
}

void checkpoint_close(checkpoint *c)
{
    if (c == NULL) return;
    abandon(c);
    free(c);
}

pc_status checkpoint_begin(checkpoint *c, int64_t index, char *err, size_t errlen)
{
    char path[PATH_MAX];
    abandon(c);
    c->index = index;
    c->npairs = 0;
    seg_path(c, index, "pairs.tmp", path, sizeof path);
    if ((c->pairs = fopen(path, "wb")) == NULL || fwrite(MAGIC, 1, 8, c->pairs) != 8)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    seg_path(c, index, "rejects.tmp", path, sizeof path);
    if ((c->rejects = fopen(path, "wb")) == NULL)
        return pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    return PC_OK;
}

pc_status checkpoint_pair(checkpoint *c, const char *key, size_t klen, const char *val, size_t vlen,
                          kv_origin origin, char *err, size_t errlen)
{
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    if (fwrite(&kl, 4, 1, c->pairs) != 1 || fwrite(&vl, 4, 1, c->pairs) != 1 ||
        fwrite(&origin.file, 4, 1, c->pairs) != 1 || fwrite(&origin.line, 8, 1, c->pairs) != 1 ||
        fwrite(key, 1, klen, c->pairs) != klen || fwrite(val, 1, vlen, c->pairs) != vlen)
        return pc_err(err, errlen, PC_ERR_IO, "%s: writing a checkpoint: %s", c->dir, strerror(errno));
    c->npairs++;
    return PC_OK;
}

pc_status checkpoint_reject(checkpoint *c, const char *line, size_t len, char *err, size_t errlen)
{
    if (fwrite(line, 1, len, c->rejects) != len)
        return pc_err(err, errlen, PC_ERR_IO, "%s: writing a checkpoint: %s", c->dir, strerror(errno));
    return PC_OK;
}

/* fflush + fsync + fclose; false on any failure. */
static bool seal(FILE *f)
{
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    return fclose(f) == 0 && ok;
}

pc_status checkpoint_commit(checkpoint *c, const map_stats *counts, char *err, size_t errlen)
{
    uint64_t footer[5] = {(uint64_t)counts->rows_in, (uint64_t)counts->rows_emitted,
                          (uint64_t)counts->rows_rejected, (uint64_t)counts->oov_ids, (uint64_t)c->npairs};
    bool ok = fwrite(footer, 8, 5, c->pairs) == 5 && fwrite(END, 1, 8, c->pairs) == 8;
    ok = seal(c->pairs) && ok;
    ok = seal(c->rejects) && ok;
    c->pairs = c->rejects = NULL;
    char from[PATH_MAX], to[PATH_MAX];
    seg_path(c, c->index, "rejects.tmp", from, sizeof from);
    seg_path(c, c->index, "rejects", to, sizeof to);
    ok = ok && rename(from, to) == 0;
    seg_path(c, c->index, "pairs.tmp", from, sizeof from);
    seg_path(c, c->index, "pairs", to, sizeof to);
    ok = ok && rename(from, to) == 0; /* the commit point */
    if (!ok) {
        abandon(c);
        return pc_err(err, errlen, PC_ERR_IO, "%s: sealing a checkpoint: %s", to, strerror(errno));
    }
    c->index = -1;
    return PC_OK;
}

/* Checks a .pairs file's frame and pair lengths; fills the footer counts. */
static bool valid_pairs(const char *b, size_t n, uint64_t footer[5])
{
    if (n < 8 + 40 + 8 || memcmp(b, MAGIC, 8) != 0 || memcmp(b + n - 8, END, 8) != 0) return false;
    memcpy(footer, b + n - 48, 40);
    size_t pos = 8, end = n - 48;
    uint64_t count = 0;
    while (pos < end) {
        uint32_t kl, vl;
        if (end - pos < 20) return false;
        memcpy(&kl, b + pos, 4);
        memcpy(&vl, b + pos + 4, 4);
        if ((uint64_t)kl + vl > end - pos - 20) return false;
        pos += 20 + (size_t)kl + vl;
        count++;
    }
    return count == footer[4];
}

pc_status checkpoint_load(checkpoint *c, int64_t index, checkpoint_pair_fn on_pair, checkpoint_reject_fn on_reject,
                          void *ctx, map_stats *counts, bool *found, char *err, size_t errlen)
{
    *found = false;
    char path[PATH_MAX];
    size_t n = 0, rn = 0;
    uint64_t footer[5];
    seg_path(c, index, "pairs", path, sizeof path);
    char *b = NULL, *r = NULL;
    model_file_read(path, &b, &n, NULL, 0); /* a missing file: b stays NULL */
    if (b == NULL || !valid_pairs(b, n, footer)) {
        free(b);
        return PC_OK;
    }
    seg_path(c, index, "rejects", path, sizeof path);
    model_file_read(path, &r, &rn, NULL, 0);
    if (r == NULL) {
        free(b);
        return PC_OK;
    }
    pc_status s = PC_OK;
    for (size_t pos = 8, end = n - 48; s == PC_OK && pos < end;) {
        uint32_t kl, vl;
        kv_origin o;
        memcpy(&kl, b + pos, 4);
        memcpy(&vl, b + pos + 4, 4);
        memcpy(&o.file, b + pos + 8, 4);
        memcpy(&o.line, b + pos + 12, 8);
        s = on_pair(ctx, b + pos + 20, kl, b + pos + 20 + kl, vl, o, err, errlen);
        pos += 20 + (size_t)kl + vl;
    }
    if (s == PC_OK && rn > 0) s = on_reject(ctx, r, rn, err, errlen);
    free(b);
    free(r);
    if (s != PC_OK) return s;
    *counts = (map_stats){.rows_in = (int64_t)footer[0], .rows_emitted = (int64_t)footer[1],
                          .rows_rejected = (int64_t)footer[2], .oov_ids = (int64_t)footer[3]};
    *found = true;
    return PC_OK;
}

void checkpoint_clear(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    char path[PATH_MAX + 300];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
