/*
 * fuzz_util.h — what the libFuzzer harnesses of tests/fuzz_*.c share: the entry point's name,
 * the invariant check, a scratch directory for inputs that the code under test reads by
 * path, a growable byte buffer, gzip compression, a resolved split plan, and the naive twin
 * of parse_float (mapper/numparse.h).
 *
 * One harness, two builds (tests/fuzz.mk):
 *   - the fuzz build (clang, -fsanitize=fuzzer): the entry point is LLVMFuzzerTestOneInput;
 *   - the replay build (tests/test_fuzz_replay.c, `make check`): each harness is compiled
 *     with -DFUZZ_ENTRY=fuzz_<name>_one so that all of them link into one test binary, which
 *     sets fuzz_replay_input to the seed file's path for the failure message.
 * A broken invariant prints "FILE:LINE: invariant broken: CONDITION" and traps, so that
 * libFuzzer keeps the input (fuzz build) and Check reports the signal (replay build).
 *
 * Everything here is static inline: each harness gets its own copy and its own scratch
 * directory, made on first use under $PRECAST_FUZZ_TMP, else /dev/shm (tmpfs: the inputs
 * never touch a disk), else $TMPDIR or /tmp, and removed at exit. The harnesses delete
 * their files after each input, so a crash leaves at most one input's files behind.
 */
#ifndef PRECAST_TESTS_FUZZ_UTIL_H
#define PRECAST_TESTS_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mapper/numparse.h"
#include "mapper/split.h"
#include "storage/json.h"

#ifdef FUZZ_ENTRY
/* The seed being replayed (tests/test_fuzz_replay.c), for messages. */
extern const char *fuzz_replay_input;
#define FUZZ_INPUT_NAME fuzz_replay_input
#else
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#define FUZZ_INPUT_NAME ((const char *)NULL)
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

__attribute__((noreturn)) static inline void fuzz_fail(const char *file, int line,
                                                        const char *cond)
{
    const char *input = FUZZ_INPUT_NAME;
    if (input != NULL)
        fprintf(stderr, "%s:%d: invariant broken: %s (input %s)\n", file, line, cond, input);
    else
        fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, cond);
    fflush(stderr);
    __builtin_trap();
}

/* An invariant of the code under test: crash so that the input is kept. */
#define FUZZ_REQUIRE(c)                                    \
    do {                                                   \
        if (!(c)) fuzz_fail(__FILE__, __LINE__, #c);       \
    } while (0)

/* ---- scratch directory ---- */

static inline bool fuzz_dir_ok(const char *d)
{
    struct stat st;
    return d != NULL && *d != '\0' && stat(d, &st) == 0 && S_ISDIR(st.st_mode) &&
           access(d, W_OK | X_OK) == 0;
}

/* Removes the files of dir (not recursively: the harnesses make none) and dir. */
static inline void fuzz_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        int k = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (k > 0 && (size_t)k < sizeof p) unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Each including file defines its own: atexit needs a plain function per directory. */
static char fuzz_scratch[PATH_MAX];

static inline void fuzz_scratch_remove(void)
{
    if (fuzz_scratch[0] != '\0') fuzz_dir_remove(fuzz_scratch);
}

/* The harness's scratch directory (made on first use); exits the process if none can be made
 * (a broken machine, not a finding). */
static inline const char *fuzz_tmpdir(const char *name)
{
    if (fuzz_scratch[0] != '\0') return fuzz_scratch;
    const char *bases[] = {getenv("PRECAST_FUZZ_TMP"), "/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!fuzz_dir_ok(bases[i])) continue;
        int k = snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/precast-%s-XXXXXX", bases[i],
                         name);
        if (k > 0 && (size_t)k < sizeof fuzz_scratch && mkdtemp(fuzz_scratch) != NULL) {
            atexit(fuzz_scratch_remove);
            return fuzz_scratch;
        }
    }
    fprintf(stderr, "fuzz_%s: cannot make a scratch directory: %s\n", name, strerror(errno));
    exit(1);
}

/* dir/name into out; exits if it does not fit (the scratch paths are short). */
static inline void fuzz_path(char *out, size_t cap, const char *dir, const char *name)
{
    int k = snprintf(out, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap) {
        fprintf(stderr, "fuzz: path too long: %s/%s\n", dir, name);
        exit(1);
    }
}

/* Writes data[0, n) to path (replacing it); exits on failure, as above. */
static inline void fuzz_write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *p = data;
    size_t done = 0;
    while (fd >= 0 && done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (fd < 0 || done < n || close(fd) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- a growable byte buffer ---- */

typedef struct fuzz_buf {
    char *p;
    size_t len, cap;
} fuzz_buf;

static inline void fuzz_buf_add(fuzz_buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            fputs("fuzz: out of memory in the harness\n", stderr);
            exit(1);
        }
        b->p = q;
        b->cap = cap;
    }
    if (n > 0) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void fuzz_buf_free(fuzz_buf *b)
{
    free(b->p);
    *b = (fuzz_buf){0};
}

/* ---- small helpers ---- */

/* FNV-1a: a deterministic choice of options from the input's bytes. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211u;
    return h;
}

/* data[0, n) compressed as gzip into *out (malloc'd): one member, or two cut at `cut` when
 * 0 < cut < n (gzip -d and source.h read concatenated members). False when zlib fails. */
static inline bool fuzz_gzip(const uint8_t *data, size_t n, size_t cut, int level,
                             unsigned char **out, size_t *outlen)
{
    size_t cap = 2 * (size_t)compressBound((uLong)n) + 64;
    unsigned char *o = malloc(cap);
    if (o == NULL) return false;
    size_t bounds[3] = {0, n, n};
    int members = 1;
    if (cut > 0 && cut < n) {
        bounds[1] = cut;
        members = 2;
    }
    size_t len = 0;
    for (int m = 0; m < members; m++) {
        z_stream z = {0};
        if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(o);
            return false;
        }
        z.next_in = (unsigned char *)(uintptr_t)(data + bounds[m]);
        z.avail_in = (uInt)(bounds[m + 1] - bounds[m]);
        z.next_out = o + len;
        z.avail_out = (uInt)(cap - len);
        int rc = deflate(&z, Z_FINISH);
        len = cap - z.avail_out;
        deflateEnd(&z);
        if (rc != Z_STREAM_END) {
            free(o);
            return false;
        }
    }
    *out = o;
    *outlen = len;
    return true;
}

/* ---- a split plan over one file ---- */

/* The plan of one file (path, no glob characters) cut with opts, with every segment counted
 * and resolved as the driver does (split.h steps 1-4). NULL if the plan cannot be made (an
 * empty file has no segment; that is checked by the caller). */
static inline split_plan *fuzz_plan(const char *path, const split_options *opts)
{
    char err[PC_ERRLEN];
    split_plan *p = NULL;
    const char *pat[1] = {path};
    pc_status st = split_plan_create_opts(pat, 1, NULL, opts, &p, err, sizeof err);
    FUZZ_REQUIRE((st == PC_OK) == (p != NULL));
    if (st != PC_OK) return NULL;
    split_segment *seg = split_plan_segments(p);
    for (int64_t i = 0; i < split_plan_segment_count(p); i++) {
        st = split_count(p, &seg[i], err, sizeof err);
        FUZZ_REQUIRE(st == PC_OK);
    }
    split_resolve(p);
    return p;
}

/* ---- the naive twin of parse_float ---- */

/* The grammar of numparse.h: [ \t]* [+-]? (D+ ('.' D*)? | '.' D+) ([eE] [+-]? D+)? [ \t]*.
 * On a match, copies the number without the blanks into out (cap bytes, NUL-terminated). */
static inline bool fuzz_number_text(const char *s, size_t len, char *out, size_t cap)
{
    size_t i = 0, n = len;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    size_t start = i, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    }
    if (digits == 0) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, ed++;
        if (ed == 0) return false;
    }
    if (i != n || n - start + 1 > cap) return false;
    memcpy(out, s + start, n - start);
    out[n - start] = '\0';
    return true;
}

/* What parse_float must answer for s[0, len): true and *out (strtof of the text, which is
 * correctly rounded in glibc), or false (not the grammar, or beyond float32's range). */
static inline bool fuzz_float_twin(const char *s, size_t len, float *out)
{
    char stack[256];
    char *text = len + 1 <= sizeof stack ? stack : malloc(len + 1);
    if (text == NULL) {
        fputs("fuzz: out of memory in the harness\n", stderr);
        exit(1);
    }
    bool ok = fuzz_number_text(s, len, text, len + 1);
    if (ok) {
        /* A number with a '.' would depend on the locale; the harness never sets one. */
        char *end;
        errno = 0;
        float f = strtof(text, &end);
        ok = *end == '\0' && isfinite(f);
        if (ok) *out = f;
    }
    if (text != stack) free(text);
    return ok;
}

/* ---- known findings ---- */

/* Known finding (tests/corpus/value/finding-json-quote-*): json_quote (mapper/head.h) copies
 * as "valid UTF-8" any lead byte >= 0xC2 followed by the right number of continuation bytes,
 * so overlong forms (E0 80 80), surrogates (ED A0 80), code points past U+10FFFF (F4 90 80 80)
 * and lead bytes F5..FF (taken as 3-byte sequences) reach its output unescaped: not UTF-8,
 * not JSON that a strict parser (storage/json.h, Python's) accepts.  True if s[0, n) holds
 * such a sequence.  Built with -DFUZZ_KNOWN_JSON_QUOTE (the fuzz build's default, see
 * tests/fuzz.mk), the harnesses keep such bytes away from json_quote so that fuzzing goes on
 * past the finding. */
static inline bool fuzz_json_quote_bug(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0xC2) continue;
        size_t k = s[i] >= 0xF0 && s[i] <= 0xF4 ? 4 : s[i] >= 0xE0 ? 3 : 2;
        if (k > n - i) continue;
        bool cont = true;
        for (size_t j = 1; j < k; j++) cont &= (s[i + j] & 0xC0) == 0x80;
        if (cont && !json_utf8_valid(str + i, k)) return true;
    }
    return false;
}

#ifdef FUZZ_KNOWN_JSON_QUOTE
#define FUZZ_SKIP_JSON_QUOTE_BUG(s, n) fuzz_json_quote_bug((s), (n))
#else
#define FUZZ_SKIP_JSON_QUOTE_BUG(s, n) false
#endif

/* parse_float on s[0, len) against the twin: same answer, same bits (so -0 stays -0), *out
 * unchanged and a message of the documented form on failure. Returns whether it parsed;
 * *value gets the number. */
static inline bool fuzz_check_float(const char *s, size_t len, float *value)
{
    float twin = 0.0f, got = 1234.5f;
    bool expect = fuzz_float_twin(s, len, &twin);
    char err[PC_ERRLEN];
    err[0] = '\0';
    pc_status st = parse_float(s, len, &got, err, sizeof err);
    FUZZ_REQUIRE(st == PC_OK || st == PC_ERR_DATA);
    FUZZ_REQUIRE((st == PC_OK) == expect);
    if (st == PC_OK) {
        FUZZ_REQUIRE(memcmp(&got, &twin, sizeof got) == 0);
        *value = got;
        return true;
    }
    FUZZ_REQUIRE(got == 1234.5f);
    FUZZ_REQUIRE(strncmp(err, "not a number: '", 15) == 0 ||
                 strncmp(err, "number out of float32 range: '", 30) == 0);
    return false;
}

#endif
