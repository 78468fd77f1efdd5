/* The static table of component types. Adding a component: define its
 * `const struct sp_component_type` at the bottom of its main file and list
 * it here. */
#include "sp_component.h"

#include <string.h>

extern const struct sp_component_type sp_otlp_receiver_type;
extern const struct sp_component_type sp_pprof_receiver_type;
extern const struct sp_component_type sp_join_processor_type;
extern const struct sp_component_type sp_datadog_exporter_type;
extern const struct sp_component_type sp_file_exporter_type;
extern const struct sp_component_type sp_debug_exporter_type;
extern const struct sp_component_type sp_otlphttp_exporter_type;
extern const struct sp_component_type sp_health_check_extension_type;

static const struct sp_component_type *const sp_registry[] = {
    &sp_otlp_receiver_type,
    &sp_pprof_receiver_type,
    &sp_join_processor_type,
    &sp_datadog_exporter_type,
    &sp_file_exporter_type,
    &sp_debug_exporter_type,
    &sp_otlphttp_exporter_type,
    &sp_health_check_extension_type,
};

const struct sp_component_type *sp_registry_find(enum sp_kind kind, const char *name)
{
    for (size_t i = 0; i < sizeof(sp_registry) / sizeof(sp_registry[0]); i++)
        if (sp_registry[i]->kind == kind && strcmp(sp_registry[i]->name, name) == 0)
            return sp_registry[i];
    return NULL;
}

const struct sp_component_type *const *sp_registry_all(size_t *count)
{
    *count = sizeof(sp_registry) / sizeof(sp_registry[0]);
    return sp_registry;
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
