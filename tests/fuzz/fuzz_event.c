/* libFuzzer target for the JSON change-event reader (internal/event: event_from_json,
 * json_reader.c). The layout is built once from the bundled schema; each input is read as one line,
 * and, when it holds a '\n', each of its lines on its own (each in an exactly sized copy, so that
 * reading past a line's end is an ASan report). The arena is reset before every call. Besides the
 * sanitizers it checks what event.h, value.h and util.h promise for every input:
 *   - a failure leaves a non-empty, NUL-terminated message in perr;
 *   - a success has an entity; a User event a change type in range, its payload marked as changes
 *     (R1.3); an event of another entity nothing but its header (no field lists, no fields);
 *   - every count has its array and every entry a C string; VAL_STR values are NUL-terminated
 *     with len == strlen; no field list entry is still an unexpanded "0x..." bitmap;
 *   - the source has no topic outside Kafka;
 *   - event_to_json of the event writes one line of JSON (jansson parses it). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "fuzz.h"

static event_layout *fuzz_layout;
static arena fuzz_mem;
static buf fuzz_out;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    perr err;
    const char *avsc = event_default_schema_avsc();
    if (event_layout_from_avsc(avsc, strlen(avsc), &fuzz_layout, &err) < 0) {
        fprintf(stderr, "fuzz_event: setup: %s\n", err.msg);
        abort();
    }
    arena_init(&fuzz_mem, 0);
    buf_init(&fuzz_out);
    return 0;
}

/* A C string: strlen stops inside its allocation (ASan says otherwise). */
static size_t check_cstr(const char *s)
{
    FUZZ_CHECK(s != NULL);
    return strlen(s);
}

static void check_names(const char *const *names, size_t n)
{
    FUZZ_CHECK(n == 0 || names != NULL);
    for (size_t i = 0; i < n; i++) {
        check_cstr(names[i]);
        /* "0x..." is always a bitmap: expanded to layout names or an error, never kept */
        FUZZ_CHECK(!(names[i][0] == '0' && (names[i][1] == 'x' || names[i][1] == 'X')));
    }
}

static void check_event(const event *ev)
{
    check_cstr(ev->entity);
    bool user = event_is_user(ev);
    FUZZ_CHECK((unsigned)ev->change <= CHANGE__COUNT);
    FUZZ_CHECK(!user || (unsigned)ev->change < CHANGE__COUNT);
    FUZZ_CHECK(ev->n_record_ids == 0 || ev->record_ids != NULL);
    for (size_t i = 0; i < ev->n_record_ids; i++)
        check_cstr(ev->record_ids[i]);
    check_names(ev->changed_fields, ev->n_changed_fields);
    check_names(ev->nulled_fields, ev->n_nulled_fields);
    check_names(ev->diff_fields, ev->n_diff_fields);
    if (ev->transaction_key) check_cstr(ev->transaction_key);
    if (ev->commit_user) check_cstr(ev->commit_user);
    if (ev->change_origin) check_cstr(ev->change_origin);
    FUZZ_CHECK(ev->source.topic == NULL);
    if (ev->source.replay_id) check_cstr(ev->source.replay_id);
    FUZZ_CHECK(ev->n_fields == 0 || ev->fields != NULL);
    for (size_t i = 0; i < ev->n_fields; i++) {
        const event_field *f = &ev->fields[i];
        check_cstr(f->name);
        FUZZ_CHECK((unsigned)f->val.type <= VAL_STR);
        if (f->val.type == VAL_STR) FUZZ_CHECK(check_cstr(f->val.s) == f->val.len);
    }
    if (user) {
        FUZZ_CHECK(ev->payload_marks_changes);
    } else {
        /* R1.1: only the header of another entity's event is read */
        FUZZ_CHECK(ev->n_changed_fields == 0 && ev->n_nulled_fields == 0 &&
                   ev->n_diff_fields == 0 && ev->n_fields == 0);
    }
    (void)event_is_org_wide(ev);

    buf_reset(&fuzz_out);
    event_to_json(ev, fuzz_layout, &fuzz_out);
    FUZZ_CHECK(fuzz_out.len > 0 && memchr(fuzz_out.data, '\n', fuzz_out.len) == NULL);
    json_error_t jerr;
    json_t *j = json_loadb(fuzz_out.data, fuzz_out.len, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!j)
        fprintf(stderr, "fuzz_event: event_to_json wrote invalid JSON (%s): %.*s\n", jerr.text,
                (int)fuzz_out.len, fuzz_out.data);
    FUZZ_CHECK(j != NULL);
    json_decref(j);
}

static void read_one(const char *line, size_t len)
{
    event ev;
    perr err;
    err.msg[0] = '\0';
    arena_reset(&fuzz_mem);
    if (event_from_json(line, len, fuzz_layout, &fuzz_mem, &ev, &err) == 0) {
        check_event(&ev);
    } else {
        FUZZ_CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        FUZZ_CHECK(err.msg[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_one((const char *)data, size);
    if (!memchr(data, '\n', size)) return 0;
    const uint8_t *p = data, *end = data + size;
    while (p <= end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        char *copy = malloc(n ? n : 1);
        if (n) memcpy(copy, p, n);
        read_one(copy, n);
        free(copy);
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}
