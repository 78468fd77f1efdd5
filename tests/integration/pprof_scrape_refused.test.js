// The pprof scrape path asks the pipeline before it decodes (issue 17),
// like the push routes refuse an upload before reading it. A /debug/pprof
// target (a node HTTP server) answers the goroutine profile with a real Go
// profile (tests/data/fixtures/go-cpu-spanid.pprof) and the CPU profile
// with 15 MiB of bytes that are not a profile. With service.memory_limit
// 16MiB a profile of 15 MiB is over the profiles' mark (90 %), so the CPU
// scrape must be skipped before decoding: counted in
// spanprof_receiver_scrapes_refused_total, logged, not a decode failure;
// the goroutine scrapes go through to the debug exporter.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const h = require('./lib/harness');

async function main() {
  const goProfile = fs.readFileSync(path.join(h.FIXTURES, 'go-cpu-spanid.pprof'));
  const junk = Buffer.alloc(15 << 20, 0x41);
  const hits = { cpu: 0, goroutine: 0 };
  const target = http.createServer((req, res) => {
    const kind = req.url.startsWith('/debug/pprof/profile') ? 'cpu' : req.url.startsWith('/debug/pprof/goroutine') ? 'goroutine' : null;
    if (!kind) { res.writeHead(404); res.end(); return; }
    hits[kind]++;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(kind === 'cpu' ? junk : goProfile);
  });
  await new Promise((r) => target.listen(0, '127.0.0.1', r));
  const [port, healthPort, metricsPort] = await Promise.all([h.freePort(), h.freePort(), h.freePort()]);
  const dir = h.tmpDir('scrape-refused-out');
  const outPath = path.join(dir, 'debug.jsonl');
  const yaml = `receivers:
  pprof:
    endpoint: 127.0.0.1:${port}
    max_profile_size: 32MiB
    scrape:
      - targets: [127.0.0.1:${target.address().port}]
        profiles: [cpu, goroutine]
        interval: 1s
        cpu_duration: 1s
        service: scraped
exporters:
  debug:
    path: ${outPath}
extensions:
  health_check:
    endpoint: 127.0.0.1:${healthPort}
service:
  memory_limit: 16MiB
  extensions: [health_check]
  pipelines:
    profiles: {receivers: [pprof], exporters: [debug]}
  telemetry:
    metrics: {address: 127.0.0.1:${metricsPort}}
`;
  const sp = await h.startSpanprof(yaml, { healthPort, metricsPort, name: 'scrape-refused' });
  try {
    let m;
    const deadline = Date.now() + 20000;
    for (;;) {
      m = await sp.metrics();
      const refused = h.metricSum(m, 'spanprof_receiver_scrapes_refused_total', { profile: 'cpu' });
      const ok = h.metricSum(m, 'spanprof_receiver_scrapes_total', { profile: 'goroutine', result: 'success' });
      if ((refused >= 2 && ok >= 2) || Date.now() > deadline) break;
      await h.sleep(200);
    }
    const refused = h.metricSum(m, 'spanprof_receiver_scrapes_refused_total', { profile: 'cpu' });
    const failed = h.metricSum(m, 'spanprof_receiver_scrapes_total', { result: 'failure' });
    const ok = h.metricSum(m, 'spanprof_receiver_scrapes_total', { profile: 'goroutine', result: 'success' });
    console.log(`target hits ${JSON.stringify(hits)}; cpu scrapes refused ${refused}, goroutine ok ${ok}, failures ${failed}`);
    assert.ok(hits.cpu >= 2, 'the CPU profile was not fetched');
    assert.ok(refused >= 2, 'the 15 MiB CPU profile was not refused before decoding');
    assert.strictEqual(failed, 0, 'a refused scrape was decoded (and failed) instead of skipped');
    assert.strictEqual(h.metricSum(m, 'spanprof_receiver_scrapes_refused_total', { profile: 'goroutine' }), 0,
      'a small profile was refused');
    assert.ok(ok >= 2, 'goroutine scrapes did not go through');
    assert.match(sp.log(), /scrape of cpu profile from '127\.0\.0\.1:\d+' skipped before decoding the response: memory ceiling/);
    await h.sleep(300);
    const out = fs.existsSync(outPath) ? fs.readFileSync(outPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    const profiles = out.filter((l) => l.signal === 'profiles');
    assert.ok(profiles.length >= 1, 'no profile reached the exporter');
    assert.ok(profiles.every((p) => JSON.stringify(p).includes('goroutines.pprof')),
      'a profile other than the goroutine one reached the exporter');
    console.log(`ok   scrape refused before decoding (${refused}), ${profiles.length} goroutine profiles delivered`);
  } finally {
    await sp.stop();
    target.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
