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

enum dd_verdict dd_classify(long status)
{
    if (status >= 200 && status < 300)
        return DD_SENT;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return DD_RETRY;
    return DD_PERMANENT;
}

/* The references: the OTel Collector's exporterhelper retry sender
 * (exporter/exporterhelper/internal/retry_sender.go) waits
 * max(backoff, throttle delay) when the server asked for a delay, with
 * cenkalti/backoff's x1.5 growth and +-50% randomisation, which it applies
 * after the max_interval cap (so one wait may pass it by half); the
 * Datadog Agent's trace writer (pkg/trace/writer/sender.go backoffDuration)
 * draws "full jitter" below min(cap, base * 2^attempt), never above its
 * cap. Here: the Collector's growth and max(), and the jitter held inside
 * [initial_interval, max_interval] as the Agent keeps it under its cap. */
int64_t dd_backoff_ms(const struct dd_retry_conf *rc, unsigned attempt, double rnd,
                      int64_t retry_after_ms)
{
    double lo = (double)rc->initial_interval_ms, hi = (double)rc->max_interval_ms;
    if (hi < lo)
        hi = lo;
    double d = lo;
    for (unsigned i = 1; i < attempt && d < hi; i++)
        d *= 1.5;
    if (d > hi)
        d = hi;
    /* Jitter +-50% so many sidecars restarted together do not retry in step. */
    if (!(rnd >= 0))
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    d = d * (0.5 + rnd);
    if (d < lo)
        d = lo;
    if (d > hi)
        d = hi;
    int64_t ms = d < 1 ? 1 : (int64_t)d;
    return retry_after_ms > ms ? retry_after_ms : ms;
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
