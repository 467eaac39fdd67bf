// OpenTelemetry for a Node.js http server, set up as docs/service.md ("Node.js") says; load it
// before the app: `node --require ./tracing.js server.js`. The exporter reads the standard
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (here: otel-downstream serve's /v1/traces) and
// OTEL_EXPORTER_OTLP_HEADERS.
'use strict';

const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || 'node-shop' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();

registerInstrumentations({
  instrumentations: [
    new HttpInstrumentation({
      // The stable HTTP conventions make body sizes opt-in: capture the Content-Length headers
      // (http.request.header.content-length, http.response.header.content-length), which
      // otel-downstream reads as the body sizes. user_agent.original and client.address are
      // recorded by default.
      headersToSpanAttributes: {
        server: { requestHeaders: ['content-length'], responseHeaders: ['content-length'] },
      },
    }),
  ],
});

async function shutdown() {
  await provider.shutdown(); // exports the spans still batched
}
module.exports = { shutdown };
