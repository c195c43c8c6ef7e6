/* config: the admin's provisioning settings (interfaces.md, "Settings file"), loaded from YAML into
 * an immutable struct. Every filter is compiled at load (R4.2); any error names the file, line,
 * column and what was expected. */
#ifndef PROVISIONER_CONFIG_H
#define PROVISIONER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "event/event.h"
#include "soql/soql.h"
#include "util/util.h"

typedef enum { UPDATE_AUTOMATIC = 0, UPDATE_MANUAL = 1 } update_mode;

typedef struct cfg_workspace {
    char *workspace;
    char *permission_profile;
} cfg_workspace;

typedef struct cfg_data_capture {
    bool web_conferences, telephony, emails, calendar;
} cfg_data_capture;

typedef struct cfg_assignment {
    char *name;
    char *filter_text;   /* "" when absent */
    soql_filter *filter; /* compiled; matches everyone when filter_text is empty */
    int line;            /* line of the assignment in the file, for messages */
    char **seats;
    size_t n_seats;
    cfg_workspace *workspaces;
    size_t n_workspaces;
    cfg_data_capture data_capture;
    update_mode mode;
} cfg_assignment;

typedef struct cfg_guards {
    bool enabled;                  /* false when the file has no guards section: no guard applies */
    long max_deactivations;        /* -1 = no count limit */
    double max_deactivation_share; /* < 0 = no share limit */
    long window_seconds;
} cfg_guards;

typedef struct config {
    char *path; /* as given to config_load_file, or the name given to config_load_string */
    char *primary_domain;
    char **additional_domains;
    size_t n_additional_domains;
    bool ignore_org_structure;
    bool keep_active;
    bool convert_email_domain;
    bool notify_managers;
    bool managers_can_toggle_data_capture;
    cfg_assignment *assignments;
    size_t n_assignments;
    cfg_guards guards;
} config;

/* Returns 0 and a new config, or -1 with err->msg like
 *   "settings.yaml:12:5: unknown key 'filtr' in assignment 'Sales'"
 *   "settings.yaml:9:13: assignment 'Sales': filter: column 23: expected a value after '=',
 *    found ')'" */
int config_load_file(const char *path, config **out, perr *err);
int config_load_string(const char *yaml, size_t len, const char *name, config **out, perr *err);
void config_free(config *c);

/* Index of the assignment with that name, or -1. */
int config_assignment_index(const config *c, const char *name);

/* What valid filters say that the admin likely did not mean, against the event schema's fields:
 * a field one or two edits from a name of the schema and none of them ('Departmnt' for
 * 'Department'), which would read as null in every event; a condition no value of its field's
 * type can make true (IsActive = 'yes', soql_type_hints). say gets one plain-words message each.
 * Custom fields (__c) are the org's own and not checked for typos; Profile.* and UserRole.* name
 * other objects' fields; Manager.<field> is checked as a user field. */
void config_field_hints(const config *c, const event_layout *schema,
                        void (*say)(void *ctx, const char *msg), void *ctx);

#endif
