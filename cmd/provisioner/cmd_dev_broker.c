/* provisioner dev-broker: librdkafka's mock cluster on a loopback port, the embedded Kafka of the
 * demo and the integration tests. The first stdout line is the bootstrap address (scripts read
 * it); the broker then serves until SIGTERM or SIGINT. Everything it holds is in memory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "kafka/kafka.h"

static volatile sig_atomic_t dev_broker_stop;

/* Only sets the flag: the loop below notices within its sleep and shuts down outside the
 * handler, where destroying the cluster is safe. */
static void dev_broker_on_signal(int sig)
{
    (void)sig;
    dev_broker_stop = 1;
}

/* Splits "a,b,,c" into trimmed, non-empty names appended to *names (copies). */
static void dev_broker_split(const char *list, char ***names, size_t *n)
{
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len) {
            *names = xrealloc(*names, (*n + 1) * sizeof **names);
            (*names)[(*n)++] = xstrndup(s, len);
        }
        p = comma ? comma + 1 : NULL;
    }
}

int cmd_dev_broker(int argc, char **argv)
{
    static const char usage[] = "provisioner dev-broker [--partitions N] [--topics A,B]";
    static const char summary[] =
        "Starts librdkafka's mock Kafka cluster (one broker on a loopback port), creates the\n"
        "topics named plus salesforce.user.changes, gong.user.commands and\n"
        "salesforce.user.changes.dlq, prints the bootstrap address as the first line on stdout\n"
        "and serves until SIGTERM or SIGINT. For demos and tests: data is kept in memory only,\n"
        "about 5 MiB per partition; no transactions and no timestamp look-ups.\n";
    cli_args args;
    int code = EXIT_OK;
    if (cmd_parse(C_DEV_BROKER, usage, summary, argc, argv, &args, &code) < 0) return code;
    if (args.n_positional) {
        fprintf(stderr, "provisioner: dev-broker: unexpected argument '%s'\n", args.positional[0]);
        cli_free(&args);
        return EXIT_USAGE;
    }

    char **topics = NULL;
    size_t n = 0;
    dev_broker_split("salesforce.user.changes,gong.user.commands,salesforce.user.changes.dlq",
                     &topics, &n);
    dev_broker_split(cli_str(&args, "topics"), &topics, &n);
    int partitions = (int)cli_int(&args, "partitions");

    /* Handlers go in before the address is printed: whoever reads it may signal at once. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dev_broker_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    kafka_mock *m = NULL;
    perr err;
    if (kafka_mock_start(partitions, (const char *const *)topics, n, &m, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else {
        printf("%s\n", kafka_mock_bootstrap(m));
        fflush(stdout);
        fprintf(stderr, "dev-broker: serving on %s: %zu topics with %d partitions each (",
                kafka_mock_bootstrap(m), n, partitions);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", topics[i]);
        fprintf(stderr, "); SIGTERM or Ctrl-C stops it\n");
        struct timespec tick = {0, 50 * 1000 * 1000};
        while (!dev_broker_stop)
            nanosleep(&tick, NULL);
        kafka_mock_stop(m);
        fprintf(stderr, "dev-broker: stopped\n");
    }
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
    cli_free(&args);
    return code;
}
