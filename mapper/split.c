#include "mapper/split.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapper/source.h"

typedef struct split_file {
    char *path;
    int64_t size;
    bool compressed; /* one segment, never cut, not counted */
    dev_t dev;
    ino_t ino;
    size_t order; /* position in path order, used while removing same-inode duplicates */
} split_file;

struct split_plan {
    split_file *files;
    int nfiles;
    int64_t total;
    int nparts;
    int64_t split_bytes; /* 0 = no limit */
    split_segment *segs;
    int64_t nsegs, segs_cap;
    int64_t *part_first; /* nparts + 1 entries */
};

/* Bytes read per pread by split_count. */
enum { SPLIT_COUNT_CHUNK = 1 << 20 };

void split_plan_free(split_plan *p)
{
    if (p == NULL) return;
    for (int i = 0; i < p->nfiles; i++) free(p->files[i].path);
    free(p->files);
    free(p->segs);
    free(p->part_first);
    free(p);
}

int split_plan_file_count(const split_plan *p) { return p->nfiles; }
const char *split_plan_file_path(const split_plan *p, int i) { return p->files[i].path; }
int64_t split_plan_file_size(const split_plan *p, int i) { return p->files[i].size; }
bool split_plan_file_compressed(const split_plan *p, int i) { return p->files[i].compressed; }
int64_t split_plan_split_bytes(const split_plan *p) { return p->split_bytes; }
int64_t split_plan_total_size(const split_plan *p) { return p->total; }
int split_plan_part_count(const split_plan *p) { return p->nparts; }
int64_t split_plan_segment_count(const split_plan *p) { return p->nsegs; }
split_segment *split_plan_segments(split_plan *p) { return p->segs; }
int64_t split_plan_part_first(const split_plan *p, int part) { return p->part_first[part]; }

/* Returns base_dir/pattern with glob metacharacters of base_dir escaped, or NULL (ENOMEM).
 * An absolute pattern, or base_dir == NULL, gives a plain copy of the pattern. */
static char *join_pattern(const char *base_dir, const char *pattern)
{
    if (base_dir == NULL || base_dir[0] == '\0' || pattern[0] == '/') return strdup(pattern);
    size_t bl = strlen(base_dir), pl = strlen(pattern);
    char *s = malloc(2 * bl + pl + 2);
    if (s == NULL) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < bl; i++) {
        if (strchr("*?[]\\", base_dir[i]) != NULL) s[n++] = '\\';
        s[n++] = base_dir[i];
    }
    if (base_dir[bl - 1] != '/') s[n++] = '/';
    memcpy(s + n, pattern, pl + 1);
    return s;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const split_file *)a)->path, ((const split_file *)b)->path);
}

static int cmp_inode(const void *a, const void *b)
{
    const split_file *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_order(const void *a, const void *b)
{
    const split_file *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends the regular files matching one pattern to p->files (cap in *cap). */
static pc_status expand_pattern(split_plan *p, size_t *cap, const char *base_dir,
                                const char *pattern, char *err, size_t errlen)
{
    char *full = join_pattern(base_dir, pattern);
    if (full == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (glob pattern)");
    glob_t g;
    int rc = glob(full, 0, NULL, &g);
    free(full);
    if (rc == GLOB_NOSPACE) {
        globfree(&g);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory expanding '%s'", pattern);
    }
    pc_status st = PC_OK;
    int found = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc && st == PC_OK; i++) {
        struct stat sb;
        if (stat(g.gl_pathv[i], &sb) != 0) {
            st = pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", g.gl_pathv[i], strerror(errno));
            break;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        if ((size_t)p->nfiles == *cap) {
            size_t ncap = *cap ? 2 * *cap : 16;
            split_file *nf = realloc(p->files, ncap * sizeof *nf);
            if (nf == NULL) {
                st = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (file list)");
                break;
            }
            p->files = nf;
            *cap = ncap;
        }
        split_file *f = &p->files[p->nfiles];
        f->path = strdup(g.gl_pathv[i]);
        if (f->path == NULL) {
            st = pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (file list)");
            break;
        }
        f->size = (int64_t)sb.st_size;
        f->compressed = source_codec_of(f->path) != SOURCE_CODEC_PLAIN;
        f->dev = sb.st_dev;
        f->ino = sb.st_ino;
        p->nfiles++;
        found++;
    }
    globfree(&g);
    if (st == PC_OK && found == 0)
        st = pc_err(err, errlen, PC_ERR_NOINPUT, "no input file matches '%s'", pattern);
    return st;
}

/* Sorts p->files by path and drops repeats (same path, or same file under another path). */
static void sort_dedup(split_plan *p)
{
    if (p->nfiles == 0) return;
    qsort(p->files, (size_t)p->nfiles, sizeof *p->files, cmp_path);
    for (int i = 0; i < p->nfiles; i++) p->files[i].order = (size_t)i;
    qsort(p->files, (size_t)p->nfiles, sizeof *p->files, cmp_inode);
    int n = 1;
    for (int i = 1; i < p->nfiles; i++) {
        split_file *prev = &p->files[n - 1];
        if (p->files[i].dev == prev->dev && p->files[i].ino == prev->ino) {
            free(p->files[i].path);
        } else {
            p->files[n++] = p->files[i];
        }
    }
    p->nfiles = n;
    qsort(p->files, (size_t)p->nfiles, sizeof *p->files, cmp_order);
}

/* Global offset of the boundary before part k (k in [0, nparts]). */
static int64_t cut_at(const split_plan *p, const int64_t *cuts, int k)
{
    if (k == 0) return 0;
    if (k == p->nparts) return p->total;
    if (cuts != NULL) return cuts[k - 1];
    int64_t n = p->nparts;
    return (p->total / n) * k + ((p->total % n) * k) / n;
}

/* Appends segment [start, end) of file f. */
static pc_status add_segment(split_plan *p, int f, int64_t start, int64_t end, char *err,
                             size_t errlen)
{
    if (p->nsegs == p->segs_cap) {
        int64_t ncap = p->segs_cap ? 2 * p->segs_cap : 64;
        split_segment *ns = (size_t)ncap <= SIZE_MAX / sizeof *ns
                                ? realloc(p->segs, (size_t)ncap * sizeof *ns)
                                : NULL;
        if (ns == NULL)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (%lld split segments)",
                          (long long)ncap);
        p->segs = ns;
        p->segs_cap = ncap;
    }
    split_segment *sg = &p->segs[p->nsegs++];
    memset(sg, 0, sizeof *sg);
    sg->file = f;
    sg->start = start;
    sg->end = end;
    return PC_OK;
}

static pc_status build_segments(split_plan *p, const int64_t *cuts, char *err, size_t errlen)
{
    p->part_first = malloc(((size_t)p->nparts + 1) * sizeof *p->part_first);
    if (p->part_first == NULL)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (split plan)");
    int f = 0;
    int64_t foff = 0; /* global offset of file f */
    const int64_t S = p->split_bytes;
    p->nsegs = 0;
    pc_status st = PC_OK;
    for (int k = 0; k < p->nparts && st == PC_OK; k++) {
        p->part_first[k] = p->nsegs;
        int64_t g0 = cut_at(p, cuts, k), g1 = cut_at(p, cuts, k + 1);
        if (g0 >= g1) continue;
        while (f < p->nfiles && foff + p->files[f].size <= g0) foff += p->files[f++].size;
        int64_t o = foff;
        for (int ff = f; ff < p->nfiles && o < g1 && st == PC_OK; o += p->files[ff++].size) {
            const split_file *fl = &p->files[ff];
            if (fl->compressed) {
                /* whole, in the part where it begins */
                if (o >= g0 && fl->size > 0) st = add_segment(p, ff, 0, fl->size, err, errlen);
                continue;
            }
            int64_t s = (g0 > o ? g0 : o) - o;
            int64_t e = (g1 < o + fl->size ? g1 : o + fl->size) - o;
            while (s < e && st == PC_OK) {
                int64_t b = S > 0 && s / S + 1 <= e / S ? (s / S + 1) * S : e;
                st = add_segment(p, ff, s, b, err, errlen);
                s = b;
            }
        }
    }
    p->part_first[p->nparts] = p->nsegs;
    return st;
}

pc_status split_plan_create_opts(const char *const *patterns, int npatterns,
                                 const char *base_dir, const split_options *opts,
                                 split_plan **out, char *err, size_t errlen)
{
    *out = NULL;
    const int nparts = opts->nparts;
    const int64_t *cuts = opts->cuts;
    if (nparts < 1) return pc_err(err, errlen, PC_ERR_USAGE, "split: %d parts", nparts);
    if (opts->split_bytes < 0)
        return pc_err(err, errlen, PC_ERR_USAGE, "split: split size %lld bytes",
                      (long long)opts->split_bytes);
    if (npatterns < 1) return pc_err(err, errlen, PC_ERR_NOINPUT, "no input files given");
    split_plan *p = calloc(1, sizeof *p);
    if (p == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (split plan)");
    p->nparts = nparts;
    p->split_bytes = opts->split_bytes;
    size_t cap = 0;
    pc_status st = PC_OK;
    for (int i = 0; i < npatterns && st == PC_OK; i++)
        st = expand_pattern(p, &cap, base_dir, patterns[i], err, errlen);
    if (st == PC_OK) {
        sort_dedup(p);
        for (int i = 0; i < p->nfiles; i++) p->total += p->files[i].size;
        for (int k = 0; cuts != NULL && k + 1 < nparts && st == PC_OK; k++) {
            if (cuts[k] < 0 || cuts[k] > p->total || (k > 0 && cuts[k] < cuts[k - 1]))
                st = pc_err(err, errlen, PC_ERR_USAGE,
                            "split: cut %d at %lld is out of order or outside [0, %lld]", k,
                            (long long)cuts[k], (long long)p->total);
        }
    }
    if (st == PC_OK && opts->segments_per_part > 0 && p->split_bytes > 0) {
        int64_t want = p->total / ((int64_t)nparts * opts->segments_per_part);
        if (want < SPLIT_MIN_BYTES) want = SPLIT_MIN_BYTES;
        if (want < p->split_bytes) p->split_bytes = want;
    }
    if (st == PC_OK) st = build_segments(p, cuts, err, errlen);
    if (st != PC_OK) {
        split_plan_free(p);
        return st;
    }
    *out = p;
    return PC_OK;
}

pc_status split_plan_create_at(const char *const *patterns, int npatterns,
                               const char *base_dir, int nparts, const int64_t *cuts,
                               split_plan **out, char *err, size_t errlen)
{
    split_options o = {.nparts = nparts, .split_bytes = 0, .cuts = cuts};
    return split_plan_create_opts(patterns, npatterns, base_dir, &o, out, err, errlen);
}

pc_status split_plan_create(const char *const *patterns, int npatterns, const char *base_dir,
                            int nparts, split_plan **out, char *err, size_t errlen)
{
    return split_plan_create_at(patterns, npatterns, base_dir, nparts, NULL, out, err, errlen);
}

/* 0x01 in each byte of the result where the byte of w equals the byte repeated in pat. */
static inline uint64_t eq_bytes(uint64_t w, uint64_t pat)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fu;
    uint64_t x = w ^ pat;                       /* zero bytes where equal */
    uint64_t t = ((x & low7) + low7) | x;       /* high bit set in every non-zero byte */
    return (~t >> 7) & 0x0101010101010101u;
}

/* Sum of the eight byte lanes of acc (each <= 255). */
static inline int64_t lane_sum(uint64_t acc)
{
    const uint64_t m = 0x00ff00ff00ff00ffu;
    uint64_t s16 = (acc & m) + ((acc >> 8) & m); /* four 16-bit lanes <= 510 */
    return (int64_t)((s16 * 0x0001000100010001u) >> 48);
}

/* Adds the counts of '"' and '\n' in buf[0, n) to *quotes and *newlines. Eight bytes at a
 * time in plain C (SWAR): about 3 GB/s at -O2 where a byte loop is not vectorised. */
static void count_bytes(const unsigned char *buf, size_t n, int64_t *quotes, int64_t *newlines)
{
    const uint64_t qq = 0x2222222222222222u, nn = 0x0a0a0a0a0a0a0a0au;
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t aq = 0, an = 0;
        /* at most 255 words per round so that no byte lane overflows */
        size_t words = (n - i) / 8 < 255 ? (n - i) / 8 : 255;
        for (size_t k = 0; k < words; k++, i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            aq += eq_bytes(w, qq);
            an += eq_bytes(w, nn);
        }
        *quotes += lane_sum(aq);
        *newlines += lane_sum(an);
    }
    for (; i < n; i++) {
        *quotes += buf[i] == '"';
        *newlines += buf[i] == '\n';
    }
}

pc_status split_count(const split_plan *p, split_segment *seg, char *err, size_t errlen)
{
    if (p->files[seg->file].compressed) {
        /* its one segment starts at byte 0: no record can start mid-quote or mid-line */
        seg->quotes = 0;
        seg->newlines = 0;
        return PC_OK;
    }
    const char *path = p->files[seg->file].path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pc_err(err, errlen, PC_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    int64_t want = seg->end - seg->start;
    size_t bufsize = want < SPLIT_COUNT_CHUNK ? (size_t)want : SPLIT_COUNT_CHUNK;
    unsigned char *buf = malloc(bufsize ? bufsize : 1);
    if (buf == NULL) {
        close(fd);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory (split_count buffer)");
    }
    (void)posix_fadvise(fd, seg->start, want, POSIX_FADV_SEQUENTIAL);
    int64_t quotes = 0, newlines = 0, off = seg->start;
    pc_status st = PC_OK;
    while (off < seg->end) {
        size_t n = seg->end - off < (int64_t)bufsize ? (size_t)(seg->end - off) : bufsize;
        ssize_t got = pread(fd, buf, n, off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            st = pc_err(err, errlen, PC_ERR_IO, "%s: %s", path, strerror(errno));
            break;
        }
        if (got == 0) {
            st = pc_err(err, errlen, PC_ERR_IO,
                        "%s: file is shorter (%lld bytes) than when the job started",
                        path, (long long)off);
            break;
        }
        count_bytes(buf, (size_t)got, &quotes, &newlines);
        off += got;
    }
    free(buf);
    close(fd);
    if (st == PC_OK) {
        seg->quotes = quotes;
        seg->newlines = newlines;
    }
    return st;
}

void split_resolve(split_plan *p)
{
    /* Segments are in global order and each file's segments tile it from byte 0, so running
     * sums restarted at each new file give the counts before every segment. */
    int32_t file = -1;
    int64_t quotes = 0, newlines = 0;
    for (int64_t i = 0; i < p->nsegs; i++) {
        split_segment *s = &p->segs[i];
        if (s->file != file) {
            file = s->file;
            quotes = 0;
            newlines = 0;
        }
        s->in_quotes_at_start = (int)(quotes & 1);
        s->line_at_start = 1 + newlines;
        quotes += s->quotes;
        newlines += s->newlines;
    }
}
