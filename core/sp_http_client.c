/* placeholder: implemented with the Datadog exporter issue */
#include "sp_http_client.h"
