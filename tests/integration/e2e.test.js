// End to end: the real spanprof binary with every pipeline, a recording
// Datadog intake, and real clients:
//   - the OpenTelemetry JS SDK exporting over gRPC, HTTP/protobuf, HTTP/JSON;
//   - the Go demo service (examples/demo-service) twice: one instance
//     scraped through /debug/pprof, one pushing its CPU profiles to /v1/pprof;
//     both export their spans over OTLP and label goroutines with span_id;
//   - a Node app with the real dd-trace profiler uploading to spanprof as
//     its Agent.
// Asserts: every span sent reaches the intake exactly once; >= 99 % of the
// span-labelled CPU samples of the uploaded Go profiles carry the right
// `trace endpoint`, per-endpoint shares are within 10 points of the designed
// weights; trace resources equal the endpoint labels; endpoint_counts are
// present; SIGTERM flushes the profiles the join still held.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const h = require('./lib/harness');

const api = require('@opentelemetry/api');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const GrpcExporter = require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter;
const ProtoExporter = require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter;
const JsonExporter = require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter;

const DESIGNED = { 'GET /api/users/{id}': 0.6, 'GET /api/orders': 0.3, 'GET /healthz': 0.1 };
const LOAD_SECONDS = 20;

function sdkSpans(service, traces) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment.name': 'e2e' }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('e2e');
  for (let i = 0; i < traces; i++) {
    const root = tracer.startSpan('GET /api/cart/{id}', {
      kind: api.SpanKind.SERVER,
      attributes: { 'http.request.method': 'GET', 'http.route': '/api/cart/{id}', 'http.response.status_code': 200 },
    });
    const ctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    tracer.startSpan('load cart', { kind: api.SpanKind.INTERNAL }, ctx).end();
    tracer.startSpan('SELECT', { kind: api.SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.statement': 'SELECT 1' } }, ctx).end();
    root.end();
  }
  const spans = mem.getFinishedSpans().slice();
  provider.shutdown();
  return spans;
}

function exportSpans(exporter, spans) {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

function hexToDec(hex) {
  return BigInt(`0x${hex}`).toString();
}

const { startProcess } = h;

test('spanprof end to end with real clients', { timeout: 300000 }, async (t) => {
  const work = h.tmpDir('e2e');
  const demoBin = path.join(h.BUILD, 'e2e', 'demo-service');
  execFileSync('bash', [path.join(h.SRC, 'examples/demo-service/build.sh'), demoBin], { stdio: 'inherit' });

  const intake = await h.startIntake();
  t.after(() => intake.close());
  const [grpcPort, httpPort, pprofPort, healthPort, metricsPort, appPort] = await Promise.all(
    Array.from({ length: 6 }, () => h.freePort()));

  const yaml = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${grpcPort} }
      http: { endpoint: 127.0.0.1:${httpPort} }
  pprof:
    endpoint: 127.0.0.1:${pprofPort}
    scrape:
      - targets: [127.0.0.1:${appPort}]
        service: demo-scrape
        profiles: [cpu]
        interval: 5s
        cpu_duration: 4s
        timeout: 10s
processors:
  join:
    join_delay: 4s
exporters:
  datadog:
    api: { key: "e2e-secret-api-key-0042" }
    traces: { endpoint: ${intake.url} }
    profiles: { endpoint: ${intake.url} }
    retry_on_failure: { initial_interval: 200ms, max_interval: 1s }
extensions:
  health_check: { endpoint: 127.0.0.1:${healthPort} }
service:
  extensions: [health_check]
  pipelines:
    traces: { receivers: [otlp], processors: [join], exporters: [datadog] }
    profiles: { receivers: [pprof], processors: [join], exporters: [datadog] }
  telemetry:
    metrics: { address: 127.0.0.1:${metricsPort} }
  shutdown_timeout: 15s
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'e2e' });
  t.after(() => sp.kill());

  // The two Go demo instances run their own load for LOAD_SECONDS.
  const truthScrape = path.join(work, 'truth-scrape.json');
  const truthPush = path.join(work, 'truth-push.json');
  const scraped = startProcess(demoBin, ['-listen', `127.0.0.1:${appPort}`, '-service', 'demo-scrape',
    '-otlp-endpoint', `http://127.0.0.1:${httpPort}`, '-load', `${LOAD_SECONDS}s`, '-load-rps', '40',
    '-truth', truthScrape], {}, path.join(work, 'demo-scrape.log'));
  const pushed = startProcess(demoBin, ['-listen', '127.0.0.1:0', '-service', 'demo-push',
    '-otlp-endpoint', `http://127.0.0.1:${httpPort}`, '-load', `${LOAD_SECONDS}s`, '-load-rps', '40',
    '-push-url', `http://127.0.0.1:${pprofPort}/v1/pprof`, '-push-period', '5s',
    '-truth', truthPush], {}, path.join(work, 'demo-push.log'));
  t.after(() => { scraped.child.kill('SIGKILL'); pushed.child.kill('SIGKILL'); });

  // dd-trace profiler, uploading to spanprof as its agent.
  const ddApp = startProcess(process.execPath, [path.join(__dirname, 'e2e/dd_app.js')], {
    DD_TRACE_AGENT_URL: `http://127.0.0.1:${pprofPort}`,
    DD_PROFILING_ENABLED: 'true',
    DD_PROFILING_UPLOAD_PERIOD: '4',
    DD_SERVICE: 'e2e-dd-node',
    DD_TRACE_STARTUP_LOGS: 'false',
    DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
    NODE_PATH: path.join(__dirname, 'node_modules'),
    APP_SECONDS: '9',
  }, path.join(work, 'dd-app.log'));
  t.after(() => ddApp.child.kill('SIGKILL'));

  // OpenTelemetry JS SDK over the three OTLP transports.
  const sent = new Map(); // span id hex -> transport
  const transports = [
    ['grpc', new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}` })],
    ['http-proto', new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces`, compression: 'gzip' })],
    ['http-json', new JsonExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces` })],
  ];
  for (const [name, exporter] of transports) {
    const spans = sdkSpans(`e2e-sdk-${name}`, 20);
    const r = await exportSpans(exporter, spans);
    assert.strictEqual(r.code, 0, `${name} export failed: ${r.error}`);
    for (const s of spans) sent.set(s.spanContext().spanId, name);
    await exporter.shutdown();
  }

  const [scrapeExit, pushExit, ddExit] = await Promise.all([scraped.exited, pushed.exited, ddApp.exited]);
  assert.strictEqual(scrapeExit.code, 0, `demo-scrape failed:\n${scraped.log()}`);
  assert.strictEqual(pushExit.code, 0, `demo-push failed:\n${pushed.log()}`);
  assert.strictEqual(ddExit.code, 0, `dd-trace app failed:\n${ddApp.log()}`);

  // SIGTERM right away: profiles still held by the join (join_delay 4s)
  // must be joined and uploaded, and the exporter's queue drained.
  const before = await sp.metrics();
  const acceptedProfiles = h.metricSum(before, 'spanprof_receiver_accepted_profiles_total');
  const exit = await sp.stop(30000);
  assert.strictEqual(exit.code, 0, `spanprof exit ${JSON.stringify(exit)}:\n${sp.log()}`);

  // ---- traces: every span exactly once ----
  const seen = new Map(); // dd span id (decimal) -> span
  for (const rec of intake.requests.filter((r) => r.url === '/api/v0.2/traces')) {
    assert.strictEqual(rec.headers['dd-api-key'], 'e2e-secret-api-key-0042');
    const payload = h.decodeTraceRequest(rec);
    for (const tp of payload.tracerPayloads) {
      for (const chunk of tp.chunks) {
        for (const s of chunk.spans) {
          const id = String(s.spanID);
          assert.ok(!seen.has(id), `span ${id} (${s.service} ${s.resource}) delivered twice`);
          seen.set(id, s);
        }
      }
    }
  }
  for (const [hex, transport] of sent) {
    const s = seen.get(hexToDec(hex));
    assert.ok(s, `SDK span ${hex} sent over ${transport} never reached the intake`);
    assert.strictEqual(s.service, `e2e-sdk-${transport}`);
  }
  const truths = [truthScrape, truthPush].map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  for (const truth of truths) {
    let exported = 0;
    for (const [hex, info] of Object.entries(truth.spans)) {
      if (!info.exported) continue;
      exported++;
      const s = seen.get(hexToDec(hex));
      assert.ok(s, `${truth.service} span ${hex} (${info.name}) never reached the intake`);
      if (info.local_root === hex) {
        // Trace resources equal the endpoint the join labels with.
        assert.strictEqual(s.resource, info.endpoint, `resource of local root ${hex}`);
      }
    }
    assert.ok(exported > 100, `${truth.service}: only ${exported} spans exported`);
  }

  // ---- profiles ----
  const uploads = intake.requests.filter((r) => r.url === '/api/v2/profile').map((rec) => {
    const parts = h.parseMultipart(rec.body, rec.headers['content-type']);
    const event = JSON.parse(parts.find((p) => p.name === 'event').data.toString());
    return { rec, parts, event };
  });
  assert.strictEqual(uploads.length, acceptedProfiles,
    `uploads at the intake (${uploads.length}) != profiles spanprof accepted (${acceptedProfiles}): SIGTERM must flush held profiles`);
  const service = (u) => (u.event.tags_profiler || '').split(',').find((x) => x.startsWith('service:'))?.slice(8);

  for (const truth of truths) {
    const mine = uploads.filter((u) => service(u) === truth.service);
    assert.ok(mine.length >= 2, `${truth.service}: ${mine.length} profile uploads`);
    const cpuByEndpoint = {};
    let labelled = 0;
    let right = 0;
    for (const u of mine) {
      assert.ok(u.event.endpoint_counts && Object.keys(u.event.endpoint_counts).length > 0,
        `${truth.service}: event.json without endpoint_counts: ${JSON.stringify(u.event)}`);
      const cpuPart = u.parts.find((p) => /cpu/.test(p.filename || p.name));
      assert.ok(cpuPart, `${truth.service}: no cpu part in ${u.parts.map((p) => p.filename)}`);
      const prof = h.decodePprof(cpuPart.data);
      const cpuIdx = prof.sampleTypes.indexOf('cpu/nanoseconds');
      for (const s of prof.samples) {
        const sid = s.labels.span_id;
        if (!sid || !truth.spans[sid]) continue;
        labelled++;
        const want = truth.spans[sid].endpoint;
        if (s.labels['trace endpoint'] === want) right++;
        assert.strictEqual(s.labels['span id'], hexToDec(sid));
        assert.strictEqual(s.labels['local root span id'], hexToDec(truth.spans[sid].local_root));
        cpuByEndpoint[want] = (cpuByEndpoint[want] || 0) + s.values[cpuIdx];
      }
    }
    assert.ok(labelled > 50, `${truth.service}: only ${labelled} span-labelled samples`);
    const ratio = right / labelled;
    const total = Object.values(cpuByEndpoint).reduce((a, b) => a + b, 0);
    const shares = Object.fromEntries(Object.entries(cpuByEndpoint).map(([k, v]) => [k, v / total]));
    console.log(`${truth.service}: ${uploads.filter((u) => service(u) === truth.service).length} uploads, ` +
      `${labelled} span-labelled samples, ${(100 * ratio).toFixed(2)} % with the right endpoint; shares ` +
      Object.entries(shares).map(([k, v]) => `${k} ${(100 * v).toFixed(1)} %`).join(', '));
    assert.ok(ratio >= 0.99, `${truth.service}: ${(100 * ratio).toFixed(2)} % right endpoints`);
    for (const [ep, want] of Object.entries(DESIGNED)) {
      const got = shares[ep] || 0;
      assert.ok(Math.abs(got - want) <= 0.10, `${truth.service}: ${ep} share ${got.toFixed(3)} vs designed ${want}`);
    }
  }

  // dd-trace's own upload went through with its attachments and tags.
  const dd = uploads.filter((u) => service(u) === 'e2e-dd-node');
  assert.ok(dd.length >= 1, `no dd-trace upload reached the intake (services: ${uploads.map(service)})`);
  const ddParts = dd[0].parts.map((p) => p.filename || p.name);
  assert.ok(ddParts.some((n) => /wall/.test(n)), `dd-trace attachments: ${ddParts}`);
  assert.match(dd[0].event.tags_profiler, /env:e2e/);
  assert.match(dd[0].event.tags_profiler, /runtime-id:/);
  assert.strictEqual(dd[0].event.family, 'node');

  // No secret in spanprof's log.
  assert.ok(!sp.log().includes('e2e-secret-api-key-0042'), 'the API key appears in the log');
});
