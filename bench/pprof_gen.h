/* Benchmark input: a Go-like CPU profile of a chosen size, built in memory.
 *
 * Sample types samples/count and cpu/nanoseconds (as runtime/pprof writes
 * them), a few thousand functions and locations, stacks 8-24 deep, and a
 * goroutine label `span_id` (16 hex chars, OpenTelemetry style) on 90 % of
 * the samples, drawn from the span ids the caller passes (so a join can
 * resolve them) or random ones. Sizes follow target_bytes (the packed,
 * uncompressed size) within a few percent. */
#ifndef SP_BENCH_PPROF_GEN_H
#define SP_BENCH_PPROF_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"

/* NULL on ENOMEM. span_ids may be NULL (random ids). */
sp_pprof *bench_pprof_build(struct sp_arena *a, size_t target_bytes, uint64_t seed,
                            const uint64_t *span_ids, size_t n_span_ids);

#endif
