// Recipe: the OTel span id on @pyroscope/nodejs samples (README "Labelling
// Node samples"). The real app (recipes/node_pyroscope_app.js) sends spans
// over OTLP and wall profiles to the Pyroscope ingest; the join must give
// the span-labelled samples Datadog's labels: `trace endpoint` equal to the
// span's route, `span id` / `local root span id` the span id in decimal.
'use strict';

const assert = require('node:assert');
const h = require('./lib/harness');
const L = require('./pprof_lib');

async function main() {
  const { sp, grpcPort, pprofPort, lines: out } = await L.startJoin('recipe-node');
  try {
    const { spans } = await L.runRecipe('node_pyroscope_app.js', {
      ...process.env, OTEL_SERVICE_NAME: 'recipe-node', OTLP_URL: `http://127.0.0.1:${grpcPort}`, PYROSCOPE_URL: `http://127.0.0.1:${pprofPort}`, APP_SECONDS: '6',
    });
    assert.ok(Object.keys(spans).length > 20, 'the app made spans');
    await h.sleep(3000); // join_delay
    await sp.stop();
    const lines = out().filter((l) => l.signal === 'profiles' && l.service === 'recipe-node');
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
