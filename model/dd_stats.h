/* APM stats (trace metrics) from mapped Datadog spans: the Agent's concentrator.
 *
 * Why: Datadog's service and resource pages (requests, errors, latency
 * percentiles) are built from stats payloads, not from the spans. The
 * Agent computes them before it ships traces (datadog-agent
 * pkg/trace/stats: concentrator.go, span_concentrator.go, statsraw.go,
 * aggregation.go) and posts them to /api/v0.2/stats (pkg/trace/writer/stats.go).
 * In agentless mode nobody else does, so the exporter feeds every mapped
 * span here and sends what sp_dd_stats_flush() encodes.
 *
 * Same rules as the Agent:
 *   - a span counts when it is top-level (metric _top_level or _dd.top_level
 *     = 1), measured
 *     (_dd.measured = 1) or, with by_span_kind (the Agent's default,
 *     compute_stats_by_span_kind), of kind server/client/producer/consumer;
 *     partial snapshots (_dd.partial_version >= 0) never count
 *     (SpanConcentrator.NewStatSpan);
 *   - it lands in the 10 s bucket its END falls in (end - end % 10 s), or in
 *     the oldest bucket still open when that one was already flushed
 *     (oldestTs: addSpan); a bucket is flushed once it is bufferLen (2)
 *     buckets old (its end + flush_delay, 10 s by default), then never
 *     reopened (Flush);
 *   - key: service, name, resource, type, span.kind, HTTP status code,
 *     synthetics (chunk origin starts with "synthetics"), is-trace-root
 *     (parent id 0), gRPC status code, peer tags (aggregation.go
 *     NewAggregationFromSpan), inside a payload key env, hostname, version,
 *     container id, git commit sha, image tag (PayloadAggregationKey);
 *   - per key: hits, errors, top-level hits, summed duration, and the
 *     durations (truncated to 10 mantissa bits as nsTimestampToFloat) in an
 *     ok or an error DDSketch (ddsketch.h).
 * Every span has weight 1: spanprof keeps every span, and the mapped spans
 * carry no _sample_rate (the Agent's weight(): 1 / _sample_rate of the root).
 *
 * Bounded: at most conf.max_keys keys live over all open buckets; a span
 * that would open one more is not counted (sp_dd_stats_add returns
 * SP_EFULL) and adds to the overflow counter.
 *
 * The module takes mapped spans (datadog.trace.Span as model/dd_payload.c
 * produces them) and payload-level fields as plain arguments, and a clock
 * from the caller (now_ns), so tests control time. No I/O. */
#ifndef SP_DD_STATS_H
#define SP_DD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dd_trace.pb-c.h"
#include "sp_buf.h"
#include "sp_err.h"

#define SP_DD_STATS_BUCKET_NS 10000000000LL /* BucketInterval: 10 s */
#define SP_DD_STATS_BUFFER_LEN 2            /* concentrator.go defaultBufferLen */
/* writer/stats.go maxEntriesPerPayload: groups per StatsPayload, which keeps
 * a compressed payload near 1.5 MB, half the intake's limit. */
#define SP_DD_STATS_MAX_ENTRIES 4000

struct sp_dd_stats_conf {
    size_t max_keys;           /* live aggregation keys over all open buckets */
    int64_t flush_delay_ns;    /* wait after a bucket's end before it goes (0: the Agent's
                                * (bufferLen - 1) buckets = 10 s) */
    bool by_span_kind;         /* compute_stats_by_span_kind */
    bool peer_tags;            /* peer_tags_aggregation */
    const char *agent_hostname;/* StatsPayload.AgentHostname; hostname of spans without one */
    const char *agent_env;     /* StatsPayload.AgentEnv; env of spans without one ("none" if NULL) */
    const char *agent_version; /* StatsPayload.AgentVersion */
};

/* PayloadAggregationKey: the tracer payload a span came in. NULL = "". */
struct sp_dd_stats_pkey {
    const char *env;
    const char *hostname;
    const char *version;
    const char *container_id;
    const char *git_commit_sha;
    const char *image_tag;
};

/* One encoded StatsPayload (gzip'd msgpack body). */
struct sp_dd_stats_payload {
    struct sp_buf body;
    size_t entries;     /* ClientGroupedStats in it */
    size_t raw_len;     /* msgpack bytes before gzip */
};

struct sp_dd_stats_counts {
    uint64_t spans_seen;      /* sp_dd_stats_add calls */
    uint64_t spans_counted;   /* eligible and aggregated */
    uint64_t spans_overflow;  /* eligible but over max_keys: not counted */
    uint64_t keys_live;       /* keys over all open buckets now */
    uint64_t buckets_live;
    uint64_t last_bucket_keys;/* keys of the last flushed bucket */
    uint64_t bytes;           /* heap held (keys, strings, sketches) */
};

struct sp_dd_stats;

/* NULL on ENOMEM. now_ns: wall clock; only the current bucket and later
 * ones accept spans at first (NewConcentrator's oldestTs). */
struct sp_dd_stats *sp_dd_stats_create(const struct sp_dd_stats_conf *conf, int64_t now_ns);
void sp_dd_stats_destroy(struct sp_dd_stats *c);

/* Adds one mapped span of the payload pk, whose chunk has origin (NULL
 * ok). Returns 1 when counted, 0 when not eligible, SP_EFULL when over
 * max_keys (counted in spans_overflow), SP_ENOMEM. */
int sp_dd_stats_add(struct sp_dd_stats *c, const struct sp_dd_stats_pkey *pk, const char *origin,
                    const Datadog__Trace__Span *s);

/* Encodes and forgets the buckets old enough at now_ns (all with force,
 * at shutdown): StatsPayloads of at most SP_DD_STATS_MAX_ENTRIES groups
 * (SplitPayload set when a flush needs several), appended to *out (*n
 * grows; free with sp_dd_stats_payloads_free). On error nothing is
 * appended and the buckets are dropped all the same (a bucket is sent
 * once at most). */
int sp_dd_stats_flush(struct sp_dd_stats *c, int64_t now_ns, bool force,
                      struct sp_dd_stats_payload **out, size_t *n, struct sp_err *err);
void sp_dd_stats_payloads_free(struct sp_dd_stats_payload *p, size_t n);

void sp_dd_stats_get_counts(const struct sp_dd_stats *c, struct sp_dd_stats_counts *out);

#endif
