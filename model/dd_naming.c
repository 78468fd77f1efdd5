/* Datadog's names for OpenTelemetry spans (service, operation name,
 * resource, span type), computed by the Datadog Agent's rules for OTLP spans
 * (docs/datadog.md §4.3-4.7; datadog-agent pkg/trace/traceutil
 * otel_util.go and pkg/trace/semantics, read for facts only).
 *
 * Both the join processor (the `trace endpoint` label is the local root's
 * resource) and the Datadog exporter call these, so a label and the trace
 * resource it names are byte-equal.
 *
 * Lookup precedence (the agent's semantics registry): for one concept the
 * fallback keys are tried in order; for each key the span attribute wins over
 * the resource attribute; the first non-empty value wins. Values are
 * rendered the way pdata's Value.AsString() renders them. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "dd_naming.h"
#include "sp_text.h"

#define DD_MAX_RESOURCE_LEN 5000
#define DD_MAX_NAME_LEN 100
#define DD_MAX_SERVICE_LEN 100
#define DD_MAX_TAG_LEN 200

enum {
    KIND_UNSPECIFIED = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_UNSPECIFIED,
    KIND_INTERNAL = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL,
    KIND_SERVER = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER,
    KIND_CLIENT = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT,
    KIND_PRODUCER = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER,
    KIND_CONSUMER = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER,
};

/* ---- a small growable string on the arena's behalf ---- */

struct dd_str {
    char *p;
    size_t len, cap;
    int oom;
};

static void ds_reserve(struct dd_str *s, size_t more)
{
    if (s->oom || s->len + more + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + more + 1)
        cap *= 2;
    char *np = realloc(s->p, cap);
    if (!np) {
        s->oom = 1;
        return;
    }
    s->p = np;
    s->cap = cap;
}

static void ds_putn(struct dd_str *s, const char *p, size_t n)
{
    ds_reserve(s, n);
    if (s->oom)
        return;
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void ds_puts(struct dd_str *s, const char *p)
{
    ds_putn(s, p, strlen(p));
}

static void ds_putc(struct dd_str *s, char c)
{
    ds_putn(s, &c, 1);
}

/* Room for up to max more bytes at the end (NULL once out of memory);
 * ds_commit() then counts the n written. */
static char *ds_tail(struct dd_str *s, size_t max)
{
    ds_reserve(s, max);
    return s->oom ? NULL : s->p + s->len;
}

static void ds_commit(struct dd_str *s, size_t n)
{
    s->len += n;
    s->p[s->len] = 0;
}

/* Moves the string into the arena and frees the heap copy. */
static const char *ds_finish(struct dd_str *s, struct sp_arena *a)
{
    const char *r = NULL;
    if (!s->oom)
        r = sp_arena_strndup(a, s->p ? s->p : "", s->len);
    free(s->p);
    s->p = NULL;
    return r;
}

/* Decimal digits of v into buf (no NUL); their count. */
static size_t fmt_i64(char buf[24], int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    return o;
}

/* x y z concatenated in the arena (what sp_arena_sprintf("%s%s%s") gives,
 * without the format machinery). NULL on ENOMEM. */
static const char *cat3(struct sp_arena *a, const char *x, const char *y, const char *z)
{
    size_t nx = strlen(x), ny = strlen(y), nz = strlen(z);
    char *r = sp_arena_alloc(a, nx + ny + nz + 1);
    if (!r)
        return NULL;
    memcpy(r, x, nx);
    memcpy(r + nx, y, ny);
    memcpy(r + nx + ny, z, nz);
    r[nx + ny + nz] = 0;
    return r;
}

/* ---- pdata Value.AsString() ---- */

/* Go's float formatting as used by pdata (ES6 number-to-string: shortest
 * round-trip digits, 'f' notation unless the exponent is < -6 or >= 21). */
static void fmt_double(struct dd_str *s, double d)
{
    char buf[64];
    if (isnan(d) || isinf(d)) {
        /* pdata renders these as the json error text; keep the same. */
        snprintf(buf, sizeof buf, "json: unsupported value: %s",
                 isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf"));
        ds_puts(s, buf);
        return;
    }
    if (d == 0) {
        ds_puts(s, signbit(d) ? "-0" : "0");
        return;
    }
    /* Shortest precision that round-trips. */
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf holds d.ddde[+-]XX with prec significant digits. */
    char digits[32];
    size_t nd = 0;
    const char *p = buf;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    double ad = fabs(d);
    if (neg)
        ds_putc(s, '-');
    if (ad < 1e-6 || ad >= 1e21) {
        ds_putc(s, digits[0]);
        if (nd > 1) {
            ds_putc(s, '.');
            ds_putn(s, digits + 1, nd - 1);
        }
        snprintf(buf, sizeof buf, "e%c%d", exp10 < 0 ? '-' : '+', abs(exp10));
        ds_puts(s, buf);
        return;
    }
    if (exp10 < 0) {
        ds_puts(s, "0.");
        for (int i = -1; i > exp10; i--)
            ds_putc(s, '0');
        ds_putn(s, digits, nd);
        return;
    }
    size_t intdigits = (size_t)exp10 + 1;
    if (nd <= intdigits) {
        ds_putn(s, digits, nd);
        for (size_t i = nd; i < intdigits; i++)
            ds_putc(s, '0');
    } else {
        ds_putn(s, digits, intdigits);
        ds_putc(s, '.');
        ds_putn(s, digits + intdigits, nd - intdigits);
    }
}

/* Base64 and JSON strings as Go writes them (core/sp_text.c): pdata's
 * AsString() marshals with encoding/json, HTML escaping on. */
static void fmt_base64(struct dd_str *s, const uint8_t *d, size_t n)
{
    char *t = ds_tail(s, SP_BASE64_LEN(n));
    if (t)
        ds_commit(s, sp_base64_encode(t, d, n));
}

static void fmt_json_string(struct dd_str *s, const char *str)
{
    size_t n = strlen(str);
    char *t = ds_tail(s, SP_JSON_QUOTE_MAX(n));
    if (t)
        ds_commit(s, sp_json_quote(t, str, n, SP_JSON_HTML));
}

static void fmt_json_value(struct dd_str *s, const sp_otlp_any *v, int depth);

static int kv_cmp(const void *a, const void *b)
{
    const sp_otlp_kv *x = *(sp_otlp_kv *const *)a, *y = *(sp_otlp_kv *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static void fmt_json_value(struct dd_str *s, const sp_otlp_any *v, int depth)
{
    if (!v || depth > 32) {
        ds_puts(s, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        fmt_json_string(s, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        ds_puts(s, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: {
        char b[24];
        ds_putn(s, b, fmt_i64(b, v->int_value));
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value))
            ds_puts(s, "null");
        else
            fmt_double(s, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        ds_putc(s, '"');
        fmt_base64(s, v->bytes_value.data, v->bytes_value.len);
        ds_putc(s, '"');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        ds_putc(s, '[');
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++) {
                if (i)
                    ds_putc(s, ',');
                fmt_json_value(s, v->array_value->values[i], depth + 1);
            }
        ds_putc(s, ']');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        /* Go marshals map[string]any with sorted keys. */
        ds_putc(s, '{');
        size_t n = v->kvlist_value ? v->kvlist_value->n_values : 0;
        sp_otlp_kv **sorted = n ? malloc(n * sizeof *sorted) : NULL;
        if (n && !sorted) {
            s->oom = 1;
            return;
        }
        for (size_t i = 0; i < n; i++)
            sorted[i] = v->kvlist_value->values[i];
        if (n)
            qsort(sorted, n, sizeof *sorted, kv_cmp);
        for (size_t i = 0; i < n; i++) {
            if (i)
                ds_putc(s, ',');
            fmt_json_string(s, sorted[i]->key ? sorted[i]->key : "");
            ds_putc(s, ':');
            fmt_json_value(s, sorted[i]->value, depth + 1);
        }
        free(sorted);
        ds_putc(s, '}');
        break;
    }
    default:
        ds_puts(s, "null");
    }
}

const char *sp_dd_any_string(const sp_otlp_any *v, struct sp_arena *a)
{
    if (!v)
        return "";
    struct dd_str s = {0};
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return v->string_value ? v->string_value : "";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return v->bool_value ? "true" : "false";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: {
        char b[24];
        return sp_arena_strndup(a, b, fmt_i64(b, v->int_value));
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        fmt_double(&s, v->double_value);
        return ds_finish(&s, a);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        fmt_base64(&s, v->bytes_value.data, v->bytes_value.len);
        return ds_finish(&s, a);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        fmt_json_value(&s, v, 0);
        return ds_finish(&s, a);
    default:
        return "";
    }
}

/* ---- lookups ---- */

/* The known keys (enum sp_dd_key) and a small open-addressing table that
 * classifies an attribute key with one hash of a few of its bytes and one
 * memcmp, built on first use. */
static const char *const key_names[SP_DD_KEY_COUNT] = {
    [SP_DD_K_SERVICE_NAME] = "service.name",
    [SP_DD_K_RESOURCE_NAME] = "resource.name",
    [SP_DD_K_OPERATION_NAME] = "operation.name",
    [SP_DD_K_SPAN_TYPE] = "span.type",
    [SP_DD_K_HTTP_REQUEST_METHOD] = "http.request.method",
    [SP_DD_K_HTTP_METHOD] = "http.method",
    [SP_DD_K_HTTP_ROUTE] = "http.route",
    [SP_DD_K_MESSAGING_OPERATION] = "messaging.operation",
    [SP_DD_K_MESSAGING_DESTINATION] = "messaging.destination",
    [SP_DD_K_MESSAGING_DESTINATION_NAME] = "messaging.destination.name",
    [SP_DD_K_MESSAGING_SYSTEM] = "messaging.system",
    [SP_DD_K_RPC_METHOD] = "rpc.method",
    [SP_DD_K_RPC_SERVICE] = "rpc.service",
    [SP_DD_K_RPC_SYSTEM] = "rpc.system",
    [SP_DD_K_GRAPHQL_OPERATION_TYPE] = "graphql.operation.type",
    [SP_DD_K_GRAPHQL_OPERATION_NAME] = "graphql.operation.name",
    [SP_DD_K_DB_SYSTEM_NAME] = "db.system.name",
    [SP_DD_K_DB_SYSTEM] = "db.system",
    [SP_DD_K_DB_STATEMENT] = "db.statement",
    [SP_DD_K_DB_QUERY_TEXT] = "db.query.text",
    [SP_DD_K_FAAS_INVOKED_PROVIDER] = "faas.invoked_provider",
    [SP_DD_K_FAAS_INVOKED_NAME] = "faas.invoked_name",
    [SP_DD_K_FAAS_TRIGGER] = "faas.trigger",
    [SP_DD_K_NETWORK_PROTOCOL_NAME] = "network.protocol.name",
    [SP_DD_K_HTTP_STATUS_CODE] = "http.status_code",
    [SP_DD_K_HTTP_RESPONSE_STATUS_CODE] = "http.response.status_code",
    [SP_DD_K_DD_MEASURED] = "_dd.measured",
    [SP_DD_K_SERVICE_VERSION] = "service.version",
    [SP_DD_K_DEPLOYMENT_ENVIRONMENT_NAME] = "deployment.environment.name",
    [SP_DD_K_DEPLOYMENT_ENVIRONMENT] = "deployment.environment",
    [SP_DD_K_DB_NAMESPACE] = "db.namespace",
    [SP_DD_K_CLIENT_ADDRESS] = "client.address",
    [SP_DD_K_HTTP_RESPONSE_BODY_SIZE] = "http.response.body.size",
    [SP_DD_K_HTTP_REQUEST_BODY_SIZE] = "http.request.body.size",
    [SP_DD_K_HTTP_REQUEST_HEADER_REFERRER] = "http.request.header.referrer",
    [SP_DD_K_NETWORK_PROTOCOL_VERSION] = "network.protocol.version",
    [SP_DD_K_SERVER_ADDRESS] = "server.address",
    [SP_DD_K_URL_FULL] = "url.full",
    [SP_DD_K_USER_AGENT_ORIGINAL] = "user_agent.original",
    [SP_DD_K_ANALYTICS_EVENT] = "analytics.event",
    [SP_DD_K_SAMPLING_PRIORITY] = "sampling.priority",
    [SP_DD_K_SERVICE_INSTANCE_ID] = "service.instance.id",
    [SP_DD_K_HOST_NAME] = "host.name",
    [SP_DD_K_RPC_GRPC_STATUS_CODE] = "rpc.grpc.status_code",
    [SP_DD_K_GRPC_CODE] = "grpc.code",
    [SP_DD_K_RPC_GRPC_STATUS_DOT_CODE] = "rpc.grpc.status.code",
    [SP_DD_K_GRPC_STATUS_DOT_CODE] = "grpc.status.code",
};

#define KEY_SLOTS 256 /* power of two, > 4x the keys: most misses end at once */
_Static_assert(SP_DD_KEY_COUNT < 128 && SP_DD_KEY_COUNT < KEY_SLOTS,
               "key ids are int8_t (sp_dd_keys_index) and uint8_t slots");

static struct {
    uint8_t slot[KEY_SLOTS]; /* 0 = empty, else id + 1 */
    uint8_t len[SP_DD_KEY_COUNT];
    size_t min_len, max_len;
} key_tab;
static pthread_once_t key_tab_once = PTHREAD_ONCE_INIT;

/* Mixes the length and four bytes spread over the key: known keys differ
 * there, and it reads no byte past len. */
static uint32_t key_hash(const unsigned char *s, size_t n)
{
    uint32_t h = (uint32_t)n * 0x9E3779B1u;
    h ^= (uint32_t)s[0] * 0x85EBCA77u;
    h ^= (uint32_t)s[n - 1] * 0xC2B2AE3Du;
    h ^= (uint32_t)s[n / 2] * 0x27D4EB2Fu;
    h ^= (uint32_t)s[(n * 3) / 4] * 0x165667B1u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return h;
}

static void key_tab_build(void)
{
    key_tab.min_len = SIZE_MAX;
    for (int id = 0; id < SP_DD_KEY_COUNT; id++) {
        size_t n = strlen(key_names[id]);
        key_tab.len[id] = (uint8_t)n;
        if (n < key_tab.min_len)
            key_tab.min_len = n;
        if (n > key_tab.max_len)
            key_tab.max_len = n;
        uint32_t i = key_hash((const unsigned char *)key_names[id], n) & (KEY_SLOTS - 1);
        while (key_tab.slot[i])
            i = (i + 1) & (KEY_SLOTS - 1);
        key_tab.slot[i] = (uint8_t)(id + 1);
    }
}

static inline __attribute__((always_inline)) int key_id(const char *key, size_t len)
{
    if (len < key_tab.min_len || len > key_tab.max_len)
        return -1;
    for (uint32_t i = key_hash((const unsigned char *)key, len) & (KEY_SLOTS - 1);;
         i = (i + 1) & (KEY_SLOTS - 1)) {
        unsigned e = key_tab.slot[i];
        if (!e)
            return -1;
        if (key_tab.len[e - 1] == len && memcmp(key_names[e - 1], key, len) == 0)
            return (int)e - 1;
    }
}

int sp_dd_key_id(const char *key, size_t len)
{
    pthread_once(&key_tab_once, key_tab_build);
    return key_id(key, len);
}

const char *sp_dd_key_name(enum sp_dd_key k)
{
    return (unsigned)k < SP_DD_KEY_COUNT ? key_names[k] : NULL;
}

void sp_dd_keys_index(struct sp_dd_keys *k, sp_otlp_kv *const *kv, size_t n, int8_t *ids)
{
    pthread_once(&key_tab_once, key_tab_build);
    memset(k, 0, sizeof *k);
    for (size_t i = 0; i < n; i++) {
        const sp_otlp_kv *e = kv ? kv[i] : NULL;
        int id = -1;
        if (e && e->key) {
            size_t len = strlen(e->key);
            id = key_id(e->key, len);
            /* pdata's Map.Get: the first entry with the key wins. */
            if (id >= 0 && !k->kv[id])
                k->kv[id] = e;
        }
        if (ids)
            ids[i] = (int8_t)id;
    }
}

const sp_otlp_any *sp_dd_kv_find(sp_otlp_kv *const *kv, size_t n, const char *key)
{
    if (!kv)
        return NULL;
    /* pdata's Map.Get returns the first entry with the key. */
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0)
            return kv[i]->value;
    return NULL;
}

/* The value of a known key in one list: from its index when there is one,
 * else by a scan (the same first entry either way). */
static const sp_otlp_any *find_id(const struct sp_dd_keys *ix, sp_otlp_kv *const *kv, size_t n,
                                  int id)
{
    if (ix) {
        const sp_otlp_kv *e = ix->kv[id];
        return e ? e->value : NULL;
    }
    return sp_dd_kv_find(kv, n, key_names[id]);
}

/* A value as a non-empty string, or NULL. The NULL-on-ENOMEM case is
 * folded into "absent". */
static const char *nonempty(const sp_otlp_any *v, struct sp_arena *a)
{
    if (!v)
        return NULL;
    const char *s = sp_dd_any_string(v, a);
    return s && *s ? s : NULL;
}

/* A value that is a non-empty string, or NULL: the semantics registry
 * reads string concepts only from string-typed attributes (datadog-agent
 * pkg/trace/semantics/lookup_pdata.go, PDataMapAccessor.GetString: ""
 * unless the pdata type is Str), so an int service.name is absent. */
static const char *nonempty_str(const sp_otlp_any *v)
{
    if (!v || v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
        !v->string_value || !*v->string_value)
        return NULL;
    return v->string_value;
}

/* One key of a string concept: the span attribute if a non-empty string,
 * else the resource attribute if one (OTelSpanAccessor.GetString), else
 * NULL. */
static const char *lookup_key(const struct sp_dd_span_ctx *c, int id, struct sp_arena *a)
{
    (void)a;
    const char *s = NULL;
    if (c->span)
        s = nonempty_str(find_id(c->span_keys, c->span->attributes, c->span->n_attributes, id));
    if (!s)
        s = nonempty_str(find_id(c->resource_keys, c->resource_attrs, c->n_resource_attrs, id));
    return s;
}

/* An int64 concept's key (PDataMapAccessor.GetInt64): an int, or a double
 * that is an exact integer; span attribute first, then resource. */
static bool any_int(const sp_otlp_any *v, int64_t *out)
{
    if (!v)
        return false;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
        *out = v->int_value;
        return true;
    }
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE &&
        isfinite(v->double_value) && v->double_value >= -9.2e18 && v->double_value <= 9.2e18 &&
        (double)(int64_t)v->double_value == v->double_value) {
        *out = (int64_t)v->double_value;
        return true;
    }
    return false;
}

bool sp_dd_attr_int(const struct sp_dd_span_ctx *c, enum sp_dd_key k, int64_t *out)
{
    if ((unsigned)k >= SP_DD_KEY_COUNT)
        return false;
    if (c->span &&
        any_int(find_id(c->span_keys, c->span->attributes, c->span->n_attributes, (int)k), out))
        return true;
    return any_int(find_id(c->resource_keys, c->resource_attrs, c->n_resource_attrs, (int)k), out);
}

/* The same for any key (sp_dd_attr with a key outside enum sp_dd_key). */
static const char *lookup_key_str(const struct sp_dd_span_ctx *c, const char *key,
                                  struct sp_arena *a)
{
    const char *s = NULL;
    if (c->span)
        s = nonempty(sp_dd_kv_find(c->span->attributes, c->span->n_attributes, key), a);
    if (!s)
        s = nonempty(sp_dd_kv_find(c->resource_attrs, c->n_resource_attrs, key), a);
    return s;
}

/* A concept: its keys in the registry's order (ending with -1), first
 * non-empty wins. */
static const char *lookup(const struct sp_dd_span_ctx *c, struct sp_arena *a, const int8_t *keys)
{
    for (; *keys >= 0; keys++) {
        const char *s = lookup_key(c, *keys, a);
        if (s)
            return s;
    }
    return NULL;
}

static const int8_t K_SERVICE[] = {SP_DD_K_SERVICE_NAME, -1};
static const int8_t K_RESOURCE[] = {SP_DD_K_RESOURCE_NAME, -1};
static const int8_t K_OPERATION[] = {SP_DD_K_OPERATION_NAME, -1};
static const int8_t K_SPAN_TYPE[] = {SP_DD_K_SPAN_TYPE, -1};
static const int8_t K_HTTP_METHOD[] = {SP_DD_K_HTTP_REQUEST_METHOD, SP_DD_K_HTTP_METHOD, -1};
static const int8_t K_HTTP_ROUTE[] = {SP_DD_K_HTTP_ROUTE, -1};
static const int8_t K_MSG_OP[] = {SP_DD_K_MESSAGING_OPERATION, -1};
static const int8_t K_MSG_DEST[] = {SP_DD_K_MESSAGING_DESTINATION,
                                    SP_DD_K_MESSAGING_DESTINATION_NAME, -1};
static const int8_t K_MSG_SYSTEM[] = {SP_DD_K_MESSAGING_SYSTEM, -1};
static const int8_t K_RPC_METHOD[] = {SP_DD_K_RPC_METHOD, -1};
static const int8_t K_RPC_SERVICE[] = {SP_DD_K_RPC_SERVICE, -1};
static const int8_t K_RPC_SYSTEM[] = {SP_DD_K_RPC_SYSTEM, -1};
static const int8_t K_GQL_TYPE[] = {SP_DD_K_GRAPHQL_OPERATION_TYPE, -1};
static const int8_t K_GQL_NAME[] = {SP_DD_K_GRAPHQL_OPERATION_NAME, -1};
/* The newest registry also knows semconv 1.30's db.system.name, first. */
static const int8_t K_DB_SYSTEM[] = {SP_DD_K_DB_SYSTEM_NAME, SP_DD_K_DB_SYSTEM, -1};
static const int8_t K_DB_STATEMENT[] = {SP_DD_K_DB_STATEMENT, SP_DD_K_DB_QUERY_TEXT, -1};
static const int8_t K_FAAS_PROVIDER[] = {SP_DD_K_FAAS_INVOKED_PROVIDER, -1};
static const int8_t K_FAAS_NAME[] = {SP_DD_K_FAAS_INVOKED_NAME, -1};
static const int8_t K_FAAS_TRIGGER[] = {SP_DD_K_FAAS_TRIGGER, -1};
static const int8_t K_NET_PROTO[] = {SP_DD_K_NETWORK_PROTOCOL_NAME, -1};

/* Results must live in the caller's arena, not in the span's batch: the
 * exporter may keep them past the batch. */
static const char *own(const char *s, struct sp_arena *a)
{
    return s ? sp_arena_strdup(a, s) : NULL;
}

const char *sp_dd_attr(const struct sp_dd_span_ctx *c, const char *key, struct sp_arena *a)
{
    return key ? own(lookup_key_str(c, key, a), a) : NULL;
}

const char *sp_dd_attr_key(const struct sp_dd_span_ctx *c, enum sp_dd_key k, struct sp_arena *a)
{
    return (unsigned)k < SP_DD_KEY_COUNT ? lookup_key(c, (int)k, a) : NULL;
}

/* ---- normalisation (datadog-agent pkg/trace/traceutil/normalize) ---- */

/* Non-ASCII code points: the agent's normalize() (datadog-agent
 * pkg/trace/traceutil/normalize/normalize.go, normalize) asks Go's unicode
 * package: an upper-case letter (unicode.IsUpper: category Lu) is replaced
 * by unicode.ToLower (the simple lower-case mapping) when both encode to the
 * same number of bytes; then letters (unicode.IsLetter: L*) and decimal
 * digits (unicode.IsDigit: Nd) are kept and everything else (marks,
 * punctuation, symbols, unassigned, invalid UTF-8) is cut. utf8proc gives
 * the same categories and the same simple mapping from its Unicode tables
 * (tests/unit/test_dd_unicode.c compares every code point with Go's). */
enum rune_class { RUNE_CUT, RUNE_KEEP };

static size_t utf8_width(uint32_t r)
{
    return r < 0x80 ? 1 : r < 0x800 ? 2 : r < 0x10000 ? 3 : 4;
}

static enum rune_class rune_class(uint32_t r, unsigned char *at, size_t width)
{
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)r);
    if (p->category == UTF8PROC_CATEGORY_LU) {
        uint32_t low = (uint32_t)utf8proc_tolower((utf8proc_int32_t)r);
        if (low != r && utf8_width(low) == width) {
            utf8proc_encode_char((utf8proc_int32_t)low, at);
            p = utf8proc_get_property((utf8proc_int32_t)low);
        }
    }
    switch (p->category) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
        return RUNE_KEEP;
    default:
        return RUNE_CUT;
    }
}

static int is_valid_tag_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || c == ':' || (c >= '0' && c <= '9') || c == '.' || c == '/' ||
           c == '-';
}

static int is_normalized_ascii_tag(const char *t, size_t n)
{
    if (n == 0)
        return 1;
    if (n > DD_MAX_TAG_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)t[i];
        if (is_valid_tag_char(b))
            continue;
        if (b == '_') {
            i++;
            if (i == n || !is_valid_tag_char((unsigned char)t[i]))
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

const char *sp_dd_normalize_tag_value(const char *v, struct sp_arena *a)
{
    size_t n = strlen(v);
    if (is_normalized_ascii_tag(v, n))
        return v;
    unsigned char *tag = (unsigned char *)sp_arena_memdup(a, v, n + 1);
    if (!tag)
        return NULL;
    /* Cuts: [start, end) byte ranges of illegal characters, merged when
     * adjacent; each becomes one '_' unless it reaches the end. */
    size_t ncuts = 0, capcuts = 16;
    size_t(*cuts)[2] = malloc(capcuts * sizeof *cuts);
    if (!cuts)
        return NULL;
    size_t i = 0, jump = 0, chars = 0;
    while (i < n) {
        uint32_t r;
        jump = sp_utf8_decode(tag + i, n - i, &r);
        if (r < 0x80 && ((r >= 'a' && r <= 'z') || r == ':')) {
            chars++;
        } else if (r >= 'A' && r <= 'Z') {
            tag[i] = (unsigned char)(r + ('a' - 'A'));
            chars++;
        } else if (r >= 0x80 && rune_class(r, tag + i, jump) == RUNE_KEEP) {
            chars++;
        } else if ((r >= '0' && r <= '9') || r == '.' || r == '/' || r == '-') {
            chars++;
        } else {
            chars++;
            if (ncuts > 0 && cuts[ncuts - 1][1] >= i) {
                cuts[ncuts - 1][1] += jump;
            } else {
                if (ncuts == capcuts) {
                    capcuts *= 2;
                    void *nc = realloc(cuts, capcuts * sizeof *cuts);
                    if (!nc) {
                        free(cuts);
                        return NULL;
                    }
                    cuts = nc;
                }
                cuts[ncuts][0] = i;
                cuts[ncuts][1] = i + jump;
                ncuts++;
            }
        }
        if (i + jump >= 2 * DD_MAX_TAG_LEN || chars >= DD_MAX_TAG_LEN)
            break;
        i += jump;
    }
    size_t end = i < n ? i + jump : n;
    size_t len = end;
    size_t delta = 0;
    for (size_t k = 0; k < ncuts; k++) {
        size_t cs = cuts[k][0] - delta, ce = cuts[k][1] - delta;
        if (ce >= len) {
            len = cs;
            break;
        }
        tag[cs] = '_';
        if (ce - cs == 1)
            continue;
        memmove(tag + cs + 1, tag + ce, len - ce);
        len -= (ce - cs) - 1;
        delta += cuts[k][1] - cuts[k][0] - 1;
    }
    free(cuts);
    tag[len] = 0;
    return (const char *)tag;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

const char *sp_dd_normalize_name(const char *name, struct sp_arena *a)
{
    size_t n = strlen(name);
    if (n == 0)
        return "unnamed_operation";
    n = sp_utf8_truncate(name, n, DD_MAX_NAME_LEN);
    size_t i = 0;
    while (i < n && !is_alpha((unsigned char)name[i]))
        i++;
    if (i == n)
        return "unnamed_operation";
    /* Already valid (alpha first, then alnum, '.' or '_' not after '_')? */
    int valid = 1;
    for (size_t j = i + 1; j < n; j++) {
        unsigned char b = (unsigned char)name[j];
        if (!(is_alnum(b) || (b == '.' && name[j - 1] != '_') ||
              (b == '_' && name[j - 1] != '_'))) {
            valid = 0;
            break;
        }
    }
    if (valid) {
        size_t e = n;
        if (name[e - 1] == '_')
            e--;
        return sp_arena_strndup(a, name + i, e - i);
    }
    char *res = sp_arena_alloc(a, n + 1);
    if (!res)
        return NULL;
    size_t ptr = 0;
    for (; i < n; i++) {
        unsigned char b = (unsigned char)name[i];
        if (is_alnum(b)) {
            res[ptr++] = (char)b;
        } else if (b == '.') {
            if (res[ptr - 1] == '_')
                res[ptr - 1] = '.';
            else
                res[ptr++] = '.';
        } else if (res[ptr - 1] != '.' && res[ptr - 1] != '_') {
            res[ptr++] = '_';
        }
    }
    if (res[ptr - 1] == '_')
        ptr--;
    res[ptr] = 0;
    return res;
}

static const char *normalize_service(const char *svc, struct sp_arena *a)
{
    if (!svc || !*svc)
        return "unnamed-service";
    size_t n = sp_utf8_truncate(svc, strlen(svc), DD_MAX_SERVICE_LEN);
    const char *t = svc;
    if (n != strlen(svc)) {
        t = sp_arena_strndup(a, svc, n);
        if (!t)
            return NULL;
    }
    const char *s = sp_dd_normalize_tag_value(t, a);
    if (!s)
        return NULL;
    return *s ? s : "unnamed-service";
}

/* ---- the four names ---- */

const char *sp_dd_service(const struct sp_dd_span_ctx *c, struct sp_arena *a)
{
    /* No datadog.service override: the agent dropped the datadog.*
     * namespace (PR #45833); service.name only, as a string. */
    const char *s = lookup(c, a, K_SERVICE);
    if (!s)
        s = "otlpresourcenoservicename";
    return own(normalize_service(s, a), a);
}

static int span_kind(const struct sp_dd_span_ctx *c)
{
    return c->span ? (int)c->span->kind : KIND_UNSPECIFIED;
}

static const char *norm_lookup(const struct sp_dd_span_ctx *c, struct sp_arena *a,
                               const int8_t *keys)
{
    const char *v = lookup(c, a, keys);
    if (!v)
        return NULL;
    v = sp_dd_normalize_tag_value(v, a);
    return v && *v ? v : NULL;
}

#define LIT(x) (*lit = true, (x))
/* *lit is set when the name is one of the literals below (valid names:
 * NormalizeName leaves them as they are). */
static const char *operation_v2(const struct sp_dd_span_ctx *c, struct sp_arena *a, bool *lit)
{
    const char *v;
    int kind = span_kind(c);
    int client = kind == KIND_CLIENT, server = kind == KIND_SERVER;

    if ((v = norm_lookup(c, a, K_OPERATION)))
        return v;
    if (lookup(c, a, K_HTTP_METHOD)) {
        if (server)
            return LIT("http.server.request");
        if (client)
            return LIT("http.client.request");
    }
    if ((v = norm_lookup(c, a, K_DB_SYSTEM)) && client)
        return cat3(a, v, ".query", "");
    const char *sys = norm_lookup(c, a, K_MSG_SYSTEM);
    const char *op = norm_lookup(c, a, K_MSG_OP);
    if (sys && op &&
        (kind == KIND_CLIENT || kind == KIND_SERVER || kind == KIND_CONSUMER ||
         kind == KIND_PRODUCER))
        return cat3(a, sys, ".", op);
    const char *rpc = norm_lookup(c, a, K_RPC_SYSTEM);
    if (rpc && strcmp(rpc, "aws-api") == 0 && client) {
        const char *svc = norm_lookup(c, a, K_RPC_SERVICE);
        if (svc)
            return cat3(a, "aws.", svc, ".request");
        return LIT("aws.client.request");
    }
    if (rpc && client)
        return cat3(a, rpc, ".client.request", "");
    if (rpc && server)
        return cat3(a, rpc, ".server.request", "");
    const char *prov = norm_lookup(c, a, K_FAAS_PROVIDER);
    const char *fname = norm_lookup(c, a, K_FAAS_NAME);
    if (prov && fname && client) {
        const char *pf = cat3(a, prov, ".", fname);
        return pf ? cat3(a, pf, ".invoke", "") : NULL;
    }
    const char *trig = norm_lookup(c, a, K_FAAS_TRIGGER);
    if (trig && server)
        return cat3(a, trig, ".invoke", "");
    if (norm_lookup(c, a, K_GQL_TYPE))
        return LIT("graphql.server.request");
    const char *proto = norm_lookup(c, a, K_NET_PROTO);
    if (server)
        return proto ? cat3(a, proto, ".server.request", "") : LIT("server.request");
    if (client)
        return proto ? cat3(a, proto, ".client.request", "") : LIT("client.request");
    switch (kind) {
    case KIND_PRODUCER: return LIT("Producer");
    case KIND_CONSUMER: return LIT("Consumer");
    default: return LIT("Internal");
    }
}

#undef LIT

const char *sp_dd_operation_name(const struct sp_dd_span_ctx *c, struct sp_arena *a)
{
    bool lit = false;
    const char *v = operation_v2(c, a, &lit);
    if (!v || lit)
        return v;
    /* The agent's normaliser runs NormalizeName on every span name. */
    return sp_dd_normalize_name(v, a);
}

static const char *join2(struct sp_arena *a, const char *x, const char *y)
{
    return y ? cat3(a, x, " ", y) : x;
}

/* *from_query (when not NULL) is set when the resource is the database
 * statement or query text. */
static const char *resource_v2(const struct sp_dd_span_ctx *c, struct sp_arena *a,
                               bool *from_query)
{
    const char *m;
    if ((m = lookup(c, a, K_RESOURCE)))
        return m;
    if ((m = lookup(c, a, K_HTTP_METHOD))) {
        if (strcmp(m, "_OTHER") == 0)
            m = "HTTP";
        if (span_kind(c) == KIND_SERVER)
            return join2(a, m, lookup(c, a, K_HTTP_ROUTE));
        return m;
    }
    if ((m = lookup(c, a, K_MSG_OP)))
        return join2(a, m, lookup(c, a, K_MSG_DEST));
    if ((m = lookup(c, a, K_RPC_METHOD)))
        return join2(a, m, lookup(c, a, K_RPC_SERVICE));
    if ((m = lookup(c, a, K_GQL_TYPE)))
        return join2(a, m, lookup(c, a, K_GQL_NAME));
    if (lookup(c, a, K_DB_SYSTEM)) {
        const char *st = lookup(c, a, K_DB_STATEMENT);
        if (st) {
            if (from_query)
                *from_query = true;
            return st;
        }
    }
    return c->span && c->span->name ? c->span->name : "";
}

static const char *resource(const struct sp_dd_span_ctx *c, struct sp_arena *a, bool *from_query)
{
    const char *r = resource_v2(c, a, from_query);
    if (!r)
        return NULL;
    size_t n = strlen(r);
    if (n > DD_MAX_RESOURCE_LEN) {
        /* Cut as the agent's TruncateUTF8 cuts, so the endpoint label and
         * the exported resource stay byte-equal. */
        r = sp_arena_strndup(a, r, sp_utf8_truncate(r, n, DD_MAX_RESOURCE_LEN));
    }
    else if (n == 0)
        /* The agent's normaliser: an empty resource takes the name. */
        r = sp_dd_operation_name(c, a);
    return own(r, a);
}

const char *sp_dd_resource(const struct sp_dd_span_ctx *c, struct sp_arena *a)
{
    return resource(c, a, NULL);
}

/* attributes.DBTypes: db.system -> span type; unknown systems are "db". */
static const char *db_type(const char *sys)
{
    static const char *const sql[] = {
        "other_sql", "mssql",      "mysql",     "oracle",    "db2",       "postgresql",
        "redshift",  "cloudscape", "hsqldb",    "maxdb",     "ingres",    "firstsql",
        "edb",       "cache",      "firebird",  "derby",     "informix",  "mariadb",
        "sqlite",    "sybase",     "teradata",  "vertica",   "h2",        "coldfusion",
        "cockroachdb", "progress", "hanadb",    "adabas",    "filemaker", "instantdb",
        "interbase", "netezza",    "pervasive", "pointbase", "clickhouse",
    };
    static const struct {
        const char *sys, *type;
    } other[] = {
        {"cassandra", "cassandra"}, {"redis", "redis"},
        {"memcached", "memcached"}, {"mongodb", "mongodb"},
        {"elasticsearch", "elasticsearch"}, {"opensearch", "opensearch"},
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (strcmp(sys, sql[i]) == 0)
            return "sql";
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(sys, other[i].sys) == 0)
            return other[i].type;
    return "db";
}

const char *sp_dd_span_type(const struct sp_dd_span_ctx *c, struct sp_arena *a)
{
    const char *t;
    if ((t = lookup(c, a, K_SPAN_TYPE)))
        return own(t, a);
    switch (span_kind(c)) {
    case KIND_SERVER:
        return "web";
    case KIND_CLIENT: {
        const char *db = norm_lookup(c, a, K_DB_SYSTEM);
        return db ? db_type(db) : "http";
    }
    default:
        return "custom";
    }
}

bool sp_dd_root_endpoint(const struct sp_dd_span_ctx *c, bool label_all_roots,
                         struct sp_arena *a, const char **endpoint)
{
    *endpoint = NULL;
    const char *type = sp_dd_span_type(c, a);
    if (label_all_roots) {
        if (!sp_dd_endpoint_allowed(type))
            return false;
        *endpoint = sp_dd_resource(c, a);
        return true;
    }
    /* dd-trace-go labels a root typed web or rpc, or untyped (""): an OTel
     * root of kind INTERNAL (or UNSPECIFIED, which OTLP says to read as
     * INTERNAL) without span.type is what dd-trace-go leaves untyped; the
     * "custom" type the agent gives CONSUMER and PRODUCER roots stands for
     * dd-trace-go's "queue", which it excludes, as it excludes clients. */
    int kind = span_kind(c);
    bool typed_ok = type && (strcmp(type, "web") == 0 || strcmp(type, "rpc") == 0);
    bool untyped = (kind == KIND_INTERNAL || kind == KIND_UNSPECIFIED) &&
                   !lookup(c, a, K_SPAN_TYPE) && type && strcmp(type, "custom") == 0;
    if (!typed_ok && !untyped)
        return false;
    bool from_query = false;
    const char *r = resource(c, a, &from_query);
    /* A statement may hold literals (PII) and is never obfuscated here. */
    if (from_query)
        return false;
    *endpoint = r;
    return true;
}

bool sp_dd_endpoint_allowed(const char *span_type)
{
    /* dd-trace-go sets the endpoint only for local roots typed web, rpc or
     * untyped. An OTel span without span.type that is neither SERVER nor
     * CLIENT maps to "custom": that is the untyped case. */
    if (!span_type || !*span_type)
        return true;
    return strcmp(span_type, "web") == 0 || strcmp(span_type, "rpc") == 0 ||
           strcmp(span_type, "custom") == 0;
}

const char *sp_dd_span_kind_name(int kind)
{
    switch (kind) {
    case KIND_INTERNAL: return "internal";
    case KIND_SERVER: return "server";
    case KIND_CLIENT: return "client";
    case KIND_PRODUCER: return "producer";
    case KIND_CONSUMER: return "consumer";
    default: return "unspecified";
    }
}

/* ---- ids ---- */

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint64_t sp_dd_span_id(const uint8_t *id, size_t len)
{
    return id && len == 8 ? be64(id) : 0;
}

uint64_t sp_dd_trace_id_low(const uint8_t *id, size_t len)
{
    return id && len == 16 ? be64(id + 8) : 0;
}

uint64_t sp_dd_trace_id_high(const uint8_t *id, size_t len)
{
    return id && len == 16 ? be64(id) : 0;
}
