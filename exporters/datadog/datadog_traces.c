/* datadog exporter: open trace payloads, from mapped spans to sealed
 * requests. Everything here takes the settings it needs, not the exporter,
 * so tests/unit/test_datadog.c builds and checks requests alone.
 *
 * The mapping and the wire encodings are model/dd_map.h, dd_agent_payload.h
 * and dd_encode.h (the same code the file exporter writes with). A mapped
 * payload's tracer payloads are packed one by one, as they arrive, into the
 * open payload of their destination:
 *   agentless  one AgentPayload per (hostName, env, tags, agentVersion...):
 *              its head fields, then each tracer payload as a packed field-5
 *              record, then its tail fields at seal; the concatenation is
 *              byte for byte protobuf-c's packing of that AgentPayload
 *              (dd_agent_payload.h). Sealed: zstd or gzip level 1 (the
 *              `compression` key, with the settings' reused compressor),
 *              POST <traces.endpoint>/api/v0.2/traces.
 *   agent      one /v0.4/traces body per (language, its version, tracer
 *              version, container id), so the Datadog-Meta-* headers
 *              describe every span in it: msgpack traces appended, the
 *              array header written at seal. PUT <agent>/v0.4/traces.
 * The open payload never exceeds the intake's 3.2 MB (DD_MAX_TRACE_PAYLOAD,
 * packed and uncompressed): the caller seals it before an append would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_agent_payload.h"
#include "dd_encode.h"
#include "sp_compress.h"
#include "sp_version.h"

static bool dd_nonempty(const char *s)
{
    return s && *s;
}

void dd_map_opts(const struct dd_settings *s, struct sp_dd_map_opts *mo)
{
    *mo = (struct sp_dd_map_opts){
        .hostname = s->hostname,
        .env = s->env,
        .tags = s->tags,
        .agent_version = "spanprof/" SP_VERSION,
    };
}

/* A header value for one line of the key (NUL separates the fields). */
static int key_field(struct sp_buf *key, const char *v)
{
    int rc = v ? sp_buf_append_str(key, v) : 0;
    return rc ? rc : sp_buf_append_byte(key, 0);
}

int dd_trace_dest_key(const struct dd_settings *s, const Datadog__Trace__AgentPayload *p,
                      const Datadog__Trace__TracerPayload *tp, struct sp_buf *key)
{
    if (!s->agent_mode) {
        /* The AgentPayload's own fields: payloads that share them share one. */
        struct sp_err err = {0};
        int rc = sp_buf_append_byte(key, 'A');
        return rc ? rc : sp_dd_agent_payload_frame(p, key, key, &err);
    }
    int rc = sp_buf_append_byte(key, 'V');
    if (rc == 0)
        rc = key_field(key, tp->languagename);
    if (rc == 0)
        rc = key_field(key, tp->languageversion);
    if (rc == 0)
        rc = key_field(key, tp->tracerversion);
    if (rc == 0)
        rc = key_field(key, tp->containerid);
    return rc;
}

static int nomem(struct sp_err *err)
{
    return sp_err_set(err, SP_ENOMEM, "datadog exporter: out of memory");
}

int dd_open_init(const struct dd_settings *s, struct dd_open *o,
                 const Datadog__Trace__AgentPayload *p, const Datadog__Trace__TracerPayload *tp,
                 const struct sp_buf *key, uint64_t now_ms, struct sp_err *err)
{
    o->opened_ms = now_ms;
    o->key = malloc(key->len ? key->len : 1);
    o->req = dd_req_new(SP_SIGNAL_TRACES, s->agent_mode ? "PUT" : "POST");
    if (!o->key || !o->req)
        goto fail;
    memcpy(o->key, key->data, key->len);
    o->key_len = key->len;
    if (!s->agent_mode) {
        int rc = sp_dd_agent_payload_frame(p, &o->raw, &o->tail, err);
        if (rc) {
            dd_open_free(o);
            return rc;
        }
        return 0;
    }
    struct dd_req *r = o->req;
    r->rates_reply = true;
    int rc = dd_req_add_header(r, "Content-Type: application/msgpack");
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
    if (rc == 0)
        return 0;
fail:
    dd_open_free(o);
    return nomem(err);
}

size_t dd_open_size_with(const struct dd_open *o, size_t more)
{
    /* agent mode: the array header takes at most 5 bytes */
    return o->raw.len + (o->tail.len ? o->tail.len : 5) + more;
}

int dd_open_encode(const struct dd_settings *s, const struct dd_open *o,
                   const Datadog__Trace__AgentPayload *p, const Datadog__Trace__TracerPayload *tp,
                   struct sp_buf *out, size_t *traces, struct sp_err *err)
{
    (void)o;
    *traces = 0;
    if (!s->agent_mode) {
        *traces = tp->n_chunks;
        return sp_dd_append_tracer_payload(tp, out, err);
    }
    return sp_dd_encode_v04_traces(p, tp, out, traces, err);
}

/* "go|nodejs": the distinct languages of the payload's tracer payloads. */
static void add_language(struct dd_open *o, const char *l)
{
    if (!dd_nonempty(l))
        return;
    size_t n = strlen(l), len = strlen(o->langs);
    for (const char *p = o->langs; *p;) {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && memcmp(p, l, n) == 0)
            return;
        p += k + (e ? 1 : 0);
    }
    if (len + n + 2 > sizeof(o->langs))
        return;
    snprintf(o->langs + len, sizeof(o->langs) - len, "%s%s", len ? "|" : "", l);
}

int dd_open_append(struct dd_open *o, const Datadog__Trace__TracerPayload *tp,
                   const struct sp_buf *bytes, size_t spans, size_t traces)
{
    int rc = sp_buf_append(&o->raw, bytes->data, bytes->len);
    if (rc)
        return rc;
    o->spans += spans;
    o->traces += traces;
    add_language(o, tp->languagename);
    return 0;
}

/* A sealed body keeps only its bytes: compression reserved its bound (the
 * raw size), and a queue of them would hold that much. */
static void shrink(struct sp_buf *b)
{
    if (b->cap > b->len + 4096) {
        uint8_t *n = realloc(b->data, b->len ? b->len : 1);
        if (n) {
            b->data = n;
            b->cap = b->len ? b->len : 1;
        }
    }
}

int dd_open_seal(const struct dd_settings *s, struct dd_open *o, struct dd_req **out,
                 struct sp_buf *keep, struct sp_err *err)
{
    struct dd_req *r = o->req;
    int rc = 0;
    *out = NULL;
    r->count = o->spans;
    if (!s->agent_mode) {
        rc = sp_buf_append(&o->raw, o->tail.data, o->tail.len);
        if (rc == 0)
            rc = sp_compressor_run(s->compressor, o->raw.data, o->raw.len, &r->body, err);
        else
            rc = nomem(err);
        if (rc == 0) {
            r->encoding = s->compressor->codec;
            int h = dd_req_add_header(r, "Content-Type: application/x-protobuf");
            h |= dd_req_add_header(r, "Content-Encoding: %s", sp_compression_name(r->encoding));
            if (o->langs[0])
                h |= dd_req_add_header(r, "X-Datadog-Reported-Languages: %s", o->langs);
            h |= dd_req_add_header(r, "User-Agent: Datadog Trace Agent/spanprof-%s/", SP_VERSION);
            if (h)
                rc = nomem(err);
        }
    } else {
        rc = sp_dd_encode_v04_header(o->traces, &r->body, err);
        if (rc == 0 && (sp_buf_append(&r->body, o->raw.data, o->raw.len) ||
                        dd_req_add_header(r, "X-Datadog-Trace-Count: %zu", o->traces)))
            rc = nomem(err);
    }
    if (rc == 0) {
        shrink(&r->body);
        *out = r;
        o->req = NULL;
        if (keep) {
            *keep = o->raw;
            keep->len = 0;
            memset(&o->raw, 0, sizeof(o->raw));
        }
    }
    dd_open_free(o);
    return rc;
}

void dd_open_free(struct dd_open *o)
{
    dd_req_free(o->req);
    free(o->key);
    sp_buf_free(&o->raw);
    sp_buf_free(&o->tail);
    memset(o, 0, sizeof(*o));
}
