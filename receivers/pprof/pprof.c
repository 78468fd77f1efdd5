/* pprof receiver: placeholder until its issue lands. */
#include "sp_component.h"

struct pprof_conf {
    int unused;
};

static int pprof_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "receiver '%s' is not implemented yet", comp->id);
}

static void pprof_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_pprof_receiver_type = {
    .name = "pprof",
    .kind = SP_KIND_RECEIVER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "placeholder",
    .conf_size = sizeof(struct pprof_conf),
    .create = pprof_create,
    .destroy = pprof_destroy,
};
