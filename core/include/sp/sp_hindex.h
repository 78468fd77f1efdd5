/* One small open-addressing hash index.
 *
 * Maps a key's hash to the position of its entry in an array the caller
 * owns (entries stay where they are, in insertion order, so the caller can
 * sort or walk them; the index holds only 4-byte slots: 0 empty, else
 * position + 1). Linear probing over a power-of-two table kept at most half
 * full, so a probe run is short and an empty slot always ends it. No
 * deletion: callers that drop entries mark them dead, or clear the index.
 *
 * Lookup, with the key comparison inlined (eq is a static function):
 *
 *     size_t s = sp_hindex_find(&ix, h, my_eq, entries, &key);
 *     if (ix.slots[s]) ... found entries[ix.slots[s] - 1] ...
 *     else sp_hindex_put(&ix, s, n++);   (after sp_hindex_reserve for n + 1)
 *
 * The join's span index (processors/join/join_index.c) keeps its own
 * table: its 21 bytes per span come from storing the ids in the slots. */
#ifndef SP_HINDEX_H
#define SP_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_assert.h"

struct sp_hindex {
    uint32_t *slots;
    size_t cap; /* slots: a power of two, or 0 before the first reserve */
};

/* The hash of the entry at pos, for re-inserting when the table grows. */
typedef uint64_t (*sp_hindex_hash_fn)(const void *ctx, size_t pos);

/* Room for n entries at load 1/2 or less. When the table grows, the
 * entries already in it (positions 0..have-1) are re-inserted with
 * hash_of. 0 or SP_ENOMEM (the index is unchanged then). */
int sp_hindex_reserve(struct sp_hindex *ix, size_t n, size_t have, sp_hindex_hash_fn hash_of,
                      const void *ctx);
/* Every slot empty; the memory stays for reuse. */
void sp_hindex_clear(struct sp_hindex *ix);
void sp_hindex_free(struct sp_hindex *ix);

/* The slot of the entry whose key eq() says is key (slots[s] != 0), or the
 * empty slot where it would go (slots[s] == 0). The table must have been
 * reserved (cap > 0). */
static inline size_t sp_hindex_find(const struct sp_hindex *ix, uint64_t h,
                                    bool (*eq)(const void *ctx, size_t pos, const void *key),
                                    const void *ctx, const void *key)
{
    SP_ASSERT(ix->cap > 0, "sp_hindex_find before sp_hindex_reserve");
    size_t mask = ix->cap - 1;
    for (size_t s = (size_t)h & mask;; s = (s + 1) & mask) {
        uint32_t e = ix->slots[s];
        if (e == 0 || eq(ctx, e - 1, key))
            return s;
    }
}

/* Records pos in the empty slot s that sp_hindex_find() returned. */
static inline void sp_hindex_put(struct sp_hindex *ix, size_t s, size_t pos)
{
    ix->slots[s] = (uint32_t)(pos + 1);
}

/* The position held in slot s; only when slots[s] != 0. */
static inline size_t sp_hindex_pos(const struct sp_hindex *ix, size_t s)
{
    return ix->slots[s] - 1;
}

#endif
