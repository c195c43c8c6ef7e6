/* soql: compiles assignment filters (provisioning.md R3.4, R4.1-R4.3) into the tree that
 * soql_eval.c walks. One pass: a lexer that produces one token on demand and a recursive-descent
 * parser, so the first error by position is the one reported.
 *
 * Grammar (keywords case-insensitive):
 *   filter    := [WHERE] [expr] end
 *   expr      := unary {AND unary} | unary {OR unary}   -- never mixed without parentheses
 *   unary     := NOT unary | '(' expr ')' | condition   -- NOT binds to what follows it
 *   condition := field (= | != | <> | < | <= | > | >=) value
 *              | field LIKE string
 *              | field [NOT] IN '(' value {, value} ')'
 *              | field (INCLUDES | EXCLUDES) '(' string {, string} ')'
 *   value     := string | number | true | false | null | date | date-time | date literal[:n]
 *
 * Semantics, as decided for Salesforce fidelity (R4.1). "null field" means VAL_NULL or an empty
 * string: Salesforce stores an empty text value as null, so '' and null are one value on both
 * sides (a literal '' after =, !=, IN, NOT IN is compiled as null).
 *
 *   condition                 field null          field a checkbox (VAL_BOOL)  field a value
 *   ------------------------  ------------------  ---------------------------  ----------------
 *   f = null                  TRUE                TRUE iff false               FALSE
 *   f != null                 FALSE               TRUE iff true                TRUE
 *   f = 'x'                   UNKNOWN             by type (see below)          by type
 *   f != 'x'                  UNKNOWN             by type                      by type
 *   f < <= > >= v             UNKNOWN             UNKNOWN                      by type
 *   f LIKE 'p'                UNKNOWN             UNKNOWN                      string match
 *   f IN (...)                TRUE iff null in    OR of = (Kleene)             OR of =
 *                             the list, else
 *                             UNKNOWN
 *   f NOT IN (...)            FALSE iff null in   NOT of IN                    NOT of IN
 *                             the list, else
 *                             UNKNOWN
 *   f INCLUDES (...)          UNKNOWN             UNKNOWN                      picklist match
 *   f EXCLUDES (...)          UNKNOWN             UNKNOWN                      NOT of INCLUDES
 *   NOT c                     TRUE<->FALSE, UNKNOWN stays UNKNOWN
 *   a AND b, a OR b           Kleene three-valued logic
 *
 * A comparison with a null field is never true (R3.4: "a filter that is null or unknown for the
 * user (SOQL three-valued logic) does not match"; issue 3: "a comparison with a null field is not
 * true"): `f = 'x'`, `f != 'x'`, `f NOT IN (...)` and `NOT f = 'x'` are all UNKNOWN on a null
 * field. Salesforce's own query engine returns null rows for `!=`; the spec chooses three-valued
 * logic instead, and so do we. Only TRUE matches an assignment (R3.4).
 *
 * "By type" (both sides non-null):
 *   string field: with a string, compared ignoring case (=, !=, <, ... alike): ASCII and the
 *   two-byte UTF-8 letters of Latin-1, Latin Extended-A, Greek and Cyrillic (soql_fold_char);
 *   other characters exactly; with a number, the field is read as a number (unreadable:
 *   UNKNOWN); with true/false, "true"/"false" in any case (anything else: UNKNOWN); with a date,
 *   date-time or date literal, the field is read as "YYYY-MM-DD" or a date-time with Z, +hh:mm,
 *   +hhmm or no zone (UTC); unreadable: UNKNOWN.
 *   number field: with a number, numerically; with a string that reads as a number, numerically;
 *   anything else UNKNOWN.
 *   checkbox field: with true/false or 'true'/'false', = and != only; anything else UNKNOWN.
 *   Dates: when either side is a date (no time), both are compared as days in the clock's time
 *   zone; two date-times compare as instants. A relative literal is a range of days [start, end]
 *   in the clock's zone: = means inside, != outside, < before start, <= up to end, > after end,
 *   >= from start. Weeks start on Sunday (Salesforce's en_US locale); quarters are calendar
 *   quarters. Without a clock (NULL), relative literals are UNKNOWN and zones are UTC.
 *
 * Compile-time errors also reject what SOQL rejects: <, <=, >, >= with null or true/false; LIKE
 * without a string pattern; INCLUDES/EXCLUDES with anything but strings; an empty list.
 *
 * Beyond the list: N_DAYS_AGO:n, N_WEEKS_AGO:n, N_MONTHS_AGO:n, N_QUARTERS_AGO:n and
 * N_YEARS_AGO:n are accepted (one period, n periods back); fiscal literals (THIS_FISCAL_YEAR, ...)
 * are rejected by name, since they need the org's fiscal-year settings. n is 0..1000000.
 * LAST_N_DAYS:n covers today and the n days before it (n + 1 days), NEXT_N_DAYS:n the n days after
 * today; LAST_N_WEEKS/MONTHS/QUARTERS/YEARS:n the n whole periods before the current one, NEXT_N_*
 * the n after it, as Salesforce documents. A string field is read as a number only when it is
 * at most 63 bytes of [+-]digits[.digits][e[+-]digits]. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soql.h"
#include "soql_impl.h"

/* Parentheses and NOTs nest at most this deep, so that compiling and evaluating (both recursive)
 * have a bounded stack whatever the configuration says. */
#define SOQL_MAX_DEPTH 100
/* The largest n in LAST_N_DAYS:n and friends; far beyond any real use, small enough that the
 * calendar arithmetic cannot overflow. */
#define SOQL_MAX_N 1000000

enum {
    T_END,
    T_IDENT,
    T_STR,
    T_NUM,
    T_DATE,
    T_DATETIME,
    T_OP,
    T_LP,
    T_RP,
    T_COMMA,
    T_COLON,
};

typedef struct soql_tok {
    int type;
    size_t pos, len;
    double num;
    int64_t t;
} soql_tok;

typedef struct soql_parser {
    const char *src;
    size_t pos;
    soql_tok tok;
    perr *err;
    size_t *err_at; /* soql_compile_placed: the error's offset goes here, not into its message */
    soql_filter *f;
    int depth;
} soql_parser;

/* ---- errors */

/* Columns count characters (UTF-8 code points), not bytes, so that a name with accents before the
 * error does not shift the caret. */
static size_t soql_column(const char *src, size_t pos)
{
    size_t col = 1;
    for (size_t i = 0; i < pos; i++)
        if (((unsigned char)src[i] & 0xC0) != 0x80) col++;
    return col;
}

/* "column 23", or "line 2, column 5" for a filter written over several lines (a YAML block): a
 * column counted through the whole text names no place an admin can find. (A block's final newline
 * does not make it several lines.) */
static void soql_place(const soql_parser *p, size_t pos, char *out, size_t cap)
{
    size_t end = strlen(p->src);
    while (end > 0 && strchr(" \t\r\n", p->src[end - 1]))
        end--;
    if (!memchr(p->src, '\n', end)) {
        snprintf(out, cap, "column %zu", soql_column(p->src, pos));
        return;
    }
    size_t line = 1, start = 0;
    for (size_t i = 0; i < pos; i++)
        if (p->src[i] == '\n') line++, start = i + 1;
    snprintf(out, cap, "line %zu, column %zu", line, soql_column(p->src + start, pos - start));
}

static int soql_fail(soql_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int soql_fail(soql_parser *p, size_t pos, const char *fmt, ...)
{
    char msg[900], place[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err_at) {
        *p->err_at = pos;
        return perr_set(p->err, "%s", msg);
    }
    soql_place(p, pos, place, sizeof place);
    return perr_set(p->err, "%s: %s", place, msg);
}

/* Buffers that receive soql_show output: 40 bytes of text, each possibly \xNN, and "...". */
#define SOQL_SHOW_CAP 200

/* Copies at most 40 bytes of text for a message, never cutting a UTF-8 sequence, and shows
 * control bytes as \xNN. */
static void soql_show(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0, lim = n > 40 ? 40 : n;
    while (lim < n && lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80)
        lim--;
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ctl = c < 0x20 || c == 0x7F;
        if (o + (ctl ? 4 : 1) + 4 > cap) {
            lim = i;
            break;
        }
        if (ctl)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
        else
            out[o++] = (char)c;
    }
    if (lim < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* What was found, for "expected X, found Y". */
static const char *soql_found(const soql_parser *p, char *out, size_t cap)
{
    char text[SOQL_SHOW_CAP];
    if (p->tok.type == T_END) return "end of filter";
    soql_show(text, sizeof text, p->src + p->tok.pos, p->tok.len);
    if (p->tok.type == T_STR)
        snprintf(out, cap, "string %s", text);
    else
        snprintf(out, cap, "'%s'", text);
    return out;
}

static int soql_expected(soql_parser *p, const char *what)
{
    char found[SOQL_SHOW_CAP + 16];
    return soql_fail(p, p->tok.pos, "expected %s, found %s", what,
                     soql_found(p, found, sizeof found));
}

/* ---- lexer */

static bool soql_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static bool soql_is_digit(char c) { return c >= '0' && c <= '9'; }
static bool soql_is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool soql_is_ident_start(char c) { return soql_is_alpha(c) || c == '_'; }
static bool soql_is_ident(char c) { return soql_is_ident_start(c) || soql_is_digit(c); }
static bool soql_is_op(char c) { return c == '=' || c == '!' || c == '<' || c == '>'; }

/* The character at pos as a message shows it: a whole UTF-8 sequence, or \xNN. */
static int soql_bad_char(soql_parser *p, size_t pos)
{
    char text[SOQL_SHOW_CAP];
    size_t n = 1;
    unsigned char c = (unsigned char)p->src[pos];
    if (c >= 0xC0)
        while (n < 4 && ((unsigned char)p->src[pos + n] & 0xC0) == 0x80)
            n++;
    soql_show(text, sizeof text, p->src + pos, n);
    /* the usual slips of someone who writes SQL or code, and what SOQL wants instead */
    const char *hint = c == '"'   ? " (text goes in single quotes: 'like this')"
                       : c == '&' ? " (write AND)"
                       : c == '|' ? " (write OR)"
                       : c == ';' ? " (a filter ends without ';')"
                                  : "";
    return soql_fail(p, pos, "unexpected character '%s'%s", text, hint);
}

static int soql_lex_word(soql_parser *p, size_t start)
{
    const char *s = p->src;
    size_t i = start;
    for (;;) {
        while (soql_is_ident(s[i]))
            i++;
        if (s[i] != '.') break;
        if (!soql_is_ident_start(s[i + 1])) {
            char text[SOQL_SHOW_CAP];
            if (s[i + 1] == '\0')
                return soql_fail(p, i + 1, "expected a field name after '.', found end of filter");
            size_t n = 1;
            if ((unsigned char)s[i + 1] >= 0xC0)
                while (n < 4 && ((unsigned char)s[i + 1 + n] & 0xC0) == 0x80)
                    n++;
            soql_show(text, sizeof text, s + i + 1, n);
            return soql_fail(p, i + 1, "expected a field name after '.', found '%s'", text);
        }
        i++;
    }
    p->tok.type = T_IDENT;
    p->tok.len = i - start;
    p->pos = i;
    return 0;
}

/* Numbers ([+-]digits[.digits]), dates (YYYY-MM-DD) and date-times. A number or date glued to
 * letters ("5abc", "1e5", "2024-01-01x") is one bad token rather than two good ones. */
static int soql_lex_number(soql_parser *p, size_t start)
{
    const char *s = p->src;
    size_t i = start;
    bool date = soql_is_digit(s[i]) && soql_is_digit(s[i + 1]) && soql_is_digit(s[i + 2]) &&
                soql_is_digit(s[i + 3]) && s[i + 4] == '-' && soql_is_digit(s[i + 5]);
    if (date) {
        while (soql_is_digit(s[i]) || s[i] == '-' || s[i] == ':' || s[i] == '.' || s[i] == '+' ||
               s[i] == 'T' || s[i] == 't' || s[i] == 'Z' || s[i] == 'z')
            i++;
        bool bad = soql_is_ident(s[i]);
        while (soql_is_ident(s[i]))
            i++;
        bool is_dt = false;
        int64_t t = 0;
        if (bad || !soql_parse_when(s + start, i - start, true, &is_dt, &t)) {
            char text[SOQL_SHOW_CAP];
            soql_show(text, sizeof text, s + start, i - start);
            return soql_fail(p, start,
                             "expected a date (YYYY-MM-DD) or date-time "
                             "(YYYY-MM-DDThh:mm:ssZ or +hh:mm), found '%s'",
                             text);
        }
        p->tok.type = is_dt ? T_DATETIME : T_DATE;
        p->tok.t = t;
        p->tok.len = i - start;
        p->pos = i;
        return 0;
    }
    if (s[i] == '+' || s[i] == '-') i++;
    while (soql_is_digit(s[i]))
        i++;
    bool bad = false;
    if (s[i] == '.') {
        i++;
        if (!soql_is_digit(s[i])) bad = true;
        while (soql_is_digit(s[i]))
            i++;
    }
    if (soql_is_ident(s[i]) || s[i] == '.') {
        bad = true;
        while (soql_is_ident(s[i]) || s[i] == '.')
            i++;
    }
    if (bad) {
        char text[SOQL_SHOW_CAP];
        soql_show(text, sizeof text, s + start, i - start);
        return soql_fail(p, start, "expected a number, found '%s'", text);
    }
    p->tok.type = T_NUM;
    p->tok.num = strtod(s + start, NULL);
    p->tok.len = i - start;
    p->pos = i;
    return 0;
}

static int soql_advance(soql_parser *p)
{
    const char *s = p->src;
    size_t i = p->pos;
    while (soql_is_space(s[i]))
        i++;
    p->tok.pos = i;
    p->tok.len = 1;
    p->pos = i + 1;
    char c = s[i];
    switch (c) {
    case '\0':
        p->tok.type = T_END;
        p->tok.len = 0;
        p->pos = i;
        return 0;
    case '(': p->tok.type = T_LP; return 0;
    case ')': p->tok.type = T_RP; return 0;
    case ',': p->tok.type = T_COMMA; return 0;
    case ':': p->tok.type = T_COLON; return 0;
    case '\'': {
        size_t j = i + 1;
        while (s[j] != '\'') {
            if (s[j] == '\0')
                return soql_fail(p, i,
                                 "unterminated string: expected a closing quote, found end "
                                 "of filter");
            if (s[j] == '\\' && s[j + 1] != '\0') j++; /* the escape is checked when decoded */
            j++;
        }
        p->tok.type = T_STR;
        p->tok.len = j + 1 - i;
        p->pos = j + 1;
        return 0;
    }
    default: break;
    }
    if (soql_is_ident_start(c)) return soql_lex_word(p, i);
    if (soql_is_digit(c) || ((c == '-' || c == '+') && soql_is_digit(s[i + 1])))
        return soql_lex_number(p, i);
    if (soql_is_op(c)) {
        size_t j = i;
        while (soql_is_op(s[j]))
            j++;
        p->tok.type = T_OP;
        p->tok.len = j - i;
        p->pos = j;
        return 0;
    }
    return soql_bad_char(p, i);
}

static bool soql_tok_is(const soql_parser *p, const char *kw)
{
    return p->tok.type == T_IDENT && str_ieqn(p->src + p->tok.pos, p->tok.len, kw, strlen(kw));
}

static bool soql_is_keyword(const soql_parser *p)
{
    static const char *const kws[] = {"AND",      "OR",    "NOT",  "IN",    "LIKE", "INCLUDES",
                                      "EXCLUDES", "WHERE", "TRUE", "FALSE", "NULL"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
        if (soql_tok_is(p, kws[i])) return true;
    return false;
}

/* ---- building the tree */

static void *soql_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return arr;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    *cap = nc;
    return xrealloc(arr, nc * elem);
}

static uint32_t soql_add_node(soql_filter *f, soql_node n)
{
    f->nodes = soql_grow(f->nodes, &f->cap_nodes, f->nnodes + 1, sizeof *f->nodes);
    f->nodes[f->nnodes] = n;
    return (uint32_t)f->nnodes++;
}

static uint32_t soql_add_lit(soql_filter *f, soql_lit l)
{
    f->lits = soql_grow(f->lits, &f->cap_lits, f->nlits + 1, sizeof *f->lits);
    f->lits[f->nlits] = l;
    return (uint32_t)f->nlits++;
}

static uint32_t soql_intern_field(soql_filter *f, const char *name, size_t n)
{
    for (size_t i = 0; i < f->nfields; i++)
        if (str_ieqn(f->fields[i], strlen(f->fields[i]), name, n)) return (uint32_t)i;
    f->fields = soql_grow(f->fields, &f->cap_fields, f->nfields + 1, sizeof *f->fields);
    f->fields[f->nfields] = arena_strndup(&f->mem, name, n);
    if (memchr(name, '.', n)) f->relationships = true;
    return (uint32_t)f->nfields++;
}

/* ---- string literals */

static int soql_hex4(const char *s, size_t avail, uint32_t *out)
{
    uint32_t v = 0;
    if (avail < 4) return -1;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t soql_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends one literal (not wildcard) byte; in a LIKE pattern the three bytes that mean something
 * to the matcher are escaped. */
static size_t soql_put_lit(char *o, char c, bool like)
{
    c = (char)soql_fold((unsigned char)c);
    if (like && (c == '\\' || c == '%' || c == '_')) {
        o[0] = '\\';
        o[1] = c;
        return 2;
    }
    o[0] = c;
    return 1;
}

/* Decodes the string token into the arena, ASCII-lower-cased. For a LIKE pattern the result keeps
 * the wildcards and escapes literal '%', '_' and '\' with '\'. */
static int soql_decode(soql_parser *p, bool like, const char **out, size_t *outlen)
{
    const char *raw = p->src + p->tok.pos + 1;
    size_t n = p->tok.len - 2;
    char *o = arena_alloc(&p->f->mem, n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        if (c != '\\') {
            if (like && (c == '%' || c == '_'))
                o[w++] = c;
            else
                w += soql_put_lit(o + w, c, like);
            continue;
        }
        size_t at = p->tok.pos + 1 + i;
        char e = raw[i + 1];
        char lit;
        switch (e) { /* Salesforce takes the letters in either case */
        case 'n':
        case 'N': lit = '\n'; break;
        case 'r':
        case 'R': lit = '\r'; break;
        case 't':
        case 'T': lit = '\t'; break;
        case 'b':
        case 'B': lit = '\b'; break;
        case 'f':
        case 'F': lit = '\f'; break;
        case '"': lit = '"'; break;
        case '\'': lit = '\''; break;
        case '\\': lit = '\\'; break;
        case '%':
        case '_':
            if (!like)
                return soql_fail(p, at, "escape '\\%c' is only allowed in a LIKE pattern", e);
            o[w++] = '\\';
            o[w++] = e;
            i++;
            continue;
        case 'u': {
            uint32_t cp;
            if (soql_hex4(raw + i + 2, n - i - 2, &cp) < 0)
                return soql_fail(p, at, "expected four hex digits after '\\u'");
            size_t used = 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (n - i < 12 || raw[i + 6] != '\\' || raw[i + 7] != 'u' ||
                    soql_hex4(raw + i + 8, n - i - 8, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return soql_fail(p, at,
                                     "expected a low surrogate '\\uDC00'-'\\uDFFF' after "
                                     "'\\u%04X'",
                                     cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                used = 12;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return soql_fail(p, at, "unexpected low surrogate '\\u%04X'", cp);
            } else if (cp == 0) {
                return soql_fail(p, at, "'\\u0000' is not allowed in a string");
            }
            if (cp < 0x80) {
                w += soql_put_lit(o + w, (char)cp, like);
            } else {
                w += soql_put_utf8(o + w, cp);
            }
            i += used - 1;
            continue;
        }
        default: {
            char text[SOQL_SHOW_CAP];
            size_t len = 1;
            if ((unsigned char)e >= 0xC0)
                while (len < 4 && i + 1 + len < n &&
                       ((unsigned char)raw[i + 1 + len] & 0xC0) == 0x80)
                    len++;
            soql_show(text, sizeof text, raw + i + 1, len);
            return soql_fail(p, at,
                             "expected an escape (\\n \\r \\t \\b \\f \\\" \\' \\\\ \\uXXXX) after "
                             "'\\', found '%s'",
                             text);
        }
        }
        w += soql_put_lit(o + w, lit, like);
        i++;
    }
    o[w] = '\0';
    /* the two-byte letters, as values are folded when compared (soql_fold_char) */
    for (size_t i = 0; i < w;) {
        unsigned char f[2];
        size_t k = soql_fold_char((const unsigned char *)o + i, w - i, f);
        memcpy(o + i, f, k);
        i += k;
    }
    *out = o;
    *outlen = w;
    return 0;
}

/* Classifies a LIKE pattern (escaped form) and extracts its literal core for the simple shapes:
 * 'abc' exact, 'abc%' prefix, '%abc' suffix, '%abc%' contains, '%' anything. */
static void soql_like_shape(soql_filter *f, soql_lit *l)
{
    const char *s = l->s;
    size_t n = l->len, i = 0, w = 0;
    char *core = arena_alloc(&f->mem, n + 1);
    bool lead = false, trail = false;
    while (i < n && s[i] == '%')
        i++, lead = true;
    while (i < n && s[i] != '%' && s[i] != '_') {
        if (s[i] == '\\') i++;
        core[w++] = s[i++];
    }
    core[w] = '\0';
    l->core = core;
    l->core_len = (uint32_t)w;
    if (i < n && s[i] == '_') {
        l->like = SK_GENERAL;
        return;
    }
    while (i < n && s[i] == '%')
        i++, trail = true;
    if (i < n)
        l->like = SK_GENERAL;
    else if (!lead && !trail)
        l->like = SK_EXACT;
    else if (w == 0)
        l->like = SK_ANY;
    else if (lead && trail)
        l->like = SK_CONTAINS;
    else
        l->like = lead ? SK_SUFFIX : SK_PREFIX;
}

/* ---- values */

typedef struct soql_rel_name {
    const char *name;
    uint8_t unit;
    uint8_t form; /* 0: fixed from..to; 1: last n incl. current (-n..0); 2: last n (-n..-1);
                     3: next n (1..n); 4: n ago (-n..-n) */
    int8_t from, to;
} soql_rel_name;

static const soql_rel_name soql_rel_names[] = {
    {"TODAY", SU_DAY, 0, 0, 0},
    {"YESTERDAY", SU_DAY, 0, -1, -1},
    {"TOMORROW", SU_DAY, 0, 1, 1},
    {"LAST_WEEK", SU_WEEK, 0, -1, -1},
    {"THIS_WEEK", SU_WEEK, 0, 0, 0},
    {"NEXT_WEEK", SU_WEEK, 0, 1, 1},
    {"LAST_MONTH", SU_MONTH, 0, -1, -1},
    {"THIS_MONTH", SU_MONTH, 0, 0, 0},
    {"NEXT_MONTH", SU_MONTH, 0, 1, 1},
    {"LAST_90_DAYS", SU_DAY, 0, -90, 0},
    {"NEXT_90_DAYS", SU_DAY, 0, 1, 90},
    {"LAST_QUARTER", SU_QUARTER, 0, -1, -1},
    {"THIS_QUARTER", SU_QUARTER, 0, 0, 0},
    {"NEXT_QUARTER", SU_QUARTER, 0, 1, 1},
    {"LAST_YEAR", SU_YEAR, 0, -1, -1},
    {"THIS_YEAR", SU_YEAR, 0, 0, 0},
    {"NEXT_YEAR", SU_YEAR, 0, 1, 1},
    {"LAST_N_DAYS", SU_DAY, 1, 0, 0},
    {"NEXT_N_DAYS", SU_DAY, 3, 0, 0},
    {"N_DAYS_AGO", SU_DAY, 4, 0, 0},
    {"LAST_N_WEEKS", SU_WEEK, 2, 0, 0},
    {"NEXT_N_WEEKS", SU_WEEK, 3, 0, 0},
    {"N_WEEKS_AGO", SU_WEEK, 4, 0, 0},
    {"LAST_N_MONTHS", SU_MONTH, 2, 0, 0},
    {"NEXT_N_MONTHS", SU_MONTH, 3, 0, 0},
    {"N_MONTHS_AGO", SU_MONTH, 4, 0, 0},
    {"LAST_N_QUARTERS", SU_QUARTER, 2, 0, 0},
    {"NEXT_N_QUARTERS", SU_QUARTER, 3, 0, 0},
    {"N_QUARTERS_AGO", SU_QUARTER, 4, 0, 0},
    {"LAST_N_YEARS", SU_YEAR, 2, 0, 0},
    {"NEXT_N_YEARS", SU_YEAR, 3, 0, 0},
    {"N_YEARS_AGO", SU_YEAR, 4, 0, 0},
};

static int soql_parse_rel(soql_parser *p, const soql_rel_name *r, soql_lit *l)
{
    char name[SOQL_SHOW_CAP], what[SOQL_SHOW_CAP + 64];
    soql_show(name, sizeof name, p->src + p->tok.pos, p->tok.len);
    l->kind = SL_REL;
    l->unit = r->unit;
    l->from = r->from;
    l->to = r->to;
    if (soql_advance(p) < 0) return -1;
    if (r->form == 0) return 0;
    snprintf(what, sizeof what, "':' after '%s'", name);
    if (p->tok.type != T_COLON) return soql_expected(p, what);
    if (soql_advance(p) < 0) return -1;
    int64_t n = 0;
    bool ok = p->tok.type == T_NUM && p->tok.len <= 7 &&
              soql_digits(p->src + p->tok.pos, p->tok.len, &n) && n <= SOQL_MAX_N;
    if (!ok) {
        snprintf(what, sizeof what, "a whole number from 0 to %d after '%s:'", SOQL_MAX_N, name);
        return soql_expected(p, what);
    }
    int32_t k = (int32_t)n;
    switch (r->form) {
    case 1: l->from = -k, l->to = 0; break;
    case 2: l->from = -k, l->to = -1; break;
    case 3: l->from = 1, l->to = k; break;
    default: l->from = -k, l->to = -k; break;
    }
    return soql_advance(p);
}

/* A value after an operator or in an IN list. `what` completes "expected ..." when the token is
 * not a value. */
static int soql_parse_value(soql_parser *p, const char *what, bool empty_is_null, soql_lit *l)
{
    memset(l, 0, sizeof *l);
    switch (p->tok.type) {
    case T_STR: {
        const char *s;
        size_t n;
        if (soql_decode(p, false, &s, &n) < 0) return -1;
        l->kind = (n == 0 && empty_is_null) ? SL_NULL : SL_STR;
        l->s = s;
        l->len = (uint32_t)n;
        l->has_num = soql_parse_num(s, n, &l->num);
        l->has_bool = strcmp(s, "true") == 0 || strcmp(s, "false") == 0;
        l->b = strcmp(s, "true") == 0;
        /* what may be an Id keeps its case, which folding loses: a 15-character Id is
         * case-sensitive (soql_id_eq) */
        const char *raw = p->src + p->tok.pos + 1;
        if ((n == 15 || n == 18) && p->tok.len - 2 == n && soql_alnum(raw, n))
            l->id = arena_strndup(&p->f->mem, raw, n);
        return soql_advance(p);
    }
    case T_NUM:
        l->kind = SL_NUM;
        l->num = p->tok.num;
        return soql_advance(p);
    case T_DATE:
    case T_DATETIME:
        l->kind = p->tok.type == T_DATE ? SL_DATE : SL_DATETIME;
        l->t = p->tok.t;
        return soql_advance(p);
    case T_IDENT:
        if (soql_tok_is(p, "TRUE") || soql_tok_is(p, "FALSE")) {
            l->kind = SL_BOOL;
            l->b = soql_tok_is(p, "TRUE");
            return soql_advance(p);
        }
        if (soql_tok_is(p, "NULL")) {
            l->kind = SL_NULL;
            return soql_advance(p);
        }
        for (size_t i = 0; i < sizeof soql_rel_names / sizeof soql_rel_names[0]; i++)
            if (soql_tok_is(p, soql_rel_names[i].name))
                return soql_parse_rel(p, &soql_rel_names[i], l);
        /* Fiscal periods depend on the org's fiscal-year settings, which the service does not
         * have; say so instead of "expected a value". */
        for (size_t i = 0; i + 6 <= p->tok.len; i++)
            if (str_ieqn(p->src + p->tok.pos + i, 6, "FISCAL", 6)) {
                char name[SOQL_SHOW_CAP];
                soql_show(name, sizeof name, p->src + p->tok.pos, p->tok.len);
                return soql_fail(p, p->tok.pos,
                                 "fiscal date literals such as '%s' are not supported", name);
            }
        { /* a date literal misspelt: LAST_N_DAY:30, NEXT_WEK */
            char word[SOQL_SHOW_CAP];
            size_t n = p->tok.len < sizeof word - 1 ? p->tok.len : sizeof word - 1;
            for (size_t i = 0; i < n; i++) {
                char c = p->src[p->tok.pos + i];
                word[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
            }
            word[n] = '\0';
            const soql_rel_name *best = NULL;
            size_t best_d = SIZE_MAX;
            for (size_t i = 0; i < sizeof soql_rel_names / sizeof soql_rel_names[0]; i++) {
                size_t d = str_edit_distance(word, soql_rel_names[i].name);
                if (d < best_d) best_d = d, best = &soql_rel_names[i];
            }
            bool colon = p->src[p->tok.pos + p->tok.len] == ':';
            if (best && n >= 5 && (best_d <= 2 || colon))
                return soql_fail(p, p->tok.pos,
                                 "'%s' is not a date literal; did you mean %s%s? (TODAY, "
                                 "LAST_N_DAYS:n, THIS_YEAR, ...)",
                                 word, best->name, best->form ? ":n" : "");
        }
        { /* a bare word where a value goes is nearly always text without its quotes */
            char found[SOQL_SHOW_CAP + 16], word[SOQL_SHOW_CAP];
            soql_show(word, sizeof word, p->src + p->tok.pos, p->tok.len);
            return soql_fail(p, p->tok.pos,
                             "expected %s, found %s (text goes in single quotes: '%s')", what,
                             soql_found(p, found, sizeof found), word);
        }
    default: break;
    }
    return soql_expected(p, what);
}

/* ---- conditions */

/* Where a literal parsed from `at` is written: up to the token after it, blanks left out. */
static void soql_placed(const soql_parser *p, size_t at, soql_lit *l)
{
    size_t end = p->tok.pos;
    while (end > at && soql_is_space(p->src[end - 1]))
        end--;
    l->pos = (uint32_t)at;
    l->span = (uint32_t)(end - at);
}

static int soql_parse_list(soql_parser *p, soql_node *n, const char *kw)
{
    char what[64];
    bool picklist = n->kind == SN_INCLUDES || n->kind == SN_EXCLUDES;
    snprintf(what, sizeof what, "'(' after '%s'", kw);
    if (p->tok.type != T_LP) return soql_expected(p, what);
    if (soql_advance(p) < 0) return -1;
    if (p->tok.type == T_RP) {
        snprintf(what, sizeof what, "at least one value in the %s list", kw);
        return soql_expected(p, what);
    }
    n->a = (uint32_t)p->f->nlits;
    for (;;) {
        soql_lit l;
        if (picklist) {
            snprintf(what, sizeof what, "a string in the %s list", kw);
            if (p->tok.type != T_STR) return soql_expected(p, what);
            memset(&l, 0, sizeof l);
            const char *s;
            size_t len;
            if (soql_decode(p, false, &s, &len) < 0) return -1;
            /* Terms are trimmed and empty ones dropped, as Salesforce stores picklist values. */
            char *terms = arena_alloc(&p->f->mem, len + 1);
            size_t w = 0, at = 0, b, e;
            while (soql_next_term(s, len, &at, &b, &e)) {
                if (e == b) continue;
                if (w) terms[w++] = ';';
                memcpy(terms + w, s + b, e - b);
                w += e - b;
                l.nterms++;
            }
            terms[w] = '\0';
            if (l.nterms == 0) {
                snprintf(what, sizeof what, "a picklist value in the %s list", kw);
                return soql_expected(p, what);
            }
            l.kind = SL_STR;
            l.s = terms;
            l.len = (uint32_t)w;
            size_t item = p->tok.pos;
            if (soql_advance(p) < 0) return -1;
            soql_placed(p, item, &l);
        } else {
            snprintf(what, sizeof what, "a value in the %s list", kw);
            size_t item = p->tok.pos;
            if (soql_parse_value(p, what, true, &l) < 0) return -1;
            soql_placed(p, item, &l);
            if (l.kind == SL_NULL) n->has_null = true;
        }
        soql_add_lit(p->f, l);
        n->n++;
        if (p->tok.type == T_RP) break;
        if (p->tok.type != T_COMMA) {
            snprintf(what, sizeof what, "',' or ')' in the %s list", kw);
            return soql_expected(p, what);
        }
        if (soql_advance(p) < 0) return -1;
    }
    return soql_advance(p);
}

/* An Id or reference field of Salesforce's (Id, ManagerId, Manager.ProfileId, ...): its name
 * ends in "Id", in any case, as field names are case-insensitive. */
static bool soql_is_id_field(const char *name, size_t n)
{
    return n >= 2 && (name[n - 2] | 0x20) == 'i' && (name[n - 1] | 0x20) == 'd';
}

static int soql_parse_condition(soql_parser *p, uint32_t *out)
{
    soql_filter *f = p->f;
    soql_node n = {0};
    char fname[SOQL_SHOW_CAP], what[SOQL_SHOW_CAP + 64];
    soql_show(fname, sizeof fname, p->src + p->tok.pos, p->tok.len);
    n.field = soql_intern_field(f, p->src + p->tok.pos, p->tok.len);
    if (soql_relationship(f->fields[n.field], NULL) == SOQL_REL_UNSUPPORTED)
        return soql_fail(p, p->tok.pos,
                         "relationship field '%s' cannot be resolved here; use Profile.<field>, "
                         "UserRole.<field> or Manager.<field> (R4.3)",
                         fname);
    n.id_field = soql_is_id_field(p->src + p->tok.pos, p->tok.len);
    if (soql_advance(p) < 0) return -1;

    if (p->tok.type == T_OP) {
        static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">=", "<>"};
        static const uint8_t codes[] = {SO_EQ, SO_NE, SO_LT, SO_LE, SO_GT, SO_GE, SO_NE};
        char op[SOQL_SHOW_CAP];
        size_t op_pos = p->tok.pos;
        soql_show(op, sizeof op, p->src + p->tok.pos, p->tok.len);
        size_t k = 0;
        while (k < 7 && !str_ieqn(ops[k], strlen(ops[k]), p->src + p->tok.pos, p->tok.len))
            k++;
        if (k == 7)
            return soql_fail(p, p->tok.pos, "unknown operator '%s'%s", op,
                             strcmp(op, "==") == 0 ? " (SOQL compares with a single '=')" : "");
        n.kind = SN_CMP;
        n.op = codes[k];
        if (soql_advance(p) < 0) return -1;
        soql_lit l;
        snprintf(what, sizeof what, "a value after '%s'", op);
        size_t at = p->tok.pos;
        if (soql_parse_value(p, what, n.op == SO_EQ || n.op == SO_NE, &l) < 0) return -1;
        soql_placed(p, at, &l);
        if (n.op != SO_EQ && n.op != SO_NE && (l.kind == SL_NULL || l.kind == SL_BOOL))
            return soql_fail(p, op_pos, "operator '%s' cannot be used with %s (only = and !=)", op,
                             l.kind == SL_NULL ? "null" : "true or false");
        n.a = soql_add_lit(f, l);
    } else if (soql_tok_is(p, "LIKE")) {
        if (soql_advance(p) < 0) return -1;
        if (p->tok.type != T_STR) return soql_expected(p, "a string pattern after 'LIKE'");
        soql_lit l = {0};
        const char *s;
        size_t len;
        if (soql_decode(p, true, &s, &len) < 0) return -1;
        l.kind = SL_STR;
        l.s = s;
        l.len = (uint32_t)len;
        soql_like_shape(f, &l);
        n.kind = SN_LIKE;
        size_t at = p->tok.pos;
        if (soql_advance(p) < 0) return -1;
        soql_placed(p, at, &l);
        n.a = soql_add_lit(f, l);
    } else if (soql_tok_is(p, "IN")) {
        n.kind = SN_IN;
        if (soql_advance(p) < 0 || soql_parse_list(p, &n, "IN") < 0) return -1;
    } else if (soql_tok_is(p, "NOT")) {
        if (soql_advance(p) < 0) return -1;
        if (!soql_tok_is(p, "IN")) return soql_expected(p, "IN after 'NOT'");
        n.kind = SN_NOT_IN;
        if (soql_advance(p) < 0 || soql_parse_list(p, &n, "NOT IN") < 0) return -1;
    } else if (soql_tok_is(p, "INCLUDES") || soql_tok_is(p, "EXCLUDES")) {
        bool inc = soql_tok_is(p, "INCLUDES");
        n.kind = inc ? SN_INCLUDES : SN_EXCLUDES;
        if (soql_advance(p) < 0 || soql_parse_list(p, &n, inc ? "INCLUDES" : "EXCLUDES") < 0)
            return -1;
    } else if (soql_tok_is(p, "IS")) { /* SQL's IS NULL */
        return soql_fail(p, p->tok.pos,
                         "expected an operator after '%s', found 'IS' (write %s = null, or "
                         "%s != null)",
                         fname, fname, fname);
    } else if (soql_tok_is(p, "CONTAINS")) {
        return soql_fail(p, p->tok.pos,
                         "expected an operator after '%s', found 'CONTAINS' (write %s LIKE "
                         "'%%text%%')",
                         fname, fname);
    } else {
        snprintf(what, sizeof what, "an operator after '%s'", fname);
        return soql_expected(p, what);
    }
    *out = soql_add_node(f, n);
    return 0;
}

static int soql_parse_expr(soql_parser *p, const char *ctx, uint32_t *out);

/* ctx completes "expected a condition...": " after 'AND'", " after '('", "". */
static int soql_parse_unary(soql_parser *p, const char *ctx, uint32_t *out)
{
    char what[SOQL_SHOW_CAP + 96], place[48];
    if (p->tok.type == T_LP || soql_tok_is(p, "NOT")) {
        if (++p->depth > SOQL_MAX_DEPTH)
            return soql_fail(p, p->tok.pos,
                             "too deeply nested: at most %d levels of parentheses and NOT",
                             SOQL_MAX_DEPTH);
        int rc;
        if (p->tok.type == T_LP) {
            size_t open = p->tok.pos;
            if (soql_advance(p) < 0 || soql_parse_expr(p, " after '('", out) < 0) return -1;
            if (p->tok.type != T_RP) {
                soql_place(p, open, place, sizeof place);
                snprintf(what, sizeof what, "')' to close the '(' at %s%s", place,
                         p->err_at ? " of the filter" : "");
                return soql_expected(p, what);
            }
            rc = soql_advance(p);
        } else {
            char kw[SOQL_SHOW_CAP];
            soql_show(kw, sizeof kw, p->src + p->tok.pos, p->tok.len);
            snprintf(what, sizeof what, " after '%s'", kw);
            uint32_t child;
            if (soql_advance(p) < 0 || soql_parse_unary(p, what, &child) < 0) return -1;
            *out = soql_add_node(p->f, (soql_node){.kind = SN_NOT, .a = child});
            rc = 0;
        }
        p->depth--;
        return rc;
    }
    if (p->tok.type == T_IDENT && !soql_is_keyword(p)) return soql_parse_condition(p, out);
    snprintf(what, sizeof what, "a condition%s", ctx);
    return soql_expected(p, what);
}

static int soql_parse_expr(soql_parser *p, const char *ctx, uint32_t *out)
{
    uint32_t first;
    if (soql_parse_unary(p, ctx, &first) < 0) return -1;
    bool is_and = soql_tok_is(p, "AND");
    if (!is_and && !soql_tok_is(p, "OR")) {
        *out = first;
        return 0;
    }
    uint32_t *kids = NULL;
    size_t nk = 0, cap = 0;
    kids = soql_grow(kids, &cap, 1, sizeof *kids);
    kids[nk++] = first;
    while (soql_tok_is(p, "AND") || soql_tok_is(p, "OR")) {
        if (soql_tok_is(p, "AND") != is_and) {
            free(kids);
            return soql_fail(p, p->tok.pos, "AND and OR cannot be mixed without parentheses");
        }
        char kw[SOQL_SHOW_CAP], after[SOQL_SHOW_CAP + 16];
        soql_show(kw, sizeof kw, p->src + p->tok.pos, p->tok.len);
        snprintf(after, sizeof after, " after '%s'", kw);
        uint32_t child;
        if (soql_advance(p) < 0 || soql_parse_unary(p, after, &child) < 0) {
            free(kids);
            return -1;
        }
        kids = soql_grow(kids, &cap, nk + 1, sizeof *kids);
        kids[nk++] = child;
    }
    soql_filter *f = p->f;
    f->kids = soql_grow(f->kids, &f->cap_kids, f->nkids + nk, sizeof *f->kids);
    memcpy(f->kids + f->nkids, kids, nk * sizeof *kids);
    free(kids);
    *out = soql_add_node(
        f,
        (soql_node){.kind = is_and ? SN_AND : SN_OR, .a = (uint32_t)f->nkids, .n = (uint32_t)nk});
    f->nkids += nk;
    return 0;
}

/* ---- API */

static int compile(const char *text, soql_filter **out, perr *err, size_t *err_at)
{
    *out = NULL;
    soql_filter *f = xcalloc(1, sizeof *f);
    arena_init(&f->mem, 1024);
    soql_parser p = {.src = text ? text : "", .err = err, .err_at = err_at, .f = f};
    int rc = soql_advance(&p);
    if (rc == 0) {
        bool where = soql_tok_is(&p, "WHERE");
        if (where) rc = soql_advance(&p);
        if (rc == 0 && p.tok.type == T_END && !where) {
            f->root = soql_add_node(f, (soql_node){.kind = SN_TRUE});
        } else if (rc == 0) {
            rc = soql_parse_expr(&p, where ? " after 'WHERE'" : "", &f->root);
            if (rc == 0 && p.tok.type != T_END) rc = soql_expected(&p, "AND, OR or end of filter");
        }
    }
    if (rc < 0) {
        soql_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

int soql_compile(const char *text, soql_filter **out, perr *err)
{
    return compile(text, out, err, NULL);
}

int soql_compile_placed(const char *text, soql_filter **out, perr *err, size_t *err_at)
{
    *err_at = 0;
    return compile(text, out, err, err_at);
}

void soql_free(soql_filter *f)
{
    if (!f) return;
    free(f->nodes);
    free(f->kids);
    free(f->lits);
    free(f->fields);
    arena_free(&f->mem);
    free(f);
}

size_t soql_field_count(const soql_filter *f) { return f ? f->nfields : 0; }

const char *soql_field_name(const soql_filter *f, size_t i)
{
    return f && i < f->nfields ? f->fields[i] : NULL;
}

bool soql_needs_relationships(const soql_filter *f) { return f && f->relationships; }

bool soql_uses_relative_dates(const soql_filter *f)
{
    for (size_t i = 0; f && i < f->nlits; i++)
        if (f->lits[i].kind == SL_REL) return true;
    return false;
}

/* ---- type hints */

/* Whether a literal can ever equal (or order against) a value of the field's type, as soql_cmp
 * compares them: a checkbox only with true/false, 'true'/'false', by = and !=; a number only with a
 * number or text that reads as one. Text fields compare with anything (soql_cmp reads them). */
static bool soql_lit_fits(val_type t, const soql_lit *l, int op)
{
    if (l->kind == SL_NULL) return true;
    if (t == VAL_BOOL)
        return (op == SO_EQ || op == SO_NE) &&
               (l->kind == SL_BOOL || (l->kind == SL_STR && l->has_bool));
    if (t == VAL_NUM) return l->kind == SL_NUM || (l->kind == SL_STR && l->has_num);
    return true;
}

size_t soql_type_hints(const soql_filter *f, const char *text,
                       val_type (*type_of)(void *ctx, const char *field), void *ctx,
                       void (*say)(void *ctx, const char *msg), void *say_ctx)
{
    if (!f || !text) return 0;
    soql_parser q = {.src = text};
    size_t said = 0, text_len = strlen(text);
    for (size_t i = 0; i < f->nnodes; i++) {
        const soql_node *n = f->nodes + i;
        if (n->kind == SN_TRUE || n->kind == SN_AND || n->kind == SN_OR || n->kind == SN_NOT)
            continue;
        const char *field = f->fields[n->field], *leaf = field;
        soql_rel r = soql_relationship(field, &leaf);
        if (r != SOQL_REL_NONE && r != SOQL_REL_MANAGER) continue; /* look-ups: types unknown */
        val_type t = type_of(ctx, leaf);
        if (t != VAL_BOOL && t != VAL_NUM) continue;
        const char *kind = t == VAL_BOOL ? "a checkbox" : "a number";
        bool list = n->kind != SN_CMP && n->kind != SN_LIKE;
        size_t from = n->a, count = list ? n->n : 1;
        for (size_t k = 0; k < count; k++) {
            const soql_lit *l = f->lits + from + k;
            if (l->pos + l->span > text_len) break; /* compiled from other text */
            char place[48], lit[SOQL_SHOW_CAP], name[SOQL_SHOW_CAP], msg[640];
            soql_place(&q, l->pos, place, sizeof place);
            soql_show(lit, sizeof lit, text + l->pos, l->span);
            soql_show(name, sizeof name, field, strlen(field));
            if (n->kind == SN_LIKE || n->kind == SN_INCLUDES || n->kind == SN_EXCLUDES) {
                const char *op = n->kind == SN_LIKE       ? "LIKE"
                                 : n->kind == SN_INCLUDES ? "INCLUDES"
                                                          : "EXCLUDES";
                snprintf(msg, sizeof msg,
                         "%s: %s is %s: %s matches text only, so this condition is never true "
                         "(Salesforce refuses it)",
                         place, name, kind, op);
                say(say_ctx, msg);
                said++;
                break;
            }
            if (soql_lit_fits(t, l, n->op)) continue;
            const char *fix = t == VAL_BOOL ? (n->op == SO_EQ || n->op == SO_NE
                                                   ? "write true or false, without quotes"
                                                   : "a checkbox compares with = and != only")
                                            : "write a number, without quotes";
            const char *outcome = n->kind == SN_IN ? "this item of the list never matches"
                                                   : "this condition is never true";
            snprintf(msg, sizeof msg,
                     "%s: %s is %s: compared with %s, %s (%s; Salesforce refuses it)", place, name,
                     kind, lit, outcome, fix);
            say(say_ctx, msg);
            said++;
        }
    }
    return said;
}

static const struct {
    const char *name, *key;
} soql_rels[SOQL_REL__COUNT] = {
    [SOQL_REL_PROFILE] = {"Profile", "ProfileId"},
    [SOQL_REL_USERROLE] = {"UserRole", "UserRoleId"},
    [SOQL_REL_MANAGER] = {"Manager", "ManagerId"},
};

soql_rel soql_relationship(const char *path, const char **leaf)
{
    if (leaf) *leaf = path;
    const char *dot = strchr(path, '.');
    if (!dot) return SOQL_REL_NONE;
    /* one level only: the look-ups hold the related record's own fields, not its relationships */
    if (strchr(dot + 1, '.') || dot[1] == '\0') return SOQL_REL_UNSUPPORTED;
    for (int r = SOQL_REL_PROFILE; r <= SOQL_REL_MANAGER; r++)
        if (str_ieqn(soql_rels[r].name, strlen(soql_rels[r].name), path, (size_t)(dot - path))) {
            if (leaf) *leaf = dot + 1;
            return (soql_rel)r;
        }
    return SOQL_REL_UNSUPPORTED;
}

const char *soql_relationship_key(soql_rel r)
{
    return r > SOQL_REL_NONE && r < SOQL_REL_UNSUPPORTED ? soql_rels[r].key : NULL;
}

const char *soql_relationship_name(soql_rel r)
{
    return r > SOQL_REL_NONE && r < SOQL_REL_UNSUPPORTED ? soql_rels[r].name : "";
}
