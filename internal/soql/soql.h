/* soql: assignment filters (provisioning.md R3.4, R4). A SOQL WHERE condition is compiled once at
 * load into a tree whose field references are numbered; evaluation reads the values the caller
 * supplies in that numbering, allocates nothing and does no I/O. */
#ifndef PROVISIONER_SOQL_H
#define PROVISIONER_SOQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "value/value.h"

typedef struct soql_filter soql_filter;

/* Compiles a condition, with or without a leading WHERE. Empty or blank text compiles to a filter
 * that matches everyone. On failure returns -1 and err->msg reads
 *   "column 23: expected a value after '=', found ')'"
 * (1-based column into text, the token found, what was expected). A relationship path other than
 * Profile.<field>, UserRole.<field> and Manager.<field> (R4.3) is refused here, where its column
 * is known. */
int soql_compile(const char *text, soql_filter **out, perr *err);
/* As soql_compile, for a caller that places the error in its own file (config, in the settings):
 * on failure err->msg holds the reason alone and *err_at the byte offset into text it names. */
int soql_compile_placed(const char *text, soql_filter **out, perr *err, size_t *err_at);
void soql_free(soql_filter *f);

/* The distinct fields the filter reads, numbered 0..n-1 in order of first appearance, spelled as in
 * the filter (dotted relationship paths such as Profile.Name kept whole). Names are
 * case-insensitive: "title" and "Title" are one field. */
size_t soql_field_count(const soql_filter *f);
const char *soql_field_name(const soql_filter *f, size_t i);
/* True when a field is a relationship path (contains '.'), R4.3. */
bool soql_needs_relationships(const soql_filter *f);
/* Whether the filter has a relative date literal (TODAY, LAST_N_DAYS:n, ...): its truth depends
 * on the clock it is evaluated against. */
bool soql_uses_relative_dates(const soql_filter *f);

/* Conditions that no value of their field's type can make true, which Salesforce would refuse but
 * R4.2 does not make an error: a checkbox compared with 'yes' or 5, or ordered with < or >; a
 * number compared with 'abc'; LIKE, INCLUDES or EXCLUDES on either. type_of gives a field's type
 * by name (the user's own, or the leaf of Manager.<field>; Profile and UserRole fields are not
 * asked): VAL_BOOL, VAL_NUM, anything else for a field compared freely. text is what the filter was
 * compiled from. Each finding goes to say as "column 20: IsActive is a checkbox: compared with
 * 'yes', this condition is never true (...)" ("line 2, column 5" in a filter of several lines);
 * returns how many. */
size_t soql_type_hints(const soql_filter *f, const char *text,
                       val_type (*type_of)(void *ctx, const char *field), void *ctx,
                       void (*say)(void *ctx, const char *msg), void *say_ctx);

/* R4.3: the relationships a filter may go through, each resolved from a cached look-up keyed by
 * one of the user's own fields (soql_relationship_key). */
typedef enum {
    SOQL_REL_NONE = 0,    /* a field of the user itself */
    SOQL_REL_PROFILE,     /* Profile.<field>, by ProfileId */
    SOQL_REL_USERROLE,    /* UserRole.<field>, by UserRoleId */
    SOQL_REL_MANAGER,     /* Manager.<field>, by ManagerId, from the manager's own snapshot */
    SOQL_REL_UNSUPPORTED, /* any other path (Account.Name, Manager.Profile.Name, ...) */
    SOQL_REL__COUNT
} soql_rel;

/* Which relationship a field path goes through (names case-insensitive, as in SOQL); *leaf is set
 * to the field after the dot (into path) for the supported ones, to path otherwise. */
soql_rel soql_relationship(const char *path, const char **leaf);
/* "ProfileId", "UserRoleId", "ManagerId"; NULL for NONE and UNSUPPORTED. */
const char *soql_relationship_key(soql_rel r);
/* "Profile", "UserRole", "Manager"; "" for NONE and UNSUPPORTED. */
const char *soql_relationship_name(soql_rel r);

typedef struct soql_clock {
    int64_t now_ms;        /* "now", milliseconds since the Unix epoch */
    int tz_offset_minutes; /* the org's offset from UTC for TODAY and friends; 0 = UTC */
} soql_clock;

typedef enum { SOQL_FALSE = 0, SOQL_TRUE = 1, SOQL_UNKNOWN = 2 } soql_truth;

/* Evaluates with SOQL's three-valued logic. values[i] is the value of soql_field_name(f, i) for
 * the record (VAL_NULL when the record has none). Date and date-time fields arrive as strings
 * ("2024-05-01", "2024-05-01T10:00:00.000Z") and are compared as such against date literals.
 * A filter that matches everyone returns SOQL_TRUE. */
soql_truth soql_eval(const soql_filter *f, const value_t *values, const soql_clock *clock);

#endif
