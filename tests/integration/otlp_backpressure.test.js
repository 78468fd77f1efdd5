// OTLP receiver when the pipeline is full: the next stage (the datadog
// exporter, one consumer, a queue of one batch, its intake never answering)
// refuses batches, and the receiver must answer so SDKs retry, from the
// request's headers alone (sp_component_ready, before the body is read):
// HTTP 429 with Retry-After and a google.rpc.Status body, gRPC UNAVAILABLE
// with a google.rpc.RetryInfo detail. Refusals are counted, never silent.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');
const path = require('node:path');
const protobuf = require('protobufjs');
const h = require('./lib/harness');

const FIX = h.FIXTURES;
const PROTO = fs.readFileSync(path.join(FIX, 'otlp-http-proto.bin'));
const GRPC_MSG = fs.readFileSync(path.join(FIX, 'otlp-grpc-message.bin'));

const root = new protobuf.Root();
root.loadSync(path.join(h.SRC, 'proto', 'google_rpc_status.proto'), { keepCase: true });
const Status = root.lookupType('google.rpc.Status');

function post(port, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${port}/v1/traces`, {
      method: 'POST', agent: false, timeout: 10000,
      headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function grpcExport(port, msg) {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
    const pre = Buffer.alloc(5);
    pre.writeUInt32BE(msg.length, 1);
    let hd = {};
    let tr = {};
    req.on('response', (x) => { hd = x; });
    req.on('trailers', (x) => { tr = x; });
    req.on('data', () => {});
    req.on('close', () => {
      client.close();
      const det = tr['grpc-status-details-bin'] ?? hd['grpc-status-details-bin'];
      resolve({ status: Number(tr['grpc-status'] ?? hd['grpc-status']), message: decodeURIComponent(String(tr['grpc-message'] ?? hd['grpc-message'] ?? '')), details: det ? Buffer.from(String(det), 'base64') : null });
    });
    req.end(Buffer.concat([pre, msg]));
  });
}

async function main() {
  const intake = await h.startIntake({ respond: () => ({ hang: true }) });
  const [grpcPort, httpPort, healthPort, metricsPort] = [await h.freePort(), await h.freePort(), await h.freePort(), await h.freePort()];
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${grpcPort}
      http:
        endpoint: 127.0.0.1:${httpPort}
exporters:
  datadog:
    api: {key: "a1b2c3d4e5f60718293a4b5c6d7e9f3c"}
    traces: {endpoint: "${intake.url}"}
    profiles: {endpoint: "${intake.url}"}
    timeout: 60s
    sending_queue: {queue_size: 1, num_consumers: 1}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  extensions: [health_check]
  shutdown_timeout: 2s
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [datadog]
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'otlp-full' });
  try {
    // Fill the consumer and the queue; then the pipeline refuses.
    let accepted = 0;
    let full = null;
    for (let i = 0; i < 10 && !full; i++) {
      const r = await post(httpPort, PROTO);
      if (r.status === 200) accepted++;
      else full = r;
    }
    assert.ok(full, 'the pipeline never filled up');
    assert.ok(accepted >= 1, 'nothing was accepted before the pipeline filled');
    assert.strictEqual(full.status, 429, `status ${full.status}: ${full.body}`);
    assert.strictEqual(full.headers['retry-after'], '1');
    assert.strictEqual(full.headers['content-type'], 'application/x-protobuf');
    const st = Status.toObject(Status.decode(full.body));
    assert.match(st.message, /'datadog' refused the traces/);
    console.log(`ok   http: ${accepted} exports accepted, then 429 with Retry-After: ${st.message}`);

    const g = await grpcExport(grpcPort, GRPC_MSG);
    assert.strictEqual(g.status, 14, `grpc-status ${g.status} ${g.message}`);
    // The retry hint: google.rpc.Status{details: [Any{RetryInfo{retry_delay}}]}.
    assert.ok(g.details, 'no grpc-status-details-bin on the refusal');
    const rt = new protobuf.Root();
    rt.add(new protobuf.Type('Duration').add(new protobuf.Field('seconds', 1, 'int64')));
    rt.add(new protobuf.Type('RetryInfo').add(new protobuf.Field('retry_delay', 1, 'Duration')));
    rt.add(new protobuf.Type('Any').add(new protobuf.Field('type_url', 1, 'string')).add(new protobuf.Field('value', 2, 'bytes')));
    rt.add(new protobuf.Type('St').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string')).add(new protobuf.Field('details', 3, 'Any', 'repeated')));
    const det = rt.lookupType('St').decode(g.details);
    assert.strictEqual(det.code, 14);
    assert.strictEqual(det.details[0].type_url, 'type.googleapis.com/google.rpc.RetryInfo');
    const ri = rt.lookupType('RetryInfo').decode(det.details[0].value);
    assert.strictEqual(Number(ri.retry_delay.seconds), 1);
    console.log(`ok   grpc: UNAVAILABLE with RetryInfo ${ri.retry_delay.seconds} s (${g.message})`);

    const m = await sp.metrics();
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_accepted_spans_total'), accepted * 9);
    // Refused from their headers alone: never decoded, so no span is
    // counted as refused; the requests are, on both transports.
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_spans_total'), 0);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_unread_requests_total', { transport: 'http' }), 1);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_refused_unread_requests_total', { transport: 'grpc' }), 1);
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_requests_total', { outcome: 'refused' }), 2);
    console.log('ok   refused requests counted (unread: no span decoded)');
  } finally {
    await sp.stop();
    await intake.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
