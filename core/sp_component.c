/* Passing batches between stages: fan-out with references, private copies
 * for mutating consumers of a shared batch (the Collector's fanoutconsumer). */
#include "sp_component.h"

#include <inttypes.h>

#include "sp_assert.h"
#include "sp_log.h"
#include "sp_memory.h"

#include <string.h>

int sp_component_emit(struct sp_component *comp, struct sp_batch *batch, struct sp_err *err)
{
    SP_ASSERT(batch->refcount > 0, "sp_component_emit of a batch the caller no longer holds");
    const struct sp_consumers *next = &comp->next[batch->signal];
    int worst = SP_OK;

    comp->refused_by = NULL;
    for (size_t i = 0; i < next->n; i++) {
        struct sp_component *c = next->v[i];
        struct sp_batch *b = batch;
        /* The batch is shared when the caller or another consumer still
         * holds it; a mutating consumer must not change what others see. */
        bool shared = next->n > 1 || batch->refcount > 1;
        if ((c->type->flags & SP_COMP_MUTATES) && shared) {
            b = sp_batch_clone(batch);
            if (!b) {
                sp_err_set(err, SP_ENOMEM, "'%s': out of memory copying a %s batch", c->id,
                           sp_signal_name(batch->signal));
                worst = SP_ENOMEM;
                continue;
            }
        }
        c->refused_by = NULL;
        int rc = c->type->consume(c, b);
        if (b != batch)
            sp_batch_unref(b);
        if (rc != SP_OK) {
            /* A processor passes its next stage's answer on: name the
             * stage where the refusal started. */
            const char *who = c->refused_by ? c->refused_by : c->id;
            if (worst == SP_OK || rc == SP_EFULL || rc == SP_ERETRY) {
                if (!(worst == SP_EFULL && rc != SP_EFULL)) {
                    sp_err_set(err, rc, "'%s' refused the %s: %s", who,
                               sp_signal_name(batch->signal), sp_strerror(rc));
                    comp->refused_by = who;
                }
                if (worst != SP_EFULL)
                    worst = rc;
            }
        }
    }
    return worst;
}

/* Depth-first over the next stages: a processor without ready() is as
 * ready as what follows it. Pipelines are acyclic (checked at load). */
static int sp_component_next_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes,
                                   const char *when, struct sp_err *err)
{
    const struct sp_consumers *next = &comp->next[sig];
    for (size_t i = 0; i < next->n; i++) {
        struct sp_component *c = next->v[i];
        int rc = SP_OK;
        if (c->type->ready)
            rc = c->type->ready(c, sig, bytes);
        else if (c->type->kind == SP_KIND_PROCESSOR)
            rc = sp_component_next_ready(c, sig, bytes, when, err);
        if (rc != SP_OK) {
            if (err && err->code == SP_OK)
                sp_err_set(err, rc, "'%s' refused the %s before they were %s: %s", c->id,
                           sp_signal_name(sig), when,
                           rc == SP_EFULL ? "its queue is full" : sp_strerror(rc));
            return rc;
        }
    }
    return SP_OK;
}

int sp_component_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes,
                       struct sp_err *err)
{
    /* Profiles keep half of the band between the soft and the hard mark
     * for themselves, so a span flood cannot starve profile uploads. */
    uint64_t mark = sp_memory_soft_mark();
    if (sig == SP_SIGNAL_PROFILES)
        mark += (sp_memory_limit() - mark) / 2;
    if (sp_memory_used() + bytes > mark)
        return sp_err_set(err, SP_EFULL,
                          "memory ceiling: %" PRIu64 " of %" PRIu64 " bytes in use, new %s "
                          "requests are refused above %" PRIu64 " (service.memory_limit)",
                          sp_memory_used(), sp_memory_limit(), sp_signal_name(sig), mark);
    if (err)
        err->code = SP_OK;
    return sp_component_next_ready(comp, sig, bytes, "read", err);
}

int sp_component_pipeline_ready(struct sp_component *comp, enum sp_signal sig,
                                struct sp_err *err)
{
    if (err)
        err->code = SP_OK;
    return sp_component_next_ready(comp, sig, 0, "decoded", err);
}

const struct sp_component_type *sp_component_set_find(const struct sp_component_set *set,
                                                      enum sp_kind kind, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->types[i]->kind == kind && strcmp(set->types[i]->name, name) == 0)
            return set->types[i];
    return NULL;
}

const char *sp_kind_name(enum sp_kind k)
{
    switch (k) {
    case SP_KIND_RECEIVER: return "receiver";
    case SP_KIND_PROCESSOR: return "processor";
    case SP_KIND_EXPORTER: return "exporter";
    case SP_KIND_EXTENSION: return "extension";
    }
    return "unknown";
}
