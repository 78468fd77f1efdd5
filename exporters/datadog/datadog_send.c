/* datadog exporter: the workers that deliver queued batches.
 *
 * sending_queue.num_consumers workers, each with at most one HTTP call in
 * flight. An idle worker takes the next batch at once but encodes it from
 * the exporter's idle handle, one batch per loop turn in the order they
 * were taken: consume() runs inside a receiver's request, which should not
 * wait for the mapping and compression, and a burst of batches should not
 * hold the loop for all of them at once. The worker encodes the batch
 * into one or more requests (the batch reference goes as soon as the
 * bodies exist: the bodies are all we need to retry), and sends them in
 * order. Each request is retried on 408, 429, 5xx and transport errors
 * (timeouts, refused connections) with exponential backoff and jitter, or
 * after the server's Retry-After, until retry_on_failure.max_elapsed_time;
 * any other 4xx is final. While the service is stopping, backoffs are
 * shortened so a last attempt happens before the deadline; at the deadline
 * whatever is left is abandoned and counted by datadog.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "datadog_int.h"
#include "sp_log.h"

int dd_req_add_header(struct dd_req *r, const char *fmt, ...)
{
    char **nh = realloc(r->headers, (r->n_headers + 2) * sizeof(*nh));
    if (!nh)
        return SP_ENOMEM;
    r->headers = nh;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&nh[r->n_headers], fmt, ap);
    va_end(ap);
    if (n < 0) {
        nh[r->n_headers] = NULL;
        return SP_ENOMEM;
    }
    r->n_headers++;
    nh[r->n_headers] = NULL;
    return 0;
}

void dd_req_free(struct dd_req *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        /* Headers may hold the API key: do not leave it in freed memory. */
        explicit_bzero(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    free(r->headers);
    sp_buf_free(&r->body);
    memset(r, 0, sizeof(*r));
}

static const char *dd_count_noun(enum sp_signal s, size_t n)
{
    if (s == SP_SIGNAL_TRACES)
        return n == 1 ? "span" : "spans";
    return n == 1 ? "profile" : "profiles";
}

/* A printable, bounded excerpt of a response body for a log line. */
static void dd_body_excerpt(const uint8_t *b, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned char c = b[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : ' ';
    }
    out[o] = '\0';
}

static void dd_worker_send(struct dd_worker *w);
static void dd_worker_next_item(struct dd_worker *w);

static void dd_worker_release(struct dd_worker *w)
{
    for (size_t i = w->cur; i < w->n_reqs; i++)
        dd_req_free(&w->reqs[i]);
    free(w->reqs);
    w->reqs = NULL;
    w->n_reqs = w->cur = 0;
    w->attempt = 0;
    w->busy = false;
    w->in_backoff = false;
}

static void dd_worker_advance(struct dd_worker *w)
{
    dd_req_free(&w->reqs[w->cur]);
    w->cur++;
    w->attempt = 0;
    dd_worker_send(w);
}

static void dd_worker_fail(struct dd_worker *w, const char *why)
{
    struct dd_exporter *dd = w->dd;
    struct dd_req *r = &w->reqs[w->cur];
    sp_metric_add(dd->m[r->signal].failed, (double)r->count);
    if (dd_ratelog_ok(dd, &dd->fail_log, 10000)) {
        sp_log_error(dd->comp->id, "%zu %s not delivered to %s: %s", r->count,
                     dd_count_noun(r->signal, r->count), r->url, why);
    }
    dd_worker_advance(w);
}

static void dd_worker_on_timer(uv_timer_t *t)
{
    struct dd_worker *w = t->data;
    w->in_backoff = false;
    dd_worker_send(w);
}

static void dd_worker_on_done(void *ud, const struct sp_http_response *resp)
{
    struct dd_worker *w = ud;
    struct dd_exporter *dd = w->dd;
    w->call = NULL;
    if (dd->abandoning)
        return; /* counted by dd_workers_abandon */
    struct dd_req *r = &w->reqs[w->cur];
    sp_metric_inc(dd_status_counter(dd, resp->curl_code == CURLE_OK ? resp->status : 0));

    enum dd_verdict v = resp->curl_code == CURLE_OK ? dd_classify(resp->status) : DD_RETRY;
    char why[300];
    if (resp->curl_code != CURLE_OK) {
        snprintf(why, sizeof(why), "transport error: %s", resp->error ? resp->error : "unknown");
    } else {
        char ex[160];
        dd_body_excerpt(resp->body, resp->body_len, ex, sizeof(ex));
        snprintf(why, sizeof(why), "HTTP %ld%s%s", resp->status, ex[0] ? ": " : "", ex);
    }

    if (v == DD_SENT) {
        sp_metric_add(dd->m[r->signal].sent, (double)r->count);
        sp_metric_add(dd->m[r->signal].bytes, (double)r->body.len);
        if (r->rates_reply) {
            double rate = -1;
            size_t n = dd_parse_rate_by_service(resp->body, resp->body_len, &rate);
            if (n && rate >= 0 && rate != dd->agent_default_rate) {
                dd->agent_default_rate = rate;
                sp_log_debug(dd->comp->id, "agent reports %zu service rates, default %.3f", n,
                             rate);
            }
        }
        dd_worker_advance(w);
        return;
    }
    if (v == DD_PERMANENT) {
        if (resp->status == 403 && !dd->set.agent_mode) {
            sp_metric_add(dd->m[r->signal].failed, (double)r->count);
            if (dd_ratelog_ok(dd, &dd->forbidden_log, 60000))
                sp_log_error(dd->comp->id,
                             "Datadog rejected the API key %s for site %s (HTTP 403 from %s): "
                             "check that api.key is a valid API key (not an application key) "
                             "of an organisation on %s; %zu %s dropped",
                             dd->set.key_hint ? dd->set.key_hint : "(none)", dd->set.site, r->url,
                             dd->set.site, r->count, dd_count_noun(r->signal, r->count));
            dd_worker_advance(w);
            return;
        }
        dd_worker_fail(w, why);
        return;
    }

    /* Transient. */
    uint64_t now = uv_now(dd->loop);
    if (!dd->conf->retry.enabled) {
        dd_worker_fail(w, why);
        return;
    }
    w->attempt++;
    int64_t delay = dd_backoff_ms(&dd->conf->retry, w->attempt, (double)rand() / RAND_MAX,
                                  resp->curl_code == CURLE_OK ? resp->retry_after_ms : -1);
    int64_t elapsed = (int64_t)(now - w->first_try_ms);
    if (dd->conf->retry.max_elapsed_ms > 0 && elapsed + delay > dd->conf->retry.max_elapsed_ms) {
        char why2[400];
        snprintf(why2, sizeof(why2), "%s; giving up after %u attempts in %lld ms", why,
                 w->attempt, (long long)elapsed);
        dd_worker_fail(w, why2);
        return;
    }
    if (dd->stopping && dd->comp->host && dd->comp->host->shutdown_deadline_ms) {
        /* Keep a last attempt inside the shutdown deadline. */
        uint64_t dl = dd->comp->host->shutdown_deadline_ms;
        int64_t left = dl > now ? (int64_t)(dl - now) : 0;
        if (delay > left / 2)
            delay = left / 2;
    }
    sp_metric_inc(dd->m[r->signal].retries);
    if (dd_ratelog_ok(dd, &dd->retry_log, 30000))
        sp_log_warn(dd->comp->id, "%s failed (%s): retrying in %lld ms (attempt %u)", r->url, why,
                    (long long)delay, w->attempt + 1);
    else
        sp_log_debug(dd->comp->id, "%s: retry %u in %lld ms (%s)", r->url, w->attempt,
                 (long long)delay, why);
    w->in_backoff = true;
    uv_timer_start(&w->timer, dd_worker_on_timer, (uint64_t)delay, 0);
}

static void dd_worker_send(struct dd_worker *w)
{
    struct dd_exporter *dd = w->dd;
    if (w->cur >= w->n_reqs) {
        dd_worker_release(w);
        dd_worker_next_item(w);
        return;
    }
    struct dd_req *r = &w->reqs[w->cur];
    if (w->attempt == 0)
        w->first_try_ms = uv_now(dd->loop);
    struct sp_http_call_opts o = {
        .method = r->method,
        .url = r->url,
        .headers = (const char *const *)r->headers,
        .body = r->body.data,
        .body_len = r->body.len,
        .timeout_ms = dd->conf->timeout_ms,
        .max_response = 64 * 1024,
    };
    int rc = sp_http_client_call(dd->http, &o, dd_worker_on_done, w, &w->call);
    if (rc != 0) {
        w->call = NULL;
        dd_worker_fail(w, "cannot start the HTTP call");
    }
}

/* Encodes the worker's item and starts sending it (from dd_on_idle). */
static void dd_worker_start(struct dd_worker *w, struct dd_item *it)
{
    struct dd_exporter *dd = w->dd;
    struct sp_err err = {0};
    enum sp_signal sig = it->batch->signal;
    size_t dropped = 0;
    int rc;
    w->busy = true;
    if (sig == SP_SIGNAL_TRACES)
        rc = dd_traces_build(dd, it->batch, &w->reqs, &w->n_reqs, &dropped, &err);
    else
        rc = dd_profiles_build(dd, it->batch, &w->reqs, &w->n_reqs, &err);
    sp_batch_unref(it->batch);
    it->batch = NULL;
    if (dropped)
        sp_metric_add(dd->m[sig].dropped_invalid, (double)dropped);
    if (rc == 0 && w->n_reqs == 0) {
        dd_worker_release(w);
        dd_worker_next_item(w);
        return;
    }
    if (rc != 0) {
        /* Whatever was encoded before the failure is dropped with the rest:
         * a half-sent batch is harder to reason about than a lost one. */
        size_t lost = it->count > dropped ? it->count - dropped : 0;
        sp_metric_add(dd->m[sig].dropped_invalid, (double)lost);
        if (dd_ratelog_ok(dd, &dd->fail_log, 10000))
            sp_log_error(dd->comp->id, "cannot encode %zu %s for Datadog: %s", lost,
                         dd_count_noun(sig, lost), err.msg);
        w->cur = 0;
        dd_worker_release(w);
        dd_worker_next_item(w);
        return;
    }
    w->cur = 0;
    w->attempt = 0;
    dd_worker_send(w);
}

/* One pending item per loop turn, the oldest first. */
static void dd_on_idle(uv_idle_t *h)
{
    struct dd_exporter *dd = h->data;
    struct dd_worker *first = NULL;
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (w->has_pending && (!first || w->pending_seq < first->pending_seq))
            first = w;
    }
    if (first) {
        struct dd_item it = first->pending;
        first->has_pending = false;
        first->pending.batch = NULL;
        dd->n_pending--;
        dd_worker_start(first, &it);
    }
    if (dd->n_pending == 0 && dd->idle_active) {
        uv_idle_stop(&dd->idle);
        dd->idle_active = false;
    }
}

/* The worker takes the item (the queue's reference moves to it); the
 * idle handle encodes it on a later loop turn. */
static void dd_worker_take(struct dd_worker *w, const struct dd_item *it)
{
    struct dd_exporter *dd = w->dd;
    w->busy = true;
    w->has_pending = true;
    w->pending = *it;
    w->pending_seq = ++dd->pending_seq;
    dd->n_pending++;
    if (!dd->idle_active) {
        dd->idle.data = dd;
        uv_idle_start(&dd->idle, dd_on_idle);
        dd->idle_active = true;
    }
}

/* Takes the next queued batch, if any; an idle worker during shutdown may
 * be the last one, so it checks whether the exporter is finished. */
static void dd_worker_next_item(struct dd_worker *w)
{
    struct dd_exporter *dd = w->dd;
    struct dd_item it;
    if (!w->busy && !dd->abandoning && dd_queue_pop(&dd->queue, &it)) {
        dd_exporter_queue_changed(dd);
        dd_worker_take(w, &it);
    }
    if (!w->busy && dd->stopping)
        dd_exporter_maybe_finish(dd);
}

void dd_workers_kick(struct dd_exporter *dd)
{
    for (size_t i = 0; i < dd->n_workers && dd->queue.len > 0; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->busy)
            dd_worker_next_item(w);
    }
}

bool dd_workers_offer(struct dd_exporter *dd, struct dd_item *it)
{
    if (dd->abandoning)
        return false;
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->busy) {
            dd_worker_take(w, it);
            it->batch = NULL;
            return true;
        }
    }
    return false;
}

bool dd_workers_idle(const struct dd_exporter *dd)
{
    for (size_t i = 0; i < dd->n_workers; i++)
        if (dd->workers[i].busy)
            return false;
    return true;
}

void dd_workers_abandon(struct dd_exporter *dd, size_t *spans_left, size_t *profiles_left)
{
    dd->abandoning = true;
    if (dd->idle_active) {
        uv_idle_stop(&dd->idle);
        dd->idle_active = false;
    }
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->busy)
            continue;
        if (w->has_pending) {
            /* Taken but never encoded: counted like what is still queued. */
            enum sp_signal s = w->pending.batch->signal;
            sp_metric_add(dd->m[s].dropped_shutdown, (double)w->pending.count);
            if (s == SP_SIGNAL_TRACES)
                *spans_left += w->pending.count;
            else
                *profiles_left += w->pending.count;
            sp_batch_unref(w->pending.batch);
            w->pending.batch = NULL;
            w->has_pending = false;
            dd->n_pending--;
        }
        if (w->call) {
            sp_http_call_cancel(w->call); /* runs dd_worker_on_done, which ignores it */
            w->call = NULL;
        }
        uv_timer_stop(&w->timer);
        for (size_t k = w->cur; k < w->n_reqs; k++) {
            struct dd_req *r = &w->reqs[k];
            sp_metric_add(dd->m[r->signal].dropped_shutdown, (double)r->count);
            if (r->signal == SP_SIGNAL_TRACES)
                *spans_left += r->count;
            else
                *profiles_left += r->count;
        }
        dd_worker_release(w);
    }
}
