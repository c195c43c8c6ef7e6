/* The pipeline of run and replay with the operations listener beside it (issue 9): /healthz,
 * /readyz, /metrics and, for run, POST /reimport. The listener's handlers run on
 * libmicrohttpd's thread and only read atomics (pipeline_health) or render the registry (which
 * locks itself). */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "http/http.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/ops.h"
#include "pipeline/pipeline.h"

typedef struct cmd_listener {
    pipeline_health health;
    metrics *reg;
    http_server *http;
    volatile sig_atomic_t *stop; /* the command's stop flag */
} cmd_listener;

static bool listener_alive(void *ctx)
{
    return pipeline_health_alive(&((cmd_listener *)ctx)->health);
}

static bool listener_ready(void *ctx, buf *why)
{
    cmd_listener *l = ctx;
    bool ok = pipeline_health_ready(&l->health, why);
    if (*l->stop && !atomic_load(&l->health.stopping)) { /* before the loop notices */
        buf_puts(why, "not ready: shutting down\n");
        ok = false;
    }
    return ok;
}

static void listener_metrics(void *ctx, buf *out)
{
    metrics_render(((cmd_listener *)ctx)->reg, out);
}

static bool listener_reimport(void *ctx, bool dry_run, bool confirm)
{
    return pipeline_request_reimport(&((cmd_listener *)ctx)->health, dry_run, confirm);
}

/* A token file that is configured but unreadable stops the start: a deployment that meant to
 * enable POST /reimport should not come up without it. A port that cannot be bound does not:
 * provisioning does not need the listener, several instances on one machine (tests, benchmarks)
 * would otherwise need a port each, and in Kubernetes the failing probes (and this error in the
 * log) make the problem plain anyway. */
static int listener_start(const cli_args *a, bool reimport, volatile sig_atomic_t *stop,
                          cmd_listener *l)
{
    pipeline_health_init(&l->health);
    l->reg = metrics_new();
    l->http = NULL;
    l->stop = stop;
    int port = (int)cli_int(a, "http-port");
    if (!port) return 0;
    struct in_addr any;
    if (inet_pton(AF_INET, cli_str(a, "http-bind"), &any) != 1) {
        fprintf(stderr, "provisioner: --http-bind: '%s' is not an IPv4 address\n",
                cli_str(a, "http-bind"));
        return -1;
    }
    char *token = NULL;
    perr err;
    const char *token_file = cli_str(a, "reimport-token-file");
    if (token_file && http_read_secret_file(token_file, &token, &err) < 0) {
        fprintf(stderr, "provisioner: --reimport-token-file: %s\n", err.msg);
        return -1;
    }
    http_handlers h = {.ctx = l,
                       .alive = listener_alive,
                       .ready = listener_ready,
                       .metrics = listener_metrics,
                       /* 202 for a reimport that cannot run would mislead the caller */
                       .reimport = reimport ? listener_reimport : NULL};
    int rc = http_start(cli_str(a, "http-bind"), port, token, &h, &l->http, &err);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (rc < 0) {
        log_msg(LOG_ERROR, "http listener not started: no /healthz, /readyz, /metrics or /reimport",
                "error", err.msg, NULL);
        return 0;
    }
    char shown[16];
    snprintf(shown, sizeof shown, "%d", http_port(l->http));
    log_msg(LOG_INFO, "http listening", "bind", cli_str(a, "http-bind"), "port", shown, "reimport",
            token_file ? "enabled" : "disabled", NULL);
    return 0;
}

static void listener_stop(cmd_listener *l)
{
    http_stop(l->http); /* first: its handlers read the registry */
    metrics_free(l->reg);
}

/* glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after which a
 * batch's large buffers (the command bytes of a big R6.3 placement, the sealed writes of the
 * flights) come from the heap, and the pages of the largest of them stay with the process: peak
 * RSS of `make bench`'s cold starts 60-66 MiB, against a 64 MiB target, and 55-56 MiB with the
 * threshold fixed at 256 KiB (README, "Twentieth round"). One arena: the sender thread allocates
 * librdkafka's copies of the commands and the main thread frees them, and with an arena of its
 * own each side kept its own high-water mark (cold starts at 53-65 MiB; 57-58 with one arena,
 * README "Twenty-first round"). An operator's own MALLOC_* variables or GLIBC_TUNABLES win. */
static void serve_malloc_tuning(void)
{
    if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") ||
        getenv("MALLOC_ARENA_MAX") || getenv("GLIBC_TUNABLES"))
        return;
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    mallopt(M_ARENA_MAX, 1); /* before any thread: the HTTP server's and librdkafka's come after */
}

int cmd_serve(const cli_args *a, bool reimport, volatile sig_atomic_t *stop,
              struct pipeline_opts *o)
{
    serve_malloc_tuning();
    /* up before the pipeline connects: /healthz answers during a slow start, /readyz says what
     * is missing */
    cmd_listener l;
    if (listener_start(a, reimport, stop, &l) < 0) {
        listener_stop(&l);
        return EXIT_USAGE;
    }
    o->metrics = l.reg;
    o->health = &l.health;
    char redis_shown[512];
    log_redact_url(o->redis_url, redis_shown, sizeof redis_shown);
    log_msg(LOG_INFO, "starting", "brokers", o->brokers, "input", o->input_topic, "output",
            o->output_topic, "redis", redis_shown, "settings", cli_str(a, "settings"), NULL);
    int code = EXIT_OK;
    perr err;
    if (pipeline_run(o, &err) < 0) {
        log_msg(LOG_FATAL, err.msg, NULL);
        code = EXIT_RUNTIME;
    }
    listener_stop(&l);
    return code;
}
