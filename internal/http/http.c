#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log/log.h"

#define HTTP_CONNECTIONS 128
#define HTTP_CONNECTIONS_PER_ADDRESS 32
#define HTTP_IDLE_SECONDS 5 /* probes time out after 3 s (the chart): no request is slower */

struct http_server {
    struct MHD_Daemon *d;
    http_handlers h;
    char *token;
    int port;
    atomic_ulong refused;           /* wrong tokens not logged yet */
    atomic_llong refused_logged_at; /* when the last such line was logged (ms, 0: never) */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* probes and scrapes must see the state now, never a proxy's copy */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *s)
{
    return reply(c, status, "text/plain; charset=utf-8", s, strlen(s), NULL);
}

/* 405 must say what is allowed (RFC 9110 15.5.6). */
static enum MHD_Result not_allowed(struct MHD_Connection *c, const char *allow)
{
    char body[64];
    snprintf(body, sizeof body, "method not allowed; use %s\n", allow);
    return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", body, strlen(body),
                 allow);
}

/* Compares without an early exit, so the time taken says nothing about how much of the token a
 * guess got right (only, at most, whether its length was right). */
static bool same_secret(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
    return diff == 0 && lb > 0;
}

static bool blank(char c) { return c == ' ' || c == '\t'; }

/* "Bearer <token>": the scheme is case-insensitive (RFC 9110 11.1), blanks around are not part
 * of the token. Returns the token (its length in *n) or NULL. libmicrohttpd ends a value at a NUL
 * (what follows it is never seen): the token before it must be right all the same. */
static const char *bearer(const char *auth, size_t *n)
{
    if (!auth) return NULL;
    const char *end = auth + strlen(auth);
    while (auth < end && blank(*auth))
        auth++;
    if (end - auth < 7 || strncasecmp(auth, "Bearer", 6) != 0 || !blank(auth[6])) return NULL;
    auth += 7;
    while (auth < end && blank(*auth))
        auth++;
    while (end > auth && blank(end[-1]))
        end--;
    *n = (size_t)(end - auth);
    return auth;
}

/* A wrong token is logged once per window with how many came since: a client retrying in a loop
 * (or guessing) must not flood the log. */
#define REFUSED_LOG_WINDOW_MS 10000

static void log_refused(http_server *s)
{
    unsigned long n = atomic_fetch_add(&s->refused, 1) + 1;
    int64_t now = mono_ms(), last = atomic_load(&s->refused_logged_at);
    if (last && now - last < REFUSED_LOG_WINDOW_MS) return;
    if (!atomic_compare_exchange_strong(&s->refused_logged_at, &last, now)) return;
    n = atomic_exchange(&s->refused, 0);
    char count[24];
    snprintf(count, sizeof count, "%lu", n ? n : 1);
    log_msg(LOG_WARN, "reimport refused: missing or wrong bearer token", "requests", count, NULL);
}

/* 1/true/yes or 0/false/no, in any case; -1 for anything else. */
static int parse_flag(const char *v, bool *out)
{
    *out = false;
    static const char *const yes[] = {"1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) return 0;
    }
    return -1;
}

/* The query of POST /reimport: dry_run= and confirm=, each at most once and with a value. Anything
 * else (?DRY_RUN=1, ?dryrun=1, a bare ?dry_run) is refused: read as absent, a typo would turn a
 * dry run into a real reimport. */
typedef struct reimport_query {
    bool dry_run, confirm;
    bool seen_dry_run, seen_confirm;
    char problem[160]; /* the first one, for the 400 */
} reimport_query;

static enum MHD_Result reimport_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    reimport_query *q = cls;
    bool dry = strcmp(key, "dry_run") == 0, confirm = strcmp(key, "confirm") == 0;
    bool *seen = dry ? &q->seen_dry_run : confirm ? &q->seen_confirm : NULL;
    if (!seen)
        snprintf(q->problem, sizeof q->problem,
                 "unknown parameter '%.40s': only dry_run and confirm are taken\n", key);
    else if (*seen)
        snprintf(q->problem, sizeof q->problem, "%s is given twice\n", key);
    else if (!value || parse_flag(value, dry ? &q->dry_run : &q->confirm) < 0)
        snprintf(q->problem, sizeof q->problem, "%s must be 1, true, yes, 0, false or no\n", key);
    else {
        *seen = true;
        return MHD_YES;
    }
    return MHD_NO;
}

static enum MHD_Result reimport(http_server *s, struct MHD_Connection *c, bool has_body)
{
    if (!s->token) return text(c, MHD_HTTP_FORBIDDEN, "reimport over HTTP is not enabled\n");
    size_t tok_len = 0;
    const char *tok = bearer(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &tok_len);
    if (!tok || !same_secret(tok, tok_len, s->token)) {
        log_refused(s);
        return text(c, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required\n");
    }
    /* a form with dry_run=1 in the body would otherwise start a real reimport */
    if (has_body)
        return text(c, MHD_HTTP_BAD_REQUEST,
                    "POST /reimport takes no body: dry_run and confirm go in the query "
                    "(/reimport?dry_run=1)\n");
    reimport_query q = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, reimport_arg, &q);
    if (q.problem[0]) return text(c, MHD_HTTP_BAD_REQUEST, q.problem);
    bool dry_run = q.dry_run, confirm = q.confirm;
    if (!s->h.reimport)
        return text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                    "no Salesforce access is configured (--salesforce-url): a reimport cannot "
                    "run here\n");
    if (!s->h.reimport(s->h.ctx, dry_run, confirm))
        return text(c, MHD_HTTP_CONFLICT, "a reimport is already queued or running\n");
    if (dry_run)
        return text(c, MHD_HTTP_ACCEPTED, "dry-run reimport queued; the plan goes to the log\n");
    return text(c, MHD_HTTP_ACCEPTED,
                confirm ? "reimport queued; it confirms the deactivations held before it (R8.3)\n"
                        : "reimport queued\n");
}

/* *con_cls of a POST whose body is being read (and ignored): without a body, or with one */
static int marker, marker_body;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    http_server *s = cls;
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    /* MHD calls a POST's handler once for the headers, then per chunk of body, then once more:
     * answer on the last call, so that a body (none is expected) is read rather than left on the
     * connection */
    if (post && !*con_cls) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (post && *upload_data_size) {
        *upload_data_size = 0;
        *con_cls = &marker_body;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (!get) return not_allowed(c, "GET, HEAD");
        bool ok = !s->h.alive || s->h.alive(s->h.ctx);
        return text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                    ok ? "ok\n" : "the main loop has not turned recently\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        if (!get) return not_allowed(c, "GET, HEAD");
        buf why;
        buf_init(&why);
        bool ok = !s->h.ready || s->h.ready(s->h.ctx, &why);
        if (ok)
            buf_puts(&why, "ready\n");
        else if (!why.len)
            buf_puts(&why, "not ready\n");
        enum MHD_Result r = text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why.data);
        buf_free(&why);
        return r;
    }
    if (strcmp(url, "/metrics") == 0) {
        if (!get) return not_allowed(c, "GET, HEAD");
        buf out;
        buf_init(&out);
        if (s->h.metrics) s->h.metrics(s->h.ctx, &out);
        enum MHD_Result r = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                  out.data ? out.data : "", out.len, NULL);
        buf_free(&out);
        return r;
    }
    if (strcmp(url, "/reimport") == 0) {
        if (!post) return not_allowed(c, "POST");
        return reimport(s, c, *con_cls == &marker_body);
    }
    return text(c, MHD_HTTP_NOT_FOUND, "not found: try /healthz, /readyz, /metrics\n");
}

/* libmicrohttpd's own complaints (a client that hung up, a connection over the limits) go to the
 * service's log as JSON lines rather than as bare text on stderr. They are about clients, one
 * line each: a flood of them is debug, and at most one a minute is a warning, with how many were
 * left out. Called from libmicrohttpd's one thread only. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static time_t last_warn;
    static unsigned long quiet;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    time_t now = time(NULL);
    if (last_warn && now - last_warn < 60) {
        quiet++;
        log_msg(LOG_DEBUG, "http", "error", msg, NULL);
        return;
    }
    char more[32];
    snprintf(more, sizeof more, "%lu", quiet);
    log_msg(LOG_WARN, "http", "error", msg, "similar_lines_at_debug_since_last", more, NULL);
    last_warn = now;
    quiet = 0;
}

int http_start(const char *bind_addr, int port, const char *token, const http_handlers *h,
               http_server **out, perr *err)
{
    if (port < 0 || port > 65535) return perr_set(err, "http port %d is out of range", port);
    if (!bind_addr) bind_addr = "0.0.0.0";
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1)
        return perr_set(err, "http bind address '%s' is not an IPv4 address", bind_addr);
    if (token && !*token) return perr_set(err, "the reimport token is empty");
    http_server *s = xcalloc(1, sizeof *s);
    s->h = *h;
    s->token = token ? xstrdup(token) : NULL;
    /* One internal thread polls every connection (poll or epoll, whichever the system has: select
     * would stop at FD_SETSIZE). The limits keep a scraper or a probe storm from taking memory
     * from the service; the limit per address keeps one client's idle connections from taking
     * every slot, so that the kubelet's probes are still accepted (they would otherwise wait in
     * the listen queue past their timeout, and the pod be restarted for nothing). */
    errno = 0;
    /* the logger first: libmicrohttpd complains on stderr about options before it */
    s->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTIONS_PER_ADDRESS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_IDLE_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free(s->token);
        free(s);
        return perr_set(err, "cannot listen on %s:%d: %s", bind_addr, port,
                        e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info && info->port ? info->port : port;
    *out = s;
    return 0;
}

int http_port(const http_server *s) { return s->port; }

void http_stop(http_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    if (s->token) {
        memset(s->token, 0, strlen(s->token));
        free(s->token);
    }
    free(s);
}

int http_read_secret_file(const char *path, char **out, perr *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return perr_set(err, "%s: %s", path, strerror(errno));
    char line[4097];
    size_t n = fread(line, 1, sizeof line - 1, f);
    bool more = n == sizeof line - 1 && fgetc(f) != EOF;
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || more) {
        memset(line, 0, sizeof line);
        return perr_set(err, "%s: %s", path, failed ? "read error" : "longer than 4096 bytes");
    }
    line[n] = '\0';
    /* a Secret written with `echo` ends in a newline; blanks are never part of a token */
    while (n && strchr(" \t\r\n", line[n - 1]))
        line[--n] = '\0';
    size_t start = 0;
    while (start < n && strchr(" \t\r\n", line[start]))
        start++;
    if (start == n) return perr_set(err, "%s is empty", path);
    *out = xstrdup(line + start);
    memset(line, 0, sizeof line);
    return 0;
}
