/* Exponential backoff with jitter (see sp_backoff.h). */
#include "sp_backoff.h"

int64_t sp_backoff_ms(int64_t initial_ms, int64_t max_ms, unsigned attempt, double rnd,
                      int64_t retry_after_ms)
{
    if (retry_after_ms >= 0)
        return retry_after_ms;
    double d = (double)initial_ms;
    for (unsigned i = 1; i < attempt && d < (double)max_ms; i++)
        d *= 1.5;
    if (d > (double)max_ms)
        d = (double)max_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    d = d * (0.5 + rnd);
    return d < 1 ? 1 : (int64_t)d;
}
