/**
 * The benchmarks' span export worker: the engine's (src/telemetry/export-worker.ts) with the sending left out.
 * It rebuilds each posted batch and encodes it to OTLP protobuf exactly as the exporter would, then drops
 * the bytes, so a benchmark counts the encoding without a network or a receiver.
 */
import { parentPort } from 'node:worker_threads';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { rebuildSpan, type ToWorker } from '../../src/telemetry/span-export.ts';

const port = parentPort!;
port.on('message', (message: ToWorker) => {
  if (message.type === 'export') ProtobufTraceSerializer.serializeRequest(message.spans.map((span) => rebuildSpan(span, message.resource)));
  port.postMessage({ type: 'done', id: message.id, code: 0 });
});
