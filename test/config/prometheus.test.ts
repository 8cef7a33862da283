/**
 * prometheus/: prometheus.yml and the recording rules, checked by promtool and by their contract with the
 * rest of the stack (OTLP promotion, file_sd targets the stack harness replaces, rule file layout).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { findTool, missingBinaryPolicy, readYaml, repoPath, run } from './tools.ts';

interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval: string };
  otlp: { promote_resource_attributes: string[]; translation_strategy: string };
  storage: { tsdb: { out_of_order_time_window: string }; exemplars: { max_exemplars: number } };
  rule_files: string[];
  alerting: { alertmanagers: Array<{ file_sd_configs: Array<{ files: string[] }> }> };
  scrape_configs: Array<{ job_name: string; file_sd_configs?: Array<{ files: string[] }>; static_configs?: unknown }>;
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}

const config = readYaml<PrometheusConfig>('prometheus/prometheus.yml');
const promtool = await findTool('promtool');
const promtoolPolicy = missingBinaryPolicy(promtool);
const skipNote = promtoolPolicy === 'skip' ? ` [skipped: ${promtool.reason}]` : '';

describe('prometheus.yml', () => {
  it('promotes exactly the agreed resource attributes and keeps the suffixing translation', () => {
    expect(config.otlp.promote_resource_attributes).toEqual([
      'service.instance.id',
      'service.name',
      'service.namespace',
      'service.version',
      'deployment.environment',
      'deployment.environment.name',
    ]);
    // The catalogue's Prometheus names (runtime_tool_errors_total, ..._seconds) depend on it.
    expect(config.otlp.translation_strategy).toBe('UnderscoreEscapingWithSuffixes');
    expect(config.storage.tsdb.out_of_order_time_window).toMatch(/^\d+[smh]$/);
    expect(config.storage.exemplars.max_exemplars).toBeGreaterThan(0);
  });

  it('takes every target from a file_sd file under prometheus/targets (the stack harness writes its own)', () => {
    const jobs = config.scrape_configs.map((job) => job.job_name);
    expect(jobs).toEqual(expect.arrayContaining(['prometheus', 'otel-collector', 'tempo', 'alertmanager']));
    const files = [
      ...config.scrape_configs.flatMap((job) => {
        expect(job.static_configs, `${job.job_name} must not hard-code targets`).toBeUndefined();
        expect(job.file_sd_configs, `${job.job_name} takes targets from file_sd`).toBeDefined();
        return job.file_sd_configs!.flatMap((sd) => sd.files);
      }),
      ...config.alerting.alertmanagers.flatMap((am) => am.file_sd_configs.flatMap((sd) => sd.files)),
    ];
    for (const file of files) {
      expect(file).toMatch(/^targets\/[a-z-]+\.json$/);
      const targets = JSON.parse(readFileSync(repoPath('prometheus', file), 'utf8')) as Array<{ targets: string[] }>;
      expect(targets.length, file).toBeGreaterThan(0);
      for (const group of targets) for (const target of group.targets) expect(target, file).toMatch(/^[a-z0-9.-]+:\d+$/);
    }
    // One file per job name, so the harness knows exactly which files to write.
    for (const job of jobs) expect(files).toContain(`targets/${job}.json`);
  });

  it('loads the recording rules and the alert rules relative to its own directory', () => {
    expect(config.rule_files).toEqual(['rules/*.yml', '../alerts/rules/*.yml']);
    expect(readdirSync(repoPath('prometheus/rules')).filter((f) => f.endsWith('.yml')).length).toBeGreaterThan(0);
    expect(readdirSync(repoPath('alerts/rules')).filter((f) => f.endsWith('.yml')).length).toBeGreaterThan(0);
  });
});

describe('recording rules', () => {
  const rules = readYaml<RuleFile>('prometheus/rules/switchyard.yml').groups.flatMap((g) => g.rules);

  it('follow the level:metric:operations naming and are unique', () => {
    const names = rules.map((r) => r.record);
    for (const name of names) expect(name).toMatch(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
    expect(new Set(names).size).toBe(names.length);
  });

  it('read only metric names of the telemetry catalogue (with histogram suffixes)', () => {
    const known = new Set<string>();
    for (const metric of Object.values(METRICS)) {
      known.add(metric.name);
      if (metric.kind === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) known.add(metric.name + suffix);
    }
    for (const rule of rules) {
      // Raw metric names: identifiers of the engine's families, not part of a recorded name (a:b:c).
      const used = rule.expr.match(/(?<![:\w])(runtime|workflow|http|executions?|telemetry)_[a-z0-9_]+(?![:\w])/g) ?? [];
      for (const name of used) expect(known, `${rule.record} uses ${name}`).toContain(name);
    }
  });

  it('are only used by alerts when they exist', () => {
    const recorded = new Set(rules.map((r) => r.record));
    const alerts = readYaml<RuleFile>('alerts/rules/switchyard.yml').groups.flatMap((g) => g.rules);
    for (const alert of alerts) {
      for (const name of alert.expr.match(/[a-z_]+:[a-z0-9_]+:[a-z0-9_]+/g) ?? []) {
        expect(recorded, `${alert.alert} reads ${name}`).toContain(name);
      }
    }
  });
});

describe(`promtool${skipNote}`, () => {
  if (promtoolPolicy === 'fail') {
    it('is available', () => {
      throw new Error(`CI requires promtool: ${promtool.reason}`);
    });
    return;
  }
  const bin = promtool.path ?? '';

  it.skipIf(promtoolPolicy === 'skip')('check config accepts prometheus.yml with its rule files and targets', async () => {
    const result = await run(bin, ['check', 'config', 'prometheus/prometheus.yml']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toMatch(/SUCCESS: 2 rule files found/);
  });

  it.skipIf(promtoolPolicy === 'skip')('check rules accepts the recording and alert rules (lint: all)', async () => {
    const files = [
      ...readdirSync(repoPath('prometheus/rules')).map((f) => `prometheus/rules/${f}`),
      ...readdirSync(repoPath('alerts/rules')).map((f) => `alerts/rules/${f}`),
    ].filter((f) => f.endsWith('.yml'));
    const result = await run(bin, ['check', 'rules', '--lint=all', '--lint-fatal', ...files]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it.skipIf(promtoolPolicy === 'skip')('test rules passes every alert unit test', async () => {
    const tests = readdirSync(repoPath('alerts/tests'))
      .filter((f) => f.endsWith('.test.yml'))
      .map((f) => `alerts/tests/${f}`);
    expect(tests.length).toBeGreaterThan(0);
    for (const test of tests) expect(existsSync(repoPath(test))).toBe(true);
    const result = await run(bin, ['test', 'rules', ...tests]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
  }, 120_000);
});
