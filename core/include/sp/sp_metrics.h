/* Self-telemetry: counters and gauges rendered as Prometheus text.
 *
 * A metric is one series: a name plus a fixed label set. Components create
 * their series at create() time and keep the pointer; incrementing is a
 * plain add (everything runs on the loop thread). Series with the same name
 * share one HELP/TYPE header. Names follow spanprof_<kind>_<what>_total and
 * labels carry at least component="type/name". Label values must never hold
 * secrets. */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"

struct sp_metric;

/* labels: the inside of {...} already formatted, e.g.
 * `component="otlp",transport="grpc"`, or NULL/"" for none. Returns the
 * existing series when name+labels was registered before. Never NULL (aborts
 * on ENOMEM at registration: that is start-up). */
struct sp_metric *sp_counter(const char *name, const char *help, const char *labels);
struct sp_metric *sp_gauge(const char *name, const char *help, const char *labels);
/* A counter whose value is computed when rendered (e.g. CPU seconds read
 * from the kernel): it must only ever grow. */
struct sp_metric *sp_counter_fn(const char *name, const char *help, const char *labels,
                                double (*fn)(void *ud), void *ud);
/* A gauge whose value is computed when rendered. */
struct sp_metric *sp_gauge_fn(const char *name, const char *help, const char *labels,
                              double (*fn)(void *ud), void *ud);

/* A histogram: cumulative buckets with the given upper bounds (ascending,
 * at most SP_METRIC_MAX_BUCKETS; +Inf is implied), rendered as name_bucket,
 * name_sum and name_count. Observe with sp_histogram_observe. */
#define SP_METRIC_MAX_BUCKETS 16
struct sp_metric *sp_histogram(const char *name, const char *help, const char *labels,
                               const double *bounds, size_t n_bounds);
void sp_histogram_observe(struct sp_metric *m, double v);
/* Observations so far (tests). */
uint64_t sp_histogram_count(const struct sp_metric *m);

void sp_metric_add(struct sp_metric *m, double v);
void sp_metric_inc(struct sp_metric *m);
void sp_metric_set(struct sp_metric *m, double v);
double sp_metric_value(const struct sp_metric *m);

/* Looks a series up (tests, and the health/summary logs). NULL if absent. */
struct sp_metric *sp_metric_find(const char *name, const char *labels);

/* Prometheus text exposition format 0.0.4 of every series. */
int sp_metrics_render(struct sp_buf *out);

/* Calls fn for every series with its current value, in registration order
 * (the status page; loop thread). */
void sp_metrics_each(void (*fn)(void *ud, const char *name, const char *labels, double value),
                     void *ud);

/* Drops every series (between tests; at exit). Pointers become invalid. */
void sp_metrics_reset(void);

#endif
