/* A profile envelope -> Datadog's profile upload (event.json + multipart).
 *
 * The upload is shaped like the ones Datadog's own profilers send
 * (docs/datadog.md §5.3-5.4): an `event` part, filename event.json,
 * and one part per attachment whose form name and filename are the
 * attachment name. event.json starts from the original upload's event.json
 * when there was one, so fields spanprof does not know (info, internal,
 * process_tags, custom_attributes, ...) reach Datadog unchanged; the fields
 * spanprof owns (attachments, start, end, family, version, tags_profiler,
 * endpoint_counts) are rewritten from the envelope.
 *
 * Attachments: a pprof the join modified is re-encoded (gzip, or zstd when
 * the upload used zstd, since the intake sniffs magic bytes); every other
 * attachment goes out byte for byte as it arrived. No I/O. */
#include "dd_profile_upload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "dd_json.h"
#include "sp_hash.h"
#include "pprof_codec.h"

static bool sp_dd_nonempty(const char *s)
{
    return s && *s;
}

/* RFC 3339 UTC with nanoseconds, as dd-trace-go writes start/end. */
static void sp_dd_rfc3339(int64_t ns, char *out, size_t cap)
{
    time_t sec = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        sec -= 1;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%09ldZ", base, frac);
}

/* tags_profiler is one comma-separated string: a comma inside a value
 * would split it, so commas (and control characters) become '_'. */
static int sp_dd_tag_append(struct sp_buf *tags, const char *key, size_t key_len,
                            const char *value)
{
    if (!value || !*value || key_len == 0)
        return 0;
    int rc = 0;
    if (tags->len)
        rc |= sp_buf_append_byte(tags, ',');
    rc |= sp_buf_append(tags, key, key_len);
    rc |= sp_buf_append_byte(tags, ':');
    for (const char *v = value; *v; v++) {
        unsigned char c = (unsigned char)*v;
        rc |= sp_buf_append_byte(tags, (c == ',' || c < 0x20) ? '_' : c);
    }
    return rc ? SP_ENOMEM : 0;
}

static bool sp_dd_reserved_tag(const char *key, size_t len)
{
    static const char *const reserved[] = {"service", "env", "version", "host", "runtime-id"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], key, len) == 0)
            return true;
    return false;
}

/* True when "key:value" (sanitised the same way) is already in tags. */
static bool sp_dd_tag_present(const struct sp_buf *tags, const char *kv)
{
    size_t n = strlen(kv);
    const char *s = (const char *)tags->data;
    if (!s)
        return false;
    const char *end = s + tags->len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        if ((size_t)(e - s) == n && memcmp(s, kv, n) == 0)
            return true;
        s = e + 1;
    }
    return false;
}

static int sp_dd_tags_profiler(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                               struct sp_buf *tags)
{
    const char *env = sp_dd_nonempty(p->env) ? p->env : (o ? o->env : NULL);
    const char *host = sp_dd_nonempty(p->host) ? p->host : (o ? o->hostname : NULL);
    int rc = 0;
    rc |= sp_dd_tag_append(tags, "service", 7, p->service);
    rc |= sp_dd_tag_append(tags, "env", 3, env);
    rc |= sp_dd_tag_append(tags, "version", 7, p->version);
    rc |= sp_dd_tag_append(tags, "host", 4, host);
    rc |= sp_dd_tag_append(tags, "runtime-id", 10, p->runtime_id);
    for (size_t i = 0; i < p->tag_count; i++) {
        const char *k = p->tags[i].key;
        if (!k || sp_dd_reserved_tag(k, strlen(k)))
            continue;
        rc |= sp_dd_tag_append(tags, k, strlen(k), p->tags[i].value);
    }
    for (size_t i = 0; o && o->tags && o->tags[i]; i++) {
        const char *kv = o->tags[i];
        const char *colon = strchr(kv, ':');
        if (!colon || colon == kv)
            continue;
        size_t kl = (size_t)(colon - kv);
        /* The envelope's own service/env/... win over configured defaults. */
        if (sp_dd_reserved_tag(kv, kl)) {
            const char *have = NULL;
            if (kl == 7 && memcmp(kv, "service", 7) == 0)
                have = p->service;
            else if (kl == 3 && memcmp(kv, "env", 3) == 0)
                have = env;
            else if (kl == 7 && memcmp(kv, "version", 7) == 0)
                have = p->version;
            else if (kl == 4 && memcmp(kv, "host", 4) == 0)
                have = host;
            else
                have = p->runtime_id;
            if (sp_dd_nonempty(have))
                continue;
        }
        if (sp_dd_tag_present(tags, kv))
            continue;
        rc |= sp_dd_tag_append(tags, kv, kl, colon + 1);
    }
    return rc ? SP_ENOMEM : 0;
}

/* The attachment's name as it goes on the wire: quotes and line breaks
 * would break the Content-Disposition header, so they become '_'. */
static char *sp_dd_part_name(const struct sp_attachment *a, size_t i)
{
    char fallback[48];
    const char *n = a->name;
    if (!sp_dd_nonempty(n)) {
        if (a->pprof)
            snprintf(fallback, sizeof(fallback), i ? "profile-%zu.pprof" : "profile.pprof", i);
        else
            snprintf(fallback, sizeof(fallback), "attachment-%zu", i);
        n = fallback;
    }
    char *s = strdup(n);
    if (!s)
        return NULL;
    for (char *c = s; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '_';
    return s;
}

static int sp_dd_set(struct json_object *root, const char *key, struct json_object *v)
{
    if (!v)
        return SP_ENOMEM;
    return json_object_object_add(root, key, v) == 0 ? 0 : SP_ENOMEM;
}

/* The join's counts merged into the upload's: per endpoint the larger
 * count wins, so an endpoint both the tracer and the join counted is not
 * counted twice, and one only the join saw is added. */
static int sp_dd_endpoint_counts(const struct sp_profile *p, struct json_object *root)
{
    struct json_object *orig = NULL;
    struct json_object *merged = json_object_new_object();
    if (!merged)
        return SP_ENOMEM;
    if (json_object_object_get_ex(root, "endpoint_counts", &orig) &&
        json_object_is_type(orig, json_type_object)) {
        json_object_object_foreach(orig, k, v)
        {
            if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                continue;
            int64_t c = json_object_get_int64(v);
            if (c < 0)
                continue;
            json_object_object_add(merged, k, json_object_new_int64(c));
        }
    }
    for (size_t i = 0; i < p->endpoint_count_count; i++) {
        const struct sp_endpoint_count *ec = &p->endpoint_counts[i];
        if (!sp_dd_nonempty(ec->endpoint) || ec->count <= 0)
            continue;
        struct json_object *have = NULL;
        if (json_object_object_get_ex(merged, ec->endpoint, &have) &&
            json_object_get_int64(have) >= ec->count)
            continue;
        if (json_object_object_add(merged, ec->endpoint, json_object_new_int64(ec->count)) != 0) {
            json_object_put(merged);
            return SP_ENOMEM;
        }
    }
    if (json_object_object_length(merged) == 0) {
        json_object_put(merged);
        json_object_object_del(root, "endpoint_counts");
        return 0;
    }
    return sp_dd_set(root, "endpoint_counts", merged);
}

/* Writes o as JSON the way dd-trace-go's json.Marshal writes event.json:
 * strings through sp_text (HTML escapes, U+2028/2029, invalid UTF-8 as
 * \ufffd, so the output is valid JSON whatever the tracer sent), numbers,
 * booleans and null as json-c prints them, members in their order. The
 * tree comes from a tokener with depth 32, so the recursion is bounded. */
static int sp_dd_json_write(struct sp_buf *out, struct json_object *o)
{
    int rc = 0;
    switch (json_object_get_type(o)) {
    case json_type_string:
        return sp_dd_json_str(out, json_object_get_string(o),
                              (size_t)json_object_get_string_len(o));
    case json_type_object: {
        bool first = true;
        rc |= sp_buf_append_byte(out, '{');
        json_object_object_foreach(o, k, v)
        {
            if (!first)
                rc |= sp_buf_append_byte(out, ',');
            first = false;
            rc |= sp_dd_json_cstr(out, k);
            rc |= sp_buf_append_byte(out, ':');
            rc |= sp_dd_json_write(out, v);
        }
        return rc | sp_buf_append_byte(out, '}');
    }
    case json_type_array: {
        size_t n = json_object_array_length(o);
        rc |= sp_buf_append_byte(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                rc |= sp_buf_append_byte(out, ',');
            rc |= sp_dd_json_write(out, json_object_array_get_idx(o, i));
        }
        return rc | sp_buf_append_byte(out, ']');
    }
    default: {
        size_t len = 0;
        const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
        return t ? sp_buf_append(out, t, len) : SP_ENOMEM;
    }
    }
}

static int sp_dd_event_build(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                             char *const *names, struct sp_buf *out, struct sp_err *err)
{
    struct json_object *root = NULL;
    if (p->event_json && p->event_json_len) {
        struct json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
            return sp_err_set(err, SP_ENOMEM, "out of memory");
        root = json_tokener_parse_ex(tok, p->event_json, (int)p->event_json_len);
        json_tokener_free(tok);
        if (root && !json_object_is_type(root, json_type_object)) {
            json_object_put(root);
            root = NULL;
        }
    }
    /* An upload whose event.json does not parse still goes: the fields
     * Datadog needs come from the envelope. */
    if (!root)
        root = json_object_new_object();
    if (!root)
        return sp_err_set(err, SP_ENOMEM, "out of memory");

    int rc = 0;
    struct json_object *att = json_object_new_array();
    for (size_t i = 0; att && i < p->attachment_count; i++)
        rc |= json_object_array_add(att, json_object_new_string(names[i]));
    rc |= sp_dd_set(root, "attachments", att);
    char ts[48];
    if (p->start_ns > 0) {
        sp_dd_rfc3339(p->start_ns, ts, sizeof(ts));
        rc |= sp_dd_set(root, "start", json_object_new_string(ts));
    }
    if (p->end_ns > 0) {
        sp_dd_rfc3339(p->end_ns, ts, sizeof(ts));
        rc |= sp_dd_set(root, "end", json_object_new_string(ts));
    }
    if (sp_dd_nonempty(p->family))
        rc |= sp_dd_set(root, "family", json_object_new_string(p->family));
    rc |= sp_dd_set(root, "version", json_object_new_string("4"));

    struct sp_buf tags = {0};
    rc |= sp_dd_tags_profiler(p, o, &tags);
    rc |= sp_dd_set(root, "tags_profiler",
                    json_object_new_string_len(tags.data ? (const char *)tags.data : "",
                                               (int)tags.len));
    sp_buf_free(&tags);
    rc |= sp_dd_endpoint_counts(p, root);
    if (rc) {
        json_object_put(root);
        return sp_err_set(err, SP_ENOMEM, "out of memory building event.json");
    }
    rc = sp_dd_json_write(out, root);
    json_object_put(root);
    return rc ? sp_err_set(err, SP_ENOMEM, "out of memory building event.json") : 0;
}

static void sp_dd_free_names(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static char **sp_dd_names(const struct sp_profile *p)
{
    char **names = calloc(p->attachment_count + 1, sizeof(*names));
    if (!names)
        return NULL;
    for (size_t i = 0; i < p->attachment_count; i++) {
        names[i] = sp_dd_part_name(&p->attachments[i], i);
        if (!names[i]) {
            sp_dd_free_names(names, i);
            return NULL;
        }
    }
    return names;
}

int sp_dd_profile_event_json(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                             struct sp_buf *out, struct sp_err *err)
{
    char **names = sp_dd_names(p);
    if (!names)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    int rc = sp_dd_event_build(p, o, names, out, err);
    sp_dd_free_names(names, p->attachment_count);
    return rc;
}

/* The boundary only needs to be unlikely inside the parts (and that is
 * checked), not secret: a mixed counter and clock. */
static void sp_dd_boundary(char *out, size_t cap)
{
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uintptr_t)out;
    uint64_t a = sp_hash_u64(seed + ++counter), b = sp_hash_u64(a ^ counter);
    snprintf(out, cap, "spanprof-%016" PRIx64 "%016" PRIx64, a, b);
}

struct sp_dd_part {
    const uint8_t *data;
    size_t len;
    struct sp_buf owned; /* re-encoded pprof */
};

static int sp_dd_part_header(struct sp_buf *out, const char *boundary, const char *name,
                             const char *filename, const char *ctype)
{
    return sp_buf_printf(out,
                         "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                         "Content-Type: %s\r\n\r\n",
                         boundary, name, filename, ctype);
}

int sp_dd_profile_multipart(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                            struct sp_buf *out, char **content_type, struct sp_err *err)
{
    *content_type = NULL;
    if (p->attachment_count == 0)
        return sp_err_set(err, SP_EINVAL, "profile of service '%s' has no attachment to upload",
                          p->service ? p->service : "");
    char **names = sp_dd_names(p);
    struct sp_dd_part *parts = calloc(p->attachment_count, sizeof(*parts));
    struct sp_buf event = {0};
    int rc = 0;
    if (!names || !parts) {
        rc = sp_err_set(err, SP_ENOMEM, "out of memory");
        goto done;
    }
    rc = sp_dd_event_build(p, o, names, &event, err);
    for (size_t i = 0; rc == 0 && i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        if (a->pprof && (a->modified || !a->data)) {
            enum sp_compression c =
                a->compression == SP_COMPRESSION_ZSTD ? SP_COMPRESSION_ZSTD : SP_COMPRESSION_GZIP;
            rc = sp_pprof_encode(a->pprof, c, &parts[i].owned, err);
            if (rc) {
                sp_err_prefix(err, "attachment '%s'", names[i]);
                break;
            }
            parts[i].data = parts[i].owned.data;
            parts[i].len = parts[i].owned.len;
        } else {
            parts[i].data = a->data;
            parts[i].len = a->len;
        }
    }
    if (rc)
        goto done;

    char boundary[64];
    size_t total = event.len + 256;
    for (size_t i = 0; i < p->attachment_count; i++)
        total += parts[i].len + 2 * strlen(names[i]) + 160;
    for (int attempt = 0;; attempt++) {
        sp_dd_boundary(boundary, sizeof(boundary));
        bool clash = event.len && memmem(event.data, event.len, boundary, strlen(boundary));
        for (size_t i = 0; !clash && i < p->attachment_count; i++)
            clash = parts[i].len && memmem(parts[i].data, parts[i].len, boundary,
                                           strlen(boundary)) != NULL;
        if (!clash)
            break;
        if (attempt == 8) {
            rc = sp_err_set(err, SP_EINVAL, "cannot find a multipart boundary absent from the "
                                            "attachments");
            goto done;
        }
    }
    rc = sp_buf_reserve(out, total);
    rc |= sp_dd_part_header(out, boundary, "event", "event.json", "application/json");
    rc |= sp_buf_append(out, event.data, event.len);
    rc |= sp_buf_append(out, "\r\n", 2);
    for (size_t i = 0; rc == 0 && i < p->attachment_count; i++) {
        rc |= sp_dd_part_header(out, boundary, names[i], names[i], "application/octet-stream");
        if (parts[i].len)
            rc |= sp_buf_append(out, parts[i].data, parts[i].len);
        rc |= sp_buf_append(out, "\r\n", 2);
    }
    rc |= sp_buf_printf(out, "--%s--\r\n", boundary);
    if (rc) {
        rc = sp_err_set(err, SP_ENOMEM, "out of memory building the multipart body");
        goto done;
    }
    if (asprintf(content_type, "multipart/form-data; boundary=%s", boundary) < 0) {
        *content_type = NULL;
        rc = sp_err_set(err, SP_ENOMEM, "out of memory");
    }

done:
    if (parts)
        for (size_t i = 0; i < p->attachment_count; i++)
            sp_buf_free(&parts[i].owned);
    free(parts);
    sp_dd_free_names(names, p->attachment_count);
    sp_buf_free(&event);
    return rc;
}
