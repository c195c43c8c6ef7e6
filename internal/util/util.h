/* util: the small building blocks every component shares: the error struct, an arena, a growable
 * byte buffer, a string-keyed hash map and a stable hash. No I/O here. */
#ifndef PROVISIONER_UTIL_H
#define PROVISIONER_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- errors: functions return 0 / -1 and fill one of these, once, where the failure is
 * understood. Callers add context by prefixing (perr_prefix), never by logging twice. */
typedef struct perr {
    char msg[1024];
} perr;

int perr_set(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int perr_prefix(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- arena: bump allocator reset between units of work (an event, a batch), so the hot path
 * makes no malloc/free pair per message once the first blocks exist. */
typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
    arena_block *spare; /* blocks kept across resets */
    size_t block_size;
} arena;

void arena_init(arena *a, size_t block_size);
void *arena_alloc(arena *a, size_t n);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);
/* An arena-backed array of n elements of size elem, full at *cap: a new block of twice the
 * capacity (first at first) with the n elements copied. The old block stays in the arena until
 * reset. */
void *arena_grow(arena *a, const void *v, size_t n, size_t *cap, size_t elem, size_t first);
void arena_reset(arena *a);
/* Frees the blocks kept across resets beyond keep bytes: one unusually large unit of work (a
 * batch that resolves thousands of links) does not hold its memory for the life of the process. */
void arena_trim(arena *a, size_t keep);
void arena_free(arena *a);

/* ---- buf: growable byte buffer, always NUL-terminated. */
typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b);
/* Grows the buffer to hold need bytes (the NUL included): the out-of-line half of buf_reserve. */
void buf_grow(buf *b, size_t need);

/* Inline: the hot path (blobs, Redis commands, command JSON) appends a few bytes at a time, and
 * a call per append was ~5% of the main thread; only growing costs a call. */
static inline void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) buf_grow(b, b->len + extra + 1);
}

static inline void buf_append(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_puts(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

static inline void buf_putc(buf *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal, as "%lld" writes it, without printf's parsing of a format (the hot path writes
 * numbers into every command and command id). fmt_i64 writes into out (no NUL) and returns the
 * length. */
#define FMT_I64_MAX 20
size_t fmt_i64(char out[FMT_I64_MAX], int64_t v);

/* Milliseconds of the monotonic clock: for timeouts and intervals, never for dates. */
int64_t mono_ms(void);
/* Milliseconds since the epoch (the wall clock): for dates and positions, never for intervals. */
int64_t wall_ms(void);
void buf_put_i64(buf *b, int64_t v);
/* A finite number as JSON writes it: the first of 15, 16 or 17 significant digits that reads back
 * as the same double ("0.1", not "0.10000000000000001"); integers below 1e15 without a fraction
 * or exponent. */
void buf_put_double(buf *b, double d);
/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(buf *b, const char *s, size_t n);
/* Appends the whole file at path (NULL: stdin) to b. -1 with errno set when it cannot be opened
 * or read, or (EFBIG) when it holds more than max bytes; b then holds what was read. */
int buf_read_file(buf *b, const char *path, size_t max);

/* ---- hashing: stable across runs and machines (byte-wise FNV-1a), used for command ids. */
uint64_t hash64(const void *p, size_t n, uint64_t seed);
/* Two hash64s of the same bytes in one pass: out[i] = hash64(p, n, seed_i). */
void hash64_pair(const void *p, size_t n, uint64_t seed0, uint64_t seed1, uint64_t out[2]);
#define HASH64_SEED 0xcbf29ce484222325ULL

/* ---- strmap: open-addressing map from NUL-terminated string keys (copied, or borrowed: see
 * strmap_init_borrowed) to void*. */
typedef struct strmap_entry {
    char *key;
    void *val;
    uint64_t hash;
} strmap_entry;

typedef struct strmap {
    strmap_entry *slots;
    size_t cap; /* power of two */
    size_t len;
    bool borrowed; /* keys are the caller's, not copies */
} strmap;

void strmap_init(strmap *m);
/* A map that keeps the keys it is given, not copies: each must outlive its entry (say, strings
 * of an arena reset together with the map). A per-batch cache then costs no malloc per key. Put
 * again, an entry keeps the key given last. */
void strmap_init_borrowed(strmap *m);
void strmap_free(strmap *m, void (*free_val)(void *));
void *strmap_get(const strmap *m, const char *key);
/* Returns the stored key (owned by the map, or the caller's when borrowed). */
const char *strmap_put(strmap *m, const char *key, void *val);
void *strmap_del(strmap *m, const char *key);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... */

/* ---- time: "2026-11-25", "2026-11-25T10:00:00Z", "...T10:00:00.500+01:00" or "...+0100" (REST)
 * -> ms since the epoch; -1 when malformed (trailing text, impossible dates included). */
int64_t time_parse_iso8601(const char *s);

/* ---- small string helpers */
bool str_ieq(const char *a, const char *b);
bool str_ieqn(const char *a, size_t an, const char *b, size_t bn);
/* qsort/bsearch order of an array of C strings (strcmp of the pointed-to strings). */
int str_ptr_cmp(const void *a, const void *b);
/* Levenshtein distance ignoring ASCII case, for "did you mean" hints; SIZE_MAX past 40 bytes. */
size_t str_edit_distance(const char *a, const char *b);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
