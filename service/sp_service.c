/* The service: turns the loaded configuration into running components.
 *
 * Start order is the Collector's (extensions, then exporters, processors,
 * receivers: nothing is sent to a consumer that is not started) and stop
 * order the reverse (receivers first, so in-flight data still has somewhere
 * to go). Shutdown is asynchronous per component; a deadline timer caps the
 * whole at service.shutdown_timeout, and a second signal exits at once. */
#include "sp_service.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sp_assert.h"
#include "sp_httpd.h"
#include "sp_log.h"
#include "sp_memory.h"
#include "sp_metrics.h"
#include "sp_service_status.h"
#include "sp_status.h"

struct sp_service {
    uv_loop_t *loop;
    struct sp_service_conf *conf;
    struct sp_component *comps; /* one per used component, in conf order */
    size_t comp_count;
    struct sp_host host;
    struct sp_httpd *metrics_httpd;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t deadline;
    uv_timer_t trim;
    int signals_seen;
    bool shutting_down;
    bool timed_out;
    bool start_failed;
    /* Shutdown runs kind by kind: receivers, processors, exporters, extensions. */
    int stop_phase;
    size_t pending_stops;
    int handles_open;
    double start_time;
};

static const enum sp_kind sp_stop_order[] = {SP_KIND_RECEIVER, SP_KIND_PROCESSOR,
                                             SP_KIND_EXPORTER, SP_KIND_EXTENSION};
static const enum sp_kind sp_start_order[] = {SP_KIND_EXTENSION, SP_KIND_EXPORTER,
                                              SP_KIND_PROCESSOR, SP_KIND_RECEIVER};

static double sp_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sp_component *sp_service_find(struct sp_host *host, const char *id)
{
    struct sp_service *s = (struct sp_service *)((char *)host - offsetof(struct sp_service, host));
    for (size_t i = 0; i < s->comp_count; i++)
        if (strcmp(s->comps[i].id, id) == 0)
            return &s->comps[i];
    return NULL;
}

static struct sp_component *sp_service_comp_for(struct sp_service *s,
                                                const struct sp_conf_component *cc)
{
    for (size_t i = 0; i < s->comp_count; i++)
        if (strcmp(s->comps[i].id, cc->id) == 0 && s->comps[i].type == cc->type)
            return &s->comps[i];
    return NULL;
}

static int sp_consumers_add(struct sp_consumers *list, struct sp_component *c)
{
    for (size_t i = 0; i < list->n; i++)
        if (list->v[i] == c)
            return 0;
    struct sp_component **v = realloc(list->v, (list->n + 1) * sizeof(*v));
    if (!v)
        return SP_ENOMEM;
    v[list->n++] = c;
    list->v = v;
    return 0;
}

/* Wires one pipeline: each receiver feeds the first processor (or every
 * exporter), each processor the next, the last processor every exporter. */
static int sp_service_wire(struct sp_service *s, const struct sp_conf_pipeline *p)
{
    enum sp_signal sig = p->signal;
    struct sp_consumers first = {0};
    int rc = 0;

    if (p->processor_count) {
        rc |= sp_consumers_add(&first, sp_service_comp_for(s, p->processors[0]));
        for (size_t i = 0; i < p->processor_count; i++) {
            struct sp_component *proc = sp_service_comp_for(s, p->processors[i]);
            if (i + 1 < p->processor_count) {
                rc |= sp_consumers_add(&proc->next[sig], sp_service_comp_for(s, p->processors[i + 1]));
            } else {
                for (size_t e = 0; e < p->exporter_count; e++)
                    rc |= sp_consumers_add(&proc->next[sig], sp_service_comp_for(s, p->exporters[e]));
            }
        }
    } else {
        for (size_t e = 0; e < p->exporter_count; e++)
            rc |= sp_consumers_add(&first, sp_service_comp_for(s, p->exporters[e]));
    }
    for (size_t r = 0; r < p->receiver_count; r++) {
        struct sp_component *recv = sp_service_comp_for(s, p->receivers[r]);
        for (size_t i = 0; i < first.n; i++)
            rc |= sp_consumers_add(&recv->next[sig], first.v[i]);
    }
    free(first.v);
    return rc ? SP_ENOMEM : 0;
}

int sp_service_create(uv_loop_t *loop, struct sp_service_conf *conf, struct sp_service **out,
                      struct sp_diag *diag)
{
    struct sp_service *s = calloc(1, sizeof(*s));
    if (!s)
        return SP_ENOMEM;
    s->loop = loop;
    s->conf = conf;
    s->host.loop = loop;
    s->host.find = sp_service_find;
    s->host.state = SP_SERVICE_STARTING;
    s->comps = calloc(conf->component_count ? conf->component_count : 1, sizeof(*s->comps));
    if (!s->comps) {
        free(s);
        return SP_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < conf->component_count; i++) {
        struct sp_conf_component *cc = &conf->components[i];
        if (!cc->used)
            continue; /* the Collector does not build unused components either */
        struct sp_component *c = &s->comps[s->comp_count++];
        c->type = cc->type;
        c->id = strdup(cc->id);
        c->conf = cc->conf;
        c->conf_ctx = cc->ctx;
        c->loop = loop;
        c->host = &s->host;
        size_t need = strlen(cc->id) + 16;
        c->metric_labels = malloc(need);
        if (!c->id || !c->metric_labels) {
            rc = SP_ENOMEM;
            break;
        }
        snprintf(c->metric_labels, need, "component=\"%s\"", cc->id);
        struct sp_err err = {0};
        if (c->type->create(c, &err) != 0) {
            /* Messages from sp_conf_errorf already carry file:line:col. */
            if (sp_service_conf_msg_has_pos(conf, err.msg))
                sp_diag_error(diag, NULL, "%s", err.msg);
            else
                sp_diag_error(diag, &cc->pos, "%s '%s': %s", sp_kind_name(cc->kind), cc->id,
                              err.msg);
            c->ctx = NULL;
            rc = SP_EINVAL;
        }
    }
    for (size_t i = 0; rc == 0 && i < conf->pipeline_count; i++)
        rc = sp_service_wire(s, &conf->pipelines[i]);
    *out = s;
    return rc;
}

static double sp_metric_uptime(void *ud)
{
    struct sp_service *s = ud;
    return sp_now_s() - s->start_time;
}

static double sp_metric_rss(void *ud)
{
    (void)ud;
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static double sp_metric_cpu(void *ud)
{
    (void)ud;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void sp_service_metrics_handler(void *ud, struct sp_http_request *req)
{
    (void)ud;
    if (req->phase != SP_HTTP_HEADERS)
        return;
    if (sp_service_status_route(req))
        return;
    if (strcmp(req->path, "/metrics") != 0) {
        sp_httpd_respond_text(req, 404, "not found: try /metrics or /status");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
        sp_httpd_respond(req, 405, "text/plain", "method not allowed\n", 19, allow);
        return;
    }
    struct sp_buf out = {0};
    sp_metrics_render(&out);
    sp_httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, NULL);
    sp_buf_free(&out);
}

/* Batches are freed as soon as they are sent, but glibc keeps freed heap
 * pages mapped: after a burst RSS stays at its peak. A periodic trim gives
 * them back (measured in bench/RESULTS.md); it costs well under a
 * millisecond per call at sidecar heap sizes. */
#define SP_TRIM_INTERVAL_MS 5000

static void sp_service_on_trim(uv_timer_t *t)
{
    (void)t;
    malloc_trim(0);
}

static void sp_service_on_signal(uv_signal_t *h, int signum)
{
    struct sp_service *s = h->data;
    s->signals_seen++;
    if (s->signals_seen > 1) {
        sp_log_warn(NULL, "second signal (%s): exiting at once", strsignal(signum));
        _exit(1);
    }
    sp_log_info(NULL, "received %s: shutting down (deadline %lld ms)", strsignal(signum),
                (long long)s->conf->shutdown_timeout_ms);
    sp_service_shutdown(s);
}

int sp_service_start(struct sp_service *s, struct sp_err *err)
{
    s->start_time = sp_now_s();
    sp_memory_set_limit(s->conf->memory_limit);
    sp_memory_register_metrics();
    sp_gauge_fn("spanprof_process_uptime_seconds", "Seconds since spanprof started", NULL,
                sp_metric_uptime, s);
    sp_gauge_fn("spanprof_process_resident_memory_bytes", "Resident set size in bytes", NULL,
                sp_metric_rss, NULL);
    sp_counter_fn("spanprof_process_cpu_seconds_total", "User and system CPU seconds", NULL,
                sp_metric_cpu, NULL);

    uv_signal_init(s->loop, &s->sigterm);
    uv_signal_init(s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, sp_service_on_signal, SIGTERM);
    uv_signal_start(&s->sigint, sp_service_on_signal, SIGINT);
    uv_timer_init(s->loop, &s->deadline);
    s->deadline.data = s;
    uv_timer_init(s->loop, &s->trim);
    s->trim.data = s;
    uv_timer_start(&s->trim, sp_service_on_trim, SP_TRIM_INTERVAL_MS, SP_TRIM_INTERVAL_MS);
    /* The timer must not keep the loop alive at shutdown. */
    uv_unref((uv_handle_t *)&s->trim);
    s->handles_open = 4;
    /* A sidecar whose peer hangs up must not die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    if (sp_status_start(s->loop) == 0)
        sp_service_status_register(s->conf, s->comps, s->comp_count);
    if (s->conf->metrics_address && s->conf->metrics_address[0]) {
        struct sp_httpd_opts o = {.endpoint = s->conf->metrics_address, .name = "telemetry"};
        int rc = sp_httpd_start(s->loop, &o, sp_service_metrics_handler, s, &s->metrics_httpd, err);
        if (rc) {
            sp_err_prefix(err, "service.telemetry.metrics.address");
            return rc;
        }
        char addr[300];
        sp_log_info(NULL, "serving spanprof's metrics at http://%s/metrics",
                    sp_conf_endpoint_bound(s->conf->metrics_address,
                                           sp_httpd_port(s->metrics_httpd), addr, sizeof(addr)));
    }
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < s->comp_count; i++) {
            struct sp_component *c = &s->comps[i];
            if (c->type->kind != sp_start_order[k] || !c->type->start)
                continue;
            int rc = c->type->start(c, &s->host, err);
            if (rc) {
                sp_err_prefix(err, "cannot start %s '%s'", sp_kind_name(c->type->kind), c->id);
                s->start_failed = true;
                return rc;
            }
            sp_log_debug(c->id, "started");
        }
    }
    s->host.state = SP_SERVICE_RUNNING;
    sp_log_info(NULL, "spanprof is running: %zu components, %zu pipelines", s->comp_count,
                s->conf->pipeline_count);
    return 0;
}

static void sp_service_stop_next_phase(struct sp_service *s);

static void sp_service_on_handle_closed(uv_handle_t *h)
{
    struct sp_service *s = h->data;
    s->handles_open--;
}

static void sp_service_finish(struct sp_service *s)
{
    uv_timer_stop(&s->deadline);
    if (s->handles_open == 4) {
        uv_close((uv_handle_t *)&s->trim, sp_service_on_handle_closed);
        uv_close((uv_handle_t *)&s->sigterm, sp_service_on_handle_closed);
        uv_close((uv_handle_t *)&s->sigint, sp_service_on_handle_closed);
        uv_close((uv_handle_t *)&s->deadline, sp_service_on_handle_closed);
    }
    if (s->metrics_httpd) {
        sp_httpd_stop(s->metrics_httpd, NULL, NULL);
        s->metrics_httpd = NULL;
    }
    sp_service_status_unregister(s->conf, s->comps, s->comp_count);
    sp_status_stop();
    sp_log_info(NULL, "shutdown %s", s->timed_out ? "timed out: some data was not flushed"
                                                   : "complete");
}

static void sp_service_on_stopped(struct sp_component *c)
{
    struct sp_service *s = (struct sp_service *)((char *)c->host - offsetof(struct sp_service, host));
    SP_ASSERT(!c->stop_done, "a component called its shutdown done() twice");
    SP_ASSERT(s->pending_stops > 0, "a shutdown done() arrived when none was pending");
    c->stop_done = true;
    sp_log_debug(c->id, "stopped");
    if (--s->pending_stops == 0)
        sp_service_stop_next_phase(s);
}

static void sp_service_stop_next_phase(struct sp_service *s)
{
    while (s->stop_phase < 4) {
        enum sp_kind kind = sp_stop_order[s->stop_phase++];
        size_t n = 0;
        for (size_t i = 0; i < s->comp_count; i++)
            if (s->comps[i].type->kind == kind && s->comps[i].type->shutdown && s->comps[i].ctx)
                n++;
        if (n == 0)
            continue;
        s->pending_stops = n;
        for (size_t i = 0; i < s->comp_count; i++) {
            struct sp_component *c = &s->comps[i];
            if (c->type->kind == kind && c->type->shutdown && c->ctx)
                c->type->shutdown(c, sp_service_on_stopped);
        }
        if (s->pending_stops > 0)
            return; /* the last done() continues */
    }
    if (s->stop_phase == 4) {
        s->stop_phase = 5;
        sp_service_finish(s);
    }
}

static void sp_service_on_deadline(uv_timer_t *t)
{
    struct sp_service *s = t->data;
    s->timed_out = true;
    sp_log_warn(NULL, "shutdown deadline of %lld ms passed: forcing the remaining components down",
                (long long)s->conf->shutdown_timeout_ms);
    /* Components watch host.shutdown_deadline_ms and give up on their own;
     * if one still has not answered, stop waiting for it. */
    uv_stop(s->loop);
}

void sp_service_shutdown(struct sp_service *s)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    s->host.state = SP_SERVICE_STOPPING;
    s->host.shutdown_deadline_ms = uv_now(s->loop) + (uint64_t)s->conf->shutdown_timeout_ms;
    /* The deadline timer fires a little after the components' own deadline
     * so they get the chance to count and log what they drop. */
    uv_timer_start(&s->deadline, sp_service_on_deadline,
                   (uint64_t)s->conf->shutdown_timeout_ms + 500, 0);
    sp_service_stop_next_phase(s);
}

int sp_service_exit_code(const struct sp_service *s)
{
    return s->start_failed ? 1 : 0;
}

void sp_service_destroy(struct sp_service *s)
{
    if (!s)
        return;
    for (size_t i = s->comp_count; i-- > 0;) {
        struct sp_component *c = &s->comps[i];
        if (c->ctx && c->type->destroy)
            c->type->destroy(c);
        for (int sig = 0; sig < SP_SIGNAL_COUNT; sig++)
            free(c->next[sig].v);
        free(c->id);
        free(c->metric_labels);
    }
    free(s->comps);
    free(s);
}
