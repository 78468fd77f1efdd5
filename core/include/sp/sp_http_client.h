/* HTTP client on the libuv loop, on top of libcurl multi.
 *
 * libcurl's socket-action interface: CURLMOPT_SOCKETFUNCTION puts each
 * socket under a uv_poll_t, CURLMOPT_TIMERFUNCTION arms one uv_timer_t, and
 * completions are read with curl_multi_info_read() on the loop. Connections
 * are reused; TLS verification is on with the system CA bundle; proxies come
 * from the standard environment variables (libcurl's own behaviour).
 * Used by the Datadog exporter and the pprof scraper. Loop thread only. */
#ifndef SP_HTTP_CLIENT_H
#define SP_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sp_buf.h"

struct sp_http_client;
struct sp_http_call;

struct sp_http_response {
    int curl_code;          /* CURLE_OK or the transport error */
    const char *error;      /* transport error text (never contains headers) */
    long status;            /* HTTP status, 0 on transport error */
    int64_t retry_after_ms; /* parsed Retry-After (seconds or HTTP date), -1 if absent */
    const char *content_type;
    const uint8_t *body;    /* response body (bounded by max_response) */
    size_t body_len;
    double total_s;         /* duration of the call */
};

typedef void (*sp_http_done_fn)(void *ud, const struct sp_http_response *resp);

struct sp_http_call_opts {
    const char *method;               /* "GET", "POST", "PUT" */
    const char *url;
    const char *const *headers;       /* NULL-terminated "Name: value" lines */
    const uint8_t *body;              /* borrowed until done runs */
    size_t body_len;
    int64_t timeout_ms;               /* whole call; 0 = 10 s */
    size_t max_response;              /* 0 = 1 MiB; larger bodies fail the call */
};

struct sp_http_client *sp_http_client_create(uv_loop_t *loop);
/* Cancels every call in flight (their done runs with curl_code
 * CURLE_ABORTED_BY_CALLBACK) and frees the client once handles close. */
void sp_http_client_destroy(struct sp_http_client *c);

/* Starts a call; done runs exactly once on the loop (never inside this
 * function). Returns 0 or SP_ENOMEM/SP_EINVAL. */
int sp_http_client_call(struct sp_http_client *c, const struct sp_http_call_opts *opts,
                        sp_http_done_fn done, void *ud, struct sp_http_call **out);
/* Aborts one call; its done runs with CURLE_ABORTED_BY_CALLBACK. */
/* Its done runs before this returns. */
void sp_http_call_cancel(struct sp_http_call *call);
size_t sp_http_client_in_flight(const struct sp_http_client *c);

/* Parses a Retry-After value: delta-seconds or an HTTP date (RFC 9110
 * section 10.2.3), in milliseconds from now, capped at a day; -1 when it is
 * neither. */
#define SP_HTTP_RETRY_AFTER_MAX_S 86400
int64_t sp_http_parse_retry_after(const char *v);

#endif
