/* lookup: Profile and UserRole tables for relationship filters (R4.3). See lookup.h. */
#include "lookup.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/log.h"

/* Salesforce ids: the 18-character form is the 15-character one plus a case checksum. */
#define ID_KEY_LEN 15

typedef struct table {
    const char **fields; /* what the filters read, distinct (case-insensitive) */
    size_t n_fields;
    strmap rows;    /* id key -> value_t[n_fields] */
    strmap absent;  /* id keys the last read did not have: not asked for again */
    strmap pending; /* id keys noted for the next batch that neither map knows */
    arena mem;      /* the rows' strings */
    size_t n_rows;
} table;

struct lookup {
    table t[SOQL_REL__COUNT]; /* SOQL_REL_PROFILE and SOQL_REL_USERROLE are used */
    arena names;              /* field names */
    size_t noted_unknown;
    lookup_stats stats;
};

static bool has_table(soql_rel r) { return r == SOQL_REL_PROFILE || r == SOQL_REL_USERROLE; }

/* The table whose object (soql_relationship_name) or key field (soql_relationship_key) is called
 * name, any case; SOQL_REL_NONE when none is: the names live in soql's table, not here. */
static soql_rel table_named(const char *name, const char *(*name_of)(soql_rel))
{
    for (int r = 0; r < SOQL_REL__COUNT; r++)
        if (has_table((soql_rel)r) && strcasecmp(name, name_of((soql_rel)r)) == 0)
            return (soql_rel)r;
    return SOQL_REL_NONE;
}

static void id_key(const char *id, char out[ID_KEY_LEN + 1])
{
    size_t n = strnlen(id, ID_KEY_LEN);
    memcpy(out, id, n);
    out[n] = '\0';
}

static void table_add_field(lookup *l, table *t, const char *name)
{
    for (size_t i = 0; i < t->n_fields; i++)
        if (strcasecmp(t->fields[i], name) == 0) return;
    t->fields = xrealloc(t->fields, (t->n_fields + 1) * sizeof *t->fields);
    t->fields[t->n_fields++] = arena_strdup(&l->names, name);
}

lookup *lookup_new(const config *cfg)
{
    lookup *l = xcalloc(1, sizeof *l);
    arena_init(&l->names, 4096);
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        strmap_init(&l->t[r].rows);
        strmap_init(&l->t[r].absent);
        strmap_init(&l->t[r].pending);
        arena_init(&l->t[r].mem, 64 * 1024);
    }
    for (size_t a = 0; cfg && a < cfg->n_assignments; a++) {
        const soql_filter *f = cfg->assignments[a].filter;
        for (size_t i = 0; i < soql_field_count(f); i++) {
            const char *leaf;
            soql_rel r = soql_relationship(soql_field_name(f, i), &leaf);
            if (has_table(r)) table_add_field(l, &l->t[r], leaf);
        }
    }
    return l;
}

static void table_clear(table *t)
{
    strmap_free(&t->rows, NULL);
    strmap_init(&t->rows);
    strmap_free(&t->absent, NULL);
    strmap_init(&t->absent);
    arena_reset(&t->mem);
    t->n_rows = 0;
}

void lookup_free(lookup *l)
{
    if (!l) return;
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        table_clear(&l->t[r]);
        strmap_free(&l->t[r].rows, NULL);
        strmap_free(&l->t[r].absent, NULL);
        strmap_free(&l->t[r].pending, NULL);
        arena_free(&l->t[r].mem);
        free(l->t[r].fields);
    }
    arena_free(&l->names);
    free(l);
}

bool lookup_needed(const lookup *l)
{
    return l && (l->t[SOQL_REL_PROFILE].n_fields || l->t[SOQL_REL_USERROLE].n_fields);
}

void lookup_describe(const lookup *l, buf *out)
{
    const char *sep = "";
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        const table *t = &l->t[r];
        if (!t->n_fields) continue;
        buf_printf(out, "%s%s (", sep, soql_relationship_name((soql_rel)r));
        for (size_t i = 0; i < t->n_fields; i++)
            buf_printf(out, "%s%s", i ? ", " : "", t->fields[i]);
        buf_putc(out, ')');
        sep = ", ";
    }
}

const value_t *lookup_get(void *ctx, soql_rel rel, const char *id, const char *field)
{
    const lookup *l = ctx;
    if (!l || !has_table(rel) || !id) return NULL;
    const table *t = &l->t[rel];
    char key[ID_KEY_LEN + 1];
    id_key(id, key);
    const value_t *row = strmap_get(&t->rows, key);
    if (!row) return NULL;
    for (size_t i = 0; i < t->n_fields; i++)
        if (strcasecmp(t->fields[i], field) == 0) return &row[i];
    return NULL;
}

/* A row of a table being built: values copied into the table's arena. */
static value_t *table_row(table *t, const char *id)
{
    char key[ID_KEY_LEN + 1];
    id_key(id, key);
    value_t *row = strmap_get(&t->rows, key);
    if (row) return row;
    row = arena_alloc(&t->mem, (t->n_fields ? t->n_fields : 1) * sizeof *row);
    for (size_t i = 0; i < t->n_fields; i++)
        row[i] = value_null();
    strmap_put(&t->rows, key, row);
    t->n_rows++;
    return row;
}

static void table_set(table *t, value_t *row, size_t i, const value_t *v, const char *id)
{
    if (strcasecmp(t->fields[i], "Id") == 0) {
        row[i] = value_str(arena_strdup(&t->mem, id));
        return;
    }
    row[i] = v ? *v : value_null();
    if (row[i].type == VAL_STR) {
        row[i].s = arena_strndup(&t->mem, v->s, v->len);
        row[i].len = v->len;
    }
}

static int on_row(void *ctx, const sf_record *rec, perr *err)
{
    table *t = ctx;
    (void)err;
    if (!rec->id) return 0;
    value_t *row = table_row(t, rec->id);
    for (size_t i = 0; i < t->n_fields; i++)
        table_set(t, row, i, sf_record_get(rec, t->fields[i]), rec->id);
    return 0;
}

static void table_move(table *dst, table *src)
{
    table_clear(dst);
    strmap_free(&dst->rows, NULL);
    strmap_free(&dst->absent, NULL);
    arena_free(&dst->mem);
    dst->rows = src->rows;
    dst->absent = src->absent;
    dst->mem = src->mem;
    dst->n_rows = src->n_rows;
    strmap_init(&src->rows);
    strmap_init(&src->absent);
    arena_init(&src->mem, 64 * 1024);
    src->n_rows = 0;
}

int lookup_refresh(lookup *l, sf_client *sf, unsigned sf_flags, perr *err)
{
    table fresh[SOQL_REL__COUNT];
    memset(fresh, 0, sizeof fresh);
    int rc = 0;
    for (int r = 0; r < SOQL_REL__COUNT && rc == 0; r++) {
        const table *t = &l->t[r];
        if (!has_table((soql_rel)r) || !t->n_fields) continue;
        table *f = &fresh[r];
        f->fields = t->fields;
        f->n_fields = t->n_fields;
        strmap_init(&f->rows);
        strmap_init(&f->absent);
        arena_init(&f->mem, 64 * 1024);
        /* the field names went through the SOQL lexer at load: identifiers, nothing else */
        buf q;
        buf_init(&q);
        buf_puts(&q, "SELECT Id");
        for (size_t i = 0; i < t->n_fields; i++)
            if (strcasecmp(t->fields[i], "Id") != 0) buf_printf(&q, ", %s", t->fields[i]);
        buf_printf(&q, " FROM %s", soql_relationship_name((soql_rel)r));
        rc = sf_query(sf, q.data, sf_flags, on_row, f, err);
        buf_free(&q);
    }
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        if (!fresh[r].fields) continue;
        if (rc == 0) table_move(&l->t[r], &fresh[r]);
        strmap_free(&fresh[r].rows, NULL);
        strmap_free(&fresh[r].absent, NULL);
        arena_free(&fresh[r].mem);
    }
    if (rc < 0) {
        l->stats.failures++;
        return -1;
    }
    l->stats.refreshes++;
    l->stats.refreshed_ms = wall_ms();
    return 0;
}

size_t lookup_note_fields(lookup *l, const event_field *fields, size_t n)
{
    size_t unknown = 0;
    for (size_t i = 0; i < n; i++) {
        const value_t *v = &fields[i].val;
        if (v->type != VAL_STR || v->len == 0) continue;
        soql_rel r = table_named(fields[i].name, soql_relationship_key);
        if (r == SOQL_REL_NONE || !l->t[r].n_fields) continue;
        char key[ID_KEY_LEN + 1];
        id_key(v->s, key);
        table *t = &l->t[r];
        if (strmap_get(&t->rows, key) || strmap_get(&t->absent, key) ||
            strmap_get(&t->pending, key))
            continue;
        strmap_put(&t->pending, key, (void *)1);
        unknown++;
    }
    l->noted_unknown += unknown;
    return unknown;
}

/* The pending ids the tables still do not have are absent in Salesforce (or out of sight). */
static void settle_pending(lookup *l)
{
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        table *t = &l->t[r];
        for (size_t i = 0; i < t->pending.cap; i++) {
            const char *key = t->pending.slots[i].key;
            if (key && !strmap_get(&t->rows, key)) strmap_put(&t->absent, key, (void *)1);
        }
        strmap_free(&t->pending, NULL);
        strmap_init(&t->pending);
    }
    l->noted_unknown = 0;
}

int lookup_resolve_noted(lookup *l, sf_client *sf, perr *err)
{
    if (!l->noted_unknown) return 0;
    /* without Salesforce (simulate, explain) the tables are all there is */
    if (sf && lookup_refresh(l, sf, SF_ESSENTIAL, err) < 0) return -1; /* asked again next time */
    settle_pending(l);
    return 0;
}

/* ---------------------------------------------------------------- offline tables */

static int load_table(lookup *l, soql_rel r, json_t *obj, const char *path, perr *err)
{
    table *t = &l->t[r];
    const char *id;
    json_t *rec;
    json_object_foreach(obj, id, rec)
    {
        if (!json_is_object(rec))
            return perr_set(err, "%s: %s.%s: expected an object of fields", path,
                            soql_relationship_name(r), id);
        value_t *row = table_row(t, id);
        for (size_t i = 0; i < t->n_fields; i++) {
            json_t *v = NULL;
            const char *k;
            json_t *x;
            json_object_foreach(rec, k, x) if (strcasecmp(k, t->fields[i]) == 0) v = x;
            value_t val = value_null();
            if (json_is_string(v)) {
                val = value_str(json_string_value(v));
                val.len = json_string_length(v);
            } else if (json_is_boolean(v)) {
                val = value_bool(json_is_true(v));
            } else if (json_is_number(v)) {
                val = value_num(json_number_value(v));
            } else if (v && !json_is_null(v)) {
                return perr_set(err, "%s: %s.%s.%s: expected a string, number, boolean or null",
                                path, soql_relationship_name(r), id, t->fields[i]);
            }
            table_set(t, row, i, &val, id);
        }
    }
    return 0;
}

/* A REST query answer ({"records": [{"attributes": {"type": "Profile"}, "Id": ..., ...}]}), as
 * Salesforce gives it and as `run` reads it: its records into the tables form by type, so an
 * answer saved from Salesforce serves as it is. */
static int load_answer(lookup *l, json_t *answer, soql_rel under, const char *path, perr *err)
{
    json_t *by_type[SOQL_REL__COUNT] = {0};
    int rc = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(answer, "records"), i, rec)
    {
        const char *type =
            json_string_value(json_object_get(json_object_get(rec, "attributes"), "type"));
        const char *id = json_string_value(json_object_get(rec, "Id"));
        soql_rel r = type ? table_named(type, soql_relationship_name) : SOQL_REL_NONE;
        if (r == SOQL_REL_NONE || !id) {
            rc = perr_set(err,
                          "%s: records[%zu]: expected a Profile or UserRole record with its Id and "
                          "attributes.type",
                          path, i);
            break;
        }
        if (under != SOQL_REL_NONE && r != under) {
            rc = perr_set(err, "%s: %s: records[%zu] is a %s record", path,
                          soql_relationship_name(under), i, soql_relationship_name(r));
            break;
        }
        if (!by_type[r]) by_type[r] = json_object();
        json_object_set(by_type[r], id, rec);
    }
    for (int r = 0; r < SOQL_REL__COUNT; r++) {
        if (by_type[r] && rc == 0) rc = load_table(l, (soql_rel)r, by_type[r], path, err);
        json_decref(by_type[r]);
    }
    return rc;
}

int lookup_load_file(lookup *l, const char *path, perr *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line < 1) /* not JSON's fault: the file could not be read */
            return perr_set(err, "%s: %s", path, je.text);
        return perr_set(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    int rc = 0;
    if (json_is_array(root)) { /* several answers, e.g. one of Profile and one of UserRole */
        size_t i;
        json_t *answer;
        json_array_foreach(root, i, answer)
        {
            if (!json_is_array(json_object_get(answer, "records"))) {
                rc = perr_set(err, "%s: [%zu]: expected a query answer with records", path, i);
                goto out;
            }
            if ((rc = load_answer(l, answer, SOQL_REL_NONE, path, err)) < 0) goto out;
        }
        goto out;
    }
    if (!json_is_object(root)) {
        rc = perr_set(err,
                      "%s: expected an object with Profile and UserRole tables, or query "
                      "answers",
                      path);
        goto out;
    }
    if (json_is_array(json_object_get(root, "records"))) {
        rc = load_answer(l, root, SOQL_REL_NONE, path, err);
        goto out;
    }
    const char *name;
    json_t *obj;
    json_object_foreach(root, name, obj)
    {
        soql_rel r = table_named(name, soql_relationship_name);
        if (r == SOQL_REL_NONE) {
            rc = perr_set(err, "%s: unknown table '%s' (expected Profile or UserRole)", path, name);
            goto out;
        }
        if (!json_is_object(obj)) {
            rc = perr_set(err, "%s: %s: expected an object of records by id", path, name);
            goto out;
        }
        bool answer = json_is_array(json_object_get(obj, "records")); /* a query answer */
        if ((rc = answer ? load_answer(l, obj, r, path, err) : load_table(l, r, obj, path, err)) <
            0)
            goto out;
    }
out:
    json_decref(root);
    return rc;
}

void lookup_get_stats(const lookup *l, lookup_stats *out)
{
    *out = l->stats;
    for (int r = 0; r < SOQL_REL__COUNT; r++)
        out->rows[r] = l->t[r].n_rows;
}
