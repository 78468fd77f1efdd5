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
// (memory_limiter is reported once the service section is read: it maps
// onto service.memory_limit unless that is set.)
const want = [
  `${file}:9:9: warning: receivers.otlp.protocols.grpc.include_metadata is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no equivalent: request headers are not passed down the pipeline`,
  `${file}:12:9: warning: receivers.otlp.protocols.http.include_metadata is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no equivalent: request headers are not passed down the pipeline`,
  `${file}:15:3: info: processor 'batch' is accepted and ignored: spanprof batches in its exporters: each export request is one batch, bounded by the exporter's sending_queue`,
  `${file}:28:7: warning: exporters.datadog.api.fail_on_invalid_key is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof warns at start when the key does not look like an API key; the intake decides`,
  `${file}:30:7: exporters.datadog.traces.span_name_as_resource_name is an OpenTelemetry Collector setting spanprof does not have: spanprof names resources as the Datadog Agent does, with no option (the join needs the same names on spans and profiles); remove it`,
  `${file}:31:7: warning: exporters.datadog.traces.trace_buffer is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof's equivalent is sending_queue.queue_size`,
  `${file}:47:3: warning: extension 'pprof' (OpenTelemetry Collector) is ignored: the Collector's pprof extension serves the Collector's own profiles on :1777; spanprof has no self-profiling endpoint (spanprof's pprof *receiver* is something else: it takes your application's profiles)`,
  `${file}:55:7: warning: service.telemetry.logs.encoding is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof's equivalent is service.telemetry.logs.format: logfmt or json`,
  `${file}:57:7: warning: service.telemetry.metrics.level is an OpenTelemetry Collector setting spanprof does not have, ignored: spanprof has no metric levels: /metrics always serves every series`,
  `${file}:18:3: info: processor 'memory_limiter' maps onto service.memory_limit: 400 MiB, the ceiling for everything spanprof holds; receivers refuse new requests above 80 % of it, 320 MiB (the Collector's soft limit, limit_mib - spike_limit_mib, was 300 MiB); check_interval is not needed (every reservation is counted); it is not a pipeline stage`,
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
const pc = spawnSync(h.BIN, ['print-config', '--config', fixed], { encoding: 'utf8' });
assert.match(pc.stdout, /^  memory_limit: 400MiB$/m, `memory_limiter's limit_mib is the ceiling:\n${pc.stdout}`);
console.log('ok   the same config with the two errors fixed is valid (9 notes); memory_limiter limit_mib 400 -> service.memory_limit 400MiB');

// memory_limiter beside an explicit service.memory_limit, or with a percentage only.
for (const [extra, proc, re] of [
  ['  memory_limit: 128MiB\n', 'limit_mib: 400', /warning: processor 'memory_limiter' is ignored: service\.memory_limit \(line \d+\) is spanprof's memory ceiling/],
  ['', 'limit_percentage: 80', /warning: processor 'memory_limiter' is ignored: limit_percentage has no equivalent \(spanprof does not read the container's limit\); spanprof's memory ceiling is service\.memory_limit \(default 256MiB\), set it instead/],
]) {
  const f = path.join(dir, `ml-${Math.random().toString(16).slice(2)}.yaml`);
  fs.writeFileSync(f, `receivers: {otlp: {protocols: {grpc: {}}}}
processors:
  memory_limiter: {check_interval: 1s, ${proc}}
exporters: {debug: {}}
service:
${extra}  pipelines: {traces: {receivers: [otlp], processors: [memory_limiter], exporters: [debug]}}
`);
  const v = validate(f);
  assert.strictEqual(v.code, 0, v.text);
  assert.match(v.text, re);
}
console.log('ok   memory_limiter beside service.memory_limit, or with limit_percentage: a warning naming service.memory_limit');

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
// otlphttp header values are secrets: never printed by print-config.
const hv = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const hf = path.join(dir, 'headers.yaml');
fs.writeFileSync(hf, `receivers: {otlp: {protocols: {grpc: {}}}}
exporters:
  otlphttp: {endpoint: "http://127.0.0.1:4318", headers: {dd-api-key: "${hv}", x-team: a}}
service: {pipelines: {logs: {receivers: [otlp], exporters: [otlphttp]}}}
`);
const pcv = spawnSync(h.BIN, ['print-config', '--config', hf], { encoding: 'utf8' });
assert.strictEqual(pcv.status, 0, pcv.stderr);
assert.ok(!pcv.stdout.includes(hv) && !pcv.stderr.includes(hv), `a header value was printed:\n${pcv.stdout}`);
assert.match(pcv.stdout, /dd-api-key: "\[REDACTED\]"/);
console.log('ok   otlphttp header values are redacted by print-config');
console.log('otelcol_config: all checks passed');
