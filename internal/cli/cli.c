#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

extern char **environ;

static const cli_option *find(const cli_option *t, size_t n, unsigned cmd, const char *name,
                              size_t len, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if ((t[i].commands & cmd) && strlen(t[i].name) == len &&
            strncmp(t[i].name, name, len) == 0) {
            *idx = i;
            return &t[i];
        }
    }
    return NULL;
}

static int check_value(const cli_option *o, const char *v, const char *origin, perr *err)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end)
            return perr_set(err, "%s %s: expected a whole number, got '%s'", origin, o->name, v);
        if (o->min <= o->max && ((double)x < o->min || (double)x > o->max))
            return perr_set(err, "%s %s: %ld is out of range [%.0f, %.0f]", origin, o->name, x,
                            o->min, o->max);
        break;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || !*v || *end || isnan(x))
            return perr_set(err, "%s %s: expected a number, got '%s'", origin, o->name, v);
        if (o->min <= o->max && (x < o->min || x > o->max))
            return perr_set(err, "%s %s: %g is out of range [%g, %g]", origin, o->name, x, o->min,
                            o->max);
        break;
    }
    case CLI_BOOL:
    case CLI_FLAG:
        if (strcasecmp(v, "true") && strcasecmp(v, "false") && strcmp(v, "1") && strcmp(v, "0") &&
            strcasecmp(v, "yes") && strcasecmp(v, "no"))
            return perr_set(err, "%s %s: expected true or false, got '%s'", origin, o->name, v);
        break;
    default: break;
    }
    return 0;
}

static void add_kafka_prop(cli_args *a, const char *kv)
{
    a->kafka_props = xrealloc(a->kafka_props, (a->n_kafka_props + 1) * sizeof *a->kafka_props);
    a->kafka_props[a->n_kafka_props++] = xstrdup(kv);
}

int cli_parse(const cli_option *t, size_t n, unsigned cmd, int argc, char **argv, cli_args *out,
              bool *help, perr *err)
{
    memset(out, 0, sizeof *out);
    out->table = t;
    out->n = n;
    out->vals = xcalloc(n, sizeof *out->vals);
    out->sources = xcalloc(n, sizeof *out->sources);
    out->positional = xcalloc((size_t)argc + 1, sizeof *out->positional);
    *help = false;

    for (size_t i = 0; i < n; i++) {
        if (!(t[i].commands & cmd)) continue;
        out->vals[i] = t[i].def;
        out->sources[i] = "default";
        const char *ev = t[i].env ? getenv(t[i].env) : NULL;
        if (ev) {
            if (check_value(&t[i], ev, "environment", err) < 0) {
                perr_prefix(err, "%s: ", t[i].env);
                return -1;
            }
            out->vals[i] = ev;
            out->sources[i] = "env";
        }
    }
    static const char kprefix[] = "PROVISIONER_KAFKA_";
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, kprefix, sizeof kprefix - 1) == 0 && strchr(*e, '='))
            add_kafka_prop(out, *e + sizeof kprefix - 1);

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = true;
            continue;
        }
        if (strcmp(arg, "-X") == 0) {
            if (i + 1 >= argc || !strchr(argv[i + 1], '='))
                return perr_set(err, "-X needs a librdkafka property as name=value");
            add_kafka_prop(out, argv[++i]);
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            out->positional[out->n_positional++] = argv[i];
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name), idx = 0;
        const cli_option *o = find(t, n, cmd, name, len, &idx);
        if (!o) return perr_set(err, "unknown flag --%.*s (see --help)", (int)len, name);
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->type == CLI_FLAG)
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return perr_set(err, "flag --%s needs a value", o->name);
        if (check_value(o, v, "flag", err) < 0) return -1;
        out->vals[idx] = v;
        out->sources[idx] = "flag";
    }
    return 0;
}

void cli_free(cli_args *a)
{
    for (size_t i = 0; i < a->n_kafka_props; i++)
        free(a->kafka_props[i]);
    free(a->kafka_props);
    free(a->vals);
    free(a->sources);
    free(a->positional);
    memset(a, 0, sizeof *a);
}

static ssize_t idx_of(const cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->table[i].name, name) == 0) return (ssize_t)i;
    return -1;
}

const char *cli_str(const cli_args *a, const char *name)
{
    ssize_t i = idx_of(a, name);
    return i < 0 ? NULL : a->vals[i];
}

long cli_int(const cli_args *a, const char *name)
{
    const char *v = cli_str(a, name);
    return v ? strtol(v, NULL, 10) : 0;
}

double cli_double(const cli_args *a, const char *name)
{
    const char *v = cli_str(a, name);
    return v ? strtod(v, NULL) : 0.0;
}

bool cli_bool(const cli_args *a, const char *name)
{
    const char *v = cli_str(a, name);
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

bool cli_given(const cli_args *a, const char *name)
{
    ssize_t i = idx_of(a, name);
    return i >= 0 && a->sources[i] && strcmp(a->sources[i], "default") != 0;
}

bool cli_flag_given(const cli_args *a, const char *name)
{
    ssize_t i = idx_of(a, name);
    return i >= 0 && a->sources[i] && strcmp(a->sources[i], "flag") == 0;
}

static const char *type_name(cli_type t)
{
    switch (t) {
    case CLI_STR: return "TEXT";
    case CLI_INT: return "N";
    case CLI_BOOL: return "BOOL";
    case CLI_DOUBLE: return "NUM";
    case CLI_FLAG: return "";
    case CLI_LIST: return "A,B";
    }
    return "";
}

void cli_print_help(const cli_option *t, size_t n, unsigned cmd, const char *usage,
                    const char *summary, buf *out)
{
    buf_printf(out, "usage: %s\n\n%s\n", usage, summary);
    bool any = false, kafka = false, redis = false;
    for (size_t i = 0; i < n; i++) {
        if (!(t[i].commands & cmd)) continue;
        /* -X is for the Kafka client's; JSON logs come from the commands with a server */
        kafka = kafka || strcmp(t[i].name, "brokers") == 0;
        redis = redis || strcmp(t[i].name, "redis") == 0;
        if (!any) buf_puts(out, "\noptions:\n");
        any = true;
        char flag[96];
        snprintf(flag, sizeof flag, "--%s %s", t[i].name, type_name(t[i].type));
        buf_printf(out, "  %-34s %s", flag, t[i].help);
        if (t[i].def) buf_printf(out, " (default: %s)", t[i].def);
        if (t[i].env) buf_printf(out, " [%s]", t[i].env);
        buf_putc(out, '\n');
    }
    if (kafka)
        buf_puts(out, "  -X NAME=VALUE                      a librdkafka property, as "
                      "PROVISIONER_KAFKA_<NAME>=VALUE in the environment (a name with dots: "
                      "env 'PROVISIONER_KAFKA_security.protocol=SSL' provisioner ...)\n");
    buf_puts(out, "  --help                             this text\n");
    if (kafka || redis)
        buf_puts(out, "logs: JSON lines on stderr; PROVISIONER_LOG_LEVEL=debug|info|warn|error "
                      "(default: info)\n");
}

void cli_print_markdown(const cli_option *t, size_t n, buf *out)
{
    buf_puts(out, "| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        buf_printf(out, "| `--%s` | %s%s%s | %s | %s |\n", t[i].name, t[i].env ? "`" : "",
                   t[i].env ? t[i].env : "", t[i].env ? "`" : "", t[i].def ? t[i].def : "",
                   t[i].help);
    }
}
