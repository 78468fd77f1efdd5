/* The join's hold (issue 18) through the real component on a real libuv
 * loop with real timers: profiles naming spans that are not known yet are
 * held until the spans arrive, given up when the ids stop showing in the
 * service's newer profiles (unsampled traces), released at max_hold, and
 * bounded by max_held_bytes.
 *
 * Timings are scaled down from production (join_delay 10 s, hold_grace
 * 30 s, max_hold 120 s) to 50-100 ms, 50-500 ms and 1-5 s so the file runs
 * in seconds: what the rule depends on is the ratio of a span's lateness to
 * those, which is kept or made harder (a root 15 x hold_grace after its
 * children, where 30 s after is 1 x in production). */
#include <inttypes.h>
#include <stdlib.h>

#include "sp_log.h"
#include "test_join_lib.h"

#define T0 1700000000000000000LL

static struct sp_batch *spans_of(const char *service, const struct jt_span *spans, size_t n)
{
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(b, service, NULL, n);
    for (size_t i = 0; i < n; i++)
        jt_traces_span(b, ss, &spans[i]);
    return b;
}

/* A CPU profile of service whose samples name the given span ids (hex),
 * `each` samples per id. */
static struct sp_batch *profile_of(const char *service, const char *const *ids, size_t n,
                                   size_t each)
{
    struct sp_batch *pb = jt_profile_new(service, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", n * each);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < each; k++) {
            char l[64];
            snprintf(l, sizeof l, "span_id=%s", ids[i]);
            jt_sample(p, pb->arena, 1, l, NULL);
        }
    pb->u.profile.attachments[0].pprof = p;
    return pb;
}

static void run_for(struct jt *t, uint64_t ms)
{
    uint64_t end = uv_now(&t->loop) + ms;
    while (uv_now(&t->loop) < end) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        usleep(2000);
        uv_update_time(&t->loop);
    }
}

static size_t count_endpoint(const struct sp_batch *b, const char *endpoint)
{
    const sp_pprof *q = b->u.profile.attachments[0].pprof;
    size_t n = 0;
    for (size_t i = 0; i < q->n_sample; i++) {
        const char *ep = jt_label_str(q, q->sample[i], "trace endpoint");
        n += ep && strcmp(ep, endpoint) == 0;
    }
    return n;
}

static double m_reason(const char *name, const char *reason)
{
    char l[128];
    snprintf(l, sizeof l, "component=\"join\",reason=\"%s\"", reason);
    return jt_metric(name, l);
}

/* Out of order: children before roots, the roots long after (15 x
 * join_delay), spans and profiles of two services interleaved. Nothing is
 * released until its own root arrives, and then at once. */
static void test_out_of_order_two_services(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 100ms\n    hold_grace: 100ms\n    max_hold: 5s\n"
                              "    span_ttl: 10s"), 0);
    static const struct jt_span a[] = {
        {0xA1, 0, 0x100, 2, "GET /a", T0, {"http.request.method=GET", "http.route=/a"}},
        {0xA2, 0xA1, 0x100, 1, "compute a", T0 + 5, {0}},
        {0xA3, 0xA2, 0x100, 1, "inner a", T0 + 6, {0}},
    };
    static const struct jt_span b[] = {
        {0xB1, 0, 0x100, 2, "GET /b", T0, {"http.request.method=GET", "http.route=/b"}},
        {0xB2, 0xB1, 0x100, 1, "compute b", T0 + 5, {0}},
    };
    const char *ids_a[] = {"00000000000000a3", "00000000000000a2", "00000000000000a1"};
    const char *ids_b[] = {"00000000000000b2"};
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc-a", ids_a, 3, 2)), 0);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc-b", ids_b, 1, 4)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0);
    /* The children (deepest first), both services in one batch. */
    struct sp_batch *kids = jt_traces_new();
    sp_otlp_scope_spans *sa = jt_traces_resource(kids, "svc-a", NULL, 2);
    sp_otlp_scope_spans *sb = jt_traces_resource(kids, "svc-b", NULL, 1);
    jt_traces_span(kids, sa, &a[2]);
    jt_traces_span(kids, sb, &b[1]);
    jt_traces_span(kids, sa, &a[1]);
    ASSERT_EQ_INT(jt_consume(&t, kids), 0);
    /* The roots come 15 x join_delay later: nothing leaves before. */
    run_for(&t, 1500);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0);
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles", "component=\"join\""), 2);
    ASSERT_EQ_INT(jt_consume(&t, spans_of("svc-b", b, 1)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);
    struct sp_batch *ob = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT_EQ_STR(ob->u.profile.service, "svc-b");
    ASSERT_EQ_INT(count_endpoint(ob, "GET /b"), 4);
    ASSERT_EQ_INT(jt_consume(&t, spans_of("svc-a", a, 1)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 2);
    struct sp_batch *oa = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT_EQ_STR(oa->u.profile.service, "svc-a");
    ASSERT_EQ_INT(count_endpoint(oa, "GET /a"), 6);
    const sp_pprof *q = oa->u.profile.attachments[0].pprof;
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "local root span id"), jt_u64(0xA1));
    ASSERT_EQ_INT(m_reason("spanprof_join_held_profiles_total", "resolved"), 2);
    ASSERT_EQ_INT(jt_metric("spanprof_join_labelled_samples_total",
                            "component=\"join\",when=\"after_hold\""), 10);
    ASSERT_EQ_INT(sp_histogram_count(sp_metric_find("spanprof_join_hold_seconds",
                                                    "component=\"join\"")), 2);
    jt_close(&t);
    jt_sink_clear();
}

/* A request longer than max_hold: its id keeps showing in the service's
 * newer profiles, so its first profile is released at max_hold, counted
 * expired; nothing is held forever. */
static void test_longer_than_max_hold(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 100ms\n    hold_grace: 100ms\n    max_hold: 1s\n"
                              "    span_ttl: 5s"), 0);
    const char *ids[] = {"00000000000000c1"};
    uint64_t t0 = uv_now(&t.loop);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", ids, 1, 3)), 0);
    uint64_t first_out = 0;
    for (int k = 1; k <= 8; k++) { /* a profile every 200 ms, the request still running */
        run_for(&t, 200);
        if (!first_out && jt_sink_count(SP_SIGNAL_PROFILES) > 0)
            first_out = uv_now(&t.loop);
        ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", ids, 1, 3)), 0);
    }
    ASSERT(first_out >= t0 + 1000);
    ASSERT(first_out < t0 + 1400);
    ASSERT(m_reason("spanprof_join_held_profiles_total", "expired") >= 3);
    ASSERT(m_reason("spanprof_join_unresolved_samples_total", "expired") >= 9);
    jt_wait_profiles(&t, 9, 3000);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 9);
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles", "component=\"join\""), 0);
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_bytes", "component=\"join\""), 0);
    jt_close(&t);
    jt_sink_clear();
}

/* Head sampling: a profile names a sampled request (its spans come later)
 * and unsampled ones (never exported). Once the service's next profile no
 * longer names the unsampled ids they are given up hold_grace (500 ms
 * here) later: the profile is not kept until max_hold, and only the sampled
 * share is labelled. */
static void test_unsampled_ids_given_up(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 100ms\n    hold_grace: 500ms\n    max_hold: 2s\n"
                              "    span_ttl: 10s"), 0);
    static const struct jt_span s[] = {
        {0xD1, 0, 0x100, 2, "GET /s", T0, {"http.request.method=GET", "http.route=/s"}},
    };
    const char *p1[] = {"00000000000000d1", "00000000000000e1", "00000000000000e2"};
    const char *p2[] = {"00000000000000d1", "00000000000000e3"};
    uint64_t t0 = uv_now(&t.loop);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", p1, 3, 2)), 0);
    run_for(&t, 200);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", p2, 2, 2)), 0); /* e1, e2 ended */
    run_for(&t, 50);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0);
    ASSERT_EQ_INT(jt_consume(&t, spans_of("svc", s, 1)), 0); /* the sampled request ends */
    jt_wait_profiles(&t, 1, 2000);
    uint64_t out1 = uv_now(&t.loop);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);
    ASSERT(out1 - t0 >= 650); /* 200 ms to the next profile + hold_grace */
    ASSERT(out1 - t0 < 1000); /* not max_hold */
    struct sp_batch *o = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT_EQ_INT(count_endpoint(o, "GET /s"), 2);
    ASSERT_EQ_INT(m_reason("spanprof_join_unresolved_samples_total", "never_exported"), 4);
    ASSERT_EQ_INT(m_reason("spanprof_join_held_profiles_total", "never_exported"), 1);
    /* The second profile's unsampled id: the service goes quiet (no newer
     * profile within its period + join_delay), so it is given up too. */
    jt_wait_profiles(&t, 2, 3000);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 2);
    ASSERT(uv_now(&t.loop) - t0 < 1900);
    ASSERT_EQ_INT(count_endpoint(jt_sink_last(SP_SIGNAL_PROFILES), "GET /s"), 2);
    ASSERT_EQ_INT(m_reason("spanprof_join_unresolved_samples_total", "never_exported"), 6);
    ASSERT_EQ_INT(m_reason("spanprof_join_held_profiles_total", "expired"), 0);
    jt_close(&t);
    jt_sink_clear();
}

/* A profile naming no span at all (e.g. a dd-trace upload, or idle time)
 * arrives while another of its stream is held: it passes at once, and the
 * hold's bookkeeping of "ids still showing" copes with an empty id list
 * (it once handed qsort a NULL base, caught by UBSan in the e2e test). */
static void test_profile_without_ids_while_holding(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 100ms\n    hold_grace: 500ms\n    max_hold: 2s\n"
                              "    span_ttl: 10s"), 0);
    const char *p1[] = {"00000000000000f1"};
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", p1, 1, 2)), 0);
    run_for(&t, 200);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", NULL, 0, 0)), 0);
    jt_wait_profiles(&t, 1, 2000);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);
    jt_wait_profiles(&t, 2, 3000); /* the held one, given up */
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 2);
    jt_close(&t);
    jt_sink_clear();
}

/* A parent's samples stop when its work moves to a child span, and its
 * span only comes when the request ends. The stream learns how late its
 * spans come after their ids stop showing and, when twice that is more
 * than hold_grace (200 ms here), waits that long: a first parent 150 ms
 * late teaches 300 ms, so later parents 250 ms late (beyond hold_grace)
 * keep their endpoint. */
static void test_learned_lateness(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 50ms\n    hold_grace: 200ms\n    max_hold: 20s\n"
                              "    span_ttl: 30s"), 0);
    for (int k = 0; k < 4; k++) {
        char root[17], kid[17];
        snprintf(root, sizeof root, "%016x", 0xF10 + k);
        snprintf(kid, sizeof kid, "%016x", 0xF20 + k);
        const char *a[] = {root};
        const char *b[] = {kid};
        ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", a, 1, 1)), 0);
        run_for(&t, 100);
        ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", b, 1, 1)), 0); /* root stopped showing */
        run_for(&t, k == 0 ? 150 : 250);
        const struct jt_span sp[] = {
            {0xF10 + (uint64_t)k, 0, 0x100, 2, "GET /l", T0, {"http.request.method=GET",
                                                              "http.route=/l"}},
            {0xF20 + (uint64_t)k, 0xF10 + (uint64_t)k, 0x100, 1, "child", T0 + 1, {0}},
        };
        ASSERT_EQ_INT(jt_consume(&t, spans_of("svc", sp, 2)), 0);
    }
    jt_wait_profiles(&t, 8, 2000);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 8);
    for (size_t i = 0; i < jt_sink_state.n; i++)
        if (jt_sink_state.got[i]->signal == SP_SIGNAL_PROFILES)
            ASSERT_EQ_INT(count_endpoint(jt_sink_state.got[i], "GET /l"), 1);
    ASSERT_EQ_INT(m_reason("spanprof_join_held_profiles_total", "resolved"), 8);
    /* An id that stops showing and never comes is given up twice the
     * learned lateness (~500 ms) after, not hold_grace after. */
    const char *u[] = {"00000000000000fe"};
    const char *v[] = {"00000000000000ff"};
    uint64_t t0 = uv_now(&t.loop);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", u, 1, 1)), 0);
    run_for(&t, 100);
    ASSERT_EQ_INT(jt_consume(&t, profile_of("svc", v, 1, 1)), 0);
    jt_wait_profiles(&t, 9, 3000);
    uint64_t dt = uv_now(&t.loop) - t0;
    printf("  unsampled id given up after %" PRIu64 " ms (hold_grace 200 ms, learned lateness "
           "~250 ms)\n", dt);
    ASSERT(dt >= 550);
    ASSERT(dt < 1200);
    jt_close(&t);
    jt_sink_clear();
}

/* A burst of large profiles beyond max_held_bytes: the held bytes never pass
 * the bound, the oldest are released early and counted, every profile
 * leaves. */
static void test_held_bytes_bound(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 1s\n    max_hold: 30s\n    span_ttl: 60s\n"
                              "    max_held_bytes: 1MiB"),
                  0);
    enum { PROFILES = 24, IDS = 4000 };
    uint64_t rnd = 0x9E3779B97F4A7C15ULL;
    double max_seen = 0;
    for (int k = 0; k < PROFILES; k++) {
        struct sp_batch *pb = jt_profile_new("burst", "cpu.pprof", true);
        sp_pprof *p = jt_pprof_new(pb->arena, "cpu", IDS);
        for (int i = 0; i < IDS; i++) {
            rnd ^= rnd << 13;
            rnd ^= rnd >> 7;
            rnd ^= rnd << 17;
            char l[64];
            snprintf(l, sizeof l, "span_id=%016" PRIx64, rnd | 1);
            jt_sample(p, pb->arena, 1, l, NULL);
        }
        pb->u.profile.attachments[0].pprof = p;
        ASSERT_EQ_INT(jt_consume(&t, pb), 0);
        double held = jt_metric("spanprof_join_held_bytes", "component=\"join\"");
        if (held > max_seen)
            max_seen = held;
    }
    ASSERT(max_seen > 0);
    ASSERT(max_seen <= 1024.0 * 1024.0);
    double bound = m_reason("spanprof_join_held_profiles_total", "bound_reached");
    ASSERT(bound >= 1);
    ASSERT_EQ_INT(m_reason("spanprof_join_unresolved_samples_total", "bound_reached"),
                  bound * IDS);
    ASSERT_EQ_INT((double)jt_sink_count(SP_SIGNAL_PROFILES), bound);
    double held_n = jt_metric("spanprof_join_held_profiles", "component=\"join\"");
    ASSERT_EQ_INT(held_n + bound, PROFILES);
    printf("  burst: %d profiles of %d ids, held at most %.0f KiB (bound 1024 KiB), %.0f released "
           "early\n",
           PROFILES, IDS, max_seen / 1024, bound);
    jt_close(&t); /* the rest leave at shutdown */
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), PROFILES);
    jt_sink_clear();
}

int main(void)
{
    sp_log_set_level(SP_LOG_ERROR);
    RUN(test_out_of_order_two_services);
    RUN(test_longer_than_max_hold);
    RUN(test_unsampled_ids_given_up);
    RUN(test_profile_without_ids_while_holding);
    RUN(test_learned_lateness);
    RUN(test_held_bytes_bound);
    return sp_test_summary();
}
