/* The static table of component types. Adding a component: define its
 * `const struct sp_component_type` at the bottom of its main file and list
 * it here. */
#include "sp_registry.h"

#include <string.h>

extern const struct sp_component_type sp_otlp_receiver_type;
extern const struct sp_component_type sp_pprof_receiver_type;
extern const struct sp_component_type sp_join_processor_type;
extern const struct sp_component_type sp_datadog_exporter_type;
extern const struct sp_component_type sp_file_exporter_type;
extern const struct sp_component_type sp_debug_exporter_type;
extern const struct sp_component_type sp_otlphttp_exporter_type;
extern const struct sp_component_type sp_health_check_extension_type;

static const struct sp_component_type *const sp_types[] = {
    &sp_otlp_receiver_type,
    &sp_pprof_receiver_type,
    &sp_join_processor_type,
    &sp_datadog_exporter_type,
    &sp_file_exporter_type,
    &sp_debug_exporter_type,
    &sp_otlphttp_exporter_type,
    &sp_health_check_extension_type,
};

const struct sp_component_set sp_registry = {
    .types = sp_types,
    .count = sizeof(sp_types) / sizeof(sp_types[0]),
};
