/**
 * The span pipeline's worker thread: sends the encoded ExportTraceServiceRequests it is posted
 * (telemetry/span-pipeline.ts) with the SDK's OTLP/HTTP transport, off the engine's event loop. The
 * transport reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout, compression)
 * and retries as the SDK's exporters do. With OTEL_EXPORTER_OTLP_PROTOCOL=http/json the request is read
 * back and serialized as OTLP/JSON by the SDK's own serializer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ExportResult } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { JsonTraceSerializer, ProtobufTraceSerializer, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { decodeTraceRequest, toReadableSpan } from './otlp-spans.ts';
import type { ToWorker } from './span-pipeline.ts';

interface EncodedRequest {
  readonly request: Uint8Array;
  readonly count: number;
}

const { json } = workerData as { json: boolean };
const serializer: ISerializer<EncodedRequest, unknown> = json
  ? {
    serializeRequest: ({ request }) => JsonTraceSerializer.serializeRequest(decodeTraceRequest(request).map(toReadableSpan) as ReadableSpan[]),
    deserializeResponse: (data) => JsonTraceSerializer.deserializeResponse(data),
  }
  : { serializeRequest: ({ request }) => request, deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data) };
const exporter = createOtlpHttpExportDelegate(
  convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' }),
  serializer, 'otlp_http_span_exporter', { name: 'span', countItems: ({ count }) => count }, undefined,
);
const port = parentPort!;

port.on('message', (message: ToWorker) => {
  if (message.type === 'export') {
    exporter.export({ request: message.request, count: message.count }, (result: ExportResult) => port.postMessage({ type: 'done', id: message.id, code: result.code, error: result.error }));
  } else {
    const work = message.type === 'flush' ? exporter.forceFlush() : exporter.shutdown();
    work.then(() => port.postMessage({ type: 'done', id: message.id, code: 0 }), (error: unknown) => port.postMessage({ type: 'done', id: message.id, code: 1, error }));
  }
});
