// APM stats (agentless), end to end: real OpenTelemetry JS SDK spans
// (server roots with 200 and 500 answers, client calls, one failing,
// internal work, a measured internal span) sent over OTLP/HTTP to the real
// spanprof, exported to a recording fake intake. Every /api/v0.2/stats
// request is gunzipped and msgpack-decoded, its latency sketches decoded
// with proto/ddsketch.proto, and the figures are checked against the spans
// the same intake recorded on /api/v0.2/traces: the set of aggregation
// keys, hits, errors, top-level hits and duration sums per key, sketch
// counts, bucket alignment (each span's end inside its bucket, or a later
// bucket when late), and each (bucket, key) sent once. One bucket goes on
// the flush timer while spanprof runs, the rest at shutdown.
'use strict';

const assert = require('node:assert');
const path = require('node:path');
const zlib = require('node:zlib');
const protobuf = require('protobufjs');
const h = require('./lib/harness');
const d = require('./datadog_lib');

const BUCKET = 10000000000n;

function sketchType() {
  const root = new protobuf.Root();
  root.loadSync(path.join(h.SRC, 'proto', 'ddsketch.proto'), { keepCase: true });
  return root.lookupType('ddsketch.DDSketch');
}

// Spans of the kinds the issue names, with an error on each side.
async function sendSpans(otlpPort, round) {
  const api = require('@opentelemetry/api');
  const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
  const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${otlpPort}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'stats-itest', 'service.version': '2.0.0', 'deployment.environment.name': 'itest', 'host.name': 'itest-host' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, scheduledDelayMillis: 60000 })],
  });
  const tracer = provider.getTracer('stats-itest');
  const K = api.SpanKind;
  let n = 0;
  for (let i = 0; i < 12; i++) {
    const fail = i % 4 === 3;
    const route = i % 2 ? '/api/orders/{id}' : '/api/users/{id}';
    const root = tracer.startSpan(`GET ${route}`, { kind: K.SERVER, attributes: { 'http.request.method': 'GET', 'http.route': route, 'http.response.status_code': fail ? 500 : 200 } });
    const ctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    const work = tracer.startSpan('render', { kind: K.INTERNAL }, ctx);
    const measured = tracer.startSpan('price.compute', { kind: K.INTERNAL, attributes: { '_dd.measured': 1 } }, api.trace.setSpan(ctx, work));
    await h.sleep(1 + (i % 3));
    measured.end();
    work.end();
    const cl = tracer.startSpan('GET', { kind: K.CLIENT, attributes: { 'http.request.method': 'GET', 'url.full': 'http://inventory:8080/stock', 'server.address': 'inventory', 'peer.service': 'inventory', 'http.response.status_code': fail ? 503 : 200 } }, ctx);
    await h.sleep(1);
    if (fail) {
      cl.setStatus({ code: api.SpanStatusCode.ERROR, message: 'inventory down' });
      root.setStatus({ code: api.SpanStatusCode.ERROR });
    }
    cl.end();
    root.end();
    n += 4;
  }
  await provider.forceFlush();
  await provider.shutdown();
  return n + round * 0;
}

const num = (v) => (typeof v === 'bigint' ? Number(v) : Number(v || 0));

// What the Agent would aggregate from the recorded Datadog spans.
function expectedFromTraces(intake) {
  const keys = new Map();
  const spans = [];
  for (const q of intake.requests.filter((r) => r.url === '/api/v0.2/traces')) {
    const ap = h.decodeTraceRequest(q);
    for (const tp of ap.tracerPayloads) {
      for (const c of tp.chunks) {
        for (const s of c.spans) {
          const m = s.metrics || {};
          const kind = (s.meta || {})['span.kind'] || '';
          const top = Number(m._top_level || 0) === 1;
          const eligible = top || Number(m['_dd.measured'] || 0) === 1 || ['server', 'client', 'producer', 'consumer'].includes(kind);
          spans.push({ s, eligible, env: tp.env, hostname: tp.hostname, version: tp.appVersion });
          if (!eligible) continue;
          const k = [s.service, s.name, s.resource, s.type, kind, Number(m['http.status_code'] || 0), String(s.parentID) === '0' ? 1 : 2].join('|');
          const e = keys.get(k) || { hits: 0, errors: 0, top: 0, duration: 0n, ok: 0, err: 0 };
          e.hits++;
          if (s.error) { e.errors++; e.err++; } else e.ok++;
          if (top) e.top++;
          e.duration += BigInt(s.duration);
          keys.set(k, e);
        }
      }
    }
  }
  return { keys, spans };
}

function statsGroups(intake, Sketch) {
  const out = [];
  for (const q of intake.requests.filter((r) => r.url === '/api/v0.2/stats')) {
    const p = d.msgpackDecode(zlib.gunzipSync(q.body));
    for (const cp of p.Stats) {
      for (const b of cp.Stats) {
        for (const g of b.Stats) {
          const ok = Sketch.toObject(Sketch.decode(g.OkSummary), { defaults: true });
          const er = Sketch.toObject(Sketch.decode(g.ErrorSummary), { defaults: true });
          out.push({ q, p, cp, b, g, ok, er });
        }
      }
    }
  }
  return out;
}

const sketchCount = (s) => (s.positiveValues ? s.positiveValues.contiguousBinCounts.reduce((a, c) => a + c, 0) : 0) + s.zeroCount;

(async () => {
  const r = d.runner();
  const intake = await h.startIntake({ respond: () => ({ status: 202, body: '{}' }) });
  const [otlpPort, healthPort, metricsPort] = await d.ports(3);
  const extra = '    stats: {flush_delay: 1s}';
  const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: intake.url, extra }), { healthPort, metricsPort, name: 'dd-stats' });
  const Sketch = sketchType();
  const statsReqs = () => intake.requests.filter((q) => q.url === '/api/v0.2/stats');
  const traceSpans = () => intake.requests.filter((q) => q.url === '/api/v0.2/traces')
    .reduce((n, q) => n + h.decodeTraceRequest(q).tracerPayloads.reduce((a, tp) => a + tp.chunks.reduce((b, c) => b + c.spans.length, 0), 0), 0);
  let sent = 0;
  try {
    sent += await sendSpans(otlpPort, 0);
    await d.waitFor(() => traceSpans() >= sent, 20000, `${sent} spans at the trace intake`);
    // the first bucket goes on the timer: its end + 1 s (flush_delay)
    await d.waitFor(() => statsReqs().length >= 1, 25000, 'a stats payload from the flush timer');
    await r.test('stats request: POST /api/v0.2/stats, msgpack, gzip, the API key', async () => {
      const q = statsReqs()[0];
      assert.strictEqual(q.method, 'POST');
      assert.strictEqual(q.headers['content-type'], 'application/msgpack');
      assert.strictEqual(q.headers['content-encoding'], 'gzip');
      assert.strictEqual(q.headers['dd-api-key'], d.KEY);
      const p = d.msgpackDecode(zlib.gunzipSync(q.body));
      assert.strictEqual(p.AgentEnv, 'itest');
      assert.strictEqual(p.ClientComputed, false);
      assert.strictEqual(p.SplitPayload, false);
      assert.match(p.AgentVersion, /^spanprof-/);
      const m = await sp.metrics();
      assert.ok(h.metricSum(m, 'spanprof_exporter_stats_payloads_sent_total') >= 1);
      assert.ok(h.metricSum(m, 'spanprof_exporter_stats_spans_total') > 0);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_stats_overflow_spans_total'), 0);
    });
    // a second round; its buckets go at shutdown (the forced flush)
    sent += await sendSpans(otlpPort, 1);
    await d.waitFor(() => traceSpans() >= sent, 20000, `${sent} spans at the trace intake`);
  } finally {
    const ex = await sp.stop();
    await r.test('shutdown: clean exit after the last stats', async () => {
      assert.strictEqual(ex.code, 0, JSON.stringify(ex));
      assert.ok(!sp.log().includes(d.KEY));
    });
  }
  const { keys, spans } = expectedFromTraces(intake);
  const groups = statsGroups(intake, Sketch);
  await r.test('the exported spans include every kind the stats must handle', async () => {
    assert.strictEqual(spans.length, sent);
    const kinds = new Set(spans.map((x) => (x.s.meta || {})['span.kind']));
    for (const k of ['server', 'client', 'internal']) assert.ok(kinds.has(k), k);
    assert.ok(spans.some((x) => Number((x.s.metrics || {})['_dd.measured'] || 0) === 1), 'a measured span');
    assert.ok(spans.some((x) => x.s.error && x.s.meta['span.kind'] === 'server'), 'a server error');
    assert.ok(spans.some((x) => x.s.error && x.s.meta['span.kind'] === 'client'), 'a client error');
    assert.ok(spans.some((x) => !x.eligible), 'a span stats leave out (internal, not top-level)');
  });
  await r.test('stats keys and figures equal the exported spans', async () => {
    const got = new Map();
    for (const { g } of groups) {
      const k = [g.Service, g.Name, g.Resource, g.Type, g.SpanKind, num(g.HTTPStatusCode), num(g.IsTraceRoot)].join('|');
      const e = got.get(k) || { hits: 0, errors: 0, top: 0, duration: 0n, ok: 0, err: 0 };
      e.hits += num(g.Hits);
      e.errors += num(g.Errors);
      e.top += num(g.TopLevelHits);
      e.duration += BigInt(g.Duration);
      got.set(k, e);
    }
    for (const x of groups) {
      const k = [x.g.Service, x.g.Name, x.g.Resource, x.g.Type, x.g.SpanKind, num(x.g.HTTPStatusCode), num(x.g.IsTraceRoot)].join('|');
      got.get(k).ok += sketchCount(x.ok);
      got.get(k).err += sketchCount(x.er);
    }
    assert.deepStrictEqual([...got.keys()].sort(), [...keys.keys()].sort());
    for (const [k, e] of keys) assert.deepStrictEqual(got.get(k), e, k);
    assert.ok(keys.size >= 6, `${keys.size} keys`);
  });
  await r.test('payload key, peer tags and sketches as the Agent sends them', async () => {
    for (const { cp, g, ok } of groups) {
      assert.strictEqual(cp.Env, 'itest');
      assert.strictEqual(cp.Version, '2.0.0');
      assert.strictEqual(cp.Hostname, 'itest-host');
      assert.ok(Math.abs(ok.mapping.gamma - 1.01 / 0.99) < 1e-12);
      if (g.SpanKind === 'client') assert.ok(g.PeerTags.includes('peer.service:inventory'), JSON.stringify(g.PeerTags));
      else assert.deepStrictEqual(g.PeerTags, []);
    }
  });
  await r.test('buckets: 10 s aligned, each span in its bucket or a later one, each (bucket, key) sent once', async () => {
    const seen = new Set();
    for (const { b, g } of groups) {
      const start = BigInt(b.Start);
      assert.strictEqual(start % BUCKET, 0n);
      assert.strictEqual(BigInt(b.Duration), BUCKET);
      const id = `${start}|${g.Service}|${g.Name}|${g.Resource}|${g.SpanKind}|${num(g.HTTPStatusCode)}|${num(g.IsTraceRoot)}`;
      assert.ok(!seen.has(id), `sent twice: ${id}`);
      seen.add(id);
    }
    // every eligible span's end falls in a bucket that carries its key, at or after its own
    for (const { s, eligible } of spans) {
      if (!eligible) continue;
      const end = BigInt(s.start) + BigInt(s.duration);
      const own = end - (end % BUCKET);
      const there = groups.some(({ b, g }) => g.Resource === s.resource && g.Name === s.name && BigInt(b.Start) >= own);
      assert.ok(there, `no bucket at or after ${own} for ${s.name} ${s.resource}`);
    }
    assert.ok(statsReqs().length >= 2, 'one payload on the timer, one at shutdown');
  });
  await intake.close();

  // The key bound: 2 keys at most; the rest counted and logged once.
  {
    const intake2 = await h.startIntake({ respond: () => ({ status: 202, body: '{}' }) });
    const [otlp2, health2, metrics2] = await d.ports(3);
    const sp2 = await h.startSpanprof(d.config({ otlpPort: otlp2, healthPort: health2, metricsPort: metrics2, intake: intake2.url, extra: '    stats: {max_keys: 2}' }), { healthPort: health2, metricsPort: metrics2, name: 'dd-stats-bound' });
    let n2 = 0;
    try {
      n2 = await sendSpans(otlp2, 0);
      await d.waitFor(async () => h.metricSum(await sp2.metrics(), 'spanprof_exporter_sent_spans_total') >= n2, 20000, 'delivery');
      await r.test('max_keys: spans past the bound are counted, the log says so once', async () => {
        const m = await sp2.metrics();
        const counted = h.metricSum(m, 'spanprof_exporter_stats_spans_total');
        const over = h.metricSum(m, 'spanprof_exporter_stats_overflow_spans_total');
        assert.ok(over > 0, 'overflow counted');
        assert.ok(h.metricSum(m, 'spanprof_exporter_stats_keys') <= 2);
        const eligible = expectedFromTraces(intake2).spans.filter((x) => x.eligible).length;
        assert.strictEqual(counted + over, eligible, 'every eligible span counted or overflowed');
        assert.strictEqual(sp2.log().split('\n').filter((l) => l.includes('stats.max_keys')).length, 1);
      });
    } finally {
      await sp2.stop();
    }
    await r.test('max_keys: the stats sent hold at most 2 keys per bucket', async () => {
      const gs = statsGroups(intake2, Sketch);
      assert.ok(gs.length > 0);
      const perBucket = new Map();
      for (const { b } of gs) perBucket.set(String(b.Start), (perBucket.get(String(b.Start)) || 0) + 1);
      for (const [, k] of perBucket) assert.ok(k <= 2, `${k} keys in a bucket`);
    });
    await intake2.close();
  }

  // Agent mode: the Agent computes stats from /v0.4/traces; spanprof sends none.
  {
    const intake3 = await h.startIntake({ respond: () => ({ status: 200, body: '{"rate_by_service":{}}' }) });
    const [otlp3, health3, metrics3] = await d.ports(3);
    const sp3 = await h.startSpanprof(d.config({ otlpPort: otlp3, healthPort: health3, metricsPort: metrics3, intake: intake3.url, agent: true }), { healthPort: health3, metricsPort: metrics3, name: 'dd-stats-agent' });
    try {
      const n3 = await sendSpans(otlp3, 0);
      await d.waitFor(async () => h.metricSum(await sp3.metrics(), 'spanprof_exporter_sent_spans_total') >= n3, 20000, 'delivery');
    } finally {
      await sp3.stop();
    }
    await r.test('agent mode: no stats from spanprof (the Agent computes them)', async () => {
      assert.ok(intake3.requests.some((q) => q.url === '/v0.4/traces'));
      assert.strictEqual(intake3.requests.filter((q) => /stats/.test(q.url)).length, 0);
      assert.ok(!/APM stats computed here/.test(sp3.log()));
    });
    await intake3.close();
  }
  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
