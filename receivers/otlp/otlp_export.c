/* otlp receiver: the export path both transports share, and its counting,
 * for every signal (one path indexed by enum otlp_sig, so a check added
 * here applies to traces, metrics and logs alike).
 *
 * otlp_grpc.c and otlp_http.c hand a request body here: decode
 * (model/otlp_codec.c), validate, pass the batch to the pipeline (or, when
 * no pipeline takes the signal, answer success, count and warn once), count
 * the outcome and say what to answer. Also the counters and the rate-limited
 * warning the transports use for requests answered before decoding. The
 * component (otlp.c) starts the transports; the transports call down into
 * this file; nothing here calls back up. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_int.h"
#include "sp_log.h"
#include "sp_memory.h"
#include "sp_status.h"

/* A decoded request may take this many times its inflated size in the
 * batch arena (protobuf-c's structs and pointer arrays), plus a constant;
 * the fixtures decode to 2-8x. A hostile body made of empty messages hits
 * the bound and is answered as too large. */
#define OTLP_ARENA_FACTOR 16
#define OTLP_ARENA_EXTRA ((size_t)4 << 20)

/* ---- metrics and logs ---- */

static const char *const otlp_transport_names[OTLP_TRANSPORT_COUNT] = {"grpc", "http"};
static const char *const otlp_outcome_names[OTLP_OUT_COUNT] = {
    "success", "partial", "invalid", "too_large", "refused", "failed", "unsupported",
};

void otlp_metrics_create(struct otlp_ctx *ctx)
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
        ctx->refused_early[t] = sp_counter(
            "spanprof_receiver_refused_unread_requests_total",
            "Requests refused from their headers alone (pipeline full or memory ceiling), body "
            "discarded unread; also counted in requests_total outcome=refused",
            labels);
        ctx->refused_undecoded[t] = sp_counter(
            "spanprof_receiver_refused_undecoded_requests_total",
            "Requests admitted from their headers, then refused once their body was read and "
            "before decoding it, because the pipeline filled meanwhile; also counted in "
            "requests_total outcome=refused",
            labels);
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
    sp_status_note(ctx->comp->id, SP_STATUS_BAD_REQUEST, "%s", msg);
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

/* ---- admission: refuse before reading ---- */

bool otlp_admit_backlog(struct otlp_ctx *ctx, size_t bytes, struct otlp_result *res)
{
    uint64_t pending = sp_memory_used_by(SP_MEM_BODIES);
    if (pending == 0)
        return true;
    memset(res, 0, sizeof(*res));
    res->outcome = OTLP_OUT_REFUSED;
    res->code = SP_ERETRY;
    if (ctx->cost_bytes <= 0) {
        /* Nothing measured yet (a flood at start): one request at a time
         * until the first is processed, not everything the memory takes. */
        snprintf(res->message, sizeof(res->message),
                 "server busy: %" PRIu64 " bytes of requests received and waiting, and no "
                 "processing cost measured yet; retry in %d s",
                 pending, OTLP_RETRY_AFTER_S);
        return false;
    }
    double ms = (double)(pending + bytes) * ctx->cost_ns / ctx->cost_bytes / 1e6;
    if (ms <= OTLP_BACKLOG_MS)
        return true;
    snprintf(res->message, sizeof(res->message),
             "server busy: the %" PRIu64 " bytes of requests received and waiting would take "
             "about %.1f s to process, over %.1f s; retry in %d s",
             pending, ms / 1000, OTLP_BACKLOG_MS / 1000.0, OTLP_RETRY_AFTER_S);
    return false;
}

/* Learns the cost per body byte from one processed request. */
static void otlp_learn_cost(struct otlp_ctx *ctx, uint64_t ns, size_t len)
{
    if (len < 1024)
        return; /* fixed costs would dominate */
    ctx->cost_ns = ctx->cost_ns * 7 / 8 + (double)ns;
    ctx->cost_bytes = ctx->cost_bytes * 7 / 8 + (double)len;
}

/* A refusal decided before decoding: counts it (requests_total and the
 * given early counter), logs it rate-limited (`when`: "reading" or
 * "decoding"), and returns false. rc/msg: the pipeline's refusal, or
 * rc 0 when res is filled already (the backlog's). */
static bool otlp_refuse_early(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_sig s,
                              struct sp_metric *counter, const char *when, int rc,
                              const char *msg, struct otlp_result *res)
{
    if (rc != SP_OK) {
        memset(res, 0, sizeof(*res));
        res->outcome = OTLP_OUT_REFUSED;
        res->code = rc;
        snprintf(res->message, sizeof(res->message), "%s; retry in %d s", msg,
                 OTLP_RETRY_AFTER_S);
    }
    sp_metric_inc(ctx->requests[t][OTLP_OUT_REFUSED]);
    sp_metric_inc(counter);
    otlp_warn_limited(ctx, "%s %s request refused before %s it: %s", otlp_transport_names[t],
                      sp_signal_name(otlp_signals[s].signal), when,
                      rc != SP_OK ? msg : res->message);
    return false;
}

bool otlp_admit(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_sig s, size_t bytes,
                struct otlp_result *res)
{
    struct sp_err err = {0};
    int rc = sp_component_ready(ctx->comp, otlp_signals[s].signal, bytes, &err);
    if (rc == SP_OK && !otlp_admit_backlog(ctx, bytes, res))
        return otlp_refuse_early(ctx, t, s, ctx->refused_early[t], "reading", SP_OK, NULL, res);
    if (rc == SP_OK)
        return true;
    return otlp_refuse_early(ctx, t, s, ctx->refused_early[t], "reading", rc, err.msg, res);
}

bool otlp_admit_decode(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_sig s,
                       struct otlp_result *res)
{
    struct sp_err err = {0};
    int rc = sp_component_pipeline_ready(ctx->comp, otlp_signals[s].signal, &err);
    if (rc == SP_OK)
        return true;
    return otlp_refuse_early(ctx, t, s, ctx->refused_undecoded[t], "decoding", rc, err.msg,
                             res);
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
        if (sp_arena_ceiling_hit(batch->arena)) {
            /* Not the request's fault: the process is at its memory ceiling. */
            res->outcome = OTLP_OUT_REFUSED;
            res->code = SP_EFULL;
            snprintf(res->message, sizeof(res->message),
                     "memory ceiling reached while decoding (service.memory_limit); retry later");
        }
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
    uint64_t t0 = uv_hrtime();

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
    otlp_learn_cost(ctx, uv_hrtime() - t0, len);
    sp_metric_inc(ctx->requests[t][res->outcome]);
    if (res->outcome != OTLP_OUT_SUCCESS && res->outcome != OTLP_OUT_PARTIAL)
        otlp_warn_limited(ctx, "%s %s export %s: %s", otlp_transport_names[t],
                          sp_signal_name(sg->signal), otlp_outcome_names[res->outcome],
                          res->message);
    sp_batch_unref(batch);
}
