/* libFuzzer target for internal/config (issue 2): loads the input as a settings file. Besides the
 * sanitizers (crashes, leaks: config_free must release everything) it checks properties that must
 * hold for every input:
 *   - a failed load leaves out NULL and a message "f.yaml:LINE:COL: ..." with LINE, COL >= 1;
 *   - a loaded config has a lower-case primary domain, named assignments with distinct names
 *     (ignoring case), a compiled filter each, and guards within their documented bounds. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "fuzz.h"

static void fuzz_check_message(const char *msg)
{
    FUZZ_CHECK(strncmp(msg, "f.yaml:", 7) == 0);
    char *end = NULL;
    long line = strtol(msg + 7, &end, 10);
    FUZZ_CHECK(end && *end == ':' && line >= 1);
    long col = strtol(end + 1, &end, 10);
    FUZZ_CHECK(end && *end == ':' && col >= 1);
}

static void fuzz_check_config(const config *c)
{
    FUZZ_CHECK(c->primary_domain && *c->primary_domain && strchr(c->primary_domain, '.'));
    for (const char *p = c->primary_domain; *p; p++)
        FUZZ_CHECK(!isupper((unsigned char)*p));
    for (size_t i = 0; i < c->n_assignments; i++) {
        const cfg_assignment *a = &c->assignments[i];
        FUZZ_CHECK(a->name && *a->name && a->filter_text && a->filter && a->line >= 1);
        /* R4.3: a loaded filter names only relationships the service can resolve */
        for (size_t k = 0; k < soql_field_count(a->filter); k++)
            FUZZ_CHECK(soql_relationship(soql_field_name(a->filter, k), NULL) !=
                       SOQL_REL_UNSUPPORTED);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcasecmp(a->name, c->assignments[j].name));
        FUZZ_CHECK(a->mode == UPDATE_AUTOMATIC || a->mode == UPDATE_MANUAL);
    }
    FUZZ_CHECK(c->guards.max_deactivations >= -1);
    FUZZ_CHECK(c->guards.max_deactivation_share <= 1.0);
    FUZZ_CHECK(c->guards.window_seconds > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config *c = (config *)1;
    perr err;
    err.msg[0] = '\0';
    if (config_load_string((const char *)data, size, "f.yaml", &c, &err) < 0) {
        FUZZ_CHECK(c == NULL);
        fuzz_check_message(err.msg);
        return 0;
    }
    fuzz_check_config(c);
    config_free(c);
    return 0;
}
