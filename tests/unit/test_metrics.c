/* metrics (issue 9): counters, gauges, histograms and the exact Prometheus text they render to. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

static char *render(metrics *m)
{
    buf b;
    buf_init(&b);
    metrics_render(m, &b);
    char *s = strdup(b.data ? b.data : "");
    buf_free(&b);
    return s;
}

Test(metrics, empty_registry_renders_nothing)
{
    metrics *m = metrics_new();
    char *s = render(m);
    cr_assert_str_eq(s, "");
    free(s);
    metrics_free(m);
}

Test(metrics, counters_with_and_without_labels)
{
    metrics *m = metrics_new();
    metric *a = metrics_counter(m, "pv_things_total", "Things seen.", "");
    metric *c = metrics_counter(m, "pv_cmds_total", "Commands.", "type=\"CREATE_USER\"");
    metric *d = metrics_counter(m, "pv_cmds_total", "Commands.", "type=\"UPDATE_USER\"");
    cr_assert_eq(metrics_counter(m, "pv_cmds_total", "Commands.", "type=\"CREATE_USER\""), c,
                 "the same name and labels give the same series");
    metric_add(a, 3);
    metric_add(a, 4);
    metric_add(c, 1);
    cr_assert_eq(metric_value(a), 7);
    cr_assert_eq(metric_value(d), 0);
    char *s = render(m);
    cr_assert_str_eq(s, "# HELP pv_things_total Things seen.\n"
                        "# TYPE pv_things_total counter\n"
                        "pv_things_total 7\n"
                        "# HELP pv_cmds_total Commands.\n"
                        "# TYPE pv_cmds_total counter\n"
                        "pv_cmds_total{type=\"CREATE_USER\"} 1\n"
                        "pv_cmds_total{type=\"UPDATE_USER\"} 0\n");
    free(s);
    metrics_free(m);
}

Test(metrics, counters_stay_exact_past_two_to_the_53)
{
    metrics *m = metrics_new();
    metric *a = metrics_counter(m, "big_total", "Big.", "");
    metric_add(a, 9007199254740993ULL); /* 2^53 + 1: not a double */
    char *s = render(m);
    cr_assert(strstr(s, "\nbig_total 9007199254740993\n"), "%s", s);
    free(s);
    metrics_free(m);
}

Test(metrics, gauges_render_integers_fractions_and_specials)
{
    metrics *m = metrics_new();
    metric *g0 = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"0\"");
    metric *g1 = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"1\"");
    metric *g2 = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"2\"");
    metric *g3 = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"3\"");
    metric *g4 = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"4\"");
    metric_set(g0, 42);
    metric_set(g1, 0.25);
    metric_set(g2, -3);
    metric_set(g3, INFINITY);
    metric_set(g4, NAN);
    metric_set(g0, 12); /* a gauge is set, not added */
    cr_assert_eq(metric_value(g0), 12);
    char *s = render(m);
    cr_assert_str_eq(s, "# HELP pv_lag Lag.\n"
                        "# TYPE pv_lag gauge\n"
                        "pv_lag{partition=\"0\"} 12\n"
                        "pv_lag{partition=\"1\"} 0.25\n"
                        "pv_lag{partition=\"2\"} -3\n"
                        "pv_lag{partition=\"3\"} +Inf\n"
                        "pv_lag{partition=\"4\"} NaN\n");
    free(s);
    metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative_with_inf_sum_and_count)
{
    metrics *m = metrics_new();
    const double bounds[] = {0.5, 1, 2.5};
    metric *h = metrics_histogram(m, "pv_latency_seconds", "Latency.", "op=\"flush\"", bounds, 3);
    metric_observe(h, 0.25); /* <= 0.5 */
    metric_observe(h, 0.5);  /* on a bound: counts in it (le) */
    metric_observe(h, 1);    /* <= 1 */
    metric_observe(h, 2);    /* <= 2.5 */
    metric_observe(h, 10);   /* above every bound: only +Inf */
    metric_observe(h, NAN);  /* ignored */
    cr_assert_eq(metric_value(h), 5);
    cr_assert_float_eq(metric_sum(h), 13.75, 1e-12);
    char *s = render(m);
    cr_assert_str_eq(s, "# HELP pv_latency_seconds Latency.\n"
                        "# TYPE pv_latency_seconds histogram\n"
                        "pv_latency_seconds_bucket{op=\"flush\",le=\"0.5\"} 2\n"
                        "pv_latency_seconds_bucket{op=\"flush\",le=\"1\"} 3\n"
                        "pv_latency_seconds_bucket{op=\"flush\",le=\"2.5\"} 4\n"
                        "pv_latency_seconds_bucket{op=\"flush\",le=\"+Inf\"} 5\n"
                        "pv_latency_seconds_sum{op=\"flush\"} 13.75\n"
                        "pv_latency_seconds_count{op=\"flush\"} 5\n");
    free(s);
    metrics_free(m);
}

Test(metrics, histogram_without_labels_and_the_shipped_bounds)
{
    metrics *m = metrics_new();
    metric *h = metrics_histogram(m, "pv_batch_size", "Batch.", "", metrics_size_buckets,
                                  metrics_n_size_buckets);
    metric_observe(h, 1);
    metric_observe(h, 2000);
    char *s = render(m);
    cr_assert(strstr(s, "\npv_batch_size_bucket{le=\"1\"} 1\n"), "%s", s);
    cr_assert(strstr(s, "\npv_batch_size_bucket{le=\"1000\"} 1\n"), "%s", s);
    cr_assert(strstr(s, "\npv_batch_size_bucket{le=\"2500\"} 2\n"), "%s", s);
    cr_assert(strstr(s, "\npv_batch_size_bucket{le=\"+Inf\"} 2\n"), "%s", s);
    cr_assert(strstr(s, "\npv_batch_size_sum 2001\npv_batch_size_count 2\n"), "%s", s);
    free(s);
    /* latency bounds are increasing and reach minutes, for a backlog being caught up */
    for (size_t i = 1; i < metrics_n_latency_buckets; i++)
        cr_assert_gt(metrics_latency_buckets[i], metrics_latency_buckets[i - 1]);
    cr_assert_geq(metrics_latency_buckets[metrics_n_latency_buckets - 1], 60);
    metrics_free(m);
}

Test(metrics, help_text_and_label_values_are_escaped)
{
    metrics *m = metrics_new();
    buf lab;
    buf_init(&lab);
    buf_puts(&lab, "path=\"");
    metrics_label_value(&lab, "a\\b\"c\nd");
    buf_puts(&lab, "\"");
    cr_assert_str_eq(lab.data, "path=\"a\\\\b\\\"c\\nd\"");
    metric_add(metrics_counter(m, "pv_x_total", "A \\ and a\nnewline.", lab.data), 1);
    buf_free(&lab);
    char *s = render(m);
    cr_assert_str_eq(s, "# HELP pv_x_total A \\\\ and a\\nnewline.\n"
                        "# TYPE pv_x_total counter\n"
                        "pv_x_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
    free(s);
    metrics_free(m);
}

Test(metrics, a_removed_series_disappears_but_its_family_stays)
{
    metrics *m = metrics_new();
    metric *a = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"0\"");
    metric *b = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"1\"");
    metric_set(a, 1);
    metric_set(b, 2);
    metrics_remove(m, a);
    char *s = render(m);
    cr_assert_str_eq(s, "# HELP pv_lag Lag.\n# TYPE pv_lag gauge\npv_lag{partition=\"1\"} 2\n");
    free(s);
    metrics_remove(m, b);
    s = render(m);
    cr_assert_str_eq(s, "# HELP pv_lag Lag.\n# TYPE pv_lag gauge\n");
    free(s);
    /* and comes back fresh */
    metric *again = metrics_gauge(m, "pv_lag", "Lag.", "partition=\"0\"");
    cr_assert_eq(metric_value(again), 0);
    metrics_free(m);
}

Test(metrics, one_name_with_two_types_aborts, .signal = SIGABRT)
{
    metrics *m = metrics_new();
    metrics_counter(m, "pv_same", "Same.", "");
    metrics_gauge(m, "pv_same", "Same.", "");
}

Test(metrics, decreasing_histogram_bounds_abort, .signal = SIGABRT)
{
    metrics *m = metrics_new();
    const double bad[] = {1, 0.5};
    metrics_histogram(m, "pv_h", "H.", "", bad, 2);
}

/* Many threads counting at once lose nothing, while another renders (the HTTP thread's case). */
typedef struct worker_arg {
    metric *c, *h;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 100000; i++) {
        metric_add(a->c, 1);
        metric_observe(a->h, 0.5);
    }
    return NULL;
}

static void *renderer(void *p)
{
    for (int i = 0; i < 200; i++)
        free(render(p));
    return NULL;
}

Test(metrics, concurrent_updates_are_not_lost)
{
    metrics *m = metrics_new();
    const double bounds[] = {1};
    worker_arg a = {metrics_counter(m, "pv_n_total", "N.", ""),
                    metrics_histogram(m, "pv_h", "H.", "", bounds, 1)};
    pthread_t t[5];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, &a);
    pthread_create(&t[4], NULL, renderer, m);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(metric_value(a.c), 400000);
    cr_assert_eq(metric_value(a.h), 400000);
    cr_assert_float_eq(metric_sum(a.h), 200000, 1e-6);
    metrics_free(m);
}
