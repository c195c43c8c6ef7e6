/* The one option table of provisioner. The README's configuration reference is printed from it
 * (`provisioner options --markdown`). */
#include <stdio.h>

#include "commands.h"
#include "log/log.h"

#define SVC (C_RUN | C_REPLAY | C_REIMPORT)
#define NB 1, 0 /* no bounds */

const cli_option pv_options[] = {
    {"settings", CLI_STR, NULL, NB, "PROVISIONER_SETTINGS", "settings file (YAML)",
     SVC | C_SIMULATE | C_EXPLAIN | C_CHECK_CONFIG, false},
    {"events", CLI_STR, NULL, NB, NULL, "JSON-lines change events (default: stdin)",
     C_SIMULATE | C_EXPLAIN | C_PRODUCE | C_ENCODE, false},
    {"user", CLI_STR, NULL, NB, NULL, "Salesforce user Id to explain", C_EXPLAIN, false},
    {"now", CLI_STR, NULL, NB, NULL,
     "clock for relative date literals (ISO 8601); default: each event's commitTimestamp",
     C_SIMULATE | C_EXPLAIN, false},
    {"no-why", CLI_FLAG, NULL, NB, NULL, "leave `why` and `source` out of the commands",
     C_SIMULATE, false},
    {"brokers", CLI_STR, NULL, NB, "PROVISIONER_BROKERS", "Kafka bootstrap servers",
     SVC | C_PRODUCE | C_CONSUME, false},
    {"input-topic", CLI_STR, "salesforce.user.changes", NB, "PROVISIONER_INPUT_TOPIC",
     "topic of User change events", SVC, false},
    {"output-topic", CLI_STR, "gong.user.commands", NB, "PROVISIONER_OUTPUT_TOPIC",
     "topic of Gong commands", SVC, false},
    {"topic", CLI_STR, NULL, NB, NULL, "topic to write or read", C_PRODUCE | C_CONSUME, false},
    {"schema", CLI_STR, NULL, NB, NULL, "Avro writer schema (.avsc); default: the bundled one",
     C_ENCODE | C_DECODE | C_PRODUCE, false},
    {"schema-id", CLI_INT, NULL, 0, 2147483647, NULL,
     "frame each value with Confluent framing and this schema id", C_ENCODE | C_PRODUCE, false},
    {"registry", CLI_STR, NULL, NB, "PROVISIONER_SCHEMA_REGISTRY",
     "Schema Registry URL for Confluent-framed values", C_DECODE, false},
    {"out", CLI_STR, NULL, NB, NULL, "output folder", C_ENCODE, false},
};
const size_t pv_n_options = sizeof pv_options / sizeof pv_options[0];

int cmd_parse(unsigned cmd, const char *usage, const char *summary, int argc, char **argv,
              cli_args *out, int *code)
{
    bool help = false;
    perr err;
    if (cli_parse(pv_options, pv_n_options, cmd, argc, argv, out, &help, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        cli_free(out);
        *code = EXIT_USAGE;
        return -1;
    }
    if (help) {
        buf b;
        buf_init(&b);
        cli_print_help(pv_options, pv_n_options, cmd, usage, summary, &b);
        fputs(b.data, stdout);
        buf_free(&b);
        cli_free(out);
        *code = EXIT_OK;
        return -1;
    }
    return 0;
}
