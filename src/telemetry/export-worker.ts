/**
 * The span exporter's worker thread: OTLP encoding (protobuf, or JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json)
 * and the HTTP export, off the engine's event loop. The engine's side (`WorkerSpanExporter` in ./span-export.ts)
 * posts each batch as plain data (`SpanData`); this thread rebuilds what the OTLP exporter reads from a span,
 * exports it with the SDK's own exporter, and answers with the export's result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OTLPTraceExporter as OTLPTraceExporterJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPTraceExporterProto } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ExportResult } from '@opentelemetry/core';
import { rebuildSpan, type ToWorker } from './span-export.ts';

const { json } = workerData as { json: boolean };
const exporter = json ? new OTLPTraceExporterJson() : new OTLPTraceExporterProto();
const port = parentPort!;

port.on('message', (message: ToWorker) => {
  if (message.type === 'export') {
    const spans = message.spans.map((span) => rebuildSpan(span, message.resource));
    exporter.export(spans, (result: ExportResult) => port.postMessage({ type: 'done', id: message.id, code: result.code, error: result.error }));
  } else {
    const work = message.type === 'flush' ? exporter.forceFlush() : exporter.shutdown();
    work.then(() => port.postMessage({ type: 'done', id: message.id, code: 0 }), (error: unknown) => port.postMessage({ type: 'done', id: message.id, code: 1, error }));
  }
});
