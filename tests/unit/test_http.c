/* http (issue 9): the operations listener over real HTTP on 127.0.0.1 (libcurl), with fake
 * handlers: status codes, bodies, content types, the reimport token, and a burst of requests. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"

/* ---------------------------------------------------------------- fakes */

typedef struct fake {
    atomic_bool alive, ready, reimport_ok;
    atomic_int reimports, last_dry_run, last_confirm;
} fake;

static bool f_alive(void *ctx) { return atomic_load(&((fake *)ctx)->alive); }

static bool f_ready(void *ctx, buf *why)
{
    fake *f = ctx;
    if (atomic_load(&f->ready)) return true;
    buf_puts(why, "not ready: no partition assignment yet\nnot ready: redis unreachable\n");
    return false;
}

static void f_metrics(void *ctx, buf *out)
{
    (void)ctx;
    buf_puts(out, "# HELP pv_up Up.\n# TYPE pv_up gauge\npv_up 1\n");
}

static bool f_reimport(void *ctx, bool dry_run, bool confirm)
{
    fake *f = ctx;
    atomic_fetch_add(&f->reimports, 1);
    atomic_store(&f->last_dry_run, dry_run ? 1 : 0);
    atomic_store(&f->last_confirm, confirm ? 1 : 0);
    return atomic_load(&f->reimport_ok);
}

static fake F;
static http_server *S;

static void start(const char *token)
{
    atomic_store(&F.alive, true);
    atomic_store(&F.ready, true);
    atomic_store(&F.reimport_ok, true);
    atomic_store(&F.reimports, 0);
    atomic_store(&F.last_dry_run, -1);
    atomic_store(&F.last_confirm, -1);
    http_handlers h = {.ctx = &F,
                       .alive = f_alive,
                       .ready = f_ready,
                       .metrics = f_metrics,
                       .reimport = f_reimport};
    perr err;
    cr_assert_eq(http_start("127.0.0.1", 0, token, &h, &S, &err), 0, "%s", err.msg);
    cr_assert_gt(http_port(S), 0, "port 0 gives the port actually bound");
}

static void stop(void)
{
    http_stop(S);
    S = NULL;
}

/* ---------------------------------------------------------------- client */

typedef struct resp {
    long status;
    buf body;
    char ctype[128];
    char allow[64];
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = size * n;
    if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0) {
        snprintf(r->allow, sizeof r->allow, "%.*s", (int)(len - 7), p + 7);
        r->allow[strcspn(r->allow, "\r\n")] = '\0';
    }
    return len;
}

static void setup_easy(CURL *c, resp *r, const char *method, const char *path, const char *auth,
                       struct curl_slist **hdrs)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port(S), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    *hdrs = NULL;
    if (auth) {
        char h[512];
        snprintf(h, sizeof h, "Authorization: %s", auth);
        *hdrs = curl_slist_append(*hdrs, h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    }
}

static resp req(const char *method, const char *path, const char *auth)
{
    resp r = {0};
    buf_init(&r.body);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs;
    setup_easy(c, &r, method, path, auth, &hdrs);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r.ctype, sizeof r.ctype, "%s", ct ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (!r.body.data) buf_puts(&r.body, "");
    return r;
}

static void expect(const char *method, const char *path, const char *auth, long status,
                   const char *body_has)
{
    resp r = req(method, path, auth);
    cr_assert_eq(r.status, status, "%s %s: %ld, want %ld (%s)", method, path, r.status, status,
                 r.body.data);
    if (body_has)
        cr_assert(strstr(r.body.data, body_has), "%s %s: body '%s' lacks '%s'", method, path,
                  r.body.data, body_has);
    buf_free(&r.body);
}

TestSuite(http, .init = NULL, .fini = stop, .timeout = 60);

/* ---------------------------------------------------------------- tests */

Test(http, healthz_follows_the_main_loop)
{
    start(NULL);
    expect("GET", "/healthz", NULL, 200, "ok");
    expect("HEAD", "/healthz", NULL, 200, NULL);
    atomic_store(&F.alive, false);
    expect("GET", "/healthz", NULL, 503, "has not turned");
}

Test(http, readyz_says_why_not)
{
    start(NULL);
    expect("GET", "/readyz", NULL, 200, "ready");
    atomic_store(&F.ready, false);
    resp r = req("GET", "/readyz", NULL);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body.data,
                     "not ready: no partition assignment yet\nnot ready: redis unreachable\n");
    cr_assert(strncmp(r.ctype, "text/plain", 10) == 0, "%s", r.ctype);
    buf_free(&r.body);
}

static bool silent_not_ready(void *ctx, buf *why)
{
    (void)ctx;
    (void)why;
    return false;
}

Test(http, readyz_without_a_reason_still_answers)
{
    http_handlers h = {.ready = silent_not_ready};
    perr err;
    cr_assert_eq(http_start("127.0.0.1", 0, NULL, &h, &S, &err), 0, "%s", err.msg);
    expect("GET", "/readyz", NULL, 503, "not ready");
    expect("GET", "/healthz", NULL, 200, "ok"); /* no callback: alive */
    expect("GET", "/metrics", NULL, 200, NULL); /* no callback: empty */
}

Test(http, metrics_in_prometheus_text_format)
{
    start(NULL);
    resp r = req("GET", "/metrics", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_str_eq(r.body.data, "# HELP pv_up Up.\n# TYPE pv_up gauge\npv_up 1\n");
    buf_free(&r.body);
}

Test(http, unknown_paths_and_wrong_methods)
{
    start("s3cret");
    expect("GET", "/", NULL, 404, "not found");
    expect("GET", "/metrics/x", NULL, 404, NULL);
    expect("GET", "/healthz?x=1", NULL, 200, NULL); /* a query does not change the path */
    resp r = req("POST", "/metrics", NULL);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "GET, HEAD");
    buf_free(&r.body);
    expect("DELETE", "/healthz", NULL, 405, NULL);
    expect("PUT", "/readyz", NULL, 405, NULL);
    r = req("GET", "/reimport", "Bearer s3cret");
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "POST");
    buf_free(&r.body);
    cr_assert_eq(atomic_load(&F.reimports), 0);
}

Test(http, reimport_without_a_token_file_is_forbidden)
{
    start(NULL);
    expect("POST", "/reimport", NULL, 403, "not enabled");
    expect("POST", "/reimport", "Bearer anything", 403, NULL);
    cr_assert_eq(atomic_load(&F.reimports), 0);
}

Test(http, reimport_needs_the_right_bearer_token)
{
    start("s3cret-token");
    expect("POST", "/reimport", NULL, 401, "bearer token");
    expect("POST", "/reimport", "Bearer wrong", 401, NULL);
    expect("POST", "/reimport", "Bearer s3cret-toke", 401, NULL);   /* a prefix */
    expect("POST", "/reimport", "Bearer s3cret-token2", 401, NULL); /* longer */
    expect("POST", "/reimport", "Bearer ", 401, NULL);
    expect("POST", "/reimport", "Basic czNjcmV0LXRva2Vu", 401, NULL);
    expect("POST", "/reimport", "s3cret-token", 401, NULL);
    cr_assert_eq(atomic_load(&F.reimports), 0, "nothing queued without the token");

    expect("POST", "/reimport", "Bearer s3cret-token", 202, "reimport queued");
    cr_assert_eq(atomic_load(&F.reimports), 1);
    cr_assert_eq(atomic_load(&F.last_dry_run), 0);
    expect("POST", "/reimport?dry_run=1", "bearer s3cret-token", 202, "dry-run");
    cr_assert_eq(atomic_load(&F.reimports), 2);
    cr_assert_eq(atomic_load(&F.last_dry_run), 1);
    expect("POST", "/reimport?dry_run=true", "Bearer s3cret-token", 202, NULL);
    cr_assert_eq(atomic_load(&F.last_dry_run), 1);
    expect("POST", "/reimport?dry_run=0", "Bearer s3cret-token", 202, NULL);
    cr_assert_eq(atomic_load(&F.last_dry_run), 0);
    /* a typo must not turn a dry run into a real one */
    expect("POST", "/reimport?dry_run=ture", "Bearer s3cret-token", 400, "dry_run");
    cr_assert_eq(atomic_load(&F.reimports), 4);
    cr_assert_eq(atomic_load(&F.last_confirm), 0, "no confirmation unless asked");
}

/* R8.3: the held deactivations are confirmed by a reimport the service runs between its batches
 * (provisioner reimport --confirm beside it races with the batches). A value that is not a
 * boolean queues nothing. */
Test(http, reimport_can_confirm_the_held_deactivations)
{
    start("s3cret-token");
    expect("POST", "/reimport?confirm=1", "Bearer s3cret-token", 202,
           "it confirms the deactivations held before it");
    cr_assert_eq(atomic_load(&F.last_confirm), 1);
    cr_assert_eq(atomic_load(&F.last_dry_run), 0);
    expect("POST", "/reimport?confirm=yes&dry_run=1", "Bearer s3cret-token", 202, "dry-run");
    cr_assert_eq(atomic_load(&F.last_confirm), 1);
    cr_assert_eq(atomic_load(&F.last_dry_run), 1);
    expect("POST", "/reimport?confirm=false", "Bearer s3cret-token", 202, "reimport queued");
    cr_assert_eq(atomic_load(&F.last_confirm), 0);
    cr_assert_eq(atomic_load(&F.reimports), 3);
    expect("POST", "/reimport?confirm=please", "Bearer s3cret-token", 400, "confirm must be");
    expect("POST", "/reimport?confirm=1", "Bearer wrong", 401, NULL);
    cr_assert_eq(atomic_load(&F.reimports), 3, "nothing queued for either");
}

/* Read as absent, a misspelt or bare parameter would turn a dry run into a real reimport (or a
 * confirmation into a plain one): every parameter must be one of the two, once, with a value. */
Test(http, reimport_refuses_parameters_it_does_not_know)
{
    start("s3cret-token");
    expect("POST", "/reimport?dryrun=1", "Bearer s3cret-token", 400,
           "unknown parameter 'dryrun': only dry_run and confirm are taken");
    expect("POST", "/reimport?DRY_RUN=1", "Bearer s3cret-token", 400, "unknown parameter");
    expect("POST", "/reimport?dry_run", "Bearer s3cret-token", 400, "dry_run must be");
    expect("POST", "/reimport?confirm", "Bearer s3cret-token", 400, "confirm must be");
    expect("POST", "/reimport?dry_run=1&dry_run=0", "Bearer s3cret-token", 400, "given twice");
    expect("POST", "/reimport?dry_run=1&x=2", "Bearer s3cret-token", 400, "unknown parameter 'x'");
    cr_assert_eq(atomic_load(&F.reimports), 0, "nothing queued");
    expect("POST", "/reimport?dry_run=1&confirm=0", "Bearer s3cret-token", 202, "dry-run");
    cr_assert_eq(atomic_load(&F.reimports), 1);
}

/* Blanks around the token are not part of it (a Secret written with echo, a client's padding);
 * wrong tokens are logged once per window, with how many came. */
Test(http, the_token_is_compared_without_its_blanks_and_wrong_ones_are_logged_once_a_while)
{
    start("s3cret-token");
    expect("POST", "/reimport", "Bearer s3cret-token ", 202, NULL);
    expect("POST", "/reimport", "Bearer\ts3cret-token\t", 202, NULL);
    cr_assert_eq(atomic_load(&F.reimports), 2);

    char path[] = "/tmp/pv-http-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    expect("POST", "/reimport", "Bearer s3cret token", 401, NULL);
    expect("POST", "/reimport", "Bearers3cret-token", 401, NULL);
    for (int i = 0; i < 20; i++)
        expect("POST", "/reimport", "Bearer guess", 401, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char log[8192] = "";
    ssize_t n = pread(fd, log, sizeof log - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0, "nothing logged");
    size_t lines = 0;
    for (const char *l = log; (l = strstr(l, "reimport refused")); l++)
        lines++;
    cr_assert_eq(lines, 1, "22 wrong tokens in a burst, %zu lines: %s", lines, log);
}

Test(http, reimport_busy_is_a_conflict)
{
    start("tok");
    atomic_store(&F.reimport_ok, false);
    expect("POST", "/reimport", "Bearer tok", 409, "already");
    cr_assert_eq(atomic_load(&F.reimports), 1);
}

/* POST /reimport takes no body: a large one is read off the connection and refused, and so is a
 * form whose dry_run=1 would otherwise be lost and the reimport made for real */
Test(http, a_post_body_is_read_and_refused)
{
    start("tok");
    static char big[100000];
    memset(big, 'x', sizeof big);
    const char *bodies[] = {big, "dry_run=1"};
    long sizes[] = {(long)sizeof big, 9};
    for (size_t i = 0; i < 2; i++) {
        resp r = {0};
        buf_init(&r.body);
        CURL *c = curl_easy_init();
        struct curl_slist *hdrs;
        setup_easy(c, &r, "POST", "/reimport", "Bearer tok", &hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, sizes[i]);
        cr_assert_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        cr_assert_eq(r.status, 400, "body %zu: %ld", i, r.status);
        cr_assert(strstr(r.body.data, "takes no body"), "%s", r.body.data);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        buf_free(&r.body);
    }
    cr_assert_eq(atomic_load(&F.reimports), 0, "nothing queued");
    expect("POST", "/reimport", "Bearer tok", 202, "reimport queued");
    /* the token first: a wrong one with a body is refused (and counted) as any wrong one */
    resp r = {0};
    buf_init(&r.body);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs;
    setup_easy(c, &r, "POST", "/reimport", "Bearer wrong", &hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "dry_run=1");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    cr_assert_eq(r.status, 401);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    buf_free(&r.body);
}

Test(http, a_burst_of_200_requests_is_served)
{
    start(NULL);
    enum { N = 200 };
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 32L);
    static resp rs[N];
    CURL *hs[N];
    struct curl_slist *hdrs[N];
    const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < N; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        buf_init(&rs[i].body);
        hs[i] = curl_easy_init();
        setup_easy(hs[i], &rs[i], "GET", paths[i % 3], NULL, &hdrs[i]);
        curl_multi_add_handle(multi, hs[i]);
    }
    int running = 1;
    while (running) {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    int ok = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        cr_assert_eq(msg->data.result, CURLE_OK, "%s", curl_easy_strerror(msg->data.result));
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        cr_assert_eq(status, 200);
        ok++;
    }
    cr_assert_eq(ok, N);
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(multi, hs[i]);
        curl_easy_cleanup(hs[i]);
        buf_free(&rs[i].body);
    }
    curl_multi_cleanup(multi);
}

/* 150 connections from one address that send half a request and wait must not keep a probe
 * from another address (the kubelet's) out: it is answered at once, not after they time out. */
Test(http, idle_connections_from_one_address_do_not_keep_a_probe_out)
{
    start(NULL);
    enum { N = 150 };
    int fds[N];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(S))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fds[i], 0);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        (void)!write(fds[i], "GET /healthz HTTP/1.1\r\n", 23);
    }
    usleep(200 * 1000); /* accepted (or refused) by now */
    resp r = {0};
    buf_init(&r.body);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    setup_easy(c, &r, "GET", "/healthz", NULL, &hdrs);
    curl_easy_setopt(c, CURLOPT_INTERFACE, "127.0.0.2"); /* another address on loopback */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 3L);            /* the chart's probe timeout */
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    cr_assert_eq(r.status, 200);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    buf_free(&r.body);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

Test(http, bad_addresses_and_ports_are_refused)
{
    http_handlers h = {0};
    http_server *s = NULL;
    perr err;
    cr_assert_eq(http_start("localhost", 0, NULL, &h, &s, &err), -1);
    cr_assert(strstr(err.msg, "not an IPv4 address"), "%s", err.msg);
    cr_assert_eq(http_start("127.0.0.1", 70000, NULL, &h, &s, &err), -1);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    cr_assert_eq(http_start("127.0.0.1", 0, "", &h, &s, &err), -1);
    /* a port in use */
    start(NULL);
    cr_assert_eq(http_start("127.0.0.1", http_port(S), NULL, &h, &s, &err), -1);
    cr_assert(strstr(err.msg, "cannot listen on 127.0.0.1:"), "%s", err.msg);
}

static const char *tmpfile_with(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/pv-http-secret-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

Test(http, secret_files_are_trimmed_and_checked)
{
    char *tok = NULL;
    perr err;
    const char *p = tmpfile_with("  abc123\n");
    cr_assert_eq(http_read_secret_file(p, &tok, &err), 0, "%s", err.msg);
    cr_assert_str_eq(tok, "abc123");
    free(tok);
    unlink(p);
    p = tmpfile_with("\n \n");
    cr_assert_eq(http_read_secret_file(p, &tok, &err), -1);
    cr_assert(strstr(err.msg, "is empty"), "%s", err.msg);
    unlink(p);
    static char big[5000];
    memset(big, 'a', sizeof big - 1);
    p = tmpfile_with(big);
    cr_assert_eq(http_read_secret_file(p, &tok, &err), -1);
    cr_assert(strstr(err.msg, "longer than"), "%s", err.msg);
    unlink(p);
    cr_assert_eq(http_read_secret_file("/nonexistent/token", &tok, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/token: "), "%s", err.msg);
}
