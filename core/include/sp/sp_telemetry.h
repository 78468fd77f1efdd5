/* The telemetry thread: the health check and /metrics on a loop of their
 * own, so they answer within milliseconds however busy the pipeline loop is.
 *
 * Why a thread and not a fair share of the pipeline loop: one turn of that
 * loop can be one decode of a maximum-size request (hundreds of
 * milliseconds of CPU, seconds when the core is shared), and no slicing of
 * libmicrohttpd or nghttp2 work can preempt a decode in progress. A probe
 * must not wait for it, or a flood gets the pod restarted and its queue
 * lost. The thread runs one libuv loop with sp_httpd servers on it and
 * nothing else; their handlers may only read what is safe from another
 * thread: sp_host_state(), sp_memory_*(), sp_metrics_render_snapshot()
 * (atomics and a registry mutex). Nothing of the pipeline runs there.
 *
 * Process-wide, like the metrics registry: sp_telemetry_init() before the
 * servers are added, sp_telemetry_run() once they are (the thread starts),
 * sp_telemetry_stop() at exit. */
#ifndef SP_TELEMETRY_H
#define SP_TELEMETRY_H

#include <uv.h>

#include "sp_err.h"
#include "sp_httpd.h"

/* Creates the telemetry loop (no thread yet). Returns 0 or SP_ENOMEM. */
int sp_telemetry_init(struct sp_err *err);
/* Starts an HTTP server whose handler runs on the telemetry thread. Only
 * between sp_telemetry_init() and sp_telemetry_run() (the loop must not be
 * running yet), from the thread that called init. */
int sp_telemetry_httpd_start(const struct sp_httpd_opts *opts, sp_httpd_handler handler, void *ud,
                             struct sp_httpd **out, struct sp_err *err);
/* Starts the thread. */
int sp_telemetry_run(struct sp_err *err);
/* Stops one server from the loop thread: done(ud) runs later on `loop`
 * once it is closed (at once when the telemetry thread never ran). */
void sp_telemetry_httpd_stop(struct sp_httpd *h, uv_loop_t *loop, void (*done)(void *ud),
                             void *ud);
/* Stops every remaining server, joins the thread, frees the loop. */
void sp_telemetry_stop(void);

#endif
