/* Exponential backoff with jitter (see sp_backoff.h).
 *
 * The references: the OTel Collector's exporterhelper retry sender
 * (exporter/exporterhelper/internal/retry_sender.go) waits
 * max(backoff, throttle delay) when the server asked for a delay, with
 * cenkalti/backoff's x1.5 growth and +-50 % randomisation, which it applies
 * after the max_interval cap (so one wait may pass it by half); the
 * Datadog Agent's trace writer (pkg/trace/writer/sender.go backoffDuration)
 * draws "full jitter" below min(cap, base * 2^attempt), never above its cap.
 * Here: the Collector's growth and max(), and the jitter held inside
 * [initial, max] as the Agent keeps it under its cap. A Retry-After of 0
 * used to replace the backoff (11,454 retries in 10 s against a 503 intake);
 * now it changes nothing, and a long one is honoured. */
#include "sp_backoff.h"

int64_t sp_backoff_ms(int64_t initial_ms, int64_t max_ms, unsigned attempt, double rnd,
                      int64_t retry_after_ms)
{
    double lo = (double)initial_ms, hi = (double)max_ms;
    if (hi < lo)
        hi = lo;
    double d = lo;
    for (unsigned i = 1; i < attempt && d < hi; i++)
        d *= 1.5;
    if (d > hi)
        d = hi;
    /* +-50 % so sidecars restarted together do not retry in step. */
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
