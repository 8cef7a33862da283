/**
 * The real Alertmanager (the pinned version, from the stack binaries) with alerts/alertmanager.yml,
 * templated the way the stack harness does it (base URL http://pager-sink:9095 -> our pager sink), pages
 * our pager sink: a critical alert arrives at /pages/pager in Alertmanager's own webhook format, and a
 * warning is inhibited only by the alert that explains it (a named pair, on matching labels).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPagerSink, type PagerSink } from '../../src/pager-sink/server.ts';
import type { Page } from '../../src/pager-sink/store.ts';
import { writeAlertmanagerConfig } from '../../scripts/stack/layout.ts';
import { findTool, missingBinaryPolicy } from '../config/tools.ts';

const alertmanager = await findTool('alertmanager');
const policy = missingBinaryPolicy(alertmanager);
const skipNote = policy === 'skip' ? ` [skipped: ${alertmanager.reason}]` : '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function alert(alertname: string, severity: string, service: string, extra: Record<string, string> = {}) {
  return {
    labels: { alertname, severity, service, job: 'switchyard/switchyard-engine', ...extra },
    annotations: { summary: `${alertname} summary`, runbook_url: `alerts/runbooks/${alertname}.md` },
    startsAt: new Date().toISOString(),
    generatorURL: 'http://127.0.0.1:9090/graph',
  };
}

describe(`Alertmanager with alerts/alertmanager.yml pages the pager sink${skipNote}`, () => {
  if (policy === 'fail') {
    it('has the alertmanager binary', () => {
      throw new Error(`CI requires alertmanager: ${alertmanager.reason}`);
    });
    return;
  }
  const skip = policy === 'skip';
  let sink: PagerSink;
  let sinkUrl = '';
  let amUrl = '';
  let child: ChildProcess | undefined;
  let dir = '';
  const amLog: string[] = [];

  beforeAll(async () => {
    if (skip) return;
    sink = createPagerSink({ maxPages: 100, log: () => {} });
    await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
    sinkUrl = `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}`;

    dir = mkdtempSync(join(tmpdir(), 'switchyard-am-'));
    writeAlertmanagerConfig(join(dir, 'alertmanager.yml'), sinkUrl);

    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    child = spawn(
      alertmanager.path!,
      [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (chunk: Buffer) => amLog.push(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => amLog.push(chunk.toString()));
    await waitFor('alertmanager /-/ready', async () => ((await fetch(`${amUrl}/-/ready`)).ok ? true : undefined), 20_000);
  }, 30_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (sink) {
      sink.server.closeAllConnections();
      await new Promise<void>((resolve) => sink.server.close(() => resolve()));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(skip)('delivers a critical alert to /pages/pager; inhibits only the named pair it explains, on matching labels', async () => {
    const slo = { slo: 'workflow-success' };
    const res = await fetch(`${amUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        alert('HighToolErrorRate', 'critical', 'switchyard-engine'),
        // An unrelated warning of the same service: no longer muted by any critical alert.
        alert('SyncExecutionTimeouts', 'warning', 'switchyard-engine'),
        // The fast burn mutes the slow burn of the same job and SLO, not another job's.
        alert('WorkflowErrorBudgetBurnFast', 'critical', 'switchyard-engine', slo),
        alert('WorkflowErrorBudgetBurnSlow', 'warning', 'switchyard-engine', slo),
        alert('WorkflowErrorBudgetBurnSlow', 'warning', 'switchyard-engine', { ...slo, job: 'other/switchyard-engine' }),
        // Losing data on one exporter explains that exporter's full queue, not another's.
        alert('CollectorExportFailing', 'critical', 'otel-collector', { job: 'otel-collector', instance: 'c:8888', exporter: 'otlp_grpc/traces' }),
        alert('CollectorExporterQueueFilling', 'warning', 'otel-collector', { job: 'otel-collector', instance: 'c:8888', exporter: 'otlp_grpc/traces' }),
        alert('CollectorExporterQueueFilling', 'warning', 'otel-collector', { job: 'otel-collector', instance: 'c:8888', exporter: 'otlp_http/prometheus' }),
      ]),
    });
    expect(res.status, amLog.join('')).toBe(200);

    // Critical route: group_wait 10s.
    const page = await waitFor(
      'a page at /pages/pager',
      async () => {
        const body = (await (await fetch(`${sinkUrl}/pages?receiver=pager`)).json()) as { pages: Page[] };
        return body.pages.find((p) => p.payload.commonLabels['alertname'] === 'HighToolErrorRate');
      },
      25_000,
    );
    expect(page.payload.receiver).toBe('pager');
    expect(page.payload.version).toBe('4');
    expect(page.payload.status).toBe('firing');
    expect(page.payload.commonLabels).toMatchObject({ alertname: 'HighToolErrorRate', severity: 'critical', service: 'switchyard-engine' });
    expect(page.payload.alerts).toHaveLength(1);
    expect(page.payload.alerts[0]?.annotations['runbook_url']).toBe('alerts/runbooks/HighToolErrorRate.md');

    // Inhibition as Alertmanager reports it (the warning route's 30s group_wait is not worth waiting for here).
    const alerts = (await (await fetch(`${amUrl}/api/v2/alerts`)).json()) as Array<{
      labels: Record<string, string>;
      status: { state: string; inhibitedBy: string[] };
    }>;
    const state = (name: string, labels: Record<string, string> = {}) => alerts
      .find((a) => a.labels['alertname'] === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v))?.status.state;
    expect(state('HighToolErrorRate')).toBe('active');
    expect(state('SyncExecutionTimeouts')).toBe('active');
    expect(state('WorkflowErrorBudgetBurnSlow', { job: 'switchyard/switchyard-engine' })).toBe('suppressed');
    expect(state('WorkflowErrorBudgetBurnSlow', { job: 'other/switchyard-engine' })).toBe('active');
    expect(state('CollectorExporterQueueFilling', { exporter: 'otlp_grpc/traces' })).toBe('suppressed');
    expect(state('CollectorExporterQueueFilling', { exporter: 'otlp_http/prometheus' })).toBe('active');
  }, 40_000);
});
