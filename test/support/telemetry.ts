/**
 * In-memory telemetry for tests: the SDK's tracer (SimpleSpanProcessor into an InMemorySpanExporter) and the
 * SDK's meter (views from the catalogue, read by an on-demand MetricReader) behind the engine's Telemetry
 * recorder, with finished spans and metric points readable on demand.
 *
 *   const t = createTestTelemetry();
 *   ... run engine code with t.telemetry ...
 *   t.spans()                                   // finished spans, in end order
 *   await t.metricPoints('runtime_tool_errors_total')   // or the otelName 'runtime.tool.errors'
 *   await t.shutdown();
 */
import { context, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type CollectionResult,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { createRequire } from 'node:module';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { curatedInstrumentations } from '../../src/telemetry/instrumentations.ts';
import { Telemetry, type TelemetryOptions } from '../../src/telemetry/recorder.ts';
import { buildViews } from '../../src/telemetry/views.ts';

/** A metric reader that only collects when asked (no timer, no exporter). */
export class OnDemandMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface MetricPoint {
  attributes: Attributes;
  /** Counter/gauge value; for histograms the number of observations. */
  value: number;
  /** Histograms only. */
  sum?: number;
  buckets?: { boundaries: number[]; counts: number[] };
}

export interface TestTelemetry {
  telemetry: Telemetry;
  spans(): ReadableSpan[];
  resetSpans(): void;
  collectMetrics(): Promise<CollectionResult>;
  /** Points of one metric by its Prometheus name (catalogue `name`) or its `otelName`; [] when none yet. */
  metricPoints(name: string): Promise<MetricPoint[]>;
  /** Telemetry failures reported through onFailure, in order. */
  failures: Array<{ stage: string; error: unknown }>;
  shutdown(): Promise<void>;
}

let contextManagerRegistered = false;

/** Registers an AsyncLocalStorage context manager once per module graph (a second registration is refused by the API anyway). */
export function ensureContextManager(): void {
  if (contextManagerRegistered) return;
  contextManagerRegistered = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

let httpInstrumentation: Instrumentation[] | undefined;

/**
 * The engine's http instrumentation (as instrumentations.ts configures it), in this test process: the API's
 * SERVER spans and http.server.request.duration go to the test telemetry created last (one process-wide
 * patch of node:http, as in the engine; tests that run two engines at once see the HTTP telemetry of one).
 */
function instrumentHttp(tracerProvider: TracerProvider, meterProvider: MeterProvider): void {
  if (!httpInstrumentation) {
    const saved = process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS;
    process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS = 'http';
    process.env.OTEL_SEMCONV_STABILITY_OPT_IN ??= 'http';
    try {
      httpInstrumentation = curatedInstrumentations({ hookEsm: false }).list;
    } finally {
      if (saved === undefined) delete process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS;
      else process.env.OTEL_NODE_ENABLED_INSTRUMENTATIONS = saved;
    }
    // The instrumentation patches node:http when it is required (the ESM import shares its Server prototype).
    createRequire(import.meta.url)('node:http');
  }
  for (const instrumentation of httpInstrumentation) {
    instrumentation.setTracerProvider(tracerProvider);
    instrumentation.setMeterProvider(meterProvider);
  }
}

const OTEL_NAME_BY_PROMETHEUS_NAME = new Map<string, string>(Object.values(METRICS).map((spec) => [spec.name, spec.otelName]));

export function createTestTelemetry(options: Pick<TelemetryOptions, 'onFailure'> = {}): TestTelemetry {
  ensureContextManager();
  const exporter = new InMemorySpanExporter();
  const resource = resourceFromAttributes({ 'service.name': 'switchyard-test' });
  const tracerProvider = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new OnDemandMetricReader();
  const meterProvider = new MeterProvider({ resource, views: buildViews(), readers: [reader] });
  instrumentHttp(tracerProvider, meterProvider);
  const failures: TestTelemetry['failures'] = [];
  const telemetry = new Telemetry({
    tracer: tracerProvider.getTracer('switchyard-test'),
    meter: meterProvider.getMeter('switchyard-test'),
    onFailure: (stage, error) => {
      failures.push({ stage, error });
      options.onFailure?.(stage, error);
    },
  });

  const collectMetrics = (): Promise<CollectionResult> => reader.collect();

  return {
    telemetry,
    failures,
    spans: () => [...exporter.getFinishedSpans()],
    resetSpans: () => exporter.reset(),
    collectMetrics,
    async metricPoints(name) {
      const otelName = OTEL_NAME_BY_PROMETHEUS_NAME.get(name) ?? name;
      const { resourceMetrics } = await collectMetrics();
      const points: MetricPoint[] = [];
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          if (metric.descriptor.name === otelName) points.push(...toPoints(metric));
        }
      }
      return points;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

function toPoints(metric: MetricData): MetricPoint[] {
  if (metric.dataPointType === DataPointType.HISTOGRAM) {
    return metric.dataPoints.map((point) => ({
      attributes: point.attributes,
      value: point.value.count,
      sum: point.value.sum,
      buckets: { boundaries: [...point.value.buckets.boundaries], counts: [...point.value.buckets.counts] },
    }));
  }
  if (metric.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) {
    return metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value.count, sum: point.value.sum }));
  }
  return metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value }));
}
