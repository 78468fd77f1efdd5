/* Exponential backoff between delivery attempts, as every exporter that
 * retries computes it: initial_interval, x1.5 per attempt up to
 * max_interval, +-50 % jitter so sidecars restarted together do not retry
 * in step, the result held inside [initial_interval, max_interval]; a
 * server's Retry-After bounds the wait from below: max(backoff,
 * Retry-After), never shorter than the backoff. Pure function. */
#ifndef SP_BACKOFF_H
#define SP_BACKOFF_H

#include <stdint.h>

/* The wait before attempt + 1 (attempt >= 1 is the attempt that failed).
 * rnd in [0, 1) picks the jitter; retry_after_ms < 0 means none.
 * At least 1 ms. */
int64_t sp_backoff_ms(int64_t initial_ms, int64_t max_ms, unsigned attempt, double rnd,
                      int64_t retry_after_ms);

#endif
