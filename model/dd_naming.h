/* Datadog's names for an OpenTelemetry span: service, operation name,
 * resource and span type, computed exactly as the Datadog Agent does for
 * OTLP spans (docs/datadog.md §4.3-4.7, "V2" rules:
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
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"

/* The attribute keys the Datadog rules ask for (naming, meta/metrics,
 * HTTP remapping), as small integers. sp_dd_key_name() gives the key. */
enum sp_dd_key {
    SP_DD_K_SERVICE_NAME,
    SP_DD_K_RESOURCE_NAME,
    SP_DD_K_OPERATION_NAME,
    SP_DD_K_SPAN_TYPE,
    SP_DD_K_HTTP_REQUEST_METHOD,
    SP_DD_K_HTTP_METHOD,
    SP_DD_K_HTTP_ROUTE,
    SP_DD_K_MESSAGING_OPERATION,
    SP_DD_K_MESSAGING_DESTINATION,
    SP_DD_K_MESSAGING_DESTINATION_NAME,
    SP_DD_K_MESSAGING_SYSTEM,
    SP_DD_K_RPC_METHOD,
    SP_DD_K_RPC_SERVICE,
    SP_DD_K_RPC_SYSTEM,
    SP_DD_K_GRAPHQL_OPERATION_TYPE,
    SP_DD_K_GRAPHQL_OPERATION_NAME,
    SP_DD_K_DB_SYSTEM_NAME,
    SP_DD_K_DB_SYSTEM,
    SP_DD_K_DB_STATEMENT,
    SP_DD_K_DB_QUERY_TEXT,
    SP_DD_K_FAAS_INVOKED_PROVIDER,
    SP_DD_K_FAAS_INVOKED_NAME,
    SP_DD_K_FAAS_TRIGGER,
    SP_DD_K_NETWORK_PROTOCOL_NAME,
    SP_DD_K_HTTP_STATUS_CODE,
    SP_DD_K_HTTP_RESPONSE_STATUS_CODE,
    SP_DD_K_DD_MEASURED,
    SP_DD_K_SERVICE_VERSION,
    SP_DD_K_DEPLOYMENT_ENVIRONMENT_NAME,
    SP_DD_K_DEPLOYMENT_ENVIRONMENT,
    SP_DD_K_DB_NAMESPACE,
    SP_DD_K_CLIENT_ADDRESS,
    SP_DD_K_HTTP_RESPONSE_BODY_SIZE,
    SP_DD_K_HTTP_REQUEST_BODY_SIZE,
    SP_DD_K_HTTP_REQUEST_HEADER_REFERRER,
    SP_DD_K_NETWORK_PROTOCOL_VERSION,
    SP_DD_K_SERVER_ADDRESS,
    SP_DD_K_URL_FULL,
    SP_DD_K_USER_AGENT_ORIGINAL,
    SP_DD_K_ANALYTICS_EVENT,
    SP_DD_K_SAMPLING_PRIORITY,
    SP_DD_K_SERVICE_INSTANCE_ID,
    SP_DD_K_HOST_NAME,
    SP_DD_K_RPC_GRPC_STATUS_CODE,
    SP_DD_K_GRPC_CODE,
    SP_DD_K_RPC_GRPC_STATUS_DOT_CODE,
    SP_DD_K_GRPC_STATUS_DOT_CODE,
    SP_DD_KEY_COUNT
};

/* Which of those keys an attribute list holds: for each, the first entry
 * with exactly that key (pdata's Map.Get), or NULL. Built in one pass so
 * every rule looks a key up in O(1) instead of scanning the list. */
struct sp_dd_keys {
    const sp_otlp_kv *kv[SP_DD_KEY_COUNT];
};

/* The enum value of a key (len = strlen(key)), or -1 when it is not one. */
int sp_dd_key_id(const char *key, size_t len);
const char *sp_dd_key_name(enum sp_dd_key k);
/* Indexes kv[0..n). ids, when not NULL, receives each entry's key id (-1
 * for other keys and NULL entries), n of them. */
void sp_dd_keys_index(struct sp_dd_keys *k, sp_otlp_kv *const *kv, size_t n, int8_t *ids);

/* The inputs the rules look at: one span and its resource attributes. */
struct sp_dd_span_ctx {
    const sp_otlp_span *span;
    sp_otlp_kv *const *resource_attrs; /* may be NULL */
    size_t n_resource_attrs;
    const char *scope_name;            /* instrumentation scope name, may be NULL */
    /* Optional (NULL: the lists are scanned): sp_dd_keys_index() of
     * span->attributes and of resource_attrs. Same results either way. */
    const struct sp_dd_keys *span_keys;
    const struct sp_dd_keys *resource_keys;
};

/* Looks an attribute up by the V2 precedence: span attributes first, then
 * resource attributes, any type rendered as a string (ints and doubles
 * formatted like the agent does). NULL when absent/empty. The concepts
 * (names, sp_dd_attr_key) read string attributes only. */
const char *sp_dd_attr(const struct sp_dd_span_ctx *c, const char *key, struct sp_arena *a);
/* A known key's string value, without the copy: the result may point into
 * the span's batch. */
const char *sp_dd_attr_key(const struct sp_dd_span_ctx *c, enum sp_dd_key k, struct sp_arena *a);
/* A known key read as the registry reads an int64 concept (_dd.measured,
 * http.status_code's int form): an int attribute or an exact-integer
 * double, span before resource. false when neither holds one. */
bool sp_dd_attr_int(const struct sp_dd_span_ctx *c, enum sp_dd_key k, int64_t *out);

const char *sp_dd_service(const struct sp_dd_span_ctx *c, struct sp_arena *a);
/* In the arena, or a string literal (the fixed names: never written to). */
const char *sp_dd_operation_name(const struct sp_dd_span_ctx *c, struct sp_arena *a);
const char *sp_dd_resource(const struct sp_dd_span_ctx *c, struct sp_arena *a);
const char *sp_dd_span_type(const struct sp_dd_span_ctx *c, struct sp_arena *a);

/* Whether a local root gets a `trace endpoint` label (and counts in
 * endpoint_counts), as dd-trace-go decides (ddtrace/tracer/tracer.go,
 * applyPPROFLabels with spanResourcePIISafe: span type web, rpc or empty):
 * roots typed web or rpc (SERVER roots, or span.type) and untyped roots
 * (INTERNAL or UNSPECIFIED kind without span.type); never CLIENT, PRODUCER
 * or CONSUMER roots (dd-trace-go's http/db/queue types), and never a root
 * whose resource is its database statement or query text. label_all_roots
 * is the wider rule (processors.join.label_all_roots): every root whose
 * type sp_dd_endpoint_allowed() accepts, whatever its resource. On true,
 * *endpoint is the root's resource (NULL on ENOMEM). */
bool sp_dd_root_endpoint(const struct sp_dd_span_ctx *c, bool label_all_roots,
                         struct sp_arena *a, const char **endpoint);
/* The wider rule's type test: web, rpc, custom or empty. */
bool sp_dd_endpoint_allowed(const char *span_type);

/* Added by the join engineer (additive): helpers the exporter may share.
 * sp_dd_any_string renders a value as pdata's AsString() does (ints in
 * decimal, doubles as Go/ES6 shortest form, bytes base64, arrays and maps as
 * JSON with sorted keys); the result may point into v. */
const char *sp_dd_any_string(const sp_otlp_any *v, struct sp_arena *a);
/* The value of the first attribute named key (pdata's Map.Get), or NULL. */
const sp_otlp_any *sp_dd_kv_find(sp_otlp_kv *const *kv, size_t n, const char *key);
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
