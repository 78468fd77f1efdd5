/* Sample labelling for the join processor (private to processors/join).
 *
 * join_label_pprof() reads each sample's span id from its labels (`span_id`
 * as 16 hex chars, `span id` as a decimal string, either as a numeric
 * Label.num, or configured extra keys), resolves the span's local root in
 * the index and appends what Datadog needs and the sample lacks: `span id`,
 * `local root span id` (decimal strings, as dd-trace-go writes them) and
 * `trace endpoint` (the local root's resource, only for PII-safe roots).
 * Existing labels are never changed, reordered or duplicated; samples whose
 * span is unknown are left as they are. New label arrays, labels and
 * strings are allocated in the profile's arena. */
#ifndef SP_JOIN_LABEL_H
#define SP_JOIN_LABEL_H

#include <stdbool.h>
#include <stdint.h>

#include "join_index.h"
#include "sp_arena.h"
#include "sp_batch.h"

/* Per-sample outcomes (metric label values). */
enum join_outcome {
    JOIN_OUT_MATCHED = 0,      /* labels added or already complete, endpoint known */
    JOIN_OUT_NO_SPAN_LABEL,    /* the sample names no span */
    JOIN_OUT_SPAN_UNKNOWN,     /* the span is not (or no longer) indexed */
    JOIN_OUT_NOT_PII_SAFE,     /* local root typed db/cache/http client...: no endpoint */
    JOIN_OUT_ROOT_UNKNOWN,     /* an ancestor is missing: only `span id` added */
    JOIN_OUT_ENDPOINT_DROPPED, /* endpoint over the cardinality limit */
    JOIN_OUT_ALREADY_LABELLED, /* a Datadog tracer's sample (`span id` and `local root span
                                  id` set) whose span is not indexed: nothing to add, no miss */
    JOIN_OUT_COUNT
};

extern const char *const join_outcome_names[JOIN_OUT_COUNT];

/* Samples that name a span the join could look for: every outcome but
 * no_span_label and already_labelled (the hit ratio's denominator). */
static inline uint64_t join_out_span_labelled(const uint64_t samples[JOIN_OUT_COUNT])
{
    uint64_t n = 0;
    for (int i = 0; i < JOIN_OUT_COUNT; i++)
        if (i != JOIN_OUT_NO_SPAN_LABEL && i != JOIN_OUT_ALREADY_LABELLED)
            n += samples[i];
    return n;
}

struct join_label_ctx {
    const struct join_index *ix;
    const struct join_names *names;
    unsigned max_depth;
    /* Extra label keys holding a span id (hex if 16 hex digits, else
     * decimal; numeric labels taken as the 64-bit pattern). */
    char *const *extra_keys;
    size_t n_extra;
    /* Optional (NULL: not kept): matched samples per endpoint pair id,
     * n_pairs + 1 entries (the join picks a profile's service from it). */
    uint64_t *pair_samples;
    size_t n_pairs;
};

struct join_label_stats {
    uint64_t samples[JOIN_OUT_COUNT];
    uint64_t labels_added;
};

/* The outcome of a sample whose span resolved to the local root record
 * rec: the one place that decides whether a root gives an endpoint. *pair
 * is the endpoint pair id (0: none). */
enum join_outcome join_root_outcome(uint64_t rec, uint32_t *pair);

/* One distinct span id of a profile that does not resolve to a local root
 * (yet): what a held profile waits for. */
struct join_open_id {
    uint64_t span;     /* as the samples name it */
    uint64_t missing;  /* the first id of its chain not indexed; 0: nothing can complete it */
    uint64_t samples;  /* samples of p naming it */
    enum join_resolve status; /* JOIN_SPAN_UNKNOWN or JOIN_ROOT_UNKNOWN */
};

/* Calls fn once per distinct span id of p's samples that does not resolve
 * now. Samples without a span id, or that a Datadog tracer labelled (they
 * carry `trace endpoint`, or `span id` with `local root span id`), are
 * complete and skipped. Reads only:
 * p is not changed. 0 or SP_ENOMEM. */
int join_label_scan(const struct join_label_ctx *c, const sp_pprof *p,
                    void (*fn)(void *ud, const struct join_open_id *id), void *ud);

/* Labels every sample of p. *modified is set when p changed. 0 or
 * SP_ENOMEM (p may then be partly labelled, still valid). */
int join_label_pprof(const struct join_label_ctx *c, sp_pprof *p, struct sp_arena *arena,
                     struct join_label_stats *st, bool *modified);

/* Parsers shared with tests: 0 on success. */
int join_parse_hex_id(const char *s, uint64_t *out);
int join_parse_dec_id(const char *s, uint64_t *out);

#endif
