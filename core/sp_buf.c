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
    return sp_buf_append(b, &c, 1);
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

int sp_buf_append_json_str(struct sp_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (sp_buf_reserve(b, n + 2))
        return SP_ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t elen = 0;
        switch (c) {
        case '"': esc[0] = '\\'; esc[1] = '"'; elen = 2; break;
        case '\\': esc[0] = '\\'; esc[1] = '\\'; elen = 2; break;
        case '\n': esc[0] = '\\'; esc[1] = 'n'; elen = 2; break;
        case '\r': esc[0] = '\\'; esc[1] = 'r'; elen = 2; break;
        case '\t': esc[0] = '\\'; esc[1] = 't'; elen = 2; break;
        default:
            if (c < 0x20) {
                esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
                esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        if (elen) {
            if (sp_buf_append(b, esc, elen))
                return SP_ENOMEM;
        } else if (sp_buf_append_byte(b, c)) {
            return SP_ENOMEM;
        }
    }
    return sp_buf_append_byte(b, '"');
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
