/* Go-compatible JSON string literals (see dd_json.h). The escaping rules
 * are encoding/json's (Go src/encoding/json/encode.go appendString with
 * escapeHTML: <, > and & as \u003c..., U+2028/2029 escaped, invalid UTF-8
 * as \ufffd), which the Agent uses to marshal span events and links. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dd_json.h"

/* JSON string literal as Go's encoding/json writes it: HTML-safe escapes,
 * U+2028/2029 escaped, invalid UTF-8 replaced by U+FFFD. Always valid JSON. */
int sp_dd_json_str(struct sp_buf *b, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    int rc = sp_buf_append_byte(b, '"');
    size_t i = 0;
    while (rc == 0 && i < n) {
        /* A run of bytes that need no escape goes in one copy. */
        size_t run = i;
        while (run < n) {
            unsigned char r = (unsigned char)s[run];
            if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&')
                break;
            run++;
        }
        if (run > i) {
            rc = sp_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': rc = sp_buf_append(b, "\\\"", 2); break;
            case '\\': rc = sp_buf_append(b, "\\\\", 2); break;
            case '\n': rc = sp_buf_append(b, "\\n", 2); break;
            case '\r': rc = sp_buf_append(b, "\\r", 2); break;
            case '\t': rc = sp_buf_append(b, "\\t", 2); break;
            default:
                if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                    char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
                    rc = sp_buf_append(b, e, 6);
                } else {
                    rc = sp_buf_append_byte(b, c);
                }
            }
            i++;
            continue;
        }
        /* Validate one multi-byte sequence. */
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        uint32_t cp = len == 4 ? c & 7u : len == 3 ? c & 15u : c & 31u;
        bool ok = len != 0 && c <= 0xF4 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80)
                ok = false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                   (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = false;
        if (!ok) {
            rc = sp_buf_append(b, "\\ufffd", 6);
            i++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            rc = sp_buf_append(b, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += len;
        } else {
            rc = sp_buf_append(b, s + i, len);
            i += len;
        }
    }
    return rc ? rc : sp_buf_append_byte(b, '"');
}

int sp_dd_json_cstr(struct sp_buf *b, const char *s)
{
    return sp_dd_json_str(b, s ? s : "", s ? strlen(s) : 0);
}
