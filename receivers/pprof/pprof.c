/* pprof receiver: profiles in, one profile batch per upload out.
 *
 * Profiles reach spanprof four ways so that whatever profiler a service
 * already runs works unchanged: a Datadog profiler uploading to its agent
 * (POST /profiling/v1/input, multipart), a plain pprof push (POST
 * /v1/pprof), Pyroscope's ingest (POST /ingest), all on one HTTP listener
 * (sp_httpd, default 127.0.0.1:8126 where dd-trace looks for an agent), and
 * a scraper pulling Go's net/http/pprof endpoints (pprof_scrape.c). This
 * file holds the component vtable, configuration, metrics and the helpers
 * every path shares: decode a pprof body into an attachment, emit. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pprof_int.h"
#include "sp_log.h"

const char *const pprof_dialect_names[PPROF_DIALECT_COUNT] = {"datadog", "pprof", "pyroscope",
                                                              "scrape"};

int64_t pprof_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void pprof_log_warn(struct pprof_ctx *ctx, const char *fmt, ...)
{
    uint64_t now = ctx->comp->loop ? uv_now(ctx->comp->loop) : 0;
    if (now - ctx->log_window_start_ms >= PPROF_LOG_WINDOW_MS) {
        if (ctx->log_suppressed)
            sp_log_warn(ctx->comp->id, "%u similar warnings suppressed in the last %d s",
                        ctx->log_suppressed, PPROF_LOG_WINDOW_MS / 1000);
        ctx->log_window_start_ms = now;
        ctx->log_count = 0;
        ctx->log_suppressed = 0;
    }
    if (ctx->log_count >= PPROF_LOG_BURST) {
        ctx->log_suppressed++;
        return;
    }
    ctx->log_count++;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sp_log_warn(ctx->comp->id, "%s", msg);
}

struct sp_batch *pprof_batch_new(struct pprof_ctx *ctx, const char *dialect)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_PROFILES, ctx->conf->max_decoded_size);
    if (!b)
        return NULL;
    b->origin_component = ctx->comp->id;
    b->u.profile.dialect = dialect;
    b->u.profile.received_ns = pprof_now_ns();
    return b;
}

int pprof_attach_pprof(struct pprof_ctx *ctx, struct sp_batch *b, struct sp_attachment *att,
                       const char *name, const uint8_t *data, size_t len, struct sp_err *err)
{
    memset(att, 0, sizeof(*att));
    att->name = sp_arena_strdup(b->arena, name);
    /* Keep the bytes as received: the exporter forwards them unchanged
     * unless the join modified the profile. */
    uint8_t *copy = sp_arena_memdup(b->arena, data, len);
    if (!att->name || !copy)
        return sp_err_set(err, SP_ETOOBIG, "out of memory keeping %zu bytes", len);
    att->data = copy;
    att->len = len;
    int rc = sp_pprof_decode(copy, len, ctx->conf->max_profile_size, b->arena, &att->pprof,
                             &att->compression, err);
    if (rc < 0) {
        att->pprof = NULL;
        return rc;
    }
    att->labelled_type = sp_pprof_is_labelled_type(att->pprof);
    return 0;
}

void pprof_times_from_pprof(struct sp_profile *p)
{
    for (size_t i = 0; i < p->attachment_count; i++) {
        const sp_pprof *pp = p->attachments[i].pprof;
        if (!pp || pp->time_nanos <= 0)
            continue;
        if (!p->start_ns)
            p->start_ns = pp->time_nanos;
        if (!p->end_ns)
            p->end_ns = pp->time_nanos + (pp->duration_nanos > 0 ? pp->duration_nanos : 0);
        break;
    }
    /* Nothing known: the profile covers up to its arrival. */
    if (!p->end_ns)
        p->end_ns = p->received_ns;
    if (!p->start_ns)
        p->start_ns = p->end_ns;
}

const char *pprof_guess_type(const sp_pprof *p)
{
    if (!p)
        return NULL;
    bool alloc = false, inuse = false, contentions = false;
    for (size_t i = 0; i < p->n_sample_type; i++) {
        const char *t = sp_pprof_str(p, p->sample_type[i]->type);
        if (!t)
            continue;
        if (strcmp(t, "cpu") == 0 || strcmp(t, "cpu-time") == 0)
            return "cpu";
        if (strcmp(t, "wall") == 0 || strcmp(t, "wall-time") == 0)
            return "wall";
        if (strcmp(t, "goroutine") == 0 || strcmp(t, "goroutines") == 0)
            return "goroutine";
        alloc |= strncmp(t, "alloc_", 6) == 0;
        inuse |= strncmp(t, "inuse_", 6) == 0;
        contentions |= strcmp(t, "contentions") == 0;
    }
    if (inuse)
        return "heap";
    if (alloc)
        return "allocs";
    if (contentions) {
        /* Go: mutex profiles count delay in the mutex's period type,
         * block profiles too; the period type names them apart poorly, so
         * "contentions" it is unless the caller knows better. */
        return "contentions";
    }
    return NULL;
}

int pprof_emit(struct pprof_ctx *ctx, enum pprof_dialect d, struct sp_batch *b,
               struct sp_err *err)
{
    int rc = sp_component_emit(ctx->comp, b, err);
    if (rc == SP_OK)
        sp_metric_inc(ctx->m[d].accepted);
    else
        sp_metric_inc(ctx->m[d].refused);
    return rc;
}

/* --- lifecycle ------------------------------------------------------------- */

static int pprof_create(struct sp_component *comp, struct sp_err *err)
{
    const struct pprof_conf *conf = comp->conf;
    char host[256];
    int port;
    if (sp_conf_parse_endpoint(conf->endpoint, host, &port, err) != 0) {
        char why[SP_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err->msg);
        return sp_conf_errorf(comp->conf_ctx, err, "endpoint", "%s", why);
    }
    if (conf->max_profile_size < 1024)
        return sp_conf_errorf(comp->conf_ctx, err, "max_profile_size",
                              "must be at least 1KiB, got %llu bytes",
                              (unsigned long long)conf->max_profile_size);
    if (conf->max_request_size < 1024)
        return sp_conf_errorf(comp->conf_ctx, err, "max_request_size",
                              "must be at least 1KiB, got %llu bytes",
                              (unsigned long long)conf->max_request_size);
    if (conf->max_decoded_size && conf->max_decoded_size < conf->max_profile_size)
        return sp_conf_errorf(comp->conf_ctx, err, "max_decoded_size",
                              "must be at least max_profile_size (%llu bytes)",
                              (unsigned long long)conf->max_profile_size);
    if (conf->max_attachments < 1 || conf->max_attachments > 1024)
        return sp_conf_errorf(comp->conf_ctx, err, "max_attachments",
                              "must be between 1 and 1024, got %lld",
                              (long long)conf->max_attachments);
    if (conf->retry_after_ms < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "retry_after", "must not be negative");
    if (conf->max_connections < 1 || conf->max_connections > 65536)
        return sp_conf_errorf(comp->conf_ctx, err, "max_connections",
                              "must be between 1 and 65536, got %lld",
                              (long long)conf->max_connections);

    struct pprof_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    ctx->comp = comp;
    ctx->conf = conf;
    int rc = pprof_scrape_validate(ctx, err);
    if (rc < 0) {
        pprof_scrape_free(ctx);
        free(ctx);
        return rc;
    }
    for (int d = 0; d < PPROF_DIALECT_COUNT; d++) {
        char labels[512];
        snprintf(labels, sizeof(labels), "%s,dialect=\"%s\"", comp->metric_labels,
                 pprof_dialect_names[d]);
        ctx->m[d].accepted = sp_counter("spanprof_receiver_accepted_profiles_total",
                                        "Profile uploads a receiver handed to the pipeline",
                                        labels);
        ctx->m[d].refused = sp_counter("spanprof_receiver_refused_profiles_total",
                                       "Profile uploads a receiver refused (bad input, size "
                                       "limits, full pipeline)",
                                       labels);
        ctx->m[d].dropped_attachments = sp_counter(
            "spanprof_receiver_dropped_attachments_total",
            "Bad attachments dropped from otherwise accepted profile uploads", labels);
        ctx->m[d].bytes = sp_counter("spanprof_receiver_received_bytes_total",
                                     "Body bytes a receiver read (uploads and scrape responses)",
                                     labels);
    }
    char hl[300];
    snprintf(hl, sizeof(hl), "%s,transport=\"http\"", comp->metric_labels);
    ctx->refused_unread = sp_counter("spanprof_receiver_refused_unread_requests_total",
                                     "Requests refused from their headers alone (pipeline full "
                                     "or memory ceiling), body discarded unread",
                                     hl);
    ctx->tracer_requests = sp_counter(
        "spanprof_receiver_tracer_requests_dropped_total",
        "Datadog tracer requests (traces, stats, telemetry) answered politely and dropped",
        comp->metric_labels);
    comp->ctx = ctx;
    return 0;
}

static int pprof_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    (void)host;
    struct pprof_ctx *ctx = comp->ctx;
    struct sp_httpd_opts o = {
        .endpoint = ctx->conf->endpoint,
        .max_body = (size_t)ctx->conf->max_request_size,
        .max_connections = (unsigned)ctx->conf->max_connections,
        .name = comp->id,
    };
    int rc = sp_httpd_start(comp->loop, &o, pprof_http_handler, ctx, &ctx->httpd, err);
    if (rc < 0) {
        sp_err_prefix(err, "receivers.%s.endpoint", comp->id);
        return rc;
    }
    rc = pprof_scrape_start(ctx, err);
    if (rc < 0)
        return rc;
    ctx->started = true;
    char addr[300];
    sp_log_info(comp->id, "listening on %s (Datadog agent profile intake, /v1/pprof, /ingest)%s",
                sp_conf_endpoint_bound(ctx->conf->endpoint, sp_httpd_port(ctx->httpd), addr,
                                       sizeof(addr)),
                ctx->job_count ? ", scraping" : "");
    return 0;
}

static void pprof_maybe_done(struct pprof_ctx *ctx)
{
    if (--ctx->pending_closes > 0)
        return;
    sp_done_fn done = ctx->done, again = ctx->done_again;
    ctx->done = ctx->done_again = NULL;
    ctx->stopped = true;
    if (done)
        done(ctx->comp);
    if (again)
        again(ctx->comp);
}

static void pprof_on_httpd_stopped(void *ud)
{
    pprof_maybe_done(ud);
}

static void pprof_on_scrape_stopped(struct pprof_ctx *ctx)
{
    pprof_maybe_done(ctx);
}

static void pprof_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct pprof_ctx *ctx = comp->ctx;
    if (ctx->shutting_down) {
        /* a second call: done at once if the first finished, else with it */
        if (ctx->stopped)
            done(comp);
        else
            ctx->done_again = done;
        return;
    }
    ctx->shutting_down = true;
    ctx->done = done;
    if (ctx->tracer_dropped)
        sp_log_info(comp->id, "%llu Datadog tracer requests (traces, stats, telemetry) were "
                    "answered and dropped; spans reach spanprof over OTLP only",
                    (unsigned long long)ctx->tracer_dropped);
    ctx->pending_closes = 2;
    struct sp_httpd *h = ctx->httpd;
    ctx->httpd = NULL;
    /* sp_httpd_stop answers what MHD already queued, then closes. */
    sp_httpd_stop(h, pprof_on_httpd_stopped, ctx);
    pprof_scrape_stop(ctx, pprof_on_scrape_stopped);
}

static void pprof_destroy(struct sp_component *comp)
{
    struct pprof_ctx *ctx = comp->ctx;
    if (!ctx)
        return;
    pprof_scrape_free(ctx);
    free(ctx);
    comp->ctx = NULL;
}

/* --- configuration --------------------------------------------------------- */

static const struct sp_conf_key pprof_scrape_keys[] = {
    {.name = "targets", .type = SP_CONF_STRLIST,
     .offset = offsetof(struct pprof_scrape_conf, targets), .flags = SP_CONF_REQUIRED,
     .doc = "Go services serving net/http/pprof: host:port or http(s)://host:port[/prefix]"},
    {.name = "interval", .type = SP_CONF_DURATION,
     .offset = offsetof(struct pprof_scrape_conf, interval_ms), .defval = "60s",
     .doc = "time between two scrapes of one target and profile type"},
    {.name = "profiles", .type = SP_CONF_STRLIST,
     .offset = offsetof(struct pprof_scrape_conf, profiles), .defval = "[cpu, heap]",
     .doc = "profile types to pull: cpu, heap, allocs, goroutine, mutex, block"},
    {.name = "cpu_duration", .type = SP_CONF_DURATION,
     .offset = offsetof(struct pprof_scrape_conf, cpu_duration_ms), .defval = "10s",
     .doc = "CPU profile length (/debug/pprof/profile?seconds=N), at most the interval"},
    {.name = "timeout", .type = SP_CONF_DURATION,
     .offset = offsetof(struct pprof_scrape_conf, timeout_ms), .defval = "0s",
     .doc = "per-request timeout on top of the CPU profile length; 0 means 10s"},
    {.name = "service", .type = SP_CONF_STRING,
     .offset = offsetof(struct pprof_scrape_conf, service), .defval = "",
     .doc = "service name of the scraped profiles; empty: the service of the spans their samples join (the target's host until one is known)"},
    {.name = "tags", .type = SP_CONF_STRMAP, .offset = offsetof(struct pprof_scrape_conf, tags),
     .doc = "tags of the scraped profiles (env, version and host fill those fields)"},
};

static const struct sp_conf_key pprof_keys[] = {
    {.name = "endpoint", .type = SP_CONF_STRING, .offset = offsetof(struct pprof_conf, endpoint),
     .defval = "127.0.0.1:8126",
     .doc = "listen address (the Datadog agent's port, so dd-trace profilers find it)"},
    {.name = "max_request_size", .type = SP_CONF_SIZE,
     .offset = offsetof(struct pprof_conf, max_request_size), .defval = "64MiB",
     .doc = "largest request body accepted (413 above)"},
    {.name = "max_profile_size", .type = SP_CONF_SIZE,
     .offset = offsetof(struct pprof_conf, max_profile_size), .defval = "32MiB",
     .doc = "largest pprof after decompression, enforced while inflating (also bounds "
            "scrape responses)"},
    {.name = "max_decoded_size", .type = SP_CONF_SIZE,
     .offset = offsetof(struct pprof_conf, max_decoded_size), .defval = "256MiB",
     .doc = "memory one upload may take once decoded (all its attachments)"},
    {.name = "max_attachments", .type = SP_CONF_INT,
     .offset = offsetof(struct pprof_conf, max_attachments), .defval = "32",
     .doc = "most multipart parts one upload may have"},
    {.name = "retry_after", .type = SP_CONF_DURATION,
     .offset = offsetof(struct pprof_conf, retry_after_ms), .defval = "5s",
     .doc = "Retry-After sent with 429 when the pipeline is full"},
    {.name = "accept_tracer_traffic", .type = SP_CONF_BOOL,
     .offset = offsetof(struct pprof_conf, accept_tracer_traffic), .defval = "true",
     .doc = "answer a Datadog tracer's trace, stats and telemetry posts with 200 and drop "
            "them (counted), so a tracer pointed here for profiling logs no errors"},
    {.name = "max_connections", .type = SP_CONF_INT,
     .offset = offsetof(struct pprof_conf, max_connections), .defval = "256",
     .doc = "concurrent HTTP connections"},
    {.name = "scrape", .type = SP_CONF_BLOCKLIST, .offset = offsetof(struct pprof_conf, scrape),
     .sub = pprof_scrape_keys, .sub_count = SP_CONF_END_COUNT(pprof_scrape_keys),
     .sub_size = sizeof(struct pprof_scrape_conf),
     .doc = "Go services to pull /debug/pprof profiles from"},
};

const struct sp_component_type sp_pprof_receiver_type = {
    .name = "pprof",
    .kind = SP_KIND_RECEIVER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "profiles from Datadog profilers (agent API), pprof push, Pyroscope ingest and "
           "/debug/pprof scrape",
    .conf_keys = pprof_keys,
    .conf_key_count = SP_CONF_END_COUNT(pprof_keys),
    .conf_size = sizeof(struct pprof_conf),
    .create = pprof_create,
    .start = pprof_start,
    .shutdown = pprof_shutdown,
    .destroy = pprof_destroy,
};
