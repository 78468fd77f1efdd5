// bench/overload.js: overload figures for issue 17, run by bench/run.sh
// (section `overload`) against one spanprof binary, so the same script
// gives the BEFORE and AFTER columns.
//
//   node bench/overload.js --bin SPANPROF --loadgen LOADGEN [--sections rates,cpu]
//        [--step-s 5] [--no-limit] [--cpu-spanprof 1] [--cpu-load 0]
//        [--protos grpc,http-pb] [--steps 1,2,10,50] [--queue 'sending_queue: {...}']
//        [--sample-ms N]   (SAMPLE lines from /metrics during each rates step;
//                           a STEP line names the step's spanprof pid first)
//
// rates  the sustainable rate S: spanprof (otlp -> datadog) in front of an
//        intake that answers every request 100 ms late (a node HTTP server),
//        loadgen closed loop at low concurrency, 500 spans per request; then
//        loadgen open loop at 1x, 2x, 10x and 50x S (requests per second =
//        m * S / 500), each step on a fresh spanprof: accepted spans/s (the
//        answers that were OK), refused requests, spanprof CPU (utime+stime
//        from /proc over the step). gRPC and OTLP/HTTP protobuf.
// cpu    instructions (callgrind) per refused and per accepted request: the
//        same spanprof under valgrind, one run whose exporter queue is full
//        (intake never answers, one consumer, a queue of one batch) and one
//        whose intake answers at once; callgrind_control -z before and -d
//        after N requests; 100-span requests, HTTP and gRPC.
// Prints `RESULT overload ...` lines; bench/run.sh turns them into rows.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(`--${k}`); return i < 0 ? d : args[i + 1]; };
const BIN = opt('bin');
const LOADGEN = opt('loadgen');
// --queue 'sending_queue: {...}': the exporter's queue in the rates section,
// e.g. a small one so the 10x/50x steps really fill it within a short step.
const RATES_QUEUE = opt('queue', '');
const SECTIONS = (opt('sections', 'rates,cpu')).split(',');
const STEP_S = Number(opt('step-s', 5));
const NO_LIMIT = args.includes('--no-limit');
const SP_CPU = opt('cpu-spanprof', '1');
const LOAD_CPU = opt('cpu-load', '0');
const SPANS = 500;
// --sample-ms N: scrape /metrics every N ms during the 1x..50x steps and print
// one `SAMPLE` line per scrape (where the accepted rate goes: refusals before
// and after reading, the exporter's queue, bodies waiting).
const SAMPLE_MS = Number(opt('sample-ms', 0));
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
function get(url, timeout = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout }, (res) => {
      const c = [];
      res.on('data', (d) => c.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(c).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// The intake: answers 200 after `delayMs`, or never (`hang`).
async function intake({ delayMs = 100, hang = false } = {}) {
  let requests = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (hang) return;
      setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }, delayMs);
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, count: () => requests, close: () => { srv.closeAllConnections(); srv.close(); } };
}

async function startSpanprof({ intakeUrl, queue = '', wrap = [] }) {
  const [grpc, httpP, health, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spanprof-overload-'));
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${grpc}}
      http: {endpoint: 127.0.0.1:${httpP}}
exporters:
  datadog:
    api: {key: bench-key}
    traces: {endpoint: ${intakeUrl}}
    profiles: {endpoint: ${intakeUrl}}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
    ${queue}
extensions:
  health_check: {endpoint: 127.0.0.1:${health}}
service:
  extensions: [health_check]
  shutdown_timeout: 1s
${NO_LIMIT ? '' : '  memory_limit: 256MiB'}
  telemetry: {metrics: {address: 127.0.0.1:${metrics}}, logs: {level: error}}
  pipelines:
    traces: {receivers: [otlp], exporters: [datadog]}
`);
  const cmd = [...wrap, BIN, '--config', cfg];
  const child = spawn('taskset', ['-c', SP_CPU, ...cmd], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'log'), 'w')] });
  const deadline = Date.now() + 120000;
  for (;;) {
    try { if ((await get(`http://127.0.0.1:${health}/`, 1000)).status === 200) break; } catch (e) { /* not yet */ }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`spanprof did not start: ${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`);
    await sleep(200);
  }
  // valgrind runs spanprof as its own process under the same pid.
  const pid = child.pid;
  return {
    grpc, http: httpP, metrics, pid,
    cpuS() {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / CLK_TCK;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => { if (child.exitCode !== null) r(); else child.on('exit', r); });
    },
  };
}

// Runs loadgen without blocking this process's loop (the intake lives here).
function loadgen(proto, port, extra) {
  const a = ['-c', LOAD_CPU, LOADGEN, '--proto', proto, '--target', `127.0.0.1:${port}`, '--spans', String(SPANS), '--unique', ...extra];
  return new Promise((resolve) => {
    const child = spawn('taskset', a, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT loadgen')) || '';
      const kv = {};
      for (const m of line.matchAll(/(\w+)=(\S+)/g)) kv[m[1]] = m[2];
      resolve({ kv, cmd: `taskset ${a.join(' ')}` });
    });
  });
}

async function rates() {
  const sink = await intake({ delayMs: 100 });
  for (const proto of (opt('protos', 'grpc,http-pb')).split(',')) {
    const conc = proto === 'grpc' ? ['--conns', '1', '--inflight', '4'] : ['--conns', '4', '--inflight', '1'];
    let sp = await startSpanprof({ intakeUrl: sink.url, queue: RATES_QUEUE });
    const port = proto === 'grpc' ? sp.grpc : sp.http;
    let c0 = sp.cpuS();
    let r = await loadgen(proto, port, [...conc, '--duration', String(STEP_S), '--warmup', '1']);
    let cpu = (sp.cpuS() - c0) / (STEP_S + 1);
    await sp.stop();
    const S = Number(r.kv.ok) * SPANS / STEP_S;
    console.log(`RESULT overload section=rates proto=${proto} step=sustainable offered_rps=closed accepted_sps=${S.toFixed(0)} refused=${r.kv.failed} cpu_pct=${(cpu * 100).toFixed(0)} cmd="${r.cmd}"`);
    for (const m of (opt('steps', '1,2,10,50')).split(',').map(Number)) {
      const rps = (m * S) / SPANS;
      sp = await startSpanprof({ intakeUrl: sink.url, queue: RATES_QUEUE });
      const p = proto === 'grpc' ? sp.grpc : sp.http;
      const wide = proto === 'grpc' ? ['--conns', '8', '--inflight', '32'] : ['--conns', '64', '--inflight', '1'];
      c0 = sp.cpuS();
      console.log(`STEP proto=${proto} step=${m}x pid=${sp.pid} metrics=${sp.metrics}`);
      const smp = sampler(sp.metrics);
      r = await loadgen(proto, p, [...wide, '--rate', rps.toFixed(1), '--duration', String(STEP_S), '--warmup', '0']);
      cpu = (sp.cpuS() - c0) / STEP_S;
      await smp.stop();
      await sp.stop();
      const acc = Number(r.kv.ok) * SPANS / STEP_S;
      console.log(`RESULT overload section=rates proto=${proto} step=${m}x offered_rps=${rps.toFixed(0)} sent=${r.kv.sent} late=${r.kv.late} accepted_sps=${acc.toFixed(0)} accepted_of_sustainable=${(acc / S).toFixed(2)} refused=${r.kv.failed} conn_err=${r.kv.conn_err} first_error=${JSON.stringify(r.kv.first_error || '')} cpu_pct=${(cpu * 100).toFixed(0)} cmd="${r.cmd}"`);
    }
  }
  sink.close();
}

// The figures a SAMPLE line shows, summed over label sets matching `re`.
const SAMPLED = [
  ['ok', /^spanprof_receiver_requests_total\{.*transport="http",outcome="success"/],
  ['refused', /^spanprof_receiver_requests_total\{.*transport="http",outcome="refused"/],
  ['unread', /^spanprof_receiver_refused_unread_requests_total\{.*transport="http"/],
  ['exp_acc', /^spanprof_exporter_accepted_spans_total/],
  ['exp_sent', /^spanprof_exporter_sent_spans_total/],
  ['exp_refused', /^spanprof_exporter_refused_spans_total/],
  ['queue', /^spanprof_exporter_queue_size/],
  ['inflight', /^spanprof_exporter_requests_in_flight/],
  ['open', /^spanprof_exporter_open_spans/],
  ['bodies', /^spanprof_memory_used_bytes\{.*class="bodies"/],
  ['exportmem', /^spanprof_memory_used_bytes\{.*class="export"/],
];
function sampler(port) {
  if (!SAMPLE_MS) return { stop: async () => {} };
  let on = true;
  const t0 = Date.now();
  const loop = (async () => {
    while (on) {
      try {
        const { body } = await get(`http://127.0.0.1:${port}/metrics`, 1000);
        const v = {};
        for (const [k] of SAMPLED) v[k] = 0;
        for (const l of body.split('\n')) {
          for (const [k, re] of SAMPLED) if (re.test(l)) v[k] += Number(l.split(' ').pop());
        }
        console.log(`SAMPLE t_ms=${Date.now() - t0} ${SAMPLED.map(([k]) => `${k}=${v[k]}`).join(' ')}`);
      } catch (e) { console.log(`SAMPLE t_ms=${Date.now() - t0} error=${e.message}`); }
      await sleep(SAMPLE_MS);
    }
  })();
  return { stop: async () => { on = false; await loop; } };
}

function callgrindTotal(file) {
  const txt = fs.readFileSync(file, 'utf8');
  const m = /^(?:summary|totals):\s*(\d+)/m.exec(txt);
  return m ? Number(m[1]) : NaN;
}

async function cpu() {
  const N = { refused: 40, accepted: 10 };
  for (const kind of ['refused', 'accepted']) {
    const sink = await intake(kind === 'refused' ? { hang: true } : { delayMs: 0 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spanprof-cg-'));
    const out = path.join(dir, 'cg.out');
    const sp = await startSpanprof({
      intakeUrl: sink.url,
      queue: kind === 'refused' ? 'sending_queue: {queue_size: 1, num_consumers: 1}' : '',
      wrap: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`],
    });
    for (const proto of ['http-pb', 'grpc']) {
      const port = proto === 'grpc' ? sp.grpc : sp.http;
      // Fill the queue (refused run) or warm up (accepted run).
      await loadgen(proto, port, ['--conns', '1', '--inflight', '1', '--rate', '2', '--duration', '2', '--warmup', '0', '--spans', '100']);
      execFileSync('callgrind_control', ['-z', String(sp.pid)], { stdio: 'ignore' });
      const rate = kind === 'refused' ? 20 : 2;
      const r = await loadgen(proto, port, ['--conns', '1', '--inflight', '1', '--rate', String(rate), '--duration', String(N[kind] / rate), '--warmup', '0', '--spans', '100']);
      execFileSync('callgrind_control', ['-d', String(sp.pid)], { stdio: 'ignore' });
      const dumps = fs.readdirSync(dir).filter((f) => f.startsWith('cg.out.')).sort();
      const ir = callgrindTotal(path.join(dir, dumps[dumps.length - 1]));
      const reqs = kind === 'refused' ? Number(r.kv.failed) : Number(r.kv.ok);
      console.log(`RESULT overload section=cpu proto=${proto} kind=${kind} requests=${reqs} ok=${r.kv.ok} failed=${r.kv.failed} instructions_per_request=${(ir / Math.max(1, Number(r.kv.sent))).toFixed(0)} cmd="${r.cmd} # spanprof under valgrind --tool=callgrind, callgrind_control -z / -d"`);
    }
    await sp.stop();
    sink.close();
  }
}

(async () => {
  if (SECTIONS.includes('rates')) await rates();
  if (SECTIONS.includes('cpu')) await cpu();
})().then(() => process.exit(0), (e) => { console.error(e.stack || e); process.exit(1); });
