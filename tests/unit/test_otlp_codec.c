/* Unit tests of model/otlp_codec.c and otlp_json.c: the real exporter
 * captures in tests/data/fixtures decode to what their *.sent.json ground
 * truth says, and every malformed input fails with a message that names
 * what failed. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google_rpc_status.pb-c.h"
#include "otlp_codec.h"
#include "sp_compress.h"
#include "sp_test.h"

static unsigned char *read_fixture(const char *name, size_t *len)
{
    char path[1200];
    sp_test_fixture(path, sizeof(path), name);
    unsigned char *b = sp_test_read_file(path, len);
    if (!b)
        fprintf(stderr, "  cannot read %s\n", path);
    return b;
}

static void hex(const ProtobufCBinaryData *b, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < b->len; i++) {
        out[2 * i] = d[b->data[i] >> 4];
        out[2 * i + 1] = d[b->data[i] & 15];
    }
    out[2 * b->len] = '\0';
}

static const sp_otlp_any *find_attr(sp_otlp_kv **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0)
            return kv[i]->value;
    return NULL;
}

struct found {
    const sp_otlp_span *span;
    const sp_otlp_resource_spans *rs;
};

static struct found find_span(const sp_otlp_request *req, const char *span_id)
{
    struct found f = {NULL, NULL};
    char h[40];
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const sp_otlp_scope_spans *ss = req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                if (ss->spans[k]->span_id.len != 8)
                    continue;
                hex(&ss->spans[k]->span_id, h);
                if (strcmp(h, span_id) == 0) {
                    f.span = ss->spans[k];
                    f.rs = req->resource_spans[i];
                }
            }
        }
    return f;
}

/* Compares every span of the ground truth with the decoded request. Sets
 * *bad to a description of the first mismatch. */
static int compare_truth(const sp_otlp_request *req, const char *truth_name, char *bad,
                         size_t bad_size)
{
    char path[1200];
    sp_test_fixture(path, sizeof(path), truth_name);
    json_object *truth = json_object_from_file(path);
    if (!truth) {
        snprintf(bad, bad_size, "cannot read %s", path);
        return -1;
    }
    json_object *spans = json_object_object_get(truth, "spans");
    size_t n = json_object_array_length(spans);
    int rc = -1;
    char h[40];
    if (n != 9 || sp_traces_count_spans(req) != n) {
        snprintf(bad, bad_size, "truth has %zu spans, decoded %zu", n, sp_traces_count_spans(req));
        goto out;
    }
    size_t exception_events = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(spans, i);
        const char *sid = json_object_get_string(json_object_object_get(t, "spanId"));
        struct found f = find_span(req, sid);
        if (!f.span) {
            snprintf(bad, bad_size, "span %s not decoded", sid);
            goto out;
        }
        const sp_otlp_span *s = f.span;
        hex(&s->trace_id, h);
        if (strcmp(h, json_object_get_string(json_object_object_get(t, "traceId")))) {
            snprintf(bad, bad_size, "span %s: trace id %s", sid, h);
            goto out;
        }
        hex(&s->parent_span_id, h);
        if (strcmp(h, json_object_get_string(json_object_object_get(t, "parentSpanId")))) {
            snprintf(bad, bad_size, "span %s: parent %s", sid, h);
            goto out;
        }
        if (strcmp(s->name, json_object_get_string(json_object_object_get(t, "name"))) ||
            (int)s->kind != json_object_get_int(json_object_object_get(t, "kind"))) {
            snprintf(bad, bad_size, "span %s: name '%s' kind %d", sid, s->name, (int)s->kind);
            goto out;
        }
        bool error = json_object_get_boolean(json_object_object_get(t, "error"));
        if (error != (s->status && s->status->code == 2)) {
            snprintf(bad, bad_size, "span %s: status does not match error=%d", sid, error);
            goto out;
        }
        bool remote = json_object_get_boolean(json_object_object_get(t, "parentRemote"));
        if (!(s->flags & 0x100) || remote != !!(s->flags & 0x200) || !(s->flags & 0x1)) {
            snprintf(bad, bad_size, "span %s: flags 0x%x, parentRemote=%d", sid, s->flags, remote);
            goto out;
        }
        const sp_otlp_any *svc =
            find_attr(f.rs->resource->attributes, f.rs->resource->n_attributes, "service.name");
        if (!svc ||
            svc->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
            strcmp(svc->string_value,
                   json_object_get_string(json_object_object_get(t, "service")))) {
            snprintf(bad, bad_size, "span %s: service.name", sid);
            goto out;
        }
        json_object_object_foreach(json_object_object_get(t, "attributes"), key, want)
        {
            const sp_otlp_any *got = find_attr(s->attributes, s->n_attributes, key);
            bool ok = got != NULL;
            if (ok && json_object_is_type(want, json_type_string))
                ok = got->value_case ==
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                     strcmp(got->string_value, json_object_get_string(want)) == 0;
            else if (ok && json_object_is_type(want, json_type_int))
                ok = got->value_case ==
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE &&
                     got->int_value == json_object_get_int64(want);
            else if (ok && json_object_is_type(want, json_type_boolean))
                ok = got->value_case ==
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
                     !!got->bool_value == json_object_get_boolean(want);
            if (!ok) {
                snprintf(bad, bad_size, "span %s: attribute '%s'", sid, key);
                goto out;
            }
        }
        if (s->n_attributes !=
            (size_t)json_object_object_length(json_object_object_get(t, "attributes"))) {
            snprintf(bad, bad_size, "span %s: %zu attributes", sid, s->n_attributes);
            goto out;
        }
        if (s->start_time_unix_nano == 0 || s->end_time_unix_nano < s->start_time_unix_nano) {
            snprintf(bad, bad_size, "span %s: times", sid);
            goto out;
        }
        /* README: the failing CLIENT span carries an `exception` event. */
        for (size_t e = 0; e < s->n_events; e++)
            if (strcmp(s->events[e]->name, "exception") == 0 && error && s->kind == 3 &&
                s->events[e]->time_unix_nano >= s->start_time_unix_nano &&
                find_attr(s->events[e]->attributes, s->events[e]->n_attributes,
                          "exception.message"))
                exception_events++;
    }
    if (exception_events != 1) {
        snprintf(bad, bad_size, "%zu exception events on failing client spans, want 1",
                 exception_events);
        goto out;
    }
    rc = 0;
out:
    json_object_put(truth);
    return rc;
}

static void check_fixture(enum sp_otlp_encoding enc, const char *body_name, const char *truth_name)
{
    size_t len;
    unsigned char *body = read_fixture(body_name, &len);
    ASSERT(body);
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    struct sp_otlp_decode_info info;
    struct sp_err err = {0};
    int rc = sp_otlp_decode_traces(b, enc, body, len, &info, &err);
    free(body);
    if (rc)
        fprintf(stderr, "  decode: %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(b->u.traces.span_count, 9);
    ASSERT_EQ_INT(info.spans_received, 9);
    ASSERT_EQ_INT(info.spans_rejected, 0);
    char bad[256] = "";
    rc = compare_truth(b->u.traces.req, truth_name, bad, sizeof(bad));
    if (rc)
        fprintf(stderr, "  %s: %s\n", truth_name, bad);
    ASSERT_EQ_INT(rc, 0);
    /* A consumer's private copy (pack + unpack) must see the same request. */
    struct sp_batch *c = sp_batch_clone(b);
    ASSERT(c);
    rc = compare_truth(c->u.traces.req, truth_name, bad, sizeof(bad));
    sp_batch_unref(c);
    sp_batch_unref(b);
    ASSERT_EQ_INT(rc, 0);
}

static void test_fixture_http_proto(void)
{
    check_fixture(SP_OTLP_PROTOBUF, "otlp-http-proto.bin", "otlp-http-proto.sent.json");
}

static void test_fixture_http_json(void)
{
    check_fixture(SP_OTLP_JSON, "otlp-http-json.json", "otlp-http-json.sent.json");
}

/* The gRPC capture goes through the framing first, fed in odd-sized chunks
 * and once gzip-compressed, as DATA frames would bring it. */
static void test_fixture_grpc_framed(void)
{
    size_t len;
    unsigned char *msg = read_fixture("otlp-grpc-message.bin", &len);
    ASSERT(msg);
    for (int compressed = 0; compressed < 2; compressed++) {
        struct sp_buf framed = {0}, gz = {0};
        struct sp_err err = {0};
        if (compressed) {
            ASSERT_EQ_INT(sp_compress(SP_COMPRESSION_GZIP, 6, msg, len, &gz, &err), 0);
            sp_grpc_frame(gz.data, gz.len, &framed);
            framed.data[0] = 1;
        } else {
            sp_grpc_frame(msg, len, &framed);
        }
        struct sp_grpc_reader r = {.max_msg = 4 << 20};
        for (size_t off = 0; off < framed.len; off += 7) {
            size_t n = framed.len - off < 7 ? framed.len - off : 7;
            ASSERT_EQ_INT(sp_grpc_reader_feed(&r, framed.data + off, n, &err), 0);
        }
        struct sp_arena *scratch = sp_arena_create(0);
        const uint8_t *m;
        size_t mlen;
        int rc = sp_grpc_reader_finish(&r, compressed ? "gzip" : NULL, scratch, &m, &mlen, &err);
        if (rc)
            fprintf(stderr, "  finish: %s\n", err.msg);
        ASSERT_EQ_INT(rc, 0);
        ASSERT_EQ_INT(mlen, len);
        struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
        struct sp_otlp_decode_info info;
        rc = sp_otlp_decode_traces(b, SP_OTLP_PROTOBUF, m, mlen, &info, &err);
        char bad[256] = "";
        int cmp =
            rc ? -1
               : compare_truth(b->u.traces.req, "otlp-grpc-message.sent.json", bad, sizeof(bad));
        if (cmp)
            fprintf(stderr, "  %s %s\n", err.msg, bad);
        sp_batch_unref(b);
        sp_arena_destroy(scratch);
        sp_grpc_reader_free(&r);
        sp_buf_free(&framed);
        sp_buf_free(&gz);
        ASSERT_EQ_INT(cmp, 0);
    }
    free(msg);
}

/* JSON and protobuf of the same request carry the same data: JSON decoded,
 * packed by protobuf-c, decoded again, packs to the same bytes. */
static void test_json_roundtrip_through_proto(void)
{
    size_t len;
    unsigned char *body = read_fixture("otlp-http-json.json", &len);
    ASSERT(body);
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_otlp_decode_json(a, body, len, &req, &err), 0);
    free(body);
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *packed = malloc(n);
    protobuf_c_message_pack(&req->base, packed);
    sp_otlp_request *again = NULL;
    ASSERT_EQ_INT(sp_otlp_decode_proto(a, packed, n, &again, &err), 0);
    size_t n2 = protobuf_c_message_get_packed_size(&again->base);
    uint8_t *packed2 = malloc(n2);
    protobuf_c_message_pack(&again->base, packed2);
    int same = n == n2 && memcmp(packed, packed2, n) == 0;
    free(packed);
    free(packed2);
    sp_arena_destroy(a);
    ASSERT(same);
}

static int decode_json_str(const char *json, sp_otlp_request **req, struct sp_arena *a,
                           struct sp_err *err)
{
    return sp_otlp_decode_json(a, (const uint8_t *)json, strlen(json), req, err);
}

static void test_json_mapping_rules(void)
{
    /* snake_case keys, upper-case hex, int64 as number and string, enum
     * names, unknown keys at every level, null values, nested kvlist and
     * array values, base64 bytes. */
    const char *json =
        "{\"resource_spans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"string_value\":\"svc\"}}],\"entityRefs\":[{\"type\":\"x\"}]},"
        "\"unknownTop\":{\"a\":[1,2,{}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":null},\"spans\":["
        "{\"trace_id\":\"5FFAC4D003899550CFFFB52713C907BF\",\"spanId\":\"B41c96d04cebb1d6\","
        "\"parentSpanId\":\"\",\"name\":\"n\",\"kind\":\"SPAN_KIND_SERVER\","
        "\"startTimeUnixNano\":1795303309756000000,\"end_time_unix_nano\":\"1795303309756512206\","
        "\"flags\":769,\"futureField\":true,"
        "\"status\":{\"code\":2,\"message\":\"boom\"},"
        "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},"
        "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"by\",\"value\":{\"bytesValue\":\"aGVsbG8\"}},"
        "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":1},{\"stringValue\":"
        "\"x\"}]}}},"
        "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{"
        "\"boolValue\":false}}]}}},"
        "{\"key\":\"empty\",\"value\":{}}],"
        "\"events\":[{\"timeUnixNano\":\"5\",\"name\":\"ev\",\"attributes\":[]}],"
        "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":"
        "\"0102030405060708\","
        "\"flags\":256}]}]}]}]}";
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    int rc = decode_json_str(json, &req, a, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(req->n_resource_spans, 1);
    const sp_otlp_span *s = req->resource_spans[0]->scope_spans[0]->spans[0];
    char h[40];
    hex(&s->trace_id, h);
    ASSERT_EQ_STR(h, "5ffac4d003899550cfffb52713c907bf");
    hex(&s->span_id, h);
    ASSERT_EQ_STR(h, "b41c96d04cebb1d6");
    ASSERT_EQ_INT(s->parent_span_id.len, 0);
    ASSERT_EQ_INT(s->kind, 2);
    ASSERT_EQ_U64(s->start_time_unix_nano, 1795303309756000000ull);
    ASSERT_EQ_U64(s->end_time_unix_nano, 1795303309756512206ull);
    ASSERT_EQ_INT(s->flags, 769);
    ASSERT_EQ_INT(s->status->code, 2);
    ASSERT_EQ_STR(s->status->message, "boom");
    ASSERT_EQ_STR(req->resource_spans[0]->scope_spans[0]->scope->name, "lib");
    ASSERT_EQ_INT(s->n_attributes, 7);
    ASSERT_EQ_INT(s->attributes[0]->value->int_value, INT64_MIN);
    ASSERT(s->attributes[1]->value->double_value == 1.5);
    ASSERT_EQ_INT(s->attributes[2]->value->bool_value, 1);
    ASSERT_EQ_INT(s->attributes[3]->value->bytes_value.len, 5);
    ASSERT(memcmp(s->attributes[3]->value->bytes_value.data, "hello", 5) == 0);
    ASSERT_EQ_INT(s->attributes[4]->value->array_value->n_values, 2);
    ASSERT_EQ_STR(s->attributes[4]->value->array_value->values[1]->string_value, "x");
    ASSERT_EQ_STR(s->attributes[5]->value->kvlist_value->values[0]->key, "k");
    ASSERT_EQ_INT(s->attributes[6]->value->value_case,
                  OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    ASSERT_EQ_INT(s->n_events, 1);
    ASSERT_EQ_U64(s->events[0]->time_unix_nano, 5);
    ASSERT_EQ_INT(s->n_links, 1);
    ASSERT_EQ_INT(s->links[0]->span_id.len, 8);
    ASSERT_EQ_INT(s->links[0]->flags, 256);
    /* What the JSON mapping built must be a well-formed protobuf-c tree. */
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *packed = malloc(n);
    protobuf_c_message_pack(&req->base, packed);
    sp_otlp_request *again = NULL;
    rc = sp_otlp_decode_proto(a, packed, n, &again, &err);
    free(packed);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(again->resource_spans[0]
                      ->scope_spans[0]
                      ->spans[0]
                      ->attributes[5]
                      ->value->kvlist_value->values[0]
                      ->key,
                  "k");
    sp_arena_destroy(a);
}

static void expect_json_error(const char *json, int code, const char *needle)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    int rc = decode_json_str(json, &req, a, &err);
    sp_arena_destroy(a);
    if (rc != code || !strstr(err.msg, needle))
        fprintf(stderr, "  input %.60s: rc %d msg '%s'\n", json, rc, err.msg);
    ASSERT_EQ_INT(rc, code);
    ASSERT_CONTAINS(err.msg, needle);
}

static void test_json_errors(void)
{
    /* A base64 trace id (what a protobuf JSON mapping would give). */
    expect_json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                      "\"X/rE0AOJlVDP/7UnE8kHvw==\",\"spanId\":\"tByW0EzrsdY=\"}]}]}]}",
                      SP_EDECODE, "resourceSpans[0].scopeSpans[0].spans[0].traceId");
    expect_json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":"
                      "\"tByW0EzrsdY=\"}]}]}]}",
                      SP_EDECODE, "not base64");
    expect_json_error("{\"resourceSpans\":[", SP_EDECODE, "body ends");
    expect_json_error("{\"resourceSpans\":[]} x", SP_EDECODE, "unexpected data at byte 21");
    expect_json_error("{\"resourceSpans\":[}", SP_EDECODE, "invalid JSON at byte");
    expect_json_error("[1]", SP_EDECODE, "must be a JSON object");
    expect_json_error("{\"resourceSpans\":{}}", SP_EDECODE, "'resourceSpans': expected an array");
    expect_json_error(
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SERVERISH\"}]}]}]}",
        SP_EDECODE, "spans[0].kind");
    expect_json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":"
                      "\"12x\"}]}]}]}",
                      SP_EDECODE, "not an integer");
    expect_json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":"
                      "-1}]}]}]}",
                      SP_EDECODE, "negative");
    expect_json_error(
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"flags\":4294967296}]}]}]}", SP_EDECODE,
        "out of range");
    expect_json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":7}]}]}]}",
                      SP_EDECODE, "expected a string");
    expect_json_error("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"x\","
                      "\"value\":{\"bytesValue\":\"!!!\"}}]}}]}",
                      SP_EDECODE, "base64");
    /* Invalid UTF-8 is refused by the tokener. */
    expect_json_error("{\"resourceSpans\":[{\"schemaUrl\":\"\xff\xfe\"}]}", SP_EDECODE,
                      "invalid JSON");
    /* Nesting past the tokener's depth: refused, no deep recursion. */
    char deep[4096];
    size_t o = 0;
    o += (size_t)snprintf(deep, sizeof(deep), "{\"x\":");
    for (int i = 0; i < 1000; i++)
        deep[o++] = '[';
    deep[o] = '\0';
    expect_json_error(deep, SP_EDECODE, "invalid JSON");
}

static void test_json_tree_bound(void)
{
    /* 8 MiB of empty objects: json-c would need gigabytes; refused first. */
    size_t n = 8u << 20;
    char *body = malloc(n + 64);
    size_t o = (size_t)sprintf(body, "{\"resourceSpans\":[");
    while (o + 4 < n) {
        memcpy(body + o, "{},", 3);
        o += 3;
    }
    memcpy(body + o, "{}]}", 5);
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    int rc = sp_otlp_decode_json(a, (uint8_t *)body, strlen(body), &req, &err);
    free(body);
    sp_arena_destroy(a);
    ASSERT_EQ_INT(rc, SP_ETOOBIG);
    ASSERT_CONTAINS(err.msg, "MiB");
}

static void expect_pb_error(const uint8_t *data, size_t len, const char *needle)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    int rc = sp_otlp_decode_proto(a, data, len, &req, &err);
    sp_arena_destroy(a);
    if (rc != SP_EDECODE || !strstr(err.msg, needle))
        fprintf(stderr, "  rc %d msg '%s'\n", rc, err.msg);
    ASSERT_EQ_INT(rc, SP_EDECODE);
    ASSERT_CONTAINS(err.msg, needle);
}

static void test_proto_errors(void)
{
    size_t len;
    unsigned char *body = read_fixture("otlp-http-proto.bin", &len);
    ASSERT(body);
    /* Truncated anywhere inside: the outer length runs past the end. */
    expect_pb_error(body, len - 10, "runs past the end");
    expect_pb_error(body, 1, "truncated length");
    free(body);
    /* resource_spans[0].scope_spans[0].spans[0].kind sent length-delimited. */
    static const uint8_t wrong_kind[] = {0x0a, 0x08, 0x12, 0x06, 0x12,
                                         0x04, 0x32, 0x02, 0x00, 0x00};
    expect_pb_error(wrong_kind, sizeof(wrong_kind),
                    "'resource_spans[0].scope_spans[0].spans[0].kind': wire type 2");
    /* Span.flags (fixed32) sent as a varint. */
    static const uint8_t wrong_flags[] = {0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x80, 0x01, 0x01};
    expect_pb_error(wrong_flags, sizeof(wrong_flags), "spans[0].flags': wire type 0");
    /* A group wire type. */
    static const uint8_t group[] = {0x0b};
    expect_pb_error(group, sizeof(group), "unsupported wire type 3");
    /* Field number 0. */
    static const uint8_t zero[] = {0x00, 0x00};
    expect_pb_error(zero, sizeof(zero), "invalid field number 0");
    /* A varint that never ends. */
    static const uint8_t endless[] = {0x0a, 0x03, 0x12, 0x01, 0xff};
    expect_pb_error(endless, sizeof(endless), "truncated");
    /* AnyValue.array_value nested 300 levels deep: refused before
     * protobuf-c recurses. Built inside out with multi-byte lengths. */
    struct sp_buf any = {0};
    for (int i = 0; i < 300; i++) {
        /* ArrayValue{ values: any } then AnyValue{ array_value: that } */
        struct sp_buf arr = {0}, next = {0};
        uint8_t hdr[12];
        size_t h = 0;
        hdr[h++] = 0x0a;
        for (size_t v = any.len;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        sp_buf_append(&arr, hdr, h);
        sp_buf_append(&arr, any.data, any.len);
        h = 0;
        hdr[h++] = 0x2a;
        for (size_t v = arr.len;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        sp_buf_append(&next, hdr, h);
        sp_buf_append(&next, arr.data, arr.len);
        sp_buf_free(&arr);
        sp_buf_free(&any);
        any = next;
    }
    /* Wrap: KeyValue{value(2)=any} in Resource{attributes(1)} in
     * ResourceSpans{resource(1)} in Request{resource_spans(1)}. */
    static const uint8_t tags[] = {0x12, 0x0a, 0x0a, 0x0a};
    for (size_t t = 0; t < sizeof(tags); t++) {
        struct sp_buf next = {0};
        uint8_t hdr[12];
        size_t h = 0;
        hdr[h++] = tags[t];
        for (size_t v = any.len;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        sp_buf_append(&next, hdr, h);
        sp_buf_append(&next, any.data, any.len);
        sp_buf_free(&any);
        any = next;
    }
    expect_pb_error(any.data, any.len, "nested deeper than 64");
    sp_buf_free(&any);
}

/* Appends field `num` as a length-delimited value holding p[0..n). */
static void pb_ld(struct sp_buf *out, unsigned num, const void *p, size_t n)
{
    uint8_t hdr[12];
    size_t h = 0;
    hdr[h++] = (uint8_t)(num << 3 | 2);
    for (size_t v = n;; v >>= 7) {
        hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    sp_buf_append(out, hdr, h);
    sp_buf_append(out, p, n);
}

/* Error paths name the right occurrence of each repeated field at every
 * level (the indexes are worked out only once something failed). */
static void test_proto_error_paths(void)
{
    struct sp_buf good_kv = {0}, bad_kv = {0}, span = {0}, bad_span = {0};
    struct sp_buf ss = {0}, rs = {0}, req = {0};
    /* KeyValue{key "k", value AnyValue{string_value "v"}} */
    static const uint8_t str_any[] = {0x0a, 0x01, 'v'};
    pb_ld(&good_kv, 1, "k", 1);
    pb_ld(&good_kv, 2, str_any, sizeof(str_any));
    /* AnyValue{int_value (3, a varint) sent length-delimited} */
    static const uint8_t bad_any[] = {0x1a, 0x01, 0x05};
    pb_ld(&bad_kv, 1, "b", 1);
    pb_ld(&bad_kv, 2, bad_any, sizeof(bad_any));
    /* Span{name, attributes[0] good, attributes[1] bad}; two good spans first. */
    pb_ld(&span, 5, "s", 1);
    pb_ld(&span, 9, good_kv.data, good_kv.len);
    pb_ld(&bad_span, 5, "s", 1);
    pb_ld(&bad_span, 9, good_kv.data, good_kv.len);
    pb_ld(&bad_span, 9, bad_kv.data, bad_kv.len);
    pb_ld(&ss, 2, span.data, span.len);
    pb_ld(&ss, 2, span.data, span.len);
    pb_ld(&ss, 2, bad_span.data, bad_span.len);
    pb_ld(&rs, 2, ss.data, ss.len);
    /* resource_spans[0] is a good one, the bad span is in resource_spans[1]. */
    struct sp_buf good_rs = {0};
    pb_ld(&good_rs, 2, span.data, span.len);
    struct sp_buf good_ss = {0};
    pb_ld(&good_ss, 2, good_rs.data, good_rs.len);
    pb_ld(&req, 1, good_ss.data, good_ss.len);
    pb_ld(&req, 1, rs.data, rs.len);
    expect_pb_error(req.data, req.len,
                    "'resource_spans[1].scope_spans[0].spans[2].attributes[1].value.int_value': "
                    "wire type 2 (length-delimited) at byte 75 where a varint was expected");
    /* The same request without its last byte: the outermost length is the
     * first to run past the end. */
    expect_pb_error(req.data, req.len - 1,
                    "'(request)': field 1: length 57 at byte 20 runs past the end of its message "
                    "(56 bytes left)");
    struct sp_buf *all[] = {&good_kv, &bad_kv, &span, &bad_span, &ss,
                            &rs,      &req,    &good_rs, &good_ss};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sp_buf_free(all[i]);
}

/* ---- the single-pass decoder against protobuf-c --------------------------- */

/* Decodes data with sp_otlp_pb_decode and with the reference (wire check +
 * protobuf-c); both must accept and pack to the same bytes. *out is the
 * decoder's message (NULL on failure), in *arena (always created: the
 * caller destroys it), for field checks. */
static void same_as_protobuf_c(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                               size_t len, struct sp_arena **arena, ProtobufCMessage **out)
{
    ProtobufCMessage *m_ref = NULL, *m = NULL;
    struct sp_err e1 = {0}, e2 = {0};
    *arena = sp_arena_create(0);
    *out = NULL;
    struct sp_arena *ref = sp_arena_create(0);
    int rc1 = sp_otlp_decode_msg(ref, desc, SP_OTLP_PROTOBUF, data, len, &m_ref, &e1);
    int rc2 = sp_otlp_pb_decode(*arena, desc, data, len, &m, &e2);
    uint8_t *p1 = NULL, *p2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (rc1 == 0 && rc2 == 0) {
        n1 = protobuf_c_message_get_packed_size(m_ref);
        n2 = protobuf_c_message_get_packed_size(m);
        p1 = malloc(n1 + 1);
        p2 = malloc(n2 + 1);
        protobuf_c_message_pack(m_ref, p1);
        protobuf_c_message_pack(m, p2);
    }
    bool same = rc1 == 0 && rc2 == 0 && n1 == n2 && memcmp(p1, p2, n1) == 0;
    free(p1);
    free(p2);
    sp_arena_destroy(ref);
    if (!same)
        fprintf(stderr, "  reference rc %d '%s', decoder rc %d '%s', packed %zu vs %zu bytes\n",
                rc1, e1.msg, rc2, e2.msg, n1, n2);
    ASSERT(same);
    *out = m;
}

/* Both refuse; the decoder's message contains needle. */
static void both_refuse(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const char *needle)
{
    struct sp_arena *ref = sp_arena_create(0), *a = sp_arena_create(0);
    ProtobufCMessage *m = NULL;
    struct sp_err e1 = {0}, e2 = {0};
    ASSERT(sp_otlp_decode_msg(ref, desc, SP_OTLP_PROTOBUF, data, len, &m, &e1) != 0);
    ASSERT_EQ_INT(sp_otlp_pb_decode(a, desc, data, len, &m, &e2), SP_EDECODE);
    ASSERT_CONTAINS(e2.msg, needle);
    sp_arena_destroy(ref);
    sp_arena_destroy(a);
}

static void test_pb_decode_fixtures(void)
{
    const ProtobufCMessageDescriptor *desc = sp_otlp_request_desc(SP_SIGNAL_TRACES);
    static const char *const names[] = {"otlp-http-proto.bin", "otlp-grpc-message.bin"};
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        unsigned char *body = read_fixture(names[i], &len);
        ASSERT(body);
        if (!body)
            continue;
        struct sp_arena *a;
        ProtobufCMessage *m;
        same_as_protobuf_c(desc, body, len, &a, &m);
        sp_otlp_request *req = (sp_otlp_request *)m;
        ASSERT(req && req->n_resource_spans > 0);
        if (req) {
            const sp_otlp_resource_spans *rs = req->resource_spans[0];
            ASSERT(rs->resource && rs->resource->n_attributes > 0);
            ASSERT_EQ_STR(rs->resource->attributes[0]->key, "service.name");
            ASSERT(rs->n_scope_spans > 0 && rs->scope_spans[0]->n_spans > 0);
            ASSERT_EQ_INT((long)rs->scope_spans[0]->spans[0]->trace_id.len, 16);
        }
        sp_arena_destroy(a);
        free(body);
    }
}

/* protobuf-c's field semantics, kept: unknown fields, last scalar wins,
 * a singular message given twice merged (with its proto3-scalar quirk),
 * oneof last wins, packed and unpacked repeated scalars (metrics). */
static void test_pb_decode_semantics(void)
{
    const ProtobufCMessageDescriptor *traces = sp_otlp_request_desc(SP_SIGNAL_TRACES);
    struct sp_buf span = {0}, ss = {0}, rs = {0}, req = {0}, kv = {0};
    /* Span: name twice, an unknown varint (50) and an unknown
     * length-delimited field (51), status twice ({code 2} then {message
     * "m"}), an attribute whose AnyValue is a string then an int. */
    pb_ld(&span, 5, "first", 5);
    pb_ld(&span, 5, "second", 6);
    static const uint8_t unknown_varint[] = {0x90, 0x03, 0x2a}; /* field 50, varint 42 */
    sp_buf_append(&span, unknown_varint, sizeof(unknown_varint));
    static const uint8_t unknown_ld[] = {0x9a, 0x03, 0x03, 'x', 'y', 'z'}; /* field 51 */
    sp_buf_append(&span, unknown_ld, sizeof(unknown_ld));
    static const uint8_t code2[] = {0x18, 0x02};
    pb_ld(&span, 15, code2, sizeof(code2));
    pb_ld(&span, 15, "\x12\x01m", 3);
    static const uint8_t str_then_int[] = {0x0a, 0x01, 's', 0x18, 0x07};
    pb_ld(&kv, 1, "k", 1);
    pb_ld(&kv, 2, str_then_int, sizeof(str_then_int));
    pb_ld(&span, 9, kv.data, kv.len);
    pb_ld(&ss, 2, span.data, span.len);
    pb_ld(&rs, 2, ss.data, ss.len);
    pb_ld(&req, 1, rs.data, rs.len);
    struct sp_arena *a;
    ProtobufCMessage *m;
    same_as_protobuf_c(traces, req.data, req.len, &a, &m);
    sp_otlp_request *r = (sp_otlp_request *)m;
    if (r) {
        const sp_otlp_span *s = r->resource_spans[0]->scope_spans[0]->spans[0];
        ASSERT_EQ_STR(s->name, "second");
        ASSERT_EQ_INT((long)s->base.n_unknown_fields, 2);
        ASSERT_EQ_INT((long)s->base.unknown_fields[0].tag, 50);
        ASSERT_EQ_INT((long)s->base.unknown_fields[1].len, 4); /* length prefix and "xyz" */
        ASSERT(s->status);
        ASSERT_EQ_STR(s->status->message, "m");
        ASSERT_EQ_INT(s->status->code, 0); /* protobuf-c keeps the later {message}'s code */
        ASSERT_EQ_INT(s->attributes[0]->value->value_case,
                      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
        ASSERT_EQ_INT(s->attributes[0]->value->int_value, 7);
    }
    sp_arena_destroy(a);

    /* KeyValue.value given twice, neither setting the oneof: protobuf-c
     * cannot merge them (merge_messages fails), so both refuse. */
    sp_buf_reset(&kv);
    pb_ld(&kv, 1, "k", 1);
    pb_ld(&kv, 2, "", 0);
    pb_ld(&kv, 2, "", 0);
    struct sp_buf res = {0}, rs2 = {0}, req2 = {0};
    pb_ld(&res, 1, kv.data, kv.len);
    pb_ld(&rs2, 1, res.data, res.len);
    pb_ld(&req2, 1, rs2.data, rs2.len);
    both_refuse(traces, req2.data, req2.len, "'resource_spans[0].resource.attributes[0].value'");
    /* A field tag in 6 bytes (protobuf-c reads at most 5). */
    static const uint8_t long_tag[] = {0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
    both_refuse(traces, long_tag, sizeof(long_tag), "longer than 5 bytes");
    /* A length prefix in 6 bytes. */
    static const uint8_t long_len[] = {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    both_refuse(traces, long_len, sizeof(long_len), "over 5 bytes");

    /* Metrics: HistogramDataPoint with bucket_counts packed then one more
     * unpacked, explicit_bounds packed, sum (a proto3 optional) twice;
     * ExponentialHistogram buckets with packed varints and a sint32. */
    struct sp_buf dp = {0}, hist = {0}, metric = {0}, sm = {0}, rm = {0}, mreq = {0};
    static const uint8_t counts[16] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
    pb_ld(&dp, 6, counts, sizeof(counts));
    static const uint8_t one_count[] = {0x31, 3, 0, 0, 0, 0, 0, 0, 0};
    sp_buf_append(&dp, one_count, sizeof(one_count));
    static const uint8_t bounds[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}; /* 1.0 */
    pb_ld(&dp, 7, bounds, sizeof(bounds));
    static const uint8_t sums[] = {0x29, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x29, 0, 0, 0, 0, 0, 0, 0x08, 0x40};
    sp_buf_append(&dp, sums, sizeof(sums));
    pb_ld(&hist, 1, dp.data, dp.len);
    pb_ld(&metric, 1, "h", 1);
    pb_ld(&metric, 9, hist.data, hist.len);
    struct sp_buf buckets = {0}, edp = {0}, ehist = {0}, metric2 = {0};
    static const uint8_t offset[] = {0x08, 0x03}; /* sint32 -2 */
    sp_buf_append(&buckets, offset, sizeof(offset));
    static const uint8_t varints[] = {0x01, 0x96, 0x01, 0xff, 0xff, 0x03};
    pb_ld(&buckets, 2, varints, sizeof(varints));
    static const uint8_t scale[] = {0x30, 0x05}; /* sint32 -3 */
    sp_buf_append(&edp, scale, sizeof(scale));
    pb_ld(&edp, 8, buckets.data, buckets.len);
    pb_ld(&ehist, 1, edp.data, edp.len);
    pb_ld(&metric2, 1, "e", 1);
    pb_ld(&metric2, 10, ehist.data, ehist.len);
    pb_ld(&sm, 2, metric.data, metric.len);
    pb_ld(&sm, 2, metric2.data, metric2.len);
    pb_ld(&rm, 2, sm.data, sm.len);
    pb_ld(&mreq, 1, rm.data, rm.len);
    same_as_protobuf_c(sp_otlp_request_desc(SP_SIGNAL_METRICS), mreq.data, mreq.len, &a, &m);
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *mr =
        (const void *)m;
    if (mr) {
        Opentelemetry__Proto__Metrics__V1__Metric *const *ms =
            mr->resource_metrics[0]->scope_metrics[0]->metrics;
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *h =
            ms[0]->histogram->data_points[0];
        ASSERT_EQ_INT((long)h->n_bucket_counts, 3);
        ASSERT_EQ_INT((long)h->bucket_counts[2], 3);
        ASSERT(h->n_explicit_bounds == 1 && h->explicit_bounds[0] == 1.0);
        ASSERT(h->_sum_case != 0 && h->sum == 3.0);
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *e =
            ms[1]->exponential_histogram->data_points[0];
        ASSERT_EQ_INT(e->scale, -3);
        ASSERT_EQ_INT(e->positive->offset, -2);
        ASSERT_EQ_INT((long)e->positive->n_bucket_counts, 3);
        ASSERT_EQ_INT((long)e->positive->bucket_counts[1], 150);
        ASSERT_EQ_INT((long)e->positive->bucket_counts[2], 65535);
    }
    sp_arena_destroy(a);
    struct sp_buf *all[] = {&span, &ss, &rs, &req, &kv, &res, &rs2, &req2, &dp, &hist, &metric,
                            &sm, &rm, &mreq, &buckets, &edp, &ehist, &metric2};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sp_buf_free(all[i]);
}

static void test_validation(void)
{
    const char *json =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0000000000000000\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"01020304050607\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060709\","
        "\"parentSpanId\":\"0102\"},"
        "{\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060709\","
        "\"parentSpanId\":\"0102030405060708\",\"name\":\"kept\"}"
        "]}]}]}";
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    struct sp_otlp_decode_info info;
    struct sp_err err = {0};
    ASSERT_EQ_INT(
        sp_otlp_decode_traces(b, SP_OTLP_JSON, (const uint8_t *)json, strlen(json), &info, &err),
        0);
    ASSERT_EQ_INT(info.spans_received, 8);
    ASSERT_EQ_INT(info.spans_rejected, 6);
    ASSERT_EQ_INT(b->u.traces.span_count, 2);
    ASSERT_EQ_INT(sp_traces_count_spans(b->u.traces.req), 2);
    ASSERT_EQ_STR(b->u.traces.req->resource_spans[0]->scope_spans[0]->spans[1]->name, "kept");
    ASSERT_CONTAINS(info.message, "6 invalid spans rejected");
    ASSERT_CONTAINS(info.message, "spans[1]: trace_id is all zeroes");
    sp_batch_unref(b);
}

static void test_grpc_reader_errors(void)
{
    struct sp_err err = {0};
    struct sp_arena *scratch = sp_arena_create(0);
    const uint8_t *m;
    size_t mlen;

    /* A prefix declaring more than the limit fails as soon as it is in. */
    struct sp_grpc_reader r = {.max_msg = 100};
    static const uint8_t big[] = {0, 0, 0, 0, 101};
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r, big, 3, &err), 0);
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r, big + 3, 2, &err), SP_ETOOBIG);
    ASSERT_CONTAINS(err.msg, "101 bytes is over the limit of 100");
    sp_grpc_reader_free(&r);

    /* Length prefix larger than what the stream carries. */
    struct sp_grpc_reader r2 = {.max_msg = 100};
    static const uint8_t trunc[] = {0, 0, 0, 0, 50, 1, 2, 3};
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r2, trunc, sizeof(trunc), &err), 0);
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r2, NULL, scratch, &m, &mlen, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "declares 50 bytes, the stream ended after 3");
    sp_grpc_reader_free(&r2);

    /* Two messages on a unary call. */
    struct sp_grpc_reader r3 = {.max_msg = 100};
    static const uint8_t two[] = {0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0};
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r3, two, sizeof(two), &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "more than one");
    sp_grpc_reader_free(&r3);

    /* No message, short prefix, bad flag. */
    struct sp_grpc_reader r4 = {.max_msg = 100};
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r4, NULL, scratch, &m, &mlen, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "no message");
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r4, two, 2, &err), 0);
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r4, NULL, scratch, &m, &mlen, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "prefix truncated");
    sp_grpc_reader_free(&r4);
    struct sp_grpc_reader r5 = {.max_msg = 100};
    static const uint8_t flag2[] = {2, 0, 0, 0, 0};
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r5, flag2, 5, &err), SP_EDECODE);
    sp_grpc_reader_free(&r5);

    /* Compressed flag without grpc-encoding; unknown encoding. */
    struct sp_grpc_reader r6 = {.max_msg = 100};
    static const uint8_t c1[] = {1, 0, 0, 0, 1, 7};
    ASSERT_EQ_INT(sp_grpc_reader_feed(&r6, c1, sizeof(c1), &err), 0);
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r6, NULL, scratch, &m, &mlen, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "compressed flag");
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r6, "snappy", scratch, &m, &mlen, &err), SP_EUNSUPPORTED);
    ASSERT_EQ_INT(sp_grpc_reader_finish(&r6, "gzip", scratch, &m, &mlen, &err), SP_EDECODE);
    sp_grpc_reader_free(&r6);

    /* A gzip bomb: 4 MiB of zeroes in a few KiB, limit 64 KiB. */
    size_t zn = 4u << 20;
    uint8_t *zeros = calloc(1, zn);
    for (int zstd = 0; zstd < 2; zstd++) {
        struct sp_buf gz = {0}, framed = {0};
        ASSERT_EQ_INT(
            sp_compress(zstd ? SP_COMPRESSION_ZSTD : SP_COMPRESSION_GZIP, 9, zeros, zn, &gz, &err),
            0);
        ASSERT(gz.len < 20000);
        sp_grpc_frame(gz.data, gz.len, &framed);
        framed.data[0] = 1;
        struct sp_grpc_reader r7 = {.max_msg = 64 << 10};
        ASSERT_EQ_INT(sp_grpc_reader_feed(&r7, framed.data, framed.len, &err), 0);
        ASSERT_EQ_INT(sp_grpc_reader_finish(&r7, zstd ? "zstd" : "gzip", scratch, &m, &mlen, &err),
                      SP_ETOOBIG);
        ASSERT_CONTAINS(err.msg, "inflates past the limit of 65536");
        ASSERT(sp_arena_bytes(scratch) < (1u << 20));
        sp_grpc_reader_free(&r7);
        sp_buf_free(&gz);
        sp_buf_free(&framed);
    }
    free(zeros);
    sp_arena_destroy(scratch);
}

static void test_answers(void)
{
    struct sp_buf b = {0};
    ASSERT_EQ_INT(sp_otlp_encode_response(SP_OTLP_JSON, 0, NULL, &b), 0);
    ASSERT_EQ_STR((char *)b.data, "{}");
    sp_buf_reset(&b);
    ASSERT_EQ_INT(sp_otlp_encode_response(SP_OTLP_JSON, 3, "bad \"ids\"", &b), 0);
    ASSERT_EQ_STR(
        (char *)b.data,
        "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":\"bad \\\"ids\\\"\"}}");
    sp_buf_reset(&b);
    ASSERT_EQ_INT(sp_otlp_encode_response(SP_OTLP_PROTOBUF, 0, NULL, &b), 0);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_EQ_INT(sp_otlp_encode_response(SP_OTLP_PROTOBUF, 2, "why", &b), 0);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, b.len, b.data);
    ASSERT(resp && resp->partial_success);
    ASSERT_EQ_INT(resp->partial_success->rejected_spans, 2);
    ASSERT_EQ_STR(resp->partial_success->error_message, "why");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
    sp_buf_reset(&b);
    ASSERT_EQ_INT(sp_otlp_encode_status(SP_OTLP_JSON, 3, "x", &b), 0);
    ASSERT_EQ_STR((char *)b.data, "{\"code\":3,\"message\":\"x\"}");
    sp_buf_reset(&b);
    ASSERT_EQ_INT(sp_otlp_encode_status(SP_OTLP_PROTOBUF, 8, "too big", &b), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, b.data);
    ASSERT(st);
    ASSERT_EQ_INT(st->code, 8);
    ASSERT_EQ_STR(st->message, "too big");
    google__rpc__status__free_unpacked(st, NULL);
    sp_buf_free(&b);

    ASSERT_EQ_INT(sp_otlp_content_type("application/x-protobuf"), SP_OTLP_PROTOBUF);
    ASSERT_EQ_INT(sp_otlp_content_type("Application/JSON; charset=utf-8"), SP_OTLP_JSON);
    ASSERT_EQ_INT(sp_otlp_content_type(" application/json ;charset=utf-8"), SP_OTLP_JSON);
    ASSERT_EQ_INT(sp_otlp_content_type("application/jsonx"), -1);
    ASSERT_EQ_INT(sp_otlp_content_type("text/plain"), -1);
    ASSERT_EQ_INT(sp_otlp_content_type(NULL), -1);

    char pe[64];
    sp_grpc_percent_encode("50% bad\n\xc3\xa9", pe, sizeof(pe));
    ASSERT_EQ_STR(pe, "50%25 bad%0A%C3%A9");
    sp_grpc_percent_encode("abcdef", pe, 4);
    ASSERT_EQ_STR(pe, "abc");
}

/* Metrics and logs: decoded and counted; protobuf input kept byte for
 * byte, JSON input re-encoded as protobuf that decodes to the same data. */
static void test_passthrough(void)
{
    static const char metrics_json[] =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"m\"}}]},\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"c\",\"sum\":{\"dataPoints\":[{\"asInt\":\"7\"},{\"asInt\":\"8\"}],"
        "\"aggregationTemporality\":2,\"isMonotonic\":true}},"
        "{\"name\":\"h\",\"histogram\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3,"
        "\"bucketCounts\":[\"1\",\"1\"],\"explicitBounds\":[1],\"min\":0.5}]}},"
        "{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asDouble\":0.25,"
        "\"exemplars\":[{\"spanId\":\"0102030405060708\",\"asInt\":\"1\"}]}]}}]}]}]}";
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_METRICS, 0);
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_otlp_decode_passthrough(b, SP_OTLP_JSON, (const uint8_t *)metrics_json,
                                             strlen(metrics_json), &err), 0);
    ASSERT_EQ_U64(b->u.otlp.item_count, 4);
    ASSERT(b->u.otlp.pb_len > 0);
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *m =
        (const void *)b->u.otlp.req;
    const Opentelemetry__Proto__Metrics__V1__Metric *h =
        m->resource_metrics[0]->scope_metrics[0]->metrics[1];
    ASSERT_EQ_INT(h->histogram->data_points[0]->_sum_case,
                  OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    ASSERT(h->histogram->data_points[0]->min == 0.5);
    const Opentelemetry__Proto__Metrics__V1__Exemplar *ex =
        m->resource_metrics[0]->scope_metrics[0]->metrics[2]->gauge->data_points[0]->exemplars[0];
    ASSERT_EQ_U64(ex->span_id.len, 8); /* hex in JSON, as trace and span ids everywhere */
    ASSERT_EQ_INT(ex->span_id.data[7], 8);

    /* The re-encoding is the protobuf of the same request: decoded again it
     * counts the same, and being protobuf it is now kept byte for byte. */
    struct sp_batch *p = sp_batch_create(SP_SIGNAL_METRICS, 0);
    ASSERT_EQ_INT(sp_otlp_decode_passthrough(p, SP_OTLP_PROTOBUF, b->u.otlp.pb, b->u.otlp.pb_len,
                                             &err), 0);
    ASSERT_EQ_U64(p->u.otlp.item_count, 4);
    ASSERT_EQ_U64(p->u.otlp.pb_len, b->u.otlp.pb_len);
    ASSERT(memcmp(p->u.otlp.pb, b->u.otlp.pb, p->u.otlp.pb_len) == 0);
    ASSERT(p->u.otlp.pb != b->u.otlp.pb); /* a copy in its own arena */
    struct sp_batch *c = sp_batch_clone(p);
    ASSERT(c && c->u.otlp.pb_len == p->u.otlp.pb_len &&
           memcmp(c->u.otlp.pb, p->u.otlp.pb, p->u.otlp.pb_len) == 0 && c->u.otlp.item_count == 4);
    sp_batch_unref(c);
    sp_batch_unref(p);
    sp_batch_unref(b);

    static const char logs_json[] =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":\"SEVERITY_"
        "NUMBER_WARN\",\"body\":{\"stringValue\":\"x\"},\"traceId\":\"0102030405060708090a0b0c0d"
        "0e0f10\"},{}]},{\"logRecords\":[{}]}]}]}";
    b = sp_batch_create(SP_SIGNAL_LOGS, 0);
    ASSERT_EQ_INT(sp_otlp_decode_passthrough(b, SP_OTLP_JSON, (const uint8_t *)logs_json,
                                             strlen(logs_json), &err), 0);
    ASSERT_EQ_U64(b->u.otlp.item_count, 3);
    sp_batch_unref(b);

    /* Errors name the field path, as for traces. */
    static const char bad[] = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":"
                              "[{\"timeUnixNano\":\"soon\"}]}]}]}";
    b = sp_batch_create(SP_SIGNAL_LOGS, 0);
    ASSERT_EQ_INT(sp_otlp_decode_passthrough(b, SP_OTLP_JSON, (const uint8_t *)bad, strlen(bad),
                                             &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano");
    sp_batch_unref(b);
    static const uint8_t truncated[] = {0x0a, 0x04, 0x12, 0x02, 0x12, 0x05};
    b = sp_batch_create(SP_SIGNAL_METRICS, 0);
    ASSERT_EQ_INT(sp_otlp_decode_passthrough(b, SP_OTLP_PROTOBUF, truncated, sizeof(truncated),
                                             &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "resource_metrics[0].scope_metrics[0]");
    sp_batch_unref(b);
}

int main(void)
{
    RUN(test_passthrough);
    RUN(test_fixture_http_proto);
    RUN(test_fixture_http_json);
    RUN(test_fixture_grpc_framed);
    RUN(test_json_roundtrip_through_proto);
    RUN(test_json_mapping_rules);
    RUN(test_json_errors);
    RUN(test_json_tree_bound);
    RUN(test_proto_errors);
    RUN(test_proto_error_paths);
    RUN(test_pb_decode_fixtures);
    RUN(test_pb_decode_semantics);
    RUN(test_validation);
    RUN(test_grpc_reader_errors);
    RUN(test_answers);
    return sp_test_summary();
}
