/* The service's part of the status page: the pipelines, every component's
 * own series and last events, and the /status and /status.json routes on
 * the metrics address. Private to service/. */
#ifndef SP_SERVICE_STATUS_H
#define SP_SERVICE_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "sp_component.h"
#include "sp_config.h"
#include "sp_httpd.h"

/* Registers the pipelines and components with sp_status (loop thread, at
 * start; the arrays must outlive the service). */
void sp_service_status_register(const struct sp_service_conf *conf, struct sp_component *comps,
                                size_t comp_count);
/* Unregisters what sp_service_status_register added. */
void sp_service_status_unregister(const struct sp_service_conf *conf,
                                  struct sp_component *comps, size_t comp_count);
/* Answers /status and /status.json (true) or leaves req alone (false). */
bool sp_service_status_route(struct sp_http_request *req);

#endif
