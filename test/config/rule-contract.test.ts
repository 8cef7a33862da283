/**
 * Alert and recording rule expressions against the telemetry catalogue, like the dashboard lint: every
 * metric a rule reads is a catalogue metric (with its histogram series), a metric of the stack itself
 * (src/dashboards/external.ts), a recording rule or ALERTS; every label matcher on a catalogue metric names
 * one of its labels (or job, instance, le) with a value its enumeration allows; every `by`/`on` label is a
 * label some catalogue metric has. A rename in the catalogue then breaks this test, not a pager.
 */
import { describe, expect, it } from 'vitest';
import { externalSeriesNames } from '../../src/dashboards/external.ts';
import { METRICS, type MetricSpec } from '../../src/telemetry/catalog.ts';
import { readYaml } from './tools.ts';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
const rulesOf = (file: string) => readYaml<{ groups: { rules: Rule[] }[] }>(file).groups.flatMap((g) => g.rules);
const rules = [...rulesOf('prometheus/rules/switchyard.yml'), ...rulesOf('alerts/rules/switchyard.yml')];

/** Series name -> the catalogue metric it belongs to. */
const CATALOGUE = new Map<string, MetricSpec>();
for (const spec of Object.values(METRICS) as MetricSpec[]) {
  for (const name of spec.kind === 'histogram' ? [`${spec.name}_bucket`, `${spec.name}_sum`, `${spec.name}_count`] : [spec.name]) CATALOGUE.set(name, spec);
}
const EXTERNAL = new Set(externalSeriesNames());
const RECORDED = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
/** Labels every series has (target labels from the OTLP resource). */
const COMMON_LABELS = new Set(['job', 'instance']);
const ALL_CATALOGUE_LABELS = new Set([...COMMON_LABELS, 'le', ...[...CATALOGUE.values()].flatMap((spec) => Object.keys(spec.labels))]);
/** PromQL words that look like metric names. */
const KEYWORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'group', 'rate', 'increase', 'irate', 'histogram_quantile', 'absent', 'absent_over_time',
  'max_over_time', 'min_over_time', 'label_replace', 'vector', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
  'and', 'or', 'unless', 'offset', 'bool', 'timestamp',
]);

/** Problems of one expression (empty when it keeps the contract). */
export function ruleProblems(expr: string): string[] {
  const problems: string[] = [];
  // Strings and range durations out of the way first, keeping matcher blocks intact.
  const code = expr.replace(/\[[^\]]*\]/g, '');
  const hasExternal = [...code.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].some((m) => EXTERNAL.has(m[0]));
  for (const match of code.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?/g)) {
    const [, name, , matchers] = match;
    const before = code.slice(0, match.index).trimEnd();
    // Skip what is not a metric: keywords, label lists of by/on/without, strings, numbers, durations.
    if (KEYWORDS.has(name!) || /[("'`,]$/.test(before) && /\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*$/.test(before)) continue;
    if (/["'`]$/.test(before) || /\d$/.test(before)) continue;
    const inString = (code.slice(0, match.index).match(/"/g) ?? []).length % 2 === 1;
    if (inString) continue;
    if (name === 'ALERTS' || RECORDED.has(name!) || EXTERNAL.has(name!)) continue;
    const spec = CATALOGUE.get(name!);
    if (!spec) {
      problems.push(`${name}: not a catalogue metric, a stack metric or a recording rule`);
      continue;
    }
    for (const matcher of (matchers ?? '').split(',').map((m) => m.trim()).filter(Boolean)) {
      const parts = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"$/.exec(matcher);
      if (!parts) {
        problems.push(`${name}: cannot read matcher ${matcher}`);
        continue;
      }
      const [, label, op, value] = parts;
      const allowed = spec.labels[label!];
      if (!allowed && !COMMON_LABELS.has(label!) && !(label === 'le' && name!.endsWith('_bucket'))) {
        problems.push(`${name}: no label ${label}`);
        continue;
      }
      if (Array.isArray(allowed) && (op === '=' || op === '!=' || /^[a-z_|]+$/.test(value!))) {
        for (const v of op === '=' || op === '!=' ? [value!] : value!.split('|')) {
          if (!(allowed as readonly string[]).includes(v)) problems.push(`${name}: ${label}="${v}" is not one of ${allowed.join('|')}`);
        }
      }
    }
  }
  if (!hasExternal) {
    for (const list of code.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)) {
      for (const label of list[1]!.split(',').map((l) => l.trim()).filter(Boolean)) {
        if (!ALL_CATALOGUE_LABELS.has(label)) problems.push(`by/on label ${label} is on no catalogue metric`);
      }
    }
  }
  return problems;
}

describe('alert and recording rules keep the telemetry contract', () => {
  it('reads rules from both files', () => {
    expect(rules.filter((r) => r.alert).length).toBeGreaterThanOrEqual(15);
    expect(RECORDED.size).toBeGreaterThanOrEqual(20);
  });

  for (const rule of rules) {
    it(`${rule.alert ?? rule.record} names only catalogue metrics and labels`, () => {
      expect(ruleProblems(rule.expr)).toEqual([]);
    });
  }

  it('catches a wrong metric, a wrong label, a wrong enum value and a wrong grouping label (the check is real)', () => {
    expect(ruleProblems('sum(rate(runtime_tool_error_total[5m]))')).toEqual([expect.stringContaining('runtime_tool_error_total')]);
    expect(ruleProblems('sum(rate(runtime_tool_errors_total{errorkind="timeout"}[5m]))')).toEqual([expect.stringContaining('no label errorkind')]);
    expect(ruleProblems('sum(rate(runtime_tool_errors_total{error_kind="timeouts"}[5m]))')).toEqual([expect.stringContaining('error_kind="timeouts"')]);
    expect(ruleProblems('sum(rate(workflow_executions_completed_total{status=~"failed|cancelled"}[5m]))')).toEqual([expect.stringContaining('status="cancelled"')]);
    expect(ruleProblems('sum by (job, tool) (rate(runtime_tool_errors_total[5m]))')).toEqual([expect.stringContaining('label tool ')]);
    expect(ruleProblems('sum by (job, tool_id) (rate(runtime_tool_errors_total{error_kind!="timeout"}[5m]))')).toEqual([]);
  });
});
