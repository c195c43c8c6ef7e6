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

/* ---- store_redis: the service's state in Redis (issue 6). Key layout under a prefix (see
 * README "State in Redis"). The engine works on an in-process cache that a batch fills with
 * store_redis_prefetch (one pipelined round trip) and writes back with store_redis_flush (one
 * pipelined round trip, atomic per user). A user the engine asks for that was not prefetched is
 * read on the spot (counted as a miss). */
typedef struct store_redis store_redis;

typedef struct store_redis_opts {
    const char *url;    /* redis://[user:password@]host:port[/db] */
    const char *prefix; /* key prefix, e.g. "prov:" */
    int timeout_ms;     /* per command; 0: 2000 */
    /* The cache is kept across batches (a dry run's scratch state) rather than reset after each:
     * its states are not pooled (user_state.pooled), or a user's strings would pile up with
     * every event of the run. */
    bool keep_cache;
    /* Opens the connection for writes sent ahead (store_redis_send_sealed) at once, not with the
     * first write: a service that sends them finds out at start whether Redis takes a second
     * connection, and holds its two from then on. */
    bool writes_ahead;
    /* Reads only (explain --live): the write scripts are not loaded, so a user whose ACL allows
     * reads only will do. */
    bool read_only;
} store_redis_opts;

/* Reports (manager, report) pairs whose waiting link another instance may have raced with (R6.3):
 * after a flush the caller asks the engine to resolve each manager again
 * (engine_resolve_manager). */
typedef struct store_late {
    char **managers; /* distinct manager ids */
    size_t n;
} store_late;

typedef struct store_redis_stats {
    uint64_t round_trips;
    uint64_t misses;   /* users read outside a prefetch */
    uint64_t old_form; /* users read in the hash form of earlier builds (one round trip more) */
    uint64_t users_written;
} store_redis_stats;

int store_redis_open(const store_redis_opts *o, store_redis **out, perr *err);
/* Checks a URL as store_redis_open reads it, without connecting: a bad one is a usage error. */
int store_redis_check_url(const char *url, perr *err);
void store_redis_close(store_redis *s);
engine_store *store_redis_iface(store_redis *s);
/* Loads these users (and the waiting-link sets naming them as manager) into the cache. */
int store_redis_prefetch(store_redis *s, const char *const *ids, size_t n, perr *err);
/* Sends the reads of these users (those not cached) now and returns at once: the next prefetch
 * takes their replies first, so Redis runs them while the caller does something else (decodes
 * the rest of its batch). Until that prefetch the caller makes no other store call but
 * store_redis_reset; any other read takes the replies and forgets them. Errors come with the
 * prefetch. */
void store_redis_prefetch_ahead(store_redis *s, const char *const *ids, size_t n);
/* The same for a batch: ids[0..n_subjects) are the users its events are about, the rest users
 * they name (managers). With the waiting index, a named user's waiting set is read only when it
 * has members and the user is active (check (c)); otherwise a links() of it reads it then. */
int store_redis_prefetch_named(store_redis *s, const char *const *ids, size_t n, size_t n_subjects,
                               perr *err);
/* After store_redis_prefetch: loads the reports waiting for these users (prefetched before) that
 * are not cached yet, in one more round trip when there are any. A manager that becomes active
 * reads every report waiting for it (R6.3); pass the users a batch may activate, not every
 * manager it names, whose waiting sets can be long. A manager with more than max waiting
 * reports (0: no limit) is skipped: the engine leaves those placements to the caller
 * (engine_opts.max_placements). */
int store_redis_prefetch_waiting(store_redis *s, const char *const *managers, size_t n, size_t max,
                                 perr *err);
/* Reads the chains of Gong managers above these users (cached ones; users not read are skipped),
 * one level a round trip, up to depth levels: R6.4's cycle check walks a new manager's chain a
 * user at a time, each user not cached one round trip (a deep org's cold start: one a created
 * user). */
int store_redis_prefetch_chains(store_redis *s, const char *const *ids, size_t n, size_t depth,
                                perr *err);
/* The cached users that are active in Gong and have reports waiting for them (their waiting sets
 * loaded): placements cut short by a crash, or raced (check (c), which a seal also reports after
 * its write). Appended to out, which the caller frees. */
void store_redis_active_waiting(store_redis *s, store_late *out);
/* Loads these users into the cache, without the waiting sets naming them. */
int store_redis_prefetch_users(store_redis *s, const char *const *ids, size_t n, perr *err);
/* Writes every changed user, link and the company state (after any sealed write still pending);
 * adds to late (may be NULL; the caller empties it) the managers the writes report late, also
 * those of writes stored before one failed. On failure nothing is lost: the same call again
 * writes what is left. */
int store_redis_flush(store_redis *s, store_late *late, perr *err);
/* After store_redis_flush failed with err: whether trying again may succeed without anyone's
 * help. Yes when the connection was lost (Redis away, restarting, a timeout) or Redis refused for
 * a while (NOREPLICAS, LOADING, BUSY, MASTERDOWN, TRYAGAIN, OOM, READONLY, CLUSTERDOWN); no for
 * the rest (NOPERM, WRONGTYPE, a reply of the wrong kind), which a person must mend. */
bool store_redis_flush_may_pass(const store_redis *s, const perr *err);
void store_late_free(store_late *l);

/* The two halves of a flush, so that a batch can be decided while the previous one's commands
 * are still on their way to Kafka (R9.2: a state is written only after its commands are
 * acknowledged). store_redis_seal builds the write of every change in the cache and marks the
 * cache written; *w is NULL when nothing changed. Until the write is sent, every read (prefetch,
 * misses, waiting sets, the company state, also after a reset) sees what it will leave in Redis.
 * store_redis_write_sealed writes w, after any older write still pending, and adds to late as a
 * flush does; on failure what is not written stays pending and the call can be repeated.
 * store_redis_discard drops the newest pending write unsent (its batch is decided again). */
typedef struct store_write store_write;
int store_redis_seal(store_redis *s, store_write **w, perr *err);
int store_redis_write_sealed(store_redis *s, store_write *w, store_late *late, perr *err);
/* Sends a sealed write ahead, on a connection of its own, without waiting for its replies (every
 * older pending write must have been sent): Redis applies it while the caller works and runs the
 * reads of the next batch between its commands; store_redis_write_sealed then only takes its
 * result (or sends it again in full when the connection broke, or after a NOSCRIPT). Reads keep
 * seeing it until then, whatever part of it Redis has applied. A failure here is not final:
 * store_redis_write_sealed retries. */
int store_redis_send_sealed(store_redis *s, store_write *w, perr *err);
/* True when w (NULL: nothing to write) was sent ahead and its replies are in: taking its result
 * with store_redis_write_sealed does not wait. Takes the replies that have come in, without
 * waiting for more. */
bool store_redis_write_answered(store_redis *s, const store_write *w);
void store_redis_discard(store_redis *s, store_write *w);

/* Forgets the cache (between batches: another instance may change users after a rebalance).
 * Sealed writes not yet sent are kept. */
void store_redis_reset(store_redis *s);
int store_redis_ping(store_redis *s, perr *err);
/* Lowers the wait of every further command and connect to at most ms (never raises it): a
 * shutdown's deadline bounds each call, whatever Redis does. */
void store_redis_limit_timeout(store_redis *s, int ms);
/* True when a read outside a prefetch failed since the last reset: the engine then saw a user as
 * unknown that may exist, so the caller must discard the batch's decisions and retry it. */
bool store_redis_failed(const store_redis *s, perr *err);
const store_redis_stats *store_redis_get_stats(const store_redis *s);

/* Opaque values under {prefix}b:{name}, outside the user cache: the exactly-once mode keeps the
 * commands of a batch whose Kafka transaction is not yet known to be committed there. */
int store_redis_blob_put(store_redis *s, const char *name, const void *data, size_t len, perr *err);
int store_redis_blob_get(store_redis *s, const char *name, buf *out, bool *found, perr *err);

/* Calls fn with the id of every user stored under the prefix (SCAN; a user written meanwhile may
 * or may not be seen). fn returning -1 stops the scan. */
int store_redis_scan_users(store_redis *s, int (*fn)(void *ctx, const char *id), void *ctx,
                           perr *err);

/* R8.3: a company state stored before the active set (whose size is company_state.provisioned)
 * gets it once: the users whose status is active, put into it with SCAN page by page, each page
 * atomically against the writes that move the set, then marked complete (write false: only
 * counted into the cache, for a dry run). Nothing when the set is complete. */
int store_redis_count_provisioned(store_redis *s, bool write, perr *err);

/* R6.3: the waiting index, a set under {prefix}waiting of the waiting sets (w:{manager} keys) that
 * may have members. The writes add a set when they add to it and take it out when they
 * empty it, so a prefetch asks the index once (SMISMEMBER) and reads only the sets that exist.
 * Sets written before the index (an older version) are added once, with SCAN, and the company
 * hash then says so (waiting_index 1); with write false (a dry run) the store reads every set
 * until then. Redis before 6.2 (no SMISMEMBER): every set is read, with a warning. An older
 * version still writing meanwhile (a rolling upgrade) adds sets the index misses; the manager's
 * own write then finds those reports (check (b)) and they are placed as late links. */
int store_redis_index_waiting(store_redis *s, bool write, perr *err);

/* GAP_OVERFLOW reconciliations not done yet (R1.3, R8), a set under {prefix}overflows: the
 * service notes each GAP_OVERFLOW before its batch is committed and removes it when a reimport
 * that started after it succeeded, so that neither a crash nor a failed reimport loses one
 * (R9.2). Members are opaque strings (topic:partition:offset). pending: malloc'd, free each. */
int store_redis_overflow_note(store_redis *s, const char *const *ids, size_t n, perr *err);
int store_redis_overflow_pending(store_redis *s, char ***ids, size_t *n, perr *err);
int store_redis_overflow_done(store_redis *s, const char *const *ids, size_t n, perr *err);

#endif
