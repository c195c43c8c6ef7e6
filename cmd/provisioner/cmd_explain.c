/* provisioner explain: after the events, plain words for one user. */
#include <stdio.h>

#include "commands.h"
#include "offline.h"

int cmd_explain(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_EXPLAIN,
                  "provisioner explain --settings FILE [--events FILE] --user ID [--now ISO]",
                  "Applies the events offline (as simulate does) and then says in plain words, "
                  "for one user:\nin scope or not and the failing rule, the assignment and why, "
                  "the manager link and its state.",
                  argc, argv, &a, &code) < 0)
        return code;
    const char *user = cli_str(&a, "user");
    if (!user || !*user) {
        fprintf(stderr, "provisioner: explain: --user ID is required\n");
        cli_free(&a);
        return EXIT_USAGE;
    }
    jsonl_reader in;
    if (offline_open_events(&in, cli_str(&a, "events")) < 0) {
        cli_free(&a);
        return EXIT_USAGE;
    }
    offline o;
    if (offline_open(&o, cli_str(&a, "settings"), cli_str(&a, "lookups"), cli_str(&a, "now"), false,
                     cli_bool(&a, "guards"), NULL, NULL) < 0) {
        jsonl_close(&in);
        cli_free(&a);
        return EXIT_USAGE;
    }
    o.quiet_warnings = true;
    o.watch = user;
    engine_start(o.eng, &o.hooks);
    int rc = offline_feed(&o, &in);
    if (rc < 0 || o.bad_lines) {
        /* an explanation from part of the events would read as the whole truth */
        if (o.bad_lines)
            fprintf(stderr,
                    "provisioner: explain: %lu event line%s could not be read (above): "
                    "nothing is explained until %s\n",
                    o.bad_lines, o.bad_lines == 1 ? "" : "s",
                    o.bad_lines == 1 ? "it is fixed" : "they are fixed");
        code = EXIT_USAGE;
    } else {
        buf b;
        buf_init(&b);
        engine_explain(o.eng, user, &b);
        if (o.n_ignored) { /* "why did nothing happen when the title changed?" */
            buf_printf(&b,
                       "  Events of this user left out (R1.4: not newer than the last one "
                       "applied): %s",
                       o.ignored.data);
            if (o.n_ignored > 5) buf_printf(&b, ", and %lu more", (unsigned long)(o.n_ignored - 5));
            buf_puts(&b, ".\n");
        }
        cmd_write_stdout(b.data, b.len);
        buf_free(&b);
        code = EXIT_OK;
    }
    offline_close(&o);
    cli_free(&a);
    return code;
}
