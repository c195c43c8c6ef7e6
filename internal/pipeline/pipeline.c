/* The batch loop of `provisioner run`. One batch:
 *   1. poll up to batch_size messages or linger_ms;
 *   2. decode each (undecodable -> dead-letter list, R9.4);
 *   3. prefetch every user the batch names in one Redis round trip (one more for the waiting
 *      sets that have members, R6.3);
 *   4. decide every event in order; encoded commands are buffered, not yet produced;
 *   5. produce commands and dead letters, wait for every delivery report;
 *   6. write the states in one Redis round trip (and resolve links another instance raced with);
 *   7. commit the batch's offsets.
 * A crash anywhere before 7 redelivers the batch; the events whose state was written are then
 * stale (R1.4) and produce nothing; those whose state was not are decided again with the same
 * command ids (R9.1), so nothing is lost and a consumer can drop duplicates (R9.2).
 * In at-least-once mode the next batch is decided (1-4) while this one waits in 5; see "overlap"
 * below. */
#include "pipeline.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kafka/kafka.h"
#include "log/log.h"
#include "lookup/lookup.h"
#include "ops.h"
#include "reimport/reimport.h"
#include "salesforce/salesforce.h"
#include "store/store.h"

typedef struct out_msg {
    size_t key_off, key_len, val_off, val_len;
    command_type type;
    char id[33];
    int32_t src_partition;
    int64_t src_offset;
    bool dead_letter;
    char err_kind[32];
    size_t err_off, err_len;
} out_msg;

typedef struct revoked {
    char topic[256];
    int32_t partition;
} revoked;

/* The delivery reports awaited for one set of produced messages (ops.h); its counts change under
 * the sender's lock (the sender counts the messages the producer refuses). */
typedef pipeline_delivery delivery;

/* The sender: a thread that hands a flight's messages to the producer (at-least-once mode), so
 * that the main thread decides the next batch meanwhile instead of building each message's
 * headers and its copy in the producer, ~10% of its time. One job at a time: the messages of the
 * flight just made; their keys and values in `bytes`, the job's own buffer, swapped with the main
 * thread's. A message the producer refuses counts as not delivered: the flight is read again, as
 * when a delivery fails. The delivery reports are served by the poller, not by the sender (see
 * poller). */
typedef struct sender {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job posted, a job done, stop */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    bool queued, busy; /* under mu */
    const out_msg *outs;
    size_t n_outs;
    buf bytes;
    delivery *dl;
    pthread_cond_t reported; /* on_delivery counted a report, or a fatal error came */
} sender;

/* The producer's delivery reports (and error callbacks) are served by a thread of their own, which
 * does nothing else: served on the main thread, freeing each message's copy and headers was ~4%
 * of its instructions; served by the sender, a main thread waiting for a flight's reports waited
 * for the sender's next job first (README, "Twenty-second round"). The main thread waits on
 * sender.reported instead. */
typedef struct poller {
    pthread_t thread;
    bool running;
    atomic_bool stop;
} poller;

/* A batch whose commands are on their way to Kafka while later ones are decided (at-least-once
 * mode): its messages, events and commands, and its state write, sealed and held back until every
 * delivery report is in (R9.2). Flights finish in the order they were produced. */
#define MAX_FLIGHTS 16 /* slots: twice --batches-in-flight, for those writing */
/* Counters, read (tally_take) around a step so that what it added can be taken back when its
 * work is thrown away: a decision made again, a batch read again. Each event then counts once,
 * as decided in the end, and what other batches' work added meanwhile stays. */
typedef struct tally {
    engine_stats eng;
    uint64_t dead_lettered, decode_errors, gaps_resolved;
} tally;

typedef struct flight {
    rd_kafka_message_t **msgs;
    size_t n_msgs;
    event *events;
    bool *ok;
    arena mem;
    out_msg *outs; /* their keys and values are the producer's copies by now */
    size_t n_outs, cap_outs;
    store_write *w;
    delivery dl;
    bool writing; /* delivered; its state write sent ahead, not retired yet */
    double produced_at;
    tally counted; /* what its decoding and decisions added to the counters */
} flight;

/* A replayed partition: the end offset seen at start and how far it has been read. */
struct part_end {
    int32_t partition;
    int64_t end;
    int64_t next;
};

typedef struct pipeline {
    const pipeline_opts *o;
    pipeline_stats stats;
    rd_kafka_t *consumer;
    kafka_waker *waker;
    rd_kafka_t *producer;
    codec_decoder *dec;
    codec_command_encoder *enc;
    store_redis *store;
    engine *eng;
    engine_hooks hooks;
    /* the batch */
    rd_kafka_message_t **msgs;
    size_t n_msgs;
    event *events;
    bool *ok;
    arena mem;
    buf bytes; /* keys, values and error texts of out_msgs */
    out_msg *outs;
    size_t n_outs, cap_outs;
    buf scratch;
    const rd_kafka_message_t *current; /* the message being decided, for command sources */
    size_t current_i;                  /* its index in msgs */
    size_t max_message;                /* the producer's message.max.bytes */
    /* the current event made a command over max_message: its decision is thrown away and the
     * event dead-lettered (what it would have been: type, its encoded size) */
    struct too_big {
        bool set;
        command_type type;
        size_t bytes;
        char user[64]; /* its sf_user_id */
    } too_big;
    /* R6.3 placements left to after the batch (--placements-at-once): the first event of the
     * batch that made a manager with more waiting reports active; the batch ends with it */
    struct fanout {
        bool set;
        size_t at;
        char *manager;
        command_source src; /* its strings copied */
    } fan;
    bool no_defer;    /* this decision places at once (a gap event's record before its last) */
    size_t max_place; /* --placements-at-once */
    struct parts {    /* the manager whose waiting reports place_in_parts is placing */
        const char *manager;
        const command_source *src;
        char **ids; /* the reports waiting for it, ascending */
        size_t n, done, k;
    } parts;
    bool *ok_decoded; /* ok as decoding left it, for deciding a batch again */
    /* the batches before this one still in flight, oldest at fl_head; a slot not in flight keeps
     * its buffers for the next batch to swap into */
    flight fl[MAX_FLIGHTS];
    size_t fl_head, fl_n, fl_max, fl_slots;
    delivery sync_dl;            /* produce_outputs' messages */
    sender snd;
    poller pol;
    store_write *cur_w;          /* this batch's sealed state write, until it flies */
    store_write *fl_write;       /* the flight's, while step_write_flight sends it */
    rd_kafka_topic_t *out_topic; /* held so that its metadata stays known (warm_up) */
    store_late fl_late;          /* what that write reported */
    store_late late_acc;         /* what the flights written so far reported */
    store_late flush_due;        /* step_flush_state: late managers whose resolution failed */
    bool in_transaction;         /* step_flush_state within an exactly-once batch (eos_batch) */
    /* the offsets of flights retired since late_acc filled: committed once it is resolved, so
     * that a crash before reads them again and their writes report the late links again */
    rd_kafka_topic_partition_list_t *held;
    /* rebalance */
    revoked *revoked;
    size_t n_revoked, cap_revoked;
    struct part_end *ends; /* replay: per partition, its end at start and how far read */
    size_t n_ends;
    uint64_t skipped_before_ts;
    strmap gap_records;        /* id -> gap_rec*, the batch's gap events read from Salesforce */
    bool gaps_read;            /* the batch's gap records were read from Salesforce */
    bool reimport_wanted;      /* a GAP_OVERFLOW or a request asked for a reconciliation (R8) */
    int64_t reimport_retry_at; /* a failed GAP_OVERFLOW reconciliation is tried again then */
    long reimport_backoff_ms;
    int n_assigned;          /* partitions this instance owns now */
    bool assigned_once;      /* the group gave this member an assignment (maybe empty) once */
    int64_t last_assignment; /* when the assignment last changed: idleness counts from there */
    int64_t stop_deadline;   /* asked to stop: when the shutdown's work must end (0: not asked) */
    int64_t leave_deadline;  /* ... and when --shutdown-timeout runs out */
    /* delivery: under snd.mu */
    uint64_t delivery_failures;
    char last_delivery_error[256];
    atomic_bool fatal; /* set by the Kafka clients' error callbacks, on either thread */
    char fatal_msg[512];
    /* operations (issue 9): metrics, health, settings reload; see ops_turn */
    pipeline_opts opts;   /* the caller's, copied: a settings reload replaces opts.cfg, so every
                             p->o->cfg is the settings in force */
    config *owned_cfg;    /* a reloaded config, ours to free (the first one is the caller's) */
    engine_opts eng_opts; /* to build the engine again after a reload */
    lookup *lk;           /* Profile and UserRole tables for the settings in force (R4.3) */
    int64_t next_lookup_refresh;
    lookup_stats lk_seen; /* what the metrics have of lk's counters */
    bool reads_managers;  /* the settings in force read Manager.<field> (R4.3) */
    pipeline_metrics pm;
    metrics *own_metrics; /* when the caller has no registry (replay) */
    pipeline_health own_health, *health;
    settings_sig settings_seen;
    int64_t next_settings_check, next_ops_tick, last_redis_ms;
    struct {
        int64_t since;
        unsigned logged;
        unsigned long long quiet;
    } held_log; /* on_warning's R8.3 lines this minute */
} pipeline;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void tally_take(const pipeline *p, tally *t)
{
    t->eng = *engine_get_stats(p->eng);
    t->dead_lettered = p->stats.dead_lettered;
    t->decode_errors = p->stats.decode_errors;
    t->gaps_resolved = p->stats.gaps_resolved;
}

/* acc += to - from */
static void tally_add(tally *acc, const tally *from, const tally *to)
{
    engine_stats_add(&acc->eng, &from->eng, &to->eng);
    acc->dead_lettered += to->dead_lettered - from->dead_lettered;
    acc->decode_errors += to->decode_errors - from->decode_errors;
    acc->gaps_resolved += to->gaps_resolved - from->gaps_resolved;
}

/* The pipeline's counters less what d gathered. */
static void tally_sub_stats(pipeline_stats *ps, const tally *d)
{
    ps->dead_lettered -= d->dead_lettered;
    ps->decode_errors -= d->decode_errors;
    ps->gaps_resolved -= d->gaps_resolved;
}

/* Takes back what d gathered, and empties it. */
static void tally_take_back(pipeline *p, tally *d)
{
    engine_stats_take_back(p->eng, &d->eng);
    tally_sub_stats(&p->stats, d);
    *d = (tally){0};
}

/* ---------------------------------------------------------------- Kafka callbacks */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    pipeline *p = opaque;
    delivery *dl = m->_private;
    const char *why;
    bool ok = kafka_delivered(m, &why);
    pthread_mutex_lock(&p->snd.mu);
    if (dl) pipeline_delivery_report(dl, ok);
    if (!ok) {
        p->delivery_failures++;
        snprintf(p->last_delivery_error, sizeof p->last_delivery_error, "%s", why);
    }
    pthread_cond_broadcast(&p->snd.reported);
    pthread_mutex_unlock(&p->snd.mu);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pipeline *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf_[400];
        rd_kafka_fatal_error(rk, buf_, sizeof buf_);
        /* served by the poller, or by whichever thread flushes the producer */
        pthread_mutex_lock(&p->snd.mu);
        if (!p->fatal) snprintf(p->fatal_msg, sizeof p->fatal_msg, "fatal Kafka error: %s", buf_);
        p->fatal = true; /* after its message: whoever sees it reads the message */
        pthread_cond_broadcast(&p->snd.reported);
        pthread_mutex_unlock(&p->snd.mu);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        atomic_store(&p->health->brokers_down, true); /* until a broker answers: ops_turn */
    /* transient: librdkafka retries by itself; say so once at warn level */
    log_msg(LOG_WARN, "kafka", "error", rd_kafka_err2str((rd_kafka_resp_err_t)err), "reason",
            reason, NULL);
}

static void mark_revoked(pipeline *p, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (p->n_revoked == p->cap_revoked) {
            p->cap_revoked = p->cap_revoked ? p->cap_revoked * 2 : 16;
            p->revoked = xrealloc(p->revoked, p->cap_revoked * sizeof *p->revoked);
        }
        revoked *r = &p->revoked[p->n_revoked++];
        snprintf(r->topic, sizeof r->topic, "%s", parts->elems[i].topic);
        r->partition = parts->elems[i].partition;
    }
}

static void eos_recover(pipeline *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts);
static int finish_flights(pipeline *p, perr *err);
static bool overlapped(const pipeline *p);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pipeline *p = opaque;
    p->stats.rebalances++;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_msg(LOG_INFO, "partitions assigned", "count", n, NULL);
        if (p->o->exactly_once) eos_recover(p, rk, parts);
        if (cooperative)
            rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        p->n_assigned = cooperative ? p->n_assigned + parts->cnt : parts->cnt;
        p->assigned_once = true;
        atomic_store(&p->health->joined, true); /* a member, even with no partition */
        p->last_assignment = mono_ms();
        return;
    }
    /* Revoked: batches are finished and committed before the next poll, so the only in-flight
     * work is what this poll sequence already collected; it is dropped (mark_revoked) and the
     * partition's next owner reads it again from the committed offset. */
    log_msg(LOG_INFO, "partitions revoked", "count", n, NULL);
    /* the batches in flight may hold messages of these partitions: finished (delivered, stored,
     * committed) while they are still ours; if they cannot be, they and what this poll collected
     * are read again from the committed offsets */
    if ((p->fl_n || p->late_acc.n) && !p->fatal) {
        perr e;
        if (finish_flights(p, &e) < 0)
            log_msg(LOG_ERROR, "the batches in flight could not be finished before the revocation",
                    "error", e.msg, NULL);
    }
    /* offsets held for late links not resolved: not ours to commit any more (the next owner
     * reads those batches again, finds the links and resolves them) */
    for (int i = 0; p->held && i < parts->cnt; i++)
        rd_kafka_topic_partition_list_del(p->held, parts->elems[i].topic,
                                          parts->elems[i].partition);
    mark_revoked(p, parts);
    if (cooperative)
        rd_kafka_incremental_unassign(rk, parts);
    else
        rd_kafka_assign(rk, NULL);
    p->n_assigned = cooperative ? p->n_assigned - parts->cnt : 0;
    if (rd_kafka_assignment_lost(rk)) atomic_store(&p->health->joined, false);
    p->last_assignment = mono_ms();
}

static bool is_revoked(const pipeline *p, const rd_kafka_message_t *m)
{
    const char *t = rd_kafka_topic_name(m->rkt);
    for (size_t i = 0; i < p->n_revoked; i++)
        if (p->revoked[i].partition == m->partition && strcmp(p->revoked[i].topic, t) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- output buffer */

static out_msg *out_new(pipeline *p)
{
    if (p->n_outs == p->cap_outs) {
        p->cap_outs = p->cap_outs ? p->cap_outs * 2 : 1024;
        p->outs = xrealloc(p->outs, p->cap_outs * sizeof *p->outs);
    }
    out_msg *o = &p->outs[p->n_outs++];
    memset(o, 0, sizeof *o);
    return o;
}

/* The headers produce_enqueue puts on every output: the source's topic, partition and offset. */
static size_t source_headers_size(const pipeline *p)
{
    return strlen("source.topic") + strlen(p->o->input_topic) + strlen("source.partition") +
           FMT_I64_MAX + strlen("source.offset") + FMT_I64_MAX;
}

/* A command's size on the wire, its headers (type, command_id) included. */
static size_t command_wire_size(const pipeline *p, size_t key_len, size_t value_len,
                                command_type type)
{
    size_t headers = source_headers_size(p) + strlen("type") + strlen(command_type_name(type)) +
                     strlen("command_id") + 32;
    return kafka_wire_size(key_len, value_len, headers, 5);
}

static void on_command(void *ctx, const command *c)
{
    pipeline *p = ctx;
    codec_error cerr;
    buf_reset(&p->scratch);
    if (p->o->dry_run) {
        command_to_json(c, &p->scratch); /* a dry run prints; JSON is what people read */
    } else if (codec_encode_command(p->enc, c, &p->scratch, &cerr) < 0) {
        /* the command schema is ours: this is a bug, not input; keep going, loudly */
        log_msg(LOG_ERROR, "cannot encode command", "command_id", c->id, "error", cerr.msg, NULL);
        return;
    }
    /* interfaces.md: key = sf_user_id, empty for COMPANY_SETTINGS (produce_enqueue keeps those
     * on one partition, in order) */
    const char *key = c->sf_user_id ? c->sf_user_id : "";
    if (p->current && !p->o->dry_run &&
        command_wire_size(p, strlen(key), p->scratch.len, c->type) > p->max_message) {
        /* Kafka would refuse it, and the batch could never be produced (R9.4: the partition
         * keeps moving): the event goes to the dead-letter topic instead, undecided */
        if (!p->too_big.set) {
            p->too_big = (struct too_big){true, c->type, p->scratch.len, ""};
            snprintf(p->too_big.user, sizeof p->too_big.user, "%s", key);
        }
        return;
    }
    out_msg *o = out_new(p);
    o->key_off = p->bytes.len;
    o->key_len = strlen(key);
    buf_append(&p->bytes, key, o->key_len);
    o->val_off = p->bytes.len;
    o->val_len = p->scratch.len;
    buf_append(&p->bytes, p->scratch.data, p->scratch.len);
    o->type = c->type;
    memcpy(o->id, c->id, sizeof o->id);
    /* outside an event's decision (placements in parts), the event the command comes from */
    const command_source *src = c->source && c->source->topic ? c->source : NULL;
    o->src_partition = p->current ? p->current->partition : src ? src->partition : -1;
    o->src_offset = p->current ? p->current->offset : src ? src->offset : -1;
}

static void fan_clear(pipeline *p)
{
    free(p->fan.manager);
    free((char *)p->fan.src.topic);
    free((char *)p->fan.src.replay_id);
    free((char *)p->fan.src.transaction_key);
    p->fan = (struct fanout){0};
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

/* The engine leaves a manager's placements to us when the batch can end with its event and be
 * stored before the next is decided: not in a dry run or a transaction (whose batches cannot be
 * split in parts), nor for a gap event's record before its last. */
static bool on_deferred(void *ctx, const char *manager, size_t n, const command_source *src)
{
    pipeline *p = ctx;
    (void)n;
    if (p->no_defer || !p->max_place || p->o->dry_run || p->o->exactly_once) return false;
    if (!p->fan.set) {
        p->fan.set = true;
        p->fan.at = p->current_i;
        p->fan.manager = xstrdup(manager);
        p->fan.src = *src;
        p->fan.src.topic = dup_or_null(src->topic);
        p->fan.src.replay_id = dup_or_null(src->replay_id);
        p->fan.src.transaction_key = dup_or_null(src->transaction_key);
    }
    return true; /* a later one is decided again in a batch of its own */
}

/* R8.3 lines naming their users, per minute: once the guard trips under a backlog they come by
 * the thousand (80,000 in the bench's million events, 3% of the CPU); the rest are counted in one
 * line a minute, and all of them in provisioner_held_deactivations. */
#define HELD_LINES_PER_MINUTE 100

/* The line counting the R8.3 holds not logged one by one, once their minute is over (or with
 * force, at the end). */
static void held_log_roll(pipeline *p, bool force)
{
    int64_t now = mono_ms();
    if (!force && now - p->held_log.since < 60000) return;
    if (p->held_log.quiet) {
        char n[24];
        snprintf(n, sizeof n, "%llu", p->held_log.quiet);
        log_msg(LOG_WARN,
                "R8.3: more deactivations held by the mass-deactivation guard than logged above; "
                "they go through when confirmed (POST /reimport?confirm=1, or reimport --confirm)",
                "not_logged", n, NULL);
    }
    p->held_log.since = now;
    p->held_log.logged = 0;
    p->held_log.quiet = 0;
}

static void on_warning(void *ctx, engine_warning w, const char *msg)
{
    pipeline *p = ctx;
    if (w == ENGINE_WARN_HELD) {
        held_log_roll(p, false);
        if (p->held_log.logged >= HELD_LINES_PER_MINUTE) {
            p->held_log.quiet++;
            return;
        }
        p->held_log.logged++;
    }
    log_msg(LOG_WARN, msg, NULL);
}

/* The dead letter of m: its key and value, the reason in its headers (R9.4). A value that would
 * make it too large for Kafka is left out, and the reason says so: the input stays where the
 * source headers say. */
static void dead_letter(pipeline *p, const rd_kafka_message_t *m, const char *kind, const char *msg)
{
    size_t headers = source_headers_size(p) + strlen("error.kind") + strlen(kind) +
                     strlen("error.message") + strlen(msg);
    bool keep_value =
        p->o->dry_run || kafka_wire_size(m->key_len, m->len, headers + 200, 5) <= p->max_message;
    bool keep_key =
        keep_value || kafka_wire_size(m->key_len, 0, headers + 200, 5) <= p->max_message;
    out_msg *o = out_new(p);
    o->dead_letter = true;
    o->key_off = p->bytes.len;
    o->key_len = keep_key ? m->key_len : 0;
    if (o->key_len) buf_append(&p->bytes, m->key, m->key_len);
    o->val_off = p->bytes.len;
    o->val_len = keep_value ? m->len : 0;
    if (o->val_len) buf_append(&p->bytes, m->payload, m->len);
    o->err_off = p->bytes.len;
    o->err_len = strlen(msg);
    buf_append(&p->bytes, msg, o->err_len);
    if (!keep_value) {
        char note[200];
        int n = snprintf(note, sizeof note,
                         " (the %s, %zu bytes, %s left out: over message.max.bytes, %zu; read "
                         "it at source.partition, source.offset)",
                         keep_key ? "value" : "key and value", m->key_len + m->len,
                         keep_key ? "is" : "are", p->max_message);
        buf_append(&p->bytes, note, (size_t)n);
        o->err_len += (size_t)n;
    }
    snprintf(o->err_kind, sizeof o->err_kind, "%s", kind);
    o->src_partition = m->partition;
    o->src_offset = m->offset;
    p->stats.dead_lettered++;
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    log_msg(LOG_WARN,
            p->o->dry_run ? "message would be dead-lettered (dry run)" : "message dead-lettered",
            "topic", rd_kafka_topic_name(m->rkt), "partition", part, "offset", off, "error", msg,
            NULL);
}

/* ---------------------------------------------------------------- operations: counting */

/* Once asked to stop, when the work of the shutdown (the batches, their deliveries and writes)
 * must end, counted from the first time any step saw the request (0 before): every wait of the
 * shutdown shares it, so that the process is gone within --shutdown-timeout, whatever the
 * brokers or Redis do. The last part of the timeout (a quarter, at most a second) is left for
 * leaving the consumer group (p->leave_deadline). */
static int64_t shutdown_deadline(pipeline *p)
{
    if (*p->o->stop && !p->stop_deadline) {
        int64_t total = p->o->shutdown_timeout_s * 1000L, reserve = total / 4;
        if (reserve > 1000) reserve = 1000;
        p->leave_deadline = mono_ms() + total;
        p->stop_deadline = p->leave_deadline - reserve;
    }
    return p->stop_deadline;
}

/* Asked to stop, and the shutdown deadline has passed. */
static bool past_shutdown_deadline(pipeline *p)
{
    int64_t end = shutdown_deadline(p);
    return end && mono_ms() > end;
}

/* How long a step that could wait `cap` ms may wait: less once the shutdown deadline is near. */
static int shutdown_budget_ms(pipeline *p, int cap)
{
    int64_t end = shutdown_deadline(p);
    if (!end) return cap;
    int64_t left = end - mono_ms();
    return left <= 0 ? 0 : left < cap ? (int)left : cap;
}

/* Sleeps ms in slices: a stop asked meanwhile ends it at once (the caller looks again at what it
 * waits for, now with the shutdown deadline), and once stopping it never sleeps past the
 * deadline. A retry's backoff (up to 5 s, 30 s for Salesforce) would otherwise hold a shutdown. */
static void nap(pipeline *p, long ms)
{
    bool stopping = *p->o->stop;
    int64_t until = mono_ms() + ms;
    for (;;) {
        if (!stopping && *p->o->stop) return;
        int64_t end = until, dl = shutdown_deadline(p);
        if (dl && dl < end) end = dl;
        int64_t left = end - mono_ms();
        if (left <= 0) return;
        sleep_ms(left < 100 ? left : 100);
    }
}

/* A retry's wait: naps *backoff, then doubles it up to cap. */
static void nap_backoff(pipeline *p, long *backoff, long cap)
{
    nap(p, *backoff);
    *backoff = *backoff * 2 > cap ? cap : *backoff * 2;
}

/* /healthz: the main loop, or a wait inside it, is still turning. Once stopping, no Redis call
 * waits past the shutdown deadline. */
static void beat(pipeline *p)
{
    pipeline_health_beat(p->health);
    int64_t end = shutdown_deadline(p);
    if (end && p->store) {
        int64_t left = end - mono_ms();
        store_redis_limit_timeout(p->store, left < 1 ? 1 : left > 60000 ? 60000 : (int)left);
    }
}

/* /readyz: Redis answered (or did not) just now. */
static void redis_step_done(pipeline *p, bool ok)
{
    atomic_store(&p->health->redis_ok, ok);
    p->last_redis_ms = mono_ms();
    beat(p);
}

/* What a produce (or a transaction) delivered: commands by type, and dead letters. */
static void count_outputs(pipeline *p)
{
    for (size_t i = 0; i < p->n_outs; i++) {
        if (p->outs[i].dead_letter)
            metric_add(p->pm.dead_lettered, 1);
        else if ((unsigned)p->outs[i].type < CMD__COUNT)
            metric_add(p->pm.commands[p->outs[i].type], 1);
    }
}

/* A finished batch: its size, its events by change type, and for each message the time from its
 * Kafka timestamp to now (commands acknowledged, state stored, offsets committed). */
static void batch_done(pipeline *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    metric_observe(p->pm.batch_size, (double)p->n_msgs);
    metric_add(p->pm.messages, p->n_msgs);
    for (size_t i = 0; i < p->n_msgs; i++) {
        if (p->ok[i] && (unsigned)p->events[i].change < CHANGE__COUNT)
            metric_add(p->pm.events[p->events[i].change], 1);
        rd_kafka_timestamp_type_t tt;
        int64_t ms = rd_kafka_message_timestamp(p->msgs[i], &tt);
        if (ms <= 0) continue; /* no timestamp */
        double latency = now - (double)ms / 1000.0;
        metric_observe(p->pm.end_to_end, latency > 0 ? latency : 0); /* clocks disagree a bit */
    }
}

/* ---------------------------------------------------------------- produce */

/* Counts n more messages in dl, before the first goes out: its report may come before the call
 * that produces it returns (on the sender's thread), and a flight waited for before its messages
 * are all out must not look delivered. */
static void dl_expect(pipeline *p, delivery *dl, size_t n)
{
    pthread_mutex_lock(&p->snd.mu);
    pipeline_delivery_expect(dl, n);
    pthread_mutex_unlock(&p->snd.mu);
}

/* dl starts over for new messages. Reports may still be due for its earlier ones: dropped after a
 * flush that timed out (brokers unreachable), their reports come when librdkafka gives up or the
 * brokers return, maybe after the new ones (pipeline_delivery_restart takes them as stale). */
static void dl_restart(pipeline *p, delivery *dl)
{
    pthread_mutex_lock(&p->snd.mu);
    pipeline_delivery_restart(dl);
    pthread_mutex_unlock(&p->snd.mu);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits up to ms for the next delivery report (served by the poller). */
static void report_wait(pipeline *p, int ms)
{
    struct timespec until;
    deadline_in(&until, ms);
    pthread_mutex_lock(&p->snd.mu);
    pthread_cond_timedwait(&p->snd.reported, &p->snd.mu, &until);
    pthread_mutex_unlock(&p->snd.mu);
}

static void *poller_main(void *arg)
{
    pipeline *p = arg;
    prctl(PR_SET_NAME, "deliveries", 0, 0, 0);
    while (!atomic_load(&p->pol.stop))
        rd_kafka_poll(p->producer, 100);
    return NULL;
}

/* Starts fn(p) on *t; *running says whether it must be joined. */
static int thread_start(pipeline *p, pthread_t *t, bool *running, void *(*fn)(void *),
                        const char *what, perr *err)
{
    int e = pthread_create(t, NULL, fn, p);
    *running = e == 0;
    return e ? perr_set(err, "%s thread: %s", what, strerror(e)) : 0;
}

static int poller_start(pipeline *p, perr *err)
{
    return thread_start(p, &p->pol.thread, &p->pol.running, poller_main, "delivery report", err);
}

/* After it, the reports are served by whoever flushes the producer (teardown). */
static void poller_stop(pipeline *p)
{
    if (!p->pol.running) return;
    atomic_store(&p->pol.stop, true);
    /* its poll returns now, not at its timeout (rd_kafka_yield is for callbacks only); the yield
     * is a flag of the queue: a poll that begins after it returns at once too */
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(p->producer);
    if (q) {
        rd_kafka_queue_yield(q);
        rd_kafka_queue_destroy(q);
    }
    pthread_join(p->pol.thread, NULL);
    p->pol.running = false;
}

/* Hands outs[0..n) (keys and values in base), counted in dl already, to the producer. Returns 0,
 * or -1 with the messages not handed over taken off dl->outstanding (as_failed: counted as failed
 * deliveries, the error as the last delivery error). */
static int send_outs(pipeline *p, const out_msg *outs, size_t n, const char *base, delivery *dl,
                     bool as_failed, perr *err)
{
    const pipeline_opts *o = p->o;
    for (size_t i = 0; i < n; i++) {
        const out_msg *m = &outs[i];
        char part[FMT_I64_MAX], off[FMT_I64_MAX];
        size_t part_len = fmt_i64(part, m->src_partition), off_len = fmt_i64(off, m->src_offset);
        rd_kafka_headers_t *h = rd_kafka_headers_new(6);
        rd_kafka_header_add(h, "source.topic", -1, o->input_topic, -1);
        rd_kafka_header_add(h, "source.partition", -1, part, (ssize_t)part_len);
        rd_kafka_header_add(h, "source.offset", -1, off, (ssize_t)off_len);
        const char *topic;
        if (m->dead_letter) {
            topic = o->dlq_topic;
            rd_kafka_header_add(h, "error.kind", -1, m->err_kind, -1);
            rd_kafka_header_add(h, "error.message", -1, base + m->err_off, (ssize_t)m->err_len);
        } else {
            topic = o->output_topic;
            rd_kafka_header_add(h, "type", -1, command_type_name(m->type), -1);
            rd_kafka_header_add(h, "command_id", -1, m->id, -1);
        }
        rd_kafka_resp_err_t e;
        int32_t partition =
            kafka_command_partition(m->dead_letter ? NULL : base + m->key_off, m->key_len);
        for (;;) {
            e = rd_kafka_producev(p->producer, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_PARTITION(partition),
                                  RD_KAFKA_V_KEY(base + m->key_off, m->key_len),
                                  RD_KAFKA_V_VALUE((void *)(base + m->val_off), m->val_len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                  RD_KAFKA_V_OPAQUE(dl), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(&p->snd.stop)) break;
            report_wait(p, 50); /* the local queue drains as deliveries complete */
        }
        if (e) {
            rd_kafka_headers_destroy(h);
            perr_set(err, "produce to %s: %s", topic, rd_kafka_err2str(e));
            pthread_mutex_lock(&p->snd.mu);
            pipeline_delivery_refused(dl, n - i, as_failed);
            if (as_failed) {
                p->delivery_failures += n - i;
                snprintf(p->last_delivery_error, sizeof p->last_delivery_error, "%.200s", err->msg);
            }
            pthread_mutex_unlock(&p->snd.mu);
            return -1;
        }
    }
    return 0;
}

/* Hands every output message to the producer; delivery is awaited by produce_wait on dl. */
static int produce_enqueue(pipeline *p, delivery *dl, perr *err)
{
    dl_expect(p, dl, p->n_outs);
    return send_outs(p, p->outs, p->n_outs, p->bytes.data, dl, false, err);
}

static void *sender_main(void *arg)
{
    pipeline *p = arg;
    sender *s = &p->snd;
    prctl(PR_SET_NAME, "sender", 0, 0, 0); /* top -H, perf: apart from the main thread */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queued && !atomic_load(&s->stop))
            pthread_cond_wait(&s->cv, &s->mu);
        if (atomic_load(&s->stop)) break; /* a job not sent: its flight is abandoned, read again */
        s->queued = false;
        s->busy = true;
        pthread_mutex_unlock(&s->mu);
        perr e; /* a refusal is a failed delivery: the flight is read again (flight_send) */
        (void)send_outs(p, s->outs, s->n_outs, s->bytes.data, s->dl, true, &e);
        pthread_mutex_lock(&s->mu);
        s->busy = false;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Waits until the sender has handed over its job: nothing of a flight is then still to reach the
 * producer (a flush covers everything, a message produced now goes after it). */
static void sender_idle(pipeline *p)
{
    if (!p->snd.running) return;
    pthread_mutex_lock(&p->snd.mu);
    while (p->snd.queued || p->snd.busy)
        pthread_cond_wait(&p->snd.cv, &p->snd.mu);
    pthread_mutex_unlock(&p->snd.mu);
}

/* The batch's messages go to the sender (running: at-least-once), its bytes with them; what the
 * producer refuses shows as failed deliveries of dl. */
static void sender_post(pipeline *p, delivery *dl)
{
    sender *s = &p->snd;
    sender_idle(p);
    dl_expect(p, dl, p->n_outs);
    pthread_mutex_lock(&s->mu);
    buf t = s->bytes; /* the last job's, finished: the main thread's from now */
    s->bytes = p->bytes;
    p->bytes = t;
    s->outs = p->outs;
    s->n_outs = p->n_outs;
    s->dl = dl;
    s->queued = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int sender_start(pipeline *p, perr *err)
{
    return thread_start(p, &p->snd.thread, &p->snd.running, sender_main, "sender", err);
}

static void sender_stop(pipeline *p)
{
    if (!p->snd.running) return;
    pthread_mutex_lock(&p->snd.mu);
    atomic_store(&p->snd.stop, true);
    pthread_cond_broadcast(&p->snd.cv);
    pthread_mutex_unlock(&p->snd.mu);
    pthread_join(p->snd.thread, NULL);
    p->snd.running = false;
}

static size_t dl_outstanding(pipeline *p, const delivery *dl)
{
    pthread_mutex_lock(&p->snd.mu);
    size_t left = dl->outstanding;
    pthread_mutex_unlock(&p->snd.mu);
    return left;
}

/* What is left of dl: its reports not in yet, waiting up to wait_ms for them. */
static size_t dl_left(pipeline *p, delivery *dl, int wait_ms)
{
    struct timespec until;
    deadline_in(&until, wait_ms);
    pthread_mutex_lock(&p->snd.mu);
    while (dl->outstanding && !p->fatal &&
           pthread_cond_timedwait(&p->snd.reported, &p->snd.mu, &until) != ETIMEDOUT)
        ;
    size_t left = dl->outstanding;
    pthread_mutex_unlock(&p->snd.mu);
    return left;
}

/* Waits until every message counted in dl is acknowledged (R9.2: nothing is stored or committed
 * before); fails when any was not delivered. Messages produced after them may still be on their
 * way. */
static int produce_wait(pipeline *p, delivery *dl, double started, perr *err)
{
    while (dl_left(p, dl, 100) > 0) {
        beat(p); /* waiting for brokers is not being stuck */
        if (p->fatal) return perr_set(err, "%s", p->fatal_msg);
        /* asked to stop and the brokers are gone: give up within the shutdown deadline; the
         * batch is neither stored nor committed, so it is read again later (R9.2) */
        if (past_shutdown_deadline(p))
            return perr_set(err, "shutting down with %zu messages not acknowledged",
                            dl_outstanding(p, dl));
    }
    pthread_mutex_lock(&p->snd.mu);
    uint64_t n = dl->failures;
    dl->failures = 0;
    if (n)
        perr_set(err, "%llu messages were not delivered: %s", (unsigned long long)n,
                 p->last_delivery_error);
    pthread_mutex_unlock(&p->snd.mu);
    if (n) return -1;
    p->stats.commands_produced += p->n_outs;
    if (p->n_outs) metric_observe(p->pm.produce, pipeline_mono_s() - started);
    /* acknowledged; in a transaction that then aborts (rare, retried) they count twice */
    count_outputs(p);
    return 0;
}

static int produce_outputs(pipeline *p, perr *err)
{
    double started = pipeline_mono_s();
    sender_idle(p); /* what the sender still hands over goes first */
    dl_restart(p, &p->sync_dl);
    if (produce_enqueue(p, &p->sync_dl, err) < 0) {
        rd_kafka_flush(p->producer, 10000); /* what did go out is not counted for what comes next */
        return -1;
    }
    return produce_wait(p, &p->sync_dl, started, err);
}

/* ---------------------------------------------------------------- batch */

/* What a typical batch needs is kept across batches; what an unusual one grew beyond that (a
 * manager whose thousands of waiting reports are placed at once) goes back, or the RSS would
 * stay at the largest batch ever seen. */
#define BATCH_KEEP_BYTES (4u << 20)
/* Outputs of a batch beyond which its memory is given back to the system once it is finished (a
 * typical batch of 2,000 events produces about 1,000). */
#define TRIM_AFTER_OUTS 20000

/* The output messages' keys, values and error texts: not needed once the producer has its copies
 * (RD_KAFKA_MSG_F_COPY), so a flight does not hold them a second time while it waits. There is
 * one such buffer, not one per flight: four buffers grown to the largest batch each were ~10 MiB
 * of the RSS under a backlog. */
static void bytes_release(pipeline *p)
{
    buf_reset(&p->bytes);
    if (p->bytes.cap > BATCH_KEEP_BYTES) {
        buf_free(&p->bytes);
        buf_init(&p->bytes);
    }
}

static void batch_release(pipeline *p)
{
    for (size_t i = 0; i < p->n_msgs; i++)
        rd_kafka_message_destroy(p->msgs[i]);
    p->n_msgs = 0;
    p->n_outs = 0;
    if (p->cap_outs * sizeof *p->outs > BATCH_KEEP_BYTES) {
        free(p->outs);
        p->outs = NULL;
        p->cap_outs = 0;
    }
    arena_reset(&p->mem);
    arena_trim(&p->mem, BATCH_KEEP_BYTES);
}

static void note_position(pipeline *p, const rd_kafka_message_t *m)
{
    for (size_t i = 0; i < p->n_ends; i++)
        if (p->ends[i].partition == m->partition && m->offset + 1 > p->ends[i].next)
            p->ends[i].next = m->offset + 1;
}

/* A replay is done when every partition has been read up to where it ended when we started. */
static bool reached_end(const pipeline *p)
{
    for (size_t i = 0; i < p->n_ends; i++)
        if (p->ends[i].next < p->ends[i].end) return false;
    return true;
}

static int64_t replay_lag(const pipeline *p)
{
    int64_t lag = 0;
    for (size_t i = 0; i < p->n_ends; i++)
        if (p->ends[i].end > p->ends[i].next) lag += p->ends[i].end - p->ends[i].next;
    return lag;
}

static size_t collect(pipeline *p, int64_t *last_seen)
{
    const pipeline_opts *o = p->o;
    p->n_revoked = 0;
    int64_t deadline = 0;
    bool seen = false;
    while (p->n_msgs < (size_t)o->batch_size && !*o->stop && !p->fatal) {
        /* what is queued is taken without a look at the clock (twice a message otherwise, ~2% of
         * the main thread under a backlog); the linger is for when the queue is empty */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 0);
        if (!m) {
            int timeout = 100;
            if (p->n_msgs) { /* past the linger, take only what is already here */
                int64_t left = deadline - mono_ms();
                if (left <= 0) break;
                timeout = (int)left;
            }
            if (!(m = rd_kafka_consumer_poll(p->consumer, timeout))) {
                if (!p->n_msgs) break;
                continue;
            }
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_msg(LOG_WARN, "consumer", "error", rd_kafka_message_errstr(m), NULL);
            rd_kafka_message_destroy(m);
            continue;
        }
        seen = true;
        note_position(p, m);
        if (o->start == START_TIMESTAMP) {
            /* offsets_for_times may not know (a mock broker answers "none"): skip by timestamp */
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            if (ts >= 0 && ts < o->from_timestamp_ms) {
                p->skipped_before_ts++;
                rd_kafka_message_destroy(m);
                continue;
            }
        }
        if (!p->n_msgs) deadline = mono_ms() + o->linger_ms;
        p->msgs[p->n_msgs++] = m;
    }
    if (seen) *last_seen = mono_ms();
    /* drop what a rebalance took away while we were collecting */
    if (p->n_revoked) {
        size_t kept = 0;
        for (size_t i = 0; i < p->n_msgs; i++) {
            if (is_revoked(p, p->msgs[i])) {
                rd_kafka_message_destroy(p->msgs[i]);
                p->stats.dropped_on_revoke++;
            } else {
                p->msgs[kept++] = p->msgs[i];
            }
        }
        p->n_msgs = kept;
    }
    return p->n_msgs;
}

/* Counted on /metrics at once: an outage keeps the loop from publishing until Redis is back, and
 * the retries are what an alert on it watches. */
static void count_redis_retry(pipeline *p)
{
    p->stats.redis_retries++;
    pipeline_metrics_redis_retries(&p->pm, p->stats.redis_retries);
}

/* Retries f with backoff while Redis is away; gives up only when asked to stop and the shutdown
 * deadline has passed. */
static int with_retry(pipeline *p, int (*f)(pipeline *, perr *), const char *what,
                      bool reset_on_failure, perr *err)
{
    long backoff = 100;
    bool logged = false;
    for (;;) {
        beat(p); /* a stop asked meanwhile bounds this attempt's waits */
        if (f(p, err) == 0) {
            if (logged) log_msg(LOG_INFO, "redis is back", "step", what, NULL);
            redis_step_done(p, true);
            return 0;
        }
        redis_step_done(p, false);
        count_redis_retry(p);
        if (p->o->dry_run) return -1; /* a retry would lose the scratch state: stop instead */
        if (p->fatal) return -1;      /* the producer's (a step that produces): no retry mends it */
        if (!logged)
            log_msg(LOG_ERROR, "redis unavailable; retrying", "step", what, "error", err->msg,
                    NULL);
        logged = true;
        nap_backoff(p, &backoff, 5000); /* returns at once past the deadline */
        if (past_shutdown_deadline(p)) return -1;
        /* a failed prefetch starts over; a failed flush keeps the cache, which is what it must
         * write, and repeating it is safe */
        if (reset_on_failure) store_redis_reset(p->store);
    }
}

/* R4.3: a Manager.<field> filter reads the manager's snapshot for every user decided, also when
 * the event does not name the manager (a Title change): those managers are read in one more round
 * trip instead of one each during the decisions. */
static bool reads_manager_fields(const config *cfg)
{
    for (size_t a = 0; a < cfg->n_assignments; a++) {
        const soql_filter *f = cfg->assignments[a].filter;
        for (size_t i = 0; i < soql_field_count(f); i++)
            if (soql_relationship(soql_field_name(f, i), NULL) == SOQL_REL_MANAGER) return true;
    }
    return false;
}

/* Levels of Gong managers read above a named manager before a batch is decided; a chain longer
 * (no org's is) is read on as the cycle check walks it. */
#define CHAIN_PREFETCH_LEVELS 32

static int prefetch_managers(pipeline *p, const char *const *ids, size_t n, perr *err)
{
    engine_store *st = store_redis_iface(p->store);
    const char **managers = arena_alloc(&p->mem, sizeof(char *) * (n ? n : 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const user_state *u = st->get(st->ctx, ids[i]); /* prefetched: no round trip */
        const char *m = u ? engine_manager_id(u) : NULL;
        if (m) managers[k++] = arena_strdup(&p->mem, m);
    }
    return k ? store_redis_prefetch_named(p->store, managers, k, 0, err) : 0;
}

/* The users message i is about: none for another object's event (R1.1), skipped unread. */
static size_t subjects_of(const pipeline *p, size_t i)
{
    const event *ev = &p->events[i];
    return p->ok[i] && event_is_user(ev) && !event_is_org_wide(ev) ? ev->n_record_ids : 0;
}

/* The ids events [0, to) need read: the users they are about first (n_subjects of them), then
 * the managers they name. */
static const char **batch_ids(pipeline *p, size_t to, size_t *n, size_t *n_subjects)
{
    size_t cap = 0;
    for (size_t i = 0; i < to; i++)
        if (p->ok[i]) cap += p->events[i].n_record_ids + 8;
    const char **ids = arena_alloc(&p->mem, sizeof(char *) * (cap + 1));
    size_t k = 0;
    for (size_t i = 0; i < to; i++) {
        size_t nr = subjects_of(p, i);
        for (size_t r = 0; r < nr; r++)
            ids[k++] = p->events[i].record_ids[r];
    }
    *n_subjects = k;
    for (size_t i = 0; i < to; i++)
        if (p->ok[i]) k += engine_event_refs(&p->events[i], ids + k, 8);
    *n = k;
    return ids;
}

/* R6.4: the chains of Gong managers a cycle check walks, read before the batch is decided; a
 * deep org's cold start read them a user at a time (a seven-level tree of 60,000 users: ~34,000
 * round trips over 300,000 events, ~150 for a flat one). They start at the managers the events
 * name, and at the snapshot's ManagerId of the users an event may bring back (not active in
 * Gong, or out of scope: R5.5 and R6.3 place them under it without the event naming it; only
 * where the event changes what kept them out, or every deactivated user's Title change would
 * read a chain). */
static int prefetch_hierarchy(pipeline *p, const char *const *ids, size_t n, size_t n_subjects,
                              perr *err)
{
    engine_store *st = store_redis_iface(p->store);
    size_t named = n - n_subjects, k = named, at = 0;
    const char **from = arena_alloc(&p->mem, sizeof(char *) * (n + 1));
    memcpy(from, ids + n_subjects, named * sizeof *from);
    for (size_t i = 0; i < p->n_msgs; i++) {
        size_t nr = subjects_of(p, i); /* ids[0..n_subjects) are these, in this order */
        for (size_t r = 0; r < nr; r++, at++) {
            const user_state *u = st->get(st->ctx, ids[at]); /* prefetched: no round trip */
            if (!u || (u->status == PROV_ACTIVE && u->in_scope) ||
                !engine_may_bring_back(u, &p->events[i]))
                continue;
            const char *m = engine_manager_id(u);
            if (m) from[k++] = arena_strdup(&p->mem, m);
        }
    }
    int rc = k > named ? store_redis_prefetch_users(p->store, from + named, k - named, err) : 0;
    return rc == 0 && k ? store_redis_prefetch_chains(p->store, from, k, CHAIN_PREFETCH_LEVELS, err)
                        : rc;
}

static int step_prefetch(pipeline *p, perr *err)
{
    size_t n, n_subjects;
    const char **ids = batch_ids(p, p->n_msgs, &n, &n_subjects);
    double started = pipeline_mono_s();
    int rc = store_redis_prefetch_named(p->store, ids, n, n_subjects, err);
    if (rc == 0 && p->reads_managers) rc = prefetch_managers(p, ids, n, err);
    if (rc == 0) rc = prefetch_hierarchy(p, ids, n, n_subjects, err);
    if (rc == 0) {
        /* the users whose own events may make them active (not the managers they name): their
         * waiting reports are read when they are (R6.3), except those the engine will leave to
         * be placed in parts (an event's last record, more than --placements-at-once) */
        size_t k = 0, k_last = 0;
        const char **last = arena_alloc(&p->mem, sizeof(char *) * (p->n_msgs + 1));
        for (size_t i = 0; i < p->n_msgs; i++) {
            size_t nr = subjects_of(p, i);
            for (size_t r = 0; r + 1 < nr && k < n; r++)
                ids[k++] = p->events[i].record_ids[r];
            if (nr) last[k_last++] = p->events[i].record_ids[nr - 1];
        }
        size_t max = overlapped(p) ? p->max_place : 0;
        rc = store_redis_prefetch_waiting(p->store, ids, k, 0, err);
        if (rc == 0) rc = store_redis_prefetch_waiting(p->store, last, k_last, max, err);
    }
    if (rc == 0) metric_observe(p->pm.redis_prefetch, pipeline_mono_s() - started);
    return rc;
}

/* ---------------------------------------------------------------- gaps (R1.3) */

typedef struct gap_rec {
    event_field *fields;
    size_t n;
} gap_rec;

/* A User's gap event, read from Salesforce (R1.3); another entity's is skipped (R1.1). */
static bool is_user_gap(const event *ev)
{
    return ev->change >= CHANGE_GAP_CREATE && ev->change <= CHANGE_GAP_UNDELETE &&
           event_is_user(ev) && !event_is_org_wide(ev);
}

/* A User's gap event whose record is read from Salesforce (a GAP_DELETE's record is gone). */
static bool reads_record(const event *ev)
{
    return is_user_gap(ev) && ev->change != CHANGE_GAP_DELETE;
}

static int on_gap_record(void *ctx, const sf_record *r, perr *err)
{
    pipeline *p = ctx;
    (void)err;
    if (!r->id) return 0;
    gap_rec *g = arena_alloc(&p->mem, sizeof *g);
    g->fields = arena_alloc(&p->mem, (r->n_fields ? r->n_fields : 1) * sizeof *g->fields);
    g->n = 0;
    for (size_t i = 0; i < r->n_fields; i++) {
        if (strcasecmp(r->fields[i].name, "Id") == 0) continue;
        event_field *f = &g->fields[g->n++];
        f->name = arena_strdup(&p->mem, r->fields[i].name);
        f->val = r->fields[i].val;
        if (f->val.type == VAL_STR) f->val.s = arena_strndup(&p->mem, f->val.s, f->val.len);
    }
    strmap_put(&p->gap_records, r->id, g);
    return 0;
}

/* Reads the current record of every user a gap event names, in batched look-ups by Id. When
 * Salesforce cannot be read the events stay gaps: the engine marks those users for
 * reconciliation and nothing is guessed. */
static void resolve_gaps(pipeline *p)
{
    strmap_free(&p->gap_records, NULL);
    strmap_init(&p->gap_records);
    p->gaps_read = p->o->sf != NULL;
    if (!p->o->sf) return;
    size_t n = 0;
    for (size_t i = 0; i < p->n_msgs; i++)
        if (p->ok[i] && reads_record(&p->events[i])) n += p->events[i].n_record_ids;
    if (!n) return;
    const char **ids = arena_alloc(&p->mem, n * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < p->n_msgs; i++)
        if (p->ok[i] && reads_record(&p->events[i]))
            for (size_t r = 0; r < p->events[i].n_record_ids; r++)
                if (sf_id_valid(p->events[i].record_ids[r])) ids[k++] = p->events[i].record_ids[r];
    size_t nf;
    const char **fields = reimport_fields(p->o->cfg, &nf);
    perr err;
    if (sf_query_users_by_ids(p->o->sf, ids, k, fields, nf, SF_ESSENTIAL, on_gap_record, p, &err) <
        0) {
        log_msg(LOG_ERROR,
                "gap events: cannot read the users from Salesforce; they are marked "
                "for reconciliation",
                "error", err.msg, NULL);
        p->gaps_read = false;
    }
    free(fields);
}

/* A gap event whose records were read: each becomes a full image (or a DELETE when Salesforce no
 * longer has it) at the gap's position. */
static int apply_gap(pipeline *p, const event *ev, perr *err)
{
    for (size_t r = 0; r < ev->n_record_ids; r++) {
        event one = *ev;
        one.record_ids = &ev->record_ids[r];
        one.n_record_ids = 1;
        gap_rec *g = strmap_get(&p->gap_records, ev->record_ids[r]);
        if (ev->change == CHANGE_GAP_DELETE || !g) {
            one.change = CHANGE_DELETE;
            one.n_fields = 0;
        } else {
            one.change = CHANGE_UNDELETE; /* a full image */
            one.fields = g->fields;
            one.n_fields = g->n;
        }
        one.payload_marks_changes = false;
        p->no_defer = r + 1 < ev->n_record_ids;
        int rc = engine_apply(p->eng, &one, &p->hooks, err);
        p->no_defer = false;
        if (rc < 0) return -1;
        p->stats.gaps_resolved++;
    }
    return 0;
}

/* ---------------------------------------------------------------- look-ups (R4.3) */

static sf_client *lookup_client(const pipeline *p)
{
    return p->o->lookup_sf ? p->o->lookup_sf : p->o->sf;
}

/* The tables cfg's filters need, read once before the first decision under cfg. Without
 * Salesforce access such filters cannot be decided (every user would read null and fall out of
 * scope), so the service refuses them at start and a reload refuses them too. */
static lookup *lookups_for(pipeline *p, const config *cfg, perr *err)
{
    lookup *lk = lookup_new(cfg);
    if (!lookup_needed(lk)) return lk;
    buf what;
    buf_init(&what);
    lookup_describe(lk, &what);
    int rc = 0;
    if (!lookup_client(p))
        rc = perr_set(err,
                      "the settings' filters read %s (R4.3): that needs Salesforce access "
                      "(--salesforce-url and its credentials)",
                      what.data);
    else if (lookup_refresh(lk, lookup_client(p), SF_ESSENTIAL, err) < 0)
        rc = perr_prefix(err, "reading %s from Salesforce: ", what.data);
    buf_free(&what);
    if (rc < 0) {
        lookup_free(lk);
        return NULL;
    }
    p->next_lookup_refresh = mono_ms() + p->o->lookup_refresh_s * 1000L;
    return lk;
}

/* Before a batch is decided: an id the tables do not know (a profile created since they were
 * read) makes them be read again, so that no user is decided on a null that is not one. */
static int step_lookups(pipeline *p, perr *err)
{
    if (!lookup_needed(p->lk)) return 0;
    for (size_t i = 0; i < p->n_msgs; i++)
        if (p->ok[i]) lookup_note_fields(p->lk, p->events[i].fields, p->events[i].n_fields);
    for (size_t i = 0; i < p->gap_records.cap; i++) {
        const gap_rec *g = p->gap_records.slots[i].key ? p->gap_records.slots[i].val : NULL;
        if (g) lookup_note_fields(p->lk, g->fields, g->n);
    }
    return lookup_resolve_noted(p->lk, lookup_client(p), err);
}

/* 0 when decided, -1 when a Redis read failed, 2 when the event at p->current_i made a command
 * too large for Kafka (p->too_big): the batch's state is half-changed, and is decided again
 * without that event. */
static int step_decide(pipeline *p, perr *err)
{
    p->n_outs = 0;
    buf_reset(&p->bytes);
    p->too_big.set = false;
    for (size_t i = 0; i < p->n_msgs; i++) {
        if (!p->ok[i]) continue;
        p->current = p->msgs[i];
        p->current_i = i;
        perr e;
        const event *ev = &p->events[i];
        if (event_is_org_wide(ev) && p->o->sf) p->reimport_wanted = true;
        bool resolved = is_user_gap(ev) && p->gaps_read;
        if (resolved ? apply_gap(p, ev, &e) < 0 : engine_apply(p->eng, ev, &p->hooks, &e) < 0) {
            p->ok[i] = false;
            dead_letter(p, p->msgs[i], "invalid_event", e.msg);
        }
        if (p->too_big.set) break;
    }
    p->current = NULL;
    if (store_redis_failed(p->store, err)) return -1;
    return p->too_big.set ? 2 : 0;
}

/* R1.3, R9.2: the batch's GAP_OVERFLOW events are noted in Redis before its offsets are committed:
 * the reconciliation they ask for then outlives a crash or a failed reimport (the next attempt,
 * or the next start, makes it). */
static int step_note_overflows(pipeline *p, perr *err)
{
    const char **ids = NULL;
    size_t n = 0;
    for (size_t i = 0; i < p->n_msgs; i++) {
        if (!p->ok[i] || !event_is_org_wide(&p->events[i])) continue;
        if (!ids) ids = arena_alloc(&p->mem, p->n_msgs * sizeof *ids);
        const rd_kafka_message_t *m = p->msgs[i];
        char id[300];
        snprintf(id, sizeof id, "%s:%d:%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
                 (long long)m->offset);
        ids[n++] = arena_strdup(&p->mem, id);
    }
    return store_redis_overflow_note(p->store, ids, n, err);
}

/* At start: a GAP_OVERFLOW noted and not reconciled (a crash, a failed reimport) is made now. */
static int step_pending_overflows(pipeline *p, perr *err)
{
    char **ids;
    size_t n;
    if (store_redis_overflow_pending(p->store, &ids, &n, err) < 0) return -1;
    if (n) {
        char count[24];
        snprintf(count, sizeof count, "%zu", n);
        log_msg(LOG_WARN, "R1.3: GAP_OVERFLOW reconciliation left undone; reimporting", "overflows",
                count, NULL);
        p->reimport_wanted = true;
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return 0;
}

static int step_pending(pipeline *p, perr *err);
static int reimport_sync(void *ctx, perr *err);

/* Writes the cache, then resolves the links another instance raced with (R6.3) that the writes
 * report: their commands are produced now (at least once; exactly once outside a batch, in a
 * transaction of their own), or join the batch's and its pending record (exactly once), before the
 * next round's flush stores their states. A resolution that fails (a read, a produce, the record)
 * is forgotten whole and made again from Redis when the step is retried, its managers kept in
 * p->flush_due: its states are never stored without its commands (R9.2), and its command ids are
 * the same again (R9.1). */
static int step_flush_state(pipeline *p, perr *err)
{
    bool joins = p->in_transaction;
    for (int round = 0;; round++) {
        if (!p->flush_due.n) {
            double started = pipeline_mono_s();
            int rc = store_redis_flush(p->store, &p->flush_due, err);
            if (rc < 0 || !p->flush_due.n) {
                if (rc == 0) metric_observe(p->pm.redis_flush, pipeline_mono_s() - started);
                return rc;
            }
        }
        if (round == 4) { /* a fifth race in a row: check (c) heals it at the manager's next read */
            store_late_free(&p->flush_due);
            return 0;
        }
        if (!joins) {
            p->n_outs = 0;
            buf_reset(&p->bytes);
        }
        size_t outs0 = p->n_outs, bytes0 = p->bytes.len;
        for (size_t i = 0; i < p->flush_due.n; i++) {
            p->stats.late_resolutions++;
            engine_resolve_manager(p->eng, p->flush_due.managers[i], &p->hooks);
        }
        int rc = store_redis_failed(p->store, err) ? -1 : 0;
        if (rc == 0 && !joins && p->n_outs) rc = reimport_sync(p, err);
        if (rc == 0 && joins && p->n_outs > outs0) rc = step_pending(p, err);
        if (rc < 0) {
            store_redis_reset(p->store);
            p->n_outs = outs0;
            p->bytes.len = bytes0;
            return -1;
        }
        store_late_free(&p->flush_due);
    }
}

/* Adds the offsets after the batch's messages to list (the highest per partition). */
static void batch_offsets(const pipeline *p, rd_kafka_topic_partition_list_t *list)
{
    for (size_t i = 0; i < p->n_msgs; i++) {
        const rd_kafka_message_t *m = p->msgs[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
    }
}

/* Commits list, and destroys it. */
static int commit_offsets(pipeline *p, rd_kafka_topic_partition_list_t *list, perr *err)
{
    /* asynchronous: the states are stored, so a commit lost in a crash only redelivers events
     * that are then duplicates (R1.4); commits of one consumer stay in order */
    rd_kafka_resp_err_t e = list->cnt ? rd_kafka_commit(p->consumer, list, 1) : 0;
    rd_kafka_topic_partition_list_destroy(list);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return perr_set(err, "commit: %s", rd_kafka_err2str(e));
    return 0;
}

static int commit_batch(pipeline *p, perr *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    batch_offsets(p, list);
    return commit_offsets(p, list, err);
}

/* The offsets held back while late links wait to be resolved (flight_retire), once they are. */
static void commit_held(pipeline *p)
{
    if (!p->held) return;
    perr e;
    if (commit_offsets(p, p->held, &e) < 0)
        log_msg(LOG_WARN, "offset commit failed; the batches may be read again", "error", e.msg,
                NULL);
    p->held = NULL;
}

/* Puts the consumer back at the first offsets of messages (rewind_add for each set, then
 * rewind_list), so that what could not be delivered is read again (nothing of it was committed
 * and no state was written). rewind_add takes a replay's progress back to them too, or the
 * replay could end before reading them again. */
static void rewind_add(pipeline *p, rd_kafka_topic_partition_list_t *list,
                       rd_kafka_message_t *const *a, size_t na)
{
    for (size_t i = 0; i < na; i++) {
        const rd_kafka_message_t *m = a[i];
        for (size_t k = 0; k < p->n_ends; k++)
            if (p->ends[k].partition == m->partition && m->offset < p->ends[k].next)
                p->ends[k].next = m->offset;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
            tp->offset = m->offset;
        } else if (m->offset < tp->offset) {
            tp->offset = m->offset;
        }
    }
}

/* The messages given back are destroyed: a partition that cannot be sought back would go on
 * after them and commit past them, so the service stops instead (the next start reads from the
 * committed offsets, which they are not behind). */
static void rewind_list(pipeline *p, rd_kafka_topic_partition_list_t *list)
{
    if (list->cnt) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(p->consumer, list, 5000);
        const char *why = e ? rd_kafka_error_string(e) : NULL;
        int32_t part = list->elems[0].partition;
        for (int i = 0; !why && i < list->cnt; i++)
            if (list->elems[i].err) {
                why = rd_kafka_err2str(list->elems[i].err);
                part = list->elems[i].partition;
            }
        if (why) {
            log_msg(LOG_ERROR, "seek back failed; stopping", "error", why, NULL);
            snprintf(p->fatal_msg, sizeof p->fatal_msg,
                     "cannot seek partition %d back to the messages to read again: %s", (int)part,
                     why);
            p->fatal = true;
        }
        if (e) rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void rewind_batch(pipeline *p)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    rewind_add(p, list, p->msgs, p->n_msgs);
    rewind_list(p, list);
}

/* The batch ends with its message `keep - 1`: the ones after it are read again. */
static void cut_batch(pipeline *p, size_t keep)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    rewind_add(p, list, p->msgs + keep, p->n_msgs - keep);
    rewind_list(p, list);
    for (size_t i = keep; i < p->n_msgs; i++)
        rd_kafka_message_destroy(p->msgs[i]);
    p->n_msgs = keep;
}

static void decode_range(pipeline *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        rd_kafka_message_t *m = p->msgs[i];
        codec_error ce;
        p->ok[i] = false;
        if (!m->payload || !m->len) { /* a tombstone cannot be decoded either */
            p->stats.decode_errors++;
            dead_letter(p, m, "empty", "the message has no value");
            continue;
        }
        long backoff = 200;
        for (;;) {
            if (codec_decode(p->dec, m->payload, m->len, &p->mem, &p->events[i], &ce) == 0) {
                p->ok[i] = true;
                break;
            }
            /* a registry outage is not the message's fault: wait for it rather than
             * dead-letter good data; asked to stop meanwhile, the batch ends before the message
             * and the next owner reads the rest again */
            if (!codec_error_is_transient(ce.kind)) break;
            if (*p->o->stop) {
                log_msg(LOG_WARN,
                        "schema registry unavailable while stopping; the rest of the batch is read "
                        "again by the next owner",
                        "error", ce.msg, NULL);
                cut_batch(p, i);
                return;
            }
            log_msg(LOG_WARN, "schema registry unavailable; retrying", "error", ce.msg, NULL);
            beat(p);
            nap_backoff(p, &backoff, 5000);
        }
        if (!p->ok[i]) {
            p->stats.decode_errors++;
            dead_letter(p, m, codec_error_kind_name(ce.kind), ce.msg);
            continue;
        }
        event *ev = &p->events[i];
        ev->source.topic = rd_kafka_topic_name(m->rkt);
        ev->source.partition = m->partition;
        ev->source.offset = m->offset;
    }
}

/* A batch of this many events or more has its first half's users read ahead: Redis runs those
 * reads while the second half is decoded (store_redis_prefetch_ahead). */
#define READ_AHEAD_MIN 64

static void decode_batch(pipeline *p)
{
    size_t half = p->n_msgs >= READ_AHEAD_MIN ? p->n_msgs / 2 : 0;
    decode_range(p, 0, half);
    if (half && p->n_msgs > half) { /* not cut short by a stop */
        size_t n, n_subjects;
        const char **ids = batch_ids(p, half, &n, &n_subjects);
        store_redis_prefetch_ahead(p->store, ids, n);
    }
    decode_range(p, half, p->n_msgs);
}

static void print_dry_run(pipeline *p)
{
    for (size_t i = 0; i < p->n_outs; i++) {
        const out_msg *m = &p->outs[i];
        if (m->dead_letter) {
            fprintf(stderr, "dry run: would dead-letter partition %d offset %lld: %.*s\n",
                    m->src_partition, (long long)m->src_offset, (int)m->err_len,
                    p->bytes.data + m->err_off);
            continue;
        }
        fwrite(p->bytes.data + m->val_off, 1, m->val_len, p->o->dry_run_out);
        fputc('\n', p->o->dry_run_out);
    }
    fflush(p->o->dry_run_out);
}

/* ---------------------------------------------------------------- exactly-once
 * Redis and a Kafka transaction cannot commit together, so a batch goes:
 *   1. its commands (and dead letters) are written to Redis, per input partition, with the
 *      offsets they cover ("pending");
 *   2. the user states are written;
 *   3. one transaction produces the commands and commits the offsets;
 *   4. the pending record is cleared.
 * A crash before 3 commits aborts the transaction; the events are read again, but their states
 * are already written, so the engine would call them stale and say nothing: instead, when the
 * partition is assigned again, a pending record not covered by the committed offset is produced
 * again, with those offsets, in a transaction of its own, and consumption resumes after it.
 * A crash after 3 leaves a pending record that the committed offset covers: it is only cleared. */

static void put_u32(buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_append(b, x, 4);
}

static void put_i64(buf *b, int64_t v)
{
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
    put_u32(b, (uint32_t)v);
}

static void put_bytes(buf *b, const void *d, size_t n)
{
    put_u32(b, (uint32_t)n);
    buf_append(b, d, n);
}

typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
} reader;

static uint32_t get_u32(reader *r)
{
    if (r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v =
        (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static int64_t get_i64(reader *r)
{
    uint64_t hi = get_u32(r), lo = get_u32(r);
    return (int64_t)(hi << 32 | lo);
}

/* Appends the next length-prefixed field to p->bytes; returns its offset there. */
static size_t get_bytes(pipeline *p, reader *r, size_t *len)
{
    uint32_t n = get_u32(r);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        *len = 0;
        return p->bytes.len;
    }
    size_t off = p->bytes.len;
    buf_append(&p->bytes, r->p, n);
    r->p += n;
    *len = n;
    return off;
}

static void pending_name(const pipeline *p, int32_t partition, char *out, size_t n)
{
    snprintf(out, n, "pending:%s:%s:%d", p->o->group, p->o->input_topic, partition);
}

/* The messages of the batch from one partition (and, for the first, those no event owns: links
 * resolved after the flush). */
static void pending_encode(const pipeline *p, int32_t partition, int64_t first, int64_t last,
                           bool with_unowned, buf *out)
{
    buf_reset(out);
    buf_append(out, "PVP1", 4);
    put_i64(out, first);
    put_i64(out, last);
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_outs; i++)
        if (p->outs[i].src_partition == partition || (with_unowned && p->outs[i].src_partition < 0))
            n++;
    put_u32(out, n);
    const char *base = p->bytes.data;
    for (size_t i = 0; i < p->n_outs; i++) {
        const out_msg *m = &p->outs[i];
        if (!(m->src_partition == partition || (with_unowned && m->src_partition < 0))) continue;
        put_u32(out, (uint32_t)m->dead_letter << 8 | (uint32_t)m->type);
        buf_append(out, m->id, 32);
        put_u32(out, (uint32_t)m->src_partition);
        put_i64(out, m->src_offset);
        put_bytes(out, base + m->key_off, m->key_len);
        put_bytes(out, base + m->val_off, m->val_len);
        put_bytes(out, m->err_kind, strlen(m->err_kind));
        put_bytes(out, base + m->err_off, m->err_len);
    }
}

/* Loads a pending record into p->outs; -1 when it is not one. */
static int pending_decode(pipeline *p, const buf *in, int64_t *first, int64_t *last)
{
    reader r = {(const unsigned char *)in->data, (const unsigned char *)in->data + in->len, false};
    if (in->len < 4 || memcmp(in->data, "PVP1", 4) != 0) return -1;
    r.p += 4;
    *first = get_i64(&r);
    *last = get_i64(&r);
    uint32_t n = get_u32(&r);
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        out_msg *m = out_new(p);
        uint32_t kind = get_u32(&r);
        m->dead_letter = (kind >> 8) & 1;
        m->type = (command_type)(kind & 0xff);
        if (r.end - r.p < 32) {
            r.bad = true;
            break;
        }
        memcpy(m->id, r.p, 32);
        m->id[32] = '\0';
        r.p += 32;
        m->src_partition = (int32_t)get_u32(&r);
        m->src_offset = get_i64(&r);
        m->key_off = get_bytes(p, &r, &m->key_len);
        m->val_off = get_bytes(p, &r, &m->val_len);
        size_t kl, ko = get_bytes(p, &r, &kl);
        snprintf(m->err_kind, sizeof m->err_kind, "%.*s", (int)kl, p->bytes.data + ko);
        m->err_off = get_bytes(p, &r, &m->err_len);
    }
    return r.bad ? -1 : 0;
}

/* Produces p->outs and commits offsets in one transaction, retrying what Kafka says may be
 * retried. Fatal errors (a fenced producer) stop the service. */
static int txn_produce_commit(pipeline *p, const rd_kafka_topic_partition_list_t *offsets,
                              perr *err)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        rd_kafka_error_t *e = rd_kafka_begin_transaction(p->producer);
        if (!e) {
            if (produce_outputs(p, err) < 0) {
                e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "%s", err->msg);
            } else {
                rd_kafka_consumer_group_metadata_t *md =
                    rd_kafka_consumer_group_metadata(p->consumer);
                e = rd_kafka_send_offsets_to_transaction(p->producer, offsets, md, 30000);
                rd_kafka_consumer_group_metadata_destroy(md);
                if (!e) e = rd_kafka_commit_transaction(p->producer, 30000);
                if (!e) {
                    p->stats.transactions++;
                    return 0;
                }
            }
        }
        if (rd_kafka_error_is_fatal(e) || p->fatal) {
            perr_set(err, "transaction: fatal: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            p->fatal = true;
            return -1;
        }
        log_msg(LOG_WARN, "transaction failed; aborting and trying again", "error",
                rd_kafka_error_string(e), NULL);
        rd_kafka_error_destroy(e);
        p->stats.transaction_aborts++;
        rd_kafka_error_t *a = rd_kafka_abort_transaction(p->producer, 30000);
        if (a) {
            bool fatal = rd_kafka_error_is_fatal(a);
            perr_set(err, "abort_transaction: %s", rd_kafka_error_string(a));
            rd_kafka_error_destroy(a);
            if (fatal) {
                p->fatal = true;
                return -1;
            }
        }
        nap(p, 200L << attempt);
    }
    return perr_set(err, "transaction: gave up after 5 attempts");
}

static int step_pending(pipeline *p, perr *err)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    batch_offsets(p, parts);
    int rc = 0;
    for (int i = 0; i < parts->cnt && rc == 0; i++) {
        int64_t first = INT64_MAX;
        for (size_t k = 0; k < p->n_msgs; k++)
            if (p->msgs[k]->partition == parts->elems[i].partition && p->msgs[k]->offset < first)
                first = p->msgs[k]->offset;
        pending_encode(p, parts->elems[i].partition, first, parts->elems[i].offset - 1, i == 0,
                       &p->scratch);
        char name[512];
        pending_name(p, parts->elems[i].partition, name, sizeof name);
        rc = store_redis_blob_put(p->store, name, p->scratch.data, p->scratch.len, err);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static void clear_pending(pipeline *p, int32_t partition)
{
    char name[512];
    perr err;
    pending_name(p, partition, name, sizeof name);
    if (store_redis_blob_put(p->store, name, "", 0, &err) < 0) /* harmless: only re-checked */
        log_msg(LOG_WARN, "could not clear a pending batch record", "error", err.msg, NULL);
}

static int eos_batch(pipeline *p, perr *err)
{
    if (with_retry(p, step_pending, "keep pending commands", false, err) < 0) return -1;
    p->in_transaction = true; /* a late link's commands join the batch's */
    int frc = with_retry(p, step_flush_state, "write state", false, err);
    p->in_transaction = false;
    if (frc < 0) return -1;
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(16);
    batch_offsets(p, offsets);
    int rc = txn_produce_commit(p, offsets, err);
    if (rc == 0)
        for (int i = 0; i < offsets->cnt; i++)
            clear_pending(p, offsets->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(offsets);
    return rc;
}

/* On assignment: a pending batch that the committed offset does not cover is produced again
 * (same bytes, same command ids) with its offsets, and the partition starts after it. */
static void eos_recover(pipeline *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t ce = rd_kafka_committed(rk, committed, 10000);
    buf blob;
    buf_init(&blob);
    for (int i = 0; i < parts->cnt; i++) {
        char name[512];
        perr err;
        bool found = false;
        pending_name(p, parts->elems[i].partition, name, sizeof name);
        if (store_redis_blob_get(p->store, name, &blob, &found, &err) < 0) {
            log_msg(LOG_ERROR, "cannot read pending batch record", "error", err.msg, NULL);
            continue;
        }
        if (!found || !blob.len) continue;
        p->n_outs = 0;
        buf_reset(&p->bytes);
        int64_t first, last;
        if (pending_decode(p, &blob, &first, &last) < 0) {
            log_msg(LOG_ERROR, "pending batch record is corrupt; ignoring it", "key", name, NULL);
            continue;
        }
        int64_t c = ce ? RD_KAFKA_OFFSET_INVALID : committed->elems[i].offset;
        if (c > last) { /* the transaction did commit */
            clear_pending(p, parts->elems[i].partition);
            continue;
        }
        rd_kafka_topic_partition_list_t *off = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(off, parts->elems[i].topic, parts->elems[i].partition)
            ->offset = last + 1;
        char np[16], from[24], to[24];
        snprintf(np, sizeof np, "%d", parts->elems[i].partition);
        snprintf(from, sizeof from, "%lld", (long long)first);
        snprintf(to, sizeof to, "%lld", (long long)last);
        log_msg(LOG_WARN, "re-producing a batch whose transaction did not commit", "partition", np,
                "from", from, "to", to, NULL);
        if (txn_produce_commit(p, off, &err) == 0) {
            clear_pending(p, parts->elems[i].partition);
            parts->elems[i].offset = last + 1;
            p->stats.recovered_batches++;
        } else {
            log_msg(LOG_ERROR, "could not re-produce the pending batch", "error", err.msg, NULL);
        }
        rd_kafka_topic_partition_list_destroy(off);
    }
    p->n_outs = 0;
    buf_reset(&p->bytes);
    buf_free(&blob);
    rd_kafka_topic_partition_list_destroy(committed);
}

/* ---------------------------------------------------------------- overlap (at-least-once)
 * Batches are decided and produced while the ones before them still wait for their delivery
 * reports, up to fl_max awaiting at once (--batches-in-flight):
 *   batch N+1: collect, decode, prefetch, decide, seal its state write (held back), produce;
 *   batch N:   once every one of its delivery reports is in, its write is sent, and once that
 *              is answered its offsets are committed (oldest flight first).
 * The store answers N+1's reads with what N's sealed write will leave in Redis, so N+1 is decided
 * exactly as it would be after N. R9.2 holds per batch: a state is written only after its own
 * commands are acknowledged, offsets are committed only after that. When N cannot be delivered,
 * N and every batch after it are dropped unwritten and read again (drop_flights); when a late
 * link must be resolved first, the batch decided meanwhile is decided again. */

static bool overlapped(const pipeline *p) { return !p->o->exactly_once && !p->o->dry_run; }

static void swap_bytes(void *a, void *b, size_t n)
{
    unsigned char t[64], *x = a, *y = b;
    for (size_t done = 0; done < n; done += sizeof t) {
        size_t k = n - done < sizeof t ? n - done : sizeof t;
        memcpy(t, x + done, k);
        memcpy(x + done, y + done, k);
        memcpy(y + done, t, k);
    }
}

/* Exchanges the batch fields of p with those of a flight slot. */
static void flight_swap(pipeline *p, flight *f)
{
#define SWAP_FIELD(a, b) swap_bytes(&(a), &(b), sizeof(a))
    SWAP_FIELD(p->msgs, f->msgs);
    SWAP_FIELD(p->n_msgs, f->n_msgs);
    SWAP_FIELD(p->events, f->events);
    SWAP_FIELD(p->ok, f->ok);
    SWAP_FIELD(p->mem, f->mem);
    SWAP_FIELD(p->outs, f->outs);
    SWAP_FIELD(p->n_outs, f->n_outs);
    SWAP_FIELD(p->cap_outs, f->cap_outs);
#undef SWAP_FIELD
}

static flight *flight_at(pipeline *p, size_t i) { return &p->fl[(p->fl_head + i) % p->fl_slots]; }

static int step_write_flight(pipeline *p, perr *err)
{
    double started = pipeline_mono_s();
    if (store_redis_write_sealed(p->store, p->fl_write, &p->fl_late, err) < 0) return -1;
    metric_observe(p->pm.redis_flush, pipeline_mono_s() - started);
    return 0;
}

/* Writes the sealed state write w (none: nothing to write), again while Redis is away; what it
 * reports late is left in p->fl_late. */
static int write_sealed(pipeline *p, store_write *w, perr *err)
{
    p->fl_write = w;
    store_late_free(&p->fl_late); /* (what a write given up at shutdown kept) */
    return w ? with_retry(p, step_write_flight, "write state", false, err) : 0;
}

/* p's batch is stored: its offsets are committed, or held while late links wait to be resolved
 * (a crash before that reads it again, and its writes report the links again), and it counts as
 * finished. */
static void batch_stored(pipeline *p)
{
    if (p->late_acc.n) {
        if (!p->held) p->held = rd_kafka_topic_partition_list_new(16);
        batch_offsets(p, p->held);
    } else {
        perr e;
        if (commit_batch(p, &e) < 0) /* the states are stored: a redelivery is stale (R1.4) */
            log_msg(LOG_WARN, "offset commit failed; the batch may be read again", "error", e.msg,
                    NULL);
    }
    p->stats.batches++;
    p->stats.messages += p->n_msgs;
    batch_done(p);
}

/* The ids of the reports waiting for parts.manager, ascending (the order R6.3 places them in). */
static int step_read_waiting(pipeline *p, perr *err)
{
    struct parts *w = &p->parts;
    store_redis_reset(p->store);
    const char *one[1] = {w->manager};
    if (store_redis_prefetch(p->store, one, 1, err) < 0) return -1;
    engine_store *st = store_redis_iface(p->store);
    const char *const *r;
    size_t n = st->links(st->ctx, w->manager, &r);
    if (store_redis_failed(p->store, err)) return -1;
    w->ids = xmalloc((n ? n : 1) * sizeof *w->ids);
    for (size_t i = 0; i < n; i++)
        w->ids[i] = xstrdup(r[i]);
    w->n = n;
    qsort(w->ids, n, sizeof *w->ids, str_ptr_cmp);
    store_redis_reset(p->store);
    return 0;
}

/* The next part: its reports' states read, placed (decided again whole if a read fails). */
static int step_decide_part(pipeline *p, perr *err)
{
    struct parts *w = &p->parts;
    w->k = w->n - w->done < p->max_place ? w->n - w->done : p->max_place;
    store_redis_reset(p->store);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    const char **ids = xmalloc((w->k + 1) * sizeof *ids);
    ids[0] = w->manager;
    memcpy(ids + 1, w->ids + w->done, w->k * sizeof *ids);
    int rc = store_redis_prefetch_users(p->store, ids, w->k + 1, err);
    free(ids);
    if (rc < 0) return -1;
    engine_place_waiting(p->eng, w->manager, (const char *const *)w->ids + w->done, w->k, w->src,
                         &p->hooks);
    return store_redis_failed(p->store, err) ? -1 : 0;
}

/* Produces a part's commands, again with back-off while they are not delivered (same ids). */
static int produce_part(pipeline *p, perr *err)
{
    long backoff = 200;
    while (p->n_outs && produce_outputs(p, err) < 0) {
        p->stats.produce_failures++;
        if (p->fatal) return -1;
        log_msg(LOG_ERROR, "placements not produced; producing them again", "error", err->msg,
                NULL);
        if (past_shutdown_deadline(p)) return -1;
        nap_backoff(p, &backoff, 5000);
    }
    return 0;
}

/* R6.3 for one manager, --placements-at-once reports at a time: the waiting ids are read once,
 * then each part's states are read, placed, produced and stored before the next part is read,
 * so only the ids, not the states and commands, grow with the number of reports. A part stored
 * is no longer waiting: after a crash, the manager (active, reports still waiting) is found by
 * the next batch that reads it and resolved again from where it stopped. */
static int place_in_parts(pipeline *p, const char *manager, const command_source *src, perr *err)
{
    p->parts = (struct parts){.manager = manager, .src = src};
    int rc = with_retry(p, step_read_waiting, "read waiting reports", true, err);
    if (rc == 0 && p->parts.n > p->max_place) {
        char n[24], k[24];
        snprintf(n, sizeof n, "%zu", p->parts.n);
        snprintf(k, sizeof k, "%zu", (p->parts.n + p->max_place - 1) / p->max_place);
        log_msg(LOG_INFO, "placing a manager's waiting reports in parts (R6.3)", "manager", manager,
                "reports", n, "parts", k, NULL);
    }
    while (rc == 0 && p->parts.done < p->parts.n) {
        if (past_shutdown_deadline(p)) { /* the next owner places the rest */
            rc = perr_set(err, "shutdown deadline passed while placing waiting reports");
            break;
        }
        rc = with_retry(p, step_decide_part, "place waiting reports", true, err);
        if (rc == 0) rc = produce_part(p, err);
        if (rc == 0) rc = with_retry(p, step_flush_state, "write state", false, err);
        p->n_outs = 0;
        bytes_release(p);
        p->parts.done += p->parts.k;
        beat(p);
    }
    for (size_t i = 0; i < p->parts.n; i++)
        free(p->parts.ids[i]);
    free(p->parts.ids);
    p->parts = (struct parts){0};
    return rc;
}

/* Links another instance raced with (R6.3), reported by the flights' writes, and placements left
 * to after their batch (on_deferred): resolved on a fresh cache once no flight is left, produced
 * and stored before anything else. p's batch fields are a free flight slot's meanwhile (the
 * commands of the resolution go there). The caller keeps late: on failure it is still due. */
static int resolve_late(pipeline *p, store_late *late, perr *err)
{
    flight *f = &p->fl[p->fl_head];
    flight_swap(p, f);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < late->n; i++) {
        p->stats.late_resolutions++;
        /* the commands its event would have given them (R9.1), when it is the batch's */
        bool fan = p->fan.set && strcmp(p->fan.manager, late->managers[i]) == 0;
        rc = place_in_parts(p, late->managers[i], fan ? &p->fan.src : NULL, err);
    }
    p->n_outs = 0;
    buf_reset(&p->bytes);
    flight_swap(p, f);
    return rc;
}

static void late_merge(store_late *into, store_late *from)
{
    for (size_t i = 0; i < from->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < into->n && !seen; j++)
            seen = strcmp(into->managers[j], from->managers[i]) == 0;
        if (seen) {
            free(from->managers[i]);
            continue;
        }
        into->managers = xrealloc(into->managers, (into->n + 1) * sizeof *into->managers);
        into->managers[into->n++] = from->managers[i];
    }
    free(from->managers);
    *from = (store_late){0};
}

/* Empties every flight slot (its messages destroyed, nothing of it committed or stored). */
static void flights_forget(pipeline *p)
{
    for (size_t k = 0; k < p->fl_n; k++) {
        flight *f = flight_at(p, k);
        for (size_t i = 0; i < f->n_msgs; i++)
            rd_kafka_message_destroy(f->msgs[i]);
        f->n_msgs = 0;
        f->n_outs = 0;
        dl_restart(p, &f->dl); /* the flush before may have timed out */
        f->writing = false;
    }
    p->fl_n = 0;
}

/* Drops every flight and the batch after them (collected or decided, never produced): their
 * sealed writes, and their messages, which the consumer reads again from the first offsets. */
static void drop_flights(pipeline *p, bool rewind)
{
    sender_idle(p); /* a flight's messages are all with the producer before they are flushed */
    store_redis_discard(p->store, p->cur_w);
    p->cur_w = NULL;
    for (size_t i = p->fl_n; i-- > 0;) {
        store_redis_discard(p->store, flight_at(p, i)->w);
        flight_at(p, i)->w = NULL;
    }
    store_redis_reset(p->store);
    for (size_t i = 0; i < p->fl_n; i++) /* read again (here or by the next owner) */
        tally_take_back(p, &flight_at(p, i)->counted);
    /* what is still on its way must not land after what is produced again */
    if (p->fl_n) rd_kafka_flush(p->producer, shutdown_budget_ms(p, 10000));
    if (rewind) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
        for (size_t k = 0; k <= p->fl_n; k++) {
            rd_kafka_message_t *const *a = k < p->fl_n ? flight_at(p, k)->msgs : p->msgs;
            size_t na = k < p->fl_n ? flight_at(p, k)->n_msgs : p->n_msgs;
            rewind_add(p, list, a, na);
        }
        rewind_list(p, list);
    }
    flights_forget(p);
    for (size_t i = 0; i < p->n_msgs; i++)
        rd_kafka_message_destroy(p->msgs[i]);
    p->n_msgs = 0;
    p->n_outs = 0;
}

static size_t awaiting(pipeline *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->fl_n; i++)
        n += !flight_at(p, i)->writing;
    return n;
}

/* Retires the oldest flight, whose state write was sent ahead: takes the write's result (sending
 * it again until it is stored), commits its offsets; what it reports late goes to p->late_acc.
 * Returns 0, or -1 when fatal or abandoned on shutdown (nothing of it is committed: the next
 * owner reads it again). */
static int flight_retire(pipeline *p, perr *err)
{
    flight *f = flight_at(p, 0);
    if (write_sealed(p, f->w, err) < 0) return -1;
    f->w = NULL;
    late_merge(&p->late_acc, &p->fl_late);
    flight_swap(p, f); /* p's batch is the flight now; the batch after them waits in f */
    batch_stored(p);
    bool unusual = p->n_outs > TRIM_AFTER_OUTS;
    batch_release(p);
    /* what such a batch took (its commands in the producer, its state write, the reports' states)
     * is free again, but glibc keeps freed heap pages mapped: without this the RSS stays at
     * that batch's peak for the life of the process */
    if (unusual) malloc_trim(0);
    flight_swap(p, f);
    f->writing = false;
    p->fl_head = (p->fl_head + 1) % p->fl_slots;
    p->fl_n--;
    return 0;
}

/* Waits for the deliveries of flight f (the oldest not writing) and sends its state write ahead
 * (R9.2: only now). Returns 0; 1 when it was not delivered: the older flights are retired, then
 * f and every batch after it are read again (drop_flights); -1 when fatal. */
static int flight_send(pipeline *p, flight *f, perr *err)
{
    flight_swap(p, f);
    int rc = produce_wait(p, &f->dl, f->produced_at, err);
    flight_swap(p, f);
    if (rc < 0) {
        p->stats.produce_failures++;
        if (p->fatal) return -1;
        log_msg(LOG_ERROR, "commands not acknowledged; reading the batch again", "error", err->msg,
                NULL);
        while (p->fl_n && flight_at(p, 0) != f)
            if (flight_retire(p, err) < 0) return -1;
        drop_flights(p, true);
        return 1;
    }
    f->writing = true;
    perr e;
    if (f->w && store_redis_send_sealed(p->store, f->w, &e) < 0) /* sent again when retired */
        log_msg(LOG_DEBUG, "state write not sent ahead", "error", e.msg, NULL);
    return 0;
}

/* Without waiting: sends ahead the state writes of the flights delivered since, oldest first. A
 * flight with a failed delivery stops the walk; with handle_failed it is dropped and read again
 * (flight_send's 1), else it is left for make_room. Called once a batch is decided too, so that
 * Redis applies the writes while the batch is sealed and produced and the next one collected and
 * decoded (not before deciding: a read on the spot during the decisions would wait behind them). */
static int send_delivered(pipeline *p, bool handle_failed, perr *err)
{
    int r = 0;
    for (size_t i = 0; r == 0 && i < p->fl_n; i++) {
        flight *f = flight_at(p, i);
        if (f->writing) continue;
        pthread_mutex_lock(&p->snd.mu);
        bool wait = f->dl.outstanding || (f->dl.failures && !handle_failed);
        pthread_mutex_unlock(&p->snd.mu);
        if (wait) break;
        r = flight_send(p, f, err);
    }
    return r;
}

/* Moves the oldest flight one step: sends its write, or retires it. */
static int flight_advance(pipeline *p, perr *err)
{
    flight *f = flight_at(p, 0);
    return f->writing ? flight_retire(p, err) : flight_send(p, f, err);
}

/* Late links reported by the writes (R6.3) are resolved once no flight is left: returns 0 when
 * there were none, 2 when they were resolved (the batch decided meanwhile did not see what the
 * resolution changes: its sealed write is dropped and it is decided again), 1 or -1 as
 * flight_send and flight_retire. */
static int resolve_pending_late(pipeline *p, perr *err)
{
    if (!p->late_acc.n) return 0;
    while (p->fl_n) {
        int r = flight_advance(p, err);
        if (r != 0) return r; /* (what was retired is stored: its late links are still due) */
    }
    store_redis_discard(p->store, p->cur_w);
    p->cur_w = NULL;
    if (resolve_late(p, &p->late_acc, err) < 0) return -1;
    store_late_free(&p->late_acc);
    commit_held(p);
    return 2;
}

/* Without waiting: retires the flights whose writes were sent ahead and answered (their replies
 * are in), then sends the writes of the flights delivered since. */
static int finish_delivered(pipeline *p, perr *err)
{
    int r = 0;
    while (r == 0 && p->fl_n && flight_at(p, 0)->writing &&
           store_redis_write_answered(p->store, flight_at(p, 0)->w))
        r = flight_retire(p, err);
    return r == 0 ? send_delivered(p, true, err) : r;
}

/* Room for one more flight: at most fl_max awaiting their deliveries, a free slot. Returns 0, 2,
 * 1 or -1 as resolve_pending_late. */
static int make_room(pipeline *p, perr *err)
{
    int r = finish_delivered(p, err);
    while (r == 0 && (awaiting(p) >= p->fl_max || p->fl_n >= p->fl_slots))
        r = flight_advance(p, err);
    return r == 0 ? resolve_pending_late(p, err) : r;
}

/* Finishes every flight, oldest first. Returns as make_room. */
static int finish_flights(pipeline *p, perr *err)
{
    int r = 0;
    while (r == 0 && p->fl_n)
        r = flight_advance(p, err);
    return r == 0 ? resolve_pending_late(p, err) : r;
}

/* Between batches (idle, a reimport, a settings reload, leaving): nothing may stay in flight. */
static int drain(pipeline *p, perr *err)
{
    int r = finish_flights(p, err);
    return r < 0 ? -1 : 0;
}

/* R6.3 in parts: the batch ends with the event that made a manager with more than
 * --placements-at-once waiting reports active. It does not fly: once the batches before it are
 * finished, its commands are delivered and its state stored, its manager's reports are placed in
 * parts, and only then are its offsets committed. A crash in between reads it again: its events
 * are duplicates then, and the manager, stored active with reports still waiting, has the rest
 * placed before any of them is decided (store_redis_active_waiting). Returns 0 when done, 2 when
 * the batch must be decided again (its write was dropped for a late link), 1 or -1 as run_batch. */
static int fanout_finish(pipeline *p, perr *err)
{
    int r = finish_flights(p, err);
    if (r != 0) return r;
    if (p->n_outs && produce_outputs(p, err) < 0) {
        p->stats.produce_failures++;
        if (p->fatal) return -1;
        log_msg(LOG_ERROR, "commands not produced; reading the batch again", "error", err->msg,
                NULL);
        store_redis_discard(p->store, p->cur_w);
        p->cur_w = NULL;
        rewind_batch(p);
        return 1;
    }
    bytes_release(p);
    if (write_sealed(p, p->cur_w, err) < 0) return -1;
    p->cur_w = NULL;
    store_late late = {0};
    late_merge(&late, &p->fl_late);
    store_late mine = {.managers = xmalloc(sizeof(char *)), .n = 1}; /* whatever (c) said */
    mine.managers[0] = xstrdup(p->fan.manager);
    late_merge(&late, &mine);
    int rc = resolve_late(p, &late, err);
    if (rc < 0) late_merge(&p->late_acc, &late); /* still due, before anything else */
    store_late_free(&late);
    if (rc < 0) return -1;
    batch_stored(p); /* (late_acc is empty: the flights before it were finished) */
    return 0;
}

/* The dead letters a batch keeps across its decisions (the decoder's, and those of events whose
 * commands were too large): each decision's commands go behind them. */
typedef struct kept_letters {
    size_t n, len;
    out_msg *outs;
    char *bytes;
} kept_letters;

static void kept_free(kept_letters *k)
{
    free(k->outs);
    free(k->bytes);
    *k = (kept_letters){0};
}

/* Keeps p's outputs (dead letters only) as they are now. */
static void kept_take(pipeline *p, kept_letters *k)
{
    kept_free(k);
    if (!p->n_outs) return;
    k->n = p->n_outs;
    k->len = p->bytes.len;
    k->outs = xmalloc(k->n * sizeof *k->outs);
    memcpy(k->outs, p->outs, k->n * sizeof *k->outs);
    k->bytes = xmalloc(k->len ? k->len : 1);
    memcpy(k->bytes, p->bytes.data, k->len);
}

/* Puts the kept dead letters in front of p's outputs. */
static void kept_put_in_front(pipeline *p, const kept_letters *k)
{
    if (!k->n) return;
    size_t cmd_outs = p->n_outs, cmd_bytes = p->bytes.len;
    out_msg *cmds = xmalloc((cmd_outs ? cmd_outs : 1) * sizeof *cmds);
    memcpy(cmds, p->outs, cmd_outs * sizeof *cmds);
    char *cb = xmalloc(cmd_bytes ? cmd_bytes : 1);
    memcpy(cb, p->bytes.data, cmd_bytes);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    buf_append(&p->bytes, k->bytes, k->len);
    for (size_t i = 0; i < k->n; i++)
        *out_new(p) = k->outs[i];
    buf_append(&p->bytes, cb, cmd_bytes);
    for (size_t i = 0; i < cmd_outs; i++) {
        out_msg *o = out_new(p);
        *o = cmds[i];
        o->key_off += k->len;
        o->val_off += k->len;
        o->err_off += k->len; /* a dead letter of the decisions says why in its bytes */
    }
    free(cmds);
    free(cb);
}

/* Removes id from ev's record ids, each time it is named, unless it is all the event names: true
 * when the event is left with others. */
static bool record_remove(event *ev, const char *id)
{
    size_t kept = 0;
    for (size_t r = 0; r < ev->n_record_ids; r++)
        if (strcmp(ev->record_ids[r], id) != 0) kept++;
    if (kept == 0 || kept == ev->n_record_ids) return false;
    kept = 0;
    for (size_t r = 0; r < ev->n_record_ids; r++)
        if (strcmp(ev->record_ids[r], id) != 0) ev->record_ids[kept++] = ev->record_ids[r];
    ev->n_record_ids = kept;
    return true;
}

/* R9.4: the event at p->current_i made a command Kafka would refuse (p->too_big): it joins the
 * kept dead letters and is left out when the batch is decided again; of an event naming several
 * users (a change to many, a gap event), only the record whose command it was is left out. */
static void kept_too_big(pipeline *p, kept_letters *k)
{
    size_t i = p->current_i;
    event *ev = &p->events[i];
    /* the commands carrying a user's attributes are made at that user's own record; another
     * (a placement of a waiting report) leaves the whole event out */
    command_type t = p->too_big.type;
    bool own = t == CMD_CREATE_USER || t == CMD_REACTIVATE_USER || t == CMD_UPDATE_USER;
    bool one_record = own && record_remove(ev, p->too_big.user);
    if (!one_record) p->ok_decoded[i] = false;
    /* the events refused by the decisions before it are refused whatever the state (an event
     * without recordIds): their dead letters are kept, not made (and logged) again; a dead
     * letter's key, value and reason lie together in bytes */
    for (size_t j = 0; j < i; j++)
        if (p->ok_decoded[j] && !p->ok[j]) p->ok_decoded[j] = false;
    size_t n = 0, len = 0;
    for (size_t j = 0; j < p->n_outs; j++) {
        out_msg o = p->outs[j];
        if (!o.dead_letter) continue;
        size_t from = o.key_off, size = o.err_off + o.err_len - from;
        memmove(p->bytes.data + len, p->bytes.data + from, size);
        o.key_off = o.key_off - from + len;
        o.val_off = o.val_off - from + len;
        o.err_off = o.err_off - from + len;
        p->outs[n++] = o;
        len += size;
    }
    p->n_outs = n;
    p->bytes.len = len;
    kept_put_in_front(p, k);
    char msg[384];
    if (one_record)
        snprintf(msg, sizeof msg,
                 "the %s command of its record %s encodes to %zu bytes, too large for Kafka "
                 "(message.max.bytes %zu): that record is left out, the event's others are applied",
                 command_type_name(p->too_big.type), p->too_big.user, p->too_big.bytes,
                 p->max_message);
    else
        snprintf(msg, sizeof msg,
                 "its %s command encodes to %zu bytes, too large for Kafka (message.max.bytes "
                 "%zu): the event is not applied",
                 command_type_name(p->too_big.type), p->too_big.bytes, p->max_message);
    dead_letter(p, p->msgs[i], "command_too_large", msg);
    kept_take(p, k);
}

/* A step of the batch is done: its time since `started` (pipeline_mono_s) goes on /metrics. */
static void step_done(pipeline *p, pipeline_step step, double started)
{
    metric_observe(p->pm.steps[step], pipeline_mono_s() - started);
}

/* Returns 0 when the batch is done (committed), 1 when it must be read again, -1 when fatal or
 * abandoned on shutdown. */
static int run_batch(pipeline *p, perr *err)
{
    kept_letters kept = {0};
    /* what decoding and deciding this batch added to the counters */
    tally dec = {0}, dcs = {0}, t0, t1;
start:
    tally_take_back(p, &dcs); /* cut short (R6.3 in parts): decoded and decided again */
    tally_take_back(p, &dec);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    tally_take(p, &t0);
    double at = pipeline_mono_s();
    decode_batch(p);
    step_done(p, PIPELINE_STEP_DECODE, at);
    memcpy(p->ok_decoded, p->ok, p->n_msgs * sizeof *p->ok);
    /* the dead letters found while decoding are kept across decide retries */
    kept_take(p, &kept);
    tally_take(p, &t1);
    tally_add(&dec, &t0, &t1);
    int rc = -1;
    bool placed_early = false;
decide:
    for (;;) {
        /* an event found invalid by a decision that is thrown away is decided again too */
        memcpy(p->ok, p->ok_decoded, p->n_msgs * sizeof *p->ok);
        tally_take_back(p, &dcs);
        fan_clear(p);
        resolve_gaps(p);
        long backoff = 500;
        while (step_lookups(p, err) < 0) { /* Salesforce away: wait rather than guess */
            log_msg(LOG_ERROR, "Profile and UserRole tables cannot be read; the batch waits",
                    "error", err->msg, NULL);
            if (*p->o->stop) goto out;
            nap_backoff(p, &backoff, 30000);
            if (*p->o->stop) goto out;
        }
        at = pipeline_mono_s();
        int pre = with_retry(p, step_prefetch, "prefetch", true, err);
        step_done(p, PIPELINE_STEP_PREFETCH, at);
        if (pre < 0) goto out;
        if (overlapped(p) && !placed_early) {
            /* an active manager with reports still waiting (a crash cut its placements short,
             * or a race): placed before any event of the batch is decided, as they would have
             * been at its own event */
            store_late due = {0};
            store_redis_active_waiting(p->store, &due);
            if (due.n) {
                placed_early = true;
                late_merge(&p->late_acc, &due);
                int f = finish_flights(p, err); /* resolves them once no flight is left */
                if (f == 1) {
                    rc = 1;
                    goto out;
                }
                if (f < 0) goto out;
                store_redis_reset(p->store);
                continue;
            }
        }
        tally_take(p, &t0);
        at = pipeline_mono_s();
        int d = step_decide(p, err);
        step_done(p, PIPELINE_STEP_DECIDE, at);
        tally_take(p, &t1);
        if (d == 0) {
            tally_add(&dcs, &t0, &t1);
            break;
        }
        tally thrown = {0};
        tally_add(&thrown, &t0, &t1);
        if (d == 2) {
            /* the dead letters of the events refused before it are kept, and count once */
            uint64_t letters = thrown.dead_lettered;
            thrown.dead_lettered = 0;
            tally_take_back(p, &thrown);
            kept_too_big(p, &kept);
            dec.dead_lettered += letters + 1;
            store_redis_reset(p->store);
            continue;
        }
        tally_take_back(p, &thrown);
        count_redis_retry(p);
        log_msg(LOG_ERROR, "redis read failed during the batch; deciding it again", "error",
                err->msg, NULL);
        if (p->o->dry_run) goto out; /* the scratch state is half-changed: start the replay over */
        store_redis_reset(p->store);
        nap(p, 200);
        if (*p->o->stop) goto out;
    }
    if (p->fan.set && p->fan.at + 1 < p->n_msgs) {
        /* R6.3 in parts: nothing after the manager's event may be decided before its reports
         * are placed; those events are read again, after the parts */
        cut_batch(p, p->fan.at + 1);
        fan_clear(p);
        store_redis_reset(p->store);
        if (p->fatal) goto out; /* the rest could not be sought back: nothing of it is decided */
        goto start;
    }
    /* put the dead letters back in front of the commands */
    kept_put_in_front(p, &kept);
    if (p->o->dry_run) { /* print, change nothing; the cache stays as the scratch state */
        print_dry_run(p);
        p->stats.batches++;
        p->stats.messages += p->n_msgs;
        kept_free(&kept);
        return 0;
    }
    if (p->o->sf && with_retry(p, step_note_overflows, "note GAP_OVERFLOW", false, err) < 0)
        goto out;
    if (p->o->exactly_once) {
        at = pipeline_mono_s();
        int t = eos_batch(p, err);
        step_done(p, PIPELINE_STEP_TRANSACTION, at);
        if (t < 0) goto out;
        p->stats.batches++;
        p->stats.messages += p->n_msgs;
        rc = 0;
        goto out;
    }
    /* at-least-once: the writes of the flights delivered meanwhile are sent ahead, this batch's
     * write is sealed, room is made among the flights, then this one is produced and flies */
    perr sent_err; /* nothing fails here: a failed delivery is left for make_room */
    at = pipeline_mono_s();
    (void)send_delivered(p, false, &sent_err);
    int sealed = store_redis_seal(p->store, &p->cur_w, err);
    step_done(p, PIPELINE_STEP_SEAL, at);
    if (sealed < 0) { /* a read failed after all */
        store_redis_reset(p->store);
        goto decide;
    }
    store_redis_reset(p->store); /* its reads now come from the sealed write */
    if (p->fan.set) {
        at = pipeline_mono_s();
        int r = fanout_finish(p, err);
        step_done(p, PIPELINE_STEP_PLACE, at);
        if (r == 2) goto decide;
        fan_clear(p);
        rc = r;
        goto out;
    }
    /* flights already delivered are finished; the oldest is waited for when all are taken */
    at = pipeline_mono_s();
    int f = make_room(p, err);
    step_done(p, PIPELINE_STEP_FLIGHTS, at);
    if (f == 1) { /* dropped with the flights, rewound: read again */
        rc = 1;
        goto out;
    }
    if (f < 0) goto out;
    if (f == 2) goto decide; /* its write was dropped: decided again after the late links */
    double started = pipeline_mono_s();
    flight *slot = flight_at(p, p->fl_n);
    dl_restart(p, &slot->dl);
    sender_post(p, &slot->dl); /* a refusal fails the flight's delivery: read again then */
    step_done(p, PIPELINE_STEP_HAND_OVER, started);
    bytes_release(p);
    /* a flight needs its messages (offsets, timestamps), outputs and change types, no longer the
     * decoded events' strings: they go back now, not when it retires (four batches of them
     * otherwise, ~10 MiB under a backlog) */
    arena_reset(&p->mem);
    arena_trim(&p->mem, 0);
    slot->w = p->cur_w;
    p->cur_w = NULL;
    slot->produced_at = started;
    static const tally none = {0};
    slot->counted = dec;
    tally_add(&slot->counted, &none, &dcs);
    dec = dcs = none;     /* the flight's now: taken back if it is dropped */
    flight_swap(p, slot); /* the caller releases what is left in p: a finished flight's buffers */
    p->fl_n++;
    rc = 0;
out:
    if (rc == 0 && !overlapped(p)) batch_done(p);
    if (rc != 0) { /* read again: counted when decided then */
        tally_take_back(p, &dcs);
        tally_take_back(p, &dec);
    }
    kept_free(&kept);
    store_redis_reset(p->store);
    return rc;
}

/* ---------------------------------------------------------------- reimport (R8) in the service */

/* Each chunk's commands reach Kafka before its states are written (R9.2); with exactly-once they
 * go in a transaction of their own (no input offsets belong to them). */
static int reimport_sync(void *ctx, perr *err)
{
    pipeline *p = ctx;
    beat(p); /* a reimport takes minutes: /healthz must not call that stuck */
    int rc = 0;
    if (p->o->exactly_once) {
        rd_kafka_error_t *e = rd_kafka_begin_transaction(p->producer);
        if (!e && produce_outputs(p, err) == 0)
            e = rd_kafka_commit_transaction(p->producer, 30000);
        else if (!e)
            e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "%s", err->msg);
        if (e) {
            rc = perr_set(err, "reimport transaction: %s", rd_kafka_error_string(e));
            if (rd_kafka_error_is_fatal(e))
                p->fatal = true;
            else
                rd_kafka_error_destroy(rd_kafka_abort_transaction(p->producer, 30000));
            rd_kafka_error_destroy(e);
        }
    } else {
        rc = produce_outputs(p, err);
    }
    p->n_outs = 0;
    buf_reset(&p->bytes);
    return rc;
}

/* A reimport chunk's states, stored as a batch's are: again while Redis is away, and the links
 * another instance raced with resolved (R6.3). */
static int reimport_flush(void *ctx, perr *err)
{
    return with_retry(ctx, step_flush_state, "write reimport state", false, err);
}

/* 0 when the reimport was made. One that is not a dry run also reconciles every GAP_OVERFLOW
 * noted before it started (R1.3): those are done when it succeeds. */
static int run_reimport(pipeline *p, bool dry_run, bool confirm, const char *why_now)
{
    if (!p->o->sf) {
        log_msg(LOG_WARN, "a reimport was asked for but no Salesforce access is configured",
                "trigger", why_now, NULL);
        return -1;
    }
    char **overflows = NULL;
    size_t n_overflows = 0;
    perr oerr;
    if (!dry_run && store_redis_overflow_pending(p->store, &overflows, &n_overflows, &oerr) < 0)
        log_msg(LOG_WARN, "cannot read the GAP_OVERFLOW events to reconcile; they stay noted",
                "error", oerr.msg, NULL);
    log_msg(LOG_INFO, "reimport starting", "trigger", why_now, "dry_run", dry_run ? "yes" : "no",
            "confirm", confirm ? "yes" : "no", NULL);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    store_redis_reset(p->store);
    reimport_opts ro = {.sf = p->o->sf,
                        .store = p->store,
                        .cfg = p->o->cfg,
                        .emit = on_command,
                        .sync = reimport_sync,
                        .flush = reimport_flush,
                        .ctx = p,
                        .dry_run = dry_run,
                        .confirm = confirm,
                        .now_ms = wall_ms(),
                        .stop = p->o->stop};
    reimport_result res;
    perr err;
    int rc = reimport_run(&ro, &res, &err);
    if (rc < 0) {
        log_msg(LOG_ERROR, "reimport failed", "error", err.msg, NULL);
    } else {
        char a[24], b[24], c[24], d[24];
        snprintf(a, sizeof a, "%llu", (unsigned long long)res.salesforce_users);
        snprintf(b, sizeof b, "%llu", (unsigned long long)res.missing);
        snprintf(c, sizeof c, "%llu", (unsigned long long)res.held);
        snprintf(d, sizeof d, "%llu", (unsigned long long)p->n_outs);
        log_msg(LOG_INFO, dry_run ? "reimport dry run done (nothing changed)" : "reimport done",
                "salesforce_users", a, "gone_from_salesforce", b, "held_deactivations", c,
                dry_run ? "planned_commands" : "unsent", d, NULL);
        p->stats.reimports++;
        if (!dry_run) {
            pipeline_metrics_held(&p->pm, res.held);
            /* what others noted after this started stays in the set, for them */
            p->reimport_wanted = false;
            if (store_redis_overflow_done(p->store, (const char *const *)overflows, n_overflows,
                                          &oerr) < 0)
                log_msg(LOG_WARN,
                        "cannot clear the reconciled GAP_OVERFLOW events; the next "
                        "start reimports once more",
                        "error", oerr.msg, NULL);
        }
    }
    for (size_t i = 0; i < n_overflows; i++)
        free(overflows[i]);
    free(overflows);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    store_redis_reset(p->store);
    return rc;
}

/* A reimport the main loop starts itself (GAP_OVERFLOW, schedule): POST /reimport meanwhile is
 * refused (409) as while one asked for over HTTP runs. */
static int run_own_reimport(pipeline *p, const char *why_now)
{
    bool marked = pipeline_reimport_begin(p->health);
    int rc = run_reimport(p, false, false, why_now);
    if (marked) pipeline_reimport_done(p->health);
    return rc;
}

/* ---------------------------------------------------------------- operations: between batches
 * Each turn of the main loop beats for /healthz and publishes the counters as metrics; every 5 s
 * it reads the consumer lag and checks that an idle Redis and suspect brokers answer; it takes a
 * POST /reimport, and reloads the settings on SIGHUP or when the file changes. Between batches,
 * nothing is in flight: a new engine can take over from the old one. */

/* R8.3: the share of an event window needs the provisioned count; a state from before it gets it
 * once (a dry run counts into its scratch copy only). */
static int step_count_provisioned(pipeline *p, perr *err)
{
    return store_redis_count_provisioned(p->store, !p->o->dry_run, err);
}

/* R6.3: the waiting sets are looked up in their index, built once for a state from before it. */
static int step_index_waiting(pipeline *p, perr *err)
{
    return store_redis_index_waiting(p->store, !p->o->dry_run, err);
}

/* R7.2: the company switch, produced and stored before any further event: at start-up and after
 * a settings reload. */
static int company_settings(pipeline *p, const char *step, perr *err)
{
    if (with_retry(p, step_prefetch, step, true, err) < 0) return -1;
    engine_start(p->eng, &p->hooks);
    int rc = 0;
    if (p->n_outs && p->o->dry_run) {
        print_dry_run(p);
    } else if (p->n_outs) {
        /* produced first (in a transaction of its own with --exactly-once: a transactional
         * producer produces only in one), then stored (R9.2) */
        rc = reimport_sync(p, err);
        if (rc == 0) rc = with_retry(p, step_flush_state, step, false, err);
    }
    if (!p->o->dry_run) store_redis_reset(p->store);
    p->n_outs = 0;
    buf_reset(&p->bytes);
    return rc;
}

static void log_hint(void *ctx, const char *msg)
{
    log_msg(LOG_WARN, msg, "settings", (const char *)ctx, NULL);
}

/* A filter field that looks like a typo of a User field reads as null in every event, and a
 * checkbox compared with 'yes' is never true: said in the log at start and at each reload, as
 * check-config says it. */
static void log_field_hints(const config *cfg, const char *settings_path)
{
    config_field_hints(cfg, event_layout_default(), log_hint,
                       (void *)(settings_path ? settings_path : "settings"));
}

/* Loads the settings file again; in force only when it loads (config_load_file validates all of
 * it), else the error is logged and the old settings stay. The engine is rebuilt over the same
 * store (its state is all in Redis) and R7.2 runs again. -1 only when the company switch cannot
 * be produced: fatal, as at start-up, and the restart sends it. */
static int reload_settings(pipeline *p, const char *trigger, perr *err)
{
    const char *path = p->o->settings_path;
    config *fresh = NULL;
    perr lerr;
    if (config_load_file(path, &fresh, &lerr) < 0) {
        metric_add(p->pm.reload_error, 1);
        metric_set(p->pm.reload_failing, 1);
        log_msg(LOG_ERROR, "settings reload refused; the settings in force stay", "trigger",
                trigger, "error", lerr.msg, NULL);
        return 0;
    }
    lookup *lk = lookups_for(p, fresh, &lerr);
    if (!lk) {
        config_free(fresh);
        metric_add(p->pm.reload_error, 1);
        metric_set(p->pm.reload_failing, 1);
        log_msg(LOG_ERROR, "settings reload refused; the settings in force stay", "trigger",
                trigger, "error", lerr.msg, NULL);
        return 0;
    }
    /* the old engine's last counts, before its successor starts from zero */
    pipeline_metrics_publish(&p->pm, engine_get_stats(p->eng), NULL, NULL);
    engine_free(p->eng);
    lookup_free(p->lk);
    p->lk = lk;
    p->reads_managers = reads_manager_fields(fresh);
    memset(&p->lk_seen, 0, sizeof p->lk_seen);
    p->eng_opts.lookup_ctx = lk;
    config_free(p->owned_cfg); /* after the engine that used it; never the caller's */
    p->owned_cfg = fresh;
    p->opts.cfg = fresh;
    p->eng = engine_new(fresh, store_redis_iface(p->store), &p->eng_opts);
    pipeline_metrics_engine_replaced(&p->pm);
    metric_add(p->pm.reload_ok, 1);
    metric_set(p->pm.reload_failing, 0);
    log_msg(LOG_INFO, "settings reloaded", "trigger", trigger, "settings", path, NULL);
    log_field_hints(fresh, path);
    return company_settings(p, "settings reload", err);
}

/* "All brokers down" or a transport error said the brokers were away; librdkafka says nothing
 * when they come back, so ask one for metadata. (Not query_watermark_offsets: once its request is
 * out it waits for the broker's socket timeout, a minute, whatever timeout it was given.) */
static void check_brokers(pipeline *p)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->consumer, 0, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_store(&p->health->brokers_down, false);
    if (md) rd_kafka_metadata_destroy(md);
}

static void publish_lookups(pipeline *p)
{
    int64_t now = wall_ms(); /* refreshed_ms is wall clock */
    lookup_stats st;
    lookup_get_stats(p->lk, &st);
    metric_add(p->pm.lookup_ok, st.refreshes - p->lk_seen.refreshes);
    metric_add(p->pm.lookup_error, st.failures - p->lk_seen.failures);
    p->lk_seen = st;
    metric_set(p->pm.lookup_profiles, (double)st.rows[SOQL_REL_PROFILE]);
    metric_set(p->pm.lookup_roles, (double)st.rows[SOQL_REL_USERROLE]);
    metric_set(p->pm.lookup_age, st.refreshed_ms ? (double)(now - st.refreshed_ms) / 1000.0 : 0);
}

static int ops_turn(pipeline *p, perr *err)
{
    const pipeline_opts *o = p->o;
    int64_t now = mono_ms();
    beat(p);
    p->stats.fetch_wakes = kafka_waker_wakes(p->waker);
    /* the counters of finished batches only: a flight dropped later is read and counted again */
    engine_stats es = *engine_get_stats(p->eng);
    pipeline_stats ps = p->stats;
    for (size_t i = 0; i < p->fl_n; i++) {
        const tally *t = &flight_at(p, i)->counted;
        engine_stats_sub(&es, &t->eng);
        tally_sub_stats(&ps, t);
    }
    pipeline_metrics_publish(&p->pm, &es, store_redis_get_stats(p->store), &ps);
    publish_lookups(p);
    if (now >= p->next_ops_tick) {
        p->next_ops_tick = now + 5000;
        held_log_roll(p, false);
        pipeline_metrics_lag(&p->pm, p->consumer, p->last_assignment);
        if (atomic_load(&p->health->brokers_down)) check_brokers(p);
        if (!o->dry_run && now - p->last_redis_ms >= 5000) { /* idle: is Redis still there? */
            perr e;
            bool was_ok = atomic_load(&p->health->redis_ok);
            bool ok = store_redis_ping(p->store, &e) == 0;
            redis_step_done(p, ok);
            /* an outage while idle is seen as one while busy is: logged once, retries counted
             * (the alert on retries while /readyz fails) */
            if (!ok) count_redis_retry(p);
            if (!ok && was_ok)
                log_msg(LOG_ERROR, "redis unavailable; retrying", "step", "idle check", "error",
                        e.msg, NULL);
            else if (ok && !was_ok)
                log_msg(LOG_INFO, "redis is back", "step", "idle check", NULL);
        }
        if (lookup_client(p) && lookup_needed(p->lk) && o->lookup_refresh_s > 0 &&
            now >= p->next_lookup_refresh) {
            /* not essential: below the API floor the tables in hand stay in use */
            perr e;
            p->next_lookup_refresh = now + o->lookup_refresh_s * 1000L;
            if (lookup_refresh(p->lk, lookup_client(p), 0, &e) < 0)
                log_msg(LOG_WARN, "Profile and UserRole tables not read again; the last ones stay",
                        "error", e.msg, NULL);
        }
        long used, max;
        if (o->sf && sf_api_usage(o->sf, &used, &max)) {
            metric_set(p->pm.sf_used, (double)used);
            metric_set(p->pm.sf_max, (double)max);
        }
    }
    int req = pipeline_take_reimport(p->health);
    if (req) {
        bool dry = req & PIPELINE_REIMPORT_DRY_RUN, confirm = req & PIPELINE_REIMPORT_CONFIRM;
        metric_add(p->pm.reimports, 1);
        log_msg(LOG_INFO, "reimport requested", "trigger", "http", "dry_run", dry ? "yes" : "no",
                "confirm", confirm ? "yes" : "no", NULL);
        if (drain(p, err) < 0) return -1;
        if (!o->dry_run) (void)run_reimport(p, dry, confirm, "http");
        pipeline_reimport_done(p->health);
    }
    if (!o->settings_path || o->dry_run) return 0;
    const char *trigger = NULL;
    settings_sig sig;
    if (o->reload && *o->reload) {
        *o->reload = 0;
        trigger = "SIGHUP";
        settings_sig_read(o->settings_path, &sig);
    } else if (now >= p->next_settings_check) {
        p->next_settings_check = now + 2000;
        if (settings_sig_changed(o->settings_path, &p->settings_seen, &sig)) {
            if (settings_sig_settling(&sig)) { /* still being written: compared again soon */
                p->next_settings_check = now + 500;
                return 0;
            }
            trigger = "file changed";
        }
        p->settings_seen = sig; /* a touch with the same bytes is not looked at again */
    }
    if (!trigger) return 0;
    p->settings_seen = sig; /* a refused file is not tried again until it changes */
    if (drain(p, err) < 0) return -1;
    return reload_settings(p, trigger, err);
}

static void ops_init(pipeline *p)
{
    p->health = p->o->health;
    if (!p->health) {
        pipeline_health_init(&p->own_health);
        p->health = &p->own_health;
    }
    metrics *reg = p->o->metrics;
    if (!reg) reg = p->own_metrics = metrics_new();
    pipeline_metrics_init(&p->pm, reg);
    if (p->o->settings_path) settings_sig_read(p->o->settings_path, &p->settings_seen);
    p->next_settings_check = mono_ms() + 2000;
    atomic_store(&p->health->settings_loaded, p->o->cfg != NULL);
    beat(p);
}

static void ops_free(pipeline *p)
{
    pipeline_metrics_free(&p->pm);
    metrics_free(p->own_metrics);
    config_free(p->owned_cfg);
}

/* ---------------------------------------------------------------- setup */

/* Replay (R9.3): the input's partitions at the asked positions, and where each ends now. */
static int assign_for_replay(pipeline *p, rd_kafka_t *rk, perr *err)
{
    const pipeline_opts *o = p->o;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, o->input_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (e || !md || md->topic_cnt != 1 || md->topics[0].err) {
        if (md) rd_kafka_metadata_destroy(md);
        return perr_set(err, "replay: cannot read the partitions of %s: %s", o->input_topic,
                        rd_kafka_err2str(e ? e : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        int64_t off = RD_KAFKA_OFFSET_BEGINNING;
        if (o->start == START_OFFSETS) {
            bool named = false;
            for (size_t k = 0; k < o->n_offsets; k++)
                if (o->offsets[k].partition == part) {
                    off = o->offsets[k].offset;
                    named = true;
                }
            if (!named) continue;
        } else if (o->start == START_TIMESTAMP) {
            off = o->from_timestamp_ms;
        }
        rd_kafka_topic_partition_list_add(list, o->input_topic, part)->offset = off;
    }
    rd_kafka_metadata_destroy(md);
    for (size_t k = 0; k < o->n_offsets; k++) {
        if (!rd_kafka_topic_partition_list_find(list, o->input_topic, o->offsets[k].partition)) {
            rd_kafka_topic_partition_list_destroy(list);
            return perr_set(err, "replay: %s has no partition %d", o->input_topic,
                            o->offsets[k].partition);
        }
    }
    if (o->start == START_TIMESTAMP) {
        e = rd_kafka_offsets_for_times(rk, list, 10000);
        for (int i = 0; i < list->cnt; i++) /* unknown: from the beginning, skipping by time */
            if (e || list->elems[i].err || list->elems[i].offset < 0)
                list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    p->ends = xcalloc((size_t)list->cnt + 1, sizeof *p->ends);
    for (int i = 0; i < list->cnt; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, o->input_topic, list->elems[i].partition, &lo, &hi,
                                         10000);
        int64_t from = list->elems[i].offset >= 0 ? list->elems[i].offset : lo;
        p->ends[p->n_ends++] =
            (struct part_end){.partition = list->elems[i].partition, .end = hi, .next = from};
    }
    e = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) return perr_set(err, "replay: assign: %s", rd_kafka_err2str(e));
    return 0;
}

/* librdkafka's own lines (a request timed out, a broker went away) join the service's log as
 * JSON lines rather than bare text on stderr, with syslog's levels mapped to ours. Called from
 * librdkafka's threads: log_msg writes each line whole. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *line)
{
    log_level l = level <= 3   ? LOG_ERROR
                  : level == 4 ? LOG_WARN
                  : level <= 6 ? LOG_INFO
                               : LOG_DEBUG;
    log_msg(l, "librdkafka", "facility", fac, "client", rd_kafka_name(rk), "line", line, NULL);
}

/* Our defaults, then the user's pass-through properties (later wins), so -X can tune them. */
static rd_kafka_conf_t *conf_with_defaults(const pipeline_opts *o, const char *const *defaults,
                                           size_t n_defaults, perr *err)
{
    char **all = xcalloc(n_defaults + o->n_kafka_props + 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; i < n_defaults; i++)
        all[n++] = (char *)defaults[i];
    for (size_t i = 0; i < o->n_kafka_props; i++)
        all[n++] = o->kafka_props[i];
    rd_kafka_conf_t *conf = kafka_conf_new(o->brokers, all, n, err);
    free(all);
    if (conf) rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    return conf;
}

/* A client with the pipeline's callbacks; takes conf in every case. */
static rd_kafka_t *new_client(pipeline *p, rd_kafka_type_t type, rd_kafka_conf_t *conf, perr *err)
{
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    else
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        perr_set(err, "%s: %s", type == RD_KAFKA_CONSUMER ? "consumer" : "producer", errstr);
    }
    return rk;
}

static rd_kafka_t *new_consumer(pipeline *p, perr *err)
{
    const pipeline_opts *o = p->o;
    /* Bounded prefetch keeps the RSS small whatever the topic holds; short fetch waits keep the
     * latency low (a broker that never cuts a long poll short, like the mock, would add it). The
     * queue bound is checked before a fetch, which may then bring up to fetch.max.bytes (50 MB by
     * default): 1 MiB keeps that overshoot small. (Not max.partition.fetch.bytes: below the size
     * of a produced message set, fetches stall, a third slower end to end on the dev broker.)
     * Once the queue holds queued.min.messages, librdkafka 2.0 stops fetching until its broker
     * thread next wakes, up to a second later: the waker (start_waker) wakes it when the queue
     * is half drained, so a small queue keeps up. Every fetched message stays in memory until
     * its batch is finished, and a message keeps its whole fetch response: 1 MiB fetches, not
     * 8, are what brought the RSS under a backlog from ~120 to ~70 MiB. */
    static const char *const defaults[] = {"partition.assignment.strategy=cooperative-sticky",
                                           "auto.offset.reset=earliest",
                                           "queued.max.messages.kbytes=16384",
                                           "queued.min.messages=10000",
                                           "fetch.wait.max.ms=10",
                                           "fetch.max.bytes=1048576"};
    rd_kafka_conf_t *conf =
        conf_with_defaults(o, defaults, sizeof defaults / sizeof defaults[0], err);
    if (!conf) return NULL;
    /* what R9.2 rests on is not the user's to change */
    if (kafka_conf_set(conf, "group.id", o->group, err) < 0 ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err) < 0 ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
        (o->exactly_once && kafka_conf_set(conf, "isolation.level", "read_committed", err) < 0)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = new_client(p, RD_KAFKA_CONSUMER, conf, err);
    if (!rk) return NULL;
    rd_kafka_poll_set_consumer(rk);
    if (o->start != START_COMMITTED) {
        if (assign_for_replay(p, rk, err) < 0) {
            rd_kafka_destroy(rk);
            return NULL;
        }
        atomic_store(&p->health->joined, true);
        p->assigned_once = true; /* no group: closing is safe at any time */
        return rk;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        perr_set(err, "subscribe to %s: %s", o->input_topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* The fetch waker (kafka_waker), firing when the queue is down to half of the consumer's
 * queued.min.messages. Without it the service would idle a third of a backlog's time (see
 * new_consumer). */
static int start_waker(pipeline *p, perr *err)
{
    char v[32];
    size_t n = sizeof v;
    if (rd_kafka_conf_get(rd_kafka_conf(p->consumer), "queued.min.messages", v, &n) !=
        RD_KAFKA_CONF_OK)
        return perr_set(err, "consumer: cannot read queued.min.messages");
    size_t full = (size_t)strtoull(v, NULL, 10);
    p->waker = kafka_waker_start(p->consumer, full / 2, err);
    return p->waker ? 0 : -1;
}

static rd_kafka_t *new_producer(pipeline *p, perr *err)
{
    const pipeline_opts *o = p->o;
    /* A batch waits for its deliveries: a long linger would only add to every batch. One
     * produce request per broker at a time: batches still overlap (the next one is decided and
     * queued while a request is out), and fewer requests of a partition race around a refused
     * one, which is what makes librdkafka acknowledge messages implicitly (kafka_delivered):
     * each such batch is produced again. */
    static const char *const defaults[] = {"linger.ms=1",
                                           "max.in.flight.requests.per.connection=1"};
    rd_kafka_conf_t *conf = conf_with_defaults(o, defaults, 2, err);
    if (!conf) return NULL;
    if (kafka_conf_set(conf, "enable.idempotence", "true", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (o->exactly_once && kafka_conf_set(conf, "transactional.id", o->transactional_id, err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = new_client(p, RD_KAFKA_PRODUCER, conf, err);
    if (!rk) return NULL;
    if (o->exactly_once) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
        if (e) {
            perr_set(err, "init_transactions (transactional.id %s): %s", o->transactional_id,
                     rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rd_kafka_destroy(rk);
            return NULL;
        }
    }
    return rk;
}

/* A fresh producer learns a topic's partitions on its first message to it, and that message
 * waits (about a second against the dev broker): asked for now, while the consumer joins its
 * group, the first batch does not wait. Failure is harmless: the first produce asks again. */
static void warm_up(pipeline *p)
{
    if (p->o->dry_run) return;
    p->out_topic = rd_kafka_topic_new(p->producer, p->o->output_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (p->out_topic && rd_kafka_metadata(p->producer, 0, p->out_topic, &md, 5000) == 0 && md)
        rd_kafka_metadata_destroy(md);
}

/* Leaving the group waits for the brokers: done when they answer. When the shutdown's work ran
 * out of time (Redis frozen, most often) a broker that answers within the part of the timeout
 * left for it is asked to let the group go; otherwise the group notices at its session timeout. */
static bool may_leave_group(pipeline *p)
{
    /* librdkafka 2.0's cooperative-sticky assignor aborts the process when a member is closed
     * (or destroyed) before its first assignment (librdkafka #4312, fixed in 2.3): a stop during
     * the first join exits without leaving; the group drops the member at its session timeout */
    if (!p->assigned_once) return false;
    /* the work ended in time: the brokers answer (brokers_down may still hold a disconnect of a
     * moment ago: it is cleared only by the next ops tick) */
    if (!past_shutdown_deadline(p)) return true;
    if (atomic_load(&p->health->brokers_down)) return false;
    int64_t left = p->leave_deadline - mono_ms();
    if (left <= 0) return false;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->consumer, 0, NULL, &md, left < 500 ? (int)left : 500) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    rd_kafka_metadata_destroy(md);
    return true;
}

static void teardown(pipeline *p)
{
    sender_stop(p); /* it uses the flights' messages and the producer */
    poller_stop(p); /* it counts reports in the flights */
    /* a flight still here was abandoned (fatal, or past the shutdown deadline): its messages go
     * before the consumer that owns them, and leaving the group must not try to finish it */
    flights_forget(p);
    kafka_waker_stop(p->waker); /* it uses the consumer */
    p->waker = NULL;
    if (p->consumer) {
        /* leaves the group when the brokers answer (may_leave_group): closing (and destroying)
         * would otherwise wait for them, past the pod's grace period; the group then notices at
         * its session timeout */
        if (may_leave_group(p)) {
            rd_kafka_consumer_close(p->consumer);
            rd_kafka_destroy(p->consumer);
        } else if (!p->assigned_once) { /* destroying would abort too (may_leave_group) */
            log_msg(LOG_INFO,
                    "stopped before the group's first assignment: the group drops this member at "
                    "its session timeout",
                    NULL);
        } else { /* destroying would wait for the brokers too: the process exits without it */
            log_msg(LOG_WARN,
                    "the consumer group was not left: the brokers do not answer within the "
                    "shutdown timeout (the group notices at its session timeout)",
                    NULL);
        }
    }
    if (p->out_topic) rd_kafka_topic_destroy(p->out_topic);
    if (p->producer) {
        rd_kafka_flush(p->producer, shutdown_budget_ms(p, 5000));
        /* past the deadline with messages still out, destroying would wait for the brokers:
         * they are not counted as delivered, so their batch is read again */
        if (!shutdown_deadline(p) || rd_kafka_outq_len(p->producer) == 0)
            rd_kafka_destroy(p->producer);
    }
    for (size_t k = 0; k < p->fl_slots; k++) {
        flight *f = &p->fl[k];
        free(f->msgs);
        free(f->events);
        free(f->ok);
        free(f->outs);
        arena_free(&f->mem);
    }
    store_late_free(&p->late_acc);
    store_late_free(&p->flush_due);
    free(p->ok_decoded);
    store_late_free(&p->fl_late);
    engine_free(p->eng);
    lookup_free(p->lk);
    store_redis_close(p->store);
    codec_decoder_free(p->dec);
    codec_command_encoder_free(p->enc);
    free(p->msgs);
    free(p->events);
    free(p->ok);
    free(p->outs);
    free(p->revoked);
    free(p->ends);
    strmap_free(&p->gap_records, NULL);
    buf_free(&p->bytes);
    buf_free(&p->snd.bytes);
    buf_free(&p->scratch);
    arena_free(&p->mem);
    fan_clear(p);
    pthread_cond_destroy(&p->snd.cv);
    pthread_cond_destroy(&p->snd.reported);
    pthread_mutex_destroy(&p->snd.mu);
    if (p->held) rd_kafka_topic_partition_list_destroy(p->held); /* read again by the next owner */
}

static void log_stats(const pipeline *p, const char *msg)
{
    const engine_stats *es = engine_get_stats(p->eng);
    char a[24], b[24], c[24], d[24], e[24], f[24];
    snprintf(a, sizeof a, "%llu", (unsigned long long)p->stats.messages);
    snprintf(f, sizeof f, "%llu", (unsigned long long)es->events);
    snprintf(b, sizeof b, "%llu", (unsigned long long)p->stats.commands_produced);
    snprintf(c, sizeof c, "%llu", (unsigned long long)p->stats.dead_lettered);
    snprintf(d, sizeof d, "%llu", (unsigned long long)(es->duplicates + es->stale));
    snprintf(e, sizeof e, "%llu", (unsigned long long)p->stats.batches);
    /* the main thread's seconds by step (provisioner_batch_step_seconds), "decode=1.52,..." */
    char st[PIPELINE_STEP__COUNT * 32] = "";
    size_t n = 0;
    for (int i = 0; i < PIPELINE_STEP__COUNT && p->pm.steps[i] && n < sizeof st; i++)
        n += (size_t)snprintf(st + n, sizeof st - n, "%s%s=%.3f", n ? "," : "",
                              pipeline_step_name((pipeline_step)i), metric_sum(p->pm.steps[i]));
    log_msg(LOG_INFO, msg, "messages", a, "batches", e, "events_decided", f, "produced", b,
            "dead_lettered", c, "duplicates_or_stale", d, "step_seconds", st, NULL);
}

int pipeline_run(const pipeline_opts *o, perr *err)
{
    pipeline pl = {.opts = *o};
    pipeline *p = &pl;
    p->o = o = &p->opts; /* from here on, o->cfg is the settings in force */
    ops_init(p);
    pthread_mutex_init(&p->snd.mu, NULL);
    pthread_cond_init(&p->snd.cv, NULL);
    pthread_condattr_t mono; /* dl_left's deadlines: a clock step must not stretch them */
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&p->snd.reported, &mono);
    pthread_condattr_destroy(&mono);
    arena_init(&p->mem, 1 << 20);
    buf_init(&p->bytes);
    buf_init(&p->snd.bytes);
    buf_init(&p->scratch);
    p->msgs = xcalloc((size_t)o->batch_size, sizeof *p->msgs);
    p->events = xcalloc((size_t)o->batch_size, sizeof *p->events);
    p->ok = xcalloc((size_t)o->batch_size, sizeof *p->ok);
    p->ok_decoded = xcalloc((size_t)o->batch_size, sizeof *p->ok_decoded);
    p->fl_max = o->batches_in_flight > 0 ? (size_t)o->batches_in_flight : PIPELINE_FLIGHTS;
    if (p->fl_max > MAX_FLIGHTS / 2) p->fl_max = MAX_FLIGHTS / 2;
    p->fl_slots = 2 * p->fl_max;
    for (size_t k = 0; k < p->fl_slots; k++) {
        flight *f = &p->fl[k];
        f->msgs = xcalloc((size_t)o->batch_size, sizeof *f->msgs);
        f->events = xcalloc((size_t)o->batch_size, sizeof *f->events);
        f->ok = xcalloc((size_t)o->batch_size, sizeof *f->ok);
        arena_init(&f->mem, 1 << 20);
    }
    int rc = -1;

    codec_error ce;
    codec_decoder_config dc = {.registry = {.url = o->registry},
                               .writer_avsc = o->schema_avsc,
                               .writer_avsc_len = o->schema_avsc_len};
    if (codec_decoder_new(&dc, &p->dec, &ce) < 0) {
        perr_set(err, "decoder%s%s: %s", o->schema ? " --schema " : "", o->schema ? o->schema : "",
                 ce.msg);
        goto out;
    }
    codec_command_encoder_config ec = {
        .format = o->output_format, .registry = {.url = o->registry}, .topic = o->output_topic};
    if (codec_command_encoder_new(&ec, &p->enc, &ce) < 0) {
        perr_set(err, "command encoder: %s", ce.msg);
        goto out;
    }
    store_redis_opts so = {.url = o->redis_url,
                           .prefix = o->redis_prefix,
                           .keep_cache = o->dry_run,
                           .writes_ahead = !o->dry_run && !o->exactly_once};
    if (store_redis_open(&so, &p->store, err) < 0) goto out;
    if (!(p->lk = lookups_for(p, o->cfg, err))) goto out;
    p->reads_managers = reads_manager_fields(o->cfg);
    p->max_place = o->placements_at_once > 0 ? (size_t)o->placements_at_once : PIPELINE_PLACEMENTS;
    p->eng_opts = (engine_opts){.with_why = true,
                                .with_source = true,
                                .lookup = lookup_get,
                                .lookup_ctx = p->lk,
                                .max_placements = p->max_place};
    p->eng = engine_new(o->cfg, store_redis_iface(p->store), &p->eng_opts);
    p->hooks =
        (engine_hooks){.ctx = p, .emit = on_command, .warn = on_warning, .deferred = on_deferred};
    log_field_hints(o->cfg, o->settings_path);
    if (!(p->producer = new_producer(p, err)) || !(p->consumer = new_consumer(p, err)) ||
        start_waker(p, err) < 0 || poller_start(p, err) < 0)
        goto out;
    p->max_message = kafka_max_message(p->producer);
    if (overlapped(p) && sender_start(p, err) < 0) goto out;
    warm_up(p);

    if (with_retry(p, step_count_provisioned, "count provisioned", true, err) < 0) goto out;
    if (with_retry(p, step_index_waiting, "index waiting sets", true, err) < 0) goto out;
    /* R7.2 at start-up: the company switch, produced and stored before any event */
    if (company_settings(p, "start", err) < 0) goto out;
    bool pending = o->sf && !o->dry_run;
    if (pending && with_retry(p, step_pending_overflows, "pending GAP_OVERFLOW", true, err) < 0)
        goto out;

    log_msg(LOG_INFO, "consuming", "topic", o->input_topic, "group", o->group, NULL);
    int64_t last_seen = mono_ms(), last_log = mono_ms(), started = mono_ms();
    int64_t next_reimport = o->reimport_interval_s ? mono_ms() + o->reimport_interval_s * 1000L : 0;
    bool worked = false; /* batches since the heap was last trimmed */
    while (!*o->stop && !p->fatal) {
        if (ops_turn(p, err) < 0) goto out;
        double at = pipeline_mono_s();
        size_t n = collect(p, &last_seen);
        if (n) step_done(p, PIPELINE_STEP_COLLECT, at);         /* (an idle poll is no batch's) */
        int r = n ? run_batch(p, err) : finish_flights(p, err); /* idle: nothing waits */
        if (n) {
            batch_release(p);
            bytes_release(p);
            worked = true;
        } else if (worked && r == 0 && !p->fl_n) { /* caught up: give back what the backlog took */
            malloc_trim(0);
            worked = false;
        }
        if (r < 0) {
            if (p->fatal || !*o->stop) goto out;
            log_msg(LOG_WARN,
                    "shutdown deadline passed; the unfinished batch will be read "
                    "again by the next owner",
                    NULL);
            break;
        }
        if (!n && o->exit_when_idle_s && (p->n_assigned > 0 || p->n_ends) &&
            mono_ms() - (last_seen > p->last_assignment ? last_seen : p->last_assignment) >
                o->exit_when_idle_s * 1000L) {
            log_msg(LOG_INFO, "idle: caught up with the input", NULL);
            if (p->reimport_wanted && !o->dry_run)
                log_msg(LOG_WARN,
                        "a GAP_OVERFLOW reconciliation is still to be made; it stays "
                        "noted in Redis for the next start",
                        NULL);
            break;
        }
        if (o->progress && mono_ms() - last_log > 1000) {
            double secs = (double)(mono_ms() - started) / 1000.0;
            double rate = secs > 0 ? (double)p->stats.messages / secs : 0;
            int64_t lag = replay_lag(p);
            fprintf(stderr, "\r%llu events, %.0f/s, lag %lld, ETA %.0f s   ",
                    (unsigned long long)p->stats.messages, rate, (long long)lag,
                    rate > 0 ? (double)lag / rate : 0.0);
            last_log = mono_ms();
        } else if (!o->progress && mono_ms() - last_log > 10000) {
            log_stats(p, "progress");
            last_log = mono_ms();
        }
        /* GAP_OVERFLOW: the whole org (R1.3, R8); a failure is tried again, backing off */
        if (p->reimport_wanted && !o->dry_run && mono_ms() >= p->reimport_retry_at) {
            if (drain(p, err) < 0) goto out;
            if (run_own_reimport(p, "GAP_OVERFLOW") == 0) {
                p->reimport_backoff_ms = 0;
            } else {
                long next = p->reimport_backoff_ms ? p->reimport_backoff_ms * 2 : 30000;
                p->reimport_backoff_ms = next > 600000 ? 600000 : next;
                p->reimport_retry_at = mono_ms() + p->reimport_backoff_ms;
                char secs[24];
                snprintf(secs, sizeof secs, "%ld", p->reimport_backoff_ms / 1000);
                log_msg(LOG_WARN, "the GAP_OVERFLOW reconciliation is tried again later",
                        "in_seconds", secs, NULL);
            }
        }
        if (next_reimport && mono_ms() >= next_reimport && !o->dry_run) {
            if (drain(p, err) < 0) goto out;
            (void)run_own_reimport(p, "schedule");
            next_reimport = mono_ms() + o->reimport_interval_s * 1000L;
        }
        if (o->stop_at_end && p->n_ends && reached_end(p)) {
            log_msg(LOG_INFO, "replay reached the end offsets seen at start", NULL);
            break;
        }
    }
    /* the last batches in flight: delivered, stored and committed before leaving (within the
     * shutdown deadline; past it, the next owner reads them again) */
    if (!p->fatal && finish_flights(p, err) < 0 && !p->fatal)
        log_msg(LOG_WARN, "shutdown deadline passed; the batches in flight are read again later",
                NULL);
    atomic_store(&p->health->stopping, true);
    if (o->progress) fputc('\n', stderr);
    if (p->fatal) {
        perr_set(err, "%s", p->fatal_msg);
        goto out;
    }
    rc = 0;
out:
    /* what made it fatal is the reason it stops, whatever step noticed it (a seek back that
     * failed sets only the flag: the caller logged an empty message) */
    if (rc != 0 && p->fatal) perr_set(err, "%s", p->fatal_msg);
    atomic_store(&p->health->stopping, true);
    held_log_roll(p, true);
    if (p->eng) log_stats(p, "stopped");
    teardown(p);
    ops_free(p);
    return rc;
}
