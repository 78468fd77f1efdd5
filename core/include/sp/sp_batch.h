/* The unit that flows through pipelines.
 *
 * A batch is one signal's worth of decoded data (an OTLP trace, metrics or
 * logs export, or one profile upload) living in one arena owned by the batch. It is refcounted:
 * fan-out to several consumers takes references, and the arena is freed when
 * the last reference drops. A consumer that keeps a batch past consume()
 * (an exporter's queue, the join's hold) takes its own reference.
 * A consumer that mutates data (SP_COMP_MUTATES) gets a private copy from
 * the core when the batch is shared. Loop thread only. */
#ifndef SP_BATCH_H
#define SP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"

/* protobuf-c generated types (build dir, from proto/). */
#include "otlp_logs_service.pb-c.h"
#include "otlp_metrics_service.pb-c.h"
#include "otlp_trace_service.pb-c.h"
#include "pprof_profile.pb-c.h"

enum sp_signal {
    SP_SIGNAL_TRACES = 0,
    SP_SIGNAL_PROFILES = 1,
    SP_SIGNAL_METRICS = 2,
    SP_SIGNAL_LOGS = 3,
    SP_SIGNAL_COUNT = 4,
};
#define SP_SIGNAL_BIT(s) (1u << (s))

const char *sp_signal_name(enum sp_signal s); /* "traces", "profiles", "metrics", "logs" */

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest sp_otlp_request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans sp_otlp_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans sp_otlp_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span sp_otlp_span;
typedef Opentelemetry__Proto__Common__V1__KeyValue sp_otlp_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue sp_otlp_any;
typedef Perftools__Profiles__Profile sp_pprof;

/* Code Hotspots bridge: the runtime id the join recorded for a service
 * instance, so the exporter tags every span of that instance with meta
 * runtime-id and its local root spans with metric _dd.profiling.enabled=1. */
struct sp_runtime_id {
    const char *service;
    const char *instance; /* service.instance.id or host; may be NULL = any */
    const char *runtime_id;
};

struct sp_traces {
    sp_otlp_request *req; /* in the batch arena */
    size_t span_count;
    /* Set by the join processor (in the batch arena); may be NULL. */
    const struct sp_runtime_id *runtime_ids;
    size_t runtime_id_count;
};

/* OTLP metrics or logs: spanprof does not interpret them, it passes them on
 * (exporters/otlphttp). The decoded request proves the input well-formed
 * and gives the count; `pb` is the request as protobuf, exactly the bytes
 * the client sent when it sent protobuf (after removing its compression and
 * gRPC framing), the re-encoding of the decoded request when it sent JSON. */
struct sp_otlp_passthrough {
    const ProtobufCMessage *req; /* ExportMetricsServiceRequest or ExportLogsServiceRequest */
    const uint8_t *pb;           /* in the batch arena */
    size_t pb_len;
    size_t item_count;           /* data points or log records */
};

enum sp_compression {
    SP_COMPRESSION_NONE = 0,
    SP_COMPRESSION_GZIP = 1,
    SP_COMPRESSION_ZSTD = 2,
    SP_COMPRESSION_DEFLATE = 3,
};

/* One file of a profile upload: "cpu.pprof", "delta-heap.pprof",
 * "metrics.json", ... pprof attachments are decoded into `pprof`; the others
 * keep their bytes as received and are passed through unchanged. */
struct sp_attachment {
    const char *name;                 /* the multipart filename / attachment name */
    const uint8_t *data;              /* as received (still compressed if it was) */
    size_t len;
    enum sp_compression compression;  /* how `data` is compressed */
    sp_pprof *pprof;                  /* decoded profile, or NULL when not pprof */
    bool modified;                    /* the join changed `pprof`: re-encode on export */
    /* Which sample types carry span labels (cpu, wall, goroutine): the join
     * touches only those. Set by the receiver from the sample types. */
    bool labelled_type;
};

struct sp_kv_str {
    const char *key;
    const char *value;
};

struct sp_endpoint_count {
    const char *endpoint;
    int64_t count;
};

/* A profile upload: one envelope, several attachments, as Datadog's agent
 * API shapes it. Receivers of plain pprof/Pyroscope/scrape fill one
 * attachment and the envelope fields they know. */
struct sp_profile {
    const char *dialect;     /* "datadog", "pprof", "pyroscope", "scrape" */
    const char *service;
    /* Non-NULL when service was not named by the user but stands in for it
     * (a scrape entry without `service:` uses the target's host): names the
     * source (the scrape target). The join then puts the service of the
     * spans the samples joined to in its place. An empty service is never
     * explicit either. */
    const char *service_fallback;
    const char *env;
    const char *version;
    const char *host;
    const char *runtime_id;  /* from tags_profiler runtime-id, or NULL */
    const char *family;      /* language: "go", "node", "python", ... */
    const char *profile_type;/* for single-profile dialects: "cpu", "heap", ... */
    int64_t start_ns;
    int64_t end_ns;
    int64_t received_ns;     /* monotonic-ish wall clock at arrival (for the join hold) */
    /* Tags other than the ones above, in upload order ("key", "value"). */
    struct sp_kv_str *tags;
    size_t tag_count;
    struct sp_attachment *attachments;
    size_t attachment_count;
    /* Datadog upload extras: the original event.json (NULL otherwise) so the
     * exporter keeps fields it does not understand, and the headers. */
    const char *event_json;
    size_t event_json_len;
    const char *origin;          /* DD-EVP-ORIGIN */
    const char *origin_version;  /* DD-EVP-ORIGIN-VERSION */
    const char *container_id;    /* Datadog-Container-ID */
    /* Filled by the join: local root spans per endpoint in [start, end). */
    struct sp_endpoint_count *endpoint_counts;
    size_t endpoint_count_count;
};

struct sp_batch {
    int refcount;
    enum sp_signal signal;
    struct sp_arena *arena;
    /* Who produced it ("otlp", "pprof/2"): for logs and metrics. Static or arena. */
    const char *origin_component;
    union {
        struct sp_traces traces;
        struct sp_profile profile;
        struct sp_otlp_passthrough otlp; /* SP_SIGNAL_METRICS, SP_SIGNAL_LOGS */
    } u;
};

/* A new batch with refcount 1 and a fresh arena. NULL on ENOMEM.
 * arena_limit caps the arena (0 = none). */
struct sp_batch *sp_batch_create(enum sp_signal signal, size_t arena_limit);
struct sp_batch *sp_batch_ref(struct sp_batch *b);
void sp_batch_unref(struct sp_batch *b);

/* Moves the batch's charge on the memory ceiling to class c (a consumer
 * that keeps it: SP_MEM_PROFILES for the join's hold, SP_MEM_EXPORT for an
 * exporter's queue). New batches are charged as SP_MEM_BATCHES. */
void sp_batch_set_mem_class(struct sp_batch *b, enum sp_mem_class c);

/* Bytes the batch holds (arena size): for queue byte bounds. */
size_t sp_batch_bytes(const struct sp_batch *b);

/* A deep, private copy (new arena) for mutating consumers of a shared
 * batch. NULL on ENOMEM. */
struct sp_batch *sp_batch_clone(const struct sp_batch *b);

/* A profile batch's envelope and attachment bytes without the decoded
 * trees (every pprof NULL): the compact form a consumer that keeps a
 * profile for long holds (the join). Attachments whose tree was modified
 * get no bytes (data NULL, len 0): the caller encodes the tree. NULL on
 * ENOMEM or for a trace batch. */
struct sp_batch *sp_batch_clone_profile_bytes(const struct sp_batch *b);

/* Counts the spans of an OTLP request. */
size_t sp_traces_count_spans(const sp_otlp_request *req);

#endif
