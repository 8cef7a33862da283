/**
 * The span pipeline end to end on this machine: the engine's SDK setup (telemetry/sdk.ts) exporting OTLP/HTTP
 * protobuf from its worker thread to a local HTTP endpoint, read back with the OTLP decoder. And what happens
 * when that endpoint refuses, or the worker thread dies.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportResultCode } from '@opentelemetry/core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { decodeTraceRequest, encodeResource, encodeTraceRequest, SpanEncoder, type DecodedSpan } from '../../src/telemetry/otlp-spans.ts';
import { ProtobufWriter } from '../../src/telemetry/protobuf.ts';
import { SwitchyardTracerProvider, type RecordingSpan } from '../../src/telemetry/tracer.ts';
import { startTelemetrySdk, type TelemetrySdk } from '../../src/telemetry/sdk.ts';
import { WorkerRequestExporter } from '../../src/telemetry/span-pipeline.ts';
import { eventually } from '../support/engine.ts';

interface JsonTraceBody {
  resourceSpans: Array<{ resource: { attributes: Array<{ key: string }> }; scopeSpans: Array<{ scope: { name: string; version?: string }; spans: Array<{ traceId: string; spanId: string; name: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }> }> }>;
}
const jsonBodies: JsonTraceBody[] = [];

interface TraceRequest {
  contentType: string | undefined;
  spans: DecodedSpan[];
}
const traceRequests: TraceRequest[] = [];
let refuse = false;
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.url === '/v1/traces') {
      if (refuse) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('refused');
        return;
      }
      if (req.headers['content-type'] === 'application/json') jsonBodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      else traceRequests.push({ contentType: req.headers['content-type'], spans: decodeTraceRequest(Buffer.concat(chunks)) });
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
const saved = { ...process.env };
const stateChanges: Array<{ signal: string; failing: boolean }> = [];
let sdk: TelemetrySdk;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(process.env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
    OTEL_BSP_SCHEDULE_DELAY: '50',
  });
  sdk = startTelemetrySdk({ serviceVersion: '9.9.9', instanceId: 'span-pipeline-test', onExportStateChange: (signal, failing) => stateChanges.push({ signal, failing }) });
});

afterEach(() => {
  traceRequests.length = 0;
  refuse = false;
});

afterAll(async () => {
  await sdk.shutdown();
  server.closeAllConnections();
  server.close();
  process.env = saved;
});

it('sends ended spans as OTLP protobuf with the resource and scope, after the schedule delay without a flush', async () => {
  const parent = sdk.telemetry.tracer.startSpan('parent', { attributes: { 'switchyard.workflow.id': 'quick_answer' } });
  sdk.telemetry.startSpan('taskExecute', { 'switchyard.task.id': 'answer' }).end();
  parent.end();
  await eventually(async () => traceRequests.length, (n) => n > 0, 10_000);
  const [request] = traceRequests;
  expect(request!.contentType).toBe('application/x-protobuf');
  expect(request!.spans.map((span) => span.name)).toEqual(['task.execute', 'parent']);
  const [task] = request!.spans;
  expect(task!.attributes).toEqual({ 'switchyard.task.id': 'answer' });
  expect(task!.resourceAttributes).toMatchObject({ 'service.name': 'switchyard-engine', 'service.version': '9.9.9', 'service.instance.id': 'span-pipeline-test' });
  expect(task!.instrumentationScope).toEqual({ name: 'switchyard', version: '9.9.9' });
});

it('sends every span exactly once in batches of at most 512 under a burst', async () => {
  const SPANS = 1500;
  for (let i = 0; i < SPANS; i++) sdk.telemetry.tracer.startSpan(`burst ${i}`).end();
  await sdk.forceFlush();
  const names = traceRequests.flatMap((request) => request.spans.map((span) => span.name));
  expect(names).toHaveLength(SPANS);
  expect(new Set(names).size).toBe(SPANS);
  expect(Math.max(...traceRequests.map((request) => request.spans.length))).toBeLessThanOrEqual(512);
});

it('reports a refused export once as failing, and once as recovered when exports succeed again', async () => {
  stateChanges.length = 0;
  refuse = true;
  sdk.telemetry.tracer.startSpan('refused').end();
  await sdk.forceFlush();
  expect(stateChanges).toEqual([{ signal: 'traces', failing: true }]);
  refuse = false;
  sdk.telemetry.tracer.startSpan('accepted').end();
  await sdk.forceFlush();
  expect(stateChanges).toEqual([{ signal: 'traces', failing: true }, { signal: 'traces', failing: false }]);
  expect(traceRequests.flatMap((request) => request.spans.map((span) => span.name))).toEqual(['accepted']);
});

it('fails the exports a dying worker thread held, and starts a new worker for the next export', async () => {
  const exporter = new WorkerRequestExporter({ json: false, workerUrl: new URL('../fixtures/workers/dying-export-worker.ts', import.meta.url) });
  const first = await exporter.export(new Uint8Array([1, 2, 3]), 1);
  expect(first.code).toBe(ExportResultCode.FAILED);
  expect(String(first.error)).toMatch(/exited/);
  const second = await exporter.export(new Uint8Array([1, 2, 3]), 1);
  expect(second.code).toBe(ExportResultCode.FAILED);
  await exporter.shutdown();
});

it('sends OTLP/JSON when asked (http/json): the worker reads the request back and the SDK serializes it', async () => {
  const ended: RecordingSpan[] = [];
  const tracer = new SwitchyardTracerProvider({ sink: { onEnd: (span) => ended.push(span), forceFlush: async () => {}, shutdown: async () => {} } }).getTracer('json-test', '1.0.0');
  const span = tracer.startSpan('json span', { attributes: { count: 7, label: 'x', ratio: 0.5 } });
  span.end();
  const writer = new ProtobufWriter();
  new SpanEncoder().writeSpanField(writer, ended[0]!);
  const request = encodeTraceRequest(encodeResource({ 'service.name': 'json-test' }), [{ scope: ended[0]!.scope, encodedScope: ended[0]!.scope.encoded, spans: writer.bytes() }]);
  const exporter = new WorkerRequestExporter({ json: true });
  const result = await exporter.export(request, 1);
  await exporter.shutdown();
  expect(result.code).toBe(ExportResultCode.SUCCESS);
  expect(jsonBodies).toHaveLength(1);
  const [resourceSpans] = jsonBodies[0]!.resourceSpans;
  expect(resourceSpans!.resource.attributes.map((a) => a.key)).toContain('service.name');
  const [scopeSpans] = resourceSpans!.scopeSpans;
  expect(scopeSpans!.scope).toMatchObject({ name: 'json-test', version: '1.0.0' });
  const [sent] = scopeSpans!.spans;
  expect(sent).toMatchObject({ name: 'json span', traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
  const attributes = Object.fromEntries(sent!.attributes.map((a) => [a.key, a.value]));
  expect(attributes).toEqual({ count: { intValue: 7 }, label: { stringValue: 'x' }, ratio: { doubleValue: 0.5 } });
});
