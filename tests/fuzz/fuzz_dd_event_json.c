/* Fuzz target: rewriting a profile upload's original event.json (client
 * input passed through the pprof receiver) into the one spanprof uploads.
 * Whatever the input, the result must be a JSON object with version "4"
 * and the attachments spanprof sends. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "dd_profile_upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_profile p;
    memset(&p, 0, sizeof(p));
    struct sp_attachment a = {.name = "cpu.pprof", .data = (const uint8_t *)"x", .len = 1};
    struct sp_endpoint_count ec = {"GET /a", 3};
    p.service = "svc";
    p.family = "go";
    p.attachments = &a;
    p.attachment_count = 1;
    p.endpoint_counts = &ec;
    p.endpoint_count_count = 1;
    p.event_json = (const char *)data;
    p.event_json_len = size;
    struct sp_buf out = {0};
    struct sp_err err = {0};
    if (sp_dd_profile_event_json(&p, NULL, &out, &err) == 0) {
        struct json_object *j = json_tokener_parse((const char *)out.data);
        struct json_object *v = NULL;
        if (!j || !json_object_object_get_ex(j, "version", &v) ||
            strcmp(json_object_get_string(v), "4") != 0)
            __builtin_trap();
        if (!json_object_object_get_ex(j, "endpoint_counts", &v) ||
            !json_object_is_type(v, json_type_object))
            __builtin_trap();
        json_object_put(j);
    }
    sp_buf_free(&out);
    return 0;
}
