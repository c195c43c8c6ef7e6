/* Change events as JSON lines (interfaces.md): the Streaming API payload, or the whole message with
 * the payload under data.payload and the replay id under data.event.replayId. The line is parsed by
 * json_reader.c into an arena tree; every string of the event points into that tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json_reader.h"

static bool is_string(const jr_value *v) { return v && v->type == JR_STRING; }

static bool key_is(const jr_node *nd, const char *key, size_t len)
{
    return nd->key_len == len && nd->key[0] == key[0] && memcmp(nd->key, key, len) == 0;
}

static int str_array(const jr_value *arr, const char *what, const event_layout *l, bool expand,
                     arena *mem, const char ***out, size_t *n, perr *err)
{
    *out = NULL;
    *n = 0;
    if (!arr || arr->type == JR_NULL) return 0;
    if (arr->type != JR_ARRAY) return perr_set(err, "ChangeEventHeader.%s is not an array", what);
    if (!arr->u.list.n) return 0;
    /* sized for plain names; a bitmap entry grows it in event_expand_field_entry */
    size_t cap = arr->u.list.n, i = 0;
    *out = arena_alloc(mem, cap * sizeof **out);
    for (const jr_node *nd = arr->u.list.first; nd; nd = nd->next, i++) {
        if (nd->val.type != JR_STRING)
            return perr_set(err, "ChangeEventHeader.%s[%zu] is not a string", what, i);
        const char *s = nd->val.u.str.s;
        if (expand) {
            if (event_expand_field_entry(l, s, mem, out, n, &cap, err) < 0)
                return perr_prefix(err, "ChangeEventHeader.%s: ", what);
        } else {
            (*out)[(*n)++] = s; /* already a copy in the arena */
        }
    }
    return 0;
}

static const char *opt_str(const jr_value *v) { return is_string(v) ? v->u.str.s : NULL; }

static int opt_int(const jr_value *v, const char *key, int64_t *out, perr *err)
{
    *out = 0;
    if (!v || v->type == JR_NULL) return 0;
    if (v->type == JR_INT) {
        *out = v->u.i;
        return 0;
    }
    if (v->type == JR_STRING) { /* some relays quote longs; strtoll's reading, as before */
        char *end;
        long long x = strtoll(v->u.str.s, &end, 10);
        if (*end == '\0' && end != v->u.str.s) {
            *out = x;
            return 0;
        }
    }
    return perr_set(err, "ChangeEventHeader.%s is not an integer", key);
}

static value_t to_value(const jr_value *v, arena *mem)
{
    switch (v->type) {
    case JR_STRING: return (value_t){.type = VAL_STR, .s = v->u.str.s, .len = v->u.str.len};
    case JR_TRUE: return value_bool(true);
    case JR_FALSE: return value_bool(false);
    case JR_INT: return value_num((double)v->u.i);
    case JR_REAL: return value_num(v->u.d);
    case JR_NULL: return value_null();
    case JR_ARRAY:
    case JR_OBJECT: break;
    }
    /* arrays (rare in User events): kept as their compact JSON text so a filter can still see them
     */
    size_t len = jr_dump(v, NULL);
    char *txt = arena_alloc(mem, len + 1);
    jr_dump(v, txt);
    txt[len] = '\0';
    return (value_t){.type = VAL_STR, .s = txt, .len = len};
}

/* The layout position of the compound field named exactly `name`, or -1. */
static long compound_pos(const event_layout *l, const char *name)
{
    size_t n = event_layout_count(l);
    for (size_t i = 0; i < n; i++)
        if (event_layout_part_count(l, i) && strcmp(event_layout_name(l, i), name) == 0)
            return (long)i;
    return -1;
}

/* How many event fields a payload member becomes: a compound object its non-object parts, an
 * explicit null for a compound every part of the layout, anything else itself. */
static size_t field_count(const jr_node *nd, const event_layout *l, long *compound)
{
    *compound = -1;
    if (nd->val.type == JR_OBJECT) {
        size_t n = 0;
        for (const jr_node *p = nd->val.u.list.first; p; p = p->next)
            n += p->val.type != JR_OBJECT;
        return n;
    }
    if (nd->val.type == JR_NULL && (*compound = compound_pos(l, nd->key)) >= 0)
        return event_layout_part_count(l, (size_t)*compound);
    return 1;
}

/* The header members, by name; one pass over the header fills them. */
enum {
    H_ENTITY,
    H_CHANGE,
    H_IDS,
    H_CHANGED,
    H_NULLED,
    H_DIFF,
    H_TX,
    H_SEQ,
    H_TS,
    H_NUM,
    H_USER,
    H_ORIGIN,
    H__COUNT
};

static const struct {
    const char *name;
    size_t len;
} header_keys[H__COUNT] = {
    [H_ENTITY] = {"entityName", 10},   [H_CHANGE] = {"changeType", 10},
    [H_IDS] = {"recordIds", 9},        [H_CHANGED] = {"changedFields", 13},
    [H_NULLED] = {"nulledFields", 12}, [H_DIFF] = {"diffFields", 10},
    [H_TX] = {"transactionKey", 14},   [H_SEQ] = {"sequenceNumber", 14},
    [H_TS] = {"commitTimestamp", 15},  [H_NUM] = {"commitNumber", 12},
    [H_USER] = {"commitUser", 10},     [H_ORIGIN] = {"changeOrigin", 12},
};

/* The commit: its position (R1.4), transaction, user and origin. */
static int read_commit(const jr_value *const *hv, event *ev, perr *err)
{
    ev->transaction_key = opt_str(hv[H_TX]);
    ev->commit_user = opt_str(hv[H_USER]);
    ev->change_origin = opt_str(hv[H_ORIGIN]);
    if (opt_int(hv[H_SEQ], "sequenceNumber", &ev->sequence_number, err) < 0 ||
        opt_int(hv[H_TS], "commitTimestamp", &ev->commit_timestamp, err) < 0 ||
        opt_int(hv[H_NUM], "commitNumber", &ev->commit_number, err) < 0)
        return -1;
    return 0;
}

/* A header member that is absent, or there with the wrong type: each said as it is. */
static int bad_member(const jr_value *v, const char *key, const char *must, perr *err)
{
    if (!v || v->type == JR_NULL) return perr_set(err, "ChangeEventHeader.%s is missing", key);
    return perr_set(err, "ChangeEventHeader.%s must be %s", key, must);
}

static int read_header(const jr_value *h, const event_layout *layout, arena *mem, event *ev,
                       perr *err)
{
    const jr_value *hv[H__COUNT] = {0};
    for (const jr_node *nd = h->u.list.first; nd; nd = nd->next) {
        for (int k = 0; k < H__COUNT; k++) {
            if (key_is(nd, header_keys[k].name, header_keys[k].len)) {
                hv[k] = &nd->val;
                break;
            }
        }
    }
    ev->entity = opt_str(hv[H_ENTITY]);
    if (!ev->entity) return bad_member(hv[H_ENTITY], "entityName", "a string", err);
    const char *ct = opt_str(hv[H_CHANGE]);
    if (!event_is_user(ev)) {
        /* R1.1: skipped, never an error. What of its header reads as ours is kept (its record
         * ids key it when produce-events turns it into Avro); its field lists and payload follow
         * another object's schema and are not read. */
        perr ignored;
        if (!ct || change_type_parse(ct, &ev->change) < 0) ev->change = CHANGE__COUNT;
        if (hv[H_IDS] && str_array(hv[H_IDS], "recordIds", layout, false, mem, &ev->record_ids,
                                   &ev->n_record_ids, &ignored) < 0)
            ev->record_ids = NULL, ev->n_record_ids = 0;
        if (read_commit(hv, ev, &ignored) < 0)
            ev->sequence_number = ev->commit_timestamp = ev->commit_number = 0;
        return 0;
    }
    if (!ct) return bad_member(hv[H_CHANGE], "changeType", "a string", err);
    if (change_type_parse(ct, &ev->change) < 0)
        return perr_set(err, "ChangeEventHeader.changeType '%s' is not a change type", ct);
    const jr_value *ids = hv[H_IDS];
    if (ev->change != CHANGE_GAP_OVERFLOW && (!ids || ids->type != JR_ARRAY))
        return bad_member(ids, "recordIds", "an array of strings", err);
    if (str_array(ids, "recordIds", layout, false, mem, &ev->record_ids, &ev->n_record_ids, err) <
            0 ||
        str_array(hv[H_CHANGED], "changedFields", layout, true, mem, &ev->changed_fields,
                  &ev->n_changed_fields, err) < 0 ||
        str_array(hv[H_NULLED], "nulledFields", layout, true, mem, &ev->nulled_fields,
                  &ev->n_nulled_fields, err) < 0 ||
        str_array(hv[H_DIFF], "diffFields", layout, true, mem, &ev->diff_fields, &ev->n_diff_fields,
                  err) < 0)
        return -1;
    for (size_t i = 0; i < ev->n_record_ids; i++)
        if (!ev->record_ids[i][0])
            return perr_set(err, "ChangeEventHeader.recordIds[%zu] is empty", i);
    return read_commit(hv, ev, err);
}

int event_from_json(const char *line, size_t len, const event_layout *layout, arena *mem, event *ev,
                    perr *err)
{
    memset(ev, 0, sizeof *ev);
    ev->source.partition = -1;
    ev->source.offset = -1;
    if (!layout) layout = event_layout_default();
    jr_value root;
    if (jr_parse(line, len, mem, &root, err) < 0) return -1;
    const jr_value *payload = &root;
    const jr_value *data = jr_get(&root, "data");
    const jr_value *inner = jr_get(data, "payload");
    if (inner && inner->type == JR_OBJECT) {
        payload = inner;
        const jr_value *rid = jr_get(jr_get(data, "event"), "replayId");
        if (rid && rid->type == JR_INT) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%lld", (long long)rid->u.i);
            ev->source.replay_id = arena_strdup(mem, tmp);
        } else if (is_string(rid)) {
            ev->source.replay_id = rid->u.str.s;
        }
    }
    if (payload->type != JR_OBJECT) return perr_set(err, "an event is a JSON object");
    const jr_value *h = jr_get(payload, "ChangeEventHeader");
    if (!h || h->type != JR_OBJECT)
        return perr_set(err, "the event has no ChangeEventHeader object");
    if (read_header(h, layout, mem, ev, err) < 0) return -1;
    if (!event_is_user(ev)) return 0;

    /* Counted first so that the fields take one allocation of the right size. */
    size_t total = 0;
    long compound;
    for (const jr_node *nd = payload->u.list.first; nd; nd = nd->next)
        if (&nd->val != h) total += field_count(nd, layout, &compound);
    event_field *f = total ? arena_alloc(mem, total * sizeof *f) : NULL;
    size_t n = 0;
    for (const jr_node *nd = payload->u.list.first; nd; nd = nd->next) {
        if (&nd->val == h) continue; /* the one member named ChangeEventHeader */
        if (nd->val.type == JR_OBJECT) {
            /* compound field: its parts under their own names (R1.3) */
            for (const jr_node *p = nd->val.u.list.first; p; p = p->next)
                if (p->val.type != JR_OBJECT)
                    f[n++] = (event_field){.name = p->key, .val = to_value(&p->val, mem)};
        } else if (nd->val.type == JR_NULL && (compound = compound_pos(layout, nd->key)) >= 0) {
            /* "Name": null clears the compound: each part is an explicit null, under the part's
             * own name as the snapshot keeps it, rather than a field "Name" no filter reads */
            size_t np = event_layout_part_count(layout, (size_t)compound);
            for (size_t i = 0; i < np; i++)
                f[n++] = (event_field){
                    .name = arena_strdup(mem, event_layout_part_name(layout, (size_t)compound, i)),
                    .val = value_null()};
        } else {
            f[n++] = (event_field){.name = nd->key, .val = to_value(&nd->val, mem)};
        }
    }
    ev->fields = f;
    ev->n_fields = n;
    ev->payload_marks_changes = true;
    return 0;
}

static void put_names(buf *b, const char *key, const char *const *names, size_t n)
{
    buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        buf_json_str(b, names[i], strlen(names[i]));
    }
    buf_putc(b, ']');
}

static void put_opt_str(buf *b, const char *key, const char *s)
{
    buf_printf(b, ",\"%s\":", key);
    if (s)
        buf_json_str(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

void event_to_json(const event *ev, const event_layout *l, buf *b)
{
    if (!l) l = event_layout_default();
    buf_puts(b, "{\"ChangeEventHeader\":{\"entityName\":");
    buf_json_str(b, ev->entity ? ev->entity : "", ev->entity ? strlen(ev->entity) : 0);
    buf_puts(b, ",\"recordIds\":[");
    for (size_t i = 0; i < ev->n_record_ids; i++) {
        if (i) buf_putc(b, ',');
        buf_json_str(b, ev->record_ids[i], strlen(ev->record_ids[i]));
    }
    buf_printf(b, "],\"changeType\":\"%s\"", change_type_name(ev->change));
    put_names(b, "changedFields", ev->changed_fields, ev->n_changed_fields);
    put_names(b, "nulledFields", ev->nulled_fields, ev->n_nulled_fields);
    put_names(b, "diffFields", ev->diff_fields, ev->n_diff_fields);
    put_opt_str(b, "transactionKey", ev->transaction_key);
    buf_printf(b, ",\"sequenceNumber\":%lld,\"commitTimestamp\":%lld,\"commitNumber\":%lld",
               (long long)ev->sequence_number, (long long)ev->commit_timestamp,
               (long long)ev->commit_number);
    put_opt_str(b, "commitUser", ev->commit_user);
    put_opt_str(b, "changeOrigin", ev->change_origin);
    buf_putc(b, '}');
    /* Plain fields first, then each compound with its parts nested back, as Salesforce sends. */
    for (size_t i = 0; i < ev->n_fields; i++) {
        const event_field *f = &ev->fields[i];
        if (event_layout_compound_of(l, f->name)) continue;
        buf_putc(b, ',');
        buf_json_str(b, f->name, strlen(f->name));
        buf_putc(b, ':');
        value_to_json(&f->val, b);
    }
    for (size_t c = 0; c < event_layout_count(l); c++) {
        size_t np = event_layout_part_count(l, c);
        if (!np) continue;
        bool opened = false;
        for (size_t i = 0; i < ev->n_fields; i++) {
            const char *comp = event_layout_compound_of(l, ev->fields[i].name);
            if (!comp || strcmp(comp, event_layout_name(l, c)) != 0) continue;
            if (!opened) {
                buf_putc(b, ',');
                buf_json_str(b, comp, strlen(comp));
                buf_puts(b, ":{");
                opened = true;
            } else {
                buf_putc(b, ',');
            }
            buf_json_str(b, ev->fields[i].name, strlen(ev->fields[i].name));
            buf_putc(b, ':');
            value_to_json(&ev->fields[i].val, b);
        }
        if (opened) buf_putc(b, '}');
    }
    buf_putc(b, '}');
}
