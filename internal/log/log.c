#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/util.h"

static log_level g_level = LOG_INFO;
static int g_plain = 0;

static const char *level_names[] = {"debug", "info", "warn", "error", "fatal"};

void log_set_level(log_level l) { g_level = l; }
void log_set_plain(int plain) { g_plain = plain; }
int log_enabled(log_level l) { return l >= g_level; }

void log_init_from_env(void)
{
    const char *v = getenv("PROVISIONER_LOG_LEVEL");
    if (!v || !*v) return;
    for (int i = 0; i <= LOG_FATAL; i++)
        if (strcasecmp(v, level_names[i]) == 0) {
            g_level = (log_level)i;
            return;
        }
    log_msg(LOG_WARN, "PROVISIONER_LOG_LEVEL is no level (debug, info, warn, error): info is used",
            "value", v, NULL);
}

static int is_secret_key(const char *k)
{
    static const char *words[] = {"password", "secret", "token", "key", "credential", NULL};
    char low[64];
    size_t n = strlen(k);
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[n] = '\0';
    for (int i = 0; words[i]; i++)
        if (strstr(low, words[i])) return 1;
    return 0;
}

void log_redact_url(const char *url, char *out, unsigned long outsz)
{
    const char *scheme = strstr(url, "://");
    const char *at = strrchr(url, '@');
    const char *start = scheme ? scheme + 3 : url;
    if (!at || at < start) {
        snprintf(out, outsz, "%s", url);
        return;
    }
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (!colon) { /* redis://SECRET@host: a password written without its ':' */
        snprintf(out, outsz, "%.*s***%s", (int)(start - url), url, at);
        return;
    }
    snprintf(out, outsz, "%.*s:***%s", (int)(colon - url), url, at);
}

void log_msg(log_level l, const char *msg, ...)
{
    if (l < g_level) return;
    buf b;
    buf_init(&b);
    va_list ap;
    va_start(ap, msg);
    if (g_plain) {
        buf_printf(&b, "%s: %s", level_names[l], msg);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            buf_printf(&b, " %s=%s", k, is_secret_key(k) ? "***" : (v ? v : "null"));
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char t[40];
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
        buf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", t, ts.tv_nsec / 1000000,
                   level_names[l]);
        buf_json_str(&b, msg, strlen(msg));
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            buf_putc(&b, ',');
            buf_json_str(&b, k, strlen(k));
            buf_putc(&b, ':');
            if (is_secret_key(k))
                buf_puts(&b, "\"***\"");
            else if (v)
                buf_json_str(&b, v, strlen(v));
            else
                buf_puts(&b, "null");
        }
        buf_putc(&b, '}');
    }
    va_end(ap);
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stderr);
    buf_free(&b);
}
