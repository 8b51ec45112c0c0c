/* bench_featstats [ROWS] [WIDTH]: nanoseconds per value of the input-drift sketch
 * (featstats_add_dense in COMPARE mode, the per-batch call of the map loop) on uniform random
 * floats in [0, 1] like make bench's input, in batches of 256 rows; one thread.  Part of
 * `make bench-drift` (scripts/bench_drift.sh), beside the end-to-end runs. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mapper/featstats.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 1 ? atoll(argv[1]) : 1000000, width = argc > 2 ? atoll(argv[2]) : 64, batch = 256;
    MPI_Init(&argc, &argv);
    char **names = malloc((size_t)width * sizeof *names);
    for (int64_t j = 0; j < width; j++) {
        names[j] = malloc(32);
        snprintf(names[j], 32, "f%lld", (long long)j);
    }
    float *x = malloc((size_t)(batch * width) * sizeof *x);
    uint64_t s = 88172645463325252ULL;
    for (int64_t i = 0; i < batch * width; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((s >> 11) % 10000) / 10000.0f;
    }
    char err[PC_ERRLEN];
    featstats *ref = NULL, *cmp = NULL;
    if (featstats_create((const char *const *)names, width, NULL, NULL, 0, &ref, err, sizeof err) != PC_OK) return 1;
    featstats_add_dense(ref, 0, x, batch, width);
    featstats_profile_pass2(ref, MPI_COMM_SELF, err, sizeof err);
    featstats_add_dense(ref, 0, x, batch, width);
    if (featstats_create_compare(ref, NULL, 0, NULL, 0, &cmp, err, sizeof err) != PC_OK) return 1;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int64_t r = 0; r < rows; r += batch) featstats_add_dense(cmp, 0, x, batch, width);
        double t = now() - t0;
        if (t < best) best = t;
    }
    featstats_dense d;
    featstats_dense_get(cmp, 0, &d); /* keeps the work observable */
    printf("sketch: %lld rows x %lld features in %.3f s: %.2f ns per value (count %lld)\n", (long long)rows,
           (long long)width, best, 1e9 * best / (double)(rows * width), (long long)d.count);
    featstats_free(cmp);
    featstats_free(ref);
    for (int64_t j = 0; j < width; j++) free(names[j]);
    free(names);
    free(x);
    MPI_Finalize();
    return 0;
}
