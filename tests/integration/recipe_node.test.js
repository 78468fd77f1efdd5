// Recipe: the OTel span id on @pyroscope/nodejs samples (README "Labelling
// Node samples"). The real app (recipes/node_pyroscope_app.js) sends spans
// over OTLP and wall profiles to the Pyroscope ingest; the join must give
// the span-labelled samples Datadog's labels: `trace endpoint` equal to the
// span's route, `span id` / `local root span id` the span id in decimal.
'use strict';

const assert = require('node:assert');
const path = require('node:path');
const h = require('./lib/harness');
const L = require('./pprof_lib');

async function main() {
  const [grpcPort, pprofPort, healthPort, metricsPort] = await L.ports(4);
  const dir = h.tmpDir('recipe-node');
  const yaml = `
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:${grpcPort}}}}
  pprof: {endpoint: 127.0.0.1:${pprofPort}}
processors:
  join: {join_delay: 2s}
exporters:
  debug: {path: ${dir}/out.jsonl, pprof_dir: ${dir}/pprof}
extensions:
  health_check: {endpoint: 127.0.0.1:${healthPort}}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], processors: [join], exporters: [debug]}
    profiles: {receivers: [pprof], processors: [join], exporters: [debug]}
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'recipe-node' });
  try {
    const out = await L.runToEnd('node', [path.join(__dirname, 'recipes/node_pyroscope_app.js')], {
      cwd: __dirname,
      env: { ...process.env, OTEL_SERVICE_NAME: 'recipe-node', OTLP_URL: `http://127.0.0.1:${grpcPort}`, PYROSCOPE_URL: `http://127.0.0.1:${pprofPort}`, APP_SECONDS: '6' },
    });
    assert.strictEqual(out.code, 0, out.out);
    const spans = JSON.parse(out.out.trim().split('\n').filter((l) => l.startsWith('{')).pop());
    assert.ok(Object.keys(spans).length > 100, 'the app made spans');
    await h.sleep(3000); // join_delay
    await sp.stop();
    const fs = require('node:fs');
    const lines = fs.readFileSync(`${dir}/out.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .filter((l) => l.signal === 'profiles' && l.service === 'recipe-node');
    assert.ok(lines.length >= 2, `profiles from the app: ${lines.length}`);
    let labelled = 0;
    let joined = 0;
    const seen = new Set();
    for (const line of lines) {
      for (const a of line.attachments) {
        for (const s of L.goRaw(a.pprof.file).samples) {
          if (!s.labels.span_id) continue;
          labelled++;
          const id = s.labels.span_id[0].replace(/"/g, '');
          const want = spans[id];
          assert.ok(want, `span_id ${id} is one of the app's spans`);
          if (!s.labels['trace endpoint']) continue;
          joined++;
          const endpoint = s.labels['trace endpoint'].join(' ').replace(/"/g, '');
          assert.strictEqual(endpoint, want, `sample of span ${id}`);
          assert.strictEqual(s.labels['span id'][0].replace(/"/g, ''), BigInt(`0x${id}`).toString(), 'span id in decimal');
          assert.strictEqual(s.labels['local root span id'][0].replace(/"/g, ''), BigInt(`0x${id}`).toString(), 'a root span is its own local root');
          seen.add(endpoint);
        }
      }
    }
    assert.ok(labelled >= 20, `span-labelled samples: ${labelled}`);
    assert.ok(joined / labelled >= 0.9, `joined ${joined} of ${labelled} span-labelled samples`);
    assert.deepStrictEqual([...seen].sort(), ['GET /api/items', 'GET /api/users/{id}']);
    console.log(`ok   node recipe: ${joined}/${labelled} span-labelled @pyroscope/nodejs samples joined to their OTel span's endpoint`);
  } catch (e) {
    console.log(sp.log());
    throw e;
  } finally {
    sp.kill();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
