/*
 * commands.h — the `precast` subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status (sysexits.h codes, see
 * kernels/status.h). Each prints its own --help. Only `run` initialises MPI.
 */
#ifndef PRECAST_COMMANDS_H
#define PRECAST_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_versions(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* server/serve.c */
int cmd_train(int argc, char **argv); /* trainer/train.c */
int cmd_stats(int argc, char **argv); /* jobs/stats.c: training statistics (input drift) */

#endif
