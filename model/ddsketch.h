/* DDSketch: the latency distributions inside Datadog APM stats.
 *
 * Why: the Agent sends each stats group's ok and error latencies as a
 * DDSketch (datadog-agent pkg/trace/stats/statsraw.go, newGroupedStats:
 * LogCollapsingLowestDenseDDSketch(relativeAccuracy 0.01, maxNumBins 2048)),
 * and Datadog's latency percentiles are read from those bytes. This is the
 * same sketch, written for spanprof from DataDog/sketches-go's definitions:
 *   - mapping: logarithmic (sketches-go ddsketch/mapping/logarithmic_mapping.go,
 *     NewLogarithmicMapping): gamma = (1+a)/(1-a), index = floor(ln v / ln gamma),
 *     a bin's value = its lower bound * (1+a), so any value is returned
 *     within relative error a;
 *   - store: collapsing lowest dense (ddsketch/store/collapsing_lowest_dense_store.go):
 *     contiguous bins, at most SP_DDS_MAX_BINS; when the range of indexes
 *     would pass it, the lowest bins fold into the lowest kept one (the
 *     short latencies lose precision first, the tail never does);
 *   - values at or below the mapping's smallest indexable value count as zero.
 * Counts are uint32 in memory (a stats bucket sees far fewer than 2^32
 * spans per key; adds saturate rather than wrap) and doubles on the wire.
 *
 * Memory: a sketch is ~64 bytes until its first value; bins are allocated
 * in steps of 64 (4 bytes each) as the range of indexes grows, 8 KiB at
 * most per store. */
#ifndef SP_DDSKETCH_H
#define SP_DDSKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"

#define SP_DDS_REL_ACC 0.01
#define SP_DDS_MAX_BINS 2048

struct sp_dds_store {
    uint32_t *bins;     /* counts of indexes [offset, offset + cap) */
    int32_t offset;
    int32_t min, max;   /* lowest and highest index holding a count (min > max: empty) */
    uint32_t cap;
    bool collapsed;     /* lowest bins were folded: lower indexes go to min */
    uint64_t count;
};

struct sp_ddsketch {
    struct sp_dds_store pos, neg; /* neg holds -v for negative values */
    uint64_t zero;
};

/* The mapping (constants computed on first use, from the loop thread). */
double sp_dds_gamma(void);
int32_t sp_dds_index(double v);            /* v > min indexable */
double sp_dds_value(int32_t index);        /* the representative of a bin */

void sp_dds_init(struct sp_ddsketch *s);
void sp_dds_free(struct sp_ddsketch *s);
/* Adds one value (NaN and values beyond the max indexable are ignored and
 * return false). Never fails on memory: when bins cannot grow, the value
 * folds into the nearest existing bin (not counted when there is none yet)
 * and false is returned. */
bool sp_dds_add(struct sp_ddsketch *s, double v);
/* dst += src (bin by bin). */
bool sp_dds_merge(struct sp_ddsketch *dst, const struct sp_ddsketch *src);
uint64_t sp_dds_count(const struct sp_ddsketch *s);
/* The value at quantile q in [0,1] (rank q*(count-1), as sketches-go's
 * GetValueAtQuantile); NaN when empty. */
double sp_dds_quantile(const struct sp_ddsketch *s, double q);
/* Bytes of heap the sketch holds. */
size_t sp_dds_heap_bytes(const struct sp_ddsketch *s);
/* Appends the packed ddsketch.DDSketch protobuf (proto/ddsketch.proto):
 * mapping {gamma, indexOffset 0, NONE}, both stores as contiguous counts
 * (always present, possibly empty, as sketches-go's ToProto), zeroCount.
 * 0 or SP_ENOMEM. */
int sp_dds_encode(const struct sp_ddsketch *s, struct sp_buf *out);

#endif
