/* file exporter: placeholder until its issue lands. */
#include "sp_component.h"

struct file_conf {
    int unused;
};

static int file_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "exporter '%s' is not implemented yet", comp->id);
}

static void file_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_file_exporter_type = {
    .name = "file",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "placeholder",
    .conf_size = sizeof(struct file_conf),
    .create = file_create,
    .destroy = file_destroy,
};
