import type { ExecutionKind, ExecutionStatus, FinalizationPath, TerminalStatus, Trigger } from '../domain.ts';

export interface ExecutionError {
  readonly message: string;
  /** Short machine-readable kind: a tool error kind, `timeout`, `canceled`, `validation`, ... */
  readonly code: string;
  readonly taskId?: string;
}

/** One execution as stored: what ran, how it went, and where it got to. */
export interface ExecutionRecord {
  readonly id: string;
  readonly kind: ExecutionKind;
  readonly target: string;
  readonly status: ExecutionStatus;
  readonly trigger: Trigger;
  readonly input: unknown;
  readonly output: unknown;
  readonly error: ExecutionError | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly heartbeatAt: number;
  readonly traceId: string | null;
  /** W3C traceparent of the run's span: a resumed run continues that trace. */
  readonly traceparent: string | null;
  readonly parentExecutionId: string | null;
  /** Id of the API key the execution was started with (never the key); null when the engine runs without keys. */
  readonly callerKeyId: string | null;
  /** The engine process that owns the run and keeps its heartbeat. */
  readonly ownerId: string;
  readonly lastStartedTask: string | null;
  readonly lastCompletedTask: string | null;
  readonly lastCompletedSuccess: boolean | null;
  readonly finalizationPath: FinalizationPath | null;
  /** The status the run had when it was last finalized (ended or paused): pending, running or paused; null until then. */
  readonly previousStatus: ExecutionStatus | null;
  readonly completionFailure: string | null;
  /** Outputs of the tasks completed so far, by task id (lets a paused run resume). */
  readonly taskOutputs: Record<string, unknown>;
}

export type NewExecution = Pick<ExecutionRecord, 'id' | 'kind' | 'target' | 'trigger' | 'input' | 'traceId' | 'traceparent' | 'parentExecutionId' | 'callerKeyId' | 'ownerId' | 'createdAt'>;

/** What a new execution must fit within, checked by the store atomically with the insert. */
export interface Admission {
  /**
   * Most pending or running executions one caller (`callerKeyId`; null, the key-less mode, counts as one caller)
   * may have, the new one included, across every engine sharing the store.
   */
  readonly maxLivePerCaller: number;
}

export interface Finalization {
  readonly status: TerminalStatus | 'paused';
  readonly path: FinalizationPath;
  readonly output?: unknown;
  readonly error?: ExecutionError | null;
  /** When the run ended (ignored for a pause: a paused run has not ended). */
  readonly endedAt: number;
  readonly completionFailure?: string;
}

/** How the sweep ends a stale run (the domain's STOP_ENDINGS.stale, with its message and time). */
export interface SweepEnding {
  readonly status: TerminalStatus;
  readonly path: FinalizationPath;
  readonly error: ExecutionError;
  readonly endedAt: number;
}

export interface ExecutionQuery {
  readonly status?: ExecutionStatus;
  readonly limit: number;
  /** Only executions after this one in the list order (newest first): the cursor of the previous page. */
  readonly after?: { readonly createdAt: number; readonly id: string };
  /**
   * Whether to load input, output and task outputs (they may be megabytes each); without them they read as
   * null and {}. Default false: a list is an index, one execution is read with its data.
   */
  readonly withData?: boolean;
}

/**
 * Where executions live. Every method is async so that a networked store (Postgres) can implement the
 * same contract; the embedded default answers synchronously underneath.
 *
 * Markers are monotonic: a task marker with a lower sequence than the stored one is ignored, so a late
 * write can never move a run backwards. `finalize` only changes a run that is not terminal yet and says
 * whether it did: that is what makes one finalizer win, across processes sharing the database.
 */
export interface Store {
  /**
   * Records a new pending execution. With an admission, only if its caller has fewer than
   * `admission.maxLivePerCaller` pending or running executions, counted and inserted as one step that no other
   * engine sharing the store can interleave with; false when refused (nothing written), true when recorded.
   */
  createExecution(execution: NewExecution, admission?: Admission): Promise<boolean>;
  getExecution(id: string): Promise<ExecutionRecord | undefined>;
  listExecutions(query: ExecutionQuery): Promise<ExecutionRecord[]>;
  /** pending -> running, only while the run is pending and owned by `ownerId`; false otherwise (canceled or swept: stop). */
  markRunning(id: string, ownerId: string, at: number): Promise<boolean>;
  /**
   * Records the task marker (monotonic by sequence) if the run is running under `ownerId`, and says whether it
   * is: false means the run was canceled, swept or finalized by someone else, and its owner must stop.
   */
  markTaskStarted(id: string, ownerId: string, taskId: string, sequence: number): Promise<boolean>;
  markTaskCompleted(id: string, ownerId: string, taskId: string, sequence: number, success: boolean, output: unknown): Promise<boolean>;
  /** Finalizes a run that is pending, running or paused (keeping the status it had as previous_status); false when it was already terminal. */
  finalize(id: string, finalization: Finalization): Promise<boolean>;
  /**
   * Sets a paused run running again under a new owner; false when it was not paused or, with an admission,
   * when the run's caller (its callerKeyId) already has `maxLivePerCaller` live runs (counted atomically with
   * the update, as in createExecution).
   */
  resume(id: string, ownerId: string, at: number, admission?: Admission): Promise<boolean>;
  /** Records that completing the run went wrong, without touching its status. */
  recordCompletionFailure(id: string, failure: string): Promise<void>;
  /**
   * Replaces a run's stored input and task outputs (whatever its status): how a run redacts a secret it
   * learned after they were written (a model-driven agent's tool call). Nothing else changes.
   */
  replaceData(id: string, input: unknown, taskOutputs: Record<string, unknown>): Promise<void>;
  /** Refreshes the heartbeat of every live run of one owner; returns the ids of the live runs it still owns. */
  heartbeat(ownerId: string, at: number): Promise<string[]>;
  /**
   * Finalizes with `ending` every pending or running run whose heartbeat is older than `staleBefore`,
   * atomically, and returns them (with their previous status). Safe to call concurrently from several
   * processes: each run is returned to exactly one caller.
   */
  sweepStale(staleBefore: number, ending: SweepEnding): Promise<ExecutionRecord[]>;
  /**
   * Deletes up to `limit` executions that ended (success, failed, timed_out, canceled) before `endedBefore`,
   * oldest first, and returns the statuses of the deleted ones. Safe to call concurrently from several
   * processes: each execution is deleted, and returned, once. Paused executions are kept (they have not ended).
   */
  deleteEnded(endedBefore: number, limit: number): Promise<TerminalStatus[]>;
  close(): Promise<void>;
}
