/* lookup: the Profile and UserRole tables behind relationship filters (provisioning.md R4.3).
 *
 * The settings say which fields of each object the filters read (Profile.Name, UserRole.
 * DeveloperName, ...); the tables hold just those, for every record of the org. The service reads
 * them from Salesforce at start, again on a schedule, and again before a batch that names an id
 * the tables do not know (a profile created since the last read). The engine reads them through
 * lookup_get, a plain in-memory look-up, between those reads and never during one. simulate and
 * explain take them from a JSON file instead (no network there).
 *
 * Ids are matched on their first 15 characters, so a 15- and an 18-character form of one id are
 * one record. Manager.<field> needs no table: the engine reads the manager's own snapshot. */
#ifndef PROVISIONER_LOOKUP_H
#define PROVISIONER_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "event/event.h"
#include "salesforce/salesforce.h"
#include "soql/soql.h"
#include "util/util.h"
#include "value/value.h"

typedef struct lookup lookup;

/* Tables for what cfg's filters read; cfg only needs to live through the call. */
lookup *lookup_new(const config *cfg);
void lookup_free(lookup *l);

/* True when some filter reads a Profile or UserRole field, so the tables must be loaded before
 * the first decision. */
bool lookup_needed(const lookup *l);

/* "Profile (Name), UserRole (DeveloperName, Name)": what the filters read, for messages. */
void lookup_describe(const lookup *l, buf *out);

/* The engine_opts.lookup callback (ctx is the lookup): the field of the Profile or UserRole
 * record with this id, or NULL when the tables have no such record or field. */
const value_t *lookup_get(void *ctx, soql_rel rel, const char *id, const char *field);

/* Reads both tables from Salesforce (SELECT Id, <fields> FROM Profile, then UserRole), only the
 * ones the filters need. On failure the tables stay as they were. */
int lookup_refresh(lookup *l, sf_client *sf, unsigned sf_flags, perr *err);

/* For a batch about to be decided: notes the ProfileId / UserRoleId values these fields carry
 * (an event's payload, a record read from Salesforce). Returns how many the tables do not know. */
size_t lookup_note_fields(lookup *l, const event_field *fields, size_t n);
/* When a noted id was unknown, reads the tables again (once, however many there were); ids still
 * unknown afterwards are absent in Salesforce and read as null, without asking again until the
 * next refresh. Forgets the notes. 0 also when there was nothing to do. */
int lookup_resolve_noted(lookup *l, sf_client *sf, perr *err);

/* Offline tables (simulate, explain): a JSON object
 *   {"Profile": {"00e...": {"Name": "Sales User"}}, "UserRole": {"00E...": {"Name": "CEO"}}}
 * or Salesforce's query answers ({"records": [{"attributes": {"type": "Profile"}, "Id": ...}]}):
 * one, an array of them, or one under its table's name. Errors name the file and what is wrong. */
int lookup_load_file(lookup *l, const char *path, perr *err);

typedef struct lookup_stats {
    uint64_t refreshes; /* successful reads of the tables */
    uint64_t failures;  /* reads that failed */
    size_t rows[SOQL_REL__COUNT];
    int64_t refreshed_ms; /* wall clock of the last successful read; 0 before */
} lookup_stats;

void lookup_get_stats(const lookup *l, lookup_stats *out);

#endif
