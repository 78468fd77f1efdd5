/* debug exporter: placeholder until its issue lands. */
#include "sp_component.h"

struct debug_conf {
    int unused;
};

static int debug_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "exporter '%s' is not implemented yet", comp->id);
}

static void debug_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_debug_exporter_type = {
    .name = "debug",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "placeholder",
    .conf_size = sizeof(struct debug_conf),
    .create = debug_create,
    .destroy = debug_destroy,
};
