/* The join processor through its vtable on a real libuv loop: the three
 * span-label dialects, already-labelled samples (dd-trace-js fixture),
 * local-root rules, PII rule, cardinality limit, hold/early/shutdown
 * timing, endpoint_counts, runtime ids, metrics, and a property test over
 * random span forests sent as OTLP batches in random order. */
#include <inttypes.h>
#include <math.h>
#include <unistd.h>

#include "dd_naming.h"
#include "multipart.h"
#include "sp_log.h"
#include "test_join_lib.h"

#define SVC "checkout"
#define T0 1700000000000000000LL /* span start times, ns */

/* root (server GET /users/{id}) <- child (internal) <- grandchild (client) */
static const struct jt_span tree1[] = {
    {0x1000000000000001ULL, 0, 0x100, 2, "GET", T0, {"http.request.method=GET",
                                                     "http.route=/users/{id}"}},
    {0x1000000000000002ULL, 0x1000000000000001ULL, 0x100, 1, "compute", T0 + 10, {0}},
    {0x1000000000000003ULL, 0x1000000000000002ULL, 0x100, 3, "GET", T0 + 20,
     {"http.request.method=GET"}},
};

static struct sp_batch *batch_of(const char *service, const struct jt_span *spans, size_t n)
{
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(b, service, NULL, n);
    for (size_t i = 0; i < n; i++)
        jt_traces_span(b, ss, &spans[i]);
    return b;
}

static void test_dialects(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 0s\n    max_hold: 0s\n    span_id_labels: [profile_id]"), 0);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_TRACES), 1);

    struct sp_batch *b = jt_profile_new(SVC, "cpu.pprof", true);
    struct sp_arena *a = b->arena;
    sp_pprof *p = jt_pprof_new(a, "cpu", 16);
    const char *gc = "1000000000000003", *dec = jt_u64(0x1000000000000002ULL);
    jt_sample(p, a, 10, "span_id=1000000000000003", "span_name=GET", NULL); /* OTel hex */
    jt_sample(p, a, 20, "span id=", NULL);                                  /* empty: no id */
    char decl[64], numl[64], extra[64];
    snprintf(decl, sizeof decl, "span id=%s", dec);
    jt_sample(p, a, 30, decl, NULL); /* Datadog decimal string */
    snprintf(numl, sizeof numl, "span id#%s", jt_u64(0x1000000000000001ULL));
    jt_sample(p, a, 40, numl, NULL); /* numeric label (dd-trace-js, libdatadog) */
    snprintf(extra, sizeof extra, "profile_id=%s", gc);
    jt_sample(p, a, 50, extra, NULL);                         /* configured extra key */
    jt_sample(p, a, 60, "span_id=00000000deadbeef", NULL);    /* unknown span */
    jt_sample(p, a, 70, "thread=main", NULL);                 /* no span label */
    char dd_span[64], dd_root[64];
    snprintf(dd_span, sizeof dd_span, "span id=%s", jt_u64(0x1000000000000003ULL));
    snprintf(dd_root, sizeof dd_root, "local root span id=%s", jt_u64(0x1000000000000001ULL));
    jt_sample(p, a, 80, "span_id=1000000000000003", dd_span, dd_root,
              "trace endpoint=GET /other", NULL); /* already labelled (values kept) */
    jt_sample(p, a, 90, "span_id=zz", NULL);                  /* bad hex */
    b->u.profile.attachments[0].pprof = p;
    /* A heap attachment carrying span_id labels is not touched. */
    sp_pprof *heap = jt_pprof_new(a, "alloc_space", 2);
    jt_sample(heap, a, 1, "span_id=1000000000000003", NULL);
    b->u.profile.attachments[1].name = "delta-heap.pprof";
    b->u.profile.attachments[1].pprof = heap;
    b->u.profile.attachments[1].labelled_type = false;
    b->u.profile.attachment_count = 2;
    size_t labels_before[16];
    for (size_t i = 0; i < p->n_sample; i++)
        labels_before[i] = p->sample[i]->n_label;
    Perftools__Profiles__Label *first_label_before = p->sample[7]->label[0];

    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT(out != NULL);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    ASSERT(out->u.profile.attachments[0].modified);
    ASSERT(!out->u.profile.attachments[1].modified);
    ASSERT_EQ_INT(out->u.profile.attachments[1].pprof->sample[0]->n_label, 1);
    const char *root = jt_u64(0x1000000000000001ULL);

    /* hex, decimal, numeric, extra: all resolve to the root. */
    size_t labelled[] = {0, 2, 3, 4};
    uint64_t span_of[] = {0x1000000000000003ULL, 0x1000000000000002ULL, 0x1000000000000001ULL,
                          0x1000000000000003ULL};
    for (size_t k = 0; k < 4; k++) {
        const Perftools__Profiles__Sample *s = q->sample[labelled[k]];
        ASSERT_EQ_STR(jt_label_str(q, s, "trace endpoint"), "GET /users/{id}");
        ASSERT_EQ_STR(jt_label_str(q, s, "local root span id"), root);
        ASSERT_EQ_INT(jt_label_count(q, s, "span id"), 1);
        ASSERT_EQ_INT(jt_label_count(q, s, "trace endpoint"), 1);
        ASSERT_EQ_INT(jt_label_count(q, s, "local root span id"), 1);
        if (s->label[0]->str) /* string dialects: the decimal value */
            ASSERT_EQ_STR(jt_label_str(q, s, "span id"), k == 1 ? dec : jt_u64(span_of[k]));
        /* Existing labels first, unchanged and in order. */
        ASSERT(s->n_label >= labels_before[labelled[k]]);
    }
    ASSERT_EQ_INT(q->sample[0]->n_label, 2 + 3);
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "span_name"), "GET");
    ASSERT_EQ_INT(q->sample[2]->n_label, 1 + 2); /* had `span id` already */
    ASSERT_EQ_INT(q->sample[3]->n_label, 1 + 2); /* numeric `span id` kept, not duplicated */
    ASSERT_EQ_INT(q->sample[3]->label[0]->num, (int64_t)0x1000000000000001ULL);
    /* untouched: empty id, unknown span, no label, bad hex */
    ASSERT_EQ_INT(q->sample[1]->n_label, labels_before[1]);
    ASSERT_EQ_INT(q->sample[5]->n_label, labels_before[5]);
    ASSERT_EQ_INT(q->sample[6]->n_label, labels_before[6]);
    ASSERT_EQ_INT(q->sample[8]->n_label, labels_before[8]);
    /* already labelled: left as it was, even though its values differ */
    ASSERT_EQ_INT(q->sample[7]->n_label, 4);
    ASSERT(q->sample[7]->label[0] == first_label_before);
    ASSERT_EQ_STR(jt_label_str(q, q->sample[7], "trace endpoint"), "GET /other");
    ASSERT_EQ_STR(jt_label_str(q, q->sample[7], "span id"), jt_u64(0x1000000000000003ULL));

    /* Outcomes: 5 matched (4 + already labelled), 1 unknown, 3 without a
     * usable span label. */
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"matched\""), 5);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"span_unknown\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"no_span_label\""), 3);
    double ratio = jt_metric("spanprof_join_hit_ratio", "component=\"join\"");
    ASSERT(ratio > 0.83 && ratio < 0.84);
    ASSERT_EQ_INT(jt_metric("spanprof_join_labels_added_total", "component=\"join\""),
                  3 + 2 + 2 + 3);
    /* The re-encoded profile is valid and decodes with the new labels. */
    struct sp_buf enc = {0};
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pprof_encode(q, SP_COMPRESSION_GZIP, &enc, &err), 0);
    struct sp_arena *a2 = sp_arena_create(0);
    sp_pprof *back = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(enc.data, enc.len, 1 << 24, a2, &back, NULL, &err), 0);
    ASSERT_EQ_STR(jt_label_str(back, back->sample[4], "trace endpoint"), "GET /users/{id}");
    sp_arena_destroy(a2);
    sp_buf_free(&enc);
    jt_close(&t);
    jt_sink_clear();
}

/* A second join over an already joined profile changes nothing. */
static void test_idempotent(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    struct sp_batch *b = jt_profile_new(SVC, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(b->arena, "cpu", 4);
    jt_sample(p, b->arena, 1, "span_id=1000000000000002", NULL);
    b->u.profile.attachments[0].pprof = p;
    sp_batch_ref(b);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    size_t n1 = p->sample[0]->n_label, s1 = p->n_string_table;
    b->u.profile.attachments[0].modified = false;
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    ASSERT_EQ_INT(p->sample[0]->n_label, n1);
    ASSERT_EQ_INT(p->n_string_table, s1);
    ASSERT(!b->u.profile.attachments[0].modified);
    jt_close(&t);
    jt_sink_clear();
}

/* dd-trace-js: numeric `span id` / `local root span id` labels; some
 * samples already carry `trace endpoint`, some do not. */
static void test_dd_trace_js_fixture(void)
{
    char path[512];
    sp_test_fixture(path, sizeof path, "dd-profile-upload.multipart");
    size_t len;
    unsigned char *body = sp_test_read_file(path, &len);
    ASSERT(body != NULL);
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);

    struct sp_batch *b = jt_profile_new("dd-profile-app", "wall.pprof", true);
    struct sp_multipart_part *parts;
    size_t nparts;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_multipart_parse(body, len, "22617a2eef51a8ff", NULL, b->arena, &parts,
                                     &nparts, &err), 0);
    const struct sp_multipart_part *wall = sp_multipart_find(parts, nparts, "wall.pprof");
    const struct sp_multipart_part *ev = sp_multipart_find(parts, nparts, "event");
    ASSERT(wall && ev);
    sp_pprof *p = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(wall->data, wall->len, 1 << 26, b->arena, &p, NULL, &err), 0);
    b->u.profile.attachments[0].pprof = p;
    b->u.profile.event_json = (const char *)ev->data;
    b->u.profile.event_json_len = ev->len;
    b->u.profile.runtime_id = "71db257c-af7b-4285-9280-cbc8b403ecae";

    /* Index a SERVER root for every local root id the profile names. */
    int64_t k_lr = -1, k_span = -1, k_ep = -1;
    for (size_t i = 0; i < p->n_string_table; i++) {
        if (strcmp(p->string_table[i], "local root span id") == 0)
            k_lr = (int64_t)i;
        if (strcmp(p->string_table[i], "span id") == 0)
            k_span = (int64_t)i;
        if (strcmp(p->string_table[i], "trace endpoint") == 0)
            k_ep = (int64_t)i;
    }
    ASSERT(k_lr > 0 && k_span > 0 && k_ep > 0);
    struct sp_batch *tb = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(tb, "dd-profile-app", NULL, p->n_sample);
    size_t with_root = 0, with_ep = 0, numeric = 0;
    size_t *nl_before = calloc(p->n_sample, sizeof *nl_before);
    uint64_t *seen = calloc(p->n_sample, sizeof *seen);
    size_t nseen = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        nl_before[i] = s->n_label;
        bool has_ep = false, has_span = false;
        uint64_t lr = 0;
        for (size_t l = 0; l < s->n_label; l++) {
            has_span |= s->label[l]->key == k_span;
            if (s->label[l]->key == k_lr) {
                lr = (uint64_t)s->label[l]->num;
                numeric += s->label[l]->str == 0;
            }
            has_ep |= s->label[l]->key == k_ep;
        }
        if (!lr || !has_span)
            continue;
        with_ep += has_ep;
        with_root++;
        bool dup = false;
        for (size_t k = 0; k < nseen; k++)
            dup |= seen[k] == lr;
        if (dup)
            continue;
        seen[nseen++] = lr;
        struct jt_span js = {lr, 0, 0x100, 2, "GET", T0, {"http.request.method=GET",
                                                          "http.route=/api/fast"}};
        jt_traces_span(tb, ss, &js);
    }
    ASSERT(with_root > 10);
    ASSERT_EQ_INT(numeric, with_root);
    ASSERT(with_ep > 0 && with_ep < with_root);
    ASSERT_EQ_INT(jt_consume(&t, tb), 0);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT(out != NULL);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    size_t added_ep = 0;
    for (size_t i = 0; i < q->n_sample; i++) {
        const Perftools__Profiles__Sample *s = q->sample[i];
        /* Never a second `span id` or `local root span id`; at most one endpoint. */
        ASSERT(jt_label_count(q, s, "span id") <= 1);
        ASSERT(jt_label_count(q, s, "local root span id") <= 1);
        ASSERT(jt_label_count(q, s, "trace endpoint") <= 1);
        if (s->n_label > nl_before[i]) {
            ASSERT_EQ_INT(s->n_label, nl_before[i] + 1);
            ASSERT_EQ_STR(jt_label_str(q, s, "trace endpoint"), "GET /api/fast");
            added_ep++;
        }
    }
    /* Samples with a root but no endpoint got one; the others kept "GET". */
    ASSERT_EQ_INT(added_ep, with_root - with_ep);
    size_t kept_get = 0;
    for (size_t i = 0; i < q->n_sample; i++) {
        const char *ep = jt_label_str(q, q->sample[i], "trace endpoint");
        kept_get += ep && strcmp(ep, "GET") == 0;
    }
    ASSERT_EQ_INT(kept_get, with_ep);
    /* endpoint_counts: the upload's {"GET": 291} kept; ours added. */
    const struct sp_profile *op = &out->u.profile;
    bool get = false;
    for (size_t i = 0; i < op->endpoint_count_count; i++)
        if (strcmp(op->endpoint_counts[i].endpoint, "GET") == 0)
            get = op->endpoint_counts[i].count == 291;
    ASSERT(get);
    ASSERT_EQ_STR(op->runtime_id, "71db257c-af7b-4285-9280-cbc8b403ecae");
    free(nl_before);
    free(seen);
    free(body);
    jt_close(&t);
    jt_sink_clear();
}

/* Local root rules: remote parent flags, flagless SERVER, service change
 * within a batch, missing parent, PII rule, cardinality limit. */
static void test_root_rules(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 0s\n    max_hold: 0s\n    endpoint_cardinality_limit: 3"), 0);
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *front = jt_traces_resource(b, "front", NULL, 16);
    sp_otlp_scope_spans *back = jt_traces_resource(b, "back", NULL, 16);
    struct jt_span spans[] = {
        /* 0: remote parent (0x300) server root */
        {0xA1, 0xFFFF01, 0x300, 2, "s", T0, {"http.request.method=POST", "http.route=/pay"}},
        {0xA2, 0xA1, 0x100, 1, "work", T0 + 1, {0}},
        /* flags say local parent even though SERVER: not a root */
        {0xA3, 0xA2, 0x100, 2, "inner", T0 + 2, {"http.request.method=GET", "http.route=/x"}},
        /* flagless: a SERVER span with a parent is a root */
        {0xB1, 0xFFFF02, 0, 2, "s", T0, {"http.request.method=GET", "http.route=/legacy"}},
        {0xB2, 0xB1, 0, 1, "work", T0, {0}},
        /* flagless INTERNAL whose parent is in another service (below): root */
        {0xC1, 0xD1, 0, 1, "job", T0, {0}},
        /* local parent missing: root unknown */
        {0xE2, 0xE1, 0x100, 1, "orphan", T0, {0}},
        /* CLIENT root with db.system: type sql, not PII-safe */
        {0xF1, 0, 0x100, 3, "query", T0, {"db.system=postgresql", "db.statement=SELECT 1"}},
        {0xF2, 0xF1, 0x100, 1, "decode", T0, {0}},
        /* INTERNAL root: type custom, endpoint = span name */
        {0x91, 0, 0x100, 1, "nightly-report", T0, {0}},
        /* over the cardinality limit of 3 for "front" */
        {0x81, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/fourth"}},
    };
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
        jt_traces_span(b, i == 5 ? back : front, &spans[i]);
    struct jt_span d1 = {0xD1, 0, 0x100, 3, "call", T0, {"http.request.method=GET"}};
    jt_traces_span(b, front, &d1); /* front's client span calling back */
    ASSERT_EQ_INT(jt_consume(&t, b), 0);

    struct sp_batch *pb = jt_profile_new(NULL, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", 16);
    const uint64_t ids[] = {0xA3, 0xB2, 0xC1, 0xE2, 0xF2, 0x91, 0x81};
    for (size_t i = 0; i < 7; i++) {
        char l[64];
        snprintf(l, sizeof l, "span_id=%016" PRIx64, ids[i]);
        jt_sample(p, pb->arena, 1, l, NULL);
    }
    pb->u.profile.attachments[0].pprof = p;
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT(out != NULL);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "trace endpoint"), "POST /pay");
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "local root span id"), jt_u64(0xA1));
    ASSERT_EQ_STR(jt_label_str(q, q->sample[1], "trace endpoint"), "GET /legacy");
    ASSERT_EQ_STR(jt_label_str(q, q->sample[1], "local root span id"), jt_u64(0xB1));
    ASSERT_EQ_STR(jt_label_str(q, q->sample[2], "trace endpoint"), "job");
    ASSERT_EQ_STR(jt_label_str(q, q->sample[2], "local root span id"), jt_u64(0xC1));
    /* orphan: only `span id` */
    ASSERT_EQ_STR(jt_label_str(q, q->sample[3], "span id"), jt_u64(0xE2));
    ASSERT(jt_label_str(q, q->sample[3], "local root span id") == NULL);
    ASSERT(jt_label_str(q, q->sample[3], "trace endpoint") == NULL);
    /* sql root: ids but no endpoint */
    ASSERT_EQ_STR(jt_label_str(q, q->sample[4], "local root span id"), jt_u64(0xF1));
    ASSERT(jt_label_str(q, q->sample[4], "trace endpoint") == NULL);
    ASSERT_EQ_STR(jt_label_str(q, q->sample[5], "trace endpoint"), "nightly-report");
    /* fourth distinct endpoint of "front": dropped by the limit */
    ASSERT_EQ_STR(jt_label_str(q, q->sample[6], "local root span id"), jt_u64(0x81));
    ASSERT(jt_label_str(q, q->sample[6], "trace endpoint") == NULL);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"not_pii_safe\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"root_unknown\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"endpoint_dropped\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_endpoint_cardinality_drops_total",
                            "component=\"join\""), 1);
    jt_close(&t);
    jt_sink_clear();
}

static struct sp_batch *simple_profile_of(const char *service, const char *span_hex)
{
    struct sp_batch *pb = jt_profile_new(service, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", 2);
    char l[64];
    snprintf(l, sizeof l, "span_id=%s", span_hex);
    jt_sample(p, pb->arena, 1, l, NULL);
    pb->u.profile.attachments[0].pprof = p;
    return pb;
}

static struct sp_batch *simple_profile(const char *span_hex)
{
    return simple_profile_of(SVC, span_hex);
}

/* A profile naming spans not known yet is held; the spans' arrival
 * releases it at once (not at a deadline). */
static void test_hold_then_label(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 5s"), 0);
    struct sp_batch *pb = jt_profile_new(SVC, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", 2);
    jt_sample(p, pb->arena, 1, "span_id=1000000000000003", NULL);
    pb->u.profile.attachments[0].pprof = p;
    uint64_t t0 = uv_now(&t.loop);
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0); /* held */
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles", "component=\"join\""), 1);
    ASSERT(jt_metric("spanprof_join_held_bytes", "component=\"join\"") > 0);
    /* The spans arrive after the profile: it goes on within this call. */
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);
    ASSERT(uv_now(&t.loop) - t0 < 1000);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "trace endpoint"), "GET /users/{id}");
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles", "component=\"join\""), 0);
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles_total",
                            "component=\"join\",reason=\"resolved\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_labelled_samples_total",
                            "component=\"join\",when=\"after_hold\""), 1);
    /* A profile whose spans are known goes on at arrival. */
    ASSERT_EQ_INT(jt_consume(&t, simple_profile_of(SVC, "1000000000000002")), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 2);
    ASSERT_EQ_INT(jt_metric("spanprof_join_labelled_samples_total",
                            "component=\"join\",when=\"arrival\""), 1);
    /* A heap-only profile is not held. */
    struct sp_batch *hb = jt_profile_new(SVC, "heap.pprof", false);
    hb->u.profile.attachments[0].pprof = jt_pprof_new(hb->arena, "alloc_space", 1);
    ASSERT_EQ_INT(jt_consume(&t, hb), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 3);
    jt_close(&t);
    jt_sink_clear();
}

/* Bounded hold: the oldest is released early (counted); shutdown flushes
 * the rest, labelled with what is known by then. */
static void test_pending_bound_and_shutdown(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 60s\n    max_held_profiles: 2"), 0);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("1000000000000001")), 0);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("1000000000000002")), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 0);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("1000000000000003")), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1); /* the first, early */
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles_total",
                            "component=\"join\",reason=\"bound_reached\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_unresolved_samples_total",
                            "component=\"join\",reason=\"bound_reached\""), 1);
    sp_pprof *q = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.attachments[0].pprof;
    ASSERT(jt_label_str(q, q->sample[0], "trace endpoint") == NULL);
    /* The roots' children arrive, the roots do not: still held. */
    const struct jt_span kids[] = {tree1[1], tree1[2]};
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, kids, 2)), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 1)), 0); /* the root: both go */
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 3);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("2000000000000001")), 0);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("2000000000000002")), 0);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 3);
    /* Shutdown: both held profiles are joined and passed on, at once. */
    uint64_t before = uv_now(&t.loop);
    sp_join_processor_type.shutdown(&t.comp, jt_on_done);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 5);
    while (!t.done)
        uv_run(&t.loop, UV_RUN_ONCE);
    ASSERT(uv_now(&t.loop) - before < 1000);
    q = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.attachments[0].pprof;
    ASSERT(jt_label_str(q, q->sample[0], "trace endpoint") == NULL);
    ASSERT_EQ_INT(jt_metric("spanprof_join_held_profiles_total",
                            "component=\"join\",reason=\"shutdown\""), 2);
    /* A second shutdown is answered at once. */
    t.done = false;
    sp_join_processor_type.shutdown(&t.comp, jt_on_done);
    ASSERT(t.done);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    sp_join_processor_type.destroy(&t.comp);
    uv_loop_close(&t.loop);
    sp_service_conf_free(t.conf);
    unlink(t.path);
    jt_sink_clear();
}

/* Trace batches pass through; a refusal (full exporter) propagates. */
static void test_traces_pass_and_backpressure(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    struct sp_batch *b = batch_of(SVC, tree1, 3);
    sp_otlp_request *req = b->u.traces.req;
    sp_batch_ref(b);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    ASSERT(jt_sink_last(SP_SIGNAL_TRACES) == b);
    ASSERT(b->u.traces.req == req);
    ASSERT_EQ_INT(req->resource_spans[0]->scope_spans[0]->n_spans, 3);
    sp_batch_unref(b);
    jt_sink_state.refuse = 1;
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), SP_EFULL);
    jt_sink_state.refuse = 0;
    ASSERT_EQ_INT(jt_metric("spanprof_join_spans_indexed_total", "component=\"join\""), 6);
    ASSERT_EQ_INT(jt_metric("spanprof_join_index_spans", "component=\"join\""), 3);
    jt_close(&t);
    jt_sink_clear();
}

/* Which roots get an endpoint: dd-trace-go's rule (ddtrace/tracer/tracer.go,
 * applyPPROFLabels / spanResourcePIISafe: web, rpc or untyped) by default,
 * today's wider rule with label_all_roots. Labels and endpoint_counts agree. */
static void run_endpoint_rule(bool all_roots)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, all_roots ? "    join_delay: 0s\n    label_all_roots: true"
                                        : "    join_delay: 0s"), 0);
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(b, SVC, NULL, 16);
    struct jt_span r[] = {
        {0x31, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/ok"}},
        {0x32, 0, 0x100, 1, "nightly-report", T0 + 1, {0}},
        /* INTERNAL root whose resource is its SQL statement (PII) */
        {0x33, 0, 0x100, 1, "q", T0 + 2,
         {"db.system=postgresql", "db.statement=SELECT * FROM users WHERE email='a@b.c'"}},
        {0x34, 0xFFFF34, 0x300, 5, "c", T0 + 3, {"messaging.operation=process"}},
        {0x35, 0, 0x100, 4, "emit", T0 + 4, {0}},
        /* an INTERNAL root typed explicitly: no longer untyped */
        {0x36, 0, 0x100, 1, "typed", T0 + 5, {"span.type=worker"}},
        {0x37, 0, 0x100, 1, "rpc-typed", T0 + 6, {"span.type=rpc"}},
    };
    size_t n = sizeof r / sizeof r[0];
    for (size_t i = 0; i < n; i++)
        jt_traces_span(b, ss, &r[i]);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    struct sp_batch *pb = jt_profile_new(SVC, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", 16);
    for (size_t i = 0; i < n; i++) {
        char l[64];
        snprintf(l, sizeof l, "span_id=%016" PRIx64, r[i].id);
        jt_sample(p, pb->arena, 1, l, NULL);
    }
    pb->u.profile.attachments[0].pprof = p;
    pb->u.profile.start_ns = T0 - 1000;
    pb->u.profile.end_ns = T0 + 1000000000;
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT(out != NULL);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    const char *sql = "SELECT * FROM users WHERE email='a@b.c'";
    const char *want[] = {"GET /ok", "nightly-report", all_roots ? sql : NULL,
                          all_roots ? "process" : NULL, all_roots ? "emit" : NULL,
                          NULL, "rpc-typed"};
    for (size_t i = 0; i < n; i++) {
        const char *got = jt_label_str(q, q->sample[i], "trace endpoint");
        if (want[i])
            ASSERT_EQ_STR(got, want[i]);
        else if (got)
            SP_TEST_FAIL("root %zx got endpoint \"%s\"", (size_t)r[i].id, got);
        /* Every root still gets its ids (Code Hotspots). */
        ASSERT_EQ_STR(jt_label_str(q, q->sample[i], "local root span id"), jt_u64(r[i].id));
    }
    const struct sp_profile *op = &out->u.profile;
    size_t counted = 0;
    for (size_t i = 0; i < op->endpoint_count_count; i++) {
        const char *ep = op->endpoint_counts[i].endpoint;
        bool known = false;
        for (size_t k = 0; k < n; k++)
            known |= want[k] && strcmp(ep, want[k]) == 0;
        if (!known)
            SP_TEST_FAIL("endpoint_counts has \"%s\"", ep);
        ASSERT_EQ_INT(op->endpoint_counts[i].count, 1);
        counted++;
    }
    ASSERT_EQ_INT(counted, all_roots ? 6 : 3);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"not_pii_safe\""), all_roots ? 1 : 4);
    jt_close(&t);
    jt_sink_clear();
}

static void test_endpoint_rule_dd_trace_go(void)
{
    run_endpoint_rule(false);
}

static void test_endpoint_rule_label_all_roots(void)
{
    run_endpoint_rule(true);
}

/* Samples a Datadog tracer labelled itself (its spans never reach the
 * join) are counted as already_labelled, not as misses, and stay out of
 * the hit ratio. */
static void test_already_labelled(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    struct sp_batch *pb = jt_profile_new(SVC, "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", 8);
    jt_sample(p, pb->arena, 1, "span id=7001", "local root span id=7000", "trace endpoint=GET /x",
              NULL);
    jt_sample(p, pb->arena, 1, "span id#7002", "local root span id#7000", NULL);
    jt_sample(p, pb->arena, 1, "span_id=00000000000000ab", NULL); /* a real miss */
    jt_sample(p, pb->arena, 1, "span_id=1000000000000003", NULL); /* matched */
    pb->u.profile.attachments[0].pprof = p;
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"already_labelled\""), 2);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"span_unknown\""), 1);
    ASSERT_EQ_INT(jt_metric("spanprof_join_samples_total",
                            "component=\"join\",outcome=\"matched\""), 1);
    ASSERT(fabs(jt_metric("spanprof_join_hit_ratio", "component=\"join\"") - 0.5) < 1e-9);
    sp_pprof *q = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.attachments[0].pprof;
    ASSERT_EQ_INT(q->sample[0]->n_label, 3); /* untouched */
    jt_close(&t);
    jt_sink_clear();
}

/* A scraped profile without `service:` (the target host stands in) takes
 * its spans' service: service tag, runtime id, endpoint_counts and the
 * spans' runtime ids line up; the target remembers it for profiles that
 * join nothing; an explicit service wins; a target that joins nothing keeps
 * its host. */
static struct sp_batch *scraped(const char *host, const char *target, const char *span_hex,
                                bool labelled)
{
    struct sp_batch *pb = jt_profile_new(host, labelled ? "cpu.pprof" : "heap.pprof", labelled);
    sp_pprof *p = jt_pprof_new(pb->arena, labelled ? "cpu" : "alloc_space", 4);
    if (span_hex) {
        char l[64];
        snprintf(l, sizeof l, "span_id=%s", span_hex);
        jt_sample(p, pb->arena, 1, l, NULL);
        jt_sample(p, pb->arena, 1, l, NULL);
    }
    pb->u.profile.attachments[0].pprof = p;
    pb->u.profile.service_fallback = target ? sp_arena_strdup(pb->arena, target) : NULL;
    pb->u.profile.start_ns = T0 - 1000;
    pb->u.profile.end_ns = T0 + 1000000000;
    return pb;
}

/* Runs with stderr (the log) going to a file; returns what was logged
 * (static buffer). */
static char logged[8192];
static int log_fd = -1, saved_stderr = -1;
static char log_path[64];

static void log_capture_begin(void)
{
    fflush(stderr);
    snprintf(log_path, sizeof log_path, "/tmp/test-join-log-XXXXXX");
    log_fd = mkstemp(log_path);
    saved_stderr = dup(2);
    dup2(log_fd, 2);
}

static const char *log_capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    ssize_t n = pread(log_fd, logged, sizeof logged - 1, 0);
    logged[n > 0 ? n : 0] = 0;
    close(log_fd);
    unlink(log_path);
    return logged;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_service_from_spans(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    struct jt_span other[] = {{0x2000000000000001ULL, 0, 0x100, 2, "GET", T0,
                               {"http.request.method=GET", "http.route=/o"}}};
    ASSERT_EQ_INT(jt_consume(&t, batch_of("other", other, 1)), 0);

    /* Heap first: nothing learned yet, the stand-in stays, no warning. */
    ASSERT_EQ_INT(jt_consume(&t, scraped("127.0.0.1", "http://127.0.0.1:6060", NULL, false)), 0);
    ASSERT_EQ_STR(jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.service, "127.0.0.1");

    /* CPU: two samples under checkout's root, one under other's; a debug
     * line names both. */
    struct sp_batch *pb = scraped("127.0.0.1", "http://127.0.0.1:6060", "1000000000000003", true);
    sp_pprof *pp = pb->u.profile.attachments[0].pprof;
    jt_sample(pp, pb->arena, 1, "span_id=2000000000000001", NULL);
    sp_log_set_level(SP_LOG_DEBUG);
    log_capture_begin();
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    const char *dbg = log_capture_end();
    sp_log_set_level(SP_LOG_INFO);
    ASSERT_CONTAINS(dbg, "samples joined spans of 2 services; taking 'checkout'");
    ASSERT_CONTAINS(dbg, "other=1");
    const struct sp_profile *op = &jt_sink_last(SP_SIGNAL_PROFILES)->u.profile;
    ASSERT_EQ_STR(op->service, SVC);
    ASSERT(op->runtime_id != NULL);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", op->runtime_id);
    ASSERT_EQ_INT(op->endpoint_count_count, 1);
    ASSERT_EQ_STR(op->endpoint_counts[0].endpoint, "GET /users/{id}");
    ASSERT_EQ_INT(op->endpoint_counts[0].count, 1);

    /* The next spans of checkout carry that runtime id. */
    struct sp_batch *tb = batch_of(SVC, tree1, 3);
    ASSERT_EQ_INT(sp_join_processor_type.consume(&t.comp, tb), 0);
    ASSERT_EQ_INT(tb->u.traces.runtime_id_count, 1);
    ASSERT_EQ_STR(tb->u.traces.runtime_ids[0].service, SVC);
    ASSERT_EQ_STR(tb->u.traces.runtime_ids[0].runtime_id, rid);
    sp_batch_unref(tb);

    /* Heap of the same target now goes out under the learned service. */
    ASSERT_EQ_INT(jt_consume(&t, scraped("127.0.0.1", "http://127.0.0.1:6060", NULL, false)), 0);
    op = &jt_sink_last(SP_SIGNAL_PROFILES)->u.profile;
    ASSERT_EQ_STR(op->service, SVC);
    ASSERT_EQ_STR(op->runtime_id, rid);

    /* An explicit service wins. */
    struct sp_batch *eb = scraped("explicit", NULL, "1000000000000003", true);
    ASSERT_EQ_INT(jt_consume(&t, eb), 0);
    ASSERT_EQ_STR(jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.service, "explicit");

    /* Another target whose samples join nothing keeps its host; one
     * warning for it, naming the fix. */
    log_capture_begin();
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(jt_consume(&t, scraped("127.0.0.2", "http://127.0.0.2:6060",
                                             "00000000000000ff", true)), 0);
    const char *warn = log_capture_end();
    ASSERT_EQ_STR(jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.service, "127.0.0.2");
    ASSERT_EQ_INT(count_of(warn, "set `service:` in that receivers.pprof scrape entry"), 1);
    ASSERT_CONTAINS(warn, "http://127.0.0.2:6060");

    /* An upload with no service at all takes the spans' service too. */
    ASSERT_EQ_INT(jt_consume(&t, scraped(NULL, NULL, "2000000000000001", true)), 0);
    ASSERT_EQ_STR(jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.service, "other");
    jt_close(&t);
    jt_sink_clear();
}

/* endpoint_counts: local roots per endpoint starting in [start, end) of
 * the profile's service, merged with the upload's (larger wins). */
static void test_endpoint_counts(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    struct sp_batch *b = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(b, SVC, NULL, 16);
    sp_otlp_scope_spans *other = jt_traces_resource(b, "other-svc", NULL, 4);
    int64_t s = T0, e = T0 + 60000000000LL;
    struct jt_span r[] = {
        {0x11, 0, 0x100, 2, "s", s, {"http.request.method=GET", "http.route=/a"}},
        {0x12, 0, 0x100, 2, "s", s + 5, {"http.request.method=GET", "http.route=/a"}},
        {0x13, 0, 0x100, 2, "s", e - 1000000, {"http.request.method=GET", "http.route=/b"}},
        {0x14, 0, 0x100, 2, "s", e, {"http.request.method=GET", "http.route=/a"}},   /* out */
        {0x15, 0, 0x100, 2, "s", s - 1000000, {"http.request.method=GET", "http.route=/a"}},
        {0x16, 0x11, 0x100, 1, "child", s + 10, {0}},                                /* not root */
        {0x17, 0, 0x100, 3, "q", s + 10, {"db.system=mysql", "db.statement=SELECT"}}, /* no ep */
        {0x18, 0, 0x100, 2, "s", s + 20, {"http.request.method=PUT", "http.route=/c"}},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        jt_traces_span(b, ss, &r[i]);
    struct jt_span o = {0x21, 0, 0x100, 2, "s", s + 7, {"http.request.method=GET", "http.route=/a"}};
    jt_traces_span(b, other, &o);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    struct sp_batch *pb = simple_profile("0000000000000016");
    pb->u.profile.start_ns = s;
    pb->u.profile.end_ns = e;
    static const char ev[] = "{\"endpoint_counts\":{\"PUT /c\":7,\"GET /zz\":2},\"family\":\"go\"}";
    pb->u.profile.event_json = ev;
    pb->u.profile.event_json_len = sizeof ev - 1;
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    const struct sp_profile *op = &jt_sink_last(SP_SIGNAL_PROFILES)->u.profile;
    int64_t a = -1, bb = -1, c = -1, zz = -1;
    for (size_t i = 0; i < op->endpoint_count_count; i++) {
        const char *ep = op->endpoint_counts[i].endpoint;
        int64_t n = op->endpoint_counts[i].count;
        if (strcmp(ep, "GET /a") == 0)
            a = n;
        else if (strcmp(ep, "GET /b") == 0)
            bb = n;
        else if (strcmp(ep, "PUT /c") == 0)
            c = n;
        else if (strcmp(ep, "GET /zz") == 0)
            zz = n;
        else
            SP_TEST_FAIL("unexpected endpoint %s", ep);
    }
    ASSERT_EQ_INT(a, 2);
    ASSERT_EQ_INT(bb, 1);
    ASSERT_EQ_INT(c, 7);  /* upload's 7 > our 1 */
    ASSERT_EQ_INT(zz, 2); /* only in the upload */
    ASSERT_EQ_INT(op->endpoint_count_count, 4);
    jt_close(&t);
    jt_sink_clear();
}

/* Code Hotspots bridge: the runtime id of a profile reaches the spans of
 * the same service instance; one is derived when the profiler sent none. */
static void test_runtime_ids(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, tree1, 3)), 0);
    ASSERT(jt_sink_last(SP_SIGNAL_TRACES)->u.traces.runtime_ids == NULL);

    struct sp_batch *pb = simple_profile("1000000000000001");
    pb->u.profile.runtime_id = "0f5e2a1c-1111-4222-8333-444455556666";
    pb->u.profile.host = "host-a";
    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    struct sp_batch *pb2 = simple_profile("1000000000000001");
    pb2->u.profile.service = "Billing";
    pb2->u.profile.host = "host-b";
    struct sp_kv_str tags[] = {{"process_id", "4242"}};
    pb2->u.profile.tags = tags;
    pb2->u.profile.tag_count = 1;
    ASSERT_EQ_INT(jt_consume(&t, pb2), 0);
    const char *derived = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.runtime_id;
    ASSERT(derived != NULL);
    ASSERT_EQ_INT(strlen(derived), 36);
    ASSERT_EQ_INT(derived[14], '4');
    ASSERT(strchr("89ab", derived[19]) != NULL);
    char keep[40];
    snprintf(keep, sizeof keep, "%s", derived);
    /* Same instance again: the same id. */
    struct sp_batch *pb3 = simple_profile("1000000000000001");
    pb3->u.profile.service = "Billing";
    pb3->u.profile.host = "host-b";
    pb3->u.profile.tags = tags;
    pb3->u.profile.tag_count = 1;
    ASSERT_EQ_INT(jt_consume(&t, pb3), 0);
    ASSERT_EQ_STR(jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.runtime_id, keep);

    struct sp_batch *b = jt_traces_new();
    const char *host_a[] = {"host.name=host-a", NULL};
    sp_otlp_scope_spans *s1 = jt_traces_resource(b, SVC, host_a, 1);
    sp_otlp_scope_spans *s2 = jt_traces_resource(b, "billing", NULL, 1);
    sp_otlp_scope_spans *s3 = jt_traces_resource(b, "no-profiles", NULL, 1);
    struct jt_span x = {0x77, 0, 0x100, 2, "s", T0, {0}};
    jt_traces_span(b, s1, &x);
    x.id = 0x78;
    jt_traces_span(b, s2, &x);
    x.id = 0x79;
    jt_traces_span(b, s3, &x);
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    const struct sp_traces *tr = &jt_sink_last(SP_SIGNAL_TRACES)->u.traces;
    ASSERT_EQ_INT(tr->runtime_id_count, 2);
    ASSERT_EQ_STR(tr->runtime_ids[0].service, SVC);
    ASSERT_EQ_STR(tr->runtime_ids[0].instance, "host-a");
    ASSERT_EQ_STR(tr->runtime_ids[0].runtime_id, "0f5e2a1c-1111-4222-8333-444455556666");
    ASSERT_EQ_STR(tr->runtime_ids[1].service, "billing");
    ASSERT_EQ_STR(tr->runtime_ids[1].runtime_id, keep);
    jt_close(&t);
    jt_sink_clear();
}

/* The endpoint table is bounded for the process's life; endpoints whose
 * roots expired are compacted away so new ones still get labels. */
static void test_endpoint_table_compaction(void)
{
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 0s\n    max_hold: 0s\n    span_ttl: 200ms\n"
                              "    endpoint_cardinality_limit: 2"),
                  0);
    struct jt_span r[] = {
        {0x31, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/one"}},
        {0x32, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/two"}},
        {0x33, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/three"}},
    };
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, r, 2)), 0);
    usleep(250 * 1000);
    uv_update_time(&t.loop);
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, r + 2, 1)), 0);
    ASSERT_EQ_INT(jt_consume(&t, simple_profile("0000000000000033")), 0);
    sp_pprof *q = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.attachments[0].pprof;
    ASSERT_EQ_STR(jt_label_str(q, q->sample[0], "trace endpoint"), "GET /three");
    ASSERT_EQ_INT(jt_metric("spanprof_join_endpoints", "component=\"join\""), 1);
    /* Still bounded: two live endpoints, a third is refused. */
    struct jt_span more[] = {
        {0x34, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/four"}},
        {0x35, 0, 0x100, 2, "s", T0, {"http.request.method=GET", "http.route=/five"}},
    };
    ASSERT_EQ_INT(jt_consume(&t, batch_of(SVC, more, 2)), 0);
    ASSERT_EQ_INT(jt_metric("spanprof_join_endpoints", "component=\"join\""), 2);
    ASSERT_EQ_INT(jt_metric("spanprof_join_endpoint_cardinality_drops_total",
                            "component=\"join\""), 2);
    jt_close(&t);
    jt_sink_clear();
}

static void test_config_errors(void)
{
    struct jt t;
    ASSERT(jt_open(&t, "    max_spans: 0") < 0);
    uv_loop_close(&t.loop);
    sp_service_conf_free(t.conf);
    unlink(t.path);
    ASSERT(jt_open(&t, "    span_ttl: 0s") < 0);
    uv_loop_close(&t.loop);
    sp_service_conf_free(t.conf);
    unlink(t.path);
}

/* ---- property test: random forests through OTLP ---- */

struct pspan {
    struct jt_span js;
    bool sent;
    bool root;
    const char *endpoint; /* NULL: not PII-safe */
};

static uint64_t prng = 0x243F6A8885A308D3ULL;

static uint64_t prnd(void)
{
    prng ^= prng << 13;
    prng ^= prng >> 7;
    prng ^= prng << 17;
    return prng;
}

static size_t find_live(uint64_t *live, size_t nlive, uint64_t id)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == id)
            return i;
    return SIZE_MAX;
}

static int property_round(unsigned round)
{
    size_t cap = 400, n = 0;
    struct pspan *ps = calloc(cap, sizeof *ps);
    size_t ntrees = 3 + prnd() % 15;
    for (size_t tr = 0; tr < ntrees; tr++) {
        size_t first = n, nt = 1 + prnd() % 12;
        int rk = (int)(prnd() % 4);
        for (size_t k = 0; k < nt && n < cap; k++, n++) {
            struct pspan *s = &ps[n];
            s->js.id = prnd() | 1;
            s->js.start_ns = T0;
            s->sent = prnd() % 15 != 0;
            if (k == 0) {
                s->root = true;
                bool remote = prnd() % 3 == 0;
                s->js.parent = remote ? (prnd() | 1) : 0;
                s->js.flags = remote ? 0x300 : (prnd() % 2 ? 0x100 : 0);
                if (rk == 0) { /* server */
                    s->js.kind = 2;
                    s->js.attrs[0] = "http.request.method=GET";
                    s->js.name = "srv";
                    s->endpoint = "GET";
                } else if (rk == 1) { /* internal: custom, span name */
                    s->js.kind = 1;
                    s->js.name = tr % 2 ? "job-a" : "job-b";
                    s->endpoint = s->js.name;
                } else if (rk == 2) { /* client db: not PII-safe */
                    s->js.kind = 3;
                    s->js.attrs[0] = "db.system=redis";
                    s->js.name = "GET";
                    s->endpoint = NULL;
                } else { /* consumer root (remote-parented usually): dd-trace-go's
                          * queue type, no endpoint */
                    s->js.kind = 5;
                    s->js.attrs[0] = "messaging.operation=process";
                    s->js.name = "c";
                    s->endpoint = NULL;
                }
            } else {
                size_t par = first + (size_t)(prnd() % k);
                s->js.parent = ps[par].js.id;
                /* Flagged children, or flagless INTERNAL/CLIENT children
                 * (not roots by the kind fallback). */
                s->js.flags = prnd() % 2 ? 0x100 : 0;
                s->js.kind = prnd() % 2 ? 1 : 3;
                s->js.name = "child";
            }
        }
    }
    /* Send in shuffled batches (children often before their roots). */
    size_t *order = malloc(n * sizeof *order), no = 0;
    for (size_t i = 0; i < n; i++)
        if (ps[i].sent)
            order[no++] = i;
    for (size_t i = no; i > 1; i--) {
        size_t j = (size_t)(prnd() % i), tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    size_t max_spans = prnd() % 3 == 0 ? 5 + (size_t)(prnd() % (no + 1)) : 100000;
    char conf[128];
    snprintf(conf, sizeof conf, "    join_delay: 0s\n    max_hold: 0s\n    max_spans: %zu", max_spans);
    struct jt t;
    if (jt_open(&t, conf) < 0)
        return 1;
    uint64_t *live = calloc(no + 1, sizeof *live);
    size_t nlive = 0;
    for (size_t i = 0; i < no;) {
        size_t bn = 1 + (size_t)(prnd() % 20);
        struct sp_batch *b = jt_traces_new();
        sp_otlp_scope_spans *ss = jt_traces_resource(b, "prop-svc", NULL, bn);
        for (size_t k = 0; k < bn && i < no; k++, i++) {
            jt_traces_span(b, ss, &ps[order[i]].js);
            /* Reference: FIFO live set of max_spans ids. */
            if (nlive == max_spans) {
                memmove(live, live + 1, (nlive - 1) * sizeof *live);
                nlive--;
            }
            live[nlive++] = ps[order[i]].js.id;
        }
        jt_consume(&t, b);
    }
    /* One sample per span (sent or not) plus unknown ids, in the three
     * dialects. */
    struct sp_batch *pb = jt_profile_new("prop-svc", "cpu.pprof", true);
    sp_pprof *p = jt_pprof_new(pb->arena, "cpu", n + 4);
    for (size_t i = 0; i < n + 3; i++) {
        uint64_t id = i < n ? ps[i].js.id : prnd() | 1;
        char l[64];
        switch (i % 3) {
        case 0: snprintf(l, sizeof l, "span_id=%016" PRIx64, id); break;
        case 1: snprintf(l, sizeof l, "span id=%" PRIu64, id); break;
        default: snprintf(l, sizeof l, "span id#%" PRIu64, id); break;
        }
        jt_sample(p, pb->arena, 1, l, NULL);
    }
    pb->u.profile.attachments[0].pprof = p;
    jt_consume(&t, pb);
    sp_pprof *q = jt_sink_last(SP_SIGNAL_PROFILES)->u.profile.attachments[0].pprof;
    int fails = 0;
    for (size_t i = 0; i < n + 3 && !fails; i++) {
        const Perftools__Profiles__Sample *s = q->sample[i];
        uint64_t id = i < n ? ps[i].js.id : 0;
        /* Brute force: walk the definitions over live spans. */
        const char *want_root = NULL, *want_ep = NULL;
        bool known = i < n && find_live(live, nlive, id) != SIZE_MAX;
        if (known) {
            size_t cur = i;
            for (int hops = 0; hops <= 64; hops++) {
                if (ps[cur].root) {
                    want_root = jt_u64(ps[cur].js.id);
                    want_ep = ps[cur].endpoint;
                    break;
                }
                size_t par = SIZE_MAX;
                for (size_t k = 0; k < n; k++)
                    if (ps[k].js.id == ps[cur].js.parent)
                        par = k;
                if (par == SIZE_MAX || find_live(live, nlive, ps[par].js.id) == SIZE_MAX)
                    break;
                cur = par;
            }
        }
        const char *got_root = jt_label_str(q, s, "local root span id");
        const char *got_ep = jt_label_str(q, s, "trace endpoint");
        size_t want_labels = 1 + (known ? (i % 3 == 0) + (want_root != NULL) + (want_ep != NULL)
                                        : 0);
        bool ok = s->n_label == want_labels &&
                  ((!want_root && !got_root) ||
                   (want_root && got_root && strcmp(want_root, got_root) == 0)) &&
                  ((!want_ep && !got_ep) || (want_ep && got_ep && strcmp(want_ep, got_ep) == 0));
        if (!ok) {
            fprintf(stderr,
                    "  round %u sample %zu: labels %zu (want %zu) root %s (want %s) endpoint %s "
                    "(want %s) max_spans %zu\n",
                    round, i, s->n_label, want_labels, got_root ? got_root : "-",
                    want_root ? want_root : "-", got_ep ? got_ep : "-", want_ep ? want_ep : "-",
                    max_spans);
            fails++;
        }
    }
    jt_close(&t);
    jt_sink_clear();
    free(live);
    free(order);
    free(ps);
    return fails;
}

static void test_property_forests_through_otlp(void)
{
    int fails = 0;
    for (unsigned r = 0; r < 150 && !fails; r++)
        fails += property_round(r);
    ASSERT_EQ_INT(fails, 0);
}

int main(void)
{
    sp_log_set_level(SP_LOG_ERROR); /* the property test fills the index on purpose */
    RUN(test_dialects);
    RUN(test_idempotent);
    RUN(test_dd_trace_js_fixture);
    RUN(test_root_rules);
    RUN(test_hold_then_label);
    RUN(test_pending_bound_and_shutdown);
    RUN(test_traces_pass_and_backpressure);
    RUN(test_endpoint_counts);
    RUN(test_endpoint_rule_dd_trace_go);
    RUN(test_endpoint_rule_label_all_roots);
    RUN(test_already_labelled);
    RUN(test_service_from_spans);
    RUN(test_runtime_ids);
    RUN(test_endpoint_table_compaction);
    RUN(test_config_errors);
    RUN(test_property_forests_through_otlp);
    return sp_test_summary();
}
