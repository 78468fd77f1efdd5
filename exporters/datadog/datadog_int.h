/* datadog exporter: state and helpers shared by its files (private).
 *
 * datadog.c        component vtable, config table, lifecycle, metrics
 * datadog_conf.c   config validation (api.key trimming, endpoints per site)
 * datadog_queue.c  bounded FIFO of batch references (items and bytes)
 * datadog_send.c   workers: take a batch, encode it, send with retries
 * datadog_traces.c traces batch -> HTTP requests (agentless or agent mode),
 *                  and the lenient rate_by_service reply parser
 * datadog_profiles.c profile batch -> multipart request
 * datadog_stats.c  agentless APM stats: mapped spans -> concentrator ->
 *                  StatsPayload requests on the same workers and retries
 *
 * Data path: consume() takes a reference on the batch and queues it; an
 * idle one of sending_queue.num_consumers workers takes it at once (so the
 * queue's bounds mean what they did), but encodes it on a later loop turn
 * (an idle handle, one batch per turn): the receiver that called consume()
 * answers its client first, and other I/O runs between two batches. The
 * worker encodes the batch into request bodies (the batch reference is
 * dropped as soon as the bodies exist), and sends them one after the
 * other, each retried with exponential backoff until it succeeds, fails
 * permanently or runs out of max_elapsed_time. */
#ifndef SP_DATADOG_INT_H
#define SP_DATADOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_component.h"
#include "sp_conf.h"
#include "sp_err.h"
#include "sp_http_client.h"
#include "sp_metrics.h"

/* The intake's limit on one trace payload (uncompressed, packed). */
#define DD_MAX_TRACE_PAYLOAD 3200000u

/* ---- configuration (filled by the core from datadog.c's key table) ---- */

struct dd_retry_conf {
    bool enabled;
    int64_t initial_interval_ms;
    int64_t max_interval_ms;
    int64_t max_elapsed_ms;
};

struct dd_queue_conf {
    bool enabled;
    int64_t queue_size;    /* items (batches) waiting */
    uint64_t max_bytes;    /* bytes of the batches waiting */
    int64_t num_consumers; /* requests in flight at once */
    char *on_full;         /* "refuse" or "drop_oldest" */
};

struct dd_api_conf {
    char *key;   /* SP_CONF_SECRET */
    char *site;
};

struct dd_endpoint_conf {
    char *endpoint;
};

struct dd_stats_conf {
    bool enabled;           /* agentless mode only */
    int64_t max_keys;
    int64_t flush_delay_ms;
    bool peer_tags;
    bool by_span_kind;
};

struct dd_conf {
    struct dd_api_conf api;
    struct dd_endpoint_conf traces;
    struct dd_endpoint_conf profiles;
    struct dd_endpoint_conf agent;
    char *hostname;
    char *env;
    struct sp_strlist tags;
    int64_t timeout_ms;
    struct dd_retry_conf retry;
    struct dd_queue_conf queue;
    struct dd_stats_conf stats;
};

/* What create() derives from the config (owned, malloc'd). */
struct dd_settings {
    bool agent_mode;
    char *api_key;       /* trimmed; NULL in agent mode without a key */
    char *key_hint;      /* "...abcd": the last 4 chars, for the 403 line */
    char *site;
    char *traces_url;    /* full URL: .../api/v0.2/traces or .../v0.4/traces */
    char *profiles_url;  /* .../api/v2/profile or .../profiling/v1/input */
    char *stats_url;     /* agentless: .../api/v0.2/stats; NULL in agent mode */
    const char **tags;   /* NULL-terminated "k:v" (points into the config) */
};

/* Validates conf and fills s. Errors name the key (never a secret's value). */
int dd_settings_init(const struct dd_conf *conf, const struct sp_conf_ctx *cctx,
                     struct dd_settings *s, struct sp_err *err);
void dd_settings_free(struct dd_settings *s);
/* Trims ASCII whitespace, then one pair of matching quotes, then whitespace
 * again: keys pasted from a shell or a YAML file with quotes still work.
 * Returns a malloc'd copy (NULL on ENOMEM). */
char *dd_trim_key(const char *raw);

/* ---- bounded queue ---- */

struct dd_item {
    struct sp_batch *batch;
    size_t bytes;
    size_t count;         /* spans, or 1 per profile */
};

enum dd_full_policy { DD_FULL_REFUSE = 0, DD_FULL_DROP_OLDEST = 1 };

struct dd_queue {
    struct dd_item *ring;
    size_t cap_alloc;     /* slots allocated (grows up to max_items) */
    size_t head, len;
    size_t max_items;
    size_t max_bytes;
    size_t bytes;
    enum dd_full_policy policy;
};

void dd_queue_init(struct dd_queue *q, size_t max_items, size_t max_bytes,
                   enum dd_full_policy policy);
/* Queues it (the queue takes over the item's batch reference). When full:
 * DD_FULL_REFUSE returns SP_EFULL and keeps nothing; DD_FULL_DROP_OLDEST
 * hands the oldest items to drop(ud, item) until it fits. An item bigger
 * than max_bytes alone is accepted into an empty queue (else it could never
 * go). max_items 0 refuses everything (queue disabled). SP_ENOMEM when the
 * ring cannot grow. */
int dd_queue_push(struct dd_queue *q, const struct dd_item *it,
                  void (*drop)(void *ud, struct dd_item *it), void *ud);
bool dd_queue_pop(struct dd_queue *q, struct dd_item *out);
void dd_queue_free(struct dd_queue *q);

/* ---- retry policy (pure, unit-tested) ---- */

enum dd_verdict { DD_SENT = 0, DD_RETRY = 1, DD_PERMANENT = 2 };

/* 2xx: sent. 408, 429, 5xx and transport errors (status 0): retry. Any
 * other status: permanent. */
enum dd_verdict dd_classify(long status);

/* Backoff before attempt number `attempt` (1 = the first retry):
 * initial * 1.5^(attempt-1), capped at max, then jittered by +-50% with
 * rnd in [0,1). A Retry-After (ms >= 0) replaces the computed delay. */
int64_t dd_backoff_ms(const struct dd_retry_conf *rc, unsigned attempt, double rnd,
                      int64_t retry_after_ms);

/* ---- rate_by_service replies (agent mode) ---- */

/* Parses an agent reply {"rate_by_service": {"service:a,env:b": 0.5, ...}}
 * leniently: anything else (empty body, `{}`, `OK`, garbage) gives 0
 * rates and no error. Returns the number of well-formed rates found and
 * stores the default rate (`service:,env:`) in *default_rate when present
 * (left alone otherwise). Never fails. */
size_t dd_parse_rate_by_service(const uint8_t *body, size_t len, double *default_rate);

/* ---- requests ---- */

struct dd_req {
    const char *method;
    const char *url;              /* borrowed from dd_settings */
    char **headers;               /* NULL-terminated, owned */
    size_t n_headers;
    struct sp_buf body;
    char *content_type_hdr;       /* owned by headers[] */
    enum sp_signal signal;
    size_t count;                 /* spans, or 1 profile */
    bool rates_reply;             /* agent /v0.4/traces: parse rate_by_service */
    bool stats;                   /* an APM stats payload (count 0, own metrics) */
};

int dd_req_add_header(struct dd_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dd_req_free(struct dd_req *r);

struct dd_exporter;

/* Turns a batch into requests (appended to *reqs / *n). The batch is not
 * kept. Spans the mapping rejected are added to *dropped. */
int dd_traces_build(struct dd_exporter *dd, struct sp_batch *b, struct dd_req **reqs, size_t *n,
                    size_t *dropped, struct sp_err *err);
int dd_profiles_build(struct dd_exporter *dd, struct sp_batch *b, struct dd_req **reqs,
                      size_t *n, struct sp_err *err);

/* ---- workers ---- */

struct dd_worker {
    struct dd_exporter *dd;
    uv_timer_t timer;            /* backoff */
    bool busy;                   /* has an item: pending, encoding or sending */
    bool has_pending;            /* taken, not encoded yet (see dd_exporter.idle) */
    struct dd_item pending;
    uint64_t pending_seq;        /* encoding order: the order the items were taken */
    bool in_backoff;
    struct dd_req *reqs;
    size_t n_reqs, cur;
    unsigned attempt;            /* retries done for reqs[cur] */
    uint64_t first_try_ms;       /* uv_now of reqs[cur]'s first attempt */
    struct sp_http_call *call;
};

struct dd_sig_metrics {
    struct sp_metric *sent, *failed, *bytes, *retries, *refused;
    struct sp_metric *dropped_overflow, *dropped_shutdown, *dropped_invalid;
};

/* Rate-limited log state: one line per interval, the rest counted. */
struct dd_ratelog {
    uint64_t last_ms;
    uint64_t suppressed;
};

struct dd_exporter {
    struct sp_component *comp;
    const struct dd_conf *conf;
    struct dd_settings set;
    uv_loop_t *loop;
    struct sp_http_client *http;
    struct dd_queue queue;
    struct dd_worker *workers;
    size_t n_workers;
    int open_handles;            /* worker timers + deadline timer + idle */
    uv_timer_t deadline;
    uv_idle_t idle;              /* runs while workers have pending items */
    bool idle_active;
    size_t n_pending;
    uint64_t pending_seq;
    bool started;
    bool stopping;
    bool abandoning;             /* deadline passed: cancelled calls are not retried */
    bool finished;               /* shutdown done() called */
    bool destroyed;
    sp_done_fn done;
    /* metrics */
    struct dd_sig_metrics m[SP_SIGNAL_COUNT];
    struct sp_metric *queue_size, *queue_bytes, *queue_capacity, *queue_capacity_bytes;
    struct dd_ratelog overflow_log, forbidden_log, fail_log, retry_log;
    /* agent mode: the last default rate the agent reported (for debug logs) */
    double agent_default_rate;
    char agent_version[64];
    struct dd_stats *stats;      /* agentless APM stats, NULL when off */
};

/* Idle workers take queued items (encoded on a later loop turn). */
void dd_workers_kick(struct dd_exporter *dd);
/* Hands an item straight to an idle worker (queue disabled), encoded on a
 * later loop turn. False when every worker is busy; the item is then still
 * the caller's. */
bool dd_workers_offer(struct dd_exporter *dd, struct dd_item *it);
void dd_exporter_queue_changed(struct dd_exporter *dd);
/* At the shutdown deadline: cancel calls and backoffs, count what is left. */
void dd_workers_abandon(struct dd_exporter *dd, size_t *spans_left, size_t *profiles_left);
bool dd_workers_idle(const struct dd_exporter *dd);
/* Called by the workers when everything queued has gone (during shutdown). */
void dd_exporter_maybe_finish(struct dd_exporter *dd);
/* Drops a queued item: counted as dropped for its signal, batch unref'd. */
void dd_item_drop(struct dd_exporter *dd, struct dd_item *it);
bool dd_ratelog_ok(struct dd_exporter *dd, struct dd_ratelog *rl, uint64_t interval_ms);
struct sp_metric *dd_status_counter(struct dd_exporter *dd, long status);

/* ---- APM stats (datadog_stats.c; all no-ops when dd->stats is NULL) ---- */

struct Datadog__Trace__AgentPayload;
/* create(): agentless with stats.enabled. start(): the flush timer. */
int dd_stats_create(struct dd_exporter *dd, struct sp_err *err);
void dd_stats_start(struct dd_exporter *dd);
/* Every span of a mapped payload goes through the concentrator. */
void dd_stats_feed(struct dd_exporter *dd, const struct Datadog__Trace__AgentPayload *p);
/* A worker takes the oldest stats request waiting (one-element array). */
bool dd_stats_take(struct dd_exporter *dd, struct dd_req **reqs, size_t *n);
size_t dd_stats_pending(const struct dd_exporter *dd);
/* Shutdown, once everything queued was mapped: flush every bucket (once)
 * and hand the requests to the workers. */
void dd_stats_final_flush(struct dd_exporter *dd);
/* The outcome of a stats request (sent, or failed with why). */
void dd_stats_done(struct dd_exporter *dd, const struct dd_req *r, bool sent, const char *why);
/* Shutdown deadline: drop what waits, counted. */
void dd_stats_abandon(struct dd_exporter *dd);
void dd_stats_destroy(struct dd_exporter *dd);

#endif
