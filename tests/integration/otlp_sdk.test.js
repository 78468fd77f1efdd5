// OTLP receiver with the real OpenTelemetry JS exporters: gRPC, HTTP/protobuf
// and HTTP/JSON, each with gzip on and off, export spans to a running
// spanprof. Every export must report SUCCESS, /metrics must count exactly
// the spans sent (per transport), and every span must reach the next stage
// (the `debug` exporter's JSON lines) intact: ids, parent, name, kind,
// flags, times, attributes, resource, scope, status, events, links.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const api = require('@opentelemetry/api');
const { ExportResultCode } = require('@opentelemetry/core');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const GrpcExporter = require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter;
const ProtoExporter = require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter;
const JsonExporter = require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter;

const K = api.SpanKind;

// A realistic set of spans: per trace a SERVER root (remote parent for
// every third), an INTERNAL child with an event, a CLIENT child with a link
// and, for failing traces, an exception event and ERROR status; attribute
// values of every type.
function makeSpans(tag, traces) {
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `otlp-sdk-${tag}`, 'service.version': '2.0.1', 'host.name': 'itest-host' }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer(`scope-${tag}`, '1.0.0');
  for (let i = 0; i < traces; i++) {
    let parent = api.ROOT_CONTEXT;
    if (i % 3 === 2) {
      parent = api.trace.setSpanContext(api.ROOT_CONTEXT, {
        traceId: `${(i + 1).toString(16).padStart(16, '0')}abcdef0123456789`,
        spanId: 'a1a2a3a4a5a6a7a8', traceFlags: 1, isRemote: true,
      });
    }
    const root = tracer.startSpan(`GET /api/items/{id}`, {
      kind: K.SERVER,
      attributes: {
        'http.request.method': 'GET', 'http.route': '/api/items/{id}', 'url.path': `/api/items/${i}`,
        'http.response.status_code': i % 4 === 1 ? 500 : 200, 'app.ratio': 0.25 + i,
        'app.cached': i % 2 === 0, 'app.tags': ['a', `b${i}`], 'app.sizes': [1, 2, 3],
        'app.big': 9007199254740991, 'app.utf8': 'héllo wörld ✓',
      },
    }, parent);
    const rctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    const inner = tracer.startSpan('validate request', { kind: K.INTERNAL, attributes: { 'app.step': 'validate' } }, rctx);
    inner.addEvent('validated', { 'app.fields': 7, 'app.ok': true });
    inner.end();
    const cl = tracer.startSpan('GET', {
      kind: K.CLIENT,
      attributes: { 'http.request.method': 'GET', 'server.address': 'inventory', 'server.port': 8080 },
      links: [{ context: inner.spanContext(), attributes: { 'link.reason': 'follows' } }],
    }, rctx);
    if (i % 4 === 1) {
      cl.recordException(Object.assign(new Error('inventory down'), { name: 'FetchError' }));
      cl.setStatus({ code: api.SpanStatusCode.ERROR, message: 'inventory down' });
      root.setStatus({ code: api.SpanStatusCode.ERROR });
    } else {
      cl.setStatus({ code: api.SpanStatusCode.OK });
    }
    cl.end();
    const producer = tracer.startSpan('publish', { kind: K.PRODUCER }, rctx);
    producer.end();
    root.end();
  }
  const spans = mem.getFinishedSpans().slice();
  provider.shutdown();
  return spans;
}

function exportWith(exporter, spans) {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

const hrNs = (t) => (BigInt(t[0]) * 1000000000n + BigInt(t[1])).toString();

function attrEqual(got, want, what) {
  assert.deepStrictEqual(got, want, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// One SDK span against its debug exporter line.
function checkSpan(s, line, service, scope) {
  const ctx = s.spanContext();
  const what = `span ${ctx.spanId} '${s.name}'`;
  assert.strictEqual(line.trace_id, ctx.traceId, `${what}: trace_id`);
  assert.strictEqual(line.span_id, ctx.spanId, `${what}: span_id`);
  assert.strictEqual(line.parent_span_id, s.parentSpanContext ? s.parentSpanContext.spanId : '', `${what}: parent`);
  assert.strictEqual(line.name, s.name, `${what}: name`);
  assert.strictEqual(line.kind, s.kind + 1, `${what}: kind`); // API kinds are OTLP's minus one
  const remote = s.parentSpanContext && s.parentSpanContext.isRemote;
  assert.strictEqual(line.flags, remote ? 0x301 : 0x101, `${what}: flags`);
  assert.strictEqual(line.start, hrNs(s.startTime), `${what}: start`);
  assert.strictEqual(line.end, hrNs(s.endTime), `${what}: end`);
  assert.strictEqual(line.status.code, s.status.code, `${what}: status code`);
  assert.strictEqual(line.status.message, s.status.message || '', `${what}: status message`);
  assert.strictEqual(line.resource['service.name'], service, `${what}: resource`);
  assert.strictEqual(line.resource['host.name'], 'itest-host', `${what}: resource host`);
  assert.strictEqual(line.scope, scope, `${what}: scope`);
  attrEqual(line.attributes, s.attributes, `${what}: attributes`);
  assert.strictEqual(line.events.length, s.events.length, `${what}: events`);
  s.events.forEach((e, i) => {
    assert.strictEqual(line.events[i].name, e.name, `${what}: event ${i} name`);
    assert.strictEqual(line.events[i].time, hrNs(e.time), `${what}: event ${i} time`);
    attrEqual(line.events[i].attributes, e.attributes || {}, `${what}: event ${i} attributes`);
  });
  assert.strictEqual(line.links.length, s.links.length, `${what}: links`);
  s.links.forEach((l, i) => {
    assert.strictEqual(line.links[i].trace_id, l.context.traceId, `${what}: link ${i} trace`);
    assert.strictEqual(line.links[i].span_id, l.context.spanId, `${what}: link ${i} span`);
    attrEqual(line.links[i].attributes, l.attributes || {}, `${what}: link ${i} attributes`);
  });
}

async function main() {
  const [grpcPort, httpPort, healthPort, metricsPort] = [await h.freePort(), await h.freePort(), await h.freePort(), await h.freePort()];
  const dir = h.tmpDir('otlp-sdk');
  const out = path.join(dir, 'spans.jsonl');
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpcPort}
      http:
        endpoint: 127.0.0.1:${httpPort}
exporters:
  debug:
    path: ${out}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'otlp-sdk' });
  try {
    const cases = [
      { tag: 'grpc', transport: 'grpc', make: (c) => new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}`, compression: c }) },
      { tag: 'proto', transport: 'http', make: (c) => new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces`, compression: c }) },
      { tag: 'json', transport: 'http', make: (c) => new JsonExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces`, compression: c }) },
    ];
    const sent = new Map(); // span id -> {span, service, scope}
    const perTransport = { grpc: 0, http: 0 };
    let traces = 5;
    for (const c of cases) {
      for (const compression of ['none', 'gzip']) {
        const tag = `${c.tag}-${compression}`;
        const spans = makeSpans(tag, traces++);
        const exporter = c.make(compression);
        // Two exports per exporter: the second reuses the connection.
        const half = Math.floor(spans.length / 2);
        for (const part of [spans.slice(0, half), spans.slice(half)]) {
          const r = await exportWith(exporter, part);
          assert.strictEqual(r.code, ExportResultCode.SUCCESS, `${tag}: export failed: ${r.error && r.error.message}`);
        }
        await exporter.shutdown();
        for (const s of spans) sent.set(s.spanContext().spanId, { span: s, service: `otlp-sdk-${tag}`, scope: `scope-${tag}` });
        perTransport[c.transport] += spans.length;
        console.log(`ok   ${tag}: ${spans.length} spans exported`);
      }
    }
    const m = await sp.metrics();
    const accepted = (t) => h.metricSum(m, 'spanprof_receiver_accepted_spans_total', { transport: t });
    assert.strictEqual(accepted('grpc'), perTransport.grpc, 'accepted spans over gRPC');
    assert.strictEqual(accepted('http'), perTransport.http, 'accepted spans over HTTP');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_spans_total'), sent.size, 'accepted spans in total');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_spans_total'), 0, 'refused spans');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'grpc', outcome: 'success' }), 4, 'gRPC requests');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'http', outcome: 'success' }), 8, 'HTTP requests');
    assert.ok(h.metricSum(m, 'spanprof_receiver_received_bytes_total', { transport: 'grpc' }) > 0, 'gRPC bytes');
    console.log(`ok   metrics: ${sent.size} spans accepted (grpc ${perTransport.grpc}, http ${perTransport.http})`);

    const stopped = await sp.stop();
    assert.strictEqual(stopped.code, 0, `spanprof exit: ${JSON.stringify(stopped)}\n${sp.log()}`);
    const lines = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const traceLines = lines.filter((l) => l.signal === 'traces');
    assert.strictEqual(traceLines.length, sent.size, 'spans at the debug exporter');
    const seen = new Set();
    for (const line of traceLines) {
      const e = sent.get(line.span_id);
      assert.ok(e, `unexpected span ${line.span_id} at the exporter`);
      assert.ok(!seen.has(line.span_id), `span ${line.span_id} arrived twice`);
      seen.add(line.span_id);
      checkSpan(e.span, line, e.service, e.scope);
    }
    console.log(`ok   ${seen.size} spans intact at the debug exporter`);
  } finally {
    sp.kill();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
