/* The JSON string literals of the Datadog encodings: what the Agent's Go
 * code writes with json.Marshal (HTML escaping on), for events and links
 * marshalled into span meta (dd_map.c) and the file exporter's JSON lines
 * (dd_encode.c). The rules and the one implementation are core/sp_text.c. */
#ifndef SP_DD_JSON_H
#define SP_DD_JSON_H

#include <stddef.h>
#include <string.h>

#include "sp_text.h"

static inline int sp_dd_json_str(struct sp_buf *b, const char *s, size_t n)
{
    return sp_buf_append_json(b, s, n, SP_JSON_HTML);
}

/* The same for a NUL-terminated string; NULL writes "". */
static inline int sp_dd_json_cstr(struct sp_buf *b, const char *s)
{
    return sp_buf_append_json(b, s, s ? strlen(s) : 0, SP_JSON_HTML);
}

#endif
