/**
 * error.type, one vocabulary (src/telemetry/error-type.ts): snake_case values, never a class name, and the
 * same value on every span a failure fails, from the span where it happened up to the request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/engine/agent/model.ts';
import { ConflictError, ExecutionFailure, InvalidInputError, NotFoundError, StopSignal, UnavailableError } from '../../src/engine/errors.ts';
import { ToolError } from '../../src/engine/runtime/tool-runtime.ts';
import { errorTypeOf, isErrorType, OTHER_ERROR_TYPE } from '../../src/telemetry/error-type.ts';
import { startTestEngine, TICKET, type TestEngine } from '../support/engine.ts';

describe('errorTypeOf', () => {
  it('names every error the engine raises in snake_case, the same as the code it stores', () => {
    expect(errorTypeOf(new ToolError('wait', 'exited 1'))).toBe('tool_wait');
    expect(errorTypeOf(new ToolError('timeout', 'killed'))).toBe('tool_timeout');
    expect(errorTypeOf(new ToolError('canceled', 'canceled', { code: 'CANCELED' }))).toBe('canceled');
    expect(errorTypeOf(new ToolError('tool', 'no such customer', { code: 'NOT_FOUND' }))).toBe('tool_error');
    expect(errorTypeOf(new ToolError('input', 'does not match its input_schema', { code: 'TOOL_BAD_INPUT' }))).toBe('tool_input');
    expect(errorTypeOf(new ExecutionFailure('tool failed', 'tool_wait', 'lookup'))).toBe('tool_wait');
    expect(errorTypeOf(new ModelError('HTTP 503', 'model_http_503'))).toBe('model_http_503');
    expect(errorTypeOf(new StopSignal('timed_out', 'deadline'))).toBe('timeout');
    expect(errorTypeOf(new StopSignal('canceled', 'asked'))).toBe('canceled');
    expect(errorTypeOf(new StopSignal('shutdown', 'bye'))).toBe('shutdown');
    expect(errorTypeOf(new InvalidInputError('bad', []))).toBe('invalid_input');
    expect(errorTypeOf(new NotFoundError('none'))).toBe('not_found');
    expect(errorTypeOf(new UnavailableError('closing'))).toBe('unavailable');
    expect(errorTypeOf(Object.assign(new ConflictError('done', {} as never)))).toBe('conflict');
    expect(errorTypeOf(AbortSignal.abort().reason)).toBe('canceled');
  });

  it('never a class name or a foreign code: an error without a snake_case type of its own is the fallback, else _OTHER', () => {
    expect(errorTypeOf(new TypeError('x'))).toBe(OTHER_ERROR_TYPE);
    expect(errorTypeOf(Object.assign(new Error('sqlite'), { code: 'ERR_SQLITE_ERROR' }))).toBe(OTHER_ERROR_TYPE);
    expect(errorTypeOf('a string')).toBe(OTHER_ERROR_TYPE);
    expect(errorTypeOf(new Error('x'), 'canceled')).toBe('canceled');
    expect(errorTypeOf(new Error('x'), 'NotSnake')).toBe(OTHER_ERROR_TYPE);
    // Its own type wins over what a caller passes: a tool span told `wait` still says tool_wait.
    expect(errorTypeOf(new ToolError('wait', 'exited 1'), 'wait')).toBe('tool_wait');
    expect(isErrorType('_OTHER') && isErrorType('model_http_429') && !isErrorType('InvalidInputError') && !isErrorType('tool-wait')).toBe(true);
  });
});

describe('one failure, one error.type up the tree', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startTestEngine();
  });
  afterAll(async () => t.close());

  it('a tool that crashes: its span, its task and its run say tool_wait, the code the run is stored with (the sync request itself succeeded)', async () => {
    t.observed.resetSpans();
    const { body } = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'crash' } });
    expect(body).toMatchObject({ status: 'failed', error: { code: 'tool_wait' } });
    const spans = t.observed.spans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const tool = spans.find((s) => s.name === 'runtime.execute_tool' && s.attributes['error.type'] !== undefined)!;
    const chain: string[] = [];
    for (let s = tool; s; s = byId.get(s.parentSpanContext?.spanId ?? '')!) chain.push(`${s.name}=${String(s.attributes['error.type'])}`);
    expect(chain).toEqual(['runtime.execute_tool=tool_wait', 'task.execute=tool_wait', 'workflow.execute=tool_wait', 'workflow.execute_sync=undefined',
      'POST /api/v1/workflows/:id/executions/sync=undefined']);
  });

  it('a request the engine refuses: invalid_input on the sync span, not the class name', async () => {
    t.observed.resetSpans();
    const { status } = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { email: 'no subject' } });
    expect(status).toBe(422);
    const sync = t.observed.spans().find((s) => s.name === 'workflow.execute_sync')!;
    expect(sync.attributes['error.type']).toBe('invalid_input');
  });

  it('a model call that fails: the model call, the agent loop, the task and the run say the provider\'s code', async () => {
    const f = await startTestEngine({ projectDir: 'test/fixtures/project' });
    try {
      const { body } = await f.post('/api/v1/agents/flaky_model/executions/sync', { input: {} });
      expect(body).toMatchObject({ status: 'failed', error: { code: 'model_http_503' } });
      const types = Object.fromEntries(f.observed.spans().filter((s) => s.attributes['error.type'] !== undefined).map((s) => [s.name, s.attributes['error.type']]));
      expect(types).toEqual({ 'agent.model_call': 'model_http_503', 'agent.execute_sync': 'model_http_503', 'agent.execute': 'model_http_503' });
    } finally {
      await f.close();
    }
  });
});
