/**
 * The one place telemetry starts: the OpenTelemetry NodeSDK (@opentelemetry/sdk-node), configured by the
 * standard OTEL_* variables exactly as NodeSDK reads them (exporters, protocols, endpoints, headers,
 * propagators, resource detectors, samplers, batch processor settings, span limits, metric interval and
 * temporality, the logs signal), with the catalogue's views and the curated auto-instrumentations
 * (instrumentations.ts). The engine adds only defaults for variables left unset (ENGINE_DEFAULTS) and a
 * listener that reports failing exports once per signal and counts them.
 *
 * Started by register.ts (`node --import ./src/telemetry/register.ts src/main.ts`), before the modules the
 * instrumentations patch are loaded.
 */
import { connect } from 'node:net';
import { context, ROOT_CONTEXT, trace, metrics } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import type { TelemetryStage } from './catalog.ts';
import type { IncomingRequestPolicy } from './instrumentations.ts';
import { Telemetry } from './recorder.ts';
import { buildViews } from './views.ts';

export interface TelemetrySdkOptions {
  readonly serviceVersion: string;
  readonly instanceId: string;
}

export type ExportSignal = 'traces' | 'metrics' | 'logs';

export interface TelemetrySdk {
  readonly telemetry: Telemetry;
  readonly enabled: boolean;
  /** The exporters per signal, as OTEL_*_EXPORTER names them (['none'] when a signal exports nothing). */
  readonly exporters: Readonly<Record<ExportSignal, readonly string[]>>;
  /**
   * Told once per signal, the first time its export fails (then only counted in telemetry_failures_total).
   * Failures that happened before a listener was set are told to it at once.
   */
  onExportFailing(listener: (signal: ExportSignal, error: unknown) => void): void;
  /**
   * Tries a TCP connection to each OTLP/HTTP endpoint in use (within `timeoutMs`); a signal whose receiver
   * refuses is reported failing (once, as any failure). True when none refused: only then is a flush worth
   * waiting for (a refused connection is retried by the SDK until its timeout, in vain).
   */
  probeReceivers(timeoutMs?: number): Promise<boolean>;
  /** Decides per incoming HTTP request whether it is traced (see instrumentations.ts). */
  setIncomingRequestPolicy(policy: IncomingRequestPolicy): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

const SCOPE = 'switchyard';
/** How often metrics are exported unless OTEL_METRIC_EXPORT_INTERVAL says otherwise. */
export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 15_000;

/**
 * The only settings the engine chooses, each applied only when its variable is unset (a user's value wins):
 * - OTEL_METRIC_EXPORT_INTERVAL 15 s, not the SDK's 60 s: Grafana's Prometheus datasource floors
 *   $__rate_interval at 15 s and the rules use 5-minute windows; with a point a minute a short rate window
 *   holds one sample or none.
 * - OTEL_SEMCONV_STABILITY_OPT_IN=http: the http instrumentation makes http.server.request.duration (seconds,
 *   stable attributes), which the dashboards and alerts read, instead of the old http.server.duration.
 * - OTEL_NODE_EXPERIMENTAL_SDK_METRICS=true: the SDK's own otel.sdk.* metrics (spans exported, dropped,
 *   queue size), how a span that never reached the Collector is counted.
 * - OTEL_NODE_ENABLED_INSTRUMENTATIONS: see instrumentations.ts (http, undici, pg, pino).
 */
export const ENGINE_DEFAULTS: Readonly<Record<string, string>> = {
  OTEL_METRIC_EXPORT_INTERVAL: String(DEFAULT_METRIC_EXPORT_INTERVAL_MS),
  OTEL_SEMCONV_STABILITY_OPT_IN: 'http',
  OTEL_NODE_EXPERIMENTAL_SDK_METRICS: 'true',
};

/**
 * Starts NodeSDK. With OTEL_SDK_DISABLED=true nothing is started, nor even loaded: every instrument and span
 * is the API's no-op and nothing is exported.
 */
export async function startTelemetrySdk(options: TelemetrySdkOptions): Promise<TelemetrySdk> {
  const env = process.env;
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
  // NodeSDK reads process.env itself: the engine's defaults go there, under any value the user set.
  for (const [name, value] of Object.entries(ENGINE_DEFAULTS)) if (!env[name]?.trim()) env[name] = value;

  if (disabled) return disabledSdk(options);
  const failures = new ExportFailures();
  let telemetry: Telemetry | undefined;
  failures.count = (signal, error) => telemetry?.failure(stageOf(signal), error);
  const [{ NodeSDK }, { curatedInstrumentations }] = await Promise.all([import('@opentelemetry/sdk-node'), import('./instrumentations.ts')]);
  const instrumentations = curatedInstrumentations();

  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': 'switchyard-engine',
      'service.namespace': 'switchyard',
      'service.version': options.serviceVersion,
      'service.instance.id': options.instanceId,
      'deployment.environment.name': env.SWITCHYARD_ENVIRONMENT ?? 'local',
    }),
    // NodeSDK's default detectors but its random service.instance.id: the engine names its instance
    // (SWITCHYARD_INSTANCE_ID, also a metric label). OTEL_NODE_RESOURCE_DETECTORS, when set, wins as in NodeSDK.
    ...(env.OTEL_NODE_RESOURCE_DETECTORS?.trim() ? {} : { resourceDetectors: [processDetector, hostDetector, osDetector, envDetector] }),
    views: buildViews(),
    instrumentations: instrumentations.list,
  });
  const exporters = exportersOf(env);
  // Failed exports of every signal reach the SDK's global error handler (a batch processor or the metric
  // reader): counted, reported once per signal, one line, never thrown into the engine.
  setGlobalErrorHandler((error) => failures.fail(signalOf(error, exporters), error));
  sdk.start();
  telemetry = new Telemetry({ tracer: trace.getTracer(SCOPE, options.serviceVersion), meter: metrics.getMeter(SCOPE, options.serviceVersion) });

  return {
    telemetry,
    enabled: true,
    exporters,
    onExportFailing: (listener) => failures.listen(listener),
    async probeReceivers(timeoutMs = 3_000) {
      const refused = await Promise.all((['traces', 'metrics', 'logs'] as const).map(async (signal) => {
        const endpoint = otlpHttpEndpoint(env, signal, exporters[signal]);
        if (!endpoint || await reachable(endpoint, timeoutMs)) return false;
        failures.fail(signal, new Error(`no OTLP receiver answers at ${endpoint.origin}`));
        return true;
      }));
      return !refused.includes(true);
    },
    setIncomingRequestPolicy: (policy) => instrumentations.setPolicy(policy),
    async forceFlush() {
      await Promise.allSettled([flushOf(trace.getTracerProvider()), flushOf(metrics.getMeterProvider())]);
    },
    async shutdown() {
      await sdk.shutdown().catch(() => {});
    },
  };
}

function disabledSdk(options: TelemetrySdkOptions): TelemetrySdk {
  const none = { traces: ['none'], metrics: ['none'], logs: ['none'] };
  return {
    telemetry: new Telemetry({ tracer: trace.getTracer(SCOPE, options.serviceVersion), meter: metrics.getMeter(SCOPE, options.serviceVersion) }),
    enabled: false, exporters: none,
    onExportFailing: () => {}, probeReceivers: async () => false, setIncomingRequestPolicy: () => {}, forceFlush: async () => {}, shutdown: async () => {},
  };
}

function flushOf(provider: object): Promise<void> | undefined {
  const delegate = 'getDelegate' in provider && typeof provider.getDelegate === 'function' ? provider.getDelegate() as object : provider;
  return 'forceFlush' in delegate && typeof delegate.forceFlush === 'function' ? delegate.forceFlush() as Promise<void> : undefined;
}

function stageOf(signal: ExportSignal): TelemetryStage {
  return `export_${signal}`;
}

/** What OTEL_{TRACES,METRICS,LOGS}_EXPORTER name, with NodeSDK's default (otlp) when unset. */
export function exportersOf(env: NodeJS.ProcessEnv): Record<ExportSignal, string[]> {
  const list = (value: string | undefined) => {
    const names = (value ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '' && name !== 'null');
    return names.length === 0 ? ['otlp'] : names.includes('none') ? ['none'] : names;
  };
  return { traces: list(env.OTEL_TRACES_EXPORTER), metrics: list(env.OTEL_METRICS_EXPORTER), logs: list(env.OTEL_LOGS_EXPORTER) };
}

/**
 * Which signal a failure reported to the global error handler belongs to. The metric reader and the log
 * processor say so in their messages; a failed span export arrives as the exporter's own error, and so does a
 * failed log export when it carries one: counted as traces, the signal every engine run exports.
 */
function signalOf(error: unknown, exporters: Record<ExportSignal, string[]>): ExportSignal {
  const text = error instanceof Error ? `${error.message} ${error.stack ?? ''}` : String(error);
  if (/MetricReader|metrics? export/i.test(text)) return 'metrics';
  if (/LogRecord|\/v1\/logs/i.test(text)) return 'logs';
  if (/\/v1\/metrics/i.test(text)) return 'metrics';
  return exporters.traces[0] === 'none' && exporters.logs[0] !== 'none' ? 'logs' : 'traces';
}

/** The OTLP/HTTP endpoint a signal exports to, as the exporter resolves it; undefined when it does not export OTLP over HTTP. */
export function otlpHttpEndpoint(env: NodeJS.ProcessEnv, signal: ExportSignal, exporters: readonly string[]): URL | undefined {
  if (!exporters.includes('otlp')) return undefined;
  const upper = signal.toUpperCase();
  const protocol = (env[`OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`] ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'grpc') return undefined;
  const raw = env[`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`]?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || 'http://localhost:4318';
  return URL.canParse(raw) ? new URL(raw) : undefined;
}

function reachable(endpoint: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const port = Number(endpoint.port || (endpoint.protocol === 'https:' ? 443 : 80));
    const socket = connect({ host: endpoint.hostname.replace(/^\[|\]$/g, ''), port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    // A receiver that does not answer in time is not judged: only a refusal is.
    socket.setTimeout(timeoutMs, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Per signal: failed or not; the listener is told once per signal, every failure is counted. */
class ExportFailures {
  readonly #failed = new Map<ExportSignal, unknown>();
  #listener: ((signal: ExportSignal, error: unknown) => void) | undefined;
  count: (signal: ExportSignal, error: unknown) => void = () => {};

  fail(signal: ExportSignal, error: unknown): void {
    try {
      this.count(signal, error);
      if (this.#failed.has(signal)) return;
      this.#failed.set(signal, error);
      this.#tell(signal, error);
    } catch {
      // Reporting must never break exporting.
    }
  }

  listen(listener: (signal: ExportSignal, error: unknown) => void): void {
    this.#listener = listener;
    for (const [signal, error] of this.#failed) this.#tell(signal, error);
  }

  #tell(signal: ExportSignal, error: unknown): void {
    // Outside any span: the report is about the pipeline, not about the request that last ran.
    try {
      context.with(ROOT_CONTEXT, () => this.#listener?.(signal, error));
    } catch {
      // A failing listener must not throw into the SDK.
    }
  }
}

/** Where register.ts leaves the SDK it started, for src/main.ts (a global: the two may be loaded as separate module instances). */
export const REGISTERED = Symbol.for('switchyard.telemetry.sdk');

/** The SDK register.ts started, if the process was started with it. */
export function registeredTelemetrySdk(): TelemetrySdk | undefined {
  return (globalThis as { [REGISTERED]?: TelemetrySdk })[REGISTERED];
}
