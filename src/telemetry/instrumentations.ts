/**
 * The auto-instrumentations the engine loads (@opentelemetry/auto-instrumentations-node), curated: the HTTP
 * server and client (incoming requests: the SERVER span and http.server.request.duration), undici (the
 * model calls' fetch: a CLIENT span, and the context OTEL_PROPAGATORS names injected), pg (the store's
 * queries on PostgreSQL) and pino (trace ids in log lines; log records to NodeSDK's logs signal). fs, dns,
 * net and the rest stay off unless named: the curated list is only the default of
 * OTEL_NODE_ENABLED_INSTRUMENTATIONS, and OTEL_NODE_ENABLED_INSTRUMENTATIONS / _DISABLED_ win as the package
 * documents.
 */
import type { IncomingMessage } from 'node:http';
import { context } from '@opentelemetry/api';
import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { Instrumentation, InstrumentationBase } from '@opentelemetry/instrumentation';
import { register } from 'import-in-the-middle/register-hooks.mjs';

export const CURATED_INSTRUMENTATIONS = 'http,undici,pg,pino';

/**
 * What happens to one incoming request's telemetry: `ignore` (no span, no point: health probes, requests
 * refused 401), `trusted` (its trace context is taken as sent, sampled flag included) or `untrusted` (its
 * trace id and parent are kept, but a sampled=0 cannot silence the run).
 */
export type IncomingRequestTreatment = 'ignore' | 'trusted' | 'untrusted';
export type IncomingRequestPolicy = (request: IncomingMessage) => IncomingRequestTreatment;

/** Probes are polled, not served: neither a span nor a point, whatever the policy. */
const PROBES = new Set(['/healthz', '/readyz']);

/**
 * The instrumentations OTEL_NODE_ENABLED_INSTRUMENTATIONS / _DISABLED_ select (default: the curated list),
 * with the engine's configuration, and (unless `hookEsm` is false: in-process tests, whose modules are loaded
 * already) their ESM loader hook.
 */
export function curatedInstrumentations(options: { hookEsm?: boolean } = {}): { list: Instrumentation[]; setPolicy(policy: IncomingRequestPolicy): void } {
  if (!process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS?.trim()) process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS = CURATED_INSTRUMENTATIONS;
  // Until the API sets its own (main.ts, once the key list is known): every caller's context is untrusted.
  let policy: IncomingRequestPolicy = () => 'untrusted';
  const list = getNodeAutoInstrumentations({
    '@opentelemetry/instrumentation-http': {
      // Runs first for each request, before its context is extracted and its span started: the one place
      // to skip it, or to take away an untrusted caller's power to switch sampling off.
      ignoreIncomingRequestHook(request) {
        if (PROBES.has(pathOf(request.url))) return true;
        const treatment = policy(request);
        if (treatment === 'untrusted') markSampled(request.headers);
        return treatment === 'ignore';
      },
    },
  });
  if (options.hookEsm !== false) hookModules(list);
  return { list, setPolicy: (next) => (policy = next) };
}

/**
 * The OpenTelemetry JS way for ESM (doc/esm-support.md): import-in-the-middle's loader hook, here the
 * in-thread one (`module.registerHooks`), limited to the modules the enabled instrumentations patch, so
 * that an ESM import of them (node:http, and pg or pino imported from ESM) is patched like a require.
 * Every other module loads untouched. Needs to run before those modules are first imported (register.ts).
 */
let hooked = false;
function hookModules(list: Instrumentation[]): void {
  if (hooked) return;
  hooked = true;
  const names = list.flatMap((instrumentation) => (instrumentation as InstrumentationBase).getModuleDefinitions?.().map((definition) => definition.name) ?? []);
  register({ include: [...new Set(names)] });
}

/**
 * Names the request being served by its route template (`/api/v1/workflows/:id/executions`): the http
 * instrumentation puts it on the SERVER span (`POST /api/v1/...`) and on http.server.request.duration, as
 * its express instrumentation would (without that one's span per middleware).
 */
export function setHttpRoute(route: string): void {
  const metadata = getRPCMetadata(context.active());
  if (metadata?.type === RPCType.HTTP) metadata.route = route;
}

function pathOf(url: string | undefined): string {
  const end = url?.search(/[?#]/) ?? -1;
  return end < 0 ? url ?? '' : url!.slice(0, end);
}

/**
 * Sets the sampled flag of the trace context headers a caller sent (W3C traceparent, B3 single and multi
 * header): the caller still names the trace and the parent span, the engine's sampler decides as for a
 * sampled parent. Other propagators' headers are left as they are.
 */
export function markSampled(headers: IncomingMessage['headers']): void {
  const traceparent = headers['traceparent'];
  if (typeof traceparent === 'string') {
    const match = /^([0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-)([0-9a-f]{2})(.*)$/i.exec(traceparent.trim());
    if (match) headers['traceparent'] = `${match[1]}${(parseInt(match[2]!, 16) | 1).toString(16).padStart(2, '0')}${match[3]}`;
  }
  const b3 = headers['b3'];
  // A bare `b3: 0` (deny, no ids) names no trace: dropped, the request starts a trace of its own.
  if (b3 === '0') delete headers['b3'];
  else if (typeof b3 === 'string') headers['b3'] = b3.replace(/^([0-9a-f]+-[0-9a-f]+)-0(?=$|-)/i, '$1-1');
  if (headers['x-b3-sampled'] === '0' || headers['x-b3-sampled'] === 'false') headers['x-b3-sampled'] = '1';
}
