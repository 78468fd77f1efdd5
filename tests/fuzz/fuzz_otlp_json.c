/* Fuzz target: OTLP/JSON decode (json-c, descriptor-driven mapping onto the
 * protobuf-c structs) and validation. Whatever the mapping builds must be a
 * well-formed protobuf-c tree: it is packed and decoded again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, size * 16 + (1u << 20));
    if (!b)
        return 0;
    struct sp_otlp_decode_info info;
    struct sp_err err = {0};
    if (sp_otlp_decode_traces(b, SP_OTLP_JSON, data, size, &info, &err) == 0) {
        const ProtobufCMessage *m = &b->u.traces.req->base;
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *packed = malloc(n ? n : 1);
        if (packed) {
            protobuf_c_message_pack(m, packed);
            struct sp_arena *a = sp_arena_create(0);
            sp_otlp_request *again = NULL;
            if (a && sp_otlp_decode_proto(a, packed, n, &again, &err) != 0)
                abort(); /* the JSON mapping built something protobuf cannot carry */
            sp_arena_destroy(a);
            free(packed);
        }
    }
    sp_batch_unref(b);
    return 0;
}
