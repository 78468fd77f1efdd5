// The README's Node recipe, run for real: an OpenTelemetry-traced service
// whose @pyroscope/nodejs wall profiler labels samples with the active
// OTel span id (span_id, 16 hex characters) through wrapWithLabels, the
// labelling API @pyroscope/nodejs 0.6 offers. Spans go to spanprof over
// OTLP/gRPC, profiles to its Pyroscope ingest. Prints the span ids it
// made on one `SPANS {...}` line at the end.
'use strict';

const Pyroscope = require('@pyroscope/nodejs');
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');

const SERVICE = process.env.OTEL_SERVICE_NAME;
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': SERVICE }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: process.env.OTLP_URL }), { scheduledDelayMillis: 500 })],
});
const tracer = provider.getTracer('recipe');

// --- the recipe -----------------------------------------------------------
Pyroscope.init({ serverAddress: process.env.PYROSCOPE_URL, appName: SERVICE, flushIntervalMs: 2000 });
Pyroscope.start();

function handle(route, work) {
  const span = tracer.startSpan(`GET ${route}`, {
    kind: api.SpanKind.SERVER,
    attributes: { 'http.request.method': 'GET', 'http.route': route },
  });
  // Samples taken while fn runs (synchronously) carry span_id.
  Pyroscope.wrapWithLabels({ span_id: span.spanContext().spanId }, work);
  span.end();
  return span.spanContext().spanId;
}
// ---------------------------------------------------------------------------

function burn(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

const spans = {};
const until = Date.now() + Number(process.env.APP_SECONDS || 6) * 1000;
let i = 0;
(function loop() {
  if (Date.now() > until) {
    provider.forceFlush().then(() => Pyroscope.stop()).then(() => {
      console.log(`SPANS ${JSON.stringify(spans)}`);
      process.exit(0);
    });
    return;
  }
  const route = i++ % 3 === 0 ? '/api/users/{id}' : '/api/items';
  const id = handle(route, () => burn(route === '/api/items' ? 6 : 3));
  spans[id] = `GET ${route}`;
  setImmediate(loop);
})();
