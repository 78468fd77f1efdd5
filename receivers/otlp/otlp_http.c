/* OTLP/HTTP: POST {traces,metrics,logs}_url_path with a protobuf or JSON
 * export request of that signal, on sp_httpd (libmicrohttpd on the loop).
 *
 * Everything that can be decided from the headers is answered before the
 * body is read: path (404), method (405 with Allow; CORS preflight),
 * Content-Type (415), Content-Encoding (415), a Content-Length over
 * max_request_body_size (413). The body is read under the same limit
 * (sp_httpd answers 413 itself if a chunked body passes it), inflated under
 * it again (413 when it would pass), decoded and handed on; before
 * inflating, the pipeline is asked again (otlp_admit_decode: it may have
 * filled while the body arrived) and a refusal then skips the decoding.
 * Answers are in the request's encoding: 200 ExportTraceServiceResponse (partial_success
 * when spans were rejected), 400 google.rpc.Status naming what failed,
 * 429 (queue full) or 503 (transient failure) with Retry-After. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_int.h"
#include "sp_compress.h"
#include "sp_log.h"

/* What a full pipeline asks clients to wait, in seconds (OTLP_RETRY_AFTER_S).
 * The OTel SDK exporters honour Retry-After on 429 and 503. */
#define OTLP_STR2(x) #x
#define OTLP_STR(x) OTLP_STR2(x)
#define OTLP_HTTP_RETRY_AFTER OTLP_STR(OTLP_RETRY_AFTER_S)

/* Request headers a browser may always send cross-origin. */
static const char *const otlp_cors_default_headers[] = {
    "content-type", "content-encoding", "accept", "origin", "x-requested-with",
};

struct otlp_http_req {
    enum otlp_sig sig;
    enum sp_otlp_encoding enc;
    enum sp_compression compression;
    const char *origin; /* allowed Origin to echo, or NULL */
};

/* Up to 10 header pairs and the NULL terminator. */
struct otlp_hdrs {
    const char *v[22];
    size_t n;
};

static void hdr_add(struct otlp_hdrs *h, const char *k, const char *v)
{
    if (h->n + 2 >= sizeof(h->v) / sizeof(h->v[0]))
        return;
    h->v[h->n++] = k;
    h->v[h->n++] = v;
    h->v[h->n] = NULL;
}

/* ---- CORS ---- */

static bool otlp_origin_match(const char *pattern, const char *origin)
{
    if (strcmp(pattern, "*") == 0)
        return true;
    const char *star = strchr(pattern, '*');
    if (!star)
        return strcasecmp(pattern, origin) == 0;
    size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), n = strlen(origin);
    return n >= pre + suf && strncasecmp(origin, pattern, pre) == 0 &&
           strcasecmp(origin + n - suf, star + 1) == 0;
}

static const char *otlp_cors_origin(const struct otlp_http_conf *conf, struct sp_http_request *req)
{
    const char *origin = sp_http_header(req, "Origin");
    if (!origin || conf->cors.allowed_origins.n == 0)
        return NULL;
    for (size_t i = 0; i < conf->cors.allowed_origins.n; i++)
        if (otlp_origin_match(conf->cors.allowed_origins.v[i], origin))
            return origin;
    return NULL;
}

static bool otlp_cors_header_allowed(const struct otlp_http_conf *conf, const char *name,
                                     size_t len)
{
    for (size_t i = 0; i < sizeof(otlp_cors_default_headers) / sizeof(char *); i++)
        if (strlen(otlp_cors_default_headers[i]) == len &&
            strncasecmp(otlp_cors_default_headers[i], name, len) == 0)
            return true;
    for (size_t i = 0; i < conf->cors.allowed_headers.n; i++) {
        const char *a = conf->cors.allowed_headers.v[i];
        if (strcmp(a, "*") == 0 || (strlen(a) == len && strncasecmp(a, name, len) == 0))
            return true;
    }
    return false;
}

static void otlp_cors_preflight(struct otlp_ctx *ctx, struct sp_http_request *req)
{
    const struct otlp_http_conf *conf = &ctx->conf->protocols.http;
    const char *origin = otlp_cors_origin(conf, req);
    char msg[256];
    if (!origin) {
        otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_UNSUPPORTED, "CORS preflight from an origin "
                                                               "not in cors.allowed_origins");
        sp_httpd_respond_text(req, 403, "origin not allowed: add it to cors.allowed_origins");
        return;
    }
    const char *method = sp_http_header(req, "Access-Control-Request-Method");
    if (method && strcmp(method, "POST") != 0) {
        snprintf(msg, sizeof(msg), "method '%.40s' not allowed: only POST", method);
        sp_httpd_respond_text(req, 403, msg);
        return;
    }
    const char *want = sp_http_header(req, "Access-Control-Request-Headers");
    for (const char *p = want; p && *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t && !otlp_cors_header_allowed(conf, p, t)) {
            snprintf(msg, sizeof(msg), "request header '%.*s' not allowed: add it to "
                     "cors.allowed_headers", (int)(t > 60 ? 60 : t), p);
            sp_httpd_respond_text(req, 403, msg);
            return;
        }
        p += n;
    }
    char max_age[24];
    struct otlp_hdrs h = {.n = 0};
    hdr_add(&h, "Access-Control-Allow-Origin", origin);
    hdr_add(&h, "Access-Control-Allow-Methods", "POST");
    if (want && *want)
        hdr_add(&h, "Access-Control-Allow-Headers", want);
    if (conf->cors.max_age > 0) {
        snprintf(max_age, sizeof(max_age), "%lld", (long long)conf->cors.max_age);
        hdr_add(&h, "Access-Control-Max-Age", max_age);
    }
    hdr_add(&h, "Vary", "Origin");
    sp_httpd_respond(req, 204, NULL, NULL, 0, h.v);
}

/* ---- answers ---- */

static void otlp_http_status(struct sp_http_request *req, const struct otlp_http_req *r,
                             unsigned http, int grpc_code, const char *msg, bool retry)
{
    struct sp_buf body = {0};
    struct otlp_hdrs h = {.n = 0};
    if (r->origin) {
        hdr_add(&h, "Access-Control-Allow-Origin", r->origin);
        hdr_add(&h, "Vary", "Origin");
    }
    if (retry)
        hdr_add(&h, "Retry-After", OTLP_HTTP_RETRY_AFTER);
    if (sp_otlp_encode_status(r->enc, grpc_code, msg, &body)) {
        sp_buf_free(&body);
        sp_httpd_respond_text(req, 500, "out of memory");
        return;
    }
    sp_httpd_respond(req, http, sp_otlp_content_type_name(r->enc), body.data, body.len, h.v);
    sp_buf_free(&body);
}

/* A refusal the client should retry: 429 when a queue or the memory ceiling
 * is full (the OTLP spec's throttling answer), 503 for other transient
 * failures; both with Retry-After. */
static void otlp_http_refused(struct sp_http_request *req, const struct otlp_http_req *r,
                              const struct otlp_result *res)
{
    if (res->code == SP_EFULL)
        otlp_http_status(req, r, 429, SP_GRPC_RESOURCE_EXHAUSTED, res->message, true);
    else
        otlp_http_status(req, r, 503, SP_GRPC_UNAVAILABLE, res->message, true);
}

static void otlp_http_too_big(struct otlp_ctx *ctx, struct sp_http_request *req,
                              const struct otlp_http_req *r, const char *msg)
{
    otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_TOO_LARGE, msg);
    otlp_http_status(req, r, 413, SP_GRPC_RESOURCE_EXHAUSTED, msg, false);
}

/* The signal served at path, or OTLP_SIG_COUNT. */
static enum otlp_sig otlp_http_signal(const struct otlp_http_conf *conf, const char *path)
{
    for (int s = 0; s < OTLP_SIG_COUNT; s++)
        if (strcmp(path, otlp_http_path(conf, (enum otlp_sig)s)) == 0)
            return (enum otlp_sig)s;
    return OTLP_SIG_COUNT;
}

/* Parses the headers shared by both phases. Answers and returns false
 * when the request cannot be served. */
static bool otlp_http_parse(struct otlp_ctx *ctx, struct sp_http_request *req,
                            struct otlp_http_req *r)
{
    const struct otlp_http_conf *conf = &ctx->conf->protocols.http;
    char msg[256];
    memset(r, 0, sizeof(*r));
    r->sig = otlp_http_signal(conf, req->path);
    r->origin = otlp_cors_origin(conf, req);
    const char *ct = sp_http_header(req, "Content-Type");
    int enc = sp_otlp_content_type(ct);
    if (enc < 0) {
        snprintf(msg, sizeof(msg),
                 "unsupported content type '%.80s': use application/x-protobuf or "
                 "application/json",
                 ct ? ct : "");
        if (req->phase == SP_HTTP_HEADERS)
            otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_UNSUPPORTED, msg);
        sp_httpd_respond_text(req, 415, msg);
        return false;
    }
    r->enc = (enum sp_otlp_encoding)enc;
    const char *ce = sp_http_header(req, "Content-Encoding");
    char tok[32] = "";
    if (ce) {
        size_t a = strspn(ce, " \t"), n = strlen(ce + a);
        while (n > 0 && (ce[a + n - 1] == ' ' || ce[a + n - 1] == '\t'))
            n--;
        if (n < sizeof(tok)) {
            memcpy(tok, ce + a, n);
            tok[n] = '\0';
        } else {
            snprintf(tok, sizeof(tok), "?");
        }
    }
    int c = sp_compression_parse(tok);
    if (c < 0) {
        snprintf(msg, sizeof(msg),
                 "unsupported Content-Encoding '%.60s': use gzip, zstd, deflate or none",
                 ce ? ce : "");
        if (req->phase == SP_HTTP_HEADERS)
            otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_UNSUPPORTED, msg);
        otlp_http_status(req, r, 415, SP_GRPC_INVALID_ARGUMENT, msg, false);
        return false;
    }
    r->compression = (enum sp_compression)c;
    return true;
}

static void otlp_http_headers(struct otlp_ctx *ctx, struct sp_http_request *req)
{
    const struct otlp_http_conf *conf = &ctx->conf->protocols.http;
    bool cors = conf->cors.allowed_origins.n > 0;
    char msg[256];
    if (otlp_http_signal(conf, req->path) == OTLP_SIG_COUNT) {
        snprintf(msg, sizeof(msg), "not found: OTLP exports are accepted at POST %.60s (traces), "
                 "%.60s (metrics) and %.60s (logs)", conf->traces_url_path,
                 conf->metrics_url_path, conf->logs_url_path);
        otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_UNSUPPORTED, NULL);
        sp_httpd_respond_text(req, 404, msg);
        return;
    }
    if (cors && strcmp(req->method, "OPTIONS") == 0 && sp_http_header(req, "Origin")) {
        otlp_cors_preflight(ctx, req);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        static const char *const allow[] = {"Allow", "POST", NULL};
        static const char *const allow_cors[] = {"Allow", "POST, OPTIONS", NULL};
        snprintf(msg, sizeof(msg), "method %.20s not allowed: OTLP exports use POST", req->method);
        otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_UNSUPPORTED, msg);
        sp_httpd_respond(req, 405, "text/plain; charset=utf-8", msg, strlen(msg),
                         cors ? allow_cors : allow);
        return;
    }
    struct otlp_http_req r;
    if (!otlp_http_parse(ctx, req, &r))
        return;
    req->max_body = (size_t)conf->max_request_body_size;
    const char *cl = sp_http_header(req, "Content-Length");
    unsigned long long n = 0;
    if (cl) {
        char *end;
        n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > conf->max_request_body_size) {
            snprintf(msg, sizeof(msg),
                     "request body of %llu bytes is over max_request_body_size (%llu bytes)", n,
                     (unsigned long long)conf->max_request_body_size);
            otlp_http_too_big(ctx, req, &r, msg);
            return;
        }
        if (*end != '\0')
            n = 0;
    }
    /* Refuse before reading: sp_httpd discards the body unread. */
    struct otlp_result res;
    if (!otlp_admit(ctx, OTLP_HTTP, r.sig, (size_t)n, &res))
        otlp_http_refused(req, &r, &res);
}

/* sp_httpd could not buffer the body (the memory ceiling's hard mark). */
static void otlp_http_overload(struct otlp_ctx *ctx, struct sp_http_request *req)
{
    struct otlp_http_req r;
    if (!otlp_http_parse(ctx, req, &r))
        return;
    struct otlp_result res = {.outcome = OTLP_OUT_REFUSED, .code = SP_EFULL};
    snprintf(res.message, sizeof(res.message),
             "memory ceiling reached while receiving the body (service.memory_limit); retry in "
             "%d s", OTLP_RETRY_AFTER_S);
    otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_REFUSED, res.message);
    otlp_http_refused(req, &r, &res);
}

static void otlp_http_body(struct otlp_ctx *ctx, struct sp_http_request *req)
{
    const struct otlp_http_conf *conf = &ctx->conf->protocols.http;
    struct otlp_http_req r;
    otlp_count_bytes(ctx, OTLP_HTTP, req->body_len);
    if (!otlp_http_parse(ctx, req, &r))
        return;
    struct otlp_result res;
    if (!otlp_admit_decode(ctx, OTLP_HTTP, r.sig, &res)) {
        otlp_http_refused(req, &r, &res);
        return;
    }
    struct sp_err err = {0};
    struct sp_arena *scratch = sp_arena_create(0);
    if (!scratch) {
        otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_REFUSED, "out of memory");
        otlp_http_status(req, &r, 503, SP_GRPC_UNAVAILABLE, "out of memory", true);
        return;
    }
    /* The inflated body counts against the memory ceiling too. */
    sp_arena_set_mem_class(scratch, SP_MEM_BODIES);
    const uint8_t *body;
    size_t len;
    int rc = sp_decompress(r.compression, req->body, req->body_len,
                           (size_t)conf->max_request_body_size, scratch, &body, &len, &err);
    if (rc) {
        if (sp_arena_ceiling_hit(scratch)) {
            sp_arena_destroy(scratch);
            otlp_http_overload(ctx, req);
            return;
        }
        if (rc == SP_ETOOBIG) {
            char msg[SP_ERR_MSG_MAX + 64];
            snprintf(msg, sizeof(msg), "%s (max_request_body_size)", err.msg);
            otlp_http_too_big(ctx, req, &r, msg);
        } else {
            sp_err_prefix(&err, "Content-Encoding %s", sp_compression_name(r.compression));
            otlp_count_early(ctx, OTLP_HTTP, OTLP_OUT_INVALID, err.msg);
            otlp_http_status(req, &r, 400, SP_GRPC_INVALID_ARGUMENT, err.msg, false);
        }
        sp_arena_destroy(scratch);
        return;
    }
    otlp_export(ctx, r.sig, OTLP_HTTP, r.enc, body, len, &res);
    sp_arena_destroy(scratch);
    switch (res.outcome) {
    case OTLP_OUT_SUCCESS:
    case OTLP_OUT_PARTIAL: {
        struct sp_buf out = {0};
        struct otlp_hdrs h = {.n = 0};
        if (r.origin) {
            hdr_add(&h, "Access-Control-Allow-Origin", r.origin);
            hdr_add(&h, "Vary", "Origin");
        }
        if (sp_otlp_encode_response(r.enc, res.rejected, res.message, &out)) {
            sp_buf_free(&out);
            sp_httpd_respond_text(req, 500, "out of memory encoding the response");
            return;
        }
        sp_httpd_respond(req, 200, sp_otlp_content_type_name(r.enc), out.data, out.len, h.v);
        sp_buf_free(&out);
        return;
    }
    case OTLP_OUT_INVALID:
        otlp_http_status(req, &r, 400, SP_GRPC_INVALID_ARGUMENT, res.message, false);
        return;
    case OTLP_OUT_TOO_LARGE:
        otlp_http_status(req, &r, 413, SP_GRPC_RESOURCE_EXHAUSTED, res.message, false);
        return;
    case OTLP_OUT_REFUSED:
        otlp_http_refused(req, &r, &res);
        return;
    default:
        otlp_http_status(req, &r, 500, SP_GRPC_INTERNAL, res.message, false);
        return;
    }
}

static void otlp_http_handler(void *ud, struct sp_http_request *req)
{
    struct otlp_ctx *ctx = ud;
    if (req->phase == SP_HTTP_HEADERS)
        otlp_http_headers(ctx, req);
    else if (req->phase == SP_HTTP_OVERLOAD)
        otlp_http_overload(ctx, req);
    else
        otlp_http_body(ctx, req);
}

int otlp_http_start(struct otlp_ctx *ctx, struct sp_err *err)
{
    const struct otlp_http_conf *conf = &ctx->conf->protocols.http;
    struct sp_httpd_opts o = {
        .endpoint = conf->endpoint,
        .max_body = (size_t)conf->max_request_body_size,
        .connection_timeout_s = (unsigned)((conf->idle_timeout_ms + 999) / 1000),
        .max_connections = (unsigned)conf->max_connections,
        .name = ctx->comp->id,
    };
    int rc = sp_httpd_start(ctx->comp->loop, &o, otlp_http_handler, ctx, &ctx->httpd, err);
    if (rc) {
        sp_err_prefix(err, "receivers.%s.protocols.http.endpoint", ctx->comp->id);
        return rc;
    }
    ctx->http_port = sp_httpd_port(ctx->httpd);
    return 0;
}

struct otlp_http_stop {
    struct otlp_ctx *ctx;
    void (*done_one)(struct otlp_ctx *ctx);
};

static void otlp_http_stopped(void *ud)
{
    struct otlp_http_stop *s = ud;
    struct otlp_ctx *ctx = s->ctx;
    void (*done_one)(struct otlp_ctx *) = s->done_one;
    free(s);
    done_one(ctx);
}

void otlp_http_shutdown(struct otlp_ctx *ctx, void (*done_one)(struct otlp_ctx *ctx))
{
    struct sp_httpd *h = ctx->httpd;
    if (!h) {
        done_one(ctx);
        return;
    }
    struct otlp_http_stop *s = malloc(sizeof(*s));
    ctx->httpd = NULL;
    sp_httpd_quiesce(h);
    if (!s) {
        sp_httpd_stop(h, NULL, NULL);
        done_one(ctx);
        return;
    }
    s->ctx = ctx;
    s->done_one = done_one;
    sp_httpd_stop(h, otlp_http_stopped, s);
}
