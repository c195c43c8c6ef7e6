/* provisioner explain: plain words for one user, after the events of a file (offline, as
 * simulate decides them) or as the running service's state in Redis has it (--live). */
#include <stdio.h>

#include "commands.h"
#include "offline.h"

static int stop_at_first(void *ctx, const char *id)
{
    (void)id;
    *(bool *)ctx = true;
    return -1;
}

/* The user as the service left it: the same engine_explain over the Redis store, which reads the
 * user, its managers and the waiting links as it asks for them. Nothing is decided or written
 * (the connection loads no write script, so a read-only Redis user will do). */
static int explain_live(const cli_args *a, const char *user)
{
    if (cli_str(a, "events") || cli_given(a, "guards")) {
        /* the state already holds what the service's guard decided */
        fprintf(stderr,
                "provisioner: explain: --live reads the state in Redis; --%s is for "
                "an explanation offline\n",
                cli_str(a, "events") ? "events" : "guards");
        return EXIT_USAGE;
    }
    perr err;
    if (store_redis_check_url(cli_str(a, "redis"), &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        return EXIT_USAGE;
    }
    store_redis_opts so = {
        .url = cli_str(a, "redis"), .prefix = cli_str(a, "redis-prefix"), .read_only = true};
    offline o;
    offline_opts oo = {.settings = cli_str(a, "settings"),
                       .lookups = cli_str(a, "lookups"),
                       .now = cli_str(a, "now"),
                       .guards = true,
                       .redis = &so,
                       .lookup_sf = a, /* read as the service reads them */
                       .need_lookups = true};
    if (offline_open(&o, &oo) < 0) return o.exit_code;
    o.quiet_warnings = true; /* explain says it in its own words */
    buf b;
    buf_init(&b);
    bool known = engine_explain(o.eng, user, &b), any = true;
    int code = EXIT_OK;
    /* "nothing is known" of every user is what a wrong prefix or database looks like */
    if (!known && !store_redis_failed(o.redis, &err)) {
        any = false;
        if (store_redis_scan_users(o.redis, stop_at_first, &any, &err) < 0 && !any) {
            fprintf(stderr, "provisioner: explain: %s\n", err.msg);
            code = EXIT_RUNTIME;
        }
    }
    if (code == EXIT_OK && store_redis_failed(o.redis, &err)) {
        /* a half-read state would explain the wrong thing */
        fprintf(stderr, "provisioner: explain: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else if (code == EXIT_OK && !any) {
        fprintf(stderr,
                "provisioner: explain: no user state under the prefix '%s' in this Redis "
                "database: is --redis-prefix (PROVISIONER_REDIS_PREFIX), or the database in the "
                "URL, the service's?\n",
                so.prefix);
        code = EXIT_RUNTIME;
    } else if (code == EXIT_OK) {
        cmd_write_stdout(b.data, b.len);
    }
    buf_free(&b);
    offline_close(&o);
    return code;
}

int cmd_explain(int argc, char **argv)
{
    cli_args a;
    int code;
    if (cmd_parse(C_EXPLAIN,
                  "provisioner explain --settings FILE [--events FILE | --live] --user ID "
                  "[--now ISO]",
                  "Says in plain words, for one user: in scope or not and the failing rule, the "
                  "assignment\nand why, the manager link and its state. Offline, after the events "
                  "of --events (as simulate\ndecides them); with --live, as the running service's "
                  "state in Redis has the user now\n(--redis, --redis-prefix, and the settings the "
                  "service runs with).",
                  argc, argv, &a, &code) < 0)
        return code;
    const char *user = cli_str(&a, "user");
    if (!user || !*user) {
        fprintf(stderr, "provisioner: explain: --user ID is required\n");
        cli_free(&a);
        return EXIT_USAGE;
    }
    if (cli_bool(&a, "live")) {
        code = explain_live(&a, user);
        cli_free(&a);
        return code;
    }
    /* Offline, the state is a new one in memory: a Redis named on the command line is a --live
     * left out, not something to ignore (the environment's, a pod's, is the service's own). */
    for (const char *const *o = (const char *const[]){"redis", "redis-prefix", NULL}; *o; o++) {
        if (cli_flag_given(&a, *o)) {
            fprintf(stderr,
                    "provisioner: explain: --%s names the service's state, read with --live; "
                    "without it the user is explained after --events\n",
                    *o);
            cli_free(&a);
            return EXIT_USAGE;
        }
    }
    jsonl_reader in;
    if (offline_open_events(&in, cli_str(&a, "events")) < 0) {
        cli_free(&a);
        return EXIT_USAGE;
    }
    offline o;
    offline_opts oo = {.settings = cli_str(&a, "settings"),
                       .lookups = cli_str(&a, "lookups"),
                       .now = cli_str(&a, "now"),
                       .guards = cli_bool(&a, "guards")};
    if (offline_open(&o, &oo) < 0) {
        jsonl_close(&in);
        cli_free(&a);
        return o.exit_code;
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
