import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { toRecord as toSharedRecord } from './row.ts';
import type { TerminalStatus } from '../domain.ts';
import type { Admission, ExecutionQuery, ExecutionRecord, Finalization, NewExecution, Store, SweepEnding } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS executions (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  status TEXT NOT NULL,
  trigger TEXT NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER,
  heartbeat_at INTEGER NOT NULL,
  trace_id TEXT,
  traceparent TEXT,
  parent_execution_id TEXT,
  caller_key_id TEXT,
  owner_id TEXT NOT NULL,
  last_started_task TEXT,
  last_started_seq INTEGER NOT NULL DEFAULT -1,
  last_completed_task TEXT,
  last_completed_seq INTEGER NOT NULL DEFAULT -1,
  last_completed_success INTEGER,
  finalization_path TEXT,
  previous_status TEXT,
  completion_failure TEXT,
  task_outputs TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS executions_live ON executions (status, heartbeat_at);
CREATE INDEX IF NOT EXISTS executions_created ON executions (created_at);
`;

const LIVE = `status IN ('pending', 'running')`;
const ENDED = `status IN ('success', 'failed', 'timed_out', 'canceled')`;
const INSERT_COLUMNS = 'id, kind, target, status, trigger, input, created_at, heartbeat_at, trace_id, traceparent, parent_execution_id, caller_key_id, owner_id';

interface Row {
  id: string; kind: string; target: string; status: string; trigger: string;
  input: string | null; output: string | null; error: string | null;
  created_at: number; started_at: number | null; ended_at: number | null; heartbeat_at: number;
  trace_id: string | null; traceparent: string | null; parent_execution_id: string | null; caller_key_id: string | null; owner_id: string;
  last_started_task: string | null; last_completed_task: string | null; last_completed_success: number | null;
  finalization_path: string | null; previous_status: string | null; completion_failure: string | null; task_outputs: string;
}

/**
 * The embedded default store: one SQLite file in WAL mode, shared safely by several engine processes
 * (every state change is one conditional UPDATE, so the database decides who wins).
 *
 * Group commit: the writes made in one turn of the event loop share one transaction, committed at the
 * end of the turn (setImmediate). A commit costs file locks and a WAL frame for every page it touched,
 * and concurrent runs touch the same few pages, so under load this does the work of many commits in
 * one. Nothing resolves before its commit: a write, and a read made while a transaction is open, settle
 * when it commits (or reject if it fails), so callers only ever act on what is durable. The write lock
 * (BEGIN IMMEDIATE) is held for the rest of the turn only, so other processes on the file still interleave,
 * and a conditional UPDATE still decides alone who wins.
 */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #statements: Record<string, StatementSync>;
  /** Settles the operations of the open transaction; undefined when none is open. */
  #batch: Array<(failure?: unknown) => void> | undefined;

  constructor(path: string) {
    if (path !== ':memory:') createPrivately(path);
    this.#db = new DatabaseSync(path);
    // busy_timeout first: two engines opening one new file at once wait for each other's switch to WAL.
    this.#db.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.#db.exec(SCHEMA);
    migrate(this.#db);
    const db = this.#db;
    this.#statements = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      insert: db.prepare(`INSERT INTO executions (${INSERT_COLUMNS}) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      // Counted and inserted in one statement, inside the write transaction (BEGIN IMMEDIATE holds the file's
      // write lock): no other process sharing the file can insert between the count and the insert.
      admittedInsert: db.prepare(`INSERT INTO executions (${INSERT_COLUMNS}) SELECT ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE (SELECT count(*) FROM executions WHERE caller_key_id IS ? AND ${LIVE}) < ?`),
      get: db.prepare('SELECT * FROM executions WHERE id = ?'),
      // List pages: newest first; a page after a cursor starts below (created_at, id) in that order.
      ...listStatements(db, true),
      ...listStatements(db, false),
      running: db.prepare(`UPDATE executions SET status = 'running', started_at = COALESCE(started_at, ?), heartbeat_at = ?
        WHERE id = ? AND owner_id = ? AND status = 'pending'`),
      // A marker moves only forwards; the change counts (and so tells the owner it still owns the run) either way.
      taskStarted: db.prepare(`UPDATE executions SET
          last_started_task = CASE WHEN last_started_seq < ?1 THEN ?2 ELSE last_started_task END,
          last_started_seq = MAX(last_started_seq, ?1)
        WHERE id = ?3 AND owner_id = ?4 AND status = 'running'`),
      taskCompleted: db.prepare(`UPDATE executions SET
          last_completed_task = CASE WHEN last_completed_seq < ?1 THEN ?2 ELSE last_completed_task END,
          last_completed_success = CASE WHEN last_completed_seq < ?1 THEN ?3 ELSE last_completed_success END,
          task_outputs = CASE WHEN last_completed_seq < ?1 THEN json_set(task_outputs, '$.' || json_quote(?2), json(?4)) ELSE task_outputs END,
          last_completed_seq = MAX(last_completed_seq, ?1)
        WHERE id = ?5 AND owner_id = ?6 AND status = 'running'`),
      // SET expressions read the row as it was, so previous_status gets the status before this write. A paused
      // run gets no end time (the caller passes null): it has not ended.
      finalize: db.prepare(`UPDATE executions SET previous_status = status, status = ?, finalization_path = ?, output = ?, error = ?, ended_at = ?,
        completion_failure = COALESCE(?, completion_failure) WHERE id = ? AND status IN ('pending', 'running', 'paused')`),
      resume: db.prepare(`UPDATE executions SET status = 'running', owner_id = ?, heartbeat_at = ?, finalization_path = NULL, previous_status = NULL, ended_at = NULL
        WHERE id = ? AND status = 'paused'`),
      admittedResume: db.prepare(`UPDATE executions SET status = 'running', owner_id = ?, heartbeat_at = ?, finalization_path = NULL, previous_status = NULL, ended_at = NULL
        WHERE id = ? AND status = 'paused'
          AND (SELECT count(*) FROM executions AS live WHERE live.caller_key_id IS executions.caller_key_id AND live.${LIVE}) < ?`),
      completionFailure: db.prepare('UPDATE executions SET completion_failure = ? WHERE id = ?'),
      replaceData: db.prepare('UPDATE executions SET input = ?, task_outputs = ? WHERE id = ?'),
      heartbeat: db.prepare(`UPDATE executions SET heartbeat_at = ? WHERE owner_id = ? AND ${LIVE} RETURNING id`),
      sweep: db.prepare(`UPDATE executions SET previous_status = status, status = ?, finalization_path = ?, error = ?, ended_at = ?
        WHERE ${LIVE} AND heartbeat_at < ? RETURNING *`),
      deleteEnded: db.prepare(`DELETE FROM executions WHERE id IN (
          SELECT id FROM executions WHERE ${ENDED} AND ended_at < ? ORDER BY ended_at LIMIT ?
        ) RETURNING status`),
    };
  }

  async createExecution(e: NewExecution, admission?: Admission): Promise<boolean> {
    const values = [e.id, e.kind, e.target, e.trigger, json(e.input), e.createdAt, e.createdAt, e.traceId, e.traceparent, e.parentExecutionId, e.callerKeyId, e.ownerId];
    const result = await this.#write(() => (admission
      ? this.#statements.admittedInsert!.run(...values, e.callerKeyId, admission.maxLivePerCaller)
      : this.#statements.insert!.run(...values)));
    return result.changes === 1;
  }

  async getExecution(id: string): Promise<ExecutionRecord | undefined> {
    const row = await this.#read(() => this.#statements.get!.get(id) as Row | undefined);
    return row && toRecord(row);
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionRecord[]> {
    const name = `list${query.withData ? 'Data' : ''}`;
    const after = query.after ?? { createdAt: Number.MAX_SAFE_INTEGER, id: '' };
    const rows = await this.#read(() => query.status
      ? this.#statements[`${name}ByStatus`]!.all(query.status, after.createdAt, after.createdAt, after.id, query.limit)
      : this.#statements[name]!.all(after.createdAt, after.createdAt, after.id, query.limit));
    return (rows as unknown as Row[]).map(toRecord);
  }

  async markRunning(id: string, ownerId: string, at: number): Promise<boolean> {
    return (await this.#write(() => this.#statements.running!.run(at, at, id, ownerId))).changes === 1;
  }

  async markTaskStarted(id: string, ownerId: string, taskId: string, sequence: number): Promise<boolean> {
    return (await this.#write(() => this.#statements.taskStarted!.run(sequence, taskId, id, ownerId))).changes === 1;
  }

  async markTaskCompleted(id: string, ownerId: string, taskId: string, sequence: number, success: boolean, output: unknown): Promise<boolean> {
    const result = await this.#write(() => this.#statements.taskCompleted!.run(sequence, taskId, success ? 1 : 0, json(output) ?? 'null', id, ownerId));
    return result.changes === 1;
  }

  async finalize(id: string, f: Finalization): Promise<boolean> {
    const result = await this.#write(() => this.#statements.finalize!.run(
      f.status, f.path, json(f.output), f.error ? JSON.stringify(f.error) : null, f.status === 'paused' ? null : f.endedAt, f.completionFailure ?? null, id,
    ));
    return result.changes === 1;
  }

  async resume(id: string, ownerId: string, at: number, admission?: Admission): Promise<boolean> {
    return (await this.#write(() => (admission
      ? this.#statements.admittedResume!.run(ownerId, at, id, admission.maxLivePerCaller)
      : this.#statements.resume!.run(ownerId, at, id)))).changes === 1;
  }

  async recordCompletionFailure(id: string, failure: string): Promise<void> {
    await this.#write(() => this.#statements.completionFailure!.run(failure, id));
  }

  async replaceData(id: string, input: unknown, taskOutputs: Record<string, unknown>): Promise<void> {
    await this.#write(() => this.#statements.replaceData!.run(json(input), json(taskOutputs) ?? '{}', id));
  }

  async heartbeat(ownerId: string, at: number): Promise<string[]> {
    const rows = await this.#write(() => this.#statements.heartbeat!.all(at, ownerId) as Array<{ id: string }>);
    return rows.map((row) => row.id);
  }

  async sweepStale(staleBefore: number, ending: SweepEnding): Promise<ExecutionRecord[]> {
    const rows = await this.#write(() => this.#statements.sweep!.all(
      ending.status, ending.path, JSON.stringify(ending.error), ending.endedAt, staleBefore,
    ) as unknown as Row[]);
    return rows.map(toRecord);
  }

  async deleteEnded(endedBefore: number, limit: number): Promise<TerminalStatus[]> {
    const rows = await this.#write(() => this.#statements.deleteEnded!.all(endedBefore, limit) as Array<{ status: TerminalStatus }>);
    return rows.map((row) => row.status);
  }

  async close(): Promise<void> {
    this.#commit();
    if (this.#db.isOpen) this.#db.close();
  }

  /** Runs `work` in this turn's transaction (opened if need be); resolves with its result once committed. */
  #write<T>(work: () => T): Promise<T> {
    if (!this.#batch) {
      this.#statements.begin!.run();
      this.#batch = [];
      setImmediate(() => this.#commit());
    }
    // A failing statement is undone alone (SQLite's statement rollback); the transaction goes on.
    const result = work();
    return this.#settledWithBatch(result);
  }

  /** Reads see this process's uncommitted writes, so while a transaction is open they wait for its commit too. */
  #read<T>(work: () => T): Promise<T> {
    const result = work();
    return this.#batch ? this.#settledWithBatch(result) : Promise.resolve(result);
  }

  #settledWithBatch<T>(result: T): Promise<T> {
    return new Promise((resolve, reject) => this.#batch!.push((failure) => (failure === undefined ? resolve(result) : reject(failure))));
  }

  #commit(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    let failure: unknown;
    try {
      this.#statements.commit!.run();
    } catch (error) {
      failure = error;
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // Nothing left to undo.
      }
    }
    for (const settle of batch) settle(failure);
  }
}

/** The list statements, with or without the (possibly large) data columns. */
function listStatements(db: DatabaseSync, withData: boolean): Record<string, StatementSync> {
  const columns = withData ? '*' : `${LIST_COLUMNS}, NULL AS input, NULL AS output, '{}' AS task_outputs`;
  const after = '(created_at < ? OR (created_at = ? AND id > ?))';
  const name = `list${withData ? 'Data' : ''}`;
  return {
    [name]: db.prepare(`SELECT ${columns} FROM executions WHERE ${after} ORDER BY created_at DESC, id LIMIT ?`),
    [`${name}ByStatus`]: db.prepare(`SELECT ${columns} FROM executions WHERE status = ? AND ${after} ORDER BY created_at DESC, id LIMIT ?`),
  };
}

const LIST_COLUMNS = ['id', 'kind', 'target', 'status', 'trigger', 'error', 'created_at', 'started_at', 'ended_at', 'heartbeat_at', 'trace_id',
  'traceparent', 'parent_execution_id', 'caller_key_id', 'owner_id', 'last_started_task', 'last_completed_task', 'last_completed_success',
  'finalization_path', 'previous_status', 'completion_failure'].join(', ');

/** Brings a database created by an earlier version up to the current schema (columns are only ever added). */
function migrate(db: DatabaseSync): void {
  const columns = new Set((db.prepare('PRAGMA table_info(executions)').all() as Array<{ name: string }>).map((c) => c.name));
  if (!columns.has('traceparent')) db.exec('ALTER TABLE executions ADD COLUMN traceparent TEXT');
  if (!columns.has('caller_key_id')) db.exec('ALTER TABLE executions ADD COLUMN caller_key_id TEXT');
  if (!columns.has('previous_status')) db.exec('ALTER TABLE executions ADD COLUMN previous_status TEXT');
  // After the columns they index: the live runs of a caller (its in-flight limit), the ended runs by age (retention).
  db.exec(`CREATE INDEX IF NOT EXISTS executions_caller_live ON executions (caller_key_id) WHERE ${LIVE};
    CREATE INDEX IF NOT EXISTS executions_ended ON executions (ended_at) WHERE ${ENDED};`);
}

/**
 * Stored inputs are the callers' data: the database file is readable by its owner only (0600), and so are
 * SQLite's -wal and -shm files, which SQLite creates with the database file's mode. A directory the engine
 * creates for it is 0700; an existing one is left as it is (it may be shared, such as /tmp). A file an older
 * engine created 0644 is narrowed to 0600.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function parse(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

/** Decodes the JSON text and the 0/1 flag of a row for the shared mapping. */
function toRecord(row: Row): ExecutionRecord {
  return toSharedRecord({
    ...row,
    input: parse(row.input),
    output: parse(row.output),
    error: parse(row.error),
    last_completed_success: row.last_completed_success === null ? null : row.last_completed_success === 1,
    task_outputs: parse(row.task_outputs),
  });
}
