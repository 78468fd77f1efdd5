/* Text as Go writes it (see sp_text.h for the rules and why).
 *
 * The rules follow, in order: unicode/utf8 DecodeRune and Valid;
 * encoding/json's string encoder (encode.go appendString: safeSet and
 * htmlSafeSet, the named escapes, U+2028/U+2029, invalid bytes as \ufffd;
 * Go 1.22 writes \b and \f by name, earlier releases as \u0008 and
 * \u000c); encoding/base64 StdEncoding; datadog-agent
 * pkg/trace/traceutil/truncate.go TruncateUTF8. */
#include "sp_text.h"

#include <string.h>

#include "sp_err.h"

/* ---- a writer into either a caller's array or an sp_buf ---- */

struct tw {
    char *out;         /* array form: at least the *_MAX bytes */
    struct sp_buf *b;  /* buffer form */
    size_t len;        /* bytes written (array form) */
    int err;
};

static void tw_put(struct tw *w, const void *p, size_t n)
{
    if (!n)
        return;
    if (w->b) {
        if (!w->err)
            w->err = sp_buf_append(w->b, p, n);
        return;
    }
    memcpy(w->out + w->len, p, n);
    w->len += n;
}

/* ---- UTF-8 ---- */

size_t sp_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        v = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        v = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n < need || p[1] < lo || p[1] > hi) {
        *cp = 0xFFFD;
        return 1;
    }
    v = (v << 6) | (p[1] & 0x3Fu);
    for (size_t k = 2; k < need; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (p[k] & 0x3Fu);
    }
    *cp = v;
    return need;
}

/* The offset of the first invalid byte of p[i..n), or n. */
static size_t utf8_next_invalid(const uint8_t *p, size_t i, size_t n)
{
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = sp_utf8_decode(p + i, n - i, &cp);
        if (k == 1)
            return i; /* a non-ASCII byte read alone is invalid */
        i += k;
    }
    return n;
}

bool sp_utf8_valid(const char *s, size_t n)
{
    return utf8_next_invalid((const uint8_t *)s, 0, n) == n;
}

static void utf8_repair(struct tw *w, const char *s, size_t n)
{
    if (!s)
        return;
    size_t run = 0;
    for (size_t i; (i = utf8_next_invalid((const uint8_t *)s, run, n)) < n; run = i + 1) {
        tw_put(w, s + run, i - run);
        tw_put(w, "\xEF\xBF\xBD", 3);
    }
    tw_put(w, s + run, n - run);
}

size_t sp_utf8_repair(char *out, const char *s, size_t n)
{
    struct tw w = {.out = out};
    utf8_repair(&w, s, n);
    return w.len;
}

int sp_buf_append_utf8_repair(struct sp_buf *b, const char *s, size_t n)
{
    struct tw w = {.b = b};
    utf8_repair(&w, s, n);
    return w.err;
}

size_t sp_utf8_truncate(const char *s, size_t n, size_t limit)
{
    if (n <= limit)
        return n;
    size_t m = limit;
    while (m >= 1) {
        bool ok = false;
        for (size_t k = 4; k >= 1 && !ok; k--)
            ok = m >= k && sp_utf8_valid(s + m - k, k);
        if (ok)
            break;
        m--;
    }
    return m;
}

/* ---- JSON ---- */

static const char hexdig[] = "0123456789abcdef";

/* Bytes written as they are: printable ASCII and DEL except " and \, and
 * except < > & under SP_JSON_HTML. */
/* Bytes copied as they are: bit 1 without SP_JSON_HTML, bit 2 with it
 * (printable ASCII but '"' and '\\'; with HTML escaping also not <, >, &). */
static const uint8_t json_plain_tab[256] = {
    [0x20 ... 0x21] = 3, /* '"' */ [0x23 ... 0x25] = 3, ['&'] = 1, [0x27 ... 0x3b] = 3,
    ['<'] = 1, ['='] = 3, ['>'] = 1, [0x3f ... 0x5b] = 3, /* '\\' */ [0x5d ... 0x7f] = 3,
};

static inline bool json_plain(uint8_t c, unsigned flags)
{
    return json_plain_tab[c] & ((flags & SP_JSON_HTML) ? 2 : 1);
}

static void json_quote(struct tw *w, const char *s, size_t n, unsigned flags)
{
    if (!s)
        s = "", n = 0;
    const uint8_t *p = (const uint8_t *)s;
    tw_put(w, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && json_plain(p[run], flags))
            run++;
        if (run > i) {
            tw_put(w, s + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            const char *named = NULL;
            switch (c) {
            case '"': named = "\\\""; break;
            case '\\': named = "\\\\"; break;
            case '\b': named = "\\b"; break;
            case '\f': named = "\\f"; break;
            case '\n': named = "\\n"; break;
            case '\r': named = "\\r"; break;
            case '\t': named = "\\t"; break;
            default: break;
            }
            if (named) {
                tw_put(w, named, 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
                tw_put(w, e, 6);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = sp_utf8_decode(p + i, n - i, &cp);
        if (k == 1) {
            tw_put(w, "\\ufffd", 6);
        } else if (cp == 0x2028 || cp == 0x2029) {
            tw_put(w, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
        } else {
            tw_put(w, s + i, k);
        }
        i += k;
    }
    tw_put(w, "\"", 1);
}

size_t sp_json_quote(char *out, const char *s, size_t n, unsigned flags)
{
    struct tw w = {.out = out};
    json_quote(&w, s, n, flags);
    return w.len;
}

int sp_buf_append_json(struct sp_buf *b, const char *s, size_t n, unsigned flags)
{
    struct tw w = {.b = b};
    json_quote(&w, s, n, flags);
    return w.err;
}

/* The logs' and debug exporter's form (sp_buf.h): no HTML escaping. */
int sp_buf_append_json_str(struct sp_buf *b, const char *s, size_t n)
{
    return sp_buf_append_json(b, s, n, 0);
}

/* ---- base64 ---- */

size_t sp_base64_encode(char *out, const uint8_t *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    return o;
}

int sp_buf_append_base64(struct sp_buf *b, const uint8_t *p, size_t n)
{
    if (n > (SIZE_MAX / 2) / 4 * 3)
        return SP_ENOMEM;
    size_t len = SP_BASE64_LEN(n);
    if (sp_buf_reserve(b, len))
        return SP_ENOMEM;
    b->len += sp_base64_encode((char *)b->data + b->len, p, n);
    b->data[b->len] = 0;
    return 0;
}
