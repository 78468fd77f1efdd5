/* Datadog's names for an OpenTelemetry span: service, operation name,
 * resource and span type, computed exactly as the Datadog Agent does for
 * OTLP spans (../shared/spec/datadog.md §4.3-4.7, "V2" rules:
 * span attributes before resource attributes, http.request.method before
 * http.method, `_OTHER` -> "HTTP", ...).
 *
 * One implementation serves both the join processor (the `trace endpoint`
 * label is the local root's resource) and the Datadog exporter (the trace's
 * resource), so the two are byte-equal by construction.
 *
 * Results are written into the caller's arena. None of these fail except
 * on ENOMEM (NULL). */
#ifndef SP_DD_NAMING_H
#define SP_DD_NAMING_H

#include <stdbool.h>

#include "sp_arena.h"
#include "sp_batch.h"

/* The inputs the rules look at: one span and its resource attributes. */
struct sp_dd_span_ctx {
    const sp_otlp_span *span;
    sp_otlp_kv *const *resource_attrs; /* may be NULL */
    size_t n_resource_attrs;
    const char *scope_name;            /* instrumentation scope name, may be NULL */
};

/* Looks an attribute up by the V2 precedence: span attributes first, then
 * resource attributes. Returns the value rendered as a string (ints and
 * doubles formatted like the agent does), or NULL when absent/empty. */
const char *sp_dd_attr(const struct sp_dd_span_ctx *c, const char *key, struct sp_arena *a);

const char *sp_dd_service(const struct sp_dd_span_ctx *c, struct sp_arena *a);
const char *sp_dd_operation_name(const struct sp_dd_span_ctx *c, struct sp_arena *a);
const char *sp_dd_resource(const struct sp_dd_span_ctx *c, struct sp_arena *a);
const char *sp_dd_span_type(const struct sp_dd_span_ctx *c, struct sp_arena *a);

/* The PII rule for endpoint labels: only local roots whose Datadog span type
 * is web, rpc or empty/custom-without-type get an endpoint (never db
 * statements, cache commands, ...). */
bool sp_dd_endpoint_allowed(const char *span_type);

/* Added by the join engineer (additive): helpers the exporter may share.
 * sp_dd_any_string renders a value as pdata's AsString() does (ints in
 * decimal, doubles as Go/ES6 shortest form, bytes base64, arrays and maps as
 * JSON with sorted keys); the result may point into v. */
const char *sp_dd_any_string(const sp_otlp_any *v, struct sp_arena *a);
/* The agent's NormalizeTagValue (lowercase, invalid runs -> '_', 200 chars)
 * and NormalizeName (operation names, 100 chars). May return s itself when
 * it is already normal. NULL on ENOMEM. */
const char *sp_dd_normalize_tag_value(const char *s, struct sp_arena *a);
const char *sp_dd_normalize_name(const char *s, struct sp_arena *a);
/* Meta span.kind: "server", "client", ..., "unspecified". */
const char *sp_dd_span_kind_name(int otlp_kind);

/* Span ids as Datadog numbers: the 8 bytes big-endian as uint64; trace id:
 * the low 64 bits (last 8 bytes) of the 16-byte id. 0 when the length is wrong. */
uint64_t sp_dd_span_id(const uint8_t *id, size_t len);
uint64_t sp_dd_trace_id_low(const uint8_t *id, size_t len);
uint64_t sp_dd_trace_id_high(const uint8_t *id, size_t len);

#endif
