/* store: where user states, waiting links and the company state live, behind engine_store.
 * store_mem keeps everything in process memory (simulate, explain, tests, replay dry runs). */
#ifndef PROVISIONER_STORE_H
#define PROVISIONER_STORE_H

#include "engine/engine.h"

typedef struct store_mem store_mem;

store_mem *store_mem_new(void);
void store_mem_free(store_mem *m);
engine_store *store_mem_iface(store_mem *m);
size_t store_mem_count(const store_mem *m);

#endif
