/* otlp receiver: OTLP traces, metrics and logs over gRPC (:4317) and HTTP
 * (:4318).
 *
 * The entry of every span into spanprof: applications point
 * OTEL_EXPORTER_OTLP_ENDPOINT here and change nothing else. SDKs send all
 * three signals to that one endpoint, so metrics and logs are accepted too
 * and go to pipelines of their signal (an otlphttp exporter forwards them);
 * a signal no pipeline takes is answered with success, counted and dropped,
 * with one warning that says how to forward it. This file holds the
 * component: configuration with the Collector's key names and defaults, the
 * per-signal table, and the lifecycle. Calls point one way: otlp.c -> the transports,
 * otlp_grpc.c (nghttp2 on libuv) and otlp_http.c (sp_httpd) -> the export
 * path and its counters, otlp_export.c (decode, validate, pass on, count). */
#include <stdlib.h>
#include <string.h>

#include "otlp_int.h"
#include "sp_log.h"

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
    char addr[300];
    if (ctx->conf->protocols.grpc.present)
        sp_log_info(comp->id, "OTLP/gRPC listening on %s (%s)",
                    sp_conf_endpoint_bound(ctx->conf->protocols.grpc.endpoint,
                                           otlp_grpc_port(ctx->grpc), addr, sizeof(addr)),
                    routes);
    if (ctx->conf->protocols.http.present) {
        const struct otlp_http_conf *h = &ctx->conf->protocols.http;
        sp_log_info(comp->id, "OTLP/HTTP listening on %s: %s %s %s (%s)",
                    sp_conf_endpoint_bound(h->endpoint, ctx->http_port, addr, sizeof(addr)),
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
