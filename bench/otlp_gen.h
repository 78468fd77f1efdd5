/* Benchmark input: realistic OTLP trace exports, built in memory.
 *
 * One request is one ResourceSpans (service.name, host.name, telemetry.sdk.*,
 * k8s and container attributes) with one ScopeSpans (otelhttp) of N spans,
 * grouped in traces of 5: an HTTP SERVER root, an INTERNAL child, a database
 * CLIENT, an HTTP CLIENT and an INTERNAL render step, each with 10-15
 * attributes; server spans carry an event, every 4th trace fails with an
 * `exception` event. Ids and values come from a seeded generator, so a run
 * is repeatable and gzip sees realistic (not repeated) ids.
 *
 * The same request serialises to protobuf (bench_otlp_pack), OTLP JSON
 * (bench_otlp_json) and gRPC frames. Load generators that replay one body
 * can make every request distinct: bench_otlp_find_patches() records where
 * the ids and timestamps sit in a serialised body, bench_otlp_patch()
 * rewrites them in place (ids XOR a request number, times shifted), so the
 * join index sees new span ids at every request, as in production. */
#ifndef SP_BENCH_OTLP_GEN_H
#define SP_BENCH_OTLP_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

struct bench_otlp_opts {
    size_t spans;          /* spans per request (rounded up to a multiple of 5) */
    uint64_t seed;         /* ids and values */
    int64_t base_time_ns;  /* start of the first span (unix ns) */
    const char *service;   /* service.name */
};

/* The request lives in arena. NULL on ENOMEM. */
sp_otlp_request *bench_otlp_build(struct sp_arena *arena, const struct bench_otlp_opts *o);

/* Protobuf bytes of req appended to out (0 or SP_ENOMEM). */
int bench_otlp_pack(const sp_otlp_request *req, struct sp_buf *out);

/* OTLP JSON (camelCase keys, hex ids, 64-bit integers as strings, enums as
 * numbers), appended to out. */
int bench_otlp_json(const sp_otlp_request *req, struct sp_buf *out);

/* 5-byte gRPC length prefix (uncompressed) + msg, appended to out. */
int bench_grpc_frame(const uint8_t *msg, size_t len, struct sp_buf *out);

enum bench_patch_kind {
    BENCH_PATCH_ID_BIN = 0, /* raw id bytes (8 or 16) */
    BENCH_PATCH_ID_HEX = 1, /* lowercase hex (16 or 32 chars) */
    BENCH_PATCH_TS_BIN = 2, /* fixed64 little endian */
    BENCH_PATCH_TS_DEC = 3, /* 19 decimal digits */
};

struct bench_patch {
    size_t off;
    uint8_t kind;
    uint8_t len;           /* bytes of the field in the body */
    uint8_t orig[16];      /* id bytes (ids) */
    uint64_t ts;           /* original timestamp (times) */
};

struct bench_patches {
    struct bench_patch *v;
    size_t n;
};

/* Finds every id and timestamp of req inside body (protobuf or JSON).
 * Returns 0, or SP_ENOMEM. */
int bench_otlp_find_patches(const sp_otlp_request *req, const uint8_t *body, size_t len,
                            int json, struct bench_patches *out);
void bench_patches_free(struct bench_patches *p);

/* Rewrites body in place: ids XOR seq (low 4 bytes), times + shift_ns. */
void bench_otlp_patch(uint8_t *body, const struct bench_patches *p, uint32_t seq,
                      int64_t shift_ns);

/* Wall clock, unix ns. */
int64_t bench_now_unix_ns(void);

#endif
