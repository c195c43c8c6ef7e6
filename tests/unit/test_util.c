/* util: the string map (copied and borrowed keys, deletion), the arena, the buffer and fmt_i64,
 * which the hot path uses in place of printf, and reading a whole file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

Test(util, strmap_finds_what_was_put_until_it_is_deleted)
{
    strmap m;
    strmap_init(&m);
    char key[32];
    for (int i = 0; i < 5000; i++) { /* past several growths */
        snprintf(key, sizeof key, "005U%06d", i);
        strmap_put(&m, key, (void *)(intptr_t)(i + 1));
    }
    cr_assert_eq(m.len, 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "005U%06d", i);
        cr_assert_eq(strmap_del(&m, key), (void *)(intptr_t)(i + 1));
    }
    cr_assert_eq(m.len, 2500);
    for (int i = 0; i < 5000; i++) { /* deletion keeps every other chain whole */
        snprintf(key, sizeof key, "005U%06d", i);
        void *want = i % 2 ? (void *)(intptr_t)(i + 1) : NULL;
        cr_assert_eq(strmap_get(&m, key), want, "%s", key);
    }
    cr_assert_null(strmap_del(&m, "absent"));
    strmap_free(&m, NULL);
}

Test(util, a_borrowed_map_keeps_the_key_given_last)
{
    strmap m;
    strmap_init_borrowed(&m);
    char *first = strdup("005R"), *second = strdup("005R");
    cr_assert_eq(strmap_put(&m, first, (void *)1), first, "not a copy");
    cr_assert_eq(strmap_put(&m, second, (void *)2), second, "put again: the new key");
    free(first); /* the entry no longer needs it (ASan would see a read of it) */
    cr_assert_eq(strmap_get(&m, "005R"), (void *)2);
    cr_assert_eq(m.len, 1);
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].key) cr_assert_eq(m.slots[i].key, second);
    strmap_free(&m, NULL);
    free(second);
}

Test(util, fmt_i64_writes_what_printf_writes)
{
    const int64_t vals[] = {0,
                            1,
                            -1,
                            9,
                            10,
                            99,
                            100,
                            4155550100LL,
                            -4155550100LL,
                            INT32_MAX,
                            INT32_MIN,
                            INT64_MAX,
                            INT64_MIN,
                            INT64_MIN + 1};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char want[32], got[FMT_I64_MAX + 1];
        int n = snprintf(want, sizeof want, "%" PRId64, vals[i]);
        size_t k = fmt_i64(got, vals[i]);
        cr_assert_eq(k, (size_t)n, "%s", want);
        got[k] = '\0';
        cr_assert_str_eq(got, want);
        buf b;
        buf_init(&b);
        buf_puts(&b, "x=");
        buf_put_i64(&b, vals[i]);
        cr_assert_str_eq(b.data + 2, want);
        cr_assert_eq(b.len, 2 + (size_t)n);
        buf_free(&b);
    }
}

/* R9.1: command ids are two hash64s of one key; the one-pass pair must give the same bits, or
 * a batch read again after an upgrade would get other ids. The first value is pinned to FNV-1a. */
Test(util, hash64_pair_is_two_hash64s)
{
    char key[300];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof key; n += (n < 20 ? 1 : 17)) {
        uint64_t h[2];
        hash64_pair(key, n, HASH64_SEED, 0x9e3779b97f4a7c15ULL, h);
        cr_assert_eq(h[0], hash64(key, n, HASH64_SEED), "n=%zu", n);
        cr_assert_eq(h[1], hash64(key, n, 0x9e3779b97f4a7c15ULL), "n=%zu", n);
    }
    uint64_t fnv = HASH64_SEED;
    for (const char *c = "005x|1|2|3|CREATE_USER|"; *c; c++)
        fnv = (fnv ^ (unsigned char)*c) * 0x100000001b3ULL;
    fnv ^= fnv >> 30;
    fnv *= 0xbf58476d1ce4e5b9ULL;
    fnv ^= fnv >> 27;
    fnv *= 0x94d049bb133111ebULL;
    fnv ^= fnv >> 31;
    cr_assert_eq(hash64("005x|1|2|3|CREATE_USER|", 23, HASH64_SEED), fnv);
}

Test(util, arena_strings_survive_until_reset_and_blocks_are_reused)
{
    arena a;
    arena_init(&a, 64);
    char *s[100];
    char text[32];
    for (int i = 0; i < 100; i++) { /* past many blocks of 64 bytes */
        snprintf(text, sizeof text, "value number %d", i);
        s[i] = arena_strdup(&a, text);
    }
    char *big = arena_strndup(&a, "0123456789", 5); /* and a prefix */
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof text, "value number %d", i);
        cr_assert_str_eq(s[i], text);
    }
    cr_assert_str_eq(big, "01234");
    arena_reset(&a);
    arena_trim(&a, 128);
    cr_assert_str_eq(arena_strdup(&a, "again"), "again");
    char *huge = arena_alloc(&a, 10000); /* larger than a block */
    memset(huge, 'x', 10000);
    arena_free(&a);
}

static void json_str_is(const char *in, const char *want)
{
    buf b;
    buf_init(&b);
    buf_json_str(&b, in, strlen(in));
    cr_assert_eq(b.len, strlen(want), "%.*s", (int)b.len, b.data);
    cr_assert_eq(memcmp(b.data, want, b.len), 0, "%.*s, want %s", (int)b.len, b.data, want);
    buf_free(&b);
}

/* Commands are JSON lines: a reader that splits lines at U+0085, U+2028 or U+2029 (Python's
 * splitlines, shared/scenarios/check.py) must still see one command a line. */
Test(util, json_strings_escape_what_line_readers_break_on)
{
    json_str_is("plain", "\"plain\"");
    json_str_is("a\"b\\c\n\t\x01", "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    json_str_is("x\xe2\x80\xa8y\xe2\x80\xa9z", "\"x\\u2028y\\u2029z\"");
    json_str_is("\xc2\x85", "\"\\u0085\"");
    /* other characters with the same lead bytes pass as they are */
    json_str_is("\xc2\xa0\xe2\x80\x83\xe2\x82\xac", "\"\xc2\xa0\xe2\x80\x83\xe2\x82\xac\"");
    /* a cut sequence at the end is left to the bytes after it */
    json_str_is("\xe2\x80", "\"\xe2\x80\"");
    json_str_is("\xc2", "\"\xc2\"");
}

/* Plain runs are skipped eight bytes at a time: every byte that needs escaping is still seen at
 * every position of a long string, next to bytes that are only near a special one. */
Test(util, json_strings_escape_at_every_position)
{
    static const char *const special[][2] = {
        {"\"", "\\\""},
        {"\\", "\\\\"},
        {"\n", "\\n"},
        {"\x1f", "\\u001f"},
        {"\x01", "\\u0001"},
        {"\xc2\x85", "\\u0085"},
        {"\xe2\x80\xa9", "\\u2029"},
        {"\x7f", "\x7f"},
        {" ", " "},
        {"!", "!"},
        {"#", "#"},
        {"[", "["},
        {"]", "]"},
        {"\xc3\xa9", "\xc3\xa9"},
    };
    for (size_t k = 0; k < sizeof special / sizeof *special; k++)
        for (size_t at = 0; at < 20; at++) {
            char in[64], want[80];
            snprintf(in, sizeof in, "%.*s%s%.*s", (int)at, "abcdefghijklmnopqrstuvwxyz",
                     special[k][0], (int)(19 - at), "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            snprintf(want, sizeof want, "\"%.*s%s%.*s\"", (int)at, "abcdefghijklmnopqrstuvwxyz",
                     special[k][1], (int)(19 - at), "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            json_str_is(in, want);
        }
}

Test(util, read_file_appends_the_whole_file_or_says_why_not)
{
    char path[] = "/tmp/pv-util-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char data[200000]; /* past several 64 KiB reads */
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    cr_assert_eq(write(fd, data, sizeof data), (ssize_t)sizeof data);
    close(fd);

    buf b;
    buf_init(&b);
    buf_puts(&b, "head:");
    cr_assert_eq(buf_read_file(&b, path, sizeof data), 0);
    cr_assert_eq(b.len, 5 + sizeof data);
    cr_assert(memcmp(b.data, "head:", 5) == 0 && memcmp(b.data + 5, data, sizeof data) == 0);
    cr_assert_eq(b.data[b.len], '\0');

    buf_reset(&b);
    errno = 0;
    cr_assert_eq(buf_read_file(&b, path, sizeof data - 1), -1);
    cr_assert_eq(errno, EFBIG);

    unlink(path);
    buf_reset(&b);
    cr_assert_eq(buf_read_file(&b, path, SIZE_MAX), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(buf_read_file(&b, "/tmp", SIZE_MAX), -1);
    cr_assert_eq(errno, EISDIR);
    buf_free(&b);
}

Test(util, arena_grow_keeps_the_elements_and_doubles)
{
    arena a;
    arena_init(&a, 256);
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int64_t i = 0; i < 1000; i++) {
        if (n == cap) {
            size_t before = cap;
            v = arena_grow(&a, v, n, &cap, sizeof *v, 4);
            cr_assert_eq(cap, before ? before * 2 : 4);
        }
        v[n++] = i * 7;
    }
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(v[i], (int64_t)i * 7, "element %zu", i);
    arena_free(&a);
}

Test(util, doubles_are_written_shortest_and_read_back_the_same)
{
    const struct {
        double d;
        const char *want;
    } cases[] = {{0.1, "0.1"},
                 {-2.5, "-2.5"},
                 {100, "100"},
                 {-0.0, "0"},
                 {1e15, "1e+15"},
                 {123456.789, "123456.789"},
                 {1.0 / 3, "0.3333333333333333"},
                 {5e-324, "4.94065645841247e-324"}};
    buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf_reset(&b);
        buf_put_double(&b, cases[i].d);
        cr_expect_str_eq(b.data, cases[i].want);
        cr_expect_eq(strtod(b.data, NULL), cases[i].d, "%s does not read back", b.data);
    }
    for (int i = 0; i < 100000; i++) { /* every width of shortest form reads back */
        double d = (double)rand() / RAND_MAX * pow(10, rand() % 40 - 20);
        buf_reset(&b);
        buf_put_double(&b, d);
        cr_assert_eq(strtod(b.data, NULL), d, "%s for %.17g", b.data, d);
    }
    buf_free(&b);
}
