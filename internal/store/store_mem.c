#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct link_list {
    char **ids;
    size_t n, cap;
} link_list;

struct store_mem {
    engine_store iface;
    strmap users; /* id -> user_state* */
    strmap links; /* manager id -> link_list* */
    company_state company;
};

static user_state *mem_get(void *ctx, const char *id)
{
    store_mem *m = ctx;
    return strmap_get(&m->users, id);
}

static user_state *mem_get_or_create(void *ctx, const char *id)
{
    store_mem *m = ctx;
    user_state *u = strmap_get(&m->users, id);
    if (!u) {
        u = user_state_new(id);
        strmap_put(&m->users, id, u);
    }
    return u;
}

static void mem_changed(void *ctx, user_state *u)
{
    (void)ctx;
    u->dirty = false; /* memory is the store: nothing to write back */
}

static void mem_link_add(void *ctx, const char *manager, const char *report)
{
    store_mem *m = ctx;
    link_list *l = strmap_get(&m->links, manager);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        strmap_put(&m->links, manager, l);
    }
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], report) == 0) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->ids = xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = xstrdup(report);
}

static void free_links(void *p)
{
    link_list *l = p;
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    free(l);
}

static void mem_link_del(void *ctx, const char *manager, const char *report)
{
    store_mem *m = ctx;
    link_list *l = strmap_get(&m->links, manager);
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->ids[i], report) != 0) continue;
        free(l->ids[i]);
        l->ids[i] = l->ids[--l->n];
        break;
    }
    if (!l->n) free_links(strmap_del(&m->links, manager));
}

static size_t mem_links(void *ctx, const char *manager, const char *const **reports)
{
    store_mem *m = ctx;
    link_list *l = strmap_get(&m->links, manager);
    if (!l) return 0;
    *reports = (const char *const *)l->ids;
    return l->n;
}

static company_state *mem_company(void *ctx) { return &((store_mem *)ctx)->company; }
static void mem_company_changed(void *ctx) { (void)ctx; }

store_mem *store_mem_new(void)
{
    store_mem *m = xcalloc(1, sizeof *m);
    strmap_init(&m->users);
    strmap_init(&m->links);
    m->company.provisioned = 0; /* it starts empty: nobody is provisioned, and that is known */
    m->iface = (engine_store){.ctx = m,
                              .get = mem_get,
                              .get_or_create = mem_get_or_create,
                              .changed = mem_changed,
                              .link_add = mem_link_add,
                              .link_del = mem_link_del,
                              .links = mem_links,
                              .company = mem_company,
                              .company_changed = mem_company_changed};
    return m;
}

static void free_user(void *p) { user_state_free(p); }

void store_mem_free(store_mem *m)
{
    if (!m) return;
    strmap_free(&m->users, free_user);
    strmap_free(&m->links, free_links);
    free(m);
}

engine_store *store_mem_iface(store_mem *m) { return &m->iface; }
size_t store_mem_count(const store_mem *m) { return m->users.len; }
