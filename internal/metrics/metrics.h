/* metrics: counters, gauges and histograms for Prometheus' text format. Updates are lock-free
 * atomics from any thread, so the HTTP thread can render while the main loop counts. Creating and
 * removing series (partitions come and go with rebalances) and rendering take a lock, so a
 * series may appear or disappear while /metrics is being served. */
#ifndef PROVISIONER_METRICS_H
#define PROVISIONER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct metrics metrics;
typedef struct metric metric; /* one labelled series */

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_kind;

metrics *metrics_new(void);
void metrics_free(metrics *m);

/* Returns the series for name{labels} (labels like `type="CREATE_USER"`, or "" for none; values
 * escaped by the caller, see metrics_label_value), creating the family and the series on first
 * use; the same arguments give the same pointer. Histograms take their bucket bounds (strictly
 * increasing, finite) on first use. Using one name with two kinds, or a histogram with other
 * bounds, is a programming error: the process aborts with a message. */
metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t n_bounds);
/* Removes a series (a partition this instance no longer owns); the pointer is invalid after.
 * The family stays, with its HELP and TYPE lines. */
void metrics_remove(metrics *m, metric *series);

void metric_add(metric *c, uint64_t n);   /* counters */
void metric_set(metric *g, double v);     /* gauges */
void metric_observe(metric *h, double v); /* histograms; NaN is ignored */
double metric_value(const metric *x);     /* counter or gauge value; histogram count */
double metric_sum(const metric *h);       /* histogram sum */

/* Appends v to out escaped for a label value (backslash, double quote, newline). */
void metrics_label_value(buf *out, const char *v);

/* Appends the whole registry in Prometheus text exposition format 0.0.4. */
void metrics_render(metrics *m, buf *out);

/* Bucket bounds in seconds for latencies, and in messages for batch sizes. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_n_latency_buckets;
extern const double metrics_size_buckets[];
extern const size_t metrics_n_size_buckets;

#endif
