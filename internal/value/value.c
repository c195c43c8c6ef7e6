#include "value.h"

#include "util/util.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

value_t value_str(const char *s) { return (value_t){.type = VAL_STR, .s = s, .len = strlen(s)}; }

bool value_eq(const value_t *a, const value_t *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case VAL_NULL: return true;
    case VAL_BOOL: return a->b == b->b;
    case VAL_NUM: return a->num == b->num;
    case VAL_STR: return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    }
    return false;
}

static bool has_prefix(const char *s, const char *p) { return strncasecmp(s, p, strlen(p)) == 0; }

bool value_field_is_boolean(const char *f)
{
    /* Field names are case-insensitive in SOQL. Is<Name> covers IsActive, IsProfilePhotoActive,
     * IsExtIndicatorVisible, ... of the standard fields only: a custom field's name says nothing
     * of its type (Island__c, ISO_Code__c), so a missing one is null (R3.4) */
    size_t n = strlen(f);
    if (n > 3 && strcasecmp(f + n - 3, "__c") == 0) return false;
    if (has_prefix(f, "Is") && isalpha((unsigned char)f[2])) return true;
    return has_prefix(f, "UserPermissions") || has_prefix(f, "UserPreferences") ||
           has_prefix(f, "EmailPreferences") || strcasecmp(f, "ReceivesInfoEmails") == 0 ||
           strcasecmp(f, "ReceivesAdminInfoEmails") == 0 || strcasecmp(f, "ForecastEnabled") == 0;
}

void value_to_json(const value_t *v, buf *b)
{
    switch (v->type) {
    case VAL_NULL: buf_puts(b, "null"); break;
    case VAL_BOOL: buf_puts(b, v->b ? "true" : "false"); break;
    case VAL_NUM:
        if (!isfinite(v->num))
            buf_puts(b, "null");
        else
            buf_put_double(b, v->num);
        break;
    case VAL_STR: buf_json_str(b, v->s, v->len); break;
    }
}
