// The README's dd-trace recipe, run for real: a service traced with the
// OpenTelemetry SDK (spans to spanprof over OTLP/gRPC) that also loads
// dd-trace for its profiler only, configured as the README says:
// DD_SERVICE = OTEL_SERVICE_NAME, DD_TRACE_AGENT_URL = spanprof's profile
// intake, DD_PROFILING_ENABLED=true. It serves two routes over node:http and
// drives them itself. Prints the OTel span ids it made on one `SPANS {...}` line.
'use strict';

require('dd-trace').init({ startupLogs: false }); // reads DD_* from the environment
const http = require('node:http');
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: process.env.OTLP_URL }), { scheduledDelayMillis: 500 })],
});
const tracer = provider.getTracer('recipe-dd');

function burn(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

const spans = {};
const server = http.createServer((req, res) => {
  const route = req.url.startsWith('/api/users/') ? '/api/users/{id}' : '/api/items';
  const span = tracer.startSpan(`GET ${route}`, { kind: api.SpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'http.route': route } });
  burn(route === '/api/items' ? 6 : 3);
  span.end();
  spans[span.spanContext().spanId] = `GET ${route}`;
  res.end('ok');
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const until = Date.now() + Number(process.env.APP_SECONDS || 8) * 1000;
  let i = 0;
  (function next() {
    if (Date.now() > until) {
      server.close();
      // dd-trace uploads its last profile on exit (beforeExit).
      provider.forceFlush().then(() => {
        console.log(`SPANS ${JSON.stringify(spans)}`);
        setTimeout(() => process.exit(0), 3000);
      });
      return;
    }
    const path = i++ % 3 === 0 ? `/api/users/${i}` : '/api/items';
    http.get({ host: '127.0.0.1', port, path }, (r) => { r.resume(); r.on('end', next); });
  })();
});
