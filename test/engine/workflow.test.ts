import { context, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { startTestEngine, TEST_API_KEY, TICKET, eventually, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  // A fallback poll that never comes in time: a sync answer can only come from the completion's wake-up.
  t = await startTestEngine({ engine: { waitFallbackFirstMs: 60_000 } });
});
afterAll(async () => t.close());

const spansOfTrace = (traceId: string) => t.observed.spans().filter((s) => s.spanContext().traceId === traceId);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);

describe('a sync workflow run', () => {
  it('answers with the output and the durable diagnostics', async () => {
    const { status, body } = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'success', kind: 'workflow', target: 'support_triage', trigger: 'api_sync',
      output: { category: 'billing', priority: 'high', customer: { id: 'cus_1001' } },
      diagnostics: { last_started_task: 'notify', last_completed_task: 'notify', last_completed_success: true, finalization_path: 'completed' },
    });
    expect(body.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect((await t.get(`/api/v1/executions/${body.id}`)).body).toEqual(body);
  });

  it('is one trace with the documented span tree', async () => {
    t.observed.resetSpans();
    const { body } = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
    const spans = spansOfTrace(body.trace_id);

    // The root: the request's SERVER span (the API's middleware), with the sync span right below it.
    const roots = spans.filter((s) => parentOf(s) === undefined);
    expect(roots.map((s) => [s.name, s.kind])).toEqual([['POST /api/v1/workflows/:id/executions/sync', SpanKind.SERVER]]);
    expect(roots[0]!.attributes).toMatchObject({ 'http.route': '/api/v1/workflows/:id/executions/sync', 'http.response.status_code': 200 });
    const [sync] = named(spans, 'workflow.execute_sync');
    expect(sync).toBeDefined();
    expect(parentOf(sync!)).toBe(roots[0]!.spanContext().spanId);
    expect(sync!.attributes).toMatchObject({ 'switchyard.workflow.id': 'support_triage', 'switchyard.execution.id': body.id });

    const [run] = named(spans, 'workflow.execute');
    const [wait] = named(spans, 'workflow.wait_completion');
    expect(parentOf(run!)).toBe(sync!.spanContext().spanId);
    expect(parentOf(wait!)).toBe(sync!.spanContext().spanId);
    expect(run!.attributes).toMatchObject({ 'switchyard.execution.id': body.id, 'switchyard.execution.status': 'success' });

    const tasks = named(spans, 'task.execute');
    expect(tasks.map((s) => s.attributes['switchyard.task.id'])).toEqual(['classify', 'lookup', 'summarize', 'notify']);
    for (const task of tasks) expect(parentOf(task)).toBe(run!.spanContext().spanId);

    const classify = tasks[0]!;
    const [prepare] = named(spans, 'agent.prepare').filter((s) => parentOf(s) === classify.spanContext().spanId);
    const [loop] = named(spans, 'agent.execute_sync').filter((s) => parentOf(s) === classify.spanContext().spanId);
    expect(prepare!.attributes).toMatchObject({ 'gen_ai.agent.name': 'triage_classifier', 'gen_ai.provider.name': 'switchyard.scripted' });
    expect(loop!.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'triage_classifier', 'switchyard.agent.iterations': 2 });
    const modelCalls = named(spans, 'agent.model_call').filter((s) => parentOf(s) === loop!.spanContext().spanId);
    expect(modelCalls).toHaveLength(2);
    const [kbCall] = named(spans, 'runtime.execute_tool').filter((s) => parentOf(s) === loop!.spanContext().spanId);
    expect(kbCall!.attributes).toMatchObject({ 'gen_ai.tool.name': 'fetch_kb_article', 'process.exit.code': 0 });

    const [lookupCall] = named(spans, 'runtime.execute_tool').filter((s) => parentOf(s) === tasks[1]!.spanContext().spanId);
    expect(lookupCall!.attributes).toMatchObject({ 'gen_ai.tool.name': 'lookup_customer', 'gen_ai.operation.name': 'execute_tool' });
    expect(lookupCall!.attributes['switchyard.tool.bun_version']).toMatch(/^\d+\.\d+/);

    // Woken by the completion: one look at the start, one when the run finished.
    expect(wait!.attributes).toMatchObject({ 'switchyard.wait.iterations': 2, 'switchyard.wait.outcome': 'completed' });
    expect(wait!.events.map((e) => e.name)).toEqual(['poll_iteration', 'poll_iteration']);
    expect(wait!.events.at(-1)!.attributes).toMatchObject({ 'switchyard.wait.attempt': 2, 'switchyard.execution.status': 'success' });
    expect(spans.every((s) => s.status.code !== SpanStatusCode.ERROR)).toBe(true);
  });

  it('a body that arrives after its headers still runs in the request\'s trace (the handler is reached from a stream event)', async () => {
    t.observed.resetSpans();
    const body = JSON.stringify({ input: TICKET });
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${t.url}/api/v1/workflows/support_triage/executions/sync`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${TEST_API_KEY}` },
      }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.flushHeaders();
      setTimeout(() => req.end(body), 100);
    });
    expect(answer.status).toBe(200);
    const spans = spansOfTrace(JSON.parse(answer.body).trace_id);
    const [server] = spans.filter((s) => s.kind === SpanKind.SERVER);
    expect(server, 'the request span is in the run\'s trace').toBeDefined();
    expect(parentOf(named(spans, 'workflow.execute_sync')[0]!)).toBe(server!.spanContext().spanId);
  });

  it('answers 408 with the partial state when the run outlives the wait, and the run goes on', async () => {
    const { status, body } = await t.post('/api/v1/workflows/support_triage/executions/sync?timeout_ms=1000',
      { input: { ...TICKET, fault: 'slow', delay_ms: 4_000 } });
    expect(status).toBe(408);
    expect(body.type).toBe('urn:switchyard:problem:sync-timeout');
    expect(body.detail).toContain(`/api/v1/executions/${body.execution.id}`);
    expect(body.execution.status).toBe('running');
    expect(body.execution.diagnostics.finalization_path).toBeNull();
    const done = await eventually(() => t.engine.get(body.execution.id), (r) => r?.status === 'success');
    expect(done!.finalizationPath).toBe('completed');
  });
});

describe('failures', () => {
  it('a failing tool fails the run and names the task', async () => {
    const { status, body } = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'fail' } });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'failed',
      error: { taskId: 'lookup' },
      diagnostics: { last_started_task: 'lookup', last_completed_task: 'lookup', last_completed_success: false, finalization_path: 'completed' },
    });
    expect(body.error.code).toMatch(/^tool_/);
  });

  it('cancel stops the run, kills its tool process and ends every span', async () => {
    t.observed.resetSpans();
    const started = await t.post('/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'hang' } });
    expect(started.status).toBe(202);
    const id = started.body.id;
    await eventually(() => t.engine.get(id), (r) => r?.lastStartedTask === 'lookup');
    await eventually(async () => t.runtime.liveProcesses(), (n) => n === 1);

    const canceled = await t.post(`/api/v1/executions/${id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', diagnostics: { finalization_path: 'canceled', last_started_task: 'lookup' } });
    expect(t.runtime.liveProcesses()).toBe(0);

    const spans = spansOfTrace(started.body.trace_id);
    expect(named(spans, 'workflow.execute')).toHaveLength(1);
    expect(named(spans, 'task.execute').map((s) => s.attributes['switchyard.task.id'])).toEqual(['classify', 'lookup']);
    expect(named(spans, 'runtime.execute_tool').filter((s) => s.attributes['gen_ai.tool.name'] === 'lookup_customer')).toHaveLength(1);
    expect(named(spans, 'workflow.execute')[0]!.status.code).toBe(SpanStatusCode.ERROR);

    const again = await t.post(`/api/v1/executions/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.detail).toContain('already finished');
  });

});

describe('timeouts', () => {
  let f: TestEngine;
  beforeAll(async () => {
    f = await startTestEngine({ projectDir: 'test/fixtures/project' });
  });
  afterAll(async () => f.close());

  it('a workflow past its own timeout ends timed_out and kills its tool', async () => {
    const { body } = await f.post('/api/v1/workflows/deadline/executions/sync', { input: { email: 'a@b' } });
    expect(body).toMatchObject({ status: 'timed_out', error: { code: 'timeout' }, diagnostics: { last_started_task: 'slow_lookup', finalization_path: 'completed' } });
    expect(f.runtime.liveProcesses()).toBe(0);
  });

  it('a tool past its timeout fails its task as a tool timeout', async () => {
    const { body } = await f.post('/api/v1/workflows/tool_timeout/executions/sync', { input: {} });
    expect(body).toMatchObject({ status: 'failed', error: { code: 'tool_timeout', taskId: 'hung_lookup' } });
    const points = await f.observed.metricPoints('workflow_task_executions_total');
    expect(points.find((p) => p.attributes['operation'] === 'fast_lookup')?.attributes['outcome']).toBe('timed_out');
  });

  it('an agent that never answers stops at its iteration bound', async () => {
    const { body } = await f.post('/api/v1/agents/looper/executions/sync', { input: {} });
    expect(body).toMatchObject({ status: 'failed', kind: 'agent', error: { code: 'max_iterations' } });
  });
});

describe('pause and resume', () => {
  it('pauses at a pause task, resumes from the next task, and finishes', async () => {
    const paused = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'grace@cobol.example', amount: 42 } });
    expect(paused.body).toMatchObject({ status: 'paused', diagnostics: { finalization_path: 'paused', last_completed_task: 'approval' } });
    const resumed = await t.post(`/api/v1/executions/${paused.body.id}/resume`);
    expect(resumed.status).toBe(202);
    const done = await eventually(() => t.engine.get(paused.body.id), (r) => r?.status === 'success');
    expect(done).toMatchObject({ lastCompletedTask: 'notify', finalizationPath: 'completed' });
    expect((await t.post(`/api/v1/executions/${paused.body.id}/resume`)).status).toBe(409);
  });

  it('the resumed leg continues the run\'s trace, linked to what resumed it', async () => {
    t.observed.resetSpans();
    const paused = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'grace@cobol.example', amount: 7 } });
    const [firstLeg] = named(spansOfTrace(paused.body.trace_id), 'workflow.execute');
    expect(firstLeg).toBeDefined();
    // Whoever resumes (an approval request, say) is in a trace of its own.
    const approval = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED };
    await context.with(trace.setSpanContext(context.active(), approval), () => t.engine.resume(paused.body.id));
    await eventually(() => t.engine.get(paused.body.id), (r) => r?.status === 'success');

    const runs = named(spansOfTrace(paused.body.trace_id), 'workflow.execute');
    expect(runs).toHaveLength(2);
    const secondLeg = runs.find((span) => span.attributes['switchyard.resumed'] === true)!;
    expect(parentOf(secondLeg)).toBe(firstLeg!.spanContext().spanId);
    expect(secondLeg.links.map((link) => link.context)).toEqual([expect.objectContaining({ traceId: approval.traceId, spanId: approval.spanId })]);
    // The tasks after the pause are in the same trace, under the resumed leg.
    const notify = named(spansOfTrace(paused.body.trace_id), 'task.execute').find((span) => span.attributes['switchyard.task.id'] === 'notify');
    expect(notify && parentOf(notify)).toBe(secondLeg.spanContext().spanId);
  });
});
