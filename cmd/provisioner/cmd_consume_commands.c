/* provisioner consume-commands: the output topic -> one JSON command a line on stdout.
 *
 * Without --group it joins no group and commits nothing: it is assigned every partition, from the
 * first offset with --from-beginning, else from the end as it was when the command started (the
 * high watermarks are read before the "reading" line goes to stderr, so anything produced after
 * that line is seen). With --group it subscribes and commits like any consumer. Values are decoded
 * with the codec: JSON passes through, Avro (plain or Confluent-framed GongCommand) becomes the
 * same JSON that `simulate` prints. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "commands.h"
#include "kafka/kafka.h"

static volatile sig_atomic_t consume_stop;
static bool consume_assigned; /* set by the rebalance callback, which runs inside our poll */

/* Only sets the flag: the poll loop notices within 100 ms and closes the consumer normally. */
static void consume_on_signal(int sig)
{
    (void)sig;
    consume_stop = 1;
}

static double consume_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `group` is also the service's option (with PROVISIONER_GROUP and a default); this command has
 * its own entry, which cli_str would not find by name, so look it up by command bit. */
static const char *consume_group(const cli_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        if ((a->table[i].commands & C_CONSUME) && strcmp(a->table[i].name, "group") == 0)
            return a->vals[i];
    return NULL;
}

static void consume_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        consume_assigned = true;
        fprintf(stderr, "consume-commands: assigned %d partitions\n", parts->cnt);
    } else {
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, NULL);
    }
}

/* Assigns every partition of topic directly. Waits up to wait_s for the topic to exist. */
static int consume_assign_all(rd_kafka_t *rk, const char *topic, bool from_beginning, double wait_s)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    double until = consume_now() + wait_s;
    int partitions = 0;
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        last = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!last) {
            if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
                partitions = md->topics[0].partition_cnt;
            else if (md->topic_cnt == 1)
                last = md->topics[0].err;
            rd_kafka_metadata_destroy(md);
        }
        if (partitions || consume_stop || consume_now() >= until) break;
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    if (!partitions) {
        if (consume_stop) return 0;
        fprintf(stderr, "provisioner: consume-commands: topic %s: %s\n", topic,
                last ? rd_kafka_err2str(last) : "no partitions");
        return -1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        int64_t off = RD_KAFKA_OFFSET_BEGINNING;
        if (!from_beginning) {
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
            if (e) {
                fprintf(stderr, "provisioner: consume-commands: %s[%d]: end offset: %s\n", topic, p,
                        rd_kafka_err2str(e));
                rd_kafka_topic_partition_list_destroy(list);
                return -1;
            }
            off = hi;
        }
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = off;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        fprintf(stderr, "provisioner: consume-commands: assign: %s\n", rd_kafka_err2str(e));
        return -1;
    }
    fprintf(stderr, "consume-commands: reading %s (%d partitions) from the %s\n", topic, partitions,
            from_beginning ? "beginning" : "end");
    return 0;
}

int cmd_consume_commands(int argc, char **argv)
{
    static const char usage[] = "provisioner consume-commands --brokers B --topic T "
                                "[--from-beginning] [--count N] [--timeout S] [--group G]";
    static const char summary[] =
        "Reads Gong commands from a topic and prints each as one JSON object a line on stdout\n"
        "(Avro values are decoded; JSON ones pass through). Stops after --count messages, or\n"
        "after --timeout seconds without a new one, or on SIGTERM/SIGINT; exits 0, or 1 when a\n"
        "value could not be decoded or the topic could not be read.\n";
    cli_args args;
    int code = EXIT_OK;
    if (cmd_parse(C_CONSUME, usage, summary, argc, argv, &args, &code) < 0) return code;

    const char *brokers = cli_str(&args, "brokers"), *topic = cli_str(&args, "topic");
    const char *group = consume_group(&args);
    bool from_beginning = cli_bool(&args, "from-beginning");
    long count = cli_given(&args, "count") ? cli_int(&args, "count") : 0;
    double timeout = cli_double(&args, "timeout");
    if (args.n_positional) {
        fprintf(stderr, "provisioner: consume-commands: unexpected argument '%s'\n",
                args.positional[0]);
        cli_free(&args);
        return EXIT_USAGE;
    }
    if (!brokers || !*brokers || !topic || !*topic) {
        fprintf(stderr,
                "provisioner: consume-commands: --brokers and --topic are required (usage: %s)\n",
                usage);
        cli_free(&args);
        return EXIT_USAGE;
    }

    /* Group-less reading commits nothing; with a group, offsets are committed as usual so that a
     * second run goes on where the first stopped. A short session timeout because librdkafka's
     * mock broker (the dev broker) holds every join until session.timeout.ms - 1 s after a member
     * joined or left: 44 s with the default. -X / PROVISIONER_KAFKA_ come last and win. */
    const char *defaults[] = {"enable.partition.eof=false", "session.timeout.ms=6000",
                              group ? "enable.auto.commit=true" : "enable.auto.commit=false",
                              from_beginning ? "auto.offset.reset=earliest"
                                             : "auto.offset.reset=latest"};
    size_t nd = sizeof defaults / sizeof defaults[0];
    char **props = xcalloc(nd + args.n_kafka_props, sizeof *props);
    for (size_t i = 0; i < nd; i++)
        props[i] = (char *)defaults[i];
    for (size_t i = 0; i < args.n_kafka_props; i++)
        props[nd + i] = args.kafka_props[i];
    perr err;
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, props, nd + args.n_kafka_props, &err);
    free(props);
    /* librdkafka wants a group.id even to assign partitions by hand; without --group it is a
     * name of this process's own that is never joined (no subscribe) nor committed to. */
    char own_group[64];
    snprintf(own_group, sizeof own_group, "provisioner-consume-commands-%ld", (long)getpid());
    if (conf && kafka_conf_set(conf, "group.id", group ? group : own_group, &err) < 0) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    if (!conf) {
        fprintf(stderr, "provisioner: consume-commands: %s\n", err.msg);
        cli_free(&args);
        return EXIT_USAGE;
    }
    if (group) rd_kafka_conf_set_rebalance_cb(conf, consume_on_rebalance);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "provisioner: consume-commands: %s\n", errstr);
        cli_free(&args);
        return EXIT_RUNTIME;
    }
    rd_kafka_poll_set_consumer(rk);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = consume_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int started = 0;
    if (group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (e) {
            fprintf(stderr, "provisioner: consume-commands: subscribe: %s\n", rd_kafka_err2str(e));
            started = -1;
        } else {
            fprintf(stderr, "consume-commands: reading %s in group %s\n", topic, group);
        }
    } else {
        started = consume_assign_all(rk, topic, from_beginning, timeout);
    }

    long seen = 0, undecodable = 0, errors = 0;
    if (started == 0) {
        buf out;
        buf_init(&out);
        /* Joining a group takes seconds (on the dev broker up to session.timeout.ms): that wait
         * gets up to 30 s of its own, and the idle clock starts once partitions are assigned. */
        double last = consume_now(), grace = group ? 30.0 : 0.0;
        while (!consume_stop && (count == 0 || seen < count)) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (consume_assigned) {
                consume_assigned = false;
                grace = 0.0;
                last = consume_now();
            }
            if (!m) {
                cmd_flush_stdout(); /* idle: let a reader of the pipe see what there is */
                if (consume_now() - last >= timeout + grace) break;
                continue;
            }
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    errors++;
                    fprintf(stderr, "consume-commands: %s\n", rd_kafka_message_errstr(m));
                }
                rd_kafka_message_destroy(m);
                continue;
            }
            last = consume_now();
            seen++;
            codec_error cerr;
            if (!m->payload || !m->len) {
                undecodable++;
                fprintf(stderr, "consume-commands: %s[%d]@%lld: empty value\n", topic,
                        (int)m->partition, (long long)m->offset);
            } else if (codec_command_value_to_json(m->payload, m->len, &out, &cerr) < 0) {
                undecodable++;
                fprintf(stderr, "consume-commands: %s[%d]@%lld: cannot decode: %s\n", topic,
                        (int)m->partition, (long long)m->offset, cerr.msg);
            } else {
                fwrite(out.data, 1, out.len, stdout);
                fputc('\n', stdout);
            }
            rd_kafka_message_destroy(m);
        }
        buf_free(&out);
        cmd_flush_stdout();
        fprintf(stderr, "consumed %ld messages from %s%s\n", seen, topic,
                count && seen < count ? " (fewer than --count: timed out)" : "");
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cli_free(&args);
    if (started < 0 || undecodable || (errors && seen == 0)) return EXIT_RUNTIME;
    return EXIT_OK;
}
