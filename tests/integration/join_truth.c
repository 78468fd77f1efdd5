/* Ground truth for the join, from a real Go runtime CPU profile.
 *
 * tests/data/fixtures: go-cpu-spanid.pprof (runtime/pprof CPU profile of a
 * Go service whose goroutines carry OTel-style `span_id` labels: the SERVER
 * span for 20% of a request's CPU, then an INTERNAL child for 80%, half of
 * it in a goroutine that inherits the label), go-spans.json (every span, as
 * the OTLP/HTTP JSON export) and go-truth.json (span -> local root ->
 * endpoint, designed and measured CPU shares).
 *
 * The spans go through the OTLP JSON decoder and the join in batches in
 * reverse order (children before roots), the profile through the pprof
 * decoder and the join; then:
 *   - >= 99% of span-labelled samples carry the `trace endpoint` (and
 *     `local root span id`) the truth says;
 *   - per-endpoint CPU shares of the output equal those computed from the
 *     input's span_id labels and the truth map within 0.5 points;
 *   - they are within 10 points of the designed shares;
 *   - `go tool pprof -tags` on the re-encoded output agrees;
 *   - endpoint_counts equal the truth's local roots started in the window.
 * The figures are printed. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "otlp_codec.h"
#include "sp_log.h"
#include "../unit/test_join_lib.h"

#define MAX_EP 8

struct ep {
    char name[64];
    double designed;
    double in_cpu, out_cpu, go_cpu;
    int64_t truth_roots, counted;
};

static struct ep eps[MAX_EP];
static size_t neps;

static struct ep *ep_get(const char *name)
{
    for (size_t i = 0; i < neps; i++)
        if (strcmp(eps[i].name, name) == 0)
            return &eps[i];
    if (neps == MAX_EP)
        return NULL;
    snprintf(eps[neps].name, sizeof eps[0].name, "%s", name);
    return &eps[neps++];
}

static unsigned char *read_fixture(const char *name, size_t *len)
{
    char path[600];
    return sp_test_read_file(sp_test_fixture(path, sizeof path, name), len);
}

/* Splits the decoded request into batches of at most `per` spans, last
 * spans first, so children (which end and are exported first) and roots
 * arrive in the order that makes lazy resolution necessary. */
static size_t send_spans_reversed(struct jt *t, const sp_otlp_request *req, size_t per)
{
    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[s];
            size_t i = ss->n_spans;
            while (i > 0) {
                struct sp_batch *b = jt_traces_new();
                sp_otlp_request *nr = b->u.traces.req;
                sp_otlp_resource_spans *nrs = sp_arena_calloc(b->arena, 1, sizeof *nrs);
                opentelemetry__proto__trace__v1__resource_spans__init(nrs);
                nrs->resource = rs->resource; /* lives in the source arena, outlives b */
                nrs->scope_spans = sp_arena_calloc(b->arena, 1, sizeof *nrs->scope_spans);
                sp_otlp_scope_spans *nss = sp_arena_calloc(b->arena, 1, sizeof *nss);
                opentelemetry__proto__trace__v1__scope_spans__init(nss);
                nss->scope = ss->scope;
                nss->spans = sp_arena_calloc(b->arena, per, sizeof *nss->spans);
                while (i > 0 && nss->n_spans < per)
                    nss->spans[nss->n_spans++] = ss->spans[--i];
                nrs->scope_spans[0] = nss;
                nrs->n_scope_spans = 1;
                nr->resource_spans[nr->n_resource_spans++] = nrs;
                b->u.traces.span_count = nss->n_spans;
                total += nss->n_spans;
                jt_consume(t, b);
            }
        }
    }
    return total;
}

static int64_t sample_type_index(const sp_pprof *p, const char *type)
{
    for (size_t i = 0; i < p->n_sample_type; i++) {
        const char *t = sp_pprof_str(p, p->sample_type[i]->type);
        if (t && strcmp(t, type) == 0)
            return (int64_t)i;
    }
    return -1;
}

/* Parses `go tool pprof -tags` output for the `trace endpoint` tag:
 *   " trace endpoint: Total 1.7s\n                     1.0s (60.00%): GET /x\n" */
static int go_tool_tags(const char *file, double *total_share)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "go tool pprof -tags '%s' 2>/dev/null", file);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[1024];
    bool in = false;
    int found = 0;
    *total_share = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "trace endpoint: Total")) {
            in = true;
            continue;
        }
        if (!in)
            continue;
        char *pct = strchr(line, '(');
        char *colon = pct ? strstr(pct, "): ") : NULL;
        if (!pct || !colon) {
            if (strspn(line, " \t\r\n") == strlen(line))
                in = false; /* a blank line ends the tag's section */
            continue;
        }
        double share = strtod(pct + 1, NULL);
        char *name = colon + 3;
        name[strcspn(name, "\n")] = 0;
        struct ep *e = ep_get(name);
        if (e) {
            e->go_cpu = share;
            *total_share += share;
            found++;
        }
    }
    int rc = pclose(f);
    if (rc != 0)
        return -1;
    return found;
}

static void test_ground_truth(void)
{
    size_t len;
    unsigned char *spans_json = read_fixture("go-spans.json", &len);
    ASSERT(spans_json != NULL);
    size_t plen;
    unsigned char *pprof_gz = read_fixture("go-cpu-spanid.pprof", &plen);
    ASSERT(pprof_gz != NULL);
    size_t tlen;
    unsigned char *truth_txt = read_fixture("go-truth.json", &tlen);
    ASSERT(truth_txt != NULL);
    json_object *truth = json_tokener_parse((const char *)truth_txt);
    ASSERT(truth != NULL);
    json_object *tspans, *tendpoints;
    ASSERT(json_object_object_get_ex(truth, "spans", &tspans));
    ASSERT(json_object_object_get_ex(truth, "endpoints", &tendpoints));
    json_object_object_foreach(tendpoints, name, info)
    {
        json_object *d;
        struct ep *e = ep_get(name);
        if (e && json_object_object_get_ex(info, "designed_share", &d))
            e->designed = json_object_get_double(d) * 100;
    }
    json_object *jstart, *jend;
    ASSERT(json_object_object_get_ex(truth, "start_unix_nano", &jstart));
    ASSERT(json_object_object_get_ex(truth, "end_unix_nano", &jend));
    int64_t wstart = json_object_get_int64(jstart), wend = json_object_get_int64(jend);

    /* Decode spans with the OTLP JSON decoder. */
    struct sp_batch *src = sp_batch_create(SP_SIGNAL_TRACES, 0);
    struct sp_otlp_decode_info dinfo = {0};
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_otlp_decode_traces(src, SP_OTLP_JSON, spans_json, len, &dinfo, &err), 0);
    ASSERT_EQ_INT(dinfo.spans_rejected, 0);

    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, "    join_delay: 0s\n    max_hold: 0s"), 0);
    size_t sent = send_spans_reversed(&t, src->u.traces.req, 100);
    ASSERT_EQ_INT(sent, json_object_object_length(tspans));

    /* The profile, and the input's view before the join. */
    struct sp_batch *pb = jt_profile_new("goapp-fixture", "cpu.pprof", true);
    sp_pprof *p = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(pprof_gz, plen, 1 << 26, pb->arena, &p, NULL, &err), 0);
    ASSERT(sp_pprof_is_labelled_type(p));
    pb->u.profile.attachments[0].pprof = p;
    pb->u.profile.start_ns = wstart;
    pb->u.profile.end_ns = wend;
    pb->u.profile.family = "go";
    int64_t vi = sample_type_index(p, "cpu");
    ASSERT(vi >= 0);
    size_t n_samples = p->n_sample;
    char **truth_ep = calloc(n_samples, sizeof *truth_ep);
    char **truth_root = calloc(n_samples, sizeof *truth_root);
    double in_total = 0;
    size_t labelled = 0;
    for (size_t i = 0; i < n_samples; i++) {
        const char *sid = jt_label_str(p, p->sample[i], "span_id");
        if (!sid)
            continue;
        json_object *ts, *jep, *jroot;
        ASSERT(json_object_object_get_ex(tspans, sid, &ts));
        ASSERT(json_object_object_get_ex(ts, "endpoint", &jep));
        ASSERT(json_object_object_get_ex(ts, "local_root", &jroot));
        truth_ep[i] = strdup(json_object_get_string(jep));
        uint64_t root;
        sscanf(json_object_get_string(jroot), "%" SCNx64, &root);
        truth_root[i] = strdup(jt_u64(root));
        double v = (double)p->sample[i]->value[vi];
        ep_get(truth_ep[i])->in_cpu += v;
        in_total += v;
        labelled++;
    }
    ASSERT(labelled > 50);

    ASSERT_EQ_INT(jt_consume(&t, pb), 0);
    struct sp_batch *out = jt_sink_last(SP_SIGNAL_PROFILES);
    ASSERT(out != NULL);
    sp_pprof *q = out->u.profile.attachments[0].pprof;
    ASSERT(out->u.profile.attachments[0].modified);
    ASSERT_EQ_INT(q->n_sample, n_samples);
    size_t right = 0, right_root = 0;
    double out_total = 0;
    for (size_t i = 0; i < n_samples; i++) {
        const Perftools__Profiles__Sample *s = q->sample[i];
        const char *ep = jt_label_str(q, s, "trace endpoint");
        if (!truth_ep[i]) {
            /* Unlabelled samples (runtime, GC) stay unlabelled. */
            ASSERT(ep == NULL);
            continue;
        }
        if (ep && strcmp(ep, truth_ep[i]) == 0)
            right++;
        const char *lr = jt_label_str(q, s, "local root span id");
        if (lr && strcmp(lr, truth_root[i]) == 0)
            right_root++;
        if (ep) {
            double v = (double)s->value[vi];
            ep_get(ep)->out_cpu += v;
            out_total += v;
        }
    }
    double hit = 100.0 * (double)right / (double)labelled;
    fprintf(stderr, "  %zu samples, %zu with span_id; trace endpoint right for %zu (%.2f%%), "
            "local root span id right for %zu\n",
            n_samples, labelled, right, hit, right_root);
    ASSERT(hit >= 99.0);
    ASSERT(right_root * 100 >= labelled * 99);

    /* Re-encode and ask go tool pprof. */
    struct sp_buf enc = {0};
    ASSERT_EQ_INT(sp_pprof_encode(q, SP_COMPRESSION_GZIP, &enc, &err), 0);
    char file[256];
    const char *bdir = getenv("SPANPROF_BUILD");
    snprintf(file, sizeof file, "%s/join-truth-out.pb.gz", bdir ? bdir : "/tmp");
    FILE *f = fopen(file, "wb");
    ASSERT(f != NULL);
    fwrite(enc.data, 1, enc.len, f);
    fclose(f);
    sp_buf_free(&enc);
    double go_total = 0;
    int go_found = go_tool_tags(file, &go_total);

    fprintf(stderr, "  %-22s %9s %9s %9s %9s\n", "endpoint", "designed", "input", "output",
            "go-pprof");
    for (size_t i = 0; i < neps; i++) {
        struct ep *e = &eps[i];
        double in_share = in_total > 0 ? 100 * e->in_cpu / in_total : 0;
        double out_share = out_total > 0 ? 100 * e->out_cpu / out_total : 0;
        fprintf(stderr, "  %-22s %8.2f%% %8.2f%% %8.2f%% %8.2f%%\n", e->name, e->designed,
                in_share, out_share, e->go_cpu);
        ASSERT(fabs(out_share - in_share) <= 0.5);
        ASSERT(fabs(out_share - e->designed) <= 10.0);
    }
    if (go_found < 0) {
        fprintf(stderr, "  go tool pprof is not available: its check is skipped\n");
    } else {
        ASSERT_EQ_INT(go_found, 3);
        /* go tool prints shares of the whole profile (unlabelled samples
         * included): scale to the labelled part before comparing. */
        for (size_t i = 0; i < neps; i++) {
            double out_share = out_total > 0 ? 100 * eps[i].out_cpu / out_total : 0;
            double go_share = go_total > 0 ? 100 * eps[i].go_cpu / go_total : 0;
            ASSERT(fabs(go_share - out_share) <= 0.5);
        }
        fprintf(stderr, "  go tool pprof -tags: 'trace endpoint' on %.2f%% of the CPU time\n",
                go_total);
    }

    /* endpoint_counts: truth's local roots (SERVER spans) started in the window. */
    json_object_object_foreach(tspans, sid, ts)
    {
        (void)sid;
        json_object *k, *st, *ep;
        if (json_object_object_get_ex(ts, "kind", &k) &&
            strcmp(json_object_get_string(k), "server") == 0 &&
            json_object_object_get_ex(ts, "start_unix_nano", &st) &&
            json_object_object_get_ex(ts, "endpoint", &ep)) {
            int64_t s0 = strtoll(json_object_get_string(st), NULL, 10);
            /* Millisecond precision, as the index keeps root starts. */
            if (s0 / 1000000 >= wstart / 1000000 && s0 / 1000000 < wend / 1000000)
                ep_get(json_object_get_string(ep))->truth_roots++;
        }
    }
    const struct sp_profile *op = &out->u.profile;
    for (size_t i = 0; i < op->endpoint_count_count; i++) {
        struct ep *e = ep_get(op->endpoint_counts[i].endpoint);
        if (e)
            e->counted = op->endpoint_counts[i].count;
    }
    for (size_t i = 0; i < neps; i++) {
        fprintf(stderr, "  endpoint_counts %-22s %4" PRId64 " (truth %" PRId64 ")\n", eps[i].name,
                eps[i].counted, eps[i].truth_roots);
        ASSERT_EQ_INT(eps[i].counted, eps[i].truth_roots);
    }
    ASSERT(out->u.profile.runtime_id != NULL);

    for (size_t i = 0; i < n_samples; i++) {
        free(truth_ep[i]);
        free(truth_root[i]);
    }
    free(truth_ep);
    free(truth_root);
    jt_close(&t);
    jt_sink_clear();
    sp_batch_unref(src);
    json_object_put(truth);
    free(spans_json);
    free(pprof_gz);
    free(truth_txt);
}

int main(void)
{
    sp_log_set_level(SP_LOG_WARN);
    RUN(test_ground_truth);
    return sp_test_summary();
}
