/* Internals of the configuration loader, shared by its three files:
 *
 *   sp_conf_yaml.c     YAML text -> bounded node tree with file:line:col on
 *                      every node, ${env:...} expansion, anchors/aliases under
 *                      a node budget, merge of several files
 *   sp_conf_map.c      node tree -> component config structs through their
 *                      struct sp_conf_key tables; scalar parsers; positions
 *                      for sp_conf_errorf; printing a struct back as YAML
 *   sp_conf_service.c  the service document: components, pipelines, graph
 *                      checks, print-config and the reference
 *   sp_conf_otelcol.c  the Collector's components and keys spanprof lacks,
 *                      with what to do instead
 *
 * Every node, string and filled struct of one load lives in one arena,
 * released by sp_service_conf_free(). */
#ifndef SP_CONF_INTERNAL_H
#define SP_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_buf.h"
#include "sp_config.h"

/* Bounds on what one configuration file may cost. */
#define SP_CONF_MAX_FILE_BYTES (4u << 20)  /* bigger files are refused unread */
#define SP_CONF_MAX_DEPTH 64               /* nesting of mappings and sequences */
#define SP_CONF_MAX_NODES 200000           /* nodes per file, aliases counted expanded */
#define SP_CONF_MAX_ANCHORS 1000           /* distinct anchors per file */
#define SP_CONF_MAX_SCALAR (1u << 20)      /* one scalar after ${env:} expansion */
#define SP_CONF_MAX_ERRORS 100             /* diagnostics kept; the rest are counted */
#define SP_CONF_ARENA_LIMIT (256u << 20)   /* everything a load may allocate */

#define SP_CONF_EMBEDDED_NAME "<embedded default>"

enum sp_node_kind {
    SP_NODE_NULL = 0, /* `key:` with no value, `~`, `null` */
    SP_NODE_SCALAR,
    SP_NODE_MAP,
    SP_NODE_SEQ,
};

struct sp_node;

struct sp_node_pair {
    const char *key;
    struct sp_conf_pos key_pos;
    struct sp_node *value;
};

struct sp_node {
    enum sp_node_kind kind;
    struct sp_conf_pos pos;
    /* SCALAR: the text after ${env:} expansion, NUL-terminated ("" for NULL). */
    const char *str;
    size_t len;
    bool quoted;
    /* MAP: pairs in document order (merged maps: first file's order, new keys appended). */
    struct sp_node_pair *pairs;
    size_t npairs;
    /* SEQ */
    struct sp_node **items;
    size_t nitems;
    /* Nodes in this subtree with aliases counted at full size: the budget
     * that keeps an alias bomb from costing exponential time later. */
    uint64_t weight;
};

/* Parses one YAML document from data (len bytes, not necessarily
 * NUL-terminated). file is the name used in messages (copied). An empty
 * document gives an empty map. Returns 0, or SP_EINVAL with the problems
 * in d (and *root NULL). */
int sp_yaml_parse(struct sp_arena *a, const char *file, const char *data, size_t len,
                  struct sp_diag *d, struct sp_node **root);

/* The merge of two trees (either may be NULL): maps key by key recursively,
 * over wins for scalars and sequences; a NULL over a map keeps the map.
 * Nodes are shared, not copied; base and over are left intact. */
struct sp_node *sp_node_merge(struct sp_arena *a, struct sp_node *base, struct sp_node *over);

/* The value of key in a map node (NULL when absent or node is not a map);
 * pair_out, when given, receives the pair (for the key's position). */
struct sp_node *sp_node_get(const struct sp_node *map, const char *key,
                            const struct sp_node_pair **pair_out);

/* "a scalar", "a mapping", "a sequence", "nothing". */
const char *sp_node_kind_name(const struct sp_node *n);

/* Expands ${env:NAME}, ${env:NAME:-default} and $$ in s into out. Errors go
 * to d at pos (col adjusted when col_exact). Returns 0 or SP_EINVAL. */
int sp_conf_expand_env(const char *s, size_t len, struct sp_buf *out, struct sp_diag *d,
                       const struct sp_conf_pos *pos, bool col_exact);


/* Appends value to out for a message: quoted, control characters escaped,
 * long values cut with "...". */
void sp_conf_quote(struct sp_buf *out, const char *value, size_t len);

/* One configuration text: data (len bytes) when given, else the file name
 * is read. name is what messages show. */
struct sp_conf_source {
    const char *name;
    const char *data;
    size_t len;
};

/* sp_service_conf_load() over sources merged in order (n >= 1); the
 * embedded default and the fuzz target use it without a file. */
int sp_service_conf_load_sources(const struct sp_component_set *types,
                                 const struct sp_conf_source *src, size_t n,
                                 struct sp_service_conf **out, struct sp_diag *diag);

/* Like sp_conf_print_scalar, for an item of a flow sequence `[a, b]`. */
void sp_conf_print_scalar_flow(struct sp_buf *out, const char *s);

/* Fills base (zeroed by the caller) from node (a map, NULL node or NULL for
 * absent) following keys; applies defaults, rejects unknown keys, records
 * positions in ctx. path is the key path of node relative to the
 * component ("" at the top). Problems go to d; returns the number of
 * errors added. */
size_t sp_conf_fill(struct sp_conf_ctx *ctx, const struct sp_conf_key *keys, size_t nkeys,
                    void *base, const struct sp_node *node, const char *path,
                    const struct sp_conf_pos *owner_pos, struct sp_diag *d);

/* Writes the filled struct as YAML at indent (spaces), secrets redacted. */
void sp_conf_print_keys(struct sp_buf *out, const struct sp_conf_key *keys, size_t nkeys,
                        const void *base, int indent);
/* Appends s as a YAML scalar that reads back as s (quoted when needed; `$`
 * doubled so the output is itself a valid config). */
void sp_conf_print_scalar(struct sp_buf *out, const char *s);
void sp_conf_format_duration(char *buf, size_t n, int64_t ms);
void sp_conf_format_size(char *buf, size_t n, uint64_t bytes);

/* Calls fn for every SP_CONF_SECRET value in the struct. */
void sp_conf_each_secret(const struct sp_conf_key *keys, size_t nkeys, const void *base,
                         void (*fn)(const char *secret));

/* Appends the reference rows of keys (Markdown table rows) under prefix. */
void sp_conf_reference_keys(struct sp_buf *out, const struct sp_conf_key *keys, size_t nkeys,
                            const char *prefix);

/* ---- the OpenTelemetry Collector's components and keys (sp_conf_otelcol.c) ---- */

enum sp_otelcol_action {
    SP_OTELCOL_IGNORE_INFO = 0, /* accepted, ignored, one info line: nothing changes */
    SP_OTELCOL_IGNORE_WARN,     /* accepted, ignored, a warning saying what does the job */
    SP_OTELCOL_ERROR,           /* ignoring it would change or lose data: an error with a hint */
};

struct sp_otelcol_component {
    enum sp_kind kind;
    const char *type;
    enum sp_otelcol_action action;
    const char *hint;
};

struct sp_otelcol_key {
    const char *key;
    const char *parent; /* the block holding it (a component's type at its top), NULL = any */
    bool ignore;        /* accepted with a warning; else an error */
    const char *hint;   /* spanprof's equivalent, or that it has none */
};

/* A Collector component type spanprof does not have, or NULL. */
const struct sp_otelcol_component *sp_otelcol_component(enum sp_kind kind, const char *type);
/* A Collector key spanprof does not have, found in block `where`
 * ("receivers.otlp.protocols.grpc"), or NULL. */
const struct sp_otelcol_key *sp_otelcol_key(const char *key, const char *where);

#endif
