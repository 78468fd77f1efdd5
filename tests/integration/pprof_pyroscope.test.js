// pprof receiver as a Pyroscope server (/ingest): the real @pyroscope/nodejs
// client (raw gzipped pprof body, times in seconds), the captured request
// fixture, and pyroscope-go's shape (multipart `profile` + `prev_profile` +
// `sample_type_config`, times in nanoseconds, app name with a type suffix)
// built here from a real Go program's heap profiles. Checks the envelope
// (service from the app name, labels, family, window) and that profiles are
// decoded as Go's pprof tool reads them, with prev_profile subtracted like
// `go tool pprof -base`.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const h = require('./lib/harness');
const L = require('./pprof_lib');

const r = L.runner('pprof_pyroscope');
const FIX = h.FIXTURES;
const PYRO = path.join(h.SRC, 'tests/integration/node_modules/@pyroscope/nodejs');

const APP = `
const Pyroscope = require(process.env.PYRO);
const crypto = require('node:crypto');
Pyroscope.init({ serverAddress: process.env.SERVER, appName: 'pyro-app', flushIntervalMs: 2000,
  tags: { env: 'itest', region: 'eu' } });
Pyroscope.start();
function burn(ms) { const end = Date.now() + ms; while (Date.now() < end) crypto.createHash('sha256').update('y'.repeat(4096)).digest(); }
const until = Date.now() + 5000;
const keep = [];
(function loop() {
  if (Date.now() > until) { Pyroscope.stop().then(() => process.exit(0)); return; }
  Pyroscope.wrapWithLabels({ endpoint: '/work' }, () => burn(20));
  keep.push(Buffer.alloc(4096)); if (keep.length > 200) keep.shift();
  setImmediate(loop);
})();
`;

function multipart(parts) {
  const boundary = `----spanprof${Date.now()}`;
  const chunks = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    chunks.push(p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

function sumCol(raw, type) {
  const i = raw.sampleTypes.indexOf(type);
  return raw.samples.reduce((a, s) => a + s.values[i], 0);
}

async function main() {
  const s = await L.startPprof({ name: 'pprof-pyro' });
  r.cleanup(() => s.sp.stop());

  await r.test('the captured @pyroscope/nodejs request', async () => {
    const req = JSON.parse(fs.readFileSync(path.join(FIX, 'pyroscope-ingest.request.json')));
    const body = fs.readFileSync(path.join(FIX, 'pyroscope-ingest.pprof'));
    const res = await h.httpRequest(`${s.base}${req.url}`, { headers: req.headers, body });
    assert.strictEqual(res.status, 200, res.body.toString());
    const line = await L.waitFor(() => s.out().find((l) => l.service === 'fixture-pyro'), 10000, 'the fixture profile');
    assert.strictEqual(line.dialect, 'pyroscope');
    assert.strictEqual(line.env, 'acceptance');
    assert.strictEqual(line.family, 'node');
    assert.strictEqual(line.tags['otel.scope.name'], 'com.grafana.pyroscope/nodejs');
    assert.strictEqual(line.tags['process.runtime.version'], '20.20.2');
    assert.strictEqual(line.tags.spy_name, 'nodespy');
    // from/until are whole seconds (1795303322 both); the pprof's window is inside that second
    const from = Number(req.query.from) * 1e9;
    assert.ok(line.start_ns >= from && line.start_ns < from + 1e9, `start ${line.start_ns}`);
    assert.ok(line.end_ns > line.start_ns);
    const a = line.attachments[0];
    assert.strictEqual(a.name, 'wall.pprof');
    const raw = L.goRaw(path.join(FIX, 'pyroscope-ingest.pprof'));
    assert.ok(a.pprof.samples >= raw.samples.length && raw.samples.length > 0);
    assert.deepStrictEqual(a.pprof.sample_types, raw.sampleTypes);
    L.compareWithGo(a.pprof.file);
  });

  const appFile = path.join(s.dir, 'pyro-app.js');
  fs.writeFileSync(appFile, APP);
  const run = await L.runToEnd(process.execPath, [appFile], {
    timeoutMs: 60000, env: { ...process.env, PYRO: PYRO, SERVER: s.base, DEBUG: 'pyroscope' },
  });

  await r.test('the real @pyroscope/nodejs client pushes through spanprof', async () => {
    assert.strictEqual(run.code, 0, run.out);
    assert.doesNotMatch(run.out, /rejected|Error sending/, run.out);
    const mine = () => s.out().filter((l) => l.service === 'pyro-app');
    await L.waitFor(() => mine().some((l) => l.profile_type === 'wall') && mine().some((l) => l.profile_type === 'heap'), 15000, 'wall and heap profiles from pyro-app');
    for (const line of mine()) {
      assert.strictEqual(line.dialect, 'pyroscope');
      assert.strictEqual(line.env, 'itest');
      assert.strictEqual(line.family, 'node');
      assert.strictEqual(line.tags.region, 'eu');
      assert.strictEqual(line.tags.spy_name, 'nodespy');
      const a = line.attachments[0];
      assert.strictEqual(a.name, `${line.profile_type}.pprof`);
      assert.ok(a.pprof, 'not decoded');
      // Go's tool merges samples with equal stacks and labels: never more than ours
      assert.ok(a.pprof.samples >= L.goRaw(a.pprof.file).samples.length && a.pprof.samples > 0);
      L.compareWithGo(a.pprof.file);
      assert.ok(line.end_ns >= line.start_ns);
      assert.ok(Math.abs(line.end_ns / 1e6 - Date.now()) < 120000, 'window far from now');
    }
    const wall = mine().find((l) => l.profile_type === 'wall');
    const raw = L.goRaw(wall.attachments[0].pprof.file);
    assert.ok(raw.samples.some((x) => (x.labels.endpoint || []).includes('/work')), 'wrapWithLabels label missing');
    const m = await s.metrics();
    assert.ok(h.metricSum(m, 'spanprof_receiver_accepted_profiles_total', { dialect: 'pyroscope' }) >= 3);
  });

  await r.test("pyroscope-go's multipart shape: prev_profile subtracted as go tool pprof -base does", async () => {
    const app = L.buildGoApp();
    const served = await L.spawnUntil(app, ['-mode', 'serve'], /LISTEN (\S+)\n/);
    r.cleanup(() => served.child.kill('SIGKILL'));
    const target = served.match[1];
    const prev = (await h.httpGet(`http://${target}/debug/pprof/heap`)).body;
    await h.sleep(1500);
    const cur = (await h.httpGet(`http://${target}/debug/pprof/heap`)).body;
    served.child.kill('SIGKILL');
    const f1 = path.join(s.dir, 'heap1.pprof'), f2 = path.join(s.dir, 'heap2.pprof');
    fs.writeFileSync(f1, prev);
    fs.writeFileSync(f2, cur);
    const cfg = JSON.stringify({
      alloc_objects: { units: 'objects', cumulative: true }, alloc_space: { units: 'bytes', cumulative: true },
      inuse_objects: { units: 'objects', aggregation: 'average' }, inuse_space: { units: 'bytes', aggregation: 'average' },
    });
    const mp = multipart([
      { name: 'profile', filename: 'profile.pprof', data: cur },
      { name: 'prev_profile', filename: 'profile.pprof', data: prev },
      { name: 'sample_type_config', filename: 'sample_type_config.json', data: Buffer.from(cfg) },
    ]);
    const from = BigInt(Date.now() - 1500) * 1000000n, until = BigInt(Date.now()) * 1000000n;
    const name = encodeURIComponent('gosvc.alloc_space{service_name=gosvc,env=prod,__session_id__=abc}');
    const res = await h.httpRequest(`${s.base}/ingest?name=${name}&from=${from}&until=${until}&spyName=gospy&sampleRate=100&units=bytes&aggregationType=sum`,
      { headers: { 'content-type': mp.type }, body: mp.body });
    assert.strictEqual(res.status, 200, res.body.toString());
    const line = await L.waitFor(() => s.out().find((l) => l.service === 'gosvc'), 10000, 'the go-style push');
    assert.strictEqual(line.env, 'prod');
    assert.strictEqual(line.family, 'go');
    assert.strictEqual(line.profile_type, 'heap');
    assert.strictEqual(line.tags.__session_id__, 'abc');
    const a = line.attachments[0];
    assert.strictEqual(a.modified, true);
    L.compareWithGo(a.pprof.file);
    const ours = L.goRaw(a.pprof.file);
    const text = require('node:child_process').execFileSync('go', ['tool', 'pprof', '-raw', '-base', f1, f2], { env: L.goEnv(), stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const tmp = path.join(s.dir, 'go-base.txt');
    fs.writeFileSync(tmp, text);
    const goBase = { sampleTypes: text.split('\n')[text.split('\n').indexOf('Samples:') + 1].split(' ').filter(Boolean), samples: [] };
    for (const l of text.split('\n').slice(text.split('\n').indexOf('Samples:') + 2)) {
      if (l === 'Locations') break;
      if (!l.startsWith('                ') && l.includes(':')) goBase.samples.push({ values: l.split(':')[0].trim().split(/\s+/).map(Number) });
    }
    for (const col of ['alloc_objects/count', 'alloc_space/bytes']) {
      assert.strictEqual(sumCol(ours, col), sumCol(goBase, col), `${col}: ours vs go tool pprof -base`);
    }
    // inuse_* are point in time: kept as the current snapshot says
    assert.strictEqual(sumCol(ours, 'inuse_space/bytes'), sumCol(L.goRaw(f2), 'inuse_space/bytes'));
  });

  await r.test('a raw body with nanosecond from/until and a gzip-less profile', async () => {
    const raw = zlib.gunzipSync(fs.readFileSync(path.join(FIX, 'go-cpu-spanid.pprof')));
    const from = 1795303312000000000n, until = 1795303314000000000n;
    const res = await h.httpRequest(`${s.base}/ingest?name=rawsvc&from=${from}&until=${until}&spyName=gospy`, { headers: { 'content-type': 'application/octet-stream' }, body: raw });
    assert.strictEqual(res.status, 200, res.body.toString());
    const line = await L.waitFor(() => s.out().find((l) => l.service === 'rawsvc'), 10000, 'the raw push');
    assert.strictEqual(line.attachments[0].compression, 'none');
    assert.strictEqual(line.profile_type, 'cpu');
    assert.strictEqual(line.family, 'go');
    // the pprof's own window (time_nanos 2026-11-21T23:21:52.386Z, 2.14 s) wins over whole query values
    assert.strictEqual(line.start_ns, 1795303312386544018);
  });
}

main().then(() => r.finish(), (e) => r.finish(e));
