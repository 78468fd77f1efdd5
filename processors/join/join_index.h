/* The join's span index and name tables (private to processors/join).
 *
 * The index maps a span id (the 8 OTLP bytes read big-endian, the number
 * Datadog uses) to one 64-bit link: the parent's span id for an ordinary
 * span, or a packed "root record" for a span known to be a local root
 * (endpoint id, flags, start time). Nothing else is kept per span, so an
 * indexed span costs 16 bytes of slab, one bit of root bitmap and one
 * 32-bit hash bucket at a load of at most 0.8: about 21 bytes. Local roots
 * are resolved lazily by walking parent links (bounded depth, so cycles end).
 *
 * Entries sit in a ring in arrival order: capacity eviction drops the
 * oldest, and TTL expiry drops from the same end using a short queue of
 * time checkpoints. The slab grows by doubling up to max_spans. Evictions
 * are counted here; the component turns them into metrics.
 *
 * Names: service names and (service, endpoint) pairs are interned into
 * small ids, bounded by a per-service endpoint cardinality limit (the rest
 * are counted and get no id). Interned strings live as long as the index.
 *
 * Loop thread only, no I/O. */
#ifndef SP_JOIN_INDEX_H
#define SP_JOIN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Root record flags (bits 56..63 of the link). */
#define JOIN_ROOT_NOT_PII 0x1u   /* span type is not web/rpc/custom: no endpoint */
#define JOIN_ROOT_CARD_DROP 0x2u /* endpoint over the cardinality limit: no id */

#define JOIN_PAIR_MAX 0xFFFFFFu

/* start_ms: the root's start in index-relative milliseconds (wraps every
 * 49 days; only compared to nearby times). pair: endpoint pair id or 0. */
static inline uint64_t join_root_record(uint32_t start_ms, uint32_t pair, unsigned flags)
{
    return (uint64_t)start_ms | ((uint64_t)(pair & JOIN_PAIR_MAX) << 32) |
           ((uint64_t)(flags & 0xFFu) << 56);
}
static inline uint32_t join_root_start(uint64_t rec) { return (uint32_t)rec; }
static inline uint32_t join_root_pair(uint64_t rec) { return (uint32_t)(rec >> 32) & JOIN_PAIR_MAX; }
static inline unsigned join_root_flags(uint64_t rec) { return (unsigned)(rec >> 56); }

struct join_index;

struct join_index_stats {
    size_t count;            /* spans indexed now */
    size_t capacity;         /* slab entries allocated */
    size_t max_spans;        /* the bound */
    size_t bytes;            /* memory held by slab, bitmap and buckets */
    uint64_t inserted;       /* new ids ever inserted */
    uint64_t evicted_ttl;
    uint64_t evicted_capacity;
};

/* max_spans >= 1; ttl_ms > 0; initial: first slab size (0: a default),
 * clamped to max_spans. NULL on ENOMEM. */
struct join_index *join_index_create(size_t max_spans, int64_t ttl_ms, size_t initial);
void join_index_destroy(struct join_index *ix);

/* Inserts id, or updates its link when already present (keeping its place
 * in arrival order). is_root says what link holds. Expires by TTL first,
 * then evicts the oldest when full. id 0 is ignored (never a valid span).
 * 0 or SP_ENOMEM (growth failed: the entry is then stored by evicting the
 * oldest at the current capacity, so ENOMEM is only returned when the
 * capacity is zero). */
int join_index_put(struct join_index *ix, uint64_t id, bool is_root, uint64_t link, int64_t now_ms);

/* Drops every entry older than the TTL. */
void join_index_expire(struct join_index *ix, int64_t now_ms);

bool join_index_get(const struct join_index *ix, uint64_t id, bool *is_root, uint64_t *link);

enum join_resolve {
    JOIN_RESOLVED = 0,      /* *root_id and *root_rec set */
    JOIN_SPAN_UNKNOWN = 1,  /* id not indexed */
    JOIN_ROOT_UNKNOWN = 2,  /* a parent is missing, or the walk passed max_depth (cycles) */
};

/* Walks id's parent links to its local root. When the walk stops at an id
 * that is not indexed (JOIN_SPAN_UNKNOWN: id itself; JOIN_ROOT_UNKNOWN: an
 * ancestor), *root_id is that missing id: what a held profile waits for.
 * It is 0 when nothing can arrive to complete the chain (max_depth passed,
 * a cycle, a non-root without parent). */
enum join_resolve join_index_resolve(const struct join_index *ix, uint64_t id, unsigned max_depth,
                                     uint64_t *root_id, uint64_t *root_rec);

/* Calls fn for every indexed local root (for endpoint counts). */
void join_index_for_each_root(const struct join_index *ix,
                              void (*fn)(uint64_t id, uint64_t rec, void *ud), void *ud);

void join_index_stats(const struct join_index *ix, struct join_index_stats *out);

/* Rewrites the pair id of every root record through remap (indexed by old
 * pair id, 0 -> 0), after join_names_compact(). */
void join_index_remap_pairs(struct join_index *ix, const uint32_t *remap, size_t n_remap);

/* ---- names ---- */

struct join_names;

/* limit: distinct endpoints per service (endpoint_cardinality_limit);
 * max_services bounds the service table. NULL on ENOMEM. */
struct join_names *join_names_create(size_t limit, size_t max_services);
void join_names_destroy(struct join_names *n);

/* Service id (>= 1) for a name, interning it; 0 when the table is full or
 * on ENOMEM (counted in *drops). */
uint32_t join_names_service(struct join_names *n, const char *service);
/* Pair id (>= 1) for (service id, endpoint); 0 when the service is over its
 * endpoint limit (counted) or on ENOMEM. */
uint32_t join_names_pair(struct join_names *n, uint32_t service, const char *endpoint);
/* Lookups without interning; 0 / NULL when unknown. */
uint32_t join_names_find_service(const struct join_names *n, const char *service);
const char *join_names_endpoint(const struct join_names *n, uint32_t pair);
uint32_t join_names_pair_service(const struct join_names *n, uint32_t pair);
const char *join_names_service_name(const struct join_names *n, uint32_t service);
uint64_t join_names_drops(const struct join_names *n);
/* Keeps only the pairs with keep[id] set (keep has pair_count + 1 entries)
 * and renumbers them densely; remap[old] = new id or 0. Frees the others'
 * strings and their slots under the per-service limit. 0 or SP_ENOMEM (the
 * table is then unchanged). */
int join_names_compact(struct join_names *n, const bool *keep, uint32_t *remap);
size_t join_names_pair_count(const struct join_names *n);

#endif
