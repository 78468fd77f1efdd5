/* datadog exporter: a traces batch -> the HTTP requests that deliver it.
 *
 * The mapping and the wire encodings are model/dd_map.h, dd_agent_payload.h
 * and dd_encode.h (the same code the file exporter writes with): the OTLP
 * batch is mapped into an AgentPayload in a scratch arena, split below the intake's 3.2 MB, and
 * each part becomes one request:
 *   agentless  POST <traces.endpoint>/api/v0.2/traces, protobuf, gzip
 *   agent      PUT  <agent>/v0.4/traces, msgpack, one request per tracer
 *              payload so the Datadog-Meta-* headers describe its spans
 * The scratch arena is freed before returning: only the bodies stay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_payload.h"
#include "sp_arena.h"
#include "sp_version.h"

static size_t dd_count_spans_tp(const Datadog__Trace__TracerPayload *tp)
{
    size_t n = 0;
    for (size_t c = 0; c < tp->n_chunks; c++)
        n += tp->chunks[c]->n_spans;
    return n;
}

static size_t dd_count_spans(const Datadog__Trace__AgentPayload *p)
{
    size_t n = 0;
    for (size_t t = 0; t < p->n_tracerpayloads; t++)
        n += dd_count_spans_tp(p->tracerpayloads[t]);
    return n;
}

static struct dd_req *dd_reqs_grow(struct dd_req **reqs, size_t *n)
{
    struct dd_req *nr = realloc(*reqs, (*n + 1) * sizeof(*nr));
    if (!nr)
        return NULL;
    *reqs = nr;
    memset(&nr[*n], 0, sizeof(nr[*n]));
    return &nr[(*n)++];
}

static bool dd_nonempty(const char *s)
{
    return s && *s;
}

/* "go|nodejs": the distinct languages of the payload's tracer payloads. */
static void dd_languages(const Datadog__Trace__AgentPayload *p, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t t = 0; t < p->n_tracerpayloads; t++) {
        const char *l = p->tracerpayloads[t]->languagename;
        if (!dd_nonempty(l))
            continue;
        bool seen = false;
        for (size_t k = 0; k < t && !seen; k++) {
            const char *lk = p->tracerpayloads[k]->languagename;
            seen = lk && strcmp(lk, l) == 0;
        }
        if (seen)
            continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? "|" : "", l);
        if (w < 0 || (size_t)w >= cap - o) {
            out[o] = '\0';
            return;
        }
        o += (size_t)w;
    }
}

static int dd_agentless_req(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *part,
                            struct dd_req **reqs, size_t *n, struct sp_err *err)
{
    struct dd_req *r = dd_reqs_grow(reqs, n);
    if (!r)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    r->method = "POST";
    r->url = dd->set.traces_url;
    r->signal = SP_SIGNAL_TRACES;
    r->count = dd_count_spans(part);
    int rc = sp_dd_encode_agent_payload(part, &r->body, err);
    if (rc)
        return rc;
    char langs[256];
    dd_languages(part, langs, sizeof(langs));
    rc |= dd_req_add_header(r, "Content-Type: application/x-protobuf");
    rc |= dd_req_add_header(r, "Content-Encoding: gzip");
    rc |= dd_req_add_header(r, "DD-Api-Key: %s", dd->set.api_key ? dd->set.api_key : "");
    if (langs[0])
        rc |= dd_req_add_header(r, "X-Datadog-Reported-Languages: %s", langs);
    rc |= dd_req_add_header(r, "User-Agent: Datadog Trace Agent/spanprof-%s/", SP_VERSION);
    return rc ? sp_err_set(err, SP_ENOMEM, "out of memory") : 0;
}

static int dd_agent_req(struct dd_exporter *dd, const Datadog__Trace__AgentPayload *part,
                        Datadog__Trace__TracerPayload *tp, struct dd_req **reqs, size_t *n,
                        struct sp_err *err)
{
    /* A one-tracer-payload view of the part (shallow: nothing is copied). */
    Datadog__Trace__AgentPayload one = *part;
    Datadog__Trace__TracerPayload *tps[1] = {tp};
    one.n_tracerpayloads = 1;
    one.tracerpayloads = tps;

    struct dd_req *r = dd_reqs_grow(reqs, n);
    if (!r)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    r->method = "PUT";
    r->url = dd->set.traces_url;
    r->signal = SP_SIGNAL_TRACES;
    r->count = dd_count_spans_tp(tp);
    r->rates_reply = true;
    size_t traces = 0;
    int rc = sp_dd_encode_v04(&one, &r->body, &traces, err);
    if (rc)
        return rc;
    rc |= dd_req_add_header(r, "Content-Type: application/msgpack");
    rc |= dd_req_add_header(r, "X-Datadog-Trace-Count: %zu", traces);
    rc |= dd_req_add_header(r, "Datadog-Meta-Lang: %s",
                            dd_nonempty(tp->languagename) ? tp->languagename : "otlp");
    if (dd_nonempty(tp->languageversion))
        rc |= dd_req_add_header(r, "Datadog-Meta-Lang-Version: %s", tp->languageversion);
    rc |= dd_req_add_header(r, "Datadog-Meta-Tracer-Version: %s",
                            dd_nonempty(tp->tracerversion) ? tp->tracerversion
                                                           : "spanprof-" SP_VERSION);
    if (dd_nonempty(tp->containerid))
        rc |= dd_req_add_header(r, "Datadog-Container-ID: %s", tp->containerid);
    /* The mapping computed _top_level already; and we want a real 429
     * (retried) instead of a 200 when the Agent sheds load. */
    rc |= dd_req_add_header(r, "Datadog-Client-Computed-Top-Level: yes");
    rc |= dd_req_add_header(r, "Datadog-Send-Real-Http-Status: yes");
    return rc ? sp_err_set(err, SP_ENOMEM, "out of memory") : 0;
}

int dd_traces_build(struct dd_exporter *dd, struct sp_batch *b, struct dd_req **reqs, size_t *n,
                    size_t *dropped, struct sp_err *err)
{
    struct sp_arena *arena = sp_arena_create(0);
    if (!arena)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    struct sp_dd_map_opts mo = {
        .hostname = dd_nonempty(dd->conf->hostname) ? dd->conf->hostname : NULL,
        .env = dd_nonempty(dd->conf->env) ? dd->conf->env : NULL,
        .tags = dd->set.tags,
        .agent_version = "spanprof/" SP_VERSION,
    };
    Datadog__Trace__AgentPayload *payload = NULL;
    Datadog__Trace__AgentPayload **parts = NULL;
    size_t n_parts = 0;
    int rc = sp_dd_map_traces(&b->u.traces, &mo, arena, &payload, dropped, err);
    if (rc == 0)
        rc = sp_dd_split_payload(payload, DD_MAX_TRACE_PAYLOAD, arena, &parts, &n_parts, err);
    for (size_t i = 0; rc == 0 && i < n_parts; i++) {
        if (dd->set.agent_mode) {
            for (size_t t = 0; rc == 0 && t < parts[i]->n_tracerpayloads; t++)
                if (parts[i]->tracerpayloads[t]->n_chunks)
                    rc = dd_agent_req(dd, parts[i], parts[i]->tracerpayloads[t], reqs, n, err);
        } else if (dd_count_spans(parts[i])) {
            rc = dd_agentless_req(dd, parts[i], reqs, n, err);
        }
    }
    sp_arena_destroy(arena);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            dd_req_free(&(*reqs)[i]);
        free(*reqs);
        *reqs = NULL;
        *n = 0;
    }
    return rc;
}
