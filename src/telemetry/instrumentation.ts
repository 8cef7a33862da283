/**
 * Loaded with `node --import` before the engine: registers the HTTP and express instrumentations (and
 * only those: every auto-instrumentation costs start-up time) while the modules they patch are still
 * unloaded. The SDK itself starts later, in main.ts; until then the instrumentations trace into the
 * API's proxy tracer, which forwards to the SDK once it is registered. The metrics API has no such proxy:
 * an instrumentation created now keeps a no-op meter, so the SDK hands it the real meter provider when it
 * starts (telemetry/sdk.ts, through ./instrumentations.ts). That is how http.server.request.duration
 * reaches the Collector.
 */
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { register, supportsSyncHooks } from 'import-in-the-middle/register-hooks.mjs';
import { REGISTERED_INSTRUMENTATIONS } from './instrumentations.ts';

const PROBES = new Set(['/healthz', '/readyz']);

if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
  // Intercept only the modules we instrument: hooking every import would slow start-up for nothing.
  if (supportsSyncHooks()) register({ include: ['express', 'http', 'node:http'] });
  const instrumentations = [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (request) => PROBES.has(request.url ?? ''),
      // The engine's only outgoing node:http requests are its own OTLP exports (model calls use fetch):
      // spans and http.client.request.duration of those would be telemetry about telemetry, paid per export.
      disableOutgoingRequestInstrumentation: true,
    }),
    // Route handlers only: a span per middleware layer (body parser, content-type check) costs more
    // than it tells; the HTTP server span and the engine's own spans carry the rest.
    new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
  ];
  registerInstrumentations({ instrumentations });
  REGISTERED_INSTRUMENTATIONS.push(...instrumentations);
}
