/* main.c — `precast`: dispatches to a subcommand. The only place that turns a status into a
 * process exit. */
#include <stdio.h>
#include <string.h>

#include "jobs/commands.h"
#include "kernels/status.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast COMMAND [ARGS]\n"
            "\n"
            "  run JOB.ini [--set section.key=value]...   the batch job (under mpirun, or alone)\n"
            "  run --check JOB.ini                         validate the job and exit\n"
            "  predict --model M --input GLOB --table DIR  a one-off run without a job file\n"
            "  get TABLE KEY...  |  get TABLE -            point lookups, JSON lines out\n"
            "  versions TABLE [--rollback V] [--keep N]    list versions, roll back, prune\n"
            "  verify TABLE [V]                            re-read a version against its manifest\n"
            "  serve TABLE [--http A:P] [--resp A:P]       lookups over HTTP/JSON and Redis protocol\n"
            "  inspect MODEL.onnx                          inputs, outputs, ops, parameters, FLOPs\n"
            "  train TRAIN.ini [--set section.key=value]   train a model (under mpirun, or alone)\n"
            "  stats DATA.csv... --job JOB.ini [-o OUT]    training statistics for input.drift\n"
            "\n"
            "`precast COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PC_ERR_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "predict") == 0) return cmd_predict(argc - 1, argv + 1);
    if (strcmp(cmd, "get") == 0) return cmd_get(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "versions") == 0) return cmd_versions(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "stats") == 0) return cmd_stats(argc - 1, argv + 1);
    fprintf(stderr, "precast: unknown command '%s'\n", cmd);
    usage(stderr);
    return PC_ERR_USAGE;
}
