/**
 * Telemetry for the benchmarks, with metric collection on demand so its cost can be charged to the runs that
 * produced the points, and spans encoded to OTLP protobuf and dropped (nothing is sent).
 * - `createBenchSdk`: the bare OpenTelemetry SDK as an instrumented app sets it up (BatchSpanProcessor with
 *   the engine's queue bounds, the SDK's protobuf serializer on the calling thread, as its OTLP exporter does).
 * - `createBenchTelemetry`: the engine's recorder (src/telemetry/recorder.ts) on that same SDK setup: what
 *   the recorder adds on top of the SDK (label guards, attribute caching, its span helpers).
 */
import { context, type Meter, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { Telemetry } from '../../src/telemetry/recorder.ts';
import { buildViews } from '../../src/telemetry/views.ts';

let contextManager = false;
/** The engine's context manager (AsyncLocalStorage), registered once per process as sdk.ts does. */
export function ensureContextManager(): void {
  if (contextManager) return;
  contextManager = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** Encodes every batch to OTLP protobuf on this thread and drops it; counts what it saw. */
export class EncodingSpanExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans += spans.length;
    ProtobufTraceSerializer.serializeRequest(spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** Collects (aggregates every series, as a periodic export would) when asked, and drops the result. */
export class CollectOnDemandReader extends MetricReader {
  points = 0;
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  async collectAndDrop(): Promise<void> {
    const { resourceMetrics } = await this.collect();
    for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) this.points += metric.dataPoints.length;
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface BenchSdk {
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly meterProvider: MeterProvider;
  /** Spans that reached the exporter so far. */
  spansExported(): number;
  readonly reader: CollectOnDemandReader;
  /** Exports the queued spans and collects the metrics: the export cost, charged to whoever calls it. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function createBenchSdk(): BenchSdk {
  ensureContextManager();
  const spanExporter = new EncodingSpanExporter();
  const tracerProvider = new TracerProvider({
    spanProcessors: [new BatchSpanProcessor({ exporter: spanExporter, maxQueueSize: 2048, maxExportBatchSize: 512 })],
  });
  const spansExported = () => spanExporter.spans;
  const reader = new CollectOnDemandReader();
  const meterProvider = new MeterProvider({ views: buildViews(), readers: [reader] });
  return {
    tracer: tracerProvider.getTracer('switchyard', '0.1.0'),
    meter: meterProvider.getMeter('switchyard', '0.1.0'),
    meterProvider,
    spansExported,
    reader,
    async flush() {
      // Waits for the export's result: with a worker, until it has taken the batch.
      await tracerProvider.forceFlush();
      await reader.collectAndDrop();
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** The engine's recorder on the bare SDK setup above. */
export function createBenchTelemetry(): { sdk: BenchSdk; telemetry: Telemetry } {
  const sdk = createBenchSdk();
  return { sdk, telemetry: new Telemetry({ tracer: sdk.tracer, meter: sdk.meter }) };
}
