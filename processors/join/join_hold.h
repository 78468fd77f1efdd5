/* The join's hold: profiles waiting for the spans their samples name
 * (private to processors/join).
 *
 * Why: OpenTelemetry SDKs export a span when it ends, but the CPU samples
 * that carry its id are taken while it runs, so a profile of a long request
 * reaches us long before the request's spans. A profile whose span ids do
 * not all resolve to a local root is held, compactly (the caller's payload:
 * encoded bytes, never the decoded tree) together with its open ids, and
 * released as soon as every id resolves, or when nothing more can be
 * expected, or at max_hold.
 *
 * Release rule, per open id (see ARCHITECTURE.md, "The join's hold"):
 *   - root unknown (the span arrived, an ancestor did not): its trace is
 *     sampled and its local root is exported when the request ends, so it
 *     is waited for up to max_hold;
 *   - span unknown: the span is still running, or it is never exported
 *     (unsampled trace, not exported by the app). The profiles of the same
 *     stream (one process: its runtime id) tell which: while newer profiles
 *     still name the id the span runs; once a newer profile arrives without
 *     it, its own samples have stopped, and it is given up a grace later.
 *     The grace (hold_grace) covers a parent whose samples stop when its
 *     work moves to a child span: its span comes only when the request
 *     ends. Each stream also learns how late its spans come after their
 *     ids stop showing; twice the largest lateness of the last 2 x
 *     max_hold extends the grace when it is longer. A stream that goes quiet (no newer profile within its
 *     period + delay) gives its ids up the same way.
 * A profile is released when every open id resolved (RESOLVED), when every
 * id still open is given up (NEVER_EXPORTED), at max_hold (EXPIRED), early
 * to keep max_bytes/max_profiles (BOUND) and at shutdown (SHUTDOWN).
 *
 * No I/O and no timers: the caller feeds arrivals and the clock, and asks
 * for releases and for the next deadline. Loop thread only. */
#ifndef SP_JOIN_HOLD_H
#define SP_JOIN_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "join_index.h"
#include "join_label.h"

enum join_release_reason {
    JOIN_REL_RESOLVED = 0,   /* every id resolved */
    JOIN_REL_NEVER_EXPORTED, /* the ids still open ended and were not exported in time */
    JOIN_REL_EXPIRED,        /* held max_hold */
    JOIN_REL_BOUND,          /* released early: max_held_bytes / max_held_profiles */
    JOIN_REL_SHUTDOWN,
    JOIN_REL_COUNT
};

extern const char *const join_release_names[JOIN_REL_COUNT];

struct join_hold_conf {
    int64_t max_hold_ms;
    int64_t delay_ms; /* join_delay: an ended span's export delay */
    int64_t grace_ms; /* hold_grace: wait after an id stops showing */
    size_t max_bytes;
    size_t max_profiles;
};

struct join_released {
    void *payload;
    enum join_release_reason reason;
    int64_t held_ms;
    /* Samples of ids released without a local root, by reason (RESOLVED
     * stays 0): an id given up counts as NEVER_EXPORTED whatever the
     * profile's reason. */
    uint64_t unresolved[JOIN_REL_COUNT];
};

struct join_hold;

struct join_hold *join_hold_create(const struct join_hold_conf *conf);
/* Frees what is held, payloads through free_payload. */
void join_hold_destroy(struct join_hold *h, void (*free_payload)(void *));

/* A profile with span-labelled samples of stream `stream` arrived at now;
 * ids are its open ids. Updates what the held profiles of that stream know
 * about their ids (still running / ended). Call before join_hold_add for
 * the same profile. window_ms: its window length (0: unknown). */
void join_hold_observe(struct join_hold *h, uint64_t stream, const struct join_open_id *ids,
                       size_t n, int64_t window_ms, int64_t now);

/* True when some id can still arrive (worth holding the profile for). */
bool join_hold_worth(const struct join_open_id *ids, size_t n);

/* What holding a payload of `bytes` waiting for n_ids ids costs against
 * max_bytes (the payload plus the hold's own bookkeeping). */
size_t join_hold_cost(size_t bytes, size_t n_ids);

/* Pops the oldest held profile when `bytes` (a join_hold_cost) more would
 * pass max_bytes or max_profiles (reason BOUND); false when there is room. */
bool join_hold_pop_for_room(struct join_hold *h, size_t bytes, int64_t now,
                            struct join_released *out);

/* Holds payload (bytes: what it costs) waiting for ids. 0 or SP_ENOMEM. */
int join_hold_add(struct join_hold *h, void *payload, size_t bytes, uint64_t stream,
                  const struct join_open_id *ids, size_t n, int64_t now);

/* A span id was indexed: profiles waiting for it are re-resolved at the
 * next join_hold_next_release. Cheap when nothing waits for it. */
void join_hold_span_arrived(struct join_hold *h, uint64_t id);
bool join_hold_waiting(const struct join_hold *h);
/* True when an arrival made some held profile worth re-resolving. */
bool join_hold_dirty(const struct join_hold *h);

/* Re-resolves the profiles whose ids arrived, then pops one profile due
 * for release; false when none is. Call until false. */
bool join_hold_next_release(struct join_hold *h, const struct join_index *ix, unsigned max_depth,
                            int64_t now, struct join_released *out);

/* Pops the oldest held profile whatever its state (reason SHUTDOWN). */
bool join_hold_pop_any(struct join_hold *h, int64_t now, struct join_released *out);

/* Milliseconds until the next release is due (0: now), -1 when nothing is
 * held. */
int64_t join_hold_next_due(const struct join_hold *h, int64_t now);

size_t join_hold_count(const struct join_hold *h);
size_t join_hold_bytes(const struct join_hold *h);

#endif
