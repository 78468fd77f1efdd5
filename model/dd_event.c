/* event.json of a Datadog profile upload -> envelope fields (json-c).
 *
 * The JSON tree is parsed once, the fields spanprof routes on are copied
 * into the batch arena, and the tree is freed at once: only the original
 * bytes (event_json) travel on. Parsing is bounded by the part size (the
 * caller's limit) and json-c's nesting depth, set low here. */
#include "dd_event.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define DD_EVENT_MAX_DEPTH 32
#define DD_EVENT_MAX_ATTACHMENTS 64

/* --- RFC 3339 -------------------------------------------------------------- */

static bool dd_digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no libc time zone. */
static int64_t dd_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int sp_rfc3339_parse_ns(const char *s, size_t len, int64_t *out)
{
    int Y, M, D, h, mi, sec;
    /* 2006-01-02T15:04:05 */
    if (len < 20 || !dd_digits(s, 4, &Y) || s[4] != '-' || !dd_digits(s + 5, 2, &M) ||
        s[7] != '-' || !dd_digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !dd_digits(s + 11, 2, &h) || s[13] != ':' || !dd_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !dd_digits(s + 17, 2, &sec))
        return SP_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return SP_EINVAL;
    size_t i = 19;
    int64_t frac = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t digits = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (digits < 9) {
                frac = frac * 10 + (s[i] - '0');
                digits++;
            }
            i++;
        }
        if (digits == 0)
            return SP_EINVAL;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t offset_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!dd_digits(s + i + 1, 2, &oh) || !dd_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return SP_EINVAL;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return SP_EINVAL;
    }
    if (i != len)
        return SP_EINVAL;
    int64_t days = dd_days_from_civil(Y, M, D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    /* int64 ns covers 1678..2262 */
    if (secs < -9223372036LL || secs > 9223372035LL)
        return SP_EINVAL;
    *out = secs * 1000000000LL + frac;
    return 0;
}

/* --- tags ------------------------------------------------------------------ */

int sp_dd_tags_parse(const char *tags, size_t len, size_t max_tags, struct sp_arena *arena,
                     struct sp_profile *p)
{
    if (!max_tags)
        max_tags = 256;
    /* Count first so the tag array is allocated once, bounded. */
    size_t n = p->tag_count + 1;
    for (size_t i = 0; i < len; i++)
        n += tags[i] == ',';
    if (n > max_tags + p->tag_count)
        n = max_tags + p->tag_count;
    struct sp_kv_str *v = sp_arena_calloc(arena, n, sizeof(*v));
    if (!v)
        return SP_ENOMEM;
    if (p->tag_count)
        memcpy(v, p->tags, p->tag_count * sizeof(*v));
    size_t count = p->tag_count, added = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *t = tags + pos;
        const char *comma = memchr(t, ',', len - pos);
        size_t tlen = comma ? (size_t)(comma - t) : len - pos;
        pos += tlen + 1;
        while (tlen && isspace((unsigned char)*t)) {
            t++;
            tlen--;
        }
        while (tlen && isspace((unsigned char)t[tlen - 1]))
            tlen--;
        if (tlen == 0)
            continue;
        const char *colon = memchr(t, ':', tlen);
        size_t klen = colon ? (size_t)(colon - t) : tlen;
        const char *val = colon ? colon + 1 : t + tlen;
        size_t vlen = colon ? tlen - klen - 1 : 0;
        const struct {
            const char *key;
            const char **member;
        } fields[] = {
            {"service", &p->service}, {"env", &p->env},       {"version", &p->version},
            {"host", &p->host},       {"runtime-id", &p->runtime_id},
        };
        const char **field = NULL;
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
            if (strlen(fields[f].key) == klen && memcmp(t, fields[f].key, klen) == 0 &&
                !*fields[f].member)
                field = fields[f].member;
        if (field && vlen) {
            *field = sp_arena_strndup(arena, val, vlen);
            if (!*field)
                return SP_ENOMEM;
            continue;
        }
        if (added == max_tags || count == n)
            continue; /* bounded: extra tags are dropped */
        v[count].key = sp_arena_strndup(arena, t, klen);
        v[count].value = sp_arena_strndup(arena, val, vlen);
        if (!v[count].key || !v[count].value)
            return SP_ENOMEM;
        count++;
        added++;
    }
    p->tags = v;
    p->tag_count = count;
    return 0;
}

/* --- event.json ------------------------------------------------------------ */

static const char *dd_json_type(struct json_object *o)
{
    return json_type_to_name(json_object_get_type(o));
}

static int dd_event_time(struct json_object *root, const char *key, int64_t *out, bool *has,
                         struct sp_err *err)
{
    struct json_object *v;
    *has = false;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return sp_err_set(err, SP_EDECODE, "event.json: '%s' is a %s, want an RFC 3339 string", key,
                          dd_json_type(v));
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (sp_rfc3339_parse_ns(s, n, out) != 0)
        return sp_err_set(err, SP_EDECODE, "event.json: '%s': '%.64s' is not an RFC 3339 time",
                          key, s);
    *has = true;
    return 0;
}

static int dd_event_str(struct json_object *root, const char *key, struct sp_arena *a,
                        const char **out, struct sp_err *err)
{
    struct json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return sp_err_set(err, SP_EDECODE, "event.json: '%s' is a %s, want a string", key,
                          dd_json_type(v));
    *out = sp_arena_strndup(a, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    return *out ? 0 : sp_err_set(err, SP_ENOMEM, "out of memory reading event.json");
}

static int dd_event_fields(struct json_object *root, struct sp_arena *arena, struct sp_profile *p,
                           struct sp_dd_event *info, struct sp_err *err)
{
    int64_t start = 0, end = 0;
    bool has_start, has_end;
    int rc = dd_event_time(root, "start", &start, &has_start, err);
    if (rc == 0)
        rc = dd_event_time(root, "end", &end, &has_end, err);
    if (rc < 0)
        return rc;
    if (has_start && has_end && end < start)
        return sp_err_set(err, SP_EDECODE, "event.json: 'end' is before 'start'");
    if (has_start)
        p->start_ns = start;
    if (has_end)
        p->end_ns = end;
    const char *family = NULL, *format_version = NULL, *tags = NULL;
    if ((rc = dd_event_str(root, "family", arena, &family, err)) < 0 ||
        (rc = dd_event_str(root, "version", arena, &format_version, err)) < 0 ||
        (rc = dd_event_str(root, "tags_profiler", arena, &tags, err)) < 0)
        return rc;
    if (family)
        p->family = family;
    if (tags && sp_dd_tags_parse(tags, strlen(tags), 0, arena, p) < 0)
        return sp_err_set(err, SP_ENOMEM, "out of memory reading event.json tags");
    struct json_object *att;
    const char **names = NULL;
    size_t count = 0;
    if (json_object_object_get_ex(root, "attachments", &att) &&
        !json_object_is_type(att, json_type_null)) {
        if (!json_object_is_type(att, json_type_array))
            return sp_err_set(err, SP_EDECODE, "event.json: 'attachments' is a %s, want an array",
                              dd_json_type(att));
        size_t n = json_object_array_length(att);
        if (n > DD_EVENT_MAX_ATTACHMENTS)
            return sp_err_set(err, SP_EDECODE, "event.json: %zu attachments, more than %d", n,
                              DD_EVENT_MAX_ATTACHMENTS);
        names = sp_arena_calloc(arena, n ? n : 1, sizeof(*names));
        if (!names)
            return sp_err_set(err, SP_ENOMEM, "out of memory reading event.json");
        for (size_t i = 0; i < n; i++) {
            struct json_object *e = json_object_array_get_idx(att, i);
            if (!json_object_is_type(e, json_type_string))
                return sp_err_set(err, SP_EDECODE, "event.json: attachments[%zu] is a %s", i,
                                  dd_json_type(e));
            names[count] = sp_arena_strdup(arena, json_object_get_string(e));
            if (!names[count++])
                return sp_err_set(err, SP_ENOMEM, "out of memory reading event.json");
        }
    }
    if (info) {
        info->attachments = names;
        info->attachment_count = count;
        info->format_version = format_version;
        info->has_start = has_start;
        info->has_end = has_end;
    }
    return 0;
}

int sp_dd_event_parse(const char *json, size_t len, struct sp_arena *arena, struct sp_profile *p,
                      struct sp_dd_event *info, struct sp_err *err)
{
    if (info)
        memset(info, 0, sizeof(*info));
    if (len > INT32_MAX)
        return sp_err_set(err, SP_ETOOBIG, "event.json of %zu bytes is too large", len);
    struct json_tokener *tok = json_tokener_new_ex(DD_EVENT_MAX_DEPTH);
    if (!tok)
        return sp_err_set(err, SP_ENOMEM, "out of memory reading event.json");
    struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    int rc = 0;
    if (!root || jerr != json_tokener_success) {
        rc = sp_err_set(err, SP_EDECODE, "event.json is not valid JSON at byte %zu: %s", end,
                        jerr == json_tokener_continue ? "unexpected end of input"
                                                      : json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = end; i < len; i++)
        if (!isspace((unsigned char)json[i])) {
            rc = sp_err_set(err, SP_EDECODE, "event.json has trailing bytes at byte %zu", i);
            goto out;
        }
    if (!json_object_is_type(root, json_type_object)) {
        rc = sp_err_set(err, SP_EDECODE, "event.json is a JSON %s, want an object",
                        dd_json_type(root));
        goto out;
    }
    rc = dd_event_fields(root, arena, p, info, err);
    if (rc == 0) {
        p->event_json = sp_arena_strndup(arena, json, len);
        p->event_json_len = len;
        if (!p->event_json)
            rc = sp_err_set(err, SP_ENOMEM, "out of memory keeping event.json");
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}
