// file exporter, end to end: the real spanprof with the `file` exporter.
//  1. Real OpenTelemetry JS SDK spans over OTLP/HTTP: traces.jsonl must hold
//     one Datadog span per line, mapped as Datadog maps them (ids incl. the
//     128-bit trace id, service, name, resource, type, error, meta, metrics,
//     top level, chunk priority).
//  2. The Go fixture's spans (OTLP/HTTP JSON) and its CPU profile (plain
//     pprof push) through the pprof receiver and the join: profiles/<dir>/
//     must hold event.json and the cpu pprof, which `go tool pprof -tags`
//     reads and whose `trace endpoint` labels are the fixture's endpoints.
//  3. Metrics and a clean SIGTERM exit.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const d = require('./datadog_lib');

const FIX = h.FIXTURES;

function config({ otlpPort, pprofPort, healthPort, metricsPort, dir }) {
  return `
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlpPort}
  pprof:
    endpoint: 127.0.0.1:${pprofPort}
processors:
  join:
    join_delay: 1s
exporters:
  file:
    path: ${dir}
    max_file_size: 1MiB
    max_files: 2
    hostname: file-itest-host
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  shutdown_timeout: 5s
  pipelines:
    traces:
      receivers: [otlp]
      processors: [join]
      exporters: [file]
    profiles:
      receivers: [pprof]
      processors: [join]
      exporters: [file]
  telemetry:
    logs: {level: debug}
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
}

// JSON lines with uint64 ids kept exact (JSON.parse would round them).
function parseLines(text) {
  return text.split('\n').filter((l) => l).map((l) => JSON.parse(
    l.replace(/"(trace_id|span_id|parent_id|start|duration)":(\d+)/g, '"$1":"$2"')));
}

function readSpans(dir) {
  const f = path.join(dir, 'traces.jsonl');
  return fs.existsSync(f) ? parseLines(fs.readFileSync(f, 'utf8')) : [];
}

function uploads(dir) {
  const p = path.join(dir, 'profiles');
  if (!fs.existsSync(p)) return [];
  return fs.readdirSync(p).filter((n) => fs.existsSync(path.join(p, n, 'event.json'))).sort()
    .map((n) => path.join(p, n));
}

(async () => {
  const r = d.runner();
  const dir = path.join(h.tmpDir('file-exp'), 'data');
  const [otlpPort, pprofPort, healthPort, metricsPort] = await d.ports(4);
  const sp = await h.startSpanprof(config({ otlpPort, pprofPort, healthPort, metricsPort, dir }), { healthPort, metricsPort, name: 'file-exp' });
  let exit = null;
  try {
    await r.test('start: the directory is created and the log says where data goes', async () => {
      assert.ok(fs.statSync(path.join(dir, 'profiles')).isDirectory());
      assert.match(sp.log(), /writing the Datadog payloads spanprof would send under/);
    });

    // 1. SDK spans
    const sdk = await d.sendSdkSpans(otlpPort);
    const exp = d.expectations(sdk);
    await d.waitFor(() => readSpans(dir).length >= sdk.length, 20000, `${sdk.length} lines in traces.jsonl`);
    await h.sleep(300);
    const lines = readSpans(dir);
    await r.test('traces.jsonl: every SDK span once, mapped as Datadog maps it', async () => {
      assert.strictEqual(lines.length, sdk.length);
      assert.strictEqual(d.checkSpans(lines, exp), sdk.length);
      const ids = new Set(lines.map((l) => l.span_id));
      assert.strictEqual(ids.size, sdk.length, 'no duplicates');
    });
    await r.test('traces.jsonl: chunk and payload context', async () => {
      const byTrace = new Map();
      for (const l of lines) {
        assert.strictEqual(l.chunk.priority, 1);
        assert.strictEqual(l.chunk.tags['_dd.otlp_sr'], '1.00');
        assert.strictEqual(l.payload.env, 'itest');
        assert.strictEqual(l.payload.language, 'nodejs');
        assert.strictEqual(l.payload.hostname, 'file-itest-host');
        assert.strictEqual(l.agent.hostname, 'file-itest-host');
        if (!byTrace.has(l.trace_id)) byTrace.set(l.trace_id, []);
        byTrace.get(l.trace_id).push(l);
      }
      assert.strictEqual(byTrace.size, 3);
      for (const spans of byTrace.values()) {
        assert.strictEqual(spans.filter((s) => s.meta['_dd.p.dm'] === '-9').length, 1, 'decision maker once per chunk');
      }
      // The remote-parent trace has a 128-bit id: its high half as _dd.p.tid.
      const remote = lines.find((l) => l.meta['otel.trace_id'].startsWith('ffffffffffffffff'));
      assert.ok(remote, 'the remote-parent trace');
      assert.strictEqual(remote.meta['_dd.p.tid'], 'ffffffffffffffff');
    });

    // 2. profile through the join
    let res = await h.httpRequest(`http://127.0.0.1:${otlpPort}/v1/traces`, { headers: { 'content-type': 'application/json' }, body: fs.readFileSync(path.join(FIX, 'go-spans.json')) });
    assert.strictEqual(res.status, 200, `OTLP export answered ${res.status}: ${res.body}`);
    res = await h.httpRequest(`http://127.0.0.1:${pprofPort}/v1/pprof?service=goapp-fixture&type=cpu&version=1.0.0`, { headers: { 'content-type': 'application/octet-stream' }, body: fs.readFileSync(path.join(FIX, 'go-cpu-spanid.pprof')) });
    assert.ok(res.status >= 200 && res.status < 300, `pprof push answered ${res.status}: ${res.body}`);
    await d.waitFor(() => uploads(dir).length >= 1, 30000, 'a profile upload directory');
    await h.sleep(300);
    const up = uploads(dir)[0];
    const truth = JSON.parse(fs.readFileSync(path.join(FIX, 'go-truth.json')));
    const endpoints = Object.keys(truth.endpoints);
    const ev = JSON.parse(fs.readFileSync(path.join(up, 'event.json'), 'utf8'));
    await r.test('profiles: <seq>-<service>-<unixtime> with event.json and every part', async () => {
      assert.match(path.basename(up), /^000001-goapp-fixture-\d{10}$/);
      assert.strictEqual(ev.version, '4');
      assert.ok(ev.tags_profiler.split(',').includes('service:goapp-fixture'), ev.tags_profiler);
      assert.ok(ev.tags_profiler.split(',').includes('host:file-itest-host') || /(^|,)host:/.test(ev.tags_profiler), ev.tags_profiler);
      const files = fs.readdirSync(up).filter((f) => f !== 'event.json').sort();
      assert.deepStrictEqual(files, ev.attachments.slice().sort());
      if (ev.endpoint_counts) for (const k of Object.keys(ev.endpoint_counts)) assert.ok(endpoints.includes(k), k);
    });
    await r.test('profiles: go tool pprof -tags reads the cpu profile and shows the trace endpoints', async () => {
      const pprofs = ev.attachments.filter((a) => /\.pprof$/.test(a));
      assert.ok(pprofs.length >= 1, `no pprof part in ${ev.attachments}`);
      const file = path.join(up, pprofs[0]);
      const body = fs.readFileSync(file);
      assert.ok(body[0] === 0x1f && body[1] === 0x8b, 'gzip, as the join re-encoded it');
      const decoded = h.decodePprof(body);
      const labelled = decoded.samples.filter((s) => s.labels['trace endpoint']);
      assert.ok(labelled.length > 0, 'samples labelled by the join');
      for (const s of labelled) assert.ok(endpoints.includes(s.labels['trace endpoint']), s.labels['trace endpoint']);
      const tmp = h.tmpDir('file-pprof');
      const out = execFileSync('go', ['tool', 'pprof', '-tags', file], {
        env: { ...process.env, HOME: tmp, GOCACHE: path.join(tmp, 'gocache'), PPROF_TMPDIR: tmp, GOFLAGS: '', GOPROXY: 'off' },
        encoding: 'utf8',
      });
      assert.match(out, /trace endpoint/, out);
      assert.ok(endpoints.filter((e) => out.includes(e)).length >= 2, out);
    });

    // 3. metrics
    await r.test('metrics: sent and failed per signal', async () => {
      const m = await sp.metrics();
      const total = readSpans(dir).length;
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total', { component: 'file' }), total);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_profiles_total', { component: 'file' }), uploads(dir).length);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_failed_spans_total', { component: 'file' }), 0);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_failed_profiles_total', { component: 'file' }), 0);
      assert.ok(h.metricSum(m, 'spanprof_exporter_payload_bytes_total', { component: 'file', signal: 'traces' }) > 0);
    });
  } finally {
    exit = await sp.stop();
  }
  await r.test('SIGTERM: clean exit', async () => {
    assert.strictEqual(exit.code, 0, JSON.stringify(exit));
  });
  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
