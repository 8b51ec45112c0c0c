/* inspect.c — `precast inspect MODEL.onnx [--batch N]`: what a model takes, gives and costs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/commands.h"
#include "jobs/job.h"
#include "kernels/model.h"

/* The job's default run.batch_rows, so that the plan shown is the one a job would run. */
enum { INSPECT_DEFAULT_BATCH = JOB_DEFAULT_BATCH_ROWS };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast inspect MODEL.onnx [--batch N]\n"
            "\n"
            "Loads and compiles the model as `precast run` would for batches of N rows\n"
            "(default %d, run.batch_rows' default), then prints its inputs and outputs with\n"
            "shapes, the plan (each dense layer names the library that computes it), the ops\n"
            "it uses, its parameter count and FLOPs per row.\n"
            "Exit status: 0 supported, 64 usage, 66 file missing, 78 model rejected (the reason\n"
            "on stderr).\n",
            INSPECT_DEFAULT_BATCH);
}

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    long long batch = INSPECT_DEFAULT_BATCH;
    if (argc == 4 && strcmp(argv[2], "--batch") == 0) {
        char *end;
        batch = strtoll(argv[3], &end, 10);
        if (*argv[3] == '\0' || *end != '\0' || batch < 1 || batch > (1 << 20)) {
            fprintf(stderr, "precast: inspect: --batch wants a row count from 1 to %d, not '%s'\n",
                    1 << 20, argv[3]);
            return PC_ERR_USAGE;
        }
    } else if (argc != 2) {
        usage(stderr);
        return PC_ERR_USAGE;
    }
    char err[PC_ERRLEN];
    model *m = NULL;
    pc_status s = model_load_file(argv[1], batch, &m, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: %s\n", err);
        return s;
    }
    model_describe(m, stdout);
    model_close(m);
    return 0;
}
