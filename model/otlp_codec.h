/* OTLP traces, metrics and logs: decode, validate and answer, without sockets.
 *
 * The OTLP receiver's transports (gRPC on nghttp2, HTTP on sp_httpd) only
 * move bytes; everything about the payload lives here so it is unit-tested
 * and fuzzed on its own:
 *   - protobuf traces: one single-pass, descriptor-driven decoder that
 *     checks the wire format (wire types, lengths, nesting depth, with a
 *     message naming the field path and byte that failed, which protobuf-c
 *     alone cannot give and whose recursion is unbounded) and fills the
 *     protobuf-c structs in the batch arena as protobuf-c would;
 *   - protobuf metrics and logs: the same wire check first, then
 *     protobuf_c_message_unpack() into the batch arena;
 *   - OTLP/JSON (json-c): one descriptor-driven mapping onto the same
 *     protobuf-c structs for every message: lowerCamelCase and snake_case
 *     keys, hex trace/span ids, 64-bit integers as strings or numbers, enums
 *     as integers or names, unknown keys ignored, bounded depth;
 *   - validation: spans with a bad trace id, span id or parent span id are
 *     removed from the request and counted, for partial_success;
 *   - gRPC Length-Prefixed-Message framing of a unary request body, with the
 *     size limit checked from the prefix and while inflating;
 *   - encoding of ExportTraceServiceResponse and google.rpc.Status answers
 *     in protobuf or JSON.
 * All functions run on the caller's thread and keep no state. */
#ifndef SP_OTLP_CODEC_H
#define SP_OTLP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

enum sp_otlp_encoding {
    SP_OTLP_PROTOBUF = 0,
    SP_OTLP_JSON = 1,
};

/* Deepest message nesting accepted (protobuf) and the JSON tokener's depth
 * (objects and arrays both count there). A span's attribute holding arrays
 * of arrays 20 levels down still fits; a hostile 1-byte-per-level nest does
 * not reach the stack. */
#define SP_OTLP_MAX_PB_DEPTH 64
#define SP_OTLP_MAX_JSON_DEPTH 128

/* What decoding learnt besides the request. */
struct sp_otlp_decode_info {
    size_t spans_received; /* spans in the request as sent */
    size_t spans_rejected; /* removed by validation */
    /* When spans_rejected > 0: the partial_success error_message, naming the
     * first offending span and the rule it broke. */
    char message[256];
};

/* Decodes an ExportTraceServiceRequest (protobuf or JSON body, already
 * inflated) into batch->arena, validates it (see sp_otlp_validate) and sets
 * batch->u.traces.req and span_count. The batch must be a fresh
 * SP_SIGNAL_TRACES batch; its arena limit bounds the decoded size.
 * data need not outlive the call (everything is copied into the arena).
 * Errors: SP_EDECODE (message names the field path and what failed),
 * SP_ETOOBIG (the decoded request passed the arena limit), SP_ENOMEM. */
int sp_otlp_decode_traces(struct sp_batch *batch, enum sp_otlp_encoding enc, const uint8_t *data,
                          size_t len, struct sp_otlp_decode_info *info, struct sp_err *err);

/* Decodes an ExportMetricsServiceRequest or ExportLogsServiceRequest
 * (batch->signal says which; protobuf or JSON, already inflated) into
 * batch->arena and fills batch->u.otlp: the decoded request, the item count
 * (data points, log records) and the protobuf bytes to forward (a copy of
 * data for protobuf, the re-encoding for JSON). Errors as
 * sp_otlp_decode_traces. */
int sp_otlp_decode_passthrough(struct sp_batch *batch, enum sp_otlp_encoding enc,
                               const uint8_t *data, size_t len, struct sp_err *err);

/* The export request message of a signal carried over OTLP (traces,
 * metrics, logs); NULL for profiles. */
const ProtobufCMessageDescriptor *sp_otlp_request_desc(enum sp_signal s);

/* Any OTLP export request, by its descriptor (no validation), the old way:
 * sp_otlp_pb_check then protobuf_c_message_unpack() for protobuf. Metrics
 * and logs use it; for traces it is the reference the differential fuzz
 * target holds sp_otlp_pb_decode to. *out lives in arena. */
int sp_otlp_decode_msg(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                       enum sp_otlp_encoding enc, const uint8_t *data, size_t len,
                       ProtobufCMessage **out, struct sp_err *err);

/* The two trace decoders on their own (no validation); protobuf is
 * sp_otlp_pb_decode. *out lives in arena. */
int sp_otlp_decode_proto(struct sp_arena *arena, const uint8_t *data, size_t len,
                         sp_otlp_request **out, struct sp_err *err);
int sp_otlp_decode_json(struct sp_arena *arena, const uint8_t *data, size_t len,
                        sp_otlp_request **out, struct sp_err *err);
/* The OTLP/JSON mapping onto any message of the OTLP protos. */
int sp_otlp_decode_json_msg(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                            const uint8_t *data, size_t len, ProtobufCMessage **out,
                            struct sp_err *err);

/* The single-pass protobuf decoder (otlp_pb.c): for every input, the same
 * answer as sp_otlp_pb_check followed by protobuf_c_message_unpack() with
 * an arena allocator (accept or refuse; what it accepts packs to the same
 * bytes), with the check's error messages. Also refused, where protobuf-c
 * fails after the check passed (today's path reports those as SP_ETOOBIG):
 * field tags or length prefixes longer than 5 bytes, and a singular message
 * given twice where neither occurrence sets its oneof. Errors: SP_EDECODE,
 * SP_ETOOBIG (the arena's limit or memory ceiling). */
int sp_otlp_pb_decode(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                      const uint8_t *data, size_t len, ProtobufCMessage **out,
                      struct sp_err *err);

/* The wire check run before protobuf-c for metrics and logs: every field
 * of every nested message known to desc has a wire type its type allows,
 * lengths fit, varints end, nesting stays under SP_OTLP_MAX_PB_DEPTH. */
int sp_otlp_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                     struct sp_err *err);

/* Removes every span whose trace_id is not 16 bytes or all zero, whose
 * span_id is not 8 bytes or all zero, or whose parent_span_id is neither
 * empty nor 8 bytes. Returns the spans kept; info gets the counts and a
 * message naming the first rejected span. */
size_t sp_otlp_validate(sp_otlp_request *req, struct sp_otlp_decode_info *info);

/* Media type of an OTLP/HTTP Content-Type ("application/x-protobuf",
 * "application/json", with parameters such as "; charset=utf-8" ignored,
 * case-insensitive). -1 for anything else. */
int sp_otlp_content_type(const char *content_type);
const char *sp_otlp_content_type_name(enum sp_otlp_encoding enc);

/* Answers, appended to out: ExportTraceServiceResponse (partial_success set
 * only when rejected > 0 or message is non-empty) and google.rpc.Status.
 * 0 or SP_ENOMEM. */
int sp_otlp_encode_response(enum sp_otlp_encoding enc, int64_t rejected, const char *message,
                            struct sp_buf *out);
int sp_otlp_encode_status(enum sp_otlp_encoding enc, int code, const char *message,
                          struct sp_buf *out);

/* gRPC status codes used by the receiver. */
enum sp_grpc_status {
    SP_GRPC_OK = 0,
    SP_GRPC_CANCELLED = 1,
    SP_GRPC_UNKNOWN = 2,
    SP_GRPC_INVALID_ARGUMENT = 3,
    SP_GRPC_NOT_FOUND = 5,
    SP_GRPC_RESOURCE_EXHAUSTED = 8,
    SP_GRPC_UNIMPLEMENTED = 12,
    SP_GRPC_INTERNAL = 13,
    SP_GRPC_UNAVAILABLE = 14,
};

/* A unary gRPC request body, fed DATA chunk by chunk as they arrive.
 * Message boundaries are unrelated to chunk boundaries. The buffer holds at
 * most max_msg + 5 bytes: a prefix declaring more fails at once, before the
 * body is read. Zero-initialise, set max_msg, feed, finish, then free. */
struct sp_grpc_reader {
    size_t max_msg;    /* bound on the message, compressed and inflated */
    struct sp_buf buf; /* the prefix and message bytes received so far */
    bool failed;
};

/* Appends a chunk. SP_ETOOBIG when the prefix declares a message over
 * max_msg; SP_EDECODE when bytes follow the first message (a unary call
 * carries one). After an error the reader ignores further input. */
int sp_grpc_reader_feed(struct sp_grpc_reader *r, const uint8_t *p, size_t n, struct sp_err *err);

/* The end of the stream: checks that exactly one whole message arrived and
 * inflates it when its Compressed-Flag is set, per `encoding` (the
 * grpc-encoding header: gzip, zstd, deflate, identity or NULL), into scratch
 * and bounded by max_msg. *msg points into the reader or the scratch arena.
 * Errors: SP_EDECODE (truncated, no message, compressed without an
 * encoding, corrupt compressed data), SP_ETOOBIG, SP_EUNSUPPORTED (an
 * encoding we do not know). */
int sp_grpc_reader_finish(struct sp_grpc_reader *r, const char *encoding,
                          struct sp_arena *scratch, const uint8_t **msg, size_t *len,
                          struct sp_err *err);
void sp_grpc_reader_free(struct sp_grpc_reader *r);

/* Length-prefixes msg (uncompressed) into out: the gRPC response body. */
int sp_grpc_frame(const uint8_t *msg, size_t len, struct sp_buf *out);

/* Percent-encodes a grpc-message value (bytes outside 0x20-0x7e and '%'),
 * at most out_size - 1 characters, cut on an escape boundary. */
void sp_grpc_percent_encode(const char *msg, char *out, size_t out_size);

/* The grpc-status-details-bin value of a refusal to retry: a google.rpc.Status
 * with the same code and message and one google.rpc.RetryInfo detail
 * (retry_delay = retry_s seconds), base64 as gRPC carries binary headers. */
int sp_grpc_retry_details(int code, const char *message, unsigned retry_s, struct sp_buf *out);

#endif
