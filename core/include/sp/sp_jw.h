/* A small streaming JSON writer over struct sp_buf.
 *
 * The status page (sp_status.h) and anything else that writes JSON for
 * people or scripts (not Datadog payloads: those are byte-exact encoders in
 * model/) use it so commas, nesting and string escaping live in one place.
 * Strings go through the core text module (sp_text.h: Go's encoding/json
 * rules without HTML escaping; invalid UTF-8 as \ufffd, U+2028/2029
 * escaped), so any byte sequence gives valid JSON. Errors are
 * sticky: after ENOMEM every call is a no-op and sp_jw_error() says so. */
#ifndef SP_JW_H
#define SP_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"

#define SP_JW_MAX_DEPTH 32

struct sp_jw {
    struct sp_buf *b;
    unsigned depth;
    uint64_t has_items; /* bit d: the container at depth d has an item already */
    bool failed;
};

void sp_jw_init(struct sp_jw *w, struct sp_buf *b);
/* key: the member name inside an object, NULL inside an array (or at top). */
void sp_jw_obj(struct sp_jw *w, const char *key);
void sp_jw_arr(struct sp_jw *w, const char *key);
void sp_jw_end(struct sp_jw *w, char closer); /* '}' or ']' */
void sp_jw_str(struct sp_jw *w, const char *key, const char *s); /* NULL -> null */
void sp_jw_strn(struct sp_jw *w, const char *key, const char *s, size_t n);
void sp_jw_num(struct sp_jw *w, const char *key, double v); /* NaN/inf -> null */
void sp_jw_u64(struct sp_jw *w, const char *key, uint64_t v);
void sp_jw_i64(struct sp_jw *w, const char *key, int64_t v);
void sp_jw_bool(struct sp_jw *w, const char *key, bool v);
void sp_jw_null(struct sp_jw *w, const char *key);
bool sp_jw_error(const struct sp_jw *w);

#endif
