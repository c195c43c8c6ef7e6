/* command: the Gong update commands the engine decides (interfaces.md, "Commands") and their JSON
 * form. A command points into the engine's state and the settings; it is valid until the next
 * engine call, so encoders run right after each decision. */
#ifndef PROVISIONER_COMMAND_H
#define PROVISIONER_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "util/util.h"
#include "value/value.h"

/* In the order of R5.7 for one user (COMPANY_SETTINGS stands apart). */
typedef enum {
    CMD_CREATE_USER = 0,
    CMD_REACTIVATE_USER,
    CMD_UPDATE_USER,
    CMD_APPLY_SETTINGS,
    CMD_SET_MANAGER,
    CMD_NOTIFY_MANAGER,
    CMD_DEACTIVATE_USER,
    CMD_COMPANY_SETTINGS,
    CMD__COUNT
} command_type;

const char *command_type_name(command_type t);

/* The ten attributes of R2.1, in the order commands list them. */
typedef enum {
    ATTR_EMAIL = 0,
    ATTR_FIRSTNAME,
    ATTR_LASTNAME,
    ATTR_TITLE,
    ATTR_PHONE,
    ATTR_MOBILE,
    ATTR_EXTENSION,
    ATTR_ACTIVE,
    ATTR_TIMEZONE,
    ATTR_LOCALE,
    ATTR__COUNT
} command_attr;

#define ATTR_ALL ((1u << ATTR__COUNT) - 1)

extern const char *const command_attr_gong[ATTR__COUNT]; /* emailaddress, firstname, ... */
extern const char *const command_attr_sf[ATTR__COUNT];   /* Email, FirstName, ... */

/* Where the deciding event came from (interfaces.md: topic, partition, offset, replay id,
 * transaction key, sequence number, commit number). */
typedef struct command_source {
    const char *topic; /* NULL outside Kafka */
    int32_t partition;
    int64_t offset;
    const char *replay_id;
    const char *transaction_key;
    int64_t sequence_number;
    int64_t commit_number;
    int64_t commit_timestamp;
} command_source;

typedef struct command {
    command_type type;
    char id[33]; /* 32 hex digits, R9.1 */
    const char *sf_user_id;
    unsigned attr_mask; /* attributes in `user`; 0: no `user` key */
    value_t attrs[ATTR__COUNT];
    const cfg_assignment *assignment; /* `assignment` (and `settings` when with_settings) */
    bool with_settings;
    bool with_manager;            /* has `manager_sf_user_id` */
    const char *manager_id;       /* NULL: JSON null */
    const char *reason;           /* DEACTIVATE_USER: an R3 code */
    bool company_toggle;          /* COMPANY_SETTINGS: managers_can_toggle_data_capture */
    const command_source *source; /* NULL: no `source` key */
    const char *why;              /* NULL: no `why` key */
} command;

/* One JSON object, no newline: command_id, type, sf_user_id, then the type's keys, source, why. */
void command_to_json(const command *c, buf *out);
/* The `settings` object of an assignment (R7.1). */
void command_settings_json(const cfg_assignment *a, buf *out);

#endif
