/* join processor: placeholder until its issue lands. */
#include "sp_component.h"

struct join_conf {
    int unused;
};

static int join_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "processor '%s' is not implemented yet", comp->id);
}

static void join_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_join_processor_type = {
    .name = "join",
    .kind = SP_KIND_PROCESSOR,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "placeholder",
    .conf_size = sizeof(struct join_conf),
    .create = join_create,
    .destroy = join_destroy,
};
