/**
 * Loaded with `node --import` before the engine: registers the HTTP and express instrumentations (and
 * only those: every auto-instrumentation costs start-up time) while the modules they patch are still
 * unloaded. The SDK itself starts later, in main.ts; until then the instrumentations record into the
 * API's proxy, which forwards to the SDK once it is registered.
 */
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { register, supportsSyncHooks } from 'import-in-the-middle/register-hooks.mjs';

const PROBES = new Set(['/healthz', '/readyz']);

if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
  // Intercept only the modules we instrument: hooking every import would slow start-up for nothing.
  if (supportsSyncHooks()) register({ include: ['express', 'http', 'node:http'] });
  registerInstrumentations({
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => PROBES.has(request.url ?? ''),
      }),
      // Route handlers only: a span per middleware layer (body parser, content-type check) costs more
      // than it tells; the HTTP server span and the engine's own spans carry the rest.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
    ],
  });
}
