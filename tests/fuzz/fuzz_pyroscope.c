/* Fuzz target: Pyroscope ingest query (a raw query string, split and
 * percent-decoded here as an HTTP server would) and name{labels} parsing. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_ARGS 32

struct fz_query {
    char *keys[FZ_MAX_ARGS];
    char *values[FZ_MAX_ARGS];
    size_t n;
};

static const char *fz_get(void *ud, const char *key)
{
    struct fz_query *q = ud;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->keys[i], key) == 0)
            return q->values[i];
    return NULL;
}

static int fz_hex(int c)
{
    return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* In-place percent-decoding (and '+' as space). */
static void fz_unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            *o++ = (char)(fz_hex((unsigned char)s[1]) * 16 + fz_hex((unsigned char)s[2]));
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct sp_arena *a = sp_arena_create(0);
    struct sp_err err;
    /* the whole input as a name */
    const char *app;
    struct sp_kv_str *labels;
    size_t n;
    if (sp_pyroscope_parse_name(s, a, &app, &labels, &n, &err) == 0 &&
        (!app || n > SP_PYROSCOPE_MAX_LABELS))
        abort();
    int64_t ns;
    (void)sp_pyroscope_parse_time(s, &ns, &err);
    /* the whole input as a query string */
    struct fz_query q = {.n = 0};
    char *save = NULL;
    for (char *arg = strtok_r(s, "&", &save); arg && q.n < FZ_MAX_ARGS;
         arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        if (eq)
            *eq = '\0';
        fz_unescape(arg);
        q.keys[q.n] = arg;
        q.values[q.n] = eq ? eq + 1 : arg + strlen(arg);
        if (eq)
            fz_unescape(eq + 1);
        q.n++;
    }
    struct sp_pyroscope_ingest in;
    if (sp_pyroscope_parse_ingest(fz_get, &q, a, &in, &err) == 0 && !in.app)
        abort();
    sp_arena_destroy(a);
    free(s);
    return 0;
}
