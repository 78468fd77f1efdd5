/* pprof receiver, pull mode: scrape Go's net/http/pprof endpoints.
 *
 * One job per (target, profile type), each with its own uv timer and at
 * most one request in flight (a scrape still running when the next is due
 * is skipped and counted, never stacked). Requests go through the shared
 * libcurl-on-libuv client; the response is bounded by max_profile_size.
 * CPU profiles (/debug/pprof/profile?seconds=N) are taken as they are;
 * cumulative profiles (heap's alloc_*, mutex, block) become deltas against
 * the previous scrape of the same job (pprof_delta.c): the first scrape only
 * sets the baseline, as dd-trace-go and godeltaprof do.
 *
 * Like the push routes refuse an upload before reading it, a scrape asks
 * the pipeline first (sp_component_ready: its queues, the memory ceiling)
 * when it is due and again, with the response's size, before decoding the
 * response; refused, it is skipped, counted
 * (spanprof_receiver_scrapes_refused_total) and logged (rate-limited). A
 * cumulative profile's baseline then stays where it was, so the next delta
 * covers the skipped interval too: nothing is lost. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "pprof_int.h"
#include "sp_component.h"
#include "sp_log.h"

struct pprof_profile_kind {
    const char *name;       /* as configured */
    const char *path;       /* under /debug/pprof/ */
    const char *attachment; /* Datadog attachment name (datadog.md §5.5) */
    bool cumulative;
};

static const struct pprof_profile_kind pprof_kinds[] = {
    {"cpu", "profile", "cpu.pprof", false},
    {"heap", "heap", "delta-heap.pprof", true},
    {"allocs", "allocs", "delta-allocs.pprof", true},
    {"goroutine", "goroutine", "goroutines.pprof", false},
    {"mutex", "mutex", "delta-mutex.pprof", true},
    {"block", "block", "delta-block.pprof", true},
};

static const struct pprof_profile_kind *pprof_kind(const char *name)
{
    for (size_t i = 0; i < sizeof(pprof_kinds) / sizeof(pprof_kinds[0]); i++)
        if (strcmp(pprof_kinds[i].name, name) == 0)
            return &pprof_kinds[i];
    return NULL;
}

/* "host:port" -> "http://host:port"; URLs are kept (without a final '/'). */
static char *pprof_target_base(const char *t)
{
    size_t n = strlen(t);
    while (n && t[n - 1] == '/')
        n--;
    bool url = strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0;
    char *out = malloc(n + 8);
    if (!out)
        return NULL;
    snprintf(out, n + 8, "%s%.*s", url ? "" : "http://", (int)n, t);
    return out;
}

/* The host of a target, for the default service name. */
static void pprof_target_host(const char *t, char *out, size_t cap)
{
    const char *h = strstr(t, "://");
    h = h ? h + 3 : t;
    const char *at = strchr(h, '@');
    if (at && at < h + strcspn(h, "/"))
        h = at + 1;
    size_t n = strcspn(h, ":/");
    snprintf(out, cap, "%.*s", (int)n, h);
}

/* The target as logs and metric labels show it: credentials in a URL
 * (http://user:pass@host) are replaced, and also registered as log
 * secrets in case a transport error repeats them. */
static char *pprof_target_display(const char *t)
{
    const char *h = strstr(t, "://");
    const char *auth = h ? h + 3 : t;
    size_t alen = strcspn(auth, "/");
    const char *at = memchr(auth, '@', alen);
    if (!at)
        return strdup(t);
    char *userinfo = strndup(auth, (size_t)(at - auth));
    if (userinfo) {
        sp_log_add_secret(userinfo);
        char *colon = strchr(userinfo, ':');
        if (colon)
            sp_log_add_secret(colon + 1);
        explicit_bzero(userinfo, strlen(userinfo));
        free(userinfo);
    }
    size_t n = strlen(t) + 16;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s[REDACTED]%s", (int)(auth - t), t, at);
    return out;
}

int pprof_scrape_validate(struct pprof_ctx *ctx, struct sp_err *err)
{
    const struct pprof_conf *conf = ctx->conf;
    const struct sp_conf_ctx *cc = ctx->comp->conf_ctx;
    size_t jobs = 0;
    char path[128];
    for (size_t i = 0; i < conf->scrape.n; i++) {
        const struct pprof_scrape_conf *s =
            (const struct pprof_scrape_conf *)conf->scrape.items + i;
        if (s->targets.n == 0) {
            snprintf(path, sizeof(path), "scrape[%zu].targets", i);
            return sp_conf_errorf(cc, err, path, "needs at least one target");
        }
        for (size_t t = 0; t < s->targets.n; t++) {
            const char *tg = s->targets.v[t];
            const char *h = strstr(tg, "://");
            if (!*tg || (h && strncmp(tg, "http", 4) != 0) || (!h && !strchr(tg, ':'))) {
                snprintf(path, sizeof(path), "scrape[%zu].targets[%zu]", i, t);
                return sp_conf_errorf(cc, err, path,
                                      "'%s' is not host:port or an http(s):// URL", tg);
            }
        }
        snprintf(path, sizeof(path), "scrape[%zu].interval", i);
        if (s->interval_ms < 1000)
            return sp_conf_errorf(cc, err, path, "must be at least 1s");
        snprintf(path, sizeof(path), "scrape[%zu].cpu_duration", i);
        if (s->cpu_duration_ms < 1000 || s->cpu_duration_ms > s->interval_ms)
            return sp_conf_errorf(cc, err, path, "must be between 1s and the interval (%llds)",
                                  (long long)(s->interval_ms / 1000));
        snprintf(path, sizeof(path), "scrape[%zu].timeout", i);
        if (s->timeout_ms < 0)
            return sp_conf_errorf(cc, err, path, "must not be negative");
        if (s->profiles.n == 0) {
            snprintf(path, sizeof(path), "scrape[%zu].profiles", i);
            return sp_conf_errorf(cc, err, path, "needs at least one profile type");
        }
        for (size_t p = 0; p < s->profiles.n; p++) {
            snprintf(path, sizeof(path), "scrape[%zu].profiles[%zu]", i, p);
            if (!pprof_kind(s->profiles.v[p]))
                return sp_conf_errorf(cc, err, path,
                                      "unknown profile type '%s' (want cpu, heap, allocs, "
                                      "goroutine, mutex or block)",
                                      s->profiles.v[p]);
            for (size_t q = 0; q < p; q++)
                if (strcmp(s->profiles.v[p], s->profiles.v[q]) == 0)
                    return sp_conf_errorf(cc, err, path, "'%s' is listed twice",
                                          s->profiles.v[p]);
        }
        jobs += s->targets.n * s->profiles.n;
    }
    if (jobs == 0)
        return 0;
    if (jobs > 4096)
        return sp_conf_errorf(cc, err, "scrape", "%zu scrape jobs, more than 4096", jobs);
    ctx->jobs = calloc(jobs, sizeof(*ctx->jobs));
    if (!ctx->jobs)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    for (size_t i = 0; i < conf->scrape.n; i++) {
        const struct pprof_scrape_conf *s =
            (const struct pprof_scrape_conf *)conf->scrape.items + i;
        for (size_t t = 0; t < s->targets.n; t++) {
            for (size_t p = 0; p < s->profiles.n; p++) {
                const struct pprof_profile_kind *k = pprof_kind(s->profiles.v[p]);
                struct pprof_scrape_job *j = &ctx->jobs[ctx->job_count++];
                j->ctx = ctx;
                j->conf = s;
                j->target = pprof_target_display(s->targets.v[t]);
                char *base = pprof_target_base(s->targets.v[t]);
                if (!j->target || !base) {
                    free(base);
                    return sp_err_set(err, SP_ENOMEM, "out of memory");
                }
                size_t ulen = strlen(base) + 64;
                j->url = malloc(ulen);
                if (!j->url) {
                    free(base);
                    return sp_err_set(err, SP_ENOMEM, "out of memory");
                }
                if (strcmp(k->name, "cpu") == 0)
                    snprintf(j->url, ulen, "%s/debug/pprof/profile?seconds=%lld", base,
                             (long long)((s->cpu_duration_ms + 999) / 1000));
                else
                    snprintf(j->url, ulen, "%s/debug/pprof/%s", base, k->path);
                free(base);
                j->profile = k->name;
                j->attachment_name = k->attachment;
                j->cumulative = k->cumulative;
                if (j->cumulative && !(j->delta = pprof_delta_new()))
                    return sp_err_set(err, SP_ENOMEM, "out of memory");
                /* credentials are out of the displayed target; quotes and
                 * backslashes are escaped for the exposition format */
                char labels[768], tq[256];
                size_t o = 0;
                for (const char *c = j->target; *c && o + 2 < sizeof(tq); c++) {
                    if (*c == '"' || *c == '\\')
                        tq[o++] = '\\';
                    tq[o++] = *c;
                }
                tq[o] = '\0';
                snprintf(labels, sizeof(labels), "%s,target=\"%s\",profile=\"%s\"",
                         ctx->comp->metric_labels, tq, k->name);
                char ok[800], bad[800];
                snprintf(ok, sizeof(ok), "%s,result=\"success\"", labels);
                snprintf(bad, sizeof(bad), "%s,result=\"failure\"", labels);
                j->ok = sp_counter("spanprof_receiver_scrapes_total",
                                   "Scrapes of a /debug/pprof endpoint, by result", ok);
                j->failed = sp_counter("spanprof_receiver_scrapes_total",
                                       "Scrapes of a /debug/pprof endpoint, by result", bad);
                j->skipped = sp_counter("spanprof_receiver_scrapes_skipped_total",
                                        "Scrapes not started because the previous one of the "
                                        "same target and profile was still running",
                                        labels);
                j->refused = sp_counter("spanprof_receiver_scrapes_refused_total",
                                        "Scrapes skipped, or responses dropped undecoded, because "
                                        "the pipeline refused profiles (full queue, memory "
                                        "ceiling)",
                                        labels);
                j->last_success = sp_gauge("spanprof_receiver_scrape_last_success_timestamp_"
                                           "seconds",
                                           "Unix time of the last successful scrape", labels);
                j->duration = sp_gauge("spanprof_receiver_scrape_duration_seconds",
                                       "Duration of the last scrape", labels);
            }
        }
    }
    return 0;
}

/* --- one scrape ------------------------------------------------------------- */

/* Counts and logs a failed scrape; returns 0 for `return pprof_job_fail(...)`. */
static int pprof_job_fail(struct pprof_scrape_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pprof_job_fail(struct pprof_scrape_job *j, const char *fmt, ...)
{
    sp_metric_inc(j->failed);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pprof_log_warn(j->ctx, "scrape of %s profile from '%s' failed: %s", j->profile, j->target,
                   msg);
    return 0;
}

/* A short printable excerpt of a body, for "returned HTML" style errors. */
static void pprof_excerpt(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap && o < 60; i++)
        out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : ' ';
    out[o] = '\0';
}

/* Can the pipeline take a profile of about `bytes`? If not, counts and
 * logs (rate-limited) why the scrape is skipped (`when`: before the request
 * or before decoding the response) and returns false. */
static bool pprof_scrape_admit(struct pprof_scrape_job *j, size_t bytes, const char *when)
{
    struct sp_err err = {0};
    if (sp_component_ready(j->ctx->comp, SP_SIGNAL_PROFILES, bytes, &err) == SP_OK)
        return true;
    sp_metric_inc(j->refused);
    pprof_log_warn(j->ctx, "scrape of %s profile from '%s' skipped %s: %s", j->profile, j->target,
                   when, err.msg[0] ? err.msg : "the pipeline refused it");
    return false;
}

static void pprof_fill_envelope(struct pprof_scrape_job *j, struct sp_batch *b)
{
    struct sp_profile *p = &b->u.profile;
    const struct pprof_scrape_conf *s = j->conf;
    char host[256];
    pprof_target_host(j->target, host, sizeof(host));
    p->service = sp_arena_strdup(b->arena, s->service && *s->service ? s->service : host);
    /* The host is a stand-in (in a sidecar it is always localhost): the
     * join replaces it with the service of the spans the samples join. */
    if (!(s->service && *s->service))
        p->service_fallback = sp_arena_strdup(b->arena, j->target);
    p->family = "go";
    p->profile_type = j->profile;
    p->tags = sp_arena_calloc(b->arena, s->tags.n + 1, sizeof(*p->tags));
    size_t n = 0;
    for (size_t i = 0; p->tags && i < s->tags.n; i++) {
        const char *k = s->tags.keys[i], *v = s->tags.values[i];
        if (strcmp(k, "env") == 0)
            p->env = v;
        else if (strcmp(k, "version") == 0)
            p->version = v;
        else if (strcmp(k, "host") == 0)
            p->host = v;
        else if (strcmp(k, "service") == 0) {
            p->service = v;
            p->service_fallback = NULL;
        }
        else
            p->tags[n++] = (struct sp_kv_str){k, v};
    }
    p->tag_count = p->tags ? n : 0;
}

static int pprof_scraped(struct pprof_scrape_job *j, const struct sp_http_response *resp)
{
    struct pprof_ctx *ctx = j->ctx;
    int64_t now = pprof_now_ns();
    sp_metric_set(j->duration, resp->total_s);
    sp_metric_add(ctx->m[PPROF_DIALECT_SCRAPE].bytes, (double)resp->body_len);
    if (resp->curl_code != CURLE_OK)
        return pprof_job_fail(j, "%s", resp->error ? resp->error : "transport error");
    if (resp->status != 200) {
        char ex[64];
        pprof_excerpt(resp->body, resp->body_len, ex, sizeof(ex));
        return pprof_job_fail(j, "HTTP %ld: %s", resp->status, ex);
    }
    if (resp->content_type && strncmp(resp->content_type, "text/html", 9) == 0) {
        char ex[64];
        pprof_excerpt(resp->body, resp->body_len, ex, sizeof(ex));
        return pprof_job_fail(j, "returned HTML, not a pprof profile: %s", ex);
    }
    if (!pprof_scrape_admit(j, resp->body_len, "before decoding the response"))
        return 0;
    struct sp_batch *b = pprof_batch_new(ctx, "scrape");
    if (!b)
        return pprof_job_fail(j, "out of memory");
    struct sp_profile *p = &b->u.profile;
    p->attachments = sp_arena_calloc(b->arena, 1, sizeof(*p->attachments));
    struct sp_err err = {0};
    int rc = p->attachments ? pprof_attach_pprof(ctx, b, &p->attachments[0], j->attachment_name,
                                                 resp->body, resp->body_len, &err)
                            : sp_err_set(&err, SP_ENOMEM, "out of memory");
    if (rc < 0) {
        sp_metric_inc(ctx->m[PPROF_DIALECT_SCRAPE].refused);
        sp_batch_unref(b);
        return pprof_job_fail(j, "response of %zu bytes: %s", resp->body_len, err.msg);
    }
    p->attachment_count = 1;
    struct sp_attachment *att = &p->attachments[0];
    if (j->cumulative) {
        bool had_baseline = false;
        if (pprof_delta_apply(j->delta, att->pprof, NULL, &had_baseline) < 0) {
            sp_batch_unref(b);
            return pprof_job_fail(j, "out of memory computing the delta");
        }
        if (!had_baseline) {
            /* first scrape (or sample types changed): baseline only */
            sp_metric_inc(j->ok);
            sp_metric_set(j->last_success, (double)now / 1e9);
            sp_log_debug(ctx->comp->id, "scrape of %s from '%s': baseline set", j->profile,
                         j->target);
            sp_batch_unref(b);
            return 0;
        }
        att->modified = true;
    }
    pprof_fill_envelope(j, b);
    p->start_ns = j->started_ns;
    p->end_ns = now;
    if (att->pprof->time_nanos > 0) {
        p->start_ns = att->pprof->time_nanos;
        if (att->pprof->duration_nanos > 0)
            p->end_ns = att->pprof->time_nanos + att->pprof->duration_nanos;
    }
    sp_metric_inc(j->ok);
    sp_metric_set(j->last_success, (double)now / 1e9);
    rc = pprof_emit(ctx, PPROF_DIALECT_SCRAPE, b, &err);
    if (rc != SP_OK)
        pprof_log_warn(ctx, "scraped %s profile from '%s' dropped: %s", j->profile, j->target,
                       err.msg[0] ? err.msg : sp_strerror(rc));
    sp_batch_unref(b);
    return 0;
}

static void pprof_on_scraped(void *ud, const struct sp_http_response *resp)
{
    struct pprof_scrape_job *j = ud;
    j->call = NULL;
    /* cancelled at shutdown: nothing to count */
    if (j->ctx->shutting_down || resp->curl_code == CURLE_ABORTED_BY_CALLBACK)
        return;
    (void)pprof_scraped(j, resp);
}

static void pprof_on_timer(uv_timer_t *t)
{
    struct pprof_scrape_job *j = t->data;
    struct pprof_ctx *ctx = j->ctx;
    if (ctx->shutting_down)
        return;
    if (j->call) {
        sp_metric_inc(j->skipped);
        pprof_log_warn(ctx, "scrape of %s profile from '%s' skipped: the previous one is still "
                            "running",
                       j->profile, j->target);
        return;
    }
    if (!pprof_scrape_admit(j, 0, "before the request"))
        return;
    const struct pprof_scrape_conf *s = j->conf;
    int64_t timeout = s->timeout_ms ? s->timeout_ms : 10000;
    if (strcmp(j->profile, "cpu") == 0)
        timeout += s->cpu_duration_ms;
    struct sp_http_call_opts o = {
        .method = "GET",
        .url = j->url,
        .timeout_ms = timeout,
        .max_response = (size_t)ctx->conf->max_profile_size,
    };
    j->started_ns = pprof_now_ns();
    int rc = sp_http_client_call(ctx->client, &o, pprof_on_scraped, j, &j->call);
    if (rc < 0) {
        j->call = NULL;
        (void)pprof_job_fail(j, "cannot start the request: %s", sp_strerror(rc));
    }
}

int pprof_scrape_start(struct pprof_ctx *ctx, struct sp_err *err)
{
    if (!ctx->job_count)
        return 0;
    ctx->client = sp_http_client_create(ctx->comp->loop);
    if (!ctx->client)
        return sp_err_set(err, SP_ENOMEM, "cannot create the scrape HTTP client");
    for (size_t i = 0; i < ctx->job_count; i++) {
        struct pprof_scrape_job *j = &ctx->jobs[i];
        uv_timer_init(ctx->comp->loop, &j->timer);
        j->timer.data = j;
        /* first scrape soon after start, spread a little so jobs do not
         * all hit one target at the same instant */
        uint64_t first = 100 + (uint64_t)(i % 20) * 50;
        uv_timer_start(&j->timer, pprof_on_timer, first, (uint64_t)j->conf->interval_ms);
        ctx->jobs_closing++;
    }
    return 0;
}

static void pprof_on_timer_closed(uv_handle_t *h)
{
    struct pprof_scrape_job *j = h->data;
    struct pprof_ctx *ctx = j->ctx;
    if (--ctx->jobs_closing == 0 && ctx->scrape_done) {
        void (*cb)(struct pprof_ctx *) = ctx->scrape_done;
        ctx->scrape_done = NULL;
        cb(ctx);
    }
}

void pprof_scrape_stop(struct pprof_ctx *ctx, void (*done)(struct pprof_ctx *ctx))
{
    /* cancelling runs every done callback now, with CURLE_ABORTED_BY_CALLBACK */
    if (ctx->client) {
        sp_http_client_destroy(ctx->client);
        ctx->client = NULL;
    }
    if (ctx->jobs_closing == 0) {
        done(ctx);
        return;
    }
    ctx->scrape_done = done;
    for (size_t i = 0; i < ctx->job_count; i++) {
        struct pprof_scrape_job *j = &ctx->jobs[i];
        if (!uv_is_closing((uv_handle_t *)&j->timer)) {
            uv_timer_stop(&j->timer);
            uv_close((uv_handle_t *)&j->timer, pprof_on_timer_closed);
        }
    }
}

void pprof_scrape_free(struct pprof_ctx *ctx)
{
    for (size_t i = 0; i < ctx->job_count; i++) {
        free(ctx->jobs[i].target);
        free(ctx->jobs[i].url);
        pprof_delta_free(ctx->jobs[i].delta);
    }
    free(ctx->jobs);
    ctx->jobs = NULL;
    ctx->job_count = 0;
}
