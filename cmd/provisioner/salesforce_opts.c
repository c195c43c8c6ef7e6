/* The Salesforce client from the shared options (interfaces.md, "Salesforce access"). */
#include <stdio.h>

#include "commands.h"
#include "salesforce/salesforce.h"

int cmd_salesforce_client(const cli_args *a, volatile sig_atomic_t *stop, sf_client **out)
{
    *out = NULL;
    if (!cli_str(a, "salesforce-url")) return 0;
    sf_config c = {
        .url = cli_str(a, "salesforce-url"),
        .api_version = cli_str(a, "salesforce-api-version"),
        .client_id = cli_str(a, "salesforce-client-id"),
        .client_secret_file = cli_str(a, "salesforce-client-secret-file"),
        .jwt_key_file = cli_str(a, "salesforce-jwt-key-file"),
        .username = cli_str(a, "salesforce-username"),
        .login_url = cli_str(a, "salesforce-login-url"),
        .min_remaining_calls = cli_int(a, "salesforce-min-remaining-calls"),
        .stop = stop,
    };
    perr err;
    if (sf_client_new(&c, out, &err) < 0) { /* its messages say "salesforce: " */
        fprintf(stderr, "provisioner: %s\n", err.msg);
        return -1;
    }
    return 0;
}
