// A Node service profiled by the real dd-trace profiler, which uploads to
// DD_TRACE_AGENT_URL (spanprof's pprof receiver, acting as the Agent). It
// serves two endpoints and drives them itself, so samples carry dd-trace's
// own `span id` / `local root span id` / `trace endpoint` labels.
'use strict';

const tracer = require('dd-trace').init({
  service: process.env.DD_SERVICE || 'e2e-dd-node',
  env: 'e2e',
  version: '1.2.3',
  profiling: true,
  startupLogs: false,
});
const http = require('node:http');

function burn(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

const server = http.createServer((req, res) => {
  burn(req.url === '/api/slow' ? 6 : 2);
  res.end('ok');
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const until = Date.now() + Number(process.env.APP_SECONDS || 8) * 1000;
  let n = 0;
  const tick = () => {
    if (Date.now() > until) {
      // Give the profiler its final upload before exiting.
      setTimeout(() => process.exit(0), Number(process.env.APP_TAIL_MS || 4000));
      return;
    }
    http.get(`http://127.0.0.1:${port}${n++ % 2 ? '/api/slow' : '/api/fast'}`, (r) => {
      r.resume();
      r.on('end', () => setTimeout(tick, 5));
    }).on('error', () => setTimeout(tick, 50));
  };
  tick();
});
void tracer;
