// Shared pieces of the integration tests: run the real spanprof binary on
// free loopback ports, read its metrics, and a recording Datadog intake that
// decodes what it receives (protobuf AgentPayload, msgpack, multipart +
// pprof) so tests check payloads field by field.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const protobuf = require('protobufjs');

const SRC = process.env.SPANPROF_SRC || path.resolve(__dirname, '../../..');
const BIN = process.env.SPANPROF_BIN || path.join(SRC, 'build/spanprof');
// Real client payloads kept in the repository (tests/data/fixtures/README.md).
const FIXTURES = path.join(SRC, 'tests/data/fixtures');
const BUILD = process.env.SPANPROF_BUILD || path.join(SRC, 'build');

// A port nobody listens on now, for a child to bind a moment later. Not
// the kernel's pick (listen on port 0): that comes from the ephemeral range
// (net.ipv4.ip_local_port_range), which every outgoing connection on the
// machine also draws from, so under load (floods, other tests' clients) a
// port freed here was often taken by some connect() before the child bound
// it ("address in use" in e2e and pprof_go). A random port below that
// range is never handed out implicitly; it is checked free here, and never
// handed out twice by one test process.
const givenPorts = new Set();
function ephemeralLow() {
  try {
    const lo = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (lo > 12000) return lo;
  } catch { /* not Linux: use the IANA range's start */ }
  return 32768;
}
const PORT_LOW = 10000;
const PORT_HIGH = ephemeralLow() - 1;
function tryListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1));
    if (givenPorts.has(port)) continue;
    if (await tryListen(port)) {
      givenPorts.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${PORT_LOW}-${PORT_HIGH}`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `spanprof-${prefix}-`));
}

function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function httpRequest(url, { method = 'POST', headers = {}, body = null, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// Parses Prometheus text into { 'name{labels}': value }.
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Sums every series of a metric whose labels contain all of `want`.
function metricSum(metrics, name, want = {}) {
  let sum = 0;
  for (const [k, v] of Object.entries(metrics)) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    const labels = brace < 0 ? '' : k.slice(brace);
    if (Object.entries(want).every(([lk, lv]) => labels.includes(`${lk}="${lv}"`))) sum += v;
  }
  return sum;
}

// Starts spanprof with a YAML config; resolves once the health check says
// it is running. Always stop it with `stop()` (or `kill()`).
async function startSpanprof(yaml, { env = {}, healthPort, metricsPort, name = 'sp' } = {}) {
  const dir = tmpDir(name);
  const cfg = path.join(dir, 'spanprof.yaml');
  fs.writeFileSync(cfg, yaml);
  const logPath = path.join(dir, 'spanprof.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(BIN, ['--config', cfg], {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  let exited = null;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const sp = {
    child, dir, cfg, logPath,
    log: () => fs.readFileSync(logPath, 'utf8'),
    exited: () => exited,
    async metrics() {
      const r = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
      return parseMetrics(r.body.toString());
    },
    async stop(timeoutMs = 20000) {
      if (exited) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exitPromise;
      clearTimeout(t);
      return r;
    },
    kill() { if (!exited) child.kill('SIGKILL'); },
    waitExit: () => exitPromise,
  };
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited) throw new Error(`spanprof exited early (${JSON.stringify(exited)}):\n${sp.log()}`);
    try {
      const r = await httpGet(`http://127.0.0.1:${healthPort}/`, 500);
      if (r.status === 200) return sp;
    } catch (e) { /* not up yet */ }
    if (Date.now() > deadline) {
      sp.kill();
      throw new Error(`spanprof did not become healthy:\n${sp.log()}`);
    }
    await sleep(100);
  }
}

let protoRoot = null;
function protos() {
  if (!protoRoot) {
    protoRoot = new protobuf.Root();
    protoRoot.resolvePath = (origin, target) => path.join(SRC, 'proto', path.basename(target));
    protoRoot.loadSync(['dd_trace.proto', 'pprof_profile.proto', 'otlp_trace_service.proto'].map((f) => path.join(SRC, 'proto', f)), { keepCase: true });
  }
  return protoRoot;
}

function decodeAgentPayload(buf) {
  const T = protos().lookupType('datadog.trace.AgentPayload');
  return T.toObject(T.decode(buf), { longs: String, defaults: true });
}

// Decodes a pprof (gzip/zstd-free raw or gzip) into a friendly shape:
// samples with resolved string labels and numeric labels.
function decodePprof(buf) {
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  const T = protos().lookupType('perftools.profiles.Profile');
  const p = T.toObject(T.decode(buf), { longs: String, defaults: true });
  const st = p.string_table;
  const sampleTypes = p.sample_type.map((v) => `${st[v.type]}/${st[v.unit]}`);
  const samples = p.sample.map((s) => {
    const labels = {};
    const numLabels = {};
    for (const l of s.label) {
      const k = st[Number(l.key)];
      if (Number(l.str) !== 0) labels[k] = st[Number(l.str)];
      else numLabels[k] = l.num;
    }
    return { values: s.value.map(Number), labels, numLabels, locations: s.location_id.map(String) };
  });
  const funcs = new Map(p.function.map((f) => [String(f.id), st[Number(f.name)]]));
  const locs = new Map(p.location.map((l) => [String(l.id), l.line.map((ln) => funcs.get(String(ln.function_id)))]));
  for (const s of samples) s.stack = s.locations.flatMap((id) => locs.get(id) || []);
  return { raw: p, sampleTypes, samples };
}

// Minimal multipart/form-data parser (for what spanprof uploads).
function parseMultipart(body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType || '');
  if (!m) throw new Error(`no boundary in '${contentType}'`);
  const boundary = Buffer.from(`--${m[1] || m[2]}`);
  const parts = [];
  let pos = body.indexOf(boundary);
  while (pos >= 0) {
    pos += boundary.length;
    if (body.slice(pos, pos + 2).toString() === '--') break;
    pos += 2; // CRLF
    const headEnd = body.indexOf('\r\n\r\n', pos);
    const head = body.slice(pos, headEnd).toString();
    const next = body.indexOf(boundary, headEnd + 4);
    const data = body.slice(headEnd + 4, next - 2);
    const headers = {};
    for (const line of head.split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const cd = headers['content-disposition'] || '';
    const name = (/name="([^"]*)"/.exec(cd) || [])[1];
    const filename = (/filename="([^"]*)"/.exec(cd) || [])[1];
    parts.push({ name, filename, headers, data });
    pos = next;
  }
  return parts;
}

// A fake Datadog intake: a real HTTP server that records every request.
// `respond(req, body)` may return {status, headers, body} to script faults.
// Knobs, changeable while it runs: `knobs.delayMs` answers that late (a
// distant intake), `knobs.status` (with `knobs.retryAfter`) answers every
// request with that status; `down()` closes the listener (connections are
// refused) and `up()` listens again on the same port.
async function startIntake({ respond, delayMs = 0 } = {}) {
  const requests = [];
  const knobs = { delayMs, status: 0, retryAfter: null };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const rec = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      requests.push(rec);
      let r = null;
      if (knobs.status) {
        r = { status: knobs.status, headers: knobs.retryAfter !== null ? { 'retry-after': String(knobs.retryAfter) } : {}, body: 'scripted' };
      } else if (respond) {
        r = await respond(rec);
      }
      if (!r) r = { status: 200, body: '{}' };
      rec.status = r.status;
      if (r.hang) return; // never answer
      if (knobs.delayMs) await sleep(knobs.delayMs);
      res.writeHead(r.status, r.headers || { 'content-type': 'application/json' });
      res.end(r.body || '');
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    knobs,
    down: () => new Promise((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }),
    up: () => new Promise((r, j) => { server.once('error', j); server.listen(port, '127.0.0.1', r); }),
    close: () => new Promise((r) => { server.closeAllConnections?.(); if (server.listening) server.close(r); else r(); }),
  };
}

// A recorded request's body as its Content-Encoding says (gzip, zstd or
// none). zstd: node 20's zlib has no zstd, so the zstd tool does it
// (scripts/deps.sh installs it); a body that is not what the header says
// fails here, as it would at the intake.
function decodeBody(rec) {
  const enc = rec.headers['content-encoding'] || '';
  if (enc === 'gzip') return zlib.gunzipSync(rec.body);
  if (enc === 'zstd') return execFileSync('zstd', ['-d', '-c', '-q'], { input: rec.body, maxBuffer: 64 << 20 });
  if (enc !== '') throw new Error(`unexpected Content-Encoding '${enc}'`);
  return rec.body;
}

// Decodes a recorded agentless trace request into the AgentPayload; the
// decoded form is kept on the record (zstd runs a process per call).
function decodeTraceRequest(rec) {
  if (!rec.decodedPayload) rec.decodedPayload = decodeAgentPayload(decodeBody(rec));
  return rec.decodedPayload;
}

// Starts a helper process (an app, a load generator) with its output in
// logFile; exited resolves with {code, signal}.
function startProcess(cmd, args, env, logFile) {
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, log: () => fs.readFileSync(logFile, 'utf8') };
}

// Builds Go programs with the stdlib only, into the build dir (offline).
function goBuild(srcDir, out) {
  const cache = path.join(BUILD, 'go-cache');
  fs.mkdirSync(cache, { recursive: true });
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: srcDir,
    env: { ...process.env, GOCACHE: cache, GOPATH: path.join(BUILD, 'go-path'), GOFLAGS: '-mod=mod', GOPROXY: 'off', GO111MODULE: 'on' },
    stdio: 'inherit',
  });
  return out;
}

module.exports = {
  SRC, BIN, FIXTURES, BUILD,
  freePort, sleep, tmpDir, httpGet, httpRequest, parseMetrics, metricSum,
  startSpanprof, startIntake, decodeAgentPayload, decodeBody, decodeTraceRequest, decodePprof,
  parseMultipart, goBuild, protos, startProcess,
};
