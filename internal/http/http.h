/* http: the operations listener (libmicrohttpd): /healthz, /readyz, /metrics and POST /reimport.
 * Handlers run on the server's own thread; they read state through callbacks that must be
 * thread-safe (atomics), and a reimport request only raises a flag that the main loop acts on. */
#ifndef PROVISIONER_HTTP_H
#define PROVISIONER_HTTP_H

#include <stdbool.h>

#include "util/util.h"

typedef struct http_handlers {
    void *ctx;
    /* alive: the main loop turned recently. */
    bool (*alive)(void *ctx);
    /* ready: joined the group, Redis and brokers reachable, settings loaded; why says what is not.
     */
    bool (*ready)(void *ctx, buf *why);
    void (*metrics)(void *ctx, buf *out);
    /* Queues a reimport (R8.2), a dry run or one that confirms the held deactivations (R8.3);
     * returns false when one is already queued or running. NULL when no reimport can run (no
     * Salesforce access): POST /reimport answers 503. */
    bool (*reimport)(void *ctx, bool dry_run, bool confirm);
} http_handlers;

typedef struct http_server http_server;

/* Listens on bind_addr:port (IPv4; NULL: 0.0.0.0; port 0: any free port, see http_port).
 * reimport_token: the bearer token POST /reimport requires (copied); NULL disables the endpoint
 * (403). Answers: /healthz and /readyz 200 or 503 with plain-text reasons, /metrics 200 in the
 * Prometheus text format, POST /reimport[?dry_run=1][&confirm=1] 202 queued, 401 without the
 * right token, 409 when one is queued or running, 400 for a dry_run or confirm that is not a
 * boolean, given twice or without a value, or any other parameter; other paths 404, other methods
 * 405 with Allow. */
int http_start(const char *bind_addr, int port, const char *reimport_token, const http_handlers *h,
               http_server **out, perr *err);
int http_port(const http_server *s);
void http_stop(http_server *s);

/* Reads a secret from a file (at most 4096 bytes), trimming surrounding blanks and newlines;
 * an empty file is an error. */
int http_read_secret_file(const char *path, char **out, perr *err);

#endif
