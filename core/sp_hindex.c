/* The hash index's growth (see sp_hindex.h); lookups are inline there. */
#include "sp_hindex.h"

#include <stdlib.h>
#include <string.h>

#include "sp_err.h"

int sp_hindex_reserve(struct sp_hindex *ix, size_t n, size_t have, sp_hindex_hash_fn hash_of,
                      const void *ctx)
{
    if (n >= UINT32_MAX)
        return SP_ENOMEM; /* slots hold position + 1 in 32 bits */
    if (ix->cap && n * 2 <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap : 16;
    while (cap < n * 2)
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return SP_ENOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; i < have; i++) {
        size_t s = (size_t)hash_of(ctx, i) & mask;
        while (slots[s])
            s = (s + 1) & mask;
        slots[s] = (uint32_t)(i + 1);
    }
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    return 0;
}

void sp_hindex_clear(struct sp_hindex *ix)
{
    if (ix->slots)
        memset(ix->slots, 0, ix->cap * sizeof(*ix->slots));
}

void sp_hindex_free(struct sp_hindex *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = 0;
}
