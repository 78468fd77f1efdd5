/* Unit tests of model/dd_profile_upload.c: event.json and the multipart
 * body of a Datadog profile upload, built from the real dd-trace-js upload
 * in tests/data/fixtures (event.json + wall.pprof + events.pprof) and read
 * back part by part. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dd_profile_upload.h"
#include "pprof_codec.h"
#include "sp_compress.h"
#include "sp_test.h"

struct part {
    char name[128];
    char filename[128];
    char ctype[128];
    const uint8_t *data;
    size_t len;
};

/* A small multipart reader for the tests (the body is ours: CRLF, one
 * Content-Disposition and one Content-Type per part). */
static int parse_multipart(const uint8_t *body, size_t len, const char *boundary, struct part *out,
                           int max)
{
    char delim[100];
    snprintf(delim, sizeof(delim), "--%s", boundary);
    size_t dl = strlen(delim);
    const uint8_t *p = memmem(body, len, delim, dl);
    int n = 0;
    while (p && n < max) {
        p += dl;
        if (p + 2 <= body + len && p[0] == '-' && p[1] == '-')
            return n;
        p += 2;
        const uint8_t *he = memmem(p, (size_t)(body + len - p), "\r\n\r\n", 4);
        if (!he)
            return -1;
        char head[512];
        size_t hl = (size_t)(he - p) < sizeof(head) - 1 ? (size_t)(he - p) : sizeof(head) - 1;
        memcpy(head, p, hl);
        head[hl] = 0;
        struct part *pt = &out[n];
        memset(pt, 0, sizeof(*pt));
        char *s = strstr(head, " name=\"");
        if (s)
            sscanf(s + 7, "%127[^\"]", pt->name);
        s = strstr(head, "filename=\"");
        if (s)
            sscanf(s + 10, "%127[^\"]", pt->filename);
        s = strstr(head, "Content-Type: ");
        if (s)
            sscanf(s + 14, "%127[^\r]", pt->ctype);
        const uint8_t *data = he + 4;
        const uint8_t *next = memmem(data, (size_t)(body + len - data), delim, dl);
        if (!next || next - data < 2)
            return -1;
        pt->data = data;
        pt->len = (size_t)(next - data) - 2;
        n++;
        p = next;
    }
    return -1;
}

static uint8_t *fixture;
static size_t fixture_len;
static struct part fx[8];
static int fx_n;

static int load_fixture(void)
{
    if (fixture)
        return 0;
    char path[1024];
    sp_test_fixture(path, sizeof(path), "dd-profile-upload.multipart");
    fixture = sp_test_read_file(path, &fixture_len);
    if (!fixture)
        return -1;
    fx_n = parse_multipart(fixture, fixture_len, "22617a2eef51a8ff", fx, 8);
    return fx_n == 3 ? 0 : -1;
}

static const struct part *fx_part(const char *name)
{
    for (int i = 0; i < fx_n; i++)
        if (strcmp(fx[i].name, name) == 0)
            return &fx[i];
    return NULL;
}

/* Adds a string label key=value to the first sample (what the join does). */
static int add_label(sp_pprof *p, struct sp_arena *a, const char *key, const char *value)
{
    if (p->n_sample == 0)
        return -1;
    Perftools__Profiles__Sample *s = p->sample[0];
    Perftools__Profiles__Label **nl = sp_arena_alloc(a, (s->n_label + 1) * sizeof(*nl));
    Perftools__Profiles__Label *l = sp_arena_alloc(a, sizeof(*l));
    if (!nl || !l)
        return -1;
    perftools__profiles__label__init(l);
    l->key = sp_pprof_intern(p, a, key);
    l->str = sp_pprof_intern(p, a, value);
    memcpy(nl, s->label, s->n_label * sizeof(*nl));
    nl[s->n_label] = l;
    s->label = nl;
    s->n_label++;
    return 0;
}

static const char *sample0_label(const sp_pprof *p, const char *key)
{
    const Perftools__Profiles__Sample *s = p->sample[0];
    for (size_t i = 0; i < s->n_label; i++) {
        const char *k = sp_pprof_str(p, s->label[i]->key);
        if (k && strcmp(k, key) == 0)
            return sp_pprof_str(p, s->label[i]->str);
    }
    return NULL;
}

struct env {
    struct sp_arena *arena;
    struct sp_profile prof;
    struct sp_attachment att[2];
    struct sp_kv_str tags[3];
    struct sp_endpoint_count ec[2];
};

static int setup(struct env *e)
{
    memset(e, 0, sizeof(*e));
    if (load_fixture() != 0)
        return -1;
    e->arena = sp_arena_create(0);
    const struct part *ev = fx_part("event");
    const struct part *wall = fx_part("wall.pprof");
    const struct part *events = fx_part("events.pprof");
    if (!ev || !wall || !events)
        return -1;
    struct sp_profile *p = &e->prof;
    p->dialect = "datadog";
    p->service = "dd-profile-app";
    p->env = "acceptance";
    p->version = "0.1.0";
    p->host = NULL;
    p->runtime_id = "71db257c-af7b-4285-9280-cbc8b403ecae";
    p->family = "node";
    p->start_ns = 1795303315264000000LL; /* 2026-11-21T23:21:55.264Z */
    p->end_ns = 1795303318330000001LL;
    e->tags[0] = (struct sp_kv_str){"language", "javascript"};
    e->tags[1] = (struct sp_kv_str){"service", "must-not-repeat"};
    e->tags[2] = (struct sp_kv_str){"odd", "a,b"};
    p->tags = e->tags;
    p->tag_count = 3;
    p->event_json = (const char *)ev->data;
    p->event_json_len = ev->len;
    p->origin = "dd-trace-js";
    e->att[0].name = "wall.pprof";
    e->att[0].data = wall->data;
    e->att[0].len = wall->len;
    e->att[0].compression = SP_COMPRESSION_GZIP;
    struct sp_err err = {0};
    if (sp_pprof_decode(wall->data, wall->len, 64 << 20, e->arena, &e->att[0].pprof, NULL, &err))
        return -1;
    e->att[1].name = "events.pprof";
    e->att[1].data = events->data;
    e->att[1].len = events->len;
    e->att[1].compression = SP_COMPRESSION_GZIP;
    if (sp_pprof_decode(events->data, events->len, 64 << 20, e->arena, &e->att[1].pprof, NULL,
                        &err))
        return -1;
    p->attachments = e->att;
    p->attachment_count = 2;
    e->ec[0] = (struct sp_endpoint_count){"GET", 300};
    e->ec[1] = (struct sp_endpoint_count){"GET /api/slow", 7};
    p->endpoint_counts = e->ec;
    p->endpoint_count_count = 2;
    return 0;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void test_event_json_fields(void)
{
    struct env e;
    ASSERT_EQ_INT(setup(&e), 0);
    const char *exp_tags[] = {"team:profiling", "env:ignored", "language:javascript", NULL};
    struct sp_dd_profile_opts o = {.env = "other", .hostname = "node-7", .tags = exp_tags};
    struct sp_buf out = {0};
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_profile_event_json(&e.prof, &o, &out, &err), 0);
    struct json_object *j = json_tokener_parse((const char *)out.data);
    ASSERT(j);
    struct json_object *att;
    ASSERT(json_object_object_get_ex(j, "attachments", &att));
    ASSERT_EQ_INT(json_object_array_length(att), 2);
    ASSERT_EQ_STR(json_object_get_string(json_object_array_get_idx(att, 0)), "wall.pprof");
    ASSERT_EQ_STR(json_object_get_string(json_object_array_get_idx(att, 1)), "events.pprof");
    ASSERT_EQ_STR(jstr(j, "version"), "4");
    ASSERT_EQ_STR(jstr(j, "family"), "node");
    ASSERT_EQ_STR(jstr(j, "start"), "2026-11-21T23:21:55.264000000Z");
    ASSERT_EQ_STR(jstr(j, "end"), "2026-11-21T23:21:58.330000001Z");
    ASSERT_EQ_STR(jstr(j, "tags_profiler"),
                  "service:dd-profile-app,env:acceptance,version:0.1.0,host:node-7,"
                  "runtime-id:71db257c-af7b-4285-9280-cbc8b403ecae,language:javascript,"
                  "odd:a_b,team:profiling");
    /* Endpoint counts: the larger count per endpoint, the join's extras added. */
    struct json_object *ec, *v;
    ASSERT(json_object_object_get_ex(j, "endpoint_counts", &ec));
    ASSERT_EQ_INT(json_object_object_length(ec), 2);
    ASSERT(json_object_object_get_ex(ec, "GET", &v));
    ASSERT_EQ_INT(json_object_get_int64(v), 300);
    ASSERT(json_object_object_get_ex(ec, "GET /api/slow", &v));
    ASSERT_EQ_INT(json_object_get_int64(v), 7);
    /* Fields spanprof does not own are kept as they were. */
    ASSERT_CONTAINS(jstr(j, "process_tags"), "entrypoint.name:dd-profile-app");
    struct json_object *info, *prof;
    ASSERT(json_object_object_get_ex(j, "info", &info));
    ASSERT(json_object_object_get_ex(info, "profiler", &prof));
    ASSERT_EQ_STR(jstr(prof, "version"), "5.132.0");
    json_object_put(j);
    sp_buf_free(&out);
    sp_arena_destroy(e.arena);
}

static void test_event_json_without_original(void)
{
    struct sp_profile p;
    memset(&p, 0, sizeof(p));
    struct sp_attachment a = {.name = "cpu.pprof", .data = (const uint8_t *)"x", .len = 1};
    p.service = "goapp";
    p.family = "go";
    p.attachments = &a;
    p.attachment_count = 1;
    p.start_ns = 1000000000LL;
    p.end_ns = 61000000000LL;
    struct sp_dd_profile_opts o = {.env = "prod", .hostname = "h1"};
    struct sp_buf out = {0};
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_profile_event_json(&p, &o, &out, &err), 0);
    struct json_object *j = json_tokener_parse((const char *)out.data);
    ASSERT(j);
    ASSERT_EQ_STR(jstr(j, "tags_profiler"), "service:goapp,env:prod,host:h1");
    ASSERT_EQ_STR(jstr(j, "start"), "1970-01-01T00:00:01.000000000Z");
    ASSERT_EQ_STR(jstr(j, "family"), "go");
    struct json_object *v;
    ASSERT(!json_object_object_get_ex(j, "endpoint_counts", &v)); /* omitted when empty */
    json_object_put(j);
    sp_buf_free(&out);

    /* A broken original event.json: the envelope still makes a valid one. */
    p.event_json = "{\"attachments\":[";
    p.event_json_len = strlen(p.event_json);
    ASSERT_EQ_INT(sp_dd_profile_event_json(&p, NULL, &out, &err), 0);
    j = json_tokener_parse((const char *)out.data);
    ASSERT(j);
    ASSERT_EQ_STR(jstr(j, "version"), "4");
    ASSERT_EQ_STR(jstr(j, "tags_profiler"), "service:goapp");
    json_object_put(j);
    sp_buf_free(&out);

    /* Fields kept from the original are written as json.Marshal writes
     * them: HTML escapes, U+2028, an invalid byte as \ufffd, so the
     * result is valid JSON even when the tracer's was not UTF-8. */
    p.event_json = "{\"info\":{\"note\":\"a<b>&c\xe2\x80\xa8\xff/\"},\"n\":[1,2.5,true,null]}";
    p.event_json_len = strlen(p.event_json);
    ASSERT_EQ_INT(sp_dd_profile_event_json(&p, NULL, &out, &err), 0);
    ASSERT_CONTAINS((const char *)out.data,
                    "{\"info\":{\"note\":\"a\\u003cb\\u003e\\u0026c\\u2028\\ufffd/\"},"
                    "\"n\":[1,2.5,true,null],");
    sp_buf_free(&out);
}

static void test_multipart_roundtrip(void)
{
    struct env e;
    ASSERT_EQ_INT(setup(&e), 0);
    /* The join labelled wall.pprof; events.pprof is untouched. */
    ASSERT_EQ_INT(add_label(e.att[0].pprof, e.arena, "trace endpoint", "GET /api/slow"), 0);
    e.att[0].modified = true;
    struct sp_buf out = {0};
    char *ctype = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_profile_multipart(&e.prof, NULL, &out, &ctype, &err), 0);
    ASSERT(ctype);
    ASSERT(strncmp(ctype, "multipart/form-data; boundary=", 30) == 0);
    const char *boundary = ctype + 30;
    struct part parts[8];
    int n = parse_multipart(out.data, out.len, boundary, parts, 8);
    ASSERT_EQ_INT(n, 3);
    ASSERT_EQ_STR(parts[0].name, "event");
    ASSERT_EQ_STR(parts[0].filename, "event.json");
    ASSERT_EQ_STR(parts[0].ctype, "application/json");
    ASSERT_EQ_STR(parts[1].name, "wall.pprof");
    ASSERT_EQ_STR(parts[1].filename, "wall.pprof");
    ASSERT_EQ_STR(parts[2].name, "events.pprof");
    /* Untouched attachment: byte for byte. */
    const struct part *orig = fx_part("events.pprof");
    ASSERT_EQ_INT(parts[2].len, orig->len);
    ASSERT(memcmp(parts[2].data, orig->data, orig->len) == 0);
    /* Modified: re-encoded gzip carrying the new label. */
    ASSERT_EQ_INT(sp_compression_sniff(parts[1].data, parts[1].len), SP_COMPRESSION_GZIP);
    struct sp_arena *a2 = sp_arena_create(0);
    sp_pprof *back = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(parts[1].data, parts[1].len, 64 << 20, a2, &back, NULL, &err), 0);
    ASSERT_EQ_STR(sample0_label(back, "trace endpoint"), "GET /api/slow");
    ASSERT_EQ_INT(back->n_sample, e.att[0].pprof->n_sample);
    /* The event part parses and lists the attachments in part order. */
    struct json_tokener *tok = json_tokener_new();
    struct json_object *j = json_tokener_parse_ex(tok, (const char *)parts[0].data, (int)parts[0].len);
    json_tokener_free(tok);
    ASSERT(j);
    ASSERT_CONTAINS(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                    "\"attachments\":[\"wall.pprof\",\"events.pprof\"]");
    json_object_put(j);
    sp_arena_destroy(a2);
    free(ctype);
    sp_buf_free(&out);
    sp_arena_destroy(e.arena);
}

static void test_multipart_zstd_stays_zstd(void)
{
    struct env e;
    ASSERT_EQ_INT(setup(&e), 0);
    ASSERT_EQ_INT(add_label(e.att[0].pprof, e.arena, "trace endpoint", "GET"), 0);
    e.att[0].modified = true;
    e.att[0].compression = SP_COMPRESSION_ZSTD;
    struct sp_buf out = {0};
    char *ctype = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_dd_profile_multipart(&e.prof, NULL, &out, &ctype, &err), 0);
    struct part parts[8];
    ASSERT_EQ_INT(parse_multipart(out.data, out.len, ctype + 30, parts, 8), 3);
    ASSERT_EQ_INT(sp_compression_sniff(parts[1].data, parts[1].len), SP_COMPRESSION_ZSTD);
    struct sp_arena *a2 = sp_arena_create(0);
    sp_pprof *back = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(parts[1].data, parts[1].len, 64 << 20, a2, &back, NULL, &err), 0);
    ASSERT_EQ_STR(sample0_label(back, "trace endpoint"), "GET");
    sp_arena_destroy(a2);
    free(ctype);
    sp_buf_free(&out);
    sp_arena_destroy(e.arena);
}

static void test_multipart_names_and_errors(void)
{
    struct sp_profile p;
    memset(&p, 0, sizeof(p));
    struct sp_buf out = {0};
    char *ctype = NULL;
    struct sp_err err = {0};
    p.service = "s";
    ASSERT_EQ_INT(sp_dd_profile_multipart(&p, NULL, &out, &ctype, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "no attachment");
    ASSERT(ctype == NULL);

    struct sp_attachment a[2] = {
        {.name = "evil\"\r\nX-Injected: 1.json", .data = (const uint8_t *)"{}", .len = 2},
        {.name = "", .data = (const uint8_t *)"", .len = 0},
    };
    p.attachments = a;
    p.attachment_count = 2;
    ASSERT_EQ_INT(sp_dd_profile_multipart(&p, NULL, &out, &ctype, &err), 0);
    struct part parts[8];
    ASSERT_EQ_INT(parse_multipart(out.data, out.len, ctype + 30, parts, 8), 3);
    ASSERT_EQ_STR(parts[1].name, "evil___X-Injected: 1.json");
    ASSERT_EQ_INT(parts[1].len, 2);
    ASSERT_EQ_STR(parts[2].name, "attachment-1");
    ASSERT_EQ_INT(parts[2].len, 0);
    ASSERT(!memmem(out.data, out.len, "\r\nX-Injected", 12));
    free(ctype);
    sp_buf_free(&out);
}

int main(void)
{
    RUN(test_event_json_fields);
    RUN(test_event_json_without_original);
    RUN(test_multipart_roundtrip);
    RUN(test_multipart_zstd_stays_zstd);
    RUN(test_multipart_names_and_errors);
    free(fixture);
    return sp_test_summary();
}
