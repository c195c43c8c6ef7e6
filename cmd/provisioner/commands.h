/* The subcommands of `provisioner`, each in its own file, and the one option table they share. */
#ifndef PROVISIONER_COMMANDS_H
#define PROVISIONER_COMMANDS_H

#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"

/* Subcommand bits for cli_option.commands. */
enum {
    C_RUN = 1u << 0,
    C_SIMULATE = 1u << 1,
    C_EXPLAIN = 1u << 2,
    C_CHECK_CONFIG = 1u << 3,
    C_REPLAY = 1u << 4,
    C_REIMPORT = 1u << 5,
    C_DEV_BROKER = 1u << 6,
    C_PRODUCE = 1u << 7,
    C_CONSUME = 1u << 8,
    C_ENCODE = 1u << 9,
    C_DECODE = 1u << 10,
    C_HELD = 1u << 11,
};

/* Exit codes (interfaces.md): 0 success, 1 runtime failure, 2 bad usage, settings or input. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

extern const cli_option pv_options[];
extern const size_t pv_n_options;

/* Parses the subcommand's flags; prints help or the error itself. Returns -1 to exit with *code. */
int cmd_parse(unsigned cmd, const char *usage, const char *summary, int argc, char **argv,
              cli_args *out, int *code);

int cmd_run(int argc, char **argv);
int cmd_reimport(int argc, char **argv);
int cmd_held(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_dev_broker(int argc, char **argv);
int cmd_produce_events(int argc, char **argv);
int cmd_consume_commands(int argc, char **argv);

/* Fills the pipeline options `run` and `replay` share and loads the settings; dlq receives the
 * dead-letter topic's name. Prints what is wrong and returns the exit code. */
struct pipeline_opts;
struct config;
int cmd_service_opts(const cli_args *a, const char *cmd, struct pipeline_opts *o,
                     struct config **cfg, char *dlq, size_t dlq_size);
/* Output on stdout for the commands that print: main reports the first failure's reason and
 * exits 1 (interfaces.md: a runtime failure). */
void cmd_write_stdout(const char *p, size_t n);
int cmd_flush_stdout(void);
/* SIGTERM and SIGINT call handler, which only sets a flag. */
void cmd_on_stop_signals(void (*handler)(int));

/* A warning on out for each filter field that looks like a typo of a standard field of the
 * bundled User schema ('Departmnt': did you mean 'Department'?): it would read as null. */
void cmd_filter_field_hints(const struct config *c, FILE *out);

/* Runs the pipeline of run or replay (o complete but for its metrics and health) with the
 * operations listener of --http-bind:--http-port beside it (port 0: none); reimport: POST
 * /reimport may queue one. A bad bind address or an unreadable token file is printed and exits
 * 2, a port that cannot be bound is logged and the pipeline runs without it; EXIT_RUNTIME when
 * the pipeline fails (logged). */
int cmd_serve(const cli_args *a, bool reimport, volatile sig_atomic_t *stop,
              struct pipeline_opts *o);

/* The Salesforce client from the --salesforce-* options; *out NULL when no URL is configured.
 * Prints the error and returns -1 on a bad configuration. */
struct sf_client;
int cmd_salesforce_client(const cli_args *a, volatile sig_atomic_t *stop, struct sf_client **out);

#endif
