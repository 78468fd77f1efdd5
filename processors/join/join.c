/* join processor: joins profile samples to the spans they ran under.
 *
 * One instance sits in both pipelines. Trace batches are observed: every
 * span goes into a bounded index (join_index.c) of span id -> parent or,
 * for local roots, -> endpoint record, and the batch moves on unchanged
 * except for the runtime ids the join knows (the Code Hotspots bridge the
 * Datadog exporter reads). A profile whose span ids all resolve to a local
 * root is labelled and passed on at once; one that names spans not known
 * yet (spans are exported when they end, long after the samples of a long
 * request) is held compactly (join_hold.c: its bytes plus the ids it
 * waits for) until they arrive or nothing more can be expected, up to
 * max_hold. Labelling gives CPU/wall/goroutine samples Datadog's `span id`,
 * `local root span id` and `trace endpoint` labels (join_label.c); the
 * envelope gets endpoint_counts and a runtime id. At shutdown whatever is
 * held is joined with what is known and passed on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "dd_naming.h"
#include "join_hold.h"
#include "join_index.h"
#include "join_label.h"
#include "join_status.h"
#include "join_u64map.h"
#include "sp_component.h"
#include "sp_log.h"
#include "pprof_codec.h"
#include "sp_metrics.h"
#include "sp_status.h"

#define JOIN_FLAG_HAS_REMOTE 0x100u
#define JOIN_FLAG_REMOTE 0x200u
#define JOIN_MAX_SERVICES 4096
#define JOIN_MAX_RUNTIME_IDS 256
#define JOIN_SUMMARY_MS 60000
#define JOIN_LOG_EVERY_MS 10000
/* A held attachment was decoded once under the receiver's limits; decoding
 * the same bytes again needs no tighter cap than this. */
#define JOIN_REDECODE_MAX ((size_t)1 << 30)
#define JOIN_MAX_SOURCES 64

struct join_conf {
    int64_t join_delay_ms;
    int64_t max_hold_ms;
    int64_t hold_grace_ms;
    int64_t span_ttl_ms;
    int64_t max_spans;
    int64_t max_held_profiles;
    uint64_t max_held_bytes;
    int64_t endpoint_cardinality_limit;
    int64_t max_depth;
    struct sp_strlist span_id_labels;
    bool label_all_roots;
    int64_t status_window_ms;
};

/* A held profile: its batch without decoded trees, and which attachments
 * to decode again at release. Lives in the batch's own arena. */
struct join_compact {
    struct sp_batch *b;
    bool *had_pprof;
};

struct join_runtime {
    char *service;     /* Datadog-normalised service */
    char *instance;    /* service.instance.id or host; "" when unknown */
    char runtime_id[40];
    uint64_t last_ms;
};

/* What a profile source without an explicit service (a scrape target)
 * was learned to be, from the spans its samples joined. */
struct join_source {
    char *source;  /* the profiles' service_fallback */
    char *service; /* learned Datadog service, or NULL */
    bool warned;   /* the "joined nothing" warning was logged */
    uint64_t last_ms;
};

struct join_ctx {
    struct sp_component *comp;
    struct join_conf *conf;
    struct join_index *ix;
    struct join_names *names;
    int64_t epoch_ms; /* wall-clock origin of root start times in the index */

    struct join_hold *hold;

    struct join_runtime runtimes[JOIN_MAX_RUNTIME_IDS];
    size_t n_runtimes;
    struct join_source sources[JOIN_MAX_SOURCES];
    size_t n_sources;

    uv_timer_t hold_timer;
    uv_timer_t summary_timer;
    bool started, shutting_down, shut;
    bool warned_no_service; /* uploads without a service joined nothing */
    int closing;
    sp_done_fn done;
    uint64_t last_drop_log_ms;
    uint64_t last_bound_log_ms, bound_since_log;

    /* Totals since the last summary line. */
    struct join_label_stats period;
    uint64_t period_profiles, period_spans;
    struct join_status *status; /* the status page's rings (join_status.h) */

    struct sp_metric *m_samples[JOIN_OUT_COUNT];
    struct sp_metric *m_spans;
    struct sp_metric *m_evict_ttl, *m_evict_cap;
    struct sp_metric *m_card_drops;
    struct sp_metric *m_prof_labelled, *m_prof_passed, *m_prof_dropped;
    struct sp_metric *m_held[JOIN_REL_COUNT];
    struct sp_metric *m_unresolved[JOIN_REL_COUNT];
    struct sp_metric *m_matched_arrival, *m_matched_held;
    struct sp_metric *m_hold_seconds;
    struct sp_metric *m_labels_added;
    uint64_t seen_evict_ttl, seen_evict_cap, seen_card_drops;
    int64_t last_compact_ms;
};

/* ---- clocks ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(struct join_ctx *ctx)
{
    return ctx->comp->loop ? (int64_t)uv_now(ctx->comp->loop) : wall_ms();
}

static uint32_t rel_ms(const struct join_ctx *ctx, int64_t unix_ns)
{
    return (uint32_t)(unix_ns / 1000000 - ctx->epoch_ms);
}

/* ---- metrics ---- */

static double g_index_spans(void *ud)
{
    struct join_index_stats s;
    join_index_stats(((struct join_ctx *)ud)->ix, &s);
    return (double)s.count;
}

static double g_index_capacity(void *ud)
{
    return (double)((struct join_ctx *)ud)->conf->max_spans;
}

static double g_index_bytes(void *ud)
{
    struct join_index_stats s;
    join_index_stats(((struct join_ctx *)ud)->ix, &s);
    return (double)s.bytes;
}

static double g_held(void *ud)
{
    return (double)join_hold_count(((struct join_ctx *)ud)->hold);
}

static double g_held_bytes(void *ud)
{
    return (double)join_hold_bytes(((struct join_ctx *)ud)->hold);
}

static double g_endpoints(void *ud)
{
    return (double)join_names_pair_count(((struct join_ctx *)ud)->names);
}

static double g_hit_ratio(void *ud)
{
    struct join_ctx *ctx = ud;
    uint64_t n[JOIN_OUT_COUNT];
    for (int i = 0; i < JOIN_OUT_COUNT; i++)
        n[i] = (uint64_t)sp_metric_value(ctx->m_samples[i]);
    uint64_t labelled = join_out_span_labelled(n);
    return labelled ? (double)n[JOIN_OUT_MATCHED] / (double)labelled : 0;
}

static void join_metrics(struct join_ctx *ctx)
{
    const char *base = ctx->comp->metric_labels ? ctx->comp->metric_labels : "";
    char l[512];
    for (int i = 0; i < JOIN_OUT_COUNT; i++) {
        snprintf(l, sizeof l, "%s,outcome=\"%s\"", base, join_outcome_names[i]);
        ctx->m_samples[i] = sp_counter("spanprof_join_samples_total",
                                       "profile samples of labelled types by join outcome", l);
    }
    ctx->m_spans = sp_counter("spanprof_join_spans_indexed_total", "spans put in the span index",
                              base);
    snprintf(l, sizeof l, "%s,reason=\"ttl\"", base);
    ctx->m_evict_ttl = sp_counter("spanprof_join_index_evictions_total",
                                  "spans dropped from the index by age or capacity", l);
    snprintf(l, sizeof l, "%s,reason=\"capacity\"", base);
    ctx->m_evict_cap = sp_counter("spanprof_join_index_evictions_total",
                                  "spans dropped from the index by age or capacity", l);
    ctx->m_card_drops = sp_counter("spanprof_join_endpoint_cardinality_drops_total",
                                   "local roots whose endpoint passed endpoint_cardinality_limit",
                                   base);
    snprintf(l, sizeof l, "%s,outcome=\"labelled\"", base);
    ctx->m_prof_labelled = sp_counter("spanprof_join_profiles_total",
                                      "profiles passed on, by what the join did", l);
    snprintf(l, sizeof l, "%s,outcome=\"passed\"", base);
    ctx->m_prof_passed = sp_counter("spanprof_join_profiles_total",
                                    "profiles passed on, by what the join did", l);
    snprintf(l, sizeof l, "%s,outcome=\"dropped\"", base);
    ctx->m_prof_dropped = sp_counter("spanprof_join_profiles_total",
                                     "profiles passed on, by what the join did", l);
    ctx->m_labels_added = sp_counter("spanprof_join_labels_added_total",
                                     "labels the join added to samples", base);
    for (int i = 0; i < JOIN_REL_COUNT; i++) {
        snprintf(l, sizeof l, "%s,reason=\"%s\"", base, join_release_names[i]);
        ctx->m_held[i] = sp_counter("spanprof_join_held_profiles_total",
                                    "held profiles released, by why (every id resolved, the ids "
                                    "left ended unexported, max_hold, max_held_bytes, shutdown)",
                                    l);
        if (i == JOIN_REL_RESOLVED)
            continue;
        ctx->m_unresolved[i] = sp_counter(
            "spanprof_join_unresolved_samples_total",
            "samples of held profiles released without a local root, by why: never_exported (the "
            "span ended and did not arrive), expired (max_hold), bound_reached, shutdown",
            l);
    }
    snprintf(l, sizeof l, "%s,when=\"arrival\"", base);
    ctx->m_matched_arrival = sp_counter(
        "spanprof_join_labelled_samples_total",
        "samples that got their endpoint, in profiles labelled on arrival or after a hold", l);
    snprintf(l, sizeof l, "%s,when=\"after_hold\"", base);
    ctx->m_matched_held = sp_counter(
        "spanprof_join_labelled_samples_total",
        "samples that got their endpoint, in profiles labelled on arrival or after a hold", l);
    static const double hold_bounds[] = {1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300};
    ctx->m_hold_seconds = sp_histogram("spanprof_join_hold_seconds",
                                       "how long held profiles waited for their spans", base,
                                       hold_bounds, sizeof hold_bounds / sizeof hold_bounds[0]);
    sp_gauge_fn("spanprof_join_hit_ratio",
                "matched / span-labelled samples since start (samples whose endpoint is known; "
                "samples already labelled by a Datadog tracer are not counted)",
                base, g_hit_ratio, ctx);
    sp_gauge_fn("spanprof_join_index_spans", "spans in the index", base, g_index_spans, ctx);
    sp_gauge_fn("spanprof_join_index_capacity", "the index bound (max_spans)", base,
                g_index_capacity, ctx);
    sp_gauge_fn("spanprof_join_index_bytes", "memory held by the span index", base,
                g_index_bytes, ctx);
    sp_gauge_fn("spanprof_join_held_profiles", "profiles held waiting for their spans", base,
                g_held, ctx);
    sp_gauge_fn("spanprof_join_held_bytes",
                "bytes of held profiles (encoded attachments and the ids they wait for)", base,
                g_held_bytes, ctx);
    sp_gauge_fn("spanprof_join_endpoints", "distinct (service, endpoint) pairs interned", base,
                g_endpoints, ctx);
}

static void sync_index_metrics(struct join_ctx *ctx)
{
    struct join_index_stats s;
    join_index_stats(ctx->ix, &s);
    if (s.evicted_ttl > ctx->seen_evict_ttl)
        sp_metric_add(ctx->m_evict_ttl, (double)(s.evicted_ttl - ctx->seen_evict_ttl));
    if (s.evicted_capacity > ctx->seen_evict_cap) {
        uint64_t n = s.evicted_capacity - ctx->seen_evict_cap;
        sp_metric_add(ctx->m_evict_cap, (double)n);
        uint64_t now = (uint64_t)now_ms(ctx);
        if (now - ctx->last_drop_log_ms >= 10000) {
            ctx->last_drop_log_ms = now;
            sp_log_warn(ctx->comp->id,
                        "span index full (max_spans=%" PRId64 "): %" PRIu64
                        " oldest spans evicted; raise max_spans or lower span_ttl",
                        ctx->conf->max_spans, n);
        }
    }
    ctx->seen_evict_ttl = s.evicted_ttl;
    ctx->seen_evict_cap = s.evicted_capacity;
    uint64_t drops = join_names_drops(ctx->names);
    if (drops > ctx->seen_card_drops)
        sp_metric_add(ctx->m_card_drops, (double)(drops - ctx->seen_card_drops));
    ctx->seen_card_drops = drops;
}

/* ---- runtime ids (Code Hotspots bridge) ---- */

static const char *kv_str(sp_otlp_kv *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0 && kv[i]->value &&
            kv[i]->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            kv[i]->value->string_value && *kv[i]->value->string_value)
            return kv[i]->value->string_value;
    return NULL;
}

static const char *profile_tag(const struct sp_profile *p, const char *key)
{
    for (size_t i = 0; i < p->tag_count; i++)
        if (p->tags[i].key && strcmp(p->tags[i].key, key) == 0 && p->tags[i].value &&
            *p->tags[i].value)
            return p->tags[i].value;
    return NULL;
}

/* A UUID-shaped id derived from what identifies the process, so the same
 * instance gets the same id across profiles (and restarts of spanprof). */
static void derive_runtime_id(const char *service, const char *instance, const char *pid,
                              char out[40])
{
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    const char *parts[3] = {service ? service : "", instance ? instance : "", pid ? pid : ""};
    for (int k = 0; k < 3; k++) {
        for (const unsigned char *s = (const unsigned char *)parts[k];; s++) {
            unsigned c = *s ? *s : 0x1f; /* separator between parts */
            h1 = (h1 ^ c) * 0x100000001b3ULL;
            h2 = (h2 ^ c) * 0x100000001b3ULL;
            h2 ^= h2 >> 29;
            if (!*s)
                break;
        }
    }
    /* Version 4 / variant 10 bits so it parses as a UUID. */
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012" PRIx64, (unsigned)(h1 >> 32),
             (unsigned)(h1 >> 16) & 0xffff, (unsigned)h1 & 0xfff,
             (unsigned)(0x8000 | ((h2 >> 48) & 0x3fff)), (uint64_t)(h2 & 0xffffffffffffULL));
}

static struct join_runtime *runtime_find(struct join_ctx *ctx, const char *service,
                                         const char *instance)
{
    struct join_runtime *any = NULL;
    for (size_t i = 0; i < ctx->n_runtimes; i++) {
        struct join_runtime *r = &ctx->runtimes[i];
        if (strcmp(r->service, service) != 0)
            continue;
        if (instance && strcmp(r->instance, instance) == 0)
            return r;
        if (!any || r->last_ms > any->last_ms)
            any = r;
    }
    return instance ? NULL : any;
}

/* Records the profile's runtime id (or derives one and puts it on the
 * envelope, so profile and spans carry the same value). */
static void runtime_note_profile(struct join_ctx *ctx, struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    if (!p->service || !*p->service)
        return;
    const char *svc = sp_dd_normalize_tag_value(p->service, b->arena);
    if (!svc || !*svc)
        return;
    const char *instance = profile_tag(p, "service.instance.id");
    if (!instance)
        instance = p->host ? p->host : "";
    char rid[40];
    if (p->runtime_id && *p->runtime_id) {
        snprintf(rid, sizeof rid, "%s", p->runtime_id);
    } else {
        const char *pid = profile_tag(p, "process_id");
        if (!pid)
            pid = profile_tag(p, "pid");
        derive_runtime_id(svc, instance, pid, rid);
        p->runtime_id = sp_arena_strdup(b->arena, rid);
    }
    struct join_runtime *r = runtime_find(ctx, svc, instance);
    if (!r) {
        if (ctx->n_runtimes == JOIN_MAX_RUNTIME_IDS) {
            /* Replace the least recently seen instance. */
            size_t old = 0;
            for (size_t i = 1; i < ctx->n_runtimes; i++)
                if (ctx->runtimes[i].last_ms < ctx->runtimes[old].last_ms)
                    old = i;
            r = &ctx->runtimes[old];
            free(r->service);
            free(r->instance);
        } else {
            r = &ctx->runtimes[ctx->n_runtimes++];
        }
        r->service = strdup(svc);
        r->instance = strdup(instance);
        if (!r->service || !r->instance) {
            free(r->service);
            free(r->instance);
            *r = ctx->runtimes[--ctx->n_runtimes];
            return;
        }
    }
    snprintf(r->runtime_id, sizeof r->runtime_id, "%s", rid);
    r->last_ms = (uint64_t)now_ms(ctx);
}

/* ---- traces ---- */

/* span id -> index of its ResourceSpans, for the service-change fallback
 * (only built when a span without remote-parent flags has a parent). Out of
 * memory leaves the map short: the fallback then asks the span index. */
static void rs_map_build(struct join_u64map *m, const sp_otlp_request *req, size_t spans)
{
    if (join_u64map_reserve(m, spans ? spans : 1) < 0)
        return;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; rs && s < rs->n_scope_spans; s++)
            for (size_t k = 0; rs->scope_spans[s] && k < rs->scope_spans[s]->n_spans; k++) {
                const sp_otlp_span *sp = rs->scope_spans[s]->spans[k];
                uint64_t id = sp_dd_span_id(sp->span_id.data, sp->span_id.len);
                if (id && !join_u64map_put(m, id, (int64_t)r))
                    return;
            }
    }
}

static void mark_pair(uint64_t id, uint64_t rec, void *ud)
{
    (void)id;
    bool *keep = ud;
    keep[join_root_pair(rec)] = true;
}

/* The endpoint table is bounded per service over the process's life; when
 * a service hits the bound, the endpoints no indexed root names any more
 * (spans expired) are dropped and the rest renumbered, at most once per
 * span_ttl, so a long-running service with changing endpoints keeps
 * getting labels. */
static bool compact_names(struct join_ctx *ctx, int64_t now)
{
    if (now - ctx->last_compact_ms < ctx->conf->span_ttl_ms)
        return false;
    ctx->last_compact_ms = now;
    size_t np = join_names_pair_count(ctx->names);
    bool *keep = calloc(np + 1, sizeof *keep);
    uint32_t *remap = calloc(np + 1, sizeof *remap);
    if (keep && remap) {
        join_index_for_each_root(ctx->ix, mark_pair, keep);
        if (join_names_compact(ctx->names, keep, remap) == 0) {
            join_index_remap_pairs(ctx->ix, remap, np + 1);
            sp_log_info(ctx->comp->id,
                        "endpoint table compacted: %zu of %zu endpoints still named by indexed "
                        "local roots",
                        join_names_pair_count(ctx->names), np);
        }
    }
    free(keep);
    free(remap);
    return join_names_pair_count(ctx->names) < np;
}

static void index_root(struct join_ctx *ctx, const sp_otlp_span *sp,
                       const sp_otlp_resource_spans *rs, const char *scope, struct sp_arena *scratch,
                       uint64_t id, int64_t now)
{
    struct sp_dd_span_ctx dc = {
        .span = sp,
        .resource_attrs = rs->resource ? rs->resource->attributes : NULL,
        .n_resource_attrs = rs->resource ? rs->resource->n_attributes : 0,
        .scope_name = scope,
    };
    unsigned flags = 0;
    uint32_t pair = 0;
    const char *res = NULL;
    if (!sp_dd_root_endpoint(&dc, ctx->conf->label_all_roots, scratch, &res)) {
        flags |= JOIN_ROOT_NOT_PII;
    } else {
        const char *svc = sp_dd_service(&dc, scratch);
        uint32_t sid = svc ? join_names_service(ctx->names, svc) : 0;
        if (sid && res) {
            uint64_t drops = join_names_drops(ctx->names);
            pair = join_names_pair(ctx->names, sid, res);
            if (!pair && join_names_drops(ctx->names) > drops && compact_names(ctx, now))
                pair = join_names_pair(ctx->names, sid, res);
        }
        if (!pair)
            flags |= JOIN_ROOT_CARD_DROP;
    }
    uint64_t rec = join_root_record(rel_ms(ctx, (int64_t)sp->start_time_unix_nano), pair, flags);
    join_index_put(ctx->ix, id, true, rec, now);
}

static void index_traces(struct join_ctx *ctx, const sp_otlp_request *req, size_t span_count)
{
    int64_t now = now_ms(ctx);
    /* Expire first: the name table's compaction looks at live roots. */
    join_index_expire(ctx->ix, now);
    struct sp_arena *scratch = sp_arena_create(0);
    struct join_u64map rsmap = {0};
    bool rsmap_built = false;
    /* Services per ResourceSpans, for the fallback (flags absent) rule. */
    const char **rs_service = calloc(req->n_resource_spans ? req->n_resource_spans : 1,
                                     sizeof *rs_service);
    if (!scratch || !rs_service) {
        sp_log_warn(ctx->comp->id, "out of memory indexing %zu spans", span_count);
        sp_arena_destroy(scratch);
        free(rs_service);
        return;
    }
    uint64_t indexed = 0;
    bool waiting = join_hold_waiting(ctx->hold);
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        if (!rs)
            continue;
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const sp_otlp_scope_spans *ss = rs->scope_spans[s];
            if (!ss)
                continue;
            const char *scope = ss->scope ? ss->scope->name : NULL;
            for (size_t k = 0; k < ss->n_spans; k++) {
                const sp_otlp_span *sp = ss->spans[k];
                uint64_t id = sp_dd_span_id(sp->span_id.data, sp->span_id.len);
                if (!id)
                    continue;
                uint64_t parent = sp_dd_span_id(sp->parent_span_id.data, sp->parent_span_id.len);
                bool root;
                if (!parent) {
                    root = true;
                } else if (sp->flags & JOIN_FLAG_HAS_REMOTE) {
                    root = (sp->flags & JOIN_FLAG_REMOTE) != 0;
                } else if (sp->kind ==
                               OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER ||
                           sp->kind ==
                               OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER) {
                    root = true;
                } else {
                    /* Service change: only decidable when the parent is in
                     * this batch (or already indexed as a root of another
                     * service). */
                    root = false;
                    if (!rsmap_built) {
                        rs_map_build(&rsmap, req, span_count);
                        rsmap_built = true;
                    }
                    struct sp_dd_span_ctx rc = {
                        .resource_attrs = rs->resource ? rs->resource->attributes : NULL,
                        .n_resource_attrs = rs->resource ? rs->resource->n_attributes : 0,
                    };
                    if (!rs_service[r])
                        rs_service[r] = sp_dd_service(&rc, scratch);
                    const int64_t *prs_at = join_u64map_get(&rsmap, parent);
                    bool is_root;
                    uint64_t rec;
                    if (prs_at) {
                        size_t prs = (size_t)*prs_at;
                        const sp_otlp_resource_spans *ors = req->resource_spans[prs];
                        struct sp_dd_span_ctx oc = {
                            .resource_attrs = ors->resource ? ors->resource->attributes : NULL,
                            .n_resource_attrs = ors->resource ? ors->resource->n_attributes : 0,
                        };
                        if (!rs_service[prs])
                            rs_service[prs] = sp_dd_service(&oc, scratch);
                        root = rs_service[r] && rs_service[prs] &&
                               strcmp(rs_service[r], rs_service[prs]) != 0;
                    } else if (join_index_get(ctx->ix, parent, &is_root, &rec) && is_root &&
                               join_root_pair(rec)) {
                        const char *psvc = join_names_service_name(
                            ctx->names, join_names_pair_service(ctx->names, join_root_pair(rec)));
                        root = rs_service[r] && psvc && strcmp(rs_service[r], psvc) != 0;
                    }
                }
                if (root)
                    index_root(ctx, sp, rs, scope, scratch, id, now);
                else
                    join_index_put(ctx->ix, id, false, parent, now);
                if (waiting)
                    join_hold_span_arrived(ctx->hold, id);
                indexed++;
            }
        }
    }
    join_u64map_free(&rsmap);
    free(rs_service);
    sp_arena_destroy(scratch);
    sp_metric_add(ctx->m_spans, (double)indexed);
    ctx->period_spans += indexed;
    sync_index_metrics(ctx);
}

/* Hands the exporter the runtime ids of this batch's service instances. */
static void attach_runtime_ids(struct join_ctx *ctx, struct sp_batch *b)
{
    const sp_otlp_request *req = b->u.traces.req;
    if (!ctx->n_runtimes || !req || !req->n_resource_spans)
        return;
    struct sp_runtime_id *out = sp_arena_calloc(b->arena, req->n_resource_spans, sizeof *out);
    if (!out)
        return;
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[r];
        if (!rs)
            continue;
        struct sp_dd_span_ctx rc = {
            .resource_attrs = rs->resource ? rs->resource->attributes : NULL,
            .n_resource_attrs = rs->resource ? rs->resource->n_attributes : 0,
        };
        const char *svc = sp_dd_service(&rc, b->arena);
        if (!svc)
            continue;
        sp_otlp_kv *const *ra = rc.resource_attrs;
        const char *inst = ra ? kv_str(ra, rc.n_resource_attrs, "service.instance.id") : NULL;
        if (!inst && ra)
            inst = kv_str(ra, rc.n_resource_attrs, "host.name");
        const struct join_runtime *rt = inst ? runtime_find(ctx, svc, inst) : NULL;
        if (!rt)
            rt = runtime_find(ctx, svc, NULL);
        if (!rt)
            continue;
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(out[i].service, svc) == 0 &&
                  ((!out[i].instance && !inst) ||
                   (out[i].instance && inst && strcmp(out[i].instance, inst) == 0));
        if (dup)
            continue;
        out[n].service = svc;
        out[n].instance = inst ? sp_arena_strdup(b->arena, inst) : NULL;
        out[n].runtime_id = sp_arena_strdup(b->arena, rt->runtime_id);
        n++;
    }
    if (n) {
        b->u.traces.runtime_ids = out;
        b->u.traces.runtime_id_count = n;
    }
}

/* ---- profiles ---- */

struct count_acc {
    struct join_ctx *ctx;
    uint32_t service;  /* 0: any */
    bool any_service;
    uint32_t ws, we;   /* window in index-relative ms */
    int64_t *counts;   /* by pair id */
};

static void count_root(uint64_t id, uint64_t rec, void *ud)
{
    (void)id;
    struct count_acc *a = ud;
    uint32_t pair = join_root_pair(rec);
    if (!pair)
        return;
    if (!a->any_service && join_names_pair_service(a->ctx->names, pair) != a->service)
        return;
    uint32_t st = join_root_start(rec);
    if ((int32_t)(st - a->ws) >= 0 && (int32_t)(st - a->we) < 0)
        a->counts[pair]++;
}

/* The upload's own endpoint counts from event.json, when the receiver did
 * not already parse them. */
static void parse_upload_counts(struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    if (p->endpoint_count_count || !p->event_json || !p->event_json_len)
        return;
    struct json_tokener *tok = json_tokener_new_ex(32);
    if (!tok)
        return;
    json_object *root = json_tokener_parse_ex(tok, p->event_json, (int)p->event_json_len);
    json_tokener_free(tok);
    json_object *ec;
    if (root && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "endpoint_counts", &ec) &&
        json_object_is_type(ec, json_type_object)) {
        size_t n = (size_t)json_object_object_length(ec), k = 0;
        struct sp_endpoint_count *out = n ? sp_arena_calloc(b->arena, n, sizeof *out) : NULL;
        if (out) {
            json_object_object_foreach(ec, key, val)
            {
                if (k < n && (json_object_is_type(val, json_type_int) ||
                              json_object_is_type(val, json_type_double))) {
                    out[k].endpoint = sp_arena_strdup(b->arena, key);
                    out[k].count = json_object_get_int64(val);
                    if (out[k].endpoint)
                        k++;
                }
            }
            p->endpoint_counts = out;
            p->endpoint_count_count = k;
        }
    }
    json_object_put(root);
}

/* endpoint_counts: the local roots per endpoint that started in the
 * profile's window, merged with the upload's own (per endpoint the larger
 * count wins: a Datadog tracer that counted in-process saw the same
 * requests, so adding would count them twice). */
static void endpoint_counts(struct join_ctx *ctx, struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    int64_t start = p->start_ns, end = p->end_ns;
    if (start <= 0 || end <= start) {
        for (size_t i = 0; i < p->attachment_count; i++) {
            const sp_pprof *pp = p->attachments[i].pprof;
            if (pp && p->attachments[i].labelled_type && pp->time_nanos > 0 &&
                pp->duration_nanos > 0) {
                start = pp->time_nanos;
                end = pp->time_nanos + pp->duration_nanos;
                break;
            }
        }
    }
    parse_upload_counts(b);
    if (start <= 0 || end <= start)
        return;
    size_t npairs = join_names_pair_count(ctx->names);
    if (!npairs)
        return;
    struct count_acc acc = {.ctx = ctx, .any_service = true};
    if (p->service && *p->service) {
        const char *svc = sp_dd_normalize_tag_value(p->service, b->arena);
        acc.any_service = false;
        acc.service = svc ? join_names_find_service(ctx->names, svc) : 0;
        if (!acc.service)
            return;
    }
    acc.ws = rel_ms(ctx, start);
    acc.we = rel_ms(ctx, end);
    acc.counts = calloc(npairs + 1, sizeof *acc.counts);
    if (!acc.counts)
        return;
    join_index_for_each_root(ctx->ix, count_root, &acc);
    size_t ours = 0;
    for (size_t i = 1; i <= npairs; i++)
        ours += acc.counts[i] > 0;
    if (ours) {
        size_t n0 = p->endpoint_count_count;
        struct sp_endpoint_count *out = sp_arena_calloc(b->arena, n0 + ours, sizeof *out);
        if (out) {
            if (n0)
                memcpy(out, p->endpoint_counts, n0 * sizeof *out);
            size_t n = n0;
            for (size_t i = 1; i <= npairs; i++) {
                if (!acc.counts[i])
                    continue;
                const char *ep = join_names_endpoint(ctx->names, (uint32_t)i);
                size_t j;
                for (j = 0; j < n0; j++)
                    if (out[j].endpoint && strcmp(out[j].endpoint, ep) == 0)
                        break;
                if (j < n0) {
                    if (acc.counts[i] > out[j].count)
                        out[j].count = acc.counts[i];
                    continue;
                }
                out[n].endpoint = sp_arena_strdup(b->arena, ep);
                out[n].count = acc.counts[i];
                if (out[n].endpoint)
                    n++;
            }
            p->endpoint_counts = out;
            p->endpoint_count_count = n;
        }
    }
    free(acc.counts);
}

/* ---- the service of a profile that names none ---- */

static bool service_explicit(const struct sp_profile *p)
{
    return p->service && *p->service && !p->service_fallback;
}

static struct join_source *source_find(struct join_ctx *ctx, const char *source, bool add)
{
    for (size_t i = 0; i < ctx->n_sources; i++)
        if (strcmp(ctx->sources[i].source, source) == 0)
            return &ctx->sources[i];
    if (!add)
        return NULL;
    struct join_source *e;
    if (ctx->n_sources == JOIN_MAX_SOURCES) {
        size_t old = 0; /* replace the least recently seen */
        for (size_t i = 1; i < ctx->n_sources; i++)
            if (ctx->sources[i].last_ms < ctx->sources[old].last_ms)
                old = i;
        e = &ctx->sources[old];
        free(e->source);
        free(e->service);
    } else {
        e = &ctx->sources[ctx->n_sources++];
    }
    memset(e, 0, sizeof *e);
    e->source = strdup(source);
    if (!e->source) {
        *e = ctx->sources[--ctx->n_sources];
        return NULL;
    }
    return e;
}

/* A profile without an explicit service (none in the upload, or a scrape
 * entry without `service:`, whose target host stands in) takes the service
 * of the spans its samples joined to: the one most matched samples ran
 * under (a debug line names the others), so its service tag, runtime id,
 * endpoint_counts and the spans' runtime-id line up. A scrape target
 * remembers it for its profiles that join nothing (heap, goroutines...).
 * Nothing known: the stand-in stays, and a warning, once per target, names
 * the fix. pair_samples: matched samples per endpoint pair (NULL when the
 * profile has no labelled samples). */
static void service_from_spans(struct join_ctx *ctx, struct sp_batch *b,
                               const uint64_t *pair_samples, size_t npairs)
{
    struct sp_profile *p = &b->u.profile;
    if (service_explicit(p))
        return;
    uint64_t *by_service = pair_samples ? calloc(JOIN_MAX_SERVICES + 1, sizeof *by_service) : NULL;
    uint32_t best = 0, services = 0;
    for (size_t i = 1; by_service && i <= npairs; i++) {
        uint32_t sv = pair_samples[i] ? join_names_pair_service(ctx->names, (uint32_t)i) : 0;
        if (!sv || sv > JOIN_MAX_SERVICES)
            continue;
        services += by_service[sv] == 0;
        by_service[sv] += pair_samples[i];
        if (!best || by_service[sv] > by_service[best])
            best = sv;
    }
    const char *src = p->service_fallback;
    struct join_source *e = src ? source_find(ctx, src, best != 0) : NULL;
    const char *svc = best ? join_names_service_name(ctx->names, best) : e ? e->service : NULL;
    if (services > 1 && sp_log_enabled(SP_LOG_DEBUG)) {
        char others[512];
        size_t o = 0;
        others[0] = 0;
        for (uint32_t sv = 1; sv <= JOIN_MAX_SERVICES && o < sizeof others - 64; sv++)
            if (by_service[sv] && sv != best)
                o += (size_t)snprintf(others + o, sizeof others - o, " %s=%" PRIu64,
                                      join_names_service_name(ctx->names, sv), by_service[sv]);
        sp_log_debug(ctx->comp->id,
                     "profile from %s: samples joined spans of %u services; taking '%s' (%" PRIu64
                     " samples) over%s",
                     src ? src : "an upload without a service", services, svc ? svc : "",
                     by_service[best],
                     others);
    }
    free(by_service);
    if (svc) {
        p->service = sp_arena_strdup(b->arena, svc);
        if (e && best && (!e->service || strcmp(e->service, svc) != 0)) {
            free(e->service);
            e->service = strdup(svc);
        }
        if (e)
            e->last_ms = (uint64_t)now_ms(ctx);
        return;
    }
    /* Joined nothing (and nothing learned): keep the stand-in. Only
     * profiles that could join say so (a heap profile never does). */
    if (!pair_samples)
        return;
    if (src && !(e = source_find(ctx, src, true)))
        return;
    if (e ? e->warned : ctx->warned_no_service)
        return;
    if (e)
        e->warned = true;
    else
        ctx->warned_no_service = true;
    if (src)
        sp_log_warn(ctx->comp->id,
                    "profiles scraped from %s name no service and their samples joined no span: "
                    "they go out as service '%s'; set `service:` in that receivers.pprof scrape "
                    "entry",
                    src, p->service ? p->service : "");
    else
        sp_log_warn(ctx->comp->id,
                    "profile uploads without a service tag whose samples joined no span go out "
                    "without a service; set the profiler's service (DD_SERVICE)");
}

static bool has_labelled(const struct sp_profile *p)
{
    for (size_t i = 0; i < p->attachment_count; i++)
        if (p->attachments[i].pprof && p->attachments[i].labelled_type)
            return true;
    return false;
}

static struct join_label_ctx label_ctx(const struct join_ctx *ctx)
{
    return (struct join_label_ctx){
        .ix = ctx->ix,
        .names = ctx->names,
        .max_depth = (unsigned)ctx->conf->max_depth,
        .extra_keys = ctx->conf->span_id_labels.v,
        .n_extra = ctx->conf->span_id_labels.n,
    };
}

/* Labels b's samples and fills its envelope. held: b waited in the hold
 * (the samples it labels count as labelled after a hold). The one place
 * where a profile's joined samples are tallied. */
static void process_profile(struct join_ctx *ctx, struct sp_batch *b, bool held)
{
    struct sp_profile *p = &b->u.profile;
    join_index_expire(ctx->ix, now_ms(ctx));
    sync_index_metrics(ctx);
    if (!has_labelled(p)) {
        service_from_spans(ctx, b, NULL, 0);
        runtime_note_profile(ctx, b);
        return;
    }
    struct join_label_ctx lc = label_ctx(ctx);
    if (!service_explicit(p)) {
        lc.n_pairs = join_names_pair_count(ctx->names);
        lc.pair_samples = calloc(lc.n_pairs + 1, sizeof *lc.pair_samples);
    }
    struct join_label_stats st = {0};
    for (size_t i = 0; i < p->attachment_count; i++) {
        struct sp_attachment *a = &p->attachments[i];
        if (!a->pprof || !a->labelled_type)
            continue;
        bool modified = false;
        int rc = join_label_pprof(&lc, a->pprof, b->arena, &st, &modified);
        if (modified)
            a->modified = true;
        if (rc < 0)
            sp_log_warn(ctx->comp->id, "attachment '%s' of service '%s': out of memory labelling",
                        a->name ? a->name : "", p->service ? p->service : "");
    }
    if (!service_explicit(p)) {
        static const uint64_t none[1];
        service_from_spans(ctx, b, lc.pair_samples ? lc.pair_samples : none,
                           lc.pair_samples ? lc.n_pairs : 0);
        free(lc.pair_samples);
    }
    runtime_note_profile(ctx, b);
    endpoint_counts(ctx, b);
    join_status_note(ctx->status, p, &st, (uint64_t)now_ms(ctx));
    for (int i = 0; i < JOIN_OUT_COUNT; i++) {
        sp_metric_add(ctx->m_samples[i], (double)st.samples[i]);
        ctx->period.samples[i] += st.samples[i];
    }
    sp_metric_add(held ? ctx->m_matched_held : ctx->m_matched_arrival,
                  (double)st.samples[JOIN_OUT_MATCHED]);
    sp_metric_add(ctx->m_labels_added, (double)st.labels_added);
    ctx->period.labels_added += st.labels_added;
    ctx->period_profiles++;
    if (sp_log_enabled(SP_LOG_DEBUG))
        sp_log_debug(ctx->comp->id,
                     "profile service=%s type=%s held=%d: %" PRIu64 " of %" PRIu64
                     " span-labelled samples matched (unknown=%" PRIu64 " root_unknown=%" PRIu64
                     " not_pii_safe=%" PRIu64 " no_span_label=%" PRIu64 "), %" PRIu64
                     " already labelled by a Datadog tracer; labels_added=%" PRIu64
                     " endpoints=%zu",
                     p->service ? p->service : "", p->profile_type ? p->profile_type : "",
                     (int)held, st.samples[JOIN_OUT_MATCHED], join_out_span_labelled(st.samples),
                     st.samples[JOIN_OUT_SPAN_UNKNOWN], st.samples[JOIN_OUT_ROOT_UNKNOWN],
                     st.samples[JOIN_OUT_NOT_PII_SAFE], st.samples[JOIN_OUT_NO_SPAN_LABEL],
                     st.samples[JOIN_OUT_ALREADY_LABELLED], st.labels_added,
                     p->endpoint_count_count);
}

/* Labels and passes b on. Returns the emit code (a refusal by the next
 * consumer is counted and logged, rate-limited). */
static int emit_profile(struct join_ctx *ctx, struct sp_batch *b, bool held)
{
    process_profile(ctx, b, held);
    struct sp_err err = {0};
    int rc = sp_component_emit(ctx->comp, b, &err);
    if (rc < 0) {
        if (!held)
            return rc; /* the receiver answers it; the sender retries */
        sp_metric_inc(ctx->m_prof_dropped);
        uint64_t now = (uint64_t)now_ms(ctx);
        if (now - ctx->last_drop_log_ms >= JOIN_LOG_EVERY_MS) {
            ctx->last_drop_log_ms = now;
            sp_log_warn(ctx->comp->id, "profile of service '%s' dropped after the join: %s",
                        b->u.profile.service ? b->u.profile.service : "",
                        err.msg[0] ? err.msg : sp_strerror(rc));
        }
        return rc;
    }
    sp_metric_inc(has_labelled(&b->u.profile) ? ctx->m_prof_labelled : ctx->m_prof_passed);
    return 0;
}

/* ---- the hold ---- */

struct open_ids {
    struct join_open_id *v;
    size_t n, cap;
    bool oom;
};

static void collect_open(void *ud, const struct join_open_id *id)
{
    struct open_ids *o = ud;
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        struct join_open_id *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv) {
            o->oom = true;
            return;
        }
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = *id;
}

static int cmp_open(const void *a, const void *b)
{
    uint64_t x = ((const struct join_open_id *)a)->span, y = ((const struct join_open_id *)b)->span;
    return x < y ? -1 : x > y;
}

/* The distinct span ids of b's labelled attachments that do not resolve
 * now (merged across attachments: cpu and wall name the same spans). */
static int open_ids_of(struct join_ctx *ctx, const struct sp_batch *b, struct open_ids *o)
{
    const struct sp_profile *p = &b->u.profile;
    struct join_label_ctx lc = label_ctx(ctx);
    for (size_t i = 0; i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        if (a->pprof && a->labelled_type &&
            (join_label_scan(&lc, a->pprof, collect_open, o) < 0 || o->oom))
            return SP_ENOMEM;
    }
    if (o->n < 2)
        return 0;
    qsort(o->v, o->n, sizeof *o->v, cmp_open);
    size_t w = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (w && o->v[w - 1].span == o->v[i].span)
            o->v[w - 1].samples += o->v[i].samples;
        else
            o->v[w++] = o->v[i];
    }
    o->n = w;
    return 0;
}

/* One process's profiles: its service, runtime id (set or derived by
 * runtime_note_profile) and host (a profile without service or runtime id
 * yet still has the host its receiver saw). */
static uint64_t stream_key(const struct sp_profile *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *parts[3] = {p->service ? p->service : "", p->runtime_id ? p->runtime_id : "",
                            p->host ? p->host : ""};
    for (int k = 0; k < 3; k++)
        for (const unsigned char *s = (const unsigned char *)parts[k];; s++) {
            h = (h ^ *s) * 0x100000001b3ULL;
            if (!*s)
                break;
        }
    return h;
}

static int64_t window_ms(const struct sp_profile *p)
{
    if (p->start_ns > 0 && p->end_ns > p->start_ns)
        return (p->end_ns - p->start_ns) / 1000000;
    for (size_t i = 0; i < p->attachment_count; i++)
        if (p->attachments[i].pprof && p->attachments[i].labelled_type &&
            p->attachments[i].pprof->duration_nanos > 0)
            return p->attachments[i].pprof->duration_nanos / 1000000;
    return 0;
}

static void free_compact(void *payload)
{
    struct join_compact *c = payload;
    sp_batch_unref(c->b);
}

/* The compact form of b: envelope and attachment bytes, no decoded trees;
 * a tree the receiver changed (a delta) is encoded. NULL on failure. */
static struct join_compact *compact_of(struct join_ctx *ctx, const struct sp_batch *b)
{
    const struct sp_profile *p = &b->u.profile;
    struct sp_batch *c = sp_batch_clone_profile_bytes(b);
    if (!c)
        return NULL;
    struct join_compact *jc = sp_arena_calloc(c->arena, 1, sizeof *jc);
    bool *had = sp_arena_calloc(c->arena, p->attachment_count ? p->attachment_count : 1, 1);
    if (!jc || !had)
        goto fail;
    jc->b = c;
    jc->had_pprof = had;
    for (size_t i = 0; i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        struct sp_attachment *d = &c->u.profile.attachments[i];
        had[i] = a->pprof != NULL;
        if (!a->pprof || (a->data && a->len && !a->modified))
            continue;
        struct sp_buf enc = {0};
        struct sp_err err = {0};
        if (sp_pprof_encode(a->pprof, SP_COMPRESSION_GZIP, &enc, &err) < 0) {
            sp_buf_free(&enc);
            sp_log_warn(ctx->comp->id, "attachment '%s': cannot encode it to hold it: %s",
                        a->name ? a->name : "", err.msg);
            goto fail;
        }
        d->data = sp_arena_memdup(c->arena, enc.data, enc.len);
        d->len = enc.len;
        d->compression = SP_COMPRESSION_GZIP;
        d->modified = false;
        sp_buf_free(&enc);
        if (!d->data)
            goto fail;
    }
    return jc;
fail:
    sp_batch_unref(c);
    return NULL;
}

/* Decodes the held attachments again. 0, or <0 with err set. */
static int expand_compact(struct join_compact *jc, struct sp_err *err)
{
    struct sp_profile *p = &jc->b->u.profile;
    for (size_t i = 0; i < p->attachment_count; i++) {
        struct sp_attachment *a = &p->attachments[i];
        if (!jc->had_pprof[i])
            continue;
        int rc = sp_pprof_decode(a->data, a->len, JOIN_REDECODE_MAX, jc->b->arena, &a->pprof,
                                 NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void count_release(struct join_ctx *ctx, const struct join_released *r)
{
    sp_metric_inc(ctx->m_held[r->reason]);
    sp_histogram_observe(ctx->m_hold_seconds, (double)r->held_ms / 1000.0);
    for (int i = 0; i < JOIN_REL_COUNT; i++)
        if (i != JOIN_REL_RESOLVED && r->unresolved[i])
            sp_metric_add(ctx->m_unresolved[i], (double)r->unresolved[i]);
    if (r->reason != JOIN_REL_BOUND)
        return;
    ctx->bound_since_log++;
    uint64_t now = (uint64_t)now_ms(ctx);
    if (now - ctx->last_bound_log_ms >= JOIN_LOG_EVERY_MS) {
        ctx->last_bound_log_ms = now;
        sp_log_warn(ctx->comp->id,
                    "hold full (max_held_bytes=%" PRIu64 ", max_held_profiles=%" PRId64
                    "): %" PRIu64 " oldest profiles released before their spans arrived",
                    ctx->conf->max_held_bytes, ctx->conf->max_held_profiles,
                    ctx->bound_since_log);
        ctx->bound_since_log = 0;
    }
}

static void release_one(struct join_ctx *ctx, struct join_released *r)
{
    struct join_compact *jc = r->payload;
    sp_batch_set_mem_class(jc->b, SP_MEM_BATCHES); /* on its way again */
    count_release(ctx, r);
    struct sp_err err = {0};
    if (expand_compact(jc, &err) < 0) {
        sp_metric_inc(ctx->m_prof_dropped);
        sp_log_warn(ctx->comp->id, "held profile of service '%s' dropped: %s",
                    jc->b->u.profile.service ? jc->b->u.profile.service : "", err.msg);
    } else {
        emit_profile(ctx, jc->b, true);
    }
    sp_batch_unref(jc->b);
}

static void join_on_hold(uv_timer_t *t);

/* Releases what is due and re-arms the timer for the next deadline. */
static void run_hold(struct join_ctx *ctx)
{
    if (!ctx->hold)
        return;
    int64_t now = now_ms(ctx);
    struct join_released r;
    while (join_hold_next_release(ctx->hold, ctx->ix, (unsigned)ctx->conf->max_depth, now, &r))
        release_one(ctx, &r);
    if (!ctx->started || ctx->shutting_down)
        return;
    int64_t due = join_hold_next_due(ctx->hold, now);
    if (due < 0)
        uv_timer_stop(&ctx->hold_timer);
    else
        uv_timer_start(&ctx->hold_timer, join_on_hold, (uint64_t)due, 0);
}

static void join_on_hold(uv_timer_t *t)
{
    run_hold(t->data);
}

static void join_on_summary(uv_timer_t *t)
{
    struct join_ctx *ctx = t->data;
    struct join_index_stats s;
    join_index_stats(ctx->ix, &s);
    uint64_t with = join_out_span_labelled(ctx->period.samples);
    if (ctx->period_profiles || ctx->period_spans)
        sp_log_info(ctx->comp->id,
                    "last minute: %" PRIu64 " spans indexed, %" PRIu64 " profiles joined, %" PRIu64
                    " of %" PRIu64 " span-labelled samples matched (%.1f%%), %" PRIu64
                    " already labelled by a Datadog tracer, index %zu/%zu spans "
                    "(%.1f MiB), held %zu profiles (%.1f MiB)",
                    ctx->period_spans, ctx->period_profiles, ctx->period.samples[JOIN_OUT_MATCHED],
                    with, with ? 100.0 * (double)ctx->period.samples[JOIN_OUT_MATCHED] / (double)with : 0.0,
                    ctx->period.samples[JOIN_OUT_ALREADY_LABELLED],
                    s.count, s.max_spans, (double)s.bytes / (1024.0 * 1024.0),
                    join_hold_count(ctx->hold),
                    (double)join_hold_bytes(ctx->hold) / (1024.0 * 1024.0));
    memset(&ctx->period, 0, sizeof ctx->period);
    ctx->period_profiles = ctx->period_spans = 0;
    join_index_expire(ctx->ix, now_ms(ctx));
    sync_index_metrics(ctx);
}

/* The status page's join section (sp_status.h): runs on the loop thread,
 * only while someone looks at the page. */
static void join_status_fn(void *ud, struct sp_jw *w)
{
    struct join_ctx *ctx = ud;
    join_status_write(ctx->status, w, (uint64_t)now_ms(ctx));
    struct join_index_stats s;
    join_index_stats(ctx->ix, &s);
    sp_jw_obj(w, "index");
    sp_jw_u64(w, "spans", s.count);
    sp_jw_u64(w, "max_spans", s.max_spans);
    sp_jw_u64(w, "bytes", s.bytes);
    sp_jw_end(w, '}');
    sp_jw_obj(w, "held");
    sp_jw_u64(w, "profiles", join_hold_count(ctx->hold));
    sp_jw_u64(w, "bytes", join_hold_bytes(ctx->hold));
    sp_jw_i64(w, "max_profiles", ctx->conf->max_held_profiles);
    sp_jw_u64(w, "max_bytes", (uint64_t)ctx->conf->max_held_bytes);
    sp_jw_end(w, '}');
}

/* ---- vtable ---- */

static int join_create(struct sp_component *comp, struct sp_err *err)
{
    struct join_conf *conf = comp->conf;
    if (conf->join_delay_ms < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "join_delay", "must not be negative");
    if (conf->max_hold_ms < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "max_hold", "must not be negative");
    if (conf->hold_grace_ms < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "hold_grace", "must not be negative");
    if (conf->span_ttl_ms <= 0)
        return sp_conf_errorf(comp->conf_ctx, err, "span_ttl", "must be positive");
    /* A held profile is labelled up to max_hold after it arrived, from spans
     * that may have arrived join_delay before it: they must still be there. */
    if (conf->span_ttl_ms < conf->max_hold_ms + conf->join_delay_ms)
        return sp_conf_errorf(comp->conf_ctx, err, "span_ttl",
                              "must be at least max_hold + join_delay (%" PRId64 " ms), got %" PRId64
                              " ms: spans would leave the index before the profiles held for "
                              "them are labelled",
                              conf->max_hold_ms + conf->join_delay_ms, conf->span_ttl_ms);
    if (conf->max_spans < 1 || conf->max_spans > 1000000000)
        return sp_conf_errorf(comp->conf_ctx, err, "max_spans",
                              "must be between 1 and 1000000000, got %" PRId64, conf->max_spans);
    if (conf->max_held_profiles < 0)
        return sp_conf_errorf(comp->conf_ctx, err, "max_held_profiles", "must not be negative");
    if (conf->endpoint_cardinality_limit < 0 || conf->endpoint_cardinality_limit > 1000000)
        return sp_conf_errorf(comp->conf_ctx, err, "endpoint_cardinality_limit",
                              "must be between 0 and 1000000");
    if (conf->max_depth < 1 || conf->max_depth > 10000)
        return sp_conf_errorf(comp->conf_ctx, err, "max_depth", "must be between 1 and 10000");
    if (conf->status_window_ms < 30000 || conf->status_window_ms > 24 * 3600000)
        return sp_conf_errorf(comp->conf_ctx, err, "status_window",
                              "must be between 30s and 24h");
    for (size_t i = 0; i < conf->span_id_labels.n; i++)
        if (!conf->span_id_labels.v[i] || !*conf->span_id_labels.v[i])
            return sp_conf_errorf(comp->conf_ctx, err, "span_id_labels",
                                  "entry %zu is empty", i);
    struct join_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return sp_err_set(err, SP_ENOMEM, "'%s': out of memory", comp->id);
    ctx->comp = comp;
    ctx->conf = conf;
    ctx->epoch_ms = wall_ms();
    ctx->last_compact_ms = INT64_MIN / 2;
    /* Start small; the slab doubles up to max_spans as spans arrive. */
    ctx->ix = join_index_create((size_t)conf->max_spans, conf->span_ttl_ms, 0);
    ctx->names = join_names_create((size_t)conf->endpoint_cardinality_limit, JOIN_MAX_SERVICES);
    struct join_hold_conf hc = {
        .max_hold_ms = conf->max_hold_ms,
        .delay_ms = conf->join_delay_ms,
        .grace_ms = conf->hold_grace_ms,
        .max_bytes = (size_t)conf->max_held_bytes,
        .max_profiles = (size_t)conf->max_held_profiles,
    };
    ctx->hold = join_hold_create(&hc);
    ctx->status = join_status_new(conf->status_window_ms);
    if (!ctx->ix || !ctx->names || !ctx->hold || !ctx->status) {
        join_index_destroy(ctx->ix);
        join_names_destroy(ctx->names);
        join_hold_destroy(ctx->hold, NULL);
        join_status_free(ctx->status);
        free(ctx);
        return sp_err_set(err, SP_ENOMEM, "'%s': out of memory for the span index", comp->id);
    }
    join_metrics(ctx);
    comp->ctx = ctx;
    return 0;
}

static int join_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    struct join_ctx *ctx = comp->ctx;
    (void)host;
    (void)err;
    uv_timer_init(comp->loop, &ctx->hold_timer);
    uv_timer_init(comp->loop, &ctx->summary_timer);
    ctx->hold_timer.data = ctx;
    ctx->summary_timer.data = ctx;
    uv_timer_start(&ctx->summary_timer, join_on_summary, JOIN_SUMMARY_MS, JOIN_SUMMARY_MS);
    uv_unref((uv_handle_t *)&ctx->summary_timer);
    sp_status_add("join", comp->id, join_status_fn, ctx);
    ctx->started = true;
    return 0;
}

static int consume_traces(struct join_ctx *ctx, struct sp_batch *b)
{
    if (b->u.traces.req)
        index_traces(ctx, b->u.traces.req, b->u.traces.span_count);
    attach_runtime_ids(ctx, b);
    int rc = sp_component_emit(ctx->comp, b, NULL);
    if (join_hold_dirty(ctx->hold))
        run_hold(ctx); /* profiles whose spans just arrived */
    return rc;
}

/* Holds b when some of its span ids are not known yet but can still
 * arrive; 1 when held, 0 when b is to be labelled now, <0 on error. */
static int hold_profile(struct join_ctx *ctx, struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    int64_t now = now_ms(ctx);
    join_index_expire(ctx->ix, now);
    runtime_note_profile(ctx, b);
    struct open_ids o = {0};
    if (open_ids_of(ctx, b, &o) < 0) {
        free(o.v);
        return 0; /* out of memory: label with what is known */
    }
    uint64_t stream = stream_key(p);
    join_hold_observe(ctx->hold, stream, o.v, o.n, window_ms(p), now);
    if (!join_hold_worth(o.v, o.n)) {
        free(o.v);
        return 0;
    }
    struct join_compact *jc = compact_of(ctx, b);
    if (!jc) {
        free(o.v);
        return 0;
    }
    size_t bytes = sp_batch_bytes(jc->b), cost = join_hold_cost(bytes, o.n);
    struct join_released r;
    while (join_hold_pop_for_room(ctx->hold, cost, now, &r))
        release_one(ctx, &r);
    int rc = SP_ENOMEM;
    if (cost <= ctx->conf->max_held_bytes && ctx->conf->max_held_profiles > 0)
        rc = join_hold_add(ctx->hold, jc, bytes, stream, o.v, o.n, now);
    if (rc == 0)
        sp_batch_set_mem_class(jc->b, SP_MEM_PROFILES);
    if (rc < 0) {
        /* Larger than the whole hold (or no memory): it goes now. */
        struct join_released now_r = {.payload = jc, .reason = JOIN_REL_BOUND};
        for (size_t i = 0; i < o.n; i++)
            now_r.unresolved[JOIN_REL_BOUND] += o.v[i].samples;
        free(o.v);
        release_one(ctx, &now_r);
        return 1;
    }
    free(o.v);
    return 1;
}

static int consume_profile(struct join_ctx *ctx, struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    /* Nothing to label (heap, block...) or no hold: join now. The runtime id
     * is still noted and set. */
    if (has_labelled(p) && ctx->conf->max_hold_ms > 0 && !ctx->shutting_down && ctx->started) {
        int held = hold_profile(ctx, b);
        if (held) {
            run_hold(ctx);
            return 0;
        }
    }
    int rc = emit_profile(ctx, b, false);
    run_hold(ctx); /* this profile may have shown that held ids ended */
    return rc;
}

static int join_consume(struct sp_component *comp, struct sp_batch *b)
{
    struct join_ctx *ctx = comp->ctx;
    if (b->signal == SP_SIGNAL_TRACES)
        return consume_traces(ctx, b);
    if (b->signal == SP_SIGNAL_PROFILES)
        return consume_profile(ctx, b);
    return SP_EINVAL;
}

static void join_on_closed(uv_handle_t *h)
{
    struct join_ctx *ctx = h->data;
    if (--ctx->closing == 0) {
        ctx->shut = true;
        sp_done_fn done = ctx->done;
        ctx->done = NULL;
        if (done)
            done(ctx->comp);
    }
}

static void join_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct join_ctx *ctx = comp->ctx;
    if (ctx->shut || ctx->shutting_down) {
        /* Already down, or closing: a second call is answered at once. */
        done(comp);
        return;
    }
    ctx->shutting_down = true;
    /* Receivers are stopped: what can be released is, then the rest is
     * joined with what is known. */
    run_hold(ctx);
    size_t flushed = join_hold_count(ctx->hold);
    struct join_released r;
    while (join_hold_pop_any(ctx->hold, now_ms(ctx), &r))
        release_one(ctx, &r);
    if (flushed)
        sp_log_info(comp->id, "shutdown: joined %zu held profiles with the spans known", flushed);
    if (!ctx->started) {
        ctx->shut = true;
        done(comp);
        return;
    }
    ctx->done = done;
    ctx->closing = 2;
    uv_timer_stop(&ctx->hold_timer);
    uv_timer_stop(&ctx->summary_timer);
    uv_close((uv_handle_t *)&ctx->hold_timer, join_on_closed);
    uv_close((uv_handle_t *)&ctx->summary_timer, join_on_closed);
}

static void join_destroy(struct sp_component *comp)
{
    struct join_ctx *ctx = comp->ctx;
    if (!ctx)
        return;
    join_hold_destroy(ctx->hold, free_compact);
    for (size_t i = 0; i < ctx->n_runtimes; i++) {
        free(ctx->runtimes[i].service);
        free(ctx->runtimes[i].instance);
    }
    for (size_t i = 0; i < ctx->n_sources; i++) {
        free(ctx->sources[i].source);
        free(ctx->sources[i].service);
    }
    sp_status_remove(ctx);
    join_status_free(ctx->status);
    join_index_destroy(ctx->ix);
    join_names_destroy(ctx->names);
    free(ctx);
    comp->ctx = NULL;
}

static const struct sp_conf_key join_keys[] = {
    {.name = "join_delay", .type = SP_CONF_DURATION,
     .offset = offsetof(struct join_conf, join_delay_ms), .defval = "10s",
     .doc = "how long after a span ends its SDK may take to export it (batch delay + export); "
            "a service whose profiles stop coming has its held ids given up a period + this "
            "later"},
    {.name = "max_hold", .type = SP_CONF_DURATION,
     .offset = offsetof(struct join_conf, max_hold_ms), .defval = "120s",
     .doc = "longest a profile is held waiting for the spans its samples name (requests longer "
            "than this lose their endpoint); 0 labels every profile on arrival"},
    {.name = "hold_grace", .type = SP_CONF_DURATION,
     .offset = offsetof(struct join_conf, hold_grace_ms), .defval = "30s",
     .doc = "how long a held profile still waits for a span whose id stopped showing in the "
            "service's newer profiles (a parent's samples stop while its child spans run); "
            "unsampled traces are held about this long"},
    {.name = "span_ttl", .type = SP_CONF_DURATION,
     .offset = offsetof(struct join_conf, span_ttl_ms), .defval = "190s",
     .doc = "how long a span stays in the index after arrival; at least max_hold + join_delay "
            "(default: that plus a 60 s profile window)"},
    {.name = "max_spans", .type = SP_CONF_INT, .offset = offsetof(struct join_conf, max_spans),
     .defval = "1000000",
     .doc = "span index bound (about 21 bytes per span); the oldest are evicted beyond it"},
    {.name = "max_held_profiles", .type = SP_CONF_INT,
     .offset = offsetof(struct join_conf, max_held_profiles), .defval = "256",
     .doc = "profiles held at once; when full the oldest is labelled early (counted)"},
    {.name = "max_held_bytes", .type = SP_CONF_SIZE,
     .offset = offsetof(struct join_conf, max_held_bytes), .defval = "64MiB",
     .doc = "bytes of held profiles (encoded, as received) at once; when full the oldest is "
            "labelled early (counted)"},
    {.name = "endpoint_cardinality_limit", .type = SP_CONF_INT,
     .offset = offsetof(struct join_conf, endpoint_cardinality_limit), .defval = "1000",
     .doc = "distinct endpoints per service; local roots beyond it get no `trace endpoint`"},
    {.name = "max_depth", .type = SP_CONF_INT, .offset = offsetof(struct join_conf, max_depth),
     .defval = "64", .doc = "parent links walked to find a local root (bounds cycles)"},
    {.name = "span_id_labels", .type = SP_CONF_STRLIST,
     .offset = offsetof(struct join_conf, span_id_labels),
     .doc = "extra pprof label keys holding a span id, besides `span_id` and `span id`"},
    {.name = "label_all_roots", .type = SP_CONF_BOOL,
     .offset = offsetof(struct join_conf, label_all_roots), .defval = "false",
     .doc = "also label (and count) consumer, producer and other custom-typed local roots, even "
            "when their resource is a database statement; false: only the roots dd-trace-go "
            "labels (server/web, rpc and untyped internal roots)"},
    {.name = "status_window", .type = SP_CONF_DURATION,
     .offset = offsetof(struct join_conf, status_window_ms), .defval = "5m",
     .doc = "how far back the status page's CPU-by-endpoint bars look (30s to 24h)"},
};

const struct sp_component_type sp_join_processor_type = {
    .name = "join",
    .kind = SP_KIND_PROCESSOR,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .flags = SP_COMP_MUTATES,
    .doc = "indexes spans and labels profile samples with Datadog's span id, local root span id "
           "and trace endpoint",
    .conf_keys = join_keys,
    .conf_key_count = sizeof(join_keys) / sizeof(join_keys[0]),
    .conf_size = sizeof(struct join_conf),
    .create = join_create,
    .start = join_start,
    .consume = join_consume,
    .shutdown = join_shutdown,
    .destroy = join_destroy,
};
