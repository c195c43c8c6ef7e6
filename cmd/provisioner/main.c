/* provisioner: keeps Gong team members in step with Salesforce, event by event. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log/log.h"

typedef struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} subcommand;

static int cmd_options(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    buf b;
    buf_init(&b);
    cli_print_markdown(pv_options, pv_n_options, &b);
    fputs(b.data, stdout);
    buf_free(&b);
    return EXIT_OK;
}

static const subcommand subcommands[] = {
    {"run", cmd_run, "the service: consume, decide, publish, until SIGTERM"},
    {"replay", cmd_replay, "re-consume the input topic to backfill or rebuild (R9.3)"},
    {"reimport", cmd_reimport, "\"Reimport users now\" from Salesforce (R8)"},
    {"held", cmd_held, "list the deactivations the mass-deactivation guard holds (R8.3)"},
    {"simulate", cmd_simulate, "apply the rules to JSON-lines events offline, print the commands"},
    {"explain", cmd_explain, "say in plain words why a user is or is not provisioned"},
    {"check-config", cmd_check_config, "validate a settings file and every filter"},
    {"encode", cmd_encode, "JSON-lines events -> Avro message values in files"},
    {"decode", cmd_decode, "Avro message values -> JSON-lines events"},
    {"dev-broker", cmd_dev_broker, "librdkafka's mock Kafka cluster on loopback (demos, tests)"},
    {"produce-events", cmd_produce_events, "JSON-lines events -> Avro -> a topic, key = record id"},
    {"consume-commands", cmd_consume_commands, "commands from a topic -> JSON lines on stdout"},
    {"options", cmd_options, "print every option as a Markdown table (for the README)"},
};

static void usage(FILE *f)
{
    fputs("usage: provisioner COMMAND [options]   (provisioner COMMAND --help for each)\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-15s %s\n", subcommands[i].name, subcommands[i].summary);
}

/* The reason of the first failed write to stdout: glibc drops the buffer of a write that failed,
 * so a later flush finds nothing to write and says nothing. */
static int stdout_errno;

static void stdout_failed(void)
{
    if (!stdout_errno) stdout_errno = errno ? errno : EIO;
}

void cmd_write_stdout(const char *p, size_t n)
{
    errno = 0;
    if (fwrite(p, 1, n, stdout) != n) stdout_failed();
}

int cmd_flush_stdout(void)
{
    errno = 0;
    if (fflush(stdout) != 0) stdout_failed();
    if (!ferror(stdout)) return 0;
    stdout_failed();
    return -1;
}

/* Commands, explanations and decoded events on a full disk or a closed pipe are lost: that is a
 * runtime failure, whatever the command concluded. */
static int output_written(int code)
{
    if (cmd_flush_stdout() == 0) return code;
    fprintf(stderr, "provisioner: cannot write the output: %s\n", strerror(stdout_errno));
    return code == EXIT_OK ? EXIT_RUNTIME : code;
}

int main(int argc, char **argv)
{
    log_init_from_env();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return output_written(subcommands[i].fn(argc - 2, argv + 2));
    fprintf(stderr, "provisioner: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
