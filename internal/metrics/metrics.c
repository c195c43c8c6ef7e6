#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Up to five minutes: the end-to-end latency of a backlog being caught up lands in real buckets
 * instead of all in +Inf. */
const double metrics_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
const size_t metrics_n_latency_buckets = sizeof metrics_latency_buckets / sizeof(double);
const double metrics_size_buckets[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
const size_t metrics_n_size_buckets = sizeof metrics_size_buckets / sizeof(double);

typedef struct family family;

struct metric {
    char *labels;
    family *fam;
    _Atomic uint64_t count; /* counter value */
    _Atomic uint64_t bits;  /* gauge value or histogram sum, as the bits of a double */
    /* histogram: one per bound plus one above the last, not cumulative; the count is their total,
     * so +Inf and _count always agree with the buckets, even when read mid-update */
    _Atomic uint64_t *buckets;
};

struct family {
    char *name;
    char *help;
    metric_kind kind;
    double *bounds;
    size_t n_bounds;
    metric **series;
    size_t n_series;
};

struct metrics {
    pthread_mutex_t lock; /* the lists of families and series, not the values */
    family **fams;
    size_t n;
};

static _Noreturn void misuse(const char *what, const char *name)
{
    fprintf(stderr, "metrics: %s: %s\n", name, what);
    abort();
}

metrics *metrics_new(void)
{
    metrics *m = xcalloc(1, sizeof(metrics));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void series_free(metric *s)
{
    free(s->labels);
    free((void *)s->buckets);
    free(s);
}

void metrics_free(metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        family *f = m->fams[i];
        for (size_t j = 0; j < f->n_series; j++)
            series_free(f->series[j]);
        free(f->series);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Called with the lock held. */
static family *get_family(metrics *m, const char *name, const char *help, metric_kind kind)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->fams[i]->name, name) != 0) continue;
        if (m->fams[i]->kind != kind) misuse("registered again with another type", name);
        return m->fams[i];
    }
    family *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->kind = kind;
    m->fams = xrealloc(m->fams, (m->n + 1) * sizeof *m->fams);
    m->fams[m->n++] = f;
    return f;
}

/* Called with the lock held. */
static metric *get_series(family *f, const char *labels)
{
    for (size_t i = 0; i < f->n_series; i++)
        if (strcmp(f->series[i]->labels, labels) == 0) return f->series[i];
    metric *s = xcalloc(1, sizeof *s);
    s->labels = xstrdup(labels);
    s->fam = f;
    if (f->kind == METRIC_HISTOGRAM) s->buckets = xcalloc(f->n_bounds + 1, sizeof(uint64_t));
    f->series = xrealloc(f->series, (f->n_series + 1) * sizeof *f->series);
    f->series[f->n_series++] = s;
    return s;
}

static metric *series(metrics *m, const char *name, const char *help, const char *labels,
                      metric_kind kind)
{
    pthread_mutex_lock(&m->lock);
    metric *s = get_series(get_family(m, name, help, kind), labels);
    pthread_mutex_unlock(&m->lock);
    return s;
}

metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
    return series(m, name, help, labels, METRIC_COUNTER);
}

metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels)
{
    return series(m, name, help, labels, METRIC_GAUGE);
}

metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t n_bounds)
{
    for (size_t i = 0; i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
            misuse("histogram bounds must be finite and strictly increasing", name);
    pthread_mutex_lock(&m->lock);
    family *f = get_family(m, name, help, METRIC_HISTOGRAM);
    if (!f->bounds && !f->n_series) {
        f->bounds = xmalloc((n_bounds ? n_bounds : 1) * sizeof *f->bounds);
        if (n_bounds) memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        f->n_bounds = n_bounds;
    } else if (f->n_bounds != n_bounds ||
               (n_bounds && memcmp(f->bounds, bounds, n_bounds * sizeof *bounds) != 0)) {
        pthread_mutex_unlock(&m->lock);
        misuse("histogram registered again with other bounds", name);
    }
    metric *s = get_series(f, labels);
    pthread_mutex_unlock(&m->lock);
    return s;
}

void metrics_remove(metrics *m, metric *s)
{
    if (!s) return;
    pthread_mutex_lock(&m->lock);
    family *f = s->fam;
    for (size_t i = 0; i < f->n_series; i++) {
        if (f->series[i] != s) continue;
        memmove(&f->series[i], &f->series[i + 1], (f->n_series - i - 1) * sizeof *f->series);
        f->n_series--;
        series_free(s);
        break;
    }
    pthread_mutex_unlock(&m->lock);
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

void metric_add(metric *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed);
}

void metric_set(metric *g, double v)
{
    atomic_store_explicit(&g->bits, to_bits(v), memory_order_relaxed);
}

void metric_observe(metric *h, double v)
{
    if (isnan(v)) return; /* it would poison the sum for good */
    const family *f = h->fam;
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i])
        i++; /* le: a value on a bound counts in it */
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->bits, &old, to_bits(from_bits(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static uint64_t load(const _Atomic uint64_t *a)
{
    return atomic_load_explicit((_Atomic uint64_t *)a, memory_order_relaxed);
}

static uint64_t hist_count(const metric *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->fam->n_bounds; i++)
        n += load(&h->buckets[i]);
    return n;
}

double metric_value(const metric *x)
{
    switch (x->fam->kind) {
    case METRIC_GAUGE: return from_bits(load(&x->bits));
    case METRIC_HISTOGRAM: return (double)hist_count(x);
    case METRIC_COUNTER: break;
    }
    return (double)load(&x->count);
}

double metric_sum(const metric *h) { return from_bits(load(&h->bits)); }

void metrics_label_value(buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            buf_puts(out, "\\\\");
        else if (*v == '"')
            buf_puts(out, "\\\"");
        else if (*v == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *v);
    }
}

/* Prometheus' float syntax: NaN, +Inf, -Inf, integers without a fraction, else enough digits. */
static void put_num(buf *b, double v)
{
    if (isnan(v))
        buf_puts(b, "NaN");
    else if (isinf(v))
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (fabs(v) < 1e15 && v == floor(v))
        buf_printf(b, "%.0f", v);
    else
        buf_printf(b, "%.15g", v);
}

/* HELP text escapes only backslash and newline (the exposition format says so). */
static void put_help(buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *s);
    }
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

static void render_histogram(buf *b, const family *f, const metric *s)
{
    uint64_t cum = 0;
    buf le;
    buf_init(&le);
    for (size_t k = 0; k <= f->n_bounds; k++) {
        cum += load(&s->buckets[k]);
        buf_reset(&le);
        buf_puts(&le, "le=\"");
        if (k < f->n_bounds)
            put_num(&le, f->bounds[k]);
        else
            buf_puts(&le, "+Inf");
        buf_putc(&le, '"');
        buf_printf(b, "%s_bucket", f->name);
        put_labels(b, s->labels, le.data);
        buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    buf_free(&le);
    buf_printf(b, "%s_sum", f->name);
    put_labels(b, s->labels, NULL);
    buf_putc(b, ' ');
    put_num(b, metric_sum(s));
    buf_printf(b, "\n%s_count", f->name);
    put_labels(b, s->labels, NULL);
    buf_printf(b, " %llu\n", (unsigned long long)cum);
}

void metrics_render(metrics *m, buf *b)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) {
        const family *f = m->fams[i];
        buf_printf(b, "# HELP %s ", f->name);
        put_help(b, f->help);
        buf_printf(b, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
        for (size_t j = 0; j < f->n_series; j++) {
            const metric *s = f->series[j];
            if (f->kind == METRIC_HISTOGRAM) {
                render_histogram(b, f, s);
                continue;
            }
            buf_puts(b, f->name);
            put_labels(b, s->labels, NULL);
            buf_putc(b, ' ');
            if (f->kind == METRIC_COUNTER) /* exact: a double loses counts past 2^53 */
                buf_printf(b, "%llu", (unsigned long long)load(&s->count));
            else
                put_num(b, metric_value(s));
            buf_putc(b, '\n');
        }
    }
    pthread_mutex_unlock(&m->lock);
}
