// The status page (GET /status, /status.json on the metrics address) in a
// real browser: Debian's chromium driven by puppeteer-core (pinned in
// package-lock.json), while the Go demo service runs through spanprof
// (scraped CPU profiles, OTLP/HTTP spans, the join, the Datadog exporter
// against a recording intake):
//   1. the page shows the demo's three endpoints with CPU shares within 5
//      points of the design (60/30/10), and the hit ratio; nothing failed
//      to load: no console error, no request outside spanprof; a PNG
//      screenshot is saved (build/status-page/status.png; STATUS_PNG=path
//      copies it, e.g. to docs/status.png);
//   2. the shares are the labelled samples that went to Datadog: the
//      page's CPU per endpoint equals the sum over the uploads' cpu.pprof;
//   3. /status.json has the documented shape;
//   4. XSS: a span named <script>alert(1)</script> and a bad request whose
//      message quotes <img src=x onerror=alert(3)> show as text: no dialog,
//      no element made from them;
//   5. only GET/HEAD: POST answers 405;
//   6. 10 clients on the page for 10 s during the load: all answered, and
//      nothing refused, failed or dropped by the pipeline.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { test } = require('node:test');
const puppeteer = require('puppeteer-core');
const d = require('./datadog_lib');
const h = require('./lib/harness');

const DESIGNED = { 'GET /api/users/{id}': 0.6, 'GET /api/orders': 0.3, 'GET /healthz': 0.1 };
// ~13 s of sampled CPU (about 1,300 samples at Go's 100 Hz): a share's
// sampling error is then about 1.5 points, well inside the 5 allowed.
const LOAD_SECONDS = Number(process.env.STATUS_LOAD_SECONDS || 30);
const LOAD_RPS = Number(process.env.STATUS_LOAD_RPS || 80);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const XSS_ENDPOINT = '<script>alert(1)</script>';
const XSS_HEADER = '<img src=x onerror=alert(3)>';

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${last && last.stack ? last.stack : JSON.stringify(last)}`);
    await h.sleep(250);
  }
}

// /status.json's documented shape (README "Status page"): types of every
// member the page and scripts rely on.
function checkSchema(doc) {
  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const isStr = (x) => typeof x === 'string';
  const isArr = Array.isArray;
  const row = (r, where) => {
    assert.ok(isNum(r.samples) && isNum(r.value) && isNum(r.share), `${where}: ${JSON.stringify(r)}`);
    assert.ok(r.share >= 0 && r.share <= 1, `${where}: share ${r.share}`);
  };
  assert.strictEqual(doc.version, 1);
  assert.ok(isNum(doc.generated_unix_ms) && Math.abs(doc.generated_unix_ms - Date.now()) < 60000);
  assert.ok(isArr(doc.pipelines) && doc.pipelines.length >= 2);
  for (const p of doc.pipelines) {
    assert.ok(isStr(p.id) && ['traces', 'profiles', 'metrics', 'logs'].includes(p.signal), JSON.stringify(p));
    for (const k of ['receivers', 'processors', 'exporters']) assert.ok(isArr(p[k]) && p[k].every(isStr), `${p.id}.${k}`);
  }
  assert.ok(isArr(doc.components) && doc.components.length >= 4);
  for (const c of doc.components) {
    assert.ok(isStr(c.id) && isStr(c.type), JSON.stringify(c).slice(0, 200));
    assert.ok(['receiver', 'processor', 'exporter', 'extension'].includes(c.kind), c.kind);
    assert.ok(isArr(c.series), `${c.id}.series`);
    for (const s of c.series) {
      assert.ok(isStr(s.name) && s.name.startsWith('spanprof_') && isNum(s.value), JSON.stringify(s));
      assert.ok(s.labels && typeof s.labels === 'object' && !('component' in s.labels), JSON.stringify(s));
      for (const v of Object.values(s.labels)) assert.ok(isStr(v));
    }
    assert.ok(c.events && typeof c.events === 'object', `${c.id}.events`);
    for (const [k, e] of Object.entries(c.events)) {
      assert.ok(['bad_request', 'delivered', 'export_error'].includes(k), k);
      assert.ok(isNum(e.count) && e.count >= 1 && isNum(e.unix_ms) && isStr(e.text), JSON.stringify(e));
    }
    assert.ok(isNum(c.deliveries_per_s) && c.deliveries_per_s >= 0);
  }
  assert.ok(isArr(doc.join) && doc.join.length === 1);
  const j = doc.join[0];
  assert.strictEqual(j.id, 'join');
  assert.strictEqual(j.window_s, 300);
  assert.strictEqual(j.value_type, 'cpu');
  assert.ok(isNum(j.services_over_cap));
  for (const s of j.services) {
    assert.ok(isStr(s.service) && isNum(s.samples) && isNum(s.value));
    assert.ok(isArr(s.endpoints));
    for (const e of s.endpoints) { assert.ok(isStr(e.endpoint)); row(e, `${s.service} ${e.endpoint}`); }
    for (const k of ['other_endpoints', 'no_span_id', 'no_endpoint']) row(s[k], `${s.service}.${k}`);
  }
  assert.strictEqual(j.hit_ratio.bucket_s, 60);
  assert.strictEqual(j.hit_ratio.points.length, 15);
  for (const p of j.hit_ratio.points) {
    assert.ok(isNum(p.matched) && isNum(p.span_labelled) && (p.ratio === null || isNum(p.ratio)));
  }
  assert.ok(isNum(j.hit_ratio.matched) && isNum(j.hit_ratio.span_labelled));
  for (const k of ['no_span_label', 'span_unknown', 'not_pii_safe', 'root_unknown', 'endpoint_dropped']) {
    assert.ok(isNum(j.misses[k]), `misses.${k}`);
  }
  assert.ok(isNum(j.index.spans) && isNum(j.index.max_spans) && isNum(j.index.bytes));
  assert.ok(isNum(j.held.profiles) && isNum(j.held.bytes) && isNum(j.held.max_profiles) && isNum(j.held.max_bytes));
  assert.ok(isArr(doc.listeners) && doc.listeners.length >= 4);
  for (const l of doc.listeners) {
    assert.ok(isStr(l.component) && isStr(l.serves) && /^[^:]+:\d+$/.test(l.address), JSON.stringify(l));
  }
}

// A Go-shaped CPU pprof with one sample whose span_id label names spanHex.
function xssProfile(spanHex) {
  const T = h.protos().lookupType('perftools.profiles.Profile');
  const now = Date.now();
  const msg = T.fromObject({
    sample_type: [{ type: 1, unit: 2 }, { type: 3, unit: 4 }],
    sample: [{ location_id: [1], value: [7, 70000000], label: [{ key: 5, str: 6 }] }],
    location: [{ id: 1, line: [{ function_id: 1 }] }],
    function: [{ id: 1, name: 7, system_name: 7 }],
    string_table: ['', 'samples', 'count', 'cpu', 'nanoseconds', 'span_id', spanHex, 'main.xss'],
    time_nanos: (now - 2000) * 1e6,
    duration_nanos: 1e9,
    period_type: { type: 3, unit: 4 },
    period: 10000000,
  });
  return zlib.gzipSync(Buffer.from(T.encode(msg).finish()));
}

test('status page in headless chromium', { timeout: 240000 }, async (t) => {
  const out = path.join(h.BUILD, 'status-page');
  fs.mkdirSync(out, { recursive: true });
  const demoBin = path.join(out, 'demo-service');
  execFileSync('bash', [path.join(h.SRC, 'examples/demo-service/build.sh'), demoBin], { stdio: 'inherit' });

  const intake = await h.startIntake();
  t.after(() => intake.close());
  const [httpPort, pprofPort, healthPort, metricsPort, appPort] = await Promise.all(
    Array.from({ length: 5 }, () => h.freePort()));
  const sp = await h.startSpanprof(d.config({
    otlpPort: httpPort, healthPort, metricsPort, pprofPort, intake: intake.url, join: true,
    joinDelay: '3s', shutdown: '15s', timeout: '10s',
    retry: '{initial_interval: 200ms, max_interval: 1s}',
    scrape: `    scrape:
      - targets: [127.0.0.1:${appPort}]
        service: demo-service
        profiles: [cpu]
        interval: 5s
        cpu_duration: 4s
        timeout: 10s`,
  }), { healthPort, metricsPort, name: 'status-page' });
  t.after(() => sp.kill());
  const base = `http://127.0.0.1:${metricsPort}`;

  const app = h.startProcess(demoBin, ['-listen', `127.0.0.1:${appPort}`, '-service', 'demo-service',
    '-otlp-endpoint', `http://127.0.0.1:${httpPort}`, '-load', `${LOAD_SECONDS}s`, '-load-rps', String(LOAD_RPS)],
  {}, path.join(out, 'demo-service.log'));
  t.after(() => app.child.kill('SIGKILL'));

  // XSS: a local root span whose endpoint is markup, a profile sample under
  // it, and a bad request whose message quotes a markup content type.
  const spanHex = 'a1b2c3d4e5f60718';
  const ns = BigInt(Date.now()) * 1000000n;
  const spans = {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'xss-svc' } }] },
      scopeSpans: [{ spans: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: spanHex,
        name: XSS_ENDPOINT, kind: 2, startTimeUnixNano: String(ns - 1000000000n), endTimeUnixNano: String(ns) }] }],
    }],
  };
  let r = await h.httpRequest(`http://127.0.0.1:${httpPort}/v1/traces`, {
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(spans) });
  assert.strictEqual(r.status, 200, r.body.toString());
  await h.sleep(300);
  r = await h.httpRequest(`http://127.0.0.1:${pprofPort}/v1/pprof?service=xss-svc&type=cpu`, {
    headers: { 'content-type': 'application/octet-stream' }, body: xssProfile(spanHex) });
  assert.ok(r.status < 300, `push: ${r.status} ${r.body}`);
  r = await h.httpRequest(`http://127.0.0.1:${httpPort}/v1/traces`, {
    headers: { 'content-type': XSS_HEADER }, body: '{}' });
  assert.ok(r.status >= 400, `bad request answered ${r.status}`);

  await t.test('only GET and HEAD', async () => {
    for (const p of ['/status', '/status.json']) {
      const res = await h.httpRequest(base + p, { method: 'POST', body: 'x' });
      assert.strictEqual(res.status, 405, p);
      assert.match(res.headers.allow, /GET/);
    }
    const page = await h.httpGet(`${base}/status`);
    assert.strictEqual(page.status, 200);
    assert.match(page.headers['content-type'], /text\/html/);
    assert.match(page.headers['content-security-policy'], /default-src 'none'/);
    // Self-contained: no URL to anywhere in the page.
    assert.doesNotMatch(page.body.toString(), /(src|href)\s*=\s*["']?(https?:)?\/\//i);
  });

  // 10 clients on the page for 10 s while the load runs: every view
  // answered, and the pipeline refuses, fails or drops nothing.
  await t.test('10 page clients for 10 s leave the pipeline alone', async () => {
    const until = Date.now() + 10000;
    let views = 0;
    const bad = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (Date.now() < until) {
        for (const p of ['/status', '/status.json']) {
          const res = await h.httpGet(base + p, 5000);
          if (res.status !== 200) bad.push(`${p}: ${res.status}`);
        }
        views++;
      }
    }));
    console.log(`page views in 10 s by 10 clients: ${views}`);
    assert.deepStrictEqual(bad, []);
    assert.ok(views >= 50, `${views} views`);
    const m = await sp.metrics();
    for (const name of ['spanprof_receiver_refused_spans_total', 'spanprof_receiver_refused_profiles_total',
      'spanprof_exporter_failed_spans_total', 'spanprof_exporter_failed_profiles_total',
      'spanprof_exporter_dropped_spans_total']) {
      assert.strictEqual(h.metricSum(m, name), 0, name);
    }
    assert.ok(h.metricSum(m, 'spanprof_receiver_accepted_spans_total') > 0);
  });

  // Wait until the load is over and its last scrape has been joined and
  // delivered: the window then holds every profile of the run.
  await app.exited;
  await h.sleep(9000);

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: h.tmpDir('chromium-profile'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1100 });
  const consoleErrors = [];
  const requests = [];
  const dialogs = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('requestfailed', (q) => consoleErrors.push(`failed: ${q.url()}`));
  page.on('request', (q) => requests.push(q.url()));
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await page.goto(`${base}/status`, { waitUntil: 'load' });

  const readRows = () => page.evaluate(() => Array.from(document.querySelectorAll('.service')).map((s) => ({
    service: s.getAttribute('data-service'),
    title: s.querySelector('.service-name').textContent,
    rows: Array.from(s.querySelectorAll('.endpoint-row')).map((r) => ({
      endpoint: r.querySelector('.name').textContent,
      attr: r.getAttribute('data-endpoint'),
      fig: r.querySelector('.fig').textContent,
    })),
  })));
  const services = await waitFor(async () => {
    const s = await readRows();
    const demo = s.find((x) => x.service === 'demo-service');
    return demo && demo.rows.length >= 3 && s.find((x) => x.service === 'xss-svc') ? s : null;
  }, 30000, 'the demo endpoints and the xss service on the page');

  await t.test('the demo endpoints with their designed CPU shares', async () => {
    const demo = services.find((x) => x.service === 'demo-service');
    const shown = {};
    for (const row of demo.rows) {
      const m = /^([\d.]+)%/.exec(row.fig);
      assert.ok(m, `share text '${row.fig}'`);
      shown[row.endpoint] = Number(m[1]) / 100;
    }
    console.log(`page shares: ${JSON.stringify(shown)}`);
    for (const [ep, want] of Object.entries(DESIGNED)) {
      assert.ok(ep in shown, `${ep} not on the page: ${Object.keys(shown)}`);
      assert.ok(Math.abs(shown[ep] - want) <= 0.05, `${ep}: page shows ${shown[ep]}, designed ${want}`);
    }
    const hit = await page.$eval('#hit-ratio', (e) => e.textContent);
    assert.match(hit, /^\d+(\.\d)?%$/, `hit ratio text '${hit}'`);
    assert.ok(Number(hit.slice(0, -1)) > 50, `hit ratio ${hit}`);
    const chartPoints = await page.$$eval('#hit-chart circle', (c) => c.length);
    assert.ok(chartPoints >= 1, 'hit ratio chart has no point');
  });

  await t.test('escaped: markup from outside shows as text', async () => {
    const xss = services.find((x) => x.service === 'xss-svc');
    assert.deepStrictEqual(xss.rows.map((r) => r.endpoint), [XSS_ENDPOINT]);
    assert.strictEqual(xss.rows[0].attr, XSS_ENDPOINT);
    const bad = await waitFor(() => page.$$eval('.bad-request', (e) => e.map((x) => x.textContent)), 5000, 'bad request');
    assert.ok(bad.some((s) => s.includes(XSS_HEADER)), `bad requests shown: ${JSON.stringify(bad)}`);
    const visible = await page.evaluate(() => document.body.innerText);
    assert.ok(visible.includes(XSS_ENDPOINT), 'the endpoint text is visible');
    const made = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      imgs: document.querySelectorAll('img').length,
    }));
    assert.deepStrictEqual(made, { scripts: 1, imgs: 0 });
    assert.deepStrictEqual(dialogs, []);
  });

  await t.test('the page\'s shares are the samples that went to Datadog', async () => {
    // CPU per endpoint over every cpu.pprof the intake received for the demo.
    const sent = {};
    for (const rec of intake.requests.filter((q) => q.url === '/api/v2/profile')) {
      const parts = h.parseMultipart(rec.body, rec.headers['content-type']);
      const event = JSON.parse(parts.find((p) => p.name === 'event').data.toString());
      if (!/(^|,)service:demo-service(,|$)/.test(event.tags_profiler || '')) continue;
      const cpu = parts.find((p) => /cpu/.test(p.filename || ''));
      const prof = h.decodePprof(cpu.data);
      const vi = prof.sampleTypes.indexOf('cpu/nanoseconds');
      for (const s of prof.samples) {
        const ep = s.labels['trace endpoint'];
        if (ep) sent[ep] = (sent[ep] || 0) + s.values[vi];
      }
    }
    const doc = JSON.parse((await h.httpGet(`${base}/status.json`)).body.toString());
    const svc = doc.join[0].services.find((s) => s.service === 'demo-service');
    const onPage = Object.fromEntries(svc.endpoints.map((e) => [e.endpoint, e.value]));
    assert.deepStrictEqual(onPage, sent);
  });

  await t.test('/status.json has the documented shape', async () => {
    const res = await h.httpGet(`${base}/status.json`);
    assert.strictEqual(res.status, 200);
    assert.match(res.headers['content-type'], /application\/json/);
    const doc = JSON.parse(res.body.toString());
    checkSchema(doc);
    const dd = doc.components.find((c) => c.id === 'datadog');
    assert.ok(dd.events.delivered && /\/api\/v2\/profile|\/api\/v0.2\/(traces|stats)/.test(dd.events.delivered.text));
    assert.ok(!res.body.toString().includes(d.KEY), 'the API key in /status.json');
  });

  await t.test('nothing failed to load, nothing outside spanprof', async () => {
    await h.sleep(2500); // one more refresh
    assert.deepStrictEqual(consoleErrors, []);
    const outside = requests.filter((u) => !u.startsWith(`${base}/`));
    assert.deepStrictEqual(outside, []);
    assert.ok(requests.filter((u) => u === `${base}/status.json`).length >= 2, 'the page refreshes itself');
  });

  const png = path.join(out, 'status.png');
  await page.screenshot({ path: png, fullPage: true });
  console.log(`screenshot: ${png}`);
  if (process.env.STATUS_PNG) fs.copyFileSync(png, process.env.STATUS_PNG);
  await page.close();
  const exit = await sp.stop();
  assert.strictEqual(exit.code, 0, sp.log());
});
