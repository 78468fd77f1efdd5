/* Loopback tests of the datadog exporter's delivery: the real component
 * (create/start/consume/shutdown) on a libuv loop, sending with the real
 * libcurl client to fake intakes on 127.0.0.1 (sp_httpd, and a raw TCP
 * server for a hanging intake). What each intake received is decoded back
 * (gunzip + AgentPayload protobuf, msgpack, multipart) and the faults the
 * issue lists are played: 500 then 200, 429 with Retry-After, 403, a hanging
 * intake, the intake down at shutdown, and a full queue. */
#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dd_trace.pb-c.h"
#include "exporters/datadog/datadog_int.h"
#include "otlp_codec.h"
#include "dd_map.h"
#include "sp_compress.h"
#include "sp_httpd.h"
#include "sp_log.h"
#include "sp_memory.h"
#include "sp_test.h"

extern const struct sp_component_type sp_datadog_exporter_type;

#define KEY "0123456789abcdef0123456789abcdef"

static uv_loop_t *loop;

/* ---- fake intake on sp_httpd ---- */

struct rec {
    char method[8];
    char path[128];
    char ctype[160];
    char cenc[32];
    char apikey[64];
    char apikey2[64];
    char trace_count[16];
    char origin[64];
    char lang[32];
    char langs[64];
    uint8_t *body;
    size_t len;
    uint64_t at_ms;
};

struct intake {
    struct sp_httpd *h;
    int port;
    struct rec recs[64];
    int n;
    /* Answer for request i: status and optional Retry-After. */
    int statuses[16];
    const char *retry_after;
    const char *reply_body;
};

static void copy_hdr(struct sp_http_request *req, const char *name, char *out, size_t cap)
{
    const char *v = sp_http_header(req, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static void intake_handler(void *ud, struct sp_http_request *req)
{
    struct intake *in = ud;
    if (req->phase == SP_HTTP_HEADERS) {
        req->max_body = 32u << 20;
        return;
    }
    int i = in->n < 64 ? in->n++ : 63;
    struct rec *r = &in->recs[i];
    snprintf(r->method, sizeof(r->method), "%s", req->method);
    snprintf(r->path, sizeof(r->path), "%s", req->path);
    copy_hdr(req, "Content-Type", r->ctype, sizeof(r->ctype));
    copy_hdr(req, "Content-Encoding", r->cenc, sizeof(r->cenc));
    copy_hdr(req, "DD-Api-Key", r->apikey, sizeof(r->apikey));
    copy_hdr(req, "DD-API-KEY", r->apikey2, sizeof(r->apikey2));
    copy_hdr(req, "X-Datadog-Trace-Count", r->trace_count, sizeof(r->trace_count));
    copy_hdr(req, "DD-EVP-ORIGIN", r->origin, sizeof(r->origin));
    copy_hdr(req, "Datadog-Meta-Lang", r->lang, sizeof(r->lang));
    copy_hdr(req, "X-Datadog-Reported-Languages", r->langs, sizeof(r->langs));
    free(r->body);
    r->body = malloc(req->body_len + 1);
    memcpy(r->body, req->body, req->body_len);
    r->len = req->body_len;
    r->at_ms = uv_now(loop);
    int st = i < 16 && in->statuses[i] ? in->statuses[i] : 202;
    const char *hdrs[] = {"Retry-After", in->retry_after, NULL};
    const char *body = in->reply_body ? in->reply_body : "{}";
    sp_httpd_respond(req, (unsigned)st, "application/json", body, strlen(body),
                     st == 429 && in->retry_after ? hdrs : NULL);
}

static int intake_start(struct intake *in)
{
    memset(in, 0, sizeof(*in));
    struct sp_httpd_opts o = {.endpoint = "127.0.0.1:0", .name = "intake"};
    struct sp_err err = {0};
    if (sp_httpd_start(loop, &o, intake_handler, in, &in->h, &err) != 0) {
        fprintf(stderr, "intake: %s\n", err.msg);
        return -1;
    }
    in->port = sp_httpd_port(in->h);
    return 0;
}

static void intake_stop(struct intake *in)
{
    sp_httpd_stop(in->h, NULL, NULL);
    for (int i = 0; i < 64; i++)
        free(in->recs[i].body);
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- the component under test ---- */

struct dut {
    struct dd_conf conf;
    struct sp_component comp;
    struct sp_host host;
    char url[128];
    char purl[128];
    bool done;
};

static void dut_conf(struct dut *d, int port, bool agent)
{
    memset(d, 0, sizeof(*d));
    struct dd_conf *c = &d->conf;
    c->api.key = " " KEY "\n";
    c->api.site = "datadoghq.com";
    snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d", port);
    if (agent) {
        c->agent.endpoint = d->url;
    } else {
        c->traces.endpoint = d->url;
        c->profiles.endpoint = d->url;
    }
    c->env = "test";
    c->timeout_ms = 2000;
    c->retry = (struct dd_retry_conf){true, 50, 200, 5000};
    c->queue = (struct dd_queue_conf){true, 100, 64u << 20, 2, "refuse"};
}

static int dut_start(struct dut *d)
{
    struct sp_err err = {0};
    d->comp.type = &sp_datadog_exporter_type;
    d->comp.id = "datadog";
    d->comp.conf = &d->conf;
    d->comp.metric_labels = "component=\"datadog\"";
    d->comp.loop = loop;
    d->host.loop = loop;
    d->host.state = SP_SERVICE_RUNNING;
    d->comp.host = &d->host;
    if (d->comp.type->create(&d->comp, &err) || d->comp.type->start(&d->comp, &d->host, &err)) {
        fprintf(stderr, "dut: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void on_done(struct sp_component *c)
{
    struct dut *d = (struct dut *)((char *)c - offsetof(struct dut, comp));
    d->done = true;
}

static void dut_stop(struct dut *d, uint64_t deadline_in_ms)
{
    d->host.state = SP_SERVICE_STOPPING;
    d->host.shutdown_deadline_ms = uv_now(loop) + deadline_in_ms;
    d->comp.type->shutdown(&d->comp, on_done);
}

static void dut_destroy(struct dut *d)
{
    d->comp.type->destroy(&d->comp);
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    sp_metrics_reset();
}

/* Runs the loop until *flag or ms pass. */
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void run_for(uint64_t ms, const bool *flag, const int *count, int want)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_tick, 10, 10);
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        if (flag && *flag)
            break;
        if (count && *count >= want)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static double metric(const char *name, const char *labels)
{
    struct sp_metric *m = sp_metric_find(name, labels);
    return m ? sp_metric_value(m) : -1;
}

#define LBL "component=\"datadog\""

/* ---- batches ---- */

static struct sp_batch *traces_batch(void)
{
    char path[1024];
    sp_test_fixture(path, sizeof(path), "otlp-http-proto.bin");
    size_t len;
    uint8_t *data = sp_test_read_file(path, &len);
    if (!data)
        return NULL;
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    struct sp_otlp_decode_info info;
    struct sp_err err = {0};
    int rc = sp_otlp_decode_traces(b, SP_OTLP_PROTOBUF, data, len, &info, &err);
    free(data);
    if (rc) {
        fprintf(stderr, "decode: %s\n", err.msg);
        sp_batch_unref(b);
        return NULL;
    }
    return b;
}

static struct sp_batch *profile_batch(void)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_PROFILES, 0);
    struct sp_profile *p = &b->u.profile;
    struct sp_attachment *a = sp_arena_calloc(b->arena, 1, sizeof(*a));
    a->name = "metrics.json";
    a->data = (const uint8_t *)"[[\"go_goroutines\",7]]";
    a->len = strlen((const char *)a->data);
    p->dialect = "datadog";
    p->service = "goapp";
    p->family = "go";
    p->start_ns = 1700000000000000000LL;
    p->end_ns = 1700000060000000000LL;
    p->origin = "dd-trace-go";
    p->origin_version = "2.0.0";
    p->attachments = a;
    p->attachment_count = 1;
    return b;
}

static Datadog__Trace__AgentPayload *decode_agentless(const struct rec *r, struct sp_arena *a)
{
    const uint8_t *raw;
    size_t rlen;
    struct sp_err err = {0};
    int c = sp_compression_parse(r->cenc); /* gzip by default, zstd when configured */
    if (c < 0 || sp_decompress((enum sp_compression)c, r->body, r->len, 64u << 20, a, &raw, &rlen,
                               &err))
        return NULL;
    return datadog__trace__agent_payload__unpack(NULL, rlen, raw);
}

static size_t payload_spans(const Datadog__Trace__AgentPayload *p)
{
    size_t n = 0;
    for (size_t t = 0; t < p->n_tracerpayloads; t++)
        for (size_t c = 0; c < p->tracerpayloads[t]->n_chunks; c++)
            n += p->tracerpayloads[t]->chunks[c]->n_spans;
    return n;
}

/* ---- tests ---- */

static void test_agentless_traces_and_profiles(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    struct dut d;
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *tb = traces_batch();
    ASSERT(tb);
    struct sp_batch *pb = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, pb), SP_OK);
    sp_batch_unref(tb);
    sp_batch_unref(pb);
    run_for(3000, NULL, &in.n, 2);
    ASSERT_EQ_INT(in.n, 2);
    const struct rec *tr = strcmp(in.recs[0].path, "/api/v0.2/traces") == 0 ? &in.recs[0]
                                                                             : &in.recs[1];
    const struct rec *pr = tr == &in.recs[0] ? &in.recs[1] : &in.recs[0];
    ASSERT_EQ_STR(tr->method, "POST");
    ASSERT_EQ_STR(tr->path, "/api/v0.2/traces");
    ASSERT_EQ_STR(tr->ctype, "application/x-protobuf");
    ASSERT_EQ_STR(tr->cenc, "gzip"); /* the default, as the Collector's Datadog exporter */
    ASSERT_EQ_STR(tr->apikey, KEY); /* trimmed */
    ASSERT_EQ_STR(tr->langs, ""); /* the fixture has no telemetry.sdk.language */
    struct sp_arena *a = sp_arena_create(0);
    Datadog__Trace__AgentPayload *ap = decode_agentless(tr, a);
    ASSERT(ap);
    ASSERT_EQ_INT(payload_spans(ap), 9);
    ASSERT_EQ_STR(ap->tracerpayloads[0]->chunks[0]->spans[0]->service, "fixture-otlp-proto");
    datadog__trace__agent_payload__free_unpacked(ap, NULL);
    sp_arena_destroy(a);

    ASSERT_EQ_STR(pr->method, "POST");
    ASSERT_EQ_STR(pr->path, "/api/v2/profile");
    ASSERT_EQ_STR(pr->apikey2, KEY);
    ASSERT_EQ_STR(pr->origin, "dd-trace-go");
    ASSERT(strncmp(pr->ctype, "multipart/form-data; boundary=", 30) == 0);
    ASSERT(memmem(pr->body, pr->len, "name=\"metrics.json\"", 19));
    ASSERT(memmem(pr->body, pr->len, "[[\"go_goroutines\",7]]", 21));
    ASSERT(memmem(pr->body, pr->len, "\"tags_profiler\":\"service:goapp,env:test\"", 40));

    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 9);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_profiles_total", LBL), 1);
    ASSERT(metric("spanprof_exporter_payload_bytes_total", LBL ",signal=\"traces\"") > 100);
    ASSERT_EQ_INT(metric("spanprof_exporter_http_responses_total", LBL ",status=\"202\""), 2);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    dut_destroy(&d);
    intake_stop(&in);
}

static void test_agent_mode(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    in.reply_body = "{\"rate_by_service\":{\"service:,env:\":1}}";
    struct dut d;
    dut_conf(&d, in.port, true);
    d.conf.api.key = NULL;
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *tb = traces_batch();
    struct sp_batch *pb = profile_batch();
    ASSERT(tb);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, pb), SP_OK);
    sp_batch_unref(tb);
    sp_batch_unref(pb);
    run_for(3000, NULL, &in.n, 2);
    ASSERT_EQ_INT(in.n, 2);
    const struct rec *tr = strcmp(in.recs[0].path, "/v0.4/traces") == 0 ? &in.recs[0]
                                                                         : &in.recs[1];
    const struct rec *pr = tr == &in.recs[0] ? &in.recs[1] : &in.recs[0];
    ASSERT_EQ_STR(tr->method, "PUT");
    ASSERT_EQ_STR(tr->path, "/v0.4/traces");
    ASSERT_EQ_STR(tr->ctype, "application/msgpack");
    ASSERT_EQ_STR(tr->trace_count, "3");
    ASSERT_EQ_STR(tr->lang, "otlp"); /* no telemetry.sdk.language in the fixture */
    ASSERT_EQ_STR(tr->apikey, "");
    /* msgpack: 3 traces of 3 span maps, each with a service */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ASSERT_EQ_INT(msgpack_unpack_next(&u, (const char *)tr->body, tr->len, &off),
                  MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ_INT(off, tr->len);
    msgpack_object root = u.data;
    ASSERT_EQ_INT(root.type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ_INT(root.via.array.size, 3);
    size_t spans = 0;
    for (uint32_t t = 0; t < root.via.array.size; t++) {
        msgpack_object tra = root.via.array.ptr[t];
        ASSERT_EQ_INT(tra.type, MSGPACK_OBJECT_ARRAY);
        for (uint32_t s = 0; s < tra.via.array.size; s++) {
            msgpack_object sp = tra.via.array.ptr[s];
            ASSERT_EQ_INT(sp.type, MSGPACK_OBJECT_MAP);
            bool has_service = false;
            for (uint32_t k = 0; k < sp.via.map.size; k++) {
                msgpack_object key = sp.via.map.ptr[k].key;
                if (key.type == MSGPACK_OBJECT_STR && key.via.str.size == 7 &&
                    memcmp(key.via.str.ptr, "service", 7) == 0)
                    has_service = true;
            }
            ASSERT(has_service);
            spans++;
        }
    }
    msgpack_unpacked_destroy(&u);
    ASSERT_EQ_INT(spans, 9);
    ASSERT_EQ_STR(pr->path, "/profiling/v1/input");
    ASSERT_EQ_STR(pr->apikey2, "");
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 9);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    dut_destroy(&d);
    intake_stop(&in);
}

static void test_500_then_200_delivered_once(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    in.statuses[0] = 500;
    in.statuses[1] = 503;
    struct dut d;
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *tb = traces_batch();
    ASSERT(tb);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
    sp_batch_unref(tb);
    run_for(5000, NULL, &in.n, 3);
    run_for(300, NULL, NULL, 0); /* nothing more may come */
    ASSERT_EQ_INT(in.n, 3);
    ASSERT_EQ_INT(in.recs[0].len, in.recs[2].len);
    ASSERT(memcmp(in.recs[0].body, in.recs[2].body, in.recs[0].len) == 0);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 9);
    ASSERT_EQ_INT(metric("spanprof_exporter_failed_spans_total", LBL), 0);
    ASSERT_EQ_INT(metric("spanprof_exporter_retries_total", LBL ",signal=\"traces\""), 2);
    ASSERT_EQ_INT(metric("spanprof_exporter_http_responses_total", LBL ",status=\"500\""), 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_http_responses_total", LBL ",status=\"503\""), 1);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    dut_destroy(&d);
    intake_stop(&in);
}

static void test_429_retry_after(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    in.statuses[0] = 429;
    in.retry_after = "1";
    struct dut d;
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *pb = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, pb), SP_OK);
    sp_batch_unref(pb);
    run_for(4000, NULL, &in.n, 2);
    ASSERT_EQ_INT(in.n, 2);
    /* Backoff alone would be 25-75 ms; Retry-After: 1 means a second. */
    ASSERT(in.recs[1].at_ms - in.recs[0].at_ms >= 950);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_profiles_total", LBL), 1);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    dut_destroy(&d);
    intake_stop(&in);
}

static void test_403_no_retry_one_line(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    for (int i = 0; i < 16; i++)
        in.statuses[i] = 403;
    struct dut d;
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    /* Capture stderr (the log) around the sends. */
    char logpath[] = "/tmp/spanprof-test-403-XXXXXX";
    int fd = mkstemp(logpath);
    ASSERT(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    struct sp_batch *tb = traces_batch();
    struct sp_batch *pb = profile_batch();
    d.comp.type->consume(&d.comp, tb);
    d.comp.type->consume(&d.comp, pb);
    sp_batch_unref(tb);
    sp_batch_unref(pb);
    run_for(3000, NULL, &in.n, 2);
    run_for(400, NULL, NULL, 0); /* several backoffs: no retry may come */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    size_t llen;
    char *log = (char *)sp_test_read_file(logpath, &llen);
    unlink(logpath);
    ASSERT(log);
    ASSERT_EQ_INT(in.n, 2);
    int lines = 0;
    for (char *p = log; (p = strstr(p, "rejected the API key")) != NULL; p++)
        lines++;
    ASSERT_EQ_INT(lines, 1);
    ASSERT_CONTAINS(log, "...cdef");
    ASSERT_CONTAINS(log, "site datadoghq.com");
    ASSERT(!strstr(log, KEY));
    ASSERT(!strstr(log, "0123456789abcdef0123"));
    free(log);
    ASSERT_EQ_INT(metric("spanprof_exporter_failed_spans_total", LBL), 9);
    ASSERT_EQ_INT(metric("spanprof_exporter_failed_profiles_total", LBL), 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_retries_total", LBL ",signal=\"traces\""), 0);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    dut_destroy(&d);
    intake_stop(&in);
}

/* ---- a raw TCP intake that hangs on its first connection and answers
 * 202 on the next ones ---- */

struct hang_conn {
    uv_tcp_t tcp;
    int index;
    char buf[1 << 16];
    size_t got;
    bool answered;
};

struct hang_srv {
    uv_tcp_t tcp;
    int port;
    int accepted;
    int answered;
    struct hang_conn *conns[16];
};

static void hang_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    struct hang_conn *c = h->data;
    b->base = c->buf + (c->got < sizeof(c->buf) - 1 ? c->got : 0);
    b->len = sizeof(c->buf) - 1 - (c->got < sizeof(c->buf) - 1 ? c->got : 0);
}

static void hang_written(uv_write_t *w, int st)
{
    (void)st;
    free(w);
}

static struct hang_srv *hang_g;

static void hang_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct hang_conn *c = s->data;
    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    c->got += (size_t)n;
    c->buf[c->got] = 0;
    char *he = strstr(c->buf, "\r\n\r\n");
    char *cl = strcasestr(c->buf, "Content-Length:");
    if (c->index == 0 || c->answered || !he || !cl)
        return;
    size_t want = (size_t)strtoul(cl + 15, NULL, 10);
    if (c->got - (size_t)(he + 4 - c->buf) < want)
        return;
    c->answered = true;
    hang_g->answered++;
    static const char resp[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}";
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t wb = uv_buf_init((char *)resp, sizeof(resp) - 1);
    uv_write(w, s, &wb, 1, hang_written);
    c->got = 0;
    c->answered = false;
}

static void hang_on_conn(uv_stream_t *srv, int st)
{
    struct hang_srv *hs = srv->data;
    if (st < 0 || hs->accepted >= 16)
        return;
    struct hang_conn *c = calloc(1, sizeof(*c));
    c->index = hs->accepted;
    hs->conns[hs->accepted++] = c;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(srv, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, hang_alloc, hang_read);
}

static void test_hanging_intake_times_out_and_retries(void)
{
    struct hang_srv hs;
    memset(&hs, 0, sizeof(hs));
    hang_g = &hs;
    uv_tcp_init(loop, &hs.tcp);
    hs.tcp.data = &hs;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    ASSERT_EQ_INT(uv_tcp_bind(&hs.tcp, (const struct sockaddr *)&sa, 0), 0);
    ASSERT_EQ_INT(uv_listen((uv_stream_t *)&hs.tcp, 16, hang_on_conn), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&hs.tcp, (struct sockaddr *)&ss, &sl);
    hs.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    struct dut d;
    dut_conf(&d, hs.port, false);
    d.conf.timeout_ms = 300;
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *pb = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, pb), SP_OK);
    sp_batch_unref(pb);
    run_for(4000, NULL, &hs.answered, 1);
    ASSERT_EQ_INT(hs.answered, 1);
    ASSERT(hs.accepted >= 2);
    ASSERT_EQ_INT(metric("spanprof_exporter_http_responses_total",
                         LBL ",status=\"transport_error\""), 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_profiles_total", LBL), 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_retries_total", LBL ",signal=\"profiles\""), 1);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    dut_destroy(&d);
    for (int i = 0; i < hs.accepted; i++)
        uv_close((uv_handle_t *)&hs.conns[i]->tcp, NULL);
    uv_close((uv_handle_t *)&hs.tcp, NULL);
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    for (int i = 0; i < hs.accepted; i++)
        free(hs.conns[i]);
}

/* A port with nobody listening: connection refused at once. */
static int dead_port(void)
{
    uv_tcp_t t;
    uv_tcp_init(loop, &t);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &sl);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

/* An intake and an agentless exporter sealing every 200 ms. */
static void agentless_200ms(struct intake *in, struct dut *d)
{
    ASSERT_EQ_INT(intake_start(in), 0);
    dut_conf(d, in->port, false);
    d->conf.flush_interval_ms = 200;
    ASSERT_EQ_INT(dut_start(d), 0);
}

/* Many small batches become one payload: consume() maps each batch and
 * releases it at once; at flush_interval the open payload is sealed, and its
 * bytes are exactly protobuf-c's packing of one AgentPayload holding every
 * batch's tracer payloads in arrival order. */
static void test_batches_merge_into_one_payload(void)
{
    struct intake in;
    struct dut d;
    uint64_t export_before = sp_memory_used_by(SP_MEM_EXPORT);
    agentless_200ms(&in, &d);
    if (sp_test_failed_now)
        return;
    struct dd_exporter *dd = d.comp.ctx;
    struct sp_batch *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = traces_batch();
        ASSERT(b[i]);
        ASSERT_EQ_INT(d.comp.type->consume(&d.comp, b[i]), SP_OK);
        ASSERT_EQ_INT(b[i]->refcount, 1); /* the exporter kept no reference */
    }
    ASSERT_EQ_INT(dd->n_open, 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_open_spans", LBL), 27);
    ASSERT_EQ_INT(metric("spanprof_exporter_pending_spans", LBL), 27);
    ASSERT_EQ_INT(metric("spanprof_exporter_accepted_spans_total", LBL), 27);
    run_for(100, NULL, NULL, 0);
    ASSERT_EQ_INT(in.n, 0); /* not before flush_interval */
    run_for(3000, NULL, &in.n, 1);
    run_for(300, NULL, NULL, 0);
    ASSERT_EQ_INT(in.n, 1);

    /* What one AgentPayload of the three mapped batches packs to. */
    struct sp_arena *a = sp_arena_create(0);
    struct sp_dd_map_opts mo;
    dd_map_opts(&dd->set, &mo);
    Datadog__Trace__AgentPayload *p[3];
    size_t rejected = 0;
    struct sp_err err = {0};
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(sp_dd_map_traces(&b[i]->u.traces, &mo, a, &p[i], &rejected, &err), 0);
    Datadog__Trace__AgentPayload all = *p[0];
    size_t ntp = p[0]->n_tracerpayloads + p[1]->n_tracerpayloads + p[2]->n_tracerpayloads;
    Datadog__Trace__TracerPayload **tps = sp_arena_alloc(a, ntp * sizeof(*tps));
    size_t k = 0;
    for (int i = 0; i < 3; i++)
        for (size_t t = 0; t < p[i]->n_tracerpayloads; t++)
            tps[k++] = p[i]->tracerpayloads[t];
    all.n_tracerpayloads = ntp;
    all.tracerpayloads = tps;
    size_t want_len = datadog__trace__agent_payload__get_packed_size(&all);
    uint8_t *want = malloc(want_len);
    datadog__trace__agent_payload__pack(&all, want);
    const uint8_t *raw;
    size_t rlen;
    ASSERT_EQ_STR(in.recs[0].cenc, "gzip");
    ASSERT_EQ_INT(sp_decompress(SP_COMPRESSION_GZIP, in.recs[0].body, in.recs[0].len, 64u << 20,
                                a, &raw, &rlen, &err),
                  0);
    ASSERT_EQ_INT(rlen, want_len);
    ASSERT(memcmp(raw, want, want_len) == 0);

    /* The sealed payload's raw buffer is kept, emptied and charged, and
     * the next open payload is built in it: the same batches again give
     * the same bytes. */
    ASSERT(dd->spare_raw.data != NULL);
    ASSERT_EQ_INT(dd->spare_raw.len, 0);
    ASSERT(sp_memory_used_by(SP_MEM_EXPORT) >= dd->spare_raw.cap);
    const uint8_t *spare = dd->spare_raw.data;
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(d.comp.type->consume(&d.comp, b[i]), SP_OK);
    ASSERT_EQ_INT(dd->n_open, 1);
    ASSERT(dd->open[0].raw.data == spare);
    ASSERT(dd->spare_raw.data == NULL);
    run_for(3000, NULL, &in.n, 2);
    run_for(300, NULL, NULL, 0);
    ASSERT_EQ_INT(in.n, 2);
    ASSERT_EQ_INT(sp_decompress(SP_COMPRESSION_GZIP, in.recs[1].body, in.recs[1].len, 64u << 20,
                                a, &raw, &rlen, &err),
                  0);
    ASSERT_EQ_INT(rlen, want_len);
    ASSERT(memcmp(raw, want, want_len) == 0);
    free(want);
    sp_arena_destroy(a);
    for (int i = 0; i < 3; i++)
        sp_batch_unref(b[i]);

    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 54);
    ASSERT_EQ_INT(metric("spanprof_exporter_pending_spans", LBL), 0);
    ASSERT_EQ_INT(metric("spanprof_exporter_queue_size", LBL), 0);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    dut_destroy(&d);
    /* destroy gives the kept buffer's charge back */
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_EXPORT), export_before);
    intake_stop(&in);
}

/* A batch whose mapped payload passes the intake's 3.2 MB is cut by the
 * splitter (consume packs first and splits only then): more than one
 * payload, each within the limit, every span once. */
static void test_big_batch_splits(void)
{
    struct intake in;
    struct dut d;
    agentless_200ms(&in, &d);
    if (sp_test_failed_now)
        return;
    struct sp_batch *b = traces_batch();
    ASSERT(b);
    /* 24 attributes of 20,000 bytes on every span (below the 25,000 the
     * mapping truncates at): ~480 KB a mapped span. */
    struct sp_arena *ba = b->arena;
    char *val = sp_arena_alloc(ba, 20001);
    ASSERT(val);
    memset(val, 'v', 20000);
    val[20000] = '\0';
    sp_otlp_request *req = b->u.traces.req;
    size_t spans = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
            for (size_t k = 0; k < req->resource_spans[r]->scope_spans[s]->n_spans; k++) {
                sp_otlp_span *sp = req->resource_spans[r]->scope_spans[s]->spans[k];
                size_t n = sp->n_attributes;
                sp_otlp_kv **kv = sp_arena_alloc(ba, (n + 24) * sizeof(*kv));
                ASSERT(kv);
                if (n)
                    memcpy(kv, sp->attributes, n * sizeof(*kv));
                for (int j = 0; j < 24; j++) {
                    sp_otlp_kv *x = sp_arena_alloc(ba, sizeof(*x));
                    Opentelemetry__Proto__Common__V1__AnyValue *v = sp_arena_alloc(ba, sizeof(*v));
                    ASSERT(x && v);
                    opentelemetry__proto__common__v1__key_value__init(x);
                    opentelemetry__proto__common__v1__any_value__init(v);
                    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                    v->string_value = val;
                    x->key = sp_arena_sprintf(ba, "big.%d", j);
                    x->value = v;
                    kv[n + (size_t)j] = x;
                }
                sp->attributes = kv;
                sp->n_attributes = n + 24;
                spans++;
            }
    ASSERT(spans * 24 * 20000 > DD_MAX_TRACE_PAYLOAD);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, b), SP_OK);
    ASSERT_EQ_INT(b->refcount, 1);
    sp_batch_unref(b);
    run_for(3000, NULL, &in.n, 2);
    run_for(300, NULL, NULL, 0);
    ASSERT(in.n >= 2);
    size_t got = 0;
    for (int i = 0; i < in.n; i++) {
        struct sp_arena *a = sp_arena_create(0);
        const uint8_t *raw;
        size_t rlen;
        struct sp_err err = {0};
        ASSERT_EQ_STR(in.recs[i].cenc, "gzip");
        ASSERT_EQ_INT(sp_decompress(SP_COMPRESSION_GZIP, in.recs[i].body, in.recs[i].len,
                                    64u << 20, a, &raw, &rlen, &err),
                      0);
        ASSERT(rlen <= DD_MAX_TRACE_PAYLOAD);
        Datadog__Trace__AgentPayload *p = datadog__trace__agent_payload__unpack(NULL, rlen, raw);
        ASSERT(p);
        got += payload_spans(p);
        datadog__trace__agent_payload__free_unpacked(p, NULL);
        sp_arena_destroy(a);
    }
    ASSERT_EQ_INT(got, spans);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), (double)spans);
    dut_stop(&d, 1000);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    dut_destroy(&d);
    intake_stop(&in);
}

/* Without a queue a sealed payload goes only to an idle worker: while the
 * only worker waits to retry, new data is refused. */
static void test_no_queue_offer(void)
{
    struct dut d;
    dut_conf(&d, dead_port(), false);
    d.conf.queue.enabled = false;
    d.conf.queue.num_consumers = 1;
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *b1 = traces_batch(), *b2 = traces_batch();
    ASSERT(b1 && b2);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, b1), SP_OK);
    run_for(100, NULL, NULL, 0); /* sealed, sent, refused, in backoff */
    ASSERT_EQ_INT(metric("spanprof_exporter_requests_in_backoff", LBL) +
                      metric("spanprof_exporter_requests_in_flight", LBL),
                  1);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, b2), SP_EFULL);
    ASSERT_EQ_INT(metric("spanprof_exporter_refused_spans_total", LBL), 9);
    sp_batch_unref(b1);
    sp_batch_unref(b2);
    dut_stop(&d, 300);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    ASSERT_EQ_INT(metric("spanprof_exporter_dropped_spans_total", LBL ",reason=\"shutdown\""), 9);
    dut_destroy(&d);
}

/* Shutdown right after consume: the open payload is sealed and the drain
 * delivers it. */
static void test_shutdown_right_after_consume(void)
{
    struct intake in;
    ASSERT_EQ_INT(intake_start(&in), 0);
    struct dut d;
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    struct sp_batch *tb = traces_batch();
    ASSERT(tb);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
    sp_batch_unref(tb);
    dut_stop(&d, 2000);
    ASSERT(!d.done);
    run_for(3000, &d.done, NULL, 0);
    ASSERT(d.done);
    ASSERT_EQ_INT(in.n, 1);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 9);
    dut_destroy(&d);

    /* A deadline already passed: the sealed payload's call is cancelled
     * before it could be answered, and counted as dropped at shutdown. */
    sp_metrics_reset();
    dut_conf(&d, in.port, false);
    ASSERT_EQ_INT(dut_start(&d), 0);
    tb = traces_batch();
    ASSERT(tb);
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
    sp_batch_unref(tb);
    dut_stop(&d, 0);
    run_for(1000, &d.done, NULL, 0);
    ASSERT(d.done);
    ASSERT_EQ_INT(metric("spanprof_exporter_dropped_spans_total", LBL ",reason=\"shutdown\""), 9);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 0);
    ASSERT_EQ_INT(in.n, 1);
    dut_destroy(&d);
    intake_stop(&in);
}

static void test_intake_down_at_shutdown(void)
{
    struct dut d;
    dut_conf(&d, dead_port(), false);
    d.conf.queue.num_consumers = 1;
    ASSERT_EQ_INT(dut_start(&d), 0);
    for (int i = 0; i < 3; i++) {
        struct sp_batch *tb = traces_batch();
        ASSERT(tb);
        ASSERT_EQ_INT(d.comp.type->consume(&d.comp, tb), SP_OK);
        sp_batch_unref(tb);
    }
    struct sp_batch *pb = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, pb), SP_OK);
    sp_batch_unref(pb);
    run_for(200, NULL, NULL, 0);
    uint64_t t0 = uv_now(loop);
    dut_stop(&d, 500);
    /* Still retrying during the drain: the processors may be flushing. */
    struct sp_batch *late = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, late), SP_OK);
    sp_batch_unref(late);
    run_for(3000, &d.done, NULL, 0);
    ASSERT(d.done);
    uint64_t took = uv_now(loop) - t0;
    ASSERT(took >= 350 && took < 1500); /* nothing new is sent in the last 125 ms */
    ASSERT_EQ_INT(metric("spanprof_exporter_dropped_spans_total", LBL ",reason=\"shutdown\""), 27);
    ASSERT_EQ_INT(metric("spanprof_exporter_dropped_profiles_total", LBL ",reason=\"shutdown\""),
                  2);
    ASSERT_EQ_INT(metric("spanprof_exporter_sent_spans_total", LBL), 0);
    /* profiles go first, so the one worker retried the profile */
    ASSERT(metric("spanprof_exporter_retries_total", LBL ",signal=\"profiles\"") >= 2);
    /* After done, nothing is accepted. */
    struct sp_batch *after = profile_batch();
    ASSERT_EQ_INT(d.comp.type->consume(&d.comp, after), SP_ESHUTDOWN);
    sp_batch_unref(after);
    dut_destroy(&d);
}

static void test_queue_full_refuses_or_drops_oldest(void)
{
    for (int mode = 0; mode < 2; mode++) {
        struct dut d;
        dut_conf(&d, dead_port(), false);
        d.conf.queue.num_consumers = 1;
        d.conf.queue.queue_size = 1;
        d.conf.queue.on_full = mode ? "drop_oldest" : "refuse";
        ASSERT_EQ_INT(dut_start(&d), 0);
        int rcs[3];
        for (int i = 0; i < 3; i++) {
            struct sp_batch *tb = traces_batch();
            ASSERT(tb);
            rcs[i] = d.comp.type->consume(&d.comp, tb);
            sp_batch_unref(tb);
            run_for(30, NULL, NULL, 0); /* sealed (flush_interval 0) */
        }
        ASSERT_EQ_INT(rcs[0], SP_OK); /* taken by the worker */
        ASSERT_EQ_INT(rcs[1], SP_OK); /* queued */
        if (mode == 0) {
            ASSERT_EQ_INT(rcs[2], SP_EFULL);
            ASSERT_EQ_INT(metric("spanprof_exporter_refused_spans_total", LBL), 9);
        } else {
            ASSERT_EQ_INT(rcs[2], SP_OK);
            ASSERT_EQ_INT(metric("spanprof_exporter_dropped_spans_total",
                                 LBL ",reason=\"queue_overflow\""),
                          9);
        }
        ASSERT_EQ_INT(metric("spanprof_exporter_queue_size", LBL), 1);
        ASSERT_EQ_INT(metric("spanprof_exporter_queue_capacity", LBL), 1);
        dut_stop(&d, 100);
        run_for(2000, &d.done, NULL, 0);
        ASSERT(d.done);
        ASSERT_EQ_INT(metric("spanprof_exporter_dropped_spans_total", LBL ",reason=\"shutdown\""),
                      18);
        dut_destroy(&d);
    }
}

static void test_create_errors(void)
{
    struct dut d;
    dut_conf(&d, 1, false);
    d.conf.api.key = "\"\"";
    d.comp.type = &sp_datadog_exporter_type;
    d.comp.id = "datadog";
    d.comp.conf = &d.conf;
    d.comp.metric_labels = "component=\"datadog\"";
    struct sp_err err = {0};
    ASSERT_EQ_INT(d.comp.type->create(&d.comp, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "api.key");
    ASSERT(d.comp.ctx == NULL);
}

/* The exporter's zstd context is charged to the memory ceiling (class
 * export) for the exporter's life, and given back by destroy; gzip and agent
 * mode charge none. */
static void test_compressor_memory_charged(void)
{
    const char *names[] = {"zstd", "gzip"};
    for (int k = 0; k < 3; k++) {
        struct dut d;
        dut_conf(&d, 1, k == 2);
        d.conf.compression = (char *)names[k == 1];
        d.comp.type = &sp_datadog_exporter_type;
        d.comp.id = "datadog";
        d.comp.conf = &d.conf;
        d.comp.metric_labels = "component=\"datadog\"";
        uint64_t before = sp_memory_used_by(SP_MEM_EXPORT);
        struct sp_err err = {0};
        ASSERT_EQ_INT(d.comp.type->create(&d.comp, &err), 0);
        struct dd_exporter *dd = d.comp.ctx;
        uint64_t with = sp_memory_used_by(SP_MEM_EXPORT);
        if (k == 0) {
            ASSERT(dd->set.compressor && dd->set.compressor->codec == SP_COMPRESSION_ZSTD);
            ASSERT(dd->set.compressor->mem > 0);
            ASSERT(with >= before + dd->set.compressor->mem);
        } else if (k == 1) {
            ASSERT(dd->set.compressor && dd->set.compressor->codec == SP_COMPRESSION_GZIP);
            ASSERT_EQ_INT(dd->set.compressor->mem, 0);
        } else {
            ASSERT(dd->set.compressor == NULL);
        }
        d.comp.type->destroy(&d.comp);
        ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_EXPORT), before);
    }
}

int main(void)
{
    loop = uv_default_loop();
    sp_log_set_level(SP_LOG_INFO);
    sp_metrics_reset();
    RUN(test_create_errors);
    RUN(test_compressor_memory_charged);
    sp_metrics_reset();
    RUN(test_agentless_traces_and_profiles);
    sp_metrics_reset();
    RUN(test_agent_mode);
    sp_metrics_reset();
    RUN(test_500_then_200_delivered_once);
    sp_metrics_reset();
    RUN(test_429_retry_after);
    sp_metrics_reset();
    RUN(test_403_no_retry_one_line);
    sp_metrics_reset();
    RUN(test_hanging_intake_times_out_and_retries);
    sp_metrics_reset();
    RUN(test_batches_merge_into_one_payload);
    RUN(test_big_batch_splits);
    sp_metrics_reset();
    RUN(test_shutdown_right_after_consume);
    sp_metrics_reset();
    RUN(test_no_queue_offer);
    sp_metrics_reset();
    RUN(test_intake_down_at_shutdown);
    sp_metrics_reset();
    RUN(test_queue_full_refuses_or_drops_oldest);
    sp_log_clear_secrets();
    sp_metrics_reset();
    return sp_test_summary();
}
