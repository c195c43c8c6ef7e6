/* provisioner run: the service. Configuration from flags and PROVISIONER_* variables (a flag
 * wins); librdkafka properties pass through with -X name=value or PROVISIONER_KAFKA_<name>. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config/config.h"
#include "http/http.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/ops.h"
#include "pipeline/pipeline.h"
#include "salesforce/salesforce.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1; /* the main loop acts on it */
}

static volatile sig_atomic_t reload_requested;

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1; /* the main loop reloads the settings between batches */
}

/* ---- the operations listener (issue 9). Its handlers run on libmicrohttpd's thread and only
 * read atomics (pipeline_health) or render the registry (which locks itself). */
typedef struct run_ops {
    pipeline_health health;
    metrics *reg;
    http_server *http;
} run_ops;

static bool ops_alive(void *ctx) { return pipeline_health_alive(&((run_ops *)ctx)->health); }

static bool ops_ready(void *ctx, buf *why)
{
    run_ops *r = ctx;
    bool ok = pipeline_health_ready(&r->health, why);
    if (stop_requested && !atomic_load(&r->health.stopping)) { /* before the loop notices */
        buf_puts(why, "not ready: shutting down\n");
        ok = false;
    }
    return ok;
}

static void ops_metrics(void *ctx, buf *out) { metrics_render(((run_ops *)ctx)->reg, out); }

static bool ops_reimport(void *ctx, bool dry_run)
{
    return pipeline_request_reimport(&((run_ops *)ctx)->health, dry_run);
}

/* Port 0 turns the listener off. A token file that is configured but unreadable stops the start:
 * a deployment that meant to enable POST /reimport should not come up without it. A port that
 * cannot be bound does not: provisioning does not need the listener, several instances on one
 * machine (tests, benchmarks) would otherwise need a port each, and in Kubernetes the failing
 * probes (and this error in the log) make the problem plain anyway. */
static int ops_start(const cli_args *a, run_ops *r)
{
    pipeline_health_init(&r->health);
    r->reg = metrics_new();
    r->http = NULL;
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
    http_handlers h = {.ctx = r,
                       .alive = ops_alive,
                       .ready = ops_ready,
                       .metrics = ops_metrics,
                       /* 202 for a reimport that cannot run would mislead the caller */
                       .reimport = cli_str(a, "salesforce-url") ? ops_reimport : NULL};
    int rc = http_start(cli_str(a, "http-bind"), port, token, &h, &r->http, &err);
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
    snprintf(shown, sizeof shown, "%d", http_port(r->http));
    log_msg(LOG_INFO, "http listening", "bind", cli_str(a, "http-bind"), "port", shown, "reimport",
            token_file ? "enabled" : "disabled", NULL);
    return 0;
}

static void ops_stop(run_ops *r)
{
    http_stop(r->http); /* first: its handlers read the registry */
    metrics_free(r->reg);
}

int cmd_run(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_RUN, "provisioner run [options]",
                  "The service: consumes Salesforce User change events from Kafka, decides with "
                  "the settings\n(state in Redis) and publishes Gong commands, until SIGTERM.",
                  argc, argv, &a, &code) < 0)
        return code;
    perr err;
    config *cfg = NULL;
    char dlq[512];
    pipeline_opts o;
    if ((code = cmd_service_opts(&a, "run", &o, &cfg, dlq, sizeof dlq)) != EXIT_OK) {
        cli_free(&a);
        return code;
    }
    cmd_on_stop_signals(on_signal);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);

    char txn_id[512];
    if (cli_str(&a, "transactional-id")) {
        snprintf(txn_id, sizeof txn_id, "%s", cli_str(&a, "transactional-id"));
    } else {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(txn_id, sizeof txn_id, "%s.%s.%ld", cli_str(&a, "group"), host, (long)getpid());
    }
    struct sf_client *sf = NULL;
    if (cmd_salesforce_client(&a, &stop_requested, &sf) < 0) {
        config_free(cfg);
        cli_free(&a);
        return EXIT_USAGE;
    }
    o.stop = &stop_requested;
    o.sf = sf;
    o.exactly_once = cli_bool(&a, "exactly-once");
    o.reimport_interval_s = (int)cli_int(&a, "reimport-interval");
    o.lookup_refresh_s = (int)cli_int(&a, "lookup-refresh-interval");
    o.transactional_id = txn_id;
    o.settings_path = cli_str(&a, "settings");
    o.reload = &reload_requested;
    /* up before the pipeline connects: /healthz answers during a slow start, /readyz says what
     * is missing */
    run_ops ops;
    if (ops_start(&a, &ops) < 0) {
        ops_stop(&ops);
        sf_client_free(sf);
        config_free(cfg);
        cli_free(&a);
        return EXIT_USAGE;
    }
    o.metrics = ops.reg;
    o.health = &ops.health;
    char redis_shown[512];
    log_redact_url(o.redis_url, redis_shown, sizeof redis_shown);
    log_msg(LOG_INFO, "starting", "brokers", o.brokers, "input", o.input_topic, "output",
            o.output_topic, "redis", redis_shown, "settings", cli_str(&a, "settings"), NULL);
    code = EXIT_OK;
    if (pipeline_run(&o, &err) < 0) {
        log_msg(LOG_FATAL, err.msg, NULL);
        code = EXIT_RUNTIME;
    }
    ops_stop(&ops);
    sf_client_free(sf);
    config_free(cfg);
    cli_free(&a);
    return code;
}
