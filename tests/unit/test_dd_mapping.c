/* The OTel -> Datadog mapping golden table (tests/data/dd_mapping/golden.json,
 * expectations written by hand from docs/datadog.md §4; its
 * layout is made by gen_golden.py next to it).
 *
 * Every case is mapped with sp_dd_map_traces(), packed as an AgentPayload,
 * and decoded back twice (protobuf-c unpack of the packed bytes, and
 * gunzip + unpack of the agentless body); the expectations are checked on
 * the decoded payloads, field by field.
 *
 * Expectation keys per span: service, name, resource, type, error, trace_id,
 * span_id, parent_id, start, duration (decimal strings for ids and times),
 * meta {k: v}, meta_absent [k], meta_exact (no other meta keys), metrics,
 * metrics_absent, metrics_exact, chunk_priority, endpoint (the `trace
 * endpoint` the join gives the samples of this span as a local root, and the
 * endpoint_counts key it counts under: sp_dd_root_endpoint's default rule;
 * null: no label and no count). Per case: runtime_ids, opts {env, tags},
 * payload {runtime_id, env, container_id, hostname, tags}, expect_dropped,
 * upstream (the datadog-agent / dd-trace-go file and function the case
 * follows; documentation only). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dd_naming.h"
#include "dd_payload.h"
#include "sp_compress.h"
#include "sp_test.h"
#include "test_dd_mapping_build.h"

#define GOLDEN "tests/data/dd_mapping/golden.json"

static int failures;
static int spans_checked;

#define CHECK(case_name, cond, ...)                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  [%s] ", case_name);                                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

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
            *v = s->metrics[i]->value;
            return true;
        }
    return false;
}

static const char *tp_tag(const Datadog__Trace__TracerPayload *tp, const char *k)
{
    for (size_t i = 0; i < tp->n_tags; i++)
        if (strcmp(tp->tags[i]->key, k) == 0)
            return tp->tags[i]->value;
    return NULL;
}

static void check_str(const char *cn, json_object *exp, const char *key, const char *got)
{
    const char *want = tb_str(exp, key, NULL);
    if (want)
        CHECK(cn, got && strcmp(want, got) == 0, "%s: want \"%.80s\", got \"%.80s\"", key, want,
              got ? got : "(null)");
}

static void check_u64(const char *cn, json_object *exp, const char *key, uint64_t got)
{
    const char *want = tb_str(exp, key, NULL);
    if (want)
        CHECK(cn, strtoull(want, NULL, 10) == got, "%s: want %s, got %" PRIu64, key, want, got);
}

static void check_span(const char *cn, json_object *exp, const Datadog__Trace__Span *s,
                       const Datadog__Trace__TraceChunk *c)
{
    spans_checked++;
    check_str(cn, exp, "service", s->service);
    check_str(cn, exp, "name", s->name);
    check_str(cn, exp, "resource", s->resource);
    check_str(cn, exp, "type", s->type);
    check_u64(cn, exp, "trace_id", s->traceid);
    check_u64(cn, exp, "span_id", s->spanid);
    check_u64(cn, exp, "parent_id", s->parentid);
    check_u64(cn, exp, "start", (uint64_t)s->start);
    check_u64(cn, exp, "duration", (uint64_t)s->duration);
    json_object *x;
    if ((x = tb_get(exp, "error")))
        CHECK(cn, s->error == json_object_get_int(x), "error: want %d, got %d",
              json_object_get_int(x), s->error);
    if ((x = tb_get(exp, "chunk_priority")))
        CHECK(cn, c->priority == json_object_get_int(x), "chunk priority: want %d, got %d",
              json_object_get_int(x), c->priority);
    json_object *meta = tb_get(exp, "meta");
    if (meta) {
        json_object_object_foreach(meta, k, v)
        {
            const char *got = meta_get(s, k);
            const char *want = json_object_get_string(v);
            CHECK(cn, got && strcmp(got, want) == 0, "meta[%.60s]: want \"%.120s\", got \"%.120s\"",
                  k, want, got ? got : "(absent)");
        }
        if ((x = tb_get(exp, "meta_exact")) && json_object_get_boolean(x)) {
            CHECK(cn, (int)s->n_meta == json_object_object_length(meta),
                  "meta: want exactly %d keys, got %zu", json_object_object_length(meta),
                  s->n_meta);
            for (size_t i = 0; i < s->n_meta; i++)
                CHECK(cn, tb_get(meta, s->meta[i]->key) != NULL, "meta: unexpected key %s=%s",
                      s->meta[i]->key, s->meta[i]->value);
        }
    }
    if ((x = tb_get(exp, "meta_absent")))
        for (size_t i = 0; i < json_object_array_length(x); i++) {
            const char *k = json_object_get_string(json_object_array_get_idx(x, i));
            CHECK(cn, meta_get(s, k) == NULL, "meta[%s] should be absent, is \"%s\"", k,
                  meta_get(s, k));
        }
    json_object *metrics = tb_get(exp, "metrics");
    if (metrics) {
        json_object_object_foreach(metrics, k, v)
        {
            double got = NAN;
            bool has = metric_get(s, k, &got);
            double want = json_object_get_double(v);
            CHECK(cn, has && fabs(got - want) < 1e-9, "metrics[%s]: want %g, got %s%g", k, want,
                  has ? "" : "(absent) ", got);
        }
        if ((x = tb_get(exp, "metrics_exact")) && json_object_get_boolean(x))
            CHECK(cn, (int)s->n_metrics == json_object_object_length(metrics),
                  "metrics: want exactly %d keys, got %zu", json_object_object_length(metrics),
                  s->n_metrics);
    }
    if ((x = tb_get(exp, "metrics_absent")))
        for (size_t i = 0; i < json_object_array_length(x); i++) {
            const char *k = json_object_get_string(json_object_array_get_idx(x, i));
            double d;
            CHECK(cn, !metric_get(s, k, &d), "metrics[%s] should be absent, is %g", k, d);
        }
}

static const Datadog__Trace__Span *find_span(const Datadog__Trace__AgentPayload *p, uint64_t id,
                                             const Datadog__Trace__TraceChunk **chunk,
                                             const Datadog__Trace__TracerPayload **tpo)
{
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++) {
            const Datadog__Trace__TraceChunk *c = p->tracerpayloads[i]->chunks[j];
            for (size_t k = 0; k < c->n_spans; k++)
                if (c->spans[k]->spanid == id) {
                    *chunk = c;
                    *tpo = p->tracerpayloads[i];
                    return c->spans[k];
                }
        }
    return NULL;
}

static uint64_t hex_u64(const char *h)
{
    return strtoull(h, NULL, 16);
}

/* Checks one decoded payload against the case. */
static void check_payload(const char *cn, json_object *cs, const Datadog__Trace__AgentPayload *p)
{
    json_object *spans = tb_get(cs, "spans");
    CHECK(cn, p->targettps == 10.0 && p->errortps == 10.0, "targetTPS/errorTPS: got %g/%g",
          p->targettps, p->errortps);
    CHECK(cn, strcmp(p->agentversion, "spanprof/test") == 0, "agentVersion: got %s",
          p->agentversion);
    const char *env = tb_str(tb_get(cs, "opts"), "env", NULL);
    CHECK(cn, strcmp(p->env, env ? env : "none") == 0, "payload env: got %s", p->env);
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *sj = json_object_array_get_idx(spans, i);
        json_object *exp = tb_get(sj, "expect");
        if (!exp)
            continue;
        const Datadog__Trace__TraceChunk *c = NULL;
        const Datadog__Trace__TracerPayload *tp = NULL;
        const Datadog__Trace__Span *s = find_span(p, hex_u64(tb_str(sj, "span_id", "0")), &c, &tp);
        CHECK(cn, s != NULL, "span %s not in the payload", tb_str(sj, "span_id", "?"));
        if (!s)
            continue;
        check_span(cn, exp, s, c);
        /* Every chunk carries the OTLP sampler rate tag. */
        CHECK(cn, c->n_tags == 1 && strcmp(c->tags[0]->key, "_dd.otlp_sr") == 0 &&
                      strcmp(c->tags[0]->value, "1.00") == 0,
              "chunk tags: want _dd.otlp_sr=1.00");
        /* The first span of a kept chunk carries the decision maker. */
        CHECK(cn, c->priority <= 0 || meta_get(c->spans[0], "_dd.p.dm") != NULL,
              "chunk's first span lacks _dd.p.dm");
        const char *sdk = tb_str(tb_get(cs, "resource"), "telemetry.sdk.version", NULL);
        if (sdk) {
            char want[64];
            snprintf(want, sizeof want, "otlp-%s", sdk);
            CHECK(cn, strcmp(tp->tracerversion, want) == 0, "tracerVersion: got %s",
                  tp->tracerversion);
        }
        const char *lang = tb_str(tb_get(cs, "resource"), "telemetry.sdk.language", NULL);
        if (lang)
            CHECK(cn, strcmp(tp->languagename, lang) == 0, "languageName: got %s",
                  tp->languagename);
        json_object *pe = tb_get(cs, "payload");
        if (pe) {
            check_str(cn, pe, "runtime_id", tp->runtimeid);
            check_str(cn, pe, "env", tp->env);
            check_str(cn, pe, "container_id", tp->containerid);
            check_str(cn, pe, "hostname", tp->hostname);
            json_object *tags = tb_get(pe, "tags");
            if (tags) {
                json_object_object_foreach(tags, k, v)
                {
                    const char *got = tp_tag(tp, k);
                    CHECK(cn, got && strcmp(got, json_object_get_string(v)) == 0,
                          "payload tag %s: want %s, got %s", k, json_object_get_string(v),
                          got ? got : "(absent)");
                }
            }
        }
    }
}

static void run_case(json_object *cs)
{
    const char *cn = tb_str(cs, "name", "?");
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_resource_spans *rs =
        tb_resource_spans(a, tb_get(cs, "resource"), tb_get(cs, "scope"), tb_get(cs, "spans"));
    struct sp_traces tr = {.req = tb_request(a, &rs, 1)};
    tr.span_count = sp_traces_count_spans(tr.req);

    struct sp_runtime_id rids[8];
    json_object *rj = tb_get(cs, "runtime_ids");
    for (size_t i = 0; rj && i < json_object_array_length(rj) && i < 8; i++) {
        json_object *r = json_object_array_get_idx(rj, i);
        rids[i] = (struct sp_runtime_id){tb_str(r, "service", NULL), tb_str(r, "instance", NULL),
                                         tb_str(r, "runtime_id", NULL)};
        tr.runtime_ids = rids;
        tr.runtime_id_count = i + 1;
    }
    const char *tags[8] = {0};
    json_object *oj = tb_get(cs, "opts");
    json_object *tj = tb_get(oj, "tags");
    for (size_t i = 0; tj && i < json_object_array_length(tj) && i < 7; i++)
        tags[i] = json_object_get_string(json_object_array_get_idx(tj, i));
    struct sp_dd_map_opts opts = {
        .env = tb_str(oj, "env", NULL),
        .tags = tags,
        .agent_version = "spanprof/test",
    };

    struct sp_err err = {0};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped = 99;
    int rc = sp_dd_map_traces(&tr, &opts, a, &p, &dropped, &err);
    CHECK(cn, rc == 0, "sp_dd_map_traces: %d %s", rc, err.msg);
    if (rc) {
        sp_arena_destroy(a);
        return;
    }
    json_object *dj = tb_get(cs, "expect_dropped");
    CHECK(cn, dropped == (size_t)(dj ? json_object_get_int(dj) : 0), "dropped: got %zu", dropped);

    /* The join's endpoint rule on the same OTLP spans. */
    json_object *spans = tb_get(cs, "spans");
    for (size_t i = 0; rs->n_scope_spans && i < json_object_array_length(spans) &&
                       i < rs->scope_spans[0]->n_spans;
         i++) {
        json_object *exp = tb_get(json_object_array_get_idx(spans, i), "expect"), *ep;
        if (!exp || !json_object_object_get_ex(exp, "endpoint", &ep))
            continue;
        struct sp_dd_span_ctx dc = {
            .span = rs->scope_spans[0]->spans[i],
            .resource_attrs = rs->resource ? rs->resource->attributes : NULL,
            .n_resource_attrs = rs->resource ? rs->resource->n_attributes : 0,
        };
        const char *got = NULL;
        bool labelled = sp_dd_root_endpoint(&dc, false, a, &got);
        const char *want = ep ? json_object_get_string(ep) : NULL;
        if (want)
            CHECK(cn, labelled && got && strcmp(got, want) == 0, "endpoint: want \"%s\", got %s%s",
                  want, labelled ? "" : "none ", got ? got : "");
        else
            CHECK(cn, !labelled, "endpoint: want none, got \"%s\"", got ? got : "");
    }

    /* 1. pack -> unpack */
    size_t n = datadog__trace__agent_payload__get_packed_size(p);
    uint8_t *raw = malloc(n);
    datadog__trace__agent_payload__pack(p, raw);
    Datadog__Trace__AgentPayload *u = datadog__trace__agent_payload__unpack(NULL, n, raw);
    CHECK(cn, u != NULL, "packed payload does not unpack");
    if (u) {
        check_payload(cn, cs, u);
        datadog__trace__agent_payload__free_unpacked(u, NULL);
    }

    /* 2. the agentless body: gzip -> gunzip -> the same bytes -> unpack */
    struct sp_buf gz = {0};
    rc = sp_dd_encode_agent_payload(p, &gz, &err);
    CHECK(cn, rc == 0 && gz.len > 2 && gz.data[0] == 0x1f && gz.data[1] == 0x8b,
          "agentless body is not gzip (%d %s)", rc, err.msg);
    const uint8_t *plain = NULL;
    size_t plain_len = 0;
    rc = sp_decompress(SP_COMPRESSION_GZIP, gz.data, gz.len, 64u << 20, a, &plain, &plain_len,
                       &err);
    CHECK(cn, rc == 0 && plain_len == n && memcmp(plain, raw, n) == 0,
          "gunzipped body differs from the packed payload (%d %s)", rc, err.msg);
    if (rc == 0) {
        u = datadog__trace__agent_payload__unpack(NULL, plain_len, plain);
        CHECK(cn, u != NULL, "gunzipped payload does not unpack");
        if (u) {
            check_payload(cn, cs, u);
            datadog__trace__agent_payload__free_unpacked(u, NULL);
        }
    }
    sp_buf_free(&gz);
    free(raw);
    sp_arena_destroy(a);
}

static void test_golden_table(void)
{
    json_object *root = json_object_from_file(GOLDEN);
    ASSERT(root != NULL);
    json_object *cases = tb_get(root, "cases");
    ASSERT(cases != NULL);
    size_t n = json_object_array_length(cases);
    int before = failures;
    for (size_t i = 0; i < n; i++)
        run_case(json_object_array_get_idx(cases, i));
    json_object_put(root);
    fprintf(stderr, "  %zu cases, %d span expectations checked (x2 decodings)\n", n,
            spans_checked / 2);
    ASSERT(spans_checked / 2 >= 40);
    ASSERT_EQ_INT(failures - before, 0);
}

/* The spans of a tracer payload share the protobuf-c messages of the
 * resource entries they carry unchanged (dd_map.c, tp_b.rshared). A value
 * set per chunk or per span on a key a resource attribute also has
 * (_dd.p.dm on the chunk's first span, runtime-id on every span of an
 * instance the join knows) must change that span only, and a span whose
 * own attribute wins must not see the resource's value. */
static void test_shared_resource_entries(void)
{
    static const char *const doc =
        "{\"resource\": {\"service.name\": \"svc\", \"_dd.p.dm\": \"from-resource\","
        " \"runtime-id\": \"res-rid\", \"team\": \"blue\"},"
        " \"scope\": {\"name\": \"s\"},"
        " \"spans\": ["
        "  {\"trace_id\": \"0af7651916cd43dd8448eb211c80319c\", \"span_id\": \"0000000000000001\","
        "   \"parent_span_id\": \"\", \"start\": \"1700000000000000000\","
        "   \"end\": \"1700000000100000000\", \"kind\": \"server\", \"name\": \"a\"},"
        "  {\"trace_id\": \"0af7651916cd43dd8448eb211c80319c\", \"span_id\": \"0000000000000002\","
        "   \"parent_span_id\": \"0000000000000001\", \"start\": \"1700000000000000000\","
        "   \"end\": \"1700000000100000000\", \"kind\": \"internal\", \"name\": \"b\","
        "   \"attributes\": {\"team\": \"red\"}},"
        "  {\"trace_id\": \"0af7651916cd43dd8448eb211c80319c\", \"span_id\": \"0000000000000003\","
        "   \"parent_span_id\": \"0000000000000001\", \"start\": \"1700000000000000000\","
        "   \"end\": \"1700000000100000000\", \"kind\": \"internal\", \"name\": \"c\"}]}";
    json_object *cs = json_tokener_parse(doc);
    ASSERT(cs != NULL);
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_resource_spans *rs =
        tb_resource_spans(a, tb_get(cs, "resource"), tb_get(cs, "scope"), tb_get(cs, "spans"));
    struct sp_traces tr = {.req = tb_request(a, &rs, 1)};
    for (int with_rid = 0; with_rid < 2; with_rid++) {
        static const struct sp_runtime_id rid = {"svc", NULL, "join-rid"};
        tr.runtime_ids = with_rid ? &rid : NULL;
        tr.runtime_id_count = with_rid ? 1 : 0;
        struct sp_dd_map_opts opts = {.agent_version = "spanprof/test", .borrow_batch = true};
        struct sp_err err = {0};
        Datadog__Trace__AgentPayload *p = NULL;
        ASSERT_EQ_INT(sp_dd_map_traces(&tr, &opts, a, &p, NULL, &err), 0);
        ASSERT(p->n_tracerpayloads == 1 && p->tracerpayloads[0]->n_chunks == 1);
        const Datadog__Trace__TraceChunk *c = p->tracerpayloads[0]->chunks[0];
        ASSERT(c->n_spans == 3);
        /* the first span of the chunk: the sampler's decision maker */
        ASSERT(strcmp(meta_get(c->spans[0], "_dd.p.dm"), "-9") == 0);
        for (size_t i = 1; i < 3; i++)
            ASSERT(strcmp(meta_get(c->spans[i], "_dd.p.dm"), "from-resource") == 0);
        for (size_t i = 0; i < 3; i++)
            ASSERT(strcmp(meta_get(c->spans[i], "runtime-id"), with_rid ? "join-rid" : "res-rid") ==
                   0);
        ASSERT(strcmp(meta_get(c->spans[0], "team"), "blue") == 0);
        ASSERT(strcmp(meta_get(c->spans[1], "team"), "red") == 0);
        ASSERT(strcmp(meta_get(c->spans[2], "team"), "blue") == 0);
        /* and the packer writes what protobuf-c writes for it */
        size_t n = datadog__trace__agent_payload__get_packed_size(p);
        uint8_t *ref = malloc(n), *got = NULL;
        size_t gn = 0;
        ASSERT(ref != NULL);
        datadog__trace__agent_payload__pack(p, ref);
        ASSERT_EQ_INT(sp_dd_pack_agent_payload(p, &got, &gn, &err), 0);
        ASSERT(gn == n && memcmp(ref, got, n) == 0);
        free(ref);
        free(got);
    }
    json_object_put(cs);
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_golden_table);
    RUN(test_shared_resource_entries);
    return sp_test_summary();
}
