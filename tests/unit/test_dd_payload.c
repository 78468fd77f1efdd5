/* Datadog trace payloads (model/dd_map.c, dd_agent_payload.c, dd_encode.c)
 * beyond the golden table:
 * real OpenTelemetry JS SDK spans (the otlp-http-proto fixture) against the
 * ids and resources its sender recorded, /v0.4 msgpack decoded back with
 * msgpack-c, JSON lines parsed back with json-c, payload splitting,
 * truncation limits, grouping by resource and trace, hostnames. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dd_payload.h"
#include "sp_compress.h"
#include "sp_test.h"
#include "test_dd_mapping_build.h"

static const char *meta_get(const Datadog__Trace__Span *s, const char *k)
{
    for (size_t i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta[i]->key, k) == 0)
            return s->meta[i]->value;
    return NULL;
}

static bool metric_get(const Datadog__Trace__Span *s, const char *k, double *v)
{
    for (size_t i = 0; i < s->n_metrics; i++)
        if (strcmp(s->metrics[i]->key, k) == 0) {
            if (v)
                *v = s->metrics[i]->value;
            return true;
        }
    return false;
}

static size_t payload_spans(const Datadog__Trace__AgentPayload *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++)
            n += p->tracerpayloads[i]->chunks[j]->n_spans;
    return n;
}

static const Datadog__Trace__Span *find_span(const Datadog__Trace__AgentPayload *p, uint64_t id)
{
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++) {
            const Datadog__Trace__TraceChunk *c = p->tracerpayloads[i]->chunks[j];
            for (size_t k = 0; k < c->n_spans; k++)
                if (c->spans[k]->spanid == id)
                    return c->spans[k];
        }
    return NULL;
}

/* The fixture's payload, mapped with a runtime id for its service. */
struct fixture {
    struct sp_arena *a;
    sp_otlp_request *req;
    Datadog__Trace__AgentPayload *p;
    json_object *sent;
};

static const struct sp_runtime_id fixture_rid = {"fixture-otlp-proto", NULL, "rid-fixture"};

static int fixture_load(struct fixture *f)
{
    char path[512];
    size_t len;
    sp_test_fixture(path, sizeof path, "otlp-http-proto.bin");
    unsigned char *bin = sp_test_read_file(path, &len);
    if (!bin)
        return -1;
    f->a = sp_arena_create(0);
    ProtobufCAllocator al;
    sp_arena_pb_allocator(f->a, &al);
    f->req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        &al, len, bin);
    free(bin);
    if (!f->req)
        return -1;
    sp_test_fixture(path, sizeof path, "otlp-http-proto.sent.json");
    f->sent = json_object_from_file(path);
    if (!f->sent)
        return -1;
    struct sp_traces tr = {.req = f->req, .runtime_ids = &fixture_rid, .runtime_id_count = 1};
    tr.span_count = sp_traces_count_spans(f->req);
    struct sp_dd_map_opts o = {.hostname = "sidecar-host", .agent_version = "spanprof/test"};
    size_t dropped = 0;
    struct sp_err err = {0};
    if (sp_dd_map_traces(&tr, &o, f->a, &f->p, &dropped, &err) || dropped)
        return -1;
    return 0;
}

static void fixture_free(struct fixture *f)
{
    if (f->sent)
        json_object_put(f->sent);
    if (f->a)
        sp_arena_destroy(f->a);
}

static void test_fixture_sdk_spans(void)
{
    struct fixture f = {0};
    int rc = fixture_load(&f);
    if (rc)
        fixture_free(&f);
    ASSERT_EQ_INT(rc, 0);
    const Datadog__Trace__AgentPayload *p = f.p;
    /* One service instance, three traces. */
    ASSERT_EQ_INT(p->n_tracerpayloads, 1);
    const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[0];
    ASSERT_EQ_INT(tp->n_chunks, 3);
    /* The fixture's resource: service.name/version, deployment.environment.name,
     * host.name (no telemetry.sdk.* attributes). */
    ASSERT_EQ_STR(tp->languagename, "");
    ASSERT_EQ_STR(tp->tracerversion, "otlp-");
    ASSERT_EQ_STR(tp->hostname, "acceptance-host");
    ASSERT_EQ_STR(tp->env, "acceptance");
    ASSERT_EQ_STR(tp->runtimeid, "rid-fixture");
    ASSERT_EQ_STR(p->hostname, "sidecar-host");

    json_object *spans = tb_get(f.sent, "spans");
    size_t n = json_object_array_length(spans);
    ASSERT_EQ_INT(n, 9);
    ASSERT_EQ_INT(payload_spans(p), n);
    for (size_t i = 0; i < n; i++) {
        json_object *sj = json_object_array_get_idx(spans, i);
        uint64_t sid = strtoull(tb_str(sj, "ddSpanId", "0"), NULL, 10);
        const Datadog__Trace__Span *s = find_span(p, sid);
        ASSERT(s != NULL);
        ASSERT_EQ_U64(s->traceid, strtoull(tb_str(sj, "ddTraceId", ""), NULL, 10));
        ASSERT_EQ_U64(s->parentid, strtoull(tb_str(sj, "ddParentId", ""), NULL, 10));
        ASSERT_EQ_STR(s->service, tb_str(sj, "service", ""));
        ASSERT_EQ_STR(meta_get(s, "otel.trace_id"), tb_str(sj, "traceId", ""));
        int kind = json_object_get_int(tb_get(sj, "kind"));
        bool error = json_object_get_boolean(tb_get(sj, "error"));
        ASSERT_EQ_INT(s->error, error ? 1 : 0);
        const char *want_res = tb_str(sj, "expectedResource", NULL);
        if (want_res)
            ASSERT_EQ_STR(s->resource, want_res);
        else
            ASSERT_EQ_STR(s->resource, tb_str(sj, "name", ""));
        bool remote = json_object_get_boolean(tb_get(sj, "parentRemote"));
        bool root = strcmp(tb_str(sj, "parentSpanId", ""), "") == 0;
        switch (kind) {
        case 2: /* SERVER: the local root of its trace here */
            ASSERT_EQ_STR(s->name, "http.server.request");
            ASSERT_EQ_STR(s->type, "web");
            ASSERT(root || remote);
            ASSERT(metric_get(s, "_top_level", NULL));
            ASSERT_EQ_STR(meta_get(s, "runtime-id"), "rid-fixture");
            ASSERT(metric_get(s, "_dd.profiling.enabled", NULL));
            break;
        case 3: /* CLIENT child */
            ASSERT_EQ_STR(s->name, "http.client.request");
            ASSERT_EQ_STR(s->type, "http");
            ASSERT_EQ_STR(meta_get(s, "http.method"), "GET");
            ASSERT(!metric_get(s, "_top_level", NULL));
            /* runtime-id on every span of the instance; the profiling flag
             * on local roots only. */
            ASSERT_EQ_STR(meta_get(s, "runtime-id"), "rid-fixture");
            ASSERT(!metric_get(s, "_dd.profiling.enabled", NULL));
            if (error) {
                /* The SDK recorded an exception event on the failed call. */
                ASSERT_EQ_STR(meta_get(s, "_dd.span_events.has_exception"), "true");
                ASSERT(meta_get(s, "error.msg") && *meta_get(s, "error.msg"));
                ASSERT(meta_get(s, "events") && strstr(meta_get(s, "events"), "\"exception\""));
            }
            break;
        default: /* INTERNAL child */
            ASSERT_EQ_STR(s->name, "Internal");
            ASSERT_EQ_STR(s->type, "custom");
            ASSERT_EQ_STR(meta_get(s, "app.step"), "validate");
            ASSERT(!metric_get(s, "_top_level", NULL));
        }
        if (error)
            ASSERT_EQ_STR(meta_get(s, "otel.status_code"), "Error");
    }
    /* Chunk priority: auto keep, decision maker on the first span. */
    for (size_t j = 0; j < tp->n_chunks; j++) {
        ASSERT_EQ_INT(tp->chunks[j]->priority, 1);
        ASSERT_EQ_STR(meta_get(tp->chunks[j]->spans[0], "_dd.p.dm"), "-9");
        ASSERT_EQ_INT(tp->chunks[j]->n_spans, 3);
    }
    fixture_free(&f);
}

/* ---- msgpack /v0.4 ---- */

static bool mp_key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static char *mp_dup(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = malloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    return s;
}

static uint64_t mp_u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : (uint64_t)o->via.i64;
}

/* Compares one decoded span map with the protobuf span it came from. */
static int mp_check_span(const msgpack_object *m, const Datadog__Trace__Span *s, bool first,
                         int32_t prio, const char *host)
{
    if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size != 12)
        return __LINE__;
    int seen = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        char *str = mp_dup(v);
        int bad = 0;
        if (mp_key_is(k, "service"))
            bad = !str || strcmp(str, s->service);
        else if (mp_key_is(k, "name"))
            bad = !str || strcmp(str, s->name);
        else if (mp_key_is(k, "resource"))
            bad = !str || strcmp(str, s->resource);
        else if (mp_key_is(k, "type"))
            bad = !str || strcmp(str, s->type);
        else if (mp_key_is(k, "trace_id"))
            bad = v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != s->traceid;
        else if (mp_key_is(k, "span_id"))
            bad = v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != s->spanid;
        else if (mp_key_is(k, "parent_id"))
            bad = v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != s->parentid;
        else if (mp_key_is(k, "start"))
            bad = (int64_t)mp_u64(v) != s->start;
        else if (mp_key_is(k, "duration"))
            bad = (int64_t)mp_u64(v) != s->duration;
        else if (mp_key_is(k, "error"))
            bad = (int32_t)mp_u64(v) != s->error;
        else if (mp_key_is(k, "meta")) {
            size_t want = s->n_meta + (first && host ? 1 : 0);
            bad = v->type != MSGPACK_OBJECT_MAP || v->via.map.size != want;
            for (uint32_t j = 0; !bad && j < v->via.map.size; j++) {
                char *mk = mp_dup(&v->via.map.ptr[j].key), *mv = mp_dup(&v->via.map.ptr[j].val);
                const char *pv = mk ? meta_get(s, mk) : NULL;
                if (mk && strcmp(mk, "_dd.hostname") == 0 && first && host)
                    pv = host;
                bad = !mk || !mv || !pv || strcmp(pv, mv) != 0;
                free(mk);
                free(mv);
            }
        } else if (mp_key_is(k, "metrics")) {
            bool add = first && !metric_get(s, "_sampling_priority_v1", NULL);
            size_t want = s->n_metrics + (add ? 1 : 0);
            bad = v->type != MSGPACK_OBJECT_MAP || v->via.map.size != want;
            for (uint32_t j = 0; !bad && j < v->via.map.size; j++) {
                char *mk = mp_dup(&v->via.map.ptr[j].key);
                const msgpack_object *mv = &v->via.map.ptr[j].val;
                double pv;
                bool has = mk && metric_get(s, mk, &pv);
                if (mk && add && strcmp(mk, "_sampling_priority_v1") == 0) {
                    has = true;
                    pv = prio;
                }
                bad = !has || mv->type != MSGPACK_OBJECT_FLOAT64 || mv->via.f64 != pv;
                free(mk);
            }
        } else
            bad = 1;
        free(str);
        if (bad)
            return __LINE__ * 100 + (int)i;
        seen++;
    }
    return seen == 12 ? 0 : __LINE__;
}

static void test_v04_msgpack_roundtrip(void)
{
    struct fixture f = {0};
    int rc = fixture_load(&f);
    if (rc)
        fixture_free(&f);
    ASSERT_EQ_INT(rc, 0);
    /* A resource host different from the agent's host rides as _dd.hostname. */
    f.p->tracerpayloads[0]->hostname = "app-host";
    struct sp_buf out = {0};
    size_t count = 0;
    struct sp_err err = {0};
    rc = sp_dd_encode_v04(f.p, &out, &count, &err);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(count, 3);

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int ur = msgpack_unpack_next(&up, (const char *)out.data, out.len, &off);
    int bad = 0;
    if (ur != MSGPACK_UNPACK_SUCCESS || off != out.len)
        bad = __LINE__;
    const msgpack_object *root = &up.data;
    if (!bad && (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 3))
        bad = __LINE__;
    const Datadog__Trace__TracerPayload *tp = f.p->tracerpayloads[0];
    size_t spans = 0;
    for (uint32_t t = 0; !bad && t < root->via.array.size; t++) {
        const msgpack_object *tr = &root->via.array.ptr[t];
        const Datadog__Trace__TraceChunk *c = tp->chunks[t];
        if (tr->type != MSGPACK_OBJECT_ARRAY || tr->via.array.size != c->n_spans) {
            bad = __LINE__;
            break;
        }
        for (uint32_t k = 0; !bad && k < tr->via.array.size; k++, spans++)
            bad = mp_check_span(&tr->via.array.ptr[k], c->spans[k], k == 0, c->priority,
                                "app-host");
    }
    msgpack_unpacked_destroy(&up);
    sp_buf_free(&out);
    fixture_free(&f);
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(spans, 9);
}

/* ---- JSON lines ---- */

static void test_json_lines(void)
{
    struct fixture f = {0};
    int rc = fixture_load(&f);
    if (rc)
        fixture_free(&f);
    ASSERT_EQ_INT(rc, 0);
    struct sp_buf out = {0};
    struct sp_err err = {0};
    rc = sp_dd_encode_json_lines(f.p, &out, &err);
    ASSERT_EQ_INT(rc, 0);
    const Datadog__Trace__TracerPayload *tp = f.p->tracerpayloads[0];
    char *save = NULL, *text = (char *)out.data;
    size_t lines = 0;
    int bad = 0;
    for (char *line = strtok_r(text, "\n", &save); line && !bad;
         line = strtok_r(NULL, "\n", &save), lines++) {
        json_object *j = json_tokener_parse(line);
        if (!j) {
            bad = __LINE__;
            break;
        }
        uint64_t sid = json_object_get_uint64(tb_get(j, "span_id"));
        const Datadog__Trace__Span *s = find_span(f.p, sid);
        json_object *meta = tb_get(j, "meta"), *metrics = tb_get(j, "metrics");
        if (!s || json_object_get_uint64(tb_get(j, "trace_id")) != s->traceid ||
            json_object_get_uint64(tb_get(j, "parent_id")) != s->parentid ||
            strcmp(tb_str(j, "service", ""), s->service) ||
            strcmp(tb_str(j, "resource", ""), s->resource) ||
            strcmp(tb_str(j, "name", ""), s->name) || strcmp(tb_str(j, "type", ""), s->type) ||
            json_object_get_int64(tb_get(j, "start")) != s->start ||
            json_object_get_int64(tb_get(j, "duration")) != s->duration ||
            json_object_get_int(tb_get(j, "error")) != s->error || !meta || !metrics ||
            (size_t)json_object_object_length(meta) != s->n_meta ||
            (size_t)json_object_object_length(metrics) != s->n_metrics)
            bad = __LINE__;
        for (size_t i = 0; !bad && s && i < s->n_meta; i++)
            if (strcmp(tb_str(meta, s->meta[i]->key, "\x01"), s->meta[i]->value))
                bad = __LINE__;
        for (size_t i = 0; !bad && s && i < s->n_metrics; i++) {
            json_object *v = tb_get(metrics, s->metrics[i]->key);
            if (!v || json_object_get_double(v) != s->metrics[i]->value)
                bad = __LINE__;
        }
        json_object *chunk = tb_get(j, "chunk"), *pl = tb_get(j, "payload");
        if (!bad && (json_object_get_int(tb_get(chunk, "priority")) != 1 ||
                     strcmp(tb_str(tb_get(chunk, "tags"), "_dd.otlp_sr", ""), "1.00") ||
                     strcmp(tb_str(pl, "hostname", "?"), tp->hostname) ||
                     strcmp(tb_str(pl, "runtime_id", ""), "rid-fixture") ||
                     strcmp(tb_str(pl, "env", ""), "acceptance") ||
                     strcmp(tb_str(tb_get(j, "agent"), "hostname", ""), "sidecar-host")))
            bad = __LINE__;
        json_object_put(j);
    }
    sp_buf_free(&out);
    fixture_free(&f);
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(lines, 9);
}

/* ---- synthetic requests ---- */

static json_object *jparse(const char *s)
{
    return json_tokener_parse(s);
}

/* Maps one request of the given ResourceSpans built from JSON texts. */
static Datadog__Trace__AgentPayload *map_json(struct sp_arena *a, const char *const *res,
                                              const char *const *spans, size_t n,
                                              const struct sp_dd_map_opts *o)
{
    sp_otlp_resource_spans *rs[8];
    for (size_t i = 0; i < n; i++) {
        json_object *r = jparse(res[i]), *s = jparse(spans[i]);
        rs[i] = tb_resource_spans(a, r, NULL, s);
        json_object_put(r);
        json_object_put(s);
    }
    struct sp_traces tr = {.req = tb_request(a, rs, n)};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped;
    struct sp_err err = {0};
    struct sp_dd_map_opts def = {.agent_version = "t"};
    if (sp_dd_map_traces(&tr, o ? o : &def, a, &p, &dropped, &err))
        return NULL;
    return p;
}

static void test_grouping(void)
{
    struct sp_arena *a = sp_arena_create(0);
    /* Same attributes in another order: one service instance. */
    const char *res[] = {
        "{\"service.name\":\"a\",\"host.name\":\"h1\"}",
        "{\"host.name\":\"h1\",\"service.name\":\"a\"}",
        "{\"service.name\":\"b\",\"host.name\":\"h1\"}",
    };
    const char *spans[] = {
        ("[{\"trace_id\":\"000000000000000000000000000000a1\",\"span_id\":\"0000000000000001\","
         "\"kind\":\"server\",\"name\":\"r\",\"start\":\"1700000000000000000\",\"end\":"
         "\"1700000000000000001\"}]"),
        ("[{\"trace_id\":\"000000000000000000000000000000a1\",\"span_id\":\"0000000000000002\","
         "\"parent_span_id\":\"0000000000000001\",\"kind\":\"internal\",\"name\":\"c\"},"
         "{\"trace_id\":\"000000000000000000000000000000a2\",\"span_id\":\"0000000000000003\","
         "\"kind\":\"server\",\"name\":\"r2\"}]"),
        ("[{\"trace_id\":\"000000000000000000000000000000a1\",\"span_id\":\"0000000000000004\","
         "\"parent_span_id\":\"0000000000000002\",\"kind\":\"client\",\"name\":\"x\"}]"),
    };
    Datadog__Trace__AgentPayload *p = map_json(a, res, spans, 3, NULL);
    ASSERT(p != NULL);
    ASSERT_EQ_INT(p->n_tracerpayloads, 2);
    ASSERT_EQ_INT(p->tracerpayloads[0]->n_chunks, 2);
    ASSERT_EQ_INT(p->tracerpayloads[0]->chunks[0]->n_spans, 2);
    ASSERT_EQ_U64(p->tracerpayloads[0]->chunks[0]->spans[0]->spanid, 1);
    ASSERT_EQ_U64(p->tracerpayloads[0]->chunks[0]->spans[1]->spanid, 2);
    ASSERT_EQ_INT(p->tracerpayloads[1]->n_chunks, 1);
    /* The child merged across ResourceSpans is not top level; the span of
     * service b whose parent lives in the other payload is. */
    ASSERT(!metric_get(find_span(p, 2), "_top_level", NULL));
    ASSERT(metric_get(find_span(p, 4), "_top_level", NULL));
    ASSERT_EQ_STR(find_span(p, 4)->service, "b");
    /* A start before 2000 is replaced by "now - duration" (agent normaliser). */
    ASSERT(find_span(p, 2)->start > INT64_C(1600000000000000000));
    sp_arena_destroy(a);
}

static void test_truncation(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_buf sj = {0};
    char *big_stmt = malloc(6001), *big_val = malloc(26001), *big_key = malloc(211);
    memset(big_stmt, 'x', 6000);
    big_stmt[6000] = 0;
    memset(big_val, 'v', 26000);
    big_val[26000] = 0;
    memset(big_key, 'k', 210);
    big_key[210] = 0;
    /* A 2-byte UTF-8 character straddling the 5000-byte cut. */
    memcpy(big_stmt + 4999, "\xc3\xa9", 2);
    sp_buf_printf(&sj,
                  "[{\"trace_id\":\"000000000000000000000000000000b1\",\"span_id\":"
                  "\"0000000000000001\",\"kind\":\"client\",\"name\":\"q\",\"attributes\":{"
                  "\"db.system\":\"postgresql\",\"db.statement\":\"%s\",\"app.blob\":\"%s\","
                  "\"%s\":\"x\",\"m%s\":3,\"_dd.big.json\":\"%s\",\"span.type\":\"%.150s\"}}]",
                  big_stmt, big_val, big_key, big_key, big_val, big_val);
    const char *res[] = {"{\"service.name\":\"t\"}"};
    const char *spans[] = {(const char *)sj.data};
    Datadog__Trace__AgentPayload *p = map_json(a, res, spans, 1, NULL);
    ASSERT(p != NULL);
    const Datadog__Trace__Span *s = find_span(p, 1);
    ASSERT(s != NULL);
    /* Resource: 5000 bytes at most, never inside a UTF-8 character. */
    ASSERT_EQ_INT(strlen(s->resource), 4999);
    ASSERT_EQ_INT(strlen(meta_get(s, "app.blob")), 25003);
    ASSERT(strcmp(meta_get(s, "app.blob") + 25000, "...") == 0);
    ASSERT_EQ_INT(strlen(meta_get(s, "_dd.big.json")), 26000);
    char k200[204];
    memset(k200, 'k', 200);
    memcpy(k200 + 200, "...", 4);
    ASSERT_EQ_STR(meta_get(s, k200), "x");
    ASSERT(meta_get(s, big_key) == NULL);
    char mk[205];
    mk[0] = 'm';
    memset(mk + 1, 'k', 199);
    memcpy(mk + 200, "...", 4);
    ASSERT(metric_get(s, mk, NULL));
    ASSERT_EQ_INT(strlen(s->type), 100);
    free(big_stmt);
    free(big_val);
    free(big_key);
    sp_buf_free(&sj);
    sp_arena_destroy(a);
}

static void test_split(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_buf sj = {0};
    char blob[2001];
    memset(blob, 'b', 2000);
    blob[2000] = 0;
    sp_buf_append_str(&sj, "[");
    for (int t = 0; t < 100; t++)
        for (int k = 0; k < 4; k++)
            sp_buf_printf(&sj,
                          "%s{\"trace_id\":\"0000000000000000%016x\",\"span_id\":\"%016x\","
                          "\"kind\":\"internal\",\"name\":\"n\",\"start\":\"1700000000000000000\","
                          "\"end\":\"1700000000000000005\",\"attributes\":{\"blob\":\"%s\"}}",
                          sj.len > 1 ? "," : "", t + 1, t * 10 + k + 1, blob);
    sp_buf_append_str(&sj, "]");
    const char *res[] = {"{\"service.name\":\"split\",\"host.name\":\"hh\"}"};
    const char *spans[] = {(const char *)sj.data};
    struct sp_dd_map_opts o = {.hostname = "agent-h", .env = "e1", .agent_version = "v"};
    Datadog__Trace__AgentPayload *p = map_json(a, res, spans, 1, &o);
    ASSERT(p != NULL);
    ASSERT_EQ_INT(p->tracerpayloads[0]->n_chunks, 100);
    size_t whole = datadog__trace__agent_payload__get_packed_size(p);
    ASSERT(whole > 800000);

    Datadog__Trace__AgentPayload **parts;
    size_t n;
    struct sp_err err = {0};
    /* Under the limit: the payload itself. */
    ASSERT_EQ_INT(sp_dd_split_payload(p, 3200000, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT(parts[0] == p);

    const size_t max = 50000;
    ASSERT_EQ_INT(sp_dd_split_payload(p, max, a, &parts, &n, &err), 0);
    ASSERT(n >= whole / max);
    size_t chunk = 0;
    for (size_t i = 0; i < n; i++) {
        ASSERT(datadog__trace__agent_payload__get_packed_size(parts[i]) <= max);
        ASSERT_EQ_STR(parts[i]->hostname, "agent-h");
        ASSERT_EQ_STR(parts[i]->env, "e1");
        for (size_t t = 0; t < parts[i]->n_tracerpayloads; t++) {
            const Datadog__Trace__TracerPayload *tp = parts[i]->tracerpayloads[t];
            ASSERT_EQ_STR(tp->hostname, "hh");
            for (size_t c = 0; c < tp->n_chunks; c++, chunk++)
                /* Every chunk once, in order, never split. */
                ASSERT(tp->chunks[c] == p->tracerpayloads[0]->chunks[chunk]);
        }
        /* Each part packs and unpacks on its own. */
        size_t len = datadog__trace__agent_payload__get_packed_size(parts[i]);
        uint8_t *buf = malloc(len);
        datadog__trace__agent_payload__pack(parts[i], buf);
        Datadog__Trace__AgentPayload *u = datadog__trace__agent_payload__unpack(NULL, len, buf);
        free(buf);
        ASSERT(u != NULL);
        datadog__trace__agent_payload__free_unpacked(u, NULL);
    }
    ASSERT_EQ_INT(chunk, 100);

    /* A chunk larger than the limit travels alone. */
    ASSERT_EQ_INT(sp_dd_split_payload(p, 5000, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 100);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(parts[i]->tracerpayloads[0]->n_chunks, 1);
    sp_buf_free(&sj);
    sp_arena_destroy(a);
}

/* sp_dd_pack_agent_payload packs on its own (back to front, sizes
 * computed once): its bytes must be protobuf-c's, for every field. */
static bool pack_equal(const Datadog__Trace__AgentPayload *p)
{
    size_t n = datadog__trace__agent_payload__get_packed_size(p);
    uint8_t *ref = malloc(n + 1);
    size_t rn = datadog__trace__agent_payload__pack(p, ref);
    uint8_t *got = NULL;
    size_t gn = 0;
    struct sp_err err = {0};
    int rc = sp_dd_pack_agent_payload(p, &got, &gn, &err);
    bool same = rc == 0 && rn == n && gn == n && memcmp(ref, got, n) == 0;
    if (!same)
        fprintf(stderr, "  packed %zu bytes (rc %d), protobuf-c %zu\n", gn, rc, n);
    /* The agentless body is the same bytes, gzipped. */
    struct sp_buf gz = {0};
    struct sp_arena *a = sp_arena_create(0);
    const uint8_t *plain = NULL;
    size_t plen = 0;
    if (sp_dd_encode_agent_payload(p, &gz, &err) != 0 ||
        sp_decompress(SP_COMPRESSION_GZIP, gz.data, gz.len, 64u << 20, a, &plain, &plen, &err) ||
        plen != n || (n && memcmp(plain, ref, n) != 0)) {
        fprintf(stderr, "  gunzipped body differs from protobuf-c's bytes\n");
        same = false;
    }
    sp_arena_destroy(a);
    sp_buf_free(&gz);
    free(ref);
    free(got);
    return same;
}

static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

static void test_pack_matches_protobuf_c(void)
{
    struct fixture f = {0};
    ASSERT_EQ_INT(fixture_load(&f), 0);
    ASSERT(pack_equal(f.p));
    fixture_free(&f);

    Datadog__Trace__AgentPayload empty = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    ASSERT(pack_equal(&empty));

    /* Every field, with the values where encodings differ: empty and NULL
     * strings, lengths needing 1, 2 and 3 varint bytes, negative int32 and
     * int64, zero, -0.0, NaN and infinite doubles, bools, empty messages. */
    char *s200 = filled(200, 'm'), *s20k = filled(20000, 'z');
    Datadog__Trace__Span__MetaEntry me[4] = {
        DATADOG__TRACE__SPAN__META_ENTRY__INIT, DATADOG__TRACE__SPAN__META_ENTRY__INIT,
        DATADOG__TRACE__SPAN__META_ENTRY__INIT, DATADOG__TRACE__SPAN__META_ENTRY__INIT};
    me[0].key = "k";
    me[0].value = s200;
    me[1].key = "";
    me[1].value = "";
    me[2].key = NULL;
    me[2].value = s20k;
    me[3].key = s20k;
    me[3].value = NULL;
    Datadog__Trace__Span__MetaEntry *mp[4] = {&me[0], &me[1], &me[2], &me[3]};
    Datadog__Trace__Span__MetricsEntry xe[6];
    Datadog__Trace__Span__MetricsEntry *xp[6];
    double vals[6] = {0.0, -0.0, NAN, INFINITY, -1e-300, 42.5};
    for (int i = 0; i < 6; i++) {
        xe[i] = (Datadog__Trace__Span__MetricsEntry)DATADOG__TRACE__SPAN__METRICS_ENTRY__INIT;
        xe[i].key = i == 5 ? "" : "x";
        xe[i].value = vals[i];
        xp[i] = &xe[i];
    }
    Datadog__Trace__Span__MetaStructEntry se[2] = {DATADOG__TRACE__SPAN__META_STRUCT_ENTRY__INIT,
                                                   DATADOG__TRACE__SPAN__META_STRUCT_ENTRY__INIT};
    se[0].key = "ms";
    se[0].value.data = (uint8_t *)"\x00\x01\xff";
    se[0].value.len = 3;
    se[1].key = "zero";
    Datadog__Trace__Span__MetaStructEntry *sp_[2] = {&se[0], &se[1]};
    Datadog__Trace__Span spans[3] = {DATADOG__TRACE__SPAN__INIT, DATADOG__TRACE__SPAN__INIT,
                                     DATADOG__TRACE__SPAN__INIT};
    spans[0].service = "svc";
    spans[0].name = s200;
    spans[0].resource = NULL;
    spans[0].traceid = UINT64_MAX;
    spans[0].spanid = 1;
    spans[0].parentid = 127;
    spans[0].start = -5;
    spans[0].duration = INT64_MAX;
    spans[0].error = -1;
    spans[0].meta = mp;
    spans[0].n_meta = 4;
    spans[0].metrics = xp;
    spans[0].n_metrics = 6;
    spans[0].type = "web";
    spans[0].meta_struct = sp_;
    spans[0].n_meta_struct = 2;
    spans[1].error = INT32_MIN;
    spans[1].parentid = 128;
    spans[2].error = 1;
    spans[2].start = 16384;
    Datadog__Trace__Span *spp[3] = {&spans[0], &spans[1], &spans[2]};
    Datadog__Trace__TraceChunk__TagsEntry ct = DATADOG__TRACE__TRACE_CHUNK__TAGS_ENTRY__INIT;
    ct.key = "_dd.otlp_sr";
    ct.value = "1.00";
    Datadog__Trace__TraceChunk__TagsEntry *ctp[1] = {&ct};
    Datadog__Trace__TraceChunk chunks[2] = {DATADOG__TRACE__TRACE_CHUNK__INIT,
                                            DATADOG__TRACE__TRACE_CHUNK__INIT};
    chunks[0].priority = -4;
    chunks[0].origin = "synthetics";
    chunks[0].spans = spp;
    chunks[0].n_spans = 3;
    chunks[0].tags = ctp;
    chunks[0].n_tags = 1;
    chunks[0].droppedtrace = 1;
    chunks[1].priority = 2;
    Datadog__Trace__TraceChunk *chp[2] = {&chunks[0], &chunks[1]};
    Datadog__Trace__TracerPayload__TagsEntry tt = DATADOG__TRACE__TRACER_PAYLOAD__TAGS_ENTRY__INIT;
    tt.key = "_dd.tags.container";
    tt.value = "a:b";
    Datadog__Trace__TracerPayload__TagsEntry *ttp[1] = {&tt};
    Datadog__Trace__TracerPayload tps[2] = {DATADOG__TRACE__TRACER_PAYLOAD__INIT,
                                            DATADOG__TRACE__TRACER_PAYLOAD__INIT};
    tps[0].containerid = "cid";
    tps[0].languagename = "go";
    tps[0].languageversion = "1.22";
    tps[0].tracerversion = "otlp-1";
    tps[0].runtimeid = "rid";
    tps[0].chunks = chp;
    tps[0].n_chunks = 2;
    tps[0].tags = ttp;
    tps[0].n_tags = 1;
    tps[0].env = "prod";
    tps[0].hostname = "h";
    tps[0].appversion = "9";
    Datadog__Trace__TracerPayload *tpp[2] = {&tps[0], &tps[1]};
    Datadog__Trace__AgentPayload__TagsEntry at = DATADOG__TRACE__AGENT_PAYLOAD__TAGS_ENTRY__INIT;
    at.key = "k";
    Datadog__Trace__AgentPayload__TagsEntry *atp[1] = {&at};
    Datadog__Trace__AgentPayload p = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    p.hostname = "agent";
    p.env = "";
    p.tracerpayloads = tpp;
    p.n_tracerpayloads = 2;
    p.tags = atp;
    p.n_tags = 1;
    p.agentversion = "spanprof/x";
    p.targettps = 10;
    p.errortps = -0.0;
    p.raresamplerenabled = 1;
    ASSERT(pack_equal(&p));

    /* Unknown fields (never made by the mapping) go through protobuf-c. */
    ProtobufCMessageUnknownField uf = {.tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
                                       .len = 1, .data = (uint8_t *)"\x05"};
    spans[1].base.unknown_fields = &uf;
    spans[1].base.n_unknown_fields = 1;
    ASSERT(pack_equal(&p));
    spans[1].base.n_unknown_fields = 0;

    /* The split sizes parts as protobuf-c would: a limit of exactly the
     * packed size keeps one part, one byte less splits. */
    size_t whole = datadog__trace__agent_payload__get_packed_size(&p);
    struct sp_arena *a = sp_arena_create(0);
    Datadog__Trace__AgentPayload **parts;
    size_t n;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_split_payload(&p, whole, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(sp_dd_split_payload(&p, whole - 1, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 2);
    for (size_t i = 0; i < n; i++)
        ASSERT(pack_equal(parts[i]));
    sp_arena_destroy(a);
    free(s200);
    free(s20k);
}

static void test_hostname_precedence(void)
{
    static const struct {
        const char *res;
        const char *want;
    } cases[] = {
        {"{\"host.name\":\"hn\",\"host.id\":\"hid\"}", "hid"},
        {"{\"host.name\":\"hn\"}", "hn"},
        {"{\"host.name\":\"hn\",\"k8s.node.name\":\"node\",\"k8s.cluster.name\":\"c1\"}",
         "node-c1"},
        {"{\"host.name\":\"hn\",\"datadog.host.name\":\"custom\"}", "custom"},
        {"{\"host.name\":\"localhost\"}", "cfg-host"},
        {"{}", "cfg-host"},
        /* datadog.host no longer overrides (datadog-agent PR #45833) */
        {"{\"host.name\":\"hn\",\"datadog.host\":\"over\"}", "hn"},
        {"{\"aws.ecs.launchtype\":\"fargate\",\"host.name\":\"hn\"}", ""},
        {"{\"cloud.provider\":\"aws\",\"host.id\":\"i-123\",\"k8s.node.name\":\"n\"}", "i-123"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sp_arena *a = sp_arena_create(0);
        const char *res[] = {cases[i].res};
        const char *spans[] = {"[{\"trace_id\":\"000000000000000000000000000000c1\","
                               "\"span_id\":\"0000000000000001\",\"name\":\"x\"}]"};
        struct sp_dd_map_opts o = {.hostname = "cfg-host"};
        Datadog__Trace__AgentPayload *p = map_json(a, res, spans, 1, &o);
        ASSERT(p != NULL);
        if (strcmp(p->tracerpayloads[0]->hostname, cases[i].want) != 0)
            fprintf(stderr, "  case %zu: got '%s'\n", i, p->tracerpayloads[0]->hostname);
        ASSERT_EQ_STR(p->tracerpayloads[0]->hostname, cases[i].want);
        ASSERT_EQ_STR(p->hostname, "cfg-host");
        sp_arena_destroy(a);
    }
}

static void test_empty_and_dropped(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_traces tr = {0};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped = 7;
    struct sp_err err = {0};
    struct sp_dd_map_opts o = {.hostname = "h"};
    ASSERT_EQ_INT(sp_dd_map_traces(&tr, &o, a, &p, &dropped, &err), 0);
    ASSERT(p != NULL);
    ASSERT_EQ_INT(p->n_tracerpayloads, 0);
    ASSERT_EQ_INT(dropped, 0);
    ASSERT_EQ_STR(p->env, "none");
    struct sp_buf b = {0};
    size_t count = 9;
    ASSERT_EQ_INT(sp_dd_encode_v04(p, &b, &count, &err), 0);
    ASSERT_EQ_INT(count, 0);
    ASSERT_EQ_INT(b.len, 1); /* fixarray of 0 */
    sp_buf_reset(&b);
    ASSERT_EQ_INT(sp_dd_encode_json_lines(p, &b, &err), 0);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_EQ_INT(sp_dd_encode_agent_payload(p, &b, &err), 0);
    ASSERT(b.len > 10);
    sp_buf_free(&b);

    /* Zero trace id and bad-length span id are dropped and counted. */
    const char *res[] = {"{}"};
    const char *spans[] = {
        "[{\"trace_id\":\"00000000000000000000000000000000\",\"span_id\":\"0000000000000001\"},"
        "{\"trace_id\":\"000000000000000000000000000000d1\",\"span_id\":\"000001\"},"
        "{\"trace_id\":\"000000000000000000000000000000d1\",\"span_id\":\"0000000000000002\"}]"};
    sp_otlp_resource_spans *rs;
    json_object *r = jparse(res[0]), *s = jparse(spans[0]);
    rs = tb_resource_spans(a, r, NULL, s);
    json_object_put(r);
    json_object_put(s);
    tr.req = tb_request(a, &rs, 1);
    ASSERT_EQ_INT(sp_dd_map_traces(&tr, &o, a, &p, &dropped, &err), 0);
    ASSERT_EQ_INT(dropped, 2);
    ASSERT_EQ_INT(payload_spans(p), 1);
    sp_arena_destroy(a);
}

/* The result must not point into the OTLP batch: map from one arena into
 * another, destroy the first, then read (ASan catches a dangling pointer). */
static void test_result_outlives_batch(void)
{
    struct fixture f = {0};
    int rc = fixture_load(&f);
    if (rc)
        fixture_free(&f);
    ASSERT_EQ_INT(rc, 0);
    struct sp_arena *out = sp_arena_create(0);
    struct sp_traces tr = {.req = f.req};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped;
    struct sp_err err = {0};
    struct sp_dd_map_opts o = {.agent_version = "t"};
    rc = sp_dd_map_traces(&tr, &o, out, &p, &dropped, &err);
    fixture_free(&f);
    ASSERT_EQ_INT(rc, 0);
    struct sp_buf b = {0};
    ASSERT_EQ_INT(sp_dd_encode_json_lines(p, &b, &err), 0);
    ASSERT(b.len > 1000);
    ASSERT(strstr((char *)b.data, "fixture-otlp-proto") != NULL);
    ASSERT(strstr((char *)b.data, "\"http.url\":\"http://127.0.0.1:8080/api/items/") != NULL);
    sp_buf_free(&b);
    sp_arena_destroy(out);
}

int main(void)
{
    RUN(test_fixture_sdk_spans);
    RUN(test_v04_msgpack_roundtrip);
    RUN(test_json_lines);
    RUN(test_grouping);
    RUN(test_truncation);
    RUN(test_split);
    RUN(test_pack_matches_protobuf_c);
    RUN(test_hostname_precedence);
    RUN(test_empty_and_dropped);
    RUN(test_result_outlives_batch);
    return sp_test_summary();
}
