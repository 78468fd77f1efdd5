/* sp_component_emit(): fan-out, private copies for mutating consumers, and
 * refusal messages that name the stage where a refusal started.
 * sp_component_ready(): the check receivers make before reading a request
 * (memory ceiling's soft mark, profiles' own share, next stages' ready()). */
#include "sp_test.h"

#include "sp_component.h"
#include "sp_memory.h"

static int exporter_rc;
static int exporter_calls;
static struct sp_batch *exporter_saw;
static struct sp_batch *mutator_saw;

static int exporter_consume(struct sp_component *comp, struct sp_batch *b)
{
    (void)comp;
    exporter_calls++;
    exporter_saw = b;
    return exporter_rc;
}

/* A processor that passes batches on and returns what its next stage said. */
static int processor_consume(struct sp_component *comp, struct sp_batch *b)
{
    return sp_component_emit(comp, b, NULL);
}

static int mutator_consume(struct sp_component *comp, struct sp_batch *b)
{
    (void)comp;
    mutator_saw = b;
    return SP_OK;
}

static int ready_rc;
static size_t ready_bytes;
static int exporter_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes)
{
    (void)comp;
    (void)sig;
    ready_bytes = bytes;
    return ready_rc;
}

static const struct sp_component_type ready_exporter_type = {
    .name = "fakeready", .kind = SP_KIND_EXPORTER, .consume = exporter_consume,
    .ready = exporter_ready};
static const struct sp_component_type exporter_type = {
    .name = "fakeexp", .kind = SP_KIND_EXPORTER, .consume = exporter_consume};
static const struct sp_component_type processor_type = {
    .name = "fakeproc", .kind = SP_KIND_PROCESSOR, .consume = processor_consume};
static const struct sp_component_type mutator_type = {
    .name = "fakemut", .kind = SP_KIND_PROCESSOR, .flags = SP_COMP_MUTATES,
    .consume = mutator_consume};

static void test_refusal_names_the_refusing_stage(void)
{
    struct sp_component recv = {.id = "recv"}, proc = {.id = "join"}, exp = {.id = "datadog"};
    proc.type = &processor_type;
    exp.type = &exporter_type;
    struct sp_component *to_proc[] = {&proc}, *to_exp[] = {&exp};
    recv.next[SP_SIGNAL_TRACES] = (struct sp_consumers){to_proc, 1};
    proc.next[SP_SIGNAL_TRACES] = (struct sp_consumers){to_exp, 1};
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    struct sp_err err = {0};

    exporter_rc = SP_EFULL;
    ASSERT_EQ_INT(sp_component_emit(&recv, b, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "'datadog' refused the traces");

    /* The processor refusing on its own is named itself. */
    exporter_rc = SP_OK;
    proc.next[SP_SIGNAL_TRACES].n = 0;
    proc.type = &exporter_type; /* now refuses directly */
    exporter_rc = SP_EFULL;
    sp_err_clear(&err);
    ASSERT_EQ_INT(sp_component_emit(&recv, b, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "'join' refused the traces");
    sp_batch_unref(b);
}

static void test_mutating_consumer_gets_a_copy_when_shared(void)
{
    struct sp_component recv = {.id = "recv"}, mut = {.id = "join"}, exp = {.id = "debug"};
    mut.type = &mutator_type;
    exp.type = &exporter_type;
    struct sp_component *both[] = {&exp, &mut}, *only[] = {&mut};
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_PROFILES, 0);
    b->u.profile.service = "svc";

    exporter_rc = SP_OK;
    recv.next[SP_SIGNAL_PROFILES] = (struct sp_consumers){both, 2};
    ASSERT_EQ_INT(sp_component_emit(&recv, b, NULL), SP_OK);
    ASSERT(exporter_saw == b);
    ASSERT(mutator_saw != b); /* shared: a private copy */
    ASSERT_EQ_INT(b->refcount, 1);

    recv.next[SP_SIGNAL_PROFILES] = (struct sp_consumers){only, 1};
    ASSERT_EQ_INT(sp_component_emit(&recv, b, NULL), SP_OK);
    ASSERT(mutator_saw == b); /* sole owner: no copy */
    sp_batch_unref(b);
}

static void test_ready_asks_through_processors(void)
{
    sp_memory_reset();
    sp_memory_set_limit(1000);
    struct sp_component recv = {.id = "recv"}, proc = {.id = "join"}, exp = {.id = "datadog"},
                        dbg = {.id = "debug"};
    proc.type = &processor_type;
    exp.type = &ready_exporter_type;
    dbg.type = &exporter_type; /* no ready(): always ready */
    struct sp_component *to_proc[] = {&proc}, *to_exps[] = {&dbg, &exp};
    recv.next[SP_SIGNAL_TRACES] = (struct sp_consumers){to_proc, 1};
    proc.next[SP_SIGNAL_TRACES] = (struct sp_consumers){to_exps, 2};
    struct sp_err err = {0};

    ready_rc = SP_OK;
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 123, &err), SP_OK);
    ASSERT_EQ_INT(ready_bytes, 123);
    ready_rc = SP_EFULL;
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 10, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "'datadog' refused the traces before they were read");
    ready_rc = SP_ESHUTDOWN;
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 10, &err), SP_ESHUTDOWN);
    /* No consumer for the signal: nothing to refuse. */
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_PROFILES, 10, &err), SP_OK);

    /* The second look before decoding asks the same stages, not the
     * memory ceiling: a received body's charge (over the soft mark here)
     * must not refuse it again. */
    ready_rc = SP_OK;
    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BODIES, 900), SP_OK);
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 0, &err), SP_EFULL);
    sp_err_clear(&err);
    ASSERT_EQ_INT(sp_component_pipeline_ready(&recv, SP_SIGNAL_TRACES, &err), SP_OK);
    ready_rc = SP_EFULL;
    ASSERT_EQ_INT(sp_component_pipeline_ready(&recv, SP_SIGNAL_TRACES, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "'datadog' refused the traces before they were decoded");
    sp_memory_release(SP_MEM_BODIES, 900);
    ready_rc = SP_OK;
}

static void test_ready_memory_marks(void)
{
    sp_memory_reset();
    sp_memory_set_limit(1000); /* soft mark 800 */
    struct sp_component recv = {.id = "recv"}, exp = {.id = "debug"};
    exp.type = &exporter_type;
    struct sp_component *to_exp[] = {&exp};
    recv.next[SP_SIGNAL_TRACES] = (struct sp_consumers){to_exp, 1};
    recv.next[SP_SIGNAL_PROFILES] = (struct sp_consumers){to_exp, 1};
    struct sp_err err = {0};

    ASSERT_EQ_INT(sp_memory_reserve(SP_MEM_BATCHES, 700), SP_OK);
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 100, &err), SP_OK);
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_TRACES, 101, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "memory ceiling: 700 of 1000 bytes in use");
    /* Profiles may use half the band above the soft mark (to 900). */
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_PROFILES, 200, &err), SP_OK);
    ASSERT_EQ_INT(sp_component_ready(&recv, SP_SIGNAL_PROFILES, 201, &err), SP_EFULL);
    ASSERT_CONTAINS(err.msg, "new profiles requests are refused above 900");
    sp_memory_release(SP_MEM_BATCHES, 700);
    sp_memory_set_limit(0);
}

int main(void)
{
    RUN(test_ready_asks_through_processors);
    RUN(test_ready_memory_marks);
    RUN(test_refusal_names_the_refusing_stage);
    RUN(test_mutating_consumer_gets_a_copy_when_shared);
    return sp_test_summary();
}
