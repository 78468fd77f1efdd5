/* codecs: each codec of the pipeline on its own, on one core.
 *
 *   codecs [--seconds S | --iters N] [--fixtures DIR] [--only NAME]
 *
 * With --iters N each case makes exactly N timed calls with callgrind
 * collection on around them only (valgrind --tool=callgrind
 * --collect-atstart=no), which gives instructions per call; --only runs
 * one case (exact name).
 * Inputs: the benchmark OTLP request (otlp_gen.h, 100 spans) as protobuf
 * and JSON, the Datadog payload spanprof makes of it, the real Go CPU
 * profile fixtures/go-cpu-spanid.pprof and a generated 1 MiB profile
 * (pprof_gen.h). Each case runs for S seconds (default 1) and prints
 *   RESULT codec name=<case> ns_per_op=.. mb_per_s=.. [spans_per_s=..] ..
 * with CPU time of this thread, MB/s over the input bytes of the case.
 *
 * Cases that need a codec another engineer has not landed yet are compiled
 * only when bench/meson.build finds its implementation (HAVE_* defines);
 * the baseline cases (raw protobuf-c with and without the arena, gzip
 * implementations) always run, so the table says what the codecs cost over
 * the library floor. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "bench_util.h"
#include "otlp_gen.h"
#include "pprof_gen.h"
#include "sp_arena.h"
#include "sp_compress.h"

#ifdef HAVE_OTLP_CODEC
#include "otlp_codec.h"
#endif
#ifdef HAVE_DD_PAYLOAD
#include "dd_payload.h"
#endif
#ifdef HAVE_PPROF_CODEC
#include "pprof_codec.h"
#endif

static double opt_seconds = 1.0;
static long opt_iters;    /* > 0: exactly this many timed calls per case (callgrind) */
static const char *opt_only;

struct input {
    struct sp_buf pb;      /* ExportTraceServiceRequest */
    struct sp_buf json;    /* the same as OTLP JSON */
    size_t spans;
    struct sp_buf dd;      /* packed AgentPayload (from spanprof's mapping if present) */
    struct sp_buf go_prof; /* fixture, gzipped as runtime/pprof writes it */
    struct sp_buf big_raw; /* generated profile, raw */
    struct sp_buf big_gz;  /* the same gzipped (level 1) */
};

static struct input in;

/* Runs fn until opt_seconds of CPU have passed (at least 3 calls);
 * returns CPU ns per call, or -1 when fn failed. */
static double run_case(int (*fn)(void *), void *ctx)
{
    if (fn(ctx))
        return -1; /* warm-up, and the failure check */
    if (opt_iters > 0) {
        /* Under callgrind --collect-atstart=no only these calls count. */
        int64_t t0 = bench_cpu_ns();
        CALLGRIND_TOGGLE_COLLECT;
        for (long i = 0; i < opt_iters; i++)
            if (fn(ctx))
                return -1;
        CALLGRIND_TOGGLE_COLLECT;
        return (double)(bench_cpu_ns() - t0) / (double)opt_iters;
    }
    int64_t c0 = bench_cpu_ns();
    int64_t budget = (int64_t)(opt_seconds * 1e9);
    long n = 0;
    int64_t el;
    do {
        if (fn(ctx))
            return -1;
        n++;
        el = bench_cpu_ns() - c0;
    } while (el < budget || n < 3);
    return (double)el / (double)n;
}

static int selected(const char *name)
{
    return !opt_only || strcmp(name, opt_only) == 0;
}

/* Whether any case whose name starts with prefix runs (skips the setup of
 * the others, which matters under callgrind). */
static int selected_prefix(const char *prefix)
{
    return !opt_only || strncmp(opt_only, prefix, strlen(prefix)) == 0;
}

static void report(const char *name, double ns, size_t bytes, size_t spans, const char *extra)
{
    if (ns < 0) {
        printf("RESULT codec name=%s error=failed\n", name);
        return;
    }
    printf("RESULT codec name=%s ns_per_op=%.0f mb_per_s=%.1f", name, ns,
           (double)bytes / ns * 1e9 / 1e6);
    if (spans)
        printf(" spans_per_s=%.0f ns_per_span=%.1f", (double)spans / ns * 1e9, ns / (double)spans);
    printf(" in_bytes=%zu%s%s\n", bytes, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

/* ---- OTLP decode ---- */

static int c_pb_arena(void *ctx)
{
    (void)ctx;
    struct sp_arena *a = sp_arena_create(0);
    ProtobufCAllocator pa;
    sp_arena_pb_allocator(a, &pa);
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor, &pa,
        in.pb.len, in.pb.data);
    sp_arena_destroy(a);
    return m ? 0 : -1;
}

static int c_pb_malloc(void *ctx)
{
    (void)ctx;
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor, NULL,
        in.pb.len, in.pb.data);
    if (!m)
        return -1;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

#ifdef HAVE_OTLP_CODEC
static size_t batch_bytes; /* arena bytes of the last decoded batch */

static int c_otlp_proto(void *ctx)
{
    (void)ctx;
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err;
    int rc = sp_otlp_decode_proto(a, in.pb.data, in.pb.len, &req, &err);
    batch_bytes = sp_arena_bytes(a);
    sp_arena_destroy(a);
    return rc;
}

/* The path sp_otlp_decode_proto took before the single-pass decoder: the
 * wire check, then protobuf_c_message_unpack() into an arena. */
static int c_otlp_reference(void *ctx)
{
    (void)ctx;
    struct sp_arena *a = sp_arena_create(0);
    ProtobufCMessage *m = NULL;
    struct sp_err err;
    int rc = sp_otlp_decode_msg(a, sp_otlp_request_desc(SP_SIGNAL_TRACES), SP_OTLP_PROTOBUF,
                                in.pb.data, in.pb.len, &m, &err);
    batch_bytes = sp_arena_bytes(a);
    sp_arena_destroy(a);
    return rc;
}

static int c_otlp_check(void *ctx)
{
    (void)ctx;
    struct sp_err err;
    return sp_otlp_pb_check(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        in.pb.data, in.pb.len, &err);
}

static int c_otlp_batch(void *ctx)
{
    enum sp_otlp_encoding enc = *(enum sp_otlp_encoding *)ctx;
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    if (!b)
        return -1;
    struct sp_otlp_decode_info info;
    struct sp_err err;
    const struct sp_buf *body = enc == SP_OTLP_JSON ? &in.json : &in.pb;
    int rc = sp_otlp_decode_traces(b, enc, body->data, body->len, &info, &err);
    if (rc)
        fprintf(stderr, "codecs: decode_traces: %s\n", err.msg);
    batch_bytes = sp_batch_bytes(b);
    sp_batch_unref(b);
    return rc;
}

#ifdef HAVE_OTLP_JSON
static int c_otlp_json(void *ctx)
{
    (void)ctx;
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = NULL;
    struct sp_err err;
    int rc = sp_otlp_decode_json(a, in.json.data, in.json.len, &req, &err);
    if (rc)
        fprintf(stderr, "codecs: decode_json: %s\n", err.msg);
    sp_arena_destroy(a);
    return rc;
}
#endif
#endif

/* ---- Datadog payload ---- */

#ifdef HAVE_DD_PAYLOAD
struct dd_ctx {
    struct sp_traces traces;
    Datadog__Trace__AgentPayload *payload;
    struct sp_buf out;
};

static int c_dd_map(void *ctx)
{
    struct dd_ctx *d = ctx;
    struct sp_arena *a = sp_arena_create(0);
    struct sp_dd_map_opts o = {.agent_version = "spanprof-bench"};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped = 0;
    struct sp_err err;
    int rc = sp_dd_map_traces(&d->traces, &o, a, &p, &dropped, &err);
    if (rc)
        fprintf(stderr, "codecs: dd_map: %s\n", err.msg);
    sp_arena_destroy(a);
    return rc;
}

static int c_dd_encode(void *ctx)
{
    struct dd_ctx *d = ctx;
    struct sp_err err;
    d->out.len = 0;
    return sp_dd_encode_agent_payload(d->payload, &d->out, &err);
}
#endif

static int c_dd_pack(void *ctx)
{
    const ProtobufCMessage *m = ctx;
    static struct sp_buf out;
    size_t n = protobuf_c_message_get_packed_size(m);
    out.len = 0;
    if (sp_buf_reserve(&out, n + 1))
        return -1;
    out.len = protobuf_c_message_pack(m, out.data);
    return 0;
}

/* ---- gzip implementations on the Datadog payload ---- */

struct gz_ctx {
    const struct sp_buf *src;
    struct libdeflate_compressor *lc;
    int level;
    struct sp_buf out;
};

static int c_gz_libdeflate_reused(void *ctx)
{
    struct gz_ctx *g = ctx;
    size_t bound = libdeflate_gzip_compress_bound(g->lc, g->src->len);
    g->out.len = 0;
    if (sp_buf_reserve(&g->out, bound + 1))
        return -1;
    g->out.len = libdeflate_gzip_compress(g->lc, g->src->data, g->src->len, g->out.data, bound);
    return g->out.len ? 0 : -1;
}

static int c_gz_sp_compress(void *ctx)
{
    struct gz_ctx *g = ctx;
    struct sp_err err;
    g->out.len = 0;
    return sp_compress(SP_COMPRESSION_GZIP, g->level, g->src->data, g->src->len, &g->out, &err);
}

static int c_gz_zlib(void *ctx)
{
    struct gz_ctx *g = ctx;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, g->level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t bound = deflateBound(&zs, (uLong)g->src->len);
    g->out.len = 0;
    if (sp_buf_reserve(&g->out, bound + 1)) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = g->src->data;
    zs.avail_in = (uInt)g->src->len;
    zs.next_out = g->out.data;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    g->out.len = bound - zs.avail_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

/* ---- pprof ---- */

#ifdef HAVE_PPROF_CODEC
struct pp_ctx {
    const struct sp_buf *src;
    sp_pprof *decoded;
    struct sp_arena *keep;
    struct sp_buf out;
};

static int c_pprof_decode(void *ctx)
{
    struct pp_ctx *p = ctx;
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *prof = NULL;
    struct sp_err err;
    int rc = sp_pprof_decode(p->src->data, p->src->len, 256u << 20, a, &prof, NULL, &err);
    if (rc)
        fprintf(stderr, "codecs: pprof_decode: %s\n", err.msg);
    sp_arena_destroy(a);
    return rc;
}

static int c_pprof_encode(void *ctx)
{
    struct pp_ctx *p = ctx;
    struct sp_err err;
    p->out.len = 0;
    return sp_pprof_encode(p->decoded, SP_COMPRESSION_GZIP, &p->out, &err);
}
#endif

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
    const char *fixtures = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            opt_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc)
            fixtures = argv[++i];
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            opt_iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            opt_only = argv[++i];
        else {
            fprintf(stderr, "usage: codecs [--seconds S | --iters N] [--fixtures DIR] [--only NAME]\n");
            return 2;
        }
    }

    struct sp_arena *ga = sp_arena_create(0);
    struct bench_otlp_opts o = {.spans = 100, .seed = 1};
    sp_otlp_request *req = ga ? bench_otlp_build(ga, &o) : NULL;
    if (!req || bench_otlp_pack(req, &in.pb) || bench_otlp_json(req, &in.json)) {
        fprintf(stderr, "codecs: out of memory\n");
        return 1;
    }
    in.spans = sp_traces_count_spans(req);
    char extra[256];
    (void)extra;

    if (selected("otlp_pb_protobuf_c_arena"))
        report("otlp_pb_protobuf_c_arena", run_case(c_pb_arena, NULL), in.pb.len, in.spans, NULL);
    if (selected("otlp_pb_protobuf_c_malloc"))
        report("otlp_pb_protobuf_c_malloc", run_case(c_pb_malloc, NULL), in.pb.len, in.spans, NULL);
#ifdef HAVE_OTLP_CODEC
    if (selected("otlp_pb_wire_check"))
        report("otlp_pb_wire_check", run_case(c_otlp_check, NULL), in.pb.len, in.spans, NULL);
    if (selected("otlp_pb_check_protobuf_c")) {
        double ns = run_case(c_otlp_reference, NULL);
        snprintf(extra, sizeof(extra), "arena_bytes=%zu", batch_bytes);
        report("otlp_pb_check_protobuf_c", ns, in.pb.len, in.spans, extra);
    }
    if (selected("otlp_pb_decode_proto")) {
        double ns = run_case(c_otlp_proto, NULL);
        snprintf(extra, sizeof(extra), "arena_bytes=%zu", batch_bytes);
        report("otlp_pb_decode_proto", ns, in.pb.len, in.spans, extra);
    }
    enum sp_otlp_encoding enc_pb = SP_OTLP_PROTOBUF, enc_js = SP_OTLP_JSON;
    if (selected("otlp_pb_decode_traces")) {
        double ns = run_case(c_otlp_batch, &enc_pb);
        snprintf(extra, sizeof(extra), "batch_bytes=%zu", batch_bytes);
        report("otlp_pb_decode_traces", ns, in.pb.len, in.spans, extra);
    }
#ifdef HAVE_OTLP_JSON
    if (selected("otlp_json_decode_json"))
        report("otlp_json_decode_json", run_case(c_otlp_json, NULL), in.json.len, in.spans, NULL);
    if (selected("otlp_json_decode_traces")) {
        double ns = run_case(c_otlp_batch, &enc_js);
        snprintf(extra, sizeof(extra), "batch_bytes=%zu", batch_bytes);
        report("otlp_json_decode_traces", ns, in.json.len, in.spans, extra);
    }
#else
    (void)enc_js;
    printf("skipped: codec otlp_json: model/otlp_json.c not in the build yet\n");
#endif
#else
    printf("skipped: codec otlp_pb_decode_proto/otlp_json: model/otlp_codec.c not in the build yet\n");
#endif

    /* The Datadog payload: spanprof's own mapping when it is there. */
    const ProtobufCMessage *dd_msg = NULL;
    int need_dd = selected_prefix("dd_") || selected_prefix("gzip");
#ifdef HAVE_DD_PAYLOAD
    struct dd_ctx dd = {{0}};
    dd.traces.req = req;
    dd.traces.span_count = in.spans;
    if (need_dd) {
        struct sp_dd_map_opts mo = {.agent_version = "spanprof-bench"};
        size_t dropped = 0;
        struct sp_err err;
        if (sp_dd_map_traces(&dd.traces, &mo, ga, &dd.payload, &dropped, &err) != 0) {
            fprintf(stderr, "codecs: sp_dd_map_traces: %s\n", err.msg);
            return 1;
        }
        dd_msg = &dd.payload->base;
    }
    if (selected("dd_map_traces"))
        report("dd_map_traces", run_case(c_dd_map, &dd), in.pb.len, in.spans, NULL);
    if (selected("dd_encode_agent_payload")) {
        double ns = run_case(c_dd_encode, &dd);
        snprintf(extra, sizeof(extra), "out_gzip_bytes=%zu", dd.out.len);
        report("dd_encode_agent_payload", ns, protobuf_c_message_get_packed_size(dd_msg), in.spans,
               extra);
    }
#else
    printf("skipped: codec dd_map_traces/dd_encode_agent_payload: model/dd_agent_payload.c not in the "
           "build yet\n");
#endif
    if (dd_msg) {
        size_t n = protobuf_c_message_get_packed_size(dd_msg);
        if (sp_buf_reserve(&in.dd, n + 1))
            return 1;
        in.dd.len = protobuf_c_message_pack(dd_msg, in.dd.data);
        if (selected("dd_pack_protobuf_c"))
            report("dd_pack_protobuf_c", run_case(c_dd_pack, (void *)dd_msg), in.dd.len, in.spans,
                   NULL);
    } else {
        /* no mapping yet: compress the OTLP body, the closest stand-in */
        sp_buf_append(&in.dd, in.pb.data, in.pb.len);
    }

    (void)need_dd;
    struct gz_ctx gz = {.src = &in.dd, .level = 1};
    gz.lc = libdeflate_alloc_compressor(1);
    if (selected("gzip1_libdeflate_reused")) {
        double ns = run_case(c_gz_libdeflate_reused, &gz);
        snprintf(extra, sizeof(extra), "out_bytes=%zu", gz.out.len);
        report("gzip1_libdeflate_reused", ns, in.dd.len, in.spans, extra);
    }
    if (selected("gzip1_sp_compress")) {
        double ns = run_case(c_gz_sp_compress, &gz);
        snprintf(extra, sizeof(extra), "out_bytes=%zu", gz.out.len);
        report("gzip1_sp_compress", ns, in.dd.len, in.spans, extra);
    }
    if (selected("gzip1_zlib")) {
        double ns = run_case(c_gz_zlib, &gz);
        snprintf(extra, sizeof(extra), "out_bytes=%zu", gz.out.len);
        report("gzip1_zlib", ns, in.dd.len, in.spans, extra);
    }
    /* The level choice (issue 11): libdeflate's other levels through
     * sp_compress, out_bytes against instructions/span. */
    for (int lv = 2; lv <= 9; lv++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "gzip%d_sp_compress", lv);
        if (lv == 5 || lv == 7 || lv == 8 || !selected(nm))
            continue;
        gz.level = lv;
        double ns = run_case(c_gz_sp_compress, &gz);
        snprintf(extra, sizeof(extra), "out_bytes=%zu", gz.out.len);
        report(nm, ns, in.dd.len, in.spans, extra);
    }
    gz.level = 6;
    if (selected("gzip6_zlib")) {
        double ns = run_case(c_gz_zlib, &gz);
        snprintf(extra, sizeof(extra), "out_bytes=%zu", gz.out.len);
        report("gzip6_zlib", ns, in.dd.len, in.spans, extra);
    }
    libdeflate_free_compressor(gz.lc);

#ifdef HAVE_PPROF_CODEC
    if (selected_prefix("pprof_")) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/go-cpu-spanid.pprof", fixtures ? fixtures : "tests/data/fixtures");
        struct pp_ctx pp = {0};
        if (read_file(path, &in.go_prof) == 0) {
            pp.src = &in.go_prof;
            pp.keep = sp_arena_create(0);
            struct sp_err err;
            if (sp_pprof_decode(in.go_prof.data, in.go_prof.len, 256u << 20, pp.keep, &pp.decoded,
                                NULL, &err) != 0) {
                printf("RESULT codec name=pprof_decode_go_fixture error=%s\n", "decode_failed");
            } else {
                snprintf(extra, sizeof(extra), "samples=%zu", pp.decoded->n_sample);
                if (selected("pprof_decode_go_fixture"))
                    report("pprof_decode_go_fixture", run_case(c_pprof_decode, &pp),
                           in.go_prof.len, 0, extra);
                if (selected("pprof_encode_go_fixture"))
                    report("pprof_encode_go_fixture", run_case(c_pprof_encode, &pp),
                           in.go_prof.len, 0, extra);
            }
            sp_arena_destroy(pp.keep);
            sp_buf_free(&pp.out);
        } else {
            printf("skipped: codec pprof_*_go_fixture: cannot read '%s': %s\n", path,
                   strerror(errno));
        }
        /* The generated 1 MiB profile. */
        struct pp_ctx big = {0};
        big.keep = sp_arena_create(0);
        if (!selected_prefix("pprof_encode_1mib") && !selected_prefix("pprof_decode_1mib"))
            goto pprof_done;
        big.decoded = bench_pprof_build(big.keep, 1u << 20, 3, NULL, 0);
        struct sp_err err;
        if (!big.decoded || sp_pprof_encode(big.decoded, SP_COMPRESSION_NONE, &in.big_raw, &err) ||
            sp_pprof_encode(big.decoded, SP_COMPRESSION_GZIP, &in.big_gz, &err)) {
            printf("RESULT codec name=pprof_1mib error=generate_failed\n");
        } else {
            big.src = &in.big_gz;
            snprintf(extra, sizeof(extra), "samples=%zu raw_bytes=%zu gzip_bytes=%zu",
                     big.decoded->n_sample, in.big_raw.len, in.big_gz.len);
            if (selected("pprof_decode_1mib_gzip"))
                report("pprof_decode_1mib_gzip", run_case(c_pprof_decode, &big), in.big_raw.len, 0,
                       extra);
            big.src = &in.big_raw;
            if (selected("pprof_decode_1mib_raw"))
                report("pprof_decode_1mib_raw", run_case(c_pprof_decode, &big), in.big_raw.len, 0,
                       extra);
            if (selected("pprof_encode_1mib_gzip"))
                report("pprof_encode_1mib_gzip", run_case(c_pprof_encode, &big), in.big_raw.len, 0,
                       extra);
        }
    pprof_done:
        sp_arena_destroy(big.keep);
        sp_buf_free(&big.out);
    }
#else
    (void)fixtures;
    (void)read_file;
    printf("skipped: codec pprof_*: model/pprof_codec.c not in the build yet\n");
#endif
    sp_arena_destroy(ga);
    return 0;
}
