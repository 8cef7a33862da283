/**
 * Bounded work per caller (issue 21, point 3), on a real engine with real Bun tools and a real SQLite file:
 * the in-flight limit per API key (429, Retry-After, problem+json), the bound on tool processes at once with
 * its measured queue, a canceled run that waits for a tool slot, retention, and their configuration.
 * The finding reproduced first: 100 parallel starts of a sleeping tool workflow were all accepted (100 x 202 in
 * 1.45 s) and ran 100 Bun processes at once.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { bearer, eventually, startTestEngine, TEST_LOADGEN_KEY, toolPids, type TestEngine } from '../support/engine.ts';

const PROJECT = 'test/fixtures/limits';
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bounded-'));
/** Every nap call that really started a process: "<execution id> <pid>" (test/fixtures/limits/tools/nap.ts). */
const journal = join(dir, 'journal.log');
process.env.LIMITS_JOURNAL = journal;
// The nap tool writes that journal outside its directory and imports the sample tools' lib from elsewhere: both
// refused in the tool sandbox (test/runtime/sandbox.test.ts), so these limit tests run their tools unconfined.
process.env.SWITCHYARD_TOOL_SANDBOX = 'off';
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const started = () => readFileSync(journal, 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ')[0]!);
const ended = (status: string) => !['pending', 'running'].includes(status);

/** Samples `read` every few ms while `during` runs; resolves with the largest value seen. */
async function peakWhile(read: () => number, during: Promise<unknown>): Promise<number> {
  let peak = read();
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    peak = Math.max(peak, read());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return peak;
}

describe('the in-flight limit per API key and the tool process bound', () => {
  it('100 parallel starts by one key: the limit is accepted, the rest get 429 with Retry-After; tool processes never exceed their bound; another key still gets in', async () => {
    writeFileSync(journal, '');
    const t = await startTestEngine({ projectDir: PROJECT, engine: { maxInFlightPerKey: 8 }, maxToolProcesses: 4 });
    try {
      // Every nap is held until the 100 answers are in, so none ends (and frees its place) while they arrive.
      writeFileSync(`${journal}.hold`, '');
      const answers = await Promise.all(Array.from({ length: 100 }, () => t.post('/api/v1/workflows/nap/executions', { input: { ms: 4_000 } })))
        .finally(() => rmSync(`${journal}.hold`, { force: true }));
      const accepted = answers.filter((a) => a.status === 202);
      const refused = answers.filter((a) => a.status === 429);
      expect(accepted.length).toBe(8);
      expect(refused.length).toBe(92);
      for (const answer of refused) {
        expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(answer.headers.get('retry-after')).toBe('2');
        expect(answer.body).toMatchObject({ type: 'urn:switchyard:problem:too-many-executions', status: 429, retry_after_seconds: 2 });
        expect(answer.body.detail).toMatch(/API key "tester" already has 8 executions pending or running/);
      }
      // Another key has its own count.
      const other = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 0 } }, bearer(TEST_LOADGEN_KEY));
      expect(other.status).toBe(202);

      // Nothing refused was recorded; every accepted run runs to success, never more than 4 tool processes at once.
      const ids = [...accepted.map((a) => a.body.id as string), other.body.id as string];
      const allDone = eventually(() => Promise.all(ids.map((id) => t.store.getExecution(id))), (records) => records.every((r) => ended(r!.status)), 90_000);
      const [peakProcesses, peakQueue] = await Promise.all([
        peakWhile(() => Math.max(t.runtime.liveProcesses(), toolPids(process.pid).length), allDone),
        peakWhile(() => t.runtime.slotUsage().waiting, allDone),
      ]);
      const records = await allDone;
      expect(records.map((r) => r!.status)).toEqual(ids.map(() => 'success'));
      expect(peakProcesses).toBeGreaterThan(0);
      expect(peakProcesses).toBeLessThanOrEqual(4);
      expect(peakQueue, 'calls waited for a slot').toBeGreaterThan(0);
      expect((await t.store.listExecutions({ limit: 100 })).length).toBe(9);
      expect(started().sort(), 'each accepted run started its tool once').toEqual([...ids].sort());

      // The wait is measured, once per call: the second wave waited for the first (a nap of 4 s).
      const waits = await t.observed.metricPoints('runtime_tool_slot_wait_seconds');
      expect(waits.map((p) => p.attributes)).toEqual([{ tool_id: 'nap' }]);
      expect(waits[0]!.value).toBe(9);
      expect(waits[0]!.sum!).toBeGreaterThan(4 * 3);
      const errors = await t.observed.metricPoints('http_exec_errors_total');
      expect(errors.find((p) => p.attributes['code'] === '429')?.value).toBe(92);
      expect(t.runtime.slotUsage()).toEqual({ waiting: 0, busy: 0, capacity: 4 });

      // Once its runs ended, the key may start again.
      expect((await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } })).body.status).toBe('success');
    } finally {
      await t.close();
    }
  }, 120_000);

  it('a sync start is refused the same way, and the key-less caller (no keys configured) counts as one caller', async () => {
    const t = await startTestEngine({ projectDir: PROJECT, apiKeys: [], engine: { maxInFlightPerKey: 1 } });
    try {
      const first = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 2_000 } });
      expect(first.status).toBe(202);
      const second = await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } });
      expect(second.status).toBe(429);
      expect(second.body.detail).toMatch(/the caller already has 1 executions/);
      // Key-less: every POST must say it is JSON, even one without a body.
      expect((await t.post(`/api/v1/executions/${first.body.id}/cancel`, undefined, { 'content-type': 'application/json' })).status).toBe(200);
      expect((await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } })).body.status).toBe('success');
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a resume counts like a start: paused runs (which do not count) cannot be resumed past the limit', async () => {
    const t = await startTestEngine({ projectDir: PROJECT, engine: { maxInFlightPerKey: 1 } });
    try {
      // One after the other: a run counts until it pauses.
      const paused = [await t.post('/api/v1/workflows/nap_approval/executions/sync', {}), await t.post('/api/v1/workflows/nap_approval/executions/sync', {})];
      expect(paused.map((p) => p.body.status)).toEqual(['paused', 'paused']);
      const busy = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 10_000 } });
      expect(busy.status).toBe(202);
      const refused = await t.post(`/api/v1/executions/${paused[0]!.body.id}/resume`);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('2');
      expect((await t.get(`/api/v1/executions/${paused[0]!.body.id}`)).body.status).toBe('paused');
      await t.post(`/api/v1/executions/${busy.body.id}/cancel`);
      expect((await t.post(`/api/v1/executions/${paused[0]!.body.id}/resume`)).status).toBe(202);
      const done = await eventually(() => t.store.getExecution(paused[0]!.body.id), (r) => ended(r!.status), 30_000);
      expect(done!.status).toBe('success');
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a run canceled while its tool call waits for a slot does nothing more: no process, no tool metric, and its slot place is given on', async () => {
    writeFileSync(journal, '');
    const t = await startTestEngine({ projectDir: PROJECT, maxToolProcesses: 1 });
    try {
      const holder = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 1_500 } });
      await eventually(async () => started(), (ids) => ids.includes(holder.body.id));
      const waiter = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 0 } });
      const behind = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 0 } });
      await eventually(async () => t.runtime.slotUsage().waiting, (waiting) => waiting === 2);

      const canceled = await t.post(`/api/v1/executions/${waiter.body.id}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body.status).toBe('canceled');
      expect(t.runtime.slotUsage().waiting).toBe(1);

      const records = await eventually(() => Promise.all([holder, behind].map((r) => t.store.getExecution(r.body.id))), (rs) => rs.every((r) => ended(r!.status)), 30_000);
      expect(records.map((r) => r!.status)).toEqual(['success', 'success']);
      // The canceled run never started its tool, and nothing about it moved after the cancel.
      expect(started()).toEqual([holder.body.id, behind.body.id]);
      const after = (await t.store.getExecution(waiter.body.id))!;
      expect(after).toMatchObject({ status: 'canceled', finalizationPath: 'canceled', lastCompletedTask: null });
      expect(after.lastStartedTask === 'nap' || after.lastStartedTask === null).toBe(true);
      // Two calls ran and were measured; the canceled one is in no tool metric.
      expect((await t.observed.metricPoints('runtime_tool_execute_seconds')).reduce((n, p) => n + p.value, 0)).toBe(2);
      expect((await t.observed.metricPoints('runtime_tool_slot_wait_seconds')).reduce((n, p) => n + p.value, 0)).toBe(2);
      expect(await t.observed.metricPoints('runtime_tool_errors_total').then((ps) => ps.filter((p) => p.value > 0))).toEqual([]);
      expect(t.runtime.slotUsage()).toEqual({ waiting: 0, busy: 0, capacity: 1 });
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a shutdown turns away the calls waiting for a slot: their runs end, no process starts', async () => {
    writeFileSync(journal, '');
    const t = await startTestEngine({ projectDir: PROJECT, maxToolProcesses: 1 });
    let closed = false;
    try {
      const holder = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 3_000 } });
      await eventually(async () => started(), (ids) => ids.includes(holder.body.id));
      const waiting = await Promise.all([1, 2, 3].map(() => t.post('/api/v1/workflows/nap/executions', { input: { ms: 0 } })));
      await eventually(async () => t.runtime.slotUsage().waiting, (n) => n === 3);
      await t.runtime.shutdown();
      const records = await eventually(() => Promise.all(waiting.map((r) => t.store.getExecution(r.body.id))), (rs) => rs.every((r) => ended(r!.status)), 30_000);
      for (const record of records) expect(record).toMatchObject({ status: 'failed', error: { code: 'canceled' } });
      expect(started()).toEqual([holder.body.id]);
      await t.close();
      closed = true;
    } finally {
      if (!closed) await t.close();
    }
  }, 60_000);
});

describe('the data one execution may store', () => {
  it('a 1 MB input stored 3 MB (input, task output, output); the execution data limit bounds the total, failing the run with data_limit rather than storing past it', async () => {
    const limit = 2_500_000;
    const t = await startTestEngine({ projectDir: PROJECT, bodyLimit: '4mb', engine: { executionDataLimitBytes: limit } });
    try {
      const storedBytes = (id: string) => {
        const db = new DatabaseSync(t.dbPath, { readOnly: true });
        try {
          return (db.prepare('SELECT length(input) + coalesce(length(output), 0) + length(task_outputs) AS n FROM executions WHERE id = ?').get(id) as { n: number }).n;
        } finally {
          db.close();
        }
      };
      // Within the limit: 700 kB in, 700 kB as the task's output, 700 kB as the run's output.
      const small = (await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0, echo: 'x'.repeat(700_000) } })).body;
      expect(small.status).toBe('success');
      expect(storedBytes(small.id)).toBeGreaterThan(2_100_000);
      expect(storedBytes(small.id)).toBeLessThanOrEqual(limit);

      // 1 MB: the task's output brings it to 2 MB (stored), the run's output would bring it to 3 MB: refused.
      const big = (await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0, echo: 'x'.repeat(1_000_000) } })).body;
      expect(big).toMatchObject({ status: 'failed', output: null, error: { code: 'data_limit' } });
      expect(big.error.message).toMatch(/its output is \d+ bytes of JSON, which would bring the execution's stored data to \d+ bytes, over the limit of 2500000/);
      expect(storedBytes(big.id)).toBeGreaterThan(2_000_000);
      expect(storedBytes(big.id)).toBeLessThanOrEqual(limit);

      // 1.3 MB: the task's output itself would pass the limit: refused, the task failed, nothing of it stored.
      const bigger = (await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0, echo: 'x'.repeat(1_300_000) } })).body;
      expect(bigger).toMatchObject({ status: 'failed', output: null, error: { code: 'data_limit', taskId: 'nap' }, diagnostics: { last_completed_success: false } });
      expect(bigger.error.message).toMatch(/the output of task "nap" is \d+ bytes of JSON/);
      expect((await t.store.getExecution(bigger.id))!.taskOutputs).toEqual({ nap: null });
      expect(storedBytes(bigger.id)).toBeLessThan(1_400_000);

      // An input over the limit by itself is refused before anything is stored.
      const tooBig = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 0, echo: 'x'.repeat(2_600_000) } });
      expect(tooBig.status).toBe(422);
      expect(tooBig.body.detail).toMatch(/over the execution data limit of 2500000 bytes/);
      expect((await t.store.listExecutions({ limit: 10 })).length).toBe(3);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('retention', () => {
  it('deletes ended executions past the period, in batches, counts them by status, and keeps the rest', async () => {
    const t = await startTestEngine({ projectDir: PROJECT, engine: { retention: { periodMs: 1_000, intervalMs: 3_600_000, batchSize: 2 } } });
    try {
      const old = [];
      for (let i = 0; i < 5; i++) old.push((await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } })).body);
      const canceledRun = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 5_000 } });
      await t.post(`/api/v1/executions/${canceledRun.body.id}/cancel`);
      const live = await t.post('/api/v1/workflows/nap/executions', { input: { ms: 20_000 } });
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const recent = (await t.post('/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } })).body;

      expect(await t.engine.deleteExpired()).toBe(6);
      for (const run of [...old, canceledRun.body]) expect((await t.get(`/api/v1/executions/${run.id}`)).status).toBe(404);
      expect((await t.get(`/api/v1/executions/${recent.id}`)).body.status).toBe('success');
      expect((await t.get(`/api/v1/executions/${live.body.id}`)).body.status).toBe('running');
      expect(await t.engine.deleteExpired()).toBe(0);
      const deleted = await t.observed.metricPoints('executions_retention_deleted_total');
      expect(Object.fromEntries(deleted.filter((p) => p.value > 0).map((p) => [p.attributes['status'], p.value]))).toEqual({ success: 5, canceled: 1 });
      await t.post(`/api/v1/executions/${live.body.id}/cancel`);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('configuration', () => {
  it('defaults: 64 in flight per key, 16 tool processes, 32 MiB of data per execution, 30 days of retention every 10 minutes in batches of 500', () => {
    const config = loadConfig({});
    expect(config.executionDataLimitBytes).toBe(32 * 1024 * 1024);
    expect(config.maxInFlightPerKey).toBe(64);
    expect(config.maxToolProcesses).toBe(16);
    expect(config.retention).toEqual({ periodMs: 30 * 86_400_000, intervalMs: 600_000, batchSize: 500 });
  });

  it('0 turns the per-key limit and retention off; bad values are refused naming the variable', () => {
    const config = loadConfig({ SWITCHYARD_MAX_IN_FLIGHT_PER_KEY: '0', SWITCHYARD_RETENTION_DAYS: '0' });
    expect(config.maxInFlightPerKey).toBeUndefined();
    expect(config.retention).toBeUndefined();
    expect(loadConfig({ SWITCHYARD_RETENTION_DAYS: '0.5' }).retention!.periodMs).toBe(43_200_000);
    expect(() => loadConfig({ SWITCHYARD_MAX_TOOL_PROCESSES: '0' })).toThrow(/SWITCHYARD_MAX_TOOL_PROCESSES/);
    expect(() => loadConfig({ SWITCHYARD_MAX_IN_FLIGHT_PER_KEY: 'many' })).toThrow(/SWITCHYARD_MAX_IN_FLIGHT_PER_KEY/);
    expect(() => loadConfig({ SWITCHYARD_RETENTION_DAYS: '-1' })).toThrow(/SWITCHYARD_RETENTION_DAYS/);
    expect(() => loadConfig({ SWITCHYARD_RETENTION_BATCH: '1.5' })).toThrow(/SWITCHYARD_RETENTION_BATCH/);
    expect(() => loadConfig({ SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES: '0' })).toThrow(/SWITCHYARD_EXECUTION_DATA_LIMIT_BYTES/);
  });
});
