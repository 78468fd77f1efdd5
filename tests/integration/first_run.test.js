// The first run with the embedded default configuration (no --config), as
// `make run` does: start-up names every listening address, metrics
// included; a port already taken is reported with the SPANPROF_* variable
// that moves it.
'use strict';

const assert = require('node:assert');
const { spawn } = require('node:child_process');
const net = require('node:net');
const h = require('./lib/harness');

function run(env, untilRe, ms = 10000) {
  return new Promise((resolve) => {
    const dir = h.tmpDir('first-run');
    const e = { ...process.env, SPANPROF_DATA_DIR: `${dir}/data`, ...env };
    delete e.DD_API_KEY;
    const child = spawn(h.BIN, [], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let why = null;
    const done = (w) => { if (why) return; why = w; clearTimeout(t); child.kill('SIGTERM'); };
    const t = setTimeout(() => done('timeout'), ms);
    const on = (d) => { out += d; if (untilRe.test(out)) done('matched'); };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.on('close', (code) => { clearTimeout(t); resolve({ out, code, why: why || 'exited' }); });
  });
}

(async () => {
  const ports = {};
  for (const k of ['GRPC', 'HTTP', 'PPROF', 'HEALTH', 'METRICS']) ports[k] = await h.freePort();
  const env = {
    SPANPROF_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.GRPC}`,
    SPANPROF_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.HTTP}`,
    SPANPROF_PPROF_ENDPOINT: `127.0.0.1:${ports.PPROF}`,
    SPANPROF_HEALTH_ENDPOINT: `127.0.0.1:${ports.HEALTH}`,
    SPANPROF_METRICS_ENDPOINT: `127.0.0.1:${ports.METRICS}`,
  };
  const r = await run(env, /spanprof is running/);
  assert.strictEqual(r.why, 'matched', r.out);
  for (const [what, re] of [
    ['metrics', new RegExp(`serving spanprof's metrics at http://127\\.0\\.0\\.1:${ports.METRICS}/metrics`)],
    ['health', new RegExp(`serving health at http://127\\.0\\.0\\.1:${ports.HEALTH}/`)],
    ['OTLP/gRPC', new RegExp(`OTLP/gRPC listening on 127\\.0\\.0\\.1:${ports.GRPC} \\(traces to a pipeline, metrics dropped, logs dropped\\)`)],
    ['OTLP/HTTP', new RegExp(`OTLP/HTTP listening on 127\\.0\\.0\\.1:${ports.HTTP}: /v1/traces /v1/metrics /v1/logs`)],
    ['pprof', new RegExp(`listening on 127\\.0\\.0\\.1:${ports.PPROF} `)],
  ]) assert.match(r.out, re, `start-up names the ${what} address:\n${r.out}`);
  console.log('ok   start-up names every listening address, metrics included');

  // Port 0 (any free port): the lines name the ports actually bound.
  const any = {};
  for (const k of Object.keys(env)) any[k] = '127.0.0.1:0';
  const z = await run(any, /spanprof is running/);
  assert.strictEqual(z.why, 'matched', z.out);
  assert.doesNotMatch(z.out, /127\.0\.0\.1:0\b/, `a line names port 0:\n${z.out}`);
  for (const re of [/serving spanprof's metrics at http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics/, /OTLP\/gRPC listening on 127\.0\.0\.1:[1-9]\d*/, /OTLP\/HTTP listening on 127\.0\.0\.1:[1-9]\d*/, /serving health at http:\/\/127\.0\.0\.1:[1-9]\d*\//, /component=pprof msg="listening on 127\.0\.0\.1:[1-9]\d*/]) assert.match(z.out, re);
  console.log('ok   with port 0 the start-up lines name the ports actually bound');

  // Each default address taken in turn: the error names the variable.
  for (const v of Object.keys(env)) {
    const blocker = net.createServer();
    await new Promise((res) => blocker.listen(0, '127.0.0.1', res));
    const taken = blocker.address().port;
    const e2 = {};
    for (const k of Object.keys(env)) e2[k] = `127.0.0.1:${await h.freePort()}`;
    e2[v] = `127.0.0.1:${taken}`;
    const f = await run(e2, /shutdown complete/);
    blocker.close();
    assert.notStrictEqual(f.code, 0, `${v}: exit code`);
    assert.match(f.out, new RegExp(`level=error .*cannot listen on '127\\.0\\.0\\.1:${taken}': [Aa]ddress already in use \\(the embedded default configuration takes this address from ${v}: set it to another host:port`), `${v}:\n${f.out}`);
  }
  console.log('ok   a taken port names the SPANPROF_* variable that moves it (all five)');
  console.log('first_run: all checks passed');
})().catch((e) => { console.error(e); process.exit(1); });
