/* provisioner dev-broker: librdkafka's mock cluster on a loopback port, the embedded Kafka of the
 * demo and the integration tests. The first stdout line is the bootstrap address (scripts read
 * it); the broker then serves until SIGTERM or SIGINT. Everything it holds is in memory.
 *
 * With --control it also reads fault-injection commands on stdin, one a line (kafka.h,
 * kafka_mock_control: error, clear, down, up, leader, rtt, topic-error, ping), and answers each
 * with one line on stdout, "ok" or "error <why>", in order: the chaos tests drive it so. End of
 * input stops the reading, not the broker. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* One control line: its answer on stdout. Blank lines and # comments get no answer. */
static void dev_broker_control_line(kafka_mock *m, char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '#') return;
    perr err;
    if (kafka_mock_control(m, s, &err) < 0) {
        printf("error %s\n", err.msg);
        fprintf(stderr, "dev-broker: control: %s: %s\n", s, err.msg);
    } else {
        printf("ok\n");
        fprintf(stderr, "dev-broker: control: %s\n", s);
    }
    cmd_flush_stdout();
}

/* Serves until a signal; with control, reads stdin meanwhile (poll, so a signal is seen within
 * 50 ms either way). */
static void dev_broker_serve(kafka_mock *m, bool control)
{
    char pending[4096];
    size_t have = 0;
    while (!dev_broker_stop) {
        if (!control) {
            struct timespec tick = {0, 50 * 1000 * 1000};
            nanosleep(&tick, NULL);
            continue;
        }
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, 1, 50);
        if (r < 0 && errno != EINTR) {
            control = false;
            continue;
        }
        if (r <= 0) continue;
        ssize_t got = read(STDIN_FILENO, pending + have, sizeof pending - 1 - have);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) { /* end of input: keep serving, stop reading */
            if (have) {
                pending[have] = '\0';
                dev_broker_control_line(m, pending);
            }
            control = false;
            continue;
        }
        have += (size_t)got;
        pending[have] = '\0';
        char *start = pending, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            dev_broker_control_line(m, start);
            start = nl + 1;
        }
        have = strlen(start);
        memmove(pending, start, have);
        if (have == sizeof pending - 1) { /* a line longer than the buffer: refuse it whole */
            printf("error line too long\n");
            cmd_flush_stdout();
            have = 0;
        }
    }
}

/* ---- start-up watchdog */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_done;
static pthread_t wd_thread;
static char **wd_argv;

/* librdkafka 2.0.2's mock cluster now and then never answers a topic creation: the process then
 * starts itself again. A machine under load can also just be slow to create many topics, so each
 * new start waits 5 s longer than the one before (5, 10, 15 ... s, its count in the environment
 * across exec), rather than restarting at a pace the creation never keeps up with. */
#define WD_ATTEMPT_ENV "PROVISIONER_DEV_BROKER_START"

static void *dev_broker_watchdog(void *arg)
{
    (void)arg;
    const char *prev = getenv(WD_ATTEMPT_ENV);
    int attempt = prev ? atoi(prev) : 0;
    if (attempt < 0 || attempt > 100) attempt = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5 * (attempt + 1);
    pthread_mutex_lock(&wd_lock);
    int rc = 0;
    while (!wd_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&wd_cond, &wd_lock, &until);
    bool stalled = !wd_done;
    pthread_mutex_unlock(&wd_lock);
    if (stalled) {
        fprintf(stderr,
                "dev-broker: the mock cluster stalled creating topics (%d s); starting again\n",
                5 * (attempt + 1));
        /* a fresh environment for execve, not setenv: other threads may be reading it */
        extern char **environ;
        size_t n = 0;
        while (environ[n])
            n++;
        char **env = calloc(n + 2, sizeof *env), next[64];
        if (!env) _exit(EXIT_RUNTIME);
        size_t k = 0, plen = strlen(WD_ATTEMPT_ENV);
        for (size_t i = 0; i < n; i++)
            if (strncmp(environ[i], WD_ATTEMPT_ENV, plen) != 0 || environ[i][plen] != '=')
                env[k++] = environ[i];
        snprintf(next, sizeof next, "%s=%d", WD_ATTEMPT_ENV, attempt + 1);
        env[k] = next;
        execve("/proc/self/exe", wd_argv, env);
        _exit(EXIT_RUNTIME); /* exec failed: say so by exiting, never by hanging */
    }
    return NULL;
}

static void dev_broker_watchdog_start(char **argv)
{
    wd_argv = argv;
    wd_done = false;
    pthread_create(&wd_thread, NULL, dev_broker_watchdog, NULL);
}

static void dev_broker_watchdog_stop(void)
{
    pthread_mutex_lock(&wd_lock);
    wd_done = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    pthread_join(wd_thread, NULL);
}

int cmd_dev_broker(int argc, char **argv)
{
    static const char usage[] = "provisioner dev-broker [--partitions N] [--topics A,B:N] "
                                "[--brokers-count N] [--control]";
    static const char summary[] =
        "Starts librdkafka's mock Kafka cluster (one broker on a loopback port, or\n"
        "--brokers-count), creates the topics named (NAME:N for N partitions instead of\n"
        "--partitions) plus salesforce.user.changes, gong.user.commands and\n"
        "salesforce.user.changes.dlq, prints the bootstrap address as the first line on stdout\n"
        "and serves until SIGTERM or SIGINT. For demos and tests: data is kept in memory only,\n"
        "about 5 MiB per partition; no transactions and no timestamp look-ups. A group\n"
        "member that leaves is seen gone only after its session timeout: a restarted or\n"
        "added member waits that long for partitions (45 s by default; the tests pass\n"
        "-X session.timeout.ms=6000 to the service).\n"
        "\n"
        "--control reads fault-injection commands on stdin, one a line, each answered with\n"
        "one line on stdout, \"ok\" or \"error <why>\":\n"
        "  error API ERR COUNT        the next COUNT requests of API (Produce, Fetch,\n"
        "                             OffsetCommit, ... or a number) fail with ERR\n"
        "                             (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, ... or a "
        "number)\n"
        "  clear API                  forget the errors still queued for API\n"
        "  down ID | up ID            broker ID drops its connections and refuses new ones / "
        "serves\n"
        "  leader TOPIC PARTITION ID  make broker ID the partition's leader\n"
        "  rtt ID MS                  broker ID answers MS ms late (0 to stop)\n"
        "  topic-error TOPIC ERR      metadata reports ERR for the topic (NO_ERROR clears)\n"
        "  ping                       answer ok\n";
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
    int brokers = (int)cli_int(&args, "brokers-count");
    bool control = cli_bool(&args, "control");
    for (size_t i = 0; i < n; i++) { /* a bad topic is the command line's mistake: exit 2 */
        char name[256];
        int parts;
        perr err;
        if (kafka_mock_topic_spec(topics[i], partitions, name, sizeof name, &parts, &err) < 0) {
            fprintf(stderr, "provisioner: %s\n", err.msg);
            for (size_t k = 0; k < n; k++)
                free(topics[k]);
            free(topics);
            cli_free(&args);
            return EXIT_USAGE;
        }
    }

    /* Handlers go in before the address is printed: whoever reads it may signal at once. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dev_broker_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    kafka_mock *m = NULL;
    perr err;
    /* librdkafka 2.0.2's mock cluster now and then never answers a topic_create (its thread
     * misses the wake-up; more topics, more likely). Nothing in the API can time out, so a
     * watchdog starts the whole process again (same PID, same stdout) when the topics are not
     * created in time; main passed argv + 2, so the full command line sits just before it. */
    dev_broker_watchdog_start(argv - 2);
    int started =
        kafka_mock_start_cluster(brokers, partitions, (const char *const *)topics, n, &m, &err);
    dev_broker_watchdog_stop();
    if (started < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else {
        printf("%s\n", kafka_mock_bootstrap(m));
        cmd_flush_stdout();
        fprintf(stderr,
                "dev-broker: serving on %s (%d broker%s): %zu topics with %d partitions unless "
                "named NAME:N (",
                kafka_mock_bootstrap(m), brokers, brokers == 1 ? "" : "s", n, partitions);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", topics[i]);
        fprintf(stderr, "); %sSIGTERM or Ctrl-C stops it\n",
                control ? "control commands on stdin; " : "");
        dev_broker_serve(m, control);
        kafka_mock_stop(m);
        fprintf(stderr, "dev-broker: stopped\n");
    }
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
    cli_free(&args);
    return code;
}
