/* /v0.4/traces msgpack and JSON lines (see dd_encode.h).
 *
 * v0.4 is what tracers send an Agent (datadog-agent pkg/trace/api
 * endpoints, pb.Traces msgpack decoding in pkg/proto/pbgo/trace
 * span_msgp.go): an array of traces, each an array of span maps. What the
 * protobuf path keeps outside the span (chunk priority, the tracer
 * payload's hostname) rides on the span here. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <msgpack.h>

#include "dd_encode.h"
#include "dd_json.h"

/* A double as a JSON number; NaN and infinities have none: null. */
static int json_double(struct sp_buf *b, double d)
{
    if (isnan(d) || isinf(d))
        return sp_buf_append_str(b, "null");
    if (d == floor(d) && fabs(d) < 1e15)
        return sp_buf_printf(b, "%.0f", d);
    return sp_buf_printf(b, "%.17g", d);
}

static int mp_write(void *data, const char *buf, size_t len)
{
    return sp_buf_append((struct sp_buf *)data, buf, len) ? -1 : 0;
}

static int mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (msgpack_pack_str(pk, n))
        return -1;
    return msgpack_pack_str_body(pk, s ? s : "", n);
}

static bool span_has_metric(const Datadog__Trace__Span *d, const char *k)
{
    for (size_t i = 0; i < d->n_metrics; i++)
        if (strcmp(d->metrics[i]->key, k) == 0)
            return true;
    return false;
}

/* One /v0.4 span map. add_prio/add_host carry what the protobuf path keeps
 * in the chunk or the payload (priority on the first span, the resource's
 * host as the tracer tag _dd.hostname). */
static int mp_span(msgpack_packer *pk, const Datadog__Trace__Span *d, bool add_prio, int32_t prio,
                   const char *add_host)
{
    if (msgpack_pack_map(pk, 12) || mp_str(pk, "service") || mp_str(pk, d->service) ||
        mp_str(pk, "name") || mp_str(pk, d->name) || mp_str(pk, "resource") ||
        mp_str(pk, d->resource) || mp_str(pk, "trace_id") || msgpack_pack_uint64(pk, d->traceid) ||
        mp_str(pk, "span_id") || msgpack_pack_uint64(pk, d->spanid) || mp_str(pk, "parent_id") ||
        msgpack_pack_uint64(pk, d->parentid) || mp_str(pk, "start") ||
        msgpack_pack_int64(pk, d->start) || mp_str(pk, "duration") ||
        msgpack_pack_int64(pk, d->duration) || mp_str(pk, "error") ||
        msgpack_pack_int32(pk, d->error) || mp_str(pk, "meta") ||
        msgpack_pack_map(pk, d->n_meta + (add_host ? 1 : 0)))
        return -1;
    for (size_t i = 0; i < d->n_meta; i++)
        if (mp_str(pk, d->meta[i]->key) || mp_str(pk, d->meta[i]->value))
            return -1;
    if (add_host && (mp_str(pk, "_dd.hostname") || mp_str(pk, add_host)))
        return -1;
    if (mp_str(pk, "metrics") || msgpack_pack_map(pk, d->n_metrics + (add_prio ? 1 : 0)))
        return -1;
    for (size_t i = 0; i < d->n_metrics; i++)
        if (mp_str(pk, d->metrics[i]->key) || msgpack_pack_double(pk, d->metrics[i]->value))
            return -1;
    if (add_prio && (mp_str(pk, "_sampling_priority_v1") || msgpack_pack_double(pk, prio)))
        return -1;
    if (mp_str(pk, "type") || mp_str(pk, d->type))
        return -1;
    return 0;
}

int sp_dd_encode_v04_traces(const Datadog__Trace__AgentPayload *p,
                            const Datadog__Trace__TracerPayload *tp, struct sp_buf *out,
                            size_t *trace_count, struct sp_err *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mp_write);
    /* The Agent knows its own host; a different one from the resource
     * travels as the tracer's _dd.hostname tag. */
    const char *host = tp->hostname && *tp->hostname &&
                               strcmp(tp->hostname, p->hostname ? p->hostname : "") != 0
                           ? tp->hostname
                           : NULL;
    int r = 0;
    for (size_t j = 0; r == 0 && j < tp->n_chunks; j++) {
        const Datadog__Trace__TraceChunk *c = tp->chunks[j];
        r = msgpack_pack_array(&pk, c->n_spans);
        /* v0.4 has no chunk: the priority rides on the first span as
         * tracers send it, unless a span carries one already. */
        bool has = false;
        for (size_t k = 0; k < c->n_spans && !has; k++)
            has = span_has_metric(c->spans[k], "_sampling_priority_v1");
        for (size_t k = 0; r == 0 && k < c->n_spans; k++)
            r = mp_span(&pk, c->spans[k], k == 0 && !has, c->priority, k == 0 ? host : NULL);
    }
    if (r)
        return sp_err_set(err, SP_ENOMEM, "datadog v0.4 payload: out of memory encoding");
    *trace_count += tp->n_chunks;
    return 0;
}

int sp_dd_encode_v04_header(size_t trace_count, struct sp_buf *out, struct sp_err *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mp_write);
    if (msgpack_pack_array(&pk, trace_count))
        return sp_err_set(err, SP_ENOMEM, "datadog v0.4 payload: out of memory encoding");
    return 0;
}

int sp_dd_encode_v04(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                     size_t *trace_count, struct sp_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        n += p->tracerpayloads[i]->n_chunks;
    int rc = sp_dd_encode_v04_header(n, out, err);
    size_t done = 0;
    for (size_t i = 0; rc == 0 && i < p->n_tracerpayloads; i++)
        rc = sp_dd_encode_v04_traces(p, p->tracerpayloads[i], out, &done, err);
    if (rc)
        return rc;
    if (trace_count)
        *trace_count = n;
    return 0;
}

/* A string-to-string map as a JSON object (the three entry types share
 * key/value fields). */
#define JSON_TAGS_FN(fname, type)                                                                  \
    static int fname(struct sp_buf *b, type *const *v, size_t n)                                   \
    {                                                                                              \
        int rc = sp_buf_append_byte(b, '{');                                                       \
        for (size_t i = 0; rc == 0 && i < n; i++) {                                                \
            if (i)                                                                                 \
                rc = sp_buf_append_byte(b, ',');                                                   \
            if (rc == 0)                                                                           \
                rc = sp_dd_json_cstr(b, v[i]->key);                                                \
            if (rc == 0)                                                                           \
                rc = sp_buf_append_byte(b, ':');                                                   \
            if (rc == 0)                                                                           \
                rc = sp_dd_json_cstr(b, v[i]->value);                                              \
        }                                                                                          \
        return rc ? rc : sp_buf_append_byte(b, '}');                                               \
    }
JSON_TAGS_FN(json_meta, Datadog__Trace__Span__MetaEntry)
JSON_TAGS_FN(json_chunk_tags, Datadog__Trace__TraceChunk__TagsEntry)
JSON_TAGS_FN(json_tp_tags, Datadog__Trace__TracerPayload__TagsEntry)

int sp_dd_encode_json_lines(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                            struct sp_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n_tracerpayloads; i++) {
        const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[i];
        for (size_t j = 0; rc == 0 && j < tp->n_chunks; j++) {
            const Datadog__Trace__TraceChunk *c = tp->chunks[j];
            for (size_t k = 0; rc == 0 && k < c->n_spans; k++) {
                const Datadog__Trace__Span *d = c->spans[k];
                rc = sp_buf_printf(out,
                                   "{\"trace_id\":%" PRIu64 ",\"span_id\":%" PRIu64
                                   ",\"parent_id\":%" PRIu64 ",\"service\":",
                                   d->traceid, d->spanid, d->parentid);
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, d->service);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"name\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, d->name);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"resource\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, d->resource);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"type\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, d->type);
                if (rc == 0)
                    rc = sp_buf_printf(out,
                                       ",\"start\":%" PRId64 ",\"duration\":%" PRId64
                                       ",\"error\":%" PRId32 ",\"meta\":",
                                       d->start, d->duration, d->error);
                if (rc == 0)
                    rc = json_meta(out, d->meta, d->n_meta);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"metrics\":{");
                for (size_t x = 0; rc == 0 && x < d->n_metrics; x++) {
                    if (x)
                        rc = sp_buf_append_byte(out, ',');
                    if (rc == 0)
                        rc = sp_dd_json_cstr(out, d->metrics[x]->key);
                    if (rc == 0)
                        rc = sp_buf_append_byte(out, ':');
                    if (rc == 0)
                        rc = json_double(out, d->metrics[x]->value);
                }
                if (rc == 0)
                    rc = sp_buf_printf(out, "},\"chunk\":{\"priority\":%" PRId32 ",\"origin\":",
                                       c->priority);
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, c->origin);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"tags\":");
                if (rc == 0)
                    rc = json_chunk_tags(out, c->tags, c->n_tags);
                if (rc == 0)
                    rc = sp_buf_append_str(out, "},\"payload\":{\"hostname\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->hostname);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"env\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->env);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"container_id\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->containerid);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"language\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->languagename);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"tracer_version\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->tracerversion);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"runtime_id\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, tp->runtimeid);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"tags\":");
                if (rc == 0)
                    rc = json_tp_tags(out, tp->tags, tp->n_tags);
                if (rc == 0)
                    rc = sp_buf_append_str(out, "},\"agent\":{\"hostname\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, p->hostname);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"env\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, p->env);
                if (rc == 0)
                    rc = sp_buf_append_str(out, ",\"version\":");
                if (rc == 0)
                    rc = sp_dd_json_cstr(out, p->agentversion);
                if (rc == 0)
                    rc = sp_buf_append_str(out, "}}\n");
            }
        }
    }
    if (rc)
        return sp_err_set(err, SP_ENOMEM, "datadog json lines: out of memory encoding");
    return 0;
}
