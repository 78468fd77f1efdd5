/* Unit tests of model/ddsketch.c: every quantile of 10^5 values from
 * several distributions within the relative accuracy of the exact one; a
 * merge equals the sketch of the union; the encoded bytes decode with the
 * protoc-c code of proto/ddsketch.proto back to the same bins; collapsing
 * keeps the bin bound and the tail's accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddsketch.h"
#include "ddsketch.pb-c.h"
#include "sp_test.h"

#define N 100000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double unif(void) /* (0,1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

/* Durations in ns, as the concentrator feeds them. */
static double draw(int dist)
{
    switch (dist) {
    case 0: return 1e3 + unif() * 1e9;                       /* uniform 1 us .. 1 s */
    case 1: return -log(unif()) * 5e6;                       /* exponential, mean 5 ms */
    case 2: return exp(log(2e6) + 1.5 * normal());           /* lognormal around 2 ms */
    case 3: return 1e5 / pow(unif(), 1 / 1.2);               /* pareto tail from 100 us */
    default: return floor(unif() * 20) * 1e6 + 1;            /* few distinct values */
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_quantiles_within_accuracy(void)
{
    double *v = malloc(N * sizeof(*v));
    ASSERT(v);
    for (int dist = 0; dist < 5; dist++) {
        struct sp_ddsketch s;
        sp_dds_init(&s);
        for (int i = 0; i < N; i++) {
            v[i] = draw(dist);
            ASSERT(sp_dds_add(&s, v[i]));
        }
        qsort(v, N, sizeof(*v), cmp_d);
        ASSERT_EQ_U64(sp_dds_count(&s), N);
        for (int k = 0; k <= 1000; k++) {
            double q = k / 1000.0;
            double exact = v[(size_t)floor(q * (N - 1))];
            double est = sp_dds_quantile(&s, q);
            double rel = fabs(est - exact) / exact;
            if (rel > SP_DDS_REL_ACC * (1 + 1e-9)) {
                fprintf(stderr, "  dist %d q %.3f exact %.6g est %.6g rel %.6g\n", dist, q,
                        exact, est, rel);
                free(v);
                sp_dds_free(&s);
                ASSERT(0);
            }
        }
        ASSERT(s.pos.cap <= SP_DDS_MAX_BINS);
        sp_dds_free(&s);
    }
    free(v);
}

static void test_merge_equals_union(void)
{
    struct sp_ddsketch a, b, u;
    sp_dds_init(&a);
    sp_dds_init(&b);
    sp_dds_init(&u);
    for (int i = 0; i < N; i++) {
        double x = draw(i % 4);
        ASSERT(sp_dds_add(i & 1 ? &a : &b, x));
        ASSERT(sp_dds_add(&u, x));
    }
    sp_dds_add(&a, 0);
    sp_dds_add(&u, 0);
    ASSERT(sp_dds_merge(&a, &b));
    ASSERT_EQ_U64(sp_dds_count(&a), sp_dds_count(&u));
    struct sp_buf ea = {0}, eu = {0};
    ASSERT_EQ_INT(sp_dds_encode(&a, &ea), 0);
    ASSERT_EQ_INT(sp_dds_encode(&u, &eu), 0);
    ASSERT_EQ_U64(ea.len, eu.len);
    ASSERT(memcmp(ea.data, eu.data, ea.len) == 0);
    for (int k = 0; k <= 100; k++)
        ASSERT(sp_dds_quantile(&a, k / 100.0) == sp_dds_quantile(&u, k / 100.0));
    sp_buf_free(&ea);
    sp_buf_free(&eu);
    sp_dds_free(&a);
    sp_dds_free(&b);
    sp_dds_free(&u);
}

static void test_encoding_decodes(void)
{
    struct sp_ddsketch s;
    sp_dds_init(&s);
    for (int i = 0; i < N; i++)
        sp_dds_add(&s, draw(2));
    sp_dds_add(&s, 0);
    sp_dds_add(&s, 0);
    sp_dds_add(&s, -3e6);
    struct sp_buf e = {0};
    ASSERT_EQ_INT(sp_dds_encode(&s, &e), 0);
    Ddsketch__DDSketch *d = ddsketch__ddsketch__unpack(NULL, e.len, e.data);
    ASSERT(d != NULL);
    ASSERT(d->mapping != NULL);
    ASSERT(fabs(d->mapping->gamma - 1.01 / 0.99) < 1e-15);
    ASSERT(d->mapping->indexoffset == 0);
    ASSERT_EQ_INT(d->mapping->interpolation, DDSKETCH__INDEX_MAPPING__INTERPOLATION__NONE);
    ASSERT(d->zerocount == 2);
    ASSERT(d->positivevalues && d->negativevalues);
    ASSERT_EQ_INT(d->positivevalues->contiguousbinindexoffset, s.pos.min);
    ASSERT_EQ_U64(d->positivevalues->n_contiguousbincounts, (uint64_t)(s.pos.max - s.pos.min + 1));
    double total = 0;
    for (size_t i = 0; i < d->positivevalues->n_contiguousbincounts; i++) {
        double c = d->positivevalues->contiguousbincounts[i];
        ASSERT(c == (double)s.pos.bins[s.pos.min + (int32_t)i - s.pos.offset]);
        total += c;
    }
    ASSERT(total == N);
    ASSERT_EQ_U64(d->positivevalues->n_bincounts, 0);
    ASSERT_EQ_U64(d->negativevalues->n_contiguousbincounts, 1);
    ASSERT_EQ_INT(d->negativevalues->contiguousbinindexoffset, sp_dds_index(3e6));
    /* a bin's value is within the accuracy of the values it holds */
    double rep = sp_dds_value(sp_dds_index(3e6));
    ASSERT(fabs(rep - 3e6) / 3e6 <= SP_DDS_REL_ACC);
    ddsketch__ddsketch__free_unpacked(d, NULL);
    sp_buf_free(&e);

    /* an empty sketch: mapping and two empty stores, as sketches-go's ToProto */
    struct sp_ddsketch z;
    sp_dds_init(&z);
    ASSERT_EQ_INT(sp_dds_encode(&z, &e), 0);
    d = ddsketch__ddsketch__unpack(NULL, e.len, e.data);
    ASSERT(d && d->positivevalues && d->negativevalues);
    ASSERT_EQ_U64(d->positivevalues->n_contiguousbincounts, 0);
    ASSERT(d->zerocount == 0);
    ddsketch__ddsketch__free_unpacked(d, NULL);
    sp_buf_free(&e);
    sp_dds_free(&s);
}

static void test_collapse_lowest(void)
{
    struct sp_ddsketch s;
    sp_dds_init(&s);
    /* 1e-30 .. 1e30: ~ 6900 indexes, more than the 2048 bins */
    for (int i = 0; i < N; i++)
        ASSERT(sp_dds_add(&s, exp((unif() * 2 - 1) * 69)));
    ASSERT(s.pos.collapsed);
    ASSERT(s.pos.cap <= SP_DDS_MAX_BINS);
    ASSERT(s.pos.max - s.pos.min + 1 <= SP_DDS_MAX_BINS);
    ASSERT_EQ_U64(sp_dds_count(&s), N);
    /* the top of the distribution keeps its accuracy */
    double p99 = sp_dds_quantile(&s, 0.99);
    ASSERT(fabs(log(p99) - 0.98 * 69) < 0.5);
    ASSERT(sp_dds_heap_bytes(&s) <= SP_DDS_MAX_BINS * 4);
    sp_dds_free(&s);

    /* NaN and values past the max are refused, not counted */
    sp_dds_init(&s);
    ASSERT(!sp_dds_add(&s, NAN));
    ASSERT(!sp_dds_add(&s, 1e308 * 10));
    ASSERT_EQ_U64(sp_dds_count(&s), 0);
    ASSERT(isnan(sp_dds_quantile(&s, 0.5)));
    sp_dds_free(&s);
}

int main(void)
{
    RUN(test_quantiles_within_accuracy);
    RUN(test_merge_equals_union);
    RUN(test_encoding_decodes);
    RUN(test_collapse_lowest);
    return sp_test_summary();
}
