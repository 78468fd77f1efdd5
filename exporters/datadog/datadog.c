/* datadog exporter: traces and endpoint-labelled profiles to Datadog.
 *
 * Two modes. Agentless (the default): traces go to the trace intake
 * (POST https://trace.agent.<site>/api/v0.2/traces, gzip (or zstd) AgentPayload
 * protobuf) and profiles to the profile intake
 * (POST https://intake.profile.<site>/api/v2/profile, multipart), both with
 * the API key. Agent mode (agent.endpoint set): the same data through a
 * Datadog Agent, traces as /v0.4/traces msgpack and profiles to
 * /profiling/v1/input, no key needed (docs/datadog.md §1, §2, §5).
 *
 * This file is the component: config table, lifecycle, metrics, and the
 * data path's glue. consume() maps a traces batch into the open payloads
 * (datadog_traces.c) or builds a profile's request, and returns; sealed
 * requests wait in the bounded queues (datadog_queue.c) for the workers
 * (datadog_send.c). Shutdown seals what is open, drains until the service's
 * deadline, then writes what is left to sending_queue.storage (when set,
 * datadog_store.c) or counts it as dropped, and logs one summary line. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_agent_payload.h"
#include "dd_site.h"
#include "sp_log.h"
#include "sp_memory.h"

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
     "5s", NULL, 0, 0, 0, "first backoff (grows x1.5 per retry, +-50% jitter, never below "
     "this nor above max_interval; a Retry-After longer than the backoff is waited)"},
    {"max_interval", SP_CONF_DURATION, offsetof(struct dd_retry_conf, max_interval_ms), "30s",
     NULL, 0, 0, 0, "largest backoff between two attempts"},
    {"max_elapsed_time", SP_CONF_DURATION, offsetof(struct dd_retry_conf, max_elapsed_ms),
     "300s", NULL, 0, 0, 0, "give a request up after this long (0 = retry until shutdown)"},
};

static const struct sp_conf_key dd_queue_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct dd_queue_conf, enabled), "true", NULL, 0, 0, 0,
     "queue sealed payloads; when false a payload is dropped (counted) unless a consumer is "
     "idle"},
    {"queue_size", SP_CONF_INT, offsetof(struct dd_queue_conf, queue_size), "1000", NULL, 0, 0, 0,
     "sealed payloads (trace payloads of up to flush_interval or 3.2 MB, profile uploads) "
     "waiting to be sent; a quarter is kept for profiles"},
    {"max_bytes", SP_CONF_SIZE, offsetof(struct dd_queue_conf, max_bytes), "64MiB", NULL, 0, 0, 0,
     "memory the waiting payloads (compressed, as sent) may hold; a quarter is kept for "
     "profiles"},
    {"num_consumers", SP_CONF_INT, offsetof(struct dd_queue_conf, num_consumers), "10", NULL, 0, 0,
     0, "requests in flight at once"},
    {"on_full", SP_CONF_STRING, offsetof(struct dd_queue_conf, on_full), "refuse", NULL, 0, 0, 0,
     "refuse: new data is refused (receivers answer 429/UNAVAILABLE, clients retry); "
     "drop_oldest: the oldest queued payloads are dropped to make room"},
    {"storage", SP_CONF_STRING, offsetof(struct dd_queue_conf, storage), NULL, NULL, 0, 0, 0,
     "directory where every sealed payload is kept as a file until Datadog answers it; the "
     "next start sends what is left first (unset: undelivered payloads are dropped and "
     "counted at shutdown)"},
    {"max_disk_bytes", SP_CONF_SIZE, offsetof(struct dd_queue_conf, max_disk_bytes), "1GiB",
     NULL, 0, 0, 0, "bytes the files in storage may take"},
};

static const struct sp_conf_key dd_stats_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct dd_stats_conf, enabled), "true", NULL, 0, 0, 0,
     "compute APM stats (trace metrics: requests, errors, latency of the service and resource "
     "pages) and send them to /api/v0.2/stats; agentless only (an Agent computes its own)"},
    {"max_keys", SP_CONF_INT, offsetof(struct dd_stats_conf, max_keys), "10000", NULL, 0, 0, 0,
     "aggregation keys (service, resource, status, ... per 10 s bucket) held at once; spans of "
     "further keys are left out of the stats, counted"},
    {"flush_delay", SP_CONF_DURATION, offsetof(struct dd_stats_conf, flush_delay_ms), "10s", NULL,
     0, 0, 0, "wait after a 10 s bucket ends before sending it, for late spans (the Agent's "
     "10 s); later spans count in the oldest bucket not sent"},
    {"peer_tags", SP_CONF_BOOL, offsetof(struct dd_stats_conf, peer_tags), "true", NULL, 0, 0, 0,
     "aggregate client/producer/consumer spans by peer tags (peer.service, db.system, ...)"},
    {"by_span_kind", SP_CONF_BOOL, offsetof(struct dd_stats_conf, by_span_kind), "true", NULL, 0,
     0, 0, "count server/client/producer/consumer spans even when not top-level (the Agent's "
     "compute_stats_by_span_kind)"},
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
    {"flush_interval", SP_CONF_DURATION, offsetof(struct dd_conf, flush_interval_ms), "1s", NULL,
     0, 0, 0, "spans are batched into one payload per destination for this long (or up to "
     "3.2 MB) before it is compressed and queued; a hard kill loses at most this much"},
    {"compression", SP_CONF_STRING, offsetof(struct dd_conf, compression), "gzip", NULL, 0, 0, 0,
     "agentless trace payloads: gzip (level 1, what the OTel Collector's Datadog exporter sends) "
     "or zstd (level 1, what the Datadog Agent's trace writer sends: ~30 % less CPU a span and "
     "~5x fewer bytes); APM stats are always gzip, agent mode sends v0.4 msgpack uncompressed"},
    {"retry_on_failure", SP_CONF_BLOCK, offsetof(struct dd_conf, retry), NULL, dd_retry_keys,
     SP_CONF_END_COUNT(dd_retry_keys), 0, 0, "retries with exponential backoff"},
    {"sending_queue", SP_CONF_BLOCK, offsetof(struct dd_conf, queue), NULL, dd_queue_keys,
     SP_CONF_END_COUNT(dd_queue_keys), 0, 0, "bounded queue in front of the senders"},
    {"stats", SP_CONF_BLOCK, offsetof(struct dd_conf, stats), NULL, dd_stats_keys,
     SP_CONF_END_COUNT(dd_stats_keys), 0, 0, "APM stats computed from the spans (agentless)"},
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

static const char *dd_noun(enum sp_signal s)
{
    return s == SP_SIGNAL_TRACES ? "spans" : "profiles";
}

void dd_count_drop(struct dd_exporter *dd, enum sp_signal s, struct sp_metric *m, size_t n)
{
    sp_metric_add(m, (double)n);
    uint64_t sec = dd->loop ? uv_now(dd->loop) / 1000 : 0;
    struct dd_drop_window *w = &dd->drops[s];
    size_t i = sec % DD_DROP_WINDOW_S;
    if (w->sec[i] != sec) {
        w->sec[i] = sec;
        w->n[i] = 0;
    }
    w->n[i] += n;
}

static uint64_t dd_recent_drops(const struct dd_exporter *dd, enum sp_signal s)
{
    uint64_t now = dd->loop ? uv_now(dd->loop) / 1000 : 0, n = 0;
    for (size_t i = 0; i < DD_DROP_WINDOW_S; i++)
        if (dd->drops[s].sec[i] + DD_DROP_WINDOW_S > now)
            n += dd->drops[s].n[i];
    return n;
}

/* The one place the exporter's payload bytes are accounted to the process's
 * memory ceiling (sp_memory.h, class "export"): the sealed payloads queued
 * (compressed), the open ones (packed, not compressed yet) and what consume
 * reserved ahead for the open payloads' growth (dd_reserve_growth). Growth
 * is reserved before it happens, so the charge only goes up here by what
 * nothing reserved ahead (a new payload's frame, a few hundred bytes); that
 * is reserved too. Requests a worker holds are not counted: at
 * most num_consumers of them. */
static void dd_charge_queue_bytes(struct dd_exporter *dd)
{
    uint64_t now = (uint64_t)dd->queue[SP_SIGNAL_TRACES].bytes +
                   dd->queue[SP_SIGNAL_PROFILES].bytes + dd->open_bytes + dd->reserve_ahead;
    if (dd->destroyed)
        now = 0;
    if (now > dd->queued_bytes_charged) {
        /* Past the ceiling these few bytes stay uncharged (refusal counted
         * in spanprof_memory_refused_total) until a later call finds room:
         * the hard mark is never passed by the accounting. */
        if (sp_memory_reserve(SP_MEM_EXPORT, (size_t)(now - dd->queued_bytes_charged)) != SP_OK)
            return;
    } else if (now < dd->queued_bytes_charged) {
        sp_memory_release(SP_MEM_EXPORT, (size_t)(dd->queued_bytes_charged - now));
    }
    dd->queued_bytes_charged = now;
}

/* Reserves n bytes of open-payload growth before it happens: SP_EFULL past
 * the ceiling's hard mark (the caller refuses or counts a drop). */
static int dd_reserve_growth(struct dd_exporter *dd, size_t n)
{
    if (sp_memory_reserve(SP_MEM_EXPORT, n) != SP_OK)
        return SP_EFULL;
    dd->reserve_ahead += n;
    dd->queued_bytes_charged += n;
    return SP_OK;
}

/* The open payloads grew by n: what was reserved ahead now is open bytes. */
static void dd_open_grew(struct dd_exporter *dd, size_t n)
{
    dd->open_bytes += n;
    dd->reserve_ahead -= n < dd->reserve_ahead ? n : dd->reserve_ahead;
}

/* Encode scratch (pack buffer, compressor output) is reserved while it is
 * live, released by dd_scratch_release. */
static int dd_scratch_reserve(size_t n)
{
    return sp_memory_reserve(SP_MEM_EXPORT, n);
}

static void dd_scratch_release(size_t n)
{
    sp_memory_release(SP_MEM_EXPORT, n);
}

void dd_exporter_state_changed(struct dd_exporter *dd)
{
    const struct dd_queue *qt = &dd->queue[SP_SIGNAL_TRACES], *qp = &dd->queue[SP_SIGNAL_PROFILES];
    dd_charge_queue_bytes(dd);
    size_t in_flight = 0, in_backoff = 0, worker_spans = 0, open_spans = 0;
    dd_workers_busy(dd, &in_flight, &in_backoff, &worker_spans);
    for (size_t i = 0; i < dd->n_open; i++)
        open_spans += dd->open[i].spans;
    sp_metric_set(dd->queue_size, (double)(qt->len + qp->len));
    sp_metric_set(dd->queue_bytes, (double)(qt->bytes + qp->bytes));
    sp_metric_set(dd->in_flight, (double)in_flight);
    sp_metric_set(dd->in_backoff, (double)in_backoff);
    sp_metric_set(dd->open_spans, (double)open_spans);
    sp_metric_set(dd->pending_spans, (double)(open_spans + qt->count + worker_spans));
    sp_metric_set(dd->store_backlog, dd->has_store ? (double)dd_store_backlog(&dd->store) : 0);
}

void dd_req_done(struct dd_exporter *dd, struct dd_req *r)
{
    if (dd->has_store)
        dd_store_remove(&dd->store, r);
    dd_req_free(r);
}

static void dd_store_bad(void *ud, const char *name, const char *why)
{
    struct dd_exporter *dd = ud;
    sp_metric_inc(dd->store_bad);
    sp_log_error(dd->comp->id,
                 "sending_queue.storage: %s/%s cannot be sent (%s): moved aside as %s.bad",
                 dd->store.dir, name, why, name);
}

struct dd_req *dd_next_req(struct dd_exporter *dd)
{
    if (dd->has_store && dd_store_backlog(&dd->store)) {
        struct dd_req *r = dd_store_next(&dd->store, dd_store_bad, dd);
        if (r) {
            sp_metric_add(dd->m[r->signal].restored, (double)r->count);
            return r;
        }
    }
    struct dd_req *st = dd_stats_take(dd); /* small, and due: before the queues */
    if (st)
        return st;
    struct dd_item it;
    if (dd_queue_pop(&dd->queue[SP_SIGNAL_PROFILES], &it) ||
        dd_queue_pop(&dd->queue[SP_SIGNAL_TRACES], &it))
        return it.req;
    return NULL;
}

/* Profiles keep a quarter of the queue's bounds for themselves, so a span
 * flood cannot starve them; each signal may use whatever the other leaves. */
static void dd_queue_limits(struct dd_exporter *dd)
{
    struct dd_queue *qt = &dd->queue[SP_SIGNAL_TRACES], *qp = &dd->queue[SP_SIGNAL_PROFILES];
    if (dd->max_items == 0) {
        qt->max_items = qp->max_items = 0;
        return;
    }
    size_t ri = dd->max_items / 4, rb = dd->max_bytes / 4;
    size_t pi = qp->len > ri ? qp->len : ri, pb = qp->bytes > rb ? qp->bytes : rb;
    qt->max_items = dd->max_items > pi ? dd->max_items - pi : 0;
    qt->max_bytes = dd->max_bytes > pb ? dd->max_bytes - pb : 0;
    qp->max_items = dd->max_items > qt->len ? dd->max_items - qt->len : 0;
    qp->max_bytes = dd->max_bytes > qt->bytes ? dd->max_bytes - qt->bytes : 0;
}

static void dd_item_drop_cb(void *ud, struct dd_item *it)
{
    struct dd_exporter *dd = ud;
    enum sp_signal s = it->req->signal;
    dd_count_drop(dd, s, dd->m[s].dropped_overflow, it->count);
    if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
        sp_log_warn(dd->comp->id,
                    "sending queue full (limits: %zu payloads, %zu bytes): dropped the oldest "
                    "payload (%zu %s); Datadog is slower than the input (see "
                    "spanprof_exporter_dropped_%s_total)",
                    dd->max_items, dd->max_bytes, it->count, dd_noun(s), dd_noun(s));
    dd_req_done(dd, it->req);
    it->req = NULL;
}

/* A sealed request into its queue (or straight to a worker without one);
 * what does not fit is a counted drop. */
static void dd_enqueue(struct dd_exporter *dd, struct dd_req *r)
{
    enum sp_signal s = r->signal;
    int rc;
    if (dd->has_store) {
        /* Written as it is sealed, removed once answered: a hard kill loses
         * only what was still open. Without room on disk it stays in memory
         * (and is written at shutdown if room came back). */
        struct sp_err err = {0};
        if (dd_store_write(&dd->store, r, &err) != 0) {
            sp_metric_inc(dd->store_errors);
            if (dd_ratelog_ok(dd, &dd->store_log, 10000))
                sp_log_warn(dd->comp->id, "a sealed payload of %zu %s is kept in memory only: %s",
                            r->count, dd_noun(s), err.msg);
        }
    }
    if (dd->max_items == 0) {
        rc = dd_workers_offer(dd, r) ? 0 : SP_EFULL;
    } else {
        dd_queue_limits(dd);
        struct dd_item it = {.req = r, .bytes = r->body.len, .count = r->count};
        rc = dd_queue_push(&dd->queue[s], &it, dd_item_drop_cb, dd);
    }
    if (rc) {
        dd_count_drop(dd, s, dd->m[s].dropped_overflow, r->count);
        if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
            sp_log_warn(dd->comp->id,
                        "sending queue full (limits: %zu payloads, %zu bytes): dropped a sealed "
                        "payload of %zu %s (see spanprof_exporter_dropped_%s_total)",
                        dd->max_items, dd->max_bytes, r->count, dd_noun(s), dd_noun(s));
        dd_req_done(dd, r);
    }
    dd_workers_kick(dd);
    dd_exporter_state_changed(dd);
}

/* Frees the settings and gives back what create() charged for them. */
static void dd_settings_release(struct dd_exporter *dd)
{
    if (dd->set.compressor)
        sp_memory_release(SP_MEM_EXPORT, dd->set.compressor->mem);
    dd_settings_free(&dd->set);
}

/* ---- open trace payloads ---- */

static void dd_seal(struct dd_exporter *dd, size_t i)
{
    struct dd_open *o = &dd->open[i];
    struct sp_err err = {0};
    struct dd_req *r = NULL;
    size_t spans = o->spans;
    /* The compressor's output (bounded by the raw size) is live next to the
     * raw bytes until the seal ends. Sealing cannot be refused (its spans
     * are accepted): past the ceiling it runs uncharged, counted in
     * spanprof_memory_refused_total{class="export"}. */
    size_t scratch = o->raw.len + o->tail.len;
    bool charged = dd_scratch_reserve(scratch) == SP_OK;
    dd->open_bytes -= o->raw.len;
    struct sp_buf keep = {0};
    int rc = dd_open_seal(&dd->set, o, &r, dd->spare_raw.data ? NULL : &keep, &err);
    if (charged)
        dd_scratch_release(scratch);
    /* Kept only within the intake's limit and when its memory is granted. */
    if (keep.data && (keep.cap > 2 * DD_MAX_TRACE_PAYLOAD || dd_scratch_reserve(keep.cap)))
        sp_buf_free(&keep);
    if (keep.data)
        dd->spare_raw = keep;
    dd->open[i] = dd->open[--dd->n_open];
    memset(&dd->open[dd->n_open], 0, sizeof(dd->open[dd->n_open]));
    if (rc) {
        dd_count_drop(dd, SP_SIGNAL_TRACES, dd->m[SP_SIGNAL_TRACES].dropped_invalid, spans);
        if (dd_ratelog_ok(dd, &dd->fail_log, 10000))
            sp_log_error(dd->comp->id, "cannot seal a payload of %zu spans: %s", spans, err.msg);
        return;
    }
    dd_enqueue(dd, r);
}

static void dd_seal_all(struct dd_exporter *dd)
{
    while (dd->n_open)
        dd_seal(dd, dd->n_open - 1);
}

static void dd_on_flush(uv_timer_t *t);

static void dd_flush_arm(struct dd_exporter *dd)
{
    if (!dd->n_open || uv_is_active((uv_handle_t *)&dd->flush))
        return;
    uint64_t oldest = dd->open[0].opened_ms;
    for (size_t i = 1; i < dd->n_open; i++)
        if (dd->open[i].opened_ms < oldest)
            oldest = dd->open[i].opened_ms;
    uint64_t due = oldest + (uint64_t)dd->conf->flush_interval_ms, now = uv_now(dd->loop);
    uv_timer_start(&dd->flush, dd_on_flush, due > now ? due - now : 0, 0);
}

static void dd_on_flush(uv_timer_t *t)
{
    struct dd_exporter *dd = t->data;
    uint64_t now = uv_now(dd->loop);
    for (size_t i = dd->n_open; i-- > 0;)
        if (dd->open[i].opened_ms + (uint64_t)dd->conf->flush_interval_ms <= now)
            dd_seal(dd, i);
    dd_flush_arm(dd);
}

/* Every mapped span passes here once, with its chunk and tracer payload,
 * before it is packed: the one place for per-span consumers of the mapped
 * Datadog span (APM stats' concentrator hooks in here). */
static void dd_span_mapped(struct dd_exporter *dd, const Datadog__Trace__TracerPayload *tp,
                           const Datadog__Trace__TraceChunk *chunk,
                           const Datadog__Trace__Span *span)
{
    (void)dd;
    (void)tp;
    (void)chunk;
    (void)span;
}

static size_t dd_tp_spans(struct dd_exporter *dd, const Datadog__Trace__TracerPayload *tp)
{
    size_t n = 0;
    for (size_t c = 0; c < tp->n_chunks; c++) {
        const Datadog__Trace__TraceChunk *ch = tp->chunks[c];
        for (size_t k = 0; k < ch->n_spans; k++)
            dd_span_mapped(dd, tp, ch, ch->spans[k]);
        n += ch->n_spans;
    }
    return n;
}

/* The open payload for key (made when there is none; the oldest is sealed
 * when DD_MAX_OPEN destinations are open). */
static struct dd_open *dd_open_for(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *p,
                                   const Datadog__Trace__TracerPayload *tp,
                                   const struct sp_buf *key, struct sp_err *err)
{
    for (size_t i = 0; i < dd->n_open; i++)
        if (dd->open[i].key_len == key->len && memcmp(dd->open[i].key, key->data, key->len) == 0)
            return &dd->open[i];
    if (dd->n_open == DD_MAX_OPEN) {
        size_t oldest = 0;
        for (size_t i = 1; i < dd->n_open; i++)
            if (dd->open[i].opened_ms < dd->open[oldest].opened_ms)
                oldest = i;
        dd_seal(dd, oldest);
    }
    struct dd_open *o = &dd->open[dd->n_open];
    memset(o, 0, sizeof(*o));
    if (dd->spare_raw.data) {
        dd_scratch_release(dd->spare_raw.cap);
        o->raw = dd->spare_raw;
        memset(&dd->spare_raw, 0, sizeof(dd->spare_raw));
    }
    if (dd_open_init(&dd->set, o, p, tp, key, uv_now(dd->loop), err))
        return NULL;
    dd->n_open++;
    dd_open_grew(dd, o->raw.len);
    return o;
}

/* Appends one tracer payload to its open payload, sealing first when it
 * would pass the intake's limit. packed: bytes holds tp's record already
 * (agentless, from dd_consume_packed); else tp is encoded into bytes. */
static int dd_append_tp(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *p,
                        const Datadog__Trace__TracerPayload *tp, struct sp_buf *key,
                        struct sp_buf *bytes, bool packed, struct sp_err *err)
{
    size_t spans = dd_tp_spans(dd, tp), traces = tp->n_chunks;
    key->len = 0;
    if (dd_trace_dest_key(&dd->set, p, tp, key))
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    struct dd_open *o = dd_open_for(dd, p, tp, key, err);
    if (!o)
        return err->code ? err->code : SP_ENOMEM;
    if (!packed) {
        bytes->len = 0;
        int rc = dd_open_encode(&dd->set, o, p, tp, bytes, &traces, err);
        if (rc)
            return rc;
        /* Its growth and a frame for a payload it may open, reserved first. */
        if (dd_reserve_growth(dd, bytes->len + sp_dd_agent_payload_frame_size(p)))
            return sp_err_set(err, SP_EFULL, "memory ceiling reached");
    }
    if (o->spans && dd_open_size_with(o, bytes->len) > DD_MAX_TRACE_PAYLOAD) {
        dd_seal(dd, (size_t)(o - dd->open));
        o = dd_open_for(dd, p, tp, key, err);
        if (!o)
            return err->code ? err->code : SP_ENOMEM;
    }
    size_t before = o->raw.len;
    if (dd_open_append(o, tp, bytes, spans, traces))
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    dd_open_grew(dd, o->raw.len - before);
    if (dd_open_size_with(o, 0) >= DD_MAX_TRACE_PAYLOAD)
        dd_seal(dd, (size_t)(o - dd->open));
    return 0;
}

/* Agentless: packs every tracer payload of the mapped payload once; when
 * the records and the frame fit the intake's limit (sp_dd_split_payload
 * would return the payload whole), appends them and sets *done, which
 * spares the splitter's size pass over every span (~2.6k instructions a
 * span, callgrind). Otherwise leaves *done false: the caller splits. */
static int dd_consume_packed(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *p,
                             struct sp_arena *arena, struct sp_buf *key, size_t *appended,
                             bool *done, struct sp_err *err)
{
    *done = false;
    size_t n = p->n_tracerpayloads;
    /* Each record stays where the packer wrote it (no copy into a buffer
     * of ours): the one copy is into the open payload. */
    struct sp_dd_packed *rec = sp_arena_calloc(arena, n ? n : 1, sizeof *rec);
    if (!rec)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    int rc = 0;
    size_t total = 0, scratch = 0;
    for (size_t t = 0; rc == 0 && t < n; t++) {
        rc = sp_dd_pack_tracer_payload(p->tracerpayloads[t], &rec[t], err);
        total += rec[t].len;
        scratch += rec[t].cap;
    }
    size_t frame = sp_dd_agent_payload_frame_size(p);
    if (rc || frame + total > DD_MAX_TRACE_PAYLOAD)
        goto out;
    /* The pack buffers are live until the end, and the open payloads grow
     * by their bytes plus a frame per payload they may open: both reserved
     * before anything is appended, so a full ceiling refuses the whole
     * batch. */
    if (dd_scratch_reserve(scratch) != SP_OK) {
        rc = sp_err_set(err, SP_EFULL, "memory ceiling reached");
        goto out;
    }
    if (dd_reserve_growth(dd, total + frame * n) != SP_OK) {
        dd_scratch_release(scratch);
        rc = sp_err_set(err, SP_EFULL, "memory ceiling reached");
        goto out;
    }
    *done = true;
    for (size_t t = 0; rc == 0 && t < n; t++) {
        const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[t];
        size_t spans = 0;
        for (size_t c = 0; c < tp->n_chunks; c++)
            spans += tp->chunks[c]->n_spans;
        if (!spans)
            continue;
        struct sp_buf one = {.data = (uint8_t *)rec[t].data, .len = rec[t].len};
        rc = dd_append_tp(dd, p, tp, key, &one, true, err);
        if (rc == 0)
            *appended += spans;
    }
    dd_scratch_release(scratch);
out:
    for (size_t t = 0; t < n; t++)
        sp_dd_packed_free(&rec[t]);
    return rc;
}

/* Maps, packs and appends a batch of spans to the open payloads. The
 * mapping arena and the pack buffer are charged to the ceiling while live,
 * the open payloads' growth is reserved before it happens: when the ceiling
 * refuses before any span is appended, the batch is refused whole (SP_EFULL:
 * the receiver answers 429/UNAVAILABLE and nothing is counted as accepted);
 * a refusal after some were appended is a counted drop of the rest. */
static int dd_consume_traces(struct dd_exporter *dd, struct sp_batch *batch, size_t count)
{
    struct sp_err err = {0};
    struct sp_arena *arena = sp_arena_create(0);
    if (!arena)
        return SP_ENOMEM;
    sp_arena_set_mem_class(arena, SP_MEM_EXPORT);
    struct sp_dd_map_opts mo;
    dd_map_opts(&dd->set, &mo);
    mo.borrow_batch = true; /* packed below, the batch released after */
    Datadog__Trace__AgentPayload *payload = NULL, **parts = NULL;
    size_t n_parts = 0, rejected = 0;
    int rc = sp_dd_map_traces(&batch->u.traces, &mo, arena, &payload, &rejected, &err);
    bool mapped = rc == 0;
    struct sp_buf key = {0}, bytes = {0};
    size_t appended = 0;
    bool done = false;
    if (rc == 0 && !dd->set.agent_mode)
        rc = dd_consume_packed(dd, payload, arena, &key, &appended, &done, &err);
    if (rc == 0 && !done)
        rc = sp_dd_split_payload(payload, DD_MAX_TRACE_PAYLOAD, arena, &parts, &n_parts, &err);
    for (size_t i = 0; rc == 0 && i < n_parts; i++) {
        for (size_t t = 0; rc == 0 && t < parts[i]->n_tracerpayloads; t++) {
            const Datadog__Trace__TracerPayload *tp = parts[i]->tracerpayloads[t];
            size_t n = 0;
            for (size_t c = 0; c < tp->n_chunks; c++)
                n += tp->chunks[c]->n_spans;
            if (!n)
                continue;
            rc = dd_append_tp(dd, parts[i], tp, &key, &bytes, false, &err);
            if (rc == 0)
                appended += n;
        }
    }
    bool ceiling = rc == SP_EFULL || (rc && sp_arena_ceiling_hit(arena));
    sp_buf_free(&key);
    sp_buf_free(&bytes);
    if (ceiling && appended == 0) {
        sp_arena_destroy(arena);
        dd->reserve_ahead = 0;
        dd_exporter_state_changed(dd); /* gives back what was reserved */
        sp_metric_add(dd->m[SP_SIGNAL_TRACES].refused, (double)count);
        if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
            sp_log_warn(dd->comp->id,
                        "memory ceiling reached (service.memory_limit): refusing %zu spans "
                        "until the queue drains",
                        count);
        return SP_EFULL;
    }
    if (mapped)
        dd_stats_feed(dd, payload); /* agentless APM stats (no-op otherwise) */
    sp_arena_destroy(arena);
    sp_metric_add(dd->m[SP_SIGNAL_TRACES].accepted, (double)count);
    if (rejected)
        dd_count_drop(dd, SP_SIGNAL_TRACES, dd->m[SP_SIGNAL_TRACES].dropped_invalid, rejected);
    if (rc) {
        size_t lost = count > rejected + appended ? count - rejected - appended : 0;
        dd_count_drop(dd, SP_SIGNAL_TRACES,
                      ceiling ? dd->m[SP_SIGNAL_TRACES].dropped_overflow
                              : dd->m[SP_SIGNAL_TRACES].dropped_invalid,
                      lost);
        if (dd_ratelog_ok(dd, &dd->fail_log, 10000))
            sp_log_error(dd->comp->id, "cannot encode %zu spans for Datadog: %s", lost, err.msg);
    }
    dd->reserve_ahead = 0; /* what was not used is given back below */
    dd_flush_arm(dd);
    dd_exporter_state_changed(dd);
    return SP_OK;
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
        m->accepted = sp_counter(tr ? "spanprof_exporter_accepted_spans_total"
                                    : "spanprof_exporter_accepted_profiles_total",
                                 "Data the exporter took in (accepted + restored = sent + failed "
                                 "+ dropped + stored + pending)",
                                 base);
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
        m->stored = sp_counter(tr ? "spanprof_exporter_stored_spans_total"
                                  : "spanprof_exporter_stored_profiles_total",
                               "Data left in sending_queue.storage at shutdown, for the next "
                               "start",
                               base);
        m->restored = sp_counter(tr ? "spanprof_exporter_restored_spans_total"
                                    : "spanprof_exporter_restored_profiles_total",
                                 "Data read back from sending_queue.storage (a previous run's)",
                                 base);
        const char *dname = tr ? "spanprof_exporter_dropped_spans_total"
                               : "spanprof_exporter_dropped_profiles_total";
        const char *dhelp = "Data dropped by the exporter, by reason";
        struct {
            const char *reason;
            struct sp_metric **m;
        } drops[] = {
            {"queue_overflow", &m->dropped_overflow},
            {"shutdown", &m->dropped_shutdown},
            {"invalid", &m->dropped_invalid},
            {"storage", &m->dropped_storage},
        };
        for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
            snprintf(l, sizeof(l), "%s,reason=\"%s\"", base, drops[i].reason);
            *drops[i].m = sp_counter(dname, dhelp, l);
        }
        snprintf(l, sizeof(l), "%s,signal=\"%s\"", base, sp_signal_name(s));
        m->bytes = sp_counter("spanprof_exporter_payload_bytes_total",
                              "Bytes of request bodies Datadog accepted", l);
        m->retries = sp_counter("spanprof_exporter_retries_total",
                                "Requests retried after a transient failure", l);
    }
    /* The exporter's gauges and its storage counters, one line each. */
    const struct {
        struct sp_metric **m;
        bool counter;
        const char *name, *help;
    } one[] = {
        {&dd->queue_size, false, "spanprof_exporter_queue_size",
         "Sealed payloads waiting for a sender (not counting those being sent or waiting in "
         "backoff)"},
        {&dd->queue_bytes, false, "spanprof_exporter_queue_bytes",
         "Bytes of the sealed payloads waiting for a sender"},
        {&dd->queue_capacity, false, "spanprof_exporter_queue_capacity",
         "sending_queue.queue_size"},
        {&dd->queue_capacity_bytes, false, "spanprof_exporter_queue_capacity_bytes",
         "sending_queue.max_bytes"},
        {&dd->in_flight, false, "spanprof_exporter_requests_in_flight",
         "Requests sent to Datadog and not answered yet"},
        {&dd->in_backoff, false, "spanprof_exporter_requests_in_backoff",
         "Requests waiting to be retried"},
        {&dd->open_spans, false, "spanprof_exporter_open_spans",
         "Spans in open payloads (not sealed yet)"},
        {&dd->pending_spans, false, "spanprof_exporter_pending_spans",
         "Spans taken in and not accounted for yet: open, queued, being sent or in backoff"},
        {&dd->store_backlog, false, "spanprof_exporter_storage_backlog",
         "Files a previous run left in sending_queue.storage, not read yet"},
        {&dd->store_errors, true, "spanprof_exporter_storage_write_errors_total",
         "Sealed payloads that could not be written to sending_queue.storage (kept in memory "
         "only)"},
        {&dd->store_bad, true, "spanprof_exporter_storage_bad_files_total",
         "Files in sending_queue.storage that could not be read back (moved aside as .bad)"},
    };
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
        *one[i].m = one[i].counter ? sp_counter(one[i].name, one[i].help, base)
                                   : sp_gauge(one[i].name, one[i].help, base);
    sp_metric_set(dd->queue_capacity, (double)dd->max_items);
    sp_metric_set(dd->queue_capacity_bytes, (double)dd->max_bytes);
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
    /* The compressor's context is allocated once, sized for the largest
     * payload: charged for the exporter's life (memory ceiling, "export"). */
    if (dd->set.compressor)
        sp_memory_charge(SP_MEM_EXPORT, dd->set.compressor->mem);
    dd->max_items = conf->queue.enabled ? (size_t)conf->queue.queue_size : 0;
    dd->max_bytes = (size_t)conf->queue.max_bytes;
    enum dd_full_policy pol = conf->queue.on_full && strcmp(conf->queue.on_full, "drop_oldest") == 0
                                  ? DD_FULL_DROP_OLDEST
                                  : DD_FULL_REFUSE;
    for (int s = 0; s < SP_SIGNAL_COUNT; s++)
        dd_queue_init(&dd->queue[s], dd->max_items, dd->max_bytes, pol);
    dd_queue_limits(dd);
    dd->n_workers = (size_t)conf->queue.num_consumers;
    dd->workers = calloc(dd->n_workers, sizeof(*dd->workers));
    if (!dd->workers) {
        dd_settings_release(dd);
        free(dd);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < dd->n_workers; i++)
        dd->workers[i].dd = dd;
    dd->agent_default_rate = -1;
    dd_register_metrics(dd);
    int src = dd_stats_create(dd, err);
    if (src) {
        free(dd->workers);
        dd_settings_release(dd);
        free(dd);
        return src;
    }
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
    if (dd->conf->queue.storage && *dd->conf->queue.storage) {
        int rc = dd_store_open(&dd->store, dd->conf->queue.storage,
                               dd->conf->queue.max_disk_bytes ? dd->conf->queue.max_disk_bytes
                                                              : UINT64_MAX,
                               dd->set.agent_mode, err);
        if (rc)
            return rc;
        dd->has_store = true;
        if (dd_store_backlog(&dd->store))
            sp_log_info(comp->id,
                        "sending_queue.storage: %zu payloads left by a previous run in %s are "
                        "sent first",
                        dd_store_backlog(&dd->store), dd->store.dir);
    }
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
    uv_timer_init(dd->loop, &dd->flush);
    dd->flush.data = dd;
    dd->open_handles++;
    dd->started = true;
    dd_stats_start(dd);
    if (dd->set.agent_mode)
        sp_log_info(comp->id, "sending through the Datadog Agent: traces to %s, profiles to %s",
                    dd->set.traces_url, dd->set.profiles_url);
    else
        sp_log_info(comp->id, "sending to Datadog site %s (API key %s): traces to %s, profiles "
                              "to %s", dd->set.site, dd->set.key_hint ? dd->set.key_hint : "",
                    dd->set.traces_url, dd->set.profiles_url);
    dd_workers_kick(dd);
    dd_exporter_state_changed(dd);
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

/* Whether a new batch of this signal is taken: its queue has room (with the
 * open payloads counted for traces), or a sender is idle without a queue. */
static bool dd_has_room(struct dd_exporter *dd, enum sp_signal s)
{
    if (dd->max_items == 0) {
        for (size_t i = 0; i < dd->n_workers; i++)
            if (!dd->workers[i].req)
                return true;
        return false;
    }
    if (dd->queue[s].policy == DD_FULL_DROP_OLDEST)
        return true;
    dd_queue_limits(dd);
    const struct dd_queue *q = &dd->queue[s];
    size_t open = s == SP_SIGNAL_TRACES ? dd->n_open : 0;
    /* Open payloads compress ~5-10x; count a tenth of their raw bytes. */
    size_t open_bytes = s == SP_SIGNAL_TRACES ? dd->open_bytes / 10 : 0;
    return q->len + open < q->max_items && (q->len == 0 || q->bytes + open_bytes < q->max_bytes);
}

static int dd_consume(struct sp_component *comp, struct sp_batch *batch)
{
    struct dd_exporter *dd = comp->ctx;
    if (!dd->started || dd->abandoning || dd->finished)
        return SP_ESHUTDOWN;
    if (batch->signal != SP_SIGNAL_TRACES && batch->signal != SP_SIGNAL_PROFILES)
        return SP_EUNSUPPORTED;
    size_t count = dd_batch_count(batch);
    if (count == 0)
        return SP_OK;
    if (!dd_has_room(dd, batch->signal)) {
        size_t in_flight = 0, in_backoff = 0;
        size_t busy = dd_workers_busy(dd, &in_flight, &in_backoff, NULL);
        const struct dd_queue *q = &dd->queue[batch->signal];
        sp_metric_add(dd->m[batch->signal].refused, (double)count);
        if (dd_ratelog_ok(dd, &dd->overflow_log, 10000))
            sp_log_warn(comp->id,
                        "sending queue full for %s (%zu payloads, %zu bytes queued; %zu of %zu "
                        "senders busy: %zu requests in flight, %zu waiting to retry): refusing "
                        "new %s until Datadog catches up",
                        dd_noun(batch->signal), q->len, q->bytes, busy, dd->n_workers, in_flight,
                        in_backoff, dd_noun(batch->signal));
        return SP_EFULL;
    }
    if (batch->signal == SP_SIGNAL_TRACES)
        return dd_consume_traces(dd, batch, count);

    struct sp_err err = {0};
    struct dd_req *r = NULL;
    if (dd_profile_req(&dd->set, &batch->u.profile, &r, &err)) {
        sp_metric_add(dd->m[SP_SIGNAL_PROFILES].accepted, 1);
        dd_count_drop(dd, SP_SIGNAL_PROFILES, dd->m[SP_SIGNAL_PROFILES].dropped_invalid, 1);
        if (dd_ratelog_ok(dd, &dd->fail_log, 10000))
            sp_log_error(comp->id, "cannot encode a profile for Datadog: %s", err.msg);
        return SP_OK;
    }
    /* Its sealed body is reserved before it is queued (dd_charge_queue_bytes
     * then finds it charged). */
    if (sp_memory_reserve(SP_MEM_EXPORT, r->body.len) != SP_OK) {
        dd_req_free(r);
        sp_metric_add(dd->m[SP_SIGNAL_PROFILES].refused, 1);
        return SP_EFULL;
    }
    dd->queued_bytes_charged += r->body.len;
    sp_metric_add(dd->m[SP_SIGNAL_PROFILES].accepted, 1);
    dd_enqueue(dd, r);
    return SP_OK;
}

/* Asked by receivers before they read a request (sp_component_ready): would
 * dd_consume refuse a batch of this signal now? The same room test, so a
 * full queue is answered from the request's headers, never after decoding
 * it. */
static int dd_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes)
{
    (void)bytes;
    struct dd_exporter *dd = comp->ctx;
    if (!dd->started || dd->abandoning || dd->finished)
        return SP_ESHUTDOWN;
    if (sig != SP_SIGNAL_TRACES && sig != SP_SIGNAL_PROFILES)
        return SP_OK;
    return dd_has_room(dd, sig) ? SP_OK : SP_EFULL;
}

static void dd_finish(struct dd_exporter *dd)
{
    if (dd->finished)
        return;
    dd->finished = true;
    if (dd->started) {
        uv_timer_stop(&dd->deadline);
        uv_timer_stop(&dd->flush);
    }
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
    if (!dd->stopping || dd->finished || dd->n_open || dd->queue[SP_SIGNAL_TRACES].len ||
        dd->queue[SP_SIGNAL_PROFILES].len || dd_stats_pending(dd) || !dd_workers_idle(dd))
        return;
    if (!dd->abandoning && dd->has_store && dd_store_backlog(&dd->store))
        return;
    if (dd->abandoning)
        dd_finish(dd); /* the deadline's summary line said it all */
    else {
        sp_log_info(dd->comp->id,
                    "sending queue drained: everything was delivered or accounted for; "
                    "dropped in the last %d s: %llu spans, %llu profiles",
                    DD_DROP_WINDOW_S, (unsigned long long)dd_recent_drops(dd, SP_SIGNAL_TRACES),
                    (unsigned long long)dd_recent_drops(dd, SP_SIGNAL_PROFILES));
        dd_finish(dd);
    }
}

void dd_req_left(struct dd_exporter *dd, struct dd_req *r, bool in_flight)
{
    enum sp_signal s = r->signal;
    if (r->stats) {
        /* never stored: a file restores as a traces request */
        dd_stats_done(dd, r, false, "not sent before the shutdown deadline");
        dd_req_done(dd, r);
        return;
    }
    dd->left.n[s] += r->count;
    if (in_flight)
        dd->left.unanswered[s] += r->count;
    if (dd->has_store) {
        struct sp_err err = {0};
        if (dd_store_write(&dd->store, r, &err) == 0) {
            sp_metric_add(dd->m[s].stored, (double)r->count);
            dd->left.stored[s] += r->count;
            /* the file stays for the next start: only the memory goes */
            free(r->file);
            r->file = NULL;
            dd_req_free(r);
            return;
        }
        dd_count_drop(dd, s, dd->m[s].dropped_storage, r->count);
        if (dd_ratelog_ok(dd, &dd->store_log, 10000))
            sp_log_error(dd->comp->id, "%zu %s dropped at shutdown: %s", r->count,
                         dd_noun(s), err.msg);
        dd_req_done(dd, r);
        return;
    }
    dd_count_drop(dd, s, dd->m[s].dropped_shutdown, r->count);
    dd_req_done(dd, r);
}

static void dd_summary(struct dd_exporter *dd)
{
    struct dd_left *l = &dd->left;
    const int T = SP_SIGNAL_TRACES, P = SP_SIGNAL_PROFILES;
    char where[160] = "";
    if (dd->has_store)
        snprintf(where, sizeof(where), "; %zu spans and %zu profiles written to %s for the next "
                 "start", l->stored[T], l->stored[P], dd->store.dir);
    sp_log_warn(dd->comp->id,
                "shutdown deadline reached: %zu spans and %zu profiles were not delivered "
                "(%zu spans and %zu profiles were in flight with no answer from Datadog)%s; "
                "dropped in the last %d s: %llu spans, %llu profiles",
                l->n[T], l->n[P], l->unanswered[T], l->unanswered[P], where, DD_DROP_WINDOW_S,
                (unsigned long long)dd_recent_drops(dd, SP_SIGNAL_TRACES),
                (unsigned long long)dd_recent_drops(dd, SP_SIGNAL_PROFILES));
}

/* Second step of the deadline: calls still in flight are cancelled. */
static void dd_on_final_deadline(uv_timer_t *t)
{
    struct dd_exporter *dd = t->data;
    dd_workers_abandon(dd, true);
    dd_summary(dd);
    dd_finish(dd);
}

/* First step, a little before the service's deadline: nothing new is sent,
 * what waits is stored or counted; calls in flight may still be answered
 * (an answer counts as what it is) until the deadline itself. */
static void dd_on_deadline(uv_timer_t *t)
{
    struct dd_exporter *dd = t->data;
    memset(&dd->left, 0, sizeof(dd->left));
    dd_seal_all(dd);
    dd_workers_abandon(dd, false);
    dd_stats_abandon(dd);
    for (int s = 0; s < SP_SIGNAL_COUNT; s++) {
        struct dd_item it;
        while (dd_queue_pop(&dd->queue[s], &it))
            dd_req_left(dd, it.req, false);
    }
    dd_exporter_state_changed(dd);
    size_t in_flight = 0;
    dd_workers_busy(dd, &in_flight, NULL, NULL);
    uint64_t now = uv_now(dd->loop);
    uint64_t dl = dd->comp->host ? dd->comp->host->shutdown_deadline_ms : 0;
    if (in_flight && dl > now) {
        uv_timer_start(&dd->deadline, dd_on_final_deadline, dl - now, 0);
        return;
    }
    dd_on_final_deadline(t);
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
    dd_seal_all(dd);
    dd_stats_final_flush(dd); /* every span was mapped in consume: all buckets go */
    dd_workers_kick(dd);
    size_t in_flight = 0, in_backoff = 0;
    size_t busy = dd_workers_busy(dd, &in_flight, &in_backoff, NULL);
    size_t queued = dd->queue[SP_SIGNAL_TRACES].len + dd->queue[SP_SIGNAL_PROFILES].len;
    if (queued == 0 && busy == 0 && !dd_stats_pending(dd) &&
        !(dd->has_store && dd_store_backlog(&dd->store))) {
        dd_finish(dd);
        return;
    }
    uint64_t now = uv_now(dd->loop);
    uint64_t dl = comp->host ? comp->host->shutdown_deadline_ms : 0;
    uint64_t wait = dl > now ? dl - now : (dl ? 0 : 10000);
    /* Keep the last quarter (at most 300 ms) for calls in flight to be
     * answered after nothing new is sent. */
    uint64_t grace = wait / 4 < 300 ? wait / 4 : 300;
    sp_log_info(comp->id,
                "draining %zu queued payloads and %zu being sent (%zu in flight, %zu waiting to "
                "retry) (up to %llu ms)",
                queued, busy, in_flight, in_backoff, (unsigned long long)wait);
    uv_timer_start(&dd->deadline, dd_on_deadline, wait - grace, 0);
}

static void dd_destroy(struct sp_component *comp)
{
    struct dd_exporter *dd = comp->ctx;
    if (!dd)
        return;
    comp->ctx = NULL;
    dd->abandoning = true;
    for (size_t i = 0; i < dd->n_workers; i++)
        dd->workers[i].call = NULL; /* the client's cancellations are ignored */
    if (dd->http) {
        sp_http_client_destroy(dd->http);
        dd->http = NULL;
    }
    for (size_t i = 0; i < dd->n_workers; i++) {
        dd_req_free(dd->workers[i].req);
        dd->workers[i].req = NULL;
    }
    for (size_t i = 0; i < dd->n_open; i++)
        dd_open_free(&dd->open[i]);
    dd->n_open = 0;
    if (dd->spare_raw.data) {
        dd_scratch_release(dd->spare_raw.cap);
        sp_buf_free(&dd->spare_raw);
    }
    for (int s = 0; s < SP_SIGNAL_COUNT; s++) {
        struct dd_item it;
        while (dd_queue_pop(&dd->queue[s], &it))
            dd_req_free(it.req);
        dd_queue_free(&dd->queue[s]);
    }
    if (dd->has_store)
        dd_store_close(&dd->store);
    dd_stats_destroy(dd);
    dd_settings_release(dd);
    dd->destroyed = true;
    dd_charge_queue_bytes(dd); /* gives it all back */
    if (dd->started) {
        /* Timers live inside dd: free it from the last close callback. */
        for (size_t i = 0; i < dd->n_workers; i++)
            uv_close((uv_handle_t *)&dd->workers[i].timer, dd_on_worker_timer_closed);
        uv_close((uv_handle_t *)&dd->deadline, dd_on_handle_closed);
        uv_close((uv_handle_t *)&dd->flush, dd_on_handle_closed);
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
