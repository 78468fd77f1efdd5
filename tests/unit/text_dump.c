/* sp_text's output for inputs read from stdin, for tests/go/text_compare.go,
 * which computes the same with Go's standard library and compares byte for
 * byte.
 *
 * Request: op (1 byte), limit (u32 LE, used by 't'), length (u32 LE), bytes.
 * Answer: length (u32 LE), bytes. Ops: 'j' JSON without HTML escaping,
 * 'h' JSON with it, 'b' base64, 'r' UTF-8 repair, 'v' valid ("1"/"0"),
 * 't' TruncateUTF8 to limit. Also checks that the array and sp_buf forms
 * agree and stay within their *_MAX bounds (exit 2 when not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_text.h"

static int read_full(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n ? 0 : -1;
}

static uint32_t u32le(const uint8_t b[4])
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void answer(const void *p, size_t n)
{
    uint8_t h[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    fwrite(h, 1, 4, stdout);
    fwrite(p, 1, n, stdout);
}

static void fail(const char *what)
{
    fprintf(stderr, "text_dump: %s\n", what);
    exit(2);
}

int main(void)
{
    uint8_t op;
    while (read_full(&op, 1) == 0) {
        uint8_t h[8];
        if (read_full(h, 8))
            fail("truncated request");
        uint32_t limit = u32le(h), n = u32le(h + 4);
        char *s = malloc(n ? n : 1);
        char *out = malloc(SP_JSON_QUOTE_MAX((size_t)n) + 8);
        if (!s || !out || read_full(s, n))
            fail("short input");
        struct sp_buf b = {0};
        size_t w = 0;
        int rc = 0;
        switch (op) {
        case 'j':
        case 'h': {
            unsigned f = op == 'h' ? SP_JSON_HTML : 0;
            w = sp_json_quote(out, s, n, f);
            if (w > SP_JSON_QUOTE_MAX((size_t)n))
                fail("json output over SP_JSON_QUOTE_MAX");
            rc = sp_buf_append_json(&b, s, n, f);
            break;
        }
        case 'b':
            w = sp_base64_encode(out, (const uint8_t *)s, n);
            if (w != SP_BASE64_LEN((size_t)n))
                fail("base64 length is not SP_BASE64_LEN");
            rc = sp_buf_append_base64(&b, (const uint8_t *)s, n);
            break;
        case 'r':
            w = sp_utf8_repair(out, s, n);
            if (w > SP_UTF8_REPAIR_MAX((size_t)n))
                fail("repair output over SP_UTF8_REPAIR_MAX");
            rc = sp_buf_append_utf8_repair(&b, s, n);
            if (!sp_utf8_valid(out, w))
                fail("repaired text is not valid UTF-8");
            break;
        case 'v':
            out[0] = sp_utf8_valid(s, n) ? '1' : '0';
            w = 1;
            rc = sp_buf_append(&b, out, 1);
            break;
        case 't':
            w = sp_utf8_truncate(s, n, limit);
            memcpy(out, s, w);
            rc = sp_buf_append(&b, s, w);
            break;
        default:
            fail("unknown op");
        }
        if (rc || b.len != w || (w && memcmp(b.data, out, w) != 0))
            fail("array and sp_buf forms differ");
        answer(out, w);
        sp_buf_free(&b);
        free(out);
        free(s);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
