/**
 * The HTTP server's telemetry reaches the exporter: the engine run as users run it (`node --import
 * ./src/telemetry/register.ts src/main.ts`), exporting OTLP/HTTP JSON to a local endpoint. The http
 * auto-instrumentation (stable semantic conventions, the engine's default OTEL_SEMCONV_STABILITY_OPT_IN=http)
 * makes http.server.request.duration, with the catalogue's buckets (its view) and the route template the app
 * names, and one SERVER span per request, the root of the request's trace (or the child of an incoming W3C
 * traceparent), with the engine's spans below it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HTTP_SERVER_DURATION_BUCKETS, METRICS } from '../../src/telemetry/catalog.ts';
import { eventually } from '../support/engine.ts';
import { ENGINE_ARGS } from '../support/engine-process.ts';

interface OtlpMetric {
  name: string;
  unit?: string;
  histogram?: { dataPoints: { attributes: { key: string; value: Record<string, unknown> }[]; count: string | number; explicitBounds?: number[] }[] };
}
interface OtlpScope { scope: { name: string }; metrics: OtlpMetric[] }

interface OtlpSpan {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}
const exports: { resourceMetrics: { scopeMetrics: OtlpScope[] }[] }[] = [];
const spans: OtlpSpan[] = [];
const collector = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    if (req.url === '/v1/metrics') exports.push(JSON.parse(body));
    if (req.url === '/v1/traces') {
      for (const resource of JSON.parse(body).resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
const dir = mkdtempSync(join(tmpdir(), 'switchyard-http-metric-'));
let engine: ChildProcess;
let url: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  engine = spawn(process.execPath, [...ENGINE_ARGS], {
    env: {
      ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'engine.db'), SWITCHYARD_API_KEYS: '', SWITCHYARD_API_KEYS_FILE: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '500', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_SDK_DISABLED: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  engine.stdout!.on('data', (chunk: Buffer) => (out += chunk));
  const ready = await eventually(async () => /"url":"(http:[^"]+)"/.exec(out)?.[1], (found) => found !== undefined || engine.exitCode !== null, 20_000);
  if (!ready) throw new Error(`engine did not start:\n${out}`);
  url = ready;
}, 30_000);

afterAll(async () => {
  engine?.kill('SIGKILL');
  collector.closeAllConnections();
  await new Promise((resolve) => collector.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function httpServerDuration(): { scope: string; metric: OtlpMetric } | undefined {
  for (const body of [...exports].reverse()) {
    for (const scope of body.resourceMetrics.flatMap((r) => r.scopeMetrics)) {
      const metric = scope.metrics.find((m) => m.name === METRICS.httpServerRequestDuration.otelName);
      if (metric) return { scope: scope.scope.name, metric };
    }
  }
  return undefined;
}

it('every API request is measured in http.server.request.duration: seconds, the conventions\' buckets and attributes, the route template', async () => {
  const post = (path: string) => fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { question: 'Do you have an API?' } }) });
  expect((await post('/api/v1/workflows/quick_answer/executions/sync')).status).toBe(200);
  expect((await post('/api/v1/workflows/nope/executions/sync')).status).toBe(404);
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  const found = await eventually(async () => httpServerDuration(), (f) => (f?.metric.histogram?.dataPoints.length ?? 0) >= 2, 10_000);
  expect(found, 'http.server.request.duration exported').toBeDefined();
  expect(found!.scope, 'made by the http auto-instrumentation').toBe('@opentelemetry/instrumentation-http');
  expect(found!.metric.unit).toBe(METRICS.httpServerRequestDuration.unit);
  const points = found!.metric.histogram!.dataPoints.map((p) => ({
    attributes: Object.fromEntries(p.attributes.map((a) => [a.key, Object.values(a.value)[0]])), bounds: p.explicitBounds,
  }));
  expect(points.map((p) => p.attributes).sort((a, b) => String(a['http.response.status_code']).localeCompare(String(b['http.response.status_code'])))).toEqual([
    { 'http.request.method': 'POST', 'url.scheme': 'http', 'network.protocol.version': '1.1', 'http.route': '/api/v1/workflows/:id/executions/sync', 'http.response.status_code': 200 },
    { 'http.request.method': 'POST', 'url.scheme': 'http', 'network.protocol.version': '1.1', 'http.route': '/api/v1/workflows/:id/executions/sync', 'http.response.status_code': 404 },
  ]);
  for (const point of points) expect(point.bounds).toEqual([...HTTP_SERVER_DURATION_BUCKETS]);
  // Every attribute is one the catalogue declares for it (Prometheus shows them with underscores).
  const declared: string[] = Object.values(METRICS.httpServerRequestDuration.attributes).map((a) => a.name);
  for (const point of points) expect(Object.keys(point.attributes).filter((key) => !declared.includes(key))).toEqual([]);
}, 30_000);

it('the engine\'s own OTLP exports are not measured as HTTP client requests (the exporters suppress their own tracing)', () => {
  const names = exports.flatMap((body) => body.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name))));
  expect(names).not.toContain('http.client.request.duration');
  expect(names).toContain('http.server.request.duration');
});

const attributesOf = (span: OtlpSpan) => Object.fromEntries(span.attributes.map((a) => [a.key, Object.values(a.value)[0]]));

it('each API request is one SERVER span, the root of its trace, with the engine\'s spans below it', async () => {
  const response = await fetch(`${url}/api/v1/workflows/quick_answer/executions/sync`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { question: 'Do you have an API?' } }),
  });
  const { trace_id: traceId } = await response.json() as { trace_id: string };
  const found = await eventually(async () => spans.filter((s) => s.traceId === traceId), (t) => t.some((s) => s.name === 'workflow.execute_sync') && t.some((s) => s.kind === 2), 10_000);
  const servers = found.filter((s) => s.kind === 2);
  expect(servers, 'one SERVER span').toHaveLength(1);
  const [server] = servers;
  expect(server!.name).toBe('POST /api/v1/workflows/:id/executions/sync');
  expect(server!.parentSpanId ?? '', 'the root of the trace').toBe('');
  expect(attributesOf(server!)).toMatchObject({
    'http.request.method': 'POST', 'url.path': '/api/v1/workflows/quick_answer/executions/sync', 'url.scheme': 'http', 'network.protocol.version': '1.1',
    'http.route': '/api/v1/workflows/:id/executions/sync', 'http.response.status_code': 200,
  });
  // Every attribute is the semantic conventions' (the instrumentation's own, such as user_agent.original, too).
  for (const key of Object.keys(attributesOf(server!))) expect(key).toMatch(/^(http|url|network|server|client|user_agent)\./);
  // Directly below it (the body was parsed in between: the handler still runs in the request's context).
  expect(found.find((s) => s.name === 'workflow.execute_sync')!.parentSpanId).toBe(server!.spanId);
  expect(found.every((s) => s.traceId === traceId)).toBe(true);
  // The health probes make no span.
  await fetch(`${url}/healthz`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(spans.filter((s) => attributesOf(s)['url.path'] === '/healthz')).toEqual([]);
}, 30_000);

it('an incoming W3C traceparent makes the request\'s span a child of the caller\'s', async () => {
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const response = await fetch(`${url}/api/v1/workflows/nope/executions/sync`, {
    method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${callerTrace}-${callerSpan}-01` }, body: '{}',
  });
  expect(response.status).toBe(404);
  const [server] = await eventually(async () => spans.filter((s) => s.traceId === callerTrace && s.kind === 2), (t) => t.length > 0, 10_000);
  expect(server!.parentSpanId).toBe(callerSpan);
  expect(attributesOf(server!)['http.response.status_code']).toBe(404);
}, 30_000);
