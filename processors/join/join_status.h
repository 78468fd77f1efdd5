/* The join's figures for the status page (private to processors/join).
 *
 * Fed once per profile, right after join_label_pprof() has labelled it,
 * from the labelled samples themselves (the `trace endpoint`, `span id` and
 * `span_id` labels as they will be sent), so the page's CPU shares are
 * what Datadog will show and not a second computation. Two fixed-size
 * rings, allocated once:
 *   - CPU by (service, endpoint) in JOIN_STATUS_COLS time columns over the
 *     window (default 5 min), at most JOIN_STATUS_MAX_KEYS rows; an
 *     endpoint beyond that is counted in its service's "other endpoints"
 *     row, a service beyond JOIN_STATUS_MAX_SERVICES in services_over_cap;
 *   - per minute over the last JOIN_STATUS_HIT_COLS minutes, the samples
 *     by join outcome (hit ratio and misses by reason).
 * sizeof(struct join_status) is about 180 KiB whatever the input. */
#ifndef SP_JOIN_STATUS_H
#define SP_JOIN_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "join_label.h"
#include "sp_batch.h"
#include "sp_jw.h"

#define JOIN_STATUS_COLS 30
#define JOIN_STATUS_HIT_COLS 15
#define JOIN_STATUS_HIT_COL_MS 60000
#define JOIN_STATUS_MAX_KEYS 256
#define JOIN_STATUS_MAX_SERVICES 16
#define JOIN_STATUS_NAME_MAX 128

struct join_status;

/* window_ms: how far back the CPU bars look (>= JOIN_STATUS_COLS ms). */
struct join_status *join_status_new(int64_t window_ms);
void join_status_free(struct join_status *js);
/* What join_status_new allocates (fixed; the tests hold it to the bound). */
size_t join_status_size(void);

/* After labelling p: its labelled CPU attachments and the outcome counts
 * of the whole profile (st). now_ms: a monotonic clock. */
void join_status_note(struct join_status *js, const struct sp_profile *p,
                      const struct join_label_stats *st, uint64_t now_ms);

/* Members "window_s", "value_type", "services", "hit_ratio", "misses". */
void join_status_write(const struct join_status *js, struct sp_jw *w, uint64_t now_ms);

#endif
