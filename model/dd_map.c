/* OTLP spans -> Datadog spans (see dd_map.h).
 *
 * This is the Datadog Agent's OTLP ingestion redone in C, so the traces
 * spanprof sends look exactly like the ones an Agent or the OTel Collector's
 * Datadog exporter would send (docs/datadog.md §4; datadog-agent
 * pkg/trace/transform/transform.go `otelSpanToDDSpanOld`, pkg/trace/api/otlp.go
 * `receiveResourceSpansV2`/`createChunks`, pkg/trace/agent normalizer.go and
 * truncator.go, read for facts only):
 *
 *   - names (service, operation, resource, type) come from dd_naming.c, the
 *     same code the join uses for its `trace endpoint` label;
 *   - meta/metrics follow the agent's order of precedence: minimal fields,
 *     span attributes (HTTP keys remapped, ints and doubles to metrics;
 *     no datadog.* overrides since PR #45833), otel.* keys, events/links as
 *     JSON, error from the status message or the HTTP status (no longer
 *     from exception events, PR #44025), env, resource attributes, scope
 *     attributes, db.name;
 *   - then what the agent does before sending: normalisation, truncation,
 *     `_top_level` per chunk, chunk priority and `_dd.p.dm`;
 *   - plus spanprof's Code Hotspots bridge (runtime-id on every span of an
 *     instance whose runtime id the join knows, _dd.profiling.enabled on
 *     its local roots).
 *
 * Spans are grouped into one TraceChunk per (resource, low 64-bit trace id)
 * and one TracerPayload per distinct resource. Everything the result points
 * at is copied into the caller's arena, so it outlives the OTLP batch.
 * Working memory (hash maps, string builders) is malloc'd and freed before
 * returning. Packing the result is dd_agent_payload.c's job, the other
 * encodings dd_encode.c's. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dd_naming.h"
#include "dd_json.h"
#include "dd_map.h"
#include "sp_hash.h"
#include "sp_hindex.h"
#include "sp_text.h"

/* Agent limits (pkg/trace/agent/truncator.go, normalizer.go). */
#define DD_MAX_RESOURCE_LEN 5000
#define DD_MAX_META_KEY_LEN 200
#define DD_MAX_META_VAL_LEN 25000
#define DD_MAX_METRIC_KEY_LEN 200
#define DD_MAX_TYPE_LEN 100
/* Agent defaults written into every AgentPayload (pkg/trace/config New()). */
#define DD_TARGET_TPS 10.0
#define DD_ERROR_TPS 10.0
#define DD_DEFAULT_ENV "none"
/* spanprof never samples: the OTLP probabilistic sampler's rate is 1. */
#define DD_OTLP_SAMPLE_RATE "1.00"
#define DD_PRIORITY_AUTO_KEEP 1
/* OTLP span flags (trace.proto SpanFlags). */
#define OTLP_FLAG_HAS_IS_REMOTE 0x100u
#define OTLP_FLAG_IS_REMOTE 0x200u
/* 2000-01-01T00:00:00Z in ns: the agent replaces earlier start times. */
#define DD_YEAR2000_NS INT64_C(946684800000000000)

#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define SPAN_KIND(x) OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_##x
#define STATUS_ERROR OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* 8 bytes at p as a big-endian number: compares like memcmp. */
static uint64_t load_be64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* A meta/metrics key's hash, and its sort prefix: the first 8 bytes,
 * big-endian, zero padded (ordered like strcmp on those bytes). The hash
 * mixes the length with the first and last 8 bytes, read as two words. */
static uint32_t key_hash_pfx_n(const char *k, size_t n, uint64_t *pfx)
{
    uint64_t head, tail;
    if (n >= 8) {
        head = load_be64(k);
        tail = load_be64(k + n - 8);
    } else {
        head = 0;
        for (size_t i = 0; i < n; i++)
            head |= (uint64_t)(unsigned char)k[i] << (56 - 8 * i);
        tail = head;
    }
    *pfx = head;
    uint64_t h = head * UINT64_C(0x9E3779B97F4A7C15) ^ (tail + n) * UINT64_C(0xC2B2AE3D27D4EB4F);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 32;
    return (uint32_t)h;
}

static uint32_t key_hash_pfx(const char *k, uint64_t *pfx)
{
    return key_hash_pfx_n(k, strlen(k), pfx);
}

/* An attribute as a non-empty string (pdata AsString), or NULL. */
static const char *kv_str(sp_otlp_kv *const *kv, size_t n, const char *key, struct sp_arena *a)
{
    const sp_otlp_any *v = sp_dd_kv_find(kv, n, key);
    if (!v)
        return NULL;
    const char *s = sp_dd_any_string(v, a);
    return s && *s ? s : NULL;
}

/* Bytes of an incomplete UTF-8 sequence at the end of s (0 if none). */
static size_t trailing_partial_utf8(const char *s, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Decimal digits of u into buf (no NUL), after a '-' when neg; their count. */
static size_t fmt_u64(char buf[24], uint64_t u, bool neg)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    return o;
}

static int buf_i64(struct sp_buf *b, int64_t v)
{
    char d[24];
    return sp_buf_append(b, d, fmt_u64(d, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0));
}

static int buf_u64(struct sp_buf *b, uint64_t v)
{
    char d[24];
    return sp_buf_append(b, d, fmt_u64(d, v, false));
}

static void hex_encode(char *out, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}


/* The value as Go's json.Marshal(value.AsRaw()) writes it; false when Go
 * would fail (NaN/Inf doubles), so the caller can substitute. */
static bool json_any(struct sp_buf *b, const sp_otlp_any *v, struct sp_arena *a, int *rc)
{
    if (!v) {
        *rc = sp_buf_append_str(b, "null");
        return true;
    }
    switch (v->value_case) {
    case AV(STRING_VALUE):
        *rc = sp_dd_json_cstr(b, v->string_value);
        return true;
    case AV(BOOL_VALUE):
        *rc = sp_buf_append_str(b, v->bool_value ? "true" : "false");
        return true;
    case AV(INT_VALUE):
        *rc = buf_i64(b, v->int_value);
        return true;
    case AV(DOUBLE_VALUE):
        if (isnan(v->double_value) || isinf(v->double_value))
            return false;
        /* sp_dd_any_string renders Go's float format, as json.Marshal does */
        __attribute__((fallthrough));
    case AV(ARRAY_VALUE):
    case AV(KVLIST_VALUE): {
        const char *s = sp_dd_any_string(v, a);
        *rc = s ? sp_buf_append_str(b, s) : SP_ENOMEM;
        return true;
    }
    case AV(BYTES_VALUE): {
        const char *s = sp_dd_any_string(v, a);
        *rc = s ? sp_dd_json_cstr(b, s) : SP_ENOMEM;
        return true;
    }
    default:
        *rc = sp_buf_append_str(b, "null");
        return true;
    }
}

/* ------------------------------------------------------------------------ */
/* A string-keyed map for one span's meta or metrics, in scratch memory     */
/* ------------------------------------------------------------------------ */

/* Entry strings are either owned by the output arena already (computed
 * values) or borrowed (attribute keys and values in the OTLP batch, string
 * literals); borrowed ones are copied into the arena when the span is
 * finalised, so the payload never points into the batch (unless the
 * caller says it packs the payload before releasing the batch:
 * sp_dd_map_opts.borrow_batch). */
struct ent {
    const char *key;
    const char *sval;
    double dval;
    uint64_t pfx;  /* key_hash_pfx: sort prefix */
    uint32_t hash; /* key_hash_pfx */
    bool live;
    bool kborrowed, vborrowed;
    bool fits; /* key and value known to be within the truncator's limits */
    uint16_t rmi; /* in meta.v[rm_lo, rm_hi) only: 1 + index in the tracer
                   * payload's rmeta of the resource entry that made it */
};

struct smap {
    struct ent *v;
    size_t n, cap;
    struct sp_hindex ix; /* key hash -> entry */
};

static void smap_reset(struct smap *m)
{
    m->n = 0;
    sp_hindex_clear(&m->ix);
}

static void smap_free(struct smap *m)
{
    free(m->v);
    sp_hindex_free(&m->ix);
    memset(m, 0, sizeof *m);
}

struct smap_key {
    const char *key;
    uint32_t hash;
};

static bool smap_eq(const void *ctx, size_t pos, const void *key)
{
    const struct ent *e = &((const struct smap *)ctx)->v[pos];
    const struct smap_key *k = key;
    return e->hash == k->hash && strcmp(e->key, k->key) == 0;
}

static uint64_t smap_hash_of(const void *ctx, size_t pos)
{
    return ((const struct smap *)ctx)->v[pos].hash;
}

static size_t smap_find(const struct smap *m, const char *key, uint32_t h)
{
    struct smap_key k = {key, h};
    return sp_hindex_find(&m->ix, h, smap_eq, m, &k);
}

static __attribute__((noinline)) int smap_grow_slow(struct smap *m)
{
    if (m->n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        struct ent *nv = realloc(m->v, cap * sizeof *nv);
        if (!nv)
            return SP_ENOMEM;
        m->v = nv;
        m->cap = cap;
    }
    return sp_hindex_reserve(&m->ix, m->n + 1 < 32 ? 32 : m->n + 1, m->n, smap_hash_of, m);
}

static inline int smap_grow(struct smap *m)
{
    /* the common case inline: room in both the entries and the index */
    if (m->n + 1 <= m->cap && (m->n + 1) * 2 <= m->ix.cap)
        return 0;
    return smap_grow_slow(m);
}

/* h: key_hash_pfx(key) */
static struct ent *smap_get_h(const struct smap *m, const char *key, uint32_t h)
{
    if (!m->ix.cap)
        return NULL;
    size_t s = smap_find(m, key, h);
    if (!m->ix.slots[s])
        return NULL;
    struct ent *e = &m->v[sp_hindex_pos(&m->ix, s)];
    return e->live ? e : NULL;
}

static struct ent *smap_get(const struct smap *m, const char *key)
{
    uint64_t pfx;
    return smap_get_h(m, key, key_hash_pfx(key, &pfx));
}

enum put_mode {
    PUT_SET = 0,       /* overwrite */
    PUT_IF_ABSENT = 1, /* keep an existing value */
    PUT_IF_EMPTY = 2,  /* keep an existing non-empty string */
    PUT_HOW = 3,       /* the bits above */
    /* a flag: the caller knows the key and the value are within the
     * truncator's limits, so truncate_maps need not measure them */
    PUT_FITS = 4,
    /* a flag for smap_put: the value is within the limit (or a metric's);
     * the key is measured for its hash anyway, so PUT_FITS follows when
     * the key is within its limit too */
    PUT_VALUE_FITS = 8,
};

/* kb/vb: key/value borrowed (copy at finalisation); h and pfx:
 * key_hash_pfx(key). mode: enum put_mode's bits. */
static inline __attribute__((always_inline)) int
smap_put_h(struct smap *m, const char *key, uint32_t h, uint64_t pfx, bool kb, const char *sval,
           bool vb, double dval, int mode)
{
    int rc = smap_grow(m);
    if (rc)
        return rc;
    size_t slot = smap_find(m, key, h);
    struct ent *e;
    if (m->ix.slots[slot]) {
        e = &m->v[sp_hindex_pos(&m->ix, slot)];
        if (e->live) {
            if ((mode & PUT_HOW) == PUT_IF_ABSENT)
                return 0;
            if ((mode & PUT_HOW) == PUT_IF_EMPTY && e->sval && *e->sval)
                return 0;
        }
    } else {
        e = &m->v[m->n];
        sp_hindex_put(&m->ix, slot, m->n);
        m->n++;
        e->key = key;
        e->kborrowed = kb;
        e->hash = h;
        e->pfx = pfx;
    }
    e->live = true;
    e->sval = sval;
    e->vborrowed = vb;
    e->dval = dval;
    e->fits = (mode & PUT_FITS) != 0;
    return 0;
}

static int smap_put(struct smap *m, const char *key, bool kb, const char *sval, bool vb,
                    double dval, int mode)
{
    uint64_t pfx;
    size_t n = strlen(key);
    uint32_t h = key_hash_pfx_n(key, n, &pfx);
    /* one limit for meta and metrics keys */
    _Static_assert(DD_MAX_META_KEY_LEN == DD_MAX_METRIC_KEY_LEN, "key limits differ");
    if ((mode & PUT_VALUE_FITS) && n <= DD_MAX_META_KEY_LEN)
        mode |= PUT_FITS;
    return smap_put_h(m, key, h, pfx, kb, sval, vb, dval, mode);
}

/* The literal keys every span puts or looks up, hashed once
 * (key_hash_pfx) rather than at every use. */
enum lit {
    L_SPAN_KIND,
    L_HTTP_STATUS_CODE,
    L_HTTP_RESPONSE_STATUS_CODE,
    L_RPC_GRPC_STATUS_CODE,
    L_DD_MEASURED,
    L_OTEL_TRACE_ID,
    L_DD_P_TID,
    L_VERSION,
    L_EVENTS,
    L_HAS_EXCEPTION,
    L_SPAN_LINKS,
    L_W3C_TRACESTATE,
    L_LIBRARY_NAME,
    L_LIBRARY_VERSION,
    L_STATUS_CODE,
    L_STATUS_DESCRIPTION,
    L_ERROR_MSG,
    L_ERROR_TYPE,
    L_ERROR_STACK,
    L_ENV,
    L_DB_NAME,
    L_SAMPLING_PRIORITY,
    L_EAUSR,
    L_COUNT
};

static const char *const lit_names[L_COUNT] = {
    [L_SPAN_KIND] = "span.kind",
    [L_HTTP_STATUS_CODE] = "http.status_code",
    [L_HTTP_RESPONSE_STATUS_CODE] = "http.response.status_code",
    [L_RPC_GRPC_STATUS_CODE] = "rpc.grpc.status_code",
    [L_DD_MEASURED] = "_dd.measured",
    [L_OTEL_TRACE_ID] = "otel.trace_id",
    [L_DD_P_TID] = "_dd.p.tid",
    [L_VERSION] = "version",
    [L_EVENTS] = "events",
    [L_HAS_EXCEPTION] = "_dd.span_events.has_exception",
    [L_SPAN_LINKS] = "_dd.span_links",
    [L_W3C_TRACESTATE] = "w3c.tracestate",
    [L_LIBRARY_NAME] = "otel.library.name",
    [L_LIBRARY_VERSION] = "otel.library.version",
    [L_STATUS_CODE] = "otel.status_code",
    [L_STATUS_DESCRIPTION] = "otel.status_description",
    [L_ERROR_MSG] = "error.msg",
    [L_ERROR_TYPE] = "error.type",
    [L_ERROR_STACK] = "error.stack",
    [L_ENV] = "env",
    [L_DB_NAME] = "db.name",
    [L_SAMPLING_PRIORITY] = "_sampling_priority_v1",
    [L_EAUSR] = "_dd1.sr.eausr",
};

static struct {
    uint64_t pfx;
    uint32_t hash;
} lit_hash[L_COUNT];
static pthread_once_t lit_once = PTHREAD_ONCE_INIT;

static void lit_init(void)
{
    for (size_t i = 0; i < L_COUNT; i++) {
        SP_ASSERT(lit_names[i] && strlen(lit_names[i]) <= DD_MAX_META_KEY_LEN,
                  "dd_map: a literal key is missing or too long");
        lit_hash[i].hash = key_hash_pfx(lit_names[i], &lit_hash[i].pfx);
    }
}

/* smap_put / smap_get for a literal key: the key always fits the
 * truncator's limits, so PUT_FITS only says something about the value. */
static int lput(struct smap *m, enum lit k, const char *sval, bool vb, double dval, int mode)
{
    return smap_put_h(m, lit_names[k], lit_hash[k].hash, lit_hash[k].pfx, false, sval, vb, dval,
                      mode);
}

static struct ent *lget(const struct smap *m, enum lit k)
{
    return smap_get_h(m, lit_names[k], lit_hash[k].hash);
}

/* ------------------------------------------------------------------------ */
/* Mapping state                                                             */
/* ------------------------------------------------------------------------ */

/* One mapped span while its chunk is being built. Extra slots are reserved
 * in the meta/metrics arrays for the keys added per chunk. */
#define META_SPARE 2    /* runtime-id, _dd.p.dm */
#define METRICS_SPARE 2 /* _top_level, _dd.profiling.enabled */

struct mspan {
    Datadog__Trace__Span *pb;
    size_t meta_cap, metrics_cap;
    uint32_t flags;
    int kind;
    int64_t sampling_priority;
    bool has_priority;
};

struct chunk_b {
    uint64_t tid;
    struct mspan *v;
    size_t n, cap;
};

/* What one resource attribute puts in every span's meta (or metrics, for
 * analytics.event), computed once per tracer payload: the Datadog key and
 * the rendered value, both already in the output arena. */
struct res_meta {
    const char *key;
    const char *val;
    uint64_t pfx;  /* key_hash_pfx(key) */
    uint32_t hash;
    int8_t analytics; /* -1: a meta key; 0/1: analytics.event's bool; 2: not a bool */
    int fits;         /* PUT_FITS when the truncator leaves key and value alone */
    uint32_t ord;     /* position among the resource's attributes (sort tie-break) */
};

/* One tracer payload: a distinct resource. */
struct tp_b {
    Datadog__Trace__TracerPayload *tp;
    const char *key;       /* canonical rendering of the resource attributes */
    uint32_t key_hash;
    sp_otlp_kv *const *res_attrs;
    size_t n_res_attrs;
    struct sp_dd_keys rk;  /* res_attrs indexed */
    struct res_meta *rmeta;
    size_t n_rmeta;
    const char *service; /* a span's service when the resource decides it */
    /* rmeta's meta entries as protobuf-c messages, made on first use and
     * shared by every span that carries the entry unchanged (read-only
     * once made: span_set_meta replaces a shared one rather than edit it) */
    Datadog__Trace__Span__MetaEntry **rshared;
    struct chunk_b *chunks;
    size_t n, cap;
    struct sp_hindex ix; /* trace id -> chunk */
};

/* The exporter's `tags`, split once per batch. */
struct tag_kv {
    const char *k, *v;
    int fits; /* PUT_FITS when the truncator leaves both alone */
};

struct mapper {
    const struct sp_traces *traces;
    const struct sp_dd_map_opts *opts;
    struct sp_arena *a;
    struct sp_err *err;
    struct smap meta, metrics;
    struct sp_buf sb; /* scratch string builder */
    struct tp_b *tps;
    size_t ntp, captp;
    size_t dropped;
    int64_t now_ns;
    /* per span scratch: its attributes indexed, and each one's key id */
    struct sp_dd_keys sk;
    int8_t *ids;
    size_t ids_cap;
    /* sorting a span's meta/metrics */
    const struct ent **sortv, **sortt;
    size_t sort_cap;
    /* meta.v[rm_lo, rm_hi): the entries the span's resource attributes
     * added, already in key order (tp_b.rmeta is sorted) */
    size_t rm_lo, rm_hi;
    struct tp_b *cur_tp; /* the tracer payload of the span being finalised */
    bool borrow;         /* opts->borrow_batch */
    struct sp_hindex chunk_ix; /* finish_chunk's span id index, reused */
    size_t n_shared;     /* sorted_live: entries of [rm_lo, rm_hi) span_entries shares */
    /* the last scope's name and version, copied once */
    const void *scope;
    const char *scope_name, *scope_version;
    int scope_fits; /* PUT_FITS when both are within the truncator's value limit */
    struct tag_kv *tags;
    size_t n_tags;
};

static int oom(struct mapper *m, const char *what)
{
    return sp_err_set(m->err, SP_ENOMEM, "datadog mapping: out of memory (%s)", what);
}

/* Copies the scratch builder into the arena. */
static const char *sb_take(struct mapper *m)
{
    const char *s = sp_arena_strndup(m->a, m->sb.data ? (const char *)m->sb.data : "", m->sb.len);
    sp_buf_reset(&m->sb);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Events and links as JSON meta (transform.go MarshalEvents/MarshalLinks)  */
/* ------------------------------------------------------------------------ */

static int marshal_events(struct mapper *m, const sp_otlp_span *s)
{
    struct sp_buf *b = &m->sb;
    int rc = sp_buf_append_byte(b, '[');
    for (size_t i = 0; rc == 0 && i < s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = s->events[i];
        if (i)
            rc = sp_buf_append_byte(b, ',');
        if (rc == 0)
            rc = sp_buf_append_byte(b, '{');
        if (!e) {
            if (rc == 0)
                rc = sp_buf_append_byte(b, '}');
            continue;
        }
        bool wrote = false;
        if (rc == 0 && e->time_unix_nano) {
            rc = sp_buf_append_str(b, "\"time_unix_nano\":");
            if (rc == 0)
                rc = buf_u64(b, e->time_unix_nano);
            wrote = true;
        }
        if (rc == 0 && e->name && *e->name) {
            if (wrote)
                rc = sp_buf_append_byte(b, ',');
            if (rc == 0)
                rc = sp_buf_append_str(b, "\"name\":");
            if (rc == 0)
                rc = sp_dd_json_cstr(b, e->name);
            wrote = true;
        }
        if (rc == 0 && e->n_attributes) {
            if (wrote)
                rc = sp_buf_append_byte(b, ',');
            if (rc == 0)
                rc = sp_buf_append_str(b, "\"attributes\":{");
            for (size_t j = 0; rc == 0 && j < e->n_attributes; j++) {
                const sp_otlp_kv *kv = e->attributes[j];
                if (j)
                    rc = sp_buf_append_byte(b, ',');
                if (rc == 0)
                    rc = sp_dd_json_cstr(b, kv ? kv->key : "");
                if (rc == 0)
                    rc = sp_buf_append_byte(b, ':');
                /* The agent writes "redacted" for a value Go cannot marshal. */
                if (rc == 0 && !json_any(b, kv ? kv->value : NULL, m->a, &rc))
                    rc = sp_buf_append_str(b, "\"redacted\"");
            }
            if (rc == 0)
                rc = sp_buf_append_byte(b, '}');
            wrote = true;
        }
        if (rc == 0 && e->dropped_attributes_count) {
            if (wrote)
                rc = sp_buf_append_byte(b, ',');
            if (rc == 0)
                rc = sp_buf_printf(b, "\"dropped_attributes_count\":%" PRIu32,
                                   e->dropped_attributes_count);
        }
        if (rc == 0)
            rc = sp_buf_append_byte(b, '}');
    }
    if (rc == 0)
        rc = sp_buf_append_byte(b, ']');
    return rc;
}

/* Links: the agent writes attribute values and tracestate without JSON
 * escaping; spanprof escapes them so the meta value is always valid JSON
 * (identical output for ordinary values). */
static int marshal_links(struct mapper *m, const sp_otlp_span *s)
{
    struct sp_buf *b = &m->sb;
    char hx[2 * 16 + 1];
    int rc = sp_buf_append_byte(b, '[');
    for (size_t i = 0; rc == 0 && i < s->n_links; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[i];
        if (i)
            rc = sp_buf_append_byte(b, ',');
        if (!l) {
            if (rc == 0)
                rc = sp_buf_append_str(b, "{}");
            continue;
        }
        size_t tl = l->trace_id.len <= 16 ? l->trace_id.len : 16;
        hex_encode(hx, l->trace_id.data, tl);
        if (rc == 0)
            rc = sp_buf_printf(b, "{\"trace_id\":\"%s\"", hx);
        size_t sl = l->span_id.len <= 8 ? l->span_id.len : 8;
        hex_encode(hx, l->span_id.data, sl);
        if (rc == 0)
            rc = sp_buf_printf(b, ",\"span_id\":\"%s\"", hx);
        if (rc == 0 && l->trace_state && *l->trace_state) {
            rc = sp_buf_append_str(b, ",\"tracestate\":");
            if (rc == 0)
                rc = sp_dd_json_cstr(b, l->trace_state);
        }
        if (rc == 0 && l->n_attributes) {
            rc = sp_buf_append_str(b, ",\"attributes\":{");
            for (size_t j = 0; rc == 0 && j < l->n_attributes; j++) {
                const sp_otlp_kv *kv = l->attributes[j];
                if (j)
                    rc = sp_buf_append_byte(b, ',');
                if (rc == 0)
                    rc = sp_dd_json_cstr(b, kv ? kv->key : "");
                if (rc == 0)
                    rc = sp_buf_append_byte(b, ':');
                const char *v = kv ? sp_dd_any_string(kv->value, m->a) : "";
                if (rc == 0)
                    rc = v ? sp_dd_json_cstr(b, v) : SP_ENOMEM;
            }
            if (rc == 0)
                rc = sp_buf_append_byte(b, '}');
        }
        if (rc == 0 && l->dropped_attributes_count)
            rc = sp_buf_printf(b, ",\"dropped_attributes_count\":%" PRIu32,
                               l->dropped_attributes_count);
        if (rc == 0)
            rc = sp_buf_append_byte(b, '}');
    }
    if (rc == 0)
        rc = sp_buf_append_byte(b, ']');
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Attribute -> meta/metrics                                                 */
/* ------------------------------------------------------------------------ */

/* attributes.HTTPMappings: OTel HTTP semantic conventions -> Datadog keys,
 * by the OTel key's id (dd_naming.h). */
static const char *const http_mappings[SP_DD_KEY_COUNT] = {
    [SP_DD_K_CLIENT_ADDRESS] = "http.client_ip",
    [SP_DD_K_HTTP_RESPONSE_BODY_SIZE] = "http.response.content_length",
    [SP_DD_K_HTTP_RESPONSE_STATUS_CODE] = "http.status_code",
    [SP_DD_K_HTTP_REQUEST_BODY_SIZE] = "http.request.content_length",
    [SP_DD_K_HTTP_REQUEST_HEADER_REFERRER] = "http.referrer",
    [SP_DD_K_HTTP_REQUEST_METHOD] = "http.method",
    [SP_DD_K_HTTP_ROUTE] = "http.route",
    [SP_DD_K_NETWORK_PROTOCOL_VERSION] = "http.version",
    [SP_DD_K_SERVER_ADDRESS] = "http.server_name",
    [SP_DD_K_URL_FULL] = "http.url",
    [SP_DD_K_USER_AGENT_ORIGINAL] = "http.useragent",
};

/* Whether s starts with p (stops at the first difference: most keys differ
 * from the prefixes in their first bytes). */
static bool has_prefix(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (*s != *p)
            return false;
    return true;
}

/* GetDDKeyForOTLPAttribute: the Datadog key an OTLP attribute is stored
 * under; *out is NULL for keys handled elsewhere (service.name,
 * operation.name, resource.name, span.type). datadog.* keys are ordinary
 * attributes since datadog-agent PR #45833 removed that namespace.
 * id is the key's sp_dd_key_id. *borrowed says whether *out points into
 * the attribute. SP_ENOMEM only. */
static int dd_key_for(struct mapper *m, const char *k, int id, const char **out, bool *borrowed)
{
    *borrowed = false;
    *out = NULL;
    if (id >= 0 && http_mappings[id]) {
        *out = http_mappings[id];
        return 0;
    }
    static const char hdr[] = "http.request.header.";
    if (has_prefix(k, hdr)) {
        *out = sp_arena_sprintf(m->a, "http.request.headers.%s", k + sizeof hdr - 1);
        return *out ? 0 : SP_ENOMEM;
    }
    if (id == SP_DD_K_SERVICE_NAME || id == SP_DD_K_OPERATION_NAME ||
        id == SP_DD_K_RESOURCE_NAME || id == SP_DD_K_SPAN_TYPE)
        return 0;
    *borrowed = true;
    *out = k;
    return 0;
}

/* Go's strconv.ParseBool. */
static int parse_go_bool(const char *s)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, t[i]) == 0)
            return 1;
        if (strcmp(s, f[i]) == 0)
            return 0;
    }
    return -1;
}

/* conditionallyMapOTLPAttributeToMeta + SetMetaOTLPIfEmpty. */
static int attr_to_meta(struct mapper *m, const char *k, int id, const char *v, bool vb)
{
    bool kb;
    const char *mk;
    if (dd_key_for(m, k, id, &mk, &kb))
        return SP_ENOMEM;
    if (!mk)
        return 0;
    /* mk is k itself here unless k was remapped, and no remapped key is
     * analytics.event. */
    if (id == SP_DD_K_ANALYTICS_EVENT) {
        struct ent *e = smap_get(&m->meta, mk);
        if (e && e->sval && *e->sval)
            return 0;
        int bv = parse_go_bool(v);
        if (bv >= 0)
            return lput(&m->metrics, L_EAUSR, NULL, false, bv, PUT_IF_ABSENT | PUT_FITS);
        return 0;
    }
    /* one lookup: an existing non-empty value wins (SetMetaOTLPIfEmpty) */
    return smap_put(&m->meta, mk, kb, v, vb, 0,
                    PUT_IF_EMPTY | (strlen(v) <= DD_MAX_META_VAL_LEN ? PUT_VALUE_FITS : 0));
}

/* conditionallyMapOTLPAttributeToMetric + SetMetricOTLPIfEmpty. */
static int attr_to_metric(struct mapper *m, const char *k, int id, double v)
{
    bool kb;
    const char *mk;
    if (dd_key_for(m, k, id, &mk, &kb))
        return SP_ENOMEM;
    if (!mk)
        return 0;
    if (id == SP_DD_K_SAMPLING_PRIORITY) {
        if (smap_get(&m->metrics, mk))
            return 0;
        return lput(&m->metrics, L_SAMPLING_PRIORITY, NULL, false, v, PUT_IF_ABSENT | PUT_FITS);
    }
    /* one lookup: an existing metric wins (SetMetricOTLPIfEmpty) */
    return smap_put(&m->metrics, mk, kb, NULL, false, v, PUT_IF_ABSENT | PUT_VALUE_FITS);
}

/* Go's net/http StatusText: the reason phrase of a status code, or NULL. */
static const char *http_status_text(long code)
{
    static const struct {
        short code;
        const char *text;
    } tab[] = {
        {100, "Continue"}, {101, "Switching Protocols"}, {102, "Processing"},
        {103, "Early Hints"}, {200, "OK"}, {201, "Created"}, {202, "Accepted"},
        {203, "Non-Authoritative Information"}, {204, "No Content"}, {205, "Reset Content"},
        {206, "Partial Content"}, {207, "Multi-Status"}, {208, "Already Reported"},
        {226, "IM Used"}, {300, "Multiple Choices"}, {301, "Moved Permanently"}, {302, "Found"},
        {303, "See Other"}, {304, "Not Modified"}, {305, "Use Proxy"},
        {307, "Temporary Redirect"}, {308, "Permanent Redirect"}, {400, "Bad Request"},
        {401, "Unauthorized"}, {402, "Payment Required"}, {403, "Forbidden"},
        {404, "Not Found"}, {405, "Method Not Allowed"}, {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"}, {408, "Request Timeout"}, {409, "Conflict"},
        {410, "Gone"}, {411, "Length Required"}, {412, "Precondition Failed"},
        {413, "Request Entity Too Large"}, {414, "Request URI Too Long"},
        {415, "Unsupported Media Type"}, {416, "Requested Range Not Satisfiable"},
        {417, "Expectation Failed"}, {418, "I'm a teapot"}, {421, "Misdirected Request"},
        {422, "Unprocessable Entity"}, {423, "Locked"}, {424, "Failed Dependency"},
        {425, "Too Early"}, {426, "Upgrade Required"}, {428, "Precondition Required"},
        {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"},
        {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
        {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
        {506, "Variant Also Negotiates"}, {507, "Insufficient Storage"},
        {508, "Loop Detected"}, {510, "Not Extended"}, {511, "Network Authentication Required"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].code == code)
            return tab[i].text;
    return NULL;
}

/* Go's strconv.Atoi, 0 on any error (what Status2Error then looks up). */
static long go_atoi(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000L)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return *s == '-' ? -v : v;
}

/* Status2Error (datadog-agent pkg/trace/transform/transform.go, newest:
 * PR #44025 stopped copying the `exception` events into error.*): for an
 * ERROR status without error.msg, the status message, else "<code>
 * <reason>" of the HTTP status code found in meta (the semantics
 * registry's http.status_code before http.response.status_code, read from
 * the string map: only string attributes are in meta at this point; an
 * unknown code alone). http.status_text is not used. Returns the span's
 * error flag. */
static int status_to_error(struct mapper *m, const sp_otlp_span *s)
{
    if (!s->status || s->status->code != STATUS_ERROR)
        return 0;
    if (lget(&m->meta, L_ERROR_MSG))
        return 1;
    const char *msg = s->status->message;
    if (msg && *msg)
        return lput(&m->meta, L_ERROR_MSG, msg, true, 0, PUT_SET) ? -1 : 1;
    struct ent *code = lget(&m->meta, L_HTTP_STATUS_CODE);
    if (!code || !code->sval || !*code->sval)
        code = lget(&m->meta, L_HTTP_RESPONSE_STATUS_CODE);
    if (!code || !code->sval || !*code->sval)
        return 1;
    const char *txt = http_status_text(go_atoi(code->sval));
    const char *v = txt ? sp_arena_sprintf(m->a, "%s %s", code->sval, txt) : code->sval;
    if (!v || lput(&m->meta, L_ERROR_MSG, v, txt ? false : code->vborrowed, 0, PUT_SET))
        return -1;
    return 1;
}

/* Resource attribute lookups (TracerPayload fields): a non-empty string
 * or NULL, through the resource's index for the keys it has. */
static const char *res_str(const struct tp_b *t, const char *key, struct sp_arena *a)
{
    int id = sp_dd_key_id(key, strlen(key));
    if (id < 0)
        return kv_str(t->res_attrs, t->n_res_attrs, key, a);
    const sp_otlp_kv *e = t->rk.kv[id];
    const char *s = e && e->value ? sp_dd_any_string(e->value, a) : NULL;
    return s && *s ? s : NULL;
}

/* A string concept of the resource (GetOTelContainerOrPodID, GetOTelEnv:
 * the semantics registry reads string attributes only), or NULL. */
static const char *res_concept(const struct tp_b *t, const char *key)
{
    const sp_otlp_kv *e = NULL;
    int id = sp_dd_key_id(key, strlen(key));
    if (id >= 0)
        e = t->rk.kv[id];
    else
        for (size_t i = 0; i < t->n_res_attrs && !e; i++)
            if (t->res_attrs[i] && t->res_attrs[i]->key && strcmp(t->res_attrs[i]->key, key) == 0)
                e = t->res_attrs[i];
    const sp_otlp_any *v = e ? e->value : NULL;
    return v && v->value_case == AV(STRING_VALUE) && v->string_value && *v->string_value
               ? v->string_value
               : NULL;
}

/* The agent's hostname from resource attributes (opentelemetry-mapping-go
 * attributes/source: `host`, datadog.host.name, Fargate has none, cloud
 * provider ids, k8s node(-cluster), host.id, host.name; localhost names are
 * discarded). *found says whether the resource decided (even on ""). */
static const char *resource_hostname(const struct tp_b *t, struct sp_arena *a, bool *found)
{
    const char *h = NULL;
    *found = true;
    if ((h = res_str(t, "host", a)) || (h = res_str(t, "datadog.host.name", a)))
        goto check;
    const char *lt = res_str(t, "aws.ecs.launchtype", a);
    if (lt && strcmp(lt, "fargate") == 0)
        return "";
    const char *cloud = res_str(t, "cloud.provider", a);
    if (cloud && (strcmp(cloud, "aws") == 0 || strcmp(cloud, "azure") == 0)) {
        if ((h = res_str(t, "host.id", a)) || (h = res_str(t, "host.name", a)))
            goto check;
    }
    const char *node = res_str(t, "k8s.node.name", a);
    if (node) {
        const char *cluster = res_str(t, "k8s.cluster.name", a);
        h = cluster ? sp_arena_sprintf(a, "%s-%s", node, cluster) : node;
        goto check;
    }
    if ((h = res_str(t, "host.id", a)) || (h = res_str(t, "host.name", a)))
        goto check;
    *found = false;
    return NULL;
check:
    if (!h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "127.0.0.1") == 0 ||
        strcmp(h, "localhost") == 0 || strcmp(h, "localhost.localdomain") == 0 ||
        strcmp(h, "localhost6.localdomain6") == 0 || strcmp(h, "ip6-localhost") == 0) {
        *found = false;
        return NULL;
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* One span                                                                  */
/* ------------------------------------------------------------------------ */

static int span_entries(struct mapper *m, struct mspan *ms);

/* Agent truncation (truncator.go): meta keys/values and metric keys, never
 * structured `_dd.*.json|.msgpack|.protobuf` meta. */
static bool is_structured_meta_key(const char *k)
{
    if (k[0] != '_' || strncmp(k, "_dd.", 4) != 0)
        return false;
    size_t n = strlen(k);
    return (n >= 5 && strcmp(k + n - 5, ".json") == 0) ||
           (n >= 8 && strcmp(k + n - 8, ".msgpack") == 0) ||
           (n >= 9 && strcmp(k + n - 9, ".protobuf") == 0);
}

/* PUT_FITS when truncate_maps would leave this meta entry as it is. */
static int meta_fits(const char *k, const char *v)
{
    return is_structured_meta_key(k) ||
                   (strlen(k) <= DD_MAX_META_KEY_LEN && strlen(v) <= DD_MAX_META_VAL_LEN)
               ? PUT_FITS
               : 0;
}

static const char *truncated(struct mapper *m, const char *s, size_t limit)
{
    size_t n = sp_utf8_truncate(s, strlen(s), limit);
    return sp_arena_sprintf(m->a, "%.*s...", (int)n, s);
}

static int truncate_maps(struct mapper *m)
{
    size_t n = m->meta.n;
    for (size_t i = 0; i < n; i++) {
        struct ent *e = &m->meta.v[i];
        if (!e->live || e->fits || is_structured_meta_key(e->key))
            continue;
        const char *k = e->key, *v = e->sval ? e->sval : "";
        bool kb = e->kborrowed, vb = e->vborrowed;
        bool mod = false;
        if (strlen(k) > DD_MAX_META_KEY_LEN) {
            e->live = false;
            if (!(k = truncated(m, k, DD_MAX_META_KEY_LEN)))
                return oom(m, "meta key");
            kb = false;
            mod = true;
        }
        if (strlen(v) > DD_MAX_META_VAL_LEN) {
            if (!(v = truncated(m, v, DD_MAX_META_VAL_LEN)))
                return oom(m, "meta value");
            vb = false;
            mod = true;
        }
        /* smap_put may move m->meta.v: e is not used after this. */
        if (mod && smap_put(&m->meta, k, kb, v, vb, 0, PUT_SET))
            return oom(m, "meta");
    }
    n = m->metrics.n;
    for (size_t i = 0; i < n; i++) {
        struct ent *e = &m->metrics.v[i];
        if (!e->live || e->fits || strlen(e->key) <= DD_MAX_METRIC_KEY_LEN)
            continue;
        e->live = false;
        double d = e->dval;
        const char *k = truncated(m, e->key, DD_MAX_METRIC_KEY_LEN);
        if (!k || smap_put(&m->metrics, k, false, NULL, false, d, PUT_SET))
            return oom(m, "metric key");
    }
    return 0;
}

/* http.status_code meta must be an integer in [100, 600) (normalizer.go). */
static bool valid_status_code(const char *s)
{
    if (!s || !*s)
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *end == 0 && s[0] != '-' && s[0] != '+' && v >= 100 && v < 600;
}

/* A string attribute read as the registry's LookupInt64 reads a
 * string-typed tag: ParseInt, else an exact-integer ParseFloat. */
static bool str_int(const sp_otlp_kv *e, int64_t *out)
{
    const sp_otlp_any *v = e ? e->value : NULL;
    if (!v || v->value_case != AV(STRING_VALUE) || !v->string_value || !*v->string_value)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(v->string_value, &end, 10);
    if (*end == 0 && errno == 0 && !isspace((unsigned char)v->string_value[0])) {
        *out = x;
        return true;
    }
    double d = strtod(v->string_value, &end);
    if (*end || isspace((unsigned char)v->string_value[0]) || !isfinite(d) || d < -9.2e18 ||
        d > 9.2e18 || (double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* The registry's rpc.grpc.status_code concept read with LookupString
 * (otelSpanToDDSpanMinimal): its keys in order, string values only, each
 * span attribute before the resource attribute. The conditional
 * rpc.response.status_code keys of newer registries are not read. */
static const char *grpc_status_code(const struct sp_dd_span_ctx *c, struct sp_arena *a)
{
    static const enum sp_dd_key keys[] = {SP_DD_K_RPC_GRPC_STATUS_CODE, SP_DD_K_GRPC_CODE,
                                          SP_DD_K_RPC_GRPC_STATUS_DOT_CODE,
                                          SP_DD_K_GRPC_STATUS_DOT_CODE};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = sp_dd_attr_key(c, keys[i], a);
        if (v)
            return v;
    }
    return NULL;
}

/* GetOTelStatusCode: the semantics registry's http.status_code concept
 * read with LookupInt64 (datadog-agent pkg/trace/semantics mappings.json
 * and lookup.go): http.status_code as an int, then as a string, then
 * http.response.status_code as an int, then as a string; for each, the
 * span attribute before the resource attribute. false when none. */
static bool http_status_code(const struct sp_dd_span_ctx *c, const struct sp_dd_keys *sk,
                             const struct sp_dd_keys *rk, int64_t *code)
{
    static const enum sp_dd_key keys[] = {SP_DD_K_HTTP_STATUS_CODE,
                                          SP_DD_K_HTTP_RESPONSE_STATUS_CODE};
    for (size_t i = 0; i < 2; i++)
        if (sp_dd_attr_int(c, keys[i], code) || str_int(sk->kv[keys[i]], code) ||
            str_int(rk->kv[keys[i]], code))
            return true;
    return false;
}

/* Room for one key id per attribute of the span. */
static int mapper_ids(struct mapper *m, size_t n)
{
    if (n <= m->ids_cap)
        return 0;
    size_t cap = m->ids_cap ? m->ids_cap : 32;
    while (cap < n)
        cap *= 2;
    int8_t *v = realloc(m->ids, cap);
    if (!v)
        return SP_ENOMEM;
    m->ids = v;
    m->ids_cap = cap;
    return 0;
}

static int map_span(struct mapper *m, struct tp_b *t, const sp_otlp_scope_spans *ss,
                    const sp_otlp_span *s, struct mspan *out)
{
    struct sp_arena *a = m->a;
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = ss->scope;
    if (mapper_ids(m, s->n_attributes))
        return oom(m, "span");
    /* One pass over the span's attributes: every rule below then finds its
     * keys in O(1) (the resource's index was built with its tracer payload). */
    sp_dd_keys_index(&m->sk, s->attributes, s->n_attributes, m->ids);
    const struct sp_dd_keys *sk = &m->sk, *rk = &t->rk;
    struct sp_dd_span_ctx c = {
        .span = s,
        .resource_attrs = t->res_attrs,
        .n_resource_attrs = t->n_res_attrs,
        .scope_name = scope && scope->name && *scope->name ? scope->name : NULL,
        .span_keys = sk,
        .resource_keys = rk,
    };
    int rc = 0;
#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            return oom(m, "span");                                                                 \
    } while (0)

    smap_reset(&m->meta);
    smap_reset(&m->metrics);
    m->rm_lo = m->rm_hi = 0;

    Datadog__Trace__Span *d = sp_arena_alloc(a, sizeof *d);
    if (!d)
        return oom(m, "span");
    *d = (Datadog__Trace__Span)DATADOG__TRACE__SPAN__INIT;
    out->pb = d;
    out->flags = s->flags;
    out->kind = (int)s->kind;
    out->has_priority = false;

    d->traceid = sp_dd_trace_id_low(s->trace_id.data, s->trace_id.len);
    d->spanid = sp_dd_span_id(s->span_id.data, s->span_id.len);
    d->parentid = s->parent_span_id.len ? sp_dd_span_id(s->parent_span_id.data,
                                                         s->parent_span_id.len)
                                        : 0;
    /* Each comes back in the arena (or is a literal): never the batch's.
     * The service comes from the span's own service.name (a non-empty
     * string) or else from the resource alone: then it is the tracer
     * payload's, worked out for its first such span. */
    const sp_otlp_kv *own_svc = sk->kv[SP_DD_K_SERVICE_NAME];
    const char *svc;
    if (own_svc && own_svc->value && own_svc->value->value_case == AV(STRING_VALUE) &&
        own_svc->value->string_value && *own_svc->value->string_value)
        svc = sp_dd_service(&c, a);
    else
        svc = t->service ? t->service : (t->service = sp_dd_service(&c, a));
    const char *name = sp_dd_operation_name(&c, a), *res = sp_dd_resource(&c, a),
               *type = sp_dd_span_type(&c, a);
    if (!svc || !name || !res || !type)
        return oom(m, "span names");
    d->service = (char *)svc;
    d->name = (char *)name;
    /* A fresh copy (sp_dd_resource): truncated in place below. */
    d->resource = (char *)res;
    d->type = (char *)type;

    /* Start and duration, fixed as the agent's normaliser does. */
    int64_t start = (int64_t)s->start_time_unix_nano;
    int64_t dur = s->end_time_unix_nano >= s->start_time_unix_nano
                      ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
                      : 0;
    if (dur < 0 || (start > 0 && dur > INT64_MAX - start))
        dur = 0;
    if (start < DD_YEAR2000_NS) {
        start = m->now_ns - dur;
        if (start < 0)
            start = m->now_ns;
    }
    d->start = start;
    d->duration = dur;

    /* --- minimal fields (otelSpanToDDSpanMinimal) --- */
    d->error = s->status && s->status->code == STATUS_ERROR;
    CK(lput(&m->meta, L_SPAN_KIND, sp_dd_span_kind_name((int)s->kind), false, 0,
            PUT_SET | PUT_FITS));
    int64_t code;
    if (http_status_code(&c, sk, rk, &code) && code >= 0)
        CK(lput(&m->metrics, L_HTTP_STATUS_CODE, NULL, false, (double)code, PUT_SET | PUT_FITS));
    const char *grpc = grpc_status_code(&c, a);
    if (grpc)
        CK(lput(&m->meta, L_RPC_GRPC_STATUS_CODE, grpc, true, 0, PUT_SET));
    /* _dd.measured is an int64 concept: an int (or exact-integer double)
     * 1, never the string "1". */
    int64_t measured;
    if (sp_dd_attr_int(&c, SP_DD_K_DD_MEASURED, &measured) && measured == 1)
        CK(lput(&m->metrics, L_DD_MEASURED, NULL, false, 1, PUT_SET | PUT_FITS));

    /* --- span attributes --- */
    for (size_t i = 0; i < s->n_attributes; i++) {
        const sp_otlp_kv *kv = s->attributes[i];
        if (!kv || !kv->key)
            continue;
        const sp_otlp_any *v = kv->value;
        if (v && v->value_case == AV(DOUBLE_VALUE))
            rc = attr_to_metric(m, kv->key, m->ids[i], v->double_value);
        else if (v && v->value_case == AV(INT_VALUE))
            rc = attr_to_metric(m, kv->key, m->ids[i], (double)v->int_value);
        else {
            const char *sv = sp_dd_any_string(v, a);
            bool vb = v && v->value_case == AV(STRING_VALUE);
            rc = sv ? attr_to_meta(m, kv->key, m->ids[i], sv, vb) : SP_ENOMEM;
        }
        if (rc)
            return oom(m, "span attributes");
    }

    /* --- otel.trace_id (and _dd.p.tid, as Datadog tracers set it) --- */
    size_t tl = s->trace_id.len <= 16 ? s->trace_id.len : 16;
    char *tid_hex = sp_arena_alloc(a, 2 * tl + 1); /* hex_encode writes the NUL */
    if (!tid_hex)
        return oom(m, "trace id");
    hex_encode(tid_hex, s->trace_id.data, tl);
    const char *hx = tid_hex;
    CK(lput(&m->meta, L_OTEL_TRACE_ID, tid_hex, false, 0, PUT_SET | PUT_FITS));
    uint64_t high = sp_dd_trace_id_high(s->trace_id.data, s->trace_id.len);
    if (high) {
        /* The high 64 bits as %016x: the first 16 hex digits of the id. */
        const char *h = sp_arena_strndup(a, hx, 16);
        if (!h)
            return oom(m, "trace id");
        CK(lput(&m->meta, L_DD_P_TID, h, false, 0, PUT_IF_ABSENT | PUT_FITS));
    }

    if (!lget(&m->meta, L_VERSION)) {
        const char *v = sp_dd_attr_key(&c, SP_DD_K_SERVICE_VERSION, a);
        if (v)
            CK(lput(&m->meta, L_VERSION, v, true, 0, PUT_SET));
    }

    /* --- events, links, tracestate, scope, status --- */
    if (s->n_events) {
        const char *ev;
        if (marshal_events(m, s) || !(ev = sb_take(m)))
            return oom(m, "events");
        CK(lput(&m->meta, L_EVENTS, ev, false, 0, PUT_SET));
        for (size_t i = 0; i < s->n_events; i++)
            if (s->events[i] && s->events[i]->name &&
                strcmp(s->events[i]->name, "exception") == 0) {
                CK(lput(&m->meta, L_HAS_EXCEPTION, "true", false, 0, PUT_SET | PUT_FITS));
                break;
            }
    }
    if (s->n_links) {
        const char *ln;
        if (marshal_links(m, s) || !(ln = sb_take(m)))
            return oom(m, "links");
        CK(lput(&m->meta, L_SPAN_LINKS, ln, false, 0, PUT_SET));
    }
    if (s->trace_state && *s->trace_state)
        CK(lput(&m->meta, L_W3C_TRACESTATE, s->trace_state, true, 0, PUT_SET));
    if (scope && (const void *)scope != m->scope) {
        /* Copied once for all the spans of the scope. */
        m->scope_name = scope->name && *scope->name ? sp_arena_strdup(a, scope->name) : "";
        m->scope_version =
            scope->version && *scope->version ? sp_arena_strdup(a, scope->version) : "";
        if (!m->scope_name || !m->scope_version) {
            m->scope = NULL;
            return oom(m, "scope");
        }
        m->scope = scope;
        m->scope_fits = strlen(m->scope_name) <= DD_MAX_META_VAL_LEN &&
                                strlen(m->scope_version) <= DD_MAX_META_VAL_LEN
                            ? PUT_FITS
                            : 0;
    }
    if (scope && *m->scope_name)
        CK(lput(&m->meta, L_LIBRARY_NAME, m->scope_name, false, 0, PUT_SET | m->scope_fits));
    if (scope && *m->scope_version)
        CK(lput(&m->meta, L_LIBRARY_VERSION, m->scope_version, false, 0,
                PUT_SET | m->scope_fits));
    static const char *const status_names[] = {"Unset", "Ok", "Error"};
    int sc = s->status ? (int)s->status->code : 0;
    CK(lput(&m->meta, L_STATUS_CODE, sc >= 0 && sc <= 2 ? status_names[sc] : "Unset", false, 0,
            PUT_SET | PUT_FITS));
    if (s->status && s->status->message && *s->status->message)
        CK(lput(&m->meta, L_STATUS_DESCRIPTION, s->status->message, true, 0, PUT_SET));

    /* --- error (unless error.msg, .type and .stack all came as attributes) --- */
    if (!lget(&m->meta, L_ERROR_MSG) || !lget(&m->meta, L_ERROR_TYPE) ||
        !lget(&m->meta, L_ERROR_STACK)) {
        int e = status_to_error(m, s);
        if (e < 0)
            return oom(m, "error");
        d->error = e;
    }

    /* --- env: attributes, else the exporter's env --- */
    if (!lget(&m->meta, L_ENV)) {
        const char *env = sp_dd_attr_key(&c, SP_DD_K_DEPLOYMENT_ENVIRONMENT_NAME, a);
        if (!env)
            env = sp_dd_attr_key(&c, SP_DD_K_DEPLOYMENT_ENVIRONMENT, a);
        if (!env && m->opts && m->opts->env && *m->opts->env)
            env = m->opts->env;
        if (env)
            CK(lput(&m->meta, L_ENV, env, true, 0, PUT_SET));
    }

    /* --- resource attributes (strings), then scope attributes --- */
    m->rm_lo = m->meta.n;
    for (size_t i = 0; i < t->n_rmeta; i++) {
        const struct res_meta *r = &t->rmeta[i];
        if (r->analytics < 0) {
            /* one lookup: an existing non-empty value wins */
            size_t before = m->meta.n;
            CK(smap_put_h(&m->meta, r->key, r->hash, r->pfx, false, r->val, false, 0,
                          PUT_IF_EMPTY | r->fits));
            if (m->meta.n > before)
                m->meta.v[before].rmi = (uint16_t)(i < UINT16_MAX ? i + 1 : 0);
            continue;
        }
        struct ent *e = smap_get_h(&m->meta, r->key, r->hash);
        if (e && e->sval && *e->sval)
            continue;
        if (r->analytics <= 1)
            CK(lput(&m->metrics, L_EAUSR, NULL, false, r->analytics, PUT_IF_ABSENT | PUT_FITS));
    }
    m->rm_hi = m->meta.n;
    if (scope) {
        for (size_t i = 0; i < scope->n_attributes; i++) {
            const sp_otlp_kv *kv = scope->attributes[i];
            if (!kv || !kv->key)
                continue;
            const char *sv = sp_dd_any_string(kv->value, a);
            bool vb = kv->value && kv->value->value_case == AV(STRING_VALUE);
            if (!sv)
                return oom(m, "scope attributes");
            CK(smap_put(&m->meta, kv->key, true, sv, vb, 0, PUT_SET));
        }
    }
    if (!lget(&m->meta, L_DB_NAME)) {
        const char *ns = sp_dd_attr_key(&c, SP_DD_K_DB_NAMESPACE, a);
        if (ns)
            CK(lput(&m->meta, L_DB_NAME, ns, true, 0, PUT_SET));
    }

    /* --- the exporter's `tags`, like a tracer's global tags --- */
    for (size_t i = 0; i < m->n_tags; i++)
        CK(smap_put(&m->meta, m->tags[i].k, false, m->tags[i].v, false, 0,
                    PUT_IF_ABSENT | m->tags[i].fits));

    /* --- the agent's normaliser and truncator --- */
    struct ent *env = lget(&m->meta, L_ENV);
    if (env && env->sval) {
        const char *n = sp_dd_normalize_tag_value(env->sval, a);
        if (!n)
            return oom(m, "env");
        if (n != env->sval) {
            env->sval = n;
            env->vborrowed = false;
        }
    }
    struct ent *hsc = lget(&m->meta, L_HTTP_STATUS_CODE);
    if (hsc && !valid_status_code(hsc->sval))
        hsc->live = false;
    size_t tlen = strlen(d->type);
    if (tlen > DD_MAX_TYPE_LEN) {
        /* Literal types are short: a long one is the arena's own copy. */
        d->type[sp_utf8_truncate(d->type, tlen, DD_MAX_TYPE_LEN)] = 0;
    }
    size_t rlen = strlen(d->resource);
    if (rlen > DD_MAX_RESOURCE_LEN)
        d->resource[sp_utf8_truncate(d->resource, rlen, DD_MAX_RESOURCE_LEN)] = 0;
    else if (rlen == DD_MAX_RESOURCE_LEN)
        /* Cut to the limit upstream of here: never end inside a character
         * (the agent's TruncateUTF8 does not). */
        d->resource[rlen - trailing_partial_utf8(d->resource, rlen)] = 0;
    if (!*d->resource)
        d->resource = d->name;
    rc = truncate_maps(m);
    if (rc)
        return rc;
    m->cur_tp = t;

    struct ent *prio = lget(&m->metrics, L_SAMPLING_PRIORITY);
    if (prio) {
        /* Go converts with int32(p); keep the value in range (no UB on NaN
         * or a huge attribute). */
        double v = prio->dval;
        out->has_priority = true;
        out->sampling_priority = isnan(v) ? 0 : v >= INT32_MAX ? INT32_MAX
                                              : v <= INT32_MIN ? INT32_MIN
                                                               : (int64_t)v;
    }
#undef CK
    return span_entries(m, out);
}

/* ------------------------------------------------------------------------ */
/* protobuf-c map entries, sorted by key so payloads are deterministic      */
/* ------------------------------------------------------------------------ */

/* strcmp order of two entries' keys: the 8-byte prefixes decide almost
 * always; equal prefixes compare the rest (a prefix with a zero last byte
 * holds a whole key shorter than 8 bytes, so both keys are equal). */
static int ent_cmp(const struct ent *x, const struct ent *y)
{
    if (x->pfx != y->pfx)
        return x->pfx < y->pfx ? -1 : 1;
    if ((x->pfx & 0xff) == 0)
        return 0;
    return strcmp(x->key + 8, y->key + 8);
}

/* Merge sort with insertion sort for short runs; tmp holds n/2 + 1. */
static void ents_sort(const struct ent **v, const struct ent **tmp, size_t n)
{
    if (n <= 12) {
        for (size_t i = 1; i < n; i++) {
            const struct ent *x = v[i];
            size_t j = i;
            for (; j > 0 && ent_cmp(v[j - 1], x) > 0; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    ents_sort(v, tmp, h);
    ents_sort(v + h, tmp, n - h);
    if (ent_cmp(v[h - 1], v[h]) <= 0)
        return;
    memcpy(tmp, v, h * sizeof *v);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        v[k++] = ent_cmp(v[j], tmp[i]) < 0 ? v[j++] : tmp[i++];
    while (i < h)
        v[k++] = tmp[i++];
}

/* The live entries of a map, sorted by key, into m->sortv; their count.
 * mp->v[lo, hi) is already in key order: only the others are sorted, then
 * merged with it (a span's ~12 resource entries are sorted once per
 * tracer payload instead of once per span). */
static int sorted_live(struct mapper *m, const struct smap *mp, size_t lo, size_t hi,
                       size_t *n_out)
{
    size_t n = 0;
    m->n_shared = 0;
    if (mp->n > m->sort_cap) {
        size_t cap = m->sort_cap ? m->sort_cap : 64;
        while (cap < mp->n)
            cap *= 2;
        const struct ent **v = malloc(cap * sizeof *v), **t = malloc(cap * sizeof *t);
        if (!v || !t) {
            free(v);
            free(t);
            return SP_ENOMEM;
        }
        free(m->sortv);
        free(m->sortt);
        m->sortv = v;
        m->sortt = t;
        m->sort_cap = cap;
    }
    if (hi <= lo) {
        for (size_t i = 0; i < mp->n; i++)
            if (mp->v[i].live)
                m->sortv[n++] = &mp->v[i];
        ents_sort(m->sortv, m->sortt, n);
        *n_out = n;
        return 0;
    }
    /* the others into sortt, sorted with sortv as scratch */
    const struct ent **u = m->sortt;
    size_t nu = 0;
    for (size_t i = 0; i < mp->n; i++)
        if (mp->v[i].live && (i < lo || i >= hi))
            u[nu++] = &mp->v[i];
    ents_sort(u, m->sortv, nu);
    /* merged with the live ones of [lo, hi) (keys are distinct); those
     * still holding their resource value are counted for span_entries */
    size_t j = 0, r = lo;
    const struct tp_b *t = m->cur_tp;
    for (size_t i = lo; i < hi; i++)
        m->n_shared += mp->v[i].live && mp->v[i].rmi &&
                       mp->v[i].sval == t->rmeta[mp->v[i].rmi - 1].val;
    for (;;) {
        while (r < hi && !mp->v[r].live)
            r++;
        if (r == hi || j == nu)
            break;
        if (ent_cmp(u[j], &mp->v[r]) < 0)
            m->sortv[n++] = u[j++];
        else
            m->sortv[n++] = &mp->v[r++];
    }
    while (j < nu)
        m->sortv[n++] = u[j++];
    for (; r < hi; r++)
        if (mp->v[r].live)
            m->sortv[n++] = &mp->v[r];
    *n_out = n;
    return 0;
}

static char *own_str(struct mapper *m, const char *s, bool borrowed)
{
    if (!s)
        return (char *)protobuf_c_empty_string;
    if (borrowed && !m->borrow)
        return sp_arena_strdup(m->a, s);
    return (char *)s;
}

static int span_entries(struct mapper *m, struct mspan *ms)
{
    Datadog__Trace__Span *d = ms->pb;
    size_t nm = 0, nx = 0;
    if (sorted_live(m, &m->meta, m->rm_lo, m->rm_hi, &nm))
        return oom(m, "span entries");
    ms->meta_cap = nm + META_SPARE;
    d->meta = sp_arena_alloc(m->a, ms->meta_cap * sizeof *d->meta);
    if (!d->meta)
        return oom(m, "span entries");
    /* A resource entry the span carries unchanged (made by the resource
     * loop, value pointer still rmeta's) is the tracer payload's shared
     * message; sorted_live counted them. */
    const struct tp_b *t = m->cur_tp;
    const struct ent *blo = m->meta.v + m->rm_lo, *bhi = m->meta.v + m->rm_hi;
    Datadog__Trace__Span__MetaEntry *me =
        nm > m->n_shared ? sp_arena_alloc(m->a, (nm - m->n_shared) * sizeof *me) : NULL;
    if (nm > m->n_shared && !me)
        return oom(m, "span entries");
    for (size_t i = 0; i < nm; i++) {
        const struct ent *e = m->sortv[i];
        if (e >= blo && e < bhi && e->rmi && e->sval == t->rmeta[e->rmi - 1].val) {
            Datadog__Trace__Span__MetaEntry *x = t->rshared[e->rmi - 1];
            if (!x) {
                const struct res_meta *r = &t->rmeta[e->rmi - 1];
                x = sp_arena_alloc(m->a, sizeof *x);
                if (!x)
                    return oom(m, "meta");
                *x = (Datadog__Trace__Span__MetaEntry)DATADOG__TRACE__SPAN__META_ENTRY__INIT;
                x->key = (char *)r->key;
                x->value = (char *)r->val;
                t->rshared[e->rmi - 1] = x;
            }
            d->meta[i] = x;
            continue;
        }
        Datadog__Trace__Span__MetaEntry *x = me++;
        *x = (Datadog__Trace__Span__MetaEntry)DATADOG__TRACE__SPAN__META_ENTRY__INIT;
        x->key = own_str(m, e->key, e->kborrowed);
        x->value = own_str(m, e->sval, e->vborrowed);
        if (!x->key || !x->value)
            return oom(m, "meta");
        d->meta[i] = x;
    }
    d->n_meta = nm;

    if (sorted_live(m, &m->metrics, 0, 0, &nx))
        return oom(m, "span entries");
    ms->metrics_cap = nx + METRICS_SPARE;
    d->metrics = sp_arena_alloc(m->a, ms->metrics_cap * sizeof *d->metrics);
    Datadog__Trace__Span__MetricsEntry *xe = nx ? sp_arena_alloc(m->a, nx * sizeof *xe) : NULL;
    if (!d->metrics || (nx && !xe))
        return oom(m, "span entries");
    for (size_t i = 0; i < nx; i++) {
        const struct ent *e = m->sortv[i];
        Datadog__Trace__Span__MetricsEntry *x = &xe[i];
        *x = (Datadog__Trace__Span__MetricsEntry)DATADOG__TRACE__SPAN__METRICS_ENTRY__INIT;
        x->key = own_str(m, e->key, e->kborrowed);
        x->value = e->dval;
        if (!x->key)
            return oom(m, "metrics");
        d->metrics[i] = x;
    }
    d->n_metrics = nx;
    return 0;
}

/* Meta and metrics entries share their head: the message base and the key;
 * only the value's type differs. */
struct entry_head {
    ProtobufCMessage base;
    char *key;
};
_Static_assert(offsetof(Datadog__Trace__Span__MetaEntry, key) == offsetof(struct entry_head, key),
               "meta entry layout");
_Static_assert(offsetof(Datadog__Trace__Span__MetricsEntry, key) ==
                   offsetof(struct entry_head, key),
               "metrics entry layout");

/* Sorted insert into a finalised span's meta or metrics (v, *n, within the
 * spare slots up to cap): the entry with key k, found or made (a new one
 * gets k as its key, its value left for the caller); NULL when out of
 * slots or memory. */
static void *entry_upsert(struct mapper *m, void **v, size_t *n, size_t cap,
                          const ProtobufCMessageDescriptor *desc, const char *k, const char *what)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(((struct entry_head *)v[mid])->key, k);
        if (c == 0)
            return v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (*n >= cap) {
        oom(m, what);
        return NULL;
    }
    struct entry_head *x = sp_arena_alloc(m->a, desc->sizeof_message);
    if (!x) {
        oom(m, what);
        return NULL;
    }
    protobuf_c_message_init(desc, x);
    x->key = (char *)k;
    memmove(&v[lo + 1], &v[lo], (*n - lo) * sizeof *v);
    v[lo] = x;
    (*n)++;
    return x;
}

static int span_set_meta(struct mapper *m, const struct tp_b *t, struct mspan *ms, const char *k,
                         const char *v)
{
    Datadog__Trace__Span *d = ms->pb;
    Datadog__Trace__Span__MetaEntry *x =
        entry_upsert(m, (void **)d->meta, &d->n_meta, ms->meta_cap,
                     &datadog__trace__span__meta_entry__descriptor, k, "meta slot");
    if (!x)
        return SP_ENOMEM;
    for (size_t i = 0; i < t->n_rmeta; i++) {
        if (t->rshared[i] != x)
            continue;
        /* shared by other spans: this span gets its own copy */
        Datadog__Trace__Span__MetaEntry *c = sp_arena_alloc(m->a, sizeof *c);
        if (!c)
            return oom(m, "meta slot");
        *c = *x;
        for (size_t j = 0; j < d->n_meta; j++)
            if (d->meta[j] == x)
                d->meta[j] = c;
        x = c;
        break;
    }
    x->value = (char *)v;
    return 0;
}

static int span_set_metric(struct mapper *m, struct mspan *ms, const char *k, double v)
{
    Datadog__Trace__Span *d = ms->pb;
    Datadog__Trace__Span__MetricsEntry *x =
        entry_upsert(m, (void **)d->metrics, &d->n_metrics, ms->metrics_cap,
                     &datadog__trace__span__metrics_entry__descriptor, k, "metric slot");
    if (!x)
        return SP_ENOMEM;
    x->value = v;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Grouping                                                                  */
/* ------------------------------------------------------------------------ */

static int kvp_cmp(const void *x, const void *y)
{
    const sp_otlp_kv *a = *(sp_otlp_kv *const *)x, *b = *(sp_otlp_kv *const *)y;
    return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

/* A canonical rendering of a resource (attributes sorted by key), so
 * ResourceSpans of the same service instance share a TracerPayload. */
static const char *resource_key(struct mapper *m, const sp_otlp_resource_spans *rs)
{
    size_t n = rs->resource ? rs->resource->n_attributes : 0;
    sp_otlp_kv **v = n ? malloc(n * sizeof *v) : NULL;
    if (n && !v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rs->resource->attributes[i])
            v[k++] = rs->resource->attributes[i];
    if (k)
        qsort(v, k, sizeof *v, kvp_cmp);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        /* "key\x1f<value case>\x1fvalue\x1e", without printf's parsing */
        const char *val = sp_dd_any_string(v[i]->value, m->a);
        char vc[24];
        int64_t vcase = v[i]->value ? (int64_t)v[i]->value->value_case : 0;
        size_t vcn = fmt_u64(vc, vcase < 0 ? 0 - (uint64_t)vcase : (uint64_t)vcase, vcase < 0);
        vc[vcn++] = '\x1f';
        rc = !val ? SP_ENOMEM
                  : sp_buf_append_str(&m->sb, v[i]->key ? v[i]->key : "") ||
                            sp_buf_append_byte(&m->sb, '\x1f') ||
                            sp_buf_append(&m->sb, vc, vcn) || sp_buf_append_str(&m->sb, val) ||
                            sp_buf_append_byte(&m->sb, '\x1e')
                        ? SP_ENOMEM
                        : 0;
    }
    free(v);
    if (rc) {
        sp_buf_reset(&m->sb);
        return NULL;
    }
    return sb_take(m);
}

/* ent_cmp's order on two resource entries, then their attribute order. */
static int rmeta_cmp(const void *x, const void *y)
{
    const struct res_meta *a = x, *b = y;
    struct ent ea = {.key = a->key, .pfx = a->pfx}, eb = {.key = b->key, .pfx = b->pfx};
    int c = ent_cmp(&ea, &eb);
    if (c)
        return c;
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

/* What each resource attribute adds to every span's meta, once per tracer
 * payload (the per-span part of attr_to_meta is the precedence check).
 * Uses m->ids as sp_dd_keys_index left it for t->res_attrs. */
static int res_meta_build(struct mapper *m, struct tp_b *t)
{
    if (!t->n_res_attrs)
        return 0;
    t->rmeta = malloc(t->n_res_attrs * sizeof *t->rmeta);
    t->rshared = calloc(t->n_res_attrs, sizeof *t->rshared);
    if (!t->rmeta || !t->rshared)
        return SP_ENOMEM;
    for (size_t i = 0; i < t->n_res_attrs; i++) {
        const sp_otlp_kv *kv = t->res_attrs[i];
        if (!kv || !kv->key)
            continue;
        const char *sv = sp_dd_any_string(kv->value, m->a);
        bool kb;
        const char *mk;
        if (!sv || dd_key_for(m, kv->key, m->ids[i], &mk, &kb))
            return SP_ENOMEM;
        if (!mk)
            continue;
        struct res_meta *r = &t->rmeta[t->n_rmeta];
        r->analytics = -1;
        if (m->ids[i] == SP_DD_K_ANALYTICS_EVENT) {
            int bv = parse_go_bool(sv);
            r->analytics = (int8_t)(bv >= 0 ? bv : 2);
        }
        /* Copies in the output arena, shared by all the spans. */
        r->key = kb ? sp_arena_strdup(m->a, mk) : mk;
        r->val = sp_arena_strdup(m->a, sv);
        if (!r->key || !r->val)
            return SP_ENOMEM;
        r->hash = key_hash_pfx(r->key, &r->pfx);
        r->fits = meta_fits(r->key, r->val);
        r->ord = (uint32_t)t->n_rmeta;
        t->n_rmeta++;
    }
    /* In key order (ties: attribute order, which decides between two
     * attributes with one key), so map_span appends them sorted. */
    qsort(t->rmeta, t->n_rmeta, sizeof *t->rmeta, rmeta_cmp);
    return 0;
}

static struct tp_b *tp_for(struct mapper *m, const sp_otlp_resource_spans *rs)
{
    const char *key = resource_key(m, rs);
    if (!key)
        return NULL;
    uint32_t h = (uint32_t)sp_hash_str(key, 0);
    for (size_t i = 0; i < m->ntp; i++)
        if (m->tps[i].key_hash == h && strcmp(m->tps[i].key, key) == 0)
            return &m->tps[i];
    if (m->ntp == m->captp) {
        size_t cap = m->captp ? m->captp * 2 : 4;
        struct tp_b *nv = realloc(m->tps, cap * sizeof *nv);
        if (!nv)
            return NULL;
        m->tps = nv;
        m->captp = cap;
    }
    struct tp_b *t = &m->tps[m->ntp];
    memset(t, 0, sizeof *t);
    t->key = key;
    t->key_hash = h;
    t->res_attrs = rs->resource ? rs->resource->attributes : NULL;
    t->n_res_attrs = rs->resource ? rs->resource->n_attributes : 0;
    m->ntp++; /* mapper_free frees what the tracer payload holds, even half built */
    t->tp = sp_arena_alloc(m->a, sizeof *t->tp);
    if (!t->tp || mapper_ids(m, t->n_res_attrs))
        return NULL;
    datadog__trace__tracer_payload__init(t->tp);
    sp_dd_keys_index(&t->rk, t->res_attrs, t->n_res_attrs, m->ids);
    if (res_meta_build(m, t))
        return NULL;
    return t;
}

static uint64_t chunk_hash_of(const void *ctx, size_t pos)
{
    return sp_hash_u64(((const struct tp_b *)ctx)->chunks[pos].tid);
}

static bool chunk_eq(const void *ctx, size_t pos, const void *key)
{
    return ((const struct tp_b *)ctx)->chunks[pos].tid == *(const uint64_t *)key;
}

static struct chunk_b *chunk_for(struct tp_b *t, uint64_t tid)
{
    if (sp_hindex_reserve(&t->ix, t->n + 1, t->n, chunk_hash_of, t))
        return NULL;
    size_t j = sp_hindex_find(&t->ix, sp_hash_u64(tid), chunk_eq, t, &tid);
    if (t->ix.slots[j])
        return &t->chunks[sp_hindex_pos(&t->ix, j)];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct chunk_b *nv = realloc(t->chunks, cap * sizeof *nv);
        if (!nv)
            return NULL;
        t->chunks = nv;
        t->cap = cap;
    }
    struct chunk_b *c = &t->chunks[t->n];
    memset(c, 0, sizeof *c);
    c->tid = tid;
    sp_hindex_put(&t->ix, j, t->n);
    t->n++;
    return c;
}

static struct mspan *chunk_add(struct chunk_b *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct mspan *nv = realloc(c->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        c->v = nv;
        c->cap = cap;
    }
    return &c->v[c->n++];
}

/* ------------------------------------------------------------------------ */
/* Per chunk: top level, Code Hotspots bridge, priority                     */
/* ------------------------------------------------------------------------ */

/* Span id -> span within the chunk (scratch: the mapper's table, emptied
 * and refilled for each chunk rather than allocated per chunk). */
struct idindex {
    struct sp_hindex ix;
};

static uint64_t span_hash_of(const void *ctx, size_t pos)
{
    return sp_hash_u64(((const struct chunk_b *)ctx)->v[pos].pb->spanid);
}

static bool span_eq(const void *ctx, size_t pos, const void *key)
{
    return ((const struct chunk_b *)ctx)->v[pos].pb->spanid == *(const uint64_t *)key;
}

/* Every span of c in ix (emptied first); a repeated span id keeps its
 * first span, as a lookup did when the table was built in one go. */
static int idindex_build(struct idindex *ix, const struct chunk_b *c)
{
    sp_hindex_clear(&ix->ix);
    if (sp_hindex_reserve(&ix->ix, c->n, 0, span_hash_of, c))
        return SP_ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        uint64_t id = c->v[i].pb->spanid;
        size_t j = sp_hindex_find(&ix->ix, sp_hash_u64(id), span_eq, c, &id);
        if (!ix->ix.slots[j])
            sp_hindex_put(&ix->ix, j, i);
    }
    return 0;
}

static const struct mspan *idindex_get(const struct idindex *ix, const struct chunk_b *c,
                                       uint64_t id)
{
    size_t j = sp_hindex_find(&ix->ix, sp_hash_u64(id), span_eq, c, &id);
    return ix->ix.slots[j] ? &c->v[sp_hindex_pos(&ix->ix, j)] : NULL;
}

/* A local root: no parent, a parent flagged remote, or, when the exporter
 * did not say (no HAS_IS_REMOTE flag), an entry span (SERVER/CONSUMER) or a
 * span whose parent is not in this chunk. */
static bool is_local_root(const struct mspan *s, const struct idindex *ix,
                          const struct chunk_b *c)
{
    if (!s->pb->parentid)
        return true;
    if (s->flags & OTLP_FLAG_HAS_IS_REMOTE)
        return (s->flags & OTLP_FLAG_IS_REMOTE) != 0;
    if (s->kind == SPAN_KIND(SERVER) || s->kind == SPAN_KIND(CONSUMER))
        return true;
    return idindex_get(ix, c, s->pb->parentid) == NULL;
}

/* The runtime id the join recorded for this span's service instance. */
static const char *runtime_id_for(struct mapper *m, const struct tp_b *t, const char *service)
{
    const struct sp_traces *tr = m->traces;
    if (!tr->runtime_ids || !tr->runtime_id_count)
        return NULL;
    const char *inst = res_str(t, "service.instance.id", m->a);
    const char *host = res_str(t, "host.name", m->a);
    const char *raw = res_str(t, "service.name", m->a);
    for (size_t i = 0; i < tr->runtime_id_count; i++) {
        const struct sp_runtime_id *r = &tr->runtime_ids[i];
        if (!r->service || !r->runtime_id || !*r->runtime_id)
            continue;
        if (strcmp(r->service, service) != 0 && !(raw && strcmp(r->service, raw) == 0))
            continue;
        if (r->instance && *r->instance &&
            !((inst && strcmp(r->instance, inst) == 0) || (host && strcmp(r->instance, host) == 0)))
            continue;
        return r->runtime_id;
    }
    return NULL;
}

static int finish_chunk(struct mapper *m, struct tp_b *t, struct chunk_b *c,
                        Datadog__Trace__TraceChunk *out)
{
    struct idindex ix = {m->chunk_ix}; /* handed back below: the table is reused */
    if (idindex_build(&ix, c)) {
        m->chunk_ix = ix.ix;
        return oom(m, "chunk index");
    }
    int rc = 0;
    bool has_prio = false;
    int64_t prio = DD_PRIORITY_AUTO_KEEP;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        struct mspan *s = &c->v[i];
        Datadog__Trace__Span *d = s->pb;
        /* traceutil.ComputeTopLevel: root, parent absent, or parent in
         * another service. */
        const struct mspan *p = d->parentid ? idindex_get(&ix, c, d->parentid) : NULL;
        if (!d->parentid || !p ||
            (p->pb->service != d->service && strcmp(p->pb->service, d->service) != 0))
            rc = span_set_metric(m, s, "_top_level", 1);
        /* Code Hotspots bridge: runtime-id on every span of the instance,
         * as dd-trace-go's global tag (ddtrace/tracer/option.go,
         * WithGlobalTag(ext.RuntimeID)); _dd.profiling.enabled on local
         * roots only (internal/traceprof/profiler.go). */
        const char *rid = rc == 0 ? runtime_id_for(m, t, d->service) : NULL;
        if (rid) {
            const char *r = sp_arena_strdup(m->a, rid);
            rc = r ? span_set_meta(m, t, s, "runtime-id", r) : oom(m, "runtime id");
            if (rc == 0 && is_local_root(s, &ix, c))
                rc = span_set_metric(m, s, "_dd.profiling.enabled", 1);
            if (rc == 0 && !*t->tp->runtimeid)
                t->tp->runtimeid = (char *)r;
        }
        if (s->has_priority) {
            has_prio = true;
            prio = s->sampling_priority;
        }
    }
    m->chunk_ix = ix.ix;
    if (rc)
        return rc;

    /* createChunks: a user priority (decision maker -4), else the OTLP
     * probabilistic sampler at rate 1 (auto keep, decision maker -9). */
    datadog__trace__trace_chunk__init(out);
    out->priority = (int32_t)prio;
    if (prio > 0 && c->n)
        rc = span_set_meta(m, t, &c->v[0], "_dd.p.dm", has_prio ? "-4" : "-9");
    if (rc)
        return rc;
    Datadog__Trace__TraceChunk__TagsEntry *te = sp_arena_alloc(m->a, sizeof *te);
    out->tags = sp_arena_alloc(m->a, sizeof *out->tags);
    out->spans = sp_arena_alloc(m->a, (c->n ? c->n : 1) * sizeof *out->spans);
    if (!te || !out->tags || !out->spans)
        return oom(m, "chunk");
    datadog__trace__trace_chunk__tags_entry__init(te);
    te->key = "_dd.otlp_sr";
    te->value = DD_OTLP_SAMPLE_RATE;
    out->tags[0] = te;
    out->n_tags = 1;
    for (size_t i = 0; i < c->n; i++)
        out->spans[i] = c->v[i].pb;
    out->n_spans = c->n;
    return 0;
}

/* attributes.ContainerMappings plus datadog.container.tag.* (semantic
 * conventions win), flattened "k:v,k:v" with keys sorted. */
static const struct {
    const char *otel, *dd;
} container_mappings[] = {
    {"container.id", "container_id"},
    {"container.name", "container_name"},
    {"container.image.name", "image_name"},
    {"container.image.tag", "image_tag"},
    {"container.runtime", "runtime"},
    {"cloud.provider", "cloud_provider"},
    {"cloud.region", "region"},
    {"cloud.availability_zone", "zone"},
    {"aws.ecs.task.family", "task_family"},
    {"aws.ecs.task.arn", "task_arn"},
    {"aws.ecs.cluster.arn", "ecs_cluster_name"},
    {"aws.ecs.task.revision", "task_version"},
    {"aws.ecs.container.arn", "ecs_container_name"},
    {"k8s.container.name", "kube_container_name"},
    {"k8s.cluster.name", "kube_cluster_name"},
    {"k8s.deployment.name", "kube_deployment"},
    {"k8s.replicaset.name", "kube_replica_set"},
    {"k8s.statefulset.name", "kube_stateful_set"},
    {"k8s.daemonset.name", "kube_daemon_set"},
    {"k8s.job.name", "kube_job"},
    {"k8s.cronjob.name", "kube_cronjob"},
    {"k8s.namespace.name", "kube_namespace"},
    {"k8s.pod.name", "pod_name"},
};

struct ctag {
    const char *k, *v;
    bool semconv;
};

static int ctag_cmp(const void *x, const void *y)
{
    const struct ctag *a = x, *b = y;
    int c = strcmp(a->k, b->k);
    if (c)
        return c;
    return (int)b->semconv - (int)a->semconv; /* semantic conventions first */
}

static const char *container_tags(struct mapper *m, const struct tp_b *t)
{
    size_t n = t->n_res_attrs, k = 0;
    if (!n)
        return "";
    struct ctag *v = malloc(n * sizeof *v);
    if (!v)
        return NULL;
    static const char pfx[] = "datadog.container.tag.";
    for (size_t i = 0; i < n; i++) {
        const sp_otlp_kv *kv = t->res_attrs[i];
        if (!kv || !kv->key || !kv->value || kv->value->value_case != AV(STRING_VALUE) ||
            !kv->value->string_value || !*kv->value->string_value)
            continue;
        for (size_t j = 0; j < sizeof container_mappings / sizeof container_mappings[0]; j++)
            if (strcmp(kv->key, container_mappings[j].otel) == 0)
                v[k++] = (struct ctag){container_mappings[j].dd, kv->value->string_value, true};
        if (strncmp(kv->key, pfx, sizeof pfx - 1) == 0 && kv->key[sizeof pfx - 1])
            v[k++] = (struct ctag){kv->key + sizeof pfx - 1, kv->value->string_value, false};
        if (k + 2 > n) /* each attribute adds at most one tag */
            break;
    }
    qsort(v, k, sizeof *v, ctag_cmp);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        if (i && strcmp(v[i].k, v[i - 1].k) == 0)
            continue;
        rc = sp_buf_printf(&m->sb, "%s%s:%s", m->sb.len ? "," : "", v[i].k, v[i].v);
    }
    free(v);
    if (rc) {
        sp_buf_reset(&m->sb);
        return NULL;
    }
    return sb_take(m);
}

static int finish_tracer_payload(struct mapper *m, struct tp_b *t)
{
    Datadog__Trace__TracerPayload *tp = t->tp;
    struct sp_arena *a = m->a;

    /* receiveResourceSpansV2: hostname from the resource, else the
     * configured host (datadog.host, .container_id and .env are gone with
     * the datadog.* namespace, PR #45833). */
    bool found;
    const char *host = resource_hostname(t, a, &found);
    if (!found)
        host = m->opts && m->opts->hostname ? m->opts->hostname : "";
    tp->hostname = sp_arena_strdup(a, host ? host : "");
    const char *cid = res_concept(t, "container.id");
    if (!cid)
        cid = res_concept(t, "k8s.pod.uid");
    tp->containerid = sp_arena_strdup(a, cid ? cid : "");
    const char *env = res_concept(t, "deployment.environment.name");
    if (!env)
        env = res_concept(t, "deployment.environment");
    if (!env && m->opts && m->opts->env)
        env = m->opts->env;
    tp->env = (char *)(env ? sp_dd_normalize_tag_value(env, a) : "");
    if (tp->env && tp->env == env)
        tp->env = sp_arena_strdup(a, env);
    const char *lang = res_str(t, "telemetry.sdk.language", a);
    tp->languagename = sp_arena_strdup(a, lang ? lang : "");
    const char *ver = res_str(t, "telemetry.sdk.version", a);
    tp->tracerversion = sp_arena_sprintf(a, "otlp-%s", ver ? ver : "");
    if (!tp->hostname || !tp->containerid || !tp->env || !tp->languagename ||
        !tp->tracerversion)
        return oom(m, "tracer payload");

    const char *ctags = container_tags(m, t);
    if (!ctags)
        return oom(m, "container tags");
    if (*ctags) {
        Datadog__Trace__TracerPayload__TagsEntry *te = sp_arena_alloc(a, sizeof *te);
        tp->tags = sp_arena_alloc(a, sizeof *tp->tags);
        if (!te || !tp->tags)
            return oom(m, "tracer payload tags");
        datadog__trace__tracer_payload__tags_entry__init(te);
        te->key = "_dd.tags.container";
        te->value = (char *)ctags;
        tp->tags[0] = te;
        tp->n_tags = 1;
    }

    tp->chunks = sp_arena_alloc(a, (t->n ? t->n : 1) * sizeof *tp->chunks);
    Datadog__Trace__TraceChunk *cv = sp_arena_alloc(a, (t->n ? t->n : 1) * sizeof *cv);
    if (!tp->chunks || !cv)
        return oom(m, "chunks");
    for (size_t i = 0; i < t->n; i++) {
        int rc = finish_chunk(m, t, &t->chunks[i], &cv[i]);
        if (rc)
            return rc;
        tp->chunks[i] = &cv[i];
    }
    tp->n_chunks = t->n;
    return 0;
}

static void mapper_free(struct mapper *m)
{
    for (size_t i = 0; i < m->ntp; i++) {
        for (size_t j = 0; j < m->tps[i].n; j++)
            free(m->tps[i].chunks[j].v);
        free(m->tps[i].chunks);
        sp_hindex_free(&m->tps[i].ix);
        free(m->tps[i].rmeta);
        free(m->tps[i].rshared);
    }
    free(m->tps);
    smap_free(&m->meta);
    smap_free(&m->metrics);
    sp_hindex_free(&m->chunk_ix);
    sp_buf_free(&m->sb);
    free(m->ids);
    free(m->sortv);
    free(m->sortt);
    free(m->tags);
}

/* The exporter's `tags` as (key, value) pairs in the arena, once: "k:v"
 * with a non-empty key, in order. */
static int mapper_tags(struct mapper *m)
{
    size_t n = 0;
    if (!m->opts || !m->opts->tags)
        return 0;
    while (m->opts->tags[n])
        n++;
    if (!n)
        return 0;
    m->tags = malloc(n * sizeof *m->tags);
    if (!m->tags)
        return oom(m, "tags");
    for (const char *const *tg = m->opts->tags; *tg; tg++) {
        const char *colon = strchr(*tg, ':');
        if (!colon || colon == *tg)
            continue;
        struct tag_kv *t = &m->tags[m->n_tags];
        t->k = sp_arena_strndup(m->a, *tg, (size_t)(colon - *tg));
        t->v = sp_arena_strdup(m->a, colon + 1);
        if (!t->k || !t->v)
            return oom(m, "tags");
        t->fits = meta_fits(t->k, t->v);
        m->n_tags++;
    }
    return 0;
}

int sp_dd_map_traces(const struct sp_traces *traces, const struct sp_dd_map_opts *opts,
                     struct sp_arena *arena, Datadog__Trace__AgentPayload **out, size_t *dropped,
                     struct sp_err *err)
{
    struct mapper m = {.traces = traces,
                       .opts = opts,
                       .a = arena,
                       .err = err,
                       .borrow = opts && opts->borrow_batch};
    pthread_once(&lit_once, lit_init);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m.now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    *out = NULL;
    if (dropped)
        *dropped = 0;
    int rc = mapper_tags(&m);

    const sp_otlp_request *req = traces ? traces->req : NULL;
    for (size_t r = 0; rc == 0 && req && r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        if (!rs)
            continue;
        struct tp_b *t = NULL;
        for (size_t k = 0; rc == 0 && k < rs->n_scope_spans; k++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[k];
            for (size_t i = 0; rc == 0 && ss && i < ss->n_spans; i++) {
                const sp_otlp_span *s = ss->spans[i];
                if (!s)
                    continue;
                uint64_t tid = sp_dd_trace_id_low(s->trace_id.data, s->trace_id.len);
                uint64_t sid = sp_dd_span_id(s->span_id.data, s->span_id.len);
                /* The agent rejects zero ids (reason:trace_id_zero / span_id_zero). */
                if (!tid || !sid) {
                    m.dropped++;
                    continue;
                }
                if (!t && !(t = tp_for(&m, rs))) {
                    rc = oom(&m, "tracer payload");
                    break;
                }
                struct chunk_b *c = chunk_for(t, tid);
                struct mspan *ms = c ? chunk_add(c) : NULL;
                if (!ms) {
                    rc = oom(&m, "chunk");
                    break;
                }
                rc = map_span(&m, t, ss, s, ms);
                if (rc)
                    c->n--;
            }
        }
    }

    Datadog__Trace__AgentPayload *p = NULL;
    if (rc == 0 && !(p = sp_arena_alloc(arena, sizeof *p)))
        rc = oom(&m, "payload");
    if (rc == 0) {
        datadog__trace__agent_payload__init(p);
        p->tracerpayloads = sp_arena_alloc(arena, (m.ntp ? m.ntp : 1) * sizeof *p->tracerpayloads);
        if (!p->tracerpayloads)
            rc = oom(&m, "payload");
    }
    for (size_t i = 0; rc == 0 && i < m.ntp; i++) {
        rc = finish_tracer_payload(&m, &m.tps[i]);
        if (rc == 0)
            p->tracerpayloads[p->n_tracerpayloads++] = m.tps[i].tp;
    }
    if (rc == 0) {
        /* pkg/trace/writer: the agent's own host, env and version, and the
         * sampler targets it reports (agent defaults). */
        const char *host = opts && opts->hostname ? opts->hostname : NULL;
        if (!host && p->n_tracerpayloads)
            host = p->tracerpayloads[0]->hostname;
        p->hostname = sp_arena_strdup(arena, host ? host : "");
        p->env = sp_arena_strdup(arena, opts && opts->env && *opts->env ? opts->env
                                                                         : DD_DEFAULT_ENV);
        p->agentversion = sp_arena_strdup(arena, opts && opts->agent_version
                                                     ? opts->agent_version
                                                     : "spanprof");
        p->targettps = DD_TARGET_TPS;
        p->errortps = DD_ERROR_TPS;
        if (!p->hostname || !p->env || !p->agentversion)
            rc = oom(&m, "payload");
    }
    if (dropped)
        *dropped = m.dropped;
    mapper_free(&m);
    if (rc)
        return rc;
    *out = p;
    return 0;
}
