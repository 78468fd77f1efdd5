/* HTTP/1.1 server on the libuv loop, on top of libmicrohttpd.
 *
 * MHD runs in external-polling epoll mode: its epoll fd sits under a
 * uv_poll_t, a uv_idle_t runs it while it has work ready and a uv_timer_t
 * follows its connection timeouts, so MHD never owns a thread and handlers
 * run on the loop thread like everything else. Used by the OTLP/HTTP
 * receiver, the pprof receiver, the health check and /metrics.
 *
 * Fair to the loop's other handles: per loop turn a server reads a slice of
 * every connection and hands its handler complete bodies worth about 1 MiB
 * (at least one); later ones wait, oldest first, for the next turns, so a
 * phase BODY call may come a few turns after the body was read.
 *
 * A handler is called twice per request:
 *   phase HEADERS: method, path, query and headers are known, no body yet.
 *     The handler may answer at once (404, 405, 415, 413 from
 *     Content-Length...) and the body is then discarded; or set
 *     req->max_body and return without answering to receive the body.
 *   phase BODY: the whole body is in req->body (bounded by max_body; a
 *     larger body is answered 413 by sp_httpd itself and the handler is not
 *     called). The handler must answer.
 *   phase OVERLOAD (instead of BODY): the body could not be buffered because
 *     the process memory ceiling (sp_memory.h, class bodies) refused it; it
 *     was read and discarded. The handler should answer "retry later"
 *     (429/503 with Retry-After); if it does not, sp_httpd answers 503.
 * Buffered bodies are charged to the memory ceiling while they live.
 * Answers are synchronous: sp_httpd_respond() inside the callback. */
#ifndef SP_HTTPD_H
#define SP_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sp_err.h"

struct sp_httpd;
struct sp_http_request;

enum sp_http_phase { SP_HTTP_HEADERS = 0, SP_HTTP_BODY = 1, SP_HTTP_OVERLOAD = 2 };

struct sp_http_request {
    enum sp_http_phase phase;
    const char *method;
    const char *url;        /* path and query as received */
    const char *path;       /* path only, NUL-terminated */
    const uint8_t *body;    /* phase BODY only */
    size_t body_len;
    size_t max_body;        /* set in phase HEADERS; default sp_httpd_opts.max_body */
    void *user;             /* per-request slot for the handler; freed by user_free */
    void (*user_free)(void *user);
    bool answered;
    void *internal;         /* sp_httpd's */
};

typedef void (*sp_httpd_handler)(void *ud, struct sp_http_request *req);

struct sp_httpd_opts {
    const char *endpoint;       /* "host:port" */
    size_t max_body;            /* default per request; 0 = 4 MiB */
    size_t max_header_bytes;    /* per connection memory for headers; 0 = 32 KiB */
    unsigned connection_timeout_s; /* idle/slow client timeout; 0 = 30 s */
    unsigned max_connections;   /* 0 = 256 */
    const char *name;           /* component id, for logs */
};

/* Binds and starts serving. Returns 0 or SP_EIO/SP_EINVAL with a message
 * naming the endpoint (e.g. address in use). */
int sp_httpd_start(uv_loop_t *loop, const struct sp_httpd_opts *opts, sp_httpd_handler handler,
                   void *ud, struct sp_httpd **out, struct sp_err *err);
/* Stops accepting new connections; requests in flight are answered.
 * done(ud) runs once every connection is closed (or at once). */
void sp_httpd_quiesce(struct sp_httpd *h);
/* Closes everything; done runs on the loop when the handles are closed. */
void sp_httpd_stop(struct sp_httpd *h, void (*done)(void *ud), void *ud);
/* The port actually bound (useful with port 0 in tests). */
int sp_httpd_port(const struct sp_httpd *h);

/* Request accessors (valid during the callback). NULL when absent. */
const char *sp_http_header(struct sp_http_request *req, const char *name);
const char *sp_http_query(struct sp_http_request *req, const char *name);
/* Calls fn for every header / query argument (in arrival order). */
void sp_http_each_header(struct sp_http_request *req,
                         void (*fn)(void *ud, const char *k, const char *v), void *ud);
void sp_http_each_query(struct sp_http_request *req,
                        void (*fn)(void *ud, const char *k, const char *v), void *ud);

/* Answers the request; body is copied. headers: NULL or a NULL-terminated
 * array of "Name", "value" pairs. Returns 0 or SP_EIO. */
int sp_httpd_respond(struct sp_http_request *req, unsigned status, const char *content_type,
                     const void *body, size_t len, const char *const *headers);
/* Plain-text convenience: body is msg plus a newline. */
int sp_httpd_respond_text(struct sp_http_request *req, unsigned status, const char *msg);

#endif
