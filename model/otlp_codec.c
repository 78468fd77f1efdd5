/* OTLP traces codec: protobuf decode, span validation, gRPC unary framing
 * and the answers (see otlp_codec.h). The protobuf wire work is in
 * otlp_pb.c: traces go through its single-pass decoder, metrics and logs
 * through its wire check and then protobuf_c_message_unpack(), which also
 * serves as the reference the trace decoder is fuzzed against. JSON is in
 * otlp_json.c. */
#include "otlp_codec.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sp_assert.h"
#include "sp_compress.h"

#include "google_rpc_status.pb-c.h"


static int otlp_decode_pb(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                          const uint8_t *data, size_t len, ProtobufCMessage **out,
                          struct sp_err *err)
{
    int rc = sp_otlp_pb_check(desc, data, len, err);
    if (rc)
        return rc;
    ProtobufCAllocator alloc;
    sp_arena_pb_allocator(arena, &alloc);
    size_t before = sp_arena_bytes(arena);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &alloc, len, data);
    if (!m) {
        /* The wire check passed, so what failed is an allocation: the
         * arena's limit, which scales with the body size. */
        return sp_err_set(err, SP_ETOOBIG,
                          "request of %zu bytes needs more than the %zu bytes of memory its "
                          "size allows once decoded",
                          len, sp_arena_bytes(arena) - before);
    }
    *out = m;
    return 0;
}

int sp_otlp_decode_proto(struct sp_arena *arena, const uint8_t *data, size_t len,
                         sp_otlp_request **out, struct sp_err *err)
{
    return sp_otlp_pb_decode(arena, sp_otlp_request_desc(SP_SIGNAL_TRACES), data, len,
                             (ProtobufCMessage **)out, err);
}

const ProtobufCMessageDescriptor *sp_otlp_request_desc(enum sp_signal s)
{
    static const ProtobufCMessageDescriptor *const requests[SP_SIGNAL_COUNT] = {
        [SP_SIGNAL_TRACES] =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        [SP_SIGNAL_METRICS] =
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        [SP_SIGNAL_LOGS] =
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
    };
    return (unsigned)s < SP_SIGNAL_COUNT ? requests[s] : NULL;
}

int sp_otlp_decode_msg(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                       enum sp_otlp_encoding enc, const uint8_t *data, size_t len,
                       ProtobufCMessage **out, struct sp_err *err)
{
    return enc == SP_OTLP_JSON ? sp_otlp_decode_json_msg(arena, desc, data, len, out, err)
                               : otlp_decode_pb(arena, desc, data, len, out, err);
}

/* ---- validation --------------------------------------------------------- */

static bool otlp_all_zero(const ProtobufCBinaryData *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i])
            return false;
    return true;
}

/* NULL when the span is valid, else what is wrong with it. */
static const char *otlp_span_problem(const sp_otlp_span *s, char *buf, size_t size)
{
    if (s->trace_id.len != 16) {
        snprintf(buf, size, "trace_id is %zu bytes, expected 16", s->trace_id.len);
        return buf;
    }
    if (otlp_all_zero(&s->trace_id))
        return "trace_id is all zeroes";
    if (s->span_id.len != 8) {
        snprintf(buf, size, "span_id is %zu bytes, expected 8", s->span_id.len);
        return buf;
    }
    if (otlp_all_zero(&s->span_id))
        return "span_id is all zeroes";
    if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8) {
        snprintf(buf, size, "parent_span_id is %zu bytes, expected 8 or none",
                 s->parent_span_id.len);
        return buf;
    }
    return NULL;
}

size_t sp_otlp_validate(sp_otlp_request *req, struct sp_otlp_decode_info *info)
{
    size_t kept = 0, seen = 0, rejected = 0;
    char why[96];
    info->message[0] = '\0';
    for (size_t i = 0; req && i < req->n_resource_spans; i++) {
        sp_otlp_resource_spans *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            sp_otlp_scope_spans *ss = rs->scope_spans[j];
            size_t w = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                const char *problem = otlp_span_problem(ss->spans[k], why, sizeof(why));
                seen++;
                if (!problem) {
                    ss->spans[w++] = ss->spans[k];
                    continue;
                }
                if (rejected++ == 0)
                    snprintf(info->message, sizeof(info->message),
                             "resource_spans[%zu].scope_spans[%zu].spans[%zu]: %s", i, j, k,
                             problem);
            }
            ss->n_spans = w;
            kept += w;
        }
    }
    info->spans_received = seen;
    info->spans_rejected = rejected;
    if (rejected) {
        /* Lead with the count: the first problem is an example. */
        char first[sizeof(info->message)];
        memcpy(first, info->message, sizeof(first));
        snprintf(info->message, sizeof(info->message), "%zu invalid span%s rejected (first: %s)",
                 rejected, rejected == 1 ? "" : "s", first);
    }
    return kept;
}

int sp_otlp_decode_traces(struct sp_batch *batch, enum sp_otlp_encoding enc, const uint8_t *data,
                          size_t len, struct sp_otlp_decode_info *info, struct sp_err *err)
{
    sp_otlp_request *req = NULL;
    SP_ASSERT(batch->signal == SP_SIGNAL_TRACES && !batch->u.traces.req,
              "sp_otlp_decode_traces needs a fresh traces batch");
    memset(info, 0, sizeof(*info));
    int rc = enc == SP_OTLP_JSON ? sp_otlp_decode_json(batch->arena, data, len, &req, err)
                                 : sp_otlp_decode_proto(batch->arena, data, len, &req, err);
    if (rc)
        return rc;
    batch->u.traces.req = req;
    batch->u.traces.span_count = sp_otlp_validate(req, info);
    return 0;
}

/* Data points of a metrics request, log records of a logs request. */
static size_t otlp_count_items(enum sp_signal sig, const ProtobufCMessage *m)
{
    size_t n = 0;
    if (sig == SP_SIGNAL_METRICS) {
        const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r =
            (const void *)m;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    const Opentelemetry__Proto__Metrics__V1__Metric *mt = sm->metrics[k];
                    switch (mt->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        n += mt->gauge->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        n += mt->sum->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        n += mt->histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        n += mt->exponential_histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        n += mt->summary->n_data_points;
                        break;
                    default:
                        break;
                    }
                }
            }
        }
    } else {
        const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r =
            (const void *)m;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
            for (size_t j = 0; j < rl->n_scope_logs; j++)
                n += rl->scope_logs[j]->n_log_records;
        }
    }
    return n;
}

int sp_otlp_decode_passthrough(struct sp_batch *batch, enum sp_otlp_encoding enc,
                               const uint8_t *data, size_t len, struct sp_err *err)
{
    SP_ASSERT((batch->signal == SP_SIGNAL_METRICS || batch->signal == SP_SIGNAL_LOGS) &&
                  !batch->u.otlp.req,
              "sp_otlp_decode_passthrough takes a fresh metrics or logs batch");
    struct sp_otlp_passthrough *p = &batch->u.otlp;
    ProtobufCMessage *m = NULL;
    int rc = sp_otlp_decode_msg(batch->arena, sp_otlp_request_desc(batch->signal), enc, data,
                                len, &m, err);
    if (rc)
        return rc;
    p->req = m;
    p->item_count = otlp_count_items(batch->signal, m);
    if (enc == SP_OTLP_PROTOBUF) {
        p->pb_len = len;
        p->pb = len ? sp_arena_memdup(batch->arena, data, len) : NULL;
    } else {
        p->pb_len = protobuf_c_message_get_packed_size(m);
        uint8_t *out = p->pb_len ? sp_arena_alloc(batch->arena, p->pb_len) : NULL;
        if (out)
            protobuf_c_message_pack(m, out);
        p->pb = out;
    }
    if (p->pb_len && !p->pb)
        return sp_err_set(err, SP_ETOOBIG, "request of %zu bytes passes its memory limit once "
                          "decoded", len);
    return 0;
}

/* ---- content types and answers ----------------------------------------- */

int sp_otlp_content_type(const char *ct)
{
    if (!ct)
        return -1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == strlen("application/x-protobuf") && strncasecmp(ct, "application/x-protobuf", n) == 0)
        return SP_OTLP_PROTOBUF;
    if (n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0)
        return SP_OTLP_JSON;
    return -1;
}

const char *sp_otlp_content_type_name(enum sp_otlp_encoding enc)
{
    return enc == SP_OTLP_JSON ? "application/json" : "application/x-protobuf";
}

static int otlp_pack(const ProtobufCMessage *m, struct sp_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (sp_buf_reserve(out, n))
        return SP_ENOMEM;
    out->len += protobuf_c_message_pack(m, out->data + out->len);
    out->data[out->len] = 0;
    return 0;
}

int sp_otlp_encode_response(enum sp_otlp_encoding enc, int64_t rejected, const char *message,
                            struct sp_buf *out)
{
    bool partial = rejected > 0 || (message && *message);
    if (enc == SP_OTLP_JSON) {
        int rc = 0;
        if (!partial)
            return sp_buf_append_str(out, "{}");
        rc |= sp_buf_printf(out, "{\"partialSuccess\":{\"rejectedSpans\":\"%" PRId64 "\"",
                            rejected);
        if (message && *message) {
            rc |= sp_buf_append_str(out, ",\"errorMessage\":");
            rc |= sp_buf_append_json_str(out, message, strlen(message));
        }
        rc |= sp_buf_append_str(out, "}}");
        return rc ? SP_ENOMEM : 0;
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    if (partial) {
        ps.rejected_spans = rejected;
        ps.error_message = (char *)(message ? message : "");
        resp.partial_success = &ps;
    }
    return otlp_pack(&resp.base, out);
}

int sp_otlp_encode_status(enum sp_otlp_encoding enc, int code, const char *message,
                          struct sp_buf *out)
{
    if (!message)
        message = "";
    if (enc == SP_OTLP_JSON) {
        int rc = sp_buf_printf(out, "{\"code\":%d,\"message\":", code);
        rc |= sp_buf_append_json_str(out, message, strlen(message));
        rc |= sp_buf_append_str(out, "}");
        return rc ? SP_ENOMEM : 0;
    }
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)message;
    return otlp_pack(&st.base, out);
}

/* ---- gRPC unary framing ------------------------------------------------- */

static uint32_t otlp_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int sp_grpc_reader_feed(struct sp_grpc_reader *r, const uint8_t *p, size_t n, struct sp_err *err)
{
    if (r->failed || n == 0)
        return 0;
    size_t have = r->buf.len;
    /* How many bytes this message may still take: until the prefix is in,
     * the prefix itself; then exactly prefix + declared length. */
    size_t want;
    if (have < 5) {
        size_t take = 5 - have < n ? 5 - have : n;
        if (sp_buf_append(&r->buf, p, take)) {
            r->failed = true;
            return sp_err_set(err, SP_ENOMEM, "out of memory buffering a gRPC message");
        }
        p += take;
        n -= take;
        have += take;
        if (have < 5)
            return 0;
        const uint8_t *pre = r->buf.data;
        if (pre[0] > 1) {
            r->failed = true;
            return sp_err_set(err, SP_EDECODE,
                              "gRPC message prefix has compressed-flag %u, expected 0 or 1",
                              pre[0]);
        }
        uint32_t mlen = otlp_be32(pre + 1);
        if (mlen > r->max_msg) {
            r->failed = true;
            return sp_err_set(err, SP_ETOOBIG,
                              "gRPC message of %" PRIu32 " bytes is over the limit of %zu bytes",
                              mlen, r->max_msg);
        }
        if (sp_buf_reserve(&r->buf, mlen)) {
            r->failed = true;
            return sp_err_set(err, SP_ENOMEM, "out of memory buffering a gRPC message of %" PRIu32
                              " bytes", mlen);
        }
    }
    want = 5 + (size_t)otlp_be32(r->buf.data + 1) - have;
    if (n > want) {
        r->failed = true;
        return sp_err_set(err, SP_EDECODE,
                          "unary call carries more than one gRPC message (%zu bytes after the "
                          "first)", n - want);
    }
    if (sp_buf_append(&r->buf, p, n)) {
        r->failed = true;
        return sp_err_set(err, SP_ENOMEM, "out of memory buffering a gRPC message");
    }
    return 0;
}

int sp_grpc_reader_finish(struct sp_grpc_reader *r, const char *encoding,
                          struct sp_arena *scratch, const uint8_t **msg, size_t *len,
                          struct sp_err *err)
{
    if (r->failed)
        return sp_err_set(err, SP_EDECODE, "gRPC request body already failed");
    if (r->buf.len == 0)
        return sp_err_set(err, SP_EDECODE, "gRPC request has no message");
    if (r->buf.len < 5)
        return sp_err_set(err, SP_EDECODE, "gRPC message prefix truncated: %zu of 5 bytes",
                          r->buf.len);
    uint32_t mlen = otlp_be32(r->buf.data + 1);
    if (r->buf.len - 5 != mlen)
        return sp_err_set(err, SP_EDECODE,
                          "gRPC message truncated: prefix declares %" PRIu32
                          " bytes, the stream ended after %zu",
                          mlen, r->buf.len - 5);
    const uint8_t *body = r->buf.data + 5;
    if (r->buf.data[0] == 0) {
        *msg = body;
        *len = mlen;
        return 0;
    }
    int c = sp_compression_parse(encoding);
    if (!encoding || c == SP_COMPRESSION_NONE)
        return sp_err_set(err, SP_EDECODE,
                          "gRPC message has the compressed flag set but grpc-encoding is '%s'",
                          encoding ? encoding : "");
    if (c < 0)
        return sp_err_set(err, SP_EUNSUPPORTED, "grpc-encoding '%s' is not supported", encoding);
    int rc = sp_decompress((enum sp_compression)c, body, mlen, r->max_msg, scratch, msg, len, err);
    if (rc == SP_ETOOBIG)
        sp_err_set(err, SP_ETOOBIG, "gRPC message inflates past the limit of %zu bytes",
                   r->max_msg);
    else if (rc)
        sp_err_prefix(err, "gRPC message");
    return rc;
}

void sp_grpc_reader_free(struct sp_grpc_reader *r)
{
    sp_buf_free(&r->buf);
}

int sp_grpc_frame(const uint8_t *msg, size_t len, struct sp_buf *out)
{
    uint8_t pre[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    if (sp_buf_append(out, pre, 5) || sp_buf_append(out, msg, len))
        return SP_ENOMEM;
    return 0;
}

void sp_grpc_percent_encode(const char *msg, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (out_size == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)msg; p && *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (o + 1 >= out_size)
                break;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= out_size)
                break;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* ---- gRPC retry hint ---------------------------------------------------- */

static int otlp_pb_varint(struct sp_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return sp_buf_append(b, t, n);
}

static int otlp_pb_bytes(struct sp_buf *b, unsigned field, const void *p, size_t n)
{
    int rc = otlp_pb_varint(b, (uint64_t)field << 3 | 2);
    rc |= otlp_pb_varint(b, n);
    rc |= sp_buf_append(b, p, n);
    return rc;
}

int sp_grpc_retry_details(int code, const char *message, unsigned retry_s, struct sp_buf *out)
{
    static const char type_url[] = "type.googleapis.com/google.rpc.RetryInfo";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct sp_buf dur = {0}, info = {0}, any = {0}, st = {0};
    int rc = 0;
    /* google.protobuf.Duration{seconds} inside RetryInfo{retry_delay = 1}. */
    rc |= otlp_pb_varint(&dur, 1 << 3 | 0);
    rc |= otlp_pb_varint(&dur, retry_s);
    rc |= otlp_pb_bytes(&info, 1, dur.data, dur.len);
    /* google.protobuf.Any{type_url = 1, value = 2}. */
    rc |= otlp_pb_bytes(&any, 1, type_url, sizeof(type_url) - 1);
    rc |= otlp_pb_bytes(&any, 2, info.data, info.len);
    /* google.rpc.Status{code = 1, message = 2, details = 3}. */
    rc |= otlp_pb_varint(&st, 1 << 3 | 0);
    rc |= otlp_pb_varint(&st, (uint64_t)(uint32_t)code);
    if (message && *message)
        rc |= otlp_pb_bytes(&st, 2, message, strlen(message));
    rc |= otlp_pb_bytes(&st, 3, any.data, any.len);
    for (size_t i = 0; rc == 0 && i < st.len; i += 3) {
        uint32_t v = (uint32_t)st.data[i] << 16;
        size_t left = st.len - i;
        if (left > 1)
            v |= (uint32_t)st.data[i + 1] << 8;
        if (left > 2)
            v |= st.data[i + 2];
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], left > 1 ? b64[v >> 6 & 63] : '=',
                     left > 2 ? b64[v & 63] : '='};
        rc |= sp_buf_append(out, q, 4);
    }
    sp_buf_free(&dur);
    sp_buf_free(&info);
    sp_buf_free(&any);
    sp_buf_free(&st);
    return rc ? SP_ENOMEM : 0;
}
