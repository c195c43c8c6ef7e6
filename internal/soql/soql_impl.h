/* soql private: the compiled form shared by the compiler (soql.c) and the evaluator
 * (soql_eval.c). Not part of the component's API; nothing outside internal/soql includes it.
 * The evaluator lives in its own translation unit so that "evaluation does not allocate" can be
 * checked on the object file (no allocator symbol is referenced there). */
#ifndef PROVISIONER_SOQL_IMPL_H
#define PROVISIONER_SOQL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "soql.h"

/* Literal kinds after compilation. A string literal '' in =, !=, IN, NOT IN is compiled to
 * SL_NULL, because Salesforce stores an empty text value as null. */
enum { SL_NULL, SL_BOOL, SL_NUM, SL_STR, SL_DATE, SL_DATETIME, SL_REL };

/* Relative date literals are normalised to "periods from..to of this unit, counted from the
 * period that contains today": TODAY = DAY 0..0, LAST_N_DAYS:n = DAY -n..0, NEXT_WEEK = WEEK 1..1,
 * LAST_N_MONTHS:n = MONTH -n..-1, ... */
enum { SU_DAY, SU_WEEK, SU_MONTH, SU_QUARTER, SU_YEAR };

/* Shapes of a LIKE pattern; the common ones avoid the general matcher. */
enum { SK_GENERAL, SK_EXACT, SK_PREFIX, SK_SUFFIX, SK_CONTAINS, SK_ANY };

/* Comparison operators. */
enum { SO_EQ, SO_NE, SO_LT, SO_LE, SO_GT, SO_GE };

/* Node kinds. */
enum {
    SN_TRUE,
    SN_AND,
    SN_OR,
    SN_NOT,
    SN_CMP,
    SN_LIKE,
    SN_IN,
    SN_NOT_IN,
    SN_INCLUDES,
    SN_EXCLUDES
};

/* String literals are stored ASCII-lower-cased once at compile time (s, len). SL_STR also
 * carries its reading as a number and as a boolean, for comparisons with number and checkbox
 * fields. For LIKE, s is the pattern in an escaped form ('%' and '_' are wildcards, '\' + byte is
 * that byte literally) and core is the pattern's text without wildcards for the simple shapes. For
 * INCLUDES/EXCLUDES, s holds the item's terms, trimmed, joined by ';'; nterms counts them. */
typedef struct soql_lit {
    uint8_t kind;
    uint8_t unit;      /* SL_REL */
    uint8_t like;      /* LIKE shape */
    bool b;            /* SL_BOOL; SL_STR: its boolean reading when has_bool */
    bool has_num;      /* SL_STR reads as a number */
    bool has_bool;     /* SL_STR reads as true/false */
    int32_t from, to;  /* SL_REL */
    uint32_t len;      /* length of s */
    uint32_t core_len; /* LIKE */
    uint32_t nterms;   /* INCLUDES / EXCLUDES */
    uint32_t pos, span; /* where it is written in the filter's text, for soql_type_hints */
    double num;        /* SL_NUM; SL_STR when has_num */
    int64_t t;         /* SL_DATE: days since 1970-01-01; SL_DATETIME: ms since the epoch */
    const char *s;
    const char *core;
    const char *id; /* SL_STR of 15 or 18 letters and digits: as written (s is folded) */
} soql_lit;

static inline bool soql_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
            return false;
    return true;
}

/* AND/OR: children are kids[a .. a+n). NOT: a is the child node. CMP and LIKE: a is the literal.
 * IN, NOT IN, INCLUDES, EXCLUDES: literals lits[a .. a+n). */
typedef struct soql_node {
    uint8_t kind;
    uint8_t op;
    bool has_null; /* IN / NOT IN: the list holds null */
    bool id_field; /* the field is an Id (its name ends in "Id"): 15 and 18 characters match */
    uint32_t field;
    uint32_t a, n;
} soql_node;

struct soql_filter {
    soql_node *nodes;
    uint32_t *kids;
    soql_lit *lits;
    const char **fields;
    size_t nnodes, nkids, nlits, nfields;
    size_t cap_nodes, cap_kids, cap_lits, cap_fields;
    uint32_t root;
    bool relationships;
    arena mem; /* literal text and field names */
};

/* ---- case folding: what "ignore case" means here. ASCII, and Unicode's simple case folding of
 * the letters whose upper and lower case are both two-byte UTF-8 (Latin-1, Latin Extended-A,
 * Greek, Cyrillic): folding never changes a string's length, so a literal folded at compile time
 * lines up byte for byte with a value folded while it is compared. Other bytes compare exactly. */
static inline unsigned char soql_fold(unsigned char c)
{
    return (unsigned char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
}

static inline uint32_t soql_fold_cp2(uint32_t c)
{
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x178) return 0xFF;
        bool even_upper = (c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177);
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if ((even_upper && c % 2 == 0) || (odd_upper && c % 2 == 1)) return c + 1;
        return c;
    }
    if (c >= 0x386 && c <= 0x3AB) {
        if (c == 0x386) return 0x3AC;
        if (c >= 0x388 && c <= 0x38A) return c + 0x25;
        if (c == 0x38C) return 0x3CC;
        if (c == 0x38E || c == 0x38F) return c + 0x3F;
        if (c >= 0x391 && c != 0x3A2) return c + 0x20;
        return c;
    }
    if (c == 0x3C2) return 0x3C3; /* final sigma folds to sigma */
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    if (c == 0x4C0) return 0x4CF;
    if (((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x4FF)) &&
        c % 2 == 0)
        return c + 1;
    if (c >= 0x4C1 && c <= 0x4CE && c % 2 == 1) return c + 1;
    return c;
}

/* Folds the character at s (n > 0 bytes left) into out: returns how many bytes it took, 1 or 2,
 * and out holds as many. */
static inline size_t soql_fold_char(const unsigned char *s, size_t n, unsigned char out[2])
{
    if (s[0] >= 0xC2 && s[0] <= 0xDF && n >= 2 && (s[1] & 0xC0) == 0x80) {
        uint32_t c = soql_fold_cp2(((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F));
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = soql_fold(s[0]);
    return 1;
}

/* ---- civil dates (proleptic Gregorian), after H. Hinnant's days_from_civil. */
static inline int64_t soql_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int64_t soql_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = soql_floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static inline void soql_civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = soql_floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static inline int soql_days_in_month(int64_t y, int64_t m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

static inline bool soql_digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s[0..10): days since 1970-01-01. */
static inline bool soql_parse_date10(const char *s, int64_t *day)
{
    int64_t y, m, d;
    if (!soql_digits(s, 4, &y) || s[4] != '-' || !soql_digits(s + 5, 2, &m) || s[7] != '-' ||
        !soql_digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > soql_days_in_month(y, m)) return false;
    *day = soql_days_from_civil(y, m, d);
    return true;
}

/* A date ("YYYY-MM-DD", *is_datetime = false, *t in days) or a date-time
 * ("YYYY-MM-DDThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm)", *t in ms since the epoch, UTC), exactly n
 * bytes. Literals in a filter must carry their zone (strict, as SOQL requires); field values may
 * also use +hhmm (the REST API's spelling) or no zone at all (read as UTC). */
static inline bool soql_parse_when(const char *s, size_t n, bool strict, bool *is_datetime,
                                   int64_t *t)
{
    int64_t day, hh, mi, ss, ms = 0;
    if (n < 10 || !soql_parse_date10(s, &day)) return false;
    if (n == 10) {
        *is_datetime = false;
        *t = day;
        return true;
    }
    if (n < 19 || (s[10] != 'T' && s[10] != 't') || !soql_digits(s + 11, 2, &hh) || s[13] != ':' ||
        !soql_digits(s + 14, 2, &mi) || s[16] != ':' || !soql_digits(s + 17, 2, &ss) || hh > 23 ||
        mi > 59 || ss > 59)
        return false;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        int64_t scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale; /* digits past milliseconds are truncated */
            scale /= 10;
            i++;
        }
        if (i == start) return false;
    }
    int64_t off = 0;
    if (i == n) {
        if (strict) return false;
    } else if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int64_t oh, om;
        int sign = s[i] == '-' ? -1 : 1;
        if (n - i == 6 && s[i + 3] == ':') {
            if (!soql_digits(s + i + 1, 2, &oh) || !soql_digits(s + i + 4, 2, &om)) return false;
        } else if (!strict && n - i == 5) {
            if (!soql_digits(s + i + 1, 2, &oh) || !soql_digits(s + i + 3, 2, &om)) return false;
        } else {
            return false;
        }
        if (oh > 23 || om > 59) return false;
        off = sign * (oh * 60 + om);
    } else {
        return false;
    }
    *is_datetime = true;
    *t = ((day * 86400 + hh * 3600 + mi * 60 + ss) - off * 60) * 1000 + ms;
    return true;
}

/* A number as SOQL and JSON write it: [+-]digits[.digits][e[+-]digits] (".5" and "5." too), exactly
 * n bytes. Parsed with strtod from a bounded stack copy, so both sides of a comparison round the
 * same way and no allocation happens; longer text is not read as a number. */
static inline bool soql_parse_num(const char *s, size_t n, double *out)
{
    char tmp[64];
    size_t i = 0, digits = 0;
    if (n == 0 || n >= sizeof tmp) return false;
    if (s[i] == '+' || s[i] == '-') i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e) return false;
    }
    if (i != n) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

/* The next term of a multi-select picklist value s[0..n) from *at: its bounds [*b, *e) without
 * the blanks around it (empty for ";;"). False once every term was given. The compiler splits a
 * literal and the evaluator a field's value with it, so both agree on what a term is. */
static inline bool soql_next_term(const char *s, size_t n, size_t *at, size_t *b, size_t *e)
{
    size_t i = *at;
    if (i > n) return false;
    size_t tb = i;
    while (i < n && s[i] != ';')
        i++;
    size_t te = i;
    while (tb < te && (s[tb] == ' ' || s[tb] == '\t'))
        tb++;
    while (te > tb && (s[te - 1] == ' ' || s[te - 1] == '\t'))
        te--;
    *b = tb;
    *e = te;
    *at = i + 1;
    return true;
}

#endif
