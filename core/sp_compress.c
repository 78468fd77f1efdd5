/* Compression: bounded streaming inflate (zlib, zstd) and one-shot deflate
 * (libdeflate for gzip: the same format as zlib, several times faster at
 * level 1; zstd's own for zstd), plus sp_compressor, the reusable encoder an
 * exporter keeps for its payloads (one ZSTD_CCtx, not one per payload). */
#include "sp_compress.h"

#include <string.h>
#include <strings.h>

#include <libdeflate.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_estimateCCtxSize_usingCParams */
#include <zstd.h>

enum sp_compression sp_compression_sniff(const uint8_t *data, size_t len)
{
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
        return SP_COMPRESSION_GZIP;
    if (len >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd)
        return SP_COMPRESSION_ZSTD;
    return SP_COMPRESSION_NONE;
}

int sp_compression_parse(const char *name)
{
    if (!name || !*name || strcasecmp(name, "identity") == 0)
        return SP_COMPRESSION_NONE;
    if (strcasecmp(name, "gzip") == 0 || strcasecmp(name, "x-gzip") == 0)
        return SP_COMPRESSION_GZIP;
    if (strcasecmp(name, "zstd") == 0)
        return SP_COMPRESSION_ZSTD;
    if (strcasecmp(name, "deflate") == 0)
        return SP_COMPRESSION_DEFLATE;
    return -1;
}

const char *sp_compression_name(enum sp_compression c)
{
    switch (c) {
    case SP_COMPRESSION_GZIP: return "gzip";
    case SP_COMPRESSION_ZSTD: return "zstd";
    case SP_COMPRESSION_DEFLATE: return "deflate";
    default: return "identity";
    }
}

/* Output grows by doubling inside the arena; old blocks stay in the arena
 * until the batch dies, which costs at most the final size again. To keep
 * that small we guess the size from the input first. */
static size_t sp_inflate_guess(size_t in_len, size_t max_out)
{
    size_t guess = in_len * 4 + 1024;
    return guess > max_out ? max_out : guess;
}

static int sp_inflate_zlib(const uint8_t *in, size_t in_len, size_t max_out, int window_bits,
                           struct sp_arena *arena, const uint8_t **out, size_t *out_len,
                           struct sp_err *err, const char *what)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, window_bits) != Z_OK)
        return sp_err_set(err, SP_ENOMEM, "%s: cannot initialise inflate", what);
    size_t cap = sp_inflate_guess(in_len, max_out);
    uint8_t *buf = sp_arena_alloc(arena, cap + 1);
    if (!buf) {
        inflateEnd(&zs);
        return sp_err_set(err, SP_ENOMEM, "%s: out of memory inflating", what);
    }
    size_t have = 0;
    zs.next_in = (Bytef *)in;
    int rc = Z_OK;
    size_t in_left = in_len;
    for (;;) {
        if (have == cap) {
            if (cap >= max_out) {
                inflateEnd(&zs);
                return sp_err_set(err, SP_ETOOBIG,
                                  "%s: body inflates past the limit of %zu bytes", what, max_out);
            }
            size_t ncap = cap * 2 > max_out ? max_out : cap * 2;
            uint8_t *nbuf = sp_arena_alloc(arena, ncap + 1);
            if (!nbuf) {
                inflateEnd(&zs);
                return sp_err_set(err, SP_ENOMEM, "%s: out of memory inflating", what);
            }
            memcpy(nbuf, buf, have);
            buf = nbuf;
            cap = ncap;
        }
        uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        zs.avail_in = in_chunk;
        zs.next_out = buf + have;
        size_t out_room = cap - have;
        zs.avail_out = out_room > (1u << 30) ? (1u << 30) : (uInt)out_room;
        uInt avail_out_before = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        have += avail_out_before - zs.avail_out;
        in_left -= in_chunk - zs.avail_in;
        if (rc == Z_STREAM_END) {
            /* gzip allows concatenated members: go on if input is left. */
            if (in_left > 0 && window_bits >= 16) {
                if (inflateReset(&zs) != Z_OK)
                    break;
                continue;
            }
            break;
        }
        if (rc == Z_BUF_ERROR && in_left == 0 && zs.avail_out > 0) {
            inflateEnd(&zs);
            return sp_err_set(err, SP_EDECODE, "%s: truncated stream after %zu input bytes", what,
                              in_len);
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            inflateEnd(&zs);
            return sp_err_set(err, SP_EDECODE, "%s: corrupt stream at input byte %zu: %s", what,
                              in_len - in_left, zs.msg ? zs.msg : "error");
        }
    }
    inflateEnd(&zs);
    buf[have] = 0;
    *out = buf;
    *out_len = have;
    return 0;
}

static int sp_inflate_zstd(const uint8_t *in, size_t in_len, size_t max_out, struct sp_arena *arena,
                           const uint8_t **out, size_t *out_len, struct sp_err *err)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return sp_err_set(err, SP_ENOMEM, "zstd: cannot create stream");
    size_t cap = sp_inflate_guess(in_len, max_out);
    unsigned long long frame = ZSTD_getFrameContentSize(in, in_len);
    if (frame != ZSTD_CONTENTSIZE_UNKNOWN && frame != ZSTD_CONTENTSIZE_ERROR) {
        if (frame > max_out) {
            ZSTD_freeDStream(ds);
            return sp_err_set(err, SP_ETOOBIG,
                              "zstd: frame declares %llu bytes, over the limit of %zu", frame,
                              max_out);
        }
        cap = (size_t)frame;
    }
    uint8_t *buf = sp_arena_alloc(arena, cap + 1);
    if (!buf) {
        ZSTD_freeDStream(ds);
        return sp_err_set(err, SP_ENOMEM, "zstd: out of memory inflating");
    }
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t have = 0;
    size_t rc = 1;
    for (;;) {
        if (have == cap) {
            if (cap >= max_out || ib.pos == ib.size) {
                /* Full but the frame may have ended exactly here. */
                if (rc == 0)
                    break;
                if (cap >= max_out) {
                    ZSTD_freeDStream(ds);
                    return sp_err_set(err, SP_ETOOBIG,
                                      "zstd: body inflates past the limit of %zu bytes", max_out);
                }
            }
            size_t ncap = cap * 2 > max_out ? max_out : cap * 2;
            if (ncap == cap)
                ncap = cap + 1;
            uint8_t *nbuf = sp_arena_alloc(arena, ncap + 1);
            if (!nbuf) {
                ZSTD_freeDStream(ds);
                return sp_err_set(err, SP_ENOMEM, "zstd: out of memory inflating");
            }
            memcpy(nbuf, buf, have);
            buf = nbuf;
            cap = ncap;
        }
        ZSTD_outBuffer ob = {buf + have, cap - have, 0};
        rc = ZSTD_decompressStream(ds, &ob, &ib);
        have += ob.pos;
        if (ZSTD_isError(rc)) {
            ZSTD_freeDStream(ds);
            return sp_err_set(err, SP_EDECODE, "zstd: corrupt stream at input byte %zu: %s", ib.pos,
                              ZSTD_getErrorName(rc));
        }
        if (rc == 0 && ib.pos == ib.size)
            break;
        if (ib.pos == ib.size && ob.pos < ob.size && rc != 0) {
            ZSTD_freeDStream(ds);
            return sp_err_set(err, SP_EDECODE, "zstd: truncated stream after %zu input bytes",
                              in_len);
        }
    }
    ZSTD_freeDStream(ds);
    buf[have] = 0;
    *out = buf;
    *out_len = have;
    return 0;
}

int sp_decompress(enum sp_compression c, const uint8_t *in, size_t in_len, size_t max_out,
                  struct sp_arena *arena, const uint8_t **out, size_t *out_len, struct sp_err *err)
{
    switch (c) {
    case SP_COMPRESSION_NONE:
        if (in_len > max_out)
            return sp_err_set(err, SP_ETOOBIG, "body of %zu bytes is over the limit of %zu bytes",
                              in_len, max_out);
        *out = in;
        *out_len = in_len;
        return 0;
    case SP_COMPRESSION_GZIP:
        return sp_inflate_zlib(in, in_len, max_out, 16 + MAX_WBITS, arena, out, out_len, err, "gzip");
    case SP_COMPRESSION_DEFLATE:
        /* HTTP "deflate" is zlib-wrapped, but raw deflate is common in the
         * wild: look at the zlib header (CMF/FLG check) to pick. */
        if (in_len >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
            return sp_inflate_zlib(in, in_len, max_out, MAX_WBITS, arena, out, out_len, err, "deflate");
        return sp_inflate_zlib(in, in_len, max_out, -MAX_WBITS, arena, out, out_len, err, "deflate");
    case SP_COMPRESSION_ZSTD:
        return sp_inflate_zstd(in, in_len, max_out, arena, out, out_len, err);
    }
    return sp_err_set(err, SP_EUNSUPPORTED, "unknown compression %d", (int)c);
}

/* One libdeflate compressor per level, kept for the process: allocating one
 * costs more than compressing a small payload (everything runs on the loop
 * thread, so no locking). */
static struct libdeflate_compressor *deflate_compressor(int level)
{
    static struct libdeflate_compressor *compressors[13];
    if (level < 1 || level > 12)
        level = 1;
    if (!compressors[level])
        compressors[level] = libdeflate_alloc_compressor(level);
    return compressors[level];
}

/* zstd into out with cctx (reused) or a one-shot context. */
static int zstd_into(ZSTD_CCtx *cctx, int level, const uint8_t *in, size_t in_len,
                     struct sp_buf *out, struct sp_err *err)
{
    size_t bound = ZSTD_compressBound(in_len);
    if (sp_buf_reserve(out, bound + 1))
        return sp_err_set(err, SP_ENOMEM, "out of memory compressing %zu bytes", in_len);
    size_t n = cctx ? ZSTD_compress2(cctx, out->data + out->len, bound, in, in_len)
                    : ZSTD_compress(out->data + out->len, bound, in, in_len, level);
    if (ZSTD_isError(n))
        return sp_err_set(err, SP_EIO, "zstd: %s", ZSTD_getErrorName(n));
    out->len += n;
    out->data[out->len] = 0;
    return 0;
}

int sp_compress(enum sp_compression c, int level, const uint8_t *in, size_t in_len,
                struct sp_buf *out, struct sp_err *err)
{
    if (c == SP_COMPRESSION_NONE)
        return sp_buf_append(out, in, in_len) ? sp_err_set(err, SP_ENOMEM, "out of memory") : 0;
    if (c == SP_COMPRESSION_ZSTD)
        return zstd_into(NULL, level > 0 ? level : 1, in, in_len, out, err);
    struct libdeflate_compressor *lc = deflate_compressor(level);
    if (!lc)
        return sp_err_set(err, SP_ENOMEM, "cannot allocate a compressor");
    size_t bound, n;
    if (c == SP_COMPRESSION_GZIP)
        bound = libdeflate_gzip_compress_bound(lc, in_len);
    else
        bound = libdeflate_zlib_compress_bound(lc, in_len);
    if (sp_buf_reserve(out, bound))
        return sp_err_set(err, SP_ENOMEM, "out of memory compressing %zu bytes", in_len);
    if (c == SP_COMPRESSION_GZIP)
        n = libdeflate_gzip_compress(lc, in, in_len, out->data + out->len, bound);
    else
        n = libdeflate_zlib_compress(lc, in, in_len, out->data + out->len, bound);
    if (n == 0)
        return sp_err_set(err, SP_EIO, "compression failed for %zu bytes", in_len);
    out->len += n;
    out->data[out->len] = 0;
    return 0;
}

int sp_compressor_init(struct sp_compressor *c, enum sp_compression codec, int level,
                       size_t max_in, struct sp_err *err)
{
    memset(c, 0, sizeof(*c));
    if (level == 0)
        level = 1;
    if (codec == SP_COMPRESSION_ZSTD) {
        if (level < 1 || level > 19)
            return sp_err_set(err, SP_EINVAL, "zstd level %d is outside 1-19", level);
        ZSTD_CCtx *z = ZSTD_createCCtx();
        if (!z)
            return sp_err_set(err, SP_ENOMEM, "zstd: cannot create a compression context");
        size_t rc = ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(rc))
            rc = ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 0);
        if (ZSTD_isError(rc)) {
            ZSTD_freeCCtx(z);
            return sp_err_set(err, SP_EINVAL, "zstd: %s", ZSTD_getErrorName(rc));
        }
        c->zctx = z;
        /* One-shot compression of a known size sizes the tables for the
         * input, so the largest payload bounds what the context holds. */
        c->mem = ZSTD_estimateCCtxSize_usingCParams(
            ZSTD_getCParams(level, max_in ? (unsigned long long)max_in : 0, 0));
    } else if (codec == SP_COMPRESSION_GZIP) {
        if (level < 1 || level > 12)
            return sp_err_set(err, SP_EINVAL, "gzip level %d is outside 1-12", level);
        if (!deflate_compressor(level))
            return sp_err_set(err, SP_ENOMEM, "cannot allocate a compressor");
    } else if (codec != SP_COMPRESSION_NONE) {
        return sp_err_set(err, SP_EINVAL, "cannot compress with %s", sp_compression_name(codec));
    }
    c->codec = codec;
    c->level = level;
    return 0;
}

int sp_compressor_run(struct sp_compressor *c, const uint8_t *in, size_t in_len,
                      struct sp_buf *out, struct sp_err *err)
{
    if (c->codec == SP_COMPRESSION_ZSTD)
        return zstd_into(c->zctx, c->level, in, in_len, out, err);
    return sp_compress(c->codec, c->level, in, in_len, out, err);
}

void sp_compressor_free(struct sp_compressor *c)
{
    if (c->zctx)
        ZSTD_freeCCtx(c->zctx);
    memset(c, 0, sizeof(*c));
}
