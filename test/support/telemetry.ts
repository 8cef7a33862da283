/**
 * In-memory telemetry for tests: the engine's tracer (its spans through the OTLP encoding and back), a real
 * SDK meter (views from the catalogue) and the recorder's metric cells behind the engine's Telemetry recorder, with finished spans and metric points readable on demand.
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
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { MetricCells } from '../../src/telemetry/cells.ts';
import { Telemetry, type TelemetryOptions } from '../../src/telemetry/recorder.ts';
import { buildViews } from '../../src/telemetry/views.ts';
import { decodeTraceRequest, encodeResource, encodeTraceRequest, SpanEncoder, toReadableSpan } from '../../src/telemetry/otlp-spans.ts';
import { ProtobufWriter } from '../../src/telemetry/protobuf.ts';
import { SwitchyardTracerProvider, type RecordingSpan, type SpanSink } from '../../src/telemetry/tracer.ts';

/**
 * Keeps every span as it ends, the way the engine exports it: written as an OTLP protobuf request and read
 * back. So every test that reads spans also checks the encoding.
 */
export class InMemorySpanSink implements SpanSink {
  readonly spans: ReadableSpan[] = [];
  readonly #encoder = new SpanEncoder();
  readonly #resource = encodeResource({ 'service.name': 'switchyard-test' });

  onEnd(span: RecordingSpan): void {
    const writer = new ProtobufWriter(1024);
    this.#encoder.writeSpanField(writer, span);
    const request = encodeTraceRequest(this.#resource, [{ scope: span.scope, encodedScope: span.scope.encoded, spans: writer.bytes() }]);
    this.spans.push(...decodeTraceRequest(request).map(toReadableSpan));
  }

  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** A metric reader that only collects when asked (no timer, no exporter). */
export class OnDemandMetricReader extends MetricReader {
  constructor(metricProducers: MetricProducer[] = []) {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE, metricProducers });
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

const OTEL_NAME_BY_PROMETHEUS_NAME = new Map<string, string>(Object.values(METRICS).map((spec) => [spec.name, spec.otelName]));

export function createTestTelemetry(options: Pick<TelemetryOptions, 'onFailure'> = {}): TestTelemetry {
  ensureContextManager();
  const sink = new InMemorySpanSink();
  const tracerProvider = new SwitchyardTracerProvider({ sink });
  // The recorder's counters and histograms (its cells) and the SDK's gauges, read together as sdk.ts reads them.
  const cells = new MetricCells({ name: 'switchyard-test' });
  const reader = new OnDemandMetricReader([cells]);
  const meterProvider = new MeterProvider({ views: buildViews(), readers: [reader] });
  const failures: TestTelemetry['failures'] = [];
  const telemetry = new Telemetry({
    tracer: tracerProvider.getTracer('switchyard-test'),
    meter: meterProvider.getMeter('switchyard-test'),
    cells,
    onFailure: (stage, error) => {
      failures.push({ stage, error });
      options.onFailure?.(stage, error);
    },
  });

  const collectMetrics = (): Promise<CollectionResult> => reader.collect();

  return {
    telemetry,
    failures,
    spans: () => [...sink.spans],
    resetSpans: () => {
      sink.spans.length = 0;
    },
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
