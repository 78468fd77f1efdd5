/* OTLP spans -> Datadog spans.
 *
 * sp_dd_map_traces() maps every span of an OTLP export exactly as the
 * Datadog Agent maps OTel spans (docs/datadog.md §4: naming from
 * dd_naming.h, error, meta/metrics with HTTP key remapping, otel.* keys,
 * events and links as JSON meta, _top_level, sampling priority), grouped
 * into chunks by trace and tracer payloads by resource. The result lives in
 * the given arena as protobuf-c datadog.trace structs, so it can be packed
 * as an AgentPayload (dd_agent_payload.h) or encoded as msgpack for an
 * Agent's /v0.4/traces or as JSON lines (dd_encode.h). */
#ifndef SP_DD_MAP_H
#define SP_DD_MAP_H

#include <stddef.h>
#include <stdbool.h>

#include "dd_trace.pb-c.h"
#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_err.h"

struct sp_dd_map_opts {
    const char *hostname;   /* exporter `hostname`, or NULL: from host.name etc. */
    const char *env;        /* exporter `env`, or NULL: from deployment.environment(.name) */
    const char *const *tags;/* exporter `tags` "k:v", NULL-terminated, may be NULL */
    const char *agent_version; /* written as agentVersion, e.g. "spanprof/0.1.0" */
    /* true: the caller is done with the payload before it releases the
     * OTLP batch (the Datadog exporter packs it inside consume), so meta and
     * metrics keys and values may point into the batch instead of being
     * copied into arena (~1.8k instructions a span, callgrind). */
    bool borrow_batch;
};

/* Maps one OTLP trace batch (req plus the join's runtime ids) into an
 * AgentPayload in arena. Spans the mapping rejects are counted in *dropped. */
int sp_dd_map_traces(const struct sp_traces *traces, const struct sp_dd_map_opts *opts,
                     struct sp_arena *arena, Datadog__Trace__AgentPayload **out, size_t *dropped,
                     struct sp_err *err);

#endif
