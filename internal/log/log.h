/* log: JSON lines on stderr ({"ts":..,"level":..,"msg":..,fields...}). The level comes from
 * PROVISIONER_LOG_LEVEL (debug, info, warn, error; default info). Fields are key/value string pairs
 * ended by NULL; values of keys that look like secrets (password, secret, token, key) are masked,
 * so a careless call site cannot leak one. */
#ifndef PROVISIONER_LOG_H
#define PROVISIONER_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL } log_level;

void log_init_from_env(void);
void log_set_level(log_level l);
/* Plain text ("warning: ...") instead of JSON, for the interactive commands (simulate, explain). */
void log_set_plain(int plain);
int log_enabled(log_level l);

/* log_msg(LOG_INFO, "started", "brokers", b, "group", g, NULL) */
void log_msg(log_level l, const char *msg, ...) __attribute__((sentinel));

/* Masks the password of a URL like redis://user:pass@host:port into out. */
void log_redact_url(const char *url, char *out, unsigned long outsz);

#endif
