/* datadog exporter: state and helpers shared by its files (private).
 *
 * datadog.c          component vtable, config table, lifecycle, metrics
 * datadog_conf.c     config validation (api.key trimming, endpoints per site)
 * datadog_traces.c   open trace payloads: mapped spans in, sealed requests out
 * datadog_profiles.c profile batch -> its final multipart request
 * datadog_queue.c    bounded FIFO of sealed requests (items and bytes)
 * datadog_send.c     workers: take a sealed request, send it with retries
 * datadog_store.c    sending_queue.storage: sealed requests as files
 * datadog_policy.c   retry classification and backoff, rate_by_service
 * datadog_stats.c    agentless APM stats: mapped spans -> concentrator ->
 *                    StatsPayload requests, sent by the same workers
 *
 * Data path (ARCHITECTURE.md "Datadog exporter"): consume() maps a traces
 * batch to Datadog spans at once and appends them, packed, to the open
 * payload of their destination; the OTLP batch is released before
 * consume() returns. An open payload is sealed (packed AgentPayload
 * compressed with zstd or gzip, or a v0.4 msgpack body) at flush_interval
 * or near 3.2 MB and queued as bytes; a profile is queued as its final
 * multipart body. Up to sending_queue.num_consumers workers take sealed
 * requests (what a previous run left in storage first, then profiles, then
 * traces) and send each, retried with backoff until it succeeds, fails
 * permanently or runs out of max_elapsed_time. */
#ifndef SP_DATADOG_INT_H
#define SP_DATADOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dd_map.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_component.h"
#include "sp_compress.h"
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
    char *storage;         /* directory for sealed requests across restarts, or NULL */
    uint64_t max_disk_bytes;
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
    int64_t flush_interval_ms; /* seal an open trace payload this long after it opened */
    char *compression;         /* agentless trace payloads: "zstd" (default) or "gzip" */
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
    const char *hostname; /* exporter hostname, or NULL (points into the config) */
    const char *env;      /* exporter env, or NULL (points into the config) */
    /* Agentless trace payloads are compressed with this (zstd level 1 or
     * gzip level 1, the `compression` key; agent mode: NULL, v0.4 bodies go
     * as tracers send them). Owned; reused for every payload. */
    struct sp_compressor *compressor;
};

/* Validates conf and fills s. Errors name the key (never a secret's value). */
int dd_settings_init(const struct dd_conf *conf, const struct sp_conf_ctx *cctx,
                     struct dd_settings *s, struct sp_err *err);
void dd_settings_free(struct dd_settings *s);
/* Trims ASCII whitespace, then one pair of matching quotes, then whitespace
 * again: keys pasted from a shell or a YAML file with quotes still work.
 * Returns a malloc'd copy (NULL on ENOMEM). */
char *dd_trim_key(const char *raw);

/* ---- requests: a sealed payload, what is queued, sent and stored ---- */

struct dd_req {
    enum sp_signal signal;
    const char *method;           /* static: "POST" or "PUT" */
    char **headers;               /* NULL-terminated, owned; never the API key */
    size_t n_headers;
    struct sp_buf body;           /* final bytes (zstd/gzip'd protobuf, msgpack, multipart) */
    enum sp_compression encoding; /* of body: its Content-Encoding header names it too */
    size_t count;                 /* spans, or 1 profile */
    bool rates_reply;             /* agent /v0.4/traces: parse rate_by_service */
    bool stats;                   /* an APM stats payload (count 0, own metrics, never stored) */
    char *file;                   /* the storage file holding it, or NULL */
    uint64_t file_bytes;
};

struct dd_req *dd_req_new(enum sp_signal signal, const char *method);
int dd_req_add_header(struct dd_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees r (NULL is fine); header memory is wiped first. */
void dd_req_free(struct dd_req *r);

/* ---- bounded queue of sealed requests ---- */

struct dd_item {
    struct dd_req *req;
    size_t bytes;         /* the body's bytes: what it costs while queued */
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
    size_t count;         /* spans (or profiles) queued */
    enum dd_full_policy policy;
};

void dd_queue_init(struct dd_queue *q, size_t max_items, size_t max_bytes,
                   enum dd_full_policy policy);
/* True when an item of that many bytes would be queued without dropping. */
bool dd_queue_fits(const struct dd_queue *q, size_t bytes);
/* Queues it (the queue takes over the item's request). When full:
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

/* Wait before retry number `attempt` (1 = the first retry): the backoff
 * initial * 1.5^(attempt-1) jittered by +-50% (rnd in [0,1)) and then held
 * inside [initial_interval, max_interval]; the server's Retry-After
 * (retry_after_ms >= 0) bounds the wait from below, it never shortens it:
 * max(backoff, Retry-After). */
int64_t dd_backoff_ms(const struct dd_retry_conf *rc, unsigned attempt, double rnd,
                      int64_t retry_after_ms);

/* ---- rate_by_service replies (agent mode) ---- */

/* Parses an agent reply {"rate_by_service": {"service:a,env:b": 0.5, ...}}
 * leniently: anything else (empty body, `{}`, `OK`, garbage) gives 0
 * rates and no error. Returns the number of well-formed rates found and
 * stores the default rate (`service:,env:`) in *default_rate when present
 * (left alone otherwise). Never fails. */
size_t dd_parse_rate_by_service(const uint8_t *body, size_t len, double *default_rate);

/* ---- building requests (pure: settings in, requests out) ---- */

/* An open trace payload: the mapped spans of one destination, packed as
 * they arrive, waiting to be sealed into one request. */
struct dd_open {
    char *key;                    /* destination: who may share this payload */
    size_t key_len;
    struct dd_req *req;           /* headers so far; the body is made at seal */
    struct sp_buf raw;            /* agentless: AgentPayload head + tracer payloads;
                                     agent: msgpack traces without the array header */
    struct sp_buf tail;           /* agentless: AgentPayload fields after tracerPayloads */
    size_t spans, traces;
    char langs[128];              /* agentless: X-Datadog-Reported-Languages */
    uint64_t opened_ms;
};

/* The mapping options the settings give. */
void dd_map_opts(const struct dd_settings *s, struct sp_dd_map_opts *mo);

/* The destination key of one tracer payload of a mapped payload (appended
 * to key): payloads with the same key may share an open payload. */
int dd_trace_dest_key(const struct dd_settings *s, const Datadog__Trace__AgentPayload *ap,
                      const Datadog__Trace__TracerPayload *tp, struct sp_buf *key);
/* Opens o for the destination of tp (o zeroed by the caller). */
int dd_open_init(const struct dd_settings *s, struct dd_open *o,
                 const Datadog__Trace__AgentPayload *ap, const Datadog__Trace__TracerPayload *tp,
                 const struct sp_buf *key, uint64_t now_ms, struct sp_err *err);
/* Bytes o's request body would have (before compression) with a tracer
 * payload of that many packed bytes more. */
size_t dd_open_size_with(const struct dd_open *o, size_t more);
/* The packed bytes of tp as o's body will hold them. */
int dd_open_encode(const struct dd_settings *s, const struct dd_open *o,
                   const Datadog__Trace__AgentPayload *ap, const Datadog__Trace__TracerPayload *tp,
                   struct sp_buf *out, size_t *traces, struct sp_err *err);
/* Appends what dd_open_encode made (spans, traces counted). */
int dd_open_append(struct dd_open *o, const Datadog__Trace__TracerPayload *tp,
                   const struct sp_buf *bytes, size_t spans, size_t traces);
/* Seals o into its request (*out, o's request moves there) and frees o.
 * keep (may be NULL): on success o's raw buffer moves there, emptied, for
 * the next open payload to reuse. */
int dd_open_seal(const struct dd_settings *s, struct dd_open *o, struct dd_req **out,
                 struct sp_buf *keep, struct sp_err *err);
void dd_open_free(struct dd_open *o);

/* A profile's final multipart request. */
int dd_profile_req(const struct dd_settings *s, const struct sp_profile *p, struct dd_req **out,
                   struct sp_err *err);

/* ---- storage (sending_queue.storage) ---- */

struct dd_store {
    char *dir;
    uint64_t max_bytes;
    uint64_t used;                /* bytes of the files we know of in dir */
    char **backlog;               /* files left by a previous run, oldest first */
    size_t n_backlog, next;
    uint64_t seq;
    bool agent_mode;
};

/* Opens (creates) dir, checks it is writable, lists what a previous run
 * left. A clear error when dir cannot be used. */
int dd_store_open(struct dd_store *st, const char *dir, uint64_t max_bytes, bool agent_mode,
                  struct sp_err *err);
/* The next file of the backlog as a request (r->file set), or NULL when
 * none is left. A file that cannot be read back is moved aside (renamed
 * with a ".bad" suffix), reported through bad(ud, name, reason), and
 * skipped. */
struct dd_req *dd_store_next(struct dd_store *st,
                             void (*bad)(void *ud, const char *name, const char *why), void *ud);
size_t dd_store_backlog(const struct dd_store *st);
/* Writes r as a file (r->file set). SP_EFULL past max_bytes; SP_EIO etc.
 * with a message otherwise. A request that has a file already is kept. */
int dd_store_write(struct dd_store *st, struct dd_req *r, struct sp_err *err);
/* Deletes r's file (delivered or given up). */
void dd_store_remove(struct dd_store *st, struct dd_req *r);
void dd_store_close(struct dd_store *st);
/* The file format alone (no I/O): a request's file bytes (the current
 * version, 2), appended to b; and a file's bytes (version 1 or 2) back into
 * a request with its encoding set (NULL and *why when they are not a whole,
 * undamaged file written for this mode, or its encoding byte, header and
 * body disagree). Fuzzed. */
int dd_store_encode(const struct dd_req *r, bool agent_mode, struct sp_buf *b);
struct dd_req *dd_store_parse(const uint8_t *data, size_t len, bool agent_mode,
                              const char **why);

/* ---- workers ---- */

struct dd_worker {
    struct dd_exporter *dd;
    uv_timer_t timer;            /* backoff */
    struct dd_req *req;          /* the request being sent, NULL when idle */
    bool in_backoff;
    unsigned attempt;            /* retries done for req */
    uint64_t first_try_ms;       /* uv_now of req's first attempt */
    struct sp_http_call *call;
};

struct dd_sig_metrics {
    struct sp_metric *accepted, *sent, *failed, *bytes, *retries, *refused;
    struct sp_metric *dropped_overflow, *dropped_shutdown, *dropped_invalid, *dropped_storage;
    struct sp_metric *stored, *restored;
};

/* Rate-limited log state: one line per interval, the rest counted. */
struct dd_ratelog {
    uint64_t last_ms;
    uint64_t suppressed;
};

/* Drops of the last seconds, for the shutdown line (metrics die with the
 * process): one slot per second, DD_DROP_WINDOW_S of them. */
#define DD_DROP_WINDOW_S 10
struct dd_drop_window {
    uint64_t sec[DD_DROP_WINDOW_S];
    uint64_t n[DD_DROP_WINDOW_S];
};

/* What the shutdown summary line reports. */
struct dd_left {
    size_t n[SP_SIGNAL_COUNT];          /* not delivered by the deadline */
    size_t stored[SP_SIGNAL_COUNT];     /* of which written to storage */
    size_t unanswered[SP_SIGNAL_COUNT]; /* of which in flight with no answer */
};

/* At most this many destinations have an open trace payload at once. */
#define DD_MAX_OPEN 16

struct dd_exporter {
    struct sp_component *comp;
    const struct dd_conf *conf;
    struct dd_settings set;
    uv_loop_t *loop;
    struct sp_http_client *http;
    /* sealed requests waiting: one queue per signal (profiles keep their
     * own share of the bounds, see dd_queue_room) */
    struct dd_queue queue[SP_SIGNAL_COUNT];
    size_t max_items, max_bytes;
    struct dd_open open[DD_MAX_OPEN];
    size_t n_open;
    size_t open_bytes;           /* raw bytes of the open payloads */
    /* The last sealed payload's raw buffer, emptied, for the next open
     * payload: a 1 s payload at 10k spans/s is ~3 MB, and fresh pages for
     * every one cost ~35 page faults a request (bench/RESULTS.md, "the
     * open payload's buffer"). Its capacity is reserved (class export). */
    struct sp_buf spare_raw;
    uv_timer_t flush;
    struct dd_store store;
    bool has_store;
    struct dd_worker *workers;
    size_t n_workers;
    int open_handles;            /* worker timers + deadline timer + flush timer */
    uv_timer_t deadline;
    bool started;
    bool stopping;
    bool abandoning;             /* deadline passed: nothing new is sent */
    bool finished;               /* shutdown done() called */
    bool destroyed;
    sp_done_fn done;
    uint64_t queued_bytes_charged; /* charged to sp_memory (dd_charge_queue_bytes) */
    uint64_t reserve_ahead;      /* reserved for open-payload growth still to come */
    /* metrics */
    struct dd_sig_metrics m[SP_SIGNAL_COUNT];
    struct sp_metric *queue_size, *queue_bytes, *queue_capacity, *queue_capacity_bytes;
    struct sp_metric *in_flight, *in_backoff, *pending_spans, *open_spans, *store_backlog;
    struct sp_metric *store_bad, *store_errors;
    struct dd_ratelog overflow_log, forbidden_log, fail_log, retry_log, store_log;
    struct dd_drop_window drops[SP_SIGNAL_COUNT];
    struct dd_left left;
    /* agent mode: the last default rate the agent reported (for debug logs) */
    double agent_default_rate;
    struct dd_stats *stats;      /* agentless APM stats, NULL when off */
};

/* Idle workers take the next sealed request. */
void dd_workers_kick(struct dd_exporter *dd);
/* Hands a request straight to an idle worker (queue disabled). False when
 * every worker is busy; the request is then still the caller's. */
bool dd_workers_offer(struct dd_exporter *dd, struct dd_req *r);
/* The next request to send: the storage backlog first, then profiles, then
 * traces (NULL when none). */
struct dd_req *dd_next_req(struct dd_exporter *dd);
void dd_exporter_state_changed(struct dd_exporter *dd);
/* At the shutdown deadline: no new attempt; requests waiting in backoff
 * (and calls in flight when cancel_in_flight) go to dd_req_left. A call in
 * flight that is not cancelled ends as it ends: an answer from the intake
 * is counted as what it is. */
void dd_workers_abandon(struct dd_exporter *dd, bool cancel_in_flight);
/* A request that could not be delivered before the deadline: written to
 * storage when configured, else counted as dropped at shutdown. */
void dd_req_left(struct dd_exporter *dd, struct dd_req *r, bool in_flight);
bool dd_workers_idle(const struct dd_exporter *dd);
size_t dd_workers_busy(const struct dd_exporter *dd, size_t *in_flight, size_t *in_backoff,
                       size_t *spans);
/* Called by the workers when everything queued has gone (during shutdown). */
void dd_exporter_maybe_finish(struct dd_exporter *dd);
/* A request is done with (sent, failed or dropped): its storage file goes. */
void dd_req_done(struct dd_exporter *dd, struct dd_req *r);
/* Counts a drop (metric, the shutdown line's window). */
void dd_count_drop(struct dd_exporter *dd, enum sp_signal s, struct sp_metric *m, size_t n);
bool dd_ratelog_ok(struct dd_exporter *dd, struct dd_ratelog *rl, uint64_t interval_ms);
struct sp_metric *dd_status_counter(struct dd_exporter *dd, long status);
const char *dd_url_for(const struct dd_exporter *dd, const struct dd_req *r);

/* ---- APM stats (datadog_stats.c; all no-ops when dd->stats is NULL) ---- */

/* create(): agentless with stats.enabled. start(): the flush timer. */
int dd_stats_create(struct dd_exporter *dd, struct sp_err *err);
void dd_stats_start(struct dd_exporter *dd);
/* Every span of a mapped payload goes through the concentrator. */
void dd_stats_feed(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *p);
/* The oldest stats request waiting (the caller owns it), or NULL. */
struct dd_req *dd_stats_take(struct dd_exporter *dd);
size_t dd_stats_pending(const struct dd_exporter *dd);
/* Shutdown: flush every bucket (once) and hand the requests to the workers. */
void dd_stats_final_flush(struct dd_exporter *dd);
/* The outcome of a stats request (sent, or not, with why). */
void dd_stats_done(struct dd_exporter *dd, const struct dd_req *r, bool sent, const char *why);
/* Shutdown deadline: drop what waits, counted. */
void dd_stats_abandon(struct dd_exporter *dd);
void dd_stats_destroy(struct dd_exporter *dd);

#endif
