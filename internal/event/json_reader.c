/* A strict RFC 8259 JSON reader into an arena tree, for event_from_json (see json_reader.h). It
 * replaces jansson's DOM on the hot path: jansson allocated every node and string with malloc,
 * which cost about half of `provisioner simulate`. Strings are scanned once to find their end and
 * check them (UTF-8, control characters, escapes), then copied or decoded once into the arena. */
#include "json_reader.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *base, *p, *end;
    arena *mem;
    perr *err;
    int depth;
} parser;

/* ---------------------------------------------------------------- errors */

/* Characters before `at`, plus one: UTF-8 continuation bytes do not start a character. */
static size_t column_of(const parser *ps, const unsigned char *at)
{
    size_t col = 1;
    for (const unsigned char *q = ps->base; q < at; q++)
        col += (*q & 0xC0) != 0x80;
    return col;
}

static int fail(parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(parser *ps, const unsigned char *at, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return perr_set(ps->err, "column %zu: invalid JSON: %s", column_of(ps, at), what);
}

/* "'x'" for a printable character, "byte 0xNN" otherwise, for messages. */
static const char *describe(const unsigned char *at, char out[16])
{
    if (*at >= 0x20 && *at < 0x7F)
        snprintf(out, 16, "'%c'", *at);
    else
        snprintf(out, 16, "byte 0x%02x", *at);
    return out;
}

static int unexpected(parser *ps, const char *expected)
{
    if (ps->p >= ps->end) return fail(ps, ps->p, "unexpected end of input, expected %s", expected);
    char d[16];
    return fail(ps, ps->p, "unexpected %s, expected %s", describe(ps->p, d), expected);
}

/* ---------------------------------------------------------------- lexing helpers */

static void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* Bytes that stand for themselves inside a string: printable ASCII except '"' and '\\'. Everything
 * else leaves the fast loop: the quote, an escape, a control character or a UTF-8 sequence. */
/* clang-format off */
static const bool plain_byte[256] = {
#define R8(x) x, x, x, x, x, x, x, x
    R8(0), R8(0), R8(0), R8(0), /* 0x00-0x1F: control characters */
    1, 1, 0, 1, 1, 1, 1, 1, R8(1), R8(1), R8(1), /* 0x20-0x3F, '"' at 0x22 */
    R8(1), R8(1), R8(1), 1, 1, 1, 1, 0, 1, 1, 1, /* 0x40-0x5F, '\\' at 0x5C */
    R8(1), R8(1), R8(1), R8(1), /* 0x60-0x7F */
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),
#undef R8
};
/* clang-format on */

/* Skips the plain bytes at q, eight at a time: a word is tested for a quote, a backslash, a control
 * character or a non-ASCII byte with the usual bit tricks. They can flag a byte above the first
 * real hit but never below it, so on a little-endian machine the lowest flag is the exact stop;
 * elsewhere the last bytes go one at a time. String contents are most of a change event's bytes,
 * in short strings, so finding the closing quote without a byte loop matters. */
static const unsigned char *skip_plain(const unsigned char *q, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - q >= 8) {
        uint64_t x, quote, bslash;
        memcpy(&x, q, sizeof x);
        quote = x ^ (ones * '"');
        bslash = x ^ (ones * '\\');
        uint64_t hit = (x | ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) |
                        ((bslash - ones) & ~bslash)) &
                       highs;
        if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return q + __builtin_ctzll(hit) / 8;
#else
            break;
#endif
        }
        q += 8;
    }
    while (q < end && plain_byte[*q])
        q++;
    return q;
}

/* Length of the well-formed UTF-8 sequence at q (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *q, const unsigned char *end)
{
    unsigned c = q[0];
    size_t n;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - q) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (q[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int hex4(const unsigned char *q, const unsigned char *end)
{
    if (end - q < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = q[i];
        int d;
        if (c >= '0' && c <= '9')
            d = (int)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (int)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (int)(c - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* ---------------------------------------------------------------- strings */

/* Checks the escape at q ('\\'); returns its length in the input, or -1 (error set). */
static int check_escape(parser *ps, const unsigned char *q)
{
    if (ps->end - q < 2) return fail(ps, q, "unterminated escape");
    switch (q[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't': return 2;
    case 'u': break;
    default: {
        char d[16];
        return fail(ps, q, "invalid escape '\\' followed by %s", describe(q + 1, d));
    }
    }
    int cp = hex4(q + 2, ps->end);
    if (cp < 0) return fail(ps, q, "invalid \\u escape: four hex digits expected");
    /* jansson refused NUL too; names and values are kept as C strings */
    if (cp == 0) return fail(ps, q, "\\u0000 is not allowed");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, q, "lone low surrogate \\u%04X", (unsigned)cp);
    if (cp < 0xD800 || cp > 0xDBFF) return 6;
    int lo = ps->end - q >= 12 && q[6] == '\\' && q[7] == 'u' ? hex4(q + 8, ps->end) : -1;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(ps, q, "high surrogate \\u%04X not followed by a low one", (unsigned)cp);
    return 12;
}

/* Decodes the raw text between the quotes, already checked, into out; returns the end. */
static char *decode_escaped(const unsigned char *q, const unsigned char *end, char *o)
{
    while (q < end) {
        if (*q != '\\') {
            *o++ = (char)*q++;
            continue;
        }
        switch (q[1]) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(q + 2, end);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo = (unsigned)hex4(q + 8, end);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            }
            o = put_utf8(o, cp);
            q += 6;
            continue;
        }
        default: *o++ = (char)q[1]; break; /* '"', '\\', '/' */
        }
        q += 2;
    }
    return o;
}

/* ps->p is at the opening quote. */
static int parse_string(parser *ps, const char **s, size_t *len)
{
    const unsigned char *open = ps->p, *q = open + 1, *end = ps->end;
    bool escaped = false;
    for (;;) {
        q = skip_plain(q, end);
        if (q >= end) return fail(ps, open, "unterminated string");
        unsigned c = *q;
        if (c == '"') break;
        if (c == '\\') {
            int n = check_escape(ps, q);
            if (n < 0) return -1;
            escaped = true;
            q += n;
        } else if (c < 0x20) {
            return fail(ps, q, "control character 0x%02x in a string", c);
        } else {
            size_t n = utf8_seq(q, end);
            if (!n) return fail(ps, q, "invalid UTF-8 (byte 0x%02x)", c);
            q += n;
        }
    }
    size_t raw = (size_t)(q - open - 1);
    char *out = arena_alloc(ps->mem, raw + 1);
    char *o = out + raw;
    if (!escaped)
        memcpy(out, open + 1, raw);
    else
        o = decode_escaped(open + 1, q, out);
    *o = '\0';
    *s = out;
    *len = (size_t)(o - out);
    ps->p = q + 1;
    return 0;
}

/* ---------------------------------------------------------------- numbers, literals */

static bool is_digit(const unsigned char *q, const unsigned char *end)
{
    return q < end && *q >= '0' && *q <= '9';
}

static int parse_number(parser *ps, jr_value *out)
{
    const unsigned char *start = ps->p, *q = start, *end = ps->end;
    bool neg = *q == '-', is_int = true;
    if (neg) q++;
    if (!is_digit(q, end)) return fail(ps, start, "invalid number: a digit must follow '-'");
    const unsigned char *digits = q;
    if (*q == '0') {
        q++;
        if (is_digit(q, end)) return fail(ps, start, "invalid number: leading zero");
    } else {
        while (is_digit(q, end))
            q++;
    }
    if (q < end && *q == '.') {
        q++;
        if (!is_digit(q, end)) return fail(ps, start, "invalid number: a digit must follow '.'");
        while (is_digit(q, end))
            q++;
        is_int = false;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (!is_digit(q, end)) return fail(ps, start, "invalid number: a digit must follow 'e'");
        while (is_digit(q, end))
            q++;
        is_int = false;
    }
    ps->p = q;
    if (is_int) {
        /* jansson refused integers outside int64 rather than rounding them; so do we */
        uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (const unsigned char *d = digits; d < q; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (v > (limit - dig) / 10) return fail(ps, start, "integer out of range");
            v = v * 10 + dig;
        }
        out->type = JR_INT;
        out->u.i = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
    }
    /* strtod needs a terminated copy; the grammar is already checked, and the process runs in the
     * C locale (nothing calls setlocale), so '.' is the decimal point */
    size_t n = (size_t)(q - start);
    char tmp[64];
    char *txt = n < sizeof tmp ? tmp : arena_alloc(ps->mem, n + 1);
    memcpy(txt, start, n);
    txt[n] = '\0';
    errno = 0;
    double d = strtod(txt, NULL);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return fail(ps, start, "number out of range");
    out->type = JR_REAL;
    out->u.d = d;
    return 0;
}

static int parse_literal(parser *ps, jr_value *out)
{
    static const struct {
        const char *word;
        size_t len;
        jr_type type;
    } words[] = {{"true", 4, JR_TRUE}, {"false", 5, JR_FALSE}, {"null", 4, JR_NULL}};
    const unsigned char *q = ps->p;
    size_t avail = (size_t)(ps->end - q);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        if (words[i].word[0] != *q) continue;
        if (avail < words[i].len || memcmp(q, words[i].word, words[i].len) != 0) break;
        const unsigned char *after = q + words[i].len;
        if (after < ps->end &&
            ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
             (*after >= '0' && *after <= '9')))
            break; /* "truex", "null1" */
        out->type = words[i].type;
        ps->p = after;
        return 0;
    }
    return fail(ps, q, "invalid literal (true, false or null expected)");
}

/* ---------------------------------------------------------------- containers */

static int parse_value(parser *ps, jr_value *out);

/* For the duplicate-key table only: the length and the first and last eight bytes, mixed. Cheaper
 * than hashing every byte, and enough to tell field names apart; a collision costs a comparison. */
static uint32_t key_hash(const char *s, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, s, sizeof a);
        memcpy(&b, s + n - 8, sizeof b);
    } else {
        for (size_t i = 0; i < n; i++)
            a = a << 8 | (unsigned char)s[i];
    }
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + n) * 0xC2B2AE3D27D4EB4FULL;
    return (uint32_t)(h >> 32);
}

static bool same_key(const jr_node *a, const jr_node *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* A repeated key keeps its first place and takes the last value, as jansson's objects did. Small
 * objects are checked pairwise; larger ones (a CREATE payload has ~40 keys) through a hash table
 * on the stack, or in the arena for very large ones. */
static void dedupe(parser *ps, jr_value *obj)
{
    size_t n = obj->u.list.n;
    if (n < 2) return;
    if (n <= 8) {
        for (jr_node *a = obj->u.list.first; a; a = a->next) {
            jr_node *prev = a;
            for (jr_node *b = a->next; b; b = prev->next) {
                if (same_key(a, b)) {
                    a->val = b->val;
                    prev->next = b->next;
                    obj->u.list.n--;
                } else {
                    prev = b;
                }
            }
        }
        return;
    }
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    jr_node *stack_slots[256];
    jr_node **slots = cap <= 256 ? stack_slots : arena_alloc(ps->mem, cap * sizeof *slots);
    memset(slots, 0, cap * sizeof *slots);
    jr_node *prev = NULL;
    for (jr_node *b = obj->u.list.first; b; b = b->next) {
        size_t i = key_hash(b->key, b->key_len) & (cap - 1);
        while (slots[i] && !same_key(slots[i], b))
            i = (i + 1) & (cap - 1);
        if (!slots[i]) {
            slots[i] = b;
            prev = b;
            continue;
        }
        slots[i]->val = b->val;
        prev->next = b->next; /* prev is never NULL here: the first node is always new */
        obj->u.list.n--;
    }
}

static int enter(parser *ps)
{
    if (++ps->depth > JR_MAX_DEPTH)
        return fail(ps, ps->p, "nesting deeper than %d levels", JR_MAX_DEPTH);
    ps->p++; /* the '{' or '[' */
    return 0;
}

/* An object's members or an array's elements, in order: one loop, the keys aside. */
static int parse_list(parser *ps, jr_value *out, bool object)
{
    char close = object ? '}' : ']';
    if (enter(ps) < 0) return -1;
    out->type = object ? JR_OBJECT : JR_ARRAY;
    out->u.list.first = NULL;
    out->u.list.n = 0;
    jr_node **tail = &out->u.list.first;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (;;) {
        jr_node *nd = arena_alloc(ps->mem, sizeof *nd);
        nd->next = NULL;
        nd->key = NULL;
        nd->key_len = 0;
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') return unexpected(ps, "a string key");
            if (parse_string(ps, &nd->key, &nd->key_len) < 0) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return unexpected(ps, "':'");
            ps->p++;
        }
        if (parse_value(ps, &nd->val) < 0) return -1;
        *tail = nd;
        tail = &nd->next;
        out->u.list.n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        return unexpected(ps, object ? "',' or '}'" : "',' or ']'");
    }
    if (object) dedupe(ps, out);
    ps->depth--;
    return 0;
}

static int parse_value(parser *ps, jr_value *out)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return unexpected(ps, "a value");
    switch (*ps->p) {
    case '{': return parse_list(ps, out, true);
    case '[': return parse_list(ps, out, false);
    case '"': out->type = JR_STRING; return parse_string(ps, &out->u.str.s, &out->u.str.len);
    case 't':
    case 'f':
    case 'n': return parse_literal(ps, out);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': return parse_number(ps, out);
    default: return unexpected(ps, "a value");
    }
}

int jr_parse(const char *text, size_t len, arena *mem, jr_value *out, perr *err)
{
    parser ps = {.base = (const unsigned char *)text,
                 .p = (const unsigned char *)text,
                 .end = (const unsigned char *)text + len,
                 .mem = mem,
                 .err = err};
    if (parse_value(&ps, out) < 0) return -1;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        char d[16];
        return fail(&ps, ps.p, "unexpected %s after the JSON value", describe(ps.p, d));
    }
    return 0;
}

const jr_value *jr_get(const jr_value *v, const char *key)
{
    if (!v || v->type != JR_OBJECT) return NULL;
    size_t n = strlen(key);
    for (const jr_node *nd = v->u.list.first; nd; nd = nd->next)
        if (nd->key_len == n && memcmp(nd->key, key, n) == 0) return &nd->val;
    return NULL;
}

/* ---------------------------------------------------------------- compact text */

static void put(char *out, size_t *n, const char *s, size_t len)
{
    if (out) memcpy(out + *n, s, len);
    *n += len;
}

/* jansson's string escaping: the two mandatory escapes, the short forms of \b \f \n \r \t, other
 * control characters as \u00XX in upper case; '/' and non-ASCII stay as they are. */
static void dump_string(const char *s, size_t len, char *out, size_t *n)
{
    put(out, n, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(out, n, s + start, i - start);
        start = i + 1;
        char seq[8];
        const char *t = seq;
        size_t tl = 2;
        switch (c) {
        case '"': t = "\\\""; break;
        case '\\': t = "\\\\"; break;
        case '\b': t = "\\b"; break;
        case '\f': t = "\\f"; break;
        case '\n': t = "\\n"; break;
        case '\r': t = "\\r"; break;
        case '\t': t = "\\t"; break;
        default: tl = (size_t)snprintf(seq, sizeof seq, "\\u%04X", c); break;
        }
        put(out, n, t, tl);
    }
    put(out, n, s + start, len - start);
    put(out, n, "\"", 1);
}

/* jansson's real format: "%.17g", ".0" added when the text would read back as an integer, and the
 * exponent without '+' or leading zeros ("1e17", "9.9999999999999995e-8"). */
static size_t format_real(double d, char out[40])
{
    int r = snprintf(out, 40, "%.17g", d);
    size_t len = r < 0 ? 0 : (size_t)r;
    if (!strchr(out, '.') && !strchr(out, 'e')) {
        memcpy(out + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(out, 'e');
    if (e) {
        char *start = e + 1, *digits = e + 2;
        if (*start == '-') start++;
        while (*digits == '0')
            digits++;
        if (digits != start) {
            memmove(start, digits, len - (size_t)(digits - out) + 1);
            len -= (size_t)(digits - start);
        }
    }
    return len;
}

static void dump(const jr_value *v, char *out, size_t *n)
{
    char tmp[40];
    switch (v->type) {
    case JR_NULL: put(out, n, "null", 4); break;
    case JR_TRUE: put(out, n, "true", 4); break;
    case JR_FALSE: put(out, n, "false", 5); break;
    case JR_INT: {
        int r = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        put(out, n, tmp, (size_t)r);
        break;
    }
    case JR_REAL: put(out, n, tmp, format_real(v->u.d, tmp)); break;
    case JR_STRING: dump_string(v->u.str.s, v->u.str.len, out, n); break;
    case JR_ARRAY:
    case JR_OBJECT: {
        bool obj = v->type == JR_OBJECT;
        put(out, n, obj ? "{" : "[", 1);
        for (const jr_node *nd = v->u.list.first; nd; nd = nd->next) {
            if (nd != v->u.list.first) put(out, n, ",", 1);
            if (obj) {
                dump_string(nd->key, nd->key_len, out, n);
                put(out, n, ":", 1);
            }
            dump(&nd->val, out, n);
        }
        put(out, n, obj ? "}" : "]", 1);
        break;
    }
    }
}

size_t jr_dump(const jr_value *v, char *out)
{
    size_t n = 0;
    dump(v, out, &n);
    return n;
}
