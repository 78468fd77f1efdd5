/* drain_server: the transport limit and the fake Datadog intake.
 *
 *   drain_server --port P [--h1-status 200] [--h1-body TEXT]
 *                [--h1-content-type TYPE] [--stats FILE] [--count-dd-spans]
 *                [--h1-delay-ms MS] [--h1-fail STATUS:SECONDS]
 *
 * One thread, epoll, non-blocking sockets on 127.0.0.1:P. Each connection is
 * HTTP/2 cleartext (prior knowledge: the client preface) or HTTP/1.1,
 * told apart by its first bytes. HTTP/2 requests (OTLP/gRPC) are read and
 * discarded and answered 200 with an empty gRPC message and trailers
 * grpc-status 0; HTTP/1.1 requests (OTLP/HTTP, or the Datadog exporter when
 * the server plays the intake) are read and answered with --h1-status and
 * --h1-body. Nothing is decoded unless --count-dd-spans, which inflates
 * agentless trace payloads (/api/v0.2/traces) and counts their spans, so a
 * run can check that every span sent to spanprof reached the intake.
 *
 * --h1-delay-ms answers every HTTP/1.1 request that much later (an intake
 * as far away as a Datadog site is from a cluster); --h1-fail answers
 * STATUS (e.g. 503) for the first SECONDS after start, then --h1-status
 * (an outage and its recovery).
 *
 * The same load against this server and against spanprof tells how much of
 * spanprof's cost is the transport itself. Counters are written to --stats
 * every second and at exit (SIGINT/SIGTERM) as `key=value` lines. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#include <libdeflate.h>
#include <zstd.h>
#include <nghttp2/nghttp2.h>

#include "bench_util.h"
#include "dd_trace.pb-c.h"
#include "sp_buf.h"

#define DRAIN_MAX_H1_BODY (64u << 20)

static struct {
    int h1_status;
    const char *h1_body;
    const char *h1_ctype;
    const char *stats_path;
    int count_dd;
    int64_t delay_ns;
    int fail_status;
    int64_t fail_until_ns;
} opt = {200, "", "application/x-protobuf", NULL, 0, 0, 0, 0};

static struct {
    uint64_t conns, h2_requests, h1_requests, bytes_in, dd_payloads, dd_spans, dd_bad;
    uint64_t dd_gzip_bytes, dd_raw_bytes;
} st;

static volatile sig_atomic_t stop_flag;

enum conn_proto { PROTO_UNKNOWN = 0, PROTO_H1 = 1, PROTO_H2 = 2 };

struct conn {
    int fd;
    enum conn_proto proto;
    nghttp2_session *h2;
    struct sp_buf in;  /* h1: unparsed bytes; unknown: the first bytes */
    struct sp_buf out; /* bytes not yet written */
    size_t out_off;
    int want_out;
    int closing;
    int sent_continue;
    int64_t release_ns; /* --h1-delay-ms: the answer goes out at this time */
    int held;           /* in the held list */
};

/* Connections whose answer waits for --h1-delay-ms. */
#define DRAIN_MAX_HELD 4096
static struct conn *held[DRAIN_MAX_HELD];
static size_t n_held;

static void held_del(struct conn *c)
{
    for (size_t i = 0; c->held && i < n_held; i++)
        if (held[i] == c) {
            held[i] = held[--n_held];
            c->held = 0;
        }
}

static int ep;

static void write_stats(void)
{
    if (!opt.stats_path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", opt.stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f,
            "conns=%" PRIu64 "\nh2_requests=%" PRIu64 "\nh1_requests=%" PRIu64
            "\nbytes_in=%" PRIu64 "\ndd_payloads=%" PRIu64 "\ndd_spans=%" PRIu64
            "\ndd_bad=%" PRIu64 "\ndd_gzip_bytes=%" PRIu64 "\ndd_raw_bytes=%" PRIu64 "\n",
            st.conns, st.h2_requests, st.h1_requests, st.bytes_in, st.dd_payloads, st.dd_spans,
            st.dd_bad, st.dd_gzip_bytes, st.dd_raw_bytes);
    fclose(f);
    rename(tmp, opt.stats_path);
}

static void conn_free(struct conn *c)
{
    held_del(c);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->h2)
        nghttp2_session_del(c->h2);
    sp_buf_free(&c->in);
    sp_buf_free(&c->out);
    free(c);
}

static void conn_arm(struct conn *c, int want_out)
{
    if (want_out == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Writes what is pending; -1 when the connection died. */
static int conn_flush(struct conn *c)
{
    if (c->release_ns && c->out_off < c->out.len) {
        if (bench_mono_ns() < c->release_ns) {
            if (!c->held && n_held < DRAIN_MAX_HELD) {
                held[n_held++] = c;
                c->held = 1;
            }
            conn_arm(c, 0);
            return 0;
        }
        c->release_ns = 0;
        held_del(c);
    }
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
    return c->closing ? -1 : 0;
}

/* ---- Datadog payload check ---- */

/* enc: 0 none, 1 gzip, 2 zstd (the request's Content-Encoding).
 * dd_gzip_bytes counts the body as sent, whatever its encoding. */
static void dd_count(const uint8_t *body, size_t len, int gz)
{
    st.dd_payloads++;
    st.dd_gzip_bytes += len;
    const uint8_t *raw = body;
    size_t raw_len = len;
    uint8_t *buf = NULL;
    if (gz == 2) {
        unsigned long long n = ZSTD_getFrameContentSize(body, len);
        buf = n < (64ull << 20) ? malloc((size_t)n + 1) : NULL;
        size_t got = buf ? ZSTD_decompress(buf, (size_t)n, body, len) : 0;
        if (!buf || ZSTD_isError(got)) {
            st.dd_bad++;
            free(buf);
            return;
        }
        raw = buf;
        raw_len = got;
    } else if (gz) {
        if (len < 18) {
            st.dd_bad++;
            return;
        }
        size_t isize = (size_t)body[len - 4] | (size_t)body[len - 3] << 8 |
                       (size_t)body[len - 2] << 16 | (size_t)body[len - 1] << 24;
        struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
        buf = malloc(isize + 1);
        size_t got = 0;
        if (!d || !buf ||
            libdeflate_gzip_decompress(d, body, len, buf, isize, &got) != LIBDEFLATE_SUCCESS) {
            st.dd_bad++;
            libdeflate_free_decompressor(d);
            free(buf);
            return;
        }
        libdeflate_free_decompressor(d);
        raw = buf;
        raw_len = got;
    }
    st.dd_raw_bytes += raw_len;
    Datadog__Trace__AgentPayload *p = datadog__trace__agent_payload__unpack(NULL, raw_len, raw);
    if (!p) {
        st.dd_bad++;
    } else {
        for (size_t i = 0; i < p->n_tracerpayloads; i++)
            for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++)
                st.dd_spans += p->tracerpayloads[i]->chunks[j]->n_spans;
        datadog__trace__agent_payload__free_unpacked(p, NULL);
    }
    free(buf);
}

/* ---- HTTP/1.1 ---- */

static const char *h1_header(const char *head, size_t head_len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', head_len);
    const char *end = head + head_len;
    while (p && p + 1 < end) {
        p++;
        if ((size_t)(end - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = v;
            while (e < end && *e != '\r' && *e != '\n')
                e++;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = memchr(p, '\n', (size_t)(end - p));
    }
    return NULL;
}

/* Decodes a chunked body in place; returns the bytes of the encoded body
 * consumed, 0 when incomplete, -1 when malformed. */
static ssize_t h1_dechunk(const uint8_t *p, size_t len, struct sp_buf *body)
{
    size_t off = 0;
    for (;;) {
        const uint8_t *nl = memchr(p + off, '\n', len - off);
        if (!nl)
            return 0;
        char *end;
        unsigned long sz = strtoul((const char *)p + off, &end, 16);
        if (end == (const char *)p + off)
            return -1;
        size_t data = (size_t)(nl - p) + 1;
        if (sz == 0) {
            /* no trailers supported: expect the final CRLF */
            if (len < data + 2)
                return 0;
            return (ssize_t)(data + 2);
        }
        if (len < data + sz + 2)
            return 0;
        if (sp_buf_append(body, p + data, sz))
            return -1;
        off = data + sz + 2;
    }
}

static int h1_process(struct conn *c)
{
    for (;;) {
        const char *base = (const char *)c->in.data;
        const char *hend = c->in.len ? memmem(base, c->in.len, "\r\n\r\n", 4) : NULL;
        if (!hend)
            return c->in.len > 65536 ? -1 : 0;
        size_t head_len = (size_t)(hend - base) + 4;
        size_t vl = 0;
        const char *v;
        size_t body_len = 0;
        int chunked = 0;
        if ((v = h1_header(base, head_len, "Content-Length", &vl)))
            body_len = strtoull(v, NULL, 10);
        if ((v = h1_header(base, head_len, "Transfer-Encoding", &vl)) && vl >= 7 &&
            strncasecmp(v, "chunked", 7) == 0)
            chunked = 1;
        if (body_len > DRAIN_MAX_H1_BODY)
            return -1;
        if (!c->sent_continue && (v = h1_header(base, head_len, "Expect", &vl)) &&
            vl >= 12 && strncasecmp(v, "100-continue", 12) == 0 &&
            c->in.len < head_len + body_len) {
            if (sp_buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n"))
                return -1;
            c->sent_continue = 1;
        }
        struct sp_buf chunk_body = {0};
        size_t consumed;
        const uint8_t *body = c->in.data + head_len;
        if (chunked) {
            ssize_t n = h1_dechunk(c->in.data + head_len, c->in.len - head_len, &chunk_body);
            if (n < 0) {
                sp_buf_free(&chunk_body);
                return -1;
            }
            if (n == 0) {
                sp_buf_free(&chunk_body);
                return 0;
            }
            consumed = head_len + (size_t)n;
            body = chunk_body.data;
            body_len = chunk_body.len;
        } else {
            if (c->in.len < head_len + body_len)
                return 0;
            consumed = head_len + body_len;
        }
        st.h1_requests++;
        st.bytes_in += consumed;
        /* Delivered spans only: a payload answered 503 comes again. */
        int status = opt.fail_status && bench_mono_ns() < opt.fail_until_ns ? opt.fail_status
                                                                             : opt.h1_status;
        if (opt.count_dd && status < 300 && head_len > 24 &&
            memcmp(base, "POST /api/v0.2/traces", 21) == 0) {
            int gz = 0;
            if ((v = h1_header(base, head_len, "Content-Encoding", &vl)) && vl >= 4)
                gz = strncasecmp(v, "gzip", 4) == 0 ? 1 : strncasecmp(v, "zstd", 4) == 0 ? 2 : 0;
            dd_count(body, body_len, gz);
        }
        sp_buf_free(&chunk_body);
        int close_after = (v = h1_header(base, head_len, "Connection", &vl)) && vl >= 5 &&
                          strncasecmp(v, "close", 5) == 0;
        size_t bl = strlen(opt.h1_body);
        if (opt.delay_ns && c->out.len == 0)
            c->release_ns = bench_mono_ns() + opt.delay_ns;
        if (sp_buf_printf(&c->out,
                          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
                          status, status < 300 ? "OK" : "Error", opt.h1_ctype, bl,
                          close_after ? "Connection: close\r\n" : "", opt.h1_body))
            return -1;
        c->sent_continue = 0;
        memmove(c->in.data, c->in.data + consumed, c->in.len - consumed);
        c->in.len -= consumed;
        if (close_after) {
            c->closing = 1;
            return 0;
        }
    }
}

/* ---- HTTP/2 (gRPC) ---- */

static ssize_t h2_read_msg(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    /* An empty ExportTraceServiceResponse: the 5-byte prefix, length 0. */
    if (length < 5)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memset(buf, 0, 5);
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    static const nghttp2_nv trailer[] = {
        {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE},
    };
    if (nghttp2_submit_trailer(s, stream_id, trailer, 1) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 5;
}

static int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && f->hd.stream_id > 0) {
        static const nghttp2_nv hdrs[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
             NGHTTP2_NV_FLAG_NONE},
        };
        nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = h2_read_msg};
        st.h2_requests++;
        if (nghttp2_submit_response(s, f->hd.stream_id, hdrs, 2, &prd) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                      size_t len, void *ud)
{
    (void)s;
    (void)flags;
    (void)stream_id;
    (void)data;
    (void)ud;
    st.bytes_in += len;
    return 0;
}

static nghttp2_session_callbacks *h2_cbs;

static int h2_start(struct conn *c)
{
    if (nghttp2_session_server_new(&c->h2, h2_cbs, c) != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0)
        return -1;
    /* A large connection window too, as gRPC servers use. */
    return nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 26);
}

static int h2_pump(struct conn *c)
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
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        c->closing = 1;
    return 0;
}

/* ---- loop ---- */

static int conn_input(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->proto == PROTO_UNKNOWN) {
        if (sp_buf_append(&c->in, p, n))
            return -1;
        static const char preface[] = "PRI * HTTP/2.0";
        size_t have = c->in.len < sizeof(preface) - 1 ? c->in.len : sizeof(preface) - 1;
        if (memcmp(c->in.data, preface, have) != 0) {
            c->proto = PROTO_H1;
            return h1_process(c);
        }
        if (have < sizeof(preface) - 1)
            return 0;
        c->proto = PROTO_H2;
        if (h2_start(c))
            return -1;
        ssize_t r = nghttp2_session_mem_recv(c->h2, c->in.data, c->in.len);
        c->in.len = 0;
        return r < 0 ? -1 : h2_pump(c);
    }
    if (c->proto == PROTO_H2) {
        ssize_t r = nghttp2_session_mem_recv(c->h2, p, n);
        return r < 0 ? -1 : h2_pump(c);
    }
    if (sp_buf_append(&c->in, p, n))
        return -1;
    return h1_process(c);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--h1-status") == 0 && i + 1 < argc)
            opt.h1_status = atoi(argv[++i]);
        else if (strcmp(argv[i], "--h1-body") == 0 && i + 1 < argc)
            opt.h1_body = argv[++i];
        else if (strcmp(argv[i], "--h1-content-type") == 0 && i + 1 < argc)
            opt.h1_ctype = argv[++i];
        else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc)
            opt.stats_path = argv[++i];
        else if (strcmp(argv[i], "--count-dd-spans") == 0)
            opt.count_dd = 1;
        else if (strcmp(argv[i], "--h1-delay-ms") == 0 && i + 1 < argc)
            opt.delay_ns = (int64_t)atoi(argv[++i]) * 1000000;
        else if (strcmp(argv[i], "--h1-fail") == 0 && i + 1 < argc &&
                 sscanf(argv[i + 1], "%d:%" SCNd64, &opt.fail_status, &opt.fail_until_ns) == 2) {
            i++;
            opt.fail_until_ns = bench_mono_ns() + opt.fail_until_ns * 1000000000;
        } else {
            fprintf(stderr, "usage: drain_server --port P [--h1-status N] [--h1-body TEXT] "
                            "[--h1-content-type T] [--stats FILE] [--count-dd-spans] "
                            "[--h1-delay-ms MS] [--h1-fail STATUS:SECONDS]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    nghttp2_session_callbacks_new(&h2_cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(h2_cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2_cbs, h2_on_data);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 512) != 0) {
        fprintf(stderr, "drain_server: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    socklen_t sl = sizeof(sin);
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    static uint8_t rbuf[1 << 18];
    int64_t next_stats = bench_mono_ns() + 1000000000;
    while (!stop_flag) {
        struct epoll_event evs[64];
        int wait_ms = 200;
        int64_t now = bench_mono_ns();
        for (size_t i = 0; i < n_held; i++) {
            int64_t ms = held[i]->release_ns > now ? (held[i]->release_ns - now) / 1000000 : 0;
            if (ms < wait_ms)
                wait_ms = (int)ms;
        }
        int n = epoll_wait(ep, evs, 64, wait_ms);
        now = bench_mono_ns();
        for (size_t i = 0; i < n_held;) {
            struct conn *hc = held[i];
            if (hc->release_ns > now) {
                i++;
                continue;
            }
            if (conn_flush(hc)) /* removes it from the list */
                conn_free(hc);
            else if (hc->held && hc->release_ns <= now)
                i++; /* cannot happen: flushed ones leave the list */
        }
        if (bench_mono_ns() >= next_stats) {
            write_stats();
            next_stats = bench_mono_ns() + 1000000000;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct conn *nc = calloc(1, sizeof(*nc));
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    st.conns++;
                }
                continue;
            }
            int dead = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t r = read(c->fd, rbuf, sizeof(rbuf));
                    if (r > 0) {
                        if (conn_input(c, rbuf, (size_t)r)) {
                            dead = 1;
                            break;
                        }
                        if ((size_t)r < sizeof(rbuf))
                            break;
                        continue;
                    }
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (r < 0 && errno == EINTR)
                        continue;
                    dead = 1; /* EOF or error */
                    break;
                }
            }
            if (!dead && c->proto == PROTO_H2 && h2_pump(c))
                dead = 1;
            if (!dead && conn_flush(c))
                dead = 1;
            if (dead)
                conn_free(c);
        }
    }
    write_stats();
    fprintf(stderr,
            "drain_server: conns=%" PRIu64 " h2_requests=%" PRIu64 " h1_requests=%" PRIu64
            " bytes_in=%" PRIu64 " dd_payloads=%" PRIu64 " dd_spans=%" PRIu64 "\n",
            st.conns, st.h2_requests, st.h1_requests, st.bytes_in, st.dd_payloads, st.dd_spans);
    return 0;
}
