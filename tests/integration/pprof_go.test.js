// pprof receiver with a real Go program (stdlib runtime/pprof with pprof.Do
// span_id labels, net/http/pprof), built here: its CPU profile pushed to
// /v1/pprof, and its CPU, heap (delta), mutex (delta) and goroutine profiles
// scraped from /debug/pprof. What reaches the next stage (the debug
// exporter's lines and pprof files) must match what `go tool pprof -raw`
// reports for the same bytes, and spanprof's own decoding of those files
// must equal Go's (test_pprof_codec --compare). Scrape targets that refuse,
// hang, answer 404 or HTML are counted as failures and the process stays up.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const h = require('./lib/harness');
const L = require('./pprof_lib');

const r = L.runner('pprof_go');

function sum(raw, type) {
  const i = raw.sampleTypes.indexOf(type);
  assert.ok(i >= 0, `no ${type} in ${raw.sampleTypes}`);
  return raw.samples.reduce((a, s) => a + s.values[i], 0);
}

// A scrape target that misbehaves: 'hang' never answers, 'html' answers a
// web page, '404' a not found.
async function badServer(kind) {
  const sockets = new Set();
  const srv = http.createServer((req, res) => {
    if (kind === 'hang') return;
    if (kind === 'html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html><body>Login required</body></html>');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404 page not found\n');
  });
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  return {
    target: `127.0.0.1:${srv.address().port}`,
    close: () => new Promise((res) => { for (const s of sockets) s.destroy(); srv.close(res); }),
  };
}

async function main() {
  const app = L.buildGoApp();
  const served = await L.spawnUntil(app, ['-mode', 'serve'], /LISTEN (\S+)\n/);
  r.cleanup(() => served.child.kill('SIGKILL'));
  const target = served.match[1];
  const spanIds = /SPANS (\S+) (\S+) (\S+)/.exec(served.output()).slice(1);

  const hang = await badServer('hang');
  const html = await badServer('html');
  const nf = await badServer('404');
  r.cleanup(() => hang.close());
  r.cleanup(() => html.close());
  r.cleanup(() => nf.close());
  const [refused] = await L.ports(1); // nobody listens there

  const s = await L.startPprof({
    name: 'pprof-go',
    receiverYaml: `    scrape:
      - targets: [${target}]
        service: pprofapp
        profiles: [cpu, heap, mutex, goroutine]
        interval: 3s
        cpu_duration: 2s
        timeout: 5s
        tags: {env: itest, version: 4.5.6, team: profiling}
      - targets: [${hang.target}, ${html.target}, ${nf.target}, 127.0.0.1:${refused}, "http://scraper:s3cret-pass@127.0.0.1:${refused}/"]
        profiles: [heap]
        interval: 2s
        cpu_duration: 1s
        timeout: 1s
`,
  });
  r.cleanup(() => s.sp.stop());

  // Push: the Go program records 2 s of CPU and POSTs it.
  const pushed = path.join(s.dir, 'pushed-cpu.pprof');
  const url = `${s.base}/v1/pprof?service=pprofapp-push&env=itest&version=1.2.3&type=cpu&tags=team:prof,region:eu`;
  const run = await L.runToEnd(app, ['-mode', 'push', '-seconds', '2', '-push', url, '-out', pushed]);

  await r.test('push answered 204', async () => {
    assert.strictEqual(run.code, 0, run.out);
    assert.match(run.out, /STATUS 204/);
  });

  await r.test('pushed CPU profile reaches the next stage as Go reads it', async () => {
    const line = await L.waitFor(() => s.out().find((l) => l.dialect === 'pprof'), 10000, 'the pushed profile');
    const raw = L.goRaw(pushed);
    assert.strictEqual(line.service, 'pprofapp-push');
    assert.strictEqual(line.env, 'itest');
    assert.strictEqual(line.version, '1.2.3');
    assert.strictEqual(line.profile_type, 'cpu');
    assert.strictEqual(line.family, 'go');
    assert.deepStrictEqual(line.tags, { team: 'prof', region: 'eu' });
    assert.strictEqual(line.attachments.length, 1);
    const a = line.attachments[0];
    assert.strictEqual(a.name, 'cpu.pprof');
    assert.strictEqual(a.compression, 'gzip');
    assert.strictEqual(a.bytes, fs.statSync(pushed).size);
    assert.deepStrictEqual(a.pprof.sample_types, raw.sampleTypes);
    // Go's tool merges samples with equal stacks and labels and drops
    // zero-valued ones, so it never shows more than we decoded; how many it
    // merges depends on the run. The exact check is compareWithGo below.
    assert.ok(a.pprof.samples >= raw.samples.length, `${a.pprof.samples} samples, go tool shows ${raw.samples.length}`);
    assert.ok(raw.samples.length >= 5, `only ${raw.samples.length} samples`);
    // the profile's own window: ~2 s
    const dur = (line.end_ns - line.start_ns) / 1e9;
    assert.ok(dur > 1.5 && dur < 5, `window of ${dur} s`);
    // span_id labels as the program set them
    const seen = new Set(raw.samples.flatMap((x) => x.labels.span_id || []));
    for (const id of spanIds) assert.ok(seen.has(id), `span_id ${id} missing from ${[...seen]}`);
    // what the next stage got is the same profile, and our decoding equals Go's
    assert.strictEqual(L.goRaw(a.pprof.file).text, raw.text);
    L.compareWithGo(pushed);
    L.compareWithGo(a.pprof.file);
  });

  await r.test('scraped CPU profile: labels and values as go tool pprof reads them', async () => {
    const line = await L.waitFor(() => s.out().find((l) => l.dialect === 'scrape' && l.profile_type === 'cpu'), 20000, 'a scraped cpu profile');
    assert.strictEqual(line.service, 'pprofapp');
    assert.strictEqual(line.env, 'itest');
    assert.strictEqual(line.version, '4.5.6');
    assert.deepStrictEqual(line.tags, { team: 'profiling' });
    assert.strictEqual(line.family, 'go');
    const a = line.attachments[0];
    assert.strictEqual(a.name, 'cpu.pprof');
    assert.strictEqual(a.modified, false);
    const raw = L.goRaw(a.pprof.file);
    assert.deepStrictEqual(a.pprof.sample_types, ['samples/count', 'cpu/nanoseconds']);
    assert.ok(a.pprof.samples >= raw.samples.length && raw.samples.length > 0);
    // every labelled worker shows up (over a few scrapes on a busy machine)
    const seen = new Set();
    const read = new Set();
    await L.waitFor(() => {
      for (const l of s.out().filter((x) => x.dialect === 'scrape' && x.profile_type === 'cpu')) {
        const f = l.attachments[0].pprof.file;
        if (read.has(f)) continue;
        read.add(f);
        for (const x of L.goRaw(f).samples) for (const id of x.labels.span_id || []) seen.add(id);
      }
      return spanIds.every((id) => seen.has(id));
    }, 30000, `span ids ${spanIds} in scraped cpu profiles`);
    const dur = (line.end_ns - line.start_ns) / 1e9;
    assert.ok(dur >= 1.5 && dur < 4, `window of ${dur} s (cpu_duration 2s)`);
    L.compareWithGo(a.pprof.file);
  });

  await r.test('heap: first scrape is the baseline, then deltas of alloc_* only', async () => {
    const heap = () => s.out().filter((l) => l.dialect === 'scrape' && l.profile_type === 'heap');
    const line = await L.waitFor(() => heap()[0], 20000, 'a scraped heap delta');
    const m = await s.metrics();
    const ok = h.metricSum(m, 'spanprof_receiver_scrapes_total', { profile: 'heap', result: 'success', target });
    assert.ok(ok >= heap().length + 1, `${ok} successful heap scrapes for ${heap().length} emitted: the first must only set the baseline`);
    const a = line.attachments[0];
    assert.strictEqual(a.name, 'delta-heap.pprof');
    assert.strictEqual(a.modified, true);
    assert.deepStrictEqual(a.pprof.sample_types, ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes']);
    // what we re-encoded is a valid profile for Go, decoded by us the same way
    const delta = L.goRaw(a.pprof.file);
    L.compareWithGo(a.pprof.file);
    // the delta covers one interval, far less than everything allocated since start
    const now = path.join(s.dir, 'heap-now.pprof');
    const res = await h.httpGet(`http://${target}/debug/pprof/heap`);
    fs.writeFileSync(now, res.body);
    const cumulative = L.goRaw(now);
    const d = sum(delta, 'alloc_space/bytes'), c = sum(cumulative, 'alloc_space/bytes');
    assert.ok(d > 0, 'the delta allocated nothing');
    assert.ok(d < c, `delta alloc_space ${d} not below cumulative ${c}`);
    const window = (line.end_ns - line.start_ns) / 1e9;
    assert.ok(window > 1 && window < 8, `delta window of ${window} s for a 3 s interval`);
  });

  await r.test('mutex delta and goroutine profiles arrive', async () => {
    const mutex = await L.waitFor(() => s.out().find((l) => l.profile_type === 'mutex'), 20000, 'a mutex delta');
    assert.strictEqual(mutex.attachments[0].name, 'delta-mutex.pprof');
    assert.deepStrictEqual(mutex.attachments[0].pprof.sample_types, ['contentions/count', 'delay/nanoseconds']);
    L.compareWithGo(mutex.attachments[0].pprof.file);
    const g = await L.waitFor(() => s.out().find((l) => l.profile_type === 'goroutine'), 20000, 'a goroutine profile');
    assert.strictEqual(g.attachments[0].name, 'goroutines.pprof');
    assert.deepStrictEqual(g.attachments[0].pprof.sample_types, ['goroutine/count']);
    L.compareWithGo(g.attachments[0].pprof.file);
  });

  await r.test('bad scrape targets are counted as failures and logged; spanprof stays up', async () => {
    const fails = (t) => async () => {
      const m = await s.metrics();
      return h.metricSum(m, 'spanprof_receiver_scrapes_total', { target: t, result: 'failure' }) >= 1;
    };
    for (const t of [hang.target, html.target, nf.target, `127.0.0.1:${refused}`]) await L.waitFor(fails(t), 15000, `a failed scrape of ${t}`);
    const m = await s.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_scrapes_total', { target: html.target, result: 'success' }), 0);
    const log = s.sp.log();
    assert.match(log, /returned HTML, not a pprof profile: <!doctype html>/);
    assert.match(log, /HTTP 404: 404 page not found/);
    assert.match(log, new RegExp(`from '127.0.0.1:${refused}' failed: .*(refused|connect)`, 'i'));
    assert.match(log, new RegExp(`from '${hang.target}' failed: .*(timed out|timeout)`, 'i'));
    // credentials in a target URL never reach logs or metrics
    await L.waitFor(fails(`http://[REDACTED]@127.0.0.1:${refused}/`), 15000, 'a failed scrape of the URL with credentials');
    assert.doesNotMatch(s.sp.log(), /s3cret-pass/);
    assert.doesNotMatch(JSON.stringify(await s.metrics()), /s3cret-pass/);
    // none of them produced a profile, and the good target still works
    assert.ok(!s.out().some((l) => l.service === '127.0.0.1'), 'a bad target produced a profile');
    assert.ok(await s.healthy());
  });

  await r.test('metrics: accepted per dialect, bytes, last scrape time', async () => {
    const m = await s.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_profiles_total', { dialect: 'pprof' }), 1);
    const scraped = s.out().filter((l) => l.dialect === 'scrape').length;
    assert.ok(h.metricSum(m, 'spanprof_receiver_accepted_profiles_total', { dialect: 'scrape' }) >= scraped);
    assert.ok(h.metricSum(m, 'spanprof_receiver_received_bytes_total', { dialect: 'pprof' }) >= fs.statSync(pushed).size);
    assert.ok(h.metricSum(m, 'spanprof_receiver_received_bytes_total', { dialect: 'scrape' }) > 0);
    const last = h.metricSum(m, 'spanprof_receiver_scrape_last_success_timestamp_seconds', { target, profile: 'cpu' });
    assert.ok(Math.abs(last - Date.now() / 1000) < 30, `last scrape at ${last}`);
  });

  await r.test('shutdown is clean while a CPU scrape is in flight', async () => {
    const res = await s.sp.stop();
    assert.strictEqual(res.code, 0, `exit ${JSON.stringify(res)}\n${s.sp.log().slice(-2000)}`);
  });
}

main().then(() => r.finish(), (e) => r.finish(e));
