/* kafka: configuration with pass-through properties, and the dev broker.
 *
 * The dev broker is librdkafka's mock cluster (rdkafka_mock.h, librdkafka 2.0.2): a real
 * Kafka-protocol listener on a loopback port, good for producing, consuming, consumer groups
 * (cooperative-sticky included, the assignor runs in the client) and committed offsets. Its limits,
 * which the service and the tests must not rely on:
 *   - no transactions worth the name: no stored transactional offsets, no transaction markers
 *     (read_committed reads everything);
 *   - no timestamp look-ups (offsetsForTimes): only the earliest and latest offsets;
 *   - each partition keeps about 5 MiB (and at most 100,000 messages); older segments are dropped,
 *     so the log start offset moves on under a long-running demo;
 *   - CreateTopics is not supported: topics are made here, or on first use with the mock's own
 *     default of 4 partitions;
 *   - everything lives in memory and is gone when the process stops. */
#include "kafka.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

/* ---------------------------------------------------------------- waker */

struct kafka_waker {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    size_t low;
    pthread_t thread;
    atomic_bool stop;
    atomic_ulong wakes;
};

/* How often the queue is looked at: a fetch refills it within a few milliseconds of a wake-up, and
 * the service drains a full queue in tens. */
#define WAKER_LOOK_MS 5

bool kafka_waker_look(bool *armed, size_t queued, size_t low)
{
    /* armed above low, not at queued.min.messages: a fetch may take the queue past that (which
     * stops the fetcher) and the consumer below it between two looks */
    if (queued > low) {
        *armed = true;
        return false;
    }
    bool wake = *armed;
    *armed = false;
    return wake;
}

static void *waker_main(void *arg)
{
    kafka_waker *w = arg;
    bool armed = false; /* above low since the last wake-up: the fetcher may be asleep */
    const struct timespec nap = {0, WAKER_LOOK_MS * 1000000L};
    while (!atomic_load(&w->stop)) {
        nanosleep(&nap, NULL);
        if (!kafka_waker_look(&armed, rd_kafka_queue_length(w->q), w->low)) continue;
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(w->rk, &parts) || !parts) continue;
        if (parts->cnt) {
            for (int i = 0; i < parts->cnt; i++)
                parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* the latest: no timestamp look-up */
            /* the answer is not used: the request is what wakes each leader's broker thread */
            (void)rd_kafka_offsets_for_times(w->rk, parts, 1000);
            atomic_fetch_add(&w->wakes, 1);
        }
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return NULL;
}

kafka_waker *kafka_waker_start(rd_kafka_t *consumer, size_t low, perr *err)
{
    kafka_waker *w = xcalloc(1, sizeof *w);
    w->rk = consumer;
    w->q = rd_kafka_queue_get_consumer(consumer);
    w->low = low;
    atomic_init(&w->stop, false);
    atomic_init(&w->wakes, 0);
    if (!w->q) {
        free(w);
        perr_set(err, "fetch waker: the client has no consumer queue");
        return NULL;
    }
    int e = pthread_create(&w->thread, NULL, waker_main, w);
    if (e) {
        rd_kafka_queue_destroy(w->q);
        free(w);
        perr_set(err, "fetch waker: cannot start a thread: %s", strerror(e));
        return NULL;
    }
    return w;
}

unsigned long kafka_waker_wakes(const kafka_waker *w) { return w ? atomic_load(&w->wakes) : 0; }

void kafka_waker_stop(kafka_waker *w)
{
    if (!w) return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    rd_kafka_queue_destroy(w->q);
    free(w);
}

/* ---------------------------------------------------------------- dev broker */

struct kafka_mock {
    rd_kafka_t *rk; /* owns nothing but the cluster's bookkeeping */
    rd_kafka_mock_cluster_t *mc;
    char *bootstrap;
    int brokers;
};

/* Copies msg into out with every occurrence of secret replaced by "***": librdkafka quotes the
 * refused value in its messages, and a refused value may be a password. */
static void kafka_mask(const char *msg, const char *secret, char *out, size_t outsz)
{
    size_t sl = strlen(secret), o = 0;
    while (*msg && o + 1 < outsz) {
        if (sl && strncmp(msg, secret, sl) == 0) {
            for (const char *m = "***"; *m && o + 1 < outsz; m++)
                out[o++] = *m;
            msg += sl;
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = '\0';
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, perr *err)
{
    char errstr[512] = "";
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr);
    if (r == RD_KAFKA_CONF_OK) return 0;
    if (r == RD_KAFKA_CONF_UNKNOWN) return perr_set(err, "unknown librdkafka property '%s'", name);
    char masked[512];
    kafka_mask(errstr, value, masked, sizeof masked);
    return perr_set(err, "librdkafka property '%s': %s", name,
                    masked[0] ? masked : "invalid value");
}

bool kafka_delivered(const rd_kafka_message_t *m, const char **why)
{
    const char *no = NULL;
    if (m->err)
        no = rd_kafka_err2str(m->err);
    else if (m->offset < 0)
        no = "acknowledged without an offset (implicitly, after a later request of the partition)";
    if (no && why) *why = no;
    return !no;
}

int32_t kafka_command_partition(const char *key, size_t len)
{
    return key && !len ? 0 : RD_KAFKA_PARTITION_UA;
}

size_t kafka_max_message(rd_kafka_t *producer)
{
    char v[32];
    size_t n = sizeof v;
    if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", v, &n) != RD_KAFKA_CONF_OK)
        return 1000000; /* librdkafka's default */
    return strtoull(v, NULL, 10);
}

/* A record batch's header is 61 bytes and a record's own fields at most ~40 (varint lengths,
 * attributes, timestamp and offset deltas); each header adds two varint lengths. The bound is
 * a little above librdkafka's count, so a message it passes is never refused there. */
#define KAFKA_BATCH_OVERHEAD 128
#define KAFKA_HEADER_OVERHEAD 10

size_t kafka_wire_size(size_t key_len, size_t value_len, size_t header_bytes, size_t n_headers)
{
    return KAFKA_BATCH_OVERHEAD + key_len + value_len + header_bytes +
           n_headers * KAFKA_HEADER_OVERHEAD;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *const *props, size_t n, perr *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (brokers && *brokers && kafka_conf_set(conf, "bootstrap.servers", brokers, err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i]) {
            /* Only text before an '=' is ever shown: what follows may be a secret. */
            if (eq)
                perr_set(err, "librdkafka property with an empty name (name=value expected)");
            else
                perr_set(err, "librdkafka property '%s' needs the form name=value", props[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        char name[256];
        size_t len = (size_t)(eq - props[i]);
        if (len >= sizeof name) {
            perr_set(err, "librdkafka property name '%.40s...' is too long", props[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        memcpy(name, props[i], len);
        name[len] = '\0';
        if (kafka_conf_set(conf, name, eq + 1, err) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* The mock's handle has no bootstrap.servers on purpose (it serves, it does not connect), which
 * librdkafka reports as a configuration warning: drop that one, pass real problems on. */
static void kafka_mock_log(const rd_kafka_t *rk, int level, const char *fac, const char *line)
{
    (void)rk;
    if (level > LOG_WARNING || strcmp(fac, "CONFWARN") == 0) return;
    fprintf(stderr, "dev-broker: %s: %s\n", fac, line);
}

int kafka_mock_topic_spec(const char *spec, int dflt, char *out, size_t outsz, int *parts,
                          perr *err)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= outsz) return perr_set(err, "dev broker: bad topic name '%s'", spec);
    memcpy(out, spec, len);
    out[len] = '\0';
    *parts = dflt;
    if (colon) {
        char *end;
        errno = 0;
        long v = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || v < 1 || v > 10000)
            return perr_set(err,
                            "dev broker: topic '%s': the partition count after ':' must be "
                            "a number from 1 to 10000",
                            out);
        *parts = (int)v;
    }
    return 0;
}

int kafka_mock_start(int partitions, const char *const *topics, size_t n, kafka_mock **out,
                     perr *err)
{
    return kafka_mock_start_cluster(1, partitions, topics, n, out, err);
}

int kafka_mock_start_cluster(int brokers, int partitions, const char *const *topics, size_t n,
                             kafka_mock **out, perr *err)
{
    *out = NULL;
    if (partitions < 1)
        return perr_set(err, "dev broker: %d partitions, need at least 1", partitions);
    if (brokers < 1 || brokers > 16)
        return perr_set(err, "dev broker: %d brokers, need 1 to 16", brokers);

    char errstr[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_mock_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return perr_set(err, "dev broker: %s", errstr);
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        rd_kafka_destroy(rk);
        return perr_set(err, "dev broker: cannot start librdkafka's mock cluster (no free "
                             "loopback port?)");
    }
    int replicas = brokers < 3 ? brokers : 3;
    for (size_t i = 0; i < n; i++) {
        char name[256];
        int parts = partitions;
        if (kafka_mock_topic_spec(topics[i], partitions, name, sizeof name, &parts, err) < 0) {
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return -1;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, replicas);
        /* A topic named twice (say, a default one also in --topics) is not a mistake. */
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            perr_set(err, "dev broker: creating topic '%s': %s", name, rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return -1;
        }
    }
    kafka_mock *m = xcalloc(1, sizeof *m);
    m->rk = rk;
    m->mc = mc;
    m->bootstrap = xstrdup(rd_kafka_mock_cluster_bootstraps(mc));
    m->brokers = brokers;
    *out = m;
    return 0;
}

int kafka_mock_broker_count(const kafka_mock *m) { return m->brokers; }

/* ---- fault injection */

/* The Kafka protocol's API keys by name (KIP numbering; librdkafka 2.0.2 knows 0..51). */
static const char *const kafka_api_names[] = {
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
};

/* A whole decimal number in [lo, hi]; -1 otherwise. */
static int kafka_parse_num(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int kafka_api_key_parse(const char *s)
{
    long v;
    size_t n = sizeof kafka_api_names / sizeof kafka_api_names[0];
    if (!s || !*s) return -1;
    if (isdigit((unsigned char)s[0]) || s[0] == '-')
        return kafka_parse_num(s, 0, 32767, &v) == 0 ? (int)v : -1;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, kafka_api_names[i]) == 0) return (int)i;
    if (strcasecmp(s, "Offset") == 0) return 2; /* the older names */
    if (strcasecmp(s, "ApiVersion") == 0) return 18;
    if (strcasecmp(s, "GroupCoordinator") == 0) return 10;
    return -1;
}

int kafka_err_parse(const char *s, rd_kafka_resp_err_t *out)
{
    long v;
    if (!s || !*s) return -1;
    if (isdigit((unsigned char)s[0]) || s[0] == '-') {
        if (kafka_parse_num(s, -200, 32767, &v) < 0) return -1;
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0) s += 18;
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    if (strcasecmp(s, "NOT_LEADER_OR_FOLLOWER") == 0) { /* KIP-392's name for the same code */
        *out = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
        return 0;
    }
    return -1;
}

int kafka_mock_control(kafka_mock *m, const char *line, perr *err)
{
    char copy[1024];
    if (strlen(line) >= sizeof copy) return perr_set(err, "command too long");
    snprintf(copy, sizeof copy, "%s", line);
    char *tok[8];
    int nt = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (nt == 8) return perr_set(err, "too many words");
        tok[nt++] = t;
    }
    if (!nt) return perr_set(err, "empty command");
    const char *cmd = tok[0];
    long id = 0, num = 0;
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR, e = RD_KAFKA_RESP_ERR_NO_ERROR;
#define KM_ARGS(k, usage)                                                                          \
    do {                                                                                           \
        if (nt != (k) + 1) return perr_set(err, "usage: %s", usage);                               \
    } while (0)
    if (strcmp(cmd, "ping") == 0) {
        KM_ARGS(0, "ping");
        return 0;
    }
    if (strcmp(cmd, "error") == 0) {
        KM_ARGS(3, "error API ERROR COUNT");
        int api = kafka_api_key_parse(tok[1]);
        if (api < 0) return perr_set(err, "unknown API key '%s'", tok[1]);
        if (kafka_err_parse(tok[2], &code) < 0)
            return perr_set(err, "unknown error code '%s'", tok[2]);
        if (kafka_parse_num(tok[3], 1, 100000, &num) < 0)
            return perr_set(err, "COUNT must be a number from 1 to 100000, not '%s'", tok[3]);
        rd_kafka_resp_err_t *codes = xcalloc((size_t)num, sizeof *codes);
        for (long i = 0; i < num; i++)
            codes[i] = code;
        rd_kafka_mock_push_request_errors_array(m->mc, (int16_t)api, (size_t)num, codes);
        free(codes);
        return 0;
    }
    if (strcmp(cmd, "clear") == 0) {
        KM_ARGS(1, "clear API");
        int api = kafka_api_key_parse(tok[1]);
        if (api < 0) return perr_set(err, "unknown API key '%s'", tok[1]);
        rd_kafka_mock_clear_request_errors(m->mc, (int16_t)api);
        return 0;
    }
    if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
        KM_ARGS(1, cmd[0] == 'd' ? "down BROKER_ID" : "up BROKER_ID");
        if (kafka_parse_num(tok[1], 1, m->brokers, &id) < 0)
            return perr_set(err, "no broker '%s' (ids are 1..%d)", tok[1], m->brokers);
        e = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(m->mc, (int32_t)id)
                          : rd_kafka_mock_broker_set_up(m->mc, (int32_t)id);
    } else if (strcmp(cmd, "leader") == 0) {
        KM_ARGS(3, "leader TOPIC PARTITION BROKER_ID");
        if (kafka_parse_num(tok[2], 0, 100000, &num) < 0)
            return perr_set(err, "bad partition '%s'", tok[2]);
        if (kafka_parse_num(tok[3], 1, m->brokers, &id) < 0)
            return perr_set(err, "no broker '%s' (ids are 1..%d)", tok[3], m->brokers);
        e = rd_kafka_mock_partition_set_leader(m->mc, tok[1], (int32_t)num, (int32_t)id);
    } else if (strcmp(cmd, "rtt") == 0) {
        KM_ARGS(2, "rtt BROKER_ID MS");
        if (kafka_parse_num(tok[1], 1, m->brokers, &id) < 0)
            return perr_set(err, "no broker '%s' (ids are 1..%d)", tok[1], m->brokers);
        if (kafka_parse_num(tok[2], 0, 600000, &num) < 0)
            return perr_set(err, "MS must be a number from 0 to 600000, not '%s'", tok[2]);
        e = rd_kafka_mock_broker_set_rtt(m->mc, (int32_t)id, (int)num);
    } else if (strcmp(cmd, "topic-error") == 0) {
        KM_ARGS(2, "topic-error TOPIC ERROR");
        if (kafka_err_parse(tok[2], &code) < 0)
            return perr_set(err, "unknown error code '%s'", tok[2]);
        rd_kafka_mock_topic_set_error(m->mc, tok[1], code);
        return 0;
    } else {
        return perr_set(err,
                        "unknown command '%s' (error, clear, down, up, leader, rtt, "
                        "topic-error, ping)",
                        cmd);
    }
#undef KM_ARGS
    if (e) return perr_set(err, "%s: %s", cmd, rd_kafka_err2str(e));
    return 0;
}

const char *kafka_mock_bootstrap(const kafka_mock *m) { return m->bootstrap; }

rd_kafka_mock_cluster_t *kafka_mock_cluster(kafka_mock *m) { return m->mc; }

void kafka_mock_stop(kafka_mock *m)
{
    if (!m) return;
    /* The cluster refers to the handle's bookkeeping: it goes first. */
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
    free(m->bootstrap);
    free(m);
}
