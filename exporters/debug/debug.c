/* debug exporter: writes every batch it receives as JSON lines.
 *
 * Like the Collector's `debug` exporter, for looking at what reaches the end
 * of a pipeline: one line per span (OTLP fields, hex ids, attributes as JSON)
 * and one line per profile envelope (envelope fields, attachments, sample
 * counts). With `pprof_dir`, every pprof attachment is also written there
 * (gzipped, re-encoded when the join changed it) for `go tool pprof`.
 * Writes are synchronous on the loop: this is a debugging aid, not a sink
 * for production rates. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pprof_codec.h"
#include "sp_buf.h"
#include "sp_component.h"
#include "sp_log.h"
#include "sp_metrics.h"
#include "sp_text.h"

struct debug_conf {
    char *path;
    char *pprof_dir;
};

struct debug_ctx {
    struct debug_conf *conf;
    FILE *out;
    uint64_t seq;
    struct sp_metric *spans;
    struct sp_metric *profiles;
    struct sp_metric *failed;
};

static void debug_hex(struct sp_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sp_buf_append_byte(b, '"');
    for (size_t i = 0; i < n; i++) {
        sp_buf_append_byte(b, (uint8_t)hex[p[i] >> 4]);
        sp_buf_append_byte(b, (uint8_t)hex[p[i] & 15]);
    }
    sp_buf_append_byte(b, '"');
}

static void debug_base64(struct sp_buf *b, const uint8_t *p, size_t n)
{
    sp_buf_append_byte(b, '"');
    sp_buf_append_base64(b, p, n);
    sp_buf_append_byte(b, '"');
}

static void debug_str(struct sp_buf *b, const char *s)
{
    if (!s)
        sp_buf_append_str(b, "null");
    else
        sp_buf_append_json_str(b, s, strlen(s));
}

static void debug_attrs(struct sp_buf *b, sp_otlp_kv *const *kv, size_t n);

static void debug_any(struct sp_buf *b, const sp_otlp_any *v)
{
    if (!v) {
        sp_buf_append_str(b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        debug_str(b, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sp_buf_append_str(b, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        sp_buf_printf(b, "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (v->double_value != v->double_value || v->double_value * 0 != 0)
            sp_buf_append_str(b, "null"); /* NaN and infinities have no JSON form */
        else
            sp_buf_printf(b, "%.17g", v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sp_buf_append_byte(b, '[');
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            if (i)
                sp_buf_append_byte(b, ',');
            debug_any(b, v->array_value->values[i]);
        }
        sp_buf_append_byte(b, ']');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value)
            debug_attrs(b, v->kvlist_value->values, v->kvlist_value->n_values);
        else
            sp_buf_append_str(b, "{}");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        debug_base64(b, v->bytes_value.data, v->bytes_value.len);
        break;
    default:
        sp_buf_append_str(b, "null");
    }
}

static void debug_attrs(struct sp_buf *b, sp_otlp_kv *const *kv, size_t n)
{
    sp_buf_append_byte(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp_buf_append_byte(b, ',');
        debug_str(b, kv[i]->key ? kv[i]->key : "");
        sp_buf_append_byte(b, ':');
        debug_any(b, kv[i]->value);
    }
    sp_buf_append_byte(b, '}');
}

static const char *debug_runtime_id(const struct sp_traces *t, const char *service)
{
    for (size_t i = 0; service && i < t->runtime_id_count; i++)
        if (t->runtime_ids[i].service && strcmp(t->runtime_ids[i].service, service) == 0)
            return t->runtime_ids[i].runtime_id;
    return NULL;
}

static const char *debug_service_name(const sp_otlp_resource_spans *rs)
{
    if (!rs->resource)
        return NULL;
    for (size_t i = 0; i < rs->resource->n_attributes; i++) {
        const sp_otlp_kv *kv = rs->resource->attributes[i];
        if (kv->key && strcmp(kv->key, "service.name") == 0 && kv->value &&
            kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return kv->value->string_value;
    }
    return NULL;
}

static void debug_span(struct sp_buf *b, const sp_otlp_resource_spans *rs,
                       const sp_otlp_scope_spans *ss, const sp_otlp_span *s, const char *runtime_id)
{
    sp_buf_append_str(b, "{\"signal\":\"traces\",\"resource\":");
    if (rs->resource)
        debug_attrs(b, rs->resource->attributes, rs->resource->n_attributes);
    else
        sp_buf_append_str(b, "{}");
    sp_buf_append_str(b, ",\"scope\":");
    debug_str(b, ss->scope ? ss->scope->name : NULL);
    sp_buf_append_str(b, ",\"trace_id\":");
    debug_hex(b, s->trace_id.data, s->trace_id.len);
    sp_buf_append_str(b, ",\"span_id\":");
    debug_hex(b, s->span_id.data, s->span_id.len);
    sp_buf_append_str(b, ",\"parent_span_id\":");
    debug_hex(b, s->parent_span_id.data, s->parent_span_id.len);
    sp_buf_append_str(b, ",\"name\":");
    debug_str(b, s->name);
    sp_buf_printf(b, ",\"kind\":%d,\"flags\":%" PRIu32 ",\"start\":\"%" PRIu64 "\",\"end\":\"%" PRIu64 "\"",
                  (int)s->kind, s->flags, s->start_time_unix_nano, s->end_time_unix_nano);
    sp_buf_printf(b, ",\"status\":{\"code\":%d,\"message\":", s->status ? (int)s->status->code : 0);
    debug_str(b, s->status && s->status->message ? s->status->message : "");
    sp_buf_append_str(b, "},\"attributes\":");
    debug_attrs(b, s->attributes, s->n_attributes);
    sp_buf_append_str(b, ",\"events\":[");
    for (size_t i = 0; i < s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
        if (i)
            sp_buf_append_byte(b, ',');
        sp_buf_append_str(b, "{\"name\":");
        debug_str(b, e->name);
        sp_buf_printf(b, ",\"time\":\"%" PRIu64 "\",\"attributes\":", e->time_unix_nano);
        debug_attrs(b, e->attributes, e->n_attributes);
        sp_buf_append_byte(b, '}');
    }
    sp_buf_append_str(b, "],\"links\":[");
    for (size_t i = 0; i < s->n_links; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[i];
        if (i)
            sp_buf_append_byte(b, ',');
        sp_buf_append_str(b, "{\"trace_id\":");
        debug_hex(b, l->trace_id.data, l->trace_id.len);
        sp_buf_append_str(b, ",\"span_id\":");
        debug_hex(b, l->span_id.data, l->span_id.len);
        sp_buf_printf(b, ",\"flags\":%" PRIu32 ",\"attributes\":", l->flags);
        debug_attrs(b, l->attributes, l->n_attributes);
        sp_buf_append_byte(b, '}');
    }
    sp_buf_append_str(b, "],\"runtime_id\":");
    debug_str(b, runtime_id);
    sp_buf_append_str(b, "}\n");
}

static void debug_traces(struct debug_ctx *ctx, const struct sp_traces *t, struct sp_buf *b)
{
    if (!t->req)
        return;
    for (size_t i = 0; i < t->req->n_resource_spans; i++) {
        const sp_otlp_resource_spans *rs = t->req->resource_spans[i];
        const char *rid = debug_runtime_id(t, debug_service_name(rs));
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++)
                debug_span(b, rs, ss, ss->spans[k], rid);
            sp_metric_add(ctx->spans, (double)ss->n_spans);
        }
    }
}

/* Keeps file names to a safe alphabet: service names come from the network. */
static void debug_safe_name(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in && *in && n + 1 < cap; in++)
        out[n++] = (char)((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') ||
                                  (*in >= '0' && *in <= '9') || *in == '-' || *in == '.' || *in == '_'
                              ? *in
                              : '_');
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "unknown");
}

static int debug_write_pprof(struct debug_ctx *ctx, const struct sp_profile *p,
                             const struct sp_attachment *a, char *path, size_t cap)
{
    char svc[64], name[128];
    debug_safe_name(svc, sizeof(svc), p->service);
    debug_safe_name(name, sizeof(name), a->name);
    snprintf(path, cap, "%s/%06" PRIu64 "-%s-%s", ctx->conf->pprof_dir, ctx->seq, svc, name);
    struct sp_buf out = {0};
    struct sp_err err = {0};
    int rc = 0;
    if (a->modified || a->compression != SP_COMPRESSION_GZIP) {
        rc = sp_pprof_encode(a->pprof, SP_COMPRESSION_GZIP, &out, &err);
    } else {
        rc = sp_buf_append(&out, a->data, a->len);
    }
    FILE *f = rc == 0 ? fopen(path, "wb") : NULL;
    if (!f || fwrite(out.data, 1, out.len, f) != out.len) {
        sp_log_warn(NULL, "debug: cannot write '%s': %s", path, rc ? err.msg : strerror(errno));
        rc = SP_EIO;
    }
    if (f && fclose(f) != 0)
        rc = SP_EIO;
    sp_buf_free(&out);
    return rc;
}

static void debug_profile(struct debug_ctx *ctx, const struct sp_profile *p, struct sp_buf *b)
{
    /* The envelope's string fields, in output order. */
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"dialect", offsetof(struct sp_profile, dialect)},
        {"service", offsetof(struct sp_profile, service)},
        {"env", offsetof(struct sp_profile, env)},
        {"version", offsetof(struct sp_profile, version)},
        {"host", offsetof(struct sp_profile, host)},
        {"runtime_id", offsetof(struct sp_profile, runtime_id)},
        {"family", offsetof(struct sp_profile, family)},
        {"profile_type", offsetof(struct sp_profile, profile_type)},
    };
    ctx->seq++;
    sp_buf_append_str(b, "{\"signal\":\"profiles\"");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        sp_buf_printf(b, ",\"%s\":", fields[i].key);
        debug_str(b, *(const char *const *)((const char *)p + fields[i].offset));
    }
    sp_buf_printf(b, ",\"start_ns\":%" PRId64 ",\"end_ns\":%" PRId64 ",\"tags\":{", p->start_ns,
                  p->end_ns);
    for (size_t i = 0; i < p->tag_count; i++) {
        if (i)
            sp_buf_append_byte(b, ',');
        debug_str(b, p->tags[i].key ? p->tags[i].key : "");
        sp_buf_append_byte(b, ':');
        debug_str(b, p->tags[i].value ? p->tags[i].value : "");
    }
    sp_buf_append_str(b, "},\"origin\":");
    debug_str(b, p->origin);
    sp_buf_append_str(b, ",\"origin_version\":");
    debug_str(b, p->origin_version);
    sp_buf_append_str(b, ",\"container_id\":");
    debug_str(b, p->container_id);
    sp_buf_append_str(b, ",\"endpoint_counts\":{");
    for (size_t i = 0; i < p->endpoint_count_count; i++) {
        if (i)
            sp_buf_append_byte(b, ',');
        debug_str(b, p->endpoint_counts[i].endpoint ? p->endpoint_counts[i].endpoint : "");
        sp_buf_printf(b, ":%" PRId64, p->endpoint_counts[i].count);
    }
    sp_buf_append_str(b, "},\"attachments\":[");
    for (size_t i = 0; i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        if (i)
            sp_buf_append_byte(b, ',');
        sp_buf_append_str(b, "{\"name\":");
        debug_str(b, a->name);
        sp_buf_printf(b, ",\"bytes\":%zu,\"compression\":\"%s\",\"modified\":%s,\"pprof\":", a->len,
                      a->compression == SP_COMPRESSION_GZIP   ? "gzip"
                      : a->compression == SP_COMPRESSION_ZSTD ? "zstd"
                                                              : "none",
                      a->modified ? "true" : "false");
        if (!a->pprof) {
            sp_buf_append_str(b, "null}");
            continue;
        }
        sp_buf_printf(b, "{\"samples\":%zu,\"sample_types\":[", a->pprof->n_sample);
        for (size_t t = 0; t < a->pprof->n_sample_type; t++) {
            const char *ty = sp_pprof_str(a->pprof, a->pprof->sample_type[t]->type);
            const char *un = sp_pprof_str(a->pprof, a->pprof->sample_type[t]->unit);
            if (t)
                sp_buf_append_byte(b, ',');
            sp_buf_append_byte(b, '"');
            sp_buf_printf(b, "%s/%s", ty ? ty : "", un ? un : "");
            sp_buf_append_byte(b, '"');
        }
        sp_buf_append_str(b, "],\"file\":");
        char path[1024];
        if (ctx->conf->pprof_dir && ctx->conf->pprof_dir[0] &&
            debug_write_pprof(ctx, p, a, path, sizeof(path)) == 0)
            debug_str(b, path);
        else
            sp_buf_append_str(b, "null");
        sp_buf_append_str(b, "}}");
    }
    sp_buf_append_str(b, "]}\n");
    sp_metric_inc(ctx->profiles);
}

static int debug_consume(struct sp_component *comp, struct sp_batch *batch)
{
    struct debug_ctx *ctx = comp->ctx;
    struct sp_buf b = {0};
    if (batch->signal == SP_SIGNAL_TRACES)
        debug_traces(ctx, &batch->u.traces, &b);
    else
        debug_profile(ctx, &batch->u.profile, &b);
    if (b.len && (fwrite(b.data, 1, b.len, ctx->out) != b.len || fflush(ctx->out) != 0)) {
        sp_metric_inc(ctx->failed);
        sp_log_warn(comp->id, "cannot write to '%s': %s", ctx->conf->path ? ctx->conf->path : "stderr",
                    strerror(errno));
    }
    sp_buf_free(&b);
    return SP_OK;
}

static int debug_create(struct sp_component *comp, struct sp_err *err)
{
    struct debug_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    ctx->conf = comp->conf;
    ctx->spans = sp_counter("spanprof_exporter_sent_spans_total", "Spans an exporter delivered",
                            comp->metric_labels);
    ctx->profiles = sp_counter("spanprof_exporter_sent_profiles_total",
                               "Profiles an exporter delivered", comp->metric_labels);
    ctx->failed = sp_counter("spanprof_exporter_write_errors_total",
                             "Writes an exporter could not complete", comp->metric_labels);
    comp->ctx = ctx;
    return 0;
}

static int debug_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    (void)host;
    struct debug_ctx *ctx = comp->ctx;
    if (ctx->conf->path && ctx->conf->path[0]) {
        ctx->out = fopen(ctx->conf->path, "a");
        if (!ctx->out)
            return sp_err_set(err, SP_EIO, "cannot open '%s': %s", ctx->conf->path, strerror(errno));
    } else {
        ctx->out = stderr;
    }
    if (ctx->conf->pprof_dir && ctx->conf->pprof_dir[0] && mkdir(ctx->conf->pprof_dir, 0755) != 0 &&
        errno != EEXIST)
        return sp_err_set(err, SP_EIO, "cannot create '%s': %s", ctx->conf->pprof_dir,
                          strerror(errno));
    return 0;
}

static void debug_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct debug_ctx *ctx = comp->ctx;
    if (ctx->out && ctx->out != stderr) {
        fclose(ctx->out);
        ctx->out = NULL;
    }
    done(comp);
}

static void debug_destroy(struct sp_component *comp)
{
    struct debug_ctx *ctx = comp->ctx;
    if (ctx && ctx->out && ctx->out != stderr)
        fclose(ctx->out);
    free(ctx);
    comp->ctx = NULL;
}

static const struct sp_conf_key debug_keys[] = {
    {.name = "path", .type = SP_CONF_STRING, .offset = offsetof(struct debug_conf, path),
     .defval = "", .doc = "file the JSON lines are appended to; empty writes to stderr"},
    {.name = "pprof_dir", .type = SP_CONF_STRING, .offset = offsetof(struct debug_conf, pprof_dir),
     .defval = "", .doc = "directory every pprof attachment is also written to (gzipped); empty: none"},
};

const struct sp_component_type sp_debug_exporter_type = {
    .name = "debug",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "writes every span and profile it receives as JSON lines (and pprof files), for debugging",
    .conf_keys = debug_keys,
    .conf_key_count = sizeof(debug_keys) / sizeof(debug_keys[0]),
    .conf_size = sizeof(struct debug_conf),
    .create = debug_create,
    .start = debug_start,
    .consume = debug_consume,
    .shutdown = debug_shutdown,
    .destroy = debug_destroy,
};
