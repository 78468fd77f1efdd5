/* Golden tables for model/dd_naming.c: Datadog resource, operation name,
 * span type and service for OTel spans (docs/datadog.md §4.3-4.7,
 * checked against datadog-agent's otel_util.go / semantics registry), the
 * PII rule for endpoints, id conversion and the agent's normalisers. */
#include <stdarg.h>
#include <stdbool.h>

#include "dd_naming.h"
#include "sp_test.h"

enum { SRV = 2, CLI = 3, INT = 1, PRO = 4, CON = 5, UNS = 0 };

/* Attribute mini-language: "key=str", "key#int", "key~double", "key?bool". */
static sp_otlp_kv *mk_kv(struct sp_arena *a, const char *spec)
{
    const char *sep = strpbrk(spec, "=#~?");
    sp_otlp_kv *kv = sp_arena_calloc(a, 1, sizeof *kv);
    sp_otlp_any *v = sp_arena_calloc(a, 1, sizeof *v);
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = sp_arena_strndup(a, spec, (size_t)(sep - spec));
    kv->value = v;
    const char *val = sep + 1;
    switch (*sep) {
    case '=':
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = sp_arena_strdup(a, val);
        break;
    case '#':
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = strtoll(val, NULL, 10);
        break;
    case '~':
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = strtod(val, NULL);
        break;
    case '?':
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = strcmp(val, "true") == 0;
        break;
    }
    return kv;
}

static sp_otlp_kv **mk_attrs(struct sp_arena *a, const char *const *specs, size_t *n)
{
    size_t k = 0;
    while (specs && specs[k])
        k++;
    sp_otlp_kv **v = sp_arena_calloc(a, k + 1, sizeof *v);
    for (size_t i = 0; i < k; i++)
        v[i] = mk_kv(a, specs[i]);
    *n = k;
    return v;
}

struct span_case {
    const char *label;
    int kind;
    const char *name;
    const char *span_attrs[8];
    const char *res_attrs[6];
    const char *expect;
};

/* The golden tables run twice: with the lists scanned, and through
 * sp_dd_keys indexes (the exporter's path); the results must not differ. */
static bool use_index;

static void mk_ctx(struct sp_arena *a, const struct span_case *t, struct sp_dd_span_ctx *c)
{
    sp_otlp_span *s = sp_arena_calloc(a, 1, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->kind = t->kind;
    s->name = (char *)t->name;
    s->attributes = mk_attrs(a, t->span_attrs, &s->n_attributes);
    memset(c, 0, sizeof *c);
    c->span = s;
    c->resource_attrs = mk_attrs(a, t->res_attrs, &c->n_resource_attrs);
    if (use_index) {
        struct sp_dd_keys *sk = sp_arena_alloc(a, sizeof *sk);
        struct sp_dd_keys *rk = sp_arena_alloc(a, sizeof *rk);
        sp_dd_keys_index(sk, s->attributes, s->n_attributes, NULL);
        sp_dd_keys_index(rk, c->resource_attrs, c->n_resource_attrs, NULL);
        c->span_keys = sk;
        c->resource_keys = rk;
    }
}

/* Resource names: every rule of §4.6 and each precedence between them. */
static const struct span_case resource_cases[] = {
    {"resource.name on span wins", SRV, "n",
     {"resource.name=custom res", "http.request.method=GET", "http.route=/a"}, {0}, "custom res"},
    {"resource.name from resource attrs", INT, "n", {0}, {"resource.name=from-resource"},
     "from-resource"},
    {"span resource.name before resource attr", INT, "n", {"resource.name=span-r"},
     {"resource.name=res-r"}, "span-r"},
    {"empty span resource.name falls to resource", INT, "n", {"resource.name="},
     {"resource.name=res-r"}, "res-r"},
    {"server method+route", SRV, "n", {"http.request.method=GET", "http.route=/users/{id}"},
     {0}, "GET /users/{id}"},
    {"server old http.method+route", SRV, "n", {"http.method=POST", "http.route=/x"}, {0},
     "POST /x"},
    {"http.request.method before http.method", SRV, "n",
     {"http.method=POST", "http.request.method=GET", "http.route=/a"}, {0}, "GET /a"},
    {"key order before map order (registry)", SRV, "n", {"http.method=GET"},
     {"http.request.method=PUT"}, "PUT"},
    {"empty http.request.method skipped", CLI, "n",
     {"http.request.method=", "http.method=DELETE"}, {0}, "DELETE"},
    {"_OTHER server -> HTTP + route", SRV, "n", {"http.request.method=_OTHER", "http.route=/r"},
     {0}, "HTTP /r"},
    {"_OTHER client -> HTTP", CLI, "n", {"http.request.method=_OTHER"}, {0}, "HTTP"},
    {"client gets method only", CLI, "n", {"http.request.method=GET", "http.route=/users"}, {0},
     "GET"},
    {"internal gets method only", INT, "n", {"http.request.method=PATCH", "http.route=/u"},
     {0}, "PATCH"},
    {"server method without route", SRV, "n", {"http.request.method=GET"}, {0}, "GET"},
    {"route from resource attrs", SRV, "n", {"http.request.method=GET"}, {"http.route=/r"},
     "GET /r"},
    {"span route before resource route", SRV, "n", {"http.request.method=GET", "http.route=/s"},
     {"http.route=/r"}, "GET /s"},
    {"messaging op + destination", PRO, "n",
     {"messaging.operation=publish", "messaging.destination=orders"}, {0}, "publish orders"},
    {"messaging op + destination.name", CON, "n",
     {"messaging.operation=receive", "messaging.destination.name=q1"}, {0}, "receive q1"},
    {"messaging.destination before .name", CON, "n",
     {"messaging.operation=process", "messaging.destination.name=b",
      "messaging.destination=a"},
     {0}, "process a"},
    {"messaging op only", CON, "n", {"messaging.operation=process"}, {0}, "process"},
    {"rpc method + service", SRV, "n", {"rpc.method=GetUser", "rpc.service=UserService"}, {0},
     "GetUser UserService"},
    {"rpc method only", CLI, "n", {"rpc.method=GetUser"}, {0}, "GetUser"},
    {"rpc service without method -> span name", SRV, "grpc-span", {"rpc.service=S"}, {0},
     "grpc-span"},
    {"graphql type + name", SRV, "n",
     {"graphql.operation.type=query", "graphql.operation.name=GetBooks"}, {0},
     "query GetBooks"},
    {"graphql type only", SRV, "n", {"graphql.operation.type=mutation"}, {0}, "mutation"},
    {"db system + statement", CLI, "n",
     {"db.system=postgresql", "db.statement=SELECT * FROM t WHERE id = ?"}, {0},
     "SELECT * FROM t WHERE id = ?"},
    {"db system + query.text", CLI, "n", {"db.system=mysql", "db.query.text=SELECT 1"}, {0},
     "SELECT 1"},
    {"db.statement before db.query.text", CLI, "n",
     {"db.system=mysql", "db.query.text=B", "db.statement=A"}, {0}, "A"},
    {"db statement without system -> name", CLI, "query-span", {"db.statement=SELECT 1"}, {0},
     "query-span"},
    {"db.system.name (semconv 1.30) counts", CLI, "n",
     {"db.system.name=postgresql", "db.query.text=SELECT 2"}, {0}, "SELECT 2"},
    {"db system from resource attrs", CLI, "n", {"db.statement=SELECT 3"},
     {"db.system=redis"}, "SELECT 3"},
    {"db system without statement -> name", CLI, "redis-get", {"db.system=redis"}, {0},
     "redis-get"},
    {"fallback span name", INT, "compute /api/users", {"foo=bar"}, {0}, "compute /api/users"},
    {"http before messaging", SRV, "n",
     {"messaging.operation=publish", "http.request.method=GET", "http.route=/h"}, {0},
     "GET /h"},
    {"messaging before rpc", CON, "n", {"rpc.method=M", "messaging.operation=receive"}, {0},
     "receive"},
    {"rpc before graphql", SRV, "n", {"graphql.operation.type=query", "rpc.method=M"}, {0}, "M"},
    {"graphql before db", CLI, "n",
     {"db.system=mysql", "db.statement=S", "graphql.operation.type=query"}, {0}, "query"},
    /* String concepts read string attributes only (datadog-agent
     * pkg/trace/semantics/lookup_pdata.go, PDataMapAccessor.GetString). */
    {"int resource.name ignored", INT, "n", {"resource.name#42"}, {0}, "n"},
    {"double resource.name ignored", INT, "n", {"resource.name~1.5"}, {0}, "n"},
    {"bool resource.name ignored", INT, "n", {"resource.name?true"}, {0}, "n"},
    {"int span value falls back to the resource's string", INT, "n", {"resource.name#42"},
     {"resource.name=from-res"}, "from-res"},
    {"int http.route ignored", SRV, "n", {"http.request.method=GET", "http.route#7"}, {0}, "GET"},
    /* datadog.* overrides removed upstream (PR #45833). */
    {"datadog.resource_name ignored", SRV, "n",
     {"datadog.resource_name=GET /Users", "resource.name=other"}, {0}, "other"},
    {"empty name and no attrs -> operation name", INT, "", {0}, {0}, "Internal"},
    {"server method route consumer kind ignored", CON, "n",
     {"http.request.method=GET", "http.route=/c"}, {0}, "GET"},
};

static void test_resource_golden(void)
{
    struct sp_arena *a = sp_arena_create(0);
    size_t n = sizeof resource_cases / sizeof resource_cases[0];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        struct sp_dd_span_ctx c;
        mk_ctx(a, &resource_cases[i], &c);
        const char *got = sp_dd_resource(&c, a);
        if (!got || strcmp(got, resource_cases[i].expect) != 0) {
            fprintf(stderr, "  resource case %zu '%s': got \"%s\" want \"%s\"\n", i,
                    resource_cases[i].label, got ? got : "(null)", resource_cases[i].expect);
            bad++;
        }
    }
    fprintf(stderr, "  %zu resource cases\n", n);
    sp_arena_destroy(a);
    ASSERT(n >= 30);
    ASSERT_EQ_INT(bad, 0);
}

static void test_resource_truncated(void)
{
    struct sp_arena *a = sp_arena_create(0);
    char *big = malloc(6001 + 20);
    strcpy(big, "resource.name=");
    memset(big + 14, 'x', 6000);
    big[14 + 6000] = 0;
    struct span_case t = {"long", INT, "n", {big}, {0}, NULL};
    struct sp_dd_span_ctx c;
    mk_ctx(a, &t, &c);
    const char *got = sp_dd_resource(&c, a);
    free(big);
    ASSERT(got != NULL);
    ASSERT_EQ_INT(strlen(got), 5000);
    sp_arena_destroy(a);
}

static const struct span_case operation_cases[] = {
    {"operation.name normalised", SRV, "n", {"operation.name=My Op", "http.method=GET"}, {0},
     "my_op"},
    {"http server", SRV, "n", {"http.request.method=GET"}, {0}, "http.server.request"},
    {"http client", CLI, "n", {"http.method=GET"}, {0}, "http.client.request"},
    {"http internal falls through", INT, "n", {"http.method=GET"}, {0}, "Internal"},
    {"db client", CLI, "n", {"db.system=PostgreSQL"}, {0}, "postgresql.query"},
    {"db server not a query", SRV, "n", {"db.system=mysql"}, {0}, "server.request"},
    {"messaging producer", PRO, "n", {"messaging.system=kafka", "messaging.operation=publish"},
     {0}, "kafka.publish"},
    {"messaging internal not mapped", INT, "n",
     {"messaging.system=kafka", "messaging.operation=publish"}, {0}, "Internal"},
    {"aws client with service", CLI, "n", {"rpc.system=aws-api", "rpc.service=S3"}, {0},
     "aws.s3.request"},
    {"aws client without service", CLI, "n", {"rpc.system=aws-api"}, {0},
     "aws.client.request"},
    {"grpc client", CLI, "n", {"rpc.system=grpc"}, {0}, "grpc.client.request"},
    {"grpc server", SRV, "n", {"rpc.system=grpc"}, {0}, "grpc.server.request"},
    {"faas client", CLI, "n", {"faas.invoked_provider=aws", "faas.invoked_name=fn"}, {0},
     "aws.fn.invoke"},
    {"faas server", SRV, "n", {"faas.trigger=http"}, {0}, "http.invoke"},
    {"graphql", INT, "n", {"graphql.operation.type=query"}, {0}, "graphql.server.request"},
    {"protocol server", SRV, "n", {"network.protocol.name=amqp"}, {0}, "amqp.server.request"},
    {"bare server", SRV, "n", {0}, {0}, "server.request"},
    {"bare client", CLI, "n", {0}, {0}, "client.request"},
    {"producer", PRO, "n", {0}, {0}, "Producer"},
    {"consumer", CON, "n", {0}, {0}, "Consumer"},
    {"unspecified", UNS, "n", {0}, {0}, "Internal"},
    {"datadog.operation_name ignored", SRV, "n", {"datadog.operation_name=Web.Request"}, {0},
     "server.request"},
    {"int rpc.system ignored", SRV, "n", {"rpc.system#1"}, {0}, "server.request"},
};

static void test_operation_golden(void)
{
    struct sp_arena *a = sp_arena_create(0);
    int bad = 0;
    for (size_t i = 0; i < sizeof operation_cases / sizeof operation_cases[0]; i++) {
        struct sp_dd_span_ctx c;
        mk_ctx(a, &operation_cases[i], &c);
        const char *got = sp_dd_operation_name(&c, a);
        if (!got || strcmp(got, operation_cases[i].expect) != 0) {
            fprintf(stderr, "  operation case '%s': got \"%s\" want \"%s\"\n",
                    operation_cases[i].label, got ? got : "(null)", operation_cases[i].expect);
            bad++;
        }
    }
    sp_arena_destroy(a);
    ASSERT_EQ_INT(bad, 0);
}

static const struct span_case type_cases[] = {
    {"span.type attr", SRV, "n", {"span.type=worker"}, {0}, "worker"},
    {"server web", SRV, "n", {0}, {0}, "web"},
    {"client http", CLI, "n", {0}, {0}, "http"},
    {"client postgres sql", CLI, "n", {"db.system=postgresql"}, {0}, "sql"},
    {"client redis", CLI, "n", {"db.system=redis"}, {0}, "redis"},
    {"client memcached", CLI, "n", {"db.system=memcached"}, {0}, "memcached"},
    {"client elasticsearch", CLI, "n", {"db.system=elasticsearch"}, {0}, "elasticsearch"},
    {"client opensearch", CLI, "n", {"db.system=opensearch"}, {0}, "opensearch"},
    {"client cassandra", CLI, "n", {"db.system=cassandra"}, {0}, "cassandra"},
    {"client mongodb", CLI, "n", {"db.system=mongodb"}, {0}, "mongodb"},
    {"client unknown db", CLI, "n", {"db.system=couchdb"}, {0}, "db"},
    {"client db from resource", CLI, "n", {0}, {"db.system=MySQL"}, "sql"},
    {"internal custom", INT, "n", {0}, {0}, "custom"},
    {"consumer custom", CON, "n", {"db.system=redis"}, {0}, "custom"},
    {"datadog.span.type ignored", CLI, "n", {"datadog.span.type=Cache"}, {0}, "http"},
    {"int span.type ignored", CLI, "n", {"span.type#3"}, {0}, "http"},
};

static void test_span_type_golden(void)
{
    struct sp_arena *a = sp_arena_create(0);
    int bad = 0;
    for (size_t i = 0; i < sizeof type_cases / sizeof type_cases[0]; i++) {
        struct sp_dd_span_ctx c;
        mk_ctx(a, &type_cases[i], &c);
        const char *got = sp_dd_span_type(&c, a);
        if (!got || strcmp(got, type_cases[i].expect) != 0) {
            fprintf(stderr, "  type case '%s': got \"%s\" want \"%s\"\n", type_cases[i].label,
                    got ? got : "(null)", type_cases[i].expect);
            bad++;
        }
    }
    sp_arena_destroy(a);
    ASSERT_EQ_INT(bad, 0);
}

static const struct span_case service_cases[] = {
    {"resource service.name", SRV, "n", {0}, {"service.name=checkout"}, "checkout"},
    {"span service.name first", SRV, "n", {"service.name=span-svc"}, {"service.name=res-svc"},
     "span-svc"},
    {"missing", SRV, "n", {0}, {0}, "otlpresourcenoservicename"},
    {"normalised", SRV, "n", {0}, {"service.name=My Service!!"}, "my_service"},
    {"all invalid", SRV, "n", {0}, {"service.name=!!!"}, "unnamed-service"},
    {"datadog.service ignored", SRV, "n", {0},
     {"service.name=a", "datadog.service=Override"}, "a"},
    {"int service.name ignored", SRV, "n", {0}, {"service.name#42"}, "otlpresourcenoservicename"},
    {"latin-1 upper folded", SRV, "n", {0}, {"service.name=CAFÉ"}, "café"},
    {"emoji is not a letter", SRV, "n", {0}, {"service.name=svc\xf0\x9f\x8d\xa3x"}, "svc_x"},
    /* Full Unicode, as Go's unicode package in datadog-agent
     * pkg/trace/traceutil/normalize/normalize.go (normalize): */
    {"Latin Extended-A lower-cased", SRV, "n", {0}, {"service.name=ĀRA"}, "āra"},
    {"accented Greek lower-cased", SRV, "n", {0}, {"service.name=ΆΈΉ-ΰ"}, "άέή-ΰ"},
    {"Armenian lower-cased", SRV, "n", {0}, {"service.name=ՀԱՅ"}, "հայ"},
    {"fullwidth letters lower-cased", SRV, "n", {0}, {"service.name=ＡＰＩ１"}, "ａｐｉ１"},
    {"combining mark is cut", SRV, "n", {0}, {"service.name=cafe\xcc\x81-x"}, "cafe_-x"},
    {"trailing combining mark dropped", SRV, "n", {0}, {"service.name=cafe\xcc\x81"}, "cafe"},
    {"lower-case of another width kept", SRV, "n", {0}, {"service.name=İẞ"}, "İẞ"},
    {"titlecase letter kept", SRV, "n", {0}, {"service.name=ǅx"}, "ǅx"},
    {"non-Latin digits kept", SRV, "n", {0}, {"service.name=٣x"}, "٣x"},
};

static void test_service_golden(void)
{
    struct sp_arena *a = sp_arena_create(0);
    int bad = 0;
    for (size_t i = 0; i < sizeof service_cases / sizeof service_cases[0]; i++) {
        struct sp_dd_span_ctx c;
        mk_ctx(a, &service_cases[i], &c);
        const char *got = sp_dd_service(&c, a);
        if (!got || strcmp(got, service_cases[i].expect) != 0) {
            fprintf(stderr, "  service case '%s': got \"%s\" want \"%s\"\n",
                    service_cases[i].label, got ? got : "(null)", service_cases[i].expect);
            bad++;
        }
    }
    sp_arena_destroy(a);
    ASSERT_EQ_INT(bad, 0);
}

static void test_normalizers(void)
{
    struct sp_arena *a = sp_arena_create(0);
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("ok.tag-1/x:y", a), "ok.tag-1/x:y");
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("a__b", a), "a_b");
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("a  b  ", a), "a_b");
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("_lead", a), "_lead");
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("Hello World", a), "hello_world");
    ASSERT_EQ_STR(sp_dd_normalize_tag_value("", a), "");
    ASSERT_EQ_STR(sp_dd_normalize_name("Internal", a), "Internal");
    ASSERT_EQ_STR(sp_dd_normalize_name("http.server.request", a), "http.server.request");
    ASSERT_EQ_STR(sp_dd_normalize_name("9bad name!", a), "bad_name");
    ASSERT_EQ_STR(sp_dd_normalize_name("a_.b", a), "a.b");
    ASSERT_EQ_STR(sp_dd_normalize_name("", a), "unnamed_operation");
    ASSERT_EQ_STR(sp_dd_normalize_name("123", a), "unnamed_operation");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    ASSERT_EQ_INT(strlen(sp_dd_normalize_name(longname, a)), 100);
    ASSERT_EQ_INT(strlen(sp_dd_normalize_tag_value(longname, a)), 200);
    sp_arena_destroy(a);
}

static void test_endpoint_allowed(void)
{
    ASSERT(sp_dd_endpoint_allowed("web"));
    ASSERT(sp_dd_endpoint_allowed("rpc"));
    ASSERT(sp_dd_endpoint_allowed(""));
    ASSERT(sp_dd_endpoint_allowed(NULL));
    ASSERT(sp_dd_endpoint_allowed("custom"));
    ASSERT(!sp_dd_endpoint_allowed("sql"));
    ASSERT(!sp_dd_endpoint_allowed("db"));
    ASSERT(!sp_dd_endpoint_allowed("redis"));
    ASSERT(!sp_dd_endpoint_allowed("http"));
    ASSERT(!sp_dd_endpoint_allowed("cache"));
}

static void test_ids(void)
{
    const uint8_t sid[8] = {0x7e, 0x1d, 0x2a, 0x00, 0xff, 0x01, 0x02, 0x03};
    ASSERT_EQ_U64(sp_dd_span_id(sid, 8), 0x7e1d2a00ff010203ULL);
    ASSERT_EQ_U64(sp_dd_span_id(sid, 7), 0);
    ASSERT_EQ_U64(sp_dd_span_id(NULL, 8), 0);
    uint8_t tid[16];
    for (int i = 0; i < 16; i++)
        tid[i] = (uint8_t)(i + 1);
    ASSERT_EQ_U64(sp_dd_trace_id_high(tid, 16), 0x0102030405060708ULL);
    ASSERT_EQ_U64(sp_dd_trace_id_low(tid, 16), 0x090a0b0c0d0e0f10ULL);
    ASSERT_EQ_U64(sp_dd_trace_id_low(tid, 8), 0);
    /* A value Datadog shows for span id 0xffffffffffffffff. */
    const uint8_t max[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ_U64(sp_dd_span_id(max, 8), 18446744073709551615ULL);
}

static void test_any_string(void)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_any v;
    opentelemetry__proto__common__v1__any_value__init(&v);
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    double cases[] = {0.1, 3.0, -2.5, 123456789.125, 1e20, 1e-6, 5e-324};
    const char *want[] = {"0.1", "3", "-2.5", "123456789.125", "100000000000000000000",
                          "0.000001", "5e-324"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v.double_value = cases[i];
        ASSERT_EQ_STR(sp_dd_any_string(&v, a), want[i]);
    }
    uint8_t bytes[] = {0xde, 0xad, 0xbe, 0xef};
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v.bytes_value.data = bytes;
    v.bytes_value.len = 4;
    ASSERT_EQ_STR(sp_dd_any_string(&v, a), "3q2+7w==");
    /* Arrays and maps as JSON, map keys sorted, HTML-safe escapes. */
    sp_otlp_kv *kv[2] = {mk_kv(a, "z=1<2"), mk_kv(a, "a#7")};
    Opentelemetry__Proto__Common__V1__KeyValueList kl;
    opentelemetry__proto__common__v1__key_value_list__init(&kl);
    kl.values = kv;
    kl.n_values = 2;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v.kvlist_value = &kl;
    ASSERT_EQ_STR(sp_dd_any_string(&v, a), "{\"a\":7,\"z\":\"1\\u003c2\"}");
    sp_otlp_any *items[2] = {kv[0]->value, kv[1]->value};
    Opentelemetry__Proto__Common__V1__ArrayValue av;
    opentelemetry__proto__common__v1__array_value__init(&av);
    av.values = items;
    av.n_values = 2;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v.array_value = &av;
    ASSERT_EQ_STR(sp_dd_any_string(&v, a), "[\"1\\u003c2\",7]");
    /* As json.Marshal: U+2028 escaped, an invalid byte as U+FFFD. */
    sp_otlp_kv *odd = mk_kv(a, "k=a\xe2\x80\xa8" "b\xff");
    kl.values = &odd;
    kl.n_values = 1;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v.kvlist_value = &kl;
    ASSERT_EQ_STR(sp_dd_any_string(&v, a), "{\"k\":\"a\\u2028b\\ufffd\"}");
    sp_arena_destroy(a);
}

/* Results are owned by the caller's arena, not by the span. */
static void test_results_in_caller_arena(void)
{
    struct sp_arena *span_arena = sp_arena_create(0);
    struct sp_arena *out = sp_arena_create(0);
    struct span_case t = {"x", SRV, "span-name", {"http.request.method=GET", "http.route=/r"},
                          {"service.name=svc"}, NULL};
    struct sp_dd_span_ctx c;
    mk_ctx(span_arena, &t, &c);
    const char *r = sp_dd_resource(&c, out);
    const char *s = sp_dd_service(&c, out);
    const char *m = sp_dd_attr(&c, "http.route", out);
    sp_arena_destroy(span_arena);
    ASSERT_EQ_STR(r, "GET /r");
    ASSERT_EQ_STR(s, "svc");
    ASSERT_EQ_STR(m, "/r");
    sp_arena_destroy(out);
}

/* Every known key classifies to itself; near misses classify to none. */
static void test_key_ids(void)
{
    for (int k = 0; k < SP_DD_KEY_COUNT; k++) {
        const char *name = sp_dd_key_name((enum sp_dd_key)k);
        ASSERT(name != NULL);
        size_t n = strlen(name);
        ASSERT_EQ_INT(sp_dd_key_id(name, n), k);
        char buf[64];
        snprintf(buf, sizeof buf, "%s", name);
        buf[0] ^= 0x20; /* case differs */
        ASSERT_EQ_INT(sp_dd_key_id(buf, n), -1);
        snprintf(buf, sizeof buf, "%s", name);
        buf[n - 1] = '_'; /* last byte differs */
        ASSERT_EQ_INT(sp_dd_key_id(buf, n), -1);
        ASSERT_EQ_INT(sp_dd_key_id(name, n - 1), -1); /* a prefix */
        snprintf(buf, sizeof buf, "%s.x", name);
        ASSERT_EQ_INT(sp_dd_key_id(buf, n + 2), -1);
    }
    ASSERT_EQ_INT(sp_dd_key_id("", 0), -1);
    ASSERT_EQ_INT(sp_dd_key_id("service", 7), -1);
    ASSERT_EQ_INT(sp_dd_key_id("http.request.header.referrer", 28),
                  SP_DD_K_HTTP_REQUEST_HEADER_REFERRER);
    ASSERT(sp_dd_key_name(SP_DD_KEY_COUNT) == NULL);
}

/* The index keeps pdata's first entry per key, even an empty one (the
 * lookup then falls back to the resource, never to a later duplicate). */
static void test_keys_index(void)
{
    struct sp_arena *a = sp_arena_create(0);
    const char *span_specs[] = {"http.route=", "x#1", "http.route=/late", "datadog.foo=1",
                                "db.system=mysql", NULL};
    const char *res_specs[] = {"http.route=/res", "service.name=svc", NULL};
    size_t ns, nr;
    sp_otlp_kv **sa = mk_attrs(a, span_specs, &ns);
    sp_otlp_kv **ra = mk_attrs(a, res_specs, &nr);
    sp_otlp_kv *with_null[3] = {NULL, sa[4], NULL};
    struct sp_dd_keys sk, rk, nk;
    int8_t ids[5];
    sp_dd_keys_index(&sk, sa, ns, ids);
    sp_dd_keys_index(&rk, ra, nr, NULL);
    ASSERT(sk.kv[SP_DD_K_HTTP_ROUTE] == sa[0]);
    ASSERT(sk.kv[SP_DD_K_DB_SYSTEM] == sa[4]);
    ASSERT(sk.kv[SP_DD_K_SERVICE_NAME] == NULL);
    ASSERT_EQ_INT(ids[0], SP_DD_K_HTTP_ROUTE);
    ASSERT_EQ_INT(ids[1], -1);
    ASSERT_EQ_INT(ids[3], -1);
    sp_dd_keys_index(&nk, with_null, 3, NULL);
    ASSERT(nk.kv[SP_DD_K_DB_SYSTEM] == sa[4]);

    sp_otlp_span *s = sp_arena_calloc(a, 1, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->attributes = sa;
    s->n_attributes = ns;
    struct sp_dd_span_ctx scan = {.span = s, .resource_attrs = ra, .n_resource_attrs = nr};
    struct sp_dd_span_ctx ix = scan;
    ix.span_keys = &sk;
    ix.resource_keys = &rk;
    ASSERT_EQ_STR(sp_dd_attr(&scan, "http.route", a), "/res");
    ASSERT_EQ_STR(sp_dd_attr(&ix, "http.route", a), "/res");
    ASSERT_EQ_STR(sp_dd_attr_key(&ix, SP_DD_K_HTTP_ROUTE, a), "/res");
    ASSERT_EQ_STR(sp_dd_attr(&ix, "x", a), "1");
    ASSERT_EQ_STR(sp_dd_attr(&ix, "service.name", a), "svc");
    ASSERT(sp_dd_attr(&ix, "db.statement", a) == NULL);
    ASSERT(sp_dd_attr_key(&ix, SP_DD_KEY_COUNT, a) == NULL);
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_key_ids);
    RUN(test_keys_index);
    for (int pass = 0; pass < 2; pass++) {
        use_index = pass == 1;
        if (use_index)
            fprintf(stderr, "  again through sp_dd_keys indexes\n");
        RUN(test_resource_golden);
        RUN(test_operation_golden);
        RUN(test_span_type_golden);
        RUN(test_service_golden);
    }
    RUN(test_resource_truncated);
    RUN(test_normalizers);
    RUN(test_endpoint_allowed);
    RUN(test_ids);
    RUN(test_any_string);
    RUN(test_results_in_caller_arena);
    return sp_test_summary();
}
