/* provisioner produce-events: JSON-lines change events -> Avro message values (plain, or
 * Confluent-framed with --schema-id) -> a topic, key = the event's first record id, so that one
 * user's events share a partition and keep their order, as the service expects.
 *
 * Every line is read and encoded before the first message is sent: a bad line stops the command
 * with FILE:LINE and nothing half-produced behind it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "commands.h"
#include "jsonl.h"
#include "kafka/kafka.h"

typedef struct produce_msg {
    size_t key_off, key_len; /* into the shared data buffer; key_len 0: no key */
    size_t val_off, val_len;
} produce_msg;

typedef struct produce_batch {
    buf data;
    produce_msg *msgs;
    size_t n, cap;
} produce_batch;

typedef struct produce_report {
    size_t delivered, failed;
    char first_error[256];
} produce_report;

/* A change event of another entity (Account, Lead, ...) has fields the User schema cannot carry.
 * The service skips such events whatever their payload (R1.1), but they belong in the stream,
 * as in simulate's input: send the header alone rather than refuse the file. A User event that
 * does not fit stays an error: its fields matter. */
static int produce_header_only(codec_event_encoder *enc, const event *ev, buf *val,
                               const char *name, unsigned long lineno, codec_error *cerr)
{
    if (!ev->entity || strcmp(ev->entity, "User") == 0) return -1;
    event hdr = *ev;
    hdr.fields = NULL;
    hdr.n_fields = 0;
    hdr.changed_fields = hdr.nulled_fields = hdr.diff_fields = NULL;
    hdr.n_changed_fields = hdr.n_nulled_fields = hdr.n_diff_fields = 0;
    hdr.payload_marks_changes = false;
    codec_error again;
    if (codec_encode_event(enc, &hdr, val, &again) < 0) return -1;
    fprintf(stderr,
            "provisioner: %s:%lu: note: %s event sent with its header only (%s); the service skips "
            "non-User events\n",
            name, lineno, ev->entity, cerr->msg);
    return 0;
}

/* Reads and encodes every event of the input into batch. Returns EXIT_OK or EXIT_USAGE
 * (message printed as FILE:LINE: problem). */
static int produce_encode_all(jsonl_reader *in, codec_event_encoder *enc, produce_batch *batch)
{
    const event_layout *layout = codec_event_encoder_layout(enc);
    arena mem;
    arena_init(&mem, 64 * 1024);
    buf val;
    buf_init(&val);
    int code = EXIT_OK;
    while (jsonl_next(in)) {
        event ev;
        perr err;
        codec_error cerr;
        arena_reset(&mem);
        if (event_from_json(in->line, in->len, layout, &mem, &ev, &err) < 0) {
            fprintf(stderr, "provisioner: %s:%lu: %s\n", in->name, in->lineno, err.msg);
            code = EXIT_USAGE;
            break;
        }
        if (codec_encode_event(enc, &ev, &val, &cerr) < 0 &&
            produce_header_only(enc, &ev, &val, in->name, in->lineno, &cerr) < 0) {
            fprintf(stderr, "provisioner: %s:%lu: %s\n", in->name, in->lineno, cerr.msg);
            code = EXIT_USAGE;
            break;
        }
        if (batch->n == batch->cap) {
            batch->cap = batch->cap ? batch->cap * 2 : 256;
            batch->msgs = xrealloc(batch->msgs, batch->cap * sizeof *batch->msgs);
        }
        produce_msg *m = &batch->msgs[batch->n++];
        m->key_off = batch->data.len;
        m->key_len = ev.n_record_ids ? strlen(ev.record_ids[0]) : 0;
        buf_append(&batch->data, m->key_len ? ev.record_ids[0] : "", m->key_len);
        m->val_off = batch->data.len;
        m->val_len = val.len;
        buf_append(&batch->data, val.data, val.len);
    }
    buf_free(&val);
    arena_free(&mem);
    return code;
}

static void produce_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    produce_report *r = opaque;
    if (!m->err) {
        r->delivered++;
        return;
    }
    if (!r->failed++)
        snprintf(r->first_error, sizeof r->first_error, "%s", rd_kafka_err2str(m->err));
}

/* Sends every message and waits for all delivery reports. Returns EXIT_OK or EXIT_RUNTIME. */
static int produce_send_all(const cli_args *args, const char *brokers, const char *topic,
                            long partition, const produce_batch *batch)
{
    /* Defaults for a bulk load that the -X / PROVISIONER_KAFKA_ properties may override: batch
     * for a few ms, keep the file's order per partition across retries (idempotence), and give
     * up on an unreachable cluster in 30 s rather than librdkafka's 5 minutes. */
    static const char *const defaults[] = {"linger.ms=5", "batch.num.messages=10000",
                                           "enable.idempotence=true", "message.timeout.ms=30000"};
    size_t nd = sizeof defaults / sizeof defaults[0];
    char **props = xcalloc(nd + args->n_kafka_props, sizeof *props);
    for (size_t i = 0; i < nd; i++)
        props[i] = (char *)defaults[i];
    for (size_t i = 0; i < args->n_kafka_props; i++)
        props[nd + i] = args->kafka_props[i];
    perr err;
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, nd + args->n_kafka_props, &err);
    free(props);
    if (!conf) {
        fprintf(stderr, "provisioner: produce-events: %s\n", err.msg);
        return EXIT_USAGE;
    }
    produce_report rep = {0};
    rd_kafka_conf_set_dr_msg_cb(conf, produce_on_delivery);
    rd_kafka_conf_set_opaque(conf, &rep);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "provisioner: produce-events: %s\n", errstr);
        return EXIT_RUNTIME;
    }
    int32_t part = partition >= 0 ? (int32_t)partition : RD_KAFKA_PARTITION_UA;
    size_t refused = 0;
    for (size_t i = 0; i < batch->n; i++) {
        const produce_msg *m = &batch->msgs[i];
        for (;;) {
            /* No copy flag: the batch outlives the flush below. */
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_KEY(m->key_len ? batch->data.data + m->key_off : NULL, m->key_len),
                RD_KAFKA_V_VALUE(batch->data.data + m->val_off, m->val_len), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50); /* let deliveries drain the local queue */
                continue;
            }
            if (e) {
                if (!refused++ && !rep.failed)
                    snprintf(rep.first_error, sizeof rep.first_error, "%s", rd_kafka_err2str(e));
            }
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    /* message.timeout.ms bounds every message's life, so this ends. */
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    rd_kafka_destroy(rk);

    size_t failed = rep.failed + refused;
    if (failed) {
        fprintf(stderr, "provisioner: produce-events: %zu of %zu events not delivered to %s: %s\n",
                failed, batch->n, topic, rep.first_error);
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "produced %zu events to %s\n", rep.delivered, topic);
    return EXIT_OK;
}

int cmd_produce_events(int argc, char **argv)
{
    static const char usage[] = "provisioner produce-events --brokers B --topic T --events FILE "
                                "[--schema-id N] [--partition P] [-X name=value]";
    static const char summary[] =
        "Encodes JSON-lines change events as Avro (plain, or Confluent-framed with --schema-id)\n"
        "and writes them to a topic, key = the event's first record id. Every line is checked\n"
        "before anything is sent: a bad one prints FILE:LINE and exits 2. Exits 1 when a\n"
        "message is not delivered. -X name=value (or PROVISIONER_KAFKA_name=value) passes a\n"
        "librdkafka property through.\n";
    cli_args args;
    int code = EXIT_OK;
    if (cmd_parse(C_PRODUCE, usage, summary, argc, argv, &args, &code) < 0) return code;

    const char *brokers = cli_str(&args, "brokers"), *topic = cli_str(&args, "topic");
    const char *events = cli_str(&args, "events"), *schema = cli_str(&args, "schema");
    if (args.n_positional) {
        fprintf(stderr, "provisioner: produce-events: unexpected argument '%s'\n",
                args.positional[0]);
        cli_free(&args);
        return EXIT_USAGE;
    }
    if (!brokers || !*brokers || !topic || !*topic) {
        fprintf(stderr,
                "provisioner: produce-events: --brokers and --topic are required (usage: "
                "%s)\n",
                usage);
        cli_free(&args);
        return EXIT_USAGE;
    }

    codec_event_encoder_config ecfg = {0};
    buf avsc;
    buf_init(&avsc);
    if (schema) {
        if (buf_read_file(&avsc, schema, SIZE_MAX) < 0) {
            fprintf(stderr, "provisioner: %s: %s\n", schema, strerror(errno));
            buf_free(&avsc);
            cli_free(&args);
            return EXIT_USAGE;
        }
        ecfg.writer_avsc = avsc.data;
        ecfg.writer_avsc_len = avsc.len;
    }
    if (cli_given(&args, "schema-id")) {
        ecfg.framed = true;
        ecfg.schema_id = (int32_t)cli_int(&args, "schema-id");
    }
    codec_event_encoder *enc = NULL;
    codec_error cerr;
    if (codec_event_encoder_new(&ecfg, &enc, &cerr) < 0) {
        fprintf(stderr, "provisioner: %s: %s\n", schema ? schema : "bundled schema", cerr.msg);
        buf_free(&avsc);
        cli_free(&args);
        return EXIT_USAGE;
    }

    jsonl_reader in;
    produce_batch batch = {0};
    buf_init(&batch.data);
    if (jsonl_open(&in, events) < 0) {
        fprintf(stderr, "provisioner: %s: %s\n", events, strerror(errno));
        code = EXIT_USAGE;
    } else {
        code = produce_encode_all(&in, enc, &batch);
        const char *name = in.name;
        if (jsonl_close(&in) < 0 && code == EXIT_OK) {
            fprintf(stderr, "provisioner: %s: %s\n", name, strerror(errno));
            code = EXIT_USAGE;
        }
    }
    if (code == EXIT_OK)
        code = produce_send_all(&args, brokers, topic,
                                cli_given(&args, "partition") ? cli_int(&args, "partition") : -1,
                                &batch);
    buf_free(&batch.data);
    free(batch.msgs);
    codec_event_encoder_free(enc);
    buf_free(&avsc);
    cli_free(&args);
    return code;
}
