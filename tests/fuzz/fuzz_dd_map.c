/* Fuzz target: OTLP protobuf bytes -> the Datadog trace mapping and every
 * encoding of its result (split, AgentPayload+gzip, /v0.4 msgpack, JSON
 * lines). The mapping reads attacker-controlled attributes, events, links
 * and ids: none of it may crash, leak or read out of bounds. The request is
 * decoded without validation so ids of any length reach the mapping.
 * spanprof's own AgentPayload packer must give protobuf-c's bytes: a
 * difference aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dd_payload.h"
#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pack(const Datadog__Trace__AgentPayload *p)
{
    size_t n = datadog__trace__agent_payload__get_packed_size(p);
    uint8_t *ref = malloc(n + 1), *got = NULL;
    size_t gn = 0;
    struct sp_err err = {0};
    if (!ref)
        return;
    datadog__trace__agent_payload__pack(p, ref);
    if (sp_dd_pack_agent_payload(p, &got, &gn, &err) == 0 && (gn != n || memcmp(ref, got, n)))
        abort();
    free(ref);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_arena *in = sp_arena_create(0), *out = sp_arena_create(0);
    sp_arena_set_limit(in, 64u << 20);
    sp_otlp_request *req = NULL;
    struct sp_err err = {0};
    if (in && out && sp_otlp_decode_proto(in, data, size, &req, &err) == 0 && req) {
        static const struct sp_runtime_id rid = {"fixture-otlp-proto", NULL, "rid"};
        static const char *const tags[] = {"team:fuzz", NULL};
        struct sp_traces tr = {.req = req, .runtime_ids = &rid, .runtime_id_count = 1};
        struct sp_dd_map_opts o = {.hostname = "h", .env = "e", .tags = tags, .agent_version = "f"};
        Datadog__Trace__AgentPayload *p = NULL;
        size_t dropped = 0;
        if (sp_dd_map_traces(&tr, &o, out, &p, &dropped, &err) == 0) {
            Datadog__Trace__AgentPayload **parts = NULL;
            size_t n = 0;
            if (sp_dd_split_payload(p, 4096, out, &parts, &n, &err) == 0) {
                struct sp_buf b = {0};
                size_t count = 0;
                for (size_t i = 0; i < n; i++) {
                    check_pack(parts[i]);
                    sp_dd_encode_agent_payload(parts[i], &b, &err);
                    sp_buf_reset(&b);
                }
                sp_dd_encode_v04(p, &b, &count, &err);
                sp_buf_reset(&b);
                sp_dd_encode_json_lines(p, &b, &err);
                sp_buf_free(&b);
            }
        }
    }
    if (in)
        sp_arena_destroy(in);
    if (out)
        sp_arena_destroy(out);
    return 0;
}
