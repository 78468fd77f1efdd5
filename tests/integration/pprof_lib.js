// Shared pieces of the pprof receiver's integration tests: a spanprof with
// the pprof receiver feeding the `debug` exporter (JSON lines + every pprof
// attachment written to a directory), `go tool pprof -raw` parsing, our own
// decoder's comparison with it (test_pprof_codec --compare), the Go test
// program, and a tiny test runner that always stops what it started.
'use strict';

const assert = require('node:assert');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

async function ports(n) {
  const out = [];
  while (out.length < n) {
    const p = await h.freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

// Starts spanprof: pprof receiver (extra YAML lines indented under it) ->
// debug exporter. Returns { sp, port, base, out(), dir, metrics() }.
async function startPprof({ receiverYaml = '', name = 'pprof', env = {} } = {}) {
  const [port, healthPort, metricsPort] = await ports(3);
  const dir = h.tmpDir(`${name}-out`);
  const outPath = path.join(dir, 'debug.jsonl');
  const pprofDir = path.join(dir, 'pprof');
  const yaml = `receivers:
  pprof:
    endpoint: 127.0.0.1:${port}
${receiverYaml}
exporters:
  debug:
    path: ${outPath}
    pprof_dir: ${pprofDir}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  pipelines:
    profiles:
      receivers: [pprof]
      exporters: [debug]
  telemetry:
    logs:
      level: debug
    metrics:
      address: 127.0.0.1:${metricsPort}
`;
  const sp = await h.startSpanprof(yaml, { env, healthPort, metricsPort, name });
  return {
    sp, port, healthPort, dir, pprofDir,
    base: `http://127.0.0.1:${port}`,
    out() {
      if (!fs.existsSync(outPath)) return [];
      return fs.readFileSync(outPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
        .filter((l) => l.signal === 'profiles');
    },
    metrics: () => sp.metrics(),
    async healthy() {
      const r = await h.httpGet(`http://127.0.0.1:${healthPort}/`);
      return r.status === 200 && !sp.exited();
    },
  };
}

// Starts spanprof with both pipelines through the join: OTLP/gRPC spans and
// pprof-receiver profiles -> join (join_delay 2s) -> debug exporter (JSON
// lines + pprof files). Returns { sp, grpcPort, pprofPort, lines() }.
async function startJoin(name) {
  const [grpcPort, pprofPort, healthPort, metricsPort] = await ports(4);
  const dir = h.tmpDir(name);
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
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name });
  return {
    sp, grpcPort, pprofPort,
    lines: () => fs.readFileSync(`${dir}/out.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)),
  };
}

// Runs a recipe app (tests/integration/recipes) to its end; returns the
// object it prints on its `SPANS {...}` line (the span ids it made) and its
// output.
async function runRecipe(file, env) {
  const run = await runToEnd('node', [path.join(__dirname, 'recipes', file)], { cwd: __dirname, env });
  assert.strictEqual(run.code, 0, run.out);
  const line = run.out.split('\n').find((l) => l.startsWith('SPANS '));
  assert.ok(line, `the app printed no SPANS line:\n${run.out}`);
  const spans = JSON.parse(line.slice(6));
  return { spans, out: run.out };
}

async function waitFor(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await h.sleep(100);
  }
}

function goEnv() {
  const home = path.join(h.BUILD, 'go-home');
  fs.mkdirSync(home, { recursive: true });
  return {
    ...process.env, HOME: home, GOCACHE: path.join(h.BUILD, 'go-cache'),
    GOPATH: path.join(h.BUILD, 'go-path'), GOPROXY: 'off', GOFLAGS: '-mod=mod', PPROF_TMPDIR: home,
  };
}

// `go tool pprof -raw -symbolize=none FILE` parsed (no symbolization: Go's
// tool would otherwise "demangle" names like <instance_members_initializer>): sample types and samples with values,
// location ids and labels ({key: [values]}, numeric ones as strings "n unit").
function goRaw(file) {
  const text = execFileSync('go', ['tool', 'pprof', '-raw', '-symbolize=none', file], { env: goEnv(), stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const lines = text.split('\n');
  const i0 = lines.indexOf('Samples:');
  assert.ok(i0 >= 0, `no Samples section in go tool pprof -raw ${file}`);
  const sampleTypes = lines[i0 + 1].split(' ').filter(Boolean).map((t) => t.replace('[dflt]', ''));
  const samples = [];
  for (let i = i0 + 2; i < lines.length && lines[i] !== 'Locations'; i++) {
    const l = lines[i];
    if (l.startsWith('                ')) {
      const s = samples[samples.length - 1];
      for (const m of l.trim().matchAll(/([^:\s][^:]*?):\[([^\]]*)\]/g)) s.labels[m[1]] = m[2].split(' ');
      continue;
    }
    const [vals, locs] = l.split(':');
    samples.push({ values: vals.trim().split(/\s+/).map(Number), locs: locs.trim().split(' ').filter(Boolean), labels: {} });
  }
  return { sampleTypes, samples, text };
}

// Our decoder against Go's on FILE (decoded samples, labels, values, stacks).
function compareWithGo(file) {
  const bin = path.join(h.BUILD, 'tests', 'test_pprof_codec');
  try {
    execFileSync(bin, ['--compare', file], { env: { ...process.env, ...goEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`spanprof's decoding of ${file} differs from go tool pprof -raw:\n${e.stderr}`);
  }
}

let goApp = null;
function buildGoApp() {
  if (!goApp) {
    const out = path.join(h.BUILD, 'pprofapp');
    execFileSync('go', ['build', '-o', out, '.'], { cwd: path.join(h.SRC, 'tests/integration/go/pprofapp'), env: goEnv(), stdio: 'inherit' });
    goApp = out;
  }
  return goApp;
}

// Runs a program until it prints a line matching re; returns { child, match, output() }.
function spawnUntil(cmd, args, re, { env = process.env, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd}: no ${re} within ${timeoutMs} ms:\n${out}`)); }, timeoutMs);
    const on = (d) => {
      out += d;
      const m = re.exec(out);
      if (m) { clearTimeout(t); resolve({ child, match: m, output: () => out }); }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => { clearTimeout(t); if (!re.exec(out)) reject(new Error(`${cmd} exited ${code}:\n${out}`)); });
  });
}

function runToEnd(cmd, args, { env = process.env, timeoutMs = 60000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${out}`)); }, timeoutMs);
    child.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal, out }); });
  });
}

// Sequential test runner: prints ok/FAIL per test and a summary; runs every
// cleanup; exit code 1 if anything failed.
function runner(title) {
  const cleanups = [];
  let passed = 0, failed = 0;
  return {
    cleanup(fn) { cleanups.push(fn); },
    async test(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   ${title}: ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${title}: ${name}\n  ${(e && e.stack) || e}`);
      }
    },
    async finish(err) {
      if (err) { failed++; console.log(`FAIL ${title}: ${(err && err.stack) || err}`); }
      for (const fn of cleanups.reverse()) {
        try { await fn(); } catch (e) { console.log(`cleanup: ${e}`); }
      }
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

module.exports = { ports, startPprof, startJoin, runRecipe, waitFor, goRaw, goEnv, compareWithGo, buildGoApp, spawnUntil, runToEnd, runner, tmp: os.tmpdir() };
