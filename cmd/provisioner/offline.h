/* The offline pipeline shared by simulate and explain: settings + JSON-lines events -> engine with
 * an in-memory store. Same decision code as `run`. */
#ifndef PROVISIONER_OFFLINE_H
#define PROVISIONER_OFFLINE_H

#include <stdio.h>

#include "cli/cli.h"
#include "config/config.h"
#include "engine/engine.h"
#include "jsonl.h"
#include "lookup/lookup.h"
#include "store/store.h"

typedef struct offline {
    config *cfg;
    store_mem *mem;     /* the state in memory, or */
    store_redis *redis; /* the service's (offline_opts.redis) */
    engine *eng;
    lookup *lk;         /* Profile and UserRole tables from --lookups (R4.3); empty without */
    sf_client *sf;      /* made for them from offline_opts.lookup_sf, or NULL */
    engine_hooks hooks; /* ctx = this struct; emit forwards to emit_fn */
    void (*emit_fn)(void *ctx, const command *c);
    void *emit_ctx;
    bool quiet_warnings;
    strmap unknown_ids; /* "Profile:00e..." ids --lookups lacks, each warned about once */
    /* explain: the user asked about (NULL: none), and its events R1.4 left out, by line */
    const char *watch;
    unsigned long lineno; /* of the event being applied */
    const char *file;     /* its file, for warnings; NULL outside offline_feed */
    buf ignored;
    size_t n_ignored;
    unsigned long bad_lines;
    int exit_code; /* of a failed offline_open: EXIT_USAGE, or EXIT_RUNTIME (Redis, Salesforce) */
    bool guards_left_out; /* the settings have guards, not applied (no --guards) */
} offline;

typedef struct offline_opts {
    const char *settings;
    const char *lookups; /* the look-up tables of relationship filters (R4.3); may be NULL */
    const char *now;     /* ISO 8601 clock for relative date literals; NULL: each event's */
    bool with_why;
    /* The settings' guards (R8.3) apply only with guards: simulate and explain apply R1-R7
     * (interfaces.md), the guard being the service's and a reimport's (and its share, measured
     * against the users of an events file rather than the org's, would hold what run does not). */
    bool guards;
    const store_redis_opts *redis; /* the state is the service's in Redis; NULL: in memory */
    /* The tables of relationship filters from Salesforce when no lookups file is given, through
     * a client made from these options (--salesforce-*) only when a filter reads them; without
     * either, need_lookups makes filters that read them an error (else a warning). */
    const cli_args *lookup_sf;
    bool need_lookups;
    void (*emit)(void *ctx, const command *c);
    void *emit_ctx;
} offline_opts;

/* Loads the settings and the look-up tables, opens the state and builds the engine; prints the
 * error and returns -1 (o->exit_code says which kind). */
int offline_open(offline *o, const offline_opts *opts);
/* Opens the events (stdin for NULL or "-") before anything is decided, so that a missing file
 * stops a command before it prints a command; prints the error and returns -1. */
int offline_open_events(jsonl_reader *in, const char *events_path);
/* Applies every event of in and closes it; bad lines are reported with FILE:LINE and counted.
 * Returns -1 when reading failed. */
int offline_feed(offline *o, jsonl_reader *in);
void offline_summary(const offline *o, FILE *f);
void offline_close(offline *o);

/* "2026-11-25T10:00:00Z" -> ms since the epoch; -1 if malformed. */
int64_t offline_parse_iso(const char *s);

#endif
