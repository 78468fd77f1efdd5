/* otlp receiver internals shared by otlp.c (component, config, signal table,
 * lifecycle), otlp_grpc.c (gRPC on nghttp2), otlp_http.c (OTLP/HTTP on
 * sp_httpd) and otlp_export.c (the export path and counters both transports
 * call). */
#ifndef OTLP_INT_H
#define OTLP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp_codec.h"
#include "sp_component.h"
#include "sp_conf.h"
#include "sp_httpd.h"
#include "sp_metrics.h"

/* ---- configuration (the Collector's names and defaults) ---- */

struct otlp_keepalive_server {
    int64_t max_connection_idle_ms;      /* 0 = no limit */
    int64_t max_connection_age_ms;       /* 0 = no limit */
    int64_t max_connection_age_grace_ms; /* 0 = no limit */
    int64_t time_ms;                     /* ping an idle client after this */
    int64_t timeout_ms;                  /* close when the ping is not answered in time */
};

struct otlp_keepalive_enforcement {
    int64_t min_time_ms;
    bool permit_without_stream;
};

struct otlp_keepalive {
    struct otlp_keepalive_server server_parameters;
    struct otlp_keepalive_enforcement enforcement_policy;
};

struct otlp_grpc_conf {
    bool present; /* SP_CONF_OPTIONAL_BLOCK */
    char *endpoint;
    char *transport;
    int64_t max_recv_msg_size_mib;
    int64_t max_concurrent_streams;
    uint64_t read_buffer_size;
    uint64_t write_buffer_size;
    int64_t max_connections;
    uint64_t max_inflight_bytes;
    struct otlp_keepalive keepalive;
};

struct otlp_cors_conf {
    struct sp_strlist allowed_origins;
    struct sp_strlist allowed_headers;
    int64_t max_age;
};

struct otlp_http_conf {
    bool present; /* SP_CONF_OPTIONAL_BLOCK */
    char *endpoint;
    char *traces_url_path;
    char *metrics_url_path;
    char *logs_url_path;
    uint64_t max_request_body_size;
    int64_t idle_timeout_ms;
    int64_t max_connections;
    struct otlp_cors_conf cors;
};

struct otlp_protocols_conf {
    struct otlp_grpc_conf grpc;
    struct otlp_http_conf http;
};

struct otlp_conf {
    struct otlp_protocols_conf protocols;
};

/* ---- runtime ---- */

enum otlp_transport { OTLP_GRPC = 0, OTLP_HTTP = 1, OTLP_TRANSPORT_COUNT = 2 };

/* The OTLP signals the receiver serves. Everything that differs between
 * them is a row of otlp_signals[] (otlp.c); the export path, its checks and
 * its counters are one code path indexed by this. */
enum otlp_sig { OTLP_SIG_TRACES = 0, OTLP_SIG_METRICS, OTLP_SIG_LOGS, OTLP_SIG_COUNT };

struct otlp_signal {
    enum sp_signal signal;
    const char *grpc_path;      /* the gRPC method */
    size_t http_path_offset;    /* offsetof the *_url_path key in struct otlp_http_conf */
    const char *items;          /* what is counted, for messages: "spans" */
    const char *metric_items;   /* the same in metric names: "spans", "metric_points" */
    const char *sdk_variable;   /* the SDK variable that points only this signal somewhere */
};
extern const struct otlp_signal otlp_signals[OTLP_SIG_COUNT];

/* The HTTP path a signal is served on. */
const char *otlp_http_path(const struct otlp_http_conf *conf, enum otlp_sig sig);

/* What became of a request: one counter per outcome and transport. */
enum otlp_outcome {
    OTLP_OUT_SUCCESS = 0,  /* every span accepted */
    OTLP_OUT_PARTIAL,      /* some spans rejected by validation, the rest accepted */
    OTLP_OUT_INVALID,      /* undecodable or malformed request */
    OTLP_OUT_TOO_LARGE,    /* over a size limit */
    OTLP_OUT_REFUSED,      /* the pipeline is full or failing transiently: retry */
    OTLP_OUT_FAILED,       /* the pipeline failed permanently */
    OTLP_OUT_UNSUPPORTED,  /* method, path, media type or encoding not served */
    OTLP_OUT_COUNT,
};

struct otlp_result {
    enum otlp_outcome outcome;
    int code;                /* the sp_errcode behind it (refused: SP_EFULL or SP_ERETRY) */
    int64_t rejected;        /* spans rejected (partial success) */
    char message[SP_ERR_MSG_MAX];
};

struct otlp_grpc;

struct otlp_ctx {
    struct sp_component *comp;
    struct otlp_conf *conf;
    struct otlp_grpc *grpc;
    struct sp_httpd *httpd;
    int http_port;
    sp_done_fn done;
    int pending_stops;
    bool started;
    bool shutting_down;
    bool shutdown_done;
    struct sp_metric *accepted[OTLP_SIG_COUNT][OTLP_TRANSPORT_COUNT];
    struct sp_metric *refused[OTLP_SIG_COUNT][OTLP_TRANSPORT_COUNT];
    /* Items of a signal no pipeline takes: answered success and dropped. */
    struct sp_metric *no_pipeline[OTLP_SIG_COUNT];
    bool no_pipeline_warned[OTLP_SIG_COUNT];
    struct sp_metric *bytes[OTLP_TRANSPORT_COUNT];
    struct sp_metric *refused_early[OTLP_TRANSPORT_COUNT];
    struct sp_metric *refused_undecoded[OTLP_TRANSPORT_COUNT];
    struct sp_metric *requests[OTLP_TRANSPORT_COUNT][OTLP_OUT_COUNT];
    /* Rate limit for warnings about bad requests: one line per second,
     * with how many were suppressed. */
    uint64_t warn_window_ms;
    unsigned warn_suppressed;
    /* What processing a request costs, learned from otlp_export (decode and
     * the pipeline's consume), as decayed sums: cost_ns / cost_bytes is
     * nanoseconds per body byte. Used to refuse new requests while the
     * bodies already received would take longer than OTLP_BACKLOG_MS. */
    double cost_ns;
    double cost_bytes;
};

/* ---- otlp_export.c ---- */

/* Registers the counters above (at create). */
void otlp_metrics_create(struct otlp_ctx *ctx);

/* What a refusal asks clients to wait: Retry-After on HTTP, RetryInfo on
 * gRPC. The OTel SDK exporters honour both. */
#define OTLP_RETRY_AFTER_S 1

/* The one check every transport makes, per signal, before it reads a
 * request's body: can the pipeline take about `bytes` more (the memory
 * ceiling's soft mark, the next stages' queues)? True: go on. False: res
 * says what to answer (outcome REFUSED, code SP_EFULL or another retryable
 * code); the refusal is counted and logged (rate-limited). Costs a few
 * comparisons when admitted. */
bool otlp_admit(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_sig sig, size_t bytes,
                struct otlp_result *res);

/* The second look, once an admitted request's body is in and before it is
 * inflated and decoded: do the next stages still take the signal
 * (sp_component_pipeline_ready)? Between the headers and the end of the
 * body a payload may have sealed and filled the exporter's queue; without
 * this look the request would be decoded only for consume() to refuse it.
 * Under 10x overload on a busy core that was up to 4.5 decoded-then-refused
 * requests per accepted one, and the decoding delayed the exporter's own
 * sends (bench/RESULTS.md "OTLP/HTTP at 10x"). False: res says what to
 * answer (REFUSED, retry hint), counted in requests_total and
 * refused_undecoded_requests_total, logged rate-limited. */
bool otlp_admit_decode(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_sig sig,
                       struct otlp_result *res);

/* The time half of admission, also asked by gRPC once a message declares
 * its size (its headers carry none): would the request bodies being
 * received or waiting (the memory ceiling's class bodies, every receiver's)
 * plus `bytes` take more than OTLP_BACKLOG_MS of this loop to process, at
 * the cost per byte measured so far? Then false with res filled (outcome
 * REFUSED, code SP_ERETRY). Always true when no body is pending, so one
 * request at a time goes through however slow the machine. Not counted:
 * the caller counts. */
bool otlp_admit_backlog(struct otlp_ctx *ctx, size_t bytes, struct otlp_result *res);

/* A request accepted now is answered within about this much processing
 * time of those before it: well inside the OTel SDKs' 10 s export timeout
 * and the Collector exporterhelper's 5 s, so a client never gives up on a
 * request spanprof accepted (and sends it again). */
#define OTLP_BACKLOG_MS 2000

/* Decodes, validates and passes on one export request (body already
 * inflated), counts it, and says what to answer. */
void otlp_export(struct otlp_ctx *ctx, enum otlp_sig sig, enum otlp_transport t,
                 enum sp_otlp_encoding enc, const uint8_t *body, size_t len,
                 struct otlp_result *res);

/* Counts a request answered before decoding (method, path, media type,
 * size...) and logs why, rate-limited. */
void otlp_count_early(struct otlp_ctx *ctx, enum otlp_transport t, enum otlp_outcome o,
                      const char *why);
void otlp_count_bytes(struct otlp_ctx *ctx, enum otlp_transport t, size_t n);
void otlp_warn_limited(struct otlp_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- otlp_grpc.c, otlp_http.c ---- */

/* The two transports' halves of start and shutdown. done_one() is called by
 * each transport once it has fully stopped. */
int otlp_grpc_start(struct otlp_ctx *ctx, struct sp_err *err);
void otlp_grpc_shutdown(struct otlp_ctx *ctx, void (*done_one)(struct otlp_ctx *ctx));
int otlp_http_start(struct otlp_ctx *ctx, struct sp_err *err);
void otlp_http_shutdown(struct otlp_ctx *ctx, void (*done_one)(struct otlp_ctx *ctx));

/* The gRPC port actually bound (tests use port 0). */
int otlp_grpc_port(const struct otlp_grpc *g);


#endif
