/* Datadog spans in the encodings other than the agentless AgentPayload:
 * an Agent's /v0.4/traces msgpack (agent mode) and one JSON object per
 * span (the file exporter). Both read a mapped AgentPayload (dd_map.h). */
#ifndef SP_DD_ENCODE_H
#define SP_DD_ENCODE_H

#include <stddef.h>

#include "dd_trace.pb-c.h"
#include "sp_buf.h"
#include "sp_err.h"

/* Agent mode body: /v0.4/traces msgpack (array of traces, each an array of
 * span maps); *trace_count for X-Datadog-Trace-Count. */
int sp_dd_encode_v04(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                     size_t *trace_count, struct sp_err *err);

/* The same in pieces, for a body that gathers many tracer payloads: the
 * array header for trace_count traces, and the traces of one tracer payload
 * of p (added to *trace_count) without it. */
int sp_dd_encode_v04_header(size_t trace_count, struct sp_buf *out, struct sp_err *err);
int sp_dd_encode_v04_traces(const Datadog__Trace__AgentPayload *p,
                            const Datadog__Trace__TracerPayload *tp, struct sp_buf *out,
                            size_t *trace_count, struct sp_err *err);

/* One JSON object per span, one per line (the file exporter's traces). */
int sp_dd_encode_json_lines(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                            struct sp_err *err);

#endif
