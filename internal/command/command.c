#include "command.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[CMD__COUNT] = {
    "CREATE_USER", "REACTIVATE_USER", "UPDATE_USER",     "APPLY_SETTINGS",
    "SET_MANAGER", "NOTIFY_MANAGER",  "DEACTIVATE_USER", "COMPANY_SETTINGS",
};

const char *const command_attr_gong[ATTR__COUNT] = {
    "emailaddress",     "firstname",      "lastname", "title",        "phone_number",
    "cellphone_number", "phoneExtension", "active",   "usertimezone", "userlocale",
};

const char *const command_attr_sf[ATTR__COUNT] = {
    "Email",       "FirstName", "LastName", "Title",          "Phone",
    "MobilePhone", "Extension", "IsActive", "TimeZoneSidKey", "LocaleSidKey",
};

const char *command_type_name(command_type t)
{
    return (unsigned)t < CMD__COUNT ? type_names[t] : "UNKNOWN";
}

static void put_key(buf *b, const char *k)
{
    buf_putc(b, ',');
    buf_putc(b, '"');
    buf_puts(b, k);
    buf_puts(b, "\":");
}

static void put_str_or_null(buf *b, const char *s)
{
    if (s)
        buf_json_str(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

void command_settings_json(const cfg_assignment *a, buf *b)
{
    buf_puts(b, "{\"seats\":[");
    for (size_t i = 0; i < a->n_seats; i++) {
        if (i) buf_putc(b, ',');
        buf_json_str(b, a->seats[i], strlen(a->seats[i]));
    }
    buf_puts(b, "],\"workspaces\":[");
    for (size_t i = 0; i < a->n_workspaces; i++) {
        if (i) buf_putc(b, ',');
        buf_puts(b, "{\"workspace\":");
        put_str_or_null(b, a->workspaces[i].workspace);
        buf_puts(b, ",\"permission_profile\":");
        put_str_or_null(b, a->workspaces[i].permission_profile);
        buf_putc(b, '}');
    }
    const cfg_data_capture *d = &a->data_capture;
    buf_puts(b, "],\"data_capture\":{\"web_conferences\":");
    buf_puts(b, d->web_conferences ? "true" : "false");
    buf_puts(b, ",\"telephony\":");
    buf_puts(b, d->telephony ? "true" : "false");
    buf_puts(b, ",\"emails\":");
    buf_puts(b, d->emails ? "true" : "false");
    buf_puts(b, ",\"calendar\":");
    buf_puts(b, d->calendar ? "true" : "false");
    buf_puts(b, "}}");
}

void command_to_json(const command *c, buf *b)
{
    buf_puts(b, "{\"command_id\":");
    buf_json_str(b, c->id, strlen(c->id));
    buf_puts(b, ",\"type\":\"");
    buf_puts(b, command_type_name(c->type));
    buf_puts(b, "\",\"sf_user_id\":");
    put_str_or_null(b, c->sf_user_id ? c->sf_user_id : "");
    if (c->attr_mask) {
        put_key(b, "user");
        buf_putc(b, '{');
        bool first = true;
        for (int i = 0; i < ATTR__COUNT; i++) {
            if (!(c->attr_mask & (1u << i))) continue;
            if (!first) buf_putc(b, ',');
            first = false;
            buf_putc(b, '"');
            buf_puts(b, command_attr_gong[i]);
            buf_puts(b, "\":");
            value_to_json(&c->attrs[i], b);
        }
        buf_putc(b, '}');
    }
    if (c->assignment) {
        put_key(b, "assignment");
        put_str_or_null(b, c->assignment->name);
        if (c->with_settings) {
            put_key(b, "settings");
            command_settings_json(c->assignment, b);
        }
    }
    if (c->with_manager) {
        put_key(b, "manager_sf_user_id");
        put_str_or_null(b, c->manager_id);
    }
    if (c->reason) {
        put_key(b, "reason");
        put_str_or_null(b, c->reason);
    }
    if (c->type == CMD_COMPANY_SETTINGS) {
        put_key(b, "managers_can_toggle_data_capture");
        buf_puts(b, c->company_toggle ? "true" : "false");
    }
    if (c->source) {
        const command_source *s = c->source;
        put_key(b, "source");
        buf_puts(b, "{\"topic\":");
        put_str_or_null(b, s->topic);
        if (s->topic) {
            buf_puts(b, ",\"partition\":");
            buf_put_i64(b, s->partition);
            buf_puts(b, ",\"offset\":");
            buf_put_i64(b, s->offset);
        } else {
            buf_puts(b, ",\"partition\":null,\"offset\":null");
        }
        buf_puts(b, ",\"replay_id\":");
        put_str_or_null(b, s->replay_id);
        buf_puts(b, ",\"transaction_key\":");
        put_str_or_null(b, s->transaction_key);
        buf_puts(b, ",\"sequence_number\":");
        buf_put_i64(b, s->sequence_number);
        buf_puts(b, ",\"commit_number\":");
        buf_put_i64(b, s->commit_number);
        buf_puts(b, ",\"commit_timestamp\":");
        buf_put_i64(b, s->commit_timestamp);
        buf_putc(b, '}');
    }
    if (c->why) {
        put_key(b, "why");
        buf_json_str(b, c->why, strlen(c->why));
    }
    buf_putc(b, '}');
}
