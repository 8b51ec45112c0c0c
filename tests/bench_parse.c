/* bench_parse — how fast does precast turn a CSV file into float32 features, beside strtof
 * and strtod doing the same work?
 *
 *   build/bin/bench_parse FILE.csv [ID_COLUMN (id)]
 *
 * Every field of every record except the id column is parsed into a batch matrix of 1024
 * rows (as the job fills its model input), single thread, best of 3 runs each:
 *   precast  the job's path, as mapper/map.c takes it: csv_reader_open on the file (one
 *            segment, read through the page cache), csv_reader_set_float_columns with every
 *            column but the id, csv_reader_next, and the values copied into the batch (or,
 *            for a record the reader could not parse, parse_float on each field) — reading,
 *            record splitting and parsing all included;
 *   strtof   the file already in memory, each feature field converted by strtof in place
 *            (the separator ends the number), the id column skipped with memchr;
 *   strtod   the same with strtod and a cast to float (which double-rounds: it is there as
 *            the usual baseline, not as a reference).
 * MB/s is the file's size in 10^6 bytes over the CPU seconds of the thread (user + system,
 * so the read() calls count): the per-core figure, which other processes on the machine
 * disturb much less than the wall clock. The wall-clock figure follows in parentheses; on
 * an idle machine the two agree. The float bits of every batch are hashed outside the timed
 * part, and the last line checks that precast and strtof produced identical matrices (exit
 * status 1 if not). Output, one line per figure:
 *   parse: precast 612.3 MB/s (0.735 s CPU; wall 0.741 s, 607.1 MB/s; 64000000 values)
 *   parse: strtof 150.1 MB/s (...)
 *   parse: strtod 148.0 MB/s (...)
 *   check: precast == strtof bitwise on 64000000 values
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapper/csv.h"
#include "mapper/numparse.h"

enum { BATCH_ROWS = 1024, RUNS = 3 };

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What one run produced: values parsed, a hash of their bits in order, CPU and wall
 * seconds spent parsing (hashing excluded). */
typedef struct run_result {
    int64_t values;
    uint64_t hash;
    double seconds, wall;
} run_result;

/* The batch matrix and the bookkeeping shared by the three parsers. */
typedef struct batch {
    float *m;        /* BATCH_ROWS x width */
    int64_t width;   /* feature columns per row */
    int64_t rows;    /* rows filled */
    run_result res;
    double t_mark, w_mark; /* start of the current timed stretch: CPU, wall */
} batch;

/* Folds the filled rows into the hash (untimed, like the model's forward pass in a job). */
static void batch_flush(batch *b)
{
    b->res.seconds += clock_s(CLOCK_THREAD_CPUTIME_ID) - b->t_mark;
    b->res.wall += clock_s(CLOCK_MONOTONIC) - b->w_mark;
    int64_t n = b->rows * b->width;
    uint64_t h = b->res.hash;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &b->m[i], sizeof bits);
        h = (h ^ bits) * 0x100000001b3ULL;
    }
    b->res.hash = h;
    b->res.values += n;
    b->rows = 0;
    b->t_mark = clock_s(CLOCK_THREAD_CPUTIME_ID);
    b->w_mark = clock_s(CLOCK_MONOTONIC);
}

static void batch_start(batch *b)
{
    memset(&b->res, 0, sizeof b->res);
    b->res.hash = 0xcbf29ce484222325ULL;
    b->rows = 0;
    b->t_mark = clock_s(CLOCK_THREAD_CPUTIME_ID);
    b->w_mark = clock_s(CLOCK_MONOTONIC);
}

static void batch_end(batch *b)
{
    batch_flush(b);
}

/* (a) precast: the CSV reader and parse_float, as mapper/map.c uses them. */
static int run_precast(const char *path, int64_t size, int64_t id_col, batch *b)
{
    char err[PC_ERRLEN];
    split_segment seg = {.file = 0, .start = 0, .end = size, .line_at_start = 1};
    csv_reader *r = NULL;
    int64_t ncols = b->width + (id_col >= 0);
    bool *is_float = malloc((size_t)ncols * sizeof *is_float);
    if (is_float == NULL) return -1;
    for (int64_t c = 0; c < ncols; c++) is_float[c] = c != id_col;
    batch_start(b);
    pc_status st = csv_reader_open(path, &seg, &r, err, sizeof err);
    if (st == PC_OK) st = csv_reader_set_float_columns(r, is_float, ncols, err, sizeof err);
    while (st == PC_OK) {
        csv_record rec;
        bool eof;
        st = csv_reader_next(r, &rec, &eof, err, sizeof err);
        if (st != PC_OK || eof) break;
        if (rec.nfields != b->width + 1) {
            fprintf(stderr, "bench_parse: line %lld: %lld fields, the header has %lld\n",
                    (long long)rec.line, (long long)rec.nfields, (long long)b->width + 1);
            st = PC_ERR_DATA;
            break;
        }
        float *row = b->m + b->rows * b->width;
        for (int64_t c = 0, j = 0; rec.values != NULL && c < rec.nfields; c++)
            if (c != id_col) row[j++] = rec.values[c];
        for (int64_t c = 0, j = 0; rec.values == NULL && st == PC_OK && c < rec.nfields; c++) {
            if (c == id_col) continue;
            char why[160];
            st = parse_float(rec.fields[c], rec.lens[c], &row[j++], why, sizeof why);
            if (st != PC_OK)
                snprintf(err, sizeof err, "line %lld, column %lld: %s", (long long)rec.line,
                         (long long)c + 1, why);
        }
        if (++b->rows == BATCH_ROWS) batch_flush(b);
    }
    csv_reader_close(r);
    batch_end(b);
    free(is_float);
    if (st != PC_OK) {
        fprintf(stderr, "bench_parse: %s\n", err);
        return -1;
    }
    return 0;
}

/* (b), (c): strtof or strtod in place over the file in memory (NUL-terminated, header
 * skipped). Fields end at ',' or at the end of the line. */
static int run_libc(const char *data, size_t len, int64_t id_col, bool use_double, batch *b)
{
    const char *p = data, *end = data + len;
    batch_start(b);
    while (p < end) {
        float *row = b->m + b->rows * b->width;
        int64_t ncols = b->width + 1;
        for (int64_t c = 0, j = 0; c < ncols; c++) {
            const char *stop;
            if (c == id_col) {
                stop = memchr(p, ',', (size_t)(end - p));
                if (stop == NULL) stop = end;
            } else {
                char *e;
                row[j++] = use_double ? (float)strtod(p, &e) : strtof(p, &e);
                stop = e;
            }
            char want = c + 1 < ncols ? ',' : '\n';
            if (stop == p || (*stop != want && !(want == '\n' && (*stop == '\r' || stop == end)))) {
                fprintf(stderr, "bench_parse: %s: bad field at byte %lld\n",
                        use_double ? "strtod" : "strtof", (long long)(p - data));
                return -1;
            }
            p = stop + 1;
            if (*stop == '\r') p++;
        }
        if (++b->rows == BATCH_ROWS) batch_flush(b);
    }
    batch_end(b);
    return 0;
}

static void report(const char *name, const run_result *best, int64_t size)
{
    double mb = (double)size / 1e6;
    printf("parse: %s %.1f MB/s (%.3f s CPU; wall %.3f s, %.1f MB/s; %lld values)\n", name,
           mb / best->seconds, best->seconds, best->wall, mb / best->wall,
           (long long)best->values);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_parse FILE.csv [ID_COLUMN (id)]\n");
        return 64;
    }
    const char *path = argv[1], *id_name = argc > 2 ? argv[2] : "id";
    char err[PC_ERRLEN];
    csv_header h;
    if (csv_read_header(path, &h, err, sizeof err) != PC_OK) {
        fprintf(stderr, "bench_parse: %s\n", err);
        return 66;
    }
    int64_t id_col = csv_header_find(&h, id_name), ncols = h.ncols;
    csv_header_free(&h);

    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        perror(path);
        return 66;
    }
    long size = ftell(f);
    rewind(f);
    char *data = malloc((size_t)size + 1);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "bench_parse: %s: cannot read %ld bytes\n", path, size);
        return 74;
    }
    fclose(f);
    data[size] = '\0';
    const char *body = memchr(data, '\n', (size_t)size);
    body = body != NULL ? body + 1 : data + size;

    batch b = {.width = ncols - (id_col >= 0)};
    b.m = malloc((size_t)(BATCH_ROWS * (b.width > 0 ? b.width : 1)) * sizeof(float));
    if (b.m == NULL || b.width <= 0) {
        fprintf(stderr, "bench_parse: %s: no feature columns (or out of memory)\n", path);
        return 65;
    }
    const char *names[3] = {"precast", "strtof", "strtod"};
    run_result best[3] = {{0, 0, 0.0, 0.0}, {0, 0, 0.0, 0.0}, {0, 0, 0.0, 0.0}};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < RUNS; i++) {
            int rc = k == 0 ? run_precast(path, size, id_col, &b)
                            : run_libc(body, (size_t)(data + size - body), id_col, k == 2, &b);
            if (rc != 0) return 65;
            if (i == 0 || b.res.seconds < best[k].seconds) best[k] = b.res;
        }
        report(names[k], &best[k], size);
    }
    free(b.m);
    free(data);
    if (best[0].hash != best[1].hash || best[0].values != best[1].values) {
        printf("check: precast != strtof (%lld and %lld values, hashes %016llx and %016llx)\n",
               (long long)best[0].values, (long long)best[1].values,
               (unsigned long long)best[0].hash, (unsigned long long)best[1].hash);
        return 1;
    }
    printf("check: precast == strtof bitwise on %lld values\n", (long long)best[0].values);
    return 0;
}
