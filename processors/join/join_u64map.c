/* The join's u64 -> i64 map (see join_u64map.h). */
#include "join_u64map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sp_err.h"
#include "sp_hash.h"

static uint64_t hash_at(const void *ctx, size_t pos)
{
    return sp_hash_u64(((const struct join_u64kv *)ctx)[pos].k);
}

static bool key_eq(const void *ctx, size_t pos, const void *key)
{
    return ((const struct join_u64kv *)ctx)[pos].k == *(const uint64_t *)key;
}

int join_u64map_reserve(struct join_u64map *m, size_t n)
{
    if (n > m->cap) {
        struct join_u64kv *ne = realloc(m->e, n * sizeof *ne);
        if (!ne)
            return SP_ENOMEM;
        m->e = ne;
        m->cap = n;
    }
    return sp_hindex_reserve(&m->ix, n, m->n, hash_at, m->e);
}

int64_t *join_u64map_get(const struct join_u64map *m, uint64_t k)
{
    if (!m->ix.cap)
        return NULL;
    size_t s = sp_hindex_find(&m->ix, sp_hash_u64(k), key_eq, m->e, &k);
    return m->ix.slots[s] ? &m->e[sp_hindex_pos(&m->ix, s)].v : NULL;
}

int64_t *join_u64map_put(struct join_u64map *m, uint64_t k, int64_t v)
{
    if (m->n == m->cap && join_u64map_reserve(m, m->cap ? m->cap * 2 : 128) < 0)
        return NULL;
    if (sp_hindex_reserve(&m->ix, m->n + 1, m->n, hash_at, m->e) < 0)
        return NULL;
    size_t s = sp_hindex_find(&m->ix, sp_hash_u64(k), key_eq, m->e, &k);
    if (m->ix.slots[s]) {
        struct join_u64kv *e = &m->e[sp_hindex_pos(&m->ix, s)];
        e->v = v;
        return &e->v;
    }
    m->e[m->n] = (struct join_u64kv){k, v};
    sp_hindex_put(&m->ix, s, m->n);
    return &m->e[m->n++].v;
}

void join_u64map_free(struct join_u64map *m)
{
    sp_hindex_free(&m->ix);
    free(m->e);
    memset(m, 0, sizeof *m);
}
