/**
 * http.server.request.duration reaches the exporter: the engine run as users run it (`node --import
 * ./src/telemetry/instrumentation.ts src/main.ts`), exporting OTLP/HTTP JSON to a local endpoint. The HTTP
 * instrumentation is registered before the SDK starts; without the SDK handing it the meter provider it
 * recorded into a no-op meter, and this metric never left the process.
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

interface OtlpMetric {
  name: string;
  unit?: string;
  histogram?: { dataPoints: { attributes: { key: string; value: Record<string, unknown> }[]; count: string | number; explicitBounds?: number[] }[] };
}
interface OtlpScope { scope: { name: string }; metrics: OtlpMetric[] }

const exports: { resourceMetrics: { scopeMetrics: OtlpScope[] }[] }[] = [];
const collector = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    if (req.url === '/v1/metrics') exports.push(JSON.parse(body));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
const dir = mkdtempSync(join(tmpdir(), 'switchyard-http-metric-'));
let engine: ChildProcess;
let url: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  engine = spawn(process.execPath, ['--import', './src/telemetry/instrumentation.ts', 'src/main.ts'], {
    env: {
      ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'engine.db'), SWITCHYARD_API_KEYS: '', SWITCHYARD_API_KEYS_FILE: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '500', OTEL_SDK_DISABLED: 'false',
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
  expect(found!.scope).toBe('@opentelemetry/instrumentation-http');
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

it('the engine\'s own OTLP exports are not measured as HTTP client requests (outgoing instrumentation off)', () => {
  const names = exports.flatMap((body) => body.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name))));
  expect(names).not.toContain('http.client.request.duration');
  expect(names).toContain('http.server.request.duration');
});
