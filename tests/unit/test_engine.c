/* The decision engine in isolation (R1-R7, R9.1): settings and events in, commands out, with the
 * in-memory store. Each test names the rule it checks. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "engine/engine.h"
#include "event/event.h"
#include "store/store.h"

#define HDR(ids, type, ts, extra)                                                                  \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[" ids                          \
    "],\"changeType\":\"" type                                                                     \
    "\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],\"transactionKey\":\"tx" #ts    \
    "\",\"sequenceNumber\":1,\"commitTimestamp\":" #ts ",\"commitNumber\":" #ts                    \
    ",\"commitUser\":\"005A\",\"changeOrigin\":\"\"}" extra "}\n"

#define USER(first, email, extra)                                                                  \
    ",\"Email\":\"" email "\",\"FirstName\":\"" first "\",\"LastName\":\"Doe\",\"IsActive\":true"  \
    ",\"Title\":\"AE\",\"Department\":\"Sales\"" extra

static const char *BASE = "company:\n  primary_domain: acme.com\n  additional_domains: [acme.io]\n"
                          "assignments:\n  - name: Everyone\n    seats: [recorder]\n"
                          "    data_capture: {web_conferences: true}\n";

typedef struct run {
    json_t *cmds; /* array */
    unsigned warnings;
    engine_warning last_warning;
    unsigned deferrals; /* R6.3 placements left to the caller (sim_opts.parts) */
    struct {
        bool set;
        char manager[64];
        command_source src;
    } fan;
    engine_stats stats;
    int64_t provisioned; /* company_state.provisioned after the events */
    char *explained;     /* engine_explain of sim_opts.explain after the events (malloc'd) */
} run;

/* What a test changes about a run: a store from before the provisioned count, or a held
 * deactivation confirmed after the events (engine_reconcile_user, R8.3). */
typedef struct sim_opts {
    bool count_unknown;
    const engine_opts *engine; /* instead of the defaults (why and source on) */
    const char *release;       /* a user id */
    bool parts; /* accept the placements the engine leaves to the caller and make them one by
                   one after the event, as the pipeline does (engine_opts.max_placements) */
    const char *explain; /* a user id: what `explain` says of it after the events */
    /* reloads: after the events, these settings and then_events over the same state, then the
     * second ones */
    const char *then_settings, *then_events, *then_settings2, *then_events2;
} sim_opts;

static void on_emit(void *ctx, const command *c)
{
    run *r = ctx;
    buf b;
    buf_init(&b);
    command_to_json(c, &b);
    json_error_t je;
    json_t *j = json_loads(b.data, 0, &je);
    cr_assert(j, "command JSON does not parse: %s (%s)", b.data, je.text);
    json_array_append_new(r->cmds, j);
    buf_free(&b);
}

static void on_warn(void *ctx, engine_warning w, const char *msg)
{
    (void)msg;
    ((run *)ctx)->warnings++;
    ((run *)ctx)->last_warning = w;
}

static bool on_defer(void *ctx, const char *manager, size_t n, const command_source *src)
{
    run *r = ctx;
    cr_assert(!r->fan.set, "a second placement left to the caller in one event");
    cr_assert_gt(n, 1);
    r->deferrals++;
    r->fan.set = true;
    snprintf(r->fan.manager, sizeof r->fan.manager, "%s", manager);
    r->fan.src = *src; /* its strings live as long as the event */
    return true;
}

/* The reports the engine left waiting, placed one at a time in ascending Id. */
static void place_one_by_one(engine *e, engine_store *st, run *r, const engine_hooks *h)
{
    const char *const *links;
    size_t n = st->links(st->ctx, r->fan.manager, &links);
    cr_assert_gt(n, 1, "the reports left to the caller are no longer waiting");
    char **ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = strdup(links[i]);
    qsort(ids, n, sizeof *ids, str_ptr_cmp);
    for (size_t i = 0; i < n; i++) {
        engine_place_waiting(e, r->fan.manager, (const char *const *)&ids[i], 1, &r->fan.src, h);
        free(ids[i]);
    }
    free(ids);
    r->fan.set = false;
}

static void feed(engine *e, engine_store *st, run *r, const engine_hooks *h, const char *events,
                 arena *mem)
{
    perr err;
    const char *p = events;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            event ev;
            arena_reset(mem);
            cr_assert_eq(event_from_json(p, len, NULL, mem, &ev, &err), 0, "%s", err.msg);
            cr_assert_eq(engine_apply(e, &ev, h, &err), 0, "%s", err.msg);
            if (r->fan.set) place_one_by_one(e, st, r, h);
        }
        p += len + (nl ? 1 : 0);
    }
}

static run simulate_opts(const char *settings, const char *events, const sim_opts *so)
{
    config *cfg;
    perr err;
    cr_assert_eq(config_load_string(settings, strlen(settings), "t.yaml", &cfg, &err), 0, "%s",
                 err.msg);
    store_mem *m = store_mem_new();
    engine_opts opts = {.with_why = true, .with_source = true};
    if (so && so->engine) opts = *so->engine;
    engine_store *st = store_mem_iface(m);
    if (so && so->count_unknown) st->company(st->ctx)->provisioned = -1;
    engine *e = engine_new(cfg, st, &opts);
    run r = {.cmds = json_array()};
    engine_hooks h = {.ctx = &r, .emit = on_emit, .warn = on_warn};
    if (so && so->parts) h.deferred = on_defer;
    engine_start(e, &h);
    arena mem;
    arena_init(&mem, 4096);
    feed(e, st, &r, &h, events, &mem);
    for (int i = 0; so && i < 2; i++) {
        const char *then = i ? so->then_settings2 : so->then_settings;
        const char *then_events = i ? so->then_events2 : so->then_events;
        if (!then) break;
        engine_free(e);
        config_free(cfg);
        cr_assert_eq(config_load_string(then, strlen(then), "t2.yaml", &cfg, &err), 0, "%s",
                     err.msg);
        e = engine_new(cfg, st, &opts);
        engine_start(e, &h);
        feed(e, st, &r, &h, then_events ? then_events : "", &mem);
    }
    if (so && so->release) engine_reconcile_user(e, so->release, true, 99999999, &h);
    r.stats = *engine_get_stats(e);
    r.provisioned = st->company(st->ctx)->provisioned;
    if (so && so->explain) {
        buf x;
        buf_init(&x);
        engine_explain(e, so->explain, &x);
        r.explained = strndup(x.data, x.len);
        buf_free(&x);
    }
    arena_free(&mem);
    engine_free(e);
    store_mem_free(m);
    config_free(cfg);
    return r;
}

static run simulate(const char *settings, const char *events)
{
    return simulate_opts(settings, events, NULL);
}

static const char *type_at(const run *r, size_t i)
{
    return json_string_value(json_object_get(json_array_get(r->cmds, i), "type"));
}

static const char *str_at(const run *r, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(r->cmds, i), key));
}

static char *settings_with(const char *options)
{
    static char s[2048];
    snprintf(s, sizeof s, "%soptions:\n%s", BASE, options);
    return s;
}

Test(engine, r5_1_create_in_scope_carries_all_attributes)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "ann@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 1);
    cr_assert_str_eq(type_at(&r, 0), "CREATE_USER");
    json_t *user = json_object_get(json_array_get(r.cmds, 0), "user");
    cr_assert_eq(json_object_size(user), 10, "all ten R2.1 attributes");
    cr_assert(json_is_null(json_object_get(user, "phone_number")), "absent field is null");
    cr_assert_str_eq(str_at(&r, 0, "assignment"), "Everyone");
    cr_assert(json_is_null(json_object_get(json_array_get(r.cmds, 0), "manager_sf_user_id")));
    cr_assert(json_is_object(json_object_get(json_array_get(r.cmds, 0), "settings")));
}

/* ---- R4.3: relationship fields */

static const char *REL_SETTINGS =
    "company:\n  primary_domain: acme.com\n"
    "assignments:\n"
    "  - name: Admins\n    filter: \"Profile.Name = 'System Administrator'\"\n"
    "    seats: [admin]\n"
    "  - name: Leaders\n    filter: \"UserRole.DeveloperName LIKE 'Sales%'\"\n"
    "    seats: [recorder]\n"
    "  - name: Reports of VPs\n    filter: \"Manager.Title = 'VP' AND Manager.IsActive = true\"\n"
    "    seats: [viewer]\n"
    "  - name: Inactive managers\n    filter: \"Manager.IsActive = false\"\n"
    "    seats: [viewer]\n"
    "  - name: Everyone else\n    filter: \"Title = 'AE'\"\n"
    "    seats: [viewer]\n";

typedef struct fake_tables {
    unsigned calls;
    value_t admin, sales_vp;
} fake_tables;

static const value_t *fake_lookup(void *ctx, soql_rel rel, const char *id, const char *field)
{
    fake_tables *t = ctx;
    t->calls++;
    if (rel == SOQL_REL_PROFILE && strcmp(id, "00eADMIN") == 0 && strcasecmp(field, "Name") == 0)
        return &t->admin;
    if (rel == SOQL_REL_USERROLE && strcmp(id, "00EVP") == 0 &&
        strcasecmp(field, "DeveloperName") == 0)
        return &t->sales_vp;
    return NULL;
}

static const char *created_as(const run *r, const char *id)
{
    for (size_t i = 0; i < json_array_size(r->cmds); i++)
        if (strcmp(type_at(r, i), "CREATE_USER") == 0 &&
            strcmp(str_at(r, i, "sf_user_id"), id) == 0)
            return str_at(r, i, "assignment");
    return NULL;
}

Test(engine, r4_3_profile_and_role_fields_resolve_through_the_lookup)
{
    fake_tables t = {.admin = value_str("System Administrator"), .sales_vp = value_str("SalesVP")};
    engine_opts o = {.lookup = fake_lookup, .lookup_ctx = &t};
    sim_opts so = {.engine = &o};
    run r = simulate_opts(
        REL_SETTINGS,
        HDR("\"005U1\"", "CREATE", 1, USER("Ann", "ann@acme.com", ",\"ProfileId\":\"00eADMIN\""))
            HDR("\"005U2\"", "CREATE", 2, USER("Bob", "bob@acme.com", ",\"UserRoleId\":\"00EVP\""))
                HDR("\"005U3\"", "CREATE", 3,
                    USER("Cy", "cy@acme.com", ",\"ProfileId\":\"00eOTHER\""))
                    HDR("\"005U3\"", "UPDATE", 4, ",\"ProfileId\":\"00eADMIN\""),
        &so);
    cr_assert_str_eq(created_as(&r, "005U1"), "Admins");
    cr_assert_str_eq(created_as(&r, "005U2"), "Leaders");
    /* U3's profile was not an admin's: the last assignment, until its ProfileId changes and it
     * moves to Admins (R5.3) */
    cr_assert_str_eq(created_as(&r, "005U3"), "Everyone else");
    cr_assert_str_eq(type_at(&r, json_array_size(r.cmds) - 1), "APPLY_SETTINGS");
    cr_assert_str_eq(str_at(&r, json_array_size(r.cmds) - 1, "assignment"), "Admins");
    cr_assert(t.calls > 0);
}

Test(engine, r4_3_without_tables_profile_fields_read_null)
{
    run r = simulate(REL_SETTINGS, HDR("\"005U1\"", "CREATE", 1,
                                       USER("Ann", "ann@acme.com", ",\"ProfileId\":\"00eADMIN\"")));
    cr_assert_str_eq(created_as(&r, "005U1"), "Everyone else");
}

Test(engine, r4_3_manager_fields_come_from_the_managers_snapshot)
{
    run r = simulate(
        REL_SETTINGS,
        HDR("\"005M1\"", "CREATE", 1, USER("Max", "max@acme.com", "") ",\"Title\":\"VP\"")
            HDR("\"005U1\"", "CREATE", 2, USER("Ann", "ann@acme.com", ",\"ManagerId\":\"005M1\""))
        /* a manager never seen: no related record, so Manager.IsActive is null, not false */
        HDR("\"005U2\"", "CREATE", 3, USER("Bob", "bob@acme.com", ",\"ManagerId\":\"005M9\"")));
    cr_assert_str_eq(created_as(&r, "005U1"), "Reports of VPs");
    cr_assert_str_eq(created_as(&r, "005U2"), "Everyone else", "not Inactive managers");
}

Test(engine, r4_1_id_reads_the_users_own_id_and_the_managers)
{
    static const char *settings =
        "company:\n  primary_domain: acme.com\n"
        "assignments:\n"
        "  - name: One\n    filter: \"Id = '005U1' AND Id != null\"\n    seats: [admin]\n"
        "  - name: Under one\n    filter: \"Manager.Id IN ('005U1')\"\n    seats: [viewer]\n"
        "  - name: Rest\n    filter: \"ID != '005U1'\"\n    seats: [viewer]\n";
    run r = simulate(settings, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "ann@acme.com", ""))
                                   HDR("\"005U2\"", "CREATE", 2,
                                       USER("Bob", "bob@acme.com", ",\"ManagerId\":\"005U1\""))
                                       HDR("\"005U3\"", "CREATE", 3,
                                           USER("Cy", "cy@acme.com", ",\"ManagerId\":\"005U9\"")));
    cr_assert_str_eq(created_as(&r, "005U1"), "One");
    cr_assert_str_eq(created_as(&r, "005U2"), "Under one");
    /* a manager never seen: no related record, Manager.Id is null like its other fields */
    cr_assert_str_eq(created_as(&r, "005U3"), "Rest");
}

/* R5.4 after keep_active is turned off: a user it kept active out of scope is deactivated at its
 * next event (through the guard); it is no held deactivation (R8.3), so a confirmation does not
 * deactivate it unguarded, and explain tells the two apart. */
Test(engine, r5_4_keep_active_turned_off_deactivates_at_the_next_event_not_at_a_confirmation)
{
    static const char *keep =
        "company:\n  primary_domain: acme.com\noptions:\n  keep_active: true\n"
        "assignments:\n  - name: Everyone\n";
    static const char *off = "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Everyone\n";
    static const char *before = HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
        HDR("\"005B\"", "CREATE", 2, USER("B", "b@acme.com", ""))
            HDR("\"005A\"", "UPDATE", 3, ",\"IsActive\":false")
                HDR("\"005B\"", "UPDATE", 4, ",\"IsActive\":false");
    /* its next event: deactivated (R5.4) */
    sim_opts so = {.then_settings = off,
                   .then_events = HDR("\"005A\"", "UPDATE", 5, ",\"Title\":\"CFO\""),
                   .explain = "005B"};
    run r = simulate_opts(keep, before, &so);
    cr_assert_eq(json_array_size(r.cmds), 3, "two CREATE_USER, one DEACTIVATE_USER");
    cr_assert_str_eq(type_at(&r, 2), "DEACTIVATE_USER");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.cmds, 2), "sf_user_id")),
                     "005A");
    cr_assert(strstr(r.explained, "kept active while the option keep_active was on; now that it "
                                  "is off, its next event or a reimport deactivates it"),
              "%s", r.explained);
    free(r.explained);
    /* a confirmation confirms held deactivations only */
    so = (sim_opts){.then_settings = off, .release = "005B"};
    r = simulate_opts(keep, before, &so);
    cr_assert_eq(json_array_size(r.cmds), 2, "no deactivation confirmed for a user never held");
    /* a held one still goes through when confirmed, and not at its next event */
    static const char *guarded =
        "company:\n  primary_domain: acme.com\n"
        "assignments:\n  - name: Everyone\nguards:\n  max_deactivations: 0\n";
    so = (sim_opts){.then_settings = guarded,
                    .then_events = HDR("\"005A\"", "UPDATE", 5, ",\"Title\":\"CFO\"")
                        HDR("\"005A\"", "UPDATE", 6, ",\"Title\":\"CEO\""),
                    .release = "005A"};
    r = simulate_opts(keep, before, &so);
    cr_assert_eq(r.stats.held_deactivations, 1, "held once, at its first event");
    cr_assert_eq(json_array_size(r.cmds), 3);
    cr_assert_str_eq(type_at(&r, 2), "DEACTIVATE_USER");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.cmds, 2), "why")),
                     "R8.3: held deactivation confirmed: inactive_in_salesforce");
    /* held, then keep_active on: nothing is pending any more (its Title update goes out as for a
     * user kept active, and a confirmation releases nothing) */
    so = (sim_opts){.then_settings = guarded,
                    .then_events = HDR("\"005A\"", "UPDATE", 5, ",\"Title\":\"CFO\""),
                    .then_settings2 = keep,
                    .then_events2 = HDR("\"005A\"", "UPDATE", 6, ",\"Title\":\"CEO\""),
                    .release = "005A"};
    r = simulate_opts(keep, before, &so); /* (the stats are the last settings' engine's) */
    cr_assert_eq(json_array_size(r.cmds), 3, "kept active: a Title update, no confirmation");
    cr_assert_str_eq(type_at(&r, 2), "UPDATE_USER");
}

/* explain of a user active in Gong and out of scope, neither held nor kept: in scope when last
 * decided, out of it under the settings now (a narrowed filter), deactivated at its next event. */
Test(engine, r5_4_explain_says_a_user_out_of_scope_under_new_settings_goes_at_its_next_event)
{
    sim_opts so = {.then_settings = "company:\n  primary_domain: acme.com\nassignments:\n"
                                    "  - name: Ops\n    filter: \"Department = 'Ops'\"\n",
                   .explain = "005A"};
    run r = simulate_opts(BASE, HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", "")), &so);
    cr_assert(strstr(r.explained, "Still active in Gong: in scope when it was last decided; out of "
                                  "scope now (the settings, a date literal's day or a record its "
                                  "filter reads changed since), so its next event or a reimport "
                                  "deactivates it"),
              "%s", r.explained);
    free(r.explained);
}

/* R3.4/R4.1: a standard checkbox no event carried reads false (Salesforce has no null one); a
 * custom field is null when missing, whatever its name (Island__c is no "Is..." checkbox). */
Test(engine, r4_1_a_missing_checkbox_is_false_a_missing_custom_field_null)
{
    static const char *settings =
        "company:\n  primary_domain: acme.com\n"
        "assignments:\n"
        "  - name: Islanders\n    filter: \"Island__c = false\"\n"
        "  - name: Custom box\n    filter: \"IsPartner__c != true\"\n"
        "  - name: No forecast\n    filter: \"ForecastEnabled = false\"\n";
    run r = simulate(settings, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "ann@acme.com", ""))
                                   HDR("\"005U2\"", "CREATE", 2,
                                       USER("Bob", "bob@acme.com", ",\"IsPartner__c\":false")));
    cr_assert_str_eq(created_as(&r, "005U1"), "No forecast");
    cr_assert_str_eq(created_as(&r, "005U2"), "Custom box");
}

Test(engine, r1_1_non_user_entity_is_skipped_and_counted)
{
    run r = simulate(BASE, "{\"ChangeEventHeader\":{\"entityName\":\"Account\",\"recordIds\":["
                           "\"001A\"],\"changeType\":\"CREATE\",\"commitTimestamp\":1,"
                           "\"commitNumber\":1,\"sequenceNumber\":1},\"Name\":\"Acme\"}\n");
    cr_assert_eq(json_array_size(r.cmds), 0);
    cr_assert_eq(r.stats.skipped_entity, 1);
}

Test(engine, r1_2_multi_record_event_applies_to_each_in_order)
{
    run r = simulate(BASE, HDR("\"005U2\",\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(str_at(&r, 0, "sf_user_id"), "005U2");
    cr_assert_str_eq(str_at(&r, 1, "sf_user_id"), "005U1");
    cr_assert_str_neq(str_at(&r, 0, "command_id"), str_at(&r, 1, "command_id"));
}

Test(engine, r1_4_duplicate_event_produces_nothing)
{
    const char *ev = HDR("\"005U1\"", "CREATE", 5, USER("Ann", "a@acme.com", ""));
    char events[4096];
    snprintf(events, sizeof events, "%s%s", ev, ev);
    run r = simulate(BASE, events);
    cr_assert_eq(json_array_size(r.cmds), 1);
    cr_assert_eq(r.stats.duplicates, 1);
}

Test(engine, r1_4_stale_event_is_ignored)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 5, USER("Ann", "a@acme.com", ""))
                               HDR("\"005U1\"", "UPDATE", 4, ",\"Title\":\"Old\""));
    cr_assert_eq(json_array_size(r.cmds), 1);
    cr_assert_eq(r.stats.stale, 1);
}

/* R1.2/R1.4 over partitions: a bulk UPDATE naming the user is read before its own older CREATE.
 * The CREATE is stale and produces nothing (R1.4), and the loss is warned about: the user has
 * only the update's fields. */
Test(engine, r1_4_stale_create_of_a_user_known_only_by_an_update_is_warned_about)
{
    run r = simulate(BASE, HDR("\"005U2\", \"005U1\"", "UPDATE", 6, ",\"LocaleSidKey\":\"en_US\"")
                               HDR("\"005U1\"", "CREATE", 5, USER("Ann", "a@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 0, "the stale CREATE produces nothing");
    cr_assert_eq(r.stats.stale, 1);
    cr_assert_eq(r.warnings, 1);
    cr_assert_eq(r.last_warning, ENGINE_WARN_STALE_IMAGE);
    cr_assert_eq(r.stats.stale_images, 1);
}

/* The same stale CREATE of a user whose email the service has seen (a replay over the state it
 * left) loses nothing: no warning, as for any stale event. */
Test(engine, r1_4_stale_create_of_a_user_seen_whole_is_not_warned_about)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 5, USER("Ann", "a@other.com", ""))
                               HDR("\"005U1\"", "UPDATE", 7, ",\"Title\":\"New\"")
                                   HDR("\"005U1\"", "CREATE", 5, USER("Ann", "a@other.com", ""))
                                       HDR("\"005U1\"", "UPDATE", 6, ",\"Title\":\"Mid\""));
    cr_assert_eq(json_array_size(r.cmds), 0, "out of scope (R3.3): never provisioned");
    cr_assert_eq(r.stats.stale + r.stats.duplicates, 2);
    cr_assert_eq(r.warnings, 0);
    cr_assert_eq(r.stats.stale_images, 0);
}

Test(engine, r1_3_explicit_json_null_clears_field)
{
    run r = simulate(
        BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ",\"Phone\":\"+1 555\""))
                  HDR("\"005U1\"", "UPDATE", 2, ",\"Phone\":null"));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "UPDATE_USER");
    json_t *user = json_object_get(json_array_get(r.cmds, 1), "user");
    cr_assert_eq(json_object_size(user), 1);
    cr_assert(json_is_null(json_object_get(user, "phone_number")));
}

Test(engine, r1_3_delete_deactivates_with_deleted_reason)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                               HDR("\"005U1\"", "DELETE", 2, ""));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "DEACTIVATE_USER");
    cr_assert_str_eq(str_at(&r, 1, "reason"), "deleted_in_salesforce");
}

Test(engine, r1_3_undelete_reactivates)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                               HDR("\"005U1\"", "DELETE", 2, "")
                                   HDR("\"005U1\"", "UNDELETE", 3, USER("Ann", "a@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 3);
    cr_assert_str_eq(type_at(&r, 2), "REACTIVATE_USER");
}

Test(engine, r1_3_gap_event_without_salesforce_guesses_nothing)
{
    run r = simulate(BASE, HDR("\"005U1\"", "GAP_UPDATE", 1, ""));
    cr_assert_eq(json_array_size(r.cmds), 0);
    cr_assert_eq(r.stats.gaps_unresolved, 1);
    cr_assert_eq(r.warnings, 1);
}

/* R1.3 "marked for reconciliation": what a gap left unknown stays unknown until an image says
 * what the user is; explain says so */
static bool still_marked(const char *events, const char *id)
{
    sim_opts so = {.explain = id};
    run r = simulate_opts(BASE, events, &so);
    bool marked = strstr(r.explained, "reconciliation") != NULL;
    free(r.explained);
    return marked;
}

Test(engine, r1_3_gap_mark_survives_partial_and_older_events)
{
    const char *create = HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""));
    const char *gap = HDR("\"005U1\"", "GAP_UPDATE", 5, "");
    char ev[4096];
    cr_assert(still_marked(gap, "005U1"), "a user named only by a gap");
    snprintf(ev, sizeof ev, "%s%s%s", create, gap,
             HDR("\"005U1\"", "UPDATE", 3, ",\"Title\":\"Old\""));
    cr_assert(still_marked(ev, "005U1"), "an event older than the gap");
    snprintf(ev, sizeof ev, "%s%s%s", create, gap,
             HDR("\"005U1\"", "UPDATE", 7, ",\"Title\":\"New\""));
    cr_assert(still_marked(ev, "005U1"), "a later UPDATE carries only some fields");
    snprintf(ev, sizeof ev, "%s%s%s", create, gap,
             HDR("\"005U1\"", "UNDELETE", 7, USER("Ann", "a@acme.com", "")));
    cr_assert_not(still_marked(ev, "005U1"), "a full image settles it");
    snprintf(ev, sizeof ev, "%s%s%s", create, gap, HDR("\"005U1\"", "DELETE", 7, ""));
    cr_assert_not(still_marked(ev, "005U1"), "a delete settles it");
}

/* R6.3: a manager no event has named yet, asked about because its reports wait for it */
Test(engine, r6_3_explain_names_the_reports_waiting_for_an_unknown_manager)
{
    const char *evs =
        HDR("\"005R1\"", "CREATE", 1, USER("R", "r@acme.com", ",\"ManagerId\":\"005M\""))
            HDR("\"005R2\"", "CREATE", 2, USER("S", "s@acme.com", ",\"ManagerId\":\"005M\""));
    sim_opts so = {.explain = "005M"};
    run r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "no event has named this user"), "%s", r.explained);
    cr_assert(strstr(r.explained, "2 reports wait for it as their manager (R6.3): ") &&
                  strstr(r.explained, "005R1") && strstr(r.explained, "005R2"),
              "%s", r.explained);
    free(r.explained);
    so.explain = "005X";
    r = simulate_opts(BASE, evs, &so);
    cr_assert_null(strstr(r.explained, "wait"), "%s", r.explained);
    free(r.explained);
    /* a manager known but not provisioned (inactive) lists them too: "why have these reps no
     * manager?" */
    const char *inactive = HDR(
        "\"005M\"", "CREATE", 0,
        ",\"Email\":\"m@acme.com\",\"FirstName\":\"M\",\"LastName\":\"Doe\",\"IsActive\":false");
    char both[2048];
    snprintf(both, sizeof both, "%s%s", inactive, evs);
    so.explain = "005M";
    r = simulate_opts(BASE, both, &so);
    cr_assert(strstr(r.explained, "never provisioned") &&
                  strstr(r.explained, "  2 reports wait for it as their manager (R6.3): "),
              "%s", r.explained);
    free(r.explained);
}

/* R4.1 in explain: a filter with a date literal says which moment "today" was (the last event's
 * commitTimestamp, not the wall clock), or a false THIS_YEAR reads as a bug */
Test(engine, r4_1_explain_gives_the_moment_date_literals_were_taken_at)
{
    const char *settings = "company:\n  primary_domain: acme.com\n"
                           "assignments:\n  - name: New hires\n"
                           "    filter: \"CreatedDate = THIS_YEAR\"\n    seats: [recorder]\n";
    const char *evs = HDR("\"005U\"", "CREATE", 1772582400000,
                          USER("U", "u@acme.com", ",\"CreatedDate\":\"2025-02-01T00:00:00.000Z\""));
    sim_opts so = {.explain = "005U"};
    run r = simulate_opts(settings, evs, &so);
    cr_assert(strstr(r.explained, "CreatedDate = THIS_YEAR is false") &&
                  strstr(r.explained, "(date literals as of 2026-03-04T00:00:00Z: the last "
                                      "event's commitTimestamp)"),
              "%s", r.explained);
    cr_assert(strstr(r.explained, "Last event applied: commitTimestamp 1772582400000 "
                                  "(2026-03-04T00:00:00Z), "),
              "the position's time, readable: %s", r.explained);
    free(r.explained);
    /* a filter without one says nothing of it */
    so.explain = "005U";
    r = simulate_opts(BASE, evs, &so);
    cr_assert_null(strstr(r.explained, "date literals"), "%s", r.explained);
    free(r.explained);
}

/* R6.4 / R6.2 in explain: when an active user's Gong manager is not its ManagerId and no link
 * waits, explain says why: the cycle (with the chain that closes it), itself, or a manual
 * assignment that does not reflect the change */
Test(engine, r6_4_explain_says_why_the_gong_manager_is_not_the_manager_id)
{
    const char *evs = HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
        HDR("\"005B\"", "CREATE", 2, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
            HDR("\"005C\"", "CREATE", 3, USER("C", "c@acme.com", ",\"ManagerId\":\"005B\""))
                HDR("\"005A\"", "UPDATE", 4, ",\"ManagerId\":\"005C\"")
                    HDR("\"005C\"", "UPDATE", 5, ",\"ManagerId\":\"005C\"");
    sim_opts so = {.explain = "005A"};
    run r = simulate_opts(BASE, evs, &so);
    cr_assert_eq(r.stats.cycles_refused, 2);
    cr_assert(strstr(r.explained, "ManagerId is 005C; no Gong manager; 005C cannot be its Gong "
                                  "manager: the link would make a cycle (R6.4), as the Gong "
                                  "managers of 005C lead back to this user (005C -> 005B -> 005A)"),
              "%s", r.explained);
    free(r.explained);
    so.explain = "005C";
    r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "the Gong manager is 005B; a user cannot be its own Gong "
                                  "manager (R6.4)"),
              "%s", r.explained);
    free(r.explained);
    so.explain = "005B"; /* its Gong manager is its ManagerId: nothing to explain */
    r = simulate_opts(BASE, evs, &so);
    cr_assert_null(strstr(r.explained, "cannot be"), "%s", r.explained);
    free(r.explained);

    static const char *manual = "company:\n  primary_domain: acme.com\n"
                                "assignments:\n  - name: Everyone\n    update_mode: manual\n";
    so.explain = "005B";
    r = simulate_opts(
        manual,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005D\"", "CREATE", 2, USER("D", "d@acme.com", ""))
                HDR("\"005B\"", "CREATE", 3, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                    HDR("\"005B\"", "UPDATE", 4, ",\"ManagerId\":\"005D\""),
        &so);
    cr_assert(strstr(r.explained, "ManagerId is 005D; the Gong manager is 005A; ManagerId changes "
                                  "after creation are not reflected under a manual assignment "
                                  "(R6.2)"),
              "%s", r.explained);
    free(r.explained);
}

/* The divergences explain cannot see from the hierarchy as it is now: a ManagerId cleared under a
 * manual assignment; a ManagerId change in the event that moved the user from a manual assignment
 * to an automatic one (R6.2: decided under the one last applied); a link refused as a cycle that
 * later changes undid (R6.4: not retried). Each gets its reason, not a bare mismatch. */
Test(engine, r6_2_explain_says_why_a_divergence_the_hierarchy_does_not_show_stays)
{
    static const char *manual = "company:\n  primary_domain: acme.com\n"
                                "assignments:\n  - name: Everyone\n    update_mode: manual\n";
    sim_opts so = {.explain = "005B"};
    run r = simulate_opts(
        manual,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005B\"", "CREATE", 3, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                HDR("\"005B\"", "UPDATE", 4, ",\"ManagerId\":null"),
        &so);
    cr_assert_eq(json_array_size(r.cmds), 2, "no SET_MANAGER: manual");
    cr_assert(strstr(r.explained, "no ManagerId in Salesforce; the Gong manager is 005A; ManagerId "
                                  "changes after creation are not reflected under a manual "
                                  "assignment (R6.2)"),
              "%s", r.explained);
    free(r.explained);

    static const char *two = "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Auto\n    filter: \"Title = 'VP'\"\n"
                             "  - name: Rest\n    update_mode: manual\n";
    r = simulate_opts(
        two,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005D\"", "CREATE", 2, USER("D", "d@acme.com", ""))
                HDR("\"005B\"", "CREATE", 3, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                    HDR("\"005B\"", "UPDATE", 4, ",\"Title\":\"VP\",\"ManagerId\":\"005D\""),
        &so);
    for (size_t i = 0; i < json_array_size(r.cmds); i++)
        cr_assert_str_neq(type_at(&r, i), "SET_MANAGER", "command %zu", i);
    cr_assert(strstr(r.explained, "update mode automatic"), "%s", r.explained);
    cr_assert(strstr(r.explained, "ManagerId is 005D; the Gong manager is 005A; the link was not "
                                  "made when ManagerId last changed, and is not tried again until "
                                  "it changes: either the user's assignment then did not sync "
                                  "manager changes (a manual one, R6.2, also when that same event "
                                  "moved the user to this automatic one) or the link would have "
                                  "made a cycle then (R6.4)"),
              "%s", r.explained);
    free(r.explained);

    /* A <- B <- C, then A under C is refused; B's ManagerId cleared ends the chain */
    so.explain = "005A";
    r = simulate_opts(
        BASE,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005B\"", "CREATE", 2, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                HDR("\"005C\"", "CREATE", 3, USER("C", "c@acme.com", ",\"ManagerId\":\"005B\""))
                    HDR("\"005A\"", "UPDATE", 4, ",\"ManagerId\":\"005C\"")
                        HDR("\"005B\"", "UPDATE", 5, ",\"ManagerId\":null"),
        &so);
    cr_assert_eq(r.stats.cycles_refused, 1);
    cr_assert(strstr(r.explained, "ManagerId is 005C; no Gong manager; the link was not made when "
                                  "ManagerId last changed"),
              "%s", r.explained);
    free(r.explained);
    /* cleared in the event that moved the user from manual to automatic */
    so.explain = "005B";
    r = simulate_opts(
        two,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005B\"", "CREATE", 3, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                HDR("\"005B\"", "UPDATE", 4, ",\"Title\":\"VP\",\"ManagerId\":null"),
        &so);
    cr_assert(strstr(r.explained, "no ManagerId in Salesforce; the Gong manager is 005A; ManagerId "
                                  "was cleared while the user's assignment did not sync manager "
                                  "changes (a manual one, R6.2, also when that same event moved "
                                  "the user to this automatic one)"),
              "%s", r.explained);
    free(r.explained);

    /* R5.4: kept active out of scope when ManagerId changed, in scope again only because its
     * manager's field changed since: no event of the user decided it in scope */
    static const char *kept =
        "company:\n  primary_domain: acme.com\noptions:\n  keep_active: true\n"
        "assignments:\n  - name: Bosses\n    filter: \"Title = 'Boss'\"\n"
        "  - name: Reports\n    filter: \"Manager.Department = 'Sales'\"\n";
    so.explain = "005R";
    r = simulate_opts(
        kept,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ",\"Title\":\"Boss\""))
            HDR("\"005D\"", "CREATE", 2,
                USER("D", "d@acme.com", ",\"Title\":\"Boss\",\"Department\":\"Ops\""))
                HDR("\"005R\"", "CREATE", 3, USER("R", "r@acme.com", ",\"ManagerId\":\"005A\""))
                    HDR("\"005R\"", "UPDATE", 4, ",\"ManagerId\":\"005D\"")
                        HDR("\"005D\"", "UPDATE", 5, ",\"Department\":\"Sales\""),
        &so);
    cr_assert(strstr(r.explained,
                     "ManagerId is 005D; the Gong manager is 005A; the user was out of "
                     "scope when last decided, where no manager command is sent "
                     "(R5.4)"),
              "%s", r.explained);
    free(r.explained);

    /* a Gong manager that is the ManagerId: nothing to explain */
    so.explain = "005C";
    r = simulate_opts(
        BASE,
        HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
            HDR("\"005C\"", "CREATE", 3, USER("C", "c@acme.com", ",\"ManagerId\":\"005A\"")),
        &so);
    cr_assert_null(strstr(r.explained, "not made"), "%s", r.explained);
    cr_assert_null(strstr(r.explained, "R6.2"), "%s", r.explained);
    free(r.explained);
}

/* A name with a line break or another control character is shown escaped: the explanation's
 * lines stay lines. */
Test(engine, explain_shows_control_characters_in_names_escaped)
{
    sim_opts so = {.explain = "005A"};
    run r = simulate_opts(BASE,
                          HDR("\"005A\"", "CREATE", 1,
                              ",\"Email\":\"a@acme.com\",\"FirstName\":\"An\\nn\","
                              "\"LastName\":\"Doe\\u0007\\u2028X\\u0085é\",\"IsActive\":true"),
                          &so);
    /* U+2028 and NEL break lines in some viewers too; other letters stay as they are */
    cr_assert(strstr(r.explained, "User 005A (An\\nn Doe\\x07\\u2028X\\u0085é): active in Gong.\n"),
              "%s", r.explained);
    free(r.explained);
    /* a filter written over several lines (a YAML block) is shown on one */
    r = simulate_opts("company:\n  primary_domain: acme.com\nassignments:\n  - name: Sales\n"
                      "    filter: |\n      Department = 'Sales'\n      AND Title != 'x'\n",
                      HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", "")), &so);
    cr_assert(strstr(r.explained, "filter matched (R3.4): Department = 'Sales' AND Title != "
                                  "'x'.\n"),
              "%s", r.explained);
    free(r.explained);
    /* but what a quoted value holds is shown as it is: two spaces are what it compares */
    r = simulate_opts("company:\n  primary_domain: acme.com\nassignments:\n  - name: AEs\n"
                      "    filter: \"Title = 'Account  Executive'\"\n",
                      HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", "")), &so);
    cr_assert(strstr(r.explained, "'AEs': Title = 'Account  Executive' is false"), "%s",
              r.explained);
    free(r.explained);
    /* and a line break beyond ASCII in a filter, escaped as in names */
    r = simulate_opts("company:\n  primary_domain: acme.com\nassignments:\n  - name: AEs\n"
                      "    filter: \"Title = 'A\\u2028E'\"\n",
                      HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", "")), &so);
    cr_assert(strstr(r.explained, "'AEs': Title = 'A\\u2028E' is false"), "%s", r.explained);
    free(r.explained);
    /* an assignment's name (quoted in YAML), a ManagerId and an email the same way */
    r = simulate_opts("company:\n  primary_domain: acme.com\nassignments:\n"
                      "  - name: \"Sales\\nTeam\"\n",
                      HDR("\"005A\"", "CREATE", 1,
                          ",\"Email\":\"a@acme.com\",\"FirstName\":\"A\",\"LastName\":\"B\","
                          "\"IsActive\":true,\"ManagerId\":\"005M\\r\""),
                      &so);
    cr_assert(strstr(r.explained, "assignment 'Sales\\nTeam' is the first"), "%s", r.explained);
    cr_assert(strstr(r.explained, "Assignment last applied: 'Sales\\nTeam'"), "%s", r.explained);
    cr_assert(strstr(r.explained, "ManagerId is 005M\\r; "), "%s", r.explained);
    cr_assert(strstr(r.explained, "the link waits for 005M\\r, "), "%s", r.explained);
    free(r.explained);
    r = simulate_opts(BASE,
                      HDR("\"005A\"", "CREATE", 1,
                          ",\"Email\":\"a@evil.com\\u001b[2J\",\"FirstName\":\"A\","
                          "\"LastName\":\"B\",\"IsActive\":true"),
                      &so);
    cr_assert(strstr(r.explained, "the email domain 'evil.com\\x1B[2J' is not acme.com"), "%s",
              r.explained);
    free(r.explained);
}

/* R6.2 / R6.3: a manual report created while its manager was not in Gong, whose ManagerId then
 * names a manager already active in Gong: a later change, not reflected, now or at a reactivation.
 * Named to a manager not in Gong yet, it is placed when that one arrives (the placement at
 * creation, "in either update mode"). */
Test(engine, r6_2_manual_created_waiting_moved_to_an_active_manager_is_not_reflected)
{
    static const char *manual = "company:\n  primary_domain: acme.com\n"
                                "assignments:\n  - name: Everyone\n    update_mode: manual\n";
    run r = simulate(
        manual, HDR("\"005Y\"", "CREATE", 1, USER("Y", "y@acme.com", ""))
                    HDR("\"005R\"", "CREATE", 2, USER("R", "r@acme.com", ",\"ManagerId\":\"005X\""))
                        HDR("\"005R\"", "UPDATE", 3, ",\"ManagerId\":\"005Y\"")
                            HDR("\"005X\"", "CREATE", 4, USER("X", "x@acme.com", ""))
                                HDR("\"005R\"", "UPDATE", 5, ",\"IsActive\":false")
                                    HDR("\"005R\"", "UPDATE", 6, ",\"IsActive\":true"));
    cr_assert_eq(json_array_size(r.cmds), 5);
    for (size_t i = 0; i < json_array_size(r.cmds); i++)
        cr_assert_str_neq(type_at(&r, i), "SET_MANAGER", "command %zu", i);
    cr_assert_str_eq(type_at(&r, 4), "REACTIVATE_USER");

    r = simulate(manual,
                 HDR("\"005R\"", "CREATE", 2, USER("R", "r@acme.com", ",\"ManagerId\":\"005X\""))
                     HDR("\"005R\"", "UPDATE", 3, ",\"ManagerId\":\"005Z\"")
                         HDR("\"005Z\"", "CREATE", 4, USER("Z", "z@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 3);
    cr_assert_str_eq(type_at(&r, 2), "SET_MANAGER");
    cr_assert_str_eq(str_at(&r, 2, "manager_sf_user_id"), "005Z");
}

/* R3.4 in explain: each assignment's filter is said to be false, or unknown with the null fields
 * it reads (three-valued logic), so an admin sees which field to fill in */
/* A kept-active user out of scope sends no manager command (R5.4): explain must not promise the
 * waiting link, nor name a link its ManagerId has left. */
Test(engine, r5_4_explain_a_waiting_link_of_a_user_kept_active_out_of_scope)
{
    const char *keep = settings_with("  keep_active: true\n");
    sim_opts so = {.explain = "005U1"};
    const char *created =
        HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ",\"ManagerId\":\"005M1\""))
            HDR("\"005U1\"", "UPDATE", 2, ",\"IsActive\":false");
    run r = simulate_opts(keep, created, &so);
    cr_assert(strstr(r.explained, "the link waits for 005M1, which is not known yet (R6.3), but no "
                                  "manager command is sent while the user is out of scope (R5.4)"),
              "%s", r.explained);
    free(r.explained);
    char both[2048];
    snprintf(both, sizeof both, "%s%s", created,
             HDR("\"005U1\"", "UPDATE", 3, ",\"ManagerId\":\"005M2\""));
    r = simulate_opts(keep, both, &so);
    cr_assert(strstr(r.explained, "the link kept for 005M1, an earlier ManagerId, is not made when "
                                  "it arrives, as ManagerId no longer names it (R6.3); back in "
                                  "scope, its manager is brought in line (R5.4)"),
              "%s", r.explained);
    free(r.explained);
}

/* Admins copy a user's 15-character Id from Salesforce's address bar; events carry the
 * 18-character one (the 15 and a checksum of their case), which may be typed with its checksum in
 * another case; something that is no Id (a name) gets what an Id looks like. */
Test(engine, explain_finds_a_user_by_its_15_character_id)
{
    const char *evs = HDR("\"001A0000006Vm9rIAC\"", "CREATE", 1, USER("A", "a@acme.com", ""));
    sim_opts so = {.explain = "001A0000006Vm9r"};
    run r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "User 001A0000006Vm9rIAC (A "), "%s", r.explained);
    free(r.explained);
    so.explain = "001a0000006Vm9r"; /* another record: Ids are case-sensitive */
    r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "nothing is known about it"), "%s", r.explained);
    cr_assert_null(strstr(r.explained, "letters and digits"), "an Id unknown: %s", r.explained);
    free(r.explained);
    so.explain = "001A0000006Vm9riac"; /* the 18 with its checksum typed in lower case */
    r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "User 001A0000006Vm9rIAC (A "), "%s", r.explained);
    free(r.explained);
    so.explain = "Dee Egan"; /* no Id: it says what one looks like */
    r = simulate_opts(BASE, evs, &so);
    cr_assert(strstr(r.explained, "no event has named this user, so nothing is known about it "
                                  "(a Salesforce user Id is 15 or 18 letters and digits"),
              "%s", r.explained);
    free(r.explained);
}

Test(engine, r3_4_explain_says_which_filters_are_false_and_which_unknown)
{
    static const char *two =
        "company:\n  primary_domain: acme.com\n"
        "assignments:\n  - name: Ops\n    filter: \"Department = 'Ops'\"\n"
        "  - name: East\n"
        "    filter: \"Division = 'East' OR (Title = 'VP' AND Region__c != 'X')\"\n";
    sim_opts so = {.explain = "005U1"};
    run r = simulate_opts(two, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", "")), &so);
    cr_assert(strstr(r.explained, "'Ops': Department = 'Ops' is false (Department = 'Sales'); "
                                  "'East': "),
              "%s", r.explained);
    cr_assert(strstr(r.explained, " is unknown (null: Division, Region__c; Title = 'AE')"), "%s",
              r.explained);
    cr_assert(strstr(r.explained, "[no_matching_assignment]"), "%s", r.explained);
    free(r.explained);
}

/* "Why is this user under 'Rest', and why did Gong not get its settings?": the assignments before
 * the one that matched, with the values their filters read, and whose settings Gong has (R5.3). */
Test(engine, r5_3_explain_names_earlier_assignments_and_the_settings_gong_has)
{
    static const char *two = "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Sales\n    update_mode: manual\n"
                             "    filter: \"Department = 'Sales'\"\n"
                             "  - name: Rest\n";
    sim_opts so = {.explain = "005U1"};
    run r = simulate_opts(two,
                          HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                              HDR("\"005U1\"", "UPDATE", 2, ",\"Department\":\"Ops\""),
                          &so);
    cr_assert_eq(json_array_size(r.cmds), 1, "CREATE_USER, and no APPLY_SETTINGS on the move");
    cr_assert(strstr(r.explained, "assignment 'Rest' is the first whose filter matched"), "%s",
              r.explained);
    cr_assert(strstr(r.explained, "Earlier assignments did not match: 'Sales': Department = "
                                  "'Sales' is false (Department = 'Ops')."),
              "%s", r.explained);
    cr_assert(strstr(r.explained, "Gong has the settings of 'Sales', the last ones sent: none were "
                                  "sent for 'Rest', as the user came to it from a manual "
                                  "assignment, whose settings are managed in Gong (R5.3, R5.5); a "
                                  "reimport sends them (R8.1)."),
              "%s", r.explained);
    free(r.explained);
    /* a reimport re-applies settings to active users in scope only: no promise once deactivated */
    r = simulate_opts(two,
                      HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                          HDR("\"005U1\"", "UPDATE", 2, ",\"Department\":\"Ops\"")
                              HDR("\"005U1\"", "UPDATE", 3, ",\"IsActive\":false"),
                      &so);
    cr_assert(strstr(r.explained, "Gong has the settings of 'Sales'"), "%s", r.explained);
    cr_assert_null(strstr(r.explained, "reimport sends"), "%s", r.explained);
    free(r.explained);
}

Test(engine, r3_3_domain_lower_cased_local_part_kept)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "Ann.X@ACME.IO", "")));
    json_t *user = json_object_get(json_array_get(r.cmds, 0), "user");
    cr_assert_str_eq(json_string_value(json_object_get(user, "emailaddress")), "Ann.X@acme.io");
}

Test(engine, r3_3_convert_email_domain)
{
    run r = simulate(settings_with("  convert_email_domain: true\n"),
                     HDR("\"005U1\"", "CREATE", 1, USER("Ann", "ann@Other.COM", "")));
    json_t *user = json_object_get(json_array_get(r.cmds, 0), "user");
    cr_assert_str_eq(json_string_value(json_object_get(user, "emailaddress")), "ann@acme.com");
}

Test(engine, r3_3_email_without_local_part_fails_even_with_convert)
{
    run r = simulate(settings_with("  convert_email_domain: true\n"),
                     HDR("\"005U1\"", "CREATE", 1, USER("Ann", "@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 0);
}

Test(engine, r3_2_whitespace_name_is_missing)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER(" \\t", "a@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 0);
    cr_assert_eq(r.stats.out_of_scope[REASON_MISSING_NAME], 1);
}

Test(engine, r5_4_deactivate_when_inactive)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                               HDR("\"005U1\"", "UPDATE", 2, ",\"IsActive\":false"));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "DEACTIVATE_USER");
    cr_assert_str_eq(str_at(&r, 1, "reason"), "inactive_in_salesforce");
}

Test(engine, r5_4_keep_active_sends_updates_but_not_a_failing_email)
{
    run r =
        simulate(settings_with("  keep_active: true\n"),
                 HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                     HDR("\"005U1\"", "UPDATE", 2, ",\"Email\":\"a@gmail.com\",\"Title\":\"VP\""));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "UPDATE_USER");
    json_t *user = json_object_get(json_array_get(r.cmds, 1), "user");
    cr_assert_eq(json_object_size(user), 1, "only the title; the failing email is not sent");
    cr_assert_str_eq(json_string_value(json_object_get(user, "title")), "VP");
}

Test(engine, r5_5_reactivation_sends_all_attributes)
{
    run r = simulate(BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                               HDR("\"005U1\"", "UPDATE", 2, ",\"IsActive\":false")
                                   HDR("\"005U1\"", "UPDATE", 3, ",\"IsActive\":true"));
    cr_assert_eq(json_array_size(r.cmds), 3);
    cr_assert_str_eq(type_at(&r, 2), "REACTIVATE_USER");
    cr_assert_eq(json_object_size(json_object_get(json_array_get(r.cmds, 2), "user")), 10);
    cr_assert_str_eq(str_at(&r, 2, "assignment"), "Everyone");
}

static const char *TWO = "company:\n  primary_domain: acme.com\n"
                         "assignments:\n"
                         "  - name: Sales\n    filter: \"Department = 'Sales'\"\n"
                         "    update_mode: %s\n"
                         "  - name: Support\n    filter: \"Department = 'Support'\"\n";

static char *two(const char *mode)
{
    static char s[1024];
    snprintf(s, sizeof s, TWO, mode);
    return s;
}

Test(engine, r5_3_automatic_assignment_change_applies_settings)
{
    run r = simulate(two("automatic"),
                     HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                         HDR("\"005U1\"", "UPDATE", 2, ",\"Department\":\"Support\""));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "APPLY_SETTINGS");
    cr_assert_str_eq(str_at(&r, 1, "assignment"), "Support");
}

Test(engine, r5_3_manual_assignment_change_sends_nothing_but_records)
{
    run r =
        simulate(two("manual"), HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
                                    HDR("\"005U1\"", "UPDATE", 2, ",\"Department\":\"Support\"")
                                        HDR("\"005U1\"", "UPDATE", 3, ",\"Department\":\"Sales\""));
    /* Sales (manual) -> Support: nothing; Support (automatic) -> Sales: APPLY_SETTINGS */
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert_str_eq(type_at(&r, 1), "APPLY_SETTINGS");
    cr_assert_str_eq(str_at(&r, 1, "assignment"), "Sales");
}

Test(engine, r6_3_waiting_links_resolve_in_ascending_id_order)
{
    run r = simulate(
        BASE,
        HDR("\"005U9\"", "CREATE", 1, USER("Nine", "n@acme.com", ",\"ManagerId\":\"005M\""))
            HDR("\"005U3\"", "CREATE", 2, USER("Three", "t@acme.com", ",\"ManagerId\":\"005M\""))
                HDR("\"005M\"", "CREATE", 3, USER("Boss", "b@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 5);
    cr_assert_str_eq(type_at(&r, 2), "CREATE_USER");
    cr_assert_str_eq(type_at(&r, 3), "SET_MANAGER");
    cr_assert_str_eq(str_at(&r, 3, "sf_user_id"), "005U3");
    cr_assert_str_eq(str_at(&r, 4, "sf_user_id"), "005U9");
    cr_assert_str_eq(str_at(&r, 4, "manager_sf_user_id"), "005M");
}

/* Reports waiting for 005M (two created before it, one of them updated after it), a manager named
 * by the first of two records of one event, and one waiting report only. */
static const char *WAITING = HDR("\"005U9\"", "CREATE", 1,
                                 USER("Nine", "n@acme.com", ",\"ManagerId\":\"005M\""))
    HDR("\"005U3\"", "CREATE", 2, USER("Three", "t@acme.com", ",\"ManagerId\":\"005M\""))
        HDR("\"005U5\"", "CREATE", 3, USER("Five", "f@acme.com", ",\"ManagerId\":\"005N\""))
            HDR("\"005U6\"", "CREATE", 4, USER("Six", "s@acme.com", ",\"ManagerId\":\"005N\"")) HDR(
                "\"005U7\"", "CREATE", 5, USER("Seven", "v@acme.com", ",\"ManagerId\":\"005P\""))
                HDR("\"005M\"", "CREATE", 6, USER("Boss", "b@acme.com", ""))
                    HDR("\"005U9\"", "UPDATE", 7, ",\"Title\":\"VP\"")
                        HDR("\"005N\",\"005Q\"", "CREATE", 8, USER("Boss", "c@acme.com", ""))
                            HDR("\"005P\"", "CREATE", 9, USER("Boss", "d@acme.com", ""));

/* engine_opts.max_placements: the placements a manager's event leaves to the caller, made after
 * the event with engine_place_waiting, give exactly the commands of placing them at once (ids,
 * source, why). Only a manager named by its event's last record, with more waiting reports than
 * the limit, is left to the caller. */
Test(engine, r6_3_placements_left_to_the_caller_give_the_same_commands)
{
    run at_once = simulate(BASE, WAITING);
    cr_assert_eq(at_once.stats.commands[CMD_SET_MANAGER], 5);
    engine_opts eo = {.with_why = true, .with_source = true, .max_placements = 1};
    sim_opts so = {.engine = &eo, .parts = true};
    run parts = simulate_opts(BASE, WAITING, &so);
    cr_assert_eq(parts.deferrals, 1, "only 005M's placements are left to the caller");
    cr_assert(json_equal(parts.cmds, at_once.cmds), "the commands changed");
    eo.max_placements = 2; /* 005M has 2 waiting: not more than the limit */
    run two = simulate_opts(BASE, WAITING, &so);
    cr_assert_eq(two.deferrals, 0);
    cr_assert(json_equal(two.cmds, at_once.cmds));
    json_decref(at_once.cmds);
    json_decref(parts.cmds);
    json_decref(two.cmds);
}

Test(engine, r6_4_self_management_is_refused)
{
    run r = simulate(
        BASE, HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ",\"ManagerId\":\"005U1\"")));
    cr_assert_eq(json_array_size(r.cmds), 1);
    cr_assert(json_is_null(json_object_get(json_array_get(r.cmds, 0), "manager_sf_user_id")));
    cr_assert_eq(r.stats.cycles_refused, 1);
    cr_assert_eq(r.warnings, 1);
}

Test(engine, r6_4_two_user_cycle_is_refused)
{
    run r = simulate(
        BASE, HDR("\"005A\"", "CREATE", 1, USER("A", "a@acme.com", ""))
                  HDR("\"005B\"", "CREATE", 2, USER("B", "b@acme.com", ",\"ManagerId\":\"005A\""))
                      HDR("\"005A\"", "UPDATE", 3, ",\"ManagerId\":\"005B\""));
    cr_assert_eq(json_array_size(r.cmds), 2, "A under B would close the loop: no command");
    cr_assert_eq(r.stats.cycles_refused, 1);
}

Test(engine, r6_2_ignore_org_structure_sets_no_manager)
{
    run r = simulate(
        settings_with("  ignore_org_structure: true\n"),
        HDR("\"005M\"", "CREATE", 1, USER("Boss", "b@acme.com", ""))
            HDR("\"005U1\"", "CREATE", 2, USER("Ann", "a@acme.com", ",\"ManagerId\":\"005M\"")));
    cr_assert_eq(json_array_size(r.cmds), 2);
    cr_assert(json_is_null(json_object_get(json_array_get(r.cmds, 1), "manager_sf_user_id")));
}

Test(engine, r6_6_notify_manager_once_on_create)
{
    run r = simulate(
        settings_with("  notify_managers: true\n"),
        HDR("\"005M\"", "CREATE", 1, USER("Boss", "b@acme.com", ""))
            HDR("\"005U1\"", "CREATE", 2, USER("Ann", "a@acme.com", ",\"ManagerId\":\"005M\"")));
    cr_assert_eq(json_array_size(r.cmds), 3);
    cr_assert_str_eq(type_at(&r, 2), "NOTIFY_MANAGER");
    cr_assert_str_eq(str_at(&r, 2, "manager_sf_user_id"), "005M");
}

Test(engine, r7_2_company_settings_at_start_when_on)
{
    run r = simulate(settings_with("  managers_can_toggle_data_capture: true\n"), "");
    cr_assert_eq(json_array_size(r.cmds), 1);
    cr_assert_str_eq(type_at(&r, 0), "COMPANY_SETTINGS");
    cr_assert_str_eq(str_at(&r, 0, "sf_user_id"), "");
    cr_assert(json_is_true(
        json_object_get(json_array_get(r.cmds, 0), "managers_can_toggle_data_capture")));
}

Test(engine, r9_1_command_ids_are_stable_and_unique)
{
    const char *evs = HDR("\"005U1\"", "CREATE", 1, USER("Ann", "a@acme.com", ""))
        HDR("\"005U1\"", "UPDATE", 2, ",\"Title\":\"VP\"");
    run a = simulate(BASE, evs), b = simulate(BASE, evs);
    cr_assert_eq(json_array_size(a.cmds), 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(strlen(str_at(&a, i, "command_id")), 32);
        cr_assert_str_eq(str_at(&a, i, "command_id"), str_at(&b, i, "command_id"));
    }
    cr_assert_str_neq(str_at(&a, 0, "command_id"), str_at(&a, 1, "command_id"));
    /* and the same from one version to the next: a batch read again after an upgrade must give
     * its commands the ids they had (R9.1), so the id's input is a fixed format */
    cr_assert_str_eq(str_at(&a, 0, "command_id"), "3fe1365186acb6d87eb4b03773d68fcd");
    cr_assert_str_eq(str_at(&a, 1, "command_id"), "f35d6d21657ecabad5ac97b2b39ceb61");
    const char *odd =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005U2\"],"
        "\"changeType\":\"CREATE\",\"changedFields\":[],\"nulledFields\":[],"
        "\"diffFields\":[],\"transactionKey\":\"tx\",\"sequenceNumber\":-3,"
        "\"commitTimestamp\":1764001000001,\"commitNumber\":-9223372036854775807,"
        "\"commitUser\":\"005A\",\"changeOrigin\":\"\"}" USER("Bo", "b@acme.com", "") "}\n";
    run c = simulate(BASE, odd);
    cr_assert_eq(json_array_size(c.cmds), 1);
    cr_assert_str_eq(str_at(&c, 0, "command_id"), "9af8f8bda8002fe1ff70257d0036a065",
                     "negative and 64-bit numbers in the id's input");
}

static const char *GUARDED = "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Everyone\n"
                             "guards:\n  max_deactivations: 1\n  window_seconds: 60\n";

Test(engine, r8_3_event_window_guard_holds_the_second_deactivation)
{
    run r = simulate(GUARDED, HDR("\"005A\"", "CREATE", 1000, USER("A", "a@acme.com", ""))
                                  HDR("\"005B\"", "CREATE", 1001, USER("B", "b@acme.com", ""))
                                      HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                                          HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false"));
    cr_assert_eq(json_array_size(r.cmds), 3, "the second deactivation in the window waits");
    cr_assert_str_eq(type_at(&r, 2), "DEACTIVATE_USER");
    cr_assert_eq(r.stats.held_deactivations, 1);
}

Test(engine, r8_3_event_window_guard_lets_deactivations_through_after_the_window)
{
    run r = simulate(GUARDED, HDR("\"005A\"", "CREATE", 1000, USER("A", "a@acme.com", ""))
                                  HDR("\"005B\"", "CREATE", 1001, USER("B", "b@acme.com", ""))
                                      HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                                          HDR("\"005B\"", "UPDATE", 90000, ",\"IsActive\":false"));
    cr_assert_eq(json_array_size(r.cmds), 4, "61 s later the window is empty again");
    cr_assert_eq(r.stats.held_deactivations, 0);
}

/* R8.3 "they go through only when confirmed": a later event of a held user, a window later,
 * does not deactivate it; the confirmation does. */
Test(engine, r8_3_held_user_waits_for_the_confirmation_not_its_next_event)
{
    const char *evs = HDR("\"005A\"", "CREATE", 1000, USER("A", "a@acme.com", ""))
        HDR("\"005B\"", "CREATE", 1001, USER("B", "b@acme.com", ""))
            HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false")
                    HDR("\"005B\"", "UPDATE", 90000, ",\"Title\":\"x\"");
    run r = simulate(GUARDED, evs);
    cr_assert_eq(json_array_size(r.cmds), 3, "A deactivated, B held, B's next event sends nothing");
    cr_assert_str_eq(str_at(&r, 2, "sf_user_id"), "005A");
    cr_assert_eq(r.stats.held_deactivations, 1, "held once");
    cr_assert_eq(r.provisioned, 1);
    sim_opts ex = {.explain = "005B"};
    r = simulate_opts(GUARDED, evs, &ex);
    cr_assert(strstr(r.explained, "held by the mass-deactivation guard (R8.3)"), "%s", r.explained);
    cr_assert_null(strstr(r.explained, "keep_active"), "%s", r.explained);
    free(r.explained);
    sim_opts so = {.release = "005B"};
    r = simulate_opts(GUARDED, evs, &so);
    cr_assert_eq(json_array_size(r.cmds), 4, "confirmed");
    cr_assert_str_eq(type_at(&r, 3), "DEACTIVATE_USER");
    cr_assert_str_eq(str_at(&r, 3, "sf_user_id"), "005B");
    cr_assert_eq(r.provisioned, 0);
}

/* ---- R8.3: the share of an event window, over the provisioned count the engine keeps */

static const char *SHARED = "company:\n  primary_domain: acme.com\n"
                            "assignments:\n  - name: Everyone\n"
                            "    filter: \"Department = 'Sales'\"\n"
                            "guards:\n  max_deactivation_share: 0.25\n  window_seconds: 60\n";

#define FOUR_CREATED                                                                               \
    HDR("\"005A\"", "CREATE", 1000, USER("A", "a@acme.com", ""))                                   \
    HDR("\"005B\"", "CREATE", 1001, USER("B", "b@acme.com", ""))                                   \
    HDR("\"005C\"", "CREATE", 1002, USER("C", "c@acme.com", ""))                                   \
    HDR("\"005D\"", "CREATE", 1003, USER("D", "d@acme.com", ""))

Test(engine, r8_3_provisioned_count_follows_every_transition)
{
    run r = simulate(SHARED, FOUR_CREATED HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                                 HDR("\"005E\"", "CREATE", 2001, USER("E", "e@other.com", ""))
                                     HDR("\"005A\"", "UPDATE", 90000, ",\"IsActive\":true"));
    cr_assert_eq(json_array_size(r.cmds), 6, "4 creates, a deactivation, a reactivation");
    cr_assert_eq(r.provisioned, 4, "4 created, 1 deactivated, 1 reactivated; E never provisioned");
    run d = simulate(SHARED, FOUR_CREATED HDR("\"005B\"", "DELETE", 2000, ""));
    cr_assert_eq(d.provisioned, 3, "a DELETE deactivates (R3.1)");
    run k = simulate("company:\n  primary_domain: acme.com\noptions:\n  keep_active: true\n"
                     "assignments:\n  - name: Everyone\n",
                     FOUR_CREATED HDR("\"005B\"", "UPDATE", 2000, ",\"IsActive\":false"));
    cr_assert_eq(k.provisioned, 4, "keep_active: still active in Gong (R5.4)");
}

Test(engine, r8_3_share_holds_an_event_deactivation_over_it)
{
    /* 1 of 4 is 0.25, not over; 2 of the 4 provisioned before the window is */
    run r = simulate(SHARED, FOUR_CREATED HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                                 HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false"));
    cr_assert_eq(json_array_size(r.cmds), 5, "the second deactivation waits");
    cr_assert_str_eq(type_at(&r, 4), "DEACTIVATE_USER");
    cr_assert_str_eq(str_at(&r, 4, "sf_user_id"), "005A");
    cr_assert_eq(r.stats.held_deactivations, 1);
    cr_assert_eq(r.provisioned, 3, "a held user stays active in Gong");
}

Test(engine, r8_3_share_counts_users_provisioned_before_the_window)
{
    /* 8 provisioned: 2 deactivations are 0.25; the third, 3 of 8, is over (not 3 of the 6 left,
     * nor 2 of the 7 left for the second) */
    const char *evs = FOUR_CREATED HDR("\"005E\"", "CREATE", 1004, USER("E", "e@acme.com", ""))
        HDR("\"005F\"", "CREATE", 1005, USER("F", "f@acme.com", ""))
            HDR("\"005G\"", "CREATE", 1006, USER("G", "g@acme.com", ""))
                HDR("\"005H\"", "CREATE", 1007, USER("H", "h@acme.com", ""))
                    HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                        HDR("\"005B\"", "UPDATE", 2001, ",\"IsActive\":false")
                            HDR("\"005C\"", "UPDATE", 2002, ",\"IsActive\":false");
    run r = simulate(SHARED, evs);
    cr_assert_eq(json_array_size(r.cmds), 10);
    cr_assert_eq(r.stats.held_deactivations, 1);
    cr_assert_str_eq(str_at(&r, 9, "sf_user_id"), "005B");
    cr_assert_eq(r.provisioned, 6);
}

Test(engine, r8_3_share_lets_deactivations_through_after_the_window)
{
    /* 2 of 4 is over 0.34; a window later, 1 of the 3 left is not: C goes through. B's was held
     * and goes through only when confirmed ("only when confirmed"), not at its next event */
    const char *third = "company:\n  primary_domain: acme.com\nassignments:\n  - name: Everyone\n"
                        "guards:\n  max_deactivation_share: 0.34\n  window_seconds: 60\n";
    run r = simulate(third, FOUR_CREATED HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                                HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false")
                                    HDR("\"005C\"", "UPDATE", 90000, ",\"IsActive\":false")
                                        HDR("\"005B\"", "UPDATE", 91000, ",\"Title\":\"x\""));
    cr_assert_eq(r.stats.held_deactivations, 1);
    cr_assert_eq(json_array_size(r.cmds), 6, "A and C deactivated, B still held");
    cr_assert_str_eq(str_at(&r, 4, "sf_user_id"), "005A");
    cr_assert_str_eq(str_at(&r, 5, "sf_user_id"), "005C");
    cr_assert_eq(r.provisioned, 2, "B stays active in Gong until confirmed");
}

Test(engine, r8_3_confirmed_release_moves_the_count)
{
    sim_opts so = {.release = "005B"};
    run r = simulate_opts(SHARED,
                          FOUR_CREATED HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                              HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false"),
                          &so);
    cr_assert_eq(json_array_size(r.cmds), 6, "the held deactivation, confirmed");
    cr_assert_str_eq(type_at(&r, 5), "DEACTIVATE_USER");
    cr_assert_eq(r.provisioned, 2);
}

Test(engine, r8_3_share_does_not_apply_while_the_count_is_unknown)
{
    sim_opts so = {.count_unknown = true};
    run r = simulate_opts(SHARED,
                          FOUR_CREATED HDR("\"005A\"", "UPDATE", 2000, ",\"IsActive\":false")
                              HDR("\"005B\"", "UPDATE", 3000, ",\"IsActive\":false"),
                          &so);
    cr_assert_eq(r.stats.held_deactivations, 0, "a state from before the count: no share yet");
    cr_assert_eq(r.provisioned, -1, "and the engine does not make one up");
}

/* A pooled state (store_redis's) keeps every string in its arena: values set over and over read
 * back right, releasing one frees nothing on its own, and user_state_free takes them all (ASan's
 * leak and double-free checks run this under make test). The same calls on a state that is not
 * pooled allocate and free each string. */
Test(engine, pooled_and_unpooled_states_hold_the_same_values)
{
    for (int pooled = 0; pooled < 2; pooled++) {
        user_state *u = user_state_new(NULL); /* pooled is decided before any string */
        u->pooled = pooled;
        user_state_set_str(u, &u->id, "005P");
        char text[32];
        for (int i = 0; i < 50; i++) {
            snprintf(text, sizeof text, "title %d", i);
            value_t v = value_str(text);
            user_state_set(u, "Title", &v);
            user_state_set(u, i % 2 ? "Phone" : "Department", &v);
        }
        const value_t *t = user_state_get(u, "title");
        cr_assert_not_null(t);
        cr_assert_str_eq(t->s, "title 49");
        cr_assert_neq((const void *)t->s, (const void *)text, "the state keeps its own copy");
        cr_assert_str_eq(user_state_get(u, "Phone")->s, "title 49");
        cr_assert_str_eq(user_state_get(u, "Department")->s, "title 48");
        value_t sent = user_state_dup_value(u, t);
        user_state_release_value(u, &sent);
        cr_assert_eq(sent.type, VAL_NULL);
        u->sent[ATTR_TITLE] = user_state_dup_value(u, t);
        for (int i = 0; i < 20; i++) { /* the members too: set over and over, the same or not */
            snprintf(text, sizeof text, "Sales %d", i / 2);
            user_state_set_str(u, &u->assignment, text);
            user_state_set_str(u, &u->waiting_for, i % 3 ? text : NULL);
            user_state_set_strn(u, &u->gong_manager, "005MGRxx", 6);
        }
        cr_assert_str_eq(u->assignment, "Sales 9");
        cr_assert_str_eq(u->waiting_for, "Sales 9");
        cr_assert_str_eq(u->gong_manager, "005MGR");
        cr_assert_str_eq(u->id, "005P");
        user_state *copy = user_state_new("005Q");
        user_state_copy(copy, u);
        cr_assert_str_eq(copy->id, "005Q");
        cr_assert_str_eq(copy->assignment, "Sales 9");
        cr_assert_neq((const void *)copy->assignment, (const void *)u->assignment);
        cr_assert_not(copy->pooled, "a copy keeps its own kind");
        cr_assert_str_eq(copy->sent[ATTR_TITLE].s, "title 49");
        cr_assert_neq((const void *)copy->sent[ATTR_TITLE].s, (const void *)u->sent[ATTR_TITLE].s);
        user_state_free(u);
        cr_assert_str_eq(user_state_get(copy, "Title")->s, "title 49");
        user_state_free(copy);
    }
}

/* find_field first checks where the same name was found last: states whose fields came in
 * other orders, asked in turn, each still answer with their own field; a name in another case
 * and a name a state does not have still answer right after a hint was left for them. */
Test(engine, state_lookups_right_whatever_order_the_fields_came_in)
{
    static const char *const names[] = {"Title", "Phone", "Department", "Email", "ManagerId"};
    enum { N = sizeof names / sizeof *names };
    user_state *st[N];
    for (int k = 0; k < N; k++) { /* state k has the names rotated by k, without names[k] */
        st[k] = user_state_new("005X");
        for (int j = 0; j < N; j++) {
            int at = (j + k) % N;
            if (at == k) continue;
            char text[32];
            snprintf(text, sizeof text, "%d:%s", k, names[at]);
            value_t v = value_str(text);
            user_state_set(st[k], names[at], &v);
        }
    }
    const char *lower[N] = {"title", "PHONE", "department", "eMail", "managerid"};
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < N; k++)
            for (int j = 0; j < N; j++) {
                const char *asked = round == 1 ? lower[j] : names[j];
                const value_t *v = user_state_get(st[k], asked);
                if (j == k) {
                    cr_assert_null(v, "state %d has no %s", k, asked);
                    continue;
                }
                char want[32];
                snprintf(want, sizeof want, "%d:%s", k, names[j]);
                cr_assert_not_null(v, "state %d, %s", k, asked);
                cr_assert_str_eq(v->s, want);
            }
    for (int k = 0; k < N; k++)
        user_state_free(st[k]);
}

/* The prefetch hint for R5.5 / R6.3 (the chain above a returning user's ManagerId read before its
 * batch): a full image may bring anyone back, an UPDATE only by changing what the failed rule
 * reads (R3.1-R3.3), in any form (named, a compound's part, nulled, in the payload); R3.4's
 * filters may read anything, the clock too. */
Test(engine, the_hint_of_who_an_event_may_bring_back_follows_the_failed_rule)
{
    arena mem;
    arena_init(&mem, 4096);
    user_state *u = user_state_new("005A00000000001IAA");
#define BB_HDR(type, changed, nulled)                                                              \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A00000000001IAA\"],"      \
    "\"changeType\":\"" type "\",\"changedFields\":[" changed "],\"nulledFields\":[" nulled "],"   \
    "\"transactionKey\":\"t\",\"sequenceNumber\":1,\"commitTimestamp\":1,\"commitNumber\":1}"
    static const struct {
        reason_code reason;
        const char *json;
        bool may;
    } cases[] = {
        {REASON_INACTIVE, BB_HDR("UPDATE", "\"IsActive\"", "") ",\"IsActive\":true}", true},
        {REASON_INACTIVE, BB_HDR("UPDATE", "", "") ",\"isactive\":true}", true},
        {REASON_INACTIVE, BB_HDR("UPDATE", "\"Title\"", "") ",\"Title\":\"CTO\"}", false},
        {REASON_INACTIVE, BB_HDR("CREATE", "", "") ",\"Title\":\"CTO\"}", true},
        {REASON_INACTIVE, BB_HDR("GAP_UPDATE", "", "") "}", true},
        {REASON_INACTIVE, BB_HDR("DELETE", "", "") "}", false},
        {REASON_DELETED, BB_HDR("UPDATE", "\"IsActive\"", "") ",\"IsActive\":true}", false},
        {REASON_DELETED, BB_HDR("UNDELETE", "", "") ",\"IsActive\":true}", true},
        {REASON_MISSING_NAME,
         BB_HDR("UPDATE", "\"Name.LastName\"", "") ",\"Name\":{\"LastName\":"
                                                   "\"B\"}}",
         true},
        {REASON_MISSING_NAME, BB_HDR("UPDATE", "\"Phone\"", "") ",\"Phone\":\"1\"}", false},
        {REASON_EMAIL_DOMAIN, BB_HDR("UPDATE", "", "\"Email\"") "}", true},
        {REASON_EMAIL_DOMAIN, BB_HDR("UPDATE", "\"Title\"", "") ",\"Title\":\"CTO\"}", false},
        {REASON_NO_ASSIGNMENT, BB_HDR("UPDATE", "\"Phone\"", "") ",\"Phone\":\"1\"}", true},
    };
#undef BB_HDR
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        event ev;
        perr err = {{0}};
        cr_assert_eq(event_from_json(cases[i].json, strlen(cases[i].json), NULL, &mem, &ev, &err),
                     0, "%s: %s", cases[i].json, err.msg);
        u->reason = cases[i].reason;
        cr_expect_eq(engine_may_bring_back(u, &ev), cases[i].may, "%s (%s)", cases[i].json,
                     engine_reason_name(cases[i].reason));
    }
    user_state_free(u);
    arena_free(&mem);
}

/* The `why` of a command is put together from its format's %s arguments (not vsnprintf) and cut at
 * 767 bytes, as earlier builds cut it: a command's bytes do not change with the build. */
Test(engine, why_joins_its_arguments_and_is_cut_at_767_bytes)
{
    static const char *two = "company:\n  primary_domain: acme.com\n"
                             "assignments:\n  - name: Sales\n    filter: Title = 'AE'\n"
                             "  - name: Rest\n";
    run r = simulate(two, HDR("\"005A\"", "CREATE", 1, USER("Ann", "ann@acme.com", ""))
                              HDR("\"005A\"", "UPDATE", 2, ",\"Title\":\"CTO\""));
    size_t found = 0;
    for (size_t i = 0; i < json_array_size(r.cmds); i++)
        found += str_at(&r, i, "why") &&
                 strcmp(str_at(&r, i, "why"), "R5.3: assignment changed from 'Sales' to "
                                              "'Rest' (automatic)") == 0;
    cr_assert_eq(found, 1, "%s", json_dumps(r.cmds, 0));
    json_decref(r.cmds);

    char name[901], settings[1200];
    memset(name, 'N', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(settings, sizeof settings,
             "company:\n  primary_domain: acme.com\nassignments:\n  - name: %s\n", name);
    r = simulate(settings, HDR("\"005A\"", "CREATE", 1, USER("Ann", "ann@acme.com", "")));
    cr_assert_eq(json_array_size(r.cmds), 1);
    const char *why = str_at(&r, 0, "why");
    char want[768];
    snprintf(want, sizeof want, "R5.1: new user in scope under assignment '%s", name);
    cr_assert_eq(strlen(why), 767, "%zu", strlen(why));
    cr_assert_str_eq(why, want);
    json_decref(r.cmds);
}
