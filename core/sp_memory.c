/* The process-wide memory ceiling: per-class byte counters, a soft and a
 * hard mark.
 *
 * Why one ceiling instead of per-component limits alone: a sidecar has one
 * container memory limit, and a flood on one transport must not take memory
 * another part needs (the exporter's queue, held profiles). Each bounded
 * structure still has its own limit; this is the sum over all of them.
 * Atomic read-modify-writes (relaxed: the counters order nothing else):
 * the loop thread charges most, but the telemetry thread's HTTP servers
 * charge the (tiny) bodies they receive too, and /metrics reads them. */
#include "sp_memory.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "sp_err.h"
#include "sp_metrics.h"

static const char *const sp_mem_class_names[SP_MEM_CLASS_COUNT] = {
    "bodies", "batches", "profiles", "export", "index",
};

static struct {
    _Atomic uint64_t limit;
    _Atomic uint64_t soft;
    _Atomic uint64_t used;
    _Atomic uint64_t peak;
    _Atomic uint64_t by_class[SP_MEM_CLASS_COUNT];
    _Atomic uint64_t refused[SP_MEM_CLASS_COUNT];
} sp_mem = {
    .limit = SP_MEMORY_DEFAULT_LIMIT,
    .soft = SP_MEMORY_DEFAULT_LIMIT / 100 * SP_MEMORY_SOFT_PERCENT,
};

#define SP_MEM_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SP_MEM_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static void sp_mem_check_class(enum sp_mem_class c)
{
    if ((unsigned)c >= SP_MEM_CLASS_COUNT) {
        fprintf(stderr, "spanprof: sp_memory: class %d out of range\n", (int)c);
        abort();
    }
}

const char *sp_mem_class_name(enum sp_mem_class c)
{
    return (unsigned)c < SP_MEM_CLASS_COUNT ? sp_mem_class_names[c] : "?";
}

void sp_memory_set_limit(uint64_t limit)
{
    if (limit == 0)
        limit = SP_MEMORY_DEFAULT_LIMIT;
    SP_MEM_STORE(sp_mem.limit, limit);
    SP_MEM_STORE(sp_mem.soft, limit / 100 * SP_MEMORY_SOFT_PERCENT);
}

uint64_t sp_memory_limit(void)
{
    return SP_MEM_LOAD(sp_mem.limit);
}

uint64_t sp_memory_soft_mark(void)
{
    return SP_MEM_LOAD(sp_mem.soft);
}

#define SP_MEM_ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define SP_MEM_SUB(x, v) atomic_fetch_sub_explicit(&(x), (v), memory_order_relaxed)

static void sp_mem_peak(uint64_t used)
{
    uint64_t peak = SP_MEM_LOAD(sp_mem.peak);
    while (used > peak && !atomic_compare_exchange_weak_explicit(
                              &sp_mem.peak, &peak, used, memory_order_relaxed,
                              memory_order_relaxed)) {
    }
}

int sp_memory_reserve(enum sp_mem_class c, size_t n)
{
    sp_mem_check_class(c);
    uint64_t limit = SP_MEM_LOAD(sp_mem.limit);
    uint64_t used = SP_MEM_LOAD(sp_mem.used);
    do {
        if (n > limit || used + n > limit) {
            SP_MEM_ADD(sp_mem.refused[c], 1);
            return SP_EFULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(&sp_mem.used, &used, used + n,
                                                    memory_order_relaxed, memory_order_relaxed));
    SP_MEM_ADD(sp_mem.by_class[c], n);
    sp_mem_peak(used + n);
    return SP_OK;
}

void sp_memory_charge(enum sp_mem_class c, size_t n)
{
    sp_mem_check_class(c);
    uint64_t used = SP_MEM_ADD(sp_mem.used, n) + n;
    SP_MEM_ADD(sp_mem.by_class[c], n);
    sp_mem_peak(used);
}

void sp_memory_release(enum sp_mem_class c, size_t n)
{
    sp_mem_check_class(c);
    uint64_t had = SP_MEM_SUB(sp_mem.by_class[c], n);
    if (n > had) {
        /* A release without its charge is a bookkeeping bug: the ceiling
         * would drift and stop meaning anything. */
        fprintf(stderr, "spanprof: sp_memory: releasing %zu bytes of class %s which holds %llu\n",
                n, sp_mem_class_names[c], (unsigned long long)had);
        abort();
    }
    SP_MEM_SUB(sp_mem.used, n);
}

void sp_memory_move(enum sp_mem_class from, enum sp_mem_class to, size_t n)
{
    if (from == to || n == 0)
        return;
    sp_memory_release(from, n);
    sp_memory_charge(to, n);
}

bool sp_memory_admit(size_t n)
{
    return SP_MEM_LOAD(sp_mem.used) + n <= SP_MEM_LOAD(sp_mem.soft);
}

uint64_t sp_memory_used(void)
{
    return SP_MEM_LOAD(sp_mem.used);
}

uint64_t sp_memory_used_by(enum sp_mem_class c)
{
    sp_mem_check_class(c);
    return SP_MEM_LOAD(sp_mem.by_class[c]);
}

uint64_t sp_memory_peak(void)
{
    return SP_MEM_LOAD(sp_mem.peak);
}

static double sp_mem_metric_class(void *ud)
{
    return (double)sp_memory_used_by((enum sp_mem_class)(intptr_t)ud);
}

static double sp_mem_metric_refused(void *ud)
{
    return (double)SP_MEM_LOAD(sp_mem.refused[(intptr_t)ud]);
}

static double sp_mem_metric_limit(void *ud)
{
    return (double)(ud ? sp_memory_soft_mark() : sp_memory_limit());
}

static double sp_mem_metric_peak(void *ud)
{
    (void)ud;
    return (double)sp_memory_peak();
}

void sp_memory_register_metrics(void)
{
    char labels[64];
    for (int c = 0; c < SP_MEM_CLASS_COUNT; c++) {
        snprintf(labels, sizeof(labels), "class=\"%s\"", sp_mem_class_names[c]);
        sp_gauge_fn_any_thread("spanprof_memory_used_bytes",
                               "Bytes charged to the memory ceiling (service.memory_limit), by "
                               "class",
                               labels, sp_mem_metric_class, (void *)(intptr_t)c);
        sp_counter_fn_any_thread("spanprof_memory_refused_total",
                                 "Reservations refused because they would pass the memory ceiling",
                                 labels, sp_mem_metric_refused, (void *)(intptr_t)c);
    }
    sp_gauge_fn_any_thread("spanprof_memory_limit_bytes",
                           "The memory ceiling: mark=\"hard\" is never passed, above "
                           "mark=\"soft\" receivers refuse new requests",
                           "mark=\"hard\"", sp_mem_metric_limit, NULL);
    sp_gauge_fn_any_thread("spanprof_memory_limit_bytes", NULL, "mark=\"soft\"",
                           sp_mem_metric_limit, (void *)1);
    sp_gauge_fn_any_thread("spanprof_memory_peak_bytes",
                           "Highest total charged to the memory ceiling", NULL, sp_mem_metric_peak,
                           NULL);
}

void sp_memory_reset(void)
{
    for (int c = 0; c < SP_MEM_CLASS_COUNT; c++) {
        SP_MEM_STORE(sp_mem.by_class[c], 0);
        SP_MEM_STORE(sp_mem.refused[c], 0);
    }
    SP_MEM_STORE(sp_mem.used, 0);
    SP_MEM_STORE(sp_mem.peak, 0);
}
