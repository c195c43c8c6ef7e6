/* provisioner simulate: R1-R7 over JSON-lines events with in-memory state; commands on stdout. */
#include <stdio.h>

#include "commands.h"
#include "offline.h"

static void print_command(void *ctx, const command *c)
{
    buf *line = ctx;
    buf_reset(line);
    command_to_json(c, line);
    buf_putc(line, '\n');
    cmd_write_stdout(line->data, line->len);
}

int cmd_simulate(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(
            C_SIMULATE,
            "provisioner simulate --settings FILE [--events FILE] [--now ISO] [--lookups FILE]",
            "Applies the provisioning rules (R1-R7) to JSON-lines change events with "
            "in-memory state\n(no Kafka, Redis or network) and prints the Gong commands as "
            "JSON lines on stdout.\nWarnings and a one-line summary go to stderr. Exit 0, or 2 "
            "for bad settings or input.\nThe settings' mass-deactivation guard (R8.3) applies "
            "with --guards only, as in run: a held\ndeactivation is then a warning, not a "
            "command.",
            argc, argv, &a, &code) < 0)
        return code;
    if (a.n_positional) {
        fprintf(stderr, "provisioner: simulate: unexpected argument '%s'\n", a.positional[0]);
        cli_free(&a);
        return EXIT_USAGE;
    }
    jsonl_reader in;
    if (offline_open_events(&in, cli_str(&a, "events")) < 0) {
        cli_free(&a);
        return EXIT_USAGE;
    }
    buf line;
    buf_init(&line);
    offline o;
    offline_opts oo = {.settings = cli_str(&a, "settings"),
                       .lookups = cli_str(&a, "lookups"),
                       .now = cli_str(&a, "now"),
                       .with_why = !cli_bool(&a, "no-why"),
                       .guards = cli_bool(&a, "guards"),
                       .emit = print_command,
                       .emit_ctx = &line};
    if (offline_open(&o, &oo) < 0) {
        jsonl_close(&in);
        cli_free(&a);
        buf_free(&line);
        return EXIT_USAGE;
    }
    engine_start(o.eng, &o.hooks);
    int rc = offline_feed(&o, &in);
    cmd_flush_stdout();
    offline_summary(&o, stderr);
    code = rc < 0 || o.bad_lines ? EXIT_USAGE : EXIT_OK;
    offline_close(&o);
    buf_free(&line);
    cli_free(&a);
    return code;
}
