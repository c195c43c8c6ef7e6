/* http_client: one HTTP request to the service's listener on loopback (libcurl), for the tests
 * that talk to /healthz, /readyz, /metrics and POST /reimport. Linked by the tests that name it
 * in tests/CMakeLists.txt (PV_TEST_SRCS_<name>); needs libcurl. */
#ifndef PROVISIONER_TEST_HTTP_CLIENT_H
#define PROVISIONER_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct h_reply {
    long status; /* 0: no answer */
    char *body;  /* malloc'd, NUL-terminated; "" when none */
    size_t len;
} h_reply;

/* method "GET" or "POST" (an empty body) to http://127.0.0.1:port/path, with an Authorization
 * header when auth is not NULL; 5 s at most. */
h_reply h_http(int port, const char *method, const char *path, const char *auth);

#endif
