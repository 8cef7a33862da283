/**
 * The limits of issue 21 point 3 with real engine processes (`node src/main.ts`), real Bun tools and real
 * databases: a SIGKILLed engine whose runs wait in the tool queue loses nothing and counts nothing twice, and
 * leaves no tool process; the per-key limit holds across two replicas on one PostgreSQL.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { eventually } from '../support/engine.ts';
import { call, startEngineProcess, type EngineProcess } from '../support/engine-process.ts';
import { findPostgres, postgresPolicy, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { processAlive } from '../runtime/tools.ts';

// The nap tool writes a journal outside its directory and imports the sample tools' lib from elsewhere: both refused
// in the tool sandbox (test/runtime/sandbox.test.ts), so the engines here run their tools unconfined (the engine
// processes inherit this environment).
process.env.SWITCHYARD_TOOL_SANDBOX = 'off';

const PROJECT = 'test/fixtures/limits';
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bounded-processes-'));
const engines: EngineProcess[] = [];
afterAll(async () => {
  await Promise.all(engines.map((engine) => engine.kill()));
  rmSync(dir, { recursive: true, force: true });
});

/** The nap calls that really started a process, as [execution id, pid] (test/fixtures/limits/tools/nap.ts). */
const journalOf = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ') as [string, string]);

describe('SIGKILL of an engine while runs wait for a tool slot', () => {
  it('every accepted run ends exactly once (swept by the next engine), no queued run ever starts its tool, no tool process is left', async () => {
    const journal = join(dir, 'kill-journal.log');
    writeFileSync(journal, '');
    const env = {
      SWITCHYARD_PROJECT_DIR: PROJECT, LIMITS_JOURNAL: journal, SWITCHYARD_DB: join(dir, 'kill.db'), OTEL_SDK_DISABLED: 'true', SWITCHYARD_LOG_LEVEL: 'info',
      SWITCHYARD_HEARTBEAT_MS: '200', SWITCHYARD_STALE_AFTER_MS: '1500', SWITCHYARD_SWEEP_INTERVAL_MS: '300',
      SWITCHYARD_MAX_TOOL_PROCESSES: '2', SWITCHYARD_MAX_IN_FLIGHT_PER_KEY: '8',
    };
    const first = await startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: 'first' });
    engines.push(first);
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(first.url, 'POST', '/api/v1/workflows/nap/executions', { input: { ms: 30_000 } })));
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.body.id as string);
    expect(accepted.length).toBe(8);
    expect(answers.filter((a) => a.status === 429).length).toBe(2);
    // Two tools run; six runs wait in the queue, marked running (their task started, their tool not).
    const running = await eventually(async () => journalOf(journal), (lines) => lines.length === 2);
    const store = new SqliteStore(env.SWITCHYARD_DB);
    try {
      await eventually(() => Promise.all(accepted.map((id) => store.getExecution(id))), (rs) => rs.every((r) => r!.status === 'running' && r!.lastStartedTask === 'nap'));
      await sleep(300);
      expect(journalOf(journal).length, 'the bound held: no third tool started').toBe(2);

      await first.kill();
      // The spawn helper and the guards kill the running tools when their engine dies.
      const pids = running.map(([, pid]) => Number(pid));
      await eventually(async () => pids.filter(processAlive), (alive) => alive.length === 0, 10_000);

      // The next engine on the same file sweeps every run of the dead one, each once; none of the queued ones runs.
      const next = await startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: 'next' });
      engines.push(next);
      const records = await eventually(() => Promise.all(accepted.map((id) => store.getExecution(id))), (rs) => rs.every((r) => r!.status !== 'running'), 20_000);
      for (const record of records) expect(record).toMatchObject({ status: 'failed', finalizationPath: 'stale_swept', previousStatus: 'running', error: { code: 'stale' } });
      // The log lines may reach the pipe after the store's writes: wait for them, then for any extra one.
      const sweptLines = () => next.logs().filter((line) => /swept a stale execution/.test(String(line['msg']))).map((line) => line['execution_id']);
      await eventually(async () => sweptLines(), (lines) => lines.length >= accepted.length, 15_000);
      await sleep(500);
      expect(sweptLines().sort(), 'each run swept, and counted, once').toEqual([...accepted].sort());
      expect((await store.listExecutions({ limit: 100 })).map((r) => r.id).sort(), 'nothing accepted is lost, nothing refused was kept').toEqual([...accepted].sort());
      expect(journalOf(journal).map(([id]) => id).sort()).toEqual(running.map(([id]) => id).sort());
      // The swept runs no longer count against the caller's limit.
      const again = await call(next.url, 'POST', '/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } });
      expect(again.body.status).toBe('success');
    } finally {
      await store.close();
    }
  }, 120_000);
});

describe('retention in a running engine', () => {
  it('deletes an ended execution once past the configured period, on its own schedule, and says so in its log', async () => {
    const engine = await startEngineProcess({
      SWITCHYARD_PROJECT_DIR: PROJECT, SWITCHYARD_DB: join(dir, 'retention.db'), OTEL_SDK_DISABLED: 'true', SWITCHYARD_LOG_LEVEL: 'info',
      // 0.00002 days: 1.728 s.
      SWITCHYARD_RETENTION_DAYS: '0.00002', SWITCHYARD_RETENTION_INTERVAL_MS: '200', LIMITS_JOURNAL: join(dir, 'retention-journal.log'),
    });
    engines.push(engine);
    const done = await call(engine.url, 'POST', '/api/v1/workflows/nap/executions/sync', { input: { ms: 0 } });
    expect(done.body.status).toBe('success');
    await eventually(() => call(engine.url, 'GET', `/api/v1/executions/${done.body.id}`), (r) => r.status === 404, 15_000);
    await eventually(async () => engine.logs().find((line) => /deleted 1 executions past the retention period/.test(String(line['msg']))), (line) => line !== undefined);
  }, 60_000);
});

const lookup = findPostgres();
const policy = postgresPolicy(lookup);

describe.skipIf(policy === 'skip')(`the per-key limit across two replicas on one PostgreSQL${policy === 'skip' ? ` (skipped: ${lookup.reason})` : ''}`, () => {
  let cluster: PostgresCluster | undefined;
  afterAll(async () => cluster?.stop());

  it('40 parallel starts spread over two engine processes admit exactly the limit', async () => {
    if (policy === 'fail') throw new Error(`PostgreSQL is required under CI: ${lookup.reason}`);
    cluster = await startPostgres();
    const url = await cluster.createDatabase();
    const env = {
      SWITCHYARD_PROJECT_DIR: PROJECT, SWITCHYARD_DB: url, OTEL_SDK_DISABLED: 'true', SWITCHYARD_MAX_IN_FLIGHT_PER_KEY: '6',
      LIMITS_JOURNAL: join(dir, 'replicas-journal.log'),
    };
    const replicas = await Promise.all(['replica-a', 'replica-b'].map((id) => startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: id })));
    engines.push(...replicas);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => call(replicas[i % 2]!.url, 'POST', '/api/v1/workflows/nap/executions', { input: { ms: 5_000 } })));
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted.length).toBe(6);
    expect(answers.filter((a) => a.status === 429).length).toBe(34);
    // Each replica answered 20: a limit per replica would have admitted 12. The count is the database's.
    const [row] = await cluster.sql<{ n: number }>(`SELECT count(*)::int AS n FROM executions WHERE status IN ('pending', 'running')`, [], new URL(url).pathname.slice(1));
    expect(row!.n).toBe(6);
  }, 120_000);
});
