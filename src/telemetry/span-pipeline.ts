/**
 * The batch span pipeline: what the SDK's BatchSpanProcessor and OTLP exporter did, at a fraction of the
 * event loop's time. A sampled span is written as OTLP protobuf the moment it ends (telemetry/otlp-spans.ts)
 * into the current batch, and the object is free. Full batches (or, after the schedule delay, a partial one)
 * are wrapped into an ExportTraceServiceRequest and posted as bytes to a worker thread
 * (telemetry/export-worker.ts) that sends them with the SDK's OTLP/HTTP transport (endpoint, headers, timeout,
 * retries and compression from the standard OTEL_EXPORTER_OTLP_* variables).
 *
 * The same bounds and accounting as the SDK's processor: at most `maxQueueSize` spans wait (beyond it new
 * spans are dropped and counted as `queue_full`), one export is in flight at a time, and every span ends up
 * counted once in otel.sdk.processor.span.processed (exported, dropped, or lost with the export's error
 * name), with the queue's size and capacity as otel.sdk.processor.span.queue.* (the catalogue's
 * SDK metrics, same names and attributes).
 */
import { Worker } from 'node:worker_threads';
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import { METRICS } from './catalog.ts';
import { encodeResource, encodeTraceRequest, SpanEncoder } from './otlp-spans.ts';
import { ProtobufWriter } from './protobuf.ts';
import type { RecordingSpan, SpanSink, TracerScope } from './tracer.ts';

/**
 * Sends one encoded ExportTraceServiceRequest of `count` spans; resolves with the export's result. The exporter
 * owns the request's bytes from then on (the worker's exporter moves them to its thread without a copy).
 */
export type RequestExporter = {
  export(request: Uint8Array, count: number): Promise<ExportResult>;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
};

export interface SpanPipelineOptions {
  readonly resource: Attributes;
  readonly exporter: RequestExporter;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMillis?: number;
  /** An export that has not answered by then counts as failed (the transport's own timeout is shorter). */
  readonly exportTimeoutMillis?: number;
  /** Meter for the pipeline's own metrics (otel.sdk.processor.span.*); none: not measured. */
  readonly meter?: Meter;
  /** Told every export's result (after the metrics count it). */
  readonly onExported?: (result: ExportResult) => void;
}

const COMPONENT_TYPE = 'batching_span_processor';

interface PipelineMetrics {
  readonly attributes: Attributes;
  readonly dropped: Attributes;
  count(n: number, attributes: Attributes): void;
}
let instances = 0;

/** Spans ended since the last export, written per scope. */
class Batch {
  count = 0;
  readonly #writers = new Map<TracerScope, ProtobufWriter>();

  writerFor(scope: TracerScope): ProtobufWriter {
    let writer = this.#writers.get(scope);
    if (!writer) {
      writer = new ProtobufWriter(32 * 1024);
      this.#writers.set(scope, writer);
    }
    return writer;
  }

  request(resource: Uint8Array): Uint8Array {
    return encodeTraceRequest(resource, [...this.#writers].map(([scope, writer]) => ({ scope, encodedScope: scope.encoded, spans: writer.bytes() })));
  }
}

export class BatchSpanPipeline implements SpanSink {
  readonly #encoder = new SpanEncoder();
  readonly #resource: Uint8Array;
  readonly #exporter: RequestExporter;
  readonly #maxQueueSize: number;
  readonly #maxBatch: number;
  readonly #delay: number;
  readonly #exportTimeout: number;
  readonly #onExported: SpanPipelineOptions['onExported'];
  readonly #batches: Batch[] = [];
  #queued = 0;
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #shutDown = false;
  readonly #metrics: PipelineMetrics | undefined;

  constructor(options: SpanPipelineOptions) {
    this.#resource = encodeResource(options.resource);
    this.#exporter = options.exporter;
    this.#maxQueueSize = options.maxQueueSize;
    this.#maxBatch = Math.min(options.maxExportBatchSize, options.maxQueueSize);
    this.#delay = options.scheduledDelayMillis ?? 5000;
    this.#exportTimeout = options.exportTimeoutMillis ?? 30_000;
    this.#onExported = options.onExported;
    if (options.meter) this.#metrics = this.#measure(options.meter);
  }

  onEnd(span: RecordingSpan): void {
    if (this.#shutDown || (span.traceFlags & 1) === 0) return;
    if (this.#queued >= this.#maxQueueSize) {
      this.#metrics?.count(1, this.#metrics.dropped);
      return;
    }
    let batch = this.#batches.at(-1);
    if (!batch || batch.count >= this.#maxBatch) {
      batch = new Batch();
      this.#batches.push(batch);
    }
    this.#encoder.writeSpanField(batch.writerFor(span.scope), span);
    batch.count++;
    this.#queued++;
    if (this.#inFlight) return;
    if (this.#batches[0]!.count >= this.#maxBatch) this.#exportNext();
    else this.#startTimer();
  }

  /** Exports every span ended before the call; resolves when their exports are done (whatever their result). */
  async forceFlush(): Promise<void> {
    let batches = this.#batches.length;
    while (this.#inFlight || batches > 0) {
      if (this.#inFlight) await this.#inFlight;
      else {
        this.#exportNext();
        batches--;
      }
    }
    await this.#exporter.forceFlush();
  }

  async shutdown(): Promise<void> {
    if (this.#shutDown) return;
    await this.forceFlush();
    this.#shutDown = true;
    this.#clearTimer();
    await this.#exporter.shutdown();
  }

  #startTimer(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#inFlight) this.#exportNext();
    }, this.#delay);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #exportNext(): void {
    this.#clearTimer();
    const batch = this.#batches.shift();
    if (!batch) return;
    this.#queued -= batch.count;
    let request: Uint8Array;
    try {
      request = batch.request(this.#resource);
    } catch (error) {
      this.#done(batch.count, { code: ExportResultCode.FAILED, error: error as Error });
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ExportResult>((resolve) => {
      timer = setTimeout(() => resolve({ code: ExportResultCode.FAILED, error: Object.assign(new Error('span export timed out'), { name: 'TimeoutError' }) }), this.#exportTimeout);
      timer.unref();
    });
    const failed = (error: unknown): ExportResult => ({ code: ExportResultCode.FAILED, error: error as Error });
    let exported: Promise<ExportResult>;
    try {
      exported = this.#exporter.export(request, batch.count).catch(failed);
    } catch (error) {
      // An exporter that throws instead of failing loses this batch, never the span that ended.
      exported = Promise.resolve(failed(error));
    }
    this.#inFlight = Promise.race([exported, timeout]).then((result) => {
      clearTimeout(timer);
      this.#inFlight = undefined;
      this.#done(batch.count, result);
      if (this.#shutDown || this.#batches.length === 0) return;
      if (this.#batches[0]!.count >= this.#maxBatch) this.#exportNext();
      else this.#startTimer();
    });
  }

  #done(count: number, result: ExportResult): void {
    try {
      const metrics = this.#metrics;
      if (metrics) {
        if (result.code === ExportResultCode.SUCCESS) metrics.count(count, metrics.attributes);
        else metrics.count(count, { ...metrics.attributes, [ATTR_ERROR_TYPE]: result.error?.name ?? 'Error' });
      }
      this.#onExported?.(result);
    } catch {
      // Accounting must never break exporting.
    }
  }

  #measure(meter: Meter): PipelineMetrics {
    const attributes = { 'otel.component.type': COMPONENT_TYPE, 'otel.component.name': `${COMPONENT_TYPE}/${instances++}` };
    const processed = meter.createCounter(METRICS.spanProcessorSpansProcessed.otelName, { unit: METRICS.spanProcessorSpansProcessed.unit, description: METRICS.spanProcessorSpansProcessed.description });
    // Up-down counters, as the SDK's processor reports them (Prometheus shows both as gauges).
    const size = meter.createObservableUpDownCounter(METRICS.spanProcessorQueueSize.otelName, { unit: METRICS.spanProcessorQueueSize.unit, description: METRICS.spanProcessorQueueSize.description });
    const capacity = meter.createObservableUpDownCounter(METRICS.spanProcessorQueueCapacity.otelName, { unit: METRICS.spanProcessorQueueCapacity.unit, description: METRICS.spanProcessorQueueCapacity.description });
    size.addCallback((result: ObservableResult) => result.observe(this.#queued, attributes));
    capacity.addCallback((result: ObservableResult) => result.observe(this.#maxQueueSize, attributes));
    return { attributes, dropped: { ...attributes, [ATTR_ERROR_TYPE]: 'queue_full' }, count: (n, set) => processed.add(n, set) };
  }
}

// --- The export worker's client ---------------------------------------------------------------------------

export type ToWorker = { type: 'export'; id: number; request: Uint8Array; count: number } | { type: 'flush' | 'shutdown'; id: number };
export interface FromWorker { type: 'done'; id: number; code: number; error?: unknown }

/**
 * Posts encoded requests to the export worker (a copy of the bytes: no object graph to clone). A worker that
 * dies fails the exports it held (counted as failed exports, never hung) and is started anew at the next
 * export; an idle worker does not keep the process alive.
 */
export class WorkerRequestExporter implements RequestExporter {
  readonly #workerUrl: URL;
  readonly #json: boolean;
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, (result: ExportResult) => void>();

  /** `workerUrl`: another worker speaking the same messages (the benchmarks' discarding one). */
  constructor(options: { json: boolean; workerUrl?: URL }) {
    this.#json = options.json;
    this.#workerUrl = options.workerUrl ?? new URL('./export-worker.ts', import.meta.url);
  }

  export(request: Uint8Array, count: number): Promise<ExportResult> {
    return new Promise((resolve) => this.#post({ type: 'export', id: 0, request, count }, resolve));
  }

  forceFlush(): Promise<void> {
    if (!this.#worker) return Promise.resolve();
    return new Promise((resolve) => this.#post({ type: 'flush', id: 0 }, () => resolve()));
  }

  async shutdown(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    await new Promise<void>((resolve) => this.#post({ type: 'shutdown', id: 0 }, () => resolve()));
    this.#worker = undefined;
    await worker.terminate();
  }

  #post(message: ToWorker, done: (result: ExportResult) => void): void {
    let worker: Worker;
    try {
      worker = this.#worker ?? this.#start();
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
      return;
    }
    const id = ++this.#nextId;
    this.#pending.set(id, done);
    // A request's bytes are moved, not copied: the pipeline made them for this export alone.
    worker.postMessage({ ...message, id }, message.type === 'export' ? [message.request.buffer as ArrayBuffer] : []);
  }

  #start(): Worker {
    const worker = new Worker(this.#workerUrl, { workerData: { json: this.#json } });
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      const done = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      done?.(message.code === ExportResultCode.SUCCESS ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: message.error as Error });
    });
    const failAll = (error: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const [id, done] of this.#pending) {
        this.#pending.delete(id);
        done({ code: ExportResultCode.FAILED, error });
      }
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`the span export worker exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }
}
