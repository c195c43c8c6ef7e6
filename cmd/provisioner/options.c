/* The one option table of provisioner. The README's configuration reference is printed from it
 * (`provisioner options --markdown`). */
#include <stdio.h>

#include "commands.h"
#include "log/log.h"

#define SVC (C_RUN | C_REPLAY | C_REIMPORT)
#define STATE (SVC | C_HELD) /* the commands that read the Redis state */
#define NB 1, 0              /* no bounds */

const cli_option pv_options[] = {
    {"settings", CLI_STR, NULL, NB, "PROVISIONER_SETTINGS", "settings file (YAML)",
     STATE | C_SIMULATE | C_EXPLAIN | C_CHECK_CONFIG, false},
    {"events", CLI_STR, NULL, NB, NULL, "JSON-lines change events (default: stdin)",
     C_SIMULATE | C_EXPLAIN | C_PRODUCE | C_ENCODE, false},
    {"user", CLI_STR, NULL, NB, NULL, "Salesforce user Id to explain", C_EXPLAIN, false},
    {"now", CLI_STR, NULL, NB, NULL,
     "clock for relative date literals (ISO 8601); default: each event's commitTimestamp",
     C_SIMULATE | C_EXPLAIN, false},
    {"lookups", CLI_STR, NULL, NB, NULL,
     "Profile and UserRole records for relationship filters: Salesforce's query answers (JSON, "
     "one or an array of them) or {\"Profile\": {ID: {FIELD: VALUE}}, \"UserRole\": {...}}",
     C_SIMULATE | C_EXPLAIN, false},
    {"no-why", CLI_FLAG, NULL, NB, NULL, "leave `why` and `source` out of the commands", C_SIMULATE,
     false},
    {"live", CLI_FLAG, NULL, NB, NULL,
     "explain the user as the service's state in Redis has it (--redis, --redis-prefix) instead "
     "of replaying --events",
     C_EXPLAIN, false},
    {"guards", CLI_FLAG, NULL, NB, NULL,
     "apply the settings' mass-deactivation guard (R8.3) as run does: a deactivation it holds is "
     "a warning, not a command (without it, R1-R7 only)",
     C_SIMULATE | C_EXPLAIN, false},
    {"brokers", CLI_STR, NULL, NB, "PROVISIONER_BROKERS", "Kafka bootstrap servers",
     SVC | C_PRODUCE | C_CONSUME, false},
    {"input-topic", CLI_STR, "salesforce.user.changes", NB, "PROVISIONER_INPUT_TOPIC",
     "topic of User change events", SVC, false},
    {"output-topic", CLI_STR, "gong.user.commands", NB, "PROVISIONER_OUTPUT_TOPIC",
     "topic of Gong commands", SVC, false},
    {"dlq-topic", CLI_STR, NULL, NB, "PROVISIONER_DLQ_TOPIC",
     "dead-letter topic for undecodable messages (default: input topic + .dlq)", SVC, false},
    {"group", CLI_STR, "provisioner", NB, "PROVISIONER_GROUP",
     "the service's Kafka consumer group (replay never joins it: see --replay-group)", SVC, false},
    {"redis", CLI_STR, "redis://127.0.0.1:6379", NB, "PROVISIONER_REDIS",
     "Redis URL redis://[user:password@]host:port[/db]", STATE | C_EXPLAIN, false},
    {"redis-prefix", CLI_STR, "prov:", NB, "PROVISIONER_REDIS_PREFIX", "prefix of every Redis key",
     STATE | C_EXPLAIN, false},
    {"schema-registry", CLI_STR, NULL, NB, "PROVISIONER_SCHEMA_REGISTRY",
     "Schema Registry URL (Confluent-framed input; Avro output framing)", SVC, false},
    {"output-format", CLI_STR, "json", NB, "PROVISIONER_OUTPUT_FORMAT",
     "command encoding on the output topic: json or avro", SVC, false},
    {"batch-size", CLI_INT, "2000", 1, 100000, "PROVISIONER_BATCH_SIZE",
     "most messages decided together (one Redis round trip each way)", SVC, false},
    {"batch-linger-ms", CLI_INT, "10", 0, 10000, "PROVISIONER_BATCH_LINGER_MS",
     "longest wait to fill a batch", SVC, false},
    {"batches-in-flight", CLI_INT, "3", 1, 8, "PROVISIONER_BATCHES_IN_FLIGHT",
     "batches whose commands may await Kafka's acknowledgement at once", SVC, false},
    {"placements-at-once", CLI_INT, "2000", 1, 1000000, "PROVISIONER_PLACEMENTS_AT_ONCE",
     "most waiting reports placed with their manager's batch (R6.3); more go in parts of this "
     "size right after it, so memory does not grow with a manager's reports",
     SVC, false},
    {"shutdown-timeout", CLI_INT, "25", 1, 3600, "PROVISIONER_SHUTDOWN_TIMEOUT",
     "seconds to finish the batch, commit and leave the group after SIGTERM", SVC, false},
    {"exit-when-idle", CLI_INT, NULL, 1, 86400, NULL,
     "stop cleanly after catching up and seeing nothing new for this many seconds", SVC, false},
    {"http-port", CLI_INT, "8080", 0, 65535, "PROVISIONER_HTTP_PORT",
     "port of /healthz, /readyz, /metrics and (run) POST /reimport; 0: no listener",
     C_RUN | C_REPLAY, false},
    {"http-bind", CLI_STR, "0.0.0.0", NB, "PROVISIONER_HTTP_BIND",
     "IPv4 address the HTTP listener binds to", C_RUN | C_REPLAY, false},
    {"reimport-token-file", CLI_STR, NULL, NB, "PROVISIONER_REIMPORT_TOKEN_FILE",
     "file holding the bearer token of POST /reimport (default: none, the endpoint answers 403)",
     C_RUN, false},
    {"exactly-once", CLI_FLAG, NULL, NB, "PROVISIONER_EXACTLY_ONCE",
     "commands and offsets in one Kafka transaction per batch (read the output read_committed)",
     C_RUN, false},
    {"transactional-id", CLI_STR, NULL, NB, "PROVISIONER_TRANSACTIONAL_ID",
     "transactional.id with --exactly-once (default: GROUP.HOSTNAME.PID)", C_RUN, false},
    {"salesforce-url", CLI_STR, NULL, NB, "PROVISIONER_SALESFORCE_URL",
     "the org's My Domain URL (also the token endpoint's base); replay and explain --live use "
     "Salesforce only for the look-ups of relationship filters",
     C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-api-version", CLI_STR, "v62.0", NB, "PROVISIONER_SALESFORCE_API_VERSION",
     "REST API version", C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-client-id", CLI_STR, NULL, NB, "PROVISIONER_SALESFORCE_CLIENT_ID",
     "the connected app's consumer key", C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-client-secret-file", CLI_STR, NULL, NB,
     "PROVISIONER_SALESFORCE_CLIENT_SECRET_FILE", "client-credentials flow: the secret's file",
     C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-jwt-key-file", CLI_STR, NULL, NB, "PROVISIONER_SALESFORCE_JWT_KEY_FILE",
     "JWT bearer flow: the RSA private key's file", C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN,
     false},
    {"salesforce-username", CLI_STR, NULL, NB, "PROVISIONER_SALESFORCE_USERNAME",
     "JWT bearer flow: the user to act as", C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-login-url", CLI_STR, "https://login.salesforce.com", NB,
     "PROVISIONER_SALESFORCE_LOGIN_URL", "JWT bearer flow: the token's audience",
     C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"salesforce-min-remaining-calls", CLI_INT, "0", 0, 1e9,
     "PROVISIONER_SALESFORCE_MIN_REMAINING_CALLS",
     "below this many API calls left, only essential calls are made",
     C_RUN | C_REIMPORT | C_REPLAY | C_EXPLAIN, false},
    {"confirm", CLI_FLAG, NULL, NB, NULL,
     "let the deactivations held before this run through (R8.3); new ones are guarded as always",
     C_REIMPORT, false},
    {"lookup-refresh-interval", CLI_INT, "3600", 0, 604800, "PROVISIONER_LOOKUP_REFRESH_INTERVAL",
     "seconds between reads of the Profile and UserRole tables of relationship filters (R4.3); "
     "0: at start, reload and unknown ids only",
     C_RUN, false},
    {"reimport-interval", CLI_INT, "0", 0, 604800, "PROVISIONER_REIMPORT_INTERVAL",
     "seconds between scheduled reimports (R8.2); 0: none", C_RUN, false},
    {"from-beginning", CLI_FLAG, NULL, NB, NULL, "replay from the first offset of every partition",
     C_REPLAY | C_CONSUME, false},
    {"from-timestamp", CLI_STR, NULL, NB, NULL,
     "replay from this ISO 8601 time (offsets_for_times, and older messages skipped)", C_REPLAY,
     false},
    {"offsets", CLI_STR, NULL, NB, NULL, "replay from these offsets: PARTITION:OFFSET,...",
     C_REPLAY, false},
    {"replay-group", CLI_STR, "provisioner-replay", NB, "PROVISIONER_REPLAY_GROUP",
     "the replay's own consumer group (never the service's)", C_REPLAY, false},
    {"state-prefix", CLI_STR, NULL, NB, NULL,
     "rebuild the state under this Redis prefix instead of --redis-prefix", C_REPLAY, false},
    {"dry-run", CLI_FLAG, NULL, NB, NULL,
     "decide against a scratch copy of the state, print the commands, change nothing",
     C_REPLAY | C_REIMPORT, false},
    {"topic", CLI_STR, NULL, NB, NULL, "topic to write or read", C_PRODUCE | C_CONSUME, false},
    {"schema", CLI_STR, NULL, NB, "PROVISIONER_SCHEMA",
     "Avro writer schema (.avsc) of plain values; default: the bundled one",
     C_RUN | C_REPLAY | C_ENCODE | C_DECODE | C_PRODUCE, false},
    {"schema-id", CLI_INT, NULL, 0, 2147483647, NULL,
     "frame each value with Confluent framing and this schema id", C_ENCODE | C_PRODUCE, false},
    {"bitmaps", CLI_FLAG, NULL, NB, NULL,
     "write changedFields/nulledFields/diffFields as Pub/Sub API bitmaps", C_ENCODE, false},
    {"registry", CLI_STR, NULL, NB, "PROVISIONER_SCHEMA_REGISTRY",
     "Schema Registry URL for Confluent-framed values", C_DECODE, false},
    {"out", CLI_STR, NULL, NB, NULL, "output folder", C_ENCODE, false},
    /* Kafka tooling around the service: dev-broker, produce-events, consume-commands. */
    {"partitions", CLI_INT, "4", 1, 1000, NULL, "partitions of each topic the dev broker creates",
     C_DEV_BROKER, false},
    {"topics", CLI_LIST, NULL, NB, NULL,
     "topics to create besides salesforce.user.changes, gong.user.commands and "
     "salesforce.user.changes.dlq (comma-separated)",
     C_DEV_BROKER, false},
    {"brokers-count", CLI_INT, "1", 1, 16, NULL,
     "brokers in the dev cluster (ids 1..N; replicas on up to 3 of them)", C_DEV_BROKER, false},
    {"control", CLI_FLAG, NULL, NB, NULL,
     "read fault-injection commands on stdin, one a line, answered ok/error on stdout "
     "(dev-broker --help lists them)",
     C_DEV_BROKER, false},
    {"partition", CLI_INT, NULL, 0, 1000000, NULL,
     "write every event to this partition (default: by key, the record id)", C_PRODUCE, false},
    {"count", CLI_INT, NULL, 1, 1000000000, NULL, "stop after this many messages", C_CONSUME,
     false},
    {"timeout", CLI_DOUBLE, "10", 0.1, 86400, NULL,
     "stop after this many seconds without a new message", C_CONSUME, false},
    /* A second `group`, not the service's: this one has no default and no environment variable,
     * so a reader never joins the service's group by accident. */
    {"group", CLI_STR, NULL, NB, NULL,
     "consume-commands: consumer group to join and commit in (default: none, every partition "
     "read directly)",
     C_CONSUME, false},
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
