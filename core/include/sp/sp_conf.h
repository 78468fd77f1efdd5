/* Declarative component configuration.
 *
 * A component describes its configuration as a table of struct sp_conf_key
 * (name, type, offsetof into its config struct, default, doc), like nginx
 * directives or fluent-bit config maps. The core parses the YAML, expands
 * ${env:...}, merges files, applies defaults, fills the struct, rejects
 * unknown keys (with the closest valid key) and reports every error as
 * `file:line:col: message`. The same tables generate the configuration
 * reference in the README (`spanprof reference`), so docs cannot drift.
 *
 * Memory: strings and lists stored into a config struct are owned by the
 * service's config arena and live as long as the component; components must
 * not free them. */
#ifndef SP_CONF_H
#define SP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_err.h"

enum sp_conf_type {
    SP_CONF_BOOL,      /* bool */
    SP_CONF_INT,       /* int64_t; accepts decimal integers */
    SP_CONF_SIZE,      /* uint64_t bytes; accepts 123, 64KiB, 20MiB, 1GiB, 5MB */
    SP_CONF_DURATION,  /* int64_t milliseconds; accepts 10s, 500ms, 2m, 1h, 1m30s */
    SP_CONF_STRING,    /* char * (NULL when unset and no default) */
    SP_CONF_SECRET,    /* char *, never printed: redacted in print-config, logs, errors */
    SP_CONF_STRLIST,   /* struct sp_strlist; YAML sequence of scalars */
    SP_CONF_STRMAP,    /* struct sp_strmap; YAML mapping of scalar to scalar */
    SP_CONF_BLOCK,     /* nested struct at offset, described by sub/sub_count */
    SP_CONF_BLOCKLIST, /* struct sp_blocklist; YAML sequence of mappings, each sub_size bytes */
};

/* Key flags. */
#define SP_CONF_REQUIRED 0x1u
/* On SP_CONF_BLOCK: the block may be absent; its struct's first member is a
 * `bool present` set when the YAML has the key (e.g. otlp protocols.grpc).
 * An explicit `grpc:` with no value counts as present with defaults. */
#define SP_CONF_OPTIONAL_BLOCK 0x2u
/* On SP_CONF_STRMAP: the values are secrets (request headers carrying
 * credentials): redacted by print-config and registered with the logger
 * like SP_CONF_SECRET values; the keys stay readable. */
#define SP_CONF_SECRET_VALUES 0x4u

struct sp_strlist {
    char **v;
    size_t n;
};

struct sp_strmap {
    char **keys;
    char **values;
    size_t n;
};

struct sp_blocklist {
    void *items; /* n items of sub_size bytes each */
    size_t n;
};

struct sp_conf_key {
    const char *name;
    enum sp_conf_type type;
    size_t offset;
    const char *defval;                /* default as YAML scalar text, or NULL */
    const struct sp_conf_key *sub;     /* for BLOCK and BLOCKLIST */
    size_t sub_count;
    size_t sub_size;                   /* for BLOCKLIST: sizeof each item */
    unsigned flags;
    const char *doc;                   /* one line, for the reference */
};

#define SP_CONF_END_COUNT(tbl) (sizeof(tbl) / sizeof((tbl)[0]))

/* Where a value came from, for validation errors raised by a component's
 * create() after the core filled the struct. */
struct sp_conf_pos {
    const char *file;
    int line;
    int col;
};

/* Positions of the keys of one component, recorded by the config loader
 * (config/) while it fills the struct and read by sp_conf_errorf().
 * Components hold a pointer and never look inside. */
struct sp_arena;
struct sp_conf_posent {
    struct sp_conf_posent *next;
    const char *path;            /* relative to the component: "protocols.grpc.endpoint" */
    struct sp_conf_pos pos;      /* the value's position (the key's when no value) */
};

struct sp_conf_ctx {
    struct sp_arena *arena;      /* the loader's arena, for recording entries */
    const char *prefix;          /* "receivers.otlp" */
    struct sp_conf_pos pos;      /* where the component id is defined */
    struct sp_conf_posent *entries;
};

/* Component-level validation: a component's create() reports a bad value
 * with the position of the key that held it. path is the key path inside
 * the component, e.g. "protocols.grpc.endpoint". Returns SP_EINVAL. */
int sp_conf_errorf(const struct sp_conf_ctx *ctx, struct sp_err *err, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Closest candidate to word by Damerau-Levenshtein distance, or NULL when
 * none is close enough to be a plausible typo (or word is one of them). */
const char *sp_conf_suggest(const char *word, const char *const *candidates, size_t n);

/* Parses "host:port", "[v6]:port" or ":port" (host defaults to 127.0.0.1).
 * host_out must hold 256 bytes. Returns 0 or SP_EINVAL with a message. */
int sp_conf_parse_endpoint(const char *s, char *host_out, int *port_out, struct sp_err *err);

/* The address a listener actually bound, for start-up lines: endpoint with
 * its port replaced by port (which differs for ":0"). Returns buf. */
const char *sp_conf_endpoint_bound(const char *endpoint, int port, char *buf, size_t n);

/* "host:port" as a socket address: the host must be an IP literal or
 * `localhost` (127.0.0.1); a sidecar binds loopback or an explicit
 * address, so no DNS. *len gets the address length. 0 or SP_EINVAL with a
 * message naming the endpoint. */
struct sockaddr_storage;
int sp_conf_endpoint_addr(const char *endpoint, struct sockaddr_storage *ss, unsigned *len,
                          struct sp_err *err);

/* Scalar parsers shared with query strings and CLI flags (0 or SP_EINVAL). */
int sp_conf_parse_duration_ms(const char *s, int64_t *out);
int sp_conf_parse_size(const char *s, uint64_t *out);
int sp_conf_parse_bool(const char *s, bool *out);

#endif
