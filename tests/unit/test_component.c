/* sp_component_emit(): fan-out, private copies for mutating consumers, and
 * refusal messages that name the stage where a refusal started. */
#include "sp_test.h"

#include "sp_component.h"

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

int main(void)
{
    RUN(test_refusal_names_the_refusing_stage);
    RUN(test_mutating_consumer_gets_a_copy_when_shared);
    return sp_test_summary();
}
