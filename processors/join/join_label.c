/* Adds Datadog's span labels to profile samples (see join_label.h).
 *
 * Two passes: the first reads every sample's labels and resolves its span
 * (with a per-profile cache, since thousands of samples share a span) and
 * plans what to add; the second, only if something is to be added, interns
 * the three keys and appends the new value strings to the string table in
 * one go (sp_pprof_intern searches the whole table per call, which is fine
 * for three keys but not for thousands of span ids). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join_label.h"
#include "join_u64map.h"
#include "pprof_codec.h"
#include "sp_err.h"

const char *const join_outcome_names[JOIN_OUT_COUNT] = {
    "matched", "no_span_label", "span_unknown", "not_pii_safe", "root_unknown",
    "endpoint_dropped", "already_labelled",
};

int join_parse_hex_id(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}

int join_parse_dec_id(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- key classification ---- */

enum key_kind {
    KEY_NONE = 0,
    KEY_OTEL_HEX,   /* span_id */
    KEY_DD_SPAN,    /* span id */
    KEY_DD_ROOT,    /* local root span id */
    KEY_DD_ENDPOINT,/* trace endpoint */
    KEY_EXTRA,
};

#define ADD_SPAN 0x1u
#define ADD_ROOT 0x2u
#define ADD_ENDPOINT 0x4u

struct plan {
    uint64_t span;
    uint64_t root;
    uint32_t pair;
    uint32_t add;
};

/* Resolution result cached per span id. */
struct resolved {
    int status;
    uint64_t root_id;
    uint64_t rec;
};

static int label_id(const sp_pprof *p, const Perftools__Profiles__Label *l, enum key_kind k,
                    uint64_t *out)
{
    if (l->str == 0) {
        /* Numeric label (dd-trace-js, libdatadog): the u64 bit pattern. */
        if (l->num == 0)
            return -1;
        *out = (uint64_t)l->num;
        return 0;
    }
    const char *s = sp_pprof_str(p, l->str);
    if (!s)
        return -1;
    int rc;
    switch (k) {
    case KEY_OTEL_HEX:
        rc = join_parse_hex_id(s, out);
        break;
    case KEY_EXTRA:
        rc = strlen(s) == 16 ? join_parse_hex_id(s, out) : join_parse_dec_id(s, out);
        break;
    default:
        rc = join_parse_dec_id(s, out);
    }
    return rc == 0 && *out != 0 ? 0 : -1;
}

/* Makes room for one more element in a malloc'd array of *cap elements
 * of which n are used (doubling, from 64). 0 or SP_ENOMEM (unchanged). */
static int grow_for_one(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *nv = realloc(*v, nc * elem);
    if (!nv)
        return SP_ENOMEM;
    *v = nv;
    *cap = nc;
    return 0;
}

/* Which string-table indexes are keys we read (a table may hold a string
 * twice; every copy counts). *any_key: some span id key is present. NULL on
 * ENOMEM. */
static uint8_t *key_kinds(const struct join_label_ctx *c, const sp_pprof *p, bool *any_key)
{
    uint8_t *kind = calloc(p->n_string_table ? p->n_string_table : 1, 1);
    if (!kind)
        return NULL;
    *any_key = false;
    for (size_t i = 1; i < p->n_string_table; i++) {
        const char *s = p->string_table[i];
        if (!s)
            continue;
        enum key_kind k = KEY_NONE;
        if (strcmp(s, "span_id") == 0)
            k = KEY_OTEL_HEX;
        else if (strcmp(s, "span id") == 0)
            k = KEY_DD_SPAN;
        else if (strcmp(s, "local root span id") == 0)
            k = KEY_DD_ROOT;
        else if (strcmp(s, "trace endpoint") == 0)
            k = KEY_DD_ENDPOINT;
        else
            for (size_t e = 0; e < c->n_extra; e++)
                if (c->extra_keys[e] && strcmp(s, c->extra_keys[e]) == 0)
                    k = KEY_EXTRA;
        kind[i] = (uint8_t)k;
        if (k != KEY_NONE && k != KEY_DD_ENDPOINT)
            *any_key = true;
    }
    return kind;
}

/* What one sample's labels say about its span. */
struct sample_ids {
    uint64_t span;    /* Datadog's `span id` first (what the backend reads), else span_id, else extra */
    uint64_t dd_span; /* Datadog's `span id`, 0 if absent or not a number */
    uint64_t dd_root; /* `local root span id`, 0 if absent */
    bool has_span, has_root, has_endpoint;
};

/* A Datadog tracer labelled the sample itself (its spans go to the Agent,
 * not here): complete as it is, not a miss, nothing to wait for. */
static bool dd_labelled(const struct sample_ids *s)
{
    return s->has_span && s->dd_span && s->dd_root;
}

static void read_sample(const sp_pprof *p, const uint8_t *kind, const Perftools__Profiles__Sample *s,
                        struct sample_ids *o)
{
    uint64_t dd_span = 0, otel_span = 0, extra_span = 0;
    memset(o, 0, sizeof *o);
    for (size_t li = 0; li < s->n_label; li++) {
        const Perftools__Profiles__Label *l = s->label[li];
        if (l->key <= 0 || (uint64_t)l->key >= p->n_string_table)
            continue;
        uint64_t v;
        switch ((enum key_kind)kind[l->key]) {
        case KEY_DD_SPAN:
            o->has_span = true;
            if (!dd_span && label_id(p, l, KEY_DD_SPAN, &v) == 0)
                dd_span = v;
            break;
        case KEY_OTEL_HEX:
            if (!otel_span && label_id(p, l, KEY_OTEL_HEX, &v) == 0)
                otel_span = v;
            break;
        case KEY_EXTRA:
            if (!extra_span && label_id(p, l, KEY_EXTRA, &v) == 0)
                extra_span = v;
            break;
        case KEY_DD_ROOT:
            o->has_root = true;
            if (!o->dd_root && label_id(p, l, KEY_DD_ROOT, &v) == 0)
                o->dd_root = v;
            break;
        case KEY_DD_ENDPOINT:
            o->has_endpoint = true;
            break;
        default:
            break;
        }
    }
    o->dd_span = dd_span;
    o->span = dd_span ? dd_span : otel_span ? otel_span : extra_span;
}

/* The span's local root; a sample that already names its local root (a
 * Datadog profiler's) can still get the endpoint from that root. */
static struct resolved resolve_span(const struct join_label_ctx *c, uint64_t span, uint64_t dd_root)
{
    struct resolved r = {0};
    r.status = (int)join_index_resolve(c->ix, span, c->max_depth, &r.root_id, &r.rec);
    if (r.status != JOIN_RESOLVED && dd_root) {
        bool is_root;
        uint64_t rec;
        if (join_index_get(c->ix, dd_root, &is_root, &rec) && is_root) {
            r.status = JOIN_RESOLVED;
            r.root_id = dd_root;
            r.rec = rec;
        }
    }
    return r;
}

enum join_outcome join_root_outcome(uint64_t rec, uint32_t *pair)
{
    *pair = join_root_pair(rec);
    if (join_root_flags(rec) & JOIN_ROOT_NOT_PII)
        return JOIN_OUT_NOT_PII_SAFE;
    if (!*pair)
        return JOIN_OUT_ENDPOINT_DROPPED;
    return JOIN_OUT_MATCHED;
}

int join_label_scan(const struct join_label_ctx *c, const sp_pprof *p,
                    void (*fn)(void *ud, const struct join_open_id *id), void *ud)
{
    if (!p || p->n_sample == 0)
        return 0;
    bool any_key = false;
    uint8_t *kind = key_kinds(c, p, &any_key);
    if (!kind)
        return SP_ENOMEM;
    struct join_u64map seen = {0}; /* span -> index in open, or -1 when it resolves */
    struct join_open_id *open = NULL;
    size_t n_open = 0, cap_open = 0;
    int rc = 0;
    for (size_t si = 0; any_key && si < p->n_sample; si++) {
        struct sample_ids sid;
        read_sample(p, kind, p->sample[si], &sid);
        /* No span id, or already complete (a Datadog tracer's own labels). */
        if (!sid.span || sid.has_endpoint || dd_labelled(&sid))
            continue;
        int64_t *ix = join_u64map_get(&seen, sid.span);
        if (!ix) {
            struct resolved r = resolve_span(c, sid.span, sid.dd_root);
            int64_t at = -1;
            if (r.status != JOIN_RESOLVED) {
                if (grow_for_one((void **)&open, &cap_open, n_open, sizeof *open) < 0) {
                    rc = SP_ENOMEM;
                    break;
                }
                open[n_open] = (struct join_open_id){.span = sid.span,
                                                     .missing = r.root_id,
                                                     .status = (enum join_resolve)r.status};
                at = (int64_t)n_open++;
            }
            ix = join_u64map_put(&seen, sid.span, at);
            if (!ix) {
                rc = SP_ENOMEM;
                break;
            }
        }
        if (*ix >= 0)
            open[*ix].samples++;
    }
    for (size_t i = 0; rc == 0 && i < n_open; i++)
        fn(ud, &open[i]);
    free(open);
    free(kind);
    join_u64map_free(&seen);
    return rc;
}

int join_label_pprof(const struct join_label_ctx *c, sp_pprof *p, struct sp_arena *arena,
                     struct join_label_stats *st, bool *modified)
{
    *modified = false;
    if (!p || p->n_sample == 0)
        return 0;

    bool any_key = false;
    uint8_t *kind = key_kinds(c, p, &any_key);
    if (!kind)
        return SP_ENOMEM;
    if (!any_key) {
        st->samples[JOIN_OUT_NO_SPAN_LABEL] += p->n_sample;
        free(kind);
        return 0;
    }

    struct plan *plans = calloc(p->n_sample, sizeof *plans);
    struct resolved *cache = NULL;
    size_t cache_n = 0, cache_cap = 0;
    struct join_u64map cache_ix = {0};
    int rc = 0;
    if (!plans) {
        free(kind);
        return SP_ENOMEM;
    }
    size_t to_add = 0;

    for (size_t si = 0; si < p->n_sample; si++) {
        struct sample_ids sid;
        read_sample(p, kind, p->sample[si], &sid);
        uint64_t span = sid.span, dd_root = sid.dd_root;
        bool has_span = sid.has_span, has_root = sid.has_root, has_endpoint = sid.has_endpoint;
        if (!span) {
            st->samples[JOIN_OUT_NO_SPAN_LABEL]++;
            continue;
        }
        struct resolved r;
        int64_t *ci = join_u64map_get(&cache_ix, span);
        if (ci) {
            r = cache[*ci];
        } else {
            r = resolve_span(c, span, dd_root);
            if (grow_for_one((void **)&cache, &cache_cap, cache_n, sizeof *cache) < 0) {
                rc = SP_ENOMEM;
                break;
            }
            cache[cache_n] = r;
            if (!join_u64map_put(&cache_ix, span, (int64_t)cache_n)) {
                rc = SP_ENOMEM;
                break;
            }
            cache_n++;
        }
        struct plan *pl = &plans[si];
        pl->span = span;
        if (r.status == JOIN_SPAN_UNKNOWN) {
            /* dd-trace labels its samples itself (its spans go to the
             * Agent, not here): not a miss. */
            st->samples[dd_labelled(&sid) ? JOIN_OUT_ALREADY_LABELLED : JOIN_OUT_SPAN_UNKNOWN]++;
            continue;
        }
        if (!has_span)
            pl->add |= ADD_SPAN;
        if (r.status == JOIN_ROOT_UNKNOWN) {
            st->samples[JOIN_OUT_ROOT_UNKNOWN]++;
        } else {
            pl->root = r.root_id;
            if (!has_root)
                pl->add |= ADD_ROOT;
            uint32_t pair = 0;
            enum join_outcome out = join_root_outcome(r.rec, &pair);
            st->samples[out]++;
            if (out == JOIN_OUT_MATCHED && c->pair_samples && pair <= c->n_pairs)
                c->pair_samples[pair]++;
            if (out == JOIN_OUT_MATCHED && !has_endpoint) {
                pl->pair = pair;
                pl->add |= ADD_ENDPOINT;
            }
        }
        if (pl->add)
            to_add++;
    }
    free(kind);
    free(cache);
    join_u64map_free(&cache_ix);
    if (rc < 0 || to_add == 0) {
        free(plans);
        return rc;
    }

    /* Second pass: keys, then value strings appended in one table. */
    int64_t k_span = sp_pprof_intern(p, arena, "span id");
    int64_t k_root = sp_pprof_intern(p, arena, "local root span id");
    int64_t k_endpoint = sp_pprof_intern(p, arena, "trace endpoint");
    if (k_span < 0 || k_root < 0 || k_endpoint < 0) {
        free(plans);
        return SP_ENOMEM;
    }
    struct join_u64map ids = {0}, pairs = {0};
    /* Collect distinct new strings first, then grow the table once. */
    char **newstr = NULL;
    size_t n_new = 0, cap_new = 0;
    size_t base = p->n_string_table;
#define NEW_STRING(str_expr, out_idx)                                                              \
    do {                                                                                           \
        if (n_new == cap_new) {                                                                    \
            size_t nc_ = cap_new ? cap_new * 2 : 64;                                               \
            char **nn_ = realloc(newstr, nc_ * sizeof *nn_);                                       \
            if (!nn_)                                                                              \
                goto oom;                                                                          \
            newstr = nn_;                                                                          \
            cap_new = nc_;                                                                         \
        }                                                                                          \
        newstr[n_new] = (str_expr);                                                                \
        if (!newstr[n_new])                                                                        \
            goto oom;                                                                              \
        (out_idx) = (int64_t)(base + n_new);                                                       \
        n_new++;                                                                                   \
    } while (0)

    for (size_t si = 0; si < p->n_sample; si++) {
        struct plan *pl = &plans[si];
        if (!pl->add)
            continue;
        uint64_t need[2] = {pl->add & ADD_SPAN ? pl->span : 0, pl->add & ADD_ROOT ? pl->root : 0};
        for (int k = 0; k < 2; k++) {
            if (!need[k] || join_u64map_get(&ids, need[k]))
                continue;
            int64_t idx;
            NEW_STRING(sp_arena_sprintf(arena, "%" PRIu64, need[k]), idx);
            if (!join_u64map_put(&ids, need[k], idx))
                goto oom;
        }
        if ((pl->add & ADD_ENDPOINT) && !join_u64map_get(&pairs, pl->pair)) {
            const char *ep = join_names_endpoint(c->names, pl->pair);
            int64_t idx;
            NEW_STRING(sp_arena_strdup(arena, ep ? ep : ""), idx);
            if (!join_u64map_put(&pairs, pl->pair, idx))
                goto oom;
        }
    }
#undef NEW_STRING
    {
        char **table = sp_arena_alloc(arena, (base + n_new) * sizeof *table);
        if (!table)
            goto oom;
        if (base)
            memcpy(table, p->string_table, base * sizeof *table);
        memcpy(table + base, newstr, n_new * sizeof *table);
        p->string_table = table;
        p->n_string_table = base + n_new;
    }

    for (size_t si = 0; si < p->n_sample; si++) {
        struct plan *pl = &plans[si];
        if (!pl->add)
            continue;
        Perftools__Profiles__Sample *s = p->sample[si];
        size_t extra = (size_t)__builtin_popcount(pl->add);
        Perftools__Profiles__Label **nl = sp_arena_alloc(arena, (s->n_label + extra) * sizeof *nl);
        Perftools__Profiles__Label *lab = sp_arena_alloc(arena, extra * sizeof *lab);
        if (!nl || !lab)
            goto oom;
        if (s->n_label)
            memcpy(nl, s->label, s->n_label * sizeof *nl);
        size_t n = s->n_label, k = 0;
        /* Keys in dd-trace-go v2's order (alphabetical). */
        if (pl->add & ADD_ROOT) {
            perftools__profiles__label__init(&lab[k]);
            lab[k].key = k_root;
            lab[k].str = *join_u64map_get(&ids, pl->root);
            nl[n++] = &lab[k++];
        }
        if (pl->add & ADD_SPAN) {
            perftools__profiles__label__init(&lab[k]);
            lab[k].key = k_span;
            lab[k].str = *join_u64map_get(&ids, pl->span);
            nl[n++] = &lab[k++];
        }
        if (pl->add & ADD_ENDPOINT) {
            perftools__profiles__label__init(&lab[k]);
            lab[k].key = k_endpoint;
            lab[k].str = *join_u64map_get(&pairs, pl->pair);
            nl[n++] = &lab[k++];
        }
        s->label = nl;
        s->n_label = n;
        st->labels_added += k;
    }
    *modified = true;
    free(newstr);
    free(plans);
    join_u64map_free(&ids);
    join_u64map_free(&pairs);
    return 0;

oom:
    free(newstr);
    free(plans);
    join_u64map_free(&ids);
    join_u64map_free(&pairs);
    return SP_ENOMEM;
}
