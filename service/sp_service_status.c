/* The service's part of the status page (see sp_service_status.h and
 * core/include/sp/sp_status.h for how the document is gathered).
 *
 * Per component the page shows the component's own Prometheus series
 * (those labelled component="<id>", read from the registry when the
 * document is built, so the page and /metrics never disagree) and the last
 * events it noted; the pipelines are the configuration's. */
#include "sp_service_status.h"

#include <stdio.h>
#include <string.h>

#include "sp_metrics.h"
#include "sp_status.h"

/* ---- pipelines ---- */

static void sp_ss_ids(struct sp_jw *w, const char *key, struct sp_conf_component *const *v,
                      size_t n)
{
    sp_jw_arr(w, key);
    for (size_t i = 0; i < n; i++)
        sp_jw_str(w, NULL, v[i]->id);
    sp_jw_end(w, ']');
}

static void sp_ss_pipeline(void *ud, struct sp_jw *w)
{
    const struct sp_conf_pipeline *p = ud;
    sp_jw_str(w, "signal", sp_signal_name(p->signal));
    sp_ss_ids(w, "receivers", p->receivers, p->receiver_count);
    sp_ss_ids(w, "processors", p->processors, p->processor_count);
    sp_ss_ids(w, "exporters", p->exporters, p->exporter_count);
}

/* ---- components ---- */

/* Prometheus label text (k="v",k2="v2", values escaped \\ \" \n) as JSON
 * members; the component label is the entry's id and left out. */
static void sp_ss_labels(struct sp_jw *w, const char *s)
{
    char key[64], val[256];
    sp_jw_obj(w, "labels");
    while (*s) {
        size_t k = 0, v = 0;
        while (*s && *s != '=' && k + 1 < sizeof(key))
            key[k++] = *s++;
        key[k] = 0;
        if (*s != '=' || s[1] != '"')
            break;
        s += 2;
        while (*s && *s != '"') {
            char c = *s++;
            if (c == '\\' && *s) {
                c = *s++;
                if (c == 'n')
                    c = '\n';
            }
            if (v + 1 < sizeof(val))
                val[v++] = c;
        }
        val[v] = 0;
        if (*s == '"')
            s++;
        if (*s == ',')
            s++;
        if (strcmp(key, "component") != 0)
            sp_jw_str(w, key, val);
    }
    sp_jw_end(w, '}');
}

struct sp_ss_series {
    struct sp_jw *w;
    char want[160]; /* component="<id>" */
    size_t want_len;
};

static void sp_ss_one_series(void *ud, const char *name, const char *labels, double value)
{
    struct sp_ss_series *a = ud;
    if (strncmp(labels, a->want, a->want_len) != 0 ||
        (labels[a->want_len] != 0 && labels[a->want_len] != ','))
        return;
    sp_jw_obj(a->w, NULL);
    sp_jw_str(a->w, "name", name);
    sp_ss_labels(a->w, labels);
    sp_jw_num(a->w, "value", value);
    sp_jw_end(a->w, '}');
}

static void sp_ss_component(void *ud, struct sp_jw *w)
{
    const struct sp_component *c = ud;
    sp_jw_str(w, "kind", sp_kind_name(c->type->kind));
    sp_jw_str(w, "type", c->type->name);
    struct sp_ss_series a = {.w = w};
    snprintf(a.want, sizeof(a.want), "%s", c->metric_labels ? c->metric_labels : "");
    a.want_len = strlen(a.want);
    sp_jw_arr(w, "series");
    if (a.want_len)
        sp_metrics_each(sp_ss_one_series, &a);
    sp_jw_end(w, ']');
    sp_status_write_events(w, c->id);
}

void sp_service_status_register(const struct sp_service_conf *conf, struct sp_component *comps,
                                size_t comp_count)
{
    for (size_t i = 0; i < conf->pipeline_count; i++)
        sp_status_add("pipelines", conf->pipelines[i].name, sp_ss_pipeline,
                      &conf->pipelines[i]);
    for (size_t i = 0; i < comp_count; i++)
        sp_status_add("components", comps[i].id, sp_ss_component, &comps[i]);
}

void sp_service_status_unregister(const struct sp_service_conf *conf,
                                  struct sp_component *comps, size_t comp_count)
{
    for (size_t i = 0; i < conf->pipeline_count; i++)
        sp_status_remove(&conf->pipelines[i]);
    for (size_t i = 0; i < comp_count; i++)
        sp_status_remove(&comps[i]);
}

/* ---- routes ---- */

bool sp_service_status_route(struct sp_http_request *req)
{
    bool page = strcmp(req->path, "/status") == 0;
    bool json = strcmp(req->path, "/status.json") == 0;
    if (!page && !json)
        return false;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
        sp_httpd_respond(req, 405, "text/plain; charset=utf-8", "method not allowed\n", 19,
                         allow);
        return true;
    }
    if (page) {
        const char *const hdrs[] = {"Content-Security-Policy", sp_status_page_csp,
                                    "X-Content-Type-Options", "nosniff",
                                    "Referrer-Policy", "no-referrer",
                                    "Cache-Control", "no-store", NULL};
        sp_httpd_respond(req, 200, "text/html; charset=utf-8", sp_status_page_html,
                         sp_status_page_html_len, hdrs);
        return true;
    }
    struct sp_buf out = {0};
    int rc = sp_status_json(&out);
    if (rc) {
        static const char *const ra[] = {"Retry-After", "1", NULL};
        sp_httpd_respond(req, 503, "text/plain; charset=utf-8",
                         "status not ready: try again in a second\n", 40, ra);
    } else {
        const char *const hdrs[] = {"X-Content-Type-Options", "nosniff", "Cache-Control",
                                    "no-store", NULL};
        sp_httpd_respond(req, 200, "application/json", out.data, out.len, hdrs);
    }
    sp_buf_free(&out);
    return true;
}
