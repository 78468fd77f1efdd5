/* The join's span index: unit tests, property tests against a brute-force
 * model (random span forests in random arrival order, children before
 * roots, remote/missing parents, cycles, deep chains, TTL expiry, capacity
 * eviction, duplicates) and the memory cost per indexed span. */
#include <stdbool.h>
#include <time.h>

#include "processors/join/join_index.h"
#include "sp_test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static size_t rndn(size_t n)
{
    return (size_t)(rnd() % n);
}

static void test_basic(void)
{
    struct join_index *ix = join_index_create(100, 1000, 4);
    ASSERT(ix != NULL);
    uint64_t root = 0x1111, child = 0x2222, grandchild = 0x3333;
    ASSERT_EQ_INT(join_index_put(ix, grandchild, false, child, 0), 0); /* before its parent */
    uint64_t rid, rec;
    ASSERT_EQ_INT(join_index_resolve(ix, grandchild, 8, &rid, &rec), JOIN_ROOT_UNKNOWN);
    join_index_put(ix, child, false, root, 0);
    join_index_put(ix, root, true, join_root_record(1234, 7, 0), 0);
    ASSERT_EQ_INT(join_index_resolve(ix, grandchild, 8, &rid, &rec), JOIN_RESOLVED);
    ASSERT_EQ_U64(rid, root);
    ASSERT_EQ_INT(join_root_pair(rec), 7);
    ASSERT_EQ_INT(join_root_start(rec), 1234);
    ASSERT_EQ_INT(join_index_resolve(ix, 0x4444, 8, &rid, &rec), JOIN_SPAN_UNKNOWN);
    /* depth bound: grandchild needs 2 hops. */
    ASSERT_EQ_INT(join_index_resolve(ix, grandchild, 1, &rid, &rec), JOIN_ROOT_UNKNOWN);
    ASSERT_EQ_INT(join_index_resolve(ix, grandchild, 2, &rid, &rec), JOIN_RESOLVED);
    /* id 0 is never stored. */
    join_index_put(ix, 0, true, 0, 0);
    struct join_index_stats st;
    join_index_stats(ix, &st);
    ASSERT_EQ_INT(st.count, 3);
    join_index_destroy(ix);
}

static void test_cycle_and_self_parent(void)
{
    struct join_index *ix = join_index_create(100, 1000, 0);
    join_index_put(ix, 1, false, 2, 0);
    join_index_put(ix, 2, false, 3, 0);
    join_index_put(ix, 3, false, 1, 0);
    join_index_put(ix, 9, false, 9, 0);
    uint64_t rid, rec;
    ASSERT_EQ_INT(join_index_resolve(ix, 1, 1000, &rid, &rec), JOIN_ROOT_UNKNOWN);
    ASSERT_EQ_INT(join_index_resolve(ix, 9, 1000, &rid, &rec), JOIN_ROOT_UNKNOWN);
    join_index_destroy(ix);
}

static void test_ttl_and_capacity(void)
{
    struct join_index *ix = join_index_create(3, 1000, 2);
    join_index_put(ix, 1, true, 0, 0);
    join_index_put(ix, 2, true, 0, 500);
    join_index_put(ix, 3, true, 0, 900);
    join_index_put(ix, 4, true, 0, 950); /* full: 1 evicted by capacity */
    struct join_index_stats st;
    join_index_stats(ix, &st);
    ASSERT_EQ_INT(st.count, 3);
    ASSERT_EQ_INT(st.evicted_capacity, 1);
    ASSERT(!join_index_get(ix, 1, NULL, NULL));
    join_index_expire(ix, 1499); /* 2 arrived at 500: alive until 1500 */
    ASSERT(join_index_get(ix, 2, NULL, NULL));
    join_index_expire(ix, 1500);
    ASSERT(!join_index_get(ix, 2, NULL, NULL));
    ASSERT(join_index_get(ix, 3, NULL, NULL));
    join_index_expire(ix, 5000);
    join_index_stats(ix, &st);
    ASSERT_EQ_INT(st.count, 0);
    ASSERT_EQ_INT(st.evicted_ttl, 3);
    /* Usable after emptying. */
    join_index_put(ix, 5, true, 0, 6000);
    ASSERT(join_index_get(ix, 5, NULL, NULL));
    /* A duplicate updates in place. */
    join_index_put(ix, 5, false, 77, 6001);
    bool is_root;
    uint64_t link;
    ASSERT(join_index_get(ix, 5, &is_root, &link));
    ASSERT(!is_root);
    ASSERT_EQ_U64(link, 77);
    join_index_stats(ix, &st);
    ASSERT_EQ_INT(st.count, 1);
    join_index_destroy(ix);
}

/* ---- property test ---- */

struct mspan {
    uint64_t id, parent;
    bool root;      /* no parent or remote parent */
    uint64_t rec;
    bool exported;  /* part of the arrival stream */
};

struct marr {
    uint64_t id;
    int64_t t;
    size_t span; /* index into spans */
};

/* Reference: `arr` is the live set in arrival order, maintained by the
 * plain rules (TTL drops arrivals with t + ttl <= now, a new id evicts the
 * oldest when max_spans are live, a known id is updated in place);
 * resolution walks the span definitions over live spans, with a visited
 * set for cycles. */
struct model {
    struct mspan *spans;
    size_t n;
    struct marr *arr;
    size_t narr;
};

static void model_expire(struct model *m, int64_t ttl, int64_t now)
{
    size_t k = 0;
    while (k < m->narr && m->arr[k].t + ttl <= now)
        k++;
    memmove(m->arr, m->arr + k, (m->narr - k) * sizeof *m->arr);
    m->narr -= k;
}

static void model_arrive(struct model *m, size_t span, size_t max_spans, int64_t ttl, int64_t now)
{
    model_expire(m, ttl, now);
    for (size_t k = 0; k < m->narr; k++)
        if (m->arr[k].id == m->spans[span].id) {
            m->arr[k].span = span;
            return;
        }
    if (m->narr == max_spans) {
        memmove(m->arr, m->arr + 1, (m->narr - 1) * sizeof *m->arr);
        m->narr--;
    }
    m->arr[m->narr++] = (struct marr){m->spans[span].id, now, span};
}

static bool model_live(const struct model *m, uint64_t id, size_t max_spans, int64_t ttl,
                       int64_t now, size_t *span_out)
{
    (void)max_spans;
    for (size_t i = 0; i < m->narr; i++) {
        if (m->arr[i].id != id)
            continue;
        if (m->arr[i].t + ttl <= now)
            return false;
        *span_out = m->arr[i].span;
        return true;
    }
    return false;
}

static enum join_resolve model_resolve(const struct model *m, uint64_t id, unsigned max_depth,
                                       size_t max_spans, int64_t ttl, int64_t now, uint64_t *rid,
                                       uint64_t *rec)
{
    size_t si;
    if (!model_live(m, id, max_spans, ttl, now, &si))
        return JOIN_SPAN_UNKNOWN;
    /* Path of ancestors; a repeat means a cycle. */
    uint64_t seen[1100];
    size_t nseen = 0;
    for (unsigned hops = 0;; hops++) {
        const struct mspan *s = &m->spans[si];
        if (s->root) {
            *rid = s->id;
            *rec = s->rec;
            return JOIN_RESOLVED;
        }
        for (size_t k = 0; k < nseen; k++)
            if (seen[k] == s->id)
                return JOIN_ROOT_UNKNOWN;
        if (nseen < 1100)
            seen[nseen++] = s->id;
        if (hops + 1 > max_depth)
            return JOIN_ROOT_UNKNOWN;
        if (!model_live(m, s->parent, max_spans, ttl, now, &si))
            return JOIN_ROOT_UNKNOWN;
    }
}

static int run_property_round(unsigned round)
{
    size_t ntrees = 5 + rndn(40);
    size_t cap = 64;
    struct mspan *spans = calloc(cap, sizeof *spans);
    size_t n = 0;
    unsigned max_depth = 3 + (unsigned)rndn(8);
    /* Build a forest: each tree a local root with random descendants;
     * some roots have remote parents; some chains are deeper than
     * max_depth; a few cycles; a few spans whose parent never arrives. */
    for (size_t t = 0; t < ntrees; t++) {
        size_t nt = 1 + rndn(30);
        size_t first = n;
        for (size_t k = 0; k < nt; k++) {
            if (n == cap) {
                cap *= 2;
                spans = realloc(spans, cap * sizeof *spans);
            }
            struct mspan *s = &spans[n];
            memset(s, 0, sizeof *s);
            s->id = rnd() | 1;
            s->exported = rndn(20) != 0; /* 5% never arrive (missing parents) */
            if (k == 0) {
                s->root = true;
                s->parent = rndn(3) == 0 ? (rnd() | 1) : 0; /* remote parent or none */
                s->rec = join_root_record((uint32_t)rnd(), (uint32_t)(1 + rndn(100)), 0);
            } else {
                size_t kind = rndn(10);
                if (kind < 7) /* a deep chain: parent is the previous span */
                    s->parent = spans[n - 1].id;
                else
                    s->parent = spans[first + rndn(k)].id;
                s->root = false;
            }
            n++;
        }
    }
    /* A few cycles (no root reachable). */
    for (int c = 0; c < 2; c++) {
        if (n + 3 > cap) {
            cap = n + 8;
            spans = realloc(spans, cap * sizeof *spans);
        }
        uint64_t a = rnd() | 1, b = rnd() | 1, d = rnd() | 1;
        spans[n++] = (struct mspan){a, b, false, 0, true};
        spans[n++] = (struct mspan){b, d, false, 0, true};
        spans[n++] = (struct mspan){d, a, false, 0, true};
    }
    /* Arrival order: shuffled, so children often come before roots; some
     * spans arrive twice (re-exports). */
    size_t *order = malloc((n * 2) * sizeof *order);
    size_t no = 0;
    for (size_t i = 0; i < n; i++)
        if (spans[i].exported)
            order[no++] = i;
    for (size_t i = no; i > 1; i--) {
        size_t j = rndn(i);
        size_t tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    size_t dups = rndn(5);
    for (size_t d = 0; d < dups && no; d++) {
        size_t pick = order[rndn(no)];
        order[no++] = pick;
    }

    size_t max_spans = rndn(3) == 0 ? 10 + rndn(n) : n * 2 + 10;
    int64_t ttl = 1000;
    struct join_index *ix = join_index_create(max_spans, ttl, 1 + rndn(8));
    struct model m = {spans, n, calloc(no, sizeof(struct marr)), 0};
    /* Arrivals at times that are multiples of 40 ms (above the index's
     * checkpoint granularity of ttl/64), several per instant. */
    int64_t t = 0;
    for (size_t i = 0; i < no; i++) {
        if (rndn(4) == 0)
            t += 40 * (int64_t)(1 + rndn(5));
        const struct mspan *s = &spans[order[i]];
        join_index_put(ix, s->id, s->root, s->root ? s->rec : s->parent, t);
        model_arrive(&m, order[i], max_spans, ttl, t);
    }
    /* Query at a few times: now, and after partial expiry. */
    int failures = 0;
    int64_t qtimes[3] = {t, t + ttl / 2, t + ttl + 1};
    size_t counts[3] = {0, 0, 0};
    for (int q = 0; q < 3 && !failures; q++) {
        join_index_expire(ix, qtimes[q]);
        for (size_t i = 0; i < n + 5; i++) {
            uint64_t id = i < n ? spans[i].id : rnd();
            uint64_t rid = 0, rec = 0, mrid = 0, mrec = 0;
            enum join_resolve got = join_index_resolve(ix, id, max_depth, &rid, &rec);
            enum join_resolve want =
                model_resolve(&m, id, max_depth, max_spans, ttl, qtimes[q], &mrid, &mrec);
            counts[want == JOIN_RESOLVED ? 0 : want == JOIN_SPAN_UNKNOWN ? 1 : 2]++;
            if (got != want || (got == JOIN_RESOLVED && (rid != mrid || rec != mrec))) {
                fprintf(stderr,
                        "  round %u q%d span %zu id %016llx: got %d root %016llx, want %d root "
                        "%016llx (max_spans %zu)\n",
                        round, q, i, (unsigned long long)id, got, (unsigned long long)rid, want,
                        (unsigned long long)mrid, max_spans);
                failures++;
                break;
            }
        }
    }
    join_index_destroy(ix);
    free(m.arr);
    free(order);
    free(spans);
    return failures;
}

static void test_property_random_forests(void)
{
    int failures = 0;
    for (unsigned r = 0; r < 1000 && !failures; r++)
        failures += run_property_round(r);
    ASSERT_EQ_INT(failures, 0);
}

/* Memory per indexed span, the target being <= 24 bytes. */
static void measure(size_t nspans, size_t max_spans, double *bytes_per_span, double *ins_rate,
                    double *get_rate)
{
    struct join_index *ix = join_index_create(max_spans, 90000, 0);
    struct timespec a, b;
    uint64_t *ids = malloc(nspans * sizeof *ids);
    for (size_t i = 0; i < nspans; i++)
        ids[i] = rnd() | 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < nspans; i++)
        join_index_put(ix, ids[i], i % 4 == 0, i % 4 == 0 ? 0 : ids[i - i % 4], 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    *ins_rate = (double)nspans / ((double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    size_t found = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < nspans; i++) {
        uint64_t rid, rec;
        found += join_index_resolve(ix, ids[rndn(nspans)], 64, &rid, &rec) == JOIN_RESOLVED;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    *get_rate = (double)nspans / ((double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    struct join_index_stats st;
    join_index_stats(ix, &st);
    *bytes_per_span = (double)st.bytes / (double)st.count;
    if (found != nspans)
        *bytes_per_span = -1;
    free(ids);
    join_index_destroy(ix);
}

static void test_bytes_per_span(void)
{
    double bps, ins, get;
    measure(100000, 100000, &bps, &ins, &get);
    fprintf(stderr, "  100k spans: %.2f bytes/span, %.1f M inserts/s, %.1f M resolves/s\n", bps,
            ins / 1e6, get / 1e6);
    ASSERT(bps > 0 && bps <= 24.0);
    measure(1000000, 1000000, &bps, &ins, &get);
    fprintf(stderr, "  1M spans:   %.2f bytes/span, %.1f M inserts/s, %.1f M resolves/s\n", bps,
            ins / 1e6, get / 1e6);
    ASSERT(bps > 0 && bps <= 24.0);
    /* Below the bound the slab has grown by doubling: up to 2x slack. */
    measure(100000, 1000000, &bps, &ins, &get);
    fprintf(stderr, "  100k spans with max_spans 1M: %.2f bytes/span (slab grown to 131072)\n",
            bps);
    ASSERT(bps > 0 && bps <= 48.0);
}

static void test_names(void)
{
    struct join_names *n = join_names_create(2, 2);
    uint32_t a = join_names_service(n, "svc-a");
    uint32_t b = join_names_service(n, "svc-b");
    ASSERT(a && b && a != b);
    ASSERT_EQ_INT(join_names_service(n, "svc-a"), a);
    ASSERT_EQ_INT(join_names_service(n, "svc-c"), 0); /* table full */
    uint32_t p1 = join_names_pair(n, a, "GET /x");
    uint32_t p2 = join_names_pair(n, a, "GET /y");
    ASSERT(p1 && p2 && p1 != p2);
    ASSERT_EQ_INT(join_names_pair(n, a, "GET /x"), p1);
    ASSERT_EQ_INT(join_names_pair(n, a, "GET /z"), 0); /* over the limit of 2 */
    uint32_t p3 = join_names_pair(n, b, "GET /x");       /* the limit is per service */
    ASSERT(p3 && p3 != p1);
    ASSERT_EQ_STR(join_names_endpoint(n, p2), "GET /y");
    ASSERT_EQ_INT(join_names_pair_service(n, p3), b);
    ASSERT_EQ_INT(join_names_find_service(n, "svc-b"), b);
    ASSERT_EQ_INT(join_names_drops(n), 2);
    /* Many pairs: rehashing keeps them findable. */
    struct join_names *m = join_names_create(5000, 4);
    uint32_t s = join_names_service(m, "s");
    char buf[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(buf, sizeof buf, "ep%d", i);
        ASSERT_EQ_INT(join_names_pair(m, s, buf), i + 1);
    }
    for (int i = 0; i < 3000; i += 7) {
        snprintf(buf, sizeof buf, "ep%d", i);
        ASSERT_EQ_INT(join_names_pair(m, s, buf), i + 1);
    }
    join_names_destroy(m);
    join_names_destroy(n);
}

static void test_names_compact_and_remap(void)
{
    struct join_names *n = join_names_create(3, 4);
    struct join_index *ix = join_index_create(16, 1000, 0);
    uint32_t s = join_names_service(n, "s");
    uint32_t a = join_names_pair(n, s, "A"), b = join_names_pair(n, s, "B"),
             c = join_names_pair(n, s, "C");
    ASSERT_EQ_INT(join_names_pair(n, s, "D"), 0);
    join_index_put(ix, 1, true, join_root_record(5, a, 0), 0);
    join_index_put(ix, 2, true, join_root_record(6, c, 0), 0);
    join_index_put(ix, 3, false, 1, 0);
    bool keep[4] = {false, true, false, true};
    uint32_t remap[4];
    ASSERT_EQ_INT(join_names_compact(n, keep, remap), 0);
    join_index_remap_pairs(ix, remap, 4);
    ASSERT_EQ_INT(join_names_pair_count(n), 2);
    ASSERT_EQ_INT(remap[b], 0);
    uint64_t rid, rec;
    ASSERT_EQ_INT(join_index_resolve(ix, 3, 4, &rid, &rec), JOIN_RESOLVED);
    ASSERT_EQ_STR(join_names_endpoint(n, join_root_pair(rec)), "A");
    ASSERT_EQ_INT(join_root_start(rec), 5);
    ASSERT_EQ_INT(join_index_resolve(ix, 2, 4, &rid, &rec), JOIN_RESOLVED);
    ASSERT_EQ_STR(join_names_endpoint(n, join_root_pair(rec)), "C");
    /* The freed slot is usable; lookups of kept pairs still work. */
    uint32_t d = join_names_pair(n, s, "D");
    ASSERT(d != 0);
    ASSERT_EQ_INT(join_names_pair(n, s, "A"), remap[a]);
    ASSERT_EQ_INT(join_names_pair(n, s, "E"), 0);
    join_index_destroy(ix);
    join_names_destroy(n);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_cycle_and_self_parent);
    RUN(test_ttl_and_capacity);
    RUN(test_property_random_forests);
    RUN(test_names);
    RUN(test_names_compact_and_remap);
    RUN(test_bytes_per_span);
    return sp_test_summary();
}
