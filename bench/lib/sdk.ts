/**
 * An in-process OpenTelemetry SDK for the benchmarks, set up as src/telemetry/sdk.ts sets up the real one
 * (BatchSpanProcessor with the same queue bounds, the catalogue's views), with metric collection on demand so
 * its cost can be charged to the runs that produced the points. Spans are encoded to OTLP protobuf and the
 * bytes dropped (nothing is sent): `spanExport: 'main'` encodes on the calling thread, as the SDK's OTLP
 * exporter does; `'worker'` hands the batches to a worker thread that encodes them, as the engine does
 * (src/telemetry/span-export.ts, with bench/lib/encode-worker.ts in place of the sending worker).
 */
import { context, type Meter, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { MetricCells } from '../../src/telemetry/cells.ts';
import { WorkerSpanExporter } from '../../src/telemetry/span-export.ts';
import { Telemetry } from '../../src/telemetry/recorder.ts';
import { buildViews } from '../../src/telemetry/views.ts';

let contextManager = false;
/** The engine's context manager (AsyncLocalStorage), registered once per process as sdk.ts does. */
export function ensureContextManager(): void {
  if (contextManager) return;
  contextManager = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** Encodes every batch to OTLP protobuf (on this thread, or through a worker) and drops it; counts what it saw. */
export class EncodingSpanExporter implements SpanExporter {
  spans = 0;
  readonly #worker: WorkerSpanExporter | undefined;
  constructor(where: 'main' | 'worker') {
    this.#worker = where === 'worker' ? new WorkerSpanExporter({ json: false, workerUrl: new URL('./encode-worker.ts', import.meta.url) }) : undefined;
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans += spans.length;
    if (this.#worker) return this.#worker.export(spans, done);
    ProtobufTraceSerializer.serializeRequest(spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {
    await this.#worker?.shutdown();
  }
  async forceFlush(): Promise<void> {
    await this.#worker?.forceFlush();
  }
}

/** Collects (aggregates every series, as a periodic export would) when asked, and drops the result. */
export class CollectOnDemandReader extends MetricReader {
  points = 0;
  constructor(metricProducers: MetricProducer[] = []) {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE, metricProducers });
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
  readonly spanExporter: EncodingSpanExporter;
  readonly reader: CollectOnDemandReader;
  /** Exports the queued spans and collects the metrics: the export cost, charged to whoever calls it. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** `metricProducers`: read with the SDK's metrics at each collection (the recorder's cells). */
export function createBenchSdk(spanExport: 'main' | 'worker' = 'main', metricProducers: MetricProducer[] = []): BenchSdk {
  ensureContextManager();
  const spanExporter = new EncodingSpanExporter(spanExport);
  const tracerProvider = new TracerProvider({
    spanProcessors: [new BatchSpanProcessor({ exporter: spanExporter, maxQueueSize: 2048, maxExportBatchSize: 512 })],
  });
  const reader = new CollectOnDemandReader(metricProducers);
  const meterProvider = new MeterProvider({ views: buildViews(), readers: [reader] });
  return {
    tracer: tracerProvider.getTracer('switchyard', '0.1.0'),
    meter: meterProvider.getMeter('switchyard', '0.1.0'),
    meterProvider,
    spanExporter,
    reader,
    async flush() {
      // Waits for the export's result: with a worker, until it has encoded the batch.
      await tracerProvider.forceFlush();
      await reader.collectAndDrop();
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** The engine's recorder over a bench SDK that exports spans as the engine does (through a worker thread). */
export function createBenchTelemetry(): { sdk: BenchSdk; telemetry: Telemetry } {
  const cells = new MetricCells({ name: 'switchyard', version: '0.1.0' });
  const sdk = createBenchSdk('worker', [cells]);
  return { sdk, telemetry: new Telemetry({ tracer: sdk.tracer, meter: sdk.meter, cells }) };
}
