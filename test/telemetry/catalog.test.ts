import { describe, expect, it } from 'vitest';
import { ID_LABEL, METRICS, MODEL_LABEL, SPANS, prometheusLabelOf, type MetricSpec } from '../../src/telemetry/catalog.ts';
import { FOLDED, LabelGuard, MAX_DISTINCT_IDS } from '../../src/telemetry/labels.ts';
import { createTestTelemetry } from '../support/telemetry.ts';

/** Prometheus's OTLP translation (UnderscoreEscapingWithSuffixes), for the names our instruments use. */
function prometheusName(otelName: string, unit: string, kind: string): string {
  const suffix: Record<string, string> = { s: 'seconds', By: 'bytes', '1': 'ratio' };
  let name = otelName.replace(/[^a-zA-Z0-9_:]/g, '_');
  const unitSuffix = unit.startsWith('{') ? '' : suffix[unit] ?? unit;
  if (unitSuffix && !name.endsWith(`_${unitSuffix}`)) name += `_${unitSuffix}`;
  if (kind === 'counter' && !name.endsWith('_total')) name += '_total';
  return name;
}

describe('the catalogue', () => {
  it.each(Object.entries(METRICS))('%s: otelName + unit translate to the contract name', (_key, spec) => {
    expect(prometheusName(spec.otelName, spec.unit, spec.kind)).toBe(spec.name);
  });

  it('has unique names, descriptions, and buckets exactly on histograms', () => {
    const specs = Object.values(METRICS);
    expect(new Set(specs.map((s) => s.name)).size).toBe(specs.length);
    for (const spec of specs) {
      expect(spec.description.length).toBeGreaterThan(10);
      expect('buckets' in spec).toBe(spec.kind === 'histogram');
      for (const label of Object.keys(spec.labels)) expect(label).toMatch(/^[a-z_]+$/);
    }
    expect(Object.values(SPANS).map((s) => s.name)).toEqual(expect.arrayContaining([
      'workflow.execute', 'workflow.execute_sync', 'workflow.wait_completion', 'task.execute', 'task.execute_sync',
      'agent.prepare', 'agent.execute_sync', 'runtime.execute_tool',
    ]));
  });
});

describe('labels from dotted attributes', () => {
  it.each(Object.entries(METRICS).filter(([, spec]) => 'attributes' in spec))('%s: each attribute becomes its label in Prometheus', (_key, spec: MetricSpec) => {
    for (const [label, attribute] of Object.entries(spec.attributes!)) {
      expect(Object.keys(spec.labels)).toContain(label);
      expect(prometheusLabelOf(attribute.name)).toBe(label);
    }
  });

  it('the GenAI metrics carry the semantic conventions\' attribute names, shown by Prometheus with underscores', () => {
    const shown = (spec: MetricSpec) => Object.values(spec.attributes!).map((a) => `${a.name} -> ${prometheusLabelOf(a.name)}`).sort();
    expect(shown(METRICS.genAiClientTokenUsage)).toEqual([
      'gen_ai.operation.name -> gen_ai_operation_name', 'gen_ai.provider.name -> gen_ai_provider_name', 'gen_ai.request.model -> gen_ai_request_model',
      'gen_ai.response.model -> gen_ai_response_model', 'gen_ai.token.type -> gen_ai_token_type',
    ]);
    expect(shown(METRICS.genAiClientOperationDuration)).toContain('error.type -> error_type');
    expect(prometheusLabelOf('gen_ai.token.type')).toBe('gen_ai_token_type');
  });

  it('the recorder exports the attribute names, guards their values, and leaves unknown optional ones off', async () => {
    const observed = createTestTelemetry();
    try {
      observed.telemetry.record('genAiClientOperationDuration', 1, {
        gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'has space', gen_ai_response_model: 'gpt-4o-2024', error_type: 'model_http_500',
      });
      observed.telemetry.record('genAiClientOperationDuration', 1, {
        gen_ai_operation_name: 'chat', gen_ai_provider_name: 'not-a-provider' as 'openai', gen_ai_request_model: 'gpt-4o',
      });
      const points = (await observed.metricPoints('gen_ai_client_operation_duration_seconds')).map((p) => p.attributes);
      expect(points).toEqual([
        { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': FOLDED, 'gen_ai.response.model': 'gpt-4o-2024', 'error.type': 'model_http_500' },
        { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': FOLDED, 'gen_ai.request.model': 'gpt-4o' },
      ]);
    } finally {
      await observed.shutdown();
    }
  });
});

describe('label guards', () => {
  it('fold values outside an enum, malformed ids, and ids beyond the limit', () => {
    const outcome = new LabelGuard(['success', 'error']);
    expect(outcome.admit('success')).toBe('success');
    expect(outcome.admit('weird')).toBe(FOLDED);
    const id = new LabelGuard(ID_LABEL);
    expect(id.admit('lookup_customer')).toBe('lookup_customer');
    expect(id.admit('has space')).toBe(FOLDED);
    expect(id.admit('x'.repeat(65))).toBe(FOLDED);
    for (let i = 0; i < MAX_DISTINCT_IDS * 3; i++) id.admit(`tool_${i}`);
    expect(id.admit('tool_0')).toBe('tool_0');
    expect(id.admit(`tool_${MAX_DISTINCT_IDS * 2}`)).toBe(FOLDED);
  });

  it('keep model names as they are, `:` and `/` included (llama3:8b, org/model), on every model label', async () => {
    const model = new LabelGuard(MODEL_LABEL);
    for (const name of ['llama3:8b', 'meta-llama/Llama-3.1-8B-Instruct', 'accounts/fireworks/models/llama-v3p1-70b-instruct', 'gpt-4o-2024-08-06']) {
      expect(model.admit(name)).toBe(name);
    }
    expect(model.admit('has space')).toBe(FOLDED);
    expect(model.admit('x'.repeat(129))).toBe(FOLDED);
    expect(new LabelGuard(ID_LABEL).admit('llama3:8b'), 'an id label still refuses them').toBe(FOLDED);
    const modelLabels = Object.values(METRICS).flatMap((spec: MetricSpec) => Object.entries(spec.labels).filter(([label]) => /_model$/.test(label)).map(([label, allowed]) => [spec.name, label, allowed]));
    expect(modelLabels.length).toBeGreaterThan(0);
    for (const [, , allowed] of modelLabels) expect(allowed).toBe(MODEL_LABEL);
    const observed = createTestTelemetry();
    try {
      observed.telemetry.record('genAiClientOperationDuration', 1, {
        gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'llama3:8b', gen_ai_response_model: 'org/model',
      });
      observed.telemetry.add('agentModelTokens', 5, { gen_ai_agent_name: 'a', workflow_id: 'none', gen_ai_request_model: 'llama3:8b', gen_ai_token_type: 'input' });
      const [duration] = await observed.metricPoints('gen_ai_client_operation_duration_seconds');
      expect(duration!.attributes).toMatchObject({ 'gen_ai.request.model': 'llama3:8b', 'gen_ai.response.model': 'org/model' });
      const [tokens] = await observed.metricPoints('agent_model_tokens_total');
      expect(tokens!.attributes['gen_ai.request.model']).toBe('llama3:8b');
    } finally {
      await observed.shutdown();
    }
  });

  it('keep ten thousand distinct ids within each metric\'s series limit', async () => {
    const observed = createTestTelemetry();
    for (let i = 0; i < 10_000; i++) {
      observed.telemetry.add('toolErrors', 1, { tool_id: `tool_${i}`, error_kind: 'parse' });
      observed.telemetry.record('toolExecuteSeconds', 0.01, { tool_id: `tool_${i}`, outcome: 'error' });
      observed.telemetry.add('workflowSyncPolls', 1, { workflow_id: `wf_${i}`, outcome: 'completed' });
    }
    for (const name of ['runtime_tool_errors_total', 'runtime_tool_execute_seconds', 'workflow_sync_polls_total']) {
      const points = await observed.metricPoints(name);
      expect(points.length).toBeLessThanOrEqual(MAX_DISTINCT_IDS + 1);
      expect(points.reduce((sum, p) => sum + p.value, 0)).toBe(10_000);
      expect(points.some((p) => Object.values(p.attributes).includes(FOLDED))).toBe(true);
    }
    await observed.shutdown();
  });
});
