/**
 * alerts/alertmanager.yml: amtool accepts it, and routes every alert of alerts/rules by its severity:
 * critical -> pager, warning -> notify, both to the pager sink by default.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findTool, missingBinaryPolicy, readYaml, repoPath, run } from './tools.ts';

interface AlertmanagerConfig {
  route: { receiver: string; group_by: string[]; routes: Array<{ matchers: string[]; receiver: string }> };
  inhibit_rules: Array<{ source_matchers: string[]; target_matchers: string[]; equal?: string[] }>;
  receivers: Array<{ name: string; webhook_configs?: Array<{ url: string }>; pagerduty_configs?: Array<{ routing_key_file?: string }> }>;
}
interface RuleFile {
  groups: Array<{ rules: Array<{ alert: string; labels: Record<string, string> }> }>;
}

const CONFIG = 'alerts/alertmanager.yml';
/** The base URL the stack harness replaces with its own pager sink's address (see alerts/README.md). */
const PAGER_SINK_BASE_URL = 'http://pager-sink:9095';

const config = readYaml<AlertmanagerConfig>(CONFIG);
const alerts = readdirSync(repoPath('alerts/rules'))
  .filter((f) => f.endsWith('.yml'))
  .flatMap((f) => readYaml<RuleFile>(`alerts/rules/${f}`).groups.flatMap((g) => g.rules));

const amtool = await findTool('amtool');
const policy = missingBinaryPolicy(amtool);
const skipNote = policy === 'skip' ? ` [skipped: ${amtool.reason}]` : '';

describe('alertmanager.yml', () => {
  it('groups by alert and service', () => {
    expect(config.route.group_by).toEqual(expect.arrayContaining(['alertname', 'service']));
  });

  it('sends both default receivers to the pager sink, by a base URL the stack harness can replace', () => {
    const urls = Object.fromEntries(
      config.receivers.filter((r) => r.webhook_configs).map((r) => [r.name, r.webhook_configs!.map((w) => w.url)]),
    );
    expect(urls).toEqual({ pager: [`${PAGER_SINK_BASE_URL}/pages/pager`], notify: [`${PAGER_SINK_BASE_URL}/pages/notify`] });
  });

  it('defines a PagerDuty receiver reading its routing key from a file, unused until an operator routes to it', () => {
    const pagerduty = config.receivers.find((r) => r.name === 'pagerduty');
    expect(pagerduty?.pagerduty_configs?.[0]?.routing_key_file).toMatch(/^\/etc\/alertmanager\/secrets\//);
    expect(JSON.stringify(config.route)).not.toContain('"pagerduty"');
  });

  it('inhibits only between named alerts that exist, never by severity alone', () => {
    const names = new Set(alerts.map((a) => a.alert));
    expect(config.inhibit_rules.length).toBeGreaterThan(0);
    for (const rule of config.inhibit_rules) {
      for (const matcher of [...rule.source_matchers, ...rule.target_matchers]) {
        const match = /^alertname=~?"(.+)"$/.exec(matcher);
        expect(match, `${matcher}: inhibit rules name their alerts`).not.toBeNull();
        for (const name of match![1]!.split('|')) expect(names.has(name), `${name} in ${matcher}`).toBe(true);
      }
    }
  });

  it('never mutes the budget page: no inhibit rule targets ModelCostBudgetBurn (the money is spent whatever explains it)', () => {
    const targets = config.inhibit_rules.flatMap((rule) => rule.target_matchers);
    expect(targets.length).toBeGreaterThan(0);
    for (const matcher of targets) expect(new RegExp(`^(?:${/"(.+)"/.exec(matcher)![1]})$`).test('ModelCostBudgetBurn'), matcher).toBe(false);
  });

  it('gives PagerDuty a summary that is never empty (the first alert\'s, not the common one)', () => {
    const pagerduty = config.receivers.find((r) => r.name === 'pagerduty')?.pagerduty_configs?.[0] as { description?: string } | undefined;
    expect(pagerduty?.description).toContain('(index .Alerts 0).Annotations.summary');
    expect(JSON.stringify(pagerduty)).not.toContain('CommonAnnotations');
  });
});

describe(`amtool${skipNote}`, () => {
  if (policy === 'fail') {
    it('is available', () => {
      throw new Error(`CI requires amtool: ${amtool.reason}`);
    });
    return;
  }
  const bin = amtool.path ?? '';
  const skip = policy === 'skip';

  it.skipIf(skip)('check-config accepts the file', async () => {
    const result = await run(bin, ['check-config', CONFIG]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS/);
  });

  const routeCases: Array<{ labels: Record<string, string>; receiver: string; why: string }> = [
    { labels: { alertname: 'HighToolErrorRate', severity: 'critical', service: 'switchyard-engine' }, receiver: 'pager', why: 'critical pages' },
    { labels: { alertname: 'SyncExecutionTimeouts', severity: 'warning', service: 'switchyard-engine' }, receiver: 'notify', why: 'warning notifies' },
    { labels: { alertname: 'Whatever', service: 'x' }, receiver: 'notify', why: 'no severity falls back to notify' },
    { labels: { alertname: 'Whatever', severity: 'info' }, receiver: 'notify', why: 'unknown severity falls back to notify' },
    ...alerts.map((a) => ({
      labels: { alertname: a.alert, ...a.labels },
      receiver: a.labels['severity'] === 'critical' ? 'pager' : 'notify',
      why: `${a.alert} (${a.labels['severity']})`,
    })),
  ];

  for (const c of routeCases) {
    it.skipIf(skip)(`routes ${c.why} to ${c.receiver}`, async () => {
      const labels = Object.entries(c.labels).map(([k, v]) => `${k}=${v}`);
      const result = await run(bin, ['config', 'routes', 'test', `--config.file=${CONFIG}`, `--verify.receivers=${c.receiver}`, ...labels]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(c.receiver);
    });
  }
});
