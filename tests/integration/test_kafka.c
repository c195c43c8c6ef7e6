/* The Kafka tooling: the dev broker, produce-events and consume-commands through the real binary,
 * and internal/kafka in process. Values written by the tools are read back with a plain
 * librdkafka consumer here and decoded with the codec, so the tools are checked against the
 * decoder the service uses, not against themselves. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "command/command.h"
#include "event/event.h"
#include "harness.h"
#include "kafka/kafka.h"

TestSuite(kafka, .fini = h_teardown, .timeout = 180);

/* ---- a small raw consumer */
typedef struct raw_msg {
    int32_t partition;
    int64_t offset;
    char *key;
    size_t key_len;
    char *val;
    size_t val_len;
} raw_msg;

typedef struct raw_msgs {
    raw_msg *m;
    size_t n;
} raw_msgs;

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *brokers)
{
    perr err;
    /* A group.id is needed to assign partitions by hand; it is never joined. */
    char *props[] = {"enable.partition.eof=false", "group.id=test-kafka-reader",
                     "enable.auto.commit=false"};
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, type == RD_KAFKA_CONSUMER ? props : NULL,
                                           type == RD_KAFKA_CONSUMER ? 3 : 0, &err);
    cr_assert_not_null(conf, "%s", err.msg);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    return rk;
}

/* Partition count of topic, 0 when the broker does not know it. */
static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    int n = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) {
        if (md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Every message of topic from the beginning, until `want` have come or 15 s have passed. */
static raw_msgs read_all(const char *brokers, const char *topic, size_t want)
{
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, brokers);
    int np = partitions_of(rk, topic);
    cr_assert_gt(np, 0, "topic %s has no partitions", topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    raw_msgs out = {0};
    out.m = calloc(want + 1, sizeof *out.m);
    time_t until = time(NULL) + 15;
    while (out.n < want && time(NULL) < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (!m->err) {
            raw_msg *r = &out.m[out.n++];
            r->partition = m->partition;
            r->offset = m->offset;
            r->key_len = m->key_len;
            r->key = calloc(1, m->key_len + 1);
            if (m->key_len) memcpy(r->key, m->key, m->key_len);
            r->val_len = m->len;
            r->val = malloc(m->len + 1);
            memcpy(r->val, m->payload, m->len);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

static void raw_free(raw_msgs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->m[i].key), free(r->m[i].val);
    free(r->m);
}

static int64_t high_watermark(const char *brokers, const char *topic, int32_t partition)
{
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, brokers);
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, 0, "watermarks of %s: %s", topic, rd_kafka_err2str(e));
    return hi;
}

/* ---- the events file, line by line */
typedef struct lines {
    char **l;
    size_t n;
} lines;

static lines read_lines(const char *path)
{
    char *s = h_read_file(path);
    lines out = {0};
    for (char *p = strtok(s, "\n"); p; p = strtok(NULL, "\n")) {
        if (!*p) continue;
        out.l = realloc(out.l, (out.n + 1) * sizeof *out.l);
        out.l[out.n++] = strdup(p);
    }
    free(s);
    return out;
}

static const event_field *field_of(const event *e, const char *name)
{
    for (size_t i = 0; i < e->n_fields; i++)
        if (strcmp(e->fields[i].name, name) == 0) return &e->fields[i];
    return NULL;
}

static bool names_have(const char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

/* The decoded Avro event says what the JSON line said: the same header, every non-null payload
 * value, and every change (Avro carries a JSON UPDATE's payload fields in changedFields and its
 * explicit nulls in nulledFields, since an Avro null means "not sent"). */
static void assert_same_event(const char *line, const event *got, const char *where)
{
    arena mem;
    arena_init(&mem, 16384);
    event want;
    perr err;
    cr_assert_eq(event_from_json(line, strlen(line), NULL, &mem, &want, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got->entity, want.entity, "%s", where);
    cr_assert_eq(got->change, want.change, "%s", where);
    cr_assert_eq(got->n_record_ids, want.n_record_ids, "%s", where);
    for (size_t i = 0; i < want.n_record_ids; i++)
        cr_assert_str_eq(got->record_ids[i], want.record_ids[i], "%s", where);
    cr_assert_str_eq(got->transaction_key ? got->transaction_key : "",
                     want.transaction_key ? want.transaction_key : "", "%s", where);
    cr_assert_eq(got->sequence_number, want.sequence_number, "%s", where);
    cr_assert_eq(got->commit_timestamp, want.commit_timestamp, "%s", where);
    cr_assert_eq(got->commit_number, want.commit_number, "%s", where);
    cr_assert_str_eq(got->commit_user ? got->commit_user : "",
                     want.commit_user ? want.commit_user : "", "%s", where);
    if (strcmp(want.entity, "User") != 0) {
        /* Other entities may go with their header only (produce-events' note): the service
         * skips them on the header alone (R1.1). */
        arena_free(&mem);
        return;
    }
    for (size_t i = 0; i < want.n_changed_fields; i++)
        cr_assert(names_have(got->changed_fields, got->n_changed_fields, want.changed_fields[i]),
                  "%s: changed field %s lost", where, want.changed_fields[i]);
    for (size_t i = 0; i < want.n_nulled_fields; i++)
        cr_assert(names_have(got->nulled_fields, got->n_nulled_fields, want.nulled_fields[i]),
                  "%s: nulled field %s lost", where, want.nulled_fields[i]);
    for (size_t i = 0; i < want.n_fields; i++) {
        const event_field *w = &want.fields[i];
        const event_field *g = field_of(got, w->name);
        if (w->val.type == VAL_NULL) {
            cr_assert(!g || g->val.type == VAL_NULL, "%s: %s should be null", where, w->name);
            if (want.payload_marks_changes && want.change == CHANGE_UPDATE)
                cr_assert(names_have(got->nulled_fields, got->n_nulled_fields, w->name) ||
                              names_have(got->changed_fields, got->n_changed_fields, w->name),
                          "%s: explicit null %s not carried", where, w->name);
            continue;
        }
        cr_assert_not_null(g, "%s: field %s lost", where, w->name);
        cr_assert(value_eq(&g->val, &w->val), "%s: field %s differs", where, w->name);
        if (want.payload_marks_changes && want.change == CHANGE_UPDATE)
            cr_assert(names_have(got->changed_fields, got->n_changed_fields, w->name),
                      "%s: payload field %s not marked changed", where, w->name);
    }
    arena_free(&mem);
}

/* ---- the dev broker */
Test(kafka, dev_broker_prints_address_creates_topics_and_stops_on_sigterm)
{
    h_broker *b = h_broker_start(3, "extra.one, extra.two");
    cr_assert(strncmp(b->bootstrap, "127.0.0.1:", 10) == 0, "bootstrap '%s'", b->bootstrap);
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, b->bootstrap);
    const char *topics[] = {"salesforce.user.changes", "gong.user.commands",
                            "salesforce.user.changes.dlq", "extra.one", "extra.two"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        cr_assert_eq(partitions_of(rk, topics[i]), 3, "topic %s", topics[i]);
    rd_kafka_destroy(rk);
    cr_assert_eq(h_broker_stop(b), 0, "dev-broker did not exit 0 on SIGTERM");
    char *err = h_proc_stderr(b->proc);
    cr_assert(strstr(err, "stopped"), "stderr: %s", err);
    free(err);
}

Test(kafka, dev_broker_defaults_to_four_partitions_and_stops_on_sigint)
{
    h_broker *b = h_broker_start(0, NULL);
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, b->bootstrap);
    cr_assert_eq(partitions_of(rk, "gong.user.commands"), 4);
    rd_kafka_destroy(rk);
    h_proc_signal(b->proc, SIGINT);
    cr_assert_eq(h_proc_wait(b->proc, 10), 0);
}

Test(kafka, dev_broker_refuses_bad_partitions)
{
    const char *argv[] = {h_pv_binary(), "dev-broker", "--partitions", "0", NULL};
    h_proc *p = NULL;
    cr_assert_eq(h_run(argv, NULL, 10, &p), 2);
    char *out = h_proc_stdout(p);
    cr_assert_str_eq(out, "", "nothing on stdout when refusing");
    free(out);
    char *err = h_proc_stderr(p);
    cr_assert(strstr(err, "0 is out of range [1, 1000]"), "the bounds, as whole numbers: %s", err);
    free(err);
    /* a topic's partition count is the command line's too */
    const char *bad_topic[] = {h_pv_binary(), "dev-broker", "--topics", "a:x", NULL};
    cr_assert_eq(h_run(bad_topic, NULL, 10, &p), 2);
    err = h_proc_stderr(p);
    cr_assert(strstr(err, "topic 'a': the partition count"), "%s", err);
    free(err);
}

/* ---- produce-events */
Test(kafka, produce_events_plain_avro_round_trip_in_order)
{
    h_broker *b = h_broker_start(1, "rt.plain");
    const char *events = h_source_path("examples/events.jsonl");
    cr_assert_eq(h_produce(b->bootstrap, "rt.plain", events), 0);
    lines want = read_lines(events);
    cr_assert_gt(want.n, 10);
    raw_msgs got = read_all(b->bootstrap, "rt.plain", want.n);
    cr_assert_eq(got.n, want.n, "read %zu of %zu", got.n, want.n);

    codec_decoder *d = NULL;
    codec_error cerr;
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_PLAIN};
    cr_assert_eq(codec_decoder_new(&cfg, &d, &cerr), 0, "%s", cerr.msg);
    arena mem;
    arena_init(&mem, 65536);
    for (size_t i = 0; i < got.n; i++) {
        char where[64];
        snprintf(where, sizeof where, "line %zu", i + 1);
        event ev;
        arena_reset(&mem);
        cr_assert_eq(codec_decode(d, got.m[i].val, got.m[i].val_len, &mem, &ev, &cerr), 0, "%s: %s",
                     where, cerr.msg);
        cr_assert_str_eq(got.m[i].key, ev.record_ids[0], "%s: key", where);
        assert_same_event(want.l[i], &ev, where);
    }
    arena_free(&mem);
    codec_decoder_free(d);
    raw_free(&got);
}

Test(kafka, produce_events_framed_with_schema_id_to_one_partition)
{
    h_broker *b = h_broker_start(2, "rt.framed");
    const char *events = h_source_path("examples/events.jsonl");
    const char *argv[] = {
        h_pv_binary(), "produce-events", "--brokers",   b->bootstrap, "--topic",     "rt.framed",
        "--events",    events,           "--schema-id", "42",         "--partition", "1",
        NULL};
    h_proc *p = NULL;
    cr_assert_eq(h_run(argv, NULL, 60, &p), 0);
    lines want = read_lines(events);
    char *err = h_proc_stderr(p);
    char expect[128];
    snprintf(expect, sizeof expect, "produced %zu events to rt.framed", want.n);
    cr_assert(strstr(err, expect), "stderr: %s", err);
    free(err);

    raw_msgs got = read_all(b->bootstrap, "rt.framed", want.n);
    cr_assert_eq(got.n, want.n);
    codec_decoder *d = NULL;
    codec_error cerr;
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    cr_assert_eq(codec_decoder_new(&cfg, &d, &cerr), 0, "%s", cerr.msg);
    const char *avsc = event_default_schema_avsc();
    cr_assert_eq(codec_decoder_add_schema(d, 42, avsc, strlen(avsc), &cerr), 0, "%s", cerr.msg);
    arena mem;
    arena_init(&mem, 65536);
    for (size_t i = 0; i < got.n; i++) {
        const unsigned char *v = (const unsigned char *)got.m[i].val;
        cr_assert_eq(got.m[i].partition, 1);
        cr_assert(got.m[i].val_len > 5 && v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0 &&
                      v[4] == 42,
                  "message %zu is not framed with id 42", i);
        event ev;
        arena_reset(&mem);
        cr_assert_eq(codec_decode(d, got.m[i].val, got.m[i].val_len, &mem, &ev, &cerr), 0, "%s",
                     cerr.msg);
        assert_same_event(want.l[i], &ev, "framed");
    }
    arena_free(&mem);
    codec_decoder_free(d);
    raw_free(&got);
}

/* Keyed by record id, so each user's events stay in one partition and in the file's order. */
Test(kafka, produce_events_keys_by_record_id_and_keeps_each_users_order)
{
    h_broker *b = h_broker_start(4, NULL);
    const char *events = h_source_path("examples/events.jsonl");
    cr_assert_eq(h_produce(b->bootstrap, "salesforce.user.changes", events), 0);
    lines want = read_lines(events);
    raw_msgs got = read_all(b->bootstrap, "salesforce.user.changes", want.n);
    cr_assert_eq(got.n, want.n);

    codec_decoder *d = NULL;
    codec_error cerr;
    cr_assert_eq(codec_decoder_new(NULL, &d, &cerr), 0, "%s", cerr.msg);
    arena mem, wmem;
    arena_init(&mem, 65536);
    arena_init(&wmem, 65536);
    bool used[4] = {false};
    /* For each message, in the order of its partition: the next line of the file for that key. */
    size_t *next = calloc(want.n, sizeof *next); /* per message: the index it matched */
    for (size_t i = 0; i < got.n; i++) {
        event ev;
        arena_reset(&mem);
        cr_assert_eq(codec_decode(d, got.m[i].val, got.m[i].val_len, &mem, &ev, &cerr), 0, "%s",
                     cerr.msg);
        cr_assert_str_eq(got.m[i].key, ev.record_ids[0]);
        used[got.m[i].partition] = true;
        /* Messages of one key in one partition: each later than the one before in the file. */
        size_t from = 0;
        for (size_t j = i; j-- > 0;)
            if (strcmp(got.m[j].key, got.m[i].key) == 0) {
                cr_assert_eq(got.m[j].partition, got.m[i].partition, "key %s split", got.m[i].key);
                from = next[j] + 1;
                break;
            }
        size_t k = from;
        for (; k < want.n; k++) {
            event w;
            perr err;
            arena_reset(&wmem);
            cr_assert_eq(event_from_json(want.l[k], strlen(want.l[k]), NULL, &wmem, &w, &err), 0);
            if (strcmp(w.record_ids[0], ev.record_ids[0]) == 0 &&
                w.commit_number == ev.commit_number && w.sequence_number == ev.sequence_number)
                break;
        }
        cr_assert_lt(k, want.n, "message %zu (key %s) out of order", i, got.m[i].key);
        next[i] = k;
        assert_same_event(want.l[k], &ev, "keyed");
    }
    int parts = 0;
    for (int p = 0; p < 4; p++)
        parts += used[p];
    cr_assert_gt(parts, 1, "every key landed in one partition");
    free(next);
    arena_free(&mem);
    arena_free(&wmem);
    codec_decoder_free(d);
    raw_free(&got);
}

Test(kafka, produce_events_bad_line_exits_2_with_file_and_line_and_sends_nothing)
{
    h_broker *b = h_broker_start(1, "bad.lines");
    lines good = read_lines(h_source_path("examples/events.jsonl"));
    const char *path = h_path("bad.jsonl");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "%s\n\n%s\n{\"ChangeEventHeader\": not json\n%s\n", good.l[0], good.l[1], good.l[2]);
    fclose(f);
    h_write_file(path, text);
    free(text);

    const char *argv[] = {h_pv_binary(), "produce-events", "--brokers", b->bootstrap, "--topic",
                          "bad.lines",   "--events",       path,        NULL};
    h_proc *p = NULL;
    cr_assert_eq(h_run(argv, NULL, 30, &p), 2);
    char *err = h_proc_stderr(p);
    char want[1200];
    snprintf(want, sizeof want, "%s:4: ", path);
    cr_assert(strstr(err, want), "expected '%s' in: %s", want, err);
    free(err);
    cr_assert_eq(high_watermark(b->bootstrap, "bad.lines", 0), 0, "something was produced");

    /* An event the schema cannot carry is bad input too. */
    h_write_file(path,
                 "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                 "\"changeType\":\"UPDATE\",\"changedFields\":[],\"transactionKey\":\"t\","
                 "\"sequenceNumber\":1,\"commitTimestamp\":1,\"commitNumber\":1,"
                 "\"commitUser\":\"005B\",\"changeOrigin\":\"\"},\"NoSuchField__c\":\"x\"}\n");
    cr_assert_eq(h_run(argv, NULL, 30, &p), 2);
    err = h_proc_stderr(p);
    snprintf(want, sizeof want, "%s:1: ", path);
    cr_assert(strstr(err, want) && strstr(err, "NoSuchField__c"), "stderr: %s", err);
    free(err);
}

Test(kafka, produce_events_usage_errors_exit_2)
{
    const char *no_topic[] = {h_pv_binary(), "produce-events", "--brokers", "127.0.0.1:1",
                              "--events",    "/dev/null",      NULL};
    cr_assert_eq(h_run(no_topic, (const char *const[]){"PROVISIONER_BROKERS", NULL}, 10, NULL), 2);
    const char *missing[] = {h_pv_binary(), "produce-events",
                             "--brokers",   "127.0.0.1:1",
                             "--topic",     "t",
                             "--events",    "/nonexistent/events.jsonl",
                             NULL};
    cr_assert_eq(h_run(missing, NULL, 10, NULL), 2);
    const char *bad_prop[] = {
        h_pv_binary(), "produce-events", "--brokers", "127.0.0.1:1", "--topic", "t",
        "--events",    "/dev/null",      "-X",        "no.such=1",   NULL};
    h_proc *p = NULL;
    cr_assert_eq(h_run(bad_prop, NULL, 10, &p), 2);
    char *err = h_proc_stderr(p);
    cr_assert(strstr(err, "no.such"), "stderr: %s", err);
    free(err);
}

/* The broker refuses every produce request: delivery fails, exit 1. The mock lives in this
 * process so that its errors can be injected. */
Test(kafka, produce_events_delivery_failure_exits_1)
{
    const char *topics[] = {"refused"};
    kafka_mock *m = NULL;
    perr err;
    cr_assert_eq(kafka_mock_start(1, topics, 1, &m, &err), 0, "%s", err.msg);
    rd_kafka_mock_topic_set_error(kafka_mock_cluster(m), "refused",
                                  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    const char *argv[] = {h_pv_binary(), "produce-events",
                          "--brokers",   kafka_mock_bootstrap(m),
                          "--topic",     "refused",
                          "--events",    h_source_path("tests/scenarios/create_basic/events.jsonl"),
                          "-X",          "message.timeout.ms=5000",
                          NULL};
    h_proc *p = NULL;
    int st = h_run(argv, NULL, 60, &p);
    char *e = h_proc_stderr(p);
    cr_assert_eq(st, 1, "exit %d, stderr: %s", st, e);
    cr_assert(strstr(e, "not delivered"), "stderr: %s", e);
    free(e);
    kafka_mock_stop(m);
}

/* ---- consume-commands */
static void produce_values(const char *brokers, const char *topic, buf *vals, size_t n)
{
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, brokers);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(vals[i].data, vals[i].len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    cr_assert_eq(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* Three commands that need no settings, as JSON, plain Avro and framed Avro values. */
static size_t sample_commands(buf *vals, buf *json)
{
    command c[3];
    memset(c, 0, sizeof c);
    c[0].type = CMD_DEACTIVATE_USER;
    strcpy(c[0].id, "0123456789abcdef0123456789abcdef");
    c[0].sf_user_id = "0055e0000000001AAK";
    c[0].reason = "R3.1";
    c[0].why = "IsActive is false";
    c[1].type = CMD_SET_MANAGER;
    strcpy(c[1].id, "fedcba9876543210fedcba9876543210");
    c[1].sf_user_id = "0055e0000000003AAK";
    c[1].with_manager = true;
    c[1].manager_id = "0055e0000000001AAK";
    c[2].type = CMD_COMPANY_SETTINGS;
    strcpy(c[2].id, "00000000000000000000000000000001");
    c[2].sf_user_id = "";
    c[2].company_toggle = true;

    codec_command_encoder *plain = NULL, *framed = NULL;
    codec_error cerr;
    codec_command_encoder_config pc = {.format = CODEC_FORMAT_AVRO};
    codec_command_encoder_config fc = {.format = CODEC_FORMAT_AVRO, .framed = true, .schema_id = 7};
    cr_assert_eq(codec_command_encoder_new(&pc, &plain, &cerr), 0, "%s", cerr.msg);
    cr_assert_eq(codec_command_encoder_new(&fc, &framed, &cerr), 0, "%s", cerr.msg);
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        for (int form = 0; form < 3; form++) {
            buf_init(&vals[n]);
            buf_init(&json[n]);
            command_to_json(&c[i], &json[n]);
            if (form == 0)
                buf_append(&vals[n], json[n].data, json[n].len);
            else
                cr_assert_eq(
                    codec_encode_command(form == 1 ? plain : framed, &c[i], &vals[n], &cerr), 0,
                    "%s", cerr.msg);
            n++;
        }
    }
    codec_command_encoder_free(plain);
    codec_command_encoder_free(framed);
    return n;
}

Test(kafka, consume_commands_prints_json_and_avro_commands_as_json_lines)
{
    h_broker *b = h_broker_start(1, "cmds");
    buf vals[9], json[9];
    size_t n = sample_commands(vals, json);
    produce_values(b->bootstrap, "cmds", vals, n);
    const char *out = h_path("cmds.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "cmds", (int)n, 5, out), 0);
    lines got = read_lines(out);
    cr_assert_eq(got.n, n, "got %zu lines", got.n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(got.l[i], json[i].data, "message %zu", i);
    for (size_t i = 0; i < n; i++)
        buf_free(&vals[i]), buf_free(&json[i]);
}

Test(kafka, consume_commands_without_from_beginning_reads_only_new_messages)
{
    h_broker *b = h_broker_start(2, NULL);
    buf vals[9], json[9];
    size_t n = sample_commands(vals, json);
    produce_values(b->bootstrap, "gong.user.commands", vals, 3); /* old: not to be printed */
    const char *argv[] = {h_pv_binary(), "consume-commands",
                          "--brokers",   b->bootstrap,
                          "--topic",     "gong.user.commands",
                          "--count",     "2",
                          "--timeout",   "20",
                          NULL};
    const char *out = h_path("new.jsonl");
    h_proc *p = h_proc_start_to(argv, NULL, out);
    cr_assert(h_proc_wait_output(p, true, "from the end", 20), "consume-commands never got ready");
    produce_values(b->bootstrap, "gong.user.commands", vals + 3, 2);
    cr_assert_eq(h_proc_wait(p, 30), 0);
    lines got = read_lines(out);
    cr_assert_eq(got.n, 2);
    cr_assert_str_eq(got.l[0], json[3].data);
    cr_assert_str_eq(got.l[1], json[4].data);
    for (size_t i = 0; i < n; i++)
        buf_free(&vals[i]), buf_free(&json[i]);
}

Test(kafka, consume_commands_stops_after_idle_timeout_and_on_sigterm)
{
    h_broker *b = h_broker_start(1, NULL);
    const char *argv[] = {
        h_pv_binary(),        "consume-commands", "--brokers", b->bootstrap, "--topic",
        "gong.user.commands", "--from-beginning", "--timeout", "1",          NULL};
    h_proc *p = NULL;
    time_t t0 = time(NULL);
    cr_assert_eq(h_run(argv, NULL, 30, &p), 0);
    cr_assert_leq(time(NULL) - t0, 10);
    char *out = h_proc_stdout(p);
    cr_assert_str_eq(out, "");
    free(out);

    const char *forever[] = {h_pv_binary(), "consume-commands",   "--brokers", b->bootstrap,
                             "--topic",     "gong.user.commands", "--timeout", "600",
                             NULL};
    p = h_proc_start(forever, NULL);
    cr_assert(h_proc_wait_output(p, true, "from the end", 20));
    cr_assert_eq(h_proc_stop(p, 10), 0);
}

Test(kafka, consume_commands_with_a_group_commits_and_resumes)
{
    h_broker *b = h_broker_start(1, "grouped");
    buf vals[9], json[9];
    size_t n = sample_commands(vals, json);
    produce_values(b->bootstrap, "grouped", vals, 4);
    const char *out1 = h_path("g1.jsonl"), *out2 = h_path("g2.jsonl");
    const char *argv1[] = {h_pv_binary(),
                           "consume-commands",
                           "--brokers",
                           b->bootstrap,
                           "--topic",
                           "grouped",
                           "--group",
                           "readers",
                           "--from-beginning",
                           "--count",
                           "4",
                           "--timeout",
                           "20",
                           NULL};
    h_proc *p = h_proc_start_to(argv1, NULL, out1);
    cr_assert_eq(h_proc_wait(p, 60), 0);
    cr_assert_eq(h_count_lines(out1), 4);
    produce_values(b->bootstrap, "grouped", vals + 4, 2);
    /* Asked for 3, it gets only the two new ones, then idles out: the group's committed offset
     * is where the first reader stopped. */
    argv1[10] = "3";
    argv1[12] = "3";
    p = h_proc_start_to(argv1, NULL, out2);
    cr_assert_eq(h_proc_wait(p, 60), 0);
    lines got = read_lines(out2);
    cr_assert_eq(got.n, 2, "second reader got %zu", got.n);
    cr_assert_str_eq(got.l[0], json[4].data);
    for (size_t i = 0; i < n; i++)
        buf_free(&vals[i]), buf_free(&json[i]);
}

/* ---- internal/kafka in process */
Test(kafka, conf_refuses_unknown_property_naming_it_and_never_shows_values)
{
    perr err;
    char *unknown[] = {"linger.ms=5", "no.such.property=hunter2"};
    cr_assert_null(kafka_conf_new("127.0.0.1:9092", unknown, 2, &err));
    cr_assert(strstr(err.msg, "no.such.property"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "hunter2"), "%s", err.msg);

    char *bad_value[] = {"linger.ms=secret-not-a-number"};
    cr_assert_null(kafka_conf_new("127.0.0.1:9092", bad_value, 1, &err));
    cr_assert(strstr(err.msg, "linger.ms"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "secret-not-a-number"), "%s", err.msg);

    char *no_eq[] = {"linger.ms"};
    cr_assert_null(kafka_conf_new("127.0.0.1:9092", no_eq, 1, &err));
    cr_assert(strstr(err.msg, "name=value"), "%s", err.msg);

    char *ok[] = {"linger.ms=5", "client.id=a=b", "linger.ms=7"};
    rd_kafka_conf_t *conf = kafka_conf_new("127.0.0.1:9092", ok, 3, &err);
    cr_assert_not_null(conf, "%s", err.msg);
    char v[64];
    size_t vlen = sizeof v;
    cr_assert_eq(rd_kafka_conf_get(conf, "linger.ms", v, &vlen), RD_KAFKA_CONF_OK);
    cr_assert_str_eq(v, "7", "later wins");
    vlen = sizeof v;
    cr_assert_eq(rd_kafka_conf_get(conf, "client.id", v, &vlen), RD_KAFKA_CONF_OK);
    cr_assert_str_eq(v, "a=b", "only the first '=' splits");
    vlen = sizeof v;
    cr_assert_eq(rd_kafka_conf_get(conf, "bootstrap.servers", v, &vlen), RD_KAFKA_CONF_OK);
    cr_assert_str_eq(v, "127.0.0.1:9092");
    rd_kafka_conf_destroy(conf);
}

static void count_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *counts = opaque;
    counts[kafka_delivered(m, NULL) ? 0 : 1]++; /* the mock's reports carry their offsets */
}

Test(kafka, mock_cluster_serves_a_producer_with_delivery_reports)
{
    const char *topics[] = {"t.one", "t.two", "t.one"};
    kafka_mock *m = NULL;
    perr err;
    cr_assert_eq(kafka_mock_start(2, topics, 3, &m, &err), 0, "%s", err.msg);
    cr_assert(strncmp(kafka_mock_bootstrap(m), "127.0.0.1:", 10) == 0);
    cr_assert_not_null(kafka_mock_cluster(m));

    rd_kafka_conf_t *conf = kafka_conf_new(kafka_mock_bootstrap(m), NULL, 0, &err);
    cr_assert_not_null(conf, "%s", err.msg);
    int counts[2] = {0, 0};
    rd_kafka_conf_set_dr_msg_cb(conf, count_delivery);
    rd_kafka_conf_set_opaque(conf, counts);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    cr_assert_eq(partitions_of(rk, "t.one"), 2);
    cr_assert_eq(partitions_of(rk, "t.two"), 2);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("t.one"),
                                       RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE("v", 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    }
    cr_assert_eq(rd_kafka_flush(rk, 10000), 0);
    cr_assert_eq(counts[0], 20);
    cr_assert_eq(counts[1], 0);
    rd_kafka_destroy(rk);
    cr_assert_eq(high_watermark(kafka_mock_bootstrap(m), "t.one", 0) +
                     high_watermark(kafka_mock_bootstrap(m), "t.one", 1),
                 20);
    kafka_mock_stop(m);

    cr_assert_eq(kafka_mock_start(0, topics, 1, &m, &err), -1);
    cr_assert(strstr(err.msg, "partitions"), "%s", err.msg);
}

/* librdkafka reports an implicitly acknowledged message as a success with no offset; against the
 * dev broker such messages were not on the topic, so they are produced again (R9.2). */
Test(kafka, a_delivery_report_without_an_offset_is_not_taken_as_delivered)
{
    rd_kafka_message_t m = {.err = RD_KAFKA_RESP_ERR_NO_ERROR, .offset = 41};
    const char *why = "untouched";
    cr_assert(kafka_delivered(&m, &why));
    cr_assert_str_eq(why, "untouched");

    m.offset = RD_KAFKA_OFFSET_INVALID;
    cr_assert_not(kafka_delivered(&m, &why));
    cr_assert(strstr(why, "without an offset"), "%s", why);

    m = (rd_kafka_message_t){.err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, .offset = 7};
    cr_assert_not(kafka_delivered(&m, &why));
    cr_assert_str_eq(why, rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    cr_assert_not(kafka_delivered(&m, NULL));
}

/* ---- the fetch waker */

/* Produces n small messages to topic (keyed k<i>, so spread over its partitions). */
static void produce_n(const char *brokers, const char *topic, int n)
{
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, brokers);
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE("0123456789abcdef", 16),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        cr_assert_eq(e, 0, "%s", rd_kafka_err2str(e));
    }
    cr_assert_eq(rd_kafka_flush(rk, 20000), 0);
    rd_kafka_destroy(rk);
}

/* Reads every message of topic's `np` partitions with a consumer whose queue holds queued_min
 * messages, a waker beside it; checks that each partition comes in order, once, in full. Returns
 * the wake-ups sent; *max_gap_ms, the longest wait for a message. */
static unsigned long read_with_waker(const char *brokers, const char *topic, int np, int want,
                                     const char *queued_min, double *max_gap_ms)
{
    perr err;
    char *props[] = {"enable.partition.eof=false", "group.id=test-waker",
                     "enable.auto.commit=false",   (char *)queued_min,
                     "message.max.bytes=32768",    "fetch.max.bytes=65536",
                     "fetch.wait.max.ms=10"};
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, 7, &err);
    cr_assert_not_null(conf, "%s", err.msg);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    char v[32];
    size_t vn = sizeof v;
    cr_assert_eq(rd_kafka_conf_get(rd_kafka_conf(rk), "queued.min.messages", v, &vn),
                 RD_KAFKA_CONF_OK);
    size_t full = (size_t)strtoull(v, NULL, 10);
    kafka_waker *w = kafka_waker_start(rk, full / 2, &err);
    cr_assert_not_null(w, "%s", err.msg);
    int64_t next[16] = {0};
    int got = 0;
    time_t until = time(NULL) + 60;
    double ready = 0; /* when the consumer was done with its last message (and work) */
    *max_gap_ms = 0;
    while (got < want && time(NULL) < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) {
            double now = (double)mono_ms();
            if (got && now - ready > *max_gap_ms) *max_gap_ms = now - ready;
            cr_assert_lt(m->partition, 16);
            /* a wake-up must not move the fetch position: no message twice, none skipped */
            cr_assert_eq(m->offset, next[m->partition], "partition %d: offset %lld after %lld",
                         (int)m->partition, (long long)m->offset,
                         (long long)next[m->partition] - 1);
            next[m->partition] = m->offset + 1;
            if (++got % 250 == 0) { /* a consumer with work to do: the queue fills up */
                const struct timespec work = {0, 10 * 1000000L};
                nanosleep(&work, NULL);
            }
            ready = (double)mono_ms();
        }
        rd_kafka_message_destroy(m);
    }
    unsigned long wakes = kafka_waker_wakes(w);
    kafka_waker_stop(w);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cr_assert_eq(got, want, "read %d of %d messages", got, want);
    return wakes;
}

/* The wake-ups sent while n messages of a new topic over np partitions were read with a queue of
 * queued_min ("queued.min.messages=N"); *max_gap_ms as read_with_waker. */
static unsigned long wakes_reading(int np, int n, const char *queued_min, double *max_gap_ms)
{
    const char *topics[] = {"w.topic"};
    kafka_mock *m = NULL;
    perr err;
    cr_assert_eq(kafka_mock_start(np, topics, 1, &m, &err), 0, "%s", err.msg);
    produce_n(kafka_mock_bootstrap(m), "w.topic", n);
    unsigned long wakes =
        read_with_waker(kafka_mock_bootstrap(m), "w.topic", np, n, queued_min, max_gap_ms);
    kafka_mock_stop(m);
    return wakes;
}

/* librdkafka 2.0 stops fetching once the queue holds queued.min.messages and would look again up
 * to a second later: the waker wakes the fetcher once the queue has been above half of it and is
 * down to half. */
Test(kafka, the_waker_wakes_the_fetcher_of_a_backlog_and_moves_no_position)
{
    /* a queue of 500 against 20,000 messages fills again and again */
    double gap;
    unsigned long wakes = wakes_reading(4, 20000, "queued.min.messages=500", &gap);
    cr_assert_lt(gap, 500, "a wait of %.0f ms: the fetcher slept", gap);
    cr_assert_geq(wakes, 1, "the fetcher was woken %lu times", wakes);
}

/* The rule, look by look (every 5 ms): a fetch takes the queue past queued.min.messages (10,000
 * here), which stops the fetcher, and the consumer takes it below that before the next look.
 * Arming at "seen holding 10,000" missed such peaks: the fetcher slept a second, 1 to 6 times per
 * million bench events. Arming above half does not. */
Test(kafka, the_waker_wakes_after_a_peak_it_never_saw)
{
    bool armed = false;
    const size_t looks[] = {0, 3000, 9000, 7000, 5200}; /* 11,000 came and went between looks */
    for (size_t i = 0; i < 5; i++)
        cr_assert_not(kafka_waker_look(&armed, looks[i], 5000), "look %zu", i);
    cr_assert(kafka_waker_look(&armed, 5000, 5000), "down to half after being above it: wake");
    cr_assert_not(kafka_waker_look(&armed, 3000, 5000), "once per descent");
    cr_assert_not(kafka_waker_look(&armed, 0, 5000));
    cr_assert_not(kafka_waker_look(&armed, 5001, 5000));
    cr_assert(kafka_waker_look(&armed, 100, 5000), "the next descent wakes again");
    armed = false;
    for (size_t n = 0; n <= 5000; n += 500) /* a consumer that keeps up: never a wake-up */
        cr_assert_not(kafka_waker_look(&armed, n, 5000), "at %zu", n);
}

Test(kafka, the_waker_stays_quiet_while_the_queue_never_fills)
{
    double gap;
    unsigned long wakes = wakes_reading(2, 300, "queued.min.messages=100000", &gap);
    cr_assert_eq(wakes, 0, "the fetcher was woken %lu times", wakes);
}
