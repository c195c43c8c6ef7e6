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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

struct kafka_mock {
    rd_kafka_t *rk; /* owns nothing but the cluster's bookkeeping */
    rd_kafka_mock_cluster_t *mc;
    char *bootstrap;
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

int kafka_mock_start(int partitions, const char *const *topics, size_t n, kafka_mock **out,
                     perr *err)
{
    *out = NULL;
    if (partitions < 1)
        return perr_set(err, "dev broker: %d partitions, need at least 1", partitions);

    char errstr[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_mock_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return perr_set(err, "dev broker: %s", errstr);
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        rd_kafka_destroy(rk);
        return perr_set(err, "dev broker: cannot start librdkafka's mock cluster (no free "
                             "loopback port?)");
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[i], partitions, 1);
        /* A topic named twice (say, a default one also in --topics) is not a mistake. */
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            perr_set(err, "dev broker: creating topic '%s': %s", topics[i], rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return -1;
        }
    }
    kafka_mock *m = xcalloc(1, sizeof *m);
    m->rk = rk;
    m->mc = mc;
    m->bootstrap = xstrdup(rd_kafka_mock_cluster_bootstraps(mc));
    *out = m;
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
