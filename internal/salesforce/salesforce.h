/* salesforce: a small client for Salesforce's REST API, for what the events do not carry: records
 * named by GAP events (provisioning.md R1.3), the whole org for reconciliation and "Reimport users
 * now" (R8), and the Profile and UserRole tables behind relationship filters (R4.3).
 *
 * It signs in with OAuth 2.0 (client credentials, or JWT bearer signed RS256 with libcrypto),
 * caches the token and fetches a new one once when a call answers 401, follows nextRecordsUrl
 * pagination, retries 5xx / 429 / network failures with jittered exponential backoff (honouring
 * Retry-After), keeps the org's API usage from Sforce-Limit-Info and refuses non-essential calls
 * below a floor. Secrets come only from files and never reach a log line or an error message.
 *
 * Records reach a callback in the project's internal form: (field name, value_t) pairs, with
 * compound fields (Address) flattened to their parts' own names (City, Street, ...) as in events,
 * relationship sub-objects flattened to dotted names ("Profile.Name", "Manager.Email") and the
 * "attributes" objects dropped.
 *
 * A client is not thread-safe: one per thread. Every call blocks. */
#ifndef PROVISIONER_SALESFORCE_H
#define PROVISIONER_SALESFORCE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event/event.h"
#include "util/util.h"
#include "value/value.h"

/* Zero / NULL members take the defaults named. */
typedef struct sf_config {
    /* The org's My Domain URL (https://acme.my.salesforce.com): the token endpoint's base, and the
     * API's base unless the token answer names another instance_url. https:// only; http:// is
     * accepted for loopback hosts (a local stand-in). */
    const char *url;
    const char *api_version; /* "v62.0" */
    const char *client_id;   /* the connected app's consumer key */
    /* Exactly one flow: client credentials (a file holding the consumer secret) ... */
    const char *client_secret_file;
    /* ... or JWT bearer (a PEM RSA private key file and the user to act as). */
    const char *jwt_key_file;
    const char *username;
    const char *login_url; /* the JWT's audience: "https://login.salesforce.com" */

    int max_attempts;         /* tries per request, the first included: 5 */
    long backoff_base_ms;     /* first retry waits about this: 500 */
    long backoff_max_ms;      /* no computed wait exceeds this: 30000 */
    long retry_after_max_ms;  /* a longer Retry-After fails the call at once: 120000 */
    long timeout_ms;          /* per request: 60000 */
    long connect_timeout_ms;  /* 10000 */
    long min_remaining_calls; /* the floor: 0 = none */
    size_t max_url_len;       /* sf_query_users_by_ids batches under this: 8000 */
    /* Set by a signal handler: a call in progress gives up at once (between pages, during a
     * back-off wait, mid-transfer) with "salesforce: stopped". NULL: never. */
    volatile sig_atomic_t *stop;
} sf_config;

typedef struct sf_client sf_client;

/* Checks the configuration (URL scheme, one complete flow, credential files readable and, for
 * JWT, a usable RSA key) without any network call. Its errors begin with "salesforce: ". */
int sf_client_new(const sf_config *cfg, sf_client **out, perr *err);
void sf_client_free(sf_client *c);

/* ---- records */
typedef struct sf_record {
    const char *type;    /* attributes.type: "User", "Profile", ...; "" when absent */
    const char *id;      /* the Id field, NULL when not selected */
    event_field *fields; /* the callback's to use, e.g. as an event's payload */
    size_t n_fields;
    size_t seq;   /* 1 for the first record the call delivers, 2 for the next, ... */
    size_t total; /* Salesforce's totalSize for the SOQL statement this record came from */
} sf_record;

/* Everything a record points to is valid during the callback only. Returning -1 (with err set)
 * stops the call, which then fails with that error. */
typedef int (*sf_record_fn)(void *ctx, const sf_record *rec, perr *err);

/* The field of that name (case-insensitive, as in SOQL), or NULL. */
const value_t *sf_record_get(const sf_record *rec, const char *name);

/* Call flags. Below the floor (sf_config.min_remaining_calls) only SF_ESSENTIAL calls go out. */
enum { SF_ESSENTIAL = 1u << 0 };

/* Runs one SOQL statement to the end, page by page. The statement is sent as given: it must not
 * contain text from outside the program (record ids go through sf_query_users_by_ids). */
int sf_query(sf_client *c, const char *soql, unsigned flags, sf_record_fn cb, void *ctx, perr *err);

/* SELECT <fields> FROM User WHERE Id IN (...), in as many requests as the URL length needs. Every
 * id is checked first (sf_id_valid) and any bad one fails the call before a request is made;
 * duplicates (an id's 15- and 18-character forms too) are asked for once. Fields are SOQL names,
 * dotted for relationships ("Profile.Name"); Id is added when missing. Each record carries every
 * field asked for, null when Salesforce sent none (a null relationship). */
int sf_query_users_by_ids(sf_client *c, const char *const *ids, size_t n_ids,
                          const char *const *fields, size_t n_fields, unsigned flags,
                          sf_record_fn cb, void *ctx, perr *err);

/* SELECT <fields> FROM User: every user, active or not (R8.1). Fields as above. */
int sf_query_all_users(sf_client *c, const char *const *fields, size_t n_fields, unsigned flags,
                       sf_record_fn cb, void *ctx, perr *err);

/* A Salesforce record id: 15 or 18 ASCII letters and digits. */
bool sf_id_valid(const char *id);

/* The org's API usage from the last Sforce-Limit-Info header; false before any was seen. */
bool sf_api_usage(const sf_client *c, long *used, long *max);

typedef struct sf_stats {
    uint64_t requests;        /* HTTP requests sent, token requests included */
    uint64_t retries;         /* requests sent again after a 5xx, 429 or network failure */
    uint64_t token_requests;  /* tokens fetched, the first included */
    uint64_t token_refreshes; /* tokens fetched again because a call answered 401 */
    uint64_t records;         /* records handed to callbacks */
    uint64_t refused;         /* non-essential calls refused by the floor */
    uint64_t failures;        /* calls that returned -1 */
} sf_stats;

void sf_client_stats(const sf_client *c, sf_stats *out);

#endif
