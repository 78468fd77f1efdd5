/* Fuzz target: the datadog exporter's storage file format
 * (sending_queue.storage), read back at start from a directory anything
 * may have written to. Whatever the bytes, parsing never fails badly; a
 * file it accepts encodes back to exactly the same bytes. */
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
        if (dd_store_encode(r, mode == 1, &b) == 0 &&
            (b.len != size || memcmp(b.data, data, size) != 0))
            __builtin_trap(); /* accepted bytes are one request's encoding */
        sp_buf_free(&b);
        dd_req_free(r);
    }
    return 0;
}
