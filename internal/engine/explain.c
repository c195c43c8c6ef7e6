/* `explain`: the engine's view of one user in plain words: R3 rule by rule, the R5 record and the
 * R6 manager link. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine_int.h"

/* One byte of Salesforce text as it is, but a line break or other control character written as
 * an escape: a name with a newline would otherwise break the explanation's lines. */
static void put_char(buf *b, char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c == '\n')
        buf_puts(b, "\\n");
    else if (c == '\t')
        buf_puts(b, "\\t");
    else if (c == '\r')
        buf_puts(b, "\\r");
    else if (c < 0x20 || c == 0x7F)
        buf_printf(b, "\\x%02X", c);
    else
        buf_append(b, &ch, 1);
}

/* s[0..n) through put_char, and the line breaks of UTF-8 beyond ASCII (NEL and the other C1
 * controls, U+2028, U+2029), which some viewers break lines on, as \u escapes. breaks_as_spaces:
 * an ASCII line break or tab is shown as a space instead (a filter written over several lines). */
static void put_textn(buf *b, const char *s, size_t n, bool breaks_as_spaces)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    for (; p < end; p++) {
        if (p[0] == 0xC2 && end - p > 1 && p[1] >= 0x80 && p[1] <= 0x9F) {
            buf_printf(b, "\\u%04X", p[1]);
            p++;
        } else if (p[0] == 0xE2 && end - p > 2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            buf_printf(b, "\\u%04X", 0x2000 | (p[2] - 0x80));
            p += 2;
        } else {
            put_char(b, breaks_as_spaces && *p >= '\t' && *p <= '\r' ? ' ' : (char)*p);
        }
    }
}

static void put_text(buf *b, const char *s) { put_textn(b, s, strlen(s), false); }

/* Text from an event, the settings or the command line between two fixed pieces of wording. */
static void put_quoted(buf *b, const char *before, const char *s, const char *after)
{
    buf_puts(b, before);
    put_text(b, s);
    buf_puts(b, after);
}

/* A filter as one line: a line break of a filter written over several lines (a YAML block) is
 * shown as a space, the rest as written (two spaces inside a quoted value are what it compares);
 * empty_text stands for an empty filter. */
static void put_filter(buf *b, const cfg_assignment *a, const char *empty_text)
{
    const char *s = a->filter_text, *end = s + strlen(s);
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    while (end > s && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
        end--;
    if (s == end) {
        buf_puts(b, empty_text);
        return;
    }
    put_textn(b, s, (size_t)(end - s), true);
}

static void put_value(buf *b, const value_t *v)
{
    if (!v || v->type == VAL_NULL)
        buf_puts(b, "empty");
    else if (v->type == VAL_BOOL)
        buf_puts(b, v->b ? "true" : "false");
    else if (v->type == VAL_NUM)
        buf_put_double(b, v->num);
    else {
        buf_puts(b, "'");
        put_text(b, v->s);
        buf_puts(b, "'");
    }
}

static void explain_email(const config *cfg, const user_state *u, buf *b)
{
    const value_t *v = user_state_get(u, "Email");
    if (!v || v->type != VAL_STR || !v->len) {
        buf_puts(b, "the user has no email");
        return;
    }
    const char *at = strrchr(v->s, '@');
    if (!at || at == v->s || !at[1]) {
        put_quoted(b, "the email '", v->s, "' has no local part and domain around an '@'");
        return;
    }
    put_quoted(b, "the email domain '", at + 1, "' is not ");
    buf_puts(b, cfg->primary_domain);
    for (size_t i = 0; i < cfg->n_additional_domains; i++)
        buf_printf(b, " or %s", cfg->additional_domains[i]);
    buf_puts(b, ", and convert email domain is off");
}

/* Why an active user's Gong manager is not its ManagerId (mid; NULL: cleared) while no link
 * waits: a cycle (R6.4), out of scope (R5.4) or a manual assignment (R6.2). Said of the hierarchy
 * and the settings as they are now; what stopped the link when ManagerId changed is not recorded,
 * so an automatic user's divergence names both possible causes. */
static void explain_manager_differs(engine *e, const user_state *u, const char *mid,
                                    bool out_of_scope, buf *b)
{
    if (mid && strcmp(mid, u->id) == 0) {
        buf_puts(b, "; a user cannot be its own Gong manager (R6.4)");
        return;
    }
    user_state *m = mid ? e->store->get(e->store->ctx, mid) : NULL;
    if (m && m->status == PROV_ACTIVE && engine_makes_cycle(e, u->id, mid)) {
        put_quoted(b, "; ", mid, " cannot be its Gong manager: the link would make a cycle (R6.4)");
        put_quoted(b, ", as the Gong managers of ", mid, " lead back to this user (");
        put_text(b, mid);
        const char *cur = m->gong_manager;
        for (int hops = 0; cur && strcmp(cur, u->id) != 0; hops++) {
            if (hops == 8) {
                buf_puts(b, " -> ...");
                break;
            }
            put_quoted(b, " -> ", cur, "");
            user_state *next = e->store->get(e->store->ctx, cur);
            cur = next ? next->gong_manager : NULL;
        }
        put_quoted(b, " -> ", u->id, ")");
        return;
    }
    if (out_of_scope) {
        buf_puts(b, "; no manager command is sent while the user is out of scope (R5.4)");
        return;
    }
    if (!u->in_scope) { /* in scope by the filters now, not when last decided */
        buf_puts(b, "; the user was out of scope when last decided, where no manager command is "
                    "sent (R5.4): its next event or a reimport brings the manager in line");
        return;
    }
    int i = u->assignment ? config_assignment_index(e->cfg, u->assignment) : -1;
    if (i >= 0 && e->cfg->assignments[i].mode == UPDATE_MANUAL) {
        buf_puts(b, "; ManagerId changes after creation are not reflected under a manual "
                    "assignment (R6.2)");
        return;
    }
    if (!mid) {
        buf_puts(b, "; ManagerId was cleared while the user's assignment did not sync manager "
                    "changes (a manual one, R6.2, also when that same event moved the user to this "
                    "automatic one): the Gong manager stays until ManagerId changes again");
        return;
    }
    buf_puts(b, "; the link was not made when ManagerId last changed, and is not tried again until "
                "it changes: either the user's assignment then did not sync manager changes (a "
                "manual one, R6.2, also when that same event moved the user to this automatic one) "
                "or the link would have made a cycle then (R6.4)");
}

/* Milliseconds since the epoch as an ISO 8601 UTC time, for people. */
static void explain_time(char *out, size_t n, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "%lld ms", (long long)ms);
}

/* R3.4 for one assignment: true, false with the values its fields read (a typo in a value or a
 * field shows there), or unknown because of the null fields it reads (SOQL's three-valued logic:
 * a comparison with null is not true; a field no event carries is null). */
static void explain_filter(engine *e, const user_state *u, size_t a, int64_t now, buf *b)
{
    soql_truth t = engine_assignment_truth(e, u, a, now);
    if (t == SOQL_TRUE) {
        buf_puts(b, " is true");
        return;
    }
    const soql_filter *f = e->cfg->assignments[a].filter;
    buf_puts(b, t == SOQL_FALSE ? " is false" : " is unknown");
    size_t shown = 0;
    for (size_t i = 0; i < soql_field_count(f); i++) {
        if (e->vals[i].type != VAL_NULL) continue;
        buf_printf(b, "%s%s", shown++ ? ", " : " (null: ", soql_field_name(f, i));
    }
    size_t values = 0;
    for (size_t i = 0; i < soql_field_count(f); i++) {
        if (e->vals[i].type == VAL_NULL) continue;
        buf_puts(b, values++ ? ", " : shown ? "; " : " (");
        buf_printf(b, "%s = ", soql_field_name(f, i));
        put_value(b, &e->vals[i]);
    }
    if (shown || values) buf_puts(b, ")");
    if (soql_uses_relative_dates(f)) { /* "today" is the event's, not the wall clock's */
        char day[32];
        explain_time(day, sizeof day, now);
        buf_printf(b, " (date literals as of %s: %s)", day,
                   e->opts.now_ms ? "--now" : "the last event's commitTimestamp");
    }
}

/* The assignments before the one that matched, each with why it did not: the answer to "why is
 * this user under 'Everyone else'?" */
static void explain_earlier_filters(engine *e, const user_state *u, size_t matched, int64_t now,
                                    buf *b)
{
    if (!matched) return;
    buf_puts(b, "  Earlier assignments did not match: ");
    for (size_t i = 0; i < matched; i++) {
        const cfg_assignment *a = &e->cfg->assignments[i];
        put_quoted(b, i ? "; '" : "'", a->name, "': ");
        put_filter(b, a, "");
        explain_filter(e, u, i, now, b);
    }
    buf_puts(b, ".\n");
}

static void explain_reason(engine *e, const user_state *u, reason_code r, int64_t now, buf *b)
{
    switch (r) {
    case REASON_DELETED: buf_puts(b, "R3.1 fails: the user was deleted in Salesforce"); break;
    case REASON_INACTIVE:
        buf_puts(b, "R3.1 fails: IsActive is ");
        put_value(b, user_state_get(u, "IsActive"));
        buf_puts(b, ", not true");
        break;
    case REASON_MISSING_NAME:
        buf_puts(b, "R3.2 fails: FirstName is ");
        put_value(b, user_state_get(u, "FirstName"));
        buf_puts(b, " and LastName is ");
        put_value(b, user_state_get(u, "LastName"));
        buf_puts(b, "; both must be non-empty");
        break;
    case REASON_EMAIL_DOMAIN:
        buf_puts(b, "R3.3 fails: ");
        explain_email(e->cfg, u, b);
        break;
    case REASON_NO_ASSIGNMENT:
        buf_puts(b, "R3.4 fails: no assignment's filter is true for this user (");
        for (size_t i = 0; i < e->cfg->n_assignments; i++) {
            const cfg_assignment *a = &e->cfg->assignments[i];
            put_quoted(b, i ? "; '" : "'", a->name, "': ");
            put_filter(b, a, "(everyone)");
            explain_filter(e, u, i, now, b);
        }
        if (!e->cfg->n_assignments) buf_puts(b, "the settings have no assignments");
        buf_puts(b, ")");
        break;
    default: break;
    }
    buf_printf(b, " [%s]", engine_reason_name(r));
}

/* R4.3: what the relationship fields read for this user, so that an admin can see why a
 * Profile.Name filter did or did not match. Each path once, in the order the filters name them. */
static void explain_relationships(engine *e, const user_state *u, buf *b)
{
    size_t shown = 0;
    for (size_t a = 0; a < e->n_refs; a++) {
        const soql_filter *f = e->cfg->assignments[a].filter;
        for (size_t i = 0; i < soql_field_count(f); i++) {
            const filter_ref *r = &e->refs[a][i];
            if (r->rel == SOQL_REL_NONE) continue;
            const char *path = soql_field_name(f, i);
            bool seen = false;
            for (size_t pa = 0; pa <= a && !seen; pa++) {
                const soql_filter *pf = e->cfg->assignments[pa].filter;
                size_t upto = pa == a ? i : soql_field_count(pf);
                for (size_t pi = 0; pi < upto && !seen; pi++)
                    seen = strcasecmp(soql_field_name(pf, pi), path) == 0;
            }
            if (seen) continue;
            buf_puts(b, shown++ ? "; " : "  Relationship fields (R4.3): ");
            bool related;
            const value_t *v = engine_related_value(e, u, r, &related);
            const value_t *key = user_state_get(u, r->key);
            buf_printf(b, "%s = ", path);
            put_value(b, v);
            if (!key || key->type != VAL_STR || !key->len)
                buf_printf(b, " (%s is empty)", r->key);
            else if (!related) {
                buf_printf(b, " (%s ", soql_relationship_name(r->rel));
                put_quoted(b, "", key->s,
                           r->rel == SOQL_REL_MANAGER ? " never seen here)"
                           : e->opts.lookup           ? " not in the look-up tables)"
                                                      : " unknown: no look-up tables given)");
            }
        }
    }
    if (shown) buf_puts(b, ".\n");
}

/* Whose settings Gong has, when not the assignment last applied's as the file has them now: the
 * answer to "why did the settings not change when I moved this user?" */
static void explain_settings_sent(engine *e, const user_state *u, const cfg_assignment *la, buf *b)
{
    const char *fp = u->applied_settings_of; /* "name#hash of the settings sent" */
    if (!fp || u->status == PROV_NEVER) return;
    const char *hash = strrchr(fp, '#');
    size_t name_len = hash ? (size_t)(hash - fp) : strlen(fp);
    bool same = strlen(u->assignment) == name_len && strncasecmp(u->assignment, fp, name_len) == 0;
    bool automatic = la && la->mode == UPDATE_AUTOMATIC;
    bool reimport_sends = engine_settings_due(e, u); /* as engine_reconcile_user decides it */
    if (!same) {
        buf_puts(b, "  Gong has the settings of '");
        put_textn(b, fp, name_len, false);
        put_quoted(b, "', the last ones sent: none were sent for '", u->assignment,
                   "', as the user came to it from a manual assignment, whose settings are "
                   "managed in Gong (R5.3, R5.5)");
        buf_printf(b, "%s.\n", reimport_sends ? "; a reimport sends them (R8.1)" : "");
        return;
    }
    if (!la || engine_settings_sent_are_current(e, u, (size_t)(la - e->cfg->assignments))) return;
    put_quoted(b, "  The settings of '", la->name,
               "' changed in the settings file after they were sent: ");
    buf_printf(b, "%s.\n",
               reimport_sends ? "a reimport sends the new ones (R8.1)"
               : automatic ? "a reimport sends the new ones once the user is active and in scope "
                             "(R8.1)"
                           : "under a manual assignment they are managed in Gong");
}

/* The reports waiting for this manager (R6.3): asked about before any event names it (the admin
 * looking at a report's waiting link asks next about its manager), or not provisioned. */
static void explain_waiting_reports(engine *e, const char *id, const char *indent, buf *b)
{
    const char *const *reports;
    size_t n = e->store->links(e->store->ctx, id, &reports);
    if (!n) return;
    buf_printf(b, "%s%zu report%s wait%s for it as %s manager (R6.3): ", indent, n,
               n == 1 ? "" : "s", n == 1 ? "s" : "", n == 1 ? "its" : "their");
    for (size_t i = 0; i < n && i < 5; i++)
        put_quoted(b, i ? ", " : "", reports[i], "");
    if (n > 5) buf_printf(b, " and %zu more", n - 5);
    buf_puts(b, "; the links are made once it is provisioned.\n");
}

bool engine_explain(engine *e, const char *id, buf *b)
{
    user_state *u = e->store->get(e->store->ctx, id);
    size_t n = strlen(id);
    char id15[16], id18[19];
    /* events carry the 18-character form: a 15-character Id gets its checksum, and an 18 typed
     * with its checksum in another case gets it again */
    if (!u && (n == 15 || n == 18)) {
        memcpy(id15, id, 15);
        id15[15] = '\0';
        bool ok = engine_id18(id15, id18);
        user_state *v = ok ? e->store->get(e->store->ctx, id18) : NULL;
        if (v || (ok && n == 15)) {
            id = id18;
            u = v;
        }
    }
    if (!u || (!u->has_pos && !u->n_fields && u->status == PROV_NEVER && !u->needs_reconcile)) {
        size_t len = strlen(id); /* 18 for a 15 given its checksum */
        bool id_like =
            (len == 15 || len == 18) && strspn(id, "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
        put_quoted(b, "User ", id, ": no event has named this user, so nothing is known about it");
        buf_printf(b, "%s.\n",
                   id_like ? ""
                           : " (a Salesforce user Id is 15 or 18 letters and digits, as in "
                             "0055e000001AbCdAAK)");
        explain_waiting_reports(e, id, "", b);
        return false;
    }
    if (!u->has_pos && !u->n_fields && u->status == PROV_NEVER) {
        put_quoted(b, "User ", id,
                   ": named only by a gap event, which could not be read from Salesforce: "
                   "nothing is known about it until a reconciliation (R1.3, R8).\n");
        return true;
    }
    int64_t now = e->opts.now_ms ? e->opts.now_ms : u->pos.commit_timestamp;
    scope s = engine_evaluate_scope(e, u, now);
    put_quoted(b, "User ", id, "");
    const value_t *fn = user_state_get(u, "FirstName"), *ln = user_state_get(u, "LastName");
    const char *first = fn && fn->type == VAL_STR ? fn->s : "",
               *last = ln && ln->type == VAL_STR ? ln->s : "";
    if (*first || *last) {
        buf_puts(b, " (");
        put_text(b, first);
        buf_puts(b, *first && *last ? " " : "");
        put_text(b, last);
        buf_puts(b, ")");
    }
    buf_printf(b, ": %s.\n", prov_status_name(u->status));
    if (u->needs_reconcile)
        buf_puts(b, "  A gap event could not be read from Salesforce: this user waits for a "
                    "reconciliation (R1.3, R8).\n");
    if (s.reason != REASON_NONE) {
        buf_puts(b, "  Not in scope: ");
        explain_reason(e, u, s.reason, now, b);
        buf_puts(b, ".\n");
        if (u->status == PROV_ACTIVE && e->cfg->keep_active)
            buf_puts(b, "  Kept active in Gong because the option keep_active is on (R5.4).\n");
        else if (u->status == PROV_ACTIVE && u->held)
            buf_puts(b,
                     "  Still active in Gong: its deactivation is held by the mass-deactivation "
                     "guard (R8.3) and goes through only when confirmed (POST "
                     "/reimport?confirm=1 to the service, or provisioner reimport --confirm).\n");
        else if (u->status == PROV_ACTIVE && u->in_scope)
            buf_puts(b, "  Still active in Gong: in scope when it was last decided; out of scope "
                        "now (the settings, a date literal's day or a record its filter reads "
                        "changed since), so its next event or a reimport deactivates it (R5.4), "
                        "counted against the mass-deactivation guard (R8.3).\n");
        else if (u->status == PROV_ACTIVE)
            buf_puts(b, "  Still active in Gong: kept active while the option keep_active was on; "
                        "now that it is off, its next event or a reimport deactivates it (R5.4), "
                        "counted against the mass-deactivation guard (R8.3).\n");
        else if (u->status == PROV_NEVER)
            buf_puts(b, "  So it was never created in Gong (R5.2).\n");
        else
            buf_puts(b, "  So it was deactivated in Gong (R5.4).\n");
    } else {
        const cfg_assignment *a = &e->cfg->assignments[s.assignment];
        put_quoted(b, "  In scope: active in Salesforce (R3.1), named (R3.2), email ", s.email,
                   " ");
        buf_puts(b, s.converted ? "converted to the primary domain (R3.3)" : "allowed (R3.3)");
        put_quoted(b, ", and assignment '", a->name,
                   "' is the first whose filter matched (R3.4): ");
        put_filter(b, a, "empty filter, matches everyone");
        buf_puts(b, ".\n");
        explain_earlier_filters(e, u, s.assignment, now, b);
    }
    explain_relationships(e, u, b);
    if (s.reason == REASON_NONE && u->assignment && u->status == PROV_ACTIVE &&
        strcasecmp(u->assignment, e->cfg->assignments[s.assignment].name) != 0) {
        put_quoted(b, "  The filters pick '", e->cfg->assignments[s.assignment].name,
                   "' now, but '");
        put_quoted(b, "", u->assignment,
                   "' was last applied: something the filters read changed without an event of "
                   "this user (a manager's field, a look-up, the settings); the user's next event "
                   "or a reimport applies it.\n");
    }
    if (u->assignment) {
        const cfg_assignment *la = NULL;
        int i = config_assignment_index(e->cfg, u->assignment);
        if (i >= 0) la = &e->cfg->assignments[i];
        put_quoted(b, "  Assignment last applied: '", u->assignment, "'");
        buf_printf(b, " (update mode %s).\n",
                   !la                         ? "unknown: no longer in the settings"
                   : la->mode == UPDATE_MANUAL ? "manual: settings are managed in Gong"
                                               : "automatic");
        explain_settings_sent(e, u, la, b);
    }
    const char *mid = engine_manager_id(u);
    buf_puts(b, "  Manager: ");
    if (e->cfg->ignore_org_structure)
        buf_puts(b, "the organizational structure is ignored (R6.2); ");
    if (!mid)
        buf_puts(b, "no ManagerId in Salesforce");
    else
        put_quoted(b, "ManagerId is ", mid, "");
    if (u->gong_manager) {
        put_quoted(b, "; the Gong manager is ", u->gong_manager, "");
        user_state *gm = e->store->get(e->store->ctx, u->gong_manager);
        if (gm && gm->status != PROV_ACTIVE) /* R6.3: a manager's deactivation changes no link */
            buf_printf(b, " (%s)", prov_status_name(gm->status));
    } else
        buf_puts(b, "; no Gong manager");
    if (!u->waiting_for && u->status == PROV_ACTIVE && !e->cfg->ignore_org_structure &&
        (mid ? !u->gong_manager || strcmp(u->gong_manager, mid) != 0 : !!u->gong_manager))
        explain_manager_differs(e, u, mid, s.reason != REASON_NONE, b);
    if (u->waiting_for) {
        user_state *m = e->store->get(e->store->ctx, u->waiting_for);
        int i = u->assignment ? config_assignment_index(e->cfg, u->assignment) : -1;
        bool out_of_scope = s.reason != REASON_NONE;
        if (!mid || strcmp(mid, u->waiting_for) != 0) {
            /* changed while kept active out of scope, where no link moves (R5.4) */
            put_quoted(b, "; the link kept for ", u->waiting_for,
                       ", an earlier ManagerId, is not made when it arrives, as ManagerId no "
                       "longer names it (R6.3)");
            if (out_of_scope) buf_puts(b, "; back in scope, its manager is brought in line (R5.4)");
        } else {
            put_quoted(b, "; the link waits for ", u->waiting_for, "");
            buf_printf(b, ", which is %s (R6.3)",
                       m ? prov_status_name(m->status) : "not known yet");
            if (out_of_scope)
                buf_puts(b, ", but no manager command is sent while the user is out of scope "
                            "(R5.4): back in scope, its manager is brought in line");
            else if (!u->created_waiting && i >= 0 && e->cfg->assignments[i].mode == UPDATE_MANUAL)
                buf_puts(b, ", and is set then only if the assignment syncs manager changes by "
                            "then (R6.2: manual does not)");
        }
    }
    buf_puts(b, ".\n");
    if (u->status != PROV_ACTIVE) /* "why do these reps have no manager?" */
        explain_waiting_reports(e, u->id, "  ", b);
    if (u->has_pos) {
        char when[32];
        explain_time(when, sizeof when, u->pos.commit_timestamp);
        buf_printf(b,
                   "  Last event applied: commitTimestamp %lld (%s), commitNumber %lld, "
                   "sequenceNumber %lld (R1.4).\n",
                   (long long)u->pos.commit_timestamp, when, (long long)u->pos.commit_number,
                   (long long)u->pos.sequence_number);
    }
    return true;
}
