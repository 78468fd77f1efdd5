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

/* Compresses into out (appended). level: gzip 1-9 (libdeflate), zstd 1-19. */
int sp_compress(enum sp_compression c, int level, const uint8_t *in, size_t in_len,
                struct sp_buf *out, struct sp_err *err);

#endif
