/* Fuzz target: gRPC unary request framing as DATA frames bring it. The
 * first input byte picks the chunk size and the grpc-encoding; the rest is
 * the request body, fed chunk by chunk to an sp_grpc_reader (limit 64 KiB,
 * so small compressed bombs hit it), finished (inflating when flagged) and,
 * when a message comes out, decoded as an ExportTraceServiceRequest. */
#include <stddef.h>
#include <stdint.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const encodings[] = {NULL, "gzip", "zstd", "deflate", "identity", "br"};
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] & 0x1f) + 1;
    const char *enc = encodings[(data[0] >> 5) % 6];
    data++;
    size--;
    struct sp_grpc_reader r = {.max_msg = 64 << 10};
    struct sp_err err = {0};
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (sp_grpc_reader_feed(&r, data + off, n, &err) != 0)
            break;
    }
    struct sp_arena *scratch = sp_arena_create(0);
    const uint8_t *msg;
    size_t len;
    if (scratch && !r.failed && sp_grpc_reader_finish(&r, enc, scratch, &msg, &len, &err) == 0) {
        struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, len * 16 + (1u << 20));
        struct sp_otlp_decode_info info;
        if (b)
            sp_otlp_decode_traces(b, SP_OTLP_PROTOBUF, msg, len, &info, &err);
        sp_batch_unref(b);
    }
    sp_arena_destroy(scratch);
    sp_grpc_reader_free(&r);
    return 0;
}
