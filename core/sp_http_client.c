/* HTTP client: libcurl's multi socket interface driven by the libuv loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * uv_poll_t each, hung on the socket with curl_multi_assign) and when to
 * wake it up (CURLMOPT_TIMERFUNCTION: one uv_timer_t); we tell libcurl what
 * happened with curl_multi_socket_action() and collect finished transfers
 * with curl_multi_info_read(). All easy handles live in one multi handle, so
 * connections (and TLS sessions) are reused across calls. */
#include "sp_http_client.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "sp_assert.h"
#include "sp_err.h"
#include "sp_log.h"
#include "sp_version.h"

struct sp_http_call {
    struct sp_http_client *client;
    struct sp_http_call *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct sp_buf body;
    size_t max_response;
    bool too_big;
    int64_t retry_after_ms;
    char content_type[128];
    char errbuf[CURL_ERROR_SIZE];
    sp_http_done_fn done;
    void *ud;
};

struct sp_http_socket {
    uv_poll_t poll;
    curl_socket_t fd;
    struct sp_http_client *client;
};

struct sp_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct sp_http_call *calls;
    size_t in_flight;
    int open_handles; /* timer + sockets not yet closed */
    bool destroying;
};

static void sp_http_maybe_free(struct sp_http_client *c)
{
    if (c->destroying && c->open_handles == 0) {
        curl_multi_cleanup(c->multi);
        free(c);
    }
}

static void sp_http_on_handle_closed(uv_handle_t *h)
{
    struct sp_http_client *c = h->data;
    if (h->type == UV_POLL)
        free(((struct sp_http_socket *)h)); /* poll is the first member */
    c->open_handles--;
    sp_http_maybe_free(c);
}

static void sp_http_call_free(struct sp_http_call *call)
{
    /* Headers may carry credentials (DD-API-KEY): no copy left in freed
     * memory. */
    for (struct curl_slist *l = call->headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(call->headers);
    sp_buf_free(&call->body);
    free(call);
}

static void sp_http_unlink(struct sp_http_call *call)
{
    struct sp_http_client *c = call->client;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    c->in_flight--;
}

static void sp_http_finish(struct sp_http_call *call, CURLcode code)
{
    struct sp_http_client *c = call->client;
    struct sp_http_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.curl_code = code;
    resp.retry_after_ms = call->retry_after_ms;
    if (code == CURLE_OK) {
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &resp.status);
    } else if (call->too_big) {
        resp.error = "response body over the size limit";
    } else {
        resp.error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
    }
    curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME, &resp.total_s);
    resp.content_type = call->content_type[0] ? call->content_type : NULL;
    resp.body = call->body.data;
    resp.body_len = call->body.len;

    curl_multi_remove_handle(c->multi, call->easy);
    curl_easy_cleanup(call->easy);
    call->easy = NULL;
    sp_http_unlink(call);
    call->done(call->ud, &resp);
    sp_http_call_free(call);
}

static void sp_http_check_done(struct sp_http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct sp_http_call *call = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (call)
            sp_http_finish(call, msg->data.result);
    }
}

static void sp_http_on_poll(uv_poll_t *p, int status, int events)
{
    struct sp_http_socket *s = (struct sp_http_socket *)p;
    int flags = 0;
    int running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    struct sp_http_client *c = s->client;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    sp_http_check_done(c);
}

static void sp_http_on_timer(uv_timer_t *t)
{
    struct sp_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    sp_http_check_done(c);
}

static int sp_http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct sp_http_client *c = userp;
    struct sp_http_socket *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, sp_http_on_handle_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->client = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = c;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, sp_http_on_poll);
    return 0;
}

static int sp_http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct sp_http_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, sp_http_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

struct sp_http_client *sp_http_client_create(uv_loop_t *loop)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = true;
    }
    struct sp_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sp_http_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, sp_http_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
    return c;
}

static size_t sp_http_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct sp_http_call *call = ud;
    size_t n = size * nmemb;
    if (call->body.len + n > call->max_response) {
        call->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (sp_buf_append(&call->body, ptr, n))
        return 0;
    return n;
}

/* Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
int64_t sp_http_parse_retry_after(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    char *end;
    long long secs = strtoll(v, &end, 10);
    if (end != v && (*end == '\0' || *end == '\r' || *end == '\n' || *end == ' ')) {
        /* A day is already absurd; beyond it the milliseconds would overflow. */
        if (secs > SP_HTTP_RETRY_AFTER_MAX_S)
            secs = SP_HTTP_RETRY_AFTER_MAX_S;
        return secs < 0 ? 0 : secs * 1000;
    }
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    if (when > now && when - now > SP_HTTP_RETRY_AFTER_MAX_S)
        return (int64_t)SP_HTTP_RETRY_AFTER_MAX_S * 1000;
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static size_t sp_http_on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct sp_http_call *call = ud;
    size_t n = size * nitems;
    char line[512];
    size_t len = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, buf, len);
    line[len] = '\0';
    /* A new status line (redirect or 100 Continue) resets what we kept. */
    if (strncmp(line, "HTTP/", 5) == 0) {
        call->retry_after_ms = -1;
        call->content_type[0] = '\0';
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return n;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ')
        value++;
    size_t vlen = strlen(value);
    while (vlen && (value[vlen - 1] == '\r' || value[vlen - 1] == '\n' || value[vlen - 1] == ' '))
        value[--vlen] = '\0';
    if (strcasecmp(line, "Retry-After") == 0)
        call->retry_after_ms = sp_http_parse_retry_after(value);
    else if (strcasecmp(line, "Content-Type") == 0)
        snprintf(call->content_type, sizeof(call->content_type), "%s", value);
    return n;
}

int sp_http_client_call(struct sp_http_client *c, const struct sp_http_call_opts *o,
                        sp_http_done_fn done, void *ud, struct sp_http_call **out)
{
    if (c->destroying || !o->url || !done)
        return SP_EINVAL;
    struct sp_http_call *call = calloc(1, sizeof(*call));
    if (!call)
        return SP_ENOMEM;
    call->client = c;
    call->done = done;
    call->ud = ud;
    call->retry_after_ms = -1;
    call->max_response = o->max_response ? o->max_response : 1u << 20;
    call->easy = curl_easy_init();
    if (!call->easy) {
        free(call);
        return SP_ENOMEM;
    }
    CURL *e = call->easy;
    const char *method = o->method ? o->method : "GET";
    int64_t timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;

    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "spanprof/" SP_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sp_http_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sp_http_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    /* TLS verification stays on (libcurl's default) with the system CA
     * bundle; proxies come from http_proxy/https_proxy/no_proxy. */
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body_len ? (const char *)o->body : "");
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    for (size_t i = 0; o->headers && o->headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(call->headers, o->headers[i]);
        if (!l)
            goto nomem;
        call->headers = l;
    }
    /* No "Expect: 100-continue" round trip before large bodies. */
    struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
    if (!l)
        goto nomem;
    call->headers = l;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);

    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto nomem;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->in_flight++;
    if (out)
        *out = call;
    return 0;
nomem:
    curl_easy_cleanup(e);
    sp_http_call_free(call);
    return SP_ENOMEM;
}

void sp_http_call_cancel(struct sp_http_call *call)
{
    sp_http_finish(call, CURLE_ABORTED_BY_CALLBACK);
}

size_t sp_http_client_in_flight(const struct sp_http_client *c)
{
    return c->in_flight;
}

void sp_http_client_destroy(struct sp_http_client *c)
{
    if (!c)
        return;
    SP_ASSERT(!c->destroying, "sp_http_client_destroy called twice on one client");
    while (c->calls)
        sp_http_call_cancel(c->calls);
    c->destroying = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, sp_http_on_handle_closed);
}
