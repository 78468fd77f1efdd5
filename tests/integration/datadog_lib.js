// Helpers of the datadog exporter's integration tests: a tiny msgpack
// decoder (for /v0.4/traces bodies), real OpenTelemetry JS SDK spans with
// their expected Datadog fields and spanprof configs.
'use strict';

const assert = require('node:assert');
const h = require('./lib/harness');

// ---- msgpack (the subset /v0.4/traces uses, plus the rest of the scalars) ----
function msgpackDecode(buf) {
  let p = 0;
  const u8 = () => buf[p++];
  const str = (n) => { const s = buf.toString('utf8', p, p + n); p += n; return s; };
  const bin = (n) => { const b = buf.subarray(p, p + n); p += n; return b; };
  const arr = (n) => { const a = []; for (let i = 0; i < n; i++) a.push(val()); return a; };
  const map = (n) => { const o = {}; for (let i = 0; i < n; i++) { const k = val(); o[k] = val(); } return o; };
  function val() {
    if (p >= buf.length) throw new Error(`msgpack: truncated at ${p}`);
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    let v;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: v = buf.readUInt16BE(p); p += 2; return bin(v);
      case 0xc6: v = buf.readUInt32BE(p); p += 4; return bin(v);
      case 0xca: v = buf.readFloatBE(p); p += 4; return v;
      case 0xcb: v = buf.readDoubleBE(p); p += 8; return v;
      case 0xcc: return u8();
      case 0xcd: v = buf.readUInt16BE(p); p += 2; return v;
      case 0xce: v = buf.readUInt32BE(p); p += 4; return v;
      case 0xcf: v = buf.readBigUInt64BE(p); p += 8; return v;
      case 0xd0: v = buf.readInt8(p); p += 1; return v;
      case 0xd1: v = buf.readInt16BE(p); p += 2; return v;
      case 0xd2: v = buf.readInt32BE(p); p += 4; return v;
      case 0xd3: v = buf.readBigInt64BE(p); p += 8; return v;
      case 0xd9: return str(u8());
      case 0xda: v = buf.readUInt16BE(p); p += 2; return str(v);
      case 0xdb: v = buf.readUInt32BE(p); p += 4; return str(v);
      case 0xdc: v = buf.readUInt16BE(p); p += 2; return arr(v);
      case 0xdd: v = buf.readUInt32BE(p); p += 4; return arr(v);
      case 0xde: v = buf.readUInt16BE(p); p += 2; return map(v);
      case 0xdf: v = buf.readUInt32BE(p); p += 4; return map(v);
      default: throw new Error(`msgpack: unsupported byte 0x${b.toString(16)} at ${p - 1}`);
    }
  }
  const out = val();
  if (p !== buf.length) throw new Error(`msgpack: ${buf.length - p} trailing bytes`);
  return out;
}

async function ports(n) {
  const out = [];
  while (out.length < n) {
    const p = await h.freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

const KEY = 'a1b2c3d4e5f60718293a4b5c6d7e9f3c';

// scrape: YAML lines (4-space indent) added under receivers.pprof, e.g. a
// `scrape:` list; joinDelay: the join's hold when join is on.
function config({ otlpPort, healthPort, metricsPort, pprofPort, intake, agent = false, extra = '', shutdown = '10s', join = false, joinDelay = '1s', scrape = '', timeout = '2s', retry = '{initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 60s}' }) {
  const dd = agent
    ? `agent: {endpoint: "${intake}"}`
    : `api: {key: "  ${KEY}  "}\n    traces: {endpoint: "${intake}"}\n    profiles: {endpoint: "${intake}"}`;
  const recv = pprofPort ? `\n  pprof:\n    endpoint: 127.0.0.1:${pprofPort}${scrape ? `\n${scrape}` : ''}` : '';
  const procs = join ? `\nprocessors:\n  join:\n    join_delay: ${joinDelay}\n` : '';
  const pj = join ? '\n      processors: [join]' : '';
  const profiles = pprofPort
    ? `\n    profiles:\n      receivers: [pprof]${pj}\n      exporters: [datadog]`
    : '';
  return `
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlpPort}${recv}
${procs}
exporters:
  datadog:
    ${dd}
    env: itest
    timeout: ${timeout}
    retry_on_failure: ${retry}
${extra}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  shutdown_timeout: ${shutdown}
  pipelines:
    traces:
      receivers: [otlp]${pj}
      exporters: [datadog]${profiles}
  telemetry:
    logs: {level: debug}
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
}

// ---- real OTel SDK spans ----
// Sends a small realistic set of traces over OTLP/HTTP protobuf and returns
// the SDK's own finished spans (ids, kinds, attributes) for expectations.
async function sendSdkSpans(otlpPort, service = 'dd-itest') {
  const api = require('@opentelemetry/api');
  const { BasicTracerProvider, SimpleSpanProcessor, BatchSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
  const mem = new InMemorySpanExporter();
  const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${otlpPort}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.2.3', 'deployment.environment.name': 'itest', 'telemetry.sdk.language': 'nodejs' }),
    spanProcessors: [new SimpleSpanProcessor(mem), new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, scheduledDelayMillis: 60000 })],
  });
  const tracer = provider.getTracer('itest-scope', '0.0.1');
  const K = api.SpanKind;
  const web = (name, ctx, attrs) => tracer.startSpan(name, { kind: K.SERVER, attributes: attrs }, ctx);
  for (let i = 0; i < 3; i++) {
    const id = 40 + i;
    let parentCtx = api.ROOT_CONTEXT;
    if (i === 2) {
      parentCtx = api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: 'f'.repeat(16) + '0123456789abcdef', spanId: '1122334455667788', traceFlags: 1, isRemote: true });
    }
    const root = web(`GET /api/users/:id`, parentCtx, { 'http.request.method': 'GET', 'http.route': '/api/users/{id}', 'url.path': `/api/users/${id}`, 'http.response.status_code': i === 1 ? 500 : 200 });
    const rctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    const inner = tracer.startSpan('validate request', { kind: K.INTERNAL }, rctx);
    inner.end();
    const db = tracer.startSpan('SELECT users', { kind: K.CLIENT, attributes: { 'db.system': 'postgresql', 'db.statement': 'SELECT * FROM users WHERE id = $1' } }, rctx);
    db.end();
    const cl = tracer.startSpan('GET', { kind: K.CLIENT, attributes: { 'http.request.method': 'GET', 'url.full': 'http://inventory:8080/stock', 'server.address': 'inventory' } }, rctx);
    if (i === 1) {
      cl.recordException(Object.assign(new Error('inventory down'), { name: 'FetchError' }));
      cl.setStatus({ code: api.SpanStatusCode.ERROR, message: 'inventory down' });
      root.setStatus({ code: api.SpanStatusCode.ERROR });
    }
    cl.end();
    root.end();
  }
  await provider.forceFlush();
  const spans = mem.getFinishedSpans().slice();
  await provider.shutdown();
  return spans;
}

const low64 = (traceId) => BigInt('0x' + traceId.slice(16)).toString();
const dec = (hex) => (hex ? BigInt('0x' + hex).toString() : '0');

// What Datadog must show for each SDK span (docs/datadog.md §4).
function expectations(sdkSpans, service = 'dd-itest') {
  const byId = new Map();
  for (const s of sdkSpans) {
    const ctx = s.spanContext();
    const parent = s.parentSpanContext;
    const kind = s.kind; // 0 internal, 1 server, 2 client
    const a = s.attributes;
    let name; let resource; let type;
    if (kind === 1) { name = 'http.server.request'; resource = `GET ${a['http.route']}`; type = 'web'; }
    else if (a['db.system']) { name = 'postgresql.query'; resource = a['db.statement']; type = 'sql'; }
    else if (kind === 2) { name = 'http.client.request'; resource = 'GET'; type = 'http'; }
    else { name = 'internal'; resource = s.name; type = 'custom'; }
    byId.set(dec(ctx.spanId), {
      sdk: s,
      traceId: low64(ctx.traceId),
      traceIdHex: ctx.traceId,
      spanId: dec(ctx.spanId),
      parentId: parent ? dec(parent.spanId) : '0',
      service, name, resource, type,
      error: s.status.code === 2 ? 1 : 0,
      topLevel: !parent || parent.isRemote,
    });
  }
  return byId;
}

// Checks Datadog spans (from protobuf or msgpack, normalised to one shape)
// against expectations. Returns the number of spans checked.
function checkSpans(ddSpans, exp) {
  let n = 0;
  for (const d of ddSpans) {
    const e = exp.get(String(d.span_id));
    assert.ok(e, `unexpected span id ${d.span_id}`);
    const where = `span '${e.sdk.name}' (${e.spanId})`;
    assert.strictEqual(String(d.trace_id), e.traceId, `${where}: trace_id`);
    assert.strictEqual(String(d.parent_id), e.parentId, `${where}: parent_id`);
    assert.strictEqual(d.service, e.service, `${where}: service`);
    assert.strictEqual(d.name.toLowerCase(), e.name, `${where}: name`);
    assert.strictEqual(d.resource, e.resource, `${where}: resource`);
    assert.strictEqual(d.type, e.type, `${where}: type`);
    assert.strictEqual(Number(d.error), e.error, `${where}: error`);
    assert.strictEqual(d.meta['otel.trace_id'], e.traceIdHex, `${where}: meta otel.trace_id (128-bit)`);
    assert.strictEqual(d.meta.env, 'itest', `${where}: meta env`);
    assert.strictEqual(d.meta.version, '1.2.3', `${where}: meta version`);
    assert.strictEqual(Number((d.metrics || {})._top_level || 0), e.topLevel ? 1 : 0, `${where}: _top_level`);
    const start = BigInt(e.sdk.startTime[0]) * 1000000000n + BigInt(e.sdk.startTime[1]);
    assert.strictEqual(BigInt(d.start), start, `${where}: start`);
    if (e.error && e.sdk.kind === 2) {
      // The status message; the exception event is no longer copied into
      // error.* (datadog-agent PR #44025) but travels as the events meta.
      assert.strictEqual(d.meta['error.msg'], 'inventory down', `${where}: error.msg`);
      assert.strictEqual(d.meta['error.type'], undefined, `${where}: no error.type`);
      assert.strictEqual(d.meta['_dd.span_events.has_exception'], 'true', `${where}: has_exception`);
      assert.match(d.meta.events || '', /"name":"exception".*FetchError/, `${where}: events`);
    }
    if (e.sdk.kind === 1) assert.strictEqual(d.meta['http.method'], 'GET', `${where}: http.method remapped`);
    n++;
  }
  return n;
}

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await h.sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// A tiny pass/fail reporter that ends with the line CI reads.
function runner() {
  let passed = 0; let failed = 0;
  return {
    async test(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}\n${e.stack}`);
      }
    },
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

module.exports = { msgpackDecode, ports, KEY, config, sendSdkSpans, expectations, checkSpans, waitFor, runner, low64, dec };
