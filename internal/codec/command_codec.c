/* Commands on the output topic: JSON (command_to_json) or Avro per schemas/GongCommand.avsc,
 * plain or Confluent-framed. The schema is ours and fixed, so the writer and the reader below
 * follow it field by field; the encoder checks at creation that the bundled schema still has the
 * shape they follow. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

extern const char pv_gong_command_avsc[];

const char *codec_command_schema_avsc(void) { return pv_gong_command_avsc; }

int codec_format_parse(const char *s, codec_format *out)
{
    if (s && strcmp(s, "json") == 0)
        *out = CODEC_FORMAT_JSON;
    else if (s && strcmp(s, "avro") == 0)
        *out = CODEC_FORMAT_AVRO;
    else
        return -1;
    return 0;
}

const char *codec_format_name(codec_format f) { return f == CODEC_FORMAT_AVRO ? "avro" : "json"; }

/* GongCommand's fields, and CommandType's symbols, in schema order. */
static const char *const top_fields[] = {
    "command_id",
    "type",
    "sf_user_id",
    "user",
    "assignment",
    "settings",
    "manager_sf_user_id",
    "reason",
    "managers_can_toggle_data_capture",
    "source",
    "why",
};
enum { N_TOP = sizeof top_fields / sizeof top_fields[0] };

static const char *const type_symbols[] = {
    "CREATE_USER",    "UPDATE_USER",     "APPLY_SETTINGS",  "SET_MANAGER",
    "NOTIFY_MANAGER", "DEACTIVATE_USER", "REACTIVATE_USER", "COMPANY_SETTINGS",
};
enum { N_TYPES = sizeof type_symbols / sizeof type_symbols[0] };

/* The union branches of a GongUser attribute: 1 string, 2 boolean, 3 double, except `active`
 * (1 boolean, 2 string, 3 double). */
static int branch_of(int attr, val_type t)
{
    bool active = attr == ATTR_ACTIVE;
    switch (t) {
    case VAL_NULL: return 0;
    case VAL_STR: return active ? 2 : 1;
    case VAL_BOOL: return active ? 1 : 2;
    case VAL_NUM: return 3;
    }
    return 0;
}

static bool same_names(const av_node *rec, const char *const *names, size_t n)
{
    if (!rec || rec->kind != AV_RECORD || rec->n != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rec->fields[i], names[i]) != 0) return false;
    return true;
}

static int check_bundled_schema(codec_error *err)
{
    av_schema *s;
    perr pe;
    if (codec_schema_compile(pv_gong_command_avsc, strlen(pv_gong_command_avsc), &s, &pe) < 0)
        return codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH, "GongCommand.avsc: %s", pe.msg);
    const char *user_fields[ATTR__COUNT + 1];
    for (int i = 0; i < ATTR__COUNT; i++)
        user_fields[i] = command_attr_gong[i];
    user_fields[ATTR__COUNT] = "carried";
    const av_node *root = s->root;
    bool ok = same_names(root, top_fields, N_TOP) && root->items[1]->kind == AV_ENUM &&
              root->items[1]->n_symbols == N_TYPES &&
              same_names(codec_record_of(root->items[3]), user_fields, ATTR__COUNT + 1);
    for (size_t i = 0; ok && i < N_TYPES; i++)
        ok = strcmp(root->items[1]->symbols[i], type_symbols[i]) == 0;
    codec_schema_free(s);
    if (!ok)
        return codec_fail(
            err, CODEC_ERR_SCHEMA_MISMATCH,
            "schemas/GongCommand.avsc no longer has the fields command_codec.c writes");
    return 0;
}

struct codec_command_encoder {
    codec_format format;
    bool framed;
    int32_t schema_id;
};

int codec_command_encoder_new(const codec_command_encoder_config *cfg, codec_command_encoder **out,
                              codec_error *err)
{
    if (err) err->schema_id = -1, err->offset = 0;
    codec_command_encoder *e = xcalloc(1, sizeof *e);
    e->format = cfg->format;
    e->schema_id = -1;
    if (e->format == CODEC_FORMAT_AVRO) {
        if (check_bundled_schema(err) < 0) goto fail;
        if (cfg->registry.url && *cfg->registry.url) {
            if (!cfg->topic || !*cfg->topic) {
                codec_fail(err, CODEC_ERR_ENCODE,
                           "a topic is needed to register the command "
                           "schema (subject <topic>-value)");
                goto fail;
            }
            codec_registry *r;
            if (codec_registry_new(&cfg->registry, &r, err) < 0) goto fail;
            char subject[512];
            snprintf(subject, sizeof subject, "%s-value", cfg->topic);
            int rc = codec_registry_register(r, subject, pv_gong_command_avsc, &e->schema_id, err);
            codec_registry_free(r);
            if (rc < 0) goto fail;
            e->framed = true;
        } else if (cfg->framed) {
            e->framed = true;
            e->schema_id = cfg->schema_id;
        }
    }
    *out = e;
    return 0;
fail:
    free(e);
    return -1;
}

void codec_command_encoder_free(codec_command_encoder *e) { free(e); }

int32_t codec_command_encoder_schema_id(const codec_command_encoder *e)
{
    return e->framed ? e->schema_id : -1;
}

static void put_str(buf *b, const char *s) { codec_put_bytes(b, s, strlen(s)); }

static void put_opt_str(buf *b, const char *s)
{
    if (!s) {
        codec_put_long(b, 0);
        return;
    }
    codec_put_long(b, 1);
    put_str(b, s);
}

static void put_double(buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (char)(u >> (8 * i));
    buf_append(b, le, 8);
}

static void put_attr(buf *b, int attr, const value_t *v)
{
    codec_put_long(b, branch_of(attr, v->type));
    switch (v->type) {
    case VAL_NULL: break;
    case VAL_STR: codec_put_bytes(b, v->s, v->len); break;
    case VAL_BOOL: buf_putc(b, v->b ? 1 : 0); break;
    case VAL_NUM: put_double(b, v->num); break;
    }
}

static void put_settings(buf *b, const cfg_assignment *a)
{
    if (a->n_seats) {
        codec_put_long(b, (int64_t)a->n_seats);
        for (size_t i = 0; i < a->n_seats; i++)
            put_str(b, a->seats[i]);
    }
    codec_put_long(b, 0);
    if (a->n_workspaces) {
        codec_put_long(b, (int64_t)a->n_workspaces);
        for (size_t i = 0; i < a->n_workspaces; i++) {
            put_opt_str(b, a->workspaces[i].workspace);
            put_opt_str(b, a->workspaces[i].permission_profile);
        }
    }
    codec_put_long(b, 0);
    const cfg_data_capture *d = &a->data_capture;
    buf_putc(b, d->web_conferences ? 1 : 0);
    buf_putc(b, d->telephony ? 1 : 0);
    buf_putc(b, d->emails ? 1 : 0);
    buf_putc(b, d->calendar ? 1 : 0);
}

static void put_command(buf *b, const command *c)
{
    put_str(b, c->id);
    int sym = 0;
    for (int i = 0; i < N_TYPES; i++)
        if (strcmp(type_symbols[i], command_type_name(c->type)) == 0) sym = i;
    codec_put_long(b, sym);
    put_str(b, c->sf_user_id ? c->sf_user_id : "");
    if (c->attr_mask) {
        codec_put_long(b, 1);
        value_t null = value_null();
        int carried = 0;
        for (int i = 0; i < ATTR__COUNT; i++) {
            bool has = c->attr_mask & (1u << i);
            carried += has;
            put_attr(b, i, has ? &c->attrs[i] : &null);
        }
        codec_put_long(b, carried);
        for (int i = 0; i < ATTR__COUNT; i++)
            if (c->attr_mask & (1u << i)) put_str(b, command_attr_gong[i]);
        codec_put_long(b, 0);
    } else {
        codec_put_long(b, 0);
    }
    put_opt_str(b, c->assignment ? c->assignment->name : NULL);
    if (c->assignment && c->with_settings) {
        codec_put_long(b, 1);
        put_settings(b, c->assignment);
    } else {
        codec_put_long(b, 0);
    }
    put_opt_str(b, c->with_manager ? c->manager_id : NULL);
    put_opt_str(b, c->reason);
    if (c->type == CMD_COMPANY_SETTINGS) {
        codec_put_long(b, 1);
        buf_putc(b, c->company_toggle ? 1 : 0);
    } else {
        codec_put_long(b, 0);
    }
    if (c->source) {
        const command_source *s = c->source;
        codec_put_long(b, 1);
        put_opt_str(b, s->topic);
        if (s->topic) {
            codec_put_long(b, 1);
            codec_put_long(b, s->partition);
            codec_put_long(b, 1);
            codec_put_long(b, s->offset);
        } else {
            codec_put_long(b, 0);
            codec_put_long(b, 0);
        }
        put_opt_str(b, s->replay_id);
        put_opt_str(b, s->transaction_key);
        codec_put_long(b, s->sequence_number);
        codec_put_long(b, s->commit_number);
        codec_put_long(b, s->commit_timestamp);
    } else {
        codec_put_long(b, 0);
    }
    put_opt_str(b, c->why);
}

int codec_encode_command(codec_command_encoder *e, const command *c, buf *out, codec_error *err)
{
    (void)err; /* every command fits the schema */
    buf_reset(out);
    if (e->format == CODEC_FORMAT_JSON) {
        command_to_json(c, out);
        return 0;
    }
    if (e->framed) codec_put_frame(out, e->schema_id);
    put_command(out, c);
    return 0;
}

/* ---- Avro command -> the JSON command_to_json writes */
static int rd_str_json(av_reader *r, buf *out)
{
    const uint8_t *s;
    size_t n;
    if (codec_rd_string_view(r, &s, &n) < 0) return -1;
    buf_json_str(out, (const char *)s, n);
    return 0;
}

/* ["null", T]: 1 when T follows, 0 for null. */
static int rd_opt(av_reader *r, int *present)
{
    size_t b;
    if (codec_rd_index(r, 2, &b) < 0) return -1;
    *present = (int)b;
    return 0;
}

static int rd_opt_str_json(av_reader *r, buf *out)
{
    int present;
    if (rd_opt(r, &present) < 0) return -1;
    if (!present) {
        buf_puts(out, "null");
        return 0;
    }
    return rd_str_json(r, out);
}

static int rd_bool(av_reader *r, bool *v)
{
    if (r->p >= r->end) return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends in a boolean");
    if (*r->p > 1) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "boolean byte %u", *r->p);
    *v = *r->p++ != 0;
    return 0;
}

static int rd_double(av_reader *r, double *d)
{
    if (r->end - r->p < 8) return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends in a double");
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | r->p[i];
    memcpy(d, &u, 8);
    r->p += 8;
    return 0;
}

static void put_num_json(buf *b, double d)
{
    /* as command.c writes numbers */
    if (isfinite(d))
        buf_put_double(b, d);
    else
        buf_puts(b, "null");
}

/* One attribute value as JSON into its own buffer (the carried list comes after them). */
static int rd_attr_json(av_reader *r, int attr, buf *out)
{
    size_t b;
    if (codec_rd_index(r, 4, &b) < 0) return -1;
    bool active = attr == ATTR_ACTIVE;
    if (b == 0) {
        buf_puts(out, "null");
    } else if (b == 3) {
        double d;
        if (rd_double(r, &d) < 0) return -1;
        put_num_json(out, d);
    } else if ((b == 1) != active) {
        return rd_str_json(r, out);
    } else {
        bool v;
        if (rd_bool(r, &v) < 0) return -1;
        buf_puts(out, v ? "true" : "false");
    }
    return 0;
}

static int rd_user_json(av_reader *r, buf *out)
{
    buf vals[ATTR__COUNT];
    unsigned mask = 0;
    int rc = -1;
    for (int i = 0; i < ATTR__COUNT; i++)
        buf_init(&vals[i]);
    for (int i = 0; i < ATTR__COUNT; i++)
        if (rd_attr_json(r, i, &vals[i]) < 0) goto out;
    for (;;) {
        size_t n;
        if (codec_rd_block(r, &n) < 0) goto out;
        if (!n) break;
        for (size_t k = 0; k < n; k++) {
            const uint8_t *s;
            size_t len;
            if (codec_rd_string_view(r, &s, &len) < 0) goto out;
            int found = -1;
            for (int i = 0; i < ATTR__COUNT; i++)
                if (strlen(command_attr_gong[i]) == len &&
                    memcmp(command_attr_gong[i], s, len) == 0)
                    found = i;
            if (found < 0) {
                codec_rd_fail(r, CODEC_ERR_BAD_RECORD,
                              "user.carried names '%.*s', not an attribute",
                              (int)(len > 40 ? 40 : len), (const char *)s);
                goto out;
            }
            mask |= 1u << found;
        }
    }
    buf_puts(out, ",\"user\":{");
    bool first = true;
    for (int i = 0; i < ATTR__COUNT; i++) {
        if (!(mask & (1u << i))) continue;
        if (!first) buf_putc(out, ',');
        first = false;
        buf_printf(out, "\"%s\":", command_attr_gong[i]);
        buf_append(out, vals[i].data, vals[i].len);
    }
    buf_putc(out, '}');
    rc = 0;
out:
    for (int i = 0; i < ATTR__COUNT; i++)
        buf_free(&vals[i]);
    return rc;
}

static int rd_settings_json(av_reader *r, buf *out)
{
    buf_puts(out, ",\"settings\":{\"seats\":[");
    size_t n, k = 0;
    for (;;) {
        if (codec_rd_block(r, &n) < 0) return -1;
        if (!n) break;
        for (size_t i = 0; i < n; i++, k++) {
            if (k) buf_putc(out, ',');
            if (rd_str_json(r, out) < 0) return -1;
        }
    }
    buf_puts(out, "],\"workspaces\":[");
    k = 0;
    for (;;) {
        if (codec_rd_block(r, &n) < 0) return -1;
        if (!n) break;
        for (size_t i = 0; i < n; i++, k++) {
            buf_puts(out, k ? ",{\"workspace\":" : "{\"workspace\":");
            if (rd_opt_str_json(r, out) < 0) return -1;
            buf_puts(out, ",\"permission_profile\":");
            if (rd_opt_str_json(r, out) < 0) return -1;
            buf_putc(out, '}');
        }
    }
    static const char *const dc[] = {"web_conferences", "telephony", "emails", "calendar"};
    buf_puts(out, "],\"data_capture\":{");
    for (int i = 0; i < 4; i++) {
        bool v;
        if (rd_bool(r, &v) < 0) return -1;
        buf_printf(out, "%s\"%s\":%s", i ? "," : "", dc[i], v ? "true" : "false");
    }
    buf_puts(out, "}}");
    return 0;
}

static int rd_source_json(av_reader *r, buf *out)
{
    int present;
    int64_t v;
    buf_puts(out, ",\"source\":{\"topic\":");
    if (rd_opt_str_json(r, out) < 0) return -1;
    buf_puts(out, ",\"partition\":");
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        int32_t p;
        if (codec_rd_int(r, &p) < 0) return -1;
        buf_printf(out, "%d", p);
    } else {
        buf_puts(out, "null");
    }
    buf_puts(out, ",\"offset\":");
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        if (codec_rd_long(r, &v) < 0) return -1;
        buf_printf(out, "%lld", (long long)v);
    } else {
        buf_puts(out, "null");
    }
    buf_puts(out, ",\"replay_id\":");
    if (rd_opt_str_json(r, out) < 0) return -1;
    buf_puts(out, ",\"transaction_key\":");
    if (rd_opt_str_json(r, out) < 0) return -1;
    static const char *const nums[] = {"sequence_number", "commit_number", "commit_timestamp"};
    for (int i = 0; i < 3; i++) {
        if (codec_rd_long(r, &v) < 0) return -1;
        buf_printf(out, ",\"%s\":%lld", nums[i], (long long)v);
    }
    buf_putc(out, '}');
    return 0;
}

static int command_json(av_reader *r, buf *out)
{
    int present;
    size_t type;
    buf_puts(out, "{\"command_id\":");
    if (rd_str_json(r, out) < 0) return -1;
    if (codec_rd_index(r, N_TYPES, &type) < 0) return -1;
    buf_printf(out, ",\"type\":\"%s\",\"sf_user_id\":", type_symbols[type]);
    if (rd_str_json(r, out) < 0) return -1;
    if (rd_opt(r, &present) < 0 || (present && rd_user_json(r, out) < 0)) return -1;
    size_t mark = out->len;
    buf_puts(out, ",\"assignment\":");
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        if (rd_str_json(r, out) < 0) return -1;
    } else {
        out->len = mark;
        out->data[mark] = '\0';
    }
    if (rd_opt(r, &present) < 0 || (present && rd_settings_json(r, out) < 0)) return -1;
    /* the types whose JSON always has the key, null or not (interfaces.md) */
    bool manager_key = strcmp(type_symbols[type], "CREATE_USER") == 0 ||
                       strcmp(type_symbols[type], "SET_MANAGER") == 0 ||
                       strcmp(type_symbols[type], "NOTIFY_MANAGER") == 0;
    mark = out->len;
    buf_puts(out, ",\"manager_sf_user_id\":");
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        if (rd_str_json(r, out) < 0) return -1;
    } else if (manager_key) {
        buf_puts(out, "null");
    } else {
        out->len = mark;
        out->data[mark] = '\0';
    }
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        buf_puts(out, ",\"reason\":");
        if (rd_str_json(r, out) < 0) return -1;
    }
    if (rd_opt(r, &present) < 0) return -1;
    bool toggle = false;
    if (present && rd_bool(r, &toggle) < 0) return -1;
    if (present || strcmp(type_symbols[type], "COMPANY_SETTINGS") == 0)
        buf_printf(out, ",\"managers_can_toggle_data_capture\":%s", toggle ? "true" : "false");
    if (rd_opt(r, &present) < 0 || (present && rd_source_json(r, out) < 0)) return -1;
    if (rd_opt(r, &present) < 0) return -1;
    if (present) {
        buf_puts(out, ",\"why\":");
        if (rd_str_json(r, out) < 0) return -1;
    }
    buf_putc(out, '}');
    if (r->p != r->end)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "%zu bytes after the record",
                       (size_t)(r->end - r->p));
    return 0;
}

int codec_command_value_to_json(const void *bytes, size_t len, buf *out, codec_error *err)
{
    codec_error scratch;
    if (!err) err = &scratch;
    err->schema_id = -1;
    err->offset = 0;
    buf_reset(out);
    const uint8_t *b = bytes;
    if (!b || len == 0) return codec_fail(err, CODEC_ERR_TRUNCATED, "empty value");
    if (b[0] == '{') { /* already JSON */
        buf_append(out, b, len);
        return 0;
    }
    size_t start = 0;
    if (b[0] == 0) {
        if (len < 5) {
            err->offset = len;
            return codec_fail(err, CODEC_ERR_TRUNCATED, "value ends inside the 5-byte framing");
        }
        err->schema_id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 |
                                   (uint32_t)b[3] << 8 | (uint32_t)b[4]);
        start = 5;
    }
    av_reader r = {.base = b, .p = b + start, .end = b + len, .err = err, .budget = len + 64};
    if (command_json(&r, out) < 0) {
        buf_reset(out);
        return -1;
    }
    return 0;
}
