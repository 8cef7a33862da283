/**
 * The SDK's own span-processor metrics (otel.sdk.processor.span.* in the catalogue), through the engine's
 * real SDK setup (telemetry/sdk.ts: NodeSDK, with the engine's default OTEL_NODE_EXPERIMENTAL_SDK_METRICS=true)
 * exporting OTLP/HTTP JSON to a local endpoint: when the Collector stops answering, the span queue stays at
 * its capacity and every span beyond it is counted as dropped. The queue and batch sizes come from
 * OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BSP_MAX_EXPORT_BATCH_SIZE, so this also shows NodeSDK honours them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { METRICS, SDK_METRIC_KEYS } from '../../src/telemetry/catalog.ts';
import { eventually } from '../support/engine.ts';
import { startTelemetrySdk, type TelemetrySdk } from '../../src/telemetry/sdk.ts';

const SPAN_QUEUE_CAPACITY = 64;
const SPAN_EXPORT_BATCH = 16;

interface OtlpPoint {
  attributes: { key: string; value: { stringValue?: string } }[];
  asInt?: number | string;
  asDouble?: number;
}

const metricBodies: unknown[] = [];
const stuckTraceRequests: ServerResponse[] = [];
// A Collector that takes metrics but never answers a trace export: the span processor's one export in
// flight hangs, so its queue fills.
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    if (req.url === '/v1/traces') {
      stuckTraceRequests.push(res);
      return;
    }
    metricBodies.push(JSON.parse(body));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
const saved = { ...process.env };
let sdk: TelemetrySdk;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(process.env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_TIMEOUT: '60000',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
    OTEL_BSP_MAX_QUEUE_SIZE: String(SPAN_QUEUE_CAPACITY),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(SPAN_EXPORT_BATCH),
    // Nothing to instrument in this test; the logs signal is not under test.
    OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'undici',
    OTEL_LOGS_EXPORTER: 'none',
  });
  sdk = await startTelemetrySdk({ serviceVersion: 'test', instanceId: 'sdk-self-metrics' });
});

afterAll(async () => {
  for (const res of stuckTraceRequests) res.destroy();
  server.closeAllConnections();
  server.close();
  // The span exporter retries its stuck batches until its timeout; the test does not wait for that.
  await Promise.race([sdk.shutdown(), new Promise((resolve) => setTimeout(resolve, 500))]);
  process.env = saved;
});

/** Points of one metric (by its OTel name) in the newest metrics export. */
function exportedPoints(otelName: string): { attributes: Record<string, string>; value: number }[] {
  const latest = metricBodies.at(-1) as { resourceMetrics: { scopeMetrics: { metrics: { name: string; sum?: { dataPoints: OtlpPoint[] } }[] }[] }[] };
  const metrics = latest.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)).filter((m) => m.name === otelName);
  return metrics.flatMap((m) => m.sum?.dataPoints ?? []).map((p) => ({
    attributes: Object.fromEntries(p.attributes.map((a) => [a.key, a.value.stringValue ?? ''])),
    value: Number(p.asInt ?? p.asDouble),
  }));
}

it('counts the spans a full queue drops, and shows the queue at its capacity', async () => {
  const OVERFLOW = 44;
  const ENDED = SPAN_EXPORT_BATCH + SPAN_QUEUE_CAPACITY + OVERFLOW;
  for (let i = 0; i < ENDED; i++) sdk.telemetry.tracer.startSpan(`span ${i}`).end();
  // The first full batch went out at once (and hangs); the queue took the next ones up to its capacity; the
  // rest were dropped.
  await eventually(async () => stuckTraceRequests.length, (n) => n > 0, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(stuckTraceRequests).toHaveLength(1);
  // Flush the metrics only: a span flush would empty the queue into more (hanging) exports.
  await (metrics.getMeterProvider() as MeterProvider).forceFlush();
  expect(metricBodies.length).toBeGreaterThan(0);

  for (const key of SDK_METRIC_KEYS) expect(exportedPoints(METRICS[key].otelName), `${key} exported`).not.toEqual([]);
  const dropped = exportedPoints(METRICS.spanProcessorSpansProcessed.otelName).filter((p) => p.attributes['error.type'] === 'queue_full');
  expect(dropped).toHaveLength(1);
  expect(dropped[0]!.value).toBe(OVERFLOW);
  expect(dropped[0]!.attributes).toMatchObject({ 'otel.component.type': 'batching_span_processor' });
  expect(dropped[0]!.attributes['otel.component.name']).toMatch(/^batching_span_processor\/\d+$/);

  expect(exportedPoints(METRICS.spanProcessorQueueSize.otelName).map((p) => p.value)).toEqual([SPAN_QUEUE_CAPACITY]);
  expect(exportedPoints(METRICS.spanProcessorQueueCapacity.otelName).map((p) => p.value)).toEqual([SPAN_QUEUE_CAPACITY]);
});
