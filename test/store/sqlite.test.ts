import { mkdtempSync, rmSync } from 'node:fs';
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
