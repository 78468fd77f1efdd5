/* Benchmark input: Go-like CPU profiles (see pprof_gen.h). */
#include "pprof_gen.h"

#include <stdio.h>
#include <string.h>

static uint64_t pg_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define PG_FIXED_STRINGS 6 /* "", samples, count, cpu, nanoseconds, span_id */

static sp_pprof *pg_build(struct sp_arena *a, size_t n_samples, uint64_t seed,
                          const uint64_t *span_ids, size_t n_span_ids)
{
    uint64_t rng = seed ? seed : 1;
    size_t n_funcs = 1500 + n_samples / 20;
    size_t n_locs = n_funcs * 2;
    size_t n_label_vals = n_span_ids ? n_span_ids : 2000;
    if (n_label_vals > 20000)
        n_label_vals = 20000;
    size_t n_str = PG_FIXED_STRINGS + 2 * n_funcs + 40 + n_label_vals;

    sp_pprof *p = sp_arena_calloc(a, 1, sizeof(*p));
    if (!p)
        return NULL;
    perftools__profiles__profile__init(p);
    p->string_table = sp_arena_alloc(a, sizeof(char *) * n_str);
    if (!p->string_table)
        return NULL;
    static const char *const fixed[PG_FIXED_STRINGS] = {"", "samples", "count", "cpu",
                                                        "nanoseconds", "span_id"};
    size_t s = 0;
    for (; s < PG_FIXED_STRINGS; s++)
        p->string_table[s] = (char *)fixed[s];
    size_t files0 = s;
    for (size_t i = 0; i < 40; i++)
        p->string_table[s++] = sp_arena_sprintf(a, "/src/github.com/acme/api/internal/pkg%zu/file%zu.go",
                                                i % 9, i);
    size_t names0 = s;
    for (size_t i = 0; i < n_funcs; i++) {
        p->string_table[s++] = sp_arena_sprintf(
            a, "github.com/acme/api/internal/pkg%zu.(*Handler%zu).method%zu", i % 9, i % 113, i);
        p->string_table[s++] = sp_arena_sprintf(a, "pkg%zu.method%zu", i % 9, i);
    }
    size_t labels0 = s;
    for (size_t i = 0; i < n_label_vals; i++) {
        uint64_t id = span_ids ? span_ids[i] : pg_next(&rng);
        p->string_table[s++] = sp_arena_sprintf(a, "%016llx", (unsigned long long)id);
    }
    p->n_string_table = s;
    for (size_t i = 0; i < s; i++)
        if (!p->string_table[i])
            return NULL;

    Perftools__Profiles__ValueType *vt = sp_arena_calloc(a, 3, sizeof(*vt));
    p->sample_type = sp_arena_alloc(a, 2 * sizeof(*p->sample_type));
    if (!vt || !p->sample_type)
        return NULL;
    for (int i = 0; i < 3; i++)
        perftools__profiles__value_type__init(&vt[i]);
    vt[0].type = 1, vt[0].unit = 2; /* samples/count */
    vt[1].type = 3, vt[1].unit = 4; /* cpu/nanoseconds */
    vt[2].type = 3, vt[2].unit = 4;
    p->sample_type[0] = &vt[0];
    p->sample_type[1] = &vt[1];
    p->n_sample_type = 2;
    p->period_type = &vt[2];
    p->period = 10000000;
    p->time_nanos = 1763700000000000000;
    p->duration_nanos = 60000000000;

    Perftools__Profiles__Mapping *m = sp_arena_calloc(a, 1, sizeof(*m));
    p->mapping = sp_arena_alloc(a, sizeof(*p->mapping));
    if (!m || !p->mapping)
        return NULL;
    perftools__profiles__mapping__init(m);
    m->id = 1;
    m->memory_start = 0x400000;
    m->memory_limit = 0x1400000;
    m->has_functions = 1;
    p->mapping[0] = m;
    p->n_mapping = 1;

    Perftools__Profiles__Function *fn = sp_arena_calloc(a, n_funcs, sizeof(*fn));
    p->function = sp_arena_alloc(a, n_funcs * sizeof(*p->function));
    if (!fn || !p->function)
        return NULL;
    for (size_t i = 0; i < n_funcs; i++) {
        perftools__profiles__function__init(&fn[i]);
        fn[i].id = i + 1;
        fn[i].name = (int64_t)(names0 + 2 * i);
        fn[i].system_name = (int64_t)(names0 + 2 * i + 1);
        fn[i].filename = (int64_t)(files0 + i % 40);
        fn[i].start_line = (int64_t)(10 + i % 500);
        p->function[i] = &fn[i];
    }
    p->n_function = n_funcs;

    Perftools__Profiles__Location *loc = sp_arena_calloc(a, n_locs, sizeof(*loc));
    Perftools__Profiles__Line *ln = sp_arena_calloc(a, n_locs, sizeof(*ln));
    Perftools__Profiles__Line **lnp = sp_arena_alloc(a, n_locs * sizeof(*lnp));
    p->location = sp_arena_alloc(a, n_locs * sizeof(*p->location));
    if (!loc || !ln || !lnp || !p->location)
        return NULL;
    for (size_t i = 0; i < n_locs; i++) {
        perftools__profiles__location__init(&loc[i]);
        perftools__profiles__line__init(&ln[i]);
        ln[i].function_id = i % n_funcs + 1;
        ln[i].line = (int64_t)(12 + (pg_next(&rng) % 900));
        lnp[i] = &ln[i];
        loc[i].id = i + 1;
        loc[i].mapping_id = 1;
        loc[i].address = 0x401000 + i * 0x40 + (pg_next(&rng) % 0x30);
        loc[i].line = &lnp[i];
        loc[i].n_line = 1;
        p->location[i] = &loc[i];
    }
    p->n_location = n_locs;

    Perftools__Profiles__Sample *sm = sp_arena_calloc(a, n_samples, sizeof(*sm));
    Perftools__Profiles__Label *lb = sp_arena_calloc(a, n_samples, sizeof(*lb));
    Perftools__Profiles__Label **lbp = sp_arena_alloc(a, n_samples * sizeof(*lbp));
    p->sample = sp_arena_alloc(a, n_samples * sizeof(*p->sample));
    if (!sm || !lb || !lbp || !p->sample)
        return NULL;
    for (size_t i = 0; i < n_samples; i++) {
        Perftools__Profiles__Sample *x = &sm[i];
        perftools__profiles__sample__init(x);
        size_t depth = 8 + pg_next(&rng) % 17;
        x->location_id = sp_arena_alloc(a, depth * sizeof(uint64_t));
        x->value = sp_arena_alloc(a, 2 * sizeof(int64_t));
        if (!x->location_id || !x->value)
            return NULL;
        /* Stacks share their outer frames (main, net/http server), as real
         * ones do: the deeper frames vary. */
        for (size_t d = 0; d < depth; d++)
            x->location_id[d] = d + 4 >= depth ? depth - d : 1 + pg_next(&rng) % n_locs;
        x->n_location_id = depth;
        int64_t k = 1 + (int64_t)(pg_next(&rng) % 3);
        x->value[0] = k;
        x->value[1] = k * 10000000;
        x->n_value = 2;
        if (pg_next(&rng) % 10 != 0) {
            perftools__profiles__label__init(&lb[i]);
            lb[i].key = 5;
            lb[i].str = (int64_t)(labels0 + pg_next(&rng) % n_label_vals);
            lbp[i] = &lb[i];
            x->label = &lbp[i];
            x->n_label = 1;
        }
        p->sample[i] = x;
    }
    p->n_sample = n_samples;
    return p;
}

sp_pprof *bench_pprof_build(struct sp_arena *a, size_t target_bytes, uint64_t seed,
                            const uint64_t *span_ids, size_t n_span_ids)
{
    /* First guess ~45 bytes per sample, then one correction from the
     * measured size (the probe's memory stays in the arena: fine for a
     * benchmark input). */
    size_t n = target_bytes / 45 + 1;
    struct sp_arena *probe = sp_arena_create(0);
    if (!probe)
        return NULL;
    sp_pprof *p = pg_build(probe, n, seed, span_ids, n_span_ids);
    if (p) {
        size_t got = protobuf_c_message_get_packed_size(&p->base);
        if (got > 0)
            n = (size_t)((double)n * (double)target_bytes / (double)got) + 1;
    }
    sp_arena_destroy(probe);
    if (!p)
        return NULL;
    return pg_build(a, n, seed, span_ids, n_span_ids);
}
