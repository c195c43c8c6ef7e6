/* Internal events -> Avro message values of a User change event writer schema: the converter for
 * `encode` and `produce-events`, and the tests' source of Avro values. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec_internal.h"

struct codec_event_encoder {
    ev_plan *plan;
    bool framed;
    int32_t schema_id;
    bool bitmaps;
    arena scratch;
};

int codec_event_encoder_new(const codec_event_encoder_config *cfg, codec_event_encoder **out,
                            codec_error *err)
{
    codec_event_encoder_config none = {0};
    if (!cfg) cfg = &none;
    if (err) err->schema_id = -1, err->offset = 0;
    const char *avsc = cfg->writer_avsc ? cfg->writer_avsc : event_default_schema_avsc();
    size_t len = cfg->writer_avsc && cfg->writer_avsc_len ? cfg->writer_avsc_len : strlen(avsc);
    codec_event_encoder *e = xcalloc(1, sizeof *e);
    if (codec_plan_new(avsc, len, NULL, false, &e->plan, err) < 0) {
        free(e);
        return -1;
    }
    e->framed = cfg->framed;
    e->schema_id = cfg->schema_id;
    e->bitmaps = cfg->bitmaps;
    arena_init(&e->scratch, 8192);
    *out = e;
    return 0;
}

void codec_event_encoder_free(codec_event_encoder *e)
{
    if (!e) return;
    codec_plan_free(e->plan);
    arena_free(&e->scratch);
    free(e);
}

const event_layout *codec_event_encoder_layout(const codec_event_encoder *e)
{
    return e->plan->layout;
}

/* ---- values */
static const char *val_kind(const value_t *v)
{
    static const char *const k[] = {"null", "boolean", "number", "string"};
    return k[v->type];
}

static bool integral(double d, double lo, double hi) { return d >= lo && d <= hi && floor(d) == d; }

static int find_symbol(const av_node *t, const char *s)
{
    for (size_t i = 0; i < t->n_symbols; i++)
        if (strcmp(t->symbols[i], s) == 0) return (int)i;
    return -1;
}

/* Whether a non-null value can be written as t (not a union). */
static bool fits(const av_node *t, const value_t *v)
{
    int64_t tmp;
    switch (v->type) {
    case VAL_BOOL: return t->kind == AV_BOOLEAN;
    case VAL_NUM:
        switch (t->kind) {
        case AV_INT: return t->logical == LT_NONE && integral(v->num, -2147483648.0, 2147483647.0);
        case AV_LONG: return integral(v->num, -9.2e18, 9.2e18);
        case AV_FLOAT:
        case AV_DOUBLE: return isfinite(v->num);
        default: return false;
        }
    case VAL_STR:
        switch (t->kind) {
        case AV_STRING:
        case AV_BYTES: return true;
        case AV_ENUM: return find_symbol(t, v->s) >= 0;
        case AV_LONG:
            return t->logical != LT_NONE &&
                   codec_parse_timestamp(v->s, v->len, t->logical == LT_TIMESTAMP_MICROS, &tmp) ==
                       0;
        case AV_INT: return t->logical == LT_DATE && codec_parse_date(v->s, v->len, &tmp) == 0;
        default: return false;
        }
    case VAL_NULL: return t->kind == AV_NULL;
    }
    return false;
}

static void put_scalar(buf *b, const av_node *t, const value_t *v)
{
    int64_t l = 0;
    switch (t->kind) {
    case AV_NULL: break;
    case AV_BOOLEAN: buf_putc(b, v->b ? 1 : 0); break;
    case AV_INT:
        if (v->type == VAL_STR)
            codec_parse_date(v->s, v->len, &l);
        else
            l = (int64_t)v->num;
        codec_put_long(b, l);
        break;
    case AV_LONG:
        if (v->type == VAL_STR)
            codec_parse_timestamp(v->s, v->len, t->logical == LT_TIMESTAMP_MICROS, &l);
        else
            l = (int64_t)v->num;
        codec_put_long(b, l);
        break;
    case AV_FLOAT: {
        float f = (float)v->num;
        uint32_t u;
        memcpy(&u, &f, 4);
        char le[4] = {(char)u, (char)(u >> 8), (char)(u >> 16), (char)(u >> 24)};
        buf_append(b, le, 4);
        break;
    }
    case AV_DOUBLE: {
        uint64_t u;
        memcpy(&u, &v->num, 8);
        char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (char)(u >> (8 * i));
        buf_append(b, le, 8);
        break;
    }
    case AV_STRING:
    case AV_BYTES: codec_put_bytes(b, v->s, v->len); break;
    case AV_ENUM: codec_put_long(b, find_symbol(t, v->s)); break;
    default: break;
    }
}

/* "string", "[null|string|double]", "long timestamp-millis" for messages. */
static void describe(const av_node *t, char *out, size_t cap)
{
    static const char *const lt[] = {"", " timestamp-millis", " timestamp-micros", " date"};
    if (t->kind != AV_UNION) {
        snprintf(out, cap, "%s%s", codec_kind_name(t->kind), lt[t->logical]);
        return;
    }
    size_t n = (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < t->n && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s", i ? "|" : "",
                              codec_kind_name(t->items[i]->kind), lt[t->items[i]->logical]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static int write_value(buf *b, const av_node *t, const value_t *v, const char *name,
                       codec_error *err)
{
    if (t->kind == AV_UNION) {
        if (v->type == VAL_NULL && t->null_branch >= 0) {
            codec_put_long(b, t->null_branch);
            return 0;
        }
        for (size_t i = 0; i < t->n; i++) {
            if (fits(t->items[i], v)) {
                codec_put_long(b, (int64_t)i);
                put_scalar(b, t->items[i], v);
                return 0;
            }
        }
    } else if (fits(t, v)) {
        put_scalar(b, t, v);
        return 0;
    }
    char type[128] = "";
    describe(t, type, sizeof type);
    if (v->type == VAL_NULL)
        return codec_fail(err, CODEC_ERR_ENCODE,
                          "field %s has no value, and the writer schema's %s is not nullable", name,
                          type);
    if (v->type == VAL_STR)
        return codec_fail(err, CODEC_ERR_ENCODE,
                          "field %s: the writer schema's %s cannot hold the string \"%.60s\"", name,
                          type, v->s);
    return codec_fail(err, CODEC_ERR_ENCODE, "field %s: the writer schema's %s cannot hold a %s",
                      name, type, val_kind(v));
}

/* Some value of t, for header fields the event has no counterpart for. */
static void write_empty(buf *b, const av_node *t, int depth)
{
    if (depth > AV_MAX_DEPTH) return;
    switch (t->kind) {
    case AV_NULL: break;
    case AV_BOOLEAN: buf_putc(b, 0); break;
    case AV_FLOAT: buf_append(b, "\0\0\0\0", 4); break;
    case AV_DOUBLE: buf_append(b, "\0\0\0\0\0\0\0\0", 8); break;
    case AV_FIXED:
        for (size_t i = 0; i < t->size; i++)
            buf_putc(b, 0);
        break;
    case AV_UNION: {
        size_t i = t->null_branch >= 0 ? (size_t)t->null_branch : 0;
        codec_put_long(b, (int64_t)i);
        write_empty(b, t->items[i], depth + 1);
        break;
    }
    case AV_RECORD:
        for (size_t i = 0; i < t->n; i++)
            write_empty(b, t->items[i], depth + 1);
        break;
    default: codec_put_long(b, 0); /* int, long, enum 0, empty string/bytes/array/map */
    }
}

/* ---- field names, plain or as Pub/Sub bitmaps */
typedef struct names {
    const char **v;
    size_t n, cap;
} names;

static void push(arena *mem, names *l, const char *s)
{
    if (l->n == l->cap) l->v = arena_grow(mem, l->v, l->n, &l->cap, sizeof *l->v, 16);
    l->v[l->n++] = s;
}

/* "0x..." for the set positions of bits[0..n): the least significant bit is position 0; whole
 * bytes of hex, as Salesforce writes them. */
static const char *hex_bitmap(arena *mem, const uint8_t *bits, size_t n, const char *prefix)
{
    size_t top = n;
    while (top > 0 && !bits[top - 1])
        top--;
    size_t nib = top ? (top + 7) / 8 * 2 : 2, pl = strlen(prefix); /* whole bytes: "7-0x06" */
    char *s = arena_alloc(mem, pl + 2 + nib + 1), *p = s;
    memcpy(p, prefix, pl);
    p += pl;
    *p++ = '0';
    *p++ = 'x';
    for (size_t k = nib; k-- > 0;) {
        unsigned v = 0;
        for (unsigned bit = 0; bit < 4; bit++)
            if (k * 4 + bit < top && bits[k * 4 + bit]) v |= 1u << bit;
        *p++ = "0123456789ABCDEF"[v];
    }
    *p = '\0';
    return s;
}

/* Names -> ["0x<top-level>", "N-0x<parts of N>"..., names the schema lacks]. The first element
 * covers the non-compound fields (and a compound named as a whole); parts go in their compound's
 * entry, as Salesforce writes them. */
static void to_bitmaps(const ev_plan *p, arena *mem, const names *in, names *out)
{
    const event_layout *l = p->layout;
    size_t nf = event_layout_count(l);
    uint8_t *top = arena_alloc(mem, nf + 1);
    memset(top, 0, nf + 1);
    uint8_t **parts = arena_alloc(mem, (nf + 1) * sizeof *parts);
    memset(parts, 0, (nf + 1) * sizeof *parts);
    names rest = {0};
    bool any_top = false;
    for (size_t i = 0; i < in->n; i++) {
        const char *name = in->v[i];
        const char *dot = strrchr(name, '.');
        size_t pos = nf, part = 0;
        for (size_t f = 0; f < nf && pos == nf; f++) {
            const char *fn = event_layout_name(l, f);
            if (!dot && strcmp(fn, name) == 0) {
                pos = f;
                part = SIZE_MAX;
            }
            for (size_t j = 0; j < event_layout_part_count(l, f) && pos == nf; j++) {
                const char *pn = event_layout_part_name(l, f, j);
                if (dot ? (strncmp(fn, name, (size_t)(dot - name)) == 0 && fn[dot - name] == '\0' &&
                           strcmp(pn, dot + 1) == 0)
                        : strcmp(pn, name) == 0)
                    pos = f, part = j;
            }
        }
        if (pos == nf) {
            push(mem, &rest, name);
        } else if (part == SIZE_MAX) {
            top[pos] = 1;
            any_top = true;
        } else {
            size_t np = event_layout_part_count(l, pos);
            if (!parts[pos]) {
                parts[pos] = arena_alloc(mem, np + 1);
                memset(parts[pos], 0, np + 1);
            }
            parts[pos][part] = 1;
        }
    }
    if (any_top) push(mem, out, hex_bitmap(mem, top, nf, ""));
    for (size_t f = 0; f < nf; f++) {
        if (!parts[f]) continue;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%zu-", f);
        push(mem, out, hex_bitmap(mem, parts[f], event_layout_part_count(l, f), prefix));
    }
    for (size_t i = 0; i < rest.n; i++)
        push(mem, out, rest.v[i]);
}

static void write_names(buf *b, const av_node *t, const names *l)
{
    if (t->kind == AV_UNION) {
        for (size_t i = 0; i < t->n; i++) {
            if (t->items[i]->kind == AV_ARRAY) {
                codec_put_long(b, (int64_t)i);
                t = t->items[i];
                break;
            }
        }
    }
    if (l->n) {
        codec_put_long(b, (int64_t)l->n);
        for (size_t i = 0; i < l->n; i++)
            codec_put_bytes(b, l->v[i], strlen(l->v[i]));
    }
    codec_put_long(b, 0);
}

static int write_header_num(buf *b, const av_node *t, int64_t v, const char *name, codec_error *err)
{
    if (t->kind == AV_UNION) {
        for (size_t i = 0; i < t->n; i++) {
            av_kind k = t->items[i]->kind;
            if (k == AV_LONG || (k == AV_INT && v >= INT32_MIN && v <= INT32_MAX)) {
                codec_put_long(b, (int64_t)i);
                codec_put_long(b, v);
                return 0;
            }
        }
    } else if (t->kind == AV_LONG || (v >= INT32_MIN && v <= INT32_MAX)) {
        codec_put_long(b, v);
        return 0;
    }
    return codec_fail(err, CODEC_ERR_ENCODE, "ChangeEventHeader.%s: %lld does not fit an int", name,
                      (long long)v);
}

static int write_header_str(buf *b, const av_node *t, const char *s, const char *name,
                            codec_error *err)
{
    if (!s && !(t->kind == AV_UNION && t->null_branch >= 0)) s = "";
    value_t v = s ? value_str(s) : value_null();
    char where[64];
    snprintf(where, sizeof where, "ChangeEventHeader.%s", name);
    return write_value(b, t, &v, where, err);
}

/* ---- R1.3: what a JSON UPDATE's payload says changed, said in the header for Avro */
static bool names_field(const ev_plan *p, const names *l, const char *field)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *n = l->v[i], *dot = strrchr(n, '.');
        if (strcasecmp(n, field) == 0 || (dot && strcasecmp(dot + 1, field) == 0)) return true;
        /* a compound named as a whole covers its parts */
        const char *comp = event_layout_compound_of(p->layout, field);
        if (comp && strcasecmp(comp, n) == 0) return true;
    }
    return false;
}

static names from_event(const char *const *v, size_t n) { return (names){(const char **)v, n, n}; }

static int leaf_of(const ev_plan *p, const char *name)
{
    uintptr_t i = (uintptr_t)strmap_get(&p->by_name, name);
    if (i) return (int)(i - 1);
    for (size_t k = 0; k < p->n_leaves; k++) /* Salesforce field names are case-insensitive */
        if (strcasecmp(p->leaves[k].name, name) == 0) return (int)k;
    return -1;
}

int codec_encode_event(codec_event_encoder *e, const event *ev, buf *out, codec_error *err)
{
    const ev_plan *p = e->plan;
    arena *mem = &e->scratch;
    arena_reset(mem);
    buf_reset(out);
    if (err) err->schema_id = e->framed ? e->schema_id : -1, err->offset = 0;

    const event_field **at = arena_alloc(mem, (p->n_leaves + 1) * sizeof *at);
    memset(at, 0, (p->n_leaves + 1) * sizeof *at);
    names changed = from_event(ev->changed_fields, ev->n_changed_fields);
    names nulled = from_event(ev->nulled_fields, ev->n_nulled_fields);
    names diff = from_event(ev->diff_fields, ev->n_diff_fields);
    bool augment = ev->payload_marks_changes && ev->change == CHANGE_UPDATE;
    if (augment) { /* copy before appending: the event's arrays are not ours */
        names c = {0}, nl = {0};
        for (size_t i = 0; i < changed.n; i++)
            push(mem, &c, changed.v[i]);
        for (size_t i = 0; i < nulled.n; i++)
            push(mem, &nl, nulled.v[i]);
        changed = c;
        nulled = nl;
    }
    for (size_t i = 0; i < ev->n_fields; i++) {
        const event_field *f = &ev->fields[i];
        int leaf = leaf_of(p, f->name);
        if (leaf < 0 && f->val.type != VAL_NULL)
            return codec_fail(err, CODEC_ERR_ENCODE,
                              "field %s is not in the writer schema (add it to the .avsc, at the "
                              "end, to carry it)",
                              f->name);
        if (leaf >= 0) at[leaf] = f;
        if (!augment) continue;
        bool in_changed = names_field(p, &changed, f->name);
        bool in_nulled = names_field(p, &nulled, f->name);
        if (!in_changed && !in_nulled) push(mem, &changed, f->name);
        if (f->val.type == VAL_NULL && !in_nulled) push(mem, &nulled, f->name);
    }
    if (e->bitmaps) {
        names c = {0}, nl = {0}, d = {0};
        to_bitmaps(p, mem, &changed, &c);
        to_bitmaps(p, mem, &nulled, &nl);
        to_bitmaps(p, mem, &diff, &d);
        changed = c, nulled = nl, diff = d;
    }

    if (e->framed) codec_put_frame(out, e->schema_id);
    const av_node *root = p->schema->root;
    value_t null = value_null();
    for (size_t i = 0; i < root->n; i++) {
        const av_node *t = root->items[i];
        if (i == p->header_pos) {
            const av_node *h = p->header;
            for (size_t j = 0; j < h->n; j++) {
                const av_node *ht = h->items[j];
                const char *hn = h->fields[j];
                int rc = 0;
                names ids = from_event(ev->record_ids, ev->n_record_ids);
                switch ((header_slot)p->header_slots[j]) {
                case H_ENTITY: rc = write_header_str(out, ht, ev->entity, hn, err); break;
                case H_CHANGE_TYPE:
                    if ((unsigned)ev->change >= CHANGE__COUNT) /* another object's own (R1.1) */
                        rc = codec_fail(err, CODEC_ERR_ENCODE,
                                        "ChangeEventHeader.changeType: %s's change type is none "
                                        "of the nine a User change event can carry",
                                        ev->entity ? ev->entity : "the event");
                    else
                        rc = write_header_str(out, ht, change_type_name(ev->change), hn, err);
                    break;
                case H_CHANGE_ORIGIN:
                    rc = write_header_str(out, ht, ev->change_origin, hn, err);
                    break;
                case H_TRANSACTION_KEY:
                    rc = write_header_str(out, ht, ev->transaction_key, hn, err);
                    break;
                case H_COMMIT_USER: rc = write_header_str(out, ht, ev->commit_user, hn, err); break;
                case H_SEQUENCE:
                    rc = write_header_num(out, ht, ev->sequence_number, hn, err);
                    break;
                case H_COMMIT_TS:
                    rc = write_header_num(out, ht, ev->commit_timestamp, hn, err);
                    break;
                case H_COMMIT_NUMBER:
                    rc = write_header_num(out, ht, ev->commit_number, hn, err);
                    break;
                case H_RECORD_IDS: write_names(out, ht, &ids); break;
                case H_CHANGED: write_names(out, ht, &changed); break;
                case H_NULLED: write_names(out, ht, &nulled); break;
                case H_DIFF: write_names(out, ht, &diff); break;
                default: write_empty(out, ht, 0); break;
                }
                if (rc < 0) return -1;
            }
            continue;
        }
        int leaf = p->leaf_of_top[i];
        if (leaf >= 0) {
            const event_field *f = at[leaf];
            if (write_value(out, t, f ? &f->val : &null, root->fields[i], err) < 0) return -1;
            continue;
        }
        /* a compound: its record when any part is in the event, else null */
        const av_node *rec = codec_record_of(t);
        size_t first = (size_t)p->first_part_leaf[i];
        bool any = false;
        for (size_t j = 0; j < rec->n; j++)
            any = any || at[first + j];
        if (!any) {
            if (write_value(out, t, &null, root->fields[i], err) < 0) return -1;
            continue;
        }
        if (t->kind == AV_UNION) {
            for (size_t k = 0; k < t->n; k++)
                if (t->items[k] == rec) codec_put_long(out, (int64_t)k);
        }
        for (size_t j = 0; j < rec->n; j++) {
            const event_field *f = at[first + j];
            char where[256];
            snprintf(where, sizeof where, "%s.%s", root->fields[i], rec->fields[j]);
            if (write_value(out, rec->items[j], f ? &f->val : &null, where, err) < 0) return -1;
        }
    }
    return 0;
}
