/* engine: the decision engine (provisioning.md R1-R7, R9.1). Given the settings, a user's stored
 * state and one change event it decides the new state and the Gong commands. It is pure: the state
 * lives behind engine_store (in memory for simulate, Redis for the service) and the commands go to
 * a callback; no I/O happens here. */
#ifndef PROVISIONER_ENGINE_H
#define PROVISIONER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command/command.h"
#include "config/config.h"
#include "event/event.h"
#include "soql/soql.h"
#include "util/util.h"
#include "value/value.h"

/* ---- the state of one Salesforce user */
typedef enum { PROV_NEVER = 0, PROV_ACTIVE, PROV_DEACTIVATED } prov_status;

/* R3 reasons, in rule order; REASON_NONE = in scope. */
typedef enum {
    REASON_NONE = 0,
    REASON_INACTIVE,
    REASON_DELETED,
    REASON_MISSING_NAME,
    REASON_EMAIL_DOMAIN,
    REASON_NO_ASSIGNMENT,
    REASON__COUNT
} reason_code;

const char *engine_reason_name(reason_code r); /* "inactive_in_salesforce", ... */
const char *prov_status_name(prov_status s);   /* "never", "active", "deactivated" */

typedef struct user_field {
    const char *name; /* interned: stable for the life of the process */
    value_t val;      /* strings owned by the state */
} user_field;

typedef struct position {
    int64_t commit_timestamp, commit_number, sequence_number;
} position;

typedef struct user_state {
    char *id;
    /* R1.4: the position of the last event applied */
    bool has_pos;
    position pos;
    /* R1.3: every field ever seen, merged */
    user_field *fields;
    size_t n_fields, cap_fields;
    bool deleted; /* a DELETE was the last word */
    /* the provisioning record (R5) */
    prov_status status;
    bool in_scope;
    reason_code reason;
    char *assignment;          /* the assignment last applied under (R5.3), NULL if none */
    char *applied_settings_of; /* the assignment whose settings Gong has (R8.1) */
    value_t sent[ATTR__COUNT]; /* attribute values last sent to Gong */
    /* the hierarchy (R6) */
    char *gong_manager; /* the manager Gong has for this user, NULL if none */
    char *waiting_for;  /* the manager this user's link waits for (R6.3), NULL if none */
    bool created_waiting;
    bool needs_reconcile; /* a GAP event could not be read from Salesforce (R1.3) */
    /* R8.3: its deactivation was held by the guard and waits for a confirmation (active in Gong,
     * out of scope). Not a user keep_active kept: once the option is off, R5.4 deactivates that
     * one at its next decision, through the guard. */
    bool held;
    bool dirty;
    /* Pooled (a store that recycles its states after every batch sets it): every string of the
     * state, its values and its id, assignment, applied_settings_of, gong_manager and waiting_for,
     * decoded or set since, is allocated in strs and goes when the store resets it, not one
     * malloc and free each. Otherwise each is allocated and freed on its own. */
    bool pooled;
    arena strs;
} user_state;

/* Allocates / frees a user_state and everything it owns. id NULL: set it with
 * user_state_set_str once pooled is decided. */
user_state *user_state_new(const char *id);
void user_state_free(user_state *u);
const value_t *user_state_get(const user_state *u, const char *field); /* case-insensitive */
void user_state_set(user_state *u, const char *field, const value_t *v);
void user_state_clear_fields(user_state *u);
/* Releases every string u owns (values, sent values, id and the other members), leaving them
 * null; the fields array and the arena stay (a store recycling states). */
void user_state_release_strings(user_state *u);
/* A copy of v whose string belongs to u (in u->strs when u is pooled). */
value_t user_state_dup_value(user_state *u, const value_t *v);
/* Leaves v null, freeing its string unless u is pooled. */
void user_state_release_value(user_state *u, value_t *v);
/* *member (u->id, u->assignment...) becomes a copy of src[0..n) that belongs to u; src NULL:
 * NULL. The old string is freed unless u is pooled. */
void user_state_set_strn(user_state *u, char **member, const char *src, size_t n);
void user_state_set_str(user_state *u, char **member, const char *src); /* src NUL-terminated */
/* Copies src's fields over a fresh dst (for scratch copies and stores). */
void user_state_copy(user_state *dst, const user_state *src);

/* Interns a field name: the same pointer for the same name, for the process's life. */
const char *engine_intern(const char *name);

#define ENGINE_MAX_WINDOW 256

/* n deactivations of the R8.3 window, the newest of them at commit time ts. A mark is one
 * deactivation until the window has ENGINE_MAX_WINDOW marks; then the two oldest are merged
 * into one at the newer time, so the count stays exact and those leave the window a little late
 * (holding more, never fewer). */
typedef struct deact_mark {
    int64_t ts;
    uint32_t n;
} deact_mark;

typedef struct company_state {
    bool toggle_sent; /* managers_can_toggle_data_capture last sent (R7.2); false before any */
    uint32_t n_sent;  /* COMPANY_SETTINGS commands sent so far, for their ids */
    /* R8.3: commit timestamps of the deactivations inside the guard's window, stored with the
     * state so that a restart or a replay decides as the first run did (R9.2, R9.3) */
    deact_mark deacts[ENGINE_MAX_WINDOW];
    uint32_t n_deacts; /* marks */
    /* R8.3: users active in Gong (PROV_ACTIVE), what max_deactivation_share is a share of. The
     * engine keeps it on every transition to or from PROV_ACTIVE, so that an event window knows
     * it without reading every user; -1: not known (a state stored before the count existed,
     * until it is counted once, store_redis_count_provisioned), and the share does not apply.
     * Stores persist the transitions, not the value: instances sharing a store each add their
     * own (store_redis: the user's id into or out of a set, inside its write), none
     * overwrites another's. */
    int64_t provisioned;
} company_state;

/* ---- where the state lives. The engine asks for users one by one; a store that talks to a
 * database loads them in batches beforehand (prefetch) so that these calls hit memory. */
typedef struct engine_store {
    void *ctx;
    /* NULL when the user was never seen. */
    user_state *(*get)(void *ctx, const char *id);
    user_state *(*get_or_create)(void *ctx, const char *id);
    /* The state changed and must be written back. */
    void (*changed)(void *ctx, user_state *u);
    /* Waiting links (R6.3): report waits for manager. */
    void (*link_add)(void *ctx, const char *manager, const char *report);
    void (*link_del)(void *ctx, const char *manager, const char *report);
    /* The reports waiting for manager, in any order; valid until the next store call. */
    size_t (*links)(void *ctx, const char *manager, const char *const **reports);
    company_state *(*company)(void *ctx);
    void (*company_changed)(void *ctx);
} engine_store;

/* ---- counters, for the summary line and metrics */
typedef struct engine_stats {
    uint64_t events;
    uint64_t by_change[CHANGE__COUNT];
    uint64_t user_events; /* (event, record id) pairs decided */
    uint64_t skipped_entity;
    uint64_t duplicates;
    uint64_t stale;
    uint64_t gaps_unresolved;
    uint64_t stale_images; /* of the stale: ENGINE_WARN_STALE_IMAGE's */
    uint64_t overflows;
    uint64_t cycles_refused;
    uint64_t commands[CMD__COUNT];
    uint64_t out_of_scope[REASON__COUNT];
    uint64_t held_deactivations; /* R8.3 */
    /* a counter added here is added to ENGINE_STATS_EACH (engine.c) too */
} engine_stats;

typedef enum {
    ENGINE_WARN_CYCLE,
    ENGINE_WARN_GAP,
    ENGINE_WARN_OVERFLOW,
    ENGINE_WARN_HELD,
    /* R1.4 dropped the full image of a user never provisioned, whose email was never seen */
    ENGINE_WARN_STALE_IMAGE
} engine_warning;

typedef struct engine_hooks {
    void *ctx;
    void (*emit)(void *ctx, const command *c);
    /* A counted warning (R6.4 cycles, unresolved gaps); msg is plain words. May be NULL. */
    void (*warn)(void *ctx, engine_warning w, const char *msg);
    /* R6.3 offered to the caller (engine_opts.max_placements): `manager` became an active Gong
     * user by the last record of the event at src, with n reports waiting for it. true: they
     * still wait, and the caller places them with engine_place_waiting before any later event
     * is decided (the manager is stored active with reports waiting until then: a caller that
     * finds one places them first); false: the engine places them now. May be NULL. */
    bool (*deferred)(void *ctx, const char *manager, size_t n, const command_source *src);
    /* An event of user left out by R1.4: duplicate, at the position last applied; otherwise
     * older than it. Counted in engine_stats either way. May be NULL. */
    void (*ignored)(void *ctx, const char *user, bool duplicate);
} engine_hooks;

typedef struct engine_opts {
    /* Relative date literals are evaluated against this clock (ms since epoch); 0: against each
     * event's commitTimestamp, so that a replay decides as the first run did. */
    int64_t now_ms;
    bool with_why;              /* attach `why` to commands */
    bool with_source;           /* attach `source` to commands */
    const event_layout *layout; /* compound fields for changedFields names; NULL: bundled */
    /* R8.3: hold every deactivation (a reimport over its guard, not confirmed). A held user stays
     * active in Gong, out of scope in the state; a later event, a confirming reimport or
     * engine_reconcile_user with release_held deactivates it. */
    bool hold_deactivations;
    /* The decisions of a reimport: it counts its deactivations itself, so the event window's
     * guard does not apply. */
    bool reimport;
    /* R4.3: the value of a field of the Profile or UserRole record with this id (rel is
     * SOQL_REL_PROFILE or SOQL_REL_USERROLE), or NULL when the look-up does not know it. The
     * tables behind it are read from Salesforce by the caller, between events, never from here.
     * NULL: such fields read as null. Manager.<field> needs none: the manager's own snapshot is in
     * the store. */
    const value_t *(*lookup)(void *ctx, soql_rel rel, const char *id, const char *field);
    void *lookup_ctx;
    /* R6.3: a manager whose activation would place more waiting reports than this, by the last
     * record of its event, leaves them to the caller (engine_hooks.deferred), which places them
     * in parts with engine_place_waiting and the same commands. 0: always placed at once. */
    size_t max_placements;
} engine_opts;

typedef struct engine engine;

engine *engine_new(const config *cfg, engine_store *store, const engine_opts *opts);
void engine_free(engine *e);
const engine_stats *engine_get_stats(const engine *e);
/* acc += to - from, counter by counter (from and to: engine_get_stats copies, from taken first):
 * what some decisions added. */
void engine_stats_add(engine_stats *acc, const engine_stats *from, const engine_stats *to);
/* s -= d, counter by counter. */
void engine_stats_sub(engine_stats *s, const engine_stats *d);
/* Takes back what engine_stats_add gathered in d: decisions thrown away and made again (a batch
 * decided again) are counted once. */
void engine_stats_take_back(engine *e, const engine_stats *d);

/* R7.2: sends COMPANY_SETTINGS when the configured switch differs from the last value sent. Call
 * once at start-up (and after a settings reload). */
void engine_start(engine *e, const engine_hooks *h);

/* Applies one event (every record id in order, R1.2). Returns 0; -1 only for an event that
 * cannot be applied at all (err says why). */
int engine_apply(engine *e, const event *ev, const engine_hooks *h, perr *err);

/* R6.3 again for one manager, outside an event: places the reports still waiting for it if it is
 * now an active Gong user. Used when another instance raced with a link (store_late). */
void engine_resolve_manager(engine *e, const char *manager_id, const engine_hooks *h);

/* R6.3 for some of the reports waiting for a manager that is an active Gong user: places those
 * of `reports` (ascending Id, as the event would have) that still wait for it, with the commands
 * the manager's event at src would have given them (NULL src: as engine_resolve_manager). */
void engine_place_waiting(engine *e, const char *manager_id, const char *const *reports, size_t n,
                          const command_source *src, const engine_hooks *h);

/* R8.1 for one known user, outside an event: re-applies the current settings of its automatic
 * assignment when Gong has other ones (a settings change takes effect here), and with
 * release_held deactivates a user whose deactivation was held (R8.3). `at` stands in for the
 * event position in the command ids. */
void engine_reconcile_user(engine *e, const char *id, bool release_held, int64_t at,
                           const engine_hooks *h);

/* R8.1 for one user whose record from Salesforce is not newer than its last event (so not applied,
 * R1.4): R5 on the snapshot it has, under the current settings, so that a settings change meets
 * unchanged users too (a new assignment creates those it now selects, a narrowed filter
 * deactivates, a move between assignments applies settings). The snapshot and its position stay;
 * `at` stands in for the event position in the command ids and is the clock of relative dates.
 * A user active but out of scope (a held deactivation, keep_active) is decided again only when
 * the settings put it back in scope; else it is left to engine_reconcile_user. */
void engine_redecide_user(engine *e, const char *id, int64_t at, const engine_hooks *h);

/* R6.1: the user's ManagerId in its snapshot; NULL when null or empty. */
const char *engine_manager_id(const user_state *u);
/* The user ids an event touches besides its record ids (ManagerId values), for prefetching. */
size_t engine_event_refs(const event *ev, const char **ids, size_t max);
/* Whether ev may bring u back into scope (u not active in Gong, or out of scope), R5.5 then placing
 * it under its snapshot's ManagerId, for prefetching that manager's chain: a full image, or a
 * change of what the rule u failed last reads (R3.1 IsActive, R3.2 the names, R3.3 Email; any
 * change for R3.4, whose filters may read the clock or another record). A hint, never a
 * decision: a settings change can bring u back at any event. */
bool engine_may_bring_back(const user_state *u, const event *ev);

/* Salesforce's 18-character form of a 15-character Id: the 15 and three characters that each give
 * the case of five of them. Admins copy the 15 from the browser's address bar; events carry the
 * 18. False when id is not 15 letters and digits. */
bool engine_id18(const char *id, char out[19]);

/* Plain words for a user (its Id in either form): in scope or not and the failing rule, the
 * assignment and the filter that matched, the manager link and its state. False when no event
 * has named the user (the words say so). */
bool engine_explain(engine *e, const char *id, buf *out);

#endif
