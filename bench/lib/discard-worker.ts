/**
 * The export worker of the benchmarks: takes the encoded requests the span pipeline posts
 * (src/telemetry/span-pipeline.ts) and answers success without sending them. The encoding itself happened
 * on the main thread, as in the engine; the real worker (src/telemetry/export-worker.ts) adds an HTTP send.
 */
import { parentPort } from 'node:worker_threads';
import type { ToWorker } from '../../src/telemetry/span-pipeline.ts';

const port = parentPort!;
port.on('message', (message: ToWorker) => port.postMessage({ type: 'done', id: message.id, code: 0 }));
