/* pipeline: the service (`provisioner run`). Data flows one way, batch by batch:
 *   Kafka bytes -> codec_decode -> event -> engine (state in Redis beside it) -> commands ->
 *   codec encode -> Kafka bytes
 * and the input offsets are committed only after the commands are acknowledged by Kafka and the
 * states are stored in Redis (R9.2). */
#ifndef PROVISIONER_PIPELINE_H
#define PROVISIONER_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "codec/codec.h"
#include "config/config.h"
#include "engine/engine.h"
#include "util/util.h"

/* Where a replay starts (R9.3); `run` starts from the group's committed offsets. */
typedef enum {
    START_COMMITTED = 0,
    START_BEGINNING,
    START_TIMESTAMP,
    START_OFFSETS,
} pipeline_start;

typedef struct pipeline_offset {
    int32_t partition;
    int64_t offset;
} pipeline_offset;

/* Batches whose commands may be on their way to Kafka at once (at-least-once mode) by default.
 * Several are safe because a delivery counts only with an offset (kafka_delivered: librdkafka's
 * implicit acknowledgements had hidden lost commands on the dev broker, issue 10). */
#define PIPELINE_FLIGHTS 3
#define PIPELINE_PLACEMENTS 2000

typedef struct pipeline_opts {
    const char *brokers;
    const char *input_topic;
    const char *output_topic;
    const char *dlq_topic;
    const char *group;
    const char *redis_url;
    const char *redis_prefix;
    const char *registry;    /* NULL: plain Avro input only */
    const char *schema;      /* .avsc file of the plain values' writer; NULL: the bundled schema */
    const char *schema_avsc; /* its text, read by the caller */
    size_t schema_avsc_len;
    codec_format output_format;
    int batch_size;
    int linger_ms;
    int batches_in_flight;  /* produced, not yet acknowledged; 0: PIPELINE_FLIGHTS */
    int placements_at_once; /* R6.3 placements with the manager's batch; 0: PIPELINE_PLACEMENTS */
    int shutdown_timeout_s;
    int exit_when_idle_s;     /* 0: run until signalled */
    char *const *kafka_props; /* "name=value" pass-through librdkafka properties */
    size_t n_kafka_props;
    const config *cfg;
    volatile sig_atomic_t *stop; /* set by the signal handler; the loop acts on it */
    /* replay (R9.3): assign the input's partitions at these positions instead of subscribing,
     * and stop once the end offsets seen at start are reached */
    pipeline_start start;
    int64_t from_timestamp_ms;      /* START_TIMESTAMP: messages older than this are skipped */
    const pipeline_offset *offsets; /* START_OFFSETS */
    size_t n_offsets;
    bool stop_at_end;
    /* decide against a scratch copy of the state (read from Redis, never written) and print
     * the commands as JSON lines on dry_run_out instead of producing them; commit nothing */
    bool dry_run;
    FILE *dry_run_out;
    bool progress; /* a progress line on stderr (a terminal) */
    /* exactly-once (R9.2): each batch's commands and offsets in one Kafka transaction; the
     * batch's commands are kept in Redis until the transaction is known to be committed */
    bool exactly_once;
    const char *transactional_id;
    /* Salesforce (R1.3 gap events, R8 reimports); NULL: gaps are reported, not resolved */
    struct sf_client *sf;
    /* Salesforce for the look-up tables of relationship filters only (R4.3), when gaps and
     * reimports must not use it (replay); NULL: sf */
    struct sf_client *lookup_sf;
    int reimport_interval_s; /* scheduled reimports (R8.2); 0: none */
    /* R4.3: seconds between reads of the Profile and UserRole tables relationship filters use;
     * 0: only at start, at a settings reload and when an event names an unknown id */
    int lookup_refresh_s;
    /* operations (issue 9; internal/pipeline/ops.h); each may be NULL (replay leaves them so) */
    struct metrics *metrics;        /* the registry /metrics renders; NULL: a private one */
    struct pipeline_health *health; /* what /healthz and /readyz read; NULL: a private one */
    /* the settings file behind cfg, reloaded between batches when *reload is set (SIGHUP) or the
     * file changes; a file that does not load is refused and cfg stays in force */
    const char *settings_path;
    volatile sig_atomic_t *reload;
} pipeline_opts;

/* Counters shared with the metrics endpoint and the final log line. */
typedef struct pipeline_stats {
    uint64_t messages;
    uint64_t batches;
    uint64_t dead_lettered;
    uint64_t decode_errors;
    uint64_t commands_produced;
    uint64_t produce_failures;
    uint64_t redis_retries;
    uint64_t late_resolutions;
    uint64_t rebalances;
    uint64_t dropped_on_revoke;
    uint64_t transactions;
    uint64_t transaction_aborts;
    uint64_t recovered_batches;
    uint64_t gaps_resolved;
    uint64_t reimports;
    uint64_t fetch_wakes; /* kafka_waker */
} pipeline_stats;

/* Runs until *stop is set (then finishes the batch, commits and leaves the group within the
 * shutdown timeout) or, with exit_when_idle_s, until the input has been quiet that long. Returns 0,
 * or -1 with err for a fatal error (bad configuration, fatal Kafka error). */
int pipeline_run(const pipeline_opts *o, perr *err);

#endif
