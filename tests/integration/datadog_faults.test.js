// datadog exporter faults, end to end with the real spanprof binary and
// real OTel SDK spans: an intake answering 500 then 200 (delivered once, no
// duplicate), 429 with Retry-After (the retry waits), 403 (no retry, one log
// line naming the redacted key and the site, never the key), a hanging
// intake (timeout, then retry), and the intake down during SIGTERM (drained
// until the shutdown deadline, the rest counted and logged).
'use strict';

const assert = require('node:assert');
const h = require('./lib/harness');
const d = require('./datadog_lib');

async function withSpanprof(intakeOpts, cfg, fn, name) {
  const intake = intakeOpts ? await h.startIntake(intakeOpts) : null;
  const [otlpPort, healthPort, metricsPort, deadPort] = await d.ports(4);
  const url = intake ? intake.url : `http://127.0.0.1:${deadPort}`;
  const sp = await h.startSpanprof(d.config({ otlpPort, healthPort, metricsPort, intake: url, ...cfg }), { healthPort, metricsPort, name });
  try {
    await fn({ sp, intake, otlpPort });
  } finally {
    await sp.stop();
    if (intake) await intake.close();
  }
}

const traceReqs = (intake) => intake.requests.filter((q) => q.url === '/api/v0.2/traces');

(async () => {
  const r = d.runner();

  let n500 = 0;
  await withSpanprof({ respond: () => (n500++ === 0 ? { status: 500, body: 'intake hiccup' } : { status: 202, body: '{}' }) }, {}, async ({ sp, intake, otlpPort }) => {
    const sdk = await d.sendSdkSpans(otlpPort);
    await d.waitFor(() => traceReqs(intake).length >= 2, 15000, 'the retry after a 500');
    await h.sleep(1500); // several backoffs: nothing else may come
    await r.test('500 then 200: retried once, delivered once, no duplicate', async () => {
      const reqs = traceReqs(intake);
      assert.strictEqual(reqs.length, 2);
      assert.ok(reqs[0].body.equals(reqs[1].body), 'the retry resends the same payload');
      assert.ok(h.decodeBody(reqs[0]).length > 0);
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total'), sdk.length);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_retries_total', { signal: 'traces' }), 1);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: '500' }), 1);
    });
  }, 'dd-500');

  let n429 = 0;
  await withSpanprof({ respond: () => (n429++ === 0 ? { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' } : { status: 202, body: '{}' }) }, {}, async ({ sp, intake, otlpPort }) => {
    const sdk = await d.sendSdkSpans(otlpPort);
    await d.waitFor(() => traceReqs(intake).length >= 2, 15000, 'the retry after a 429');
    await r.test('429 with Retry-After: 2 waits two seconds (backoff alone is 50-150 ms)', async () => {
      const [a, b] = traceReqs(intake);
      assert.ok(b.at - a.at >= 1900, `retry came after ${b.at - a.at} ms`);
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total'), sdk.length);
    });
  }, 'dd-429');

  await withSpanprof({ respond: () => ({ status: 403, body: '{"errors":["Forbidden"]}' }) }, {}, async ({ sp, intake, otlpPort }) => {
    const sdk = await d.sendSdkSpans(otlpPort);
    await d.waitFor(() => traceReqs(intake).length >= 1, 15000, 'the first request');
    await h.sleep(1500);
    await r.test('403: no retry, one clear log line without the key', async () => {
      const n = traceReqs(intake).length;
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_retries_total', { signal: 'traces' }), 0);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_failed_spans_total'), sdk.length);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: '403' }), n);
      const log = sp.log();
      const lines = log.split('\n').filter((l) => l.includes('rejected the API key'));
      assert.strictEqual(lines.length, 1, lines.join('\n'));
      assert.ok(lines[0].includes(`...${d.KEY.slice(-4)}`), lines[0]);
      assert.ok(lines[0].includes('datadoghq.com'), lines[0]);
      assert.ok(!log.includes(d.KEY), 'the key is in the log');
      assert.ok(!log.includes(d.KEY.slice(0, 12)), 'part of the key is in the log');
    });
  }, 'dd-403');

  let nHang = 0;
  await withSpanprof({ respond: () => (nHang++ === 0 ? { hang: true } : { status: 202, body: '{}' }) }, { timeout: '1s' }, async ({ sp, intake, otlpPort }) => {
    const sdk = await d.sendSdkSpans(otlpPort);
    await d.waitFor(() => traceReqs(intake).length >= 2, 15000, 'the retry after a timeout');
    await d.waitFor(async () => h.metricSum(await sp.metrics(), 'spanprof_exporter_sent_spans_total') >= sdk.length, 10000, 'delivery');
    await r.test('hanging intake: the call times out and is retried', async () => {
      const [a, b] = traceReqs(intake);
      assert.ok(b.at - a.at >= 900, `retry after ${b.at - a.at} ms`);
      const m = await sp.metrics();
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_http_responses_total', { status: 'transport_error' }), 1);
      assert.strictEqual(h.metricSum(m, 'spanprof_exporter_sent_spans_total'), sdk.length);
    });
  }, 'dd-hang');

  await withSpanprof(null, { shutdown: '2s' }, async ({ sp, otlpPort }) => {
    let sent = 0;
    for (let i = 0; i < 3; i++) sent += (await d.sendSdkSpans(otlpPort)).length;
    await d.waitFor(async () => h.metricSum(await sp.metrics(), 'spanprof_exporter_retries_total', { signal: 'traces' }) >= 1, 10000, 'a retry');
    const t0 = Date.now();
    const ex = await sp.stop(15000);
    const took = Date.now() - t0;
    await r.test('intake down at SIGTERM: drained until the deadline, the rest counted', async () => {
      assert.strictEqual(ex.code, 0, JSON.stringify(ex));
      // nothing new is sent in the last 300 ms; calls in flight may still be answered
      assert.ok(took >= 1600 && took < 6000, `exit took ${took} ms`);
      const line = sp.log().split('\n').find((l) => l.includes('shutdown deadline reached'));
      assert.ok(line, 'no shutdown summary');
      assert.ok(line.includes(`${sent} spans and 0 profiles were not delivered`), line);
    });
  }, 'dd-down');

  r.finish();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
