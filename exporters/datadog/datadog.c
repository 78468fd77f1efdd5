/* datadog exporter: traces and endpoint-labelled profiles to Datadog.
 *
 * Two modes. Agentless (the default): traces go to the trace intake
 * (POST https://trace.agent.<site>/api/v0.2/traces, gzip'd AgentPayload
 * protobuf) and profiles to the profile intake
 * (POST https://intake.profile.<site>/api/v2/profile, multipart), both with
 * the API key. Agent mode (agent.endpoint set): the same data through a
 * Datadog Agent, traces as /v0.4/traces msgpack and profiles to
 * /profiling/v1/input, no key needed (docs/datadog.md §1, §2, §5).
 *
 * This file is the component: config table, lifecycle and metrics.
 * consume() only queues a reference to the batch (bounded, see
 * datadog_queue.c) and returns; encoding (on a later loop turn) and
 * delivery happen in the workers (datadog_send.c). Shutdown drains the queue until the service's
 * deadline, then counts and logs what it could not deliver. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_site.h"
#include "sp_log.h"

/* ---- configuration table ---- */

static const struct sp_conf_key dd_api_keys[] = {
    {"key", SP_CONF_SECRET, offsetof(struct dd_api_conf, key), NULL, NULL, 0, 0, 0,
     "Datadog API key (required without agent.endpoint); surrounding whitespace and quotes "
     "are trimmed"},
    {"site", SP_CONF_STRING, offsetof(struct dd_api_conf, site), "datadoghq.com", NULL, 0, 0, 0,
     "Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, "
     "ap1.datadoghq.com, ddog-gov.com, ..."},
};

static const struct sp_conf_key dd_traces_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct dd_endpoint_conf, endpoint), NULL, NULL, 0, 0, 0,
     "trace intake base URL (default https://trace.agent.<site>); /api/v0.2/traces is appended"},
};

static const struct sp_conf_key dd_profiles_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct dd_endpoint_conf, endpoint), NULL, NULL, 0, 0, 0,
     "profile intake base URL (default https://intake.profile.<site>); /api/v2/profile is "
     "appended"},
};

static const struct sp_conf_key dd_agent_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct dd_endpoint_conf, endpoint), NULL, NULL, 0, 0, 0,
     "send through a Datadog Agent instead of agentless, e.g. http://${env:HOST_IP}:8126 "
     "(traces to /v0.4/traces, profiles to /profiling/v1/input)"},
};

static const struct sp_conf_key dd_retry_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct dd_retry_conf, enabled), "true", NULL, 0, 0, 0,
     "retry 408, 429, 5xx and transport errors"},
    {"initial_interval", SP_CONF_DURATION, offsetof(struct dd_retry_conf, initial_interval_ms),
     "5s", NULL, 0, 0, 0, "first backoff (grows x1.5 per retry, +-50% jitter)"},
    {"max_interval", SP_CONF_DURATION, offsetof(struct dd_retry_conf, max_interval_ms), "30s",
     NULL, 0, 0, 0, "largest backoff between two attempts"},
    {"max_elapsed_time", SP_CONF_DURATION, offsetof(struct dd_retry_conf, max_elapsed_ms),
     "300s", NULL, 0, 0, 0, "give a request up after this long (0 = retry until shutdown)"},
};

static const struct sp_conf_key dd_queue_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct dd_queue_conf, enabled), "true", NULL, 0, 0, 0,
     "queue batches; when false a batch is refused unless a consumer is idle"},
    {"queue_size", SP_CONF_INT, offsetof(struct dd_queue_conf, queue_size), "1000", NULL, 0, 0, 0,
     "batches (OTLP exports or profile uploads) waiting to be sent"},
    {"max_bytes", SP_CONF_SIZE, offsetof(struct dd_queue_conf, max_bytes), "64MiB", NULL, 0, 0, 0,
     "memory the waiting batches may hold"},
    {"num_consumers", SP_CONF_INT, offsetof(struct dd_queue_conf, num_consumers), "10", NULL, 0, 0,
     0, "requests in flight at once"},
    {"on_full", SP_CONF_STRING, offsetof(struct dd_queue_conf, on_full), "refuse", NULL, 0, 0, 0,
     "refuse: new data is refused (receivers answer 429/UNAVAILABLE, clients retry); "
     "drop_oldest: the oldest queued batches are dropped to make room"},
};

static const struct sp_conf_key dd_keys[] = {
    {"api", SP_CONF_BLOCK, offsetof(struct dd_conf, api), NULL, dd_api_keys,
     SP_CONF_END_COUNT(dd_api_keys), 0, 0, "Datadog account"},
    {"traces", SP_CONF_BLOCK, offsetof(struct dd_conf, traces), NULL, dd_traces_keys,
     SP_CONF_END_COUNT(dd_traces_keys), 0, 0, "agentless trace intake"},
    {"profiles", SP_CONF_BLOCK, offsetof(struct dd_conf, profiles), NULL, dd_profiles_keys,
     SP_CONF_END_COUNT(dd_profiles_keys), 0, 0, "agentless profile intake"},
    {"agent", SP_CONF_BLOCK, offsetof(struct dd_conf, agent), NULL, dd_agent_keys,
     SP_CONF_END_COUNT(dd_agent_keys), 0, 0, "Datadog Agent mode"},
    {"hostname", SP_CONF_STRING, offsetof(struct dd_conf, hostname), NULL, NULL, 0, 0, 0,
     "host name for spans and profiles that carry none"},
    {"env", SP_CONF_STRING, offsetof(struct dd_conf, env), NULL, NULL, 0, 0, 0,
     "env for spans and profiles that carry none"},
    {"tags", SP_CONF_STRLIST, offsetof(struct dd_conf, tags), NULL, NULL, 0, 0, 0,
     "extra key:value tags added to every payload"},
    {"timeout", SP_CONF_DURATION, offsetof(struct dd_conf, timeout_ms), "10s", NULL, 0, 0, 0,
     "timeout of one HTTP request"},
    {"retry_on_failure", SP_CONF_BLOCK, offsetof(struct dd_conf, retry), NULL, dd_retry_keys,
     SP_CONF_END_COUNT(dd_retry_keys), 0, 0, "retries with exponential backoff"},
    {"sending_queue", SP_CONF_BLOCK, offsetof(struct dd_conf, queue), NULL, dd_queue_keys,
     SP_CONF_END_COUNT(dd_queue_keys), 0, 0, "bounded queue in front of the senders"},
};

/* ---- helpers shared with the other files ---- */

bool dd_ratelog_ok(struct dd_exporter *dd, struct dd_ratelog *rl, uint64_t interval_ms)
{
    uint64_t now = dd->loop ? uv_now(dd->loop) : 0;
    if (rl->last_ms == 0 || now - rl->last_ms >= interval_ms) {
        rl->last_ms = now ? now : 1;
        rl->suppressed = 0;
        return true;
    }
    rl->suppressed++;
    return false;
}

struct sp_metric *dd_status_counter(struct dd_exporter *dd, long status)
{
    char labels[256];
    if (status > 0)
        snprintf(labels, sizeof(labels), "%s,status=\"%ld\"", dd->comp->metric_labels, status);
    else
        snprintf(labels, sizeof(labels), "%s,status=\"transport_error\"",
                 dd->comp->metric_labels);
    return sp_counter("spanprof_exporter_http_responses_total",
                      "HTTP responses from Datadog by status (transport_error: no response)",
                      labels);
}

void dd_exporter_queue_changed(struct dd_exporter *dd)
{
    sp_metric_set(dd->queue_size, (double)dd->queue.len);
    sp_metric_set(dd->queue_bytes, (double)dd->queue.bytes);
}

static const char *dd_noun(enum sp_signal s)
{
    return s == SP_SIGNAL_TRACES ? "spans" : "profiles";
}

void dd_item_drop(struct dd_exporter *dd, struct dd_item *it)
{
    enum sp_signal s = it->batch->signal;
    sp_metric_add(dd->m[s].dropped_overflow, (double)it->count);
    if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
        sp_log_warn(dd->comp->id,
                    "sending queue full (limits: %zu batches, %zu bytes): dropped the oldest "
                    "batch (%zu %s); Datadog is slower than the input (see "
                    "spanprof_exporter_dropped_%s_total)",
                    dd->queue.max_items, dd->queue.max_bytes, it->count, dd_noun(s), dd_noun(s));
    sp_batch_unref(it->batch);
    it->batch = NULL;
}

static void dd_item_drop_cb(void *ud, struct dd_item *it)
{
    dd_item_drop(ud, it);
}

/* ---- metrics ---- */

static void dd_register_metrics(struct dd_exporter *dd)
{
    const char *base = dd->comp->metric_labels;
    char l[256];
    /* Datadog takes traces and profiles only (the type's signals). */
    for (int s = SP_SIGNAL_TRACES; s <= SP_SIGNAL_PROFILES; s++) {
        struct dd_sig_metrics *m = &dd->m[s];
        bool tr = s == SP_SIGNAL_TRACES;
        m->sent = sp_counter(tr ? "spanprof_exporter_sent_spans_total"
                                : "spanprof_exporter_sent_profiles_total",
                             tr ? "Spans accepted by Datadog" : "Profiles accepted by Datadog",
                             base);
        m->failed = sp_counter(tr ? "spanprof_exporter_failed_spans_total"
                                  : "spanprof_exporter_failed_profiles_total",
                               tr ? "Spans Datadog refused or that ran out of retries"
                                  : "Profiles Datadog refused or that ran out of retries",
                               base);
        m->refused = sp_counter(tr ? "spanprof_exporter_refused_spans_total"
                                   : "spanprof_exporter_refused_profiles_total",
                                "Data refused because the sending queue was full (the "
                                "producer was told to retry)",
                                base);
        const char *dname = tr ? "spanprof_exporter_dropped_spans_total"
                               : "spanprof_exporter_dropped_profiles_total";
        const char *dhelp = "Data dropped by the exporter, by reason";
        snprintf(l, sizeof(l), "%s,reason=\"queue_overflow\"", base);
        m->dropped_overflow = sp_counter(dname, dhelp, l);
        snprintf(l, sizeof(l), "%s,reason=\"shutdown\"", base);
        m->dropped_shutdown = sp_counter(dname, dhelp, l);
        snprintf(l, sizeof(l), "%s,reason=\"invalid\"", base);
        m->dropped_invalid = sp_counter(dname, dhelp, l);
        snprintf(l, sizeof(l), "%s,signal=\"%s\"", base, sp_signal_name(s));
        m->bytes = sp_counter("spanprof_exporter_payload_bytes_total",
                              "Bytes of request bodies Datadog accepted", l);
        m->retries = sp_counter("spanprof_exporter_retries_total",
                                "Requests retried after a transient failure", l);
    }
    dd->queue_size = sp_gauge("spanprof_exporter_queue_size", "Batches waiting to be sent", base);
    dd->queue_bytes = sp_gauge("spanprof_exporter_queue_bytes",
                               "Bytes held by the batches waiting to be sent", base);
    dd->queue_capacity = sp_gauge("spanprof_exporter_queue_capacity",
                                  "sending_queue.queue_size", base);
    dd->queue_capacity_bytes = sp_gauge("spanprof_exporter_queue_capacity_bytes",
                                        "sending_queue.max_bytes", base);
    sp_metric_set(dd->queue_capacity, (double)dd->queue.max_items);
    sp_metric_set(dd->queue_capacity_bytes, (double)dd->queue.max_bytes);
    dd_exporter_queue_changed(dd);
}

/* ---- lifecycle ---- */

static int dd_create(struct sp_component *comp, struct sp_err *err)
{
    const struct dd_conf *conf = comp->conf;
    struct dd_exporter *dd = calloc(1, sizeof(*dd));
    if (!dd)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    dd->comp = comp;
    dd->conf = conf;
    int rc = dd_settings_init(conf, comp->conf_ctx, &dd->set, err);
    if (rc) {
        free(dd);
        return rc;
    }
    size_t items = conf->queue.enabled ? (size_t)conf->queue.queue_size : 0;
    enum dd_full_policy pol = conf->queue.on_full && strcmp(conf->queue.on_full, "drop_oldest") == 0
                                  ? DD_FULL_DROP_OLDEST
                                  : DD_FULL_REFUSE;
    dd_queue_init(&dd->queue, items, (size_t)conf->queue.max_bytes, pol);
    dd->n_workers = (size_t)conf->queue.num_consumers;
    dd->workers = calloc(dd->n_workers, sizeof(*dd->workers));
    if (!dd->workers) {
        dd_settings_free(&dd->set);
        free(dd);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < dd->n_workers; i++)
        dd->workers[i].dd = dd;
    dd->agent_default_rate = -1;
    dd_register_metrics(dd);
    comp->ctx = dd;
    /* Warnings, not errors: the intake is the judge of keys and sites. */
    char why[400];
    if (dd->set.api_key && !dd_api_key_plausible(dd->set.api_key, why, sizeof(why)))
        sp_log_warn(comp->id, "%s; the intake will answer 403 if it is not valid", why);
    if (!dd->set.agent_mode && dd_site_check(dd->set.site, why, sizeof(why)) == DD_SITE_UNKNOWN)
        sp_log_warn(comp->id, "api.site: %s", why);
    return 0;
}

static void dd_handle_closed(struct dd_exporter *dd)
{
    if (--dd->open_handles == 0 && dd->destroyed) {
        free(dd->workers);
        free(dd);
    }
}

static void dd_on_handle_closed(uv_handle_t *h)
{
    dd_handle_closed(h->data);
}

static void dd_on_worker_timer_closed(uv_handle_t *h)
{
    struct dd_worker *w = h->data;
    dd_handle_closed(w->dd);
}

static int dd_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    struct dd_exporter *dd = comp->ctx;
    dd->loop = host->loop;
    dd->http = sp_http_client_create(host->loop);
    if (!dd->http)
        return sp_err_set(err, SP_ENOMEM, "cannot create the HTTP client");
    for (size_t i = 0; i < dd->n_workers; i++) {
        uv_timer_init(dd->loop, &dd->workers[i].timer);
        dd->workers[i].timer.data = &dd->workers[i];
        dd->open_handles++;
    }
    uv_timer_init(dd->loop, &dd->deadline);
    dd->deadline.data = dd;
    dd->open_handles++;
    uv_idle_init(dd->loop, &dd->idle);
    dd->idle.data = dd;
    dd->open_handles++;
    dd->started = true;
    if (dd->set.agent_mode)
        sp_log_info(comp->id, "sending through the Datadog Agent: traces to %s, profiles to %s",
                    dd->set.traces_url, dd->set.profiles_url);
    else
        sp_log_info(comp->id, "sending to Datadog site %s (API key %s): traces to %s, profiles "
                              "to %s", dd->set.site, dd->set.key_hint ? dd->set.key_hint : "",
                    dd->set.traces_url, dd->set.profiles_url);
    return 0;
}

static size_t dd_batch_count(const struct sp_batch *b)
{
    if (b->signal != SP_SIGNAL_TRACES)
        return 1;
    if (b->u.traces.span_count)
        return b->u.traces.span_count;
    return b->u.traces.req ? sp_traces_count_spans(b->u.traces.req) : 0;
}

static int dd_consume(struct sp_component *comp, struct sp_batch *batch)
{
    struct dd_exporter *dd = comp->ctx;
    if (!dd->started || dd->abandoning || dd->finished)
        return SP_ESHUTDOWN;
    if (batch->signal != SP_SIGNAL_TRACES && batch->signal != SP_SIGNAL_PROFILES)
        return SP_EUNSUPPORTED;
    struct dd_item it = {
        .batch = sp_batch_ref(batch),
        .bytes = sp_batch_bytes(batch),
        .count = dd_batch_count(batch),
    };
    if (it.count == 0) {
        sp_batch_unref(it.batch);
        return SP_OK;
    }
    int rc;
    if (dd->queue.max_items == 0) {
        rc = dd_workers_offer(dd, &it) ? SP_OK : SP_EFULL;
    } else {
        rc = dd_queue_push(&dd->queue, &it, dd_item_drop_cb, dd);
        if (rc == 0) {
            sp_batch_set_mem_class(batch, SP_MEM_EXPORT);
            dd_exporter_queue_changed(dd);
            dd_workers_kick(dd);
        }
    }
    if (rc != 0) {
        sp_metric_add(dd->m[batch->signal].refused, (double)it.count);
        if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
            sp_log_warn(comp->id,
                        "sending queue full (%zu batches, %zu bytes, %zu requests in flight): "
                        "refusing new %s until Datadog catches up",
                        dd->queue.len, dd->queue.bytes, sp_http_client_in_flight(dd->http),
                        dd_noun(batch->signal));
        sp_batch_unref(it.batch);
        return rc == SP_ENOMEM ? SP_ENOMEM : SP_EFULL;
    }
    return SP_OK;
}

/* Asked by receivers before they read a request (sp_component_ready): would
 * dd_consume refuse a batch of about `bytes` now? Reads the queue, changes
 * nothing. */
static int dd_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes)
{
    struct dd_exporter *dd = comp->ctx;
    (void)sig;
    if (!dd->started || dd->abandoning || dd->finished)
        return SP_ESHUTDOWN;
    if (dd->queue.max_items == 0)
        return dd_workers_idle(dd) ? SP_OK : SP_EFULL;
    if (dd->queue.policy != DD_FULL_REFUSE)
        return SP_OK;
    /* `bytes` is the request as received; decoded it takes several times
     * that. The batches already queued say how much: expect one more like
     * them, or the receiver decodes a request only to see it refused. */
    size_t expect = dd->queue.len ? dd->queue.bytes / dd->queue.len : 0;
    if (expect < bytes)
        expect = bytes;
    if (dd->queue.len >= dd->queue.max_items ||
        (dd->queue.len && dd->queue.bytes + expect > dd->queue.max_bytes))
        return SP_EFULL;
    return SP_OK;
}

static void dd_finish(struct dd_exporter *dd)
{
    if (dd->finished)
        return;
    dd->finished = true;
    if (dd->started)
        uv_timer_stop(&dd->deadline);
    /* Idle keep-alive connections must not keep the loop running. */
    if (dd->http) {
        sp_http_client_destroy(dd->http);
        dd->http = NULL;
    }
    if (dd->done) {
        sp_done_fn done = dd->done;
        dd->done = NULL;
        done(dd->comp);
    }
}

void dd_exporter_maybe_finish(struct dd_exporter *dd)
{
    if (!dd->stopping || dd->finished || dd->queue.len || !dd_workers_idle(dd))
        return;
    sp_log_info(dd->comp->id, "sending queue drained: everything was delivered or accounted for");
    dd_finish(dd);
}

static void dd_on_deadline(uv_timer_t *t)
{
    struct dd_exporter *dd = t->data;
    size_t spans = 0, profiles = 0, in_flight_spans, in_flight_profiles;
    dd_workers_abandon(dd, &spans, &profiles);
    in_flight_spans = spans;
    in_flight_profiles = profiles;
    struct dd_item it;
    while (dd_queue_pop(&dd->queue, &it)) {
        enum sp_signal s = it.batch->signal;
        sp_metric_add(dd->m[s].dropped_shutdown, (double)it.count);
        if (s == SP_SIGNAL_TRACES)
            spans += it.count;
        else
            profiles += it.count;
        sp_batch_unref(it.batch);
    }
    dd_exporter_queue_changed(dd);
    sp_log_warn(dd->comp->id,
                "shutdown deadline reached: %zu spans and %zu profiles were not delivered "
                "(%zu spans and %zu profiles in flight or retrying, the rest queued)",
                spans, profiles, in_flight_spans, in_flight_profiles);
    dd_finish(dd);
}

static void dd_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct dd_exporter *dd = comp->ctx;
    if (dd->finished) {
        done(comp);
        return;
    }
    if (dd->stopping)
        return; /* the first call's done will run */
    dd->stopping = true;
    dd->done = done;
    if (!dd->started) {
        dd_finish(dd);
        return;
    }
    dd_workers_kick(dd);
    if (dd->queue.len == 0 && dd_workers_idle(dd)) {
        dd_finish(dd);
        return;
    }
    uint64_t now = uv_now(dd->loop);
    uint64_t dl = comp->host ? comp->host->shutdown_deadline_ms : 0;
    uint64_t wait = dl > now ? dl - now : (dl ? 0 : 10000);
    size_t busy = 0;
    for (size_t i = 0; i < dd->n_workers; i++)
        busy += dd->workers[i].busy;
    sp_log_info(comp->id, "draining %zu queued batches and %zu being sent (up to %llu ms)",
                dd->queue.len, busy, (unsigned long long)wait);
    uv_timer_start(&dd->deadline, dd_on_deadline, wait, 0);
}

static void dd_destroy(struct sp_component *comp)
{
    struct dd_exporter *dd = comp->ctx;
    if (!dd)
        return;
    comp->ctx = NULL;
    dd->abandoning = true;
    dd->idle_active = false; /* uv_close stops it */
    if (dd->http) {
        sp_http_client_destroy(dd->http); /* cancels; our done callbacks ignore it */
        dd->http = NULL;
    }
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        for (size_t k = w->cur; k < w->n_reqs; k++)
            dd_req_free(&w->reqs[k]);
        free(w->reqs);
        w->reqs = NULL;
        if (w->has_pending) {
            sp_batch_unref(w->pending.batch);
            w->pending.batch = NULL;
            w->has_pending = false;
        }
    }
    struct dd_item it;
    while (dd_queue_pop(&dd->queue, &it))
        sp_batch_unref(it.batch);
    dd_queue_free(&dd->queue);
    dd_settings_free(&dd->set);
    dd->destroyed = true;
    if (dd->started) {
        /* Timers live inside dd: free it from the last close callback. */
        for (size_t i = 0; i < dd->n_workers; i++)
            uv_close((uv_handle_t *)&dd->workers[i].timer, dd_on_worker_timer_closed);
        uv_close((uv_handle_t *)&dd->deadline, dd_on_handle_closed);
        uv_close((uv_handle_t *)&dd->idle, dd_on_handle_closed);
    } else {
        free(dd->workers);
        free(dd);
    }
}

const struct sp_component_type sp_datadog_exporter_type = {
    .name = "datadog",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .flags = 0,
    .doc = "sends traces and endpoint-labelled profiles to Datadog (agentless intake or an Agent)",
    .conf_keys = dd_keys,
    .conf_key_count = SP_CONF_END_COUNT(dd_keys),
    .conf_size = sizeof(struct dd_conf),
    .create = dd_create,
    .start = dd_start,
    .consume = dd_consume,
    .ready = dd_ready,
    .shutdown = dd_shutdown,
    .destroy = dd_destroy,
};
