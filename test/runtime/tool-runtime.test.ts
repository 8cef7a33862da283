import { createServer, type IncomingMessage } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ToolRuntime, classifyToolRun, type ToolCall, type ToolResult, type ToolRunFacts } from '../../src/engine/runtime/tool-runtime.ts';
import { createTestTelemetry, type TestTelemetry } from '../support/telemetry.ts';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { fixtureTool, leftAfterKill, loadExampleTool, processAlive, processGroupMembers } from './tools.ts';

const TIMEOUT_MS = 400;
const GRACE_MS = 300;
/** For faults that must be in place before the timeout hits (a handler installed, children spawned): generous, since CI machines are loaded. */
const SETTLED_TIMEOUT_MS = 2000;

let t: TestTelemetry;
let runtime: ToolRuntime;
let unconfined: ToolRuntime;
let tmp: string;
let seq = 0;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'switchyard-runtime-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeEach(() => {
  t = createTestTelemetry();
  runtime = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: GRACE_MS, baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME }, toolFaults: true });
  // spawn_children forks Bun children, which cannot start in the sandbox (README, Tool processes): the tests about
  // killing a tool's children run it unconfined. test/runtime/sandbox.test.ts covers the sandbox.
  unconfined = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: GRACE_MS, baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME }, toolFaults: true, sandbox: 'off' });
});
afterEach(async () => {
  await unconfined.shutdown();
  await runtime.shutdown();
  expect(runtime.liveProcesses()).toBe(0);
  await t.shutdown();
});

/** The pids spawn_children printed on stderr. */
function childrenOf(result: ToolResult): number[] {
  return [...result.stderr.matchAll(/child_pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** The process groups of this process's children and grandchildren (each tool leads its own group; tools are the spawn helper's children). */
function toolGroups(): number[][] {
  const childrenOf = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const children = childrenOf(process.pid);
  return [...children, ...children.flatMap(childrenOf)].map((pid) => processGroupMembers(pid));
}

function call(toolId: string, input: unknown, extra: Partial<ToolCall> = {}, on: ToolRuntime = runtime): Promise<ToolResult> {
  return on.execute({ tool: loadExampleTool(toolId), executionId: `exec-${++seq}`, input, ...extra });
}

function failed(result: ToolResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.result)}`);
  return result.error;
}

function toolSpan() {
  const spans = t.spans().filter((span) => span.name === 'runtime.execute_tool');
  expect(spans).toHaveLength(1);
  return spans[0]!;
}

async function waitFor(condition: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('success', () => {
  it('runs lookup_customer, records the span and every tool metric with its labels', async () => {
    const result = await call('lookup_customer', { email: 'ada@analytical.example' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.result).toMatchObject({ found: true, customer: { id: 'cus_1001', plan: 'enterprise' } });
    expect(result.exitCode).toBe(0);
    expect(result.signal).toBeNull();
    expect(result.outputBytes).toBeGreaterThan(50);
    expect(result.pid).toBeGreaterThan(0);

    const span = toolSpan();
    expect(span.attributes).toMatchObject({
      'switchyard.tool.timeout_ms': 5000, 'switchyard.tool.bun_version': runtime.bunVersion(), 'process.exit.code': 0,
      'switchyard.tool.output_bytes': result.outputBytes, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_customer',
    });
    expect(runtime.bunVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(span.attributes).not.toHaveProperty('error_kind');
    expect(span.attributes).not.toHaveProperty('signal');
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);

    const seconds = await t.metricPoints('runtime_tool_execute_seconds');
    expect(seconds).toEqual([expect.objectContaining({ attributes: { tool_id: 'lookup_customer', outcome: 'success' }, value: 1 })]);
    expect(seconds[0]!.sum).toBeCloseTo(result.durationMs / 1000, 3);
    expect(seconds[0]!.buckets!.boundaries).toEqual([...METRICS.toolExecuteSeconds.buckets]);
    expect(seconds[0]!.buckets!.boundaries.at(-1), "up to the longest allowed tool timeout").toBe(3600);
    expect(await t.metricPoints('runtime_tool_output_bytes')).toEqual([
      expect.objectContaining({ attributes: { tool_id: 'lookup_customer' }, value: 1, sum: result.outputBytes }),
    ]);
    expect(await t.metricPoints('runtime_bun_process_exits_total')).toEqual([{ attributes: { status: 'exit', code: '0', signal: 'none' }, value: 1 }]);
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([]);
    expect(await t.metricPoints('runtime_tool_timeouts_total')).toEqual([]);
  });

  it('runs every sample tool', async () => {
    const kb = await call('fetch_kb_article', { query: 'refund for a double charge' });
    expect(kb.ok && (kb.result as { articles: { id: string }[] }).articles[0]!.id).toBe('kb-202');
    const notify = await call('send_notification', { channel: 'slack', to: '#support', body: 'hi', api_key: 'sk-test-123456' });
    expect(notify.ok && notify.result).toMatchObject({ channel: 'slack', to: '#support', authenticated: true, message_id: expect.stringMatching(/^msg_/) });
    expect(JSON.stringify(notify)).not.toContain('sk-test-123456');
    const echo = await call('echo', { hello: 'world', n: [1, 2] });
    expect(echo.ok && echo.result).toEqual({ echo: { hello: 'world', n: [1, 2] } });
    const missing = await call('lookup_customer', { customer_id: 'cus_9999' });
    expect(missing.ok && missing.result).toEqual({ found: false, customer: null });
  });

  it('slow: answers after its delay', async () => {
    const result = await call('echo', { _fault: 'slow', _delay_ms: 150, x: 1 });
    expect(result.ok && result.result).toEqual({ echo: { x: 1 } });
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
  });
});

describe('failure kinds', () => {
  it('fail: a well-formed {"error"} answer is the tool\'s own error (kind tool, its code on the span)', async () => {
    const result = await call('echo', { _fault: 'fail' });
    const error = failed(result);
    expect(error).toMatchObject({ kind: 'tool', origin: 'tool', code: 'INJECTED_FAILURE', message: 'injected failure' });
    expect(result.exitCode).toBe(1);
    const span = toolSpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toMatchObject({ 'error.type': 'tool_error', 'switchyard.tool.error_code': 'INJECTED_FAILURE', 'process.exit.code': 1 });
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'tool' }, value: 1 }]);
    expect(await t.metricPoints('runtime_tool_execute_seconds')).toEqual([expect.objectContaining({ attributes: { tool_id: 'echo', outcome: 'error' } })]);
  });

  it('hang: killed at its timeout, nothing left behind', async () => {
    const result = await call('echo', { _fault: 'hang' }, { timeoutMs: TIMEOUT_MS });
    expect(failed(result).kind).toBe('timeout');
    expect(result.signal).toBe('SIGTERM');
    expect(result.exitCode).toBeNull();
    expect(result.durationMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(processAlive(result.pid!)).toBe(false);
    expect(await leftAfterKill(() => processGroupMembers(result.pid!))).toEqual([]);

    const span = toolSpan();
    expect(span.attributes).toMatchObject({ 'error.type': 'tool_timeout', 'switchyard.tool.exit_signal': 'SIGTERM', 'switchyard.tool.timeout_ms': TIMEOUT_MS });
    expect(span.attributes).not.toHaveProperty('process.exit.code');
    expect(await t.metricPoints('runtime_tool_timeouts_total')).toEqual([{ attributes: { tool_id: 'echo' }, value: 1 }]);
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'timeout' }, value: 1 }]);
    expect(await t.metricPoints('runtime_tool_execute_seconds')).toEqual([expect.objectContaining({ attributes: { tool_id: 'echo', outcome: 'timeout' } })]);
    expect(await t.metricPoints('runtime_bun_process_exits_total')).toEqual([{ attributes: { status: 'signal', code: 'none', signal: 'SIGTERM' }, value: 1 }]);
  });

  it('ignore_sigterm: SIGKILL after the grace period', async () => {
    const result = await call('echo', { _fault: 'ignore_sigterm' }, { timeoutMs: SETTLED_TIMEOUT_MS });
    expect(failed(result).kind).toBe('timeout');
    expect(result.signal).toBe('SIGKILL');
    expect(result.durationMs).toBeGreaterThanOrEqual(SETTLED_TIMEOUT_MS + GRACE_MS);
    expect(processAlive(result.pid!)).toBe(false);
  });

  it('spawn_children: the children (which ignore SIGTERM) die with the tool', async () => {
    // A caller's count and file path are ignored: always 2 children, pids on stderr only.
    const pidFile = join(tmp, `pids-${++seq}`);
    const result = await call('echo', { _fault: 'spawn_children', _children: 50, _pid_file: pidFile }, { timeoutMs: SETTLED_TIMEOUT_MS }, unconfined);
    expect(failed(result).kind).toBe('timeout');
    const children = childrenOf(result);
    expect(children).toHaveLength(2);
    expect(existsSync(pidFile)).toBe(false);
    // The group was SIGKILLed when the tool exited, before the call resolved.
    expect(await leftAfterKill(() => children.filter(processAlive))).toEqual([]);
    expect(await leftAfterKill(() => processGroupMembers(result.pid!))).toEqual([]);
  });

  it('with faults off (the default), a fault field changes nothing: no fault, no file, no children', async () => {
    const plain = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: GRACE_MS, baseEnv: { PATH: process.env.PATH, SWITCHYARD_TOOL_FAULTS: '1' } });
    const pidFile = join(tmp, `pids-${++seq}`);
    try {
      for (const fault of ['fail', 'crash', 'hang', 'flood', 'garbage', 'spawn_children', 'exit_early']) {
        const result = await plain.execute({ tool: loadExampleTool('echo'), executionId: `off-${fault}`, input: { _fault: fault, _pid_file: pidFile, _children: 5, v: fault } });
        expect(result.ok && result.result, fault).toEqual({ echo: { v: fault } });
        expect(result.stderr).not.toContain('child_pid');
      }
      expect(existsSync(pidFile)).toBe(false);
      // The control: the same runtime with faults on does fail.
      const on = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: GRACE_MS, baseEnv: { PATH: process.env.PATH }, toolFaults: true });
      expect(failed(await on.execute({ tool: loadExampleTool('echo'), executionId: 'on-fail', input: { _fault: 'fail' } })).code).toBe('INJECTED_FAILURE');
      await on.shutdown();
    } finally {
      await plain.shutdown();
    }
  });

  it('fault sizes and durations are bounded: _bytes at 4 MiB', async () => {
    const result = await call('echo', { _fault: 'stderr_flood', _bytes: 1e12, ok: true }, { timeoutMs: 20_000 });
    expect(result.ok).toBe(true);
    expect(result.stderrBytes).toBe(4 * 1024 * 1024);
  }, 30_000);

  it('spawn_children then answer: the strays left behind are killed when the tool exits', async () => {
    const result = await call('echo', { _fault: 'spawn_children', _respond: true, v: 1 }, {}, unconfined);
    expect(result.ok && result.result).toEqual({ echo: { v: 1 } });
    const children = childrenOf(result);
    expect(children).toHaveLength(2);
    expect(await leftAfterKill(() => children.filter(processAlive))).toEqual([]);
  });

  it('flood: hits the output cap and is killed', async () => {
    const limited = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: GRACE_MS, outputLimitBytes: 1_000_000, toolFaults: true });
    const result = await limited.execute({ tool: loadExampleTool('echo'), executionId: 'flood', input: { _fault: 'flood' } });
    expect(failed(result).kind).toBe('output_limit');
    expect(result.outputBytes).toBeGreaterThan(1_000_000);
    expect(result.signal).toBe('SIGTERM');
    expect(limited.liveProcesses()).toBe(0);
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'output_limit' }, value: 1 }]);
  });

  it('garbage: binary stdout is a parse error', async () => {
    const result = await call('echo', { _fault: 'garbage' });
    const error = failed(result);
    expect(error.kind).toBe('parse');
    expect(error.message).toMatch(/not valid JSON \(4100 bytes\)/);
    expect(result.exitCode).toBe(0);
  });

  it.each(['SIGSEGV', 'SIGKILL', 'SIGABRT'])('crash by %s: a wait error with the signal recorded', async (signal) => {
    const result = await call('echo', { _fault: 'crash', _signal: signal });
    expect(failed(result).kind).toBe('wait');
    expect(failed(result).message).toContain(`killed by ${signal}`);
    expect(result.signal).toBe(signal);
    expect(result.exitCode).toBeNull();
    expect(toolSpan().attributes).toMatchObject({ 'switchyard.tool.exit_signal': signal, 'error.type': 'tool_wait' });
    expect(await t.metricPoints('runtime_bun_process_exits_total')).toEqual([{ attributes: { status: 'signal', code: 'none', signal }, value: 1 }]);
  });

  it('exit_early with a large request: stdin (the request was never read whole)', async () => {
    // 2 MB: well beyond what the stdio socketpair buffers plus the tool's first read absorb (~0.5 MB on Linux defaults).
    const result = await call('echo', { _fault: 'exit_early', blob: 'x'.repeat(2 * 1024 * 1024) });
    expect(failed(result).kind).toBe('stdin');
    expect(result.exitCode).toBe(3);
  });

  it('exit_early with a request that fits the pipe buffers: wait (non-zero exit, no response)', async () => {
    const result = await call('echo', { _fault: 'exit_early' });
    expect(failed(result).kind).toBe('wait');
    expect(result.exitCode).toBe(3);
    expect(await t.metricPoints('runtime_bun_process_exits_total')).toEqual([{ attributes: { status: 'exit', code: '3', signal: 'none' }, value: 1 }]);
  });

  it('a tool that answers and exits 0 without reading a large request succeeds', async () => {
    const result = await runtime.execute({ tool: fixtureTool('no-stdin-ok'), executionId: 'x', input: { blob: 'y'.repeat(1_000_000) } });
    expect(result.ok && result.result).toEqual({ ignored_stdin: true });
  });

  it('close_stdout: half a response then EOF is a parse error', async () => {
    const result = await call('echo', { _fault: 'close_stdout' });
    expect(failed(result).kind).toBe('parse');
    expect(result.exitCode).toBe(0);
  });

  it('stderr_flood: stderr is capped, the rest counted, the call succeeds', async () => {
    const result = await call('echo', { _fault: 'stderr_flood', _bytes: 1 << 20, ok: true });
    expect(result.ok && result.result).toEqual({ echo: { ok: true } });
    expect(result.stderrBytes).toBe(1 << 20);
    expect(result.stderr.length).toBeLessThan(64 * 1024 + 100);
    expect(result.stderr).toContain(`[${(1 << 20) - 64 * 1024} more bytes of stderr discarded]`);
  });

  it('start: bun missing', async () => {
    const broken = new ToolRuntime({ telemetry: t.telemetry, bunPath: join(tmp, 'no-such-bun') });
    const result = await broken.execute({ tool: loadExampleTool('echo'), executionId: 'x', input: {} });
    const error = failed(result);
    expect(error.kind).toBe('start');
    // The sandbox wrapper's execve fails (ENOENT), or spawn does when the sandbox is off.
    expect(error.message).toMatch(/ENOENT|no such file/);
    expect(result.pid).toBeNull();
    expect(broken.bunVersion()).toBe('unknown');
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'start' }, value: 1 }]);
    expect(await t.metricPoints('runtime_bun_process_exits_total')).toEqual([]);
  });

  it('start: relative script path, bad timeout; input: unserializable input', async () => {
    expect(failed(await runtime.execute({ tool: loadExampleTool('echo', { script: 'echo.ts' }), executionId: 'x', input: {} })).kind).toBe('start');
    expect(failed(await call('echo', {}, { timeoutMs: 0 })).kind).toBe('start');
    expect(failed(await call('echo', { n: 1n }))).toMatchObject({ kind: 'input', code: 'TOOL_BAD_INPUT' });
  });
});

describe('environment', () => {
  it('passes PATH, HOME, LANG, TZ and allowlisted names only; never the engine secrets', async () => {
    const envRuntime = new ToolRuntime({
      telemetry: t.telemetry,
      baseEnv: { PATH: process.env.PATH, HOME: '/home/tool', LANG: 'C.UTF-8', TZ: 'UTC', ENGINE_DB_PASSWORD: 'hunter2-secret', NOTIFY_SENDER: 'ops@example.com', OTHER: 'x' },
    });
    const result = await envRuntime.execute({ tool: fixtureTool('print-env', { env: ['NOTIFY_SENDER', 'NOT_SET'] }), executionId: 'x', input: {} });
    expect(result.ok).toBe(true);
    const env = (result as { result: { env: Record<string, string> } }).result.env;
    expect(env).toMatchObject({ PATH: process.env.PATH, LANG: 'C.UTF-8', TZ: 'UTC', NOTIFY_SENDER: 'ops@example.com' });
    // In the sandbox HOME (and TMPDIR) is the call's private scratch directory, never the engine's HOME.
    expect(env.HOME).toMatch(/\/switchyard-tools-\d+-\d+-[^/]+\/scratch\/call-[^/]+$/);
    expect(env.TMPDIR).toBe(env.HOME);
    expect(env).not.toHaveProperty('ENGINE_DB_PASSWORD');
    expect(env).not.toHaveProperty('OTHER');
    expect(env).not.toHaveProperty('NOT_SET');
    expect(JSON.stringify(env)).not.toContain('hunter2-secret');
    expect(env.TRACEPARENT).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it.each(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'NODE_OPTIONS', 'BUN_OPTIONS', 'DYLD_INSERT_LIBRARIES', 'GLIBC_TUNABLES', 'TRACEPARENT', 'bad-name'])(
    'rejects an allowlist naming %s (kind start, nothing spawned)',
    async (name) => {
      const result = await runtime.execute({ tool: fixtureTool('print-env', { env: ['NOTIFY_SENDER', name] }), executionId: 'x', input: {} });
      const error = failed(result);
      expect(error.kind).toBe('start');
      expect(error.message).toContain(name);
      expect(result.pid).toBeNull();
    },
  );

  it('TRACEPARENT carries the active trace and the runtime.execute_tool span as parent', async () => {
    const parent = t.telemetry.tracer.startSpan('test.parent');
    const result = await context.with(trace.setSpan(context.active(), parent), () =>
      runtime.execute({ tool: fixtureTool('print-env'), executionId: 'x', input: {} }),
    );
    parent.end();
    const env = (result as { result: { env: Record<string, string> } }).result.env;
    const span = toolSpan();
    expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(env.TRACEPARENT).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });

  it("a tool's own span joins the trace over OTLP/HTTP JSON when the endpoint is allowlisted", async () => {
    const bodies: string[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const otelRuntime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
      const result = await otelRuntime.execute({ tool: loadExampleTool('echo', { env: ['OTEL_EXPORTER_OTLP_ENDPOINT'] }), executionId: 'x', input: { a: 1 } });
      expect(result.ok).toBe(true);
      expect(bodies).toHaveLength(1);
      const exported = JSON.parse(bodies[0]!).resourceSpans[0].scopeSpans[0].spans[0];
      const span = toolSpan();
      expect(exported).toMatchObject({ name: 'tool.echo.run', traceId: span.spanContext().traceId, parentSpanId: span.spanContext().spanId, status: { code: 1 } });
      expect(BigInt(exported.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(exported.startTimeUnixNano));
    } finally {
      server.close();
    }
  });

  it('a dead OTLP endpoint does not fail the tool', async () => {
    const otelRuntime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' } });
    const result = await otelRuntime.execute({ tool: loadExampleTool('echo', { env: ['OTEL_EXPORTER_OTLP_ENDPOINT'] }), executionId: 'x', input: { a: 1 } });
    expect(result.ok && result.result).toEqual({ echo: { a: 1 } });
  });
});

describe('secrets', () => {
  it('secret inputs are scrubbed from stderr and error messages and never reach spans', async () => {
    const secret = 'sk-live-0123456789abcdef';
    const logs: string[] = [];
    const logger = { warn: (obj: object, msg?: string) => logs.push(JSON.stringify({ ...obj, msg })), debug: () => {} };
    const logged = new ToolRuntime({ telemetry: t.telemetry, logger, baseEnv: { PATH: process.env.PATH } });
    const result = await logged.execute({ tool: fixtureTool('leak-secret', { secretInputs: ['api_key'] }), executionId: 'x', input: { api_key: secret, to: 'a' } });
    const error = failed(result);
    expect(error).toMatchObject({ kind: 'tool', origin: 'tool', code: 'UPSTREAM_REJECTED', message: 'upstream rejected key [REDACTED]' });
    expect(result.stderr).toBe('debug: calling upstream with key [REDACTED]\n');
    const exported = JSON.stringify(t.spans().map((span) => ({ attributes: span.attributes, events: span.events, status: span.status })));
    expect(exported).toContain('[REDACTED]');
    expect(exported).not.toContain(secret);
    expect(JSON.stringify((await t.collectMetrics()).resourceMetrics)).not.toContain(secret);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain('upstream rejected key [REDACTED]');
    expect(logs[0]).not.toContain(secret);
  });
});

describe('cancellation and shutdown', () => {
  it('an AbortSignal kills the process group; counted as kind canceled, apart from the failures', async () => {
    const controller = new AbortController();
    const pending = call('echo', { _fault: 'spawn_children' }, { signal: controller.signal, timeoutMs: 20_000 }, unconfined);
    // The tool (a child of this process) and its 2 children: all in the tool's process group. Taken from the
    // group itself: the abort may land before the tool has written their pids to stderr.
    let group: number[] = [];
    await waitFor(() => (group = toolGroups().find((members) => members.length >= 3) ?? []).length >= 3);
    controller.abort();
    const result = await pending;
    const error = failed(result);
    expect(error).toMatchObject({ kind: 'canceled', origin: 'canceled', code: 'CANCELED' });
    expect(result.signal).toBe('SIGTERM');
    expect(group).toContain(result.pid);
    expect(await leftAfterKill(() => group.filter(processAlive))).toEqual([]);
    expect(processAlive(result.pid!)).toBe(false);
    const span = toolSpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('canceled');
    expect(span.attributes).toMatchObject({ 'switchyard.tool.error_code': 'CANCELED' });
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'canceled' }, value: 1 }]);
    expect(await t.metricPoints('runtime_tool_execute_seconds')).toEqual([expect.objectContaining({ attributes: { tool_id: 'echo', outcome: 'error' } })]);
  });

  it('an already-aborted signal spawns nothing', async () => {
    const result = await call('echo', {}, { signal: AbortSignal.abort() });
    expect(failed(result)).toMatchObject({ kind: 'canceled', origin: 'canceled', code: 'CANCELED' });
    expect(result.pid).toBeNull();
  });

  it('shutdown() kills every live tool and refuses new calls', async () => {
    // Unconfined: spawn_children's children cannot start in the sandbox, and its tool would end on its own (code 1)
    // before the shutdown whenever it was quick enough.
    const calls = ['hang', 'ignore_sigterm', 'spawn_children'].map((fault) => call('echo', { _fault: fault }, {}, unconfined));
    await waitFor(() => unconfined.liveProcesses() === 3);
    await unconfined.shutdown();
    expect(unconfined.liveProcesses()).toBe(0);
    const results = await Promise.all(calls);
    for (const result of results) {
      expect(failed(result)).toMatchObject({ kind: 'canceled', code: 'SHUTDOWN' });
      expect(await leftAfterKill(() => processGroupMembers(result.pid!))).toEqual([]);
    }
    expect(failed(await call('echo', {}, {}, unconfined))).toMatchObject({ kind: 'canceled', code: 'SHUTDOWN' });
  });
});

describe('classifyToolRun', () => {
  const base: ToolRunFacts = {
    terminated: null, overflow: false, spawnError: null, stdoutError: null, stderrError: null, stdinFailed: false,
    exitCode: 0, signal: null, stdout: Buffer.from('{"result": 1}'), timeoutMs: 100, outputLimit: 10,
  };
  const kind = (facts: Partial<ToolRunFacts>) => {
    const outcome = classifyToolRun({ ...base, ...facts });
    return outcome.ok ? 'ok' : outcome.error.kind;
  };
  it('covers the kinds no real process produces on demand', () => {
    expect(kind({})).toBe('ok');
    expect(kind({ stdoutError: new Error('ECONNRESET') })).toBe('stdout');
    expect(kind({ stderrError: new Error('ECONNRESET') })).toBe('stderr');
    expect(kind({ spawnError: new Error('EMFILE') })).toBe('start');
    expect(kind({ terminated: 'timeout', overflow: true })).toBe('timeout');
    expect(kind({ overflow: true, exitCode: 0 })).toBe('output_limit');
    expect(kind({ exitCode: 2 })).toBe('wait');
    expect(kind({ stdout: Buffer.from('{"error": "nope"}'), exitCode: 1 })).toBe('tool');
    expect(kind({ stdout: Buffer.from('{"error": "nope"}'), exitCode: 0 })).toBe('tool');
    expect(kind({ stdout: Buffer.from('{"error": "nope"}'), signal: 'SIGSEGV', exitCode: null })).toBe('tool');
    expect(kind({ terminated: 'canceled' })).toBe('canceled');
    expect(kind({ terminated: 'shutdown' })).toBe('canceled');
    expect(kind({ stdout: Buffer.from('{"error": {"code": 1}}') })).toBe('parse');
    expect(kind({ stdout: Buffer.from('{"result": 1, "error": "x"}') })).toBe('parse');
    expect(kind({ stdout: Buffer.from('[1]') })).toBe('parse');
    expect(kind({ stdout: Buffer.from('{"result": 1}{"result": 2}') })).toBe('parse');
    expect(kind({ stdout: Buffer.alloc(0), stdinFailed: true })).toBe('stdin');
    expect(kind({ stdinFailed: true })).toBe('ok');
  });
});
