/* inspect.c — `precast inspect MODEL.onnx`: what a model takes, gives and costs. */
#include <stdio.h>
#include <string.h>

#include "jobs/commands.h"
#include "kernels/model.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast inspect MODEL.onnx\n"
            "\n"
            "Loads and compiles the model as `precast run` would, then prints its inputs and\n"
            "outputs with shapes, the ops it uses, its parameter count and FLOPs per row.\n"
            "Exit status: 0 supported, 66 file missing, 78 model rejected (the reason on stderr).\n");
}

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2) {
        usage(stderr);
        return PC_ERR_USAGE;
    }
    char err[PC_ERRLEN];
    model *m = NULL;
    pc_status s = model_load_file(argv[1], 1, &m, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: %s\n", err);
        return s;
    }
    model_describe(m, stdout);
    model_close(m);
    return 0;
}
