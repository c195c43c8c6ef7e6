/* kbench: the Kafka side of `make bench` (tests/bench/run.sh), librdkafka only, no project code.
 *
 *   kbench pipe       -b B --from T --to T2     consume every partition of T from the beginning to
 *                                               the high watermarks seen at start and produce each
 *                                               message's key and value, byte for byte, to T2 (the
 *                                               C twin of the kcat pipe baseline); JSON on stdout
 *   kbench digest     -b B -t T                 count, bytes and an order-independent hash of
 *                                               every (key, value) in T (checks that a pipe
 *                                               copied every byte)
 *   kbench watermarks -b B -t T [--last-ts]     sum of the low and high watermarks; with
 *                                               --last-ts, the newest timestamp among the last
 *                                               message of each partition
 *   kbench committed  -b B -g G -t T            messages of T the group G has not committed yet
 *   kbench dump       -b B -t T -o FILE         every message of T, partitions interleaved round
 *                                               robin (each key's order kept), as length-prefixed
 *                                               records: u32 key length, key, u32 value length,
 *                                               value (native endianness)
 *   kbench paced      -b B -t T -i FILE -r R -s S [-w W] -o REC
 *                                               produce FILE's records at R messages/s for W + S s
 *                                               (or until FILE ends), each with the Kafka timestamp
 *                                               set to its send time; REC gets "partition offset
 *                                               timestamp_ms phase" per delivered message, phase 0
 *                                               for the first W s (warm-up), 1 after
 *   kbench collect    -b B -t T -o FILE --done-file F
 *                                               read T from the beginning, write "source.partition
 *                                               source.offset timestamp_ms type" per message
 *                                               (from the headers the service sets); once F exists,
 *                                               read up to the high watermarks then and stop
 * Every command takes -X name=value (librdkafka property). Exit 0, 1 on a Kafka error, 2 on usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROPS 32

static const char *brokers, *topic, *topic_to, *group, *in_file, *out_file, *done_file;
static double rate, seconds, warmup;
static bool last_ts;
static const char *props[MAX_PROPS];
static int n_props;
static volatile sig_atomic_t stop_flag;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void set(rd_kafka_conf_t *c, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(c, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("%s=%s: %s", name, value, err);
}

/* A configuration with the bootstrap servers, the given defaults, then the -X properties (which
 * win). */
static rd_kafka_conf_t *conf_new(const char *const *defaults)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set(c, "bootstrap.servers", brokers);
    set(c, "log_level", "4");
    for (; defaults && *defaults; defaults += 2)
        set(c, defaults[0], defaults[1]);
    for (int i = 0; i < n_props; i++) {
        char name[256];
        const char *eq = strchr(props[i], '=');
        if (!eq || (size_t)(eq - props[i]) >= sizeof name)
            die("-X %s: name=value expected", props[i]);
        memcpy(name, props[i], (size_t)(eq - props[i]));
        name[eq - props[i]] = '\0';
        /* consumer-only or producer-only properties given to the other kind are skipped */
        char err[512];
        rd_kafka_conf_set(c, name, eq + 1, err, sizeof err);
    }
    return c;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *c)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk) die("%s", err);
    return rk;
}

/* ---------------------------------------------------------------- partitions and watermarks */

typedef struct part {
    int32_t id;
    int64_t lo, hi; /* watermarks */
    int64_t next;   /* next offset to read */
} part;

static part *partitions_of(rd_kafka_t *rk, const char *t, int *n_out)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20; attempt++) {
        e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
            break;
        if (!e) {
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        usleep(200 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    if (!md) die("metadata of %s: %s", t, rd_kafka_err2str(e));
    int n = md->topics[0].partition_cnt;
    part *ps = xmalloc((size_t)n * sizeof *ps);
    for (int i = 0; i < n; i++) {
        ps[i].id = md->topics[0].partitions[i].id;
        rd_kafka_resp_err_t we =
            rd_kafka_query_watermark_offsets(rk, t, ps[i].id, &ps[i].lo, &ps[i].hi, 10000);
        if (we) die("watermarks of %s [%d]: %s", t, ps[i].id, rd_kafka_err2str(we));
        ps[i].next = ps[i].lo;
    }
    rd_kafka_metadata_destroy(md);
    *n_out = n;
    return ps;
}

static part *find_part(part *ps, int n, int32_t id)
{
    if (id >= 0 && id < n && ps[id].id == id) return &ps[id];
    for (int i = 0; i < n; i++)
        if (ps[i].id == id) return &ps[i];
    return NULL;
}

static bool all_read(const part *ps, int n)
{
    for (int i = 0; i < n; i++)
        if (ps[i].next < ps[i].hi) return false;
    return true;
}

static rd_kafka_t *reader_new(void)
{
    /* librdkafka wants a group.id even to assign by hand: one of our own, never joined (no
     * subscribe) and never committed to */
    char own[64];
    snprintf(own, sizeof own, "kbench-%ld", (long)getpid());
    const char *const d[] = {"group.id",
                             own,
                             "enable.auto.commit",
                             "false",
                             "enable.partition.eof",
                             "false",
                             "auto.offset.reset",
                             "earliest",
                             NULL};
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf_new(d));
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Assigns every partition of ps at its `next` offset. */
static void assign_all(rd_kafka_t *rk, const char *t, const part *ps, int n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, t, ps[i].id)->offset = ps[i].next;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) die("assign %s: %s", t, rd_kafka_err2str(e));
}

typedef void (*on_msg_fn)(rd_kafka_message_t *m, void *ctx);

/* Reads every partition up to its `hi` (set before the call); fn owns each message. */
static uint64_t read_to_end(rd_kafka_t *rk, const char *t, part *ps, int n, on_msg_fn fn, void *ctx,
                            double timeout_s)
{
    assign_all(rk, t, ps, n);
    uint64_t got = 0;
    double deadline = mono() + timeout_s, last = mono();
    while (!all_read(ps, n) && !stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (mono() > deadline && mono() - last > 10) die("reading %s: timed out", t);
            continue;
        }
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                die("reading %s: %s (messages removed by the dev broker's size cap?)", t,
                    rd_kafka_message_errstr(m));
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "kbench: %s: %s\n", t, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last = mono();
        part *p = find_part(ps, n, m->partition);
        if (!p || m->offset >= p->hi) {
            rd_kafka_message_destroy(m);
            continue;
        }
        p->next = m->offset + 1;
        got++;
        fn(m, ctx);
    }
    return got;
}

/* ---------------------------------------------------------------- pipe */

typedef struct pipe_ctx {
    rd_kafka_t *producer;
    uint64_t bytes;
    uint64_t delivered, failed;
    char err[256];
} pipe_ctx;

static void pipe_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    pipe_ctx *c = opaque;
    if (m->err) {
        if (!c->failed++) snprintf(c->err, sizeof c->err, "%s", rd_kafka_err2str(m->err));
    } else {
        c->delivered++;
    }
}

static void pipe_msg(rd_kafka_message_t *m, void *ctx)
{
    pipe_ctx *c = ctx;
    c->bytes += m->len + m->key_len;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            c->producer, RD_KAFKA_V_TOPIC(topic_to), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(c->producer, 10);
            continue;
        }
        if (e) die("produce to %s: %s", topic_to, rd_kafka_err2str(e));
        break;
    }
    rd_kafka_poll(c->producer, 0);
    rd_kafka_message_destroy(m);
}

static int cmd_pipe(void)
{
    if (!topic || !topic_to) die("pipe: --from and --to are required");
    double t0 = mono();
    pipe_ctx c = {0};
    rd_kafka_conf_t *pc = conf_new(NULL);
    rd_kafka_conf_set_dr_msg_cb(pc, pipe_dr);
    rd_kafka_conf_set_opaque(pc, &c);
    c.producer = client_new(RD_KAFKA_PRODUCER, pc);
    int n;
    free(partitions_of(c.producer, topic_to, &n)); /* the producer learns T2, as kcat -P does */
    rd_kafka_t *rk = reader_new();
    part *ps = partitions_of(rk, topic, &n);
    uint64_t got = read_to_end(rk, topic, ps, n, pipe_msg, &c, 600);
    double t_read = mono();
    while (rd_kafka_outq_len(c.producer) > 0 && !stop_flag)
        rd_kafka_flush(c.producer, 1000);
    double t1 = mono();
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rd_kafka_destroy(c.producer);
    printf("{\"events\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"delivered\":%" PRIu64
           ",\"failed\":%" PRIu64
           ",\"seconds\":%.3f,\"read_seconds\":%.3f,\"events_per_s\":%.0f}\n",
           got, c.bytes, c.delivered, c.failed, t1 - t0, t_read - t0,
           (t1 - t0) > 0 ? (double)got / (t1 - t0) : 0.0);
    free(ps);
    if (c.failed) die("pipe: %" PRIu64 " messages not delivered: %s", c.failed, c.err);
    return 0;
}

/* ---------------------------------------------------------------- digest */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

typedef struct digest_ctx {
    uint64_t n, bytes, sum, xor_;
} digest_ctx;

static void digest_msg(rd_kafka_message_t *m, void *ctx)
{
    digest_ctx *d = ctx;
    uint32_t kl = (uint32_t)m->key_len;
    uint64_t h = fnv(14695981039346656037ULL, &kl, sizeof kl);
    h = fnv(h, m->key, m->key_len);
    h = fnv(h, m->payload, m->len);
    d->n++;
    d->bytes += m->len + m->key_len;
    d->sum += h;
    d->xor_ ^= h * 0x9E3779B97F4A7C15ULL;
    rd_kafka_message_destroy(m);
}

static int cmd_digest(void)
{
    if (!topic) die("digest: -t is required");
    rd_kafka_t *rk = reader_new();
    int n;
    part *ps = partitions_of(rk, topic, &n);
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < n; i++)
        lo += ps[i].lo, hi += ps[i].hi;
    digest_ctx d = {0};
    read_to_end(rk, topic, ps, n, digest_msg, &d, 600);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("{\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"low\":%" PRId64 ",\"high\":%" PRId64
           ",\"hash\":\"%016" PRIx64 "%016" PRIx64 "\"}\n",
           d.n, d.bytes, lo, hi, d.sum, d.xor_);
    free(ps);
    return 0;
}

/* ---------------------------------------------------------------- watermarks */

typedef struct last_ctx {
    int64_t max_ts;
} last_ctx;

static void last_msg(rd_kafka_message_t *m, void *ctx)
{
    last_ctx *l = ctx;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    if (ts > l->max_ts) l->max_ts = ts;
    rd_kafka_message_destroy(m);
}

static int cmd_watermarks(void)
{
    if (!topic) die("watermarks: -t is required");
    rd_kafka_t *rk = reader_new();
    int n;
    part *ps = partitions_of(rk, topic, &n);
    int64_t lo = 0, hi = 0, max_part = 0;
    for (int i = 0; i < n; i++) {
        if (getenv("KBENCH_VERBOSE"))
            fprintf(stderr, "%s [%d]: %" PRId64 "..%" PRId64 "\n", topic, ps[i].id, ps[i].lo,
                    ps[i].hi);
        lo += ps[i].lo, hi += ps[i].hi;
        if (ps[i].hi - ps[i].lo > max_part) max_part = ps[i].hi - ps[i].lo;
    }
    last_ctx l = {-1};
    if (last_ts) {
        for (int i = 0; i < n; i++)
            ps[i].next = ps[i].hi > ps[i].lo ? ps[i].hi - 1 : ps[i].hi;
        read_to_end(rk, topic, ps, n, last_msg, &l, 60);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("{\"partitions\":%d,\"low\":%" PRId64 ",\"high\":%" PRId64 ",\"max_partition\":%" PRId64
           ",\"last_ts\":%" PRId64 "}\n",
           n, lo, hi, max_part, l.max_ts);
    free(ps);
    return 0;
}

/* ---------------------------------------------------------------- committed */

static int cmd_committed(void)
{
    if (!topic || !group) die("committed: -t and -g are required");
    const char *const d[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf_new(d));
    int n;
    part *ps = partitions_of(rk, topic, &n);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, ps[i].id);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    if (e) die("committed offsets of %s: %s", group, rd_kafka_err2str(e));
    int64_t lag = 0, committed = 0;
    for (int i = 0; i < l->cnt; i++) {
        part *p = find_part(ps, n, l->elems[i].partition);
        int64_t off = l->elems[i].offset;
        if (off < 0) off = p->lo;
        if (p->hi > off) lag += p->hi - off;
        committed += off - p->lo;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    printf("{\"lag\":%" PRId64 ",\"committed\":%" PRId64 "}\n", lag, committed);
    free(ps);
    return 0;
}

/* ---------------------------------------------------------------- dump */

typedef struct rec {
    char *key;
    uint32_t klen;
    char *val;
    uint32_t vlen;
} rec;

typedef struct dump_ctx {
    part *ps;
    int n;
    rec **lists; /* per partition index */
    size_t *cnt, *cap;
} dump_ctx;

static void dump_msg(rd_kafka_message_t *m, void *ctx)
{
    dump_ctx *d = ctx;
    int i = (int)(find_part(d->ps, d->n, m->partition) - d->ps);
    if (d->cnt[i] == d->cap[i]) {
        d->cap[i] = d->cap[i] ? d->cap[i] * 2 : 1024;
        d->lists[i] = xrealloc(d->lists[i], d->cap[i] * sizeof(rec));
    }
    rec *r = &d->lists[i][d->cnt[i]++];
    r->klen = (uint32_t)m->key_len;
    r->key = xmalloc(m->key_len);
    memcpy(r->key, m->key, m->key_len);
    r->vlen = (uint32_t)m->len;
    r->val = xmalloc(m->len);
    memcpy(r->val, m->payload, m->len);
    rd_kafka_message_destroy(m);
}

static int cmd_dump(void)
{
    if (!topic || !out_file) die("dump: -t and -o are required");
    rd_kafka_t *rk = reader_new();
    dump_ctx d = {0};
    d.ps = partitions_of(rk, topic, &d.n);
    d.lists = calloc((size_t)d.n, sizeof *d.lists);
    d.cnt = calloc((size_t)d.n, sizeof *d.cnt);
    d.cap = calloc((size_t)d.n, sizeof *d.cap);
    uint64_t got = read_to_end(rk, topic, d.ps, d.n, dump_msg, &d, 600);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    FILE *f = fopen(out_file, "wb");
    if (!f) die("%s: %s", out_file, strerror(errno));
    uint64_t written = 0, bytes = 0;
    for (size_t k = 0;; k++) {
        bool any = false;
        for (int i = 0; i < d.n; i++) {
            if (k >= d.cnt[i]) continue;
            any = true;
            rec *r = &d.lists[i][k];
            fwrite(&r->klen, 4, 1, f);
            fwrite(r->key, 1, r->klen, f);
            fwrite(&r->vlen, 4, 1, f);
            fwrite(r->val, 1, r->vlen, f);
            written++;
            bytes += r->vlen;
        }
        if (!any) break;
    }
    if (fclose(f) != 0) die("%s: %s", out_file, strerror(errno));
    printf("{\"messages\":%" PRIu64 ",\"value_bytes\":%" PRIu64 "}\n", written, bytes);
    (void)got;
    return 0;
}

/* ---------------------------------------------------------------- paced */

typedef struct sent {
    int32_t partition;
    int64_t offset;
    int64_t ts;
    int phase;
} sent;

typedef struct paced_ctx {
    sent *s;
    uint64_t delivered, failed;
    char err[256];
} paced_ctx;

static void paced_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    paced_ctx *c = opaque;
    size_t i = (size_t)(uintptr_t)m->_private;
    if (m->err) {
        if (!c->failed++) snprintf(c->err, sizeof c->err, "%s", rd_kafka_err2str(m->err));
        c->s[i].partition = -1;
        return;
    }
    c->delivered++;
    c->s[i].partition = m->partition;
    c->s[i].offset = m->offset; /* ts: set when sent (the report does not carry CreateTime) */
}

static int cmd_paced(void)
{
    if (!topic || !in_file || !out_file || rate <= 0 || seconds <= 0)
        die("paced: -t, -i, -o, -r and -s are required");
    FILE *f = fopen(in_file, "rb");
    if (!f) die("%s: %s", in_file, strerror(errno));
    size_t want = (size_t)(rate * (warmup + seconds) + 0.5), n = 0;
    size_t n_warm = (size_t)(rate * warmup + 0.5);
    rec *rs = xmalloc(want * sizeof *rs);
    while (n < want) {
        uint32_t kl, vl;
        if (fread(&kl, 4, 1, f) != 1) break;
        rs[n].klen = kl;
        rs[n].key = xmalloc(kl);
        if (fread(rs[n].key, 1, kl, f) != kl || fread(&vl, 4, 1, f) != 1)
            die("%s: truncated", in_file);
        rs[n].vlen = vl;
        rs[n].val = xmalloc(vl);
        if (fread(rs[n].val, 1, vl, f) != vl) die("%s: truncated", in_file);
        n++;
    }
    fclose(f);
    if (n < want)
        fprintf(stderr, "kbench: paced: %s holds %zu messages, fewer than %zu: sending them all\n",
                in_file, n, want);
    paced_ctx c = {0};
    c.s = calloc(n ? n : 1, sizeof *c.s);
    /* an upstream producer that sends at once: linger 1 ms; -X overrides */
    static const char *const d[] = {"linger.ms", "1", NULL};
    rd_kafka_conf_t *pc = conf_new(d);
    rd_kafka_conf_set_dr_msg_cb(pc, paced_dr);
    rd_kafka_conf_set_opaque(pc, &c);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, pc);
    /* connect and learn the partitions before the clock starts */
    int np;
    free(partitions_of(rk, topic, &np));

    double t0 = mono(), max_behind = 0;
    size_t i = 0;
    while (i < n && !stop_flag) {
        double el = mono() - t0;
        size_t due = (size_t)(el * rate);
        if (due > n) due = n;
        if (due > i && (double)(due - i) / rate > max_behind) max_behind = (double)(due - i) / rate;
        while (i < due) {
            c.s[i].ts = wall_ms();
            c.s[i].phase = i >= n_warm;
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(rs[i].key, rs[i].klen),
                RD_KAFKA_V_VALUE(rs[i].val, rs[i].vlen), RD_KAFKA_V_TIMESTAMP(c.s[i].ts),
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 1);
                continue;
            }
            if (e) die("produce to %s: %s", topic, rd_kafka_err2str(e));
            i++;
        }
        rd_kafka_poll(rk, 0);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double t_sent = mono() - t0;
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    rd_kafka_destroy(rk);
    FILE *o = fopen(out_file, "w");
    if (!o) die("%s: %s", out_file, strerror(errno));
    for (size_t k = 0; k < i; k++)
        if (c.s[k].partition >= 0)
            fprintf(o, "%d %" PRId64 " %" PRId64 " %d\n", c.s[k].partition, c.s[k].offset,
                    c.s[k].ts, c.s[k].phase);
    if (fclose(o) != 0) die("%s: %s", out_file, strerror(errno));
    printf("{\"sent\":%zu,\"delivered\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"seconds\":%.3f,\"events_per_s\":%.0f,\"max_behind_s\":%.4f}\n",
           i, c.delivered, c.failed, t_sent, t_sent > 0 ? (double)i / t_sent : 0.0, max_behind);
    if (c.failed) die("paced: %" PRIu64 " messages not delivered: %s", c.failed, c.err);
    return 0;
}

/* ---------------------------------------------------------------- collect */

static int header(const rd_kafka_headers_t *h, const char *name, char *out, size_t cap)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(out, cap, "-");
        return -1;
    }
    if (len >= cap) len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

static int cmd_collect(void)
{
    if (!topic || !out_file || !done_file) die("collect: -t, -o and --done-file are required");
    FILE *o = fopen(out_file, "w");
    if (!o) die("%s: %s", out_file, strerror(errno));
    rd_kafka_t *rk = reader_new();
    int n;
    part *ps = partitions_of(rk, topic, &n);
    for (int i = 0; i < n; i++)
        ps[i].hi = INT64_MAX; /* until done */
    assign_all(rk, topic, ps, n);
    bool done = false;
    uint64_t got = 0;
    double done_at = 0;
    for (;;) {
        if (!done && access(done_file, F_OK) == 0) {
            /* the high watermarks now are the end: everything before them is read, then stop */
            for (int i = 0; i < n; i++) {
                int64_t lo, hi;
                rd_kafka_resp_err_t e =
                    rd_kafka_query_watermark_offsets(rk, topic, ps[i].id, &lo, &hi, 10000);
                if (e) die("watermarks of %s: %s", topic, rd_kafka_err2str(e));
                ps[i].hi = hi;
            }
            done = true;
            done_at = mono();
        }
        if (done && all_read(ps, n)) break;
        if (done && mono() - done_at > 120) die("collect: output not read to its end in 120 s");
        if (stop_flag) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                die("collect: %s (the dev broker's size cap removed messages?)",
                    rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        part *p = find_part(ps, n, m->partition);
        if (p) p->next = m->offset + 1;
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m, &h);
        char sp[32], so[32], ty[64];
        header(h, "source.partition", sp, sizeof sp);
        header(h, "source.offset", so, sizeof so);
        header(h, "type", ty, sizeof ty);
        fprintf(o, "%s %s %" PRId64 " %s\n", sp, so, rd_kafka_message_timestamp(m, NULL), ty);
        got++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (fclose(o) != 0) die("%s: %s", out_file, strerror(errno));
    printf("{\"messages\":%" PRIu64 "}\n", got);
    free(ps);
    return stop_flag && !done ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fputs("usage: kbench pipe|digest|watermarks|committed|dump|paced|collect -b BROKERS "
          "[-t TOPIC] [--from T --to T2] [-g GROUP] [-i FILE] [-o FILE] [-r RATE] [-s SECONDS] "
          "[-w WARMUP] [--done-file F] [--last-ts] [-X name=value]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("-b"))
            brokers = v;
        else if (ARG("-t") || ARG("--from"))
            topic = v;
        else if (ARG("--to"))
            topic_to = v;
        else if (ARG("-g"))
            group = v;
        else if (ARG("-i"))
            in_file = v;
        else if (ARG("-o"))
            out_file = v;
        else if (ARG("-r"))
            rate = atof(v);
        else if (ARG("-s"))
            seconds = atof(v);
        else if (ARG("-w"))
            warmup = atof(v);
        else if (ARG("--done-file"))
            done_file = v;
        else if (ARG("-X")) {
            if (n_props == MAX_PROPS) die("too many -X");
            props[n_props++] = v;
        } else if (strcmp(a, "--last-ts") == 0)
            last_ts = true;
        else
            usage();
#undef ARG
    }
    if (!brokers) usage();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (strcmp(cmd, "pipe") == 0) return cmd_pipe();
    if (strcmp(cmd, "digest") == 0) return cmd_digest();
    if (strcmp(cmd, "watermarks") == 0) return cmd_watermarks();
    if (strcmp(cmd, "committed") == 0) return cmd_committed();
    if (strcmp(cmd, "dump") == 0) return cmd_dump();
    if (strcmp(cmd, "paced") == 0) return cmd_paced();
    if (strcmp(cmd, "collect") == 0) return cmd_collect();
    usage();
    return 2;
}
