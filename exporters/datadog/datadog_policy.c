/* datadog exporter: the pure decisions of delivery, kept apart from I/O so
 * unit tests and the fuzzer link them alone.
 *
 * Which answers are retried (408, 429, 5xx and transport errors, like the
 * trace agent's sender plus the 429 the OTel exporter helper retries), how
 * long to wait (exponential backoff x1.5 with +-50% jitter kept inside
 * [initial_interval, max_interval], never less than the server's
 * Retry-After), and the Agent's rate_by_service reply. spanprof does no
 * sampling of its own, so that reply is only parsed to be logged, and one
 * that is not what we expect is never an error. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "datadog_int.h"
#include "sp_backoff.h"

enum dd_verdict dd_classify(long status)
{
    if (status >= 200 && status < 300)
        return DD_SENT;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return DD_RETRY;
    return DD_PERMANENT;
}

/* The policy is core's (sp_backoff.h), shared with the otlphttp exporter. */
int64_t dd_backoff_ms(const struct dd_retry_conf *rc, unsigned attempt, double rnd,
                      int64_t retry_after_ms)
{
    return sp_backoff_ms(rc->initial_interval_ms, rc->max_interval_ms, attempt, rnd,
                         retry_after_ms);
}

size_t dd_parse_rate_by_service(const uint8_t *body, size_t len, double *default_rate)
{
    if (!body || len == 0 || len > (1u << 20))
        return 0;
    struct json_tokener *tok = json_tokener_new_ex(16);
    if (!tok)
        return 0;
    struct json_object *root = json_tokener_parse_ex(tok, (const char *)body, (int)len);
    json_tokener_free(tok);
    if (!root)
        return 0;
    size_t n = 0;
    struct json_object *rates = NULL;
    if (json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "rate_by_service", &rates) &&
        json_object_is_type(rates, json_type_object)) {
        json_object_object_foreach(rates, key, val)
        {
            if (!json_object_is_type(val, json_type_double) &&
                !json_object_is_type(val, json_type_int))
                continue;
            double r = json_object_get_double(val);
            if (!(r >= 0.0 && r <= 1.0))
                continue;
            n++;
            if (strcmp(key, "service:,env:") == 0 && default_rate)
                *default_rate = r;
        }
    }
    json_object_put(root);
    return n;
}
