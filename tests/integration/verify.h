/* verify: what the replay and crash tests compare, read straight from the systems rather than
 * through the service's own tools:
 *   - the commands on an output topic, read with librdkafka from the low to the high watermark of
 *     every partition (so "everything" has an exact end, no idle timeout), with a check that the
 *     dev broker's 5 MiB-per-partition cap dropped nothing;
 *   - the state under a Redis prefix, every key the store writes (internal/store/README.md):
 *     u:{id} HASH status + blob byte for byte, w:{id} SET members, company HASH;
 *   - the committed offsets of a consumer group.
 * Linked by the tests that name it in tests/CMakeLists.txt (PV_TEST_SRCS_<name>); needs
 * jansson, librdkafka (pv_kafka) and hiredis. Failures go through Criterion's asserts. */
#ifndef PROVISIONER_TEST_VERIFY_H
#define PROVISIONER_TEST_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* ---- Kafka */
/* The partitions of topic (fails the test when it does not exist); lo/hi (may be NULL) get each
 * partition's watermarks, up to max partitions. Returns the partition count. */
/* One raw message on partition 0 of topic, as a producer that is not ours would write it. */
void v_produce_raw(const char *brokers, const char *topic, const char *key, const void *value,
                   size_t len);
int v_watermarks(const char *brokers, const char *topic, int64_t *lo, int64_t *hi, int max);
/* Sum of the high watermarks of topic's partitions: every message ever written to it. */
int64_t v_topic_size(const char *brokers, const char *topic);
/* Every message value of topic, partition by partition, parsed as JSON (an array, each object
 * with "_partition" and "_offset" added). Fails the test when a value is not JSON or when a
 * partition's low watermark is not 0 (the mock dropped old data: the test data is too big). */
json_t *v_read_topic(const char *brokers, const char *topic);
/* The committed offset of group on topic/partition; -1 when it has none. */
int64_t v_committed(const char *brokers, const char *group, const char *topic, int32_t partition);
/* A reader of one group's committed offsets kept open (cheap to ask often; it never joins the
 * group). v_offsets_get: the offset, -1 when the group has none, -2 when the broker did not
 * answer within timeout_ms (a broker down, say). */
typedef struct v_offsets v_offsets;
v_offsets *v_offsets_open(const char *brokers, const char *group);
int64_t v_offsets_get(v_offsets *o, const char *topic, int32_t partition, int timeout_ms);
void v_offsets_close(v_offsets *o);
/* Waits until group's committed offsets reach the high watermark on every partition of topic;
 * false on timeout. */
bool v_wait_committed_to_end(const char *brokers, const char *group, const char *topic,
                             double timeout_s);

/* ---- commands */
/* A copy of cmd without the fields that tell where it came from and when it was read ("source",
 * "_partition", "_offset"); "why" stays. */
json_t *v_payload(json_t *cmd);
/* command_id -> payload (v_payload) over cmds. Every occurrence of an id must have the same
 * payload (duplicates are allowed, at least once; different content under one id is not). */
json_t *v_by_id(json_t *cmds, const char *what);
/* The same ids, and each id's payload equal ("why" included, "source" ignored). got may hold
 * duplicates; want is the reference. */
void v_same_commands(json_t *got, json_t *want, const char *what);
/* JSON lines (a file from consume-commands or a dry run) as an array; "source" kept. */
json_t *v_load_lines(const char *path);
/* cmds without each command's "source" (where its event came from, which differs between run
 * and simulate by design); cmds itself is returned. */
json_t *v_drop_source(json_t *cmds);

/* ---- Redis state */
/* The state under prefix as a JSON object keyed by the key without the prefix:
 * "u:ID" -> {"status": s, "blob": "hex:..."} (the blob byte for byte, the status its byte 3 says),
 * "w:ID" -> sorted array of members, "company" -> object of its fields. Other keys (bookkeeping
 * such as an exactly-once pending batch, named after its consumer group) are not state and left
 * out. */
json_t *v_redis_state(int port, const char *prefix);
/* Number of keys under prefix (all of them), and DBSIZE. */
size_t v_redis_count(int port, const char *prefix);
long long v_redis_dbsize(int port);
/* Equal states, or the test fails naming the first key that differs and how. */
void v_same_state(json_t *got, json_t *want, const char *what);

/* ---- processes */
/* examples/gen_events.py USERS EVENTS SEED ORG (flat or deep) into the temp dir; its path. */
const char *v_gen_events(int users, int events, int seed, const char *org);
/* `provisioner simulate --guards` on the events, as run decides them: its commands as an array
 * ("source" kept). */
json_t *v_simulate(const char *settings, const char *events);
/* A redis-server of the test's own with an append-only file fsynced on every write
 * (appendfsync always), so that a SIGKILL loses nothing acknowledged and a restart on the same
 * port and dir reads everything back. port 0: a free one. */
typedef struct v_redis {
    int port;
    char url[64];
    char dir[4096];
    h_proc *proc;
} v_redis;
void v_redis_aof_start(v_redis *r);
void v_redis_aof_kill(v_redis *r); /* SIGKILL and reap */

/* ---- small things */
double v_now(void);
void v_sleep(double s);
/* xorshift64*: a seeded generator, so that a failing run can be repeated with its seed. */
typedef struct v_rng {
    uint64_t s;
} v_rng;
void v_rng_seed(v_rng *r, uint64_t seed);
/* uniform in [lo, hi] */
double v_rng_range(v_rng *r, double lo, double hi);
/* The seed: $PV_CHAOS_SEED when set, else dflt (printed either way, with what it is for). */
uint64_t v_seed(uint64_t dflt, const char *what);

#endif
