/* The component types this binary is built with (service/sp_registry.c):
 * handed to the config loader and the reference generator. */
#ifndef SP_REGISTRY_H
#define SP_REGISTRY_H

#include "sp_component.h"

extern const struct sp_component_set sp_registry;

#endif
