// A Collector (otelcol-contrib) configuration copied as-is, and the
// Datadog site and API key checks, through the real `spanprof validate`.
// Every line of the output is checked: each Collector-only component or key
// gets a next step (ignored with an info line, ignored with a warning that
// names spanprof's equivalent, or an error with a hint), and nothing else
// is said.
'use strict';

const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

function validate(file, env = {}) {
  const e = { ...process.env, ...env };
  delete e.DD_API_KEY;
  Object.assign(e, env);
  const r = spawnSync(h.BIN, ['validate', '--config', file], { env: e, encoding: 'utf8' });
  // Log lines carry a timestamp: keep level, component and message.
  const lines = (r.stderr + r.stdout).split('\n').filter(Boolean)
    .map((l) => l.replace(/^ts=\S+ /, ''));
  return { code: r.status, lines, text: r.stderr + r.stdout };
}

const F = 'tests/data/config/otelcol-contrib.yaml';
const file = path.join(h.SRC, F);
const r = validate(file);
const want = [
  `${file}:9:9: warning: receivers.otlp.protocols.grpc.include_metadata is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no equivalent: request headers are not passed down the pipeline`,
  `${file}:12:9: warning: receivers.otlp.protocols.http.include_metadata is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no equivalent: request headers are not passed down the pipeline`,
  `${file}:15:3: info: processor 'batch' is accepted and ignored: spanprof batches in its exporters: each export request is one batch, bounded by the exporter's sending_queue`,
  `${file}:18:3: warning: processor 'memory_limiter' (OpenTelemetry Collector) is ignored: spanprof has no process-wide memory limiter; it bounds memory per component instead: receivers (otlp max_request_body_size, max_recv_msg_size_mib, max_inflight_bytes; pprof max_request_size), the join (max_spans, max_pending_bytes) and exporters (sending_queue.queue_size, max_bytes); size the container's memory limit above their sum`,
  `${file}:28:7: warning: exporters.datadog.api.fail_on_invalid_key is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof warns at start when the key does not look like an API key; the intake decides`,
  `${file}:30:7: exporters.datadog.traces.span_name_as_resource_name is an OpenTelemetry Collector setting spanprof does not have: spanprof names resources as the Datadog Agent does, with no option (the join needs the same names on spans and profiles); remove it`,
  `${file}:31:7: warning: exporters.datadog.traces.trace_buffer is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof's equivalent is sending_queue.queue_size`,
  `${file}:47:3: warning: extension 'pprof' (OpenTelemetry Collector) is ignored: the Collector's pprof extension serves the Collector's own profiles on :1777; spanprof has no self-profiling endpoint (spanprof's pprof *receiver* is something else: it takes your application's profiles)`,
  `${file}:55:7: warning: service.telemetry.logs.encoding is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof's equivalent is service.telemetry.logs.format: logfmt or json`,
  `${file}:57:7: warning: service.telemetry.metrics.level is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no metric levels: /metrics always serves every series`,
  `${file}:67:19: exporter 'datadog' does not support metrics (it supports traces and profiles), so it cannot be in pipeline 'metrics'; spanprof forwards metrics and logs with an otlphttp exporter (e.g. to the node's Datadog Agent OTLP intake, http://\${env:HOST_IP}:4318)`,
];
assert.strictEqual(r.code, 1, `exit code of validate:\n${r.text}`);
assert.deepStrictEqual(r.lines, want, `validate output:\n${r.text}`);
console.log(`ok   otelcol-contrib config: ${want.length} lines, each with a next step`);

// Fixed as the errors say: what is left are the ignored parts, and it is valid.
const dir = h.tmpDir('otelcol');
const fixed = path.join(dir, 'fixed.yaml');
fs.writeFileSync(fixed, fs.readFileSync(file, 'utf8')
  .replace('      span_name_as_resource_name: true\n', '')
  .replace(/    metrics:\n      receivers: \[otlp\]\n      processors: \[memory_limiter, batch\]\n      exporters: \[datadog\]/, '    metrics:\n      receivers: [otlp]\n      processors: [memory_limiter, batch]\n      exporters: [otlphttp]'));
const f2 = validate(fixed);
assert.strictEqual(f2.code, 0, `fixed config:\n${f2.text}`);
assert.strictEqual(f2.lines[f2.lines.length - 1], 'configuration is valid');
assert.strictEqual(f2.lines.filter((l) => /warning:|info:/.test(l)).length, 9, f2.text);
console.log('ok   the same config with the two errors fixed is valid (9 ignored parts reported)');

// Sites and keys.
function dd(site, key, extra = '') {
  const p = path.join(dir, `dd-${Math.random().toString(16).slice(2)}.yaml`);
  fs.writeFileSync(p, `receivers: {otlp: {protocols: {grpc: {}}}}
exporters:
  datadog:
    api: {key: "${key}", site: "${site}"}
${extra}
service: {pipelines: {traces: {receivers: [otlp], exporters: [datadog]}}}
`);
  return { p, ...validate(p) };
}
const GOOD = '0123456789abcdef0123456789abcdef';
for (const s of ['datadoghq.com', 'us3.datadoghq.com', 'us5.datadoghq.com', 'datadoghq.eu', 'ap1.datadoghq.com', 'ap2.datadoghq.com', 'ddog-gov.com']) {
  const v = dd(s, GOOD);
  assert.strictEqual(v.code, 0, `${s}: ${v.text}`);
  assert.deepStrictEqual(v.lines, ['configuration is valid'], `${s}: ${v.text}`);
}
console.log('ok   every Datadog site is accepted silently');
let v = dd('app.datadoghq.eu', GOOD);
assert.strictEqual(v.code, 1);
assert.deepStrictEqual(v.lines, [`${v.p}:4:58: exporters.datadog.api.site: 'app.datadoghq.eu' is a Datadog host, not a site: the site is 'datadoghq.eu'`]);
v = dd('datadoghq.co', GOOD);
assert.strictEqual(v.code, 1);
assert.deepStrictEqual(v.lines, [`${v.p}:4:58: exporters.datadog.api.site: 'datadoghq.co' is not a Datadog site (did you mean 'datadoghq.com'?)`]);
v = dd('uk9.datadoghq.com', GOOD);
assert.strictEqual(v.code, 0, v.text);
assert.match(v.lines[0], /^level=warn component=datadog msg="api\.site: 'uk9\.datadoghq\.com' is not a Datadog site spanprof knows/);
v = dd('example.com', GOOD);
assert.strictEqual(v.code, 1);
assert.match(v.lines[0], /'example\.com' is not a Datadog site: use one of datadoghq\.com, .*ddog-gov\.com/);
v = dd('anything.example', GOOD, '    traces: {endpoint: "http://127.0.0.1:9"}');
assert.strictEqual(v.code, 0, `an explicit traces.endpoint allows any site: ${v.text}`);
console.log('ok   sites: web-app host, typo, unknown region (warning), non-site; explicit endpoint allows anything');

v = dd('datadoghq.com', 'abc');
assert.strictEqual(v.code, 0, `a short key is a warning, not an error: ${v.text}`);
assert.deepStrictEqual(v.lines, [
  'level=warn component=datadog msg="api.key is 3 characters: a Datadog API key is 32 hexadecimal characters; the intake will answer 403 if it is not valid"',
  'configuration is valid',
]);
const secret = 'sk_live_not_a_datadog_key_0123456789';
v = dd('datadoghq.com', secret);
assert.strictEqual(v.code, 0);
assert.ok(!v.text.includes(secret) && !v.text.includes(secret.slice(-8)), `the key must never be printed:\n${v.text}`);
assert.match(v.lines[0], /api\.key is 36 characters, 19 of them not hexadecimal/);
v = dd('datadoghq.com', '0123456789abcdef0123456789abcdef01234567');
assert.match(v.lines[0], /shape of an application key/);
console.log('ok   API keys: short, non-hex and application-key shapes warned about, never printed');
console.log('otelcol_config: all checks passed');
