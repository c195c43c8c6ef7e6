/* event: the internal form of one Salesforce Change Data Capture event (provisioning.md R1.1),
 * the common output of the JSON reader (here) and the Avro decoder (codec). Everything an event
 * points to lives in the arena given to the reader, reset by the caller between events. */
#ifndef PROVISIONER_EVENT_H
#define PROVISIONER_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "value/value.h"

typedef enum {
    CHANGE_CREATE = 0,
    CHANGE_UPDATE,
    CHANGE_DELETE,
    CHANGE_UNDELETE,
    CHANGE_GAP_CREATE,
    CHANGE_GAP_UPDATE,
    CHANGE_GAP_DELETE,
    CHANGE_GAP_UNDELETE,
    CHANGE_GAP_OVERFLOW,
    CHANGE__COUNT
} change_type;

const char *change_type_name(change_type t);
/* Returns -1 when the name is not one of the nine change types. */
int change_type_parse(const char *name, change_type *out);

typedef struct event_field {
    const char *name; /* compound parts under their own names: FirstName, City */
    value_t val;      /* VAL_NULL for an explicit null */
} event_field;

typedef struct event_source {
    const char *topic; /* NULL outside Kafka */
    int32_t partition;
    int64_t offset;
    const char *replay_id; /* NULL when unknown */
} event_source;

typedef struct event {
    const char *entity;
    change_type change;
    const char **record_ids;
    size_t n_record_ids;
    /* Field names after bitmap decoding; compound parts as "Name.LastName" or plain names. */
    const char **changed_fields;
    size_t n_changed_fields;
    const char **nulled_fields;
    size_t n_nulled_fields;
    const char **diff_fields;
    size_t n_diff_fields;
    const char *transaction_key;
    int64_t sequence_number;
    int64_t commit_timestamp;
    int64_t commit_number;
    const char *commit_user;
    const char *change_origin;
    /* Payload fields, compound fields flattened. JSON carries explicit nulls; Avro carries only
     * the non-null fields (its nulls mean "not sent"). */
    event_field *fields;
    size_t n_fields;
    /* R1.3: in a JSON event every field present in the payload counts as changed. */
    bool payload_marks_changes;
    event_source source;
} event;

/* R1.1: only User events are decided; any other entity is skipped and counted, never an error.
 * Such an event carries its entity and, when it names one, its change type; nothing else of it
 * is read (its bitmaps and fields follow another object's schema). */
bool event_is_user(const event *ev);

/* A User event about every user rather than named ones, whose values it does not carry:
 * GAP_OVERFLOW (R1.3), or recordIds holding the object's three-character key prefix and '*'
 * ("005*", Salesforce's form after a custom field's type conversion that lost data). Either asks for a reconciliation
 * of the whole org (R8); no user is decided from it. */
bool event_is_org_wide(const event *ev);

/* ---- field layout of a writer schema: top-level field positions and compound parts, for
 * Pub/Sub API bitmaps (interfaces.md, "Bitmaps"). */
typedef struct event_layout event_layout;

/* Builds a layout from an Avro schema in JSON (.avsc text). */
int event_layout_from_avsc(const char *avsc, size_t len, event_layout **out, perr *err);
void event_layout_free(event_layout *l);
/* The layout of the project's own schemas/UserChangeEvent.avsc, embedded at build time. */
const event_layout *event_layout_default(void);
/* The bundled schema text itself. */
const char *event_default_schema_avsc(void);

size_t event_layout_count(const event_layout *l);
const char *event_layout_name(const event_layout *l, size_t pos);
/* Parts of the compound field at pos; 0 when it is not a compound. */
size_t event_layout_part_count(const event_layout *l, size_t pos);
const char *event_layout_part_name(const event_layout *l, size_t pos, size_t part);
/* Every field name of the layout, compound parts too (*n of them), listed once when it is built.
 */
const char *const *event_layout_all_names(const event_layout *l, size_t *n);
/* What a field decodes to, by name in any case (compound parts too): VAL_BOOL for a checkbox,
 * VAL_NUM for a number, VAL_STR for text, dates and timestamps; VAL_NULL for a name the layout
 * lacks or a record. */
val_type event_layout_value_type(const event_layout *l, const char *name);

/* Expands one changedFields/nulledFields/diffFields entry: a plain name is appended as is; "0x..."
 * appends the names of the top-level positions set; "N-0x..." appends "Compound.Part" for the
 * parts set. Names are allocated in mem and appended to *names (grown in mem). A position the
 * layout lacks, or malformed hex, is an error; an N that is not all digits, or is above 1,000,000,
 * makes the entry a plain name (a field name may hold a dash). */
int event_expand_field_entry(const event_layout *l, const char *entry, arena *mem,
                             const char ***names, size_t *n, size_t *cap, perr *err);

/* ---- JSON lines (interfaces.md "Change events as JSON lines"): the payload itself, or the
 * Streaming API message with the payload under data.payload and data.event.replayId. */
int event_from_json(const char *line, size_t len, const event_layout *layout, arena *mem,
                    event *out, perr *err);

/* Writes the event as one JSON line (payload form, compound parts nested back under Name when the
 * layout says so), for `decode` and tests. */
void event_to_json(const event *ev, const event_layout *layout, buf *out);

/* The compound field a flattened part belongs to ("Name" for "FirstName"), from the layout; NULL
 * when the name is not a part. */
const char *event_layout_compound_of(const event_layout *l, const char *part);

#endif
