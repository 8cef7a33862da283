import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { NewExecution } from '../../src/store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The executions table as the first release created it (before the traceparent column). */
const FIRST_RELEASE_SCHEMA = `
CREATE TABLE executions (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL, trigger TEXT NOT NULL,
  input TEXT, output TEXT, error TEXT, created_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,
  heartbeat_at INTEGER NOT NULL, trace_id TEXT, parent_execution_id TEXT, owner_id TEXT NOT NULL,
  last_started_task TEXT, last_started_seq INTEGER NOT NULL DEFAULT -1, last_completed_task TEXT,
  last_completed_seq INTEGER NOT NULL DEFAULT -1, last_completed_success INTEGER, finalization_path TEXT,
  completion_failure TEXT, task_outputs TEXT NOT NULL DEFAULT '{}'
);`;

describe('SqliteStore', () => {
  const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

  it('creates its file, -wal and -shm readable by their owner only (0600), in a directory of its own making 0700, whatever the umask', async () => {
    const previous = process.umask(0o022);
    try {
      const path = join(dir, 'private', 'nested', 'switchyard.db');
      const store = new SqliteStore(path);
      await store.createExecution({
        id: 'run-1', kind: 'workflow', target: 'w', trigger: 'api', input: { secret: 'customer data' }, traceId: null, traceparent: null,
        parentExecutionId: null, callerKeyId: null, ownerId: 'engine', createdAt: 1,
      });
      expect(existsSync(`${path}-wal`) && existsSync(`${path}-shm`)).toBe(true);
      expect([modeOf(path), modeOf(`${path}-wal`), modeOf(`${path}-shm`)]).toEqual(['600', '600', '600']);
      expect([modeOf(join(dir, 'private')), modeOf(join(dir, 'private', 'nested'))]).toEqual(['700', '700']);
      await store.close();
    } finally {
      process.umask(previous);
    }
  });

  it('narrows the database, -wal and -shm files an older engine created 0644 to 0600 when it opens them', async () => {
    const previous = process.umask(0o022);
    const path = join(dir, 'loose.db');
    // An older engine, still running: its file and its WAL files are 0644.
    const older = new DatabaseSync(path);
    older.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);');
    try {
      expect([modeOf(path), modeOf(`${path}-wal`), modeOf(`${path}-shm`)]).toEqual(['644', '644', '644']);
      const store = new SqliteStore(path);
      expect([modeOf(path), modeOf(`${path}-wal`), modeOf(`${path}-shm`)]).toEqual(['600', '600', '600']);
      await store.close();
    } finally {
      older.close();
      process.umask(previous);
    }
  });

  it('upgrades a database of the first release in place: old rows stay readable, new rows keep their traceparent and caller key id', async () => {
    const path = join(dir, 'old.db');
    const old = new DatabaseSync(path);
    old.exec(FIRST_RELEASE_SCHEMA);
    old.prepare(`INSERT INTO executions (id, kind, target, status, trigger, input, created_at, heartbeat_at, trace_id, owner_id)
      VALUES ('old-run', 'workflow', 'refund_approval', 'paused', 'api', '{"amount":1}', 1, 1, '${'c'.repeat(32)}', 'old-engine')`).run();
    old.close();

    const store = new SqliteStore(path);
    try {
      expect(await store.getExecution('old-run')).toMatchObject({ status: 'paused', input: { amount: 1 }, traceId: 'c'.repeat(32), traceparent: null, callerKeyId: null });
      const traceparent = `00-${'d'.repeat(32)}-${'e'.repeat(16)}-01`;
      await store.createExecution({
        id: 'new-run', kind: 'workflow', target: 'quick_answer', trigger: 'api', input: {}, traceId: 'd'.repeat(32), traceparent,
        parentExecutionId: null, callerKeyId: 'ops', ownerId: 'new-engine', createdAt: 2,
      });
      expect(await store.getExecution('new-run')).toMatchObject({ traceparent, callerKeyId: 'ops' });
    } finally {
      await store.close();
    }
    // Opening the upgraded file again changes nothing.
    const again = new SqliteStore(path);
    expect((await again.listExecutions({ limit: 10 })).map((r) => r.id).sort()).toEqual(['new-run', 'old-run']);
    await again.close();
  });

  it('group commit: the writes of one turn commit together, none resolves before the commit, a failing one fails alone', async () => {
    const path = join(dir, 'batch.db');
    const engine = new SqliteStore(path);
    const other = new SqliteStore(path); // another process's view of the file
    const execution = (id: string): NewExecution => ({
      id, kind: 'workflow', target: 'quick_answer', trigger: 'api', input: { id }, traceId: null, traceparent: null,
      parentExecutionId: null, callerKeyId: null, ownerId: 'engine-1', createdAt: 1,
    });
    try {
      await engine.createExecution(execution('existing'));
      let settled = 0;
      const writes = ['a', 'b', 'c'].map((id) => engine.createExecution(execution(id)).then(() => settled++));
      const duplicate = engine.createExecution(execution('existing'));
      // Same turn: the transaction is open, so the other connection sees none of it, and nothing has resolved.
      expect(await other.getExecution('a')).toBeUndefined();
      expect(settled).toBe(0);
      await expect(duplicate).rejects.toThrow(/UNIQUE constraint failed/);
      await Promise.all(writes);
      expect((await other.listExecutions({ limit: 10 })).map((r) => r.id).sort()).toEqual(['a', 'b', 'c', 'existing']);
    } finally {
      await engine.close();
      await other.close();
    }
  });
});
