/* Fuzz target: pprof decode (sniff, bounded inflate, unpack, validate), and
 * for what decodes: the label helpers and an encode/decode round trip,
 * which must succeed on anything validation accepted. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pprof_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_arena_set_limit(a, 64u << 20);
    sp_pprof *p = NULL;
    struct sp_err err;
    if (sp_pprof_decode(data, size, 8u << 20, a, &p, NULL, &err) == 0) {
        (void)sp_pprof_is_labelled_type(p);
        for (size_t i = 0; i < p->n_sample; i++)
            for (size_t j = 0; j < p->sample[i]->n_label; j++) {
                if (!sp_pprof_str(p, p->sample[i]->label[j]->key))
                    abort(); /* validation let a bad index through */
            }
        if (sp_pprof_intern(p, a, "span id") < 0)
            abort();
        struct sp_buf b = {0};
        if (sp_pprof_encode(p, SP_COMPRESSION_NONE, &b, &err) != 0)
            abort();
        sp_pprof *q = NULL;
        if (sp_pprof_decode(b.data, b.len, 64u << 20, a, &q, NULL, &err) != 0 &&
            err.code != SP_ETOOBIG && err.code != SP_ENOMEM)
            abort(); /* what was valid must stay valid */
        sp_buf_free(&b);
    }
    sp_arena_destroy(a);
    return 0;
}
