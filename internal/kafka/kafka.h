/* kafka: librdkafka configuration with pass-through properties (kcat's -X, Fluent Bit's rdkafka.)
 * and the dev broker: librdkafka's own mock cluster, a Kafka-protocol broker on loopback. */
#ifndef PROVISIONER_KAFKA_H
#define PROVISIONER_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

/* A new configuration with bootstrap.servers = brokers and each "name=value" of props applied in
 * order (later wins). A property librdkafka refuses is an error naming it; values are never put
 * in messages (they may be secrets). */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *const *props, size_t n, perr *err);
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, perr *err);

/* Whether a delivery report proves that the message is on its topic. librdkafka also reports
 * success with no offset for a message it "implicitly acknowledged" (a later request of the
 * partition succeeded, so an earlier one whose answer was lost is taken as written). The dev
 * broker does not check an idempotent producer's sequence numbers, so such messages were in fact
 * lost there (a request refused by a partition's old leader, the next one accepted by the new
 * leader); a real broker refuses that gap. Not taking them as delivered means producing them
 * again: a duplicate with the same command id at worst (R9.1), never a loss (R9.2). When false,
 * *why (if not NULL) says why, as static text. */
bool kafka_delivered(const rd_kafka_message_t *m, const char **why);

/* The partition a command is produced to: the partitioner's (by key) for a user's; 0 for an empty
 * key (COMPANY_SETTINGS, interfaces.md), which the default partitioner would spread at random:
 * company commands keep their order. key NULL (not a command): the partitioner's. */
int32_t kafka_command_partition(const char *key, size_t len);

/* A producer's message.max.bytes: librdkafka refuses, at produce time, a message whose size on
 * the wire would be over it (and a broker's topic refuses what is over its max.message.bytes,
 * 1 MB by default, alike). */
size_t kafka_max_message(rd_kafka_t *producer);
/* At least what librdkafka counts for that limit: the key, the value, headers of header_bytes
 * (names and values) in n_headers, and the record and record-batch framing. */
size_t kafka_wire_size(size_t key_len, size_t value_len, size_t header_bytes, size_t n_headers);

/* librdkafka before 2.2 stops fetching once the consumer's queue holds queued.min.messages (or
 * queued.max.messages.kbytes) and looks again only when the fetching broker thread next wakes: on
 * a request or reply of its own, else a second later (rd_kafka_max_block_ms). Under a backlog the
 * queue drains well within that second, so the consumer idles part of every second. A waker
 * looks at the queue's length from a thread of its own every few milliseconds and, once it has
 * been above `low` and is down to `low` again, sends a ListOffsets request for the assigned
 * partitions (one per leader broker): that request wakes the broker threads, which then fetch
 * again. It does not wait to see the queue at queued.min.messages: a fetch may take it there and
 * the consumer below it between two looks, and the fetcher sleeps all the same. A wake-up of a
 * fetcher that was not asleep costs one small request; a queue that stays at or below `low` (the
 * consumer keeps up) costs nothing but the looks. */
typedef struct kafka_waker kafka_waker;

/* Starts watching consumer's queue. NULL (and err) when the thread cannot start. Stop it before
 * the consumer is closed. */
kafka_waker *kafka_waker_start(rd_kafka_t *consumer, size_t low, perr *err);
/* One look at a queue of `queued` messages: true when the fetcher is to be woken (it has been
 * above `low` since the last wake-up and is at or below it now). The waker's rule, for tests. */
bool kafka_waker_look(bool *armed, size_t queued, size_t low);
/* The wake-ups sent so far. */
unsigned long kafka_waker_wakes(const kafka_waker *w);
void kafka_waker_stop(kafka_waker *w);

typedef struct kafka_mock kafka_mock;

/* Starts a mock cluster with one broker on a loopback port and creates each topic with
 * `partitions` partitions. */
int kafka_mock_start(int partitions, const char *const *topics, size_t n, kafka_mock **out,
                     perr *err);
const char *kafka_mock_bootstrap(const kafka_mock *m);
rd_kafka_mock_cluster_t *kafka_mock_cluster(kafka_mock *m); /* for fault injection */
void kafka_mock_stop(kafka_mock *m);

/* The same with `brokers` brokers (ids 1..brokers); each partition gets min(brokers, 3) replicas
 * with the leaders spread over the brokers. A topic may be written "name:N" for N partitions
 * instead of `partitions` (kafka_mock_start accepts that form too). */
int kafka_mock_start_cluster(int brokers, int partitions, const char *const *topics, size_t n,
                             kafka_mock **out, perr *err);
int kafka_mock_broker_count(const kafka_mock *m);
/* "name" or "name:N" -> the name (copied into out) and its partition count (dflt without :N).
 * Topic names never hold ':', so the form is unambiguous. */
int kafka_mock_topic_spec(const char *spec, int dflt, char *out, size_t outsz, int *parts,
                          perr *err);

/* Fault injection, one command (the dev broker's --control channel reads them from stdin):
 *   error API ERR COUNT          the next COUNT requests of API (name or number: Produce, Fetch,
 *                                OffsetCommit, ...) fail with ERR (name, e.g.
 *                                NOT_LEADER_FOR_PARTITION, or number), on whichever broker
 *   clear API                    drops the errors still queued for API
 *   down ID / up ID              broker ID closes its connections and refuses new ones / serves
 *                                again (partition leadership does not move by itself)
 *   leader TOPIC PARTITION ID    makes broker ID the partition's leader (like any request naming
 *                                a topic, it creates a topic the mock does not know)
 *   rtt ID MS                    broker ID answers MS milliseconds late (0: no delay)
 *   topic-error TOPIC ERR        metadata answers ERR for the topic (NO_ERROR clears it)
 *   ping                         does nothing (to synchronise with the caller)
 * Returns 0, or -1 with err saying what is wrong with the command or what the mock refused. */
int kafka_mock_control(kafka_mock *m, const char *line, perr *err);

/* A Kafka API key from its protocol name ("Produce", case-insensitive) or number; -1 unknown. */
int kafka_api_key_parse(const char *s);
/* A Kafka error code from its name ("NOT_LEADER_FOR_PARTITION", also with RD_KAFKA_RESP_ERR_
 * before it, case-insensitive) or number; -1 when unknown (*out untouched). */
int kafka_err_parse(const char *s, rd_kafka_resp_err_t *out);

#endif
