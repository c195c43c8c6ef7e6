/* soql evaluation: walks the tree compiled by soql.c over one record's values. It runs on every
 * event for every assignment, so it allocates nothing (this file references no allocator, which a
 * unit test checks on the object file), reads only the values and the clock, and keeps every loop
 * bounded by the sizes of the value and the filter. The null and type semantics it implements are
 * tabled at the top of soql.c. */
#include <math.h>
#include <string.h>

#include "soql.h"
#include "soql_impl.h"

/* Salesforce keeps an empty text value as null; see soql.c. */
static bool soql_is_null(const value_t *v)
{
    return v->type == VAL_NULL || (v->type == VAL_STR && (v->s == NULL || v->len == 0));
}

static soql_truth soql_of(bool b) { return b ? SOQL_TRUE : SOQL_FALSE; }

static soql_truth soql_not(soql_truth t)
{
    return t == SOQL_UNKNOWN ? SOQL_UNKNOWN : soql_of(t == SOQL_FALSE);
}

static soql_truth soql_apply(int op, int ord)
{
    switch (op) {
    case SO_EQ: return soql_of(ord == 0);
    case SO_NE: return soql_of(ord != 0);
    case SO_LT: return soql_of(ord < 0);
    case SO_LE: return soql_of(ord <= 0);
    case SO_GT: return soql_of(ord > 0);
    default: return soql_of(ord >= 0);
    }
}

/* Checkboxes have no order: only = and != mean something. */
static soql_truth soql_bool_cmp(bool a, bool b, int op)
{
    if (op == SO_EQ) return soql_of(a == b);
    if (op == SO_NE) return soql_of(a != b);
    return SOQL_UNKNOWN;
}

static soql_truth soql_num_cmp(double a, double b, int op)
{
    if (isnan(a) || isnan(b)) return SOQL_UNKNOWN;
    return soql_apply(op, a < b ? -1 : a > b ? 1 : 0);
}

/* a as written, b already folded (the same length once folded: see soql_fold_char). */
static int soql_icmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)a[i], y = (unsigned char)b[i];
        if (c < 0x80) { /* ASCII, nearly always: one byte, no decoding */
            c = soql_fold(c);
            if (c != y) return c < y ? -1 : 1;
            i++;
            continue;
        }
        unsigned char f[2];
        size_t k = soql_fold_char((const unsigned char *)a + i, n - i, f);
        for (size_t j = 0; j < k; i++, j++)
            if (f[j] != (unsigned char)b[i]) return f[j] < (unsigned char)b[i] ? -1 : 1;
    }
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static bool soql_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && soql_icmp(a, an, b, bn) == 0;
}

static bool soql_str_bool(const value_t *v, bool *out)
{
    if (soql_ieq(v->s, v->len, "true", 4)) return *out = true, true;
    if (soql_ieq(v->s, v->len, "false", 5)) return *out = false, true;
    return false;
}

/* ---- dates */

#define SOQL_DAY_MS 86400000LL

static int64_t soql_tz_ms(const soql_clock *c)
{
    return c ? (int64_t)c->tz_offset_minutes * 60000 : 0;
}

static int64_t soql_local_day(int64_t ms, const soql_clock *c)
{
    return soql_floordiv(ms + soql_tz_ms(c), SOQL_DAY_MS);
}

static int64_t soql_period_of(int unit, int64_t day)
{
    int64_t y, m;
    switch (unit) {
    case SU_DAY: return day;
    case SU_WEEK:
        return soql_floordiv(day + 4, 7); /* 1970-01-01 was a Thursday; weeks start Sunday */
    default: break;
    }
    soql_civil_from_days(day, &y, &m);
    if (unit == SU_MONTH) return y * 12 + (m - 1);
    if (unit == SU_QUARTER) return y * 4 + (m - 1) / 3;
    return y;
}

static int64_t soql_month_start(int64_t mi)
{
    int64_t y = soql_floordiv(mi, 12);
    return soql_days_from_civil(y, mi - y * 12 + 1, 1);
}

static int64_t soql_period_start(int unit, int64_t idx)
{
    switch (unit) {
    case SU_DAY: return idx;
    case SU_WEEK: return idx * 7 - 4;
    case SU_MONTH: return soql_month_start(idx);
    case SU_QUARTER: return soql_month_start(idx * 3);
    default: return soql_days_from_civil(idx, 1, 1);
    }
}

/* The days [*d0, *d1] a relative literal covers for this clock. */
static bool soql_rel_range(const soql_lit *l, const soql_clock *c, int64_t *d0, int64_t *d1)
{
    int64_t local;
    if (!c || __builtin_add_overflow(c->now_ms, soql_tz_ms(c), &local)) return false;
    int64_t cur = soql_period_of(l->unit, soql_floordiv(local, SOQL_DAY_MS));
    *d0 = soql_period_start(l->unit, cur + l->from);
    *d1 = soql_period_start(l->unit, cur + l->to + 1) - 1;
    return true;
}

static soql_truth soql_date_cmp(const value_t *v, const soql_lit *l, int op, const soql_clock *c)
{
    bool is_dt;
    int64_t t, ord;
    if (v->type != VAL_STR || !soql_parse_when(v->s, v->len, false, &is_dt, &t))
        return SOQL_UNKNOWN;
    switch (l->kind) {
    case SL_DATE: ord = (is_dt ? soql_local_day(t, c) : t) - l->t; break;
    case SL_DATETIME: ord = is_dt ? t - l->t : t - soql_local_day(l->t, c); break;
    default: {
        int64_t d0, d1;
        if (!soql_rel_range(l, c, &d0, &d1)) return SOQL_UNKNOWN;
        int64_t day = is_dt ? soql_local_day(t, c) : t;
        ord = day < d0 ? -1 : day > d1 ? 1 : 0;
        break;
    }
    }
    return soql_apply(op, ord < 0 ? -1 : ord > 0 ? 1 : 0);
}

/* Salesforce's semantics for an Id: the 15-character form (case-sensitive) and the 18-character
 * one (those 15 and a checksum of their case) name the same record. Admins copy the 15-character
 * form from Salesforce's addresses; the events carry 18. */
static bool soql_id_eq(const value_t *v, const soql_lit *l)
{
    if (!l->id || !((v->len == 15 && l->len == 18) || (v->len == 18 && l->len == 15))) return false;
    return soql_alnum(v->s, v->len) && memcmp(v->s, l->id, 15) == 0;
}

/* Both sides non-null. id: the field is an Id (soql_node.id_field). */
static soql_truth soql_cmp(const value_t *v, const soql_lit *l, int op, bool id,
                           const soql_clock *c)
{
    double d;
    bool b;
    switch (l->kind) {
    case SL_STR:
        if (v->type == VAL_STR) {
            if (op == SO_EQ || op == SO_NE)
                return soql_of((soql_ieq(v->s, v->len, l->s, l->len) || (id && soql_id_eq(v, l))) ==
                               (op == SO_EQ));
            return soql_apply(op, soql_icmp(v->s, v->len, l->s, l->len));
        }
        if (v->type == VAL_NUM && l->has_num) return soql_num_cmp(v->num, l->num, op);
        if (v->type == VAL_BOOL && l->has_bool) return soql_bool_cmp(v->b, l->b, op);
        return SOQL_UNKNOWN;
    case SL_NUM:
        if (v->type == VAL_NUM) return soql_num_cmp(v->num, l->num, op);
        if (v->type == VAL_STR && soql_parse_num(v->s, v->len, &d))
            return soql_num_cmp(d, l->num, op);
        return SOQL_UNKNOWN;
    case SL_BOOL:
        if (v->type == VAL_BOOL) return soql_bool_cmp(v->b, l->b, op);
        if (v->type == VAL_STR && soql_str_bool(v, &b)) return soql_bool_cmp(b, l->b, op);
        return SOQL_UNKNOWN;
    default: return soql_date_cmp(v, l, op, c);
    }
}

/* `f = null` is true for a null field and, Salesforce checkboxes never being null, for false. */
static bool soql_eq_null(const value_t *v)
{
    return soql_is_null(v) || (v->type == VAL_BOOL && !v->b);
}

static soql_truth soql_in(const soql_filter *f, const soql_node *n, const value_t *v,
                          const soql_clock *c)
{
    soql_truth res = SOQL_FALSE;
    const soql_lit *l = f->lits + n->a;
    for (uint32_t i = 0; i < n->n; i++) {
        soql_truth t;
        if (l[i].kind == SL_NULL)
            t = soql_of(soql_eq_null(v));
        else if (soql_is_null(v))
            t = SOQL_UNKNOWN;
        else
            t = soql_cmp(v, &l[i], SO_EQ, n->id_field, c);
        if (t == SOQL_TRUE) return SOQL_TRUE;
        if (t == SOQL_UNKNOWN) res = SOQL_UNKNOWN;
    }
    return res;
}

/* ---- LIKE */

static size_t soql_utf8_len(unsigned char c)
{
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* Whole-string match of s against the escaped, folded pattern p. Iterative, backtracking only to
 * the last '%', so the cost is bounded by len(s) * len(p) and the stack is constant. '_' and the
 * backtracking step move by whole UTF-8 characters. */
static bool soql_like_general(const char *s, size_t n, const char *p, size_t pn)
{
    size_t si = 0, pi = 0, star_p = 0, star_s = 0;
    bool star = false;
    while (si < n) {
        if (pi < pn) {
            char pc = p[pi];
            if (pc == '%') {
                star = true;
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (pc == '_') {
                size_t k = soql_utf8_len((unsigned char)s[si]);
                si += k < n - si ? k : n - si;
                pi++;
                continue;
            }
            size_t q = pc == '\\' ? pi + 1 : pi; /* escapes only precede ASCII */
            unsigned char f[2];
            size_t k = soql_fold_char((const unsigned char *)s + si, n - si, f);
            if (q + k <= pn && f[0] == (unsigned char)p[q] &&
                (k == 1 || f[1] == (unsigned char)p[q + 1])) {
                si += k;
                pi = q + k;
                continue;
            }
        }
        if (!star) return false;
        size_t k = soql_utf8_len((unsigned char)s[star_s]);
        star_s += k < n - star_s ? k : n - star_s;
        si = star_s;
        pi = star_p;
    }
    while (pi < pn && p[pi] == '%')
        pi++;
    return pi == pn;
}

static bool soql_contains(const char *s, size_t n, const char *core, size_t cn)
{
    if (cn > n) return false;
    unsigned char first = (unsigned char)core[0];
    for (size_t i = 0; i + cn <= n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && soql_fold(c) != first) continue; /* the common case, decided at once */
        if (soql_ieq(s + i, cn, core, cn)) return true;
    }
    return false;
}

static bool soql_like(const value_t *v, const soql_lit *l)
{
    const char *s = v->s;
    size_t n = v->len, cn = l->core_len;
    switch (l->like) {
    case SK_ANY: return true;
    case SK_EXACT: return soql_ieq(s, n, l->core, cn);
    case SK_PREFIX: return n >= cn && soql_ieq(s, cn, l->core, cn);
    case SK_SUFFIX: return n >= cn && soql_ieq(s + n - cn, cn, l->core, cn);
    case SK_CONTAINS: return soql_contains(s, n, l->core, cn);
    default: return soql_like_general(s, n, l->s, l->len);
    }
}

/* ---- INCLUDES / EXCLUDES */

static bool soql_has_term(const char *s, size_t n, const char *t, size_t tn)
{
    size_t at = 0, b, e;
    while (soql_next_term(s, n, &at, &b, &e))
        if (soql_ieq(s + b, e - b, t, tn)) return true;
    return false;
}

static bool soql_includes(const soql_filter *f, const soql_node *n, const value_t *v)
{
    const soql_lit *l = f->lits + n->a;
    for (uint32_t i = 0; i < n->n; i++) {
        const char *t = l[i].s, *end = l[i].s + l[i].len;
        bool all = true;
        while (all && t < end) {
            const char *semi = memchr(t, ';', (size_t)(end - t));
            const char *te = semi ? semi : end;
            all = soql_has_term(v->s, v->len, t, (size_t)(te - t));
            t = te + 1;
        }
        if (all) return true;
    }
    return false;
}

/* ---- the walk */

static const value_t soql_null_value = {.type = VAL_NULL};

static soql_truth soql_eval_node(const soql_filter *f, uint32_t idx, const value_t *values,
                                 const soql_clock *c)
{
    const soql_node *n = f->nodes + idx;
    const value_t *v = n->kind >= SN_CMP && values ? values + n->field : &soql_null_value;
    switch (n->kind) {
    case SN_TRUE: return SOQL_TRUE;
    case SN_AND:
    case SN_OR: {
        /* Kleene: a FALSE (AND) or TRUE (OR) operand decides; otherwise any UNKNOWN wins. */
        soql_truth decisive = n->kind == SN_AND ? SOQL_FALSE : SOQL_TRUE;
        bool unknown = false;
        for (uint32_t i = 0; i < n->n; i++) {
            soql_truth t = soql_eval_node(f, f->kids[n->a + i], values, c);
            if (t == decisive) return decisive;
            if (t == SOQL_UNKNOWN) unknown = true;
        }
        return unknown ? SOQL_UNKNOWN : soql_not(decisive);
    }
    case SN_NOT: return soql_not(soql_eval_node(f, n->a, values, c));
    case SN_CMP: {
        const soql_lit *l = f->lits + n->a;
        if (l->kind == SL_NULL) return soql_of(soql_eq_null(v) == (n->op == SO_EQ));
        if (soql_is_null(v)) return SOQL_UNKNOWN; /* R3.4: a comparison with null is not true */
        return soql_cmp(v, l, n->op, n->id_field, c);
    }
    case SN_LIKE:
        if (soql_is_null(v) || v->type != VAL_STR) return SOQL_UNKNOWN;
        return soql_of(soql_like(v, f->lits + n->a));
    case SN_IN: return soql_in(f, n, v, c);
    case SN_NOT_IN:
        if (soql_is_null(v)) return n->has_null ? SOQL_FALSE : SOQL_UNKNOWN;
        return soql_not(soql_in(f, n, v, c));
    case SN_INCLUDES:
    case SN_EXCLUDES:
        if (soql_is_null(v) || v->type != VAL_STR) return SOQL_UNKNOWN;
        return soql_of(soql_includes(f, n, v) == (n->kind == SN_INCLUDES));
    default: return SOQL_UNKNOWN;
    }
}

soql_truth soql_eval(const soql_filter *f, const value_t *values, const soql_clock *clock)
{
    if (!f) return SOQL_UNKNOWN;
    return soql_eval_node(f, f->root, values, clock);
}
