#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int perr_set(perr *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int perr_prefix(perr *e, const char *fmt, ...)
{
    if (e) {
        char old[sizeof e->msg];
        memcpy(old, e->msg, sizeof old);
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        size_t used = n < 0 ? 0 : (size_t)n;
        if (used < sizeof e->msg - 1) {
            size_t room = sizeof e->msg - 1 - used, len = strnlen(old, sizeof old - 1);
            if (len > room) len = room;
            memcpy(e->msg + used, old, len);
            e->msg[used + len] = '\0';
        }
    }
    return -1;
}

static void oom(void)
{
    fputs("{\"level\":\"fatal\",\"msg\":\"out of memory\"}\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom();
    return q;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

/* ---- arena */
struct arena_block {
    arena_block *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

void arena_init(arena *a, size_t block_size)
{
    a->head = NULL;
    a->spare = NULL;
    a->block_size = block_size ? block_size : 16384;
}

void *arena_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        arena_block *nb = NULL;
        if (a->spare && a->spare->cap >= n) {
            nb = a->spare;
            a->spare = nb->next;
        } else {
            size_t cap = n > a->block_size ? n : a->block_size;
            nb = xmalloc(sizeof *nb + cap);
            nb->cap = cap;
        }
        nb->used = 0;
        nb->next = a->head;
        a->head = nb;
        b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

void *arena_grow(arena *a, const void *v, size_t n, size_t *cap, size_t elem, size_t first)
{
    size_t c = *cap ? *cap * 2 : first;
    void *nv = arena_alloc(a, c * elem);
    if (n) memcpy(nv, v, n * elem);
    *cap = c;
    return nv;
}

void arena_reset(arena *a)
{
    while (a->head) {
        arena_block *b = a->head;
        a->head = b->next;
        b->next = a->spare;
        a->spare = b;
    }
}

void arena_trim(arena *a, size_t keep)
{
    size_t kept = 0;
    arena_block **pp = &a->spare;
    while (*pp) {
        arena_block *b = *pp;
        if (kept + b->cap <= keep) {
            kept += b->cap;
            pp = &b->next;
        } else {
            *pp = b->next;
            free(b);
        }
    }
}

void arena_free(arena *a)
{
    arena_reset(a);
    while (a->spare) {
        arena_block *b = a->spare;
        a->spare = b->next;
        free(b);
    }
}

/* ---- buf */
void buf_init(buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void buf_grow(buf *b, size_t need)
{
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

int buf_read_file(buf *b, const char *path, size_t max)
{
    bool std = path == NULL;
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f) return -1;
    size_t start = b->len;
    char chunk[65536];
    size_t n;
    int rc = 0;
    errno = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len - start + n > max) {
            errno = EFBIG;
            rc = -1;
            break;
        }
        buf_append(b, chunk, n);
    }
    if (rc == 0 && ferror(f)) {
        if (!errno) errno = EIO;
        rc = -1;
    }
    int saved = errno;
    if (!std) fclose(f);
    errno = saved;
    return rc;
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

size_t fmt_i64(char out[FMT_I64_MAX], int64_t v)
{
    /* the magnitude as unsigned: -INT64_MIN does not fit in int64_t */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    /* two digits a division: commit timestamps (13 digits) in every command's source and id */
    static const char pairs[] = "0001020304050607080910111213141516171819"
                                "2021222324252627282930313233343536373839"
                                "4041424344454647484950515253545556575859"
                                "6061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char t[FMT_I64_MAX];
    size_t n = sizeof t;
    for (; m >= 100; m /= 100) {
        n -= 2;
        memcpy(t + n, pairs + 2 * (m % 100), 2);
    }
    if (m >= 10) {
        n -= 2;
        memcpy(t + n, pairs + 2 * m, 2);
    } else {
        t[--n] = (char)('0' + m);
    }
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    memcpy(out + k, t + n, sizeof t - n);
    return k + sizeof t - n;
}

void buf_put_i64(buf *b, int64_t v)
{
    char t[FMT_I64_MAX];
    buf_append(b, t, fmt_i64(t, v));
}

void buf_put_double(buf *b, double d)
{
    if (fabs(d) < 1e15 && d == (double)(long long)d) { /* the range test first: the cast */
        buf_put_i64(b, (long long)d);
        return;
    }
    char tmp[32];
    for (int prec = 15;; prec++) { /* 17 digits always read back */
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (prec == 17 || strtod(tmp, NULL) == d) break;
    }
    buf_puts(b, tmp);
}

/* Eight bytes that go out as they are: printable ASCII other than '"' and '\\' (the lead bytes
 * looked at below are not ASCII). The classic has-zero-byte tests: exact for "some byte is".
 * Command JSON is nearly all such bytes, and this loop was ~4% of the service's instructions. */
static inline bool json_plain8(const char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t q = w ^ (ones * '"'), k = w ^ (ones * '\\');
    uint64_t bad = w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((k - ones) & ~k);
    return !(bad & highs);
}

void buf_json_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 2);
    buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        while (i + 8 <= n && json_plain8(s + i))
            i += 8;
        if (i >= n) break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0xc2 && c != 0xe2) continue;
        if (c == 0xc2 || c == 0xe2) {
            /* U+0085, U+2028, U+2029 are line breaks to many line readers (Python's splitlines,
             * JavaScript): escaped, a JSON line stays one line for every reader */
            const unsigned char *t = (const unsigned char *)s + i;
            unsigned cp = 0;
            if (c == 0xc2 && i + 1 < n && t[1] == 0x85) cp = 0x85;
            if (c == 0xe2 && i + 2 < n && t[1] == 0x80 && (t[2] == 0xa8 || t[2] == 0xa9))
                cp = 0x2000u | (t[2] - 0x80u);
            if (!cp) continue;
            buf_append(b, s + start, i - start);
            buf_printf(b, "\\u%04x", cp); /* rare: printf's cost does not matter */
            i += c == 0xc2 ? 1 : 2;
            start = i + 1;
            continue;
        }
        buf_append(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        case '\b': buf_append(b, "\\b", 2); break;
        case '\f': buf_append(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
        }
    }
    buf_append(b, s + start, n - start);
    buf_putc(b, '"');
}

/* ---- hash */
/* The final avalanche (splitmix64's), so that near keys spread over a table. */
static inline uint64_t avalanche64(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

uint64_t hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return avalanche64(h);
}

/* The two chains are independent: interleaved, each multiply waits on its own chain only. */
void hash64_pair(const void *p, size_t n, uint64_t seed0, uint64_t seed1, uint64_t out[2])
{
    const unsigned char *s = p;
    uint64_t h0 = seed0, h1 = seed1;
    for (size_t i = 0; i < n; i++) {
        h0 = (h0 ^ s[i]) * 0x100000001b3ULL;
        h1 = (h1 ^ s[i]) * 0x100000001b3ULL;
    }
    out[0] = avalanche64(h0);
    out[1] = avalanche64(h1);
}

/* ---- strmap */

/* The maps' keys are mostly 18-character Salesforce ids: taken eight bytes a step, not one
 * (hash64 stays as it is: command ids are made with it). Each word is mixed in by a multiply and
 * a shift, then hash64's avalanche; the length is in the seed, so a short key's zero padding is
 * not another key's bytes. */
static uint64_t key_hash(const char *s, size_t n)
{
    const uint64_t k = 0xbf58476d1ce4e5b9ULL;
    uint64_t h = HASH64_SEED ^ (n * 0x9e3779b97f4a7c15ULL);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    return avalanche64((h ^ w) * k);
}

void strmap_init(strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
    m->borrowed = false;
}

void strmap_init_borrowed(strmap *m)
{
    strmap_init(m);
    m->borrowed = true;
}

void strmap_free(strmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key) {
            if (free_val) free_val(m->slots[i].val);
            if (!m->borrowed) free(m->slots[i].key);
        }
    }
    free(m->slots);
    bool borrowed = m->borrowed;
    strmap_init(m);
    m->borrowed = borrowed;
}

static size_t strmap_find(const strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

static void strmap_grow(strmap *m)
{
    strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].key) continue;
        size_t j = strmap_find(m, old.slots[i].key, old.slots[i].hash);
        m->slots[j] = old.slots[i];
    }
    free(old.slots);
}

void *strmap_get(const strmap *m, const char *key)
{
    if (!m->cap) return NULL;
    uint64_t h = key_hash(key, strlen(key));
    size_t i = strmap_find(m, key, h);
    return m->slots[i].key ? m->slots[i].val : NULL;
}

const char *strmap_put(strmap *m, const char *key, void *val)
{
    if ((m->len + 1) * 2 > m->cap)
        strmap_grow(m); /* half full: a miss probes ~2.5 slots, not ~8.5 */
    uint64_t h = key_hash(key, strlen(key));
    size_t i = strmap_find(m, key, h);
    if (!m->slots[i].key) {
        m->slots[i].key = m->borrowed ? (char *)key : xstrdup(key);
        m->slots[i].hash = h;
        m->len++;
    } else if (m->borrowed) {
        m->slots[i].key = (char *)key; /* the old key may now go before the entry */
    }
    m->slots[i].val = val;
    return m->slots[i].key;
}

void *strmap_del(strmap *m, const char *key)
{
    if (!m->cap) return NULL;
    uint64_t h = key_hash(key, strlen(key));
    size_t mask = m->cap - 1, i = strmap_find(m, key, h);
    if (!m->slots[i].key) return NULL;
    void *val = m->slots[i].val;
    if (!m->borrowed) free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key) break;
        size_t home = (size_t)m->slots[j].hash & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return val;
}

size_t str_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return SIZE_MAX;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

bool str_ieqn(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn) return false;
    for (size_t i = 0; i < an; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return false;
    return true;
}

bool str_ieq(const char *a, const char *b) { return str_ieqn(a, strlen(a), b, strlen(b)); }

int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9') return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

int64_t time_parse_iso8601(const char *s)
{
    if (!s) return -1;
    const char *p = s;
    int y = digits(&p, 4), mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
        (d = digits(&p, 2)) < 1 || d > 31)
        return -1;
    long off = 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59)
            return -1;
        if (*p == ':' && ((void)p++, (sec = digits(&p, 2)) < 0 || sec > 60)) return -1;
        if (*p == '.') {
            p++;
            int n = 0;
            while (*p >= '0' && *p <= '9') {
                if (n < 3) ms = ms * 10 + (*p - '0');
                n++;
                p++;
            }
            if (!n) return -1;
            for (; n < 3; n++)
                ms *= 10;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh = digits(&p, 2), om;
            if (oh < 0 || oh > 23) return -1;
            if (*p == ':') p++;
            if ((om = digits(&p, 2)) < 0 || om > 59) return -1;
            off = sign * (oh * 3600L + om * 60L);
        }
    }
    if (*p) return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != mo - 1) return -1; /* 2026-02-30 */
    return ((int64_t)t - off) * 1000 + ms;
}
