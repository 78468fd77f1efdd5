// Every OTLP signal has a home: the real OpenTelemetry JS SDK exports
// traces, metrics and logs to spanprof over gRPC, HTTP/protobuf and
// HTTP/JSON. Every export must report SUCCESS. Metrics, logs and traces go
// on through the otlphttp exporter to a recording OTLP/HTTP endpoint:
//   - metrics and logs sent as protobuf (gRPC or HTTP) arrive byte-equal:
//     after removing otlphttp's gzip, the body is exactly the protobuf the
//     SDK's own serializer produced for that export (the bytes the SDK put
//     on the wire, before its gzip and gRPC framing);
//   - sent as OTLP/JSON they arrive re-encoded as protobuf; decoded, they
//     equal field by field the SDK's protobuf encoding of the same data;
//   - traces fan out to the same endpoint (span count and ids checked).
// Then a spanprof with no metrics and no logs pipeline: the SDK still sees
// SUCCESS, /metrics counts what was dropped per signal, and the log has
// exactly one warning per signal naming how to forward it.
'use strict';

const assert = require('node:assert');
const zlib = require('node:zlib');
const path = require('node:path');
const protobuf = require('protobufjs');
const h = require('./lib/harness');

const { ExportResultCode } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, SimpleLogRecordProcessor, InMemoryLogRecordExporter } = require('@opentelemetry/sdk-logs');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
const { ProtobufMetricsSerializer, ProtobufLogsSerializer } = require('@opentelemetry/otlp-transformer');
const api = require('@opentelemetry/api');

const MetricsGrpc = require('@opentelemetry/exporter-metrics-otlp-grpc').OTLPMetricExporter;
const MetricsProto = require('@opentelemetry/exporter-metrics-otlp-proto').OTLPMetricExporter;
const MetricsJson = require('@opentelemetry/exporter-metrics-otlp-http').OTLPMetricExporter;
const LogsGrpc = require('@opentelemetry/exporter-logs-otlp-grpc').OTLPLogExporter;
const LogsProto = require('@opentelemetry/exporter-logs-otlp-proto').OTLPLogExporter;
const LogsJson = require('@opentelemetry/exporter-logs-otlp-http').OTLPLogExporter;
const TraceGrpc = require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter;

class PullReader extends MetricReader {
  async onShutdown() {}
  async onForceFlush() {}
}

const resource = (tag) => resourceFromAttributes({ 'service.name': `signals-${tag}`, 'host.name': 'itest-host' });

// One collection of every instrument kind, with attributes of several types.
async function makeMetrics(tag) {
  const reader = new PullReader();
  const mp = new MeterProvider({ resource: resource(tag), readers: [reader] });
  const meter = mp.getMeter(`scope-${tag}`, '1.2.3');
  const counter = meter.createCounter('http.server.requests', { unit: '1', description: 'requests' });
  counter.add(3, { 'http.route': '/a', ok: true });
  counter.add(5, { 'http.route': '/b', ok: false });
  const hist = meter.createHistogram('http.server.duration', { unit: 'ms' });
  for (const v of [1.5, 20, 300, 4000]) hist.record(v, { 'http.route': '/a' });
  const up = meter.createUpDownCounter('queue.depth');
  up.add(-2, { q: 'x' });
  meter.createObservableGauge('cpu.ratio').addCallback((r) => r.observe(0.375, { core: 1 }));
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepStrictEqual(errors, [], 'metric collection errors');
  await mp.shutdown();
  let points = 0;
  for (const sm of resourceMetrics.scopeMetrics) for (const m of sm.metrics) points += m.dataPoints.length;
  return { rm: resourceMetrics, points };
}

function makeLogs(tag) {
  const mem = new InMemoryLogRecordExporter();
  const lp = new LoggerProvider({ resource: resource(tag), processors: [new SimpleLogRecordProcessor(mem)] });
  const logger = lp.getLogger(`scope-${tag}`, '1.0.0');
  const spanCtx = api.trace.setSpanContext(api.ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1,
  });
  logger.emit({ severityNumber: 9, severityText: 'INFO', body: `started ${tag}`, attributes: { n: 1, 'k.s': 'v' } });
  logger.emit({ severityNumber: 17, severityText: 'ERROR', body: { reason: 'disk full', free: 0 }, context: spanCtx, attributes: { pi: 3.25 } });
  logger.emit({ severityNumber: 13, body: 'héllo ✓', eventName: 'app.event' });
  return mem.getFinishedLogRecords().slice();
}

function makeSpans(tag) {
  const mem = new InMemorySpanExporter();
  const p = new BasicTracerProvider({ resource: resource(tag), spanProcessors: [new SimpleSpanProcessor(mem)] });
  const t = p.getTracer(`scope-${tag}`);
  const root = t.startSpan('GET /x', { kind: api.SpanKind.SERVER });
  t.startSpan('child', {}, api.trace.setSpan(api.ROOT_CONTEXT, root)).end();
  root.end();
  return mem.getFinishedSpans().slice();
}

const exportWith = (exp, data) => new Promise((resolve) => exp.export(data, resolve));

let root = null;
function otlpTypes() {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (origin, target) => path.join(h.SRC, 'proto', path.basename(target));
    root.loadSync(['otlp_metrics_service.proto', 'otlp_logs_service.proto', 'otlp_trace_service.proto']
      .map((f) => path.join(h.SRC, 'proto', f)), { keepCase: true });
  }
  return {
    metrics: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
    logs: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    traces: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
  };
}
const decode = (T, buf) => T.toObject(T.decode(buf), { longs: String, bytes: String, defaults: true, oneofs: true });

function body(rec) {
  assert.strictEqual(rec.headers['content-type'], 'application/x-protobuf', `${rec.url}: content-type`);
  assert.strictEqual(rec.headers['content-encoding'], 'gzip', `${rec.url}: content-encoding`);
  assert.strictEqual(rec.headers['x-forwarded-by'], 'spanprof-itest', `${rec.url}: configured header`);
  return zlib.gunzipSync(rec.body);
}

async function waitFor(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    if (fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await h.sleep(50);
  }
}

// spanprof with the OTLP receiver on both transports, the given exporters
// and pipelines (YAML lines, indented as under `exporters:` / `pipelines:`).
async function startOtlp(name, exporters, pipelines) {
  const [grpcPort, httpPort, healthPort, metricsPort] = [await h.freePort(), await h.freePort(), await h.freePort(), await h.freePort()];
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${grpcPort}}
      http: {endpoint: 127.0.0.1:${httpPort}}
exporters:
${exporters}
extensions:
  health_check: {endpoint: 127.0.0.1:${healthPort}}
service:
  extensions: [health_check]
  pipelines:
${pipelines}
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name });
  return { sp, grpcPort, httpPort };
}

async function withPipelines() {
  const intake = await h.startIntake({ respond: () => ({ status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: '' }) });
  const { sp, grpcPort, httpPort } = await startOtlp('signals', `  otlphttp:
    endpoint: ${intake.url}
    headers: {x-forwarded-by: spanprof-itest}
    retry_on_failure: {initial_interval: 100ms}`, `    traces: {receivers: [otlp], exporters: [otlphttp]}
    metrics: {receivers: [otlp], exporters: [otlphttp]}
    logs: {receivers: [otlp], exporters: [otlphttp]}`);
  const T = otlpTypes();
  try {
    const cases = [
      { tag: 'grpc', pb: true, m: () => new MetricsGrpc({ url: `http://127.0.0.1:${grpcPort}`, compression: 'gzip' }), l: () => new LogsGrpc({ url: `http://127.0.0.1:${grpcPort}` }) },
      { tag: 'proto', pb: true, m: () => new MetricsProto({ url: `http://127.0.0.1:${httpPort}/v1/metrics`, compression: 'gzip' }), l: () => new LogsProto({ url: `http://127.0.0.1:${httpPort}/v1/logs` }) },
      { tag: 'json', pb: false, m: () => new MetricsJson({ url: `http://127.0.0.1:${httpPort}/v1/metrics` }), l: () => new LogsJson({ url: `http://127.0.0.1:${httpPort}/v1/logs`, compression: 'gzip' }) },
    ];
    let points = 0;
    let records = 0;
    for (const c of cases) {
      // Metrics.
      const { rm, points: n } = await makeMetrics(c.tag);
      const want = Buffer.from(ProtobufMetricsSerializer.serializeRequest(rm));
      const before = intake.requests.length;
      const me = c.m();
      const r = await exportWith(me, rm);
      assert.strictEqual(r.code, ExportResultCode.SUCCESS, `${c.tag} metrics export: ${r.error && r.error.message}`);
      await me.shutdown();
      await waitFor(() => intake.requests.slice(before).some((q) => q.url === '/v1/metrics'), `${c.tag} metrics at the endpoint`);
      const got = body(intake.requests.slice(before).find((q) => q.url === '/v1/metrics'));
      if (c.pb) {
        assert.ok(got.equals(want), `${c.tag}: metrics body is not byte-equal to what the SDK sent (${got.length} vs ${want.length} bytes)`);
      } else {
        assert.deepStrictEqual(decode(T.metrics, got), decode(T.metrics, want), `${c.tag}: metrics differ field by field`);
      }
      points += n;
      console.log(`ok   ${c.tag}: ${n} metric points forwarded ${c.pb ? 'byte-equal' : 'equal field by field'}`);

      // Logs.
      const logs = makeLogs(c.tag);
      const wantLogs = Buffer.from(ProtobufLogsSerializer.serializeRequest(logs));
      const lb = intake.requests.length;
      const le = c.l();
      const lr = await exportWith(le, logs);
      assert.strictEqual(lr.code, ExportResultCode.SUCCESS, `${c.tag} logs export: ${lr.error && lr.error.message}`);
      await le.shutdown();
      await waitFor(() => intake.requests.slice(lb).some((q) => q.url === '/v1/logs'), `${c.tag} logs at the endpoint`);
      const gotLogs = body(intake.requests.slice(lb).find((q) => q.url === '/v1/logs'));
      if (c.pb) {
        assert.ok(gotLogs.equals(wantLogs), `${c.tag}: logs body is not byte-equal to what the SDK sent`);
      } else {
        assert.deepStrictEqual(decode(T.logs, gotLogs), decode(T.logs, wantLogs), `${c.tag}: logs differ field by field`);
      }
      const dl = decode(T.logs, gotLogs).resource_logs[0].scope_logs[0].log_records;
      assert.strictEqual(dl.length, 3, `${c.tag}: log records`);
      assert.strictEqual(Buffer.from(dl[1].trace_id, 'base64').toString('hex'), '0af7651916cd43dd8448eb211c80319c', `${c.tag}: log trace id`);
      records += logs.length;
      console.log(`ok   ${c.tag}: ${logs.length} log records forwarded ${c.pb ? 'byte-equal' : 'equal field by field'}`);
    }

    // Traces fan out through otlphttp too.
    const spans = makeSpans('traces');
    const tb = intake.requests.length;
    const te = new TraceGrpc({ url: `http://127.0.0.1:${grpcPort}` });
    const tr = await exportWith(te, spans);
    assert.strictEqual(tr.code, ExportResultCode.SUCCESS, `trace export: ${tr.error && tr.error.message}`);
    await te.shutdown();
    await waitFor(() => intake.requests.slice(tb).some((q) => q.url === '/v1/traces'), 'traces at the endpoint');
    const dt = decode(T.traces, body(intake.requests.slice(tb).find((q) => q.url === '/v1/traces')));
    const ids = dt.resource_spans.flatMap((rs) => rs.scope_spans.flatMap((ss) => ss.spans.map((s) => Buffer.from(s.span_id, 'base64').toString('hex')))).sort();
    assert.deepStrictEqual(ids, spans.map((s) => s.spanContext().spanId).sort(), 'forwarded span ids');
    console.log(`ok   ${spans.length} spans fanned out to the OTLP endpoint`);

    const m = await sp.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_metric_points_total'), points, 'accepted metric points');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_log_records_total'), records, 'accepted log records');
    assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_items_total', { signal: 'metrics' }), points, 'sent metric points');
    assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_items_total', { signal: 'logs' }), records, 'sent log records');
    assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_items_total', { signal: 'traces' }), spans.length, 'sent spans');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_no_pipeline_items_total'), 0, 'nothing dropped');
    console.log(`ok   metrics: ${points} points and ${records} log records accepted and sent`);
    const st = await sp.stop();
    assert.strictEqual(st.code, 0, `spanprof exit: ${JSON.stringify(st)}\n${sp.log()}`);
  } catch (e) {
    console.log(sp.log());
    throw e;
  } finally {
    sp.kill();
    await intake.close();
  }
}

async function withoutPipelines() {
  const dir = h.tmpDir('signals-drop');
  const { sp, grpcPort, httpPort } = await startOtlp('signals-drop', `  debug: {path: ${dir}/out.jsonl}`,
    '    traces: {receivers: [otlp], exporters: [debug]}');
  try {
    let points = 0;
    let records = 0;
    for (const [tag, me, le] of [
      ['grpc', new MetricsGrpc({ url: `http://127.0.0.1:${grpcPort}` }), new LogsGrpc({ url: `http://127.0.0.1:${grpcPort}` })],
      ['proto', new MetricsProto({ url: `http://127.0.0.1:${httpPort}/v1/metrics` }), new LogsProto({ url: `http://127.0.0.1:${httpPort}/v1/logs` })],
      ['json', new MetricsJson({ url: `http://127.0.0.1:${httpPort}/v1/metrics` }), new LogsJson({ url: `http://127.0.0.1:${httpPort}/v1/logs` })],
    ]) {
      const { rm, points: n } = await makeMetrics(`drop-${tag}`);
      const r = await exportWith(me, rm);
      assert.strictEqual(r.code, ExportResultCode.SUCCESS, `${tag}: metrics export without a pipeline: ${r.error && r.error.message}`);
      const logs = makeLogs(`drop-${tag}`);
      const lr = await exportWith(le, logs);
      assert.strictEqual(lr.code, ExportResultCode.SUCCESS, `${tag}: logs export without a pipeline: ${lr.error && lr.error.message}`);
      await me.shutdown();
      await le.shutdown();
      points += n;
      records += logs.length;
    }
    const m = await sp.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_no_pipeline_items_total', { signal: 'metrics' }), points, 'dropped metric points counted');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_no_pipeline_items_total', { signal: 'logs' }), records, 'dropped log records counted');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_requests_total', { outcome: 'success' }), 6, 'every request answered success');
    const log = sp.log();
    for (const sig of ['metrics', 'logs']) {
      const lines = log.split('\n').filter((l) => l.includes(`no ${sig} pipeline uses this receiver`));
      assert.strictEqual(lines.length, 1, `one warning for ${sig}:\n${log}`);
      assert.match(lines[0], /level=warn/);
      assert.ok(lines[0].includes('otlphttp') && lines[0].includes(`OTEL_EXPORTER_OTLP_${sig.toUpperCase()}_ENDPOINT`), `the ${sig} warning says how to forward: ${lines[0]}`);
    }
    assert.ok(/OTLP\/gRPC listening on 127\.0\.0\.1:\d+ \(traces to a pipeline, metrics dropped, logs dropped\)/.test(log), `start-up line says what is dropped:\n${log}`);
    console.log(`ok   without pipelines: SDK saw success, ${points} metric points and ${records} log records counted as dropped, one warning each`);
    const st = await sp.stop();
    assert.strictEqual(st.code, 0, `spanprof exit: ${JSON.stringify(st)}`);
  } finally {
    sp.kill();
  }
}

// otlphttp's delivery: transient failures retried (Retry-After honoured),
// permanent ones counted and logged, a full queue refused back to the
// client (HTTP 429), and accepted = sent + failed + dropped at the end.
async function delivery() {
  let mode = 'flaky';
  let flaky = 0;
  const held = [];
  const intake = await h.startIntake({
    respond: (rec) => {
      if (mode === 'flaky' && flaky++ < 2) return { status: 503, headers: { 'retry-after': '0' }, body: 'busy' };
      if (mode === 'bad') return { status: 400, body: 'bad payload: missing resource' };
      if (mode === 'hang') return new Promise((res) => held.push(() => res({ status: 200, body: '' })));
      return { status: 200, body: '' };
    },
  });
  const { sp, httpPort } = await startOtlp('signals-delivery', `  otlphttp:
    endpoint: ${intake.url}
    compression: none
    retry_on_failure: {initial_interval: 50ms, max_interval: 100ms}
    sending_queue: {num_consumers: 1, queue_size: 1}`, '    logs: {receivers: [otlp], exporters: [otlphttp]}');
  const logs = makeLogs('delivery');
  const body = Buffer.from(ProtobufLogsSerializer.serializeRequest(logs));
  const post = () => h.httpRequest(`http://127.0.0.1:${httpPort}/v1/logs`, { headers: { 'content-type': 'application/x-protobuf' }, body });
  const metric = async (name, labels) => h.metricSum(await sp.metrics(), name, labels);
  try {
    // Two 503s, then delivered.
    assert.strictEqual((await post()).status, 200);
    await waitFor(() => intake.requests.length >= 3, 'the retried request');
    await h.sleep(100);
    assert.strictEqual(await metric('spanprof_exporter_sent_items_total', { signal: 'logs' }), 3, 'delivered after retries');
    assert.strictEqual(await metric('spanprof_exporter_retries_total', { signal: 'logs' }), 2, 'retries counted');
    assert.ok(intake.requests[2].body.equals(body), 'the retried body is the request as sent (no compression)');
    assert.strictEqual(intake.requests[2].headers['content-encoding'], undefined);
    console.log('ok   delivery: 503 twice (Retry-After: 0), delivered on the third attempt, retries counted');

    // A permanent refusal: counted, logged with the endpoint's answer.
    mode = 'bad';
    assert.strictEqual((await post()).status, 200);
    await waitFor(() => intake.requests.length >= 4, 'the refused request');
    await h.sleep(100);
    assert.strictEqual(await metric('spanprof_exporter_failed_items_total', { signal: 'logs' }), 3, 'failed log records');
    assert.match(sp.log(), /logs export to http:\/\/127\.0\.0\.1:\d+\/v1\/logs failed for good \(HTTP 400: bad payload: missing resource\): 3 log records lost/);
    console.log('ok   delivery: HTTP 400 is permanent: counted as failed and logged with the answer');

    // The endpoint hangs: one request in flight, one queued, the next refused (429).
    mode = 'hang';
    assert.strictEqual((await post()).status, 200);
    await waitFor(() => held.length === 1, 'the held request');
    assert.strictEqual((await post()).status, 200, 'queued');
    const full = await post();
    assert.strictEqual(full.status, 429, 'a full sending queue is refused back to the client');
    assert.ok(full.headers['retry-after'], 'with Retry-After');
    // Refused from the headers alone (the exporter's ready()): never decoded,
    // so counted as a request refused unread, not as refused log records.
    assert.strictEqual(await metric('spanprof_receiver_refused_unread_requests_total', { transport: 'http' }), 1);
    assert.strictEqual(await metric('spanprof_exporter_refused_items_total', { signal: 'logs' }), 0);
    mode = 'ok';
    held.splice(0).forEach((f) => f());
    await waitFor(() => intake.requests.length >= 6, 'the queued request');
    await h.sleep(100);
    const m = await sp.metrics();
    const accepted = h.metricSum(m, 'spanprof_receiver_accepted_log_records_total');
    const sent = h.metricSum(m, 'spanprof_exporter_sent_items_total', { signal: 'logs' });
    const failed = h.metricSum(m, 'spanprof_exporter_failed_items_total', { signal: 'logs' });
    assert.strictEqual(accepted, 12, 'accepted log records');
    assert.strictEqual(sent + failed, accepted, `accepted ${accepted} = sent ${sent} + failed ${failed}`);
    console.log('ok   delivery: full queue answered 429 with Retry-After; accepted = sent + failed');
    const st = await sp.stop();
    assert.strictEqual(st.code, 0);
  } catch (e) {
    console.log(sp.log());
    throw e;
  } finally {
    sp.kill();
    held.splice(0).forEach((f) => f());
    await intake.close();
  }
}

(async () => {
  await withPipelines();
  await withoutPipelines();
  await delivery();
  console.log('otlp_signals: all checks passed');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
