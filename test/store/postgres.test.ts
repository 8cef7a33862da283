/**
 * What only the PostgreSQL store has: its migrations, its connection pool and timeouts, its failures (as
 * 503s, without credentials), and the engine running on it (in-process and as the real process).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { redactCredentials, redactUrl, StoreUnavailableError } from '../../src/store/errors.ts';
import { openStore, storeLabel } from '../../src/store/open.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { eventually, startTestEngine, TICKET } from '../support/engine.ts';
import { findPostgres, postgresPolicy, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { execution } from './contract.ts';
import { ENGINE_ARGS, startEngineProcess } from '../support/engine-process.ts';
import { createServer as createHttpServer } from 'node:http';

const lookup = findPostgres();
const policy = postgresPolicy(lookup);

describe('PostgreSQL URLs in logs and errors', () => {
  it('redactUrl hides the password, and only it', () => {
    expect(redactUrl('postgres://switchyard:s3cr%40t@db.internal:5432/runs?sslmode=require')).toBe('postgres://switchyard:***@db.internal:5432/runs?sslmode=require');
    expect(redactUrl('postgresql://user:p@ss:w/rd@host/db')).toBe('postgresql://user:***@host/db');
    expect(redactUrl('postgres://user@host/db')).toBe('postgres://user@host/db');
    expect(redactUrl('postgres://host/db?user=u&password=hunter22&sslmode=verify-full')).toBe('postgres://host/db?user=u&password=***&sslmode=verify-full');
    expect(redactUrl('data/switchyard.db')).toBe('data/switchyard.db');
  });

  it('redactCredentials hides URL passwords and known secrets inside any text', () => {
    expect(redactCredentials('could not reach postgres://a:hunter22@h:1/d (timeout)')).toBe('could not reach postgres://a:***@h:1/d (timeout)');
    expect(redactCredentials('password=hunter22 host=h')).toBe('password=*** host=h');
    expect(redactCredentials('the secret is hunter22, again hunter22', ['hunter22'])).toBe('the secret is ***, again ***');
  });

  it('the configuration picks PostgreSQL for postgres:// and postgresql:// only, and never repeats a bad URL', () => {
    expect(loadConfig({ SWITCHYARD_DB: 'postgres://u:pw@h/db' }).store).toEqual({ kind: 'postgres', url: 'postgres://u:pw@h/db', poolMax: 10, statementTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    expect(loadConfig({ SWITCHYARD_DB: 'POSTGRESQL://u@h/db', SWITCHYARD_DB_POOL_MAX: '3', SWITCHYARD_DB_STATEMENT_TIMEOUT_MS: '700', SWITCHYARD_DB_CONNECT_TIMEOUT_MS: '900' }).store)
      .toMatchObject({ kind: 'postgres', poolMax: 3, statementTimeoutMs: 700, connectTimeoutMs: 900 });
    expect(loadConfig({ SWITCHYARD_DB: 'data/x.db' }).store).toMatchObject({ kind: 'sqlite' });
    expect(loadConfig({}).store).toMatchObject({ kind: 'sqlite', path: expect.stringMatching(/data\/switchyard\.db$/) });
    expect(() => loadConfig({ SWITCHYARD_DB: 'postgres://u:hunter22@' })).toThrow(/SWITCHYARD_DB looks like a PostgreSQL URL but is not one/);
    try {
      loadConfig({ SWITCHYARD_DB: 'postgres://u:hunter22@' });
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter22');
    }
    expect(() => loadConfig({ SWITCHYARD_DB: 'postgres://h/db', SWITCHYARD_DB_POOL_MAX: '0' })).toThrow(/SWITCHYARD_DB_POOL_MAX/);
    expect(storeLabel(loadConfig({ SWITCHYARD_DB: 'postgres://u:hunter22@h/db' }).store)).toBe('postgres://u:***@h/db');
  });
});

if (policy !== 'run') {
  describe('the PostgreSQL store', () => {
    // Under CI a missing server is a failure; elsewhere the tests are skipped, saying why.
    (policy === 'fail' ? it : it.skip)(`needs a PostgreSQL server: ${lookup.reason}`, () => {
      throw new Error(lookup.reason);
    });
  });
} else {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => cluster?.stop());

  describe('the PostgreSQL store: schema and connections', () => {
    it('engines starting together migrate once: one schema_migrations row per version, the columns of the SQLite store', async () => {
      const url = await cluster.createDatabase();
      const name = new URL(url).pathname.slice(1);
      const stores = await Promise.all(Array.from({ length: 5 }, () => PostgresStore.open({ url, poolMax: 2 })));
      await Promise.all(stores.map((s) => s.close()));
      expect(await cluster.sql('SELECT version, description FROM schema_migrations ORDER BY version', [], name)).toEqual([
        { version: 1, description: expect.stringContaining('executions') },
        { version: 2, description: expect.stringContaining('retention') },
      ]);
      const columns = await cluster.sql<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'executions' ORDER BY ordinal_position`, [], name);
      const types = Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]));
      expect(types).toMatchObject({
        id: 'text', status: 'text', input: 'jsonb', output: 'jsonb', error: 'jsonb', task_outputs: 'jsonb', created_at: 'bigint', heartbeat_at: 'bigint',
        traceparent: 'text', caller_key_id: 'text', owner_id: 'text', last_started_task: 'text', last_started_seq: 'integer',
        last_completed_task: 'text', last_completed_seq: 'integer', last_completed_success: 'boolean', finalization_path: 'text',
        previous_status: 'text', completion_failure: 'text',
      });
    });

    it('keeps at most poolMax connections, whatever the load, and names them for pg_stat_activity', async () => {
      const url = await cluster.createDatabase();
      const store = await PostgresStore.open({ url, poolMax: 2, applicationName: 'switchyard bounded' });
      try {
        await store.createExecution(execution('run-1'));
        const peak = { value: 0 };
        const watching = (async () => {
          for (let i = 0; i < 20; i++) {
            const [row] = await cluster.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'switchyard bounded'`);
            peak.value = Math.max(peak.value, row!.n);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        })();
        const reads = await Promise.all(Array.from({ length: 200 }, () => store.getExecution('run-1')));
        await watching;
        expect(reads.every((r) => r?.id === 'run-1')).toBe(true);
        expect(peak.value).toBeGreaterThanOrEqual(1);
        expect(peak.value).toBeLessThanOrEqual(2);
      } finally {
        await store.close();
      }
    });

    it('a statement that waits past the statement timeout fails as unavailable (57014), and the store works again after', async () => {
      const url = await cluster.createDatabase();
      const store = await PostgresStore.open({ url, statementTimeoutMs: 300 });
      await store.createExecution(execution('locked'));
      // Another session holds the row (a long transaction elsewhere).
      const { default: pg } = await import('pg');
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT * FROM executions WHERE id = 'locked' FOR UPDATE`);
        const started = Date.now();
        const failure = await store.finalize('locked', { status: 'canceled', path: 'canceled', endedAt: 2_000 }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(StoreUnavailableError);
        expect(failure).toMatchObject({ code: '57014', message: expect.stringMatching(/statement timeout/) });
        expect(Date.now() - started).toBeLessThan(3_000);
        await holder.query('ROLLBACK');
        expect(await store.finalize('locked', { status: 'canceled', path: 'canceled', endedAt: 2_000 })).toBe(true);
      } finally {
        await holder.end();
        await store.close();
      }
    });

    it('a wrong password or an unreachable server fails to open as unavailable, quickly, without the password', async () => {
      const wrong = cluster.url().replace(encodeURIComponent(cluster.password), 'not-the-password-42');
      const denied = await PostgresStore.open({ url: wrong }).then(() => undefined, (error: unknown) => error as StoreUnavailableError);
      expect(denied).toBeInstanceOf(StoreUnavailableError);
      expect(denied!.code).toBe('28P01');
      expect(denied!.message).toMatch(/password authentication failed/);
      expect(denied!.message).not.toContain('not-the-password-42');

      const closed = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          server.close(() => resolve(port));
        });
      });
      const started = Date.now();
      const refused = await PostgresStore.open({ url: `postgres://u:hunter22secret@127.0.0.1:${closed}/db`, connectTimeoutMs: 1_000 })
        .then(() => undefined, (error: unknown) => error as StoreUnavailableError);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect(refused!.code).toBe('ECONNREFUSED');
      expect(refused!.message).not.toContain('hunter22secret');
      expect(Date.now() - started).toBeLessThan(3_000);
    });
  });

  describe('the engine on PostgreSQL', () => {
    it('runs, pauses, resumes, cancels and lists on PostgreSQL; a database that goes away answers 503, not 500', async () => {
      const url = await cluster.createDatabase('engine_db');
      const store = await openStore({ kind: 'postgres', url, poolMax: 4, statementTimeoutMs: 2_000, connectTimeoutMs: 2_000 }, { instanceId: 'pg-engine' });
      const t = await startTestEngine({ store, engine: { instanceId: 'pg-engine' } });
      try {
        const done = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
        expect(done.status).toBe(200);
        expect(done.body).toMatchObject({
          status: 'success', caller_key_id: 'tester',
          diagnostics: { last_started_task: 'notify', last_completed_task: 'notify', last_completed_success: true, finalization_path: 'completed' },
        });
        expect(done.body.trace_id).toMatch(/^[0-9a-f]{32}$/);

        const paused = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'ada@analytical.example', amount: 12 } });
        expect(paused.body.status).toBe('paused');
        const resumed = await t.post(`/api/v1/executions/${paused.body.id}/resume`);
        expect(resumed.status).toBe(202);
        const finished = await eventually(() => t.engine.get(paused.body.id), (r) => r?.status === 'success');
        expect(finished).toMatchObject({ status: 'success', finalizationPath: 'completed' });
        expect((await t.post(`/api/v1/executions/${paused.body.id}/resume`)).status).toBe(409);

        const toCancel = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'ada@analytical.example', amount: 13 } });
        expect((await t.post(`/api/v1/executions/${toCancel.body.id}/cancel`)).status).toBe(200);
        expect((await t.get(`/api/v1/executions/${toCancel.body.id}`)).body).toMatchObject({ status: 'canceled', diagnostics: { finalization_path: 'canceled' } });

        const listed = await t.get('/api/v1/executions?limit=2');
        expect(listed.body.executions.map((e: { id: string }) => e.id)).toEqual([toCancel.body.id, paused.body.id]);
        const next = await t.get(`/api/v1/executions?limit=2&cursor=${listed.body.next_cursor}`);
        expect(next.body.executions.map((e: { id: string }) => e.id)).toEqual([done.body.id]);
        expect((await t.get('/readyz')).status).toBe(200);

        // The database goes away under the running engine.
        await cluster.sql('DROP DATABASE engine_db WITH (FORCE)');
        const gone = await t.get(`/api/v1/executions/${done.body.id}`);
        expect(gone.status).toBe(503);
        expect(gone.body.detail).toMatch(/^the execution store cannot be used: PostgreSQL: /);
        expect(gone.body.detail).not.toContain(cluster.password);
        expect((await t.get('/readyz')).status).toBe(503);
        expect((await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'x' } })).status).toBe(503);
      } finally {
        await t.close();
      }
    }, 60_000);

    it('the engine process: SWITCHYARD_DB=postgres://... runs on it (password from a pgpass file); a wrong password in the URL is one fatal line and exit 2, the password in no line', async () => {
      const url = await cluster.createDatabase();
      const withoutPassword = url.replace(`:${encodeURIComponent(cluster.password)}@`, '@');
      const pgpass = join(cluster.dir, 'engine.pgpass');
      writeFileSync(pgpass, `127.0.0.1:${cluster.port}:*:${cluster.user}:${cluster.password}\n`, { mode: 0o600 });
      const run = (env: Record<string, string>) => {
        const child = spawn(process.execPath, [...ENGINE_ARGS], {
          env: { ...process.env, SWITCHYARD_PORT: '0', OTEL_SDK_DISABLED: 'true', SWITCHYARD_DB_CONNECT_TIMEOUT_MS: '2000', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
        child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
        const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
        const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        return { child, closed, lines, output: () => out };
      };

      const engine = run({ SWITCHYARD_DB: withoutPassword, PGPASSFILE: pgpass });
      try {
        const ready = await eventually(async () => engine.lines().find((l) => l['msg'] === 'switchyard engine ready'), (l) => l !== undefined || engine.child.exitCode !== null, 20_000);
        expect(ready, engine.output()).toMatchObject({ store: 'postgres', db: withoutPassword });
        expect(engine.output()).not.toContain('SWITCHYARD_DB carries a password');
        const answer = await fetch(`${String(ready!['url'])}/api/v1/workflows/quick_answer/executions/sync`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { question: 'What is the refund policy?' } }),
        }).then(async (r) => ({ status: r.status, body: await r.json() as { id: string; status: string } }));
        expect(answer).toMatchObject({ status: 200, body: { status: 'success' } });
        const [row] = await cluster.sql<{ status: string }>('SELECT status FROM executions WHERE id = $1', [answer.body.id], new URL(url).pathname.slice(1));
        expect(row).toEqual({ status: 'success' });
        engine.child.kill('SIGTERM');
        expect(await engine.closed).toBe(0);
        expect(engine.output()).not.toContain(cluster.password);
      } finally {
        engine.child.kill('SIGKILL');
      }

      const secret = 'wrong-password-31337';
      const refused = run({ SWITCHYARD_DB: url.replace(encodeURIComponent(cluster.password), secret) });
      expect(await refused.closed).toBe(2);
      const fatal = refused.lines().filter((l) => l['level'] === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(String(fatal[0]!['msg'])).toMatch(/^the execution store postgres:\/\/switchyard:\*\*\*@127\.0\.0\.1:\d+\/\w+ cannot be opened: PostgreSQL: password authentication failed .*; check that the server is up/);
      expect(refused.output()).not.toContain(secret);
      expect(refused.lines().some((l) => l['level'] === 'warn' && /SWITCHYARD_DB carries a password/.test(String(l['msg'])))).toBe(true);
      expect(refused.lines().some((l) => l['msg'] === 'switchyard engine ready')).toBe(false);
    }, 60_000);

  describe('the PostgreSQL store: traces', () => {
    it('a run on PostgreSQL: its trace holds the store\'s queries as pg spans (the pg auto-instrumentation), below the engine\'s spans', async () => {
      const url = await cluster.createDatabase();
      // A fake Collector: records what the engine exports as OTLP/HTTP JSON (the real one is in the stack tests).
      const bodies: string[] = [];
      const receiver = createHttpServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk));
        req.on('end', () => {
          if (req.url === '/v1/traces') bodies.push(body);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      const engine = await startEngineProcess({
        SWITCHYARD_DB: url, SWITCHYARD_API_KEYS: '', SWITCHYARD_API_KEYS_FILE: '',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as import('node:net').AddressInfo).port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none',
      });
      try {
        const answer = await fetch(`${engine.url}/api/v1/workflows/quick_answer/executions/sync`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { question: 'What is the refund policy?' } }),
        }).then(async (r) => await r.json() as { status: string; trace_id: string });
        expect(answer.status).toBe('success');
        type Span = { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: { key: string; value: Record<string, unknown> }[] };
        const spansOfRun = () => bodies.flatMap((b) => (JSON.parse(b) as { resourceSpans: { scopeSpans: { scope: { name: string }; spans: Span[] }[] }[] })
          .resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => ({ ...span, scope: s.scope.name })))))
          .filter((s) => s.traceId === answer.trace_id);
        const pgSpans = (found: ReturnType<typeof spansOfRun>) => found.filter((s) => s.scope === '@opentelemetry/instrumentation-pg');
        // Until every pg span's parent is in (spans are exported as they end, parents last).
        const spans = await eventually(async () => spansOfRun(), (found) => found.some((s) => s.name === 'workflow.execute_sync')
          && pgSpans(found).length > 0 && pgSpans(found).every((s) => found.some((p) => p.spanId === s.parentSpanId)), 20_000);
        const queries = pgSpans(spans).filter((s) => s.attributes.some((a) => a.key === 'db.system.name' || a.key === 'db.system'));
        expect(queries.length, 'query spans with db.system').toBeGreaterThan(0);
        // Each pg span hangs in the run's tree, below an engine span or another pg span.
        for (const span of pgSpans(spans)) expect(spans.some((p) => p.spanId === span.parentSpanId), span.name).toBe(true);
      } finally {
        await engine.kill();
        receiver.closeAllConnections();
        receiver.close();
      }
    }, 60_000);
  });
  });
}
