/* internal/event: the JSON-lines reader (interfaces.md "Change events as JSON lines"), the bitmap
 * expansion ("Bitmaps") with the bundled layout, event_to_json, and a differential check of the
 * hand-written reader against a jansson-based reference over every scenario line. */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

static arena g_mem;

static void suite_init(void) { arena_init(&g_mem, 4096); }
static void suite_fini(void) { arena_free(&g_mem); }

TestSuite(event, .init = suite_init, .fini = suite_fini);

/* A header with the three members every event needs, then `rest` (",..." header members) and
 * `payload` (",..." payload members). */
#define EV(rest, payload)                                                                          \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"                    \
    "\"changeType\":\"UPDATE\"" rest "}" payload "}"

static event parse(const char *line)
{
    event ev;
    perr err;
    int rc = event_from_json(line, strlen(line), NULL, &g_mem, &ev, &err);
    cr_assert_eq(rc, 0, "%s: %s", line, rc ? err.msg : "");
    return ev;
}

static void parse_fails(const char *line, const char *msg)
{
    event ev;
    perr err;
    cr_assert_eq(event_from_json(line, strlen(line), NULL, &g_mem, &ev, &err), -1, "%s parsed",
                 line);
    cr_assert_str_eq(err.msg, msg, "%s", line);
}

static const event_field *field_at(const event *ev, size_t i)
{
    cr_assert_lt(i, ev->n_fields, "only %zu fields", ev->n_fields);
    return &ev->fields[i];
}

static void assert_str_field(const event *ev, size_t i, const char *name, const char *val)
{
    const event_field *f = field_at(ev, i);
    cr_assert_str_eq(f->name, name);
    cr_assert_eq(f->val.type, VAL_STR, "%s is not a string", name);
    cr_assert_str_eq(f->val.s, val);
    cr_assert_eq(f->val.len, strlen(val));
}

static void assert_null_field(const event *ev, size_t i, const char *name)
{
    const event_field *f = field_at(ev, i);
    cr_assert_str_eq(f->name, name);
    cr_assert_eq(f->val.type, VAL_NULL, "%s is not null", name);
}

static void assert_num_field(const event *ev, size_t i, const char *name, double num)
{
    const event_field *f = field_at(ev, i);
    cr_assert_str_eq(f->name, name);
    cr_assert_eq(f->val.type, VAL_NUM, "%s is not a number", name);
    cr_assert(memcmp(&f->val.num, &num, sizeof num) == 0, "%s = %.17g, expected %.17g", name,
              f->val.num, num);
}

/* ---------------------------------------------------------------- the header (R1.1) */

Test(event, header_every_member_from_the_spec_example)
{
    event ev = parse(
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e000001AbCdAAK\"],"
        "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\",\"LastModifiedDate\"],"
        "\"nulledFields\":[\"Phone\"],\"diffFields\":[\"AboutMe\"],\"transactionKey\":\"0004b1a6-"
        "x\","
        "\"sequenceNumber\":1,\"commitTimestamp\":1764000000000,\"commitNumber\":1000001,"
        "\"commitUser\":\"0055e000000AdminAAC\",\"changeOrigin\":\"\"},"
        "\"Title\":\"Account Executive\",\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\"}");
    cr_assert_str_eq(ev.entity, "User");
    cr_assert_eq(ev.change, CHANGE_UPDATE);
    cr_assert_eq(ev.n_record_ids, 1);
    cr_assert_str_eq(ev.record_ids[0], "0055e000001AbCdAAK");
    cr_assert_eq(ev.n_changed_fields, 2);
    cr_assert_str_eq(ev.changed_fields[0], "Title");
    cr_assert_str_eq(ev.changed_fields[1], "LastModifiedDate");
    cr_assert_eq(ev.n_nulled_fields, 1);
    cr_assert_str_eq(ev.nulled_fields[0], "Phone");
    cr_assert_eq(ev.n_diff_fields, 1);
    cr_assert_str_eq(ev.diff_fields[0], "AboutMe");
    cr_assert_str_eq(ev.transaction_key, "0004b1a6-x");
    cr_assert_eq(ev.sequence_number, 1);
    cr_assert_eq(ev.commit_timestamp, 1764000000000LL);
    cr_assert_eq(ev.commit_number, 1000001);
    cr_assert_str_eq(ev.commit_user, "0055e000000AdminAAC");
    cr_assert_str_eq(ev.change_origin, "");
    cr_assert(ev.payload_marks_changes, "R1.3: a JSON payload marks its fields changed");
    cr_assert_null(ev.source.topic);
    cr_assert_eq(ev.source.partition, -1);
    cr_assert_eq(ev.source.offset, -1);
    cr_assert_null(ev.source.replay_id);
    cr_assert_eq(ev.n_fields, 2);
    assert_str_field(&ev, 0, "Title", "Account Executive");
    assert_str_field(&ev, 1, "LastModifiedDate", "2026-11-25T10:00:00.000Z");
}

Test(event, header_optional_members_absent_null_or_not_strings)
{
    event ev = parse(EV(",\"transactionKey\":5,\"commitUser\":null,\"changedFields\":null", ""));
    cr_assert_null(ev.transaction_key, "a number is not a transaction key");
    cr_assert_null(ev.commit_user);
    cr_assert_null(ev.change_origin, "absent");
    cr_assert_eq(ev.n_changed_fields, 0);
    cr_assert_eq(ev.n_nulled_fields, 0);
    cr_assert_eq(ev.n_diff_fields, 0);
    cr_assert_eq(ev.sequence_number, 0, "absent long is 0");
    cr_assert_eq(ev.commit_timestamp, 0);
    cr_assert_eq(ev.commit_number, 0);
    cr_assert_eq(ev.n_fields, 0);
    cr_assert_null(ev.fields);
}

Test(event, header_longs_null_are_zero_and_extremes_are_kept)
{
    event ev = parse(EV(",\"sequenceNumber\":null,\"commitTimestamp\":9223372036854775807,"
                        "\"commitNumber\":-9223372036854775808",
                        ""));
    cr_assert_eq(ev.sequence_number, 0);
    cr_assert_eq(ev.commit_timestamp, INT64_MAX);
    cr_assert_eq(ev.commit_number, INT64_MIN);
}

Test(event, header_quoted_longs_are_read_as_strtoll_reads_them)
{
    event ev = parse(EV(",\"sequenceNumber\":\"12\",\"commitTimestamp\":\"1764000000000\","
                        "\"commitNumber\":\" +7\"",
                        ""));
    cr_assert_eq(ev.sequence_number, 12);
    cr_assert_eq(ev.commit_timestamp, 1764000000000LL);
    cr_assert_eq(ev.commit_number, 7, "leading space and sign, as strtoll");
}

Test(event, header_long_of_the_wrong_type_is_an_error)
{
    parse_fails(EV(",\"commitNumber\":1.5", ""),
                "ChangeEventHeader.commitNumber is not an integer");
    parse_fails(EV(",\"commitTimestamp\":\"12x\"", ""),
                "ChangeEventHeader.commitTimestamp is not an integer");
    parse_fails(EV(",\"sequenceNumber\":\"\"", ""),
                "ChangeEventHeader.sequenceNumber is not an integer");
    parse_fails(EV(",\"sequenceNumber\":true", ""),
                "ChangeEventHeader.sequenceNumber is not an integer");
    parse_fails(EV(",\"commitNumber\":[1]", ""),
                "ChangeEventHeader.commitNumber is not an integer");
}

Test(event, header_every_change_type)
{
    for (int t = 0; t < CHANGE__COUNT; t++) {
        char line[256];
        snprintf(line, sizeof line,
                 "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                 "\"changeType\":\"%s\"}}",
                 change_type_name((change_type)t));
        event ev = parse(line);
        cr_assert_eq(ev.change, (change_type)t, "%s", line);
        change_type back;
        cr_assert_eq(change_type_parse(change_type_name((change_type)t), &back), 0);
        cr_assert_eq(back, (change_type)t);
    }
    change_type x;
    cr_assert_eq(change_type_parse("update", &x), -1, "change types are upper case");
    cr_assert_str_eq(change_type_name(CHANGE__COUNT), "UNKNOWN");
}

Test(event, header_entity_and_change_type_are_required_strings)
{
    parse_fails("{\"ChangeEventHeader\":{\"recordIds\":[\"005A\"],\"changeType\":\"CREATE\"}}",
                "ChangeEventHeader.entityName is missing");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":7,\"changeType\":\"CREATE\"}}",
                "ChangeEventHeader.entityName must be a string");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":[\"CREATE\"]}}",
                "ChangeEventHeader.changeType must be a string");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"]}}",
                "ChangeEventHeader.changeType is missing");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":null}}",
                "ChangeEventHeader.changeType is missing");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"MERGE\"}}",
                "ChangeEventHeader.changeType 'MERGE' is not a change type");
}

/* R1.1 "never an error": another object's header follows its own schema (bitmaps past the User
 * schema's fields, no recordIds, a change type of its own), so nothing past its entity is read. */
Test(event, another_entity_is_read_no_further_than_its_entity)
{
    event ev = parse("{\"ChangeEventHeader\":{\"entityName\":\"Account\",\"recordIds\":[\"001A\"],"
                     "\"changeType\":\"UPDATE\",\"changedFields\":[\"0x200000000000\",\"3-0x01\"]},"
                     "\"Name\":\"Acme\"}");
    cr_assert_str_eq(ev.entity, "Account");
    cr_assert_not(event_is_user(&ev));
    cr_assert_eq(ev.change, CHANGE_UPDATE);
    cr_assert_eq(ev.n_record_ids, 1, "its ids are kept (produce-events keys by them)");
    cr_assert_str_eq(ev.record_ids[0], "001A");
    cr_assert_eq(ev.n_changed_fields, 0, "another object's bitmaps are not read");
    cr_assert_eq(ev.n_fields, 0);
    ev = parse("{\"ChangeEventHeader\":{\"entityName\":\"Opportunity\",\"changeType\":\"MERGE\","
               "\"commitTimestamp\":\"later\"}}");
    cr_assert_eq(ev.change, CHANGE__COUNT, "an unknown change type is no change type");
    cr_assert_eq(ev.commit_timestamp, 0, "a position that does not read is none");
    cr_assert_eq(ev.n_record_ids, 0);
    ev = parse(
        "{\"ChangeEventHeader\":{\"entityName\":\"Account\",\"changeType\":\"GAP_OVERFLOW\"}}");
    cr_assert_eq(ev.change, CHANGE_GAP_OVERFLOW, "counted by change type, then skipped");
    cr_assert(event_is_user(&(event){.entity = "User"}));
    cr_assert_not(event_is_user(&(event){.entity = "user"}), "entity names are case-sensitive");
    cr_assert_not(event_is_user(&(event){.entity = NULL}));
    /* the entity itself is still required */
    parse_fails("{\"ChangeEventHeader\":{\"changeType\":\"UPDATE\"}}",
                "ChangeEventHeader.entityName is missing");
}

Test(event, header_record_ids_in_order_and_checked)
{
    event ev = parse("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"UPDATE\","
                     "\"recordIds\":[\"005B\",\"005A\",\"005C\"]}}");
    cr_assert_eq(ev.n_record_ids, 3);
    cr_assert_str_eq(ev.record_ids[0], "005B");
    cr_assert_str_eq(ev.record_ids[1], "005A");
    cr_assert_str_eq(ev.record_ids[2], "005C");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"UPDATE\"}}",
                "ChangeEventHeader.recordIds is missing");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"UPDATE\","
                "\"recordIds\":\"005A\"}}",
                "ChangeEventHeader.recordIds must be an array of strings");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"UPDATE\","
                "\"recordIds\":[\"005A\",5]}}",
                "ChangeEventHeader.recordIds[1] is not a string");
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"UPDATE\","
                "\"recordIds\":[\"005A\",\"\"]}}",
                "ChangeEventHeader.recordIds[1] is empty");
}

Test(event, header_gap_overflow_needs_no_record_ids)
{
    event ev = parse("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":"
                     "\"GAP_OVERFLOW\"}}");
    cr_assert_eq(ev.change, CHANGE_GAP_OVERFLOW);
    cr_assert_eq(ev.n_record_ids, 0);
    parse_fails("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"GAP_OVERFLOW\","
                "\"recordIds\":\"x\"}}",
                "ChangeEventHeader.recordIds is not an array");
}

Test(event, org_wide_events_are_overflows_and_wildcard_record_ids)
{
    /* R1.3 GAP_OVERFLOW, and R1.2 recordIds "005*" (every User, after a custom field's type
     * conversion): no user is named, the whole org is reconciled */
    static const struct {
        const char *entity, *change, *ids;
        bool want;
        const char *why;
    } cases[] = {
        {"User", "GAP_OVERFLOW", "", true, "an overflow"},
        {"User", "UPDATE", "\"005*\"", true, "a wildcard"},
        {"User", "UPDATE", "\"0055e0000000001AAK\",\"005*\"", true, "anywhere in the list"},
        {"User", "UPDATE", "\"0055e0000000001AAK\",\"0055*e\"", false, "a '*' inside an id"},
        {"User", "UPDATE", "\"05*\",\"0055*\"", false, "not after a three-character prefix"},
        {"Account", "UPDATE", "\"001*\"", false, "another object's event (R1.1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"ChangeEventHeader\":{\"entityName\":\"%s\",\"changeType\":\"%s\","
                 "\"recordIds\":[%s]}}",
                 cases[i].entity, cases[i].change, cases[i].ids);
        event ev = parse(json);
        cr_assert_eq(event_is_org_wide(&ev), cases[i].want, "%s", cases[i].why);
    }
}

Test(event, header_field_lists_must_be_arrays_of_strings)
{
    parse_fails(EV(",\"changedFields\":\"Title\"", ""),
                "ChangeEventHeader.changedFields is not an array");
    parse_fails(EV(",\"nulledFields\":[\"Title\",null]", ""),
                "ChangeEventHeader.nulledFields[1] is not a string");
    parse_fails(EV(",\"diffFields\":{}", ""), "ChangeEventHeader.diffFields is not an array");
}

Test(event, header_repeated_member_last_one_wins)
{
    event ev = parse("{\"ChangeEventHeader\":{\"entityName\":\"Account\",\"recordIds\":[\"1\"],"
                     "\"changeType\":\"CREATE\",\"entityName\":\"User\",\"recordIds\":[\"2\"],"
                     "\"commitNumber\":1,\"commitNumber\":2}}");
    cr_assert_str_eq(ev.entity, "User");
    cr_assert_str_eq(ev.record_ids[0], "2");
    cr_assert_eq(ev.commit_number, 2);
}

Test(event, missing_or_malformed_header_is_an_error)
{
    parse_fails("{\"Title\":\"x\"}", "the event has no ChangeEventHeader object");
    parse_fails("{\"ChangeEventHeader\":[],\"Title\":\"x\"}",
                "the event has no ChangeEventHeader object");
    parse_fails("{\"changeEventHeader\":{\"entityName\":\"User\"}}",
                "the event has no ChangeEventHeader object");
    parse_fails("[1,2]", "an event is a JSON object");
    parse_fails("\"User\"", "an event is a JSON object");
    parse_fails(" 42 ", "an event is a JSON object");
}

/* ---------------------------------------------------------------- the two message forms */

#define MSG(data) "{\"channel\":\"/data/UserChangeEvent\",\"data\":" data "}"
#define PAYLOAD                                                                                    \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"                    \
    "\"changeType\":\"CREATE\",\"commitNumber\":3},\"Title\":\"CEO\"}"

Test(event, streaming_message_with_integer_replay_id)
{
    event ev = parse(MSG("{\"schema\":\"abc\",\"payload\":" PAYLOAD ",\"event\":{\"replayId\":"
                         "123456789012}}"));
    cr_assert_eq(ev.change, CHANGE_CREATE);
    cr_assert_eq(ev.commit_number, 3);
    cr_assert_str_eq(ev.source.replay_id, "123456789012");
    cr_assert_eq(ev.n_fields, 1, "only the payload's fields");
    assert_str_field(&ev, 0, "Title", "CEO");
}

Test(event, streaming_message_replay_id_forms)
{
    event ev = parse(MSG("{\"payload\":" PAYLOAD ",\"event\":{\"replayId\":\"00017\"}}"));
    cr_assert_str_eq(ev.source.replay_id, "00017", "a string is kept as it is");
    ev = parse(MSG("{\"payload\":" PAYLOAD ",\"event\":{\"replayId\":-5}}"));
    cr_assert_str_eq(ev.source.replay_id, "-5");
    ev = parse(MSG("{\"payload\":" PAYLOAD ",\"event\":{\"replayId\":1.5}}"));
    cr_assert_null(ev.source.replay_id, "a real is not a replay id");
    ev = parse(MSG("{\"payload\":" PAYLOAD ",\"event\":{}}"));
    cr_assert_null(ev.source.replay_id);
    ev = parse(MSG("{\"event\":{\"replayId\":9},\"payload\":" PAYLOAD "}"));
    cr_assert_str_eq(ev.source.replay_id, "9", "member order does not matter");
    ev = parse(MSG("{\"payload\":" PAYLOAD ",\"event\":5}"));
    cr_assert_null(ev.source.replay_id);
}

Test(event, data_without_an_object_payload_is_the_payload_form)
{
    /* data.payload is not an object: the message itself is read as the payload */
    event ev =
        parse("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
              "\"changeType\":\"UPDATE\"},\"data\":{\"payload\":5,\"event\":{\"replayId\":1}}}");
    cr_assert_null(ev.source.replay_id);
    cr_assert_eq(ev.n_fields, 1);
    cr_assert_str_eq(ev.fields[0].name, "payload", "the object data flattened into its parts");
    cr_assert_eq(ev.fields[0].val.num, 5);
    parse_fails(MSG("{\"payload\":[]}"), "the event has no ChangeEventHeader object");
}

/* ---------------------------------------------------------------- payload fields (R1.3) */

Test(event, compound_fields_are_flattened_into_their_parts)
{
    event ev =
        parse(EV("", ",\"Title\":\"AE\",\"Name\":{\"Salutation\":null,\"FirstName\":\"Olga\","
                     "\"LastName\":\"Brown\"},\"Address\":{\"City\":\"Paris\",\"Country\":"
                     "\"FR\"},\"Phone\":\"1\""));
    cr_assert_eq(ev.n_fields, 7);
    assert_str_field(&ev, 0, "Title", "AE");
    assert_null_field(&ev, 1, "Salutation");
    assert_str_field(&ev, 2, "FirstName", "Olga");
    assert_str_field(&ev, 3, "LastName", "Brown");
    assert_str_field(&ev, 4, "City", "Paris");
    assert_str_field(&ev, 5, "Country", "FR");
    assert_str_field(&ev, 6, "Phone", "1");
}

Test(event, objects_inside_a_compound_are_dropped)
{
    event ev =
        parse(EV("", ",\"Name\":{\"FirstName\":\"A\",\"Inner\":{\"x\":1},\"LastName\":\"B\"},"
                     "\"Empty\":{}"));
    cr_assert_eq(ev.n_fields, 2);
    assert_str_field(&ev, 0, "FirstName", "A");
    assert_str_field(&ev, 1, "LastName", "B");
}

Test(event, compound_set_to_null_nulls_each_of_its_parts)
{
    event ev = parse(EV("", ",\"Title\":\"AE\",\"Name\":null,\"Address\":null"));
    cr_assert_eq(ev.n_fields, 1 + 3 + 7);
    assert_str_field(&ev, 0, "Title", "AE");
    assert_null_field(&ev, 1, "Salutation");
    assert_null_field(&ev, 2, "FirstName");
    assert_null_field(&ev, 3, "LastName");
    const char *address[] = {"Street",  "City",      "State",      "PostalCode",
                             "Country", "StateCode", "CountryCode"};
    for (size_t i = 0; i < 7; i++)
        assert_null_field(&ev, 4 + i, address[i]);
}

Test(event, compound_null_rule_follows_the_layout_and_exact_names)
{
    /* "name" is not the compound Name (payload keys are exact API names); Title is no compound */
    event ev = parse(EV("", ",\"name\":null,\"Title\":null"));
    cr_assert_eq(ev.n_fields, 2);
    assert_null_field(&ev, 0, "name");
    assert_null_field(&ev, 1, "Title");
    /* a layout whose compound is Home with parts A and B */
    static const char avsc[] =
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"ChangeEventHeader\",\"type\":"
        "\"string\"},{\"name\":\"Home\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"H\","
        "\"fields\":[{\"name\":\"A\",\"type\":\"string\"},{\"name\":\"B\",\"type\":\"string\"}]}]},"
        "{\"name\":\"Name\",\"type\":\"string\"}]}";
    event_layout *l;
    perr err;
    cr_assert_eq(event_layout_from_avsc(avsc, strlen(avsc), &l, &err), 0, "%s", err.msg);
    const char *line = EV("", ",\"Home\":null,\"Name\":null");
    cr_assert_eq(event_from_json(line, strlen(line), l, &g_mem, &ev, &err), 0, "%s", err.msg);
    event_layout_free(l); /* the event keeps copies of the part names */
    cr_assert_eq(ev.n_fields, 3);
    assert_null_field(&ev, 0, "A");
    assert_null_field(&ev, 1, "B");
    assert_null_field(&ev, 2, "Name");
}

Test(event, explicit_nulls_and_booleans_are_kept)
{
    event ev = parse(EV("", ",\"MobilePhone\":null,\"IsActive\":true,\"ForecastEnabled\":false"));
    cr_assert_eq(ev.n_fields, 3);
    assert_null_field(&ev, 0, "MobilePhone");
    cr_assert_eq(ev.fields[1].val.type, VAL_BOOL);
    cr_assert(ev.fields[1].val.b);
    cr_assert_eq(ev.fields[2].val.type, VAL_BOOL);
    cr_assert_not(ev.fields[2].val.b);
}

Test(event, numbers_integer_negative_real_exponent)
{
    event ev = parse(EV("", ",\"a\":0,\"b\":-17,\"c\":3.25,\"d\":-1.5e3,\"e\":2E-2,\"f\":1e+2,"
                            "\"g\":-0,\"h\":-0.0,\"i\":9007199254740993,\"j\":0.1,\"k\":1e-400"));
    assert_num_field(&ev, 0, "a", 0);
    assert_num_field(&ev, 1, "b", -17);
    assert_num_field(&ev, 2, "c", 3.25);
    assert_num_field(&ev, 3, "d", -1500);
    assert_num_field(&ev, 4, "e", 0.02);
    assert_num_field(&ev, 5, "f", 100);
    assert_num_field(&ev, 6, "g", 0.0); /* the integer -0 is 0 */
    assert_num_field(&ev, 7, "h", -0.0);
    assert_num_field(&ev, 8, "i", (double)9007199254740993LL); /* through int64, as before */
    assert_num_field(&ev, 9, "j", 0.1);
    assert_num_field(&ev, 10, "k", 0.0); /* underflow is not an error */
}

Test(event, arrays_are_kept_as_compact_json_text)
{
    event ev = parse(
        EV("", ",\"Tags\":[ 1 , \"a\\\"b\" , {\"k\" : [true,null]} , [] , {} ],"
               "\"Reals\":[1.5,1e17,0.1,-0.0,2.0,1E300,1e-7],\"Text\":[\"\\u001f\\t/\\u00e9\"]"));
    cr_assert_eq(ev.n_fields, 3);
    assert_str_field(&ev, 0, "Tags", "[1,\"a\\\"b\",{\"k\":[true,null]},[],{}]");
    /* reals as jansson wrote them: %.17g, ".0" for whole numbers, no '+' in the exponent */
    assert_str_field(&ev, 1, "Reals",
                     "[1.5,1e17,0.10000000000000001,-0.0,2.0,1.0000000000000001e300,"
                     "9.9999999999999995e-8]");
    assert_str_field(&ev, 2, "Text", "[\"\\u001F\\t/\xc3\xa9\"]");
}

Test(event, repeated_key_keeps_its_place_and_takes_the_last_value)
{
    event ev =
        parse(EV("", ",\"Title\":\"a\",\"Phone\":\"p\",\"Title\":\"b\",\"Tags\":[{\"x\":1,"
                     "\"y\":2,\"x\":3}],\"Name\":{\"FirstName\":\"A\",\"FirstName\":\"B\"}"));
    cr_assert_eq(ev.n_fields, 4);
    assert_str_field(&ev, 0, "Title", "b");
    assert_str_field(&ev, 1, "Phone", "p");
    assert_str_field(&ev, 2, "Tags", "[{\"x\":3,\"y\":2}]");
    assert_str_field(&ev, 3, "FirstName", "B");
}

Test(event, many_keys_with_repeats_go_through_the_hash_table)
{
    /* more than eight members, so the duplicate check uses its table, not pairs */
    char line[4096];
    int n = snprintf(line, sizeof line, "%s", EV("", ""));
    n--; /* drop the closing brace */
    for (int i = 0; i < 40; i++)
        n += snprintf(line + n, sizeof line - n, ",\"F%d\":%d", i, i);
    for (int i = 0; i < 40; i += 3)
        n += snprintf(line + n, sizeof line - n, ",\"F%d\":-%d", i, i);
    snprintf(line + n, sizeof line - n, "}");
    event ev = parse(line);
    cr_assert_eq(ev.n_fields, 40);
    for (int i = 0; i < 40; i++) {
        char name[8];
        snprintf(name, sizeof name, "F%d", i);
        assert_num_field(&ev, (size_t)i, name, i % 3 ? i : -i);
    }
}

Test(event, header_is_not_a_field_and_order_is_kept)
{
    event ev =
        parse("{\"Z\":1,\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"1\"],"
              "\"changeType\":\"CREATE\"},\"A\":2,\"M\":3}");
    cr_assert_eq(ev.n_fields, 3);
    assert_num_field(&ev, 0, "Z", 1);
    assert_num_field(&ev, 1, "A", 2);
    assert_num_field(&ev, 2, "M", 3);
}

Test(event, string_escapes)
{
    event ev = parse(EV("", ",\"s\":\"q\\\"b\\\\s\\/b\\bf\\fn\\nr\\rt\\t.\""));
    assert_str_field(&ev, 0, "s", "q\"b\\s/b\bf\fn\nr\rt\t.");
}

Test(event, unicode_escapes_and_surrogate_pairs_become_utf8)
{
    event ev = parse(EV("", ",\"a\":\"\\u0041\\u00e9\\u00E9\",\"b\":\"\\u20ac\",\"c\":"
                            "\"x\\uD83D\\uDE00y\",\"d\":\"\\ud834\\udd1e\",\"\\u004eame\":\"k\""));
    assert_str_field(&ev, 0, "a", "A\xc3\xa9\xc3\xa9");
    assert_str_field(&ev, 1, "b", "\xe2\x82\xac");
    assert_str_field(&ev, 2, "c", "x\xf0\x9f\x98\x80y");
    assert_str_field(&ev, 3, "d", "\xf0\x9d\x84\x9e");
    assert_str_field(&ev, 4, "Name", "k"); /* keys are decoded too */
}

Test(event, raw_utf8_passes_through_with_byte_lengths)
{
    event ev = parse(EV("", ",\"LastName\":\"M\xc3\xbcller \xe2\x82\xac \xf0\x9f\x98\x80\""));
    assert_str_field(&ev, 0, "LastName", "M\xc3\xbcller \xe2\x82\xac \xf0\x9f\x98\x80");
    cr_assert_eq(ev.fields[0].val.len, 16);
}

Test(event, white_space_between_tokens)
{
    event ev = parse(" \t\r\n{ \"ChangeEventHeader\" :\t{\"entityName\" : \"User\" , \"recordIds\""
                     " : [ \"005A\" ] , \"changeType\":\"DELETE\" } ,\r\n\"Title\" : \"x\" }\n ");
    cr_assert_eq(ev.change, CHANGE_DELETE);
    assert_str_field(&ev, 0, "Title", "x");
}

Test(event, only_len_bytes_are_read)
{
    /* the line is not NUL-terminated where len ends; exactly len bytes on the heap for ASan */
    const char *src = EV("", ",\"Title\":\"x\"") "GARBAGE";
    size_t len = strlen(src) - strlen("GARBAGE");
    char *line = malloc(len);
    memcpy(line, src, len);
    event ev;
    perr err;
    cr_assert_eq(event_from_json(line, len, NULL, &g_mem, &ev, &err), 0, "%s", err.msg);
    assert_str_field(&ev, 0, "Title", "x");
    /* one byte less: the input ends where the closing brace was, column len */
    cr_assert_eq(event_from_json(line, len - 1, NULL, &g_mem, &ev, &err), -1);
    char want[128];
    snprintf(want, sizeof want,
             "column %zu: invalid JSON: unexpected end of input, expected ',' or '}'", len);
    cr_assert_str_eq(err.msg, want);
    free(line);
}

Test(event, strings_of_every_length_around_the_word_size)
{
    /* the string scanner reads eight bytes at a time: put the special byte at every offset */
    for (size_t len = 0; len < 40; len++) {
        for (size_t at = 0; at <= len; at++) {
            char s[64] = {0}, line[256];
            for (size_t i = 0; i < len; i++)
                s[i] = (char)('a' + i % 26);
            if (at < len) s[at] = '~';
            snprintf(line, sizeof line, EV("", ",\"T\":\"%s\""), s);
            event ev = parse(line);
            assert_str_field(&ev, 0, "T", s);
        }
    }
}

/* ---------------------------------------------------------------- invalid JSON, with columns */

Test(event, error_truncated_line)
{
    parse_fails("{\"ChangeEventHeader\":{",
                "column 23: invalid JSON: unexpected end of input, expected a string key");
    parse_fails("{\"a\":", "column 6: invalid JSON: unexpected end of input, expected a value");
    parse_fails("{\"a\":1", "column 7: invalid JSON: unexpected end of input, expected ',' or '}'");
    parse_fails("[1,2", "column 5: invalid JSON: unexpected end of input, expected ',' or ']'");
    parse_fails("", "column 1: invalid JSON: unexpected end of input, expected a value");
    parse_fails("   ", "column 4: invalid JSON: unexpected end of input, expected a value");
}

Test(event, error_trailing_garbage)
{
    parse_fails("{\"a\":1} x", "column 9: invalid JSON: unexpected 'x' after the JSON value");
    parse_fails("{\"a\":1}{}", "column 8: invalid JSON: unexpected '{' after the JSON value");
    parse_fails("{\"a\":1}\x01",
                "column 8: invalid JSON: unexpected byte 0x01 after the JSON value");
}

Test(event, error_bad_escape)
{
    parse_fails("{\"a\":\"b\\xc\"}", "column 8: invalid JSON: invalid escape '\\' followed by 'x'");
    parse_fails("{\"a\":\"\\u12G4\"}",
                "column 7: invalid JSON: invalid \\u escape: four hex digits expected");
    parse_fails("{\"a\":\"\\u12\"}",
                "column 7: invalid JSON: invalid \\u escape: four hex digits expected");
    parse_fails("{\"a\":\"x\\", "column 8: invalid JSON: unterminated escape");
}

Test(event, error_unterminated_string)
{
    parse_fails("{\"a\":\"bc", "column 6: invalid JSON: unterminated string");
    parse_fails("{\"ab", "column 2: invalid JSON: unterminated string");
    parse_fails("{\"a\":\"b\\\"}", "column 6: invalid JSON: unterminated string");
}

Test(event, error_surrogates_and_nul)
{
    parse_fails("{\"a\":\"\\ud800\"}",
                "column 7: invalid JSON: high surrogate \\uD800 not followed by a low one");
    parse_fails("{\"a\":\"\\ud800\\u0041\"}",
                "column 7: invalid JSON: high surrogate \\uD800 not followed by a low one");
    parse_fails("{\"a\":\"x\\uDC00\"}", "column 8: invalid JSON: lone low surrogate \\uDC00");
    parse_fails("{\"a\":\"\\u0000\"}", "column 7: invalid JSON: \\u0000 is not allowed");
}

Test(event, error_control_characters_and_bad_utf8)
{
    parse_fails("{\"a\":\"b\tc\"}", "column 8: invalid JSON: control character 0x09 in a string");
    parse_fails("{\"a\":\"b\nc\"}", "column 8: invalid JSON: control character 0x0a in a string");
    parse_fails("{\"a\":\"\xc3\"}", "column 7: invalid JSON: invalid UTF-8 (byte 0xc3)");
    parse_fails("{\"a\":\"\xc0\xaf\"}", "column 7: invalid JSON: invalid UTF-8 (byte 0xc0)");
    parse_fails("{\"a\":\"\xed\xa0\x80\"}", "column 7: invalid JSON: invalid UTF-8 (byte 0xed)");
    parse_fails("{\"a\":\"\xf4\x90\x80\x80\"}",
                "column 7: invalid JSON: invalid UTF-8 (byte 0xf4)");
    parse_fails("{\"a\":\"\x80\"}", "column 7: invalid JSON: invalid UTF-8 (byte 0x80)");
}

Test(event, error_columns_count_characters_not_bytes)
{
    parse_fails("{\"\xc3\xa9\xe2\x82\xac\":x}",
                "column 7: invalid JSON: unexpected 'x', expected a value");
}

Test(event, error_bad_numbers)
{
    parse_fails("{\"a\":01}", "column 6: invalid JSON: invalid number: leading zero");
    parse_fails("{\"a\":-}", "column 6: invalid JSON: invalid number: a digit must follow '-'");
    parse_fails("{\"a\":1.}", "column 6: invalid JSON: invalid number: a digit must follow '.'");
    parse_fails("{\"a\":1e}", "column 6: invalid JSON: invalid number: a digit must follow 'e'");
    parse_fails("{\"a\":.5}", "column 6: invalid JSON: unexpected '.', expected a value");
    parse_fails("{\"a\":+1}", "column 6: invalid JSON: unexpected '+', expected a value");
    parse_fails("{\"a\":9223372036854775808}", "column 6: invalid JSON: integer out of range");
    parse_fails("{\"a\":-9223372036854775809}", "column 6: invalid JSON: integer out of range");
    parse_fails("{\"a\":1e400}", "column 6: invalid JSON: number out of range");
    parse_fails("{\"a\":1.5.2}", "column 9: invalid JSON: unexpected '.', expected ',' or '}'");
}

Test(event, error_bad_literals)
{
    parse_fails("{\"a\":tru}",
                "column 6: invalid JSON: invalid literal (true, false or null expected)");
    parse_fails("{\"a\":truex}",
                "column 6: invalid JSON: invalid literal (true, false or null expected)");
    parse_fails("{\"a\":nul",
                "column 6: invalid JSON: invalid literal (true, false or null expected)");
    parse_fails("{\"a\":True}", "column 6: invalid JSON: unexpected 'T', expected a value");
}

Test(event, error_structure)
{
    parse_fails("{\"a\":1,}", "column 8: invalid JSON: unexpected '}', expected a string key");
    parse_fails("{\"a\":[1,]}", "column 9: invalid JSON: unexpected ']', expected a value");
    parse_fails("{\"a\" 1}", "column 6: invalid JSON: unexpected '1', expected ':'");
    parse_fails("{\"a\":1 \"b\":2}",
                "column 8: invalid JSON: unexpected '\"', expected ',' or '}'");
    parse_fails("{a:1}", "column 2: invalid JSON: unexpected 'a', expected a string key");
    parse_fails("{'a':1}", "column 2: invalid JSON: unexpected ''', expected a string key");
    parse_fails("\xef\xbb\xbf{}", "column 1: invalid JSON: unexpected byte 0xef, expected a value");
    /* a NUL byte is no white space (jansson let one pass after a number) */
    event ev;
    perr err;
    cr_assert_eq(event_from_json("{\"a\":1\0}", 8, NULL, &g_mem, &ev, &err), -1);
    cr_assert_str_eq(err.msg, "column 7: invalid JSON: unexpected byte 0x00, expected ',' or '}'");
}

Test(event, error_nesting_limit)
{
    char line[256];
    /* 32 levels: the event object and 31 arrays inside it */
    int n = snprintf(line, sizeof line, "%s", EV("", ",\"d\":"));
    n--;
    for (int i = 0; i < 31; i++)
        line[n++] = '[';
    for (int i = 0; i < 31; i++)
        line[n++] = ']';
    line[n++] = '}';
    line[n] = '\0';
    event ev = parse(line);
    cr_assert_eq(ev.n_fields, 1);
    cr_assert_eq(ev.fields[0].val.len, 62);
    /* one more is refused, at the bracket that goes too deep */
    n = snprintf(line, sizeof line, "{\"d\":");
    for (int i = 0; i < 32; i++)
        line[n++] = '[';
    line[n] = '\0';
    parse_fails(line, "column 37: invalid JSON: nesting deeper than 32 levels");
}

/* ---------------------------------------------------------------- bitmaps (interfaces.md) */

typedef struct names {
    const char **v;
    size_t n, cap;
} names;

static int expand(const char *entry, names *out, perr *err)
{
    return event_expand_field_entry(event_layout_default(), entry, &g_mem, &out->v, &out->n,
                                    &out->cap, err);
}

static void assert_names(const names *got, const char *const *want, size_t n)
{
    cr_assert_eq(got->n, n, "%zu names, expected %zu", got->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(got->v[i], want[i], "name %zu", i);
}

Test(event, bundled_layout_positions_and_compounds)
{
    const event_layout *l = event_layout_default();
    cr_assert_not_null(event_default_schema_avsc());
    size_t n = event_layout_count(l);
    cr_assert_geq(n, 35, "the bundled schema has at least the standard User fields");
    cr_assert_str_eq(event_layout_name(l, 0), "ChangeEventHeader");
    cr_assert_str_eq(event_layout_name(l, 5), "Title");
    cr_assert_str_eq(event_layout_name(l, 7), "Name");
    cr_assert_str_eq(event_layout_name(l, 30), "SystemModstamp");
    cr_assert_null(event_layout_name(l, n));
    cr_assert_eq(event_layout_part_count(l, 7), 3);
    cr_assert_str_eq(event_layout_part_name(l, 7, 0), "Salutation");
    cr_assert_str_eq(event_layout_part_name(l, 7, 2), "LastName");
    cr_assert_null(event_layout_part_name(l, 7, 3));
    cr_assert_eq(event_layout_part_count(l, 25), 7, "Address");
    cr_assert_eq(event_layout_part_count(l, 5), 0);
    cr_assert_str_eq(event_layout_compound_of(l, "FirstName"), "Name");
    cr_assert_str_eq(event_layout_compound_of(l, "CountryCode"), "Address");
    cr_assert_null(event_layout_compound_of(l, "Title"));
}

/* What each field decodes to, for the filter type hints (soql_type_hints): the Avro type under
 * the nullable union, a logical date or timestamp as text. */
Test(event, layout_value_types_follow_the_avro_types)
{
    const event_layout *l = event_layout_default();
    cr_assert_eq(event_layout_value_type(l, "IsActive"), VAL_BOOL);
    cr_assert_eq(event_layout_value_type(l, "isactive"), VAL_BOOL, "names in any case");
    cr_assert_eq(event_layout_value_type(l, "Quota__c"), VAL_NUM);
    cr_assert_eq(event_layout_value_type(l, "Title"), VAL_STR);
    cr_assert_eq(event_layout_value_type(l, "StartDate__c"), VAL_STR, "an int date is text");
    cr_assert_eq(event_layout_value_type(l, "FirstName"), VAL_STR, "a compound's part");
    cr_assert_eq(event_layout_value_type(l, "Name"), VAL_NULL, "a record");
    cr_assert_eq(event_layout_value_type(l, "NoSuchField"), VAL_NULL);
    static const char avsc[] =
        "{\"type\":\"record\",\"name\":\"E\",\"fields\":["
        "{\"name\":\"ChangeEventHeader\",\"type\":\"string\"},"
        "{\"name\":\"N\",\"type\":\"long\"},"
        "{\"name\":\"T\",\"type\":[\"null\",{\"type\":\"long\","
        "\"logicalType\":\"timestamp-millis\"}]},"
        "{\"name\":\"U\",\"type\":[\"null\",\"string\",\"double\"]},"
        "{\"name\":\"P\",\"type\":{\"type\":\"record\",\"name\":\"R\",\"fields\":["
        "{\"name\":\"F\",\"type\":\"float\"}]}}]}";
    event_layout *own;
    perr err;
    cr_assert_eq(event_layout_from_avsc(avsc, strlen(avsc), &own, &err), 0, "%s", err.msg);
    cr_assert_eq(event_layout_value_type(own, "N"), VAL_NUM);
    cr_assert_eq(event_layout_value_type(own, "T"), VAL_STR);
    cr_assert_eq(event_layout_value_type(own, "U"), VAL_NULL, "text or number: not known");
    cr_assert_eq(event_layout_value_type(own, "F"), VAL_NUM);
    event_layout_free(own);
}

Test(event, bitmap_top_level_positions)
{
    names got = {0};
    perr err;
    cr_assert_eq(expand("0x650004E0", &got, &err), 0, "%s", err.msg);
    const char *want[] = {
        "Title",       "Department",       "Name",          "Phone", "EmployeeNumber",
        "CreatedDate", "LastModifiedDate", "SystemModstamp"};
    assert_names(&got, want, 8); /* positions 5 6 7 10 24 26 29 30 */
    names upper = {0};
    cr_assert_eq(expand("0X4e0", &upper, &err), 0, "%s", err.msg);
    assert_names(&upper, want, 4);
}

Test(event, bitmap_compound_parts)
{
    names got = {0};
    perr err;
    cr_assert_eq(expand("7-0x06", &got, &err), 0, "%s", err.msg);
    const char *want[] = {"Name.FirstName", "Name.LastName"};
    assert_names(&got, want, 2);
    names addr = {0};
    cr_assert_eq(expand("25-0x41", &addr, &err), 0, "%s", err.msg);
    const char *want2[] = {"Address.Street", "Address.CountryCode"};
    assert_names(&addr, want2, 2);
}

Test(event, bitmap_out_of_range_is_an_error)
{
    names got = {0};
    perr err;
    char want[160];
    size_t n = event_layout_count(event_layout_default());
    cr_assert_lt(n, 63);
    cr_assert_eq(expand("0x8000000000000001", &got, &err), -1, "bit 63");
    snprintf(want, sizeof want,
             "bitmap '0x8000000000000001' names position 63; the schema has %zu fields", n);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(expand("99-0x1", &got, &err), -1);
    snprintf(want, sizeof want, "bitmap '99-0x1' names field 99; the schema has %zu fields", n);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(expand("7-0x8", &got, &err), -1);
    cr_assert_str_eq(err.msg, "bitmap '7-0x8' names part 3 of Name, which has 3 parts");
    cr_assert_eq(expand("5-0x1", &got, &err), -1, "Title has no parts");
}

Test(event, bitmap_bad_hex_is_an_error)
{
    names got = {0};
    perr err;
    cr_assert_eq(expand("0x12G4", &got, &err), -1);
    cr_assert_str_eq(err.msg, "bitmap '0x12G4' has a character that is not hex");
    cr_assert_eq(expand("0x", &got, &err), -1);
    cr_assert_str_eq(err.msg, "bitmap '0x' has no hex digits after 0x");
    cr_assert_eq(expand("7-0xZ", &got, &err), -1);
    cr_assert_str_eq(err.msg, "bitmap '0xZ' has a character that is not hex");
}

Test(event, plain_names_pass_through)
{
    names got = {0};
    perr err;
    const char *in[] = {"Title", "Name.LastName", "12-abc", "x-0x1", "", "LastModifiedDate"};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(expand(in[i], &got, &err), 0, "%s", in[i]);
    assert_names(&got, in, 6);
    cr_assert_neq(got.v[0], in[0], "copied into the arena");
}

Test(event, bitmaps_in_a_json_event)
{
    event ev = parse(EV(",\"changedFields\":[\"0x4E0\",\"7-0x04\",\"Manager.Name\"],"
                        "\"nulledFields\":[\"0x20\"],\"diffFields\":[\"25-0x2\"]",
                        ""));
    const char *changed[] = {"Title", "Department",    "Name",
                             "Phone", "Name.LastName", "Manager.Name"};
    names got = {ev.changed_fields, ev.n_changed_fields, 0};
    assert_names(&got, changed, 6);
    cr_assert_eq(ev.n_nulled_fields, 1);
    cr_assert_str_eq(ev.nulled_fields[0], "Title");
    cr_assert_eq(ev.n_diff_fields, 1);
    cr_assert_str_eq(ev.diff_fields[0], "Address.City");
    char want[200];
    snprintf(want, sizeof want,
             "ChangeEventHeader.changedFields: bitmap '0x8000000000000000' names position 63; the "
             "schema has %zu fields",
             event_layout_count(event_layout_default()));
    parse_fails(EV(",\"changedFields\":[\"Title\",\"0x8000000000000000\"]", ""), want);
    parse_fails(EV(",\"nulledFields\":[\"0xQ\"]", ""),
                "ChangeEventHeader.nulledFields: bitmap '0xQ' has a character that is not hex");
}

Test(event, layout_from_a_bad_schema_is_an_error)
{
    event_layout *l;
    perr err;
    cr_assert_eq(event_layout_from_avsc("{\"type\":\"record\"}", 17, &l, &err), -1);
    cr_assert_str_eq(err.msg, "schema: the top level is not a record with fields");
    cr_assert_eq(event_layout_from_avsc("{", 1, &l, &err), -1);
}

/* ---------------------------------------------------------------- reference and comparison */
/* ---- reference: the jansson-based reader event_from_json had before json_reader.c, plus the one
 * rule added with it ("Name": null -> every part of the compound as an explicit null). */
static int ref_str_array(json_t *arr, const char *what, const event_layout *l, bool expand,
                         arena *mem, const char ***out, size_t *n, perr *err)
{
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return perr_set(err, "ChangeEventHeader.%s is not an array", what);
    size_t cap = 0, i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s) return perr_set(err, "ChangeEventHeader.%s[%zu] is not a string", what, i);
        if (expand) {
            if (event_expand_field_entry(l, s, mem, out, n, &cap, err) < 0)
                return perr_prefix(err, "ChangeEventHeader.%s: ", what);
        } else {
            if (*n == cap) {
                cap = cap ? cap * 2 : 4;
                const char **nn = arena_alloc(mem, cap * sizeof *nn);
                if (*n) memcpy(nn, *out, *n * sizeof *nn);
                *out = nn;
            }
            (*out)[(*n)++] = arena_strdup(mem, s);
        }
    }
    return 0;
}

static void ref_bad_member(json_t *v, const char *key, const char *must, perr *err)
{
    if (!v || json_is_null(v))
        perr_set(err, "ChangeEventHeader.%s is missing", key);
    else
        perr_set(err, "ChangeEventHeader.%s must be %s", key, must);
}

static const char *ref_opt_str(json_t *o, const char *key, arena *mem)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v)) return arena_strndup(mem, json_string_value(v), json_string_length(v));
    return NULL;
}

static int ref_opt_int(json_t *o, const char *key, int64_t *out, perr *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*end == '\0' && end != json_string_value(v)) {
            *out = x;
            return 0;
        }
    }
    return perr_set(err, "ChangeEventHeader.%s is not an integer", key);
}

typedef struct ref_fields {
    event_field *items;
    size_t n, cap;
} ref_fields;

static void ref_push(ref_fields *fl, arena *mem, const char *name, value_t v)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 32;
        event_field *nf = arena_alloc(mem, cap * sizeof *nf);
        if (fl->n) memcpy(nf, fl->items, fl->n * sizeof *nf);
        fl->items = nf;
        fl->cap = cap;
    }
    fl->items[fl->n].name = name;
    fl->items[fl->n].val = v;
    fl->n++;
}

static value_t ref_value(json_t *v, arena *mem)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = arena_strndup(mem, json_string_value(v), json_string_length(v));
        return (value_t){.type = VAL_STR, .s = s, .len = json_string_length(v)};
    }
    case JSON_TRUE: return value_bool(true);
    case JSON_FALSE: return value_bool(false);
    case JSON_INTEGER: return value_num((double)json_integer_value(v));
    case JSON_REAL: return value_num(json_real_value(v));
    case JSON_NULL: return value_null();
    default: {
        char *txt = json_dumps(v, JSON_COMPACT);
        value_t out = value_null();
        if (txt) {
            const char *s = arena_strdup(mem, txt);
            out = (value_t){.type = VAL_STR, .s = s, .len = strlen(s)};
            free(txt);
        }
        return out;
    }
    }
}

static long ref_compound(const event_layout *l, const char *name)
{
    for (size_t i = 0; i < event_layout_count(l); i++)
        if (event_layout_part_count(l, i) && strcmp(event_layout_name(l, i), name) == 0)
            return (long)i;
    return -1;
}

static int ref_event_from_json(const char *line, size_t len, const event_layout *layout, arena *mem,
                               event *ev, perr *err)
{
    memset(ev, 0, sizeof *ev);
    ev->source.partition = -1;
    ev->source.offset = -1;
    if (!layout) layout = event_layout_default();
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root) return perr_set(err, "column %d: invalid JSON: %s", jerr.column, jerr.text);
    int rc = -1;
    json_t *payload = root;
    json_t *data = json_object_get(root, "data");
    if (json_is_object(data) && json_is_object(json_object_get(data, "payload"))) {
        payload = json_object_get(data, "payload");
        json_t *rid = json_object_get(json_object_get(data, "event"), "replayId");
        char tmp[32];
        if (json_is_integer(rid)) {
            snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(rid));
            ev->source.replay_id = arena_strdup(mem, tmp);
        } else if (json_is_string(rid)) {
            ev->source.replay_id = arena_strdup(mem, json_string_value(rid));
        }
    }
    if (!json_is_object(payload)) {
        perr_set(err, "an event is a JSON object");
        goto out;
    }
    json_t *h = json_object_get(payload, "ChangeEventHeader");
    if (!json_is_object(h)) {
        perr_set(err, "the event has no ChangeEventHeader object");
        goto out;
    }
    ev->entity = ref_opt_str(h, "entityName", mem);
    if (!ev->entity) {
        ref_bad_member(json_object_get(h, "entityName"), "entityName", "a string", err);
        goto out;
    }
    const char *ct = json_string_value(json_object_get(h, "changeType"));
    if (strcmp(ev->entity, "User") != 0) { /* R1.1: skipped, whatever the rest says */
        perr ignored;
        if (!ct || change_type_parse(ct, &ev->change) < 0) ev->change = CHANGE__COUNT;
        json_t *rids = json_object_get(h, "recordIds");
        if (rids && ref_str_array(rids, "recordIds", layout, false, mem, &ev->record_ids,
                                  &ev->n_record_ids, &ignored) < 0)
            ev->record_ids = NULL, ev->n_record_ids = 0;
        if (ref_opt_int(h, "sequenceNumber", &ev->sequence_number, &ignored) < 0 ||
            ref_opt_int(h, "commitTimestamp", &ev->commit_timestamp, &ignored) < 0 ||
            ref_opt_int(h, "commitNumber", &ev->commit_number, &ignored) < 0)
            ev->sequence_number = ev->commit_timestamp = ev->commit_number = 0;
        ev->transaction_key = ref_opt_str(h, "transactionKey", mem);
        ev->commit_user = ref_opt_str(h, "commitUser", mem);
        ev->change_origin = ref_opt_str(h, "changeOrigin", mem);
        rc = 0;
        goto out;
    }
    if (!ct) {
        ref_bad_member(json_object_get(h, "changeType"), "changeType", "a string", err);
        goto out;
    }
    if (change_type_parse(ct, &ev->change) < 0) {
        perr_set(err, "ChangeEventHeader.changeType '%s' is not a change type", ct);
        goto out;
    }
    json_t *ids = json_object_get(h, "recordIds");
    if (ev->change != CHANGE_GAP_OVERFLOW && !json_is_array(ids)) {
        ref_bad_member(ids, "recordIds", "an array of strings", err);
        goto out;
    }
    if (ref_str_array(ids, "recordIds", layout, false, mem, &ev->record_ids, &ev->n_record_ids,
                      err) < 0 ||
        ref_str_array(json_object_get(h, "changedFields"), "changedFields", layout, true, mem,
                      &ev->changed_fields, &ev->n_changed_fields, err) < 0 ||
        ref_str_array(json_object_get(h, "nulledFields"), "nulledFields", layout, true, mem,
                      &ev->nulled_fields, &ev->n_nulled_fields, err) < 0 ||
        ref_str_array(json_object_get(h, "diffFields"), "diffFields", layout, true, mem,
                      &ev->diff_fields, &ev->n_diff_fields, err) < 0)
        goto out;
    for (size_t i = 0; i < ev->n_record_ids; i++) {
        if (!ev->record_ids[i][0]) {
            perr_set(err, "ChangeEventHeader.recordIds[%zu] is empty", i);
            goto out;
        }
    }
    if (ref_opt_int(h, "sequenceNumber", &ev->sequence_number, err) < 0 ||
        ref_opt_int(h, "commitTimestamp", &ev->commit_timestamp, err) < 0 ||
        ref_opt_int(h, "commitNumber", &ev->commit_number, err) < 0)
        goto out;
    ev->transaction_key = ref_opt_str(h, "transactionKey", mem);
    ev->commit_user = ref_opt_str(h, "commitUser", mem);
    ev->change_origin = ref_opt_str(h, "changeOrigin", mem);

    ref_fields fl = {0};
    const char *key;
    json_t *v;
    json_object_foreach(payload, key, v)
    {
        if (strcmp(key, "ChangeEventHeader") == 0) continue;
        if (json_is_object(v)) {
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                if (!json_is_object(pv))
                    ref_push(&fl, mem, arena_strdup(mem, pk), ref_value(pv, mem));
            }
            continue;
        }
        long c = json_is_null(v) ? ref_compound(layout, key) : -1;
        if (c >= 0) {
            for (size_t i = 0; i < event_layout_part_count(layout, (size_t)c); i++)
                ref_push(&fl, mem, event_layout_part_name(layout, (size_t)c, i), value_null());
            continue;
        }
        ref_push(&fl, mem, arena_strdup(mem, key), ref_value(v, mem));
    }
    ev->fields = fl.items;
    ev->n_fields = fl.n;
    ev->payload_marks_changes = true;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- comparing two events: every member, strings by content, numbers bit for bit */
static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_names(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i], b[i])) return false;
    return true;
}

static bool same_value(const value_t *a, const value_t *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case VAL_NULL: return true;
    case VAL_BOOL: return a->b == b->b;
    case VAL_NUM: return memcmp(&a->num, &b->num, sizeof a->num) == 0;
    case VAL_STR:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0 && strlen(a->s) == a->len;
    }
    return false;
}

/* Empty when equal, else what differs. */
static const char *event_diff(const event *a, const event *b)
{
    if (!same_str(a->entity, b->entity)) return "entity";
    if (a->change != b->change) return "change";
    if (!same_names(a->record_ids, a->n_record_ids, b->record_ids, b->n_record_ids))
        return "recordIds";
    if (!same_names(a->changed_fields, a->n_changed_fields, b->changed_fields, b->n_changed_fields))
        return "changedFields";
    if (!same_names(a->nulled_fields, a->n_nulled_fields, b->nulled_fields, b->n_nulled_fields))
        return "nulledFields";
    if (!same_names(a->diff_fields, a->n_diff_fields, b->diff_fields, b->n_diff_fields))
        return "diffFields";
    if (!same_str(a->transaction_key, b->transaction_key)) return "transactionKey";
    if (a->sequence_number != b->sequence_number) return "sequenceNumber";
    if (a->commit_timestamp != b->commit_timestamp) return "commitTimestamp";
    if (a->commit_number != b->commit_number) return "commitNumber";
    if (!same_str(a->commit_user, b->commit_user)) return "commitUser";
    if (!same_str(a->change_origin, b->change_origin)) return "changeOrigin";
    if (a->n_fields != b->n_fields) return "field count";
    for (size_t i = 0; i < a->n_fields; i++) {
        if (!same_str(a->fields[i].name, b->fields[i].name)) return "field name";
        if (!same_value(&a->fields[i].val, &b->fields[i].val)) return "field value";
    }
    if (a->payload_marks_changes != b->payload_marks_changes) return "payload_marks_changes";
    if (!same_str(a->source.topic, b->source.topic)) return "source.topic";
    if (a->source.partition != b->source.partition || a->source.offset != b->source.offset)
        return "source position";
    if (!same_str(a->source.replay_id, b->source.replay_id)) return "replayId";
    return "";
}

/* ---------------------------------------------------------------- event_to_json round trip */

static void assert_same_event(const event *a, const event *b, const char *line)
{
    const char *d = event_diff(a, b);
    cr_assert_str_eq(d, "", "%s differs for %s", d, line);
}

static void round_trip(const char *line)
{
    event a, b;
    perr err;
    cr_assert_eq(event_from_json(line, strlen(line), NULL, &g_mem, &a, &err), 0, "%s", err.msg);
    buf out;
    buf_init(&out);
    event_to_json(&a, NULL, &out);
    cr_assert_eq(event_from_json(out.data, out.len, NULL, &g_mem, &b, &err), 0, "%s: %s", out.data,
                 err.msg);
    /* to_json writes plain fields before compound parts; compare field by field by name */
    cr_assert_eq(a.n_fields, b.n_fields, "%s", out.data);
    for (size_t i = 0; i < a.n_fields; i++) {
        size_t j = 0;
        while (j < b.n_fields && strcmp(a.fields[i].name, b.fields[j].name) != 0)
            j++;
        cr_assert_lt(j, b.n_fields, "%s lost in %s", a.fields[i].name, out.data);
        cr_assert(same_value(&a.fields[i].val, &b.fields[j].val), "%s changed in %s",
                  a.fields[i].name, out.data);
    }
    a.fields = b.fields; /* the rest must be equal as is */
    a.source = b.source;
    assert_same_event(&a, &b, line);
    buf_free(&out);
}

Test(event, to_json_then_from_json_gives_the_same_event)
{
    round_trip(EV(",\"changedFields\":[\"Title\",\"Name.LastName\"],\"nulledFields\":[\"Phone\"],"
                  "\"diffFields\":[],\"transactionKey\":\"t\\\"k\",\"sequenceNumber\":3,"
                  "\"commitTimestamp\":1764000000000,\"commitNumber\":-2,\"commitUser\":\"005U\","
                  "\"changeOrigin\":\"com/salesforce/api/rest/61.0\"",
                  ",\"Title\":\"A\\u00e9\\n\",\"Phone\":null,\"IsActive\":true,\"N\":-1.25,"
                  "\"Name\":{\"FirstName\":\"Olga\",\"LastName\":\"Brown\"},\"Address\":{\"City\":"
                  "\"Paris\"},\"Email\":\"o@acme.com\""));
    round_trip(EV("", ",\"Name\":null"));
    round_trip(MSG("{\"payload\":" PAYLOAD ",\"event\":{\"replayId\":7}}"));
}

Test(event, to_json_nests_compound_parts_back)
{
    event ev = parse(EV("", ",\"Name\":{\"FirstName\":\"A\",\"LastName\":\"B\"},\"Title\":\"T\""));
    buf out;
    buf_init(&out);
    event_to_json(&ev, NULL, &out);
    cr_assert(
        strstr(out.data, ",\"Title\":\"T\",\"Name\":{\"FirstName\":\"A\",\"LastName\":\"B\"}}"),
        "%s", out.data);
    buf_free(&out);
}

/* ---------------------------------------------------------------- differential check */

static int diff_line(const char *src, size_t len, const char *where)
{
    /* exactly len bytes on the heap, no terminator, so that ASan sees any read past the line */
    char *line = malloc(len ? len : 1);
    memcpy(line, src, len);
    event a, b;
    perr ea, eb;
    int ra = event_from_json(line, len, NULL, &g_mem, &a, &ea);
    int rb = ref_event_from_json(line, len, NULL, &g_mem, &b, &eb);
    cr_assert_eq(ra, rb, "%s: new %s, reference %s", where, ra ? ea.msg : "ok", rb ? eb.msg : "ok");
    if (ra == 0) {
        const char *d = event_diff(&a, &b);
        cr_assert_str_eq(d, "", "%s: %s differs: %.*s", where, d, (int)len, line);
    } else if (strncmp(eb.msg, "column ", 7) != 0) {
        cr_assert_str_eq(ea.msg, eb.msg, "%s", where); /* the semantic messages are the same */
    } else {
        cr_assert(strncmp(ea.msg, "column ", 7) == 0, "%s: %s", where, ea.msg);
    }
    free(line);
    return ra;
}

static size_t diff_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *l = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    unsigned long lineno = 0;
    while ((len = getline(&l, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (l[len - 1] == '\n' || l[len - 1] == '\r'))
            len--;
        if (!len) continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%lu", path, lineno);
        arena_reset(&g_mem);
        diff_line(l, (size_t)len, where);
        n++;
    }
    free(l);
    fclose(f);
    return n;
}

Test(event, differential_every_scenario_line_matches_the_jansson_reference)
{
    char root[4096];
    const char *env = getenv("PV_SOURCE_DIR");
    if (env) {
        snprintf(root, sizeof root, "%s", env);
    } else { /* run by hand: the source tree this file is in */
        snprintf(root, sizeof root, "%s", __FILE__);
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(root, '/');
            if (slash) *slash = '\0';
        }
    }
    const char *patterns[] = {"%s/tests/scenarios/*/events.jsonl",
                              "%s/../shared/scenarios/*/events.jsonl"};
    size_t files = 0, lines = 0;
    for (size_t p = 0; p < 2; p++) {
        char pat[4200];
        snprintf(pat, sizeof pat, patterns[p], root);
        glob_t g;
        if (glob(pat, 0, NULL, &g) != 0) continue; /* a missing folder is skipped */
        for (size_t i = 0; i < g.gl_pathc; i++, files++)
            lines += diff_file(g.gl_pathv[i]);
        globfree(&g);
    }
    if (!files) cr_skip_test("no scenario folders under %s", root);
    cr_assert_gt(lines, 100, "%zu lines in %zu files", lines, files);
}

Test(event, differential_tricky_lines_match_the_jansson_reference)
{
    static const char *lines[] = {
        EV("", ",\"Name\":null,\"Address\":{\"City\":null},\"x\":[1,{\"a\":[]}]"),
        EV(",\"commitNumber\":\"  -12\",\"sequenceNumber\":\"0x1\"", ""),
        EV(",\"changedFields\":[\"0x650004E0\",\"7-0x06\",\"Title\"]", ",\"Title\":\"\\u00e9\""),
        EV("", ",\"a\":1,\"a\":{\"FirstName\":\"x\"},\"b\":[0.5,-0.0,1e17,1e-7,3]"),
        EV("", ",\"r\":123456789012345678e3,\"s\":5e-324,\"t\":1.7976931348623157e308"),
        MSG("{\"payload\":" PAYLOAD ",\"event\":{\"replayId\":\"x\"},\"payload\":" PAYLOAD "}"),
        "{\"data\":{\"payload\":{\"ChangeEventHeader\":{}}}}",
        "{\"data\":{\"payload\":{}}}",
        "{\"data\":[],\"ChangeEventHeader\":{\"entityName\":\"User\",\"changeType\":\"GAP_"
        "OVERFLOW\"}}",
        EV(",\"recordIds\":[\"a\",\"b\"],\"changeType\":\"UNDELETE\"", ",\"IsActive\":false"),
        EV("", ",\"k\":\"\\ud83d\\ude00\\u0001\\u001f\\u007f\\\"\",\"arr\":[\"\\u0001\\\\\"]"),
        "{\"ChangeEventHeader\":5}",
        "{}",
        "[]",
        "{\"a\":1}}",
        EV(",\"changedFields\":[\"7-0x8\"]", ""),
        EV(",\"recordIds\":[\"\"]", ""),
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char where[32];
        snprintf(where, sizeof where, "tricky line %zu", i);
        arena_reset(&g_mem);
        diff_line(lines[i], strlen(lines[i]), where);
    }
}
