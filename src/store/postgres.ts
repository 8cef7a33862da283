import pg from 'pg';
import { redactCredentials, redactUrl, StoreUnavailableError } from './errors.ts';
import { toRecord, type DecodedRow as Row } from './row.ts';
import type { TerminalStatus } from '../domain.ts';
import type { Admission, ExecutionQuery, ExecutionRecord, Finalization, NewExecution, Store, SweepEnding } from './store.ts';

export interface PostgresStoreOptions {
  /** postgres:// or postgresql:// URL (pg-connection-string: host, port, database, user, password, sslmode, ...). */
  readonly url: string;
  /** Replaces the URL's password (the engine reads it from SWITCHYARD_DB_PASSWORD_FILE). */
  readonly password?: string;
  /** Connections at most (default 10); a query waits for a free one up to connectTimeoutMs. */
  readonly poolMax?: number;
  /** Server-side statement_timeout of every connection (default 5000 ms). */
  readonly statementTimeoutMs?: number;
  /** How long to wait for a connection, new or from the pool (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /** Shown in pg_stat_activity (default `switchyard`). */
  readonly applicationName?: string;
  /** Errors of idle connections (the server went away between queries); the next query reports them too. */
  readonly onIdleError?: (error: StoreUnavailableError) => void;
}

/**
 * The schema, one migration a version, applied in order by the engine at start (`PostgresStore.open`).
 * Applied migrations are never edited: a change is a new, additive migration (older engines sharing the
 * database keep working while replicas are upgraded one by one).
 */
const MIGRATIONS: ReadonlyArray<{ readonly version: number; readonly description: string; readonly sql: string }> = [
  {
    version: 1,
    description: 'executions: records, durable diagnostics, ownership and heartbeat, task outputs',
    // Ids compare byte-wise (COLLATE "C"), as SQLite's do: list pages and cursors order ties the same way.
    // Times are epoch milliseconds (bigint), as the engine passes them.
    sql: `
CREATE TABLE executions (
  id text COLLATE "C" PRIMARY KEY,
  kind text NOT NULL,
  target text NOT NULL,
  status text NOT NULL,
  trigger text NOT NULL,
  input jsonb,
  output jsonb,
  error jsonb,
  created_at bigint NOT NULL,
  started_at bigint,
  ended_at bigint,
  heartbeat_at bigint NOT NULL,
  trace_id text,
  traceparent text,
  parent_execution_id text,
  caller_key_id text,
  owner_id text NOT NULL,
  last_started_task text,
  last_started_seq integer NOT NULL DEFAULT -1,
  last_completed_task text,
  last_completed_seq integer NOT NULL DEFAULT -1,
  last_completed_success boolean,
  finalization_path text,
  previous_status text,
  completion_failure text,
  task_outputs jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX executions_live ON executions (status, heartbeat_at);
CREATE INDEX executions_created ON executions (created_at DESC, id);
CREATE INDEX executions_status_created ON executions (status, created_at DESC, id);
CREATE INDEX executions_owner_live ON executions (owner_id) WHERE status IN ('pending', 'running');
`,
  },
  {
    version: 2,
    description: 'executions: indexes for the in-flight limit per caller and for retention',
    sql: `
CREATE INDEX executions_caller_live ON executions (caller_key_id) WHERE status IN ('pending', 'running');
CREATE INDEX executions_ended ON executions (ended_at) WHERE status IN ('success', 'failed', 'timed_out', 'canceled');
`,
  },
];

/** pg_advisory_xact_lock key of the migration ('SWYD'): one engine migrates at a time, the others wait, then find it done. */
const MIGRATION_LOCK = 1_398_233_412;
/** A migration may wait for another engine's: longer than a statement's timeout. */
const MIGRATION_TIMEOUT_MS = 120_000;

const LIVE = `status IN ('pending', 'running')`;
const ENDED = `status IN ('success', 'failed', 'timed_out', 'canceled')`;
/** Namespace (the first key) of the per-caller advisory locks ('SWYC'); the second is a hash of the caller's key id. */
const CALLER_LOCK = 1_398_233_411;
const COLUMNS = `id, kind, target, status, trigger, error, created_at, started_at, ended_at, heartbeat_at, trace_id, traceparent,
  parent_execution_id, caller_key_id, owner_id, last_started_task, last_completed_task, last_completed_success, finalization_path,
  previous_status, completion_failure`;
const WITHOUT_DATA = `${COLUMNS}, NULL::jsonb AS input, NULL::jsonb AS output, '{}'::jsonb AS task_outputs`;
const AFTER = '(created_at < $1 OR (created_at = $1 AND id > $2))';

const INSERT = `INSERT INTO executions (id, kind, target, status, trigger, input, created_at, heartbeat_at, trace_id, traceparent, parent_execution_id, caller_key_id, owner_id)
    SELECT $1, $2, $3, 'pending', $4, $5::jsonb, $6, $6, $7, $8, $9, $10, $11`;
const SQL = {
  insert: INSERT,
  // One caller at a time across every engine: the advisory lock is held until the transaction ends, so the
  // count (a statement after the lock, hence a snapshot that sees every insert committed before it) and the
  // insert are one step. NULL (the key-less mode) is one caller too.
  lockCaller: `SELECT pg_advisory_xact_lock(${CALLER_LOCK}, hashtext(COALESCE($1::text, '')))`,
  admittedInsert: `${INSERT}
    WHERE (SELECT count(*) FROM executions WHERE caller_key_id IS NOT DISTINCT FROM $10 AND ${LIVE}) < $12`,
  // Oldest first, locked SKIP LOCKED: engines deleting at once each take other rows, and each row is deleted
  // (and counted) by one of them.
  deleteEnded: `DELETE FROM executions WHERE id IN (
      SELECT id FROM executions WHERE ${ENDED} AND ended_at < $1 ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED
    ) RETURNING status`,
  get: 'SELECT * FROM executions WHERE id = $1',
  list: (withData: boolean, byStatus: boolean) => `SELECT ${withData ? '*' : WITHOUT_DATA} FROM executions
    WHERE ${byStatus ? 'status = $4 AND ' : ''}${AFTER} ORDER BY created_at DESC, id LIMIT $3`,
  running: `UPDATE executions SET status = 'running', started_at = COALESCE(started_at, $3), heartbeat_at = $3
    WHERE id = $1 AND owner_id = $2 AND status = 'pending'`,
  // A marker moves only forwards; the row still counts as changed (the owner still owns a running run) either way.
  // SET expressions read the row as it was before this statement.
  taskStarted: `UPDATE executions SET
      last_started_task = CASE WHEN last_started_seq < $3 THEN $4 ELSE last_started_task END,
      last_started_seq = GREATEST(last_started_seq, $3)
    WHERE id = $1 AND owner_id = $2 AND status = 'running'`,
  taskCompleted: `UPDATE executions SET
      last_completed_task = CASE WHEN last_completed_seq < $3 THEN $4 ELSE last_completed_task END,
      last_completed_success = CASE WHEN last_completed_seq < $3 THEN $5 ELSE last_completed_success END,
      task_outputs = CASE WHEN last_completed_seq < $3 THEN task_outputs || jsonb_build_object($4::text, $6::jsonb) ELSE task_outputs END,
      last_completed_seq = GREATEST(last_completed_seq, $3)
    WHERE id = $1 AND owner_id = $2 AND status = 'running'`,
  // previous_status reads the status before this write. A paused run has not ended: no end time.
  finalize: `UPDATE executions SET previous_status = status, status = $2, finalization_path = $3, output = $4::jsonb, error = $5::jsonb,
      ended_at = CASE WHEN $2 = 'paused' THEN NULL ELSE $6::bigint END, completion_failure = COALESCE($7, completion_failure)
    WHERE id = $1 AND status IN ('pending', 'running', 'paused')`,
  resume: `UPDATE executions SET status = 'running', owner_id = $2, heartbeat_at = $3, finalization_path = NULL, previous_status = NULL, ended_at = NULL
    WHERE id = $1 AND status = 'paused'`,
  callerOf: 'SELECT caller_key_id FROM executions WHERE id = $1',
  admittedResume: `UPDATE executions SET status = 'running', owner_id = $2, heartbeat_at = $3, finalization_path = NULL, previous_status = NULL, ended_at = NULL
    WHERE id = $1 AND status = 'paused'
      AND (SELECT count(*) FROM executions AS live WHERE live.caller_key_id IS NOT DISTINCT FROM executions.caller_key_id AND live.${LIVE}) < $4`,
  completionFailure: 'UPDATE executions SET completion_failure = $2 WHERE id = $1',
  replaceData: 'UPDATE executions SET input = $2, task_outputs = $3 WHERE id = $1',
  heartbeat: `UPDATE executions SET heartbeat_at = $2 WHERE owner_id = $1 AND ${LIVE} RETURNING id`,
  // The stale rows are locked first, SKIP LOCKED: a row another sweeper (or a heartbeat, or a finalizer) holds
  // is left to it, so each row goes to one sweeper and no two sweeps wait on each other. A row changed and
  // committed meanwhile is checked again against the WHERE before it is locked.
  sweep: `WITH stale AS (
      SELECT id, status FROM executions WHERE ${LIVE} AND heartbeat_at < $1 ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE executions e SET previous_status = stale.status, status = $2, finalization_path = $3, error = $4::jsonb, ended_at = $5
    FROM stale WHERE e.id = stale.id
    RETURNING e.*`,
} as const;


const INT8_OID = 20;
/** bigint columns hold epoch milliseconds, well inside a double's exact range: read them as numbers, not strings. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary'
    ? (value: string) => Number(value)
    : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/**
 * Executions in PostgreSQL, for several engine replicas sharing one database. Every state change is one
 * conditional statement, so the database decides who wins across processes: `finalize` only changes a
 * run that is not terminal yet, the markers only move forwards and only for the run's owner while it runs,
 * and the sweep locks the stale rows it takes (SKIP LOCKED) so each is returned to one caller.
 *
 * Connections: a pool of at most `poolMax`, each with a server-side statement_timeout; waiting for a
 * connection is bounded by `connectTimeoutMs`. Every failure surfaces as a StoreUnavailableError (the API
 * answers 503), its message without credentials.
 *
 * JSON columns are jsonb: object keys read back in jsonb's order (not the order written), and since jsonb
 * cannot hold U+0000 nor a lone UTF-16 surrogate, those are written as U+FFFD (SQLite keeps them).
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #secrets: readonly string[];
  readonly #label: string;

  /** Connects, creates or migrates the schema, and answers once the store is usable. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      await store.#migrate();
    } catch (error) {
      await store.close().catch(() => {});
      throw store.#unavailable(error);
    }
    return store;
  }

  private constructor(options: PostgresStoreOptions) {
    const password = options.password ?? passwordOf(options.url);
    this.#secrets = password ? [password, encodeURIComponent(password)] : [];
    this.#label = redactUrl(options.url);
    this.#pool = new pg.Pool({
      // pg lets the URL's fields win over separate options, so a password from a file goes into the URL (in memory only).
      connectionString: options.password === undefined ? options.url : withPassword(options.url, options.password),
      max: options.poolMax ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: options.statementTimeoutMs ?? 5_000,
      application_name: (options.applicationName ?? 'switchyard').slice(0, 63),
      keepAlive: true,
      types: TYPES,
    });
    // An idle connection that fails (the server restarted) must not crash the process: the pool drops it.
    this.#pool.on('error', (error) => options.onIdleError?.(this.#unavailable(error)));
  }

  /** The URL without its password, for logs. */
  get label(): string {
    return this.#label;
  }

  async createExecution(e: NewExecution, admission?: Admission): Promise<boolean> {
    const values = [e.id, e.kind, e.target, e.trigger, jsonb(e.input), e.createdAt, e.traceId, e.traceparent, e.parentExecutionId, e.callerKeyId, e.ownerId];
    if (!admission) return (await this.#query(SQL.insert, values)).rowCount === 1;
    return this.#transaction(async (client) => {
      await client.query(SQL.lockCaller, [e.callerKeyId]);
      return (await client.query(SQL.admittedInsert, [...values, admission.maxLivePerCaller])).rowCount === 1;
    });
  }

  async getExecution(id: string): Promise<ExecutionRecord | undefined> {
    const { rows } = await this.#query<Row>(SQL.get, [id]);
    return rows[0] && toRecord(rows[0]);
  }

  async listExecutions(query: ExecutionQuery): Promise<ExecutionRecord[]> {
    const after = query.after ?? { createdAt: Number.MAX_SAFE_INTEGER, id: '' };
    const params: unknown[] = [after.createdAt, after.id, query.limit];
    if (query.status) params.push(query.status);
    const { rows } = await this.#query<Row>(SQL.list(query.withData ?? false, query.status !== undefined), params);
    return rows.map(toRecord);
  }

  async markRunning(id: string, ownerId: string, at: number): Promise<boolean> {
    return (await this.#query(SQL.running, [id, ownerId, at])).rowCount === 1;
  }

  async markTaskStarted(id: string, ownerId: string, taskId: string, sequence: number): Promise<boolean> {
    return (await this.#query(SQL.taskStarted, [id, ownerId, sequence, taskId])).rowCount === 1;
  }

  async markTaskCompleted(id: string, ownerId: string, taskId: string, sequence: number, success: boolean, output: unknown): Promise<boolean> {
    return (await this.#query(SQL.taskCompleted, [id, ownerId, sequence, taskId, success, jsonb(output) ?? 'null'])).rowCount === 1;
  }

  async finalize(id: string, f: Finalization): Promise<boolean> {
    const result = await this.#query(SQL.finalize, [
      id, f.status, f.path, jsonb(f.output), f.error ? jsonb(f.error) : null, f.endedAt, f.completionFailure === undefined ? null : text(f.completionFailure),
    ]);
    return result.rowCount === 1;
  }

  async resume(id: string, ownerId: string, at: number, admission?: Admission): Promise<boolean> {
    if (!admission) return (await this.#query(SQL.resume, [id, ownerId, at])).rowCount === 1;
    return this.#transaction(async (client) => {
      const { rows } = await client.query<{ caller_key_id: string | null }>(SQL.callerOf, [id]);
      if (rows.length === 0) return false;
      await client.query(SQL.lockCaller, [rows[0]!.caller_key_id]);
      return (await client.query(SQL.admittedResume, [id, ownerId, at, admission.maxLivePerCaller])).rowCount === 1;
    });
  }

  async recordCompletionFailure(id: string, failure: string): Promise<void> {
    await this.#query(SQL.completionFailure, [id, text(failure)]);
  }

  async replaceData(id: string, input: unknown, taskOutputs: Record<string, unknown>): Promise<void> {
    await this.#query(SQL.replaceData, [id, jsonb(input), jsonb(taskOutputs) ?? '{}']);
  }

  async heartbeat(ownerId: string, at: number): Promise<string[]> {
    const { rows } = await this.#query<{ id: string }>(SQL.heartbeat, [ownerId, at]);
    return rows.map((row) => row.id);
  }

  async sweepStale(staleBefore: number, ending: SweepEnding): Promise<ExecutionRecord[]> {
    const { rows } = await this.#query<Row>(SQL.sweep, [staleBefore, ending.status, ending.path, jsonb(ending.error), ending.endedAt]);
    return rows.map(toRecord);
  }

  async deleteEnded(endedBefore: number, limit: number): Promise<TerminalStatus[]> {
    const { rows } = await this.#query<{ status: TerminalStatus }>(SQL.deleteEnded, [endedBefore, limit]);
    return rows.map((row) => row.status);
  }

  async close(): Promise<void> {
    if (!this.#pool.ended && !this.#pool.ending) await this.#pool.end();
  }

  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** Runs `work` in one transaction on one connection; its errors become StoreUnavailableErrors like every query's. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#unavailable(error);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      broken = error;
      await client.query('ROLLBACK').catch(() => {});
      throw this.#unavailable(error);
    } finally {
      // A connection whose transaction could not be ended cleanly is closed rather than reused.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /**
   * Creates or brings the schema up to date, in one transaction under an advisory lock: engines starting
   * together on one database take turns, and the ones after the first find nothing left to do.
   */
  async #migrate(): Promise<void> {
    await this.#transaction(async (client) => {
      await client.query(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [migration.version, migration.description]);
      }
    });
  }

  #unavailable(error: unknown): StoreUnavailableError {
    if (error instanceof StoreUnavailableError) return error;
    const e = error as { message?: string; code?: unknown } | null;
    const message = redactCredentials(e?.message || String(error), this.#secrets);
    return new StoreUnavailableError(`PostgreSQL: ${message}`, { code: typeof e?.code === 'string' ? e.code : undefined, cause: error });
  }
}

/** The password of a postgres URL, if it has one (to keep it out of every message). */
function passwordOf(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * JSON text for a jsonb parameter. jsonb refuses U+0000 and lone surrogates, which JSON.stringify writes as
 * `\u0000` and `\udXXX` escapes (paired surrogates it writes as the characters themselves): those become
 * U+FFFD. An escape is one only after an even run of backslashes (`\\u0000` is a backslash and `u0000`).
 */
function jsonb(value: unknown): string | null {
  if (value === undefined) return null;
  const json = JSON.stringify(value);
  return json.includes('\\u') ? json.replace(/(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g, '$1\\ufffd') : json;
}

/** A text column cannot hold U+0000 either. */
function text(value: string): string {
  return value.replaceAll('\u0000', '\ufffd');
}


function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}
