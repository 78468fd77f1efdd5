/* The process memory ceiling (core/sp_memory.c): reserve and release per
 * class, the soft mark that turns new work away, the hard mark that is
 * never passed, arenas and batches charged through it, the metrics. */
#include "sp_test.h"

#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"
#include "sp_memory.h"
#include "sp_metrics.h"

static void setup(uint64_t limit)
{
    sp_memory_reset();
    sp_memory_set_limit(limit);
}

static void test_reserve_release(void)
{
    setup(1000);
    ASSERT_EQ_U64(sp_memory_limit(), 1000);
    ASSERT_EQ_U64(sp_memory_soft_mark(), 800);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BODIES, 600), SP_OK);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BATCHES, 300), SP_OK);
    ASSERT_EQ_U64(sp_memory_used(), 900);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BODIES), 600);
    /* The hard mark: 900 + 101 would pass 1000. */
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_EXPORT, 101), SP_EFULL);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_EXPORT, 100), SP_OK);
    ASSERT_EQ_U64(sp_memory_used(), 1000);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_EXPORT, 1), SP_EFULL);
    sp_memory_release(SP_MEM_BODIES, 600);
    sp_memory_release(SP_MEM_BATCHES, 300);
    sp_memory_release(SP_MEM_EXPORT, 100);
    ASSERT_EQ_U64(sp_memory_used(), 0);
    ASSERT_EQ_U64(sp_memory_peak(), 1000);
    /* More than the whole limit at once is refused even when empty. */
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BODIES, 1001), SP_EFULL);
}

static void test_soft_mark_admit(void)
{
    setup(1000);
    ASSERT(sp_memory_admit(800));
    ASSERT(!sp_memory_admit(801));
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BATCHES, 700), SP_OK);
    ASSERT(sp_memory_admit(100));
    ASSERT(!sp_memory_admit(101));
    /* Charging what cannot be refused may pass the marks; admit says no. */
    sp_memory_charge(SP_MEM_INDEX, 400);
    ASSERT_EQ_U64(sp_memory_used(), 1100);
    ASSERT(!sp_memory_admit(0));
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BODIES, 1), SP_EFULL);
    sp_memory_release(SP_MEM_INDEX, 400);
    sp_memory_release(SP_MEM_BATCHES, 700);
    ASSERT(sp_memory_admit(0));
}

static void test_move(void)
{
    setup(1000);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BATCHES, 500), SP_OK);
    sp_memory_move(SP_MEM_BATCHES, SP_MEM_EXPORT, 200);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BATCHES), 300);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_EXPORT), 200);
    ASSERT_EQ_U64(sp_memory_used(), 500);
    sp_memory_release(SP_MEM_BATCHES, 300);
    sp_memory_release(SP_MEM_EXPORT, 200);
}

static void test_arena_charged(void)
{
    setup(64 << 10);
    struct sp_arena *a = sp_arena_create(1024);
    ASSERT(a);
    ASSERT(sp_arena_alloc(a, 100)); /* before charging: not counted */
    size_t before = sp_arena_bytes(a);
    sp_arena_set_mem_class(a, SP_MEM_BODIES);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BODIES), before);
    /* Blocks come from the ceiling until it refuses; the arena says why. */
    int n = 0;
    while (sp_arena_alloc(a, 4000) && n < 1000)
        n++;
    ASSERT(n > 5 && n < 1000);
    ASSERT(sp_arena_ceiling_hit(a));
    ASSERT(sp_memory_used() <= sp_memory_limit());
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BODIES), sp_arena_bytes(a));
    sp_arena_set_mem_class(a, SP_MEM_EXPORT);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BODIES), 0);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_EXPORT), sp_arena_bytes(a));
    sp_arena_destroy(a);
    ASSERT_EQ_U64(sp_memory_used(), 0);
}

static void test_batch_charged(void)
{
    setup(SP_MEMORY_DEFAULT_LIMIT);
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    ASSERT(b);
    ASSERT(sp_arena_alloc(b->arena, 10000));
    ASSERT(sp_memory_used_by(SP_MEM_BATCHES) >= 10000);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_BATCHES), sp_arena_bytes(b->arena));
    struct sp_batch *c = sp_batch_clone(b);
    ASSERT(c);
    sp_batch_set_mem_class(c, SP_MEM_PROFILES);
    ASSERT_EQ_U64(sp_memory_used_by(SP_MEM_PROFILES), sp_arena_bytes(c->arena));
    sp_batch_unref(b);
    sp_batch_unref(c);
    ASSERT_EQ_U64(sp_memory_used(), 0);
}

static void test_metrics(void)
{
    setup(1 << 20);
    sp_metrics_reset();
    sp_memory_register_metrics();
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_INDEX, 1000), SP_OK);
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BODIES, 2 << 20), SP_EFULL);
    struct sp_buf out = {0};
    ASSERT_EQ_INT(sp_metrics_render(&out), 0);
    sp_buf_append_byte(&out, 0);
    const char *txt = (const char *)out.data;
    ASSERT_CONTAINS(txt, "spanprof_memory_used_bytes{class=\"index\"} 1000\n");
    ASSERT_CONTAINS(txt, "spanprof_memory_refused_total{class=\"bodies\"} 1\n");
    ASSERT_CONTAINS(txt, "spanprof_memory_limit_bytes{mark=\"hard\"} 1048576\n");
    ASSERT_CONTAINS(txt, "spanprof_memory_limit_bytes{mark=\"soft\"} 838800\n");
    ASSERT_CONTAINS(txt, "spanprof_memory_peak_bytes 1000\n");
    sp_buf_free(&out);
    sp_memory_release(SP_MEM_INDEX, 1000);
    sp_metrics_reset();
}

int main(void)
{
    RUN(test_reserve_release);
    RUN(test_soft_mark_admit);
    RUN(test_move);
    RUN(test_arena_charged);
    RUN(test_batch_charged);
    RUN(test_metrics);
    return sp_test_summary();
}
