/* ops: what the pipeline shares with the operations listener (issue 9): the health state that
 * /healthz and /readyz read, the POST /reimport request, and the pipeline's metric families. The
 * main loop writes; the HTTP thread reads: every shared field is atomic, and nothing here blocks.
 */
#ifndef PROVISIONER_PIPELINE_OPS_H
#define PROVISIONER_PIPELINE_OPS_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "engine/engine.h"
#include "metrics/metrics.h"
#include "pipeline.h"
#include "store/store.h"
#include "util/util.h"

typedef struct pipeline_health {
    _Atomic int64_t heartbeat_ms; /* pipeline_mono_ms() of the main loop's last turn */
    atomic_bool joined;           /* an assignment came, maybe of no partition (an extra replica
                                     is a member all the same, and must count as Ready) */
    atomic_bool redis_ok;         /* the last Redis step (or idle ping) succeeded */
    atomic_bool brokers_down;     /* "all brokers down" or a transport error, until a broker
                                     answers again */
    atomic_bool settings_loaded;
    atomic_bool stopping;         /* leaving the group: not ready for new traffic */
    atomic_int reimport;          /* 0: idle; PIPELINE_REIMPORT flags: queued; _RUNNING */
    int64_t stale_after_ms;       /* alive while the heartbeat is younger than this (60 s) */
} pipeline_health;

void pipeline_health_init(pipeline_health *h);
int64_t pipeline_mono_ms(void);
double pipeline_mono_s(void); /* for latencies: sub-millisecond */
void pipeline_health_beat(pipeline_health *h);
/* /healthz: the main loop turned within stale_after_ms. */
bool pipeline_health_alive(pipeline_health *h);
/* /readyz: joined, Redis and brokers reachable, settings loaded, not stopping; otherwise one line
 * per reason in why. */
bool pipeline_health_ready(pipeline_health *h, buf *why);
/* What a queued reimport is to do: always PIPELINE_REIMPORT, and the options asked for. */
enum {
    PIPELINE_REIMPORT = 1,
    PIPELINE_REIMPORT_DRY_RUN = 2, /* plan only (R8.2) */
    PIPELINE_REIMPORT_CONFIRM = 4, /* release the held deactivations (R8.3) */
    PIPELINE_REIMPORT_RUNNING = 8, /* the state while one runs, asked for or not */
};
/* POST /reimport: queues one; false when one is queued or running (one state, so that no request
 * slips in between the two). */
bool pipeline_request_reimport(pipeline_health *h, bool dry_run, bool confirm);
/* The main loop takes the queued request, which is then running until pipeline_reimport_done:
 * 0 none, else its PIPELINE_REIMPORT flags. */
int pipeline_take_reimport(pipeline_health *h);
/* A reimport the main loop starts itself (schedule, GAP_OVERFLOW) runs as one taken: requests
 * meanwhile are refused. False when a request is queued (it stays queued; the reimport runs
 * anyway and does not call pipeline_reimport_done). */
bool pipeline_reimport_begin(pipeline_health *h);
void pipeline_reimport_done(pipeline_health *h);

/* ---- settings file watching. Kubernetes updates a mounted ConfigMap by swapping the symlink
 * ..data in its directory: stat() of the path follows it to a new inode; an editor writing in
 * place changes size or mtime. Either makes the next check read the file, and a reload follows
 * only when the content differs from what was last loaded (or refused). */
typedef struct settings_sig {
    bool file_ok, dir_ok, content_ok;
    dev_t dev, dir_dev;
    ino_t ino, dir_ino;
    off_t size;
    struct timespec mtime, dir_mtime;
    uint64_t content; /* hash of the bytes */
} settings_sig;

/* Reads the signature of path (and its directory), the content hash included. */
void settings_sig_read(const char *path, settings_sig *s);
/* True when path no longer matches seen: stat first, then the content if stat moved. now is
 * filled with what was read. */
bool settings_sig_changed(const char *path, const settings_sig *seen, settings_sig *now);
/* True while the file read into s may still be being written: modified less than a second ago.
 * An editor or a copy writing in place leaves it half-written for a moment, and half a settings
 * file can be valid (fewer assignments: users out of scope); a change is taken once it settles. */
bool settings_sig_settling(const settings_sig *s);

/* ---- delivery accounting (R9.2): the delivery reports awaited for one set of produced messages
 * (each message's opaque). A set is delivered once none is outstanding; no state is stored and no
 * offset committed before. Pure counting: the caller holds the lock that guards it.
 * stale: reports still due for messages of an earlier set, given up on when a flush timed out. A
 * set started over (restart) takes that many reports as theirs, whichever messages they are for:
 * a late success of an old message can then not make a new set look delivered early, and a
 * failure among them fails the new set (read again: at worst once too often). */
typedef struct pipeline_delivery {
    size_t outstanding, stale;
    uint64_t failures;
} pipeline_delivery;

/* n more messages, counted before the first goes out (its report may come first). */
void pipeline_delivery_expect(pipeline_delivery *d, size_t n);
/* A delivery report (ok: acknowledged). One with nothing awaited changes no count. */
void pipeline_delivery_report(pipeline_delivery *d, bool ok);
/* The set starts over for new messages; what was outstanding becomes stale. */
void pipeline_delivery_restart(pipeline_delivery *d);
/* n messages counted were not handed to the producer (refused): no report comes for them. With
 * as_failed they count as failed deliveries. */
void pipeline_delivery_refused(pipeline_delivery *d, size_t n, bool as_failed);

/* ---- the pipeline's metric families: registered at once, so every name is on /metrics (at 0)
 * from the start and rate() has a first sample. */
typedef struct lag_series {
    int32_t partition;
    metric *m;
    int64_t committed; /* fallback position until something is consumed; INVALID: not read yet */
    bool seen;
} lag_series;

/* The steps of a batch on the main thread, each timed (provisioner_batch_step_seconds): where a
 * backlog's time goes, deciding or waiting for Redis or Kafka. */
typedef enum {
    PIPELINE_STEP_COLLECT,  /* taking the batch's messages, the linger included */
    PIPELINE_STEP_DECODE,   /* Avro to events */
    PIPELINE_STEP_PREFETCH, /* reading the batch's users from Redis, retries included */
    PIPELINE_STEP_DECIDE,   /* the engine, commands formatted */
    PIPELINE_STEP_SEAL,     /* the state write built */
    PIPELINE_STEP_PLACE,    /* R6.3: a manager's waiting reports placed, the batch finished first */
    PIPELINE_STEP_FLIGHTS,  /* waiting for older batches' acknowledgements and state writes */
    PIPELINE_STEP_HAND_OVER,   /* waiting for the sender to take the batch's commands */
    PIPELINE_STEP_TRANSACTION, /* --exactly-once: produce, store and commit in a transaction */
    PIPELINE_STEP__COUNT
} pipeline_step;

/* The step's label on /metrics and in the "stopped" log line. */
const char *pipeline_step_name(pipeline_step step);

typedef struct pipeline_metrics {
    metrics *reg;
    metric *events[CHANGE__COUNT];
    metric *messages;
    metric *skipped_duplicate, *skipped_stale, *skipped_not_user;
    metric *commands[CMD__COUNT];
    metric *decisions[REASON__COUNT]; /* [REASON_NONE]: reason="in_scope" */
    metric *gaps_unresolved, *stale_images, *overflows, *cycles_refused;
    metric *decode_errors, *dead_lettered, *dropped_on_revoke;
    metric *batch_size, *end_to_end, *redis_prefetch, *redis_flush, *produce;
    metric *steps[PIPELINE_STEP__COUNT]; /* provisioner_batch_step_seconds{step} */
    metric *redis_round_trips, *redis_misses, *redis_old_form, *users_written, *redis_retries;
    metric *rebalances, *produce_failures, *transactions, *transaction_aborts, *fetch_wakes;
    metric *assigned, *held_deactivations, *sf_used, *sf_max;
    metric *reload_ok, *reload_error, *reload_failing;
    metric *reimports;
    /* R4.3: reads of the Profile and UserRole tables, their sizes and age */
    metric *lookup_ok, *lookup_error, *lookup_profiles, *lookup_roles, *lookup_age;
    lag_series *lag;
    size_t n_lag;
    int64_t lag_epoch;
    /* the counters already published: the sources count up from their start, metrics add the
     * difference (an engine replaced by a settings reload starts again from zero) */
    engine_stats eng_seen;
    store_redis_stats store_seen;
    pipeline_stats pipe_seen;
    uint64_t held; /* R8.3 deactivations this instance held since it started (the gauge) */
} pipeline_metrics;

void pipeline_metrics_init(pipeline_metrics *pm, metrics *reg);
void pipeline_metrics_free(pipeline_metrics *pm);
/* Adds what the counters gained since the last call. Any argument may be NULL. */
void pipeline_metrics_publish(pipeline_metrics *pm, const engine_stats *es,
                              const store_redis_stats *ss, const pipeline_stats *ps);
/* The engine was replaced: its successor counts from zero. */
void pipeline_metrics_engine_replaced(pipeline_metrics *pm);
/* Deactivations a reimport held (R8.3): its engine is not the one publish reads. */
void pipeline_metrics_held(pipeline_metrics *pm, uint64_t n);
/* provisioner_redis_retries_total up to total (retries so far), at once, and nothing else: the
 * other pipeline counters wait for the batches in flight (pipeline_metrics_publish). */
void pipeline_metrics_redis_retries(pipeline_metrics *pm, uint64_t total);
/* Consumer lag per assigned partition, from the consumer's position and the high watermarks of
 * its last fetch responses (cached: no request), and the assigned partition count. A partition
 * with no position yet (nothing consumed since assignment) falls back to its committed offset,
 * asked once per assignment (assignment_epoch changes with each rebalance). Series of partitions
 * no longer assigned are removed. */
void pipeline_metrics_lag(pipeline_metrics *pm, rd_kafka_t *consumer, int64_t assignment_epoch);

#endif
