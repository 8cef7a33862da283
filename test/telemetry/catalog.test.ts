import { describe, expect, it } from 'vitest';
import { ID_LABEL, METRICS, SPANS } from '../../src/telemetry/catalog.ts';
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
