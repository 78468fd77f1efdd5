/* Loading the service configuration (engine-only; components see sp_conf.h).
 *
 * sp_service_conf_load() reads one or more YAML files (later ones merge over
 * earlier ones, maps key by key, like otelcol's --config), or the embedded
 * default when none is given; expands ${env:NAME}, ${env:NAME:-default} and
 * $$ in scalars; fills each component's config struct through its key table;
 * and checks the graph: pipelines name defined components, receivers and
 * exporters support the pipeline's signal, components used by no pipeline
 * (warning). Every problem is collected, not just the first, as
 * `file:line:col: message`. No I/O beyond reading the files. */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"
#include "sp_component.h"
#include "sp_conf.h"

/* Collected diagnostics: one line each, "file:line:col: message" for errors,
 * "file:line:col: warning: message" for warnings and "file:line:col: info:
 * message" for notes that need no action. */
struct sp_diag {
    size_t errors;
    size_t warnings;
    size_t infos;
    struct sp_buf text;
};
void sp_diag_error(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sp_diag_warn(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sp_diag_info(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sp_diag_free(struct sp_diag *d);

struct sp_conf_component {
    char *id;                 /* "otlp", "datadog/eu" */
    enum sp_kind kind;
    const struct sp_component_type *type;
    void *conf;               /* type->conf_size bytes, filled */
    struct sp_conf_ctx *ctx;  /* positions of the keys, for sp_conf_errorf */
    struct sp_conf_pos pos;   /* where the id was defined */
    bool used;                /* named by a pipeline or service.extensions */
};

struct sp_conf_pipeline {
    char *name;               /* "traces", "profiles/eu" */
    enum sp_signal signal;
    struct sp_conf_component **receivers;
    size_t receiver_count;
    struct sp_conf_component **processors;
    size_t processor_count;
    struct sp_conf_component **exporters;
    size_t exporter_count;
    struct sp_conf_pos pos;
};

struct sp_service_conf {
    struct sp_conf_component *components;
    size_t component_count;
    struct sp_conf_pipeline *pipelines;
    size_t pipeline_count;
    struct sp_conf_component **extensions; /* service.extensions, in order */
    size_t extension_count;
    int log_level;                /* enum sp_log_level */
    int log_format;               /* enum sp_log_format */
    char *metrics_address;        /* service.telemetry.metrics.address, "" = off */
    int64_t shutdown_timeout_ms;  /* service.shutdown_timeout, default 10s */
    uint64_t memory_limit;        /* service.memory_limit, bytes (sp_memory.h) */
    bool from_embedded_default;   /* no --config: the compiled-in default */
    void *internal;               /* arena and YAML tree */
};

/* Component types are looked up in types (the service passes its registry).
 * files may be empty (n == 0): the embedded default config/default.yaml is
 * used. Returns 0, or SP_EINVAL with every problem in diag (warnings are in
 * diag either way). *out is set only on success. */
int sp_service_conf_load(const struct sp_component_set *types, const char *const *files,
                         size_t n, struct sp_service_conf **out, struct sp_diag *diag);
void sp_service_conf_free(struct sp_service_conf *conf);

/* True when msg already starts with "file:" for one of the files this
 * configuration was read from (e.g. a component's sp_conf_errorf() message),
 * so the caller does not prefix a second position. */
bool sp_service_conf_msg_has_pos(const struct sp_service_conf *conf, const char *msg);

/* The effective configuration as YAML (after merge and env expansion),
 * every SP_CONF_SECRET value replaced by "[REDACTED]". */
int sp_service_conf_print(const struct sp_service_conf *conf, struct sp_buf *out);

/* Registers the values of every SP_CONF_SECRET key with sp_log_add_secret. */
void sp_service_conf_register_secrets(const struct sp_service_conf *conf);

/* The configuration reference (Markdown) generated from the key table of
 * every component in types: `spanprof reference`. */
int sp_conf_reference(const struct sp_component_set *types, struct sp_buf *out);

/* The embedded default (config/default.yaml), NUL-terminated. */
extern const char sp_default_config_yaml[];
extern const size_t sp_default_config_yaml_len;

#endif
