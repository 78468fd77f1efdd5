/* pprof profiles: decode (with validation), encode, and label helpers.
 *
 * Decoding takes a body as received (gzip, zstd or raw, detected by magic
 * bytes), inflates it under a size cap, unpacks it with protobuf-c into the
 * batch arena and validates every reference: string-table indexes,
 * sample->location, location->function/mapping ids, the number of values
 * per sample against sample_type. A bad profile fails with SP_EDECODE and a
 * message naming the problem and its position ("sample[12].label[0].key:
 * string index 900 out of range (table has 120 strings)"). */
#ifndef SP_PPROF_CODEC_H
#define SP_PPROF_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

/* body: as received; max_inflated caps the decompressed size.
 * *compression_out (may be NULL) says how the body was compressed. */
int sp_pprof_decode(const uint8_t *body, size_t len, size_t max_inflated, struct sp_arena *arena,
                    sp_pprof **out, enum sp_compression *compression_out, struct sp_err *err);

/* Validates an already unpacked profile (sp_pprof_decode calls it). */
int sp_pprof_validate(const sp_pprof *p, struct sp_err *err);

/* Serialises p and compresses it (gzip level 1 by default) into out. */
int sp_pprof_encode(const sp_pprof *p, enum sp_compression c, struct sp_buf *out, struct sp_err *err);

/* String table access; NULL when out of range. */
const char *sp_pprof_str(const sp_pprof *p, int64_t idx);

/* Index of s in the string table, appending it (in the arena) when absent.
 * Returns -1 on ENOMEM. Appending keeps existing indexes valid. */
int64_t sp_pprof_intern(sp_pprof *p, struct sp_arena *arena, const char *s);

/* True when a sample type of p is one whose samples carry span labels
 * (cpu, wall, goroutine/goroutines, samples of a CPU profile). */
bool sp_pprof_is_labelled_type(const sp_pprof *p);

#endif
