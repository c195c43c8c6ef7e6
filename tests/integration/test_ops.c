/* Operations (issue 9) against the real service: `provisioner run --http-port` with Redis and the
 * dev broker. /healthz and /readyz over HTTP, /metrics names moving as events flow, the reimport
 * token refused when wrong, and the settings reloaded on SIGHUP (good and bad files) and when the
 * file is edited in place. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "http_client.h"
#include "verify.h"

TestSuite(ops, .fini = h_teardown, .timeout = 300);

/* ---------------------------------------------------------------- HTTP */

static long status_of(int port, const char *path)
{
    h_reply r = h_http(port, "GET", path, NULL);
    free(r.body);
    return r.status;
}

/* Polls until path answers want, up to timeout_s. */
static bool wait_status(int port, const char *path, long want, double timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        if (status_of(port, path) == want) return true;
        usleep(100000);
    }
    return false;
}

/* A sample's value from the exposition text: `series` is the name with its labels as rendered
 * (`name` or `name{k="v"}`); with sum_family, a bare family name sums every series of it. -1 when
 * absent. */
static double sample(const char *text, const char *series, bool sum_family)
{
    size_t n = strlen(series);
    double total = -1;
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (*line == '#' || strncmp(line, series, n) != 0) continue;
        const char *rest = line + n;
        if (*rest == ' ' || (sum_family && *rest == '{')) {
            const char *v = strchr(rest, ' ');
            if (!v) continue;
            total = (total < 0 ? 0 : total) + strtod(v + 1, NULL);
            if (!sum_family) break;
        }
    }
    return total;
}

static double metric_now(int port, const char *series, bool sum_family)
{
    h_reply r = h_http(port, "GET", "/metrics", NULL);
    double v = r.status == 200 ? sample(r.body, series, sum_family) : -1;
    free(r.body);
    return v;
}

static bool wait_metric(int port, const char *series, bool sum_family, double want,
                        double timeout_s, double *last)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        *last = metric_now(port, series, sum_family);
        if (*last == want) return true;
        usleep(100000);
    }
    return false;
}

/* For the reload counters: the 2 s file check may see a change before the SIGHUP that follows it
 * is handled, and the SIGHUP then reloads once more. */
static bool wait_metric_at_least(int port, const char *series, double want, double timeout_s,
                                 double *last)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        *last = metric_now(port, series, false);
        if (*last >= want) return true;
        usleep(100000);
    }
    return false;
}

/* ---------------------------------------------------------------- the service */

static h_proc *start_service_with(const char *brokers, const h_redis *r, const char *settings,
                                  int port, const char *token_file, bool salesforce,
                                  const char *const *extra)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    const char *argv[40] = {h_pv_binary(),
                            "run",
                            "--brokers",
                            brokers,
                            "--redis",
                            r->url,
                            "--input-topic",
                            "in",
                            "--output-topic",
                            "out",
                            "--group",
                            "g",
                            "--settings",
                            settings,
                            "--batch-linger-ms",
                            "5",
                            "--http-port",
                            p,
                            "--http-bind",
                            "127.0.0.1",
                            "-X",
                            "session.timeout.ms=6000"};
    size_t n = 22;
    if (token_file) {
        argv[n++] = "--reimport-token-file";
        argv[n++] = token_file;
    }
    if (salesforce) { /* configured, not reachable: enough for a request to be queued */
        static char secret[PATH_MAX];
        snprintf(secret, sizeof secret, "%s", h_path("sf-secret"));
        h_write_file(secret, "s3cret\n");
        const char *sf[] = {"--salesforce-url",
                            "http://127.0.0.1:9",
                            "--salesforce-client-id",
                            "cid",
                            "--salesforce-client-secret-file",
                            secret};
        for (size_t i = 0; i < 6; i++)
            argv[n++] = sf[i];
    }
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    const char *env[] = {"PROVISIONER_LOG_LEVEL=info", NULL};
    return h_proc_start(argv, env);
}

static h_proc *start_service(const char *brokers, const h_redis *r, const char *settings, int port,
                             const char *token_file, bool salesforce)
{
    return start_service_with(brokers, r, settings, port, token_file, salesforce, NULL);
}

static json_t *load_lines(const char *path) { return v_drop_source(v_load_lines(path)); }

static json_t *simulate(const char *settings, const char *events)
{
    return v_drop_source(v_simulate(settings, events));
}

static size_t count_type(json_t *cmds, const char *type)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0) n++;
    }
    return n;
}

/* Replaces the first `from` in text by `to` (malloc'd); the test fails if from is absent. */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in the settings", from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* The names /metrics must carry from the start (issue 9; deploy/OPERATIONS.md). */
static const char *const families[] = {
    "provisioner_events_consumed_total",
    "provisioner_events_skipped_total",
    "provisioner_commands_produced_total",
    "provisioner_decisions_total",
    "provisioner_decode_errors_total",
    "provisioner_dead_lettered_total",
    "provisioner_batch_size",
    "provisioner_end_to_end_latency_seconds",
    "provisioner_redis_latency_seconds",
    "provisioner_produce_latency_seconds",
    "provisioner_batch_step_seconds",
    "provisioner_consumer_lag",
    "provisioner_held_deactivations",
    "provisioner_salesforce_api_used",
    "provisioner_salesforce_api_max",
    "provisioner_settings_reloads_total",
    "provisioner_redis_round_trips_total",
    "provisioner_messages_consumed_total",
    "provisioner_assigned_partitions",
    "provisioner_settings_reload_failing",
    "provisioner_rebalances_total",
    "provisioner_fetch_wakeups_total",
    "provisioner_lookup_reads_total",
    "provisioner_lookup_records",
    "provisioner_lookup_age_seconds",
};

/* Redis, a one-partition broker and the service on the example settings, answering /healthz. */
typedef struct example {
    h_redis r;
    h_broker *b;
    int port;
    h_proc *svc;
} example;

static void start_example(example *e, const char *token_file, bool salesforce)
{
    h_redis_start(&e->r);
    e->b = h_broker_start(1, "in,out");
    e->port = h_free_port();
    e->svc = start_service(e->b->bootstrap, &e->r, h_source_path("examples/settings.yaml"), e->port,
                           token_file, salesforce);
    cr_assert(wait_status(e->port, "/healthz", 200, 20), "%s", h_proc_stderr(e->svc));
}

/* ---------------------------------------------------------------- tests */

Test(ops, probes_metrics_and_the_reimport_token_over_http)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out,in.dlq");
    const char *settings = h_source_path("examples/settings.yaml");
    const char *events = h_source_path("examples/events.jsonl");
    const char *token = h_path("token");
    h_write_file(token, "s3cret-token\n");
    int port = h_free_port();
    h_proc *svc = start_service(b->bootstrap, &r, settings, port, token, true);

    cr_assert(wait_status(port, "/healthz", 200, 20), "/healthz never answered 200: %s",
              h_proc_stderr(svc));
    cr_assert(wait_status(port, "/readyz", 200, 60), "/readyz never became ready: %s",
              h_proc_stderr(svc));
    h_reply m = h_http(port, "GET", "/metrics", NULL);
    cr_assert_eq(m.status, 200);
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
        char help[128];
        snprintf(help, sizeof help, "# HELP %s ", families[i]);
        cr_assert(strstr(m.body, help), "/metrics lacks %s", families[i]);
    }
    cr_assert_eq(sample(m.body, "provisioner_events_consumed_total", true), 0);
    free(m.body);
    cr_assert_eq(status_of(port, "/nowhere"), 404);

    /* events flow: the counters reach what simulate says */
    json_t *want = simulate(settings, events);
    double creates = (double)count_type(want, "CREATE_USER"), got;
    cr_assert_gt(creates, 10);
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    size_t n_events = h_count_lines(events);
    cr_assert(
        wait_metric(port, "provisioner_events_consumed_total", true, (double)n_events, 60, &got),
        "events consumed: %g, want %zu", got, n_events);
    cr_assert(wait_metric(port, "provisioner_commands_produced_total{type=\"CREATE_USER\"}", false,
                          creates, 30, &got),
              "CREATE_USER produced: %g, want %g", got, creates);
    cr_assert(wait_metric(port, "provisioner_commands_produced_total", true,
                          (double)json_array_size(want), 30, &got),
              "commands produced: %g, want %zu", got, json_array_size(want));
    m = h_http(port, "GET", "/metrics", NULL);
    cr_assert_eq(sample(m.body, "provisioner_messages_consumed_total", false), (double)n_events);
    cr_assert_eq(sample(m.body, "provisioner_end_to_end_latency_seconds_count", false),
                 (double)n_events, "one latency per message");
    cr_assert_geq(sample(m.body, "provisioner_batch_size_count", false), 1);
    cr_assert_eq(sample(m.body, "provisioner_batch_size_sum", false), (double)n_events);
    cr_assert_geq(sample(m.body, "provisioner_redis_latency_seconds_count{op=\"prefetch\"}", false),
                  1);
    cr_assert_geq(sample(m.body, "provisioner_redis_latency_seconds_count{op=\"flush\"}", false),
                  1);
    cr_assert_geq(sample(m.body, "provisioner_produce_latency_seconds_count", false), 1);
    /* every batch went through each step of at-least-once, timed (the transaction's: none) */
    double batches = sample(m.body, "provisioner_batch_size_count", false);
    const char *steps[] = {"collect", "decode",  "prefetch", "decide",
                           "seal",    "flights", "hand_over"};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        char name[96];
        snprintf(name, sizeof name, "provisioner_batch_step_seconds_count{step=\"%s\"}", steps[i]);
        cr_assert_geq(sample(m.body, name, false), batches, "%s", name);
        snprintf(name, sizeof name, "provisioner_batch_step_seconds_sum{step=\"%s\"}", steps[i]);
        cr_assert_geq(sample(m.body, name, false), 0, "%s", name);
    }
    cr_assert_eq(
        sample(m.body, "provisioner_batch_step_seconds_count{step=\"transaction\"}", false), 0);
    cr_assert_gt(sample(m.body, "provisioner_batch_step_seconds_sum{step=\"decide\"}", false), 0);
    cr_assert_geq(sample(m.body, "provisioner_redis_round_trips_total", false), 2);
    cr_assert_gt(sample(m.body, "provisioner_events_skipped_total{reason=\"not_user\"}", false), 0,
                 "the example has Account events");
    cr_assert_gt(sample(m.body, "provisioner_decisions_total{reason=\"in_scope\"}", false), 0);
    cr_assert_eq(sample(m.body, "provisioner_decode_errors_total", false), 0);
    free(m.body);
    /* the lag of the one partition, read every 5 s, comes down to 0 */
    cr_assert(wait_metric(port, "provisioner_consumer_lag{partition=\"0\"}", false, 0, 20, &got),
              "consumer lag: %g", got);
    cr_assert_eq(metric_now(port, "provisioner_assigned_partitions", false), 1);

    /* POST /reimport: the token is checked before anything is queued */
    h_reply x = h_http(port, "POST", "/reimport", NULL);
    cr_assert_eq(x.status, 401, "no token: %ld %s", x.status, x.body);
    free(x.body);
    x = h_http(port, "POST", "/reimport", "Bearer wrong-token");
    cr_assert_eq(x.status, 401, "a wrong token: %ld %s", x.status, x.body);
    free(x.body);
    x = h_http(port, "GET", "/reimport", "Bearer s3cret-token");
    cr_assert_eq(x.status, 405);
    free(x.body);
    cr_assert(!strstr(h_proc_stderr(svc), "reimport requested"), "a refused request was queued");
    x = h_http(port, "POST", "/reimport?dry_run=1", "Bearer s3cret-token");
    cr_assert_eq(x.status, 202, "the right token: %ld %s", x.status, x.body);
    free(x.body);
    cr_assert(h_proc_wait_output(svc, true, "\"msg\":\"reimport requested\"", 10),
              "the main loop did not take the request: %s", h_proc_stderr(svc));
    cr_assert(strstr(h_proc_stderr(svc), "\"dry_run\":\"yes\""));
    cr_assert(strstr(h_proc_stderr(svc), "\"msg\":\"http listening\""));

    cr_assert_eq(h_proc_stop(svc, 30), 0, "a clean stop: %s", h_proc_stderr(svc));
    cr_assert_eq(status_of(port, "/healthz"), 0, "the listener stops with the service");
    json_decref(want);
}

Test(ops, no_token_file_means_reimport_is_forbidden)
{
    example e;
    start_example(&e, NULL, true);
    h_reply x = h_http(e.port, "POST", "/reimport", "Bearer anything");
    cr_assert_eq(x.status, 403, "%ld %s", x.status, x.body);
    free(x.body);
    cr_assert_eq(h_proc_stop(e.svc, 30), 0, "%s", h_proc_stderr(e.svc));
}

/* SIGTERM while the first join of the group is under way (a rollout stopping a pod that just
 * started): a clean exit. librdkafka 2.0's cooperative-sticky assignor aborts a member closed
 * before its first assignment (3 of 8 such stops before); each stop lands before the group's
 * assignment (the dev broker assigns ~3 s after the join). */
Test(ops, a_stop_during_the_first_join_exits_cleanly)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    const char *settings = h_source_path("examples/settings.yaml");
    int tried = 0;
    for (int k = 0; k < 6; k++) {
        h_proc *svc = start_service(b->bootstrap, &r, settings, h_free_port(), NULL, false);
        cr_assert(h_proc_wait_output(svc, true, "\"msg\":\"consuming\"", 20), "%s",
                  h_proc_stderr(svc));
        usleep((useconds_t)(300 + 300 * k) * 1000);
        int st = h_proc_stop(svc, 30);
        char *log = h_proc_stderr(svc);
        cr_assert_eq(st, 0, "stop %d during the join: exit %d: %s", k + 1, st, log);
        if (!strstr(log, "partitions assigned")) tried++;
        free(log);
    }
    cr_assert_geq(tried, 3, "only %d of 6 stops came before the assignment", tried);
}

/* The example events through small batches, three in flight; with fault, one Produce request is
 * refused for good (its batch and the flights behind it are read again). Returns the decisions
 * and the skipped events on /metrics once every message is in a finished batch. */
static void decide_examples(bool fault, double *decisions, double *skipped)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start_control(1, "in,out", 1);
    cr_assert_eq(h_produce(b->bootstrap, "in", h_source_path("examples/events.jsonl")), 0);
    /* the service's first four Produce requests pass, the fifth is refused */
    for (int k = 0; fault && k < 2; k++) {
        char *ok = h_broker_control(b, k ? "error Produce MSG_SIZE_TOO_LARGE 1"
                                         : "error Produce NO_ERROR 4");
        cr_assert_str_eq(ok, "ok");
        free(ok);
    }
    int port = h_free_port();
    const char *extra[] = {"--batch-size", "10", "--batches-in-flight", "3", NULL};
    h_proc *svc = start_service_with(b->bootstrap, &r, h_source_path("examples/settings.yaml"),
                                     port, NULL, false, extra);
    double got;
    cr_assert(wait_metric(port, "provisioner_messages_consumed_total", false, 300, 60, &got),
              "%g of 300 consumed: %s", got, h_proc_stderr(svc));
    *decisions = metric_now(port, "provisioner_decisions_total", true);
    *skipped = metric_now(port, "provisioner_events_skipped_total", true);
    if (fault) {
        char *log = h_proc_stderr(svc);
        cr_assert(strstr(log, "reading the batch again") || strstr(log, "read again"),
                  "no batch was read again: %s", log);
        free(log);
    }
    cr_assert_eq(h_proc_stop(svc, 30), 0, "%s", h_proc_stderr(svc));
}

/* A delivery refused for good reads its batch and the flights behind it again: their events are
 * decided again and counted once on /metrics, as in a run without the fault. */
Test(ops, a_batch_read_again_counts_its_events_once)
{
    double clean_d, clean_s, fault_d, fault_s;
    decide_examples(false, &clean_d, &clean_s);
    decide_examples(true, &fault_d, &fault_s);
    cr_assert_gt(clean_d, 0);
    cr_assert_eq(fault_d, clean_d, "decisions: %g with a batch read again, %g without", fault_d,
                 clean_d);
    cr_assert_eq(fault_s, clean_s, "skipped: %g with a batch read again, %g without", fault_s,
                 clean_s);
}

/* An outage keeps the main loop retrying inside a batch: the retries must show on /metrics while
 * it lasts (the documented alert watches them with /readyz), not only once Redis is back. */
Test(ops, redis_retries_are_counted_while_redis_is_down_idle_or_busy)
{
    example e;
    start_example(&e, NULL, false);
    cr_assert(wait_status(e.port, "/readyz", 200, 60), "%s", h_proc_stderr(e.svc));
    /* idle: the 5 s check sees it, logs it once and counts it, and sees it come back */
    h_redis_kill(&e.r);
    cr_assert(wait_status(e.port, "/readyz", 503, 30), "%s", h_proc_stderr(e.svc));
    double got;
    cr_assert(wait_metric_at_least(e.port, "provisioner_redis_retries_total", 1, 10, &got),
              "an idle outage is not counted: %g", got);
    cr_assert(h_proc_wait_output(e.svc, true, "\"step\":\"idle check\"", 10), "not logged: %s",
              h_proc_stderr(e.svc));
    h_redis_restart(&e.r);
    cr_assert(wait_status(e.port, "/readyz", 200, 30), "%s", h_proc_stderr(e.svc));
    cr_assert(h_proc_wait_output(e.svc, true, "\"msg\":\"redis is back\"", 10), "%s",
              h_proc_stderr(e.svc));
    /* busy */
    h_redis_kill(&e.r);
    /* an undecodable message first: its batch waits for Redis, and it is counted once */
    v_produce_raw(e.b->bootstrap, "in", "bad", "garbage-not-avro", 16);
    cr_assert_eq(h_produce(e.b->bootstrap, "in", h_source_path("examples/events.jsonl")), 0);
    cr_assert(wait_metric_at_least(e.port, "provisioner_redis_retries_total", 3, 30, &got),
              "retries while Redis is down: %g: %s", got, h_proc_stderr(e.svc));
    cr_assert_eq(status_of(e.port, "/readyz"), 503, "Redis is still down");
    h_redis_restart(&e.r);
    cr_assert(wait_status(e.port, "/readyz", 200, 60), "%s", h_proc_stderr(e.svc));
    cr_assert(wait_metric(e.port, "provisioner_messages_consumed_total", false, 301, 60, &got),
              "%g of 301 consumed: %s", got, h_proc_stderr(e.svc));
    cr_assert_eq(metric_now(e.port, "provisioner_decode_errors_total", false), 1,
                 "one undecodable message, counted %g times",
                 metric_now(e.port, "provisioner_decode_errors_total", false));
    cr_assert_eq(h_proc_stop(e.svc, 30), 0, "%s", h_proc_stderr(e.svc));
}

/* R6.4's cycle checks walk chains of Gong managers: a deep org chart (six levels) over small
 * batches has them read before each batch is decided, a level a round trip, not a user at a time
 * as the checks walk them (one Redis round trip each, one per created user, before). */
Test(ops, a_deep_org_chart_is_read_a_level_at_a_time)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out");
    int port = h_free_port();
    const char *extra[] = {"--batch-size", "100", NULL};
    h_proc *svc = start_service_with(b->bootstrap, &r, h_source_path("examples/settings.yaml"),
                                     port, NULL, false, extra);
    cr_assert_eq(h_produce(b->bootstrap, "in", v_gen_events(2000, 6000, 11, "deep")), 0);
    double got;
    cr_assert(wait_metric(port, "provisioner_messages_consumed_total", false, 6000, 120, &got),
              "%g of 6000 consumed: %s", got, h_proc_stderr(svc));
    sleep(2); /* the last batches decided */
    double misses = metric_now(port, "provisioner_redis_misses_total", false);
    double trips = metric_now(port, "provisioner_redis_round_trips_total", false);
    cr_log_info("a deep org chart: %g misses, %g round trips", misses, trips);
    /* 60 batches; their users and named managers, waiting sets, chains and writes: a few round
     * trips each, ~550 in all, and 8 users read one by one (723 when the chains were read as the
     * cycle checks walked them, 22 with only the named managers' chains read ahead) */
    cr_assert(misses >= 0 && misses < 60, "%g users read one by one (%g round trips)", misses,
              trips);
    cr_assert(trips < 1000, "%g round trips (%g misses)", trips, misses);
    cr_assert_eq(h_proc_stop(svc, 30), 0, "%s", h_proc_stderr(svc));
}

/* R8.2 over HTTP without Salesforce access: nothing could run, so nothing is said to be queued */
Test(ops, reimport_without_salesforce_access_is_unavailable)
{
    const char *token = h_path("token");
    h_write_file(token, "s3cret-token\n");
    example e;
    start_example(&e, token, false);
    h_reply x = h_http(e.port, "POST", "/reimport", "Bearer s3cret-token");
    cr_assert_eq(x.status, 503, "%ld %s", x.status, x.body);
    cr_assert(strstr(x.body, "no Salesforce access is configured"), "%s", x.body);
    free(x.body);
    cr_assert_eq(h_proc_stop(e.svc, 30), 0, "%s", h_proc_stderr(e.svc));
    cr_assert(!strstr(h_proc_stderr(e.svc), "reimport requested"), "%s", h_proc_stderr(e.svc));
}

/* interfaces.md: `run` and `replay` take --http-port. A replay Job is watched as the service is;
 * its brokers down at start keep it waiting, so the listener is seen while it runs, and it
 * finishes once they are back. */
Test(ops, replay_answers_probes_and_metrics_while_it_runs)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start_control(1, "in,out,in.dlq", 1);
    const char *settings = h_source_path("examples/settings.yaml");
    const char *events = h_source_path("examples/events.jsonl");
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    char *ok = h_broker_control(b, "down 1");
    cr_assert(ok && strcmp(ok, "ok") == 0, "%s", ok ? ok : "no answer");
    free(ok);
    int port = h_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    const char *argv[] = {h_pv_binary(),
                          "replay",
                          "--from-beginning",
                          "--brokers",
                          b->bootstrap,
                          "--redis",
                          r.url,
                          "--input-topic",
                          "in",
                          "--output-topic",
                          "out",
                          "--replay-group",
                          "g-replay",
                          "--settings",
                          settings,
                          "--http-port",
                          p,
                          "--http-bind",
                          "127.0.0.1",
                          NULL};
    const char *env[] = {"PROVISIONER_LOG_LEVEL=info", NULL};
    h_proc *rp = h_proc_start(argv, env);
    cr_assert(wait_status(port, "/healthz", 200, 20), "%s", h_proc_stderr(rp));
    h_reply x = h_http(port, "GET", "/readyz", NULL);
    cr_assert_eq(x.status, 503, "no broker yet: %ld %s", x.status, x.body);
    free(x.body);
    x = h_http(port, "GET", "/metrics", NULL);
    cr_assert_eq(x.status, 200);
    cr_assert(strstr(x.body, "# HELP provisioner_events_consumed_total "), "%s", x.body);
    free(x.body);
    x = h_http(port, "POST", "/reimport", "Bearer anything");
    cr_assert_eq(x.status, 403, "a replay starts no reimport: %ld %s", x.status, x.body);
    free(x.body);

    ok = h_broker_control(b, "up 1");
    cr_assert(ok && strcmp(ok, "ok") == 0, "%s", ok ? ok : "no answer");
    free(ok);
    cr_assert_eq(h_proc_wait(rp, 120), 0, "the replay finishes: %s", h_proc_stderr(rp));
    cr_assert(strstr(h_proc_stderr(rp), "\"msg\":\"http listening\""), "%s", h_proc_stderr(rp));
    json_t *want = simulate(settings, events);
    const char *out = h_path("replayed.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 60, out), 0);
    cr_assert_eq(h_count_lines(out), json_array_size(want));
    cr_assert_eq(status_of(port, "/healthz"), 0, "the listener stops with the replay");
    json_decref(want);
}

Test(ops, settings_reload_on_sighup_good_and_bad_and_on_an_edit_in_place)
{
    h_redis r;
    h_redis_start(&r);
    h_broker *b = h_broker_start(1, "in,out,in.dlq");
    /* the settings in a directory of their own, as a ConfigMap mount is */
    const char *dir = h_path("conf");
    cr_assert_eq(mkdir(dir, 0700), 0);
    char settings[PATH_MAX];
    snprintf(settings, sizeof settings, "%s/settings.yaml", dir);
    char *base = h_read_file(h_source_path("examples/settings.yaml"));
    char *on = replace(base, "managers_can_toggle_data_capture: false",
                       "managers_can_toggle_data_capture: true");
    h_write_file(settings, base);
    int port = h_free_port();
    h_proc *svc = start_service(b->bootstrap, &r, settings, port, NULL, false);
    cr_assert(wait_status(port, "/readyz", 200, 60), "%s", h_proc_stderr(svc));

    /* 1. a good file on SIGHUP: in force, and R7.2 sends the switch (off before: nothing sent) */
    h_write_file(settings, on);
    h_proc_signal(svc, SIGHUP);
    cr_assert(
        h_proc_wait_output(svc, true, "\"msg\":\"settings reloaded\",\"trigger\":\"SIGHUP\"", 20),
        "no reload logged: %s", h_proc_stderr(svc));
    const char *out1 = h_path("out1.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", 1, 20, out1), 0);
    json_t *first = load_lines(out1);
    cr_assert_eq(json_array_size(first), 1, "COMPANY_SETTINGS after the reload");
    json_t *cs = json_array_get(first, 0);
    cr_assert_str_eq(json_string_value(json_object_get(cs, "type")), "COMPANY_SETTINGS");
    cr_assert(json_is_true(json_object_get(cs, "managers_can_toggle_data_capture")), "%s",
              json_dumps(cs, 0));
    json_decref(first);
    double got;
    cr_assert(wait_metric_at_least(port, "provisioner_settings_reloads_total{result=\"ok\"}", 1, 10,
                                   &got));

    /* 2. a bad file on SIGHUP: refused with its line, the settings in force stay. It also changes
     * a filter, which must not take effect. */
    char *filter = replace(on, "Department = 'Sales' AND", "Department = 'Nobody' AND");
    char *bad = replace(filter, "  primary_domain: acme.com\n",
                        "  primary_domain: acme.com\n  bogus_key: 1\n");
    h_write_file(settings, bad);
    h_proc_signal(svc, SIGHUP);
    cr_assert(h_proc_wait_output(svc, true, "settings reload refused", 20), "%s",
              h_proc_stderr(svc));
    char *log = h_proc_stderr(svc);
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "settings.yaml:5:3: unknown key 'bogus_key'");
    cr_assert(strstr(log, where), "the error names the file, line and column: %s", log);
    cr_assert(strstr(log, "\"level\":\"error\""));
    free(log);
    cr_assert(h_proc_alive(svc), "a bad file must not stop the service");
    cr_assert(wait_metric_at_least(port, "provisioner_settings_reloads_total{result=\"error\"}", 1,
                                   10, &got));
    cr_assert_eq(metric_now(port, "provisioner_settings_reload_failing", false), 1);
    cr_assert_eq(status_of(port, "/readyz"), 200, "the old settings are in force: still ready");

    /* events decided now follow the settings in force (`on`), not the refused file */
    const char *events = h_source_path("examples/events.jsonl");
    const char *on_path = h_path("on.yaml");
    h_write_file(on_path, on);
    json_t *want = simulate(on_path, events); /* COMPANY_SETTINGS first, then the events' */
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *out2 = h_path("out2.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want), 60, out2), 0);
    json_t *got2 = load_lines(out2);
    cr_assert_eq(json_array_size(got2), json_array_size(want), "%zu commands, simulate %zu",
                 json_array_size(got2), json_array_size(want));
    cr_assert(json_equal(got2, want),
              "the service decided with other settings than those in force");
    json_decref(got2);

    /* 3. the file edited in place, no signal: reloaded within the 2 s check once it settles.
     * Written slowly (half, then a chunk every 200 ms, 2.4 s in all), it is half-written at a
     * check or two: neither refused nor loaded meanwhile */
    char *mark = h_proc_stderr(svc);
    size_t logged = strlen(mark);
    free(mark);
    FILE *f = fopen(settings, "w"); /* same inode, as an editor saving in place */
    cr_assert_not_null(f);
    size_t len = strlen(base), at = len / 2;
    fwrite(base, 1, at, f);
    for (int k = 12; k > 0; k--) {
        fflush(f);
        usleep(200 * 1000);
        size_t n = (len - at) / (size_t)k;
        fwrite(base + at, 1, n, f);
        at += n;
    }
    fclose(f);
    mark = h_proc_stderr(svc);
    cr_assert_null(strstr(mark + logged, "\"msg\":\"settings reload"),
                   "the half-written file was looked at: %s", mark + logged);
    free(mark);
    cr_assert(h_proc_wait_output(svc, true,
                                 "\"msg\":\"settings reloaded\",\"trigger\":\"file changed\"", 20),
              "%s", h_proc_stderr(svc));
    const char *out3 = h_path("out3.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", (int)json_array_size(want) + 1, 30, out3), 0);
    json_t *all = load_lines(out3);
    cr_assert_eq(json_array_size(all), json_array_size(want) + 1);
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(last, "type")), "COMPANY_SETTINGS");
    cr_assert(json_is_false(json_object_get(last, "managers_can_toggle_data_capture")));
    cr_assert(wait_metric(port, "provisioner_settings_reload_failing", false, 0, 10, &got));
    cr_assert(wait_metric_at_least(port, "provisioner_settings_reloads_total{result=\"ok\"}", 2, 10,
                                   &got));
    json_decref(all);

    /* a touch without a change of content reloads nothing */
    char *before = h_proc_stderr(svc);
    size_t reloads = 0;
    for (const char *s = before; (s = strstr(s, "settings reloaded")); s++)
        reloads++;
    free(before);
    f = fopen(settings, "a");
    fclose(f);
    utimensat(AT_FDCWD, settings, NULL, 0);
    sleep(3);
    char *after = h_proc_stderr(svc);
    size_t reloads_after = 0;
    for (const char *s = after; (s = strstr(s, "settings reloaded")); s++)
        reloads_after++;
    free(after);
    cr_assert_eq(reloads_after, reloads, "the same bytes were loaded again");

    /* 4. a filter field one letter off a User field loads (valid SOQL) with a warning in the log,
     * as check-config gives it: it would read as null in every event */
    char *typo = replace(base, "Department = 'Sales' AND", "Departmnt = 'Sales' AND");
    cr_assert(strcmp(typo, base) != 0, "the example's filter changed: adapt the test");
    h_write_file(settings, typo);
    h_proc_signal(svc, SIGHUP);
    cr_assert(h_proc_wait_output(svc, true,
                                 "the filter reads 'Departmnt', which is no User field "
                                 "of the event schema: did you mean 'Department'?",
                                 20),
              "%s", h_proc_stderr(svc));
    log = h_proc_stderr(svc);
    cr_assert(strstr(log, "\"level\":\"warn"), "%s", log);
    free(log);

    cr_assert_eq(h_proc_stop(svc, 30), 0, "%s", h_proc_stderr(svc));
    json_decref(want);
    free(base);
    free(on);
    free(filter);
    free(bad);
    free(typo);
}
