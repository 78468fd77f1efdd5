/* Unit tests of model/pyroscope.c: the query of the real @pyroscope/nodejs
 * request fixture, pyroscope-go style nanosecond times, bad names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope.h"
#include "sp_test.h"

/* A tiny key/value list standing in for a decoded query string. */
struct q {
    const char *kv[32];
};

static const char *q_get(void *ud, const char *key)
{
    struct q *q = ud;
    for (int i = 0; q->kv[i]; i += 2)
        if (strcmp(q->kv[i], key) == 0)
            return q->kv[i + 1];
    return NULL;
}

static void test_nodejs_fixture(void)
{
    /* the decoded query of pyroscope-ingest.request.json */
    struct q q = {{"format", "pprof", "from", "1795303322", "name",
                   "fixture-pyro{otel.scope.name=com.grafana.pyroscope/nodejs,otel.scope.version="
                   "0.6.4,process.runtime.name=nodejs,process.runtime.version=20.20.2,env="
                   "acceptance}",
                   "spyName", "nodespy", "until", "1795303322", "sampleRate", "17", NULL}};
    /* check the fixture still says what this test assumes */
    char path[4096];
    sp_test_fixture(path, sizeof(path), "pyroscope-ingest.request.json");
    size_t len;
    char *fx = (char *)sp_test_read_file(path, &len);
    ASSERT(fx != NULL);
    ASSERT_CONTAINS(fx, "\"name\": \"fixture-pyro{otel.scope.name=com.grafana.pyroscope/nodejs,"
                        "otel.scope.version=0.6.4,process.runtime.name=nodejs,process.runtime."
                        "version=20.20.2,env=acceptance}\"");
    ASSERT_CONTAINS(fx, "\"from\": \"1795303322\"");
    free(fx);

    struct sp_arena *a = sp_arena_create(0);
    struct sp_pyroscope_ingest in;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q, a, &in, &err), 0);
    ASSERT_EQ_STR(in.app, "fixture-pyro");
    ASSERT_EQ_INT(in.label_count, 5);
    ASSERT_EQ_STR(in.labels[0].key, "otel.scope.name");
    ASSERT_EQ_STR(in.labels[0].value, "com.grafana.pyroscope/nodejs");
    ASSERT_EQ_STR(in.labels[4].key, "env");
    ASSERT_EQ_STR(in.labels[4].value, "acceptance");
    ASSERT_EQ_INT(in.from_ns, 1795303322000000000LL);
    ASSERT_EQ_INT(in.until_ns, 1795303322000000000LL);
    ASSERT_EQ_INT(in.sample_rate, 17);
    ASSERT_EQ_STR(in.spy_name, "nodespy");
    ASSERT_EQ_STR(in.format, "pprof");
    sp_arena_destroy(a);
}

static void test_go_style(void)
{
    /* pyroscope-go: UnixNano, no format, units and aggregationType */
    struct q q = {{"name", "svc.cpu{__session_id__=abc,service_name=svc}", "from",
                   "1795303322123456789", "until", "1795303337123456789", "spyName", "gospy",
                   "units", "samples", "aggregationType", "sum", NULL}};
    struct sp_arena *a = sp_arena_create(0);
    struct sp_pyroscope_ingest in;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q, a, &in, &err), 0);
    ASSERT_EQ_STR(in.app, "svc.cpu");
    ASSERT_EQ_INT(in.from_ns, 1795303322123456789LL);
    ASSERT_EQ_INT(in.until_ns - in.from_ns, 15000000000LL);
    ASSERT(in.format == NULL);
    ASSERT_EQ_STR(in.units, "samples");
    ASSERT_EQ_STR(in.aggregation, "sum");
    sp_arena_destroy(a);
}

static void test_times(void)
{
    int64_t ns;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pyroscope_parse_time("1795303322", &ns, &err), 0);
    ASSERT_EQ_INT(ns, 1795303322000000000LL);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("1795303322123", &ns, &err), 0);
    ASSERT_EQ_INT(ns, 1795303322123000000LL);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("1795303322123456", &ns, &err), 0);
    ASSERT_EQ_INT(ns, 1795303322123456000LL);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("1795303322123456789", &ns, &err), 0);
    ASSERT_EQ_INT(ns, 1795303322123456789LL);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("-5", &ns, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("now-1h", &ns, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("12x", &ns, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("99999999999999999999999", &ns, &err), SP_EDECODE);
    /* found by fuzzing: seconds that overflow int64 nanoseconds */
    ASSERT_EQ_INT(sp_pyroscope_parse_time("9999999999", &ns, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("9223372036", &ns, &err), 0);
    ASSERT_EQ_INT(sp_pyroscope_parse_time("9999999999999", &ns, &err), SP_EDECODE);
}

static void test_names(void)
{
    struct sp_arena *a = sp_arena_create(0);
    const char *app;
    struct sp_kv_str *l;
    size_t n;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pyroscope_parse_name("plain", a, &app, &l, &n, &err), 0);
    ASSERT_EQ_STR(app, "plain");
    ASSERT_EQ_INT(n, 0);
    ASSERT_EQ_INT(sp_pyroscope_parse_name("x{}", a, &app, &l, &n, &err), 0);
    ASSERT_EQ_INT(n, 0);
    ASSERT_EQ_INT(sp_pyroscope_parse_name(" x { a = 1 , b=,} ", a, &app, &l, &n, &err), 0);
    ASSERT_EQ_STR(app, "x");
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(l[0].key, "a");
    ASSERT_EQ_STR(l[0].value, "1");
    ASSERT_EQ_STR(l[1].value, "");
    ASSERT_EQ_INT(sp_pyroscope_parse_name("x{a=1", a, &app, &l, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "not closed");
    ASSERT_EQ_INT(sp_pyroscope_parse_name("x{a}", a, &app, &l, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "has no '='");
    ASSERT_EQ_INT(sp_pyroscope_parse_name("x{=1}", a, &app, &l, &n, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_pyroscope_parse_name("x{a=1}y", a, &app, &l, &n, &err), SP_EDECODE);
    char many[1024] = "x{";
    for (int i = 0; i < 70; i++)
        strcat(many, "k=v,");
    strcat(many, "}");
    ASSERT_EQ_INT(sp_pyroscope_parse_name(many, a, &app, &l, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "more than 64 labels");
    sp_arena_destroy(a);
}

static void test_bad_query(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_pyroscope_ingest in;
    struct sp_err err = {0};
    struct q q1 = {{"from", "1", NULL}};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q1, a, &in, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "'name' is required");
    struct q q2 = {{"name", "a", "from", "10", "until", "5", NULL}};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q2, a, &in, &err), SP_EDECODE);
    struct q q3 = {{"name", "a", "from", "x", NULL}};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q3, a, &in, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "from: ");
    struct q q4 = {{"name", "a", "sampleRate", "fast", NULL}};
    ASSERT_EQ_INT(sp_pyroscope_parse_ingest(q_get, &q4, a, &in, &err), SP_EDECODE);
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_nodejs_fixture);
    RUN(test_go_style);
    RUN(test_times);
    RUN(test_names);
    RUN(test_bad_query);
    return sp_test_summary();
}
