/* cli: one table of options (name, type, default, bounds, environment variable, help) drives
 * parsing, `--help` and the README's configuration reference, as Redis's standardConfig does.
 * A flag wins over its environment variable, which wins over the default. */
#ifndef PROVISIONER_CLI_H
#define PROVISIONER_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

typedef enum { CLI_STR, CLI_INT, CLI_BOOL, CLI_DOUBLE, CLI_FLAG, CLI_LIST } cli_type;

typedef struct cli_option {
    const char *name; /* long flag without dashes */
    cli_type type;
    const char *def; /* default as text; NULL: none */
    double min, max; /* bounds for CLI_INT / CLI_DOUBLE (min > max: unbounded) */
    const char *env; /* environment variable, or NULL */
    const char *help;
    unsigned commands; /* bit mask of the subcommands that take it */
    bool secret;       /* never printed */
} cli_option;

typedef struct cli_args {
    const cli_option *table;
    size_t n;
    const char **vals;    /* per option, resolved value text (flag > env > default) or NULL */
    const char **sources; /* "flag", "env", "default" */
    char **positional;
    size_t n_positional;
    /* librdkafka properties from -X k=v flags and PROVISIONER_KAFKA_<k> variables */
    char **kafka_props; /* "k=v" */
    size_t n_kafka_props;
} cli_args;

/* Parses argv (after the subcommand) for the subcommand bit `cmd`. --help sets *help.
 * Returns 0, or -1 with err->msg naming the flag and what was wrong. */
int cli_parse(const cli_option *table, size_t n, unsigned cmd, int argc, char **argv, cli_args *out,
              bool *help, perr *err);
void cli_free(cli_args *a);

const char *cli_str(const cli_args *a, const char *name);
long cli_int(const cli_args *a, const char *name);
double cli_double(const cli_args *a, const char *name);
bool cli_bool(const cli_args *a, const char *name);
bool cli_given(const cli_args *a, const char *name);     /* set by flag or environment */
bool cli_flag_given(const cli_args *a, const char *name); /* set on the command line */

/* The options of a subcommand, for --help. */
void cli_print_help(const cli_option *table, size_t n, unsigned cmd, const char *usage,
                    const char *summary, buf *out);
/* The whole table as a Markdown table, for the README. */
void cli_print_markdown(const cli_option *table, size_t n, buf *out);

#endif
