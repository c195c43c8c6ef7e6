/* Shared by the engine's own files (engine.c, explain.c); not part of its public face. */
#ifndef PROVISIONER_ENGINE_INT_H
#define PROVISIONER_ENGINE_INT_H

#include "engine.h"

/* A filter field resolved once at engine_new: the user's own field, or a relationship path (R4.3)
 * read through the user's key field (ProfileId, UserRoleId, ManagerId). */
typedef struct filter_ref {
    soql_rel rel;
    const char *field; /* the user's field, or the related record's (the path's leaf) */
    const char *key;   /* the user's field holding the related id; NULL for SOQL_REL_NONE */
    bool boolean;      /* absent reads as false (value_field_is_boolean) */
    bool id;           /* the record's Id: not a snapshot field, the user's (or manager's) id */
} filter_ref;

struct engine {
    const config *cfg;
    engine_store *store;
    engine_opts opts;
    engine_stats stats;
    buf why;             /* reused for each command's `why` */
    buf scratch;         /* reused for normalised emails */
    const char **sorted; /* reused for waiting reports */
    size_t sorted_cap;
    value_t *vals;     /* filter inputs, as many as the widest filter reads */
    value_t id_val;    /* an Id a filter reads, until it is copied (filter_ref.id) */
    filter_ref **refs; /* per assignment, where each of its filter's fields comes from */
    size_t n_refs;
    buf fp;     /* settings fingerprints, while one is made */
    char **fps; /* per assignment, its fingerprint once made: the settings do not change */
    /* layout positions of the compound fields (Name, Address), ascending: change_named looks a
     * changedFields name up among these instead of every field of the layout */
    size_t *compounds;
    size_t n_compounds;
};

/* The result of R3 for a snapshot. */
typedef struct scope {
    reason_code reason;
    int assignment;    /* index into cfg->assignments, -1 if none matched */
    bool email_ok;     /* R3.3 on its own, whatever failed first */
    const char *email; /* the email to send (domain lower-cased, maybe converted); in e->scratch */
    bool converted;
} scope;

/* Case-insensitive equality of two field names, as strcasecmp(a, b) == 0 in the C locale the
 * process runs in (only A-Z fold; field names are ASCII API names). Inline, and deciding on the
 * first differing byte: snapshot and event lookups compare every name with dozens of others, nearly
 * all different from the first byte, and the libc call cost more than the comparison itself. */
static inline bool engine_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x != y) {
            /* equal only as the two cases of one letter */
            if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
        } else if (!x) {
            return true;
        }
    }
}

scope engine_evaluate_scope(engine *e, const user_state *u, int64_t now_ms);
int engine_match_assignment(engine *e, const user_state *u, int64_t now_ms);
soql_truth engine_assignment_truth(engine *e, const user_state *u, size_t a, int64_t now_ms);
/* R6.4: whether making `manager` user's Gong manager would close a loop of Gong managers. */
bool engine_makes_cycle(engine *e, const char *user, const char *manager);
/* Whether the settings Gong has of the user are assignment a's as the settings file has them now
 * (R8.1). */
bool engine_settings_sent_are_current(engine *e, const user_state *u, size_t a);
/* R8.1: a reimport would send this user its assignment's settings as the file has them now
 * (active, in scope, under an automatic assignment whose settings Gong does not have). */
bool engine_settings_due(engine *e, const user_state *u);
bool engine_is_blank(const value_t *v);
/* R4.1: the value of a field of u's own record (its Id included). */
const value_t *engine_field_value(engine *e, const user_state *u, const filter_ref *r);
/* R4.3: the value of a relationship field for u; *related false when there is no related
 * record. */
const value_t *engine_related_value(engine *e, const user_state *u, const filter_ref *r,
                                    bool *related);

#endif
