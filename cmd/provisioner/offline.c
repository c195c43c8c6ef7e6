#include "offline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "log/log.h"

static void warn_stderr(void *ctx, engine_warning w, const char *msg)
{
    offline *o = ctx;
    (void)w;
    if (o->quiet_warnings) return;
    if (o->file)
        fprintf(stderr, "warning: %s:%lu: %s\n", o->file, o->lineno, msg);
    else
        fprintf(stderr, "warning: %s\n", msg);
}

static void emit_forward(void *ctx, const command *c)
{
    offline *o = ctx;
    if (o->emit_fn) o->emit_fn(o->emit_ctx, c);
}

/* The tables of --lookups, with a warning the first time an id is not in them: a filter on its
 * fields reads null, and the file most likely lacks a record. */
static const value_t *offline_lookup(void *ctx, soql_rel rel, const char *id, const char *field)
{
    offline *o = ctx;
    const value_t *v = lookup_get(o->lk, rel, id, field);
    if (v || !id || o->quiet_warnings) return v; /* explain says it in its own words */
    char key[128];
    snprintf(key, sizeof key, "%s:%s", soql_relationship_name(rel), id);
    if (strmap_get(&o->unknown_ids, key)) return v;
    strmap_put(&o->unknown_ids, key, o);
    fprintf(stderr,
            "warning: %s %s is not in the look-up tables (--lookups): its fields read as null "
            "(R4.3)\n",
            soql_relationship_name(rel), id);
    return v;
}

/* The id asked about, as written or in its 18-character form (as engine_explain finds it). */
static bool same_user(const char *asked, const char *id)
{
    char id18[19];
    return strcmp(asked, id) == 0 || (engine_id18(asked, id18) && strcmp(id18, id) == 0);
}

static void note_ignored(void *ctx, const char *user, bool duplicate)
{
    offline *o = ctx;
    if (!o->watch || !same_user(o->watch, user)) return;
    if (o->n_ignored++ < 5)
        buf_printf(&o->ignored, "%sline %lu (%s)", o->n_ignored > 1 ? ", " : "", o->lineno,
                   duplicate ? "the same position again" : "older");
}

int64_t offline_parse_iso(const char *s) { return time_parse_iso8601(s); }

/* Where the decisions' state lives: a new one in memory, or the service's in Redis (opened last,
 * so that bad settings are a usage error whether Redis answers or not). */
static engine_store *offline_store(offline *o, const offline_opts *oo)
{
    if (!oo->redis) {
        o->mem = store_mem_new();
        return store_mem_iface(o->mem);
    }
    perr err;
    if (store_redis_open(oo->redis, &o->redis, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        o->exit_code = EXIT_RUNTIME;
        return NULL;
    }
    return store_redis_iface(o->redis);
}

/* The Profile and UserRole tables of relationship filters (R4.3): from --lookups, or read from
 * Salesforce as the service reads them; without either, such fields read as null (a warning, or
 * an error where that would explain the service's decisions wrongly). */
static int offline_lookups(offline *o, const offline_opts *oo)
{
    perr err;
    if (oo->lookups) {
        if (lookup_load_file(o->lk, oo->lookups, &err) == 0) return 0;
        fprintf(stderr, "provisioner: --lookups %s\n", err.msg);
        return -1;
    }
    if (!lookup_needed(o->lk)) return 0;
    buf what;
    buf_init(&what);
    lookup_describe(o->lk, &what);
    int rc = 0;
    /* made only now: Salesforce variables (a pod's, incomplete ones too) are no reason to fail
     * settings that need no table */
    if (oo->lookup_sf && cmd_salesforce_client(oo->lookup_sf, NULL, &o->sf) < 0) {
        rc = -1; /* its error printed: a usage error */
    } else if (o->sf) {
        if (lookup_refresh(o->lk, o->sf, SF_ESSENTIAL, &err) < 0) {
            fprintf(stderr, "provisioner: reading %s from Salesforce: %s\n", what.data, err.msg);
            o->exit_code = EXIT_RUNTIME;
            rc = -1;
        }
    } else if (oo->need_lookups) {
        fprintf(stderr,
                "provisioner: the filters read %s (R4.3): give --lookups FILE, or Salesforce "
                "access (--salesforce-url and its credentials) to read them as the service "
                "does\n",
                what.data);
        rc = -1;
    } else {
        fprintf(stderr,
                "warning: the filters read %s; without --lookups FILE these read as null "
                "(R4.3)\n",
                what.data);
    }
    buf_free(&what);
    return rc;
}

int offline_open(offline *o, const offline_opts *oo)
{
    memset(o, 0, sizeof *o);
    o->exit_code = EXIT_USAGE;
    perr err;
    if (!oo->settings) {
        fprintf(stderr, "provisioner: --settings FILE is required\n");
        return -1;
    }
    if (config_load_file(oo->settings, &o->cfg, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        return -1;
    }
    if (!oo->guards && o->cfg->guards.enabled) {
        o->cfg->guards.enabled = false;
        o->guards_left_out = true;
    }
    engine_opts opts = {.with_why = oo->with_why, .with_source = oo->with_why, .lookup_ctx = o};
    if (oo->now && (opts.now_ms = offline_parse_iso(oo->now)) < 0) {
        fprintf(stderr, "provisioner: --now '%s' is not an ISO 8601 date-time\n", oo->now);
        config_free(o->cfg);
        return -1;
    }
    o->lk = lookup_new(o->cfg);
    strmap_init(&o->unknown_ids);
    buf_init(&o->ignored);
    engine_store *store;
    if (offline_lookups(o, oo) < 0 || !(store = offline_store(o, oo))) {
        int code = o->exit_code;
        offline_close(o);
        o->exit_code = code;
        return -1;
    }
    if (oo->lookups || o->sf) opts.lookup = offline_lookup;
    cmd_filter_field_hints(o->cfg, stderr);
    o->eng = engine_new(o->cfg, store, &opts);
    o->emit_fn = oo->emit;
    o->emit_ctx = oo->emit_ctx;
    o->hooks = (engine_hooks){
        .ctx = o, .emit = emit_forward, .warn = warn_stderr, .ignored = note_ignored};
    return 0;
}

int offline_open_events(jsonl_reader *in, const char *events_path)
{
    if (jsonl_open(in, events_path) == 0) return 0;
    fprintf(stderr, "provisioner: %s: %s\n", events_path, strerror(errno));
    return -1;
}

int offline_feed(offline *o, jsonl_reader *in)
{
    arena mem;
    arena_init(&mem, 64 * 1024);
    while (jsonl_next(in)) {
        event ev;
        perr err;
        arena_reset(&mem);
        o->lineno = in->lineno;
        o->file = in->name;
        if (event_from_json(in->line, in->len, NULL, &mem, &ev, &err) < 0) {
            fprintf(stderr, "provisioner: %s:%lu: %s\n", in->name, in->lineno, err.msg);
            o->bad_lines++;
            continue;
        }
        /* R1.4 orders by it: at 0, a later event of the user that lacks it too is a duplicate */
        if (event_is_user(&ev) && ev.commit_timestamp == 0 && !o->quiet_warnings)
            fprintf(stderr,
                    "warning: %s:%lu: ChangeEventHeader.commitTimestamp is missing or 0: the "
                    "event sits at position 0, and a later one of the same user without it "
                    "reads as its duplicate (R1.4)\n",
                    in->name, in->lineno);
        if (engine_apply(o->eng, &ev, &o->hooks, &err) < 0) {
            fprintf(stderr, "provisioner: %s:%lu: %s\n", in->name, in->lineno, err.msg);
            o->bad_lines++;
        }
    }
    o->file = NULL;
    arena_free(&mem);
    const char *name = in->name;
    if (jsonl_close(in) < 0) {
        fprintf(stderr, "provisioner: %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

void offline_summary(const offline *o, FILE *f)
{
    const engine_stats *s = engine_get_stats(o->eng);
    uint64_t total = 0;
    for (int i = 0; i < CMD__COUNT; i++)
        total += s->commands[i];
    fprintf(f, "summary: %llu events, %llu commands (", (unsigned long long)s->events,
            (unsigned long long)total);
    bool first = true;
    for (int i = 0; i < CMD__COUNT; i++) {
        if (!s->commands[i]) continue;
        fprintf(f, "%s%s %llu", first ? "" : ", ", command_type_name((command_type)i),
                (unsigned long long)s->commands[i]);
        first = false;
    }
    fprintf(f,
            "), %llu duplicates, %llu stale, %llu skipped (not User), %llu gaps unresolved, "
            "%llu cycles refused, %llu deactivations held (R8.3), %lu bad lines\n",
            (unsigned long long)s->duplicates, (unsigned long long)s->stale,
            (unsigned long long)s->skipped_entity, (unsigned long long)s->gaps_unresolved,
            (unsigned long long)s->cycles_refused, (unsigned long long)s->held_deactivations,
            o->bad_lines);
    if (o->guards_left_out && s->commands[CMD_DEACTIVATE_USER])
        fprintf(f,
                "note: the settings' guards (R8.3) were not applied: %llu deactivations went "
                "through; --guards applies them as the service does\n",
                (unsigned long long)s->commands[CMD_DEACTIVATE_USER]);
}

void offline_close(offline *o)
{
    engine_free(o->eng);
    store_mem_free(o->mem);
    store_redis_close(o->redis);
    lookup_free(o->lk);
    sf_client_free(o->sf);
    config_free(o->cfg);
    strmap_free(&o->unknown_ids, NULL);
    buf_free(&o->ignored);
    memset(o, 0, sizeof *o);
}
