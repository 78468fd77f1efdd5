/* datadog exporter: the workers that deliver sealed requests.
 *
 * sending_queue.num_consumers workers, each with at most one request: in
 * flight, or waiting in backoff. An idle worker takes the next request at
 * once (dd_next_req: what a previous run left in storage, then profiles,
 * then traces) and sends it; requests are final bytes, so a worker does no
 * encoding. Each request is retried on 408, 429, 5xx and transport errors
 * (timeouts, refused connections) after max(backoff, Retry-After), until
 * retry_on_failure.max_elapsed_time; any other 4xx is final. While the
 * service is stopping, backoffs are shortened so a last attempt happens
 * before the deadline; at the deadline datadog.c collects what is left
 * (dd_workers_abandon). The API key is added to the headers of each call
 * here and nowhere else, so no queued or stored request holds it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "datadog_int.h"
#include "sp_log.h"
#include "sp_status.h"

struct dd_req *dd_req_new(enum sp_signal signal, const char *method)
{
    struct dd_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->signal = signal;
    r->method = method;
    r->headers = calloc(1, sizeof(*r->headers));
    if (!r->headers) {
        free(r);
        return NULL;
    }
    return r;
}

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
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        explicit_bzero(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    free(r->headers);
    sp_buf_free(&r->body);
    free(r->file);
    free(r);
}

const char *dd_url_for(const struct dd_exporter *dd, const struct dd_req *r)
{
    if (r->stats)
        return dd->set.stats_url;
    return r->signal == SP_SIGNAL_TRACES ? dd->set.traces_url : dd->set.profiles_url;
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
static void dd_worker_next(struct dd_worker *w);

/* The worker is done with its request (its outcome is counted). */
static void dd_worker_finish_req(struct dd_worker *w)
{
    struct dd_exporter *dd = w->dd;
    dd_req_done(dd, w->req);
    w->req = NULL;
    w->attempt = 0;
    w->in_backoff = false;
    dd_exporter_state_changed(dd);
    dd_worker_next(w);
}

static void dd_worker_fail(struct dd_worker *w, const char *why)
{
    struct dd_exporter *dd = w->dd;
    struct dd_req *r = w->req;
    if (r->stats) {
        dd_stats_done(dd, r, false, why);
        dd_worker_finish_req(w);
        return;
    }
    dd_count_drop(dd, r->signal, dd->m[r->signal].failed, r->count);
    if (dd_ratelog_ok(dd, &dd->fail_log, 10000)) {
        sp_log_error(dd->comp->id, "%zu %s not delivered to %s: %s", r->count,
                     dd_count_noun(r->signal, r->count), dd_url_for(dd, r), why);
    }
    dd_worker_finish_req(w);
}

static void dd_worker_on_timer(uv_timer_t *t)
{
    struct dd_worker *w = t->data;
    w->in_backoff = false;
    dd_exporter_state_changed(w->dd);
    dd_worker_send(w);
}

static void dd_worker_on_done(void *ud, const struct sp_http_response *resp)
{
    struct dd_worker *w = ud;
    struct dd_exporter *dd = w->dd;
    if (!w->call)
        return; /* cancelled by dd_workers_abandon, which counted it */
    w->call = NULL;
    struct dd_req *r = w->req;
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

    if (v == DD_SENT)
        sp_status_note(dd->comp->id, SP_STATUS_DELIVERED, "%s: HTTP %ld", dd_url_for(dd, r),
                       resp->status);
    else
        sp_status_note(dd->comp->id, SP_STATUS_EXPORT_ERROR, "%s: %s", dd_url_for(dd, r), why);
    if (v == DD_SENT && r->stats) {
        dd_stats_done(dd, r, true, NULL);
        dd_worker_finish_req(w);
        return;
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
        dd_worker_finish_req(w);
        return;
    }
    if (v == DD_PERMANENT) {
        if (resp->status == 403 && !dd->set.agent_mode && !r->stats) {
            dd_count_drop(dd, r->signal, dd->m[r->signal].failed, r->count);
            if (dd_ratelog_ok(dd, &dd->forbidden_log, 60000))
                sp_log_error(dd->comp->id,
                             "Datadog rejected the API key %s for site %s (HTTP 403 from %s): "
                             "check that api.key is a valid API key (not an application key) "
                             "of an organisation on %s; %zu %s dropped",
                             dd->set.key_hint ? dd->set.key_hint : "(none)", dd->set.site,
                             dd_url_for(dd, r), dd->set.site, r->count,
                             dd_count_noun(r->signal, r->count));
            dd_worker_finish_req(w);
            return;
        }
        dd_worker_fail(w, why);
        return;
    }

    /* Transient. */
    if (dd->abandoning) {
        /* Past the drain: no new attempt; storage or a counted drop. */
        w->req = NULL;
        w->attempt = 0;
        dd_req_left(dd, r, false);
        dd_exporter_state_changed(dd);
        dd_exporter_maybe_finish(dd);
        return;
    }
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
        sp_log_warn(dd->comp->id, "%s failed (%s): retrying in %lld ms (attempt %u)",
                    dd_url_for(dd, r), why, (long long)delay, w->attempt + 1);
    else
        sp_log_debug(dd->comp->id, "%s: retry %u in %lld ms (%s)", dd_url_for(dd, r), w->attempt,
                     (long long)delay, why);
    w->in_backoff = true;
    dd_exporter_state_changed(dd);
    uv_timer_start(&w->timer, dd_worker_on_timer, (uint64_t)delay, 0);
}

static void dd_worker_send(struct dd_worker *w)
{
    struct dd_exporter *dd = w->dd;
    struct dd_req *r = w->req;
    if (dd->abandoning) {
        dd_exporter_maybe_finish(dd);
        return;
    }
    if (w->attempt == 0)
        w->first_try_ms = uv_now(dd->loop);
    /* The request's headers plus the API key, for this call only (libcurl
     * copies them). */
    const char *hdrs[64];
    char key[300] = "";
    size_t n = 0;
    for (; n < r->n_headers && n < 62; n++)
        hdrs[n] = r->headers[n];
    if (!dd->set.agent_mode && dd->set.api_key) {
        snprintf(key, sizeof(key), "%s: %s",
                 r->signal == SP_SIGNAL_TRACES ? "DD-Api-Key" : "DD-API-KEY", dd->set.api_key);
        hdrs[n++] = key;
    }
    hdrs[n] = NULL;
    struct sp_http_call_opts o = {
        .method = r->method,
        .url = dd_url_for(dd, r),
        .headers = hdrs,
        .body = r->body.data,
        .body_len = r->body.len,
        .timeout_ms = dd->conf->timeout_ms,
        .max_response = 64 * 1024,
    };
    int rc = sp_http_client_call(dd->http, &o, dd_worker_on_done, w, &w->call);
    explicit_bzero(key, sizeof(key));
    if (rc != 0) {
        w->call = NULL;
        dd_worker_fail(w, "cannot start the HTTP call");
        return;
    }
    dd_exporter_state_changed(dd);
}

static void dd_worker_take(struct dd_worker *w, struct dd_req *r)
{
    w->req = r;
    w->attempt = 0;
    w->in_backoff = false;
    dd_worker_send(w);
}

/* Takes the next request, if any; an idle worker during shutdown may be
 * the last one, so it checks whether the exporter is finished. */
static void dd_worker_next(struct dd_worker *w)
{
    struct dd_exporter *dd = w->dd;
    if (!w->req && !dd->abandoning) {
        struct dd_req *r = dd_next_req(dd);
        if (r) {
            dd_exporter_state_changed(dd);
            dd_worker_take(w, r);
            return;
        }
    }
    if (!w->req && dd->stopping)
        dd_exporter_maybe_finish(dd);
}

void dd_workers_kick(struct dd_exporter *dd)
{
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->req)
            dd_worker_next(w);
        if (!w->req)
            break; /* nothing left to take */
    }
}

bool dd_workers_offer(struct dd_exporter *dd, struct dd_req *r)
{
    if (dd->abandoning)
        return false;
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->req) {
            dd_worker_take(w, r);
            return true;
        }
    }
    return false;
}

bool dd_workers_idle(const struct dd_exporter *dd)
{
    for (size_t i = 0; i < dd->n_workers; i++)
        if (dd->workers[i].req)
            return false;
    return true;
}

size_t dd_workers_busy(const struct dd_exporter *dd, size_t *in_flight, size_t *in_backoff,
                       size_t *spans)
{
    size_t busy = 0;
    for (size_t i = 0; i < dd->n_workers; i++) {
        const struct dd_worker *w = &dd->workers[i];
        if (!w->req)
            continue;
        busy++;
        if (w->call && in_flight)
            (*in_flight)++;
        if (w->in_backoff && in_backoff)
            (*in_backoff)++;
        if (spans && w->req->signal == SP_SIGNAL_TRACES)
            *spans += w->req->count;
    }
    return busy;
}

void dd_workers_abandon(struct dd_exporter *dd, bool cancel_in_flight)
{
    dd->abandoning = true;
    for (size_t i = 0; i < dd->n_workers; i++) {
        struct dd_worker *w = &dd->workers[i];
        if (!w->req || (w->call && !cancel_in_flight))
            continue;
        bool in_flight = w->call != NULL;
        if (w->call) {
            struct sp_http_call *c = w->call;
            w->call = NULL; /* dd_worker_on_done ignores the cancellation */
            sp_http_call_cancel(c);
        }
        uv_timer_stop(&w->timer);
        struct dd_req *r = w->req;
        w->req = NULL;
        w->in_backoff = false;
        w->attempt = 0;
        dd_req_left(dd, r, in_flight);
    }
    dd_exporter_state_changed(dd);
}
