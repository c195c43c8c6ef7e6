/* config: the settings file is read in two steps. libyaml's event API builds a small tree of our
 * own (libyaml's document API would hide duplicate keys, quoting and where an alias points), then
 * the tree is checked against the schema of interfaces.md and copied into the immutable config.
 * The first problem found stops the load; its message starts FILE:LINE:COL. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* libyaml itself keeps its stacks on the heap, but nothing in a settings file is more than five
 * levels deep; the cap keeps a hostile file from growing ours without bound. */
#define CONFIG_MAX_DEPTH 64
#define CONFIG_MAX_FILE_BYTES (16L << 20)
#define CONFIG_DEFAULT_WINDOW 3600L
#define CONFIG_MAX_WINDOW 3153600000L /* 100 years, in seconds */

typedef enum { NODE_SCALAR, NODE_SEQ, NODE_MAP } node_kind;

typedef struct node node;
struct node {
    node_kind kind;
    int line, col; /* 1-based */
    char *text;    /* scalar value */
    size_t len;
    bool plain;  /* plain style and no explicit string tag: only these can be null */
    int style;   /* a scalar's yaml_scalar_style_t, for config_place */
    node **kids; /* sequence: items; mapping: key, value, key, value, ... */
    size_t n, cap;
    char *anchor; /* a collection's anchor, usable by aliases once the collection is complete */
};

typedef struct loader {
    const char *name;
    const char *src; /* the file's text, for config_place */
    size_t src_len;
    perr *err;
    node **all; /* every node, freed together: aliases share nodes */
    size_t n_all, cap_all;
    strmap anchors;
} loader;

/* ---- messages */

static int config_fail_at(loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int config_fail_at(loader *L, int line, int col, const char *fmt, ...)
{
    char msg[sizeof L->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return perr_set(L->err, "%s:%d:%d: %s", L->name, line, col, msg);
}

#define config_fail(L, n, ...) config_fail_at((L), (n)->line, (n)->col, __VA_ARGS__)

static bool config_is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Bytes of UTF-8 for a code point. */
static size_t config_utf8_len(unsigned long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* A double-quoted scalar's escape at s (s[0] == '\\'): its length in the file, and in *out the
 * bytes it stands for in the value. */
static size_t config_escape(const char *s, size_t avail, size_t *out)
{
    if (avail < 2) return 0;
    size_t digits = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : s[1] == 'U' ? 8 : 0;
    if (digits) {
        if (avail < 2 + digits) return 0;
        char hex[9];
        memcpy(hex, s + 2, digits);
        hex[digits] = '\0';
        *out = config_utf8_len(strtoul(hex, NULL, 16));
        return 2 + digits;
    }
    *out = s[1] == 'N' || s[1] == '_' ? 2 : s[1] == 'L' || s[1] == 'P' ? 3 : 1;
    return 2;
}

/* Where byte `at` of a scalar's value stands in the file, so that an error inside a filter names
 * the line and column an editor jumps to. The value's characters are matched in order against the
 * file's text from the scalar's start, blanks loosely, which undoes quoting, escapes, folding and
 * a block's indentation alike. False when the text does not match (a form this does not know):
 * the caller then names the scalar's start. */
static bool config_place(const loader *L, const node *n, size_t at, int *line, int *col)
{
    const char *src = L->src, *v = n->text;
    size_t len = L->src_len, j = 0;
    for (int l = 1; l < n->line; l++) {
        const char *nl = memchr(src + j, '\n', len - j);
        if (!nl) return false;
        j = (size_t)(nl - src) + 1;
    }
    for (int c = 1; c < n->col && j < len; c++) /* libyaml counts columns in code points */
        do
            j++;
        while (j < len && ((unsigned char)src[j] & 0xC0) == 0x80);
    size_t start = j;
    while (j < len && (src[j] == '&' || src[j] == '!')) { /* an anchor or a tag before the text */
        while (j < len && !config_is_space(src[j]))
            j++;
        while (j < len && (src[j] == ' ' || src[j] == '\t'))
            j++;
    }
    bool dq = n->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    bool sq = n->style == YAML_SINGLE_QUOTED_SCALAR_STYLE;
    if (dq || sq) {
        if (j >= len || src[j] != (dq ? '"' : '\'')) return false;
        j++;
    } else if (n->style == YAML_LITERAL_SCALAR_STYLE || n->style == YAML_FOLDED_SCALAR_STYLE) {
        const char *nl = memchr(src + j, '\n', len - j); /* past the header line: | or > ... */
        if (!nl) return false;
        j = (size_t)(nl - src) + 1;
    }
    size_t end = n->len; /* "end of filter" is named right after its last word */
    while (end > 0 && config_is_space(v[end - 1]))
        end--;
    if (at > end) at = end;
    for (size_t i = 0; i < at;) {
        if (dq && j + 1 < len && src[j] == '\\' && (src[j + 1] == '\n' || src[j + 1] == '\r')) {
            j += 2; /* an escaped line break stands for nothing */
            continue;
        }
        if (dq && j < len && src[j] == '\\') {
            size_t bytes = 0, step = config_escape(src + j, len - j, &bytes);
            if (!step) return false;
            i += bytes, j += step;
            continue;
        }
        if (config_is_space(v[i])) {
            if (j < len && config_is_space(src[j])) j++;
            i++;
            continue;
        }
        while (j < len && config_is_space(src[j]))
            j++;
        if (sq && j + 1 < len && src[j] == '\'' && src[j + 1] == '\'' && v[i] == '\'') {
            i++, j += 2;
            continue;
        }
        if (j >= len || src[j] != v[i]) return false;
        i++, j++;
    }
    if (at < n->len && !config_is_space(v[at]))
        while (j < len && config_is_space(src[j]))
            j++;
    *line = n->line, *col = n->col;
    for (size_t k = start; k < j; k++) {
        if (src[k] == '\n')
            ++*line, *col = 1;
        else if (((unsigned char)src[k] & 0xC0) != 0x80)
            ++*col;
    }
    return true;
}

/* Admin text shown inside messages: clipped, and with control characters masked, so a message
 * stays one readable line whatever the file holds. */
static const char *config_clip(const char *s, char *out, size_t cap)
{
    size_t max = cap > 4 ? cap - 4 : 0, i = 0;
    for (; s[i] && i < max; i++)
        out[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (s[i]) {
        while (i > 0 && ((unsigned char)out[i - 1] & 0xC0) == 0x80)
            i--; /* whole UTF-8 chars */
        if (i > 0 && (unsigned char)out[i - 1] >= 0xC0) i--;
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static bool config_is_null(const node *n)
{
    if (n->kind != NODE_SCALAR || !n->plain) return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* "a list", "a mapping", "an empty value" or the scalar itself in quotes. */
static const char *config_describe(const node *n, char *out, size_t cap)
{
    if (n->kind == NODE_SEQ) return "a list";
    if (n->kind == NODE_MAP) return "a mapping";
    if (config_is_null(n)) return "an empty value";
    char clip[72];
    snprintf(out, cap, "'%s'", config_clip(n->text, clip, sizeof clip));
    return out;
}

/* ---- the tree */

static node *config_node_new(loader *L, node_kind kind, const yaml_mark_t *m)
{
    node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = m->line < INT_MAX ? (int)m->line + 1 : INT_MAX;
    n->col = m->column < INT_MAX ? (int)m->column + 1 : INT_MAX;
    if (L->n_all == L->cap_all) {
        L->cap_all = L->cap_all ? L->cap_all * 2 : 64;
        L->all = xrealloc(L->all, L->cap_all * sizeof *L->all);
    }
    L->all[L->n_all++] = n;
    return n;
}

static void config_node_add(node *parent, node *kid)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->kids = xrealloc(parent->kids, parent->cap * sizeof *parent->kids);
    }
    parent->kids[parent->n++] = kid;
}

static void config_loader_free(loader *L)
{
    for (size_t i = 0; i < L->n_all; i++) {
        free(L->all[i]->text);
        free(L->all[i]->kids);
        free(L->all[i]->anchor);
        free(L->all[i]);
    }
    free(L->all);
    strmap_free(&L->anchors, NULL);
}

/* libyaml's reader errors carry a byte offset, not a mark. */
static void config_offset_to_mark(const char *s, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* The byte at a mark's line and column (columns count characters, as libyaml's marks do). */
static size_t config_mark_to_offset(const char *s, size_t len, int line, int col)
{
    size_t i = 0;
    for (int l = 1; l < line && i < len; i++)
        if (s[i] == '\n') l++;
    for (int c = 1; i < len && s[i] != '\n'; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
        if (c++ == col) break;
    }
    return i;
}

/* libyaml's problems in words of what an admin most likely did. */
static const char *config_yaml_hint(const char *problem)
{
    static const struct {
        const char *problem, *hint;
    } hints[] = {
        {"mapping values are not allowed in this context",
         "; a key indented deeper than the keys beside it, or a value holding ': ' that needs "
         "quotes"},
        {"did not find expected key",
         "; check the indentation, and that a quoted value ends with its quote (a filter with "
         "'text' in it goes in double quotes: filter: \"Department = 'Sales'\")"},
        {"did not find expected '-' indicator",
         "; the items of a list each start with '- ' at the same indentation"},
        {"could not find expected ':'", "; a key needs ': ' after it (a space after the colon)"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
        if (strcmp(problem, hints[i].problem) == 0) return hints[i].hint;
    return "";
}

static int config_syntax_error(loader *L, const yaml_parser_t *p, const char *yaml, size_t len)
{
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "unknown problem";
    switch (p->error) {
    case YAML_MEMORY_ERROR: return config_fail_at(L, 1, 1, "out of memory reading YAML");
    case YAML_READER_ERROR:
        config_offset_to_mark(yaml, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return config_fail_at(L, line, col, "invalid YAML: %s (byte 0x%02X)", problem,
                                  (unsigned)p->problem_value & 0xFFu);
        return config_fail_at(L, line, col, "invalid YAML: %s", problem);
    default: break;
    }
    /* libyaml says "found character that cannot start any token" for a tab: name it */
    size_t at = config_mark_to_offset(yaml, len, line, col);
    const char *hint = at < len && yaml[at] == '\t' ? "; a tab: YAML indents with spaces only"
                                                    : config_yaml_hint(problem);
    /* a quote left open is found only at the end of the file: name where it opens */
    if (p->context && strcmp(p->context, "while scanning a quoted scalar") == 0 &&
        strcmp(problem, "found unexpected end of stream") == 0)
        return config_fail_at(L, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1,
                              "invalid YAML: the quoted value that starts here has no closing "
                              "quote (inside '...' a quote is written '')");
    if (p->context)
        return config_fail_at(L, line, col, "invalid YAML: %s (%s that starts at %d:%d)%s", problem,
                              p->context, (int)p->context_mark.line + 1,
                              (int)p->context_mark.column + 1, hint);
    return config_fail_at(L, line, col, "invalid YAML: %s%s", problem, hint);
}

/* Only the standard tags are understood; anything else would silently change meaning. */
static int config_check_tag(loader *L, const yaml_char_t *tag, const yaml_mark_t *m, bool *is_str)
{
    *is_str = false;
    if (!tag) return 0;
    const char *t = (const char *)tag;
    if (strcmp(t, "!") == 0 || strcmp(t, "tag:yaml.org,2002:str") == 0) {
        *is_str = true;
        return 0;
    }
    static const char *const std[] = {"tag:yaml.org,2002:int",  "tag:yaml.org,2002:float",
                                      "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
                                      "tag:yaml.org,2002:map",  "tag:yaml.org,2002:seq"};
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
        if (strcmp(t, std[i]) == 0) return 0;
    char clip[72];
    return config_fail_at(L, (int)m->line + 1, (int)m->column + 1, "unsupported YAML tag '%s'",
                          config_clip(t, clip, sizeof clip));
}

static int config_attach(loader *L, node **stack, size_t depth, node **root, node *n,
                         const yaml_mark_t *m)
{
    if (depth > 0) {
        config_node_add(stack[depth - 1], n);
        return 0;
    }
    if (*root)
        return config_fail_at(L, (int)m->line + 1, (int)m->column + 1,
                              "more than one YAML document: a settings file holds one");
    *root = n;
    return 0;
}

static int config_build_tree(loader *L, const char *yaml, size_t len, node **root)
{
    yaml_parser_t p;
    *root = NULL;
    if (!yaml_parser_initialize(&p)) return config_fail_at(L, 1, 1, "out of memory reading YAML");
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    node *stack[CONFIG_MAX_DEPTH];
    size_t depth = 0;
    int rc = 0;
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = config_syntax_error(L, &p, yaml, len);
            break;
        }
        const yaml_mark_t *m = &ev.start_mark;
        bool is_str = false;
        node *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (*root)
                rc = config_fail_at(L, (int)m->line + 1, (int)m->column + 1,
                                    "more than one YAML document: a settings file holds one");
            break;
        case YAML_ALIAS_EVENT:
            /* Anchors are registered only once their node is complete, so the tree stays
             * acyclic: the schema walk ends, and as it descends only a few known levels, a file
             * of nested aliases cannot make it exponential. */
            n = strmap_get(&L->anchors, (const char *)ev.data.alias.anchor);
            if (!n) {
                char clip[72];
                rc = config_fail_at(
                    L, (int)m->line + 1, (int)m->column + 1,
                    "alias '*%s' does not name a complete node defined before it",
                    config_clip((const char *)ev.data.alias.anchor, clip, sizeof clip));
                break;
            }
            rc = config_attach(L, stack, depth, root, n, m);
            break;
        case YAML_SCALAR_EVENT:
            if ((rc = config_check_tag(L, ev.data.scalar.tag, m, &is_str)) < 0) break;
            if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length) {
                rc = config_fail_at(L, (int)m->line + 1, (int)m->column + 1,
                                    "a value holds a NUL character");
                break;
            }
            n = config_node_new(L, NODE_SCALAR, m);
            n->text = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !is_str;
            n->style = (int)ev.data.scalar.style;
            if (ev.data.scalar.anchor)
                strmap_put(&L->anchors, (const char *)ev.data.scalar.anchor, n);
            rc = config_attach(L, stack, depth, root, n, m);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
            const yaml_char_t *tag = seq ? ev.data.sequence_start.tag : ev.data.mapping_start.tag;
            const yaml_char_t *anchor =
                seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
            if ((rc = config_check_tag(L, tag, m, &is_str)) < 0) break;
            if (depth == CONFIG_MAX_DEPTH) {
                rc = config_fail_at(L, (int)m->line + 1, (int)m->column + 1,
                                    "nested more than %d levels deep", CONFIG_MAX_DEPTH);
                break;
            }
            n = config_node_new(L, seq ? NODE_SEQ : NODE_MAP, m);
            if (anchor) n->anchor = xstrdup((const char *)anchor);
            if ((rc = config_attach(L, stack, depth, root, n, m)) < 0) break;
            stack[depth++] = n;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                n = stack[--depth];
                if (n->anchor) strmap_put(&L->anchors, n->anchor, n);
            }
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---- schema helpers */

/* Checks a mapping's keys before any value is read: each must be a known name, once. `where` is
 * the context for messages ("in company", "in assignment 'Sales'"). */
static int config_check_keys(loader *L, const node *map, const char *const *known, size_t n_known,
                             const char *where)
{
    char desc[96], clip[72];
    for (size_t i = 0; 2 * i < map->n; i++) {
        const node *k = map->kids[2 * i];
        if (k->kind != NODE_SCALAR)
            return config_fail(L, k, "expected a key name %s, found %s", where,
                               config_describe(k, desc, sizeof desc));
        if (config_is_null(k)) return config_fail(L, k, "empty key %s", where);
        bool ok = false;
        for (size_t j = 0; j < n_known && !ok; j++)
            ok = strcmp(k->text, known[j]) == 0;
        if (!ok) {
            const char *best = NULL;
            size_t best_d = SIZE_MAX;
            for (size_t j = 0; j < n_known; j++) {
                size_t d = str_edit_distance(k->text, known[j]);
                if (d < best_d) best_d = d, best = known[j];
            }
            config_clip(k->text, clip, sizeof clip);
            if (best && (best_d <= 2 || best_d * 3 <= strlen(best)))
                return config_fail(L, k, "unknown key '%s' %s (did you mean '%s'?)", clip, where,
                                   best);
            char list[256] = "";
            for (size_t j = 0; j < n_known; j++) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", known[j]);
            }
            if (strcmp(k->text, "<<") == 0)
                return config_fail(L, k, "unknown key '<<' %s (YAML merge keys are not supported)",
                                   where);
            return config_fail(L, k, "unknown key '%s' %s (expected one of: %s)", clip, where,
                               list);
        }
        /* every earlier key is known and distinct, so this loop is short */
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->kids[2 * j]->text, k->text) == 0)
                /* a second `name` in one assignment: its '- ' was left out */
                return config_fail(L, k, "duplicate key '%s' %s (first at line %d)%s", k->text,
                                   where, map->kids[2 * j]->line,
                                   strcmp(k->text, "name") == 0 &&
                                           strncmp(where, "in assignment", 13) == 0
                                       ? "; a new assignment starts with '- '"
                                       : "");
    }
    return 0;
}

/* The value of `key`, or NULL when the key is absent or its value is null: throughout the file an
 * empty value means the same as leaving the key out (`options:` with every line commented out). */
static const node *config_get(const node *map, const char *key, const node **key_node)
{
    for (size_t i = 0; 2 * i + 1 < map->n; i++) {
        const node *k = map->kids[2 * i];
        if (k->kind == NODE_SCALAR && strcmp(k->text, key) == 0) {
            if (key_node) *key_node = k;
            const node *v = map->kids[2 * i + 1];
            return config_is_null(v) ? NULL : v;
        }
    }
    if (key_node) *key_node = NULL;
    return NULL;
}

static int config_expect(loader *L, const node *v, node_kind kind, const char *path,
                         const char *what)
{
    if (v->kind == kind) return 0;
    char desc[96];
    return config_fail(L, v, "%s: expected %s, found %s", path, what,
                       config_describe(v, desc, sizeof desc));
}

static int config_text(loader *L, const node *v, const char *path, const char *what,
                       const char **out)
{
    if (config_expect(L, v, NODE_SCALAR, path, what) < 0) return -1;
    *out = v->text;
    return 0;
}

/* YAML 1.2's core schema spellings only: YAML 1.1's yes/no/on/off read differently depending on
 * the parser, so an admin's "on" must not silently become a string or a true. */
static int config_bool(loader *L, const node *map, const char *key, const char *path, bool *out)
{
    const node *v = config_get(map, key, NULL);
    if (!v) return 0;
    char desc[96];
    if (v->kind != NODE_SCALAR)
        return config_fail(L, v, "%s: expected true or false, found %s", path,
                           config_describe(v, desc, sizeof desc));
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                              "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v->text, yes[i]) == 0) return *out = true, 0;
        if (strcmp(v->text, no[i]) == 0) return *out = false, 0;
    }
    static const char *const ambiguous[] = {"yes", "no", "on", "off", "y", "n"};
    for (size_t i = 0; i < sizeof ambiguous / sizeof ambiguous[0]; i++)
        if (strcasecmp(v->text, ambiguous[i]) == 0)
            return config_fail(L, v,
                               "%s: expected true or false, found %s (yes/no/on/off mean "
                               "different things to different YAML readers: write true or false)",
                               path, config_describe(v, desc, sizeof desc));
    return config_fail(L, v, "%s: expected true or false, found %s", path,
                       config_describe(v, desc, sizeof desc));
}

static bool config_all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/* A decimal number as YAML's core schema writes it
 * ([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?), which rules out strtod's extras: hex
 * floats, inf, nan. */
static bool config_is_decimal(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    size_t digits = 0;
    while (isdigit((unsigned char)*s))
        s++, digits++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s))
            s++, digits++;
    }
    if (!digits) return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* A whole number; *given stays false when the key is absent or empty. */
static int config_long(loader *L, const node *map, const char *key, const char *path, long *out,
                       bool *given)
{
    *given = false;
    const node *v = config_get(map, key, NULL);
    if (!v) return 0;
    char desc[96];
    if (v->kind != NODE_SCALAR)
        return config_fail(L, v, "%s: expected a whole number, found %s", path,
                           config_describe(v, desc, sizeof desc));
    const char *s = v->text;
    const char *digits = (*s == '+' || *s == '-') ? s + 1 : s;
    if (!config_all_digits(digits))
        return config_fail(L, v, "%s: expected a whole number, found %s", path,
                           config_describe(v, desc, sizeof desc));
    errno = 0;
    long x = strtol(s, NULL, 10);
    if (errno == ERANGE)
        return config_fail(L, v, "%s: %s is too large", path,
                           config_describe(v, desc, sizeof desc));
    *out = x;
    *given = true;
    return 0;
}

static int config_number(loader *L, const node *map, const char *key, const char *path, double *out,
                         bool *given)
{
    *given = false;
    const node *v = config_get(map, key, NULL);
    if (!v) return 0;
    char desc[96];
    if (v->kind != NODE_SCALAR)
        return config_fail(L, v, "%s: expected a number, found %s", path,
                           config_describe(v, desc, sizeof desc));
    if (!config_is_decimal(v->text)) {
        if (v->len > 1 && v->text[v->len - 1] == '%')
            return config_fail(L, v,
                               "%s: expected a number, found %s (write a share: 0.10 for 10%%)",
                               path, config_describe(v, desc, sizeof desc));
        return config_fail(L, v, "%s: expected a number, found %s", path,
                           config_describe(v, desc, sizeof desc));
    }
    *out = strtod(v->text, NULL);
    *given = true;
    return 0;
}

/* Why s is not an email domain, or NULL when it is one (ASCII labels of letters, digits and
 * hyphens, at least two of them: an IDN must be written in its xn-- form). */
static const char *config_domain_problem(const char *s)
{
    if (!*s) return "must not be empty";
    if (strchr(s, '@')) return "write only the domain, without '@' (e.g. acme.com)";
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p)) return "a domain has no spaces";
    if (strlen(s) > 253) return "a domain is at most 253 characters long";
    size_t labels = 0;
    for (const char *p = s;;) {
        const char *e = strchr(p, '.');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0) return "a domain has no empty labels (two dots in a row, or a dot at an end)";
        if (n > 63) return "a domain label is at most 63 characters long";
        if (p[0] == '-' || p[n - 1] == '-') return "a domain label does not start or end with '-'";
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '-')
                return "a domain holds only letters, digits, '-' and '.'";
        labels++;
        if (!e) break;
        p = e + 1;
    }
    if (labels < 2) return "expected a full domain such as acme.com";
    return NULL;
}

static int config_domain(loader *L, const node *v, const char *path, char **out)
{
    const char *s;
    if (config_text(L, v, path, "a domain such as acme.com", &s) < 0) return -1;
    const char *why = config_domain_problem(s);
    if (why) {
        char clip[72];
        if (!*s) return config_fail(L, v, "%s: %s", path, why);
        return config_fail(L, v, "%s: '%s' is not a valid domain: %s", path,
                           config_clip(s, clip, sizeof clip), why);
    }
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    *out = d;
    return 0;
}

static bool config_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

/* ---- sections */

static int config_company(loader *L, const node *root, config *c)
{
    const node *key = NULL, *co = config_get(root, "company", &key);
    if (!co)
        return config_fail(L, key ? key : root,
                           "missing company.primary_domain (the company's email domain, e.g. "
                           "acme.com)");
    static const char *const keys[] = {"primary_domain", "additional_domains"};
    if (config_expect(L, co, NODE_MAP, "company",
                      "a mapping (primary_domain, additional_domains)") < 0 ||
        config_check_keys(L, co, keys, 2, "in company") < 0)
        return -1;
    const node *pk = NULL, *pd = config_get(co, "primary_domain", &pk);
    if (!pd) {
        if (pk) return config_fail(L, pk, "company.primary_domain: must not be empty");
        return config_fail(L, co,
                           "company: missing primary_domain (the company's email domain, e.g. "
                           "acme.com)");
    }
    if (config_domain(L, pd, "company.primary_domain", &c->primary_domain) < 0) return -1;

    const node *ad = config_get(co, "additional_domains", NULL);
    if (!ad) return 0;
    if (config_expect(L, ad, NODE_SEQ, "company.additional_domains",
                      "a list of domains (e.g. [acme.io])") < 0)
        return -1;
    c->additional_domains = xcalloc(ad->n, sizeof *c->additional_domains);
    for (size_t i = 0; i < ad->n; i++) {
        char path[64];
        snprintf(path, sizeof path, "company.additional_domains: entry %zu", i + 1);
        if (config_domain(L, ad->kids[i], path, &c->additional_domains[i]) < 0) return -1;
        c->n_additional_domains++;
    }
    return 0;
}

static int config_options(loader *L, const node *root, config *c)
{
    const node *op = config_get(root, "options", NULL);
    if (!op) return 0;
    static const char *const keys[] = {"ignore_org_structure", "keep_active",
                                       "convert_email_domain", "notify_managers",
                                       "managers_can_toggle_data_capture"};
    bool *vals[] = {&c->ignore_org_structure, &c->keep_active, &c->convert_email_domain,
                    &c->notify_managers, &c->managers_can_toggle_data_capture};
    if (config_expect(L, op, NODE_MAP, "options", "a mapping of options to true or false") < 0 ||
        config_check_keys(L, op, keys, 5, "in options") < 0)
        return -1;
    for (size_t i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "options.%s", keys[i]);
        if (config_bool(L, op, keys[i], path, vals[i]) < 0) return -1;
    }
    return 0;
}

static int config_seats(loader *L, const node *item, const char *ctx, cfg_assignment *a)
{
    const node *v = config_get(item, "seats", NULL);
    if (!v) return 0;
    char path[160], desc[96], clip[72];
    snprintf(path, sizeof path, "%s: seats", ctx);
    if (config_expect(L, v, NODE_SEQ, path, "a list of seat names (e.g. [recorder])") < 0)
        return -1;
    a->seats = xcalloc(v->n, sizeof *a->seats);
    strmap seen;
    strmap_init(&seen);
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        const node *s = v->kids[i];
        if (s->kind != NODE_SCALAR || config_is_null(s) || config_blank(s->text)) {
            rc = config_fail(L, s, "%s: entry %zu: expected a seat name, found %s", path, i + 1,
                             s->kind == NODE_SCALAR && !config_is_null(s)
                                 ? "an empty name"
                                 : config_describe(s, desc, sizeof desc));
        } else if (strmap_get(&seen, s->text)) {
            rc = config_fail(L, s, "%s: seat '%s' is listed twice", path,
                             config_clip(s->text, clip, sizeof clip));
        } else {
            strmap_put(&seen, s->text, (void *)s);
            a->seats[a->n_seats++] = xstrdup(s->text);
        }
    }
    strmap_free(&seen, NULL);
    return rc;
}

static int config_workspaces(loader *L, const node *item, const char *ctx, cfg_assignment *a)
{
    const node *v = config_get(item, "workspaces", NULL);
    if (!v) return 0;
    char path[160], desc[96], clip[72];
    snprintf(path, sizeof path, "%s: workspaces", ctx);
    if (config_expect(L, v, NODE_SEQ, path, "a list of {workspace, permission_profile} entries") <
        0)
        return -1;
    static const char *const keys[] = {"workspace", "permission_profile"};
    a->workspaces = xcalloc(v->n, sizeof *a->workspaces);
    strmap seen;
    strmap_init(&seen);
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        const node *w = v->kids[i];
        char epath[200], where[220];
        snprintf(epath, sizeof epath, "%s: entry %zu", path, i + 1);
        snprintf(where, sizeof where, "in %s workspaces entry %zu", ctx, i + 1);
        if ((rc = config_expect(L, w, NODE_MAP, epath,
                                "a mapping with workspace and permission_profile")) < 0 ||
            (rc = config_check_keys(L, w, keys, 2, where)) < 0)
            break;
        const char *vals[2] = {NULL, NULL};
        for (size_t k = 0; k < 2 && rc == 0; k++) {
            const node *kn = NULL, *x = config_get(w, keys[k], &kn);
            if (!x)
                rc = config_fail(L, kn ? kn : w, "%s: %s %s", epath, kn ? "empty" : "missing",
                                 keys[k]);
            else if (x->kind != NODE_SCALAR)
                rc = config_fail(L, x, "%s: %s: expected a name, found %s", epath, keys[k],
                                 config_describe(x, desc, sizeof desc));
            else if (config_blank(x->text))
                rc = config_fail(L, x, "%s: empty %s", epath, keys[k]);
            else
                vals[k] = x->text;
        }
        if (rc < 0) break;
        const node *first = strmap_get(&seen, vals[0]);
        if (first) {
            rc = config_fail(L, w, "%s: workspace '%s' is listed twice (first at line %d)", epath,
                             config_clip(vals[0], clip, sizeof clip), first->line);
            break;
        }
        strmap_put(&seen, vals[0], (void *)w);
        a->workspaces[a->n_workspaces].workspace = xstrdup(vals[0]);
        a->workspaces[a->n_workspaces].permission_profile = xstrdup(vals[1]);
        a->n_workspaces++;
    }
    strmap_free(&seen, NULL);
    return rc;
}

static int config_data_capture(loader *L, const node *item, const char *ctx, cfg_assignment *a)
{
    const node *v = config_get(item, "data_capture", NULL);
    if (!v) return 0;
    static const char *const keys[] = {"web_conferences", "telephony", "emails", "calendar"};
    bool *vals[] = {&a->data_capture.web_conferences, &a->data_capture.telephony,
                    &a->data_capture.emails, &a->data_capture.calendar};
    char path[160], where[180];
    snprintf(path, sizeof path, "%s: data_capture", ctx);
    snprintf(where, sizeof where, "in %s data_capture", ctx);
    if (config_expect(L, v, NODE_MAP, path, "a mapping of switches to true or false") < 0 ||
        config_check_keys(L, v, keys, 4, where) < 0)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        char kpath[200];
        snprintf(kpath, sizeof kpath, "%s.%s", path, keys[i]);
        if (config_bool(L, v, keys[i], kpath, vals[i]) < 0) return -1;
    }
    return 0;
}

static int config_filter(loader *L, const node *item, const char *name, cfg_assignment *a)
{
    const node *v = config_get(item, "filter", NULL);
    char clip[72], desc[96];
    config_clip(name, clip, sizeof clip);
    if (v && v->kind != NODE_SCALAR)
        return config_fail(L, v,
                           "assignment '%s': filter: expected a SOQL condition as text, found %s",
                           clip, config_describe(v, desc, sizeof desc));
    a->filter_text = xstrdup(v ? v->text : "");
    perr e;
    e.msg[0] = '\0';
    size_t at = 0;
    int line, col;
    if (soql_compile_placed(a->filter_text, &a->filter, &e, &at) == 0) return 0;
    a->filter = NULL;
    if (v && config_place(L, v, at, &line, &col))
        return config_fail_at(L, line, col, "assignment '%s': filter: %s", clip, e.msg);
    /* not placed in the file: the scalar's start, and the place in the filter soql gives */
    if (soql_compile(a->filter_text, &a->filter, &e) == 0) soql_free(a->filter);
    a->filter = NULL;
    return config_fail(L, v ? v : item, "assignment '%s': filter: %s", clip, e.msg);
}

static int config_update_mode(loader *L, const node *item, const char *ctx, cfg_assignment *a)
{
    const node *v = config_get(item, "update_mode", NULL);
    a->mode = UPDATE_AUTOMATIC;
    if (!v) return 0;
    char path[160], desc[96];
    snprintf(path, sizeof path, "%s: update_mode", ctx);
    if (v->kind == NODE_SCALAR && strcasecmp(v->text, "automatic") == 0) return 0;
    if (v->kind == NODE_SCALAR && strcasecmp(v->text, "manual") == 0) {
        a->mode = UPDATE_MANUAL;
        return 0;
    }
    return config_fail(L, v, "%s: expected automatic or manual, found %s", path,
                       config_describe(v, desc, sizeof desc));
}

static int config_assignment(loader *L, const node *item, size_t idx, strmap *names,
                             cfg_assignment *a)
{
    static const char *const keys[] = {"name",       "filter",       "seats",
                                       "workspaces", "data_capture", "update_mode"};
    char ctx[128], where[140], clip[72], desc[96];
    snprintf(ctx, sizeof ctx, "assignment %zu", idx + 1);
    if (item->kind != NODE_MAP)
        return config_fail(L, item,
                           "assignments: entry %zu: expected a mapping (name, filter, seats, "
                           "workspaces, data_capture, update_mode), found %s",
                           idx + 1, config_describe(item, desc, sizeof desc));
    a->line = item->line;
    /* The name is read first so that every later message can say which assignment it is about. */
    const node *nk = NULL, *nv = config_get(item, "name", &nk);
    if (nv && nv->kind == NODE_SCALAR && !config_blank(nv->text))
        snprintf(ctx, sizeof ctx, "assignment '%s'", config_clip(nv->text, clip, sizeof clip));
    snprintf(where, sizeof where, "in %s", ctx);
    if (config_check_keys(L, item, keys, 6, where) < 0) return -1;
    if (!nv) {
        if (nk) return config_fail(L, nk, "%s: name must not be empty", ctx);
        return config_fail(L, item, "%s: missing name (every assignment needs a unique name)", ctx);
    }
    if (nv->kind != NODE_SCALAR)
        return config_fail(L, nv, "%s: name: expected a text, found %s", ctx,
                           config_describe(nv, desc, sizeof desc));
    if (config_blank(nv->text)) return config_fail(L, nv, "%s: name must not be empty", ctx);
    /* Names are compared ignoring case: "Sales" and "sales" side by side would confuse whoever
     * reads the commands, and R5.3 tells assignments apart by name. */
    char *folded = xstrdup(nv->text);
    for (char *p = folded; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const node *first = strmap_get(names, folded);
    if (first) {
        free(folded);
        return config_fail(L, nv, "duplicate assignment name '%s' (first at line %d)",
                           config_clip(nv->text, clip, sizeof clip), first->line);
    }
    strmap_put(names, folded, (void *)nv);
    free(folded);
    a->name = xstrdup(nv->text);
    if (config_filter(L, item, a->name, a) < 0 || config_seats(L, item, ctx, a) < 0 ||
        config_workspaces(L, item, ctx, a) < 0 || config_data_capture(L, item, ctx, a) < 0 ||
        config_update_mode(L, item, ctx, a) < 0)
        return -1;
    return 0;
}

static int config_assignments(loader *L, const node *root, config *c)
{
    const node *v = config_get(root, "assignments", NULL);
    if (!v) return 0;
    if (config_expect(L, v, NODE_SEQ, "assignments", "a list of assignments (- name: ...)") < 0)
        return -1;
    c->assignments = xcalloc(v->n, sizeof *c->assignments);
    strmap names;
    strmap_init(&names);
    int rc = 0;
    for (size_t i = 0; i < v->n && rc == 0; i++) {
        c->n_assignments++; /* counted first so config_free releases a half-built one */
        rc = config_assignment(L, v->kids[i], i, &names, &c->assignments[i]);
    }
    strmap_free(&names, NULL);
    return rc;
}

static int config_guards(loader *L, const node *root, config *c)
{
    c->guards = (cfg_guards){.enabled = false,
                             .max_deactivations = -1,
                             .max_deactivation_share = -1.0,
                             .window_seconds = CONFIG_DEFAULT_WINDOW};
    const node *g = config_get(root, "guards", NULL);
    if (!g) return 0;
    static const char *const keys[] = {"max_deactivations", "max_deactivation_share",
                                       "window_seconds"};
    if (config_expect(L, g, NODE_MAP, "guards",
                      "a mapping (max_deactivations, max_deactivation_share, window_seconds)") <
            0 ||
        config_check_keys(L, g, keys, 3, "in guards") < 0)
        return -1;
    c->guards.enabled = true;
    bool given;
    long n = 0;
    if (config_long(L, g, "max_deactivations", "guards.max_deactivations", &n, &given) < 0)
        return -1;
    if (given) {
        if (n < 0)
            return config_fail(L, config_get(g, "max_deactivations", NULL),
                               "guards.max_deactivations: must be 0 or more, found %ld", n);
        c->guards.max_deactivations = n;
    }
    double share = 0;
    if (config_number(L, g, "max_deactivation_share", "guards.max_deactivation_share", &share,
                      &given) < 0)
        return -1;
    if (given) {
        if (!(share >= 0.0 && share <= 1.0))
            return config_fail(L, config_get(g, "max_deactivation_share", NULL),
                               "guards.max_deactivation_share: must be between 0 and 1 (0.10 "
                               "is 10%% of provisioned users), found %s",
                               config_get(g, "max_deactivation_share", NULL)->text);
        c->guards.max_deactivation_share = share;
    }
    if (config_long(L, g, "window_seconds", "guards.window_seconds", &n, &given) < 0) return -1;
    if (given) {
        if (n <= 0)
            return config_fail(L, config_get(g, "window_seconds", NULL),
                               "guards.window_seconds: must be more than 0, found %ld", n);
        /* the window is taken from commit times in milliseconds: beyond this it would overflow */
        if (n > CONFIG_MAX_WINDOW)
            return config_fail(L, config_get(g, "window_seconds", NULL),
                               "guards.window_seconds: must be at most %ld (100 years), found %ld",
                               (long)CONFIG_MAX_WINDOW, n);
        c->guards.window_seconds = n;
    }
    return 0;
}

static int config_from_tree(loader *L, const node *root, config *c)
{
    if (!root || config_is_null(root))
        return config_fail_at(L, 1, 1,
                              "empty settings file: expected a mapping with company "
                              "(primary_domain is required), options, assignments and guards");
    static const char *const keys[] = {"company", "options", "assignments", "guards"};
    char desc[96];
    if (root->kind != NODE_MAP)
        return config_fail(L, root,
                           "expected a mapping at the top level (company, options, assignments, "
                           "guards), found %s",
                           config_describe(root, desc, sizeof desc));
    if (config_check_keys(L, root, keys, 4, "at the top level") < 0) return -1;
    if (config_company(L, root, c) < 0 || config_options(L, root, c) < 0 ||
        config_assignments(L, root, c) < 0 || config_guards(L, root, c) < 0)
        return -1;
    return 0;
}

/* ---- API */

int config_load_string(const char *yaml, size_t len, const char *name, config **out, perr *err)
{
    *out = NULL;
    if (!name) name = "<settings>";
    loader L = {.name = name, .src = yaml ? yaml : "", .src_len = yaml ? len : 0, .err = err};
    strmap_init(&L.anchors);
    config *c = xcalloc(1, sizeof *c);
    c->path = xstrdup(name);
    node *root = NULL;
    int rc = config_build_tree(&L, yaml ? yaml : "", yaml ? len : 0, &root);
    if (rc == 0) rc = config_from_tree(&L, root, c);
    config_loader_free(&L);
    if (rc < 0) {
        config_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int config_load_file(const char *path, config **out, perr *err)
{
    *out = NULL;
    buf b;
    buf_init(&b);
    if (buf_read_file(&b, path, (size_t)CONFIG_MAX_FILE_BYTES) < 0) {
        int e = errno;
        buf_free(&b);
        if (e == EFBIG)
            return perr_set(err, "%s: the settings file is larger than %ld MiB", path,
                            CONFIG_MAX_FILE_BYTES >> 20);
        return perr_set(err, "%s: cannot read the settings file: %s", path, strerror(e));
    }
    int rc = config_load_string(b.data ? b.data : "", b.len, path, out, err);
    buf_free(&b);
    return rc;
}

void config_free(config *c)
{
    if (!c) return;
    free(c->path);
    free(c->primary_domain);
    for (size_t i = 0; i < c->n_additional_domains; i++)
        free(c->additional_domains[i]);
    free(c->additional_domains);
    for (size_t i = 0; i < c->n_assignments; i++) {
        cfg_assignment *a = &c->assignments[i];
        free(a->name);
        free(a->filter_text);
        if (a->filter) soql_free(a->filter);
        for (size_t j = 0; j < a->n_seats; j++)
            free(a->seats[j]);
        free(a->seats);
        for (size_t j = 0; j < a->n_workspaces; j++) {
            free(a->workspaces[j].workspace);
            free(a->workspaces[j].permission_profile);
        }
        free(a->workspaces);
    }
    free(c->assignments);
    free(c);
}

int config_assignment_index(const config *c, const char *name)
{
    if (!c || !name) return -1;
    for (size_t i = 0; i < c->n_assignments; i++)
        if (strcmp(c->assignments[i].name, name) == 0) return i <= INT_MAX ? (int)i : -1;
    return -1;
}

/* ---- hints */

static bool config_custom_field(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && str_ieqn(name + n - 3, 3, "__c", 3);
}

static const char *config_nearest_field(const char *name, const char *const *known, size_t n)
{
    if (config_custom_field(name) || strlen(name) < 4) return NULL;
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        if (config_custom_field(known[i])) continue;
        size_t d = str_edit_distance(name, known[i]);
        if (d == 0) return NULL;
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

/* R1.3: a compound field (Name, Address) is kept as its parts under their own names, so the
 * compound's own name reads as null in a filter, where Salesforce would compare the whole (a full
 * name): true, with the parts listed in msg. */
static bool config_compound_hint(const event_layout *schema, const char *name, char *msg,
                                 size_t cap)
{
    for (size_t pos = 0; pos < event_layout_count(schema); pos++) {
        size_t np = event_layout_part_count(schema, pos);
        const char *fn = event_layout_name(schema, pos);
        if (!np || !fn || !str_ieq(fn, name)) continue;
        size_t k =
            (size_t)snprintf(msg, cap,
                             "a compound field: events carry its parts, kept under their own "
                             "names (R1.3), and '%s' itself reads as null; filter on the "
                             "parts (",
                             fn);
        for (size_t i = 0; i < np && k < cap; i++)
            k += (size_t)snprintf(msg + k, cap - k, "%s%s", i ? ", " : "",
                                  event_layout_part_name(schema, pos, i));
        if (k < cap) snprintf(msg + k, cap - k, ")");
        return true;
    }
    return false;
}

static val_type config_field_type(void *ctx, const char *field)
{
    return event_layout_value_type(ctx, field);
}

typedef struct config_hint_ctx {
    const cfg_assignment *a;
    void (*say)(void *ctx, const char *msg);
    void *ctx;
} config_hint_ctx;

static void config_say_type_hint(void *ctx, const char *msg)
{
    const config_hint_ctx *h = ctx;
    char out[900], clip[72];
    snprintf(out, sizeof out, "assignment '%s' (line %d): filter, %s",
             config_clip(h->a->name, clip, sizeof clip), h->a->line, msg);
    h->say(h->ctx, out);
}

void config_field_hints(const config *c, const event_layout *schema,
                        void (*say)(void *ctx, const char *msg), void *ctx)
{
    size_t n_known;
    const char *const *known = event_layout_all_names(schema, &n_known);
    for (size_t a = 0; a < c->n_assignments; a++) {
        const soql_filter *f = c->assignments[a].filter;
        for (size_t i = 0; f && i < soql_field_count(f); i++) {
            const char *path = soql_field_name(f, i), *leaf = path;
            soql_rel r = soql_relationship(path, &leaf);
            if (r != SOQL_REL_NONE && r != SOQL_REL_MANAGER) continue;
            char msg[512];
            if (config_compound_hint(schema, leaf, msg, sizeof msg)) {
                char clip[72];
                char full[700];
                snprintf(full, sizeof full, "assignment '%s': the filter reads '%s', %s",
                         config_clip(c->assignments[a].name, clip, sizeof clip), path, msg);
                say(ctx, full);
                continue;
            }
            const char *near = config_nearest_field(leaf, known, n_known);
            if (!near) continue;
            snprintf(msg, sizeof msg,
                     "assignment '%s': the filter reads '%s', which is no User field of the event "
                     "schema: did you mean '%s'? (a field no event carries reads as null, R3.4)",
                     c->assignments[a].name, path, near);
            say(ctx, msg);
        }
        config_hint_ctx h = {c->assignments + a, say, ctx};
        soql_type_hints(f, c->assignments[a].filter_text, config_field_type, (void *)schema,
                        config_say_type_hint, &h);
    }
}
