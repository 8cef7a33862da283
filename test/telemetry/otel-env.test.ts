/**
 * The standard OTEL_* variables have the effect NodeSDK gives them, observed on what a real engine process
 * (`node --import ./src/telemetry/register.ts src/main.ts`) exports or sends: each engine exports to its own
 * local OTLP/HTTP receiver (a fake Collector: a server in this test that records every request; the real
 * Collector is in the stack tests), and calls a local fake model server (an OpenAI-compatible endpoint in
 * this test, recording the headers it is sent; no real model can run here). One engine process per group of
 * variable families, to keep the suite light; gRPC goes to a plain HTTP/2 server that records the call. BSP
 * settings: test/telemetry/sdk-self-metrics.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/engine.ts';
import { startEngineProcess, type EngineProcess } from '../support/engine-process.ts';

interface Received { path: string; headers: IncomingHttpHeaders; body: Buffer }

/** An HTTP server on a free loopback port that records each request and answers with `answer`. */
async function recorder(answer: (req: Received) => { status: number; type: string; body: string }): Promise<{ url: string; requests: Received[]; server: Server }> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(received);
      const { status, type, body } = answer(received);
      res.writeHead(status, { 'content-type': type }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const otlpReceiver = () => recorder((req) => (req.headers['content-type']?.includes('json')
  ? { status: 200, type: 'application/json', body: '{}' }
  : { status: 200, type: 'application/x-protobuf', body: '' }));

// An OpenAI-compatible chat completion: a final answer on the first turn.
const modelServer = () => recorder(() => ({
  status: 200, type: 'application/json',
  body: JSON.stringify({ id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } }),
}));

interface JsonSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; events?: { name: string }[]; attributes: JsonAttribute[] }
interface JsonAttribute { key: string; value: Record<string, unknown> }
interface JsonTraces { resourceSpans: { resource: { attributes: JsonAttribute[] }; scopeSpans: { scope: { name: string }; spans: JsonSpan[] }[] }[] }

const tracesOf = (requests: Received[]): JsonTraces[] => requests.filter((r) => r.path === '/v1/traces').map((r) => JSON.parse(r.body.toString()) as JsonTraces);
const spansOf = (requests: Received[]) => tracesOf(requests).flatMap((t) => t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => ({ ...span, scope: s.scope.name })))));
const attributes = (list: JsonAttribute[]) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

const dir = mkdtempSync(join(tmpdir(), 'switchyard-otel-env-'));
const engines: EngineProcess[] = [];
const servers: Server[] = [];
const grpcServers: Http2Server[] = [];
afterAll(async () => {
  await Promise.all(engines.map((engine) => engine.kill()));
  for (const server of grpcServers) server.close();
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A project with one agent whose model is the fake model server. */
function projectWithModel(name: string, modelUrl: string): string {
  const project = join(dir, name);
  mkdirSync(join(project, 'agents'), { recursive: true });
  writeFileSync(join(project, 'agents', 'remote.yaml'),
    `id: remote\ndescription: An agent whose model is the test's fake server.\ninstructions: answer\nmodel: { provider: openai-compatible, base_url: "${modelUrl}/v1", name: fake-1 }\ntools: []\nmax_iterations: 2\n`);
  return project;
}

async function start(name: string, env: Record<string, string>): Promise<EngineProcess> {
  const engine = await startEngineProcess({ SWITCHYARD_DB: join(dir, `${name}.db`), SWITCHYARD_API_KEYS: '', SWITCHYARD_API_KEYS_FILE: '', OTEL_BSP_SCHEDULE_DELAY: '100', ...env });
  engines.push(engine);
  return engine;
}

async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

describe('http/json, headers, propagators, resource, span limits, metric interval and temporality', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let model: Awaited<ReturnType<typeof modelServer>>;
  let engine: EngineProcess;
  let run: { id: string; trace_id: string; status: string };
  beforeAll(async () => {
    [receiver, model] = await Promise.all([otlpReceiver(), modelServer()]);
    servers.push(receiver.server, model.server);
    engine = await start('json', {
      SWITCHYARD_PROJECT_DIR: projectWithModel('json-project', model.url),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme,x-api-key=k-123',
      OTEL_PROPAGATORS: 'tracecontext,baggage,b3',
      OTEL_RESOURCE_ATTRIBUTES: 'team=blue',
      OTEL_SPAN_EVENT_COUNT_LIMIT: '1',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta',
      OTEL_BLRP_SCHEDULE_DELAY: '100',
    });
    run = (await post(engine.url, '/api/v1/agents/remote/executions/sync', { input: { question: 'hello?' } })).body;
    await eventually(async () => spansOf(receiver.requests).filter((s) => s.traceId === run.trace_id), (spans) => spans.some((s) => s.name === 'agent.execute_sync') && spans.some((s) => s.kind === 3), 20_000);
  }, 60_000);

  it('the run succeeded against the fake model', () => {
    expect(run).toMatchObject({ status: 'success' });
    expect(model.requests).toHaveLength(1);
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=http/json and OTEL_EXPORTER_OTLP_HEADERS: every export is JSON and carries the headers', async () => {
    // Log records (pino's, through NodeSDK's logs signal) too.
    const exports = await eventually(async () => receiver.requests.filter((r) => r.path.startsWith('/v1/')), (found) => new Set(found.map((r) => r.path)).size === 3, 20_000);
    expect(new Set(exports.map((r) => r.path))).toEqual(new Set(['/v1/traces', '/v1/metrics', '/v1/logs']));
    for (const request of exports) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers).toMatchObject({ 'x-tenant': 'acme', 'x-api-key': 'k-123' });
    }
  });

  it('the model call is a CLIENT span of the run\'s trace, and its request carries the run\'s context in every OTEL_PROPAGATORS format', () => {
    const spans = spansOf(receiver.requests).filter((s) => s.traceId === run.trace_id);
    const client = spans.find((s) => s.kind === 3)!;
    expect(client.scope).toBe('@opentelemetry/instrumentation-undici');
    expect(attributes(client.attributes)).toMatchObject({ 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'http.response.status_code': 200 });
    // Below the engine's model call span.
    const modelCall = spans.find((s) => s.name === 'agent.model_call')!;
    expect(client.parentSpanId).toBe(modelCall.spanId);
    const sent = model.requests[0]!.headers;
    expect(sent['traceparent']).toBe(`00-${run.trace_id}-${client.spanId}-01`);
    expect(sent['b3']).toBe(`${run.trace_id}-${client.spanId}-1`);
  });

  it('resource detectors (NodeSDK\'s defaults) and OTEL_RESOURCE_ATTRIBUTES: host, process and OS attributes, the user\'s beside the engine\'s', () => {
    const resource = attributes(tracesOf(receiver.requests)[0]!.resourceSpans[0]!.resource.attributes);
    expect(resource).toMatchObject({ 'service.name': 'switchyard-engine', 'service.namespace': 'switchyard', team: 'blue', 'process.pid': engine.child.pid });
    expect(Object.keys(resource)).toEqual(expect.arrayContaining(['host.name', 'host.arch', 'os.type', 'process.runtime.name', 'service.instance.id']));
  });

  it('OTEL_SPAN_EVENT_COUNT_LIMIT: no span carries more events than the limit', () => {
    const spans = spansOf(receiver.requests);
    expect(spans.length).toBeGreaterThan(3);
    for (const span of spans) expect((span.events ?? []).length, span.name).toBeLessThanOrEqual(1);
  });

  it('OTEL_METRIC_EXPORT_INTERVAL and OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta: several exports, counters as deltas', async () => {
    const metricExports = await eventually(async () => receiver.requests.filter((r) => r.path === '/v1/metrics'), (found) => found.length >= 3, 20_000);
    expect(metricExports.length).toBeGreaterThanOrEqual(3);
    const sums = metricExports.flatMap((r) => (JSON.parse(r.body.toString()) as { resourceMetrics: { scopeMetrics: { metrics: { name: string; sum?: { aggregationTemporality: number; isMonotonic?: boolean } }[] }[] }[] })
      .resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics))).filter((m) => m.sum?.isMonotonic);
    expect(sums.map((m) => m.name)).toContain('workflow.executions.started');
    // 1 = AGGREGATION_TEMPORALITY_DELTA: every counter, the engine's and the SDK's alike (no mixed export).
    // (Up-down counters stay cumulative under the delta preference, as the specification says.)
    expect(new Set(sums.map((m) => m.sum!.aggregationTemporality))).toEqual(new Set([1]));
  });
});

describe('http/protobuf (the default), a signal\'s own endpoint, console and none exporters', () => {
  it('traces go as protobuf to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_METRICS_EXPORTER=console prints instead of sending; OTEL_LOGS_EXPORTER=none sends nothing', async () => {
    const receiver = await otlpReceiver();
    servers.push(receiver.server);
    const engine = await start('protobuf', {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
      OTEL_METRICS_EXPORTER: 'console', OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_LOGS_EXPORTER: 'none',
    });
    const { body } = await post(engine.url, '/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'Do you have an API?' } });
    expect(body.status).toBe('success');
    const traceBytes = Buffer.from(body.trace_id as string, 'hex');
    const exported = await eventually(async () => receiver.requests.filter((r) => r.body.includes(traceBytes)), (found) => found.length > 0, 20_000);
    expect(exported.map((r) => [r.path, r.headers['content-type']])).toContainEqual(['/custom/traces', 'application/x-protobuf']);
    // The SDK's console metric exporter writes each metric's descriptor to stdout.
    await eventually(async () => engine.output(), (out) => out.includes("name: 'workflow.executions.started'") || out.includes('workflow.executions.started'), 20_000);
    expect(engine.output()).toContain('descriptor');
    expect(receiver.requests.filter((r) => r.path !== '/custom/traces').map((r) => r.path)).toEqual([]);

    // pino's instrumentation: a log line written inside a run's span carries its trace and span ids.
    const failed = await post(engine.url, '/api/v1/workflows/support_triage/executions/sync', { input: { email: 'ada@analytical.example', subject: 's', body: 'b', fault: 'fail' } });
    expect(failed.body.status).toBe('failed');
    const line = await eventually(async () => engine.logs().find((l) => l['execution_id'] === failed.body.id && l['level'] === 'warn'), (l) => l !== undefined, 10_000);
    expect(line).toMatchObject({ trace_id: failed.body.trace_id, span_id: expect.stringMatching(/^[0-9a-f]{16}$/) });
  }, 60_000);
});

/** A plaintext HTTP/2 server that records the gRPC calls it gets (path, content type); answers each with an empty OK. */
async function grpcRecorder(): Promise<{ url: string; calls: { path: string; type: string }[]; server: Http2Server }> {
  const calls: { path: string; type: string }[] = [];
  const server = createHttp2Server();
  server.on('stream', (stream, headers) => {
    calls.push({ path: String(headers[':path']), type: String(headers['content-type']) });
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, server };
}

describe('samplers and untrusted trace context (OTEL_TRACES_SAMPLER, the trust_trace_context key option), exporters none, grpc', () => {
  it('parentbased_traceidratio=0 samples no new trace; an untrusted caller\'s sampled=0 is overridden, a trusted caller\'s is honoured; a 401 is not traced', async () => {
    const receiver = await otlpReceiver();
    const grpc = await grpcRecorder();
    servers.push(receiver.server);
    grpcServers.push(grpc.server);
    const plainKey = 'plain-key-0123456789abcdef';
    const trustedKey = 'trusted-key-0123456789abcdef';
    const engine = await start('sampling', {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0',
      OTEL_METRICS_EXPORTER: 'none',
      // Logs over gRPC to their own endpoint (the server in this test records the call; it is not a Collector).
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: grpc.url, OTEL_BLRP_SCHEDULE_DELAY: '100',
      SWITCHYARD_API_KEYS: `plain ${plainKey}\ntrusted ${trustedKey} trust_trace_context`,
    });
    const path = '/api/v1/workflows/quick_answer/executions/sync';
    const input = { input: { question: 'Do you have an API?' } };
    const traceparent = (trace: string, flags: string) => `00-${trace}-00f067aa0ba902b7-${flags}`;
    const trace = (n: number) => String(n).repeat(32).slice(0, 32);
    const as = (key: string, context?: string) => ({ authorization: `Bearer ${key}`, ...(context ? { traceparent: context } : {}) });

    const unsampled = await post(engine.url, path, input, as(plainKey));
    expect(unsampled.body.status).toBe('success');
    expect((await post(engine.url, path, input, as(plainKey, traceparent(trace(1), '00')))).body.status).toBe('success');
    expect((await post(engine.url, path, input, as(trustedKey, traceparent(trace(2), '00')))).body.status).toBe('success');
    expect((await post(engine.url, path, input, as('wrong-key-0123456789abcdef', traceparent(trace(4), '01')))).status).toBe(401);
    expect((await post(engine.url, path, input, as(trustedKey, traceparent(trace(3), '01')))).body.status).toBe('success');

    // The last request's spans mark the end: the processor exports in order.
    await eventually(async () => spansOf(receiver.requests).filter((s) => s.traceId === trace(3)), (spans) => spans.some((s) => s.name === 'workflow.execute'), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const traces = new Set(spansOf(receiver.requests).map((s) => s.traceId));
    expect(traces.has(trace(1)), 'an untrusted sampled=0 does not silence the run').toBe(true);
    expect(traces.has(trace(2)), 'a trusted sampled=0 does').toBe(false);
    expect(traces.has(trace(4)), 'a request refused with 401 makes no span').toBe(false);
    expect(traces.has(unsampled.body.trace_id), 'the ratio sampler samples no new trace').toBe(false);
    expect([...traces].sort()).toEqual([trace(1), trace(3)].sort());
    // The untrusted caller still named the trace and the parent.
    const server = spansOf(receiver.requests).find((s) => s.traceId === trace(1) && s.kind === 2)!;
    expect(server.parentSpanId).toBe('00f067aa0ba902b7');
    expect(receiver.requests.filter((r) => r.path !== '/v1/traces').map((r) => r.path), 'metrics exporter none, logs elsewhere').toEqual([]);
    // OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=grpc: the log records went as a gRPC call of the OTLP logs service.
    await eventually(async () => grpc.calls, (calls) => calls.length > 0, 20_000);
    expect(grpc.calls[0]).toEqual({ path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', type: 'application/grpc' });
  }, 60_000);
});
