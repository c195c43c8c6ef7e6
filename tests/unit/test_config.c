/* The settings loader (interfaces.md "Settings file"; R4.2, R4.3, R8.3) and `check-config`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"

#define BASE "company:\n  primary_domain: acme.com\n" /* lines 1-2 */

static config *load_ok(const char *yaml)
{
    config *c = NULL;
    perr e = {{0}};
    int rc = config_load_string(yaml, strlen(yaml), "settings.yaml", &c, &e);
    cr_assert_eq(rc, 0, "expected the settings to load, got: %s", e.msg);
    cr_assert_not_null(c);
    return c;
}

static void load_err(const char *yaml, const char *want)
{
    config *c = (config *)1;
    perr e = {{0}};
    int rc = config_load_string(yaml, strlen(yaml), "settings.yaml", &c, &e);
    cr_assert_eq(rc, -1, "expected an error: %s", want);
    cr_assert_null(c);
    cr_assert_str_eq(e.msg, want);
}

/* For messages that end in text owned by another component (the SOQL parser, libyaml). */
static void load_err_prefix(const char *yaml, const char *prefix)
{
    config *c = NULL;
    perr e = {{0}};
    int rc = config_load_string(yaml, strlen(yaml), "settings.yaml", &c, &e);
    cr_assert_eq(rc, -1, "expected an error starting %s", prefix);
    cr_assert(strncmp(e.msg, prefix, strlen(prefix)) == 0, "message '%s' does not start '%s'",
              e.msg, prefix);
}

/* ---- good settings */

Test(config_good, interfaces_example_loads_every_field)
{
    config *c = load_ok("company:\n"
                        "  primary_domain: acme.com\n"
                        "  additional_domains: [acme.io]\n"
                        "options:\n"
                        "  ignore_org_structure: false\n"
                        "  keep_active: true\n"
                        "  convert_email_domain: false\n"
                        "  notify_managers: true\n"
                        "  managers_can_toggle_data_capture: false\n"
                        "assignments:\n"
                        "  - name: Sales\n"
                        "    filter: \"Department = 'Sales'\"\n"
                        "    seats: [recorder]\n"
                        "    workspaces:\n"
                        "      - workspace: Sales\n"
                        "        permission_profile: Rep\n"
                        "    data_capture:\n"
                        "      web_conferences: true\n"
                        "      telephony: true\n"
                        "      emails: false\n"
                        "      calendar: false\n"
                        "    update_mode: automatic\n"
                        "guards:\n"
                        "  max_deactivations: 50\n"
                        "  max_deactivation_share: 0.10\n"
                        "  window_seconds: 3600\n");
    cr_assert_str_eq(c->path, "settings.yaml");
    cr_assert_str_eq(c->primary_domain, "acme.com");
    cr_assert_eq(c->n_additional_domains, 1);
    cr_assert_str_eq(c->additional_domains[0], "acme.io");
    cr_assert(!c->ignore_org_structure && c->keep_active && !c->convert_email_domain);
    cr_assert(c->notify_managers && !c->managers_can_toggle_data_capture);
    cr_assert_eq(c->n_assignments, 1);
    cfg_assignment *a = &c->assignments[0];
    cr_assert_str_eq(a->name, "Sales");
    cr_assert_str_eq(a->filter_text, "Department = 'Sales'");
    cr_assert_not_null(a->filter);
    cr_assert_eq(a->line, 11);
    cr_assert_eq(a->n_seats, 1);
    cr_assert_str_eq(a->seats[0], "recorder");
    cr_assert_eq(a->n_workspaces, 1);
    cr_assert_str_eq(a->workspaces[0].workspace, "Sales");
    cr_assert_str_eq(a->workspaces[0].permission_profile, "Rep");
    cr_assert(a->data_capture.web_conferences && a->data_capture.telephony);
    cr_assert(!a->data_capture.emails && !a->data_capture.calendar);
    cr_assert_eq(a->mode, UPDATE_AUTOMATIC);
    cr_assert(c->guards.enabled);
    cr_assert_eq(c->guards.max_deactivations, 50);
    cr_assert_float_eq(c->guards.max_deactivation_share, 0.10, 1e-12);
    cr_assert_eq(c->guards.window_seconds, 3600);
    config_free(c);
}

Test(config_good, minimal_file_gets_the_defaults)
{
    config *c = load_ok(BASE);
    cr_assert_eq(c->n_additional_domains, 0);
    cr_assert(!c->ignore_org_structure && !c->keep_active && !c->convert_email_domain);
    cr_assert(!c->notify_managers && !c->managers_can_toggle_data_capture);
    cr_assert_eq(c->n_assignments, 0, "no assignments: nobody is in scope");
    cr_assert(!c->guards.enabled, "no guards section: no guard applies");
    cr_assert_eq(c->guards.max_deactivations, -1);
    cr_assert_lt(c->guards.max_deactivation_share, 0.0);
    cr_assert_eq(c->guards.window_seconds, 3600);
    config_free(c);
}

Test(config_good, assignment_defaults)
{
    config *c = load_ok(BASE "assignments:\n"
                             "  - name: Everyone\n");
    cr_assert_eq(c->n_assignments, 1);
    cfg_assignment *a = &c->assignments[0];
    cr_assert_str_eq(a->filter_text, "");
    cr_assert_not_null(a->filter, "an empty filter still compiles (to match everyone)");
    cr_assert_eq(a->n_seats, 0);
    cr_assert_eq(a->n_workspaces, 0);
    cr_assert(!a->data_capture.web_conferences && !a->data_capture.telephony &&
              !a->data_capture.emails && !a->data_capture.calendar);
    cr_assert_eq(a->mode, UPDATE_AUTOMATIC);
    cr_assert_eq(a->line, 4);
    config_free(c);
}

Test(config_good, domains_are_lower_cased)
{
    config *c = load_ok("company:\n"
                        "  primary_domain: ACME.Com\n"
                        "  additional_domains:\n"
                        "    - Acme.IO\n"
                        "    - acme-labs.co.uk\n");
    cr_assert_str_eq(c->primary_domain, "acme.com");
    cr_assert_eq(c->n_additional_domains, 2);
    cr_assert_str_eq(c->additional_domains[0], "acme.io");
    cr_assert_str_eq(c->additional_domains[1], "acme-labs.co.uk");
    config_free(c);
}

Test(config_good, yaml_core_booleans_in_every_spelling)
{
    config *c = load_ok(BASE "options:\n"
                             "  ignore_org_structure: True\n"
                             "  keep_active: TRUE\n"
                             "  convert_email_domain: true\n"
                             "  notify_managers: FALSE\n"
                             "  managers_can_toggle_data_capture: False\n");
    cr_assert(c->ignore_org_structure && c->keep_active && c->convert_email_domain);
    cr_assert(!c->notify_managers && !c->managers_can_toggle_data_capture);
    config_free(c);
}

Test(config_good, empty_sections_mean_defaults)
{
    /* Every line of a section commented out leaves the key with an empty value. */
    config *c = load_ok("company:\n"
                        "  primary_domain: acme.com\n"
                        "  additional_domains:\n"
                        "options:\n"
                        "  # keep_active: true\n"
                        "assignments:\n"
                        "guards:\n");
    cr_assert_eq(c->n_additional_domains, 0);
    cr_assert(!c->keep_active);
    cr_assert_eq(c->n_assignments, 0);
    cr_assert(!c->guards.enabled);
    config_free(c);
}

Test(config_good, assignments_keep_their_order_and_lines)
{
    config *c = load_ok(BASE "assignments:\n"
                             "  - name: First\n"
                             "    filter: \"Department = 'Sales'\"\n"
                             "  - name: Second\n"
                             "    update_mode: manual\n"
                             "  - name: Third\n"
                             "    update_mode: Manual\n");
    cr_assert_eq(c->n_assignments, 3);
    cr_assert_str_eq(c->assignments[0].name, "First");
    cr_assert_str_eq(c->assignments[1].name, "Second");
    cr_assert_str_eq(c->assignments[2].name, "Third");
    cr_assert_eq(c->assignments[0].line, 4);
    cr_assert_eq(c->assignments[1].line, 6);
    cr_assert_eq(c->assignments[2].line, 8);
    cr_assert_eq(c->assignments[0].mode, UPDATE_AUTOMATIC);
    cr_assert_eq(c->assignments[1].mode, UPDATE_MANUAL);
    cr_assert_eq(c->assignments[2].mode, UPDATE_MANUAL);
    cr_assert_eq(config_assignment_index(c, "Second"), 1);
    cr_assert_eq(config_assignment_index(c, "Third"), 2);
    cr_assert_eq(config_assignment_index(c, "Nobody"), -1);
    config_free(c);
}

Test(config_good, guards_section_without_keys_sets_no_limit)
{
    config *c = load_ok(BASE "guards:\n"
                             "  max_deactivation_share: 0.25\n");
    cr_assert(c->guards.enabled);
    cr_assert_eq(c->guards.max_deactivations, -1);
    cr_assert_float_eq(c->guards.max_deactivation_share, 0.25, 1e-12);
    cr_assert_eq(c->guards.window_seconds, 3600);
    config_free(c);

    c = load_ok(BASE "guards: {max_deactivations: 0, window_seconds: 60}\n");
    cr_assert(c->guards.enabled);
    cr_assert_eq(c->guards.max_deactivations, 0);
    cr_assert_lt(c->guards.max_deactivation_share, 0.0);
    cr_assert_eq(c->guards.window_seconds, 60);
    config_free(c);

    c = load_ok(BASE "guards: {max_deactivation_share: 1}\n");
    cr_assert_float_eq(c->guards.max_deactivation_share, 1.0, 1e-12);
    config_free(c);
}

Test(config_good, flow_style_and_quoted_values)
{
    config *c = load_ok("{company: {primary_domain: 'acme.com', additional_domains: []},\n"
                        " assignments: [{name: \"Sales: EMEA\", seats: ['recorder', viewer],\n"
                        "   data_capture: {emails: \"true\"}}]}\n");
    cr_assert_eq(c->n_assignments, 1);
    cr_assert_str_eq(c->assignments[0].name, "Sales: EMEA");
    cr_assert_eq(c->assignments[0].n_seats, 2);
    cr_assert_str_eq(c->assignments[0].seats[1], "viewer");
    cr_assert(c->assignments[0].data_capture.emails);
    config_free(c);
}

Test(config_good, anchors_and_aliases_share_settings)
{
    config *c = load_ok(BASE "assignments:\n"
                             "  - name: A\n"
                             "    data_capture: &all {web_conferences: true, telephony: true}\n"
                             "    seats: &seats [recorder]\n"
                             "  - name: B\n"
                             "    data_capture: *all\n"
                             "    seats: *seats\n");
    cr_assert(c->assignments[1].data_capture.web_conferences);
    cr_assert(c->assignments[1].data_capture.telephony);
    cr_assert_str_eq(c->assignments[1].seats[0], "recorder");
    config_free(c);
}

Test(config_good, filters_with_and_without_where)
{
    config *c = load_ok(BASE "assignments:\n"
                             "  - name: A\n"
                             "    filter: WHERE Department = 'Sales'\n"
                             "  - name: B\n"
                             "    filter: \"Department IN ('Customer Success', 'Support')\"\n"
                             "  - name: C\n"
                             "    filter: \"\"\n");
    cr_assert_str_eq(c->assignments[0].filter_text, "WHERE Department = 'Sales'");
    cr_assert_not_null(c->assignments[1].filter);
    cr_assert_str_eq(c->assignments[2].filter_text, "");
    cr_assert_not_null(c->assignments[2].filter);
    config_free(c);
}

/* ---- YAML-level errors */

Test(config_bad, empty_input)
{
    load_err("", "settings.yaml:1:1: empty settings file: expected a mapping with company "
                 "(primary_domain is required), options, assignments and guards");
    load_err("# only a comment\n\n",
             "settings.yaml:1:1: empty settings file: expected a mapping with company "
             "(primary_domain is required), options, assignments and guards");
}

Test(config_bad, yaml_syntax_error_has_libyaml_position)
{
    load_err("company:\n  primary_domain: acme.com\n bad: [\n",
             "settings.yaml:3:2: invalid YAML: did not find expected key (while parsing a block "
             "mapping that starts at 1:1); check the indentation, and that a quoted value ends "
             "with its quote (a filter with 'text' in it goes in double quotes: filter: "
             "\"Department = 'Sales'\")");
    load_err("company:\n  primary_domain: acme.com\n   keep_active: true\n",
             "settings.yaml:3:15: invalid YAML: mapping values are not allowed in this context; a "
             "key indented deeper than the keys beside it, or a value holding ': ' that needs "
             "quotes");
    /* a quote left open is named where it opens, not at the end of the file */
    load_err("company:\n  primary_domain: \"acme.com\n",
             "settings.yaml:2:19: invalid YAML: the quoted value that starts here has no closing "
             "quote (inside '...' a quote is written '')");
    /* libyaml's words for a tab do not say tab: the message does */
    load_err("company:\n\tprimary_domain: acme.com\n",
             "settings.yaml:2:1: invalid YAML: found character that cannot start any token "
             "(while scanning for the next token that starts at 2:1); a tab: YAML indents with "
             "spaces only");
    /* libyaml's mark counts characters: found in bytes after multi-byte ones too */
    load_err("# \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\ncompany:\n\tprimary_domain: acme.com\n",
             "settings.yaml:3:1: invalid YAML: found character that cannot start any token "
             "(while scanning for the next token that starts at 3:1); a tab: YAML indents with "
             "spaces only");
}

Test(config_bad, invalid_utf8_is_reported_with_its_position)
{
    load_err_prefix(BASE "options: {keep_active: tr\xc3ue}\n", "settings.yaml:3:");
}

Test(config_bad, root_must_be_a_mapping)
{
    load_err("- company\n", "settings.yaml:1:1: expected a mapping at the top level (company, "
                            "options, assignments, guards), found a list");
    load_err("acme.com\n", "settings.yaml:1:1: expected a mapping at the top level (company, "
                           "options, assignments, guards), found 'acme.com'");
}

Test(config_bad, more_than_one_document)
{
    load_err(BASE "---\n" BASE,
             "settings.yaml:3:1: more than one YAML document: a settings file holds one");
}

Test(config_bad, duplicate_keys_at_each_level)
{
    load_err(BASE "company:\n  primary_domain: b.com\n",
             "settings.yaml:3:1: duplicate key 'company' at the top level (first at line 1)");
    load_err("company:\n  primary_domain: acme.com\n  primary_domain: acme.io\n",
             "settings.yaml:3:3: duplicate key 'primary_domain' in company (first at line 2)");
    load_err(BASE "assignments:\n  - name: Sales\n    seats: [a]\n    seats: [b]\n",
             "settings.yaml:6:5: duplicate key 'seats' in assignment 'Sales' (first at line 5)");
    /* a second assignment whose '- ' was left out */
    load_err(BASE "assignments:\n  - name: Sales\n    seats: [a]\n    name: CS\n",
             "settings.yaml:6:5: duplicate key 'name' in assignment 'Sales' (first at line 4); a "
             "new assignment starts with '- '");
}

Test(config_bad, unsupported_tag_and_dangling_alias)
{
    load_err("company: !custom {primary_domain: acme.com}\n",
             "settings.yaml:1:10: unsupported YAML tag '!custom'");
    load_err(BASE "assignments:\n  - name: A\n    seats: *nothing\n",
             "settings.yaml:5:12: alias '*nothing' does not name a complete node defined before "
             "it");
    load_err("x: &a [*a]\n",
             "settings.yaml:1:8: alias '*a' does not name a complete node defined before it");
}

Test(config_bad, deep_nesting_is_refused_not_crashed_on)
{
    char deep[300];
    memset(deep, '[', 200);
    memcpy(deep + 200, "\n", 2);
    load_err(deep, "settings.yaml:1:65: nested more than 64 levels deep");
}

Test(config_bad, nul_inside_a_value)
{
    load_err(BASE "assignments:\n  - name: \"Sa\\0les\"\n",
             "settings.yaml:4:11: a value holds a NUL character");
}

/* ---- unknown keys, at every level */

Test(config_unknown, top_level)
{
    load_err(BASE "compnay: x\n",
             "settings.yaml:3:1: unknown key 'compnay' at the top level (did you mean 'company'?)");
    load_err(BASE "kafka:\n  brokers: x\n",
             "settings.yaml:3:1: unknown key 'kafka' at the top level (expected one of: company, "
             "options, assignments, guards)");
}

Test(config_unknown, in_company_and_options)
{
    load_err("company:\n  primary_domain: acme.com\n  domains: [a.io]\n",
             "settings.yaml:3:3: unknown key 'domains' in company (expected one of: "
             "primary_domain, additional_domains)");
    load_err(BASE "options:\n  keep_actve: true\n",
             "settings.yaml:4:3: unknown key 'keep_actve' in options (did you mean "
             "'keep_active'?)");
}

Test(config_unknown, in_assignment_named_even_when_name_comes_later)
{
    load_err(BASE "assignments:\n  - filtr: \"Department = 'Sales'\"\n    name: Sales\n",
             "settings.yaml:4:5: unknown key 'filtr' in assignment 'Sales' (did you mean "
             "'filter'?)");
    load_err(BASE "assignments:\n  - name: Sales\n  - colour: red\n",
             "settings.yaml:5:5: unknown key 'colour' in assignment 2 (expected one of: name, "
             "filter, seats, workspaces, data_capture, update_mode)");
}

Test(config_unknown, in_workspaces_data_capture_and_guards)
{
    load_err(BASE "assignments:\n  - name: Sales\n    workspaces:\n"
                  "      - workspace: Sales\n        profile: Rep\n",
             "settings.yaml:7:9: unknown key 'profile' in assignment 'Sales' workspaces entry 1 "
             "(expected one of: workspace, permission_profile)");
    load_err(BASE "assignments:\n  - name: Sales\n    data_capture:\n      email: true\n",
             "settings.yaml:6:7: unknown key 'email' in assignment 'Sales' data_capture (did you "
             "mean 'emails'?)");
    load_err(BASE "guards:\n  max_deactivation: 5\n",
             "settings.yaml:4:3: unknown key 'max_deactivation' in guards (did you mean "
             "'max_deactivations'?)");
}

Test(config_unknown, merge_keys_are_named)
{
    load_err(BASE "options:\n  <<: {keep_active: true}\n",
             "settings.yaml:4:3: unknown key '<<' in options (YAML merge keys are not supported)");
}

/* ---- wrong types */

Test(config_types, sections_of_the_wrong_shape)
{
    load_err("company:\n  - acme.com\n", "settings.yaml:2:3: company: expected a mapping "
                                         "(primary_domain, additional_domains), found a list");
    load_err(BASE "options: [keep_active]\n",
             "settings.yaml:3:10: options: expected a mapping of options to true or false, found "
             "a list");
    load_err(BASE "assignments:\n  name: Sales\n",
             "settings.yaml:4:3: assignments: expected a list of assignments (- name: ...), found "
             "a mapping");
    load_err(BASE "assignments:\n  - Sales\n",
             "settings.yaml:4:5: assignments: entry 1: expected a mapping (name, filter, seats, "
             "workspaces, data_capture, update_mode), found 'Sales'");
    load_err(BASE "guards: 50\n", "settings.yaml:3:9: guards: expected a mapping "
                                  "(max_deactivations, max_deactivation_share, window_seconds), "
                                  "found '50'");
}

Test(config_types, ambiguous_booleans_are_rejected)
{
    load_err(BASE "options:\n  keep_active: yes\n",
             "settings.yaml:4:16: options.keep_active: expected true or false, found 'yes' "
             "(yes/no/on/off mean different things to different YAML readers: write true or "
             "false)");
    load_err(BASE "assignments:\n  - name: S\n    data_capture:\n      telephony: Off\n",
             "settings.yaml:6:18: assignment 'S': data_capture.telephony: expected true or false, "
             "found 'Off' (yes/no/on/off mean different things to different YAML readers: write "
             "true or false)");
    load_err(BASE "options:\n  notify_managers: 1\n",
             "settings.yaml:4:20: options.notify_managers: expected true or false, found '1'");
    load_err(BASE "options:\n  notify_managers: [true]\n",
             "settings.yaml:4:20: options.notify_managers: expected true or false, found a list");
}

Test(config_types, seats_must_be_a_list_of_names)
{
    load_err(BASE "assignments:\n  - name: S\n    seats: recorder\n",
             "settings.yaml:5:12: assignment 'S': seats: expected a list of seat names (e.g. "
             "[recorder]), found 'recorder'");
    load_err(BASE "assignments:\n  - name: S\n    seats: [recorder, {x: 1}]\n",
             "settings.yaml:5:23: assignment 'S': seats: entry 2: expected a seat name, found a "
             "mapping");
    load_err(BASE "assignments:\n  - name: S\n    seats: [recorder, '']\n",
             "settings.yaml:5:23: assignment 'S': seats: entry 2: expected a seat name, found an "
             "empty name");
    load_err(BASE "assignments:\n  - name: S\n    seats: [recorder, recorder]\n",
             "settings.yaml:5:23: assignment 'S': seats: seat 'recorder' is listed twice");
}

Test(config_types, workspaces_need_workspace_and_permission_profile)
{
    load_err(BASE "assignments:\n  - name: S\n    workspaces:\n      - workspace: Sales\n",
             "settings.yaml:6:9: assignment 'S': workspaces: entry 1: missing "
             "permission_profile");
    load_err(BASE "assignments:\n  - name: S\n    workspaces:\n      - permission_profile: Rep\n",
             "settings.yaml:6:9: assignment 'S': workspaces: entry 1: missing workspace");
    load_err(BASE "assignments:\n  - name: S\n    workspaces: [Sales]\n",
             "settings.yaml:5:18: assignment 'S': workspaces: entry 1: expected a mapping with "
             "workspace and permission_profile, found 'Sales'");
    load_err(BASE "assignments:\n  - name: S\n    workspaces:\n      workspace: Sales\n",
             "settings.yaml:6:7: assignment 'S': workspaces: expected a list of {workspace, "
             "permission_profile} entries, found a mapping");
    load_err(BASE "assignments:\n  - name: S\n    workspaces:\n"
                  "      - {workspace: Sales, permission_profile: Rep}\n"
                  "      - {workspace: Sales, permission_profile: Manager}\n",
             "settings.yaml:7:9: assignment 'S': workspaces: entry 2: workspace 'Sales' is listed "
             "twice (first at line 6)");
}

Test(config_types, data_capture_must_be_a_mapping)
{
    load_err(BASE "assignments:\n  - name: S\n    data_capture: [emails]\n",
             "settings.yaml:5:19: assignment 'S': data_capture: expected a mapping of switches to "
             "true or false, found a list");
}

Test(config_types, additional_domains_must_be_a_list)
{
    load_err("company:\n  primary_domain: acme.com\n  additional_domains: acme.io\n",
             "settings.yaml:3:23: company.additional_domains: expected a list of domains (e.g. "
             "[acme.io]), found 'acme.io'");
}

/* ---- company */

Test(config_company, missing_primary_domain)
{
    load_err("options:\n  keep_active: true\n",
             "settings.yaml:1:1: missing company.primary_domain (the company's email domain, e.g. "
             "acme.com)");
    load_err("company:\n  additional_domains: [acme.io]\n",
             "settings.yaml:2:3: company: missing primary_domain (the company's email domain, "
             "e.g. acme.com)");
    load_err("company:\n", "settings.yaml:1:1: missing company.primary_domain (the company's email "
                           "domain, e.g. acme.com)");
}

Test(config_company, empty_primary_domain)
{
    load_err("company:\n  primary_domain: \"\"\n",
             "settings.yaml:2:19: company.primary_domain: must not be empty");
    load_err("company:\n  primary_domain:\n",
             "settings.yaml:2:3: company.primary_domain: must not be empty");
}

Test(config_company, invalid_domain_syntax)
{
    load_err("company:\n  primary_domain: bob@acme.com\n",
             "settings.yaml:2:19: company.primary_domain: 'bob@acme.com' is not a valid domain: "
             "write only the domain, without '@' (e.g. acme.com)");
    load_err("company:\n  primary_domain: acme corp.com\n",
             "settings.yaml:2:19: company.primary_domain: 'acme corp.com' is not a valid domain: "
             "a domain has no spaces");
    load_err("company:\n  primary_domain: acme\n",
             "settings.yaml:2:19: company.primary_domain: 'acme' is not a valid domain: expected "
             "a full domain such as acme.com");
    load_err("company:\n  primary_domain: acme..com\n",
             "settings.yaml:2:19: company.primary_domain: 'acme..com' is not a valid domain: a "
             "domain has no empty labels (two dots in a row, or a dot at an end)");
    load_err("company:\n  primary_domain: acme.com\n  additional_domains: [acme.io, -x.io]\n",
             "settings.yaml:3:33: company.additional_domains: entry 2: '-x.io' is not a valid "
             "domain: a domain label does not start or end with '-'");
}

/* ---- assignments */

Test(config_assignments, duplicate_names_ignore_case)
{
    load_err(BASE "assignments:\n  - name: Sales\n  - name: Support\n  - name: sales\n",
             "settings.yaml:6:11: duplicate assignment name 'sales' (first at line 4)");
}

Test(config_assignments, missing_or_empty_name)
{
    load_err(BASE "assignments:\n  - name: Sales\n  - filter: \"\"\n    seats: [recorder]\n",
             "settings.yaml:5:5: assignment 2: missing name (every assignment needs a unique "
             "name)");
    load_err(BASE "assignments:\n  - name:\n", "settings.yaml:4:5: assignment 1: name must not "
                                               "be empty");
    load_err(BASE "assignments:\n  - name: \"  \"\n",
             "settings.yaml:4:11: assignment 1: name must not be empty");
    load_err(BASE "assignments:\n  - name: [Sales]\n",
             "settings.yaml:4:11: assignment 1: name: expected a text, found a list");
}

Test(config_assignments, update_mode_is_automatic_or_manual)
{
    load_err(BASE "assignments:\n  - name: Sales\n    update_mode: auto\n",
             "settings.yaml:5:18: assignment 'Sales': update_mode: expected automatic or manual, "
             "found 'auto'");
}

/* ---- filters (R4.2, R4.3) */

Test(config_filters, parse_error_names_assignment_and_position)
{
    /* R4.2 "the position": the file's line and column of the place in the filter, which an
     * editor jumps to */
    load_err(BASE "assignments:\n  - name: Everyone\n  - name: Sales\n"
                  "    filter: \"Department = \"\n",
             "settings.yaml:6:26: assignment 'Sales': filter: expected a value after '=', found "
             "end of filter");
    load_err(BASE "assignments:\n  - name: Sales\n"
                  "    filter: Department = 'Sales' AND Title = 'VP' OR Title = 'CEO'\n",
             "settings.yaml:5:51: assignment 'Sales': filter: AND and OR cannot be mixed without "
             "parentheses");
}

Test(config_filters, block_scalar_filter_position)
{
    load_err(BASE "assignments:\n  - name: Sales\n    filter: >\n      Department ==\n",
             "settings.yaml:6:18: assignment 'Sales': filter: unknown operator '==' (SOQL compares "
             "with a single '=')");
}

Test(config_filters, multi_line_filter_error_names_its_line)
{
    load_err(BASE "assignments:\n  - name: Multi\n    filter: |\n      Department = 'Sales'\n"
                  "        AND Title = 'x'\n        AND Quota__c > > 5\n",
             "settings.yaml:8:24: assignment 'Multi': filter: expected a value after '>', found "
             "'>'");
}

Test(config_filters, error_position_undoes_quoting_escapes_and_folding)
{
    /* single quotes doubled inside a single-quoted scalar */
    load_err(BASE "assignments:\n  - name: A\n    filter: 'Name = ''it''s'' AND x = 1'\n",
             "settings.yaml:5:27: assignment 'A': filter: expected AND, OR or end of filter, "
             "found 's'");
    /* escapes in a double-quoted scalar, two of them several bytes in the value */
    load_err(BASE "assignments:\n  - name: A\n    filter: \"Name = '\\u00e9\\x41\\\"' ORR\"\n",
             "settings.yaml:5:36: assignment 'A': filter: expected AND, OR or end of filter, "
             "found 'ORR'");
    /* a plain scalar folded over lines, with an anchor and a tag before it */
    load_err(BASE "assignments:\n  - name: A\n    filter: &f !!str Name = 1\n      AND\n"
                  "      Title =\n",
             "settings.yaml:7:14: assignment 'A': filter: expected a value after '=', found end "
             "of filter");
}

Test(config_filters, supported_relationship_fields_load)
{
    /* R4.3: Profile, UserRole and Manager paths are resolved through look-ups */
    config *c = load_ok(BASE "assignments:\n  - name: Admins\n    filter: \"Profile.Name = 'System "
                             "Administrator' OR userrole.DeveloperName = 'CEO' OR "
                             "Manager.Email LIKE '%@acme.com'\"\n");
    cr_assert_eq(c->n_assignments, 1);
    config_free(c);
}

Test(config_filters, unsupported_relationship_field_is_rejected_at_load)
{
    load_err(BASE "assignments:\n  - name: Admins\n    filter: \"Account.Name = 'Acme'\"\n",
             "settings.yaml:5:14: assignment 'Admins': filter: relationship field "
             "'Account.Name' cannot be resolved here; use Profile.<field>, UserRole.<field> or "
             "Manager.<field> "
             "(R4.3)");
    load_err(BASE "assignments:\n  - name: Admins\n    filter: \"Title = 'VP' OR "
                  "Manager.Profile.Name = 'X'\"\n",
             "settings.yaml:5:30: assignment 'Admins': filter: relationship field "
             "'Manager.Profile.Name' cannot be resolved here; use Profile.<field>, "
             "UserRole.<field> or Manager.<field> (R4.3)");
}

Test(config_filters, filter_must_be_text)
{
    load_err(BASE "assignments:\n  - name: Sales\n    filter: [Department]\n",
             "settings.yaml:5:13: assignment 'Sales': filter: expected a SOQL condition as text, "
             "found a list");
}

/* ---- guards (R8.3) */

Test(config_guards, bounds)
{
    load_err(BASE "guards:\n  max_deactivations: -1\n",
             "settings.yaml:4:22: guards.max_deactivations: must be 0 or more, found -1");
    load_err(BASE "guards:\n  max_deactivations: 2.5\n",
             "settings.yaml:4:22: guards.max_deactivations: expected a whole number, found '2.5'");
    load_err(BASE "guards:\n  max_deactivations: 99999999999999999999999\n",
             "settings.yaml:4:22: guards.max_deactivations: '99999999999999999999999' is too "
             "large");
    load_err(BASE "guards:\n  max_deactivation_share: 1.5\n",
             "settings.yaml:4:27: guards.max_deactivation_share: must be between 0 and 1 (0.10 "
             "is 10% of provisioned users), found 1.5");
    load_err(BASE "guards:\n  max_deactivation_share: -0.1\n",
             "settings.yaml:4:27: guards.max_deactivation_share: must be between 0 and 1 (0.10 "
             "is 10% of provisioned users), found -0.1");
    load_err(BASE "guards:\n  max_deactivation_share: 10%\n",
             "settings.yaml:4:27: guards.max_deactivation_share: expected a number, found '10%' "
             "(write a share: 0.10 for 10%)");
    load_err(BASE "guards:\n  max_deactivation_share: .nan\n",
             "settings.yaml:4:27: guards.max_deactivation_share: expected a number, found '.nan'");
    load_err(BASE "guards:\n  window_seconds: 0\n",
             "settings.yaml:4:19: guards.window_seconds: must be more than 0, found 0");
    /* milliseconds of a longer window overflow (R8.3's arithmetic): refused, not wrapped */
    load_err(BASE "guards:\n  window_seconds: 9300000000000000\n",
             "settings.yaml:4:19: guards.window_seconds: must be at most 3153600000 (100 years), "
             "found 9300000000000000");
    load_err(BASE "guards:\n  window_seconds: hour\n",
             "settings.yaml:4:19: guards.window_seconds: expected a whole number, found 'hour'");
}

/* ---- robustness */

Test(config_robust, every_prefix_of_a_good_file_loads_or_fails_cleanly)
{
    static const char good[] = "company:\n  primary_domain: acme.com\n"
                               "  additional_domains: [acme.io, 'b.io']\n"
                               "options: {keep_active: true, notify_managers: false}\n"
                               "assignments:\n"
                               "  - name: \"Sales\"\n"
                               "    filter: \"Department = 'Sales'\"\n"
                               "    seats: [recorder]\n"
                               "    workspaces:\n"
                               "      - {workspace: Sales, permission_profile: Rep}\n"
                               "    data_capture: &dc {emails: true}\n"
                               "  - name: B\n    data_capture: *dc\n    update_mode: manual\n"
                               "guards: {max_deactivations: 5, max_deactivation_share: 0.5}\n";
    for (size_t n = 0; n <= sizeof good - 1; n++) {
        config *c = NULL;
        perr e = {{0}};
        if (config_load_string(good, n, "t.yaml", &c, &e) == 0)
            config_free(c);
        else
            cr_assert(strncmp(e.msg, "t.yaml:", 7) == 0, "prefix %zu: '%s'", n, e.msg);
    }
}

Test(config_robust, random_bytes_never_crash)
{
    static const char alphabet[] = "abc:- \n\t[]{},'\"&*!#|>%@?~.0123456789\\\x01\xc3\xa9\xff";
    unsigned seed = 12345;
    char text[200];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof text);
        for (size_t i = 0; i < n; i++)
            text[i] = alphabet[rand_r(&seed) % (int)(sizeof alphabet - 1)];
        config *c = NULL;
        perr e = {{0}};
        if (config_load_string(text, n, "r.yaml", &c, &e) == 0)
            config_free(c);
        else
            cr_assert(strncmp(e.msg, "r.yaml:", 7) == 0, "'%s'", e.msg);
    }
}

/* ---- files */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/pv_config_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void remove_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", tmpdir);
}

Test(config_file, loads_a_file_and_names_it_in_messages, .init = make_tmpdir, .fini = remove_tree)
{
    char path[128];
    snprintf(path, sizeof path, "%s/settings.yaml", tmpdir);
    write_file(path, BASE "assignments:\n  - name: S\n    filtr: x\n");
    config *c = NULL;
    perr e = {{0}};
    cr_assert_eq(config_load_file(path, &c, &e), -1);
    char want[256];
    snprintf(want, sizeof want,
             "%s:5:5: unknown key 'filtr' in assignment 'S' (did you mean "
             "'filter'?)",
             path);
    cr_assert_str_eq(e.msg, want);

    write_file(path, BASE);
    cr_assert_eq(config_load_file(path, &c, &e), 0, "%s", e.msg);
    cr_assert_str_eq(c->path, path);
    config_free(c);
}

Test(config_file, missing_file_and_directory, .init = make_tmpdir, .fini = remove_tree)
{
    char path[128];
    snprintf(path, sizeof path, "%s/nope.yaml", tmpdir);
    config *c = NULL;
    perr e = {{0}};
    cr_assert_eq(config_load_file(path, &c, &e), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: cannot read the settings file: No such file or directory",
             path);
    cr_assert_str_eq(e.msg, want);
    cr_assert_eq(config_load_file(tmpdir, &c, &e), -1);
    cr_assert_not_null(strstr(e.msg, "Is a directory"), "%s", e.msg);
}

static const char *example_path(char *out, size_t cap)
{
    const char *src = getenv("PV_SOURCE_DIR");
    if (src) {
        snprintf(out, cap, "%s/examples/settings.yaml", src);
    } else {
        /* __FILE__ is tests/unit/test_config.c under the source tree */
        snprintf(out, cap, "%s", __FILE__);
        char *cut = strstr(out, "tests/unit/test_config.c");
        if (!cut) return NULL;
        snprintf(cut, cap - (size_t)(cut - out), "examples/settings.yaml");
    }
    return out;
}

Test(config_file, bundled_example_is_valid)
{
    char path[1024];
    cr_assert_not_null(example_path(path, sizeof path));
    config *c = NULL;
    perr e = {{0}};
    cr_assert_eq(config_load_file(path, &c, &e), 0, "%s", e.msg);
    cr_assert_eq(c->n_assignments, 3);
    cr_assert(c->notify_managers);
    cr_assert_geq(c->n_additional_domains, 1);
    cr_assert(c->guards.enabled);
    cr_assert_eq(c->assignments[2].mode, UPDATE_MANUAL);
    config_free(c);
}

/* ---- the binary: provisioner check-config */

typedef struct run_result {
    int code;
    char out[8192], err[4096];
} run_result;

static void slurp(const char *path, char *dst, size_t cap)
{
    FILE *f = fopen(path, "r");
    dst[0] = '\0';
    if (!f) return;
    size_t n = fread(dst, 1, cap - 1, f);
    dst[n] = '\0';
    fclose(f);
}

/* Runs $PV_BINARY with args, stdout and stderr captured separately. */
static void run_binary(run_result *r, const char *const *args)
{
    const char *bin = getenv("PV_BINARY");
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("PROVISIONER_SETTINGS");
        char *argv[16];
        size_t n = 0;
        argv[n++] = (char *)bin;
        for (; args[n - 1] && n < 15; n++)
            argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
}

static void binary_init(void)
{
    if (!getenv("PV_BINARY")) cr_skip_test("PV_BINARY is not set (run under ctest)");
    make_tmpdir();
}

Test(check_config_cli, valid_example_prints_summary_and_exits_0, .init = binary_init,
     .fini = remove_tree)
{
    char path[1024];
    cr_assert_not_null(example_path(path, sizeof path));
    run_result r;
    run_binary(&r, (const char *const[]){"check-config", path, NULL});
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.out, "primary domain: acme.com"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "options on: notify_managers"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "1. Sales reps (update mode: automatic)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "3. Customer Success (update mode: manual)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "filter: Department IN ('Customer Success', 'Support')"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "guards: hold deactivations beyond 25 users or 10%"), "%s",
                       r.out);
    char *s1 = strstr(r.out, "Sales reps"), *s2 = strstr(r.out, "Sales leadership");
    cr_assert(s1 && s2 && s1 < s2, "assignments print in order");
}

Test(check_config_cli, settings_flag_works_too, .init = binary_init, .fini = remove_tree)
{
    char path[128];
    snprintf(path, sizeof path, "%s/s.yaml", tmpdir);
    write_file(path, BASE "assignments:\n  - name: Everyone\n");
    run_result r;
    run_binary(&r, (const char *const[]){"check-config", "--settings", path, NULL});
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.out, "filter: none (matches everyone)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "options on: none"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "guards: none"), "%s", r.out);
}

/* check-config over settings whose one assignment "VPs" has this filter (valid: exit 0). */
static void check_filter(run_result *r, const char *filter)
{
    char path[128], yaml[512];
    snprintf(path, sizeof path, "%s/s.yaml", tmpdir);
    snprintf(yaml, sizeof yaml, BASE "assignments:\n  - name: VPs\n    filter: \"%s\"\n", filter);
    write_file(path, yaml);
    run_binary(r, (const char *const[]){"check-config", path, NULL});
    cr_assert_eq(r->code, 0, "stderr: %s", r->err);
}

/* check_filter's stderr holds text. */
static void warned(const run_result *r, const char *text)
{
    cr_assert_not_null(strstr(r->err, text), "want: %s\nstderr: %s", text, r->err);
}

/* A field name one or two letters off a standard User field reads as null in every event: the
 * filter is valid SOQL, so a warning, not an error. Custom fields (__c) are the org's own. */
Test(check_config_cli, a_filter_field_that_looks_like_a_typo_is_warned_about, .init = binary_init,
     .fini = remove_tree)
{
    run_result r;
    check_filter(&r, "Departmnt = 'Sales' AND Manager.Titel = 'CEO' AND Regon__c = 'EMEA'");
    warned(&r, "warning: assignment 'VPs': the filter reads 'Departmnt', "
               "which is no User field of the event schema: did you mean "
               "'Department'?");
    warned(&r, "'Manager.Titel', which is no User field of the event "
               "schema: did you mean 'Title'?");
    cr_assert_null(strstr(r.err, "Regon__c"), "%s", r.err);
    /* valid, but a checkbox never equals 'yes' (Salesforce would refuse the query) */
    check_filter(&r, "Title = 'VP' AND IsActive = 'yes'");
    warned(&r, "warning: assignment 'VPs' (line ");
    warned(&r, "): filter, column 29: IsActive is a checkbox: compared with "
               "'yes', this condition is never true");
    check_filter(&r, "Department = 'Sales' AND Manager.Title = 'CEO' AND FirstName != null");
    cr_assert_str_eq(r.err, "");
}

/* R1.3: a compound field is kept as its parts, so `Name LIKE 'Olga %'` never matches (Salesforce
 * would compare the full name): valid SOQL, so a warning naming the parts. */
Test(check_config_cli, a_filter_on_a_compound_field_is_warned_about, .init = binary_init,
     .fini = remove_tree)
{
    run_result r;
    check_filter(&r, "name LIKE 'Olga %' OR Manager.Address = null");
    warned(&r, "warning: assignment 'VPs': the filter reads 'name', a "
               "compound field: events carry its parts, kept under their own "
               "names (R1.3), and 'Name' itself reads as null; filter on the "
               "parts (Salutation, FirstName, LastName)");
    warned(&r, "the filter reads 'Manager.Address', a compound field");
    check_filter(&r, "FirstName = 'Olga' AND Manager.City = 'Berlin'");
    cr_assert_str_eq(r.err, "");
}

Test(check_config_cli, invalid_settings_exit_2_with_the_message, .init = binary_init,
     .fini = remove_tree)
{
    char path[128];
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    write_file(path, BASE "options:\n  keep_active: on\n");
    run_result r;
    run_binary(&r, (const char *const[]){"check-config", path, NULL});
    cr_assert_eq(r.code, 2);
    char want[256];
    snprintf(want, sizeof want, "provisioner: %s:4:16: options.keep_active: expected true or false",
             path);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
}

Test(check_config_cli, missing_file_and_no_file_exit_2, .init = binary_init, .fini = remove_tree)
{
    run_result r;
    run_binary(&r, (const char *const[]){"check-config", "/nonexistent/settings.yaml", NULL});
    cr_assert_eq(r.code, 2);
    cr_assert_str_eq(r.err, "provisioner: /nonexistent/settings.yaml: cannot read the settings "
                            "file: No such file or directory\n");
    run_binary(&r, (const char *const[]){"check-config", NULL});
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "no settings file given"), "%s", r.err);
}
