#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    struct MHD_Daemon *d;
    http_handlers h;
    char *token;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *s)
{
    return reply(c, status, "text/plain; charset=utf-8", s, strlen(s));
}

/* Compares without an early exit, so the time taken says nothing about the token. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static int marker; /* *con_cls for a request whose body is being skipped */

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    http_server *s = cls;
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (post && !*con_cls) { /* first call of a POST: headers only */
        *con_cls = &marker;
        return MHD_YES;
    }
    if (post && *upload_data_size) { /* the reimport takes no body: skip it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (!get) return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
        bool ok = !s->h.alive || s->h.alive(s->h.ctx);
        return text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                    ok ? "ok\n" : "the main loop has not turned recently\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        if (!get) return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
        buf why;
        buf_init(&why);
        bool ok = !s->h.ready || s->h.ready(s->h.ctx, &why);
        if (ok) buf_puts(&why, "ready\n");
        enum MHD_Result r = text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why.data);
        buf_free(&why);
        return r;
    }
    if (strcmp(url, "/metrics") == 0) {
        if (!get) return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
        buf out;
        buf_init(&out);
        if (s->h.metrics) s->h.metrics(s->h.ctx, &out);
        enum MHD_Result r = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                  out.data ? out.data : "", out.len);
        buf_free(&out);
        return r;
    }
    if (strcmp(url, "/reimport") == 0) {
        if (!post) return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST\n");
        if (!s->token) return text(c, MHD_HTTP_FORBIDDEN, "reimport over HTTP is not enabled\n");
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !same_secret(auth + 7, s->token))
            return text(c, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required\n");
        const char *dry = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dry_run");
        bool dry_run = dry && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0);
        if (!s->h.reimport) return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no reimport here\n");
        if (!s->h.reimport(s->h.ctx, dry_run))
            return text(c, MHD_HTTP_CONFLICT, "a reimport is already queued or running\n");
        return text(c, MHD_HTTP_ACCEPTED,
                    dry_run ? "dry-run reimport queued; the plan goes to the log\n"
                            : "reimport queued\n");
    }
    return text(c, MHD_HTTP_NOT_FOUND, "not found: try /healthz, /readyz, /metrics\n");
}

int http_start(const char *bind_addr, int port, const char *token, const http_handlers *h,
               http_server **out, perr *err)
{
    if (port < 0 || port > 65535) return perr_set(err, "http port %d is out of range", port);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr ? bind_addr : "0.0.0.0", &addr.sin_addr) != 1)
        return perr_set(err, "http bind address '%s' is not an IPv4 address", bind_addr);
    http_server *s = xcalloc(1, sizeof *s);
    s->h = *h;
    s->token = token ? xstrdup(token) : NULL;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free(s->token);
        free(s);
        return perr_set(err, "cannot listen on %s:%d: %s", bind_addr ? bind_addr : "0.0.0.0",
                        port, strerror(e));
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
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
    char line[4096];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    if (!n) return perr_set(err, "%s is empty", path);
    *out = xstrdup(line);
    memset(line, 0, sizeof line);
    return 0;
}
