/* codec: change events and commands on the wire (interfaces.md, "Change events", "Bitmaps",
 * "Commands"). Avro values in, internal events out, the same events the JSON reader makes; commands
 * out as Avro (schemas/GongCommand.avsc) or JSON.
 *
 * A value is plain Avro binary written with a configured schema, or Confluent-framed (byte 0, a
 * 4-byte big-endian schema id, Avro binary) with the writer schema fetched from a Schema Registry.
 * Each writer schema is compiled once (per id) into a reading plan and checked against the reader
 * schema with Avro's resolution rules; after that, decoding a value parses no schema, makes no
 * heap allocation (only arena allocations) and never trusts a length, count or index it reads.
 *
 * Objects here are not thread-safe: use one decoder/encoder per thread. */
#ifndef PROVISIONER_CODEC_H
#define PROVISIONER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command/command.h"
#include "event/event.h"
#include "util/util.h"

/* ---- errors: every failure has a kind (for the dead-letter headers, R9.4) and a message. */
typedef enum {
    CODEC_OK = 0,
    CODEC_ERR_TRUNCATED,       /* the value ends inside a field */
    CODEC_ERR_BAD_MAGIC,       /* Confluent framing expected, byte 0 is not 0 */
    CODEC_ERR_UNKNOWN_SCHEMA,  /* no schema with that id (registry 404, or none preloaded) */
    CODEC_ERR_REGISTRY,        /* the registry did not answer usably, after the retries */
    CODEC_ERR_SCHEMA_MISMATCH, /* the writer schema cannot be read as a User change event */
    CODEC_ERR_BITMAP,          /* a field bitmap names a position the writer schema lacks */
    CODEC_ERR_BAD_RECORD,      /* bytes that are no record of the writer schema */
    CODEC_ERR_ENCODE,          /* an event or command that the schema cannot carry */
    CODEC_ERR__COUNT
} codec_error_kind;

typedef struct codec_error {
    codec_error_kind kind;
    int32_t schema_id; /* the value's schema id; -1 for plain values or none */
    size_t offset;     /* byte offset in the value where decoding stopped */
    char msg[512];
} codec_error;

/* A stable snake_case code: "truncated", "bad_magic_byte", "unknown_schema_id",
 * "registry_unavailable", "schema_mismatch", "bitmap_out_of_range", "bad_record", "encode". */
const char *codec_error_kind_name(codec_error_kind k);
/* True when the same value may decode later (the registry was unreachable): a caller may retry
 * rather than dead-letter. */
bool codec_error_is_transient(codec_error_kind k);

/* ---- Schema Registry access, shared by decoder and command encoder. */
typedef struct codec_registry_config {
    const char *url; /* e.g. http://registry:8081; user:password@ in it is used, never printed */
    int attempts;    /* per request, at least 1; 0: 4 */
    long backoff_ms; /* wait before the 2nd attempt, doubled after each; 0: 100 */
    long timeout_ms; /* per attempt; 0: 5000 */
} codec_registry_config;

/* ---- decoding change events */
typedef enum {
    CODEC_FRAMING_DEFAULT = 0, /* CONFLUENT with a registry and no writer_avsc; else AUTO when
                                  the plain writer starts with entityName; else CONFLUENT with a
                                  registry, PLAIN without */
    CODEC_FRAMING_PLAIN,       /* every value is plain Avro of the configured writer schema */
    CODEC_FRAMING_CONFLUENT,   /* every value is framed; byte 0 other than 0 is bad_magic_byte */
    CODEC_FRAMING_AUTO,        /* byte 0 == 0: framed; else plain (plain User events never start
                                  with 0: that would be an empty entityName) */
} codec_framing;

typedef struct codec_decoder_config {
    const char *writer_avsc; /* writer schema of plain values (.avsc text); NULL: the bundled one */
    size_t writer_avsc_len;  /* 0: strlen */
    const char *reader_avsc; /* the schema writers are resolved against; NULL: the bundled one */
    size_t reader_avsc_len;
    codec_registry_config registry; /* registry.url NULL: no registry */
    codec_framing framing;
    long unknown_id_ttl_ms; /* how long "no such schema id" is remembered; 0: 60000 */
} codec_decoder_config;

typedef struct codec_decoder codec_decoder;

int codec_decoder_new(const codec_decoder_config *cfg, codec_decoder **out, codec_error *err);
void codec_decoder_free(codec_decoder *d);

/* Puts a writer schema in the id cache, as if the registry had served it (tests, fuzzing,
 * air-gapped use). Fails with schema_mismatch when it does not resolve against the reader. */
int codec_decoder_add_schema(codec_decoder *d, int32_t id, const char *avsc, size_t len,
                             codec_error *err);

/* Decodes one message value into *out, everything it points to in mem (or, for field names, in
 * the decoder: valid while it lives). Compound records are flattened into their parts under the
 * parts' own names; Avro nulls are left out (in Pub/Sub events a null means "not sent": only
 * changedFields/nulledFields say what changed), so out->payload_marks_changes is false.
 * changedFields/nulledFields/diffFields bitmaps are expanded into names against the WRITER
 * schema's field positions. Fields the writer has beyond the reader are kept, so a filter may use
 * any field of the org's schema. long timestamp-millis/-micros and int date fields come out as the
 * ISO-8601 strings of the JSON form ("2026-11-25T10:00:00.000Z", "2026-11-25"). out->source is
 * left for the caller (partition and offset -1). Returns 0, or -1 with *err filled. */
int codec_decode(codec_decoder *d, const void *bytes, size_t len, arena *mem, event *out,
                 codec_error *err);

/* The field layout of the writer schema of the last value decoded (for event_to_json), or the
 * plain writer's before any. */
const event_layout *codec_decoder_last_layout(const codec_decoder *d);

/* ---- encoding change events (the converter behind `encode` and `produce-events`) */
typedef struct codec_event_encoder_config {
    const char *writer_avsc; /* NULL: the bundled schema */
    size_t writer_avsc_len;  /* 0: strlen */
    bool framed;             /* Confluent framing with schema_id */
    int32_t schema_id;
    bool bitmaps; /* write changedFields/nulledFields/diffFields as Pub/Sub bitmaps where the
                     schema has the field, as Salesforce's Pub/Sub API does */
} codec_event_encoder_config;

typedef struct codec_event_encoder codec_event_encoder;

int codec_event_encoder_new(const codec_event_encoder_config *cfg, codec_event_encoder **out,
                            codec_error *err);
void codec_event_encoder_free(codec_event_encoder *e);
/* The writer schema's layout: read JSON events with it so their bitmaps match. */
const event_layout *codec_event_encoder_layout(const codec_event_encoder *e);

/* Replaces out's content with one message value. Flattened compound parts (FirstName) go back
 * into their compound (Name); ISO strings go into timestamp-millis longs. When the event's payload
 * marks changes (a JSON UPDATE), payload fields that changedFields/nulledFields do not name are
 * added to them, so that the Avro value means what the JSON did (R1.3). A non-null field that the
 * schema lacks, or a value its type cannot hold, is an encode error naming the field. */
int codec_encode_event(codec_event_encoder *e, const event *ev, buf *out, codec_error *err);

/* ---- commands */
typedef enum { CODEC_FORMAT_JSON = 0, CODEC_FORMAT_AVRO } codec_format;

/* "json" or "avro" (the --output-format setting); -1 otherwise. */
int codec_format_parse(const char *s, codec_format *out);
const char *codec_format_name(codec_format f);

/* The bundled schemas/GongCommand.avsc text. */
const char *codec_command_schema_avsc(void);

typedef struct codec_command_encoder_config {
    codec_format format;
    /* Avro only. With registry.url: Confluent framing with the id under which the registry
     * knows GongCommand.avsc as subject "<topic>-value" (registered if needed, once, at
     * creation). Without: framed with schema_id when framed, else plain. */
    codec_registry_config registry;
    const char *topic;
    bool framed;
    int32_t schema_id;
} codec_command_encoder_config;

typedef struct codec_command_encoder codec_command_encoder;

int codec_command_encoder_new(const codec_command_encoder_config *cfg, codec_command_encoder **out,
                              codec_error *err);
void codec_command_encoder_free(codec_command_encoder *e);
/* Replaces out's content with the command's message value in the configured format. */
int codec_encode_command(codec_command_encoder *e, const command *c, buf *out, codec_error *err);
/* The schema id the values are framed with; -1 when plain or JSON. */
int32_t codec_command_encoder_schema_id(const codec_command_encoder *e);

/* A command message value (Avro per GongCommand.avsc, plain or framed, or JSON) -> the command's
 * JSON form, byte for byte what command_to_json writes (consume-commands). Replaces out. */
int codec_command_value_to_json(const void *bytes, size_t len, buf *out, codec_error *err);

#endif
