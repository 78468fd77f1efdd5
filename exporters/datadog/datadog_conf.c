/* datadog exporter: semantic validation of its configuration.
 *
 * The core has filled struct dd_conf from the key table (types, defaults);
 * this file checks what types cannot say (a key is needed in agentless mode,
 * a site is a host name, endpoints are http(s) URLs) and derives the URLs
 * the workers call. Nothing here prints the API key: messages name the key
 * `api.key`, and the only trace of its value is the last 4 characters used
 * by the 403 log line. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_site.h"
#include "sp_log.h"

static int dd_conf_error(const struct sp_conf_ctx *cctx, struct sp_err *err, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int dd_conf_error(const struct sp_conf_ctx *cctx, struct sp_err *err, const char *path,
                         const char *fmt, ...)
{
    char msg[SP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cctx)
        return sp_conf_errorf(cctx, err, path, "%s", msg);
    /* Unit tests build the config by hand, without positions. */
    return sp_err_set(err, SP_EINVAL, "'%s': %s", path, msg);
}

char *dd_trim_key(const char *raw)
{
    if (!raw)
        raw = "";
    const char *s = raw;
    const char *e = raw + strlen(raw);
    for (int pass = 0; pass < 2; pass++) {
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (pass == 0 && e - s >= 2 && (*s == '"' || *s == '\'') && e[-1] == *s) {
            s++;
            e--;
        }
    }
    return strndup(s, (size_t)(e - s));
}

static bool dd_is_http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* base without trailing slashes + path; NULL on ENOMEM. */
static char *dd_join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    size_t need = n + strlen(path) + 1;
    char *u = malloc(need);
    if (u)
        snprintf(u, need, "%.*s%s", (int)n, base, path);
    return u;
}

static int dd_check_url(const struct sp_conf_ctx *cctx, struct sp_err *err, const char *path,
                        const char *u)
{
    if (!dd_is_http_url(u) || strlen(u) <= 8)
        return dd_conf_error(cctx, err, path, "'%s' is not an http:// or https:// URL", u);
    for (const char *p = u; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return dd_conf_error(cctx, err, path, "URL '%s' contains whitespace", u);
    return 0;
}

static bool dd_nonempty(const char *s)
{
    return s && *s;
}

int dd_settings_init(const struct dd_conf *conf, const struct sp_conf_ctx *cctx,
                     struct dd_settings *s, struct sp_err *err)
{
    int rc = 0;
    memset(s, 0, sizeof(*s));
    s->agent_mode = dd_nonempty(conf->agent.endpoint);

    s->api_key = dd_trim_key(conf->api.key);
    if (!s->api_key)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    if (!s->api_key[0]) {
        free(s->api_key);
        s->api_key = NULL;
        if (!s->agent_mode) {
            rc = dd_conf_error(cctx, err, "api.key",
                               "an API key is required to send to Datadog without an Agent "
                               "(set api.key, e.g. api: {key: ${env:DD_API_KEY}}, or "
                               "agent.endpoint to send through a Datadog Agent)");
            goto fail;
        }
    } else {
        for (const char *p = s->api_key; *p; p++) {
            if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '"') {
                rc = dd_conf_error(cctx, err, "api.key",
                                   "the API key contains whitespace, quotes or control "
                                   "characters inside it");
                goto fail;
            }
        }
        /* Redact the trimmed form too: the core registered the raw value. */
        sp_log_add_secret(s->api_key);
        size_t kl = strlen(s->api_key);
        char hint[16];
        if (kl >= 12)
            snprintf(hint, sizeof(hint), "...%s", s->api_key + kl - 4);
        else
            snprintf(hint, sizeof(hint), "(%zu chars)", kl);
        s->key_hint = strdup(hint);
    }

    const char *site = dd_nonempty(conf->api.site) ? conf->api.site : "datadoghq.com";
    for (const char *p = site; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-')) {
            rc = dd_conf_error(cctx, err, "api.site",
                               "'%s' is not a Datadog site host name (e.g. datadoghq.com, "
                               "datadoghq.eu, us5.datadoghq.com): no scheme, path or port",
                               site);
            goto fail;
        }
    }
    /* An explicit intake URL (or an Agent) routes elsewhere: the site name is
     * then the user's business. */
    if (!s->agent_mode && !dd_nonempty(conf->traces.endpoint) &&
        !dd_nonempty(conf->profiles.endpoint)) {
        char why[400];
        if (dd_site_check(site, why, sizeof(why)) == DD_SITE_WRONG) {
            rc = dd_conf_error(cctx, err, "api.site", "%s", why);
            goto fail;
        }
    }
    s->site = strdup(site);

    if (s->agent_mode) {
        const char *a = conf->agent.endpoint;
        char *base = NULL;
        if (dd_is_http_url(a)) {
            base = strdup(a);
        } else if (strstr(a, "://")) {
            rc = dd_conf_error(cctx, err, "agent.endpoint",
                               "'%s' is not an http:// URL or host:port", a);
            goto fail;
        } else {
            size_t need = strlen(a) + 8;
            base = malloc(need);
            if (base)
                snprintf(base, need, "http://%s", a);
        }
        if (!base)
            goto nomem;
        rc = dd_check_url(cctx, err, "agent.endpoint", base);
        if (rc == 0) {
            s->traces_url = dd_join_url(base, "/v0.4/traces");
            s->profiles_url = dd_join_url(base, "/profiling/v1/input");
        }
        free(base);
        if (rc)
            goto fail;
    } else {
        char def[300];
        const char *t = conf->traces.endpoint;
        if (!dd_nonempty(t)) {
            snprintf(def, sizeof(def), "https://trace.agent.%s", site);
            t = def;
        } else if ((rc = dd_check_url(cctx, err, "traces.endpoint", t)) != 0) {
            goto fail;
        }
        s->traces_url = dd_join_url(t, "/api/v0.2/traces");
        s->stats_url = dd_join_url(t, "/api/v0.2/stats");
        const char *pe = conf->profiles.endpoint;
        if (!dd_nonempty(pe)) {
            snprintf(def, sizeof(def), "https://intake.profile.%s", site);
            pe = def;
        } else if ((rc = dd_check_url(cctx, err, "profiles.endpoint", pe)) != 0) {
            goto fail;
        }
        s->profiles_url = dd_join_url(pe, "/api/v2/profile");
    }
    if (!s->site || !s->traces_url || !s->profiles_url || (!s->agent_mode && !s->stats_url))
        goto nomem;

    for (size_t i = 0; i < conf->tags.n; i++) {
        const char *tg = conf->tags.v[i];
        const char *colon = tg ? strchr(tg, ':') : NULL;
        if (!colon || colon == tg || strchr(tg, ',')) {
            rc = dd_conf_error(cctx, err, "tags",
                               "tag '%s' is not of the form key:value (no commas)", tg ? tg : "");
            goto fail;
        }
    }
    s->tags = calloc(conf->tags.n + 1, sizeof(*s->tags));
    if (!s->tags)
        goto nomem;
    for (size_t i = 0; i < conf->tags.n; i++)
        s->tags[i] = conf->tags.v[i];
    s->hostname = dd_nonempty(conf->hostname) ? conf->hostname : NULL;
    s->env = dd_nonempty(conf->env) ? conf->env : NULL;

    if (conf->timeout_ms <= 0)
        rc = dd_conf_error(cctx, err, "timeout", "must be positive");
    else if (conf->retry.initial_interval_ms <= 0)
        rc = dd_conf_error(cctx, err, "retry_on_failure.initial_interval", "must be positive");
    else if (conf->retry.max_interval_ms < conf->retry.initial_interval_ms)
        rc = dd_conf_error(cctx, err, "retry_on_failure.max_interval",
                           "must be at least initial_interval");
    else if (conf->retry.max_elapsed_ms < 0)
        rc = dd_conf_error(cctx, err, "retry_on_failure.max_elapsed_time",
                           "must not be negative (0 = retry until shutdown)");
    else if (conf->queue.queue_size < 0 || conf->queue.queue_size > 1000000)
        rc = dd_conf_error(cctx, err, "sending_queue.queue_size", "must be between 0 and 1000000");
    else if (conf->queue.num_consumers < 1 || conf->queue.num_consumers > 256)
        rc = dd_conf_error(cctx, err, "sending_queue.num_consumers", "must be between 1 and 256");
    else if (conf->queue.max_bytes < 1024)
        rc = dd_conf_error(cctx, err, "sending_queue.max_bytes", "must be at least 1KiB");
    else if (conf->flush_interval_ms < 0 || conf->flush_interval_ms > 60000)
        rc = dd_conf_error(cctx, err, "flush_interval", "must be between 0s and 60s");
    else if (conf->queue.on_full && strcmp(conf->queue.on_full, "refuse") != 0 &&
             strcmp(conf->queue.on_full, "drop_oldest") != 0)
        rc = dd_conf_error(cctx, err, "sending_queue.on_full",
                           "'%s' is not one of refuse, drop_oldest", conf->queue.on_full);
    if (rc)
        goto fail;
    if (!s->agent_mode) {
        /* The Agent's trace writer sends zstd at level 1 (datadog-agent
         * cmd/trace-agent/subcommands/run/command.go wires
         * comp/trace/compression/fx-zstd, whose impl-zstd/zstd.go writer
         * compresses at zstd.BestSpeed); gzip level 1 is what it sent
         * before (impl-gzip/gzip.go, gzip.BestSpeed) and what the OTel
         * Collector's Datadog exporter sends (opentelemetry-collector-contrib
         * exporter/datadogexporter, gzip.NewComponent() in newTraceAgent):
         * the default, as spanprof replaces a Collector (README, delivery). */
        const char *name = dd_nonempty(conf->compression) ? conf->compression : "gzip";
        int c = sp_compression_parse(name);
        if (c != SP_COMPRESSION_ZSTD && c != SP_COMPRESSION_GZIP) {
            rc = dd_conf_error(cctx, err, "compression", "'%s' is not one of zstd, gzip", name);
            goto fail;
        }
        s->compressor = calloc(1, sizeof(*s->compressor));
        if (!s->compressor)
            goto nomem;
        rc = sp_compressor_init(s->compressor, (enum sp_compression)c, 1, DD_MAX_TRACE_PAYLOAD,
                                err);
        if (rc)
            goto fail;
    }
    return 0;

nomem:
    rc = sp_err_set(err, SP_ENOMEM, "out of memory");
fail:
    dd_settings_free(s);
    return rc;
}

void dd_settings_free(struct dd_settings *s)
{
    if (s->api_key) {
        /* Do not leave the key in freed heap memory. */
        explicit_bzero(s->api_key, strlen(s->api_key));
        free(s->api_key);
    }
    free(s->key_hint);
    free(s->site);
    free(s->traces_url);
    free(s->stats_url);
    free(s->profiles_url);
    free(s->tags);
    if (s->compressor) {
        sp_compressor_free(s->compressor);
        free(s->compressor);
    }
    memset(s, 0, sizeof(*s));
}
