/* The per-user state model: snapshot, position, provisioning record, hierarchy fields. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_int.h"

static strmap interned;
static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;

const char *engine_intern(const char *name)
{
    /* States are built from the same few dozen names (the decoder's, the store's), each field of
     * each user interned again: what a pointer was interned as last is remembered per thread, so
     * most calls take neither the lock nor a hash. The memory behind a pointer may hold another
     * name by now (a reused buffer): the remembered copy is compared before it is trusted, and an
     * interned name, which never changes, is trusted as it is. */
    static _Thread_local struct {
        const char *in, *out;
    } memo[128];
    size_t h = ((uintptr_t)name >> 3) & 127;
    if (memo[h].in == name && (memo[h].out == name || strcmp(memo[h].out, name) == 0))
        return memo[h].out;
    pthread_mutex_lock(&intern_lock);
    const char *k = strmap_get(&interned, name);
    if (!k) {
        /* the map owns the key; the value points at it so a hit returns the stable copy */
        k = strmap_put(&interned, name, NULL);
        strmap_put(&interned, name, (void *)k);
    }
    pthread_mutex_unlock(&intern_lock);
    memo[h].in = name;
    memo[h].out = k;
    return k;
}

user_state *user_state_new(const char *id)
{
    user_state *u = xcalloc(1, sizeof *u);
    u->id = id ? xstrdup(id) : NULL;
    arena_init(&u->strs, 512); /* used when pooled (store_redis) */
    return u;
}

/* u's own string members, freed unless pooled (then they live in u->strs) */
static void release_members(user_state *u)
{
    if (!u->pooled) {
        free(u->id);
        free(u->assignment);
        free(u->applied_settings_of);
        free(u->gong_manager);
        free(u->waiting_for);
    }
    u->id = u->assignment = u->applied_settings_of = u->gong_manager = u->waiting_for = NULL;
}

void user_state_set_strn(user_state *u, char **member, const char *src, size_t n)
{
    if (*member && src && strlen(*member) == n && memcmp(*member, src, n) == 0) return;
    if (!u->pooled) free(*member);
    *member = !src ? NULL : u->pooled ? arena_strndup(&u->strs, src, n) : xstrndup(src, n);
}

void user_state_set_str(user_state *u, char **member, const char *src)
{
    user_state_set_strn(u, member, src, src ? strlen(src) : 0);
}

value_t user_state_dup_value(user_state *u, const value_t *v)
{
    value_t out = *v;
    if (v->type == VAL_STR)
        out.s = u->pooled ? arena_strndup(&u->strs, v->s, v->len) : xstrndup(v->s, v->len);
    return out;
}

void user_state_release_value(user_state *u, value_t *v)
{
    if (v->type == VAL_STR && !u->pooled) free((char *)v->s);
    *v = value_null();
}

void user_state_clear_fields(user_state *u)
{
    for (size_t i = 0; i < u->n_fields; i++)
        user_state_release_value(u, &u->fields[i].val);
    u->n_fields = 0;
}

void user_state_release_strings(user_state *u)
{
    user_state_clear_fields(u);
    for (int i = 0; i < ATTR__COUNT; i++)
        user_state_release_value(u, &u->sent[i]);
    release_members(u);
}

void user_state_free(user_state *u)
{
    if (!u) return;
    user_state_release_strings(u);
    free(u->fields);
    arena_free(&u->strs);
    free(u);
}

static ssize_t find_field(const user_state *u, const char *field)
{
    /* Case-insensitive as SOQL is. One pass, where there used to be a pointer pass (for interned
     * names) before a strcasecmp pass: event names are never interned, so the pointer pass ran in
     * full for every field of every event. The engine's own look-ups (engine.c's name_of) pass
     * interned names, which the pointer test in the pass matches at once. The same pointer cannot
     * be found after a match in another case: user_state_set, the only way names get in, never adds
     * a name that equals one already there but for case. The first byte, folded, rules out nearly
     * every other name without a call. */
    const user_field *f = u->fields;
    /* States keep their fields in the order first seen, nearly the same from one user to the
     * next, and callers ask for the same names (the attributes, the filters' fields) over and
     * over: where the name asked for was found last is checked first. Only a guess, checked
     * like any other position, so a wrong one (a name at another address now) costs the scan. */
    static _Thread_local struct {
        const char *name;
        size_t at;
    } hint[64];
    size_t h = ((uintptr_t)field >> 3) & 63;
    if (hint[h].name == field && hint[h].at < u->n_fields) {
        const char *n = f[hint[h].at].name;
        if (n == field || engine_name_eq(n, field)) return (ssize_t)hint[h].at;
    }
    unsigned char first = (unsigned char)field[0] | 0x20;
    for (size_t i = 0; i < u->n_fields; i++) {
        if (f[i].name == field ||
            (((unsigned char)f[i].name[0] | 0x20) == first && engine_name_eq(f[i].name, field))) {
            hint[h].name = field;
            hint[h].at = i;
            return (ssize_t)i;
        }
    }
    return -1;
}

const value_t *user_state_get(const user_state *u, const char *field)
{
    ssize_t i = find_field(u, field);
    return i < 0 ? NULL : &u->fields[i].val;
}

void user_state_set(user_state *u, const char *field, const value_t *v)
{
    ssize_t i = find_field(u, field);
    if (i >= 0) {
        if (value_eq(&u->fields[i].val, v)) return;
        user_state_release_value(u, &u->fields[i].val);
        u->fields[i].val = user_state_dup_value(u, v);
        return;
    }
    if (u->n_fields == u->cap_fields) {
        u->cap_fields = u->cap_fields ? u->cap_fields * 2 : 16;
        u->fields = xrealloc(u->fields, u->cap_fields * sizeof *u->fields);
    }
    u->fields[u->n_fields].name = engine_intern(field);
    u->fields[u->n_fields].val = user_state_dup_value(u, v);
    u->n_fields++;
}

void user_state_copy(user_state *dst, const user_state *src)
{
    char *id = dst->id;
    dst->id = NULL; /* kept */
    user_state_release_strings(dst);
    user_field *fields = dst->fields;
    size_t cap = dst->cap_fields;
    bool pooled = dst->pooled;
    arena strs = dst->strs;
    *dst = *src;
    dst->id = id;
    dst->fields = fields;
    dst->cap_fields = cap;
    dst->pooled = pooled; /* src's values are copied out of src's strings below */
    dst->strs = strs;
    dst->n_fields = 0;
    for (size_t i = 0; i < src->n_fields; i++)
        user_state_set(dst, src->fields[i].name, &src->fields[i].val);
    for (int i = 0; i < ATTR__COUNT; i++)
        dst->sent[i] = user_state_dup_value(dst, &src->sent[i]);
    dst->assignment = dst->applied_settings_of = dst->gong_manager = dst->waiting_for = NULL;
    user_state_set_str(dst, &dst->assignment, src->assignment);
    user_state_set_str(dst, &dst->applied_settings_of, src->applied_settings_of);
    user_state_set_str(dst, &dst->gong_manager, src->gong_manager);
    user_state_set_str(dst, &dst->waiting_for, src->waiting_for);
}
