/**
 * Two engine replicas on one real PostgreSQL under load; one is SIGKILLed mid-run. Every run accepted
 * before the kill ends in a terminal status exactly once (none lost, none swept twice), and cancels and
 * resumes of the dead replica's runs work through the survivor. Real processes throughout: the engines are
 * `src/main.ts` processes, the database a throwaway cluster on loopback (test/support/postgres.ts).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TICKET, eventually, toolPids } from '../support/engine.ts';
import { call, startEngineProcess, type EngineProcess } from '../support/engine-process.ts';
import { findPostgres, postgresPolicy, startPostgres, type PostgresCluster } from '../support/postgres.ts';

const lookup = findPostgres();
const policy = postgresPolicy(lookup);
const TERMINAL = ['success', 'failed', 'timed_out', 'canceled'];

describe.skipIf(policy === 'skip')(`engine replicas on one PostgreSQL${policy === 'skip' ? ` (skipped: ${lookup.reason})` : ''}`, () => {
  let cluster: PostgresCluster;
  let database: string;
  const engines: EngineProcess[] = [];

  beforeAll(async () => {
    if (policy === 'fail') throw new Error(`PostgreSQL is required under CI: ${lookup.reason}`);
    cluster = await startPostgres();
    const url = await cluster.createDatabase();
    database = new URL(url).pathname.slice(1);
    // The password comes from a file, as in docker-compose.yml: in neither the URL nor the environment.
    const passwordFile = join(cluster.dir, 'engine-db-password');
    writeFileSync(passwordFile, `${cluster.password}\n`, { mode: 0o600 });
    const env = {
      SWITCHYARD_DB: url.replace(`:${encodeURIComponent(cluster.password)}@`, '@'), SWITCHYARD_DB_PASSWORD_FILE: passwordFile,
      OTEL_SDK_DISABLED: 'true', SWITCHYARD_HEARTBEAT_MS: '200', SWITCHYARD_STALE_AFTER_MS: '1500', SWITCHYARD_SWEEP_INTERVAL_MS: '300',
    };
    engines.push(...await Promise.all(['replica-a', 'replica-b'].map((id) => startEngineProcess({ ...env, SWITCHYARD_INSTANCE_ID: id }))));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.kill()));
    await cluster?.stop();
  });

  const rows = () => cluster.sql<{ id: string; status: string; owner_id: string; finalization_path: string | null }>(
    'SELECT id, status, owner_id, finalization_path FROM executions', [], database);

  it('a cancel sent to one replica stops the run on the other and kills its tool', async () => {
    const [a, b] = engines as [EngineProcess, EngineProcess];
    const started = await call(a.url, 'POST', '/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'hang' } });
    const id = started.body.id as string;
    await eventually(() => call(b.url, 'GET', `/api/v1/executions/${id}`), (r) => r.body.diagnostics.last_started_task === 'lookup');
    const tools = await eventually(async () => toolPids(a.child.pid!), (pids) => pids.length > 0);
    const canceled = await call(b.url, 'POST', `/api/v1/executions/${id}/cancel`);
    expect(canceled).toMatchObject({ status: 200, body: { status: 'canceled', diagnostics: { finalization_path: 'canceled', previous_status: 'running' } } });
    // The owner learns at its next heartbeat and kills the hanging tool (a hang never ends by itself).
    await eventually(async () => tools.filter((pid) => existsSync(`/proc/${pid}`)), (alive) => alive.length === 0, 15_000);
    expect((await call(a.url, 'GET', `/api/v1/executions/${id}`)).body.status).toBe('canceled');
  }, 60_000);

  it('SIGKILL of one replica under load: every accepted run ends once, its runs are swept by the survivor, cancel and resume work there', async () => {
    const [a, b] = engines as [EngineProcess, EngineProcess];
    // Paused runs on the replica that will die, to resume and cancel through the survivor afterwards.
    const paused: string[] = [];
    for (let i = 0; i < 4; i++) {
      const started = await call(a.url, 'POST', '/api/v1/workflows/refund_approval/executions', { input: { email: `p${i}@example.com`, amount: i + 1 } });
      paused.push(started.body.id);
    }
    await eventually(rows, (all) => paused.every((id) => all.find((r) => r.id === id)?.status === 'paused'), 15_000);

    // Load over both replicas: runs that take a while, so some are mid-run on A when it dies.
    const accepted: string[] = [];
    for (let i = 0; i < 40; i++) {
      const engine = engines[i % 2]!;
      const input = i % 3 === 0 ? { ...TICKET, fault: 'slow', delay_ms: 400 + (i % 5) * 200 } : TICKET;
      const answer = await call(engine.url, 'POST', '/api/v1/workflows/support_triage/executions', { input });
      expect(answer.status).toBe(202);
      accepted.push(answer.body.id);
      await sleep(15);
    }
    const liveOnA = (all: Awaited<ReturnType<typeof rows>>) => all.filter((r) => r.owner_id === 'replica-a' && (r.status === 'running' || r.status === 'pending'));
    await eventually(rows, (all) => liveOnA(all).length > 0, 15_000);
    await a.kill();
    // Read after the kill (nothing of A's moves any more) and long before B's sweep can find them stale.
    const killedMidRun = liveOnA(await rows()).map((r) => r.id);
    expect(killedMidRun.length).toBeGreaterThan(0);

    // The survivor serves the dead replica's paused runs: two resumed (each continues once), two canceled.
    for (const id of paused.slice(0, 2)) expect((await call(b.url, 'POST', `/api/v1/executions/${id}/resume`)).status).toBe(202);
    for (const id of paused.slice(2)) expect((await call(b.url, 'POST', `/api/v1/executions/${id}/cancel`)).body.status).toBe('canceled');
    for (const id of paused.slice(0, 2)) expect((await call(b.url, 'POST', `/api/v1/executions/${id}/resume`)).status).toBe(409);

    // Every accepted run ends; none is lost.
    const all = [...accepted, ...paused];
    const final = await eventually(rows, (current) => all.every((id) => TERMINAL.includes(current.find((r) => r.id === id)?.status ?? '')), 30_000);
    const byId = new Map(final.map((r) => [r.id, r]));
    for (const id of all) expect(TERMINAL, `${id}: ${JSON.stringify(byId.get(id))}`).toContain(byId.get(id)!.status);
    // What A was running when it died was swept by B, each exactly once; nothing else was.
    for (const id of killedMidRun) expect(byId.get(id)).toMatchObject({ status: 'failed', finalization_path: 'stale_swept' });
    const sweptLines = b.logs().filter((line) => line['msg'] === 'swept a stale execution: its engine stopped sending heartbeats');
    expect(sweptLines.map((line) => line['execution_id']).sort()).toEqual([...killedMidRun].sort());
    expect(final.filter((r) => r.finalization_path === 'stale_swept').map((r) => r.id).sort()).toEqual([...killedMidRun].sort());
    for (const id of paused.slice(0, 2)) expect(byId.get(id)).toMatchObject({ status: 'success', owner_id: 'replica-b' });
    for (const id of paused.slice(2)) expect(byId.get(id)).toMatchObject({ status: 'canceled' });
  }, 120_000);
});
