/* Compression shared by receivers (inflate with a bound) and exporters.
 *
 * Inflation enforces max_out while inflating, never after, so a small
 * gzip/zstd bomb fails early with SP_ETOOBIG instead of eating memory. */
#ifndef SP_COMPRESS_H
#define SP_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

/* Detects by magic bytes: gzip 1f 8b, zstd 28 b5 2f fd; else NONE. */
enum sp_compression sp_compression_sniff(const uint8_t *data, size_t len);
/* "gzip", "zstd", "deflate", "identity"/"" -> enum; -1 if unknown. */
int sp_compression_parse(const char *name);
const char *sp_compression_name(enum sp_compression c);

/* Decompresses into the arena. NONE copies nothing: *out points at in.
 * DEFLATE accepts zlib-wrapped and raw deflate. Errors: SP_ETOOBIG when the
 * output would pass max_out, SP_EDECODE for corrupt input (message says
 * which codec and where). */
int sp_decompress(enum sp_compression c, const uint8_t *in, size_t in_len, size_t max_out,
                  struct sp_arena *arena, const uint8_t **out, size_t *out_len, struct sp_err *err);

/* Compresses into out (appended). level: gzip 1-9 (libdeflate), zstd 1-19.
 * One-shot: zstd allocates and frees a context per call; a hot path keeps
 * an sp_compressor instead. */
int sp_compress(enum sp_compression c, int level, const uint8_t *in, size_t in_len,
                struct sp_buf *out, struct sp_err *err);

/* A compressor kept by its owner and reused for every payload: for zstd one
 * ZSTD_CCtx (allocating one costs more than compressing a small payload,
 * and its tables stay warm); gzip uses libdeflate's per-level compressor
 * shared by the process (sp_compress). Single-threaded, like its owner. */
struct sp_compressor {
    enum sp_compression codec; /* GZIP or ZSTD (NONE copies) */
    int level;
    void *zctx;                /* ZSTD_CCtx *, or NULL */
    size_t mem;                /* bytes its context may take (an upper bound) */
};

/* Sets c up: zstd levels 1-19, gzip 1-12; 0 picks 1. SP_EINVAL for another
 * codec or level, SP_ENOMEM. c->mem is what the context may grow to for
 * inputs up to max_in bytes (ZSTD_estimateCCtxSize_usingCParams), for the
 * owner to charge to the memory ceiling. */
int sp_compressor_init(struct sp_compressor *c, enum sp_compression codec, int level,
                       size_t max_in, struct sp_err *err);
/* Compresses in into out (appended); out keeps one spare byte for a NUL. */
int sp_compressor_run(struct sp_compressor *c, const uint8_t *in, size_t in_len,
                      struct sp_buf *out, struct sp_err *err);
void sp_compressor_free(struct sp_compressor *c);

#endif
