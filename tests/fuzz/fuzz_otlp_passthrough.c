/* Fuzz target: the OTLP metrics and logs decoders (wire check, protobuf-c
 * unpack into an arena with a limit, the descriptor-driven JSON mapping,
 * item counting and the protobuf re-encoding of JSON input). The first
 * byte picks the signal (bit 0: metrics or logs) and the encoding (bit 1:
 * protobuf or JSON); the rest is the body. A decoded request must also
 * survive a consumer's private copy. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum sp_signal sig = (data[0] & 1) ? SP_SIGNAL_LOGS : SP_SIGNAL_METRICS;
    enum sp_otlp_encoding enc = (data[0] & 2) ? SP_OTLP_JSON : SP_OTLP_PROTOBUF;
    data++;
    size--;
    struct sp_batch *b = sp_batch_create(sig, size * 16 + (1u << 20));
    if (!b)
        return 0;
    struct sp_err err = {0};
    if (sp_otlp_decode_passthrough(b, enc, data, size, &err) == 0) {
        /* What is forwarded is a well-formed request of the signal. */
        struct sp_batch *check = sp_batch_create(sig, 0);
        if (check && sp_otlp_decode_passthrough(check, SP_OTLP_PROTOBUF, b->u.otlp.pb,
                                                b->u.otlp.pb_len, &err) != 0)
            __builtin_trap();
        if (check && check->u.otlp.item_count != b->u.otlp.item_count)
            __builtin_trap();
        sp_batch_unref(check);
        struct sp_batch *c = sp_batch_clone(b);
        if (c && (c->u.otlp.pb_len != b->u.otlp.pb_len ||
                  (c->u.otlp.pb_len && memcmp(c->u.otlp.pb, b->u.otlp.pb, c->u.otlp.pb_len))))
            __builtin_trap();
        sp_batch_unref(c);
    }
    sp_batch_unref(b);
    return 0;
}
