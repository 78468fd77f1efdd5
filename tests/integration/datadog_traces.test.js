// datadog exporter, end to end: real OpenTelemetry JS SDK spans sent over
// OTLP/HTTP to the real spanprof, exported to a recording fake Datadog
// intake (agentless: AgentPayload protobuf, gzip by default and zstd with
// `compression: gzip`, both runs; agent mode: /v0.4/traces msgpack), every
// payload decoded back and checked field by field against
// what Datadog's mapping gives for the SDK's own spans (ids incl. the
// 128-bit trace id, service, name, resource, type, error, meta, top-level,
// chunk priority).
'use strict';

const assert = require('node:assert');
const h = require('./lib/harness');
const d = require('./datadog_lib');

function flattenProto(ap) {
  const spans = [];
  const chunks = [];
  for (const tp of ap.tracerPayloads) {
    for (const c of tp.chunks) {
      chunks.push({ tp, c });
      for (const s of c.spans) {
        spans.push({
          trace_id: s.traceID, span_id: s.spanID, parent_id: s.parentID, service: s.service, name: s.name,
          resource: s.resource, type: s.type, error: s.error, meta: s.meta, metrics: s.metrics, start: s.start,
        });
      }
    }
  }
  return { spans, chunks };
}

// The body's first bytes: what Content-Encoding says, or the intake could
// not read it.
const MAGIC = { zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), gzip: Buffer.from([0x1f, 0x8b]) };

// compression: null runs with the default (gzip, as the Collector's Datadog exporter).
async function agentless(r, compression) {
  const enc = compression || 'gzip';
  const intake = await h.startIntake({ respond: () => ({ status: 202, body: '{}' }) });
  const [otlpPort, healthPort, metricsPort] = await d.ports(3);
  const extra = compression ? `    compression: ${compression}\n` : '';
  const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: intake.url, extra }), { healthPort, metricsPort, name: `dd-agentless-${enc}` });
  try {
    const sdk = await d.sendSdkSpans(otlpPort);
    const exp = d.expectations(sdk);
    const traceReqs = () => intake.requests.filter((q) => q.url === '/api/v0.2/traces');
    const spansIn = () => traceReqs().reduce((n, q) => n + flattenProto(h.decodeTraceRequest(q)).spans.length, 0);
    await d.waitFor(() => spansIn() >= sdk.length, 20000, `${sdk.length} spans at the intake`);
    await h.sleep(300);
    let checked = 0;
    for (const q of traceReqs()) {
      await r.test(`agentless ${enc} request headers (${q.body.length} bytes)`, async () => {
        assert.strictEqual(q.method, 'POST');
        assert.strictEqual(q.headers['content-type'], 'application/x-protobuf');
        assert.strictEqual(q.headers['content-encoding'], enc);
        assert.ok(q.body.subarray(0, MAGIC[enc].length).equals(MAGIC[enc]), `body is not ${enc}`);
        assert.strictEqual(q.headers['dd-api-key'], d.KEY, 'key trimmed of spaces and quotes');
        assert.strictEqual(q.headers['x-datadog-reported-languages'], 'nodejs');
        assert.match(q.headers['user-agent'], /^Datadog Trace Agent\/spanprof-/);
        assert.ok(h.decodeBody(q).length < 3200000);
      });
      const ap = h.decodeTraceRequest(q);
      const { spans, chunks } = flattenProto(ap);
      await r.test(`agentless ${enc} payload fields`, async () => {
        assert.ok(ap.agentVersion.length > 0);
        for (const { tp, c } of chunks) {
          assert.strictEqual(c.priority, 1, 'chunk priority auto keep');
          assert.strictEqual(tp.env, 'itest');
          assert.strictEqual(tp.languageName, 'nodejs');
          const tids = new Set(c.spans.map((s) => s.traceID));
          assert.strictEqual(tids.size, 1, 'one trace per chunk');
        }
        checked += d.checkSpans(spans, exp);
      });
    }
    await r.test(`agentless ${enc}: every SDK span delivered exactly once`, async () => {
      assert.strictEqual(checked, sdk.length);
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total', { component: 'datadog' }), sdk.length);
      assert.ok(h.metricSum(m, 'spanprof_exporter_payload_bytes_total', { signal: 'traces' }) > 0);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: '202' }), traceReqs().length);
    });
    await r.test('agentless: the API key never reaches the log', async () => {
      assert.ok(!sp.log().includes(d.KEY));
    });
  } finally {
    await sp.stop();
    await intake.close();
  }
}

async function agentMode(r) {
  const intake = await h.startIntake({ respond: (q) => (q.url === '/v0.4/traces' ? { status: 200, body: '{"rate_by_service":{"service:,env:":1,"service:dd-itest,env:itest":0.5}}' } : null) });
  const [otlpPort, healthPort, metricsPort] = await d.ports(3);
  const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: intake.url, agent: true }), { healthPort, metricsPort, name: 'dd-agent' });
  try {
    const sdk = await d.sendSdkSpans(otlpPort);
    const exp = d.expectations(sdk);
    const reqs = () => intake.requests.filter((q) => q.url === '/v0.4/traces');
    const count = () => reqs().reduce((n, q) => n + d.msgpackDecode(q.body).flat().length, 0);
    await d.waitFor(() => count() >= sdk.length, 20000, `${sdk.length} spans at the agent`);
    await h.sleep(300);
    let checked = 0;
    for (const q of reqs()) {
      const traces = d.msgpackDecode(q.body);
      await r.test('agent mode request', async () => {
        assert.strictEqual(q.method, 'PUT');
        assert.strictEqual(q.headers['content-type'], 'application/msgpack');
        assert.strictEqual(q.headers['x-datadog-trace-count'], String(traces.length));
        assert.strictEqual(q.headers['datadog-meta-lang'], 'nodejs');
        assert.ok(q.headers['datadog-meta-tracer-version']);
        assert.strictEqual(q.headers['dd-api-key'], undefined, 'no key through an agent');
        for (const t of traces) {
          assert.ok(Array.isArray(t));
          assert.strictEqual(new Set(t.map((s) => String(s.trace_id))).size, 1, 'one trace per array');
        }
        checked += d.checkSpans(traces.flat(), exp);
      });
    }
    await r.test('agent mode: all spans, rate_by_service replies accepted', async () => {
      assert.strictEqual(checked, sdk.length);
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total', { component: 'datadog' }), sdk.length);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_failed_spans_total'), 0);
    });
  } finally {
    await sp.stop();
    await intake.close();
  }
}

(async () => {
  const r = d.runner();
  await agentless(r, null);
  await agentless(r, 'gzip');
  await agentMode(r);
  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
