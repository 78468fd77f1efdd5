/* Self-telemetry registry and Prometheus text rendering.
 *
 * A flat array of series, small enough (a few hundred) that a linear lookup
 * at registration is fine; increments go through the returned pointer.
 * /metrics is rendered on the telemetry thread (sp_telemetry.h) while the
 * loop thread counts: values are relaxed atomics (each series has one
 * writing thread), the array is guarded by a mutex (series may be added
 * while running, e.g. a new HTTP status), and computed series whose
 * callback reads loop state are sampled by the loop (sp_metrics_sample). */
#include "sp_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sp_metric_kind { SP_METRIC_COUNTER, SP_METRIC_GAUGE, SP_METRIC_HISTOGRAM };

struct sp_metric {
    char *name;
    char *help;
    char *labels;
    enum sp_metric_kind kind;
    _Atomic double value;
    double (*fn)(void *ud);
    void *ud;
    bool any_thread; /* fn may run on any thread (reads atomics or the kernel) */
    /* Histograms: value is the sum of observations. */
    size_t n_bounds;
    double bounds[SP_METRIC_MAX_BUCKETS];
    _Atomic uint64_t buckets[SP_METRIC_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    _Atomic uint64_t count;
    /* Series of the same name, in registration order: the next one, and
     * whether this is the first (rendering groups them without comparing
     * every name with every other at each scrape). */
    struct sp_metric *next_same;
    bool first_of_name;
};

static struct sp_metric **sp_metrics_v;
static size_t sp_metrics_n, sp_metrics_cap;
static pthread_mutex_t sp_metrics_lock = PTHREAD_MUTEX_INITIALIZER;

#define SP_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SP_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static struct sp_metric *sp_metric_find_locked(const char *name, const char *labels)
{
    if (!labels)
        labels = "";
    for (size_t i = 0; i < sp_metrics_n; i++)
        if (strcmp(sp_metrics_v[i]->name, name) == 0 && strcmp(sp_metrics_v[i]->labels, labels) == 0)
            return sp_metrics_v[i];
    return NULL;
}

struct sp_metric *sp_metric_find(const char *name, const char *labels)
{
    pthread_mutex_lock(&sp_metrics_lock);
    struct sp_metric *m = sp_metric_find_locked(name, labels);
    pthread_mutex_unlock(&sp_metrics_lock);
    return m;
}

static struct sp_metric *sp_metric_register(enum sp_metric_kind kind, const char *name,
                                            const char *help, const char *labels)
{
    pthread_mutex_lock(&sp_metrics_lock);
    struct sp_metric *m = sp_metric_find_locked(name, labels);
    if (m) {
        pthread_mutex_unlock(&sp_metrics_lock);
        return m;
    }
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
    struct sp_metric *last = NULL;
    for (size_t i = 0; i < sp_metrics_n; i++)
        if (strcmp(sp_metrics_v[i]->name, name) == 0)
            last = sp_metrics_v[i];
    if (last)
        last->next_same = m;
    else
        m->first_of_name = true;
    sp_metrics_v[sp_metrics_n++] = m;
    pthread_mutex_unlock(&sp_metrics_lock);
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

struct sp_metric *sp_counter_fn_any_thread(const char *name, const char *help, const char *labels,
                                           double (*fn)(void *ud), void *ud)
{
    struct sp_metric *m = sp_counter_fn(name, help, labels, fn, ud);
    m->any_thread = true;
    return m;
}

struct sp_metric *sp_gauge_fn_any_thread(const char *name, const char *help, const char *labels,
                                         double (*fn)(void *ud), void *ud)
{
    struct sp_metric *m = sp_gauge_fn(name, help, labels, fn, ud);
    m->any_thread = true;
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
    SP_STORE(m->buckets[i], SP_LOAD(m->buckets[i]) + 1);
    SP_STORE(m->count, SP_LOAD(m->count) + 1);
    SP_STORE(m->value, SP_LOAD(m->value) + v);
}

uint64_t sp_histogram_count(const struct sp_metric *m)
{
    return m ? SP_LOAD(m->count) : 0;
}

void sp_metric_add(struct sp_metric *m, double v)
{
    if (m)
        SP_STORE(m->value, SP_LOAD(m->value) + v);
}

void sp_metric_inc(struct sp_metric *m)
{
    sp_metric_add(m, 1);
}

void sp_metric_set(struct sp_metric *m, double v)
{
    if (m)
        SP_STORE(m->value, v);
}

double sp_metric_value(const struct sp_metric *m)
{
    if (!m)
        return 0;
    return m->fn ? m->fn(m->ud) : SP_LOAD(m->value);
}

void sp_metrics_sample(void)
{
    pthread_mutex_lock(&sp_metrics_lock);
    for (size_t i = 0; i < sp_metrics_n; i++) {
        struct sp_metric *m = sp_metrics_v[i];
        if (m->fn && !m->any_thread)
            SP_STORE(m->value, m->fn(m->ud));
    }
    pthread_mutex_unlock(&sp_metrics_lock);
}

static void sp_metrics_put_value(struct sp_buf *out, double v)
{
    if (isnan(v)) {
        sp_buf_append_str(out, "NaN");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        /* What "%.0f" prints for an integral value ("-0" for -0.0),
         * without printf: most series are counts. */
        char d[24];
        size_t n = sizeof d;
        uint64_t u = (uint64_t)fabs(v);
        do {
            d[--n] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (signbit(v))
            d[--n] = '-';
        sp_buf_append(out, d + n, sizeof d - n);
    } else {
        sp_buf_printf(out, "%.17g", v);
    }
}

static void sp_metrics_put_histogram(struct sp_buf *out, const struct sp_metric *s)
{
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b <= s->n_bounds; b++) {
        cum += SP_LOAD(s->buckets[b]);
        sp_buf_printf(out, "%s_bucket{%s%sle=\"", s->name, s->labels, sep);
        if (b < s->n_bounds)
            sp_buf_printf(out, "%g", s->bounds[b]);
        else
            sp_buf_append_str(out, "+Inf");
        sp_buf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    sp_buf_printf(out, s->labels[0] ? "%s_sum{%s} " : "%s_sum%s ", s->name, s->labels);
    sp_metrics_put_value(out, SP_LOAD(s->value));
    sp_buf_printf(out, s->labels[0] ? "\n%s_count{%s} %" PRIu64 "\n" : "\n%s_count%s %" PRIu64 "\n",
                  s->name, s->labels, SP_LOAD(s->count));
}

static int sp_metrics_render_locked(struct sp_buf *out, bool snapshot)
{
    /* Group series by name, in first-registration order, one HELP/TYPE each
     * (the series of a name are chained at registration). */
    for (size_t i = 0; i < sp_metrics_n; i++) {
        struct sp_metric *m = sp_metrics_v[i];
        if (!m->first_of_name)
            continue;
        sp_buf_append_str(out, "# HELP ");
        sp_buf_append_str(out, m->name);
        sp_buf_append_byte(out, ' ');
        sp_buf_append_str(out, m->help);
        sp_buf_append_str(out, "\n# TYPE ");
        sp_buf_append_str(out, m->name);
        sp_buf_append_str(out, m->kind == SP_METRIC_COUNTER ? " counter\n"
                               : m->kind == SP_METRIC_GAUGE ? " gauge\n"
                                                            : " histogram\n");
        for (struct sp_metric *s = m; s; s = s->next_same) {
            if (s->kind == SP_METRIC_HISTOGRAM) {
                sp_metrics_put_histogram(out, s);
                continue;
            }
            sp_buf_append_str(out, s->name);
            if (s->labels[0]) {
                sp_buf_append_byte(out, '{');
                sp_buf_append_str(out, s->labels);
                sp_buf_append_byte(out, '}');
            }
            sp_buf_append_byte(out, ' ');
            double v = snapshot && s->fn && !s->any_thread ? SP_LOAD(s->value)
                                                          : sp_metric_value(s);
            sp_metrics_put_value(out, v);
            if (sp_buf_append_byte(out, '\n'))
                return -1;
        }
    }
    return 0;
}

void sp_metrics_each(void (*fn)(void *ud, const char *name, const char *labels, double value),
                     void *ud)
{
    pthread_mutex_lock(&sp_metrics_lock);
    for (size_t i = 0; i < sp_metrics_n; i++)
        fn(ud, sp_metrics_v[i]->name, sp_metrics_v[i]->labels, sp_metric_value(sp_metrics_v[i]));
    pthread_mutex_unlock(&sp_metrics_lock);
}

int sp_metrics_render(struct sp_buf *out)
{
    pthread_mutex_lock(&sp_metrics_lock);
    int rc = sp_metrics_render_locked(out, false);
    pthread_mutex_unlock(&sp_metrics_lock);
    return rc;
}

int sp_metrics_render_snapshot(struct sp_buf *out)
{
    pthread_mutex_lock(&sp_metrics_lock);
    int rc = sp_metrics_render_locked(out, true);
    pthread_mutex_unlock(&sp_metrics_lock);
    return rc;
}

void sp_metrics_reset(void)
{
    pthread_mutex_lock(&sp_metrics_lock);
    for (size_t i = 0; i < sp_metrics_n; i++) {
        free(sp_metrics_v[i]->name);
        free(sp_metrics_v[i]->help);
        free(sp_metrics_v[i]->labels);
        free(sp_metrics_v[i]);
    }
    free(sp_metrics_v);
    sp_metrics_v = NULL;
    sp_metrics_n = sp_metrics_cap = 0;
    pthread_mutex_unlock(&sp_metrics_lock);
}
