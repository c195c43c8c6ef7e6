/* Change events as JSON lines (interfaces.md): the Streaming API payload, or the whole message with
 * the payload under data.payload and the replay id under data.event.replayId. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static int str_array(json_t *arr, const char *what, const event_layout *l, bool expand, arena *mem,
                     const char ***out, size_t *n, perr *err)
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

static const char *opt_str(json_t *o, const char *key, arena *mem)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v)) return arena_strndup(mem, json_string_value(v), json_string_length(v));
    return NULL;
}

static int opt_int(json_t *o, const char *key, int64_t *out, perr *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) { /* some relays quote longs */
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*end == '\0' && end != json_string_value(v)) {
            *out = x;
            return 0;
        }
    }
    return perr_set(err, "ChangeEventHeader.%s is not an integer", key);
}

typedef struct field_list {
    event_field *items;
    size_t n, cap;
} field_list;

static void push_field(field_list *fl, arena *mem, const char *name, value_t v)
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

static value_t to_value(json_t *v, arena *mem)
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
        /* arrays (rare in User events): kept as their JSON text so a filter can still see them */
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

int event_from_json(const char *line, size_t len, const event_layout *layout, arena *mem,
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
    ev->entity = opt_str(h, "entityName", mem);
    if (!ev->entity) {
        perr_set(err, "ChangeEventHeader.entityName is missing");
        goto out;
    }
    const char *ct = json_string_value(json_object_get(h, "changeType"));
    if (!ct) {
        perr_set(err, "ChangeEventHeader.changeType is missing");
        goto out;
    }
    if (change_type_parse(ct, &ev->change) < 0) {
        perr_set(err, "ChangeEventHeader.changeType '%s' is not a change type", ct);
        goto out;
    }
    json_t *ids = json_object_get(h, "recordIds");
    if (ev->change != CHANGE_GAP_OVERFLOW && !json_is_array(ids)) {
        perr_set(err, "ChangeEventHeader.recordIds is missing");
        goto out;
    }
    if (str_array(ids, "recordIds", layout, false, mem, &ev->record_ids, &ev->n_record_ids, err) <
            0 ||
        str_array(json_object_get(h, "changedFields"), "changedFields", layout, true, mem,
                  &ev->changed_fields, &ev->n_changed_fields, err) < 0 ||
        str_array(json_object_get(h, "nulledFields"), "nulledFields", layout, true, mem,
                  &ev->nulled_fields, &ev->n_nulled_fields, err) < 0 ||
        str_array(json_object_get(h, "diffFields"), "diffFields", layout, true, mem,
                  &ev->diff_fields, &ev->n_diff_fields, err) < 0)
        goto out;
    for (size_t i = 0; i < ev->n_record_ids; i++) {
        if (!ev->record_ids[i][0]) {
            perr_set(err, "ChangeEventHeader.recordIds[%zu] is empty", i);
            goto out;
        }
    }
    if (opt_int(h, "sequenceNumber", &ev->sequence_number, err) < 0 ||
        opt_int(h, "commitTimestamp", &ev->commit_timestamp, err) < 0 ||
        opt_int(h, "commitNumber", &ev->commit_number, err) < 0)
        goto out;
    ev->transaction_key = opt_str(h, "transactionKey", mem);
    ev->commit_user = opt_str(h, "commitUser", mem);
    ev->change_origin = opt_str(h, "changeOrigin", mem);

    field_list fl = {0};
    const char *key;
    json_t *v;
    json_object_foreach(payload, key, v)
    {
        if (strcmp(key, "ChangeEventHeader") == 0) continue;
        if (json_is_object(v)) { /* compound field: its parts under their own names (R1.3) */
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                if (!json_is_object(pv)) push_field(&fl, mem, arena_strdup(mem, pk), to_value(pv, mem));
            }
            continue;
        }
        push_field(&fl, mem, arena_strdup(mem, key), to_value(v, mem));
    }
    ev->fields = fl.items;
    ev->n_fields = fl.n;
    ev->payload_marks_changes = true;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void put_value(buf *b, const value_t *v)
{
    switch (v->type) {
    case VAL_NULL: buf_puts(b, "null"); break;
    case VAL_BOOL: buf_puts(b, v->b ? "true" : "false"); break;
    case VAL_NUM:
        if (v->num == (double)(long long)v->num) buf_printf(b, "%lld", (long long)v->num);
        else buf_printf(b, "%.17g", v->num);
        break;
    case VAL_STR: buf_json_str(b, v->s, v->len); break;
    }
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
    if (s) buf_json_str(b, s, strlen(s));
    else buf_puts(b, "null");
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
        put_value(b, &f->val);
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
            put_value(b, &ev->fields[i].val);
        }
        if (opened) buf_putc(b, '}');
    }
    buf_putc(b, '}');
}
