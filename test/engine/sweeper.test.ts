import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { startTestEngine, TICKET, eventually, toolPids } from '../support/engine.ts';
import { ENGINE_ARGS } from '../support/engine-process.ts';

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the stale sweeper', () => {
  it('finalizes a run whose engine was killed (SIGKILL), exactly once, naming its last task', async () => {
    const dbPath = join(dir, 'killed.db');
    // A real engine process, killed mid-run while its tool hangs.
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: dbPath, OTEL_SDK_DISABLED: 'true', SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_HEARTBEAT_MS: '200', SWITCHYARD_STALE_AFTER_MS: '1000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk;
        const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.on('exit', (code) => reject(new Error(`engine exited early with ${code}: ${out}`)));
    });
    const started = await fetch(`${url}/api/v1/workflows/support_triage/executions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { ...TICKET, fault: 'hang' } }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const store = new SqliteStore(dbPath);
    await eventually(() => store.getExecution(started.id), (r) => r?.lastStartedTask === 'lookup');
    // The engine's tool processes run in their own process groups: SIGKILL of the engine alone leaves
    // them (in a container the runtime kills the whole namespace). Note them to clean up after the test.
    const tools = await eventually(async () => toolPids(child.pid!), (pids) => pids.length > 0);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    for (const pid of tools) killGroup(pid);
    expect((await store.getExecution(started.id))!.status).toBe('running');

    // Two engines sharing the database sweep at once: only one may finalize and count the run.
    const a = await startTestEngine({ dbPath, engine: { instanceId: 'a', staleAfterMs: 1_000, heartbeatMs: 200 } });
    const b = await startTestEngine({ dbPath, engine: { instanceId: 'b', staleAfterMs: 1_000, heartbeatMs: 200 } });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const [sweptA, sweptB] = await Promise.all([a.engine.sweepStale(), b.engine.sweepStale()]);
      expect(sweptA + sweptB).toBe(1);
      expect(await a.engine.sweepStale()).toBe(0);

      const record = (await store.getExecution(started.id))!;
      expect(record).toMatchObject({ status: 'failed', finalizationPath: 'stale_swept', lastStartedTask: 'lookup', lastCompletedTask: 'classify' });
      expect(record).toMatchObject({ previousStatus: 'running', error: { code: 'stale', message: expect.any(String) } });
      expect(record.error).not.toHaveProperty('previous_status');

      const counted = [...(await a.observed.metricPoints('workflow_executions_swept_total')), ...(await b.observed.metricPoints('workflow_executions_swept_total'))];
      expect(counted.reduce((sum, p) => sum + p.value, 0)).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await store.close();
    }
  }, 60_000);

  // Margins for a loaded machine (a 2-core runner beside other work): the owner heartbeats every 100 ms
  // and is judged stale after 1.5 s, 15 heartbeats; the run lasts 2.5 s, past the stale window.
  it('never sweeps a live run whose engine keeps its heartbeat (swept by another engine on the same database)', async () => {
    const dbPath = join(dir, 'live.db');
    const owner = await startTestEngine({ dbPath, engine: { instanceId: 'owner', staleAfterMs: 1_500, heartbeatMs: 100 } });
    const sweeper = await startTestEngine({ dbPath, engine: { instanceId: 'sweeper', staleAfterMs: 1_500, heartbeatMs: 100 } });
    try {
      owner.engine.startBackgroundWork();
      const started = await owner.post('/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'slow', delay_ms: 2_500 } });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await sweeper.engine.sweepStale()).toBe(0);
      const done = await eventually(() => owner.engine.get(started.body.id), (r) => r?.status !== 'running' && r?.status !== 'pending');
      // The error is in the comparison so that a failure says why the run failed.
      expect({ status: done?.status, path: done?.finalizationPath, error: done?.error }).toEqual({ status: 'success', path: 'completed', error: null });
    } finally {
      await owner.close();
      await sweeper.close();
    }
  }, 60_000);

  it('never sweeps its own live run, even when its own heartbeat is stale (a stalled event loop whose sweep timer fires first)', async () => {
    // No background work: no heartbeat is written while the run lasts, as when the owner's event loop was
    // blocked past the stale window. The owner is alive (it is the one sweeping), so its run is too.
    const t = await startTestEngine({ engine: { staleAfterMs: 300, heartbeatMs: 60_000 } });
    try {
      const started = await t.post('/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'slow', delay_ms: 1_500 } });
      await eventually(() => t.engine.get(started.body.id), (r) => r?.status === 'running');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await t.engine.sweepStale()).toBe(0);
      const done = await eventually(() => t.engine.get(started.body.id), (r) => r?.status !== 'running' && r?.status !== 'pending');
      expect({ status: done?.status, path: done?.finalizationPath, error: done?.error }).toEqual({ status: 'success', path: 'completed', error: null });
    } finally {
      await t.close();
    }
  }, 60_000);
});
