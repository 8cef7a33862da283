/**
 * The recorder's label admission, cached per label set (a tree of maps by label value): the same labels
 * always land in one series, an optional label left out is not the same set as one set to `none`, and a
 * value the guard refuses is folded the same way on every call.
 */
import { afterAll, expect, it } from 'vitest';
import { createTestTelemetry } from '../support/telemetry.ts';

const observed = createTestTelemetry();
afterAll(() => observed.shutdown());

it('one series per distinct label set, whatever the object or the order the caller builds', async () => {
  const { telemetry } = observed;
  const labels = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'm1' } as const;
  telemetry.record('genAiClientOperationDuration', 1, { ...labels });
  telemetry.record('genAiClientOperationDuration', 2, { gen_ai_request_model: 'm1', gen_ai_provider_name: 'openai', gen_ai_operation_name: 'chat' });
  telemetry.record('genAiClientOperationDuration', 3, { ...labels, gen_ai_response_model: 'none' });
  telemetry.record('genAiClientOperationDuration', 4, { ...labels, gen_ai_request_model: 'm2' });
  telemetry.record('genAiClientOperationDuration', 5, { ...labels, gen_ai_request_model: 'has space' });
  telemetry.record('genAiClientOperationDuration', 6, { ...labels, gen_ai_request_model: 'has space' });
  const points = await observed.metricPoints('gen_ai_client_operation_duration_seconds');
  const byKey = Object.fromEntries(points.map((p) => [`${p.attributes['gen_ai.request.model']}/${p.attributes['gen_ai.response.model'] ?? '-'}`, [p.value, p.sum]]));
  expect(byKey).toEqual({ 'm1/-': [2, 3], 'm1/none': [1, 3], 'm2/-': [1, 4], 'other/-': [2, 11] });
});

it('metrics without labels and counters of several labels keep their sets apart', async () => {
  const { telemetry } = observed;
  telemetry.add('workflowTaskExecutions', 1, { task_type: 'agent', operation: 'a', outcome: 'success' });
  telemetry.add('workflowTaskExecutions', 1, { task_type: 'agent', operation: 'a', outcome: 'success' });
  telemetry.add('workflowTaskExecutions', 1, { task_type: 'agent', operation: 'b', outcome: 'success' });
  telemetry.add('workflowTaskExecutions', 1, { task_type: 'tool', operation: 'a', outcome: 'success' });
  const points = await observed.metricPoints('workflow_task_executions_total');
  expect(Object.fromEntries(points.map((p) => [`${p.attributes['task_type']}/${p.attributes['operation']}`, p.value]))).toEqual({ 'agent/a': 2, 'agent/b': 1, 'tool/a': 1 });
});
