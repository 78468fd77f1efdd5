/* The service configuration: the Collector-shaped document as a whole.
 *
 * Reads the files (or the embedded default), merges them, builds one
 * sp_conf_component per `type[/name]` under receivers/processors/exporters/
 * extensions (each filled through its type's key table), then checks the
 * graph in service.pipelines: every id defined, every receiver, processor
 * and exporter able to carry the pipeline's signal, no processor instance
 * in two pipelines of one signal (it has one `next` list per signal), and
 * warns about components nothing uses (they are not created). Every
 * problem is collected so one `spanprof validate` run shows them all.
 * Also print-config (from the typed structs, so secrets are redacted by
 * type, not by guessing) and the Markdown reference. */
#include "sp_conf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sp_log.h"

struct sp_conf_internal {
    struct sp_arena *arena;
    const char **files; /* names used in messages, for sp_service_conf_msg_has_pos */
    size_t nfiles;
};

/* The service section's own keys (pipelines are walked by hand). */
struct sp_svc_logs {
    char *level;
    char *format;
};
struct sp_svc_metrics {
    char *address;
};
struct sp_svc_telemetry {
    struct sp_svc_logs logs;
    struct sp_svc_metrics metrics;
};
struct sp_svc_raw {
    struct sp_strlist extensions;
    struct sp_svc_telemetry telemetry;
    int64_t shutdown_timeout;
    uint64_t memory_limit;
};

static const struct sp_conf_key sp_svc_logs_keys[] = {
    {"level", SP_CONF_STRING, offsetof(struct sp_svc_logs, level), "info", NULL, 0, 0, 0,
     "log level: debug, info, warn or error"},
    {"format", SP_CONF_STRING, offsetof(struct sp_svc_logs, format), "logfmt", NULL, 0, 0, 0,
     "log line format on stderr: logfmt or json"},
};
static const struct sp_conf_key sp_svc_metrics_keys[] = {
    {"address", SP_CONF_STRING, offsetof(struct sp_svc_metrics, address), "127.0.0.1:8888", NULL,
     0, 0, 0, "host:port serving Prometheus text at GET /metrics; empty turns it off"},
};
static const struct sp_conf_key sp_svc_telemetry_keys[] = {
    {"logs", SP_CONF_BLOCK, offsetof(struct sp_svc_telemetry, logs), NULL, sp_svc_logs_keys,
     SP_CONF_END_COUNT(sp_svc_logs_keys), 0, 0, "spanprof's own logs"},
    {"metrics", SP_CONF_BLOCK, offsetof(struct sp_svc_telemetry, metrics), NULL,
     sp_svc_metrics_keys, SP_CONF_END_COUNT(sp_svc_metrics_keys), 0, 0,
     "spanprof's own metrics (self-telemetry)"},
};
static const struct sp_conf_key sp_svc_keys[] = {
    {"extensions", SP_CONF_STRLIST, offsetof(struct sp_svc_raw, extensions), NULL, NULL, 0, 0, 0,
     "ids of the extensions to start, in order (e.g. [health_check])"},
    {"telemetry", SP_CONF_BLOCK, offsetof(struct sp_svc_raw, telemetry), NULL,
     sp_svc_telemetry_keys, SP_CONF_END_COUNT(sp_svc_telemetry_keys), 0, 0,
     "logs and self-metrics"},
    {"shutdown_timeout", SP_CONF_DURATION, offsetof(struct sp_svc_raw, shutdown_timeout), "10s",
     NULL, 0, 0, 0,
     "on SIGTERM/SIGINT, how long processors and exporters may flush before spanprof exits"},
    {"memory_limit", SP_CONF_SIZE, offsetof(struct sp_svc_raw, memory_limit), "256MiB", NULL, 0,
     0, 0,
     "memory ceiling for everything spanprof holds (request bodies, batches, held profiles, "
     "exporter queues, span index); above 80 % receivers refuse new requests, the limit itself "
     "is never passed"},
};

static const char *const sp_top_keys[] = {"receivers", "processors", "exporters", "extensions",
                                          "service"};
static const char *const sp_service_key_names[] = {"extensions", "pipelines", "telemetry",
                                                   "shutdown_timeout", "memory_limit"};
#define SP_SERVICE_KEY_COUNT (sizeof(sp_service_key_names) / sizeof(sp_service_key_names[0]))
static const char *const sp_pipeline_keys[] = {"receivers", "processors", "exporters"};
static const char *const sp_log_level_names[] = {"debug", "info", "warn", "error"};

static const char *sp_section_name(enum sp_kind k)
{
    switch (k) {
    case SP_KIND_RECEIVER: return "receivers";
    case SP_KIND_PROCESSOR: return "processors";
    case SP_KIND_EXPORTER: return "exporters";
    case SP_KIND_EXTENSION: return "extensions";
    }
    return "?";
}

static const char *sp_kind_article(enum sp_kind k)
{
    return k == SP_KIND_EXPORTER || k == SP_KIND_EXTENSION ? "an" : "a";
}

static void sp_quote_into(struct sp_buf *b, const char *s)
{
    sp_buf_reset(b);
    sp_conf_quote(b, s, strlen(s));
}

/* ---- reading ---- */

static int sp_read_file(const char *path, struct sp_buf *out, struct sp_diag *d)
{
    struct sp_conf_pos pos = {path, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        sp_diag_error(d, &pos, "cannot read the configuration: %s", strerror(errno));
        return SP_EIO;
    }
    /* Read in chunks rather than trusting st_size: pipes and /dev/fd work
     * too. A regular file's size is reserved first so no grown-out copy of
     * the text (and the secrets in it) is left behind in freed memory. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= SP_CONF_MAX_FILE_BYTES)
        sp_buf_reserve(out, (size_t)st.st_size);
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > SP_CONF_MAX_FILE_BYTES) {
            sp_diag_error(d, &pos, "file is larger than the %u MiB limit",
                          SP_CONF_MAX_FILE_BYTES >> 20);
            rc = SP_ETOOBIG;
            break;
        }
        if (sp_buf_append(out, chunk, n) != 0) {
            sp_diag_error(d, &pos, "out of memory while reading the configuration");
            rc = SP_ENOMEM;
            break;
        }
    }
    if (!rc && ferror(f)) {
        sp_diag_error(d, &pos, "cannot read the configuration: %s", strerror(errno));
        rc = SP_EIO;
    }
    explicit_bzero(chunk, sizeof(chunk));
    fclose(f);
    return rc;
}

/* ---- components ---- */

struct sp_loader {
    const struct sp_node *root;
    struct sp_arena *arena;
    struct sp_diag *d;
    struct sp_service_conf *conf;
    const struct sp_component_set *types; /* the service's registry */
    struct sp_buf q; /* scratch for quoting */
    struct sp_buf q2;
    /* Collector components accepted and ignored (batch, memory_limiter,
     * the pprof extension...): pipelines and service.extensions skip them. */
    struct {
        enum sp_kind kind;
        const char *id;
    } ignored[64];
    size_t n_ignored;
    /* A Collector memory_limiter, mapped onto service.memory_limit once the
     * service section is read (unless that sets memory_limit itself). */
    const struct sp_node *memory_limiter;
    const char *memory_limiter_id;
    struct sp_conf_pos memory_limiter_pos;
};

static bool sp_is_ignored(const struct sp_loader *L, enum sp_kind kind, const char *id)
{
    for (size_t i = 0; i < L->n_ignored; i++)
        if (L->ignored[i].kind == kind && strcmp(L->ignored[i].id, id) == 0)
            return true;
    return false;
}

/* A type the Collector has and spanprof does not: says what to do instead.
 * Returns false when the type is not one of them. */
static bool sp_otelcol_type(struct sp_loader *L, enum sp_kind kind, const char *id,
                            const char *type, const struct sp_node *value,
                            const struct sp_conf_pos *pos)
{
    const struct sp_otelcol_component *oc = sp_otelcol_component(kind, type);
    if (!oc)
        return false;
    const char *kn = sp_kind_name(kind);
    bool mapped = kind == SP_KIND_PROCESSOR && strcmp(type, "memory_limiter") == 0 &&
                  !L->memory_limiter;
    if (mapped) {
        /* Reported by sp_map_memory_limiter, after the service section. */
        L->memory_limiter = value;
        L->memory_limiter_id = sp_arena_strdup(L->arena, id);
        L->memory_limiter_pos = *pos;
    }
    switch (mapped ? SP_OTELCOL_IGNORE_INFO : oc->action) {
    case SP_OTELCOL_IGNORE_INFO:
        if (!mapped)
            sp_diag_info(L->d, pos, "%s '%s' is accepted and ignored: %s", kn, id, oc->hint);
        break;
    case SP_OTELCOL_IGNORE_WARN:
        sp_diag_warn(L->d, pos, "%s '%s' (OpenTelemetry Collector) is ignored: %s", kn, id,
                     oc->hint);
        break;
    case SP_OTELCOL_ERROR:
        sp_diag_error(L->d, pos, "%s '%s' is an OpenTelemetry Collector component spanprof does "
                      "not have: %s", kn, id, oc->hint);
        return true;
    }
    if (L->n_ignored < sizeof(L->ignored) / sizeof(L->ignored[0])) {
        L->ignored[L->n_ignored].kind = kind;
        L->ignored[L->n_ignored].id = sp_arena_strdup(L->arena, id);
        if (L->ignored[L->n_ignored].id)
            L->n_ignored++;
    }
    return true;
}

/* Component ids are type[/name]: the type is what the registry knows,
 * the name anything without blanks. */
static bool sp_check_id(struct sp_loader *L, const char *id, const struct sp_conf_pos *pos,
                        const char *what, char *type_out, size_t type_len)
{
    const char *slash = strchr(id, '/');
    size_t tl = slash ? (size_t)(slash - id) : strlen(id);
    sp_quote_into(&L->q, id);
    if (tl == 0 || tl >= type_len) {
        sp_diag_error(L->d, pos, "invalid %s id %s: expected type[/name]", what,
                      (const char *)L->q.data);
        return false;
    }
    for (size_t i = 0; i < tl; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            sp_diag_error(L->d, pos, "invalid %s id %s: the type may hold only letters, "
                          "digits and '_'", what, (const char *)L->q.data);
            return false;
        }
    }
    if (slash) {
        const char *name = slash + 1;
        if (!*name || strlen(name) > 256) {
            sp_diag_error(L->d, pos, "invalid %s id %s: the name after '/' must be 1 to 256 "
                          "characters", what, (const char *)L->q.data);
            return false;
        }
        for (const char *c = name; *c; c++) {
            if (*c == '/' || *c == ' ' || (unsigned char)*c < 0x20) {
                sp_diag_error(L->d, pos, "invalid %s id %s: the name after '/' may not hold "
                              "'/', blanks or control characters", what,
                              (const char *)L->q.data);
                return false;
            }
        }
    }
    memcpy(type_out, id, tl);
    type_out[tl] = '\0';
    return true;
}

static void sp_unknown_type(struct sp_loader *L, enum sp_kind kind, const char *type,
                            const struct sp_conf_pos *pos)
{
    size_t count = L->types->count;
    const struct sp_component_type *const *all = L->types->types;
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < count && n < 64; i++)
        if (all[i]->kind == kind)
            names[n++] = all[i]->name;
    sp_quote_into(&L->q, type);
    const char *best = sp_conf_suggest(type, names, n);
    if (best) {
        sp_diag_error(L->d, pos, "unknown %s type %s (did you mean '%s'?)", sp_kind_name(kind),
                      (const char *)L->q.data, best);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (all[i]->kind != kind && strcmp(all[i]->name, type) == 0) {
            sp_diag_error(L->d, pos, "unknown %s type %s: '%s' is %s %s, define it under %s",
                          sp_kind_name(kind), (const char *)L->q.data, type,
                          sp_kind_article(all[i]->kind), sp_kind_name(all[i]->kind),
                          sp_section_name(all[i]->kind));
            return;
        }
    }
    sp_buf_reset(&L->q2);
    for (size_t i = 0; i < n; i++)
        sp_buf_printf(&L->q2, "%s%s", i ? ", " : "", names[i]);
    sp_diag_error(L->d, pos, "unknown %s type %s (available: %s)", sp_kind_name(kind),
                  (const char *)L->q.data, n ? (const char *)L->q2.data : "none");
}

static void sp_load_section(struct sp_loader *L, enum sp_kind kind, const struct sp_node *root)
{
    const struct sp_node_pair *sp = NULL;
    const struct sp_node *sec = sp_node_get(root, sp_section_name(kind), &sp);
    if (!sec || sec->kind == SP_NODE_NULL)
        return;
    if (sec->kind != SP_NODE_MAP) {
        sp_diag_error(L->d, &sec->pos, "%s: expected a mapping of component ids to settings, "
                      "got %s", sp_section_name(kind), sp_node_kind_name(sec));
        return;
    }
    struct sp_service_conf *conf = L->conf;
    for (size_t i = 0; i < sec->npairs; i++) {
        const struct sp_node_pair *p = &sec->pairs[i];
        char type[128];
        if (!sp_check_id(L, p->key, &p->key_pos, sp_kind_name(kind), type, sizeof(type)))
            continue;
        const struct sp_component_type *t = sp_component_set_find(L->types, kind, type);
        if (!t) {
            if (!sp_otelcol_type(L, kind, p->key, type, p->value, &p->key_pos))
                sp_unknown_type(L, kind, type, &p->key_pos);
            continue;
        }
        struct sp_conf_component *c = &conf->components[conf->component_count];
        struct sp_conf_ctx *ctx = sp_arena_calloc(L->arena, 1, sizeof(*ctx));
        c->conf = sp_arena_calloc(L->arena, 1, t->conf_size ? t->conf_size : 1);
        c->id = sp_arena_strdup(L->arena, p->key);
        if (!ctx || !c->conf || !c->id) {
            sp_diag_error(L->d, &p->key_pos, "out of memory");
            return;
        }
        ctx->arena = L->arena;
        ctx->pos = p->key_pos;
        ctx->prefix = sp_arena_sprintf(L->arena, "%s.%s", sp_section_name(kind), p->key);
        c->kind = kind;
        c->type = t;
        c->ctx = ctx;
        c->pos = p->key_pos;
        sp_conf_fill(ctx, t->conf_keys, t->conf_key_count, c->conf, p->value, "", &p->key_pos,
                     L->d);
        conf->component_count++;
    }
}

static struct sp_conf_component *sp_find_comp(struct sp_service_conf *conf, enum sp_kind kind,
                                              const char *id)
{
    for (size_t i = 0; i < conf->component_count; i++)
        if (conf->components[i].kind == kind && strcmp(conf->components[i].id, id) == 0)
            return &conf->components[i];
    return NULL;
}

static void sp_signals_text(struct sp_buf *b, unsigned mask)
{
    sp_buf_reset(b);
    for (int s = 0; s < SP_SIGNAL_COUNT; s++)
        if (mask & SP_SIGNAL_BIT(s))
            sp_buf_printf(b, "%s%s", b->len ? " and " : "", sp_signal_name((enum sp_signal)s));
    if (!b->len)
        sp_buf_append_str(b, "no signal");
}

/* Reports an id a pipeline or service.extensions names but nobody defines. */
static void sp_undefined_ref(struct sp_loader *L, enum sp_kind kind, const char *id,
                             const struct sp_conf_pos *pos, const char *where)
{
    struct sp_service_conf *conf = L->conf;
    if (!*id) {
        sp_diag_error(L->d, pos, "%s names an empty %s id (an unset environment variable?)",
                      where, sp_kind_name(kind));
        return;
    }
    /* Defined, but its definition failed (unknown type, bad id): that was
     * reported where it is defined; a second error here is only noise. */
    if (sp_node_get(sp_node_get(L->root, sp_section_name(kind), NULL), id, NULL))
        return;
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < conf->component_count && n < 256; i++)
        if (conf->components[i].kind == kind)
            names[n++] = conf->components[i].id;
    sp_quote_into(&L->q, id);
    const char *best = sp_conf_suggest(id, names, n);
    if (best) {
        sp_diag_error(L->d, pos, "%s names %s %s which is not defined in %s (did you mean "
                      "'%s'?)", where, sp_kind_name(kind), (const char *)L->q.data,
                      sp_section_name(kind), best);
        return;
    }
    for (int k = 0; k < 4; k++) {
        if ((enum sp_kind)k != kind && sp_find_comp(conf, (enum sp_kind)k, id)) {
            sp_diag_error(L->d, pos, "%s names %s %s, but '%s' is defined as %s %s", where,
                          sp_kind_name(kind), (const char *)L->q.data, id,
                          sp_kind_article((enum sp_kind)k), sp_kind_name((enum sp_kind)k));
            return;
        }
    }
    sp_diag_error(L->d, pos, "%s names %s %s which is not defined in %s", where,
                  sp_kind_name(kind), (const char *)L->q.data, sp_section_name(kind));
}

/* Fills one of a pipeline's three lists. */
static void sp_pipeline_list(struct sp_loader *L, struct sp_conf_pipeline *pl, enum sp_kind kind,
                             const struct sp_node *pnode, const struct sp_conf_pos *ppos,
                             struct sp_conf_component ***out, size_t *count)
{
    const char *key = sp_section_name(kind);
    const struct sp_node_pair *pair = NULL;
    const struct sp_node *v = sp_node_get(pnode, key, &pair);
    const char *where = sp_arena_sprintf(L->arena, "pipeline '%s'", pl->name);
    if (!where)
        return;
    if (!v || v->kind == SP_NODE_NULL || (v->kind == SP_NODE_SEQ && v->nitems == 0)) {
        if (kind != SP_KIND_PROCESSOR)
            sp_diag_error(L->d, pair ? &pair->key_pos : ppos,
                          "%s needs at least one %s in service.pipelines.%s.%s", where,
                          sp_kind_name(kind), pl->name, key);
        return;
    }
    if (v->kind != SP_NODE_SEQ) {
        sp_diag_error(L->d, &v->pos, "service.pipelines.%s.%s: expected a list of %s ids like "
                      "[a, b], got %s", pl->name, key, sp_kind_name(kind), sp_node_kind_name(v));
        return;
    }
    *out = sp_arena_calloc(L->arena, v->nitems, sizeof(**out));
    if (!*out)
        return;
    for (size_t i = 0; i < v->nitems; i++) {
        const struct sp_node *it = v->items[i];
        if (it->kind != SP_NODE_SCALAR) {
            sp_diag_error(L->d, &it->pos, "service.pipelines.%s.%s[%zu]: expected a %s id, "
                          "got %s", pl->name, key, i, sp_kind_name(kind), sp_node_kind_name(it));
            continue;
        }
        struct sp_conf_component *c = sp_find_comp(L->conf, kind, it->str);
        if (!c && sp_is_ignored(L, kind, it->str))
            continue;
        if (!c) {
            sp_undefined_ref(L, kind, it->str, &it->pos, where);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < *count && !dup; j++)
            dup = (*out)[j] == c;
        if (dup) {
            sp_diag_error(L->d, &it->pos, "%s lists %s '%s' twice", where, sp_kind_name(kind),
                          c->id);
            continue;
        }
        if (!(c->type->signals & SP_SIGNAL_BIT(pl->signal))) {
            sp_signals_text(&L->q2, c->type->signals);
            bool fwd = kind == SP_KIND_EXPORTER &&
                       (pl->signal == SP_SIGNAL_METRICS || pl->signal == SP_SIGNAL_LOGS);
            sp_diag_error(L->d, &it->pos, "%s '%s' does not support %s (it supports %s), so it "
                          "cannot be in pipeline '%s'%s", sp_kind_name(kind), c->id,
                          sp_signal_name(pl->signal), (const char *)L->q2.data, pl->name,
                          fwd ? "; spanprof forwards metrics and logs with an otlphttp exporter "
                                "(e.g. to the node's Datadog Agent OTLP intake, "
                                "http://${env:HOST_IP}:4318)"
                              : "");
            continue;
        }
        c->used = true;
        (*out)[(*count)++] = c;
    }
}

static bool sp_parse_signal(const char *s, size_t n, enum sp_signal *out)
{
    for (int i = 0; i < SP_SIGNAL_COUNT; i++) {
        const char *name = sp_signal_name((enum sp_signal)i);
        if (strlen(name) == n && strncmp(s, name, n) == 0) {
            *out = (enum sp_signal)i;
            return true;
        }
    }
    return false;
}

static void sp_load_pipelines(struct sp_loader *L, const struct sp_node *svc,
                              const struct sp_conf_pos *svc_pos)
{
    struct sp_service_conf *conf = L->conf;
    const struct sp_node_pair *pp = NULL;
    const struct sp_node *pls = sp_node_get(svc, "pipelines", &pp);
    if (!pls || pls->kind == SP_NODE_NULL || (pls->kind == SP_NODE_MAP && pls->npairs == 0)) {
        sp_diag_error(L->d, pp ? &pp->key_pos : svc_pos,
                      "missing 'service.pipelines': define at least one pipeline, e.g. "
                      "service.pipelines.traces with receivers and exporters");
        return;
    }
    if (pls->kind != SP_NODE_MAP) {
        sp_diag_error(L->d, &pls->pos, "service.pipelines: expected a mapping of pipeline ids "
                      "(traces, profiles, traces/name) to pipelines, got %s",
                      sp_node_kind_name(pls));
        return;
    }
    conf->pipelines = sp_arena_calloc(L->arena, pls->npairs, sizeof(*conf->pipelines));
    if (!conf->pipelines)
        return;
    for (size_t i = 0; i < pls->npairs; i++) {
        const struct sp_node_pair *p = &pls->pairs[i];
        const char *slash = strchr(p->key, '/');
        size_t sl = slash ? (size_t)(slash - p->key) : strlen(p->key);
        enum sp_signal sig;
        sp_quote_into(&L->q, p->key);
        if (!sp_parse_signal(p->key, sl, &sig)) {
            char sname[64];
            snprintf(sname, sizeof(sname), "%.*s", (int)(sl < 63 ? sl : 63), p->key);
            const char *names[SP_SIGNAL_COUNT];
            for (int s = 0; s < SP_SIGNAL_COUNT; s++)
                names[s] = sp_signal_name((enum sp_signal)s);
            const char *best = sp_conf_suggest(sname, names, SP_SIGNAL_COUNT);
            if (best)
                sp_diag_error(L->d, &p->key_pos, "unknown signal in pipeline id %s (did you "
                              "mean '%s'?)", (const char *)L->q.data, best);
            else
                sp_diag_error(L->d, &p->key_pos, "unknown signal in pipeline id %s: spanprof "
                              "pipelines carry traces, profiles, metrics or logs",
                              (const char *)L->q.data);
            continue;
        }
        if (slash && (!slash[1] || strchr(slash + 1, '/'))) {
            sp_diag_error(L->d, &p->key_pos, "invalid pipeline id %s: expected signal[/name]",
                          (const char *)L->q.data);
            continue;
        }
        if (p->value->kind != SP_NODE_MAP) {
            sp_diag_error(L->d, p->value->kind == SP_NODE_NULL ? &p->key_pos : &p->value->pos,
                          "service.pipelines.%s: expected a mapping with receivers, processors "
                          "and exporters, got %s", p->key, sp_node_kind_name(p->value));
            continue;
        }
        for (size_t k = 0; k < p->value->npairs; k++) {
            const struct sp_node_pair *kp = &p->value->pairs[k];
            bool known = false;
            for (size_t j = 0; j < 3 && !known; j++)
                known = strcmp(kp->key, sp_pipeline_keys[j]) == 0;
            if (known)
                continue;
            sp_quote_into(&L->q, kp->key);
            const char *best = sp_conf_suggest(kp->key, sp_pipeline_keys, 3);
            if (best)
                sp_diag_error(L->d, &kp->key_pos, "unknown key %s in service.pipelines.%s (did "
                              "you mean '%s'?)", (const char *)L->q.data, p->key, best);
            else
                sp_diag_error(L->d, &kp->key_pos, "unknown key %s in service.pipelines.%s "
                              "(valid keys: receivers, processors, exporters)",
                              (const char *)L->q.data, p->key);
        }
        struct sp_conf_pipeline *pl = &conf->pipelines[conf->pipeline_count++];
        pl->name = sp_arena_strdup(L->arena, p->key);
        if (!pl->name)
            return;
        pl->signal = sig;
        pl->pos = p->key_pos;
        sp_pipeline_list(L, pl, SP_KIND_RECEIVER, p->value, &p->key_pos, &pl->receivers,
                         &pl->receiver_count);
        sp_pipeline_list(L, pl, SP_KIND_PROCESSOR, p->value, &p->key_pos, &pl->processors,
                         &pl->processor_count);
        sp_pipeline_list(L, pl, SP_KIND_EXPORTER, p->value, &p->key_pos, &pl->exporters,
                         &pl->exporter_count);
    }
    /* A processor instance has one `next` list per signal: two pipelines of
     * the same signal would splice into each other. */
    for (size_t a = 0; a < conf->pipeline_count; a++) {
        const struct sp_conf_pipeline *pa = &conf->pipelines[a];
        for (size_t b = a + 1; b < conf->pipeline_count; b++) {
            const struct sp_conf_pipeline *pb = &conf->pipelines[b];
            if (pa->signal != pb->signal)
                continue;
            for (size_t i = 0; i < pa->processor_count; i++) {
                for (size_t j = 0; j < pb->processor_count; j++) {
                    if (pa->processors[i] != pb->processors[j])
                        continue;
                    const struct sp_conf_component *c = pb->processors[j];
                    sp_diag_error(L->d, &pb->pos,
                                  "processor '%s' is in pipelines '%s' and '%s', both %s: one "
                                  "processor instance cannot serve two pipelines of the same "
                                  "signal; define another one (e.g. '%s/2')",
                                  c->id, pa->name, pb->name, sp_signal_name(pa->signal),
                                  c->type->name);
                }
            }
        }
    }
}

/* The Collector's memory_limiter onto spanprof's memory ceiling:
 * limit_mib becomes service.memory_limit unless the service section sets
 * it. The rest has no counterpart: spanprof's soft mark (receivers refuse)
 * is fixed at 80 % where the Collector's is limit - spike_limit, and every
 * reservation is counted as it happens, so check_interval has no use. */
static void sp_map_memory_limiter(struct sp_loader *L, const struct sp_node *svc)
{
    const struct sp_node *ml = L->memory_limiter;
    const struct sp_conf_pos *pos = &L->memory_limiter_pos;
    const char *id = L->memory_limiter_id ? L->memory_limiter_id : "memory_limiter";
    const struct sp_node_pair *set = NULL;
    sp_node_get(svc, "memory_limit", &set);
    const struct sp_node *lim = sp_node_get(ml, "limit_mib", NULL);
    const struct sp_node *spike = sp_node_get(ml, "spike_limit_mib", NULL);
    bool pct = sp_node_get(ml, "limit_percentage", NULL) != NULL;
    if (set) {
        sp_diag_warn(L->d, pos, "processor '%s' is ignored: service.memory_limit (line %d) is "
                     "spanprof's memory ceiling", id, set->key_pos.line);
        return;
    }
    if (!lim || lim->kind != SP_NODE_SCALAR) {
        sp_diag_warn(L->d, pos, "processor '%s' is ignored: %s; spanprof's memory ceiling is "
                     "service.memory_limit (default 256MiB), set it instead", id,
                     pct ? "limit_percentage has no equivalent (spanprof does not read the "
                           "container's limit)"
                         : "it sets no limit_mib");
        return;
    }
    char *end;
    unsigned long long mib = strtoull(lim->str, &end, 10);
    if (*end || !*lim->str || mib < 16 || mib > (1ull << 20)) {
        sp_diag_error(L->d, &lim->pos, "processors.%s.limit_mib: '%s' cannot be spanprof's "
                      "memory ceiling (service.memory_limit): 16 to 1048576 MiB", id, lim->str);
        return;
    }
    L->conf->memory_limit = (uint64_t)mib << 20;
    char soft[96] = "";
    unsigned long long sp = spike && spike->kind == SP_NODE_SCALAR ? strtoull(spike->str, NULL, 10)
                                                                   : 0;
    if (sp && sp < mib)
        snprintf(soft, sizeof(soft), " (the Collector's soft limit, limit_mib - spike_limit_mib, "
                 "was %llu MiB)", mib - sp);
    sp_diag_info(L->d, pos, "processor '%s' maps onto service.memory_limit: %llu MiB, the "
                 "ceiling for everything spanprof holds; receivers refuse new requests above "
                 "80 %% of it, %llu MiB%s; check_interval is not needed (every reservation is "
                 "counted); it is not a pipeline stage", id, mib, mib * 8 / 10, soft);
}

static void sp_load_service(struct sp_loader *L, const struct sp_node *root)
{
    struct sp_service_conf *conf = L->conf;
    const struct sp_node_pair *sp = NULL;
    const struct sp_node *svc = sp_node_get(root, "service", &sp);
    struct sp_conf_pos svc_pos = sp ? sp->key_pos : root->pos;
    if (svc && svc->kind != SP_NODE_MAP && svc->kind != SP_NODE_NULL) {
        sp_diag_error(L->d, &svc->pos, "service: expected a mapping, got %s",
                      sp_node_kind_name(svc));
        svc = NULL;
    }
    /* The keys-table part of service: everything but pipelines. */
    struct sp_node rest = {.kind = SP_NODE_MAP, .pos = svc_pos, .str = ""};
    struct sp_node_pair pairs[16];
    if (svc && svc->kind == SP_NODE_MAP) {
        rest.pos = svc->pos;
        rest.pairs = pairs;
        for (size_t i = 0; i < svc->npairs && rest.npairs < 16; i++) {
            if (strcmp(svc->pairs[i].key, "pipelines") == 0)
                continue;
            bool known = false;
            for (size_t j = 0; j < SP_SERVICE_KEY_COUNT && !known; j++)
                known = strcmp(svc->pairs[i].key, sp_service_key_names[j]) == 0;
            if (!known) {
                sp_quote_into(&L->q, svc->pairs[i].key);
                const char *best = sp_conf_suggest(svc->pairs[i].key, sp_service_key_names,
                                                  SP_SERVICE_KEY_COUNT);
                if (best)
                    sp_diag_error(L->d, &svc->pairs[i].key_pos, "unknown key %s in service (did "
                                  "you mean '%s'?)", (const char *)L->q.data, best);
                else
                    sp_diag_error(L->d, &svc->pairs[i].key_pos, "unknown key %s in service "
                                  "(valid keys: extensions, pipelines, telemetry, "
                                  "shutdown_timeout, memory_limit)", (const char *)L->q.data);
                continue;
            }
            pairs[rest.npairs++] = svc->pairs[i];
        }
    }
    struct sp_conf_ctx *ctx = sp_arena_calloc(L->arena, 1, sizeof(*ctx));
    struct sp_svc_raw *raw = sp_arena_calloc(L->arena, 1, sizeof(*raw));
    if (!ctx || !raw)
        return;
    ctx->arena = L->arena;
    ctx->prefix = "service";
    ctx->pos = svc_pos;
    size_t before = L->d ? L->d->errors : 0;
    sp_conf_fill(ctx, sp_svc_keys, SP_CONF_END_COUNT(sp_svc_keys), raw, &rest, "", &svc_pos,
                 L->d);
    bool filled = !L->d || L->d->errors == before;

    struct sp_err err = {0};
    conf->shutdown_timeout_ms = raw->shutdown_timeout;
    conf->memory_limit = raw->memory_limit;
    if (filled && raw->memory_limit < ((uint64_t)16 << 20)) {
        sp_conf_errorf(ctx, &err, "memory_limit",
                       "must be at least 16MiB (a sidecar needs room for one request and the "
                       "exporter's payloads)");
        sp_diag_error(L->d, NULL, "%s", err.msg);
    }
    conf->log_level = SP_LOG_INFO;
    conf->log_format = SP_LOG_LOGFMT;
    if (filled) {
        int lvl = sp_log_level_parse(raw->telemetry.logs.level);
        if (lvl < 0) {
            sp_quote_into(&L->q, raw->telemetry.logs.level);
            sp_conf_errorf(ctx, &err, "telemetry.logs.level",
                           "expected one of debug, info, warn, error, got %s",
                           (const char *)L->q.data);
            sp_diag_error(L->d, NULL, "%s", err.msg);
        } else {
            conf->log_level = lvl;
        }
        const char *fmt = raw->telemetry.logs.format;
        if (strcmp(fmt, "json") == 0) {
            conf->log_format = SP_LOG_JSON;
        } else if (strcmp(fmt, "logfmt") != 0) {
            sp_quote_into(&L->q, fmt);
            sp_conf_errorf(ctx, &err, "telemetry.logs.format", "expected logfmt or json, got %s",
                           (const char *)L->q.data);
            sp_diag_error(L->d, NULL, "%s", err.msg);
        }
        conf->metrics_address = raw->telemetry.metrics.address;
        if (conf->metrics_address && *conf->metrics_address) {
            char host[256];
            int port;
            struct sp_err perr = {0};
            if (sp_conf_parse_endpoint(conf->metrics_address, host, &port, &perr) != 0) {
                sp_conf_errorf(ctx, &err, "telemetry.metrics.address", "%s", perr.msg);
                sp_diag_error(L->d, NULL, "%s", err.msg);
            }
        }
    }
    if (!conf->metrics_address)
        conf->metrics_address = "";

    if (L->memory_limiter)
        sp_map_memory_limiter(L, svc);
    sp_load_pipelines(L, svc, &svc_pos);

    /* service.extensions, in the order given (the start order). */
    const struct sp_node *exts = sp_node_get(svc, "extensions", NULL);
    if (exts && exts->kind == SP_NODE_SEQ && exts->nitems) {
        conf->extensions = sp_arena_calloc(L->arena, exts->nitems, sizeof(*conf->extensions));
        for (size_t i = 0; conf->extensions && i < exts->nitems; i++) {
            const struct sp_node *it = exts->items[i];
            if (it->kind != SP_NODE_SCALAR)
                continue; /* reported by the fill */
            struct sp_conf_component *c = sp_find_comp(conf, SP_KIND_EXTENSION, it->str);
            if (!c && sp_is_ignored(L, SP_KIND_EXTENSION, it->str))
                continue;
            if (!c) {
                sp_undefined_ref(L, SP_KIND_EXTENSION, it->str, &it->pos, "service.extensions");
                continue;
            }
            if (c->used) {
                sp_diag_error(L->d, &it->pos, "service.extensions lists '%s' twice", c->id);
                continue;
            }
            c->used = true;
            conf->extensions[conf->extension_count++] = c;
        }
    }
}

static void sp_warn_unused(struct sp_loader *L)
{
    for (size_t i = 0; i < L->conf->component_count; i++) {
        const struct sp_conf_component *c = &L->conf->components[i];
        if (c->used)
            continue;
        if (c->kind == SP_KIND_EXTENSION)
            sp_diag_warn(L->d, &c->pos, "extension '%s' is defined but not listed in "
                         "service.extensions: it will not be started", c->id);
        else
            sp_diag_warn(L->d, &c->pos, "%s '%s' is defined but no pipeline uses it: it will "
                         "not be created", sp_kind_name(c->kind), c->id);
    }
}

static void sp_check_top(struct sp_loader *L, const struct sp_node *root)
{
    for (size_t i = 0; i < root->npairs; i++) {
        const struct sp_node_pair *p = &root->pairs[i];
        bool known = false;
        for (size_t j = 0; j < 5 && !known; j++)
            known = strcmp(p->key, sp_top_keys[j]) == 0;
        if (known)
            continue;
        sp_quote_into(&L->q, p->key);
        const char *best = sp_conf_suggest(p->key, sp_top_keys, 5);
        if (best)
            sp_diag_error(L->d, &p->key_pos, "unknown top-level key %s (did you mean '%s'?)",
                          (const char *)L->q.data, best);
        else
            sp_diag_error(L->d, &p->key_pos, "unknown top-level key %s (valid keys: receivers, "
                          "processors, exporters, extensions, service)", (const char *)L->q.data);
    }
}

static size_t sp_count_components(const struct sp_node *root)
{
    size_t n = 0;
    for (int k = 0; k < 4; k++) {
        const struct sp_node *sec = sp_node_get(root, sp_section_name((enum sp_kind)k), NULL);
        if (sec && sec->kind == SP_NODE_MAP)
            n += sec->npairs;
    }
    return n;
}

int sp_service_conf_load(const struct sp_component_set *types, const char *const *files,
                         size_t n, struct sp_service_conf **out, struct sp_diag *diag)
{
    if (n == 0) {
        struct sp_conf_source def = {SP_CONF_EMBEDDED_NAME, sp_default_config_yaml,
                                     sp_default_config_yaml_len};
        int rc = sp_service_conf_load_sources(types, &def, 1, out, diag);
        if (rc == 0)
            (*out)->from_embedded_default = true;
        return rc;
    }
    struct sp_conf_source *src = calloc(n, sizeof(*src));
    if (!src) {
        sp_diag_error(diag, NULL, "out of memory while loading the configuration");
        return SP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        src[i].name = files[i];
    int rc = sp_service_conf_load_sources(types, src, n, out, diag);
    free(src);
    return rc;
}

int sp_service_conf_load_sources(const struct sp_component_set *types,
                                 const struct sp_conf_source *src, size_t n,
                                 struct sp_service_conf **out, struct sp_diag *diag)
{
    struct sp_diag local = {0};
    struct sp_diag *d = diag ? diag : &local;
    size_t errors_before = d->errors;
    *out = NULL;
    struct sp_arena *a = sp_arena_create(64 * 1024);
    if (!a) {
        sp_diag_error(d, NULL, "out of memory while loading the configuration");
        return SP_ENOMEM;
    }
    sp_arena_set_limit(a, SP_CONF_ARENA_LIMIT);
    sp_arena_set_wipe(a); /* SP_CONF_SECRET values (API keys) live here */
    struct sp_service_conf *conf = sp_arena_calloc(a, 1, sizeof(*conf));
    struct sp_conf_internal *in = sp_arena_calloc(a, 1, sizeof(*in));
    if (in)
        in->files = sp_arena_calloc(a, n ? n : 1, sizeof(*in->files));
    if (!conf || !in || !in->files) {
        sp_arena_destroy(a);
        sp_diag_error(d, NULL, "out of memory while loading the configuration");
        return SP_ENOMEM;
    }
    in->arena = a;
    conf->internal = in;

    struct sp_node *root = NULL;
    bool parse_failed = false;
    for (size_t i = 0; i < n; i++) {
        struct sp_buf text = {0};
        struct sp_node *r = NULL;
        const char *data = src[i].data;
        size_t len = src[i].len;
        in->files[in->nfiles++] = sp_arena_strdup(a, src[i].name);
        if (!data) {
            if (sp_read_file(src[i].name, &text, d) != 0) {
                parse_failed = true;
                sp_buf_wipe(&text);
                continue;
            }
            data = text.data ? (const char *)text.data : "";
            len = text.len;
        }
        if (sp_yaml_parse(a, src[i].name, data, len, d, &r) != 0) {
            parse_failed = true;
        } else {
            root = sp_node_merge(a, root, r);
            if (!root) {
                sp_diag_error(d, NULL, "out of memory while merging the configuration files");
                parse_failed = true;
            }
        }
        sp_buf_wipe(&text); /* the file text holds the secrets too */
    }
    if (!parse_failed && !root) {
        sp_diag_error(d, NULL, "no configuration given");
        parse_failed = true;
    }
    if (parse_failed) {
        sp_arena_destroy(a);
        return SP_EINVAL;
    }

    struct sp_loader L = {.root = root, .arena = a, .d = d, .conf = conf, .types = types};
    size_t total = sp_count_components(root);
    conf->components = sp_arena_calloc(a, total ? total : 1, sizeof(*conf->components));
    if (!conf->components) {
        sp_arena_destroy(a);
        sp_diag_error(d, NULL, "out of memory while loading the configuration");
        return SP_ENOMEM;
    }
    sp_check_top(&L, root);
    for (int k = 0; k < 4; k++)
        sp_load_section(&L, (enum sp_kind)k, root);
    sp_load_service(&L, root);
    /* The embedded default defines both the datadog and the file exporter
     * and picks one through SPANPROF_EXPORTER: the other is unused on
     * purpose, not worth a warning at every start. */
    bool embedded = n == 1 && src[0].data == sp_default_config_yaml;
    if (!embedded)
        sp_warn_unused(&L);
    sp_buf_free(&L.q);
    sp_buf_free(&L.q2);

    if (d->errors > errors_before) {
        sp_arena_destroy(a);
        if (d == &local)
            sp_diag_free(&local);
        return SP_EINVAL;
    }
    if (d == &local)
        sp_diag_free(&local);
    *out = conf;
    return 0;
}

void sp_service_conf_free(struct sp_service_conf *conf)
{
    if (!conf)
        return;
    struct sp_conf_internal *in = conf->internal;
    sp_arena_destroy(in->arena); /* conf itself lives in the arena */
}

bool sp_service_conf_msg_has_pos(const struct sp_service_conf *conf, const char *msg)
{
    if (!conf || !msg)
        return false;
    const struct sp_conf_internal *in = conf->internal;
    for (size_t i = 0; i < in->nfiles; i++) {
        const char *f = in->files[i];
        size_t fl = f ? strlen(f) : 0;
        if (fl && strncmp(msg, f, fl) == 0 && msg[fl] == ':')
            return true;
    }
    return false;
}

/* ---- print-config ---- */

static void sp_print_idlist(struct sp_buf *out, struct sp_conf_component *const *v, size_t n)
{
    sp_buf_append_byte(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp_buf_append_str(out, ", ");
        sp_conf_print_scalar_flow(out, v[i]->id);
    }
    sp_buf_append_byte(out, ']');
}

int sp_service_conf_print(const struct sp_service_conf *conf, struct sp_buf *out)
{
    sp_buf_append_str(out, "# spanprof effective configuration: defaults applied, ${env:...} "
                           "expanded, secrets\n# redacted, '$' written as '$$' so this output "
                           "is itself a valid config.\n");
    for (int k = 0; k < 4; k++) {
        size_t count = 0;
        for (size_t i = 0; i < conf->component_count; i++)
            count += conf->components[i].kind == (enum sp_kind)k;
        sp_buf_printf(out, "%s:%s\n", sp_section_name((enum sp_kind)k), count ? "" : " {}");
        for (size_t i = 0; i < conf->component_count; i++) {
            const struct sp_conf_component *c = &conf->components[i];
            if (c->kind != (enum sp_kind)k)
                continue;
            if (!c->used)
                sp_buf_append_str(out, "  # not used by any pipeline: not created\n");
            sp_buf_append_str(out, "  ");
            sp_conf_print_scalar(out, c->id);
            sp_buf_append_byte(out, ':');
            size_t mark = out->len;
            sp_buf_append_byte(out, '\n');
            size_t body = out->len;
            sp_conf_print_keys(out, c->type->conf_keys, c->type->conf_key_count, c->conf, 4);
            if (out->len == body) {
                out->len = mark;
                sp_buf_append_str(out, " {}\n");
            }
        }
    }
    sp_buf_append_str(out, "service:\n  extensions: ");
    sp_print_idlist(out, conf->extensions, conf->extension_count);
    sp_buf_append_str(out, "\n  pipelines:\n");
    for (size_t i = 0; i < conf->pipeline_count; i++) {
        const struct sp_conf_pipeline *p = &conf->pipelines[i];
        sp_buf_append_str(out, "    ");
        sp_conf_print_scalar(out, p->name);
        sp_buf_append_str(out, ":\n      receivers: ");
        sp_print_idlist(out, p->receivers, p->receiver_count);
        sp_buf_append_str(out, "\n      processors: ");
        sp_print_idlist(out, p->processors, p->processor_count);
        sp_buf_append_str(out, "\n      exporters: ");
        sp_print_idlist(out, p->exporters, p->exporter_count);
        sp_buf_append_byte(out, '\n');
    }
    char dur[64];
    sp_conf_format_duration(dur, sizeof(dur), conf->shutdown_timeout_ms);
    int lvl = conf->log_level >= 0 && conf->log_level < 4 ? conf->log_level : 1;
    sp_buf_printf(out, "  telemetry:\n    logs:\n      level: %s\n      format: %s\n"
                       "    metrics:\n      address: ",
                  sp_log_level_names[lvl], conf->log_format == SP_LOG_JSON ? "json" : "logfmt");
    sp_conf_print_scalar(out, conf->metrics_address ? conf->metrics_address : "");
    sp_buf_printf(out, "\n  shutdown_timeout: %s\n", dur);
    char size[64];
    sp_conf_format_size(size, sizeof(size), conf->memory_limit);
    sp_buf_printf(out, "  memory_limit: %s\n", size);
    return 0;
}

void sp_service_conf_register_secrets(const struct sp_service_conf *conf)
{
    for (size_t i = 0; i < conf->component_count; i++) {
        const struct sp_conf_component *c = &conf->components[i];
        sp_conf_each_secret(c->type->conf_keys, c->type->conf_key_count, c->conf,
                            sp_log_add_secret);
    }
}

/* ---- reference ---- */

static const char sp_ref_head[] =
    "| key | type | default | description |\n"
    "|-----|------|---------|-------------|\n";

int sp_conf_reference(const struct sp_component_set *types, struct sp_buf *out)
{
    sp_buf_append_str(
        out,
        "# spanprof configuration reference\n\n"
        "Generated by `spanprof reference` from the components' key tables.\n\n"
        "The file has the OpenTelemetry Collector's shape: `receivers`, `processors`, "
        "`exporters` and `extensions` map component ids (`type` or `type/name`) to their "
        "settings; `service` wires them into pipelines. Several `--config` files merge: "
        "mappings key by key, the later file winning; lists are replaced. In every value, "
        "`${env:NAME}` is replaced by the environment variable, `${env:NAME:-default}` uses "
        "the default when it is unset or empty, and `$$` is a literal `$`.\n\n"
        "Value types: *duration* `500ms`, `10s`, `1m30s`, `2h` (units ns, us, ms, s, m, h); "
        "*size* `1048576`, `64KiB`, `20MiB`, `1GiB`, `5MB` (KB/MB/GB are powers of 1000); "
        "*bool* `true`/`false`; *secret* a string that is never printed (redacted in "
        "`print-config`, logs and errors); *endpoint* strings are `host:port`, `[v6]:port` "
        "or `:port`.\n\n");
    sp_buf_append_str(out, "## service\n\n");
    sp_buf_append_str(out, sp_ref_head);
    sp_buf_append_str(out,
                      "| `service.pipelines.<signal>[/name]` | block | required | a pipeline; "
                      "signal is `traces`, `profiles`, `metrics` or `logs` |\n"
                      "| `service.pipelines.<id>.receivers` | list of strings | required | "
                      "receiver ids feeding the pipeline |\n"
                      "| `service.pipelines.<id>.processors` | list of strings | `[]` | "
                      "processor ids, in order |\n"
                      "| `service.pipelines.<id>.exporters` | list of strings | required | "
                      "exporter ids; each gets every batch |\n");
    sp_conf_reference_keys(out, sp_svc_keys, SP_CONF_END_COUNT(sp_svc_keys), "service");
    size_t count = types->count;
    const struct sp_component_type *const *all = types->types;
    for (int k = 0; k < 4; k++) {
        sp_buf_printf(out, "\n## %s\n", sp_section_name((enum sp_kind)k));
        for (size_t i = 0; i < count; i++) {
            const struct sp_component_type *t = all[i];
            if (t->kind != (enum sp_kind)k)
                continue;
            sp_buf_printf(out, "\n### `%s`\n\n%s", t->name, t->doc ? t->doc : "");
            if (t->kind != SP_KIND_EXTENSION) {
                struct sp_buf sig = {0};
                sp_signals_text(&sig, t->signals);
                size_t dl = t->doc ? strlen(t->doc) : 0;
                sp_buf_printf(out, "%sSignals: %s.",
                              dl == 0 ? "" : t->doc[dl - 1] == '.' ? " " : ". ",
                              (const char *)sig.data);
                sp_buf_free(&sig);
            }
            sp_buf_append_str(out, "\n\n");
            if (!t->conf_key_count) {
                sp_buf_append_str(out, "No settings.\n");
                continue;
            }
            sp_buf_append_str(out, sp_ref_head);
            char prefix[160];
            snprintf(prefix, sizeof(prefix), "%s.%s", sp_section_name(t->kind), t->name);
            sp_conf_reference_keys(out, t->conf_keys, t->conf_key_count, prefix);
        }
    }
    return 0;
}
