/* Exponential backoff between delivery attempts, as every exporter that
 * retries computes it (the Collector's retry_on_failure semantics):
 * initial_interval, x1.5 per attempt, capped at max_interval, +-50 %
 * jitter so sidecars restarted together do not retry in step; a server's
 * Retry-After wins. Pure function. */
#ifndef SP_BACKOFF_H
#define SP_BACKOFF_H

#include <stdint.h>

/* The wait before attempt + 1 (attempt >= 1 is the attempt that failed).
 * rnd in [0, 1) picks the jitter; retry_after_ms >= 0 is used as is.
 * At least 1 ms. */
int64_t sp_backoff_ms(int64_t initial_ms, int64_t max_ms, unsigned attempt, double rnd,
                      int64_t retry_after_ms);

#endif
