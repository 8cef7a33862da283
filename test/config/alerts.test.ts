/**
 * alerts/: every alert is documented (labels, annotations, a runbook that exists and has the three
 * sections), and every alert has promtool tests that show it firing and staying quiet.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readYaml, repoPath } from './tools.ts';

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: AlertRule[] }>;
}
interface PromtoolTestFile {
  rule_files: string[];
  group_eval_order?: string[];
  tests: Array<{
    name?: string;
    alert_rule_test?: Array<{ alertname: string; eval_time: string; exp_alerts?: unknown[] }>;
  }>;
}

const ruleFiles = readdirSync(repoPath('alerts/rules')).filter((f) => f.endsWith('.yml'));
const alerts = ruleFiles.flatMap((f) => readYaml<RuleFile>(`alerts/rules/${f}`).groups.flatMap((g) => g.rules));
const testFiles = readdirSync(repoPath('alerts/tests')).filter((f) => f.endsWith('.test.yml'));
const cases = testFiles.flatMap((f) =>
  readYaml<PromtoolTestFile>(`alerts/tests/${f}`).tests.flatMap((t) => t.alert_rule_test ?? []),
);

describe('alert rules', () => {
  it('exist, with unique CamelCase names', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    const names = alerts.map((a) => a.alert);
    for (const name of names) expect(name).toMatch(/^[A-Z][a-zA-Z0-9]+$/);
    expect(new Set(names).size).toBe(names.length);
  });

  it('include the alerts the monitoring plan and the issue ask for', () => {
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'HighToolErrorRate',
        'ToolTimeoutSpike',
        'SlowToolExecution',
        'ExecutionsStuck',
        'ExecutionsSweptAsStale',
        'SyncExecutionTimeouts',
        'EngineMetricsAbsent',
        'CollectorRefusingData',
        'CollectorDroppingData',
        'WorkflowErrorBudgetBurnFast',
        'WorkflowErrorBudgetBurnSlow',
        'ModelErrorRateHigh',
        'ModelCostBudgetBurn',
        'AgentIterationLimitReached',
      ]),
    );
  });

  for (const alert of alerts) {
    describe(alert.alert, () => {
      it('has severity, service, summary, description and a runbook_url whose file exists', () => {
        expect(alert.labels?.['severity']).toMatch(/^(critical|warning)$/);
        expect(alert.labels?.['service']).toMatch(/^[a-z-]+$/);
        expect(alert.annotations?.['summary']?.length).toBeGreaterThan(10);
        expect(alert.annotations?.['description']?.length).toBeGreaterThan(30);
        const runbook = alert.annotations?.['runbook_url'];
        expect(runbook).toBe(`alerts/runbooks/${alert.alert}.md`);
        expect(existsSync(repoPath(runbook!))).toBe(true);
      });

      it('has a runbook that says what it means, how to look and what to do', () => {
        const text = readFileSync(repoPath(`alerts/runbooks/${alert.alert}.md`), 'utf8');
        expect(text.startsWith(`# ${alert.alert}\n`)).toBe(true);
        for (const section of ['## What it means', '## How to look', '## What to do']) expect(text).toContain(section);
        expect(text).toContain(`**Severity:** ${alert.labels?.['severity']}`);
      });

      it('has an explicit `for` duration (the stack harness shortens these)', () => {
        expect(alert.for).toMatch(/^\d+[smh]$/);
      });

      it('has a promtool test case where it fires and one where it stays quiet', () => {
        const own = cases.filter((c) => c.alertname === alert.alert);
        expect(own.some((c) => (c.exp_alerts ?? []).length > 0), 'a case with exp_alerts').toBe(true);
        expect(own.some((c) => (c.exp_alerts ?? []).length === 0), 'a case with no alert').toBe(true);
      });
    });
  }

  it('leave no runbook without an alert', () => {
    const names = new Set(alerts.map((a) => `${a.alert}.md`));
    for (const file of readdirSync(repoPath('alerts/runbooks'))) expect(names, file).toContain(file);
  });

  it('are tested by files that load both the recording rules and the alert rules', () => {
    for (const file of testFiles) {
      const test = readYaml<PromtoolTestFile>(`alerts/tests/${file}`);
      expect(test.rule_files, file).toEqual(['../../prometheus/rules/switchyard.yml', '../rules/switchyard.yml']);
    }
  });

  it('are tested with every recording group evaluated before the alert groups that read it', () => {
    // Without group_eval_order promtool orders groups at random and alert timings become flaky.
    const recording = readYaml<RuleFile>('prometheus/rules/switchyard.yml').groups.map((g) => g.name);
    const alerting = ruleFiles.flatMap((f) => readYaml<RuleFile>(`alerts/rules/${f}`).groups.map((g) => g.name));
    for (const file of testFiles) {
      expect(readYaml<PromtoolTestFile>(`alerts/tests/${file}`).group_eval_order, file).toEqual([...recording, ...alerting]);
    }
  });
});
