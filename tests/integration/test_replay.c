/* `provisioner replay` (issue 7, R9.3, R1.4, R9.1) end to end: real redis-server, the dev broker
 * and the binary, on several scenarios of tests/scenarios and a generated stream.
 *
 *   - --from-beginning with the state a first run left: no command at all, the state unchanged
 *     (R9.3: nothing twice);
 *   - --from-beginning into a fresh --state-prefix: the first run's commands exactly (same ids and
 *     payloads, as many) and the same state key by key;
 *   - --dry-run into an empty prefix prints the first run's commands and writes nothing: DBSIZE,
 *     every topic's high watermarks and the replay group's committed offsets unchanged; against
 *     the existing state it prints nothing;
 *   - --offsets P:O starts there (one partition: the commands of a fresh first run on the events
 *     from O on; several partitions: only the partitions named, from their offsets);
 *   - --from-timestamp skips the messages older than the timestamp. The dev broker cannot look
 *     timestamps up (librdkafka 2.0.2's mock answers every ListOffsets by time with "none"), so
 *     replay starts from the beginning and must skip by each message's own timestamp: the events
 *     are produced here with known Kafka timestamps (RD_KAFKA_V_TIMESTAMP, values encoded with
 *     the codec as produce-events does). Only a real cluster exercises offsets_for_times itself;
 *   - bad flag combinations exit 2 before touching anything.
 *
 * Input topics have one partition where the expected commands are exact (Kafka keeps one
 * partition's order; with several, the cross-user order in a batch and so the hierarchy commands
 * depend on fetch timing). Commands are read back from the output topics with librdkafka up to
 * their high watermarks (verify.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "event/event.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "verify.h"

TestSuite(replay, .fini = h_teardown, .timeout = 600);

#define WAVE 4 /* processes at once */

/* The scenarios replayed: hierarchy waiting and resolution, duplicates and stale events (R1.4),
 * reactivation, company settings at start (R7.2), a stream that replays itself (R9.1). */
static const char *const SCENARIOS[] = {
    "hierarchy_pending",
    "r1_4_duplicate_event_ignored",
    "r1_4_stale_out_of_order",
    "r5_5_reactivate_assignment_changed_automatic",
    "r6_3_chain_resolution",
    "r6_3_waiting_report_changed_manager",
    "r7_2_company_settings_at_start",
    "r9_1_replayed_stream",
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])
#define N_STREAMS (N_SCENARIOS + 1) /* + a generated stream */

typedef struct stream {
    char name[96];
    char settings[PATH_MAX];
    char events[PATH_MAX];
    char in[16], first[16], again[16], fresh[16], dry[16]; /* topics */
    char group[16], state[16], fresh_state[16], dry_state[16];
    json_t *first_cmds;
    json_t *first_state;
} stream;

/* ---------------------------------------------------------------- helpers */

static h_proc *start_run(const char *brokers, const char *redis_url, const stream *s)
{
    const char *argv[] = {h_pv_binary(),
                          "run",
                          "--brokers",
                          brokers,
                          "--redis",
                          redis_url,
                          "--input-topic",
                          s->in,
                          "--output-topic",
                          s->first,
                          "--group",
                          s->group,
                          "--redis-prefix",
                          s->state,
                          "--settings",
                          s->settings,
                          "--batch-linger-ms",
                          "5",
                          "--exit-when-idle",
                          "2",
                          "-X",
                          "session.timeout.ms=6000",
                          NULL};
    const char *env[] = {"PROVISIONER_LOG_LEVEL=warn", NULL};
    return h_proc_start(argv, env);
}

/* provisioner replay with the common flags plus extra (NULL-terminated); stdout to out_path
 * when given. */
static h_proc *start_replay(const char *brokers, const char *redis_url, const char *in,
                            const char *settings, const char *const *extra, const char *out_path)
{
    const char *argv[40] = {h_pv_binary(), "replay",  "--brokers",         brokers,
                            "--redis",     redis_url, "--input-topic",     in,
                            "--settings",  settings,  "--batch-linger-ms", "5"};
    size_t n = 12;
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    const char *env[] = {"PROVISIONER_LOG_LEVEL=warn", NULL};
    return out_path ? h_proc_start_to(argv, env, out_path) : h_proc_start(argv, env);
}

static void wait_ok(h_proc *p, const char *what)
{
    int st = h_proc_wait(p, 180);
    cr_assert_eq(st, 0, "%s exited %d: %s", what, st, h_proc_stderr(p));
}

/* A file with lines [from, ...) of path (0-based), in the temp dir. */
static const char *tail_of(const char *path, size_t from, const char *name)
{
    const char *out = h_path(name);
    char *text = h_read_file(path);
    FILE *f = fopen(out, "w");
    cr_assert_not_null(f);
    size_t line = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (line >= from) fwrite(p, 1, len, f);
        line++;
        p += len;
    }
    fclose(f);
    free(text);
    return out;
}

/* Every command's source is topic/partition/offset of the input: offsets >= min_offset[part],
 * partitions only those with min_offset >= 0 (others -1). Returns how many commands came from
 * each partition in counts (up to 8). */
static void check_sources(json_t *cmds, const int64_t *min_offset, int n_parts, size_t *counts,
                          const char *what)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        json_t *src = json_object_get(c, "source");
        if (!src || json_is_null(src)) continue; /* COMPANY_SETTINGS at start: no event */
        json_t *pj = json_object_get(src, "partition"), *oj = json_object_get(src, "offset");
        if (!json_is_integer(pj) || !json_is_integer(oj)) continue;
        int part = (int)json_integer_value(pj);
        int64_t off = json_integer_value(oj);
        cr_assert(part >= 0 && part < n_parts && min_offset[part] >= 0,
                  "%s: a command from partition %d, which was not to be replayed: %s", what, part,
                  json_dumps(c, JSON_COMPACT));
        cr_assert_geq(off, min_offset[part],
                      "%s: a command from partition %d offset %lld, before the start %lld", what,
                      part, (long long)off, (long long)min_offset[part]);
        if (counts) counts[part]++;
    }
}

static void streams_init(stream *st, size_t n, const char *generated)
{
    for (size_t i = 0; i < n; i++) {
        stream *s = &st[i];
        memset(s, 0, sizeof *s);
        if (i < N_SCENARIOS) {
            const char *dir = h_source_path("tests/scenarios");
            snprintf(s->name, sizeof s->name, "%s", SCENARIOS[i]);
            snprintf(s->settings, sizeof s->settings, "%s/%s/settings.yaml", dir, SCENARIOS[i]);
            snprintf(s->events, sizeof s->events, "%s/%s/events.jsonl", dir, SCENARIOS[i]);
        } else {
            snprintf(s->name, sizeof s->name, "generated 200 users, 2000 events");
            snprintf(s->settings, sizeof s->settings, "%s",
                     h_source_path("examples/settings.yaml"));
            snprintf(s->events, sizeof s->events, "%s", generated);
        }
        snprintf(s->in, sizeof s->in, "in%zu", i);
        snprintf(s->first, sizeof s->first, "first%zu", i);
        snprintf(s->again, sizeof s->again, "again%zu", i);
        snprintf(s->fresh, sizeof s->fresh, "fresh%zu", i);
        snprintf(s->dry, sizeof s->dry, "dry%zu", i);
        snprintf(s->group, sizeof s->group, "g%zu", i);
        snprintf(s->state, sizeof s->state, "s%zu:", i);
        snprintf(s->fresh_state, sizeof s->fresh_state, "f%zu:", i);
        snprintf(s->dry_state, sizeof s->dry_state, "d%zu:", i);
    }
}

/* Every topic of the test with its size: what a dry run must leave as it was. */
static json_t *topic_sizes(const char *brokers, const stream *st, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *topics[] = {st[i].in, st[i].first, st[i].again, st[i].fresh, st[i].dry};
        for (size_t k = 0; k < 5; k++)
            json_object_set_new(o, topics[k], json_integer(v_topic_size(brokers, topics[k])));
    }
    return o;
}

/* ---------------------------------------------------------------- from the beginning, dry run */

Test(replay, from_beginning_gives_nothing_twice_rebuilds_a_fresh_prefix_and_dry_runs_change_nothing)
{
    const char *generated = v_gen_events(200, 2000, 31, "flat");
    static stream st[N_STREAMS];
    streams_init(st, N_STREAMS, generated);
    buf topics;
    buf_init(&topics);
    for (size_t i = 0; i < N_STREAMS; i++)
        buf_printf(&topics, "%s%s,%s,%s,%s,%s", i ? "," : "", st[i].in, st[i].first, st[i].again,
                   st[i].fresh, st[i].dry);
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, topics.data);
    buf_free(&topics);
    const char *B = b->bootstrap;

    /* produce, and a first run of the service on each stream */
    for (size_t i = 0; i < N_STREAMS; i++)
        cr_assert_eq(h_produce(B, st[i].in, st[i].events), 0, "%s: produce failed", st[i].name);
    for (size_t w = 0; w < N_STREAMS; w += WAVE) {
        h_proc *ps[WAVE];
        size_t k = 0;
        for (size_t i = w; i < N_STREAMS && i < w + WAVE; i++)
            ps[k++] = start_run(B, r.url, &st[i]);
        for (size_t j = 0; j < k; j++)
            wait_ok(ps[j], "the first run");
    }
    for (size_t i = 0; i < N_STREAMS; i++) {
        st[i].first_cmds = v_read_topic(B, st[i].first);
        st[i].first_state = v_redis_state(r.port, st[i].state);
        json_t *ids = v_by_id(st[i].first_cmds, st[i].name);
        cr_assert_gt(json_array_size(st[i].first_cmds), 0, "%s: the first run gave nothing",
                     st[i].name);
        cr_assert_eq(json_object_size(ids), json_array_size(st[i].first_cmds),
                     "%s: the first run produced duplicates", st[i].name);
        json_decref(ids);
    }

    /* R9.3: replaying with the state in place produces nothing and changes nothing */
    for (size_t w = 0; w < N_STREAMS; w += WAVE) {
        h_proc *ps[WAVE];
        size_t k = 0;
        for (size_t i = w; i < N_STREAMS && i < w + WAVE; i++) {
            char group[32];
            snprintf(group, sizeof group, "again-%zu", i);
            const char *extra[] = {
                "--from-beginning", "--redis-prefix", st[i].state, "--output-topic",
                st[i].again,        "--replay-group", group,       NULL};
            ps[k++] = start_replay(B, r.url, st[i].in, st[i].settings, extra, NULL);
        }
        for (size_t j = 0; j < k; j++)
            wait_ok(ps[j], "replay --from-beginning with the existing state");
    }
    for (size_t i = 0; i < N_STREAMS; i++) {
        json_t *again = v_read_topic(B, st[i].again);
        cr_assert_eq(json_array_size(again), 0,
                     "%s: replay with the existing state produced %zu commands, e.g. %s",
                     st[i].name, json_array_size(again),
                     json_dumps(json_array_get(again, 0), JSON_COMPACT));
        json_decref(again);
        json_t *state = v_redis_state(r.port, st[i].state);
        v_same_state(state, st[i].first_state, st[i].name);
        json_decref(state);
    }

    /* into a fresh prefix: exactly the first run's commands, and its state */
    for (size_t w = 0; w < N_STREAMS; w += WAVE) {
        h_proc *ps[WAVE];
        size_t k = 0;
        for (size_t i = w; i < N_STREAMS && i < w + WAVE; i++) {
            char group[32];
            snprintf(group, sizeof group, "fresh-%zu", i);
            /* with the service's own --group, as an operator copying its flags would */
            const char *extra[] = {"--from-beginning",
                                   "--state-prefix",
                                   st[i].fresh_state,
                                   "--output-topic",
                                   st[i].fresh,
                                   "--replay-group",
                                   group,
                                   "--group",
                                   st[i].group,
                                   NULL};
            ps[k++] = start_replay(B, r.url, st[i].in, st[i].settings, extra, NULL);
        }
        for (size_t j = 0; j < k; j++)
            wait_ok(ps[j], "replay --from-beginning --state-prefix FRESH");
    }
    for (size_t i = 0; i < N_STREAMS; i++) {
        char group[32];
        snprintf(group, sizeof group, "fresh-%zu", i);
        cr_assert_neq(v_committed(B, group, st[i].in, 0), -1,
                      "%s: the replay consumed as --replay-group, not as the service's --group",
                      st[i].name);
        json_t *fresh = v_read_topic(B, st[i].fresh);
        v_same_commands(fresh, st[i].first_cmds, st[i].name);
        cr_assert_eq(json_array_size(fresh), json_array_size(st[i].first_cmds),
                     "%s: %zu commands from the replay, %zu from the first run", st[i].name,
                     json_array_size(fresh), json_array_size(st[i].first_cmds));
        json_decref(fresh);
        json_t *state = v_redis_state(r.port, st[i].fresh_state);
        v_same_state(state, st[i].first_state, st[i].name);
        json_decref(state);
    }

    /* --dry-run against an empty prefix prints the first run's commands and writes nothing;
     * against the existing state it prints nothing */
    long long db_before = v_redis_dbsize(r.port);
    json_t *sizes_before = topic_sizes(B, st, N_STREAMS);
    static char out_empty[N_STREAMS][PATH_MAX], out_existing[N_STREAMS][PATH_MAX];
    for (size_t w = 0; w < N_STREAMS; w += WAVE) {
        h_proc *ps[2 * WAVE];
        size_t k = 0;
        for (size_t i = w; i < N_STREAMS && i < w + WAVE; i++) {
            char g1[32], g2[32], n1[32], n2[32];
            snprintf(g1, sizeof g1, "dry-%zu", i);
            snprintf(g2, sizeof g2, "dry-existing-%zu", i);
            snprintf(n1, sizeof n1, "dry-%zu.jsonl", i);
            snprintf(n2, sizeof n2, "dry-existing-%zu.jsonl", i);
            snprintf(out_empty[i], PATH_MAX, "%s", h_path(n1));
            snprintf(out_existing[i], PATH_MAX, "%s", h_path(n2));
            const char *e1[] = {"--from-beginning",
                                "--dry-run",
                                "--state-prefix",
                                st[i].dry_state,
                                "--output-topic",
                                st[i].dry,
                                "--replay-group",
                                g1,
                                NULL};
            const char *e2[] = {"--from-beginning",
                                "--dry-run",
                                "--redis-prefix",
                                st[i].state,
                                "--output-topic",
                                st[i].dry,
                                "--replay-group",
                                g2,
                                NULL};
            ps[k++] = start_replay(B, r.url, st[i].in, st[i].settings, e1, out_empty[i]);
            ps[k++] = start_replay(B, r.url, st[i].in, st[i].settings, e2, out_existing[i]);
        }
        for (size_t j = 0; j < k; j++)
            wait_ok(ps[j], "replay --dry-run");
    }
    cr_assert_eq(v_redis_dbsize(r.port), db_before, "a dry run changed the number of Redis keys");
    json_t *sizes_after = topic_sizes(B, st, N_STREAMS);
    cr_assert(json_equal(sizes_before, sizes_after),
              "a dry run wrote to Kafka: before %s, after %s",
              json_dumps(sizes_before, JSON_COMPACT | JSON_SORT_KEYS),
              json_dumps(sizes_after, JSON_COMPACT | JSON_SORT_KEYS));
    for (size_t i = 0; i < N_STREAMS; i++) {
        json_t *printed = v_load_lines(out_empty[i]);
        v_same_commands(printed, st[i].first_cmds, st[i].name);
        cr_assert_eq(json_array_size(printed), json_array_size(st[i].first_cmds),
                     "%s: the dry run printed %zu commands, the first run gave %zu", st[i].name,
                     json_array_size(printed), json_array_size(st[i].first_cmds));
        json_decref(printed);
        printed = v_load_lines(out_existing[i]);
        cr_assert_eq(json_array_size(printed), 0,
                     "%s: a dry run against the existing state printed %zu commands", st[i].name,
                     json_array_size(printed));
        json_decref(printed);
        cr_assert_eq(v_redis_count(r.port, st[i].dry_state), 0);
        json_t *state = v_redis_state(r.port, st[i].state);
        v_same_state(state, st[i].first_state, st[i].name);
        json_decref(state);
        char g1[32];
        snprintf(g1, sizeof g1, "dry-%zu", i);
        cr_assert_eq(v_committed(B, g1, st[i].in, 0), -1, "%s: a dry run committed offsets",
                     st[i].name);
        json_decref(st[i].first_cmds);
        json_decref(st[i].first_state);
    }
    json_decref(sizes_before);
    json_decref(sizes_after);
}

/* ---------------------------------------------------------------- --offsets */

Test(replay, offsets_start_where_told)
{
    const char *events = v_gen_events(200, 2000, 32, "flat");
    const char *settings = h_source_path("examples/settings.yaml");
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,in4:4,out-o,out-again");
    const char *B = b->bootstrap;
    cr_assert_eq(h_produce(B, "in", events), 0);
    cr_assert_eq(h_produce(B, "in4", events), 0);

    /* one partition from offset K into a fresh prefix: what a first run on the events from K on
     * would give (K inside the creates, so the rest has creates, reports waiting for managers
     * created before K, and updates of users it never saw created) */
    const size_t K = 150;
    const char *tail = tail_of(events, K, "tail.jsonl");
    const char *e1[] = {
        "--offsets", "0:150", "--state-prefix", "o:", "--output-topic", "out-o", "--replay-group",
        "ro",        NULL};
    wait_ok(start_replay(B, r.url, "in", settings, e1, NULL), "replay --offsets 0:150");
    json_t *got = v_read_topic(B, "out-o"), *want = v_simulate(settings, tail);
    v_same_commands(got, want, "replay --offsets 0:150 vs simulate of the events from 150 on");
    cr_assert_eq(json_array_size(got), json_array_size(want));
    cr_assert_gt(json_array_size(got), 100, "too few commands to prove much");
    int64_t from0[1] = {(int64_t)K};
    check_sources(got, from0, 1, NULL, "replay --offsets 0:150");
    fprintf(stderr, "[offsets] 0:150 gave %zu commands, as simulate on the events from 150 on\n",
            json_array_size(got));
    json_decref(got);
    json_decref(want);

    /* the same again with that state: nothing (R9.3) */
    const char *e2[] = {"--offsets",
                        "0:150",
                        "--redis-prefix",
                        "o:",
                        "--output-topic",
                        "out-again",
                        "--replay-group",
                        "ro2",
                        NULL};
    wait_ok(start_replay(B, r.url, "in", settings, e2, NULL), "replay --offsets again");
    cr_assert_eq(v_topic_size(B, "out-again"), 0, "a second replay of the same offsets produced");

    /* several partitions: only those named, each from its offset */
    const char *out = h_path("multi.jsonl");
    const char *e3[] = {"--offsets", "1:0,3:5",        "--dry-run", "--state-prefix",
                        "m:",        "--replay-group", "rm",        NULL};
    wait_ok(start_replay(B, r.url, "in4", settings, e3, out), "replay --offsets 1:0,3:5");
    json_t *printed = v_load_lines(out);
    int64_t from4[4] = {-1, 0, -1, 5};
    size_t counts[4] = {0};
    check_sources(printed, from4, 4, counts, "replay --offsets 1:0,3:5");
    cr_assert(counts[1] > 0 && counts[3] > 0,
              "commands from partition 1: %zu, from 3: %zu: both should give some", counts[1],
              counts[3]);
    json_decref(printed);

    /* at the end offset: no event is read (a fresh prefix still gets the start-up commands a
     * first run on nothing would, R7.2) */
    int64_t hi[1] = {0};
    v_watermarks(B, "in", NULL, hi, 1);
    char at_end[32];
    snprintf(at_end, sizeof at_end, "0:%lld", (long long)hi[0]);
    const char *none = h_path("none.jsonl");
    h_write_file(none, "");
    json_t *startup = v_simulate(settings, none);
    const char *out_end = h_path("at-end.jsonl");
    const char *e4[] = {"--offsets", at_end,           "--dry-run", "--state-prefix",
                        "e:",        "--replay-group", "re",        NULL};
    wait_ok(start_replay(B, r.url, "in", settings, e4, out_end), "replay --offsets at the end");
    printed = v_load_lines(out_end);
    v_same_commands(printed, startup, "replay --offsets at the end offset");
    json_decref(printed);
    json_decref(startup);
}

/* ---------------------------------------------------------------- --from-timestamp */

/* Produces every line of events to topic (partition 0) with Kafka timestamp ts0 + i * step_ms,
 * encoded as produce-events encodes them (a non-User event goes with its header only). */
static void produce_with_timestamps(const char *brokers, const char *topic, const char *events,
                                    int64_t ts0, int64_t step_ms)
{
    codec_event_encoder_config cfg = {0};
    codec_event_encoder *enc = NULL;
    codec_error cerr;
    cr_assert_eq(codec_event_encoder_new(&cfg, &enc, &cerr), 0, "%s", cerr.msg);
    const event_layout *layout = codec_event_encoder_layout(enc);
    perr err;
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, NULL, 0, &err);
    cr_assert_not_null(conf);
    kafka_conf_set(conf, "linger.ms", "5", &err);
    char errstr[256];
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    cr_assert_not_null(prod, "%s", errstr);
    arena mem;
    arena_init(&mem, 64 * 1024);
    buf val;
    buf_init(&val);
    char *text = h_read_file(events);
    size_t i = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        event ev;
        arena_reset(&mem);
        cr_assert_eq(event_from_json(line, strlen(line), layout, &mem, &ev, &err), 0, "%s",
                     err.msg);
        if (codec_encode_event(enc, &ev, &val, &cerr) < 0) {
            cr_assert(ev.entity && strcmp(ev.entity, "User") != 0, "cannot encode: %s", cerr.msg);
            event hdr = ev;
            hdr.fields = NULL;
            hdr.n_fields = 0;
            hdr.changed_fields = hdr.nulled_fields = hdr.diff_fields = NULL;
            hdr.n_changed_fields = hdr.n_nulled_fields = hdr.n_diff_fields = 0;
            hdr.payload_marks_changes = false;
            cr_assert_eq(codec_encode_event(enc, &hdr, &val, &cerr), 0, "%s", cerr.msg);
        }
        const char *key = ev.n_record_ids ? ev.record_ids[0] : "";
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(val.data, val.len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_TIMESTAMP(ts0 + (int64_t)i * step_ms),
                                      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 50);
        cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
        i++;
    }
    cr_assert_eq(rd_kafka_flush(prod, 30000), 0, "not every event was delivered");
    rd_kafka_destroy(prod);
    free(text);
    buf_free(&val);
    arena_free(&mem);
    codec_event_encoder_free(enc);
}

static void iso(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

Test(replay, from_timestamp_skips_older_messages_where_the_broker_cannot_look_them_up)
{
    const char *events = v_gen_events(200, 1500, 33, "flat");
    const char *settings = h_source_path("examples/settings.yaml");
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "ts,out-t,out-t2");
    const char *B = b->bootstrap;
    const int64_t T0 = 1764000000000LL; /* 2025-11-24T16:00:00Z; one event a second from there */
    produce_with_timestamps(B, "ts", events, T0, 1000);
    cr_assert_eq(v_topic_size(B, "ts"), 1500);

    /* from event K's second: what a first run on the events from K on gives (K inside the
     * creates, as in offsets_start_where_told) */
    const size_t K = 120;
    char when[40];
    iso(T0 + (int64_t)K * 1000, when, sizeof when);
    const char *e1[] = {"--from-timestamp",
                        when,
                        "--state-prefix",
                        "t:",
                        "--output-topic",
                        "out-t",
                        "--replay-group",
                        "rt",
                        NULL};
    wait_ok(start_replay(B, r.url, "ts", settings, e1, NULL), "replay --from-timestamp");
    json_t *got = v_read_topic(B, "out-t");
    json_t *want = v_simulate(settings, tail_of(events, K, "tail.jsonl"));
    v_same_commands(got, want, "replay --from-timestamp vs simulate of the events from then on");
    cr_assert_eq(json_array_size(got), json_array_size(want));
    int64_t from0[1] = {(int64_t)K};
    cr_assert_gt(json_array_size(got), 100, "too few commands to prove much");
    check_sources(got, from0, 1, NULL, "replay --from-timestamp");
    fprintf(stderr,
            "[from-timestamp] %s gave %zu commands, as simulate on the events from %zu on\n", when,
            json_array_size(got), K);
    json_decref(got);
    json_decref(want);

    /* again with that state: nothing */
    const char *e2[] = {"--from-timestamp",
                        when,
                        "--redis-prefix",
                        "t:",
                        "--output-topic",
                        "out-t2",
                        "--replay-group",
                        "rt2",
                        NULL};
    wait_ok(start_replay(B, r.url, "ts", settings, e2, NULL), "replay --from-timestamp again");
    cr_assert_eq(v_topic_size(B, "out-t2"), 0, "a second replay from the same time produced");

    /* before the first message: everything; after the last: no event */
    char before[40], after[40];
    iso(T0 - 3600 * 1000, before, sizeof before);
    iso(T0 + 1500 * 1000 + 60 * 1000, after, sizeof after);
    const char *out_before = h_path("before.jsonl"), *out_after = h_path("after.jsonl");
    const char *e3[] = {"--from-timestamp", before, "--dry-run", "--state-prefix", "tb:",
                        "--replay-group",   "rtb",  NULL};
    const char *e4[] = {"--from-timestamp", after, "--dry-run", "--state-prefix", "ta:",
                        "--replay-group",   "rta", NULL};
    h_proc *p3 = start_replay(B, r.url, "ts", settings, e3, out_before);
    h_proc *p4 = start_replay(B, r.url, "ts", settings, e4, out_after);
    wait_ok(p3, "replay --from-timestamp before everything");
    wait_ok(p4, "replay --from-timestamp after everything");
    json_t *all = v_load_lines(out_before), *sim_all = v_simulate(settings, events);
    v_same_commands(all, sim_all, "replay --from-timestamp before the first message");
    json_decref(all);
    json_decref(sim_all);
    const char *none = h_path("none.jsonl");
    h_write_file(none, "");
    json_t *nothing = v_load_lines(out_after), *startup = v_simulate(settings, none);
    v_same_commands(nothing, startup, "replay --from-timestamp after the last message");
    json_decref(nothing);
    json_decref(startup);
}

/* ISO 8601 allows a UTC offset and fractions of a second; --from-timestamp must honour both
 * ("…T19:00:00+01:00" is 18:00Z, "…:00.500Z" is half a second in). */
Test(replay, from_timestamp_honours_utc_offsets_and_fractions)
{
    const char *events = v_gen_events(100, 600, 34, "flat");
    const char *settings = h_source_path("examples/settings.yaml");
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "ts");
    const int64_t T0 = 1764000000000LL; /* 2025-11-24T16:00:00Z */
    produce_with_timestamps(b->bootstrap, "ts", events, T0, 1000);
    const size_t K = 40;
    /* event K's instant written with +01:00 (an hour more on the clock) */
    char when[64];
    time_t t = (time_t)((T0 + (int64_t)K * 1000) / 1000 + 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+01:00", &tm);
    const char *out = h_path("offset.jsonl");
    const char *e1[] = {"--from-timestamp", when, "--dry-run", "--state-prefix", "z:",
                        "--replay-group",   "rz", NULL};
    wait_ok(start_replay(b->bootstrap, r.url, "ts", settings, e1, out), "replay +01:00");
    json_t *got = v_load_lines(out), *want = v_simulate(settings, tail_of(events, K, "t1.jsonl"));
    v_same_commands(got, want, "replay --from-timestamp with a +01:00 offset");
    json_decref(got);
    json_decref(want);
    /* half a second after event K: K is older, so skipped */
    char frac[64];
    iso(T0 + (int64_t)K * 1000, frac, sizeof frac);
    snprintf(frac + strlen(frac) - 1, sizeof frac - strlen(frac) + 1, ".500Z");
    const char *out2 = h_path("frac.jsonl");
    const char *e2[] = {"--from-timestamp", frac, "--dry-run", "--state-prefix", "y:",
                        "--replay-group",   "ry", NULL};
    wait_ok(start_replay(b->bootstrap, r.url, "ts", settings, e2, out2), "replay .500Z");
    got = v_load_lines(out2);
    want = v_simulate(settings, tail_of(events, K + 1, "t2.jsonl"));
    v_same_commands(got, want, "replay --from-timestamp with .500 seconds");
    json_decref(got);
    json_decref(want);
}

/* ---------------------------------------------------------------- usage */

Test(replay, bad_flag_combinations_exit_2)
{
    const char *settings = h_source_path("examples/settings.yaml");
    /* No broker is needed: each is refused before anything connects. */
    const char *const cases[][8] = {
        {"--settings", settings, NULL},              /* no form */
        {"--settings", settings, "--dry-run", NULL}, /* still none */
        {"--settings", settings, "--from-beginning", "--offsets", "0:0", NULL},
        {"--settings", settings, "--from-beginning", "--from-timestamp", "2026-01-01T00:00:00Z",
         NULL},
        {"--settings", settings, "--offsets", "0:1", "--from-timestamp", "2026-01-01", NULL},
        {"--settings", settings, "--offsets", "x", NULL},
        {"--settings", settings, "--offsets", "0:", NULL},
        {"--settings", settings, "--offsets", ":5", NULL},
        {"--settings", settings, "--offsets", "0:-1", NULL},
        {"--settings", settings, "--offsets", "-1:5", NULL},
        {"--settings", settings, "--offsets", "0:5;1:2", NULL},
        {"--settings", settings, "--offsets", "", NULL},
        {"--settings", settings, "--from-timestamp", "yesterday", NULL},
        {"--settings", settings, "--from-timestamp", "", NULL},
        {"--from-beginning", NULL}, /* no settings */
        {"--settings", "/nonexistent/settings.yaml", "--from-beginning", NULL},
        {"--settings", settings, "--from-beginning", "--output-format", "xml", NULL},
        {"--settings", settings, "--from-beginning", "--no-such-flag", NULL},
        {"--settings", settings, "--from-beginning", "--batch-size", "0", NULL},
        /* run's and replay's shared options: a bad Redis URL or -X property is a usage error */
        {"--settings", settings, "--from-beginning", "--redis", "redis://h:99999", NULL},
        {"--settings", settings, "--from-beginning", "-X", "no.such.property=1", NULL},
        /* the service's group (run's default): a replay's commits would move its offsets */
        {"--settings", settings, "--from-beginning", "--replay-group", "provisioner", NULL},
        /* --group names the service's group (its flags copied): the replay's may not be it */
        {"--settings", settings, "--from-beginning", "--group", "svc", "--replay-group", "svc",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[16] = {h_pv_binary(), "replay", "--brokers", "127.0.0.1:1"};
        size_t n = 4;
        buf shown;
        buf_init(&shown);
        for (size_t k = 0; cases[i][k]; k++) {
            argv[n++] = cases[i][k];
            buf_printf(&shown, " %s", cases[i][k]);
        }
        argv[n] = NULL;
        const char *env[] = {"PROVISIONER_SETTINGS", "PROVISIONER_BROKERS", NULL};
        h_proc *p = h_proc_start(argv, env);
        int st = h_proc_wait(p, 30);
        char *err = h_proc_stderr(p);
        cr_assert_eq(st, 2, "replay%s: exit %d, not 2: %s", shown.data, st, err);
        cr_assert(strstr(err, "provisioner"), "replay%s: no message: '%s'", shown.data, err);
        free(err);
        buf_free(&shown);
    }
    /* the service's group from its environment, as the chart's Job has it */
    const char *same[] = {h_pv_binary(), "replay", "--brokers",        "127.0.0.1:1",
                          "--settings",  settings, "--from-beginning", "--replay-group",
                          "svc",         NULL};
    const char *svc_env[] = {"PROVISIONER_GROUP=svc", "PROVISIONER_SETTINGS", NULL};
    h_proc *sp = h_proc_start(same, svc_env);
    int sst = h_proc_wait(sp, 30);
    char *serr = h_proc_stderr(sp);
    cr_assert_eq(sst, 2, "%s", serr);
    cr_assert(strstr(serr, "consumer group 'svc' is the service's"), "%s", serr);
    free(serr);
    /* and no brokers at all */
    const char *argv[] = {h_pv_binary(), "replay",           "--settings",
                          settings,      "--from-beginning", NULL};
    const char *env[] = {"PROVISIONER_BROKERS", NULL};
    h_proc *p = h_proc_start(argv, env);
    cr_assert_eq(h_proc_wait(p, 30), 2, "replay without --brokers: %s", h_proc_stderr(p));
}

/* A partition the topic does not have is not a usage error but a runtime one (exit 1), with a
 * message naming it. */
Test(replay, offsets_of_a_missing_partition_fail_clearly)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in");
    const char *settings = h_source_path("examples/settings.yaml");
    const char *e[] = {"--offsets", "7:0", "--dry-run", "--replay-group", "rx", NULL};
    h_proc *p = start_replay(b->bootstrap, r.url, "in", settings, e, NULL);
    int st = h_proc_wait(p, 60);
    char *err = h_proc_stderr(p);
    cr_assert_eq(st, 1, "exit %d: %s", st, err);
    cr_assert(strstr(err, "partition 7"), "the message names the partition: %s", err);
    free(err);
}
