/* Batches: refcounted, one arena each. */
#include "sp_batch.h"

#include <stdlib.h>
#include <string.h>

#include "sp_assert.h"

const char *sp_signal_name(enum sp_signal s)
{
    switch (s) {
    case SP_SIGNAL_TRACES: return "traces";
    case SP_SIGNAL_PROFILES: return "profiles";
    case SP_SIGNAL_METRICS: return "metrics";
    case SP_SIGNAL_LOGS: return "logs";
    default: return "unknown";
    }
}

struct sp_batch *sp_batch_create(enum sp_signal signal, size_t arena_limit)
{
    struct sp_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->arena = sp_arena_create(0);
    if (!b->arena) {
        free(b);
        return NULL;
    }
    if (arena_limit)
        sp_arena_set_limit(b->arena, arena_limit);
    /* Every decoded batch counts against the process memory ceiling; a
     * consumer that keeps it moves the charge to its own class. */
    sp_arena_set_mem_class(b->arena, SP_MEM_BATCHES);
    b->refcount = 1;
    b->signal = signal;
    return b;
}

struct sp_batch *sp_batch_ref(struct sp_batch *b)
{
    SP_ASSERT(b->refcount > 0, "sp_batch_ref on a batch whose last reference was dropped");
    b->refcount++;
    return b;
}

void sp_batch_unref(struct sp_batch *b)
{
    if (!b)
        return;
    SP_ASSERT(b->refcount > 0, "sp_batch_unref on a batch whose last reference was dropped");
    if (--b->refcount > 0)
        return;
    sp_arena_destroy(b->arena);
    free(b);
}

void sp_batch_set_mem_class(struct sp_batch *b, enum sp_mem_class c)
{
    sp_arena_set_mem_class(b->arena, c);
}

size_t sp_batch_bytes(const struct sp_batch *b)
{
    return sizeof(*b) + sp_arena_bytes(b->arena);
}

size_t sp_traces_count_spans(const sp_otlp_request *req)
{
    size_t n = 0;
    if (!req)
        return 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const sp_otlp_resource_spans *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            n += rs->scope_spans[j]->n_spans;
    }
    return n;
}

/* Copies a protobuf message into another arena by packing and unpacking it:
 * the generated code knows the message shape, so no hand-written deep copy. */
static void *sp_batch_clone_msg(const ProtobufCMessage *msg, struct sp_arena *to)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *tmp = malloc(len ? len : 1);
    if (!tmp)
        return NULL;
    protobuf_c_message_pack(msg, tmp);
    ProtobufCAllocator alloc;
    sp_arena_pb_allocator(to, &alloc);
    void *copy = protobuf_c_message_unpack(msg->descriptor, &alloc, len, tmp);
    free(tmp);
    return copy;
}

static const char *sp_batch_dup(struct sp_arena *a, const char *s)
{
    return s ? sp_arena_strdup(a, s) : NULL;
}

/* trees: copy the decoded pprof trees too; without, attachments keep only
 * their bytes (pprof NULL) and those whose tree was modified keep none. */
static int sp_batch_clone_profile(const struct sp_profile *src, struct sp_profile *dst,
                                  struct sp_arena *a, bool trees)
{
    *dst = *src;
    dst->dialect = sp_batch_dup(a, src->dialect);
    dst->service = sp_batch_dup(a, src->service);
    dst->service_fallback = sp_batch_dup(a, src->service_fallback);
    dst->env = sp_batch_dup(a, src->env);
    dst->version = sp_batch_dup(a, src->version);
    dst->host = sp_batch_dup(a, src->host);
    dst->runtime_id = sp_batch_dup(a, src->runtime_id);
    dst->family = sp_batch_dup(a, src->family);
    dst->profile_type = sp_batch_dup(a, src->profile_type);
    dst->origin = sp_batch_dup(a, src->origin);
    dst->origin_version = sp_batch_dup(a, src->origin_version);
    dst->container_id = sp_batch_dup(a, src->container_id);
    if (src->event_json) {
        dst->event_json = sp_arena_strndup(a, src->event_json, src->event_json_len);
        if (!dst->event_json)
            return -1;
    }
    dst->tags = sp_arena_calloc(a, src->tag_count ? src->tag_count : 1, sizeof(*dst->tags));
    if (!dst->tags)
        return -1;
    for (size_t i = 0; i < src->tag_count; i++) {
        dst->tags[i].key = sp_batch_dup(a, src->tags[i].key);
        dst->tags[i].value = sp_batch_dup(a, src->tags[i].value);
    }
    dst->endpoint_counts = sp_arena_calloc(a, src->endpoint_count_count ? src->endpoint_count_count : 1,
                                           sizeof(*dst->endpoint_counts));
    if (!dst->endpoint_counts)
        return -1;
    for (size_t i = 0; i < src->endpoint_count_count; i++) {
        dst->endpoint_counts[i].endpoint = sp_batch_dup(a, src->endpoint_counts[i].endpoint);
        dst->endpoint_counts[i].count = src->endpoint_counts[i].count;
    }
    dst->attachments = sp_arena_calloc(a, src->attachment_count ? src->attachment_count : 1,
                                       sizeof(*dst->attachments));
    if (!dst->attachments)
        return -1;
    for (size_t i = 0; i < src->attachment_count; i++) {
        const struct sp_attachment *s = &src->attachments[i];
        struct sp_attachment *d = &dst->attachments[i];
        *d = *s;
        d->name = sp_batch_dup(a, s->name);
        if (!trees && s->pprof && (s->modified || !s->data)) {
            d->pprof = NULL;
            d->data = NULL;
            d->len = 0;
            continue;
        }
        d->data = s->len ? sp_arena_memdup(a, s->data, s->len) : NULL;
        if (s->len && !d->data)
            return -1;
        if (!trees) {
            d->pprof = NULL;
            continue;
        }
        if (s->pprof) {
            d->pprof = sp_batch_clone_msg(&s->pprof->base, a);
            if (!d->pprof)
                return -1;
        }
    }
    return 0;
}

struct sp_batch *sp_batch_clone(const struct sp_batch *b)
{
    struct sp_batch *c = sp_batch_create(b->signal, 0);
    if (!c)
        return NULL;
    c->origin_component = b->origin_component;
    if (b->signal == SP_SIGNAL_TRACES) {
        c->u.traces = b->u.traces;
        if (b->u.traces.req) {
            c->u.traces.req = sp_batch_clone_msg(&b->u.traces.req->base, c->arena);
            if (!c->u.traces.req)
                goto fail;
        }
        /* runtime_ids are read-only annotations: copy the array, share nothing. */
        if (b->u.traces.runtime_id_count) {
            struct sp_runtime_id *ids =
                sp_arena_calloc(c->arena, b->u.traces.runtime_id_count, sizeof(*ids));
            if (!ids)
                goto fail;
            for (size_t i = 0; i < b->u.traces.runtime_id_count; i++) {
                ids[i].service = sp_batch_dup(c->arena, b->u.traces.runtime_ids[i].service);
                ids[i].instance = sp_batch_dup(c->arena, b->u.traces.runtime_ids[i].instance);
                ids[i].runtime_id = sp_batch_dup(c->arena, b->u.traces.runtime_ids[i].runtime_id);
            }
            c->u.traces.runtime_ids = ids;
        }
    } else if (b->signal == SP_SIGNAL_METRICS || b->signal == SP_SIGNAL_LOGS) {
        c->u.otlp = b->u.otlp;
        if (b->u.otlp.req) {
            c->u.otlp.req = sp_batch_clone_msg(b->u.otlp.req, c->arena);
            if (!c->u.otlp.req)
                goto fail;
        }
        if (b->u.otlp.pb_len) {
            c->u.otlp.pb = sp_arena_memdup(c->arena, b->u.otlp.pb, b->u.otlp.pb_len);
            if (!c->u.otlp.pb)
                goto fail;
        }
    } else if (sp_batch_clone_profile(&b->u.profile, &c->u.profile, c->arena, true) != 0) {
        goto fail;
    }
    return c;
fail:
    sp_batch_unref(c);
    return NULL;
}

struct sp_batch *sp_batch_clone_profile_bytes(const struct sp_batch *b)
{
    if (b->signal != SP_SIGNAL_PROFILES)
        return NULL;
    /* A cap just above what the copy needs makes the arena give large
     * attachments blocks of their exact size instead of the next power of
     * two (up to twice the bytes, for what is kept long); lifted after. */
    const struct sp_profile *p = &b->u.profile;
    size_t need = 65536 + p->event_json_len + (p->tag_count + p->attachment_count) * 256;
    for (size_t i = 0; i < p->attachment_count; i++)
        need += p->attachments[i].len + sizeof(struct sp_attachment);
    struct sp_batch *c = sp_batch_create(b->signal, need);
    if (!c)
        return NULL;
    c->origin_component = b->origin_component;
    if (sp_batch_clone_profile(&b->u.profile, &c->u.profile, c->arena, false) != 0) {
        sp_batch_unref(c);
        /* Strings longer than the estimate: copy without the cap. */
        c = sp_batch_create(b->signal, 0);
        if (!c)
            return NULL;
        c->origin_component = b->origin_component;
        if (sp_batch_clone_profile(&b->u.profile, &c->u.profile, c->arena, false) != 0) {
            sp_batch_unref(c);
            return NULL;
        }
    }
    sp_arena_set_limit(c->arena, 0);
    return c;
}
