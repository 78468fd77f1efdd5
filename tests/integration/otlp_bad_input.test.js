// OTLP receiver under bad input over real sockets. HTTP/1.1 cases use
// node's http client and raw TCP; gRPC cases use node's built-in HTTP/2
// client to send exactly the frames a test needs (truncated protobuf, wrong
// wire type, a length prefix larger than the frame, gzip bombs, unknown
// methods and encodings, huge headers, stalled streams...). Each must get
// the specified answer, the process must stay up and keep serving, the
// counters must add up, and memory must come back near its baseline.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');
const protobuf = require('protobufjs');
const h = require('./lib/harness');

const FIX = h.FIXTURES;
const PROTO = fs.readFileSync(path.join(FIX, 'otlp-http-proto.bin'));
const GRPC_MSG = fs.readFileSync(path.join(FIX, 'otlp-grpc-message.bin'));
const JSON_BODY = fs.readFileSync(path.join(FIX, 'otlp-http-json.json'));
const FIXTURE_SPANS = 9;
const MIB = 1 << 20;

const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(h.SRC, 'proto', path.basename(target));
root.loadSync(['google_rpc_status.proto', 'otlp_trace_service.proto'].map((f) => path.join(h.SRC, 'proto', f)), { keepCase: true });
const Status = root.lookupType('google.rpc.Status');
const ExportResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const ExportRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

function haveZstd() {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return false;
  }
}
const zstd = (buf) => execFileSync('zstd', ['-c', '-q'], { input: buf });

// ---- HTTP helpers ----
// A fresh connection per request: idle_timeout is 2 s here, and a pooled
// keep-alive socket the server just closed would fail the next request.
function post(port, body, headers, { pathName = '/v1/traces', method = 'POST' } = {}) {
  return new Promise((resolve, reject) => {
    if (body) headers = { 'content-length': body.length, ...headers };
    const req = http.request(`http://127.0.0.1:${port}${pathName}`, { method, headers, agent: false, timeout: 10000 }, (res) => {
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
const statusOf = (r) => Status.toObject(Status.decode(r.body));

// ---- gRPC helpers ----
const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
function frame(msg, compressed = 0, declared) {
  const pre = Buffer.alloc(5);
  pre[0] = compressed;
  pre.writeUInt32BE(declared === undefined ? msg.length : declared, 1);
  return Buffer.concat([pre, msg]);
}
function grpcConnect(port) {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  return client;
}
// One call: resolves with HTTP status, headers, trailers and data, whether
// the answer is a full response or Trailers-Only.
function grpcCall(client, { pathName = EXPORT, headers = {}, body = null, end = true, timeoutMs = 10000 } = {}) {
  let req;
  const p = new Promise((resolve, reject) => {
    req = client.request({ ':method': 'POST', ':path': pathName, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const out = { status: 0, headers: {}, trailers: {}, data: Buffer.alloc(0) };
    const t = setTimeout(() => { req.close(); reject(new Error('gRPC call timed out')); }, timeoutMs);
    req.on('response', (hd) => { out.status = hd[':status']; out.headers = hd; });
    req.on('trailers', (tr) => { out.trailers = tr; });
    req.on('data', (d) => { out.data = Buffer.concat([out.data, d]); });
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(t);
      out.grpcStatus = Number(out.trailers['grpc-status'] ?? out.headers['grpc-status']);
      out.grpcMessage = decodeURIComponent(String(out.trailers['grpc-message'] ?? out.headers['grpc-message'] ?? ''));
      out.rstCode = req.rstCode;
      resolve(out);
    });
    if (body) req.write(body);
    if (end) req.end();
  });
  p.req = req;
  return p;
}

// Sets a Span's kind (field 6) to a length-delimited value: a wrong wire type.
function wrongWireType() {
  return Buffer.from([0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x32, 0x02, 0x00, 0x00]);
}

function jsonSpans(spans) {
  return Buffer.from(JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-input' } }] }, scopeSpans: [{ spans }] }] }));
}

async function rss(sp) {
  return h.metricSum(await sp.metrics(), 'spanprof_process_resident_memory_bytes');
}

async function main() {
  const [grpcPort, httpPort, healthPort, metricsPort] = [await h.freePort(), await h.freePort(), await h.freePort(), await h.freePort()];
  const dir = h.tmpDir('otlp-bad');
  const out = path.join(dir, 'spans.jsonl');
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpcPort}
        max_recv_msg_size_mib: 1
      http:
        endpoint: 127.0.0.1:${httpPort}
        max_request_body_size: 1MiB
        idle_timeout: 2s
        cors:
          allowed_origins: ["https://*.example.com"]
          max_age: 600
exporters:
  debug:
    path: ${out}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'otlp-bad' });
  let acceptedExpected = 0;
  let grpc;
  try {
    // Warm up both transports once, then take the memory baseline.
    assert.strictEqual((await post(httpPort, PROTO, { 'content-type': 'application/x-protobuf' })).status, 200);
    acceptedExpected += FIXTURE_SPANS;
    grpc = grpcConnect(grpcPort);
    assert.strictEqual((await grpcCall(grpc, { body: frame(GRPC_MSG) })).grpcStatus, 0);
    acceptedExpected += FIXTURE_SPANS;
    const baseline = await rss(sp);

    // ---------------- HTTP ----------------
    await check('http: truncated protobuf -> 400 google.rpc.Status naming the problem', async () => {
      const r = await post(httpPort, PROTO.subarray(0, PROTO.length - 10), { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 400);
      assert.strictEqual(r.headers['content-type'], 'application/x-protobuf');
      const st = statusOf(r);
      assert.strictEqual(st.code, 3);
      assert.match(st.message, /runs past the end of its message/);
    });
    await check('http: wrong wire type -> 400 naming the field path', async () => {
      const r = await post(httpPort, wrongWireType(), { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 400);
      assert.match(statusOf(r).message, /'resource_spans\[0\]\.scope_spans\[0\]\.spans\[0\]\.kind': wire type 2/);
    });
    await check('http: invalid JSON -> 400 JSON Status', async () => {
      const r = await post(httpPort, Buffer.from('{"resourceSpans":[{"scopeSpans":[}'), { 'content-type': 'application/json' });
      assert.strictEqual(r.status, 400);
      assert.match(r.headers['content-type'], /^application\/json/);
      const st = JSON.parse(r.body);
      assert.strictEqual(st.code, 3);
      assert.match(st.message, /invalid JSON at byte \d+/);
    });
    await check('http: base64 trace ids in JSON -> 400 saying ids are hex', async () => {
      const body = jsonSpans([{ traceId: 'X/rE0AOJlVDP/7UnE8kHvw==', spanId: 'tByW0EzrsdY=', name: 'b64' }]);
      const r = await post(httpPort, body, { 'content-type': 'application/json; charset=utf-8' });
      assert.strictEqual(r.status, 400);
      const st = JSON.parse(r.body);
      assert.match(st.message, /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.traceId/);
      assert.match(st.message, /hex.*not base64/);
    });
    await check('http: wrong content type -> 415', async () => {
      const r = await post(httpPort, PROTO, { 'content-type': 'text/plain' });
      assert.strictEqual(r.status, 415);
      assert.match(r.body.toString(), /application\/x-protobuf or application\/json/);
    });
    await check('http: unknown Content-Encoding -> 415 with Status in the request encoding', async () => {
      const r = await post(httpPort, PROTO, { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' });
      assert.strictEqual(r.status, 415);
      assert.match(statusOf(r).message, /Content-Encoding 'br'/);
    });
    await check('http: gzip bomb -> 413 while inflating', async () => {
      const bomb = zlib.gzipSync(Buffer.alloc(64 * MIB), { level: 9 });
      assert.ok(bomb.length < 100 * 1024);
      const r = await post(httpPort, bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
      assert.strictEqual(r.status, 413);
      assert.match(statusOf(r).message, /inflates past the limit of 1048576 bytes/);
    });
    await check('http: body over max_request_body_size (Content-Length) -> 413', async () => {
      const r = await post(httpPort, Buffer.alloc(2 * MIB, 1), { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 413);
      assert.match(statusOf(r).message, /request body of 2097152 bytes is over max_request_body_size/);
    });
    await check('http: chunked body over max_request_body_size -> 413 while reading', async () => {
      const r = await new Promise((resolve, reject) => {
        const req = http.request(`http://127.0.0.1:${httpPort}/v1/traces`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode }));
        });
        req.on('error', reject);
        for (let i = 0; i < 40; i++) req.write(Buffer.alloc(64 * 1024, 0x20));
        req.end();
      });
      assert.strictEqual(r.status, 413);
    });
    await check('http: GET -> 405 with Allow', async () => {
      const r = await post(httpPort, null, {}, { method: 'GET' });
      assert.strictEqual(r.status, 405);
      assert.strictEqual(r.headers.allow, 'POST, OPTIONS');
    });
    await check('http: other path -> 404', async () => {
      const r = await post(httpPort, PROTO, { 'content-type': 'application/x-protobuf' }, { pathName: '/v1/profiles' });
      assert.strictEqual(r.status, 404);
      assert.match(r.body.toString(), /\/v1\/traces \(traces\), \/v1\/metrics \(metrics\) and \/v1\/logs \(logs\)/);
    });
    await check('http: huge headers -> 431', async () => {
      const r = await post(httpPort, PROTO, { 'content-type': 'application/x-protobuf', 'x-huge': 'a'.repeat(100 * 1024) });
      assert.strictEqual(r.status, 431);
    });
    await check('http: partial success (JSON): invalid ids rejected, the rest accepted', async () => {
      const ok = { traceId: '0102030405060708090A0B0C0D0E0F10', spanId: '0102030405060708', name: 'good' };
      const bad = { traceId: '00000000000000000000000000000000', spanId: '0102030405060709', name: 'zero trace' };
      const r = await post(httpPort, jsonSpans([ok, bad]), { 'content-type': 'application/json' });
      assert.strictEqual(r.status, 200);
      const body = JSON.parse(r.body);
      assert.strictEqual(body.partialSuccess.rejectedSpans, '1');
      assert.match(body.partialSuccess.errorMessage, /spans\[1\]: trace_id is all zeroes/);
      acceptedExpected += 1;
    });
    await check('http: partial success (protobuf)', async () => {
      const req = ExportRequest.fromObject({ resource_spans: [{ scope_spans: [{ spans: [
        { trace_id: Buffer.alloc(16, 1), span_id: Buffer.alloc(8, 2), name: 'good' },
        { trace_id: Buffer.alloc(16, 1), span_id: Buffer.alloc(7, 2), name: 'short id' },
        { trace_id: Buffer.alloc(16, 1), span_id: Buffer.alloc(8, 3), parent_span_id: Buffer.alloc(3, 1), name: 'bad parent' },
      ] }] }] });
      const r = await post(httpPort, Buffer.from(ExportRequest.encode(req).finish()), { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 200);
      const resp = ExportResponse.toObject(ExportResponse.decode(r.body), { longs: Number });
      assert.strictEqual(resp.partial_success.rejected_spans, 2);
      assert.match(resp.partial_success.error_message, /span_id is 7 bytes, expected 8/);
      acceptedExpected += 1;
    });
    await check('http: deflate and zstd encodings', async () => {
      const r1 = await post(httpPort, zlib.deflateSync(PROTO), { 'content-type': 'application/x-protobuf', 'content-encoding': 'deflate' });
      assert.strictEqual(r1.status, 200);
      acceptedExpected += FIXTURE_SPANS;
      if (haveZstd()) {
        const r2 = await post(httpPort, zstd(JSON_BODY), { 'content-type': 'application/json', 'content-encoding': 'zstd' });
        assert.strictEqual(r2.status, 200);
        assert.strictEqual(r2.body.toString(), '{}');
        acceptedExpected += FIXTURE_SPANS;
      }
    });
    await check('http: CORS preflight and POST from an allowed origin; others refused', async () => {
      const pre = await post(httpPort, null, { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }, { method: 'OPTIONS' });
      assert.strictEqual(pre.status, 204);
      assert.strictEqual(pre.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.strictEqual(pre.headers['access-control-allow-methods'], 'POST');
      assert.strictEqual(pre.headers['access-control-max-age'], '600');
      const bad = await post(httpPort, null, { origin: 'https://evil.test', 'access-control-request-method': 'POST' }, { method: 'OPTIONS' });
      assert.strictEqual(bad.status, 403);
      const r = await post(httpPort, JSON_BODY, { 'content-type': 'application/json', origin: 'https://app.example.com' });
      assert.strictEqual(r.status, 200);
      assert.strictEqual(r.headers['access-control-allow-origin'], 'https://app.example.com');
      acceptedExpected += FIXTURE_SPANS;
    });
    await check('http: a client that stops mid-body is closed after idle_timeout; others are served', async () => {
      const sock = net.connect(httpPort, '127.0.0.1');
      await new Promise((r) => sock.on('connect', r));
      const closed = new Promise((r) => sock.on('close', r));
      sock.on('error', () => {});
      sock.resume();
      sock.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${PROTO.length}\r\n\r\n`);
      sock.write(PROTO.subarray(0, 100));
      const t0 = Date.now();
      const r = await post(httpPort, PROTO, { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 200);
      acceptedExpected += FIXTURE_SPANS;
      const winner = await Promise.race([closed.then(() => 'closed'), h.sleep(10000).then(() => 'timeout')]);
      assert.strictEqual(winner, 'closed', 'stalled connection still open after 10 s');
      assert.ok(Date.now() - t0 >= 1500, `closed too early (${Date.now() - t0} ms)`);
    });
    await check('http: empty protobuf request -> 200', async () => {
      const r = await post(httpPort, Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
      assert.strictEqual(r.status, 200);
    });

    // ---------------- gRPC ----------------
    await check('grpc: valid export -> OK with a framed ExportTraceServiceResponse and trailers', async () => {
      const r = await grpcCall(grpc, { body: frame(GRPC_MSG) });
      assert.strictEqual(r.status, 200);
      assert.strictEqual(r.grpcStatus, 0);
      assert.ok(r.trailers['grpc-status'] !== undefined, 'grpc-status must come in trailers');
      assert.deepStrictEqual([...r.data], [0, 0, 0, 0, 0]);
      acceptedExpected += FIXTURE_SPANS;
    });
    await check('grpc: truncated protobuf -> INVALID_ARGUMENT naming the problem', async () => {
      const r = await grpcCall(grpc, { body: frame(GRPC_MSG.subarray(0, GRPC_MSG.length - 10)) });
      assert.strictEqual(r.grpcStatus, 3);
      assert.match(r.grpcMessage, /runs past the end of its message/);
    });
    await check('grpc: wrong wire type -> INVALID_ARGUMENT naming the field', async () => {
      const r = await grpcCall(grpc, { body: frame(wrongWireType()) });
      assert.strictEqual(r.grpcStatus, 3);
      assert.match(r.grpcMessage, /spans\[0\]\.kind': wire type 2/);
    });
    await check('grpc: length prefix larger than the frame -> INVALID_ARGUMENT', async () => {
      const r = await grpcCall(grpc, { body: frame(GRPC_MSG.subarray(0, 10), 0, 1000) });
      assert.strictEqual(r.grpcStatus, 3);
      assert.match(r.grpcMessage, /declares 1000 bytes, the stream ended after 10/);
    });
    await check('grpc: message over max_recv_msg_size_mib -> RESOURCE_EXHAUSTED before the body', async () => {
      const r = await grpcCall(grpc, { body: frame(Buffer.alloc(100), 0, 2 * MIB), end: false });
      assert.strictEqual(r.grpcStatus, 8);
      assert.match(r.grpcMessage, /2097152 bytes is over the limit of 1048576/);
    });
    await check('grpc: gzip bomb -> RESOURCE_EXHAUSTED while inflating', async () => {
      const bomb = zlib.gzipSync(Buffer.alloc(64 * MIB), { level: 9 });
      const r = await grpcCall(grpc, { headers: { 'grpc-encoding': 'gzip' }, body: frame(bomb, 1) });
      assert.strictEqual(r.grpcStatus, 8);
      assert.match(r.grpcMessage, /inflates past the limit of 1048576/);
    });
    await check('grpc: gzip and zstd compressed messages', async () => {
      const r = await grpcCall(grpc, { headers: { 'grpc-encoding': 'gzip' }, body: frame(zlib.gzipSync(GRPC_MSG), 1) });
      assert.strictEqual(r.grpcStatus, 0);
      acceptedExpected += FIXTURE_SPANS;
      if (haveZstd()) {
        const z = await grpcCall(grpc, { headers: { 'grpc-encoding': 'zstd' }, body: frame(zstd(GRPC_MSG), 1) });
        assert.strictEqual(z.grpcStatus, 0);
        acceptedExpected += FIXTURE_SPANS;
      }
    });
    await check('grpc: compressed flag without grpc-encoding -> INVALID_ARGUMENT', async () => {
      const r = await grpcCall(grpc, { body: frame(zlib.gzipSync(GRPC_MSG), 1) });
      assert.strictEqual(r.grpcStatus, 3);
      assert.match(r.grpcMessage, /compressed flag/);
    });
    await check('grpc: unknown method -> UNIMPLEMENTED', async () => {
      const r = await grpcCall(grpc, { pathName: '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export', body: frame(Buffer.alloc(0)) });
      assert.strictEqual(r.grpcStatus, 12);
      assert.match(r.grpcMessage, /unknown method/);
    });
    await check('grpc: unknown grpc-encoding -> UNIMPLEMENTED', async () => {
      const r = await grpcCall(grpc, { headers: { 'grpc-encoding': 'br' }, body: frame(Buffer.from('x'), 1) });
      assert.strictEqual(r.grpcStatus, 12);
    });
    await check('grpc: non-gRPC content-type -> HTTP 415', async () => {
      const r = await grpcCall(grpc, { headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
      assert.strictEqual(r.status, 415);
      assert.strictEqual(r.grpcStatus, 3);
    });
    await check('grpc: huge headers -> RESOURCE_EXHAUSTED (431)', async () => {
      const r = await grpcCall(grpc, { headers: { 'x-huge': 'a'.repeat(20 * 1024) }, body: frame(GRPC_MSG) });
      assert.strictEqual(r.status, 431);
      assert.strictEqual(r.grpcStatus, 8);
    });
    await check('grpc: 50 concurrent streams on one connection, one of them stalled mid-message', async () => {
      const stalled = grpcCall(grpc, { body: frame(GRPC_MSG).subarray(0, 300), end: false, timeoutMs: 60000 });
      const calls = [];
      for (let i = 0; i < 50; i++) calls.push(grpcCall(grpc, { body: frame(GRPC_MSG) }));
      const rs = await Promise.all(calls);
      for (const r of rs) assert.strictEqual(r.grpcStatus, 0);
      acceptedExpected += 50 * FIXTURE_SPANS;
      const st = await Promise.race([stalled.then(() => 'answered'), h.sleep(300).then(() => 'pending')]);
      assert.strictEqual(st, 'pending', 'a stream with half a message must not be answered');
      stalled.req.close(http2.constants.NGHTTP2_CANCEL);
      await stalled;
    });
    await check('grpc: HTTP/1.1 on the gRPC port -> 400 naming the OTLP/HTTP address, closed', async () => {
      // A real HTTP/1.1 client (node's http), as an OTLP/HTTP exporter pointed at 4317 would be.
      const r = await h.httpRequest(`http://127.0.0.1:${grpcPort}/v1/traces`, { headers: { 'content-type': 'application/x-protobuf' }, body: PROTO });
      assert.strictEqual(r.status, 400);
      assert.strictEqual(r.headers.connection, 'close');
      const text = r.body.toString();
      assert.ok(text.includes(`OTLP/HTTP is served on 127.0.0.1:${httpPort}`), text);
      assert.match(text, /speaks HTTP\/2 only/);
      await h.sleep(100);
      assert.ok(sp.log().includes(`OTLP/HTTP is served on 127.0.0.1:${httpPort}`), 'log line points to the OTLP/HTTP port');
      // And a raw socket sees the answer, then the close.
      const sock = net.connect(grpcPort, '127.0.0.1');
      sock.on('error', () => {});
      let got = '';
      sock.on('data', (d) => { got += d.toString('latin1'); });
      const closed = new Promise((res) => sock.on('close', res));
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      const winner = await Promise.race([closed.then(() => 'closed'), h.sleep(5000).then(() => 'open')]);
      assert.strictEqual(winner, 'closed');
      assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/);
    });
    await check('grpc: TLS (an https:// exporter) on the gRPC port -> closed, a log line saying http://', async () => {
      const tls = require('node:tls');
      const err = await new Promise((res) => {
        const s = tls.connect({ host: '127.0.0.1', port: grpcPort, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
        s.on('error', (e) => res(e));
        s.on('secureConnect', () => res(null));
      });
      assert.ok(err, 'the TLS handshake must fail');
      await h.sleep(100);
      assert.match(sp.log(), /a TLS handshake on the OTLP\/gRPC port 127\.0\.0\.1:\d+, which serves plaintext \(h2c\): point the exporter at http:\/\//);
    });

    // ---------------- afterwards ----------------
    await check('process still up and serving; counters add up; memory near baseline', async () => {
      assert.strictEqual(sp.exited(), null, 'spanprof exited');
      const r = await grpcCall(grpc, { body: frame(GRPC_MSG) });
      assert.strictEqual(r.grpcStatus, 0);
      acceptedExpected += FIXTURE_SPANS;
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_spans_total'), acceptedExpected, 'accepted spans');
      assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_spans_total'), 3, 'refused (invalid) spans');
      assert.ok(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'http', outcome: 'invalid' }) >= 4);
      assert.ok(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'grpc', outcome: 'invalid' }) >= 4);
      assert.ok(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'grpc', outcome: 'too_large' }) >= 3);
      // (the chunked 413 is sp_httpd's own, answered before the receiver sees a body)
      assert.strictEqual(h.metricSum(m, 'spanprof_receiver_requests_total', { transport: 'http', outcome: 'too_large' }), 2);
      const now = await rss(sp);
      console.log(`     rss baseline ${(baseline / MIB).toFixed(1)} MiB, now ${(now / MIB).toFixed(1)} MiB`);
      assert.ok(now < baseline + 32 * MIB, `RSS grew from ${baseline} to ${now}`);
    });
  } finally {
    if (grpc) grpc.destroy();
    const r = await sp.stop();
    if (r.code !== 0) {
      failures++;
      console.log(`FAIL spanprof exit ${JSON.stringify(r)}\n${sp.log()}`);
    }
  }
  if (failures) {
    console.log(`${failures} checks failed; spanprof log:\n${sp.log().split('\n').slice(-40).join('\n')}`);
    process.exit(1);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
