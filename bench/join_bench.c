/* Micro-benchmark of the join's span index: insert and resolve rates and
 * memory per indexed span at 100k and 1M spans (and at 100k spans under
 * the default max_spans of 1M, where the slab has grown by doubling).
 *
 *   join_bench [spans...]      default: 100000 1000000
 *
 * Spans are random 64-bit ids in trees of 8 (a root and 7 descendants, the
 * children pointing at earlier spans of their tree), inserted in arrival
 * order; resolves walk to the local root. Output: one line per size. Not
 * registered in meson here (the bench folder's build decides). Link with
 * libspanprof (join_index.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "processors/join/join_index.h"

static uint64_t state = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int run(size_t n, size_t max_spans)
{
    uint64_t *ids = malloc(n * sizeof *ids);
    if (!ids)
        return 1;
    for (size_t i = 0; i < n; i++)
        ids[i] = rnd() | 1;
    struct join_index *ix = join_index_create(max_spans, 90000, 0);
    if (!ix) {
        free(ids);
        return 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++) {
        size_t first = i - i % 8;
        if (i == first)
            join_index_put(ix, ids[i], true, join_root_record(0, 1, 0), (int64_t)(i / 10000));
        else
            join_index_put(ix, ids[i], false, ids[first + rnd() % (i - first)],
                           (int64_t)(i / 10000));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ins = (double)n / secs(&a, &b);
    size_t resolved = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++) {
        uint64_t rid, rec;
        resolved += join_index_resolve(ix, ids[rnd() % n], 64, &rid, &rec) == JOIN_RESOLVED;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double res = (double)n / secs(&a, &b);
    struct join_index_stats st;
    join_index_stats(ix, &st);
    printf("spans=%zu max_spans=%zu capacity=%zu bytes=%zu bytes_per_span=%.2f "
           "inserts_per_s=%.0f resolves_per_s=%.0f resolved=%zu\n",
           st.count, max_spans, st.capacity, st.bytes, (double)st.bytes / (double)st.count, ins,
           res, resolved);
    join_index_destroy(ix);
    free(ids);
    return resolved == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            size_t n = (size_t)strtoull(argv[i], NULL, 10);
            rc |= run(n, n);
        }
        return rc;
    }
    rc |= run(100000, 100000);
    rc |= run(1000000, 1000000);
    rc |= run(100000, 1000000);
    return rc;
}
