/* Text as Go writes it: JSON string literals, base64, UTF-8.
 *
 * The Datadog intake and Agent are Go programs, and the payloads spanprof
 * sends must read as if dd-trace-go or the Agent had written them (the
 * file exporter's output is compared byte for byte; span meta holding JSON
 * is shown as is). So there is one implementation of each rule here, and
 * tests/go/text_compare.go checks it byte for byte against Go's own
 * encoding/json, encoding/base64 and unicode/utf8.
 *
 * UTF-8 is read the way Go's utf8.DecodeRune reads it: a byte that does not
 * start a valid, shortest-form sequence of a code point outside the
 * surrogates (U+D800-U+DFFF) is one invalid byte, and every invalid byte
 * counts as its own U+FFFD. That is what encoding/json writes for it and
 * what the Agent's msgpack decoder (repairUTF8) makes of it.
 *
 * Every writer here has two forms: one into a caller's array of at least
 * the *_max() bytes (no allocation, for any buffer type) and one appending
 * to a struct sp_buf (0 or SP_ENOMEM). */
#ifndef SP_TEXT_H
#define SP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"

/* ---- UTF-8 ---- */

/* The code point at p[0..n) (n >= 1) and the bytes it takes, as Go's
 * utf8.DecodeRune: an invalid byte gives U+FFFD and 1. */
size_t sp_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp);
/* True when s[0..n) is entirely valid UTF-8 (utf8.Valid). */
bool sp_utf8_valid(const char *s, size_t n);
/* Every invalid byte replaced by U+FFFD (EF BF BD), valid text copied: the
 * Agent's repairUTF8 and what ranging over a Go string yields.
 * sp_utf8_repair_max(n) is 3n; returns the bytes written. */
#define SP_UTF8_REPAIR_MAX(n) ((n) * 3)
size_t sp_utf8_repair(char *out, const char *s, size_t n);
int sp_buf_append_utf8_repair(struct sp_buf *b, const char *s, size_t n);
/* The length of s[0..n) cut to at most limit bytes as the Agent's
 * traceutil.TruncateUTF8 cuts it: the first limit bytes, then bytes taken
 * off the end until one of its last 1-4 bytes is valid UTF-8, so a cut
 * character is dropped whole (and an invalid tail with it). */
size_t sp_utf8_truncate(const char *s, size_t n, size_t limit);

/* ---- JSON string literals (encoding/json, Go 1.22 and later) ---- */

/* Also escape <, > and & as \u003c, \u003e, \u0026: json.Marshal's default
 * (what pdata's AsString, dd-trace-go and the Agent's JSON use). Without
 * it: an Encoder with SetEscapeHTML(false) (logs, the debug exporter). */
#define SP_JSON_HTML 0x1u

/* s[0..n) as a JSON string literal, quotes included: " and \ escaped,
 * \b \f \n \r \t by name, other control bytes as \u00XX (lower-case hex),
 * U+2028 and U+2029 as \u2028 and \u2029, every invalid UTF-8 byte as
 * \ufffd; everything else, DEL and valid non-ASCII included, as is. The
 * output is always valid JSON whatever s holds. Returns the bytes written
 * (at most SP_JSON_QUOTE_MAX(n)). */
#define SP_JSON_QUOTE_MAX(n) ((n) * 6 + 2)
size_t sp_json_quote(char *out, const char *s, size_t n, unsigned flags);
int sp_buf_append_json(struct sp_buf *b, const char *s, size_t n, unsigned flags);

/* ---- base64 (encoding/base64 StdEncoding: + and /, = padding) ---- */

#define SP_BASE64_LEN(n) (((n) + 2) / 3 * 4)
/* Writes SP_BASE64_LEN(n) characters (no NUL); returns that count. */
size_t sp_base64_encode(char *out, const uint8_t *p, size_t n);
int sp_buf_append_base64(struct sp_buf *b, const uint8_t *p, size_t n);

#endif
