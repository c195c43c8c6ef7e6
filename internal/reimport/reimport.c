#include "reimport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log/log.h"
#include "lookup/lookup.h"

#define CHUNK 500

typedef struct rec {
    char *id;
    event_field *fields;
    size_t n;
    int64_t modstamp;
} rec;

typedef struct run {
    const reimport_opts *o;
    reimport_result *res;
    arena mem;
    rec *recs;
    size_t n_recs, cap_recs;
    strmap in_sf; /* ids Salesforce returned */
    char **known;
    size_t n_known, cap_known;
    strmap known_set; /* the same ids (borrowed): SCAN may return a key twice */
    bool counting; /* the guard's dry pass */
    bool tally;    /* the first pass counts users for the result */
    bool was_held; /* the user being decided was held before this run (R8.3) */
    uint64_t confirmed; /* counting pass of a confirmation: held users it deactivates */
    lookup *lk;    /* Profile and UserRole tables for relationship filters (R4.3) */
} run;

int64_t reimport_parse_time(const char *s) { return time_parse_iso8601(s); }

const char **reimport_fields(const config *cfg, size_t *n)
{
    static const char *base[] = {"Email",           "FirstName",    "LastName",  "Title",
                                 "Phone",           "MobilePhone",  "Extension", "IsActive",
                                 "TimeZoneSidKey",  "LocaleSidKey", "ManagerId", "SystemModstamp",
                                 "LastModifiedDate"};
    size_t nb = sizeof base / sizeof base[0], cap = nb;
    for (size_t i = 0; i < cfg->n_assignments; i++)
        if (cfg->assignments[i].filter) cap += soql_field_count(cfg->assignments[i].filter);
    const char **out = xcalloc(cap, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < nb; i++)
        out[k++] = base[i];
    for (size_t i = 0; i < cfg->n_assignments; i++) {
        const soql_filter *f = cfg->assignments[i].filter;
        for (size_t j = 0; f && j < soql_field_count(f); j++) {
            /* a relationship path is read through the user's key field and a look-up, as for
             * events (R4.3): the snapshot holds the user's own fields only */
            const char *name = soql_field_name(f, j);
            const char *key = soql_relationship_key(soql_relationship(name, NULL));
            if (key) name = key;
            bool dup = false;
            for (size_t m = 0; m < k && !dup; m++)
                dup = strcasecmp(out[m], name) == 0;
            if (!dup) out[k++] = name;
        }
    }
    *n = k;
    return out;
}

static int on_record(void *ctx, const sf_record *r, perr *err)
{
    run *x = ctx;
    (void)err;
    if (!r->id) return 0;
    if (x->n_recs == x->cap_recs) {
        x->cap_recs = x->cap_recs ? x->cap_recs * 2 : 1024;
        x->recs = xrealloc(x->recs, x->cap_recs * sizeof *x->recs);
    }
    rec *c = &x->recs[x->n_recs++];
    c->id = arena_strdup(&x->mem, r->id);
    c->n = 0;
    c->fields = arena_alloc(&x->mem, (r->n_fields ? r->n_fields : 1) * sizeof *c->fields);
    c->modstamp = -1;
    for (size_t i = 0; i < r->n_fields; i++) {
        const event_field *f = &r->fields[i];
        if (strcasecmp(f->name, "Id") == 0) continue;
        event_field *d = &c->fields[c->n++];
        d->name = arena_strdup(&x->mem, f->name);
        d->val = f->val;
        if (f->val.type == VAL_STR) d->val.s = arena_strndup(&x->mem, f->val.s, f->val.len);
        if (f->val.type == VAL_STR &&
            (strcasecmp(f->name, "SystemModstamp") == 0 ||
             (c->modstamp < 0 && strcasecmp(f->name, "LastModifiedDate") == 0)))
            c->modstamp = reimport_parse_time(f->val.s);
    }
    strmap_put(&x->in_sf, c->id, c);
    x->res->salesforce_users++;
    if (x->o->progress && r->total)
        fprintf(stderr, "\rreading users from Salesforce: %zu/%zu", r->seq, r->total);
    return 0;
}

static int on_known(void *ctx, const char *id)
{
    run *x = ctx;
    /* a user decided twice in one run would find its own hold of the first time "held before"
     * and release it unguarded */
    if (strmap_get(&x->known_set, id)) return 0;
    if (x->n_known == x->cap_known) {
        x->cap_known = x->cap_known ? x->cap_known * 2 : 1024;
        x->known = xrealloc(x->known, x->cap_known * sizeof *x->known);
    }
    x->known[x->n_known] = xstrdup(id);
    strmap_put(&x->known_set, x->known[x->n_known], x);
    x->n_known++;
    return 0;
}

typedef struct hook_ctx {
    run *x;
} hook_ctx;

static void on_emit(void *ctx, const command *c)
{
    run *x = ctx;
    /* a confirmation confirms what was held: its guard counts only the deactivations it finds
     * new, so that Salesforce losing users meanwhile is held as at any other run, and measures
     * their share of the users it does not confirm away (R8.3) */
    if (c->type == CMD_DEACTIVATE_USER && x->counting && x->o->confirm && x->was_held)
        x->confirmed++;
    else if (c->type == CMD_DEACTIVATE_USER)
        x->res->deactivations++;
    if (x->counting) return;
    x->res->commands[c->type]++;
    x->o->emit(x->o->ctx, c);
}

static void on_warn(void *ctx, engine_warning w, const char *msg)
{
    run *x = ctx;
    if (w == ENGINE_WARN_HELD) x->res->held++;
    if (!x->counting) log_msg(LOG_WARN, msg, NULL);
}

static event full_image(const rec *r, const char *const *ids)
{
    event ev = {0};
    ev.entity = "User";
    ev.change = CHANGE_UNDELETE; /* a full image: the snapshot becomes these fields (R1.3) */
    ev.record_ids = (const char **)ids;
    ev.n_record_ids = 1;
    ev.commit_timestamp = r->modstamp;
    ev.fields = r->fields;
    ev.n_fields = r->n;
    ev.transaction_key = "reimport";
    ev.source.partition = -1;
    ev.source.offset = -1;
    return ev;
}

/* One pass over everything: the records from Salesforce, then the known users it lacks, each
 * chunk prefetched, decided, synced and written (unless a dry run or the counting pass). */
static int pass(run *x, bool hold, perr *err)
{
    const reimport_opts *o = x->o;
    engine_opts eo = {.with_why = true,
                      .with_source = false,
                      .hold_deactivations = hold,
                      .reimport = true,
                      .lookup = lookup_get,
                      .lookup_ctx = x->lk};
    engine *e = engine_new(o->cfg, store_redis_iface(o->store), &eo);
    engine_hooks h = {.ctx = x, .emit = on_emit, .warn = on_warn};
    engine_store *st = store_redis_iface(o->store);
    int rc = 0;
    size_t total = x->n_recs + x->n_known;
    for (size_t start = 0; start < total && rc == 0; start += CHUNK) {
        if (o->stop && *o->stop) {
            rc = perr_set(err, "reimport: stopped");
            break;
        }
        size_t end = start + CHUNK < total ? start + CHUNK : total;
        const char **ids = xcalloc((end - start) * 2 + 1, sizeof *ids);
        size_t n = 0;
        for (size_t i = start; i < end; i++) {
            if (i < x->n_recs) {
                ids[n++] = x->recs[i].id;
                for (size_t f = 0; f < x->recs[i].n; f++)
                    if (strcasecmp(x->recs[i].fields[f].name, "ManagerId") == 0 &&
                        x->recs[i].fields[f].val.type == VAL_STR)
                        ids[n++] = x->recs[i].fields[f].val.s;
            } else {
                ids[n++] = x->known[i - x->n_recs];
            }
        }
        rc = store_redis_prefetch(o->store, ids, n, err);
        free(ids);
        for (size_t i = start; i < end && rc == 0; i++) {
            const char *id = i < x->n_recs ? x->recs[i].id : x->known[i - x->n_recs];
            if (i >= x->n_recs && strmap_get(&x->in_sf, id)) continue; /* applied above */
            user_state *u = st->get(st->ctx, id);
            if (x->tally && u && u->status == PROV_ACTIVE) x->res->provisioned++;
            x->was_held = u && u->held && !o->cfg->keep_active; /* held: active, out of scope */
            uint64_t stale_before = engine_get_stats(e)->stale + engine_get_stats(e)->duplicates;
            if (i < x->n_recs) {
                const char *one[1] = {id};
                event ev = full_image(&x->recs[i], one);
                if (ev.commit_timestamp < 0) ev.commit_timestamp = o->now_ms;
                rc = engine_apply(e, &ev, &h, err);
            } else { /* known here, gone from Salesforce (R8.1) */
                if (x->tally) x->res->missing++;
                const char *one[1] = {id};
                event ev = {.entity = "User",
                            .change = CHANGE_DELETE,
                            .record_ids = one,
                            .n_record_ids = 1,
                            .commit_timestamp = o->now_ms,
                            .transaction_key = "reimport"};
                ev.source.partition = -1;
                ev.source.offset = -1;
                rc = engine_apply(e, &ev, &h, err);
            }
            if (engine_get_stats(e)->stale + engine_get_stats(e)->duplicates > stale_before) {
                if (x->tally) x->res->not_newer++;
                /* the snapshot meets the current settings (R5 for each, R8.1): a record from
                 * Salesforce, or one gone from it already deleted here, whom keep_active kept
                 * before it was turned off (deactivated now, through the guard) */
                engine_redecide_user(e, id, o->now_ms, &h);
            }
            engine_reconcile_user(e, id, o->confirm && x->was_held, o->now_ms, &h);
        }
        if (rc == 0 && store_redis_failed(o->store, err)) rc = -1;
        if (rc == 0 && !x->counting && !o->dry_run) {
            if (o->sync) rc = o->sync(o->ctx, err);
            if (rc == 0)
                rc = o->flush ? o->flush(o->ctx, err) : store_redis_flush(o->store, NULL, err);
            store_redis_reset(o->store);
        }
        if (o->progress)
            fprintf(stderr, "\r%s: %zu/%zu users", x->counting ? "checking" : "applying", end,
                    total);
    }
    if (o->progress) fputc('\n', stderr);
    x->tally = false;
    engine_free(e);
    return rc;
}

int reimport_run(const reimport_opts *o, reimport_result *res, perr *err)
{
    memset(res, 0, sizeof *res);
    run x = {.o = o, .res = res};
    arena_init(&x.mem, 1 << 20);
    strmap_init(&x.in_sf);
    strmap_init_borrowed(&x.known_set);
    size_t nf;
    const char **fields = reimport_fields(o->cfg, &nf);
    x.lk = lookup_new(o->cfg);
    int rc = 0;
    if (lookup_needed(x.lk) && lookup_refresh(x.lk, o->sf, SF_ESSENTIAL, err) < 0)
        rc = perr_prefix(err, "reading the Profile and UserRole tables (R4.3): ");
    if (rc == 0) rc = sf_query_all_users(o->sf, fields, nf, SF_ESSENTIAL, on_record, &x, err);
    free(fields);
    if (o->progress) fputc('\n', stderr);
    if (rc == 0) rc = store_redis_scan_users(o->store, on_known, &x, err);
    res->known_users = x.n_known;
    x.tally = true;
    const cfg_guards *g = &o->cfg->guards;
    if (rc == 0 && g->enabled) { /* R8.3: count before acting */
        x.counting = true;
        rc = pass(&x, false, err);
        store_redis_reset(o->store);
        x.counting = false;
        uint64_t base = res->provisioned > x.confirmed ? res->provisioned - x.confirmed : 0;
        double share = base ? (double)res->deactivations / (double)base : 0;
        res->guard_tripped =
            (g->max_deactivations >= 0 && res->deactivations > (uint64_t)g->max_deactivations) ||
            (g->max_deactivation_share >= 0 && share > g->max_deactivation_share);
        uint64_t would = res->deactivations;
        res->deactivations = 0;
        res->held = 0;
        if (res->guard_tripped) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%llu", (unsigned long long)would);
            snprintf(b, sizeof b, "%llu", (unsigned long long)res->provisioned);
            log_msg(LOG_ERROR,
                    "R8.3: mass-deactivation guard: this reimport would deactivate too many "
                    "users; deactivations are held until confirmed (POST /reimport?confirm=1, or "
                    "reimport --confirm)",
                    "would_deactivate", a, "provisioned", b, NULL);
        }
    }
    if (rc == 0) rc = pass(&x, res->guard_tripped, err);
    strmap_free(&x.known_set, NULL); /* before the ids it borrows */
    for (size_t i = 0; i < x.n_known; i++)
        free(x.known[i]);
    free(x.known);
    free(x.recs);
    lookup_free(x.lk);
    strmap_free(&x.in_sf, NULL);
    arena_free(&x.mem);
    return rc;
}

typedef struct held_ctx {
    char **ids;
    size_t n, cap;
} held_ctx;

static int collect_id(void *ctx, const char *id)
{
    held_ctx *h = ctx;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->ids = xrealloc(h->ids, h->cap * sizeof *h->ids);
    }
    h->ids[h->n++] = xstrdup(id);
    return 0;
}

int reimport_list_held(store_redis *store, const config *cfg,
                       void (*fn)(void *ctx, const user_state *u), void *ctx, perr *err)
{
    held_ctx h = {0};
    int rc = store_redis_scan_users(store, collect_id, &h, err);
    engine_store *st = store_redis_iface(store);
    for (size_t start = 0; rc == 0 && start < h.n; start += CHUNK) {
        size_t end = start + CHUNK < h.n ? start + CHUNK : h.n;
        rc = store_redis_prefetch(store, (const char *const *)h.ids + start, end - start, err);
        for (size_t i = start; rc == 0 && i < end; i++) {
            user_state *u = st->get(st->ctx, h.ids[i]);
            if (u && u->held && !cfg->keep_active) fn(ctx, u);
        }
        store_redis_reset(store);
    }
    for (size_t i = 0; i < h.n; i++)
        free(h.ids[i]);
    free(h.ids);
    return rc;
}
