#include "metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_n_latency_buckets = sizeof metrics_latency_buckets / sizeof(double);
const double metrics_size_buckets[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
const size_t metrics_n_size_buckets = sizeof metrics_size_buckets / sizeof(double);

struct metric {
    char *labels;
    _Atomic uint64_t count;  /* counter value, or histogram count */
    _Atomic uint64_t bits;   /* gauge value or histogram sum, as double bits */
    _Atomic uint64_t *buckets; /* histogram: one per bound (non-cumulative) */
    struct family *fam;
};

typedef struct family {
    char *name;
    char *help;
    metric_kind kind;
    double *bounds;
    size_t n_bounds;
    metric **series;
    size_t n_series;
} family;

struct metrics {
    family **fams;
    size_t n;
};

metrics *metrics_new(void) { return xcalloc(1, sizeof(metrics)); }

void metrics_free(metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        family *f = m->fams[i];
        for (size_t j = 0; j < f->n_series; j++) {
            free(f->series[j]->labels);
            free((void *)f->series[j]->buckets);
            free(f->series[j]);
        }
        free(f->series);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    free(m);
}

static family *get_family(metrics *m, const char *name, const char *help, metric_kind kind)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->fams[i]->name, name) == 0) return m->fams[i];
    family *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->kind = kind;
    m->fams = xrealloc(m->fams, (m->n + 1) * sizeof *m->fams);
    m->fams[m->n++] = f;
    return f;
}

static metric *get_series(family *f, const char *labels)
{
    for (size_t i = 0; i < f->n_series; i++)
        if (strcmp(f->series[i]->labels, labels) == 0) return f->series[i];
    metric *s = xcalloc(1, sizeof *s);
    s->labels = xstrdup(labels);
    s->fam = f;
    if (f->kind == METRIC_HISTOGRAM) s->buckets = xcalloc(f->n_bounds, sizeof(uint64_t));
    f->series = xrealloc(f->series, (f->n_series + 1) * sizeof *f->series);
    f->series[f->n_series++] = s;
    return s;
}

metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
    return get_series(get_family(m, name, help, METRIC_COUNTER), labels);
}

metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels)
{
    return get_series(get_family(m, name, help, METRIC_GAUGE), labels);
}

metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t n_bounds)
{
    family *f = get_family(m, name, help, METRIC_HISTOGRAM);
    if (!f->bounds) {
        f->bounds = xmalloc(n_bounds * sizeof *f->bounds);
        memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        f->n_bounds = n_bounds;
    }
    return get_series(f, labels);
}

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

void metric_add(metric *c, uint64_t n) { atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed); }

void metric_set(metric *g, double v) { atomic_store_explicit(&g->bits, to_bits(v), memory_order_relaxed); }

void metric_observe(metric *h, double v)
{
    family *f = h->fam;
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i]) i++;
    if (i < f->n_bounds) atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak(&h->bits, &old, to_bits(from_bits(old) + v))) {
    }
}

double metric_value(const metric *x)
{
    if (x->fam->kind == METRIC_GAUGE) return from_bits(atomic_load(&((metric *)x)->bits));
    return (double)atomic_load(&((metric *)x)->count);
}

static void put_num(buf *b, double v)
{
    if (isinf(v)) buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 1e15) buf_printf(b, "%lld", (long long)v);
    else buf_printf(b, "%.9g", v);
}

static void put_labels(buf *b, const char *labels, const char *extra)
{
    if (!*labels && !extra) return;
    buf_putc(b, '{');
    buf_puts(b, labels);
    if (extra) {
        if (*labels) buf_putc(b, ',');
        buf_puts(b, extra);
    }
    buf_putc(b, '}');
}

void metrics_render(metrics *m, buf *b)
{
    static const char *kinds[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < m->n; i++) {
        family *f = m->fams[i];
        buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, kinds[f->kind]);
        for (size_t j = 0; j < f->n_series; j++) {
            metric *s = f->series[j];
            if (f->kind != METRIC_HISTOGRAM) {
                buf_puts(b, f->name);
                put_labels(b, s->labels, NULL);
                buf_putc(b, ' ');
                put_num(b, metric_value(s));
                buf_putc(b, '\n');
                continue;
            }
            uint64_t cum = 0;
            char le[64];
            for (size_t k = 0; k < f->n_bounds; k++) {
                cum += atomic_load(&s->buckets[k]);
                buf b2;
                buf_init(&b2);
                put_num(&b2, f->bounds[k]);
                snprintf(le, sizeof le, "le=\"%s\"", b2.data);
                buf_free(&b2);
                buf_printf(b, "%s_bucket", f->name);
                put_labels(b, s->labels, le);
                buf_printf(b, " %llu\n", (unsigned long long)cum);
            }
            uint64_t count = atomic_load(&s->count);
            buf_printf(b, "%s_bucket", f->name);
            put_labels(b, s->labels, "le=\"+Inf\"");
            buf_printf(b, " %llu\n%s_sum", (unsigned long long)count, f->name);
            put_labels(b, s->labels, NULL);
            buf_putc(b, ' ');
            put_num(b, from_bits(atomic_load(&s->bits)));
            buf_printf(b, "\n%s_count", f->name);
            put_labels(b, s->labels, NULL);
            buf_printf(b, " %llu\n", (unsigned long long)count);
        }
    }
}
