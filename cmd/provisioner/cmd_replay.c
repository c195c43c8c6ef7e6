/* provisioner replay: re-consumes the input topic from the beginning, a timestamp or offsets with
 * its own consumer group, to backfill or rebuild the state (R9.3). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config/config.h"
#include "offline.h"
#include "pipeline/pipeline.h"
#include "salesforce/salesforce.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int parse_offsets(const char *s, pipeline_offset **out, size_t *n)
{
    *n = 0;
    *out = xcalloc(strlen(s) / 2 + 2, sizeof **out);
    const char *p = s;
    while (*p) {
        char *end;
        long part = strtol(p, &end, 10);
        if (end == p || *end != ':' || part < 0) return -1;
        p = end + 1;
        long long off = strtoll(p, &end, 10);
        if (end == p || off < 0) return -1;
        (*out)[(*n)++] = (pipeline_offset){(int32_t)part, (int64_t)off};
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return *n ? 0 : -1;
}

int cmd_replay(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(
            C_REPLAY,
            "provisioner replay --from-beginning | --from-timestamp ISO | --offsets P:O,... "
            "[--dry-run] [--state-prefix P] [options]",
            "Re-consumes the input topic with its own consumer group and decides every event "
            "again (R9.3).\nWith the existing state nothing is produced twice (R1.4); against "
            "an empty state (a fresh\n--state-prefix) it rebuilds the state and produces what "
            "a first run would. --dry-run\nprints the commands instead and changes nothing.",
            argc, argv, &a, &code) < 0)
        return code;
    int forms = cli_bool(&a, "from-beginning") + (cli_str(&a, "from-timestamp") != NULL) +
                (cli_str(&a, "offsets") != NULL);
    const char *problem = forms != 1 ? "give exactly one of --from-beginning, --from-timestamp, "
                                       "--offsets"
                                     : NULL;
    pipeline_offset *offsets = NULL;
    size_t n_offsets = 0;
    int64_t from_ts = 0;
    pipeline_start start = START_BEGINNING;
    if (!problem && cli_str(&a, "from-timestamp")) {
        start = START_TIMESTAMP;
        from_ts = offline_parse_iso(cli_str(&a, "from-timestamp"));
        if (from_ts < 0) problem = "--from-timestamp is not an ISO 8601 date-time";
    }
    if (!problem && cli_str(&a, "offsets")) {
        start = START_OFFSETS;
        if (parse_offsets(cli_str(&a, "offsets"), &offsets, &n_offsets) < 0)
            problem = "--offsets must read PARTITION:OFFSET[,PARTITION:OFFSET...]";
    }
    if (problem) {
        fprintf(stderr, "provisioner: replay: %s\n", problem);
        free(offsets);
        cli_free(&a);
        return EXIT_USAGE;
    }
    config *cfg = NULL;
    char dlq[512];
    pipeline_opts o;
    if ((code = cmd_service_opts(&a, "replay", &o, &cfg, dlq, sizeof dlq)) != EXIT_OK) {
        free(offsets);
        cli_free(&a);
        return code;
    }
    cmd_on_stop_signals(on_signal);
    /* --group names the service's group, as for run (an operator copies the service's flags, or
     * its environment); the replay consumes as --replay-group, never as the service: offsets it
     * committed there would move the service's */
    o.group = cli_str(&a, "replay-group");
    if (strcmp(o.group, cli_str(&a, "group")) == 0) {
        fprintf(stderr,
                "provisioner: replay: consumer group '%s' is the service's (--group, "
                "PROVISIONER_GROUP or run's default): a replay uses a group of its own; see "
                "--replay-group\n",
                o.group);
        free(offsets);
        cli_free(&a);
        config_free(cfg);
        return EXIT_USAGE;
    }
    if (cli_str(&a, "state-prefix")) o.redis_prefix = cli_str(&a, "state-prefix");
    o.stop = &stop_requested;
    o.start = start;
    o.from_timestamp_ms = from_ts;
    o.offsets = offsets;
    o.n_offsets = n_offsets;
    o.stop_at_end = true;
    o.dry_run = cli_bool(&a, "dry-run");
    o.dry_run_out = stdout;
    o.progress = isatty(STDERR_FILENO) == 1;
    /* Salesforce for relationship look-ups only (R4.3): gaps stay unresolved and no reimport
     * starts, so that a replay decides from the topic as the first run did (R9.3) */
    struct sf_client *sf = NULL;
    if (cmd_salesforce_client(&a, &stop_requested, &sf) < 0) {
        config_free(cfg);
        free(offsets);
        cli_free(&a);
        return EXIT_USAGE;
    }
    o.lookup_sf = sf;
    /* a replay Job is watched as the service is: its progress in /metrics */
    code = cmd_serve(&a, false, &stop_requested, &o);
    sf_client_free(sf);
    config_free(cfg);
    free(offsets);
    cli_free(&a);
    return code;
}
