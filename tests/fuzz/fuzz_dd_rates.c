/* Fuzz target: the datadog exporter's parser of an Agent's
 * /v0.4/traces reply (rate_by_service JSON), which must accept anything
 * without failing or reading out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "exporters/datadog/datadog_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double def = -1;
    size_t n = dd_parse_rate_by_service(data, size, &def);
    if (n == 0 && def != -1)
        __builtin_trap(); /* a default rate needs a well-formed rate */
    if (def != -1 && !(def >= 0.0 && def <= 1.0))
        __builtin_trap();
    return 0;
}
