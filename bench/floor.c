/* floor: the pipeline floor, the cheapest work that turns an OTLP export
 * into a Datadog agentless payload, on one core.
 *
 *   floor [--seconds S | --iters N] [--mode full|min] [--body FILE.pb]
 *         [--collect all|decode|map|pack|gzip] [--spans 100]
 *
 * Per iteration (one request of 100 spans): protobuf-c unpack into a fresh
 * arena (sp_arena_pb_allocator), build an AgentPayload (one TracerPayload
 * per resource, one chunk per trace), pack it, gzip level 1 with a reused
 * libdeflate compressor, drop the arena. Nothing else: no validation, no
 * Datadog naming rules, no copies (meta entries point into the decoded
 * strings). mode=full carries what the intake must receive anyway (every
 * span attribute as meta or metrics, the resource attributes as meta of
 * every span, as the Agent's mapping does); mode=min only the fixed span
 * fields. spanprof's CPU per span divided by the full floor says how much
 * of its work is avoidable.
 *
 * Stage times are thread CPU time (a shared machine inflates wall time).
 * Under callgrind (valgrind --tool=callgrind --collect-atstart=no) only the
 * stages named by --collect are counted, so instructions per span per stage
 * come out of the totals without annotating. Prints RESULT lines. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "bench_util.h"
#include "dd_trace.pb-c.h"
#include "otlp_gen.h"
#include "sp_arena.h"

typedef Datadog__Trace__Span dd_span;
typedef Datadog__Trace__Span__MetaEntry dd_meta;
typedef Datadog__Trace__Span__MetricsEntry dd_metric;
typedef Datadog__Trace__TraceChunk dd_chunk;
typedef Datadog__Trace__TracerPayload dd_tracer;
typedef Datadog__Trace__AgentPayload dd_payload;

enum { ST_DECODE = 1, ST_MAP = 2, ST_PACK = 4, ST_GZIP = 8, ST_ALL = 15 };

static uint64_t be64(const ProtobufCBinaryData *d, size_t off)
{
    uint64_t v = 0;
    if (d->len < off + 8)
        return 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | d->data[off + i];
    return v;
}

/* Formats an int attribute's value in the arena (resource ints are meta). */
static char *fmt_i64(struct sp_arena *a, int64_t v)
{
    return sp_arena_sprintf(a, "%" PRId64, v);
}

/* One span's attributes: strings and bools to meta, numbers to metrics. */
static int map_attrs(struct sp_arena *a, dd_span *d, sp_otlp_kv *const *kv, size_t n,
                     dd_meta *const *res_meta, size_t n_res)
{
    d->meta = sp_arena_alloc(a, sizeof(*d->meta) * (n + n_res + 1));
    d->metrics = sp_arena_alloc(a, sizeof(*d->metrics) * (n + 1));
    dd_meta *m = sp_arena_alloc(a, sizeof(*m) * (n + 1));
    dd_metric *x = sp_arena_alloc(a, sizeof(*x) * (n + 1));
    if (!d->meta || !d->metrics || !m || !x)
        return -1;
    memcpy(d->meta, res_meta, sizeof(*res_meta) * n_res);
    d->n_meta = n_res;
    d->n_metrics = 0;
    for (size_t i = 0; i < n; i++) {
        const sp_otlp_any *v = kv[i]->value;
        if (!v)
            continue;
        switch (v->value_case) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            datadog__trace__span__meta_entry__init(m);
            m->key = kv[i]->key;
            m->value = v->string_value;
            d->meta[d->n_meta++] = m++;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            datadog__trace__span__meta_entry__init(m);
            m->key = kv[i]->key;
            m->value = v->bool_value ? "true" : "false";
            d->meta[d->n_meta++] = m++;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
            datadog__trace__span__metrics_entry__init(x);
            x->key = kv[i]->key;
            x->value = (double)v->int_value;
            d->metrics[d->n_metrics++] = x++;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            datadog__trace__span__metrics_entry__init(x);
            x->key = kv[i]->key;
            x->value = v->double_value;
            d->metrics[d->n_metrics++] = x++;
            break;
        default:
            break;
        }
    }
    return 0;
}

static const char *res_attr(const Opentelemetry__Proto__Resource__V1__Resource *r, const char *k)
{
    for (size_t i = 0; r && i < r->n_attributes; i++)
        if (strcmp(r->attributes[i]->key, k) == 0 && r->attributes[i]->value &&
            r->attributes[i]->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return r->attributes[i]->value->string_value;
    return "";
}

/* OTLP request -> AgentPayload, in the arena; NULL on ENOMEM. */
static dd_payload *map_request(struct sp_arena *a, const sp_otlp_request *req, int full)
{
    dd_payload *p = sp_arena_alloc(a, sizeof(*p));
    if (!p)
        return NULL;
    datadog__trace__agent_payload__init(p);
    p->hostname = "bench-node-7";
    p->agentversion = "spanprof-floor";
    p->tracerpayloads = sp_arena_alloc(a, sizeof(*p->tracerpayloads) * (req->n_resource_spans + 1));
    if (!p->tracerpayloads)
        return NULL;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        const Opentelemetry__Proto__Resource__V1__Resource *res = rs->resource;
        dd_tracer *tp = sp_arena_alloc(a, sizeof(*tp));
        if (!tp)
            return NULL;
        datadog__trace__tracer_payload__init(tp);
        tp->languagename = (char *)res_attr(res, "telemetry.sdk.language");
        tp->tracerversion = (char *)res_attr(res, "telemetry.sdk.version");
        tp->containerid = (char *)res_attr(res, "container.id");
        tp->env = (char *)res_attr(res, "deployment.environment.name");
        tp->hostname = (char *)res_attr(res, "host.name");
        char *service = (char *)res_attr(res, "service.name");

        /* Resource attributes: one meta entry each, shared by every span. */
        size_t n_res = full && res ? res->n_attributes : 0;
        dd_meta **res_meta = sp_arena_alloc(a, sizeof(*res_meta) * (n_res + 1));
        dd_meta *rm = sp_arena_alloc(a, sizeof(*rm) * (n_res + 1));
        if (!res_meta || !rm)
            return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n_res; i++) {
            const sp_otlp_any *v = res->attributes[i]->value;
            if (!v)
                continue;
            datadog__trace__span__meta_entry__init(&rm[k]);
            rm[k].key = res->attributes[i]->key;
            if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                rm[k].value = v->string_value;
            else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
                rm[k].value = fmt_i64(a, v->int_value);
            else
                continue;
            res_meta[k] = &rm[k];
            k++;
        }
        n_res = k;

        size_t n = 0;
        for (size_t s = 0; s < rs->n_scope_spans; s++)
            n += rs->scope_spans[s]->n_spans;
        dd_span *spans = sp_arena_alloc(a, sizeof(*spans) * (n + 1));
        uint64_t *tid = sp_arena_alloc(a, sizeof(*tid) * (n + 1));
        /* trace id -> chunk: open addressing, 2n slots */
        size_t cap = 16;
        while (cap < 2 * n)
            cap *= 2;
        uint64_t *keys = sp_arena_calloc(a, cap, sizeof(*keys));
        dd_chunk **slot = sp_arena_calloc(a, cap, sizeof(*slot));
        dd_chunk **chunks = sp_arena_alloc(a, sizeof(*chunks) * (n + 1));
        if (!spans || !tid || !keys || !slot || !chunks)
            return NULL;
        size_t n_chunks = 0, i = 0;
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[s];
            for (size_t j = 0; j < ss->n_spans; j++, i++) {
                const sp_otlp_span *o = ss->spans[j];
                dd_span *d = &spans[i];
                datadog__trace__span__init(d);
                d->service = service;
                d->name = o->name;
                d->resource = o->name;
                d->traceid = be64(&o->trace_id, 8);
                d->spanid = be64(&o->span_id, 0);
                d->parentid = be64(&o->parent_span_id, 0);
                d->start = (int64_t)o->start_time_unix_nano;
                d->duration = (int64_t)(o->end_time_unix_nano - o->start_time_unix_nano);
                d->error = o->status &&
                           o->status->code ==
                               OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
                if (full && map_attrs(a, d, o->attributes, o->n_attributes, res_meta, n_res))
                    return NULL;
                tid[i] = d->traceid;
                size_t h = (size_t)(d->traceid * 0x9e3779b97f4a7c15ull) & (cap - 1);
                while (slot[h] && keys[h] != d->traceid)
                    h = (h + 1) & (cap - 1);
                if (!slot[h]) {
                    dd_chunk *c = sp_arena_alloc(a, sizeof(*c));
                    if (!c)
                        return NULL;
                    datadog__trace__trace_chunk__init(c);
                    c->priority = 1;
                    keys[h] = d->traceid;
                    slot[h] = c;
                    chunks[n_chunks++] = c;
                }
                slot[h]->n_spans++; /* counted now, filled below */
            }
        }
        for (size_t c = 0; c < n_chunks; c++) {
            chunks[c]->spans = sp_arena_alloc(a, sizeof(dd_span *) * chunks[c]->n_spans);
            if (!chunks[c]->spans)
                return NULL;
            chunks[c]->n_spans = 0;
        }
        for (i = 0; i < n; i++) {
            size_t h = (size_t)(tid[i] * 0x9e3779b97f4a7c15ull) & (cap - 1);
            while (keys[h] != tid[i])
                h = (h + 1) & (cap - 1);
            slot[h]->spans[slot[h]->n_spans++] = &spans[i];
        }
        tp->chunks = chunks;
        tp->n_chunks = n_chunks;
        p->tracerpayloads[p->n_tracerpayloads++] = tp;
    }
    return p;
}

static int read_file(const char *path, struct sp_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (sp_buf_append(out, tmp, n)) {
            fclose(f);
            return -1;
        }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    long iters = 0;
    int full = 1;
    int collect = ST_ALL;
    size_t spans_per_req = 100;
    const char *body_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            full = strcmp(argv[++i], "min") != 0;
        else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc)
            body_path = argv[++i];
        else if (strcmp(argv[i], "--spans") == 0 && i + 1 < argc)
            spans_per_req = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--collect") == 0 && i + 1 < argc) {
            const char *c = argv[++i];
            collect = strcmp(c, "decode") == 0 ? ST_DECODE
                      : strcmp(c, "map") == 0  ? ST_MAP
                      : strcmp(c, "pack") == 0 ? ST_PACK
                      : strcmp(c, "gzip") == 0 ? ST_GZIP
                                               : ST_ALL;
        } else {
            fprintf(stderr, "usage: floor [--seconds S | --iters N] [--mode full|min] "
                            "[--body FILE] [--spans N] [--collect all|decode|map|pack|gzip]\n");
            return 2;
        }
    }

    struct sp_buf body = {0};
    if (body_path) {
        if (read_file(body_path, &body)) {
            fprintf(stderr, "floor: cannot read '%s'\n", body_path);
            return 1;
        }
    } else {
        struct sp_arena *ga = sp_arena_create(0);
        struct bench_otlp_opts o = {.spans = spans_per_req, .seed = 1};
        sp_otlp_request *req = ga ? bench_otlp_build(ga, &o) : NULL;
        if (!req || bench_otlp_pack(req, &body)) {
            fprintf(stderr, "floor: out of memory\n");
            return 1;
        }
        sp_arena_destroy(ga);
    }

    struct libdeflate_compressor *lc = libdeflate_alloc_compressor(1);
    struct sp_buf packed = {0}, gz = {0};
    if (!lc) {
        fprintf(stderr, "floor: cannot allocate a compressor\n");
        return 1;
    }
    int64_t st_ns[4] = {0, 0, 0, 0};
    size_t spans = 0, packed_len = 0, gz_len = 0;
    long done = 0;
    int64_t t_start = bench_mono_ns(), cpu_start = bench_cpu_ns();
    int64_t deadline = t_start + (int64_t)(seconds * 1e9);
    for (;;) {
        if (iters ? done >= iters : bench_mono_ns() >= deadline)
            break;
        int64_t t0 = bench_cpu_ns();
        if (collect & ST_DECODE)
            CALLGRIND_TOGGLE_COLLECT;
        struct sp_arena *a = sp_arena_create(0);
        ProtobufCAllocator pa;
        sp_arena_pb_allocator(a, &pa);
        sp_otlp_request *req = (sp_otlp_request *)protobuf_c_message_unpack(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            &pa, body.len, body.data);
        if (collect & ST_DECODE)
            CALLGRIND_TOGGLE_COLLECT;
        if (!req) {
            fprintf(stderr, "floor: the body does not decode as an ExportTraceServiceRequest\n");
            return 1;
        }
        int64_t t1 = bench_cpu_ns();
        if (collect & ST_MAP)
            CALLGRIND_TOGGLE_COLLECT;
        dd_payload *p = map_request(a, req, full);
        if (collect & ST_MAP)
            CALLGRIND_TOGGLE_COLLECT;
        if (!p) {
            fprintf(stderr, "floor: out of memory mapping\n");
            return 1;
        }
        int64_t t2 = bench_cpu_ns();
        if (collect & ST_PACK)
            CALLGRIND_TOGGLE_COLLECT;
        size_t need = datadog__trace__agent_payload__get_packed_size(p);
        packed.len = 0;
        if (sp_buf_reserve(&packed, need + 1)) {
            fprintf(stderr, "floor: out of memory packing\n");
            return 1;
        }
        packed.len = datadog__trace__agent_payload__pack(p, packed.data);
        if (collect & ST_PACK)
            CALLGRIND_TOGGLE_COLLECT;
        int64_t t3 = bench_cpu_ns();
        if (collect & ST_GZIP)
            CALLGRIND_TOGGLE_COLLECT;
        size_t bound = libdeflate_gzip_compress_bound(lc, packed.len);
        gz.len = 0;
        if (sp_buf_reserve(&gz, bound + 1)) {
            fprintf(stderr, "floor: out of memory compressing\n");
            return 1;
        }
        gz.len = libdeflate_gzip_compress(lc, packed.data, packed.len, gz.data, bound);
        if (collect & ST_GZIP)
            CALLGRIND_TOGGLE_COLLECT;
        int64_t t4 = bench_cpu_ns();
        size_t n = sp_traces_count_spans(req);
        if (collect & ST_DECODE)
            CALLGRIND_TOGGLE_COLLECT;
        sp_arena_destroy(a);
        if (collect & ST_DECODE)
            CALLGRIND_TOGGLE_COLLECT;
        st_ns[0] += t1 - t0 + (bench_cpu_ns() - t4);
        st_ns[1] += t2 - t1;
        st_ns[2] += t3 - t2;
        st_ns[3] += t4 - t3;
        spans += n;
        packed_len = packed.len;
        gz_len = gz.len;
        done++;
    }
    int64_t wall = bench_mono_ns() - t_start;
    int64_t cpu = bench_cpu_ns() - cpu_start;
    if (!spans || !gz_len) {
        fprintf(stderr, "floor: nothing measured\n");
        return 1;
    }
    double ns_span = (double)cpu / (double)spans;
    printf("RESULT floor mode=%s iters=%ld spans=%zu spans_per_s=%.0f ns_per_span=%.1f "
           "decode_ns=%.1f map_ns=%.1f pack_ns=%.1f gzip_ns=%.1f in_bytes=%zu "
           "packed_bytes=%zu gzip_bytes=%zu wall_s=%.2f\n",
           full ? "full" : "min", done, spans, 1e9 / ns_span, ns_span,
           (double)st_ns[0] / (double)spans, (double)st_ns[1] / (double)spans,
           (double)st_ns[2] / (double)spans, (double)st_ns[3] / (double)spans, body.len,
           packed_len, gz_len, (double)wall / 1e9);
    libdeflate_free_compressor(lc);
    sp_buf_free(&packed);
    sp_buf_free(&gz);
    sp_buf_free(&body);
    return 0;
}
