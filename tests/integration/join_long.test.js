// Long requests keep their endpoint (issue 18): the real spanprof binary,
// the Go demo service (examples/demo-service) pushing its runtime/pprof CPU
// profiles to /v1/pprof and exporting its spans over OTLP/HTTP when they
// end, and a recording Datadog intake.
//
// Scale: the issue's case is requests of 5, 15 and 30 s of CPU against
// 10 s profiles and max_hold 120 s. CI keeps the ratio of request length
// to profile window at a tenth of the time: windows of 1 s, requests of
// 0.4, 1.2 and 2.4 s of CPU (0.4, 1.2 and 2.4 windows) plus a long GET
// /api/reports/{id} of 3.2 s (3.2 windows), join_delay 2 s. hold_grace
// (30 s, the production default) and max_hold (90 s) are not scaled down:
// they bound wall time, and on the shared 2-core test machine (load
// average 20 while this was written) requests ran up to 10 times their
// CPU time: a root's own samples stop when its child span starts and its
// span comes when the request ends, so hold_grace must outlast the
// child's phase in wall time (runs with 6 s and 15 s lost 1-3 % of the
// CPU, the roots' share of slowed requests). What the hold depends on,
// how many windows a request outlives, is kept.
//
//  1. long requests: >= 99 % of the span-labelled CPU gets the right
//     `trace endpoint` and every endpoint's share is within 2 points of the
//     service's own ground truth; held profiles are released because their
//     spans arrived (not at max_hold, not at shutdown);
//  2. 10 % head sampling (labels on every request, spans exported for
//     10 % of the traces): the labelled share of the CPU equals the sampled
//     share (2 points) and profiles are not all delayed to max_hold (the
//     median hold, upload time minus profile end, is printed and must stay
//     under half of max_hold);
//  3. a request longer than max_hold (a 6 s report against max_hold 2 s):
//     its profiles are released at max_hold, counted expired, none held
//     longer, nothing left held;
//  4. memory: a burst of large profiles naming spans that never come,
//     beyond max_held_bytes: the held bytes stay under the bound, the
//     oldest are released early and counted, RSS stays bounded, every
//     profile reaches the intake.
'use strict';

const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const zlib = require('node:zlib');
const h = require('./lib/harness');

const WINDOW_S = 1;
const MAX_HOLD_S = 90;

function startProcess(cmd, args, logFile) {
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, log: () => fs.readFileSync(logFile, 'utf8') };
}

function hexToDec(hex) {
  return BigInt(`0x${hex}`).toString();
}

// spanprof's configuration: OTLP/HTTP and the pprof intake in, the join,
// the recording intake out.
function spanprofYaml({ httpPort, pprofPort, healthPort, metricsPort, intake, join }) {
  return `
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:${httpPort} } } }
  pprof: { endpoint: 127.0.0.1:${pprofPort} }
processors:
  join: ${join}
exporters:
  datadog:
    api: { key: "join-long-key" }
    traces: { endpoint: ${intake.url} }
    profiles: { endpoint: ${intake.url} }
    retry_on_failure: { initial_interval: 200ms, max_interval: 1s }
extensions:
  health_check: { endpoint: 127.0.0.1:${healthPort} }
service:
  extensions: [health_check]
  pipelines:
    traces: { receivers: [otlp], processors: [join], exporters: [datadog] }
    profiles: { receivers: [pprof], processors: [join], exporters: [datadog] }
  telemetry:
    metrics: { address: 127.0.0.1:${metricsPort} }
`;
}

// spanprof + intake + one demo instance with `demoArgs`; returns what the
// intake recorded, the truth file and spanprof's final metrics.
async function run(t, name, demoArgs, join = `{ join_delay: 2s, hold_grace: 30s, max_hold: ${MAX_HOLD_S}s, span_ttl: 120s }`) {
  const work = h.tmpDir(`join-long-${name}`);
  const demoBin = path.join(h.BUILD, 'join-long', 'demo-service');
  if (!fs.existsSync(demoBin)) {
    execFileSync('bash', [path.join(h.SRC, 'examples/demo-service/build.sh'), demoBin], { stdio: 'inherit' });
  }
  const intake = await h.startIntake();
  t.after(() => intake.close());
  const [httpPort, pprofPort, healthPort, metricsPort] = await Promise.all(
    Array.from({ length: 4 }, () => h.freePort()));
  const yaml = spanprofYaml({ httpPort, pprofPort, healthPort, metricsPort, intake, join }) +
    '  shutdown_timeout: 15s\n';
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: `join-long-${name}` });
  t.after(() => sp.kill());
  const truthFile = path.join(work, 'truth.json');
  const demo = startProcess(demoBin, ['-listen', '127.0.0.1:0', '-service', `long-${name}`,
    '-otlp-endpoint', `http://127.0.0.1:${httpPort}`, '-batch-delay', '500ms',
    '-push-url', `http://127.0.0.1:${pprofPort}/v1/pprof`, '-push-period', `${WINDOW_S}s`,
    '-truth', truthFile, ...demoArgs], path.join(work, 'demo.log'));
  t.after(() => demo.child.kill('SIGKILL'));
  const exit = await demo.exited;
  assert.strictEqual(exit.code, 0, `demo failed:\n${demo.log()}`);

  // Every span is exported now: what is held must be released because its
  // spans arrived or its ids were given up, without a shutdown.
  const deadline = Date.now() + (MAX_HOLD_S + 10) * 1000;
  let m = await sp.metrics();
  while (h.metricSum(m, 'spanprof_join_held_profiles') > 0 && Date.now() < deadline) {
    await h.sleep(500);
    m = await sp.metrics();
  }
  const stop = await sp.stop(30000);
  assert.strictEqual(stop.code, 0, `spanprof exit ${JSON.stringify(stop)}:\n${sp.log()}`);
  const truth = JSON.parse(fs.readFileSync(truthFile, 'utf8'));
  const uploads = intake.requests.filter((r) => r.url === '/api/v2/profile').map((rec) => {
    const parts = h.parseMultipart(rec.body, rec.headers['content-type']);
    const event = JSON.parse(parts.find((p) => p.name === 'event').data.toString());
    const cpu = parts.find((p) => /\.pprof$/.test(p.filename || ''));
    return { at: rec.at, event, prof: h.decodePprof(cpu.data) };
  });
  assert.strictEqual(uploads.length, h.metricSum(m, 'spanprof_receiver_accepted_profiles_total'),
    'every accepted profile reaches the intake');
  return { truth, uploads, metrics: m };
}

// CPU (ns) of the span-labelled samples: total, with the truth's endpoint,
// by labelled endpoint.
function tally(truth, uploads) {
  const out = { inSpan: 0, right: 0, labelled: 0, byEndpoint: {}, sampledCpu: 0, missed: {} };
  for (const u of uploads) {
    const idx = u.prof.sampleTypes.indexOf('cpu/nanoseconds');
    for (const s of u.prof.samples) {
      const sid = s.labels.span_id;
      if (!sid || !truth.spans[sid]) continue;
      const ns = s.values[idx];
      out.inSpan += ns;
      const want = truth.spans[sid].endpoint;
      const got = s.labels['trace endpoint'];
      if (truth.spans[truth.spans[sid].local_root]?.exported) out.sampledCpu += ns;
      if (!got) {
        const k = `${truth.spans[sid].name} (${truth.spans[sid].kind})`;
        out.missed[k] = (out.missed[k] || 0) + ns;
        continue;
      }
      out.labelled += ns;
      if (got === want) {
        out.right += ns;
        assert.strictEqual(s.labels['local root span id'], hexToDec(truth.spans[sid].local_root));
      }
      out.byEndpoint[got] = (out.byEndpoint[got] || 0) + ns;
    }
  }
  return out;
}

test('long requests keep their endpoint', { timeout: 240000 }, async (t) => {
  const { truth, uploads, metrics } = await run(t, 'all', ['-unit', '400ms', '-cpu', 'reports=3200ms',
    '-load', '30s', '-load-rps', '0.4', '-load-concurrency', '3', '-long-every', '8s']);
  const r = tally(truth, uploads);
  const total = Object.values(r.byEndpoint).reduce((a, b) => a + b, 0);
  const lines = Object.entries(truth.endpoints).filter(([, e]) => e.requests > 0).map(([ep, e]) => {
    const got = (r.byEndpoint[ep] || 0) / total;
    return { ep, got, want: e.share, requests: e.requests };
  });
  console.log(`${uploads.length} profiles; ${(r.inSpan / 1e9).toFixed(1)} s of span-labelled CPU, ` +
    `${(100 * r.right / r.inSpan).toFixed(2)} % labelled with the right endpoint`);
  for (const l of lines) {
    console.log(`  ${l.ep.padEnd(20)} ${(100 * l.got).toFixed(1).padStart(5)} %  truth ` +
      `${(100 * l.want).toFixed(1).padStart(5)} %  (${l.requests} requests)`);
  }
  const held = (reason) => h.metricSum(metrics, 'spanprof_join_held_profiles_total', { reason });
  console.log('unlabelled CPU by span: ' + (Object.entries(r.missed).map(([k, v]) => `${k} ${(v / 1e9).toFixed(2)} s`).join(', ') || 'none'));
  console.log(`held profiles released: resolved ${held('resolved')}, never_exported ${held('never_exported')}, ` +
    `expired ${held('expired')}, bound ${held('bound_reached')}, shutdown ${held('shutdown')}; ` +
    `samples labelled on arrival ${h.metricSum(metrics, 'spanprof_join_labelled_samples_total', { when: 'arrival' })}, ` +
    `after a hold ${h.metricSum(metrics, 'spanprof_join_labelled_samples_total', { when: 'after_hold' })}`);
  assert.ok(r.inSpan > 5e9, `only ${r.inSpan / 1e9} s of span-labelled CPU`);
  assert.ok(r.right / r.inSpan >= 0.99, `${(100 * r.right / r.inSpan).toFixed(2)} % of the work CPU labelled right`);
  assert.ok(lines.some((l) => l.ep === 'GET /api/reports/{id}'), 'no long request ran');
  for (const l of lines) {
    assert.ok(Math.abs(l.got - l.want) <= 0.02, `${l.ep}: ${(100 * l.got).toFixed(1)} % vs truth ${(100 * l.want).toFixed(1)} %`);
  }
  assert.ok(held('resolved') >= 3, 'long requests held profiles that their spans released');
  assert.strictEqual(held('expired') + held('bound_reached') + held('shutdown'), 0);
});

test('10 % head sampling: sampled share labelled, holds end with the requests', { timeout: 240000 }, async (t) => {
  const { truth, uploads, metrics } = await run(t, 'sampled', ['-unit', '100ms', '-sample-ratio', '0.1',
    '-load', '30s', '-load-rps', '3', '-load-concurrency', '3']);
  const r = tally(truth, uploads);
  const holds = uploads.map((u) => (u.at - Date.parse(u.event.end)) / 1000).sort((a, b) => a - b);
  const median = holds[Math.floor(holds.length / 2)];
  const roots = Object.entries(truth.spans).filter(([id, s]) => s.local_root === id);
  const sampledRoots = roots.filter(([, s]) => s.exported).length;
  const held = (reason) => h.metricSum(metrics, 'spanprof_join_held_profiles_total', { reason });
  console.log(`${uploads.length} profiles; ${sampledRoots} of ${roots.length} requests sampled; ` +
    `labelled ${(100 * r.labelled / r.inSpan).toFixed(1)} % of the span-labelled CPU, sampled share ` +
    `${(100 * r.sampledCpu / r.inSpan).toFixed(1)} %; upload delay after the profile's end: median ` +
    `${median.toFixed(1)} s, max ${holds[holds.length - 1].toFixed(1)} s (max_hold ${MAX_HOLD_S} s); ` +
    `released: resolved ${held('resolved')}, never_exported ${held('never_exported')}, expired ${held('expired')}; ` +
    `unresolved samples never_exported ${h.metricSum(metrics, 'spanprof_join_unresolved_samples_total', { reason: 'never_exported' })}`);
  // ~90 requests: P(none of them sampled) = 0.9^90 < 1e-4 (36 requests once gave 0).
  assert.ok(roots.length >= 40 && sampledRoots >= 1, `${sampledRoots} of ${roots.length} requests sampled`);
  assert.ok(Math.abs(r.labelled - r.sampledCpu) / r.inSpan <= 0.02,
    `labelled ${r.labelled} vs sampled ${r.sampledCpu} of ${r.inSpan} ns`);
  assert.strictEqual(r.right, r.labelled, 'a labelled sample names another endpoint than its truth');
  assert.ok(median < MAX_HOLD_S / 2, `median hold ${median} s`);
  assert.strictEqual(held('expired'), 0);
});

test('a request longer than max_hold: released at max_hold, counted expired', { timeout: 180000 }, async (t) => {
  const { truth, uploads, metrics } = await run(t, 'expired', ['-unit', '100ms', '-cpu', 'reports=6s',
    '-load', '4s', '-load-rps', '1', '-load-concurrency', '2', '-long-every', '100s'],
  '{ join_delay: 1s, hold_grace: 1s, max_hold: 2s, span_ttl: 30s }');
  const r = tally(truth, uploads);
  const held = (reason) => h.metricSum(metrics, 'spanprof_join_held_profiles_total', { reason });
  const within = h.metricSum(metrics, 'spanprof_join_hold_seconds_bucket', { le: '5' });
  const count = h.metricSum(metrics, 'spanprof_join_hold_seconds_count');
  console.log(`${uploads.length} profiles; expired ${held('expired')} (samples ` +
    `${h.metricSum(metrics, 'spanprof_join_unresolved_samples_total', { reason: 'expired' })}), resolved ` +
    `${held('resolved')}, never_exported ${held('never_exported')}; ${within} of ${count} holds <= 5 s; ` +
    `unlabelled CPU by span: ${Object.entries(r.missed).map(([k, v]) => `${k} ${(v / 1e9).toFixed(2)} s`).join(', ')}`);
  assert.ok(truth.endpoints['GET /api/reports/{id}']?.requests === 1, 'the long request ran');
  assert.ok(held('expired') >= 1, 'no profile expired');
  assert.ok(h.metricSum(metrics, 'spanprof_join_unresolved_samples_total', { reason: 'expired' }) > 0);
  assert.strictEqual(h.metricSum(metrics, 'spanprof_join_held_profiles'), 0, 'something is still held');
  assert.strictEqual(within, count, 'a profile was held longer than max_hold (+ timer slack)');
  assert.strictEqual(held('shutdown'), 0);
  assert.ok(Object.keys(r.missed).some((k) => k.includes('reports')), 'the long request kept its endpoint?');
});

// A CPU profile of n samples, each naming a random span id (a burst the
// join has to hold: none of the ids ever arrives), gzipped.
function burstProfile(n) {
  const strings = ['', 'samples', 'count', 'cpu', 'nanoseconds', 'span_id', 'main.work'];
  const samples = [];
  const hex = require('node:crypto').randomBytes(8 * n).toString('hex');
  for (let i = 0; i < n; i++) {
    strings.push(hex.slice(16 * i, 16 * i + 15) + '1'); // never 0
    samples.push({ location_id: [1], value: [1, 10000000], label: [{ key: 5, str: strings.length - 1 }] });
  }
  const P = h.protos().lookupType('perftools.profiles.Profile');
  const msg = P.fromObject({
    sample_type: [{ type: 1, unit: 2 }, { type: 3, unit: 4 }], sample: samples,
    location: [{ id: 1, line: [{ function_id: 1 }] }], function: [{ id: 1, name: 6 }],
    string_table: strings, period_type: { type: 3, unit: 4 }, period: 10000000,
    duration_nanos: 1e9, time_nanos: Date.now() * 1e6,
  });
  return zlib.gzipSync(P.encode(msg).finish());
}

test('memory: a burst of large held profiles stays under max_held_bytes', { timeout: 120000 }, async (t) => {
  const intake = await h.startIntake();
  t.after(() => intake.close());
  const [pprofPort, httpPort, healthPort, metricsPort] = await Promise.all(
    Array.from({ length: 4 }, () => h.freePort()));
  const sp = await h.startSpanprof(spanprofYaml({ httpPort, pprofPort, healthPort, metricsPort, intake,
    join: '{ max_held_bytes: 4MiB, hold_grace: 60s, max_hold: 120s }' }), { healthPort, metricsPort, name: 'join-burst' });
  t.after(() => sp.kill());
  const N = 16;
  const SAMPLES = 30000;
  const bodies = Array.from({ length: N }, () => burstProfile(SAMPLES));
  const rss0 = h.metricSum(await sp.metrics(), 'spanprof_process_resident_memory_bytes');
  let maxHeld = 0;
  let maxRss = 0;
  for (let i = 0; i < N; i++) {
    const r = await h.httpRequest(`http://127.0.0.1:${pprofPort}/v1/pprof?service=burst&type=cpu`,
      { headers: { 'content-type': 'application/octet-stream' }, body: bodies[i], timeoutMs: 20000 });
    assert.ok(r.status >= 200 && r.status < 300, `upload ${i}: ${r.status} ${r.body}`);
    const m = await sp.metrics();
    maxHeld = Math.max(maxHeld, h.metricSum(m, 'spanprof_join_held_bytes'));
    maxRss = Math.max(maxRss, h.metricSum(m, 'spanprof_process_resident_memory_bytes'));
  }
  const m = await sp.metrics();
  const bound = h.metricSum(m, 'spanprof_join_held_profiles_total', { reason: 'bound_reached' });
  const held = h.metricSum(m, 'spanprof_join_held_profiles');
  console.log(`burst of ${N} profiles of ${(bodies[0].length / 1024).toFixed(0)} KiB gzip: held at most ` +
    `${(maxHeld / 1048576).toFixed(2)} MiB (max_held_bytes 4 MiB), ${bound} released early, ${held} still held; ` +
    `RSS ${(rss0 / 1048576).toFixed(1)} MiB before, at most ${(maxRss / 1048576).toFixed(1)} MiB during`);
  assert.ok(maxHeld > 0 && maxHeld <= 4 * 1048576, `held ${maxHeld} bytes`);
  assert.ok(bound >= N - 6, `only ${bound} released early`);
  assert.strictEqual(bound + held, N);
  assert.ok(h.metricSum(m, 'spanprof_join_unresolved_samples_total', { reason: 'bound_reached' }) === bound * SAMPLES);
  assert.ok(maxRss - rss0 < 96 * 1048576, `RSS grew ${(maxRss - rss0) / 1048576} MiB`);
  const stop = await sp.stop(30000);
  assert.strictEqual(stop.code, 0);
  const uploads = intake.requests.filter((r) => r.url === '/api/v2/profile');
  assert.strictEqual(uploads.length, N, 'every profile reaches the intake (the rest at shutdown)');
});
