// pprof receiver under bad input: every refusal answered with the status and
// a message naming the part and the problem, counted, logged; a bad
// attachment does not drop the good ones of its upload; size bounds hold
// (multipart part, request body, gzip and zstd bombs); a full pipeline is
// answered 429 with Retry-After; and spanprof stays up and keeps serving.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const zlib = require('node:zlib');
const h = require('./lib/harness');
const L = require('./pprof_lib');

const r = L.runner('pprof_bad_input');
const FIX = h.FIXTURES;
const HDRS = JSON.parse(fs.readFileSync(path.join(FIX, 'dd-profile-upload.headers.json')));
const UPLOAD = fs.readFileSync(path.join(FIX, 'dd-profile-upload.multipart'));
const GO_CPU = fs.readFileSync(path.join(FIX, 'go-cpu-spanid.pprof'));

// A small valid pprof, and one variant per broken reference.
function pprof({ labelStr = 5, locRef = 1, nvals = 1 } = {}) {
  const T = h.protos().lookupType('perftools.profiles.Profile');
  const msg = T.create({
    sample_type: [{ type: 1, unit: 2 }],
    sample: [{ location_id: [locRef], value: Array(nvals).fill(10), label: [{ key: 4, str: labelStr }] }],
    location: [{ id: 1, line: [{ function_id: 1, line: 3 }] }],
    function: [{ id: 1, name: 3 }],
    string_table: ['', 'cpu', 'nanoseconds', 'main', 'span_id', '00f067aa0ba902b7'],
  });
  return zlib.gzipSync(Buffer.from(T.encode(msg).finish()));
}

function upload(parts, boundary = 'b0undary') {
  const chunks = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.name === 'event' ? 'event.json' : p.name}"\r\n\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'dd-evp-origin': 'itest' } };
}

function event(attachments, service = 'bad-input-svc') {
  return JSON.stringify({
    attachments, start: '2026-11-21T23:21:55.000Z', end: '2026-11-21T23:22:05.000Z', family: 'go', version: '4',
    tags_profiler: `service:${service},env:itest,runtime-id:11111111-2222-3333-4444-555555555555`,
  });
}

async function post(s, p, body, headers = {}) {
  return h.httpRequest(`${s.base}${p}`, { headers, body, timeoutMs: 20000 });
}

async function main() {
  const s = await L.startPprof({
    name: 'pprof-bad',
    receiverYaml: '    max_profile_size: 256KiB\n    max_request_size: 1MiB\n    max_attachments: 4\n',
  });
  r.cleanup(() => s.sp.stop());
  let refusedDd = 0, refusedPprof = 0, refusedPyro = 0;

  await r.test('multipart without a boundary: 400', async () => {
    const res = await post(s, '/profiling/v1/input', UPLOAD, { 'content-type': 'multipart/form-data' });
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /multipart\/form-data without a boundary parameter/);
    refusedDd++;
  });

  await r.test('not multipart at all: 415', async () => {
    const res = await post(s, '/profiling/v1/input', UPLOAD, { 'content-type': 'application/json' });
    assert.strictEqual(res.status, 415);
    assert.match(res.body.toString(), /not multipart\/form-data/);
    refusedDd++;
  });

  await r.test('truncated multipart body: 400 naming the part', async () => {
    const res = await post(s, '/profiling/v1/input', UPLOAD.subarray(0, Math.floor(UPLOAD.length * 0.6)), HDRS);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /part 1 \('wall\.pprof'\) truncated/);
    refusedDd++;
  });

  await r.test('bad attachments are dropped, the good ones kept, and the response says which', async () => {
    const u = upload([
      { name: 'event', data: event(['cpu.pprof', 'garbage.pprof', 'badref.pprof', 'big.pprof', 'metrics.json']) },
      { name: 'cpu.pprof', data: GO_CPU },
      { name: 'garbage.pprof', data: Buffer.from([0x07, 0xff, 0xff, 0xff, 0xff, 0xff]) },
      { name: 'badref.pprof', data: pprof({ labelStr: 900 }) },
      { name: 'big.pprof', data: Buffer.alloc(300 * 1024, 7) },
    ]);
    const res = await post(s, '/profiling/v1/input', u.body, u.headers);
    assert.strictEqual(res.status, 200, res.body.toString());
    const body = JSON.parse(res.body);
    assert.strictEqual(body.accepted, 1);
    const why = Object.fromEntries(body.dropped.map((d) => [d.name, d.error]));
    assert.deepStrictEqual(Object.keys(why).sort(), ['badref.pprof', 'big.pprof', 'garbage.pprof']);
    assert.match(why['garbage.pprof'], /not a valid pprof protobuf message/);
    assert.match(why['badref.pprof'], /sample\[0\]\.label\[0\]\.str: string index 900 out of range \(table has 6 strings\)/);
    assert.match(why['big.pprof'], /over max_profile_size/);
    const line = await L.waitFor(() => s.out().find((l) => l.service === 'bad-input-svc'), 10000, 'the partly good upload');
    assert.deepStrictEqual(line.attachments.map((a) => a.name), ['cpu.pprof']);
    assert.strictEqual(line.attachments[0].pprof.samples, L.goRaw(path.join(FIX, 'go-cpu-spanid.pprof')).samples.length);
    assert.match(s.sp.log(), /dropped 3 attachment\(s\): 'garbage\.pprof': not a valid pprof/);
  });

  await r.test('an upload with no valid attachment: 400 listing them', async () => {
    const u = upload([
      { name: 'event', data: event(['a.pprof'], 'all-bad') },
      { name: 'a.pprof', data: pprof({ nvals: 3 }) },
      { name: 'b.pprof', data: pprof({ locRef: 9 }) },
    ]);
    const res = await post(s, '/profiling/v1/input', u.body, u.headers);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /'a\.pprof': sample\[0\]: 3 values for 1 sample types/);
    assert.match(res.body.toString(), /'b\.pprof': sample\[0\]\.location_id\[0\]: no location with id 9/);
    refusedDd++;
  });

  await r.test('bad or missing event part: 400', async () => {
    let u = upload([{ name: 'event', data: '{"start": 12' }, { name: 'cpu.pprof', data: GO_CPU }]);
    let res = await post(s, '/profiling/v1/input', u.body, u.headers);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /part 'event': event\.json is not valid JSON/);
    u = upload([{ name: 'cpu.pprof', data: GO_CPU }]);
    res = await post(s, '/profiling/v1/input', u.body, u.headers);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /no 'event' part/);
    refusedDd += 2;
  });

  await r.test('more parts than max_attachments: 413', async () => {
    const parts = [{ name: 'event', data: event([]) }];
    for (let i = 0; i < 6; i++) parts.push({ name: `p${i}.pprof`, data: GO_CPU });
    const u = upload(parts);
    const res = await post(s, '/profiling/v1/input', u.body, u.headers);
    assert.strictEqual(res.status, 413);
    assert.match(res.body.toString(), /more than 5 parts/);
    refusedDd++;
  });

  await r.test('gzip and zstd bombs: 413 while inflating', async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const gz = zlib.gzipSync(zeros, { level: 9 });
    let res = await post(s, '/v1/pprof?service=bomb', gz);
    assert.strictEqual(res.status, 413);
    assert.match(res.body.toString(), /body: gzip: body inflates past the limit of 262144 bytes/);
    const zst = execFileSync('zstd', ['-q', '-19', '-c'], { input: zeros, maxBuffer: 1 << 26 });
    res = await post(s, '/v1/pprof?service=bomb', zst);
    assert.strictEqual(res.status, 413);
    assert.match(res.body.toString(), /zstd/);
    refusedPprof += 2;
  });

  await r.test('invalid protobuf and broken references on /v1/pprof: 400', async () => {
    let res = await post(s, '/v1/pprof', Buffer.from('<html><body>not a profile</body></html>'));
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /^body: /);
    res = await post(s, '/v1/pprof', pprof({ labelStr: 900 }));
    assert.strictEqual(res.status, 400);
    assert.strictEqual(res.body.toString(), 'body: sample[0].label[0].str: string index 900 out of range (table has 6 strings)\n');
    res = await post(s, '/v1/pprof', Buffer.alloc(0));
    assert.strictEqual(res.status, 400);
    res = await post(s, '/v1/pprof?start=yesterday', GO_CPU);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /query 'start'/);
    refusedPprof += 4;
  });

  await r.test('request body over max_request_size: 413, spanprof keeps serving', async () => {
    // Node's client sends the whole body without waiting for an answer.
    const res = await post(s, '/v1/pprof', Buffer.alloc(2 * 1024 * 1024, 1));
    assert.strictEqual(res.status, 413);
    assert.match(res.body.toString(), /over the limit of 1048576 bytes/);
    assert.ok(await s.healthy());
  });

  await r.test('Pyroscope: missing name, unsupported format, multipart without profile', async () => {
    let res = await post(s, '/ingest?from=1', GO_CPU);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /'name' is required/);
    res = await post(s, '/ingest?name=x&format=folded', Buffer.from('a;b;c 1\n'));
    assert.strictEqual(res.status, 415);
    res = await post(s, '/ingest?name=x%7Bunclosed', GO_CPU);
    assert.strictEqual(res.status, 400);
    const u = upload([{ name: 'sample_type_config', data: '{}' }]);
    res = await post(s, '/ingest?name=x', u.body, u.headers);
    assert.strictEqual(res.status, 400);
    assert.match(res.body.toString(), /no 'profile' part/);
    refusedPyro += 4;
  });

  await r.test('wrong methods and paths: 405, 404', async () => {
    assert.strictEqual((await h.httpGet(`${s.base}/v1/pprof`)).status, 405);
    assert.strictEqual((await h.httpGet(`${s.base}/profiling/v1/input`)).status, 405);
    assert.strictEqual((await post(s, '/nope', GO_CPU)).status, 404);
  });

  await r.test('a slow client that never finishes its body does not block others', async () => {
    const sock = require('node:net').connect(s.port, '127.0.0.1');
    await new Promise((ok) => sock.on('connect', ok));
    sock.write('POST /v1/pprof HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial');
    const res = await post(s, '/v1/pprof?service=after-slow', GO_CPU);
    assert.strictEqual(res.status, 204);
    sock.destroy();
  });

  await r.test('refusals are counted per dialect, and spanprof still serves', async () => {
    const m = await s.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_profiles_total', { dialect: 'datadog' }), refusedDd);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_profiles_total', { dialect: 'pprof' }), refusedPprof);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_profiles_total', { dialect: 'pyroscope' }), refusedPyro);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_dropped_attachments_total', { dialect: 'datadog' }), 3);
    assert.ok(await s.healthy());
    const res = await post(s, '/v1/pprof?service=still-up', GO_CPU);
    assert.strictEqual(res.status, 204);
    const st = await s.sp.stop();
    assert.strictEqual(st.code, 0);
  });

  await r.test('a full pipeline answers 429 with Retry-After', async () => {
    // The datadog exporter (agent mode) with one consumer, a queue of one,
    // and an agent that never answers: the third profile finds no room.
    const hung = http.createServer(() => {});
    const socks = new Set();
    hung.on('connection', (c) => { socks.add(c); });
    await new Promise((ok) => hung.listen(0, '127.0.0.1', ok));
    r.cleanup(() => new Promise((ok) => { for (const c of socks) c.destroy(); hung.close(ok); }));
    const [port, healthPort, metricsPort] = await L.ports(3);
    const sp = await h.startSpanprof(`
receivers:
  pprof:
    endpoint: 127.0.0.1:${port}
    retry_after: 2s
exporters:
  datadog:
    agent: {endpoint: "http://127.0.0.1:${hung.address().port}"}
    timeout: 30s
    sending_queue: {queue_size: 1, num_consumers: 1}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  shutdown_timeout: 2s
  pipelines:
    profiles:
      receivers: [pprof]
      exporters: [datadog]
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`, { healthPort, metricsPort, name: 'pprof-full' });
    r.cleanup(() => sp.stop());
    const statuses = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await h.httpRequest(`http://127.0.0.1:${port}/v1/pprof?service=full-${i}`, { body: GO_CPU });
      statuses.push(last.status);
      if (last.status === 429) break;
      await h.sleep(200);
    }
    assert.strictEqual(last.status, 429, `statuses ${statuses}`);
    assert.strictEqual(last.headers['retry-after'], '2');
    const m = await sp.metrics();
    assert.ok(h.metricSum(m, 'spanprof_receiver_refused_profiles_total', { dialect: 'pprof' }) >= 1);
    // the same holds for a Datadog upload
    const res = await h.httpRequest(`http://127.0.0.1:${port}/profiling/v1/input`, { headers: HDRS, body: UPLOAD });
    assert.strictEqual(res.status, 429);
  });
}

main().then(() => r.finish(), (e) => r.finish(e));
