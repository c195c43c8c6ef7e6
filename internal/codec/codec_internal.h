/* Shared between the codec's source files only. */
#ifndef PROVISIONER_CODEC_INTERNAL_H
#define PROVISIONER_CODEC_INTERNAL_H

#include <avro.h>
#include <stdint.h>

#include "codec.h"

int codec_fail(codec_error *err, codec_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts context before err->msg. */
void codec_prefix(codec_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- a schema compiled from its .avsc JSON into a tree (a graph for recursive types) that the
 * readers and writers walk. avro-c parses and validates the same text; this form exists because
 * avro-c's own reader trusts the lengths and counts it reads (a -1 string length aborts it, a
 * 5-byte array header makes it allocate 500 MB), so values are never handed to it. */
typedef enum {
    AV_NULL,
    AV_BOOLEAN,
    AV_INT,
    AV_LONG,
    AV_FLOAT,
    AV_DOUBLE,
    AV_BYTES,
    AV_STRING,
    AV_FIXED,
    AV_ENUM,
    AV_ARRAY,
    AV_MAP,
    AV_UNION,
    AV_RECORD
} av_kind;

typedef enum { LT_NONE, LT_TIMESTAMP_MILLIS, LT_TIMESTAMP_MICROS, LT_DATE } av_logical;

typedef struct av_node av_node;
struct av_node {
    av_kind kind;
    av_logical logical;
    const char *name;     /* named types: the full name */
    size_t size;          /* fixed */
    const char **symbols; /* enum */
    size_t n_symbols;
    av_node **items;     /* union branches, record field types, [0]: array items / map values */
    const char **fields; /* record field names */
    bool *has_default;   /* record fields: a "default" is given (schema resolution) */
    size_t n;            /* union branches or record fields (1 for array and map) */
    int null_branch;     /* union: the null branch, or -1 */
};

typedef struct av_schema {
    arena mem; /* every node and name */
    av_node *root;
} av_schema;

int codec_schema_compile(const char *avsc, size_t len, av_schema **out, perr *err);
void codec_schema_free(av_schema *s);
const char *codec_kind_name(av_kind k);
/* The non-null branch of a ["null", T] union, or the node itself. */
const av_node *codec_unwrap(const av_node *n);
/* A compound field's record: the type itself, or a union's record branch; NULL otherwise. */
const av_node *codec_record_of(const av_node *n);

/* Checks the text with avro-c's schema parser, the reference for what a valid schema is. */
int codec_validate_avsc(const char *avsc, size_t len, perr *err);
/* Whether values of writer can be read as reader, by the Avro specification's resolution rules.
 * (avro-c's avro_resolved_writer_new would decide this too, but in 1.11.1 it crashes on some
 * incompatible pairs, such as a nested record with an array before the offending field, and the
 * writer comes from the registry.) A writer union resolves when some branch does, as in avro-c:
 * a value of another branch is the value's problem, not the schema's. */
int codec_resolves(const av_node *writer, const av_node *reader, perr *err);

/* ---- the reading/writing plan of one User change event writer schema */
typedef enum {
    H_OTHER = -1,
    H_ENTITY,
    H_RECORD_IDS,
    H_CHANGE_TYPE,
    H_CHANGE_ORIGIN,
    H_TRANSACTION_KEY,
    H_SEQUENCE,
    H_COMMIT_TS,
    H_COMMIT_NUMBER,
    H_COMMIT_USER,
    H_NULLED,
    H_DIFF,
    H_CHANGED,
    H__COUNT
} header_slot;

/* A scalar the event can carry: a top-level field, or a part of a compound (one level). */
typedef struct ev_leaf {
    const char *name;
    size_t top; /* top-level position */
    int part;   /* part index in the compound, -1 for a top-level scalar */
    const av_node *type;
} ev_leaf;

typedef struct ev_plan {
    av_schema *schema;
    event_layout *layout;
    size_t header_pos;
    const av_node *header; /* the header record */
    int8_t *header_slots;  /* per header field */
    ev_leaf *leaves;
    size_t n_leaves;
    int *leaf_of_top;     /* per top-level field: its leaf, or -1 (compound / header) */
    int *first_part_leaf; /* per top-level compound: the leaf of part 0, or -1 */
    strmap by_name;       /* leaf name -> leaf index + 1 */
    /* Why the writer does not resolve against the reader, when it may not (other_ok): another
     * object's change event on a mixed topic (R1.1: its events are read and skipped), or a User
     * schema this build cannot read, whose User events then fail with this. NULL: it resolves. */
    char *other;
} ev_plan;

/* Compiles and checks a writer schema (against reader when not NULL). Failures are
 * schema_mismatch. other_ok: a change event that does not resolve against the reader is still
 * planned (ev_plan.other). */
int codec_plan_new(const char *avsc, size_t len, const av_schema *reader, bool other_ok,
                   ev_plan **out, codec_error *err);
void codec_plan_free(ev_plan *p);

/* ---- Schema Registry client (libcurl) */
typedef struct codec_registry codec_registry;

int codec_registry_new(const codec_registry_config *cfg, codec_registry **out, codec_error *err);
void codec_registry_free(codec_registry *r);
/* GET /schemas/ids/{id}: the schema text into out. unknown_schema_id for a 404, else
 * registry_unavailable after the retries. */
int codec_registry_get(codec_registry *r, int32_t id, buf *out, codec_error *err);
/* POST /subjects/{subject}/versions: registers (or finds) the schema, returns its id. */
int codec_registry_register(codec_registry *r, const char *subject, const char *avsc, int32_t *id,
                            codec_error *err);

/* ---- the bounds-checked reader of Avro binary. Every length, count and index read is checked
 * against what is left before it is used. */
typedef struct av_reader {
    const uint8_t *base, *p, *end;
    arena *mem;
    codec_error *err;
    size_t budget; /* array/map items still allowed: zero-size items cannot loop forever */
    int depth;
} av_reader;

enum { AV_MAX_DEPTH = 32 };

int codec_rd_fail(av_reader *r, codec_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same as an expression the compiler can see is -1. */
#define RD_FAIL(...) (codec_rd_fail(__VA_ARGS__), -1)

static inline int codec_rd_long(av_reader *r, int64_t *out)
{
    if (r->p < r->end && !(*r->p & 0x80)) { /* the common one-byte case */
        uint64_t x = *r->p++;
        *out = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
        return 0;
    }
    uint64_t x = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (r->p >= r->end) return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends inside a number");
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "number too long");
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
        if (shift == 63) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "number too long");
    }
    *out = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
    return 0;
}

static inline int codec_rd_int(av_reader *r, int32_t *out)
{
    int64_t v;
    if (codec_rd_long(r, &v) < 0) return -1;
    if (v < INT32_MIN || v > INT32_MAX) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "int out of range");
    *out = (int32_t)v;
    return 0;
}

/* A byte length that fits in what is left. */
static inline int codec_rd_len(av_reader *r, size_t *out)
{
    int64_t v;
    if (codec_rd_long(r, &v) < 0) return -1;
    if (v < 0) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "negative length %lld", (long long)v);
    if ((uint64_t)v > (uint64_t)(r->end - r->p))
        return RD_FAIL(r, CODEC_ERR_TRUNCATED, "length %lld runs past the end", (long long)v);
    *out = (size_t)v;
    return 0;
}

/* A union branch or enum index below n. */
static inline int codec_rd_index(av_reader *r, size_t n, size_t *out)
{
    int64_t v;
    if (codec_rd_long(r, &v) < 0) return -1;
    if (v < 0 || (uint64_t)v >= n)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "index %lld out of range (%zu)", (long long)v, n);
    *out = (size_t)v;
    return 0;
}

/* The item count of the next array/map block (0 ends it); skips a negative count's byte size. */
int codec_rd_block(av_reader *r, size_t *count);
/* A UTF-8 string without NUL, copied NUL-terminated into the arena. */
int codec_rd_string(av_reader *r, const char **s, size_t *len);
/* The string in place (not terminated), checked the same way. */
int codec_rd_string_view(av_reader *r, const uint8_t **s, size_t *len);
int codec_rd_skip(av_reader *r, const av_node *t);
bool codec_utf8_valid(const uint8_t *s, size_t n);

/* ---- binary writing helpers */
void codec_put_long(buf *b, int64_t v);
void codec_put_bytes(buf *b, const void *p, size_t n);
void codec_put_frame(buf *b, int32_t schema_id);

/* ---- time: the ISO-8601 forms of the JSON events */
/* "2026-11-25T10:00:00.000Z" (millis) or with 6 decimals (micros); returns the length. */
size_t codec_format_timestamp(int64_t t, bool micros, char out[64]);
size_t codec_format_date(int64_t days, char out[64]);
/* Accepts YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|+HHMM); -1 if it is not one. */
int codec_parse_timestamp(const char *s, size_t len, bool micros, int64_t *out);
int codec_parse_date(const char *s, size_t len, int64_t *days);

#endif
