// bench/status_clients.js: N clients (keep-alive) load spanprof's status page
// for S seconds, each view = GET /status then GET /status.json, back to
// back. Prints `RESULT status_clients views=.. errors=.. p50_ms=.. p99_ms=..`.
// Usage: node bench/status_clients.js --url http://127.0.0.1:PORT --clients 10 --seconds 10
'use strict';
const http = require('node:http');

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => {
  if (v.startsWith('--')) a.push([v.slice(2), all[i + 1]]);
  return a;
}, []));
const base = new URL(args.url || 'http://127.0.0.1:8888');
const clients = Number(args.clients || 10);
const seconds = Number(args.seconds || 10);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });

function get(path) {
  return new Promise((resolve) => {
    const req = http.get({ host: base.hostname, port: base.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
  });
}

async function client(until, lat, errs) {
  while (Date.now() < until) {
    const t = process.hrtime.bigint();
    const a = await get('/status');
    const b = await get('/status.json');
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (a !== 200 || b !== 200) errs.n++;
  }
}

(async () => {
  const until = Date.now() + seconds * 1000;
  const lat = [];
  const errs = { n: 0 };
  await Promise.all(Array.from({ length: clients }, () => client(until, lat, errs)));
  lat.sort((x, y) => x - y);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * (lat.length - 1)))].toFixed(2) : '?');
  console.log(`RESULT status_clients views=${lat.length} errors=${errs.n} p50_ms=${pct(0.5)} p99_ms=${pct(0.99)}`);
  agent.destroy();
})();
