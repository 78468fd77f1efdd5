/* The hash functions spanprof's in-memory tables use, in one place.
 *
 * Why these: the tables (sp_hindex users, the join's span index) index by
 * the low bits of the hash, and the keys are often sequential (span ids
 * from test tools and some SDKs, pprof string indexes), so a 64-bit value
 * is never used raw: it goes through splitmix64's finaliser (Steele, Lea
 * and Flood, "Fast splittable pseudorandom number generators", 2014; the
 * constants of java.util.SplittableRandom), which is a bijection, cheap,
 * and sends every input bit to every output bit. Strings are folded with
 * FNV-1a first. None of this is for hostile keys across processes: the
 * tables bound their size and probe runs, and no hash value leaves the
 * process.
 *
 * Hashes that must match another program bit for bit (the APM stats'
 * FNV-64a of datadog-agent's aggregation.go) stay with that code. */
#ifndef SP_HASH_H
#define SP_HASH_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: the golden-ratio increment, then the finaliser. */
static inline uint64_t sp_hash_u64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* FNV-1a over a NUL-terminated string (NULL hashes like ""), from seed,
 * then mixed. */
static inline uint64_t sp_hash_str(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return sp_hash_u64(h);
}

#endif
