/* stats_bench: the cost of APM stats per span and the memory per live key.
 *
 *   stats_bench [--iters N] [--keys K] [--per-key M]
 *
 * cost: the realistic 100-span request of otlp_gen, mapped by spanprof's own
 * Datadog mapping (sp_dd_map_traces), is fed span by span to the
 * concentrator (model/dd_stats.c) N times, the simulated clock advancing
 * 0.01 s per request (10k spans/s), with a flush after every request (as
 * the exporter's 1 s timer, more often): adds, sketch inserts, bucket
 * flushes, msgpack and gzip of every bucket, all included. Thread CPU
 * time per span, and under callgrind (--collect-atstart=no) only this loop
 * is counted, so instructions per span = total / (N * 100).
 *
 * memory: K keys (distinct resources of one server span), M spans each with
 * lognormal latencies around 2 ms, all in one bucket: the concentrator's own
 * count of its heap (keys, strings, sketch bins) per key, and the process's
 * heap growth (mallinfo2, malloc overhead included) per key.
 * Prints RESULT lines. */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dd_payload.h"
#include "dd_stats.h"
#include "otlp_gen.h"

#define SEC 1000000000LL

static uint64_t rng = 88172645463325252ull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static struct sp_dd_stats *mk(size_t max_keys, int64_t now)
{
    struct sp_dd_stats_conf c = {.max_keys = max_keys, .by_span_kind = true, .peer_tags = true,
                                 .agent_hostname = "bench", .agent_env = "bench",
                                 .agent_version = "spanprof-bench"};
    return sp_dd_stats_create(&c, now);
}

int main(int argc, char **argv)
{
    long iters = 2000, keys = 10000, per_key = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            keys = atol(argv[++i]);
        else if (strcmp(argv[i], "--per-key") == 0 && i + 1 < argc)
            per_key = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: stats_bench [--iters N] [--keys K] [--per-key M]\n");
            return 2;
        }
    }

    int64_t t0 = 1700000000LL * SEC;
    struct sp_arena *ga = sp_arena_create(0);
    struct bench_otlp_opts o = {.spans = 100, .seed = 1, .base_time_ns = t0};
    sp_otlp_request *req = ga ? bench_otlp_build(ga, &o) : NULL;
    struct sp_traces tr = {.req = req, .span_count = req ? sp_traces_count_spans(req) : 0};
    struct sp_dd_map_opts mo = {.agent_version = "spanprof-bench"};
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped = 0;
    struct sp_err err = {0};
    if (!req || sp_dd_map_traces(&tr, &mo, ga, &p, &dropped, &err) != 0) {
        fprintf(stderr, "stats_bench: cannot map the request: %s\n", err.msg);
        return 1;
    }
    /* every span, with the chunk origin and payload key the exporter passes */
    size_t n = 0;
    for (size_t t = 0; t < p->n_tracerpayloads; t++)
        for (size_t c = 0; c < p->tracerpayloads[t]->n_chunks; c++)
            n += p->tracerpayloads[t]->chunks[c]->n_spans;
    Datadog__Trace__Span **spans = calloc(n, sizeof(*spans));
    int64_t *start0 = calloc(n, sizeof(*start0));
    size_t k = 0;
    for (size_t t = 0; t < p->n_tracerpayloads; t++)
        for (size_t c = 0; c < p->tracerpayloads[t]->n_chunks; c++)
            for (size_t s = 0; s < p->tracerpayloads[t]->chunks[c]->n_spans; s++) {
                spans[k] = p->tracerpayloads[t]->chunks[c]->spans[s];
                start0[k] = spans[k]->start - t0;
                k++;
            }
    const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[0];
    struct sp_dd_stats_pkey pk = {.env = tp->env, .hostname = tp->hostname};

    /* ---- cost per span ---- */
    struct sp_dd_stats *cs = mk(100000, t0);
    size_t payloads = 0, bytes = 0, counted = 0;
    int64_t cpu0 = bench_cpu_ns();
    CALLGRIND_TOGGLE_COLLECT;
    for (long it = 0; it < iters; it++) {
        int64_t now = t0 + it * (SEC / 100);
        for (size_t i = 0; i < n; i++) {
            spans[i]->start = now + start0[i];
            counted += sp_dd_stats_add(cs, &pk, NULL, spans[i]) == 1;
        }
        struct sp_dd_stats_payload *out = NULL;
        size_t n_out = 0;
        sp_dd_stats_flush(cs, now, false, &out, &n_out, &err);
        for (size_t i = 0; i < n_out; i++)
            bytes += out[i].body.len;
        payloads += n_out;
        sp_dd_stats_payloads_free(out, n_out);
    }
    CALLGRIND_TOGGLE_COLLECT;
    int64_t cpu = bench_cpu_ns() - cpu0;
    struct sp_dd_stats_counts cc;
    sp_dd_stats_get_counts(cs, &cc);
    printf("RESULT stats_cost spans=%ld ns_per_span=%.1f counted=%zu keys_per_bucket=%llu "
           "payloads=%zu gzip_bytes_per_payload=%.0f\n",
           iters * (long)n, (double)cpu / (double)(iters * (long)n), counted,
           (unsigned long long)cc.last_bucket_keys, payloads,
           payloads ? (double)bytes / (double)payloads : 0.0);
    sp_dd_stats_destroy(cs);

    /* ---- memory per live key ---- */
    Datadog__Trace__Span *srv = NULL;
    for (size_t i = 0; i < n && !srv; i++)
        if (spans[i]->parentid == 0)
            srv = spans[i];
    if (!srv)
        srv = spans[0];
    Datadog__Trace__Span one = *srv;
    char res[64];
    one.resource = res;
    struct mallinfo2 m0 = mallinfo2();
    struct sp_dd_stats *ms = mk((size_t)keys, t0);
    for (long kk = 0; kk < keys; kk++) {
        snprintf(res, sizeof(res), "GET /api/v1/resource-%ld/{id}", kk);
        for (long j = 0; j < per_key; j++) {
            double z = sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
            one.start = t0 + SEC;
            one.duration = (int64_t)exp(log(2e6) + 0.8 * z);
            one.error = unif() < 0.05;
            sp_dd_stats_add(ms, &pk, NULL, &one);
        }
    }
    struct mallinfo2 m1 = mallinfo2();
    sp_dd_stats_get_counts(ms, &cc);
    printf("RESULT stats_memory keys=%llu spans_per_key=%ld bytes_per_key=%.0f "
           "heap_bytes_per_key=%.0f\n",
           (unsigned long long)cc.keys_live, per_key,
           (double)cc.bytes / (double)(cc.keys_live ? cc.keys_live : 1),
           (double)(m1.uordblks - m0.uordblks) / (double)(cc.keys_live ? cc.keys_live : 1));
    sp_dd_stats_destroy(ms);
    free(spans);
    free(start0);
    sp_arena_destroy(ga);
    return 0;
}
