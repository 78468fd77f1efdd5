/* Fuzz target: OTLP/JSON decode and validation. Whatever the mapping builds
 * must be a well-formed protobuf-c tree: it is packed and decoded again.
 * The two JSON decoders are held to each other: whatever the streaming one
 * takes, json-c's tree (the reference) must decode to the same bytes, with
 * the same arena use, or fail with the same code and message; whatever it
 * declines must leave the arena and the error untouched. The input's size
 * picks an arena limit (none for a quarter of the sizes), so running out of
 * memory part way is compared too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *pack(const sp_otlp_request *req, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *b = malloc(*n ? *n : 1);
    if (b)
        protobuf_c_message_pack(&req->base, b);
    return b;
}

static void compare_decoders(const uint8_t *data, size_t size)
{
    size_t limit = 0;
    if (size % 4 != 0)
        limit = 4096 + size % 251 * (size / 64 + 7);
    struct sp_arena *as = sp_arena_create(0), *at = sp_arena_create(0);
    if (!as || !at) {
        sp_arena_destroy(as);
        sp_arena_destroy(at);
        return;
    }
    sp_arena_set_limit(as, limit);
    sp_arena_set_limit(at, limit);
    sp_otlp_request *rs = NULL, *rt = NULL;
    struct sp_err es = {0}, et = {0};
    int cs = sp_otlp_decode_json_stream(as, data, size, &rs, &es);
    if (cs == SP_OTLP_JSON_DECLINED) {
        if (sp_arena_bytes(as) != 0 || es.code != 0 || es.msg[0] != '\0') {
            fprintf(stderr, "declined after using the arena or setting an error\n");
            abort();
        }
    } else {
        int ct = sp_otlp_decode_json_tree(at, data, size, &rt, &et);
        if (cs != ct || (cs && strcmp(es.msg, et.msg) != 0)) {
            fprintf(stderr, "stream %d '%s', tree %d '%s'\n", cs, es.msg, ct, et.msg);
            abort();
        }
        if (sp_arena_bytes(as) != sp_arena_bytes(at)) {
            fprintf(stderr, "arena bytes: stream %zu, tree %zu\n", sp_arena_bytes(as),
                    sp_arena_bytes(at));
            abort();
        }
        if (cs == 0) {
            size_t ns, nt;
            uint8_t *ps = pack(rs, &ns), *pt = pack(rt, &nt);
            if (ps && pt && (ns != nt || memcmp(ps, pt, ns) != 0)) {
                fprintf(stderr, "decoded requests differ (%zu and %zu bytes packed)\n", ns, nt);
                abort();
            }
            free(ps);
            free(pt);
        }
    }
    sp_arena_destroy(as);
    sp_arena_destroy(at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    compare_decoders(data, size);
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
