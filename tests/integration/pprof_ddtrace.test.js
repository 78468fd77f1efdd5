// pprof receiver as a Datadog agent for profilers: the captured dd-trace-js
// upload fixture replayed, and the real npm dd-trace profiler (Node) pointed
// at spanprof with DD_TRACE_AGENT_URL. Every attachment, tag and header must
// arrive in one envelope at the next stage (the debug exporter), each pprof
// decoded as Go's pprof tool reads it, with the profiler's code-hotspot
// labels intact. The tracer's own trace/telemetry posts are answered and
// dropped (counted), so the tracer sees a healthy agent.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const L = require('./pprof_lib');

const r = L.runner('pprof_ddtrace');
const FIX = h.FIXTURES;
const DDTRACE = path.join(h.SRC, 'tests/integration/node_modules/dd-trace');

// The app dd-trace profiles: an HTTP server with a fast and a slow route,
// and a client calling them until it is time to go.
const APP = `
const http = require('node:http');
const crypto = require('node:crypto');
function burn(ms) { const end = Date.now() + ms; while (Date.now() < end) crypto.createHash('sha256').update('x'.repeat(4096)).digest(); }
const srv = http.createServer((req, res) => { burn(req.url === '/api/slow' ? 6 : 2); res.end('ok'); });
srv.listen(0, '127.0.0.1', async () => {
  const port = srv.address().port;
  const until = Date.now() + Number(process.env.RUN_MS);
  let i = 0;
  while (Date.now() < until) {
    await new Promise((ok) => http.get({ port, path: i++ % 2 ? '/api/slow' : '/api/fast' }, (r) => { r.resume(); r.on('end', ok); }).on('error', ok));
  }
  // stay up a little so the last periodic upload happens
  setTimeout(() => { srv.close(); process.exit(0); }, Number(process.env.TAIL_MS));
});
`;

function tagsProfilerOf(eventJson) {
  return Object.fromEntries(JSON.parse(eventJson).tags_profiler.split(',').map((t) => {
    const i = t.indexOf(':');
    return [t.slice(0, i), t.slice(i + 1)];
  }));
}

async function main() {
  const s = await L.startPprof({ name: 'pprof-ddtrace' });
  r.cleanup(() => s.sp.stop());

  await r.test('GET /info lists /profiling/v1/input like an agent', async () => {
    const res = await h.httpGet(`${s.base}/info`);
    assert.strictEqual(res.status, 200);
    const info = JSON.parse(res.body);
    assert.ok(info.endpoints.includes('/profiling/v1/input'));
    assert.ok(info.endpoints.includes('/v0.4/traces'));
    assert.ok(!info.endpoints.includes('/v0.7/config'), 'no remote config here');
    assert.match(info.version, /^spanprof-/);
  });

  await r.test('the captured dd-trace-js upload arrives whole', async () => {
    const body = fs.readFileSync(path.join(FIX, 'dd-profile-upload.multipart'));
    const hdrs = JSON.parse(fs.readFileSync(path.join(FIX, 'dd-profile-upload.headers.json')));
    const res = await h.httpRequest(`${s.base}/profiling/v1/input`, {
      headers: { ...hdrs, 'datadog-container-id': 'c0ffee1234' }, body,
    });
    assert.strictEqual(res.status, 200, res.body.toString());
    assert.deepStrictEqual(JSON.parse(res.body), { accepted: 2, dropped: [] });
    const line = await L.waitFor(() => s.out().find((l) => l.service === 'dd-profile-app'), 10000, 'the fixture upload');
    const parts = h.parseMultipart(body, hdrs['content-type']);
    const ev = parts.find((p) => p.name === 'event').data.toString();
    const tp = tagsProfilerOf(ev);
    assert.strictEqual(line.dialect, 'datadog');
    assert.strictEqual(line.env, tp.env);
    assert.strictEqual(line.version, tp.version);
    assert.strictEqual(line.runtime_id, tp['runtime-id']);
    assert.strictEqual(line.family, 'node');
    assert.strictEqual(line.origin, 'dd-trace-js');
    assert.strictEqual(line.origin_version, '5.132.0');
    assert.strictEqual(line.container_id, 'c0ffee1234');
    const rest = { ...tp };
    for (const k of ['service', 'env', 'version', 'runtime-id']) delete rest[k];
    assert.deepStrictEqual(line.tags, rest);
    const evj = JSON.parse(ev);
    assert.strictEqual(line.start_ns, Date.parse(evj.start) * 1e6);
    assert.strictEqual(line.end_ns, Date.parse(evj.end) * 1e6);
    assert.deepStrictEqual(line.attachments.map((a) => a.name), evj.attachments);
    for (const a of line.attachments) {
      const part = parts.find((p) => p.name === a.name);
      assert.strictEqual(a.bytes, part.data.length);
      assert.strictEqual(a.compression, 'gzip');
      const tmp = path.join(s.dir, `fixture-${a.name}`);
      fs.writeFileSync(tmp, part.data);
      const raw = L.goRaw(tmp);
      assert.ok(a.pprof.samples >= raw.samples.length && raw.samples.length > 0);
      assert.deepStrictEqual(a.pprof.sample_types, raw.sampleTypes);
      assert.strictEqual(fs.readFileSync(a.pprof.file).compare(part.data), 0, 'bytes changed on the way');
      L.compareWithGo(a.pprof.file);
    }
  });

  const [pkg] = [JSON.parse(fs.readFileSync(path.join(DDTRACE, 'package.json')))];
  const appFile = path.join(s.dir, 'app.js');
  fs.writeFileSync(appFile, APP);
  const run = await L.runToEnd(process.execPath, ['--require', path.join(DDTRACE, 'init.js'), appFile], {
    timeoutMs: 90000,
    env: {
      ...process.env,
      DD_TRACE_AGENT_URL: s.base,
      DD_PROFILING_ENABLED: 'true',
      DD_PROFILING_UPLOAD_PERIOD: '2',
      DD_PROFILING_PROFILERS: 'wall,space',
      DD_SERVICE: 'ddtrace-app',
      DD_ENV: 'itest',
      DD_VERSION: '3.2.1',
      DD_TAGS: 'team:profiling,owner:spanprof',
      DD_TRACE_DEBUG: 'false',
      RUN_MS: '6000',
      TAIL_MS: '2500',
    },
  });

  await r.test('the real dd-trace profiler uploads through spanprof', async () => {
    assert.strictEqual(run.code, 0, run.out);
    const mine = () => s.out().filter((l) => l.service === 'ddtrace-app');
    await L.waitFor(() => mine().length >= 2, 20000, 'two uploads from dd-trace');
    const line = mine()[0];
    assert.strictEqual(line.dialect, 'datadog');
    assert.strictEqual(line.env, 'itest');
    assert.strictEqual(line.version, '3.2.1');
    assert.match(line.runtime_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.strictEqual(line.family, 'node');
    assert.strictEqual(line.origin, 'dd-trace-js');
    assert.strictEqual(line.origin_version, pkg.version);
    assert.strictEqual(line.tags.team, 'profiling');
    assert.strictEqual(line.tags.owner, 'spanprof');
    assert.strictEqual(line.tags.language, 'javascript');
    const names = line.attachments.map((a) => a.name);
    for (const n of ['wall.pprof', 'space.pprof']) assert.ok(names.includes(n), `${n} missing from ${names}`);
    for (const a of line.attachments) {
      assert.ok(a.pprof, `${a.name} was not decoded`);
      // Go's tool merges samples with equal stacks and labels: never more than ours
      const raw = L.goRaw(a.pprof.file);
      assert.ok(a.pprof.samples >= raw.samples.length, a.name);
      L.compareWithGo(a.pprof.file);
    }
    const window = (line.end_ns - line.start_ns) / 1e9;
    assert.ok(window > 0.5 && window < 10, `window ${window} s`);
  });

  await r.test('code hotspots labels survive (span id, local root span id)', async () => {
    const walls = s.out().filter((l) => l.service === 'ddtrace-app')
      .flatMap((l) => l.attachments.filter((a) => a.name === 'wall.pprof'));
    const labelled = walls.some((a) => L.goRaw(a.pprof.file).samples.some((x) => x.labels['local root span id'] && x.labels['span id']));
    assert.ok(labelled, 'no wall sample carries span id labels');
  });

  await r.test("the tracer's own posts are answered and dropped", async () => {
    const m = await s.metrics();
    assert.ok(h.metricSum(m, 'spanprof_receiver_tracer_requests_dropped_total') >= 1, 'dd-trace sent no traces/telemetry?');
    assert.ok(h.metricSum(m, 'spanprof_receiver_accepted_profiles_total', { dialect: 'datadog' }) >= 3);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_profiles_total', { dialect: 'datadog' }), 0);
    assert.doesNotMatch(run.out, /Error|error/, `dd-trace complained:\n${run.out}`);
    const res = await h.httpRequest(`${s.base}/v0.4/traces`, { method: 'PUT', headers: { 'content-type': 'application/msgpack' }, body: Buffer.from([0x90]) });
    assert.strictEqual(res.status, 200);
    assert.deepStrictEqual(JSON.parse(res.body), { rate_by_service: {} });
    assert.strictEqual((await h.httpGet(`${s.base}/v0.7/config`)).status, 404);
    // Logged once (with how to send spans), however many were dropped.
    const warns = s.sp.log().split('\n').filter((l) => l.includes('a Datadog tracer sends its own traces here'));
    assert.strictEqual(warns.length, 1, `one warning about dropped tracer traffic:\n${s.sp.log()}`);
    assert.match(warns[0], /level=warn .*1 so far .*spans over OTLP: export them with the OpenTelemetry SDK to OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
}

main().then(() => r.finish(), (e) => r.finish(e));
