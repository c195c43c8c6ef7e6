/* json_reader: the JSON parser behind event_from_json, internal to the event component. A strict
 * RFC 8259 recursive-descent reader that builds a small tree entirely in the caller's arena: the
 * hot path (one change event a line) makes no malloc/free, and the decoded strings are the ones the
 * event keeps. It reproduces what the jansson DOM gave before: integers apart from reals, object
 * members in first-seen order with the last value of a repeated key, \u0000 refused. */
#ifndef PROVISIONER_EVENT_JSON_READER_H
#define PROVISIONER_EVENT_JSON_READER_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Deeper nesting is refused: a change event is four levels deep at most (message, data, payload,
 * compound), and the limit bounds the recursion. */
#define JR_MAX_DEPTH 32

typedef enum {
    JR_NULL,
    JR_FALSE,
    JR_TRUE,
    JR_INT,
    JR_REAL,
    JR_STRING,
    JR_ARRAY,
    JR_OBJECT
} jr_type;

typedef struct jr_node jr_node;

typedef struct jr_value {
    jr_type type;
    union {
        int64_t i; /* JR_INT */
        double d;  /* JR_REAL */
        struct {
            const char *s; /* NUL-terminated UTF-8 in the arena; never contains a NUL */
            size_t len;
        } str;
        struct {
            jr_node *first; /* objects: keys unique; arrays: key NULL */
            size_t n;
        } list;
    } u;
} jr_value;

struct jr_node {
    jr_node *next;
    const char *key; /* objects: NUL-terminated, in the arena */
    size_t key_len;
    jr_value val;
};

/* Parses the whole of text[0, len) (any JSON value, surrounding white space allowed) into *out,
 * allocating in mem. On error returns -1 with err = "column N: invalid JSON: <what>", N counting
 * characters (UTF-8 code points) from 1, as an editor shows them. */
int jr_parse(const char *text, size_t len, arena *mem, jr_value *out, perr *err);

/* The member key of an object; NULL when v is NULL, not an object, or has no such key. */
const jr_value *jr_get(const jr_value *v, const char *key);

/* Writes v as compact JSON exactly as jansson's json_dumps(v, JSON_COMPACT) does (the text the
 * jansson-based reader kept for arrays) into out, or only counts when out is NULL. Returns the
 * length, without a terminating NUL. */
size_t jr_dump(const jr_value *v, char *out);

#endif
