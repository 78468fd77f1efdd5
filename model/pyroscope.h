/* Pyroscope legacy ingest (`POST /ingest?name=app{k=v}&from=&until=...`):
 * query and application-name parsing (otlp-pprof.md §6).
 *
 * Clients disagree on time units: pyroscope-go sends from/until in Unix
 * nanoseconds, @pyroscope/nodejs in Unix seconds, and the server accepts
 * s/ms/µs/ns; the unit is told from the magnitude. */
#ifndef SP_PYROSCOPE_H
#define SP_PYROSCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_err.h"

#define SP_PYROSCOPE_MAX_LABELS 64

struct sp_pyroscope_ingest {
    const char *app;            /* name before '{' (may be "" when absent) */
    struct sp_kv_str *labels;   /* the {k=v,...} labels in order */
    size_t label_count;
    int64_t from_ns, until_ns;  /* 0 when absent */
    const char *format;         /* "pprof", "folded", ...; NULL when absent */
    const char *spy_name;       /* "gospy", "nodespy", ...; NULL when absent */
    int64_t sample_rate;        /* Hz, 0 when absent */
    const char *units;
    const char *aggregation;
};

/* "app.name{k=v,k2=v2}" -> app and labels (arena). Whitespace around keys
 * and values is trimmed; empty label sets "{}" are fine. SP_EDECODE with
 * the position for an unclosed brace, a label without '=', an empty key,
 * bytes after '}', or more than SP_PYROSCOPE_MAX_LABELS labels. */
int sp_pyroscope_parse_name(const char *name, struct sp_arena *arena, const char **app,
                            struct sp_kv_str **labels, size_t *count, struct sp_err *err);

/* A from/until value: integer Unix time in s, ms, µs or ns, told apart by
 * magnitude (below 1e10 seconds, 1e13 ms, 1e16 µs). SP_EDECODE for anything
 * else, a negative value, or one past year 2262 in ns. */
int sp_pyroscope_parse_time(const char *s, int64_t *ns, struct sp_err *err);

/* Reads the ingest query through get(ud, key) (NULL when absent; a query
 * decoder such as sp_http_query). name is required. */
typedef const char *(*sp_query_get_fn)(void *ud, const char *key);
int sp_pyroscope_parse_ingest(sp_query_get_fn get, void *ud, struct sp_arena *arena,
                              struct sp_pyroscope_ingest *out, struct sp_err *err);

#endif
