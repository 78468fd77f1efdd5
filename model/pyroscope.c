/* Pyroscope ingest query parsing: application name with labels, times in
 * whatever unit the client used, and the optional knobs. Pure functions on
 * strings; the receiver feeds them MHD's decoded query arguments. */
#include "pyroscope.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *pyro_trim(const char *s, size_t *len)
{
    while (*len && isspace((unsigned char)*s)) {
        s++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)s[*len - 1]))
        (*len)--;
    return s;
}

int sp_pyroscope_parse_name(const char *name, struct sp_arena *arena, const char **app,
                            struct sp_kv_str **labels, size_t *count, struct sp_err *err)
{
    *app = NULL;
    *labels = NULL;
    *count = 0;
    const char *brace = strchr(name, '{');
    size_t alen = brace ? (size_t)(brace - name) : strlen(name);
    const char *a = pyro_trim(name, &alen);
    *app = sp_arena_strndup(arena, a, alen);
    if (!*app)
        return sp_err_set(err, SP_ENOMEM, "out of memory reading the application name");
    if (!brace)
        return 0;
    const char *close = strchr(brace, '}');
    if (!close)
        return sp_err_set(err, SP_EDECODE, "name: '{' at byte %zu is not closed",
                          (size_t)(brace - name));
    for (const char *t = close + 1; *t; t++)
        if (!isspace((unsigned char)*t))
            return sp_err_set(err, SP_EDECODE, "name: unexpected bytes after '}' at byte %zu",
                              (size_t)(t - name));
    size_t n = 1;
    for (const char *c = brace + 1; c < close; c++)
        n += *c == ',';
    if (n > SP_PYROSCOPE_MAX_LABELS)
        return sp_err_set(err, SP_EDECODE, "name: more than %d labels", SP_PYROSCOPE_MAX_LABELS);
    struct sp_kv_str *v = sp_arena_calloc(arena, n, sizeof(*v));
    if (!v)
        return sp_err_set(err, SP_ENOMEM, "out of memory reading labels");
    size_t k = 0;
    const char *p = brace + 1;
    while (p < close) {
        const char *comma = memchr(p, ',', (size_t)(close - p));
        const char *end = comma ? comma : close;
        size_t llen = (size_t)(end - p);
        const char *l = pyro_trim(p, &llen);
        if (llen) {
            const char *eq = memchr(l, '=', llen);
            if (!eq)
                return sp_err_set(err, SP_EDECODE, "name: label '%.*s' at byte %zu has no '='",
                                  (int)(llen > 64 ? 64 : llen), l, (size_t)(l - name));
            size_t klen = (size_t)(eq - l), vlen = llen - klen - 1;
            const char *key = pyro_trim(l, &klen);
            const char *val = pyro_trim(eq + 1, &vlen);
            if (!klen)
                return sp_err_set(err, SP_EDECODE, "name: empty label key at byte %zu",
                                  (size_t)(l - name));
            v[k].key = sp_arena_strndup(arena, key, klen);
            v[k].value = sp_arena_strndup(arena, val, vlen);
            if (!v[k].key || !v[k].value)
                return sp_err_set(err, SP_ENOMEM, "out of memory reading labels");
            k++;
        }
        p = end + 1;
    }
    *labels = v;
    *count = k;
    return 0;
}

int sp_pyroscope_parse_time(const char *s, int64_t *ns, struct sp_err *err)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return sp_err_set(err, SP_EDECODE, "time '%.32s' is not a Unix timestamp", s);
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || *end || v > (unsigned long long)INT64_MAX)
        return sp_err_set(err, SP_EDECODE, "time '%.32s' is not a Unix timestamp", s);
    /* Seconds below 1e10 reach year 2286; ms, µs and ns follow by 1000s.
     * A value whose conversion would not fit in int64 ns is refused. */
    int64_t t = (int64_t)v, mul;
    if (t < 10000000000LL)
        mul = 1000000000LL;
    else if (t < 10000000000000LL)
        mul = 1000000LL;
    else if (t < 10000000000000000LL)
        mul = 1000LL;
    else
        mul = 1;
    if (__builtin_mul_overflow(t, mul, ns))
        return sp_err_set(err, SP_EDECODE, "time '%.32s' is out of range", s);
    return 0;
}

static const char *pyro_dup(struct sp_arena *a, const char *s)
{
    return s ? sp_arena_strdup(a, s) : NULL;
}

int sp_pyroscope_parse_ingest(sp_query_get_fn get, void *ud, struct sp_arena *arena,
                              struct sp_pyroscope_ingest *out, struct sp_err *err)
{
    memset(out, 0, sizeof(*out));
    const char *name = get(ud, "name");
    if (!name || !*name)
        return sp_err_set(err, SP_EDECODE, "query parameter 'name' is required");
    int rc = sp_pyroscope_parse_name(name, arena, &out->app, &out->labels, &out->label_count, err);
    if (rc < 0)
        return rc;
    const char *from = get(ud, "from"), *until = get(ud, "until");
    if (from && *from && (rc = sp_pyroscope_parse_time(from, &out->from_ns, err)) < 0) {
        sp_err_prefix(err, "from");
        return rc;
    }
    if (until && *until && (rc = sp_pyroscope_parse_time(until, &out->until_ns, err)) < 0) {
        sp_err_prefix(err, "until");
        return rc;
    }
    if (out->from_ns && out->until_ns && out->until_ns < out->from_ns)
        return sp_err_set(err, SP_EDECODE, "'until' is before 'from'");
    const char *rate = get(ud, "sampleRate");
    if (rate && *rate) {
        char *end;
        errno = 0;
        long long r = strtoll(rate, &end, 10);
        if (errno || *end || r < 0 || r > 1000000000LL)
            return sp_err_set(err, SP_EDECODE, "sampleRate '%.32s' is not a rate in Hz", rate);
        out->sample_rate = r;
    }
    out->format = pyro_dup(arena, get(ud, "format"));
    out->spy_name = pyro_dup(arena, get(ud, "spyName"));
    out->units = pyro_dup(arena, get(ud, "units"));
    out->aggregation = pyro_dup(arena, get(ud, "aggregationType"));
    return 0;
}
