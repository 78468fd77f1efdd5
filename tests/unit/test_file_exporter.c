/* The `file` exporter through its component vtable on a libuv loop:
 * create -> start -> consume (real SDK spans from the otlp-http-proto
 * fixture, a profile upload with gzip, zstd, modified and non-pprof
 * attachments) -> shutdown -> destroy, then every file read back: the JSON
 * lines against the mapping, event.json, each part byte for byte (or
 * decoded when re-encoded), rotation and the upload bound, and disk
 * failures counted without failing the pipeline. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uv.h>

#include "dd_payload.h"
#include "pprof_codec.h"
#include "sp_compress.h"
#include "sp_component.h"
#include "sp_metrics.h"
#include "sp_test.h"

extern const struct sp_component_type sp_file_exporter_type;

/* The exporter's config struct, as its key table describes it. */
struct file_conf {
    char *path;
    uint64_t max_file_size;
    int64_t max_files;
    int64_t max_profile_uploads;
    char *hostname;
    char *env;
    struct sp_strlist tags;
};

static char tmpdir[256];

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        rm_rf(p);
    }
    closedir(d);
    rmdir(path);
}

static size_t count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* The only entry of a directory whose name starts with prefix. */
static int find_entry(const char *dir, const char *prefix, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(out, cap, "%s/%s", dir, e->d_name);
            found = 0;
        }
    closedir(d);
    return found;
}

struct harness {
    uv_loop_t loop;
    struct sp_host host;
    struct sp_component comp;
    struct file_conf conf;
    int done;
};

static void on_done(struct sp_component *c)
{
    struct harness *h = (struct harness *)((char *)c - offsetof(struct harness, comp));
    h->done++;
}

static int harness_up(struct harness *h, uint64_t max_size, int64_t max_files, int64_t max_up)
{
    memset(h, 0, sizeof *h);
    uv_loop_init(&h->loop);
    h->host.loop = &h->loop;
    h->conf.path = tmpdir;
    h->conf.max_file_size = max_size;
    h->conf.max_files = max_files;
    h->conf.max_profile_uploads = max_up;
    h->conf.hostname = "cfg-host";
    h->comp.type = &sp_file_exporter_type;
    h->comp.id = "file";
    h->comp.conf = &h->conf;
    h->comp.loop = &h->loop;
    h->comp.host = &h->host;
    h->comp.metric_labels = "component=\"file\"";
    struct sp_err err = {0};
    int rc = h->comp.type->create(&h->comp, &err);
    if (rc == 0)
        rc = h->comp.type->start(&h->comp, &h->host, &err);
    if (rc)
        fprintf(stderr, "  harness: %s\n", err.msg);
    return rc;
}

static void harness_down(struct harness *h)
{
    h->comp.type->shutdown(&h->comp, on_done);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    h->comp.type->destroy(&h->comp);
    uv_loop_close(&h->loop);
}

static double metric(const char *name)
{
    struct sp_metric *m = sp_metric_find(name, "component=\"file\"");
    return m ? sp_metric_value(m) : -1;
}

static struct sp_batch *traces_batch(void)
{
    char path[512];
    size_t len;
    sp_test_fixture(path, sizeof path, "otlp-http-proto.bin");
    unsigned char *bin = sp_test_read_file(path, &len);
    if (!bin)
        return NULL;
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    ProtobufCAllocator al;
    sp_arena_pb_allocator(b->arena, &al);
    b->u.traces.req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(&al, len,
                                                                                         bin);
    free(bin);
    b->u.traces.span_count = sp_traces_count_spans(b->u.traces.req);
    return b;
}

static unsigned char *cpu_fixture;
static size_t cpu_fixture_len;
static struct sp_buf zstd_body;

/* A Datadog-style upload of service "shop": cpu.pprof as received (gzip),
 * delta-heap.pprof modified by "the join", wall.pprof received as zstd,
 * metrics.json, and a hostile name. */
static struct sp_batch *profile_batch(const char *service)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_PROFILES, 0);
    struct sp_profile *p = &b->u.profile;
    struct sp_err err = {0};
    p->dialect = "datadog";
    p->service = service;
    p->env = "prod";
    p->version = "1.0";
    p->family = "go";
    p->runtime_id = "rid-1";
    p->start_ns = INT64_C(1700000000000000000);
    p->end_ns = INT64_C(1700000060000000000);
    p->endpoint_counts = sp_arena_calloc(b->arena, 1, sizeof *p->endpoint_counts);
    p->endpoint_counts[0] = (struct sp_endpoint_count){"GET /api/users/{id}", 42};
    p->endpoint_count_count = 1;
    p->attachments = sp_arena_calloc(b->arena, 5, sizeof *p->attachments);
    struct sp_attachment *a = p->attachments;

    a[0].name = "cpu.pprof";
    a[0].data = cpu_fixture;
    a[0].len = cpu_fixture_len;
    sp_pprof_decode(cpu_fixture, cpu_fixture_len, 64u << 20, b->arena, &a[0].pprof,
                    &a[0].compression, &err);

    a[1].name = "delta-heap.pprof";
    a[1].data = cpu_fixture;
    a[1].len = cpu_fixture_len;
    sp_pprof_decode(cpu_fixture, cpu_fixture_len, 64u << 20, b->arena, &a[1].pprof,
                    &a[1].compression, &err);
    sp_pprof_intern(a[1].pprof, b->arena, "spanprof-test-mark");
    a[1].modified = true;

    a[2].name = "wall.pprof";
    a[2].data = zstd_body.data;
    a[2].len = zstd_body.len;
    sp_pprof_decode(zstd_body.data, zstd_body.len, 64u << 20, b->arena, &a[2].pprof,
                    &a[2].compression, &err);

    a[3].name = "metrics.json";
    a[3].data = (const uint8_t *)"[[\"go_goroutines\",12]]";
    a[3].len = strlen((const char *)a[3].data);

    a[4].name = "../../escape.txt";
    a[4].data = (const uint8_t *)"x";
    a[4].len = 1;
    p->attachment_count = 5;
    return b;
}

static int load_fixtures(void)
{
    char path[512];
    sp_test_fixture(path, sizeof path, "go-cpu-spanid.pprof");
    cpu_fixture = sp_test_read_file(path, &cpu_fixture_len);
    if (!cpu_fixture)
        return -1;
    /* The same profile as a zstd upload would carry it. */
    struct sp_arena *a = sp_arena_create(0);
    const uint8_t *raw;
    size_t raw_len;
    struct sp_err err = {0};
    int rc = sp_decompress(SP_COMPRESSION_GZIP, cpu_fixture, cpu_fixture_len, 64u << 20, a, &raw,
                           &raw_len, &err);
    if (rc == 0)
        rc = sp_compress(SP_COMPRESSION_ZSTD, 3, raw, raw_len, &zstd_body, &err);
    sp_arena_destroy(a);
    return rc;
}

static void setup_dir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spanprof-file-test-%d/out/data", (int)getpid());
    char top[256];
    snprintf(top, sizeof top, "/tmp/spanprof-file-test-%d", (int)getpid());
    rm_rf(top);
}

static void test_traces_and_profile(void)
{
    setup_dir();
    ASSERT_EQ_INT(load_fixtures(), 0);
    struct harness h;
    ASSERT_EQ_INT(harness_up(&h, 64u << 20, 3, 10), 0);
    /* start() created the directory (and its missing parents). */
    char p[1024];
    snprintf(p, sizeof p, "%s/profiles", tmpdir);
    struct stat st;
    ASSERT(stat(p, &st) == 0 && S_ISDIR(st.st_mode));

    struct sp_batch *tb = traces_batch();
    ASSERT(tb != NULL);
    ASSERT_EQ_INT(h.comp.type->consume(&h.comp, tb), SP_OK);
    struct sp_batch *pb = profile_batch("shop");
    ASSERT_EQ_INT(h.comp.type->consume(&h.comp, pb), SP_OK);
    harness_down(&h);
    ASSERT_EQ_INT(h.done, 1);

    /* traces.jsonl: 9 lines, the same JSON lines the mapping makes. */
    struct sp_arena *a = sp_arena_create(0);
    Datadog__Trace__AgentPayload *payload;
    size_t dropped;
    struct sp_err err = {0};
    struct sp_dd_map_opts mo = {.hostname = "cfg-host", .agent_version = "x"};
    ASSERT_EQ_INT(sp_dd_map_traces(&tb->u.traces, &mo, a, &payload, &dropped, &err), 0);
    snprintf(p, sizeof p, "%s/traces.jsonl", tmpdir);
    size_t len;
    char *text = (char *)sp_test_read_file(p, &len);
    ASSERT(text != NULL);
    size_t lines = 0;
    int bad = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *j = json_tokener_parse(line);
        json_object *meta, *v;
        if (!j || !json_object_object_get_ex(j, "meta", &meta) ||
            !json_object_object_get_ex(meta, "otel.trace_id", &v) ||
            !json_object_object_get_ex(j, "service", &v) ||
            strcmp(json_object_get_string(v), "fixture-otlp-proto") != 0)
            bad = (int)lines + 1;
        json_object_put(j);
        lines++;
    }
    free(text);
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(lines, 9);
    ASSERT(metric("spanprof_exporter_sent_spans_total") == 9);
    ASSERT(metric("spanprof_exporter_sent_profiles_total") == 1);
    ASSERT(metric("spanprof_exporter_failed_profiles_total") == 0);

    /* profiles/000001-shop-1700000000/ */
    char dir[1024];
    snprintf(p, sizeof p, "%s/profiles", tmpdir);
    ASSERT_EQ_INT(find_entry(p, "000001-shop-1700000000", dir, sizeof dir), 0);
    /* event.json + 5 parts + the gzip copy of the zstd pprof, nothing else. */
    ASSERT_EQ_INT(count_entries(dir), 7);
    snprintf(p, sizeof p, "/tmp/spanprof-file-test-%d/escape.txt", (int)getpid());
    ASSERT(access(p, F_OK) != 0);

    snprintf(p, sizeof p, "%s/event.json", dir);
    json_object *ev = json_object_from_file(p);
    ASSERT(ev != NULL);
    json_object *x;
    ASSERT(json_object_object_get_ex(ev, "attachments", &x) && json_object_array_length(x) == 5);
    ASSERT_EQ_STR(json_object_get_string(json_object_array_get_idx(x, 0)), "cpu.pprof");
    ASSERT_EQ_STR(json_object_get_string(json_object_array_get_idx(x, 3)), "metrics.json");
    ASSERT(json_object_object_get_ex(ev, "version", &x));
    ASSERT_EQ_STR(json_object_get_string(x), "4");
    ASSERT(json_object_object_get_ex(ev, "family", &x));
    ASSERT_EQ_STR(json_object_get_string(x), "go");
    ASSERT(json_object_object_get_ex(ev, "tags_profiler", &x));
    ASSERT_CONTAINS(json_object_get_string(x), "service:shop");
    ASSERT_CONTAINS(json_object_get_string(x), "runtime-id:rid-1");
    ASSERT(json_object_object_get_ex(ev, "endpoint_counts", &x));
    ASSERT(json_object_object_get_ex(x, "GET /api/users/{id}", &x));
    ASSERT_EQ_INT(json_object_get_int(x), 42);
    json_object_put(ev);

    /* Received as is: byte for byte. */
    snprintf(p, sizeof p, "%s/cpu.pprof", dir);
    unsigned char *got = sp_test_read_file(p, &len);
    ASSERT(got && len == cpu_fixture_len && memcmp(got, cpu_fixture, len) == 0);
    free(got);
    snprintf(p, sizeof p, "%s/wall.pprof", dir);
    got = sp_test_read_file(p, &len);
    ASSERT(got && len == zstd_body.len && memcmp(got, zstd_body.data, len) == 0);
    free(got);
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    got = sp_test_read_file(p, &len);
    ASSERT(got && strcmp((char *)got, "[[\"go_goroutines\",12]]") == 0);
    free(got);

    /* Re-encoded by the exporter: gzip that decodes to the changed profile;
     * and the gzip copy of the zstd part decodes to the same samples. */
    const char *reenc[] = {"delta-heap.pprof", "wall.pprof.gz"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, reenc[i]);
        got = sp_test_read_file(p, &len);
        ASSERT(got && len > 2 && got[0] == 0x1f && got[1] == 0x8b);
        sp_pprof *pp = NULL;
        enum sp_compression c;
        ASSERT_EQ_INT(sp_pprof_decode(got, len, 64u << 20, a, &pp, &c, &err), 0);
        ASSERT_EQ_INT(pp->n_sample, pb->u.profile.attachments[0].pprof->n_sample);
        bool mark = false;
        for (size_t s = 0; s < pp->n_string_table; s++)
            mark |= strcmp(pp->string_table[s], "spanprof-test-mark") == 0;
        ASSERT(mark == (i == 0));
        free(got);
    }
    sp_arena_destroy(a);
    sp_batch_unref(tb);
    sp_batch_unref(pb);
}

static void test_rotation_and_bounds(void)
{
    setup_dir();
    struct harness h;
    /* 9 lines are ~12 KiB: 8 KiB files rotate on every batch or two. */
    ASSERT_EQ_INT(harness_up(&h, 8192, 2, 2), 0);
    struct sp_batch *tb = traces_batch();
    ASSERT(tb != NULL);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ_INT(h.comp.type->consume(&h.comp, tb), SP_OK);
    for (int i = 0; i < 3; i++) {
        struct sp_batch *pb = profile_batch(i == 2 ? "last/svc" : "shop");
        ASSERT_EQ_INT(h.comp.type->consume(&h.comp, pb), SP_OK);
        sp_batch_unref(pb);
    }
    harness_down(&h);

    char p[1024];
    /* Current file plus max_files=2 rotated ones; every file within the
     * size (lines are ~1.3 KiB each), whole lines only. */
    const char *names[] = {"traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        size_t len;
        char *t = (char *)sp_test_read_file(p, &len);
        ASSERT(t != NULL);
        ASSERT(len <= 8192 && len > 0);
        ASSERT(t[len - 1] == '\n');
        for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
            json_object *j = json_tokener_parse(line);
            ASSERT(j != NULL);
            json_object_put(j);
        }
        free(t);
    }
    snprintf(p, sizeof p, "%s/traces.jsonl.3", tmpdir);
    ASSERT(access(p, F_OK) != 0);
    ASSERT(sp_metric_value(sp_metric_find("spanprof_exporter_file_rotations_total",
                                          "component=\"file\"")) >= 3);

    /* max_profile_uploads=2: the first upload was removed; numbering goes on;
     * a service name with a slash stays one path component. */
    snprintf(p, sizeof p, "%s/profiles", tmpdir);
    ASSERT_EQ_INT(count_entries(p), 2);
    char dir[1024];
    ASSERT(find_entry(p, "000001-", dir, sizeof dir) != 0);
    ASSERT_EQ_INT(find_entry(p, "000002-shop-", dir, sizeof dir), 0);
    ASSERT_EQ_INT(find_entry(p, "000003-last_svc-", dir, sizeof dir), 0);

    /* A restart resumes the numbering and the bound over what is there. */
    ASSERT_EQ_INT(harness_up(&h, 8192, 2, 2), 0);
    struct sp_batch *pb = profile_batch("shop");
    ASSERT_EQ_INT(h.comp.type->consume(&h.comp, pb), SP_OK);
    sp_batch_unref(pb);
    harness_down(&h);
    ASSERT_EQ_INT(count_entries(p), 2);
    ASSERT_EQ_INT(find_entry(p, "000004-shop-", dir, sizeof dir), 0);
    ASSERT(find_entry(p, "000002-", dir, sizeof dir) != 0);
    sp_batch_unref(tb);
}

static void test_disk_failures_are_counted(void)
{
    setup_dir();
    struct harness h;
    ASSERT_EQ_INT(harness_up(&h, 4096, 1, 5), 0);
    double failed_spans = metric("spanprof_exporter_failed_spans_total");
    double failed_profiles = metric("spanprof_exporter_failed_profiles_total");
    char p[1024], q[1024];
    /* profiles/ replaced by a plain file: the upload directory cannot be made. */
    snprintf(p, sizeof p, "%s/profiles", tmpdir);
    rm_rf(p);
    FILE *f = fopen(p, "w");
    ASSERT(f != NULL);
    fclose(f);
    struct sp_batch *pb = profile_batch("shop");
    ASSERT_EQ_INT(h.comp.type->consume(&h.comp, pb), SP_OK);
    sp_batch_unref(pb);
    ASSERT(metric("spanprof_exporter_failed_profiles_total") == failed_profiles + 1);

    /* The rotation target is a directory holding a file: rename fails. */
    snprintf(q, sizeof q, "%s/traces.jsonl.1", tmpdir);
    ASSERT(mkdir(q, 0755) == 0);
    snprintf(q, sizeof q, "%s/traces.jsonl.1/keep", tmpdir);
    f = fopen(q, "w");
    ASSERT(f != NULL);
    fclose(f);
    struct sp_batch *tb = traces_batch();
    ASSERT_EQ_INT(h.comp.type->consume(&h.comp, tb), SP_OK);
    ASSERT(metric("spanprof_exporter_failed_spans_total") > failed_spans);
    sp_batch_unref(tb);
    harness_down(&h);
}

static void test_config_validation(void)
{
    struct sp_component c = {.type = &sp_file_exporter_type, .id = "file"};
    struct file_conf conf = {.path = "", .max_file_size = 1 << 20, .max_files = 1,
                             .max_profile_uploads = 1};
    c.conf = &conf;
    struct sp_err err = {0};
    ASSERT_EQ_INT(c.type->create(&c, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "path");
    conf.path = "/tmp/x";
    conf.max_file_size = 100;
    ASSERT_EQ_INT(c.type->create(&c, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "max_file_size");
    conf.max_file_size = 1 << 20;
    char *bad_tags[] = {"novalue"};
    conf.tags = (struct sp_strlist){bad_tags, 1};
    ASSERT_EQ_INT(c.type->create(&c, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "tags");
    conf.tags = (struct sp_strlist){0};
    conf.max_profile_uploads = 0;
    ASSERT_EQ_INT(c.type->create(&c, &err), SP_EINVAL);
    ASSERT(c.ctx == NULL);
    /* A path that cannot be a directory fails start() with the path named. */
    conf.max_profile_uploads = 1;
    conf.path = "/dev/null/spanprof";
    c.metric_labels = "component=\"file\"";
    ASSERT_EQ_INT(c.type->create(&c, &err), 0);
    struct sp_host host = {0};
    ASSERT_EQ_INT(c.type->start(&c, &host, &err), SP_EIO);
    ASSERT_CONTAINS(err.msg, "/dev/null/spanprof");
    c.type->destroy(&c);
}

int main(void)
{
    RUN(test_traces_and_profile);
    RUN(test_rotation_and_bounds);
    RUN(test_disk_failures_are_counted);
    RUN(test_config_validation);
    char top[256];
    snprintf(top, sizeof top, "/tmp/spanprof-file-test-%d", (int)getpid());
    rm_rf(top);
    free(cpu_fixture);
    sp_buf_free(&zstd_body);
    sp_metrics_reset();
    return sp_test_summary();
}
