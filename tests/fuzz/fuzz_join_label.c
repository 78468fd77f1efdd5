/* Fuzz target: the join's sample labelling on arbitrary (decodable) pprof
 * profiles. Every id-looking label value of the input is indexed (roots,
 * children, chains, a cycle), so the resolution and labelling paths run;
 * afterwards the profile must still validate, and a second labelling pass
 * must change nothing (labels are never duplicated). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_codec.h"
#include "processors/join/join_label.h"

struct fuzz_scan {
    const struct join_label_ctx *c;
    size_t samples;
};

static void fuzz_scan_id(void *ud, const struct join_open_id *id)
{
    struct fuzz_scan *fs = ud;
    uint64_t root, rec;
    if (!id->span || !id->samples ||
        join_index_resolve(fs->c->ix, id->span, fs->c->max_depth, &root, &rec) == JOIN_RESOLVED) {
        fprintf(stderr, "scan reported a resolvable or empty id\n");
        abort();
    }
    fs->samples += id->samples;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_arena_set_limit(a, 64u << 20);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    if (sp_pprof_decode(data, size, 8u << 20, a, &p, NULL, &err) < 0) {
        sp_arena_destroy(a);
        return 0;
    }
    struct join_index *ix = join_index_create(4096, 60000, 64);
    struct join_names *names = join_names_create(4, 8);
    uint32_t svc = join_names_service(names, "fuzz");
    uint64_t prev = 0;
    size_t k = 0;
    for (size_t i = 0; i < p->n_sample && k < 4000; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        for (size_t l = 0; l < s->n_label && k < 4000; l++, k++) {
            const Perftools__Profiles__Label *lab = s->label[l];
            uint64_t id = (uint64_t)lab->num;
            const char *str = sp_pprof_str(p, lab->str);
            if (lab->str && str && join_parse_dec_id(str, &id) < 0 && join_parse_hex_id(str, &id) < 0)
                continue;
            if (!id)
                continue;
            switch (k % 5) {
            case 0: {
                char ep[32];
                snprintf(ep, sizeof ep, "EP %zu", k % 7);
                uint32_t pair = join_names_pair(names, svc, ep);
                join_index_put(ix, id, true, join_root_record((uint32_t)k, pair, pair ? 0 : 2), 0);
                break;
            }
            case 1:
                join_index_put(ix, id, true, join_root_record(0, 0, JOIN_ROOT_NOT_PII), 0);
                break;
            case 2:
                join_index_put(ix, id, false, prev ? prev : id, 0); /* chains, self-cycles */
                break;
            default:
                join_index_put(ix, id, false, id ^ 1, 0);
            }
            prev = id;
        }
    }
    static char *extra[] = {(char *)"profile_id", (char *)"trace_id"};
    struct join_label_ctx c = {ix, names, 16, extra, 2};
    /* The hold's scan first: it reads only, and every id it reports must be
     * one the index cannot resolve. */
    struct fuzz_scan fs = {&c, 0};
    if (join_label_scan(&c, p, fuzz_scan_id, &fs) == 0 && fs.samples > p->n_sample) {
        fprintf(stderr, "scan reported %zu samples of %zu\n", fs.samples, p->n_sample);
        abort();
    }
    struct join_label_stats st = {0};
    bool modified = false;
    if (join_label_pprof(&c, p, a, &st, &modified) == 0) {
        if (sp_pprof_validate(p, &err) < 0) {
            fprintf(stderr, "labelled profile no longer validates: %s\n", err.msg);
            abort();
        }
        bool again = false;
        struct join_label_stats st2 = {0};
        if (join_label_pprof(&c, p, a, &st2, &again) == 0 && again) {
            fprintf(stderr, "second labelling pass changed the profile\n");
            abort();
        }
        struct sp_buf out = {0};
        sp_pprof_encode(p, SP_COMPRESSION_NONE, &out, &err);
        sp_buf_free(&out);
    }
    join_names_destroy(names);
    join_index_destroy(ix);
    sp_arena_destroy(a);
    return 0;
}
