/* libFuzzer target for internal/codec (issue 5): decodes the input as a change event message
 * value, plain (the bundled writer) or Confluent-framed (byte 0 == 0; schema ids 1 and 2 are
 * preloaded, so no network is touched), and as a command value. Id 2 is a "kitchen sink" writer:
 * the bundled fields reversed plus a timestamp-millis, a date, float, double, bytes, fixed, enum,
 * map, array and a recursive record, so every reader path is reachable. Besides the sanitizers it
 * checks properties that must hold for every input:
 *   - a failure has a kind in range, a message, and an offset within the value;
 *   - a success gives NUL-terminated UTF-8 field values whose len is their strlen, and names;
 *   - command values that decode give JSON that jansson parses. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "fuzz.h"

static codec_decoder *fuzz_dec;
static arena fuzz_mem;
static buf fuzz_out;

static char *fuzz_kitchen_sink(void)
{
    json_t *root = json_loads(event_default_schema_avsc(), 0, NULL);
    json_t *fields = json_object_get(root, "fields"), *nf = json_array();
    json_array_append(nf, json_array_get(fields, 0));
    for (size_t i = json_array_size(fields); i-- > 1;)
        json_array_append(nf, json_array_get(fields, i));
    static const char *const extra[] = {
        "{\"name\":\"Stamp__c\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":"
        "\"timestamp-millis\"}],\"default\":null}",
        "{\"name\":\"Micros__c\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":"
        "\"timestamp-micros\"}],\"default\":null}",
        "{\"name\":\"Day__c\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}],"
        "\"default\":null}",
        "{\"name\":\"F__c\",\"type\":[\"null\",\"float\",\"double\",\"long\"],\"default\":null}",
        "{\"name\":\"Raw__c\",\"type\":[\"null\",\"bytes\",{\"type\":\"fixed\",\"name\":\"Six\","
        "\"size\":6}],\"default\":null}",
        "{\"name\":\"Kind__c\",\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"Kind\","
        "\"symbols\":[\"A\",\"B\",\"C\"]}],\"default\":null}",
        "{\"name\":\"Tags__c\",\"type\":[\"null\",{\"type\":\"map\",\"values\":{\"type\":"
        "\"array\",\"items\":\"string\"}}],\"default\":null}",
        "{\"name\":\"Tree__c\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\","
        "\"fields\":[{\"name\":\"Label\",\"type\":\"string\"},{\"name\":\"Kids\",\"type\":"
        "{\"type\":\"array\",\"items\":\"Node\"}},{\"name\":\"Next\",\"type\":[\"null\","
        "\"Node\"]}]}],\"default\":null}",
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        json_array_append_new(nf, json_loads(extra[i], 0, NULL));
    json_object_set_new(root, "fields", nf);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_AUTO};
    codec_error err;
    char *sink = fuzz_kitchen_sink();
    if (codec_decoder_new(&cfg, &fuzz_dec, &err) < 0 ||
        codec_decoder_add_schema(fuzz_dec, 1, event_default_schema_avsc(), 0, &err) < 0 ||
        codec_decoder_add_schema(fuzz_dec, 2, sink, 0, &err) < 0) {
        fprintf(stderr, "fuzz_codec: setup: %s\n", err.msg);
        abort();
    }
    free(sink);
    arena_init(&fuzz_mem, 0);
    buf_init(&fuzz_out);
    return 0;
}

static void check_str(const char *s, size_t len)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    event ev;
    codec_error err;
    arena_reset(&fuzz_mem);
    if (codec_decode(fuzz_dec, data, size, &fuzz_mem, &ev, &err) == 0) {
        FUZZ_CHECK(ev.entity != NULL);
        FUZZ_CHECK((unsigned)ev.change < CHANGE__COUNT);
        for (size_t i = 0; i < ev.n_record_ids; i++)
            check_str(ev.record_ids[i], strlen(ev.record_ids[i]));
        for (size_t i = 0; i < ev.n_changed_fields; i++)
            FUZZ_CHECK(ev.changed_fields[i] != NULL);
        for (size_t i = 0; i < ev.n_nulled_fields; i++)
            FUZZ_CHECK(ev.nulled_fields[i] != NULL);
        for (size_t i = 0; i < ev.n_fields; i++) {
            FUZZ_CHECK(ev.fields[i].name != NULL);
            FUZZ_CHECK(ev.fields[i].val.type != VAL_NULL);
            if (ev.fields[i].val.type == VAL_STR)
                check_str(ev.fields[i].val.s, ev.fields[i].val.len);
        }
    } else {
        FUZZ_CHECK(err.kind > CODEC_OK && err.kind < CODEC_ERR__COUNT);
        FUZZ_CHECK(err.msg[0] != '\0');
        FUZZ_CHECK(err.offset <= size);
    }
    if (codec_command_value_to_json(data, size, &fuzz_out, &err) == 0) {
        if (size && data[0] != '{') { /* pass-through JSON is not ours to check */
            json_t *j = json_loadb(fuzz_out.data, fuzz_out.len, 0, NULL);
            FUZZ_CHECK(j != NULL);
            json_decref(j);
        }
    } else {
        FUZZ_CHECK(err.kind > CODEC_OK && err.kind < CODEC_ERR__COUNT);
        FUZZ_CHECK(err.offset <= size);
    }
    return 0;
}
