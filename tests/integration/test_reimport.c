/* Salesforce in the service (issue 8): gap events read the current record (R1.3), "Reimport users
 * now" reconciles a drifted state (R8.1), the mass-deactivation guard holds and releases (R8.3),
 * a dry run changes nothing (R8.2), and a reimport never overwrites newer event data. Against the
 * Salesforce stand-in (tests/standins/salesforce.py), real redis-server and the dev broker. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "http_client.h"
#include "util/util.h"

TestSuite(reimport, .fini = h_teardown, .timeout = 300);

typedef struct env {
    h_redis redis;
    h_broker *broker;
    h_proc *sf;
    char sf_url[64];
    char secret[PATH_MAX];
    char settings[PATH_MAX];
} env;

static const char *SETTINGS =
    "company:\n  primary_domain: acme.com\n"
    "assignments:\n  - name: Sales\n    filter: \"Department = 'Sales'\"\n"
    "    seats: [recorder]\n%s";

/* A User as Salesforce's REST API returns it. */
static void user_json(buf *b, int n, const char *title, bool active, const char *modstamp)
{
    buf_printf(b,
               "{\"attributes\":{\"type\":\"User\"},\"Id\":\"0055e%010dAAK\","
               "\"Email\":\"u%d@acme.com\",\"FirstName\":\"F%d\",\"LastName\":\"L%d\","
               "\"Title\":\"%s\",\"Department\":\"Sales\",\"IsActive\":%s,"
               "\"SystemModstamp\":\"%s\",\"LastModifiedDate\":\"%s\"}",
               n, n, n, n, title, active ? "true" : "false", modstamp, modstamp);
}

/* (Re)starts the stand-in serving these users: it reads its data file once, at start. */
static void sf_serve(env *e, const char *users_json)
{
    if (e->sf) h_proc_stop(e->sf, 5);
    const char *data = h_path("users.json");
    h_write_file(data, users_json);
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s", h_source_path("tests/standins/salesforce.py"));
    const char *argv[] = {
        "python3",       script,        "--data", data,          "--client-secret-file",
        e->secret,       "--client-id", "cid",    "--page-size", "3",
        "--max-seconds", "280",         NULL};
    e->sf = h_proc_start_piped(argv, NULL);
    cr_assert(h_proc_wait_output(e->sf, false, "\n", 10), "the stand-in did not start");
    char *out = h_proc_stdout(e->sf);
    snprintf(e->sf_url, sizeof e->sf_url, "http://127.0.0.1:%d", atoi(out));
    free(out);
}

static void start_env(env *e, const char *users_json, const char *guards)
{
    memset(e, 0, sizeof *e);
    h_redis_start(&e->redis);
    e->broker = h_broker_start(1, "in,out");
    char settings[1024];
    snprintf(settings, sizeof settings, SETTINGS, guards ? guards : "");
    snprintf(e->settings, sizeof e->settings, "%s", h_path("settings.yaml"));
    h_write_file(e->settings, settings);
    snprintf(e->secret, sizeof e->secret, "%s", h_path("secret"));
    h_write_file(e->secret, "s3cret\n");
    sf_serve(e, users_json);
}

static json_t *lines_of(const char *path)
{
    json_t *arr = json_array();
    char *text = h_read_file(path), *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        if (j) json_array_append_new(arr, j);
    }
    free(text);
    return arr;
}

static h_proc *start_cmd(env *e, const char *sub, const char *const *extra, const char *out_path)
{
    const char *argv[48] = {h_pv_binary(),
                            sub,
                            "--settings",
                            e->settings,
                            "--redis",
                            e->redis.url,
                            "--salesforce-url",
                            e->sf_url,
                            "--salesforce-client-id",
                            "cid",
                            "--salesforce-client-secret-file",
                            e->secret};
    size_t n = 12;
    if (strcmp(sub, "held") == 0) n = 6; /* held reads the state only */
    if (strcmp(sub, "run") == 0 || strcmp(sub, "reimport") == 0) {
        argv[n++] = "--brokers";
        argv[n++] = e->broker->bootstrap;
        argv[n++] = "--output-topic";
        argv[n++] = "out";
    }
    if (strcmp(sub, "run") == 0) {
        argv[n++] = "--input-topic";
        argv[n++] = "in";
    }
    for (size_t i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    const char *env_[] = {"PROVISIONER_LOG_LEVEL=warn", NULL};
    return out_path ? h_proc_start_to(argv, env_, out_path) : h_proc_start(argv, env_);
}

static int run_cmd(env *e, const char *sub, const char *const *extra, const char *out_path)
{
    h_proc *p = start_cmd(e, sub, extra, out_path);
    int rc = h_proc_wait(p, 120);
    if (rc != 0) fprintf(stderr, "%s %s: %s\n", h_pv_binary(), sub, h_proc_stderr(p));
    return rc;
}

static json_t *output(env *e)
{
    const char *p = h_path("out.jsonl");
    cr_assert_eq(h_consume(e->broker->bootstrap, "out", 0, 3, p), 0);
    return lines_of(p);
}

static const char *type_of(json_t *cmds, size_t i)
{
    return json_string_value(json_object_get(json_array_get(cmds, i), "type"));
}

static const char *user_of(json_t *cmds, size_t i)
{
    return json_string_value(json_object_get(json_array_get(cmds, i), "sf_user_id"));
}

#define EV(id, type, ts, extra)                                                                    \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"" id                         \
    "\"],\"changeType\":\"" type "\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"  \
    "\"transactionKey\":\"t\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts                       \
    ",\"commitNumber\":" #ts ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"}" extra "}\n"

#define U1 "0055e0000000001AAK"
#define U2 "0055e0000000002AAK"
#define U3 "0055e0000000003AAK"
#define U4 "0055e0000000004AAK"
#define U5 "0055e0000000005AAK"
#define PERSON(n, title)                                                                           \
    ",\"Email\":\"u" #n "@acme.com\",\"FirstName\":\"F" #n "\",\"LastName\":\"L" #n "\","          \
    "\"Title\":\"" title "\",\"Department\":\"Sales\",\"IsActive\":true"

/* R1.3: a GAP_UPDATE carries no values; the service reads the record by Id and applies it as a
 * full image. */
Test(reimport, gap_update_resolves_to_the_current_record)
{
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "VP Sales", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, "]");
    env e;
    start_env(&e, users.data, NULL);
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
                             EV(U1, "GAP_UPDATE", 1764000001000, ""));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(&e, "run", idle, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 2);
    cr_assert_str_eq(type_of(cmds, 1), "UPDATE_USER");
    json_t *user = json_object_get(json_array_get(cmds, 1), "user");
    cr_assert_str_eq(json_string_value(json_object_get(user, "title")), "VP Sales",
                     "the title Salesforce has now");
    json_decref(cmds);
    buf_free(&users);
}

/* R8.1: a drifted state is reconciled with the commands the events would have produced: a
 * changed title, a user gone inactive, one deleted from Salesforce, one never seen. */
Test(reimport, reimport_reconciles_a_drifted_state)
{
    env e;
    start_env(&e, "[]", NULL);
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
                             EV(U2, "CREATE", 1764000000001, PERSON(2, "AE"))
                                 EV(U3, "CREATE", 1764000000002, PERSON(3, "AE")));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(&e, "run", idle, NULL), 0);
    /* Salesforce now: 1 retitled, 2 inactive, 3 gone, 4 new */
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "Senior AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, ",");
    user_json(&users, 2, "AE", false, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, ",");
    user_json(&users, 4, "AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, "]");
    sf_serve(&e, users.data);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 7, "3 creates, then 4 reconciling commands");
    json_t *seen = json_object();
    for (size_t i = 3; i < json_array_size(cmds); i++) {
        char k[128];
        snprintf(k, sizeof k, "%s %s", type_of(cmds, i), user_of(cmds, i));
        json_object_set_new(seen, k, json_true());
    }
    cr_assert(json_object_get(seen, "UPDATE_USER " U1));
    cr_assert(json_object_get(seen, "DEACTIVATE_USER " U2));
    cr_assert(json_object_get(seen, "DEACTIVATE_USER " U3));
    cr_assert(json_object_get(seen, "CREATE_USER " U4));
    for (size_t i = 3; i < json_array_size(cmds); i++)
        if (strcmp(user_of(cmds, i), U3) == 0)
            cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cmds, i), "reason")),
                             "deleted_in_salesforce");
    /* a second reimport finds nothing to do */
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    json_t *again = output(&e);
    cr_assert_eq(json_array_size(again), 7, "nothing twice");
    json_decref(again);
    json_decref(seen);
    json_decref(cmds);
    buf_free(&users);
}

/* User 1 created by the service as an AE; Salesforce now has it as a Senior AE. */
static void start_retitled(env *e)
{
    start_env(e, "[]", NULL);
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE")));
    cr_assert_eq(h_produce(e->broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(e, "run", idle, NULL), 0);
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "Senior AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, "]");
    sf_serve(e, users.data);
    buf_free(&users);
}

/* R9.2: `provisioner reimport` whose state write Redis refuses (NOREPLICAS: reads go on) writes
 * again until Redis takes it, as the service does; it used to exit 1 with the chunk's commands
 * out and its states not stored. */
Test(reimport, cli_reimport_writes_its_states_again_while_redis_refuses)
{
    env e;
    start_retitled(&e);
    char *ok = h_redis_cmd(&e.redis, "CONFIG SET min-replicas-to-write 1");
    cr_assert_str_eq(ok, "+OK");
    free(ok);
    h_proc *p = start_cmd(&e, "reimport", NULL, NULL);
    cr_assert(h_proc_wait_output(p, true, "redis unavailable; retrying", 60),
              "the refused write was not retried: %s", h_proc_stderr(p));
    ok = h_redis_cmd(&e.redis, "CONFIG SET min-replicas-to-write 0");
    cr_assert_str_eq(ok, "+OK");
    free(ok);
    cr_assert_eq(h_proc_wait(p, 60), 0, "%s", h_proc_stderr(p));
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 2, "the create, then the retitle");
    cr_assert_str_eq(type_of(cmds, 1), "UPDATE_USER");
    /* the state was stored: a second reimport finds nothing to do */
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    json_t *again = output(&e);
    cr_assert_eq(json_array_size(again), 2, "nothing twice");
    json_decref(again);
    json_decref(cmds);
}

/* An error no retry mends (NOPERM: a Redis user that may not write) ends `provisioner reimport`
 * at once with exit 1 and Redis's words, instead of retrying for ever. */
Test(reimport, cli_reimport_stops_on_an_error_no_retry_mends)
{
    env e;
    start_retitled(&e);
    char *ok = h_redis_cmd(&e.redis, "ACL SETUSER reader on >pw ~* &* +@all -@write");
    cr_assert_str_eq(ok, "+OK");
    free(ok);
    env ro = e;
    snprintf(ro.redis.url, sizeof ro.redis.url, "redis://reader:pw@127.0.0.1:%d", e.redis.port);
    h_proc *p = start_cmd(&ro, "reimport", NULL, NULL);
    cr_assert_eq(h_proc_wait(p, 60), 1, "%s", h_proc_stderr(p));
    char *text = h_proc_stderr(p);
    cr_assert(strstr(text, "NOPERM"), "%s", text);
    cr_assert_null(strstr(text, "retrying"), "%s", text);
    free(text);
}

/* Salesforce's answer (sf_serve's JSON): users ids[0..n), active, titled AE, all modified at one
 * time. */
static void sf_users(buf *b, const int *ids, size_t n)
{
    buf_reset(b);
    buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_puts(b, ",");
        user_json(b, ids[i], "AE", true, "2026-11-25T12:00:00.000+0000");
    }
    buf_puts(b, "]");
}

/* Users 1..n (PERSON(n, "AE")) created by CREATE events, decided by the service run until idle:
 * 0055e000000000nAAK, one a millisecond. */
static void created_by_events(env *e, int n)
{
    buf ev;
    buf_init(&ev);
    for (int i = 1; i <= n; i++)
        buf_printf(
            &ev,
            "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e%010dAAK\"],"
            "\"changeType\":\"CREATE\",\"changedFields\":[],\"nulledFields\":[],"
            "\"diffFields\":[],\"transactionKey\":\"t\",\"sequenceNumber\":1,"
            "\"commitTimestamp\":%lld,\"commitNumber\":%lld,\"commitUser\":\"005A\","
            "\"changeOrigin\":\"\"},\"Email\":\"u%d@acme.com\",\"FirstName\":\"F%d\","
            "\"LastName\":\"L%d\",\"Title\":\"AE\",\"Department\":\"Sales\","
            "\"IsActive\":true}\n",
            i, 1764000000000LL + i - 1, 1764000000000LL + i - 1, i, i, i);
    const char *events = h_path("events.jsonl");
    h_write_file(events, ev.data);
    buf_free(&ev);
    cr_assert_eq(h_produce(e->broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(e, "run", idle, NULL), 0);
}

/* The deactivations `held` lists now; its output (malloc'd) in *listed when not NULL. */
static size_t held_now(env *e, char **listed)
{
    const char *held = h_path("held.txt");
    cr_assert_eq(run_cmd(e, "held", NULL, held), 0);
    if (listed) *listed = h_read_file(held);
    return h_count_lines(held);
}

/* R8.3: over the guard, deactivations are held (listed by `held`), other commands go on; with
 * --confirm they go through. */
Test(reimport, guard_holds_a_mass_deactivation_until_confirmed)
{
    env e;
    start_env(&e, "[]", "guards:\n  max_deactivations: 1\n");
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
                             EV(U2, "CREATE", 1764000000001, PERSON(2, "AE"))
                                 EV(U3, "CREATE", 1764000000002, PERSON(3, "AE")));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(&e, "run", idle, NULL), 0);
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "Lead AE", true, "2026-11-25T12:00:00.000+0000"); /* only a change */
    buf_puts(&users, "]"); /* 2 and 3 gone: two deactivations, over the guard of 1 */
    sf_serve(&e, users.data);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 4, "the title change goes on, the deactivations wait");
    cr_assert_str_eq(type_of(cmds, 3), "UPDATE_USER");
    const char *held = h_path("held.txt");
    cr_assert_eq(run_cmd(&e, "held", NULL, held), 0);
    cr_assert_eq(h_count_lines(held), 2, "both held deactivations listed");
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    json_t *after = output(&e);
    cr_assert_eq(json_array_size(after), 6);
    cr_assert_str_eq(type_of(after, 4), "DEACTIVATE_USER");
    cr_assert_str_eq(type_of(after, 5), "DEACTIVATE_USER");
    cr_assert_eq(run_cmd(&e, "held", NULL, held), 0);
    cr_assert_eq(h_count_lines(held), 0, "nothing held any more");
    json_decref(after);
    json_decref(cmds);
    buf_free(&users);
}

/* R8.3: a confirmation confirms what was held. Deactivations the confirming run finds new (here
 * Salesforce lost two more users meanwhile) are counted against the guard as at any other run,
 * and held when over it. */
Test(reimport, a_confirmation_releases_what_was_held_and_guards_what_is_new)
{
    env e;
    buf users;
    buf_init(&users);
    sf_users(&users, (const int[]){1, 4, 5}, 3); /* 2 and 3 gone: over the guard of 1 */
    start_env(&e, users.data, "guards:\n  max_deactivations: 1\n");
    created_by_events(&e, 5);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 2, "2 and 3 held");

    sf_users(&users, (const int[]){1}, 1); /* now 4 and 5 are gone too */
    sf_serve(&e, users.data);
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 7, "5 creates, the two held deactivations");
    /* users gone from Salesforce come in the order Redis's SCAN gives them */
    cr_assert_str_eq(type_of(cmds, 5), "DEACTIVATE_USER");
    cr_assert_str_eq(type_of(cmds, 6), "DEACTIVATE_USER");
    bool in_order = strcmp(user_of(cmds, 5), U2) == 0;
    cr_assert_str_eq(user_of(cmds, 5), in_order ? U2 : U3);
    cr_assert_str_eq(user_of(cmds, 6), in_order ? U3 : U2);
    char *listed;
    cr_assert(held_now(&e, &listed) == 2 && strstr(listed, U4) && strstr(listed, U5),
              "the new ones are held: %s", listed);
    free(listed);
    json_decref(cmds);
    buf_free(&users);
}

/* R8.3 and R5.3: deactivations held because a filter was narrowed, then the filter put back: the
 * users are in scope again at the next reimport, which confirms nothing; a confirmation then has
 * nothing to deactivate (it deactivated all three, reason no_matching_assignment, before) */
Test(reimport, held_users_the_settings_put_back_in_scope_are_not_deactivated)
{
    env e;
    buf users;
    buf_init(&users);
    sf_users(&users, (const int[]){1, 2, 3}, 3);
    start_env(&e, users.data, "guards:\n  max_deactivations: 1\n");
    created_by_events(&e, 3);
    char narrowed[1024];
    snprintf(narrowed, sizeof narrowed, SETTINGS, "guards:\n  max_deactivations: 1\n");
    char *at = strstr(narrowed, "'Sales'");
    cr_assert_not_null(at);
    memcpy(at, "'Sale_'", 7); /* a Department nobody has */
    char *original = h_read_file(e.settings);
    h_write_file(e.settings, narrowed);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 3, "the narrowed filter's three deactivations held");

    h_write_file(e.settings, original);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 0, "in scope again: nothing held");
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    json_t *cmds = output(&e);
    for (size_t i = 0; i < json_array_size(cmds); i++)
        cr_assert_str_neq(type_of(cmds, i), "DEACTIVATE_USER", "command %zu", i);
    json_decref(cmds);
    free(original);
    buf_free(&users);
}

/* R5.4 and R8.3: users keep_active kept active (here, gone from Salesforce) are no held
 * deactivations. Once the option is off, `held` does not list them and a confirmation does not
 * let them through unguarded: their deactivations are new, counted against the guard (two over a
 * limit of one: held now). */
Test(reimport, users_keep_active_kept_are_not_confirmed_away_unguarded)
{
    env e;
    buf users;
    buf_init(&users);
    sf_users(&users, (const int[]){1}, 1); /* 2 and 3 gone */
    start_env(&e, users.data, "options:\n  keep_active: true\nguards:\n  max_deactivations: 1\n");
    created_by_events(&e, 3);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 0, "kept active, nothing held");

    char off[1024];
    snprintf(off, sizeof off, SETTINGS, "guards:\n  max_deactivations: 1\n");
    h_write_file(e.settings, off);
    cr_assert_eq(held_now(&e, NULL), 0, "keep_active off: still nothing held");
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    json_t *cmds = output(&e);
    for (size_t i = 0; i < json_array_size(cmds); i++)
        cr_assert_str_neq(type_of(cmds, i), "DEACTIVATE_USER", "command %zu", i);
    char *listed;
    cr_assert(held_now(&e, &listed) == 2 && strstr(listed, U2) && strstr(listed, U3),
              "counted against the guard and held: %s", listed);
    free(listed);
    json_decref(cmds);
    buf_free(&users);
}

/* R8.3: a confirmation's share is of the users it does not confirm away. Three of four held;
 * Salesforce then returns nobody: the last one's deactivation is all of what is left, over a
 * share of 0.5, and held (counted against all four, 1/4 would have let it through). */
Test(reimport, a_confirmation_measures_its_share_without_the_held_users)
{
    env e;
    buf users;
    buf_init(&users);
    sf_users(&users, (const int[]){1}, 1); /* 2, 3 and 4 gone: 3/4 over 0.5 */
    start_env(&e, users.data, "guards:\n  max_deactivation_share: 0.5\n");
    created_by_events(&e, 4);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 3);

    sf_serve(&e, "[]");
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 7, "4 creates, the 3 held deactivations");
    for (size_t i = 4; i < 7; i++)
        cr_assert_str_neq(user_of(cmds, i), U1, "command %zu", i);
    char *listed;
    cr_assert(held_now(&e, &listed) == 1 && strstr(listed, U1), "the new one held: %s", listed);
    free(listed);
    json_decref(cmds);
    buf_free(&users);
}

/* R8.3: held users the settings put back in scope are not confirmed away, so they stay in the
 * share's base: 1 and 2 held by a narrowed filter, the filter put back, then 4 gone from
 * Salesforce: 1 of 4 (0.25) is under the share of 0.3 and goes through, as at a plain reimport
 * (measured against the 2 not held it was 0.5, and held) */
Test(reimport, held_users_back_in_scope_stay_in_a_confirmation_s_share)
{
    env e;
    buf users;
    buf_init(&users);
    sf_users(&users, (const int[]){1, 2, 3, 4}, 4);
    start_env(&e, users.data, "guards:\n  max_deactivation_share: 0.3\n");
    created_by_events(&e, 4);
    char *original = h_read_file(e.settings);
    h_write_file(e.settings, "company:\n  primary_domain: acme.com\nassignments:\n  - name: Sales\n"
                             "    filter: \"Department = 'Sales' AND Email NOT IN ('u1@acme.com', "
                             "'u2@acme.com')\"\n    seats: [recorder]\n"
                             "guards:\n  max_deactivation_share: 0.3\n");
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 2, "2 of 4 over 0.3: 1 and 2 held");

    h_write_file(e.settings, original);
    sf_users(&users, (const int[]){1, 2, 3}, 3);
    sf_serve(&e, users.data);
    const char *confirm[] = {"--confirm", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", confirm, NULL), 0);
    cr_assert_eq(held_now(&e, NULL), 0, "1 and 2 in scope again, 4's deactivation under the share");
    json_t *cmds = output(&e);
    size_t deactivations = 0;
    for (size_t i = 0; i < json_array_size(cmds); i++)
        if (strcmp(type_of(cmds, i), "DEACTIVATE_USER") == 0) {
            deactivations++;
            cr_assert_str_eq(user_of(cmds, i), U4);
        }
    cr_assert_eq(deactivations, 1);
    json_decref(cmds);
    free(original);
    buf_free(&users);
}

/* Polls `held` until it lists n deactivations, up to timeout_s. */
static bool held_becomes(env *e, size_t n, double timeout_s)
{
    for (int i = 0; i < timeout_s * 2; i++) {
        if (held_now(e, NULL) == n) return true;
        usleep(500000);
    }
    return false;
}

/* R8.3 with the service running: POST /reimport holds the mass deactivation as the command line
 * does, and POST /reimport?confirm=1 releases it between the service's batches (the command line
 * beside a running service races with them). */
Test(reimport, the_service_confirms_held_deactivations_over_http)
{
    env e;
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "Lead AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, "]"); /* 2 and 3 are gone from Salesforce: two deactivations, over 1 */
    start_env(&e, users.data, "guards:\n  max_deactivations: 1\n");
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
                             EV(U2, "CREATE", 1764000000001, PERSON(2, "AE"))
                                 EV(U3, "CREATE", 1764000000002, PERSON(3, "AE")));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *token = h_path("token");
    h_write_file(token, "s3cret-token\n");
    int port = h_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const char *http[] = {"--http-port",           ps,    "--http-bind", "127.0.0.1",
                          "--reimport-token-file", token, NULL};
    h_proc *svc = start_cmd(&e, "run", http, NULL);
    const char *out = h_path("out.jsonl");
    cr_assert_eq(h_consume(e.broker->bootstrap, "out", 3, 60, out), 0, "%s", h_proc_stderr(svc));

    h_reply x = h_http(port, "POST", "/reimport", "Bearer s3cret-token");
    cr_assert_eq(x.status, 202, "%ld %s", x.status, x.body);
    free(x.body);
    cr_assert(held_becomes(&e, 2, 60), "both deactivations held: %s", h_proc_stderr(svc));
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 4, "the title change goes on, the deactivations wait");
    cr_assert_str_eq(type_of(cmds, 3), "UPDATE_USER");

    x = h_http(port, "POST", "/reimport?confirm=1", "Bearer s3cret-token");
    cr_assert_eq(x.status, 202, "%ld %s", x.status, x.body);
    free(x.body);
    cr_assert(held_becomes(&e, 0, 60), "nothing held any more: %s", h_proc_stderr(svc));
    cr_assert_eq(h_consume(e.broker->bootstrap, "out", 6, 60, out), 0, "%s", h_proc_stderr(svc));
    json_t *after = lines_of(out);
    cr_assert_eq(json_array_size(after), 6);
    cr_assert_str_eq(type_of(after, 4), "DEACTIVATE_USER");
    cr_assert_str_eq(type_of(after, 5), "DEACTIVATE_USER");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(after, 4), "reason")),
                     "deleted_in_salesforce");
    cr_assert_eq(h_proc_stop(svc, 30), 0, "%s", h_proc_stderr(svc));
    json_decref(after);
    json_decref(cmds);
    buf_free(&users);
}

/* R8.2: a dry run prints the plan and changes nothing, in Redis or on Kafka. */
Test(reimport, dry_run_prints_the_plan_and_changes_nothing)
{
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, ",");
    user_json(&users, 2, "AE", true, "2026-11-25T12:00:00.000+0000");
    buf_puts(&users, "]");
    env e;
    start_env(&e, users.data, NULL);
    const char *plan = h_path("plan.jsonl");
    const char *dry[] = {"--dry-run", NULL};
    cr_assert_eq(run_cmd(&e, "reimport", dry, plan), 0);
    json_t *cmds = lines_of(plan);
    cr_assert_eq(json_array_size(cmds), 2);
    cr_assert_str_eq(type_of(cmds, 0), "CREATE_USER");
    char *n = h_redis_cmd(&e.redis, "DBSIZE");
    cr_assert_str_eq(n, ":0", "nothing written to Redis");
    free(n);
    json_t *out = output(&e);
    cr_assert_eq(json_array_size(out), 0, "nothing produced");
    json_decref(out);
    json_decref(cmds);
    buf_free(&users);
}

/* A record read by the reimport that is older than the user's last event is not applied: the
 * newer event data stays (R1.4). */
Test(reimport, reimport_keeps_newer_event_data)
{
    env e;
    start_env(&e, "[]", NULL);
    const char *events = h_path("events.jsonl");
    /* the event is at 2025-11-25T12:00:00Z; Salesforce's copy is from an hour before */
    h_write_file(events, EV(U1, "CREATE", 1764072000000, PERSON(1, "Newest Title")));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(&e, "run", idle, NULL), 0);
    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    user_json(&users, 1, "Stale Title", true, "2025-11-25T11:00:00.000+0000");
    buf_puts(&users, "]");
    sf_serve(&e, users.data);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 1, "no UPDATE_USER back to the older title");
    json_decref(cmds);
    buf_free(&users);
}

/* R8.1 "applies R5 to each ... a configuration change takes effect here": records unchanged since
 * their last event (so not applied, R1.4) still meet the settings of now. A new assignment creates
 * the user it now selects; a narrowed filter deactivates; the snapshots stay as the events left
 * them. */
Test(reimport, reimport_applies_new_settings_to_unchanged_users)
{
    env e;
    start_env(&e, "[]", NULL);
    const char *events = h_path("events.jsonl");
    /* events at 2025-11-25T12:00:00Z; Salesforce's records last changed an hour before */
    h_write_file(events, EV(U1, "CREATE", 1764072000000, PERSON(1, "AE")) EV(
                             U2, "CREATE", 1764072000001,
                             ",\"Email\":\"u2@acme.com\",\"FirstName\":\"F2\",\"LastName\":\"L2\","
                             "\"Title\":\"SE\",\"Department\":\"Support\",\"IsActive\":true"));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    const char *idle[] = {"--exit-when-idle", "2", NULL};
    cr_assert_eq(run_cmd(&e, "run", idle, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 1, "Sales only: U2 (Support) is out of scope");
    json_decref(cmds);

    /* the admin adds a Support assignment and narrows Sales to account executives' titles */
    h_write_file(e.settings, "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Sales\n"
                             "    filter: \"Department = 'Sales' AND Title = 'Lead'\"\n"
                             "    seats: [recorder]\n"
                             "  - name: Support\n    filter: \"Department = 'Support'\"\n"
                             "    seats: [recorder]\n");
    buf users;
    buf_init(&users);
    buf_printf(&users,
               "[{\"attributes\":{\"type\":\"User\"},\"Id\":\"%s\",\"Email\":\"u1@acme.com\","
               "\"FirstName\":\"F1\",\"LastName\":\"L1\",\"Title\":\"AE\",\"Department\":"
               "\"Sales\",\"IsActive\":true,\"SystemModstamp\":\"%s\"},"
               "{\"attributes\":{\"type\":\"User\"},\"Id\":\"%s\",\"Email\":\"u2@acme.com\","
               "\"FirstName\":\"F2\",\"LastName\":\"L2\",\"Title\":\"SE\",\"Department\":"
               "\"Support\",\"IsActive\":true,\"SystemModstamp\":\"%s\"}]",
               U1, "2025-11-25T11:00:00.000+0000", U2, "2025-11-25T11:00:00.000+0000");
    sf_serve(&e, users.data);
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 3, "CREATE_USER U1, then the reimport's two: %zu",
                 json_array_size(cmds));
    cr_assert_str_eq(type_of(cmds, 1), "DEACTIVATE_USER");
    cr_assert_str_eq(user_of(cmds, 1), U1);
    cr_assert_str_eq(type_of(cmds, 2), "CREATE_USER");
    cr_assert_str_eq(user_of(cmds, 2), U2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cmds, 2), "assignment")),
                     "Support");
    json_decref(cmds);

    /* nothing more to do: a second reimport sends nothing, and writes no user back (a state read
     * before another instance's live event, written back unchanged, would undo that event). A
     * user's write stores a string: put in the hash form of earlier builds first (which reads as
     * the same state), the key stays a hash unless written. */
    const char *ids[] = {U1, U2};
    char cmd[512];
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "EVAL \"local b = redis.call('GET', KEYS[1]) redis.call('DEL', KEYS[1]) "
                 "local n = {'never', 'active', 'deactivated'} "
                 "return redis.call('HSET', KEYS[1], 'status', n[string.byte(b, 4) + 1], "
                 "'blob', b)\" 1 prov:u:%s",
                 ids[i]);
        char *r = h_redis_cmd(&e.redis, cmd);
        cr_assert_str_eq(r, ":2", "%s", cmd);
        free(r);
    }
    cr_assert_eq(run_cmd(&e, "reimport", NULL, NULL), 0);
    cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 3, "a second reimport sent %zu more",
                 json_array_size(cmds) - 3);
    json_decref(cmds);
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "TYPE prov:u:%s", ids[i]);
        char *r = h_redis_cmd(&e.redis, cmd);
        cr_assert_str_eq(r, "+hash", "%s was written again by a reimport that changed nothing",
                         ids[i]);
        free(r);
    }
    buf_free(&users);
}

/* ---------------------------------------------------------------- GAP_OVERFLOW in the service */

/* A User as the REST API returns it, with a manager (0: none). */
static void sf_user(buf *b, int n, const char *title, bool active, int manager,
                    const char *modstamp)
{
    char mgr[64] = "null";
    if (manager) snprintf(mgr, sizeof mgr, "\"0055e%010dAAK\"", manager);
    buf_printf(b,
               "%s{\"attributes\":{\"type\":\"User\"},\"Id\":\"0055e%010dAAK\","
               "\"Email\":\"u%d@acme.com\",\"FirstName\":\"F%d\",\"LastName\":\"L%d\","
               "\"Title\":\"%s\",\"Department\":\"Sales\",\"IsActive\":%s,\"ManagerId\":%s,"
               "\"SystemModstamp\":\"%s\",\"LastModifiedDate\":\"%s\"}",
               b->len > 1 ? "," : "", n, n, n, n, title, active ? "true" : "false", mgr, modstamp,
               modstamp);
}

/* Commands as they compare between the service and simulate: the ids and sources name the
 * positions, which a reconciliation cannot share with the events it stands in for. */
static json_t *comparable(json_t *cmds)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        json_object_del(c, "command_id");
        json_object_del(c, "source");
    }
    return cmds;
}

static json_t *simulate_file(env *e, const char *events)
{
    const char *out = h_path("simulate.jsonl");
    const char *argv[] = {h_pv_binary(), "simulate", "--settings", e->settings,
                          "--events",    events,     "--guards",   NULL};
    h_proc *p = h_proc_start_to(argv, NULL, out);
    cr_assert_eq(h_proc_wait(p, 60), 0, "simulate failed: %s", h_proc_stderr(p));
    return lines_of(out);
}

#define U6 "0055e0000000006AAK"
#define U7 "0055e0000000007AAK"
#define U8 "0055e0000000008AAK"
#define U9 "0055e0000000009AAK"
#define OVERFLOW(ts)                                                                               \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[],\"changeType\":"             \
    "\"GAP_OVERFLOW\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"                 \
    "\"transactionKey\":\"o\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts                       \
    ",\"commitNumber\":" #ts ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"}}\n"

/* The state the service built from events: 1-3, 6, 8, 9 active (6 under 2), 5 deactivated. */
static const char *BUILT = EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
    EV(U2, "CREATE", 1764000000001, PERSON(2, "AE"))
        EV(U3, "CREATE", 1764000000002, PERSON(3, "AE"))
            EV(U5, "CREATE", 1764000000003, PERSON(5, "AE"))
                EV(U5, "UPDATE", 1764000000004, ",\"IsActive\":false")
                    EV(U6, "CREATE", 1764000000005, PERSON(6, "AE") ",\"ManagerId\":\"" U2 "\"")
                        EV(U8, "CREATE", 1764000000006, PERSON(8, "AE"))
                            EV(U9, "CREATE", 1764000000007, PERSON(9, "AE"));

/* The same changes as the events the topic lost would have carried them. */
static const char *LOST = EV(U1, "UPDATE", 1764000100000, ",\"Title\":\"Senior AE\"")
    EV(U2, "UPDATE", 1764000100001, ",\"IsActive\":false")
        EV(U4, "CREATE", 1764000100002, PERSON(4, "AE") ",\"ManagerId\":\"" U7 "\"")
            EV(U5, "UPDATE", 1764000100003, ",\"IsActive\":true")
                EV(U6, "UPDATE", 1764000100004, ",\"ManagerId\":\"" U1 "\"")
                    EV(U7, "CREATE", 1764000100005, PERSON(7, "AE"))
                        EV(U3, "DELETE", 1764000100006, "");

/* the mock waits a session timeout for the last run's member before a new one joins */
static const char *const RUN_IDLE[] = {"--exit-when-idle", "2", "-X", "session.timeout.ms=6000",
                                       NULL};

/* Builds the state with `run`, then makes Salesforce drift from it: in the order it answers
 * (pages of 3), 1 retitled, 2 inactive, 4 new under 7 (which comes later), 5 active again, 6
 * moved under 1, 7 new, 8 touched but unchanged, 9 unchanged and older than its last event; 3 is
 * gone. Returns what simulate gives for BUILT then LOST, ids and sources aside. */
static json_t *drifted(env *e)
{
    start_env(e, "[]", NULL);
    const char *events = h_path("events.jsonl");
    h_write_file(events, BUILT);
    cr_assert_eq(h_produce(e->broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(e, "run", RUN_IDLE, NULL), 0);
    json_t *before = output(e);
    cr_assert_eq(json_array_size(before), 8, "7 creates and a deactivation");
    json_decref(before);

    buf users;
    buf_init(&users);
    buf_puts(&users, "[");
    const char *later = "2026-11-25T12:00:00.000+0000";
    sf_user(&users, 1, "Senior AE", true, 0, later);
    sf_user(&users, 2, "AE", false, 0, later);
    sf_user(&users, 4, "AE", true, 7, later);
    sf_user(&users, 5, "AE", true, 0, later);
    sf_user(&users, 6, "AE", true, 1, later);
    sf_user(&users, 7, "AE", true, 0, later);
    sf_user(&users, 8, "AE", true, 0, later);
    sf_user(&users, 9, "AE", true, 0, "2025-11-24T15:00:00.000+0000");
    buf_puts(&users, "]");
    sf_serve(e, users.data);
    buf_free(&users);

    buf all;
    buf_init(&all);
    buf_puts(&all, BUILT);
    buf_puts(&all, LOST);
    const char *path = h_path("lost.jsonl");
    h_write_file(path, all.data);
    buf_free(&all);
    return comparable(simulate_file(e, path));
}

/* The output topic holds what the lost events would have given, spelled out as well, so that a
 * change of simulate cannot hide one here. */
static void assert_reconciled(env *e, json_t *want)
{
    json_t *got = comparable(output(e));
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
        cr_assert_fail("the service's commands differ from simulate's\nservice:\n%s\nsimulate:\n%s",
                       g, w);
    }
    const char *expect[][2] = {
        {"UPDATE_USER", U1}, {"DEACTIVATE_USER", U2}, {"CREATE_USER", U4}, {"REACTIVATE_USER", U5},
        {"SET_MANAGER", U6}, {"CREATE_USER", U7},     {"SET_MANAGER", U4}, {"DEACTIVATE_USER", U3},
    };
    size_t n_expect = sizeof expect / sizeof expect[0], n_before = 8;
    cr_assert_eq(json_array_size(got), n_before + n_expect);
    for (size_t i = 0; i < n_expect; i++) {
        cr_assert_str_eq(type_of(got, n_before + i), expect[i][0], "command %zu", i);
        cr_assert_str_eq(user_of(got, n_before + i), expect[i][1], "command %zu", i);
    }
    json_t *del = json_array_get(got, n_before + 7);
    cr_assert_str_eq(json_string_value(json_object_get(del, "reason")), "deleted_in_salesforce");
    json_t *inactive = json_array_get(got, n_before + 1);
    cr_assert_str_eq(json_string_value(json_object_get(inactive, "reason")),
                     "inactive_in_salesforce");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(got, n_before + 6), "manager_sf_user_id")),
        U7, "4's link waited for 7 and completes at 7's creation (R6.3)");
    json_decref(got);
}

/* Runs the service over one event that asks for a reconciliation of the org: the output is then
 * what the lost events would have given, and nothing is left noted. Returns the events file. */
static const char *reconciled_after(env *e, json_t *want, const char *event)
{
    const char *events = h_path("events.jsonl");
    h_write_file(events, event);
    cr_assert_eq(h_produce(e->broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(e, "run", RUN_IDLE, NULL), 0);
    assert_reconciled(e, want);
    char *n = h_redis_cmd(&e->redis, "SCARD prov:overflows");
    cr_assert_str_eq(n, ":0", "nothing left to reconcile");
    free(n);
    return events;
}

/* R1.3, R8.1: `run` meets a GAP_OVERFLOW while its state has drifted from Salesforce (changes the
 * topic never carried): it reconciles the whole org with the commands the lost events would have
 * produced, in Salesforce's order, then deletes the users Salesforce no longer has
 * (deleted_in_salesforce). A second GAP_OVERFLOW finds nothing to do. */
Test(reimport, gap_overflow_in_the_service_reconciles_a_drifted_state)
{
    env e;
    json_t *want = drifted(&e);
    const char *events = reconciled_after(&e, want, OVERFLOW(1764000200000));

    /* the state now agrees with Salesforce: another overflow changes nothing */
    h_write_file(events, OVERFLOW(1764000300000));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(&e, "run", RUN_IDLE, NULL), 0);
    json_t *again = output(&e);
    cr_assert_eq(json_array_size(again), 16, "nothing twice");
    json_decref(again);
    json_decref(want);
}

/* R1.2, R8.1: an UPDATE whose recordIds is "005*" (Salesforce's form after a custom field's type
 * conversion that lost data: every User changed) carries no user's values: the service reconciles
 * the whole org, as for a GAP_OVERFLOW, and decides no user named "005*". */
Test(reimport, wildcard_record_ids_in_the_service_reconcile_the_org)
{
    env e;
    json_t *want = drifted(&e);
    reconciled_after(&e, want, EV("005*", "UPDATE", 1764000200000, ",\"Quota__c\":null"));
    char *u = h_redis_cmd(&e.redis, "EXISTS prov:u:005*");
    cr_assert_str_eq(u, ":0", "no user 005*");
    free(u);
    json_decref(want);
}

/* R1.3, R9.2: a GAP_OVERFLOW whose reconciliation cannot be made (Salesforce unreachable) is not
 * lost with its committed offset: the next start of the service makes it, without the event. */
Test(reimport, gap_overflow_reconciliation_outlives_salesforce_down_and_a_restart)
{
    env e;
    json_t *want = drifted(&e);
    char up[64];
    snprintf(up, sizeof up, "%s", e.sf_url);
    snprintf(e.sf_url, sizeof e.sf_url, "http://127.0.0.1:%d", h_free_port()); /* nobody there */
    const char *events = h_path("events.jsonl");
    h_write_file(events, OVERFLOW(1764000200000));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(&e, "run", RUN_IDLE, NULL), 0);
    json_t *none = output(&e);
    cr_assert_eq(json_array_size(none), 8, "no Salesforce, no reconciliation");
    json_decref(none);
    char *n = h_redis_cmd(&e.redis, "SCARD prov:overflows");
    cr_assert_str_eq(n, ":1", "the overflow is noted, its offset committed or not");
    free(n);

    snprintf(e.sf_url, sizeof e.sf_url, "%s", up);
    cr_assert_eq(run_cmd(&e, "run", RUN_IDLE, NULL), 0); /* no new event */
    assert_reconciled(&e, want);
    n = h_redis_cmd(&e.redis, "SCARD prov:overflows");
    cr_assert_str_eq(n, ":0", "reconciled, so no longer noted");
    free(n);
    json_decref(want);
}

/* R8.3 for event windows in the service: a state stored before the provisioned count gets it at
 * start (4 active), and a second deactivation in the window, 2 of those 4, is over a share of
 * 0.25: held and listed, while the first goes through. */
Test(reimport, event_window_share_holds_in_the_service_over_a_state_counted_at_start)
{
    env e;
    start_env(&e, "[]", "guards:\n  max_deactivation_share: 0.25\n  window_seconds: 600\n");
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1764000000000, PERSON(1, "AE"))
                             EV(U2, "CREATE", 1764000000001, PERSON(2, "AE"))
                                 EV(U3, "CREATE", 1764000000002, PERSON(3, "AE"))
                                     EV(U4, "CREATE", 1764000000003, PERSON(4, "AE")));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(&e, "run", RUN_IDLE, NULL), 0);
    char *v = h_redis_cmd(&e.redis, "SCARD prov:active");
    cr_assert_str_eq(v, ":4", "counted on every creation");
    free(v);
    v = h_redis_cmd(&e.redis, "HDEL prov:company active_set"); /* as an older version left it */
    cr_assert_str_eq(v, ":1");
    free(v);
    v = h_redis_cmd(&e.redis, "DEL prov:active");
    cr_assert_str_eq(v, ":1");
    free(v);

    h_write_file(events, EV(U1, "UPDATE", 1764000010000, ",\"IsActive\":false")
                             EV(U2, "UPDATE", 1764000020000, ",\"IsActive\":false"));
    cr_assert_eq(h_produce(e.broker->bootstrap, "in", events), 0);
    cr_assert_eq(run_cmd(&e, "run", RUN_IDLE, NULL), 0);
    json_t *cmds = output(&e);
    cr_assert_eq(json_array_size(cmds), 5, "4 creates and one deactivation; the second is held");
    cr_assert_str_eq(type_of(cmds, 4), "DEACTIVATE_USER");
    cr_assert_str_eq(user_of(cmds, 4), U1);
    v = h_redis_cmd(&e.redis, "SCARD prov:active");
    cr_assert_str_eq(v, ":3", "counted at start, then one deactivation");
    free(v);
    const char *held = h_path("held.txt");
    cr_assert_eq(run_cmd(&e, "held", NULL, held), 0);
    cr_assert_eq(h_count_lines(held), 1, "the held deactivation is listed");
    json_decref(cmds);
}
