/* OTLP/gRPC: TraceService/Export over HTTP/2 cleartext (h2c, prior
 * knowledge), nghttp2 driven by the libuv loop.
 *
 * nghttp2 is sans-IO: bytes read from a uv_tcp_t go into
 * nghttp2_session_mem_recv(), which calls back per frame; whatever the
 * session wants to send is taken with nghttp2_session_mem_send() and handed
 * to uv_write(). One session per connection, many concurrent unary streams
 * per session. A stream's DATA frames feed a bounded sp_grpc_reader (the
 * Length-Prefixed-Message framing, model/otlp_codec.c); at END_STREAM the
 * message is inflated (grpc-encoding), decoded and passed on, and the
 * stream is answered: HEADERS, one response message, trailers with
 * grpc-status (and grpc-message) always. Errors found before that (unknown
 * method, wrong content-type, size over the limit) are answered at once as
 * a Trailers-Only response, and the rest of the request is discarded.
 *
 * Bounds: connections (max_connections), streams per connection
 * (SETTINGS_MAX_CONCURRENT_STREAMS), bytes per stream (the message limit),
 * request bytes buffered across all streams (max_inflight_bytes), unsent
 * output per connection (write_buffer_size: reading pauses until the peer
 * drains it), header bytes per stream. nghttp2 itself answers PINGs and
 * SETTINGS and guards against floods of them. Fairness: ended streams are
 * processed up to OTLP_GRPC_TURN_BYTES per loop turn (the rest wait, in
 * order, for the next turns), and a message whose declared size would put
 * the waiting backlog over OTLP_BACKLOG_MS of processing is refused from its
 * first DATA (otlp_admit_backlog; the headers carry no size). An ended
 * stream asks the pipeline again before it is inflated and decoded
 * (otlp_admit_decode): it may have filled while the message arrived.
 *
 * Timers: one per server, ticking a few times a second, implements the
 * keepalive settings (server PINGs after `time` of silence, close after
 * `timeout`; max_connection_idle/age/age_grace via GOAWAY) and the shutdown
 * deadline. Shutdown: stop listening, GOAWAY every connection (a shutdown
 * notice first, then the last stream id), let in-flight streams finish,
 * close idle connections, force the rest at the service's deadline. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "otlp_int.h"
#include "sp_compress.h"
#include "sp_log.h"
#include "sp_status.h"
#include "sp_memory.h"

/* Header bytes (names + values + 32 each, as HTTP/2 counts them) a request
 * may carry. The gRPC spec suggests 8 KiB; SDK exporters send well under
 * 1 KiB plus user headers. */
#define OTLP_GRPC_MAX_HEADER_BYTES 16384
/* HTTP/2 flow-control windows offered to clients: large enough that a
 * multi-MiB export is not throttled to 64 KiB round trips. */
#define OTLP_GRPC_STREAM_WINDOW (1 << 20)
#define OTLP_GRPC_CONN_WINDOW (16 << 20)
/* gRPC's rule for client pings: more than this many pings closer together
 * than the policy allows close the connection (ENHANCE_YOUR_CALM). */
#define OTLP_GRPC_MAX_PING_STRIKES 2
/* Without streams and without permit_without_stream, pings are expected
 * no more often than this (the gRPC default ping timeout). */
#define OTLP_GRPC_IDLE_PING_INTERVAL_MS ((uint64_t)2 * 3600 * 1000)
/* Between the shutdown notice and the final GOAWAY. */
#define OTLP_GRPC_NOTICE_MS 200
/* Message bytes processed (decoded and passed on) per loop turn, at least
 * one message; each counts OTLP_GRPC_TURN_REQ_COST more. The rest wait, in
 * the order they completed, for the next turns, so a turn in which many
 * streams end (16 concurrent exports of 4 MiB) does not hold the loop for
 * all of them. sp_httpd has the same budget for OTLP/HTTP. */
#define OTLP_GRPC_TURN_BYTES ((size_t)1 << 20)
#define OTLP_GRPC_TURN_REQ_COST ((size_t)1024)

struct otlp_grpc_conn;

struct otlp_grpc_stream {
    struct otlp_grpc_conn *conn;
    struct otlp_grpc_stream *prev, *next;
    int32_t id;
    bool post;
    int sig; /* enum otlp_sig of the method, -1 for an unknown method */
    char path[128];
    char content_type[64];
    char encoding[32];
    size_t header_bytes;
    bool answered;
    bool processed;
    bool waiting; /* complete, waiting for a turn's budget (on the server's list) */
    struct otlp_grpc_stream *wnext;
    struct sp_grpc_reader reader;
    size_t accounted; /* bytes of reader buffer counted in the server's inflight total */
    size_t mem_charged; /* bytes charged to the memory ceiling (class bodies) */
    bool retry_info;  /* answer with a google.rpc.RetryInfo detail */
    struct sp_buf resp; /* framed response message */
    size_t resp_off;
    int status;
    char message[600]; /* percent-encoded grpc-message */
};

struct otlp_grpc_conn {
    struct otlp_grpc *srv;
    struct otlp_grpc_conn *prev, *next;
    uv_tcp_t tcp;
    nghttp2_session *h2;
    struct otlp_grpc_stream *streams;
    size_t stream_count;
    size_t write_pending;
    bool reading;
    bool closing;
    bool goaway_sent;
    bool notice_sent;
    bool terminate; /* close as soon as everything queued is written */
    bool sniffed;   /* the first bytes were checked for an HTTP/1.x request */
    bool http1;     /* an HTTP/1.x client: answered 400, closed once written */
    uint64_t created_ms;
    uint64_t last_read_ms;
    uint64_t idle_since_ms;
    uint64_t ping_sent_ms; /* 0 = no keepalive ping outstanding */
    uint64_t goaway_ms;
    uint64_t last_client_ping_ms;
    int ping_strikes;
    bool reset_ping_strikes;
};

struct otlp_grpc_write {
    uv_write_t req;
    struct otlp_grpc_conn *conn;
    uv_buf_t buf;
    size_t len;
};

struct otlp_grpc {
    struct otlp_ctx *ctx;
    struct otlp_grpc_conf *conf;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t tick;
    uv_check_t turn; /* end of a loop turn: the budget is refilled */
    uv_idle_t run;   /* waiting streams: processed from the next turn on */
    size_t turn_bytes;
    struct otlp_grpc_stream *wait_head, *wait_tail;
    uint64_t tick_ms;
    int port;
    struct otlp_grpc_conn *conns;
    size_t conn_count;
    uint8_t *read_buf;
    size_t read_buf_size;
    size_t max_msg;
    size_t inflight;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    struct sp_metric *conn_gauge;
    bool stopping;
    bool tick_closing;
    uint64_t stop_ms;
    uint64_t http1_warned_ms; /* last warning about an HTTP/1.x client */
    uint64_t tls_warned_ms;   /* last warning about a TLS client */
    int open_handles; /* listener, tick, turn, run; the last close frees the server */
    void (*done_one)(struct otlp_ctx *ctx);
};

static void conn_flush(struct otlp_grpc_conn *c);
static void conn_close(struct otlp_grpc_conn *c);
static void grpc_on_run(uv_idle_t *i);
static void grpc_maybe_finish(struct otlp_grpc *g);

static const char *comp_id(const struct otlp_grpc *g)
{
    return g->ctx->comp->id;
}

/* ---- streams ---- */

static void stream_release_body(struct otlp_grpc_stream *st)
{
    struct otlp_grpc *g = st->conn->srv;
    g->inflight -= st->accounted;
    st->accounted = 0;
    sp_memory_release(SP_MEM_BODIES, st->mem_charged);
    st->mem_charged = 0;
    sp_grpc_reader_free(&st->reader);
    st->reader.failed = true; /* ignore whatever DATA still comes */
}

static void stream_free(struct otlp_grpc_stream *st)
{
    struct otlp_grpc_conn *c = st->conn;
    if (st->waiting) {
        struct otlp_grpc *g = c->srv;
        struct otlp_grpc_stream **pp = &g->wait_head, *prev = NULL;
        while (*pp != st) {
            prev = *pp;
            pp = &(*pp)->wnext;
        }
        *pp = st->wnext;
        if (g->wait_tail == st)
            g->wait_tail = prev;
    }
    stream_release_body(st);
    sp_buf_free(&st->resp);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (--c->stream_count == 0)
        c->idle_since_ms = uv_now(c->srv->loop);
    free(st);
}

static ssize_t stream_read_resp(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                void *user_data)
{
    (void)user_data;
    struct otlp_grpc_stream *st = source->ptr;
    size_t left = st->resp.len - st->resp_off;
    size_t n = left < length ? left : length;
    if (n)
        memcpy(buf, st->resp.data + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp.len) {
        /* gRPC ends the stream with trailers, not with the last DATA. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        char status[16];
        snprintf(status, sizeof(status), "%d", st->status);
        nghttp2_nv tr[2] = {
            {(uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)st->message, 12, strlen(st->message),
             NGHTTP2_NV_FLAG_NONE},
        };
        if (nghttp2_submit_trailer(session, stream_id, tr, st->message[0] ? 2 : 1))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

/* Answers a stream. With body (a framed message): HEADERS, DATA, trailers.
 * Without: Trailers-Only, one HEADERS with END_STREAM carrying the status. */
static void stream_answer(struct otlp_grpc_stream *st, unsigned http_status, int grpc_status,
                          const char *msg, const struct sp_buf *body)
{
    struct otlp_grpc_conn *c = st->conn;
    if (st->answered)
        return;
    st->answered = true;
    st->status = grpc_status;
    sp_grpc_percent_encode(msg ? msg : "", st->message, sizeof(st->message));
    stream_release_body(st);
    char hs[8], gs[16];
    snprintf(hs, sizeof(hs), "%u", http_status);
    snprintf(gs, sizeof(gs), "%d", grpc_status);
    int rc;
    if (body && sp_buf_append(&st->resp, body->data, body->len) == 0) {
        nghttp2_nv hdrs[] = {
            NV(":status", hs),
            NV("content-type", "application/grpc"),
            NV("grpc-accept-encoding", "gzip,zstd,deflate,identity"),
        };
        nghttp2_data_provider dp;
        dp.source.ptr = st;
        dp.read_callback = stream_read_resp;
        rc = nghttp2_submit_response(c->h2, st->id, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp);
    } else {
        struct sp_buf details = {0};
        nghttp2_nv hdrs[] = {
            NV(":status", hs),
            NV("content-type", "application/grpc"),
            NV("grpc-accept-encoding", "gzip,zstd,deflate,identity"),
            NV("grpc-status", gs),
            NV("grpc-message", st->message),
            NV("grpc-status-details-bin", ""),
        };
        size_t n = 4;
        if (st->message[0])
            hdrs[n++] = hdrs[4];
        if (st->retry_info &&
            sp_grpc_retry_details(grpc_status, msg ? msg : "", OTLP_RETRY_AFTER_S, &details) == 0) {
            hdrs[n] = hdrs[5];
            hdrs[n].value = details.data;
            hdrs[n++].valuelen = details.len;
        }
        rc = nghttp2_submit_response(c->h2, st->id, hdrs, n, NULL);
        sp_buf_free(&details);
    }
    if (rc)
        sp_log_debug(comp_id(c->srv), "stream %d: cannot submit the answer: %s", st->id,
                     nghttp2_strerror(rc));
}

static void stream_fail(struct otlp_grpc_stream *st, unsigned http_status, int grpc_status,
                        enum otlp_outcome outcome, const char *msg)
{
    if (st->answered)
        return;
    otlp_count_early(st->conn->srv->ctx, OTLP_GRPC, outcome, msg);
    stream_answer(st, http_status, grpc_status, msg, NULL);
}

/* A refusal the client should retry: UNAVAILABLE (retried by every gRPC
 * OTLP exporter) with a google.rpc.RetryInfo detail saying when, which the
 * Collector's exporters and the Go SDK wait for (OTLP spec, "Failures"). */
static void stream_refuse(struct otlp_grpc_stream *st, const char *msg, bool counted)
{
    if (st->answered)
        return;
    if (!counted)
        otlp_count_early(st->conn->srv->ctx, OTLP_GRPC, OTLP_OUT_REFUSED, msg);
    st->retry_info = true;
    stream_answer(st, 200, SP_GRPC_UNAVAILABLE, msg, NULL);
}

static int grpc_status_for(enum otlp_outcome o)
{
    switch (o) {
    case OTLP_OUT_SUCCESS:
    case OTLP_OUT_PARTIAL: return SP_GRPC_OK;
    case OTLP_OUT_INVALID: return SP_GRPC_INVALID_ARGUMENT;
    case OTLP_OUT_TOO_LARGE: return SP_GRPC_RESOURCE_EXHAUSTED;
    case OTLP_OUT_REFUSED: return SP_GRPC_UNAVAILABLE;
    case OTLP_OUT_UNSUPPORTED: return SP_GRPC_UNIMPLEMENTED;
    default: return SP_GRPC_INTERNAL;
    }
}

/* The whole request is in: inflate, decode, pass on, answer. */
static void stream_process(struct otlp_grpc_stream *st)
{
    struct otlp_grpc *g = st->conn->srv;
    if (st->answered || st->processed)
        return;
    st->processed = true;
    struct otlp_result res;
    if (!otlp_admit_decode(g->ctx, OTLP_GRPC, (enum otlp_sig)st->sig, &res)) {
        stream_refuse(st, res.message, true);
        return;
    }
    struct sp_err err = {0};
    struct sp_arena *scratch = sp_arena_create(0);
    const uint8_t *msg;
    size_t len;
    if (!scratch) {
        stream_fail(st, 200, SP_GRPC_UNAVAILABLE, OTLP_OUT_REFUSED, "out of memory");
        return;
    }
    /* The inflated message counts against the memory ceiling too. */
    sp_arena_set_mem_class(scratch, SP_MEM_BODIES);
    int rc = sp_grpc_reader_finish(&st->reader, st->encoding[0] ? st->encoding : NULL, scratch,
                                   &msg, &len, &err);
    if (rc) {
        if (sp_arena_ceiling_hit(scratch))
            stream_refuse(st, "memory ceiling reached while inflating (service.memory_limit); "
                              "retry later", false);
        else if (rc == SP_ETOOBIG)
            stream_fail(st, 200, SP_GRPC_RESOURCE_EXHAUSTED, OTLP_OUT_TOO_LARGE, err.msg);
        else if (rc == SP_EUNSUPPORTED)
            stream_fail(st, 200, SP_GRPC_UNIMPLEMENTED, OTLP_OUT_UNSUPPORTED, err.msg);
        else if (rc == SP_ENOMEM)
            stream_fail(st, 200, SP_GRPC_UNAVAILABLE, OTLP_OUT_REFUSED, err.msg);
        else
            stream_fail(st, 200, SP_GRPC_INVALID_ARGUMENT, OTLP_OUT_INVALID, err.msg);
        sp_arena_destroy(scratch);
        return;
    }
    otlp_export(g->ctx, (enum otlp_sig)st->sig, OTLP_GRPC, SP_OTLP_PROTOBUF, msg, len, &res);
    sp_arena_destroy(scratch);
    int status = grpc_status_for(res.outcome);
    if (res.outcome == OTLP_OUT_REFUSED) {
        stream_refuse(st, res.message, true);
        return;
    }
    if (status != SP_GRPC_OK) {
        stream_answer(st, 200, status, res.message, NULL);
        return;
    }
    struct sp_buf pb = {0}, framed = {0};
    if (sp_otlp_encode_response(SP_OTLP_PROTOBUF, res.rejected, res.message, &pb) ||
        sp_grpc_frame(pb.data, pb.len, &framed)) {
        sp_buf_free(&pb);
        sp_buf_free(&framed);
        /* The spans went on; only the answer failed. */
        stream_answer(st, 200, SP_GRPC_INTERNAL, "out of memory encoding the response", NULL);
        return;
    }
    stream_answer(st, 200, SP_GRPC_OK, NULL, &framed);
    sp_buf_free(&pb);
    sp_buf_free(&framed);
}

static size_t stream_turn_cost(const struct otlp_grpc_stream *st)
{
    return st->reader.buf.len + OTLP_GRPC_TURN_REQ_COST;
}

/* The request ended: process it now if this loop turn's budget allows and
 * no older one waits, else queue it for the next turns. */
static void stream_end(struct otlp_grpc_stream *st)
{
    struct otlp_grpc *g = st->conn->srv;
    if (st->answered || st->processed || st->waiting)
        return;
    size_t cost = stream_turn_cost(st);
    if (g->wait_head || (g->turn_bytes > 0 && g->turn_bytes + cost > OTLP_GRPC_TURN_BYTES)) {
        st->waiting = true;
        if (g->wait_tail)
            g->wait_tail->wnext = st;
        else
            g->wait_head = st;
        g->wait_tail = st;
        uv_idle_start(&g->run, grpc_on_run);
        return;
    }
    g->turn_bytes += cost;
    stream_process(st);
}

static void grpc_on_run(uv_idle_t *i)
{
    struct otlp_grpc *g = i->data;
    while (g->wait_head && (g->turn_bytes == 0 ||
                            g->turn_bytes + stream_turn_cost(g->wait_head) <= OTLP_GRPC_TURN_BYTES)) {
        struct otlp_grpc_stream *st = g->wait_head;
        g->wait_head = st->wnext;
        if (!g->wait_head)
            g->wait_tail = NULL;
        st->wnext = NULL;
        st->waiting = false;
        g->turn_bytes += stream_turn_cost(st);
        struct otlp_grpc_conn *c = st->conn;
        stream_process(st);
        conn_flush(c);
    }
    if (!g->wait_head)
        uv_idle_stop(i);
}

static void grpc_on_turn(uv_check_t *t)
{
    struct otlp_grpc *g = t->data;
    g->turn_bytes = 0;
}

/* Request headers are complete: answer at once what can be answered. */
static void stream_headers_done(struct otlp_grpc_stream *st)
{
    char msg[256];
    if (st->answered)
        return;
    if (st->header_bytes > OTLP_GRPC_MAX_HEADER_BYTES) {
        snprintf(msg, sizeof(msg), "request headers of %zu bytes are over the limit of %d bytes",
                 st->header_bytes, OTLP_GRPC_MAX_HEADER_BYTES);
        stream_fail(st, 431, SP_GRPC_RESOURCE_EXHAUSTED, OTLP_OUT_TOO_LARGE, msg);
        return;
    }
    if (!st->post) {
        stream_fail(st, 405, SP_GRPC_UNIMPLEMENTED, OTLP_OUT_UNSUPPORTED,
                    "method not allowed: gRPC calls use POST");
        return;
    }
    const char *ct = st->content_type;
    if (strncasecmp(ct, "application/grpc", 16) != 0 ||
        (ct[16] && ct[16] != '+' && ct[16] != ';')) {
        snprintf(msg, sizeof(msg), "invalid gRPC request content-type '%s'", ct);
        stream_fail(st, 415, SP_GRPC_INVALID_ARGUMENT, OTLP_OUT_UNSUPPORTED, msg);
        return;
    }
    if (ct[16] == '+' && strncasecmp(ct + 17, "proto", 5) != 0) {
        snprintf(msg, sizeof(msg), "content-type '%s': only protobuf messages are served", ct);
        stream_fail(st, 200, SP_GRPC_UNIMPLEMENTED, OTLP_OUT_UNSUPPORTED, msg);
        return;
    }
    if (st->sig < 0) {
        snprintf(msg, sizeof(msg), "unknown method '%.80s': OTLP's TraceService, MetricsService "
                 "and LogsService Export are served", st->path);
        stream_fail(st, 200, SP_GRPC_UNIMPLEMENTED, OTLP_OUT_UNSUPPORTED, msg);
        return;
    }
    if (st->encoding[0] && sp_compression_parse(st->encoding) < 0) {
        snprintf(msg, sizeof(msg),
                 "grpc-encoding '%s' is not supported (gzip, zstd, deflate, identity are)",
                 st->encoding);
        stream_fail(st, 200, SP_GRPC_UNIMPLEMENTED, OTLP_OUT_UNSUPPORTED, msg);
        return;
    }
    /* Refuse before reading: the answer goes out now, the rest of the
     * request is reset (on_frame_send) and never parsed. */
    struct otlp_result res;
    if (!otlp_admit(st->conn->srv->ctx, OTLP_GRPC, (enum otlp_sig)st->sig, 0, &res))
        stream_refuse(st, res.message, true);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct otlp_grpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct otlp_grpc_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    st->conn = c;
    st->id = frame->hd.stream_id;
    st->sig = -1;
    st->reader.max_msg = c->srv->max_msg;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->stream_count++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static void copy_header(char *dst, size_t size, const uint8_t *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct otlp_grpc_stream *st =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: nothing we use */
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        st->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        st->sig = -1;
        for (int s = 0; s < OTLP_SIG_COUNT; s++)
            if (valuelen == strlen(otlp_signals[s].grpc_path) &&
                memcmp(value, otlp_signals[s].grpc_path, valuelen) == 0)
                st->sig = s;
        copy_header(st->path, sizeof(st->path), value, valuelen);
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        copy_header(st->content_type, sizeof(st->content_type), value, valuelen);
    } else if (namelen == 13 && memcmp(name, "grpc-encoding", 13) == 0) {
        copy_header(st->encoding, sizeof(st->encoding), value, valuelen);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    struct otlp_grpc_conn *c = ud;
    struct otlp_grpc *g = c->srv;
    otlp_count_bytes(g->ctx, OTLP_GRPC, len);
    struct otlp_grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st || st->answered || st->reader.failed)
        return 0;
    /* Charge the memory ceiling before the reader allocates: the declared
     * message size once the 5-byte prefix is in (what the reader reserves),
     * the chunk itself before that. */
    size_t want = st->reader.buf.len + len;
    if (st->reader.buf.len < 5 && want >= 5) {
        uint8_t pfx[5];
        size_t have = st->reader.buf.len;
        if (have)
            memcpy(pfx, st->reader.buf.data, have);
        memcpy(pfx + have, data, 5 - have);
        size_t declared = 5 + ((size_t)pfx[1] << 24 | (size_t)pfx[2] << 16 |
                               (size_t)pfx[3] << 8 | pfx[4]);
        if (declared <= st->reader.max_msg + 5 && declared > want)
            want = declared;
        /* The size is known now: the time half of admission (otlp_admit
         * ran at the headers, which carry no size). */
        struct otlp_result res;
        if (!otlp_admit_backlog(g->ctx, declared, &res)) {
            stream_refuse(st, res.message, false);
            return 0;
        }
    }
    if (want > st->mem_charged) {
        if (sp_memory_reserve(SP_MEM_BODIES, want - st->mem_charged) != SP_OK) {
            stream_refuse(st, "memory ceiling reached while receiving the request "
                              "(service.memory_limit); retry later", false);
            return 0;
        }
        st->mem_charged = want;
    }
    struct sp_err err = {0};
    int rc = sp_grpc_reader_feed(&st->reader, data, len, &err);
    /* Account what the reader really holds (it reserves the declared size). */
    size_t now = st->reader.buf.cap;
    g->inflight += now - st->accounted;
    st->accounted = now;
    if (now > st->mem_charged) {
        /* The buffer rounds the declared size up (to a power of two): the
         * rest is reserved too, so the charged total never passes the hard
         * mark; refused, the stream is refused and its buffer freed. */
        if (sp_memory_reserve(SP_MEM_BODIES, now - st->mem_charged) != SP_OK) {
            stream_refuse(st, "memory ceiling reached while receiving the request "
                              "(service.memory_limit); retry later", false);
            return 0;
        }
        st->mem_charged = now;
    }
    if (rc == SP_ETOOBIG) {
        stream_fail(st, 200, SP_GRPC_RESOURCE_EXHAUSTED, OTLP_OUT_TOO_LARGE, err.msg);
    } else if (rc == SP_ENOMEM) {
        stream_refuse(st, err.msg, false);
    } else if (rc) {
        stream_fail(st, 200, SP_GRPC_INVALID_ARGUMENT, OTLP_OUT_INVALID, err.msg);
    } else if (g->inflight > g->conf->max_inflight_bytes) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "server busy: %zu bytes of unfinished requests buffered, over the limit of "
                 "%" PRIu64 "; retry later",
                 g->inflight, g->conf->max_inflight_bytes);
        stream_refuse(st, msg, false);
    }
    return 0;
}

static void conn_goaway(struct otlp_grpc_conn *c, uint32_t code, const char *debug)
{
    if (c->goaway_sent || c->closing)
        return;
    c->goaway_sent = true;
    c->goaway_ms = uv_now(c->srv->loop);
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          code, (const uint8_t *)debug, debug ? strlen(debug) : 0);
}

/* A client PING: gRPC's enforcement policy (too frequent pings are strikes;
 * past the allowance the connection goes away with ENHANCE_YOUR_CALM). */
static void on_client_ping(struct otlp_grpc_conn *c)
{
    const struct otlp_keepalive_enforcement *ep = &c->srv->conf->keepalive.enforcement_policy;
    uint64_t now = uv_now(c->srv->loop);
    if (c->reset_ping_strikes) {
        c->reset_ping_strikes = false;
        c->ping_strikes = 0;
    } else if (c->last_client_ping_ms) {
        uint64_t allowed = (c->stream_count == 0 && !ep->permit_without_stream)
                               ? OTLP_GRPC_IDLE_PING_INTERVAL_MS
                               : (uint64_t)ep->min_time_ms;
        if (now - c->last_client_ping_ms < allowed)
            c->ping_strikes++;
    }
    c->last_client_ping_ms = now;
    if (c->ping_strikes > OTLP_GRPC_MAX_PING_STRIKES && !c->terminate) {
        otlp_warn_limited(c->srv->ctx,
                          "gRPC client pings too often (keepalive enforcement min_time %" PRId64
                          " ms): sending GOAWAY ENHANCE_YOUR_CALM",
                          ep->min_time_ms);
        conn_goaway(c, NGHTTP2_ENHANCE_YOUR_CALM, "too_many_pings");
        /* Unlike a graceful GOAWAY, this one ends the connection once sent. */
        c->terminate = true;
    }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct otlp_grpc_conn *c = ud;
    struct otlp_grpc_stream *st;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!st)
            return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            stream_headers_done(st);
        else if (st->header_bytes > OTLP_GRPC_MAX_HEADER_BYTES)
            stream_fail(st, 431, SP_GRPC_RESOURCE_EXHAUSTED, OTLP_OUT_TOO_LARGE,
                        "request trailers are over the header size limit");
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            stream_end(st);
        return 0;
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
            if (st)
                stream_end(st);
        }
        return 0;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            on_client_ping(c);
        return 0;
    default:
        return 0;
    }
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct otlp_grpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    /* Sending data is what resets the ping strikes (gRPC's rule). */
    c->reset_ping_strikes = true;
    /* Answered before the request ended (an early error): tell the client
     * to stop sending the rest (RFC 9113 section 8.1). */
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)error_code;
    (void)ud;
    struct otlp_grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(st);
    return 0;
}

/* ---- connections ---- */

static void conn_on_closed(uv_handle_t *h)
{
    struct otlp_grpc_conn *c = h->data;
    struct otlp_grpc *g = c->srv;
    /* nghttp2 frees its streams without calling back; ours go after it. */
    nghttp2_session_del(c->h2);
    while (c->streams)
        stream_free(c->streams);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->conn_count--;
    sp_metric_set(g->conn_gauge, (double)g->conn_count);
    free(c);
    grpc_maybe_finish(g);
}

static void conn_close(struct otlp_grpc_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct otlp_grpc_conn *c = h->data;
    /* One buffer for every connection: each read is consumed entirely by
     * nghttp2 before the loop reads anything else. */
    buf->base = (char *)c->srv->read_buf;
    buf->len = c->srv->read_buf_size;
}

static void conn_on_http1_written(uv_write_t *req, int status)
{
    (void)status;
    struct otlp_grpc_write *w = req->data;
    struct otlp_grpc_conn *c = w->conn;
    free(w->buf.base);
    free(w);
    conn_close(c);
}

/* An HTTP/1.x request on the gRPC port (an OTLP/HTTP exporter pointed at
 * 4317, curl): answer it in its own protocol with a 400 that names the
 * OTLP/HTTP address, and close. Recognised by its first bytes: a method
 * token and a space, where HTTP/2 starts with "PRI * HTTP/2.0". */
static bool conn_reject_http1(struct otlp_grpc_conn *c, const char *p, size_t n)
{
    size_t m = 0;
    while (m < n && m < 16 && p[m] >= 'A' && p[m] <= 'Z')
        m++;
    if (m == 0 || m >= n || p[m] != ' ' || (m == 3 && memcmp(p, "PRI", 3) == 0))
        return false;
    struct otlp_grpc *g = c->srv;
    const struct otlp_http_conf *hc = &g->ctx->conf->protocols.http;
    char where[200];
    if (hc->present)
        snprintf(where, sizeof(where), "OTLP/HTTP is served on %.80s (POST %.30s, %.30s, %.30s)",
                 hc->endpoint, hc->traces_url_path, hc->metrics_url_path, hc->logs_url_path);
    else
        snprintf(where, sizeof(where), "OTLP/HTTP is not enabled (receivers.otlp.protocols.http)");
    size_t rl = strcspn(p, "\r\n");
    char msg[400];
    snprintf(msg, sizeof(msg), "HTTP/1.x request '%.*s' on the OTLP/gRPC port %s, which speaks "
             "HTTP/2 only: %s; or set the SDK's OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
             (int)(rl > 60 ? 60 : rl), p, g->conf->endpoint, where);
    /* Its own rate limit (one line a minute), so other warnings never hide
     * the one that says where OTLP/HTTP is. */
    otlp_count_early(g->ctx, OTLP_GRPC, OTLP_OUT_UNSUPPORTED, NULL);
    uint64_t now = uv_now(g->loop);
    if (!g->http1_warned_ms || now >= g->http1_warned_ms + 60000) {
        sp_log_warn(comp_id(g), "%s", msg);
        g->http1_warned_ms = now ? now : 1;
    }
    struct sp_buf out = {0};
    size_t body = strlen(msg) + 1;
    sp_buf_printf(&out, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n", body, msg);
    struct otlp_grpc_write *w = malloc(sizeof(*w));
    c->http1 = true;
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    if (!w || !out.data) {
        free(w);
        sp_buf_free(&out);
        conn_close(c);
        return true;
    }
    w->conn = c;
    uint8_t *bytes = sp_buf_steal(&out, &w->len);
    w->buf = uv_buf_init((char *)bytes, (unsigned)w->len);
    w->req.data = w;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, conn_on_http1_written) != 0) {
        free(w->buf.base);
        free(w);
        conn_close(c);
    }
    return true;
}

/* A TLS ClientHello (record type 22, version 3.x) on this plaintext port:
 * an exporter configured with https://. Nothing useful can be answered in
 * TLS; log what to change (one line a minute) and close. */
static bool conn_reject_tls(struct otlp_grpc_conn *c, const uint8_t *p, size_t n)
{
    if (n < 3 || p[0] != 0x16 || p[1] != 0x03)
        return false;
    struct otlp_grpc *g = c->srv;
    otlp_count_early(g->ctx, OTLP_GRPC, OTLP_OUT_UNSUPPORTED, NULL);
    uint64_t now = uv_now(g->loop);
    if (!g->tls_warned_ms || now >= g->tls_warned_ms + 60000) {
        sp_log_warn(comp_id(g), "a TLS handshake on the OTLP/gRPC port %s, which serves plaintext "
                    "(h2c): point the exporter at http://%s (e.g. "
                    "OTEL_EXPORTER_OTLP_ENDPOINT=http://..., or OTEL_EXPORTER_OTLP_INSECURE=true)",
                    g->conf->endpoint, g->conf->endpoint);
        g->tls_warned_ms = now ? now : 1;
    }
    conn_close(c);
    return true;
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct otlp_grpc_conn *c = s->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            sp_log_debug(comp_id(c->srv), "gRPC connection read error: %s",
                         uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    c->last_read_ms = uv_now(c->srv->loop);
    c->ping_sent_ms = 0;
    if (!c->sniffed) {
        c->sniffed = true;
        if (conn_reject_http1(c, buf->base, (size_t)nread) ||
            conn_reject_tls(c, (const uint8_t *)buf->base, (size_t)nread))
            return;
    }
    ssize_t rc = nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf->base, (size_t)nread);
    if (rc < 0) {
        /* Not HTTP/2 (an HTTP/1.1 client on the gRPC port), a protocol
         * error, or a flood: nghttp2 may have queued a GOAWAY; send it and
         * close. */
        otlp_warn_limited(c->srv->ctx, "closing gRPC connection: %s", nghttp2_strerror((int)rc));
        c->terminate = true;
        conn_flush(c);
        if (c->write_pending == 0)
            conn_close(c);
        return;
    }
    conn_flush(c);
}

static void conn_on_write(uv_write_t *req, int status)
{
    struct otlp_grpc_write *w = req->data;
    struct otlp_grpc_conn *c = w->conn;
    c->write_pending -= w->len;
    free(w->buf.base);
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            sp_log_debug(comp_id(c->srv), "gRPC connection write error: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Moves what nghttp2 wants to send into uv_write, up to the connection's
 * write bound, pauses or resumes reading accordingly, and closes the
 * connection when the session is over. */
static void conn_flush(struct otlp_grpc_conn *c)
{
    struct otlp_grpc *g = c->srv;
    if (c->closing || c->http1)
        return;
    struct sp_buf out = {0};
    while (c->write_pending + out.len < g->conf->write_buffer_size) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            sp_log_debug(comp_id(g), "gRPC session send error: %s", nghttp2_strerror((int)n));
            sp_buf_free(&out);
            conn_close(c);
            return;
        }
        if (n == 0)
            break;
        if (sp_buf_append(&out, data, (size_t)n)) {
            sp_buf_free(&out);
            conn_close(c);
            return;
        }
    }
    if (out.len) {
        struct otlp_grpc_write *w = malloc(sizeof(*w));
        if (!w) {
            sp_buf_free(&out);
            conn_close(c);
            return;
        }
        w->conn = c;
        uint8_t *bytes = sp_buf_steal(&out, &w->len);
        w->buf = uv_buf_init((char *)bytes, (unsigned)w->len);
        w->req.data = w;
        c->write_pending += w->len;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, conn_on_write);
        if (rc) {
            c->write_pending -= w->len;
            free(w->buf.base);
            free(w);
            conn_close(c);
            return;
        }
    }
    bool want_read = nghttp2_session_want_read(c->h2) && !c->terminate;
    bool want_write = nghttp2_session_want_write(c->h2);
    if (!want_read && !want_write && c->write_pending == 0) {
        conn_close(c);
        return;
    }
    /* Backpressure: a client that does not read its answers stops being read. */
    bool should_read = want_read && c->write_pending < g->conf->write_buffer_size;
    if (should_read && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0)
            c->reading = true;
    } else if (!should_read && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_free_unstarted(uv_handle_t *h)
{
    free(h->data);
}

static void grpc_on_connection(uv_stream_t *server, int status)
{
    struct otlp_grpc *g = server->data;
    if (status < 0) {
        otlp_warn_limited(g->ctx, "gRPC accept failed: %s", uv_strerror(status));
        return;
    }
    struct otlp_grpc_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = g;
    uv_tcp_init(g->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || g->stopping) {
        uv_close((uv_handle_t *)&c->tcp, conn_free_unstarted);
        return;
    }
    if (g->conn_count >= (size_t)g->conf->max_connections) {
        otlp_warn_limited(g->ctx,
                          "gRPC connection refused: %zu connections open (max_connections)",
                          g->conn_count);
        uv_close((uv_handle_t *)&c->tcp, conn_free_unstarted);
        return;
    }
    if (nghttp2_session_server_new2(&c->h2, g->cbs, c, g->opt) != 0) {
        uv_close((uv_handle_t *)&c->tcp, conn_free_unstarted);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    g->conn_count++;
    sp_metric_set(g->conn_gauge, (double)g->conn_count);
    c->created_ms = c->last_read_ms = c->idle_since_ms = uv_now(g->loop);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)g->conf->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, OTLP_GRPC_STREAM_WINDOW},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, OTLP_GRPC_CONN_WINDOW);
    /* The server preface (SETTINGS) goes out with the answer to the
     * client's first bytes, so an HTTP/1.x client gets a plain HTTP/1.1
     * answer, not binary frames (an h2 client sends its preface first). */
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0)
        c->reading = true;
    else
        conn_close(c);
}

/* ---- the tick: keepalive, connection age, shutdown ---- */

static void grpc_on_tick(uv_timer_t *t)
{
    struct otlp_grpc *g = t->data;
    const struct otlp_keepalive_server *ka = &g->conf->keepalive.server_parameters;
    uint64_t now = uv_now(g->loop);
    const struct sp_host *host = g->ctx->comp->host;
    /* Force what is left a little before the service's deadline. */
    bool force = g->stopping && host && host->shutdown_deadline_ms &&
                 now + 300 >= host->shutdown_deadline_ms;
    for (struct otlp_grpc_conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (force) {
            if (c->stream_count)
                sp_log_warn(comp_id(g),
                            "shutdown deadline: closing a gRPC connection with %zu unfinished "
                            "streams",
                            c->stream_count);
            conn_close(c);
            continue;
        }
        if (g->stopping && !c->goaway_sent && now >= g->stop_ms + OTLP_GRPC_NOTICE_MS)
            conn_goaway(c, NGHTTP2_NO_ERROR, NULL);
        if (ka->max_connection_idle_ms && c->stream_count == 0 &&
            now - c->idle_since_ms >= (uint64_t)ka->max_connection_idle_ms)
            conn_goaway(c, NGHTTP2_NO_ERROR, "max_idle");
        if (ka->max_connection_age_ms &&
            now - c->created_ms >= (uint64_t)ka->max_connection_age_ms)
            conn_goaway(c, NGHTTP2_NO_ERROR, "max_age");
        if (c->goaway_sent && ka->max_connection_age_grace_ms &&
            now - c->goaway_ms >= (uint64_t)ka->max_connection_age_grace_ms) {
            conn_close(c);
            continue;
        }
        if (ka->time_ms && !c->ping_sent_ms && now - c->last_read_ms >= (uint64_t)ka->time_ms) {
            nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
            c->ping_sent_ms = now;
        } else if (c->ping_sent_ms && ka->timeout_ms &&
                   now - c->ping_sent_ms >= (uint64_t)ka->timeout_ms) {
            sp_log_debug(comp_id(g), "closing a gRPC connection: keepalive ping not answered");
            conn_close(c);
            continue;
        }
        conn_flush(c);
    }
    grpc_maybe_finish(g);
}

static uint64_t tick_for(uint64_t cur, int64_t ms)
{
    if (ms <= 0)
        return cur;
    uint64_t t = (uint64_t)ms / 4;
    return t < cur ? t : cur;
}

/* ---- start and stop ---- */

int otlp_grpc_port(const struct otlp_grpc *g)
{
    return g ? g->port : 0;
}

static void grpc_free(struct otlp_grpc *g)
{
    if (g->cbs)
        nghttp2_session_callbacks_del(g->cbs);
    if (g->opt)
        nghttp2_option_del(g->opt);
    free(g->read_buf);
    free(g);
}

static void grpc_on_handle_closed(uv_handle_t *h)
{
    struct otlp_grpc *g = h->data;
    if (--g->open_handles > 0)
        return;
    struct otlp_ctx *ctx = g->ctx;
    void (*done_one)(struct otlp_ctx *) = g->done_one;
    ctx->grpc = NULL;
    grpc_free(g);
    if (done_one)
        done_one(ctx);
}

static void grpc_maybe_finish(struct otlp_grpc *g)
{
    if (!g->stopping || g->conn_count > 0 || g->tick_closing)
        return;
    /* The listener is already closing since shutdown began; the tick goes
     * too, and the last close callback frees the server. */
    g->tick_closing = true;
    uv_timer_stop(&g->tick);
    uv_close((uv_handle_t *)&g->tick, grpc_on_handle_closed);
    uv_close((uv_handle_t *)&g->turn, grpc_on_handle_closed);
    uv_close((uv_handle_t *)&g->run, grpc_on_handle_closed);
}

int otlp_grpc_start(struct otlp_ctx *ctx, struct sp_err *err)
{
    struct otlp_grpc_conf *conf = &ctx->conf->protocols.grpc;
    uv_loop_t *loop = ctx->comp->loop;
    int rc;
    struct sockaddr_storage ss;
    unsigned slen;
    if (sp_conf_endpoint_addr(conf->endpoint, &ss, &slen, err)) {
        sp_err_prefix(err, "protocols.grpc.endpoint");
        return SP_EINVAL;
    }

    struct otlp_grpc *g = calloc(1, sizeof(*g));
    if (!g)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    g->ctx = ctx;
    g->conf = conf;
    g->loop = loop;
    g->max_msg = (size_t)conf->max_recv_msg_size_mib << 20;
    g->read_buf_size = (size_t)conf->read_buffer_size;
    g->read_buf = malloc(g->read_buf_size);
    if (!g->read_buf || nghttp2_session_callbacks_new(&g->cbs) || nghttp2_option_new(&g->opt)) {
        grpc_free(g);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(g->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(g->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(g->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(g->cbs, on_stream_close);
    /* Streams over the limit are refused by nghttp2 itself (REFUSED_STREAM,
     * which gRPC clients retry); queued PING/SETTINGS acks are capped. */
    nghttp2_option_set_max_outbound_ack(g->opt, 1000);

    uv_tcp_init(loop, &g->listener);
    g->listener.data = g;
    rc = uv_tcp_bind(&g->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&g->listener, 128, grpc_on_connection);
    if (rc) {
        sp_err_set(err, SP_EIO, "receivers.%s.protocols.grpc.endpoint: cannot listen on '%s': %s",
                   ctx->comp->id, conf->endpoint, uv_strerror(rc));
        /* No tick: shutdown only waits for the listener's close. */
        g->open_handles = 1;
        g->tick_closing = true;
        g->stopping = true;
        ctx->grpc = g;
        uv_close((uv_handle_t *)&g->listener, grpc_on_handle_closed);
        return SP_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&g->listener, (struct sockaddr *)&bound, &blen);
    g->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    sp_status_listener_port(ctx->comp->id, "grpc", conf->endpoint, g->port);
    uv_timer_init(loop, &g->tick);
    g->tick.data = g;
    uv_check_init(loop, &g->turn);
    g->turn.data = g;
    uv_check_start(&g->turn, grpc_on_turn);
    uv_unref((uv_handle_t *)&g->turn);
    uv_idle_init(loop, &g->run);
    g->run.data = g;
    g->open_handles = 4;
    const struct otlp_keepalive_server *ka = &conf->keepalive.server_parameters;
    g->tick_ms = 1000;
    g->tick_ms = tick_for(g->tick_ms, ka->max_connection_idle_ms);
    g->tick_ms = tick_for(g->tick_ms, ka->max_connection_age_ms);
    g->tick_ms = tick_for(g->tick_ms, ka->max_connection_age_grace_ms);
    g->tick_ms = tick_for(g->tick_ms, ka->time_ms);
    g->tick_ms = tick_for(g->tick_ms, ka->timeout_ms);
    if (g->tick_ms < 50)
        g->tick_ms = 50;
    uv_timer_start(&g->tick, grpc_on_tick, g->tick_ms, g->tick_ms);
    char labels[300];
    snprintf(labels, sizeof(labels), "%s,transport=\"grpc\"", ctx->comp->metric_labels);
    g->conn_gauge = sp_gauge("spanprof_receiver_open_connections",
                             "Connections open on the receiver", labels);
    ctx->grpc = g;
    return 0;
}

void otlp_grpc_shutdown(struct otlp_ctx *ctx, void (*done_one)(struct otlp_ctx *ctx))
{
    struct otlp_grpc *g = ctx->grpc;
    if (!g) {
        done_one(ctx);
        return;
    }
    g->done_one = done_one;
    if (g->stopping)
        return; /* under way (or start failed): the last close calls done_one */
    g->stopping = true;
    g->stop_ms = uv_now(g->loop);
    uv_close((uv_handle_t *)&g->listener, grpc_on_handle_closed);
    /* Faster ticks while draining, for the final GOAWAY and the deadline. */
    uv_timer_start(&g->tick, grpc_on_tick, 50, 50);
    for (struct otlp_grpc_conn *c = g->conns; c; c = c->next) {
        if (c->closing)
            continue;
        c->notice_sent = true;
        nghttp2_submit_shutdown_notice(c->h2);
    }
    for (struct otlp_grpc_conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        conn_flush(c);
    }
    grpc_maybe_finish(g);
}
