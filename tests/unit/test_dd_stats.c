/* Unit tests of model/dd_stats.c with a controlled clock: eligibility as
 * the Agent decides it, aggregation keys and per-key figures, bucket
 * alignment and flush delay, late spans, a bucket sent once, the key
 * bound, peer tags, gRPC codes, payload splitting. Payloads are gunzipped
 * and decoded with msgpack-c, sketches with protoc-c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dd_peer_ip.h"
#include "dd_stats.h"
#include "ddsketch.pb-c.h"
#include "sp_arena.h"
#include "sp_compress.h"
#include "sp_test.h"

#define SEC 1000000000LL
#define T0 (1700000000LL * SEC) /* a multiple of 10 s */

/* ---- building spans ---- */

struct tspan {
    Datadog__Trace__Span s;
    Datadog__Trace__Span__MetaEntry me[8], *mp[8];
    Datadog__Trace__Span__MetricsEntry xe[8], *xp[8];
};

static void ts_init(struct tspan *t, const char *service, const char *name, const char *resource,
                    int64_t start, int64_t dur)
{
    memset(t, 0, sizeof(*t));
    datadog__trace__span__init(&t->s);
    t->s.service = (char *)service;
    t->s.name = (char *)name;
    t->s.resource = (char *)resource;
    t->s.type = (char *)"web";
    t->s.start = start;
    t->s.duration = dur;
    t->s.parentid = 7;
    t->s.meta = t->mp;
    t->s.metrics = t->xp;
}

static void ts_meta(struct tspan *t, const char *k, const char *v)
{
    size_t i = t->s.n_meta++;
    datadog__trace__span__meta_entry__init(&t->me[i]);
    t->me[i].key = (char *)k;
    t->me[i].value = (char *)v;
    t->mp[i] = &t->me[i];
}

static void ts_metric(struct tspan *t, const char *k, double v)
{
    size_t i = t->s.n_metrics++;
    datadog__trace__span__metrics_entry__init(&t->xe[i]);
    t->xe[i].key = (char *)k;
    t->xe[i].value = v;
    t->xp[i] = &t->xe[i];
}

static struct sp_dd_stats *mk(size_t max_keys, int64_t now)
{
    struct sp_dd_stats_conf conf = {
        .max_keys = max_keys,
        .by_span_kind = true,
        .peer_tags = true,
        .agent_hostname = "sp-host",
        .agent_env = "prod",
        .agent_version = "spanprof/test",
    };
    return sp_dd_stats_create(&conf, now);
}

static const struct sp_dd_stats_pkey PK = {.env = "staging", .hostname = "h1", .version = "1.2"};

/* ---- decoding payloads ---- */

struct decoded {
    msgpack_unpacked u;
    struct sp_arena *a;
};

static const msgpack_object *get(const msgpack_object *m, const char *k)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *key = &m->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(k) &&
            memcmp(key->via.str.ptr, k, key->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static uint64_t u64(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : UINT64_MAX;
}

static const msgpack_object *decode(struct decoded *d, const struct sp_dd_stats_payload *p)
{
    d->a = sp_arena_create(0);
    const uint8_t *raw;
    size_t raw_len;
    struct sp_err err = {0};
    if (sp_decompress(SP_COMPRESSION_GZIP, p->body.data, p->body.len, 64 << 20, d->a, &raw,
                      &raw_len, &err))
        return NULL;
    msgpack_unpacked_init(&d->u);
    size_t off = 0;
    if (msgpack_unpack_next(&d->u, (const char *)raw, raw_len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != raw_len)
        return NULL;
    return &d->u.data;
}

static void decoded_free(struct decoded *d)
{
    msgpack_unpacked_destroy(&d->u);
    sp_arena_destroy(d->a);
}

/* The count in a sketch (decoded with the DDSketch protobuf). */
static double sketch_count(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_BIN)
        return -1;
    Ddsketch__DDSketch *s =
        ddsketch__ddsketch__unpack(NULL, o->via.bin.size, (const uint8_t *)o->via.bin.ptr);
    if (!s)
        return -1;
    double n = s->zerocount;
    for (size_t i = 0; s->positivevalues && i < s->positivevalues->n_contiguousbincounts; i++)
        n += s->positivevalues->contiguousbincounts[i];
    ddsketch__ddsketch__free_unpacked(s, NULL);
    return n;
}

/* ---- tests ---- */

static void test_eligibility(void)
{
    struct sp_dd_stats *c = mk(100, T0);
    struct tspan t;
    ts_init(&t, "svc", "op", "res", T0 + SEC, SEC);
    ts_meta(&t, "span.kind", "internal");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 0); /* internal, not top-level */
    ts_metric(&t, "_dd.measured", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    ts_init(&t, "svc", "op", "res", T0 + SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    ts_metric(&t, "_dd.partial_version", 0);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 0); /* partial snapshot */
    ts_init(&t, "svc", "op", "res", T0 + SEC, SEC);
    ts_metric(&t, "_top_level", 0);
    ts_metric(&t, "_dd.top_level", 1); /* a tracer's top-level flag */
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    const char *kinds[] = {"server", "client", "producer", "CONSUMER"};
    for (int i = 0; i < 4; i++) {
        ts_init(&t, "svc", "op", "res", T0 + SEC, SEC);
        ts_meta(&t, "span.kind", kinds[i]);
        ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    }
    sp_dd_stats_destroy(c);

    struct sp_dd_stats_conf conf = {.max_keys = 10, .by_span_kind = false};
    c = sp_dd_stats_create(&conf, T0);
    ts_init(&t, "svc", "op", "res", T0 + SEC, SEC);
    ts_meta(&t, "span.kind", "client");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 0);
    sp_dd_stats_destroy(c);
}

static void test_figures_and_bucket(void)
{
    struct sp_dd_stats *c = mk(100, T0);
    struct tspan t;
    /* three spans of one key ending in [T0+10s, T0+20s): two ok, one error */
    int64_t durs[3] = {2 * SEC, 3 * SEC, 500000000};
    for (int i = 0; i < 3; i++) {
        ts_init(&t, "svc", "GET", "GET /users", T0 + 10 * SEC, durs[i]);
        ts_metric(&t, "_top_level", 1);
        ts_meta(&t, "span.kind", "server");
        ts_metric(&t, "http.status_code", 200);
        t.s.parentid = 0;
        t.s.error = i == 2;
        ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, "synthetics-browser", &t.s), 1);
    }
    /* a non-top-level client span of the same name: another key */
    ts_init(&t, "svc", "GET", "GET /users", T0 + 11 * SEC, SEC);
    ts_meta(&t, "span.kind", "client");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);

    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    /* the bucket [T0+10, T0+20) waits until now >= its start + 20 s */
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 29 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 0);
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 30 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    ASSERT_EQ_U64(p[0].entries, 2);
    struct decoded d;
    const msgpack_object *root = decode(&d, &p[0]);
    ASSERT(root);
    ASSERT(str_is(get(root, "AgentHostname"), "sp-host"));
    ASSERT(str_is(get(root, "AgentEnv"), "prod"));
    ASSERT(str_is(get(root, "AgentVersion"), "spanprof/test"));
    ASSERT(get(root, "ClientComputed")->type == MSGPACK_OBJECT_BOOLEAN);
    ASSERT(!get(root, "SplitPayload")->via.boolean);
    const msgpack_object *cps = get(root, "Stats");
    ASSERT(cps && cps->via.array.size == 1);
    const msgpack_object *cp = &cps->via.array.ptr[0];
    ASSERT(str_is(get(cp, "Env"), "staging"));
    ASSERT(str_is(get(cp, "Hostname"), "h1"));
    ASSERT(str_is(get(cp, "Version"), "1.2"));
    const msgpack_object *b = &get(cp, "Stats")->via.array.ptr[0];
    ASSERT_EQ_U64(u64(get(b, "Start")), (uint64_t)(T0 + 10 * SEC));
    ASSERT_EQ_U64(u64(get(b, "Duration")), (uint64_t)(10 * SEC));
    const msgpack_object *gs = get(b, "Stats");
    ASSERT(gs->via.array.size == 2);
    int seen = 0;
    for (uint32_t i = 0; i < 2; i++) {
        const msgpack_object *g = &gs->via.array.ptr[i];
        ASSERT(str_is(get(g, "Service"), "svc"));
        ASSERT(str_is(get(g, "Resource"), "GET /users"));
        ASSERT(str_is(get(g, "Type"), "web"));
        if (str_is(get(g, "SpanKind"), "server")) {
            seen |= 1;
            ASSERT_EQ_U64(u64(get(g, "Hits")), 3);
            ASSERT_EQ_U64(u64(get(g, "Errors")), 1);
            ASSERT_EQ_U64(u64(get(g, "TopLevelHits")), 3);
            ASSERT_EQ_U64(u64(get(g, "Duration")), (uint64_t)(5 * SEC + 500000000));
            ASSERT_EQ_U64(u64(get(g, "HTTPStatusCode")), 200);
            ASSERT(get(g, "Synthetics")->via.boolean);
            ASSERT_EQ_INT(get(g, "IsTraceRoot")->via.i64, 1);
            ASSERT(sketch_count(get(g, "OkSummary")) == 2);
            ASSERT(sketch_count(get(g, "ErrorSummary")) == 1);
        } else {
            seen |= 2;
            ASSERT(str_is(get(g, "SpanKind"), "client"));
            ASSERT_EQ_U64(u64(get(g, "Hits")), 1);
            ASSERT_EQ_U64(u64(get(g, "TopLevelHits")), 0);
            ASSERT(!get(g, "Synthetics")->via.boolean);
            ASSERT_EQ_INT(get(g, "IsTraceRoot")->via.i64, 2);
        }
    }
    ASSERT_EQ_INT(seen, 3);
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);

    struct sp_dd_stats_counts k;
    sp_dd_stats_get_counts(c, &k);
    ASSERT_EQ_U64(k.keys_live, 0);
    ASSERT_EQ_U64(k.last_bucket_keys, 2);
    sp_dd_stats_destroy(c);
}

/* A late span lands in the oldest open bucket, never in one already sent. */
static void test_late_spans_and_sent_once(void)
{
    struct sp_dd_stats *c = mk(100, T0 + 5 * SEC);
    struct tspan t;
    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};

    /* before the concentrator started: goes to its first bucket, T0 */
    ts_init(&t, "svc", "op", "late-at-start", T0 - 100 * SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    /* on time in T0 */
    ts_init(&t, "svc", "op", "on-time", T0 + 1 * SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);

    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 20 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    struct decoded d;
    const msgpack_object *root = decode(&d, &p[0]);
    const msgpack_object *b = &get(&get(root, "Stats")->via.array.ptr[0], "Stats")->via.array.ptr[0];
    ASSERT_EQ_U64(u64(get(b, "Start")), (uint64_t)T0);
    ASSERT(get(b, "Stats")->via.array.size == 2);
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    p = NULL;
    n = 0;

    /* ends in T0 again (already sent): lands in T0+10 s, the oldest open */
    ts_init(&t, "svc", "op", "late", T0 + 2 * SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    /* in the future: its own bucket, kept until it is old enough */
    ts_init(&t, "svc", "op", "future", T0 + 60 * SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);

    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 30 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    root = decode(&d, &p[0]);
    const msgpack_object *bs = get(&get(root, "Stats")->via.array.ptr[0], "Stats");
    ASSERT(bs->via.array.size == 1);
    b = &bs->via.array.ptr[0];
    ASSERT_EQ_U64(u64(get(b, "Start")), (uint64_t)(T0 + 10 * SEC));
    const msgpack_object *g = &get(b, "Stats")->via.array.ptr[0];
    ASSERT(str_is(get(g, "Resource"), "late"));
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    p = NULL;
    n = 0;

    /* nothing more is due; then shutdown forces the future bucket out */
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 40 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 0);
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 41 * SEC, true, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    root = decode(&d, &p[0]);
    b = &get(&get(root, "Stats")->via.array.ptr[0], "Stats")->via.array.ptr[0];
    ASSERT_EQ_U64(u64(get(b, "Start")), (uint64_t)(T0 + 60 * SEC));
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    p = NULL;
    n = 0;
    /* after a forced flush, a span for T0+60 goes to a later bucket */
    ts_init(&t, "svc", "op", "after", T0 + 60 * SEC, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 42 * SEC, true, &p, &n, &err), 0);
    root = decode(&d, &p[0]);
    b = &get(&get(root, "Stats")->via.array.ptr[0], "Stats")->via.array.ptr[0];
    ASSERT(u64(get(b, "Start")) > (uint64_t)(T0 + 60 * SEC));
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    sp_dd_stats_destroy(c);
}

static void test_key_bound(void)
{
    struct sp_dd_stats *c = mk(2, T0);
    struct tspan t;
    const char *res[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        ts_init(&t, "svc", "op", res[i], T0, SEC);
        ts_metric(&t, "_top_level", 1);
        ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), i < 2 ? 1 : SP_EFULL);
    }
    /* an existing key still counts */
    ts_init(&t, "svc", "op", "a", T0, SEC);
    ts_metric(&t, "_top_level", 1);
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    struct sp_dd_stats_counts k;
    sp_dd_stats_get_counts(c, &k);
    ASSERT_EQ_U64(k.keys_live, 2);
    ASSERT_EQ_U64(k.spans_overflow, 1);
    ASSERT_EQ_U64(k.spans_counted, 3);
    ASSERT(k.bytes > 0);
    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0, true, &p, &n, &err), 0);
    sp_dd_stats_payloads_free(p, n);
    sp_dd_stats_get_counts(c, &k);
    ASSERT_EQ_U64(k.keys_live, 0);
    ASSERT_EQ_U64(k.bytes, 0);
    sp_dd_stats_destroy(c);
}

static void test_peer_tags_and_grpc(void)
{
    struct sp_dd_stats *c = mk(100, T0);
    struct tspan t;
    ts_init(&t, "svc", "pg.query", "SELECT", T0, SEC);
    ts_meta(&t, "span.kind", "client");
    ts_meta(&t, "peer.service", "users-db");
    ts_meta(&t, "db.system", "postgresql");
    ts_meta(&t, "http.method", "GET"); /* not a peer tag */
    ts_meta(&t, "grpc.status.code", "StatusCode.NOT_FOUND");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    ts_init(&t, "svc", "handler", "GET /", T0, SEC);
    ts_meta(&t, "span.kind", "server");
    ts_meta(&t, "peer.service", "ignored-on-server");
    ts_meta(&t, "rpc.grpc.status_code", "14");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    ts_init(&t, "other", "work", "job", T0, SEC);
    ts_metric(&t, "_dd.measured", 1);
    ts_meta(&t, "span.kind", "internal");
    ts_meta(&t, "_dd.base_service", "svc");
    ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);

    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0, true, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 1);
    struct decoded d;
    const msgpack_object *root = decode(&d, &p[0]);
    const msgpack_object *b = &get(&get(root, "Stats")->via.array.ptr[0], "Stats")->via.array.ptr[0];
    const msgpack_object *gs = get(b, "Stats");
    ASSERT(gs->via.array.size == 3);
    int seen = 0;
    for (uint32_t i = 0; i < 3; i++) {
        const msgpack_object *g = &gs->via.array.ptr[i];
        const msgpack_object *pt = get(g, "PeerTags");
        ASSERT(pt && pt->type == MSGPACK_OBJECT_ARRAY);
        if (str_is(get(g, "Name"), "pg.query")) {
            seen |= 1;
            ASSERT(pt->via.array.size == 2);
            ASSERT(str_is(&pt->via.array.ptr[0], "db.system:postgresql"));
            ASSERT(str_is(&pt->via.array.ptr[1], "peer.service:users-db"));
            ASSERT(str_is(get(g, "GRPCStatusCode"), "5"));
        } else if (str_is(get(g, "Name"), "handler")) {
            seen |= 2;
            ASSERT(pt->via.array.size == 0);
            ASSERT(str_is(get(g, "GRPCStatusCode"), "14"));
        } else {
            seen |= 4;
            ASSERT(pt->via.array.size == 1);
            ASSERT(str_is(&pt->via.array.ptr[0], "_dd.base_service:svc"));
            ASSERT(str_is(get(g, "GRPCStatusCode"), ""));
        }
    }
    ASSERT_EQ_INT(seen, 7);
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    sp_dd_stats_destroy(c);
}

/* Peer tag IP quantization, then two client spans to two addresses of one
 * peer aggregated under one key. */
static void test_peer_ip_quantization(void)
{
    static const char *const cases[][2] = {
        {"10.0.0.1", "blocked-ip-address"},
        {"10.0.0.1:5432", "blocked-ip-address:5432"},
        {"10-0-0-1", "blocked-ip-address"},
        {"1.2.3.4.example", "blocked-ip-address.example"},
        {"ip-10-1-2-3.ec2.internal", "ip-blocked-ip-address.ec2.internal"},
        {"http://10.0.0.5:8080", "http://blocked-ip-address:8080"},
        {"dnspoll:///10.0.0.5:53", "dnspoll:///blocked-ip-address:53"},
        {"10.0.0.1,10.0.0.2,cache", "blocked-ip-address,cache"},
        {"[2001:db8::1]:443", "blocked-ip-address:443"},
        {"2001:db8::1", "blocked-ip-address"},
        {"fe80::1%eth0", "blocked-ip-address"},
        {"a,a", "a"},
        /* unchanged */
        {"127.0.0.1", NULL},
        {"::1", NULL},
        {"169.254.169.254:80", NULL},
        {"db.internal", NULL},
        {"10.0.0.256", NULL},
        {"010.0.0.1", NULL},
        {"1.2.3", NULL},
        {"", NULL},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t n = sp_dd_quantize_peer_ips(cases[i][0], out, sizeof(out));
        if (!cases[i][1]) {
            if (n != 0)
                SP_TEST_FAIL("'%s' should stay, got '%s'", cases[i][0], out);
            continue;
        }
        if (n == 0 || strcmp(out, cases[i][1]) != 0)
            SP_TEST_FAIL("'%s' -> '%s', want '%s'", cases[i][0], n ? out : "(unchanged)",
                         cases[i][1]);
        ASSERT_EQ_U64(n, strlen(cases[i][1]));
    }
    /* too small an output: the raw value is kept */
    ASSERT_EQ_U64(sp_dd_quantize_peer_ips("10.0.0.1", out, 8), 0);

    struct sp_dd_stats *c = mk(100, T0);
    struct tspan t;
    const char *addrs[] = {"10.1.2.3", "10.9.9.9"};
    for (int i = 0; i < 2; i++) {
        ts_init(&t, "svc", "http.client.request", "GET", T0, SEC);
        ts_meta(&t, "span.kind", "client");
        ts_meta(&t, "server.address", addrs[i]);
        ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    }
    struct sp_dd_stats_counts k;
    sp_dd_stats_get_counts(c, &k);
    ASSERT_EQ_U64(k.keys_live, 1);
    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0, true, &p, &n, &err), 0);
    struct decoded d;
    const msgpack_object *root = decode(&d, &p[0]);
    const msgpack_object *b = &get(&get(root, "Stats")->via.array.ptr[0], "Stats")->via.array.ptr[0];
    const msgpack_object *g = &get(b, "Stats")->via.array.ptr[0];
    ASSERT_EQ_U64(u64(get(g, "Hits")), 2);
    const msgpack_object *pt = get(g, "PeerTags");
    ASSERT(pt->via.array.size == 1);
    ASSERT(str_is(&pt->via.array.ptr[0], "server.address:blocked-ip-address"));
    decoded_free(&d);
    sp_dd_stats_payloads_free(p, n);
    sp_dd_stats_destroy(c);
}

/* More keys than one payload takes: several payloads, SplitPayload set,
 * every key in exactly one, each payload's entries bounded. */
static void test_split(void)
{
    size_t keys = SP_DD_STATS_MAX_ENTRIES + 1500;
    struct sp_dd_stats *c = mk(keys, T0);
    struct tspan t;
    char res[32];
    for (size_t i = 0; i < keys; i++) {
        snprintf(res, sizeof(res), "r%zu", i);
        ts_init(&t, "svc", "op", res, T0 + (int64_t)(i % 3) * 10 * SEC, 1000 + (int64_t)i);
        ts_metric(&t, "_top_level", 1);
        ASSERT_EQ_INT(sp_dd_stats_add(c, &PK, NULL, &t.s), 1);
    }
    struct sp_dd_stats_payload *p = NULL;
    size_t n = 0;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_stats_flush(c, T0 + 100 * SEC, false, &p, &n, &err), 0);
    ASSERT_EQ_U64(n, 2);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ASSERT(p[i].entries <= SP_DD_STATS_MAX_ENTRIES);
        struct decoded d;
        const msgpack_object *root = decode(&d, &p[i]);
        ASSERT(root);
        ASSERT(get(root, "SplitPayload")->via.boolean);
        const msgpack_object *cps = get(root, "Stats");
        for (uint32_t a = 0; a < cps->via.array.size; a++) {
            const msgpack_object *bs = get(&cps->via.array.ptr[a], "Stats");
            for (uint32_t b = 0; b < bs->via.array.size; b++)
                total += get(&bs->via.array.ptr[b], "Stats")->via.array.size;
        }
        decoded_free(&d);
    }
    ASSERT_EQ_U64(total, keys);
    sp_dd_stats_payloads_free(p, n);
    sp_dd_stats_destroy(c);
}

int main(void)
{
    RUN(test_eligibility);
    RUN(test_figures_and_bucket);
    RUN(test_late_spans_and_sent_once);
    RUN(test_key_bound);
    RUN(test_peer_tags_and_grpc);
    RUN(test_peer_ip_quantization);
    RUN(test_split);
    return sp_test_summary();
}
