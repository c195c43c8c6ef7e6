/* The service end to end (issue 6, R9.2, R9.4): real redis-server, the dev broker, and the real
 * binary: produce-events -> run -> consume-commands, compared with `simulate` on the same input.
 * Topics of one partition keep the input order, so the service must give exactly simulate's
 * commands (source aside); tests with several partitions check what must hold in any order. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event/event.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "verify.h"

TestSuite(pipeline, .fini = h_teardown, .timeout = 900);

#define WAVE 8 /* processes at once: the mock broker's group joins are slow, not busy */

/* ---------------------------------------------------------------- helpers */

static json_t *load_lines(const char *path) { return v_drop_source(v_load_lines(path)); }

static json_t *simulate(const char *settings, const char *events)
{
    return v_drop_source(v_simulate(settings, events));
}

static h_proc *start_run_at(const char *level, const char *brokers, const h_redis *r,
                            const char *in, const char *out, const char *group, const char *prefix,
                            const char *settings, const char *const *extra)
{
    const char *argv[40] = {
        h_pv_binary(),    "run",  "--brokers",      brokers,  "--redis",           r->url,
        "--input-topic",  in,     "--output-topic", out,      "--group",           group,
        "--redis-prefix", prefix, "--settings",     settings, "--batch-linger-ms", "5"};
    size_t n = 18;
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char lv[64];
    snprintf(lv, sizeof lv, "PROVISIONER_LOG_LEVEL=%s", level);
    const char *env[] = {lv, NULL};
    return h_proc_start(argv, env);
}

static h_proc *start_run(const char *brokers, const h_redis *r, const char *in, const char *out,
                         const char *group, const char *prefix, const char *settings,
                         const char *const *extra)
{
    return start_run_at("warn", brokers, r, in, out, group, prefix, settings, extra);
}

static void json_equal_or_fail(json_t *got, json_t *want, const char *what)
{
    if (json_equal(got, want)) return;
    size_t n =
        json_array_size(got) < json_array_size(want) ? json_array_size(got) : json_array_size(want);
    for (size_t i = 0; i < n; i++) {
        if (json_equal(json_array_get(got, i), json_array_get(want, i))) continue;
        char *g = json_dumps(json_array_get(got, i), JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(json_array_get(want, i), JSON_COMPACT | JSON_SORT_KEYS);
        cr_assert_fail("%s: command %zu differs\n  service:  %s\n  simulate: %s", what, i, g, w);
    }
    cr_assert_fail("%s: the service gave %zu commands, simulate %zu", what, json_array_size(got),
                   json_array_size(want));
}

/* The set of command ids in a list (duplicates allowed: at-least-once). */
static json_t *id_set(json_t *cmds)
{
    json_t *set = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "command_id"));
        cr_assert_not_null(id, "a command without command_id");
        json_object_set(set, id, c);
    }
    return set;
}

/* Every simulated command is on the topic with the same payload; nothing else is. */
static void same_ids_and_payloads(json_t *got, json_t *want, const char *what)
{
    json_t *g = id_set(got), *w = id_set(want);
    const char *id;
    json_t *c;
    json_object_foreach(w, id, c)
    {
        json_t *gc = json_object_get(g, id);
        cr_assert_not_null(gc, "%s: command %s (%s %s) was lost", what, id,
                           json_string_value(json_object_get(c, "type")),
                           json_string_value(json_object_get(c, "sf_user_id")));
        cr_assert(json_equal(gc, c), "%s: command %s has another payload", what, id);
    }
    cr_assert_eq(json_object_size(g), json_object_size(w),
                 "%s: %zu distinct commands on the topic, simulate gave %zu", what,
                 json_object_size(g), json_object_size(w));
    json_decref(g);
    json_decref(w);
}

/* No waiting set (R6.3) is left under prefix. */
static void no_link_waiting(h_redis *r, const char *prefix)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "EVAL \"return #redis.call('KEYS','%sw:*')\" 0", prefix);
    char *left = h_redis_cmd(r, cmd);
    cr_assert_not_null(left);
    cr_assert_str_eq(left, ":0", "waiting links left behind under %s", prefix);
    free(left);
}

#define MAX_SCENARIOS 2048 /* reaching it fails the tests that read them, never skips any */

/* FNV-1a of a folder name: the same sample of scenarios on every machine. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool in_schema(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

/* The payload's fields and their parts (compound fields nest theirs). */
static bool fields_in_schema(json_t *payload, const char *const *names, size_t n)
{
    const char *key, *part;
    json_t *v, *pv;
    json_object_foreach(payload, key, v)
    {
        if (strcmp(key, "ChangeEventHeader") == 0) continue;
        if (!in_schema(key, names, n)) return false;
        if (!json_is_object(v)) continue;
        json_object_foreach(v, part, pv)
        {
            if (!in_schema(part, names, n)) return false;
        }
    }
    return true;
}

/* Whether the bundled schema carries every field of the scenario's User events: produce-events
 * writes Avro with it, and a scenario's org may have custom fields it lacks (Hire_Date__c), which
 * test_scenarios checks through simulate. */
static bool schema_carries(const char *events_path)
{
    size_t n;
    const char *const *names = event_layout_all_names(event_layout_default(), &n);
    FILE *f = fopen(events_path, "r");
    cr_assert_not_null(f, "%s", events_path);
    bool ok = true;
    char *line = NULL;
    size_t cap = 0;
    while (ok && getline(&line, &cap, f) >= 0) {
        json_t *ev = json_loads(line, 0, NULL);
        json_t *data = json_object_get(ev, "data");
        json_t *payload = data ? json_object_get(data, "payload") : ev;
        json_t *hdr = json_object_get(payload, "ChangeEventHeader");
        const char *entity = json_string_value(json_object_get(hdr, "entityName"));
        if (entity && strcmp(entity, "User") == 0) ok = fields_in_schema(payload, names, n);
        json_decref(ev);
    }
    free(line);
    fclose(f);
    return ok;
}

/* The scenario folders; with hierarchy, only those whose events name a ManagerId (R6). */
static size_t scenario_dirs(char **out, size_t max, bool hierarchy)
{
    size_t n = 0;
    const char *roots[] = {h_source_path("tests/scenarios"), h_source_path("../shared/scenarios")};
    for (int r = 0; r < 2; r++) {
        char root[PATH_MAX];
        snprintf(root, sizeof root, "%s", roots[r]);
        DIR *d = opendir(root);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d)) && n < max) {
            if (de->d_name[0] == '.') continue;
            char p[PATH_MAX + 300];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s/expected.jsonl", root, de->d_name);
            if (stat(p, &st) != 0) continue;
            /* a scenario with Profile or UserRole tables, or filters reading them, needs
             * Salesforce in the service: the service's side of R4.3 is test_lookup.c */
            snprintf(p, sizeof p, "%s/%s/lookups.json", root, de->d_name);
            if (stat(p, &st) == 0) continue;
            snprintf(p, sizeof p, "%s/%s/settings.yaml", root, de->d_name);
            char *settings = h_read_file(p);
            for (char *c = settings; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            bool tables = strstr(settings, "profile.") || strstr(settings, "userrole.");
            free(settings);
            if (tables) continue;
            /* The later rounds of blind scenarios (no NOTES.md) are all checked by simulate in
             * test_scenarios; through Kafka, which proves the service decides as simulate does,
             * one in four of them keeps this test within a few minutes (PV_ALL_SCENARIOS=1:
             * all). */
            snprintf(p, sizeof p, "%s/%s/NOTES.md", root, de->d_name);
            if (r == 0 && stat(p, &st) != 0 && !getenv("PV_ALL_SCENARIOS") &&
                name_hash(de->d_name) % 4 != 0)
                continue;
            snprintf(p, sizeof p, "%s/%s/events.jsonl", root, de->d_name);
            if (!schema_carries(p)) continue;
            if (hierarchy) {
                char *text = h_read_file(p);
                bool names = strstr(text, "ManagerId") != NULL;
                free(text);
                if (!names) continue;
            }
            size_t len = strlen(root) + strlen(de->d_name) + 2;
            out[n] = malloc(len);
            snprintf(out[n], len, "%s/%s", root, de->d_name);
            n++;
        }
        closedir(d);
    }
    qsort(out, n, sizeof *out, str_ptr_cmp);
    return n;
}

/* ---------------------------------------------------------------- tests */

/* Each scenario through Kafka and Redis, run with extra options: the same commands as simulate,
 * in the same order. */
static void scenarios_through_kafka(char **dirs, size_t n, const char *const *extra)
{
    h_redis r;
    h_redis_start(&r);
    /* as many as there are scenarios (a fixed 512 overflowed once there were more) */
    char(*topic_in)[32] = calloc(n, 32), (*topic_out)[32] = calloc(n, 32);
    char(*group)[32] = calloc(n, 32), (*prefix)[32] = calloc(n, 32);
    char(*settings)[PATH_MAX] = calloc(n, PATH_MAX), (*events)[PATH_MAX] = calloc(n, PATH_MAX);
    cr_assert(topic_in && topic_out && group && prefix && settings && events);
    for (size_t i = 0; i < n; i++) {
        snprintf(topic_in[i], 32, "in%zu", i);
        snprintf(topic_out[i], 32, "out%zu", i);
        snprintf(group[i], 32, "g%zu", i);
        snprintf(prefix[i], 32, "s%zu:", i);
        snprintf(settings[i], PATH_MAX, "%s/settings.yaml", dirs[i]);
        snprintf(events[i], PATH_MAX, "%s/events.jsonl", dirs[i]);
    }
    const char *idle[12] = {"--exit-when-idle", "2"};
    for (size_t i = 0; extra && extra[i] && i < 9; i++)
        idle[2 + i] = extra[i];
    /* A dev broker per wave: librdkafka 2.0.2's mock stalls more often the more topics it is
     * asked to create at start (dev-broker restarts itself then, but hundreds make that slow). */
    for (size_t w = 0; w < n; w += WAVE) {
        size_t k = n - w < WAVE ? n - w : WAVE;
        buf topics;
        buf_init(&topics);
        for (size_t i = w; i < w + k; i++)
            buf_printf(&topics, "%s%s,%s", i > w ? "," : "", topic_in[i], topic_out[i]);
        h_broker *b = h_broker_start(1, topics.data);
        buf_free(&topics);
        h_proc *ps[WAVE];
        for (size_t j = 0; j < k; j++) { /* produce */
            const char *argv[] = {h_pv_binary(), "produce-events", "--brokers",
                                  b->bootstrap,  "--topic",        topic_in[w + j],
                                  "--events",    events[w + j],    NULL};
            ps[j] = h_proc_start(argv, NULL);
        }
        for (size_t j = 0; j < k; j++)
            cr_assert_eq(h_proc_wait(ps[j], 60), 0, "produce-events failed: %s",
                         h_proc_stderr(ps[j]));
        for (size_t j = 0; j < k; j++) /* each scenario's service until idle */
            ps[j] = start_run(b->bootstrap, &r, topic_in[w + j], topic_out[w + j], group[w + j],
                              prefix[w + j], settings[w + j], idle);
        for (size_t j = 0; j < k; j++)
            cr_assert_eq(h_proc_wait(ps[j], 120), 0, "run failed for %s: %s", dirs[w + j],
                         h_proc_stderr(ps[j]));
        json_t *want[WAVE];
        char outp[WAVE][PATH_MAX];
        for (size_t j = 0; j < k; j++) { /* read back */
            want[j] = simulate(settings[w + j], events[w + j]);
            char count[16];
            snprintf(count, sizeof count, "%zu", json_array_size(want[j]));
            snprintf(outp[j], PATH_MAX, "%s", h_path(topic_out[w + j]));
            bool none = json_array_size(want[j]) == 0; /* then read until 2 s without one */
            const char *argv[12] = {h_pv_binary(),      "consume-commands", "--brokers",
                                    b->bootstrap,       "--topic",          topic_out[w + j],
                                    "--from-beginning", "--timeout",        none ? "2" : "10"};
            if (!none) argv[9] = "--count", argv[10] = count;
            ps[j] = h_proc_start_to(argv, NULL, outp[j]);
        }
        for (size_t j = 0; j < k; j++) { /* and compare */
            cr_assert_eq(h_proc_wait(ps[j], 60), 0,
                         "%s: consume-commands failed (%zu commands "
                         "wanted): %s",
                         dirs[w + j], json_array_size(want[j]), h_proc_stderr(ps[j]));
            json_t *got = load_lines(outp[j]);
            json_equal_or_fail(got, want[j], dirs[w + j]);
            json_decref(got);
            json_decref(want[j]);
        }
        h_broker_stop(b);
    }
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(topic_in);
    free(topic_out);
    free(group);
    free(prefix);
    free(settings);
    free(events);
}

/* Every scenario, shared and the project's own, through Kafka and Redis: the same commands as
 * simulate, in the same order (issue 6). */
Test(pipeline, every_scenario_through_kafka_gives_simulates_commands)
{
    static char *dirs[MAX_SCENARIOS];
    size_t n = scenario_dirs(dirs, MAX_SCENARIOS, false);
    cr_assert_gt(n, 5, "no scenarios found");
    cr_assert_lt(n, MAX_SCENARIOS, "more scenarios than MAX_SCENARIOS: some were left out");
    scenarios_through_kafka(dirs, n, NULL);
}

/* R6.3 in parts: with one placement at once, every manager that becomes active with waiting
 * reports ends its batch, the rest of the batch is read again after the parts, and each report
 * is placed, produced and stored in a part of its own. The commands must not change. */
Test(pipeline, placements_in_parts_give_simulates_commands)
{
    static char *dirs[MAX_SCENARIOS];
    size_t n = scenario_dirs(dirs, MAX_SCENARIOS, true);
    cr_assert_gt(n, 5, "no scenarios with a hierarchy found");
    cr_assert_lt(n, MAX_SCENARIOS, "more scenarios than MAX_SCENARIOS: some were left out");
    const char *parts[] = {"--placements-at-once", "1", NULL};
    scenarios_through_kafka(dirs, n, parts);
}

/* --exactly-once (R9.2): each batch's commands kept in Redis as its pending record, its states
 * written, then one Kafka transaction produces the commands and commits the offsets. On the mock
 * broker the transactions run (no markers are written, so a reader sees every message): the
 * commands must be simulate's, over the scenarios with a hierarchy (R6). */
Test(pipeline, exactly_once_gives_simulates_commands)
{
    static char *dirs[MAX_SCENARIOS];
    size_t n = scenario_dirs(dirs, MAX_SCENARIOS, true);
    cr_assert_gt(n, 5, "no scenarios with a hierarchy found");
    const char *eos[] = {"--exactly-once", NULL};
    scenarios_through_kafka(dirs, n, eos);
}

/* An org whose hierarchy never changes: a VP, 3 directors under it, and reports under the
 * directors, every report created before its manager so that every link waits first (R6.3). */
static const char *fixed_org(int reports)
{
    const char *path = h_path("org.jsonl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    long long ts = 1764000000000LL, commit = 1;
    int total = reports + 4;
    for (int k = total; k >= 1; k--) { /* reports first, the VP last */
        int mgr = k == 1 ? 0 : k <= 4 ? 1 : 2 + k % 3;
        char mfield[64] = "";
        if (mgr) snprintf(mfield, sizeof mfield, ",\"ManagerId\":\"0055e%010dAAK\"", mgr);
        fprintf(f,
                "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e%010dAAK\"],"
                "\"changeType\":\"CREATE\",\"changedFields\":[],\"nulledFields\":[],"
                "\"diffFields\":[],\"transactionKey\":\"t%lld\",\"sequenceNumber\":1,"
                "\"commitTimestamp\":%lld,\"commitNumber\":%lld,\"commitUser\":\"005A\","
                "\"changeOrigin\":\"\"},\"Email\":\"u%d@acme.com\",\"FirstName\":\"U\","
                "\"LastName\":\"N%d\",\"IsActive\":true,\"Department\":\"Sales\","
                "\"Title\":\"Account Executive\"%s}\n",
                k, commit, ts++, commit, k, k, mfield);
        commit++;
    }
    fclose(f);
    return path;
}

/* R6.3 in parts, interrupted: three directors each become active with 100 waiting reports,
 * placed 7 at a time (15 parts each), and each changes its Title right after. The service is
 * SIGKILLed a few milliseconds after parts begin, five times, and restarted: the batch it stored
 * before the parts is read again (its events are duplicates now) and the director, stored active
 * with reports still waiting, has the rest placed before the Title change is decided (after it,
 * the placements would carry the change's position in their command ids). In the end: exactly
 * simulate's commands (ids and payloads, duplicates aside), no link left waiting. */
Test(pipeline, sigkill_while_placing_in_parts_loses_nothing)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *events = fixed_org(300);
    FILE *f = fopen(events, "a");
    cr_assert_not_null(f);
    for (int d = 4; d >= 2; d--)
        fprintf(f,
                "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e%010dAAK\"],"
                "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\"],\"nulledFields\":[],"
                "\"diffFields\":[],\"transactionKey\":\"u%d\",\"sequenceNumber\":1,"
                "\"commitTimestamp\":%lld,\"commitNumber\":%d,\"commitUser\":\"005A\","
                "\"changeOrigin\":\"\"},\"Title\":\"Director %d\"}\n",
                d, d, 1764000100000LL + d, 1000 + d, d);
    fclose(f);
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *settings = h_source_path("examples/settings.yaml");
    json_t *want = simulate(settings, events);
    int kills = 0;
    for (int k = 1; k <= 5; k++) {
        const char *extra[] = {"--placements-at-once",
                               "7",
                               "--batch-size",
                               "50",
                               "-X",
                               "session.timeout.ms=4000",
                               "-X",
                               "heartbeat.interval.ms=500",
                               NULL};
        h_proc *p =
            start_run_at("info", b->bootstrap, &r, "in", "out", "parts", "parts:", settings, extra);
        if (!h_proc_wait_output(p, true, "in parts", 30)) {
            h_proc_signal(p, SIGKILL);
            h_proc_wait(p, 10);
            break;
        }
        usleep((useconds_t)(2000 * k));
        h_proc_signal(p, SIGKILL);
        h_proc_wait(p, 10);
        kills++;
    }
    cr_assert_geq(kills, 1, "no run placed reports in parts");
    const char *last[] = {"--placements-at-once",
                          "7",
                          "--batch-size",
                          "50",
                          "--exit-when-idle",
                          "3",
                          "-X",
                          "session.timeout.ms=4000",
                          "-X",
                          "heartbeat.interval.ms=500",
                          NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "parts", "parts:", settings, last);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    const char *outp = h_path("parts.out");
    cr_assert_eq(h_consume(b->bootstrap, "out", 0, 5, outp), 0);
    json_t *got = load_lines(outp);
    same_ids_and_payloads(got, want, "killed while placing in parts");
    no_link_waiting(&r, "parts:");
    json_decref(got);
    json_decref(want);
}

/* Two instances in one group share four partitions; managers and reports land on different
 * partitions and are decided at the same moment: every link must end right (R6.3). */
Test(pipeline, two_instances_share_partitions_and_links_end_right)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(4, "in,out");
    const int reports = 400;
    const char *events = fixed_org(reports);
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *settings = h_source_path("examples/settings.yaml");
    const char *idle[] = {"--exit-when-idle",        "4", "--batch-size", "50", "-X",
                          "session.timeout.ms=6000", NULL};
    h_proc *a = start_run(b->bootstrap, &r, "in", "out", "shared", "two:", settings, idle);
    h_proc *c = start_run(b->bootstrap, &r, "in", "out", "shared", "two:", settings, idle);
    cr_assert_eq(h_proc_wait(a, 180), 0, "%s", h_proc_stderr(a));
    cr_assert_eq(h_proc_wait(c, 180), 0, "%s", h_proc_stderr(c));
    const char *outp = h_path("two.out");
    cr_assert_eq(h_consume(b->bootstrap, "out", 0, 5, outp), 0);
    json_t *cmds = load_lines(outp);
    /* Per user, the manager Gong ends with: CREATE_USER then SET_MANAGER in topic order (one
     * user's commands share a partition, so their order holds). */
    json_t *gong_mgr = json_object();
    size_t i;
    json_t *cmd;
    int creates = 0;
    json_array_foreach(cmds, i, cmd)
    {
        const char *t = json_string_value(json_object_get(cmd, "type"));
        const char *u = json_string_value(json_object_get(cmd, "sf_user_id"));
        if (strcmp(t, "CREATE_USER") == 0) creates++;
        if (strcmp(t, "CREATE_USER") == 0 || strcmp(t, "SET_MANAGER") == 0)
            json_object_set(gong_mgr, u, json_object_get(cmd, "manager_sf_user_id"));
    }
    cr_assert_eq(creates, reports + 4, "every user is created once");
    for (int k = 2; k <= reports + 4; k++) {
        char id[32], want[32];
        snprintf(id, sizeof id, "0055e%010dAAK", k);
        snprintf(want, sizeof want, "0055e%010dAAK", k <= 4 ? 1 : 2 + k % 3);
        const char *m = json_string_value(json_object_get(gong_mgr, id));
        cr_assert(m && strcmp(m, want) == 0, "%s ends under %s, not its manager %s", id,
                  m ? m : "nobody", want);
    }
    no_link_waiting(&r, "two:"); /* and no link is left waiting in Redis */
    json_decref(gong_mgr);
    json_decref(cmds);
}

/* The next message cons reads within 10 s (errors skipped), or NULL. */
static rd_kafka_message_t *next_message(rd_kafka_t *cons)
{
    for (int i = 0; i < 100; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (m && !m->err) return m;
        if (m) rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* The settings and events of tests/scenarios/NAME. */
static void scenario_files(const char *name, char settings[PATH_MAX], char events[PATH_MAX])
{
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "tests/scenarios/%s", name);
    const char *dir = h_source_path(rel);
    snprintf(settings, PATH_MAX, "%s/settings.yaml", dir);
    snprintf(events, PATH_MAX, "%s/events.jsonl", dir);
}

/* A consumer of partition 0 of topic from its beginning. */
static rd_kafka_t *read_from_start(const char *brokers, const char *topic)
{
    perr err;
    rd_kafka_conf_t *cc = kafka_conf_new(brokers, NULL, 0, &err);
    kafka_conf_set(cc, "group.id", "dlq-reader", &err);
    char errstr[256];
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    cr_assert_not_null(cons, "%s", errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    return cons;
}

/* The last value of header name of m, as a string ("" when there is none). */
static void header_text(const rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t vlen;
    out[0] = 0;
    if (rd_kafka_message_headers(m, &hdrs) == 0 &&
        rd_kafka_header_get_last(hdrs, name, &v, &vlen) == 0)
        snprintf(out, size, "%.*s", (int)vlen, (const char *)v);
}

/* R9.4: an event whose command Kafka would refuse (over the producer's message.max.bytes) goes to
 * the dead-letter topic, undecided, instead of failing its batch for ever; a dead letter whose
 * input value is itself over the limit goes without it, the reason says where it stays. */
Test(pipeline, a_command_too_large_for_kafka_dead_letters_its_event_and_the_rest_flows)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out,in.dlq");
    char settings[PATH_MAX], events[PATH_MAX];
    scenario_files("hierarchy_pending", settings, events);
    /* a user whose Title alone is over the 200,000 bytes the service may produce below */
    size_t big = 300000;
    char *title = malloc(big + 1);
    memset(title, 'x', big);
    title[big] = 0;
    json_t *ev = json_pack("{s:{s:s,s:[s],s:s,s:i,s:I},s:s,s:s,s:s,s:s,s:b}", "ChangeEventHeader",
                           "entityName", "User", "recordIds", "0055e0000000999AAK", "changeType",
                           "CREATE", "sequenceNumber", 1, "commitTimestamp",
                           (json_int_t)1764000000000, "Email", "big@acme.com", "FirstName", "Big",
                           "LastName", "Title", "Title", title, "IsActive", 1);
    cr_assert_not_null(ev);
    char *line = json_dumps(ev, JSON_COMPACT);
    const char *bigf = h_path("big.jsonl");
    h_write_file(bigf, line);
    free(line);
    json_decref(ev);
    /* one event naming two users, activating both: the first one's CREATE_USER is too large
     * (its Title was stored while it was inactive), only that record is left out */
    static const char two_fmt[] =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"%s\"],"
        "\"changeType\":\"CREATE\",\"sequenceNumber\":1,\"commitTimestamp\":%s},"
        "\"Email\":\"%s@acme.com\",\"FirstName\":\"F\",\"LastName\":\"%s\",\"Title\":\"%s\","
        "\"IsActive\":false}\n";
    static const char both[] =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[%s],"
        "\"changeType\":\"UPDATE\",\"changedFields\":[\"IsActive\"],\"sequenceNumber\":1,"
        "\"commitTimestamp\":1764000000300},\"IsActive\":true}\n";
    const char *a2 = "0055e0000000998AAK", *b2 = "0055e0000000997AAK";
    buf two = {0}, b2_only = {0};
    buf_printf(&two, two_fmt, a2, "1764000000100", "a2", "A2", title);
    buf_printf(&two, two_fmt, b2, "1764000000200", "b2", "B2", "Rep");
    buf_printf(&b2_only, two_fmt, b2, "1764000000200", "b2", "B2", "Rep");
    buf_printf(&two, both, "\"0055e0000000998AAK\",\"0055e0000000997AAK\"");
    buf_printf(&b2_only, both, "\"0055e0000000997AAK\"");
    const char *twof = h_path("two.jsonl");
    h_write_file(twof, two.data);
    /* what simulate gives without the user left out */
    char *base = h_read_file(events);
    buf ref = {0};
    buf_puts(&ref, base);
    buf_puts(&ref, b2_only.data);
    free(base);
    const char *reff = h_path("without-a2.jsonl");
    h_write_file(reff, ref.data);
    buf_free(&two);
    buf_free(&b2_only);
    buf_free(&ref);
    /* after the scenario's events (decided again without it, and counted once), then an
     * undecodable message over the limit itself, then the two users */
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    cr_assert_eq(h_produce(b->bootstrap, "in", bigf), 0);
    memset(title, 'y', big);
    title[0] = 2;
    v_produce_raw(b->bootstrap, "in", "bad", title, big);
    free(title);
    const char *prod[] = {h_pv_binary(), "produce-events",
                          "--brokers",   b->bootstrap,
                          "--topic",     "in",
                          "--events",    twof,
                          "--partition", "0",
                          "-X",          "message.max.bytes=2000000",
                          NULL};
    h_proc *pp = NULL;
    cr_assert_eq(h_run(prod, NULL, 120, &pp), 0, "%s", h_proc_stderr(pp));
    const char *idle[] = {"--exit-when-idle",         "2", "--dlq-topic", "in.dlq", "-X",
                          "message.max.bytes=200000", NULL};
    h_proc *p = start_run_at("info", b->bootstrap, &r, "in", "out", "g", "p:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    size_t n_events = h_count_lines(events);
    char counted[64];
    snprintf(counted, sizeof counted, "\"events_decided\":\"%zu\"", n_events + 3);
    char *log = h_proc_stderr(p);
    cr_assert(strstr(log, counted), "the summary does not say %s: %s", counted, log);
    cr_assert(strstr(log, "\"dead_lettered\":\"3\""), "%s", log);
    free(log);
    json_t *want = simulate(settings, reff);
    char *last = json_dumps(json_array_get(want, json_array_size(want) - 1), 0);
    cr_assert(last && strstr(last, b2) && strstr(last, "CREATE_USER"),
              "the reference does not end with the second user's creation: %s", last);
    free(last);
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 10, outp), 0);
    json_t *got = load_lines(outp);
    json_equal_or_fail(got, want, "commands after a command too large");
    json_decref(got);
    json_decref(want);
    char *stored = h_redis_cmd(&r, "EXISTS p:u:0055e0000000999AAK");
    cr_assert_str_eq(stored, ":0", "the state of the event dead-lettered was stored");
    free(stored);
    /* three dead letters: two without their value, and the two users' event whole */
    rd_kafka_t *cons = read_from_start(b->bootstrap, "in.dlq");
    int seen = 0;
    for (int k = 0; k < 3; k++) {
        rd_kafka_message_t *m = next_message(cons);
        cr_assert_not_null(m, "dead letter %d is not on the topic", k + 1);
        char kind[64], why[512], off[32];
        header_text(m, "error.kind", kind, sizeof kind);
        header_text(m, "error.message", why, sizeof why);
        header_text(m, "source.offset", off, sizeof off);
        long at = atol(off) - (long)n_events; /* 0: big, 1: undecodable, 4: the two users' */
        cr_assert(at == 0 || at == 1 || at == 4, "offset %s dead-lettered: %s", off, why);
        seen |= 1 << at;
        cr_assert_eq(strcmp(kind, "command_too_large") == 0, at != 1, "offset %s: %s", off, kind);
        if (at == 4) {
            cr_assert_gt(m->len, 0, "the event's value is kept");
            cr_assert(strstr(why, a2) && strstr(why, "that record is left out"), "%s", why);
        } else {
            cr_assert_eq(m->len, 0, "dead letter of offset %s carries its %zu bytes", off, m->len);
            cr_assert(strstr(why, "left out: over message.max.bytes, 200000"), "%s", why);
        }
        if (at == 0) cr_assert(strstr(why, "CREATE_USER command encodes to"), "%s", why);
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(seen, 1 | 2 | 16, "a message dead-lettered twice");
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
}

/* R9.4: an undecodable message goes to the dead-letter topic with the reason in its headers; the
 * partition keeps moving and every other event's commands come out. */
Test(pipeline, poison_message_goes_to_the_dead_letter_topic_and_the_rest_flows)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out,in.dlq");
    char settings[PATH_MAX], events[PATH_MAX];
    scenario_files("hierarchy_pending", settings, events);
    /* a poison message between two good halves */
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    v_produce_raw(b->bootstrap, "in", "bad", "\x02garbage", 8);
    /* and one the decisions refuse (R9.4), after the one the decoder refused */
    const char *invalid = h_path("invalid.jsonl");
    h_write_file(invalid, "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[],"
                          "\"changeType\":\"CREATE\",\"commitTimestamp\":1764000999000},"
                          "\"Email\":\"x@acme.com\"}\n");
    cr_assert_eq(h_produce(b->bootstrap, "in", invalid), 0);
    const char *idle[] = {"--exit-when-idle", "2", "--dlq-topic", "in.dlq", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "p:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    const char *outp = h_path("out.jsonl");
    json_t *want = simulate(settings, events);
    char count[16];
    snprintf(count, sizeof count, "%zu", json_array_size(want));
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 10, outp), 0);
    json_t *got = load_lines(outp);
    json_equal_or_fail(got, want, "commands around a poison message");
    /* the dead letter, raw, with its headers */
    rd_kafka_t *cons = read_from_start(b->bootstrap, "in.dlq");
    rd_kafka_message_t *m = next_message(cons);
    cr_assert_not_null(m, "nothing on the dead-letter topic");
    cr_assert_eq(m->len, 8);
    cr_assert(memcmp(m->payload, "\x02garbage", 8) == 0, "the dead letter is the original value");
    char kind[64], why[200], off[32];
    header_text(m, "error.kind", kind, sizeof kind);
    header_text(m, "error.message", why, sizeof why);
    header_text(m, "source.offset", off, sizeof off);
    cr_assert_neq(kind[0], 0, "no error.kind");
    cr_assert_neq(why[0], 0, "no error.message");
    cr_assert_str_eq(off, "3", "the poison message was the fourth of the partition");
    rd_kafka_message_destroy(m);
    /* the invalid event's dead letter says its own reason (its offset was not moved with the
     * decode-time dead letters put in front of it) */
    m = next_message(cons);
    cr_assert_not_null(m, "the invalid event is not on the dead-letter topic");
    header_text(m, "error.message", why, sizeof why);
    cr_assert(strstr(why, "recordIds"), "error.message is '%s'", why);
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    json_decref(got);
    json_decref(want);
}

/* interfaces.md: a value may be plain Avro written with a configured schema (--schema) or
 * Confluent-framed. Plain values of a writer with Title and Department swapped decode by that
 * writer, also with a Schema Registry configured (never asked: its port is closed). */
Test(pipeline, plain_values_decode_with_the_schema_given_also_beside_a_registry)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    json_error_t je;
    json_t *avsc = json_load_file(h_source_path("schemas/UserChangeEvent.avsc"), 0, &je);
    cr_assert_not_null(avsc, "%s", je.text);
    json_t *fields = json_object_get(avsc, "fields");
    size_t title = SIZE_MAX, dept = SIZE_MAX, i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (strcmp(name, "Title") == 0) title = i;
        if (strcmp(name, "Department") == 0) dept = i;
    }
    cr_assert(title != SIZE_MAX && dept != SIZE_MAX);
    json_t *t = json_incref(json_array_get(fields, title));
    json_array_set(fields, title, json_array_get(fields, dept));
    json_array_set_new(fields, dept, t);
    const char *writer = h_path("writer.avsc");
    cr_assert_eq(json_dump_file(avsc, writer, 0), 0);
    json_decref(avsc);
    char settings[PATH_MAX], events[PATH_MAX];
    scenario_files("update_attributes", settings, events);
    const char *prod[] = {h_pv_binary(), "produce-events", "--brokers", b->bootstrap, "--topic",
                          "in",          "--events",       events,      "--schema",   writer,
                          NULL};
    h_proc *pp = NULL;
    cr_assert_eq(h_run(prod, NULL, 120, &pp), 0, "%s", h_proc_stderr(pp));
    const char *extra[] = {"--exit-when-idle",   "2", "--schema", writer, "--schema-registry",
                           "http://127.0.0.1:1", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "w:", settings, extra);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    json_t *want = simulate(settings, events);
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 10, outp), 0);
    json_t *got = load_lines(outp);
    json_equal_or_fail(got, want, "plain values of another writer");
    json_decref(got);
    json_decref(want);
    /* a --schema that is empty, missing or does not resolve is a usage error, said at start */
    const char *empty = h_path("empty.avsc");
    h_write_file(empty, "");
    const char *bad[] = {empty, "/nonexistent.avsc", NULL};
    for (size_t k = 0; bad[k]; k++) {
        const char *usage[] = {"--schema", bad[k], NULL};
        h_proc *q = start_run(b->bootstrap, &r, "in", "out", "g2", "w2:", settings, usage);
        cr_assert_eq(h_proc_wait(q, 30), 2, "%s", h_proc_stderr(q));
        char *text = h_proc_stderr(q);
        cr_assert(strstr(text, bad[k]), "the file is not named: %s", text);
        free(text);
    }
}

/* The schema registry stand-in serving the bundled schema as id 9, failing every request when
 * failing is set; its URL in url. */
static h_proc *registry_standin(bool failing, char url[64])
{
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", h_path(failing ? "registry-down" : "registry-up"));
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/9.avsc", dir);
    char *schema = h_read_file(h_source_path("schemas/UserChangeEvent.avsc"));
    h_write_file(path, schema);
    free(schema);
    const char *argv[] = {"python3",
                          h_source_path("tests/standins/schema_registry.py"),
                          "--dir",
                          dir,
                          failing ? "--fail-ids" : NULL,
                          "9",
                          NULL};
    h_proc *reg = h_proc_start(argv, NULL);
    cr_assert(h_proc_wait_output(reg, false, "\n", 10), "the registry stand-in did not start");
    char *port = h_proc_stdout(reg);
    snprintf(url, 64, "http://127.0.0.1:%d", atoi(port));
    free(port);
    return reg;
}

/* R9.2, R9.4: a stop while the schema registry is away: the messages not decoded yet are left
 * for the next owner, not dead-lettered as undecodable (their offsets committed, their events
 * lost to the topic's readers). The next instance, with the registry back, decides them all. */
Test(pipeline, a_stop_while_the_registry_is_away_leaves_the_batch_to_the_next_owner)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out,in.dlq");
    char settings[PATH_MAX], events[PATH_MAX];
    scenario_files("hierarchy_pending", settings, events);
    const char *prod[] = {h_pv_binary(), "produce-events", "--brokers", b->bootstrap,  "--topic",
                          "in",          "--events",       events,      "--schema-id", "9",
                          NULL};
    h_proc *pp = NULL;
    cr_assert_eq(h_run(prod, NULL, 120, &pp), 0, "%s", h_proc_stderr(pp));
    char url[64];
    h_proc *down = registry_standin(true, url);
    const char *extra[] = {"--schema-registry", url, "--dlq-topic", "in.dlq", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "s:", settings, extra);
    cr_assert(h_proc_wait_output(p, true, "schema registry unavailable; retrying", 60), "%s",
              h_proc_stderr(p));
    cr_assert_eq(h_proc_stop(p, 30), 0, "%s", h_proc_stderr(p));
    h_proc_stop(down, 5);
    h_proc *up = registry_standin(false, url);
    const char *idle[] = {"--schema-registry", url, "--dlq-topic", "in.dlq",
                          "--exit-when-idle",  "2", NULL};
    p = start_run(b->bootstrap, &r, "in", "out", "g", "s:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    h_proc_stop(up, 5);
    json_t *want = simulate(settings, events);
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 10, outp), 0);
    json_t *got = load_lines(outp);
    json_equal_or_fail(got, want, "events read again after a stop in a registry outage");
    json_decref(got);
    json_decref(want);
    rd_kafka_t *cons = read_from_start(b->bootstrap, "in.dlq");
    rd_kafka_message_t *m = next_message(cons);
    cr_assert_null(m, "a message was dead-lettered during the outage (offset %lld)",
                   m ? (long long)m->offset : -1LL);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
}

/* interfaces.md: each command's Kafka key is its sf_user_id, empty for COMPANY_SETTINGS, which
 * goes to partition 0 so that company commands keep their order. */
Test(pipeline, each_commands_key_is_its_sf_user_id)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out:4");
    char settings[PATH_MAX], events[PATH_MAX];
    scenario_files("r1_r4_r7_review_p_cfg_company_settings_on", settings, events);
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "k:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    perr err;
    char errstr[256];
    rd_kafka_conf_t *cc = kafka_conf_new(b->bootstrap, NULL, 0, &err);
    kafka_conf_set(cc, "group.id", "key-reader", &err);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t part = 0; part < 4; part++)
        rd_kafka_topic_partition_list_add(l, "out", part)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    size_t seen = 0, company = 0;
    for (int i = 0; i < 100 && seen < 2; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m) continue;
        if (!m->err) {
            json_t *v = json_loadb(m->payload, m->len, 0, NULL);
            cr_assert_not_null(v, "a command that is not JSON");
            const char *id = json_string_value(json_object_get(v, "sf_user_id"));
            const char *type = json_string_value(json_object_get(v, "type"));
            cr_assert_not_null(id);
            cr_assert_eq(m->key_len, strlen(id), "%s: key of %zu bytes", type, m->key_len);
            cr_assert(memcmp(m->key, id, m->key_len) == 0, "%s: key is not %s", type, id);
            if (strcmp(type, "COMPANY_SETTINGS") == 0) {
                /* an empty key: the default partitioner would pick one at random */
                cr_assert_eq(m->partition, 0, "company commands keep to one partition");
                company++;
            }
            json_decref(v);
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(seen, 2, "COMPANY_SETTINGS and CREATE_USER");
    cr_assert_eq(company, 1);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
}

/* A redis-server of this test's own with an append-only file, so that a SIGKILL loses only what
 * a crash would, and a restart on the same port and dir reads it back. */
typedef struct own_redis {
    int port;
    char url[64];
    char dir[PATH_MAX];
    h_proc *proc;
} own_redis;

static void own_redis_start(own_redis *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[] = {"redis-server", "--port",        port,     "--bind",
                          "127.0.0.1",    "--save",        "",       "--appendonly",
                          "yes",          "--appendfsync", "always", "--dir",
                          r->dir,         "--daemonize",   "no",     NULL};
    r->proc = h_proc_start(argv, NULL);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    h_redis probe = {.port = r->port};
    for (int i = 0; i < 100; i++) {
        char *pong = h_redis_cmd(&probe, "PING");
        if (pong) {
            free(pong);
            return;
        }
        usleep(50000);
    }
    cr_assert_fail("redis-server did not answer on port %d", r->port);
}

/* A deep org chart (six levels) over many small batches: the chains above the managers each
 * batch names are read from the state the batches before left (store_redis_prefetch_chains),
 * and every cycle check (R6.4) and placement (R6.3) comes out as simulate decides them. */
Test(pipeline, a_deep_org_chart_over_many_batches_is_decided_as_simulate_decides_it)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *events = v_gen_events(2000, 6000, 11, "deep");
    const char *settings = h_source_path("examples/settings.yaml");
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *extra[] = {"--exit-when-idle", "3", "--batch-size", "60", NULL};
    h_proc *svc = start_run(b->bootstrap, &r, "in", "out", "g", "d:", settings, extra);
    cr_assert_eq(h_proc_wait(svc, 240), 0, "%s", h_proc_stderr(svc));
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", 0, 5, outp), 0);
    json_t *got = load_lines(outp), *want = simulate(settings, events);
    json_equal_or_fail(got, want, "a deep org chart");
    size_t managers = 0;
    for (size_t i = 0; i < json_array_size(want); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(want, i), "type"));
        managers += t && strcmp(t, "SET_MANAGER") == 0;
    }
    cr_assert_gt(managers, 100, "the events change managers: %zu SET_MANAGER", managers);
    json_decref(got);
    json_decref(want);
}

Test(pipeline, redis_killed_mid_stream_loses_nothing)
{
    own_redis r = {.port = h_free_port()};
    snprintf(r.dir, sizeof r.dir, "%s", h_path("redis-aof"));
    mkdir(r.dir, 0700);
    own_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *events = v_gen_events(300, 4000, 5, "flat");
    const char *settings = h_source_path("examples/settings.yaml");
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    h_redis as_h = {.port = r.port};
    snprintf(as_h.url, sizeof as_h.url, "%s", r.url);
    const char *extra[] = {"--exit-when-idle", "4", "--batch-size", "100", NULL};
    h_proc *svc = start_run(b->bootstrap, &as_h, "in", "out", "g", "k:", settings, extra);
    /* wait until the service has written some state, then crash Redis under it */
    for (int i = 0; i < 300; i++) {
        char *n = h_redis_cmd(&as_h, "DBSIZE");
        bool some = n && atoi(n + 1) > 50;
        free(n);
        if (some) break;
        usleep(20000);
    }
    h_proc_signal(r.proc, SIGKILL);
    h_proc_wait(r.proc, 10);
    sleep(2); /* the service retries with back-off meanwhile */
    cr_assert(h_proc_alive(svc), "the service must wait for Redis, not die");
    own_redis_start(&r);
    cr_assert_eq(h_proc_wait(svc, 240), 0, "%s", h_proc_stderr(svc));
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", 0, 5, outp), 0);
    json_t *got = load_lines(outp), *want = simulate(settings, events);
    same_ids_and_payloads(got, want, "Redis killed mid-stream");
    json_decref(got);
    json_decref(want);
}

/* SIGTERM in the middle: the service finishes its batch, commits and leaves; a restart picks up
 * from the committed offsets; together the two runs give exactly simulate's commands, nothing
 * lost, nothing decided twice with another outcome (R9.2). */
Test(pipeline, sigterm_mid_stream_commits_only_finished_work)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *events = v_gen_events(300, 4000, 9, "flat");
    const char *settings = h_source_path("examples/settings.yaml");
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *extra[] = {"--batch-size", "50", "-X", "session.timeout.ms=6000", NULL};
    h_proc *svc = start_run(b->bootstrap, &r, "in", "out", "g", "t:", settings, extra);
    for (int i = 0; i < 500; i++) { /* until some batches are done */
        char *n = h_redis_cmd(&r, "DBSIZE");
        bool some = n && atoi(n + 1) > 30;
        free(n);
        if (some) break;
        usleep(10000);
    }
    h_proc_signal(svc, SIGTERM);
    cr_assert_eq(h_proc_wait(svc, 60), 0, "a clean stop on SIGTERM: %s", h_proc_stderr(svc));
    const char *idle[] = {"--exit-when-idle", "3", "-X", "session.timeout.ms=6000", NULL};
    h_proc *again = start_run(b->bootstrap, &r, "in", "out", "g", "t:", settings, idle);
    cr_assert_eq(h_proc_wait(again, 240), 0, "%s", h_proc_stderr(again));
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", 0, 5, outp), 0);
    json_t *got = load_lines(outp), *want = simulate(settings, events);
    json_equal_or_fail(got, want, "stopped with SIGTERM and restarted");
    json_decref(got);
    json_decref(want);
}

/* R8.3: "an alert is logged and counted". Once the guard trips under a backlog, holds come by the
 * thousand: the first HELD_LINES_PER_MINUTE (100) name their users, one more line counts the rest;
 * the commands are those of simulate (nothing held goes out). */
Test(pipeline, r8_3_holds_past_a_hundred_a_minute_are_counted_in_one_line)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *settings = h_path("settings.yaml");
    char *yaml = h_read_file(h_source_path("tests/scenarios/r8_3_guard_count_exact_limit/"
                                           "settings.yaml"));
    cr_assert_not_null(yaml);
    h_write_file(settings, yaml);
    free(yaml);
    const char *events = h_path("events.jsonl");
    FILE *f = fopen(events, "w");
    cr_assert_not_null(f);
    const int users = 150; /* max_deactivations 2: 148 held */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 1; i <= users; i++) {
            long long n = 1000000 + pass * 1000 + i;
            fprintf(f,
                    "{\"ChangeEventHeader\": {\"entityName\": \"User\", \"recordIds\": "
                    "[\"0055e%010dAAK\"], \"changeType\": \"%s\", \"changedFields\": [%s], "
                    "\"nulledFields\": [], \"diffFields\": [], \"transactionKey\": \"tx-%lld\", "
                    "\"sequenceNumber\": 1, \"commitTimestamp\": %lld, \"commitNumber\": %lld, "
                    "\"commitUser\": \"0055e0000000AdmAAC\", \"changeOrigin\": \"\"}, %s}\n",
                    i, pass ? "UPDATE" : "CREATE", pass ? "\"IsActive\"" : "", n,
                    1764001000000LL + n, n,
                    pass ? "\"IsActive\": false"
                         : "\"Email\": \"u@acme.com\", \"FirstName\": \"F\", \"LastName\": \"L\", "
                           "\"IsActive\": true");
        }
    fclose(f);
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "p:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    json_t *want = simulate(settings, events);
    cr_assert_eq(json_array_size(want), (size_t)users + 2, "simulate: %zu commands",
                 json_array_size(want));
    const char *outp = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 10, outp), 0);
    json_equal_or_fail(load_lines(outp), want, "commands with deactivations held");
    char *log = h_proc_stderr(p);
    int named = 0;
    for (const char *s = log; (s = strstr(s, "held by the mass-deactivation guard;")); s++)
        named++;
    cr_assert_eq(named, 100, "%d held deactivations named in the log", named);
    cr_assert(strstr(log, "\"not_logged\":\"48\""), "no line counting the other 48:\n%s", log);
}

/* `explain --live` reads the user as the service left it in Redis: for every user of the example
 * events (hierarchy, moves between assignments, deactivations, the guard's holds), the same words
 * as `explain` after the same events offline (one partition: the same order, so the same
 * decisions); it writes nothing; what it cannot read is an error, not an explanation. */
static h_proc *explain_live(const h_redis *r, const char *prefix, const char *settings,
                            const char *user, const char *out)
{
    const char *argv[] = {h_pv_binary(), "explain",        "--live", "--redis",
                          r->url,        "--redis-prefix", prefix,   "--settings",
                          settings,      "--user",         user,     NULL};
    h_proc *p = h_proc_start_to(argv, NULL, out);
    h_proc_wait(p, 30);
    return p;
}

Test(pipeline, explain_live_says_what_explain_says_after_the_same_events)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *settings = h_source_path("examples/settings.yaml"),
               *events = h_source_path("examples/events.jsonl");
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    h_proc *p = start_run(b->bootstrap, &r, "in", "out", "g", "p:", settings, idle);
    cr_assert_eq(h_proc_wait(p, 120), 0, "%s", h_proc_stderr(p));
    char *all = h_read_file(events);
    cr_assert_not_null(all);
    json_t *ids = json_object(); /* every user named, once */
    for (char *s = all; (s = strstr(s, "\"recordIds\":[\""));) {
        s += strlen("\"recordIds\":[\"");
        char *end = strchr(s, '"');
        cr_assert_not_null(end);
        *end = '\0';
        json_object_set_new(ids, s, json_true());
        s = end + 1;
    }
    free(all);
    cr_assert_gt(json_object_size(ids), 50);
    json_object_set_new(ids, "0055e0000000999AAK", json_true()); /* named by no event */
    char *keys_before = h_redis_cmd(&r, "DBSIZE");
    const char *id;
    json_t *v;
    size_t active = 0, held = 0;
    const char *live_out = h_path("live.txt"), *off_out = h_path("offline.txt");
    json_object_foreach(ids, id, v)
    {
        h_proc *lp = explain_live(&r, "p:", settings, id, live_out);
        cr_assert_eq(h_proc_wait(lp, 30), 0, "%s: %s", id, h_proc_stderr(lp));
        const char *off_argv[] = {h_pv_binary(), "explain", "--guards", "--settings", settings,
                                  "--events",    events,    "--user",   id,           NULL};
        h_proc *op = h_proc_start_to(off_argv, NULL, off_out);
        cr_assert_eq(h_proc_wait(op, 30), 0, "%s: %s", id, h_proc_stderr(op));
        char *live = h_read_file(live_out), *off = h_read_file(off_out);
        cr_assert(live && off && *live);
        /* offline alone knows the events R1.4 left out (a line of its own, last) */
        char *left_out = strstr(off, "  Events of this user left out");
        if (left_out) *left_out = '\0';
        cr_assert_str_eq(live, off, "%s", id);
        active += strstr(live, ": active in Gong.") != NULL;
        held += strstr(live, "held by the mass-deactivation guard") != NULL;
        free(live);
        free(off);
    }
    cr_assert_gt(active, 20, "only %zu users active in Gong", active);
    cr_assert_gt(held, 0, "no deactivation the guard holds among them");
    json_decref(ids);
    char *keys_after = h_redis_cmd(&r, "DBSIZE");
    cr_assert(keys_before && keys_after);
    cr_assert_str_eq(keys_after, keys_before, "explain --live wrote to Redis");
    free(keys_before);
    free(keys_after);
    /* a prefix (or database) the service does not use: not "nothing is known" of everyone */
    h_proc *wp = explain_live(&r, "other:", settings, "0055e0000000003AAK", live_out);
    cr_assert_eq(h_proc_wait(wp, 30), 1);
    cr_assert(strstr(h_proc_stderr(wp), "no user state under the prefix 'other:'"), "%s",
              h_proc_stderr(wp));
    /* a state that cannot be read on the way (the manager's): an error, and nothing printed */
    char *set = h_redis_cmd(&r, "SET p:u:0055e0000000001AAK garbage");
    free(set);
    h_proc *cp = explain_live(&r, "p:", settings, "0055e0000000003AAK", live_out);
    cr_assert_eq(h_proc_wait(cp, 30), 1, "%s", h_proc_stderr(cp));
    cr_assert(strstr(h_proc_stderr(cp), "p:u:0055e0000000001AAK"), "%s", h_proc_stderr(cp));
    char *printed = h_read_file(live_out);
    cr_assert(printed && !*printed, "printed: %s", printed);
    free(printed);
    /* Redis away: an error, not an explanation of nothing */
    h_redis away = {.port = 1};
    snprintf(away.url, sizeof away.url, "redis://127.0.0.1:1");
    h_proc *ap = explain_live(&away, "p:", settings, "0055e0000000001AAK", live_out);
    cr_assert_eq(h_proc_wait(ap, 30), 1);
    cr_assert(strstr(h_proc_stderr(ap), "cannot connect"), "%s", h_proc_stderr(ap));
    /* relationship filters read as null would explain the service's decisions wrongly */
    const char *rel = h_path("rel.yaml");
    h_write_file(rel, "company:\n  primary_domain: acme.com\nassignments:\n  - name: Sales\n"
                      "    filter: \"Profile.Name = 'Sales User'\"\n");
    h_proc *rp = explain_live(&r, "p:", rel, "0055e0000000003AAK", live_out);
    cr_assert_eq(h_proc_wait(rp, 30), 2);
    cr_assert(strstr(h_proc_stderr(rp), "give --lookups FILE, or Salesforce access"), "%s",
              h_proc_stderr(rp));
}
