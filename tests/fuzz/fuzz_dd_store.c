/* Fuzz target: the datadog exporter's storage file format
 * (sending_queue.storage), read back at start from a directory anything
 * may have written to. Whatever the bytes, parsing never fails badly; a
 * file it accepts encodes back to exactly the same bytes (a version 1 file
 * encodes as version 2: that encoding reads back to the same request, and
 * encodes to itself again). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "exporters/datadog/datadog_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int mode = 0; mode < 2; mode++) {
        const char *why = NULL;
        struct dd_req *r = dd_store_parse(data, size, mode == 1, &why);
        if (!r) {
            if (!why || !*why)
                __builtin_trap(); /* a refusal names its reason */
            continue;
        }
        struct sp_buf b = {0};
        bool v1 = data[4] == 1;
        if (dd_store_encode(r, mode == 1, &b) == 0) {
            if (!v1 && (b.len != size || memcmp(b.data, data, size) != 0))
                __builtin_trap(); /* accepted bytes are one request's encoding */
            if (v1) {
                struct dd_req *r2 = dd_store_parse(b.data, b.len, mode == 1, &why);
                if (!r2 || r2->encoding != r->encoding || r2->count != r->count ||
                    r2->n_headers != r->n_headers || r2->body.len != r->body.len ||
                    memcmp(r2->body.data, r->body.data, r->body.len) != 0)
                    __builtin_trap(); /* the upgrade keeps the request */
                struct sp_buf b2 = {0};
                if (dd_store_encode(r2, mode == 1, &b2) == 0 &&
                    (b2.len != b.len || memcmp(b2.data, b.data, b.len) != 0))
                    __builtin_trap();
                sp_buf_free(&b2);
                dd_req_free(r2);
            }
        }
        sp_buf_free(&b);
        dd_req_free(r);
    }
    return 0;
}
