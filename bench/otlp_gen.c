/* Benchmark input generator: realistic OTLP trace exports (see otlp_gen.h).
 *
 * The attribute sets follow the OpenTelemetry HTTP, database and code
 * semantic conventions as instrumented Go/Java services emit them, so the
 * decode, the Datadog mapping and gzip see the key mix and value lengths
 * of production traffic rather than a toy span. */
#include "otlp_gen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Opentelemetry__Proto__Trace__V1__Span__Event sp_bench_event;

#define SPANS_PER_TRACE 5

/* splitmix64: small, seeded, good enough for ids and jitter. */
static uint64_t gen_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int64_t bench_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Building blocks: each returns NULL on ENOMEM, callers check once at the
 * end through the arena (a NULL anywhere fails the whole request). */
struct gen {
    struct sp_arena *a;
    uint64_t rng;
    int oom;
};

static void *gen_alloc(struct gen *g, size_t n)
{
    void *p = sp_arena_calloc(g->a, 1, n);
    if (!p)
        g->oom = 1;
    return p;
}

static char *gen_str(struct gen *g, const char *s)
{
    char *p = sp_arena_strdup(g->a, s);
    if (!p)
        g->oom = 1;
    return p;
}

static char *gen_hex(struct gen *g, size_t bytes)
{
    char *p = gen_alloc(g, bytes * 2 + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < bytes; i++) {
        static const char hx[] = "0123456789abcdef";
        uint8_t b = (uint8_t)gen_next(&g->rng);
        p[2 * i] = hx[b >> 4];
        p[2 * i + 1] = hx[b & 15];
    }
    return p;
}

static sp_otlp_kv *kv_new(struct gen *g, const char *key)
{
    sp_otlp_kv *kv = gen_alloc(g, sizeof(*kv));
    sp_otlp_any *v = gen_alloc(g, sizeof(*v));
    if (!kv || !v)
        return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = gen_str(g, key);
    kv->value = v;
    return kv;
}

static sp_otlp_kv *kv_s(struct gen *g, const char *key, const char *val)
{
    sp_otlp_kv *kv = kv_new(g, key);
    if (!kv)
        return NULL;
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = gen_str(g, val);
    return kv;
}

static sp_otlp_kv *kv_i(struct gen *g, const char *key, int64_t val)
{
    sp_otlp_kv *kv = kv_new(g, key);
    if (!kv)
        return NULL;
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = val;
    return kv;
}

static sp_otlp_kv *kv_b(struct gen *g, const char *key, int val)
{
    sp_otlp_kv *kv = kv_new(g, key);
    if (!kv)
        return NULL;
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    kv->value->bool_value = val != 0;
    return kv;
}

static sp_otlp_kv *kv_d(struct gen *g, const char *key, double val)
{
    sp_otlp_kv *kv = kv_new(g, key);
    if (!kv)
        return NULL;
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    kv->value->double_value = val;
    return kv;
}

/* A list of up to 16 attributes, copied into the arena. */
struct kvlist {
    sp_otlp_kv *v[16];
    size_t n;
};

static void kl_add(struct kvlist *l, sp_otlp_kv *kv)
{
    if (l->n < 16)
        l->v[l->n++] = kv;
}

static sp_otlp_kv **kl_finish(struct gen *g, const struct kvlist *l, size_t *n)
{
    sp_otlp_kv **v = gen_alloc(g, sizeof(*v) * (l->n ? l->n : 1));
    if (!v)
        return NULL;
    memcpy(v, l->v, sizeof(*v) * l->n);
    *n = l->n;
    return v;
}

static ProtobufCBinaryData gen_id(struct gen *g, size_t n)
{
    ProtobufCBinaryData d = {0, NULL};
    uint8_t *p = gen_alloc(g, n);
    if (!p)
        return d;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = gen_next(&g->rng);
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
    d.data = p;
    d.len = n;
    return d;
}

static const char *const routes[] = {"/api/users/{id}", "/api/orders", "/api/cart/{id}/items"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
};

static sp_otlp_span *span_new(struct gen *g, ProtobufCBinaryData trace_id,
                              ProtobufCBinaryData parent, const char *name, int kind,
                              int64_t start, int64_t dur)
{
    sp_otlp_span *s = gen_alloc(g, sizeof(*s));
    Opentelemetry__Proto__Trace__V1__Status *st = gen_alloc(g, sizeof(*st));
    if (!s || !st)
        return NULL;
    opentelemetry__proto__trace__v1__span__init(s);
    opentelemetry__proto__trace__v1__status__init(st);
    s->trace_id = trace_id;
    s->span_id = gen_id(g, 8);
    s->parent_span_id = parent;
    s->flags = 0x101; /* sampled, HAS_IS_REMOTE, local parent */
    s->name = gen_str(g, name);
    s->kind = kind;
    s->start_time_unix_nano = (uint64_t)start;
    s->end_time_unix_nano = (uint64_t)(start + dur);
    s->status = st;
    return s;
}

static sp_bench_event *event_new(struct gen *g, const char *name, int64_t t,
                                 const struct kvlist *attrs)
{
    sp_bench_event *e = gen_alloc(g, sizeof(*e));
    if (!e)
        return NULL;
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = (uint64_t)t;
    e->name = gen_str(g, name);
    e->attributes = kl_finish(g, attrs, &e->n_attributes);
    return e;
}

/* One trace of 5 spans starting at t; returns spans written into out. */
static void gen_trace(struct gen *g, sp_otlp_span **out, int64_t t, unsigned trace_no)
{
    char buf[256];
    ProtobufCBinaryData tid = gen_id(g, 16);
    ProtobufCBinaryData none = {0, NULL};
    const char *route = routes[trace_no % 3];
    const char *ua = agents[gen_next(&g->rng) % 3];
    int failing = trace_no % 4 == 1;
    int remote_parent = trace_no % 3 == 2;
    unsigned user = (unsigned)(gen_next(&g->rng) % 100000);
    int64_t total = 2000000 + (int64_t)(gen_next(&g->rng) % 40000000);
    struct kvlist l;

    /* 1. SERVER root */
    snprintf(buf, sizeof(buf), "GET %s", route);
    ProtobufCBinaryData parent = remote_parent ? gen_id(g, 8) : none;
    sp_otlp_span *srv = span_new(g, tid, parent, buf, 2, t, total);
    if (!srv)
        return;
    if (remote_parent)
        srv->flags = 0x301;
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "http.request.method", "GET"));
    kl_add(&l, kv_s(g, "http.route", route));
    snprintf(buf, sizeof(buf), "/api/%s/%u", trace_no % 3 == 1 ? "orders" : "users", user);
    kl_add(&l, kv_s(g, "url.path", buf));
    kl_add(&l, kv_s(g, "url.scheme", "http"));
    snprintf(buf, sizeof(buf), "page=%u&limit=50", user % 17);
    kl_add(&l, kv_s(g, "url.query", buf));
    kl_add(&l, kv_s(g, "server.address", "api.bench.svc.cluster.local"));
    kl_add(&l, kv_i(g, "server.port", 8080));
    kl_add(&l, kv_s(g, "network.protocol.version", "1.1"));
    snprintf(buf, sizeof(buf), "10.%u.%u.%u", user % 200, (user / 7) % 250, user % 250 + 1);
    kl_add(&l, kv_s(g, "client.address", buf));
    kl_add(&l, kv_s(g, "network.peer.address", buf));
    kl_add(&l, kv_i(g, "network.peer.port", 30000 + (int64_t)(user % 30000)));
    kl_add(&l, kv_s(g, "user_agent.original", ua));
    kl_add(&l, kv_i(g, "http.response.status_code", failing ? 500 : 200));
    kl_add(&l, kv_i(g, "http.response.body.size", 200 + (int64_t)(user % 5000)));
    kl_add(&l, kv_s(g, "app.request_id", gen_hex(g, 12)));
    srv->attributes = kl_finish(g, &l, &srv->n_attributes);
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "message.type", "RECEIVED"));
    kl_add(&l, kv_i(g, "message.id", 1));
    srv->events = gen_alloc(g, sizeof(*srv->events) * 1);
    if (srv->events) {
        srv->events[0] = event_new(g, "message", t + 1000, &l);
        srv->n_events = 1;
    }
    if (failing) {
        srv->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        srv->status->message = gen_str(g, "upstream inventory failed");
    }

    /* 2. INTERNAL validate */
    sp_otlp_span *val = span_new(g, tid, srv->span_id, "validate request", 1, t + 50000,
                                 300000 + (int64_t)(gen_next(&g->rng) % 200000));
    if (!val)
        return;
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "code.function", "validateRequest"));
    kl_add(&l, kv_s(g, "code.namespace", "github.com/acme/api/internal/handlers"));
    kl_add(&l, kv_s(g, "code.filepath", "/src/internal/handlers/validate.go"));
    kl_add(&l, kv_i(g, "code.lineno", 42 + (int64_t)(trace_no % 3)));
    kl_add(&l, kv_i(g, "app.user_id", user));
    snprintf(buf, sizeof(buf), "tenant-%u", user % 40);
    kl_add(&l, kv_s(g, "app.tenant", buf));
    kl_add(&l, kv_b(g, "app.feature.new_checkout", user % 2));
    kl_add(&l, kv_b(g, "app.cache_hit", user % 3 == 0));
    kl_add(&l, kv_i(g, "thread.id", 17 + (int64_t)(user % 8)));
    kl_add(&l, kv_s(g, "thread.name", "http-worker"));
    val->attributes = kl_finish(g, &l, &val->n_attributes);

    /* 3. CLIENT database */
    sp_otlp_span *db = span_new(g, tid, srv->span_id,
                                trace_no % 3 == 1 ? "SELECT orders" : "SELECT users", 3,
                                t + 400000, 800000 + (int64_t)(gen_next(&g->rng) % 3000000));
    if (!db)
        return;
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "db.system", "postgresql"));
    kl_add(&l, kv_s(g, "db.namespace", "shop"));
    kl_add(&l, kv_s(g, "db.operation.name", "SELECT"));
    kl_add(&l, kv_s(g, "db.collection.name", trace_no % 3 == 1 ? "orders" : "users"));
    kl_add(&l, kv_s(g, "db.query.text",
                    trace_no % 3 == 1
                        ? "SELECT id, user_id, total, status, created_at FROM orders WHERE "
                          "user_id = $1 ORDER BY created_at DESC LIMIT $2"
                        : "SELECT id, name, email, tenant_id, created_at FROM users WHERE id = $1"));
    kl_add(&l, kv_s(g, "server.address", "postgres.db.svc.cluster.local"));
    kl_add(&l, kv_i(g, "server.port", 5432));
    kl_add(&l, kv_s(g, "network.peer.address", "10.96.14.3"));
    kl_add(&l, kv_i(g, "network.peer.port", 5432));
    kl_add(&l, kv_i(g, "db.response.returned_rows", (int64_t)(user % 50)));
    kl_add(&l, kv_s(g, "db.client.connection.pool.name", "primary"));
    kl_add(&l, kv_i(g, "thread.id", 17 + (int64_t)(user % 8)));
    db->attributes = kl_finish(g, &l, &db->n_attributes);

    /* 4. CLIENT http to inventory */
    sp_otlp_span *cl = span_new(g, tid, srv->span_id, "GET", 3, t + 1500000,
                                500000 + (int64_t)(gen_next(&g->rng) % 9000000));
    if (!cl)
        return;
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "http.request.method", "GET"));
    snprintf(buf, sizeof(buf), "http://inventory.shop.svc.cluster.local:8081/v2/stock?sku=%u",
             user * 31 % 99991);
    kl_add(&l, kv_s(g, "url.full", buf));
    kl_add(&l, kv_s(g, "url.scheme", "http"));
    kl_add(&l, kv_s(g, "server.address", "inventory.shop.svc.cluster.local"));
    kl_add(&l, kv_i(g, "server.port", 8081));
    kl_add(&l, kv_s(g, "network.protocol.version", "1.1"));
    kl_add(&l, kv_s(g, "network.peer.address", "10.96.22.7"));
    kl_add(&l, kv_i(g, "network.peer.port", 8081));
    kl_add(&l, kv_i(g, "http.response.status_code", failing ? 503 : 200));
    kl_add(&l, kv_i(g, "http.response.body.size", 80 + (int64_t)(user % 900)));
    kl_add(&l, kv_i(g, "http.request.resend_count", 0));
    kl_add(&l, kv_s(g, "user_agent.original", "Go-http-client/1.1"));
    kl_add(&l, kv_b(g, "app.retry", 0));
    cl->attributes = kl_finish(g, &l, &cl->n_attributes);
    if (failing) {
        cl->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        cl->status->message = gen_str(g, "503 Service Unavailable");
        memset(&l, 0, sizeof(l));
        kl_add(&l, kv_s(g, "exception.type", "*errors.errorString"));
        kl_add(&l, kv_s(g, "exception.message", "inventory: 503 Service Unavailable"));
        kl_add(&l, kv_s(g, "exception.stacktrace",
                        "goroutine 42 [running]:\n"
                        "github.com/acme/api/internal/clients.(*Inventory).Stock(0xc000123450)\n"
                        "\t/src/internal/clients/inventory.go:88 +0x1a5\n"
                        "github.com/acme/api/internal/handlers.(*Users).Get(0xc0001a2000)\n"
                        "\t/src/internal/handlers/users.go:61 +0x2f1\n"
                        "net/http.HandlerFunc.ServeHTTP(...)\n"
                        "\t/usr/local/go/src/net/http/server.go:2171 +0x29\n"));
        cl->events = gen_alloc(g, sizeof(*cl->events));
        if (cl->events) {
            cl->events[0] = event_new(g, "exception", t + 2000000, &l);
            cl->n_events = 1;
        }
    }

    /* 5. INTERNAL render */
    sp_otlp_span *rd = span_new(g, tid, srv->span_id, "render response", 1,
                                t + total - 600000, 400000);
    if (!rd)
        return;
    memset(&l, 0, sizeof(l));
    kl_add(&l, kv_s(g, "code.function", "renderJSON"));
    kl_add(&l, kv_s(g, "code.namespace", "github.com/acme/api/internal/render"));
    kl_add(&l, kv_s(g, "code.filepath", "/src/internal/render/json.go"));
    kl_add(&l, kv_i(g, "code.lineno", 120));
    kl_add(&l, kv_s(g, "app.content_type", "application/json"));
    kl_add(&l, kv_i(g, "app.items", (int64_t)(user % 50)));
    kl_add(&l, kv_d(g, "app.render_ms", 0.25 + (double)(user % 1000) / 1000.0));
    kl_add(&l, kv_b(g, "app.compressed", user % 5 == 0));
    kl_add(&l, kv_i(g, "thread.id", 17 + (int64_t)(user % 8)));
    kl_add(&l, kv_s(g, "thread.name", "http-worker"));
    rd->attributes = kl_finish(g, &l, &rd->n_attributes);

    out[0] = srv;
    out[1] = val;
    out[2] = db;
    out[3] = cl;
    out[4] = rd;
}

sp_otlp_request *bench_otlp_build(struct sp_arena *arena, const struct bench_otlp_opts *o)
{
    struct gen g = {.a = arena, .rng = o->seed ? o->seed : 1, .oom = 0};
    size_t n = (o->spans + SPANS_PER_TRACE - 1) / SPANS_PER_TRACE * SPANS_PER_TRACE;
    if (n == 0)
        n = SPANS_PER_TRACE;
    int64_t t0 = o->base_time_ns ? o->base_time_ns : bench_now_unix_ns();

    sp_otlp_request *req = gen_alloc(&g, sizeof(*req));
    sp_otlp_resource_spans *rs = gen_alloc(&g, sizeof(*rs));
    sp_otlp_scope_spans *ss = gen_alloc(&g, sizeof(*ss));
    Opentelemetry__Proto__Resource__V1__Resource *res = gen_alloc(&g, sizeof(*res));
    Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = gen_alloc(&g, sizeof(*scope));
    if (g.oom)
        return NULL;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__resource__v1__resource__init(res);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);

    struct kvlist l = {.n = 0};
    kl_add(&l, kv_s(&g, "service.name", o->service ? o->service : "bench-api"));
    kl_add(&l, kv_s(&g, "service.version", "1.4.2"));
    kl_add(&l, kv_s(&g, "service.instance.id", "5f2b8c1e-3d4a-4b6f-9e21-7c8d9a0b1c2d"));
    kl_add(&l, kv_s(&g, "host.name", "bench-node-7"));
    kl_add(&l, kv_s(&g, "deployment.environment.name", "bench"));
    kl_add(&l, kv_s(&g, "telemetry.sdk.name", "opentelemetry"));
    kl_add(&l, kv_s(&g, "telemetry.sdk.language", "go"));
    kl_add(&l, kv_s(&g, "telemetry.sdk.version", "1.28.0"));
    kl_add(&l, kv_s(&g, "os.type", "linux"));
    kl_add(&l, kv_i(&g, "process.pid", 1));
    kl_add(&l, kv_s(&g, "k8s.namespace.name", "shop"));
    kl_add(&l, kv_s(&g, "k8s.pod.name", "bench-api-7d9f8b6c5-x2k4q"));
    kl_add(&l, kv_s(&g, "container.id", gen_hex(&g, 32)));
    res->attributes = kl_finish(&g, &l, &res->n_attributes);
    scope->name = gen_str(&g, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
    scope->version = gen_str(&g, "0.53.0");

    ss->scope = scope;
    ss->spans = gen_alloc(&g, sizeof(*ss->spans) * n);
    if (g.oom)
        return NULL;
    ss->n_spans = n;
    for (size_t i = 0; i < n / SPANS_PER_TRACE; i++) {
        /* traces start 1 ms apart, as a busy service's would */
        gen_trace(&g, ss->spans + i * SPANS_PER_TRACE, t0 + (int64_t)i * 1000000, (unsigned)i);
        if (g.oom)
            return NULL;
    }
    rs->resource = res;
    rs->scope_spans = gen_alloc(&g, sizeof(*rs->scope_spans));
    req->resource_spans = gen_alloc(&g, sizeof(*req->resource_spans));
    if (g.oom)
        return NULL;
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    req->resource_spans[0] = rs;
    req->n_resource_spans = 1;
    return req;
}

int bench_otlp_pack(const sp_otlp_request *req, struct sp_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    if (sp_buf_reserve(out, n + 1))
        return SP_ENOMEM;
    out->len += protobuf_c_message_pack(&req->base, out->data + out->len);
    out->data[out->len] = 0;
    return 0;
}

int bench_grpc_frame(const uint8_t *msg, size_t len, struct sp_buf *out)
{
    uint8_t h[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                    (uint8_t)len};
    if (sp_buf_append(out, h, 5) || sp_buf_append(out, msg, len))
        return SP_ENOMEM;
    return 0;
}

/* ---- OTLP JSON ---- */

static int js_hex(struct sp_buf *b, const ProtobufCBinaryData *d)
{
    static const char hx[] = "0123456789abcdef";
    int rc = sp_buf_append_byte(b, '"');
    for (size_t i = 0; i < d->len && rc == 0; i++) {
        char two[2] = {hx[d->data[i] >> 4], hx[d->data[i] & 15]};
        rc = sp_buf_append(b, two, 2);
    }
    return rc ? rc : sp_buf_append_byte(b, '"');
}

static int js_str(struct sp_buf *b, const char *s)
{
    return sp_buf_append_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static int js_attrs(struct sp_buf *b, sp_otlp_kv *const *kv, size_t n);

static int js_any(struct sp_buf *b, const sp_otlp_any *v)
{
    int rc = 0;
    switch (v ? v->value_case : 0) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        rc = sp_buf_append_str(b, "{\"stringValue\":");
        rc = rc ? rc : js_str(b, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        rc = sp_buf_printf(b, "{\"boolValue\":%s", v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        rc = sp_buf_printf(b, "{\"intValue\":\"%" PRId64 "\"", v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        rc = sp_buf_printf(b, "{\"doubleValue\":%.17g", v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        rc = sp_buf_append_str(b, "{\"kvlistValue\":{\"values\":");
        rc = rc ? rc : js_attrs(b, v->kvlist_value->values, v->kvlist_value->n_values);
        rc = rc ? rc : sp_buf_append_byte(b, '}');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        rc = sp_buf_append_str(b, "{\"arrayValue\":{\"values\":[");
        for (size_t i = 0; i < v->array_value->n_values && rc == 0; i++) {
            if (i)
                rc = sp_buf_append_byte(b, ',');
            rc = rc ? rc : js_any(b, v->array_value->values[i]);
        }
        rc = rc ? rc : sp_buf_append_str(b, "]}");
        break;
    default:
        rc = sp_buf_append_byte(b, '{');
        break;
    }
    return rc ? rc : sp_buf_append_byte(b, '}');
}

static int js_attrs(struct sp_buf *b, sp_otlp_kv *const *kv, size_t n)
{
    int rc = sp_buf_append_byte(b, '[');
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sp_buf_append_str(b, i ? ",{\"key\":" : "{\"key\":");
        rc = rc ? rc : js_str(b, kv[i]->key);
        rc = rc ? rc : sp_buf_append_str(b, ",\"value\":");
        rc = rc ? rc : js_any(b, kv[i]->value);
        rc = rc ? rc : sp_buf_append_byte(b, '}');
    }
    return rc ? rc : sp_buf_append_byte(b, ']');
}

static int js_span(struct sp_buf *b, const sp_otlp_span *s)
{
    int rc = sp_buf_append_str(b, "{\"traceId\":");
    rc = rc ? rc : js_hex(b, &s->trace_id);
    rc = rc ? rc : sp_buf_append_str(b, ",\"spanId\":");
    rc = rc ? rc : js_hex(b, &s->span_id);
    if (s->parent_span_id.len) {
        rc = rc ? rc : sp_buf_append_str(b, ",\"parentSpanId\":");
        rc = rc ? rc : js_hex(b, &s->parent_span_id);
    }
    rc = rc ? rc : sp_buf_printf(b, ",\"flags\":%u,\"name\":", s->flags);
    rc = rc ? rc : js_str(b, s->name);
    rc = rc ? rc
            : sp_buf_printf(b,
                            ",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64
                            "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":",
                            (int)s->kind, s->start_time_unix_nano, s->end_time_unix_nano);
    rc = rc ? rc : js_attrs(b, s->attributes, s->n_attributes);
    rc = rc ? rc : sp_buf_append_str(b, ",\"events\":[");
    for (size_t i = 0; i < s->n_events && rc == 0; i++) {
        const sp_bench_event *e = s->events[i];
        rc = sp_buf_printf(b, "%s{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":", i ? "," : "",
                           e->time_unix_nano);
        rc = rc ? rc : js_str(b, e->name);
        rc = rc ? rc : sp_buf_append_str(b, ",\"attributes\":");
        rc = rc ? rc : js_attrs(b, e->attributes, e->n_attributes);
        rc = rc ? rc : sp_buf_append_byte(b, '}');
    }
    rc = rc ? rc : sp_buf_append_str(b, "],\"status\":{");
    if (s->status && s->status->code) {
        rc = rc ? rc : sp_buf_append_str(b, "\"message\":");
        rc = rc ? rc : js_str(b, s->status->message);
        rc = rc ? rc : sp_buf_printf(b, ",\"code\":%d", (int)s->status->code);
    }
    return rc ? rc : sp_buf_append_str(b, "}}");
}

int bench_otlp_json(const sp_otlp_request *req, struct sp_buf *out)
{
    int rc = sp_buf_append_str(out, "{\"resourceSpans\":[");
    for (size_t r = 0; r < req->n_resource_spans && rc == 0; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        rc = sp_buf_append_str(out, r ? ",{\"resource\":{\"attributes\":"
                                      : "{\"resource\":{\"attributes\":");
        rc = rc ? rc
                : js_attrs(out, rs->resource ? rs->resource->attributes : NULL,
                           rs->resource ? rs->resource->n_attributes : 0);
        rc = rc ? rc : sp_buf_append_str(out, "},\"scopeSpans\":[");
        for (size_t s = 0; s < rs->n_scope_spans && rc == 0; s++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[s];
            rc = sp_buf_append_str(out, s ? ",{\"scope\":{\"name\":" : "{\"scope\":{\"name\":");
            rc = rc ? rc : js_str(out, ss->scope ? ss->scope->name : "");
            rc = rc ? rc : sp_buf_append_str(out, ",\"version\":");
            rc = rc ? rc : js_str(out, ss->scope ? ss->scope->version : "");
            rc = rc ? rc : sp_buf_append_str(out, "},\"spans\":[");
            for (size_t i = 0; i < ss->n_spans && rc == 0; i++) {
                if (i)
                    rc = sp_buf_append_byte(out, ',');
                rc = rc ? rc : js_span(out, ss->spans[i]);
            }
            rc = rc ? rc : sp_buf_append_str(out, "]}");
        }
        rc = rc ? rc : sp_buf_append_str(out, "]}");
    }
    return rc ? rc : sp_buf_append_str(out, "]}");
}

/* ---- patch points ---- */

static int patches_add(struct bench_patches *p, size_t *cap, const struct bench_patch *x)
{
    if (p->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct bench_patch *nv = realloc(p->v, nc * sizeof(*nv));
        if (!nv)
            return SP_ENOMEM;
        p->v = nv;
        *cap = nc;
    }
    p->v[p->n++] = *x;
    return 0;
}

/* Every occurrence of needle in body becomes a patch like proto. */
static int find_all(const uint8_t *body, size_t len, const void *needle, size_t nlen,
                    size_t skip, const struct bench_patch *proto, struct bench_patches *out,
                    size_t *cap)
{
    const uint8_t *p = body;
    const uint8_t *end = body + len;
    while (p < end) {
        const uint8_t *hit = memmem(p, (size_t)(end - p), needle, nlen);
        if (!hit)
            break;
        struct bench_patch x = *proto;
        x.off = (size_t)(hit - body) + skip;
        if (patches_add(out, cap, &x))
            return SP_ENOMEM;
        p = hit + nlen;
    }
    return 0;
}

static int find_id(const ProtobufCBinaryData *id, const uint8_t *body, size_t len, int json,
                   struct bench_patches *out, size_t *cap)
{
    if (!id->len || id->len > 16)
        return 0;
    struct bench_patch x;
    memset(&x, 0, sizeof(x));
    memcpy(x.orig, id->data, id->len);
    if (!json) {
        x.kind = BENCH_PATCH_ID_BIN;
        x.len = (uint8_t)id->len;
        return find_all(body, len, id->data, id->len, 0, &x, out, cap);
    }
    static const char hx[] = "0123456789abcdef";
    char q[40];
    q[0] = '"';
    for (size_t i = 0; i < id->len; i++) {
        q[1 + 2 * i] = hx[id->data[i] >> 4];
        q[2 + 2 * i] = hx[id->data[i] & 15];
    }
    q[1 + 2 * id->len] = '"';
    x.kind = BENCH_PATCH_ID_HEX;
    x.len = (uint8_t)(id->len * 2);
    return find_all(body, len, q, 2 + 2 * id->len, 1, &x, out, cap);
}

static int find_ts(uint64_t ts, const uint8_t *body, size_t len, int json,
                   struct bench_patches *out, size_t *cap)
{
    struct bench_patch x;
    memset(&x, 0, sizeof(x));
    x.ts = ts;
    if (!json) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(ts >> (8 * i));
        x.kind = BENCH_PATCH_TS_BIN;
        x.len = 8;
        return find_all(body, len, le, 8, 0, &x, out, cap);
    }
    char q[32];
    int n = snprintf(q, sizeof(q), "\"%" PRIu64 "\"", ts);
    if (n != 21) /* 19 digits: the patch keeps the length */
        return 0;
    x.kind = BENCH_PATCH_TS_DEC;
    x.len = 19;
    return find_all(body, len, q, (size_t)n, 1, &x, out, cap);
}

/* Ids and times are unique per request, but one value may appear at several
 * places (a span id is also its children's parent id): dedupe by offset. */
static int patch_cmp(const void *a, const void *b)
{
    const struct bench_patch *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

int bench_otlp_find_patches(const sp_otlp_request *req, const uint8_t *body, size_t len,
                            int json, struct bench_patches *out)
{
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                const sp_otlp_span *sp = ss->spans[i];
                /* Trace ids repeat across a trace's spans: look each up once. */
                if (i == 0 || memcmp(ss->spans[i - 1]->trace_id.data, sp->trace_id.data,
                                     sp->trace_id.len) != 0) {
                    if (find_id(&sp->trace_id, body, len, json, out, &cap))
                        goto nomem;
                }
                if (find_id(&sp->span_id, body, len, json, out, &cap))
                    goto nomem;
                /* Remote parents are not span ids of this request. */
                if ((sp->flags & 0x200) && find_id(&sp->parent_span_id, body, len, json, out, &cap))
                    goto nomem;
                if (find_ts(sp->start_time_unix_nano, body, len, json, out, &cap) ||
                    find_ts(sp->end_time_unix_nano, body, len, json, out, &cap))
                    goto nomem;
                for (size_t e = 0; e < sp->n_events; e++)
                    if (find_ts(sp->events[e]->time_unix_nano, body, len, json, out, &cap))
                        goto nomem;
            }
        }
    }
    if (out->n) {
        qsort(out->v, out->n, sizeof(*out->v), patch_cmp);
        size_t w = 1;
        for (size_t i = 1; i < out->n; i++)
            if (out->v[i].off != out->v[w - 1].off)
                out->v[w++] = out->v[i];
        out->n = w;
    }
    return 0;
nomem:
    bench_patches_free(out);
    return SP_ENOMEM;
}

void bench_patches_free(struct bench_patches *p)
{
    free(p->v);
    memset(p, 0, sizeof(*p));
}

void bench_otlp_patch(uint8_t *body, const struct bench_patches *p, uint32_t seq,
                      int64_t shift_ns)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < p->n; i++) {
        const struct bench_patch *x = &p->v[i];
        uint8_t *d = body + x->off;
        switch (x->kind) {
        case BENCH_PATCH_ID_BIN:
        case BENCH_PATCH_ID_HEX: {
            uint8_t id[16];
            size_t n = x->kind == BENCH_PATCH_ID_BIN ? x->len : x->len / 2u;
            memcpy(id, x->orig, n);
            id[n - 4] ^= (uint8_t)(seq >> 24);
            id[n - 3] ^= (uint8_t)(seq >> 16);
            id[n - 2] ^= (uint8_t)(seq >> 8);
            id[n - 1] ^= (uint8_t)seq;
            if (x->kind == BENCH_PATCH_ID_BIN) {
                memcpy(d, id, n);
            } else {
                for (size_t k = 0; k < n; k++) {
                    d[2 * k] = (uint8_t)hx[id[k] >> 4];
                    d[2 * k + 1] = (uint8_t)hx[id[k] & 15];
                }
            }
            break;
        }
        case BENCH_PATCH_TS_BIN: {
            uint64_t v = x->ts + (uint64_t)shift_ns;
            for (int k = 0; k < 8; k++)
                d[k] = (uint8_t)(v >> (8 * k));
            break;
        }
        case BENCH_PATCH_TS_DEC: {
            uint64_t v = x->ts + (uint64_t)shift_ns;
            for (int k = 18; k >= 0; k--) {
                d[k] = (uint8_t)('0' + v % 10);
                v /= 10;
            }
            break;
        }
        }
    }
}
