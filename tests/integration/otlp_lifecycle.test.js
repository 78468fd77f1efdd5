// OTLP/gRPC connection lifecycle with node's built-in HTTP/2 client:
// keepalive settings (max_connection_idle and max_connection_age send
// GOAWAY; too frequent client pings get GOAWAY ENHANCE_YOUR_CALM; the
// server's own keepalive PING is answered by the client and the connection
// lives on) and shutdown (SIGTERM sends GOAWAY, a stream in flight still
// completes with OK, then spanprof exits 0).
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const http2 = require('node:http2');
const path = require('node:path');
const h = require('./lib/harness');

const GRPC_MSG = fs.readFileSync(path.join(h.FIXTURES, 'otlp-grpc-message.bin'));
const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function framed(msg) {
  const pre = Buffer.alloc(5);
  pre.writeUInt32BE(msg.length, 1);
  return Buffer.concat([pre, msg]);
}

function connect(port) {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.goaways = [];
  client.on('goaway', (code, last, data) => client.goaways.push({ code, last, data: data ? data.toString() : '', at: Date.now() }));
  client.on('error', () => {});
  return client;
}

// Starts a call; `finish()` sends the rest; resolves with the gRPC status.
function call(client, body, { split = 0 } = {}) {
  const req = client.request({ ':method': 'POST', ':path': EXPORT, 'content-type': 'application/grpc', te: 'trailers' });
  let hd = {};
  let tr = {};
  const done = new Promise((resolve) => {
    req.on('response', (x) => { hd = x; });
    req.on('trailers', (x) => { tr = x; });
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => resolve(Number(tr['grpc-status'] ?? hd['grpc-status'] ?? -1)));
  });
  if (split) {
    req.write(body.subarray(0, split));
    return { done, finish: () => req.end(body.subarray(split)) };
  }
  req.end(body);
  return { done, finish: () => {} };
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return;
    await h.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function config(p, grpcExtra) {
  return `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${p.grpc}
${grpcExtra}
exporters:
  debug:
    path: ${p.out}
extensions:
  health_check:
    endpoint: 127.0.0.1:${p.health}
service:
  extensions: [health_check]
  shutdown_timeout: 10s
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics: {address: 127.0.0.1:${p.metrics}}
`;
}

async function ports() {
  return { grpc: await h.freePort(), health: await h.freePort(), metrics: await h.freePort(), out: path.join(h.tmpDir('otlp-life'), 'spans.jsonl') };
}

async function keepalive() {
  const p = await ports();
  const sp = await h.startSpanprof(config(p, `        keepalive:
          server_parameters:
            max_connection_idle: 600ms
            time: 300ms
            timeout: 2s
          enforcement_policy:
            min_time: 10s
            permit_without_stream: true`), { healthPort: p.health, metricsPort: p.metrics, name: 'otlp-ka' });
  try {
    // Idle: one export, then nothing; GOAWAY max_idle after ~600 ms, even
    // though the server's keepalive pings (every 300 ms) are answered.
    const a = connect(p.grpc);
    assert.strictEqual(await call(a, framed(GRPC_MSG)).done, 0);
    const t0 = Date.now();
    await waitFor(() => a.goaways.length > 0, 5000, 'GOAWAY after max_connection_idle');
    assert.strictEqual(a.goaways[0].code, 0);
    assert.strictEqual(a.goaways[0].data, 'max_idle');
    assert.ok(Date.now() - t0 >= 400, `GOAWAY came too early (${Date.now() - t0} ms)`);
    await waitFor(() => a.closed || a.destroyed, 5000, 'the idle connection to close');
    console.log('ok   max_connection_idle: GOAWAY max_idle, connection closed');

    // Too many pings: the third strike ends the connection.
    const b = connect(p.grpc);
    await new Promise((r) => b.on('connect', r));
    for (let i = 0; i < 5 && b.goaways.length === 0; i++) {
      await new Promise((r) => b.ping(() => r()));
    }
    await waitFor(() => b.goaways.length > 0, 3000, 'GOAWAY for too many pings');
    assert.strictEqual(b.goaways[0].code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.strictEqual(b.goaways[0].data, 'too_many_pings');
    b.destroy();
    console.log('ok   enforcement_policy: GOAWAY ENHANCE_YOUR_CALM too_many_pings');
  } finally {
    await sp.stop();
  }
}

async function ageAndShutdown() {
  const p = await ports();
  const sp = await h.startSpanprof(config(p, `        keepalive:
          server_parameters:
            max_connection_age: 1s
            max_connection_age_grace: 30s`), { healthPort: p.health, metricsPort: p.metrics, name: 'otlp-age' });
  try {
    // Age: GOAWAY max_age while a stream is open; the stream still finishes.
    const a = connect(p.grpc);
    const body = framed(GRPC_MSG);
    const c = call(a, body, { split: 100 });
    await waitFor(() => a.goaways.length > 0, 5000, 'GOAWAY after max_connection_age');
    assert.strictEqual(a.goaways[0].data, 'max_age');
    c.finish();
    assert.strictEqual(await c.done, 0, 'the stream open at GOAWAY must complete');
    await waitFor(() => a.closed || a.destroyed, 5000, 'the old connection to close');
    console.log('ok   max_connection_age: GOAWAY max_age, the open stream completed, connection closed');

    // Shutdown: a stream in flight at SIGTERM completes; then exit 0.
    const b = connect(p.grpc);
    assert.strictEqual(await call(b, body).done, 0);
    const inflight = call(b, body, { split: 200 });
    await h.sleep(100);
    sp.child.kill('SIGTERM');
    await waitFor(() => b.goaways.length > 0, 5000, 'GOAWAY at shutdown');
    assert.strictEqual(b.goaways[0].code, 0);
    inflight.finish();
    assert.strictEqual(await inflight.done, 0, 'the stream in flight at shutdown must complete');
    const ex = await sp.waitExit();
    assert.strictEqual(ex.code, 0, `exit ${JSON.stringify(ex)}`);
    const lines = fs.readFileSync(p.out, 'utf8').split('\n').filter(Boolean);
    assert.strictEqual(lines.length, 3 * 9, 'spans at the exporter');
    console.log('ok   shutdown: GOAWAY, in-flight stream completed, exit 0, every span exported');
  } finally {
    sp.kill();
  }
}

async function main() {
  await keepalive();
  await ageAndShutdown();
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
