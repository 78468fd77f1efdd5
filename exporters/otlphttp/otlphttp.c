/* otlphttp exporter: forwards OTLP traces, metrics and logs, unchanged, to
 * an OTLP/HTTP endpoint (the node's Datadog Agent OTLP intake, the
 * cluster's OpenTelemetry Collector, any OTLP backend).
 *
 * Why it exists: SDKs send every signal to the one OTEL_EXPORTER_OTLP_ENDPOINT
 * that points at spanprof; spanprof only uses spans, so metrics and logs
 * need a way out, and traces may need a second backend. The keys are the
 * Collector's otlphttp exporter's (endpoint, traces/metrics/logs_endpoint,
 * headers, compression, timeout, retry_on_failure, sending_queue) so a
 * Collector config carries over.
 *
 * What is sent: POST application/x-protobuf of the export request. Metrics
 * and logs are the exact protobuf bytes the client sent (see
 * struct sp_otlp_passthrough; re-encoded only when the client sent JSON);
 * traces are the decoded request packed again (spanprof removed invalid
 * spans from it).
 *
 * Delivery: a bounded FIFO of batch references (sending_queue.queue_size
 * batches and max_bytes), drained by num_consumers senders on the loop's
 * libcurl client. A full queue refuses (the receiver answers 429 /
 * UNAVAILABLE, the SDK retries). 429, 502, 503, 504 and transport errors
 * are retried with exponential backoff (x1.5, +-50% jitter, Retry-After
 * honoured) until retry_on_failure.max_elapsed_time; other answers are
 * permanent failures, counted and logged (rate-limited). On shutdown the
 * queue drains until the service's deadline, then what is left is counted
 * as dropped. The queue is this file's own, small on purpose (the Datadog
 * exporter's is shaped by its two intakes); the backoff is core's
 * sp_backoff_ms, shared with it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sp_backoff.h"
#include "sp_component.h"
#include "sp_compress.h"
#include "sp_conf.h"
#include "sp_http_client.h"
#include "sp_log.h"
#include "sp_metrics.h"

/* The signals it forwards, in metric label and URL order. */
enum oh_sig { OH_TRACES = 0, OH_METRICS, OH_LOGS, OH_SIG_COUNT };
static const enum sp_signal oh_signal[OH_SIG_COUNT] = {SP_SIGNAL_TRACES, SP_SIGNAL_METRICS,
                                                       SP_SIGNAL_LOGS};
static const char *const oh_path[OH_SIG_COUNT] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
static const char *const oh_items[OH_SIG_COUNT] = {"spans", "metric points", "log records"};

/* ---- configuration ---- */

struct oh_retry_conf {
    bool enabled;
    int64_t initial_interval_ms;
    int64_t max_interval_ms;
    int64_t max_elapsed_time_ms;
};

struct oh_queue_conf {
    bool enabled;
    int64_t num_consumers;
    int64_t queue_size;
    uint64_t max_bytes;
};

struct oh_conf {
    char *endpoint;
    char *sig_endpoint[OH_SIG_COUNT]; /* traces_endpoint, metrics_endpoint, logs_endpoint */
    struct sp_strmap headers;
    char *compression;
    int64_t timeout_ms;
    struct oh_retry_conf retry;
    struct oh_queue_conf queue;
};

static const struct sp_conf_key oh_retry_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct oh_retry_conf, enabled), "true", NULL, 0, 0, 0,
     "retry 429, 502, 503, 504 and transport errors"},
    {"initial_interval", SP_CONF_DURATION, offsetof(struct oh_retry_conf, initial_interval_ms),
     "5s", NULL, 0, 0, 0, "first backoff (grows x1.5 per retry, +-50% jitter)"},
    {"max_interval", SP_CONF_DURATION, offsetof(struct oh_retry_conf, max_interval_ms), "30s",
     NULL, 0, 0, 0, "largest backoff between two attempts"},
    {"max_elapsed_time", SP_CONF_DURATION, offsetof(struct oh_retry_conf, max_elapsed_time_ms),
     "300s", NULL, 0, 0, 0, "give a request up after this long (0 = retry until shutdown)"},
};

static const struct sp_conf_key oh_queue_keys[] = {
    {"enabled", SP_CONF_BOOL, offsetof(struct oh_queue_conf, enabled), "true", NULL, 0, 0, 0,
     "queue batches; when false a batch is refused unless a sender is idle"},
    {"num_consumers", SP_CONF_INT, offsetof(struct oh_queue_conf, num_consumers), "10", NULL, 0,
     0, 0, "requests in flight at once"},
    {"queue_size", SP_CONF_INT, offsetof(struct oh_queue_conf, queue_size), "1000", NULL, 0, 0, 0,
     "batches (export requests) waiting to be sent"},
    {"max_bytes", SP_CONF_SIZE, offsetof(struct oh_queue_conf, max_bytes), "64MiB", NULL, 0, 0,
     0, "memory the waiting batches may hold (spanprof extension)"},
};

static const struct sp_conf_key oh_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct oh_conf, endpoint), NULL, NULL, 0, 0, 0,
     "base URL, e.g. http://${env:HOST_IP}:4318; /v1/traces, /v1/metrics and /v1/logs are "
     "appended"},
    {"traces_endpoint", SP_CONF_STRING, offsetof(struct oh_conf, sig_endpoint[OH_TRACES]), NULL,
     NULL, 0, 0, 0, "full URL for traces, used as is (overrides endpoint)"},
    {"metrics_endpoint", SP_CONF_STRING, offsetof(struct oh_conf, sig_endpoint[OH_METRICS]), NULL,
     NULL, 0, 0, 0, "full URL for metrics, used as is (overrides endpoint)"},
    {"logs_endpoint", SP_CONF_STRING, offsetof(struct oh_conf, sig_endpoint[OH_LOGS]), NULL, NULL,
     0, 0, 0, "full URL for logs, used as is (overrides endpoint)"},
    {"headers", SP_CONF_STRMAP, offsetof(struct oh_conf, headers), NULL, NULL, 0, 0,
     SP_CONF_SECRET_VALUES,
     "extra request headers, e.g. {dd-api-key: ${env:DD_API_KEY}}; the values are secrets "
     "(never printed or logged)"},
    {"compression", SP_CONF_STRING, offsetof(struct oh_conf, compression), "gzip", NULL, 0, 0, 0,
     "request body compression: gzip, zstd or none"},
    {"timeout", SP_CONF_DURATION, offsetof(struct oh_conf, timeout_ms), "30s", NULL, 0, 0, 0,
     "timeout of one HTTP request"},
    {"retry_on_failure", SP_CONF_BLOCK, offsetof(struct oh_conf, retry), NULL, oh_retry_keys,
     SP_CONF_END_COUNT(oh_retry_keys), 0, 0, "retries with exponential backoff"},
    {"sending_queue", SP_CONF_BLOCK, offsetof(struct oh_conf, queue), NULL, oh_queue_keys,
     SP_CONF_END_COUNT(oh_queue_keys), 0, 0, "bounded queue in front of the senders"},
};

/* ---- state ---- */

struct oh_item {
    struct oh_item *next;
    struct sp_batch *batch;
    enum oh_sig sig;
    size_t count; /* spans, metric points or log records */
    size_t bytes;
};

struct oh_exporter;

struct oh_worker {
    struct oh_exporter *oh;
    uv_timer_t timer; /* retry backoff */
    struct oh_item *item;  /* NULL when idle */
    struct sp_buf body;    /* the request body, compressed */
    struct sp_http_call *call;
    unsigned attempt;
    uint64_t first_ms;
};

struct oh_sig_metrics {
    struct sp_metric *sent, *failed, *refused, *dropped_shutdown, *retries;
};

struct oh_exporter {
    struct sp_component *comp;
    struct oh_conf *conf;
    uv_loop_t *loop;
    enum sp_compression compression;
    char *url[OH_SIG_COUNT];
    char **headers; /* NULL-terminated "Name: value" lines */
    struct sp_http_client *http;
    struct oh_item *head, *tail;
    size_t qlen, qbytes;
    struct oh_worker *workers;
    size_t n_workers;
    uv_timer_t deadline;
    int open_handles;
    bool started, stopping, finished;
    sp_done_fn done;
    struct oh_sig_metrics m[OH_SIG_COUNT];
    struct sp_metric *queue_size, *queue_bytes;
    uint64_t last_fail_log_ms;
    unsigned fail_suppressed;
};

static enum oh_sig oh_sig_of(enum sp_signal s)
{
    return s == SP_SIGNAL_METRICS ? OH_METRICS : s == SP_SIGNAL_LOGS ? OH_LOGS : OH_TRACES;
}

/* ---- create ---- */

static int oh_check_url(struct sp_component *comp, const char *key, const char *url,
                        struct sp_err *err)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return sp_conf_errorf(comp->conf_ctx, err, key,
                              "'%s' is not an http:// or https:// URL (OTLP/HTTP, usually port "
                              "4318)",
                              url);
    const char *host = strstr(url, "://") + 3;
    if (!*host || *host == ':' || *host == '/')
        return sp_conf_errorf(comp->conf_ctx, err, key,
                              "'%s' has no host (an unset environment variable?)", url);
    return 0;
}

static void oh_register_metrics(struct oh_exporter *oh)
{
    char l[300];
    for (int s = 0; s < OH_SIG_COUNT; s++) {
        struct oh_sig_metrics *m = &oh->m[s];
        const char *name = sp_signal_name(oh_signal[s]);
        snprintf(l, sizeof(l), "%s,signal=\"%s\"", oh->comp->metric_labels, name);
        m->sent = sp_counter("spanprof_exporter_sent_items_total",
                             "Spans, metric points or log records the OTLP endpoint accepted", l);
        m->failed = sp_counter("spanprof_exporter_failed_items_total",
                               "Spans, metric points or log records the OTLP endpoint refused "
                               "or that ran out of retries",
                               l);
        m->refused = sp_counter("spanprof_exporter_refused_items_total",
                                "Spans, metric points or log records refused because the "
                                "sending queue was full (the producer was told to retry)",
                                l);
        m->retries = sp_counter("spanprof_exporter_retries_total",
                                "Requests retried after a transient failure", l);
        snprintf(l, sizeof(l), "%s,signal=\"%s\",reason=\"shutdown\"", oh->comp->metric_labels,
                 name);
        m->dropped_shutdown = sp_counter("spanprof_exporter_dropped_items_total",
                                         "Spans, metric points or log records dropped by the "
                                         "exporter, by reason",
                                         l);
    }
    oh->queue_size = sp_gauge("spanprof_exporter_queue_size", "Batches waiting to be sent",
                              oh->comp->metric_labels);
    oh->queue_bytes = sp_gauge("spanprof_exporter_queue_bytes",
                               "Bytes held by the batches waiting to be sent",
                               oh->comp->metric_labels);
}

static void oh_free(struct oh_exporter *oh)
{
    for (int s = 0; s < OH_SIG_COUNT; s++)
        free(oh->url[s]);
    for (char **h = oh->headers; h && *h; h++) {
        explicit_bzero(*h, strlen(*h));
        free(*h);
    }
    free(oh->headers);
    for (size_t i = 0; oh->workers && i < oh->n_workers; i++)
        sp_buf_free(&oh->workers[i].body);
    free(oh->workers);
    free(oh);
}

static int oh_create(struct sp_component *comp, struct sp_err *err)
{
    struct oh_conf *c = comp->conf;
    int rc;
    static const char *const sig_keys[OH_SIG_COUNT] = {"traces_endpoint", "metrics_endpoint",
                                                       "logs_endpoint"};
    bool all = true;
    for (int s = 0; s < OH_SIG_COUNT; s++)
        all = all && c->sig_endpoint[s] && *c->sig_endpoint[s];
    if ((!c->endpoint || !*c->endpoint) && !all)
        return sp_conf_errorf(comp->conf_ctx, err, "endpoint",
                              "an endpoint is required (the OTLP/HTTP base URL, e.g. "
                              "http://${env:HOST_IP}:4318 for the node's Datadog Agent), or "
                              "traces_endpoint, metrics_endpoint and logs_endpoint");
    if (c->endpoint && *c->endpoint && (rc = oh_check_url(comp, "endpoint", c->endpoint, err)))
        return rc;
    for (int s = 0; s < OH_SIG_COUNT; s++)
        if (c->sig_endpoint[s] && *c->sig_endpoint[s] &&
            (rc = oh_check_url(comp, sig_keys[s], c->sig_endpoint[s], err)))
            return rc;
    int comp_kind = strcasecmp(c->compression, "none") == 0 ? SP_COMPRESSION_NONE
                    : strcasecmp(c->compression, "gzip") == 0 ? SP_COMPRESSION_GZIP
                    : strcasecmp(c->compression, "zstd") == 0 ? SP_COMPRESSION_ZSTD
                                                              : -1;
    if (comp_kind < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "compression",
                              "'%s' is not supported: gzip, zstd or none", c->compression);
    if (c->timeout_ms < 1)
        return sp_conf_errorf(comp->conf_ctx, err, "timeout", "must be positive");
    if (c->retry.initial_interval_ms < 1 || c->retry.max_interval_ms < c->retry.initial_interval_ms)
        return sp_conf_errorf(comp->conf_ctx, err, "retry_on_failure.max_interval",
                              "initial_interval must be positive and at most max_interval");
    if (c->retry.max_elapsed_time_ms < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "retry_on_failure.max_elapsed_time",
                              "must not be negative");
    if (c->queue.num_consumers < 1 || c->queue.num_consumers > 1000)
        return sp_conf_errorf(comp->conf_ctx, err, "sending_queue.num_consumers",
                              "must be between 1 and 1000");
    if (c->queue.queue_size < 1 || c->queue.queue_size > 1000000)
        return sp_conf_errorf(comp->conf_ctx, err, "sending_queue.queue_size",
                              "must be between 1 and 1000000");
    if (c->queue.max_bytes < 1024)
        return sp_conf_errorf(comp->conf_ctx, err, "sending_queue.max_bytes",
                              "must be at least 1KiB");
    for (size_t i = 0; i < c->headers.n; i++) {
        const char *k = c->headers.keys[i], *v = c->headers.values[i];
        if (!*k || strpbrk(k, ": \t\r\n") || strpbrk(v, "\r\n"))
            return sp_conf_errorf(comp->conf_ctx, err, "headers",
                                  "header '%s': names may not hold ':' or blanks, values no line "
                                  "breaks",
                                  k);
    }

    struct oh_exporter *oh = calloc(1, sizeof(*oh));
    if (!oh)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    oh->comp = comp;
    oh->conf = c;
    oh->compression = (enum sp_compression)comp_kind;
    for (int s = 0; s < OH_SIG_COUNT; s++) {
        struct sp_buf u = {0};
        if (c->sig_endpoint[s] && *c->sig_endpoint[s]) {
            sp_buf_append_str(&u, c->sig_endpoint[s]);
        } else {
            size_t n = strlen(c->endpoint);
            while (n > 0 && c->endpoint[n - 1] == '/')
                n--;
            sp_buf_append(&u, c->endpoint, n);
            sp_buf_append_str(&u, oh_path[s]);
        }
        size_t len;
        oh->url[s] = u.data ? (char *)sp_buf_steal(&u, &len) : NULL;
        if (!oh->url[s]) {
            oh_free(oh);
            return sp_err_set(err, SP_ENOMEM, "out of memory");
        }
    }
    oh->headers = calloc(c->headers.n + 1, sizeof(char *));
    oh->n_workers = (size_t)(c->queue.num_consumers);
    oh->workers = calloc(oh->n_workers, sizeof(*oh->workers));
    if (!oh->headers || !oh->workers) {
        oh_free(oh);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->headers.n; i++) {
        size_t n = strlen(c->headers.keys[i]) + strlen(c->headers.values[i]) + 3;
        oh->headers[i] = malloc(n);
        if (!oh->headers[i]) {
            oh_free(oh);
            return sp_err_set(err, SP_ENOMEM, "out of memory");
        }
        snprintf(oh->headers[i], n, "%s: %s", c->headers.keys[i], c->headers.values[i]);
        /* The values are registered with the logger by the core
         * (SP_CONF_SECRET_VALUES): often credentials (DD-API-KEY, Authorization). */
    }
    for (size_t i = 0; i < oh->n_workers; i++)
        oh->workers[i].oh = oh;
    oh_register_metrics(oh);
    comp->ctx = oh;
    return 0;
}

/* ---- queue and senders ---- */

static void oh_queue_changed(struct oh_exporter *oh)
{
    sp_metric_set(oh->queue_size, (double)oh->qlen);
    sp_metric_set(oh->queue_bytes, (double)oh->qbytes);
}

static struct oh_item *oh_pop(struct oh_exporter *oh)
{
    struct oh_item *it = oh->head;
    if (!it)
        return NULL;
    oh->head = it->next;
    if (!oh->head)
        oh->tail = NULL;
    oh->qlen--;
    oh->qbytes -= it->bytes;
    oh_queue_changed(oh);
    return it;
}

static void oh_item_free(struct oh_item *it)
{
    sp_batch_unref(it->batch);
    free(it);
}

static void oh_finish(struct oh_exporter *oh)
{
    if (oh->finished)
        return;
    oh->finished = true;
    if (oh->started)
        uv_timer_stop(&oh->deadline);
    if (oh->done)
        oh->done(oh->comp);
}

static bool oh_idle(const struct oh_exporter *oh)
{
    for (size_t i = 0; i < oh->n_workers; i++)
        if (oh->workers[i].item)
            return false;
    return true;
}

static void oh_maybe_finish(struct oh_exporter *oh)
{
    if (oh->stopping && !oh->finished && oh->qlen == 0 && oh_idle(oh))
        oh_finish(oh);
}

static void oh_send(struct oh_worker *w);

static void oh_log_failure(struct oh_exporter *oh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void oh_log_failure(struct oh_exporter *oh, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint64_t now = uv_now(oh->loop);
    if (oh->last_fail_log_ms && now < oh->last_fail_log_ms + 10000) {
        oh->fail_suppressed++;
        return;
    }
    if (oh->fail_suppressed)
        sp_log_warn(oh->comp->id, "%s (%u similar failures in the last 10 s not logged)", msg,
                    oh->fail_suppressed);
    else
        sp_log_warn(oh->comp->id, "%s", msg);
    oh->last_fail_log_ms = now ? now : 1;
    oh->fail_suppressed = 0;
}

static void oh_worker_release(struct oh_worker *w)
{
    if (w->item)
        oh_item_free(w->item);
    w->item = NULL;
    w->call = NULL;
    sp_buf_reset(&w->body);
}

static void oh_kick(struct oh_exporter *oh);

/* The request body: the export request as protobuf, compressed. */
static int oh_encode(struct oh_exporter *oh, struct oh_worker *w, struct sp_err *err)
{
    const struct sp_batch *b = w->item->batch;
    const uint8_t *pb;
    size_t len;
    uint8_t *packed = NULL;
    if (b->signal == SP_SIGNAL_TRACES) {
        len = b->u.traces.req ? protobuf_c_message_get_packed_size(&b->u.traces.req->base) : 0;
        packed = malloc(len ? len : 1);
        if (!packed)
            return sp_err_set(err, SP_ENOMEM, "out of memory encoding traces");
        if (len)
            protobuf_c_message_pack(&b->u.traces.req->base, packed);
        pb = packed;
    } else {
        pb = b->u.otlp.pb;
        len = b->u.otlp.pb_len;
    }
    sp_buf_reset(&w->body);
    int rc;
    if (oh->compression == SP_COMPRESSION_NONE)
        rc = sp_buf_append(&w->body, pb, len) ? sp_err_set(err, SP_ENOMEM, "out of memory") : 0;
    else
        rc = sp_compress(oh->compression, oh->compression == SP_COMPRESSION_GZIP ? 6 : 3, pb, len,
                         &w->body, err);
    free(packed);
    return rc;
}

static bool oh_retryable(long status)
{
    return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

static void oh_on_retry_timer(uv_timer_t *t)
{
    oh_send(t->data);
}

static void oh_on_done(void *ud, const struct sp_http_response *resp)
{
    struct oh_worker *w = ud;
    struct oh_exporter *oh = w->oh;
    w->call = NULL;
    if (!w->item)
        return; /* abandoned at the deadline */
    enum oh_sig s = w->item->sig;
    const char *sig = sp_signal_name(oh_signal[s]);
    if (resp->status >= 200 && resp->status < 300) {
        sp_metric_add(oh->m[s].sent, (double)w->item->count);
        oh_worker_release(w);
        oh_kick(oh);
        oh_maybe_finish(oh);
        return;
    }
    char why[200];
    if (resp->status == 0)
        snprintf(why, sizeof(why), "%s", resp->error ? resp->error : "transport error");
    else
        snprintf(why, sizeof(why), "HTTP %ld%s%.*s", resp->status, resp->body_len ? ": " : "",
                 (int)(resp->body_len > 120 ? 120 : resp->body_len),
                 resp->body ? (const char *)resp->body : "");
    uint64_t now = uv_now(oh->loop);
    const struct oh_retry_conf *rc = &oh->conf->retry;
    if (rc->enabled && oh_retryable(resp->status)) {
        double rnd = (double)(uv_hrtime() % 1000000) / 1000000.0;
        int64_t wait = sp_backoff_ms(rc->initial_interval_ms, rc->max_interval_ms, w->attempt,
                                     rnd, resp->retry_after_ms);
        uint64_t dl = oh->comp->host ? oh->comp->host->shutdown_deadline_ms : 0;
        bool in_time = rc->max_elapsed_time_ms == 0 ||
                       now + (uint64_t)wait <= w->first_ms + (uint64_t)rc->max_elapsed_time_ms;
        bool before_deadline = !dl || now + (uint64_t)wait < dl;
        if (in_time && before_deadline) {
            sp_metric_inc(oh->m[s].retries);
            sp_log_debug(oh->comp->id, "%s export to %s failed (%s): retry in %lld ms", sig,
                         oh->url[s], why, (long long)wait);
            uv_timer_start(&w->timer, oh_on_retry_timer, (uint64_t)wait, 0);
            return;
        }
    }
    sp_metric_add(oh->m[s].failed, (double)w->item->count);
    oh_log_failure(oh, "%s export to %s failed for good (%s): %zu %s lost "
                   "(spanprof_exporter_failed_items_total)",
                   sig, oh->url[s], why, w->item->count, oh_items[s]);
    oh_worker_release(w);
    oh_kick(oh);
    oh_maybe_finish(oh);
}

static void oh_send(struct oh_worker *w)
{
    struct oh_exporter *oh = w->oh;
    enum oh_sig s = w->item->sig;
    const char *hdrs[64];
    size_t n = 0;
    hdrs[n++] = "Content-Type: application/x-protobuf";
    if (oh->compression == SP_COMPRESSION_GZIP)
        hdrs[n++] = "Content-Encoding: gzip";
    else if (oh->compression == SP_COMPRESSION_ZSTD)
        hdrs[n++] = "Content-Encoding: zstd";
    for (char **h = oh->headers; *h && n < 63; h++)
        hdrs[n++] = *h;
    hdrs[n] = NULL;
    struct sp_http_call_opts o = {
        .method = "POST",
        .url = oh->url[s],
        .headers = hdrs,
        .body = w->body.data,
        .body_len = w->body.len,
        .timeout_ms = oh->conf->timeout_ms,
        .max_response = 64 * 1024,
    };
    w->attempt++;
    if (sp_http_client_call(oh->http, &o, oh_on_done, w, &w->call) != 0) {
        w->call = NULL;
        struct sp_http_response r = {.status = 0, .error = "out of memory starting the request",
                                     .retry_after_ms = -1};
        oh_on_done(w, &r);
    }
}

static void oh_kick(struct oh_exporter *oh)
{
    for (size_t i = 0; i < oh->n_workers && oh->head; i++) {
        struct oh_worker *w = &oh->workers[i];
        if (w->item)
            continue;
        w->item = oh_pop(oh);
        w->attempt = 0;
        w->first_ms = uv_now(oh->loop);
        struct sp_err err = {0};
        if (oh_encode(oh, w, &err) != 0) {
            enum oh_sig s = w->item->sig;
            sp_metric_add(oh->m[s].failed, (double)w->item->count);
            oh_log_failure(oh, "cannot encode %s for export: %s", sp_signal_name(oh_signal[s]),
                           err.msg);
            oh_worker_release(w);
            continue;
        }
        oh_send(w);
    }
}

/* Would a batch of `bytes` be refused now? */
static bool oh_full(const struct oh_exporter *oh, size_t bytes)
{
    bool idle_sender = false;
    for (size_t i = 0; i < oh->n_workers && !idle_sender; i++)
        idle_sender = oh->workers[i].item == NULL;
    return oh->conf->queue.enabled
               ? (oh->qlen >= (size_t)oh->conf->queue.queue_size ||
                  (oh->qlen > 0 && oh->qbytes + bytes > oh->conf->queue.max_bytes))
               : !idle_sender;
}

/* Asked by receivers before they read a request (sp_component_ready).
 * `bytes` is the request as received; decoded it takes more, so expect one
 * more batch like the ones queued. */
static int oh_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes)
{
    (void)sig;
    const struct oh_exporter *oh = comp->ctx;
    if (oh->stopping)
        return SP_ESHUTDOWN;
    size_t expect = oh->qlen ? oh->qbytes / oh->qlen : 0;
    return oh_full(oh, expect > bytes ? expect : bytes) ? SP_EFULL : SP_OK;
}

static int oh_consume(struct sp_component *comp, struct sp_batch *batch)
{
    struct oh_exporter *oh = comp->ctx;
    enum oh_sig s = oh_sig_of(batch->signal);
    size_t count = batch->signal == SP_SIGNAL_TRACES ? batch->u.traces.span_count
                                                     : batch->u.otlp.item_count;
    if (oh->stopping)
        return SP_ESHUTDOWN;
    size_t bytes = sp_batch_bytes(batch);
    if (oh_full(oh, bytes)) {
        sp_metric_add(oh->m[s].refused, (double)count);
        return SP_EFULL;
    }
    struct oh_item *it = calloc(1, sizeof(*it));
    if (!it)
        return SP_ENOMEM;
    it->batch = sp_batch_ref(batch);
    sp_batch_set_mem_class(batch, SP_MEM_EXPORT);
    it->sig = s;
    it->count = count;
    it->bytes = bytes;
    if (oh->tail)
        oh->tail->next = it;
    else
        oh->head = it;
    oh->tail = it;
    oh->qlen++;
    oh->qbytes += bytes;
    oh_queue_changed(oh);
    oh_kick(oh);
    return SP_OK;
}

/* ---- lifecycle ---- */

static int oh_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    (void)host;
    struct oh_exporter *oh = comp->ctx;
    oh->loop = comp->loop;
    oh->http = sp_http_client_create(oh->loop);
    if (!oh->http)
        return sp_err_set(err, SP_ENOMEM, "out of memory creating the HTTP client");
    uv_timer_init(oh->loop, &oh->deadline);
    oh->deadline.data = oh;
    oh->open_handles = 1;
    for (size_t i = 0; i < oh->n_workers; i++) {
        uv_timer_init(oh->loop, &oh->workers[i].timer);
        oh->workers[i].timer.data = &oh->workers[i];
        oh->open_handles++;
    }
    oh->started = true;
    sp_log_info(comp->id, "forwarding OTLP to %s, %s, %s (protobuf, %s)", oh->url[OH_TRACES],
                oh->url[OH_METRICS], oh->url[OH_LOGS], sp_compression_name(oh->compression));
    return 0;
}

/* The deadline: whatever is still queued or being sent is dropped, counted. */
static void oh_on_deadline(uv_timer_t *t)
{
    struct oh_exporter *oh = t->data;
    size_t lost[OH_SIG_COUNT] = {0};
    struct oh_item *it;
    while ((it = oh_pop(oh))) {
        sp_metric_add(oh->m[it->sig].dropped_shutdown, (double)it->count);
        lost[it->sig] += it->count;
        oh_item_free(it);
    }
    for (size_t i = 0; i < oh->n_workers; i++) {
        struct oh_worker *w = &oh->workers[i];
        if (!w->item)
            continue;
        uv_timer_stop(&w->timer);
        sp_metric_add(oh->m[w->item->sig].dropped_shutdown, (double)w->item->count);
        lost[w->item->sig] += w->item->count;
        struct sp_http_call *call = w->call;
        oh_worker_release(w); /* oh_on_done sees no item and returns */
        if (call)
            sp_http_call_cancel(call);
    }
    sp_log_warn(oh->comp->id,
                "shutdown deadline reached: %zu spans, %zu metric points and %zu log records "
                "not delivered (spanprof_exporter_dropped_items_total{reason=\"shutdown\"})",
                lost[OH_TRACES], lost[OH_METRICS], lost[OH_LOGS]);
    oh_finish(oh);
}

static void oh_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct oh_exporter *oh = comp->ctx;
    if (oh->finished) {
        done(comp);
        return;
    }
    if (oh->stopping)
        return;
    oh->stopping = true;
    oh->done = done;
    if (!oh->started || (oh->qlen == 0 && oh_idle(oh))) {
        oh_finish(oh);
        return;
    }
    uint64_t now = uv_now(oh->loop);
    uint64_t dl = comp->host ? comp->host->shutdown_deadline_ms : 0;
    uint64_t wait = dl > now ? dl - now : (dl ? 0 : 10000);
    sp_log_info(comp->id, "draining %zu queued batches (up to %llu ms)", oh->qlen,
                (unsigned long long)wait);
    uv_timer_start(&oh->deadline, oh_on_deadline, wait, 0);
}

static void oh_handle_gone(struct oh_exporter *oh)
{
    if (--oh->open_handles == 0)
        oh_free(oh);
}

static void oh_on_deadline_closed(uv_handle_t *h)
{
    oh_handle_gone(h->data);
}

static void oh_on_worker_timer_closed(uv_handle_t *h)
{
    oh_handle_gone(((struct oh_worker *)h->data)->oh);
}

static void oh_destroy(struct sp_component *comp)
{
    struct oh_exporter *oh = comp->ctx;
    if (!oh)
        return;
    comp->ctx = NULL;
    for (size_t i = 0; i < oh->n_workers; i++) {
        struct oh_worker *w = &oh->workers[i];
        struct sp_http_call *call = w->call;
        oh_worker_release(w);
        if (call)
            sp_http_call_cancel(call);
    }
    struct oh_item *it;
    while ((it = oh_pop(oh)))
        oh_item_free(it);
    if (oh->http)
        sp_http_client_destroy(oh->http);
    oh->http = NULL;
    if (!oh->started) {
        oh_free(oh);
        return;
    }
    /* Timers live inside oh: freed from the last close callback. */
    uv_close((uv_handle_t *)&oh->deadline, oh_on_deadline_closed);
    for (size_t i = 0; i < oh->n_workers; i++)
        uv_close((uv_handle_t *)&oh->workers[i].timer, oh_on_worker_timer_closed);
}

const struct sp_component_type sp_otlphttp_exporter_type = {
    .name = "otlphttp",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_METRICS) |
               SP_SIGNAL_BIT(SP_SIGNAL_LOGS),
    .doc = "forwards OTLP traces, metrics and logs unchanged (protobuf) to an OTLP/HTTP endpoint: "
           "the node's Datadog Agent, a Collector, any OTLP backend",
    .conf_keys = oh_keys,
    .conf_key_count = SP_CONF_END_COUNT(oh_keys),
    .conf_size = sizeof(struct oh_conf),
    .create = oh_create,
    .start = oh_start,
    .consume = oh_consume,
    .ready = oh_ready,
    .shutdown = oh_shutdown,
    .destroy = oh_destroy,
};
