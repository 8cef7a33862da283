/**
 * Telemetry for the benchmarks, with metric collection on demand so its cost can be charged to the runs that
 * produced the points, and spans encoded to OTLP protobuf and dropped (nothing is sent).
 * - `createBenchSdk`: the bare OpenTelemetry SDK as an instrumented app sets it up (BatchSpanProcessor with
 *   the engine's queue bounds, the SDK's protobuf serializer on the calling thread, as its OTLP exporter does).
 * - `createBenchTelemetry`: the engine's recorder (src/telemetry/recorder.ts) on that same SDK setup: what
 *   the recorder adds on top of the SDK (label guards, attribute caching, its span helpers).
 * - `benchNodeSdk`: a NodeSDK (@opentelemetry/sdk-node) set up as src/telemetry/sdk.ts sets up the engine's
 *   (its resource and detectors, the catalogue's views, ENGINE_DEFAULTS, the batch span processor NodeSDK
 *   builds from the environment), but with no instrumentation and exporters that encode and drop: the
 *   tracer and meter the engine's recorder gets, and those a bare app on NodeSDK gets. One per process
 *   (NodeSDK registers the global providers), started on first use and never shut down.
 */
import { context, metrics, trace, type Meter, type ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { Telemetry } from '../../src/telemetry/recorder.ts';
import { ENGINE_DEFAULTS } from '../../src/telemetry/sdk.ts';
import { buildViews } from '../../src/telemetry/views.ts';

let contextManager = false;
/** The engine's context manager (AsyncLocalStorage), registered once per process as sdk.ts does. */
export function ensureContextManager(): void {
  if (contextManager || nodeSdk) return;
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

let nodeSdk: BenchSdk | undefined;

/** The process's NodeSDK, configured as the engine's (see the header); started on first call. */
export function benchNodeSdk(): BenchSdk {
  if (nodeSdk) return nodeSdk;
  const spanExporter = new EncodingSpanExporter();
  const reader = new CollectOnDemandReader();
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': 'switchyard-engine', 'service.namespace': 'switchyard', 'service.version': '0.1.0',
      'service.instance.id': 'bench', 'deployment.environment.name': 'bench',
    }),
    resourceDetectors: [processDetector, hostDetector, osDetector, envDetector],
    views: buildViews(),
    // What NodeSDK does with an exporter: its batch span processor from OTEL_BSP_*, with its self-metrics.
    traceExporter: spanExporter,
    metricReaders: [reader],
    logRecordProcessors: [],
    instrumentations: [],
  });
  // The engine's defaults (OTEL_NODE_EXPERIMENTAL_SDK_METRICS: the SDK's self-metrics on every span) as
  // sdk.ts applies them, only for this start: engines spawned later by the bench get their own.
  const set = Object.keys(ENGINE_DEFAULTS).filter((name) => !process.env[name]?.trim());
  for (const name of set) process.env[name] = ENGINE_DEFAULTS[name];
  try {
    sdk.start();
  } finally {
    for (const name of set) delete process.env[name];
  }
  contextManager = true;
  const tracerProvider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as TracerProvider;
  nodeSdk = {
    tracer: trace.getTracer('switchyard', '0.1.0'),
    meter: metrics.getMeter('switchyard', '0.1.0'),
    meterProvider: metrics.getMeterProvider() as MeterProvider,
    spansExported: () => spanExporter.spans,
    reader,
    async flush() {
      await tracerProvider.forceFlush();
      await reader.collectAndDrop();
    },
    // Shared by whoever uses it in this process: flushed, never shut down.
    async shutdown() {
      await this.flush();
    },
  };
  return nodeSdk;
}
