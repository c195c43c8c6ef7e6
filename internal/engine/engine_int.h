/* Shared by the engine's own files (engine.c, explain.c); not part of its public face. */
#ifndef PROVISIONER_ENGINE_INT_H
#define PROVISIONER_ENGINE_INT_H

#include "engine.h"

struct engine {
    const config *cfg;
    engine_store *store;
    engine_opts opts;
    engine_stats stats;
    buf why;             /* reused for each command's `why` */
    buf scratch;         /* reused for normalised emails */
    const char **sorted; /* reused for waiting reports */
    size_t sorted_cap;
    value_t *vals; /* filter inputs, as many as the widest filter reads */
};

/* The result of R3 for a snapshot. */
typedef struct scope {
    reason_code reason;
    int assignment;    /* index into cfg->assignments, -1 if none matched */
    bool email_ok;     /* R3.3 on its own, whatever failed first */
    const char *email; /* the email to send (domain lower-cased, maybe converted); in e->scratch */
    bool converted;
} scope;

scope engine_evaluate_scope(engine *e, const user_state *u, int64_t now_ms);
int engine_match_assignment(engine *e, const user_state *u, int64_t now_ms);
bool engine_is_blank(const value_t *v);

#endif
