/* otlp receiver: placeholder until its issue lands. */
#include "sp_component.h"

struct otlp_conf {
    int unused;
};

static int otlp_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "receiver '%s' is not implemented yet", comp->id);
}

static void otlp_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_otlp_receiver_type = {
    .name = "otlp",
    .kind = SP_KIND_RECEIVER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES),
    .doc = "placeholder",
    .conf_size = sizeof(struct otlp_conf),
    .create = otlp_create,
    .destroy = otlp_destroy,
};
