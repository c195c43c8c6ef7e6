/* Message values -> internal events. The writer schema of each value (configured, or by id from
 * the registry) is compiled into a plan once; a value is then read in one pass over its bytes
 * straight into the arena, with no schema work and no malloc. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"

static const char *const error_names[CODEC_ERR__COUNT] = {
    "ok",
    "truncated",
    "bad_magic_byte",
    "unknown_schema_id",
    "registry_unavailable",
    "schema_mismatch",
    "bitmap_out_of_range",
    "bad_record",
    "encode",
};

const char *codec_error_kind_name(codec_error_kind k)
{
    return (unsigned)k < CODEC_ERR__COUNT ? error_names[k] : "unknown";
}

bool codec_error_is_transient(codec_error_kind k) { return k == CODEC_ERR_REGISTRY; }

/* ---- the schema cache */
typedef struct cache_entry {
    int32_t id;
    ev_plan *plan;         /* NULL: a remembered failure */
    codec_error_kind fail; /* unknown_schema_id or schema_mismatch */
    char *fail_msg;
    int64_t fail_until_ms; /* unknown ids are asked again after this; INT64_MAX: never */
} cache_entry;

struct codec_decoder {
    codec_framing framing;
    av_schema *reader;
    ev_plan *plain;
    codec_registry *registry;
    cache_entry *cache;
    size_t n_cache, cap_cache;
    size_t last; /* index of the last entry hit, a fast path for the usual single id */
    const ev_plan *last_plan;
    long unknown_ttl_ms;
    buf fetched;
    /* an event's fields are read here first (room for every leaf of the schema, reused), then
     * copied to the caller's arena at their real count: a few fields, not a hundred slots */
    event_field *scratch;
    size_t cap_scratch;
};

int codec_decoder_new(const codec_decoder_config *cfg, codec_decoder **out, codec_error *err)
{
    codec_decoder_config none = {0};
    if (!cfg) cfg = &none;
    if (err) err->schema_id = -1, err->offset = 0;
    codec_decoder *d = xcalloc(1, sizeof *d);
    buf_init(&d->fetched);
    d->unknown_ttl_ms = cfg->unknown_id_ttl_ms > 0 ? cfg->unknown_id_ttl_ms : 60000;
    bool has_registry = cfg->registry.url && *cfg->registry.url;
    d->framing = cfg->framing;
    /* A registry and no plain writer named: every value is framed. A plain value there is of a
     * writer no one named: read by the bundled schema, its fields would land in the wrong
     * places; as it is, it is dead-lettered (bad_magic_byte). */
    if (d->framing == CODEC_FRAMING_DEFAULT && has_registry && !cfg->writer_avsc)
        d->framing = CODEC_FRAMING_CONFLUENT;

    const char *reader = cfg->reader_avsc ? cfg->reader_avsc : event_default_schema_avsc();
    size_t rlen = cfg->reader_avsc ? cfg->reader_avsc_len : 0;
    if (!rlen) rlen = strlen(reader);
    perr pe;
    if (codec_schema_compile(reader, rlen, &d->reader, &pe) < 0 ||
        codec_validate_avsc(reader, rlen, &pe) < 0) {
        codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH, "reader %s", pe.msg);
        codec_decoder_free(d);
        return -1;
    }
    if (d->framing != CODEC_FRAMING_CONFLUENT) {
        const char *w = cfg->writer_avsc ? cfg->writer_avsc : event_default_schema_avsc();
        size_t wlen = cfg->writer_avsc ? cfg->writer_avsc_len : 0;
        if (codec_plan_new(w, wlen ? wlen : strlen(w), d->reader, false, &d->plain, err) < 0) {
            codec_decoder_free(d);
            return -1;
        }
        d->last_plan = d->plain;
        /* Framing can be told apart when a plain value cannot start with 0x00: its first item
         * is entityName, a string never empty. */
        const ev_plan *p = d->plain;
        bool starts_with_entity = p->header_pos == 0 && p->header->n > 0 &&
                                  p->header_slots[0] == H_ENTITY &&
                                  p->header->items[0]->kind == AV_STRING;
        /* interfaces.md: a value may be plain (of the writer named) or framed */
        if (d->framing == CODEC_FRAMING_DEFAULT)
            d->framing = starts_with_entity ? CODEC_FRAMING_AUTO
                         : has_registry     ? CODEC_FRAMING_CONFLUENT
                                            : CODEC_FRAMING_PLAIN;
    }
    if (has_registry && codec_registry_new(&cfg->registry, &d->registry, err) < 0) {
        codec_decoder_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void codec_decoder_free(codec_decoder *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n_cache; i++) {
        codec_plan_free(d->cache[i].plan);
        free(d->cache[i].fail_msg);
    }
    free(d->cache);
    codec_plan_free(d->plain);
    codec_registry_free(d->registry);
    codec_schema_free(d->reader);
    buf_free(&d->fetched);
    free(d->scratch);
    free(d);
}

const event_layout *codec_decoder_last_layout(const codec_decoder *d)
{
    return d->last_plan ? d->last_plan->layout : event_layout_default();
}

static cache_entry *cache_find(codec_decoder *d, int32_t id)
{
    if (d->last < d->n_cache && d->cache[d->last].id == id) return &d->cache[d->last];
    for (size_t i = 0; i < d->n_cache; i++) {
        if (d->cache[i].id == id) {
            d->last = i;
            return &d->cache[i];
        }
    }
    return NULL;
}

static cache_entry *cache_slot(codec_decoder *d, int32_t id)
{
    cache_entry *e = cache_find(d, id);
    if (e) {
        codec_plan_free(e->plan);
        free(e->fail_msg);
    } else {
        if (d->n_cache == d->cap_cache) {
            d->cap_cache = d->cap_cache ? d->cap_cache * 2 : 8;
            d->cache = xrealloc(d->cache, d->cap_cache * sizeof *d->cache);
        }
        d->last = d->n_cache;
        e = &d->cache[d->n_cache++];
    }
    memset(e, 0, sizeof *e);
    e->id = id;
    return e;
}

static void remember_failure(codec_decoder *d, int32_t id, const codec_error *err, int64_t until)
{
    cache_entry *e = cache_slot(d, id);
    e->fail = err->kind;
    e->fail_msg = xstrdup(err->msg);
    e->fail_until_ms = until;
}

int codec_decoder_add_schema(codec_decoder *d, int32_t id, const char *avsc, size_t len,
                             codec_error *err)
{
    ev_plan *p;
    if (err) err->schema_id = id, err->offset = 0;
    if (codec_plan_new(avsc, len ? len : strlen(avsc), d->reader, true, &p, err) < 0) return -1;
    cache_entry *e = cache_slot(d, id);
    e->plan = p;
    return 0;
}

static const ev_plan *plan_for_id(codec_decoder *d, int32_t id, codec_error *err)
{
    cache_entry *e = cache_find(d, id);
    if (e && e->plan) return e->plan;
    if (e && (e->fail_until_ms == INT64_MAX || mono_ms() < e->fail_until_ms)) {
        codec_fail(err, e->fail, "%s", e->fail_msg);
        return NULL;
    }
    if (!d->registry) {
        codec_fail(err, CODEC_ERR_UNKNOWN_SCHEMA,
                   "schema id %d is not known and no schema registry is configured", id);
        return NULL;
    }
    if (codec_registry_get(d->registry, id, &d->fetched, err) < 0) {
        if (err->kind == CODEC_ERR_UNKNOWN_SCHEMA)
            remember_failure(d, id, err, mono_ms() + d->unknown_ttl_ms);
        return NULL; /* an unreachable registry is not remembered: the next value asks again */
    }
    ev_plan *p;
    if (codec_plan_new(d->fetched.data, d->fetched.len, d->reader, true, &p, err) < 0) {
        codec_prefix(err, "schema id %d: ", id);
        remember_failure(d, id, err, INT64_MAX); /* a schema id never changes its schema */
        return NULL;
    }
    e = cache_slot(d, id);
    e->plan = p;
    return p;
}

/* ---- reading one event */
typedef struct names {
    const char **v;
    size_t n, cap;
} names;

static void push_name(arena *mem, names *l, const char *s)
{
    if (l->n == l->cap) l->v = arena_grow(mem, l->v, l->n, &l->cap, sizeof *l->v, 8);
    l->v[l->n++] = s;
}

typedef struct fields {
    event_field *v;
    size_t n, cap;
} fields;

static void push_field(arena *mem, fields *l, const char *name, value_t val)
{
    if (l->n == l->cap) l->v = arena_grow(mem, l->v, l->n, &l->cap, sizeof *l->v, 16);
    l->v[l->n].name = name;
    l->v[l->n].val = val;
    l->n++;
}

static int enter(av_reader *r)
{
    if (++r->depth > AV_MAX_DEPTH)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "nested more than %d deep", AV_MAX_DEPTH);
    return 0;
}

static int read_double(av_reader *r, size_t width, double *out)
{
    if ((size_t)(r->end - r->p) < width)
        return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends inside a number");
    if (width == 4) {
        uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                     (uint32_t)r->p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        *out = f;
    } else {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | r->p[i];
        memcpy(out, &u, 8);
    }
    r->p += width;
    /* JSON has no NaN or infinity, and no Salesforce field holds one */
    if (*out != *out || *out - *out != 0)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "number that is not finite");
    return 0;
}

static const char *dup_str(arena *mem, const char *s, size_t n) { return arena_strndup(mem, s, n); }

/* A union's null branch as its encoded index: one byte, zig-zag. Most of a change event's ~40
 * fields are null; read_field's frame cost more than the byte (66 instructions a field, 9% of
 * the service's), so callers skip such a field inline. -1 (never a byte): no null branch. */
static inline bool null_skipped(av_reader *r, const av_node *t)
{
    if (t->kind != AV_UNION || t->null_branch < 0 || t->null_branch > 63 || r->p >= r->end ||
        *r->p != (uint8_t)(t->null_branch << 1))
        return false;
    r->p++;
    return true;
}

/* One value of a data field: scalars become event fields, records are flattened into their
 * parts, nulls add nothing, and what a value_t cannot hold (bytes, arrays, maps) is skipped. */
static int read_field(av_reader *r, const av_node *t, const char *name, fields *out)
{
    value_t v;
    switch (t->kind) {
    case AV_NULL: return 0;
    case AV_UNION: {
        size_t b;
        if (codec_rd_index(r, t->n, &b) < 0) return -1;
        if ((int)b == t->null_branch) return 0;
        if (enter(r) < 0 || read_field(r, t->items[b], name, out) < 0) return -1;
        r->depth--;
        return 0;
    }
    case AV_RECORD:
        if (enter(r) < 0) return -1;
        for (size_t i = 0; i < t->n; i++)
            if (!null_skipped(r, t->items[i]) && read_field(r, t->items[i], t->fields[i], out) < 0)
                return -1;
        r->depth--;
        return 0;
    case AV_BOOLEAN:
        if (r->p >= r->end) return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends in %s", name);
        if (*r->p > 1) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "%s: boolean byte %u", name, *r->p);
        v = value_bool(*r->p++ != 0);
        break;
    case AV_INT: {
        int32_t i;
        if (codec_rd_int(r, &i) < 0) return -1;
        if (t->logical == LT_DATE) {
            char tmp[64];
            size_t n = codec_format_date(i, tmp);
            v = (value_t){.type = VAL_STR, .s = dup_str(r->mem, tmp, n), .len = n};
        } else {
            v = value_num(i);
        }
        break;
    }
    case AV_LONG: {
        int64_t l;
        if (codec_rd_long(r, &l) < 0) return -1;
        if (t->logical == LT_TIMESTAMP_MILLIS || t->logical == LT_TIMESTAMP_MICROS) {
            char tmp[64];
            size_t n = codec_format_timestamp(l, t->logical == LT_TIMESTAMP_MICROS, tmp);
            v = (value_t){.type = VAL_STR, .s = dup_str(r->mem, tmp, n), .len = n};
        } else {
            v = value_num((double)l);
        }
        break;
    }
    case AV_FLOAT:
    case AV_DOUBLE: {
        double dv;
        if (read_double(r, t->kind == AV_FLOAT ? 4 : 8, &dv) < 0) return -1;
        v = value_num(dv);
        break;
    }
    case AV_STRING: {
        const char *s;
        size_t n;
        if (codec_rd_string(r, &s, &n) < 0) return -1;
        v = (value_t){.type = VAL_STR, .s = s, .len = n};
        break;
    }
    case AV_ENUM: {
        size_t i;
        if (codec_rd_index(r, t->n_symbols, &i) < 0) return -1;
        size_t n = strlen(t->symbols[i]);
        v = (value_t){.type = VAL_STR, .s = dup_str(r->mem, t->symbols[i], n), .len = n};
        break;
    }
    default: return codec_rd_skip(r, t);
    }
    push_field(r->mem, out, name, v);
    return 0;
}

/* A header scalar: string, number, enum symbol, or null (NULL / absent). */
static int read_header_str(av_reader *r, const av_node *t, const char **s)
{
    *s = NULL;
    if (t->kind == AV_UNION) {
        size_t b;
        if (codec_rd_index(r, t->n, &b) < 0) return -1;
        t = t->items[b];
    }
    size_t n;
    if (t->kind == AV_NULL) return 0;
    if (t->kind == AV_ENUM) {
        if (codec_rd_index(r, t->n_symbols, &n) < 0) return -1;
        *s = t->symbols[n];
        return 0;
    }
    return codec_rd_string(r, s, &n); /* the plan admits no other kind here */
}

static int read_header_num(av_reader *r, const av_node *t, int64_t *v)
{
    *v = 0;
    if (t->kind == AV_UNION) {
        size_t b;
        if (codec_rd_index(r, t->n, &b) < 0) return -1;
        t = t->items[b];
    }
    return t->kind == AV_NULL ? 0 : codec_rd_long(r, v);
}

/* recordIds, or a field list whose bitmaps are expanded against the writer's layout. */
static int read_names(av_reader *r, const av_node *t, const ev_plan *p, const char *what,
                      bool expand, const char ***out, size_t *n_out)
{
    names l = {0};
    if (t->kind == AV_UNION) {
        size_t b;
        if (codec_rd_index(r, t->n, &b) < 0) return -1;
        t = t->items[b];
    }
    if (t->kind == AV_ARRAY) {
        for (;;) {
            size_t count;
            if (codec_rd_block(r, &count) < 0) return -1;
            if (!count) break;
            for (size_t i = 0; i < count; i++) {
                const char *s;
                size_t len;
                if (codec_rd_string(r, &s, &len) < 0) return -1;
                /* both bitmap forms start with a digit; anything else is a plain name */
                if (!expand || !(s[0] >= '0' && s[0] <= '9')) {
                    if (!expand && !len)
                        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "%s[%zu] is empty", what, l.n);
                    push_name(r->mem, &l, s);
                    continue;
                }
                perr pe;
                if (event_expand_field_entry(p->layout, s, r->mem, &l.v, &l.n, &l.cap, &pe) < 0)
                    return RD_FAIL(r, CODEC_ERR_BITMAP, "ChangeEventHeader.%s: %s", what, pe.msg);
            }
        }
    }
    *out = l.v;
    *n_out = l.n;
    return 0;
}

static const char *const slot_names[H__COUNT] = {
    "entityName",     "recordIds",      "changeType",      "changeOrigin",
    "transactionKey", "sequenceNumber", "commitTimestamp", "commitNumber",
    "commitUser",     "nulledFields",   "diffFields",      "changedFields",
};

static int read_header(av_reader *r, const ev_plan *p, event *ev)
{
    const av_node *h = p->header;
    const char *change = NULL;
    int64_t num;
    if (enter(r) < 0) return -1;
    for (size_t i = 0; i < h->n; i++) {
        const av_node *t = h->items[i];
        int rc = 0;
        switch ((header_slot)p->header_slots[i]) {
        case H_ENTITY: rc = read_header_str(r, t, &ev->entity); break;
        case H_CHANGE_TYPE: rc = read_header_str(r, t, &change); break;
        case H_CHANGE_ORIGIN: rc = read_header_str(r, t, &ev->change_origin); break;
        case H_TRANSACTION_KEY: rc = read_header_str(r, t, &ev->transaction_key); break;
        case H_COMMIT_USER: rc = read_header_str(r, t, &ev->commit_user); break;
        case H_SEQUENCE:
            rc = read_header_num(r, t, &num);
            ev->sequence_number = num;
            break;
        case H_COMMIT_TS:
            rc = read_header_num(r, t, &num);
            ev->commit_timestamp = num;
            break;
        case H_COMMIT_NUMBER:
            rc = read_header_num(r, t, &num);
            ev->commit_number = num;
            break;
        case H_RECORD_IDS:
            rc = read_names(r, t, p, slot_names[H_RECORD_IDS], false, &ev->record_ids,
                            &ev->n_record_ids);
            break;
        case H_CHANGED:
            rc = read_names(r, t, p, slot_names[H_CHANGED], true, &ev->changed_fields,
                            &ev->n_changed_fields);
            break;
        case H_NULLED:
            rc = read_names(r, t, p, slot_names[H_NULLED], true, &ev->nulled_fields,
                            &ev->n_nulled_fields);
            break;
        case H_DIFF:
            rc =
                read_names(r, t, p, slot_names[H_DIFF], true, &ev->diff_fields, &ev->n_diff_fields);
            break;
        default: rc = codec_rd_skip(r, t); break;
        }
        if (rc < 0) {
            if (r->err && strncmp(r->err->msg, "ChangeEventHeader.", 18) != 0)
                codec_prefix(r->err, "ChangeEventHeader.%s: ", h->fields[i]);
            return -1;
        }
    }
    r->depth--;
    if (!ev->entity) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "entityName is null");
    if (!change) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "changeType is null");
    if (change_type_parse(change, &ev->change) < 0)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "changeType '%s' is not a change type", change);
    return 0;
}

static int decode_with(codec_decoder *d, const ev_plan *p, const uint8_t *base, const uint8_t *body,
                       size_t len, arena *mem, event *ev, codec_error *err)
{
    av_reader r = {
        .base = base, .p = body, .end = body + len, .mem = mem, .err = err, .budget = len + 64};
    const av_node *root = p->schema->root;
    fields fl = {0};
    /* the plan knows how many scalars a value can carry at most (without recursion) */
    size_t need = p->n_leaves ? p->n_leaves : 1;
    if (d->cap_scratch < need) {
        d->cap_scratch = need;
        d->scratch = xrealloc(d->scratch, need * sizeof *d->scratch);
    }
    fl.cap = d->cap_scratch;
    fl.v = d->scratch;
    for (size_t i = 0; i < root->n; i++) {
        if (i != p->header_pos && null_skipped(&r, root->items[i])) continue;
        int rc = i == p->header_pos ? read_header(&r, p, ev)
                                    : read_field(&r, root->items[i], root->fields[i], &fl);
        if (rc < 0) return -1;
    }
    if (r.p != r.end)
        return RD_FAIL(&r, CODEC_ERR_BAD_RECORD, "%zu bytes after the record",
                       (size_t)(r.end - r.p));
    ev->fields = arena_alloc(mem, (fl.n ? fl.n : 1) * sizeof *ev->fields);
    if (fl.n) memcpy(ev->fields, fl.v, fl.n * sizeof *ev->fields);
    ev->n_fields = fl.n;
    return 0;
}

int codec_decode(codec_decoder *d, const void *bytes, size_t len, arena *mem, event *ev,
                 codec_error *err)
{
    codec_error scratch;
    if (!err) err = &scratch;
    err->schema_id = -1;
    err->offset = 0;
    err->kind = CODEC_OK;
    err->msg[0] = '\0';
    memset(ev, 0, sizeof *ev);
    ev->source.partition = -1;
    ev->source.offset = -1;
    const uint8_t *b = bytes;
    if (!b && len) return codec_fail(err, CODEC_ERR_TRUNCATED, "no bytes");
    bool framed = d->framing == CODEC_FRAMING_CONFLUENT ||
                  (d->framing == CODEC_FRAMING_AUTO && len > 0 && b[0] == 0);
    if (!framed) {
        if (len == 0) return codec_fail(err, CODEC_ERR_TRUNCATED, "empty value");
        d->last_plan = d->plain;
        return decode_with(d, d->plain, b, b, len, mem, ev, err);
    }
    if (len == 0) return codec_fail(err, CODEC_ERR_TRUNCATED, "empty value");
    if (b[0] != 0)
        return codec_fail(err, CODEC_ERR_BAD_MAGIC,
                          "byte 0 is 0x%02x; a Confluent-framed value starts with 0x00", b[0]);
    if (len < 5) {
        err->offset = len;
        return codec_fail(err, CODEC_ERR_TRUNCATED, "value ends inside the 5-byte framing");
    }
    int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 |
                           (uint32_t)b[4]);
    err->schema_id = id;
    const ev_plan *p = plan_for_id(d, id, err);
    if (!p) return -1;
    d->last_plan = p;
    if (decode_with(d, p, b, b + 5, len - 5, mem, ev, err) < 0) return -1;
    if (p->other && event_is_user(ev)) /* R1.1 skips another object's; a User's must resolve */
        return codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH,
                          "schema id %d: writer schema does not resolve against the reader: %s", id,
                          p->other);
    return 0;
}
