/* JSON string literals exactly as Go's encoding/json writes them, for the
 * Datadog encodings that must match what the Agent's Go code produces:
 * events and links marshalled into span meta (dd_map.c) and the file
 * exporter's JSON lines (dd_encode.c). One copy, so both agree. */
#ifndef SP_DD_JSON_H
#define SP_DD_JSON_H

#include <stddef.h>

#include "sp_buf.h"

/* Appends s[0..n) as a JSON string literal: HTML-safe escapes, U+2028/2029
 * escaped, invalid UTF-8 replaced by U+FFFD (always valid JSON). */
int sp_dd_json_str(struct sp_buf *b, const char *s, size_t n);

/* The same for a NUL-terminated string; NULL writes "". */
int sp_dd_json_cstr(struct sp_buf *b, const char *s);

#endif
