/**
 * Span export off the event loop. The OTLP encoding of spans was the largest single telemetry cost of a
 * request (BENCHMARKS.md, 2026-12-03: @opentelemetry/otlp-transformer, the biggest telemetry package in the
 * engine's CPU profile). `WorkerSpanExporter` is the SpanExporter the batch span processor calls: it copies each
 * batch into plain data (the fields the OTLP serializers read; the resource and scope once per batch) and posts
 * it to a worker thread (./export-worker.ts) that encodes and sends it with the SDK's own OTLP exporter. The
 * export's result comes back to the processor's callback as before, so its self-observability metrics and
 * the engine's failure reporting are unchanged.
 *
 * A worker that dies fails the exports it held (counted as failed exports, never hung) and is started anew
 * at the next export.
 */
import { Worker } from 'node:worker_threads';
import type { Attributes, HrTime, Link, SpanKind, SpanStatus } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';

/** A span as posted to the worker: plain data, cloned by postMessage. */
export interface SpanData {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState: string | undefined;
  readonly parentSpanContext: { readonly spanId: string; readonly isRemote: boolean | undefined } | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly attributes: Attributes;
  readonly droppedAttributesCount: number;
  readonly events: TimedEvent[];
  readonly droppedEventsCount: number;
  readonly links: Array<Omit<Link, 'context'> & { context: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean; traceState: string | undefined } }>;
  readonly droppedLinksCount: number;
  readonly status: SpanStatus;
  readonly instrumentationScope: { name: string; version?: string; schemaUrl?: string };
}

/** What the OTLP serializers read of a ReadableSpan, rebuilt from the posted data (in the worker). */
export function rebuildSpan(data: SpanData, resource: { attributes: Record<string, unknown> }): ReadableSpan {
  const context = { traceId: data.traceId, spanId: data.spanId, traceFlags: data.traceFlags, traceState: traceStateOf(data.traceState) };
  return {
    ...data,
    resource,
    links: data.links.map((link) => ({ ...link, context: { ...link.context, traceState: traceStateOf(link.context.traceState) } })),
    spanContext: () => context,
  } as unknown as ReadableSpan;
}
const traceStateOf = (serialized: string | undefined) => (serialized === undefined ? undefined : { serialize: () => serialized });

export type ToWorker =
  | { type: 'export'; id: number; resource: { attributes: Record<string, unknown> }; spans: SpanData[] }
  | { type: 'flush' | 'shutdown'; id: number };
interface FromWorker { type: 'done'; id: number; code: number; error?: unknown }

function toData(span: ReadableSpan): SpanData {
  const context = span.spanContext();
  const parent = span.parentSpanContext;
  return {
    name: span.name, kind: span.kind,
    traceId: context.traceId, spanId: context.spanId, traceFlags: context.traceFlags, traceState: context.traceState?.serialize(),
    parentSpanContext: parent ? { spanId: parent.spanId, isRemote: parent.isRemote } : undefined,
    startTime: span.startTime, endTime: span.endTime,
    attributes: span.attributes, droppedAttributesCount: span.droppedAttributesCount,
    events: span.events, droppedEventsCount: span.droppedEventsCount,
    links: span.links.length === 0 ? [] : span.links.map((link) => ({
      ...link, context: { traceId: link.context.traceId, spanId: link.context.spanId, traceFlags: link.context.traceFlags, isRemote: link.context.isRemote, traceState: link.context.traceState?.serialize() },
    })),
    droppedLinksCount: span.droppedLinksCount, status: span.status,
    // The tracer's own object: the same reference for every span of a scope, cloned once per batch.
    instrumentationScope: span.instrumentationScope,
  };
}

export class WorkerSpanExporter implements SpanExporter {
  readonly #json: boolean;
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, (result: ExportResult) => void>();
  /** Resource attributes as posted, per resource object (one in practice). */
  readonly #resources = new WeakMap<object, { attributes: Record<string, unknown> }>();

  readonly #workerUrl: URL;

  /** `workerUrl`: another worker speaking the same messages (the benchmarks' encode-and-discard one). */
  constructor(options: { json: boolean; workerUrl?: URL }) {
    this.#json = options.json;
    this.#workerUrl = options.workerUrl ?? new URL('./export-worker.ts', import.meta.url);
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      const first = spans[0];
      if (!first) return done({ code: ExportResultCode.SUCCESS });
      let resource = this.#resources.get(first.resource);
      if (!resource) {
        resource = { attributes: { ...first.resource.attributes } };
        this.#resources.set(first.resource, resource);
      }
      this.#post({ type: 'export', id: 0, resource, spans: spans.map(toData) }, done);
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
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
    const worker = this.#worker ?? this.#start();
    const id = ++this.#nextId;
    this.#pending.set(id, done);
    worker.postMessage({ ...message, id });
  }

  #start(): Worker {
    const worker = new Worker(this.#workerUrl, { workerData: { json: this.#json } });
    // The batch processor's timer is what exports; an idle worker must not keep the process alive.
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
