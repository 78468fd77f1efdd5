// The service lifecycle with the real binary over real sockets:
//  - start with tests/data/config/lifecycle.yaml (ports from ${env:}), wait
//    for the health check (two health_check instances: default path and a
//    custom one), check its JSON, 404/405, /metrics (Prometheus text with
//    process uptime) and `spanprof healthcheck`;
//  - open an OTLP/gRPC export and leave it unfinished, send SIGTERM: the
//    receiver keeps draining the in-flight request, so the health check
//    must now answer 503 "Server shutting down" (and `spanprof healthcheck`
//    exit 1); then finish the request: it is answered (grpc-status 0), its
//    spans reach the debug exporter, and spanprof exits 0 well within
//    service.shutdown_timeout;
//  - `spanprof validate` on a broken file prints every error as
//    file:line:col and exits 1 (tests/data/config/broken.yaml);
//  - `spanprof print-config` and `validate` never show a secret given
//    through the environment (tests/data/config/secret.yaml).
'use strict';

const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http2 = require('node:http2');
const path = require('node:path');
const h = require('./lib/harness');

const DATA = path.join(h.SRC, 'tests/data/config');
const SHUTDOWN_TIMEOUT_S = 5;

function run(args, { env = {}, cwd } = {}) {
  const r = spawnSync(h.BIN, args, { env: { ...process.env, ...env }, cwd, encoding: 'utf8', timeout: 20000 });
  return { code: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

async function ports() {
  const names = ['LC_GRPC_PORT', 'LC_HEALTH_PORT', 'LC_HEALTH2_PORT', 'LC_METRICS_PORT'];
  const env = {};
  for (const n of names) env[n] = String(await h.freePort());
  return env;
}

// Starts spanprof and waits for a 200 from the health check. Retries with
// new ports when one was taken in between (freePort cannot reserve).
async function start(dir) {
  for (let attempt = 1; ; attempt++) {
    const env = { ...(await ports()), LC_OUT: path.join(dir, 'out.jsonl') };
    const logPath = path.join(dir, `spanprof-${attempt}.log`);
    const log = fs.openSync(logPath, 'w');
    const child = spawn(h.BIN, ['--config', path.join(DATA, 'lifecycle.yaml')], {
      env: { ...process.env, ...env }, stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    let exited = null;
    const exit = new Promise((resolve) => child.on('exit', (code, signal) => {
      exited = { code, signal, at: Date.now() };
      resolve(exited);
    }));
    const sp = { child, env, exit, logPath, exited: () => exited, log: () => fs.readFileSync(logPath, 'utf8') };
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exited) {
        if (attempt < 3 && /in use/.test(sp.log())) break;
        throw new Error(`spanprof exited early (${JSON.stringify(exited)}):\n${sp.log()}`);
      }
      try {
        const r = await h.httpGet(`http://127.0.0.1:${env.LC_HEALTH_PORT}/`, 500);
        if (r.status === 200) return sp;
      } catch (e) { /* not up yet */ }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`spanprof did not become healthy:\n${sp.log()}`);
      }
      await h.sleep(50);
    }
  }
}

function checkHealthBody(r, status) {
  assert.match(r.headers['content-type'], /^application\/json/);
  const body = JSON.parse(r.body.toString());
  assert.strictEqual(body.status, status);
  assert.ok(!Number.isNaN(Date.parse(body.upSince)), `upSince '${body.upSince}' is a date`);
  assert.ok(Math.abs(Date.parse(body.upSince) - Date.now()) < 120000, 'upSince is recent');
  assert.match(body.uptime, /^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$/, `uptime '${body.uptime}'`);
  return body;
}

async function checkRunning(sp) {
  const { LC_HEALTH_PORT: hp, LC_HEALTH2_PORT: hp2, LC_METRICS_PORT: mp } = sp.env;
  let r = await h.httpGet(`http://127.0.0.1:${hp}/`);
  assert.strictEqual(r.status, 200);
  checkHealthBody(r, 'Server available');
  r = await h.httpGet(`http://127.0.0.1:${hp2}/health/status`);
  assert.strictEqual(r.status, 200, 'custom path');
  checkHealthBody(r, 'Server available');
  r = await h.httpGet(`http://127.0.0.1:${hp2}/`);
  assert.strictEqual(r.status, 404, 'other paths are not the health check');
  r = await h.httpRequest(`http://127.0.0.1:${hp}/`, { method: 'POST', body: 'x' });
  assert.strictEqual(r.status, 405);
  assert.strictEqual(r.headers.allow, 'GET, HEAD');
  console.log('ok   health check: 200 on both instances, 404 elsewhere, 405 on POST');

  const hc = run(['healthcheck', '--endpoint', `127.0.0.1:${hp}`]);
  assert.strictEqual(hc.code, 0, `healthcheck: ${hc.stdout}${hc.stderr}`);
  assert.match(hc.stdout, /^200 \{"status":"Server available"/);
  console.log('ok   spanprof healthcheck exits 0 while running');

  r = await h.httpGet(`http://127.0.0.1:${mp}/metrics`);
  assert.strictEqual(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = r.body.toString();
  assert.match(text, /^# TYPE spanprof_process_uptime_seconds gauge$/m);
  const m = h.parseMetrics(text);
  assert.ok(m.spanprof_process_uptime_seconds >= 0 && m.spanprof_process_uptime_seconds < 60,
    `uptime ${m.spanprof_process_uptime_seconds}`);
  assert.ok(m.spanprof_process_resident_memory_bytes > 1e6, 'RSS');
  assert.ok(h.metricSum(m, 'spanprof_extension_health_checks_total', { component: 'health_check', status: '200' }) >= 2,
    'health checks are counted');
  r = await h.httpGet(`http://127.0.0.1:${mp}/nope`);
  assert.strictEqual(r.status, 404);
  console.log(`ok   /metrics: uptime ${m.spanprof_process_uptime_seconds}s`);
}

// An OTLP/gRPC export whose body is sent in two parts; resolves the answer.
function openExport(port, message) {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  const req = client.request({
    ':method': 'POST',
    ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  const cut = 5 + (message.length >> 1);
  const answer = new Promise((resolve, reject) => {
    const out = { headers: null, trailers: null };
    req.on('response', (hd) => { out.headers = hd; });
    req.on('trailers', (t) => { out.trailers = t; });
    req.on('data', () => {});
    req.on('end', () => { client.close(); resolve(out); });
    req.on('error', reject);
  });
  req.write(frame.subarray(0, cut));
  return { finish: () => req.end(frame.subarray(cut)), answer, client };
}

async function checkShutdown(sp) {
  const { LC_HEALTH_PORT: hp, LC_HEALTH2_PORT: hp2, LC_GRPC_PORT: gp } = sp.env;
  const message = fs.readFileSync(path.join(h.FIXTURES, 'otlp-grpc-message.bin'));
  const exp = openExport(Number(gp), message);
  exp.answer.catch(() => {});
  // Let the HEADERS and the first DATA frame reach spanprof.
  await h.sleep(300);
  assert.strictEqual(sp.exited(), null, 'still running');
  const sigtermAt = Date.now();
  sp.child.kill('SIGTERM');

  let seen = null;
  while (!seen && Date.now() - sigtermAt < 3000 && !sp.exited()) {
    try {
      const r = await h.httpGet(`http://127.0.0.1:${hp2}/health/status`, 500);
      if (r.status === 503) seen = r;
      else assert.strictEqual(r.status, 200);
    } catch (e) { /* a connection may race the signal */ }
    if (!seen) await h.sleep(10);
  }
  assert.ok(seen, `no 503 from the health check during shutdown:\n${sp.log()}`);
  checkHealthBody(seen, 'Server shutting down');
  const hc = run(['healthcheck', '--endpoint', `127.0.0.1:${hp}`]);
  assert.strictEqual(hc.code, 1, 'healthcheck exits 1 while shutting down');
  assert.match(hc.stdout, /^503 \{"status":"Server shutting down"/);
  assert.strictEqual(sp.exited(), null, 'spanprof waits for the in-flight export');
  console.log(`ok   503 "Server shutting down" ${seen ? Date.now() - sigtermAt : '?'} ms after SIGTERM; healthcheck exits 1`);

  exp.finish();
  const ans = await exp.answer;
  assert.strictEqual(ans.headers[':status'], 200, 'in-flight export answered');
  const grpcStatus = (ans.trailers && ans.trailers['grpc-status']) || ans.headers['grpc-status'];
  assert.strictEqual(String(grpcStatus), '0', `grpc-status ${grpcStatus} ${ans.trailers && ans.trailers['grpc-message']}`);
  console.log('ok   the export in flight at SIGTERM was answered with grpc-status 0');

  const ex = await Promise.race([sp.exit, h.sleep((SHUTDOWN_TIMEOUT_S + 5) * 1000).then(() => null)]);
  assert.ok(ex, `spanprof did not exit after SIGTERM:\n${sp.log()}`);
  assert.strictEqual(ex.code, 0, `exit ${JSON.stringify(ex)}\n${sp.log()}`);
  const took = ex.at - sigtermAt;
  assert.ok(took < SHUTDOWN_TIMEOUT_S * 1000, `shutdown took ${took} ms, over the ${SHUTDOWN_TIMEOUT_S}s timeout`);
  assert.match(sp.log(), /shutdown complete/);
  console.log(`ok   exit 0, ${took} ms after SIGTERM`);

  // Flushed by the exporter before exit: the spans of the late export.
  const lines = fs.readFileSync(sp.env.LC_OUT, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const spans = lines.filter((l) => l.signal === 'traces');
  assert.ok(spans.length > 0, 'spans of the in-flight export reached the exporter');
  assert.ok(spans.every((s) => s.resource['service.name'] === 'fixture-otlp-grpc'), 'fixture spans');
  console.log(`ok   ${spans.length} spans of the in-flight export reached the debug exporter`);

  await assert.rejects(h.httpGet(`http://127.0.0.1:${hp}/`, 1000), 'the health check is closed after exit');
}

function checkValidate(dir) {
  fs.copyFileSync(path.join(DATA, 'broken.yaml'), path.join(dir, 'spanprof.yaml'));
  const r = run(['validate', '--config', 'spanprof.yaml'], { cwd: dir });
  assert.strictEqual(r.code, 1, `validate of a broken file exits 1:\n${r.stdout}${r.stderr}`);
  assert.strictEqual(r.stdout, '', 'nothing claims the file is valid');
  assert.strictEqual(r.stderr,
    "spanprof.yaml:14:9: unknown key 'endpont' in receivers.otlp.protocols.http (did you mean 'endpoint'?)\n" +
    "spanprof.yaml:15:3: unknown receiver type 'otlpp' (did you mean 'otlp'?)\n" +
    "spanprof.yaml:7:21: service.shutdown_timeout: expected a duration like 10s, got 'soon'\n" +
    "spanprof.yaml:9:45: pipeline 'traces' names exporter 'debgu' which is not defined in exporters (did you mean 'debug'?)\n" +
    "spanprof.yaml:4:3: warning: exporter 'debug' is defined but no pipeline uses it: it will not be created\n");
  console.log('ok   validate: every error with file:line:col, exit 1');

  const ok = run(['validate', '--config', path.join(DATA, 'lifecycle.yaml')],
    { env: { LC_GRPC_PORT: '1', LC_HEALTH_PORT: '2', LC_HEALTH2_PORT: '3', LC_METRICS_PORT: '4', LC_OUT: '/dev/null' } });
  assert.strictEqual(ok.code, 0, ok.stderr);
  assert.strictEqual(ok.stdout, 'configuration is valid\n');
}

function checkSecrets() {
  const secret = 'dd-secret-0123456789abcdef';
  const cfg = path.join(DATA, 'secret.yaml');
  const p = run(['print-config', '--config', cfg], { env: { LC_API_KEY: secret } });
  assert.strictEqual(p.code, 0, p.stderr);
  assert.match(p.stdout, /\n {6}key: "\[REDACTED\]"\n/);
  assert.ok(!p.stdout.includes(secret) && !p.stderr.includes(secret), 'print-config shows the secret');
  const v = run(['validate', '--config', cfg], { env: { LC_API_KEY: secret } });
  assert.ok(!v.stdout.includes(secret) && !v.stderr.includes(secret), 'validate shows the secret');
  // With a bad value for a non-secret key next to it, the error names the key, not the secret.
  const dir = h.tmpDir('lifecycle-secret');
  fs.writeFileSync(path.join(dir, 's.yaml'), fs.readFileSync(cfg, 'utf8').replace('key: ${env:LC_API_KEY}', 'key: ["${env:LC_API_KEY}"]'));
  const b = run(['validate', '--config', path.join(dir, 's.yaml')], { env: { LC_API_KEY: secret } });
  assert.strictEqual(b.code, 1);
  assert.match(b.stderr, /s\.yaml:11:12: exporters\.datadog\.api\.key: expected a string, got a sequence/);
  assert.ok(!b.stderr.includes(secret), 'the error shows the secret');
  fs.rmSync(dir, { recursive: true, force: true });
  console.log('ok   print-config and validate redact the secret from the environment');
}

async function main() {
  const dir = h.tmpDir('lifecycle');
  let sp = null;
  try {
    checkValidate(dir);
    checkSecrets();
    sp = await start(dir);
    await checkRunning(sp);
    await checkShutdown(sp);
  } finally {
    if (sp && !sp.exited()) sp.child.kill('SIGKILL');
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
