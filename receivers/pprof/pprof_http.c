/* pprof receiver HTTP routes, all on one sp_httpd listener:
 *
 *   POST /profiling/v1/input  Datadog profiler -> agent upload (multipart)
 *   GET  /info                agent discovery: the endpoints served here
 *   POST /v1/pprof            plain pprof push (query carries the envelope)
 *   POST /ingest              Pyroscope ingest (raw or multipart)
 *   POST /v0.x/traces, /v0.6/stats, /telemetry/proxy/...
 *                             a tracer pointed here as its agent: answered
 *                             200 and dropped (counted), see accept_tracer_traffic
 *
 * Each upload becomes one profile batch (one envelope, every attachment).
 * Status codes: 200/204 accepted, 400 bad input (message names the part and
 * the problem), 413 over a size limit, 415 unsupported media type or
 * format, 429 + Retry-After when the pipeline is full, 503 when shutting
 * down or another stage failed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "dd_event.h"
#include "multipart.h"
#include "pprof_int.h"
#include "pyroscope.h"
#include "sp_buf.h"
#include "sp_compress.h"
#include "sp_log.h"
#include "sp_status.h"
#include "sp_version.h"

enum pprof_route {
    ROUTE_NONE = 0,
    ROUTE_DD_INPUT,
    ROUTE_INFO,
    ROUTE_PPROF,
    ROUTE_INGEST,
    ROUTE_TRACES,    /* /v0.x/traces: {"rate_by_service":{}} */
    ROUTE_TRACER_OK, /* stats, telemetry: empty 200 */
    ROUTE_RC,        /* remote config: 404 = disabled, as an agent without RC */
};

static bool pprof_path_is(const char *path, const char *want)
{
    size_t n = strlen(want);
    /* tolerate one trailing slash */
    return strncmp(path, want, n) == 0 && (path[n] == '\0' || (path[n] == '/' && !path[n + 1]));
}

static enum pprof_route pprof_route_of(const char *path)
{
    if (pprof_path_is(path, "/profiling/v1/input"))
        return ROUTE_DD_INPUT;
    if (pprof_path_is(path, "/info"))
        return ROUTE_INFO;
    if (pprof_path_is(path, "/v1/pprof"))
        return ROUTE_PPROF;
    if (pprof_path_is(path, "/ingest"))
        return ROUTE_INGEST;
    static const char *const traces[] = {"/v0.3/traces", "/v0.4/traces", "/v0.5/traces",
                                         "/v0.7/traces", "/v1.0/traces", "/spans"};
    for (size_t i = 0; i < sizeof(traces) / sizeof(traces[0]); i++)
        if (pprof_path_is(path, traces[i]))
            return ROUTE_TRACES;
    if (pprof_path_is(path, "/v0.6/stats") || pprof_path_is(path, "/v0.1/pipeline_stats") ||
        strncmp(path, "/telemetry/proxy/", 17) == 0)
        return ROUTE_TRACER_OK;
    if (pprof_path_is(path, "/v0.7/config"))
        return ROUTE_RC;
    return ROUTE_NONE;
}

/* --- answers ----------------------------------------------------------------- */

static void pprof_respond_err(struct pprof_ctx *ctx, struct sp_http_request *req, int code,
                              const char *msg)
{
    unsigned status;
    switch (code) {
    case SP_ETOOBIG:
    case SP_ENOMEM: /* the upload's memory bound */
        status = 413;
        break;
    case SP_EUNSUPPORTED:
        status = 415;
        break;
    case SP_EFULL:
    case SP_ERETRY:
        status = 429;
        break;
    case SP_ESHUTDOWN:
    case SP_EIO:
        status = 503;
        break;
    case SP_EDECODE:
    case SP_EINVAL:
    default:
        status = code < 0 && code != SP_EDECODE && code != SP_EINVAL ? 503 : 400;
        break;
    }
    sp_status_note(ctx->comp->id, SP_STATUS_BAD_REQUEST, "%s %s: HTTP %u %s", req->method,
                   req->path, status, msg);
    if (status == 429) {
        char ra[32];
        snprintf(ra, sizeof(ra), "%lld",
                 (long long)((ctx->conf->retry_after_ms + 999) / 1000));
        const char *hdrs[] = {"Retry-After", ra, NULL};
        struct sp_buf b = {0};
        sp_buf_printf(&b, "%s\n", msg);
        sp_httpd_respond(req, status, "text/plain; charset=utf-8", b.data, b.len, hdrs);
        sp_buf_free(&b);
        return;
    }
    sp_httpd_respond_text(req, status, msg);
}

/* Emits and answers: ok_status (with body) on success, else the mapped error. */
static void pprof_finish(struct pprof_ctx *ctx, struct sp_http_request *req, enum pprof_dialect d,
                         struct sp_batch *b, unsigned ok_status, const char *ok_type,
                         const char *ok_body)
{
    struct sp_err err = {0};
    if (ctx->shutting_down) {
        sp_metric_inc(ctx->m[d].refused);
        pprof_respond_err(ctx, req, SP_ESHUTDOWN, "spanprof is shutting down");
        return;
    }
    int rc = pprof_emit(ctx, d, b, &err);
    if (rc == SP_OK) {
        sp_httpd_respond(req, ok_status, ok_type, ok_body, ok_body ? strlen(ok_body) : 0, NULL);
        return;
    }
    pprof_log_warn(ctx, "%s profile from service '%s' refused downstream: %s",
                   pprof_dialect_names[d], b->u.profile.service ? b->u.profile.service : "",
                   err.msg[0] ? err.msg : sp_strerror(rc));
    pprof_respond_err(ctx, req, rc == SP_EFULL || rc == SP_ERETRY ? rc : SP_EIO,
                      err.msg[0] ? err.msg : sp_strerror(rc));
}

/* Counts, logs (rate-limited) and answers a refused request. Returns 0 so
 * route functions can end with `return pprof_refuse(...)`. */
static int pprof_refuse(struct pprof_ctx *ctx, struct sp_http_request *req, enum pprof_dialect d,
                        int code, const char *msg)
{
    sp_metric_inc(ctx->m[d].refused);
    pprof_log_warn(ctx, "%s %s refused: %s", req->method, req->path, msg);
    pprof_respond_err(ctx, req, code, msg);
    return 0;
}

/* --- /info ------------------------------------------------------------------ */

static void pprof_info(struct pprof_ctx *ctx, struct sp_http_request *req)
{
    struct sp_buf b = {0};
    sp_buf_append_str(&b, "{\"version\":\"spanprof-" SP_VERSION "\",\"endpoints\":[");
    if (ctx->conf->accept_tracer_traffic)
        sp_buf_append_str(&b, "\"/v0.3/traces\",\"/v0.4/traces\",\"/v0.5/traces\","
                              "\"/v0.7/traces\",\"/telemetry/proxy/\",");
    sp_buf_append_str(&b, "\"/profiling/v1/input\",\"/info\",\"/v1/pprof\",\"/ingest\"],"
                          "\"feature_flags\":[],\"client_drop_p0s\":false,"
                          "\"span_meta_structs\":false,\"long_running_spans\":false,"
                          "\"config\":{\"receiver_port\":");
    sp_buf_printf(&b, "%d}}", sp_httpd_port(ctx->httpd));
    sp_httpd_respond(req, 200, "application/json", b.data, b.len, NULL);
    sp_buf_free(&b);
}

/* --- attachments --------------------------------------------------------------- */

static bool pprof_name_is_pprof(const char *name)
{
    size_t n = strlen(name);
    return n >= 6 && strcmp(name + n - 6, ".pprof") == 0;
}

/* The list of dropped attachments, for the response and the log. */
struct pprof_dropped {
    struct sp_buf json; /* [{"name":..,"error":..},...] */
    struct sp_buf text; /* name: error; name: error */
    size_t n;
};

static void pprof_drop(struct pprof_dropped *d, const char *name, const char *why)
{
    sp_buf_append_str(&d->json, d->n ? "," : "");
    sp_buf_append_str(&d->json, "{\"name\":");
    sp_buf_append_json_str(&d->json, name, strlen(name));
    sp_buf_append_str(&d->json, ",\"error\":");
    sp_buf_append_json_str(&d->json, why, strlen(why));
    sp_buf_append_str(&d->json, "}");
    sp_buf_printf(&d->text, "%s'%s': %s", d->n ? "; " : "", name, why);
    d->n++;
}

static void pprof_dropped_free(struct pprof_dropped *d)
{
    sp_buf_free(&d->json);
    sp_buf_free(&d->text);
}

/* --- POST /profiling/v1/input ------------------------------------------------- */

static const char *pprof_dup_header(struct sp_http_request *req, struct sp_arena *a,
                                    const char *name)
{
    const char *v = sp_http_header(req, name);
    if (!v || !*v)
        return NULL;
    /* headers are bounded by sp_httpd's header memory; cap what we keep anyway */
    return sp_arena_strndup(a, v, strnlen(v, 1024));
}

static int pprof_dd_input(struct pprof_ctx *ctx, struct sp_http_request *req)
{
    const enum pprof_dialect D = PPROF_DIALECT_DATADOG;
    struct sp_err err = {0};
    char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
    int rc = sp_multipart_boundary(sp_http_header(req, "Content-Type"), boundary, &err);
    if (rc < 0)
        return pprof_refuse(ctx, req, D, rc, err.msg);
    struct sp_batch *b = pprof_batch_new(ctx, "datadog");
    if (!b)
        return pprof_refuse(ctx, req, D, SP_EIO, "out of memory");
    struct sp_profile *p = &b->u.profile;
    struct sp_multipart_part *parts;
    size_t nparts;
    struct sp_multipart_limits lim = {
        .max_parts = (size_t)ctx->conf->max_attachments + 1,
        .max_part_size = (size_t)ctx->conf->max_profile_size,
        .max_header_bytes = 8192,
    };
    rc = sp_multipart_parse(req->body, req->body_len, boundary, &lim, b->arena, &parts, &nparts,
                            &err);
    if (rc < 0) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, rc, err.msg);
    }
    const struct sp_multipart_part *ev = sp_multipart_find(parts, nparts, "event");
    if (!ev) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_EDECODE, "multipart upload has no 'event' part");
    }
    if (ev->oversize) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_ETOOBIG, "part 'event' is over max_profile_size");
    }
    struct sp_dd_event info;
    rc = sp_dd_event_parse((const char *)ev->data, ev->len, b->arena, p, &info, &err);
    if (rc < 0) {
        sp_err_prefix(&err, "part 'event'");
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, rc, err.msg);
    }
    p->origin = pprof_dup_header(req, b->arena, "DD-EVP-ORIGIN");
    p->origin_version = pprof_dup_header(req, b->arena, "DD-EVP-ORIGIN-VERSION");
    p->container_id = pprof_dup_header(req, b->arena, "Datadog-Container-ID");

    p->attachments = sp_arena_calloc(b->arena, nparts ? nparts : 1, sizeof(*p->attachments));
    if (!p->attachments) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_ENOMEM, "out of memory");
    }
    struct pprof_dropped dropped = {0};
    size_t kept = 0;
    for (size_t i = 0; i < nparts; i++) {
        const struct sp_multipart_part *part = &parts[i];
        if (part == ev)
            continue;
        const char *name = part->name[0] ? part->name : part->filename;
        if (!name || !*name) {
            pprof_drop(&dropped, "", "part without a name");
            continue;
        }
        if (part->oversize) {
            char why[128];
            snprintf(why, sizeof(why), "%zu bytes, over max_profile_size (%llu)", part->len,
                     (unsigned long long)ctx->conf->max_profile_size);
            pprof_drop(&dropped, name, why);
            continue;
        }
        struct sp_attachment *att = &p->attachments[kept];
        if (pprof_name_is_pprof(name)) {
            sp_err_clear(&err);
            rc = pprof_attach_pprof(ctx, b, att, name, part->data, part->len, &err);
            if (rc < 0) {
                pprof_drop(&dropped, name, err.msg);
                continue;
            }
        } else {
            /* metrics.json, go.trace, ...: carried byte for byte */
            memset(att, 0, sizeof(*att));
            att->name = sp_arena_strdup(b->arena, name);
            att->data = sp_arena_memdup(b->arena, part->data, part->len);
            att->len = part->len;
            att->compression = sp_compression_sniff(part->data, part->len);
            if (!att->name || (!att->data && part->len)) {
                pprof_drop(&dropped, name, "out of memory (max_decoded_size)");
                continue;
            }
        }
        kept++;
    }
    p->attachment_count = kept;
    sp_metric_add(ctx->m[D].bytes, (double)req->body_len);
    if (dropped.n) {
        pprof_log_warn(ctx, "upload from service '%s' (%s): dropped %zu attachment(s): %s",
                       p->service ? p->service : "", p->origin ? p->origin : "unknown client",
                       dropped.n, (const char *)dropped.text.data);
    }
    if (kept == 0 && dropped.n) {
        struct sp_buf msg = {0};
        sp_buf_printf(&msg, "no valid attachment in the upload: %s",
                      (const char *)dropped.text.data);
        /* the worst single reason decides between 400 and 413 */
        int code = strstr((const char *)dropped.text.data, "over max_profile_size") ||
                           strstr((const char *)dropped.text.data, "over the limit")
                       ? SP_ETOOBIG
                       : SP_EDECODE;
        sp_batch_unref(b);
        pprof_refuse(ctx, req, D, code, (const char *)msg.data);
        sp_buf_free(&msg);
        pprof_dropped_free(&dropped);
        return 0;
    }
    /* counted for uploads that go on; a refused upload counts as refused */
    sp_metric_add(ctx->m[D].dropped_attachments, (double)dropped.n);
    if (!info.has_start || !info.has_end)
        pprof_times_from_pprof(p);
    struct sp_buf ok = {0};
    sp_buf_printf(&ok, "{\"accepted\":%zu,\"dropped\":[%s]}", kept,
                  dropped.n ? (const char *)dropped.json.data : "");
    pprof_finish(ctx, req, D, b, 200, "application/json", (const char *)ok.data);
    sp_buf_free(&ok);
    pprof_dropped_free(&dropped);
    sp_batch_unref(b);
    return 0;
}

/* --- shared by /v1/pprof and /ingest ------------------------------------------ */

/* Go's compiler records .go source files for every function: enough to
 * tell "go" when the client did not say. */
static const char *pprof_guess_family(const sp_pprof *p)
{
    for (size_t i = 0; i < p->n_function; i++) {
        const char *f = sp_pprof_str(p, p->function[i]->filename);
        size_t n = f ? strlen(f) : 0;
        if (n > 3 && strcmp(f + n - 3, ".go") == 0)
            return "go";
    }
    return NULL;
}

/* One decoded attachment named "<type>.pprof" in a fresh envelope. */
static int pprof_single(struct pprof_ctx *ctx, struct sp_batch *b, const char *type,
                        const uint8_t *body, size_t len, struct sp_err *err)
{
    struct sp_profile *p = &b->u.profile;
    p->attachments = sp_arena_calloc(b->arena, 1, sizeof(*p->attachments));
    if (!p->attachments)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    int rc = pprof_attach_pprof(ctx, b, &p->attachments[0], "profile.pprof", body, len, err);
    if (rc < 0)
        return rc;
    p->attachment_count = 1;
    const char *t = type && *type ? type : pprof_guess_type(p->attachments[0].pprof);
    p->profile_type = t ? sp_arena_strdup(b->arena, t) : NULL;
    if (t) {
        p->attachments[0].name = sp_arena_sprintf(b->arena, "%s.pprof", t);
        if (!p->attachments[0].name)
            return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    return 0;
}

/* "1795303322", "1795303322123456789" or RFC 3339. */
static int pprof_parse_when(const char *s, int64_t *ns, struct sp_err *err)
{
    if (s && isdigit((unsigned char)*s) && strchr(s, '-') == NULL)
        return sp_pyroscope_parse_time(s, ns, err);
    if (s && sp_rfc3339_parse_ns(s, strlen(s), ns) == 0)
        return 0;
    return sp_err_set(err, SP_EDECODE, "'%.40s' is neither a Unix time nor an RFC 3339 time",
                      s ? s : "");
}

/* --- POST /v1/pprof ------------------------------------------------------------ */

static int pprof_push(struct pprof_ctx *ctx, struct sp_http_request *req)
{
    const enum pprof_dialect D = PPROF_DIALECT_PPROF;
    struct sp_err err = {0};
    if (req->body_len == 0)
        return pprof_refuse(ctx, req, D, SP_EDECODE, "empty body: want a pprof profile");
    struct sp_batch *b = pprof_batch_new(ctx, "pprof");
    if (!b)
        return pprof_refuse(ctx, req, D, SP_EIO, "out of memory");
    struct sp_profile *p = &b->u.profile;
    sp_metric_add(ctx->m[D].bytes, (double)req->body_len);
    int rc = pprof_single(ctx, b, sp_http_query(req, "type"), req->body, req->body_len, &err);
    if (rc < 0) {
        sp_err_prefix(&err, "body");
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, rc, err.msg);
    }
    const char *when[2] = {"start", "end"};
    int64_t *dst[2] = {&p->start_ns, &p->end_ns};
    for (int i = 0; i < 2; i++) {
        const char *v = sp_http_query(req, when[i]);
        if (v && *v && (rc = pprof_parse_when(v, dst[i], &err)) < 0) {
            sp_err_prefix(&err, "query '%s'", when[i]);
            sp_batch_unref(b);
            return pprof_refuse(ctx, req, D, rc, err.msg);
        }
    }
    if (p->start_ns && p->end_ns && p->end_ns < p->start_ns) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_EDECODE, "query 'end' is before 'start'");
    }
    static const struct {
        const char *q;
        size_t off;
    } fields[] = {
        {"service", offsetof(struct sp_profile, service)},
        {"env", offsetof(struct sp_profile, env)},
        {"version", offsetof(struct sp_profile, version)},
        {"host", offsetof(struct sp_profile, host)},
        {"runtime_id", offsetof(struct sp_profile, runtime_id)},
        {"family", offsetof(struct sp_profile, family)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = sp_http_query(req, fields[i].q);
        if (v && *v)
            *(const char **)((char *)p + fields[i].off) = sp_arena_strdup(b->arena, v);
    }
    const char *tags = sp_http_query(req, "tags");
    if (tags && sp_dd_tags_parse(tags, strlen(tags), 0, b->arena, p) < 0) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_ENOMEM, "out of memory");
    }
    if (!p->family)
        p->family = pprof_guess_family(p->attachments[0].pprof);
    pprof_times_from_pprof(p);
    pprof_finish(ctx, req, D, b, 204, NULL, NULL);
    sp_batch_unref(b);
    return 0;
}

/* --- POST /ingest (Pyroscope) ---------------------------------------------------- */

static const char *pprof_query_get(void *ud, const char *key)
{
    return sp_http_query(ud, key);
}

static const char *pprof_family_of_spy(const char *spy)
{
    static const char *const map[][2] = {
        {"gospy", "go"},         {"nodespy", "node"},   {"pyspy", "python"},
        {"pyroscope-rs", "rust"}, {"rbspy", "ruby"},    {"dotnetspy", "dotnet"},
        {"javaspy", "java"},      {"grafana-agent.java", "java"}, {"phpspy", "php"},
        {"ebpfspy", "native"},
    };
    for (size_t i = 0; spy && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(spy, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Older Pyroscope clients append the profile type to the app name. */
static const char *pprof_strip_type_suffix(struct sp_arena *a, const char *app)
{
    static const char *const suffixes[] = {
        ".cpu", ".alloc_objects", ".alloc_space", ".inuse_objects", ".inuse_space",
        ".goroutines", ".mutex_count", ".mutex_duration", ".block_count", ".block_duration",
        ".wall", ".itimer",
    };
    size_t n = strlen(app);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > sl && strcmp(app + n - sl, suffixes[i]) == 0)
            return sp_arena_strndup(a, app, n - sl);
    }
    return app;
}

/* sample_type_config: {"alloc_space": {"cumulative": true, ...}, ...} ->
 * which columns of p are cumulative. Unknown or invalid: the default rule. */
static void pprof_cumulative_from_config(const sp_pprof *p, const struct sp_multipart_part *cfg,
                                         bool *cum)
{
    for (size_t j = 0; j < p->n_sample_type; j++)
        cum[j] = pprof_delta_is_cumulative_type(sp_pprof_str(p, p->sample_type[j]->type));
    if (!cfg || !cfg->data || cfg->len == 0 || cfg->len > 65536)
        return;
    struct json_tokener *tok = json_tokener_new_ex(8);
    if (!tok)
        return;
    struct json_object *root = json_tokener_parse_ex(tok, (const char *)cfg->data, (int)cfg->len);
    if (root && json_object_is_type(root, json_type_object)) {
        for (size_t j = 0; j < p->n_sample_type; j++) {
            struct json_object *e, *c;
            const char *t = sp_pprof_str(p, p->sample_type[j]->type);
            if (t && json_object_object_get_ex(root, t, &e) &&
                json_object_object_get_ex(e, "cumulative", &c))
                cum[j] = json_object_get_boolean(c);
        }
    }
    json_object_put(root);
    json_tokener_free(tok);
}

static int pprof_ingest(struct pprof_ctx *ctx, struct sp_http_request *req)
{
    const enum pprof_dialect D = PPROF_DIALECT_PYROSCOPE;
    struct sp_err err = {0};
    struct sp_batch *b = pprof_batch_new(ctx, "pyroscope");
    if (!b)
        return pprof_refuse(ctx, req, D, SP_EIO, "out of memory");
    struct sp_profile *p = &b->u.profile;
    struct sp_pyroscope_ingest in;
    int rc = sp_pyroscope_parse_ingest(pprof_query_get, req, b->arena, &in, &err);
    if (rc < 0) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, rc, err.msg);
    }
    if (in.format && *in.format && strcmp(in.format, "pprof") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "format '%.40s' is not supported (only pprof)", in.format);
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_EUNSUPPORTED, msg);
    }
    sp_metric_add(ctx->m[D].bytes, (double)req->body_len);
    const uint8_t *body = req->body;
    size_t len = req->body_len;
    const char *part_name = "body";
    const struct sp_multipart_part *prev = NULL, *cfg = NULL;
    const char *ct = sp_http_header(req, "Content-Type");
    if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
        char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
        struct sp_multipart_part *parts;
        size_t n;
        struct sp_multipart_limits lim = {.max_parts = 8,
                                          .max_part_size = (size_t)ctx->conf->max_profile_size};
        if ((rc = sp_multipart_boundary(ct, boundary, &err)) < 0 ||
            (rc = sp_multipart_parse(req->body, req->body_len, boundary, &lim, b->arena, &parts,
                                     &n, &err)) < 0) {
            sp_batch_unref(b);
            return pprof_refuse(ctx, req, D, rc, err.msg);
        }
        const struct sp_multipart_part *prof = sp_multipart_find(parts, n, "profile");
        if (!prof) {
            sp_batch_unref(b);
            return pprof_refuse(ctx, req, D, SP_EDECODE, "multipart ingest has no 'profile' part");
        }
        if (prof->oversize) {
            sp_batch_unref(b);
            return pprof_refuse(ctx, req, D, SP_ETOOBIG,
                                "part 'profile' is over max_profile_size");
        }
        body = prof->data;
        len = prof->len;
        part_name = "part 'profile'";
        prev = sp_multipart_find(parts, n, "prev_profile");
        cfg = sp_multipart_find(parts, n, "sample_type_config");
    }
    if (len == 0) {
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, SP_EDECODE, "empty profile: want a pprof profile");
    }
    rc = pprof_single(ctx, b, NULL, body, len, &err);
    if (rc < 0) {
        sp_err_prefix(&err, "%s", part_name);
        sp_batch_unref(b);
        return pprof_refuse(ctx, req, D, rc, err.msg);
    }
    sp_pprof *prof = p->attachments[0].pprof;
    if (prev && prev->len && !prev->oversize) {
        /* Deprecated cumulative base: subtract it for the cumulative types. */
        sp_pprof *base = NULL;
        bool *cum = sp_arena_calloc(b->arena, prof->n_sample_type + 1, sizeof(bool));
        rc = sp_pprof_decode(prev->data, prev->len, ctx->conf->max_profile_size, b->arena, &base,
                             NULL, &err);
        if (rc == 0 && cum) {
            pprof_cumulative_from_config(prof, cfg, cum);
            rc = pprof_delta_subtract(prof, base, cum);
            if (rc == 0)
                p->attachments[0].modified = true;
        }
        if (rc < 0)
            pprof_log_warn(ctx, "ingest for '%s': ignoring part 'prev_profile': %s", in.app,
                           rc == SP_EINVAL ? "sample types differ from 'profile'" : err.msg);
    }
    /* Envelope: the app name is the service, labels fill what they name. */
    p->service = pprof_strip_type_suffix(b->arena, in.app);
    size_t ntags = 0;
    p->tags = sp_arena_calloc(b->arena, in.label_count + 2, sizeof(*p->tags));
    for (size_t i = 0; p->tags && i < in.label_count; i++) {
        const struct sp_kv_str *l = &in.labels[i];
        if (strcmp(l->key, "service_name") == 0 && *l->value)
            p->service = l->value;
        else if (strcmp(l->key, "env") == 0 && !p->env)
            p->env = l->value;
        else if (strcmp(l->key, "version") == 0 && !p->version)
            p->version = l->value;
        else if (strcmp(l->key, "host") == 0 && !p->host)
            p->host = l->value;
        else
            p->tags[ntags++] = *l;
    }
    if (p->tags && in.spy_name)
        p->tags[ntags++] = (struct sp_kv_str){"spy_name", in.spy_name};
    p->tag_count = p->tags ? ntags : 0;
    p->family = pprof_family_of_spy(in.spy_name);
    if (!p->family)
        p->family = pprof_guess_family(prof);
    /* The pprof's own window is the most precise (@pyroscope/nodejs sends
     * whole seconds, often from == until); then the query's. */
    if (prof->time_nanos > 0) {
        pprof_times_from_pprof(p);
    } else {
        p->start_ns = in.from_ns;
        p->end_ns = in.until_ns;
        pprof_times_from_pprof(p);
    }
    pprof_finish(ctx, req, D, b, 200, "text/plain", "");
    sp_batch_unref(b);
    return 0;
}

/* --- dispatch ------------------------------------------------------------------- */

static void pprof_tracer(struct pprof_ctx *ctx, struct sp_http_request *req, enum pprof_route r)
{
    sp_metric_inc(ctx->tracer_requests);
    /* Once, at the first: say what happens and what to do (the total comes
     * again at shutdown). */
    if (ctx->tracer_dropped++ == 0)
        sp_log_warn(ctx->comp->id,
                    "a Datadog tracer sends its own traces here (%s %s): tracer requests are "
                    "answered 200 and dropped, 1 so far "
                    "(spanprof_receiver_tracer_requests_dropped_total). spanprof takes spans "
                    "over OTLP: export them with the OpenTelemetry SDK to "
                    "OTEL_EXPORTER_OTLP_ENDPOINT (gRPC :4317, HTTP :4318); dd-trace's profiler "
                    "keeps working",
                    req->method, req->path);
    else
        sp_log_debug(ctx->comp->id, "tracer request %s %s answered and dropped", req->method,
                     req->path);
    if (r == ROUTE_TRACES) {
        static const char body[] = "{\"rate_by_service\":{}}";
        sp_httpd_respond(req, 200, "application/json", body, sizeof(body) - 1, NULL);
    } else {
        sp_httpd_respond(req, 200, "application/json", "{}", 2, NULL);
    }
}

void pprof_http_handler(void *ud, struct sp_http_request *req)
{
    struct pprof_ctx *ctx = ud;
    enum pprof_route r = pprof_route_of(req->path);
    bool post = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0;
    if (req->phase == SP_HTTP_HEADERS) {
        switch (r) {
        case ROUTE_INFO:
            if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
                const char *allow[] = {"Allow", "GET", NULL};
                sp_httpd_respond(req, 405, "text/plain", "method not allowed\n", 19, allow);
                return;
            }
            pprof_info(ctx, req);
            return;
        case ROUTE_DD_INPUT:
        case ROUTE_PPROF:
        case ROUTE_INGEST:
            if (!post) {
                const char *allow[] = {"Allow", "POST", NULL};
                sp_httpd_respond(req, 405, "text/plain", "method not allowed\n", 19, allow);
                return;
            }
            if (ctx->shutting_down) {
                pprof_respond_err(ctx, req, SP_ESHUTDOWN, "spanprof is shutting down");
                return;
            }
            if (r == ROUTE_DD_INPUT) {
                /* refuse a body we could not parse before reading it */
                char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
                struct sp_err err = {0};
                int rc = sp_multipart_boundary(sp_http_header(req, "Content-Type"), boundary,
                                               &err);
                if (rc < 0)
                    (void)pprof_refuse(ctx, req, PPROF_DIALECT_DATADOG, rc, err.msg);
            }
            return; /* wait for the body (bounded by max_request_size) */
        case ROUTE_TRACES:
        case ROUTE_TRACER_OK:
            if (ctx->conf->accept_tracer_traffic && post) {
                pprof_tracer(ctx, req, r);
                return;
            }
            break;
        case ROUTE_RC:
        case ROUTE_NONE:
            break;
        }
        sp_log_debug(ctx->comp->id, "no route for %s %s: 404", req->method, req->path);
        sp_httpd_respond_text(req, 404, "not found");
        return;
    }
    switch (r) {
    case ROUTE_DD_INPUT:
        (void)pprof_dd_input(ctx, req);
        break;
    case ROUTE_PPROF:
        (void)pprof_push(ctx, req);
        break;
    case ROUTE_INGEST:
        (void)pprof_ingest(ctx, req);
        break;
    default:
        sp_httpd_respond_text(req, 404, "not found");
        break;
    }
}
