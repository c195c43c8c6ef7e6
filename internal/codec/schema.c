/* Avro schemas: .avsc JSON -> av_node trees, resolution checks, and the reading plan of a User
 * change event writer schema. Runs once per schema (per id), never per message. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

int codec_fail(codec_error *err, codec_error_kind kind, const char *fmt, ...)
{
    if (err) {
        err->kind = kind;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void codec_prefix(codec_error *err, const char *fmt, ...)
{
    if (!err) return;
    char pre[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t pl = strlen(pre), ml = strlen(err->msg), cap = sizeof err->msg - 1;
    if (pl + ml > cap) ml = cap - pl;
    memmove(err->msg + pl, err->msg, ml);
    memcpy(err->msg, pre, pl);
    err->msg[pl + ml] = '\0';
}

static const char *const kind_names[] = {
    "null",   "boolean", "int",  "long",  "float", "double", "bytes",
    "string", "fixed",   "enum", "array", "map",   "union",  "record",
};

const char *codec_kind_name(av_kind k) { return kind_names[k]; }

const av_node *codec_unwrap(const av_node *n)
{
    if (n->kind == AV_UNION && n->n == 2 && n->null_branch >= 0)
        return n->items[1 - n->null_branch];
    return n;
}

const av_node *codec_record_of(const av_node *n)
{
    if (n->kind == AV_RECORD) return n;
    if (n->kind == AV_UNION)
        for (size_t i = 0; i < n->n; i++)
            if (n->items[i]->kind == AV_RECORD) return n->items[i];
    return NULL;
}

/* ---- .avsc -> nodes */
typedef struct compiler {
    av_schema *s;
    strmap names; /* full and short names of the named types -> av_node */
    perr *err;
} compiler;

/* Nesting this deep is no real schema; the bound keeps a hostile registry from exhausting the
 * stack. */
enum { MAX_SCHEMA_DEPTH = 64 };

static av_node *new_node(compiler *c, av_kind kind)
{
    av_node *n = arena_alloc(&c->s->mem, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->null_branch = -1;
    return n;
}

static const struct {
    const char *name;
    av_kind kind;
} primitives[] = {
    {"null", AV_NULL},   {"boolean", AV_BOOLEAN}, {"int", AV_INT},     {"long", AV_LONG},
    {"float", AV_FLOAT}, {"double", AV_DOUBLE},   {"bytes", AV_BYTES}, {"string", AV_STRING},
};

static int primitive_kind(const char *name)
{
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (strcmp(name, primitives[i].name) == 0) return (int)primitives[i].kind;
    return -1;
}

static const char *full_name(compiler *c, const char *name, const char *ns)
{
    if (strchr(name, '.') || !ns || !*ns) return arena_strdup(&c->s->mem, name);
    size_t a = strlen(ns), b = strlen(name);
    char *s = arena_alloc(&c->s->mem, a + b + 2);
    memcpy(s, ns, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static void define_name(compiler *c, const char *full, av_node *n)
{
    strmap_put(&c->names, full, n);
    const char *dot = strrchr(full, '.');
    if (dot && !strmap_get(&c->names, dot + 1)) strmap_put(&c->names, dot + 1, n);
}

static av_node *lookup_name(compiler *c, const char *name, const char *ns)
{
    av_node *n = NULL;
    if (ns && *ns && !strchr(name, '.')) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s.%s", ns, name);
        n = strmap_get(&c->names, tmp);
    }
    return n ? n : strmap_get(&c->names, name);
}

static av_node *compile(compiler *c, json_t *j, const char *ns, int depth);

static av_node *compile_named(compiler *c, json_t *j, const char *type, const char *ns, int depth)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!name) {
        perr_set(c->err, "a %s has no name", type);
        return NULL;
    }
    const char *own_ns = json_string_value(json_object_get(j, "namespace"));
    if (!own_ns) own_ns = ns;
    const char *full = full_name(c, name, own_ns);
    /* names inside a type resolve against the type's namespace */
    const char *dot = strrchr(full, '.');
    const char *inner_ns = dot ? arena_strndup(&c->s->mem, full, (size_t)(dot - full)) : "";

    if (strcmp(type, "enum") == 0) {
        json_t *syms = json_object_get(j, "symbols");
        if (!json_is_array(syms)) {
            perr_set(c->err, "enum %s has no symbols", full);
            return NULL;
        }
        av_node *n = new_node(c, AV_ENUM);
        n->name = full;
        n->n_symbols = json_array_size(syms);
        n->symbols = arena_alloc(&c->s->mem, (n->n_symbols + 1) * sizeof(char *));
        for (size_t i = 0; i < n->n_symbols; i++) {
            const char *s = json_string_value(json_array_get(syms, i));
            if (!s) {
                perr_set(c->err, "enum %s: symbol %zu is not a string", full, i);
                return NULL;
            }
            n->symbols[i] = arena_strdup(&c->s->mem, s);
        }
        define_name(c, full, n);
        return n;
    }
    if (strcmp(type, "fixed") == 0) {
        json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
            perr_set(c->err, "fixed %s has no size", full);
            return NULL;
        }
        av_node *n = new_node(c, AV_FIXED);
        n->name = full;
        n->size = (size_t)json_integer_value(size);
        define_name(c, full, n);
        return n;
    }
    /* record / error */
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        perr_set(c->err, "record %s has no fields", full);
        return NULL;
    }
    av_node *n = new_node(c, AV_RECORD);
    n->name = full;
    define_name(c, full, n); /* before the fields: a record may refer to itself */
    n->n = json_array_size(fields);
    n->items = arena_alloc(&c->s->mem, (n->n + 1) * sizeof(av_node *));
    n->fields = arena_alloc(&c->s->mem, (n->n + 1) * sizeof(char *));
    n->has_default = arena_alloc(&c->s->mem, n->n + 1);
    for (size_t i = 0; i < n->n; i++) {
        json_t *f = json_array_get(fields, i);
        const char *fname = json_string_value(json_object_get(f, "name"));
        if (!fname) {
            perr_set(c->err, "record %s: field %zu has no name", full, i);
            return NULL;
        }
        n->fields[i] = arena_strdup(&c->s->mem, fname);
        n->has_default[i] = json_object_get(f, "default") != NULL;
        n->items[i] = compile(c, json_object_get(f, "type"), inner_ns, depth + 1);
        if (!n->items[i]) {
            perr_prefix(c->err, "%s.%s: ", full, fname);
            return NULL;
        }
    }
    return n;
}

static av_node *compile(compiler *c, json_t *j, const char *ns, int depth)
{
    if (depth > MAX_SCHEMA_DEPTH) {
        perr_set(c->err, "nested more than %d deep", MAX_SCHEMA_DEPTH);
        return NULL;
    }
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        int k = primitive_kind(name);
        if (k >= 0) return new_node(c, (av_kind)k);
        av_node *n = lookup_name(c, name, ns);
        if (!n) perr_set(c->err, "unknown type '%s'", name);
        return n;
    }
    if (json_is_array(j)) {
        av_node *n = new_node(c, AV_UNION);
        n->n = json_array_size(j);
        if (n->n == 0) {
            perr_set(c->err, "an empty union");
            return NULL;
        }
        n->items = arena_alloc(&c->s->mem, n->n * sizeof(av_node *));
        for (size_t i = 0; i < n->n; i++) {
            n->items[i] = compile(c, json_array_get(j, i), ns, depth + 1);
            if (!n->items[i]) return NULL;
            if (n->items[i]->kind == AV_UNION) {
                perr_set(c->err, "a union inside a union");
                return NULL;
            }
            if (n->items[i]->kind == AV_NULL && n->null_branch < 0) n->null_branch = (int)i;
        }
        return n;
    }
    if (!json_is_object(j)) {
        perr_set(c->err, "a type is a string, an array or an object");
        return NULL;
    }
    json_t *tj = json_object_get(j, "type");
    if (json_is_array(tj) || json_is_object(tj)) return compile(c, tj, ns, depth + 1);
    const char *type = json_string_value(tj);
    if (!type) {
        perr_set(c->err, "an object type without \"type\"");
        return NULL;
    }
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0)
        return compile_named(c, j, type, ns, depth);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        bool is_map = type[0] == 'm';
        av_node *n = new_node(c, is_map ? AV_MAP : AV_ARRAY);
        n->n = 1;
        n->items = arena_alloc(&c->s->mem, sizeof(av_node *));
        n->items[0] = compile(c, json_object_get(j, is_map ? "values" : "items"), ns, depth + 1);
        return n->items[0] ? n : NULL;
    }
    int k = primitive_kind(type);
    if (k < 0) {
        av_node *n = lookup_name(c, type, ns);
        if (!n) perr_set(c->err, "unknown type '%s'", type);
        return n;
    }
    av_node *n = new_node(c, (av_kind)k);
    const char *lt = json_string_value(json_object_get(j, "logicalType"));
    /* A logical type on the wrong primitive is ignored, as the Avro spec asks. */
    if (lt && k == AV_LONG && strcmp(lt, "timestamp-millis") == 0) n->logical = LT_TIMESTAMP_MILLIS;
    if (lt && k == AV_LONG && strcmp(lt, "timestamp-micros") == 0) n->logical = LT_TIMESTAMP_MICROS;
    if (lt && k == AV_INT && strcmp(lt, "date") == 0) n->logical = LT_DATE;
    return n;
}

int codec_schema_compile(const char *avsc, size_t len, av_schema **out, perr *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(avsc, len, 0, &jerr);
    if (!root)
        return perr_set(err, "schema is not JSON: line %d column %d: %s", jerr.line, jerr.column,
                        jerr.text);
    av_schema *s = xcalloc(1, sizeof *s);
    arena_init(&s->mem, 8192);
    compiler c = {.s = s, .err = err};
    strmap_init(&c.names);
    s->root = compile(&c, root, "", 0);
    strmap_free(&c.names, NULL);
    json_decref(root);
    if (!s->root) {
        codec_schema_free(s);
        return perr_prefix(err, "schema: ");
    }
    *out = s;
    return 0;
}

void codec_schema_free(av_schema *s)
{
    if (!s) return;
    arena_free(&s->mem);
    free(s);
}

int codec_validate_avsc(const char *avsc, size_t len, perr *err)
{
    avro_schema_t w;
    if (avro_schema_from_json_length(avsc, len, &w) != 0)
        return perr_set(err, "not a valid Avro schema: %s", avro_strerror());
    avro_schema_decref(w);
    return 0;
}

static const char *short_name(const char *full)
{
    const char *dot = full ? strrchr(full, '.') : NULL;
    return dot ? dot + 1 : full ? full : "";
}

/* The pairs being checked further up, so that recursive types terminate. */
typedef struct resolving {
    const av_node *w, *r;
    const struct resolving *up;
} resolving;

static bool promotes(av_kind w, av_kind r)
{
    switch (w) {
    case AV_INT: return r == AV_LONG || r == AV_FLOAT || r == AV_DOUBLE;
    case AV_LONG: return r == AV_FLOAT || r == AV_DOUBLE;
    case AV_FLOAT: return r == AV_DOUBLE;
    case AV_STRING: return r == AV_BYTES;
    case AV_BYTES: return r == AV_STRING;
    default: return false;
    }
}

static bool resolves(const av_node *w, const av_node *r, const resolving *up, int depth, perr *err)
{
    if (depth > MAX_SCHEMA_DEPTH) return true; /* only a recursive type gets here */
    for (const resolving *p = up; p; p = p->up)
        if (p->w == w && p->r == r) return true;
    resolving here = {w, r, up};
    if (w->kind == AV_UNION) {
        for (size_t i = 0; i < w->n; i++)
            if (resolves(w->items[i], r, &here, depth + 1, NULL)) return true;
        perr_set(err, "no branch of the writer's union can be read as the reader's %s",
                 codec_kind_name(r->kind));
        return false;
    }
    if (r->kind == AV_UNION) {
        for (size_t i = 0; i < r->n; i++)
            if (resolves(w, r->items[i], &here, depth + 1, NULL)) return true;
        perr_set(err, "the writer's %s is no branch of the reader's union",
                 codec_kind_name(w->kind));
        return false;
    }
    if (w->kind != r->kind) {
        if (promotes(w->kind, r->kind)) return true;
        perr_set(err, "the writer's %s cannot be read as %s", codec_kind_name(w->kind),
                 codec_kind_name(r->kind));
        return false;
    }
    switch (w->kind) {
    case AV_ARRAY:
    case AV_MAP: return resolves(w->items[0], r->items[0], &here, depth + 1, err);
    case AV_ENUM:
    case AV_FIXED:
    case AV_RECORD:
        if (strcmp(short_name(w->name), short_name(r->name)) != 0) {
            perr_set(err, "the writer's %s %s is not the reader's %s", codec_kind_name(w->kind),
                     w->name, r->name);
            return false;
        }
        if (w->kind == AV_FIXED && w->size != r->size) {
            perr_set(err, "fixed %s has size %zu, the reader's %zu", w->name, w->size, r->size);
            return false;
        }
        if (w->kind != AV_RECORD) return true;
        for (size_t i = 0; i < r->n; i++) {
            size_t j = 0;
            while (j < w->n && strcmp(w->fields[j], r->fields[i]) != 0)
                j++;
            if (j == w->n) {
                if (r->has_default[i]) continue;
                perr_set(err, "%s.%s is missing and has no default", r->name, r->fields[i]);
                return false;
            }
            if (!resolves(w->items[j], r->items[i], &here, depth + 1, err)) {
                if (err) perr_prefix(err, "%s.%s: ", r->name, r->fields[i]);
                return false;
            }
        }
        return true;
    default: return true;
    }
}

int codec_resolves(const av_node *writer, const av_node *reader, perr *err)
{
    return resolves(writer, reader, NULL, 0, err) ? 0 : -1;
}

/* ---- the plan of a User change event writer */
static const char *const header_names[H__COUNT] = {
    "entityName",     "recordIds",      "changeType",      "changeOrigin",
    "transactionKey", "sequenceNumber", "commitTimestamp", "commitNumber",
    "commitUser",     "nulledFields",   "diffFields",      "changedFields",
};

/* The kinds a node's values can have: its own, or its union branches'. */
static unsigned kinds_of(const av_node *n)
{
    if (n->kind != AV_UNION) return 1u << n->kind;
    unsigned m = 0;
    for (size_t i = 0; i < n->n; i++)
        m |= 1u << n->items[i]->kind;
    return m;
}

#define K(k) (1u << (k))

static bool header_type_ok(header_slot slot, const av_node *t)
{
    unsigned m = kinds_of(t);
    switch (slot) {
    case H_ENTITY:
    case H_CHANGE_ORIGIN:
    case H_TRANSACTION_KEY:
    case H_COMMIT_USER: return (m & K(AV_STRING)) && !(m & ~(K(AV_STRING) | K(AV_NULL)));
    case H_CHANGE_TYPE:
        return (m & (K(AV_STRING) | K(AV_ENUM))) &&
               !(m & ~(K(AV_STRING) | K(AV_ENUM) | K(AV_NULL)));
    case H_SEQUENCE:
    case H_COMMIT_TS:
    case H_COMMIT_NUMBER:
        return (m & (K(AV_INT) | K(AV_LONG))) && !(m & ~(K(AV_INT) | K(AV_LONG) | K(AV_NULL)));
    case H_RECORD_IDS:
    case H_NULLED:
    case H_DIFF:
    case H_CHANGED: {
        const av_node *a = codec_unwrap(t);
        return a->kind == AV_ARRAY && a->items[0]->kind == AV_STRING;
    }
    default: return true;
    }
}

void codec_plan_free(ev_plan *p)
{
    if (!p) return;
    codec_schema_free(p->schema);
    if (p->layout) event_layout_free(p->layout);
    free(p->header_slots);
    free(p->leaves);
    free(p->leaf_of_top);
    free(p->first_part_leaf);
    strmap_free(&p->by_name, NULL);
    free(p->other);
    free(p);
}

/* Frees a half-built plan and passes the failure on. */
static int drop(ev_plan *p, int rc)
{
    codec_plan_free(p);
    return rc;
}

#define MISMATCH(...) drop(p, codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH, __VA_ARGS__))

int codec_plan_new(const char *avsc, size_t len, const av_schema *reader, bool other_ok,
                   ev_plan **out, codec_error *err)
{
    perr pe;
    ev_plan *p = xcalloc(1, sizeof *p);
    strmap_init(&p->by_name);
    if (codec_schema_compile(avsc, len, &p->schema, &pe) < 0) return MISMATCH("writer %s", pe.msg);
    if (codec_validate_avsc(avsc, len, &pe) < 0) return MISMATCH("writer schema %s", pe.msg);
    if (reader && codec_resolves(p->schema->root, reader->root, &pe) < 0) {
        if (!other_ok)
            return MISMATCH("writer schema does not resolve against the reader: %s", pe.msg);
        p->other = xstrdup(pe.msg);
    }
    const av_node *root = p->schema->root;
    if (root->kind != AV_RECORD)
        return MISMATCH("writer schema is a %s, not a record", kind_names[root->kind]);
    bool found = false;
    for (size_t i = 0; i < root->n; i++) {
        if (strcmp(root->fields[i], "ChangeEventHeader") == 0) {
            p->header_pos = i;
            p->header = codec_unwrap(root->items[i]);
            found = true;
            break;
        }
    }
    if (!found || p->header->kind != AV_RECORD)
        return MISMATCH("writer schema has no ChangeEventHeader record");
    p->header_slots = xcalloc(p->header->n + 1, 1);
    bool have[H__COUNT] = {0};
    for (size_t i = 0; i < p->header->n; i++) {
        p->header_slots[i] = H_OTHER;
        for (int s = 0; s < H__COUNT; s++) {
            if (strcmp(p->header->fields[i], header_names[s]) != 0) continue;
            if (!header_type_ok((header_slot)s, p->header->items[i]))
                return MISMATCH("ChangeEventHeader.%s has an unexpected type (%s)", header_names[s],
                                kind_names[p->header->items[i]->kind]);
            p->header_slots[i] = (int8_t)s;
            have[s] = true;
        }
    }
    static const header_slot required[] = {H_ENTITY, H_RECORD_IDS, H_CHANGE_TYPE};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!have[required[i]])
            return MISMATCH("ChangeEventHeader has no %s", header_names[required[i]]);

    if (event_layout_from_avsc(avsc, len, &p->layout, &pe) < 0)
        return MISMATCH("writer %s", pe.msg);
    if (event_layout_count(p->layout) != root->n)
        return MISMATCH("writer schema: its field layout disagrees with the schema");

    size_t n_leaves = 0;
    for (size_t i = 0; i < root->n; i++) {
        const av_node *t = codec_record_of(root->items[i]);
        n_leaves += i == p->header_pos ? 0 : t ? t->n : 1;
    }
    p->leaves = xcalloc(n_leaves + 1, sizeof *p->leaves);
    p->leaf_of_top = xcalloc(root->n + 1, sizeof(int));
    p->first_part_leaf = xcalloc(root->n + 1, sizeof(int));
    for (size_t i = 0; i < root->n; i++) {
        p->leaf_of_top[i] = -1;
        p->first_part_leaf[i] = -1;
        if (i == p->header_pos) continue;
        const av_node *t = codec_record_of(root->items[i]);
        if (t) {
            p->first_part_leaf[i] = (int)p->n_leaves;
            for (size_t j = 0; j < t->n; j++)
                p->leaves[p->n_leaves++] = (ev_leaf){t->fields[j], i, (int)j, t->items[j]};
        } else {
            p->leaf_of_top[i] = (int)p->n_leaves;
            p->leaves[p->n_leaves++] = (ev_leaf){root->fields[i], i, -1, root->items[i]};
        }
    }
    /* a top-level field wins over a compound part of the same name */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < p->n_leaves; i++)
            if ((p->leaves[i].part < 0) == (pass == 0) &&
                !strmap_get(&p->by_name, p->leaves[i].name))
                strmap_put(&p->by_name, p->leaves[i].name, (void *)(uintptr_t)(i + 1));
    *out = p;
    return 0;
}
