/* The Redis state store (issue 6) against a real redis-server: state round trips, the same engine
 * output as the in-memory store on every scenario (R1.4, R9.3 replay), one round trip per
 * prefetch, misses, waiting links, the two-instance hierarchy race (R6.3), corrupt values, Redis
 * down and back, AUTH and database selection.
 *
 * The servers are started by small static helpers here (t_*), each on a free loopback port in a
 * temp dir of its own, and killed by PID in the fixture's teardown, also when a test fails. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/engine.h"
#include "event/event.h"
#include "store/store.h"

/* ---------------------------------------------------------------- redis-server helpers */

typedef struct t_redis {
    pid_t pid;
    int port;
    char dir[256];
    char url[128];
    const char *const *extra;
} t_redis;

#define T_MAX_SERVERS 4
static t_redis t_servers[T_MAX_SERVERS];
static int t_n_servers;

static void t_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int t_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Any answer, even NOAUTH, means the server is up. */
static bool t_answers(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

static bool t_reap(t_redis *r, int wait_ms)
{
    for (int waited = 0;; waited += 10) {
        pid_t p = waitpid(r->pid, NULL, WNOHANG);
        if (p == r->pid || (p < 0 && errno == ECHILD)) return true;
        if (waited >= wait_ms) return false;
        t_sleep_ms(10);
    }
}

/* Starts redis-server on r->port; false when it exited (port taken) or never answered. */
static bool t_redis_spawn(t_redis *r)
{
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    const char *argv[32] = {
        "redis-server", "--port", port,    "--bind", "127.0.0.1",   "--save", "",
        "--appendonly", "no",     "--dir", r->dir,   "--daemonize", "no"};
    size_t n = 13;
    for (size_t i = 0; r->extra && r->extra[i] && n < 31; i++)
        argv[n++] = r->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        FILE *f = freopen(log, "a", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            r->pid = 0;
            return false;
        }
        if (t_answers(r->port)) return true;
        t_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    t_reap(r, 2000);
    r->pid = 0;
    return false;
}

static t_redis *t_redis_start(const char *const *extra)
{
    cr_assert(t_n_servers < T_MAX_SERVERS);
    t_redis *r = &t_servers[t_n_servers++];
    memset(r, 0, sizeof *r);
    r->extra = extra;
    snprintf(r->dir, sizeof r->dir, "/tmp/t_redis_XXXXXX");
    cr_assert(mkdtemp(r->dir), "mkdtemp: %s", strerror(errno));
    for (int attempt = 0; attempt < 5; attempt++) { /* the free port may be taken meanwhile */
        r->port = t_free_port();
        if (t_redis_spawn(r)) break;
        r->port = 0;
    }
    cr_assert(r->port, "redis-server did not start (is it installed? see %s/redis.log)", r->dir);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    return r;
}

static void t_redis_kill(t_redis *r)
{
    if (r->pid <= 0) return;
    kill(r->pid, SIGTERM);
    if (!t_reap(r, 3000)) {
        kill(r->pid, SIGKILL);
        t_reap(r, 3000);
    }
    r->pid = 0;
}

/* Same port, empty data (nothing is persisted). */
static void t_redis_restart(t_redis *r)
{
    t_redis_kill(r);
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) {
        ok = t_redis_spawn(r);
        if (!ok) t_sleep_ms(100);
    }
    cr_assert(ok, "redis-server did not restart on port %d", r->port);
}

static void t_teardown(void)
{
    for (int i = 0; i < t_n_servers; i++) {
        t_redis *r = &t_servers[i];
        t_redis_kill(r);
        char log[300];
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        unlink(log);
        rmdir(r->dir);
    }
    t_n_servers = 0;
}

TestSuite(store_redis, .fini = t_teardown, .timeout = 120);

/* A raw connection, for looking at keys behind the store's back. */
static redisContext *t_raw(const t_redis *r)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    cr_assert(c && !c->err);
    return c;
}

static char *t_cmd_str(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r);
    char *out = NULL;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        out = strndup(r->str, r->len);
    else if (r->type == REDIS_REPLY_INTEGER) {
        out = malloc(32);
        snprintf(out, 32, "%lld", r->integer);
    }
    freeReplyObject(r);
    return out;
}

/* A user's stored status as the scripts read it: the blob's status byte (a string key), or the
 * hash form's status field; "none" when the key does not exist. */
static const char *t_status(redisContext *c, const char *key)
{
    static const char *const names[] = {"never", "active", "deactivated"};
    redisReply *r = redisCommand(c, "TYPE %s", key);
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    bool hash = strcmp(r->str, "hash") == 0, none = strcmp(r->str, "none") == 0;
    freeReplyObject(r);
    if (none) return "none";
    r = hash ? redisCommand(c, "HGET %s status", key) : redisCommand(c, "GETRANGE %s 3 3", key);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "%s", key);
    const char *out = NULL;
    for (int i = 0; i < 3; i++)
        if (hash ? strcmp(r->str, names[i]) == 0 : r->len == 1 && r->str[0] == i) out = names[i];
    cr_assert(out, "%s: unknown status", key);
    freeReplyObject(r);
    return out;
}

static long long t_cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "expected an integer reply");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static store_redis *t_open_opts(const char *url, const char *prefix, bool writes_ahead)
{
    store_redis *s = NULL;
    perr err = {{0}};
    store_redis_opts o = {
        .url = url, .prefix = prefix, .timeout_ms = 3000, .writes_ahead = writes_ahead};
    cr_assert_eq(store_redis_open(&o, &s, &err), 0, "open %s: %s", url, err.msg);
    return s;
}

static store_redis *t_open_url(const char *url, const char *prefix)
{
    return t_open_opts(url, prefix, false);
}

static store_redis *t_open(const t_redis *r, const char *prefix)
{
    return t_open_url(r->url, prefix);
}

/* A store that sends writes ahead: its write connection opened with it. */
static store_redis *t_open_ahead(const t_redis *r, const char *prefix)
{
    return t_open_opts(r->url, prefix, true);
}

/* The set-up of most tests: a Redis of their own, a store on it with this key prefix (opened by
 * t_open or t_open_ahead), its engine face, and a raw connection to look at what the store
 * wrote. */
#define T_STORE_WITH(open, prefix)                                                                 \
    t_redis *r = t_redis_start(NULL);                                                              \
    store_redis *s = open(r, prefix);                                                              \
    engine_store *st = store_redis_iface(s);                                                       \
    redisContext *c = t_raw(r)
#define T_STORE(prefix) T_STORE_WITH(t_open, prefix)

static void t_store_done(store_redis *s, redisContext *c)
{
    redisFree(c);
    store_redis_close(s);
}

/* A user whose link waits for manager (R6.3), changed: its write carries the link change. */
static user_state *t_waiting(engine_store *st, const char *id, const char *manager,
                             prov_status status)
{
    user_state *u = st->get_or_create(st->ctx, id);
    u->status = status;
    user_state_set_str(u, &u->waiting_for, manager);
    st->link_add(st->ctx, manager, id);
    st->changed(st->ctx, u);
    return u;
}

/* A user made active in the cache, changed. */
static user_state *t_activate(engine_store *st, const char *id)
{
    user_state *u = st->get_or_create(st->ctx, id);
    u->status = PROV_ACTIVE;
    st->changed(st->ctx, u);
    return u;
}

/* n numbered ids (prefix, then i in six digits) into ids, and pointers to them into out. */
static void t_ids(char (*ids)[24], const char **out, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s%06d", prefix, i);
        out[i] = ids[i];
    }
}

static void t_flush_ok(store_redis *s, size_t want_late)
{
    store_late late = {0};
    perr err = {{0}};
    cr_assert_eq(store_redis_flush(s, &late, &err), 0, "flush: %s", err.msg);
    cr_assert_eq(late.n, want_late, "late managers: %zu, want %zu", late.n, want_late);
    store_late_free(&late);
}

/* ---------------------------------------------------------------- state round trip */

static bool t_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void t_assert_same_state(const user_state *a, const user_state *b)
{
    cr_assert_str_eq(a->id, b->id);
    cr_assert_eq(a->has_pos, b->has_pos);
    cr_assert_eq(a->pos.commit_timestamp, b->pos.commit_timestamp);
    cr_assert_eq(a->pos.commit_number, b->pos.commit_number);
    cr_assert_eq(a->pos.sequence_number, b->pos.sequence_number);
    cr_assert_eq(a->n_fields, b->n_fields);
    for (size_t i = 0; i < a->n_fields; i++) {
        cr_assert_str_eq(a->fields[i].name, b->fields[i].name);
        cr_assert_eq(a->fields[i].name, engine_intern(b->fields[i].name), "names interned");
        cr_assert(value_eq(&a->fields[i].val, &b->fields[i].val), "field %s differs",
                  a->fields[i].name);
    }
    cr_assert_eq(a->deleted, b->deleted);
    cr_assert_eq(a->status, b->status);
    cr_assert_eq(a->in_scope, b->in_scope);
    cr_assert_eq(a->reason, b->reason);
    cr_assert(t_str_eq(a->assignment, b->assignment));
    cr_assert(t_str_eq(a->applied_settings_of, b->applied_settings_of));
    for (int i = 0; i < ATTR__COUNT; i++)
        cr_assert(value_eq(&a->sent[i], &b->sent[i]), "sent[%d] differs", i);
    cr_assert(t_str_eq(a->gong_manager, b->gong_manager));
    cr_assert(t_str_eq(a->waiting_for, b->waiting_for));
    cr_assert_eq(a->created_waiting, b->created_waiting);
    cr_assert_eq(a->needs_reconcile, b->needs_reconcile);
    cr_assert_eq(a->held, b->held);
}

static void t_fill_full(user_state *u)
{
    u->has_pos = true;
    u->pos = (position){1764001000001LL, -5, INT64_MAX};
    value_t v = value_str("ann@acme.com");
    user_state_set(u, "Email", &v);
    v = value_str("Zoë");
    user_state_set(u, "FirstName", &v);
    v = value_str("北京 🚀 O'Brien \"q\" \\ \t");
    user_state_set(u, "LastName", &v);
    v = value_bool(true);
    user_state_set(u, "IsActive", &v);
    v = value_bool(false);
    user_state_set(u, "UserPermissionsMarketingUser", &v);
    v = value_num(3.25);
    user_state_set(u, "Score__c", &v);
    v = value_num(-1e300);
    user_state_set(u, "Tiny__c", &v);
    v = value_num(0.1);
    user_state_set(u, "Tenth__c", &v);
    v = value_null();
    user_state_set(u, "Title", &v);
    v = value_str("");
    user_state_set(u, "Empty__c", &v);
    for (int i = 0; i < 40; i++) { /* more than the first fields array holds */
        char name[32], val[32];
        snprintf(name, sizeof name, "Extra%02d__c", i);
        snprintf(val, sizeof val, "value %d", i);
        v = value_str(val);
        user_state_set(u, name, &v);
    }
    u->deleted = true;
    u->status = PROV_DEACTIVATED;
    u->in_scope = false;
    u->held = true; /* (not a pair the engine makes: the bit's round trip) */
    u->reason = REASON_EMAIL_DOMAIN;
    /* the state's own strings, as the engine makes them (pooled in the store's states) */
    user_state_set_str(u, &u->assignment, "Sales € EMEA");
    user_state_set_str(u, &u->applied_settings_of, "Sales (old)");
    v = value_str("ann@acme.com");
    u->sent[ATTR_EMAIL] = user_state_dup_value(u, &v);
    v = value_str("Zoë");
    u->sent[ATTR_FIRSTNAME] = user_state_dup_value(u, &v);
    u->sent[ATTR_ACTIVE] = value_bool(true);
    u->sent[ATTR_PHONE] = value_num(4155550100.0);
    u->sent[ATTR_TITLE] = value_null();
    user_state_set_str(u, &u->gong_manager, "005MGR000000001");
    user_state_set_str(u, &u->waiting_for, "005MGR000000002");
    u->created_waiting = true;
    u->needs_reconcile = true;
}

/* A user of id filled by t_fill_full in the cache, changed. */
static user_state *t_full_user(engine_store *st, const char *id)
{
    user_state *u = st->get_or_create(st->ctx, id);
    t_fill_full(u);
    st->changed(st->ctx, u);
    return u;
}

Test(store_redis, full_user_state_round_trips_through_flush_reset_prefetch)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "rt:");
    engine_store *st = store_redis_iface(s);
    user_state *u = t_full_user(st, "005FULL");
    user_state *min = st->get_or_create(st->ctx, "005MIN"); /* NULLs and zeros everywhere */
    st->changed(st->ctx, min);
    user_state *want = user_state_new("005FULL");
    user_state_copy(want, u);
    user_state *want_min = user_state_new("005MIN");
    user_state_copy(want_min, min);
    /* the same names in another order, some more, some fewer: the decoder remembers the names
     * by position and must not take one for another */
    user_state *odd = st->get_or_create(st->ctx, "005ODD");
    const char *odd_names[] = {"Title", "Email", "Extra05__c", "FirstNam", "FirstName", "Z"};
    for (size_t i = 0; i < 6; i++) {
        value_t v = value_str(odd_names[i]);
        user_state_set(odd, odd_names[i], &v);
    }
    st->changed(st->ctx, odd);
    user_state *want_odd = user_state_new("005ODD");
    user_state_copy(want_odd, odd);
    t_flush_ok(s, 0);
    cr_assert_eq(store_redis_get_stats(s)->users_written, 3);

    store_redis_reset(s);
    perr err = {{0}};
    const char *ids[] = {"005FULL", "005ODD", "005MIN"};
    cr_assert_eq(store_redis_prefetch(s, ids, 3, &err), 0, "%s", err.msg);
    uint64_t misses = store_redis_get_stats(s)->misses;
    user_state *got = st->get(st->ctx, "005FULL");
    cr_assert(got);
    t_assert_same_state(want, got);
    cr_assert_not(got->dirty);
    got = st->get(st->ctx, "005MIN");
    cr_assert(got);
    t_assert_same_state(want_min, got);
    got = st->get(st->ctx, "005ODD");
    cr_assert(got);
    t_assert_same_state(want_odd, got);
    cr_assert_eq(store_redis_get_stats(s)->misses, misses, "prefetched: no miss");

    /* the status a script reads is the blob's byte 3 */
    redisContext *c = t_raw(r);
    cr_assert_str_eq(t_status(c, "rt:u:005FULL"), "deactivated");
    cr_assert_str_eq(t_status(c, "rt:u:005MIN"), "never");
    redisFree(c);

    /* written again unchanged and read again: still the same (a second generation) */
    got = st->get(st->ctx, "005FULL");
    st->changed(st->ctx, got);
    t_flush_ok(s, 0);
    store_redis_reset(s);
    got = st->get(st->ctx, "005FULL");
    cr_assert(got);
    t_assert_same_state(want, got);
    user_state_free(want);
    user_state_free(want_min);
    user_state_free(want_odd);
    store_redis_close(s);
}

Test(store_redis, company_state_round_trips)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "co:");
    perr err = {{0}};
    cr_assert_eq(store_redis_prefetch(s, NULL, 0, &err), 0, "%s", err.msg);
    engine_store *st = store_redis_iface(s);
    company_state *cs = st->company(st->ctx);
    cr_assert_not(cs->toggle_sent, "before any was sent: false (R7.2)");
    cr_assert_eq(cs->n_sent, 0);
    cs->toggle_sent = true;
    cs->n_sent = 3;
    /* the R8.3 window: single deactivations and merged marks (deact_mark) */
    cs->deacts[0] = (deact_mark){.ts = 1764000000001, .n = 1};
    cs->deacts[1] = (deact_mark){.ts = 1764000000005, .n = 40};
    cs->deacts[2] = (deact_mark){.ts = -3, .n = 4000000000u};
    cs->n_deacts = 3;
    st->company_changed(st->ctx);
    t_flush_ok(s, 0);
    redisContext *c = t_raw(r);
    char *deacts = t_cmd_str(c, "HGET co:company deacts");
    cr_assert_str_eq(deacts, "1764000000001,1764000000005*40,-3*4000000000");
    free(deacts);
    store_redis_reset(s);
    cr_assert_eq(store_redis_prefetch(s, NULL, 0, &err), 0, "%s", err.msg);
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cs = st->company(st->ctx);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "loaded by the prefetch");
    cr_assert(cs->toggle_sent);
    cr_assert_eq(cs->n_sent, 3);
    cr_assert_eq(cs->n_deacts, 3);
    cr_assert_eq(cs->deacts[0].ts, 1764000000001);
    cr_assert_eq(cs->deacts[0].n, 1);
    cr_assert_eq(cs->deacts[1].ts, 1764000000005);
    cr_assert_eq(cs->deacts[1].n, 40);
    cr_assert_eq(cs->deacts[2].ts, -3);
    cr_assert_eq(cs->deacts[2].n, 4000000000u);
    /* a list this build did not write is an error naming the key, never a guess */
    const char *bad[] = {"1,2*", "1*0", "1*-2", "1*x", "1**2", "1*99999999999", "1*+5", "1* 5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        freeReplyObject(redisCommand(c, "HSET co:company deacts %s", bad[i]));
        store_redis_reset(s);
        cr_assert_eq(store_redis_prefetch(s, NULL, 0, &err), -1, "'%s' was read", bad[i]);
        cr_assert(strstr(err.msg, "co:company") && strstr(err.msg, "deacts"), "%s", err.msg);
    }
    redisFree(c);
    store_redis_close(s);
}

/* ---------------------------------------------------------------- engine equivalence */

typedef struct t_cmds {
    char **lines;
    size_t n, cap;
} t_cmds;

static void t_on_emit(void *ctx, const command *c)
{
    t_cmds *o = ctx;
    buf b;
    buf_init(&b);
    command_to_json(c, &b);
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->lines = realloc(o->lines, o->cap * sizeof *o->lines);
    }
    o->lines[o->n++] = strdup(b.data);
    buf_free(&b);
}

static void t_cmds_free(t_cmds *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->lines[i]);
    free(o->lines);
    *o = (t_cmds){0};
}

static char *t_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    p[got] = '\0';
    fclose(f);
    return p;
}

typedef struct t_events {
    char **lines;
    size_t n;
} t_events;

static t_events t_split_lines(char *text)
{
    t_events ev = {0};
    size_t cap = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        if (strspn(p, " \t\r") < strlen(p)) { /* blank lines are skipped, as simulate does */
            if (ev.n == cap) {
                cap = cap ? cap * 2 : 16;
                ev.lines = realloc(ev.lines, cap * sizeof *ev.lines);
            }
            ev.lines[ev.n++] = p;
        }
        p = nl ? nl + 1 : NULL;
    }
    return ev;
}

static const engine_opts T_OPTS = {.with_why = true};

/* The in-memory reference: simulate. */
static void t_run_mem(const config *cfg, const t_events *evs, t_cmds *out)
{
    store_mem *m = store_mem_new();
    engine *e = engine_new(cfg, store_mem_iface(m), &T_OPTS);
    engine_hooks h = {.ctx = out, .emit = t_on_emit};
    engine_start(e, &h);
    arena mem;
    arena_init(&mem, 16384);
    for (size_t i = 0; i < evs->n; i++) {
        event ev;
        perr err = {{0}};
        arena_reset(&mem);
        cr_assert_eq(event_from_json(evs->lines[i], strlen(evs->lines[i]), NULL, &mem, &ev, &err),
                     0, "%s", err.msg);
        engine_apply(e, &ev, &h, &err);
    }
    arena_free(&mem);
    engine_free(e);
    store_mem_free(m);
}

/* Flush, then resolve late managers and flush again until nothing is late, as the service does. */
static void t_flush_resolving(store_redis *s, engine *e, const engine_hooks *h, size_t *late_seen)
{
    for (int round = 0; round < 8; round++) {
        store_late late = {0};
        perr err = {{0}};
        cr_assert_eq(store_redis_flush(s, &late, &err), 0, "flush: %s", err.msg);
        if (late_seen) *late_seen += late.n;
        if (!late.n) {
            store_late_free(&late);
            return;
        }
        for (size_t i = 0; i < late.n; i++)
            engine_resolve_manager(e, late.managers[i], h);
        store_late_free(&late);
    }
    cr_assert_fail("late managers did not settle");
}

/* The service's batch loop against Redis: prefetch the batch's users and the managers its events
 * name, decide, flush, forget. */
/* indexed: with the waiting index, as the service runs (store_redis_index_waiting); without it,
 * as a dry run or a Redis before 6.2 does. */
static void t_run_redis(const t_redis *r, const char *prefix, const config *cfg,
                        const t_events *evs, size_t batch, bool indexed, t_cmds *out,
                        uint64_t *misses)
{
    store_redis *s = t_open(r, prefix);
    engine *e = engine_new(cfg, store_redis_iface(s), &T_OPTS);
    engine_hooks h = {.ctx = out, .emit = t_on_emit};
    perr err = {{0}};
    /* the provisioned count (R8.3 share), counted at start as the service does: without it the
     * share cannot hold anything (r8_3_guard_share_of_provisioned gave one command more) */
    cr_assert_eq(store_redis_count_provisioned(s, true, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_index_waiting(s, indexed, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_prefetch(s, NULL, 0, &err), 0, "%s", err.msg);
    engine_start(e, &h);
    /* stored before any event, as the service does at start (R7.2): a scenario may have none */
    t_flush_resolving(s, e, &h, NULL);
    store_redis_reset(s);
    arena mem;
    arena_init(&mem, 16384);
    event *evb = calloc(batch, sizeof *evb);
    for (size_t i = 0; i < evs->n; i += batch) {
        size_t nb = evs->n - i < batch ? evs->n - i : batch;
        const char *ids[512];
        size_t n_ids = 0;
        arena_reset(&mem);
        /* the service's order: the users the events are about, then the managers they name */
        for (size_t j = 0; j < nb; j++) {
            const char *line = evs->lines[i + j];
            cr_assert_eq(event_from_json(line, strlen(line), NULL, &mem, &evb[j], &err), 0, "%s",
                         err.msg);
            for (size_t k = 0; k < evb[j].n_record_ids && n_ids < 500; k++)
                ids[n_ids++] = evb[j].record_ids[k];
        }
        size_t n_subjects = n_ids;
        for (size_t j = 0; j < nb; j++)
            n_ids += engine_event_refs(&evb[j], ids + n_ids, 500 - n_ids);
        cr_assert_eq(store_redis_prefetch_named(s, ids, n_ids, n_subjects, &err), 0, "%s", err.msg);
        for (size_t j = 0; j < nb; j++)
            engine_apply(e, &evb[j], &h, &err);
        cr_assert_not(store_redis_failed(s, &err), "%s", err.msg);
        t_flush_resolving(s, e, &h, NULL);
        store_redis_reset(s);
    }
    if (misses) *misses = store_redis_get_stats(s)->misses;
    free(evb);
    arena_free(&mem);
    engine_free(e);
    store_redis_close(s);
}

static size_t t_scenario_dirs(char dirs[][512], size_t max)
{
    const char *src = getenv("PV_SOURCE_DIR");
    char here[512];
    if (!src) { /* run by hand, outside ctest: the tree this file is in */
        snprintf(here, sizeof here, "%s", __FILE__);
        char *cut = strstr(here, "/tests/integration/");
        if (cut) *cut = '\0';
        src = here;
    }
    const char *roots[2] = {"tests/scenarios", "../shared/scenarios"};
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        char root[400];
        snprintf(root, sizeof root, "%.370s/%s", src, roots[k]);
        DIR *d = opendir(root);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d)) && n < max) {
            if (de->d_name[0] == '.') continue;
            snprintf(dirs[n], 512, "%s/%.100s", root, de->d_name);
            char p[600];
            struct stat st;
            snprintf(p, sizeof p, "%s/events.jsonl", dirs[n]);
            if (stat(p, &st) == 0) n++;
        }
        closedir(d);
    }
    return n;
}

#define MAX_SCENARIOS 2048 /* reaching it fails the test, never skips any */

static void t_assert_same_cmds(const char *dir, const char *what, const t_cmds *a, const t_cmds *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++)
        cr_assert_str_eq(b->lines[i], a->lines[i], "%s (%s): command %zu differs", dir, what, i);
    cr_assert_eq(b->n, a->n, "%s (%s): %zu commands, in memory %zu", dir, what, b->n, a->n);
}

Test(store_redis, engine_output_is_the_same_as_in_memory_on_every_scenario, .timeout = 300)
{
    t_redis *r = t_redis_start(NULL);
    static char dirs[MAX_SCENARIOS][512];
    size_t n = t_scenario_dirs(dirs, MAX_SCENARIOS);
    cr_assert_geq(n, 10, "scenarios not found (PV_SOURCE_DIR?)");
    cr_assert_lt(n, MAX_SCENARIOS, "more scenarios than MAX_SCENARIOS: some were left out");
    size_t with_cmds = 0;
    for (size_t k = 0; k < n; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/settings.yaml", dirs[k]);
        char *yaml = t_slurp(path);
        snprintf(path, sizeof path, "%s/events.jsonl", dirs[k]);
        char *text = t_slurp(path);
        if (!yaml || !text) {
            free(yaml);
            free(text);
            continue;
        }
        config *cfg;
        perr err = {{0}};
        cr_assert_eq(config_load_string(yaml, strlen(yaml), "settings.yaml", &cfg, &err), 0,
                     "%s: %s", dirs[k], err.msg);
        t_events evs = t_split_lines(text);
        t_cmds mem = {0};
        t_run_mem(cfg, &evs, &mem);
        if (mem.n) with_cmds++;
        /* batches of 4 also without the waiting index, every waiting set read */
        const size_t batches[] = {1, 4, 1000, 4};
        for (size_t b = 0; b < 4; b++) {
            bool indexed = b < 3;
            char prefix[64];
            snprintf(prefix, sizeof prefix, "eq%zu.%zu%s:", k, batches[b], indexed ? "" : "u");
            t_cmds red = {0};
            t_run_redis(r, prefix, cfg, &evs, batches[b], indexed, &red, NULL);
            char what[64];
            snprintf(what, sizeof what, "batches of %zu%s", batches[b],
                     indexed ? "" : ", no waiting index");
            t_assert_same_cmds(dirs[k], what, &mem, &red);
            t_cmds_free(&red);
            /* R9.3: the same events again over the same state produce nothing */
            t_run_redis(r, prefix, cfg, &evs, batches[b], indexed, &red, NULL);
            cr_assert_eq(red.n, 0, "%s: a replay over the stored state produced %zu commands",
                         dirs[k], red.n);
            t_cmds_free(&red);
        }
        t_cmds_free(&mem);
        free(evs.lines);
        free(text);
        free(yaml);
        config_free(cfg);
    }
    cr_assert_geq(with_cmds, 10);
}

/* ---------------------------------------------------------------- round trips and misses */

/* How many times Redis ran the command name (INFO commandstats). */
static long long t_calls(redisContext *c, const char *name)
{
    char *info = t_cmd_str(c, "INFO commandstats");
    cr_assert(info);
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", name);
    const char *at = strstr(info, key);
    long long n = at ? atoll(at + strlen(key)) : 0;
    free(info);
    return n;
}

/* One round trip reads them all, by MGETs of up to 128 keys; users not in Redis cost one more
 * (EXISTS: an MGET answers nil for a key of another type, the hash form of builds before). */
Test(store_redis, prefetch_of_many_users_is_one_round_trip)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "pf:");
    engine_store *st = store_redis_iface(s);
    char ids[300][24];
    const char *idp[300];
    t_ids(ids, idp, 300, "005U");
    for (int i = 0; i < 250; i++) { /* 50 of the ids stay unknown to Redis */
        user_state *u = st->get_or_create(st->ctx, ids[i]);
        value_t v = value_str(ids[i]);
        user_state_set(u, "Email", &v);
        st->changed(st->ctx, u);
        if (i % 10 == 0) st->link_add(st->ctx, ids[i], ids[i + 1]);
    }
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    t_flush_ok(s, 0);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "flush: one round trip");
    cr_assert_eq(store_redis_get_stats(s)->users_written, 250);

    store_redis_reset(s);
    perr err = {{0}};
    rt = store_redis_get_stats(s)->round_trips;
    uint64_t misses = store_redis_get_stats(s)->misses;
    redisContext *c = t_raw(r);
    long long mgets = t_calls(c, "mget"), gets = t_calls(c, "get"), exists = t_calls(c, "exists");
    cr_assert_eq(store_redis_prefetch(s, idp, 300, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2,
                 "prefetch: one round trip, one more for the 50 not in Redis");
    cr_assert_eq(t_calls(c, "mget") - mgets, 3, "128 keys an MGET");
    cr_assert_eq(t_calls(c, "exists") - exists, 1);
    cr_assert_eq(t_calls(c, "get") - gets, 0, "none exists: none is read again");
    rt++;
    for (int i = 0; i < 300; i++) {
        user_state *u = st->get(st->ctx, ids[i]);
        cr_assert_eq(u != NULL, i < 250, "%s", ids[i]);
        if (u) cr_assert_str_eq(user_state_get(u, "Email")->s, ids[i]);
        const char *const *reports;
        size_t n = st->links(st->ctx, ids[i], &reports);
        cr_assert_eq(n, i < 250 && i % 10 == 0 ? 1u : 0u, "links of %s", ids[i]);
        if (n) cr_assert_str_eq(reports[0], ids[i + 1]);
    }
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "everything came from the cache");
    cr_assert_eq(store_redis_get_stats(s)->misses, misses);
    /* prefetching what is cached costs nothing */
    cr_assert_eq(store_redis_prefetch(s, idp, 300, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1);
    store_redis_close(s);
    redisFree(c);
}

/* R6.4's cycle check walks a new manager's chain of Gong managers a user at a time: the chain is
 * read before, a level a round trip (not a user a round trip), up to the depth asked for; a
 * stored loop or a chain's end stops it, and what is cached is not read again. */
Test(store_redis, chains_of_managers_are_read_a_level_a_round_trip)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "ch:");
    engine_store *st = store_redis_iface(s);
    char ids[40][24];
    const char *idp[40];
    t_ids(ids, idp, 40, "005C");
    /* two chains of 8: 0 <- 1 <- ... <- 7 (7's manager is 6) and 10 <- ... <- 17; 20 and 21 are
     * each other's managers (a loop in the stored data) */
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 8; i++) {
            user_state *u = st->get_or_create(st->ctx, ids[c * 10 + i]);
            if (i) user_state_set_str(u, &u->gong_manager, ids[c * 10 + i - 1]);
            st->changed(st->ctx, u);
        }
    for (int i = 20; i < 22; i++) {
        user_state *u = st->get_or_create(st->ctx, ids[i]);
        user_state_set_str(u, &u->gong_manager, ids[i == 20 ? 21 : 20]);
        st->changed(st->ctx, u);
    }
    t_flush_ok(s, 0);
    store_redis_reset(s);

    perr err = {{0}};
    const char *named[] = {ids[7], ids[17], ids[20], ids[30] /* unknown */};
    cr_assert_eq(store_redis_prefetch_named(s, named, 4, 0, &err), 0, "%s", err.msg);
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch_chains(s, named, 4, 32, &err), 0, "%s", err.msg);
    /* 6, 16, 21 / 5, 15 / ... / 0, 10: seven levels; the loop's 20 is cached at the first */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 7);
    uint64_t misses = store_redis_get_stats(s)->misses;
    for (int c = 0; c < 2; c++) {
        const char *cur = ids[c * 10 + 7];
        int hops = 0;
        for (user_state *u; (u = st->get(st->ctx, cur)) && u->gong_manager; hops++)
            cur = u->gong_manager;
        cr_assert_eq(hops, 7);
        cr_assert_str_eq(cur, ids[c * 10]);
    }
    cr_assert_not_null(st->get(st->ctx, ids[21]));
    cr_assert_eq(store_redis_get_stats(s)->misses, misses, "the walks read nothing more");
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 7);
    /* cached now: nothing to read */
    cr_assert_eq(store_redis_prefetch_chains(s, named, 4, 32, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 7);

    /* the depth asked for bounds it: two levels, then the walk reads the rest one by one */
    store_redis_reset(s);
    cr_assert_eq(store_redis_prefetch_named(s, named, 1, 0, &err), 0, "%s", err.msg);
    rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch_chains(s, named, 1, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2);
    misses = store_redis_get_stats(s)->misses;
    const char *cur = ids[7];
    for (user_state *u; (u = st->get(st->ctx, cur)) && u->gong_manager;)
        cur = u->gong_manager;
    cr_assert_eq(store_redis_get_stats(s)->misses, misses + 5, "4, 3, 2, 1, 0");
    store_redis_close(s);
}

/* 300 users, 250 stored (Email = their id): the read-ahead tests' state. */
static store_redis *t_ahead_store(t_redis *r, const char *prefix, char (*ids)[24], const char **idp)
{
    store_redis *s = t_open(r, prefix);
    engine_store *st = store_redis_iface(s);
    t_ids(ids, idp, 300, "005U");
    for (int i = 0; i < 250; i++) {
        user_state *u = st->get_or_create(st->ctx, ids[i]);
        value_t v = value_str(ids[i]);
        user_state_set(u, "Email", &v);
        st->changed(st->ctx, u);
    }
    t_flush_ok(s, 0);
    store_redis_reset(s);
    return s;
}

/* The read-ahead tests' start: that state under prefix, its ids and engine face. */
#define T_AHEAD(prefix)                                                                            \
    t_redis *r = t_redis_start(NULL);                                                              \
    char ids[300][24];                                                                             \
    const char *idp[300];                                                                          \
    store_redis *s = t_ahead_store(r, prefix, ids, idp);                                           \
    engine_store *st = store_redis_iface(s);                                                       \
    (void)st;                                                                                      \
    perr err = {{0}}

static void t_ahead_check(store_redis *s, char (*ids)[24], int from, int to)
{
    engine_store *st = store_redis_iface(s);
    for (int i = from; i < to; i++) {
        user_state *u = st->get(st->ctx, ids[i]);
        cr_assert_eq(u != NULL, i < 250, "%s", ids[i]);
        if (u) cr_assert_str_eq(user_state_get(u, "Email")->s, ids[i]);
    }
}

/* Reads sent ahead of the prefetch (store_redis_prefetch_ahead) are taken by it, in order before
 * its own, and nothing is read twice; a prefetch that follows has them all in the cache. */
Test(store_redis, reads_sent_ahead_are_taken_by_the_next_prefetch)
{
    T_AHEAD("ra1:");
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    uint64_t misses = store_redis_get_stats(s)->misses;
    store_redis_prefetch_ahead(s, idp, 120); /* 005U000000..119 */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "sent at once");
    cr_assert_eq(store_redis_prefetch(s, idp + 60, 240, &err), 0, "%s", err.msg);
    /* and one more: which of the 50 not in Redis exist (none) */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 3, "then the rest, once");
    t_ahead_check(s, ids, 0, 300);
    cr_assert_eq(store_redis_get_stats(s)->misses, misses, "all cached");
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 3);
    store_redis_close(s);
}

/* Any read but the prefetch takes the replies sent ahead and forgets their users, which are read
 * again when asked for; a reset does the same; a connection lost after sending them ahead makes
 * the prefetch send them again. */
Test(store_redis, reads_sent_ahead_survive_other_reads_a_reset_and_a_lost_connection)
{
    T_AHEAD("ra2:");
    uint64_t misses = store_redis_get_stats(s)->misses;
    store_redis_prefetch_ahead(s, idp, 100);
    user_state *u = st->get(st->ctx, ids[200]); /* a miss: its own reply, not one sent ahead */
    cr_assert(u);
    cr_assert_str_eq(user_state_get(u, "Email")->s, ids[200]);
    t_ahead_check(s, ids, 0, 100); /* read again one by one */
    cr_assert_eq(store_redis_get_stats(s)->misses, misses + 101);

    store_redis_reset(s);
    store_redis_prefetch_ahead(s, idp + 100, 100);
    store_redis_reset(s);
    cr_assert_eq(store_redis_prefetch(s, idp + 150, 100, &err), 0, "%s", err.msg);
    t_ahead_check(s, ids, 150, 250);

    store_redis_reset(s);
    store_redis_prefetch_ahead(s, idp, 100);
    t_redis_restart(r); /* the replies are lost with the connection */
    int rc = store_redis_prefetch(s, idp, 300, &err);
    for (int i = 0; rc < 0 && i < 3; i++) { /* the service retries the same call */
        store_redis_reset(s);
        rc = store_redis_prefetch(s, idp, 300, &err);
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    /* replies the old server sent before it went may have been read (what was stored then);
     * none was taken for another user's, and everyone is cached */
    misses = store_redis_get_stats(s)->misses;
    for (int i = 0; i < 300; i++) {
        u = st->get(st->ctx, ids[i]);
        if (u) cr_assert_str_eq(user_state_get(u, "Email")->s, ids[i]);
    }
    cr_assert_eq(store_redis_get_stats(s)->misses, misses, "all cached");
    store_redis_close(s);
}

/* Redis drops the connection, then reads are sent ahead (the write to the dead socket still
 * succeeds): a ping or a flush that comes first takes the replies, finds the connection broken,
 * and connects again instead of writing to it (found by review: a crash). */
Test(store_redis, reads_sent_ahead_on_a_dropped_connection_do_not_break_other_calls)
{
    T_AHEAD("ra3:");
    redisContext *c = t_raw(r);
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes"));
    t_sleep_ms(100);
    store_redis_prefetch_ahead(s, idp, 100);
    cr_assert_eq(store_redis_ping(s, &err), 0, "%s", err.msg);

    cr_assert_eq(store_redis_prefetch(s, idp + 200, 10, &err), 0, "%s", err.msg);
    user_state *u = st->get(st->ctx, ids[200]);
    value_t v = value_str("x");
    user_state_set(u, "Title", &v);
    st->changed(st->ctx, u);
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes"));
    t_sleep_ms(100);
    store_redis_prefetch_ahead(s, idp, 100);
    store_late late = {0};
    int rc = store_redis_flush(s, &late, &err);
    for (int i = 0; rc < 0 && i < 3; i++) /* the service retries the same call */
        rc = store_redis_flush(s, &late, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    store_late_free(&late);
    store_redis_reset(s);
    cr_assert_eq(store_redis_prefetch(s, idp + 200, 1, &err), 0, "%s", err.msg);
    const value_t *t = user_state_get(st->get(st->ctx, ids[200]), "Title");
    cr_assert(t && t->type == VAL_STR && strcmp(t->s, "x") == 0, "the write went through");
    redisFree(c);
    store_redis_close(s);
}

Test(store_redis, users_not_prefetched_are_read_once_and_counted_as_misses)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "ms:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get_or_create(st->ctx, "005A");
    u->status = PROV_ACTIVE;
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    store_redis_reset(s);

    const store_redis_stats *stats = store_redis_get_stats(s);
    uint64_t rt = stats->round_trips, misses = stats->misses;
    u = st->get(st->ctx, "005A");
    cr_assert(u);
    cr_assert_eq(u->status, PROV_ACTIVE);
    cr_assert_eq(stats->misses, misses + 1);
    cr_assert_eq(stats->round_trips, rt + 1);
    cr_assert_eq(st->get(st->ctx, "005A"), u, "cached after the miss");
    cr_assert_eq(stats->misses, misses + 1);

    cr_assert_null(st->get(st->ctx, "005NOPE"));
    cr_assert_eq(stats->misses, misses + 2);
    cr_assert_null(st->get(st->ctx, "005NOPE"), "\"not found\" is cached too");
    cr_assert_eq(stats->misses, misses + 2);
    cr_assert_eq(stats->round_trips, rt + 2);
    user_state *created = st->get_or_create(st->ctx, "005NOPE");
    cr_assert(created);
    cr_assert_str_eq(created->id, "005NOPE");
    cr_assert_eq(st->get(st->ctx, "005NOPE"), created);
    cr_assert_eq(stats->round_trips, rt + 2, "created in the cache, no round trip");
    perr err = {{0}};
    cr_assert_not(store_redis_failed(s, &err));
    store_redis_close(s);
}

/* ---------------------------------------------------------------- waiting links */

static bool t_has(const char *const *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], id) == 0) return true;
    return false;
}

Test(store_redis, waiting_links_are_added_removed_and_read_back)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "ln:");
    engine_store *st = store_redis_iface(s);
    /* changes to a set never loaded: queued, then merged when it is read */
    st->link_add(st->ctx, "005M", "005R1");
    st->link_add(st->ctx, "005M", "005R2");
    st->link_add(st->ctx, "005M", "005R3");
    st->link_del(st->ctx, "005M", "005R3");
    /* a link registered with the report's own state */
    user_state *r5 = st->get_or_create(st->ctx, "005R5");
    user_state_set_str(r5, &r5->waiting_for, "005M");
    st->link_add(st->ctx, "005M", "005R5");
    st->changed(st->ctx, r5);
    t_flush_ok(s, 0);
    redisContext *c = t_raw(r);
    cr_assert_eq(t_cmd_int(c, "SCARD ln:w:005M"), 3);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ln:w:005M 005R5"), 1);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ln:w:005M 005R3"), 0);

    store_redis_reset(s);
    st->link_add(st->ctx, "005M", "005R4"); /* before the set is read */
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    const char *const *reports;
    size_t n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "read on the spot");
    cr_assert_eq(n, 4);
    cr_assert(t_has(reports, n, "005R1") && t_has(reports, n, "005R2") &&
              t_has(reports, n, "005R4") && t_has(reports, n, "005R5"));
    st->link_del(st->ctx, "005M", "005R1");
    n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(n, 3);
    cr_assert_not(t_has(reports, n, "005R1"));
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "cached after the first read");
    t_flush_ok(s, 0);

    store_redis_reset(s);
    const char *ids[] = {"005M"};
    perr err = {{0}};
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    rt = store_redis_get_stats(s)->round_trips;
    n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "prefetched with the user");
    cr_assert_eq(n, 3);
    cr_assert(t_has(reports, n, "005R2") && t_has(reports, n, "005R4") &&
              t_has(reports, n, "005R5"));
    cr_assert_eq(st->links(st->ctx, "005NOBODY", &reports), 0);
    /* add then remove in one batch: nothing stays */
    st->link_add(st->ctx, "005M2", "005R9");
    st->link_del(st->ctx, "005M2", "005R9");
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "EXISTS ln:w:005M2"), 0);
    redisFree(c);
    store_redis_close(s);
}

/* ---------------------------------------------------------------- the waiting index (R6.3) */

static store_redis *t_open_indexed(const t_redis *r, const char *prefix)
{
    store_redis *s = t_open(r, prefix);
    perr err = {{0}};
    cr_assert_eq(store_redis_index_waiting(s, true, &err), 0, "%s", err.msg);
    return s;
}

/* The write scripts keep the index: a set is in it once it has members, out of it once a report's
 * write empties it; a prefetch asks it once and reads only the sets it names. */
Test(store_redis, the_waiting_index_names_the_sets_with_members)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open_indexed(r, "wi:");
    engine_store *st = store_redis_iface(s);
    redisContext *c = t_raw(r);
    char *flag = t_cmd_str(c, "HGET wi:company waiting_index");
    cr_assert_str_eq(flag ? flag : "(nil)", "1", "an empty state is indexed at once");
    free(flag);
    t_waiting(st, "005R1", "005M1", PROV_NEVER);          /* in the report's put script */
    st->link_add(st->ctx, "005M2", "005R2");              /* the link script: no report written */
    user_state *m3 = st->get_or_create(st->ctx, "005M3"); /* a user with no reports */
    m3->status = PROV_DEACTIVATED;
    st->changed(st->ctx, m3);
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "SCARD wi:waiting"), 2);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER wi:waiting wi:w:005M1"), 1);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER wi:waiting wi:w:005M2"), 1);

    /* 300 users, two of them with reports: the users and the index, then those two sets */
    store_redis_reset(s);
    char ids[300][24];
    const char *idp[300];
    t_ids(ids, idp, 300, "005X");
    idp[10] = "005M1";
    idp[20] = "005M2";
    idp[30] = "005M3";
    perr err = {{0}};
    long long smembers = t_calls(c, "smembers");
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch(s, idp, 300, &err), 0, "%s", err.msg);
    /* (and whether the users not in Redis exist in another form: EXISTS) */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 3, "users and index, then two sets");
    cr_assert_eq(t_calls(c, "smembers") - smembers, 2, "only the sets with members are read");
    const char *const *reports;
    for (int i = 0; i < 300; i++) {
        size_t n = st->links(st->ctx, idp[i], &reports);
        cr_assert_eq(n, i == 10 || i == 20 ? 1u : 0u, "links of %s", idp[i]);
        if (n) cr_assert_str_eq(reports[0], i == 10 ? "005R1" : "005R2");
    }
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 3, "everything from the cache");

    /* the report's write that empties the set takes it out of the index */
    user_state *r1 = st->get_or_create(st->ctx, "005R1");
    r1->status = PROV_ACTIVE;
    st->link_del(st->ctx, "005M1", "005R1");
    st->changed(st->ctx, r1);
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "EXISTS wi:w:005M1"), 0);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER wi:waiting wi:w:005M1"), 0);
    store_redis_reset(s);
    const char *one[] = {"005M1"};
    rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch(s, one, 1, &err), 0, "%s", err.msg);
    /* (the user, not in Redis: whether it exists in another form) */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2, "no set left to read");
    cr_assert_eq(st->links(st->ctx, "005M1", &reports), 0);
    redisFree(c);
    store_redis_close(s);
}

/* A manager only named by a batch (a report's ManagerId) has its set read with it only when it is
 * active (check (c)); otherwise nothing decides with it, and links() reads it when asked. */
Test(store_redis, a_named_manager_has_its_waiting_set_read_only_when_active)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open_indexed(r, "nm:");
    engine_store *st = store_redis_iface(s);
    t_waiting(st, "005R1", "005MOFF", PROV_NEVER);
    t_waiting(st, "005R2", "005MON", PROV_NEVER);
    user_state *off = st->get_or_create(st->ctx, "005MOFF");
    off->status = PROV_DEACTIVATED;
    st->changed(st->ctx, off);
    t_flush_ok(s, 0);
    /* 005MON goes active in another instance, which never saw 005R2 (so its write reports it
     * late) and then dies before the placement: stored active, its report still waiting */
    store_redis_reset(s);
    user_state *on = st->get_or_create(st->ctx, "005MON");
    on->status = PROV_ACTIVE;
    st->changed(st->ctx, on);
    t_flush_ok(s, 1);
    store_redis_reset(s);

    perr err = {{0}};
    const char *batch[] = {"005R1", "005MOFF"}; /* the subject, then the manager it names */
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch_named(s, batch, 2, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "the set is not read");
    const char *const *reports;
    cr_assert_eq(st->links(st->ctx, "005MOFF", &reports), 1, "read when asked");
    cr_assert_str_eq(reports[0], "005R1");
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2);
    store_redis_reset(s);

    const char *batch2[] = {"005R2", "005MON"};
    rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch_named(s, batch2, 2, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2, "an active manager's set is read");
    store_late due = {0};
    store_redis_active_waiting(s, &due);
    cr_assert_eq(due.n, 1, "check (c): the active manager with a report waiting");
    cr_assert_str_eq(due.managers[0], "005MON");
    store_late_free(&due);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2);
    store_redis_close(s);
}

/* Waiting sets written before the index (an older version) are indexed once, when the service
 * starts; until then, and for a dry run, every set is read. */
Test(store_redis, sets_from_before_the_index_are_indexed_once)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    cr_assert_eq(t_cmd_int(c, "SADD ix:w:005M1 005R1"), 1);
    cr_assert_eq(t_cmd_int(c, "SADD ix:w:005M2 005R2 005R3"), 2);
    for (int i = 0; i < 2500; i++) /* more than a SCAN page of other keys */
        freeReplyObject(redisCommand(c, "HSET ix:u:005U%05d status never", i));
    store_redis *s = t_open(r, "ix:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    cr_assert_eq(store_redis_index_waiting(s, false, &err), 0, "%s", err.msg);
    cr_assert_eq(t_cmd_int(c, "EXISTS ix:waiting"), 0, "a dry run writes nothing");
    const char *ids[] = {"005M1", "005M2"};
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "%s", err.msg);
    const char *const *reports;
    cr_assert_eq(st->links(st->ctx, "005M2", &reports), 2, "not indexed: every set read");
    store_redis_reset(s);

    cr_assert_eq(store_redis_index_waiting(s, true, &err), 0, "%s", err.msg);
    cr_assert_eq(t_cmd_int(c, "SCARD ix:waiting"), 2);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ix:waiting ix:w:005M1"), 1);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ix:waiting ix:w:005M2"), 1);
    char *flag = t_cmd_str(c, "HGET ix:company waiting_index");
    cr_assert_str_eq(flag ? flag : "(nil)", "1");
    free(flag);
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "%s", err.msg);
    /* users and index, the two sets, whether the users (not in Redis) exist in another form */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 3);
    cr_assert_eq(st->links(st->ctx, "005M1", &reports), 1);
    cr_assert_eq(st->links(st->ctx, "005M2", &reports), 2);
    store_redis_close(s);

    /* once: a set written behind the scripts' back afterwards is not picked up by a restart */
    cr_assert_eq(t_cmd_int(c, "SADD ix:w:005M3 005R4"), 1);
    s = t_open_indexed(r, "ix:");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ix:waiting ix:w:005M3"), 0);
    store_redis_close(s);
    redisFree(c);
}

/* An index that cannot be read is not used: every waiting set is read, and nothing is marked.
 * Redis before 6.2 answers SMISMEMBER with an unknown-command error; none is installed here, so a
 * key of another type, answered with WRONGTYPE, stands in for it (the writes' scripts would fail
 * on such a key: this test does not write). */
Test(store_redis, an_unreadable_waiting_index_falls_back_to_reading_every_set)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    freeReplyObject(redisCommand(c, "SET fb:waiting not-a-set"));
    cr_assert_eq(t_cmd_int(c, "SADD fb:w:005M 005R"), 1);
    store_redis *s = t_open(r, "fb:");
    perr err = {{0}};
    cr_assert_eq(store_redis_index_waiting(s, true, &err), 0, "%s", err.msg);
    char *flag = t_cmd_str(c, "HGET fb:company waiting_index");
    cr_assert_null(flag, "not marked indexed");
    const char *ids[] = {"005M"};
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    /* (and one more: whether the user, not in Redis, exists in another form) */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2, "SMEMBERS with the user");
    engine_store *st = store_redis_iface(s);
    const char *const *reports;
    cr_assert_eq(st->links(st->ctx, "005M", &reports), 1);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2);
    store_redis_close(s);
    redisFree(c);
}

static int t_collect_id(void *ctx, const char *id)
{
    char *got = ctx;
    strncat(got, id, 63 - strlen(got));
    strncat(got, " ", 63 - strlen(got));
    return 0;
}

/* SCAN's MATCH is a glob: a prefix's glob characters are matched as themselves, so the users of
 * "pr[eu]:" are not mixed with those of "pre:" (which the glob "pr[eu]:u:*" matches). */
Test(store_redis, a_prefix_with_glob_characters_scans_only_its_own_users)
{
    t_redis *r = t_redis_start(NULL);
    const char *prefixes[] = {"pr[eu]:", "pre:", "pr*:"};
    const char *ids[] = {"005GLOB", "005PLAIN", "005STAR"};
    for (int i = 0; i < 3; i++) {
        store_redis *s = t_open(r, prefixes[i]);
        engine_store *st = store_redis_iface(s);
        user_state *u = st->get_or_create(st->ctx, ids[i]);
        u->status = PROV_ACTIVE;
        st->changed(st->ctx, u);
        t_flush_ok(s, 0);
        store_redis_close(s);
    }
    for (int i = 0; i < 3; i++) {
        store_redis *s = t_open(r, prefixes[i]);
        char got[64] = "";
        perr err = {{0}};
        cr_assert_eq(store_redis_scan_users(s, t_collect_id, got, &err), 0, "%s", err.msg);
        char want[64];
        snprintf(want, sizeof want, "%s ", ids[i]);
        cr_assert_str_eq(got, want, "prefix %s", prefixes[i]);
        store_redis_close(s);
    }
}

/* Sets past the linear-scan size (a hash index then): adds, removes, duplicates, read back. */
Test(store_redis, large_waiting_sets_keep_exact_membership)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "big:");
    engine_store *st = store_redis_iface(s);
    char id[32];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "005R%04d", i);
        st->link_add(st->ctx, "005M", id);
        st->link_add(st->ctx, "005M", id); /* twice: still one member */
    }
    for (int i = 0; i < 500; i += 3) {
        snprintf(id, sizeof id, "005R%04d", i);
        st->link_del(st->ctx, "005M", id);
    }
    const char *const *reports;
    size_t n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(n, 333);
    t_flush_ok(s, 0);
    redisContext *c = t_raw(r);
    cr_assert_eq(t_cmd_int(c, "SCARD big:w:005M"), 333);
    store_redis_reset(s);
    n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(n, 333);
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "005R%04d", i);
        cr_assert_eq(t_has(reports, n, id), i % 3 != 0, "%s", id);
    }
    /* removing everything through the index, in another order */
    for (int i = 499; i >= 0; i--) {
        snprintf(id, sizeof id, "005R%04d", i);
        st->link_del(st->ctx, "005M", id);
    }
    cr_assert_eq(st->links(st->ctx, "005M", &reports), 0);
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "EXISTS big:w:005M"), 0);
    redisFree(c);
    store_redis_close(s);
}

/* A sealed write is not in Redis until it is sent, but every read sees it: the next batch is
 * decided on what it will leave there. Dropped unsent, it leaves nothing. */
Test(store_redis, sealed_writes_are_seen_before_they_are_sent)
{
    T_STORE("sw:");
    perr err = {{0}};
    t_waiting(st, "005R", "005M", PROV_ACTIVE);
    st->company(st->ctx)->n_sent = 3;
    st->company_changed(st->ctx);
    store_write *w1;
    cr_assert_eq(store_redis_seal(s, &w1, &err), 0, "%s", err.msg);
    cr_assert(w1);
    store_redis_reset(s);
    cr_assert_eq(t_cmd_int(c, "EXISTS sw:u:005R"), 0, "not sent yet");

    /* the next batch: reads come from the sealed write, not from Redis */
    const char *ids[] = {"005R", "005M"};
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "%s", err.msg);
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    user_state *r2 = st->get(st->ctx, "005R");
    cr_assert(r2, "the sealed state");
    cr_assert_eq(r2->status, PROV_ACTIVE);
    cr_assert_str_eq(r2->waiting_for, "005M");
    const char *const *reports;
    size_t n = st->links(st->ctx, "005M", &reports);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(reports[0], "005R");
    cr_assert_eq(st->company(st->ctx)->n_sent, 3);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "all prefetched");
    /* it changes them again, and seals a second write */
    r2->status = PROV_DEACTIVATED;
    st->changed(st->ctx, r2);
    st->link_del(st->ctx, "005M", "005R");
    store_write *w2;
    cr_assert_eq(store_redis_seal(s, &w2, &err), 0, "%s", err.msg);
    cr_assert(w2);
    store_redis_reset(s);
    r2 = st->get(st->ctx, "005R"); /* a miss: the newest sealed write answers */
    cr_assert(r2);
    cr_assert_eq(r2->status, PROV_DEACTIVATED);
    cr_assert_eq(st->links(st->ctx, "005M", &reports), 0);
    store_redis_reset(s);

    /* the oldest lands alone */
    store_late late = {0};
    cr_assert_eq(store_redis_write_sealed(s, w1, &late, &err), 0, "%s", err.msg);
    store_late_free(&late);
    cr_assert_str_eq(t_status(c, "sw:u:005R"), "active");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER sw:w:005M 005R"), 1);
    /* the second is dropped unsent (its batch would be decided again): Redis keeps the first */
    store_redis_discard(s, w2);
    r2 = st->get(st->ctx, "005R");
    cr_assert(r2);
    cr_assert_eq(r2->status, PROV_ACTIVE, "read from Redis again");
    cr_assert_eq(st->links(st->ctx, "005M", &reports), 1);
    t_store_done(s, c);
}

/* A reimport's chunk whose flush failed is left pending and not flushed again (the reimport
 * stops): the next batch's sealed write takes it out first, in order, instead of being refused
 * for ever (the service hung, retrying). */
Test(store_redis, a_sealed_write_takes_an_older_pending_write_out_first)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "op:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    t_activate(st, "005A");
    t_redis_kill(r);
    cr_assert_eq(store_redis_flush(s, NULL, &err), -1);
    t_redis_restart(r);
    store_redis_reset(s); /* the reimport gives up; its write stays pending */
    cr_assert(t_activate(st, "005B"), "%s", err.msg);
    store_write *w;
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    cr_assert(w);
    store_late late = {0};
    cr_assert_eq(store_redis_write_sealed(s, w, &late, &err), 0, "%s", err.msg);
    store_late_free(&late);
    redisContext *c = t_raw(r);
    cr_assert_str_eq(t_status(c, "op:u:005A"), "active", "the older write landed");
    cr_assert_str_eq(t_status(c, "op:u:005B"), "active");
    cr_assert_eq(t_cmd_int(c, "SCARD op:active"), 2);
    t_store_done(s, c);
}

/* Dropping a sealed write that is not the oldest (its batch is decided again) leaves the older
 * ones seen; dropping the oldest leaves the newer ones seen. */
Test(store_redis, a_dropped_write_leaves_the_other_pending_writes_seen)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "dw:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    store_write *w[3];
    prov_status want[3] = {PROV_ACTIVE, PROV_DEACTIVATED, PROV_NEVER};
    for (int i = 0; i < 3; i++) {
        user_state *u = st->get_or_create(st->ctx, "005R");
        u->status = want[i];
        st->changed(st->ctx, u);
        cr_assert_eq(store_redis_seal(s, &w[i], &err), 0, "%s", err.msg);
        cr_assert(w[i]);
        store_redis_reset(s);
    }
    cr_assert_eq(st->get(st->ctx, "005R")->status, PROV_NEVER, "the newest");
    store_redis_reset(s);
    store_redis_discard(s, w[2]);
    user_state *got = st->get(st->ctx, "005R");
    cr_assert(got && got->status == PROV_DEACTIVATED, "the newest left");
    store_redis_reset(s);
    store_redis_discard(s, w[1]);
    got = st->get(st->ctx, "005R");
    cr_assert(got && got->status == PROV_ACTIVE, "the oldest, not Redis");
    store_redis_reset(s);
    /* the oldest goes while a newer one has the user */
    user_state *u = st->get_or_create(st->ctx, "005R");
    u->status = PROV_DEACTIVATED;
    st->changed(st->ctx, u);
    cr_assert_eq(store_redis_seal(s, &w[1], &err), 0, "%s", err.msg);
    store_redis_reset(s);
    store_redis_discard(s, w[0]);
    got = st->get(st->ctx, "005R");
    cr_assert(got && got->status == PROV_DEACTIVATED);
    store_redis_reset(s);
    store_redis_discard(s, w[1]);
    cr_assert_null(st->get(st->ctx, "005R"), "nothing pending, nothing in Redis");
    store_redis_close(s);
}

/* Polls store_redis_write_answered for up to 2 s. */
static bool t_answered(store_redis *s, const store_write *w)
{
    for (int i = 0; i < 400; i++) {
        if (store_redis_write_answered(s, w)) return true;
        usleep(5000);
    }
    return false;
}

/* A write sent ahead goes on a connection of its own: Redis runs the next batch's reads without
 * waiting for it (here it cannot run it at all: writes are paused), the reads see it all the same,
 * and its replies are taken without waiting once they are in. */
Test(store_redis, sent_ahead_writes_do_not_hold_up_reads_and_are_taken_without_waiting)
{
    T_STORE("sa:");
    perr err = {{0}};
    t_waiting(st, "005R", "005M", PROV_ACTIVE); /* a script, whose reply is an array */
    store_write *w;
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    store_redis_reset(s);
    cr_assert_not(store_redis_write_answered(s, w), "sealed, not sent");
    freeReplyObject(redisCommand(c, "CLIENT PAUSE 20000 WRITE"));
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_send_sealed(s, w, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_send_sealed(s, w, &err), 0, "sending twice sends once");
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2, "a connection opened, one send");

    /* a read, answered within the store's 3 s timeout while the write waits */
    const char *ids[] = {"005R", "005M"};
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(t_cmd_int(c, "EXISTS sa:u:005R"), 0, "Redis has not applied it");
    user_state *r2 = st->get(st->ctx, "005R");
    cr_assert(r2);
    cr_assert_eq(r2->status, PROV_ACTIVE, "read from the write");
    const char *const *reports;
    cr_assert_eq(st->links(st->ctx, "005M", &reports), 1);
    cr_assert_not(store_redis_write_answered(s, w), "paused: no reply yet, and no wait for one");

    freeReplyObject(redisCommand(c, "CLIENT UNPAUSE"));
    cr_assert(t_answered(s, w));
    cr_assert_eq(t_cmd_int(c, "EXISTS sa:u:005R"), 1, "applied");
    store_redis_reset(s);
    rt = store_redis_get_stats(s)->round_trips;
    store_late late = {0};
    cr_assert_eq(store_redis_write_sealed(s, w, &late, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "its result was in already");
    cr_assert_eq(late.n, 0);
    store_late_free(&late);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER sa:w:005M 005R"), 1);
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "the connections are in step: %s",
                 err.msg);
    t_store_done(s, c);
}

/* The number of clients Redis has connected, this test's own included. */
static long long t_clients(redisContext *c)
{
    char *list = t_cmd_str(c, "CLIENT LIST");
    long long n = 0;
    for (const char *p = list; (p = strchr(p, '\n')); p++)
        n++;
    free(list);
    return n;
}

/* writes_ahead: the write connection is opened with the store (a second client at once), and
 * sending a write ahead then opens nothing. */
Test(store_redis, writes_ahead_opens_the_write_connection_at_once)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    long long before = t_clients(c);
    store_redis *s = t_open_ahead(r, "wa:");
    perr err = {{0}};
    cr_assert_eq(t_clients(c), before + 2);
    engine_store *st = store_redis_iface(s);
    t_waiting(st, "005R", "005M", PROV_ACTIVE);
    store_write *w;
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    store_redis_reset(s);
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_send_sealed(s, w, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "no handshake: one send");
    cr_assert(t_answered(s, w));
    cr_assert_eq(t_clients(c), before + 2);
    store_late late = {0};
    cr_assert_eq(store_redis_write_sealed(s, w, &late, &err), 0, "%s", err.msg);
    store_late_free(&late);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER wa:w:005M 005R"), 1);
    redisFree(c);
    store_redis_close(s);
}

/* Replies taken as they come: one of ~90 KB, which the reader gets in several reads and polls, is
 * put together, and the replies before and after it go to their own writes. */
Test(store_redis, sent_ahead_replies_are_put_together_across_polls)
{
    T_STORE("sp:");
    perr err = {{0}};
    /* reports another instance registered for 1BIG: its put, becoming active, returns them all */
    for (int i = 0; i < 2000; i++)
        freeReplyObject(redisCommand(c, "SADD sp:w:1BIG report-of-another-instance-%04d", i));
    store_write *w[3];
    char id[16], mgr[16];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 300; i++) { /* scripts: replies of nested arrays */
            snprintf(id, sizeof id, "%dR%04d", k, i);
            snprintf(mgr, sizeof mgr, "%dM%02d", k, i % 7);
            t_waiting(st, id, mgr, PROV_ACTIVE);
            if (k == 1 && i == 150) t_waiting(st, "1BIG", "1M00", PROV_ACTIVE);
        }
        cr_assert_eq(store_redis_seal(s, &w[k], &err), 0, "%s", err.msg);
        store_redis_reset(s);
    }
    for (int k = 0; k < 3; k++)
        cr_assert_eq(store_redis_send_sealed(s, w[k], &err), 0, "%s", err.msg);
    int polls = 0;
    for (int k = 0; k < 3; k++)
        for (; polls < 40000 && !store_redis_write_answered(s, w[k]); polls++)
            usleep(50);
    for (int k = 0; k < 3; k++) {
        cr_assert(store_redis_write_answered(s, w[k]), "write %d", k);
        store_late late = {0};
        uint64_t rt = store_redis_get_stats(s)->round_trips;
        cr_assert_eq(store_redis_write_sealed(s, w[k], &late, &err), 0, "%s", err.msg);
        cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "write %d: not sent again", k);
        cr_assert_eq(late.n, k == 1 ? 1 : 0, "write %d: late %zu", k, late.n);
        if (k == 1) cr_assert_str_eq(late.managers[0], "1BIG");
        store_late_free(&late);
    }
    cr_assert_eq(t_cmd_int(c, "SCARD sp:w:2M06"), 42);
    cr_assert_eq(t_cmd_int(c, "EXISTS sp:u:0R0299"), 1);
    t_store_done(s, c);
}

/* Redis closes the idle write connection (its `timeout`, a CLIENT KILL): the next write sent ahead
 * finds it closed, when sent or when its replies are looked for, and is stored all the same; the
 * one after it goes on a new write connection. */
Test(store_redis, a_write_connection_closed_by_redis_is_opened_again)
{
    T_STORE_WITH(t_open_ahead, "wk:");
    perr err = {{0}};
    freeReplyObject(redisCommand(c, "CLIENT KILL SKIPME yes")); /* both of the store's */
    char id[16];
    for (int k = 0; k < 2; k++) {
        snprintf(id, sizeof id, "005K%d", k);
        t_waiting(st, id, "005M", PROV_ACTIVE);
        store_write *w;
        cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
        store_redis_reset(s);
        (void)store_redis_send_sealed(s, w, &err); /* may fail: write_sealed sends it again */
        (void)t_answered(s, w);
        store_late late = {0};
        int rc = store_redis_write_sealed(s, w, &late, &err);
        for (int i = 0; rc < 0 && i < 3; i++) /* the service retries the same call */
            rc = store_redis_write_sealed(s, w, &late, &err);
        cr_assert_eq(rc, 0, "write %d: %s", k, err.msg);
        store_late_free(&late);
        cr_assert_eq(t_cmd_int(c, "SISMEMBER wk:w:005M %s", id), 1, "write %d stored", k);
    }
    cr_assert_eq(t_clients(c), 3, "this test's, and the store's two again");
    t_store_done(s, c);
}

/* A user written by two writes sent ahead, the first of which has to go again (a NOSCRIPT after
 * SCRIPT FLUSH: its own plain HSET was applied, its script was not): the second was applied before
 * the first goes again, so it goes again too, and the user keeps the newer state. */
Test(store_redis, a_write_sent_again_is_followed_by_the_writes_sent_after_it)
{
    /* both connections open before the flush: a new one would load the scripts again */
    T_STORE_WITH(t_open_ahead, "ra:");
    perr err = {{0}};
    store_write *w[2];
    const char *titles[2] = {"older", "newer"};
    for (int k = 0; k < 2; k++) {
        user_state *u = st->get_or_create(st->ctx, "005X"); /* no script: a plain HSET */
        value_t v = value_str(titles[k]);
        user_state_set(u, "Title", &v);
        st->changed(st->ctx, u);
        if (k == 0) st->link_add(st->ctx, "005M", "005Y"); /* the report not written: a script */
        cr_assert_eq(store_redis_seal(s, &w[k], &err), 0, "%s", err.msg);
        store_redis_reset(s);
    }
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(store_redis_send_sealed(s, w[k], &err), 0, "%s", err.msg);
        cr_assert(t_answered(s, w[k]));
    }
    for (int k = 0; k < 2; k++) {
        store_late late = {0};
        cr_assert_eq(store_redis_write_sealed(s, w[k], &late, &err), 0, "%s", err.msg);
        store_late_free(&late);
    }
    const char *ids[] = {"005X"};
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    const value_t *t = user_state_get(st->get(st->ctx, "005X"), "Title");
    cr_assert(t && t->type == VAL_STR);
    cr_assert_str_eq(t->s, "newer");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ra:w:005M 005Y"), 1, "the script's write, loaded again");
    t_store_done(s, c);
}

/* The connection breaks before a write sent ahead is answered: taking the result sends it again
 * in full (it is idempotent), on a fresh connection. A NOSCRIPT in its replies
 * does the same with the scripts loaded in front. */
Test(store_redis, sent_ahead_writes_survive_a_lost_connection_and_a_script_flush)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "sl:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    t_activate(st, "005A");
    st->link_add(st->ctx, "005M", "005A");
    store_write *w;
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    redisContext *c0 = t_raw(r);
    freeReplyObject(redisCommand(c0, "CLIENT PAUSE 10000 WRITE")); /* it is never answered */
    cr_assert_eq(store_redis_send_sealed(s, w, &err), 0, "%s", err.msg);
    redisFree(c0);
    t_redis_kill(r);
    t_redis_restart(r); /* empty: only a write sent again can put the user there */
    /* a read first: its replies are its own, not taken for the lost write's */
    const char *ids[] = {"005A"};
    int rc = store_redis_prefetch(s, ids, 1, &err);
    for (int i = 0; rc < 0 && i < 3; i++) /* the service retries the same call */
        rc = store_redis_prefetch(s, ids, 1, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_not(store_redis_write_answered(s, w), "to be sent again");
    store_redis_reset(s);
    store_late late = {0};
    rc = store_redis_write_sealed(s, w, &late, &err);
    for (int i = 0; rc < 0 && i < 3; i++) /* the service retries the same call */
        rc = store_redis_write_sealed(s, w, &late, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    store_late_free(&late);
    redisContext *c = t_raw(r);
    cr_assert_str_eq(t_status(c, "sl:u:005A"), "active");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER sl:w:005M 005A"), 1);

    store_redis_reset(s);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    st->link_add(st->ctx, "005M", "005B"); /* the report not written: the link script */
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_send_sealed(s, w, &err), 0, "%s", err.msg);
    cr_assert(t_answered(s, w), "its NOSCRIPT replies are in");
    cr_assert_eq(store_redis_write_sealed(s, w, &late, &err), 0, "%s", err.msg);
    store_late_free(&late);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER sl:w:005M 005B"), 1, "written with the scripts loaded");
    redisFree(c);
    store_redis_close(s);
}

/* ---------------------------------------------------------------- the R6.3 race */

/* Store level: A registers R->M while B stores M as active; whichever flushes second reports M. */
static void t_race_store(t_redis *r, const char *prefix, bool link_first)
{
    store_redis *a = t_open(r, prefix), *b = t_open(r, prefix);
    engine_store *sa = store_redis_iface(a), *sb = store_redis_iface(b);
    perr err = {{0}};
    const char *ra[] = {"005R", "005M"}, *rb[] = {"005M"};
    cr_assert_eq(store_redis_prefetch(a, ra, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_prefetch(b, rb, 1, &err), 0, "%s", err.msg);
    cr_assert_null(sa->get(sa->ctx, "005M"), "A sees no manager");
    t_waiting(sa, "005R", "005M", PROV_ACTIVE);
    const char *const *reports;
    cr_assert_eq(sb->links(sb->ctx, "005M", &reports), 0, "B sees no waiting report");
    user_state *m = sb->get_or_create(sb->ctx, "005M");
    m->status = PROV_ACTIVE;
    sb->changed(sb->ctx, m);

    store_redis *first = link_first ? a : b, *second = link_first ? b : a;
    t_flush_ok(first, 0);
    store_late late = {0};
    cr_assert_eq(store_redis_flush(second, &late, &err), 0, "%s", err.msg);
    cr_assert_eq(late.n, 1, "the second flush sees the first");
    cr_assert_str_eq(late.managers[0], "005M");
    store_late_free(&late);
    /* the late manager is read afresh: the second instance now sees what the first wrote */
    engine_store *s2 = store_redis_iface(second);
    user_state *m2 = s2->get(s2->ctx, "005M");
    cr_assert(m2);
    cr_assert_eq(m2->status, PROV_ACTIVE);
    size_t n = s2->links(s2->ctx, "005M", &reports);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(reports[0], "005R");
    store_redis_close(a);
    store_redis_close(b);
}

Test(store_redis, race_link_registered_then_manager_stored_active)
{
    t_race_store(t_redis_start(NULL), "race1:", true);
}

Test(store_redis, race_manager_stored_active_then_link_registered)
{
    t_race_store(t_redis_start(NULL), "race2:", false);
}

/* The store keeps the states changed since the last seal so that sealing does not visit every
 * cached user; past its limit (a cache kept across batches without a seal: a dry run) it visits
 * them all, and a state changed then is still written. */
Test(store_redis, states_changed_past_the_list_limit_are_still_written)
{
    T_STORE("cl:");
    user_state *a = st->get_or_create(st->ctx, "005A");
    user_state *b = st->get_or_create(st->ctx, "005B");
    a->status = b->status = PROV_ACTIVE;
    for (int i = 0; i < 70000; i++)
        st->changed(st->ctx, i % 2 ? a : b);
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "SCARD cl:active"), 2, "both written, as active");
    cr_assert_eq(t_cmd_int(c, "EXISTS cl:u:005A cl:u:005B"), 2);
    b->status = PROV_DEACTIVATED; /* and the list is back after the seal */
    st->changed(st->ctx, b);
    t_flush_ok(s, 0);
    cr_assert_eq(t_cmd_int(c, "SCARD cl:active"), 1);
    t_store_done(s, c);
}

/* Check (b) with more known reports than a scan is for: a manager that becomes active while
 * twenty reports this instance read wait for it is not late; one more, registered by another
 * instance after the read, makes it late. */
Test(store_redis, check_b_finds_an_unknown_report_among_many_known)
{
    t_redis *r = t_redis_start(NULL);
    for (int extra = 0; extra < 2; extra++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "many%d:", extra);
        store_redis *a = t_open(r, prefix);
        engine_store *sa = store_redis_iface(a);
        perr err = {{0}};
        char ids[20][24];
        const char *batch[21];
        t_ids(ids, batch, 20, "005R");
        batch[20] = "005M";
        cr_assert_eq(store_redis_prefetch(a, batch, 21, &err), 0, "%s", err.msg);
        for (int i = 0; i < 20; i++)
            t_waiting(sa, ids[i], "005M", PROV_ACTIVE);
        t_flush_ok(a, 0);
        store_redis_reset(a);
        cr_assert_eq(store_redis_prefetch(a, batch + 20, 1, &err), 0, "%s", err.msg);
        const char *const *reports;
        cr_assert_eq(sa->links(sa->ctx, "005M", &reports), 20);
        if (extra) {
            store_redis *b = t_open(r, prefix);
            const char *rb[] = {"005RX", "005M"};
            cr_assert_eq(store_redis_prefetch(b, rb, 2, &err), 0, "%s", err.msg);
            t_waiting(store_redis_iface(b), "005RX", "005M", PROV_ACTIVE);
            t_flush_ok(b, 0);
            store_redis_close(b);
        }
        user_state *m = sa->get_or_create(sa->ctx, "005M");
        m->status = PROV_ACTIVE;
        sa->changed(sa->ctx, m);
        for (int i = 0; i < 20; i++) /* placed, as the engine does */
            sa->link_del(sa->ctx, "005M", ids[i]);
        t_flush_ok(a, (size_t)extra);
        store_redis_close(a);
    }
}

#define HDR(id, ts, extra)                                                                         \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"" id                         \
    "\"],\"changeType\":\"CREATE\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"    \
    "\"transactionKey\":\"tx" #ts "\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts               \
    ",\"commitNumber\":" #ts ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"},"                    \
    "\"Email\":\"" id "@acme.com\",\"FirstName\":\"F\",\"LastName\":\"L\",\"IsActive\":true" extra \
    "}"

static const char *T_SETTINGS = "company:\n  primary_domain: acme.com\n"
                                "assignments:\n  - name: Everyone\n    seats: [recorder]\n";

typedef struct t_instance {
    store_redis *s;
    engine *e;
    t_cmds out;
    engine_hooks h;
    arena mem;
    event ev;
} t_instance;

static void t_instance_start(t_instance *in, const t_redis *r, const char *prefix,
                             const config *cfg, const char *line, const char *const *ids,
                             size_t n_ids)
{
    in->s = t_open(r, prefix);
    in->e = engine_new(cfg, store_redis_iface(in->s), &T_OPTS);
    in->h = (engine_hooks){.ctx = &in->out, .emit = t_on_emit};
    arena_init(&in->mem, 4096);
    perr err = {{0}};
    cr_assert_eq(store_redis_prefetch(in->s, ids, n_ids, &err), 0, "%s", err.msg);
    engine_start(in->e, &in->h);
    cr_assert_eq(event_from_json(line, strlen(line), NULL, &in->mem, &in->ev, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(engine_apply(in->e, &in->ev, &in->h, &err), 0, "%s", err.msg);
}

static void t_instance_stop(t_instance *in)
{
    engine_free(in->e);
    store_redis_close(in->s);
    arena_free(&in->mem);
    t_cmds_free(&in->out);
}

static size_t t_count(const t_cmds *o, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++)
        if (strstr(o->lines[i], needle)) n++;
    return n;
}

/* Engine level: the report's instance and the manager's instance decide at the same moment; in
 * either flush order exactly one SET_MANAGER places the report, and nothing is left waiting. */
static void t_race_engine(const char *prefix, bool report_first)
{
    t_redis *r = t_redis_start(NULL);
    config *cfg;
    perr err = {{0}};
    cr_assert_eq(config_load_string(T_SETTINGS, strlen(T_SETTINGS), "t.yaml", &cfg, &err), 0, "%s",
                 err.msg);
    const char *rep_ev = HDR("005REP", 1, ",\"ManagerId\":\"005MGR\"");
    const char *mgr_ev = HDR("005MGR", 2, "");
    const char *ids_a[] = {"005REP", "005MGR"}, *ids_b[] = {"005MGR"};
    t_instance a = {0}, b = {0};
    t_instance_start(&a, r, prefix, cfg, rep_ev, ids_a, 2);
    t_instance_start(&b, r, prefix, cfg, mgr_ev, ids_b, 1);
    cr_assert_eq(t_count(&a.out, "CREATE_USER"), 1);
    cr_assert_eq(t_count(&b.out, "CREATE_USER"), 1);
    cr_assert_eq(t_count(&a.out, "SET_MANAGER") + t_count(&b.out, "SET_MANAGER"), 0,
                 "neither instance can place the report yet");

    t_instance *first = report_first ? &a : &b, *second = report_first ? &b : &a;
    size_t late_first = 0, late_second = 0;
    t_flush_resolving(first->s, first->e, &first->h, &late_first);
    t_flush_resolving(second->s, second->e, &second->h, &late_second);
    cr_assert_eq(late_first, 0);
    cr_assert_eq(late_second, 1, "the second flush sees the race");
    cr_assert_eq(t_count(&second->out, "\"type\":\"SET_MANAGER\""), 1);
    cr_assert_eq(t_count(&second->out, "\"manager_sf_user_id\":\"005MGR\""), 1);
    cr_assert_eq(t_count(&first->out, "SET_MANAGER"), 0);

    /* what is stored: the report placed, no link left waiting */
    store_redis *check = t_open(r, prefix);
    engine_store *st = store_redis_iface(check);
    user_state *rep = st->get(st->ctx, "005REP");
    cr_assert(rep);
    cr_assert_str_eq(rep->gong_manager, "005MGR");
    cr_assert_null(rep->waiting_for);
    const char *const *reports;
    cr_assert_eq(st->links(st->ctx, "005MGR", &reports), 0);
    store_redis_close(check);
    t_instance_stop(&a);
    t_instance_stop(&b);
    config_free(cfg);
}

Test(store_redis, race_engine_report_instance_flushes_first) { t_race_engine("re1:", true); }

Test(store_redis, race_engine_manager_instance_flushes_first) { t_race_engine("re2:", false); }

/* The second flush reports the race, then the process dies before resolving it. The replayed
 * batch (both events again: duplicates, R1.4) still places the report: the active manager with a
 * waiting report is reported late again (store_redis.c, check (c)). */
Test(store_redis, race_resolution_lost_to_a_crash_is_redone_by_the_replay)
{
    t_redis *r = t_redis_start(NULL);
    config *cfg;
    perr err = {{0}};
    cr_assert_eq(config_load_string(T_SETTINGS, strlen(T_SETTINGS), "t.yaml", &cfg, &err), 0, "%s",
                 err.msg);
    const char *rep_ev = HDR("005REP", 1, ",\"ManagerId\":\"005MGR\"");
    const char *mgr_ev = HDR("005MGR", 2, "");
    const char *ids_a[] = {"005REP", "005MGR"}, *ids_b[] = {"005MGR"};
    t_instance a = {0}, b = {0};
    t_instance_start(&a, r, "crash:", cfg, rep_ev, ids_a, 2);
    t_instance_start(&b, r, "crash:", cfg, mgr_ev, ids_b, 1);
    t_flush_ok(a.s, 0);
    t_flush_ok(b.s, 1); /* late, and then the process dies */
    t_instance_stop(&a);
    t_instance_stop(&b);

    t_cmds out = {0};
    t_events evs = {0};
    char *lines[2] = {(char *)rep_ev, (char *)mgr_ev};
    evs.lines = lines;
    evs.n = 2;
    uint64_t misses = 0;
    t_run_redis(r, "crash:", cfg, &evs, 10, true, &out, &misses);
    cr_assert_eq(out.n, 1, "only the lost placement: %zu commands", out.n);
    cr_assert(strstr(out.lines[0], "\"type\":\"SET_MANAGER\"") &&
                  strstr(out.lines[0], "\"sf_user_id\":\"005REP\"") &&
                  strstr(out.lines[0], "\"manager_sf_user_id\":\"005MGR\""),
              "%s", out.lines[0]);
    t_cmds_free(&out);
    /* and a second replay finds nothing left to do */
    t_run_redis(r, "crash:", cfg, &evs, 10, true, &out, NULL);
    cr_assert_eq(out.n, 0);
    t_cmds_free(&out);
    config_free(cfg);
}

/* ---------------------------------------------------------------- corrupt values */

/* The prefetch of id fails with an error naming key (and saying words, when given). */
static void t_prefetch_refused(store_redis *s, const char *id, const char *key, const char *words)
{
    perr err = {{0}};
    const char *ids[] = {id};
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), -1, "%s", id);
    cr_assert(strstr(err.msg, key) && (!words || strstr(err.msg, words)), "%s", err.msg);
    store_redis_reset(s);
}

Test(store_redis, corrupt_values_are_errors_naming_the_key)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    store_redis *s = t_open(r, "cx:");
    engine_store *st = store_redis_iface(s);
    t_full_user(st, "005GOOD");
    t_flush_ok(s, 0);
    store_redis_reset(s);

    redisReply *good = redisCommand(c, "GET cx:u:005GOOD");
    cr_assert(good && good->type == REDIS_REPLY_STRING);
    /* every truncation of a valid blob is refused, never a crash */
    for (size_t cut = 0; cut < good->len; cut += 7) {
        freeReplyObject(redisCommand(c, "SET cx:u:005CUT %b", good->str, cut));
        perr err = {{0}};
        const char *ids[] = {"005CUT"};
        cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), -1, "cut at %zu", cut);
        cr_assert(strstr(err.msg, "cx:u:005CUT"), "%s", err.msg);
        store_redis_reset(s);
    }
    /* flipped bytes: refused or read, never a crash (ASan run) */
    char *bad = malloc(good->len);
    for (size_t i = 2; i < good->len; i++) {
        memcpy(bad, good->str, good->len);
        bad[i] = (char)(bad[i] ^ 0xa5);
        freeReplyObject(redisCommand(c, "SET cx:u:005FLIP %b", bad, good->len));
        perr err = {{0}};
        const char *ids[] = {"005FLIP"};
        if (store_redis_prefetch(s, ids, 1, &err) < 0)
            cr_assert(strstr(err.msg, "cx:u:005FLIP"), "%s", err.msg);
        store_redis_reset(s);
    }
    free(bad);
    /* the state of another user under this key (in the hash form of earlier builds) */
    freeReplyObject(
        redisCommand(c, "HSET cx:u:005OTHER status active blob %b", good->str, good->len));
    freeReplyObject(good);

    freeReplyObject(redisCommand(c, "HSET cx:u:005BAD status active blob garbage"));
    freeReplyObject(redisCommand(c, "SET cx:u:005PLAIN plain"));
    freeReplyObject(redisCommand(c, "RPUSH cx:u:005STR plain")); /* neither form */
    freeReplyObject(redisCommand(c, "SET cx:w:005WSTR plain"));
    t_prefetch_refused(s, "005BAD", "cx:u:005BAD", NULL);
    t_prefetch_refused(s, "005OTHER", "cx:u:005OTHER", "another user");
    t_prefetch_refused(s, "005STR", "cx:u:005STR", "WRONGTYPE");
    t_prefetch_refused(s, "005PLAIN", "cx:u:005PLAIN", "not hold a user state");
    t_prefetch_refused(s, "005WSTR", "cx:w:005WSTR", NULL);
    perr err = {{0}};

    /* read on the spot inside an engine call: NULL, the batch is marked failed, flush refuses */
    cr_assert_null(st->get(st->ctx, "005BAD"));
    cr_assert(store_redis_failed(s, &err));
    cr_assert(strstr(err.msg, "cx:u:005BAD"), "%s", err.msg);
    /* the batch is lost: no more reads for it (each could wait a timeout), stand-ins only */
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_null(st->get(st->ctx, "005GOOD"));
    user_state *g = st->get_or_create(st->ctx, "005GOOD");
    cr_assert(g);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt);
    st->changed(st->ctx, g);
    cr_assert_eq(store_redis_flush(s, NULL, &err), -1);
    cr_assert(strstr(err.msg, "cx:u:005BAD"), "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt, "nothing written");
    store_redis_reset(s);
    cr_assert_not(store_redis_failed(s, &err), "reset starts a clean batch");
    g = st->get(st->ctx, "005GOOD");
    cr_assert(g, "read again in the next batch");
    cr_assert_str_eq(user_state_get(g, "FirstName")->s, "Zoë");
    redisFree(c);
    store_redis_close(s);
}

/* ---------------------------------------------------------------- blob formats */

/* A state written by the build before format 2 (its store wrote these bytes): Email, FirstName,
 * IsActive, Quota__c, ManagerId; Email, FirstName and active sent; active under 'Sales'. */
static const char V1_BLOB[] =
    "\x50\x01\x05\x01\x00\x82\xa9\xb9\xea\xd6\x66\x0e\x06\x05\x30\x30\x35\x56\x31\x06\x53\x61\x6c"
    "\x65\x73\x17\x53\x61\x6c\x65\x73\x23\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x61\x62\x63\x64"
    "\x65\x66\x07\x30\x30\x35\x4d\x47\x52\x00\x0a\x04\x0c\x61\x6e\x6e\x40\x61\x63\x6d\x65\x2e\x63"
    "\x6f\x6d\x04\x03\x41\x6e\x6e\x00\x00\x00\x00\x00\x02\x00\x00\x05\x05\x45\x6d\x61\x69\x6c\x04"
    "\x0c\x61\x6e\x6e\x40\x61\x63\x6d\x65\x2e\x63\x6f\x6d\x09\x46\x69\x72\x73\x74\x4e\x61\x6d\x65"
    "\x04\x03\x41\x6e\x6e\x08\x49\x73\x41\x63\x74\x69\x76\x65\x02\x08\x51\x75\x6f\x74\x61\x5f\x5f"
    "\x63\x03\x00\x00\x00\x00\x00\x00\x04\x40\x09\x4d\x61\x6e\x61\x67\x65\x72\x49\x64\x04\x06\x30"
    "\x30\x35\x4d\x47\x52";

static size_t t_occurs(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle), count = 0;
    for (size_t i = 0; i + k <= n; i++)
        count += memcmp(hay + i, needle, k) == 0;
    return count;
}

Test(store_redis, a_state_in_format_1_is_still_read_and_written_in_format_2)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    freeReplyObject(
        redisCommand(c, "HSET f1:u:005V1 status active blob %b", V1_BLOB, sizeof V1_BLOB - 1));
    store_redis *s = t_open(r, "f1:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get(st->ctx, "005V1");
    cr_assert(u);
    cr_assert(u->has_pos && u->pos.commit_timestamp == 1764001000001LL &&
              u->pos.commit_number == 7 && u->pos.sequence_number == 3);
    cr_assert_eq(u->status, PROV_ACTIVE);
    cr_assert(u->in_scope);
    cr_assert_str_eq(u->assignment, "Sales");
    cr_assert_str_eq(u->applied_settings_of, "Sales#0123456789abcdef");
    cr_assert_str_eq(u->gong_manager, "005MGR");
    cr_assert_null(u->waiting_for);
    cr_assert_eq(u->n_fields, 5);
    cr_assert_str_eq(user_state_get(u, "Email")->s, "ann@acme.com");
    cr_assert_str_eq(user_state_get(u, "FirstName")->s, "Ann");
    cr_assert(user_state_get(u, "IsActive")->b);
    cr_assert_float_eq(user_state_get(u, "Quota__c")->num, 2.5, 1e-12);
    cr_assert_str_eq(user_state_get(u, "ManagerId")->s, "005MGR");
    cr_assert_str_eq(u->sent[ATTR_EMAIL].s, "ann@acme.com");
    cr_assert_str_eq(u->sent[ATTR_FIRSTNAME].s, "Ann");
    cr_assert(u->sent[ATTR_ACTIVE].type == VAL_BOOL && u->sent[ATTR_ACTIVE].b);
    cr_assert_eq(u->sent[ATTR_LASTNAME].type, VAL_NULL);
    cr_assert_not(u->held, "active in scope: no deactivation held");
    user_state *want = user_state_new("005V1");
    user_state_copy(want, u);

    /* written again: format 2, the known names and the repeated sent values not spelled out */
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    redisReply *b = redisCommand(c, "GET f1:u:005V1");
    cr_assert(b && b->type == REDIS_REPLY_STRING);
    cr_assert(b->len > 2 && b->str[0] == 'P' && b->str[1] == 2);
    cr_assert_lt(b->len, sizeof V1_BLOB - 1 - 40, "%zu bytes", b->len);
    cr_assert_eq(t_occurs(b->str, b->len, "FirstName"), 0);
    cr_assert_eq(t_occurs(b->str, b->len, "Quota__c"), 0);
    cr_assert_eq(t_occurs(b->str, b->len, "ann@acme.com"), 1, "the email is written once");
    freeReplyObject(b);
    store_redis_reset(s);
    t_assert_same_state(want, st->get(st->ctx, "005V1"));
    user_state_free(want);
    redisFree(c);
    store_redis_close(s);
}

/* Rewrites a user's key in the form builds before this one wrote: a HASH with the status beside
 * the blob. */
static void t_to_hash_form(redisContext *c, const char *key)
{
    redisReply *b = redisCommand(c, "GET %s", key);
    cr_assert(b && b->type == REDIS_REPLY_STRING && b->len > 3 && (unsigned char)b->str[3] < 3,
              "%s", key);
    static const char *const names[] = {"never", "active", "deactivated"};
    const char *status = names[(unsigned char)b->str[3]];
    freeReplyObject(redisCommand(c, "DEL %s", key));
    freeReplyObject(redisCommand(c, "HSET %s status %s blob %b", key, status, b->str, b->len));
    freeReplyObject(b);
    cr_assert_str_eq(t_status(c, key), status);
}

static bool t_is_type(redisContext *c, const char *key, const char *type)
{
    redisReply *r = redisCommand(c, "TYPE %s", key);
    bool is = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, type) == 0;
    freeReplyObject(r);
    return is;
}

/* Stores a full user `hashed` and the active users `actives` as this build does, then turns
 * `hashed` into the hash form of builds before; returns a copy of its state to compare with. */
static user_state *t_hash_form_fixture(const t_redis *r, redisContext *c, const char *prefix,
                                       const char *hashed, const char *const *actives, size_t n)
{
    store_redis *s = t_open(r, prefix);
    engine_store *st = store_redis_iface(s);
    user_state *want = user_state_new(hashed);
    user_state_copy(want, t_full_user(st, hashed));
    for (size_t i = 0; i < n; i++) {
        st->get_or_create(st->ctx, actives[i])->status = PROV_ACTIVE;
        st->changed(st->ctx, st->get(st->ctx, actives[i]));
    }
    t_flush_ok(s, 0);
    store_redis_close(s);
    char key[96];
    snprintf(key, sizeof key, "%su:%s", prefix, hashed);
    cr_assert(t_is_type(c, key, "string"));
    t_to_hash_form(c, key);
    return want;
}

/* An MGET answers nil for a key in the hash form as for no key: a prefetch that meets nils asks
 * whether any of those keys exist, and reads them one by one only then. Absent, hash-form and
 * string users in one prefetch each come out as they are in Redis. */
Test(store_redis, a_prefetch_tells_users_not_in_redis_from_the_hash_form)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    const char *actives[] = {"005S"};
    user_state *want = t_hash_form_fixture(r, c, "mx:", "005H", actives, 1);
    store_redis *s = t_open(r, "mx:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    const char *ids[] = {"005A", "005H", "005S", "005B"};
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    long long gets = t_calls(c, "get"), hgets = t_calls(c, "hget");
    cr_assert_eq(store_redis_prefetch(s, ids, 4, &err), 0, "%s", err.msg);
    /* MGET (and the index); EXISTS of A, H, B: 1; GET of the three; HGET of H */
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 4);
    cr_assert_eq(t_calls(c, "get") - gets, 3);
    cr_assert_eq(t_calls(c, "hget") - hgets, 1);
    cr_assert_eq(store_redis_get_stats(s)->old_form, 1);
    uint64_t misses = store_redis_get_stats(s)->misses;
    cr_assert_null(st->get(st->ctx, "005A"));
    cr_assert_null(st->get(st->ctx, "005B"));
    t_assert_same_state(want, st->get(st->ctx, "005H"));
    user_state *sv = st->get(st->ctx, "005S");
    cr_assert(sv);
    cr_assert_eq(sv->status, PROV_ACTIVE);
    cr_assert_eq(store_redis_get_stats(s)->misses, misses, "all four cached");
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 4);
    user_state_free(want);
    t_store_done(s, c);
}

/* Builds before this one kept a user in a HASH (status, blob). This one reads that form (prefetch
 * and miss), reads a manager's status in it (check (a) of R6.3, the provisioned count of R8.3, a
 * dry run's too), and its next write of the user replaces the hash with the string. */
Test(store_redis, users_in_the_hash_form_of_earlier_builds_are_read_and_replaced_by_a_write)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    const char *actives[] = {"005M", "005A"};
    user_state *want = t_hash_form_fixture(r, c, "hf:", "005U", actives, 2);
    t_to_hash_form(c, "hf:u:005M");
    freeReplyObject(redisCommand(c, "DEL hf:active")); /* counted below, from the states */

    /* the provisioned count reads either form: M (hash) and A (string) are active */
    perr err = {{0}};
    store_redis *s = t_open(r, "hf:");
    engine_store *st = store_redis_iface(s);
    cr_assert_eq(store_redis_count_provisioned(s, false, &err), 0, "%s", err.msg);
    cr_assert_eq(st->company(st->ctx)->provisioned, 2, "a dry run's count");
    store_redis_close(s);
    s = t_open(r, "hf:");
    st = store_redis_iface(s);
    cr_assert_eq(store_redis_count_provisioned(s, true, &err), 0, "%s", err.msg);
    cr_assert_eq(st->company(st->ctx)->provisioned, 2);
    cr_assert_eq(t_cmd_int(c, "SCARD hf:active"), 2);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER hf:active 005M"), 1);

    /* read by a prefetch: its MGET answers nil, EXISTS says the key is there, GET answers
     * WRONGTYPE, HGET reads the blob; by a miss (GET): one round trip more, for the blob */
    const char *ids[] = {"005U"};
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 4);
    t_assert_same_state(want, st->get(st->ctx, "005U"));
    user_state *m = st->get(st->ctx, "005M");
    cr_assert(m, "read on the spot");
    cr_assert_eq(m->status, PROV_ACTIVE);
    cr_assert_eq(store_redis_get_stats(s)->misses, 1);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 6);
    cr_assert_eq(store_redis_get_stats(s)->old_form, 2, "U and M, each read in the hash form");

    /* check (a): a report registering with M, whose key is still a hash, finds it late (its
     * resolution reads it afresh) */
    t_waiting(st, "005R", "005M", PROV_NEVER);
    store_late late = {0};
    cr_assert_eq(store_redis_flush(s, &late, &err), 0, "%s", err.msg);
    cr_assert_eq(late.n, 1);
    cr_assert_str_eq(late.managers[0], "005M");
    store_late_free(&late);
    cr_assert(t_is_type(c, "hf:u:005M", "hash"), "M was only read");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER hf:w:005M 005R"), 1);
    store_redis_reset(s);
    /* so does the script of a link written without its report's state, from the hash's status */
    st->link_add(st->ctx, "005M", "005R2");
    late = (store_late){0};
    cr_assert_eq(store_redis_flush(s, &late, &err), 0, "%s", err.msg);
    cr_assert_eq(late.n, 1);
    cr_assert_str_eq(late.managers[0], "005M");
    store_late_free(&late);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER hf:w:005M 005R2"), 1);
    store_redis_reset(s);

    /* the user's next write replaces the hash with the string, the same state */
    user_state *u = st->get(st->ctx, "005U");
    cr_assert(u);
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    cr_assert(t_is_type(c, "hf:u:005U", "string"));
    static const char *const names[] = {"never", "active", "deactivated"};
    cr_assert_str_eq(t_status(c, "hf:u:005U"), names[want->status]);
    store_redis_reset(s);
    t_assert_same_state(want, st->get(st->ctx, "005U"));
    user_state_free(want);
    t_store_done(s, c);
}

/* R8.3: a held deactivation is recorded in the state (flags bit5, with bit6 saying the state
 * records it); a state written before the bit was is held when active in Gong and out of scope,
 * which is all a hold was known by then. */
Test(store_redis, a_held_deactivation_is_recorded_and_inferred_in_states_written_before)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    store_redis *s = t_open(r, "h:");
    engine_store *st = store_redis_iface(s);
    const char *ids[] = {"005HELD", "005KEPT"};
    for (int i = 0; i < 2; i++) {
        user_state *u = st->get_or_create(st->ctx, ids[i]);
        u->status = PROV_ACTIVE;
        u->in_scope = false;
        u->reason = REASON_INACTIVE;
        u->held = i == 0;
        st->changed(st->ctx, u);
    }
    t_flush_ok(s, 0);
    store_redis_reset(s);
    cr_assert(st->get(st->ctx, "005HELD")->held);
    cr_assert_not(st->get(st->ctx, "005KEPT")->held, "kept active (keep_active), not held");
    /* the same states as a build before the bit wrote them */
    for (int i = 0; i < 2; i++) {
        redisReply *b = redisCommand(c, "GET h:u:%s", ids[i]);
        cr_assert(b && b->type == REDIS_REPLY_STRING && b->len > 3);
        cr_assert_eq((unsigned char)b->str[2] & 96, i == 0 ? 96 : 64, "flags %02x",
                     (unsigned char)b->str[2]);
        b->str[2] = (char)((unsigned char)b->str[2] & ~96u);
        freeReplyObject(redisCommand(c, "SET h:u:%s %b", ids[i], b->str, b->len));
        freeReplyObject(b);
    }
    store_redis_reset(s);
    cr_assert(st->get(st->ctx, "005HELD")->held);
    cr_assert(st->get(st->ctx, "005KEPT")->held, "active out of scope, written before the bit");
    redisFree(c);
    store_redis_close(s);
}

/* A state is encoded the same whatever was encoded before it (the crash tests compare stores
 * byte for byte): a sent value refers to the first field that has it. */
static void t_state_ab(engine_store *st, const char *id, const char *a, const char *b)
{
    user_state *u = st->get_or_create(st->ctx, id);
    value_t v = value_str(a);
    user_state_set(u, "Title", &v);
    v = value_str(b);
    user_state_set(u, "Email", &v);
    u->sent[ATTR_EMAIL] = user_state_dup_value(u, &v);
    st->changed(st->ctx, u);
}

Test(store_redis, the_same_state_is_the_same_bytes_whatever_came_before)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    store_redis *s1 = t_open(r, "d1:"), *s2 = t_open(r, "d2:");
    t_state_ab(store_redis_iface(s1), "005P", "a", "b"); /* its sent email is field 1 */
    t_flush_ok(s1, 0);
    store_redis_reset(s1);
    t_state_ab(store_redis_iface(s1), "005Q", "b", "b"); /* fields 0 and 1 both have it */
    t_flush_ok(s1, 0);
    t_state_ab(store_redis_iface(s2), "005Q", "b", "b");
    t_flush_ok(s2, 0);
    redisReply *x = redisCommand(c, "GET d1:u:005Q"), *y = redisCommand(c, "GET d2:u:005Q");
    cr_assert(x && y && x->type == REDIS_REPLY_STRING && y->type == REDIS_REPLY_STRING);
    cr_assert(x->len == y->len && memcmp(x->str, y->str, x->len) == 0);
    freeReplyObject(x);
    freeReplyObject(y);
    redisFree(c);
    store_redis_close(s1);
    store_redis_close(s2);
}

Test(store_redis, a_format_2_blob_naming_what_this_build_does_not_know_is_refused)
{
    t_redis *r = t_redis_start(NULL);
    redisContext *c = t_raw(r);
    /* header, id 005X, no strings; one field named by index 200 (past the table) */
    static const char unknown_name[] = "\x50\x02\x00\x00\x00\x04"
                                       "005X"
                                       "\x00\x00\x00\x00\x01\x91\x03\x00\x00";
    /* one field, Email (index 1) = null; one sent value: the value of field 1, past the fields */
    static const char ref_past[] = "\x50\x02\x00\x00\x00\x04"
                                   "005Y"
                                   "\x00\x00\x00\x00\x01\x03\x00\x01\x05\x01";
    /* the same, referring to field 0: read */
    static const char ref_ok[] = "\x50\x02\x00\x00\x00\x04"
                                 "005Z"
                                 "\x00\x00\x00\x00\x01\x03\x04\x01z\x01\x05\x00";
    freeReplyObject(redisCommand(c, "HSET fx:u:005X status never blob %b", unknown_name,
                                 sizeof unknown_name - 1));
    freeReplyObject(
        redisCommand(c, "HSET fx:u:005Y status never blob %b", ref_past, sizeof ref_past - 1));
    freeReplyObject(
        redisCommand(c, "HSET fx:u:005Z status never blob %b", ref_ok, sizeof ref_ok - 1));
    store_redis *s = t_open(r, "fx:");
    t_prefetch_refused(s, "005X", "fx:u:005X", "does not know");
    t_prefetch_refused(s, "005Y", "fx:u:005Y", "past the fields");
    perr err = {{0}};
    const char *ids[] = {"005Z"};
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get(st->ctx, "005Z");
    cr_assert(u);
    cr_assert_str_eq(user_state_get(u, "Email")->s, "z");
    cr_assert_str_eq(u->sent[0].s, "z");
    redisFree(c);
    store_redis_close(s);
}

/* ---------------------------------------------------------------- Redis down */

Test(store_redis, redis_down_gives_errors_and_restart_recovers)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "dn:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get_or_create(st->ctx, "005A");
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    store_redis_reset(s);

    t_redis_kill(r);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", r->port);
    perr err = {{0}};
    const char *ids[] = {"005A", "005B"};
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), -1);
    cr_assert(strstr(err.msg, where), "names the server: %s", err.msg);
    cr_assert_eq(store_redis_ping(s, &err), -1);
    cr_assert(strstr(err.msg, where), "%s", err.msg);
    u = st->get_or_create(st->ctx, "005C");
    st->changed(st->ctx, u);
    cr_assert(store_redis_failed(s, &err), "the read of 005C failed");
    cr_assert_eq(store_redis_flush(s, NULL, &err), -1);
    store_redis_reset(s);
    u = st->get_or_create(st->ctx, "005C"); /* no read: created knowingly */
    store_redis_reset(s);

    t_redis_restart(r);
    cr_assert_eq(store_redis_ping(s, &err), 0, "%s", err.msg);
    cr_assert_eq(store_redis_prefetch(s, ids, 2, &err), 0, "%s", err.msg);
    u = st->get_or_create(st->ctx, "005B");
    st->changed(st->ctx, u);
    st->link_add(st->ctx, "005M", "005B"); /* through the scripts, loaded again */
    t_flush_ok(s, 0);
    redisContext *c = t_raw(r);
    cr_assert_eq(t_cmd_int(c, "EXISTS dn:u:005B"), 1);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER dn:w:005M 005B"), 1);
    redisFree(c);

    /* a flush that fails keeps the batch: the same flush again (no reset) writes it all once
     * Redis is back (R9.2) */
    store_redis_reset(s);
    u = st->get_or_create(st->ctx, "005D");
    u->status = PROV_ACTIVE;
    st->changed(st->ctx, u);
    st->link_add(st->ctx, "005M", "005D");
    st->company(st->ctx)->n_sent = 7;
    st->company_changed(st->ctx);
    t_redis_kill(r);
    cr_assert_eq(store_redis_flush(s, NULL, &err), -1);
    cr_assert(strstr(err.msg, where), "%s", err.msg);
    cr_assert_eq(store_redis_flush(s, NULL, &err), -1, "still down");
    t_redis_restart(r);
    t_flush_ok(s, 0);
    c = t_raw(r);
    cr_assert_str_eq(t_status(c, "dn:u:005D"), "active");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER dn:w:005M 005D"), 1);
    char *n_sent = t_cmd_str(c, "HGET dn:company n_sent");
    cr_assert_str_eq(n_sent, "7");
    free(n_sent);
    redisFree(c);
    store_redis_close(s);

    /* opening against nothing: one clear line */
    t_redis_kill(r);
    store_redis *none = NULL;
    store_redis_opts o = {.url = r->url, .prefix = "dn:", .timeout_ms = 500};
    cr_assert_eq(store_redis_open(&o, &none, &err), -1);
    cr_assert_null(none);
    cr_assert(strstr(err.msg, "cannot connect") && strstr(err.msg, where), "%s", err.msg);
}

Test(store_redis, a_server_that_never_answers_times_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(listen(fd, 4) == 0); /* connections complete in the backlog; nothing is read */
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    store_redis *s = NULL;
    perr err = {{0}};
    store_redis_opts o = {.url = url, .prefix = "x:", .timeout_ms = 200};
    cr_assert_eq(store_redis_open(&o, &s, &err), -1);
    cr_assert(strstr(err.msg, "no answer within 200 ms"), "%s", err.msg);
    close(fd);
}

/* ---------------------------------------------------------------- AUTH, db, URL */

Test(store_redis, password_auth_and_a_wrong_password_without_printing_it)
{
    static const char *const extra[] = {"--requirepass", "s3cr3t-pw", NULL};
    t_redis *r = t_redis_start(extra);
    char url[160];
    snprintf(url, sizeof url, "redis://:s3cr3t-pw@127.0.0.1:%d", r->port);
    store_redis *s = t_open_url(url, "au:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get_or_create(st->ctx, "005A");
    st->changed(st->ctx, u);
    st->link_add(st->ctx, "005M", "005A");
    t_flush_ok(s, 0);
    store_redis_reset(s);
    cr_assert(st->get(st->ctx, "005A"));
    store_redis_close(s);

    perr err = {{0}};
    store_redis *bad = NULL;
    snprintf(url, sizeof url, "redis://:wr0ng-pw@127.0.0.1:%d", r->port);
    store_redis_opts o = {.url = url, .prefix = "au:"};
    cr_assert_eq(store_redis_open(&o, &bad, &err), -1);
    cr_assert(strstr(err.msg, "authentication failed"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "wr0ng-pw"), "the password is never printed: %s", err.msg);
    cr_assert(strstr(err.msg, "***"), "the URL is shown masked: %s", err.msg);

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", r->port);
    cr_assert_eq(store_redis_open(&o, &bad, &err), -1);
    cr_assert(strstr(err.msg, "requires a password"), "%s", err.msg);

    /* the password written without its ':' is masked too */
    snprintf(url, sizeof url, "redis://s3cr3t-pw@127.0.0.1:%d", r->port);
    cr_assert_eq(store_redis_open(&o, &bad, &err), -1);
    cr_assert(strstr(err.msg, "a user needs a password"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "s3cr3t-pw"), "the password is never printed: %s", err.msg);
    cr_assert(strstr(err.msg, "redis://***@127.0.0.1"), "%s", err.msg);
}

/* explain --live reads with a Redis user that may only read: no write script is loaded for it */
Test(store_redis, a_read_only_store_needs_read_permission_only)
{
    static const char *const extra[] = {"--user",  "writer", "on",     ">wr1ter",      "~*",
                                        "&*",      "+@all",  "--user", "reader",       "on",
                                        ">r3ader", "~*",     "+@read", "+@connection", NULL};
    t_redis *r = t_redis_start(extra);
    char url[160];
    snprintf(url, sizeof url, "redis://writer:wr1ter@127.0.0.1:%d", r->port);
    store_redis *w = t_open_url(url, "ro:");
    engine_store *st = store_redis_iface(w);
    st->changed(st->ctx, st->get_or_create(st->ctx, "005A"));
    t_flush_ok(w, 0);
    store_redis_close(w);

    snprintf(url, sizeof url, "redis://reader:r3ader@127.0.0.1:%d", r->port);
    perr err = {{0}};
    store_redis *s = NULL;
    store_redis_opts o = {.url = url, .prefix = "ro:"};
    cr_assert_eq(store_redis_open(&o, &s, &err), -1, "the writer's scripts need more");
    cr_assert(strstr(err.msg, "NOPERM"), "%s", err.msg);
    o.read_only = true;
    cr_assert_eq(store_redis_open(&o, &s, &err), 0, "%s", err.msg);
    st = store_redis_iface(s);
    cr_assert_not_null(st->get(st->ctx, "005A"));
    cr_assert_not(store_redis_failed(s, &err), "%s", err.msg);
    store_redis_close(s);
}

Test(store_redis, acl_user_and_password)
{
    static const char *const extra[] = {"--user", "alice", "on",    ">al1ce-pw",
                                        "~*",     "&*",    "+@all", NULL};
    t_redis *r = t_redis_start(extra);
    char url[160];
    snprintf(url, sizeof url, "redis://alice:al1ce-pw@127.0.0.1:%d", r->port);
    store_redis *s = t_open_url(url, "acl:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get_or_create(st->ctx, "005A");
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    store_redis_close(s);

    perr err = {{0}};
    store_redis *bad = NULL;
    snprintf(url, sizeof url, "redis://alice:n0t-h3r-pw@127.0.0.1:%d", r->port);
    store_redis_opts o = {.url = url, .prefix = "acl:"};
    cr_assert_eq(store_redis_open(&o, &bad, &err), -1);
    cr_assert(strstr(err.msg, "authentication failed for user alice"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "n0t-h3r-pw"), "%s", err.msg);
}

Test(store_redis, database_selection)
{
    t_redis *r = t_redis_start(NULL);
    char url[160];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/5", r->port);
    store_redis *s = t_open_url(url, "db:");
    engine_store *st = store_redis_iface(s);
    user_state *u = st->get_or_create(st->ctx, "005A");
    st->changed(st->ctx, u);
    t_flush_ok(s, 0);
    store_redis_close(s);
    redisContext *c = t_raw(r);
    cr_assert_eq(t_cmd_int(c, "EXISTS db:u:005A"), 0, "not in db 0");
    freeReplyObject(redisCommand(c, "SELECT 5"));
    cr_assert_eq(t_cmd_int(c, "EXISTS db:u:005A"), 1, "in db 5");
    redisFree(c);

    perr err = {{0}};
    store_redis *bad = NULL;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/99", r->port);
    store_redis_opts o = {.url = url, .prefix = "db:"};
    cr_assert_eq(store_redis_open(&o, &bad, &err), -1);
    cr_assert(strstr(err.msg, "database 99"), "%s", err.msg);
}

Test(store_redis, bad_urls_are_one_clear_line_with_the_password_masked)
{
    static const struct {
        const char *url, *needle;
    } cases[] = {
        {"http://127.0.0.1:6379", "scheme must be redis://"},
        {"127.0.0.1:6379", "expected redis://"},
        {"rediss://127.0.0.1:6379", "TLS"},
        {"redis://", "no host"},
        {"redis://127.0.0.1:0", "port"},
        {"redis://127.0.0.1:99999", "port"},
        {"redis://127.0.0.1:12x", "port"},
        {"redis://127.0.0.1:6379/x", "database"},
        {"redis://bob@127.0.0.1:6379", "needs a password"},
        {"redis://bob:t0psecret@127.0.0.1:6379/abc", "database"},
        {"redis://[::1:6379", "unclosed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_redis *s = NULL;
        perr err = {{0}};
        store_redis_opts o = {.url = cases[i].url, .prefix = "x:"};
        cr_assert_eq(store_redis_open(&o, &s, &err), -1, "%s", cases[i].url);
        cr_assert(strstr(err.msg, cases[i].needle), "%s: %s", cases[i].url, err.msg);
        cr_assert_null(strstr(err.msg, "t0psecret"), "%s", err.msg);
        cr_assert_null(strchr(err.msg, '\n'));
    }
}

/* ---------------------------------------------------------------- scripts */

Test(store_redis, flush_survives_a_script_flush_with_eval)
{
    T_STORE("ns:");
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    st->link_add(st->ctx, "005M", "005R"); /* the report not written: the link script */
    uint64_t rt = store_redis_get_stats(s)->round_trips;
    t_flush_ok(s, 0);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 2, "NOSCRIPT, then EVAL");
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ns:w:005M 005R"), 1);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ns:waiting ns:w:005M"), 1);
    /* the next flush loads the scripts again in the same round trip; the emptied set leaves the
     * index through the other script */
    user_state *u = st->get_or_create(st->ctx, "005R");
    u->status = PROV_ACTIVE;
    st->changed(st->ctx, u);
    st->link_del(st->ctx, "005M", "005R");
    rt = store_redis_get_stats(s)->round_trips;
    t_flush_ok(s, 0);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1);
    cr_assert_eq(t_cmd_int(c, "EXISTS ns:w:005M"), 0);
    cr_assert_eq(t_cmd_int(c, "SISMEMBER ns:waiting ns:w:005M"), 0);
    rt = store_redis_get_stats(s)->round_trips;
    st->link_add(st->ctx, "005M", "005R");
    t_flush_ok(s, 0);
    cr_assert_eq(store_redis_get_stats(s)->round_trips, rt + 1, "EVALSHA works again");
    t_store_done(s, c);
}

/* ---------------------------------------------------------------- the provisioned count (R8.3) */

#define T_DEACT(id, ts)                                                                            \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"" id                         \
    "\"],\"changeType\":\"UPDATE\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"    \
    "\"transactionKey\":\"tx" #ts "\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts               \
    ",\"commitNumber\":" #ts ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"},\"IsActive\":false}"

/* The provisioned count as Redis has it: the active set's size, once the set is complete. */
static char *t_provisioned(redisContext *c, const char *prefix)
{
    char *done = t_cmd_str(c, "HGET %scompany active_set", prefix);
    bool complete = done && strcmp(done, "1") == 0;
    free(done);
    if (!complete) return NULL;
    char n[24];
    snprintf(n, sizeof n, "%lld", t_cmd_int(c, "SCARD %sactive", prefix));
    return strdup(n);
}

/* One instance's batch of one event: prefetch, decide, flush; the count its engine saw after. */
static int64_t t_one_event(const t_redis *r, const char *prefix, const config *cfg,
                           const char *line, const char *id)
{
    t_instance in = {0};
    const char *ids[] = {id};
    t_instance_start(&in, r, prefix, cfg, line, ids, 1);
    engine_store *st = store_redis_iface(in.s);
    int64_t seen = st->company(st->ctx)->provisioned;
    t_flush_resolving(in.s, in.e, &in.h, NULL);
    t_instance_stop(&in);
    return seen;
}

/* Instances that share Redis each add their transitions to the count: two that create a user
 * at the same moment from the same count give 2, not 1; two that deactivate the same user
 * (a redelivered batch on another instance) take it off once (the active set's SREM); a flush
 * sent again adds nothing. */
/* R8.3: the provisioned count moves with each activation without the company being changed as
 * such; the next batch, read before the sealed write is sent, must still see the count it leaves,
 * or whether the share guard holds a deactivation would depend on timing. */
Test(store_redis, sealed_writes_carry_the_provisioned_count)
{
    t_redis *r = t_redis_start(NULL);
    store_redis *s = t_open(r, "swc:");
    engine_store *st = store_redis_iface(s);
    perr err = {{0}};
    cr_assert_eq(store_redis_count_provisioned(s, true, &err), 0, "%s", err.msg);
    store_redis_reset(s);
    const char *ids[] = {"005A"};
    cr_assert_eq(store_redis_prefetch(s, ids, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(st->company(st->ctx)->provisioned, 0);
    user_state *u = st->get_or_create(st->ctx, "005A");
    u->status = PROV_ACTIVE;
    st->company(st->ctx)->provisioned++; /* as the engine's set_status does */
    st->changed(st->ctx, u);
    store_write *w;
    cr_assert_eq(store_redis_seal(s, &w, &err), 0, "%s", err.msg);
    store_redis_reset(s);
    const char *ids2[] = {"005B"};
    cr_assert_eq(store_redis_prefetch(s, ids2, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(st->company(st->ctx)->provisioned, 1, "the count the sealed write leaves");
    store_redis_reset(s);
    store_late late = {0};
    cr_assert_eq(store_redis_write_sealed(s, w, &late, &err), 0, "%s", err.msg);
    store_late_free(&late);
    redisContext *c = t_raw(r);
    char *v = t_provisioned(c, "swc:");
    cr_assert_str_eq(v, "1", "and Redis has it once sent");
    free(v);
    redisFree(c);
    store_redis_close(s);
}

Test(store_redis, provisioned_count_is_added_to_by_every_instance_never_overwritten)
{
    t_redis *r = t_redis_start(NULL);
    const char *prefix = "pc:";
    config *cfg;
    perr err = {{0}};
    cr_assert_eq(config_load_string(T_SETTINGS, strlen(T_SETTINGS), "t.yaml", &cfg, &err), 0, "%s",
                 err.msg);
    store_redis *init = t_open(r, prefix);
    cr_assert_eq(store_redis_count_provisioned(init, true, &err), 0, "%s", err.msg);
    store_redis_close(init);
    redisContext *c = t_raw(r);
    char *v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "0", "an empty state counts 0");
    free(v);

    t_instance a = {0}, b = {0};
    const char *ids_a[] = {"005A"}, *ids_b[] = {"005B"};
    t_instance_start(&a, r, prefix, cfg, HDR("005A", 1, ""), ids_a, 1);
    t_instance_start(&b, r, prefix, cfg, HDR("005B", 2, ""), ids_b, 1);
    engine_store *sa = store_redis_iface(a.s), *sb = store_redis_iface(b.s);
    cr_assert_eq(sa->company(sa->ctx)->provisioned, 1, "each engine counts its own creation");
    cr_assert_eq(sb->company(sb->ctx)->provisioned, 1);
    t_flush_resolving(a.s, a.e, &a.h, NULL);
    t_flush_resolving(b.s, b.e, &b.h, NULL);
    v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "2", "both creations, added up");
    free(v);
    t_flush_ok(a.s, 0); /* nothing dirty: nothing added again */
    t_instance_stop(&a);
    t_instance_stop(&b);

    cr_assert_eq(t_one_event(r, prefix, cfg, HDR("005C", 3, ""), "005C"), 3,
                 "the next batch reads the sum");
    /* both read 005A active and deactivate it; the second write replaces "deactivated" */
    t_instance d1 = {0}, d2 = {0};
    t_instance_start(&d1, r, prefix, cfg, T_DEACT("005A", 4), ids_a, 1);
    t_instance_start(&d2, r, prefix, cfg, T_DEACT("005A", 4), ids_a, 1);
    cr_assert_eq(t_count(&d1.out, "DEACTIVATE_USER"), 1);
    t_flush_resolving(d1.s, d1.e, &d1.h, NULL);
    t_flush_resolving(d2.s, d2.e, &d2.h, NULL);
    t_instance_stop(&d1);
    t_instance_stop(&d2);
    v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "2", "one deactivation, taken off once");
    free(v);
    cr_assert_eq(t_one_event(r, prefix, cfg, HDR("005A", 5, ""), "005A"), 3,
                 "a reactivation adds one");
    v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "3");
    free(v);
    redisFree(c);
    config_free(cfg);
}

/* A state stored before the count: the set the writes move is not the count until it is
 * complete (it would start from 0); the first start puts the active users in it once, later
 * starts keep the stored set, and a dry run counts into its cache only. */
Test(store_redis, provisioned_count_of_an_existing_state_is_counted_once)
{
    t_redis *r = t_redis_start(NULL);
    const char *prefix = "old:";
    config *cfg;
    perr err = {{0}};
    cr_assert_eq(config_load_string(T_SETTINGS, strlen(T_SETTINGS), "t.yaml", &cfg, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(t_one_event(r, prefix, cfg, HDR("005A", 1, ""), "005A"), -1, "not known yet");
    t_one_event(r, prefix, cfg, HDR("005B", 2, ""), "005B");
    t_one_event(r, prefix, cfg, HDR("005C", 3, ""), "005C");
    t_one_event(r, prefix, cfg, T_DEACT("005B", 4), "005B");
    redisContext *c = t_raw(r);
    /* a state from before the set: stored without it */
    freeReplyObject(redisCommand(c, "DEL %sactive", prefix));
    cr_assert_eq(t_cmd_int(c, "HEXISTS %scompany active_set", prefix), 0,
                 "no count made up from 0");

    store_redis *dry = t_open(r, prefix);
    cr_assert_eq(store_redis_count_provisioned(dry, false, &err), 0, "%s", err.msg);
    engine_store *st = store_redis_iface(dry);
    cr_assert_eq(st->company(st->ctx)->provisioned, 2, "A and C are active");
    cr_assert_eq(t_cmd_int(c, "HEXISTS %scompany active_set", prefix), 0, "a dry run writes none");
    cr_assert_eq(t_cmd_int(c, "EXISTS %sactive", prefix), 0);
    store_redis_close(dry);

    store_redis *s = t_open(r, prefix);
    cr_assert_eq(store_redis_count_provisioned(s, true, &err), 0, "%s", err.msg);
    st = store_redis_iface(s);
    cr_assert_eq(st->company(st->ctx)->provisioned, 2);
    store_redis_close(s);
    char *v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "2");
    free(v);
    cr_assert_eq(t_one_event(r, prefix, cfg, HDR("005E", 6, ""), "005E"), 3,
                 "counted on from there");
    v = t_provisioned(c, prefix);
    cr_assert_str_eq(v, "3");
    free(v);

    /* once: a later start keeps what is stored, even if it differs from a count */
    freeReplyObject(redisCommand(c, "SADD %sactive 005X 005Y 005Z 005W", prefix));
    s = t_open(r, prefix);
    cr_assert_eq(store_redis_count_provisioned(s, true, &err), 0, "%s", err.msg);
    st = store_redis_iface(s);
    cr_assert_eq(st->company(st->ctx)->provisioned, 7);
    store_redis_close(s);
    redisFree(c);
    config_free(cfg);
}
