/* The join's bounded span index (see join_index.h for the layout and why
 * it is shaped so) and its interned service/endpoint names. */
#include <stdlib.h>
#include <string.h>

#include "join_index.h"
#include "sp_err.h"
#include "sp_hash.h"
#include "sp_memory.h"

#define JOIN_CP_MAX 256
#define JOIN_DEFAULT_INITIAL 65536
/* Buckets per slab entry: load factor at most 0.8. */
#define JOIN_BUCKETS(cap) ((cap) + (cap) / 4 + 1)

struct join_cp {
    uint64_t seq_end; /* entries with seq < seq_end arrived at or before t */
    int64_t t;
};

struct join_index {
    size_t max_spans;
    int64_t ttl_ms;
    int64_t cp_gran_ms;
    /* Ring of entries in arrival order. */
    uint64_t *ids;
    uint64_t *links;
    uint64_t *rootbits;
    size_t cap, tail, count;
    uint64_t next_seq; /* sequence number of the next new entry */
    /* Hash: bucket holds slab index + 1, 0 = empty; linear probing. */
    uint32_t *buckets;
    size_t nbuckets;
    struct join_cp cp[JOIN_CP_MAX];
    size_t cp_head, cp_n;
    uint64_t evicted_ttl, evicted_cap;
};

/* Ids from tests or broken SDKs may be sequential: hashed, never used raw
 * (sp_hash.h); the high 32 bits scaled onto the buckets. */
static inline size_t home(const struct join_index *ix, uint64_t id)
{
    return (size_t)(((sp_hash_u64(id) >> 32) * (uint64_t)ix->nbuckets) >> 32);
}

static inline size_t next_bucket(const struct join_index *ix, size_t i)
{
    return i + 1 == ix->nbuckets ? 0 : i + 1;
}

static inline bool rootbit(const struct join_index *ix, size_t idx)
{
    return (ix->rootbits[idx >> 6] >> (idx & 63)) & 1u;
}

static inline void set_rootbit(struct join_index *ix, size_t idx, bool v)
{
    if (v)
        ix->rootbits[idx >> 6] |= 1ULL << (idx & 63);
    else
        ix->rootbits[idx >> 6] &= ~(1ULL << (idx & 63));
}

/* Bucket position holding id, or SIZE_MAX. */
static size_t find_bucket(const struct join_index *ix, uint64_t id)
{
    if (!ix->nbuckets)
        return SIZE_MAX;
    for (size_t i = home(ix, id);; i = next_bucket(ix, i)) {
        uint32_t b = ix->buckets[i];
        if (!b)
            return SIZE_MAX;
        if (ix->ids[b - 1] == id)
            return i;
    }
}

static void bucket_insert(struct join_index *ix, uint64_t id, size_t idx)
{
    size_t i = home(ix, id);
    while (ix->buckets[i])
        i = next_bucket(ix, i);
    ix->buckets[i] = (uint32_t)(idx + 1);
}

/* Backward-shift deletion keeps probe chains unbroken without tombstones. */
static void bucket_delete_at(struct join_index *ix, size_t p)
{
    size_t j = p;
    for (;;) {
        j = next_bucket(ix, j);
        uint32_t b = ix->buckets[j];
        if (!b)
            break;
        size_t k = home(ix, ix->ids[b - 1]);
        bool stays = p <= j ? (p < k && k <= j) : (p < k || k <= j);
        if (stays)
            continue;
        ix->buckets[p] = b;
        p = j;
    }
    ix->buckets[p] = 0;
}

static void cp_trim(struct join_index *ix)
{
    uint64_t oldest = ix->next_seq - ix->count;
    while (ix->cp_n && ix->cp[ix->cp_head].seq_end <= oldest) {
        ix->cp_head = (ix->cp_head + 1) % JOIN_CP_MAX;
        ix->cp_n--;
    }
}

static void evict_oldest(struct join_index *ix)
{
    size_t idx = ix->tail;
    size_t p = find_bucket(ix, ix->ids[idx]);
    if (p != SIZE_MAX)
        bucket_delete_at(ix, p);
    set_rootbit(ix, idx, false);
    ix->tail = ix->tail + 1 == ix->cap ? 0 : ix->tail + 1;
    ix->count--;
    cp_trim(ix);
}

/* What the arrays of an index of cap spans take: charged to the process
 * memory ceiling (class index) while they live. */
static size_t arrays_bytes(size_t cap)
{
    return cap * 2 * sizeof(uint64_t) + (cap + 63) / 64 * sizeof(uint64_t) +
           JOIN_BUCKETS(cap) * sizeof(uint32_t);
}

/* Past the ceiling the index does not grow: it evicts its oldest span like
 * at max_spans. */
static int alloc_arrays(size_t cap, uint64_t **ids, uint64_t **links, uint64_t **bits,
                        uint32_t **buckets, size_t *nb)
{
    *nb = JOIN_BUCKETS(cap);
    if (sp_memory_reserve(SP_MEM_INDEX, arrays_bytes(cap)))
        return SP_ENOMEM;
    *ids = malloc(cap * sizeof **ids);
    *links = malloc(cap * sizeof **links);
    *bits = calloc((cap + 63) / 64, sizeof **bits);
    *buckets = calloc(*nb, sizeof **buckets);
    if (!*ids || !*links || !*bits || !*buckets) {
        free(*ids);
        free(*links);
        free(*bits);
        free(*buckets);
        sp_memory_release(SP_MEM_INDEX, arrays_bytes(cap));
        return SP_ENOMEM;
    }
    return 0;
}

static int grow(struct join_index *ix)
{
    size_t ncap = ix->cap ? ix->cap * 2 : JOIN_DEFAULT_INITIAL;
    if (ncap > ix->max_spans)
        ncap = ix->max_spans;
    if (ncap <= ix->cap)
        return SP_ENOMEM;
    uint64_t *ids, *links, *bits;
    uint32_t *buckets;
    size_t nb;
    if (alloc_arrays(ncap, &ids, &links, &bits, &buckets, &nb) < 0)
        return SP_ENOMEM;
    for (size_t k = 0; k < ix->count; k++) {
        size_t o = (ix->tail + k) % ix->cap;
        ids[k] = ix->ids[o];
        links[k] = ix->links[o];
        if (rootbit(ix, o))
            bits[k >> 6] |= 1ULL << (k & 63);
    }
    free(ix->ids);
    free(ix->links);
    free(ix->rootbits);
    free(ix->buckets);
    sp_memory_release(SP_MEM_INDEX, arrays_bytes(ix->cap));
    ix->ids = ids;
    ix->links = links;
    ix->rootbits = bits;
    ix->buckets = buckets;
    ix->nbuckets = nb;
    ix->cap = ncap;
    ix->tail = 0;
    for (size_t k = 0; k < ix->count; k++)
        bucket_insert(ix, ix->ids[k], k);
    return 0;
}

struct join_index *join_index_create(size_t max_spans, int64_t ttl_ms, size_t initial)
{
    if (max_spans < 1 || max_spans > 0x7FFFFFF0u || ttl_ms <= 0)
        return NULL;
    struct join_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->max_spans = max_spans;
    ix->ttl_ms = ttl_ms;
    ix->cp_gran_ms = ttl_ms / 64;
    if (ix->cp_gran_ms < 1)
        ix->cp_gran_ms = 1;
    if (ix->cp_gran_ms > 1000)
        ix->cp_gran_ms = 1000;
    if (!initial)
        initial = JOIN_DEFAULT_INITIAL;
    if (initial > max_spans)
        initial = max_spans;
    if (alloc_arrays(initial, &ix->ids, &ix->links, &ix->rootbits, &ix->buckets, &ix->nbuckets) <
        0) {
        free(ix);
        return NULL;
    }
    ix->cap = initial;
    return ix;
}

void join_index_destroy(struct join_index *ix)
{
    if (!ix)
        return;
    if (ix->ids)
        sp_memory_release(SP_MEM_INDEX, arrays_bytes(ix->cap));
    free(ix->ids);
    free(ix->links);
    free(ix->rootbits);
    free(ix->buckets);
    free(ix);
}

void join_index_expire(struct join_index *ix, int64_t now_ms)
{
    while (ix->cp_n) {
        struct join_cp *c = &ix->cp[ix->cp_head];
        if (c->t + ix->ttl_ms > now_ms)
            break;
        while (ix->count && ix->next_seq - ix->count < c->seq_end) {
            evict_oldest(ix);
            ix->evicted_ttl++;
        }
        /* evict_oldest trimmed the checkpoint; guard against an empty ring. */
        if (ix->cp_n && &ix->cp[ix->cp_head] == c && c->seq_end <= ix->next_seq - ix->count) {
            ix->cp_head = (ix->cp_head + 1) % JOIN_CP_MAX;
            ix->cp_n--;
        }
    }
}

static void cp_note(struct join_index *ix, int64_t now_ms)
{
    if (ix->cp_n) {
        struct join_cp *last = &ix->cp[(ix->cp_head + ix->cp_n - 1) % JOIN_CP_MAX];
        /* Same granule, or no room for another checkpoint: extend the last
         * (its entries then expire a little later, never earlier). */
        if (now_ms - last->t < ix->cp_gran_ms || ix->cp_n == JOIN_CP_MAX) {
            last->seq_end = ix->next_seq;
            if (now_ms > last->t)
                last->t = now_ms;
            return;
        }
    }
    struct join_cp *c = &ix->cp[(ix->cp_head + ix->cp_n) % JOIN_CP_MAX];
    c->seq_end = ix->next_seq;
    c->t = now_ms;
    ix->cp_n++;
}

int join_index_put(struct join_index *ix, uint64_t id, bool is_root, uint64_t link, int64_t now_ms)
{
    if (id == 0)
        return 0;
    join_index_expire(ix, now_ms);
    size_t p = find_bucket(ix, id);
    if (p != SIZE_MAX) {
        size_t idx = ix->buckets[p] - 1;
        ix->links[idx] = link;
        set_rootbit(ix, idx, is_root);
        return 0;
    }
    if (ix->count == ix->max_spans) {
        evict_oldest(ix);
        ix->evicted_cap++;
    } else if (ix->count == ix->cap && grow(ix) < 0) {
        if (ix->cap == 0)
            return SP_ENOMEM;
        evict_oldest(ix);
        ix->evicted_cap++;
    }
    size_t idx = (ix->tail + ix->count) % ix->cap;
    ix->ids[idx] = id;
    ix->links[idx] = link;
    set_rootbit(ix, idx, is_root);
    ix->count++;
    ix->next_seq++;
    bucket_insert(ix, id, idx);
    cp_note(ix, now_ms);
    return 0;
}

bool join_index_get(const struct join_index *ix, uint64_t id, bool *is_root, uint64_t *link)
{
    size_t p = find_bucket(ix, id);
    if (p == SIZE_MAX)
        return false;
    size_t idx = ix->buckets[p] - 1;
    if (is_root)
        *is_root = rootbit(ix, idx);
    if (link)
        *link = ix->links[idx];
    return true;
}

enum join_resolve join_index_resolve(const struct join_index *ix, uint64_t id, unsigned max_depth,
                                     uint64_t *root_id, uint64_t *root_rec)
{
    uint64_t cur = id;
    for (unsigned depth = 0; depth <= max_depth; depth++) {
        size_t p = find_bucket(ix, cur);
        if (p == SIZE_MAX) {
            *root_id = cur; /* the first id of the chain not indexed */
            return depth == 0 ? JOIN_SPAN_UNKNOWN : JOIN_ROOT_UNKNOWN;
        }
        size_t idx = ix->buckets[p] - 1;
        if (rootbit(ix, idx)) {
            *root_id = cur;
            *root_rec = ix->links[idx];
            return JOIN_RESOLVED;
        }
        cur = ix->links[idx];
        if (cur == 0)
            break;
    }
    *root_id = 0; /* no id to wait for: a cycle, too deep, or a parentless non-root */
    return JOIN_ROOT_UNKNOWN;
}

void join_index_for_each_root(const struct join_index *ix,
                              void (*fn)(uint64_t id, uint64_t rec, void *ud), void *ud)
{
    for (size_t k = 0; k < ix->count; k++) {
        size_t idx = (ix->tail + k) % ix->cap;
        if (rootbit(ix, idx))
            fn(ix->ids[idx], ix->links[idx], ud);
    }
}

void join_index_remap_pairs(struct join_index *ix, const uint32_t *remap, size_t n_remap)
{
    for (size_t k = 0; k < ix->count; k++) {
        size_t idx = (ix->tail + k) % ix->cap;
        if (!rootbit(ix, idx))
            continue;
        uint64_t rec = ix->links[idx];
        uint32_t pair = join_root_pair(rec);
        uint32_t np = pair < n_remap ? remap[pair] : 0;
        unsigned fl = join_root_flags(rec);
        if (pair && !np)
            fl |= JOIN_ROOT_CARD_DROP;
        ix->links[idx] = join_root_record(join_root_start(rec), np, fl);
    }
}

void join_index_stats(const struct join_index *ix, struct join_index_stats *out)
{
    out->count = ix->count;
    out->capacity = ix->cap;
    out->max_spans = ix->max_spans;
    out->bytes = ix->cap * 2 * sizeof(uint64_t) + (ix->cap + 63) / 64 * sizeof(uint64_t) +
                 ix->nbuckets * sizeof(uint32_t) + sizeof *ix;
    out->inserted = ix->next_seq;
    out->evicted_ttl = ix->evicted_ttl;
    out->evicted_capacity = ix->evicted_cap;
}

/* ---- names ---- */

struct join_pair {
    uint32_t service;
    char *endpoint;
};

struct join_names {
    size_t limit, max_services;
    char **services; /* id - 1 -> name */
    uint32_t *svc_endpoints; /* endpoints interned per service */
    size_t n_services;
    uint32_t *svc_hash; /* service id, 0 empty */
    size_t svc_hash_n;
    struct join_pair *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *pair_hash;
    size_t pair_hash_n;
    uint64_t drops;
};

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

struct join_names *join_names_create(size_t limit, size_t max_services)
{
    struct join_names *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->limit = limit;
    n->max_services = max_services ? max_services : 1;
    n->svc_hash_n = n->max_services * 2 + 1;
    n->services = calloc(n->max_services, sizeof *n->services);
    n->svc_endpoints = calloc(n->max_services, sizeof *n->svc_endpoints);
    n->svc_hash = calloc(n->svc_hash_n, sizeof *n->svc_hash);
    if (!n->services || !n->svc_endpoints || !n->svc_hash) {
        join_names_destroy(n);
        return NULL;
    }
    return n;
}

void join_names_destroy(struct join_names *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_services; i++)
        free(n->services[i]);
    for (size_t i = 0; i < n->n_pairs; i++)
        free(n->pairs[i].endpoint);
    free(n->services);
    free(n->svc_endpoints);
    free(n->svc_hash);
    free(n->pairs);
    free(n->pair_hash);
    free(n);
}

uint32_t join_names_find_service(const struct join_names *n, const char *service)
{
    size_t i = (size_t)(fnv1a(service, FNV_BASIS) % n->svc_hash_n);
    for (;; i = (i + 1) % n->svc_hash_n) {
        uint32_t id = n->svc_hash[i];
        if (!id)
            return 0;
        if (strcmp(n->services[id - 1], service) == 0)
            return id;
    }
}

uint32_t join_names_service(struct join_names *n, const char *service)
{
    uint32_t id = join_names_find_service(n, service);
    if (id)
        return id;
    if (n->n_services == n->max_services) {
        n->drops++;
        return 0;
    }
    char *copy = strdup(service);
    if (!copy)
        return 0;
    n->services[n->n_services++] = copy;
    id = (uint32_t)n->n_services;
    size_t i = (size_t)(fnv1a(service, FNV_BASIS) % n->svc_hash_n);
    while (n->svc_hash[i])
        i = (i + 1) % n->svc_hash_n;
    n->svc_hash[i] = id;
    return id;
}

static uint64_t pair_hash(uint32_t service, const char *endpoint)
{
    return fnv1a(endpoint, FNV_BASIS ^ ((uint64_t)service * 0x9E3779B97F4A7C15ULL));
}

static uint32_t pair_find(const struct join_names *n, uint32_t service, const char *endpoint)
{
    if (!n->pair_hash_n)
        return 0;
    size_t i = (size_t)(pair_hash(service, endpoint) % n->pair_hash_n);
    for (;; i = (i + 1) % n->pair_hash_n) {
        uint32_t id = n->pair_hash[i];
        if (!id)
            return 0;
        const struct join_pair *p = &n->pairs[id - 1];
        if (p->service == service && strcmp(p->endpoint, endpoint) == 0)
            return id;
    }
}

static int pair_rehash(struct join_names *n, size_t want)
{
    size_t hn = want * 2 + 1;
    uint32_t *h = calloc(hn, sizeof *h);
    if (!h)
        return SP_ENOMEM;
    for (size_t k = 0; k < n->n_pairs; k++) {
        size_t i = (size_t)(pair_hash(n->pairs[k].service, n->pairs[k].endpoint) % hn);
        while (h[i])
            i = (i + 1) % hn;
        h[i] = (uint32_t)(k + 1);
    }
    free(n->pair_hash);
    n->pair_hash = h;
    n->pair_hash_n = hn;
    return 0;
}

uint32_t join_names_pair(struct join_names *n, uint32_t service, const char *endpoint)
{
    if (!service || service > n->n_services)
        return 0;
    uint32_t id = pair_find(n, service, endpoint);
    if (id)
        return id;
    if (n->svc_endpoints[service - 1] >= n->limit || n->n_pairs >= JOIN_PAIR_MAX) {
        n->drops++;
        return 0;
    }
    if (n->n_pairs == n->cap_pairs) {
        size_t nc = n->cap_pairs ? n->cap_pairs * 2 : 64;
        struct join_pair *np = realloc(n->pairs, nc * sizeof *np);
        if (!np)
            return 0;
        n->pairs = np;
        n->cap_pairs = nc;
        if (pair_rehash(n, nc) < 0)
            return 0;
    }
    char *copy = strdup(endpoint);
    if (!copy)
        return 0;
    n->pairs[n->n_pairs].service = service;
    n->pairs[n->n_pairs].endpoint = copy;
    n->n_pairs++;
    id = (uint32_t)n->n_pairs;
    size_t i = (size_t)(pair_hash(service, endpoint) % n->pair_hash_n);
    while (n->pair_hash[i])
        i = (i + 1) % n->pair_hash_n;
    n->pair_hash[i] = id;
    n->svc_endpoints[service - 1]++;
    return id;
}

int join_names_compact(struct join_names *n, const bool *keep, uint32_t *remap)
{
    remap[0] = 0;
    if (!n->n_pairs)
        return 0;
    size_t hn = n->pair_hash_n;
    uint32_t *h = calloc(hn, sizeof *h);
    if (!h)
        return SP_ENOMEM;
    size_t w = 0;
    for (size_t k = 0; k < n->n_pairs; k++) {
        struct join_pair pr = n->pairs[k];
        if (!keep[k + 1]) {
            remap[k + 1] = 0;
            n->svc_endpoints[pr.service - 1]--;
            free(pr.endpoint);
            continue;
        }
        n->pairs[w] = pr;
        remap[k + 1] = (uint32_t)(w + 1);
        size_t i = (size_t)(pair_hash(pr.service, pr.endpoint) % hn);
        while (h[i])
            i = (i + 1) % hn;
        h[i] = (uint32_t)(w + 1);
        w++;
    }
    free(n->pair_hash);
    n->pair_hash = h;
    n->n_pairs = w;
    return 0;
}

const char *join_names_endpoint(const struct join_names *n, uint32_t pair)
{
    return pair && pair <= n->n_pairs ? n->pairs[pair - 1].endpoint : NULL;
}

uint32_t join_names_pair_service(const struct join_names *n, uint32_t pair)
{
    return pair && pair <= n->n_pairs ? n->pairs[pair - 1].service : 0;
}

const char *join_names_service_name(const struct join_names *n, uint32_t service)
{
    return service && service <= n->n_services ? n->services[service - 1] : NULL;
}

uint64_t join_names_drops(const struct join_names *n)
{
    return n->drops;
}

size_t join_names_pair_count(const struct join_names *n)
{
    return n->n_pairs;
}
