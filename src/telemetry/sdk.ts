import { ROOT_CONTEXT, context, logs, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, ExportResultCode, W3CBaggagePropagator, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporter as OTLPMetricExporterJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricExporterProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace';
import type { TelemetryStage } from './catalog.ts';
import { MetricCells } from './cells.ts';
import { logRecordProcessorsFromEnv } from './logs.ts';
import { Telemetry } from './recorder.ts';
import { BatchSpanPipeline, WorkerRequestExporter } from './span-pipeline.ts';
import { SwitchyardTracerProvider, spanLimitsFromEnv } from './tracer.ts';
import { buildViews } from './views.ts';

export interface TelemetrySdkOptions {
  readonly serviceVersion: string;
  readonly instanceId: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Told once when an export starts failing and once when it recovers; never per failure. */
  readonly onExportStateChange?: (signal: 'traces' | 'metrics', failing: boolean, error?: unknown) => void;
}

export interface TelemetrySdk {
  readonly telemetry: Telemetry;
  readonly enabled: boolean;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

const SCOPE = 'switchyard';
/** How often metrics are exported unless OTEL_METRIC_EXPORT_INTERVAL says otherwise. */
export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 15_000;

/** The batch span processor's bounds: spans it holds for export, and spans per export request. */
export const SPAN_QUEUE_CAPACITY = 2048;
export const SPAN_EXPORT_BATCH = 512;

/**
 * Sets up the OpenTelemetry SDK from the standard OTEL_* variables: OTLP over HTTP (protobuf by default,
 * JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json), a batch span processor with a bounded queue, a
 * periodic metric reader with the catalogue's views (for the observable gauges and the SDK's own metrics)
 * that also reads the recorder's own cells. With OTEL_SDK_DISABLED=true every instrument is a no-op, the
 * recorder aggregates nothing and nothing is exported.
 */
export function startTelemetrySdk(options: TelemetrySdkOptions): TelemetrySdk {
  const env = options.env ?? process.env;
  // Refused (and harmless) when one is set already.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));

  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    // No cells: the recorder's counters and histograms do nothing at all.
    const telemetry = new Telemetry({ tracer: trace.getTracer(SCOPE), meter: metrics.getMeter(SCOPE) });
    return { telemetry, enabled: false, forceFlush: async () => {}, shutdown: async () => {} };
  }

  const resource = buildResource(options, env);
  let telemetry: Telemetry | undefined;
  const countFailure = (stage: TelemetryStage, error: unknown) => telemetry?.failure(stage, error);
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const json = protocol === 'http/json';

  const metricExporter = new ReportingMetricExporter(json ? new OTLPMetricExporterJson() : new OTLPMetricExporterProto(),
    (failing, error) => options.onExportStateChange?.('metrics', failing, error), (error) => countFailure('export_metrics', error));
  // 15 s, not the SDK's 60 s: Grafana's Prometheus datasource floors $__rate_interval at 15 s and the
  // rules use 5-minute windows; with a point a minute a short rate window holds one sample or none.
  const exportIntervalMillis = positiveInt(env.OTEL_METRIC_EXPORT_INTERVAL, DEFAULT_METRIC_EXPORT_INTERVAL_MS);
  // The recorder's counters and histograms, aggregated by the recorder itself (cells.ts) and read by the reader.
  const cells = new MetricCells({ name: SCOPE, version: options.serviceVersion });
  const meterProvider = new MeterProvider({
    resource,
    views: buildViews(),
    readers: [new PeriodicExportingMetricReader({
      exporter: metricExporter, exportIntervalMillis, exportTimeoutMillis: Math.min(positiveInt(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000), exportIntervalMillis),
      metricProducers: [cells],
    })],
  });
  metrics.setGlobalMeterProvider(meterProvider);

  // Spans are written as OTLP protobuf as they end and sent by a worker thread (span-pipeline.ts): the
  // engine's own tracer (tracer.ts), not the SDK's, which cost most of telemetry's time per request.
  const spanHealth = new ExportHealth((failing, error) => options.onExportStateChange?.('traces', failing, error), (error) => countFailure('export_traces', error));
  const spanPipeline = new BatchSpanPipeline({
    resource: resource.attributes,
    exporter: new WorkerRequestExporter({ json }),
    // Bounded: when the Collector is away, spans beyond the queue are dropped, not hoarded.
    // The pipeline counts what it exports, drops and loses (otel.sdk.processor.span.* in the catalogue).
    maxQueueSize: SPAN_QUEUE_CAPACITY,
    maxExportBatchSize: SPAN_EXPORT_BATCH,
    scheduledDelayMillis: positiveInt(env.OTEL_BSP_SCHEDULE_DELAY, 5000),
    meter: meterProvider.getMeter('@opentelemetry/sdk-trace'),
    onExported: spanHealth.wrap(() => {}),
  });
  const tracerProvider = new SwitchyardTracerProvider({ sink: spanPipeline, sampler: samplerFromEnv(env), limits: spanLimitsFromEnv(env) });
  trace.setGlobalTracerProvider(tracerProvider);

  const loggerProvider = startLogSignal(resource, env);

  telemetry = new Telemetry({ tracer: tracerProvider.getTracer(SCOPE, options.serviceVersion), meter: meterProvider.getMeter(SCOPE, options.serviceVersion), cells });
  return {
    telemetry,
    enabled: true,
    async forceFlush() {
      await Promise.allSettled([tracerProvider.forceFlush(), meterProvider.forceFlush(), loggerProvider.forceFlush()]);
    },
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown(), loggerProvider.shutdown()]);
    },
  };
}

/**
 * The log signal: a LoggerProvider with the spans' resource and the processors OTEL_LOGS_EXPORTER asks for
 * (logs.ts), registered as the global one, which the engine's pino loggers emit to (logs.ts, `otelPino`).
 * A record emitted inside a span carries its trace and span ids. Under NodeSDK this whole function is
 * `new NodeSDK({ logRecordProcessors: logRecordProcessorsFromEnv(env), ... })`, or nothing at all, since
 * NodeSDK builds the same processors from OTEL_LOGS_EXPORTER itself.
 */
function startLogSignal(resource: Resource, env: NodeJS.ProcessEnv): LoggerProvider {
  const loggerProvider = new LoggerProvider({ resource, processors: logRecordProcessorsFromEnv(env) });
  logs.setGlobalLoggerProvider(loggerProvider);
  return loggerProvider;
}

function buildResource(options: TelemetrySdkOptions, env: NodeJS.ProcessEnv): Resource {
  const defaults = resourceFromAttributes({
    'service.name': 'switchyard-engine',
    'service.namespace': 'switchyard',
    'service.version': options.serviceVersion,
    'service.instance.id': options.instanceId,
    'deployment.environment.name': env.SWITCHYARD_ENVIRONMENT ?? 'local',
  });
  // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over the defaults.
  return defaults.merge(detectResources({ detectors: [envDetector] }));
}

/** The SDK sampler OTEL_TRACES_SAMPLER names; undefined for the default, parent-based always-on, which the tracer decides inline. */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler | undefined {
  const ratio = () => {
    const value = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
    return Number.isFinite(value) && value >= 0 && value <= 1 ? value : 1;
  };
  switch ((env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase()) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    default: return undefined;
  }
}

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

/** Tracks whether exports succeed: reports the change of state (once), counts every failed export. */
class ExportHealth {
  #failing = false;
  readonly #onChange: (failing: boolean, error?: unknown) => void;
  readonly #onFailure: (error: unknown) => void;
  constructor(onChange: (failing: boolean, error?: unknown) => void, onFailure: (error: unknown) => void) {
    this.#onChange = onChange;
    this.#onFailure = onFailure;
  }

  /** Wraps an exporter's result callback. */
  wrap(done: (result: ExportResult) => void): (result: ExportResult) => void {
    return (result) => {
      const failed = result.code !== ExportResultCode.SUCCESS;
      try {
        if (failed) this.#onFailure(result.error);
        if (failed !== this.#failing) {
          this.#failing = failed;
          // Outside any span: the report is about the pipeline, not about the request that last ran.
          context.with(ROOT_CONTEXT, () => this.#onChange(failed, result.error));
        }
      } catch {
        // Reporting must never break exporting.
      }
      done(result);
    };
  }
}

class ReportingMetricExporter implements PushMetricExporter {
  readonly #inner: PushMetricExporter;
  readonly #health: ExportHealth;
  readonly selectAggregationTemporality: PushMetricExporter['selectAggregationTemporality'];
  readonly selectAggregation: PushMetricExporter['selectAggregation'];
  constructor(inner: PushMetricExporter, onChange: (failing: boolean, error?: unknown) => void, onFailure: (error: unknown) => void) {
    this.#inner = inner;
    this.#health = new ExportHealth(onChange, onFailure);
    this.selectAggregationTemporality = inner.selectAggregationTemporality?.bind(inner);
    this.selectAggregation = inner.selectAggregation?.bind(inner);
  }
  export(metricsData: ResourceMetrics, done: (result: ExportResult) => void): void {
    this.#inner.export(metricsData, this.#health.wrap(done));
  }
  shutdown(): Promise<void> { return this.#inner.shutdown(); }
  forceFlush(): Promise<void> { return this.#inner.forceFlush(); }
}
