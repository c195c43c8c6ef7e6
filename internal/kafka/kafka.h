/* kafka: librdkafka configuration with pass-through properties (kcat's -X, Fluent Bit's rdkafka.)
 * and the dev broker: librdkafka's own mock cluster, a Kafka-protocol broker on loopback. */
#ifndef PROVISIONER_KAFKA_H
#define PROVISIONER_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

#include "util/util.h"

/* A new configuration with bootstrap.servers = brokers and each "name=value" of props applied in
 * order (later wins). A property librdkafka refuses is an error naming it; values are never put
 * in messages (they may be secrets). */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *const *props, size_t n, perr *err);
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, perr *err);

typedef struct kafka_mock kafka_mock;

/* Starts a mock cluster with one broker on a loopback port and creates each topic with
 * `partitions` partitions. */
int kafka_mock_start(int partitions, const char *const *topics, size_t n, kafka_mock **out,
                     perr *err);
const char *kafka_mock_bootstrap(const kafka_mock *m);
rd_kafka_mock_cluster_t *kafka_mock_cluster(kafka_mock *m); /* for fault injection */
void kafka_mock_stop(kafka_mock *m);

#endif
