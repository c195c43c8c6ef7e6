/* The Salesforce client (internal/salesforce) against the stand-in tests/standins/salesforce.py:
 * OAuth flows, token caching and refresh, pagination, retries and back-off, id checks and
 * batching, API-usage floor, secrets kept out of messages, record flattening. Each test starts its
 * own stand-in on a free loopback port; the fixture's teardown stops it by PID, also when a test
 * fails. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "salesforce/salesforce.h"

#define SF_T_SECRET "s3cr3t-Only-For-The-Stand-In-7f2c"

/* ------------------------------------------------------------------------------------------ */
/* the stand-in, one per test */

static struct {
    pid_t pid;
    int stdin_fd; /* its stdin: when this process dies the pipe closes and the stand-in exits */
    int port;
    char url[64];
    char dir[128];
} sf_t_srv = {.pid = -1, .stdin_fd = -1};

static void sf_t_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", sf_t_srv.dir, name);
}

static void sf_t_write(const char *name, const char *text)
{
    char p[256];
    sf_t_path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "cannot write %s", p);
    fputs(text, f);
    fclose(f);
}

static void sf_t_setup(void)
{
    snprintf(sf_t_srv.dir, sizeof sf_t_srv.dir, "/tmp/sf_t_XXXXXX");
    cr_assert_not_null(mkdtemp(sf_t_srv.dir));
    sf_t_write("secret", SF_T_SECRET "\n");
    log_set_level(LOG_ERROR); /* retries log warnings by design; keep the test output readable */
}

static void sf_t_stop(void)
{
    if (sf_t_srv.pid > 0) {
        kill(sf_t_srv.pid, SIGTERM);
        waitpid(sf_t_srv.pid, NULL, 0);
        sf_t_srv.pid = -1;
    }
    if (sf_t_srv.stdin_fd >= 0) close(sf_t_srv.stdin_fd);
    sf_t_srv.stdin_fd = -1;
}

static void sf_t_teardown(void)
{
    sf_t_stop();
    DIR *d = opendir(sf_t_srv.dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", sf_t_srv.dir, e->d_name);
            unlink(p);
        }
        closedir(d);
        rmdir(sf_t_srv.dir);
    }
}

static void sf_t_script(char *out, size_t n)
{
    const char *src = getenv("PV_SOURCE_DIR");
    if (src) {
        snprintf(out, n, "%s/tests/standins/salesforce.py", src);
        return;
    }
    /* run by hand outside ctest: the script sits beside this file's folder */
    snprintf(out, n, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    slash = strrchr(out, '/');
    if (slash) snprintf(slash, n - (size_t)(slash - out), "/standins/salesforce.py");
}

/* Starts the stand-in with data.json and these extra arguments (NULL-terminated). */
static void sf_t_start(const char *const *extra)
{
    char script[512], data[256], log[256], secret[256];
    sf_t_script(script, sizeof script);
    sf_t_path(data, sizeof data, "data.json");
    sf_t_path(log, sizeof log, "standin.log");
    sf_t_path(secret, sizeof secret, "secret");
    const char *argv[40] = {
        "python3", script,          "--data", data, "--log", log, "--client-secret-file",
        secret,    "--max-seconds", "300"};
    size_t k = 10;
    for (size_t i = 0; extra && extra[i] && k < 39; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;

    int out[2], in[2];
    cr_assert_eq(pipe(out), 0);
    cr_assert_eq(pipe(in), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    sf_t_srv.pid = pid;
    sf_t_srv.stdin_fd = in[1];

    char line[32] = "";
    size_t n = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&p, 1, 15000) == 1) {
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    sf_t_srv.port = atoi(line);
    cr_assert_gt(sf_t_srv.port, 0, "the stand-in did not print its port (got '%s')", line);
    snprintf(sf_t_srv.url, sizeof sf_t_srv.url, "http://127.0.0.1:%d", sf_t_srv.port);
}

static size_t sf_t_collect_body(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

/* POST /_control or GET /_stats on the stand-in. */
static json_t *sf_t_call(const char *path, const char *post)
{
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s%s", sf_t_srv.url, path);
    buf b;
    buf_init(&b);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sf_t_collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (post) curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    cr_assert_eq(rc, CURLE_OK, "stand-in %s: %s", path, curl_easy_strerror(rc));
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    buf_free(&b);
    cr_assert_not_null(j);
    return j;
}

static void sf_t_control(const char *json) { json_decref(sf_t_call("/_control", json)); }

/* A counter from /_stats: "query_requests", or "grants.jwt_bearer", "statuses.429". */
static long sf_t_stat(const char *name)
{
    json_t *s = sf_t_call("/_stats", NULL);
    const char *dot = strchr(name, '.');
    json_t *v;
    if (dot) {
        char top[64];
        snprintf(top, sizeof top, "%.*s", (int)(dot - name), name);
        v = json_object_get(json_object_get(s, top), dot + 1);
    } else {
        v = json_object_get(s, name);
    }
    long out = json_is_integer(v) ? (long)json_integer_value(v) : 0;
    json_decref(s);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* test data */

static void sf_t_id(char *out, int i) { snprintf(out, 19, "005%012dAAA", i); }

/* n users; user 1 is the manager of the others; every third has an address; profiles and roles. */
static void sf_t_users(int n)
{
    json_t *users = json_array();
    for (int i = 1; i <= n; i++) {
        char id[19], mgr[19], email[64], first[32];
        sf_t_id(id, i);
        sf_t_id(mgr, 1);
        snprintf(email, sizeof email, "user%d@acme.com", i);
        snprintf(first, sizeof first, "First%d", i);
        json_t *u = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s?}", "Id", id, "FirstName", first,
                              "LastName", "Tester", "Email", email, "IsActive", i % 7 != 0,
                              "ProfileId", i % 2 ? "00e000000000001AAA" : "00e000000000002AAA",
                              "UserRoleId", "00E000000000001AAA", "ManagerId", i == 1 ? NULL : mgr);
        if (i % 3 == 0)
            json_object_set_new(u, "Address",
                                json_pack("{s:s,s:s,s:s,s:n,s:f}", "city", "Dublin", "postalCode",
                                          "D02", "country", "Ireland", "state", "latitude", 53.35));
        json_array_append_new(users, u);
    }
    json_t *root =
        json_pack("{s:o,s:[{s:s,s:s},{s:s,s:s}],s:[{s:s,s:s,s:s}]}", "User", users, "Profile", "Id",
                  "00e000000000001AAA", "Name", "Standard User", "Id", "00e000000000002AAA", "Name",
                  "System Administrator", "UserRole", "Id", "00E000000000001AAA", "Name",
                  "Sales Rep", "DeveloperName", "SalesRep");
    char *text = json_dumps(root, JSON_COMPACT);
    sf_t_write("data.json", text);
    free(text);
    json_decref(root);
}

static sf_config sf_t_config(void)
{
    static char secret[256];
    sf_t_path(secret, sizeof secret, "secret");
    return (sf_config){.url = sf_t_srv.url,
                       .client_id = "standin-client",
                       .client_secret_file = secret,
                       .max_attempts = 4,
                       .backoff_base_ms = 10,
                       .backoff_max_ms = 40};
}

static sf_client *sf_t_client(const sf_config *cfg)
{
    sf_client *c = NULL;
    perr e = {{0}};
    cr_assert_eq(sf_client_new(cfg, &c, &e), 0, "sf_client_new: %s", e.msg);
    return c;
}

/* what a callback saw */
typedef struct sf_t_seen {
    size_t n;
    strmap ids;
    size_t last_seq, last_total;
    const char *watch_id; /* its fields are kept as "name=value" lines */
    buf watched;
    long stop_after; /* > 0: fail after that many records */
} sf_t_seen;

static void sf_t_seen_init(sf_t_seen *s)
{
    memset(s, 0, sizeof *s);
    strmap_init(&s->ids);
    buf_init(&s->watched);
}

static void sf_t_seen_free(sf_t_seen *s)
{
    strmap_free(&s->ids, NULL);
    buf_free(&s->watched);
}

static int sf_t_on_record(void *ctx, const sf_record *r, perr *err)
{
    sf_t_seen *s = ctx;
    s->n++;
    s->last_seq = r->seq;
    s->last_total = r->total;
    if (r->id) strmap_put(&s->ids, r->id, (void *)1);
    if (s->watch_id && r->id && strcmp(r->id, s->watch_id) == 0) {
        for (size_t i = 0; i < r->n_fields; i++) {
            const value_t *v = &r->fields[i].val;
            buf_printf(&s->watched, "%s=", r->fields[i].name);
            switch (v->type) {
            case VAL_NULL: buf_puts(&s->watched, "null"); break;
            case VAL_BOOL: buf_puts(&s->watched, v->b ? "true" : "false"); break;
            case VAL_NUM: buf_printf(&s->watched, "%g", v->num); break;
            case VAL_STR: buf_printf(&s->watched, "'%s'", v->s); break;
            }
            buf_putc(&s->watched, '\n');
        }
    }
    if (s->stop_after > 0 && (long)s->n >= s->stop_after) return perr_set(err, "enough records");
    return 0;
}

static bool sf_t_has_line(const sf_t_seen *s, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "\n%s\n", line);
    buf tmp;
    buf_init(&tmp);
    buf_putc(&tmp, '\n');
    buf_append(&tmp, s->watched.data, s->watched.len);
    bool found = strstr(tmp.data, want) != NULL;
    buf_free(&tmp);
    return found;
}

static double sf_t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const sf_t_fields[] = {"FirstName", "LastName", "Email", "IsActive"};

TestSuite(salesforce, .init = sf_t_setup, .fini = sf_t_teardown, .timeout = 90);

/* ------------------------------------------------------------------------------------------ */
/* OAuth */

Test(salesforce, client_credentials_flow_and_query)
{
    sf_t_users(5);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_all_users(c, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 5);
    cr_assert_eq(s.ids.len, 5);
    cr_assert_eq(s.last_seq, 5);
    cr_assert_eq(s.last_total, 5);
    cr_assert_eq(sf_t_stat("grants.client_credentials"), 1);
    cr_assert_eq(sf_t_stat("query_requests"), 1);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.token_requests, 1);
    cr_assert_eq(st.requests, 2);
    cr_assert_eq(st.records, 5);
    cr_assert_eq(st.retries, 0);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

static void sf_t_rsa_key(const char *priv_name, const char *pub_name)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    cr_assert_not_null(k);
    char p[256];
    sf_t_path(p, sizeof p, priv_name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    if (pub_name) {
        sf_t_path(p, sizeof p, pub_name);
        f = fopen(p, "w");
        cr_assert_not_null(f);
        cr_assert_eq(PEM_write_PUBKEY(f, k), 1);
        fclose(f);
    }
    EVP_PKEY_free(k);
}

Test(salesforce, jwt_bearer_flow_signed_rs256)
{
    sf_t_users(3);
    sf_t_rsa_key("key.pem", "key.pub");
    char pub[256];
    sf_t_path(pub, sizeof pub, "key.pub");
    const char *args[] = {"--jwt-public-key", pub, "--username", "integration@acme.com", NULL};
    sf_t_start(args);
    char key[256];
    sf_t_path(key, sizeof key, "key.pem");
    sf_config cfg = sf_t_config();
    cfg.client_secret_file = NULL;
    cfg.jwt_key_file = key;
    cfg.username = "integration@acme.com";
    sf_client *c = sf_t_client(&cfg);
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_all_users(c, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(sf_t_stat("grants.jwt_bearer"), 1);
    cr_assert_eq(sf_t_stat("grants.client_credentials"), 0);
    cr_assert_eq(sf_t_stat("jwt_verified"), 1, "the stand-in checks the signature with the key");
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, jwt_signed_with_another_key_is_refused)
{
    sf_t_users(1);
    sf_t_rsa_key("key.pem", "key.pub");
    sf_t_rsa_key("other.pem", NULL);
    char pub[256], other[256];
    sf_t_path(pub, sizeof pub, "key.pub");
    sf_t_path(other, sizeof other, "other.pem");
    const char *args[] = {"--jwt-public-key", pub, "--username", "integration@acme.com", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    cfg.client_secret_file = NULL;
    cfg.jwt_key_file = other;
    cfg.username = "integration@acme.com";
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert(strstr(e.msg, "JWT bearer") && strstr(e.msg, "HTTP 400 invalid_grant") &&
                  strstr(e.msg, "signature"),
              "%s", e.msg);
    cr_assert_null(strstr(e.msg, "BEGIN"), "no key material in the message: %s", e.msg);
    sf_client_free(c);
}

Test(salesforce, token_cached_across_calls)
{
    sf_t_users(4);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(sf_query(c, "SELECT Id, Name FROM Profile", 0, NULL, NULL, &e), 0, "%s",
                     e.msg);
    cr_assert_eq(sf_t_stat("token_requests"), 1);
    cr_assert_eq(sf_t_stat("query_requests"), 6);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.token_requests, 1);
    cr_assert_eq(st.token_refreshes, 0);
    sf_client_free(c);
}

Test(salesforce, token_expiry_mid_pagination_refreshes_and_completes)
{
    sf_t_users(25);
    const char *args[] = {"--page-size", "10", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    sf_t_control("{\"expire_token_after\": 1}"); /* page 1 served, then every token is dead */
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_all_users(c, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 25);
    cr_assert_eq(s.ids.len, 25);
    cr_assert_eq(s.last_total, 25);
    cr_assert_eq(sf_t_stat("unauthorized"), 1);
    cr_assert_eq(sf_t_stat("token_requests"), 2);
    cr_assert_eq(sf_t_stat("query_requests"), 4); /* 3 pages + the refused one */
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.token_refreshes, 1);
    cr_assert_eq(st.token_requests, 2);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, second_401_after_refresh_is_an_error)
{
    sf_t_users(2);
    sf_t_start(NULL);
    sf_t_control("{\"token_ttl\": 0}"); /* every token is refused */
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert(strstr(e.msg, "HTTP 401 INVALID_SESSION_ID"), "%s", e.msg);
    cr_assert_eq(sf_t_stat("token_requests"), 2, "one refresh, not a loop");
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.token_refreshes, 1);
    cr_assert_eq(st.failures, 1);
    sf_client_free(c);
}

Test(salesforce, wrong_client_secret_is_a_clear_error)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_t_write("wrong", "Wrong-Secret-1234\n");
    char wrong[256];
    sf_t_path(wrong, sizeof wrong, "wrong");
    sf_config cfg = sf_t_config();
    cfg.client_secret_file = wrong;
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert_str_eq(e.msg, "salesforce token request (client credentials): HTTP 400 "
                            "invalid_client: invalid client credentials");
    cr_assert_eq(sf_t_stat("query_requests"), 0);
    sf_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* retries */

Test(salesforce, status_429_honours_retry_after_and_counts)
{
    sf_t_users(3);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    sf_t_control("{\"status_429\": 1, \"retry_after\": 1}");
    double t0 = sf_t_now();
    sf_t_seen s;
    sf_t_seen_init(&s);
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    double took = sf_t_now() - t0;
    cr_assert_geq(took, 0.95, "Retry-After: 1 honoured (waited %.3f s)", took);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(sf_t_stat("statuses.429"), 1);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.retries, 1);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, retry_after_beyond_the_allowed_wait_fails_at_once)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    cfg.retry_after_max_ms = 5000;
    sf_client *c = sf_t_client(&cfg);
    sf_t_control("{\"status_429\": 1, \"retry_after\": 3600}");
    double t0 = sf_t_now();
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert_lt(sf_t_now() - t0, 3.0);
    cr_assert(strstr(e.msg, "HTTP 429") && strstr(e.msg, "Retry-After asks for 3600 s"), "%s",
              e.msg);
    sf_client_free(c);
}

Test(salesforce, status_500_retried_then_success)
{
    sf_t_users(12);
    const char *args[] = {"--page-size", "5", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    sf_t_control("{\"status_500\": 2}");
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_all_users(c, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 12);
    cr_assert_eq(s.ids.len, 12);
    cr_assert_eq(sf_t_stat("statuses.500"), 2);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.retries, 2);
    cr_assert_eq(st.failures, 0);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, token_endpoint_5xx_retried)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_t_control("{\"fault\": {\"status\": 503, \"count\": 1, \"scope\": \"token\"}}");
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(sf_t_stat("token_requests"), 2);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.retries, 1);
    cr_assert_eq(st.token_requests, 1);
    sf_client_free(c);
}

Test(salesforce, bounded_attempts_then_a_clear_error)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    cfg.max_attempts = 3;
    sf_client *c = sf_t_client(&cfg);
    sf_t_control(
        "{\"fault\": {\"status\": 500, \"count\": 10, \"errorCode\": \"UNKNOWN_EXCEPTION\","
        " \"message\": \"An unexpected error occurred\"}}");
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert_str_eq(e.msg, "salesforce query: gave up after 3 attempts: HTTP 500 "
                            "UNKNOWN_EXCEPTION: An unexpected error occurred");
    cr_assert_eq(sf_t_stat("query_requests"), 3);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.retries, 2);
    cr_assert_eq(st.failures, 1);
    sf_client_free(c);
}

Test(salesforce, dropped_connections_retried)
{
    sf_t_users(2);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    /* two: curl itself silently retries a dead kept-alive connection once */
    sf_t_control("{\"drop\": 2}");
    perr e = {{0}};
    sf_t_seen s;
    sf_t_seen_init(&s);
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, sf_t_on_record, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 2);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_geq(st.retries, 1);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, unreachable_server_gives_up_after_the_attempts)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_t_stop(); /* its port is now closed */
    cfg.max_attempts = 2;
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", SF_ESSENTIAL, NULL, NULL, &e), -1);
    cr_assert(strstr(e.msg, "salesforce token request (client credentials): gave up after 2 "
                            "attempts: "),
              "%s", e.msg);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.requests, 2);
    cr_assert_eq(st.retries, 1);
    sf_client_free(c);
}

Test(salesforce, api_error_body_reported_without_retry)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM Account", 0, NULL, NULL, &e), -1);
    cr_assert_str_eq(e.msg, "salesforce query: HTTP 400 INVALID_TYPE: sObject type 'Account' is "
                            "not supported.");
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.retries, 0);
    sf_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* ids and batching */

Test(salesforce, id_validation_rejects_injection_before_any_request)
{
    sf_t_users(2);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    const char *bad[] = {"005' OR Name != '",
                         "005000000000001AAA' OR Id != '",
                         "005000000000001A",
                         "00500000000001",
                         "",
                         "005000000000001AA%",
                         "00500000000\xc3\xa9\x41",
                         "005000000000001 AA"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *ids[] = {"005000000000001AAA", bad[i]};
        perr e = {{0}};
        cr_assert_eq(sf_query_users_by_ids(c, ids, 2, sf_t_fields, 4, 0, sf_t_on_record, NULL, &e),
                     -1, "'%s' accepted", bad[i]);
        cr_assert(strstr(e.msg, "record id #2") && strstr(e.msg, "is not a Salesforce id"), "%s",
                  e.msg);
        cr_assert(!sf_id_valid(bad[i]));
    }
    const char *null_id[] = {NULL};
    perr e = {{0}};
    cr_assert_eq(sf_query_users_by_ids(c, null_id, 1, sf_t_fields, 4, 0, NULL, NULL, &e), -1);
    /* field names are checked too */
    const char *ids[] = {"005000000000001AAA"};
    const char *bad_fields[] = {"Name FROM User WHERE Id != null --", "Email"};
    cr_assert_eq(sf_query_users_by_ids(c, ids, 1, bad_fields, 2, 0, NULL, NULL, &e), -1);
    cr_assert(strstr(e.msg, "is not a SOQL field name"), "%s", e.msg);
    cr_assert_eq(sf_t_stat("requests"), 0, "nothing was sent");
    cr_assert(sf_id_valid("005000000000001"));
    cr_assert(sf_id_valid("005000000000001AAA"));
    sf_client_free(c);
}

Test(salesforce, ids_batched_by_url_length)
{
    sf_t_users(1000);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    const char **ids = calloc(1002, sizeof *ids);
    char(*store)[19] = calloc(1000, sizeof *store);
    for (int i = 0; i < 1000; i++) {
        sf_t_id(store[i], i + 1);
        ids[i] = store[i];
    }
    ids[1000] = store[10]; /* a duplicate is asked for once */
    char fifteen[16];
    memcpy(fifteen, store[20], 15); /* the 15-character form of a listed id */
    fifteen[15] = '\0';
    ids[1001] = fifteen;
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_users_by_ids(c, ids, 1002, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0,
                 "%s", e.msg);
    cr_assert_eq(s.n, 1000, "every record once (got %zu)", s.n);
    cr_assert_eq(s.ids.len, 1000);
    long requests = sf_t_stat("query_requests");
    cr_assert(requests >= 4 && requests <= 6, "%ld requests", requests);
    json_t *stats = sf_t_call("/_stats", NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(stats, "url_lengths"), i, v)
    {
        long len = (long)json_integer_value(v) + (long)strlen(sf_t_srv.url);
        cr_assert_leq(len, 8000, "request %zu: URL of %ld characters", i, len);
    }
    json_decref(stats);
    /* with the 15-character id in the last batch: a Salesforce IN matches either form */
    const char *one[] = {fifteen};
    sf_t_seen s2;
    sf_t_seen_init(&s2);
    cr_assert_eq(sf_query_users_by_ids(c, one, 1, sf_t_fields, 4, 0, sf_t_on_record, &s2, &e), 0);
    cr_assert_eq(s2.n, 1);
    sf_t_seen_free(&s2);
    sf_t_seen_free(&s);
    free(ids);
    free(store);
    sf_client_free(c);
}

Test(salesforce, batches_paginate_and_a_smaller_url_limit_makes_more_batches)
{
    sf_t_users(300);
    const char *args[] = {"--page-size", "50", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    cfg.max_url_len = 2000;
    sf_client *c = sf_t_client(&cfg);
    const char *ids[300];
    char store[300][19];
    for (int i = 0; i < 300; i++) {
        sf_t_id(store[i], i + 1);
        ids[i] = store[i];
    }
    sf_t_seen s;
    sf_t_seen_init(&s);
    perr e = {{0}};
    cr_assert_eq(sf_query_users_by_ids(c, ids, 300, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), 0,
                 "%s", e.msg);
    cr_assert_eq(s.n, 300);
    cr_assert_eq(s.ids.len, 300);
    json_t *stats = sf_t_call("/_stats", NULL);
    size_t statements = json_array_size(json_object_get(stats, "queries"));
    json_decref(stats);
    cr_assert_geq(statements, 5, "about 70 ids per 2000-character URL: %zu statements", statements);
    cr_assert_gt((size_t)sf_t_stat("query_requests"), statements, "pages followed in batches");
    sf_t_seen_free(&s);
    sf_client_free(c);
}

Test(salesforce, no_ids_no_request)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query_users_by_ids(c, NULL, 0, sf_t_fields, 4, 0, NULL, NULL, &e), 0);
    cr_assert_eq(sf_t_stat("requests"), 0);
    sf_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* API usage */

Test(salesforce, sforce_limit_info_parsed)
{
    sf_t_users(2);
    const char *args[] = {"--api-used", "1200", "--api-max", "5000", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    long used = -1, max = -1;
    cr_assert(!sf_api_usage(c, &used, &max), "unknown before any call");
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert(sf_api_usage(c, &used, &max));
    cr_assert_eq(used, 1201);
    cr_assert_eq(max, 5000);
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert(sf_api_usage(c, &used, &max));
    cr_assert_eq(used, 1202);
    sf_client_free(c);
}

Test(salesforce, floor_blocks_non_essential_calls)
{
    sf_t_users(2);
    const char *args[] = {"--api-used", "4900", "--api-max", "5000", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    cfg.min_remaining_calls = 150;
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    /* usage is learned from the first answer, so the first call goes out whatever it is */
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    long before = sf_t_stat("query_requests");
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    cr_assert_str_eq(e.msg, "salesforce: API usage 4901 of 5000 leaves 99 calls, under the floor "
                            "of 150: non-essential call not made");
    const char *ids[] = {"005000000000001AAA"};
    cr_assert_eq(sf_query_users_by_ids(c, ids, 1, sf_t_fields, 4, 0, NULL, NULL, &e), -1);
    cr_assert_eq(sf_t_stat("query_requests"), before, "refused calls send nothing");
    sf_t_seen s;
    sf_t_seen_init(&s);
    cr_assert_eq(
        sf_query_users_by_ids(c, ids, 1, sf_t_fields, 4, SF_ESSENTIAL, sf_t_on_record, &s, &e), 0,
        "%s", e.msg);
    cr_assert_eq(s.n, 1);
    sf_stats st;
    sf_client_stats(c, &st);
    cr_assert_eq(st.refused, 2);
    cr_assert_eq(st.failures, 2);
    /* usage drops (a new day): non-essential calls go again */
    sf_t_control("{\"api_used\": 10}");
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", SF_ESSENTIAL, NULL, NULL, &e), 0);
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* secrets */

static bool sf_t_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    bool found = b.data && strstr(b.data, needle) != NULL;
    buf_free(&b);
    return found;
}

Test(salesforce, secrets_absent_from_errors_and_logs)
{
    sf_t_users(3);
    sf_t_start(NULL);
    /* everything the client logs goes to a file we read back */
    char logp[256];
    sf_t_path(logp, sizeof logp, "client.log");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(logp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    dup2(fd, 2);
    close(fd);
    log_set_level(LOG_DEBUG);

    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    char errors[4][1024];
    /* a token endpoint that echoes the secret back in its error */
    sf_t_control("{\"fault\": {\"status\": 400, \"scope\": \"token\", \"errorCode\": "
                 "\"invalid_client\", \"message\": \"client_secret=" SF_T_SECRET " refused\"}}");
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    snprintf(errors[0], sizeof errors[0], "%s", e.msg);
    cr_assert(strstr(e.msg, "client_secret=*** refused"), "%s", e.msg);

    /* a token in hand, then a server that quotes it while failing */
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    json_t *stats = sf_t_call("/_stats", NULL);
    char token[256];
    snprintf(token, sizeof token, "%s",
             json_string_value(json_array_get(json_object_get(stats, "tokens"), 0)));
    json_decref(stats);
    cr_assert_gt(strlen(token), 10);
    char fault[512];
    snprintf(fault, sizeof fault,
             "{\"fault\": {\"status\": 500, \"count\": 9, \"errorCode\": \"X\", \"message\": "
             "\"bad session %s\"}}",
             token);
    sf_t_control(fault);
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    snprintf(errors[1], sizeof errors[1], "%s", e.msg);
    cr_assert(strstr(errors[1], "bad session ***"), "%s", errors[1]);

    /* a wrong secret file */
    sf_t_write("wrong", "Another-Wrong-Secret-99\n");
    char wrong[256];
    sf_t_path(wrong, sizeof wrong, "wrong");
    sf_config bad = cfg;
    bad.client_secret_file = wrong;
    sf_client *c2 = sf_t_client(&bad);
    cr_assert_eq(sf_query(c2, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    snprintf(errors[2], sizeof errors[2], "%s", e.msg);
    sf_client_free(c2);

    /* a key file that is not a key: the message names the file, never its content */
    sf_t_write("notakey.pem", "-----BEGIN PRIVATE KEY-----\nTm90QUtleVNlY3JldA==\n"
                              "-----END PRIVATE KEY-----\n");
    char nk[256];
    sf_t_path(nk, sizeof nk, "notakey.pem");
    sf_config jwt = cfg;
    jwt.client_secret_file = NULL;
    jwt.jwt_key_file = nk;
    jwt.username = "u@acme.com";
    sf_client *c3 = NULL;
    cr_assert_eq(sf_client_new(&jwt, &c3, &e), -1);
    snprintf(errors[3], sizeof errors[3], "%s", e.msg);
    cr_assert(strstr(errors[3], "notakey.pem"), "%s", errors[3]);

    sf_client_free(c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    for (int i = 0; i < 4; i++) {
        cr_assert_null(strstr(errors[i], SF_T_SECRET), "secret in: %s", errors[i]);
        cr_assert_null(strstr(errors[i], "Wrong-Secret"), "secret in: %s", errors[i]);
        cr_assert_null(strstr(errors[i], token), "token in: %s", errors[i]);
        cr_assert_null(strstr(errors[i], "Tm90QUtleVNlY3JldA"), "key in: %s", errors[i]);
    }
    cr_assert(sf_t_file_contains(logp, "retrying"), "the log was captured");
    cr_assert(!sf_t_file_contains(logp, SF_T_SECRET), "secret in the log");
    cr_assert(!sf_t_file_contains(logp, token), "token in the log");
}

/* ------------------------------------------------------------------------------------------ */
/* records */

Test(salesforce, relationships_flattened_to_dotted_names)
{
    sf_t_users(6);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    const char *fields[] = {"FirstName",
                            "IsActive",
                            "Profile.Name",
                            "UserRole.Name",
                            "UserRole.DeveloperName",
                            "Manager.Email",
                            "Manager.Profile.Name",
                            "Address",
                            "City"};
    char id3[19], id1[19];
    sf_t_id(id3, 3);
    sf_t_id(id1, 1);
    const char *ids[] = {id3, id1};
    sf_t_seen s;
    sf_t_seen_init(&s);
    s.watch_id = id3;
    perr e = {{0}};
    cr_assert_eq(sf_query_users_by_ids(c, ids, 2, fields, 9, 0, sf_t_on_record, &s, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(s.n, 2);
    const char *want[] = {"Id='005000000000003AAA'",
                          "FirstName='First3'",
                          "IsActive=true",
                          "Profile.Name='Standard User'",
                          "UserRole.Name='Sales Rep'",
                          "UserRole.DeveloperName='SalesRep'",
                          "Manager.Email='user1@acme.com'",
                          "Manager.Profile.Name='Standard User'",
                          "City='Dublin'",
                          "PostalCode='D02'",
                          "Country='Ireland'",
                          "State=null",
                          "Latitude=53.35"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(sf_t_has_line(&s, want[i]), "missing %s in:\n%s", want[i], s.watched.data);
    cr_assert_null(strstr(s.watched.data, "attributes"), "%s", s.watched.data);
    cr_assert_null(strstr(s.watched.data, "\nAddress="), "%s", s.watched.data);
    cr_assert_null(strstr(s.watched.data, "\nProfile="), "%s", s.watched.data);
    /* City was selected on its own and as part of Address: once */
    size_t cities = 0;
    for (const char *p = s.watched.data; (p = strstr(p, "\nCity=")) != NULL; p++)
        cities++;
    cr_assert_eq(cities, 1, "%s", s.watched.data);

    /* user 1 has no manager and no address: the relationship's fields are there, null */
    sf_t_seen s1;
    sf_t_seen_init(&s1);
    s1.watch_id = id1;
    cr_assert_eq(sf_query_users_by_ids(c, ids + 1, 1, fields, 9, 0, sf_t_on_record, &s1, &e), 0);
    cr_assert(sf_t_has_line(&s1, "Manager.Email=null"), "%s", s1.watched.data);
    cr_assert(sf_t_has_line(&s1, "Manager.Profile.Name=null"), "%s", s1.watched.data);
    cr_assert(sf_t_has_line(&s1, "Address=null"), "%s", s1.watched.data);
    cr_assert(sf_t_has_line(&s1, "City=null"), "%s", s1.watched.data);
    cr_assert_null(strstr(s1.watched.data, "Manager="), "%s", s1.watched.data);
    sf_t_seen_free(&s1);
    sf_t_seen_free(&s);
    sf_client_free(c);
}

static int sf_t_check_profile(void *ctx, const sf_record *r, perr *err)
{
    (void)err;
    int *n = ctx;
    (*n)++;
    cr_assert_str_eq(r->type, "Profile");
    cr_assert_not_null(r->id);
    const value_t *name = sf_record_get(r, "name");
    cr_assert(name && name->type == VAL_STR);
    return 0;
}

static int sf_t_check_role(void *ctx, const sf_record *r, perr *err)
{
    (void)err;
    int *n = ctx;
    (*n)++;
    cr_assert_str_eq(r->type, "UserRole");
    const value_t *dev = sf_record_get(r, "DeveloperName");
    cr_assert(dev && dev->type == VAL_STR);
    cr_assert_str_eq(dev->s, "SalesRep");
    return 0;
}

Test(salesforce, profile_and_role_tables)
{
    sf_t_users(2);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    cfg.api_version = "62.0"; /* "v" is added */
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    int profiles = 0, roles = 0;
    cr_assert_eq(sf_query(c, "SELECT Id, Name FROM Profile", 0, sf_t_check_profile, &profiles, &e),
                 0, "%s", e.msg);
    cr_assert_eq(profiles, 2);
    cr_assert_eq(
        sf_query(c, "SELECT Id, Name, DeveloperName FROM UserRole", 0, sf_t_check_role, &roles, &e),
        0, "%s", e.msg);
    cr_assert_eq(roles, 1);
    sf_client_free(c);
}

Test(salesforce, callback_error_stops_the_query)
{
    sf_t_users(25);
    const char *args[] = {"--page-size", "10", NULL};
    sf_t_start(args);
    sf_config cfg = sf_t_config();
    sf_client *c = sf_t_client(&cfg);
    sf_t_seen s;
    sf_t_seen_init(&s);
    s.stop_after = 3;
    perr e = {{0}};
    cr_assert_eq(sf_query_all_users(c, sf_t_fields, 4, 0, sf_t_on_record, &s, &e), -1);
    cr_assert_str_eq(e.msg, "enough records");
    cr_assert_eq(s.n, 3);
    cr_assert_eq(sf_t_stat("query_requests"), 1, "no further page read");
    sf_t_seen_free(&s);
    sf_client_free(c);
}

static volatile sig_atomic_t sf_t_stop_flag;
static void sf_t_on_alarm(int sig)
{
    (void)sig;
    sf_t_stop_flag = 1;
}

/* SIGTERM during a back-off wait or a slow answer: the call ends within about a second. */
static void sf_t_stopped_within(const char *fault)
{
    sf_t_users(2);
    sf_t_start(NULL);
    sf_config cfg = sf_t_config();
    cfg.stop = &sf_t_stop_flag;
    sf_client *c = sf_t_client(&cfg);
    perr e = {{0}};
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), 0, "%s", e.msg);
    sf_t_control(fault);
    struct sigaction sa = {.sa_handler = sf_t_on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    sf_t_stop_flag = 0;
    alarm(1);
    double t0 = sf_t_now();
    cr_assert_eq(sf_query(c, "SELECT Id FROM User", 0, NULL, NULL, &e), -1);
    double took = sf_t_now() - t0;
    cr_assert_str_eq(e.msg, "salesforce: stopped");
    cr_assert(took > 0.5 && took < 3.0, "took %.2f s", took);
    sf_client_free(c);
}

Test(salesforce, stop_flag_ends_a_back_off_wait)
{
    sf_t_stopped_within("{\"status_429\": 1, \"retry_after\": 30}");
}

Test(salesforce, stop_flag_ends_a_slow_transfer) { sf_t_stopped_within("{\"delay_ms\": 10000}"); }

/* ------------------------------------------------------------------------------------------ */
/* configuration (no network) */

static void sf_t_config_err(const sf_config *cfg, const char *want)
{
    sf_client *c = (sf_client *)1;
    perr e = {{0}};
    cr_assert_eq(sf_client_new(cfg, &c, &e), -1, "expected: %s", want);
    cr_assert_null(c);
    cr_assert(strstr(e.msg, want), "'%s' does not say '%s'", e.msg, want);
    cr_assert(strncmp(e.msg, "salesforce: ", 12) == 0, "'%s' does not name salesforce", e.msg);
}

Test(salesforce, configuration_checked)
{
    sf_t_users(1);
    sf_t_start(NULL);
    sf_config base = sf_t_config();
    sf_config cfg = base;
    cfg.url = "http://acme.my.salesforce.com";
    sf_t_config_err(&cfg, "must use https:// (http:// is accepted for loopback only)");
    cfg.url = "ftp://127.0.0.1";
    sf_t_config_err(&cfg, "must use https://");
    cfg.url = "https://user:pw@acme.my.salesforce.com";
    sf_t_config_err(&cfg, "must not carry credentials");
    cfg.url = NULL;
    sf_t_config_err(&cfg, "no URL configured");
    cfg = base;
    cfg.client_id = "";
    sf_t_config_err(&cfg, "no client id");
    cfg = base;
    cfg.jwt_key_file = "/nonexistent/key.pem";
    sf_t_config_err(&cfg, "not both");
    cfg = base;
    cfg.client_secret_file = NULL;
    sf_t_config_err(&cfg, "configure a client secret file");
    cfg.jwt_key_file = "/nonexistent/key.pem";
    sf_t_config_err(&cfg, "needs a username");
    cfg.username = "u@acme.com";
    sf_t_config_err(&cfg, "cannot read the JWT key file '/nonexistent/key.pem'");
    cfg = base;
    cfg.client_secret_file = "/nonexistent/secret";
    sf_t_config_err(&cfg, "cannot read the client secret file '/nonexistent/secret'");
    sf_t_write("empty", "\n  \n");
    char empty[256];
    sf_t_path(empty, sizeof empty, "empty");
    cfg.client_secret_file = empty;
    sf_t_config_err(&cfg, "is empty");
    cfg = base;
    cfg.api_version = "v62";
    sf_t_config_err(&cfg, "API version 'v62' is not like v62.0");
    cfg = base;
    cfg.url = "https://acme.my.salesforce.com/";
    sf_client *c = sf_t_client(&cfg); /* https anywhere; no request is made yet */
    sf_client_free(c);
    cr_assert_eq(sf_t_stat("requests"), 0);
}
