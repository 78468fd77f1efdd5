/* Self-telemetry registry and Prometheus text rendering.
 *
 * A flat array of series, small enough (a few hundred) that a linear lookup
 * at registration is fine; increments go through the returned pointer. */
#include "sp_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sp_metric_kind { SP_METRIC_COUNTER, SP_METRIC_GAUGE, SP_METRIC_HISTOGRAM };

struct sp_metric {
    char *name;
    char *help;
    char *labels;
    enum sp_metric_kind kind;
    double value;
    double (*fn)(void *ud);
    void *ud;
    /* Histograms: value is the sum of observations. */
    size_t n_bounds;
    double bounds[SP_METRIC_MAX_BUCKETS];
    uint64_t buckets[SP_METRIC_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    uint64_t count;
};

static struct sp_metric **sp_metrics_v;
static size_t sp_metrics_n, sp_metrics_cap;

struct sp_metric *sp_metric_find(const char *name, const char *labels)
{
    if (!labels)
        labels = "";
    for (size_t i = 0; i < sp_metrics_n; i++)
        if (strcmp(sp_metrics_v[i]->name, name) == 0 && strcmp(sp_metrics_v[i]->labels, labels) == 0)
            return sp_metrics_v[i];
    return NULL;
}

static struct sp_metric *sp_metric_register(enum sp_metric_kind kind, const char *name,
                                            const char *help, const char *labels)
{
    struct sp_metric *m = sp_metric_find(name, labels);
    if (m)
        return m;
    if (sp_metrics_n == sp_metrics_cap) {
        size_t cap = sp_metrics_cap ? sp_metrics_cap * 2 : 64;
        struct sp_metric **v = realloc(sp_metrics_v, cap * sizeof(*v));
        if (!v)
            abort();
        sp_metrics_v = v;
        sp_metrics_cap = cap;
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = strdup(labels ? labels : "");
    if (!m->name || !m->help || !m->labels)
        abort();
    m->kind = kind;
    sp_metrics_v[sp_metrics_n++] = m;
    return m;
}

struct sp_metric *sp_counter(const char *name, const char *help, const char *labels)
{
    return sp_metric_register(SP_METRIC_COUNTER, name, help, labels);
}

struct sp_metric *sp_gauge(const char *name, const char *help, const char *labels)
{
    return sp_metric_register(SP_METRIC_GAUGE, name, help, labels);
}

struct sp_metric *sp_counter_fn(const char *name, const char *help, const char *labels,
                                double (*fn)(void *ud), void *ud)
{
    struct sp_metric *m = sp_metric_register(SP_METRIC_COUNTER, name, help, labels);
    m->fn = fn;
    m->ud = ud;
    return m;
}

struct sp_metric *sp_gauge_fn(const char *name, const char *help, const char *labels,
                              double (*fn)(void *ud), void *ud)
{
    struct sp_metric *m = sp_metric_register(SP_METRIC_GAUGE, name, help, labels);
    m->fn = fn;
    m->ud = ud;
    return m;
}

struct sp_metric *sp_histogram(const char *name, const char *help, const char *labels,
                               const double *bounds, size_t n_bounds)
{
    if (n_bounds > SP_METRIC_MAX_BUCKETS)
        n_bounds = SP_METRIC_MAX_BUCKETS;
    struct sp_metric *m = sp_metric_register(SP_METRIC_HISTOGRAM, name, help, labels);
    if (!m->n_bounds) {
        m->n_bounds = n_bounds;
        memcpy(m->bounds, bounds, n_bounds * sizeof *bounds);
    }
    return m;
}

void sp_histogram_observe(struct sp_metric *m, double v)
{
    if (!m)
        return;
    size_t i = 0;
    while (i < m->n_bounds && v > m->bounds[i])
        i++;
    m->buckets[i]++;
    m->count++;
    m->value += v;
}

uint64_t sp_histogram_count(const struct sp_metric *m)
{
    return m ? m->count : 0;
}

void sp_metric_add(struct sp_metric *m, double v)
{
    if (m)
        m->value += v;
}

void sp_metric_inc(struct sp_metric *m)
{
    if (m)
        m->value += 1;
}

void sp_metric_set(struct sp_metric *m, double v)
{
    if (m)
        m->value = v;
}

double sp_metric_value(const struct sp_metric *m)
{
    if (!m)
        return 0;
    return m->fn ? m->fn(m->ud) : m->value;
}

static void sp_metrics_put_value(struct sp_buf *out, double v)
{
    if (isnan(v))
        sp_buf_append_str(out, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        sp_buf_printf(out, "%.0f", v);
    else
        sp_buf_printf(out, "%.17g", v);
}

static void sp_metrics_put_histogram(struct sp_buf *out, const struct sp_metric *s)
{
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b <= s->n_bounds; b++) {
        cum += s->buckets[b];
        sp_buf_printf(out, "%s_bucket{%s%sle=\"", s->name, s->labels, sep);
        if (b < s->n_bounds)
            sp_buf_printf(out, "%g", s->bounds[b]);
        else
            sp_buf_append_str(out, "+Inf");
        sp_buf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    sp_buf_printf(out, s->labels[0] ? "%s_sum{%s} " : "%s_sum%s ", s->name, s->labels);
    sp_metrics_put_value(out, s->value);
    sp_buf_printf(out, s->labels[0] ? "\n%s_count{%s} %" PRIu64 "\n" : "\n%s_count%s %" PRIu64 "\n",
                  s->name, s->labels, s->count);
}

int sp_metrics_render(struct sp_buf *out)
{
    /* Group series by name, in first-registration order, one HELP/TYPE each. */
    for (size_t i = 0; i < sp_metrics_n; i++) {
        struct sp_metric *m = sp_metrics_v[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(sp_metrics_v[j]->name, m->name) == 0;
        if (seen)
            continue;
        sp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                      m->kind == SP_METRIC_COUNTER ? "counter"
                      : m->kind == SP_METRIC_GAUGE ? "gauge"
                                                   : "histogram");
        for (size_t j = i; j < sp_metrics_n; j++) {
            struct sp_metric *s = sp_metrics_v[j];
            if (strcmp(s->name, m->name) != 0)
                continue;
            if (s->kind == SP_METRIC_HISTOGRAM) {
                sp_metrics_put_histogram(out, s);
                continue;
            }
            if (s->labels[0])
                sp_buf_printf(out, "%s{%s} ", s->name, s->labels);
            else
                sp_buf_printf(out, "%s ", s->name);
            sp_metrics_put_value(out, sp_metric_value(s));
            if (sp_buf_append_byte(out, '\n'))
                return -1;
        }
    }
    return 0;
}

void sp_metrics_each(void (*fn)(void *ud, const char *name, const char *labels, double value),
                     void *ud)
{
    for (size_t i = 0; i < sp_metrics_n; i++)
        fn(ud, sp_metrics_v[i]->name, sp_metrics_v[i]->labels, sp_metric_value(sp_metrics_v[i]));
}

void sp_metrics_reset(void)
{
    for (size_t i = 0; i < sp_metrics_n; i++) {
        free(sp_metrics_v[i]->name);
        free(sp_metrics_v[i]->help);
        free(sp_metrics_v[i]->labels);
        free(sp_metrics_v[i]);
    }
    free(sp_metrics_v);
    sp_metrics_v = NULL;
    sp_metrics_n = sp_metrics_cap = 0;
}
