/* One memory ceiling for the whole process (service.memory_limit).
 *
 * Every byte spanprof holds because of its input is charged to one of a few
 * classes: request bodies being received (every transport), decoded batches,
 * profiles the join holds, the exporters' queues and payloads, the span
 * index. Two marks on the sum:
 *   soft (80 % of the limit)  receivers refuse new work above it, answered
 *                             from the request's headers alone (429/503 with
 *                             Retry-After, gRPC RESOURCE_EXHAUSTED), so the
 *                             pipeline drains before anything has to fail;
 *   hard (the limit)          sp_memory_reserve() refuses with SP_EFULL: the
 *                             sum never passes it by spanprof's own
 *                             accounting.
 * Per-component bounds (max_inflight_bytes, max_request_body_size, queue
 * sizes) stay as finer limits inside the ceiling.
 *
 * Charges and releases run on the loop thread; the counters are atomics so
 * the telemetry thread (health, /metrics) may read them at any time. */
#ifndef SP_MEMORY_H
#define SP_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sp_mem_class {
    SP_MEM_BODIES = 0,   /* request bodies being received or inflated */
    SP_MEM_BATCHES = 1,  /* decoded batches on their way through the pipeline */
    SP_MEM_PROFILES = 2, /* profiles the join holds for their spans */
    SP_MEM_EXPORT = 3,   /* batches in the exporters' queues, encoded payloads */
    SP_MEM_INDEX = 4,    /* the join's span index */
    SP_MEM_CLASS_COUNT = 5,
};

/* The default ceiling: sized for a sidecar. */
#define SP_MEMORY_DEFAULT_LIMIT ((uint64_t)256 << 20)
/* The soft mark, in percent of the limit. */
#define SP_MEMORY_SOFT_PERCENT 80

const char *sp_mem_class_name(enum sp_mem_class c); /* "bodies", ... */

/* Sets the ceiling (bytes; 0 = SP_MEMORY_DEFAULT_LIMIT). Charges already
 * made are kept. */
void sp_memory_set_limit(uint64_t limit);
uint64_t sp_memory_limit(void);
uint64_t sp_memory_soft_mark(void);

/* Takes n bytes for class c, or returns SP_EFULL (and counts the refusal)
 * when the total would pass the hard mark. */
int sp_memory_reserve(enum sp_mem_class c, size_t n);
/* Takes n bytes whatever the total (memory already allocated that cannot
 * be refused, e.g. a fixed table sized at start). */
void sp_memory_charge(enum sp_mem_class c, size_t n);
/* Gives back n bytes reserved or charged before for class c. */
void sp_memory_release(enum sp_mem_class c, size_t n);
/* Moves n charged bytes from one class to another (a batch entering a
 * queue); the total does not change. */
void sp_memory_move(enum sp_mem_class from, enum sp_mem_class to, size_t n);

/* May new work of about n bytes be taken? False when the total plus n would
 * pass the soft mark: the receiver refuses the request before reading it. */
bool sp_memory_admit(size_t n);

uint64_t sp_memory_used(void);
uint64_t sp_memory_used_by(enum sp_mem_class c);
uint64_t sp_memory_peak(void);

/* Registers the spanprof_memory_* series (at service start). */
void sp_memory_register_metrics(void);

/* Forgets every charge and the peak (between unit tests). */
void sp_memory_reset(void);

#endif
