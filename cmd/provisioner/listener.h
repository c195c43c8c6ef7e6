/* The operations listener of run and replay (issue 9): /healthz, /readyz, /metrics and, for
 * run, POST /reimport. Its handlers run on libmicrohttpd's thread and only read atomics
 * (pipeline_health) or render the registry (which locks itself). */
#ifndef PROVISIONER_LISTENER_H
#define PROVISIONER_LISTENER_H

#include <signal.h>
#include <stdbool.h>

#include "cli/cli.h"
#include "pipeline/ops.h"

struct metrics;
struct http_server;

typedef struct cmd_listener {
    pipeline_health health;
    struct metrics *reg;
    struct http_server *http;
    volatile sig_atomic_t *stop; /* the command's stop flag */
} cmd_listener;

/* Starts the listener of --http-bind:--http-port (port 0: none; the registry and the health
 * are there all the same, for the pipeline). reimport: POST /reimport may queue one (run only).
 * Prints what is wrong and returns -1 on a bad bind address or an unreadable token file; a port
 * that cannot be bound is logged, not fatal. cmd_listener_stop is due either way. */
int cmd_listener_start(const cli_args *a, bool reimport, volatile sig_atomic_t *stop,
                       cmd_listener *l);
void cmd_listener_stop(cmd_listener *l);

#endif
