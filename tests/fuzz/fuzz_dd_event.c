/* Fuzz target: Datadog event.json and tags_profiler parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dd_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    struct sp_arena *a = sp_arena_create(0);
    struct sp_profile p;
    memset(&p, 0, sizeof(p));
    struct sp_dd_event info;
    struct sp_err err;
    if (sp_dd_event_parse(copy, size, a, &p, &info, &err) == 0) {
        if (!p.event_json || p.event_json_len != size)
            abort();
        for (size_t i = 0; i < p.tag_count; i++)
            if (!p.tags[i].key || !p.tags[i].value)
                abort();
    }
    struct sp_profile q;
    memset(&q, 0, sizeof(q));
    (void)sp_dd_tags_parse(copy, size, 8, a, &q);
    if (q.tag_count > 8)
        abort();
    int64_t ns;
    (void)sp_rfc3339_parse_ns(copy, size, &ns);
    sp_arena_destroy(a);
    free(copy);
    return 0;
}
