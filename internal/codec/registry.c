/* A Confluent Schema Registry client: GET /schemas/ids/{id}, POST /subjects/{subject}/versions.
 * One reused curl handle (keep-alive), bounded retries with doubling backoff for what may pass
 * (connection failures, timeouts, 5xx, 429), none for answers that will not change. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"

/* A schema is a few hundred KB at most; more is no registry answer. */
enum { MAX_RESPONSE = 8 << 20 };

struct codec_registry {
    char *base;  /* without a trailing slash */
    char *shown; /* base without user:password@, for messages */
    CURL *curl;
    struct curl_slist *headers;
    int attempts;
    long backoff_ms, timeout_ms;
    buf body;
    bool overflow;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *without_userinfo(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (!at || (slash && slash < at)) return xstrdup(url);
    size_t pre = (size_t)(host - url);
    char *s = xmalloc(strlen(url) + 1);
    memcpy(s, url, pre);
    strcpy(s + pre, at + 1);
    return s;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    codec_registry *r = ud;
    if (r->body.len + n > MAX_RESPONSE) {
        r->overflow = true;
        return 0;
    }
    buf_append(&r->body, p, size * n);
    return size * n;
}

int codec_registry_new(const codec_registry_config *cfg, codec_registry **out, codec_error *err)
{
    pthread_once(&curl_once, curl_init_once);
    codec_registry *r = xcalloc(1, sizeof *r);
    size_t n = strlen(cfg->url);
    while (n && cfg->url[n - 1] == '/')
        n--;
    r->base = xstrndup(cfg->url, n);
    r->shown = without_userinfo(r->base);
    r->attempts = cfg->attempts > 0 ? cfg->attempts : 4;
    r->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 100;
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    buf_init(&r->body);
    if (strncmp(r->base, "http://", 7) != 0 && strncmp(r->base, "https://", 8) != 0) {
        codec_fail(err, CODEC_ERR_REGISTRY, "schema registry URL '%s' is not http:// or https://",
                   r->shown);
        codec_registry_free(r);
        return -1;
    }
    r->curl = curl_easy_init();
    if (!r->curl) {
        codec_fail(err, CODEC_ERR_REGISTRY, "cannot initialise libcurl");
        codec_registry_free(r);
        return -1;
    }
    r->headers = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, "
                                         "application/json");
    r->headers =
        curl_slist_append(r->headers, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "provisioner");
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* A registry on this machine never goes through a proxy, unless no_proxy says otherwise. */
    if (!getenv("no_proxy") && !getenv("NO_PROXY"))
        curl_easy_setopt(r->curl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    *out = r;
    return 0;
}

void codec_registry_free(codec_registry *r)
{
    if (!r) return;
    if (r->curl) curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    free(r->base);
    free(r->shown);
    buf_free(&r->body);
    free(r);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Performs the request, retrying what may pass. Returns the HTTP status with the body in
 * r->body, or -1 with registry_unavailable. */
static long request(codec_registry *r, const char *path, const char *post, codec_error *err)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", r->base, path);
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    if (post)
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, post);
    else
        curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
    char last[256] = "";
    long wait = r->backoff_ms;
    for (int attempt = 1; attempt <= r->attempts; attempt++) {
        buf_reset(&r->body);
        r->overflow = false;
        CURLcode rc = curl_easy_perform(r->curl);
        long status = 0;
        if (rc == CURLE_OK) {
            curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
            if (status < 500 && status != 429 && status != 408) return status;
            snprintf(last, sizeof last, "HTTP %ld", status);
        } else if (r->overflow) {
            snprintf(last, sizeof last, "answer larger than %d bytes", MAX_RESPONSE);
            break;
        } else {
            snprintf(last, sizeof last, "%s", curl_easy_strerror(rc));
        }
        if (attempt < r->attempts) {
            sleep_ms(wait);
            wait = wait * 2 > 10000 ? 10000 : wait * 2;
        }
    }
    codec_fail(err, CODEC_ERR_REGISTRY, "schema registry %s%s: %s (after %d attempts)", r->shown,
               path, last, r->attempts);
    return -1;
}

/* The registry's own words about a failure: {"error_code":..., "message": ...}. */
static void registry_message(codec_registry *r, char *out, size_t cap)
{
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(out, cap, "%s", m ? m : "no message");
    json_decref(j);
}

int codec_registry_get(codec_registry *r, int32_t id, buf *out, codec_error *err)
{
    char path[64], why[256];
    snprintf(path, sizeof path, "/schemas/ids/%d", id);
    long status = request(r, path, NULL, err);
    if (status < 0) return -1;
    if (status == 404) {
        registry_message(r, why, sizeof why);
        return codec_fail(err, CODEC_ERR_UNKNOWN_SCHEMA,
                          "schema registry %s has no schema id %d (%s)", r->shown, id, why);
    }
    if (status != 200) {
        registry_message(r, why, sizeof why);
        return codec_fail(err, CODEC_ERR_REGISTRY, "schema registry %s%s answered %ld: %s",
                          r->shown, path, status, why);
    }
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *schema = json_object_get(j, "schema");
    const char *type = json_string_value(json_object_get(j, "schemaType"));
    int rc = 0;
    if (type && strcmp(type, "AVRO") != 0) {
        rc = codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH, "schema id %d is a %s schema, not Avro", id,
                        type);
    } else if (!json_is_string(schema)) {
        rc =
            codec_fail(err, CODEC_ERR_REGISTRY,
                       "schema registry %s%s: the answer has no \"schema\" string", r->shown, path);
    } else {
        buf_reset(out);
        buf_append(out, json_string_value(schema), json_string_length(schema));
    }
    json_decref(j);
    return rc;
}

int codec_registry_register(codec_registry *r, const char *subject, const char *avsc, int32_t *id,
                            codec_error *err)
{
    char path[1024], why[256];
    char *esc = curl_easy_escape(r->curl, subject, 0);
    snprintf(path, sizeof path, "/subjects/%s/versions", esc ? esc : subject);
    curl_free(esc);
    json_t *req = json_pack("{s:s}", "schema", avsc);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long status = request(r, path, body, err);
    free(body);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, NULL);
    if (status < 0) return -1;
    if (status == 409 || status == 422) {
        registry_message(r, why, sizeof why);
        return codec_fail(err, CODEC_ERR_SCHEMA_MISMATCH,
                          "schema registry %s refused the schema for subject %s (%ld): %s",
                          r->shown, subject, status, why);
    }
    if (status != 200) {
        registry_message(r, why, sizeof why);
        return codec_fail(err, CODEC_ERR_REGISTRY, "schema registry %s%s answered %ld: %s",
                          r->shown, path, status, why);
    }
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    json_t *jid = json_object_get(j, "id");
    int rc = 0;
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) > INT32_MAX)
        rc = codec_fail(err, CODEC_ERR_REGISTRY, "schema registry %s%s: the answer has no id",
                        r->shown, path);
    else
        *id = (int32_t)json_integer_value(jid);
    json_decref(j);
    return rc;
}
