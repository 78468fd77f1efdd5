// datadog exporter, profiles end to end: the Go fixture's spans (OTLP/HTTP
// JSON) and its CPU profile with OTel-style span_id labels (plain pprof push)
// go through the pprof receiver and the join into the datadog exporter,
// which uploads them to a recording fake profile intake (agentless
// /api/v2/profile, then agent mode /profiling/v1/input). The upload is parsed
// back: headers, the event part (event.json fields) and the re-encoded
// cpu pprof, on which `go tool pprof -tags` must show `trace endpoint`
// values equal to the Datadog resources of the fixture's endpoints.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const d = require('./datadog_lib');

const FIX = h.FIXTURES;

async function scenario(r, agent) {
  const mode = agent ? 'agent' : 'agentless';
  const route = agent ? '/profiling/v1/input' : '/api/v2/profile';
  const intake = await h.startIntake();
  const [otlpPort, pprofPort, healthPort, metricsPort] = await d.ports(4);
  const sp = await h.startSpanprof(d.config({ otlpPort, pprofPort, healthPort, metricsPort, intake: intake.url, agent, join: true }), { healthPort, metricsPort, name: `dd-prof-${mode}` });
  try {
    const spans = fs.readFileSync(path.join(FIX, 'go-spans.json'));
    let res = await h.httpRequest(`http://127.0.0.1:${otlpPort}/v1/traces`, { headers: { 'content-type': 'application/json' }, body: spans });
    assert.strictEqual(res.status, 200, `OTLP export answered ${res.status}: ${res.body}`);
    const pprof = fs.readFileSync(path.join(FIX, 'go-cpu-spanid.pprof'));
    res = await h.httpRequest(`http://127.0.0.1:${pprofPort}/v1/pprof?service=goapp-fixture&type=cpu&version=1.0.0`, { headers: { 'content-type': 'application/octet-stream' }, body: pprof });
    assert.ok(res.status >= 200 && res.status < 300, `pprof push answered ${res.status}: ${res.body}`);
    const uploads = () => intake.requests.filter((q) => q.url === route);
    await d.waitFor(() => uploads().length >= 1, 30000, `a profile upload at ${route}`);
    const q = uploads()[0];
    const parts = h.parseMultipart(q.body, q.headers['content-type']);
    const event = parts.find((p) => p.name === 'event');
    const atts = parts.filter((p) => p.name !== 'event');
    const ev = JSON.parse(event.data.toString());
    const truth = JSON.parse(fs.readFileSync(path.join(FIX, 'go-truth.json')));
    const endpoints = Object.keys(truth.endpoints);

    await r.test(`${mode}: upload headers`, async () => {
      assert.strictEqual(q.method, 'POST');
      assert.match(q.headers['content-type'], /^multipart\/form-data; boundary=/);
      assert.strictEqual(q.headers['dd-evp-origin'], 'spanprof');
      assert.ok(q.headers['dd-evp-origin-version']);
      if (agent) assert.strictEqual(q.headers['dd-api-key'], undefined);
      else assert.strictEqual(q.headers['dd-api-key'], d.KEY);
    });
    await r.test(`${mode}: event.json`, async () => {
      assert.strictEqual(event.filename, 'event.json');
      assert.strictEqual(event.headers['content-type'], 'application/json');
      assert.strictEqual(ev.version, '4');
      assert.deepStrictEqual(ev.attachments, atts.map((p) => p.name));
      assert.match(ev.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.match(ev.end, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.ok(ev.start < ev.end);
      const tags = ev.tags_profiler.split(',');
      assert.ok(tags.includes('service:goapp-fixture'), ev.tags_profiler);
      assert.ok(tags.includes('env:itest'), ev.tags_profiler);
      assert.ok(tags.includes('version:1.0.0'), ev.tags_profiler);
      if (ev.endpoint_counts) {
        for (const k of Object.keys(ev.endpoint_counts)) assert.ok(endpoints.includes(k), `unknown endpoint '${k}'`);
      }
      for (const p of atts) assert.strictEqual(p.filename, p.name);
    });
    await r.test(`${mode}: go tool pprof -tags shows the trace endpoints`, async () => {
      const cpu = atts.find((p) => /\.pprof$/.test(p.name));
      assert.ok(cpu, `no pprof attachment in ${atts.map((p) => p.name)}`);
      assert.ok(cpu.data[0] === 0x1f && cpu.data[1] === 0x8b, 'the re-encoded pprof is gzip');
      const dir = h.tmpDir('ddprof');
      const file = path.join(dir, cpu.name);
      fs.writeFileSync(file, cpu.data);
      const out = execFileSync('go', ['tool', 'pprof', '-tags', file], {
        env: { ...process.env, HOME: dir, GOCACHE: path.join(dir, 'gocache'), PPROF_TMPDIR: dir, GOFLAGS: '', GOPROXY: 'off' },
        encoding: 'utf8',
      });
      assert.match(out, /trace endpoint/, out);
      const seen = endpoints.filter((e) => out.includes(e));
      assert.ok(seen.length >= 2, `endpoints in pprof -tags: ${seen} of ${endpoints}\n${out}`);
      const decoded = h.decodePprof(cpu.data);
      const labelled = decoded.samples.filter((s) => s.labels['trace endpoint']);
      assert.ok(labelled.length > 0);
      for (const s of labelled) assert.ok(endpoints.includes(s.labels['trace endpoint']), s.labels['trace endpoint']);
    });
    await r.test(`${mode}: metrics`, async () => {
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_profiles_total', { component: 'datadog' }), uploads().length);
      assert.ok(h.metricSum(m, 'spanprof_exporter_payload_bytes_total', { signal: 'profiles' }) > 0);
    });
  } finally {
    await sp.stop();
    await intake.close();
  }
}

(async () => {
  const r = d.runner();
  await scenario(r, false);
  await scenario(r, true);
  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
