/* provisioner check-config FILE: loads the settings as the service would (YAML, schema and every
 * filter) and prints what it understood, so an admin can compare it with what they meant. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config/config.h"
#include "event/event.h"
#include "lookup/lookup.h"

static void say_warning(void *ctx, const char *msg) { fprintf(ctx, "warning: %s\n", msg); }

void cmd_filter_field_hints(const config *c, FILE *out)
{
    config_field_hints(c, event_layout_default(), say_warning, out);
}

static void check_config_list(buf *b, const char *label, const char *const *items, size_t n)
{
    buf_printf(b, "%s", label);
    if (n == 0) buf_puts(b, "none");
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s%s", i ? ", " : "", items[i]);
    buf_putc(b, '\n');
}

static void check_config_guards(buf *b, const cfg_guards *g)
{
    if (!g->enabled) {
        buf_puts(b, "guards: none (deactivations are never held back)\n");
        return;
    }
    if (g->max_deactivations < 0 && g->max_deactivation_share < 0) {
        buf_puts(b, "guards: section present but no limit set (deactivations are never held "
                    "back)\n");
        return;
    }
    buf_puts(b, "guards: hold deactivations beyond ");
    if (g->max_deactivations >= 0) buf_printf(b, "%ld users", g->max_deactivations);
    if (g->max_deactivations >= 0 && g->max_deactivation_share >= 0) buf_puts(b, " or ");
    if (g->max_deactivation_share >= 0)
        buf_printf(b, "%g%% of provisioned users", g->max_deactivation_share * 100.0);
    buf_printf(b, ", per reimport or per %ld-second window, until confirmed\n", g->window_seconds);
}

static void check_config_summary(const config *c, buf *b)
{
    buf_printf(b, "%s: valid\n", c->path);
    buf_printf(b, "primary domain: %s\n", c->primary_domain);
    check_config_list(b, "additional domains: ", (const char *const *)c->additional_domains,
                      c->n_additional_domains);

    const char *on[5];
    size_t n_on = 0;
    if (c->ignore_org_structure) on[n_on++] = "ignore_org_structure";
    if (c->keep_active) on[n_on++] = "keep_active";
    if (c->convert_email_domain) on[n_on++] = "convert_email_domain";
    if (c->notify_managers) on[n_on++] = "notify_managers";
    if (c->managers_can_toggle_data_capture) on[n_on++] = "managers_can_toggle_data_capture";
    check_config_list(b, "options on: ", on, n_on);

    if (c->n_assignments == 0)
        buf_puts(b, "assignments: none (nobody is in scope)\n");
    else
        buf_printf(b, "assignments (%zu, the first match wins):\n", c->n_assignments);
    for (size_t i = 0; i < c->n_assignments; i++) {
        const cfg_assignment *a = &c->assignments[i];
        buf_printf(b, "  %zu. %s (update mode: %s)\n", i + 1, a->name,
                   a->mode == UPDATE_MANUAL ? "manual" : "automatic");
        if (a->filter_text[0])
            buf_printf(b, "     filter: %s\n", a->filter_text);
        else
            buf_puts(b, "     filter: none (matches everyone)\n");
        check_config_list(b, "     seats: ", (const char *const *)a->seats, a->n_seats);
        buf_puts(b, "     workspaces: ");
        if (a->n_workspaces == 0) buf_puts(b, "none");
        for (size_t j = 0; j < a->n_workspaces; j++)
            buf_printf(b, "%s%s (%s)", j ? ", " : "", a->workspaces[j].workspace,
                       a->workspaces[j].permission_profile);
        buf_putc(b, '\n');
        const char *dc[4];
        size_t n_dc = 0;
        if (a->data_capture.web_conferences) dc[n_dc++] = "web_conferences";
        if (a->data_capture.telephony) dc[n_dc++] = "telephony";
        if (a->data_capture.emails) dc[n_dc++] = "emails";
        if (a->data_capture.calendar) dc[n_dc++] = "calendar";
        check_config_list(b, "     data capture on: ", dc, n_dc);
    }
    lookup *lk = lookup_new(c);
    if (lookup_needed(lk)) { /* R4.3: what `run` will need from Salesforce */
        buf_puts(b, "look-ups: ");
        lookup_describe(lk, b);
        buf_puts(b, ", read from Salesforce (run needs --salesforce-url; simulate --lookups)\n");
    }
    lookup_free(lk);
    check_config_guards(b, &c->guards);
}

static bool check_config_flag_given(const cli_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->table[i].name, "settings") == 0)
            return a->sources[i] && strcmp(a->sources[i], "flag") == 0 && a->vals[i];
    return false;
}

int cmd_check_config(int argc, char **argv)
{
    static const char usage[] = "provisioner check-config FILE";
    static const char summary[] =
        "Validates a settings file (FILE, or --settings FILE): its YAML, every key and value,\n"
        "and every assignment's filter. Prints a summary and exits 0, or prints the first\n"
        "problem with its line and column and exits 2.";
    cli_args args;
    int code = EXIT_OK;
    if (cmd_parse(C_CHECK_CONFIG, usage, summary, argc, argv, &args, &code) < 0) return code;

    const char *path = cli_str(&args, "settings");
    if (args.n_positional > 1) {
        fprintf(stderr, "provisioner: check-config takes one settings file, got %zu\n",
                args.n_positional);
        cli_free(&args);
        return EXIT_USAGE;
    }
    if (args.n_positional == 1) {
        /* PROVISIONER_SETTINGS is the service's file; the one named here is the one to check.
         * A --settings flag naming another file is a typo we refuse to guess about. */
        if (check_config_flag_given(&args) && strcmp(path, args.positional[0]) != 0) {
            fprintf(stderr, "provisioner: check-config: two settings files given (%s and %s)\n",
                    args.positional[0], path);
            cli_free(&args);
            return EXIT_USAGE;
        }
        path = args.positional[0];
    }
    if (!path || !*path) {
        fprintf(stderr, "provisioner: check-config: no settings file given (usage: %s)\n", usage);
        cli_free(&args);
        return EXIT_USAGE;
    }

    config *c = NULL;
    perr err;
    err.msg[0] = '\0';
    if (config_load_file(path, &c, &err) < 0) {
        fprintf(stderr, "provisioner: %s\n", err.msg);
        cli_free(&args);
        return EXIT_USAGE;
    }
    buf b;
    buf_init(&b);
    check_config_summary(c, &b);
    cmd_write_stdout(b.data, b.len);
    cmd_filter_field_hints(c, stderr);
    buf_free(&b);
    config_free(c);
    cli_free(&args);
    return EXIT_OK;
}
