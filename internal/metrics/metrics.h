/* metrics: counters, gauges and histograms for Prometheus' text format. Families are registered
 * at start-up (one thread); updates are lock-free atomics from any thread, so the HTTP thread can
 * render while the main loop counts. */
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

/* Returns the series for name{labels} (labels like `type="CREATE_USER"`, or "" for none), creating
 * the family and the series on first use. Histograms take their bucket bounds on first use. */
metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t n_bounds);

void metric_add(metric *c, uint64_t n);
void metric_set(metric *g, double v);
void metric_observe(metric *h, double v);
double metric_value(const metric *x); /* counter or gauge value; histogram count */

/* Appends the whole registry in Prometheus text exposition format 0.0.4. */
void metrics_render(metrics *m, buf *out);

/* Bucket bounds in seconds for latencies, and in counts for batch sizes. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_n_latency_buckets;
extern const double metrics_size_buckets[];
extern const size_t metrics_n_size_buckets;

#endif
