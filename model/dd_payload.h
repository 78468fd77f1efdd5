/* OTLP spans -> Datadog spans and trace payloads.
 *
 * sp_dd_map_traces() maps every span of an OTLP export exactly as the
 * Datadog Agent maps OTel spans (docs/datadog.md §4: naming from
 * dd_naming.h, error, meta/metrics with HTTP key remapping, otel.* keys,
 * events and links as JSON meta, _top_level, sampling priority), grouped
 * into chunks by trace and tracer payloads by resource. The result lives in
 * the given arena as protobuf-c datadog.trace structs, so it can be packed
 * as an AgentPayload (agentless intake) or encoded as msgpack for an
 * Agent's /v0.4/traces. */
#ifndef SP_DD_PAYLOAD_H
#define SP_DD_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "dd_trace.pb-c.h"
#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

struct sp_dd_map_opts {
    const char *hostname;   /* exporter `hostname`, or NULL: from host.name etc. */
    const char *env;        /* exporter `env`, or NULL: from deployment.environment(.name) */
    const char *const *tags;/* exporter `tags` "k:v", NULL-terminated, may be NULL */
    const char *agent_version; /* written as agentVersion, e.g. "spanprof/0.1.0" */
};

/* Maps one OTLP trace batch (req plus the join's runtime ids) into an
 * AgentPayload in arena. Spans the mapping rejects are counted in *dropped. */
int sp_dd_map_traces(const struct sp_traces *traces, const struct sp_dd_map_opts *opts,
                     struct sp_arena *arena, Datadog__Trace__AgentPayload **out, size_t *dropped,
                     struct sp_err *err);

/* Splits a payload into parts whose packed size stays below max_bytes
 * (3.2 MB for the intake), never splitting a chunk. */
int sp_dd_split_payload(const Datadog__Trace__AgentPayload *p, size_t max_bytes,
                        struct sp_arena *arena, Datadog__Trace__AgentPayload ***parts,
                        size_t *n_parts, struct sp_err *err);

/* The packed AgentPayload protobuf (the bytes protobuf-c's pack gives,
 * made without re-sizing nested messages), malloc'd into *data. */
int sp_dd_pack_agent_payload(const Datadog__Trace__AgentPayload *p, uint8_t **data, size_t *len,
                             struct sp_err *err);

/* Agentless body: packed AgentPayload, gzip level 1, appended to out. */
int sp_dd_encode_agent_payload(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                               struct sp_err *err);

/* Agent mode body: /v0.4/traces msgpack (array of traces, each an array of
 * span maps); *trace_count for X-Datadog-Trace-Count. */
int sp_dd_encode_v04(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                     size_t *trace_count, struct sp_err *err);

/* One JSON object per span, one per line (the file exporter's traces). */
int sp_dd_encode_json_lines(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                            struct sp_err *err);

#endif
