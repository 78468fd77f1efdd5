// The Go demo service (examples/demo-service) on its own, against recording
// servers in this test: what `make demo` and the end-to-end tests rely on.
//  1. flags: bad ones exit 2;
//  2. server mode, driven by a second instance (-target) plus requests of
//     this test with their own traceparent headers: OTLP/HTTP JSON spans as
//     the OTLP spec encodes them (every span once, after a 503 and a retry),
//     SERVER/INTERNAL span shapes, remote-parent flags, 5xx errors, the
//     ground truth file; a CPU profile scraped from /debug/pprof/profile
//     whose span_id labels name this run's spans, agree with the work
//     function on each sample's stack, and give the designed CPU shares;
//     SIGTERM exits 0 after flushing;
//  3. push mode with the built-in load: CPU profiles POSTed with the query
//     parameters spanprof's /v1/pprof reads, then a clean exit on its own.
'use strict';

const assert = require('node:assert');
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const SRC = process.env.SPANPROF_SRC || path.resolve(__dirname, '../..');
const BUILD = process.env.SPANPROF_BUILD || path.join(SRC, 'build');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'spanprof-demo-service-'));
const DESIGNED = { 'GET /api/users/{id}': 0.6, 'GET /api/orders': 0.3, 'GET /healthz': 0.1 };
const WORK_FN = { 'main.computeUser': 'GET /api/users/{id}', 'main.computeOrders': 'GET /api/orders', 'main.computeHealth': 'GET /healthz' };

let passed = 0;
let failed = 0;
async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n${e.stack}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// A recording HTTP server; respond(req, n) gives [status, body] (n counts from 1).
function recorder(respond) {
  const reqs = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rec = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      reqs.push(rec);
      const [status, body] = respond(rec, reqs.length);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ reqs, url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() })));
}

function start(bin, args, name) {
  const out = fs.openSync(path.join(WORK, `${name}.out`), 'w');
  const err = fs.openSync(path.join(WORK, `${name}.log`), 'w');
  const child = spawn(bin, args, { stdio: ['ignore', out, err] });
  children.add(child);
  const done = new Promise((resolve) => child.on('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
  return {
    child, done,
    out: () => fs.readFileSync(path.join(WORK, `${name}.out`), 'utf8'),
    log: () => fs.readFileSync(path.join(WORK, `${name}.log`), 'utf8'),
  };
}

async function waitExit(p, ms) {
  const t = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const r = await p.done;
  clearTimeout(t);
  return r;
}

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, timeout: 15000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

// go tool pprof -raw: samples with values, labels and the function names of
// their stacks.
function readProfile(file) {
  const out = execFileSync('go', ['tool', 'pprof', '-symbolize=none', '-raw', file], {
    encoding: 'utf8',
    env: { ...process.env, HOME: WORK, PPROF_TMPDIR: WORK },
    maxBuffer: 64 << 20,
  });
  const lines = out.split('\n');
  const at = lines.indexOf('Samples:');
  assert.ok(at >= 0, out.slice(0, 500));
  const types = lines[at + 1].trim().split(/\s+/);
  const col = types.indexOf('cpu/nanoseconds');
  assert.ok(col >= 0, `cpu/nanoseconds in ${types}`);
  const samples = [];
  let i = at + 2;
  for (; i < lines.length && lines[i].startsWith(' '); i++) {
    const m = /^\s*(\d+(?:\s+\d+)*):\s*([\d ]*)$/.exec(lines[i]);
    if (m) {
      samples.push({ ns: Number(m[1].split(/\s+/)[col]), locs: m[2].trim().split(/\s+/).filter(Boolean), labels: {} });
    } else if (samples.length) {
      for (const l of lines[i].matchAll(/(\S[^[\]]*?):\[([^\]]*)\]/g)) samples[samples.length - 1].labels[l[1].trim()] = l[2];
    }
  }
  // Locations:  "     7: 0x4a1b2c M=1 main.computeUser /src/x.go:12 s=0" and
  // continuation lines for inlined frames.
  const fns = {};
  let cur = null;
  for (; i < lines.length; i++) {
    const m = /^\s*(\d+): 0x[0-9a-f]+ M=\d+ (\S+)/.exec(lines[i]);
    if (m) {
      cur = m[1];
      fns[cur] = [m[2]];
    } else if (cur && /^\s+\S+ \S+:\d+ s=\d+/.test(lines[i])) {
      fns[cur].push(lines[i].trim().split(/\s+/)[0]);
    } else if (/^Mappings/.test(lines[i])) break;
  }
  for (const s of samples) s.funcs = s.locs.flatMap((l) => fns[l] || []);
  return samples;
}

function spansOf(reqs) {
  const spans = [];
  for (const r of reqs) {
    const body = JSON.parse(r.body.toString());
    for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, resource: rs.resource, scope: ss.scope });
  }
  return spans;
}

const attrs = (s) => Object.fromEntries((s.attributes || []).map((a) => [a.key, a.value]));

(async () => {
  const bin = path.join(BUILD, 'demo-service', 'demo-service');
  execFileSync('bash', [path.join(SRC, 'examples/demo-service/build.sh'), bin], { stdio: 'inherit' });

  // ---- 1. flags ----
  await test('bad flags exit 2 with a message', async () => {
    for (const args of [['-nope'], ['-target', 'http://127.0.0.1:1'], ['-load', '1s', '-load-rps', '0'], ['extra']]) {
      const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10000 });
      assert.strictEqual(r.status, 2, `${args}: exit ${r.status}`);
      assert.ok(r.stderr.length > 0, `${args}: a message`);
    }
  });

  // ---- 2. server mode ----
  // The OTLP receiver answers 503 (retryable) once, then 200.
  const otlp = await recorder((r, n) => (n === 1 ? [503, '{}'] : [200, '{}']));
  const truthFile = path.join(WORK, 'truth.json');
  const app = start(bin, ['-listen', '127.0.0.1:0', '-otlp-endpoint', otlp.url, '-service', 'demo-itest', '-env', 'itest',
    '-service-version', '9.9.9', '-truth', truthFile], 'app');
  const t0 = Date.now();
  while (!/listening on /.test(app.out())) {
    assert.ok(Date.now() - t0 < 10000, `the service did not start:\n${app.log()}`);
    await sleep(50);
  }
  const addr = /listening on (\S+)/.exec(app.out())[1];
  await test('stdout names the listening address', async () => {
    assert.match(addr, /^127\.0\.0\.1:\d+$/);
    assert.strictEqual((await get(`http://${addr}/healthz`)).status, 200);
  });

  const driver = start(bin, ['-target', `http://${addr}`, '-load', '6s', '-load-rps', '60'], 'driver');
  const scrape = get(`http://${addr}/debug/pprof/profile?seconds=5`);
  // Requests of our own, with known and malformed traceparents.
  const known = { trace: '4bf92f3577b34da6a3ce929d0e0e4736', parent: '00f067aa0ba902b7' };
  await sleep(500);
  const mine = [
    await get(`http://${addr}/api/orders?page=2`, { traceparent: `00-${known.trace}-${known.parent}-01`, 'user-agent': 'itest-agent' }),
    await get(`http://${addr}/api/orders`, { traceparent: `00-${known.trace.toUpperCase()}-${known.parent}-01` }),
    await get(`http://${addr}/api/users/50`),
    await get(`http://${addr}/api/users/nope`),
    await get(`http://${addr}/nothing-here`),
  ];
  const prof = await scrape;
  const drv = await waitExit(driver, 20000);
  await test('the load driver (-target) ran and printed its stats as JSON', async () => {
    assert.deepStrictEqual(drv, { code: 0, signal: null }, driver.log());
    const st = JSON.parse(driver.out().trim().split('\n').pop());
    // 360 at 60/s for 6 s on an idle machine; far fewer on a loaded one.
    assert.ok(st.requests >= 50, `requests ${st.requests}`);
    assert.strictEqual(st.failures, 0);
    assert.ok(Math.abs(st.with_remote_parent - st.requests / 3) <= 2, `${st.with_remote_parent} of ${st.requests} with a traceparent`);
    assert.ok(st.by_status['500'] >= 1, JSON.stringify(st.by_status));
  });
  await test('our own requests were answered as designed', async () => {
    assert.deepStrictEqual(mine.map((r) => r.status), [200, 200, 500, 404, 404]);
  });

  app.child.kill('SIGTERM');
  const appExit = await waitExit(app, 30000);
  await test('SIGTERM: exit 0 after flushing, ground truth written', async () => {
    assert.deepStrictEqual(appExit, { code: 0, signal: null }, app.log());
    assert.ok(fs.existsSync(truthFile));
  });
  const truth = JSON.parse(fs.readFileSync(truthFile, 'utf8'));
  const spans = spansOf(otlp.reqs.slice(1)); // the first, answered 503, was retried
  const byId = new Map(spans.map((s) => [s.spanId, s]));

  await test('OTLP/HTTP JSON: POST /v1/traces, application/json, resource and scope', async () => {
    assert.ok(otlp.reqs.length >= 3, `${otlp.reqs.length} requests`);
    for (const r of otlp.reqs) {
      assert.strictEqual(r.method, 'POST');
      assert.strictEqual(r.url, '/v1/traces');
      assert.strictEqual(r.headers['content-type'], 'application/json');
    }
    const res = Object.fromEntries(spans[0].resource.attributes.map((a) => [a.key, a.value]));
    assert.deepStrictEqual(res['service.name'], { stringValue: 'demo-itest' });
    assert.deepStrictEqual(res['service.version'], { stringValue: '9.9.9' });
    assert.deepStrictEqual(res['deployment.environment.name'], { stringValue: 'itest' });
    assert.match(res['service.instance.id'].stringValue, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(res['host.name'].stringValue);
    assert.deepStrictEqual(res['telemetry.sdk.language'], { stringValue: 'go' });
    assert.match(res['process.pid'].intValue, /^\d+$/, 'int64 as a decimal string');
    assert.strictEqual(spans[0].scope.name, 'spanprof/demo-service');
  });
  await test('every span exported exactly once, after a 503 and a retry; the truth agrees', async () => {
    assert.strictEqual(byId.size, spans.length, 'no duplicates');
    assert.strictEqual(truth.span_count, spans.length);
    assert.strictEqual(truth.exported_span_count, truth.span_count);
    for (const id of Object.keys(truth.spans)) assert.ok(byId.has(id), `span ${id} exported`);
    assert.ok(truth.export.retries >= 1, JSON.stringify(truth.export));
    assert.strictEqual(truth.export.spans_failed, 0);
    assert.strictEqual(truth.export.spans_dropped_queue_full, 0);
  });
  await test('ids are lowercase hex, times and int64 values decimal strings', async () => {
    for (const s of spans) {
      assert.match(s.traceId, /^[0-9a-f]{32}$/);
      assert.match(s.spanId, /^[0-9a-f]{16}$/);
      if (s.parentSpanId) assert.match(s.parentSpanId, /^[0-9a-f]{16}$/);
      assert.match(s.startTimeUnixNano, /^\d{19}$/);
      assert.match(s.endTimeUnixNano, /^\d{19}$/);
      assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
      for (const a of s.attributes || []) if ('intValue' in a.value) assert.strictEqual(typeof a.value.intValue, 'string');
    }
  });
  const servers = spans.filter((s) => s.kind === 2);
  const internals = spans.filter((s) => s.kind === 1);
  await test('SERVER spans: name "METHOD route" and the HTTP attributes', async () => {
    assert.ok(servers.length >= 50, `${servers.length}`);
    for (const s of servers) {
      const a = attrs(s);
      assert.strictEqual(s.name, `GET ${a['http.route'].stringValue}`);
      assert.strictEqual(a['http.request.method'].stringValue, 'GET');
      assert.ok(DESIGNED[s.name] !== undefined, s.name);
      assert.match(a['url.path'].stringValue, /^\/(api|healthz)/);
      assert.strictEqual(a['url.scheme'].stringValue, 'http');
      assert.strictEqual(a['server.address'].stringValue, '127.0.0.1');
      assert.match(a['http.response.status_code'].intValue, /^(200|404|500)$/);
    }
    const driven = servers.filter((s) => /^spanprof-demo-load\//.test((attrs(s)['user_agent.original'] || {}).stringValue));
    assert.ok(driven.length >= servers.length - 5, `${driven.length} of ${servers.length} with the driver's user agent`);
  });
  await test('INTERNAL spans: "compute <route>", child of their request\'s SERVER span', async () => {
    assert.ok(internals.length >= 50, `${internals.length}`);
    for (const c of internals) {
      const p = byId.get(c.parentSpanId);
      assert.ok(p && p.kind === 2, `parent of ${c.spanId}`);
      assert.strictEqual(c.traceId, p.traceId);
      assert.strictEqual(c.name, `compute ${attrs(p)['http.route'].stringValue}`);
      assert.strictEqual(c.flags, 0x101);
      assert.ok(BigInt(c.startTimeUnixNano) >= BigInt(p.startTimeUnixNano) && BigInt(c.endTimeUnixNano) <= BigInt(p.endTimeUnixNano));
    }
  });
  await test('traceparent: remote parent (flags 0x301) or a new trace (0x101); malformed is ignored', async () => {
    const remote = servers.filter((s) => s.flags === 0x301);
    const local = servers.filter((s) => s.flags === 0x101);
    assert.strictEqual(remote.length + local.length, servers.length);
    for (const s of remote) assert.match(s.parentSpanId || '', /^[0-9a-f]{16}$/);
    for (const s of local) assert.ok(!s.parentSpanId);
    assert.ok(Math.abs(remote.length - servers.length / 3) <= 5, `${remote.length} of ${servers.length}`);
    const ours = servers.find((s) => s.traceId === known.trace);
    assert.ok(ours, 'the span of our traceparent');
    assert.strictEqual(ours.parentSpanId, known.parent);
    assert.strictEqual(ours.flags, 0x301);
    assert.strictEqual(attrs(ours)['url.query'].stringValue, 'page=2');
    assert.strictEqual(attrs(ours)['user_agent.original'].stringValue, 'itest-agent');
    assert.strictEqual(truth.spans[ours.spanId].remote_parent, true);
    assert.strictEqual(truth.spans[ours.spanId].local_root, ours.spanId);
  });
  await test('5xx answers: status ERROR on the SERVER span, users with id % 25 == 0', async () => {
    for (const s of servers) {
      const a = attrs(s);
      const code = Number(a['http.response.status_code'].intValue);
      assert.strictEqual((s.status || {}).code === 2, code >= 500, `${s.name} ${code}`);
      if (code === 500) assert.strictEqual(Number(a['url.path'].stringValue.split('/').pop()) % 25, 0);
    }
    const errors = Object.values(truth.spans).filter((s) => s.error).length;
    assert.strictEqual(errors, servers.filter((s) => (s.status || {}).code === 2).length);
    assert.strictEqual(truth.endpoints['GET /api/users/{id}'].errors, errors);
  });
  await test('ground truth: schema, span records, per-endpoint shares near the design', async () => {
    assert.strictEqual(truth.schema, 'spanprof-acceptance-truth/1');
    assert.strictEqual(truth.service, 'demo-itest');
    assert.strictEqual(truth.label_key, 'span_id');
    for (const [id, t] of Object.entries(truth.spans)) {
      const s = byId.get(id);
      assert.strictEqual(t.trace_id, s.traceId);
      assert.strictEqual(t.parent_span_id || '', s.parentSpanId || '');
      assert.strictEqual(t.kind, s.kind === 2 ? 'server' : 'internal');
      const root = s.kind === 2 ? s : byId.get(s.parentSpanId);
      assert.strictEqual(t.local_root, root.spanId);
      assert.strictEqual(t.endpoint, root.name);
      assert.strictEqual(t.start_unix_nano, s.startTimeUnixNano);
      assert.ok(Number.isInteger(t.cpu_ns) && t.cpu_ns >= 0);
    }
    let sum = 0;
    for (const [ep, e] of Object.entries(truth.endpoints)) {
      assert.strictEqual(e.designed_share, DESIGNED[ep]);
      assert.ok(Math.abs(e.share - DESIGNED[ep]) < 0.03, `${ep}: share ${e.share}`);
      const spanCpu = Object.values(truth.spans).filter((s) => s.endpoint === ep).reduce((a, s) => a + s.cpu_ns, 0);
      assert.strictEqual(spanCpu, e.cpu_ns, `${ep}: the spans' cpu_ns add up to the endpoint's`);
      sum += e.requests;
    }
    assert.strictEqual(sum, truth.load.requests, 'every request served by a route (not /nothing-here)');
  });
  await test('scraped CPU profile: span_id labels name this run\'s spans and agree with the stacks', async () => {
    assert.strictEqual(prof.status, 200);
    const file = path.join(WORK, 'scraped.pprof');
    fs.writeFileSync(file, prof.body);
    const samples = readProfile(file);
    let work = 0; let workLabelled = 0; let agree = 0; let labelled = 0;
    const share = {};
    for (const s of samples) {
      const fn = s.funcs.find((f) => WORK_FN[f]);
      const id = s.labels.span_id;
      if (id) {
        labelled += s.ns;
        assert.match(id, /^[0-9a-f]{16}$/);
        assert.ok(truth.spans[id], `span_id ${id} is a span of this run`);
        const ep = truth.spans[id].endpoint;
        share[ep] = (share[ep] || 0) + s.ns;
        if (fn && WORK_FN[fn] === ep) agree += s.ns;
      }
      if (fn) {
        work += s.ns;
        if (id) workLabelled += s.ns;
      }
    }
    // ~1.5 s on an idle machine; a busy one gives the service less CPU.
    assert.ok(work >= 0.2e9, `${work / 1e9} s of work sampled`);
    assert.ok(workLabelled / work >= 0.99, `${workLabelled / work} of the work samples carry span_id`);
    assert.ok(agree / workLabelled >= 0.99, `${agree / workLabelled} of them name a span of the endpoint on the stack`);
    // Within 10 points, or 4 standard deviations of the sampling noise when
    // few samples were taken.
    const n = labelled / 1e7;
    for (const [ep, want] of Object.entries(DESIGNED)) {
      const got = (share[ep] || 0) / labelled;
      const tol = Math.max(0.1, 4 * Math.sqrt(want * (1 - want) / n));
      assert.ok(Math.abs(got - want) < tol, `${ep}: ${(100 * got).toFixed(1)} % of ${n} labelled samples, designed ${100 * want} %`);
    }
  });
  otlp.close();

  // ---- 3. push mode ----
  const sink = await recorder(() => [204, '']);
  const pushTruth = path.join(WORK, 'push-truth.json');
  const pusher = start(bin, ['-listen', '127.0.0.1:0', '-otlp-endpoint', 'none', '-service', 'demo-push',
    '-push-url', `${sink.url}/v1/pprof`, '-push-period', '2s', '-load', '5s', '-load-rps', '40', '-truth', pushTruth], 'push');
  const pushExit = await waitExit(pusher, 40000);
  await test('-load: runs its own load, then exits 0 by itself', async () => {
    assert.deepStrictEqual(pushExit, { code: 0, signal: null }, pusher.log());
    const t = JSON.parse(fs.readFileSync(pushTruth, 'utf8'));
    assert.ok(t.client.requests >= 30, JSON.stringify(t.client));
    assert.strictEqual(t.push.failed, 0);
    assert.strictEqual(t.push.pushed, sink.reqs.length);
  });
  await test('push: CPU profiles POSTed to /v1/pprof with service, env, version, type, start, end', async () => {
    assert.ok(sink.reqs.length >= 3, `${sink.reqs.length} pushes (2 full periods and the cut one)`);
    const t = JSON.parse(fs.readFileSync(pushTruth, 'utf8'));
    let ids = 0;
    for (const [i, r] of sink.reqs.entries()) {
      const u = new URL(r.url, 'http://x');
      assert.strictEqual(r.method, 'POST');
      assert.strictEqual(u.pathname, '/v1/pprof');
      assert.strictEqual(u.searchParams.get('service'), 'demo-push');
      assert.strictEqual(u.searchParams.get('env'), 'demo');
      assert.strictEqual(u.searchParams.get('version'), '0.1.0');
      assert.strictEqual(u.searchParams.get('type'), 'cpu');
      const from = Date.parse(u.searchParams.get('start'));
      const to = Date.parse(u.searchParams.get('end'));
      assert.ok(from > 0 && to > from, r.url);
      assert.ok(r.body[0] === 0x1f && r.body[1] === 0x8b, 'gzipped pprof');
      const file = path.join(WORK, `push-${i}.pprof`);
      fs.writeFileSync(file, r.body);
      for (const s of readProfile(file)) {
        if (s.labels.span_id) {
          assert.ok(t.spans[s.labels.span_id], `pushed span_id ${s.labels.span_id} is a span of this run`);
          ids++;
        }
      }
    }
    assert.ok(ids >= 5, `${ids} labelled samples pushed`);
  });
  sink.close();

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL ${e.stack}`);
  process.exit(1);
});
