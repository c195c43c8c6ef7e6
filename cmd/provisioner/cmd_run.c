/* provisioner run: the service. Configuration from flags and PROVISIONER_* variables (a flag
 * wins); librdkafka properties pass through with -X name=value or PROVISIONER_KAFKA_<name>. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config/config.h"
#include "pipeline/pipeline.h"
#include "salesforce/salesforce.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1; /* the main loop acts on it */
}

static volatile sig_atomic_t reload_requested;

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1; /* the main loop reloads the settings between batches */
}

int cmd_run(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_RUN, "provisioner run [options]",
                  "The service: consumes Salesforce User change events from Kafka, decides with "
                  "the settings\n(state in Redis) and publishes Gong commands, until SIGTERM.",
                  argc, argv, &a, &code) < 0)
        return code;
    config *cfg = NULL;
    char dlq[512];
    pipeline_opts o;
    if ((code = cmd_service_opts(&a, "run", &o, &cfg, dlq, sizeof dlq)) != EXIT_OK) {
        cli_free(&a);
        return code;
    }
    cmd_on_stop_signals(on_signal);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);

    char txn_id[512];
    if (cli_str(&a, "transactional-id")) {
        snprintf(txn_id, sizeof txn_id, "%s", cli_str(&a, "transactional-id"));
    } else {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(txn_id, sizeof txn_id, "%s.%s.%ld", cli_str(&a, "group"), host, (long)getpid());
    }
    struct sf_client *sf = NULL;
    if (cmd_salesforce_client(&a, &stop_requested, &sf) < 0) {
        config_free(cfg);
        cli_free(&a);
        return EXIT_USAGE;
    }
    o.stop = &stop_requested;
    o.sf = sf;
    o.exactly_once = cli_bool(&a, "exactly-once");
    o.reimport_interval_s = (int)cli_int(&a, "reimport-interval");
    o.lookup_refresh_s = (int)cli_int(&a, "lookup-refresh-interval");
    o.transactional_id = txn_id;
    o.settings_path = cli_str(&a, "settings");
    o.reload = &reload_requested;
    code = cmd_serve(&a, cli_str(&a, "salesforce-url") != NULL, &stop_requested, &o);
    sf_client_free(sf);
    config_free(cfg);
    cli_free(&a);
    return code;
}
