/* core/sp_text.c on fixed cases (tests/go/text_compare.go checks it
 * against Go itself on many more). Expected strings are what Go 1.22's
 * encoding/json, encoding/base64 and the Agent's TruncateUTF8 produce. */
#include <string.h>

#include "sp_err.h"
#include "sp_test.h"
#include "sp_text.h"

static const char *json(const char *s, size_t n, unsigned flags)
{
    static char out[512];
    size_t w = sp_json_quote(out, s, n, flags);
    out[w] = 0;
    return out;
}

static void test_json_escapes(void)
{
    ASSERT_EQ_STR(json("a\"b\\c", 5, 0), "\"a\\\"b\\\\c\"");
    ASSERT_EQ_STR(json("\b\f\n\r\t\x01\x1f\x7f", 8, 0), "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    ASSERT_EQ_STR(json("<a&b>", 5, 0), "\"<a&b>\"");
    ASSERT_EQ_STR(json("<a&b>", 5, SP_JSON_HTML), "\"\\u003ca\\u0026b\\u003e\"");
    /* U+2028 and U+2029 always; invalid bytes one \ufffd each. */
    ASSERT_EQ_STR(json("\xe2\x80\xa8\xe2\x80\xa9", 6, 0), "\"\\u2028\\u2029\"");
    ASSERT_EQ_STR(json("a\xff" "b", 3, 0), "\"a\\ufffdb\"");
    ASSERT_EQ_STR(json("\xe2\x82", 2, 0), "\"\\ufffd\\ufffd\"");
    ASSERT_EQ_STR(json("\xed\xa0\x80", 3, 0), "\"\\ufffd\\ufffd\\ufffd\"");
    ASSERT_EQ_STR(json("\xe2\x82\xac \xf0\x9f\x98\x80", 8, 0), "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
    ASSERT_EQ_STR(json("a\0b", 3, 0), "\"a\\u0000b\"");
    ASSERT_EQ_STR(json(NULL, 0, 0), "\"\"");
}

static void test_json_buf(void)
{
    struct sp_buf b = {0};
    ASSERT_EQ_INT(sp_buf_append_json(&b, "x<\xff", 3, SP_JSON_HTML), 0);
    ASSERT_EQ_INT(sp_buf_append_json_str(&b, "y<", 2), 0);
    ASSERT_EQ_STR((const char *)b.data, "\"x\\u003c\\ufffd\"\"y<\"");
    sp_buf_free(&b);
}

static void test_base64(void)
{
    char out[16];
    size_t n = sp_base64_encode(out, (const uint8_t *)"\xde\xad\xbe\xef", 4);
    out[n] = 0;
    ASSERT_EQ_STR(out, "3q2+7w==");
    ASSERT_EQ_INT(sp_base64_encode(out, (const uint8_t *)"", 0), 0);
    struct sp_buf b = {0};
    ASSERT_EQ_INT(sp_buf_append_base64(&b, (const uint8_t *)"\xfb\xff", 2), 0);
    ASSERT_EQ_STR((const char *)b.data, "+/8=");
    sp_buf_free(&b);
}

static void test_utf8(void)
{
    uint32_t cp;
    ASSERT_EQ_INT(sp_utf8_decode((const uint8_t *)"\xe2\x82\xac", 3, &cp), 3);
    ASSERT_EQ_INT(cp, 0x20ac);
    ASSERT_EQ_INT(sp_utf8_decode((const uint8_t *)"\xe2\x82\xac", 2, &cp), 1);
    ASSERT_EQ_INT(cp, 0xfffd);
    ASSERT_EQ_INT(sp_utf8_decode((const uint8_t *)"\xc0\xaf", 2, &cp), 1); /* overlong */
    ASSERT_EQ_INT(sp_utf8_decode((const uint8_t *)"\xf4\x90\x80\x80", 4, &cp), 1);
    ASSERT(sp_utf8_valid("h\xc3\xa9llo", 6));
    ASSERT(!sp_utf8_valid("h\xc3llo", 5));
    char out[32];
    size_t n = sp_utf8_repair(out, "a\xff\xe2\x82" "b", 5);
    ASSERT_EQ_INT(n, 2 + 9);
    ASSERT(memcmp(out, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b", n) == 0);
    /* TruncateUTF8: a cut character goes whole, and an invalid tail too. */
    ASSERT_EQ_INT(sp_utf8_truncate("ab\xe2\x82\xac", 5, 4), 2);
    ASSERT_EQ_INT(sp_utf8_truncate("ab\xe2\x82\xac", 5, 5), 5);
    ASSERT_EQ_INT(sp_utf8_truncate("ab\x80\x80" "cd", 6, 4), 2);
    ASSERT_EQ_INT(sp_utf8_truncate("abc", 3, 0), 0);
}

int main(void)
{
    RUN(test_json_escapes);
    RUN(test_json_buf);
    RUN(test_base64);
    RUN(test_utf8);
    return sp_test_summary();
}
