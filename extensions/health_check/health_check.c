/* health_check extension: a liveness/readiness endpoint for probes.
 *
 * GET <path> answers 200 {"status":"Server available",...} while the
 * service is running and 503 while it starts or shuts down, so a
 * Kubernetes readiness probe takes the pod out of rotation as soon as
 * SIGTERM arrives. Extensions start first and stop last, so the 503
 * "Server shutting down" keeps being served while receivers, processors
 * and exporters drain; the listener closes only when the service stops
 * this extension. The body's shape follows the Collector's healthcheck
 * extension (status, upSince, uptime). `spanprof healthcheck` is the
 * matching client for images without curl.
 *
 * It is served on the telemetry thread (sp_telemetry.h), not the pipeline
 * loop, so a flood that keeps the loop busy cannot make a liveness probe
 * time out and get the pod restarted. The handler therefore reads only the
 * service state (an atomic) and its own fields set before the thread
 * started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sp_component.h"
#include "sp_httpd.h"
#include "sp_log.h"
#include "sp_metrics.h"
#include "sp_telemetry.h"

struct health_check_conf {
    char *endpoint;
    char *path;
};

static const struct sp_conf_key health_check_keys[] = {
    {"endpoint", SP_CONF_STRING, offsetof(struct health_check_conf, endpoint), "127.0.0.1:13133",
     NULL, 0, 0, 0, "host:port to serve the health check on"},
    {"path", SP_CONF_STRING, offsetof(struct health_check_conf, path), "/", NULL, 0, 0, 0,
     "URL path answering the health check (other paths get 404)"},
};

struct health_check {
    struct sp_component *comp;
    struct sp_httpd *httpd;
    struct sp_host *host;
    time_t up_since;          /* wall clock, for upSince */
    uint64_t up_since_ms;     /* monotonic clock, for uptime */
    bool stopping;
    bool stop_pending;        /* sp_httpd_stop called, its callback not yet run */
    bool destroyed;           /* destroy came first: the callback frees */
    sp_done_fn done;
    struct sp_metric *requests_ok;
    struct sp_metric *requests_unavailable;
};

/* A Go-style duration ("1h2m3.5s", "850ms"): what the Collector prints. */
static void health_check_format_uptime(char *buf, size_t n, uint64_t ms)
{
    if (ms < 1000) {
        snprintf(buf, n, "%llums", (unsigned long long)ms);
        return;
    }
    unsigned long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60,
                       frac = ms % 1000;
    char sec[32];
    if (frac) {
        snprintf(sec, sizeof(sec), "%llu.%03llu", s, frac);
        /* Trim trailing zeros of the fraction like Go does. */
        size_t l = strlen(sec);
        while (sec[l - 1] == '0')
            sec[--l] = '\0';
    } else {
        snprintf(sec, sizeof(sec), "%llu", s);
    }
    if (h)
        snprintf(buf, n, "%lluh%llum%ss", h, m, sec);
    else if (m)
        snprintf(buf, n, "%llum%ss", m, sec);
    else
        snprintf(buf, n, "%ss", sec);
}

static uint64_t health_check_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs on the telemetry thread. */
static void health_check_handler(void *ud, struct sp_http_request *req)
{
    struct health_check *hc = ud;
    if (req->phase != SP_HTTP_HEADERS)
        return;
    const struct health_check_conf *conf = hc->comp->conf;
    if (strcmp(req->path, conf->path) != 0) {
        sp_httpd_respond_text(req, 404, "not found");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
        sp_httpd_respond(req, 405, "text/plain", "method not allowed\n", 19, allow);
        return;
    }
    /* The service is STOPPING before extensions are told to stop. */
    enum sp_service_state state = sp_host_state(hc->host);
    const char *status;
    unsigned code;
    switch (state) {
    case SP_SERVICE_RUNNING:
        status = "Server available";
        code = 200;
        break;
    case SP_SERVICE_STOPPING:
        status = "Server shutting down";
        code = 503;
        break;
    default:
        status = "Server not available";
        code = 503;
        break;
    }
    char since[64];
    struct tm tm;
    gmtime_r(&hc->up_since, &tm);
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char uptime[64];
    health_check_format_uptime(uptime, sizeof(uptime), health_check_now_ms() - hc->up_since_ms);
    char body[256];
    int len = snprintf(body, sizeof(body),
                       "{\"status\":\"%s\",\"upSince\":\"%s\",\"uptime\":\"%s\"}", status,
                       since, uptime);
    /* Probes must see the current state, never a cached one. */
    static const char *const headers[] = {"Cache-Control", "no-store", NULL};
    sp_httpd_respond(req, code, "application/json", body, (size_t)len, headers);
    sp_metric_inc(code == 200 ? hc->requests_ok : hc->requests_unavailable);
}

static int health_check_create(struct sp_component *comp, struct sp_err *err)
{
    const struct health_check_conf *conf = comp->conf;
    char host[256];
    int port;
    struct sp_err perr = {0};
    if (sp_conf_parse_endpoint(conf->endpoint, host, &port, &perr) != 0)
        return sp_conf_errorf(comp->conf_ctx, err, "endpoint", "%s", perr.msg);
    if (!conf->path || conf->path[0] != '/')
        return sp_conf_errorf(comp->conf_ctx, err, "path", "must start with '/', got '%s'",
                              conf->path ? conf->path : "");
    struct health_check *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    hc->comp = comp;
    char labels[512];
    snprintf(labels, sizeof(labels), "%s,status=\"200\"", comp->metric_labels);
    hc->requests_ok = sp_counter("spanprof_extension_health_checks_total",
                                 "Health check requests answered, by status", labels);
    snprintf(labels, sizeof(labels), "%s,status=\"503\"", comp->metric_labels);
    hc->requests_unavailable = sp_counter("spanprof_extension_health_checks_total",
                                          "Health check requests answered, by status", labels);
    comp->ctx = hc;
    return 0;
}

static int health_check_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    struct health_check *hc = comp->ctx;
    const struct health_check_conf *conf = comp->conf;
    hc->host = host;
    hc->up_since = time(NULL);
    hc->up_since_ms = health_check_now_ms();
    struct sp_httpd_opts o = {
        .endpoint = conf->endpoint,
        .max_body = 1024,
        .max_connections = 64,
        .connection_timeout_s = 10,
        .name = comp->id,
    };
    int rc = sp_telemetry_httpd_start(&o, health_check_handler, hc, &hc->httpd, err);
    if (rc) {
        sp_err_prefix(err, "extensions.%s.endpoint", comp->id);
        return rc;
    }
    char addr[300];
    sp_log_info(comp->id, "serving health at http://%s%s",
                sp_conf_endpoint_bound(conf->endpoint, sp_httpd_port(hc->httpd), addr,
                                       sizeof(addr)),
                conf->path);
    return 0;
}

static void health_check_on_stopped(void *ud)
{
    struct health_check *hc = ud;
    hc->stop_pending = false;
    if (hc->destroyed) {
        free(hc);
        return;
    }
    sp_done_fn done = hc->done;
    hc->done = NULL;
    if (done)
        done(hc->comp);
}

static void health_check_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct health_check *hc = comp->ctx;
    if (hc->stopping) {
        /* Called again: done was already called, or will be by the first stop. */
        return;
    }
    hc->stopping = true;
    hc->done = done;
    struct sp_httpd *h = hc->httpd;
    hc->httpd = NULL;
    hc->stop_pending = true;
    /* With h NULL (never started) this calls back at once. */
    sp_telemetry_httpd_stop(h, comp->loop, health_check_on_stopped, hc);
}

static void health_check_destroy(struct sp_component *comp)
{
    struct health_check *hc = comp->ctx;
    if (!hc)
        return;
    comp->ctx = NULL;
    if (hc->stop_pending) {
        /* The service gave up waiting (shutdown deadline): the listener's
         * close callback is still to come and frees hc. */
        hc->destroyed = true;
        return;
    }
    if (hc->httpd) {
        hc->stop_pending = true;
        hc->destroyed = true;
        sp_telemetry_httpd_stop(hc->httpd, comp->loop, health_check_on_stopped, hc);
        return;
    }
    free(hc);
}

const struct sp_component_type sp_health_check_extension_type = {
    .name = "health_check",
    .kind = SP_KIND_EXTENSION,
    .signals = 0,
    .doc = "HTTP health check for probes: 200 while every pipeline runs, 503 while starting or "
           "shutting down.",
    .conf_keys = health_check_keys,
    .conf_key_count = SP_CONF_END_COUNT(health_check_keys),
    .conf_size = sizeof(struct health_check_conf),
    .create = health_check_create,
    .start = health_check_start,
    .shutdown = health_check_shutdown,
    .destroy = health_check_destroy,
};
