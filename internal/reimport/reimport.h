/* reimport: "Reimport users now" (R8): every User read from Salesforce is applied as a full image
 * through the same engine; users known here but gone from Salesforce get deleted_in_salesforce;
 * automatic assignments' settings are re-applied where Gong has others; a mass deactivation is
 * held until confirmed (R8.3). Also the gap recovery of the service (R1.3). */
#ifndef PROVISIONER_REIMPORT_H
#define PROVISIONER_REIMPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "command/command.h"
#include "config/config.h"
#include "engine/engine.h"
#include "salesforce/salesforce.h"
#include "store/store.h"
#include "util/util.h"

typedef struct reimport_opts {
    sf_client *sf;
    store_redis *store;
    const config *cfg;
    void (*emit)(void *ctx, const command *c); /* every command, in order */
    /* Called after each chunk's commands were emitted and before its states are written: the
     * caller makes sure Kafka acknowledged them (R9.2). NULL: nothing to wait for. */
    int (*sync)(void *ctx, perr *err);
    /* Writes a chunk's states (after sync), resolving the late links they report; NULL: one
     * store_redis_flush, the late links left to be found again (the store's check (c)). */
    int (*flush)(void *ctx, perr *err);
    void *ctx;
    bool dry_run; /* decide against a scratch copy; write nothing */
    /* release the deactivations held before this run (R8.3); the guard still counts, and may
     * hold, the deactivations the run finds new */
    bool confirm;
    int64_t now_ms;
    volatile sig_atomic_t *stop;
    bool progress; /* a progress bar on stderr */
} reimport_opts;

typedef struct reimport_result {
    uint64_t salesforce_users;
    uint64_t known_users;
    uint64_t provisioned;   /* active in Gong before the run */
    uint64_t not_newer;     /* read but not newer than the user's position: left alone */
    uint64_t missing;       /* known here, gone from Salesforce */
    uint64_t deactivations; /* that the run would make */
    bool guard_tripped;
    uint64_t held; /* deactivations held (R8.3) */
    uint64_t commands[CMD__COUNT];
} reimport_result;

int reimport_run(const reimport_opts *o, reimport_result *res, perr *err);

/* The Salesforce fields the engine needs: R2.1, ManagerId, the positions' timestamps and every
 * field the settings' filters read. Valid while cfg lives; *n set. */
const char **reimport_fields(const config *cfg, size_t *n);

/* Users whose deactivation the guard holds (user_state.held; keep_active off). */
int reimport_list_held(store_redis *store, const config *cfg,
                       void (*fn)(void *ctx, const user_state *u), void *ctx, perr *err);

/* "2026-11-25T10:00:00.000+0000" (REST) or "...Z" -> ms since the epoch; -1 if malformed. */
int64_t reimport_parse_time(const char *s);

#endif
