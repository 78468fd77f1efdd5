// A Go service scraped without `service:` (issue 13): the real spanprof
// binary scrapes the Go demo service's /debug/pprof while the service sends
// its spans over OTLP; a recording Datadog intake gets both. The scrape entry
// names no service, so spanprof must take it from the spans the samples
// joined to. Asserts, on the decoded uploads and trace payloads:
//   - every profile upload is tagged service:<the spans' service>, never the
//     target's host;
//   - every upload has endpoint_counts, and their total is within 20 % of the
//     local roots (from the service's own ground truth) that started in the
//     upload's window;
//   - every upload carries the same runtime-id, and every span that started
//     after the first upload reached the intake carries it too, with
//     _dd.profiling.enabled on the local roots only (Code Hotspots).
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const h = require('./lib/harness');
const d = require('./datadog_lib');

const SERVICE = 'demo-noservice';
const LOAD_SECONDS = 18;

const dec = (hex) => BigInt(`0x${hex}`).toString();
const tag = (tags, k) => (tags || '').split(',').find((x) => x.startsWith(`${k}:`))?.slice(k.length + 1);

test('scrape without service: uploads take the spans\' service', { timeout: 240000 }, async (t) => {
  const work = h.tmpDir('scrape-service');
  const demoBin = path.join(h.BUILD, 'scrape-service', 'demo-service');
  execFileSync('bash', [path.join(h.SRC, 'examples/demo-service/build.sh'), demoBin], { stdio: 'inherit' });

  const intake = await h.startIntake();
  t.after(() => intake.close());
  const [httpPort, pprofPort, healthPort, metricsPort, appPort] = await Promise.all(
    Array.from({ length: 5 }, () => h.freePort()));
  // The scrape entry names no service: the point of this test.
  const yaml = d.config({
    otlpPort: httpPort, healthPort, metricsPort, pprofPort, intake: intake.url, join: true,
    joinDelay: '3s', shutdown: '15s', timeout: '10s',
    retry: '{initial_interval: 200ms, max_interval: 1s}',
    scrape: `    scrape:
      - targets: [127.0.0.1:${appPort}]
        profiles: [cpu]
        interval: 5s
        cpu_duration: 4s
        timeout: 10s`,
  });
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'scrape-service' });
  t.after(() => sp.kill());

  const truthFile = path.join(work, 'truth.json');
  const app = h.startProcess(demoBin, ['-listen', `127.0.0.1:${appPort}`, '-service', SERVICE,
    '-otlp-endpoint', `http://127.0.0.1:${httpPort}`, '-load', `${LOAD_SECONDS}s`, '-load-rps', '40',
    '-truth', truthFile], {}, path.join(work, 'demo.log'));
  t.after(() => app.child.kill('SIGKILL'));
  const appExit = await app.exited;
  assert.strictEqual(appExit.code, 0, `demo service failed:\n${app.log()}`);
  const exit = await sp.stop(30000);
  assert.strictEqual(exit.code, 0, `spanprof exit ${JSON.stringify(exit)}:\n${sp.log()}`);
  const truth = JSON.parse(fs.readFileSync(truthFile, 'utf8'));

  // ---- profiles ----
  const uploads = intake.requests.filter((r) => r.url === '/api/v2/profile').map((rec) => {
    const parts = h.parseMultipart(rec.body, rec.headers['content-type']);
    return { rec, event: JSON.parse(parts.find((p) => p.name === 'event').data.toString()) };
  });
  assert.ok(uploads.length >= 2, `${uploads.length} profile uploads`);
  const roots = Object.entries(truth.spans).filter(([hex, s]) => s.exported && s.local_root === hex);
  assert.ok(roots.length > 100, `${roots.length} local roots exported`);
  let runtimeId = null;
  let compared = 0;
  for (const u of uploads) {
    const tags = u.event.tags_profiler;
    assert.strictEqual(tag(tags, 'service'), SERVICE, `upload tags: ${tags}`);
    const rid = tag(tags, 'runtime-id');
    assert.ok(rid, `runtime-id in ${tags}`);
    if (runtimeId === null) runtimeId = rid;
    assert.strictEqual(rid, runtimeId, 'one runtime id for the one process');
    const counts = u.event.endpoint_counts || {};
    assert.ok(Object.keys(counts).length > 0, `endpoint_counts in ${JSON.stringify(u.event)}`);
    const from = BigInt(Date.parse(u.event.start)) * 1000000n;
    const to = BigInt(Date.parse(u.event.end)) * 1000000n;
    const want = roots.filter(([, s]) => BigInt(s.start_unix_nano) >= from && BigInt(s.start_unix_nano) < to).length;
    const got = Object.values(counts).reduce((a, b) => a + Number(b), 0);
    console.log(`upload ${u.event.start}..${u.event.end}: endpoint_counts total ${got}, local roots started ${want}`);
    if (want >= 20) {
      assert.ok(Math.abs(got - want) <= 0.2 * want, `endpoint_counts total ${got} vs ${want} local roots in the window`);
      compared++;
    }
    for (const ep of Object.keys(counts)) assert.ok(truth.endpoints[ep], `endpoint ${ep} is one of the service's`);
  }
  assert.ok(compared >= 1, 'no upload window held 20 local roots');

  // ---- traces: local roots after the first upload carry its runtime-id ----
  const firstAt = Math.min(...uploads.map((u) => u.rec.at));
  const seen = new Map();
  for (const rec of intake.requests.filter((r) => r.url === '/api/v0.2/traces')) {
    for (const tp of h.decodeTraceRequest(rec).tracerPayloads) {
      for (const chunk of tp.chunks) for (const s of chunk.spans) seen.set(String(s.spanID), s);
    }
  }
  let after = 0;
  let children = 0;
  for (const [hex, s] of Object.entries(truth.spans)) {
    if (!s.exported || Number(BigInt(s.start_unix_nano) / 1000000n) <= firstAt) continue;
    const dd = seen.get(dec(hex));
    assert.ok(dd, `span ${hex} reached the intake`);
    assert.strictEqual(dd.service, SERVICE);
    // runtime-id on every span of the instance (as dd-trace-go's global
    // tag), _dd.profiling.enabled on its local roots only.
    assert.strictEqual(dd.meta['runtime-id'], runtimeId, `runtime-id of span ${hex} (${dd.resource})`);
    const root = s.local_root === hex;
    assert.strictEqual(Number((dd.metrics || {})['_dd.profiling.enabled'] || 0), root ? 1 : 0,
      `_dd.profiling.enabled of ${root ? 'local root' : 'child'} ${hex}`);
    if (root) after++;
    else children++;
  }
  console.log(`${uploads.length} uploads, runtime-id ${runtimeId} on ${after} local roots and ${children} ` +
    'child spans started after the first upload');
  assert.ok(after >= 20, `${after} local roots started after the first upload`);
  assert.ok(children >= 20, `${children} child spans started after the first upload`);
  assert.ok(!/name no service/.test(sp.log()), 'no "joined nothing" warning for this target');
});
