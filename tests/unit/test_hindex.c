/* core/sp_hindex.c: the open-addressing index behind dd_map's tables and
 * pprof_delta's baseline. */
#include <stdint.h>
#include <stdlib.h>

#include "sp_hindex.h"
#include "sp_test.h"

struct keys {
    uint64_t *v;
    uint64_t (*hash)(uint64_t);
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    return x ^ (x >> 33);
}

static uint64_t collide(uint64_t x)
{
    (void)x;
    return 7; /* every key in one probe run */
}

static uint64_t hash_of(const void *ctx, size_t pos)
{
    const struct keys *k = ctx;
    return k->hash(k->v[pos]);
}

static bool eq(const void *ctx, size_t pos, const void *key)
{
    return ((const struct keys *)ctx)->v[pos] == *(const uint64_t *)key;
}

static size_t find(const struct sp_hindex *ix, const struct keys *k, uint64_t key)
{
    size_t s = sp_hindex_find(ix, k->hash(key), eq, k, &key);
    return ix->slots[s] ? sp_hindex_pos(ix, s) : SIZE_MAX;
}

static void run(uint64_t (*hash)(uint64_t), size_t n)
{
    struct keys k = {calloc(n, sizeof(uint64_t)), hash};
    struct sp_hindex ix = {0};
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = i * 2 + 1; /* odd: the even numbers are absent */
        ASSERT_EQ_INT(sp_hindex_reserve(&ix, have + 1, have, hash_of, &k), 0);
        ASSERT(ix.cap >= 2 * (have + 1));
        size_t s = sp_hindex_find(&ix, hash(key), eq, &k, &key);
        ASSERT_EQ_INT(ix.slots[s], 0);
        k.v[have] = key;
        sp_hindex_put(&ix, s, have++);
        /* A second insert of the same key finds the first. */
        ASSERT_EQ_INT(find(&ix, &k, key), have - 1);
    }
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(find(&ix, &k, i * 2 + 1), i);
        ASSERT_EQ_INT(find(&ix, &k, i * 2), SIZE_MAX);
    }
    sp_hindex_clear(&ix);
    ASSERT_EQ_INT(find(&ix, &k, 1), SIZE_MAX);
    /* Built in one go from entries already in the array. */
    struct sp_hindex ix2 = {0};
    ASSERT_EQ_INT(sp_hindex_reserve(&ix2, n, n, hash_of, &k), 0);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(find(&ix2, &k, i * 2 + 1), i);
    sp_hindex_free(&ix2);
    sp_hindex_free(&ix);
    ASSERT_EQ_INT(ix.cap, 0);
    free(k.v);
}

static void test_many_keys(void)
{
    run(mix, 20000);
}

static void test_all_collide(void)
{
    run(collide, 300);
}

int main(void)
{
    RUN(test_many_keys);
    RUN(test_all_collide);
    return sp_test_summary();
}
