/* A u64 -> i64 map for the join's per-request work: which samples' span
 * ids were seen in one profile, which strings were added to it, which
 * ResourceSpans holds a span id of one OTLP request. Built, used and freed
 * within one call, so it needs no deletion and no memory class: its size
 * follows the request's, which the receivers bound.
 *
 * Entries stay in insertion order in an array; sp_hindex finds them. */
#ifndef JOIN_U64MAP_H
#define JOIN_U64MAP_H

#include <stddef.h>
#include <stdint.h>

#include "sp_hindex.h"

struct join_u64kv {
    uint64_t k;
    int64_t v;
};

struct join_u64map {
    struct sp_hindex ix;
    struct join_u64kv *e; /* in insertion order */
    size_t n, cap;
};

/* Room for n keys up front (optional); 0 or SP_ENOMEM. */
int join_u64map_reserve(struct join_u64map *m, size_t n);
/* The value of k, or NULL. The pointer lives until the next put. */
int64_t *join_u64map_get(const struct join_u64map *m, uint64_t k);
/* Sets k to v; the value's place (until the next put), or NULL when out of
 * memory (the map is unchanged then). */
int64_t *join_u64map_put(struct join_u64map *m, uint64_t k, int64_t v);
void join_u64map_free(struct join_u64map *m);

#endif
