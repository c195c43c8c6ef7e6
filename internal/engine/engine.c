/* The decision engine: R1.3 snapshot merge, R1.4 ordering, R3 scope, R5 transitions, R6 hierarchy,
 * R7 settings commands, R9.1 command ids. Everything here is computation over the store. */
#include "engine.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_int.h"
#include "soql/soql.h"

#define MAX_CHAIN 100000 /* a manager chain longer than this is corrupt data, not a hierarchy */

static const char *const reason_names[REASON__COUNT] = {
    "",
    "inactive_in_salesforce",
    "deleted_in_salesforce",
    "missing_name",
    "email_domain_not_allowed",
    "no_matching_assignment",
};

const char *engine_reason_name(reason_code r)
{
    return (unsigned)r < REASON__COUNT ? reason_names[r] : "";
}

const char *prov_status_name(prov_status s)
{
    switch (s) {
    case PROV_NEVER: return "never provisioned";
    case PROV_ACTIVE: return "active in Gong";
    case PROV_DEACTIVATED: return "deactivated by this service";
    }
    return "";
}

/* The names every decision asks a state for, interned once: a state's own names are interned, so
 * find_field matches these by pointer where a literal cost a case-insensitive compare each time
 * (find_field was ~3% of the main thread's samples, most of it for the R2.1 attributes; with
 * these, engine_apply runs 3.4% fewer instructions). */
enum { NAME_EMAIL, NAME_IS_ACTIVE, NAME_FIRST, NAME_LAST, NAME_MANAGER, NAME__COUNT };
static const char *name_lit[NAME__COUNT] = {"Email", "IsActive", "FirstName", "LastName",
                                            "ManagerId"};
static const char *name_int[NAME__COUNT], *attr_int[ATTR__COUNT];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_init(void)
{
    for (int i = 0; i < NAME__COUNT; i++)
        name_int[i] = engine_intern(name_lit[i]);
    for (int i = 0; i < ATTR__COUNT; i++)
        attr_int[i] = engine_intern(command_attr_sf[i]);
}

static const char *name_of(int k)
{
    pthread_once(&names_once, names_init);
    return name_int[k];
}

engine *engine_new(const config *cfg, engine_store *store, const engine_opts *opts)
{
    engine *e = xcalloc(1, sizeof *e);
    e->cfg = cfg;
    e->store = store;
    if (opts) e->opts = *opts;
    if (!e->opts.layout) e->opts.layout = event_layout_default();
    buf_init(&e->why);
    buf_init(&e->scratch);
    size_t widest = 1;
    for (size_t i = 0; i < cfg->n_assignments; i++) {
        const soql_filter *f = cfg->assignments[i].filter;
        if (f && soql_field_count(f) > widest) widest = soql_field_count(f);
    }
    e->vals = xcalloc(widest, sizeof *e->vals);
    e->fps = xcalloc(cfg->n_assignments ? cfg->n_assignments : 1, sizeof *e->fps);
    e->n_refs = cfg->n_assignments;
    e->refs = xcalloc(e->n_refs ? e->n_refs : 1, sizeof *e->refs);
    for (size_t a = 0; a < cfg->n_assignments; a++) {
        const soql_filter *f = cfg->assignments[a].filter;
        size_t n = soql_field_count(f);
        e->refs[a] = xcalloc(n ? n : 1, sizeof **e->refs);
        for (size_t i = 0; i < n; i++) {
            filter_ref *r = &e->refs[a][i];
            const char *leaf;
            r->rel = soql_relationship(soql_field_name(f, i), &leaf);
            r->field = engine_intern(leaf);
            r->key = soql_relationship_key(r->rel);
            r->boolean = value_field_is_boolean(leaf);
            r->id = strcasecmp(leaf, "Id") == 0;
        }
    }
    e->compounds = xcalloc(event_layout_count(e->opts.layout), sizeof *e->compounds);
    for (size_t i = 0; i < event_layout_count(e->opts.layout); i++)
        if (event_layout_part_count(e->opts.layout, i)) e->compounds[e->n_compounds++] = i;
    return e;
}

void engine_free(engine *e)
{
    if (!e) return;
    buf_free(&e->why);
    buf_free(&e->scratch);
    free(e->sorted);
    free(e->vals);
    for (size_t a = 0; a < e->n_refs; a++) {
        free(e->refs[a]);
        free(e->fps[a]);
    }
    free(e->fps);
    free(e->refs);
    free(e->compounds);
    buf_free(&e->fp);
    free(e);
}

const engine_stats *engine_get_stats(const engine *e) { return &e->stats; }

/* Every counter of engine_stats, for the two functions below: the single ones, and the arrays
 * with their lengths. */
#define ENGINE_STATS_EACH(X)                                                                       \
    X(events)                                                                                      \
    X(user_events)                                                                                 \
    X(skipped_entity)                                                                              \
    X(duplicates)                                                                                  \
    X(stale)                                                                                       \
    X(gaps_unresolved)                                                                             \
    X(stale_images)                                                                                \
    X(overflows)                                                                                   \
    X(cycles_refused)                                                                              \
    X(held_deactivations)
#define ENGINE_STATS_ARRAYS(X)                                                                     \
    X(by_change, CHANGE__COUNT)                                                                    \
    X(commands, CMD__COUNT)                                                                        \
    X(out_of_scope, REASON__COUNT)

_Static_assert(sizeof(engine_stats) ==
                   (10 + CHANGE__COUNT + CMD__COUNT + REASON__COUNT) * sizeof(uint64_t),
               "a counter of engine_stats is missing from ENGINE_STATS_EACH");

void engine_stats_add(engine_stats *acc, const engine_stats *from, const engine_stats *to)
{
#define ADD(f) acc->f += to->f - from->f;
#define ADD_ALL(f, n)                                                                              \
    for (int i = 0; i < (n); i++)                                                                  \
        acc->f[i] += to->f[i] - from->f[i];
    ENGINE_STATS_EACH(ADD)
    ENGINE_STATS_ARRAYS(ADD_ALL)
#undef ADD
#undef ADD_ALL
}

void engine_stats_take_back(engine *e, const engine_stats *d) { engine_stats_sub(&e->stats, d); }

void engine_stats_sub(engine_stats *s, const engine_stats *d)
{
#define SUB(f) s->f -= d->f;
#define SUB_ALL(f, n)                                                                              \
    for (int i = 0; i < (n); i++)                                                                  \
        s->f[i] -= d->f[i];
    ENGINE_STATS_EACH(SUB)
    ENGINE_STATS_ARRAYS(SUB_ALL)
#undef SUB
#undef SUB_ALL
}

/* ---------------------------------------------------------------- R3: scope */

/* Length of the white-space character at s (Unicode's White_Space, plus U+001C-U+001F as
 * Python's and Java's trims have them), 0 when s starts with anything else. A name of no-break or
 * ideographic spaces is as empty as one of ASCII spaces (R3.2 "after trimming white space"). */
static size_t space_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20);
    if (n >= 2 && s[0] == 0xc2) return s[1] == 0x85 || s[1] == 0xa0 ? 2 : 0;
    if (n < 3) return 0;
    unsigned c = (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
    if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    bool ws = c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
              c == 0x202f || c == 0x205f || c == 0x3000;
    return ws ? 3 : 0;
}

bool engine_is_blank(const value_t *v)
{
    if (!v || v->type != VAL_STR) return !v || v->type == VAL_NULL;
    const unsigned char *s = (const unsigned char *)v->s;
    for (size_t i = 0, k; i < v->len; i += k)
        if (!(k = space_len(s + i, v->len - i))) return false;
    return true;
}

static bool domain_allowed(const config *c, const char *d, size_t n)
{
    if (str_ieqn(d, n, c->primary_domain, strlen(c->primary_domain))) return true;
    for (size_t i = 0; i < c->n_additional_domains; i++)
        if (str_ieqn(d, n, c->additional_domains[i], strlen(c->additional_domains[i]))) return true;
    return false;
}

/* R3.3: the email to send, or false. */
static bool check_email(engine *e, const user_state *u, scope *s)
{
    const value_t *v = user_state_get(u, name_of(NAME_EMAIL));
    s->email = NULL;
    s->converted = false;
    if (!v || v->type != VAL_STR || v->len == 0) return false;
    const char *at = strrchr(v->s, '@');
    if (!at || at == v->s || at[1] == '\0') return false;
    size_t local = (size_t)(at - v->s);
    const char *dom = at + 1;
    size_t dlen = v->len - local - 1;
    if (!domain_allowed(e->cfg, dom, dlen)) {
        if (!e->cfg->convert_email_domain) return false;
        dom = e->cfg->primary_domain;
        dlen = strlen(dom);
        s->converted = true;
    }
    buf_reset(&e->scratch);
    buf_append(&e->scratch, v->s, local + 1);
    for (size_t i = 0; i < dlen; i++)
        buf_putc(&e->scratch, (char)tolower((unsigned char)dom[i]));
    s->email = e->scratch.data;
    return true;
}

static int64_t clock_for(const engine *e, const event *ev)
{
    return e->opts.now_ms ? e->opts.now_ms : (ev ? ev->commit_timestamp : 0);
}

/* A field of the user's own record as a filter reads it. Salesforce records all have an Id, and
 * change events carry it in recordIds, not among the fields: it is the state's id (R4.1). */
const value_t *engine_field_value(engine *e, const user_state *u, const filter_ref *r)
{
    if (!r->id) return user_state_get(u, r->field);
    e->id_val = value_str(u->id);
    return &e->id_val;
}

/* R4.3: a relationship field through the user's key field. The manager's snapshot is in the
 * store (prefetched with the event's references, or read on the spot); Profile and UserRole come
 * from the caller's look-up tables. *related is false when there is no related record (an empty
 * or unknown key): the whole path is null then, checkboxes included, as in SOQL. */
const value_t *engine_related_value(engine *e, const user_state *u, const filter_ref *r,
                                    bool *related)
{
    *related = false;
    const value_t *key = user_state_get(u, r->key);
    if (!key || key->type != VAL_STR || key->len == 0) return NULL;
    if (r->rel == SOQL_REL_MANAGER) {
        const user_state *m = e->store->get(e->store->ctx, key->s);
        *related = m != NULL;
        return m ? engine_field_value(e, m, r) : NULL;
    }
    if (r->rel == SOQL_REL_UNSUPPORTED || !e->opts.lookup) return NULL;
    const value_t *v = e->opts.lookup(e->opts.lookup_ctx, r->rel, key->s, r->field);
    *related = v != NULL;
    return v;
}

/* Assignment a's filter for the snapshot; the values it read are left in e->vals (explain names
 * the null ones). */
soql_truth engine_assignment_truth(engine *e, const user_state *u, size_t a, int64_t now_ms)
{
    value_t *vals = e->vals;
    soql_clock clk = {.now_ms = now_ms, .tz_offset_minutes = 0};
    const soql_filter *f = e->cfg->assignments[a].filter;
    if (!f) return SOQL_TRUE;
    size_t n = soql_field_count(f);
    for (size_t i = 0; i < n; i++) {
        const filter_ref *r = &e->refs[a][i];
        bool related = true;
        const value_t *v = r->rel == SOQL_REL_NONE ? engine_field_value(e, u, r)
                                                   : engine_related_value(e, u, r, &related);
        if (v && v->type != VAL_NULL)
            vals[i] = *v;
        else if (r->boolean && related)
            vals[i] = value_bool(false);
        else
            vals[i] = value_null();
    }
    return soql_eval(f, vals, &clk);
}

/* R3.4: the first assignment whose filter is true for the snapshot. */
int engine_match_assignment(engine *e, const user_state *u, int64_t now_ms)
{
    for (size_t a = 0; a < e->cfg->n_assignments; a++)
        if (engine_assignment_truth(e, u, a, now_ms) == SOQL_TRUE) return (int)a;
    return -1;
}

scope engine_evaluate_scope(engine *e, const user_state *u, int64_t now_ms)
{
    scope s = {.reason = REASON_NONE, .assignment = -1};
    s.email_ok = check_email(e, u, &s);
    const value_t *active = user_state_get(u, name_of(NAME_IS_ACTIVE));
    if (u->deleted)
        s.reason = REASON_DELETED;
    else if (!active || !((active->type == VAL_BOOL && active->b) ||
                          (active->type == VAL_STR && strcasecmp(active->s, "true") == 0)))
        s.reason = REASON_INACTIVE;
    else if (engine_is_blank(user_state_get(u, name_of(NAME_FIRST))) ||
             engine_is_blank(user_state_get(u, name_of(NAME_LAST))))
        s.reason = REASON_MISSING_NAME;
    else if (!s.email_ok)
        s.reason = REASON_EMAIL_DOMAIN;
    else if ((s.assignment = engine_match_assignment(e, u, now_ms)) < 0)
        s.reason = REASON_NO_ASSIGNMENT;
    if (s.reason != REASON_NONE && s.reason != REASON_NO_ASSIGNMENT) s.assignment = -1;
    return s;
}

/* ---------------------------------------------------------------- commands */

typedef struct ctx {
    engine *e;
    const engine_hooks *h;
    const event *ev;
    command_source src;
    user_state *u;
    bool may_defer; /* the event's last record: its placements may be left to the caller */
} ctx;

/* Appends s to key[*n..), cut at cap - 1 bytes in all. */
static void key_put(char *key, size_t cap, size_t *n, const char *s, size_t len)
{
    size_t room = cap - 1 - *n;
    if (len > room) len = room;
    memcpy(key + *n, s, len);
    *n += len;
}

static void key_num(char *key, size_t cap, size_t *n, int64_t v)
{
    char t[FMT_I64_MAX + 1];
    t[0] = '|';
    key_put(key, cap, n, t, 1 + fmt_i64(t + 1, v));
}

static void put_hex64(char *out, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

/* R9.1: 32 hex digits from the user, the event's position and the command's place: a hash of
 * "user|commit_timestamp|commit_number|sequence_number|TYPE|extra", cut at 511 bytes. A fixed
 * format, so that a batch read again after an upgrade gets the ids it had. */
static void command_id(const ctx *c, const char *user, command_type t, const char *extra,
                       char out[33])
{
    char key[512];
    size_t n = 0;
    key_put(key, sizeof key, &n, user, strlen(user));
    key_num(key, sizeof key, &n, c->src.commit_timestamp);
    key_num(key, sizeof key, &n, c->src.commit_number);
    key_num(key, sizeof key, &n, c->src.sequence_number);
    key_put(key, sizeof key, &n, "|", 1);
    const char *type = command_type_name(t);
    key_put(key, sizeof key, &n, type, strlen(type));
    key_put(key, sizeof key, &n, "|", 1);
    if (extra) key_put(key, sizeof key, &n, extra, strlen(extra));
    uint64_t h[2];
    hash64_pair(key, n, HASH64_SEED, 0x9e3779b97f4a7c15ULL, h);
    put_hex64(out, h[0]);
    put_hex64(out + 16, h[1]);
    out[32] = '\0';
}

static void emit(ctx *c, command *cmd, const char *extra)
{
    engine *e = c->e;
    command_id(c, cmd->sf_user_id, cmd->type, extra, cmd->id);
    cmd->source = e->opts.with_source ? &c->src : NULL;
    cmd->why = e->opts.with_why && e->why.len ? e->why.data : NULL;
    e->stats.commands[cmd->type]++;
    if (c->h && c->h->emit) c->h->emit(c->h->ctx, cmd);
}

static void why(engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define WHY_MAX 767 /* bytes: what the vsnprintf of earlier builds kept */

/* Every explanation is text with %s arguments: they are put together here, where vsnprintf cost
 * ~900 instructions a command (2.6% of the main thread under a backlog); a format with anything
 * else still goes to vsnprintf. Cut at WHY_MAX bytes as before, so commands stay the same. */
static void why(engine *e, const char *fmt, ...)
{
    buf_reset(&e->why);
    if (!e->opts.with_why) return;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const char *f = fmt;
    for (const char *pc; (pc = strchr(f, '%'));) {
        buf_append(&e->why, f, (size_t)(pc - f));
        if (pc[1] == 's') {
            const char *arg = va_arg(ap, const char *);
            buf_puts(&e->why, arg ? arg : "(null)");
        } else if (pc[1] == '%') {
            buf_putc(&e->why, '%');
        } else {
            char tmp[WHY_MAX + 1];
            vsnprintf(tmp, sizeof tmp, fmt, again);
            buf_reset(&e->why);
            buf_puts(&e->why, tmp);
            f = NULL;
            break;
        }
        f = pc + 2;
    }
    if (f) buf_puts(&e->why, f);
    va_end(again);
    va_end(ap);
    if (e->why.len > WHY_MAX) {
        e->why.len = WHY_MAX;
        e->why.data[WHY_MAX] = '\0';
    }
}

static void warn(ctx *c, engine_warning w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(ctx *c, engine_warning w, const char *fmt, ...)
{
    if (!c->h || !c->h->warn) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->h->warn(c->h->ctx, w, msg);
}

/* ---------------------------------------------------------------- helpers */

static const cfg_assignment *assignment_named(const engine *e, const char *name)
{
    if (!name) return NULL;
    int i = config_assignment_index(e->cfg, name);
    return i < 0 ? NULL : &e->cfg->assignments[i];
}

/* R6.2: the update mode of the assignment the user was last applied under. An assignment that
 * the settings no longer have counts as automatic, the default. */
static bool syncs_changes(const engine *e, const user_state *u)
{
    const cfg_assignment *a = assignment_named(e, u->assignment);
    return !a || a->mode == UPDATE_AUTOMATIC;
}

/* What Gong has for the user's settings: the assignment and a hash of its settings, so that a
 * reimport sees a settings change of the same assignment (R8.1). a is one of e->cfg->assignments;
 * its fingerprint is made once. */
static const char *settings_fingerprint(engine *e, const cfg_assignment *a)
{
    size_t i = (size_t)(a - e->cfg->assignments);
    if (e->fps[i]) return e->fps[i];
    buf_reset(&e->fp);
    command_settings_json(a, &e->fp);
    uint64_t h = hash64(e->fp.data, e->fp.len, HASH64_SEED);
    buf_reset(&e->fp);
    buf_printf(&e->fp, "%s#%016llx", a->name, (unsigned long long)h);
    return e->fps[i] = xstrdup(e->fp.data);
}

bool engine_id18(const char *id, char out[19])
{
    if (strlen(id) != 15) return false;
    for (int i = 0; i < 15; i++)
        if (!isalnum((unsigned char)id[i])) return false;
    memcpy(out, id, 15);
    for (int c = 0; c < 3; c++) {
        unsigned bits = 0;
        for (int j = 0; j < 5; j++)
            if (id[c * 5 + j] >= 'A' && id[c * 5 + j] <= 'Z') bits |= 1u << j;
        out[15 + c] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits];
    }
    out[18] = '\0';
    return true;
}

bool engine_settings_sent_are_current(engine *e, const user_state *u, size_t a)
{
    return u->applied_settings_of &&
           strcmp(u->applied_settings_of, settings_fingerprint(e, &e->cfg->assignments[a])) == 0;
}

bool engine_settings_due(engine *e, const user_state *u)
{
    if (u->status != PROV_ACTIVE || !u->in_scope || !u->assignment) return false;
    int i = config_assignment_index(e->cfg, u->assignment);
    return i >= 0 && e->cfg->assignments[i].mode == UPDATE_AUTOMATIC &&
           !engine_settings_sent_are_current(e, u, (size_t)i);
}

static void set_applied(engine *e, user_state *u, const cfg_assignment *a)
{
    user_state_set_str(u, &u->applied_settings_of, settings_fingerprint(e, a));
}

const char *engine_manager_id(const user_state *u)
{
    const value_t *v = user_state_get(u, name_of(NAME_MANAGER));
    return v && v->type == VAL_STR && v->len ? v->s : NULL;
}

static bool active_in_gong(const user_state *m) { return m && m->status == PROV_ACTIVE; }

/* Every status change goes through here: company_state.provisioned follows the transitions to
 * and from PROV_ACTIVE (R8.3). Not company_changed: stores persist the transitions with the
 * users' own writes, which instances sharing a store can add up without overwriting. */
static void set_status(engine *e, user_state *u, prov_status s)
{
    if (u->status == s) return;
    u->held = false;
    company_state *cs = e->store->company(e->store->ctx);
    if (cs->provisioned >= 0) {
        if (s == PROV_ACTIVE)
            cs->provisioned++;
        else if (u->status == PROV_ACTIVE && cs->provisioned > 0)
            cs->provisioned--;
    }
    u->status = s;
}

/* R6.4: would `manager` becoming user's Gong manager close a loop? */
bool engine_makes_cycle(engine *e, const char *user, const char *manager)
{
    const char *cur = manager;
    for (int steps = 0; cur && steps < MAX_CHAIN; steps++) {
        if (strcmp(cur, user) == 0) return true;
        user_state *m = e->store->get(e->store->ctx, cur);
        cur = m ? m->gong_manager : NULL;
    }
    return cur != NULL;
}

static void changed(engine *e, user_state *u)
{
    u->dirty = true;
    e->store->changed(e->store->ctx, u);
}

static void stop_waiting(engine *e, user_state *u)
{
    u->created_waiting = false; /* placed, refused or cleared: no placement is pending */
    if (!u->waiting_for) return;
    e->store->link_del(e->store->ctx, u->waiting_for, u->id);
    user_state_set_str(u, &u->waiting_for, NULL);
}

/* Drops the user's link but not a placement at creation it never completed, which stays to
 * complete (R6.3 "in either update mode"): a deactivated report waits for nobody until it is
 * reactivated; a link placed or dropped for another manager leaves it for the one named now. */
static void unlink_keep_placement(engine *e, user_state *u)
{
    bool placement_pending = u->created_waiting;
    stop_waiting(e, u);
    u->created_waiting = placement_pending;
}

static void start_waiting(engine *e, user_state *u, const char *manager, bool at_creation)
{
    if (u->waiting_for && strcmp(u->waiting_for, manager) == 0) {
        u->created_waiting = u->created_waiting || at_creation;
        return;
    }
    stop_waiting(e, u);
    user_state_set_str(u, &u->waiting_for, manager);
    u->created_waiting = at_creation;
    e->store->link_add(e->store->ctx, manager, u->id);
}

static void fill_attrs(command *cmd, const value_t *vals, unsigned mask)
{
    cmd->attr_mask = mask;
    for (int i = 0; i < ATTR__COUNT; i++)
        if (mask & (1u << i)) cmd->attrs[i] = vals[i];
}

/* Copies src into u's dst (copied before dst is released: src may be dst's own string). */
static void value_store(user_state *u, value_t *dst, const value_t *src)
{
    value_t v = user_state_dup_value(u, src);
    user_state_release_value(u, dst);
    *dst = v;
}

/* R2.1: the attribute values Gong would get now. The email is the R3.3 one, or, when R3.3 fails,
 * the one last sent (so that it never shows as a change). */
static void current_attrs(const user_state *u, const scope *s, value_t out[ATTR__COUNT])
{
    pthread_once(&names_once, names_init);
    for (int i = 0; i < ATTR__COUNT; i++) {
        const value_t *v = user_state_get(u, attr_int[i]);
        out[i] = v ? *v : value_null();
    }
    if (s->email_ok)
        out[ATTR_EMAIL] = value_str(s->email);
    else
        out[ATTR_EMAIL] = u->sent[ATTR_EMAIL];
}

static void remember_sent(user_state *u, const value_t *vals, unsigned mask)
{
    for (int i = 0; i < ATTR__COUNT; i++)
        if (mask & (1u << i)) value_store(u, &u->sent[i], &vals[i]);
}

/* UPDATE_USER: the attributes whose sent value changed, `active` excluded (R5.3). */
static unsigned changed_attrs(const user_state *u, const value_t *vals, bool email_ok)
{
    unsigned mask = 0;
    for (int i = 0; i < ATTR__COUNT; i++) {
        if (i == ATTR_ACTIVE || (i == ATTR_EMAIL && !email_ok)) continue;
        if (!value_eq(&u->sent[i], &vals[i])) mask |= 1u << i;
    }
    return mask;
}

/* ---------------------------------------------------------------- R6 hierarchy */

static void send_set_manager(ctx *c, user_state *u, const char *manager, const char *extra)
{
    command cmd = {
        .type = CMD_SET_MANAGER, .sf_user_id = u->id, .with_manager = true, .manager_id = manager};
    emit(c, &cmd, extra);
    user_state_set_str(u, &u->gong_manager, manager);
}

/* Points user at `manager` if it can be: returns the manager set, NULL if none. Registers the
 * waiting link when the manager is not an active Gong user (R6.3). */
static const char *place_under(ctx *c, user_state *u, const char *manager, bool at_creation,
                               bool *refused)
{
    engine *e = c->e;
    *refused = false;
    bool self = strcmp(manager, u->id) == 0;
    /* a link to a manager not active in Gong is no Gong link yet: it waits (R6.3), and
     * place_waiting checks for a cycle when it is made, against the chain Gong has then */
    user_state *m = self ? NULL : e->store->get(e->store->ctx, manager);
    if (!self && !active_in_gong(m)) {
        start_waiting(e, u, manager, at_creation);
        return NULL;
    }
    if (self || engine_makes_cycle(e, u->id, manager)) {
        e->stats.cycles_refused++;
        *refused = true;
        stop_waiting(e, u);
        warn(c, ENGINE_WARN_CYCLE,
             "R6.4: refused to make %s the manager of %s: it would make a cycle", manager, u->id);
        return NULL;
    }
    stop_waiting(e, u);
    return manager;
}

/* R5.3 / R6.2: a ManagerId change of an active, in-scope user whose assignment syncs changes. */
static void sync_manager_change(ctx *c, user_state *u)
{
    engine *e = c->e;
    const char *mid = engine_manager_id(u);
    if (!mid) {
        stop_waiting(e, u);
        why(e, "R6.3: ManagerId was cleared in Salesforce");
        send_set_manager(c, u, NULL, NULL);
        return;
    }
    /* a placement at creation still pending stays so while the new manager is awaited: R6.3
     * completes it "in either update mode", should the assignment become manual meanwhile */
    bool refused;
    const char *m = place_under(c, u, mid, u->created_waiting, &refused);
    if (m) {
        why(e, "R6.2: ManagerId changed to %s, an active Gong user", m);
        send_set_manager(c, u, m, NULL);
    }
}

/* R6.2: a ManagerId change the user's assignment does not reflect sends nothing, but a link to a
 * manager not active in Gong still waits (R6.3's first sentence has no update mode): when that
 * manager arrives, place_waiting sets it if the assignment then syncs changes (the user moved to
 * an automatic one meanwhile). No cycle check here: nothing is set now, and place_waiting checks.
 * `again` (a reactivation, a return to scope): as sync_manager_again does for a syncing user, the
 * manager it has in Gong already (deactivated: its links stay) is not waited for again; a change
 * of ManagerId waits for it like sync_manager_change does.
 * A user created while its manager was not in Gong has its placement at creation still to
 * complete ("in either update mode"): a new manager not active in Gong is waited for as at
 * creation, and set when it is created or reactivated. One already active in Gong (or the user
 * itself) is a later change like any other, not reflected: no command, and no placement is left
 * to complete, or a reactivation would reflect it after all. A cleared ManagerId ends it too. */
static void wait_unreflected(engine *e, user_state *u, const char *mid, bool again)
{
    bool has_it = u->gong_manager && mid && strcmp(u->gong_manager, mid) == 0;
    if (mid && strcmp(mid, u->id) != 0 && !(again && has_it) &&
        !active_in_gong(e->store->get(e->store->ctx, mid)))
        start_waiting(e, u, mid, u->created_waiting);
    else
        stop_waiting(e, u);
}

/* R5.5 after a reactivation, and R5.3 when a user kept active out of scope (R5.4, which sends
 * no manager command meanwhile) comes back in scope: bring Gong's manager in line with ManagerId
 * (a link that starts to wait here is set only if the assignment still syncs changes when the
 * manager arrives). `occasion` starts the `why`. Without syncs (R6.2/R6.3: a user whose
 * assignment does not sync manager changes, created while its manager was not in Gong, has its
 * placement at creation still to complete, "in either update mode") the reactivation or the
 * return to scope completes it with whatever ManagerId names now, at once if that is an active
 * Gong user, else when it is created or reactivated; a cleared ManagerId ends the wait and sends
 * nothing. */
static void sync_manager_again(ctx *c, user_state *u, bool syncs, const char *occasion)
{
    engine *e = c->e;
    const char *mid = engine_manager_id(u);
    if (!mid) {
        stop_waiting(e, u); /* no manager to complete a placement with */
        if (u->gong_manager && syncs) {
            why(e, "%s without a ManagerId; clearing the Gong manager", occasion);
            send_set_manager(c, u, NULL, NULL);
        }
        return;
    }
    if (u->gong_manager && strcmp(u->gong_manager, mid) == 0) {
        stop_waiting(e, u);
        return;
    }
    /* a wait that starts here is no placement at creation, unless one is still pending (R6.3:
     * "or if it was created while waiting") */
    bool refused;
    const char *m = place_under(c, u, mid, u->created_waiting, &refused);
    if (m) {
        why(e, "%s; manager %s is an active Gong user", occasion, m);
        send_set_manager(c, u, m, NULL);
    }
}

/* R6.3 for these reports of `m` (ascending Id), each if it still waits for m. */
static void place_waiting(ctx *c, user_state *m, const char *const *sorted, size_t n)
{
    engine *e = c->e;
    for (size_t i = 0; i < n; i++) {
        const char *rid = sorted[i];
        user_state *r = e->store->get(e->store->ctx, rid);
        if (!r || !r->waiting_for || strcmp(r->waiting_for, m->id) != 0) {
            e->store->link_del(e->store->ctx, m->id, rid);
            continue;
        }
        const char *mid = engine_manager_id(r);
        bool created_waiting = r->created_waiting;
        /* a placement at creation still to complete outlives this link until it is made or
         * refused: the report kept active out of scope (R5.4) is placed when it comes back, one
         * whose ManagerId names another manager by now with that one; a cleared ManagerId ends
         * it */
        if (mid)
            unlink_keep_placement(e, r);
        else
            stop_waiting(e, r);
        changed(e, r);
        /* out of scope and active in Gong: kept active (R5.4: no manager command meanwhile; placed
         * when it comes back), or its deactivation held (R8.3: "other commands go on", and R6.3
         * asks only that it be active in Gong) */
        if (!mid || strcmp(mid, m->id) != 0 || r->status != PROV_ACTIVE ||
            (!r->in_scope && e->cfg->keep_active) || e->cfg->ignore_org_structure)
            continue;
        if (!syncs_changes(e, r) && !created_waiting) continue;
        r->created_waiting = false;
        if (engine_makes_cycle(e, r->id, m->id)) {
            e->stats.cycles_refused++;
            warn(c, ENGINE_WARN_CYCLE,
                 "R6.4: refused to make %s the manager of %s: it would make a cycle", m->id, r->id);
            continue;
        }
        why(e, "R6.3: manager %s is now an active Gong user; %s was waiting for it", m->id, r->id);
        send_set_manager(c, r, m->id, m->id);
    }
}

/* R6.3: `m` was just created or reactivated; place the reports waiting for it, ascending Id. */
static void resolve_waiting(ctx *c, user_state *m)
{
    engine *e = c->e;
    const char *const *reports;
    size_t n = e->store->links(e->store->ctx, m->id, &reports);
    if (!n) return;
    if (c->may_defer && e->opts.max_placements && n > e->opts.max_placements && c->h &&
        c->h->deferred && c->h->deferred(c->h->ctx, m->id, n, &c->src))
        return;
    if (n > e->sorted_cap) {
        e->sorted_cap = n * 2;
        e->sorted = xrealloc(e->sorted, e->sorted_cap * sizeof *e->sorted);
    }
    /* copies: the store's list changes as links are dropped below */
    for (size_t i = 0; i < n; i++)
        e->sorted[i] = xstrdup(reports[i]);
    qsort(e->sorted, n, sizeof *e->sorted, str_ptr_cmp);
    place_waiting(c, m, (const char *const *)e->sorted, n);
    for (size_t i = 0; i < n; i++)
        free((char *)e->sorted[i]);
}

/* ---------------------------------------------------------------- R1.3 snapshot */

static bool is_compound(const engine *e, const char *name, size_t *pos)
{
    for (size_t i = 0; i < e->n_compounds; i++) {
        if (engine_name_eq(event_layout_name(e->opts.layout, e->compounds[i]), name)) {
            *pos = e->compounds[i];
            return true;
        }
    }
    return false;
}

static const value_t *event_value(const event *ev, const char *name)
{
    for (size_t i = 0; i < ev->n_fields; i++)
        if (engine_name_eq(ev->fields[i].name, name)) return &ev->fields[i].val;
    return NULL;
}

static void take_from_event(user_state *u, const event *ev, const char *name)
{
    const value_t *v = event_value(ev, name);
    value_t null = value_null();
    user_state_set(u, name, v ? v : &null);
}

/* A changedFields / nulledFields name: "Name.LastName" is the part LastName. A compound's own
 * name in changedFields (Pub/Sub sets its top-level bit beside the part bitmap, "7-0x06") changes
 * only the parts the event carries: the parts that changed are named on their own, and nulling
 * the others would erase values Salesforce did not touch. In nulledFields the compound itself was
 * set to null: each part takes the event's value, null where it has none (R1.3). */
static void change_named(engine *e, user_state *u, const event *ev, const char *name, bool nulled)
{
    const char *dot = strrchr(name, '.');
    if (dot && dot[1]) {
        take_from_event(u, ev, dot + 1);
        return;
    }
    size_t pos;
    if (is_compound(e, name, &pos)) {
        for (size_t p = 0; p < event_layout_part_count(e->opts.layout, pos); p++) {
            const char *part = event_layout_part_name(e->opts.layout, pos, p);
            if (nulled) {
                take_from_event(u, ev, part);
                continue;
            }
            const value_t *v = event_value(ev, part);
            if (v) user_state_set(u, part, v);
        }
        return;
    }
    take_from_event(u, ev, name);
}

static void merge_snapshot(engine *e, user_state *u, const event *ev)
{
    switch (ev->change) {
    case CHANGE_CREATE:
    case CHANGE_UNDELETE:
        user_state_clear_fields(u);
        for (size_t i = 0; i < ev->n_fields; i++)
            user_state_set(u, ev->fields[i].name, &ev->fields[i].val);
        u->deleted = false;
        break;
    case CHANGE_UPDATE:
        for (size_t i = 0; i < ev->n_changed_fields; i++)
            change_named(e, u, ev, ev->changed_fields[i], false);
        for (size_t i = 0; i < ev->n_nulled_fields; i++)
            change_named(e, u, ev, ev->nulled_fields[i], true);
        if (ev->payload_marks_changes)
            for (size_t i = 0; i < ev->n_fields; i++)
                user_state_set(u, ev->fields[i].name, &ev->fields[i].val);
        break;
    case CHANGE_DELETE: u->deleted = true; break;
    default: break;
    }
}

/* ---------------------------------------------------------------- R5 */

static bool any_capture(const cfg_assignment *a)
{
    const cfg_data_capture *d = &a->data_capture;
    return d->web_conferences || d->telephony || d->emails || d->calendar;
}

/* R8.3: a deactivation waits for confirmation when a reimport asked for it, or when the events of
 * the configured window would deactivate more users than the guard allows: more than
 * max_deactivations, or more than max_deactivation_share of the users provisioned before the
 * window's deactivations (those active now plus those the window deactivated), as a reimport
 * counts its share of the users provisioned before it. The window's deactivations are kept as
 * marks (deact_mark): exact counts whatever the limits, at most ENGINE_MAX_WINDOW marks. */
static bool deactivation_held(ctx *c, user_state *u)
{
    engine *e = c->e;
    const cfg_guards *g = &e->cfg->guards;
    bool held = e->opts.hold_deactivations;
    int64_t ts = c->ev ? c->ev->commit_timestamp : 0;
    bool by_count = g->max_deactivations >= 0;
    bool by_share = g->max_deactivation_share >= 0;
    bool window = g->enabled && c->ev && !e->opts.reimport && (by_count || by_share);
    company_state *cs = window ? e->store->company(e->store->ctx) : NULL;
    if (!held && window) {
        int64_t from = ts - g->window_seconds * 1000;
        uint32_t kept = 0; /* forget what left the window */
        double in_window = 0, later = 0;
        for (uint32_t i = 0; i < cs->n_deacts; i++) {
            if (cs->deacts[i].ts <= from) continue;
            /* the window ends at this event's commit: a deactivation committed later, read
             * first from another partition, is not in it (it is in a later event's window), but
             * its user was still provisioned at this commit */
            if (cs->deacts[i].ts <= ts)
                in_window += cs->deacts[i].n;
            else
                later += cs->deacts[i].n;
            cs->deacts[kept++] = cs->deacts[i];
        }
        if (kept != cs->n_deacts) e->store->company_changed(e->store->ctx);
        cs->n_deacts = kept;
        double would = in_window + 1;
        if (by_count && would > (double)g->max_deactivations) held = true;
        double before = (double)cs->provisioned + in_window + later;
        if (by_share && cs->provisioned >= 0 && before > 0 &&
            would / before > g->max_deactivation_share)
            held = true;
    }
    if (held) {
        e->stats.held_deactivations++;
        warn(c, ENGINE_WARN_HELD,
             "R8.3: deactivation of %s (%s) held by the mass-deactivation guard; it goes through "
             "when confirmed (POST /reimport?confirm=1, or reimport --confirm)",
             u->id, engine_reason_name(u->reason));
        return true;
    }
    if (window) {
        if (cs->n_deacts == ENGINE_MAX_WINDOW) { /* the two oldest marks become one */
            deact_mark *m = cs->deacts;
            uint64_t sum = (uint64_t)m[1].n + m[0].n;
            m[1].n = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum; /* saturates: holds more */
            if (m[0].ts > m[1].ts) m[1].ts = m[0].ts;
            memmove(m, m + 1, (ENGINE_MAX_WINDOW - 1) * sizeof *m);
            cs->n_deacts--;
        }
        cs->deacts[cs->n_deacts++] = (deact_mark){.ts = ts, .n = 1};
        e->store->company_changed(e->store->ctx);
    }
    return false;
}

static void decide(ctx *c, user_state *u, const char *old_manager_id)
{
    engine *e = c->e;
    scope s = engine_evaluate_scope(e, u, clock_for(e, c->ev));
    value_t now[ATTR__COUNT];
    current_attrs(u, &s, now);
    const cfg_assignment *a = s.assignment >= 0 ? &e->cfg->assignments[s.assignment] : NULL;
    bool in_scope = s.reason == REASON_NONE;
    const char *mid = engine_manager_id(u);
    bool manager_changed = (old_manager_id == NULL) != (mid == NULL) ||
                           (mid && old_manager_id && strcmp(mid, old_manager_id) != 0);

    u->reason = s.reason;
    if (!in_scope) e->stats.out_of_scope[s.reason]++;
    /* Out of scope nothing is placed, but a ManagerId cleared meanwhile ends a pending placement
     * (R6.3 places a report whose ManagerId still names the manager), so that a ManagerId set
     * after it is a later change (R6.2), as for a user in scope. */
    if (!in_scope && manager_changed && !mid) stop_waiting(e, u);

    if (u->status == PROV_NEVER) {
        u->in_scope = in_scope;
        if (!in_scope) return; /* R5.2: recorded for explain */
        /* R5.1 */
        const char *manager = NULL;
        bool refused = false;
        if (!e->cfg->ignore_org_structure && mid) manager = place_under(c, u, mid, true, &refused);
        why(e, "R5.1: new user in scope under assignment '%s'%s%s", a->name,
            manager ? "; manager " : "", manager ? manager : "");
        command cmd = {.type = CMD_CREATE_USER,
                       .sf_user_id = u->id,
                       .assignment = a,
                       .with_settings = true,
                       .with_manager = true,
                       .manager_id = manager};
        fill_attrs(&cmd, now, ATTR_ALL);
        emit(c, &cmd, NULL);
        set_status(e, u, PROV_ACTIVE);
        remember_sent(u, now, ATTR_ALL);
        user_state_set_str(u, &u->assignment, a->name);
        set_applied(e, u, a);
        user_state_set_str(u, &u->gong_manager, manager);
        if (manager && e->cfg->notify_managers && any_capture(a)) { /* R6.6 */
            why(e, "R6.6: %s is the manager of a new member whose data capture is on", manager);
            command n = {.type = CMD_NOTIFY_MANAGER,
                         .sf_user_id = u->id,
                         .with_manager = true,
                         .manager_id = manager};
            emit(c, &n, NULL);
        }
        resolve_waiting(c, u);
        return;
    }

    if (u->status == PROV_ACTIVE) {
        if (in_scope) { /* R5.3 */
            bool was_in_scope = u->in_scope;
            u->in_scope = true;
            u->held = false;
            unsigned mask = changed_attrs(u, now, true);
            if (mask) {
                why(e, "R5.3: attributes changed in Salesforce");
                command cmd = {.type = CMD_UPDATE_USER, .sf_user_id = u->id};
                fill_attrs(&cmd, now, mask);
                emit(c, &cmd, NULL);
                remember_sent(u, now, mask);
            }
            bool syncs = syncs_changes(e, u);
            if (!u->assignment || strcmp(u->assignment, a->name) != 0) {
                if (syncs) {
                    why(e, "R5.3: assignment changed from '%s' to '%s' (automatic)",
                        u->assignment ? u->assignment : "", a->name);
                    command cmd = {.type = CMD_APPLY_SETTINGS,
                                   .sf_user_id = u->id,
                                   .assignment = a,
                                   .with_settings = true};
                    emit(c, &cmd, NULL);
                    set_applied(e, u, a);
                }
                user_state_set_str(u, &u->assignment, a->name);
            }
            if (e->cfg->ignore_org_structure) return;
            if (!was_in_scope && (syncs || u->created_waiting))
                sync_manager_again(c, u, syncs,
                                   "R5.3/R6.2: back in scope after R5.4 kept it active");
            else if (!was_in_scope)
                wait_unreflected(e, u, mid, true);
            else if (syncs && manager_changed)
                sync_manager_change(c, u);
            else if (manager_changed)
                wait_unreflected(e, u, mid, false);
            return;
        }
        /* R5.4 */
        bool was_in_scope = u->in_scope;
        u->in_scope = false;
        if (e->cfg->keep_active) {
            u->held = false; /* no deactivation is pending while the option is on */
            unsigned mask = changed_attrs(u, now, s.email_ok);
            if (mask) {
                why(e, "R5.4: out of scope (%s) but kept active; attributes changed",
                    engine_reason_name(s.reason));
                command cmd = {.type = CMD_UPDATE_USER, .sf_user_id = u->id};
                fill_attrs(&cmd, now, mask);
                emit(c, &cmd, NULL);
                remember_sent(u, now, mask);
            }
            return;
        }
        /* a deactivation held before (R8.3) goes through only when confirmed, not at a later
         * event once the window allows; a user keep_active kept before the option was turned off
         * is deactivated now, through the guard */
        if (!was_in_scope && u->held) return;
        if (deactivation_held(c, u)) {
            u->held = true;
            return;
        }
        why(e, "R5.4: out of scope: %s", engine_reason_name(s.reason));
        command cmd = {.type = CMD_DEACTIVATE_USER,
                       .sf_user_id = u->id,
                       .reason = engine_reason_name(s.reason)};
        emit(c, &cmd, NULL);
        set_status(e, u, PROV_DEACTIVATED);
        unlink_keep_placement(e, u);
        return;
    }

    /* PROV_DEACTIVATED */
    u->in_scope = in_scope;
    if (!in_scope) return; /* R5.6 */
    bool syncs = syncs_changes(e, u);
    why(e, "R5.5: back in scope under assignment '%s'", a->name);
    command cmd = {.type = CMD_REACTIVATE_USER, .sf_user_id = u->id, .assignment = a};
    fill_attrs(&cmd, now, ATTR_ALL);
    emit(c, &cmd, NULL);
    set_status(e, u, PROV_ACTIVE);
    remember_sent(u, now, ATTR_ALL);
    if (!u->assignment || strcmp(u->assignment, a->name) != 0) {
        if (syncs) {
            why(e, "R5.5: assignment changed from '%s' to '%s' (automatic)",
                u->assignment ? u->assignment : "", a->name);
            command as = {.type = CMD_APPLY_SETTINGS,
                          .sf_user_id = u->id,
                          .assignment = a,
                          .with_settings = true};
            emit(c, &as, NULL);
            set_applied(e, u, a);
        }
        user_state_set_str(u, &u->assignment, a->name);
    }
    /* "then the manager per R6": a reactivation is no CREATE_USER, so the manager follows R6.2's
     * later changes, brought in line where the assignment syncs them; a placement at creation
     * still waiting completes in either mode (R6.3); otherwise a link to a manager not in Gong
     * still waits, as for a change not reflected */
    if (!e->cfg->ignore_org_structure) {
        if (syncs || u->created_waiting)
            sync_manager_again(c, u, syncs, "R5.5/R6.2: reactivated");
        else
            wait_unreflected(e, u, mid, true);
    }
    resolve_waiting(c, u);
}

/* ---------------------------------------------------------------- events */

static int pos_cmp(const position *a, const position *b)
{
    if (a->commit_timestamp != b->commit_timestamp)
        return a->commit_timestamp < b->commit_timestamp ? -1 : 1;
    if (a->commit_number != b->commit_number) return a->commit_number < b->commit_number ? -1 : 1;
    if (a->sequence_number != b->sequence_number)
        return a->sequence_number < b->sequence_number ? -1 : 1;
    return 0;
}

static void apply_user(ctx *c, const char *id)
{
    engine *e = c->e;
    const event *ev = c->ev;
    position p = {ev->commit_timestamp, ev->commit_number, ev->sequence_number};
    user_state *u = e->store->get_or_create(e->store->ctx, id);
    c->u = u;
    e->stats.user_events++;
    if (u->has_pos) {
        int cmp = pos_cmp(&p, &u->pos);
        if (cmp <= 0) {
            if (cmp == 0)
                e->stats.duplicates++;
            else
                e->stats.stale++;
            /* over several partitions an event naming several users reaches the others' out of
             * order: a later bulk UPDATE read first leaves a user with its fields only, and its own
             * CREATE, read next, is stale. R1.4 drops it; the loss is said, with the way out */
            if (cmp < 0 && (ev->change == CHANGE_CREATE || ev->change == CHANGE_UNDELETE) &&
                u->status == PROV_NEVER && !user_state_get(u, name_of(NAME_EMAIL))) {
                e->stats.stale_images++;
                warn(c, ENGINE_WARN_STALE_IMAGE,
                     "R1.4: the %s of %s is older than the last event applied to it (an event "
                     "naming several users read first?) and is dropped; %s has no email and is not "
                     "in Gong until a full image comes: a reimport (R8) reads it",
                     change_type_name(ev->change), id, id);
            }
            if (c->h && c->h->ignored) c->h->ignored(c->h->ctx, id, cmp == 0);
            return;
        }
    }
    if (ev->change >= CHANGE_GAP_CREATE && ev->change <= CHANGE_GAP_UNDELETE) {
        /* R1.3: no field values and no Salesforce connection here; nothing is guessed. */
        u->needs_reconcile = true;
        e->stats.gaps_unresolved++;
        changed(e, u);
        warn(c, ENGINE_WARN_GAP,
             "R1.3: %s for %s carries no values; marked for reconciliation (needs Salesforce)",
             change_type_name(ev->change), id);
        return;
    }
    /* the merge replaces ManagerId's value: a pooled state keeps the old string until it is
     * recycled, any other frees it */
    const char *om = engine_manager_id(u);
    char *own = om && !u->pooled ? xstrdup(om) : NULL;
    const char *old_manager = own ? own : om;
    merge_snapshot(e, u, ev);
    u->has_pos = true;
    u->pos = p;
    /* only an image that says what the user now is settles what a gap left unknown; an UPDATE
     * carries some fields, and one older than the gap none of its change (R1.3) */
    if (ev->change == CHANGE_CREATE || ev->change == CHANGE_UNDELETE || ev->change == CHANGE_DELETE)
        u->needs_reconcile = false;
    decide(c, u, old_manager);
    free(own);
    changed(e, u);
}

/* The decisions of an event: their commands name it as their source. */
static ctx event_ctx(engine *e, const event *ev, const engine_hooks *h)
{
    return (ctx){.e = e,
                 .h = h,
                 .ev = ev,
                 .src = {.topic = ev->source.topic,
                         .partition = ev->source.partition,
                         .offset = ev->source.offset,
                         .replay_id = ev->source.replay_id,
                         .transaction_key = ev->transaction_key,
                         .sequence_number = ev->sequence_number,
                         .commit_number = ev->commit_number,
                         .commit_timestamp = ev->commit_timestamp}};
}

int engine_apply(engine *e, const event *ev, const engine_hooks *h, perr *err)
{
    e->stats.events++;
    if ((unsigned)ev->change < CHANGE__COUNT) e->stats.by_change[ev->change]++;
    if (!event_is_user(ev)) { /* R1.1 */
        e->stats.skipped_entity++;
        return 0;
    }
    ctx c = event_ctx(e, ev, h);
    if (event_is_org_wide(ev)) {
        e->stats.overflows++;
        if (ev->change == CHANGE_GAP_OVERFLOW)
            warn(&c, ENGINE_WARN_OVERFLOW,
                 "R1.3: GAP_OVERFLOW: too many changes to list; the whole org needs a "
                 "reconciliation (R8)");
        else
            warn(&c, ENGINE_WARN_OVERFLOW,
                 "R1.2: recordIds '%s' names every user (a custom field's type conversion); the "
                 "event carries no values: the whole org needs a reconciliation (R8)",
                 ev->record_ids[0]);
        return 0;
    }
    if (ev->n_record_ids == 0) return perr_set(err, "the event names no recordIds");
    for (size_t i = 0; i < ev->n_record_ids; i++) {
        /* after the last record nothing of the event is left to decide before its placements */
        c.may_defer = i + 1 == ev->n_record_ids;
        apply_user(&c, ev->record_ids[i]);
    }
    return 0;
}

/* Placements outside an event: the ids are those the manager's own event (its position) would
 * have given its waiting reports. */
static command_source manager_source(const user_state *m)
{
    return (command_source){.partition = -1,
                            .offset = -1,
                            .sequence_number = m->pos.sequence_number,
                            .commit_number = m->pos.commit_number,
                            .commit_timestamp = m->pos.commit_timestamp};
}

void engine_resolve_manager(engine *e, const char *manager_id, const engine_hooks *h)
{
    user_state *m = e->store->get(e->store->ctx, manager_id);
    if (!active_in_gong(m)) return;
    ctx c = {.e = e, .h = h, .u = m, .src = manager_source(m)};
    resolve_waiting(&c, m);
}

void engine_place_waiting(engine *e, const char *manager_id, const char *const *reports, size_t n,
                          const command_source *src, const engine_hooks *h)
{
    user_state *m = e->store->get(e->store->ctx, manager_id);
    if (!active_in_gong(m)) return;
    ctx c = {.e = e, .h = h, .u = m, .src = src ? *src : manager_source(m)};
    place_waiting(&c, m, reports, n);
}

static uint64_t commands_sent(const engine *e)
{
    uint64_t n = 0;
    for (int t = 0; t < CMD__COUNT; t++)
        n += e->stats.commands[t];
    return n;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

void engine_redecide_user(engine *e, const char *id, int64_t at, const engine_hooks *h)
{
    user_state *u = e->store->get(e->store->ctx, id);
    if (!u || !u->has_pos) return;
    /* active out of scope (held by the guard, or kept active): decided again only when the
     * filters select it now (back in scope, R5.3); else its deactivation stays the
     * confirmation's (R8.3), or keep_active's. One keep_active kept before the option was turned
     * off is decided: R5.4 deactivates it, through the guard. */
    if (u->status == PROV_ACTIVE && !u->in_scope && (u->held || e->cfg->keep_active) &&
        engine_evaluate_scope(e, u, at).reason != REASON_NONE)
        return;
    /* written only when it moved: a state read before a live event of another instance, written
     * back unchanged, would put that event's state back (the position is not checked in Redis) */
    uint64_t sent = commands_sent(e);
    prov_status status = u->status;
    int reason = (int)u->reason;
    bool in_scope = u->in_scope, created_waiting = u->created_waiting, held = u->held;
    char *assignment = u->assignment ? xstrdup(u->assignment) : NULL;
    char *waiting_for = u->waiting_for ? xstrdup(u->waiting_for) : NULL;
    event ev = {.entity = "User",
                .change = CHANGE_UPDATE,
                .commit_timestamp = at,
                .transaction_key = "reimport"};
    ev.source.partition = -1;
    ev.source.offset = -1;
    ctx c = event_ctx(e, &ev, h);
    c.u = u;
    decide(&c, u, engine_manager_id(u));
    bool moved = commands_sent(e) != sent || u->status != status || (int)u->reason != reason ||
                 u->held != held || u->in_scope != in_scope ||
                 u->created_waiting != created_waiting || !same_str(u->assignment, assignment) ||
                 !same_str(u->waiting_for, waiting_for);
    free(assignment);
    free(waiting_for);
    if (moved) changed(e, u);
}

void engine_reconcile_user(engine *e, const char *id, bool release_held, int64_t at,
                           const engine_hooks *h)
{
    user_state *u = e->store->get(e->store->ctx, id);
    if (!u || u->status != PROV_ACTIVE) return;
    ctx c = {.e = e, .h = h, .u = u};
    c.src = (command_source){.partition = -1, .offset = -1, .commit_timestamp = at};
    if (u->in_scope) {
        if (!engine_settings_due(e, u)) return;
        const cfg_assignment *a = assignment_named(e, u->assignment);
        const char *fp = settings_fingerprint(e, a);
        why(e, "R8.1: the settings of assignment '%s' differ from what Gong has", a->name);
        command cmd = {.type = CMD_APPLY_SETTINGS,
                       .sf_user_id = u->id,
                       .assignment = a,
                       .with_settings = true};
        emit(&c, &cmd, fp);
        set_applied(e, u, a);
        changed(e, u);
        return;
    }
    if (!release_held || !u->held || e->cfg->keep_active) return;
    why(e, "R8.3: held deactivation confirmed: %s", engine_reason_name(u->reason));
    command cmd = {
        .type = CMD_DEACTIVATE_USER, .sf_user_id = u->id, .reason = engine_reason_name(u->reason)};
    emit(&c, &cmd, "confirmed");
    set_status(e, u, PROV_DEACTIVATED);
    unlink_keep_placement(e, u);
    changed(e, u);
}

size_t engine_event_refs(const event *ev, const char **ids, size_t max)
{
    size_t n = 0;
    if (!event_is_user(ev)) return 0; /* another object's ManagerId names no user (R1.1) */
    for (size_t i = 0; i < ev->n_fields && n < max; i++)
        if (strcasecmp(ev->fields[i].name, "ManagerId") == 0 && ev->fields[i].val.type == VAL_STR)
            ids[n++] = ev->fields[i].val.s;
    return n;
}

/* ev names field (as a name, a compound's part "Name.LastName", or a payload field) */
static bool event_touches(const event *ev, const char *field)
{
    const char *const *lists[] = {ev->changed_fields, ev->nulled_fields};
    const size_t ns[] = {ev->n_changed_fields, ev->n_nulled_fields};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < ns[l]; i++) {
            const char *dot = strrchr(lists[l][i], '.');
            if (engine_name_eq(dot ? dot + 1 : lists[l][i], field)) return true;
        }
    for (size_t i = 0; i < ev->n_fields; i++)
        if (engine_name_eq(ev->fields[i].name, field)) return true;
    return false;
}

bool engine_may_bring_back(const user_state *u, const event *ev)
{
    if (ev->change != CHANGE_UPDATE) return ev->change != CHANGE_DELETE;
    switch (u->reason) {
    case REASON_INACTIVE: return event_touches(ev, "IsActive");
    case REASON_DELETED: return false; /* an UNDELETE brings it back, not an UPDATE */
    case REASON_MISSING_NAME:
        return event_touches(ev, "FirstName") || event_touches(ev, "LastName");
    case REASON_EMAIL_DOMAIN: return event_touches(ev, "Email");
    default: return true;
    }
}

void engine_start(engine *e, const engine_hooks *h)
{
    company_state *cs = e->store->company(e->store->ctx);
    bool want = e->cfg->managers_can_toggle_data_capture;
    if (cs->toggle_sent == want) return;
    ctx c = {.e = e, .h = h};
    char extra[32];
    snprintf(extra, sizeof extra, "%u|%d", cs->n_sent, want);
    why(e, "R7.2: managers_can_toggle_data_capture is %s; Gong last had %s", want ? "on" : "off",
        cs->toggle_sent ? "on" : "off");
    command cmd = {.type = CMD_COMPANY_SETTINGS, .sf_user_id = "", .company_toggle = want};
    emit(&c, &cmd, extra);
    cs->toggle_sent = want;
    cs->n_sent++;
    e->store->company_changed(e->store->ctx);
}
