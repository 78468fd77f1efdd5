/* Datadog profile upload metadata: event.json and tags_profiler.
 *
 * A profiler's upload to an agent (/profiling/v1/input) carries an `event`
 * part (event.json, datadog.md §5.4) describing the attachments next to it.
 * This parses it into the envelope fields of struct sp_profile; the whole
 * original JSON is kept in profile->event_json so the exporter can send the
 * fields spanprof does not interpret (info, process_tags, custom_attributes,
 * endpoint_counts) unchanged. */
#ifndef SP_DD_EVENT_H
#define SP_DD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_batch.h"
#include "sp_err.h"

/* What event.json says beyond the envelope. Arena strings. */
struct sp_dd_event {
    const char **attachments;  /* the "attachments" array, may be empty */
    size_t attachment_count;
    const char *format_version; /* "version": "4" (the event format, not the app's) */
    bool has_start, has_end;
};

/* Parses event.json (len bytes, need not be NUL-terminated) into p:
 * family, start_ns/end_ns (RFC 3339), event_json (a copy), and
 * tags_profiler through sp_dd_tags_parse. Fields p already has are
 * overwritten only by values present in the event. SP_EDECODE with the
 * field named for invalid JSON, a non-object, wrong field types or bad
 * times; SP_ENOMEM. info may be NULL. */
int sp_dd_event_parse(const char *json, size_t len, struct sp_arena *arena, struct sp_profile *p,
                      struct sp_dd_event *info, struct sp_err *err);

/* Splits Datadog "key:value,key:value" tags (value may hold ':'; a tag
 * without ':' gets an empty value). service, env, version, host and
 * runtime-id fill those envelope fields (first occurrence wins); every
 * other tag, and later duplicates, are appended to p->tags in order.
 * At most max_tags tags are kept (0 = 256); SP_ENOMEM only. */
int sp_dd_tags_parse(const char *tags, size_t len, size_t max_tags, struct sp_arena *arena,
                     struct sp_profile *p);

/* RFC 3339 timestamp ("2026-11-21T23:21:55.264Z", fractional seconds up to
 * nanoseconds, 'Z' or +hh:mm offset) to Unix nanoseconds. 0 or SP_EINVAL. */
int sp_rfc3339_parse_ns(const char *s, size_t len, int64_t *out);

#endif
