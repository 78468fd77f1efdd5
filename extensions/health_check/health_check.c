/* health_check extension: placeholder until its issue lands. */
#include "sp_component.h"

struct health_check_conf {
    int unused;
};

static int health_check_create(struct sp_component *comp, struct sp_err *err)
{
    return sp_err_set(err, SP_EUNSUPPORTED, "extension '%s' is not implemented yet", comp->id);
}

static void health_check_destroy(struct sp_component *comp)
{
    (void)comp;
}

const struct sp_component_type sp_health_check_extension_type = {
    .name = "health_check",
    .kind = SP_KIND_EXTENSION,
    .signals = 0,
    .doc = "placeholder",
    .conf_size = sizeof(struct health_check_conf),
    .create = health_check_create,
    .destroy = health_check_destroy,
};
