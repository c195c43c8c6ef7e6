/* libFuzzer target for internal/soql (issue 3): compiles the input as a filter and, when it
 * compiles, evaluates it against records of varied types and nulls under several clocks. Besides
 * the sanitizers it checks properties that must hold for every input:
 *   - a failed compile leaves out NULL and a message "column N: ..." with 1 <= N <= length + 1;
 *   - field names are non-NULL and distinct ignoring case;
 *   - results are one of the three truth values, and NOT (input) evaluates to the negation. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "soql/soql.h"

static value_t fuzz_pool(size_t k)
{
    static const char *const strs[] = {
        "Sales",
        "sales manager",
        "2024-05-15",
        "2024-05-15T10:00:00.000Z",
        "2024-05-15T10:00:00.000+0200",
        "1969-12-31T23:59:59Z",
        "a;b; C ;d",
        "TRUE",
        "false",
        "12.5",
        "-0",
        "1e308",
        "%_\\'",
        "\xC3\xA9t\xC3\xA9",
        "\xFF\xFE\xC3",
        "x",
        "9999-12-31T23:59:59.999-23:59",
        "0000-01-01",
    };
    static const size_t nstrs = sizeof strs / sizeof strs[0];
    switch (k % (nstrs + 9)) {
    case 0: return value_null();
    case 1: return value_str("");
    case 2: return value_bool(true);
    case 3: return value_bool(false);
    case 4: return value_num(0);
    case 5: return value_num(-1.5);
    case 6: return value_num(INFINITY);
    case 7: return value_num(NAN);
    case 8: return value_num(20240515);
    default: return value_str(strs[k % (nstrs + 9) - 9]);
    }
}

static soql_truth fuzz_negate(soql_truth t)
{
    return t == SOQL_TRUE ? SOQL_FALSE : t == SOQL_FALSE ? SOQL_TRUE : SOQL_UNKNOWN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text); /* the filter ends at the first NUL, as a C string does */

    soql_filter *f = (soql_filter *)1;
    perr err;
    err.msg[0] = '\0';
    if (soql_compile(text, &f, &err) < 0) {
        unsigned long line = 1, col = 0, lines = 1;
        FUZZ_CHECK(f == NULL);
        /* "column C: ...", or "line L, column C: ..." for a filter over several lines */
        FUZZ_CHECK(sscanf(err.msg, "column %lu: ", &col) == 1 ||
                   sscanf(err.msg, "line %lu, column %lu: ", &line, &col) == 2);
        for (size_t i = 0; i < len; i++)
            lines += text[i] == '\n';
        FUZZ_CHECK(line >= 1 && line <= lines);
        FUZZ_CHECK(col >= 1 && col <= len + 1);
        free(text);
        return 0;
    }

    size_t nf = soql_field_count(f);
    for (size_t i = 0; i < nf; i++) {
        FUZZ_CHECK(soql_field_name(f, i) != NULL);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(!str_ieq(soql_field_name(f, i), soql_field_name(f, j)));
    }
    FUZZ_CHECK(soql_field_name(f, nf) == NULL);

    /* NOT (input) must negate input, whenever it compiles (it does not after a leading WHERE or
     * at the nesting limit). */
    soql_filter *neg = NULL;
    char *negtext = malloc(len + 8);
    snprintf(negtext, len + 8, "NOT (%s)", text);
    if (soql_compile(negtext, &neg, &err) == 0) {
        FUZZ_CHECK(soql_field_count(neg) == nf);
        for (size_t i = 0; i < nf; i++)
            FUZZ_CHECK(strcmp(soql_field_name(neg, i), soql_field_name(f, i)) == 0);
    }

    static const soql_clock clocks[] = {
        {1715774400000LL, 0},
        {1715731200000LL - 1, -300},
        {0, 840},
        {-62135596800000LL, -720},
        {INT64_MAX, 0},
        {INT64_MIN, 1},
    };
    value_t *vals = calloc(nf ? nf : 1, sizeof *vals);
    for (size_t r = 0; r < 24; r++) {
        for (size_t i = 0; i < nf; i++)
            vals[i] = fuzz_pool(i * 7 + r * 3 + (r >> 2));
        for (size_t c = 0; c <= sizeof clocks / sizeof clocks[0]; c++) {
            const soql_clock *clk = c < sizeof clocks / sizeof clocks[0] ? &clocks[c] : NULL;
            soql_truth t = soql_eval(f, vals, clk);
            FUZZ_CHECK(t == SOQL_TRUE || t == SOQL_FALSE || t == SOQL_UNKNOWN);
            if (neg) FUZZ_CHECK(soql_eval(neg, vals, clk) == fuzz_negate(t));
        }
    }
    free(vals);
    soql_free(neg);
    free(negtext);
    soql_free(f);
    free(text);
    return 0;
}
