/* provisioner replay: re-consumes the input topic from the beginning, a timestamp or offsets with
 * its own consumer group, to backfill or rebuild the state (R9.3). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config/config.h"
#include "log/log.h"
#include "offline.h"
#include "pipeline/pipeline.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int parse_offsets(const char *s, pipeline_offset **out, size_t *n)
{
    *n = 0;
    *out = xcalloc(strlen(s) / 2 + 2, sizeof **out);
    const char *p = s;
    while (*p) {
        char *end;
        long part = strtol(p, &end, 10);
        if (end == p || *end != ':' || part < 0) return -1;
        p = end + 1;
        long long off = strtoll(p, &end, 10);
        if (end == p || off < 0) return -1;
        (*out)[(*n)++] = (pipeline_offset){(int32_t)part, (int64_t)off};
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return *n ? 0 : -1;
}

int cmd_replay(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_REPLAY,
                  "provisioner replay --from-beginning | --from-timestamp ISO | --offsets P:O,... "
                  "[--dry-run] [--state-prefix P] [options]",
                  "Re-consumes the input topic with its own consumer group and decides every event "
                  "again (R9.3).\nWith the existing state nothing is produced twice (R1.4); against "
                  "an empty state (a fresh\n--state-prefix) it rebuilds the state and produces what "
                  "a first run would. --dry-run\nprints the commands instead and changes nothing.",
                  argc, argv, &a, &code) < 0)
        return code;
    int forms = cli_bool(&a, "from-beginning") + (cli_str(&a, "from-timestamp") != NULL) +
                (cli_str(&a, "offsets") != NULL);
    const char *problem = forms != 1 ? "give exactly one of --from-beginning, --from-timestamp, "
                                       "--offsets"
                          : !cli_str(&a, "brokers")  ? "--brokers (PROVISIONER_BROKERS) is required"
                          : !cli_str(&a, "settings") ? "--settings (PROVISIONER_SETTINGS) is required"
                                                     : NULL;
    pipeline_offset *offsets = NULL;
    size_t n_offsets = 0;
    int64_t from_ts = 0;
    pipeline_start start = START_BEGINNING;
    if (!problem && cli_str(&a, "from-timestamp")) {
        start = START_TIMESTAMP;
        from_ts = offline_parse_iso(cli_str(&a, "from-timestamp"));
        if (from_ts < 0) problem = "--from-timestamp is not an ISO 8601 date-time";
    }
    if (!problem && cli_str(&a, "offsets")) {
        start = START_OFFSETS;
        if (parse_offsets(cli_str(&a, "offsets"), &offsets, &n_offsets) < 0)
            problem = "--offsets must read PARTITION:OFFSET[,PARTITION:OFFSET...]";
    }
    codec_format fmt = CODEC_FORMAT_JSON;
    if (!problem && codec_format_parse(cli_str(&a, "output-format"), &fmt) < 0)
        problem = "--output-format must be json or avro";
    if (problem) {
        fprintf(stderr, "provisioner: replay: %s\n", problem);
        free(offsets);
        cli_free(&a);
        return EXIT_USAGE;
    }
    perr err;
    config *cfg;
    if (config_load_file(cli_str(&a, "settings"), &cfg, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        free(offsets);
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

    pipeline_opts o = {
        .brokers = cli_str(&a, "brokers"),
        .input_topic = input,
        .output_topic = cli_str(&a, "output-topic"),
        .dlq_topic = dlq,
        /* --group on the command line is taken at its word; PROVISIONER_GROUP is the service's
         * group and a replay must never join it */
        .group = cli_from_flag(&a, "group") ? cli_str(&a, "group") : cli_str(&a, "replay-group"),
        .redis_url = cli_str(&a, "redis"),
        .redis_prefix = cli_str(&a, "state-prefix") ? cli_str(&a, "state-prefix")
                                                    : cli_str(&a, "redis-prefix"),
        .registry = cli_str(&a, "schema-registry"),
        .output_format = fmt,
        .batch_size = (int)cli_int(&a, "batch-size"),
        .linger_ms = (int)cli_int(&a, "batch-linger-ms"),
        .shutdown_timeout_s = (int)cli_int(&a, "shutdown-timeout"),
        .exit_when_idle_s = cli_str(&a, "exit-when-idle") ? (int)cli_int(&a, "exit-when-idle") : 0,
        .kafka_props = a.kafka_props,
        .n_kafka_props = a.n_kafka_props,
        .cfg = cfg,
        .stop = &stop_requested,
        .start = start,
        .from_timestamp_ms = from_ts,
        .offsets = offsets,
        .n_offsets = n_offsets,
        .stop_at_end = true,
        .dry_run = cli_bool(&a, "dry-run"),
        .dry_run_out = stdout,
        .progress = isatty(STDERR_FILENO) == 1,
    };
    code = EXIT_OK;
    if (pipeline_run(&o, &err) < 0) {
        log_msg(LOG_FATAL, err.msg, NULL);
        code = EXIT_RUNTIME;
    }
    config_free(cfg);
    free(offsets);
    cli_free(&a);
    return code;
}
