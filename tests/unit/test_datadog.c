/* Unit tests of the datadog exporter's pure parts: the bounded queue, the
 * retry classification and backoff, API key trimming, settings derived
 * from the config (URLs per site and mode, errors that never show the key)
 * and the lenient rate_by_service parser. No sockets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libdeflate.h>

#include "exporters/datadog/datadog_int.h"
#include "sp_compress.h"
#include "sp_test.h"

static struct dd_req *mk_batch(void)
{
    return dd_req_new(SP_SIGNAL_PROFILES, "POST");
}

static int dropped_n;
static size_t dropped_bytes;
static void on_drop(void *ud, struct dd_item *it)
{
    (void)ud;
    dropped_n++;
    dropped_bytes += it->bytes;
    dd_req_free(it->req);
}

static void test_queue_refuse_by_items(void)
{
    struct dd_queue q;
    dd_queue_init(&q, 3, 1 << 20, DD_FULL_REFUSE);
    for (int i = 0; i < 3; i++) {
        struct dd_item it = {mk_batch(), 10, 1};
        ASSERT_EQ_INT(dd_queue_push(&q, &it, on_drop, NULL), 0);
    }
    struct dd_item extra = {mk_batch(), 10, 1};
    ASSERT_EQ_INT(dd_queue_push(&q, &extra, on_drop, NULL), SP_EFULL);
    dd_req_free(extra.req);
    ASSERT_EQ_INT(q.len, 3);
    ASSERT_EQ_INT(q.bytes, 30);
    struct dd_item out;
    int n = 0;
    while (dd_queue_pop(&q, &out)) {
        dd_req_free(out.req);
        n++;
    }
    ASSERT_EQ_INT(n, 3);
    ASSERT_EQ_INT(q.bytes, 0);
    dd_queue_free(&q);
}

static void test_queue_refuse_by_bytes_but_oversized_alone_goes(void)
{
    struct dd_queue q;
    dd_queue_init(&q, 100, 100, DD_FULL_REFUSE);
    struct dd_item big = {mk_batch(), 500, 1};
    ASSERT_EQ_INT(dd_queue_push(&q, &big, on_drop, NULL), 0); /* empty queue: accepted */
    struct dd_item small = {mk_batch(), 1, 1};
    ASSERT_EQ_INT(dd_queue_push(&q, &small, on_drop, NULL), SP_EFULL);
    dd_req_free(small.req);
    struct dd_item out;
    ASSERT(dd_queue_pop(&q, &out));
    ASSERT_EQ_INT(out.bytes, 500);
    dd_req_free(out.req);
    struct dd_item a = {mk_batch(), 60, 1}, b = {mk_batch(), 50, 1};
    ASSERT_EQ_INT(dd_queue_push(&q, &a, on_drop, NULL), 0);
    ASSERT_EQ_INT(dd_queue_push(&q, &b, on_drop, NULL), SP_EFULL);
    dd_req_free(b.req);
    while (dd_queue_pop(&q, &out))
        dd_req_free(out.req);
    dd_queue_free(&q);
}

static void test_queue_drop_oldest_keeps_order(void)
{
    struct dd_queue q;
    dd_queue_init(&q, 40, 1000, DD_FULL_DROP_OLDEST);
    dropped_n = 0;
    dropped_bytes = 0;
    /* 100 pushes through a 40-slot ring: the ring grows, wraps, drops. */
    for (size_t i = 0; i < 100; i++) {
        struct dd_item it = {mk_batch(), 10, i};
        ASSERT_EQ_INT(dd_queue_push(&q, &it, on_drop, NULL), 0);
    }
    ASSERT_EQ_INT(q.len, 40);
    ASSERT_EQ_INT(dropped_n, 60);
    struct dd_item out;
    size_t expect = 60;
    while (dd_queue_pop(&q, &out)) {
        ASSERT_EQ_INT(out.count, expect);
        expect++;
        dd_req_free(out.req);
    }
    /* Bytes: a 300-byte item makes room by dropping the oldest. */
    for (size_t i = 0; i < 10; i++) {
        struct dd_item it = {mk_batch(), 100, i};
        ASSERT_EQ_INT(dd_queue_push(&q, &it, on_drop, NULL), 0);
    }
    dropped_n = 0;
    struct dd_item big = {mk_batch(), 300, 99};
    ASSERT_EQ_INT(dd_queue_push(&q, &big, on_drop, NULL), 0);
    ASSERT_EQ_INT(dropped_n, 3);
    ASSERT(q.bytes <= 1000);
    while (dd_queue_pop(&q, &out))
        dd_req_free(out.req);
    dd_queue_free(&q);
}

static void test_queue_disabled_refuses(void)
{
    struct dd_queue q;
    dd_queue_init(&q, 0, 1000, DD_FULL_DROP_OLDEST);
    struct dd_item it = {mk_batch(), 1, 1};
    ASSERT_EQ_INT(dd_queue_push(&q, &it, on_drop, NULL), SP_EFULL);
    dd_req_free(it.req);
    dd_queue_free(&q);
}

static void test_classify(void)
{
    ASSERT_EQ_INT(dd_classify(200), DD_SENT);
    ASSERT_EQ_INT(dd_classify(202), DD_SENT);
    ASSERT_EQ_INT(dd_classify(0), DD_RETRY);
    ASSERT_EQ_INT(dd_classify(408), DD_RETRY);
    ASSERT_EQ_INT(dd_classify(429), DD_RETRY);
    ASSERT_EQ_INT(dd_classify(500), DD_RETRY);
    ASSERT_EQ_INT(dd_classify(503), DD_RETRY);
    ASSERT_EQ_INT(dd_classify(400), DD_PERMANENT);
    ASSERT_EQ_INT(dd_classify(403), DD_PERMANENT);
    ASSERT_EQ_INT(dd_classify(404), DD_PERMANENT);
    ASSERT_EQ_INT(dd_classify(413), DD_PERMANENT);
    ASSERT_EQ_INT(dd_classify(301), DD_PERMANENT);
}

static void test_backoff(void)
{
    struct dd_retry_conf rc = {true, 5000, 30000, 300000};
    /* rnd 0.5 = no jitter: x1.5 per retry up to max_interval */
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, 0.5, -1), 5000);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 2, 0.5, -1), 7500);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 3, 0.5, -1), 11250);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 10, 0.5, -1), 30000);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1000, 0.5, -1), 30000);
    /* jitter +-50%, held inside [initial_interval, max_interval] */
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, 0.0, -1), 5000);
    ASSERT(dd_backoff_ms(&rc, 1, 0.999, -1) < 7500);
    ASSERT(dd_backoff_ms(&rc, 1, 0.999, -1) > 7400);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 3, 0.0, -1), 5625);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 10, 0.999, -1), 30000); /* never past max (was 45 s) */
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 10, 0.0, -1), 15000);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, 7.0, -1), dd_backoff_ms(&rc, 1, 0.999999, -1));
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, NAN, -1), 5000);
    /* Retry-After bounds the wait from below, never shortens it */
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, 0.5, 2000), 5000);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 5, 0.5, 0), 25312);
    ASSERT_EQ_INT(dd_backoff_ms(&rc, 1, 0.5, 120000), 120000);
}

/* The schedule over many draws: every wait inside [initial, max] and at
 * least Retry-After, the un-jittered backoff growing until the cap. */
static void test_backoff_schedule_bounds(void)
{
    struct dd_retry_conf rc = {true, 100, 2000, 0};
    srand(7);
    int64_t prev_mid = 0;
    for (unsigned attempt = 1; attempt <= 20; attempt++) {
        int64_t mid = dd_backoff_ms(&rc, attempt, 0.5, -1);
        ASSERT(mid >= prev_mid); /* grows, then stays at the cap */
        prev_mid = mid;
        for (int k = 0; k < 500; k++) {
            double rnd = (double)rand() / RAND_MAX;
            int64_t d = dd_backoff_ms(&rc, attempt, rnd, -1);
            ASSERT(d >= 100 && d <= 2000);
            ASSERT(d >= mid / 2 && d <= mid + mid / 2 + 1);
            int64_t ra = dd_backoff_ms(&rc, attempt, rnd, 0);
            ASSERT_EQ_INT(ra, d); /* Retry-After: 0 changes nothing */
            ASSERT(dd_backoff_ms(&rc, attempt, rnd, 5000) == 5000);
        }
    }
    ASSERT_EQ_INT(prev_mid, 2000);
}

static void test_trim_key(void)
{
    char *k;
    ASSERT_EQ_STR((k = dd_trim_key("  abc123\n")), "abc123");
    free(k);
    ASSERT_EQ_STR((k = dd_trim_key("\"abc123\"")), "abc123");
    free(k);
    ASSERT_EQ_STR((k = dd_trim_key(" ' abc123 '\t")), "abc123");
    free(k);
    ASSERT_EQ_STR((k = dd_trim_key("\"abc'")), "\"abc'");
    free(k);
    ASSERT_EQ_STR((k = dd_trim_key("\"\"")), "");
    free(k);
    ASSERT_EQ_STR((k = dd_trim_key(NULL)), "");
    free(k);
}

static void base_conf(struct dd_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->api.site = "datadoghq.com";
    c->timeout_ms = 10000;
    c->retry = (struct dd_retry_conf){true, 5000, 30000, 300000};
    c->queue = (struct dd_queue_conf){true, 1000, 64u << 20, 10, "refuse"};
}

#define KEY "0123456789abcdef0123456789abcdef"

static void test_settings_agentless(void)
{
    struct dd_conf c;
    base_conf(&c);
    c.api.key = " \"" KEY "\"\n";
    c.api.site = "datadoghq.eu";
    struct dd_settings s;
    struct sp_err err = {0};
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    ASSERT(!s.agent_mode);
    ASSERT_EQ_STR(s.api_key, KEY);
    ASSERT_EQ_STR(s.key_hint, "...cdef");
    ASSERT_EQ_STR(s.traces_url, "https://trace.agent.datadoghq.eu/api/v0.2/traces");
    ASSERT_EQ_STR(s.profiles_url, "https://intake.profile.datadoghq.eu/api/v2/profile");
    dd_settings_free(&s);

    c.traces.endpoint = "http://127.0.0.1:9/";
    c.profiles.endpoint = "http://127.0.0.1:10";
    char *tags[] = {"team:a", "region:eu"};
    c.tags.v = tags;
    c.tags.n = 2;
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    ASSERT_EQ_STR(s.traces_url, "http://127.0.0.1:9/api/v0.2/traces");
    ASSERT_EQ_STR(s.profiles_url, "http://127.0.0.1:10/api/v2/profile");
    ASSERT_EQ_STR(s.tags[1], "region:eu");
    ASSERT(s.tags[2] == NULL);
    dd_settings_free(&s);
}

static void test_settings_errors_never_show_the_key(void)
{
    struct dd_conf c;
    base_conf(&c);
    struct dd_settings s;
    struct sp_err err = {0};
    c.api.key = "  ";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "api.key");

    c.api.key = KEY;
    c.api.site = "https://datadoghq.com";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "api.site");
    ASSERT(!strstr(err.msg, KEY));

    c.api.site = "datadoghq.com";
    c.api.key = "abc def0123456789";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "api.key");
    ASSERT(!strstr(err.msg, "def0123456789"));

    c.api.key = KEY;
    c.traces.endpoint = "ftp://x";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "traces.endpoint");
    c.traces.endpoint = NULL;

    char *bad[] = {"novalue"};
    c.tags.v = bad;
    c.tags.n = 1;
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "novalue");
    c.tags.n = 0;

    c.queue.on_full = "block";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "sending_queue.on_full");
    c.queue.on_full = "drop_oldest";
    c.queue.num_consumers = 0;
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "num_consumers");
    c.queue.num_consumers = 2;
    c.retry.max_interval_ms = 1000;
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "max_interval");
    c.retry.max_interval_ms = 30000;
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    dd_settings_free(&s);
}

static void test_settings_agent_mode(void)
{
    struct dd_conf c;
    base_conf(&c);
    struct dd_settings s;
    struct sp_err err = {0};
    c.agent.endpoint = "10.1.2.3:8126";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0); /* no key needed */
    ASSERT(s.agent_mode);
    ASSERT(s.api_key == NULL);
    ASSERT_EQ_STR(s.traces_url, "http://10.1.2.3:8126/v0.4/traces");
    ASSERT_EQ_STR(s.profiles_url, "http://10.1.2.3:8126/profiling/v1/input");
    dd_settings_free(&s);
    c.agent.endpoint = "http://agent:8126/";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    ASSERT_EQ_STR(s.traces_url, "http://agent:8126/v0.4/traces");
    dd_settings_free(&s);
    c.agent.endpoint = "unix:///var/run/datadog/apm.socket";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "agent.endpoint");
}

static size_t rates(const char *s, double *def)
{
    return dd_parse_rate_by_service((const uint8_t *)s, strlen(s), def);
}

static void test_rate_by_service(void)
{
    double def = -1;
    ASSERT_EQ_INT(rates("{\"rate_by_service\":{\"service:,env:\":1,\"service:a,env:b\":0.25}}", &def),
                  2);
    ASSERT(fabs(def - 1.0) < 1e-9);
    def = -1;
    ASSERT_EQ_INT(rates("{\"rate_by_service\":{\"service:,env:\":0.5}}", &def), 1);
    ASSERT(fabs(def - 0.5) < 1e-9);
    def = -1;
    ASSERT_EQ_INT(rates("{}", &def), 0);
    ASSERT_EQ_INT(rates("OK", &def), 0);
    ASSERT_EQ_INT(rates("", &def), 0);
    ASSERT_EQ_INT(rates("{\"rate_by_service\":[1,2]}", &def), 0);
    ASSERT_EQ_INT(rates("{\"rate_by_service\":{\"a\":\"x\",\"b\":7,\"c\":-1,\"d\":0.1}}", &def), 1);
    ASSERT_EQ_INT(rates("{\"rate_by_service\":{\"a\":0.1", &def), 0); /* truncated */
    ASSERT_EQ_INT(rates("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", &def), 0);
    ASSERT(def == -1);
    ASSERT_EQ_INT(dd_parse_rate_by_service(NULL, 0, NULL), 0);
}

/* ---- request builders, from the settings alone ---- */

/* A mapped payload by hand: one tracer payload of `lang`, one chunk, one
 * span. */
struct one_payload {
    Datadog__Trace__AgentPayload ap;
    Datadog__Trace__TracerPayload tp, *tps[1];
    Datadog__Trace__TraceChunk ch, *chs[1];
    Datadog__Trace__Span sp, *sps[1];
};

static void one_payload(struct one_payload *o, const char *lang, uint64_t span_id)
{
    datadog__trace__agent_payload__init(&o->ap);
    datadog__trace__tracer_payload__init(&o->tp);
    datadog__trace__trace_chunk__init(&o->ch);
    datadog__trace__span__init(&o->sp);
    o->sp.service = "svc";
    o->sp.name = "op";
    o->sp.resource = "GET /x";
    o->sp.spanid = span_id;
    o->sp.traceid = 7;
    o->sps[0] = &o->sp;
    o->ch.priority = 1;
    o->ch.n_spans = 1;
    o->ch.spans = o->sps;
    o->chs[0] = &o->ch;
    o->tp.languagename = (char *)lang;
    o->tp.tracerversion = "1.0";
    o->tp.hostname = "h1";
    o->tp.n_chunks = 1;
    o->tp.chunks = o->chs;
    o->tps[0] = &o->tp;
    o->ap.hostname = "h1";
    o->ap.env = "test";
    o->ap.agentversion = "spanprof/test";
    o->ap.n_tracerpayloads = 1;
    o->ap.tracerpayloads = o->tps;
}

/* Two mapped payloads through one open payload: agentless gives the packed
 * AgentPayload of both, compressed with `compression` (gzip by default,
 * zstd when asked: both decode to protobuf-c's bytes, with the matching
 * Content-Encoding); agent mode splits by language and writes the v0.4
 * headers. No exporter, no loop. */
static void test_builders_from_settings(void)
{
    struct dd_conf c;
    base_conf(&c);
    c.api.key = "0123456789abcdef0123456789abcdef";
    struct dd_settings s;
    struct sp_err err = {0};
    struct one_payload a, b;
    struct sp_buf ka = {0}, kb = {0}, bytes = {0};
    struct dd_open o;
    size_t traces = 0;
    struct dd_req *r = NULL;
    static const char *const names[] = {NULL, "gzip", "zstd"};
    static const enum sp_compression want_codec[] = {SP_COMPRESSION_GZIP, SP_COMPRESSION_GZIP,
                                                     SP_COMPRESSION_ZSTD};
    for (size_t round = 0; round < 3; round++) {
    c.compression = (char *)names[round];
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    ASSERT(s.compressor);
    ASSERT_EQ_INT(s.compressor->codec, want_codec[round]);
    one_payload(&a, "go", 1);
    one_payload(&b, "nodejs", 2);
    ka.len = kb.len = bytes.len = 0;
    ASSERT_EQ_INT(dd_trace_dest_key(&s, &a.ap, &a.tp, &ka), 0);
    ASSERT_EQ_INT(dd_trace_dest_key(&s, &b.ap, &b.tp, &kb), 0);
    ASSERT(ka.len == kb.len && memcmp(ka.data, kb.data, ka.len) == 0); /* same frame */
    memset(&o, 0, sizeof(o));
    ASSERT_EQ_INT(dd_open_init(&s, &o, &a.ap, &a.tp, &ka, 0, &err), 0);
    ASSERT_EQ_INT(dd_open_encode(&s, &o, &a.ap, &a.tp, &bytes, &traces, &err), 0);
    ASSERT_EQ_INT(dd_open_append(&o, &a.tp, &bytes, 1, traces), 0);
    bytes.len = 0;
    ASSERT_EQ_INT(dd_open_encode(&s, &o, &b.ap, &b.tp, &bytes, &traces, &err), 0);
    ASSERT_EQ_INT(dd_open_append(&o, &b.tp, &bytes, 1, traces), 0);
    ASSERT_EQ_INT(dd_open_seal(&s, &o, &r, NULL, &err), 0);
    ASSERT(r);
    ASSERT_EQ_INT(r->count, 2);
    ASSERT_EQ_STR(r->method, "POST");
    ASSERT_EQ_INT(r->encoding, want_codec[round]);
    ASSERT_EQ_INT(sp_compression_sniff(r->body.data, r->body.len), want_codec[round]);
    char want_ce[64];
    snprintf(want_ce, sizeof(want_ce), "Content-Encoding: %s",
             sp_compression_name(want_codec[round]));
    bool langs = false, key = false, ce = false;
    for (size_t i = 0; i < r->n_headers; i++) {
        langs |= strcmp(r->headers[i], "X-Datadog-Reported-Languages: go|nodejs") == 0;
        key |= strncasecmp(r->headers[i], "DD-Api-Key", 10) == 0;
        ce |= strcmp(r->headers[i], want_ce) == 0;
    }
    ASSERT(langs);
    ASSERT(ce);
    ASSERT(!key); /* the sender adds it per call */
    Datadog__Trace__AgentPayload both = a.ap;
    Datadog__Trace__TracerPayload *tps[2] = {&a.tp, &b.tp};
    both.n_tracerpayloads = 2;
    both.tracerpayloads = tps;
    size_t want_len = datadog__trace__agent_payload__get_packed_size(&both);
    uint8_t *want = malloc(want_len);
    datadog__trace__agent_payload__pack(&both, want);
    struct sp_arena *arena = sp_arena_create(0);
    const uint8_t *raw;
    size_t rlen;
    ASSERT_EQ_INT(sp_decompress(want_codec[round], r->body.data, r->body.len, 1 << 20, arena,
                                &raw, &rlen, &err),
                  0);
    ASSERT_EQ_INT(rlen, want_len);
    ASSERT(memcmp(raw, want, want_len) == 0);
    free(want);
    sp_arena_destroy(arena);
    dd_req_free(r);
    dd_settings_free(&s);
    }

    /* compression: only zstd and gzip */
    c.compression = "br";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "compression");
    ASSERT_CONTAINS(err.msg, "'br' is not one of zstd, gzip");
    c.compression = NULL;

    /* agent mode: one destination per language, v0.4 headers */
    c.agent.endpoint = "127.0.0.1:8126";
    ASSERT_EQ_INT(dd_settings_init(&c, NULL, &s, &err), 0);
    ka.len = kb.len = 0;
    ASSERT_EQ_INT(dd_trace_dest_key(&s, &a.ap, &a.tp, &ka), 0);
    ASSERT_EQ_INT(dd_trace_dest_key(&s, &b.ap, &b.tp, &kb), 0);
    ASSERT(ka.len != kb.len || memcmp(ka.data, kb.data, ka.len) != 0);
    memset(&o, 0, sizeof(o));
    ASSERT_EQ_INT(dd_open_init(&s, &o, &a.ap, &a.tp, &ka, 0, &err), 0);
    bytes.len = 0;
    traces = 0;
    ASSERT_EQ_INT(dd_open_encode(&s, &o, &a.ap, &a.tp, &bytes, &traces, &err), 0);
    ASSERT_EQ_INT(traces, 1);
    ASSERT_EQ_INT(dd_open_append(&o, &a.tp, &bytes, 1, traces), 0);
    ASSERT(s.compressor == NULL); /* v0.4 bodies go uncompressed */
    ASSERT_EQ_INT(dd_open_seal(&s, &o, &r, NULL, &err), 0);
    ASSERT_EQ_STR(r->method, "PUT");
    ASSERT_EQ_INT(r->encoding, SP_COMPRESSION_NONE);
    ASSERT(r->rates_reply);
    bool lang = false, count = false;
    for (size_t i = 0; i < r->n_headers; i++) {
        lang |= strcmp(r->headers[i], "Datadog-Meta-Lang: go") == 0;
        count |= strcmp(r->headers[i], "X-Datadog-Trace-Count: 1") == 0;
    }
    ASSERT(lang && count);
    ASSERT_EQ_INT(r->body.data[0], 0x91); /* a msgpack array of one trace */
    ASSERT_EQ_INT(r->body.data[1], 0x91); /* of one span */
    dd_req_free(r);
    dd_settings_free(&s);
    sp_buf_free(&ka);
    sp_buf_free(&kb);
    sp_buf_free(&bytes);
}

/* ---- storage: round trip, every kind of bad file, bounds ---- */

static int bad_n;
static char bad_last[256];
static void on_bad(void *ud, const char *name, const char *why)
{
    (void)ud;
    bad_n++;
    snprintf(bad_last, sizeof(bad_last), "%s: %s", name, why);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ASSERT(f);
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_store_round_trip_and_bad_files(void)
{
    char dir[] = "/tmp/spanprof-store-XXXXXX";
    ASSERT(mkdtemp(dir));
    struct dd_store st;
    struct sp_err err = {0};
    ASSERT_EQ_INT(dd_store_open(&st, dir, 1 << 20, false, &err), 0);
    ASSERT_EQ_INT(dd_store_backlog(&st), 0);
    struct dd_req *r = dd_req_new(SP_SIGNAL_TRACES, "POST");
    ASSERT_EQ_INT(dd_req_add_header(r, "Content-Type: application/x-protobuf"), 0);
    ASSERT_EQ_INT(sp_buf_append(&r->body, "\x1f\x8b body bytes", 13), 0);
    r->count = 42;
    ASSERT_EQ_INT(dd_store_write(&st, r, &err), 0);
    ASSERT(r->file);
    char first[512];
    snprintf(first, sizeof(first), "%s", r->file);
    size_t flen = 0;
    uint8_t *copy = sp_test_read_file(first, &flen);
    ASSERT(copy && flen > 13);
    dd_req_free(r);
    /* bounds: a file that would pass max_disk_bytes is refused */
    struct dd_req *big = dd_req_new(SP_SIGNAL_PROFILES, "POST");
    ASSERT_EQ_INT(sp_buf_reserve(&big->body, 2 << 20), 0);
    big->body.len = 2 << 20;
    memset(big->body.data, 7, big->body.len);
    ASSERT_EQ_INT(dd_store_write(&st, big, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "max_disk_bytes");
    dd_req_free(big);
    dd_store_close(&st);

    /* bad files next to the good one, named to sort first */
    write_file(dir, "0000000000001-000001.ddq", "garbage!garbage!", 16);
    write_file(dir, "0000000000001-000002.ddq", copy, flen / 2);
    uint8_t *flip = malloc(flen);
    memcpy(flip, copy, flen);
    flip[flen - 6] ^= 0x55; /* a body byte */
    write_file(dir, "0000000000001-000003.ddq", flip, flen);
    write_file(dir, "0000000000001-000004.ddq.tmp", copy, flen);
    write_file(dir, "0000000000001-000005.ddq", "", 0);
    free(flip);

    /* agent mode reading an agentless file: moved aside too */
    ASSERT_EQ_INT(dd_store_open(&st, dir, 1 << 20, true, &err), 0);
    ASSERT_EQ_INT(dd_store_backlog(&st), 6);
    bad_n = 0;
    ASSERT(dd_store_next(&st, on_bad, NULL) == NULL);
    ASSERT_EQ_INT(bad_n, 6);
    ASSERT_CONTAINS(bad_last, "agentless");
    dd_store_close(&st);
    char p[600];
    snprintf(p, sizeof(p), "%s.bad", first);
    ASSERT_EQ_INT(rename(p, first), 0); /* give the good one back */

    ASSERT_EQ_INT(dd_store_open(&st, dir, 1 << 20, false, &err), 0);
    ASSERT_EQ_INT(dd_store_backlog(&st), 1);
    bad_n = 0;
    struct dd_req *back = dd_store_next(&st, on_bad, NULL);
    ASSERT(back);
    ASSERT_EQ_INT(bad_n, 0);
    ASSERT_EQ_INT(back->signal, SP_SIGNAL_TRACES);
    ASSERT_EQ_INT(back->count, 42);
    ASSERT_EQ_STR(back->method, "POST");
    ASSERT_EQ_INT(back->n_headers, 1);
    ASSERT_EQ_STR(back->headers[0], "Content-Type: application/x-protobuf");
    ASSERT_EQ_INT(back->body.len, 13);
    ASSERT(memcmp(back->body.data, "\x1f\x8b body bytes", 13) == 0);
    ASSERT(dd_store_next(&st, on_bad, NULL) == NULL);
    dd_store_remove(&st, back);
    ASSERT(access(first, F_OK) != 0);
    dd_req_free(back);
    dd_store_close(&st);
    free(copy);

    /* the bad ones were moved aside, each with its reason */
    const char *names[] = {"0000000000001-000001.ddq.bad", "0000000000001-000002.ddq.bad",
                           "0000000000001-000003.ddq.bad", "0000000000001-000004.ddq.tmp.bad",
                           "0000000000001-000005.ddq.bad"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        ASSERT(access(p, F_OK) == 0);
        unlink(p);
    }
    rmdir(dir);
}

/* One stored file per encoding, read back with it; a version 1 file (the
 * format before the encoding byte) still restores, its encoding taken from
 * its Content-Encoding header; files whose encoding byte, header and body
 * disagree are refused with the reason. */
static void enc_req(struct dd_req **out, enum sp_compression c, const char *body, size_t len)
{
    struct dd_req *r = *out = dd_req_new(SP_SIGNAL_TRACES, "POST");
    struct sp_err err = {0};
    ASSERT_EQ_INT(dd_req_add_header(r, "Content-Type: application/x-protobuf"), 0);
    if (c != SP_COMPRESSION_NONE)
        ASSERT_EQ_INT(dd_req_add_header(r, "Content-Encoding: %s", sp_compression_name(c)), 0);
    ASSERT_EQ_INT(sp_compress(c, 1, (const uint8_t *)body, len, &r->body, &err), 0);
    r->encoding = c;
    r->count = 7;
}

static void test_store_keeps_the_encoding(void)
{
    static const char body[] = "an AgentPayload, an AgentPayload, an AgentPayload";
    const enum sp_compression cs[] = {SP_COMPRESSION_GZIP, SP_COMPRESSION_ZSTD,
                                      SP_COMPRESSION_NONE};
    for (size_t i = 0; i < 3; i++) {
        struct dd_req *r;
        enc_req(&r, cs[i], body, sizeof(body));
        struct sp_buf f = {0};
        ASSERT_EQ_INT(dd_store_encode(r, false, &f), 0);
        ASSERT_EQ_INT(f.data[4], 2); /* version 2 */
        const char *why = NULL;
        struct dd_req *back = dd_store_parse(f.data, f.len, false, &why);
        ASSERT(back);
        ASSERT_EQ_INT(back->encoding, cs[i]);
        ASSERT_EQ_INT(back->body.len, r->body.len);
        ASSERT(memcmp(back->body.data, r->body.data, r->body.len) == 0);
        struct sp_arena *a = sp_arena_create(0);
        const uint8_t *raw;
        size_t rl;
        struct sp_err err = {0};
        ASSERT_EQ_INT(sp_decompress(back->encoding, back->body.data, back->body.len, 1 << 20, a,
                                    &raw, &rl, &err),
                      0);
        ASSERT_EQ_INT(rl, sizeof(body));
        ASSERT(memcmp(raw, body, rl) == 0);
        sp_arena_destroy(a);
        dd_req_free(back);

        /* the same request as a version 1 file: no encoding byte */
        struct sp_buf v1 = {0};
        ASSERT_EQ_INT(sp_buf_append(&v1, "SPDQ\x01", 5), 0);
        ASSERT_EQ_INT(sp_buf_append(&v1, f.data + 5, 3), 0);
        ASSERT_EQ_INT(sp_buf_append(&v1, f.data + 9, f.len - 9 - 4), 0);
        uint32_t crc = (uint32_t)libdeflate_crc32(0, v1.data, v1.len);
        uint8_t cb[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                         (uint8_t)(crc >> 24)};
        ASSERT_EQ_INT(sp_buf_append(&v1, cb, 4), 0);
        back = dd_store_parse(v1.data, v1.len, false, &why);
        ASSERT(back);
        ASSERT_EQ_INT(back->encoding, cs[i]);
        ASSERT_EQ_INT(back->count, 7);
        dd_req_free(back);
        sp_buf_free(&v1);
        sp_buf_free(&f);
        dd_req_free(r);
    }

    /* disagreements: each refused, with its reason */
    struct dd_req *r;
    enc_req(&r, SP_COMPRESSION_GZIP, body, sizeof(body));
    struct sp_buf f = {0};
    const char *why = NULL;
    r->encoding = SP_COMPRESSION_ZSTD; /* byte says zstd, header says gzip */
    ASSERT_EQ_INT(dd_store_encode(r, false, &f), 0);
    ASSERT(dd_store_parse(f.data, f.len, false, &why) == NULL);
    ASSERT_CONTAINS(why, "disagree");
    dd_req_free(r);
    f.len = 0;
    enc_req(&r, SP_COMPRESSION_GZIP, body, sizeof(body));
    r->body.data[0] = 0x28; /* a body that is not gzip */
    ASSERT_EQ_INT(dd_store_encode(r, false, &f), 0);
    ASSERT(dd_store_parse(f.data, f.len, false, &why) == NULL);
    ASSERT_CONTAINS(why, "body is not gzip");
    dd_req_free(r);
    sp_buf_free(&f);
}

static void test_store_unusable_dir(void)
{
    struct dd_store st;
    struct sp_err err = {0};
    ASSERT_EQ_INT(dd_store_open(&st, "/dev/null/queue", 1 << 20, false, &err), SP_EIO);
    ASSERT_CONTAINS(err.msg, "sending_queue.storage: cannot create '/dev/null/queue'");
}

int main(void)
{
    RUN(test_queue_refuse_by_items);
    RUN(test_queue_refuse_by_bytes_but_oversized_alone_goes);
    RUN(test_queue_drop_oldest_keeps_order);
    RUN(test_queue_disabled_refuses);
    RUN(test_classify);
    RUN(test_backoff);
    RUN(test_backoff_schedule_bounds);
    RUN(test_trim_key);
    RUN(test_settings_agentless);
    RUN(test_settings_errors_never_show_the_key);
    RUN(test_settings_agent_mode);
    RUN(test_rate_by_service);
    RUN(test_store_keeps_the_encoding);
    RUN(test_builders_from_settings);
    RUN(test_store_round_trip_and_bad_files);
    RUN(test_store_unusable_dir);
    return sp_test_summary();
}
