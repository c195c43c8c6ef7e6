/* verify: see verify.h. */
#include "verify.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kafka/kafka.h"

double v_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void v_sleep(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void v_rng_seed(v_rng *r, uint64_t seed) { r->s = seed ? seed : 0x9E3779B97F4A7C15ull; }

double v_rng_range(v_rng *r, double lo, double hi)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint64_t x = r->s * 2685821657736338717ull;
    return lo + (hi - lo) * ((double)(x >> 11) / (double)(1ull << 53));
}

uint64_t v_seed(uint64_t dflt, const char *what)
{
    const char *env = getenv("PV_CHAOS_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : dflt;
    fprintf(stderr, "[%s] seed %llu (set PV_CHAOS_SEED to repeat another)\n", what,
            (unsigned long long)seed);
    return seed;
}

/* ---------------------------------------------------------------- Kafka */

static rd_kafka_t *v_consumer(const char *brokers, const char *group)
{
    perr err;
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, NULL, 0, &err);
    cr_assert_not_null(conf, "%s", err.msg);
    cr_assert_eq(kafka_conf_set(conf, "group.id", group ? group : "pv-verify-reader", &err), 0);
    cr_assert_eq(kafka_conf_set(conf, "enable.auto.commit", "false", &err), 0);
    cr_assert_eq(kafka_conf_set(conf, "enable.partition.eof", "false", &err), 0);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    cr_assert_not_null(rk, "consumer: %s", errstr);
    return rk;
}

static int v_partitions(rd_kafka_t *rk, const char *topic, int32_t *ids, int max)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20; attempt++) { /* a broker just back up may need a moment */
        e = rd_kafka_metadata(rk, 0, t, &md, 5000);
        if (!e) break;
        v_sleep(0.25);
    }
    rd_kafka_topic_destroy(t);
    cr_assert(!e && md && md->topic_cnt == 1, "metadata of %s: %s", topic, rd_kafka_err2str(e));
    cr_assert(!md->topics[0].err, "topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
    int n = md->topics[0].partition_cnt;
    cr_assert_leq(n, max, "topic %s has %d partitions, more than %d", topic, n, max);
    for (int i = 0; i < n; i++)
        ids[i] = md->topics[0].partitions[i].id;
    rd_kafka_metadata_destroy(md);
    return n;
}

static void v_query_wm(rd_kafka_t *rk, const char *topic, int32_t part, int64_t *lo, int64_t *hi)
{
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20; attempt++) {
        e = rd_kafka_query_watermark_offsets(rk, topic, part, lo, hi, 5000);
        if (!e) return;
        v_sleep(0.25);
    }
    cr_assert_fail("watermarks of %s [%d]: %s", topic, part, rd_kafka_err2str(e));
}

int v_watermarks(const char *brokers, const char *topic, int64_t *lo, int64_t *hi, int max)
{
    rd_kafka_t *rk = v_consumer(brokers, NULL);
    int32_t ids[1024];
    int n = v_partitions(rk, topic, ids, max < 1024 ? max : 1024);
    for (int i = 0; i < n; i++) {
        int64_t l = 0, h = 0;
        v_query_wm(rk, topic, ids[i], &l, &h);
        /* metadata lists partitions in id order on the mock; index by id to be sure */
        if (ids[i] < max) {
            if (lo) lo[ids[i]] = l;
            if (hi) hi[ids[i]] = h;
        }
    }
    rd_kafka_destroy(rk);
    return n;
}

int64_t v_topic_size(const char *brokers, const char *topic)
{
    int64_t hi[1024];
    int n = v_watermarks(brokers, topic, NULL, hi, 1024);
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += hi[i];
    return sum;
}

json_t *v_read_topic(const char *brokers, const char *topic)
{
    rd_kafka_t *rk = v_consumer(brokers, NULL);
    int32_t ids[1024];
    int n = v_partitions(rk, topic, ids, 1024);
    int64_t lo[1024], hi[1024], next[1024];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    int open_parts = 0;
    for (int i = 0; i < n; i++) {
        v_query_wm(rk, topic, ids[i], &lo[i], &hi[i]);
        cr_assert_eq(lo[i], 0,
                     "%s [%d] starts at offset %lld: the dev broker dropped old messages (over "
                     "its ~5 MiB per partition): spread the data over more partitions",
                     topic, ids[i], (long long)lo[i]);
        next[i] = lo[i];
        if (hi[i] > lo[i]) {
            rd_kafka_topic_partition_list_add(list, topic, ids[i])->offset = lo[i];
            open_parts++;
        }
    }
    json_t *arr = json_array();
    if (open_parts) cr_assert_eq(rd_kafka_assign(rk, list), 0);
    double until = v_now() + 180;
    while (open_parts > 0) {
        cr_assert(v_now() < until, "reading %s: still %d partitions short after 180 s", topic,
                  open_parts);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        int k = 0;
        while (k < n && ids[k] != m->partition)
            k++;
        cr_assert(k < n);
        if (m->offset < next[k]) { /* re-fetched after a retry: already have it */
            rd_kafka_message_destroy(m);
            continue;
        }
        json_error_t je;
        json_t *j = json_loadb(m->payload, m->len, 0, &je);
        cr_assert_not_null(j, "%s [%d] @%lld: not JSON: %.*s", topic, m->partition,
                           (long long)m->offset, (int)(m->len > 200 ? 200 : m->len),
                           (const char *)m->payload);
        json_object_set_new(j, "_partition", json_integer(m->partition));
        json_object_set_new(j, "_offset", json_integer(m->offset));
        json_array_append_new(arr, j);
        next[k] = m->offset + 1;
        if (next[k] >= hi[k]) open_parts--;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return arr;
}

int64_t v_committed(const char *brokers, const char *group, const char *topic, int32_t partition)
{
    rd_kafka_t *rk = v_consumer(brokers, group);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    int64_t off = -1;
    if (!e && !l->elems[0].err && l->elems[0].offset >= 0) off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

struct v_offsets {
    rd_kafka_t *rk;
};

v_offsets *v_offsets_open(const char *brokers, const char *group)
{
    v_offsets *o = calloc(1, sizeof *o);
    cr_assert_not_null(o);
    o->rk = v_consumer(brokers, group);
    return o;
}

int64_t v_offsets_get(v_offsets *o, const char *topic, int32_t partition, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(o->rk, l, timeout_ms);
    int64_t off = -2;
    if (!e && !l->elems[0].err) off = l->elems[0].offset >= 0 ? l->elems[0].offset : -1;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

void v_offsets_close(v_offsets *o)
{
    if (!o) return;
    rd_kafka_destroy(o->rk);
    free(o);
}

bool v_wait_committed_to_end(const char *brokers, const char *group, const char *topic,
                             double timeout_s)
{
    double until = v_now() + timeout_s;
    int64_t hi[1024];
    int n = v_watermarks(brokers, topic, NULL, hi, 1024);
    for (;;) {
        bool all = true;
        for (int i = 0; i < n && all; i++)
            if (hi[i] > 0 && v_committed(brokers, group, topic, i) < hi[i]) all = false;
        if (all) return true;
        if (v_now() >= until) return false;
        v_sleep(0.5);
    }
}

/* ---------------------------------------------------------------- commands */

json_t *v_payload(json_t *cmd)
{
    json_t *c = json_deep_copy(cmd);
    json_object_del(c, "source");
    json_object_del(c, "_partition");
    json_object_del(c, "_offset");
    return c;
}

static char *v_dump(json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS); }

json_t *v_by_id(json_t *cmds, const char *what)
{
    json_t *set = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "command_id"));
        cr_assert_not_null(id, "%s: a command without command_id", what);
        json_t *p = v_payload(c);
        json_t *seen = json_object_get(set, id);
        if (seen && !json_equal(seen, p)) {
            char *a = v_dump(seen), *b = v_dump(p);
            cr_assert_fail("%s: command %s twice with different content:\n  first: %s\n  later: %s",
                           what, id, a, b);
        }
        if (!seen) json_object_set(set, id, p);
        json_decref(p);
    }
    return set;
}

void v_same_commands(json_t *got, json_t *want, const char *what)
{
    json_t *g = v_by_id(got, what), *w = v_by_id(want, "the reference");
    const char *id;
    json_t *c;
    size_t missing = 0, differ = 0, extra = 0;
    char first[2048] = "";
    json_object_foreach(w, id, c)
    {
        json_t *gc = json_object_get(g, id);
        if (!gc) {
            if (!missing++ && !first[0])
                snprintf(first, sizeof first, "lost: %s %s of %s", id,
                         json_string_value(json_object_get(c, "type")),
                         json_string_value(json_object_get(c, "sf_user_id")));
            continue;
        }
        if (!json_equal(gc, c)) {
            if (!differ++ && !first[0]) {
                char *a = v_dump(gc), *b = v_dump(c);
                snprintf(first, sizeof first,
                         "%s differs:\n  got:       %.900s\n  reference: %.900s", id, a, b);
                free(a);
                free(b);
            }
        }
    }
    json_object_foreach(g, id, c)
    {
        if (json_object_get(w, id)) continue;
        if (!extra++ && !first[0])
            snprintf(first, sizeof first, "not in the reference: %s %s of %s", id,
                     json_string_value(json_object_get(c, "type")),
                     json_string_value(json_object_get(c, "sf_user_id")));
    }
    cr_assert(!missing && !differ && !extra,
              "%s: %zu distinct commands (%zu messages), reference %zu: %zu lost, %zu with "
              "another payload, %zu not in the reference; first: %s",
              what, json_object_size(g), json_array_size(got), json_object_size(w), missing, differ,
              extra, first);
    json_decref(g);
    json_decref(w);
}

json_t *v_load_lines(const char *path)
{
    json_t *arr = json_array();
    char *text = h_read_file(path);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!*line) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "%s: not JSON: %.300s", path, line);
        json_array_append_new(arr, j);
    }
    free(text);
    return arr;
}

json_t *v_drop_source(json_t *cmds)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c) json_object_del(c, "source");
    return cmds;
}

/* ---------------------------------------------------------------- Redis */

static redisContext *v_redis_connect(int port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "redis on port %d: %s", port, c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *v_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis: %s", c->errstr);
    cr_assert(r->type != REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

/* prefix with the glob's special characters escaped, then '*' */
static void v_match(const char *prefix, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = prefix; *p && o + 3 < n; p++) {
        if (strchr("*?[]\\", *p)) out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '*';
    out[o] = '\0';
}

static json_t *v_value(const char *s, size_t len, bool force_hex)
{
    bool text = !force_hex;
    for (size_t i = 0; i < len && text; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) text = false;
    if (text) return json_stringn(s, len);
    char *hex = malloc(len * 2 + 5);
    memcpy(hex, "hex:", 4);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 4 + 2 * i, 3, "%02x", (unsigned char)s[i]);
    json_t *j = json_string(hex);
    free(hex);
    return j;
}

static int v_cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The keys the store writes for the state (internal/store/README.md): u:{id} (the blob, and the
 * status its byte 3 holds), w:{manager} and company. Other keys (say an exactly-once pending
 * batch, named after its group) are bookkeeping, not state, and are left out; v_redis_count counts
 * every key. */
static void v_state_key(redisContext *c, const char *key, const char *rel, json_t *state)
{
    if (strncmp(rel, "u:", 2) == 0) {
        redisReply *h = v_cmd(c, "GET %s", key);
        cr_assert(h->type == REDIS_REPLY_STRING && h->len > 3, "GET %s", key);
        static const char *const names[] = {"never", "active", "deactivated", "?"};
        json_t *v = json_object();
        json_object_set_new(v, "status",
                            json_string(names[(unsigned char)h->str[3] < 3 ? h->str[3] : 3]));
        json_object_set_new(v, "blob", v_value(h->str, h->len, true));
        freeReplyObject(h);
        json_object_set_new(state, rel, v);
    } else if (strncmp(rel, "w:", 2) == 0) {
        redisReply *s = v_cmd(c, "SMEMBERS %s", key);
        json_t **m = calloc(s->elements + 1, sizeof *m);
        for (size_t k = 0; k < s->elements; k++)
            m[k] = json_stringn(s->element[k]->str, s->element[k]->len);
        qsort(m, s->elements, sizeof *m, v_cmp_json_str);
        json_t *v = json_array();
        for (size_t k = 0; k < s->elements; k++)
            json_array_append_new(v, m[k]);
        free(m);
        freeReplyObject(s);
        json_object_set_new(state, rel, v);
    } else if (strcmp(rel, "company") == 0) {
        redisReply *h = v_cmd(c, "HGETALL %s", key);
        json_t *v = json_object();
        for (size_t k = 0; k + 1 < h->elements; k += 2)
            json_object_set_new(v, h->element[k]->str,
                                v_value(h->element[k + 1]->str, h->element[k + 1]->len, false));
        freeReplyObject(h);
        json_object_set_new(state, rel, v);
    }
}

/* Every key under prefix (SCAN; the prefix's glob characters escaped), into state when given; the
 * number of keys. */
static size_t v_scan(int port, const char *prefix, json_t *state)
{
    redisContext *c = v_redis_connect(port);
    char match[512];
    v_match(prefix, match, sizeof match);
    size_t plen = strlen(prefix), n = 0;
    char cursor[64] = "0";
    do {
        redisReply *r = v_cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++, n++)
            if (state) v_state_key(c, keys->element[i]->str, keys->element[i]->str + plen, state);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return n;
}

json_t *v_redis_state(int port, const char *prefix)
{
    json_t *state = json_object();
    v_scan(port, prefix, state);
    return state;
}

size_t v_redis_count(int port, const char *prefix) { return v_scan(port, prefix, NULL); }

long long v_redis_dbsize(int port)
{
    redisContext *c = v_redis_connect(port);
    redisReply *r = v_cmd(c, "DBSIZE");
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

void v_same_state(json_t *got, json_t *want, const char *what)
{
    const char *k;
    json_t *v;
    size_t users = 0, waits = 0;
    json_object_foreach(want, k, v)
    {
        if (strncmp(k, "u:", 2) == 0) users++;
        if (strncmp(k, "w:", 2) == 0) waits++;
        json_t *g = json_object_get(got, k);
        cr_assert_not_null(g, "%s: key %s is missing (the reference has %zu keys, this %zu)", what,
                           k, json_object_size(want), json_object_size(got));
        if (!json_equal(g, v)) {
            char *a = v_dump(g), *b = v_dump(v);
            cr_assert_fail("%s: key %s differs\n  got:       %.1500s\n  reference: %.1500s", what,
                           k, a, b);
        }
    }
    json_object_foreach(got, k, v)
    {
        if (json_object_get(want, k)) continue;
        char *a = v_dump(v);
        cr_assert_fail("%s: key %s is not in the reference: %.500s", what, k, a);
    }
    fprintf(stderr, "[%s] state equal: %zu keys (%zu users, %zu waiting sets)\n", what,
            json_object_size(want), users, waits);
}

/* ---------------------------------------------------------------- processes */

const char *v_gen_events(int users, int events, int seed, const char *org)
{
    char name[112];
    snprintf(name, sizeof name, "gen-%d-%d-%d-%s.jsonl", users, events, seed, org);
    const char *path = h_path(name);
    char cmd[PATH_MAX * 2 + 128];
    snprintf(cmd, sizeof cmd, "python3 '%s' %d %d %d %s > '%s'",
             h_source_path("examples/gen_events.py"), users, events, seed, org, path);
    cr_assert_eq(system(cmd), 0, "cannot generate events: %s", cmd);
    return path;
}

json_t *v_simulate(const char *settings, const char *events)
{
    const char *out = h_path("simulate.out");
    /* what run decides: its guard included */
    const char *argv[] = {h_pv_binary(), "simulate", "--settings", settings,
                          "--events",    events,     "--guards",   NULL};
    h_proc *p = h_proc_start_to(argv, NULL, out);
    cr_assert_eq(h_proc_wait(p, 120), 0, "simulate failed: %s", h_proc_stderr(p));
    return v_load_lines(out);
}

void v_redis_aof_start(v_redis *r)
{
    if (!r->port) {
        r->port = h_free_port();
        snprintf(r->dir, sizeof r->dir, "%s", h_path("redis-aof"));
        mkdir(r->dir, 0700);
    }
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    const char *argv[] = {"redis-server", "--port",        port,     "--bind",
                          "127.0.0.1",    "--save",        "",       "--appendonly",
                          "yes",          "--appendfsync", "always", "--dir",
                          r->dir,         "--daemonize",   "no",     NULL};
    h_redis probe = {.port = r->port};
    for (int attempt = 0; attempt < 20; attempt++) {
        r->proc = h_proc_start(argv, NULL);
        for (int i = 0; i < 300 && h_proc_alive(r->proc); i++) {
            char *pong = h_redis_cmd(&probe, "PING");
            bool ok = pong && strcmp(pong, "+PONG") == 0; /* not -LOADING */
            free(pong);
            if (ok) return;
            v_sleep(0.03);
        }
        if (h_proc_alive(r->proc)) break;
        v_sleep(0.2); /* the port still held by the old process's socket: try again */
    }
    cr_assert_fail("redis-server with an append-only file did not answer on port %d: %s", r->port,
                   h_proc_stderr(r->proc));
}

void v_redis_aof_kill(v_redis *r)
{
    if (!r->proc) return;
    h_proc_signal(r->proc, SIGKILL);
    h_proc_wait(r->proc, 10);
}

void v_produce_raw(const char *brokers, const char *topic, const char *key, const void *value,
                   size_t len)
{
    perr err;
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, NULL, 0, &err);
    char errstr[256];
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    cr_assert_not_null(prod, "%s", errstr);
    cr_assert_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                   RD_KAFKA_V_KEY(key, strlen(key)),
                                   RD_KAFKA_V_VALUE((void *)value, len),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 0);
    cr_assert_eq(rd_kafka_flush(prod, 10000), 0);
    rd_kafka_destroy(prod);
}
