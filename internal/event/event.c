/* Change types and the field layout of a writer schema, used to turn Pub/Sub API bitmaps into
 * field names (interfaces.md, "Bitmaps"). */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"

static const char *const change_names[CHANGE__COUNT] = {
    "CREATE",     "UPDATE",     "DELETE",       "UNDELETE",     "GAP_CREATE",
    "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW",
};

const char *change_type_name(change_type t)
{
    return (unsigned)t < CHANGE__COUNT ? change_names[t] : "UNKNOWN";
}

bool event_is_user(const event *ev) { return ev->entity && strcmp(ev->entity, "User") == 0; }

/* Asked of every message, several times: the entity's strcmp only for the few that qualify. */
bool event_is_org_wide(const event *ev)
{
    bool every = ev->change == CHANGE_GAP_OVERFLOW;
    for (size_t i = 0; i < ev->n_record_ids && !every; i++) {
        const char *id = ev->record_ids[i]; /* a key prefix is three characters */
        every = id[0] && id[1] && id[2] && id[3] == '*' && !id[4];
    }
    return every && event_is_user(ev);
}

int change_type_parse(const char *name, change_type *out)
{
    for (int i = 0; i < CHANGE__COUNT; i++) {
        if (strcmp(name, change_names[i]) == 0) {
            *out = (change_type)i;
            return 0;
        }
    }
    return -1;
}

typedef struct layout_field {
    char *name;
    char **parts; /* compound parts, or NULL */
    size_t n_parts;
    val_type type;        /* what decoding makes of it (VAL_NULL: a record, or unknown) */
    val_type *part_types; /* the parts' */
} layout_field;

struct event_layout {
    layout_field *fields;
    size_t n;
    const char **all; /* every name, parts too (event_layout_all_names) */
    val_type *all_types;
    size_t n_all;
};

void event_layout_free(event_layout *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->fields[i].name);
        for (size_t j = 0; j < l->fields[i].n_parts; j++)
            free(l->fields[i].parts[j]);
        free(l->fields[i].parts);
        free(l->fields[i].part_types);
    }
    free(l->fields);
    free(l->all);
    free(l->all_types);
    free(l);
}

/* The record inside a field's type: the type itself, or the record branch of a union. */
static json_t *record_of(json_t *type)
{
    if (json_is_object(type)) {
        const char *t = json_string_value(json_object_get(type, "type"));
        return t && strcmp(t, "record") == 0 ? type : NULL;
    }
    if (json_is_array(type)) {
        size_t i;
        json_t *branch;
        json_array_foreach(type, i, branch)
        {
            json_t *r = record_of(branch);
            if (r) return r;
        }
    }
    return NULL;
}

/* The value a field of this Avro type decodes to: booleans to VAL_BOOL, numbers without a logical
 * type to VAL_NUM, strings, dates and timestamps to text (VAL_STR); VAL_NULL when unknown. */
static val_type value_type_of(json_t *type)
{
    if (json_is_array(type)) { /* a nullable union: its other branch */
        val_type found = VAL_NULL;
        size_t i;
        json_t *branch;
        json_array_foreach(type, i, branch)
        {
            val_type t = value_type_of(branch);
            if (t == VAL_NULL) continue;
            if (found != VAL_NULL && found != t) return VAL_NULL;
            found = t;
        }
        return found;
    }
    const char *logical = NULL, *name = json_string_value(type);
    if (json_is_object(type)) {
        name = json_string_value(json_object_get(type, "type"));
        logical = json_string_value(json_object_get(type, "logicalType"));
    }
    if (!name || strcmp(name, "null") == 0) return VAL_NULL;
    if (strcmp(name, "boolean") == 0) return VAL_BOOL;
    if (strcmp(name, "string") == 0 || strcmp(name, "enum") == 0) return VAL_STR;
    if (strcmp(name, "int") == 0 || strcmp(name, "long") == 0 || strcmp(name, "float") == 0 ||
        strcmp(name, "double") == 0)
        return logical ? VAL_STR : VAL_NUM;
    return VAL_NULL;
}

int event_layout_from_avsc(const char *avsc, size_t len, event_layout **out, perr *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(avsc, len, 0, &jerr);
    if (!root)
        return perr_set(err, "schema: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    json_t *fields = json_object_get(root, "fields");
    if (!json_is_array(fields)) {
        json_decref(root);
        return perr_set(err, "schema: the top level is not a record with fields");
    }
    event_layout *l = xcalloc(1, sizeof *l);
    l->n = json_array_size(fields);
    l->fields = xcalloc(l->n, sizeof *l->fields);
    for (size_t i = 0; i < l->n; i++) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name) {
            event_layout_free(l);
            json_decref(root);
            return perr_set(err, "schema: field %zu has no name", i);
        }
        l->fields[i].name = xstrdup(name);
        l->fields[i].type = value_type_of(json_object_get(f, "type"));
        json_t *rec = i == 0 ? NULL : record_of(json_object_get(f, "type"));
        json_t *parts = rec ? json_object_get(rec, "fields") : NULL;
        if (json_is_array(parts)) {
            size_t np = json_array_size(parts);
            l->fields[i].parts = xcalloc(np, sizeof(char *));
            l->fields[i].part_types = xcalloc(np, sizeof(val_type));
            for (size_t j = 0; j < np; j++) {
                json_t *part = json_array_get(parts, j);
                const char *pn = json_string_value(json_object_get(part, "name"));
                l->fields[i].part_types[l->fields[i].n_parts] =
                    value_type_of(json_object_get(part, "type"));
                l->fields[i].parts[l->fields[i].n_parts++] = xstrdup(pn ? pn : "");
            }
        }
    }
    json_decref(root);
    size_t n_all = l->n;
    for (size_t i = 0; i < l->n; i++)
        n_all += l->fields[i].n_parts;
    l->all = xmalloc((n_all ? n_all : 1) * sizeof *l->all);
    l->all_types = xmalloc((n_all ? n_all : 1) * sizeof *l->all_types);
    for (size_t i = 0; i < l->n; i++) {
        l->all_types[l->n_all] = l->fields[i].type;
        l->all[l->n_all++] = l->fields[i].name;
        for (size_t j = 0; j < l->fields[i].n_parts; j++) {
            l->all_types[l->n_all] = l->fields[i].part_types[j];
            l->all[l->n_all++] = l->fields[i].parts[j];
        }
    }
    *out = l;
    return 0;
}

extern const char pv_user_change_event_avsc[];

const char *event_default_schema_avsc(void) { return pv_user_change_event_avsc; }

static event_layout *default_layout;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void load_default_layout(void)
{
    perr err;
    if (event_layout_from_avsc(pv_user_change_event_avsc, strlen(pv_user_change_event_avsc),
                               &default_layout, &err) < 0)
        abort(); /* the bundled schema is checked by the tests; it cannot be wrong here */
}

const event_layout *event_layout_default(void)
{
    pthread_once(&default_once, load_default_layout);
    return default_layout;
}

size_t event_layout_count(const event_layout *l) { return l->n; }

const char *event_layout_name(const event_layout *l, size_t pos)
{
    return pos < l->n ? l->fields[pos].name : NULL;
}

size_t event_layout_part_count(const event_layout *l, size_t pos)
{
    return pos < l->n ? l->fields[pos].n_parts : 0;
}

const char *event_layout_part_name(const event_layout *l, size_t pos, size_t part)
{
    return pos < l->n && part < l->fields[pos].n_parts ? l->fields[pos].parts[part] : NULL;
}

const char *event_layout_compound_of(const event_layout *l, const char *part)
{
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < l->fields[i].n_parts; j++)
            if (strcmp(l->fields[i].parts[j], part) == 0) return l->fields[i].name;
    return NULL;
}

const char *const *event_layout_all_names(const event_layout *l, size_t *n)
{
    *n = l->n_all;
    return l->all;
}

val_type event_layout_value_type(const event_layout *l, const char *name)
{
    for (size_t i = 0; l && i < l->n_all; i++)
        if (strcasecmp(l->all[i], name) == 0) return l->all_types[i];
    return VAL_NULL;
}

static void push_name(arena *mem, const char ***names, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) *names = arena_grow(mem, *names, *n, cap, sizeof **names, 8);
    (*names)[(*n)++] = s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Calls back for each bit set in a "0x..." hex string: the least significant bit is position 0. */
static int bitmap_positions(const char *hex, size_t *pos, size_t *npos, size_t max, perr *err)
{
    size_t len = strlen(hex);
    if (len < 2 || hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X'))
        return perr_set(err, "bitmap '%s' does not start with 0x", hex);
    if (len == 2) return perr_set(err, "bitmap '%s' has no hex digits after 0x", hex);
    *npos = 0;
    for (size_t i = len; i > 2; i--) {
        int v = hexval(hex[i - 1]);
        if (v < 0) return perr_set(err, "bitmap '%s' has a character that is not hex", hex);
        size_t base = (len - i) * 4;
        for (int b = 0; b < 4; b++) {
            if (!(v & (1 << b))) continue;
            if (*npos == max) return perr_set(err, "bitmap '%s' has too many bits set", hex);
            pos[(*npos)++] = base + (size_t)b;
        }
    }
    return 0;
}

int event_expand_field_entry(const event_layout *l, const char *entry, arena *mem,
                             const char ***names, size_t *n, size_t *cap, perr *err)
{
    size_t pos[1024], npos = 0;
    if (entry[0] == '0' && (entry[1] == 'x' || entry[1] == 'X')) {
        if (bitmap_positions(entry, pos, &npos, 1024, err) < 0) return -1;
        for (size_t i = 0; i < npos; i++) {
            if (pos[i] >= l->n)
                return perr_set(err, "bitmap '%s' names position %zu; the schema has %zu fields",
                                entry, pos[i], l->n);
            push_name(mem, names, n, cap, l->fields[pos[i]].name);
        }
        return 0;
    }
    const char *dash = strchr(entry, '-');
    if (dash && dash > entry && dash[1] == '0' && (dash[2] == 'x' || dash[2] == 'X')) {
        size_t top = 0;
        for (const char *p = entry; p < dash; p++) {
            if (!isdigit((unsigned char)*p)) goto plain;
            top = top * 10 + (size_t)(*p - '0');
            if (top > 1000000) goto plain;
        }
        if (top >= l->n)
            return perr_set(err, "bitmap '%s' names field %zu; the schema has %zu fields", entry,
                            top, l->n);
        const layout_field *f = &l->fields[top];
        if (!f->n_parts)
            return perr_set(err,
                            "bitmap '%s' names parts of field %zu, %s, which is not a compound "
                            "field",
                            entry, top, f->name);
        if (bitmap_positions(dash + 1, pos, &npos, 1024, err) < 0) return -1;
        for (size_t i = 0; i < npos; i++) {
            if (pos[i] >= f->n_parts)
                return perr_set(err, "bitmap '%s' names part %zu of %s, which has %zu parts", entry,
                                pos[i], f->name, f->n_parts);
            size_t a = strlen(f->name), b = strlen(f->parts[pos[i]]);
            char *s = arena_alloc(mem, a + b + 2);
            memcpy(s, f->name, a);
            s[a] = '.';
            memcpy(s + a + 1, f->parts[pos[i]], b + 1);
            push_name(mem, names, n, cap, s);
        }
        return 0;
    }
plain:
    push_name(mem, names, n, cap, arena_strdup(mem, entry));
    return 0;
}
