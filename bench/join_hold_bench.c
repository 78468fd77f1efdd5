/* join_hold_bench: what the join's hold costs per profile (issue 18),
 * through the real join component on a libuv loop (the unit tests'
 * harness, tests/unit/test_join_lib.h).
 *
 *   join_hold_bench [--seconds S] [--size BYTES]
 *
 * Each round builds a CPU profile of --size bytes (bench/pprof_gen.c: Go
 * shaped, span_id labels on 90 % of the samples naming 2,000 spans) as the
 * pprof receiver hands it over (decoded tree plus the gzip bytes received),
 * and a trace batch with those spans (roots with an endpoint). Two paths:
 *   arrival  the spans come first: the profile is labelled on arrival
 *   held     the profile comes first and is held (scan its ids, copy its
 *            bytes, drop the tree); the spans' arrival releases it (decode
 *            again, label)
 * Printed (CPU time of this thread, per profile): bytes the held profile
 * takes against the decoded profile the receiver built, the hold's own
 * cost (arrival + release minus the arrival path), the gzip re-encode the
 * exporter does after labelling (the same on both paths), and samples/s
 * through the join on both paths. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "pprof_gen.h"
#include "sp_log.h"
#include "test_join_lib.h"

#define SPANS 2000

static double opt_seconds = 2.0;
static size_t opt_size = 1u << 20;

static void ids_for(uint64_t round, uint64_t *ids)
{
    for (size_t i = 0; i < SPANS; i++)
        ids[i] = (round << 20) | (i + 1);
}

/* The profile as the pprof receiver hands it over. */
static struct sp_batch *profile_batch(const struct sp_buf *upload)
{
    struct sp_batch *b = jt_profile_new("bench", "cpu.pprof", true);
    struct sp_attachment *a = &b->u.profile.attachments[0];
    struct sp_err err = {0};
    a->data = sp_arena_memdup(b->arena, upload->data, upload->len);
    a->len = upload->len;
    a->compression = SP_COMPRESSION_GZIP;
    if (sp_pprof_decode(a->data, a->len, 256u << 20, b->arena, &a->pprof, NULL, &err) != 0)
        return NULL;
    return b;
}

static struct sp_batch *span_batch(const uint64_t *ids)
{
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(b, "bench", NULL, SPANS);
    for (size_t i = 0; i < SPANS; i++) {
        struct jt_span s = {ids[i], 0, 0x100, 2, "GET", 1700000000000000000LL + (int64_t)i,
                            {"http.request.method=GET", "http.route=/bench/{id}"}};
        jt_traces_span(b, ss, &s);
    }
    return b;
}

struct totals {
    int64_t arrival_ns, release_ns, spans_ns, encode_ns;
    size_t decoded_bytes, held_bytes, upload_bytes, samples;
    long rounds;
};

/* One round; held: profile first. */
static int round_once(struct jt *t, uint64_t round, bool held, struct totals *tt)
{
    uint64_t ids[SPANS];
    ids_for(round, ids);
    struct sp_arena *ga = sp_arena_create(0);
    sp_pprof *gen = bench_pprof_build(ga, opt_size, round, ids, SPANS);
    struct sp_buf upload = {0};
    struct sp_err err = {0};
    if (!gen || sp_pprof_encode(gen, SP_COMPRESSION_GZIP, &upload, &err) != 0)
        return -1;
    struct sp_batch *pb = profile_batch(&upload);
    struct sp_batch *sb = span_batch(ids);
    if (!pb || !sb)
        return -1;
    tt->decoded_bytes = sp_batch_bytes(pb);
    tt->upload_bytes = upload.len;
    tt->samples = pb->u.profile.attachments[0].pprof->n_sample;
    size_t before = jt_sink_count(SP_SIGNAL_PROFILES);
    int64_t t0, t1;
    if (held) {
        t0 = bench_cpu_ns();
        jt_consume(t, pb);
        t1 = bench_cpu_ns();
        tt->arrival_ns += t1 - t0;
        tt->held_bytes = (size_t)jt_metric("spanprof_join_held_bytes", "component=\"join\"");
        t0 = bench_cpu_ns();
        jt_consume(t, sb); /* indexes the spans and releases the profile */
        t1 = bench_cpu_ns();
        tt->release_ns += t1 - t0;
    } else {
        t0 = bench_cpu_ns();
        jt_consume(t, sb);
        t1 = bench_cpu_ns();
        tt->spans_ns += t1 - t0;
        t0 = bench_cpu_ns();
        jt_consume(t, pb);
        t1 = bench_cpu_ns();
        tt->arrival_ns += t1 - t0;
    }
    if (jt_sink_count(SP_SIGNAL_PROFILES) != before + 1)
        return -1;
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    struct sp_buf enc = {0};
    t0 = bench_cpu_ns();
    sp_pprof_encode(out->u.profile.attachments[0].pprof, SP_COMPRESSION_GZIP, &enc, &err);
    tt->encode_ns += bench_cpu_ns() - t0;
    sp_buf_free(&enc);
    sp_buf_free(&upload);
    sp_arena_destroy(ga);
    jt_sink_clear();
    tt->rounds++;
    return 0;
}

static int run(bool held, struct totals *tt)
{
    struct jt t;
    if (jt_open(&t, held ? "    join_delay: 10s\n    max_hold: 120s"
                         : "    join_delay: 10s\n    max_hold: 0s") < 0)
        return -1;
    memset(tt, 0, sizeof *tt);
    int64_t budget = (int64_t)(opt_seconds * 1e9), start = bench_cpu_ns();
    for (uint64_t r = 1; bench_cpu_ns() - start < budget || r <= 3; r++)
        if (round_once(&t, r + (held ? 1000 : 0), held, tt) < 0) {
            jt_close(&t);
            return -1;
        }
    jt_close(&t);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            opt_seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0)
            opt_size = (size_t)strtoull(argv[i + 1], NULL, 10);
    }
    sp_log_set_level(SP_LOG_ERROR);
    (void)sp_test_failed_now; /* the harness header's; no assertions here */
    struct totals a, h;
    if (run(false, &a) < 0 || run(true, &h) < 0) {
        printf("RESULT join_hold error=run\n");
        return 1;
    }
    double ka = 1e6 * (double)a.rounds, kh = 1e6 * (double)h.rounds;
    double arrival_ms = (double)a.arrival_ns / ka;
    double held_ms = (double)(h.arrival_ns + h.release_ns) / kh;
    /* The release round also indexes the spans: take the arrival path's
     * indexing time out. */
    double spans_ms = (double)a.spans_ns / ka;
    double hold_ms = held_ms - spans_ms - arrival_ms;
    printf("RESULT join_hold size=%zu upload_gzip_bytes=%zu samples=%zu decoded_bytes=%zu "
           "held_bytes=%zu arrival_label_ms=%.2f held_in_ms=%.2f held_release_ms=%.2f "
           "index_spans_ms=%.2f hold_cost_ms=%.2f encode_gzip_ms=%.2f "
           "samples_per_s_arrival=%.0f samples_per_s_held=%.0f rounds=%ld/%ld\n",
           opt_size, h.upload_bytes, h.samples, h.decoded_bytes, h.held_bytes, arrival_ms,
           (double)h.arrival_ns / kh, (double)h.release_ns / kh - spans_ms, spans_ms, hold_ms,
           (double)h.encode_ns / kh, (double)a.samples / (arrival_ms / 1e3),
           (double)h.samples / ((held_ms - spans_ms) / 1e3), a.rounds, h.rounds);
    return 0;
}
