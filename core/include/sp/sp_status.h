/* The status page's data: what components say about themselves, gathered
 * into one JSON document (GET /status.json; GET /status renders it).
 *
 * Components register a writer (sp_status_add) that appends the members of
 * one JSON object, and note their last notable events (sp_status_note: a
 * bad request, a delivery, an export error) in one call at the site. The
 * document is built on the loop thread only, and only when someone asks:
 *   - sp_status_json() called on the loop thread builds a snapshot there
 *     and then, unless the last one is younger than SP_STATUS_REFRESH_MS;
 *   - called from another thread (the telemetry thread, when /metrics has
 *     one), it wakes the loop (uv_async) to build one and waits at most
 *     SP_STATUS_WAIT_MS for it;
 * either way a loop timer then refreshes the snapshot every
 * SP_STATUS_REFRESH_MS while requests keep coming (the last within
 * SP_STATUS_IDLE_MS), then stops and frees it. So any number of clients
 * costs at most one build per interval, and nobody asking costs nothing:
 * no timer runs, no writer is called, no snapshot is kept.
 *
 * Text noted here may come from outside (error bodies, client input): it is
 * stored truncated to SP_STATUS_TEXT_MAX with registered secrets redacted,
 * JSON-escaped when written, and the page sets it with textContent only. */
#ifndef SP_STATUS_H
#define SP_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "sp_buf.h"
#include "sp_jw.h"

#define SP_STATUS_TEXT_MAX 256
#define SP_STATUS_REFRESH_MS 1000
#define SP_STATUS_IDLE_MS 15000
#define SP_STATUS_WAIT_MS 500

enum sp_status_event {
    SP_STATUS_BAD_REQUEST = 0, /* a request refused as invalid/too large/unsupported */
    SP_STATUS_DELIVERED,       /* a payload delivered (text: where) */
    SP_STATUS_EXPORT_ERROR,    /* a delivery failed or is retried (text: status, message) */
    SP_STATUS_EVENT_COUNT
};

/* Writes the members of the object {"id": id, ...} in the document's list
 * `list` ("components", "join", "pipelines"). Runs on the loop thread. */
typedef void (*sp_status_fn)(void *ud, struct sp_jw *w);

/* Registration happens at start-up on the loop thread; id is copied. */
void sp_status_add(const char *list, const char *id, sp_status_fn fn, void *ud);
/* Removes every entry whose ud is ud (before ud is freed). */
void sp_status_remove(void *ud);

/* Records the component's last event of that kind (time and text) and
 * counts it; loop thread. */
void sp_status_note(const char *component_id, enum sp_status_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The events noted for component_id, as members of the current object:
 * "events":{"bad_request":{"count":N,"unix_ms":T,"text":"..."},...} and
 * "deliveries_per_s" over the last minute. */
void sp_status_write_events(struct sp_jw *w, const char *component_id);

/* A listening socket (component id, what it serves, the bound address). */
void sp_status_listener(const char *component_id, const char *what, const char *address);
/* The same from the configured "host:port" and the port actually bound. */
void sp_status_listener_port(const char *component_id, const char *what, const char *endpoint,
                             int port);

/* Starts the machinery on loop (the loop that owns every registered
 * writer); sp_status_stop closes its handles (loop thread). */
int sp_status_start(uv_loop_t *loop);
void sp_status_stop(void);

/* The document into out (any thread; see above). 0, SP_ENOMEM, or
 * SP_ERETRY when no snapshot could be made in time (answer 503). */
int sp_status_json(struct sp_buf *out);

/* The page: one self-contained HTML document (inline CSS, SVG and script,
 * no external resource) that polls /status.json. Constant. */
extern const char sp_status_page_html[];
extern const size_t sp_status_page_html_len;
/* The Content-Security-Policy the page is served with. */
extern const char sp_status_page_csp[];

/* Forgets everything (tests; after sp_status_stop). */
void sp_status_reset(void);

#endif
