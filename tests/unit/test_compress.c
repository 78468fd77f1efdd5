/* core/sp_compress.c's encoder side: sp_compressor (zstd with one reused
 * context, gzip through libdeflate) against the decoders, payload after
 * payload through the same context; its memory bound; refused settings;
 * the one-shot sp_compress for both codecs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_test.h"

#include "sp_arena.h"
#include "sp_buf.h"
#include "sp_compress.h"
#include "sp_err.h"

/* A payload that compresses like spans do: repeated field names, varying
 * ids. */
static void make_input(struct sp_buf *b, size_t n, unsigned seed)
{
    b->len = 0;
    for (size_t i = 0; i < n; i++)
        sp_buf_printf(b, "span{id=%08x,service=checkout,resource=GET /cart/%zu}",
                      seed * 7919u + (unsigned)i, i % 37);
}

static void round_trip(struct sp_compressor *c, const struct sp_buf *in)
{
    struct sp_buf out = {0};
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_compressor_run(c, in->data, in->len, &out, &err), 0);
    ASSERT(out.len > 0 && out.len < in->len);
    ASSERT_EQ_INT(sp_compression_sniff(out.data, out.len), c->codec);
    struct sp_arena *a = sp_arena_create(0);
    const uint8_t *raw;
    size_t rl;
    ASSERT_EQ_INT(sp_decompress(c->codec, out.data, out.len, in->len, a, &raw, &rl, &err), 0);
    ASSERT_EQ_INT(rl, in->len);
    ASSERT(memcmp(raw, in->data, rl) == 0);
    sp_arena_destroy(a);
    sp_buf_free(&out);
}

static void test_reused_context_round_trips(void)
{
    const enum sp_compression cs[] = {SP_COMPRESSION_ZSTD, SP_COMPRESSION_GZIP};
    struct sp_buf in = {0};
    for (size_t k = 0; k < 2; k++) {
        struct sp_compressor c;
        struct sp_err err = {0};
        ASSERT_EQ_INT(sp_compressor_init(&c, cs[k], 1, 3200000, &err), 0);
        ASSERT_EQ_INT(c.codec, cs[k]);
        ASSERT_EQ_INT(c.level, 1);
        /* payloads of very different sizes through one context, the
         * small one after the big one (tables sized for the big one) */
        const size_t sizes[] = {10, 40000, 3, 2000};
        for (size_t i = 0; i < 4; i++) {
            make_input(&in, sizes[i], (unsigned)i);
            round_trip(&c, &in);
        }
        if (cs[k] == SP_COMPRESSION_ZSTD) {
            ASSERT(c.zctx != NULL);
            /* zstd level 1's context for a 3.2 MB input: what the
             * exporter charges, about half a MiB */
            ASSERT(c.mem > 256 * 1024 && c.mem < 2 * 1024 * 1024);
        } else {
            ASSERT_EQ_INT(c.mem, 0); /* libdeflate's compressor is the process's */
        }
        sp_compressor_free(&c);
        ASSERT(c.zctx == NULL);
    }
    sp_buf_free(&in);
}

static void test_levels_and_refusals(void)
{
    struct sp_compressor c;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_ZSTD, 0, 0, &err), 0);
    ASSERT_EQ_INT(c.level, 1); /* 0 picks 1 */
    sp_compressor_free(&c);
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_ZSTD, 3, 1 << 20, &err), 0);
    struct sp_buf in = {0};
    make_input(&in, 500, 9);
    round_trip(&c, &in);
    sp_compressor_free(&c);
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_ZSTD, 20, 0, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "zstd level 20 is outside 1-19");
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_GZIP, 13, 0, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "gzip level 13");
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_DEFLATE, 1, 0, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "cannot compress with deflate");
    /* NONE copies */
    ASSERT_EQ_INT(sp_compressor_init(&c, SP_COMPRESSION_NONE, 1, 0, &err), 0);
    struct sp_buf out = {0};
    ASSERT_EQ_INT(sp_compressor_run(&c, in.data, in.len, &out, &err), 0);
    ASSERT_EQ_INT(out.len, in.len);
    ASSERT(memcmp(out.data, in.data, in.len) == 0);
    sp_compressor_free(&c);
    sp_buf_free(&out);
    sp_buf_free(&in);
}

/* The one-shot path stays: same formats, appended after what out holds. */
static void test_one_shot_appends(void)
{
    struct sp_buf in = {0}, out = {0};
    struct sp_err err = {0};
    make_input(&in, 300, 4);
    ASSERT_EQ_INT(sp_buf_append(&out, "head", 4), 0);
    ASSERT_EQ_INT(sp_compress(SP_COMPRESSION_ZSTD, 1, in.data, in.len, &out, &err), 0);
    ASSERT(memcmp(out.data, "head", 4) == 0);
    ASSERT_EQ_INT(sp_compression_sniff(out.data + 4, out.len - 4), SP_COMPRESSION_ZSTD);
    struct sp_arena *a = sp_arena_create(0);
    const uint8_t *raw;
    size_t rl;
    ASSERT_EQ_INT(sp_decompress(SP_COMPRESSION_ZSTD, out.data + 4, out.len - 4, in.len, a, &raw,
                                &rl, &err),
                  0);
    ASSERT_EQ_INT(rl, in.len);
    sp_arena_destroy(a);
    sp_buf_free(&in);
    sp_buf_free(&out);
}

int main(void)
{
    RUN(test_reused_context_round_trips);
    RUN(test_levels_and_refusals);
    RUN(test_one_shot_appends);
    return sp_test_summary();
}
