/* The component interface.
 *
 * Every receiver, processor, exporter and extension is one
 * `const struct sp_component_type`, defined at the bottom of its main file
 * and listed in service/sp_registry.c (a static table, no dlopen). The core owns
 * parsing, lifecycle and ordering; components never see the pipeline graph,
 * only their own `next` consumers through sp_component_emit().
 *
 * Lifecycle (the OpenTelemetry Collector's):
 *   create   parse + validate the filled config struct, allocate; no I/O.
 *   start    exporters first, then processors, then receivers; bind ports,
 *            arm timers. May fail with a message (e.g. port in use).
 *   consume  processors and exporters take a batch (see sp_batch.h).
 *   shutdown receivers first (stop accepting, answer in-flight), then
 *            processors (flush what they hold downstream), then exporters
 *            (drain queues until the deadline). Asynchronous like uv_close:
 *            the component calls done(comp) when finished, exactly once
 *            per call (the service checks it with SP_ASSERT).
 *            Must be safe without start and safe to call twice.
 *   destroy  free everything; after shutdown's done (or if never started).
 * All callbacks run on the loop thread. */
#ifndef SP_COMPONENT_H
#define SP_COMPONENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sp_batch.h"
#include "sp_conf.h"
#include "sp_err.h"

enum sp_kind {
    SP_KIND_RECEIVER = 0,
    SP_KIND_PROCESSOR = 1,
    SP_KIND_EXPORTER = 2,
    SP_KIND_EXTENSION = 3,
};

const char *sp_kind_name(enum sp_kind k); /* "receiver", ... */

/* Type flags. */
#define SP_COMP_MUTATES 0x1u /* consume() changes the batch: give it a private copy when shared */

struct sp_component;
typedef void (*sp_done_fn)(struct sp_component *comp);

enum sp_service_state {
    SP_SERVICE_STARTING = 0,
    SP_SERVICE_RUNNING = 1,
    SP_SERVICE_STOPPING = 2,
};

/* What the running service offers a component at start(). */
struct sp_host {
    /* Read with sp_host_state(): the telemetry thread reads it too. */
    _Atomic int state;
    uv_loop_t *loop;
    /* Shutdown deadline in uv_now() milliseconds; 0 while running. */
    uint64_t shutdown_deadline_ms;
    /* Another component by id (e.g. an exporter asks for the join), NULL if absent. */
    struct sp_component *(*find)(struct sp_host *host, const char *id);
};

static inline enum sp_service_state sp_host_state(const struct sp_host *host)
{
    return (enum sp_service_state)atomic_load_explicit(&host->state, memory_order_relaxed);
}
static inline void sp_host_set_state(struct sp_host *host, enum sp_service_state s)
{
    atomic_store_explicit(&host->state, (int)s, memory_order_relaxed);
}

struct sp_component_type {
    const char *name;     /* the type, as written in the YAML: "otlp" */
    enum sp_kind kind;
    unsigned signals;     /* SP_SIGNAL_BIT(...) mask; 0 for extensions */
    unsigned flags;       /* SP_COMP_* */
    const char *doc;      /* one line, for the reference */
    const struct sp_conf_key *conf_keys;
    size_t conf_key_count;
    size_t conf_size;     /* sizeof the config struct the keys fill */

    int (*create)(struct sp_component *comp, struct sp_err *err);
    int (*start)(struct sp_component *comp, struct sp_host *host, struct sp_err *err);
    /* Processors and exporters. Returns SP_OK (the component took what it
     * needs, references included), SP_EFULL/SP_ERETRY (refused, nothing kept:
     * the receiver answers 429/UNAVAILABLE) or another negative code
     * (permanent failure). The caller keeps its own reference either way. */
    int (*consume)(struct sp_component *comp, struct sp_batch *batch);
    /* Processors and exporters, optional: could consume() take about
     * `bytes` more of signal `sig` now? SP_OK, or the code consume() would
     * return (SP_EFULL, SP_ERETRY, SP_ESHUTDOWN). Receivers ask before they
     * read or decode a request, so it must cost a few comparisons and
     * change nothing. NULL: an exporter is always ready; a processor is as
     * ready as its own next stages. */
    int (*ready)(struct sp_component *comp, enum sp_signal sig, size_t bytes);
    void (*shutdown)(struct sp_component *comp, sp_done_fn done);
    void (*destroy)(struct sp_component *comp);
};

struct sp_consumers {
    struct sp_component **v;
    size_t n;
};

struct sp_component {
    const struct sp_component_type *type;
    char *id;            /* "type" or "type/name" */
    void *conf;          /* conf_size bytes filled from the YAML (core-owned) */
    struct sp_conf_ctx *conf_ctx; /* for sp_conf_errorf() in create() */
    void *ctx;           /* the component's own state, set by create() */
    uv_loop_t *loop;     /* set before start() */
    struct sp_host *host;
    /* Next stages per signal (fan-out list). Set by the core before start(). */
    struct sp_consumers next[SP_SIGNAL_COUNT];
    /* Metrics label for this instance: `component="otlp"` */
    char *metric_labels;
    /* Set by sp_component_emit() when a next stage refused: the id of the
     * stage where the refusal started (the exporter whose queue is full,
     * not the processor that passed its answer on). Core-owned. */
    const char *refused_by;
    /* The service's: shutdown's done() has run (checked: exactly once). */
    bool stop_done;
};

/* Hands a batch to every next consumer of its signal. The caller keeps its
 * reference. Returns SP_OK when all accepted; otherwise the worst code
 * (SP_EFULL before other errors) and err (may be NULL) says who refused.
 * A component with no next consumer for the signal gets SP_OK (dropped is
 * counted by the core). */
int sp_component_emit(struct sp_component *comp, struct sp_batch *batch, struct sp_err *err);

/* Can the pipeline after comp take a request of about `bytes` (as received)
 * of signal sig? Asked by receivers before reading or decoding it, so that
 * a refused request costs its headers only. SP_OK; SP_EFULL when the memory
 * ceiling's soft mark would be passed or a next stage's queue is full;
 * another code from a stage's ready(). err (may be NULL) names who refused.
 * Never changes anything. */
int sp_component_ready(struct sp_component *comp, enum sp_signal sig, size_t bytes,
                       struct sp_err *err);

/* The pipeline half of sp_component_ready (the next stages' ready(), not
 * the memory ceiling): asked again for a request admitted at its headers
 * once its body is in and before it is inflated and decoded, because the
 * next stages may have filled meanwhile. The body's bytes are charged
 * already, so the soft mark is not asked again (it would count them twice
 * and refuse what memory admitted). Same codes and err as above. */
int sp_component_pipeline_ready(struct sp_component *comp, enum sp_signal sig,
                                struct sp_err *err);

/* A table of component types. The service's is service/sp_registry.c; the
 * config loader resolves type names through the one it is handed, so it
 * never calls up into the service. */
struct sp_component_set {
    const struct sp_component_type *const *types;
    size_t count;
};
/* The type of that kind and name, or NULL. */
const struct sp_component_type *sp_component_set_find(const struct sp_component_set *set,
                                                      enum sp_kind kind, const char *name);

#endif
