/* otlp receiver: OTLP traces, metrics and logs over gRPC (:4317) and HTTP
 * (:4318).
 *
 * The entry of every span into spanprof: applications point
 * OTEL_EXPORTER_OTLP_ENDPOINT here and change nothing else. SDKs send all
 * three signals to that one endpoint, so metrics and logs are accepted too
 * and go to pipelines of their signal (an otlphttp exporter forwards them);
 * a signal no pipeline takes is answered with success, counted and dropped,
 * with one warning that says how to forward it. This file holds the
 * component (configuration with the Collector's key names and defaults,
 * lifecycle, metrics), the per-signal table and the export path both
 * transports share: decode (model/otlp_codec.c), validate, hand the batch to
 * the pipeline, and map the outcome to what the transport answers. The transports themselves are
 * otlp_grpc.c (nghttp2 on libuv) and otlp_http.c (sp_httpd). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_int.h"
#include "sp_log.h"

/* A decoded request may take this many times its inflated size in the
 * batch arena (protobuf-c's structs and pointer arrays), plus a constant;
 * the fixtures decode to 2-8x. A hostile body made of empty messages hits
 * the bound and is answered as too large. */
#define OTLP_ARENA_FACTOR 16
#define OTLP_ARENA_EXTRA ((size_t)4 << 20)

/* ---- configuration ---- */

static const struct sp_conf_key otlp_ka_server_keys[] = {
    {"max_connection_idle", SP_CONF_DURATION,
     offsetof(struct otlp_keepalive_server, max_connection_idle_ms), "0", NULL, 0, 0, 0,
     "close (GOAWAY) a connection that has had no stream for this long; 0 = never"},
    {"max_connection_age", SP_CONF_DURATION,
     offsetof(struct otlp_keepalive_server, max_connection_age_ms), "0", NULL, 0, 0, 0,
     "ask a connection to go away (GOAWAY) once it is this old; 0 = never"},
    {"max_connection_age_grace", SP_CONF_DURATION,
     offsetof(struct otlp_keepalive_server, max_connection_age_grace_ms), "0", NULL, 0, 0, 0,
     "after max_connection_age, close the connection this much later even with streams "
     "open; 0 = wait for them"},
    {"time", SP_CONF_DURATION, offsetof(struct otlp_keepalive_server, time_ms), "2h", NULL, 0, 0, 0,
     "send a keepalive PING after this long without reading anything from the client"},
    {"timeout", SP_CONF_DURATION, offsetof(struct otlp_keepalive_server, timeout_ms), "20s", NULL,
     0, 0, 0, "close the connection when nothing arrives this long after a keepalive PING"},
};

static const struct sp_conf_key otlp_ka_enforcement_keys[] = {
    {"min_time", SP_CONF_DURATION, offsetof(struct otlp_keepalive_enforcement, min_time_ms), "5m",
     NULL, 0, 0, 0,
     "clients pinging more often than this get GOAWAY ENHANCE_YOUR_CALM after 2 strikes"},
    {"permit_without_stream", SP_CONF_BOOL,
     offsetof(struct otlp_keepalive_enforcement, permit_without_stream), "false", NULL, 0, 0, 0,
     "allow client keepalive pings when no stream is open"},
};

static const struct sp_conf_key otlp_keepalive_keys[] = {
    {"server_parameters", SP_CONF_BLOCK, offsetof(struct otlp_keepalive, server_parameters), NULL,
     otlp_ka_server_keys, SP_CONF_END_COUNT(otlp_ka_server_keys), 0, 0,
     "server-side keepalive and connection lifetime"},
    {"enforcement_policy", SP_CONF_BLOCK, offsetof(struct otlp_keepalive, enforcement_policy),
     NULL, otlp_ka_enforcement_keys, SP_CONF_END_COUNT(otlp_ka_enforcement_keys), 0, 0,
     "what the server tolerates of client keepalive pings"},
};

static const struct sp_conf_key otlp_grpc_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct otlp_grpc_conf, endpoint), "127.0.0.1:4317", NULL,
     0, 0, 0, "host:port for OTLP/gRPC (h2c with prior knowledge)"},
    {"transport", SP_CONF_STRING, offsetof(struct otlp_grpc_conf, transport), "tcp", NULL, 0, 0, 0,
     "network; only tcp"},
    {"max_recv_msg_size_mib", SP_CONF_INT, offsetof(struct otlp_grpc_conf, max_recv_msg_size_mib),
     "4", NULL, 0, 0, 0,
     "largest request message in MiB, compressed and after inflating (RESOURCE_EXHAUSTED above)"},
    {"max_concurrent_streams", SP_CONF_INT,
     offsetof(struct otlp_grpc_conf, max_concurrent_streams), "100", NULL, 0, 0, 0,
     "SETTINGS_MAX_CONCURRENT_STREAMS per connection (the Collector leaves it unlimited; "
     "spanprof bounds it)"},
    {"read_buffer_size", SP_CONF_SIZE, offsetof(struct otlp_grpc_conf, read_buffer_size),
     "512KiB", NULL, 0, 0, 0, "socket read buffer (one, shared by all connections)"},
    {"write_buffer_size", SP_CONF_SIZE, offsetof(struct otlp_grpc_conf, write_buffer_size), "32KiB",
     NULL, 0, 0, 0,
     "unsent bytes per connection above which spanprof stops reading from it until the "
     "client reads"},
    {"max_connections", SP_CONF_INT, offsetof(struct otlp_grpc_conf, max_connections), "256", NULL,
     0, 0, 0, "connections served at once; more are closed at accept (spanprof extension)"},
    {"max_inflight_bytes", SP_CONF_SIZE, offsetof(struct otlp_grpc_conf, max_inflight_bytes),
     "64MiB", NULL, 0, 0, 0,
     "request bytes buffered across all unfinished streams; a stream that would pass it is "
     "answered UNAVAILABLE (spanprof extension)"},
    {"keepalive", SP_CONF_BLOCK, offsetof(struct otlp_grpc_conf, keepalive), NULL,
     otlp_keepalive_keys, SP_CONF_END_COUNT(otlp_keepalive_keys), 0, 0,
     "gRPC keepalive, as the Collector's configgrpc"},
};

static const struct sp_conf_key otlp_cors_keys[] = {
    {"allowed_origins", SP_CONF_STRLIST, offsetof(struct otlp_cors_conf, allowed_origins), NULL,
     NULL, 0, 0, 0,
     "origins allowed to POST from a browser: exact, \"*\", or with one wildcard "
     "(https://*.example.com); empty turns CORS off"},
    {"allowed_headers", SP_CONF_STRLIST, offsetof(struct otlp_cors_conf, allowed_headers), NULL,
     NULL, 0, 0, 0,
     "request headers allowed besides Content-Type, Content-Encoding, Accept, Origin and "
     "X-Requested-With (\"*\" = any)"},
    {"max_age", SP_CONF_INT, offsetof(struct otlp_cors_conf, max_age), "0", NULL, 0, 0, 0,
     "seconds a browser may cache a preflight answer (Access-Control-Max-Age); 0 = unset"},
};

static const struct sp_conf_key otlp_http_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct otlp_http_conf, endpoint), "127.0.0.1:4318", NULL,
     0, 0, 0, "host:port for OTLP/HTTP (protobuf and JSON)"},
    {"traces_url_path", SP_CONF_STRING, offsetof(struct otlp_http_conf, traces_url_path),
     "/v1/traces", NULL, 0, 0, 0, "path that accepts trace exports"},
    {"metrics_url_path", SP_CONF_STRING, offsetof(struct otlp_http_conf, metrics_url_path),
     "/v1/metrics", NULL, 0, 0, 0, "path that accepts metrics exports"},
    {"logs_url_path", SP_CONF_STRING, offsetof(struct otlp_http_conf, logs_url_path),
     "/v1/logs", NULL, 0, 0, 0, "path that accepts logs exports"},
    {"max_request_body_size", SP_CONF_SIZE, offsetof(struct otlp_http_conf, max_request_body_size),
     "20MiB", NULL, 0, 0, 0, "largest body, as received and after inflating (413 above)"},
    {"idle_timeout", SP_CONF_DURATION, offsetof(struct otlp_http_conf, idle_timeout_ms), "1m", NULL,
     0, 0, 0,
     "close a connection that sends nothing for this long, mid-request included (slow or "
     "stalled clients)"},
    {"max_connections", SP_CONF_INT, offsetof(struct otlp_http_conf, max_connections), "256", NULL,
     0, 0, 0, "connections served at once (spanprof extension)"},
    {"cors", SP_CONF_BLOCK, offsetof(struct otlp_http_conf, cors), NULL, otlp_cors_keys,
     SP_CONF_END_COUNT(otlp_cors_keys), 0, 0, "cross-origin requests from browsers"},
};

static const struct sp_conf_key otlp_protocols_keys[] = {
    {"grpc", SP_CONF_BLOCK, offsetof(struct otlp_protocols_conf, grpc), NULL, otlp_grpc_keys,
     SP_CONF_END_COUNT(otlp_grpc_keys), 0, SP_CONF_OPTIONAL_BLOCK,
     "OTLP/gRPC server; absent = not served"},
    {"http", SP_CONF_BLOCK, offsetof(struct otlp_protocols_conf, http), NULL, otlp_http_keys,
     SP_CONF_END_COUNT(otlp_http_keys), 0, SP_CONF_OPTIONAL_BLOCK,
     "OTLP/HTTP server; absent = not served"},
};

static const struct sp_conf_key otlp_keys[] = {
    {"protocols", SP_CONF_BLOCK, offsetof(struct otlp_conf, protocols), NULL, otlp_protocols_keys,
     SP_CONF_END_COUNT(otlp_protocols_keys), 0, SP_CONF_REQUIRED,
     "which protocols to serve: grpc, http or both"},
};

/* ---- the signals ---- */

const struct otlp_signal otlp_signals[OTLP_SIG_COUNT] = {
    [OTLP_SIG_TRACES] = {SP_SIGNAL_TRACES,
                         "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                         offsetof(struct otlp_http_conf, traces_url_path), "spans", "spans",
                         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
    [OTLP_SIG_METRICS] = {SP_SIGNAL_METRICS,
                          "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                          offsetof(struct otlp_http_conf, metrics_url_path), "metric points",
                          "metric_points", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
    [OTLP_SIG_LOGS] = {SP_SIGNAL_LOGS,
                       "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                       offsetof(struct otlp_http_conf, logs_url_path), "log records",
                       "log_records", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"},
};

const char *otlp_http_path(const struct otlp_http_conf *conf, enum otlp_sig sig)
{
    return *(char *const *)((const char *)conf + otlp_signals[sig].http_path_offset);
}

/* ---- metrics and logs ---- */

static const char *const otlp_transport_names[OTLP_TRANSPORT_COUNT] = {"grpc", "http"};
static const char *const otlp_outcome_names[OTLP_OUT_COUNT] = {
    "success", "partial", "invalid", "too_large", "refused", "failed", "unsupported",
};

static void otlp_metrics_create(struct otlp_ctx *ctx)
{
    const char *comp = ctx->comp->metric_labels;
    char labels[512];
    static const char *const accepted_help[OTLP_SIG_COUNT] = {
        "Spans accepted and passed to the pipeline",
        "Metric data points accepted and passed to the pipeline",
        "Log records accepted and passed to the pipeline",
    };
    static const char *const refused_help[OTLP_SIG_COUNT] = {
        "Spans not accepted: invalid, or refused by a full pipeline",
        "Metric data points not accepted: refused by a full pipeline",
        "Log records not accepted: refused by a full pipeline",
    };
    char name[96];
    for (int s = 0; s < OTLP_SIG_COUNT; s++) {
        const struct otlp_signal *sg = &otlp_signals[s];
        snprintf(labels, sizeof(labels), "%s,signal=\"%s\"", comp, sp_signal_name(sg->signal));
        ctx->no_pipeline[s] = sp_counter("spanprof_receiver_no_pipeline_items_total",
                                         "Spans, metric points or log records answered with "
                                         "success and dropped because no pipeline of their "
                                         "signal uses the receiver",
                                         labels);
        for (int t = 0; t < OTLP_TRANSPORT_COUNT; t++) {
            snprintf(labels, sizeof(labels), "%s,transport=\"%s\"", comp,
                     otlp_transport_names[t]);
            snprintf(name, sizeof(name), "spanprof_receiver_accepted_%s_total", sg->metric_items);
            ctx->accepted[s][t] = sp_counter(name, accepted_help[s], labels);
            snprintf(name, sizeof(name), "spanprof_receiver_refused_%s_total", sg->metric_items);
            ctx->refused[s][t] = sp_counter(name, refused_help[s], labels);
        }
    }
    for (int t = 0; t < OTLP_TRANSPORT_COUNT; t++) {
        snprintf(labels, sizeof(labels), "%s,transport=\"%s\"", comp, otlp_transport_names[t]);
        ctx->bytes[t] = sp_counter("spanprof_receiver_received_bytes_total",
                                   "Request body bytes received, as sent (compressed)", labels);
        for (int o = 0; o < OTLP_OUT_COUNT; o++) {
            snprintf(labels, sizeof(labels), "%s,transport=\"%s\",outcome=\"%s\"", comp,
                     otlp_transport_names[t], otlp_outcome_names[o]);
            ctx->requests[t][o] = sp_counter("spanprof_receiver_requests_total",
                                             "Export requests by transport and outcome", labels);
        }
    }
}

void otlp_warn_limited(struct otlp_ctx *ctx, const char *fmt, ...)
{
    char msg[SP_ERR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint64_t now = ctx->comp->loop ? uv_now(ctx->comp->loop) : 0;
    if (ctx->warn_window_ms && now < ctx->warn_window_ms + 1000) {
        ctx->warn_suppressed++;
        sp_log_debug(ctx->comp->id, "%s", msg);
        return;
    }
    if (ctx->warn_suppressed)
        sp_log_warn(ctx->comp->id, "%s (%u similar messages suppressed in the last second)", msg,
                    ctx->warn_suppressed);
    else
        sp_log_warn(ctx->comp->id, "%s", msg);
    ctx->warn_window_ms = now ? now : 1;
    ctx->warn_suppressed = 0;
}

void otlp_count_early(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_outcome o,
                      const char *why)
{
    sp_metric_inc(ctx->requests[t][o]);
    if (why)
        otlp_warn_limited(ctx, "%s request %s: %s", otlp_transport_names[t],
                          otlp_outcome_names[o], why);
}

void otlp_count_bytes(struct otlp_ctx *ctx, enum otlp_transport t, size_t n)
{
    sp_metric_add(ctx->bytes[t], (double)n);
}

/* ---- the export path ---- */

/* Once per signal: data arrives that no pipeline takes. Says how to
 * forward it (spanprof keeps the SDK free of export errors meanwhile). */
static void otlp_warn_no_pipeline(struct otlp_ctx *ctx, enum otlp_sig sig)
{
    if (ctx->no_pipeline_warned[sig])
        return;
    ctx->no_pipeline_warned[sig] = true;
    const struct otlp_signal *sg = &otlp_signals[sig];
    const char *name = sp_signal_name(sg->signal);
    sp_log_warn(ctx->comp->id,
                "%s arrive but no %s pipeline uses this receiver: they are answered with "
                "success and dropped (spanprof_receiver_no_pipeline_items_total{signal=\"%s\"}). "
                "To forward them, add an otlphttp exporter and "
                "service.pipelines.%s: {receivers: [%s], exporters: [otlphttp]}; or point the "
                "SDK's %s at your collector or Datadog Agent instead of spanprof",
                sg->items, name, name, name, ctx->comp->id, sg->sdk_variable);
}

/* Decodes a request of the signal into a new batch; NULL with res set. */
static struct sp_batch *otlp_decode(struct otlp_ctx *ctx, enum otlp_sig sig,
                                    enum sp_otlp_encoding enc, const uint8_t *body, size_t len,
                                    struct sp_otlp_decode_info *info, struct otlp_result *res)
{
    struct sp_err err = {0};
    size_t limit = len > (SIZE_MAX - OTLP_ARENA_EXTRA) / OTLP_ARENA_FACTOR
                       ? SIZE_MAX
                       : len * OTLP_ARENA_FACTOR + OTLP_ARENA_EXTRA;
    struct sp_batch *batch = sp_batch_create(otlp_signals[sig].signal, limit);
    if (!batch) {
        res->outcome = OTLP_OUT_REFUSED;
        res->code = SP_ERETRY;
        snprintf(res->message, sizeof(res->message), "out of memory");
        return NULL;
    }
    batch->origin_component = ctx->comp->id;
    memset(info, 0, sizeof(*info));
    int rc = sig == OTLP_SIG_TRACES ? sp_otlp_decode_traces(batch, enc, body, len, info, &err)
                                    : sp_otlp_decode_passthrough(batch, enc, body, len, &err);
    if (rc) {
        res->code = rc;
        res->outcome = rc == SP_ETOOBIG ? OTLP_OUT_TOO_LARGE
                       : rc == SP_ENOMEM ? OTLP_OUT_REFUSED
                                         : OTLP_OUT_INVALID;
        snprintf(res->message, sizeof(res->message), "%s", err.msg);
        sp_batch_unref(batch);
        return NULL;
    }
    return batch;
}

void otlp_export(struct otlp_ctx *ctx, enum otlp_sig sig, enum otlp_transport t,
                 enum sp_otlp_encoding enc, const uint8_t *body, size_t len,
                 struct otlp_result *res)
{
    struct sp_err err = {0};
    struct sp_otlp_decode_info info;
    memset(res, 0, sizeof(*res));
    const struct otlp_signal *sg = &otlp_signals[sig];

    struct sp_batch *batch = otlp_decode(ctx, sig, enc, body, len, &info, res);
    if (!batch)
        goto out;
    size_t items = sig == OTLP_SIG_TRACES ? batch->u.traces.span_count : batch->u.otlp.item_count;
    res->rejected = (int64_t)info.spans_rejected;
    if (info.spans_rejected) {
        sp_metric_add(ctx->refused[sig][t], (double)info.spans_rejected);
        snprintf(res->message, sizeof(res->message), "%s", info.message);
        otlp_warn_limited(ctx, "%s export: %s", otlp_transport_names[t], info.message);
    }
    if (items > 0 && ctx->comp->next[sg->signal].n == 0) {
        /* No pipeline of this signal: success for the SDK, a count and one
         * warning for the operator. */
        sp_metric_add(ctx->no_pipeline[sig], (double)items);
        otlp_warn_no_pipeline(ctx, sig);
    } else if (items > 0) {
        sp_err_clear(&err);
        int rc = sp_component_emit(ctx->comp, batch, &err);
        if (rc != SP_OK) {
            /* A full queue and transient failures are for the client to
             * retry; so is a shutdown in progress. Everything else is a
             * permanent failure of the pipeline for this data. */
            bool retry = rc == SP_EFULL || rc == SP_ERETRY || rc == SP_ENOMEM ||
                         rc == SP_ESHUTDOWN || rc == SP_EIO;
            res->outcome = retry ? OTLP_OUT_REFUSED : OTLP_OUT_FAILED;
            res->code = rc;
            res->rejected = 0;
            snprintf(res->message, sizeof(res->message), "%s",
                     err.msg[0] ? err.msg : sp_strerror(rc));
            sp_metric_add(ctx->refused[sig][t], (double)items);
            goto out;
        }
        sp_metric_add(ctx->accepted[sig][t], (double)items);
    }
    res->outcome = info.spans_rejected ? OTLP_OUT_PARTIAL : OTLP_OUT_SUCCESS;
out:
    sp_metric_inc(ctx->requests[t][res->outcome]);
    if (res->outcome != OTLP_OUT_SUCCESS && res->outcome != OTLP_OUT_PARTIAL)
        otlp_warn_limited(ctx, "%s %s export %s: %s", otlp_transport_names[t],
                          sp_signal_name(sg->signal), otlp_outcome_names[res->outcome],
                          res->message);
    sp_batch_unref(batch);
}

/* ---- lifecycle ---- */

static int otlp_check_endpoint(struct sp_component *comp, const char *path, const char *ep,
                               struct sp_err *err)
{
    char host[256];
    int port;
    struct sp_err perr = {0};
    if (!ep || !*ep)
        return sp_conf_errorf(comp->conf_ctx, err, path, "an endpoint is required");
    if (sp_conf_parse_endpoint(ep, host, &port, &perr))
        return sp_conf_errorf(comp->conf_ctx, err, path, "%s", perr.msg);
    return 0;
}

static int otlp_create(struct sp_component *comp, struct sp_err *err)
{
    struct otlp_conf *conf = comp->conf;
    struct otlp_grpc_conf *g = &conf->protocols.grpc;
    struct otlp_http_conf *h = &conf->protocols.http;
    int rc;

    if (!g->present && !h->present)
        return sp_conf_errorf(comp->conf_ctx, err, "protocols",
                              "at least one protocol (grpc or http) must be configured");
    if (g->present) {
        if ((rc = otlp_check_endpoint(comp, "protocols.grpc.endpoint", g->endpoint, err)))
            return rc;
        if (g->transport && strcmp(g->transport, "tcp") != 0)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.transport",
                                  "transport '%s' is not supported: only 'tcp'", g->transport);
        if (g->max_recv_msg_size_mib < 0 || g->max_recv_msg_size_mib > 2047)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.max_recv_msg_size_mib",
                                  "must be between 1 and 2047 (0 = the default 4)");
        if (g->max_recv_msg_size_mib == 0)
            g->max_recv_msg_size_mib = 4;
        if (g->max_concurrent_streams < 1 || g->max_concurrent_streams > 100000)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.max_concurrent_streams",
                                  "must be between 1 and 100000");
        if (g->read_buffer_size < 4096 || g->read_buffer_size > (64u << 20))
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.read_buffer_size",
                                  "must be between 4KiB and 64MiB");
        if (g->write_buffer_size < 4096 || g->write_buffer_size > (1ull << 30))
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.write_buffer_size",
                                  "must be between 4KiB and 1GiB");
        if (g->max_connections < 1 || g->max_connections > 65536)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.max_connections",
                                  "must be between 1 and 65536");
        if (g->max_inflight_bytes < (uint64_t)g->max_recv_msg_size_mib << 20)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.max_inflight_bytes",
                                  "must hold at least one message of max_recv_msg_size_mib");
        const struct otlp_keepalive_server *sp = &g->keepalive.server_parameters;
        if (sp->max_connection_idle_ms < 0 || sp->max_connection_age_ms < 0 ||
            sp->max_connection_age_grace_ms < 0 || sp->time_ms < 0 || sp->timeout_ms < 0 ||
            g->keepalive.enforcement_policy.min_time_ms < 0)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.grpc.keepalive",
                                  "durations must not be negative");
    }
    if (h->present) {
        if ((rc = otlp_check_endpoint(comp, "protocols.http.endpoint", h->endpoint, err)))
            return rc;
        static const char *const path_keys[OTLP_SIG_COUNT] = {
            "protocols.http.traces_url_path", "protocols.http.metrics_url_path",
            "protocols.http.logs_url_path"};
        for (int s = 0; s < OTLP_SIG_COUNT; s++) {
            const char *p = otlp_http_path(h, (enum otlp_sig)s);
            if (!p || p[0] != '/')
                return sp_conf_errorf(comp->conf_ctx, err, path_keys[s], "must start with '/'");
            for (int o = 0; o < s; o++)
                if (strcmp(p, otlp_http_path(h, (enum otlp_sig)o)) == 0)
                    return sp_conf_errorf(comp->conf_ctx, err, path_keys[s],
                                          "'%s' is also %s: each signal needs its own path", p,
                                          path_keys[o] + strlen("protocols.http."));
        }
        if (h->max_request_body_size < 1024 || h->max_request_body_size > (1ull << 31))
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.http.max_request_body_size",
                                  "must be between 1KiB and 2GiB");
        if (h->idle_timeout_ms < 1000)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.http.idle_timeout",
                                  "must be at least 1s");
        if (h->max_connections < 1 || h->max_connections > 65536)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.http.max_connections",
                                  "must be between 1 and 65536");
        if (h->cors.max_age < 0)
            return sp_conf_errorf(comp->conf_ctx, err, "protocols.http.cors.max_age",
                                  "must not be negative");
    }
    struct otlp_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    ctx->comp = comp;
    ctx->conf = conf;
    otlp_metrics_create(ctx);
    comp->ctx = ctx;
    return 0;
}

static int otlp_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    (void)host;
    struct otlp_ctx *ctx = comp->ctx;
    int rc;
    if (ctx->conf->protocols.grpc.present && (rc = otlp_grpc_start(ctx, err)))
        return rc;
    if (ctx->conf->protocols.http.present && (rc = otlp_http_start(ctx, err)))
        return rc;
    ctx->started = true;
    /* What each signal becomes: forwarded by its pipeline or dropped. */
    char routes[160] = "";
    size_t off = 0;
    for (int s = 0; s < OTLP_SIG_COUNT; s++) {
        enum sp_signal sig = otlp_signals[s].signal;
        int n = snprintf(routes + off, sizeof(routes) - off, "%s%s %s", s ? ", " : "",
                         sp_signal_name(sig), comp->next[sig].n ? "to a pipeline" : "dropped");
        if (n > 0 && (size_t)n < sizeof(routes) - off)
            off += (size_t)n;
    }
    if (ctx->conf->protocols.grpc.present)
        sp_log_info(comp->id, "OTLP/gRPC listening on %s (%s)", ctx->conf->protocols.grpc.endpoint,
                    routes);
    if (ctx->conf->protocols.http.present) {
        const struct otlp_http_conf *h = &ctx->conf->protocols.http;
        sp_log_info(comp->id, "OTLP/HTTP listening on %s: %s %s %s (%s)", h->endpoint,
                    h->traces_url_path, h->metrics_url_path, h->logs_url_path, routes);
    }
    return 0;
}

static void otlp_transport_stopped(struct otlp_ctx *ctx)
{
    if (--ctx->pending_stops > 0 || ctx->shutdown_done)
        return;
    ctx->shutdown_done = true;
    if (ctx->done)
        ctx->done(ctx->comp);
}

static void otlp_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct otlp_ctx *ctx = comp->ctx;
    if (ctx->shutting_down) {
        if (ctx->shutdown_done && done)
            done(comp);
        return;
    }
    ctx->shutting_down = true;
    ctx->done = done;
    /* One extra count so a transport finishing synchronously cannot end the
     * shutdown before the other has begun. */
    ctx->pending_stops = 1;
    if (ctx->grpc) {
        ctx->pending_stops++;
        otlp_grpc_shutdown(ctx, otlp_transport_stopped);
    }
    if (ctx->httpd) {
        ctx->pending_stops++;
        otlp_http_shutdown(ctx, otlp_transport_stopped);
    }
    otlp_transport_stopped(ctx);
}

static void otlp_destroy(struct sp_component *comp)
{
    struct otlp_ctx *ctx = comp->ctx;
    if (!ctx)
        return;
    /* Transports free themselves when their shutdown completes; a receiver
     * that was started but never shut down (start failed half way) leaves
     * its handles to the loop's teardown. */
    free(ctx);
    comp->ctx = NULL;
}

const struct sp_component_type sp_otlp_receiver_type = {
    .name = "otlp",
    .kind = SP_KIND_RECEIVER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_METRICS) |
               SP_SIGNAL_BIT(SP_SIGNAL_LOGS),
    .doc = "OTLP traces, metrics and logs over gRPC (h2c) and HTTP (protobuf and JSON), as the "
           "OpenTelemetry SDK exporters send them; a signal no pipeline takes is answered with "
           "success and dropped (counted)",
    .conf_keys = otlp_keys,
    .conf_key_count = SP_CONF_END_COUNT(otlp_keys),
    .conf_size = sizeof(struct otlp_conf),
    .create = otlp_create,
    .start = otlp_start,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};
