/* Fuzz target: multipart/form-data. The first input line is the
 * Content-Type (boundary extraction is fuzzed too), the rest the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - data) : size;
    char *ct = malloc(ct_len + 1);
    if (!ct)
        return 0;
    memcpy(ct, data, ct_len);
    ct[ct_len] = '\0';
    /* the body is a separate allocation of its exact size: ASan sees overreads */
    size_t blen = nl ? size - ct_len - 1 : 0;
    uint8_t *body = malloc(blen ? blen : 1);
    if (body && blen)
        memcpy(body, nl + 1, blen);
    char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
    struct sp_err err;
    if (body && sp_multipart_boundary(ct, boundary, &err) == 0) {
        struct sp_arena *a = sp_arena_create(0);
        struct sp_multipart_part *parts;
        size_t n;
        struct sp_multipart_limits lim = {.max_parts = 16, .max_part_size = 4096,
                                          .max_header_bytes = 1024};
        if (sp_multipart_parse(body, blen, boundary, &lim, a, &parts, &n, &err) == 0) {
            for (size_t i = 0; i < n; i++) {
                if (!parts[i].name || (!parts[i].oversize && parts[i].len &&
                                       (parts[i].data < body || parts[i].data + parts[i].len >
                                                                    body + blen)))
                    abort();
            }
            (void)sp_multipart_find(parts, n, "event");
        }
        sp_arena_destroy(a);
    }
    free(body);
    free(ct);
    return 0;
}
