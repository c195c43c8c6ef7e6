/* Unit tests for internal/codec: Avro change events and commands (interfaces.md "Change events",
 * "Bitmaps", "Commands"; provisioning.md R1.3, R9.4). Suites: roundtrip (every scenario event,
 * JSON -> Avro -> event equals the JSON reader's event), evolution, errors (one test per error
 * kind, and no input crashes), bitmaps, registry (against tests/standins/schema_registry.py),
 * command, cli. avro-c's own reader and writer serve as the reference implementation in the
 * interop tests, on trusted bytes only. */
#include <arpa/inet.h>
#include <avro.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/codec.h"

/* ------------------------------------------------------------------ helpers */

/* LeakSanitizer checks every process at exit. Criterion 2.4.1's runner process, which runs only
 * Criterion's own code, leaks 96 bytes in two callocs when this file's tests run on two workers
 * (not reproducible with small test files). The check stays on in the workers, where the code
 * under test runs: Criterion's boxfort gives them BXFI_MAP. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return getenv("BXFI_MAP") == NULL; }

static const char *source_dir(void)
{
    static char dir[4096];
    const char *env = getenv("PV_SOURCE_DIR");
    if (env && *env) return env;
    /* run by hand: this file is <src>/tests/unit/test_codec.c */
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *p = strstr(dir, "/tests/unit/test_codec.c");
    if (p)
        *p = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return dir;
}

static char *read_text(const char *path, size_t *len)
{
    buf b;
    buf_init(&b);
    if (buf_read_file(&b, path, SIZE_MAX) < 0) {
        buf_free(&b);
        return NULL;
    }
    if (!b.data) buf_puts(&b, "");
    if (len) *len = b.len;
    return b.data;
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(s, f);
    fclose(f);
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

static const char *bundled(void) { return event_default_schema_avsc(); }

static codec_decoder *decoder_with(const char *writer, const char *registry)
{
    codec_decoder_config cfg = {
        .writer_avsc = writer,
        .registry = {.url = registry, .attempts = 3, .backoff_ms = 10, .timeout_ms = 3000}};
    codec_decoder *d;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &d, &err), 0, "decoder: %s", err.msg);
    return d;
}

static codec_event_encoder *encoder_with(const char *writer, bool framed, int32_t id, bool bitmaps)
{
    codec_event_encoder_config cfg = {
        .writer_avsc = writer, .framed = framed, .schema_id = id, .bitmaps = bitmaps};
    codec_event_encoder *e;
    codec_error err;
    cr_assert_eq(codec_event_encoder_new(&cfg, &e, &err), 0, "encoder: %s", err.msg);
    return e;
}

static void json_event(const char *line, const event_layout *layout, arena *mem, event *ev)
{
    perr pe;
    if (event_from_json(line, strlen(line), layout, mem, ev, &pe) < 0)
        cr_assert_fail("%s: %s", pe.msg, line);
}

static const char *nz(const char *s) { return s ? s : ""; }

static bool names_cover(const event_layout *l, const char *const *names, size_t n,
                        const char *field)
{
    for (size_t i = 0; i < n; i++) {
        const char *dot = strrchr(names[i], '.');
        const char *comp = event_layout_compound_of(l, field);
        if (strcasecmp(names[i], field) == 0 || (dot && strcasecmp(dot + 1, field) == 0) ||
            (comp && strcasecmp(comp, names[i]) == 0))
            return true;
    }
    return false;
}

/* What the Avro form must say changed for a JSON event (codec.h, codec_encode_event): the JSON
 * names, plus, in an UPDATE, the payload fields they do not name (R1.3). */
static void expected_names(const event *j, const event_layout *l, bool nulled, arena *mem,
                           const char ***out, size_t *n)
{
    const char *const *v = nulled ? j->nulled_fields : j->changed_fields;
    size_t k = nulled ? j->n_nulled_fields : j->n_changed_fields;
    const char **r = arena_alloc(mem, (k + j->n_fields + 1) * sizeof *r);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        r[m++] = v[i];
    if (j->payload_marks_changes && j->change == CHANGE_UPDATE) {
        for (size_t i = 0; i < j->n_fields; i++) {
            const event_field *f = &j->fields[i];
            bool in_c = names_cover(l, j->changed_fields, j->n_changed_fields, f->name);
            bool in_n = names_cover(l, j->nulled_fields, j->n_nulled_fields, f->name);
            if (!nulled && !in_c && !in_n) r[m++] = f->name;
            if (nulled && f->val.type == VAL_NULL && !in_n) r[m++] = f->name;
        }
    }
    *out = r;
    *n = m;
}

/* A name as the engine reads it: "Name.LastName" is the part LastName. */
static const char *base_name(const char *s)
{
    const char *dot = strrchr(s, '.');
    return dot ? dot + 1 : s;
}

/* Reports only mismatches: the comparisons below run thousands of times per test, and passing
 * assertions by the thousand from parallel workers make Criterion 2.4's runner leak. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) cr_expect_fail(__VA_ARGS__);                                                  \
    } while (0)
#define CHECK_STR(got, want, what, where)                                                          \
    CHECK(strcmp(got, want) == 0, "%s: %s is '%s', expected '%s'", where, what, got, want)

static void expect_same_names(const char *what, const char *const *want, size_t nw,
                              const char *const *got, size_t ng, bool as_sets, const char *where)
{
    CHECK(ng == nw, "%s: %s: %zu names decoded, %zu expected", where, what, ng, nw);
    if (ng != nw) return;
    for (size_t i = 0; i < nw; i++) {
        if (!as_sets) {
            CHECK_STR(got[i], want[i], what, where);
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < ng && !found; k++)
            found = strcmp(base_name(got[k]), base_name(want[i])) == 0;
        CHECK(found, "%s: %s lacks %s", where, what, want[i]);
    }
}

/* The decoded Avro event must say what the JSON event says: same header, same record ids, same
 * changed/nulled names, and the same non-null fields (Avro has no explicit nulls; a JSON null is
 * absent, and in an UPDATE it is named in nulledFields). */
static void expect_same_event(const event *j, const event *a, const event_layout *l, bool bitmaps,
                              const char *where)
{
    arena mem;
    arena_init(&mem, 0);
    CHECK_STR(a->entity, j->entity, "entityName", where);
    CHECK(a->change == j->change, "%s: changeType", where);
    CHECK(a->n_record_ids == j->n_record_ids, "%s: recordIds", where);
    for (size_t i = 0; i < j->n_record_ids && i < a->n_record_ids; i++)
        CHECK_STR(a->record_ids[i], j->record_ids[i], "a record id", where);
    CHECK_STR(nz(a->transaction_key), nz(j->transaction_key), "transactionKey", where);
    CHECK_STR(nz(a->commit_user), nz(j->commit_user), "commitUser", where);
    CHECK_STR(nz(a->change_origin), nz(j->change_origin), "changeOrigin", where);
    CHECK(a->sequence_number == j->sequence_number, "%s: sequenceNumber", where);
    CHECK(a->commit_timestamp == j->commit_timestamp, "%s: commitTimestamp", where);
    CHECK(a->commit_number == j->commit_number, "%s: commitNumber", where);
    CHECK(!a->payload_marks_changes, "%s: Avro payloads mark no changes", where);
    const char **want;
    size_t nw;
    expected_names(j, l, false, &mem, &want, &nw);
    expect_same_names("changedFields", want, nw, a->changed_fields, a->n_changed_fields, bitmaps,
                      where);
    expected_names(j, l, true, &mem, &want, &nw);
    expect_same_names("nulledFields", want, nw, a->nulled_fields, a->n_nulled_fields, bitmaps,
                      where);
    expect_same_names("diffFields", j->diff_fields, j->n_diff_fields, a->diff_fields,
                      a->n_diff_fields, bitmaps, where);
    size_t non_null = 0;
    for (size_t i = 0; i < j->n_fields; i++) {
        const event_field *f = &j->fields[i];
        const event_field *g = NULL;
        for (size_t k = 0; k < a->n_fields; k++)
            if (strcmp(a->fields[k].name, f->name) == 0) g = &a->fields[k];
        if (f->val.type == VAL_NULL) {
            CHECK(!g, "%s: %s is null in JSON and must be absent from Avro", where, f->name);
            continue;
        }
        non_null++;
        CHECK(g, "%s: field %s was lost", where, f->name);
        if (g)
            CHECK(value_eq(&g->val, &f->val), "%s: field %s differs (%s vs %s)", where, f->name,
                  g->val.type == VAL_STR ? g->val.s : "?", f->val.type == VAL_STR ? f->val.s : "?");
    }
    CHECK(a->n_fields == non_null, "%s: %zu fields decoded, %zu expected", where, a->n_fields,
          non_null);
    arena_free(&mem);
}

/* Runs every event of every events.jsonl under dir through encoder and decoder. Returns the count
 * of events checked; events the User schema cannot carry (other entities', or a field it lacks)
 * are skipped. */
static size_t roundtrip_dir(const char *dir, codec_event_encoder *enc, codec_decoder *dec,
                            bool bitmaps)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    size_t checked = 0;
    arena mem, mem2;
    arena_init(&mem, 0);
    arena_init(&mem2, 0);
    buf value;
    buf_init(&value);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/events.jsonl", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char *line = NULL;
        size_t cap = 0, lineno = 0;
        while (getline(&line, &cap, f) >= 0) {
            lineno++;
            if (strspn(line, " \t\r\n") == strlen(line)) continue;
            char where[4200];
            snprintf(where, sizeof where, "%s:%zu", path, lineno);
            arena_reset(&mem);
            arena_reset(&mem2);
            event j, a;
            json_event(line, codec_event_encoder_layout(enc), &mem, &j);
            codec_error err;
            if (codec_encode_event(enc, &j, &value, &err) < 0) {
                /* a scenario's org has custom fields the bundled schema lacks (Hire_Date__c):
                 * its own writer schema would carry them */
                bool org_field = strstr(err.msg, "is not in the writer schema") != NULL;
                if ((strcmp(j.entity, "User") == 0 && !org_field) || err.kind != CODEC_ERR_ENCODE)
                    cr_assert_fail("%s: encode: %s", where, err.msg);
                continue;
            }
            if (codec_decode(dec, value.data, value.len, &mem2, &a, &err) < 0)
                cr_assert_fail("%s: decode: %s: %s", where, codec_error_kind_name(err.kind),
                               err.msg);
            expect_same_event(&j, &a, codec_decoder_last_layout(dec), bitmaps, where);
            checked++;
        }
        free(line);
        fclose(f);
    }
    closedir(d);
    buf_free(&value);
    arena_free(&mem);
    arena_free(&mem2);
    return checked;
}

static void shared_dir(char *out, size_t cap)
{
    const char *env = getenv("PV_SHARED_DIR");
    if (env && *env)
        snprintf(out, cap, "%s/scenarios", env);
    else
        snprintf(out, cap, "%s/../shared/scenarios", source_dir());
}

/* A writer schema newer than the bundled one, as a real org's would be: the header's fields in
 * another order with one more, the data fields reversed, two more fields, Name's parts reversed,
 * and LastModifiedDate a timestamp-millis long as Salesforce types datetimes. */
static char *evolved_schema(void)
{
    json_t *root = json_loads(bundled(), 0, NULL);
    cr_assert_not_null(root);
    json_t *fields = json_object_get(root, "fields");
    json_t *header = json_object_get(json_array_get(fields, 0), "type");
    json_t *hf = json_object_get(header, "fields");
    json_t *nhf = json_array();
    for (size_t i = json_array_size(hf); i-- > 0;)
        json_array_append(nhf, json_array_get(hf, i));
    json_array_append_new(nhf, json_pack("{s:s,s:s}", "name", "schemaRevision", "type", "string"));
    json_object_set_new(header, "fields", nhf);
    json_t *nf = json_array();
    json_array_append(nf, json_array_get(fields, 0));
    for (size_t i = json_array_size(fields); i-- > 1;) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (strcmp(name, "LastModifiedDate") == 0)
            f = json_pack("{s:s,s:[s,{s:s,s:s}],s:n}", "name", name, "type", "null", "type", "long",
                          "logicalType", "timestamp-millis", "default");
        else
            json_incref(f);
        if (strcmp(name, "Name") == 0) {
            json_t *rec = json_array_get(json_object_get(f, "type"), 1);
            json_t *parts = json_object_get(rec, "fields"), *np = json_array();
            for (size_t k = json_array_size(parts); k-- > 0;)
                json_array_append(np, json_array_get(parts, k));
            json_object_set_new(rec, "fields", np);
        }
        json_array_append_new(nf, f);
        if (i == 10) /* somewhere in the middle */
            json_array_append_new(nf, json_pack("{s:s,s:[s,s],s:n}", "name", "Nickname__c", "type",
                                                "null", "string", "default"));
    }
    json_array_append_new(
        nf, json_pack("{s:s,s:[s,s],s:n}", "name", "Level__c", "type", "null", "long", "default"));
    json_object_set_new(root, "fields", nf);
    char *s = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    return s;
}

static const char *UPDATE_LINE =
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e000001AbCdAAK\"],"
    "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\",\"LastModifiedDate\"],"
    "\"nulledFields\":[],\"diffFields\":[],\"transactionKey\":\"0004b1a6-aaaa\","
    "\"sequenceNumber\":1,\"commitTimestamp\":1764000000000,\"commitNumber\":1000001,"
    "\"commitUser\":\"0055e000000AdminAAC\",\"changeOrigin\":\"\"},"
    "\"Title\":\"Account Executive\",\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\"}";

static const char *CREATE_LINE =
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"0055e0000000003AAK\"],"
    "\"changeType\":\"CREATE\",\"changedFields\":[],\"nulledFields\":[],\"diffFields\":[],"
    "\"transactionKey\":\"tx-01000001\",\"sequenceNumber\":1,\"commitTimestamp\":1764001000001,"
    "\"commitNumber\":1000001,\"commitUser\":\"0055e0000000AdmAAC\",\"changeOrigin\":\"\"},"
    "\"Email\":\"olga.brown@acme.com\",\"Title\":\"Account Executive\",\"IsActive\":true,"
    "\"Department\":\"Sales\",\"Country\":\"US\",\"Quota__c\":99999.5,"
    "\"StartDate__c\":\"2020-02-29\",\"Name\":{\"Salutation\":null,\"FirstName\":\"Olga\","
    "\"LastName\":\"Brown\"}}";

/* One encoded value of a JSON line with the given encoder. */
static void encode_line(codec_event_encoder *enc, const char *line, buf *out)
{
    arena mem;
    arena_init(&mem, 0);
    event ev;
    json_event(line, codec_event_encoder_layout(enc), &mem, &ev);
    codec_error err;
    cr_assert_eq(codec_encode_event(enc, &ev, out, &err), 0, "encode: %s", err.msg);
    arena_free(&mem);
}

static const event_field *field(const event *ev, const char *name)
{
    for (size_t i = 0; i < ev->n_fields; i++)
        if (strcmp(ev->fields[i].name, name) == 0) return &ev->fields[i];
    return NULL;
}

/* ------------------------------------------------------------------ roundtrip */

TestSuite(roundtrip, .timeout = 60);

Test(roundtrip, shared_scenarios_plain)
{
    char dir[4096];
    shared_dir(dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0) cr_skip_test("no shared scenarios at %s", dir);
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    size_t n = roundtrip_dir(dir, enc, dec, false);
    cr_expect_gt(n, 0, "no events under %s", dir);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

Test(roundtrip, project_scenarios_plain)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/scenarios", source_dir());
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    size_t n = roundtrip_dir(dir, enc, dec, false);
    cr_expect_gt(n, 100, "only %zu events under %s", n, dir);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

/* The same events as Salesforce's Pub/Sub API would send them: framed, field lists as bitmaps. */
Test(roundtrip, all_scenarios_framed_with_bitmaps)
{
    char dir[4096];
    codec_event_encoder *enc = encoder_with(NULL, true, 42, true);
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0, "%s", err.msg);
    cr_assert_eq(codec_decoder_add_schema(dec, 42, bundled(), 0, &err), 0, "%s", err.msg);
    snprintf(dir, sizeof dir, "%s/tests/scenarios", source_dir());
    size_t n = roundtrip_dir(dir, enc, dec, true);
    shared_dir(dir, sizeof dir);
    n += roundtrip_dir(dir, enc, dec, true);
    cr_expect_gt(n, 100);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

Test(roundtrip, compound_parts_flattened_and_nulls_left_out)
{
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    buf v;
    buf_init(&v);
    encode_line(enc, CREATE_LINE, &v);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
    cr_expect_str_eq(field(&ev, "FirstName")->val.s, "Olga");
    cr_expect_str_eq(field(&ev, "LastName")->val.s, "Brown");
    cr_expect_null(field(&ev, "Salutation"), "an Avro null is 'not sent'");
    cr_expect_null(field(&ev, "Name"));
    cr_expect_str_eq(field(&ev, "Country")->val.s, "US", "top-level Country went into Address");
    cr_expect_eq(field(&ev, "IsActive")->val.type, VAL_BOOL);
    cr_expect(field(&ev, "IsActive")->val.b);
    cr_expect_eq(field(&ev, "Quota__c")->val.num, 99999.5);
    cr_expect_str_eq(field(&ev, "StartDate__c")->val.s, "2020-02-29", "an Avro date");
    arena_free(&mem);
    buf_free(&v);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

/* R1.3: in a JSON UPDATE every payload field counts as changed; the Avro form says so in the
 * header, since its nulls mean "not sent". */
Test(roundtrip, json_update_payload_named_in_header)
{
    const char *line =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
        "\"changeType\":\"UPDATE\",\"changedFields\":[\"LastModifiedDate\"],\"nulledFields\":[],"
        "\"diffFields\":[],\"transactionKey\":\"t\",\"sequenceNumber\":1,\"commitTimestamp\":1,"
        "\"commitNumber\":1,\"commitUser\":\"u\",\"changeOrigin\":\"\"},\"Title\":\"VP\","
        "\"MobilePhone\":null,\"Name\":{\"LastName\":\"Doe\"},"
        "\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\"}";
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    buf v;
    buf_init(&v);
    encode_line(enc, line, &v);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
    const char *changed[] = {"LastModifiedDate", "Title", "MobilePhone", "LastName"};
    expect_same_names("changedFields", changed, 4, ev.changed_fields, ev.n_changed_fields, false,
                      "update");
    const char *nulled[] = {"MobilePhone"};
    expect_same_names("nulledFields", nulled, 1, ev.nulled_fields, ev.n_nulled_fields, false,
                      "update");
    cr_expect_null(field(&ev, "MobilePhone"));
    arena_free(&mem);
    buf_free(&v);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

/* A plain-Avro value written by avro-c (the reference writer) decodes; ours reads back in avro-c.
 */
static void avroc_set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t u, branch;
    cr_assert_eq(avro_value_get_by_name(rec, name, &u, NULL), 0, "%s", name);
    cr_assert_eq(avro_value_set_branch(&u, s ? 1 : 0, &branch), 0);
    if (s)
        avro_value_set_string(&branch, s);
    else
        avro_value_set_null(&branch);
}

static void avroc_set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "%s", name);
    avro_value_set_string(&f, s);
}

static void avroc_append(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t arr, e;
    cr_assert_eq(avro_value_get_by_name(rec, name, &arr, NULL), 0, "%s", name);
    if (!s) return;
    cr_assert_eq(avro_value_append(&arr, &e, NULL), 0);
    avro_value_set_string(&e, s);
}

Test(roundtrip, interop_with_avro_c)
{
    avro_schema_t schema;
    cr_assert_eq(avro_schema_from_json_length(bundled(), strlen(bundled()), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, h, f, branch, name, part;
    avro_generic_value_new(iface, &rec);
    avro_value_get_by_name(&rec, "ChangeEventHeader", &h, NULL);
    avroc_set_str(&h, "entityName", "User");
    avroc_append(&h, "recordIds", "005B");
    avro_value_get_by_name(&h, "changeType", &f, NULL);
    avro_value_set_enum(&f, 1);
    avroc_set_str(&h, "changeOrigin", "com/salesforce/api/soap/62.0");
    avroc_set_str(&h, "transactionKey", "tk");
    avro_value_get_by_name(&h, "sequenceNumber", &f, NULL);
    avro_value_set_int(&f, 3);
    avro_value_get_by_name(&h, "commitTimestamp", &f, NULL);
    avro_value_set_long(&f, 1764000000000LL);
    avro_value_get_by_name(&h, "commitNumber", &f, NULL);
    avro_value_set_long(&f, 1234567890123LL);
    avroc_set_str(&h, "commitUser", "005U");
    avroc_append(&h, "nulledFields", NULL);
    avroc_append(&h, "diffFields", NULL);
    avroc_append(&h, "changedFields", "0x20");
    avroc_append(&h, "changedFields", "7-0x04");
    avroc_set_opt_str(&rec, "Title", "Engineer \xc3\xa9");
    avro_value_get_by_name(&rec, "IsActive", &f, NULL);
    avro_value_set_branch(&f, 1, &branch);
    avro_value_set_boolean(&branch, 0);
    avro_value_get_by_name(&rec, "Name", &name, NULL);
    avro_value_set_branch(&name, 1, &branch);
    avro_value_get_by_name(&branch, "Salutation", &part, NULL);
    avro_value_set_branch(&part, 0, &f);
    avroc_set_opt_str(&branch, "FirstName", NULL);
    avroc_set_opt_str(&branch, "LastName", "Lovelace");
    /* every other field: null */
    size_t n;
    avro_value_get_size(&rec, &n);
    for (size_t i = 1; i < n; i++) {
        avro_value_get_by_index(&rec, i, &f, NULL);
        int disc;
        if (avro_value_get_discriminant(&f, &disc) != 0 || disc < 0) {
            avro_value_set_branch(&f, 0, &branch);
            avro_value_set_null(&branch);
        }
    }
    size_t size;
    avro_value_sizeof(&rec, &size);
    char *bytes = malloc(size);
    avro_writer_t w = avro_writer_memory(bytes, (int64_t)size);
    cr_assert_eq(avro_value_write(w, &rec), 0, "%s", avro_strerror());
    avro_writer_free(w);

    codec_decoder *dec = decoder_with(NULL, NULL);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    cr_assert_eq(codec_decode(dec, bytes, size, &mem, &ev, &err), 0, "%s", err.msg);
    cr_expect_eq(ev.change, CHANGE_UPDATE);
    cr_expect_eq(ev.sequence_number, 3);
    cr_expect_eq(ev.commit_number, 1234567890123LL);
    cr_expect_str_eq(ev.change_origin, "com/salesforce/api/soap/62.0");
    cr_assert_eq(ev.n_changed_fields, 2);
    cr_expect_str_eq(ev.changed_fields[0], "Title");
    cr_expect_str_eq(ev.changed_fields[1], "Name.LastName");
    cr_expect_str_eq(field(&ev, "Title")->val.s, "Engineer \xc3\xa9");
    cr_expect_eq(field(&ev, "IsActive")->val.type, VAL_BOOL);
    cr_expect_not(field(&ev, "IsActive")->val.b);
    cr_expect_str_eq(field(&ev, "LastName")->val.s, "Lovelace");
    cr_expect_eq(ev.n_fields, 3);

    /* and back: our encoding of that event is what avro-c wrote, byte for byte */
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    buf v;
    buf_init(&v);
    ev.changed_fields[0] = "0x20";
    ev.changed_fields[1] = "7-0x04";
    cr_assert_eq(codec_encode_event(enc, &ev, &v, &err), 0, "%s", err.msg);
    cr_expect_eq(v.len, size);
    cr_expect(v.len == size && memcmp(v.data, bytes, size) == 0, "encodings differ");
    buf_free(&v);
    codec_event_encoder_free(enc);
    arena_free(&mem);
    codec_decoder_free(dec);
    free(bytes);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

Test(roundtrip, timestamp_millis_and_micros_as_iso_strings)
{
    char *evolved = evolved_schema();
    codec_event_encoder *enc = encoder_with(evolved, false, 0, false);
    codec_decoder *dec = decoder_with(evolved, NULL);
    const char *stamps[] = {"2026-11-25T10:00:00.000Z", "1969-12-31T23:59:59.999Z",
                            "2000-02-29T00:00:00.001Z", "9999-12-31T23:59:59.999Z"};
    for (size_t i = 0; i < 4; i++) {
        char line[2048];
        snprintf(line, sizeof line,
                 "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                 "\"changeType\":\"CREATE\",\"commitTimestamp\":1,\"commitNumber\":1,"
                 "\"sequenceNumber\":1},\"LastModifiedDate\":\"%s\"}",
                 stamps[i]);
        buf v;
        buf_init(&v);
        encode_line(enc, line, &v);
        arena mem;
        arena_init(&mem, 0);
        event ev;
        codec_error err;
        cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
        cr_expect_str_eq(field(&ev, "LastModifiedDate")->val.s, stamps[i]);
        arena_free(&mem);
        buf_free(&v);
    }
    /* timestamp-micros and date writers */
    json_t *root = json_loads(bundled(), 0, NULL);
    json_array_append_new(json_object_get(root, "fields"),
                          json_pack("{s:s,s:[s,{s:s,s:s}],s:n}", "name", "Micro__c", "type", "null",
                                    "type", "long", "logicalType", "timestamp-micros", "default"));
    json_array_append_new(json_object_get(root, "fields"),
                          json_pack("{s:s,s:[s,{s:s,s:s}],s:n}", "name", "Day__c", "type", "null",
                                    "type", "int", "logicalType", "date", "default"));
    char *fine = json_dumps(root, 0);
    json_decref(root);
    codec_event_encoder *fenc = encoder_with(fine, false, 0, false);
    codec_decoder *fdec = decoder_with(fine, NULL);
    {
        const char *l = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                        "\"changeType\":\"CREATE\"},\"Micro__c\":\"1960-01-01T00:00:00.000001Z\","
                        "\"Day__c\":\"1900-03-01\"}";
        buf v;
        buf_init(&v);
        encode_line(fenc, l, &v);
        arena mem;
        arena_init(&mem, 0);
        event ev;
        codec_error err;
        cr_assert_eq(codec_decode(fdec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
        cr_expect_str_eq(field(&ev, "Micro__c")->val.s, "1960-01-01T00:00:00.000001Z");
        cr_expect_str_eq(field(&ev, "Day__c")->val.s, "1900-03-01");
        arena_free(&mem);
        buf_free(&v);
    }
    codec_decoder_free(fdec);
    codec_event_encoder_free(fenc);
    free(fine);
    /* other ISO forms are accepted and come back normalised to UTC with milliseconds */
    const char *line =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
        "\"changeType\":\"CREATE\"},\"LastModifiedDate\":\"2026-11-25T12:00:00+02:00\"}";
    buf v;
    buf_init(&v);
    encode_line(enc, line, &v);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
    cr_expect_str_eq(field(&ev, "LastModifiedDate")->val.s, "2026-11-25T10:00:00.000Z");
    /* a string that is no timestamp cannot go into a timestamp field */
    const char *bad = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                      "\"changeType\":\"CREATE\"},\"LastModifiedDate\":\"yesterday\"}";
    json_event(bad, NULL, &mem, &ev);
    cr_expect_eq(codec_encode_event(enc, &ev, &v, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_ENCODE);
    cr_expect(strstr(err.msg, "LastModifiedDate"), "%s", err.msg);
    arena_free(&mem);
    buf_free(&v);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
    free(evolved);
}

Test(roundtrip, encode_rejects_fields_the_schema_lacks)
{
    const char *line = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                       "\"changeType\":\"CREATE\"},\"Favourite__c\":\"tea\",\"Gone__c\":null}";
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    json_event(line, NULL, &mem, &ev);
    buf v;
    buf_init(&v);
    codec_error err;
    cr_expect_eq(codec_encode_event(enc, &ev, &v, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_ENCODE);
    cr_expect(strstr(err.msg, "Favourite__c"), "%s", err.msg);
    /* a null for an unknown field carries nothing and is no error */
    const char *ok = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                     "\"changeType\":\"CREATE\"},\"Gone__c\":null}";
    json_event(ok, NULL, &mem, &ev);
    cr_expect_eq(codec_encode_event(enc, &ev, &v, &err), 0, "%s", err.msg);
    /* nor a number where the schema has a string */
    const char *num = "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                      "\"changeType\":\"CREATE\"},\"Extension\":100}";
    json_event(num, NULL, &mem, &ev);
    cr_expect_eq(codec_encode_event(enc, &ev, &v, &err), -1);
    cr_expect(strstr(err.msg, "Extension"), "%s", err.msg);
    /* another object's change type of its own has no place in User's enum: said so by name */
    json_event("{\"ChangeEventHeader\":{\"entityName\":\"Opportunity\",\"changeType\":\"MERGE\"}}",
               NULL, &mem, &ev);
    cr_expect_eq(codec_encode_event(enc, &ev, &v, &err), -1);
    cr_expect(strstr(err.msg, "Opportunity's change type"), "%s", err.msg);
    buf_free(&v);
    arena_free(&mem);
    codec_event_encoder_free(enc);
}

/* ------------------------------------------------------------------ evolution */

TestSuite(evolution, .timeout = 30);

static const char *EVOLVED_LINE =
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\",\"005B\"],"
    "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\",\"Nickname__c\",\"Name.LastName\","
    "\"LastModifiedDate\",\"Level__c\"],\"nulledFields\":[],\"diffFields\":[],\"transactionKey\":"
    "\"t\","
    "\"sequenceNumber\":2,\"commitTimestamp\":1764000000000,\"commitNumber\":77,"
    "\"commitUser\":\"005U\",\"changeOrigin\":\"\"},\"Title\":\"CTO\",\"Nickname__c\":\"Ada\","
    "\"Level__c\":7,\"Name\":{\"LastName\":\"Lovelace\"},"
    "\"LastModifiedDate\":\"2026-11-25T10:00:00.000Z\"}";

/* Values of a newer writer (extra and reordered fields, a timestamp-millis) decode against the
 * bundled reader; every field the writer carries is kept. */
Test(evolution, extra_and_reordered_fields_plain)
{
    char *evolved = evolved_schema();
    codec_event_encoder *enc = encoder_with(evolved, false, 0, false);
    codec_decoder *dec = decoder_with(evolved, NULL);
    arena mem, mem2;
    arena_init(&mem, 0);
    arena_init(&mem2, 0);
    event j, a;
    json_event(EVOLVED_LINE, codec_event_encoder_layout(enc), &mem, &j);
    buf v;
    buf_init(&v);
    codec_error err;
    cr_assert_eq(codec_encode_event(enc, &j, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem2, &a, &err), 0, "%s", err.msg);
    expect_same_event(&j, &a, codec_decoder_last_layout(dec), false, "evolved");
    cr_expect_str_eq(field(&a, "Nickname__c")->val.s, "Ada");
    cr_expect_eq(field(&a, "Level__c")->val.num, 7);
    /* the bundled writer reads these bytes as something else entirely, or not at all */
    codec_decoder *plain = decoder_with(NULL, NULL);
    event b;
    int rc = codec_decode(plain, v.data, v.len, &mem2, &b, &err);
    cr_expect(rc < 0 || b.n_record_ids != 2 || !field(&b, "Nickname__c"));
    codec_decoder_free(plain);
    buf_free(&v);
    arena_free(&mem);
    arena_free(&mem2);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
    free(evolved);
}

Test(evolution, bitmaps_follow_the_writer_positions)
{
    char *evolved = evolved_schema();
    codec_event_encoder *old_enc = encoder_with(NULL, true, 1, true);
    codec_event_encoder *new_enc = encoder_with(evolved, true, 2, true);
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0, "%s", err.msg);
    cr_assert_eq(codec_decoder_add_schema(dec, 1, bundled(), 0, &err), 0, "%s", err.msg);
    cr_assert_eq(codec_decoder_add_schema(dec, 2, evolved, 0, &err), 0, "%s", err.msg);
    const char *line =
        "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
        "\"changeType\":\"UPDATE\",\"changedFields\":[\"Title\",\"Name.LastName\"],"
        "\"nulledFields\":[\"Phone\"]},\"Title\":\"CTO\",\"Name\":{\"LastName\":\"L\"}}";
    buf v1, v2;
    buf_init(&v1);
    buf_init(&v2);
    encode_line(old_enc, line, &v1);
    encode_line(new_enc, line, &v2);
    cr_expect(v1.len != v2.len || memcmp(v1.data, v2.data, v1.len) != 0);
    arena mem;
    arena_init(&mem, 0);
    for (int k = 0; k < 2; k++) {
        buf *v = k ? &v2 : &v1;
        event ev;
        cr_assert_eq(codec_decode(dec, v->data, v->len, &mem, &ev, &err), 0, "%s", err.msg);
        cr_assert_eq(ev.n_changed_fields, 2, "writer %d", k + 1);
        cr_expect_str_eq(ev.changed_fields[0], "Title");
        cr_expect_str_eq(ev.changed_fields[1], "Name.LastName");
        cr_assert_eq(ev.n_nulled_fields, 1);
        cr_expect_str_eq(ev.nulled_fields[0], "Phone");
    }
    arena_free(&mem);
    buf_free(&v1);
    buf_free(&v2);
    codec_decoder_free(dec);
    codec_event_encoder_free(old_enc);
    codec_event_encoder_free(new_enc);
    free(evolved);
}

/* Writers that cannot be read as a User change event are refused once, when the schema is
 * loaded, with schema_mismatch; another object's change event is loaded (R1.1, below). */
Test(evolution, incompatible_writers_are_schema_mismatch)
{
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0, "%s", err.msg);
    struct {
        const char *from, *to, *why;
    } edits[] = {
        {"\"name\": \"UserChangeEvent\"", "\"name\": \"ContactChangeEvent\"", "another record"},
        {"\"name\": \"entityName\"", "\"name\": \"entity\"", "a header field missing"},
        {"\"name\": \"commitUser\",\n            \"type\": \"string\"",
         "\"name\": \"commitUser\",\n            \"type\": \"boolean\"", "a header type changed"},
        {"\"namespace\": \"com.sforce.eventbus\",\n  \"doc\"", "\"namespace\": \"x\",\n  \"doc\"",
         "another namespace is fine"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(bundled(), edits[i].from);
        cr_assert_not_null(at, "edit %zu does not apply", i);
        buf s;
        buf_init(&s);
        buf_append(&s, bundled(), (size_t)(at - bundled()));
        buf_puts(&s, edits[i].to);
        buf_puts(&s, at + strlen(edits[i].from));
        int rc = codec_decoder_add_schema(dec, (int32_t)(10 + i), s.data, s.len, &err);
        if (i == 0 || i == 3) {
            cr_expect_eq(rc, 0, "%s: %s", edits[i].why, err.msg);
        } else {
            cr_expect_eq(rc, -1, "%s was accepted", edits[i].why);
            cr_expect_eq(err.kind, CODEC_ERR_SCHEMA_MISMATCH, "%s", edits[i].why);
            cr_expect_gt(strlen(err.msg), 10);
        }
        buf_free(&s);
    }
    cr_expect_eq(codec_decoder_add_schema(dec, 20, "{\"type\":\"string\"}", 0, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_SCHEMA_MISMATCH);
    cr_expect_eq(codec_decoder_add_schema(dec, 21, "not json", 0, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_SCHEMA_MISMATCH);
    codec_decoder_free(dec);
}

/* R1.1 on a topic that carries several objects' change events, each in its own schema: another
 * object's events are read (the engine skips and counts them), not dead-lettered as a schema that
 * does not resolve; a User event written in such a schema still is schema_mismatch. */
Test(evolution, another_objects_events_are_read_and_a_user_event_in_its_schema_refused)
{
    const char *from = "\"name\": \"UserChangeEvent\"";
    const char *at = strstr(bundled(), from);
    cr_assert_not_null(at);
    buf contact;
    buf_init(&contact);
    buf_append(&contact, bundled(), (size_t)(at - bundled()));
    buf_puts(&contact, "\"name\": \"ContactChangeEvent\"");
    buf_puts(&contact, at + strlen(from));
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0, "%s", err.msg);
    cr_assert_eq(codec_decoder_add_schema(dec, 7, contact.data, contact.len, &err), 0, "%s",
                 err.msg);
    codec_event_encoder *enc = encoder_with(contact.data, true, 7, false);
    buf v;
    buf_init(&v);
    encode_line(enc,
                "{\"ChangeEventHeader\":{\"entityName\":\"Contact\",\"recordIds\":[\"003A\"],"
                "\"changeType\":\"UPDATE\"}}",
                &v);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ev.entity, "Contact");
    cr_assert_not(event_is_user(&ev));
    cr_assert_eq(ev.change, CHANGE_UPDATE);
    buf_reset(&v);
    encode_line(enc, UPDATE_LINE, &v);
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &ev, &err), -1, "a User event was read");
    cr_assert_eq(err.kind, CODEC_ERR_SCHEMA_MISMATCH);
    cr_assert(strstr(err.msg, "schema id 7") && strstr(err.msg, "ContactChangeEvent"), "%s",
              err.msg);
    arena_free(&mem);
    buf_free(&v);
    buf_free(&contact);
    codec_event_encoder_free(enc);
    codec_decoder_free(dec);
}

/* ------------------------------------------------------------------ errors */

TestSuite(errors, .timeout = 60);

static int decode_bytes(codec_decoder *dec, const void *b, size_t n, codec_error *err)
{
    arena mem;
    arena_init(&mem, 0);
    event ev;
    int rc = codec_decode(dec, b, n, &mem, &ev, err);
    arena_free(&mem);
    return rc;
}

/* A plain User event by hand: the header (all strings one byte long), then a data section. */
static void hand_event(buf *b, const char *change_type_index_byte, const char *data, size_t dlen)
{
    buf_reset(b);
    buf_append(b, "\x08User", 5); /* entityName */
    buf_append(b,
               "\x02\x08"
               "005A"
               "\x00",
               7);                            /* recordIds: one block of 1 */
    buf_append(b, change_type_index_byte, 1); /* changeType */
    buf_append(b, "\x00\x00", 2);             /* changeOrigin "", transactionKey "" */
    buf_append(b, "\x02\x02\x02", 3);         /* sequenceNumber, commitTimestamp, commitNumber */
    buf_append(b, "\x00", 1);                 /* commitUser */
    buf_append(b, "\x00\x00\x00", 3);         /* nulled, diff, changed: empty */
    buf_append(b, data, dlen);
}

static size_t n_data_fields(void) { return event_layout_count(event_layout_default()) - 1; }

/* All data fields null, as bytes. */
static void all_null(buf *b)
{
    for (size_t i = 0; i < n_data_fields(); i++)
        buf_putc(b, 0);
}

/* A hand-made event whose first data field (Username) is these bytes and every other one null. */
static void with_first_field(buf *b, buf *data, const char *type, const char *first, size_t n)
{
    buf_reset(data);
    buf_append(data, first, n);
    for (size_t k = 1; k < n_data_fields(); k++)
        buf_putc(data, 0);
    hand_event(b, type, data->data, data->len);
}

Test(errors, hand_made_value_decodes)
{
    buf b, data;
    buf_init(&b);
    buf_init(&data);
    all_null(&data);
    hand_event(&b, "\x02", data.data, data.len);
    codec_decoder *dec = decoder_with(NULL, NULL);
    codec_error err;
    cr_expect_eq(decode_bytes(dec, b.data, b.len, &err), 0, "%s", err.msg);
    codec_decoder_free(dec);
    buf_free(&b);
    buf_free(&data);
}

/* A null field is skipped without a call when its union index is the one byte of the null
 * branch; any other encoding takes the full path: an index written long still reads as null, and
 * a value next to skipped nulls is read. */
Test(errors, null_fields_read_whatever_their_index_encoding)
{
    struct {
        const char *first; /* bytes of the first data field (Username) */
        size_t n;
        size_t fields; /* event fields decoded */
    } cases[] = {
        {"\x00", 1, 0},     /* null, the one-byte index */
        {"\x80\x00", 2, 0}, /* null, its index 0 written in two bytes */
        {"\x02\x04"
         "AB",
         4, 1}, /* the string branch */
        {"\x82\x00\x04"
         "AB",
         5, 1}, /* the string branch, its index written long */
    };
    codec_decoder *dec = decoder_with(NULL, NULL);
    buf b, data;
    buf_init(&b);
    buf_init(&data);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        with_first_field(&b, &data, "\x02", cases[i].first, cases[i].n);
        codec_error err;
        arena mem;
        arena_init(&mem, 0);
        event ev;
        cr_expect_eq(codec_decode(dec, b.data, b.len, &mem, &ev, &err), 0, "case %zu: %s", i,
                     err.msg);
        cr_expect_eq(ev.n_fields, cases[i].fields, "case %zu: %zu fields", i, ev.n_fields);
        if (cases[i].fields)
            cr_expect(ev.fields[0].val.type == VAL_STR && strcmp(ev.fields[0].val.s, "AB") == 0,
                      "case %zu", i);
        arena_free(&mem);
    }
    buf_free(&b);
    buf_free(&data);
    codec_decoder_free(dec);
}

Test(errors, truncated)
{
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    buf v;
    buf_init(&v);
    encode_line(enc, CREATE_LINE, &v);
    codec_error err;
    size_t truncated = 0;
    for (size_t n = 0; n < v.len; n++) {
        if (decode_bytes(dec, v.data, n, &err) == 0) cr_assert_fail("a %zu-byte prefix decoded", n);
        CHECK(err.kind == CODEC_ERR_TRUNCATED || err.kind == CODEC_ERR_BAD_RECORD, "%s",
              codec_error_kind_name(err.kind));
        CHECK(err.msg[0] && err.offset <= n, "prefix %zu: offset %zu, '%s'", n, err.offset,
              err.msg);
        truncated += err.kind == CODEC_ERR_TRUNCATED;
    }
    /* a cut inside a string says so */
    const char *at = find_bytes(v.data, v.len, "olga.brown", 10);
    cr_assert_not_null(at);
    cr_expect_eq(decode_bytes(dec, v.data, (size_t)(at - v.data) + 3, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_TRUNCATED, "%s", err.msg);
    cr_expect_gt(truncated, v.len * 9 / 10, "%zu of %zu prefixes said truncated", truncated, v.len);
    /* framed: a cut inside the 5-byte framing */
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *fdec;
    cr_assert_eq(codec_decoder_new(&cfg, &fdec, &err), 0);
    cr_expect_eq(decode_bytes(fdec, "\0\0\0", 3, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_TRUNCATED);
    cr_expect_eq(decode_bytes(fdec, "", 0, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_TRUNCATED);
    codec_decoder_free(fdec);
    buf_free(&v);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

Test(errors, bad_magic_byte)
{
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_CONFLUENT};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0);
    cr_expect_eq(decode_bytes(dec, "\x08User\x02", 6, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_BAD_MAGIC);
    cr_expect_str_eq(codec_error_kind_name(err.kind), "bad_magic_byte");
    cr_expect(strstr(err.msg, "0x08"), "%s", err.msg);
    codec_decoder_free(dec);
    /* with only a registry configured, values must be framed too: read as plain, another
     * writer's value would decode into the wrong fields */
    codec_decoder_config reg = {.registry = {.url = "http://127.0.0.1:9"}};
    cr_assert_eq(codec_decoder_new(&reg, &dec, &err), 0, "%s", err.msg);
    cr_expect_eq(decode_bytes(dec, "\x08User\x02", 6, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_BAD_MAGIC);
    codec_decoder_free(dec);
    /* with a registry and a plain writer named (--schema), a value not framed is plain: this
     * one is cut short (interfaces.md: a value may be either) */
    reg.writer_avsc = event_default_schema_avsc();
    cr_assert_eq(codec_decoder_new(&reg, &dec, &err), 0, "%s", err.msg);
    cr_expect_eq(decode_bytes(dec, "\x08User\x02", 6, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_TRUNCATED, "%s", err.msg);
    codec_decoder_free(dec);
}

Test(errors, unknown_schema_id_without_registry)
{
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_AUTO};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0);
    cr_expect_eq(decode_bytes(dec, "\0\0\0\1\x2c\x08User", 10, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_UNKNOWN_SCHEMA);
    cr_expect_eq(err.schema_id, 300);
    cr_expect_not(codec_error_is_transient(err.kind));
    codec_decoder_free(dec);
    /* by default, too: a plain User event never starts with 0x00 */
    dec = decoder_with(NULL, NULL);
    cr_expect_eq(decode_bytes(dec, "\0\0\0\0\7\x08User", 10, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_UNKNOWN_SCHEMA, "%s", err.msg);
    codec_decoder_free(dec);
}

Test(errors, bitmap_out_of_range)
{
    const char *entries[] = {
        "0x80000000000", /* position 43: the bundled schema has 38 fields */
        "7-0x10",        /* part 4 of Name, which has 3 parts */
        "99-0x1",        /* no field 99 */
        "0xZZ",          /* not hex */
        "5-0x1",         /* Title is no compound */
    };
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        arena mem;
        arena_init(&mem, 0);
        event ev;
        json_event("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
                   "\"changeType\":\"UPDATE\"}}",
                   NULL, &mem, &ev);
        const char *list[] = {"Title", entries[i]};
        ev.changed_fields = list;
        ev.n_changed_fields = 2;
        buf v;
        buf_init(&v);
        codec_error err;
        cr_assert_eq(codec_encode_event(enc, &ev, &v, &err), 0, "%s", err.msg);
        cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1, "%s decoded", entries[i]);
        cr_expect_eq(err.kind, CODEC_ERR_BITMAP, "%s: %s", entries[i],
                     codec_error_kind_name(err.kind));
        cr_expect(strstr(err.msg, "changedFields"), "%s", err.msg);
        buf_free(&v);
        arena_free(&mem);
    }
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
}

Test(errors, bad_record)
{
    codec_decoder *dec = decoder_with(NULL, NULL);
    buf b, data;
    buf_init(&b);
    buf_init(&data);
    codec_error err;
    struct {
        const char *what;
        const char *type;  /* changeType byte */
        const char *first; /* bytes of the first data field (Username) */
        size_t n;
    } cases[] = {
        {"union index out of range", "\x02", "\x04", 1},
        {"negative union index", "\x02", "\x01", 1},
        {"negative string length", "\x02", "\x02\x01", 2},
        {"enum index out of range", "\x7e", "\x00", 1},
        {"string not UTF-8", "\x02", "\x02\x04\xc3\x28", 4},
        {"string with NUL", "\x02", "\x02\x04\x41\x00", 4},
        {"overlong number", "\x02", "\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        with_first_field(&b, &data, cases[i].type, cases[i].first, cases[i].n);
        cr_expect_eq(decode_bytes(dec, b.data, b.len, &err), -1, "%s decoded", cases[i].what);
        cr_expect_eq(err.kind, CODEC_ERR_BAD_RECORD, "%s: %s: %s", cases[i].what,
                     codec_error_kind_name(err.kind), err.msg);
    }
    /* bytes after the record */
    buf_reset(&data);
    all_null(&data);
    buf_putc(&data, 0);
    hand_event(&b, "\x02", data.data, data.len);
    cr_expect_eq(decode_bytes(dec, b.data, b.len, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_BAD_RECORD);
    cr_expect(strstr(err.msg, "after the record"), "%s", err.msg);
    /* an array claiming more items than the value has bytes */
    buf_reset(&b);
    buf_append(&b, "\x08User\xfe\xff\xff\xff\x0f", 10);
    cr_expect_eq(decode_bytes(dec, b.data, b.len, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_BAD_RECORD, "%s", err.msg);
    /* an empty record id */
    buf_reset(&b);
    buf_append(&b, "\x08User\x02\x00\x00", 8);
    cr_expect_eq(decode_bytes(dec, b.data, b.len, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_BAD_RECORD, "%s", err.msg);
    buf_free(&b);
    buf_free(&data);
    codec_decoder_free(dec);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* No input crashes: valid values with random bytes changed, inserted or cut, plain and framed;
 * every failure is typed and has a message. (tests/fuzz/fuzz_codec.c does this at scale.) */
Test(errors, mutations_never_crash)
{
    char *evolved = evolved_schema();
    codec_event_encoder *enc = encoder_with(NULL, false, 0, true);
    codec_decoder_config cfg = {.framing = CODEC_FRAMING_AUTO};
    codec_decoder *dec;
    codec_error err;
    cr_assert_eq(codec_decoder_new(&cfg, &dec, &err), 0);
    cr_assert_eq(codec_decoder_add_schema(dec, 1, bundled(), 0, &err), 0);
    cr_assert_eq(codec_decoder_add_schema(dec, 2, evolved, 0, &err), 0);
    buf seeds[2];
    buf_init(&seeds[0]);
    buf_init(&seeds[1]);
    encode_line(enc, CREATE_LINE, &seeds[0]);
    encode_line(enc, UPDATE_LINE, &seeds[1]);
    unsigned char m[4096];
    size_t ok = 0, failed[CODEC_ERR__COUNT] = {0}, untyped = 0;
    for (int round = 0; round < 200000; round++) {
        const buf *s = &seeds[rng() % 2];
        size_t n = s->len, off = 0;
        if (rng() % 2) { /* framed with id 1 or 2 (a wrong writer for these bytes) */
            m[0] = 0;
            m[1] = m[2] = m[3] = 0;
            m[4] = (unsigned char)(1 + rng() % 2);
            off = 5;
        }
        memcpy(m + off, s->data, n);
        n += off;
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rng() % n;
            switch (rng() % 4) {
            case 0: m[at] = (unsigned char)rng(); break;
            case 1: m[at] ^= (unsigned char)(1u << (rng() % 8)); break;
            case 2: n = at + 1; break;
            default:
                if (n < sizeof m - 1) {
                    memmove(m + at + 1, m + at, n - at);
                    m[at] = (unsigned char)rng();
                    n++;
                }
            }
        }
        if (decode_bytes(dec, m, n, &err) == 0) {
            ok++;
            continue;
        }
        /* counted, not asserted, in the loop: a million passing assertions swamp the runner */
        if (err.kind <= CODEC_OK || err.kind >= CODEC_ERR__COUNT || !err.msg[0] || err.offset > n)
            untyped++;
        else
            failed[err.kind]++;
    }
    cr_expect_eq(untyped, 0, "%zu failures without a kind, message or sane offset", untyped);
    cr_expect_gt(failed[CODEC_ERR_TRUNCATED], 0);
    cr_expect_gt(failed[CODEC_ERR_BAD_RECORD], 0);
    buf_free(&seeds[0]);
    buf_free(&seeds[1]);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
    free(evolved);
}

/* ------------------------------------------------------------------ bitmaps */

TestSuite(bitmaps, .timeout = 30);

/* Decodes an UPDATE whose changedFields are entries. Top-level names from bitmaps point into the
 * decoder's writer layout (codec.h), so the caller frees the decoder after reading them. */
static codec_decoder *decode_changed(const char *const *entries, size_t n, event *ev, arena *mem,
                                     codec_error *err, int *rc)
{
    codec_event_encoder *enc = encoder_with(NULL, false, 0, false);
    codec_decoder *dec = decoder_with(NULL, NULL);
    event in;
    json_event("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
               "\"changeType\":\"UPDATE\"}}",
               NULL, mem, &in);
    in.changed_fields = (const char **)entries;
    in.n_changed_fields = n;
    buf v;
    buf_init(&v);
    cr_assert_eq(codec_encode_event(enc, &in, &v, err), 0, "%s", err->msg);
    *rc = codec_decode(dec, v.data, v.len, mem, ev, err);
    buf_free(&v);
    codec_event_encoder_free(enc);
    return dec;
}

/* interfaces.md "Bitmaps", Salesforce's worked example: 0x650004E0 sets the top-level positions
 * {5,6,7,10,24,26,29,30}; 7-0x06 sets parts 1 and 2 of field 7 (Name). */
Test(bitmaps, worked_example)
{
    const event_layout *l = event_layout_default();
    cr_assert_str_eq(event_layout_name(l, 7), "Name");
    const char *entries[] = {"0x650004E0", "7-0x06"};
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    int rc;
    codec_decoder *dec = decode_changed(entries, 2, &ev, &mem, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.msg);
    size_t positions[] = {5, 6, 7, 10, 24, 26, 29, 30};
    cr_assert_eq(ev.n_changed_fields, 10);
    for (size_t i = 0; i < 8; i++)
        cr_expect_str_eq(ev.changed_fields[i], event_layout_name(l, positions[i]), "bit %zu",
                         positions[i]);
    cr_expect_str_eq(ev.changed_fields[8], "Name.FirstName");
    cr_expect_str_eq(ev.changed_fields[9], "Name.LastName");
    arena_free(&mem);
    codec_decoder_free(dec);
}

/* The encoder writes the same strings for the same fields (uppercase hex, as Salesforce). */
Test(bitmaps, encoder_writes_the_worked_example)
{
    const event_layout *l = event_layout_default();
    size_t positions[] = {5, 6, 7, 10, 24, 26, 29, 30};
    const char *names[10];
    for (size_t i = 0; i < 8; i++)
        names[i] = event_layout_name(l, positions[i]);
    names[8] = "FirstName"; /* a part by its own name, as the JSON reader flattens it */
    names[9] = "Name.LastName";
    arena mem;
    arena_init(&mem, 0);
    event ev;
    json_event("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
               "\"changeType\":\"UPDATE\"}}",
               NULL, &mem, &ev);
    ev.changed_fields = names;
    ev.n_changed_fields = 10;
    codec_event_encoder *enc = encoder_with(NULL, false, 0, true);
    buf v;
    buf_init(&v);
    codec_error err;
    cr_assert_eq(codec_encode_event(enc, &ev, &v, &err), 0, "%s", err.msg);
    /* read the raw strings back with avro-c, the reference reader */
    avro_schema_t schema;
    avro_schema_from_json_length(bundled(), strlen(bundled()), &schema);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, h, arr, e;
    avro_generic_value_new(iface, &rec);
    avro_reader_t r = avro_reader_memory(v.data, (int64_t)v.len);
    cr_assert_eq(avro_value_read(r, &rec), 0, "%s", avro_strerror());
    avro_value_get_by_name(&rec, "ChangeEventHeader", &h, NULL);
    avro_value_get_by_name(&h, "changedFields", &arr, NULL);
    size_t n;
    avro_value_get_size(&arr, &n);
    cr_assert_eq(n, 2);
    const char *s;
    size_t len;
    avro_value_get_by_index(&arr, 0, &e, NULL);
    avro_value_get_string(&e, &s, &len);
    cr_expect_str_eq(s, "0x650004E0");
    avro_value_get_by_index(&arr, 1, &e, NULL);
    avro_value_get_string(&e, &s, &len);
    cr_expect_str_eq(s, "7-0x06");
    avro_reader_free(r);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    buf_free(&v);
    codec_event_encoder_free(enc);
    arena_free(&mem);
}

Test(bitmaps, plain_names_pass_through)
{
    const char *entries[] = {"Title", "3rdParty__c", "Name.LastName", "0x400"};
    arena mem;
    arena_init(&mem, 0);
    event ev;
    codec_error err;
    int rc;
    codec_decoder *dec = decode_changed(entries, 4, &ev, &mem, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(ev.n_changed_fields, 4);
    cr_expect_str_eq(ev.changed_fields[0], "Title");
    cr_expect_str_eq(ev.changed_fields[1], "3rdParty__c");
    cr_expect_str_eq(ev.changed_fields[2], "Name.LastName");
    cr_expect_str_eq(ev.changed_fields[3], "Phone");
    arena_free(&mem);
    codec_decoder_free(dec);
}

Test(bitmaps, wide_bitmaps_beyond_64_fields)
{
    /* a writer with 100 fields: position 70 needs more than 64 bits */
    json_t *root = json_loads(bundled(), 0, NULL);
    json_t *fields = json_object_get(root, "fields");
    for (int i = (int)json_array_size(fields); i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "Custom%d__c", i);
        json_array_append_new(fields, json_pack("{s:s,s:[s,s],s:n}", "name", name, "type", "null",
                                                "string", "default"));
    }
    char *wide = json_dumps(root, 0);
    json_decref(root);
    codec_event_encoder *enc = encoder_with(wide, false, 0, true);
    codec_decoder *dec = decoder_with(wide, NULL);
    arena mem;
    arena_init(&mem, 0);
    event ev;
    json_event("{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A\"],"
               "\"changeType\":\"UPDATE\",\"changedFields\":[\"Custom70__c\",\"Title\"]},"
               "\"Custom70__c\":\"x\",\"Title\":\"y\"}",
               codec_event_encoder_layout(enc), &mem, &ev);
    buf v;
    buf_init(&v);
    codec_error err;
    cr_assert_eq(codec_encode_event(enc, &ev, &v, &err), 0, "%s", err.msg);
    cr_assert_not_null(find_bytes(v.data, v.len, "0x400000000000000020", 20), "bits 70 and 5");
    event out;
    cr_assert_eq(codec_decode(dec, v.data, v.len, &mem, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(out.n_changed_fields, 2);
    cr_expect_str_eq(out.changed_fields[0], "Title");
    cr_expect_str_eq(out.changed_fields[1], "Custom70__c");
    buf_free(&v);
    arena_free(&mem);
    codec_decoder_free(dec);
    codec_event_encoder_free(enc);
    free(wide);
}

/* ------------------------------------------------------------------ registry */

/* The stand-in (tests/standins/schema_registry.py), started per test on a free loopback port and
 * always stopped by its PID; it also exits by itself if this process dies. */
static pid_t reg_pid = -1;
static int reg_port;
static char reg_url[64];
static char reg_dir[64];

static void registry_start(const char *const *extra)
{
    snprintf(reg_dir, sizeof reg_dir, "/tmp/pv-registry-XXXXXX");
    cr_assert_not_null(mkdtemp(reg_dir));
    char path[256];
    snprintf(path, sizeof path, "%s/1.avsc", reg_dir);
    write_text(path, bundled());
    char *evolved = evolved_schema();
    snprintf(path, sizeof path, "%s/2.avsc", reg_dir);
    write_text(path, evolved);
    free(evolved);
    snprintf(path, sizeof path, "%s/3.avsc", reg_dir);
    write_text(path, "{\"type\":\"record\",\"name\":\"Other\",\"fields\":[]}");
    char script[4200];
    snprintf(script, sizeof script, "%s/tests/standins/schema_registry.py", source_dir());
    const char *argv[16] = {"python3", script, "--dir", reg_dir};
    size_t argc = 4;
    for (size_t i = 0; extra && extra[i] && argc < 15; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t parent = getpid();
    reg_pid = fork();
    cr_assert_geq(reg_pid, 0);
    if (reg_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "the registry stand-in did not start");
    fclose(f);
    reg_port = atoi(line);
    cr_assert_gt(reg_port, 0);
    snprintf(reg_url, sizeof reg_url, "http://127.0.0.1:%d", reg_port);
}

static void registry_stop(void)
{
    if (reg_pid > 0) {
        kill(reg_pid, SIGTERM);
        waitpid(reg_pid, NULL, 0);
        reg_pid = -1;
    }
    if (reg_dir[0]) {
        char path[256];
        for (int i = 1; i <= 3; i++) {
            snprintf(path, sizeof path, "%s/%d.avsc", reg_dir, i);
            unlink(path);
        }
        rmdir(reg_dir);
        reg_dir[0] = '\0';
    }
}

static void start_plain(void) { registry_start(NULL); }
static void start_fail_2(void)
{
    static const char *const a[] = {"--fail-first", "2", NULL};
    registry_start(a);
}
static void start_fail_all(void)
{
    static const char *const a[] = {"--fail-first", "1000", NULL};
    registry_start(a);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

/* How many requests the stand-in has had, for path (NULL: all). */
static long registry_count(const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_stats", reg_url);
    CURL *c = curl_easy_init();
    buf b;
    buf_init(&b);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    long n = path ? (long)json_integer_value(json_object_get(json_object_get(j, "paths"), path))
                  : (long)json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    buf_free(&b);
    return n;
}

static void framed(buf *out, int32_t id, const char *line, const char *writer)
{
    codec_event_encoder *enc = encoder_with(writer, true, id, true);
    encode_line(enc, line, out);
    codec_event_encoder_free(enc);
}

TestSuite(registry, .timeout = 60);

Test(registry, fetches_the_writer_once_per_id, .init = start_plain, .fini = registry_stop)
{
    codec_decoder *dec = decoder_with(NULL, reg_url);
    char *evolved = evolved_schema();
    buf v1, v2;
    buf_init(&v1);
    buf_init(&v2);
    framed(&v1, 1, UPDATE_LINE, NULL);
    framed(&v2, 2, EVOLVED_LINE, evolved);
    arena mem;
    arena_init(&mem, 0);
    codec_error err;
    for (int i = 0; i < 5; i++) {
        event ev;
        cr_assert_eq(codec_decode(dec, v1.data, v1.len, &mem, &ev, &err), 0, "%s", err.msg);
        cr_expect_str_eq(field(&ev, "Title")->val.s, "Account Executive");
        cr_assert_eq(codec_decode(dec, v2.data, v2.len, &mem, &ev, &err), 0, "%s", err.msg);
        cr_expect_str_eq(field(&ev, "Nickname__c")->val.s, "Ada");
        cr_expect_str_eq(field(&ev, "LastModifiedDate")->val.s, "2026-11-25T10:00:00.000Z");
        arena_reset(&mem);
    }
    cr_expect_eq(registry_count("/schemas/ids/1"), 1);
    cr_expect_eq(registry_count("/schemas/ids/2"), 1);
    /* the framing is optional when a writer schema is configured too (AUTO) */
    codec_decoder *both = decoder_with(bundled(), reg_url);
    buf p;
    buf_init(&p);
    codec_event_encoder *plain = encoder_with(NULL, false, 0, false);
    encode_line(plain, UPDATE_LINE, &p);
    event ev;
    cr_expect_eq(codec_decode(both, p.data, p.len, &mem, &ev, &err), 0, "%s", err.msg);
    cr_expect_eq(codec_decode(both, v2.data, v2.len, &mem, &ev, &err), 0, "%s", err.msg);
    codec_event_encoder_free(plain);
    codec_decoder_free(both);
    buf_free(&p);
    arena_free(&mem);
    buf_free(&v1);
    buf_free(&v2);
    free(evolved);
    codec_decoder_free(dec);
}

Test(registry, retries_with_backoff, .init = start_fail_2, .fini = registry_stop)
{
    codec_decoder *dec = decoder_with(NULL, reg_url); /* 3 attempts */
    buf v;
    buf_init(&v);
    framed(&v, 1, UPDATE_LINE, NULL);
    codec_error err;
    cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), 0, "%s", err.msg);
    cr_expect_eq(registry_count("/schemas/ids/1"), 3, "two 503s, then the schema");
    buf_free(&v);
    codec_decoder_free(dec);
}

Test(registry, unavailable_after_bounded_retries, .init = start_fail_all, .fini = registry_stop)
{
    codec_decoder *dec = decoder_with(NULL, reg_url);
    buf v;
    buf_init(&v);
    framed(&v, 1, UPDATE_LINE, NULL);
    codec_error err;
    cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_REGISTRY, "%s", err.msg);
    cr_expect(codec_error_is_transient(err.kind));
    cr_expect_str_eq(codec_error_kind_name(err.kind), "registry_unavailable");
    cr_expect(strstr(err.msg, "503"), "%s", err.msg);
    cr_expect_eq(registry_count(NULL), 3);
    /* not remembered: the next value asks again */
    cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1);
    cr_expect_eq(registry_count(NULL), 6);
    buf_free(&v);
    codec_decoder_free(dec);
}

Test(registry, unreachable)
{
    /* a port nobody listens on: bind one, close it */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    char url[64];
    snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%d/", ntohs(a.sin_port));
    codec_decoder *dec = decoder_with(NULL, url);
    buf v;
    buf_init(&v);
    framed(&v, 1, UPDATE_LINE, NULL);
    codec_error err;
    cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_REGISTRY);
    cr_expect_null(strstr(err.msg, "secret"), "credentials in a message: %s", err.msg);
    buf_free(&v);
    codec_decoder_free(dec);
}

Test(registry, unknown_id_is_remembered_for_a_while, .init = start_plain, .fini = registry_stop)
{
    codec_decoder *dec = decoder_with(NULL, reg_url);
    buf v;
    buf_init(&v);
    framed(&v, 9, UPDATE_LINE, NULL);
    codec_error err;
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1);
        cr_expect_eq(err.kind, CODEC_ERR_UNKNOWN_SCHEMA, "%s", err.msg);
        cr_expect_eq(err.schema_id, 9);
    }
    cr_expect_eq(registry_count("/schemas/ids/9"), 1);
    buf_free(&v);
    codec_decoder_free(dec);
}

Test(registry, mismatching_writer_from_the_registry, .init = start_plain, .fini = registry_stop)
{
    codec_decoder *dec = decoder_with(NULL, reg_url);
    buf v;
    buf_init(&v);
    framed(&v, 3, UPDATE_LINE, NULL);
    codec_error err;
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(decode_bytes(dec, v.data, v.len, &err), -1);
        cr_expect_eq(err.kind, CODEC_ERR_SCHEMA_MISMATCH, "%s", err.msg);
        cr_expect(strstr(err.msg, "schema id 3"), "%s", err.msg);
    }
    cr_expect_eq(registry_count("/schemas/ids/3"), 1);
    buf_free(&v);
    codec_decoder_free(dec);
}

/* ------------------------------------------------------------------ command */

TestSuite(command, .timeout = 60);

static char *seats[] = {"recorder", "viewer"};
static cfg_workspace spaces[] = {{"Sales", "Rep"}, {"EMEA \"North\"", NULL}};
static cfg_assignment sales = {.name = "Sales",
                               .seats = seats,
                               .n_seats = 2,
                               .workspaces = spaces,
                               .n_workspaces = 2,
                               .data_capture = {true, true, false, true}};
static cfg_assignment bare = {.name = "Bare"};
static command_source src_kafka = {
    "salesforce.user.changes", 3, 12345, "987", "tk-1", 2, 1000001, 1764001000001LL};
static command_source src_none = {NULL, -1, -1, NULL, "tk-2", 1, 7, 8};

/* One command of every type and shape: every attribute kind, null manager, empty settings. */
static size_t sample_commands(command *out)
{
    size_t n = 0;
    command c = {.type = CMD_CREATE_USER,
                 .sf_user_id = "0055e0000000001AAK",
                 .attr_mask = ATTR_ALL,
                 .assignment = &sales,
                 .with_settings = true,
                 .with_manager = true,
                 .manager_id = "0055e0000000020AAK",
                 .source = &src_kafka,
                 .why = "R5.1: in scope \xe2\x9c\x93 \"Sales\""};
    c.attrs[ATTR_EMAIL] = value_str("first1.last1@acme.com");
    c.attrs[ATTR_FIRSTNAME] = value_str("First1");
    c.attrs[ATTR_LASTNAME] = value_str("Last1");
    c.attrs[ATTR_TITLE] = value_null();
    c.attrs[ATTR_PHONE] = value_str("+1 415 555 0100");
    c.attrs[ATTR_MOBILE] = value_null();
    c.attrs[ATTR_EXTENSION] = value_num(100);
    c.attrs[ATTR_ACTIVE] = value_bool(true);
    c.attrs[ATTR_TIMEZONE] = value_str("America/Los_Angeles");
    c.attrs[ATTR_LOCALE] = value_num(0.25);
    out[n++] = c;
    c.manager_id = NULL;
    c.source = NULL;
    c.why = NULL;
    out[n++] = c;
    command u = {.type = CMD_UPDATE_USER,
                 .sf_user_id = "005A",
                 .attr_mask = (1u << ATTR_TITLE) | (1u << ATTR_MOBILE),
                 .source = &src_none};
    u.attrs[ATTR_TITLE] = value_str("VP Sales");
    u.attrs[ATTR_MOBILE] = value_null();
    out[n++] = u;
    out[n++] = (command){.type = CMD_APPLY_SETTINGS,
                         .sf_user_id = "005A",
                         .assignment = &bare,
                         .with_settings = true};
    out[n++] = (command){.type = CMD_SET_MANAGER, .sf_user_id = "005A", .with_manager = true};
    out[n++] = (command){
        .type = CMD_SET_MANAGER, .sf_user_id = "005A", .with_manager = true, .manager_id = "005M"};
    out[n++] = (command){.type = CMD_NOTIFY_MANAGER,
                         .sf_user_id = "005A",
                         .with_manager = true,
                         .manager_id = "005M"};
    out[n++] = (command){.type = CMD_DEACTIVATE_USER,
                         .sf_user_id = "005A",
                         .reason = "inactive_in_salesforce",
                         .why = "R5.4"};
    command r = {.type = CMD_REACTIVATE_USER,
                 .sf_user_id = "005A",
                 .attr_mask = ATTR_ALL,
                 .assignment = &sales};
    for (int i = 0; i < ATTR__COUNT; i++)
        r.attrs[i] = value_str("x");
    r.attrs[ATTR_ACTIVE] = value_bool(false);
    out[n++] = r;
    out[n++] = (command){.type = CMD_COMPANY_SETTINGS, .sf_user_id = "", .company_toggle = true};
    out[n++] = (command){.type = CMD_COMPANY_SETTINGS, .sf_user_id = ""};
    for (size_t i = 0; i < n; i++)
        snprintf(out[i].id, sizeof out[i].id, "%032zx", i * 0x1234567 + 0xabcdef);
    return n;
}

Test(command, json_format_is_command_to_json)
{
    command cmds[16];
    size_t n = sample_commands(cmds);
    codec_command_encoder_config cfg = {.format = CODEC_FORMAT_JSON};
    codec_command_encoder *e;
    codec_error err;
    cr_assert_eq(codec_command_encoder_new(&cfg, &e, &err), 0, "%s", err.msg);
    cr_expect_eq(codec_command_encoder_schema_id(e), -1);
    buf want, got, back;
    buf_init(&want);
    buf_init(&got);
    buf_init(&back);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&want);
        command_to_json(&cmds[i], &want);
        cr_assert_eq(codec_encode_command(e, &cmds[i], &got, &err), 0);
        cr_expect_str_eq(got.data, want.data);
        cr_assert_eq(codec_command_value_to_json(got.data, got.len, &back, &err), 0);
        cr_expect_str_eq(back.data, want.data);
    }
    buf_free(&want);
    buf_free(&got);
    buf_free(&back);
    codec_command_encoder_free(e);
    codec_format f;
    cr_expect_eq(codec_format_parse("avro", &f), 0);
    cr_expect_eq(f, CODEC_FORMAT_AVRO);
    cr_expect_eq(codec_format_parse("json", &f), 0);
    cr_expect_eq(f, CODEC_FORMAT_JSON);
    cr_expect_eq(codec_format_parse("xml", &f), -1);
}

/* Avro and back gives exactly the JSON form, plain and framed. */
Test(command, avro_round_trip_equals_json)
{
    command cmds[16];
    size_t n = sample_commands(cmds);
    for (int framed_mode = 0; framed_mode < 2; framed_mode++) {
        codec_command_encoder_config cfg = {
            .format = CODEC_FORMAT_AVRO, .framed = framed_mode, .schema_id = 77};
        codec_command_encoder *e;
        codec_error err;
        cr_assert_eq(codec_command_encoder_new(&cfg, &e, &err), 0, "%s", err.msg);
        cr_expect_eq(codec_command_encoder_schema_id(e), framed_mode ? 77 : -1);
        buf want, got, back;
        buf_init(&want);
        buf_init(&got);
        buf_init(&back);
        for (size_t i = 0; i < n; i++) {
            buf_reset(&want);
            command_to_json(&cmds[i], &want);
            cr_assert_eq(codec_encode_command(e, &cmds[i], &got, &err), 0);
            if (framed_mode) cr_expect_eq(memcmp(got.data, "\0\0\0\0\x4d", 5), 0);
            cr_assert_eq(codec_command_value_to_json(got.data, got.len, &back, &err), 0,
                         "command %zu: %s", i, err.msg);
            cr_expect_str_eq(back.data, want.data, "command %zu", i);
            if (framed_mode) cr_expect_eq(err.schema_id, 77);
            json_t *j = json_loadb(back.data, back.len, 0, NULL);
            cr_expect_not_null(j, "not JSON: %s", back.data);
            json_decref(j);
        }
        buf_free(&want);
        buf_free(&got);
        buf_free(&back);
        codec_command_encoder_free(e);
    }
}

/* avro-c, the reference reader, reads our command values with GongCommand.avsc. */
Test(command, interop_with_avro_c)
{
    command cmds[16];
    size_t n = sample_commands(cmds);
    const char *avsc = codec_command_schema_avsc();
    avro_schema_t schema;
    cr_assert_eq(avro_schema_from_json_length(avsc, strlen(avsc), &schema), 0, "%s",
                 avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    codec_command_encoder_config cfg = {.format = CODEC_FORMAT_AVRO};
    codec_command_encoder *e;
    codec_error err;
    cr_assert_eq(codec_command_encoder_new(&cfg, &e, &err), 0, "%s", err.msg);
    buf v;
    buf_init(&v);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(codec_encode_command(e, &cmds[i], &v, &err), 0);
        avro_value_t rec, f, branch;
        avro_generic_value_new(iface, &rec);
        avro_reader_t r = avro_reader_memory(v.data, (int64_t)v.len);
        cr_assert_eq(avro_value_read(r, &rec), 0, "command %zu: %s", i, avro_strerror());
        avro_reader_free(r);
        size_t size;
        avro_value_sizeof(&rec, &size);
        cr_expect_eq(size, v.len, "command %zu: avro-c sizes it differently", i);
        const char *s;
        size_t len;
        int sym;
        avro_value_get_by_name(&rec, "command_id", &f, NULL);
        avro_value_get_string(&f, &s, &len);
        cr_expect_str_eq(s, cmds[i].id);
        avro_value_get_by_name(&rec, "type", &f, NULL);
        avro_value_get_enum(&f, &sym);
        avro_schema_t es = avro_value_get_schema(&f);
        cr_expect_str_eq(avro_schema_enum_get(es, sym), command_type_name(cmds[i].type));
        avro_value_get_by_name(&rec, "user", &f, NULL);
        avro_value_get_current_branch(&f, &branch);
        if (cmds[i].attr_mask) {
            avro_value_t carried;
            avro_value_get_by_name(&branch, "carried", &carried, NULL);
            avro_value_get_size(&carried, &size);
            cr_expect_eq(size, (size_t)__builtin_popcount(cmds[i].attr_mask));
        }
        avro_value_decref(&rec);
    }
    buf_free(&v);
    codec_command_encoder_free(e);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

Test(command, bad_values_are_typed_errors)
{
    command cmds[16];
    size_t n = sample_commands(cmds);
    codec_command_encoder_config cfg = {.format = CODEC_FORMAT_AVRO};
    codec_command_encoder *e;
    codec_error err;
    cr_assert_eq(codec_command_encoder_new(&cfg, &e, &err), 0, "%s", err.msg);
    buf v, out;
    buf_init(&v);
    buf_init(&out);
    cr_assert_eq(codec_encode_command(e, &cmds[0], &v, &err), 0);
    for (size_t k = 0; k < v.len; k++) {
        if (codec_command_value_to_json(v.data, k, &out, &err) == 0)
            cr_assert_fail("prefix %zu decoded", k);
        CHECK(err.kind == CODEC_ERR_TRUNCATED || err.kind == CODEC_ERR_BAD_RECORD, "prefix %zu", k);
    }
    unsigned char m[2048];
    size_t bad_json = 0, untyped = 0;
    for (int round = 0; round < 50000; round++) {
        const command *c = &cmds[rng() % n];
        codec_encode_command(e, c, &v, &err);
        memcpy(m, v.data, v.len);
        m[rng() % v.len] = (unsigned char)rng();
        if (codec_command_value_to_json(m, v.len, &out, &err) == 0) {
            json_t *j = json_loadb(out.data, out.len, 0, NULL);
            bad_json += !j;
            json_decref(j);
        } else {
            untyped += err.kind <= CODEC_OK || err.kind >= CODEC_ERR__COUNT;
        }
    }
    cr_expect_eq(bad_json, 0, "%zu mutated values gave bad JSON", bad_json);
    cr_expect_eq(untyped, 0);
    buf_free(&v);
    buf_free(&out);
    codec_command_encoder_free(e);
}

Test(command, registers_the_subject_and_frames, .init = start_plain, .fini = registry_stop)
{
    codec_command_encoder_config cfg = {.format = CODEC_FORMAT_AVRO,
                                        .registry = {.url = reg_url, .backoff_ms = 10},
                                        .topic = "gong.user.commands"};
    codec_command_encoder *e, *again;
    codec_error err;
    cr_assert_eq(codec_command_encoder_new(&cfg, &e, &err), 0, "%s", err.msg);
    int32_t id = codec_command_encoder_schema_id(e);
    cr_expect_geq(id, 4, "ids 1-3 are taken by the folder's schemas");
    cr_assert_eq(codec_command_encoder_new(&cfg, &again, &err), 0, "%s", err.msg);
    cr_expect_eq(codec_command_encoder_schema_id(again), id, "registering is idempotent");
    cr_expect_eq(registry_count("/subjects/gong.user.commands-value/versions"), 2);
    command cmds[16];
    sample_commands(cmds);
    buf v, out, want;
    buf_init(&v);
    buf_init(&out);
    buf_init(&want);
    cr_assert_eq(codec_encode_command(e, &cmds[0], &v, &err), 0);
    cr_expect_eq(v.data[0], 0);
    cr_assert_eq(codec_command_value_to_json(v.data, v.len, &out, &err), 0, "%s", err.msg);
    cr_expect_eq(err.schema_id, id);
    command_to_json(&cmds[0], &want);
    cr_expect_str_eq(out.data, want.data);
    codec_command_encoder_free(again);
    codec_command_encoder_free(e);
    /* without a topic there is no subject */
    cfg.topic = NULL;
    cr_expect_eq(codec_command_encoder_new(&cfg, &e, &err), -1);
    buf_free(&v);
    buf_free(&out);
    buf_free(&want);
}

Test(command, registry_down_at_start, .init = start_fail_all, .fini = registry_stop)
{
    codec_command_encoder_config cfg = {
        .format = CODEC_FORMAT_AVRO,
        .registry = {.url = reg_url, .attempts = 2, .backoff_ms = 10},
        .topic = "t"};
    codec_command_encoder *e;
    codec_error err;
    cr_expect_eq(codec_command_encoder_new(&cfg, &e, &err), -1);
    cr_expect_eq(err.kind, CODEC_ERR_REGISTRY, "%s", err.msg);
    cr_expect_eq(registry_count(NULL), 2);
}

/* ------------------------------------------------------------------ cli */

TestSuite(cli, .timeout = 120);

static const char *binary(void)
{
    const char *b = getenv("PV_BINARY");
    if (!b || access(b, X_OK) != 0) return NULL;
    return b;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The binary under test (the test is skipped without one) and a temp dir of the test's own,
 * cli_tmp, which cli_end (the tests' .fini) removes, also after a failed assertion. */
static char cli_tmp[32];

static const char *cli_begin(void)
{
    const char *bin = binary();
    if (!bin) cr_skip_test("PV_BINARY not built");
    snprintf(cli_tmp, sizeof cli_tmp, "/tmp/pv-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(cli_tmp));
    return bin;
}

/* A file for the command under test, in cli_tmp. */
static void cli_write(const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", cli_tmp, name);
    write_text(path, text);
}

/* A file the command under test wrote into cli_tmp (malloc'd; NULL when absent). */
static char *cli_read(const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", cli_tmp, name);
    return read_text(path, NULL);
}

static void cli_end(void)
{
    if (cli_tmp[0]) sh("rm -rf '%s'", cli_tmp);
    cli_tmp[0] = '\0';
}

static void cli_end_registry(void)
{
    registry_stop();
    cli_end();
}

/* encode then decode gives events that simulate treats exactly as the originals (issue 5: "so
 * simulate's output is identical both ways"), for every scenario the User schema can carry. */
static size_t simulate_both_ways(const char *bin, const char *dir, const char *tmp)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    size_t compared = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char sc[4096];
        snprintf(sc, sizeof sc, "%s/%s", dir, de->d_name);
        char ev[4200], settings[4200];
        snprintf(ev, sizeof ev, "%s/events.jsonl", sc);
        snprintf(settings, sizeof settings, "%s/settings.yaml", sc);
        if (access(ev, R_OK) != 0 || access(settings, R_OK) != 0) continue;
        sh("rm -rf '%s/bin'", tmp);
        if (sh("'%s' encode --events '%s' --out '%s/bin' --bitmaps 2>'%s/encode.err'", bin, ev, tmp,
               tmp) != 0) {
            size_t n;
            char errpath[4200];
            snprintf(errpath, sizeof errpath, "%s/encode.err", tmp);
            char *msg = read_text(errpath, &n);
            cr_expect(msg && strstr(msg, "not in the writer schema"), "%s: encode: %s", sc,
                      msg ? msg : "");
            free(msg);
            continue;
        }
        cr_assert_eq(sh("cd '%s' && if ls bin/*.bin >/dev/null 2>&1; then '%s' decode bin/*.bin; "
                        "fi > decoded.jsonl",
                        tmp, bin),
                     0, "%s: decode failed", sc);
        int a = sh("'%s' simulate --no-why --settings '%s' --events '%s' >'%s/a.jsonl' 2>/dev/null",
                   bin, settings, ev, tmp);
        int b = sh("'%s' simulate --no-why --settings '%s' --events '%s/decoded.jsonl' "
                   ">'%s/b.jsonl' 2>/dev/null",
                   bin, settings, tmp, tmp);
        cr_expect_eq(a, b, "%s: simulate exit codes differ", sc);
        cr_expect_eq(sh("cmp -s '%s/a.jsonl' '%s/b.jsonl'", tmp, tmp), 0,
                     "%s: simulate's output differs between the JSON and the Avro events", sc);
        compared++;
    }
    closedir(d);
    return compared;
}

Test(cli, simulate_identical_both_ways, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char dir[4096];
    shared_dir(dir, sizeof dir);
    size_t n = simulate_both_ways(bin, dir, tmp);
    snprintf(dir, sizeof dir, "%s/tests/scenarios", source_dir());
    n += simulate_both_ways(bin, dir, tmp);
    cr_expect_gt(n, 50);
}

Test(cli, decode_reports_bad_files_and_goes_on, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char path[256];
    cli_write("events.jsonl", UPDATE_LINE);
    cr_assert_eq(
        sh("'%s' encode --events '%s/events.jsonl' --out '%s/out' 2>/dev/null", bin, tmp, tmp), 0);
    cr_assert_eq(sh("head -c 20 '%s/out/000001.bin' > '%s/cut.bin'", tmp, tmp), 0);
    int rc = sh("'%s' decode '%s/cut.bin' '%s/out/000001.bin' >'%s/out.jsonl' 2>'%s/err.txt'", bin,
                tmp, tmp, tmp, tmp);
    cr_expect_eq(rc, 2);
    char *err = read_text((snprintf(path, sizeof path, "%s/err.txt", tmp), path), NULL);
    cr_expect(err && strstr(err, "cut.bin") && strstr(err, "truncated"), "stderr: %s", err);
    free(err);
    char *out = read_text((snprintf(path, sizeof path, "%s/out.jsonl", tmp), path), NULL);
    cr_expect(out && strstr(out, "\"Title\":\"Account Executive\"") &&
                  strstr(out, "\"changedFields\":[\"Title\",\"LastModifiedDate\"]"),
              "stdout: %s", out);
    free(out);
    /* framed with an id, decoded through a registry that does not have it */
    cr_assert_eq(
        sh("'%s' encode --events '%s/events.jsonl' --out '%s/framed' --schema-id 5 2>/dev/null",
           bin, tmp, tmp),
        0);
    rc = sh("'%s' decode --registry http://127.0.0.1:9 '%s/framed/000001.bin' 2>'%s/err.txt' "
            ">/dev/null",
            bin, tmp, tmp);
    cr_expect_eq(rc, 1, "an unreachable registry is a runtime failure");
}

Test(cli, decode_through_the_registry, .init = start_plain, .fini = cli_end_registry)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char path[256];
    cli_write("events.jsonl", CREATE_LINE);
    cr_assert_eq(
        sh("'%s' encode --events '%s/events.jsonl' --out '%s/out' --schema-id 1 2>/dev/null", bin,
           tmp, tmp),
        0);
    int rc = sh("'%s' decode --registry '%s' '%s/out/000001.bin' >'%s/out.jsonl'", bin, reg_url,
                tmp, tmp);
    cr_expect_eq(rc, 0);
    char *out = read_text((snprintf(path, sizeof path, "%s/out.jsonl", tmp), path), NULL);
    cr_expect(out && strstr(out, "\"Name\":{\"FirstName\":\"Olga\",\"LastName\":\"Brown\"}"),
              "stdout: %s", out);
    free(out);
}

/* interfaces.md: exit 0 "unless input or settings are bad", 1 for a runtime failure. Events
 * that cannot be read are bad input, not an empty file; commands that cannot be written are
 * lost, not printed; a file that cannot be opened stops simulate before it prints anything. */
Test(cli, simulate_fails_when_its_input_or_output_fails, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char sc[4096];
    snprintf(sc, sizeof sc, "%s/tests/scenarios/r2_r3_r7_review_i18_r7_2_company_settings_on",
             source_dir());
    char path[4200];
    int rc = sh("'%s' simulate --settings '%s/settings.yaml' --events '%s' >'%s/out' 2>'%s/err'",
                bin, sc, tmp, tmp, tmp);
    cr_expect_eq(rc, 2, "a directory as the events");
    char *err = cli_read("err");
    cr_expect(err && strstr(err, "Is a directory"), "stderr: %s", err);
    free(err);
    size_t n = 1;
    free(read_text((snprintf(path, sizeof path, "%s/out", tmp), path), &n));
    cr_expect_eq(n, 0, "COMPANY_SETTINGS printed before the directory was noticed");

    rc = sh("'%s' simulate --settings '%s/settings.yaml' --events '%s/nope.jsonl' >'%s/out' "
            "2>'%s/err'",
            bin, sc, tmp, tmp, tmp);
    cr_expect_eq(rc, 2, "a missing events file");
    n = 1;
    free(read_text((snprintf(path, sizeof path, "%s/out", tmp), path), &n));
    cr_expect_eq(n, 0, "COMPANY_SETTINGS printed before the missing file was noticed");

    rc = sh("'%s' simulate --settings '%s/settings.yaml' --events '%s/events.jsonl' >/dev/full "
            "2>'%s/err'",
            bin, sc, sc, tmp);
    cr_expect_eq(rc, 1, "commands written to a full disk");
    err = cli_read("err");
    cr_expect(err && strstr(err, "cannot write the output: No space left on device"), "stderr: %s",
              err);
    free(err);

    /* a byte-order mark in front of the first event changes nothing */
    cr_assert_eq(sh("printf '\\357\\273\\277' >'%s/bom.jsonl' && cat '%s/events.jsonl' "
                    ">>'%s/bom.jsonl'",
                    tmp, sc, tmp),
                 0);
    int a = sh("'%s' simulate --settings '%s/settings.yaml' --events '%s/events.jsonl' "
               ">'%s/a.jsonl' 2>/dev/null",
               bin, sc, sc, tmp);
    int b = sh("'%s' simulate --settings '%s/settings.yaml' --events '%s/bom.jsonl' "
               ">'%s/b.jsonl' 2>/dev/null",
               bin, sc, tmp, tmp);
    cr_expect(a == 0 && b == 0, "exit codes %d and %d", a, b);
    cr_expect_eq(sh("cmp -s '%s/a.jsonl' '%s/b.jsonl'", tmp, tmp), 0);
}

/* interfaces.md: simulate applies R1-R7; the R8.3 guard of the settings is run's, and --guards
 * applies it as run does (a held deactivation is then a warning, not a command). */
Test(cli, simulate_applies_the_guard_only_when_asked, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char sc[4096];
    snprintf(sc, sizeof sc, "%s/tests/scenarios/r8_3_guard_count_exact_limit", source_dir());
    for (int guards = 0; guards < 2; guards++) {
        cr_assert_eq(sh("'%s' simulate --settings '%s/settings.yaml' --events '%s/events.jsonl' "
                        "%s >'%s/out' 2>'%s/err'",
                        bin, sc, sc, guards ? "--guards" : "", tmp, tmp),
                     0);
        char *out = cli_read("out");
        char *err = cli_read("err");
        cr_assert(out && err);
        size_t deactivations = 0;
        for (const char *p = out; (p = strstr(p, "\"DEACTIVATE_USER\"")); p++)
            deactivations++;
        /* three users deactivated in the window, two allowed */
        cr_expect_eq(deactivations, guards ? 2 : 3, "--guards %d:\n%s", guards, out);
        cr_expect_eq(!!strstr(err, "held by the mass-deactivation guard"), guards, "%s", err);
        cr_expect_eq(!!strstr(err, "note: the settings' guards (R8.3) were not applied: 3 "
                                   "deactivations went through; --guards applies them"),
                     !guards, "%s", err);
        free(out);
        free(err);
    }
}

/* Options that belong to the other kind of explanation are refused, not ignored: an admin who
 * names the service's Redis without --live would read an explanation from an empty state. The
 * environment's Redis (a pod's) is the service's own and no mistake. */
Test(cli, explain_refuses_the_options_of_the_other_kind, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    cli_write("s.yaml", "company:\n  primary_domain: acme.com\nassignments:\n  - name: All\n");
    cli_write("e.jsonl", "");
    static const struct {
        const char *args, *says;
        bool events;
    } cases[] = {
        {"--redis redis://127.0.0.1:1", "--redis names the service's state", true},
        {"--redis-prefix x:", "--redis-prefix names the service's state", true},
        {"--live --guards --redis redis://127.0.0.1:1", "--guards is for an explanation offline",
         false},
        {"--live --redis redis://127.0.0.1:1", "--events is for an explanation offline", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_expect_eq(sh("'%s' explain --settings '%s/s.yaml' %s%s%s %s --user 005A00000000001 "
                        ">'%s/out' 2>'%s/err'",
                        bin, tmp, cases[i].events ? "--events '" : "", cases[i].events ? tmp : "",
                        cases[i].events ? "/e.jsonl'" : "", cases[i].args, tmp, tmp),
                     2, "%s", cases[i].args);
        char *err = cli_read("err");
        cr_expect(err && strstr(err, cases[i].says), "%s: %s", cases[i].args, err);
        free(err);
    }
    /* the same Redis from the environment: explained offline after the events, exit 0 */
    cr_expect_eq(sh("PROVISIONER_REDIS=redis://127.0.0.1:1 PROVISIONER_REDIS_PREFIX=x: '%s' "
                    "explain --settings '%s/s.yaml' --events '%s/e.jsonl' --user "
                    "005A00000000001 >'%s/out' 2>&1",
                    bin, tmp, tmp, tmp),
                 0);
}

/* explain --live makes a Salesforce client only for settings whose filters read Profile or
 * UserRole fields: a pod's Salesforce variables, even incomplete ones, are no reason to fail an
 * explanation that needs no table (here it goes on to Redis, away: exit 1). */
Test(cli, explain_live_reads_salesforce_only_for_relationship_filters, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    cli_write("plain.yaml", "company:\n  primary_domain: acme.com\nassignments:\n  - name: All\n");
    cli_write("rel.yaml", "company:\n  primary_domain: acme.com\nassignments:\n  - name: Admins\n"
                          "    filter: \"Profile.Name = 'System Administrator'\"\n");
    static const struct {
        const char *settings;
        int code;
        const char *says;
    } cases[] = {{"plain", 1, "Redis redis://127.0.0.1:1: cannot connect"},
                 {"rel", 2, "salesforce: no client id"}};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(sh("PROVISIONER_SALESFORCE_URL=http://127.0.0.1:9 '%s' explain --live "
                        "--settings '%s/%s.yaml' --redis redis://127.0.0.1:1 --user "
                        "005A00000000001 >'%s/out' 2>'%s/err'",
                        bin, tmp, cases[i].settings, tmp, tmp),
                     cases[i].code, "%s", cases[i].settings);
        char *err = cli_read("err");
        cr_expect(err && strstr(err, cases[i].says), "%s: %s", cases[i].settings, err);
        free(err);
    }
}

/* explain answers "why did nothing happen when the title changed?" when R1.4 left the event out */
Test(cli, explain_lists_the_events_r1_4_left_out, .fini = cli_end)
{
    const char *bin = cli_begin(), *tmp = cli_tmp;
    char path[256];
    cli_write("s.yaml", "company:\n  primary_domain: acme.com\nassignments:\n  - name: All\n");
#define EV_AT(type, ts, extra)                                                                     \
    "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":[\"005A00000000001IAA\"],"      \
    "\"changeType\":\"" type "\",\"changedFields\":[],\"transactionKey\":\"t\","                   \
    "\"sequenceNumber\":1,\"commitTimestamp\":" #ts ",\"commitNumber\":" #ts "}" extra "}\n"
    cli_write("e.jsonl", EV_AT("CREATE", 2000,
                               ",\"Email\":\"a@acme.com\",\"FirstName\":\"A\",\"LastName\":\"B\","
                               "\"IsActive\":true") EV_AT("UPDATE", 1000, ",\"Title\":\"CTO\"")
                             EV_AT("UPDATE", 2000, ",\"Title\":\"CEO\""));
#undef EV_AT
    cr_assert_eq(sh("'%s' explain --settings '%s/s.yaml' --events '%s/e.jsonl' --user "
                    "005A00000000001 >'%s/out' 2>/dev/null",
                    bin, tmp, tmp, tmp),
                 0);
    char *out = cli_read("out");
    cr_expect(out && strstr(out, "Events of this user left out (R1.4: not newer than the last one "
                                 "applied): line 2 (older), line 3 (the same position again)."),
              "%s", out);
    free(out); /* past five, the rest are counted */
    snprintf(path, sizeof path, "%s/e.jsonl", tmp);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    for (int i = 0; i < 5; i++)
        fprintf(f, "{\"ChangeEventHeader\":{\"entityName\":\"User\",\"recordIds\":"
                   "[\"005A00000000001IAA\"],\"changeType\":\"UPDATE\",\"changedFields\":[],"
                   "\"transactionKey\":\"t\",\"sequenceNumber\":1,\"commitTimestamp\":1000,"
                   "\"commitNumber\":1000},\"Title\":\"X\"}\n");
    fclose(f);
    cr_assert_eq(sh("'%s' explain --settings '%s/s.yaml' --events '%s/e.jsonl' --user "
                    "005A00000000001 >'%s/out' 2>/dev/null",
                    bin, tmp, tmp, tmp),
                 0);
    out = cli_read("out");
    cr_expect(out && strstr(out, "line 4 (older), line 5 (older), line 6 (older), and 2 more.\n"),
              "%s", out);
    free(out);
}
