/**
 * The loopback layout of scripts/stack/layout.ts: the committed prometheus.yml, copied unchanged,
 * runs on the real Prometheus with harness-written targets, loads every rule group, and translates OTLP
 * metric names as the telemetry catalogue says. Shortened alert rules stay valid and keep their names.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { overrideAlertRules, writePrometheusLayout } from '../../scripts/stack/layout.ts';
import { findTool, missingBinaryPolicy, repoPath, run } from './tools.ts';

interface RuleFile {
  groups: Array<{ rules: Array<{ alert: string; for: string; labels: unknown; annotations: unknown; expr: string }> }>;
}

const rulesText = readFileSync(repoPath('alerts/rules/switchyard.yml'), 'utf8');

describe('overrideAlertRules', () => {
  const shortened = overrideAlertRules(rulesText, { alertFor: '5s', stuckThreshold: 0.25 });
  const before = (parse(rulesText) as RuleFile).groups.flatMap((g) => g.rules);
  const after = (parse(shortened) as RuleFile).groups.flatMap((g) => g.rules);

  it('shortens every `for` and the ExecutionsStuck threshold, and nothing else', () => {
    expect(after.map((r) => r.for)).toEqual(before.map(() => '5s'));
    expect(after.map((r) => [r.alert, r.labels, r.annotations])).toEqual(before.map((r) => [r.alert, r.labels, r.annotations]));
    const stuck = after.find((r) => r.alert === 'ExecutionsStuck');
    expect(stuck?.expr).toContain('executions_deadline_used_ratio) > 0.25');
    expect(after.filter((r) => r.alert !== 'ExecutionsStuck').map((r) => r.expr)).toEqual(
      before.filter((r) => r.alert !== 'ExecutionsStuck').map((r) => r.expr),
    );
  });

  it('rejects a duration Prometheus would not accept', () => {
    expect(() => overrideAlertRules(rulesText, { alertFor: '5 seconds' })).toThrow(/duration/);
  });
});

const promtool = await findTool('promtool');
const prometheus = await findTool('prometheus');
const policy = missingBinaryPolicy(prometheus.path ? promtool : prometheus);
const skip = policy === 'skip';
const skipNote = skip ? ` [skipped: ${prometheus.reason ?? promtool.reason}]` : '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe(`real Prometheus on the loopback layout${skipNote}`, () => {
  if (policy === 'fail') {
    it('has prometheus and promtool', () => {
      throw new Error(`CI requires prometheus and promtool: ${prometheus.reason ?? promtool.reason}`);
    });
    return;
  }
  let dir = '';
  let base = '';
  let configFile = '';
  let child: ChildProcess | undefined;
  const log: string[] = [];

  beforeAll(async () => {
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), 'switchyard-prom-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // Nothing listens on port 9 (discard): those targets are simply down.
    ({ configFile } = writePrometheusLayout(
      dir,
      {
        prometheus: [`127.0.0.1:${port}`],
        'otel-collector': ['127.0.0.1:9'],
        tempo: ['127.0.0.1:9'],
        alertmanager: ['127.0.0.1:9'],
        'pager-sink': ['127.0.0.1:9'],
      },
      { alertFor: '10s', stuckThreshold: 0.5 },
    ));
    child = spawn(
      prometheus.path!,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-otlp-receiver',
        '--web.enable-remote-write-receiver',
        '--enable-feature=exemplar-storage',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (c: Buffer) => log.push(c.toString()));
    child.stderr?.on('data', (c: Buffer) => log.push(c.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`prometheus not ready:\n${log.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 30_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(skip)('promtool accepts the layout with the shortened alert rules', async () => {
    const result = await run(promtool.path!, ['check', 'config', configFile]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(readdirSync(join(dir, 'alerts', 'rules'))).toEqual(['switchyard.yml']);
  });

  it.skipIf(skip)('loads every rule group and takes targets and the Alertmanager from the harness files', { timeout: 30_000 }, async () => {
    const rules = (await (await fetch(`${base}/api/v1/rules`)).json()) as { data: { groups: Array<{ name: string }> } };
    expect(rules.data.groups.map((g) => g.name).toSorted()).toEqual([
      'switchyard.agents.alerts',
      'switchyard.agents.rules',
      'switchyard.executions.alerts',
      'switchyard.http-exec.rules',
      'switchyard.pipeline.alerts',
      'switchyard.runtime-tools.alerts',
      'switchyard.runtime-tools.rules',
      'switchyard.workflow-slo.alerts',
      'switchyard.workflow-slo.rules',
    ]);
    // Discovery results reach the scrape and notifier managers a few seconds after start.
    type Targets = { data: { activeTargets: Array<{ labels: { job: string }; scrapeUrl: string }> } };
    type Alertmanagers = { data: { activeAlertmanagers: Array<{ url: string }> } };
    let targets: Targets | undefined;
    let ams: Alertmanagers | undefined;
    for (let i = 0; i < 60; i++) {
      targets = (await (await fetch(`${base}/api/v1/targets`)).json()) as Targets;
      ams = (await (await fetch(`${base}/api/v1/alertmanagers`)).json()) as Alertmanagers;
      if (targets.data.activeTargets.length >= 5 && ams.data.activeAlertmanagers.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const byJob = Object.fromEntries(targets!.data.activeTargets.map((t) => [t.labels.job, t.scrapeUrl]));
    expect(byJob).toEqual({
      prometheus: `${base}/metrics`,
      'otel-collector': 'http://127.0.0.1:9/metrics',
      tempo: 'http://127.0.0.1:9/metrics',
      alertmanager: 'http://127.0.0.1:9/metrics',
      'pager-sink': 'http://127.0.0.1:9/metrics',
    });
    expect(ams!.data.activeAlertmanagers.map((a) => a.url)).toEqual(['http://127.0.0.1:9/api/v2/alerts']);
  });

  it.skipIf(skip)('names OTLP metrics as the catalogue says, with job/instance, promoted attributes, le="30" and exemplars', async () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    const start = now - 60_000_000_000n;
    const attrs = (o: Record<string, string>) => Object.entries(o).map(([key, v]) => ({ key, value: { stringValue: v } }));
    const errors = METRICS.toolErrors;
    const execute = METRICS.toolExecuteSeconds;
    const body = {
      resourceMetrics: [
        {
          resource: {
            attributes: attrs({
              'service.name': 'switchyard-engine',
              'service.namespace': 'switchyard',
              'service.instance.id': 'engine-test',
              'deployment.environment.name': 'test',
              'telemetry.sdk.language': 'nodejs',
            }),
          },
          scopeMetrics: [
            {
              scope: { name: 'switchyard' },
              metrics: [
                {
                  name: errors.otelName,
                  unit: errors.unit,
                  sum: {
                    aggregationTemporality: 2,
                    isMonotonic: true,
                    dataPoints: [{ attributes: attrs({ tool_id: 'flaky', error_kind: 'wait' }), startTimeUnixNano: `${start}`, timeUnixNano: `${now}`, asInt: '5' }],
                  },
                },
                {
                  name: execute.otelName,
                  unit: execute.unit,
                  histogram: {
                    aggregationTemporality: 2,
                    dataPoints: [
                      {
                        attributes: attrs({ tool_id: 'flaky', outcome: 'success' }),
                        startTimeUnixNano: `${start}`,
                        timeUnixNano: `${now}`,
                        count: '4',
                        sum: 40,
                        explicitBounds: [10, 30],
                        bucketCounts: ['1', '2', '1'],
                        exemplars: [{ timeUnixNano: `${now}`, asDouble: 25, traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174' }],
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(`${base}/api/v1/otlp/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status, await res.text()).toBe(200);

    const query = async (q: string) =>
      ((await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
    const [counter] = await query(errors.name);
    expect(counter?.metric).toMatchObject({
      job: 'switchyard/switchyard-engine',
      instance: 'engine-test',
      service_name: 'switchyard-engine',
      service_namespace: 'switchyard',
      service_instance_id: 'engine-test',
      deployment_environment_name: 'test',
      tool_id: 'flaky',
      error_kind: 'wait',
    });
    expect(counter?.metric['telemetry_sdk_language']).toBeUndefined();
    const buckets = await query(`${execute.name}_bucket`);
    expect(buckets.map((b) => b.metric['le']).toSorted()).toEqual(['+Inf', '10', '30']);
    expect(await query(`${execute.name}_bucket{le=~\`30(\\.0)?\`}`)).toHaveLength(1);
    const [info] = await query('target_info');
    expect(info?.metric['telemetry_sdk_language']).toBe('nodejs');
    // The engine is reporting: the absence alert's expression is empty.
    expect(await query('absent_over_time({__name__=~"target_info|executions_in_flight|executions_oldest_running_age_seconds", job="switchyard/switchyard-engine"}[3m])')).toEqual([]);

    const t = Math.floor(Date.now() / 1000);
    const exemplars = (await (
      await fetch(`${base}/api/v1/query_exemplars?query=${encodeURIComponent(`${execute.name}_bucket`)}&start=${t - 300}&end=${t + 60}`)
    ).json()) as { data: Array<{ exemplars: Array<{ labels: Record<string, string> }> }> };
    expect(exemplars.data.flatMap((s) => s.exemplars.map((e) => e.labels['trace_id']))).toContain('5b8efff798038103d269b633813fc60c');
  });
});
