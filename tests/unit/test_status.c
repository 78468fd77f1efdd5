/* The status page's data (core/sp_status.c, core/sp_jw.c,
 * processors/join/join_status.c): JSON that stays valid and escaped whatever
 * the text, last events with secrets redacted, the document built on the
 * loop thread when another thread asks (and not at all when nobody asks),
 * the join's CPU-by-endpoint rows fed by the labelled samples through the
 * real join, the window, the row cap and the memory bound. */
#include <json-c/json.h>
#include <math.h>
#include <unistd.h>

#include "processors/join/join_status.h"
#include "sp_log.h"
#include "sp_status.h"
#include "test_join_lib.h"

static json_object *parse(const struct sp_buf *b)
{
    return json_tokener_parse(b->data ? (const char *)b->data : "");
}

static const char *jstr(json_object *o, const char *path0, const char *path1)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, path0, &v))
        return NULL;
    if (path1 && !json_object_object_get_ex(v, path1, &v))
        return NULL;
    return json_object_get_string(v);
}

static void test_jw_escapes(void)
{
    struct sp_buf b = {0};
    struct sp_jw w;
    sp_jw_init(&w, &b);
    const char nasty[] = "<script>alert(1)</script>\"\\\n\x01\xff\xe2\x80\xa8" "end";
    sp_jw_obj(&w, NULL);
    sp_jw_strn(&w, "s", nasty, sizeof(nasty) - 1);
    sp_jw_arr(&w, "a");
    sp_jw_u64(&w, NULL, 1);
    sp_jw_num(&w, NULL, 0.25);
    sp_jw_num(&w, NULL, 0.0 / 0.0);
    sp_jw_null(&w, NULL);
    sp_jw_end(&w, ']');
    sp_jw_i64(&w, "min", INT64_MIN);
    sp_jw_num(&w, "neg", -42);
    sp_jw_u64(&w, "max", UINT64_MAX);
    sp_jw_obj(&w, "o");
    sp_jw_bool(&w, "t", true);
    sp_jw_str(&w, "n", NULL);
    sp_jw_end(&w, '}');
    sp_jw_end(&w, '}');
    ASSERT(!sp_jw_error(&w));
    ASSERT_EQ_INT(w.depth, 0);
    sp_buf_append_byte(&b, 0);
    /* Raw control bytes and quotes never reach the output unescaped. */
    ASSERT(strchr((const char *)b.data, '\n') == NULL);
    ASSERT(strchr((const char *)b.data, '\x01') == NULL);
    json_object *o = parse(&b);
    ASSERT(o != NULL);
    /* Text round-trips; the invalid byte becomes U+FFFD, U+2028 is escaped
     * (sp_text.h: as Go's encoding/json writes it). */
    ASSERT_EQ_STR(jstr(o, "s", NULL),
                  "<script>alert(1)</script>\"\\\n\x01\xef\xbf\xbd\xe2\x80\xa8" "end");
    ASSERT(strstr((const char *)b.data, "\\ufffd\\u2028end") != NULL);
    json_object *a = NULL;
    json_object_object_get_ex(o, "a", &a);
    ASSERT_EQ_INT(json_object_array_length(a), 4);
    ASSERT(json_object_get_type(json_object_array_get_idx(a, 2)) == json_type_null);
    ASSERT_EQ_STR(jstr(o, "o", "t"), "true");
    ASSERT(strstr((const char *)b.data, "\"min\":-9223372036854775808,\"neg\":-42,"
                                        "\"max\":18446744073709551615") != NULL);
    json_object_put(o);
    sp_buf_free(&b);
}

static int fn_calls;
static uv_thread_t fn_thread;
static void writer(void *ud, struct sp_jw *w)
{
    fn_calls++;
    fn_thread = uv_thread_self();
    sp_jw_str(w, "what", (const char *)ud);
}

static void test_events_redacted_and_bounded(void)
{
    sp_status_reset();
    sp_log_add_secret("s3cr3t-api-key-123");
    sp_status_note("datadog", SP_STATUS_EXPORT_ERROR, "HTTP 403: key s3cr3t-api-key-123 <b>x</b>");
    sp_status_note("datadog", SP_STATUS_DELIVERED, "ok");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sp_status_note("otlp", SP_STATUS_BAD_REQUEST, "%s", big);
    sp_status_note("otlp", SP_STATUS_BAD_REQUEST, "second <img src=x onerror=alert(1)>");
    sp_status_add("components", "datadog", writer, (void *)"dd");
    struct sp_buf b = {0};
    ASSERT_EQ_INT(sp_status_json(&b), 0); /* never started: built by the caller */
    sp_buf_append_byte(&b, 0);
    ASSERT(strstr((const char *)b.data, "s3cr3t") == NULL);
    sp_buf_free(&b);

    struct sp_buf e = {0};
    struct sp_jw w;
    sp_jw_init(&w, &e);
    sp_jw_obj(&w, NULL);
    sp_status_write_events(&w, "datadog");
    sp_jw_end(&w, '}');
    json_object *o = parse(&e);
    ASSERT(o != NULL);
    ASSERT_EQ_STR(jstr(jstr(o, "events", NULL) ? json_object_object_get(o, "events") : NULL,
                        "export_error", "text"),
                  "HTTP 403: key [REDACTED] <b>x</b>");
    json_object_put(o);
    sp_buf_reset(&e);
    sp_jw_init(&w, &e);
    sp_jw_obj(&w, NULL);
    sp_status_write_events(&w, "otlp");
    sp_jw_end(&w, '}');
    o = parse(&e);
    json_object *ev = json_object_object_get(json_object_object_get(o, "events"), "bad_request");
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(ev, "count")), 2);
    ASSERT_EQ_STR(json_object_get_string(json_object_object_get(ev, "text")),
                  "second <img src=x onerror=alert(1)>");
    json_object_put(o);
    sp_buf_free(&e);
    sp_log_clear_secrets();
    sp_status_reset();
}

static void keep_cb(uv_timer_t *t)
{
    (void)t;
}

struct asker {
    int rc;
    struct sp_buf out;
    bool done;
};

static void ask(void *arg)
{
    struct asker *a = arg;
    a->rc = sp_status_json(&a->out);
    a->done = true;
}

/* Another thread asks: the loop builds, the asker gets the document; and
 * while nobody asks, no writer runs. */
static void test_snapshot_from_another_thread(void)
{
    sp_status_reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    ASSERT_EQ_INT(sp_status_start(&loop), 0);
    /* The status handles do not keep a loop alive (uv_run would not even
     * poll): in spanprof the listeners do, here a timer. */
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, keep_cb, 100, 100);
    sp_status_add("things", "one", writer, (void *)"<one>");
    fn_calls = 0;
    uint64_t end = uv_now(&loop) + 1200;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
        uv_update_time(&loop);
    }
    ASSERT_EQ_INT(fn_calls, 0); /* nobody asked: nothing built */

    struct asker a = {0};
    uv_thread_t th;
    uv_thread_create(&th, ask, &a);
    end = uv_now(&loop) + 3000;
    while (!a.done && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
    uv_thread_join(&th);
    ASSERT_EQ_INT(a.rc, 0);
    ASSERT(fn_calls >= 1);
    uv_thread_t self = uv_thread_self();
    ASSERT(uv_thread_equal(&fn_thread, &self)); /* built on the loop thread */
    json_object *o = parse(&a.out);
    ASSERT(o != NULL);
    json_object *things = json_object_object_get(o, "things");
    ASSERT_EQ_INT(json_object_array_length(things), 1);
    ASSERT_EQ_STR(json_object_get_string(json_object_object_get(json_object_array_get_idx(things, 0), "what")), "<one>");
    json_object_put(o);
    sp_buf_free(&a.out);

    /* While asked for, the loop keeps a fresh snapshot (once a second). */
    int before = fn_calls;
    end = uv_now(&loop) + 2500;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
        uv_update_time(&loop);
    }
    ASSERT(fn_calls >= before + 2);
    sp_status_remove((void *)"<one>");
    sp_status_stop();
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    /* Stopped: another thread gets "retry", nothing is built off the loop. */
    struct asker b = {0};
    uv_thread_create(&th, ask, &b);
    uv_thread_join(&th);
    ASSERT_EQ_INT(b.rc, SP_ERETRY);
    sp_buf_free(&b.out);
    sp_status_reset();
}

#define SVC "checkout"
#define T0 1700000000000000000LL

/* The join's section, through the real join: the rows are the labels the
 * profile leaves with. */
static void test_join_rows_from_labelled_samples(void)
{
    sp_status_reset();
    struct jt t;
    ASSERT_EQ_INT(jt_open(&t, NULL), 0);
    static const struct jt_span spans[] = {
        {0x2000000000000001ULL, 0, 0x100, 2, "GET", T0, {"http.request.method=GET", "http.route=/a"}},
        {0x2000000000000002ULL, 0, 0x100, 2, "<script>alert(1)</script>", T0, {0}},
        {0x2000000000000003ULL, 0x2000000000000001ULL, 0x100, 1, "inner", T0, {0}},
    };
    struct sp_batch *tb = jt_traces_new();
    sp_otlp_scope_spans *ss = jt_traces_resource(tb, SVC, NULL, 3);
    for (size_t i = 0; i < 3; i++)
        jt_traces_span(tb, ss, &spans[i]);
    ASSERT_EQ_INT(jt_consume(&t, tb), 0);

    struct sp_batch *b = jt_profile_new(SVC, "cpu.pprof", true);
    struct sp_arena *a = b->arena;
    sp_pprof *p = jt_pprof_new(a, "cpu", 8);
    jt_sample(p, a, 600, "span_id=2000000000000003", NULL); /* child of GET /a */
    jt_sample(p, a, 300, "span_id=2000000000000002", NULL); /* the markup root */
    jt_sample(p, a, 50, "span_id=00000000deadbeef", NULL);  /* unknown span */
    jt_sample(p, a, 50, "thread=main", NULL);               /* no span id */
    b->u.profile.attachments[0].pprof = p;
    ASSERT_EQ_INT(jt_consume(&t, b), 0);
    jt_wait_profiles(&t, 1, 2000);
    ASSERT_EQ_INT(jt_sink_count(SP_SIGNAL_PROFILES), 1);

    struct sp_buf out = {0};
    ASSERT_EQ_INT(sp_status_json(&out), 0);
    json_object *o = parse(&out);
    ASSERT(o != NULL);
    json_object *j = json_object_array_get_idx(json_object_object_get(o, "join"), 0);
    ASSERT(j != NULL);
    json_object *svc = json_object_array_get_idx(json_object_object_get(j, "services"), 0);
    ASSERT_EQ_STR(json_object_get_string(json_object_object_get(svc, "service")), SVC);
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(svc, "value")), 1000);
    json_object *eps = json_object_object_get(svc, "endpoints");
    ASSERT_EQ_INT(json_object_array_length(eps), 2);
    json_object *e0 = json_object_array_get_idx(eps, 0), *e1 = json_object_array_get_idx(eps, 1);
    ASSERT_EQ_STR(json_object_get_string(json_object_object_get(e0, "endpoint")), "GET /a");
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(e0, "value")), 600);
    ASSERT_EQ_STR(json_object_get_string(json_object_object_get(e1, "endpoint")),
                  "<script>alert(1)</script>");
    /* endpoint shares are of the CPU that has an endpoint */
    ASSERT(fabs(json_object_get_double(json_object_object_get(e0, "share")) - 600.0 / 900) < 1e-4);
    json_object *ns = json_object_object_get(svc, "no_span_id");
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(ns, "value")), 50);
    ASSERT(fabs(json_object_get_double(json_object_object_get(ns, "share")) - 0.05) < 1e-9);
    json_object *ne = json_object_object_get(svc, "no_endpoint");
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(ne, "value")), 50);
    json_object *hr = json_object_object_get(j, "hit_ratio");
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(hr, "matched")), 2);
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(hr, "span_labelled")), 3);
    json_object *mi = json_object_object_get(j, "misses");
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(mi, "span_unknown")), 1);
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(mi, "no_span_label")), 1);
    json_object *ix = json_object_object_get(j, "index");
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(ix, "spans")), 3);
    json_object_put(o);
    sp_buf_free(&out);
    jt_close(&t);
    /* destroy unregistered the join's writer */
    sp_buf_reset(&out);
    ASSERT_EQ_INT(sp_status_json(&out), 0);
    sp_buf_append_byte(&out, 0);
    ASSERT(strstr((const char *)out.data, "\"join\"") == NULL);
    sp_buf_free(&out);
    sp_status_reset();
}

/* One profile with n distinct endpoints at time now. */
static void note_endpoints(struct join_status *js, const char *svc, int n, int offset,
                           uint64_t now)
{
    struct sp_batch *b = jt_profile_new(svc, "cpu.pprof", true);
    struct sp_arena *a = b->arena;
    sp_pprof *p = jt_pprof_new(a, "cpu", (size_t)n);
    for (int i = 0; i < n; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "trace endpoint=GET /e%d", offset + i);
        jt_sample(p, a, 10, "span id=1", ep, NULL);
    }
    b->u.profile.attachments[0].pprof = p;
    struct join_label_stats st = {0};
    st.samples[JOIN_OUT_MATCHED] = (uint64_t)n;
    join_status_note(js, &b->u.profile, &st, now);
    sp_batch_unref(b);
}

static json_object *js_doc(const struct join_status *js, uint64_t now)
{
    struct sp_buf b = {0};
    struct sp_jw w;
    sp_jw_init(&w, &b);
    sp_jw_obj(&w, NULL);
    join_status_write(js, &w, now);
    sp_jw_end(&w, '}');
    json_object *o = parse(&b);
    sp_buf_free(&b);
    return o;
}

static void test_window_cap_and_size(void)
{
    ASSERT(join_status_size() <= 256 * 1024);
    struct join_status *js = join_status_new(300000);
    uint64_t t0 = 10 * 300000ULL;
    note_endpoints(js, "svc", 400, 0, t0); /* more than the rows */
    json_object *o = js_doc(js, t0);
    json_object *svc = json_object_array_get_idx(json_object_object_get(o, "services"), 0);
    size_t rows = json_object_array_length(json_object_object_get(svc, "endpoints"));
    ASSERT(rows <= JOIN_STATUS_MAX_KEYS);
    json_object *other = json_object_object_get(svc, "other_endpoints");
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(other, "samples")), 400 - (int)rows);
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(svc, "samples")), 400);
    json_object_put(o);

    /* Past the window, rows are empty and reused by new endpoints. */
    uint64_t t1 = t0 + 300000 + 20000;
    o = js_doc(js, t1);
    svc = json_object_array_get_idx(json_object_object_get(o, "services"), 0);
    ASSERT_EQ_INT(json_object_array_length(json_object_object_get(svc, "endpoints")), 0);
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(svc, "samples")), 0);
    json_object_put(o);
    note_endpoints(js, "svc", 10, 1000, t1);
    o = js_doc(js, t1);
    svc = json_object_array_get_idx(json_object_object_get(o, "services"), 0);
    ASSERT_EQ_INT(json_object_array_length(json_object_object_get(svc, "endpoints")), 10);
    ASSERT_EQ_INT(json_object_get_int64(json_object_object_get(json_object_object_get(svc, "other_endpoints"), "samples")), 0);
    /* The hit ratio looks back 15 minutes: the first profile has left it. */
    json_object *hr = json_object_object_get(o, "hit_ratio");
    ASSERT_EQ_INT(json_object_array_length(json_object_object_get(hr, "points")), JOIN_STATUS_HIT_COLS);
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(hr, "matched")), 410);
    json_object_put(o);
    o = js_doc(js, t1 + 16 * 60000ULL);
    hr = json_object_object_get(o, "hit_ratio");
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(hr, "matched")), 0);
    ASSERT(json_object_get_type(json_object_object_get(hr, "ratio")) == json_type_null);
    json_object_put(o);

    /* Services beyond the cap are counted, not kept. */
    for (int s = 0; s < JOIN_STATUS_MAX_SERVICES + 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "svc-%d", s);
        note_endpoints(js, name, 1, 0, t1);
    }
    o = js_doc(js, t1);
    ASSERT_EQ_INT(json_object_array_length(json_object_object_get(o, "services")),
                  JOIN_STATUS_MAX_SERVICES);
    ASSERT_EQ_INT(json_object_get_int(json_object_object_get(o, "services_over_cap")), 4);
    json_object_put(o);
    join_status_free(js);
}

int main(void)
{
    RUN(test_jw_escapes);
    RUN(test_events_redacted_and_bounded);
    RUN(test_snapshot_from_another_thread);
    RUN(test_join_rows_from_labelled_samples);
    RUN(test_window_cap_and_size);
    return sp_test_summary();
}
