/* loadgen: an OTLP load generator that checks every answer and keeps every
 * latency.
 *
 *   loadgen --proto grpc|http-pb|http-json --target HOST:PORT [--path P]
 *           [--conns 4] [--inflight 8] [--rate REQ_PER_S] [--duration S]
 *           [--warmup S] [--spans 100] [--unique] [--seed N]
 *
 * h2load replays one body and reports HTTP status only; a sidecar
 * benchmark also needs (1) distinct span ids per request, or the join's
 * span index never grows and the memory figures lie, (2) gRPC status
 * checks (refusals travel as grpc-status 8/14 inside HTTP 200), (3)
 * latency percentiles and (4) an open-loop fixed rate for the CPU and RSS
 * figures. With --unique every request gets its own trace/span ids and
 * timestamps shifted to the send time (otlp_gen.h patches).
 *
 * One thread, epoll; gRPC over h2c (nghttp2, prior knowledge) with up to
 * --inflight streams per connection, OTLP/HTTP over HTTP/1.1 keep-alive
 * (one request at a time per connection). --rate 0 is closed loop (every
 * slot always busy): the maximum throughput at that concurrency. Latency is
 * measured from the moment the request is handed to the socket; in rate
 * mode a request that goes out more than 10 ms after its scheduled time
 * (no free slot: the server is behind) is counted as `late`.
 * Prints one `RESULT loadgen ...` line. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "bench_util.h"
#include "otlp_gen.h"

enum lg_proto { LG_GRPC = 0, LG_HTTP_PB = 1, LG_HTTP_JSON = 2 };

static struct {
    enum lg_proto proto;
    char host[256];
    int port;
    const char *path;
    int conns;
    int inflight;
    double rate;
    double duration;
    double warmup;
    size_t spans;
    int unique;
    uint64_t seed;
} opt = {LG_GRPC, "127.0.0.1", 4317, NULL, 4, 8, 0, 10, 1, 100, 0, 1};

static struct {
    uint64_t sent, ok, failed, http_err, grpc_err, conn_err, late, spans_ok;
    uint64_t status_hist[6]; /* by first digit */
    char first_error[256];
    uint32_t *lat_us;
    size_t n_lat, cap_lat;
} st;

/* The request template and the per-request patches. */
static struct sp_buf tmpl;
static struct bench_patches patches;
static size_t spans_per_req;
static int64_t tmpl_time_ns;
static uint32_t seq;

static int ep;
static int64_t t_start, t_measure, t_end;

struct lg_req {
    uint8_t *body;
    size_t len, off;
    int64_t t0;
    int status;
    int grpc_status; /* -1 = none seen */
    int record;
    char msg[128];
};

struct lg_conn {
    int fd;
    int connected;
    nghttp2_session *h2;
    int active; /* requests in flight */
    struct sp_buf out;
    size_t out_off;
    int want_out;
    /* h1 */
    struct lg_req *h1_req;
    struct sp_buf in;
};

static struct lg_conn *conns;

static void lat_add(uint32_t us)
{
    if (st.n_lat == st.cap_lat) {
        size_t nc = st.cap_lat ? st.cap_lat * 2 : 65536;
        uint32_t *nv = realloc(st.lat_us, nc * sizeof(*nv));
        if (!nv)
            return;
        st.lat_us = nv;
        st.cap_lat = nc;
    }
    st.lat_us[st.n_lat++] = us;
}

/* what=detail+code, e.g. grpc-status=resource exhausted:8 */
static void set_error(const char *what, const char *detail, int code)
{
    if (st.first_error[0])
        return;
    snprintf(st.first_error, sizeof(st.first_error), "%s=%s%d", what, detail, code);
    for (char *p = st.first_error; *p; p++)
        if (*p == ' ' || *p == '\n' || *p == '\t')
            *p = '_';
}

static void req_done(struct lg_req *r)
{
    int64_t now = bench_mono_ns();
    int ok = r->status == 200;
    if (r->status >= 100 && r->status < 600)
        st.status_hist[r->status / 100]++;
    else
        st.status_hist[0]++;
    if (opt.proto == LG_GRPC && ok && r->grpc_status != 0) {
        ok = 0;
        if (r->record) {
            st.grpc_err++;
            set_error("grpc-status", r->msg[0] ? r->msg : "", r->grpc_status);
        }
    } else if (!ok && r->record) {
        st.http_err++;
        set_error("http-status", r->msg[0] ? r->msg : "", r->status);
    }
    if (r->record) {
        if (ok) {
            st.ok++;
            st.spans_ok += spans_per_req;
            lat_add((uint32_t)((now - r->t0) / 1000));
        } else {
            st.failed++;
        }
    }
    free(r->body);
    free(r);
}

static struct lg_req *req_new(void)
{
    struct lg_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->grpc_status = -1;
    r->len = tmpl.len;
    r->body = malloc(tmpl.len);
    if (!r->body) {
        free(r);
        return NULL;
    }
    memcpy(r->body, tmpl.data, tmpl.len);
    if (opt.unique) {
        /* The template's times were "now" when it was built: shift them to
         * now, so span_ttl sees fresh spans for the whole run. */
        int64_t shift = bench_now_unix_ns() - tmpl_time_ns;
        bench_otlp_patch(r->body + (opt.proto == LG_GRPC ? 5 : 0), &patches, ++seq, shift);
    }
    r->t0 = bench_mono_ns();
    r->record = r->t0 >= t_measure;
    return r;
}

/* ---- sockets ---- */

static void conn_arm(struct lg_conn *c, int want_out)
{
    if (want_out == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static int conn_flush(struct lg_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_arm(c, 1);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out.len = 0;
    c->out_off = 0;
    conn_arm(c, 0);
    return 0;
}

/* ---- gRPC over h2c ---- */

static ssize_t h2_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)ud;
    struct lg_req *r = src->ptr;
    size_t n = r->len - r->off;
    if (n > length)
        n = length;
    memcpy(buf, r->body + r->off, n);
    r->off += n;
    if (r->off == r->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud)
{
    (void)flags;
    (void)ud;
    struct lg_req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        r->status = atoi((const char *)value);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        r->grpc_status = atoi((const char *)value);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t n = valuelen < sizeof(r->msg) - 2 ? valuelen : sizeof(r->msg) - 2;
        memcpy(r->msg, value, n);
        r->msg[n] = ':';
        r->msg[n + 1] = 0;
    }
    return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    struct lg_conn *c = ud;
    struct lg_req *r = nghttp2_session_get_stream_user_data(s, sid);
    if (r) {
        if (code != 0 && r->status == 0)
            r->status = 0;
        nghttp2_session_set_stream_user_data(s, sid, NULL);
        req_done(r);
        c->active--;
    }
    return 0;
}

static nghttp2_session_callbacks *h2_cbs;

static int h2_pump(struct lg_conn *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (sp_buf_append(&c->out, data, (size_t)n))
            return -1;
    }
    return conn_flush(c);
}

static int h2_send(struct lg_conn *c, struct lg_req *r)
{
    char authority[300];
    snprintf(authority, sizeof(authority), "%s:%d", opt.host, opt.port);
    const char *path = opt.path;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"user-agent", (uint8_t *)"spanprof-loadgen", 10, 16, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd = {.source = {.ptr = r}, .read_callback = h2_read_body};
    int32_t sid = nghttp2_submit_request(c->h2, NULL, nv, sizeof(nv) / sizeof(nv[0]), &prd, r);
    if (sid < 0)
        return -1;
    c->active++;
    return h2_pump(c);
}

/* ---- OTLP/HTTP over HTTP/1.1 ---- */

static int h1_send(struct lg_conn *c, struct lg_req *r)
{
    if (sp_buf_printf(&c->out,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: spanprof-loadgen\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      opt.path, opt.host, opt.port,
                      opt.proto == LG_HTTP_JSON ? "application/json" : "application/x-protobuf",
                      r->len) ||
        sp_buf_append(&c->out, r->body, r->len))
        return -1;
    c->h1_req = r;
    c->active++;
    return conn_flush(c);
}

/* Parses complete responses in c->in. -1 on a protocol error. */
static int h1_input(struct lg_conn *c)
{
    for (;;) {
        const char *base = (const char *)c->in.data;
        const char *hend = c->in.len ? memmem(base, c->in.len, "\r\n\r\n", 4) : NULL;
        if (!hend)
            return 0;
        size_t head_len = (size_t)(hend - base) + 4;
        if (c->in.len < 12 || strncmp(base, "HTTP/1.", 7) != 0)
            return -1;
        int status = atoi(base + 9);
        size_t body_len = 0;
        const char *cl = NULL;
        for (const char *p = base; p && p < hend; p = memchr(p, '\n', (size_t)(hend - p))) {
            p++;
            if (strncasecmp(p, "Content-Length:", 15) == 0) {
                cl = p + 15;
                break;
            }
        }
        if (cl)
            body_len = strtoull(cl, NULL, 10);
        if (status == 100) {
            memmove(c->in.data, c->in.data + head_len, c->in.len - head_len);
            c->in.len -= head_len;
            continue;
        }
        if (c->in.len < head_len + body_len)
            return 0;
        struct lg_req *r = c->h1_req;
        if (r) {
            r->status = status;
            if (status != 200 && body_len) {
                size_t n = body_len < sizeof(r->msg) - 2 ? body_len : sizeof(r->msg) - 2;
                memcpy(r->msg, base + head_len, n);
                r->msg[n] = ':';
                r->msg[n + 1] = 0;
            }
            c->h1_req = NULL;
            c->active--;
            req_done(r);
        }
        memmove(c->in.data, c->in.data + head_len + body_len, c->in.len - head_len - body_len);
        c->in.len -= head_len + body_len;
    }
}

/* ---- connections ---- */

static int conn_open(struct lg_conn *c)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", opt.port);
    if (getaddrinfo(opt.host, port, &hints, &ai) != 0 || !ai)
        return -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->connected = 1;
    if (opt.proto == LG_GRPC) {
        if (nghttp2_session_client_new(&c->h2, h2_cbs, c) != 0)
            return -1;
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
        nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1);
        return h2_pump(c);
    }
    return 0;
}

static void conn_fail(struct lg_conn *c)
{
    if (!st.first_error[0])
        set_error("connection", "lost:", 0);
    st.conn_err++;
    st.failed += (uint64_t)c->active; /* lost with the connection */
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->connected = 0;
    if (c->h2) {
        nghttp2_session_del(c->h2); /* closes streams: h2_on_close is not called */
        c->h2 = NULL;
    }
    if (c->h1_req) {
        c->h1_req->status = 0;
        req_done(c->h1_req);
        c->h1_req = NULL;
    }
    c->active = 0;
    c->in.len = 0;
    c->out.len = c->out_off = 0;
}

static int conn_slots(const struct lg_conn *c)
{
    if (!c->connected)
        return 0;
    int max = opt.proto == LG_GRPC ? opt.inflight : 1;
    return max - c->active;
}

static int send_one(void)
{
    static int rr;
    for (int k = 0; k < opt.conns; k++) {
        struct lg_conn *c = &conns[(rr + k) % opt.conns];
        if (conn_slots(c) <= 0)
            continue;
        rr = (rr + k + 1) % opt.conns;
        struct lg_req *r = req_new();
        if (!r)
            return -1;
        if (r->record)
            st.sent++;
        int rc = opt.proto == LG_GRPC ? h2_send(c, r) : h1_send(c, r);
        if (rc)
            conn_fail(c);
        return 1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(double p)
{
    if (!st.n_lat)
        return 0;
    size_t i = (size_t)(p * (double)(st.n_lat - 1) + 0.5);
    return st.lat_us[i];
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --proto grpc|http-pb|http-json --target HOST:PORT [--path P]\n"
                    "               [--conns N] [--inflight N] [--rate REQ_PER_S] [--duration S]\n"
                    "               [--warmup S] [--spans N] [--unique] [--seed N]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--unique") == 0) {
            opt.unique = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--proto") == 0) {
            if (strcmp(v, "grpc") == 0)
                opt.proto = LG_GRPC;
            else if (strcmp(v, "http-pb") == 0)
                opt.proto = LG_HTTP_PB;
            else if (strcmp(v, "http-json") == 0)
                opt.proto = LG_HTTP_JSON;
            else {
                usage();
                return 2;
            }
        } else if (strcmp(a, "--target") == 0) {
            const char *colon = strrchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof(opt.host)) {
                usage();
                return 2;
            }
            memcpy(opt.host, v, (size_t)(colon - v));
            opt.host[colon - v] = 0;
            opt.port = atoi(colon + 1);
        } else if (strcmp(a, "--path") == 0)
            opt.path = v;
        else if (strcmp(a, "--conns") == 0)
            opt.conns = atoi(v);
        else if (strcmp(a, "--inflight") == 0)
            opt.inflight = atoi(v);
        else if (strcmp(a, "--rate") == 0)
            opt.rate = atof(v);
        else if (strcmp(a, "--duration") == 0)
            opt.duration = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            opt.warmup = atof(v);
        else if (strcmp(a, "--spans") == 0)
            opt.spans = strtoul(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            opt.seed = strtoull(v, NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (opt.conns < 1 || opt.inflight < 1) {
        usage();
        return 2;
    }
    if (!opt.path)
        opt.path = opt.proto == LG_GRPC
                       ? "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                       : "/v1/traces";
    signal(SIGPIPE, SIG_IGN);

    /* The template request. */
    struct sp_arena *ga = sp_arena_create(0);
    tmpl_time_ns = bench_now_unix_ns();
    struct bench_otlp_opts go = {.spans = opt.spans, .seed = opt.seed, .base_time_ns = tmpl_time_ns};
    sp_otlp_request *req = ga ? bench_otlp_build(ga, &go) : NULL;
    struct sp_buf msg = {0};
    if (!req || (opt.proto == LG_HTTP_JSON ? bench_otlp_json(req, &msg) : bench_otlp_pack(req, &msg))) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    spans_per_req = sp_traces_count_spans(req);
    if (opt.unique &&
        bench_otlp_find_patches(req, msg.data, msg.len, opt.proto == LG_HTTP_JSON, &patches)) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    if (opt.proto == LG_GRPC) {
        if (bench_grpc_frame(msg.data, msg.len, &tmpl))
            return 1;
    } else if (sp_buf_append(&tmpl, msg.data, msg.len)) {
        return 1;
    }
    sp_buf_free(&msg);

    nghttp2_session_callbacks_new(&h2_cbs);
    nghttp2_session_callbacks_set_on_header_callback(h2_cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(h2_cbs, h2_on_close);

    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    for (int i = 0; i < opt.conns; i++) {
        if (conn_open(&conns[i])) {
            fprintf(stderr, "loadgen: cannot connect to %s:%d: %s\n", opt.host, opt.port,
                    strerror(errno));
            printf("RESULT loadgen error=connect\n");
            return 1;
        }
    }

    t_start = bench_mono_ns();
    t_measure = t_start + (int64_t)(opt.warmup * 1e9);
    t_end = t_measure + (int64_t)(opt.duration * 1e9);
    int64_t interval = opt.rate > 0 ? (int64_t)(1e9 / opt.rate) : 0;
    int64_t next_send = t_start;
    uint64_t pending = 0; /* rate mode: due but not yet sent */
    static uint8_t rbuf[1 << 16];
    int64_t drain_deadline = 0;

    for (;;) {
        int64_t now = bench_mono_ns();
        if (now < t_end) {
            if (interval) {
                while (next_send <= now) {
                    pending++;
                    next_send += interval;
                }
                while (pending > 0) {
                    /* The oldest due request was scheduled pending
                     * intervals before next_send. */
                    int64_t due = next_send - (int64_t)pending * interval;
                    int r = send_one();
                    if (r <= 0)
                        break;
                    if (now - due > 10000000 && now >= t_measure)
                        st.late++; /* sent more than 10 ms after its time */
                    pending--;
                }
            } else {
                while (send_one() > 0)
                    ;
            }
        } else {
            int active = 0;
            for (int i = 0; i < opt.conns; i++)
                active += conns[i].active;
            if (!drain_deadline)
                drain_deadline = now + 10000000000LL;
            if (active == 0 || now >= drain_deadline)
                break;
        }
        int timeout_ms = 50;
        if (interval && now < t_end && pending == 0) {
            int64_t wait = next_send - bench_mono_ns();
            timeout_ms = wait <= 0 ? 0 : (int)(wait / 1000000);
        } else if (interval && now < t_end) {
            /* A backlog waits for a free slot, i.e. for an answer: sleep in
             * epoll until one comes or the next request is due. */
            int64_t wait = next_send - bench_mono_ns();
            timeout_ms = wait <= 1000000 ? 1 : (int)(wait / 1000000);
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, timeout_ms);
        for (int i = 0; i < n; i++) {
            struct lg_conn *c = evs[i].data.ptr;
            if (!c->connected)
                continue;
            int dead = 0;
            if (evs[i].events & EPOLLOUT) {
                if (c->h2 ? h2_pump(c) : conn_flush(c))
                    dead = 1;
            }
            if (!dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    ssize_t r = read(c->fd, rbuf, sizeof(rbuf));
                    if (r > 0) {
                        if (c->h2) {
                            if (nghttp2_session_mem_recv(c->h2, rbuf, (size_t)r) < 0) {
                                dead = 1;
                                break;
                            }
                        } else if (sp_buf_append(&c->in, rbuf, (size_t)r) || h1_input(c)) {
                            dead = 1;
                            break;
                        }
                        continue;
                    }
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (r < 0 && errno == EINTR)
                        continue;
                    dead = 1;
                    break;
                }
                if (!dead && c->h2 && h2_pump(c))
                    dead = 1;
            }
            if (dead)
                conn_fail(c);
        }
        /* Reconnect lost connections so one refusal does not end the run. */
        for (int i = 0; i < opt.conns && bench_mono_ns() < t_end; i++)
            if (!conns[i].connected)
                conn_open(&conns[i]);
    }
    double secs = opt.duration;
    qsort(st.lat_us, st.n_lat, sizeof(*st.lat_us), cmp_u32);
    const char *pname = opt.proto == LG_GRPC ? "grpc" : opt.proto == LG_HTTP_PB ? "http-pb" : "http-json";
    printf("RESULT loadgen proto=%s conns=%d inflight=%d rate=%.0f duration_s=%.1f unique=%d "
           "body_bytes=%zu sent=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " http_err=%" PRIu64
           " grpc_err=%" PRIu64 " conn_err=%" PRIu64 " late=%" PRIu64
           " req_per_s=%.1f spans_per_s=%.0f p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u"
           " first_error=%s\n",
           pname, opt.conns, opt.proto == LG_GRPC ? opt.inflight : 1, opt.rate, secs, opt.unique,
           tmpl.len, st.sent, st.ok, st.failed, st.http_err, st.grpc_err, st.conn_err, st.late,
           (double)st.ok / secs, (double)st.spans_ok / secs, pct(0.50), pct(0.90), pct(0.99),
           pct(0.999), st.n_lat ? st.lat_us[st.n_lat - 1] : 0,
           st.first_error[0] ? st.first_error : "-");
    return 0;
}
