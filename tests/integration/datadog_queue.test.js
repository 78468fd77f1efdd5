// datadog exporter, the second design end to end (issue 11) and its retry
// policy (issue 17): the real spanprof binary fed by the real OpenTelemetry
// JS SDK (OTLP/HTTP protobuf) and a recording intake whose answers are
// scripted (status, Retry-After, lateness, refused connections).
//   - many small OTLP requests arrive in few payloads, every span once,
//     mapped as before (fields checked against the SDK's own spans);
//   - an intake answering 300 ms late at a sustained rate: nothing refused;
//   - 30 s of outage (503, then connection refused), then 200: nothing lost,
//     accepted = sent + failed + dropped + stored, read from /metrics;
//   - SIGTERM (and SIGKILL) during an outage with sending_queue.storage:
//     the next start delivers every accepted (sealed) span once; garbage
//     and truncated files are reported by name, counted and moved aside; an
//     unusable directory fails the start with a clear error; payloads
//     stored with `compression: gzip` go as gzip after a restart with zstd;
//   - Retry-After 0 and 5 against a 503 intake: attempts counted at the
//     intake follow max(backoff, Retry-After), backoff growing.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const d = require('./datadog_lib');

const traceReqs = (intake) => intake.requests.filter((q) => q.url === '/api/v0.2/traces');

// Every span id the intake got in 2xx-answered (or any, with all) requests.
function spanIds(intake, { okOnly = true } = {}) {
  const ids = [];
  for (const q of traceReqs(intake)) {
    if (okOnly && !(q.status >= 200 && q.status < 300)) continue;
    const ap = h.decodeTraceRequest(q);
    for (const tp of ap.tracerPayloads) for (const c of tp.chunks) for (const s of c.spans) ids.push(String(s.spanID));
  }
  return ids;
}

function ddSpans(intake) {
  const out = [];
  for (const q of traceReqs(intake)) {
    if (!(q.status >= 200 && q.status < 300)) continue;
    const ap = h.decodeTraceRequest(q);
    for (const tp of ap.tracerPayloads) {
      for (const c of tp.chunks) {
        for (const s of c.spans) {
          out.push({ trace_id: s.traceID, span_id: s.spanID, parent_id: s.parentID, service: s.service, name: s.name, resource: s.resource, type: s.type, error: s.error, meta: s.meta, metrics: s.metrics, start: s.start });
        }
      }
    }
  }
  return out;
}

// Real SDK spans at a steady rate: `rate` spans/s for `seconds`, exported
// by the OTLP/HTTP protobuf exporter in requests of up to `batch` spans.
async function sendAtRate(otlpPort, { rate, seconds, batch = 50, service = 'dd-rate' }) {
  const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
  const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${otlpPort}/v1/traces`, timeoutMillis: 10000 });
  let exported = 0; let failed = 0;
  const wrapped = {
    export: (spans, cb) => exporter.export(spans, (res) => { if (res.code === 0) exported += spans.length; else failed += spans.length; cb(res); }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.(),
  };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'telemetry.sdk.language': 'nodejs' }),
    spanProcessors: [new BatchSpanProcessor(wrapped, { maxExportBatchSize: batch, scheduledDelayMillis: 20, maxQueueSize: 1 << 20 })],
  });
  const tracer = provider.getTracer('rate');
  const tick = 50;
  const perTick = Math.max(1, Math.round((rate * tick) / 1000));
  const end = Date.now() + seconds * 1000;
  let made = 0;
  while (Date.now() < end) {
    const t0 = Date.now();
    for (let i = 0; i < perTick; i++) {
      tracer.startSpan(`op ${made % 7}`, { attributes: { 'http.request.method': 'GET', n: made } }).end();
      made++;
    }
    await h.sleep(Math.max(0, tick - (Date.now() - t0)));
  }
  await provider.forceFlush();
  await provider.shutdown();
  return { made, exported, failed };
}

async function withSpanprof(intake, cfg, fn, name) {
  const [otlpPort, healthPort, metricsPort] = await d.ports(3);
  const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: intake.url, ...cfg }), { healthPort, metricsPort, name });
  try {
    await fn({ sp, otlpPort, healthPort, metricsPort });
  } finally {
    await sp.stop();
  }
}

// accepted (+ restored) = sent + failed + dropped + stored + pending.
function accounting(m) {
  const get = (n, l) => h.metricSum(m, n, l);
  return {
    accepted: get('spanprof_exporter_accepted_spans_total'),
    restored: get('spanprof_exporter_restored_spans_total'),
    sent: get('spanprof_exporter_sent_spans_total'),
    failed: get('spanprof_exporter_failed_spans_total'),
    dropped: get('spanprof_exporter_dropped_spans_total'),
    stored: get('spanprof_exporter_stored_spans_total'),
    pending: get('spanprof_exporter_pending_spans'),
    refused: get('spanprof_exporter_refused_spans_total'),
  };
}

function assertBalanced(a) {
  assert.strictEqual(a.accepted + a.restored, a.sent + a.failed + a.dropped + a.stored + a.pending,
    `accepted + restored != sent + failed + dropped + stored + pending: ${JSON.stringify(a)}`);
}

const flushCfg = (lines) => `    flush_interval: 500ms\n${lines || ''}`;

(async () => {
  const r = d.runner();

  // ---- exactly once, in few payloads ----
  {
    const intake = await h.startIntake();
    await withSpanprof(intake, { extra: flushCfg() }, async ({ sp, otlpPort }) => {
      const sdk = [];
      for (let i = 0; i < 8; i++) sdk.push(...await d.sendSdkSpans(otlpPort));
      await d.waitFor(() => spanIds(intake).length >= sdk.length, 15000, 'every span at the intake');
      await h.sleep(700);
      await r.test('8 OTLP requests arrive in few payloads, every span once, mapped as before', async () => {
        const ids = spanIds(intake);
        assert.strictEqual(ids.length, sdk.length);
        assert.strictEqual(new Set(ids).size, sdk.length, 'a span came twice');
        const reqs = traceReqs(intake).length;
        assert.ok(reqs <= 3, `${reqs} payloads for 8 requests`);
        const exp = d.expectations(sdk);
        assert.strictEqual(d.checkSpans(ddSpans(intake), exp), sdk.length);
        const a = accounting(await sp.metrics());
        assert.strictEqual(a.accepted, sdk.length);
        assert.strictEqual(a.sent, sdk.length);
        assertBalanced(a);
      });
    }, 'dd-once');
    await intake.close();
  }

  // ---- an intake 300 ms away, a sustained rate: nothing refused ----
  {
    const intake = await h.startIntake({ delayMs: 300 });
    await withSpanprof(intake, { extra: flushCfg('    sending_queue: {num_consumers: 2}\n') }, async ({ sp, otlpPort }) => {
      const sent = await sendAtRate(otlpPort, { rate: 2000, seconds: 5 });
      await d.waitFor(async () => accounting(await sp.metrics()).pending === 0, 15000, 'the queue drained');
      await r.test(`intake 300 ms late, ~2000 spans/s offered for 5 s, 2 senders: nothing refused (${sent.made} spans)`, async () => {
        const a = accounting(await sp.metrics());
        assert.strictEqual(a.refused, 0);
        assert.strictEqual(sent.failed, 0);
        assert.strictEqual(a.accepted, sent.made);
        assert.strictEqual(a.sent, sent.made);
        assert.strictEqual(new Set(spanIds(intake)).size, sent.made);
        assertBalanced(a);
      });
    }, 'dd-late');
    await intake.close();
  }

  // ---- 30 s outage: 503, then connection refused, then 200 ----
  {
    const intake = await h.startIntake();
    await withSpanprof(intake, { extra: flushCfg() }, async ({ sp, otlpPort }) => {
      intake.knobs.status = 503;
      const p = sendAtRate(otlpPort, { rate: 500, seconds: 30 });
      await h.sleep(15000);
      await intake.down();
      await h.sleep(15000);
      const sent = await p;
      const during = accounting(await sp.metrics());
      intake.knobs.status = 0;
      await intake.up();
      await d.waitFor(async () => accounting(await sp.metrics()).pending === 0, 30000, 'delivery after the outage');
      await r.test(`30 s outage (503, refused connections) then 200: nothing lost (${sent.made} spans)`, async () => {
        const a = accounting(await sp.metrics());
        assert.ok(during.pending > 0, 'nothing was waiting during the outage');
        assert.strictEqual(a.refused, 0);
        assert.strictEqual(a.dropped + a.failed, 0);
        assert.strictEqual(a.accepted, sent.made);
        assert.strictEqual(a.sent, sent.made);
        assert.strictEqual(new Set(spanIds(intake)).size, sent.made);
        assertBalanced(a);
        const m = await sp.metrics();
        assert.ok(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: '503' }) > 0);
        assert.ok(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: 'transport_error' }) > 0);
      });
    }, 'dd-outage');
    await intake.close();
  }

  // ---- storage: SIGTERM during an outage, then a start with the intake up ----
  {
    const dir = path.join(h.tmpDir('dd-store'), 'queue');
    const storeCfg = flushCfg(`    sending_queue: {storage: "${dir}"}\n`);
    const down = await h.startIntake();
    down.knobs.status = 503;
    let accepted = 0; let keep = null;
    // sealed with gzip (the default) here; the next start runs with zstd
    await withSpanprof(down, { extra: `${storeCfg}    compression: gzip\n`, shutdown: '2s' }, async ({ sp, otlpPort }) => {
      for (let i = 0; i < 4; i++) await d.sendSdkSpans(otlpPort);
      await d.waitFor(async () => h.metricSum(await sp.metrics(), 'spanprof_exporter_retries_total', { signal: 'traces' }) >= 1, 10000, 'a retry');
      accepted = accounting(await sp.metrics()).accepted;
      const ex = await sp.stop(15000);
      await r.test('SIGTERM during an outage with storage: the payloads are written, counted and logged', async () => {
        assert.strictEqual(ex.code, 0, JSON.stringify(ex));
        const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ddq'));
        assert.ok(files.length >= 1, 'no file written');
        const line = sp.log().split('\n').find((l) => l.includes('shutdown deadline reached'));
        assert.ok(line && line.includes(`${accepted} spans and 0 profiles written to ${dir}`), line);
        keep = fs.readFileSync(path.join(dir, files[0]));
      });
    }, 'dd-store1');
    await down.close();

    // a garbage file and a truncated copy of a real one, named to be read first
    fs.writeFileSync(path.join(dir, '0000000000001-000001.ddq'), Buffer.from('this is not a queue file at all'));
    if (keep) fs.writeFileSync(path.join(dir, '0000000000001-000002.ddq'), keep.subarray(0, keep.length >> 1));
    const up = await h.startIntake();
    await withSpanprof(up, { extra: `${storeCfg}    compression: zstd\n` }, async ({ sp, otlpPort }) => {
      await d.waitFor(async () => accounting(await sp.metrics()).sent >= accepted, 15000, 'the stored spans delivered');
      await h.sleep(500);
      await r.test('the next start delivers every stored span once, before new data', async () => {
        const a = accounting(await sp.metrics());
        assert.strictEqual(a.restored, accepted);
        assert.strictEqual(a.sent, accepted);
        const ids = spanIds(up);
        assert.strictEqual(ids.length, accepted);
        assert.strictEqual(new Set(ids).size, accepted);
        assertBalanced(a);
        assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.ddq')), [], 'delivered files are removed');
      });
      await r.test('payloads stored with gzip are sent as gzip after a restart with zstd; new ones as zstd', async () => {
        const restored = traceReqs(up).filter((q) => q.status >= 200 && q.status < 300);
        assert.ok(restored.length >= 1);
        for (const q of restored) {
          assert.strictEqual(q.headers['content-encoding'], 'gzip');
          assert.strictEqual(q.body[0], 0x1f, 'a gzip body');
        }
        const before = traceReqs(up).length;
        const sdk = await d.sendSdkSpans(otlpPort);
        await d.waitFor(() => spanIds(up).length >= accepted + sdk.length, 10000, 'the new spans');
        const fresh = traceReqs(up).slice(before);
        assert.ok(fresh.length >= 1);
        for (const q of fresh) {
          assert.strictEqual(q.headers['content-encoding'], 'zstd');
          assert.strictEqual(q.body[0], 0x28, 'a zstd body');
        }
        const exp = d.expectations(sdk);
        const mine = ddSpans(up).filter((x) => exp.has(String(x.span_id)));
        assert.strictEqual(d.checkSpans(mine, exp), sdk.length);
        const a = accounting(await sp.metrics());
        assert.strictEqual(a.sent, accepted + sdk.length);
        assertBalanced(a);
      });
      await r.test('garbage and truncated files: reported by name and reason, counted, moved aside', async () => {
        const m = await sp.metrics();
        assert.strictEqual(h.metricSum(m, 'spanprof_exporter_storage_bad_files_total'), keep ? 2 : 1);
        const log = sp.log();
        assert.match(log, /0000000000001-000001\.ddq cannot be sent \(not a spanprof queue file \(bad magic\)\)/);
        if (keep) assert.match(log, /0000000000001-000002\.ddq cannot be sent \((checksum mismatch|truncated)/);
        assert.ok(fs.existsSync(path.join(dir, '0000000000001-000001.ddq.bad')));
        assert.strictEqual(sp.exited(), null, 'spanprof exited');
      });
    }, 'dd-store2');
    await up.close();

    // a hard kill: what was sealed is on disk already
    const dir2 = path.join(h.tmpDir('dd-store-kill'), 'queue');
    const killCfg = flushCfg(`    sending_queue: {storage: "${dir2}"}\n`);
    const down2 = await h.startIntake();
    down2.knobs.status = 503;
    let sealed = 0;
    await withSpanprof(down2, { extra: killCfg }, async ({ sp, otlpPort }) => {
      for (let i = 0; i < 3; i++) await d.sendSdkSpans(otlpPort);
      await d.waitFor(async () => h.metricSum(await sp.metrics(), 'spanprof_exporter_retries_total', { signal: 'traces' }) >= 1, 10000, 'a retry');
      const a = accounting(await sp.metrics());
      sealed = a.accepted - h.metricSum(await sp.metrics(), 'spanprof_exporter_open_spans');
      sp.kill();
      await sp.waitExit();
    }, 'dd-kill1');
    await down2.close();
    const up2 = await h.startIntake();
    await withSpanprof(up2, { extra: killCfg }, async ({ sp }) => {
      await d.waitFor(async () => accounting(await sp.metrics()).sent >= sealed, 15000, 'the sealed spans delivered');
      await r.test('SIGKILL during an outage: every sealed span is delivered by the next start', async () => {
        assert.ok(sealed > 0);
        const a = accounting(await sp.metrics());
        assert.strictEqual(a.restored, sealed);
        assert.strictEqual(new Set(spanIds(up2)).size, sealed);
      });
    }, 'dd-kill2');
    await up2.close();

    const file = path.join(h.tmpDir('dd-store-bad'), 'a-file');
    fs.writeFileSync(file, 'x');
    const [otlpPort, healthPort, metricsPort] = await d.ports(3);
    let err = null;
    try {
      const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: 'http://127.0.0.1:9', extra: `    sending_queue: {storage: "${file}/queue"}\n` }), { healthPort, metricsPort, name: 'dd-store3' });
      await sp.stop();
    } catch (e) { err = e; }
    await r.test('an unusable storage directory fails the start with a clear error', async () => {
      assert.ok(err, 'spanprof started');
      assert.match(err.message, /sending_queue\.storage: cannot create '.*a-file\/queue': Not a directory/);
    });
  }

  // ---- Retry-After 0 and 5 against a 503 intake ----
  for (const ra of [0, 5]) {
    const intake = await h.startIntake();
    intake.knobs.status = 503;
    intake.knobs.retryAfter = ra;
    await withSpanprof(intake, { extra: flushCfg(), retry: '{initial_interval: 1s, max_interval: 4s, max_elapsed_time: 120s}' }, async ({ otlpPort }) => {
      await d.sendSdkSpans(otlpPort);
      await d.waitFor(() => traceReqs(intake).length >= 1, 10000, 'the first attempt');
      await h.sleep(11000);
      await r.test(`Retry-After: ${ra} on 503: attempts follow max(backoff, Retry-After)`, async () => {
        const at = traceReqs(intake).map((q) => q.at);
        const gaps = at.slice(1).map((t, i) => t - at[i]);
        const minGap = ra ? ra * 1000 - 100 : 1000 - 100;
        for (const g of gaps) assert.ok(g >= minGap, `a retry after ${g} ms (gaps ${gaps})`);
        for (const g of gaps) assert.ok(g <= Math.max(ra * 1000, 4000) + 500, `a gap of ${g} ms passes max_interval (gaps ${gaps})`);
        if (ra === 0) {
          // 1 s x1.5 per retry, jitter inside [1 s, 4 s]: 3 to 8 attempts in 11 s
          assert.ok(at.length >= 3 && at.length <= 9, `${at.length} attempts (gaps ${gaps})`);
        } else {
          assert.ok(at.length >= 2 && at.length <= 3, `${at.length} attempts (gaps ${gaps})`);
        }
      });
    }, `dd-ra${ra}`);
    await intake.close();
  }

  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
