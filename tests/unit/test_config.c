/* Unit tests of the configuration loader (config/): every error class with
 * its exact file:line:col, ${env:} expansion, merging of files, the key
 * table layer (types, defaults, optional blocks, lists, secrets), the
 * scalar parsers, print-config and the reference. Files are written to a
 * temporary directory the test runs in, so messages read "t.yaml:4:5: ...".
 *
 * Only the health_check extension (config engineer's) and the shape of the
 * other registered types (kind, signals) are relied on, so the tests hold
 * while the other components grow their key tables. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sp_conf_internal.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_registry.h"
#include "sp_metrics.h"
#include "sp_test.h"

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(name, "wb");
    if (!f) {
        perror(name);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* Writes text to t.yaml and loads it. Returns the load's code. */
static int load_text(const char *text, struct sp_service_conf **conf, struct sp_diag *d)
{
    write_file("t.yaml", text);
    const char *files[] = {"t.yaml"};
    return sp_service_conf_load(&sp_registry, files, 1, conf, d);
}

static const char *diag_text(const struct sp_diag *d)
{
    return d->text.data ? (const char *)d->text.data : "";
}

static const struct sp_conf_component *find_comp(const struct sp_service_conf *c, const char *id)
{
    for (size_t i = 0; i < c->component_count; i++)
        if (strcmp(c->components[i].id, id) == 0)
            return &c->components[i];
    return NULL;
}

/* The layout of health_check's config struct (extensions/health_check). */
struct hc_conf {
    char *endpoint;
    char *path;
};

#define BASE_OK                                                                                    \
    "receivers:\n"                                                                                 \
    "  otlp: {protocols: {grpc: }}\n"                                                              \
    "exporters:\n"                                                                                 \
    "  debug:\n"                                                                                   \
    "extensions:\n"                                                                                \
    "  health_check:\n"                                                                            \
    "    endpoint: 127.0.0.1:23133\n"                                                              \
    "service:\n"                                                                                   \
    "  extensions: [health_check]\n"                                                               \
    "  pipelines:\n"                                                                               \
    "    traces:\n"                                                                                \
    "      receivers: [otlp]\n"                                                                    \
    "      exporters: [debug]\n"

static void test_minimal_valid(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text(BASE_OK, &c, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c->component_count, 3);
    ASSERT_EQ_INT(c->pipeline_count, 1);
    ASSERT_EQ_STR(c->pipelines[0].name, "traces");
    ASSERT_EQ_INT(c->pipelines[0].signal, SP_SIGNAL_TRACES);
    ASSERT_EQ_INT(c->pipelines[0].receiver_count, 1);
    ASSERT_EQ_STR(c->pipelines[0].receivers[0]->id, "otlp");
    ASSERT_EQ_INT(c->pipelines[0].processor_count, 0);
    ASSERT_EQ_STR(c->pipelines[0].exporters[0]->id, "debug");
    ASSERT_EQ_INT(c->extension_count, 1);
    ASSERT_EQ_STR(c->extensions[0]->id, "health_check");
    ASSERT_EQ_INT(c->log_level, SP_LOG_INFO);
    ASSERT_EQ_INT(c->log_format, SP_LOG_LOGFMT);
    ASSERT_EQ_STR(c->metrics_address, "127.0.0.1:8888");
    ASSERT_EQ_INT(c->shutdown_timeout_ms, 10000);
    ASSERT(!c->from_embedded_default);
    const struct sp_conf_component *hc = find_comp(c, "health_check");
    ASSERT(hc && hc->used && hc->kind == SP_KIND_EXTENSION);
    ASSERT_EQ_STR(((struct hc_conf *)hc->conf)->endpoint, "127.0.0.1:23133");
    ASSERT_EQ_STR(((struct hc_conf *)hc->conf)->path, "/");
    ASSERT_EQ_INT(hc->pos.line, 6);
    ASSERT_EQ_INT(hc->pos.col, 3);
    sp_service_conf_free(c);
    sp_diag_free(&d);
}

static void test_unknown_key_suggests(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers:\n"
                       "  otlp: {protocols: {grpc: }}\n"
                       "exporters:\n"
                       "  debug:\n"
                       "extensions:\n"
                       "  health_check:\n"
                       "    endpont: 127.0.0.1:1\n"
                       "    colour: blue\n"
                       "service:\n"
                       "  extensions: [health_check]\n"
                       "  pipelines:\n"
                       "    traces:\n"
                       "      receivers: [otlp]\n"
                       "      exporters: [debug]\n"
                       "  telemetry:\n"
                       "    logs:\n"
                       "      levle: debug\n"
                       "  shutdown_timout: 1s\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:7:5: unknown key 'endpont' in extensions.health_check "
                                   "(did you mean 'endpoint'?)\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:8:5: unknown key 'colour' in extensions.health_check "
                                   "(valid keys: endpoint, path)\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:17:7: unknown key 'levle' in service.telemetry.logs "
                                   "(did you mean 'level'?)\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:18:3: unknown key 'shutdown_timout' in service "
                                   "(did you mean 'shutdown_timeout'?)\n");
    ASSERT_EQ_INT(d.errors, 4);
    sp_diag_free(&d);
}

static void test_wrong_types(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text(BASE_OK "  shutdown_timeout: abc\n"
                               "  telemetry:\n"
                               "    logs: {level: loud, format: xml}\n"
                               "    metrics:\n"
                               "      address: [a]\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:14:21: service.shutdown_timeout: expected a duration "
                                   "like 10s, got 'abc'\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:18:16: service.telemetry.metrics.address: expected a "
                                   "string, got a sequence\n");
    sp_diag_free(&d);

    /* Values that type-check but are not allowed: reported at the value. */
    rc = load_text(BASE_OK "  telemetry:\n"
                           "    logs: {level: loud, format: xml}\n"
                           "    metrics:\n"
                           "      address: localhost\n",
                   &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:15:19: service.telemetry.logs.level: expected one of "
                                   "debug, info, warn, error, got 'loud'\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:15:33: service.telemetry.logs.format: expected logfmt "
                                   "or json, got 'xml'\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:17:16: service.telemetry.metrics.address: endpoint "
                                   "'localhost': missing port");
    ASSERT_EQ_INT(d.errors, 3);
    sp_diag_free(&d);

    /* A component given a scalar instead of settings. */
    rc = load_text("receivers:\n  otlp: yes\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:9: receivers.otlp: expected a mapping, got a scalar");
    sp_diag_free(&d);
}

static void test_unknown_component_type(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers:\n"
                       "  otlpp:\n"
                       "  zipkin/x:\n"
                       "exporters:\n"
                       "  join:\n"
                       "  bad id:\n"
                       "service:\n"
                       "  pipelines:\n"
                       "    traces: {receivers: [otlpp], exporters: [join]}\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:3: unknown receiver type 'otlpp' (did you mean "
                                   "'otlp'?)\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:3:3: unknown receiver type 'zipkin' (available: ");
    ASSERT_CONTAINS(diag_text(&d), "otlp");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:5:3: unknown exporter type 'join': 'join' is a "
                                   "processor, define it under processors\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:6:3: invalid exporter id 'bad id': the type may hold "
                                   "only letters, digits and '_'\n");
    /* Reported once, where they are defined, not again where the pipeline names them. */
    ASSERT(strstr(diag_text(&d), "pipeline 'traces'") == NULL);
    ASSERT_EQ_INT(d.errors, 4);
    sp_diag_free(&d);
}

static void test_pipeline_references(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers:\n"
                       "  otlp: {protocols: {grpc: }}\n"
                       "  pprof:\n"
                       "processors:\n"
                       "  join:\n"
                       "exporters:\n"
                       "  debug:\n"
                       "service:\n"
                       "  extensions: [health]\n"
                       "  pipelines:\n"
                       "    traces:\n"
                       "      receivers: [otlp, pprof, otlp]\n"
                       "      processors: [debug]\n"
                       "      exporters: [debgu]\n"
                       "    profiles/x:\n"
                       "      receivers: []\n"
                       "      exporter: [debug]\n"
                       "    metrcs:\n"
                       "      receivers: [otlp]\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    const char *t = diag_text(&d);
    ASSERT_CONTAINS(t, "t.yaml:9:16: service.extensions names extension 'health' which is not "
                       "defined in extensions\n");
    ASSERT_CONTAINS(t, "t.yaml:12:25: receiver 'pprof' does not support traces (it supports "
                       "profiles), so it cannot be in pipeline 'traces'\n");
    ASSERT_CONTAINS(t, "t.yaml:12:32: pipeline 'traces' lists receiver 'otlp' twice\n");
    ASSERT_CONTAINS(t, "t.yaml:13:20: pipeline 'traces' names processor 'debug', but 'debug' is "
                       "defined as an exporter\n");
    ASSERT_CONTAINS(t, "t.yaml:14:19: pipeline 'traces' names exporter 'debgu' which is not "
                       "defined in exporters (did you mean 'debug'?)\n");
    ASSERT_CONTAINS(t, "t.yaml:16:7: pipeline 'profiles/x' needs at least one receiver in "
                       "service.pipelines.profiles/x.receivers\n");
    ASSERT_CONTAINS(t, "t.yaml:17:7: unknown key 'exporter' in service.pipelines.profiles/x (did "
                       "you mean 'exporters'?)\n");
    ASSERT_CONTAINS(t, "t.yaml:15:5: pipeline 'profiles/x' needs at least one exporter in "
                       "service.pipelines.profiles/x.exporters\n");
    ASSERT_CONTAINS(t, "t.yaml:18:5: unknown signal in pipeline id 'metrcs' (did you mean "
                       "'metrics'?)\n");
    sp_diag_free(&d);
}

static void test_processor_shared_by_same_signal(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    const char *head = "receivers:\n"
                       "  otlp: {protocols: {grpc: }}\n"
                       "  pprof:\n"
                       "processors:\n"
                       "  join:\n"
                       "exporters:\n"
                       "  debug:\n"
                       "service:\n"
                       "  pipelines:\n";
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s%s", head,
             "    traces: {receivers: [otlp], processors: [join], exporters: [debug]}\n"
             "    traces/2: {receivers: [otlp], processors: [join], exporters: [debug]}\n");
    int rc = load_text(buf, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:11:5: processor 'join' is in pipelines 'traces' and "
                                   "'traces/2', both traces:");
    ASSERT_EQ_INT(d.errors, 1);
    sp_diag_free(&d);

    /* The same processor on two signals is what the join is for. */
    snprintf(buf, sizeof(buf), "%s%s", head,
             "    traces: {receivers: [otlp], processors: [join], exporters: [debug]}\n"
             "    profiles: {receivers: [pprof], processors: [join], exporters: [debug]}\n");
    rc = load_text(buf, &c, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c->pipeline_count, 2);
    ASSERT_EQ_INT(c->pipelines[1].signal, SP_SIGNAL_PROFILES);
    ASSERT(c->pipelines[0].processors[0] == c->pipelines[1].processors[0]);
    sp_service_conf_free(c);
    sp_diag_free(&d);
}

static void test_unused_component_warns(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text(BASE_OK "exporters:\n  debug:\n  debug/spare:\n"
                               "extensions:\n  health_check:\n  health_check/2:\n"
                               "    endpoint: 127.0.0.1:1\n",
                       &c, &d);
    /* Later keys at the top level are duplicates: the YAML rejects them. */
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:14:1: duplicate key 'exporters' (first defined at "
                                   "3:1)\n");
    sp_diag_free(&d);

    rc = load_text("receivers:\n"
                   "  otlp: {protocols: {grpc: }}\n"
                   "  otlp/unused: {protocols: {grpc: }}\n"
                   "exporters:\n"
                   "  debug:\n"
                   "extensions:\n"
                   "  health_check:\n"
                   "service:\n"
                   "  pipelines:\n"
                   "    traces: {receivers: [otlp], exporters: [debug]}\n",
                   &c, &d);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(d.errors, 0);
    ASSERT_EQ_INT(d.warnings, 2);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:3:3: warning: receiver 'otlp/unused' is defined but no "
                                   "pipeline uses it: it will not be created\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:7:3: warning: extension 'health_check' is defined but "
                                   "not listed in service.extensions: it will not be started\n");
    ASSERT(!find_comp(c, "otlp/unused")->used);
    ASSERT(find_comp(c, "otlp")->used);
    ASSERT(!find_comp(c, "health_check")->used);
    sp_service_conf_free(c);
    sp_diag_free(&d);
}

static void test_missing_pipelines(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers:\n  otlp:\nservice:\n  extensions: []\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:3:1: missing 'service.pipelines': define at least one "
                                   "pipeline");
    sp_diag_free(&d);

    rc = load_text("", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:1:1: missing 'service.pipelines'");
    sp_diag_free(&d);

    rc = load_text("service:\n  pipelines:\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:3: missing 'service.pipelines'");
    sp_diag_free(&d);

    rc = load_text("recievers:\n  otlp:\nservice:\n  pipelines: []\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:1:1: unknown top-level key 'recievers' (did you mean "
                                   "'receivers'?)\n");
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:4:14: service.pipelines: expected a mapping");
    sp_diag_free(&d);
}

static void test_yaml_errors(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers:\n  otlp:\n    a: [1, 2\nservice: {}\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:4:");
    ASSERT_CONTAINS(diag_text(&d), ": invalid YAML: ");
    sp_diag_free(&d);

    rc = load_text("receivers:\n\totlp:\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:1: invalid YAML: found character that cannot start "
                                   "any token");
    sp_diag_free(&d);

    rc = load_text("- a\n- b\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:1:1: the top level must be a mapping");
    sp_diag_free(&d);

    rc = load_text("a: 1\n---\nb: 2\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:1: more than one YAML document");
    sp_diag_free(&d);

    rc = load_text("service:\n  pipelines: *nope\n", &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:2:14: unknown anchor 'nope'");
    sp_diag_free(&d);

    const char *missing[] = {"does-not-exist.yaml"};
    rc = sp_service_conf_load(&sp_registry, missing, 1, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "does-not-exist.yaml: cannot read the configuration: No such "
                                   "file or directory\n");
    sp_diag_free(&d);
}

static void test_yaml_bounds(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    /* Billion laughs: each level doubles; refused by the node budget. */
    struct sp_buf b = {0};
    sp_buf_append_str(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 20; i++)
        sp_buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
                      i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    int rc = load_text((const char *)b.data, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "document too large: more than 200000 nodes (aliases counted "
                                   "expanded)");
    ASSERT_EQ_INT(d.errors, 1);
    sp_diag_free(&d);

    /* Deep nesting stops at the depth bound, not at the C stack. */
    sp_buf_reset(&b);
    sp_buf_append_str(&b, "a: ");
    for (int i = 0; i < 10000; i++)
        sp_buf_append_byte(&b, '[');
    rc = load_text((const char *)b.data, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:1:");
    ASSERT_CONTAINS(diag_text(&d), "nesting deeper than 64 levels");
    sp_diag_free(&d);

    /* Files over 4 MiB are refused unread. */
    sp_buf_reset(&b);
    sp_buf_append_str(&b, "a: '");
    for (int i = 0; i < (4 << 20); i++)
        sp_buf_append_byte(&b, 'x');
    sp_buf_append_str(&b, "'\n");
    rc = load_text((const char *)b.data, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml: file is larger than the 4 MiB limit\n");
    sp_diag_free(&d);
    sp_buf_free(&b);
}

static void test_anchors_and_merge_keys(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("x-common: &hc\n"
                       "  endpoint: 127.0.0.1:23134\n"
                       "  path: /common\n"
                       "receivers: {otlp: {protocols: {grpc: }}}\n"
                       "exporters: {debug: }\n"
                       "extensions:\n"
                       "  health_check:\n"
                       "    <<: *hc\n"
                       "    path: /own\n"
                       "service:\n"
                       "  extensions: [health_check]\n"
                       "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n",
                       &c, &d);
    /* x-common is not a known top-level key: anchors must live somewhere valid. */
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:1:1: unknown top-level key 'x-common'");
    ASSERT_EQ_INT(d.errors, 1);
    sp_diag_free(&d);

    rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                   "exporters: {debug: }\n"
                   "extensions:\n"
                   "  health_check: &hc\n"
                   "    endpoint: 127.0.0.1:23134\n"
                   "    path: /common\n"
                   "  health_check/b:\n"
                   "    <<: *hc\n"
                   "    path: /own\n"
                   "service:\n"
                   "  extensions: [health_check, health_check/b]\n"
                   "  pipelines: {traces: {receivers: [otlp], exporters: &ex [debug]}}\n",
                   &c, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(rc, 0);
    const struct hc_conf *b = find_comp(c, "health_check/b")->conf;
    ASSERT_EQ_STR(b->endpoint, "127.0.0.1:23134");
    ASSERT_EQ_STR(b->path, "/own");
    ASSERT_EQ_INT(c->extension_count, 2);
    sp_service_conf_free(c);
    sp_diag_free(&d);
}

static void test_env_expansion(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    setenv("SPT_HOST", "127.0.0.1", 1);
    setenv("SPT_PORT", "23135", 1);
    setenv("SPT_EMPTY", "", 1);
    unsetenv("SPT_UNSET");
    int rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                       "exporters: {debug: }\n"
                       "extensions:\n"
                       "  health_check:\n"
                       "    endpoint: ${env:SPT_HOST}:${env:SPT_PORT}\n"
                       "    path: \"/a$$b${env:SPT_UNSET:-/x:{y}}${env:SPT_EMPTY:-/e}\"\n"
                       "  health_check/2:\n"
                       "    endpoint: ${env:SPT_UNSET:-${env:SPT_HOST}:1}\n"
                       "    path: /cost$5/$${env:SPT_HOST}\n"
                       "service:\n"
                       "  extensions: [health_check, health_check/2]\n"
                       "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n"
                       "  shutdown_timeout: ${env:SPT_UNSET:-1m30s}\n",
                       &c, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(rc, 0);
    const struct hc_conf *h1 = find_comp(c, "health_check")->conf;
    const struct hc_conf *h2 = find_comp(c, "health_check/2")->conf;
    ASSERT_EQ_STR(h1->endpoint, "127.0.0.1:23135");
    ASSERT_EQ_STR(h1->path, "/a$b/x:{y}/e");
    ASSERT_EQ_STR(h2->endpoint, "127.0.0.1:1");
    ASSERT_EQ_STR(h2->path, "/cost$5/${env:SPT_HOST}");
    ASSERT_EQ_INT(c->shutdown_timeout_ms, 90000);
    sp_service_conf_free(c);
    sp_diag_free(&d);

    /* An unset variable without default expands to "" with a warning. */
    rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                   "exporters: {debug: }\n"
                   "service:\n"
                   "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n"
                   "  telemetry: {metrics: {address: \"${env:SPT_UNSET}\"}}\n",
                   &c, &d);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_CONTAINS(diag_text(&d), "t.yaml:5:35: warning: environment variable 'SPT_UNSET' is "
                                   "not set: '${env:SPT_UNSET}' expands to an empty value\n");
    ASSERT_EQ_STR(c->metrics_address, "");
    sp_service_conf_free(c);
    sp_diag_free(&d);

    /* Only ${env:...} is supported; the column points at the '${'. */
    rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                   "exporters: {debug: }\n"
                   "extensions:\n"
                   "  health_check:\n"
                   "    endpoint: x${SPT_HOST}\n"
                   "    path: ${file:/etc/passwd}\n"
                   "  health_check/2:\n"
                   "    endpoint: ${env:SPT_HOST\n"
                   "    path: ${env:1BAD}\n"
                   "service:\n"
                   "  extensions: [health_check, health_check/2]\n"
                   "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n",
                   &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    const char *t = diag_text(&d);
    ASSERT_CONTAINS(t, "t.yaml:5:16: unsupported reference '${SPT_HOST}': write "
                       "'${env:SPT_HOST}' for an environment variable or '$$' for a literal "
                       "'$'\n");
    ASSERT_CONTAINS(t, "t.yaml:6:11: unsupported config provider 'file' in "
                       "'${file:/etc/passwd}': only ${env:NAME} is supported\n");
    ASSERT_CONTAINS(t, "t.yaml:8:15: unterminated '${' (write '$$' for a literal '$')\n");
    ASSERT_CONTAINS(t, "t.yaml:9:11: invalid environment variable name in '${env:1BAD}'");
    ASSERT_EQ_INT(d.errors, 4);
    sp_diag_free(&d);
}

static void test_merge_two_files(void)
{
    write_file("base.yaml", BASE_OK "  telemetry:\n"
                                    "    logs: {level: debug, format: json}\n");
    write_file("over.yaml", "exporters:\n"
                            "  debug/b:\n"
                            "extensions:\n"
                            "  health_check:\n"
                            "    path: /ready\n"
                            "service:\n"
                            "  pipelines:\n"
                            "    traces:\n"
                            "      exporters: [debug/b]\n"
                            "  telemetry:\n"
                            "    logs: {level: warn}\n"
                            "  shutdown_timeout: 2s\n");
    const char *files[] = {"base.yaml", "over.yaml"};
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = sp_service_conf_load(&sp_registry, files, 2, &c, &d);
    ASSERT_EQ_INT(rc, 0);
    /* debug is still defined (maps merge) but the list was replaced. */
    ASSERT_CONTAINS(diag_text(&d), "base.yaml:4:3: warning: exporter 'debug' is defined but no "
                                   "pipeline uses it");
    ASSERT_EQ_INT(d.errors, 0);
    ASSERT_EQ_INT(c->pipelines[0].exporter_count, 1);
    ASSERT_EQ_STR(c->pipelines[0].exporters[0]->id, "debug/b");
    ASSERT_EQ_STR(c->pipelines[0].receivers[0]->id, "otlp");
    const struct hc_conf *h = find_comp(c, "health_check")->conf;
    ASSERT_EQ_STR(h->endpoint, "127.0.0.1:23133");
    ASSERT_EQ_STR(h->path, "/ready");
    ASSERT_EQ_INT(c->log_level, SP_LOG_WARN);
    ASSERT_EQ_INT(c->log_format, SP_LOG_JSON);
    ASSERT_EQ_INT(c->shutdown_timeout_ms, 2000);
    sp_service_conf_free(c);
    sp_diag_free(&d);

    /* Errors point into the file the bad value came from. */
    write_file("over.yaml", "extensions:\n  health_check:\n    pth: /x\n");
    rc = sp_service_conf_load(&sp_registry, files, 2, &c, &d);
    ASSERT_EQ_INT(rc, SP_EINVAL);
    ASSERT_CONTAINS(diag_text(&d), "over.yaml:3:5: unknown key 'pth' in extensions.health_check "
                                   "(did you mean 'path'?)\n");
    sp_diag_free(&d);
}

/* A component's create() pointing at the value it rejects. */
static void test_component_errors_carry_position(void)
{
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                       "exporters: {debug: }\n"
                       "extensions:\n"
                       "  health_check:\n"
                       "    endpoint: nonsense\n"
                       "  health_check/2:\n"
                       "    path: relative\n"
                       "service:\n"
                       "  extensions: [health_check, health_check/2]\n"
                       "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, 0);
    const struct sp_conf_component *cc = find_comp(c, "health_check");
    struct sp_component comp = {.type = cc->type, .id = cc->id, .conf = cc->conf,
                                .conf_ctx = cc->ctx, .metric_labels = "component=\"health_check\""};
    struct sp_err err = {0};
    ASSERT_EQ_INT(cc->type->create(&comp, &err), SP_EINVAL);
    ASSERT_EQ_STR(err.msg, "t.yaml:5:15: extensions.health_check.endpoint: endpoint 'nonsense': "
                           "missing port (expected host:port, e.g. 127.0.0.1:4317)");
    ASSERT(sp_service_conf_msg_has_pos(c, err.msg));
    ASSERT(!sp_service_conf_msg_has_pos(c, "endpoint 'x.yaml:1'"));

    cc = find_comp(c, "health_check/2");
    comp.conf = cc->conf;
    comp.conf_ctx = cc->ctx;
    comp.id = cc->id;
    ASSERT_EQ_INT(cc->type->create(&comp, &err), SP_EINVAL);
    ASSERT_EQ_STR(err.msg, "t.yaml:7:11: extensions.health_check/2.path: must start with '/', "
                           "got 'relative'");
    /* A key left to its default points at the component. */
    sp_conf_errorf(cc->ctx, &err, "endpoint", "in use");
    ASSERT_EQ_STR(err.msg, "t.yaml:6:3: extensions.health_check/2.endpoint: in use");
    sp_conf_errorf(NULL, &err, "endpoint", "no context");
    ASSERT_EQ_STR(err.msg, "endpoint: no context");
    sp_service_conf_free(c);
    sp_diag_free(&d);
    sp_metrics_reset();
}

/* ---- the key table layer with a table of every type ---- */

struct t_tls {
    bool present;
    char *cert;
};
struct t_scrape {
    char *url;
    int64_t every_ms;
};
struct t_conf {
    bool flag;
    int64_t count;
    uint64_t max_bytes;
    int64_t timeout_ms;
    char *name;
    char *key;
    struct sp_strlist tags;
    struct sp_strmap headers;
    struct t_tls tls;
    struct {
        char *mode;
        char *secret;
    } api;
    struct sp_blocklist scrape;
    char *must;
};

static const struct sp_conf_key t_tls_keys[] = {
    {"cert", SP_CONF_STRING, offsetof(struct t_tls, cert), "cert.pem", NULL, 0, 0, 0, "cert"},
};
static const struct sp_conf_key t_api_keys[] = {
    {"mode", SP_CONF_STRING, 0, "direct", NULL, 0, 0, 0, "mode"},
    {"secret", SP_CONF_SECRET, sizeof(char *), NULL, NULL, 0, 0, 0, "api secret"},
};
static const struct sp_conf_key t_scrape_keys[] = {
    {"url", SP_CONF_STRING, offsetof(struct t_scrape, url), NULL, NULL, 0, 0, SP_CONF_REQUIRED,
     "url"},
    {"every", SP_CONF_DURATION, offsetof(struct t_scrape, every_ms), "15s", NULL, 0, 0, 0, "every"},
};
static const struct sp_conf_key t_keys[] = {
    {"flag", SP_CONF_BOOL, offsetof(struct t_conf, flag), "true", NULL, 0, 0, 0, "a flag"},
    {"count", SP_CONF_INT, offsetof(struct t_conf, count), "7", NULL, 0, 0, 0, "a count"},
    {"max_bytes", SP_CONF_SIZE, offsetof(struct t_conf, max_bytes), "4MiB", NULL, 0, 0, 0, "bytes"},
    {"timeout", SP_CONF_DURATION, offsetof(struct t_conf, timeout_ms), "5s", NULL, 0, 0, 0, "t"},
    {"name", SP_CONF_STRING, offsetof(struct t_conf, name), NULL, NULL, 0, 0, 0, "a name"},
    {"key", SP_CONF_SECRET, offsetof(struct t_conf, key), NULL, NULL, 0, 0, 0, "a secret"},
    {"tags", SP_CONF_STRLIST, offsetof(struct t_conf, tags), "[a, b]", NULL, 0, 0, 0, "tags"},
    {"headers", SP_CONF_STRMAP, offsetof(struct t_conf, headers), NULL, NULL, 0, 0, 0, "hdrs"},
    {"tls", SP_CONF_BLOCK, offsetof(struct t_conf, tls), NULL, t_tls_keys, 1, 0,
     SP_CONF_OPTIONAL_BLOCK, "tls | pipes"},
    {"api", SP_CONF_BLOCK, offsetof(struct t_conf, api), NULL, t_api_keys, 2, 0, 0, "api"},
    {"scrape", SP_CONF_BLOCKLIST, offsetof(struct t_conf, scrape), NULL, t_scrape_keys, 2,
     sizeof(struct t_scrape), 0, "targets"},
    {"must", SP_CONF_STRING, offsetof(struct t_conf, must), NULL, NULL, 0, 0, SP_CONF_REQUIRED,
     "required"},
};

/* Parses text as a whole document and fills a t_conf from it. */
static size_t fill_text(struct sp_arena *a, const char *text, struct t_conf *out,
                        struct sp_conf_ctx *ctx, struct sp_diag *d)
{
    struct sp_node *root = NULL;
    memset(out, 0, sizeof(*out));
    if (sp_yaml_parse(a, "k.yaml", text, strlen(text), d, &root) != 0)
        return 99;
    memset(ctx, 0, sizeof(*ctx));
    ctx->arena = a;
    ctx->prefix = "receivers.t";
    ctx->pos = (struct sp_conf_pos){"k.yaml", 1, 1};
    return sp_conf_fill(ctx, t_keys, SP_CONF_END_COUNT(t_keys), out, root, "", NULL, d);
}

static void test_key_table_defaults_and_types(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_diag d = {0};
    struct t_conf t;
    struct sp_conf_ctx ctx;
    size_t errs = fill_text(a, "must: here\n", &t, &ctx, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(errs, 0);
    ASSERT(t.flag);
    ASSERT_EQ_INT(t.count, 7);
    ASSERT_EQ_U64(t.max_bytes, 4u << 20);
    ASSERT_EQ_INT(t.timeout_ms, 5000);
    ASSERT(t.name == NULL);
    ASSERT(t.key == NULL);
    ASSERT_EQ_INT(t.tags.n, 2);
    ASSERT_EQ_STR(t.tags.v[1], "b");
    ASSERT_EQ_INT(t.headers.n, 0);
    ASSERT(!t.tls.present);
    ASSERT_EQ_STR(t.tls.cert, "cert.pem");
    ASSERT_EQ_STR(t.api.mode, "direct");
    ASSERT_EQ_INT(t.scrape.n, 0);

    errs = fill_text(a, "must: here\n"
                        "flag: off\n"
                        "count: -12\n"
                        "max_bytes: 64KiB\n"
                        "timeout: 1m30s\n"
                        "name: \"x y\"\n"
                        "key: s3cr3t-value\n"
                        "tags: [x]\n"
                        "headers: {A: '1', B: two}\n"
                        "tls:\n"
                        "api: {secret: abc}\n"
                        "scrape:\n"
                        "  - url: http://a/x\n"
                        "  - url: http://b/y\n"
                        "    every: 500ms\n",
                     &t, &ctx, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(errs, 0);
    ASSERT(!t.flag);
    ASSERT_EQ_INT(t.count, -12);
    ASSERT_EQ_U64(t.max_bytes, 65536);
    ASSERT_EQ_INT(t.timeout_ms, 90000);
    ASSERT_EQ_STR(t.name, "x y");
    ASSERT_EQ_STR(t.key, "s3cr3t-value");
    ASSERT_EQ_INT(t.tags.n, 1);
    ASSERT_EQ_INT(t.headers.n, 2);
    ASSERT_EQ_STR(t.headers.keys[1], "B");
    ASSERT_EQ_STR(t.headers.values[1], "two");
    ASSERT(t.tls.present); /* `tls:` with no value is present, with defaults */
    ASSERT_EQ_STR(t.tls.cert, "cert.pem");
    ASSERT_EQ_STR(t.api.secret, "abc");
    ASSERT_EQ_INT(t.scrape.n, 2);
    struct t_scrape *s = t.scrape.items;
    ASSERT_EQ_STR(s[0].url, "http://a/x");
    ASSERT_EQ_INT(s[0].every_ms, 15000);
    ASSERT_EQ_INT(s[1].every_ms, 500);

    /* Positions of list items are found by either spelling of the path. */
    struct sp_err err;
    sp_conf_errorf(&ctx, &err, "scrape[1].every", "too often");
    ASSERT_EQ_STR(err.msg, "k.yaml:15:12: receivers.t.scrape[1].every: too often");
    sp_conf_errorf(&ctx, &err, "scrape.1.url", "unreachable");
    ASSERT_EQ_STR(err.msg, "k.yaml:14:10: receivers.t.scrape.1.url: unreachable");
    sp_conf_errorf(&ctx, &err, "tls.cert", "missing file");
    ASSERT_EQ_STR(err.msg, "k.yaml:10:1: receivers.t.tls.cert: missing file");

    /* Printing redacts the secrets and reads back to the same struct. */
    struct sp_buf out = {0};
    sp_conf_print_keys(&out, t_keys, SP_CONF_END_COUNT(t_keys), &t, 0);
    const char *p = (const char *)out.data;
    ASSERT(strstr(p, "s3cr3t") == NULL);
    ASSERT(strstr(p, "abc") == NULL);
    ASSERT_CONTAINS(p, "key: \"[REDACTED]\"\n");
    ASSERT_CONTAINS(p, "  secret: \"[REDACTED]\"\n");
    ASSERT_CONTAINS(p, "timeout: 1m30s\n");
    ASSERT_CONTAINS(p, "max_bytes: 64KiB\n");
    ASSERT_CONTAINS(p, "name: \"x y\"\n");
    ASSERT_CONTAINS(p, "tls:\n  cert: cert.pem\n");
    ASSERT_CONTAINS(p, "scrape:\n  - url: http://a/x\n    every: 15s\n  - url: http://b/y\n"
                       "    every: 500ms\n");
    struct t_conf t2;
    struct sp_conf_ctx ctx2;
    errs = fill_text(a, p, &t2, &ctx2, &d);
    ASSERT_EQ_STR(diag_text(&d), "");
    ASSERT_EQ_INT(t2.timeout_ms, t.timeout_ms);
    ASSERT_EQ_STR(t2.key, "[REDACTED]");
    ASSERT_EQ_INT(t2.scrape.n, 2);
    ASSERT(t2.tls.present);

    /* Every secret is handed to the log redaction. */
    sp_log_clear_secrets();
    sp_conf_each_secret(t_keys, SP_CONF_END_COUNT(t_keys), &t, sp_log_add_secret);
    sp_buf_free(&out);
    sp_diag_free(&d);
    sp_arena_destroy(a);
}

static void test_key_table_errors(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_diag d = {0};
    struct t_conf t;
    struct sp_conf_ctx ctx;
    size_t errs = fill_text(a, "flag: maybe\n"
                               "count: 1.5\n"
                               "max_bytes: 12 parsecs\n"
                               "timeout: 10\n"
                               "key: [hunter2-secret]\n"
                               "tags: x\n"
                               "tls: on\n"
                               "scrape:\n"
                               "  - every: 1s\n"
                               "  - nope\n"
                               "api: {secert: x}\n",
                            &t, &ctx, &d);
    const char *m = diag_text(&d);
    ASSERT_CONTAINS(m, "k.yaml:1:7: receivers.t.flag: expected true or false, got 'maybe'\n");
    ASSERT_CONTAINS(m, "k.yaml:2:8: receivers.t.count: expected an integer, got '1.5'\n");
    ASSERT_CONTAINS(m, "k.yaml:3:12: receivers.t.max_bytes: expected a size like 64KiB or 20MiB, "
                       "got '12 parsecs'\n");
    ASSERT_CONTAINS(m, "k.yaml:4:10: receivers.t.timeout: expected a duration like 10s, got "
                       "'10'\n");
    ASSERT_CONTAINS(m, "k.yaml:5:6: receivers.t.key: expected a string, got a sequence\n");
    ASSERT_CONTAINS(m, "k.yaml:6:7: receivers.t.tags: expected a list like [a, b], got a "
                       "scalar\n");
    ASSERT_CONTAINS(m, "k.yaml:7:6: receivers.t.tls: expected a mapping, got a scalar\n");
    ASSERT_CONTAINS(m, "k.yaml:9:5: missing required key 'url' in receivers.t.scrape[0]\n");
    ASSERT_CONTAINS(m, "k.yaml:10:5: receivers.t.scrape[1]: expected a mapping, got a scalar\n");
    ASSERT_CONTAINS(m, "k.yaml:11:7: unknown key 'secert' in receivers.t.api (did you mean "
                       "'secret'?)\n");
    ASSERT_CONTAINS(m, "k.yaml:1:1: missing required key 'must' in receivers.t\n");
    /* A secret's bad value never reaches a message. */
    ASSERT(strstr(m, "hunter2") == NULL);
    ASSERT_EQ_INT(errs, 11);
    ASSERT_EQ_INT(d.errors, 11);
    sp_diag_free(&d);
    sp_arena_destroy(a);
}

static void test_scalar_parsers(void)
{
    int64_t ms = -1;
    static const struct {
        const char *in;
        int64_t ms;
    } durations[] = {{"10s", 10000}, {"500ms", 500}, {"1m30s", 90000}, {"2h", 7200000},
                     {"1.5s", 1500}, {"0", 0},        {" 3s ", 3000},   {"1h1m1s1ms", 3661001},
                     {"100us", 1},   {"2000000ns", 2}, {"0s", 0}};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        ASSERT_EQ_INT(sp_conf_parse_duration_ms(durations[i].in, &ms), 0);
        ASSERT_EQ_INT(ms, durations[i].ms);
    }
    static const char *const bad_durations[] = {"", "10", "abc", "-5s", "1d", "s", "1.s.", "5 s",
                                                "10sx", "99999999999999h"};
    for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++)
        ASSERT_EQ_INT(sp_conf_parse_duration_ms(bad_durations[i], &ms), SP_EINVAL);

    uint64_t sz = 0;
    static const struct {
        const char *in;
        uint64_t v;
    } sizes[] = {{"123", 123},      {"64KiB", 65536},    {"20MiB", 20971520}, {"1GiB", 1u << 30},
                 {"5MB", 5000000},  {"1.5KiB", 1536},    {"2 mib", 2097152},  {"7B", 7},
                 {"1k", 1000},      {"3Mi", 3145728}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ASSERT_EQ_INT(sp_conf_parse_size(sizes[i].in, &sz), 0);
        ASSERT_EQ_U64(sz, sizes[i].v);
    }
    static const char *const bad_sizes[] = {"", "MiB", "-1", "12 parsecs", "1e3", "99999999999TiB"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
        ASSERT_EQ_INT(sp_conf_parse_size(bad_sizes[i], &sz), SP_EINVAL);

    bool b = false;
    ASSERT_EQ_INT(sp_conf_parse_bool("true", &b), 0);
    ASSERT(b);
    ASSERT_EQ_INT(sp_conf_parse_bool("Off", &b), 0);
    ASSERT(!b);
    ASSERT_EQ_INT(sp_conf_parse_bool("1", &b), SP_EINVAL);

    char host[256];
    int port = -1;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_conf_parse_endpoint("0.0.0.0:4317", host, &port, &err), 0);
    ASSERT_EQ_STR(host, "0.0.0.0");
    ASSERT_EQ_INT(port, 4317);
    ASSERT_EQ_INT(sp_conf_parse_endpoint(":8888", host, &port, &err), 0);
    ASSERT_EQ_STR(host, "127.0.0.1");
    ASSERT_EQ_INT(sp_conf_parse_endpoint("[::1]:0", host, &port, &err), 0);
    ASSERT_EQ_STR(host, "::1");
    ASSERT_EQ_INT(port, 0);
    ASSERT_EQ_INT(sp_conf_parse_endpoint("localhost:13133", host, &port, &err), 0);
    ASSERT_EQ_STR(host, "localhost");
    ASSERT_EQ_INT(sp_conf_parse_endpoint("::1:80", host, &port, &err), SP_EINVAL);
    ASSERT_CONTAINS(err.msg, "needs brackets");
    ASSERT_EQ_INT(sp_conf_parse_endpoint("host:65536", host, &port, &err), SP_EINVAL);
    ASSERT_EQ_STR(err.msg, "endpoint 'host:65536': port must be a number 0-65535");
    ASSERT_EQ_INT(sp_conf_parse_endpoint("http://a:1", host, &port, &err), SP_EINVAL);
    ASSERT_EQ_INT(sp_conf_parse_endpoint("", host, &port, &err), SP_EINVAL);
    ASSERT_EQ_INT(sp_conf_parse_endpoint("a b:1", host, &port, &err), SP_EINVAL);
    ASSERT_EQ_INT(sp_conf_parse_endpoint("a:", host, &port, &err), SP_EINVAL);

    char buf[64];
    sp_conf_format_duration(buf, sizeof(buf), 3661001);
    ASSERT_EQ_STR(buf, "1h1m1s1ms");
    sp_conf_format_duration(buf, sizeof(buf), 0);
    ASSERT_EQ_STR(buf, "0s");
    sp_conf_format_size(buf, sizeof(buf), 20971520);
    ASSERT_EQ_STR(buf, "20MiB");
    sp_conf_format_size(buf, sizeof(buf), 1000);
    ASSERT_EQ_STR(buf, "1000");

    static const char *const words[] = {"endpoint", "path", "traces", "profiles"};
    ASSERT_EQ_STR(sp_conf_suggest("endpont", words, 4), "endpoint");
    ASSERT_EQ_STR(sp_conf_suggest("ednpoint", words, 4), "endpoint"); /* transposition */
    ASSERT_EQ_STR(sp_conf_suggest("Path", words, 4), "path");
    ASSERT_EQ_STR(sp_conf_suggest("trace", words, 4), "traces");
    ASSERT(sp_conf_suggest("colour", words, 4) == NULL);
    ASSERT(sp_conf_suggest("x", words, 4) == NULL);
}

static void test_print_config(void)
{
    setenv("SPT_DOLLAR", "a$b", 1);
    struct sp_service_conf *c = NULL;
    struct sp_diag d = {0};
    int rc = load_text("receivers: {otlp: {protocols: {grpc: }}}\n"
                       "exporters: {debug: , debug/spare: }\n"
                       "extensions:\n"
                       "  health_check:\n"
                       "    path: /${env:SPT_DOLLAR}\n"
                       "service:\n"
                       "  extensions: [health_check]\n"
                       "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n"
                       "  telemetry: {metrics: {address: \"\"}}\n"
                       "  shutdown_timeout: 2500ms\n",
                       &c, &d);
    ASSERT_EQ_INT(rc, 0);
    struct sp_buf out = {0};
    sp_service_conf_print(c, &out);
    const char *p = (const char *)out.data;
    ASSERT_CONTAINS(p, "\nreceivers:\n  otlp:");
    ASSERT_CONTAINS(p, "\nprocessors: {}\n");
    ASSERT_CONTAINS(p, "  # not used by any pipeline: not created\n  debug/spare:");
    ASSERT_CONTAINS(p, "extensions:\n  health_check:\n    endpoint: 127.0.0.1:13133\n"
                       "    path: /a$$b\n");
    ASSERT_CONTAINS(p, "service:\n  extensions: [health_check]\n  pipelines:\n    traces:\n"
                       "      receivers: [otlp]\n      processors: []\n      exporters: [debug]\n");
    ASSERT_CONTAINS(p, "      level: info\n      format: logfmt\n");
    ASSERT_CONTAINS(p, "      address: \"\"\n  shutdown_timeout: 2s500ms\n");

    /* The printed config loads back to the same printed config. */
    struct sp_service_conf *c2 = NULL;
    struct sp_diag d2 = {0};
    rc = load_text(p, &c2, &d2);
    ASSERT_EQ_INT(d2.errors, 0);
    ASSERT_EQ_INT(rc, 0);
    struct sp_buf out2 = {0};
    sp_service_conf_print(c2, &out2);
    ASSERT_EQ_STR((const char *)out2.data, p);
    ASSERT_EQ_STR(((struct hc_conf *)find_comp(c2, "health_check")->conf)->path, "/a$b");
    sp_buf_free(&out);
    sp_buf_free(&out2);
    sp_service_conf_free(c);
    sp_service_conf_free(c2);
    sp_diag_free(&d);
    sp_diag_free(&d2);
}

static void test_reference(void)
{
    struct sp_buf out = {0};
    ASSERT_EQ_INT(sp_conf_reference(&sp_registry, &out), 0);
    const char *r = (const char *)out.data;
    ASSERT_CONTAINS(r, "| `service.shutdown_timeout` | duration | `10s` |");
    ASSERT_CONTAINS(r, "| `service.telemetry.logs.format` | string | `logfmt` |");
    ASSERT_CONTAINS(r, "| `service.telemetry.metrics.address` | string | `127.0.0.1:8888` |");
    ASSERT_CONTAINS(r, "| `extensions.health_check.endpoint` | string | `127.0.0.1:13133` |");
    ASSERT_CONTAINS(r, "| `extensions.health_check.path` | string | `/` |");
    ASSERT_CONTAINS(r, "`service.pipelines.<signal>[/name]`");
    size_t n = sp_registry.count;
    const struct sp_component_type *const *all = sp_registry.types;
    for (size_t i = 0; i < n; i++) {
        char head[128];
        snprintf(head, sizeof(head), "\n### `%s`\n", all[i]->name);
        ASSERT_CONTAINS(r, head);
        /* Every key of every component has its dotted row. */
        for (size_t k = 0; k < all[i]->conf_key_count; k++) {
            static const char *const sections[] = {"receivers", "processors", "exporters",
                                                   "extensions"};
            char row[256];
            snprintf(row, sizeof(row), "| `%s.%s.%s` |", sections[all[i]->kind], all[i]->name,
                     all[i]->conf_keys[k].name);
            ASSERT_CONTAINS(r, row);
        }
    }
    sp_buf_free(&out);
}

static void test_embedded_default(void)
{
    /* Its YAML must parse, whatever the components accept today. */
    struct sp_arena *a = sp_arena_create(0);
    struct sp_diag d = {0};
    struct sp_node *root = NULL;
    setenv("SPANPROF_EXPORTER", "file", 1);
    ASSERT_EQ_INT(sp_yaml_parse(a, SP_CONF_EMBEDDED_NAME, sp_default_config_yaml,
                                sp_default_config_yaml_len, &d, &root),
                  0);
    ASSERT(root && sp_node_get(root, "service", NULL));
    sp_arena_destroy(a);

    struct sp_service_conf *c = NULL;
    int rc = sp_service_conf_load(&sp_registry, NULL, 0, &c, &d);
    if (rc == 0) {
        ASSERT(c->from_embedded_default);
        ASSERT_EQ_INT(c->shutdown_timeout_ms, 10000);
        ASSERT_EQ_INT(c->pipeline_count, 2);
        ASSERT_EQ_STR(c->pipelines[0].exporters[0]->id, "file");
        sp_service_conf_free(c);
    } else {
        /* Until every component has its key table: every message names the default. */
        const char *t = diag_text(&d);
        ASSERT(*t);
        for (const char *line = t; *line; line = strchr(line, '\n') + 1) {
            ASSERT(strncmp(line, "<embedded default>:", 19) == 0);
            if (!strchr(line, '\n'))
                break;
        }
    }
    sp_diag_free(&d);
}

int main(void)
{
    char dir[] = "/tmp/sp-test-config.XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_minimal_valid);
    RUN(test_unknown_key_suggests);
    RUN(test_wrong_types);
    RUN(test_unknown_component_type);
    RUN(test_pipeline_references);
    RUN(test_processor_shared_by_same_signal);
    RUN(test_unused_component_warns);
    RUN(test_missing_pipelines);
    RUN(test_yaml_errors);
    RUN(test_yaml_bounds);
    RUN(test_anchors_and_merge_keys);
    RUN(test_env_expansion);
    RUN(test_merge_two_files);
    RUN(test_component_errors_carry_position);
    RUN(test_key_table_defaults_and_types);
    RUN(test_key_table_errors);
    RUN(test_scalar_parsers);
    RUN(test_print_config);
    RUN(test_reference);
    RUN(test_embedded_default);
    sp_log_clear_secrets();
    /* Leave nothing behind. */
    static const char *const files[] = {"t.yaml", "base.yaml", "over.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    if (chdir("/") == 0)
        rmdir(dir);
    return sp_test_summary();
}
