/* bench_forward — how fast is model_forward, and how close to the sgemm it is made of?
 *
 *   build/bin/bench_forward MODEL.onnx [batch_rows (1024)] [rows (1000000)] [passes (2)]
 *
 * Times model_forward over `rows` random rows in batches of batch_rows, then times plain
 * cblas_sgemm at every dense layer's shapes (batch x in x out, W stored (out, in) as in
 * PyTorch) for the same batches: the sum is the "sgemm bound", what the plan would reach if
 * everything but the matrix products were free. One OpenBLAS thread (model_load sets it).
 * Each figure is the fastest of `passes` passes over the rows, as scripts/bench_torch.py
 * reports PyTorch's (make bench gives both 2). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int64_t parse_count(const char *s, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v <= 0) {
        fprintf(stderr, "bench_forward: %s must be a positive integer, not '%s'\n", what, s);
        exit(64);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: bench_forward MODEL.onnx [batch_rows (1024)] [rows (1000000)] "
                        "[passes (2)]\n");
        return 64;
    }
    int64_t batch = argc > 2 ? parse_count(argv[2], "batch_rows") : 1024;
    int64_t rows = argc > 3 ? parse_count(argv[3], "rows") : 1000000;
    int64_t passes = argc > 4 ? parse_count(argv[4], "passes") : 2;
    char err[PC_ERRLEN];
    model *m = NULL;
    pc_status st = model_load_file(argv[1], batch, &m, err, sizeof err);
    if (st != PC_OK) {
        fprintf(stderr, "bench_forward: %s\n", err);
        return (int)st;
    }
    for (int i = 0; i < model_input_count(m); i++) {
        int64_t n = batch * model_input_width(m, i);
        if (model_input_elem(m, i) == MODEL_ELEM_FLOAT) {
            float *x = model_input_buffer(m, i);
            for (int64_t k = 0; k < n; k++) x[k] = frand() * 2.0f;
        } else {
            memset(model_input_buffer(m, i), 0, (size_t)n * sizeof(int64_t));
        }
    }
    int64_t nbatch = (rows + batch - 1) / batch;
    if (model_forward(m, batch, err, sizeof err) != PC_OK) { /* warm-up */
        fprintf(stderr, "bench_forward: %s\n", err);
        return 70;
    }
    double t = 0.0;
    for (int64_t p = 0; p < passes; p++) {
        double t0 = now();
        for (int64_t b = 0; b < nbatch; b++) {
            int64_t k = b == nbatch - 1 ? rows - b * batch : batch;
            model_forward(m, k, err, sizeof err);
        }
        double tp = now() - t0;
        if (p == 0 || tp < t) t = tp;
    }
    double fl = model_flops_per_row(m);
    printf("model: %s  batch_rows %lld  rows %lld  flops/row %.0f\n", argv[1], (long long)batch,
           (long long)rows, fl);
    printf("forward: %.3f s  %.0f rows/s  %.2f GFLOP/s\n", t, (double)rows / t,
           fl * (double)rows / t / 1e9);

    /* The same batches through bare sgemm, one dense layer at a time. */
    double tg = 0.0, gfl = 0.0;
    for (int l = 0; l < model_dense_count(m); l++) {
        int64_t C, OC;
        model_dense_shape(m, l, &C, &OC);
        float *a = malloc((size_t)(batch * C) * sizeof *a);
        float *w = malloc((size_t)(OC * C) * sizeof *w);
        float *c = malloc((size_t)(batch * OC) * sizeof *c);
        if (a == NULL || w == NULL || c == NULL) {
            fprintf(stderr, "bench_forward: out of memory\n");
            return 70;
        }
        for (int64_t k = 0; k < batch * C; k++) a[k] = frand();
        for (int64_t k = 0; k < OC * C; k++) w[k] = frand();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)OC, (int)C, 1.0f,
                    a, (int)C, w, (int)C, 0.0f, c, (int)OC);
        double ts = 0.0;
        for (int64_t p = 0; p < passes; p++) {
            double s0 = now();
            for (int64_t b = 0; b < nbatch; b++) {
                int64_t k = b == nbatch - 1 ? rows - b * batch : batch;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k, (int)OC, (int)C,
                            1.0f, a, (int)C, w, (int)C, 0.0f, c, (int)OC);
            }
            double tp = now() - s0;
            if (p == 0 || tp < ts) ts = tp;
        }
        printf("  sgemm %lld x %lld x %lld: %.3f s  %.2f GFLOP/s\n", (long long)batch,
               (long long)C, (long long)OC, ts, 2.0 * (double)C * (double)OC * (double)rows / ts / 1e9);
        tg += ts;
        gfl += 2.0 * (double)C * (double)OC;
        free(a);
        free(w);
        free(c);
    }
    if (tg > 0.0) {
        printf("sgemm bound: %.3f s  %.0f rows/s  %.2f GFLOP/s\n", tg, (double)rows / tg,
               gfl * (double)rows / tg / 1e9);
        printf("forward / sgemm bound: %.2f\n", tg / t);
    } else {
        printf("sgemm bound: no dense layers\n");
    }
    model_close(m);
    return 0;
}
