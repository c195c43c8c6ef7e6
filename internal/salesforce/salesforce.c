/* The Salesforce REST client: OAuth (client credentials, JWT bearer), SOQL queries with
 * pagination, retries, API-usage floor. One reused curl handle so that a reimport's pages share a
 * kept-alive TLS connection. */
#include "salesforce.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

/* A query page is at most 2000 records of a few KB; anything far larger is not an answer. */
enum { MAX_RESPONSE = 64 << 20 };
/* A consumer secret or an RSA key in PEM is a few KB. */
enum { MAX_SECRET_FILE = 64 << 10 };
/* SOQL allows five levels of parent relationships; deeper nesting is not a record. */
enum { MAX_REL_DEPTH = 5 };

struct sf_client {
    char *url;      /* configured My Domain, no trailing slash: the token endpoint's base */
    char *api_base; /* where queries go: the token answer's instance_url, else url */
    char *api_version;
    char *client_id;
    char *secret_file; /* client-credentials flow when set */
    char *key_file;    /* JWT bearer flow when set */
    char *username;
    char *login_url;
    int max_attempts;
    long backoff_base_ms, backoff_max_ms, retry_after_max_ms;
    long floor;
    size_t max_url_len;
    volatile sig_atomic_t *stop;

    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    char *token; /* NULL until fetched; cleansed when dropped */

    /* the answer being read */
    buf body;
    bool overflow;
    bool have_retry_after;
    long retry_after_ms;

    bool usage_known;
    long usage_used, usage_max;

    uint64_t rng;
    arena mem; /* one record's flattened fields, reset after each callback */
    sf_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ------------------------------------------------------------------------------------------ */
/* small helpers */

static void cleanse_free(char *p, size_t n)
{
    if (!p) return;
    OPENSSL_cleanse(p, n);
    free(p);
}

static void cleanse_buf(buf *b)
{
    if (b->data) OPENSSL_cleanse(b->data, b->cap);
    buf_free(b);
}

/* Replaces every occurrence of a secret in an error message, as a last line of defence against a
 * server echoing one back (an OAuth error_description, say). */
static void scrub_text(char *text, const char *secret)
{
    if (!text || !secret) return;
    size_t n = strlen(secret);
    if (n < 4) return;
    char *p;
    while ((p = strstr(text, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, strlen(p + n) + 1);
    }
}

static void scrub(perr *err, const char *secret)
{
    if (err) scrub_text(err->msg, secret);
}

/* Untrusted text quoted in a message: printable ASCII only, bounded. */
static void shown(const char *s, char *out, size_t outsz)
{
    size_t j = 0, i = 0;
    for (; s[i] && j + 4 < outsz; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] && j + 4 >= outsz) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

static bool stopping(const sf_client *c) { return c->stop && *c->stop; }

/* Sleeps in short slices so that a stop request is seen within 100 ms. */
static void sleep_ms(const sf_client *c, long ms)
{
    while (ms > 0 && !stopping(c)) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = {0, slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stopping(c)) {
        }
        ms -= slice;
    }
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return stopping(ud) ? 1 : 0;
}

static uint64_t next_rand(sf_client *c)
{
    /* xorshift64*: jitter needs spread, not unpredictability */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1DULL;
}

/* "Equal jitter": half the capped exponential delay plus a random part of the other half, so
 * that clients failing together do not retry together yet still back off. */
static long backoff_ms(sf_client *c, int attempt)
{
    long cap = c->backoff_base_ms;
    for (int i = 1; i < attempt && cap < c->backoff_max_ms; i++)
        cap *= 2;
    if (cap > c->backoff_max_ms) cap = c->backoff_max_ms;
    long half = cap / 2;
    return half + (long)(next_rand(c) % (uint64_t)(cap - half + 1));
}

static int read_file(const char *path, const char *what, char **out, size_t *len, perr *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return perr_set(err, "cannot read the %s file '%s': %s", what, path, strerror(errno));
    char *data = xmalloc(MAX_SECRET_FILE + 1);
    size_t n = fread(data, 1, MAX_SECRET_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_SECRET_FILE) {
        cleanse_free(data, MAX_SECRET_FILE + 1);
        return perr_set(err, "cannot read the %s file '%s': %s", what, path,
                        bad ? "read error" : "larger than 64 KiB");
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return 0;
}

/* The consumer secret: the file's content without surrounding whitespace (files written by hand
 * or by Kubernetes often end in a newline). Returned in malloc'd memory the caller cleanses. */
static int read_client_secret(const sf_client *c, char **out, size_t *cap, perr *err)
{
    char *data;
    size_t n;
    if (read_file(c->secret_file, "client secret", &data, &n, err) < 0) return -1;
    size_t a = 0;
    while (a < n && isspace((unsigned char)data[a]))
        a++;
    while (n > a && isspace((unsigned char)data[n - 1]))
        n--;
    memmove(data, data + a, n - a);
    data[n - a] = '\0';
    *cap = MAX_SECRET_FILE + 1;
    if (n == a) {
        cleanse_free(data, *cap);
        return perr_set(err, "the client secret file '%s' is empty", c->secret_file);
    }
    *out = data;
    return 0;
}

/* Never prompts on a terminal for a passphrase: an encrypted key is a configuration error. */
static int no_passphrase(char *b, int size, int rwflag, void *u)
{
    (void)b, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int load_rsa_key(const char *path, EVP_PKEY **out, perr *err)
{
    char *data;
    size_t n;
    if (read_file(path, "JWT key", &data, &n, err) < 0) return -1;
    BIO *bio = BIO_new_mem_buf(data, (int)n);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    cleanse_free(data, MAX_SECRET_FILE + 1);
    ERR_clear_error(); /* OpenSSL's queue is per thread; leave it clean for other users */
    if (!k)
        return perr_set(err, "the JWT key file '%s' holds no unencrypted PEM private key", path);
    if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return perr_set(err, "the JWT key file '%s' does not hold an RSA key (RS256 needs one)",
                        path);
    }
    *out = k;
    return 0;
}

static bool is_loopback(const char *host)
{
    return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* https:// anywhere; http:// only to this machine (a stand-in), since a bearer token in clear
 * text is a credential handed to whoever is on the path. No user:password@, no query. */
static int check_url(const char *url, const char *what, perr *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
    int rc = -1;
    char show[160];
    shown(url, show, sizeof show);
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        perr_set(err, "%s '%s' is not a URL", what, show);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        perr_set(err, "%s must not carry credentials (user@host)", what);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        perr_set(err, "%s '%s' must not have a query string", what, show);
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0 || (strcasecmp(scheme, "http") == 0 && is_loopback(host)))
        rc = 0;
    else if (strcasecmp(scheme, "http") == 0)
        perr_set(err, "%s '%s' must use https:// (http:// is accepted for loopback only)", what,
                 show);
    else
        perr_set(err, "%s '%s' must use https://", what, show);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static char *strip_slashes(const char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '/')
        n--;
    return xstrndup(s, n);
}

bool sf_id_valid(const char *id)
{
    if (!id) return false;
    size_t n = 0;
    for (; id[n]; n++) {
        unsigned char ch = (unsigned char)id[n];
        if (n >= 18 || !(isascii(ch) && isalnum(ch))) return false;
    }
    return n == 15 || n == 18;
}

/* A SOQL field path: Name or Rel.Rel.Name, each part a letter then letters, digits or _ (custom
 * fields and relationships end in __c / __r). Anything else could change the statement. */
static bool field_valid(const char *f)
{
    int dots = 0;
    size_t part = 0, n = 0;
    for (; f[n]; n++) {
        unsigned char ch = (unsigned char)f[n];
        if (ch == '.') {
            if (part == 0 || ++dots > MAX_REL_DEPTH) return false;
            part = 0;
        } else if (part == 0 ? (isascii(ch) && isalpha(ch))
                             : (isascii(ch) && (isalnum(ch) || ch == '_'))) {
            part++;
        } else {
            return false;
        }
    }
    return part > 0 && n <= 255;
}

/* ------------------------------------------------------------------------------------------ */
/* configuration */

int sf_client_new(const sf_config *cfg, sf_client **out, perr *err)
{
    *out = NULL;
    if (!cfg->url || !*cfg->url) return perr_set(err, "salesforce: no URL configured");
    if (check_url(cfg->url, "salesforce URL", err) < 0) return perr_prefix(err, "salesforce: ");
    if (!cfg->client_id || !*cfg->client_id)
        return perr_set(err, "salesforce: no client id configured");
    bool cc = cfg->client_secret_file && *cfg->client_secret_file;
    bool jwt = cfg->jwt_key_file && *cfg->jwt_key_file;
    if (cc && jwt)
        return perr_set(err, "salesforce: configure either a client secret file or a JWT key file, "
                             "not both");
    if (!cc && !jwt)
        return perr_set(err, "salesforce: configure a client secret file (client credentials) or "
                             "a JWT key file with a username (JWT bearer)");
    if (jwt && (!cfg->username || !*cfg->username))
        return perr_set(err, "salesforce: the JWT bearer flow needs a username");
    const char *ver = cfg->api_version && *cfg->api_version ? cfg->api_version : "v62.0";
    char verbuf[32];
    if (isdigit((unsigned char)ver[0])) { /* "62.0" means "v62.0" */
        snprintf(verbuf, sizeof verbuf, "v%s", ver);
        ver = verbuf;
    }
    {
        const char *p = ver + 1;
        bool ok = ver[0] == 'v' && isdigit((unsigned char)*p);
        while (ok && isdigit((unsigned char)*p))
            p++;
        ok = ok && *p == '.' && isdigit((unsigned char)p[1]);
        if (ok)
            for (p++; *p; p++)
                ok = ok && isdigit((unsigned char)*p);
        if (!ok) {
            char show[40];
            shown(cfg->api_version, show, sizeof show);
            return perr_set(err, "salesforce: API version '%s' is not like v62.0", show);
        }
    }

    pthread_once(&curl_once, curl_init_once);
    sf_client *c = xcalloc(1, sizeof *c);
    c->url = strip_slashes(cfg->url);
    c->api_base = xstrdup(c->url);
    c->api_version = xstrdup(ver);
    c->client_id = xstrdup(cfg->client_id);
    c->secret_file = cc ? xstrdup(cfg->client_secret_file) : NULL;
    c->key_file = jwt ? xstrdup(cfg->jwt_key_file) : NULL;
    c->username = jwt ? xstrdup(cfg->username) : NULL;
    c->login_url = strip_slashes(
        cfg->login_url && *cfg->login_url ? cfg->login_url : "https://login.salesforce.com");
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    c->backoff_base_ms = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 500;
    c->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 30000;
    if (c->backoff_max_ms < c->backoff_base_ms) c->backoff_max_ms = c->backoff_base_ms;
    c->retry_after_max_ms = cfg->retry_after_max_ms > 0 ? cfg->retry_after_max_ms : 120000;
    c->floor = cfg->min_remaining_calls > 0 ? cfg->min_remaining_calls : 0;
    c->max_url_len = cfg->max_url_len > 0 ? cfg->max_url_len : 8000;
    c->stop = cfg->stop;
    buf_init(&c->body);
    arena_init(&c->mem, 16384);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
             (uint64_t)(uintptr_t)c;
    if (!c->rng) c->rng = 0x9E3779B97F4A7C15ULL;

    /* Fail at start-up, not at the first gap event hours later. */
    if (cc) {
        char *secret;
        size_t cap;
        if (read_client_secret(c, &secret, &cap, err) < 0) {
            perr_prefix(err, "salesforce: ");
            goto fail;
        }
        cleanse_free(secret, cap);
    } else {
        EVP_PKEY *k;
        if (load_rsa_key(c->key_file, &k, err) < 0) {
            perr_prefix(err, "salesforce: ");
            goto fail;
        }
        EVP_PKEY_free(k);
    }

    c->curl = curl_easy_init();
    if (!c->curl) {
        perr_set(err, "salesforce: cannot initialise libcurl");
        goto fail;
    }
    long timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    long connect_timeout = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
    /* A redirect would carry the bearer token to wherever it points. */
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, ""); /* gzip pages: 5-10x fewer bytes */
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "provisioner");
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
    if (c->stop) {
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    }
    /* A stand-in on this machine is never reached through a proxy, unless no_proxy says so. */
    if (!getenv("no_proxy") && !getenv("NO_PROXY"))
        curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    *out = c;
    return 0;
fail:
    sf_client_free(c);
    return -1;
}

static void drop_token(sf_client *c)
{
    if (c->token) cleanse_free(c->token, strlen(c->token));
    c->token = NULL;
}

void sf_client_free(sf_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    drop_token(c);
    free(c->url);
    free(c->api_base);
    free(c->api_version);
    free(c->client_id);
    free(c->secret_file);
    free(c->key_file);
    free(c->username);
    free(c->login_url);
    cleanse_buf(&c->body); /* may hold a token answer */
    arena_free(&c->mem);
    free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sf_client *c = ud;
    size_t len = size * n;
    if (c->body.len + len > MAX_RESPONSE) {
        c->overflow = true;
        return 0;
    }
    buf_append(&c->body, p, len);
    return len;
}

/* Sforce-Limit-Info: api-usage=18/5000[; per-app-api-usage=...]. Only the org-wide item counts. */
static void parse_limit_info(sf_client *c, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == ';' || v[i] == ',' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < n && v[i] != ';' && v[i] != ',')
            i++;
        const char *item = v + start;
        size_t len = i - start;
        if (len > 10 && strncasecmp(item, "api-usage=", 10) == 0) {
            char tmp[64];
            size_t m = len - 10 < sizeof tmp - 1 ? len - 10 : sizeof tmp - 1;
            memcpy(tmp, item + 10, m);
            tmp[m] = '\0';
            long used, max;
            char slash;
            if (sscanf(tmp, "%ld%c%ld", &used, &slash, &max) == 3 && slash == '/' && used >= 0 &&
                max > 0) {
                c->usage_known = true;
                c->usage_used = used;
                c->usage_max = max;
            }
        }
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    sf_client *c = ud;
    size_t len = size * n;
    const char *colon = memchr(p, ':', len);
    if (!colon) return len;
    size_t name_len = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - name_len - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (name_len == 17 && strncasecmp(p, "Sforce-Limit-Info", 17) == 0) {
        parse_limit_info(c, v, vlen);
    } else if (name_len == 11 && strncasecmp(p, "Retry-After", 11) == 0 && vlen && vlen < 64) {
        char tmp[64];
        memcpy(tmp, v, vlen);
        tmp[vlen] = '\0';
        char *end;
        long secs = strtol(tmp, &end, 10);
        if (end != tmp && *end == '\0' && secs >= 0) {
            c->have_retry_after = true;
            c->retry_after_ms = secs * 1000;
        } else { /* the HTTP-date form */
            time_t when = curl_getdate(tmp, NULL);
            if (when != (time_t)-1) {
                time_t now = time(NULL);
                c->have_retry_after = true;
                c->retry_after_ms = when > now ? (long)(when - now) * 1000 : 0;
            }
        }
    }
    return len;
}

/* Salesforce's error bodies: the REST API's [{"errorCode": ..., "message": ...}] (sometimes a
 * bare object), OAuth's {"error": ..., "error_description": ...}. */
static void describe_status(const sf_client *c, long status, char *out, size_t outsz)
{
    json_t *root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
    json_t *o = json_is_array(root) ? json_array_get(root, 0) : root;
    const char *code = NULL, *msg = NULL;
    if (json_is_object(o)) {
        code = json_string_value(json_object_get(o, "errorCode"));
        msg = json_string_value(json_object_get(o, "message"));
        if (!code) code = json_string_value(json_object_get(o, "error"));
        if (!msg) msg = json_string_value(json_object_get(o, "error_description"));
    }
    char scode[80] = "", smsg[400] = "";
    if (code) shown(code, scode, sizeof scode);
    if (msg) shown(msg, smsg, sizeof smsg);
    if (code && msg)
        snprintf(out, outsz, "HTTP %ld %s: %s", status, scode, smsg);
    else if (code || msg)
        snprintf(out, outsz, "HTTP %ld %s", status, code ? scode : smsg);
    else
        snprintf(out, outsz, "HTTP %ld", status);
    json_decref(root);
}

static bool retryable_status(long st) { return st == 429 || st == 408 || st >= 500; }

/* One request with retries for what may pass: network failures, 408, 429 and 5xx. Returns 0 with
 * *status set and the body in c->body for any other answer; -1 with err once the attempts are
 * spent, an answer is too large, or Retry-After asks for longer than allowed. */
static int http_send(sf_client *c, const char *what, const char *url, const char *form, bool auth,
                     const char *hide, long *status, perr *err)
{
    char last[600] = "";
    for (int attempt = 1;; attempt++) {
        if (stopping(c)) return perr_set(err, "salesforce: stopped");
        struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
        char *auth_line = NULL;
        size_t auth_len = 0;
        if (auth && c->token) {
            auth_len = strlen(c->token) + 32;
            auth_line = xmalloc(auth_len);
            snprintf(auth_line, auth_len, "Authorization: Bearer %s", c->token);
            hdrs = curl_slist_append(hdrs, auth_line);
        }
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        if (form) {
            curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, form);
            hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
        } else {
            curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        }
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
        buf_reset(&c->body);
        c->overflow = false;
        c->have_retry_after = false;
        c->curl_err[0] = '\0';
        c->stats.requests++;
        CURLcode rc = curl_easy_perform(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        cleanse_free(auth_line, auth_len);
        if (form) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);

        long wait = -1;
        if (rc == CURLE_OK) {
            long st = 0;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
            if (!retryable_status(st)) {
                *status = st;
                return 0;
            }
            describe_status(c, st, last, sizeof last);
            /* what the server says may quote what it was sent */
            scrub_text(last, hide);
            if (auth) scrub_text(last, c->token);
            if (c->have_retry_after) {
                if (c->retry_after_ms > c->retry_after_max_ms)
                    return perr_set(err,
                                    "%s: %s, and Retry-After asks for %ld s (more than the "
                                    "%ld s allowed)",
                                    what, last, c->retry_after_ms / 1000,
                                    c->retry_after_max_ms / 1000);
                wait = c->retry_after_ms;
            }
        } else if (rc == CURLE_ABORTED_BY_CALLBACK && stopping(c)) {
            return perr_set(err, "salesforce: stopped");
        } else if (c->overflow) {
            return perr_set(err, "%s: answer larger than %d MiB", what, MAX_RESPONSE >> 20);
        } else {
            snprintf(last, sizeof last, "%s",
                     c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
        }
        if (attempt >= c->max_attempts)
            return perr_set(err, "%s: gave up after %d attempt%s: %s", what, attempt,
                            attempt == 1 ? "" : "s", last);
        if (wait < 0) wait = backoff_ms(c, attempt);
        char a[32], w[32];
        snprintf(a, sizeof a, "%d/%d", attempt, c->max_attempts);
        snprintf(w, sizeof w, "%ld", wait);
        log_msg(LOG_WARN, "salesforce request failed, retrying", "what", what, "error", last,
                "attempt", a, "wait_ms", w, NULL);
        c->stats.retries++;
        sleep_ms(c, wait);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* OAuth */

static void b64url(buf *out, const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        buf_append(out, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[2] = {tbl[v >> 18], tbl[(v >> 12) & 63]};
        buf_append(out, q, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[3] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63]};
        buf_append(out, q, 3);
    }
}

/* header.claims.signature, RS256 over the first two parts (RFC 7515, 7519), with the claims
 * Salesforce's JWT bearer flow wants: iss = consumer key, sub = username, aud = login URL, exp
 * within 3 minutes. */
static int jwt_assertion(sf_client *c, buf *out, perr *err)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I}", "iss", c->client_id, "sub", c->username, "aud",
                               c->login_url, "exp", (json_int_t)(time(NULL) + 180));
    char *ctext = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    if (!ctext) return perr_set(err, "salesforce: cannot build the JWT claims");
    b64url(out, (const unsigned char *)header, sizeof header - 1);
    buf_putc(out, '.');
    b64url(out, (const unsigned char *)ctext, strlen(ctext));
    free(ctext);

    EVP_PKEY *key;
    if (load_rsa_key(c->key_file, &key, err) < 0) return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int rc = -1;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)out->data, out->len) == 1) {
        sig = xmalloc(siglen);
        if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->data, out->len) == 1)
            rc = 0;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (rc < 0) {
        free(sig);
        return perr_set(err, "salesforce: cannot sign the JWT with the key in '%s'", c->key_file);
    }
    buf_putc(out, '.');
    b64url(out, sig, siglen);
    free(sig);
    return 0;
}

static void form_add(sf_client *c, buf *form, const char *name, const char *value)
{
    char *esc = curl_easy_escape(c->curl, value, 0);
    if (form->len) buf_putc(form, '&');
    buf_puts(form, name);
    buf_putc(form, '=');
    buf_puts(form, esc ? esc : "");
    if (esc) OPENSSL_cleanse(esc, strlen(esc));
    curl_free(esc);
}

/* POST {url}/services/oauth2/token. The secret (or the signed assertion) lives only in this call's
 * memory, cleansed before it returns; the file is read each time so a rotated secret is used
 * without a restart. */
static int fetch_token(sf_client *c, perr *err)
{
    const char *what = c->key_file ? "salesforce token request (JWT bearer)"
                                   : "salesforce token request (client credentials)";
    buf form, assertion;
    buf_init(&form);
    buf_init(&assertion);
    char *secret = NULL;
    size_t secret_cap = 0;
    int rc = -1;
    if (c->key_file) {
        if (jwt_assertion(c, &assertion, err) < 0) goto out;
        form_add(c, &form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        form_add(c, &form, "assertion", assertion.data);
    } else {
        if (read_client_secret(c, &secret, &secret_cap, err) < 0) goto out;
        form_add(c, &form, "grant_type", "client_credentials");
        form_add(c, &form, "client_id", c->client_id);
        form_add(c, &form, "client_secret", secret);
    }
    char url[2048];
    snprintf(url, sizeof url, "%s/services/oauth2/token", c->url);
    long status;
    if (http_send(c, what, url, form.data, false, secret ? secret : assertion.data, &status, err) <
        0)
        goto out;
    if (status != 200) {
        char d[600];
        describe_status(c, status, d, sizeof d);
        perr_set(err, "%s: %s", what, d);
        goto out;
    }
    json_t *ans = json_loadb(c->body.data, c->body.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(ans, "access_token"));
    const char *inst = json_string_value(json_object_get(ans, "instance_url"));
    if (!tok || !*tok) {
        perr_set(err, "%s: the answer holds no access_token", what);
    } else if (inst && *inst && check_url(inst, "the token answer's instance_url", err) < 0) {
        perr_prefix(err, "%s: ", what);
    } else {
        drop_token(c);
        c->token = xstrdup(tok);
        if (inst && *inst) {
            free(c->api_base);
            c->api_base = strip_slashes(inst);
        }
        c->stats.token_requests++;
        log_msg(LOG_INFO, "salesforce token obtained", "flow",
                c->key_file ? "jwt_bearer" : "client_credentials", "instance", c->api_base, NULL);
        rc = 0;
    }
    json_decref(ans);
out:
    if (rc < 0) {
        scrub(err, secret);
        scrub(err, assertion.data);
    }
    cleanse_free(secret, secret_cap);
    cleanse_buf(&form);
    cleanse_buf(&assertion);
    if (c->body.data) OPENSSL_cleanse(c->body.data, c->body.cap); /* the token answer */
    buf_reset(&c->body);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* the data API */

static int floor_check(sf_client *c, unsigned flags, perr *err)
{
    if ((flags & SF_ESSENTIAL) || c->floor <= 0 || !c->usage_known) return 0;
    long left = c->usage_max - c->usage_used;
    if (left >= c->floor) return 0;
    c->stats.refused++;
    return perr_set(err,
                    "salesforce: API usage %ld of %ld leaves %ld calls, under the floor of %ld: "
                    "non-essential call not made",
                    c->usage_used, c->usage_max, left < 0 ? 0 : left, c->floor);
}

/* GET {api_base}{path} with the token, fetching one first if needed and once more on a 401. */
static int api_get(sf_client *c, const char *path, unsigned flags, json_t **out, perr *err)
{
    if (floor_check(c, flags, err) < 0) return -1;
    if (!c->token && fetch_token(c, err) < 0) return -1;
    bool refreshed = false;
    buf url;
    buf_init(&url);
    int rc = -1;
    for (;;) {
        buf_reset(&url);
        buf_puts(&url, c->api_base);
        buf_puts(&url, path);
        long st;
        if (http_send(c, "salesforce query", url.data, NULL, true, NULL, &st, err) < 0) break;
        if (st == 401 && !refreshed) {
            /* INVALID_SESSION_ID: expired or revoked. Any 401 gets one new token; a second means
             * the new one is refused too, and trying again would not help. */
            refreshed = true;
            log_msg(LOG_INFO, "salesforce session expired, fetching a new token", NULL);
            drop_token(c);
            if (fetch_token(c, err) < 0) break;
            c->stats.token_refreshes++;
            continue;
        }
        if (st < 200 || st > 299) {
            char d[600];
            describe_status(c, st, d, sizeof d);
            perr_set(err, "salesforce query: %s", d);
            break;
        }
        json_error_t jerr;
        *out = json_loadb(c->body.data, c->body.len, 0, &jerr);
        if (!*out) {
            perr_set(err, "salesforce query: the answer is not JSON: %s (line %d)", jerr.text,
                     jerr.line);
            break;
        }
        rc = 0;
        break;
    }
    buf_free(&url);
    if (rc < 0) scrub(err, c->token);
    return rc;
}

/* ---- flattening a REST record into (name, value) pairs */

typedef struct flat {
    event_field *items;
    size_t n, cap;
    const char **compounds; /* compound names met (Address), so a requested one counts as sent */
    size_t nc, capc;
    size_t n_parts;          /* compound parts pushed: only then can a name repeat */
    const char *const *want; /* the fields asked for, or NULL */
    size_t n_want;
} flat;

static void flat_push(flat *f, arena *mem, const char *name, value_t v)
{
    if (f->n == f->cap) f->items = arena_grow(mem, f->items, f->n, &f->cap, sizeof *f->items, 32);
    f->items[f->n].name = name;
    f->items[f->n].val = v;
    f->n++;
}

static bool flat_has(const flat *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcasecmp(f->items[i].name, name) == 0) return true;
    for (size_t i = 0; i < f->nc; i++)
        if (strcasecmp(f->compounds[i], name) == 0) return true;
    return false;
}

static value_t to_value(json_t *v, arena *mem)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        size_t n = json_string_length(v);
        return (value_t){
            .type = VAL_STR, .s = arena_strndup(mem, json_string_value(v), n), .len = n};
    }
    case JSON_TRUE: return value_bool(true);
    case JSON_FALSE: return value_bool(false);
    case JSON_INTEGER: return value_num((double)json_integer_value(v));
    case JSON_REAL: return value_num(json_real_value(v));
    case JSON_NULL: return value_null();
    default: {
        /* arrays and child-relationship results: kept as JSON text, as the event reader does */
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        value_t out = value_null();
        if (txt) {
            const char *s = arena_strdup(mem, txt);
            out = (value_t){.type = VAL_STR, .s = s, .len = strlen(s)};
            free(txt);
        }
        return out;
    }
    }
}

static const char *join(arena *mem, const char *prefix, const char *name)
{
    if (!prefix) return arena_strdup(mem, name);
    size_t a = strlen(prefix), b = strlen(name);
    char *s = arena_alloc(mem, a + b + 2);
    memcpy(s, prefix, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* True when name is not itself asked for but is the relationship of a dotted field that is: a
 * null relationship ("Manager": null) then stands for its fields, filled in as nulls later. */
static bool only_a_relationship(const flat *f, const char *name)
{
    if (!f->want) return false;
    size_t n = strlen(name);
    bool parent = false;
    for (size_t i = 0; i < f->n_want; i++) {
        if (strcasecmp(f->want[i], name) == 0) return false;
        if (strncasecmp(f->want[i], name, n) == 0 && f->want[i][n] == '.') parent = true;
    }
    return parent;
}

static void flatten(json_t *obj, const char *prefix, int depth, flat *f, arena *mem)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "attributes") == 0) continue;
        if (json_is_object(v) && json_is_object(json_object_get(v, "attributes")) &&
            depth < MAX_REL_DEPTH) {
            /* a parent relationship: Profile -> Profile.Name, Manager.Profile.Name, ... */
            flatten(v, join(mem, prefix, key), depth + 1, f, mem);
        } else if (json_is_object(v) && !json_object_get(v, "records")) {
            /* a compound field (Address in REST): parts under their SOQL names, City for "city",
             * as events carry them (R1.3). A part also selected on its own is kept once. */
            if (f->nc == f->capc)
                f->compounds =
                    arena_grow(mem, f->compounds, f->nc, &f->capc, sizeof *f->compounds, 4);
            f->compounds[f->nc++] = join(mem, prefix, key);
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                if (json_is_object(pv) || !*pk) continue;
                char *part = (char *)join(mem, prefix, pk);
                char *last = strrchr(part, '.');
                last = last ? last + 1 : part;
                *last = (char)toupper((unsigned char)*last);
                if (flat_has(f, part)) continue;
                flat_push(f, mem, part, to_value(pv, mem));
                f->n_parts++;
            }
        } else {
            const char *name = join(mem, prefix, key);
            if (json_is_null(v) && only_a_relationship(f, name)) continue;
            if (f->n_parts && flat_has(f, name)) continue;
            flat_push(f, mem, name, to_value(v, mem));
        }
    }
}

const value_t *sf_record_get(const sf_record *rec, const char *name)
{
    for (size_t i = 0; i < rec->n_fields; i++)
        if (strcasecmp(rec->fields[i].name, name) == 0) return &rec->fields[i].val;
    return NULL;
}

typedef struct query_run {
    sf_record_fn cb;
    void *ctx;
    const char *const *want; /* fields asked for, to fill in as nulls; NULL for sf_query */
    size_t n_want;
    size_t seq;
} query_run;

static int deliver(sf_client *c, json_t *rec, size_t total, query_run *q, perr *err)
{
    flat f = {.want = q->want, .n_want = q->n_want};
    flatten(rec, NULL, 0, &f, &c->mem);
    for (size_t i = 0; i < q->n_want; i++) {
        /* Salesforce sends the fields in SELECT order: look where the field should be first. */
        bool found = i < f.n && strcasecmp(f.items[i].name, q->want[i]) == 0;
        if (!found && !flat_has(&f, q->want[i]))
            flat_push(&f, &c->mem, arena_strdup(&c->mem, q->want[i]), value_null());
    }
    json_t *attrs = json_object_get(rec, "attributes");
    const char *type = json_string_value(json_object_get(attrs, "type"));
    sf_record r = {.type = type ? type : "",
                   .fields = f.items,
                   .n_fields = f.n,
                   .seq = ++q->seq,
                   .total = total};
    const value_t *id = sf_record_get(&r, "Id");
    r.id = id && id->type == VAL_STR ? id->s : NULL;
    c->stats.records++;
    int rc = 0;
    if (q->cb) {
        if (err) err->msg[0] = '\0';
        rc = q->cb(q->ctx, &r, err) < 0 ? -1 : 0;
        if (rc < 0 && err && !err->msg[0])
            perr_set(err, "salesforce query: stopped by the callback");
    }
    arena_reset(&c->mem);
    return rc;
}

/* One SOQL statement, every page. nextRecordsUrl is followed only under /services/data/ on the
 * same instance, so an odd answer cannot send the token elsewhere. */
static int run_soql(sf_client *c, const char *soql, unsigned flags, query_run *q, perr *err)
{
    char *esc = curl_easy_escape(c->curl, soql, 0);
    if (!esc) return perr_set(err, "salesforce query: cannot encode the statement");
    buf path;
    buf_init(&path);
    buf_printf(&path, "/services/data/%s/query?q=%s", c->api_version, esc);
    curl_free(esc);
    int rc = 0;
    for (;;) {
        json_t *page;
        if (api_get(c, path.data, flags, &page, err) < 0) {
            rc = -1;
            break;
        }
        json_t *records = json_object_get(page, "records");
        json_t *ts = json_object_get(page, "totalSize");
        if (!json_is_array(records)) {
            json_decref(page);
            rc = perr_set(err, "salesforce query: the answer has no records array");
            break;
        }
        size_t total = json_is_integer(ts) && json_integer_value(ts) >= 0
                           ? (size_t)json_integer_value(ts)
                           : json_array_size(records);
        size_t i;
        json_t *rec;
        json_array_foreach(records, i, rec)
        {
            if (!json_is_object(rec)) continue;
            if (deliver(c, rec, total, q, err) < 0) {
                rc = -1;
                break;
            }
        }
        const char *next = json_string_value(json_object_get(page, "nextRecordsUrl"));
        bool done = !json_is_false(json_object_get(page, "done")) || !next;
        if (rc == 0 && !done) {
            if (strncmp(next, "/services/data/", 15) != 0 || strstr(next, "..") ||
                strchr(next, '#') || strchr(next, '@')) {
                char show[120];
                shown(next, show, sizeof show);
                rc = perr_set(err, "salesforce query: unexpected nextRecordsUrl '%s'", show);
            } else {
                buf_reset(&path);
                buf_puts(&path, next);
            }
        }
        json_decref(page);
        if (rc < 0 || done) break;
    }
    buf_free(&path);
    return rc;
}

static int counted(sf_client *c, int rc)
{
    if (rc < 0) c->stats.failures++;
    return rc;
}

int sf_query(sf_client *c, const char *soql, unsigned flags, sf_record_fn cb, void *ctx, perr *err)
{
    query_run q = {.cb = cb, .ctx = ctx};
    return counted(c, run_soql(c, soql, flags, &q, err));
}

/* The field list with Id first when missing, every name checked. */
static int field_list(const char *const *fields, size_t n, const char ***out, size_t *n_out,
                      perr *err)
{
    if (n == 0 || !fields) return perr_set(err, "salesforce: no fields to select");
    bool has_id = false;
    for (size_t i = 0; i < n; i++) {
        if (!fields[i] || !field_valid(fields[i])) {
            char show[80];
            shown(fields[i] ? fields[i] : "(null)", show, sizeof show);
            return perr_set(err, "salesforce: '%s' is not a SOQL field name", show);
        }
        if (strcasecmp(fields[i], "Id") == 0) has_id = true;
    }
    const char **l = xmalloc((n + 1) * sizeof *l);
    size_t k = 0;
    if (!has_id) l[k++] = "Id";
    for (size_t i = 0; i < n; i++)
        l[k++] = fields[i];
    *out = l;
    *n_out = k;
    return 0;
}

static void select_clause(buf *b, const char *const *fields, size_t n)
{
    buf_puts(b, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        buf_puts(b, fields[i]);
    }
    buf_puts(b, " FROM User");
}

int sf_query_all_users(sf_client *c, const char *const *fields, size_t n_fields, unsigned flags,
                       sf_record_fn cb, void *ctx, perr *err)
{
    const char **want;
    size_t n_want;
    if (field_list(fields, n_fields, &want, &n_want, err) < 0) return counted(c, -1);
    buf soql;
    buf_init(&soql);
    select_clause(&soql, want, n_want);
    query_run q = {.cb = cb, .ctx = ctx, .want = want, .n_want = n_want};
    int rc = run_soql(c, soql.data, flags, &q, err);
    buf_free(&soql);
    free(want);
    return counted(c, rc);
}

/* Length of s once percent-encoded the way curl_easy_escape does it: unreserved as is, the rest
 * as %XX. */
static size_t encoded_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        n += (isascii(ch) && isalnum(ch)) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ? 1
                                                                                              : 3;
    }
    return n;
}

int sf_query_users_by_ids(sf_client *c, const char *const *ids, size_t n_ids,
                          const char *const *fields, size_t n_fields, unsigned flags,
                          sf_record_fn cb, void *ctx, perr *err)
{
    /* Every id checked before anything is sent: one bad id is a caller's bug or an attack, and
     * half a batch read would hide it. */
    for (size_t i = 0; i < n_ids; i++) {
        if (!sf_id_valid(ids[i])) {
            char show[60];
            shown(ids[i] ? ids[i] : "(null)", show, sizeof show);
            return counted(c,
                           perr_set(err,
                                    "salesforce: record id #%zu '%s' is not a Salesforce id (15 or "
                                    "18 letters and digits)",
                                    i + 1, show));
        }
    }
    const char **want;
    size_t n_want;
    if (field_list(fields, n_fields, &want, &n_want, err) < 0) return counted(c, -1);
    if (n_ids == 0) {
        free(want);
        return 0;
    }
    /* The URL's length depends on the instance the token names. */
    if (!c->token && (floor_check(c, flags, err) < 0 || fetch_token(c, err) < 0)) {
        free(want);
        return counted(c, -1);
    }
    buf soql;
    buf_init(&soql);
    select_clause(&soql, want, n_want);
    buf_puts(&soql, " WHERE Id IN (");
    size_t prefix_len = soql.len;
    size_t fixed = strlen(c->api_base) + strlen("/services/data/") + strlen(c->api_version) +
                   strlen("/query?q=") + encoded_len(soql.data) + encoded_len(")");

    query_run q = {.cb = cb, .ctx = ctx, .want = want, .n_want = n_want};
    strmap seen;
    strmap_init(&seen);
    int rc = 0;
    size_t i = 0;
    while (i < n_ids && rc == 0) {
        soql.len = prefix_len;
        soql.data[prefix_len] = '\0';
        size_t len = fixed, in_batch = 0;
        for (; i < n_ids; i++) {
            /* an 18-character id is its 15-character form plus a case checksum */
            char key[16];
            memcpy(key, ids[i], 15);
            key[15] = '\0';
            if (strmap_get(&seen, key)) continue;
            /* 'id' plus a comma before all but the first: ' and , are 3 bytes encoded */
            size_t add = strlen(ids[i]) + 6 + (in_batch ? 3 : 0);
            if (len + add > c->max_url_len) {
                if (in_batch == 0) {
                    rc = perr_set(err,
                                  "salesforce: the field list leaves no room for an id under "
                                  "the URL limit of %zu characters",
                                  c->max_url_len);
                }
                break;
            }
            strmap_put(&seen, key, (void *)1);
            if (in_batch) buf_putc(&soql, ',');
            buf_printf(&soql, "'%s'", ids[i]);
            len += add;
            in_batch++;
        }
        if (rc < 0 || in_batch == 0) break;
        buf_putc(&soql, ')');
        rc = run_soql(c, soql.data, flags, &q, err);
    }
    strmap_free(&seen, NULL);
    buf_free(&soql);
    free(want);
    return counted(c, rc);
}

bool sf_api_usage(const sf_client *c, long *used, long *max)
{
    if (!c->usage_known) return false;
    if (used) *used = c->usage_used;
    if (max) *max = c->usage_max;
    return true;
}

void sf_client_stats(const sf_client *c, sf_stats *out) { *out = c->stats; }
