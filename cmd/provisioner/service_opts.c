/* What `run` and `replay` share: the pipeline's Kafka, Redis, settings, format and batch options,
 * and the stop handler. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "commands.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

/* --schema's text, read and checked once here: a file that cannot be read, is empty or does not
 * resolve against the bundled schema is the command line's mistake (exit 2). Kept for the life
 * of the process, as the options that point at it. */
static buf schema_text;

static int read_schema(const char *cmd, const char *path)
{
    if (buf_read_file(&schema_text, path, SIZE_MAX) < 0) {
        fprintf(stderr, "provisioner: %s: --schema %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    if (!schema_text.len) {
        fprintf(stderr, "provisioner: %s: --schema %s: the file is empty\n", cmd, path);
        return -1;
    }
    codec_decoder_config dc = {.writer_avsc = schema_text.data,
                               .writer_avsc_len = schema_text.len,
                               .framing = CODEC_FRAMING_PLAIN};
    codec_decoder *d;
    codec_error ce;
    if (codec_decoder_new(&dc, &d, &ce) < 0) {
        fprintf(stderr, "provisioner: %s: --schema %s: %s\n", cmd, path, ce.msg);
        return -1;
    }
    codec_decoder_free(d);
    return 0;
}

int cmd_service_opts(const cli_args *a, const char *cmd, pipeline_opts *o, config **cfg, char *dlq,
                     size_t dlq_size)
{
    const char *missing = !cli_str(a, "brokers")    ? "--brokers (PROVISIONER_BROKERS)"
                          : !cli_str(a, "settings") ? "--settings (PROVISIONER_SETTINGS)"
                                                    : NULL;
    if (missing) {
        fprintf(stderr, "provisioner: %s: %s is required\n", cmd, missing);
        return EXIT_USAGE;
    }
    codec_format fmt;
    if (codec_format_parse(cli_str(a, "output-format"), &fmt) < 0) {
        fprintf(stderr, "provisioner: %s: --output-format must be json or avro, not '%s'\n", cmd,
                cli_str(a, "output-format"));
        return EXIT_USAGE;
    }
    if (cli_str(a, "schema") && read_schema(cmd, cli_str(a, "schema")) < 0) return EXIT_USAGE;
    perr err;
    /* the Redis URL and the -X properties are the command line's: a mistake in them is a usage
     * error (exit 2), told before anything connects */
    if (store_redis_check_url(cli_str(a, "redis"), &err) < 0) {
        fprintf(stderr, "provisioner: %s: --redis: %s\n", cmd, err.msg);
        return EXIT_USAGE;
    }
    rd_kafka_conf_t *kc =
        kafka_conf_new(cli_str(a, "brokers"), a->kafka_props, a->n_kafka_props, &err);
    if (!kc) {
        fprintf(stderr, "provisioner: %s: %s\n", cmd, err.msg);
        return EXIT_USAGE;
    }
    rd_kafka_conf_destroy(kc);
    if (config_load_file(cli_str(a, "settings"), cfg, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        return EXIT_USAGE;
    }
    const char *input = cli_str(a, "input-topic");
    if (cli_str(a, "dlq-topic"))
        snprintf(dlq, dlq_size, "%s", cli_str(a, "dlq-topic"));
    else
        snprintf(dlq, dlq_size, "%s.dlq", input);
    memset(o, 0, sizeof *o);
    o->brokers = cli_str(a, "brokers");
    o->input_topic = input;
    o->output_topic = cli_str(a, "output-topic");
    o->dlq_topic = dlq;
    o->group = cli_str(a, "group");
    o->redis_url = cli_str(a, "redis");
    o->redis_prefix = cli_str(a, "redis-prefix");
    o->registry = cli_str(a, "schema-registry");
    o->schema = cli_str(a, "schema");
    o->schema_avsc = o->schema ? schema_text.data : NULL;
    o->schema_avsc_len = o->schema ? schema_text.len : 0;
    o->output_format = fmt;
    o->batch_size = (int)cli_int(a, "batch-size");
    o->linger_ms = (int)cli_int(a, "batch-linger-ms");
    o->batches_in_flight = (int)cli_int(a, "batches-in-flight");
    o->placements_at_once = (int)cli_int(a, "placements-at-once");
    o->shutdown_timeout_s = (int)cli_int(a, "shutdown-timeout");
    o->exit_when_idle_s = cli_str(a, "exit-when-idle") ? (int)cli_int(a, "exit-when-idle") : 0;
    o->kafka_props = a->kafka_props;
    o->n_kafka_props = a->n_kafka_props;
    o->cfg = *cfg;
    return EXIT_OK;
}

void cmd_on_stop_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler; /* it only sets a flag: the main loop acts on it */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}
