/* Growable byte buffers. */
#include "sp_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sp_err.h"

int sp_buf_reserve(struct sp_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return SP_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return SP_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int sp_buf_append(struct sp_buf *b, const void *p, size_t n)
{
    if (sp_buf_reserve(b, n))
        return SP_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int sp_buf_append_str(struct sp_buf *b, const char *s)
{
    return sp_buf_append(b, s, strlen(s));
}

int sp_buf_append_byte(struct sp_buf *b, uint8_t c)
{
    /* no memcpy call for one byte (JSON punctuation, separators) */
    if (b->len + 2 > b->cap && sp_buf_reserve(b, 1))
        return SP_ENOMEM;
    b->data[b->len++] = c;
    b->data[b->len] = 0;
    return 0;
}

int sp_buf_vprintf(struct sp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return SP_EINVAL;
    if (sp_buf_reserve(b, (size_t)n))
        return SP_ENOMEM;
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sp_buf_printf(struct sp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sp_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void sp_buf_reset(struct sp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void sp_buf_free(struct sp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sp_buf_wipe(struct sp_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    sp_buf_free(b);
}

uint8_t *sp_buf_steal(struct sp_buf *b, size_t *len)
{
    uint8_t *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

bool sp_str_eq(struct sp_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

bool sp_str_eq_nocase(struct sp_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}
