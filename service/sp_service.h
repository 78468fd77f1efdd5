/* The running service: instances, pipeline wiring, lifecycle, signals,
 * self-metrics endpoint (engine-only). */
#ifndef SP_SERVICE_H
#define SP_SERVICE_H

#include <uv.h>

#include "sp_config.h"

struct sp_service;

/* Creates every used component (parse + validate, no I/O). On failure every
 * error is in diag as `file:line:col: message` and SP_EINVAL is returned. */
int sp_service_create(uv_loop_t *loop, struct sp_service_conf *conf, struct sp_service **out,
                      struct sp_diag *diag);
/* Starts extensions, exporters, processors, receivers, and the metrics
 * endpoint; installs SIGTERM/SIGINT handlers. */
int sp_service_start(struct sp_service *s, struct sp_err *err);
/* Begins the graceful shutdown (what SIGTERM does). */
void sp_service_shutdown(struct sp_service *s);
/* 0 after a clean shutdown, 1 otherwise. */
int sp_service_exit_code(const struct sp_service *s);
void sp_service_destroy(struct sp_service *s);

#endif
