/* Unit tests of receivers/pprof/pprof_delta.c: cumulative snapshots become
 * deltas, matched by what samples mean (stack, labels), not by ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../receivers/pprof/pprof_int.h"
#include "sp_test.h"

/* A heap-like profile: sample types alloc_objects, alloc_space, inuse_space;
 * n stacks, stack i = location (address 0x1000 + i) -> function "f<i>".
 * Location ids are offset by id_base so two snapshots number them apart. */
struct heap {
    struct sp_arena *a;
    sp_pprof *p;
};

static const char *types[] = {"alloc_objects", "count", "alloc_space", "bytes", "inuse_space",
                              "bytes"};

static sp_pprof *heap_new(struct sp_arena *a, size_t n, uint64_t id_base, const int64_t (*vals)[3],
                          int64_t time_ns)
{
    sp_pprof *p = sp_arena_calloc(a, 1, sizeof(*p));
    perftools__profiles__profile__init(p);
    sp_pprof_intern(p, a, "");
    p->n_sample_type = 3;
    p->sample_type = sp_arena_calloc(a, 3, sizeof(*p->sample_type));
    for (int i = 0; i < 3; i++) {
        p->sample_type[i] = sp_arena_calloc(a, 1, sizeof(**p->sample_type));
        perftools__profiles__value_type__init(p->sample_type[i]);
        p->sample_type[i]->type = sp_pprof_intern(p, a, types[2 * i]);
        p->sample_type[i]->unit = sp_pprof_intern(p, a, types[2 * i + 1]);
    }
    p->n_function = p->n_location = p->n_sample = n;
    p->function = sp_arena_calloc(a, n, sizeof(*p->function));
    p->location = sp_arena_calloc(a, n, sizeof(*p->location));
    p->sample = sp_arena_calloc(a, n, sizeof(*p->sample));
    for (size_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%zu", i);
        Perftools__Profiles__Function *f = sp_arena_calloc(a, 1, sizeof(*f));
        perftools__profiles__function__init(f);
        f->id = i + 1;
        f->name = sp_pprof_intern(p, a, name);
        p->function[i] = f;
        Perftools__Profiles__Location *l = sp_arena_calloc(a, 1, sizeof(*l));
        perftools__profiles__location__init(l);
        /* reverse order in the second snapshot: ids mean nothing across snapshots */
        l->id = id_base + (id_base ? n - i : i + 1);
        l->address = 0x1000 + i;
        l->n_line = 1;
        l->line = sp_arena_calloc(a, 1, sizeof(*l->line));
        l->line[0] = sp_arena_calloc(a, 1, sizeof(**l->line));
        perftools__profiles__line__init(l->line[0]);
        l->line[0]->function_id = i + 1;
        l->line[0]->line = 10;
        p->location[i] = l;
        Perftools__Profiles__Sample *s = sp_arena_calloc(a, 1, sizeof(*s));
        perftools__profiles__sample__init(s);
        s->n_location_id = 1;
        s->location_id = sp_arena_calloc(a, 1, sizeof(uint64_t));
        s->location_id[0] = l->id;
        s->n_value = 3;
        s->value = sp_arena_calloc(a, 3, sizeof(int64_t));
        memcpy(s->value, vals[i], 3 * sizeof(int64_t));
        p->sample[i] = s;
    }
    p->time_nanos = time_ns;
    return p;
}

/* The sample of function "f<i>", or NULL. */
static const Perftools__Profiles__Sample *by_fn(const sp_pprof *p, int i)
{
    char name[16];
    snprintf(name, sizeof(name), "f%d", i);
    for (size_t k = 0; k < p->n_sample; k++) {
        uint64_t lid = p->sample[k]->location_id[0];
        for (size_t l = 0; l < p->n_location; l++)
            if (p->location[l]->id == lid &&
                strcmp(sp_pprof_str(p, p->function[p->location[l]->line[0]->function_id - 1]->name),
                       name) == 0)
                return p->sample[k];
    }
    return NULL;
}

static void test_delta_heap(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct pprof_delta_state *st = pprof_delta_new();
    const int64_t v1[3][3] = {{10, 1000, 500}, {5, 50, 0}, {7, 70, 70}};
    sp_pprof *s1 = heap_new(a, 3, 0, v1, 1000000000);
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pprof_validate(s1, &err), 0);
    bool had = true;
    ASSERT_EQ_INT(pprof_delta_apply(st, s1, NULL, &had), 0);
    ASSERT(!had);
    ASSERT_EQ_INT(s1->n_sample, 3); /* the baseline is left as it was */
    ASSERT_EQ_INT(s1->sample[0]->value[1], 1000);

    /* f0 allocated 2 more objects (+200 bytes), f1 nothing new and nothing
     * in use (dropped), f2 nothing new but 70 bytes still in use (kept),
     * f3 is new; ids are renumbered */
    const int64_t v2[4][3] = {{12, 1200, 300}, {5, 50, 0}, {7, 70, 70}, {1, 16, 16}};
    sp_pprof *s2 = heap_new(a, 4, 100, v2, 11000000000LL);
    ASSERT_EQ_INT(sp_pprof_validate(s2, &err), 0);
    ASSERT_EQ_INT(pprof_delta_apply(st, s2, NULL, &had), 0);
    ASSERT(had);
    ASSERT_EQ_INT(s2->n_sample, 3);
    const Perftools__Profiles__Sample *f0 = by_fn(s2, 0), *f2 = by_fn(s2, 2), *f3 = by_fn(s2, 3);
    ASSERT(f0 && f2 && f3 && by_fn(s2, 1) == NULL);
    ASSERT_EQ_INT(f0->value[0], 2);
    ASSERT_EQ_INT(f0->value[1], 200);
    ASSERT_EQ_INT(f0->value[2], 300); /* inuse: as is */
    ASSERT_EQ_INT(f2->value[0], 0);
    ASSERT_EQ_INT(f2->value[2], 70);
    ASSERT_EQ_INT(f3->value[1], 16);
    /* the delta covers the time between the two snapshots */
    ASSERT_EQ_INT(s2->time_nanos, 1000000000);
    ASSERT_EQ_INT(s2->duration_nanos, 10000000000LL);
    ASSERT_EQ_INT(sp_pprof_validate(s2, &err), 0);

    /* counters went down: the process restarted; the snapshot is the delta */
    const int64_t v3[1][3] = {{3, 30, 30}};
    sp_pprof *s3 = heap_new(a, 1, 7, v3, 21000000000LL);
    ASSERT_EQ_INT(pprof_delta_apply(st, s3, NULL, &had), 0);
    ASSERT(had);
    ASSERT_EQ_INT(s3->sample[0]->value[0], 3);
    ASSERT_EQ_INT(s3->sample[0]->value[1], 30);

    /* different sample types: baseline again */
    sp_pprof *s4 = heap_new(a, 1, 0, v3, 31000000000LL);
    s4->sample_type[2]->type = sp_pprof_intern(s4, a, "inuse_objects");
    ASSERT_EQ_INT(pprof_delta_apply(st, s4, NULL, &had), 0);
    ASSERT(!had);
    pprof_delta_free(st);
    sp_arena_destroy(a);
}

static void test_labels_distinguish(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct pprof_delta_state *st = pprof_delta_new();
    const int64_t v[2][3] = {{1, 10, 0}, {1, 10, 0}};
    sp_pprof *s1 = heap_new(a, 2, 0, v, 1);
    /* same stack for both samples, told apart by a label */
    s1->sample[1]->location_id[0] = s1->sample[0]->location_id[0];
    for (int i = 0; i < 2; i++) {
        Perftools__Profiles__Label *l = sp_arena_calloc(a, 1, sizeof(*l));
        perftools__profiles__label__init(l);
        l->key = sp_pprof_intern(s1, a, "bytes");
        l->num = i ? 64 : 32;
        s1->sample[i]->n_label = 1;
        s1->sample[i]->label = sp_arena_calloc(a, 1, sizeof(*s1->sample[i]->label));
        s1->sample[i]->label[0] = l;
    }
    bool had;
    ASSERT_EQ_INT(pprof_delta_apply(st, s1, NULL, &had), 0);
    /* second snapshot: only the 64-byte sample grew */
    s1->sample[1]->value[0] = 4;
    s1->sample[1]->value[1] = 40;
    s1->n_sample = 2;
    ASSERT_EQ_INT(pprof_delta_apply(st, s1, NULL, &had), 0);
    ASSERT(had);
    ASSERT_EQ_INT(s1->n_sample, 1);
    ASSERT_EQ_INT(s1->sample[0]->label[0]->num, 64);
    ASSERT_EQ_INT(s1->sample[0]->value[0], 3);
    pprof_delta_free(st);
    sp_arena_destroy(a);
}

static void test_subtract_and_custom_columns(void)
{
    struct sp_arena *a = sp_arena_create(0);
    const int64_t v1[2][3] = {{10, 100, 5}, {1, 1, 1}};
    const int64_t v2[2][3] = {{15, 150, 9}, {1, 1, 1}};
    sp_pprof *prev = heap_new(a, 2, 0, v1, 1);
    sp_pprof *cur = heap_new(a, 2, 50, v2, 2);
    /* mark inuse_space cumulative too, alloc_space not */
    bool cum[3] = {true, false, true};
    ASSERT_EQ_INT(pprof_delta_subtract(cur, prev, cum), 0);
    const Perftools__Profiles__Sample *f0 = by_fn(cur, 0);
    ASSERT(f0 != NULL);
    ASSERT_EQ_INT(f0->value[0], 5);
    ASSERT_EQ_INT(f0->value[1], 150);
    ASSERT_EQ_INT(f0->value[2], 4);
    /* f1: 0, 1, 0 -> kept (alloc_space is not subtracted) */
    ASSERT(by_fn(cur, 1) != NULL);
    /* different sample types are refused */
    sp_pprof *other = heap_new(a, 1, 0, v1, 1);
    other->sample_type[0]->unit = sp_pprof_intern(other, a, "bytes");
    ASSERT_EQ_INT(pprof_delta_subtract(cur, other, NULL), SP_EINVAL);
    ASSERT(pprof_delta_is_cumulative_type("contentions"));
    ASSERT(pprof_delta_is_cumulative_type("delay"));
    ASSERT(!pprof_delta_is_cumulative_type("inuse_space"));
    ASSERT(!pprof_delta_is_cumulative_type("cpu"));
    ASSERT(!pprof_delta_is_cumulative_type(NULL));
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_delta_heap);
    RUN(test_labels_distinguish);
    RUN(test_subtract_and_custom_columns);
    return sp_test_summary();
}
