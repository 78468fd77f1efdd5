// Overload: a flood of large OTLP exports on both transports while the
// Datadog intake is down, then recovery. Real clients (node's http on
// keep-alive connections, @grpc/grpc-js unary calls), loopback only,
// bounded in time and count. Asserts:
//   - the process stays alive;
//   - the health check and /metrics answer within 1 s throughout;
//   - RSS stays under service.memory_limit plus a stated overhead;
//   - refusals happened before decoding and say when to retry;
//   - after the intake recovers, every accepted span is delivered or
//     counted as dropped (accepted = delivered + counted drops).
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const zlib = require('node:zlib');
const http = require('node:http');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');
const { Worker } = require('node:worker_threads');
const h = require('./lib/harness');

// The prober (a worker thread): GET each URL with a 1 s timeout every
// 200 ms, sample spanprof's RSS, report when told to stop.
const PROBE_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const fs = require('node:fs');
let stop = false;
parentPort.on('message', () => { stop = true; });
const get = (url) => new Promise((resolve, reject) => {
  const req = http.get(url, { timeout: 1000, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', reject);
});
(async () => {
  const r = { n: 0, max: 0, failed: [], rssMax: 0, lat: [] };
  while (!stop) {
    for (const url of workerData.urls) {
      const t0 = Date.now();
      try {
        const st = await get(url);
        r.max = Math.max(r.max, Date.now() - t0);
        r.lat.push(Date.now() - t0);
        if (st !== 200) r.failed.push(url + ': ' + st);
      } catch (e) { r.lat.push(Date.now() - t0); r.failed.push(url + ': ' + e.message + ' after ' + (Date.now() - t0) + ' ms'); }
      r.n++;
    }
    const m = /VmRSS:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/' + workerData.pid + '/status', 'utf8'));
    if (m) r.rssMax = Math.max(r.rssMax, Number(m[1]) / 1024);
    await new Promise((res) => setTimeout(res, 200));
  }
  parentPort.postMessage(r);
})();
`;

const MIB = 1 << 20;
const LIMIT_MIB = 96;
// What RSS may exceed the ceiling by: code and libraries (~10 MiB), MHD's
// and nghttp2's per-connection buffers, the compressor's state and malloc
// slack. The Datadog exporter reserves its mapping arena, pack buffer, open
// and sealed payloads (issue 17), and spanprof fixes glibc's mmap threshold
// so freed multi-MiB buffers go back to the kernel. Measured with that:
// peak RSS 91.5 MiB for the 96 MiB ceiling (193 MiB before). The allowance
// is 32 MiB (README "Limits and overload").
const OVERHEAD_MIB = 32;
// meson test sets MALLOC_PERTURB_, which makes glibc fill every block it
// hands out, so pages a production process never touches (buffers' spare
// capacity) become resident: 141-173 MiB peak RSS in this test with it.
// spanprof is started without it here; RSS is what a deployment sees.
delete process.env.MALLOC_PERTURB_;
// The scenario (first argument): 'http' (default) floods OTLP/HTTP with
// HTTP_CONNS connections and gRPC with GRPC_CHANNELS x GRPC_STREAMS calls;
// 'grpc' floods gRPC alone (8 x 16) and OTLP/HTTP gets only the small
// client. In both a small client on each transport (one 10-span export
// every 300 ms, its own connection) must get an answer -- accepted, or
// refused with a retry hint -- within SMALL_MAX_MS: one transport's flood
// does not starve the other listener (issue 17).
const SCENARIO = process.argv[2] || 'http';
if (SCENARIO === 'grpc') {
  process.env.FLOOD_HTTP_CONNS = process.env.FLOOD_HTTP_CONNS || '0';
  process.env.FLOOD_GRPC_CHANNELS = process.env.FLOOD_GRPC_CHANNELS || '8';
}
const FLOOD_MS = Number(process.env.FLOOD_MS || 12000);
const HTTP_CONNS = Number(process.env.FLOOD_HTTP_CONNS || 32);
const GRPC_CHANNELS = Number(process.env.FLOOD_GRPC_CHANNELS || 2);
const GRPC_STREAMS = Number(process.env.FLOOD_GRPC_STREAMS || 16);
// bench/overload.sh reuses this flood: FLOOD_BENCH=1 prints a RESULT line
// instead of asserting; FLOOD_NO_LIMIT=1 runs a build without
// service.memory_limit (the BEFORE figures); FLOOD_GZIP_BOMB=1 posts gzip
// bombs (64 MiB of zeros, ~64 KiB compressed) instead of the large body.
const BENCH = process.env.FLOOD_BENCH === '1';
const NO_LIMIT = process.env.FLOOD_NO_LIMIT === '1';
const BOMB = process.env.FLOOD_GZIP_BOMB === '1';
const ASAN = fs.readFileSync(h.BIN).includes('__asan_init');
const SMALL_MAX_MS = ASAN ? 15000 : 3000;

// One ~3.6 MB ExportTraceServiceRequest (24000 spans), built once and
// sent over and over; the small clients' has 10 spans.
function bigRequest(n = 24000) {
  const root = new protobuf.Root();
  root.resolvePath = (o, t) => path.join(h.SRC, 'proto', path.basename(t));
  root.loadSync(path.join(h.SRC, 'proto', 'otlp_trace_service.proto'), { keepCase: true });
  const Req = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const spans = [];
  for (let i = 0; i < n; i++) {
    const id = Buffer.alloc(8);
    id.writeUInt32BE(i + 1, 4);
    const tid = Buffer.alloc(16);
    tid.writeUInt32BE(Math.floor(i / 10) + 1, 12);
    spans.push({
      trace_id: tid, span_id: id, name: `GET /api/items/${i % 50}`, kind: 2,
      start_time_unix_nano: 1700000000000000000 + i * 1000, end_time_unix_nano: 1700000000000500000 + i * 1000,
      attributes: [
        { key: 'http.method', value: { string_value: 'GET' } },
        { key: 'http.route', value: { string_value: `/api/items/${i % 50}` } },
        { key: 'flood.index', value: { int_value: i } },
      ],
    });
  }
  const req = {
    resource_spans: [{
      resource: { attributes: [{ key: 'service.name', value: { string_value: 'flood' } }] },
      scope_spans: [{ scope: { name: 'flood' }, spans }],
    }],
  };
  return { body: Buffer.from(Req.encode(Req.fromObject(req)).finish()), spans: n };
}

async function main() {
  let { body, spans } = bigRequest();
  const small = bigRequest(10);
  assert.ok(body.length > 3 * MIB && body.length < 4 * MIB, `body of ${body.length} bytes`);
  const httpHeaders = { 'content-type': 'application/x-protobuf' };
  if (BOMB) {
    body = zlib.gzipSync(Buffer.alloc(64 * MIB), { level: 9 });
    httpHeaders['content-encoding'] = 'gzip';
  }
  let intakeUp = false;
  const intake = await h.startIntake({ respond: () => (intakeUp ? null : { status: 503, body: 'down' }) });
  const [grpcPort, httpPort, healthPort, metricsPort] = await Promise.all([h.freePort(), h.freePort(), h.freePort(), h.freePort()]);
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${grpcPort}}
      http: {endpoint: 127.0.0.1:${httpPort}}
exporters:
  datadog:
    api: {key: flood-test-key}
    traces: {endpoint: ${intake.url}}
    profiles: {endpoint: ${intake.url}}
    retry_on_failure: {initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s}
    sending_queue: {num_consumers: 2, max_bytes: 48MiB}
extensions:
  health_check: {endpoint: 127.0.0.1:${healthPort}}
service:
${NO_LIMIT ? '' : `  memory_limit: ${LIMIT_MIB}MiB`}
  extensions: [health_check]
  shutdown_timeout: 5s
  pipelines:
    traces: {receivers: [otlp], exporters: [datadog]}
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'flood' });
  const pid = sp.child.pid;
  let stop = false;
  const sent = { http: { ok: 0, refused: 0, other: 0, retryAfter: 0 }, grpc: { ok: 0, refused: 0, other: 0, retryInfo: 0 } };
  try {
    // --- the probes: health and /metrics every 200 ms, 1 s timeout, on a
    // worker thread so the flood's client work cannot delay their timing ---
    const probe = { n: 0, max: 0, failed: [], rssMax: 0 };
    const worker = new Worker(PROBE_SRC, { eval: true, workerData: { urls: [`http://127.0.0.1:${healthPort}/`, `http://127.0.0.1:${metricsPort}/metrics`], pid } });
    const probing = new Promise((resolve, reject) => {
      worker.on('message', (r) => { Object.assign(probe, r); resolve(); });
      worker.on('error', reject);
    });
    // --- HTTP/1.1 flood: keep-alive connections posting in a loop ---
    const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONNS });
    const postOnce = () => new Promise((resolve) => {
      const t0 = Date.now();
      const req = http.request({
        host: '127.0.0.1', port: httpPort, path: '/v1/traces', method: 'POST', agent, timeout: 30000,
        headers: { ...httpHeaders, 'content-length': body.length },
      }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) sent.http.ok++;
          else if (res.statusCode === 429 || res.statusCode === 503) {
            sent.http.refused++;
            if (res.headers['retry-after'] === '1') sent.http.retryAfter++;
          } else {
            sent.http.other++;
            if (!sent.http.firstOther) sent.http.firstOther = `HTTP ${res.statusCode}`;
          }
          resolve();
        });
      });
      req.on('error', (e) => {
        sent.http.other++;
        if (!sent.http.firstOther) sent.http.firstOther = `${e.code || ''} ${e.message} after ${Date.now() - t0} ms`;
        resolve();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(body);
    });
    const httpLoops = Array.from({ length: HTTP_CONNS }, async () => {
      while (!stop) await postOnce();
    });

    // --- gRPC flood: grpc-js channels, concurrent unary Export calls ---
    const clients = Array.from({ length: GRPC_CHANNELS }, () => new grpc.Client(`127.0.0.1:${grpcPort}`,
      grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * MIB }));
    const callOnce = (c) => new Promise((resolve) => {
      c.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        (b) => b, (b) => b, body, { deadline: Date.now() + 30000 }, (err) => {
          if (!err) sent.grpc.ok++;
          else if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED) {
            sent.grpc.refused++;
            const det = err.metadata && err.metadata.get('grpc-status-details-bin');
            if (det && det.length && Buffer.from(det[0]).includes('google.rpc.RetryInfo')) sent.grpc.retryInfo++;
          } else {
            sent.grpc.other++;
            if (!sent.grpc.firstOther) sent.grpc.firstOther = `${err.code} ${err.details}`;
          }
          resolve();
        });
    });
    const grpcLoops = [];
    for (const c of clients) {
      for (let i = 0; i < GRPC_STREAMS; i++) grpcLoops.push((async () => { while (!stop) await callOnce(c); })());
    }

    // --- the small clients: one small export every 300 ms per transport,
    // each on its own connection; answered = accepted or refused with a
    // retry hint; the time to the answer is what is checked ---
    const smallAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const smallGrpc = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(),
      { 'grpc.use_local_subchannel_pool': 1 });
    const smallRes = { http: { ok: 0, refused: 0, lat: [], failed: [] }, grpc: { ok: 0, refused: 0, lat: [], failed: [] } };
    const smallHttp = () => new Promise((resolve) => {
      const t0 = Date.now();
      const req = http.request({
        host: '127.0.0.1', port: httpPort, path: '/v1/traces', method: 'POST', agent: smallAgent, timeout: 30000,
        headers: { 'content-type': 'application/x-protobuf', 'content-length': small.body.length },
      }, (res) => {
        res.resume();
        res.on('end', () => {
          smallRes.http.lat.push(Date.now() - t0);
          if (res.statusCode === 200) smallRes.http.ok++;
          else if ((res.statusCode === 429 || res.statusCode === 503) && res.headers['retry-after']) smallRes.http.refused++;
          else smallRes.http.failed.push(`HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (e) => { smallRes.http.failed.push(`${e.message} after ${Date.now() - t0} ms`); resolve(); });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(small.body);
    });
    const smallCall = () => new Promise((resolve) => {
      const t0 = Date.now();
      smallGrpc.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        (b) => b, (b) => b, small.body, { deadline: Date.now() + 30000 }, (err) => {
          smallRes.grpc.lat.push(Date.now() - t0);
          if (!err) smallRes.grpc.ok++;
          else if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED) smallRes.grpc.refused++;
          else smallRes.grpc.failed.push(`${err.code} ${err.details} after ${Date.now() - t0} ms`);
          resolve();
        });
    });
    const smallLoops = [smallHttp, smallCall].map((f) => (async () => {
      while (!stop) {
        await f();
        await h.sleep(300);
      }
    })());

    await h.sleep(FLOOD_MS);
    stop = true;
    worker.postMessage('stop');
    await Promise.all([...httpLoops, ...grpcLoops, ...smallLoops, probing]);
    agent.destroy();
    smallAgent.destroy();
    for (const c of clients) c.close();
    smallGrpc.close();
    const smallMax = { http: Math.max(0, ...smallRes.http.lat), grpc: Math.max(0, ...smallRes.grpc.lat) };

    console.log(`flood ${FLOOD_MS} ms (${SCENARIO}): http ${JSON.stringify(sent.http)} grpc ${JSON.stringify(sent.grpc)}`);
    for (const t of ['http', 'grpc']) {
      const r = smallRes[t];
      console.log(`small ${t} client: ${r.lat.length} requests, ${r.ok} accepted, ${r.refused} refused, slowest answer ${smallMax[t]} ms${r.failed.length ? `, failed: ${r.failed.slice(0, 3).join('; ')}` : ''}`);
    }
    const lat = probe.lat.slice().sort((a, b) => a - b);
    const p99 = lat.length ? lat[Math.min(lat.length - 1, Math.floor(0.99 * lat.length))] : -1;
    console.log(`probes ${probe.n}, slowest ${probe.max} ms, p99 ${p99} ms, peak RSS ${probe.rssMax.toFixed(1)} MiB`);
    if (BENCH) {
      console.log(`RESULT flood scenario=${SCENARIO} small_http_max_ms=${smallMax.http} small_grpc_max_ms=${smallMax.grpc} http_conns=${HTTP_CONNS} grpc=${GRPC_CHANNELS}x${GRPC_STREAMS} bomb=${BOMB ? 1 : 0} seconds=${FLOOD_MS / 1000} alive=${sp.exited() ? 0 : 1} probes=${probe.n} probe_failures=${probe.failed.length} probe_max_ms=${probe.max} probe_p99_ms=${p99} rss_peak_mib=${probe.rssMax.toFixed(1)} http_ok=${sent.http.ok} http_refused=${sent.http.refused} http_other=${sent.http.other} grpc_ok=${sent.grpc.ok} grpc_refused=${sent.grpc.refused} grpc_other=${sent.grpc.other}`);
      return;
    }
    assert.strictEqual(sp.exited(), null, `spanprof died: ${JSON.stringify(sp.exited())}\n${sp.log().slice(-3000)}`);
    assert.deepStrictEqual(probe.failed, [], 'health or /metrics did not answer within 1 s');
    assert.ok(probe.n >= 10, `only ${probe.n} probes`);
    assert.ok(probe.max < 1000, `slowest probe ${probe.max} ms`);
    // AddressSanitizer's shadow memory and quarantine are not spanprof's:
    // under it the bound on RSS is not meaningful (the charged peak below is).
    if (!ASAN) {
      assert.ok(probe.rssMax < LIMIT_MIB + OVERHEAD_MIB,
        `peak RSS ${probe.rssMax.toFixed(1)} MiB over ${LIMIT_MIB} + ${OVERHEAD_MIB} MiB`);
    }
    // The other listener stays served: every small request was answered,
    // and soon (bounded by one loop turn, i.e. by the largest single
    // request being processed: ~0.5 s here, several seconds under ASan).
    for (const t of ['http', 'grpc']) {
      assert.deepStrictEqual(smallRes[t].failed, [], `small ${t} client not answered`);
      assert.ok(smallRes[t].lat.length >= 3, `small ${t} client got only ${smallRes[t].lat.length} answers`);
      assert.ok(smallMax[t] < SMALL_MAX_MS, `small ${t} client waited ${smallMax[t]} ms for an answer`);
    }
    if (HTTP_CONNS > 0) assert.ok(sent.http.refused > 0, 'no HTTP request was refused: no overload');
    if (GRPC_CHANNELS > 0) assert.ok(sent.grpc.refused > 0, 'no gRPC request was refused: no overload');
    assert.strictEqual(sent.http.retryAfter, sent.http.refused, 'an HTTP refusal without Retry-After');
    assert.strictEqual(sent.grpc.retryInfo, sent.grpc.refused, 'a gRPC refusal without RetryInfo');

    let m = await sp.metrics();
    const unread = h.metricSum(m, 'spanprof_receiver_refused_unread_requests_total');
    const peak = h.metricSum(m, 'spanprof_memory_peak_bytes');
    console.log(`refused unread: ${unread}, memory peak charged ${(peak / MIB).toFixed(1)} MiB`);
    assert.ok(unread > 0, 'no request was refused before it was read');
    // Every charge is a reservation (the Datadog exporter's included), so
    // the accounted total never passes the hard mark.
    assert.ok(peak <= LIMIT_MIB * MIB, `charged memory peaked at ${peak} bytes, over the ceiling`);

    // --- recovery: the intake comes back, the queue drains ---
    intakeUp = true;
    const accepted = () => h.metricSum(m, 'spanprof_receiver_accepted_spans_total');
    const settled = () => h.metricSum(m, 'spanprof_exporter_sent_spans_total') +
      h.metricSum(m, 'spanprof_exporter_failed_spans_total') +
      h.metricSum(m, 'spanprof_exporter_dropped_spans_total');
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      m = await sp.metrics();
      if (settled() === accepted() && h.metricSum(m, 'spanprof_exporter_queue_size') === 0) break;
      await h.sleep(250);
    }
    console.log(`accepted ${accepted()} spans (${accepted() / spans} requests), sent ${h.metricSum(m, 'spanprof_exporter_sent_spans_total')}, failed ${h.metricSum(m, 'spanprof_exporter_failed_spans_total')}, dropped ${h.metricSum(m, 'spanprof_exporter_dropped_spans_total')}`);
    assert.ok(accepted() > 0, 'nothing accepted during the flood');
    assert.strictEqual(accepted(), (sent.http.ok + sent.grpc.ok) * spans + (smallRes.http.ok + smallRes.grpc.ok) * small.spans,
      'accepted spans differ from what clients saw accepted');
    assert.strictEqual(settled(), accepted(), 'accepted != delivered + counted drops');
    assert.strictEqual(h.metricSum(m, 'spanprof_memory_used_bytes', { class: 'bodies' }), 0, 'body memory still charged after the flood');
    console.log('ok   flood survived: alive, probes < 1 s, RSS bounded, accepted = delivered + drops');
  } finally {
    stop = true;
    await sp.stop();
    await intake.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
