/* Micro-benchmark for soql_eval (issue 3: at least 5 million evaluations per second on one core).
 * Single-threaded; evaluates a 5-clause filter with LIKE and IN over a few rotating records whose
 * outcomes differ, so that short-circuiting does not make it look faster than a real mix. Prints a
 * figure; it does not pass or fail. Usage: bench_soql [seconds] (default 1). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "soql/soql.h"

static double soql_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *filter =
        "IsActive = true AND Department IN ('Sales', 'Marketing', 'Customer Success') "
        "AND Title LIKE '%manager%' AND Country != 'FR' AND Level__c >= 3";
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    soql_filter *f;
    perr err;
    if (soql_compile(filter, &f, &err) < 0) {
        fprintf(stderr, "bench_soql: %s\n", err.msg);
        return 1;
    }
    /* Field order is the filter's: IsActive, Department, Title, Country, Level__c. */
    value_t recs[4][5] = {
        {value_bool(true), value_str("customer success"), value_str("Senior Account Manager"),
         value_str("US"), value_num(4)}, /* all five clauses evaluated, true */
        {value_bool(true), value_str("Marketing"), value_str("Product Marketing Manager"),
         value_str("FR"), value_num(5)}, /* fails on the fourth */
        {value_bool(true), value_str("Sales"), value_str("Account Executive"), value_str("GB"),
         value_num(2)}, /* fails on LIKE after scanning the title */
        {value_bool(true), value_str("Engineering"), value_str("Engineering Manager"),
         value_str("DE"), value_null()}, /* fails on IN after the whole list */
    };
    soql_clock clock = {1715774400000LL, 0};

    const long batch = 1 << 20;
    long evals = 0, matches = 0;
    double start = soql_bench_now(), elapsed = 0;
    do {
        for (long i = 0; i < batch; i++)
            matches += soql_eval(f, recs[i & 3], &clock) == SOQL_TRUE;
        evals += batch;
        elapsed = soql_bench_now() - start;
    } while (elapsed < seconds);

    printf("soql_eval: 5-clause filter (LIKE, IN): %.0f evals/s (%ld evals in %.2f s, %.1f ns "
           "each, %ld matched)\n",
           (double)evals / elapsed, evals, elapsed, elapsed * 1e9 / (double)evals, matches);
    soql_free(f);
    return 0;
}
