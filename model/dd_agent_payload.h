/* The agentless intake's AgentPayload: packed, split, compressed.
 *
 * The packer's promise: the bytes are exactly what protobuf-c's
 * datadog__trace__agent_payload__pack gives for the same message
 * (tests/unit/test_dd_payload.c and the dd_map fuzz target compare them),
 * made without re-sizing nested messages at every level. */
#ifndef SP_DD_AGENT_PAYLOAD_H
#define SP_DD_AGENT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "dd_trace.pb-c.h"
#include "sp_arena.h"
#include "sp_buf.h"
#include "sp_err.h"

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

/* An AgentPayload assembled from many mapped payloads, packed piece by
 * piece: head (the fields before tracerPayloads), then any number of
 * sp_dd_append_tracer_payload() records, then tail (the fields after) is
 * byte for byte what packing one AgentPayload with p's other fields and all
 * those tracer payloads, in that order, gives. Both append to the buffers. */
int sp_dd_agent_payload_frame(const Datadog__Trace__AgentPayload *p, struct sp_buf *head,
                              struct sp_buf *tail, struct sp_err *err);
int sp_dd_append_tracer_payload(const Datadog__Trace__TracerPayload *tp, struct sp_buf *out,
                                struct sp_err *err);
/* The same record's bytes where the packer wrote them, without copying
 * them into a buffer of the caller's: rec->data[0 .. rec->len) until
 * sp_dd_packed_free(rec); rec->cap is the memory it holds. */
struct sp_dd_packed {
    uint8_t *block; /* what sp_dd_packed_free releases */
    const uint8_t *data;
    size_t len, cap;
};
int sp_dd_pack_tracer_payload(const Datadog__Trace__TracerPayload *tp, struct sp_dd_packed *rec,
                              struct sp_err *err);
void sp_dd_packed_free(struct sp_dd_packed *rec);
/* Bytes of p's fields other than tracerPayloads, packed: p packs to this
 * plus the sp_dd_append_tracer_payload() records of its tracer payloads
 * (so a caller that packed those knows p's packed size without a second
 * size pass over its spans). */
size_t sp_dd_agent_payload_frame_size(const Datadog__Trace__AgentPayload *p);

#endif
