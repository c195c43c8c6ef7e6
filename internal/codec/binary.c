/* Avro binary primitives: the checked reader's out-of-line parts, the writer, and the ISO-8601
 * forms of Avro's date and timestamp logical types. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

int codec_rd_fail(av_reader *r, codec_error_kind kind, const char *fmt, ...)
{
    if (r->err) {
        r->err->kind = kind;
        r->err->offset = (size_t)(r->p - r->base);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err->msg, sizeof r->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int codec_rd_block(av_reader *r, size_t *count)
{
    int64_t c;
    if (codec_rd_long(r, &c) < 0) return -1;
    if (c < 0) {
        /* a negative count is followed by the block's byte size, which we do not need */
        if (c == INT64_MIN) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "bad block count");
        c = -c;
        int64_t size;
        if (codec_rd_long(r, &size) < 0) return -1;
        if (size < 0) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "negative block size");
    }
    if ((uint64_t)c > r->budget)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "block of %lld items in a %zu-byte value",
                       (long long)c, (size_t)(r->end - r->base));
    r->budget -= (size_t)c;
    *count = (size_t)c;
    return 0;
}

bool codec_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1Fu;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0Fu;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07u;
        else
            return false;
        if (n - i - 1 < need) return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

int codec_rd_string_view(av_reader *r, const uint8_t **s, size_t *len)
{
    size_t n;
    if (codec_rd_len(r, &n) < 0) return -1;
    /* Values must be C strings (value_t) and valid JSON text (event_to_json, commands). */
    if (memchr(r->p, 0, n)) return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "string with a NUL byte");
    if (!codec_utf8_valid(r->p, n))
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "string that is not UTF-8");
    *s = r->p;
    *len = n;
    r->p += n;
    return 0;
}

int codec_rd_string(av_reader *r, const char **s, size_t *len)
{
    const uint8_t *v;
    size_t n;
    if (codec_rd_string_view(r, &v, &n) < 0) return -1;
    *s = arena_strndup(r->mem, (const char *)v, n);
    *len = n;
    return 0;
}

static int need(av_reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return RD_FAIL(r, CODEC_ERR_TRUNCATED, "value ends inside a field");
    r->p += n;
    return 0;
}

static int enter(av_reader *r)
{
    if (++r->depth > AV_MAX_DEPTH)
        return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "nested more than %d deep", AV_MAX_DEPTH);
    return 0;
}

int codec_rd_skip(av_reader *r, const av_node *t)
{
    int64_t l;
    size_t n, i;
    switch (t->kind) {
    case AV_NULL: return 0;
    case AV_BOOLEAN:
        if (r->p<r->end && * r->p> 1)
            return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "boolean byte %u", *r->p);
        return need(r, 1);
    case AV_INT: {
        int32_t v;
        return codec_rd_int(r, &v);
    }
    case AV_LONG: return codec_rd_long(r, &l);
    case AV_FLOAT: return need(r, 4);
    case AV_DOUBLE: return need(r, 8);
    case AV_BYTES:
    case AV_STRING:
        if (codec_rd_len(r, &n) < 0) return -1;
        r->p += n;
        return 0;
    case AV_FIXED: return need(r, t->size);
    case AV_ENUM: return codec_rd_index(r, t->n_symbols, &n);
    case AV_UNION:
        if (codec_rd_index(r, t->n, &i) < 0 || enter(r) < 0 || codec_rd_skip(r, t->items[i]) < 0)
            return -1;
        r->depth--;
        return 0;
    case AV_RECORD:
        if (enter(r) < 0) return -1;
        for (i = 0; i < t->n; i++)
            if (codec_rd_skip(r, t->items[i]) < 0) return -1;
        r->depth--;
        return 0;
    case AV_ARRAY:
    case AV_MAP:
        if (enter(r) < 0) return -1;
        for (;;) {
            if (codec_rd_block(r, &n) < 0) return -1;
            if (n == 0) break;
            for (i = 0; i < n; i++) {
                if (t->kind == AV_MAP) {
                    size_t k;
                    if (codec_rd_len(r, &k) < 0) return -1;
                    r->p += k;
                }
                if (codec_rd_skip(r, t->items[0]) < 0) return -1;
            }
        }
        r->depth--;
        return 0;
    }
    return RD_FAIL(r, CODEC_ERR_BAD_RECORD, "unknown type");
}

/* ---- writing */
void codec_put_long(buf *b, int64_t v)
{
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    char tmp[10];
    size_t k = 0;
    while (n & ~(uint64_t)0x7f) {
        tmp[k++] = (char)((n & 0x7f) | 0x80);
        n >>= 7;
    }
    tmp[k++] = (char)n;
    buf_append(b, tmp, k);
}

void codec_put_bytes(buf *b, const void *p, size_t n)
{
    codec_put_long(b, (int64_t)n);
    buf_append(b, p, n);
}

void codec_put_frame(buf *b, int32_t id)
{
    uint32_t u = (uint32_t)id;
    char h[5] = {0, (char)(u >> 24), (char)(u >> 16), (char)(u >> 8), (char)u};
    buf_append(b, h, 5);
}

/* ---- dates (proleptic Gregorian, H. Hinnant's algorithms: exact for every int64 day) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static size_t put_date(int64_t days, char *out, size_t cap)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, cap, "%04lld-%02u-%02u", (long long)y, m, d);
    return n < 0 ? 0 : (size_t)n;
}

size_t codec_format_date(int64_t days, char out[64])
{
    /* days beyond ±2^40 are not dates any writer meant; the bound keeps the arithmetic exact */
    if (days > ((int64_t)1 << 40) || days < -((int64_t)1 << 40)) days = 0;
    return put_date(days, out, 64);
}

size_t codec_format_timestamp(int64_t t, bool micros, char out[64])
{
    int64_t per_sec = micros ? 1000000 : 1000, per_day = per_sec * 86400;
    int64_t days = t / per_day, rem = t % per_day;
    if (rem < 0) {
        rem += per_day;
        days--;
    }
    size_t n = put_date(days, out, 64);
    int64_t secs = rem / per_sec, frac = rem % per_sec;
    int k = snprintf(out + n, 64 - n, "T%02d:%02d:%02d.%0*lldZ", (int)(secs / 3600),
                     (int)(secs / 60 % 60), (int)(secs % 60), micros ? 6 : 3, (long long)frac);
    return n + (k < 0 ? 0 : (size_t)k);
}

static int digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static bool leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int parse_ymd(const char *s, size_t len, int64_t *days)
{
    unsigned y, m, d;
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len < 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) < 0 ||
        digits(s + 5, 2, &m) < 0 || digits(s + 8, 2, &d) < 0 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && leap(y)))
        return -1;
    *days = days_from_civil(y, m, d);
    return 0;
}

int codec_parse_date(const char *s, size_t len, int64_t *days)
{
    return len == 10 ? parse_ymd(s, len, days) : -1;
}

int codec_parse_timestamp(const char *s, size_t len, bool micros, int64_t *out)
{
    int64_t days;
    unsigned hh, mm, ss;
    if (len < 19 || parse_ymd(s, 10, &days) < 0 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':' || digits(s + 11, 2, &hh) < 0 || digits(s + 14, 2, &mm) < 0 ||
        digits(s + 17, 2, &ss) < 0 || hh > 23 || mm > 59 || ss > 59)
        return -1;
    size_t i = 19;
    int64_t frac = 0;
    unsigned places = micros ? 6 : 3, got = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (got < places) frac = frac * 10 + (s[i] - '0'), got++;
        if (i == start || i - start > 9) return -1;
    }
    for (; got < places; got++)
        frac *= 10;
    int64_t offset = 0; /* seconds east of UTC; no zone means UTC */
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        unsigned oh, om;
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        if (len - i == 5 && s[i + 2] == ':' && digits(s + i, 2, &oh) == 0 &&
            digits(s + i + 3, 2, &om) == 0)
            i += 5;
        else if (len - i == 4 && digits(s + i, 2, &oh) == 0 && digits(s + i + 2, 2, &om) == 0)
            i += 4;
        else
            return -1;
        if (oh > 23 || om > 59) return -1;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    }
    if (i != len) return -1;
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset;
    *out = secs * (micros ? 1000000 : 1000) + frac;
    return 0;
}
