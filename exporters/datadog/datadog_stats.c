/* datadog exporter: APM stats in agentless mode.
 *
 * Why: Datadog's service and resource pages (requests, errors, latency)
 * read the stats the Agent computes before shipping traces; agentless,
 * nobody computes them unless we do. Every span consume() maps goes
 * through model/dd_stats.h's concentrator (the Agent's rules); a 1 s timer
 * asks it for the buckets that are due (a bucket goes once its end is
 * stats.flush_delay old) and turns each StatsPayload into a request:
 *   POST <traces.endpoint>/api/v0.2/stats, msgpack, gzip, DD-API-KEY
 * (datadog-agent pkg/trace/writer/stats.go: pathStats, SendPayload).
 * The requests wait in a short FIFO here; dd_next_req() hands them to the
 * same workers before the queued payloads (they are small and due), with
 * the same retries. They are never written to sending_queue.storage (a
 * stored file is restored as a traces request). At shutdown every bucket
 * goes at once (the Agent's Flush(force)), drained with the rest.
 *
 * In agent mode this file does nothing: the Agent computes stats from the
 * /v0.4/traces it receives. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datadog_int.h"
#include "dd_stats.h"
#include "sp_log.h"
#include "sp_memory.h"
#include "sp_version.h"

/* Stats requests waiting for a worker. A flush normally makes one; more
 * wait only while Datadog is unreachable: past this, the oldest goes. */
#define DD_STATS_MAX_WAITING 16

struct dd_stats {
    struct sp_dd_stats *conc;
    uv_timer_t timer;
    bool timer_open;
    bool final_done;
    bool overflow_logged;
    struct dd_req *waiting[DD_STATS_MAX_WAITING];
    size_t head, len;
    struct sp_metric *sent, *failed, *dropped, *overflow, *spans, *keys, *bucket_keys, *bytes;
    struct dd_ratelog fail_log;
    uint64_t charged;   /* concentrator bytes charged to the memory ceiling */
};

static int64_t dd_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The oldest waiting request (the caller owns it), NULL when none. */
static struct dd_req *dd_stats_pop(struct dd_stats *st)
{
    if (st->len == 0)
        return NULL;
    struct dd_req *r = st->waiting[st->head];
    st->head = (st->head + 1) % DD_STATS_MAX_WAITING;
    st->len--;
    sp_memory_release(SP_MEM_EXPORT, r->body.len);
    return r;
}

/* Frees every waiting request; counted as dropped when count. */
static void dd_stats_drop_waiting(struct dd_stats *st, bool count)
{
    struct dd_req *r;
    while ((r = dd_stats_pop(st)) != NULL) {
        dd_req_free(r);
        if (count)
            sp_metric_inc(st->dropped);
    }
}

int dd_stats_create(struct dd_exporter *dd, struct sp_err *err)
{
    const struct dd_stats_conf *sc = &dd->conf->stats;
    if (dd->set.agent_mode || !sc->enabled)
        return 0;
    if (sc->max_keys < 1)
        return sp_conf_errorf(dd->comp->conf_ctx, err, "stats.max_keys",
                              "must be at least 1 (got %lld)", (long long)sc->max_keys);
    if (sc->flush_delay_ms < 0 || sc->flush_delay_ms > 600000)
        return sp_conf_errorf(dd->comp->conf_ctx, err, "stats.flush_delay",
                              "must be between 0s and 10m (got %lld ms)",
                              (long long)sc->flush_delay_ms);
    struct dd_stats *st = calloc(1, sizeof(*st));
    if (!st)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    struct sp_dd_stats_conf cc = {
        .max_keys = (size_t)sc->max_keys,
        .flush_delay_ns = sc->flush_delay_ms ? sc->flush_delay_ms * 1000000LL : 1, /* 0: at once */
        .by_span_kind = sc->by_span_kind,
        .peer_tags = sc->peer_tags,
        .agent_hostname = dd->conf->hostname,
        .agent_env = dd->conf->env,
        .agent_version = "spanprof-" SP_VERSION,
    };
    st->conc = sp_dd_stats_create(&cc, dd_wall_ns());
    if (!st->conc) {
        free(st);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    const char *l = dd->comp->metric_labels;
    st->sent = sp_counter("spanprof_exporter_stats_payloads_sent_total",
                          "APM stats payloads Datadog accepted (agentless)", l);
    st->failed = sp_counter("spanprof_exporter_stats_payloads_failed_total",
                            "APM stats payloads Datadog refused or that ran out of retries", l);
    st->dropped = sp_counter("spanprof_exporter_stats_payloads_dropped_total",
                             "APM stats payloads dropped unsent (too many waiting, or the "
                             "shutdown deadline)", l);
    st->overflow = sp_counter("spanprof_exporter_stats_overflow_spans_total",
                              "Spans left out of APM stats because stats.max_keys keys were live",
                              l);
    st->spans = sp_counter("spanprof_exporter_stats_spans_total",
                           "Spans counted in APM stats (top-level, measured or of a stats span "
                           "kind)", l);
    st->keys = sp_gauge("spanprof_exporter_stats_keys",
                        "APM stats aggregation keys live over the open buckets", l);
    st->bucket_keys = sp_gauge("spanprof_exporter_stats_bucket_keys",
                               "APM stats aggregation keys of the last bucket sent", l);
    st->bytes = sp_gauge("spanprof_exporter_stats_bytes",
                         "Heap held by the APM stats concentrator (keys and sketches)", l);
    dd->stats = st;
    return 0;
}

static void dd_stats_gauges(struct dd_stats *st)
{
    struct sp_dd_stats_counts k;
    sp_dd_stats_get_counts(st->conc, &k);
    /* charged, not reserved: stats.max_keys is what bounds it */
    if (k.bytes > st->charged)
        sp_memory_charge(SP_MEM_EXPORT, k.bytes - st->charged);
    else if (k.bytes < st->charged)
        sp_memory_release(SP_MEM_EXPORT, st->charged - k.bytes);
    st->charged = k.bytes;
    sp_metric_set(st->keys, (double)k.keys_live);
    sp_metric_set(st->bucket_keys, (double)k.last_bucket_keys);
    sp_metric_set(st->bytes, (double)k.bytes);
}

/* Flushes what is due (everything with force) into waiting requests. */
static void dd_stats_flush(struct dd_exporter *dd, bool force)
{
    struct dd_stats *st = dd->stats;
    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    if (sp_dd_stats_flush(st->conc, dd_wall_ns(), force, &p, &n, &err)) {
        sp_metric_inc(st->dropped);
        if (dd_ratelog_ok(dd, &st->fail_log, 10000))
            sp_log_error(dd->comp->id, "cannot encode APM stats: %s", err.msg);
    }
    for (size_t i = 0; i < n; i++) {
        /* signal traces: the send path adds the API key as for traces;
         * the URL comes from dd_url_for (r->stats) */
        struct dd_req *r = dd_req_new(SP_SIGNAL_TRACES, "POST");
        int rc = r ? 0 : SP_ENOMEM;
        if (r) {
            r->stats = true;
            /* gzip only: the Agent's stats writer hard-codes it
             * (datadog-agent pkg/trace/writer/stats.go, SendPayload and
             * encodePayload, gzip.BestSpeed), unlike its trace writer. */
            r->encoding = SP_COMPRESSION_GZIP;
            r->body = p[i].body;
            memset(&p[i].body, 0, sizeof(p[i].body));
            /* writer/stats.go SendPayload's headers */
            rc |= dd_req_add_header(r, "Content-Type: application/msgpack");
            rc |= dd_req_add_header(r, "Content-Encoding: gzip");
            rc |= dd_req_add_header(r, "User-Agent: Datadog Trace Agent/spanprof-%s/",
                                    SP_VERSION);
        }
        if (rc) {
            dd_req_free(r);
            sp_metric_inc(st->dropped);
            continue;
        }
        if (st->len == DD_STATS_MAX_WAITING) {
            struct dd_req *old = dd_stats_pop(st);
            dd_req_free(old);
            sp_metric_inc(st->dropped);
            if (dd_ratelog_ok(dd, &st->fail_log, 10000))
                sp_log_warn(dd->comp->id, "%d APM stats payloads waiting: dropped the oldest "
                                          "(see spanprof_exporter_stats_payloads_dropped_total)",
                            DD_STATS_MAX_WAITING);
        }
        st->waiting[(st->head + st->len) % DD_STATS_MAX_WAITING] = r;
        st->len++;
        sp_memory_charge(SP_MEM_EXPORT, r->body.len); /* while it waits */
    }
    sp_dd_stats_payloads_free(p, n);
    dd_stats_gauges(st);
    if (st->len)
        dd_workers_kick(dd);
}

static void dd_stats_on_timer(uv_timer_t *t)
{
    struct dd_exporter *dd = t->data;
    if (dd->stats && !dd->stopping)
        dd_stats_flush(dd, false);
}

void dd_stats_start(struct dd_exporter *dd)
{
    struct dd_stats *st = dd->stats;
    if (!st)
        return;
    uv_timer_init(dd->loop, &st->timer);
    st->timer.data = dd;
    st->timer_open = true;
    uv_timer_start(&st->timer, dd_stats_on_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&st->timer); /* never what keeps the loop running */
    sp_log_info(dd->comp->id, "APM stats computed here (agentless): sent to %s every 10 s "
                              "bucket, %lld ms after it ends",
                dd->set.stats_url, (long long)dd->conf->stats.flush_delay_ms);
}

static const char *dd_chunk_version(const Datadog__Trace__TraceChunk *ch)
{
    const char *any = NULL;
    for (size_t s = 0; s < ch->n_spans; s++) {
        const Datadog__Trace__Span *sp = ch->spans[s];
        for (size_t i = 0; i < sp->n_meta; i++) {
            const char *k = sp->meta[i]->key;
            if (k[0] != 'v' || strcmp(k, "version") != 0) /* no call for most keys */
                continue;
            if (sp->parentid == 0)
                return sp->meta[i]->value; /* the root's */
            if (!any)
                any = sp->meta[i]->value;
        }
    }
    return any;
}

void dd_stats_feed(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *p)
{
    struct dd_stats *st = dd->stats;
    if (!st || st->final_done)
        return;
    uint64_t counted = 0, overflow = 0;
    for (size_t t = 0; t < p->n_tracerpayloads; t++) {
        const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[t];
        struct sp_dd_stats_pkey pk = {
            .env = tp->env,
            .hostname = tp->hostname,
            .container_id = tp->containerid,
        };
        for (size_t c = 0; c < tp->n_chunks; c++) {
            const Datadog__Trace__TraceChunk *ch = tp->chunks[c];
            /* the Agent's ProcessedTrace.AppVersion: the payload's, else
             * the chunk's spans' `version` (traceutil.GetAppVersion) */
            pk.version = tp->appversion && *tp->appversion ? tp->appversion
                                                            : dd_chunk_version(ch);
            for (size_t s = 0; s < ch->n_spans; s++) {
                int rc = sp_dd_stats_add(st->conc, &pk, ch->origin, ch->spans[s]);
                counted += rc == 1;
                overflow += rc == SP_EFULL || rc == SP_ENOMEM;
            }
        }
    }
    sp_metric_add(st->spans, (double)counted);
    if (overflow) {
        sp_metric_add(st->overflow, (double)overflow);
        if (!st->overflow_logged) {
            st->overflow_logged = true;
            sp_log_warn(dd->comp->id,
                        "APM stats: %lld aggregation keys live (stats.max_keys): spans of new "
                        "keys are left out of the stats until the next buckets are sent (see "
                        "spanprof_exporter_stats_overflow_spans_total; logged once)",
                        (long long)dd->conf->stats.max_keys);
        }
    }
    dd_stats_gauges(st);
}

struct dd_req *dd_stats_take(struct dd_exporter *dd)
{
    return dd->stats ? dd_stats_pop(dd->stats) : NULL;
}

size_t dd_stats_pending(const struct dd_exporter *dd)
{
    return dd->stats ? dd->stats->len : 0;
}

void dd_stats_final_flush(struct dd_exporter *dd)
{
    struct dd_stats *st = dd->stats;
    if (!st || st->final_done)
        return;
    st->final_done = true;
    if (st->timer_open)
        uv_timer_stop(&st->timer);
    dd_stats_flush(dd, true);
}

void dd_stats_done(struct dd_exporter *dd, const struct dd_req *r, bool sent, const char *why)
{
    struct dd_stats *st = dd->stats;
    if (!st)
        return;
    if (sent) {
        sp_metric_inc(st->sent);
        sp_metric_add(dd->m[SP_SIGNAL_TRACES].bytes, (double)r->body.len);
        return;
    }
    sp_metric_inc(st->failed);
    if (dd_ratelog_ok(dd, &st->fail_log, 10000))
        sp_log_error(dd->comp->id, "APM stats payload not delivered to %s: %s",
                     dd_url_for(dd, r), why ? why : "");
}

void dd_stats_abandon(struct dd_exporter *dd)
{
    struct dd_stats *st = dd->stats;
    if (!st)
        return;
    st->final_done = true;
    if (st->timer_open)
        uv_timer_stop(&st->timer);
    dd_stats_drop_waiting(st, true);
}

static void dd_stats_on_closed(uv_handle_t *h)
{
    free(h->data);
}

void dd_stats_destroy(struct dd_exporter *dd)
{
    struct dd_stats *st = dd->stats;
    if (!st)
        return;
    dd->stats = NULL;
    dd_stats_drop_waiting(st, false);
    sp_dd_stats_destroy(st->conc);
    sp_memory_release(SP_MEM_EXPORT, st->charged);
    st->charged = 0;
    if (st->timer_open) {
        st->timer.data = st; /* the close callback frees st */
        uv_close((uv_handle_t *)&st->timer, dd_stats_on_closed);
    } else {
        free(st);
    }
}
