/* Test harness for the join processor (header only, tests/unit/test_join*.c
 * and tests/integration/join_*.c): runs the real component through its
 * vtable on a real libuv loop, with its config filled by the real YAML
 * loader, and a sink component behind it; builds OTLP trace batches and
 * pprof profiles; reads labels back. */
#ifndef SP_TEST_JOIN_LIB_H
#define SP_TEST_JOIN_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <unistd.h>

#include <uv.h>

#include "pprof_codec.h"
#include "sp_component.h"
#include "sp_config.h"
#include "sp_metrics.h"
#include "sp_registry.h"
#include "sp_test.h"

extern const struct sp_component_type sp_join_processor_type;

/* ---- the sink behind the join ---- */

#define JT_SINK_MAX 256

struct jt_sink {
    struct sp_batch *got[JT_SINK_MAX];
    size_t n;
    int refuse; /* answer SP_EFULL */
};

static struct jt_sink jt_sink_state;

static int jt_sink_consume(struct sp_component *c, struct sp_batch *b)
{
    (void)c;
    if (jt_sink_state.refuse)
        return SP_EFULL;
    if (jt_sink_state.n < JT_SINK_MAX)
        jt_sink_state.got[jt_sink_state.n++] = sp_batch_ref(b);
    return SP_OK;
}

static const struct sp_component_type jt_sink_type = {
    .name = "sink",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .consume = jt_sink_consume,
};

static void jt_sink_clear(void)
{
    for (size_t i = 0; i < jt_sink_state.n; i++)
        sp_batch_unref(jt_sink_state.got[i]);
    memset(&jt_sink_state, 0, sizeof jt_sink_state);
}

/* The last batch of a signal the sink received, or NULL. */
static inline struct sp_batch *jt_sink_last(enum sp_signal s)
{
    for (size_t i = jt_sink_state.n; i-- > 0;)
        if (jt_sink_state.got[i]->signal == s)
            return jt_sink_state.got[i];
    return NULL;
}

static inline size_t jt_sink_count(enum sp_signal s)
{
    size_t n = 0;
    for (size_t i = 0; i < jt_sink_state.n; i++)
        n += jt_sink_state.got[i]->signal == s;
    return n;
}

/* ---- the join under test ---- */

struct jt {
    uv_loop_t loop;
    struct sp_service_conf *conf;
    struct sp_component comp;
    struct sp_component sink;
    struct sp_component *sinkp;
    struct sp_host host;
    bool done;
    char path[64];
};

static void jt_on_done(struct sp_component *c)
{
    struct jt *t = (struct jt *)((char *)c - offsetof(struct jt, comp));
    t->done = true;
}

/* join_keys: YAML lines under `join:`, each indented by 4 spaces. */
static inline int jt_open(struct jt *t, const char *join_keys)
{
    memset(t, 0, sizeof *t);
    jt_sink_clear();
    sp_metrics_reset();
    uv_loop_init(&t->loop);
    snprintf(t->path, sizeof t->path, "/tmp/test-join-XXXXXX");
    int fd = mkstemp(t->path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            /* Receivers are only named (the pipelines need them), never created. */
            "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:1\n"
            "  pprof:\n    endpoint: 127.0.0.1:1\n"
            "processors:\n  join:\n%s\nexporters:\n  debug:\n"
            "service:\n  pipelines:\n"
            "    traces: {receivers: [otlp], processors: [join], exporters: [debug]}\n"
            "    profiles: {receivers: [pprof], processors: [join], exporters: [debug]}\n",
            join_keys && *join_keys ? join_keys : "    join_delay: 0s\n    max_hold: 0s");
    fclose(f);
    const char *files[] = {t->path};
    struct sp_diag d = {0};
    int rc = sp_service_conf_load(&sp_registry, files, 1, &t->conf, &d);
    if (rc < 0) {
        fprintf(stderr, "  config: %s\n", d.text.data ? (const char *)d.text.data : "");
        sp_diag_free(&d);
        unlink(t->path);
        return rc;
    }
    sp_diag_free(&d);
    struct sp_conf_component *cc = NULL;
    for (size_t i = 0; i < t->conf->component_count; i++)
        if (strcmp(t->conf->components[i].id, "join") == 0)
            cc = &t->conf->components[i];
    t->sink.type = &jt_sink_type;
    t->sink.id = (char *)"sink";
    t->sinkp = &t->sink;
    t->comp.type = &sp_join_processor_type;
    t->comp.id = (char *)"join";
    t->comp.conf = cc->conf;
    t->comp.conf_ctx = cc->ctx;
    t->comp.loop = &t->loop;
    t->comp.metric_labels = (char *)"component=\"join\"";
    for (int s = 0; s < SP_SIGNAL_COUNT; s++) {
        t->comp.next[s].v = &t->sinkp;
        t->comp.next[s].n = 1;
    }
    struct sp_err err = {0};
    rc = sp_join_processor_type.create(&t->comp, &err);
    if (rc < 0) {
        fprintf(stderr, "  create: %s\n", err.msg);
        return rc;
    }
    t->host.state = SP_SERVICE_RUNNING;
    t->host.loop = &t->loop;
    t->comp.host = &t->host;
    return sp_join_processor_type.start(&t->comp, &t->host, &err);
}

static inline int jt_consume(struct jt *t, struct sp_batch *b)
{
    int rc = sp_join_processor_type.consume(&t->comp, b);
    sp_batch_unref(b); /* the caller's (receiver's) reference */
    return rc;
}

/* Runs the loop until the sink has `want` profiles or timeout_ms passes. */
static inline void jt_wait_profiles(struct jt *t, size_t want, uint64_t timeout_ms)
{
    uint64_t end = uv_now(&t->loop) + timeout_ms;
    while (jt_sink_count(SP_SIGNAL_PROFILES) < want && uv_now(&t->loop) < end) {
        uv_run(&t->loop, UV_RUN_ONCE);
        uv_update_time(&t->loop);
    }
}

static inline void jt_close(struct jt *t)
{
    sp_join_processor_type.shutdown(&t->comp, jt_on_done);
    while (!t->done)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    sp_join_processor_type.destroy(&t->comp);
    uv_loop_close(&t->loop);
    sp_service_conf_free(t->conf);
    unlink(t->path);
}

static inline double jt_metric(const char *name, const char *labels)
{
    struct sp_metric *m = sp_metric_find(name, labels);
    return m ? sp_metric_value(m) : -1;
}

/* ---- OTLP trace batches ---- */

struct jt_span {
    uint64_t id, parent;
    uint32_t flags;
    int kind; /* 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
    const char *name;
    int64_t start_ns;
    const char *attrs[6]; /* "key=value" strings */
};

static inline uint8_t *jt_be64(struct sp_arena *a, uint64_t v)
{
    uint8_t *p = sp_arena_alloc(a, 8);
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
    return p;
}

static inline sp_otlp_kv *jt_kv(struct sp_arena *a, const char *key, const char *val)
{
    sp_otlp_kv *kv = sp_arena_calloc(a, 1, sizeof *kv);
    sp_otlp_any *v = sp_arena_calloc(a, 1, sizeof *v);
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = sp_arena_strdup(a, key);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = sp_arena_strdup(a, val);
    kv->value = v;
    return kv;
}

static inline struct sp_batch *jt_traces_new(void)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    sp_otlp_request *req = sp_arena_calloc(b->arena, 1, sizeof *req);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    req->resource_spans = sp_arena_calloc(b->arena, 64, sizeof *req->resource_spans);
    b->u.traces.req = req;
    return b;
}

/* Adds a ResourceSpans (one scope) for service; extra: "k=v" resource
 * attributes, NULL-terminated or NULL. */
static inline sp_otlp_scope_spans *jt_traces_resource(struct sp_batch *b, const char *service,
                                                      const char *const *extra, size_t max_spans)
{
    struct sp_arena *a = b->arena;
    sp_otlp_request *req = b->u.traces.req;
    sp_otlp_resource_spans *rs = sp_arena_calloc(a, 1, sizeof *rs);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    Opentelemetry__Proto__Resource__V1__Resource *res = sp_arena_calloc(a, 1, sizeof *res);
    opentelemetry__proto__resource__v1__resource__init(res);
    res->attributes = sp_arena_calloc(a, 8, sizeof *res->attributes);
    res->attributes[res->n_attributes++] = jt_kv(a, "service.name", service);
    for (size_t i = 0; extra && extra[i] && i < 6; i++) {
        const char *eq = strchr(extra[i], '=');
        char *k = sp_arena_strndup(a, extra[i], (size_t)(eq - extra[i]));
        res->attributes[res->n_attributes++] = jt_kv(a, k, eq + 1);
    }
    rs->resource = res;
    rs->scope_spans = sp_arena_calloc(a, 1, sizeof *rs->scope_spans);
    sp_otlp_scope_spans *ss = sp_arena_calloc(a, 1, sizeof *ss);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->spans = sp_arena_calloc(a, max_spans ? max_spans : 1, sizeof *ss->spans);
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    req->resource_spans[req->n_resource_spans++] = rs;
    return ss;
}

static inline void jt_traces_span(struct sp_batch *b, sp_otlp_scope_spans *ss,
                                  const struct jt_span *js)
{
    struct sp_arena *a = b->arena;
    sp_otlp_span *sp = sp_arena_calloc(a, 1, sizeof *sp);
    opentelemetry__proto__trace__v1__span__init(sp);
    uint8_t *tid = sp_arena_calloc(a, 16, 1);
    tid[15] = 1;
    sp->trace_id.data = tid;
    sp->trace_id.len = 16;
    sp->span_id.data = jt_be64(a, js->id);
    sp->span_id.len = 8;
    if (js->parent) {
        sp->parent_span_id.data = jt_be64(a, js->parent);
        sp->parent_span_id.len = 8;
    }
    sp->flags = js->flags;
    sp->kind = js->kind;
    sp->name = sp_arena_strdup(a, js->name ? js->name : "span");
    sp->start_time_unix_nano = (uint64_t)js->start_ns;
    sp->end_time_unix_nano = (uint64_t)js->start_ns + 1000;
    sp->attributes = sp_arena_calloc(a, 6, sizeof *sp->attributes);
    for (size_t i = 0; i < 6 && js->attrs[i]; i++) {
        const char *eq = strchr(js->attrs[i], '=');
        char *k = sp_arena_strndup(a, js->attrs[i], (size_t)(eq - js->attrs[i]));
        sp->attributes[sp->n_attributes++] = jt_kv(a, k, eq + 1);
    }
    ss->spans[ss->n_spans++] = sp;
    b->u.traces.span_count++;
}

/* ---- pprof profiles ---- */

static inline int64_t jt_str(sp_pprof *p, struct sp_arena *a, const char *s)
{
    return sp_pprof_intern(p, a, s);
}

/* A profile with sample types samples/count and <type>/nanoseconds. */
static inline sp_pprof *jt_pprof_new(struct sp_arena *a, const char *type, size_t max_samples)
{
    sp_pprof *p = sp_arena_calloc(a, 1, sizeof *p);
    perftools__profiles__profile__init(p);
    p->string_table = sp_arena_calloc(a, 1, sizeof(char *));
    p->string_table[0] = (char *)"";
    p->n_string_table = 1;
    p->sample_type = sp_arena_calloc(a, 2, sizeof *p->sample_type);
    const char *types[2][2] = {{"samples", "count"}, {type, "nanoseconds"}};
    for (int i = 0; i < 2; i++) {
        Perftools__Profiles__ValueType *vt = sp_arena_calloc(a, 1, sizeof *vt);
        perftools__profiles__value_type__init(vt);
        vt->type = jt_str(p, a, types[i][0]);
        vt->unit = jt_str(p, a, types[i][1]);
        p->sample_type[p->n_sample_type++] = vt;
    }
    p->sample = sp_arena_calloc(a, max_samples, sizeof *p->sample);
    return p;
}

/* Adds a sample with labels given as "key=str" or "key#num", NULL-ended. */
static inline Perftools__Profiles__Sample *jt_sample(sp_pprof *p, struct sp_arena *a,
                                                     int64_t value, ...)
{
    Perftools__Profiles__Sample *s = sp_arena_calloc(a, 1, sizeof *s);
    perftools__profiles__sample__init(s);
    s->value = sp_arena_calloc(a, 2, sizeof *s->value);
    s->value[0] = 1;
    s->value[1] = value;
    s->n_value = 2;
    s->label = sp_arena_calloc(a, 8, sizeof *s->label);
    va_list ap;
    va_start(ap, value);
    const char *spec;
    while ((spec = va_arg(ap, const char *)) != NULL && s->n_label < 8) {
        const char *sep = strpbrk(spec, "=#");
        Perftools__Profiles__Label *l = sp_arena_calloc(a, 1, sizeof *l);
        perftools__profiles__label__init(l);
        char *k = sp_arena_strndup(a, spec, (size_t)(sep - spec));
        l->key = jt_str(p, a, k);
        if (*sep == '=')
            l->str = jt_str(p, a, sep + 1);
        else
            l->num = (int64_t)strtoull(sep + 1, NULL, 10);
        s->label[s->n_label++] = l;
    }
    va_end(ap);
    p->sample[p->n_sample++] = s;
    return s;
}

/* A profile batch with one attachment holding p (built in b's arena). */
static inline struct sp_batch *jt_profile_new(const char *service, const char *att_name,
                                              bool labelled)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_PROFILES, 0);
    struct sp_profile *pr = &b->u.profile;
    pr->dialect = "pprof";
    pr->service = service ? sp_arena_strdup(b->arena, service) : NULL;
    pr->attachments = sp_arena_calloc(b->arena, 4, sizeof *pr->attachments);
    pr->attachments[0].name = sp_arena_strdup(b->arena, att_name);
    pr->attachments[0].labelled_type = labelled;
    pr->attachment_count = 1;
    return b;
}

static inline size_t jt_label_count(const sp_pprof *p, const Perftools__Profiles__Sample *s,
                                    const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_label; i++) {
        const char *k = sp_pprof_str(p, s->label[i]->key);
        n += k && strcmp(k, key) == 0;
    }
    return n;
}

/* The string value of the first label key, or NULL. */
static inline const char *jt_label_str(const sp_pprof *p, const Perftools__Profiles__Sample *s,
                                       const char *key)
{
    for (size_t i = 0; i < s->n_label; i++) {
        const char *k = sp_pprof_str(p, s->label[i]->key);
        if (k && strcmp(k, key) == 0)
            return s->label[i]->str ? sp_pprof_str(p, s->label[i]->str) : NULL;
    }
    return NULL;
}

static inline const char *jt_u64(uint64_t v)
{
    static char bufs[8][24];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 24, "%" PRIu64, v);
    return b;
}

#endif
