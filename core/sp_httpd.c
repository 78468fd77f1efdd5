/* HTTP/1.1 server: libmicrohttpd driven by the libuv loop.
 *
 * MHD is started with MHD_USE_EPOLL and no internal thread. Its epoll fd is
 * level-readable whenever any of its sockets has new events, so one
 * uv_poll_t on it runs MHD_run(); every MHD callback, and so every handler,
 * runs inside MHD_run() on the loop thread. We create and bind the listening
 * socket ourselves so a bind error names the endpoint and errno, and so
 * port 0 works in tests.
 *
 * Fairness with the loop's other listeners (the gRPC port, the exporters'
 * sockets): one MHD_run() reads once per ready connection (at most its
 * 32 KiB buffer) and MHD keeps the connections it did not drain on a list
 * of its own, saying so with MHD_get_timeout() == 0. That "ready now" is run
 * from a uv_idle_t, i.e. once per loop turn after every other handle was
 * polled, never from a 0 ms timer: on libuv < 1.48 (Debian 12 has 1.44) a
 * 0 ms timer re-armed inside its own callback runs again in the same
 * uv__run_timers() (libuv issue #4245, fixed by PR #4250), which under a
 * flood of large bodies ran MHD_run() back to back for seconds and starved
 * every other socket. And per loop turn a server hands its handler
 * complete bodies worth at most SP_HTTPD_TURN_BYTES (at least one body):
 * decoding is the expensive part, so a turn in which many large bodies
 * complete decodes one and parks the others (MHD_suspend_connection) until
 * the turn's end (a uv_check_t resumes them for the next turn). The timer
 * only follows MHD's connection timeouts. */
#include "sp_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "sp_assert.h"
#include "sp_buf.h"
#include "sp_conf.h"
#include "sp_log.h"
#include "sp_status.h"
#include "sp_memory.h"

struct sp_httpd {
    uv_loop_t *loop;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_idle_t ready;  /* MHD has work now: run once per loop turn */
    uv_check_t turn;  /* end of a loop turn: budget refilled, parked requests resumed */
    size_t turn_bytes; /* body bytes handed to the handler in this loop turn */
    /* Complete requests waiting for a turn's budget, oldest first. */
    struct sp_httpd_req *parked, *parked_tail;
    int closing_handles;
    int listen_fd;
    int port;
    bool quiesced;
    bool stopping;
    sp_httpd_handler handler;
    void *ud;
    size_t max_body;
    char *name;
    void (*done)(void *ud);
    void *done_ud;
};

struct sp_httpd_req {
    struct sp_http_request pub;
    struct sp_httpd *httpd;
    struct MHD_Connection *conn;
    struct sp_buf body;
    size_t charged;   /* bytes of body.cap charged to the memory ceiling */
    bool mem_refused; /* the ceiling refused the body: discard it, answer OVERLOAD */
    bool too_big;
    bool headers_done;
    /* An answer given before the body was read is held until the body has
     * been read and discarded: queued at once, MHD would stop reading and
     * close with unread data, and the client would get a reset instead of
     * the answer. Past SP_HTTPD_DISCARD_MAX discarded bytes it goes out
     * anyway. */
    bool first_call;
    bool expect_continue; /* the client waits for 100 Continue: answering now saves the body */
    struct MHD_Response *deferred;
    unsigned deferred_status;
    uint64_t discarded;
    /* Complete, waiting for a loop turn's body budget (suspended). */
    bool parked;
    bool granted; /* resumed with its cost taken from the turn's budget */
    struct sp_httpd_req *park_next;
};

#define SP_HTTPD_DISCARD_MAX ((uint64_t)64 << 20)
/* Body bytes a server hands its handler per loop turn; at least one body
 * always goes. About what the OTLP decoder gets through in a few ms: a
 * loop turn with a 4 MiB export in it decodes that one alone. Each body
 * also counts SP_HTTPD_TURN_REQ_COST, so a turn takes at most ~1000 tiny
 * requests. */
#define SP_HTTPD_TURN_BYTES ((size_t)1 << 20)
#define SP_HTTPD_TURN_REQ_COST ((size_t)1024)

#if MHD_VERSION < 0x00097002
typedef int sp_mhd_result;
#else
typedef enum MHD_Result sp_mhd_result;
#endif

static void sp_httpd_schedule(struct sp_httpd *h);

static void sp_httpd_run(struct sp_httpd *h)
{
    if (!h->daemon)
        return;
    MHD_run(h->daemon);
    sp_httpd_schedule(h);
}

static void sp_httpd_on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    sp_httpd_run(p->data);
}

static void sp_httpd_on_timer(uv_timer_t *t)
{
    sp_httpd_run(t->data);
}

/* MHD reads once per ready connection per MHD_run (its 32 KiB buffer),
 * where libuv reads a gRPC connection up to 32 times 64 KiB per turn: a
 * few runs per turn keep an upload on this port moving about as fast as
 * one on the gRPC port while the loop's turns are long (big decodes). The
 * body budget bounds what the extra runs may decode. */
#define SP_HTTPD_RUNS_PER_TURN 8

static void sp_httpd_on_ready(uv_idle_t *i)
{
    struct sp_httpd *h = i->data;
    for (int n = 0; n < SP_HTTPD_RUNS_PER_TURN && h->daemon && !h->stopping; n++) {
        MHD_UNSIGNED_LONG_LONG ms = 1;
        MHD_run(h->daemon);
        if (MHD_get_timeout(h->daemon, &ms) != MHD_YES || ms != 0)
            break;
    }
    sp_httpd_schedule(h);
}

static void sp_httpd_schedule(struct sp_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (!h->daemon || h->stopping)
        return;
    bool have = MHD_get_timeout(h->daemon, &ms) == MHD_YES;
    if (have && ms == 0) {
        /* Ready now: next loop turn, after the loop has polled everything
         * else (never a 0 ms timer: see the file header). */
        uv_timer_stop(&h->timer);
        uv_idle_start(&h->ready, sp_httpd_on_ready);
        return;
    }
    uv_idle_stop(&h->ready);
    /* Cap the wait: a connection timeout check every second is cheap. */
    uv_timer_start(&h->timer, sp_httpd_on_timer, have && ms < 1000 ? ms : 1000, 0);
}

static size_t sp_httpd_turn_cost(const struct sp_httpd_req *r)
{
    return r->body.len + SP_HTTPD_TURN_REQ_COST;
}

/* Resumes the oldest parked request (MHD runs it from its next MHD_run). */
static void sp_httpd_unpark(struct sp_httpd *h)
{
    struct sp_httpd_req *r = h->parked;
    h->parked = r->park_next;
    if (!h->parked)
        h->parked_tail = NULL;
    r->park_next = NULL;
    r->parked = false;
    r->granted = true;
    MHD_resume_connection(r->conn);
}

/* The end of a loop turn: the next turn's budget goes to the oldest parked
 * requests first (at least one), in the order they completed. */
static void sp_httpd_on_turn(uv_check_t *c)
{
    struct sp_httpd *h = c->data;
    h->turn_bytes = 0;
    if (!h->parked || h->stopping)
        return;
    while (h->parked && (h->turn_bytes == 0 ||
                         h->turn_bytes + sp_httpd_turn_cost(h->parked) <= SP_HTTPD_TURN_BYTES)) {
        h->turn_bytes += sp_httpd_turn_cost(h->parked);
        sp_httpd_unpark(h);
    }
    uv_timer_stop(&h->timer);
    uv_idle_start(&h->ready, sp_httpd_on_ready);
}

/* False when the request must wait: this turn's body budget is spent, or
 * older complete requests wait already. It is parked (suspended) and comes
 * back to the handler in a later turn. */
static bool sp_httpd_take_turn(struct sp_httpd *h, struct sp_httpd_req *r)
{
    if (r->granted || h->stopping) {
        r->granted = false;
        return true;
    }
    size_t cost = sp_httpd_turn_cost(r);
    if (h->parked || (h->turn_bytes > 0 && h->turn_bytes + cost > SP_HTTPD_TURN_BYTES)) {
        MHD_suspend_connection(r->conn);
        r->parked = true;
        if (h->parked_tail)
            h->parked_tail->park_next = r;
        else
            h->parked = r;
        h->parked_tail = r;
        return false;
    }
    h->turn_bytes += cost;
    return true;
}

int sp_httpd_respond(struct sp_http_request *req, unsigned status, const char *content_type,
                     const void *body, size_t len, const char *const *headers)
{
    struct sp_httpd_req *r = (struct sp_httpd_req *)req;
    if (req->answered)
        return SP_EINVAL;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return SP_ENOMEM;
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    req->answered = true;
    if (r->first_call && !r->expect_continue) {
        r->deferred = resp;
        r->deferred_status = status;
        return SP_OK;
    }
    sp_mhd_result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc == MHD_YES ? SP_OK : SP_EIO;
}

/* Sends an answer held back by sp_httpd_respond (see first_call). */
static void sp_httpd_send_deferred(struct sp_httpd_req *r)
{
    if (!r->deferred)
        return;
    MHD_queue_response(r->conn, r->deferred_status, r->deferred);
    MHD_destroy_response(r->deferred);
    r->deferred = NULL;
}

int sp_httpd_respond_text(struct sp_http_request *req, unsigned status, const char *msg)
{
    struct sp_buf b = {0};
    sp_buf_append_str(&b, msg);
    sp_buf_append_byte(&b, '\n');
    int rc = sp_httpd_respond(req, status, "text/plain; charset=utf-8", b.data, b.len, NULL);
    sp_buf_free(&b);
    return rc;
}

const char *sp_http_header(struct sp_http_request *req, const char *name)
{
    struct sp_httpd_req *r = (struct sp_httpd_req *)req;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *sp_http_query(struct sp_http_request *req, const char *name)
{
    struct sp_httpd_req *r = (struct sp_httpd_req *)req;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct sp_httpd_iter {
    void (*fn)(void *ud, const char *k, const char *v);
    void *ud;
};

static sp_mhd_result sp_httpd_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct sp_httpd_iter *it = cls;
    it->fn(it->ud, key, value ? value : "");
    return MHD_YES;
}

void sp_http_each_header(struct sp_http_request *req,
                         void (*fn)(void *ud, const char *k, const char *v), void *ud)
{
    struct sp_httpd_req *r = (struct sp_httpd_req *)req;
    struct sp_httpd_iter it = {fn, ud};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, sp_httpd_iter_cb, &it);
}

void sp_http_each_query(struct sp_http_request *req,
                        void (*fn)(void *ud, const char *k, const char *v), void *ud)
{
    struct sp_httpd_req *r = (struct sp_httpd_req *)req;
    struct sp_httpd_iter it = {fn, ud};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, sp_httpd_iter_cb, &it);
}

static void sp_httpd_body_free(struct sp_httpd_req *r)
{
    sp_buf_free(&r->body);
    sp_memory_release(SP_MEM_BODIES, r->charged);
    r->charged = 0;
}

/* Grows the body buffer to hold `need` bytes (plus sp_buf's NUL), charging
 * the growth to the memory ceiling first: exactly when the size is known
 * (Content-Length), geometrically up to max_body otherwise. False when the
 * ceiling or malloc refused: the body is then dropped and the rest
 * discarded. */
static bool sp_httpd_body_reserve(struct sp_httpd_req *r, size_t need, bool exact)
{
    if (need + 1 <= r->body.cap)
        return true;
    size_t cap = need + 1;
    if (!exact && r->body.cap * 2 > cap)
        cap = r->body.cap * 2;
    if (cap > r->pub.max_body + 1 && need <= r->pub.max_body)
        cap = r->pub.max_body + 1;
    if (sp_memory_reserve(SP_MEM_BODIES, cap - r->charged) != SP_OK) {
        r->mem_refused = true;
        sp_httpd_body_free(r);
        return false;
    }
    uint8_t *d = realloc(r->body.data, cap);
    if (!d) {
        sp_memory_release(SP_MEM_BODIES, cap - r->charged);
        r->mem_refused = true;
        sp_httpd_body_free(r);
        return false;
    }
    r->body.data = d;
    r->body.cap = cap;
    r->charged = cap;
    return true;
}

/* The body was refused by the memory ceiling and has been discarded. */
static void sp_httpd_answer_overload(struct sp_httpd *h, struct sp_httpd_req *r)
{
    r->pub.phase = SP_HTTP_OVERLOAD;
    r->pub.body = (const uint8_t *)"";
    r->pub.body_len = 0;
    h->handler(h->ud, &r->pub);
    if (!r->pub.answered) {
        static const char *const retry[] = {"Retry-After", "1", NULL};
        static const char msg[] = "server busy: memory ceiling reached (service.memory_limit); "
                                  "retry later\n";
        sp_httpd_respond(&r->pub, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, retry);
    }
}

static void sp_httpd_answer_too_big(struct sp_httpd_req *r)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes", r->pub.max_body);
    sp_httpd_respond_text(&r->pub, 413, msg);
}

static sp_mhd_result sp_httpd_access(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    (void)version;
    struct sp_httpd *h = cls;
    struct sp_httpd_req *r = *con_cls;

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->httpd = h;
        r->conn = conn;
        r->pub.internal = r;
        r->pub.method = method;
        r->pub.url = url;
        r->pub.path = url;
        r->pub.max_body = h->max_body;
        r->pub.phase = SP_HTTP_HEADERS;
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        r->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
        r->first_call = true;
        h->handler(h->ud, &r->pub);
        r->first_call = false;
        if (r->pub.answered)
            return MHD_YES;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == 0 && *end == '\0' && n > r->pub.max_body) {
                if (r->expect_continue)
                    sp_httpd_answer_too_big(r);
                else
                    r->too_big = true; /* answered once the body is discarded */
                return MHD_YES;
            }
            if (errno == 0 && *end == '\0' && n > 0)
                sp_httpd_body_reserve(r, (size_t)n, true);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->pub.answered || r->too_big || r->mem_refused) {
            r->discarded += n;
            if (r->discarded > SP_HTTPD_DISCARD_MAX) {
                if (r->deferred)
                    sp_httpd_send_deferred(r);
                else if (!r->pub.answered)
                    sp_httpd_answer_too_big(r);
            }
            return MHD_YES;
        }
        if (r->body.len + n > r->pub.max_body) {
            /* Stop buffering at once: the bound holds while reading. The
             * rest is discarded and 413 answered at the end. */
            r->too_big = true;
            r->discarded = n;
            sp_httpd_body_free(r);
            return MHD_YES;
        }
        if (!sp_httpd_body_reserve(r, r->body.len + n, false)) {
            r->discarded = n;
            return MHD_YES;
        }
        sp_buf_append(&r->body, upload_data, n); /* reserved: cannot fail */
        return MHD_YES;
    }

    if (r->deferred) {
        sp_httpd_send_deferred(r);
        return MHD_YES;
    }
    if (r->pub.answered)
        return MHD_YES;
    if (r->too_big) {
        sp_httpd_answer_too_big(r);
        return MHD_YES;
    }
    if (r->mem_refused) {
        sp_httpd_answer_overload(h, r);
        return MHD_YES;
    }
    if (!sp_httpd_take_turn(h, r))
        return MHD_YES;
    r->pub.phase = SP_HTTP_BODY;
    r->pub.body = r->body.data ? r->body.data : (const uint8_t *)"";
    r->pub.body_len = r->body.len;
    h->handler(h->ud, &r->pub);
    if (!r->pub.answered) {
        sp_log_error(h->name, "handler left %s %s unanswered", method, url);
        sp_httpd_respond_text(&r->pub, 500, "internal error: request not answered");
    }
    return MHD_YES;
}

static void sp_httpd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct sp_httpd_req *r = *con_cls;
    if (!r)
        return;
    if (r->parked) {
        struct sp_httpd *h = r->httpd;
        struct sp_httpd_req **pp = &h->parked, *prev = NULL;
        while (*pp != r) {
            prev = *pp;
            pp = &(*pp)->park_next;
        }
        *pp = r->park_next;
        if (h->parked_tail == r)
            h->parked_tail = prev;
    }
    if (r->pub.user_free && r->pub.user)
        r->pub.user_free(r->pub.user);
    if (r->deferred)
        MHD_destroy_response(r->deferred);
    sp_httpd_body_free(r);
    free(r);
    *con_cls = NULL;
}

/* MHD's own format strings: not ours to check, hence the attribute. */
__attribute__((format(printf, 2, 0)))
static void sp_httpd_log(void *cls, const char *fmt, va_list ap)
{
    struct sp_httpd *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    sp_log_debug(h->name, "libmicrohttpd: %s", msg);
}

static int sp_httpd_listen(const char *endpoint, int *fd_out, int *port_out, bool *v6,
                           struct sp_err *err)
{
    struct sockaddr_storage ss;
    unsigned slen;
    if (sp_conf_endpoint_addr(endpoint, &ss, &slen, err))
        return SP_EINVAL;
    *v6 = ss.ss_family == AF_INET6;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sp_err_set(err, SP_EIO, "endpoint '%s': socket: %s", endpoint, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)slen) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return sp_err_set(err, SP_EIO, "cannot listen on '%s': %s", endpoint, strerror(e));
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    *port_out = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
    *fd_out = fd;
    return 0;
}

int sp_httpd_start(uv_loop_t *loop, const struct sp_httpd_opts *opts, sp_httpd_handler handler,
                   void *ud, struct sp_httpd **out, struct sp_err *err)
{
    int fd, port;
    bool v6;
    int rc = sp_httpd_listen(opts->endpoint, &fd, &port, &v6, err);
    if (rc)
        return rc;
    struct sp_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    h->loop = loop;
    h->listen_fd = fd;
    h->port = port;
    h->handler = handler;
    h->ud = ud;
    h->max_body = opts->max_body ? opts->max_body : 4u << 20;
    h->name = strdup(opts->name ? opts->name : "httpd");

    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        /* The logger goes first so MHD logs nothing before it is set. */
        flags, 0, NULL, NULL, sp_httpd_access, h, MHD_OPTION_EXTERNAL_LOGGER, sp_httpd_log, h,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(opts->max_header_bytes ? opts->max_header_bytes : 32768),
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)(opts->connection_timeout_s ? opts->connection_timeout_s : 30),
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)(opts->max_connections ? opts->max_connections : 256),
        MHD_OPTION_NOTIFY_COMPLETED, sp_httpd_completed, h, MHD_OPTION_END);
    if (!h->daemon) {
        close(fd);
        free(h->name);
        free(h);
        return sp_err_set(err, SP_EIO, "cannot start the HTTP server on '%s'", opts->endpoint);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    h->poll.data = h;
    uv_poll_start(&h->poll, UV_READABLE, sp_httpd_on_poll);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_idle_init(loop, &h->ready);
    h->ready.data = h;
    uv_check_init(loop, &h->turn);
    h->turn.data = h;
    uv_check_start(&h->turn, sp_httpd_on_turn);
    uv_unref((uv_handle_t *)&h->turn);
    sp_httpd_schedule(h);
    sp_status_listener_port(h->name, "http", opts->endpoint, port);
    *out = h;
    return 0;
}

int sp_httpd_port(const struct sp_httpd *h)
{
    return h->port;
}

void sp_httpd_quiesce(struct sp_httpd *h)
{
    if (!h || h->quiesced || !h->daemon)
        return;
    h->quiesced = true;
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

static void sp_httpd_on_closed(uv_handle_t *handle)
{
    struct sp_httpd *h = handle->data;
    if (--h->closing_handles > 0)
        return;
    if (h->done)
        h->done(h->done_ud);
    free(h->name);
    free(h);
}

void sp_httpd_stop(struct sp_httpd *h, void (*done)(void *ud), void *ud)
{
    if (!h) {
        if (done)
            done(ud);
        return;
    }
    SP_ASSERT(!h->stopping, "sp_httpd_stop called twice on one server (the second done would "
                            "never run)");
    h->stopping = true;
    h->done = done;
    h->done_ud = ud;
    /* Close the poll handle before MHD closes its epoll fd under it. */
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    uv_idle_stop(&h->ready);
    uv_check_stop(&h->turn);
    if (h->daemon) {
        /* Answer what is queued before closing sockets: one last run (two
         * when requests were parked: the first resumes them, with no
         * budget now that the server is stopping). */
        bool parked = h->parked != NULL;
        while (h->parked)
            sp_httpd_unpark(h);
        MHD_run(h->daemon);
        if (parked)
            MHD_run(h->daemon);
        MHD_stop_daemon(h->daemon);
        h->daemon = NULL;
    }
    h->closing_handles = 4;
    uv_close((uv_handle_t *)&h->poll, sp_httpd_on_closed);
    uv_close((uv_handle_t *)&h->timer, sp_httpd_on_closed);
    uv_close((uv_handle_t *)&h->ready, sp_httpd_on_closed);
    uv_close((uv_handle_t *)&h->turn, sp_httpd_on_closed);
}
