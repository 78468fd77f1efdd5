/* AgentPayload protobuf for the agentless intake: packed back to front,
 * split below the intake's size limit, gzip'd (see dd_agent_payload.h).
 * The message is datadog-agent's pkg/proto/datadog/trace/agent_payload.proto
 * (proto/dd_trace.proto here, docs/datadog.md §1.5); the 3.2 MB limit is the
 * Agent's trace writer (pkg/trace/writer/trace.go MaxPayloadSize,
 * docs/datadog.md §1.4). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dd_agent_payload.h"
#include "sp_compress.h"

/* protobuf-c sizes a nested message again at every level it packs it in
 * (AgentPayload > TracerPayload > TraceChunk > Span > map entry: an entry
 * is sized five times). This packer writes the message from its last byte
 * to its first: a nested message is written before its length prefix, so
 * its length is known without sizing it. The bytes are exactly protobuf-c's
 * (proto3 rules: fields in number order, zero scalars and empty strings
 * left out, negative int32 as 10-byte varints, doubles as little-endian
 * fixed64, map entries as messages); a message with unknown fields (never
 * made by the mapping) falls back to protobuf-c. tests/unit/test_dd_payload.c
 * and the dd_map fuzz target compare both byte for byte. */

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2 };

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* ---- sizes (split needs them; computed once per message) ---- */

struct pbs {
    bool unknown; /* a message with unknown fields: ask protobuf-c */
};

static size_t sz_str(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    return 1 + varint_len(n) + n;
}

static size_t sz_varint(uint64_t v)
{
    return v ? 1 + varint_len(v) : 0;
}

static size_t sz_double(double d)
{
    return d != 0 ? 9 : 0;
}

static size_t sz_msg(size_t len)
{
    return 1 + varint_len(len) + len;
}

/* The three string-to-string map entry types share one layout. */
static size_t sz_str_entry(struct pbs *c, const ProtobufCMessage *base, const char *k,
                           const char *v)
{
    if (base->n_unknown_fields)
        c->unknown = true;
    return sz_msg(sz_str(k) + sz_str(v));
}

static size_t sz_span(struct pbs *c, const Datadog__Trace__Span *s)
{
    if (s->base.n_unknown_fields)
        c->unknown = true;
    size_t n = sz_str(s->service) + sz_str(s->name) + sz_str(s->resource) +
               sz_varint(s->traceid) + sz_varint(s->spanid) + sz_varint(s->parentid) +
               sz_varint((uint64_t)s->start) + sz_varint((uint64_t)s->duration) +
               sz_varint((uint64_t)(int64_t)s->error) + sz_str(s->type);
    for (size_t i = 0; i < s->n_meta; i++)
        n += sz_str_entry(c, &s->meta[i]->base, s->meta[i]->key, s->meta[i]->value);
    for (size_t i = 0; i < s->n_metrics; i++) {
        const Datadog__Trace__Span__MetricsEntry *e = s->metrics[i];
        if (e->base.n_unknown_fields)
            c->unknown = true;
        n += sz_msg(sz_str(e->key) + sz_double(e->value));
    }
    for (size_t i = 0; i < s->n_meta_struct; i++) {
        const Datadog__Trace__Span__MetaStructEntry *e = s->meta_struct[i];
        if (e->base.n_unknown_fields)
            c->unknown = true;
        n += sz_msg(sz_str(e->key) + (e->value.len ? sz_msg(e->value.len) : 0));
    }
    return n;
}

static size_t sz_chunk(struct pbs *c, const Datadog__Trace__TraceChunk *ch)
{
    if (ch->base.n_unknown_fields)
        c->unknown = true;
    size_t n = sz_varint((uint64_t)(int64_t)ch->priority) + sz_str(ch->origin) +
               sz_varint(ch->droppedtrace ? 1 : 0);
    for (size_t i = 0; i < ch->n_spans; i++)
        n += sz_msg(sz_span(c, ch->spans[i]));
    for (size_t i = 0; i < ch->n_tags; i++)
        n += sz_str_entry(c, &ch->tags[i]->base, ch->tags[i]->key, ch->tags[i]->value);
    return n;
}

static size_t sz_tracer_payload(struct pbs *c, const Datadog__Trace__TracerPayload *tp)
{
    if (tp->base.n_unknown_fields)
        c->unknown = true;
    size_t n = sz_str(tp->containerid) + sz_str(tp->languagename) +
               sz_str(tp->languageversion) + sz_str(tp->tracerversion) +
               sz_str(tp->runtimeid) + sz_str(tp->env) + sz_str(tp->hostname) +
               sz_str(tp->appversion);
    for (size_t i = 0; i < tp->n_chunks; i++)
        n += sz_msg(sz_chunk(c, tp->chunks[i]));
    for (size_t i = 0; i < tp->n_tags; i++)
        n += sz_str_entry(c, &tp->tags[i]->base, tp->tags[i]->key, tp->tags[i]->value);
    return n;
}

static size_t sz_agent_payload(struct pbs *c, const Datadog__Trace__AgentPayload *p)
{
    if (p->base.n_unknown_fields)
        c->unknown = true;
    size_t n = sz_str(p->hostname) + sz_str(p->env) + sz_str(p->agentversion) +
               sz_double(p->targettps) + sz_double(p->errortps) +
               sz_varint(p->raresamplerenabled ? 1 : 0);
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        n += sz_msg(sz_tracer_payload(c, p->tracerpayloads[i]));
    for (size_t i = 0; i < p->n_tags; i++)
        n += sz_str_entry(c, &p->tags[i]->base, p->tags[i]->key, p->tags[i]->value);
    return n;
}

/* Packed sizes, as protobuf-c's get_packed_size gives them. */
static size_t pb_size_agent_payload(const Datadog__Trace__AgentPayload *p)
{
    struct pbs c = {false};
    size_t n = sz_agent_payload(&c, p);
    return c.unknown ? datadog__trace__agent_payload__get_packed_size(p) : n;
}

static size_t pb_size_tracer_payload(const Datadog__Trace__TracerPayload *tp)
{
    struct pbs c = {false};
    size_t n = sz_tracer_payload(&c, tp);
    return c.unknown ? datadog__trace__tracer_payload__get_packed_size(tp) : n;
}

static size_t pb_size_chunk(const Datadog__Trace__TraceChunk *ch)
{
    struct pbs c = {false};
    size_t n = sz_chunk(&c, ch);
    return c.unknown ? datadog__trace__trace_chunk__get_packed_size(ch) : n;
}

/* ---- the writer: bytes [pos, cap) of buf are written ---- */

/* The mapping shares one message between the spans of a tracer payload
 * for each resource entry they carry unchanged (dd_map.c): the packer
 * remembers where it wrote a span meta entry (by the message's address)
 * and copies those bytes for the next span instead of packing it again.
 * Direct-mapped, big enough that a span's ~20 own entries seldom evict a
 * shared one; a miss just packs. */
#define PBW_MEMO 256
struct pbw_memo {
    const void *msg;
    size_t from_end; /* its bytes start cap - from_end (they never move
                      * relative to the end: pbw_grow keeps the tail) */
    size_t len;
};

struct pbw {
    uint8_t *buf;
    size_t cap, pos;
    bool oom;
    bool unknown;
    struct pbw_memo memo[PBW_MEMO];
};

/* Makes room for n more bytes in front (the written tail moves to the end
 * of a buffer twice as big). False once out of memory. */
static bool pbw_grow(struct pbw *w, size_t n)
{
    if (w->oom)
        return false;
    size_t used = w->cap - w->pos;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap - used < n) {
        if (cap > SIZE_MAX / 2) {
            w->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *nb = malloc(cap);
    if (!nb) {
        w->oom = true;
        return false;
    }
    if (used)
        memcpy(nb + cap - used, w->buf + w->pos, used);
    free(w->buf);
    w->buf = nb;
    w->pos = cap - used;
    w->cap = cap;
    return true;
}

static inline bool pbw_room(struct pbw *w, size_t n)
{
    return w->pos >= n || pbw_grow(w, n);
}

static inline size_t pbw_len(const struct pbw *w)
{
    return w->cap - w->pos;
}

/* The unchecked writers: the caller made room (at most 10 + 1 bytes for a
 * varint and a one-byte key: field numbers here are below 16). */
static inline void pbw_put_varint(struct pbw *w, uint64_t v)
{
    if (v < 0x80) {
        w->buf[--w->pos] = (uint8_t)v;
        return;
    }
    size_t n = varint_len(v);
    w->pos -= n;
    uint8_t *p = w->buf + w->pos;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
}

static inline void pbw_put_key(struct pbw *w, unsigned field, unsigned wt)
{
    w->buf[--w->pos] = (uint8_t)(field << 3 | wt);
}

/* A length-delimited field whose body is the last `len` bytes written. */
static inline void pbw_close(struct pbw *w, unsigned field, size_t len)
{
    if (!pbw_room(w, 11))
        return;
    pbw_put_varint(w, len);
    pbw_put_key(w, field, WT_LEN);
}

static inline void pbw_bytes(struct pbw *w, unsigned field, const void *p, size_t n)
{
    if (!pbw_room(w, n + 11))
        return;
    w->pos -= n;
    memcpy(w->buf + w->pos, p, n);
    pbw_put_varint(w, n);
    pbw_put_key(w, field, WT_LEN);
}

static inline void pbw_str(struct pbw *w, unsigned field, const char *s)
{
    if (s && *s)
        pbw_bytes(w, field, s, strlen(s));
}

static inline void pbw_uint(struct pbw *w, unsigned field, uint64_t v)
{
    if (v && pbw_room(w, 11)) {
        pbw_put_varint(w, v);
        pbw_put_key(w, field, WT_VARINT);
    }
}

static inline void pbw_double(struct pbw *w, unsigned field, double d)
{
    if (d == 0 || !pbw_room(w, 9))
        return;
    uint64_t b;
    memcpy(&b, &d, 8);
    w->pos -= 8;
    for (int i = 0; i < 8; i++)
        w->buf[w->pos + (size_t)i] = (uint8_t)(b >> (8 * i));
    pbw_put_key(w, field, WT_FIXED64);
}

/* A varint written forward at p (the caller made room); its end. */
static inline uint8_t *put_varint_fwd(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A string field written forward at p (len > 0; the caller made room). */
static inline uint8_t *put_str_fwd(uint8_t *p, unsigned field, const char *s, size_t len)
{
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    p = put_varint_fwd(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* Bytes a string field of n bytes takes (0: empty, left out). */
static inline size_t str_field_size(size_t n)
{
    return n ? 1 + varint_len(n) + n : 0;
}

/* A map entry record whose body is `body` bytes: the whole record is
 * reserved at once and its key and length written forward; the body goes
 * at the pointer returned (NULL when out of memory). Entries' lengths are
 * known up front, so this is one room check instead of three and no
 * length marks (a span has ~30 entries). */
static inline uint8_t *pbw_record(struct pbw *w, unsigned field, size_t body)
{
    size_t need = 1 + varint_len(body) + body;
    if (!pbw_room(w, need))
        return NULL;
    w->pos -= need;
    uint8_t *p = w->buf + w->pos;
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    return put_varint_fwd(p, body);
}

/* A map entry (1: key, 2: value; empty strings left out) as field `field`. */
static void pbw_str_entry(struct pbw *w, unsigned field, const ProtobufCMessage *base,
                          const char *k, const char *v)
{
    if (base->n_unknown_fields)
        w->unknown = true;
    size_t kl = k ? strlen(k) : 0, vl = v ? strlen(v) : 0;
    uint8_t *p = pbw_record(w, field, str_field_size(kl) + str_field_size(vl));
    if (!p)
        return;
    if (kl)
        p = put_str_fwd(p, 1, k, kl);
    if (vl)
        put_str_fwd(p, 2, v, vl);
}

static void pbw_span(struct pbw *w, const Datadog__Trace__Span *s)
{
    if (s->base.n_unknown_fields)
        w->unknown = true;
    for (size_t i = s->n_meta_struct; i-- > 0;) {
        const Datadog__Trace__Span__MetaStructEntry *e = s->meta_struct[i];
        if (e->base.n_unknown_fields)
            w->unknown = true;
        size_t mark = pbw_len(w);
        if (e->value.len)
            pbw_bytes(w, 2, e->value.data, e->value.len);
        pbw_str(w, 1, e->key);
        pbw_close(w, 13, pbw_len(w) - mark);
    }
    pbw_str(w, 12, s->type);
    for (size_t i = s->n_metrics; i-- > 0;) {
        const Datadog__Trace__Span__MetricsEntry *e = s->metrics[i];
        if (e->base.n_unknown_fields)
            w->unknown = true;
        /* sized once and written forward, as pbw_str_entry */
        size_t kl = e->key ? strlen(e->key) : 0;
        uint8_t *p = pbw_record(w, 11, str_field_size(kl) + (e->value != 0 ? 9 : 0));
        if (!p)
            continue;
        if (kl)
            p = put_str_fwd(p, 1, e->key, kl);
        if (e->value != 0) {
            uint64_t b;
            memcpy(&b, &e->value, 8);
            *p++ = (uint8_t)(2 << 3 | WT_FIXED64);
            for (int j = 0; j < 8; j++)
                p[j] = (uint8_t)(b >> (8 * j));
        }
    }
    for (size_t i = s->n_meta; i-- > 0;) {
        const Datadog__Trace__Span__MetaEntry *e = s->meta[i];
        struct pbw_memo *mm = &w->memo[((uintptr_t)e >> 4) % PBW_MEMO];
        if (mm->msg == e && pbw_room(w, mm->len)) {
            /* the same message (so the same bytes) packed for an earlier span */
            w->pos -= mm->len;
            memcpy(w->buf + w->pos, w->buf + w->cap - mm->from_end, mm->len);
            continue;
        }
        size_t before = pbw_len(w);
        pbw_str_entry(w, 10, &e->base, e->key, e->value);
        if (!w->oom)
            *mm = (struct pbw_memo){e, pbw_len(w), pbw_len(w) - before};
    }
    pbw_uint(w, 9, (uint64_t)(int64_t)s->error);
    pbw_uint(w, 8, (uint64_t)s->duration);
    pbw_uint(w, 7, (uint64_t)s->start);
    pbw_uint(w, 6, s->parentid);
    pbw_uint(w, 5, s->spanid);
    pbw_uint(w, 4, s->traceid);
    pbw_str(w, 3, s->resource);
    pbw_str(w, 2, s->name);
    pbw_str(w, 1, s->service);
}

static void pbw_chunk(struct pbw *w, const Datadog__Trace__TraceChunk *c)
{
    if (c->base.n_unknown_fields)
        w->unknown = true;
    pbw_uint(w, 5, c->droppedtrace ? 1 : 0);
    for (size_t i = c->n_tags; i-- > 0;)
        pbw_str_entry(w, 4, &c->tags[i]->base, c->tags[i]->key, c->tags[i]->value);
    for (size_t i = c->n_spans; i-- > 0;) {
        size_t mark = pbw_len(w);
        pbw_span(w, c->spans[i]);
        pbw_close(w, 3, pbw_len(w) - mark);
    }
    pbw_str(w, 2, c->origin);
    pbw_uint(w, 1, (uint64_t)(int64_t)c->priority);
}

static void pbw_tracer_payload(struct pbw *w, const Datadog__Trace__TracerPayload *tp)
{
    if (tp->base.n_unknown_fields)
        w->unknown = true;
    pbw_str(w, 10, tp->appversion);
    pbw_str(w, 9, tp->hostname);
    pbw_str(w, 8, tp->env);
    for (size_t i = tp->n_tags; i-- > 0;)
        pbw_str_entry(w, 7, &tp->tags[i]->base, tp->tags[i]->key, tp->tags[i]->value);
    for (size_t i = tp->n_chunks; i-- > 0;) {
        size_t mark = pbw_len(w);
        pbw_chunk(w, tp->chunks[i]);
        pbw_close(w, 6, pbw_len(w) - mark);
    }
    pbw_str(w, 5, tp->runtimeid);
    pbw_str(w, 4, tp->tracerversion);
    pbw_str(w, 3, tp->languageversion);
    pbw_str(w, 2, tp->languagename);
    pbw_str(w, 1, tp->containerid);
}

static void pbw_agent_payload(struct pbw *w, const Datadog__Trace__AgentPayload *p)
{
    if (p->base.n_unknown_fields)
        w->unknown = true;
    pbw_uint(w, 10, p->raresamplerenabled ? 1 : 0);
    pbw_double(w, 9, p->errortps);
    pbw_double(w, 8, p->targettps);
    pbw_str(w, 7, p->agentversion);
    for (size_t i = p->n_tags; i-- > 0;)
        pbw_str_entry(w, 6, &p->tags[i]->base, p->tags[i]->key, p->tags[i]->value);
    for (size_t i = p->n_tracerpayloads; i-- > 0;) {
        size_t mark = pbw_len(w);
        pbw_tracer_payload(w, p->tracerpayloads[i]);
        pbw_close(w, 5, pbw_len(w) - mark);
    }
    pbw_str(w, 2, p->env);
    pbw_str(w, 1, p->hostname);
}

/* Packs p into w (the bytes are w->buf[w->pos .. w->cap)), or, for a
 * payload with unknown fields, into a protobuf-c packed buffer there. */
static int pack_payload(const Datadog__Trace__AgentPayload *p, struct pbw *w, struct sp_err *err)
{
    /* A first buffer near the usual size (~1.3 KB a span) saves regrowing. */
    size_t spans = 0;
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++)
            spans += p->tracerpayloads[i]->chunks[j]->n_spans;
    memset(w, 0, sizeof *w);
    if (spans < (SIZE_MAX >> 12))
        pbw_room(w, 1024 + (spans << 11));
    pbw_agent_payload(w, p);
    if (!w->oom && w->unknown) {
        /* Not the mapping's output: protobuf-c knows what to do with them. */
        free(w->buf);
        memset(w, 0, sizeof *w);
        size_t n = datadog__trace__agent_payload__get_packed_size(p);
        w->buf = malloc(n ? n : 1);
        if (!w->buf)
            return sp_err_set(err, SP_ENOMEM, "datadog payload: out of memory packing %zu bytes",
                              n);
        w->cap = datadog__trace__agent_payload__pack(p, w->buf);
        return 0;
    }
    if (w->oom) {
        free(w->buf);
        memset(w, 0, sizeof *w);
        return sp_err_set(err, SP_ENOMEM, "datadog payload: out of memory packing");
    }
    return 0;
}

int sp_dd_pack_agent_payload(const Datadog__Trace__AgentPayload *p, uint8_t **data, size_t *len,
                             struct sp_err *err)
{
    *data = NULL;
    *len = 0;
    struct pbw w;
    int rc = pack_payload(p, &w, err);
    if (rc)
        return rc;
    size_t n = pbw_len(&w);
    if (w.pos)
        memmove(w.buf, w.buf + w.pos, n);
    if (!w.buf) {
        /* An empty message packs to no bytes. */
        w.buf = malloc(1);
        if (!w.buf)
            return sp_err_set(err, SP_ENOMEM, "datadog payload: out of memory packing");
    }
    *data = w.buf;
    *len = n;
    return 0;
}

/* Appends the packed bytes of a view of an AgentPayload to out. */
static int pack_append(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                       struct sp_err *err)
{
    struct pbw w;
    int rc = pack_payload(p, &w, err);
    if (rc)
        return rc;
    if (pbw_len(&w))
        rc = sp_buf_append(out, w.buf + w.pos, pbw_len(&w));
    free(w.buf);
    return rc ? sp_err_set(err, SP_ENOMEM, "datadog payload: out of memory appending") : 0;
}

/* Protobuf packs fields in number order and a repeated field's elements one
 * after the other, so an AgentPayload is: its fields before tracerPayloads
 * (1 hostName, 2 env), then one field-5 record per tracer payload, then the
 * fields after (6 tags .. 10 rareSamplerEnabled). Each part is packed from a
 * shallow view holding only its fields. */
int sp_dd_agent_payload_frame(const Datadog__Trace__AgentPayload *p, struct sp_buf *head,
                              struct sp_buf *tail, struct sp_err *err)
{
    Datadog__Trace__AgentPayload h = DATADOG__TRACE__AGENT_PAYLOAD__INIT;
    h.hostname = p->hostname;
    h.env = p->env;
    Datadog__Trace__AgentPayload t = *p;
    t.hostname = t.env = NULL;
    t.n_tracerpayloads = 0;
    t.tracerpayloads = NULL;
    int rc = pack_append(&h, head, err);
    return rc ? rc : pack_append(&t, tail, err);
}

size_t sp_dd_agent_payload_frame_size(const Datadog__Trace__AgentPayload *p)
{
    Datadog__Trace__AgentPayload v = *p;
    v.n_tracerpayloads = 0;
    v.tracerpayloads = NULL;
    return pb_size_agent_payload(&v);
}

/* An AgentPayload view holding tp alone: packs to tp's field-5 record. */
#define ONE_TP_VIEW(v, one, tp)                                                                    \
    Datadog__Trace__AgentPayload v = DATADOG__TRACE__AGENT_PAYLOAD__INIT;                          \
    Datadog__Trace__TracerPayload *one[1] = {(Datadog__Trace__TracerPayload *)(tp)};               \
    v.n_tracerpayloads = 1;                                                                        \
    v.tracerpayloads = one

int sp_dd_append_tracer_payload(const Datadog__Trace__TracerPayload *tp, struct sp_buf *out,
                                struct sp_err *err)
{
    ONE_TP_VIEW(v, one, tp);
    return pack_append(&v, out, err);
}

int sp_dd_pack_tracer_payload(const Datadog__Trace__TracerPayload *tp, struct sp_dd_packed *rec,
                              struct sp_err *err)
{
    ONE_TP_VIEW(v, one, tp);
    struct pbw w;
    memset(rec, 0, sizeof *rec);
    int rc = pack_payload(&v, &w, err);
    if (rc)
        return rc;
    static const uint8_t none[1];
    rec->block = w.buf;
    rec->data = w.buf ? w.buf + w.pos : none;
    rec->len = pbw_len(&w);
    rec->cap = w.cap;
    return 0;
}

void sp_dd_packed_free(struct sp_dd_packed *rec)
{
    free(rec->block);
    memset(rec, 0, sizeof *rec);
}

/* ------------------------------------------------------------------------ */
/* Splitting                                                                 */
/* ------------------------------------------------------------------------ */

/* Bytes a length-delimited field of len bytes takes (1-byte tag). */
static size_t field_size(size_t len)
{
    size_t n = 1;
    size_t v = len;
    do {
        n++;
        v >>= 7;
    } while (v);
    return n + len;
}

static Datadog__Trace__AgentPayload *part_new(const Datadog__Trace__AgentPayload *src,
                                              struct sp_arena *a)
{
    Datadog__Trace__AgentPayload *p = sp_arena_alloc(a, sizeof *p);
    if (!p)
        return NULL;
    *p = *src;
    p->n_tracerpayloads = 0;
    p->tracerpayloads = sp_arena_alloc(a, (src->n_tracerpayloads ? src->n_tracerpayloads : 1) *
                                              sizeof *p->tracerpayloads);
    return p->tracerpayloads ? p : NULL;
}

/* Greedy: chunks in order fill a part until the next one would pass
 * max_bytes; a tracer payload spanning parts is repeated (header fields)
 * in each. A single chunk larger than max_bytes gets a part of its own. */
int sp_dd_split_payload(const Datadog__Trace__AgentPayload *p, size_t max_bytes,
                        struct sp_arena *arena, Datadog__Trace__AgentPayload ***parts,
                        size_t *n_parts, struct sp_err *err)
{
    *parts = NULL;
    *n_parts = 0;
    size_t total_chunks = 0;
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        total_chunks += p->tracerpayloads[i]->n_chunks;
    Datadog__Trace__AgentPayload **v =
        sp_arena_alloc(arena, (total_chunks ? total_chunks : 1) * sizeof *v);
    if (!v)
        goto nomem;
    if (pb_size_agent_payload(p) <= max_bytes || !total_chunks) {
        v[0] = (Datadog__Trace__AgentPayload *)p;
        *parts = v;
        *n_parts = 1;
        return 0;
    }
    size_t n = 0, size = 0;
    Datadog__Trace__AgentPayload *cur = NULL;
    for (size_t i = 0; i < p->n_tracerpayloads; i++) {
        const Datadog__Trace__TracerPayload *tp = p->tracerpayloads[i];
        Datadog__Trace__TracerPayload hdr = *tp;
        hdr.n_chunks = 0;
        size_t hdr_size = field_size(pb_size_tracer_payload(&hdr));
        Datadog__Trace__TracerPayload *open = NULL;
        for (size_t j = 0; j < tp->n_chunks; j++) {
            /* +8: the tracer payload's length prefix grows with its chunks. */
            size_t cs = field_size(pb_size_chunk(tp->chunks[j])) + 8;
            size_t need = open ? cs : hdr_size + cs;
            if (cur && cur->n_tracerpayloads && size + need > max_bytes) {
                v[n++] = cur;
                cur = NULL;
                open = NULL;
                need = hdr_size + cs;
            }
            if (!cur) {
                if (!(cur = part_new(p, arena)))
                    goto nomem;
                size = pb_size_agent_payload(cur);
            }
            if (!open) {
                open = sp_arena_alloc(arena, sizeof *open);
                if (!open)
                    goto nomem;
                *open = hdr;
                open->chunks = sp_arena_alloc(arena, (tp->n_chunks - j) * sizeof *open->chunks);
                if (!open->chunks)
                    goto nomem;
                cur->tracerpayloads[cur->n_tracerpayloads++] = open;
            }
            open->chunks[open->n_chunks++] = tp->chunks[j];
            size += need;
        }
    }
    if (cur && cur->n_tracerpayloads)
        v[n++] = cur;
    *parts = v;
    *n_parts = n;
    return 0;
nomem:
    return sp_err_set(err, SP_ENOMEM, "datadog payload split: out of memory");
}

int sp_dd_encode_agent_payload(const Datadog__Trace__AgentPayload *p, struct sp_buf *out,
                               struct sp_err *err)
{
    struct pbw w;
    int rc = pack_payload(p, &w, err);
    if (rc)
        return rc;
    static const uint8_t none[1];
    rc = sp_compress(SP_COMPRESSION_GZIP, 1, w.buf ? w.buf + w.pos : none, pbw_len(&w), out, err);
    free(w.buf);
    return rc;
}
