/* Streaming JSON writer (see sp_jw.h). */
#include "sp_jw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_text.h"

void sp_jw_init(struct sp_jw *w, struct sp_buf *b)
{
    memset(w, 0, sizeof(*w));
    w->b = b;
}

static void sp_jw_ok(struct sp_jw *w, int rc)
{
    if (rc)
        w->failed = true;
}

/* The separator and the key before a value. */
static bool sp_jw_pre(struct sp_jw *w, const char *key)
{
    if (w->failed)
        return false;
    uint64_t bit = (uint64_t)1 << w->depth;
    if (w->has_items & bit)
        sp_jw_ok(w, sp_buf_append_byte(w->b, ','));
    w->has_items |= bit;
    if (key) {
        sp_jw_ok(w, sp_buf_append_json(w->b, key, strlen(key), 0));
        sp_jw_ok(w, sp_buf_append_byte(w->b, ':'));
    }
    return !w->failed;
}

static void sp_jw_open(struct sp_jw *w, const char *key, char c)
{
    if (!sp_jw_pre(w, key))
        return;
    if (w->depth + 1 >= SP_JW_MAX_DEPTH) {
        fprintf(stderr, "sp_jw: nesting deeper than %d\n", SP_JW_MAX_DEPTH);
        abort();
    }
    sp_jw_ok(w, sp_buf_append_byte(w->b, (uint8_t)c));
    w->depth++;
    w->has_items &= ~((uint64_t)1 << w->depth);
}

void sp_jw_obj(struct sp_jw *w, const char *key)
{
    sp_jw_open(w, key, '{');
}

void sp_jw_arr(struct sp_jw *w, const char *key)
{
    sp_jw_open(w, key, '[');
}

void sp_jw_end(struct sp_jw *w, char closer)
{
    if (w->failed)
        return;
    if (w->depth == 0) {
        fprintf(stderr, "sp_jw: '%c' closes nothing\n", closer);
        abort();
    }
    w->depth--;
    sp_jw_ok(w, sp_buf_append_byte(w->b, (uint8_t)closer));
}

void sp_jw_strn(struct sp_jw *w, const char *key, const char *s, size_t n)
{
    if (sp_jw_pre(w, key))
        sp_jw_ok(w, s ? sp_buf_append_json(w->b, s, n, 0) : sp_buf_append_str(w->b, "null"));
}

void sp_jw_str(struct sp_jw *w, const char *key, const char *s)
{
    sp_jw_strn(w, key, s, s ? strlen(s) : 0);
}

/* Integers without printf: most of a status document is counters. */
static void sp_jw_put_u64(struct sp_jw *w, bool neg, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        tmp[--i] = '-';
    sp_jw_ok(w, sp_buf_append(w->b, tmp + i, sizeof(tmp) - i));
}

void sp_jw_num(struct sp_jw *w, const char *key, double v)
{
    if (!sp_jw_pre(w, key))
        return;
    if (!isfinite(v))
        sp_jw_ok(w, sp_buf_append_str(w->b, "null"));
    else if (v == floor(v) && fabs(v) < 1e15)
        sp_jw_put_u64(w, v < 0, (uint64_t)fabs(v));
    else
        sp_jw_ok(w, sp_buf_printf(w->b, "%.6g", v));
}

void sp_jw_u64(struct sp_jw *w, const char *key, uint64_t v)
{
    if (sp_jw_pre(w, key))
        sp_jw_put_u64(w, false, v);
}

void sp_jw_i64(struct sp_jw *w, const char *key, int64_t v)
{
    if (sp_jw_pre(w, key))
        sp_jw_put_u64(w, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

void sp_jw_bool(struct sp_jw *w, const char *key, bool v)
{
    if (sp_jw_pre(w, key))
        sp_jw_ok(w, sp_buf_append_str(w->b, v ? "true" : "false"));
}

void sp_jw_null(struct sp_jw *w, const char *key)
{
    if (sp_jw_pre(w, key))
        sp_jw_ok(w, sp_buf_append_str(w->b, "null"));
}

bool sp_jw_error(const struct sp_jw *w)
{
    return w->failed;
}
