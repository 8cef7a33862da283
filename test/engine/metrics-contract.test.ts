import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ID_LABEL, METRICS, MODEL_LABEL, RECORDED_METRIC_KEYS, prometheusLabelOf, type MetricSpec } from '../../src/telemetry/catalog.ts';
import { FOLDED, ID_PATTERN, MODEL_PATTERN } from '../../src/telemetry/labels.ts';
import { startTestEngine, TICKET, eventually, type TestEngine } from '../support/engine.ts';

/**
 * Drives the engine through every path that records a metric (success, failures, a sync timeout, an async
 * start, API errors, a pause, a stale sweep), then checks each metric of the catalogue was recorded with
 * exactly its documented labels and allowed values.
 */
let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ engine: { staleAfterMs: 5_000 } });
  // The event loop monitor starts at the first collection; the runs below give it samples.
  await t.observed.collectMetrics();
  await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
  await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'garbage' } });
  await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'crash' } });
  await t.post('/api/v1/tasks/customer_lookup/executions/sync', { input: { _fault: 'flood', email: 'a@b' } });
  await t.post('/api/v1/agents/faq_bot/executions/sync', { input: { question: 'price?' } });
  // A tool timeout, with the sample tool's timeout shortened for the test.
  const lookup = t.engine.definitions.tools.get('lookup_customer')!;
  await t.runtime.execute({ tool: lookup, executionId: 'direct', input: { _fault: 'hang' }, timeoutMs: 300 });
  await t.post('/api/v1/workflows/support_triage/executions/sync?timeout_ms=50', { input: { ...TICKET, fault: 'slow', delay_ms: 300 } });
  const accepted = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'login help' } });
  await eventually(() => t.engine.get(accepted.body.id), (r) => r?.status === 'success');
  await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'ada@analytical.example', amount: 1 } });
  await t.post('/api/v1/workflows/nope/executions', { input: {} });
  await t.post('/api/v1/workflows/support_triage/executions', '{broken', { 'content-type': 'application/json' });
  // A run whose engine "died": owned by nobody alive, heartbeat long ago.
  await t.store.createExecution({
    id: 'dead-run', kind: 'workflow', target: 'support_triage', trigger: 'api', input: {}, traceId: null, traceparent: null,
    parentExecutionId: null, callerKeyId: null, ownerId: 'gone', createdAt: Date.now() - 60_000,
  });
  await t.engine.sweepStale();
  // Telemetry's own failure counter: a meter failure reported through the recorder.
  t.observed.telemetry.failure('export_traces', new Error('collector away'));
}, 60_000);
afterAll(async () => t.close());

describe('every metric of the contract', () => {
  it.each(RECORDED_METRIC_KEYS)('%s is recorded with its documented labels', async (key) => {
    const spec: MetricSpec = METRICS[key];
    const points = await t.observed.metricPoints(spec.name);
    expect(points.length, `${spec.name} has no points`).toBeGreaterThan(0);
    const labels = Object.keys(spec.labels).sort();
    const required = labels.filter((label) => !spec.attributes?.[label]?.optional);
    // The SDK exports OpenTelemetry attribute names (gen_ai.token.type); Prometheus shows them with
    // underscores (gen_ai_token_type), the catalogue's label names.
    const attributeOf = (label: string) => spec.attributes?.[label]?.name ?? label;
    const attributes = labels.map(attributeOf);
    for (const point of points) {
      // Exported under the catalogue's attribute names, which Prometheus shows as the catalogue's labels.
      expect(Object.keys(point.attributes).filter((name) => !attributes.includes(name)), `${spec.name}: attributes not in the catalogue`).toEqual([]);
      expect(attributes.map(prometheusLabelOf)).toEqual(labels);
      const shown = Object.keys(point.attributes).map(prometheusLabelOf);
      expect(required.filter((label) => !shown.includes(label)), `${spec.name}: required labels missing`).toEqual([]);
      for (const [label, allowed] of Object.entries(spec.labels)) {
        if (!(attributeOf(label) in point.attributes)) continue;
        const value = String(point.attributes[attributeOf(label)]);
        if (allowed === ID_LABEL) expect(value).toMatch(ID_PATTERN);
        else if (allowed === MODEL_LABEL) expect(value).toMatch(MODEL_PATTERN);
        else expect([...(allowed as readonly string[]), FOLDED]).toContain(value);
      }
    }
  });

  it('records what happened, not just something', async () => {
    const errors = await t.observed.metricPoints('runtime_tool_errors_total');
    const kinds = new Set(errors.map((p) => p.attributes['error_kind']));
    expect(kinds).toEqual(new Set(['parse', 'wait', 'output_limit', 'timeout']));
    const exits = await t.observed.metricPoints('runtime_bun_process_exits_total');
    expect(exits.some((p) => p.attributes['status'] === 'signal' && p.attributes['code'] === 'none' && String(p.attributes['signal']).startsWith('SIG'))).toBe(true);
    const completed = await t.observed.metricPoints('workflow_executions_completed_total');
    const byStatus = Object.fromEntries(completed.map((p) => [`${p.attributes['trigger']}/${p.attributes['status']}`, p.value]));
    // 1 success + the slow one (finishes after its 408) sync; 2 tool failures; 1 swept (api trigger).
    expect(byStatus['api_sync/failed']).toBe(2);
    expect(byStatus['api/failed']).toBe(1);
    expect(byStatus['api/success']).toBe(1);
    // Counters of enum-only labels exist from start-up: the label sets nothing happened to stay at 0.
    const swept = await t.observed.metricPoints('workflow_executions_swept_total');
    expect(swept.map((p) => [p.attributes['previous_status'], p.value]).sort()).toEqual([['pending', 1], ['running', 0]]);
    const httpErrors = await t.observed.metricPoints('http_exec_errors_total');
    expect(httpErrors.map((p) => `${p.attributes['kind']}:${p.attributes['code']}`).sort()).toEqual(['workflow:400', 'workflow:404', 'workflow:408']);
    const started = await t.observed.metricPoints('http_exec_started_total');
    expect(started.filter((p) => p.value > 0)).toEqual([expect.objectContaining({ attributes: { kind: 'workflow' }, value: 1 })]);
  });

  it('starts every counter whose labels are all enumerations at 0, for every label set, before anything happens', async () => {
    const fresh = await startTestEngine();
    try {
      const completed = await fresh.observed.metricPoints('workflow_executions_completed_total');
      expect(completed).toHaveLength(METRICS.workflowExecutionsCompleted.labels.trigger.length * METRICS.workflowExecutionsCompleted.labels.status.length);
      expect(completed.every((p) => p.value === 0)).toBe(true);
      const swept = await fresh.observed.metricPoints('workflow_executions_swept_total');
      expect(swept.map((p) => p.attributes['previous_status']).sort()).toEqual(['pending', 'running']);
      // A counter with an id label (tool_id) has no known label sets, so no series until it happens.
      expect(await fresh.observed.metricPoints('runtime_tool_errors_total')).toEqual([]);
    } finally {
      await fresh.close();
    }
  });
});
