/* Test helper: builds OTLP protobuf-c structs (in an arena) from a compact
 * JSON description, for the Datadog mapping tests.
 *
 *   resource / scope.attributes / span.attributes / event.attributes:
 *     {"key": value}; value: string, integer (int), number with a fraction
 *     (double), bool, array (array value), {"double": x}, {"int": n},
 *     other objects (kvlist).
 *   span: trace_id / span_id / parent_span_id (hex), flags, name,
 *     kind ("server", "client", "producer", "consumer", "internal",
 *     "unspecified"), start / end (ns as strings), trace_state,
 *     status {"code", "message"}, events [{"time", "name", "attributes"}],
 *     links [{"trace_id", "span_id", "trace_state", "attributes"}]. */
#ifndef TEST_DD_MAPPING_BUILD_H
#define TEST_DD_MAPPING_BUILD_H

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "sp_arena.h"
#include "sp_batch.h"

#define TB_AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

static sp_otlp_any *tb_any(struct sp_arena *a, json_object *j);

static sp_otlp_kv **tb_kvs(struct sp_arena *a, json_object *obj, size_t *n)
{
    *n = 0;
    if (!obj || !json_object_is_type(obj, json_type_object))
        return NULL;
    size_t cnt = (size_t)json_object_object_length(obj);
    sp_otlp_kv **v = sp_arena_calloc(a, cnt ? cnt : 1, sizeof *v);
    json_object_object_foreach(obj, key, val)
    {
        sp_otlp_kv *kv = sp_arena_alloc(a, sizeof *kv);
        opentelemetry__proto__common__v1__key_value__init(kv);
        kv->key = sp_arena_strdup(a, key);
        kv->value = tb_any(a, val);
        v[(*n)++] = kv;
    }
    return v;
}

static sp_otlp_any *tb_any(struct sp_arena *a, json_object *j)
{
    sp_otlp_any *v = sp_arena_alloc(a, sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    switch (json_object_get_type(j)) {
    case json_type_string:
        v->value_case = TB_AV(STRING_VALUE);
        v->string_value = sp_arena_strdup(a, json_object_get_string(j));
        break;
    case json_type_int:
        v->value_case = TB_AV(INT_VALUE);
        v->int_value = json_object_get_int64(j);
        break;
    case json_type_double:
        v->value_case = TB_AV(DOUBLE_VALUE);
        v->double_value = json_object_get_double(j);
        break;
    case json_type_boolean:
        v->value_case = TB_AV(BOOL_VALUE);
        v->bool_value = json_object_get_boolean(j);
        break;
    case json_type_array: {
        size_t n = json_object_array_length(j);
        Opentelemetry__Proto__Common__V1__ArrayValue *arr = sp_arena_alloc(a, sizeof *arr);
        opentelemetry__proto__common__v1__array_value__init(arr);
        arr->values = sp_arena_calloc(a, n ? n : 1, sizeof *arr->values);
        for (size_t i = 0; i < n; i++)
            arr->values[arr->n_values++] = tb_any(a, json_object_array_get_idx(j, i));
        v->value_case = TB_AV(ARRAY_VALUE);
        v->array_value = arr;
        break;
    }
    case json_type_object: {
        json_object *x;
        if (json_object_object_get_ex(j, "double", &x)) {
            v->value_case = TB_AV(DOUBLE_VALUE);
            v->double_value = json_object_get_double(x);
        } else if (json_object_object_get_ex(j, "int", &x)) {
            v->value_case = TB_AV(INT_VALUE);
            v->int_value = json_object_get_int64(x);
        } else {
            Opentelemetry__Proto__Common__V1__KeyValueList *kl = sp_arena_alloc(a, sizeof *kl);
            opentelemetry__proto__common__v1__key_value_list__init(kl);
            kl->values = tb_kvs(a, j, &kl->n_values);
            v->value_case = TB_AV(KVLIST_VALUE);
            v->kvlist_value = kl;
        }
        break;
    }
    default:
        break;
    }
    return v;
}

static ProtobufCBinaryData tb_hex(struct sp_arena *a, const char *hex)
{
    ProtobufCBinaryData b = {0, NULL};
    size_t n = hex ? strlen(hex) / 2 : 0;
    if (!n)
        return b;
    b.data = sp_arena_alloc(a, n);
    for (size_t i = 0; i < n; i++) {
        char t[3] = {hex[2 * i], hex[2 * i + 1], 0};
        b.data[i] = (uint8_t)strtoul(t, NULL, 16);
    }
    b.len = n;
    return b;
}

static const char *tb_str(json_object *o, const char *key, const char *def)
{
    json_object *x;
    if (o && json_object_object_get_ex(o, key, &x) && json_object_is_type(x, json_type_string))
        return json_object_get_string(x);
    return def;
}

static json_object *tb_get(json_object *o, const char *key)
{
    json_object *x;
    return o && json_object_object_get_ex(o, key, &x) ? x : NULL;
}

static int tb_kind(const char *k)
{
    static const char *const names[] = {"unspecified", "internal", "server",
                                        "client",      "producer", "consumer"};
    for (int i = 0; i < 6; i++)
        if (strcmp(k, names[i]) == 0)
            return i;
    return 0;
}

static sp_otlp_span *tb_span(struct sp_arena *a, json_object *j)
{
    sp_otlp_span *s = sp_arena_alloc(a, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = tb_hex(a, tb_str(j, "trace_id", ""));
    s->span_id = tb_hex(a, tb_str(j, "span_id", ""));
    s->parent_span_id = tb_hex(a, tb_str(j, "parent_span_id", ""));
    s->name = sp_arena_strdup(a, tb_str(j, "name", ""));
    s->kind = tb_kind(tb_str(j, "kind", "internal"));
    s->start_time_unix_nano = strtoull(tb_str(j, "start", "0"), NULL, 10);
    s->end_time_unix_nano = strtoull(tb_str(j, "end", "0"), NULL, 10);
    s->trace_state = sp_arena_strdup(a, tb_str(j, "trace_state", ""));
    json_object *x = tb_get(j, "flags");
    if (x)
        s->flags = (uint32_t)json_object_get_int(x);
    s->attributes = tb_kvs(a, tb_get(j, "attributes"), &s->n_attributes);
    if ((x = tb_get(j, "status"))) {
        s->status = sp_arena_alloc(a, sizeof *s->status);
        opentelemetry__proto__trace__v1__status__init(s->status);
        json_object *c = tb_get(x, "code");
        s->status->code = c ? json_object_get_int(c) : 0;
        s->status->message = sp_arena_strdup(a, tb_str(x, "message", ""));
    }
    if ((x = tb_get(j, "events"))) {
        size_t n = json_object_array_length(x);
        s->events = sp_arena_calloc(a, n ? n : 1, sizeof *s->events);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(x, i);
            Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp_arena_alloc(a, sizeof *ev);
            opentelemetry__proto__trace__v1__span__event__init(ev);
            ev->time_unix_nano = strtoull(tb_str(e, "time", "0"), NULL, 10);
            ev->name = sp_arena_strdup(a, tb_str(e, "name", ""));
            ev->attributes = tb_kvs(a, tb_get(e, "attributes"), &ev->n_attributes);
            s->events[s->n_events++] = ev;
        }
    }
    if ((x = tb_get(j, "links"))) {
        size_t n = json_object_array_length(x);
        s->links = sp_arena_calloc(a, n ? n : 1, sizeof *s->links);
        for (size_t i = 0; i < n; i++) {
            json_object *l = json_object_array_get_idx(x, i);
            Opentelemetry__Proto__Trace__V1__Span__Link *lk = sp_arena_alloc(a, sizeof *lk);
            opentelemetry__proto__trace__v1__span__link__init(lk);
            lk->trace_id = tb_hex(a, tb_str(l, "trace_id", ""));
            lk->span_id = tb_hex(a, tb_str(l, "span_id", ""));
            lk->trace_state = sp_arena_strdup(a, tb_str(l, "trace_state", ""));
            lk->attributes = tb_kvs(a, tb_get(l, "attributes"), &lk->n_attributes);
            s->links[s->n_links++] = lk;
        }
    }
    return s;
}

/* One ResourceSpans with one ScopeSpans holding the spans of `spans`. */
static sp_otlp_resource_spans *tb_resource_spans(struct sp_arena *a, json_object *resource,
                                                 json_object *scope, json_object *spans)
{
    sp_otlp_resource_spans *rs = sp_arena_alloc(a, sizeof *rs);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = sp_arena_alloc(a, sizeof *rs->resource);
    opentelemetry__proto__resource__v1__resource__init(rs->resource);
    rs->resource->attributes = tb_kvs(a, resource, &rs->resource->n_attributes);
    sp_otlp_scope_spans *ss = sp_arena_alloc(a, sizeof *ss);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    if (scope) {
        ss->scope = sp_arena_alloc(a, sizeof *ss->scope);
        opentelemetry__proto__common__v1__instrumentation_scope__init(ss->scope);
        ss->scope->name = sp_arena_strdup(a, tb_str(scope, "name", ""));
        ss->scope->version = sp_arena_strdup(a, tb_str(scope, "version", ""));
        ss->scope->attributes = tb_kvs(a, tb_get(scope, "attributes"), &ss->scope->n_attributes);
    }
    size_t n = spans ? json_object_array_length(spans) : 0;
    ss->spans = sp_arena_calloc(a, n ? n : 1, sizeof *ss->spans);
    for (size_t i = 0; i < n; i++)
        ss->spans[ss->n_spans++] = tb_span(a, json_object_array_get_idx(spans, i));
    rs->scope_spans = sp_arena_alloc(a, sizeof *rs->scope_spans);
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    return rs;
}

static sp_otlp_request *tb_request(struct sp_arena *a, sp_otlp_resource_spans **rs, size_t n)
{
    sp_otlp_request *req = sp_arena_alloc(a, sizeof *req);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    req->resource_spans = sp_arena_calloc(a, n ? n : 1, sizeof *req->resource_spans);
    for (size_t i = 0; i < n; i++)
        req->resource_spans[req->n_resource_spans++] = rs[i];
    return req;
}

#endif
