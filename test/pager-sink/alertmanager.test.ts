/**
 * The real Alertmanager (the pinned version, from the stack binaries) with alerts/alertmanager.yml,
 * templated the way the stack harness does it (base URL http://pager-sink:9095 -> our pager sink), pages
 * our pager sink: a critical alert arrives at /pages/pager in Alertmanager's own webhook format, and a
 * warning of the same service is inhibited while a warning of another service is not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPagerSink, type PagerSink } from '../../src/pager-sink/server.ts';
import type { Page } from '../../src/pager-sink/store.ts';
import { writeAlertmanagerConfig } from '../config/stack-layout.ts';
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

function alert(alertname: string, severity: string, service: string) {
  return {
    labels: { alertname, severity, service, job: 'switchyard/switchyard-engine' },
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

  it.skipIf(skip)('delivers a critical alert to /pages/pager and inhibits the same service\'s warnings', async () => {
    const res = await fetch(`${amUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        alert('HighToolErrorRate', 'critical', 'switchyard-engine'),
        alert('SyncExecutionTimeouts', 'warning', 'switchyard-engine'),
        alert('CollectorExportFailing', 'warning', 'otel-collector'),
      ]),
    });
    expect(res.status, amLog.join('')).toBe(200);

    // Critical route: group_wait 10s.
    const page = await waitFor(
      'a page at /pages/pager',
      async () => {
        const body = (await (await fetch(`${sinkUrl}/pages?receiver=pager`)).json()) as { pages: Page[] };
        return body.pages[0];
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
    const state = (name: string) => alerts.find((a) => a.labels['alertname'] === name)?.status;
    expect(state('HighToolErrorRate')?.state).toBe('active');
    expect(state('SyncExecutionTimeouts')?.state).toBe('suppressed');
    expect(state('SyncExecutionTimeouts')?.inhibitedBy.length).toBe(1);
    expect(state('CollectorExportFailing')?.state).toBe('active');
  }, 40_000);
});
