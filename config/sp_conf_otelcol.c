/* What the OpenTelemetry Collector has and spanprof does not: component
 * types and keys that appear in Collector configs, each with what spanprof
 * does instead, so a copied otelcol(-contrib) config gets a next step for
 * every line rather than "unknown key".
 *
 * Three answers: accepted and ignored with an info line (spanprof does the
 * job another way and nothing changes: `batch`; `memory_limiter`, whose
 * limit_mib becomes service.memory_limit), accepted and ignored with a
 * warning (the setting has no effect in spanprof and the warning says what
 * bounds or replaces it: `include_metadata`,
 * telemetry `metrics.level`, the `pprof` extension), and an error with a
 * hint (ignoring it would change or lose data, so the user must decide:
 * `attributes`, `otlp` exporter...). Names and meanings follow the
 * Collector's components of the same name (opentelemetry-collector and
 * opentelemetry-collector-contrib). */
#include "sp_conf_internal.h"

#include <string.h>

static const struct sp_otelcol_component sp_otelcol_components[] = {
    {SP_KIND_PROCESSOR, "batch", SP_OTELCOL_IGNORE_INFO,
     "spanprof batches in its exporters: each export request is one batch, bounded by the "
     "exporter's sending_queue"},
    /* Mapped onto service.memory_limit (sp_conf_service.c); the hint is
     * for when it cannot be. */
    {SP_KIND_PROCESSOR, "memory_limiter", SP_OTELCOL_IGNORE_WARN,
     "spanprof's memory ceiling is service.memory_limit"},
    {SP_KIND_EXTENSION, "pprof", SP_OTELCOL_IGNORE_WARN,
     "the Collector's pprof extension serves the Collector's own profiles on :1777; spanprof "
     "has no self-profiling endpoint (spanprof's pprof *receiver* is something else: it takes "
     "your application's profiles)"},
    {SP_KIND_EXTENSION, "zpages", SP_OTELCOL_IGNORE_WARN,
     "spanprof has no zpages; its state is in /metrics (service.telemetry.metrics.address) and "
     "its logs"},
    {SP_KIND_EXTENSION, "file_storage", SP_OTELCOL_IGNORE_WARN,
     "spanprof's sending queues are in memory only; nothing is persisted"},
    {SP_KIND_EXPORTER, "otlp", SP_OTELCOL_ERROR,
     "spanprof forwards OTLP over HTTP only: use the 'otlphttp' exporter with the same "
     "endpoint's OTLP/HTTP address (usually port 4318)"},
    {SP_KIND_EXPORTER, "logging", SP_OTELCOL_ERROR,
     "the Collector renamed it 'debug'; spanprof's 'debug' exporter writes every span and "
     "profile as JSON lines"},
    {SP_KIND_RECEIVER, "prometheus", SP_OTELCOL_ERROR,
     "spanprof takes traces (otlp) and profiles (pprof) only; scrape metrics with the "
     "Collector or the Datadog Agent"},
    {SP_KIND_RECEIVER, "hostmetrics", SP_OTELCOL_ERROR,
     "spanprof takes traces (otlp) and profiles (pprof) only; collect host metrics with the "
     "Collector or the Datadog Agent"},
    {SP_KIND_RECEIVER, "filelog", SP_OTELCOL_ERROR,
     "spanprof takes traces (otlp) and profiles (pprof) only; collect log files with the "
     "Collector or the Datadog Agent"},
    {SP_KIND_PROCESSOR, "resourcedetection", SP_OTELCOL_ERROR,
     "spanprof does not change data besides the join; set resource attributes in the SDK "
     "(OTEL_RESOURCE_ATTRIBUTES) or run this processor in a Collector behind spanprof"},
    {SP_KIND_PROCESSOR, "k8sattributes", SP_OTELCOL_ERROR,
     "spanprof does not change data besides the join; set resource attributes in the SDK "
     "(OTEL_RESOURCE_ATTRIBUTES, e.g. from the downward API) or run this processor in a "
     "Collector behind spanprof"},
    {SP_KIND_PROCESSOR, "attributes", SP_OTELCOL_ERROR,
     "spanprof does not change data besides the join; run this processor in a Collector "
     "(spanprof's otlphttp exporter can forward to one)"},
    {SP_KIND_PROCESSOR, "resource", SP_OTELCOL_ERROR,
     "spanprof does not change data besides the join; set resource attributes in the SDK "
     "(OTEL_RESOURCE_ATTRIBUTES) or run this processor in a Collector"},
    {SP_KIND_PROCESSOR, "filter", SP_OTELCOL_ERROR,
     "spanprof does not drop data; filter in the SDK or run this processor in a Collector"},
    {SP_KIND_PROCESSOR, "transform", SP_OTELCOL_ERROR,
     "spanprof does not change data besides the join; run this processor in a Collector"},
    {SP_KIND_PROCESSOR, "probabilistic_sampler", SP_OTELCOL_ERROR,
     "spanprof does not sample; sample in the SDK (OTEL_TRACES_SAMPLER) so spans and profile "
     "labels agree"},
    {SP_KIND_PROCESSOR, "tail_sampling", SP_OTELCOL_ERROR,
     "spanprof does not sample; tail sampling belongs in a gateway Collector behind spanprof"},
};

/* Keys by name and the name of the block holding them (NULL: any block;
 * the component's type for keys at a component's top level). */
static const struct sp_otelcol_key sp_otelcol_keys[] = {
    {"include_metadata", NULL, true,
     "spanprof has no equivalent: request headers are not passed down the pipeline"},
    {"auth", NULL, false,
     "spanprof has no authenticator extensions; for a sidecar on loopback none is needed, set "
     "credentials as headers on otlphttp"},
    {"tls", "grpc", false,
     "spanprof serves plain TCP (a sidecar on 127.0.0.1); terminate TLS in front of it"},
    {"tls", "http", false,
     "spanprof serves plain TCP (a sidecar on 127.0.0.1); terminate TLS in front of it"},
    {"tls", "otlphttp", false,
     "https:// endpoints are verified with the system CA bundle; client certificates are not "
     "supported"},
    {"encoding", "logs", true,
     "spanprof's equivalent is service.telemetry.logs.format: logfmt or json"},
    {"development", "logs", true, "spanprof has no equivalent"},
    {"sampling", "logs", true,
     "spanprof has no log sampling; its repeated warnings are rate-limited"},
    {"output_paths", "logs", true, "spanprof logs to stderr only"},
    {"error_output_paths", "logs", true, "spanprof logs to stderr only"},
    {"initial_fields", "logs", true, "spanprof has no equivalent"},
    {"processors", "logs", true, "spanprof logs to stderr only"},
    {"level", "metrics", true,
     "spanprof has no metric levels: /metrics always serves every series"},
    {"readers", "metrics", true,
     "spanprof's equivalent is service.telemetry.metrics.address (Prometheus text at /metrics)"},
    {"traces", "telemetry", true, "spanprof does not trace itself"},
    {"resource", "telemetry", true, "spanprof has no equivalent"},
    {"storage", "sending_queue", false,
     "spanprof's sending queues are in memory only (no persistent storage)"},
    {"blocking", "sending_queue", true,
     "spanprof refuses when the queue is full (on_full: refuse), which makes SDKs retry"},
    {"batch", "sending_queue", true, "spanprof's exporters send one request per export"},
    {"multiplier", "retry_on_failure", true,
     "spanprof's backoff grows by 1.5 per retry, with +-50% jitter"},
    {"randomization_factor", "retry_on_failure", true,
     "spanprof's backoff grows by 1.5 per retry, with +-50% jitter"},
    {"span_name_as_resource_name", "traces", false,
     "spanprof names resources as the Datadog Agent does, with no option (the join needs the "
     "same names on spans and profiles)"},
    {"span_name_remappings", "traces", false,
     "spanprof names spans as the Datadog Agent does, with no option"},
    {"trace_buffer", "traces", true,
     "spanprof's equivalent is sending_queue.queue_size"},
    {"compute_stats_by_span_kind", "traces", true,
     "spanprof computes no trace stats (APM stats come from the intake)"},
    {"peer_tags_aggregation", "traces", true, "spanprof computes no trace stats"},
    {"compute_top_level_by_span_kind", "traces", true,
     "spanprof marks local roots as top-level, as dd-trace does"},
    {"fail_on_invalid_key", "api", true,
     "spanprof warns at start when the key does not look like an API key; the intake decides"},
    {"metrics", "datadog", false,
     "spanprof's datadog exporter takes traces and profiles; send metrics through an otlphttp "
     "exporter to the node's Datadog Agent (OTLP intake, port 4318)"},
    {"logs", "datadog", false,
     "spanprof's datadog exporter takes traces and profiles; send logs through an otlphttp "
     "exporter to the node's Datadog Agent (OTLP intake, port 4318)"},
    {"host_metadata", "datadog", true, "spanprof sends no host metadata"},
    {"only_metadata", "datadog", true, "spanprof sends no host metadata"},
};

const struct sp_otelcol_component *sp_otelcol_component(enum sp_kind kind, const char *type)
{
    for (size_t i = 0; i < sizeof(sp_otelcol_components) / sizeof(sp_otelcol_components[0]); i++)
        if (sp_otelcol_components[i].kind == kind &&
            strcmp(sp_otelcol_components[i].type, type) == 0)
            return &sp_otelcol_components[i];
    return NULL;
}

const struct sp_otelcol_key *sp_otelcol_key(const char *key, const char *where)
{
    /* The block's name: the last segment of where, without a "/name". */
    const char *dot = strrchr(where, '.');
    const char *block = dot ? dot + 1 : where;
    size_t bl = strcspn(block, "/");
    for (size_t i = 0; i < sizeof(sp_otelcol_keys) / sizeof(sp_otelcol_keys[0]); i++) {
        const struct sp_otelcol_key *k = &sp_otelcol_keys[i];
        if (strcmp(k->key, key) != 0)
            continue;
        if (!k->parent || (strlen(k->parent) == bl && strncmp(k->parent, block, bl) == 0))
            return k;
    }
    return NULL;
}
