import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ToolRuntime, type ToolResult } from '../../src/engine/runtime/tool-runtime.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';
import { createTestTelemetry, type TestTelemetry } from '../support/telemetry.ts';
import { loadExampleTool } from './tools.ts';

/** A tool's input_schema holds on every call: checked before the tool starts, with a clear tool error. */
let t: TestTelemetry;
let runtime: ToolRuntime;
let seq = 0;
beforeEach(() => {
  t = createTestTelemetry();
  runtime = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: 300, baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME } });
});
afterEach(async () => {
  await runtime.shutdown();
  await t.shutdown();
});

const run = (toolId: string, input: unknown, inputSchema?: unknown): Promise<ToolResult> =>
  runtime.execute({ tool: loadExampleTool(toolId, inputSchema === undefined ? {} : { inputSchema }), executionId: `exec-${++seq}`, input });

describe('a tool\'s input_schema', () => {
  it('an input that does not match is refused before the tool starts: kind input, TOOL_BAD_INPUT, the fields named, no values', async () => {
    const result = await run('send_notification', { channel: 'fax', api_key: 987654321 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ kind: 'input', code: 'TOOL_BAD_INPUT' });
    expect(result.error.message).toMatch(/^tool send_notification: input does not match its input_schema: /);
    expect(result.error.message).toMatch(/channel: /);
    expect(result.error.message).toMatch(/to: /);
    expect(result.error.message).toMatch(/api_key: /);
    expect(result.error.message).not.toContain('987654321');
    expect(result.error.message).not.toContain('fax');
    expect(result.pid).toBeNull();
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([
      expect.objectContaining({ attributes: { tool_id: 'send_notification', error_kind: 'input' }, value: 1 }),
    ]);
    const span = t.spans().find((s) => s.name === 'runtime.execute_tool')!;
    expect(span.attributes['error.type']).toBe('tool_input');
  });

  it('a matching input runs the tool, and the tool gets the input as sent (properties the schema does not list included)', async () => {
    const notified = await run('send_notification', { channel: 'email', to: 'ada@analytical.example' });
    expect(notified.ok, JSON.stringify(notified)).toBe(true);
    const echoed = await run('echo', { a: 'x', extra: { kept: true } }, { type: 'object', required: ['a'], properties: { a: { type: 'string' } } });
    expect(echoed).toMatchObject({ ok: true, result: { echo: { a: 'x', extra: { kept: true } } } });
    const refused = await run('echo', ['not', 'an', 'object'], { type: 'object' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'TOOL_BAD_INPUT' } });
  });

  it('a definition built outside the loader with an invalid schema fails every call as a bad definition', async () => {
    const result = await run('echo', {}, { type: 'object', properties: { a: { type: 'strin' } } });
    expect(result).toMatchObject({ ok: false, pid: null, error: { kind: 'start', code: 'TOOL_BAD_DEFINITION' } });
    if (!result.ok) expect(result.error.message).toMatch(/tool echo: input_schema is not a valid JSON Schema: properties\.a\.type: must be one of/);
  });
});

describe('a tool\'s input_schema in a run', () => {
  let engine: TestEngine;
  afterAll(async () => engine?.close());

  it('a task whose input misses a required field fails with the tool\'s error; the same task with it succeeds', async () => {
    engine = await startTestEngine();
    const bad = await engine.post('/api/v1/tasks/kb_search/executions/sync', { input: { limit: 2 } });
    expect(bad.body).toMatchObject({ status: 'failed', error: { code: 'tool_input' } });
    expect(bad.body.error.message).toMatch(/tool fetch_kb_article: input does not match its input_schema: query: /);
    const good = await engine.post('/api/v1/tasks/kb_search/executions/sync', { input: { query: 'refund', limit: 2 } });
    expect(good.body).toMatchObject({ status: 'success' });
  });
});
