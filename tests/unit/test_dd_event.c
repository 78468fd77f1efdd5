/* Unit tests of model/dd_event.c: the event.json of the real dd-trace-js
 * upload fixture, tags_profiler splitting, RFC 3339 times, bad events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dd_event.h"
#include "multipart.h"
#include "sp_test.h"

static const char *tag(const struct sp_profile *p, const char *key)
{
    for (size_t i = 0; i < p->tag_count; i++)
        if (strcmp(p->tags[i].key, key) == 0)
            return p->tags[i].value;
    return NULL;
}

static void test_fixture_event(void)
{
    char path[4096];
    sp_test_fixture(path, sizeof(path), "dd-profile-upload.multipart");
    size_t len;
    unsigned char *body = sp_test_read_file(path, &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    struct sp_multipart_part *parts;
    size_t n;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_multipart_parse(body, len, "22617a2eef51a8ff", NULL, a, &parts, &n, &err), 0);
    const struct sp_multipart_part *ev = sp_multipart_find(parts, n, "event");
    ASSERT(ev != NULL);
    struct sp_profile p = {0};
    struct sp_dd_event info;
    int rc = sp_dd_event_parse((const char *)ev->data, ev->len, a, &p, &info, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(p.service, "dd-profile-app");
    ASSERT_EQ_STR(p.env, "acceptance");
    ASSERT_EQ_STR(p.version, "0.1.0");
    ASSERT_EQ_STR(p.runtime_id, "71db257c-af7b-4285-9280-cbc8b403ecae");
    ASSERT(p.host == NULL);
    ASSERT_EQ_STR(p.family, "node");
    ASSERT_EQ_STR(info.format_version, "4");
    ASSERT_EQ_INT(info.attachment_count, 2);
    ASSERT_EQ_STR(info.attachments[0], "wall.pprof");
    ASSERT_EQ_STR(info.attachments[1], "events.pprof");
    /* "2026-11-21T23:21:55.264Z" .. "2026-11-21T23:21:58.330Z" */
    ASSERT_EQ_INT(p.start_ns, 1795303315264000000LL);
    ASSERT_EQ_INT(p.end_ns - p.start_ns, 3066000000LL);
    ASSERT_EQ_STR(tag(&p, "language"), "javascript");
    ASSERT_EQ_STR(tag(&p, "runtime_version"), "v20.20.2");
    ASSERT_EQ_STR(tag(&p, "profile_seq"), "0");
    ASSERT_EQ_STR(tag(&p, "process_id"), "28384");
    ASSERT(tag(&p, "service") == NULL);
    ASSERT_EQ_INT(p.tag_count, 10);
    ASSERT_EQ_STR(p.tags[9].key, "profile_seq");
    /* the original bytes are kept for the exporter */
    ASSERT_EQ_INT(p.event_json_len, ev->len);
    ASSERT(memcmp(p.event_json, ev->data, ev->len) == 0);
    ASSERT_CONTAINS(p.event_json, "\"endpoint_counts\":{\"GET\":291}");
    free(body);
    sp_arena_destroy(a);
}

static void test_tags(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_profile p = {0};
    const char *t = " service:api , env:prod,version:1.2:3,flag,host:h1,service:second,"
                    "runtime-id:r,,url:http://x:80/y ";
    ASSERT_EQ_INT(sp_dd_tags_parse(t, strlen(t), 0, a, &p), 0);
    ASSERT_EQ_STR(p.service, "api");
    ASSERT_EQ_STR(p.env, "prod");
    ASSERT_EQ_STR(p.version, "1.2:3");
    ASSERT_EQ_STR(p.host, "h1");
    ASSERT_EQ_STR(p.runtime_id, "r");
    ASSERT_EQ_INT(p.tag_count, 3);
    ASSERT_EQ_STR(p.tags[0].key, "flag");
    ASSERT_EQ_STR(p.tags[0].value, "");
    ASSERT_EQ_STR(p.tags[1].key, "service");
    ASSERT_EQ_STR(p.tags[1].value, "second");
    ASSERT_EQ_STR(p.tags[2].value, "http://x:80/y");
    /* appending keeps earlier tags; the bound holds */
    ASSERT_EQ_INT(sp_dd_tags_parse("a:1,b:2,c:3", 11, 2, a, &p), 0);
    ASSERT_EQ_INT(p.tag_count, 5);
    ASSERT_EQ_STR(p.tags[0].key, "flag");
    ASSERT_EQ_STR(p.tags[4].key, "b");
    sp_arena_destroy(a);
}

static void test_rfc3339(void)
{
    int64_t ns;
    ASSERT_EQ_INT(sp_rfc3339_parse_ns("1970-01-01T00:00:00Z", 20, &ns), 0);
    ASSERT_EQ_INT(ns, 0);
    const char *s = "2006-01-02T15:04:05.999999999+07:00";
    ASSERT_EQ_INT(sp_rfc3339_parse_ns(s, strlen(s), &ns), 0);
    ASSERT_EQ_INT(ns, 1136189045999999999LL);
    s = "2024-02-29T12:00:00.5-01:30";
    ASSERT_EQ_INT(sp_rfc3339_parse_ns(s, strlen(s), &ns), 0);
    ASSERT_EQ_INT(ns, 1709213400500000000LL);
    s = "2024-02-29T12:00:00.1234567891234Z"; /* extra digits are truncated */
    ASSERT_EQ_INT(sp_rfc3339_parse_ns(s, strlen(s), &ns), 0);
    ASSERT_EQ_INT(ns % 1000000000LL, 123456789);
    const char *bad[] = {"", "2024-02-29", "2024-02-29T12:00:00", "2024-13-01T00:00:00Z",
                         "2024-02-29T12:00:00.Z", "2024-02-29T12:00:00Zjunk",
                         "2024-02-29T25:00:00Z", "x024-02-29T12:00:00Z",
                         "2024-02-29T12:00:00+0100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ_INT(sp_rfc3339_parse_ns(bad[i], strlen(bad[i]), &ns), SP_EINVAL);
}

static int parse(const char *json, struct sp_profile *p, struct sp_arena *a, struct sp_err *err)
{
    memset(p, 0, sizeof(*p));
    return sp_dd_event_parse(json, strlen(json), a, p, NULL, err);
}

static void test_bad_events(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_profile p;
    struct sp_err err = {0};
    ASSERT_EQ_INT(parse("{\"start\":", &p, a, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "not valid JSON");
    ASSERT_EQ_INT(parse("[1,2]", &p, a, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "want an object");
    ASSERT_EQ_INT(parse("{} {}", &p, a, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "trailing");
    ASSERT_EQ_INT(parse("{\"start\":12}", &p, a, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "'start' is a int");
    ASSERT_EQ_INT(parse("{\"end\":\"yesterday\"}", &p, a, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "'end': 'yesterday' is not an RFC 3339 time");
    ASSERT_EQ_INT(parse("{\"start\":\"2024-01-01T00:00:01Z\",\"end\":\"2024-01-01T00:00:00Z\"}",
                        &p, a, &err),
                  SP_EDECODE);
    ASSERT_EQ_INT(parse("{\"attachments\":\"cpu.pprof\"}", &p, a, &err), SP_EDECODE);
    ASSERT_EQ_INT(parse("{\"attachments\":[1]}", &p, a, &err), SP_EDECODE);
    ASSERT_EQ_INT(parse("{\"tags_profiler\":{}}", &p, a, &err), SP_EDECODE);
    /* too deep */
    char deep[200];
    memset(deep, '[', 100);
    strcpy(deep + 100, "");
    ASSERT_EQ_INT(parse(deep, &p, a, &err), SP_EDECODE);
    /* minimal valid event: nothing required */
    ASSERT_EQ_INT(parse(" {} ", &p, a, &err), 0);
    ASSERT(p.event_json != NULL);
    ASSERT_EQ_INT(p.start_ns, 0);
    /* null fields are absent */
    ASSERT_EQ_INT(parse("{\"start\":null,\"family\":null,\"attachments\":null}", &p, a, &err), 0);
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_fixture_event);
    RUN(test_tags);
    RUN(test_rfc3339);
    RUN(test_bad_events);
    return sp_test_summary();
}
