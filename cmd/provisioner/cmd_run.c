/* provisioner run: the service. Configuration from flags and PROVISIONER_* variables (a flag
 * wins); librdkafka properties pass through with -X name=value or PROVISIONER_KAFKA_<name>. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config/config.h"
#include "log/log.h"
#include "pipeline/pipeline.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1; /* the main loop acts on it */
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
    const char *missing = !cli_str(&a, "brokers")    ? "--brokers (PROVISIONER_BROKERS)"
                          : !cli_str(&a, "settings") ? "--settings (PROVISIONER_SETTINGS)"
                                                     : NULL;
    if (missing) {
        fprintf(stderr, "provisioner: run: %s is required\n", missing);
        cli_free(&a);
        return EXIT_USAGE;
    }
    codec_format fmt;
    if (codec_format_parse(cli_str(&a, "output-format"), &fmt) < 0) {
        fprintf(stderr, "provisioner: run: --output-format must be json or avro, not '%s'\n",
                cli_str(&a, "output-format"));
        cli_free(&a);
        return EXIT_USAGE;
    }
    perr err;
    config *cfg;
    if (config_load_file(cli_str(&a, "settings"), &cfg, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        cli_free(&a);
        return EXIT_USAGE;
    }
    char dlq[512];
    const char *input = cli_str(&a, "input-topic");
    if (cli_str(&a, "dlq-topic")) snprintf(dlq, sizeof dlq, "%s", cli_str(&a, "dlq-topic"));
    else snprintf(dlq, sizeof dlq, "%s.dlq", input);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char txn_id[512];
    if (cli_str(&a, "transactional-id")) {
        snprintf(txn_id, sizeof txn_id, "%s", cli_str(&a, "transactional-id"));
    } else {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(txn_id, sizeof txn_id, "%s.%s.%ld", cli_str(&a, "group"), host, (long)getpid());
    }
    pipeline_opts o = {
        .brokers = cli_str(&a, "brokers"),
        .input_topic = input,
        .output_topic = cli_str(&a, "output-topic"),
        .dlq_topic = dlq,
        .group = cli_str(&a, "group"),
        .redis_url = cli_str(&a, "redis"),
        .redis_prefix = cli_str(&a, "redis-prefix"),
        .registry = cli_str(&a, "schema-registry"),
        .output_format = fmt,
        .batch_size = (int)cli_int(&a, "batch-size"),
        .linger_ms = (int)cli_int(&a, "batch-linger-ms"),
        .shutdown_timeout_s = (int)cli_int(&a, "shutdown-timeout"),
        .exit_when_idle_s = (int)cli_int(&a, "exit-when-idle"),
        .kafka_props = a.kafka_props,
        .n_kafka_props = a.n_kafka_props,
        .cfg = cfg,
        .stop = &stop_requested,
        .exactly_once = cli_bool(&a, "exactly-once"),
        .transactional_id = txn_id,
    };
    char redis_shown[512];
    log_redact_url(o.redis_url, redis_shown, sizeof redis_shown);
    log_msg(LOG_INFO, "starting", "brokers", o.brokers, "input", o.input_topic, "output",
            o.output_topic, "redis", redis_shown, "settings", cli_str(&a, "settings"), NULL);
    code = EXIT_OK;
    if (pipeline_run(&o, &err) < 0) {
        log_msg(LOG_FATAL, err.msg, NULL);
        code = EXIT_RUNTIME;
    }
    config_free(cfg);
    cli_free(&a);
    return code;
}
