#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command/command.h"
#include "event/event.h"

/* ---------------------------------------------------------------- health */

int64_t pipeline_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double pipeline_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pipeline_health_init(pipeline_health *h)
{
    atomic_init(&h->heartbeat_ms, pipeline_mono_ms());
    atomic_init(&h->joined, false);
    atomic_init(&h->redis_ok, false);
    atomic_init(&h->brokers_down, false);
    atomic_init(&h->settings_loaded, false);
    atomic_init(&h->stopping, false);
    atomic_init(&h->reimport, 0);
    /* A batch takes well under a second, and every loop that waits (Redis, Kafka, the registry)
     * beats while it waits; a minute without a turn is a stuck process, which a restart mends. */
    h->stale_after_ms = 60000;
}

void pipeline_health_beat(pipeline_health *h)
{
    atomic_store(&h->heartbeat_ms, pipeline_mono_ms());
}

bool pipeline_health_alive(pipeline_health *h)
{
    return pipeline_mono_ms() - atomic_load(&h->heartbeat_ms) < h->stale_after_ms;
}

bool pipeline_health_ready(pipeline_health *h, buf *why)
{
    size_t before = why->len;
    if (atomic_load(&h->stopping)) buf_puts(why, "not ready: shutting down\n");
    if (!atomic_load(&h->settings_loaded)) buf_puts(why, "not ready: settings not loaded\n");
    if (!atomic_load(&h->joined))
        buf_puts(why, "not ready: not a member of the consumer group yet\n");
    if (!atomic_load(&h->redis_ok))
        buf_puts(why, "not ready: Redis unreachable or refusing commands\n");
    if (atomic_load(&h->brokers_down)) buf_puts(why, "not ready: Kafka brokers unreachable\n");
    if (!pipeline_health_alive(h)) buf_puts(why, "not ready: the main loop is stuck\n");
    return why->len == before;
}

bool pipeline_request_reimport(pipeline_health *h, bool dry_run, bool confirm)
{
    int idle = 0, want = PIPELINE_REIMPORT | (dry_run ? PIPELINE_REIMPORT_DRY_RUN : 0) |
                         (confirm ? PIPELINE_REIMPORT_CONFIRM : 0);
    return atomic_compare_exchange_strong(&h->reimport, &idle, want);
}

int pipeline_take_reimport(pipeline_health *h)
{
    int req = atomic_load(&h->reimport);
    if (!req || req == PIPELINE_REIMPORT_RUNNING) return 0;
    /* only the main loop moves a queued request on: the exchange cannot fail */
    return atomic_compare_exchange_strong(&h->reimport, &req, PIPELINE_REIMPORT_RUNNING) ? req : 0;
}

bool pipeline_reimport_begin(pipeline_health *h)
{
    int idle = 0;
    return atomic_compare_exchange_strong(&h->reimport, &idle, PIPELINE_REIMPORT_RUNNING);
}

void pipeline_reimport_done(pipeline_health *h)
{
    int running = PIPELINE_REIMPORT_RUNNING;
    atomic_compare_exchange_strong(&h->reimport, &running, 0);
}

/* ---------------------------------------------------------------- settings file */

static void stat_part(const char *path, settings_sig *s)
{
    struct stat st;
    s->file_ok = stat(path, &st) == 0;
    if (s->file_ok) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->size = st.st_size;
        s->mtime = st.st_mtim;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    s->dir_ok = stat(dir, &st) == 0;
    if (s->dir_ok) {
        s->dir_dev = st.st_dev;
        s->dir_ino = st.st_ino;
        s->dir_mtime = st.st_mtim;
    }
}

static void hash_content(const char *path, settings_sig *s)
{
    s->content_ok = false;
    s->content = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    uint64_t h = HASH64_SEED;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        h = hash64(chunk, n, h);
    s->content_ok = !ferror(f);
    s->content = h;
    fclose(f);
}

void settings_sig_read(const char *path, settings_sig *s)
{
    memset(s, 0, sizeof *s);
    stat_part(path, s);
    hash_content(path, s);
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool settings_sig_changed(const char *path, const settings_sig *seen, settings_sig *now)
{
    memset(now, 0, sizeof *now);
    stat_part(path, now);
    bool moved =
        now->file_ok != seen->file_ok || now->dir_ok != seen->dir_ok ||
        (now->file_ok && (now->dev != seen->dev || now->ino != seen->ino ||
                          now->size != seen->size || !same_time(now->mtime, seen->mtime))) ||
        (now->dir_ok && (now->dir_dev != seen->dir_dev || now->dir_ino != seen->dir_ino ||
                         !same_time(now->dir_mtime, seen->dir_mtime)));
    if (!moved) {
        *now = *seen;
        return false;
    }
    hash_content(path, now);
    /* a touch, or another file of the directory: the same bytes need no reload */
    return now->content_ok != seen->content_ok || now->content != seen->content;
}

bool settings_sig_settling(const settings_sig *s)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age_ms =
        (int64_t)(now.tv_sec - s->mtime.tv_sec) * 1000 + (now.tv_nsec - s->mtime.tv_nsec) / 1000000;
    return s->file_ok && age_ms >= -1000 && age_ms < 1000; /* a clock set back: not waited for */
}

/* ---------------------------------------------------------------- metrics */

static metric *counter(metrics *r, const char *name, const char *help, const char *fmt,
                       const char *value)
{
    char labels[256] = "";
    if (fmt) snprintf(labels, sizeof labels, fmt, value);
    return metrics_counter(r, name, help, labels);
}

const char *pipeline_step_name(pipeline_step step)
{
    static const char *const names[PIPELINE_STEP__COUNT] = {"collect", "decode",    "prefetch",
                                                            "decide",  "seal",      "place",
                                                            "flights", "hand_over", "transaction"};
    return (unsigned)step < PIPELINE_STEP__COUNT ? names[step] : "unknown";
}

void pipeline_metrics_init(pipeline_metrics *pm, metrics *r)
{
    memset(pm, 0, sizeof *pm);
    pm->reg = r;
    pm->messages = metrics_counter(r, "provisioner_messages_consumed_total",
                                   "Input messages in finished batches, decodable or not.", "");
    for (int i = 0; i < CHANGE__COUNT; i++)
        pm->events[i] = counter(r, "provisioner_events_consumed_total",
                                "Change events decided in finished batches, by change type.",
                                "change_type=\"%s\"", change_type_name((change_type)i));
    const char *skip_help = "Events that changed nothing: duplicate or stale position (R1.4), or "
                            "not a User (R1.1).";
    pm->skipped_duplicate =
        counter(r, "provisioner_events_skipped_total", skip_help, "reason=\"%s\"", "duplicate");
    pm->skipped_stale =
        counter(r, "provisioner_events_skipped_total", skip_help, "reason=\"%s\"", "stale");
    pm->skipped_not_user =
        counter(r, "provisioner_events_skipped_total", skip_help, "reason=\"%s\"", "not_user");
    for (int i = 0; i < CMD__COUNT; i++)
        pm->commands[i] = counter(r, "provisioner_commands_produced_total",
                                  "Gong commands acknowledged by Kafka, by type.", "type=\"%s\"",
                                  command_type_name((command_type)i));
    for (int i = 0; i < REASON__COUNT; i++)
        pm->decisions[i] = counter(
            r, "provisioner_decisions_total",
            "Scope decisions (R3) by reason code; in_scope when every rule passed.",
            "reason=\"%s\"", i == REASON_NONE ? "in_scope" : engine_reason_name((reason_code)i));
    pm->gaps_unresolved =
        metrics_counter(r, "provisioner_gap_events_unresolved_total",
                        "GAP events whose user was marked for reconciliation (R1.3).", "");
    pm->stale_images = metrics_counter(
        r, "provisioner_stale_images_total",
        "CREATE or UNDELETE events dropped as stale (R1.4) whose user was never provisioned and "
        "has no email: read out of order across partitions; a reimport (R8) provisions them.",
        "");
    pm->overflows = metrics_counter(r, "provisioner_gap_overflows_total",
                                    "Events about every user, GAP_OVERFLOW or recordIds '005*': "
                                    "changes Salesforce did not send.",
                                    "");
    pm->cycles_refused = metrics_counter(r, "provisioner_manager_cycles_refused_total",
                                         "Manager links refused because of a cycle (R6.4).", "");
    pm->decode_errors = metrics_counter(r, "provisioner_decode_errors_total",
                                        "Input messages that could not be decoded.", "");
    pm->dead_lettered = metrics_counter(r, "provisioner_dead_lettered_total",
                                        "Messages written to the dead-letter topic (undecodable or "
                                        "invalid events, commands too large for Kafka).",
                                        "");
    pm->dropped_on_revoke =
        metrics_counter(r, "provisioner_revoked_messages_total",
                        "Messages dropped mid-batch because a rebalance took their partition "
                        "(the next owner reads them again).",
                        "");
    pm->batch_size = metrics_histogram(r, "provisioner_batch_size", "Messages per finished batch.",
                                       "", metrics_size_buckets, metrics_n_size_buckets);
    pm->end_to_end = metrics_histogram(
        r, "provisioner_end_to_end_latency_seconds",
        "From the input message's Kafka timestamp to its batch being finished (commands "
        "acknowledged, state stored, offsets committed).",
        "", metrics_latency_buckets, metrics_n_latency_buckets);
    const char *redis_help = "Redis round trips of a batch: the prefetch of its users and the "
                             "write-back of their states.";
    pm->redis_prefetch =
        metrics_histogram(r, "provisioner_redis_latency_seconds", redis_help, "op=\"prefetch\"",
                          metrics_latency_buckets, metrics_n_latency_buckets);
    pm->redis_flush =
        metrics_histogram(r, "provisioner_redis_latency_seconds", redis_help, "op=\"flush\"",
                          metrics_latency_buckets, metrics_n_latency_buckets);
    pm->produce = metrics_histogram(
        r, "provisioner_produce_latency_seconds",
        "Producing a batch's commands and dead letters until Kafka acknowledged them all.", "",
        metrics_latency_buckets, metrics_n_latency_buckets);
    for (int i = 0; i < PIPELINE_STEP__COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "step=\"%s\"", pipeline_step_name((pipeline_step)i));
        pm->steps[i] = metrics_histogram(
            r, "provisioner_batch_step_seconds",
            "Time the main thread spent in each step of a batch (rate of the sum: the share of "
            "the time; retries and waits included).",
            labels, metrics_latency_buckets, metrics_n_latency_buckets);
    }
    pm->redis_round_trips =
        metrics_counter(r, "provisioner_redis_round_trips_total", "Round trips to Redis.", "");
    pm->redis_misses =
        metrics_counter(r, "provisioner_redis_misses_total",
                        "Users read from Redis outside a prefetch (one round trip each).", "");
    pm->redis_old_form = metrics_counter(
        r, "provisioner_redis_old_form_reads_total",
        "Users read in the hash form of earlier builds (one round trip more; their next write "
        "stores them as strings).",
        "");
    pm->users_written =
        metrics_counter(r, "provisioner_redis_users_written_total", "User states written.", "");
    pm->redis_retries =
        metrics_counter(r, "provisioner_redis_retries_total",
                        "Redis steps retried after a failure, and failed idle checks.", "");
    pm->rebalances = metrics_counter(r, "provisioner_rebalances_total",
                                     "Partition assignments and revocations.", "");
    pm->produce_failures =
        metrics_counter(r, "provisioner_produce_failures_total",
                        "Batches whose commands Kafka did not acknowledge (read again).", "");
    pm->transactions = metrics_counter(r, "provisioner_transactions_total",
                                       "Kafka transactions committed (--exactly-once).", "");
    pm->transaction_aborts = metrics_counter(r, "provisioner_transaction_aborts_total",
                                             "Kafka transactions aborted and retried.", "");
    pm->fetch_wakes =
        metrics_counter(r, "provisioner_fetch_wakeups_total",
                        "Times the consumer's fetcher was woken after its queue was above half of "
                        "queued.min.messages and drained to half (a backlog is being read).",
                        "");
    pm->assigned = metrics_gauge(r, "provisioner_assigned_partitions",
                                 "Input partitions this instance owns.", "");
    /* the family before any partition is known, so that its HELP and TYPE are there */
    metrics_remove(r, metrics_gauge(r, "provisioner_consumer_lag",
                                    "Messages behind the high watermark, per owned partition.",
                                    "partition=\"-1\""));
    pm->held_deactivations =
        metrics_gauge(r, "provisioner_held_deactivations",
                      "Deactivations held by the mass-deactivation guard (R8.3).", "");
    pm->sf_used = metrics_gauge(r, "provisioner_salesforce_api_used",
                                "Salesforce API calls used in the org's 24-hour window.", "");
    pm->sf_max = metrics_gauge(r, "provisioner_salesforce_api_max",
                               "The org's Salesforce API call allowance per 24 hours.", "");
    const char *reload_help = "Settings reloads (SIGHUP or a changed file), by result.";
    pm->reload_ok =
        counter(r, "provisioner_settings_reloads_total", reload_help, "result=\"%s\"", "ok");
    pm->reload_error =
        counter(r, "provisioner_settings_reloads_total", reload_help, "result=\"%s\"", "error");
    pm->reload_failing = metrics_gauge(
        r, "provisioner_settings_reload_failing",
        "1 while the newest settings file was refused and older settings are in force.", "");
    pm->reimports =
        metrics_counter(r, "provisioner_reimport_requests_total",
                        "Reimports requested over HTTP and taken by the main loop.", "");
    const char *reads_help = "Reads of the Profile and UserRole tables of relationship filters "
                             "(R4.3), by result.";
    pm->lookup_ok = counter(r, "provisioner_lookup_reads_total", reads_help, "result=\"%s\"", "ok");
    pm->lookup_error =
        counter(r, "provisioner_lookup_reads_total", reads_help, "result=\"%s\"", "error");
    const char *rows_help = "Records in the look-up tables of relationship filters (R4.3).";
    pm->lookup_profiles =
        metrics_gauge(r, "provisioner_lookup_records", rows_help, "object=\"Profile\"");
    pm->lookup_roles =
        metrics_gauge(r, "provisioner_lookup_records", rows_help, "object=\"UserRole\"");
    pm->lookup_age = metrics_gauge(r, "provisioner_lookup_age_seconds",
                                   "Seconds since the look-up tables were last read; 0 when "
                                   "no filter needs them.",
                                   "");
}

void pipeline_metrics_free(pipeline_metrics *pm)
{
    for (size_t i = 0; i < pm->n_lag; i++)
        metrics_remove(pm->reg, pm->lag[i].m);
    free(pm->lag);
    pm->lag = NULL;
    pm->n_lag = 0;
}

static void add_delta(metric *m, uint64_t now, uint64_t *seen)
{
    if (now > *seen) metric_add(m, now - *seen);
    *seen = now;
}

/* Decided events: those not skipped as duplicate, stale or unresolvable gap; in scope: decided
 * and no reason out. Derived, since the engine counts only the reasons out. */
static uint64_t in_scope_of(const engine_stats *s)
{
    uint64_t out = 0, skipped = s->duplicates + s->stale + s->gaps_unresolved;
    for (int i = 0; i < REASON__COUNT; i++)
        out += s->out_of_scope[i];
    return s->user_events > skipped + out ? s->user_events - skipped - out : 0;
}

void pipeline_metrics_publish(pipeline_metrics *pm, const engine_stats *es,
                              const store_redis_stats *ss, const pipeline_stats *ps)
{
    if (es) {
        engine_stats *seen = &pm->eng_seen;
        uint64_t in_now = in_scope_of(es), in_seen = in_scope_of(seen); /* before seen moves */
        if (in_now > in_seen) metric_add(pm->decisions[REASON_NONE], in_now - in_seen);
        add_delta(pm->skipped_duplicate, es->duplicates, &seen->duplicates);
        add_delta(pm->skipped_stale, es->stale, &seen->stale);
        add_delta(pm->skipped_not_user, es->skipped_entity, &seen->skipped_entity);
        add_delta(pm->gaps_unresolved, es->gaps_unresolved, &seen->gaps_unresolved);
        add_delta(pm->stale_images, es->stale_images, &seen->stale_images);
        add_delta(pm->overflows, es->overflows, &seen->overflows);
        add_delta(pm->cycles_refused, es->cycles_refused, &seen->cycles_refused);
        if (es->held_deactivations > seen->held_deactivations)
            pipeline_metrics_held(pm, es->held_deactivations - seen->held_deactivations);
        seen->held_deactivations = es->held_deactivations;
        for (int i = 0; i < REASON__COUNT; i++)
            if (i != REASON_NONE)
                add_delta(pm->decisions[i], es->out_of_scope[i], &seen->out_of_scope[i]);
        seen->out_of_scope[REASON_NONE] = es->out_of_scope[REASON_NONE];
        seen->user_events = es->user_events;
    }
    if (ss) {
        add_delta(pm->redis_round_trips, ss->round_trips, &pm->store_seen.round_trips);
        add_delta(pm->redis_misses, ss->misses, &pm->store_seen.misses);
        add_delta(pm->redis_old_form, ss->old_form, &pm->store_seen.old_form);
        add_delta(pm->users_written, ss->users_written, &pm->store_seen.users_written);
    }
    if (ps) {
        pipeline_stats *seen = &pm->pipe_seen;
        add_delta(pm->decode_errors, ps->decode_errors, &seen->decode_errors);
        add_delta(pm->redis_retries, ps->redis_retries, &seen->redis_retries);
        add_delta(pm->rebalances, ps->rebalances, &seen->rebalances);
        add_delta(pm->produce_failures, ps->produce_failures, &seen->produce_failures);
        add_delta(pm->dropped_on_revoke, ps->dropped_on_revoke, &seen->dropped_on_revoke);
        add_delta(pm->transactions, ps->transactions, &seen->transactions);
        add_delta(pm->transaction_aborts, ps->transaction_aborts, &seen->transaction_aborts);
        add_delta(pm->fetch_wakes, ps->fetch_wakes, &seen->fetch_wakes);
    }
}

void pipeline_metrics_redis_retries(pipeline_metrics *pm, uint64_t total)
{
    add_delta(pm->redis_retries, total, &pm->pipe_seen.redis_retries);
}

void pipeline_metrics_held(pipeline_metrics *pm, uint64_t n)
{
    pm->held += n;
    metric_set(pm->held_deactivations, (double)pm->held);
}

void pipeline_metrics_engine_replaced(pipeline_metrics *pm)
{
    memset(&pm->eng_seen, 0, sizeof pm->eng_seen);
}

static lag_series *lag_of(pipeline_metrics *pm, int32_t partition)
{
    for (size_t i = 0; i < pm->n_lag; i++)
        if (pm->lag[i].partition == partition) return &pm->lag[i];
    char labels[48];
    snprintf(labels, sizeof labels, "partition=\"%d\"", partition);
    pm->lag = xrealloc(pm->lag, (pm->n_lag + 1) * sizeof *pm->lag);
    lag_series *l = &pm->lag[pm->n_lag++];
    l->partition = partition;
    l->m = metrics_gauge(pm->reg, "provisioner_consumer_lag",
                         "Messages behind the high watermark, per owned partition.", labels);
    l->committed = RD_KAFKA_OFFSET_INVALID;
    l->seen = true;
    return l;
}

void pipeline_metrics_lag(pipeline_metrics *pm, rd_kafka_t *rk, int64_t assignment_epoch)
{
    if (assignment_epoch != pm->lag_epoch) { /* committed offsets read before may be old now */
        for (size_t i = 0; i < pm->n_lag; i++)
            pm->lag[i].committed = RD_KAFKA_OFFSET_INVALID;
        pm->lag_epoch = assignment_epoch;
    }
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    rd_kafka_position(rk, parts); /* local: the offset after the last message handed to us */
    for (size_t i = 0; i < pm->n_lag; i++)
        pm->lag[i].seen = false;
    rd_kafka_topic_partition_list_t *ask = NULL; /* no position and no committed offset known */
    for (int i = 0; i < parts->cnt; i++) {
        lag_series *l = lag_of(pm, parts->elems[i].partition);
        l->seen = true;
        if (parts->elems[i].offset < 0 && l->committed == RD_KAFKA_OFFSET_INVALID) {
            if (!ask) ask = rd_kafka_topic_partition_list_new(4);
            rd_kafka_topic_partition_list_add(ask, parts->elems[i].topic,
                                              parts->elems[i].partition);
        }
    }
    /* Once per assignment and only for partitions nothing was consumed from (an idle one would
     * otherwise never show a lag): a request to the group coordinator, with a short timeout. */
    if (ask && rd_kafka_committed(rk, ask, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < ask->cnt; i++) {
            if (ask->elems[i].err) continue;
            lag_series *l = lag_of(pm, ask->elems[i].partition);
            /* none committed yet: the group starts at the beginning (auto.offset.reset) */
            l->committed =
                ask->elems[i].offset >= 0 ? ask->elems[i].offset : RD_KAFKA_OFFSET_BEGINNING;
        }
    }
    if (ask) rd_kafka_topic_partition_list_destroy(ask);
    for (int i = 0; i < parts->cnt; i++) {
        lag_series *l = lag_of(pm, parts->elems[i].partition);
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(rk, parts->elems[i].topic, parts->elems[i].partition,
                                           &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue; /* no fetch response yet: unknown, keep the last value */
        int64_t pos = parts->elems[i].offset;
        if (pos < 0) pos = l->committed == RD_KAFKA_OFFSET_BEGINNING ? lo : l->committed;
        if (pos < 0) continue;
        metric_set(l->m, (double)(hi > pos ? hi - pos : 0));
    }
    size_t kept = 0;
    for (size_t i = 0; i < pm->n_lag; i++) {
        if (pm->lag[i].seen)
            pm->lag[kept++] = pm->lag[i];
        else
            metrics_remove(pm->reg, pm->lag[i].m);
    }
    pm->n_lag = kept;
    metric_set(pm->assigned, parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* ---------------------------------------------------------------- delivery accounting */

void pipeline_delivery_expect(pipeline_delivery *d, size_t n) { d->outstanding += n; }

void pipeline_delivery_report(pipeline_delivery *d, bool ok)
{
    if (!ok) d->failures++; /* a stale one's too: the new messages are read again */
    if (d->stale)
        d->stale--;
    else if (d->outstanding)
        d->outstanding--;
}

void pipeline_delivery_restart(pipeline_delivery *d)
{
    d->stale += d->outstanding;
    d->outstanding = 0;
    d->failures = 0;
}

void pipeline_delivery_refused(pipeline_delivery *d, size_t n, bool as_failed)
{
    if (as_failed) d->failures += n;
    /* reports take the stale count down first, so outstanding still holds every message not
     * reported, these among them */
    d->outstanding -= n <= d->outstanding ? n : d->outstanding;
}
