import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/engine.ts';
import { call, startEngineProcess, type EngineProcess } from '../support/engine-process.ts';

/**
 * "Cancel means stopped", proven with two real engine processes sharing one SQLite file: once a cancel is
 * acknowledged, the run starts and records no further task, whatever raced it (a resume on either engine,
 * its own progress on the other engine, a sweep while its owner was stalled).
 */
const HEARTBEAT_MS = 100;
/** Long enough for the owner to notice, at its next store write or heartbeat, that the run is not its own any more. */
const SETTLE_MS = HEARTBEAT_MS * 5;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-races-'));
/** Every tool call that really ran, as "<execution id> <step>" (test/fixtures/races/tools/journal.ts). */
const journal = join(dir, 'journal.log');
let a: EngineProcess;
let b: EngineProcess;

beforeAll(async () => {
  writeFileSync(journal, '');
  const env = {
    SWITCHYARD_PROJECT_DIR: 'test/fixtures/races', RACE_JOURNAL: journal, SWITCHYARD_DB: join(dir, 'shared.db'), OTEL_SDK_DISABLED: 'true', SWITCHYARD_LOG_LEVEL: 'info',
    // Stale after 3 s (30 heartbeats): on a loaded 2-core machine an engine's event loop can miss a second of
    // heartbeats (CPU starvation, a SQLite lock the other engine holds) and must not be swept for it.
    SWITCHYARD_HEARTBEAT_MS: String(HEARTBEAT_MS), SWITCHYARD_STALE_AFTER_MS: '3000', SWITCHYARD_SWEEP_INTERVAL_MS: '200',
    // The journal tool appends to a file outside its own directory, which the tool sandbox forbids (by design).
    SWITCHYARD_TOOL_SANDBOX: 'off',
  };
  [a, b] = await Promise.all([startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: 'engine-a' }), startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: 'engine-b' })]);
}, 120_000);

afterAll(async () => {
  a?.child.kill('SIGCONT');
  await Promise.all([a?.kill(), b?.kill()]);
  rmSync(dir, { recursive: true, force: true });
});

const get = (engine: EngineProcess, id: string) => call(engine.url, 'GET', `/api/v1/executions/${id}`).then((r) => r.body);
const progress = (record: any) => ({ status: record.status, diagnostics: record.diagnostics, output: record.output });
const stepsRun = (id: string) => readFileSync(journal, 'utf8').split('\n').filter((line) => line.startsWith(`${id} `)).map((line) => line.slice(id.length + 1));

/**
 * After the acknowledged cancel, the record must not move and no tool may have run for a task the
 * acknowledged record had not started. (The last started one may or may not have left its line: the marker
 * is written before the tool starts, and the cancel may kill the tool first.)
 */
async function expectStoppedAt(acknowledged: any, steps: readonly string[], via: EngineProcess): Promise<void> {
  await sleep(SETTLE_MS);
  expect(progress(await get(via, acknowledged.id))).toEqual(progress(acknowledged));
  const lastStarted = steps.indexOf(acknowledged.diagnostics.last_started_task);
  const allowed = steps.slice(0, lastStarted + 1);
  expect(stepsRun(acknowledged.id).filter((step) => !allowed.includes(step))).toEqual([]);
}

describe('cancel means stopped, across two engine processes on one database', () => {
  it('a cancel racing a resume: once acknowledged, no further task starts or completes (32 races, both directions)', async () => {
    let canceledFirst = 0;
    for (let i = 0; i < 32; i++) {
      const owner = i % 2 === 0 ? a : b;
      const other = owner === a ? b : a;
      // Resume and cancel through the same engine, or through different ones.
      const [resumeVia, cancelVia] = i % 4 < 2 ? [owner, other] : [other, owner];
      const started = await call(owner.url, 'POST', '/api/v1/workflows/approval/executions', { input: {} });
      expect(started.status).toBe(202);
      const id = started.body.id as string;
      await eventually(() => get(owner, id), (r) => r.status === 'paused');

      const [resumed, canceled] = await Promise.all([
        call(resumeVia.url, 'POST', `/api/v1/executions/${id}/resume`),
        call(cancelVia.url, 'POST', `/api/v1/executions/${id}/cancel`),
      ]);
      if (canceled.status === 409) {
        // The resumed run finished before the cancel arrived: nothing to stop.
        expect(canceled.body.status).toBe('success');
        continue;
      }
      expect(canceled.status, JSON.stringify(canceled.body)).toBe(200);
      expect(canceled.body.status).toBe('canceled');
      if (resumed.status === 409) canceledFirst++;
      expect(canceled.body.diagnostics.finalization_path).toBe('canceled');
      // Whatever the resume did before the cancel is in the acknowledged record; nothing may come after it.
      await expectStoppedAt(canceled.body, ['before', 'approve', 'act', 'report'], other);
    }
    // The race went both ways at least once (a cancel that won against the resume's write).
    expect(canceledFirst).toBeGreaterThan(0);
  }, 120_000);

  it('a cancel racing task boundaries on the other engine: the acknowledged record is the last word (20 runs)', async () => {
    for (let i = 0; i < 20; i++) {
      const started = await call(a.url, 'POST', '/api/v1/workflows/steps/executions', { input: {} });
      const id = started.body.id as string;
      await sleep((i * 37) % 250);
      const canceled = await call(b.url, 'POST', `/api/v1/executions/${id}/cancel`);
      if (canceled.status === 409) continue;
      expect(canceled.body.status).toBe('canceled');
      await expectStoppedAt(canceled.body, ['s1', 's2', 's3', 's4', 's5'], a);
    }
  }, 120_000);

  it('a run swept while its owner was stalled (SIGSTOP) stops when the owner wakes, without writing over the sweep', async () => {
    const started = await call(a.url, 'POST', '/api/v1/workflows/slow_steps/executions', { input: {} });
    const id = started.body.id as string;
    await eventually(() => get(b, id), (r) => r.diagnostics.last_started_task === 'first');
    a.child.kill('SIGSTOP');
    try {
      // Engine b's sweeper finds a's heartbeat stale.
      const swept = await eventually(() => get(b, id), (r) => r.status !== 'running', 30_000);
      expect(swept).toMatchObject({ status: 'failed', diagnostics: { finalization_path: 'stale_swept', previous_status: 'running', last_started_task: 'first' } });
      a.child.kill('SIGCONT');
      // The owner wakes with its tool call still under way: the tool finishes, and nothing of it may land. Once the
      // owner has said it stopped the run (however long a loaded machine takes to wake it), nothing was written.
      await eventually(async () => a.logs().some((line) => line['execution_id'] === id && /ended elsewhere/.test(String(line['msg']))), (said) => said, 30_000);
      expect(progress(await get(a, id))).toEqual(progress(swept));
      expect(stepsRun(id).filter((step) => step !== 'first')).toEqual([]);
      // The owner lives on and serves.
      const after = (await call(a.url, 'POST', '/api/v1/workflows/steps/executions/sync', { input: {} })).body;
      expect({ status: after.status, error: after.error, diagnostics: after.diagnostics }).toMatchObject({ status: 'success', error: null });
    } finally {
      a.child.kill('SIGCONT');
    }
  }, 60_000);
});
