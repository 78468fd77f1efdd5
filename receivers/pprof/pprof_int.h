/* pprof receiver internals shared by its files: configuration, state,
 * metrics, and the helpers the HTTP routes and the scraper both use to turn
 * a pprof body into an emitted profile batch. */
#ifndef PPROF_INT_H
#define PPROF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pprof_codec.h"
#include "sp_component.h"
#include "sp_conf.h"
#include "sp_http_client.h"
#include "sp_httpd.h"
#include "sp_metrics.h"

/* --- configuration --------------------------------------------------------- */

struct pprof_scrape_conf {
    struct sp_strlist targets;  /* "host:port" or "http(s)://host:port[/prefix]" */
    int64_t interval_ms;
    struct sp_strlist profiles; /* cpu, heap, allocs, goroutine, mutex, block */
    int64_t cpu_duration_ms;
    int64_t timeout_ms;         /* 0: cpu_duration + 10 s for cpu, 10 s otherwise */
    char *service;
    struct sp_strmap tags;
};

struct pprof_conf {
    char *endpoint;
    uint64_t max_request_size;
    uint64_t max_profile_size;
    uint64_t max_decoded_size;
    int64_t max_attachments;
    int64_t retry_after_ms;
    bool accept_tracer_traffic;
    int64_t max_connections;
    struct sp_blocklist scrape; /* of struct pprof_scrape_conf */
};

/* --- dialects and metrics -------------------------------------------------- */

enum pprof_dialect {
    PPROF_DIALECT_DATADOG = 0,
    PPROF_DIALECT_PPROF = 1,
    PPROF_DIALECT_PYROSCOPE = 2,
    PPROF_DIALECT_SCRAPE = 3,
    PPROF_DIALECT_COUNT = 4,
};

extern const char *const pprof_dialect_names[PPROF_DIALECT_COUNT];

struct pprof_dialect_metrics {
    struct sp_metric *accepted;  /* profiles (envelopes) handed on */
    struct sp_metric *refused;   /* envelopes refused: bad input, full pipeline */
    struct sp_metric *dropped_attachments; /* bad attachments dropped from accepted uploads */
    struct sp_metric *bytes;     /* request/response body bytes received */
};

/* --- scrape state ---------------------------------------------------------- */

struct pprof_delta_state;
struct pprof_ctx;

/* One (target, profile type) pair: its own timer and delta baseline. */
struct pprof_scrape_job {
    struct pprof_ctx *ctx;
    const struct pprof_scrape_conf *conf;
    char *target;       /* as configured */
    char *url;          /* full URL */
    const char *profile;/* "cpu", "heap", ... (static) */
    const char *attachment_name;
    bool cumulative;    /* delta against the previous scrape */
    uv_timer_t timer;
    struct sp_http_call *call; /* in flight, or NULL */
    int64_t started_ns;
    struct pprof_delta_state *delta;
    struct sp_metric *ok, *failed, *skipped, *last_success, *duration;
    struct sp_metric *refused; /* skipped or dropped undecoded: the pipeline refused */
    unsigned log_suppressed;
};

/* --- the component --------------------------------------------------------- */

struct pprof_ctx {
    struct sp_component *comp;
    const struct pprof_conf *conf;
    struct sp_httpd *httpd;
    struct sp_http_client *client;
    struct pprof_scrape_job *jobs;
    size_t job_count;
    size_t jobs_closing;
    void (*scrape_done)(struct pprof_ctx *ctx);
    bool started;
    bool shutting_down;
    sp_done_fn done;
    sp_done_fn done_again; /* a second shutdown() while the first is pending */
    bool stopped;
    int pending_closes;
    struct pprof_dialect_metrics m[PPROF_DIALECT_COUNT];
    struct sp_metric *refused_unread;  /* uploads refused from their headers alone */
    struct sp_metric *tracer_requests; /* dd-trace's trace/telemetry posts answered and dropped */
    uint64_t tracer_dropped;           /* the same count, for the log lines */
    /* Rate-limited warnings: at most PPROF_LOG_BURST per window. */
    uint64_t log_window_start_ms;
    unsigned log_count;
    unsigned log_suppressed;
};

#define PPROF_LOG_BURST 20
#define PPROF_LOG_WINDOW_MS 10000

void pprof_log_warn(struct pprof_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int64_t pprof_now_ns(void); /* CLOCK_REALTIME */

/* Creates a profile batch of the receiver's size limits. NULL on ENOMEM. */
struct sp_batch *pprof_batch_new(struct pprof_ctx *ctx, const char *dialect);

/* Fills att from a pprof body: copies the bytes into the batch arena,
 * decodes (bounded), sets compression, pprof and labelled_type. On error the
 * message names the problem (the caller prefixes the part). */
int pprof_attach_pprof(struct pprof_ctx *ctx, struct sp_batch *b, struct sp_attachment *att,
                       const char *name, const uint8_t *data, size_t len, struct sp_err *err);

/* Fills start/end from the first decoded attachment when still unset. */
void pprof_times_from_pprof(struct sp_profile *p);

/* The profile type a pprof's sample types suggest ("cpu", "heap", ...), or NULL. */
const char *pprof_guess_type(const sp_pprof *p);

/* Hands the batch on; counts accepted/refused. Returns the emit code. */
int pprof_emit(struct pprof_ctx *ctx, enum pprof_dialect d, struct sp_batch *b,
               struct sp_err *err);

/* HTTP routes (pprof_http.c). */
void pprof_http_handler(void *ud, struct sp_http_request *req);

/* Scraper (pprof_scrape.c). */
int pprof_scrape_validate(struct pprof_ctx *ctx, struct sp_err *err);
int pprof_scrape_start(struct pprof_ctx *ctx, struct sp_err *err);
/* Cancels calls and closes timers; done(ctx) when every handle is closed. */
void pprof_scrape_stop(struct pprof_ctx *ctx, void (*done)(struct pprof_ctx *ctx));
void pprof_scrape_free(struct pprof_ctx *ctx);

/* --- delta of cumulative profiles (pprof_delta.c) -------------------------- */

/* True for sample types that only grow over a process's life. */
bool pprof_delta_is_cumulative_type(const char *type);

struct pprof_delta_state *pprof_delta_new(void);
void pprof_delta_free(struct pprof_delta_state *s);

/* Turns cur (a cumulative snapshot) into the delta since the snapshot the
 * state holds, in place, and makes cur's original values the new baseline.
 * cumulative[i] marks the sample-type columns to subtract (NULL: decided by
 * pprof_delta_is_cumulative_type). Samples are matched by resolved stack
 * (addresses, functions, lines) and labels, not by ids (ids change between
 * snapshots). Samples left all-zero are removed. *had_baseline says whether
 * a previous snapshot with the same sample types existed (the first one only
 * sets the baseline). Returns 0 or SP_ENOMEM (state reset). */
int pprof_delta_apply(struct pprof_delta_state *s, sp_pprof *cur, const bool *cumulative,
                      bool *had_baseline);

/* Without state: cur -= prev for the cumulative columns (Pyroscope's
 * prev_profile). Same matching as above. */
int pprof_delta_subtract(sp_pprof *cur, const sp_pprof *prev, const bool *cumulative);

#endif
