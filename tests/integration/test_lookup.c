/* Relationship filters (R4.3, issue 8): the Profile and UserRole tables read from Salesforce, read
 * again for an id they do not know, kept when Salesforce fails; and the service deciding
 * Profile.Name / UserRole.DeveloperName / Manager.<field> filters end to end. Against the
 * Salesforce stand-in (tests/standins/salesforce.py), real redis-server and the dev broker. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "harness.h"
#include "lookup/lookup.h"
#include "salesforce/salesforce.h"
#include "util/util.h"

TestSuite(lookup, .fini = h_teardown, .timeout = 240);

#define P_ADMIN "00e5e000000AdmAAA"
#define P_STD "00e5e000000StdAAA"
#define P_NEW "00e5e000000NewAAA"
#define R_VP "00E5e000000VpSAAA"

static const char *TABLES =
    "{\"User\": [],"
    " \"Profile\": [{\"attributes\": {\"type\": \"Profile\"}, \"Id\": \"" P_ADMIN "\","
    "               \"Name\": \"System Administrator\", \"Description\": \"all\"},"
    "              {\"attributes\": {\"type\": \"Profile\"}, \"Id\": \"" P_STD "\","
    "               \"Name\": \"Standard User\", \"Description\": \"some\"}],"
    " \"UserRole\": [{\"attributes\": {\"type\": \"UserRole\"}, \"Id\": \"" R_VP "\","
    "                \"Name\": \"VP Sales\", \"DeveloperName\": \"SalesVP\"}]}";

static const char *SETTINGS =
    "company:\n  primary_domain: acme.com\n"
    "assignments:\n"
    "  - name: Admins\n    filter: \"Profile.Name = 'System Administrator'\"\n"
    "    seats: [admin]\n"
    "  - name: Sales leaders\n    filter: \"UserRole.DeveloperName LIKE 'Sales%'\"\n"
    "    seats: [recorder]\n"
    "  - name: Reports of admins\n    filter: \"Manager.Department = 'IT'\"\n"
    "    seats: [viewer]\n";

typedef struct standin {
    h_proc *proc;
    char url[64];
    char secret[PATH_MAX];
} standin;

static void standin_start(standin *s, const char *data_json)
{
    const char *data = h_path("tables.json");
    h_write_file(data, data_json);
    snprintf(s->secret, sizeof s->secret, "%s", h_path("secret"));
    h_write_file(s->secret, "s3cret\n");
    const char *argv[] = {"python3",
                          h_source_path("tests/standins/salesforce.py"),
                          "--data",
                          data,
                          "--client-secret-file",
                          s->secret,
                          "--client-id",
                          "cid",
                          "--max-seconds",
                          "230",
                          NULL};
    s->proc = h_proc_start_piped(argv, NULL);
    cr_assert(h_proc_wait_output(s->proc, false, "\n", 10), "the stand-in did not start");
    char *out = h_proc_stdout(s->proc);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", atoi(out));
    free(out);
}

/* POSTs a control document to the stand-in (curl, as an operator would). */
static void standin_control(const standin *s, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_control", s->url);
    const char *argv[] = {"curl", "-sf", "-X", "POST", "-d", json, url, NULL};
    cr_assert_eq(h_run(argv, NULL, 10, NULL), 0, "control %s refused", json);
}

/* How many queries of the stand-in named this object in their FROM. */
static int queries_from(const standin *s, const char *object)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_stats", s->url);
    const char *out = h_path("stats.json");
    const char *argv[] = {"curl", "-sf", "-o", out, url, NULL};
    cr_assert_eq(h_run(argv, NULL, 10, NULL), 0);
    json_t *st = json_load_file(out, 0, NULL);
    cr_assert(st);
    char from[64];
    snprintf(from, sizeof from, "FROM %s", object);
    int n = 0;
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(st, "queries"), i, q)
    {
        const char *text = json_string_value(q);
        const char *at = text ? strstr(text, from) : NULL;
        if (at && (at[strlen(from)] == '\0' || at[strlen(from)] == ' ')) n++;
    }
    json_decref(st);
    return n;
}

static sf_client *client_for(const standin *s)
{
    sf_config c = {.url = s->url,
                   .client_id = "cid",
                   .client_secret_file = s->secret,
                   .max_attempts = 2,
                   .backoff_base_ms = 10};
    sf_client *sf;
    perr err;
    cr_assert_eq(sf_client_new(&c, &sf, &err), 0, "%s", err.msg);
    return sf;
}

static config *settings(void)
{
    config *c;
    perr err;
    cr_assert_eq(config_load_string(SETTINGS, strlen(SETTINGS), "settings.yaml", &c, &err), 0, "%s",
                 err.msg);
    return c;
}

static const char *str_of(const value_t *v) { return v && v->type == VAL_STR ? v->s : NULL; }

/* The component under test over a running stand-in, with its tables read once. */
typedef struct fixture {
    standin s;
    config *cfg;
    lookup *lk;
    sf_client *sf;
} fixture;

static void fixture_open(fixture *f)
{
    standin_start(&f->s, TABLES);
    f->cfg = settings();
    f->lk = lookup_new(f->cfg);
    f->sf = client_for(&f->s);
    perr err;
    cr_assert_eq(lookup_refresh(f->lk, f->sf, 0, &err), 0, "%s", err.msg);
}

static void fixture_close(fixture *f)
{
    lookup_free(f->lk);
    sf_client_free(f->sf);
    config_free(f->cfg);
}

Test(lookup, tables_read_once_with_only_the_fields_filters_use)
{
    standin s;
    standin_start(&s, TABLES);
    config *cfg = settings();
    lookup *lk = lookup_new(cfg);
    cr_assert(lookup_needed(lk));
    buf what;
    buf_init(&what);
    lookup_describe(lk, &what);
    cr_assert_str_eq(what.data, "Profile (Name), UserRole (DeveloperName)");
    buf_free(&what);
    sf_client *sf = client_for(&s);
    perr err;
    cr_assert_eq(lookup_refresh(lk, sf, 0, &err), 0, "%s", err.msg);
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, P_ADMIN, "name")),
                     "System Administrator");
    /* the 15-character form of an id is the same record */
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, "00e5e000000StdA", "Name")),
                     "Standard User");
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_USERROLE, R_VP, "DeveloperName")), "SalesVP");
    /* not read: no filter uses it */
    cr_assert_null(lookup_get(lk, SOQL_REL_PROFILE, P_ADMIN, "Description"));
    cr_assert_null(lookup_get(lk, SOQL_REL_PROFILE, P_NEW, "Name"));
    cr_assert_eq(queries_from(&s, "Profile"), 1);
    cr_assert_eq(queries_from(&s, "UserRole"), 1);
    lookup_stats st;
    lookup_get_stats(lk, &st);
    cr_assert_eq(st.rows[SOQL_REL_PROFILE], 2);
    cr_assert_eq(st.rows[SOQL_REL_USERROLE], 1);
    cr_assert_eq(st.refreshes, 1);
    lookup_free(lk);
    sf_client_free(sf);
    config_free(cfg);
}

Test(lookup, an_unknown_id_reads_the_tables_again_once)
{
    fixture f;
    fixture_open(&f);
    lookup *lk = f.lk;
    sf_client *sf = f.sf;
    const standin *sp = &f.s;
    perr err;

    /* ids the tables know cost nothing */
    event_field known[] = {{"ProfileId", value_str(P_STD)},
                           {"UserRoleId", value_str(R_VP)},
                           {"Title", value_str(P_NEW)}};
    cr_assert_eq(lookup_note_fields(lk, known, 3), 0);
    cr_assert_eq(lookup_resolve_noted(lk, sf, &err), 0);
    cr_assert_eq(queries_from(sp, "Profile"), 1);

    /* a profile created in Salesforce since: one read finds it */
    standin_control(sp, "{\"upsert\": {\"Profile\": [{\"Id\": \"" P_NEW "\", "
                        "\"Name\": \"Sales Engineer\"}]}}");
    event_field fresh[] = {{"ProfileId", value_str(P_NEW)},
                           {"profileid", value_str("00e5e000000GoneAA")}};
    cr_assert_eq(lookup_note_fields(lk, fresh, 2), 2);
    cr_assert_eq(lookup_note_fields(lk, fresh, 2), 0, "noted once");
    cr_assert_eq(lookup_resolve_noted(lk, sf, &err), 0, "%s", err.msg);
    cr_assert_eq(queries_from(sp, "Profile"), 2);
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, P_NEW, "Name")), "Sales Engineer");

    /* an id Salesforce does not have is not asked for again batch after batch */
    cr_assert_eq(lookup_note_fields(lk, fresh, 2), 0);
    cr_assert_eq(lookup_resolve_noted(lk, sf, &err), 0);
    cr_assert_eq(queries_from(sp, "Profile"), 2);
    cr_assert_null(lookup_get(lk, SOQL_REL_PROFILE, "00e5e000000GoneAA", "Name"));
    fixture_close(&f);
}

Test(lookup, a_failed_read_keeps_the_tables_and_asks_again)
{
    fixture f;
    fixture_open(&f);
    lookup *lk = f.lk;
    sf_client *sf = f.sf;
    const standin *sp = &f.s;
    perr err;
    standin_control(sp, "{\"status_500\": 4}");
    standin_control(sp, "{\"upsert\": {\"Profile\": [{\"Id\": \"" P_NEW "\", "
                        "\"Name\": \"Sales Engineer\"}]}}");
    cr_assert_eq(lookup_refresh(lk, sf, 0, &err), -1);
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, P_ADMIN, "Name")),
                     "System Administrator");
    event_field fresh[] = {{"ProfileId", value_str(P_NEW)}};
    cr_assert_eq(lookup_note_fields(lk, fresh, 1), 1);
    cr_assert_eq(lookup_resolve_noted(lk, sf, &err), -1, "the stand-in still fails");
    /* Salesforce is back: the same batch's note is resolved */
    cr_assert_eq(lookup_resolve_noted(lk, sf, &err), 0, "%s", err.msg);
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, P_NEW, "Name")), "Sales Engineer");
    lookup_stats st;
    lookup_get_stats(lk, &st);
    cr_assert_eq(st.failures, 2);
    fixture_close(&f);
}

/* ---- the service */

#define EV(id, type, ts, extra)                                                                    \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"" id                         \
    "\"],\"changeType\":\"" type "\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"  \
    "\"transactionKey\":\"t\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts                       \
    ",\"commitNumber\":" #ts ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"}" extra "}\n"
#define PERSON(n)                                                                                  \
    ",\"Email\":\"u" #n "@acme.com\",\"FirstName\":\"F" #n "\",\"LastName\":\"L" #n "\","          \
    "\"IsActive\":true"
#define U1 "0055e0000000001AAK"
#define U2 "0055e0000000002AAK"
#define U3 "0055e0000000003AAK"
#define U4 "0055e0000000004AAK"
#define U5 "0055e0000000005AAK"

static json_t *commands_in(const char *path)
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

/* The assignment of the CREATE_USER of this user, NULL when none was produced. */
static const char *created_as(json_t *cmds, const char *id)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), "CREATE_USER") == 0 &&
            strcmp(json_string_value(json_object_get(c, "sf_user_id")), id) == 0)
            return json_string_value(json_object_get(c, "assignment"));
    }
    return NULL;
}

Test(lookup, the_service_decides_relationship_filters)
{
    standin s;
    standin_start(&s, TABLES);
    h_redis redis;
    h_redis_start(&redis);
    h_broker *b = h_broker_start(1, "in,out");
    const char *settings_path = h_path("settings.yaml");
    h_write_file(settings_path, SETTINGS);
/* run's and replay's options: the same settings, Redis, topics and Salesforce */
#define SERVICE_ARGS                                                                               \
    "--settings", settings_path, "--redis", redis.url, "--brokers", b->bootstrap, "--input-topic", \
        "in", "--output-topic", "out", "--salesforce-url", s.url, "--salesforce-client-id", "cid", \
        "--salesforce-client-secret-file", s.secret
    const char *argv[] = {h_pv_binary(), "run", SERVICE_ARGS, "-X", "session.timeout.ms=6000",
                          NULL};
    const char *env[] = {"PROVISIONER_HTTP_PORT=0", "PROVISIONER_LOG_LEVEL=info", NULL};
    h_proc *svc = h_proc_start(argv, env);
    cr_assert(h_proc_wait_output(svc, true, "consuming", 30), "the service did not start: %s",
              h_proc_stderr(svc));

    /* created after the service read its tables: the event's unknown id makes it read again */
    standin_control(&s, "{\"upsert\": {\"Profile\": [{\"Id\": \"" P_NEW "\", "
                        "\"Name\": \"System Administrator\"}]}}");
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1001, PERSON(1) ",\"ProfileId\":\"" P_ADMIN "\"")
                             EV(U2, "CREATE", 1002,
                                PERSON(2) ",\"ProfileId\":\"" P_STD "\",\"UserRoleId\":"
                                          "\"" R_VP "\"")
                                 EV(U3, "CREATE", 1003, PERSON(3) ",\"ProfileId\":\"" P_NEW "\"")
                                     EV(U4, "CREATE", 1004,
                                        PERSON(4) ",\"ProfileId\":\"" P_STD "\",\"Department\":"
                                                  "\"IT\"")
                                         EV(U5, "CREATE", 1005,
                                            PERSON(5) ",\"ProfileId\":\"" P_STD "\",\"ManagerId\":"
                                                      "\"" U4 "\""));
    cr_assert_eq(h_produce(b->bootstrap, "in", events), 0);
    const char *out = h_path("out.jsonl");
    cr_assert_eq(h_consume(b->bootstrap, "out", 4, 60, out), 0);
    json_t *cmds = commands_in(out);
    cr_assert_str_eq(created_as(cmds, U1), "Admins");
    cr_assert_str_eq(created_as(cmds, U2), "Sales leaders");
    cr_assert_str_eq(created_as(cmds, U3), "Admins", "the profile created since was read");
    cr_assert_null(created_as(cmds, U4), "no assignment matches U4");
    cr_assert_str_eq(created_as(cmds, U5), "Reports of admins", "from the manager's snapshot");
    json_decref(cmds);
    cr_assert_eq(queries_from(&s, "Profile"), 2, "at start and for the unknown id, no more");
    cr_assert_eq(h_proc_stop(svc, 20), 0);

    /* a replay into an empty state reads the tables too (and only them: no gap, no reimport) */
    const char *replay[] = {h_pv_binary(),    "replay",   "--from-beginning", "--dry-run",
                            "--state-prefix", "rebuild:", SERVICE_ARGS,       NULL};
#undef SERVICE_ARGS
    h_proc *rp;
    cr_assert_eq(h_run(replay, env, 60, &rp), 0, "%s", h_proc_stderr(rp));
    const char *planned = h_path("replay.jsonl");
    char *text = h_proc_stdout(rp);
    h_write_file(planned, text);
    free(text);
    cmds = commands_in(planned);
    cr_assert_str_eq(created_as(cmds, U3), "Admins");
    cr_assert_str_eq(created_as(cmds, U5), "Reports of admins");
    json_decref(cmds);
    cr_assert_eq(queries_from(&s, "User"), 0);
    h_redis_stop(&redis);
}

Test(lookup, the_service_refuses_relationship_filters_without_salesforce)
{
    h_redis redis;
    h_redis_start(&redis);
    h_broker *b = h_broker_start(1, "in,out");
    const char *settings_path = h_path("settings.yaml");
    h_write_file(settings_path, SETTINGS);
    const char *argv[] = {h_pv_binary(),    "run",       "--settings", settings_path,   "--redis",
                          redis.url,        "--brokers", b->bootstrap, "--input-topic", "in",
                          "--output-topic", "out",       NULL};
    const char *env[] = {"PROVISIONER_HTTP_PORT=0", NULL};
    h_proc *svc;
    int rc = h_run(argv, env, 60, &svc);
    cr_assert_neq(rc, 0);
    char *err = h_proc_stderr(svc);
    cr_assert(strstr(err, "Profile (Name), UserRole (DeveloperName) (R4.3)"), "%s", err);
    cr_assert(strstr(err, "--salesforce-url"), "%s", err);
    free(err);
    h_redis_stop(&redis);
}

/* ---- offline tables (simulate and explain --lookups) */

Test(lookup, offline_tables_from_a_file)
{
    config *cfg = settings();
    lookup *lk = lookup_new(cfg);
    const char *path = h_path("lookups.json");
    h_write_file(path, "{\"Profile\": {\"" P_ADMIN "\": {\"name\": \"System Administrator\"}},\n"
                       " \"UserRole\": {\"" R_VP "\": {\"DeveloperName\": \"SalesVP\", "
                       "\"Name\": null}}}\n");
    perr err;
    cr_assert_eq(lookup_load_file(lk, path, &err), 0, "%s", err.msg);
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, "00e5e000000AdmA", "Name")),
                     "System Administrator");
    cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_USERROLE, R_VP, "developername")), "SalesVP");
    lookup_free(lk);

    /* Salesforce's own query answers, as saved from a query: one, an array, or under a table */
    static const char *const answers[] = {
        "[{\"totalSize\": 1, \"done\": true, \"records\": [{\"attributes\": {\"type\": "
        "\"Profile\", \"url\": \"/x\"}, \"Id\": \"" P_ADMIN "\", \"Name\": \"System "
        "Administrator\"}]},\n {\"records\": [{\"attributes\": {\"type\": \"UserRole\"}, "
        "\"Id\": \"" R_VP "\", \"DeveloperName\": \"SalesVP\"}]}]",
        "{\"Profile\": {\"records\": [{\"attributes\": {\"type\": \"Profile\"}, \"Id\": "
        "\"" P_ADMIN "\", \"Name\": \"System Administrator\"}]}, \"UserRole\": {\"records\": "
        "[{\"attributes\": {\"type\": \"UserRole\"}, \"Id\": \"" R_VP "\", \"DeveloperName\": "
        "\"SalesVP\"}]}}",
    };
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
        lk = lookup_new(cfg);
        h_write_file(path, answers[i]);
        cr_assert_eq(lookup_load_file(lk, path, &err), 0, "%s", err.msg);
        cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_PROFILE, P_ADMIN, "Name")),
                         "System Administrator");
        cr_assert_str_eq(str_of(lookup_get(lk, SOQL_REL_USERROLE, R_VP, "DeveloperName")),
                         "SalesVP");
        lookup_free(lk);
    }

    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"Profile\": {\"x\": {\"Name\": \"A\"}},\n \"Profile\": {}}", ":2:"},
        {"{\"Account\": {}}", "unknown table 'Account' (expected Profile or UserRole)"},
        {"{\"Profile\": [1]}", "Profile: expected an object of records by id"},
        {"{\"Profile\": {\"00e1\": {\"Name\": [1]}}}",
         "Profile.00e1.Name: expected a string, number, boolean or null"},
        {"[1]", "[0]: expected a query answer with records"},
        {"[{\"records\": 5}]", "[0]: expected a query answer with records"},
        {"{\"Profile\": {\"records\": [{\"attributes\": {\"type\": \"UserRole\"}, \"Id\": "
         "\"00E1\"}]}}",
         "Profile: records[0] is a UserRole record"},
        {"{\"records\": [{\"Id\": \"00e1\"}]}",
         "records[0]: expected a Profile or UserRole record with its Id and attributes.type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lk = lookup_new(cfg);
        h_write_file(path, bad[i].text);
        cr_assert_eq(lookup_load_file(lk, path, &err), -1, "%s", bad[i].text);
        cr_assert(strstr(err.msg, path) && strstr(err.msg, bad[i].want), "%s", err.msg);
        lookup_free(lk);
    }
    lk = lookup_new(cfg);
    cr_assert_eq(lookup_load_file(lk, h_path("nope.json"), &err), -1);
    cr_assert(strstr(err.msg, "nope.json: unable to open") && !strstr(err.msg, ":-1:"), "%s",
              err.msg);
    lookup_free(lk);
    config_free(cfg);
}

Test(lookup, simulate_reads_the_tables_or_warns)
{
    const char *settings_path = h_path("settings.yaml");
    h_write_file(settings_path, SETTINGS);
    const char *events = h_path("events.jsonl");
    h_write_file(events, EV(U1, "CREATE", 1001, PERSON(1) ",\"ProfileId\":\"" P_ADMIN "\""));
    const char *tables = h_path("lookups.json");
    h_write_file(tables, "{\"Profile\": {\"" P_ADMIN "\": {\"Name\": \"System Administrator\"}}}");
    const char *with[] = {h_pv_binary(), "simulate",  "--settings", settings_path, "--events",
                          events,        "--lookups", tables,       NULL};
    h_proc *p;
    cr_assert_eq(h_run(with, NULL, 30, &p), 0);
    char *out = h_proc_stdout(p);
    cr_assert(strstr(out, "\"assignment\":\"Admins\""), "%s", out);
    free(out);

    const char *without[] = {h_pv_binary(), "simulate", "--settings", settings_path,
                             "--events",    events,     NULL};
    cr_assert_eq(h_run(without, NULL, 30, &p), 0);
    out = h_proc_stdout(p);
    cr_assert_eq(strstr(out, "CREATE_USER"), NULL, "%s", out);
    free(out);
    char *err = h_proc_stderr(p);
    cr_assert(strstr(err, "warning: the filters read Profile (Name), UserRole (DeveloperName); "
                          "without --lookups FILE these read as null (R4.3)"),
              "%s", err);
    free(err);

    /* explain says what the relationship fields read, and why one is null */
    const char *explain[] = {h_pv_binary(), "explain", "--settings", settings_path,
                             "--events",    events,    "--lookups",  tables,
                             "--user",      U1,        NULL};
    cr_assert_eq(h_run(explain, NULL, 30, &p), 0);
    out = h_proc_stdout(p);
    cr_assert(strstr(out, "Relationship fields (R4.3): Profile.Name = 'System Administrator'; "
                          "UserRole.DeveloperName = empty (UserRoleId is empty); "
                          "Manager.Department = empty (ManagerId is empty)."),
              "%s", out);
    free(out);
    explain[7] = h_path("none.json");
    h_write_file(explain[7], "{}");
    cr_assert_eq(h_run(explain, NULL, 30, &p), 0);
    out = h_proc_stdout(p);
    cr_assert(strstr(out, "Profile.Name = empty (Profile " P_ADMIN " not in the look-up tables)"),
              "%s", out);
    free(out);
    /* simulate warns of an id the tables lack, once however often it is read */
    with[7] = explain[7];
    h_write_file(events, EV(U1, "CREATE", 1001, PERSON(1) ",\"ProfileId\":\"" P_ADMIN "\"")
                             EV(U1, "UPDATE", 1002, ",\"Title\":\"CTO\""));
    cr_assert_eq(h_run(with, NULL, 30, &p), 0);
    err = h_proc_stderr(p);
    const char *warned = "warning: Profile " P_ADMIN " is not in the look-up tables (--lookups): "
                         "its fields read as null (R4.3)";
    char *first = strstr(err, warned);
    cr_assert(first && !strstr(first + 1, warned), "%s", err);
    free(err);
    with[7] = tables;

    h_write_file(tables, "{\"Profile\": ");
    cr_assert_eq(h_run(with, NULL, 30, &p), 2);
    err = h_proc_stderr(p);
    cr_assert(strstr(err, "--lookups ") && strstr(err, "lookups.json:1:"), "%s", err);
    free(err);
}

/* explain with events that cannot all be read (interfaces: exit 2 for bad input): an explanation
 * from the lines that could would read as the whole truth, so there is none. */
Test(lookup, explain_does_not_explain_from_part_of_the_events)
{
    const char *settings_path = h_path("settings.yaml");
    h_write_file(settings_path, SETTINGS);
    h_proc *p;
    /* events that cannot all be read: an error, and no explanation from the rest */
    const char *bad = h_path("bad.jsonl");
    h_write_file(bad, EV(U1, "CREATE", 1001, PERSON(1)) "{\"ChangeEventHeader\": 7}\n");
    const char *explain_bad[] = {h_pv_binary(), "explain", "--settings", settings_path, "--events",
                                 bad,           "--user",  U1,           NULL};
    cr_assert_eq(h_run(explain_bad, NULL, 30, &p), 2);
    char *out = h_proc_stdout(p);
    cr_assert_str_eq(out, "", "nothing explained");
    free(out);
    char *err = h_proc_stderr(p);
    cr_assert(strstr(err, "bad.jsonl:2: ") &&
                  strstr(err, "explain: 1 event line could not be read (above): nothing is "
                              "explained until it is fixed"),
              "%s", err);
    free(err);
    explain_bad[5] = h_path("missing.jsonl");
    cr_assert_eq(h_run(explain_bad, NULL, 30, &p), 2);
    out = h_proc_stdout(p);
    cr_assert_str_eq(out, "", "nothing explained");
    free(out);
}
