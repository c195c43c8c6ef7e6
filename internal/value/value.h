/* value: a typed Salesforce field value, as read from an event (JSON or Avro) and kept in a user's
 * snapshot. Strings are NUL-terminated; the value does not own them. */
#ifndef PROVISIONER_VALUE_H
#define PROVISIONER_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { VAL_NULL = 0, VAL_BOOL, VAL_NUM, VAL_STR } val_type;

typedef struct value_t {
    val_type type;
    bool b;
    double num;
    const char *s; /* VAL_STR: NUL-terminated */
    size_t len;    /* VAL_STR: strlen(s) */
} value_t;

static inline value_t value_null(void) { return (value_t){.type = VAL_NULL}; }
static inline value_t value_bool(bool b) { return (value_t){.type = VAL_BOOL, .b = b}; }
static inline value_t value_num(double n) { return (value_t){.type = VAL_NUM, .num = n}; }
value_t value_str(const char *s);

/* Exact equality: same type and same content (strings compared byte-wise). */
bool value_eq(const value_t *a, const value_t *b);

/* Appends the value as JSON: null, true/false, a number (whole numbers without a fraction; NaN and
 * infinities, which JSON lacks, as null) or a string literal. */
struct buf;
void value_to_json(const value_t *v, struct buf *out);

/* True for the standard User fields that Salesforce types as checkbox (never null there):
 * IsActive, UserPermissions*, UserPreferences*, ... A filter reads a missing one as false. A
 * custom field (Name__c) is never one: its name does not tell its type. */
bool value_field_is_boolean(const char *field);

#endif
