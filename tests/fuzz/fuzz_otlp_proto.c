/* Fuzz target: OTLP protobuf decode (wire check, protobuf-c unpack into an
 * arena with a limit, span validation) and the answer encoding. A decoded
 * request must also survive a consumer's private copy (pack + unpack). */
#include <stddef.h>
#include <stdint.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, size * 16 + (1u << 20));
    if (!b)
        return 0;
    struct sp_otlp_decode_info info;
    struct sp_err err = {0};
    if (sp_otlp_decode_traces(b, SP_OTLP_PROTOBUF, data, size, &info, &err) == 0) {
        struct sp_buf out = {0};
        sp_otlp_encode_response(SP_OTLP_PROTOBUF, (int64_t)info.spans_rejected, info.message,
                                &out);
        sp_otlp_encode_response(SP_OTLP_JSON, (int64_t)info.spans_rejected, info.message, &out);
        sp_buf_free(&out);
        struct sp_batch *c = sp_batch_clone(b);
        sp_batch_unref(c);
    }
    sp_batch_unref(b);
    return 0;
}
