import type { Logger } from 'pino';
import type { ExecutionKind, FinalizationPath, TerminalStatus, Trigger } from '../domain.ts';
import type { ExecutionError, ExecutionRecord, Store } from '../store/store.ts';
import type { Telemetry } from '../telemetry/recorder.ts';
import type { CompletionNotifier } from './completion.ts';
import { redactValue, secretForms } from './secrets.ts';

/** How a run ends (or pauses): status, finalization path, and its output or error. */
export interface Ending {
  readonly status: TerminalStatus | 'paused';
  readonly path: FinalizationPath;
  readonly output?: unknown;
  readonly error?: ExecutionError;
}

/** What the finalizer needs to know of the run it ends. */
export interface FinalizedRun {
  readonly id: string;
  readonly kind: ExecutionKind;
  /** The workflow, task or agent it runs (for the log line that announces the ending). */
  readonly target: string;
  readonly trigger: Trigger;
  /** The run's trace id, for the log line (null when telemetry is off). */
  readonly traceId?: string | null;
  /** When the run started running (for its duration); null or absent when it never did. */
  readonly startedAt?: number | null;
  /** Secret values the run saw: nothing stored about it carries them. */
  readonly secrets?: ReadonlySet<string>;
}

/**
 * The one way a run ends, whoever ends it: the run itself (success, failure, its own timeout, a pause),
 * a cancel, a shutdown, or the sweep of a dead engine's runs. The store write is conditional, and only the
 * writer whose write changed the run counts it, logs it and wakes its waiters, so a run is recorded, counted
 * and announced exactly once across every process sharing the database.
 */
export class Finalizer {
  readonly #store: Store;
  readonly #telemetry: Telemetry;
  readonly #logger: Logger;
  readonly #completions: CompletionNotifier;

  constructor(options: { store: Store; telemetry: Telemetry; logger: Logger; completions: CompletionNotifier }) {
    this.#store = options.store;
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
    this.#completions = options.completions;
  }

  /**
   * Writes the ending if the run is not terminal yet; true when this call's write won. If the write itself
   * fails (say, an output that cannot be stored), a fallback write without the output records the run as
   * failed, with what went wrong as its completion failure.
   */
  async finalize(run: FinalizedRun, unredacted: Ending): Promise<boolean> {
    // What is stored (and so answered) carries no secret the run saw, in any escaped form.
    const forms = secretForms(run.secrets ?? []);
    const ending = !forms.pattern ? unredacted : { ...unredacted, output: redactValue(unredacted.output, forms), error: redactValue(unredacted.error, forms) };
    const endedAt = Date.now();
    let status = ending.status;
    let applied = false;
    try {
      applied = await this.#store.finalize(run.id, { ...ending, endedAt });
    } catch (error) {
      const failure = `recording the ${ending.status} completion failed: ${(error as Error).message}`;
      this.#logger.error({ err: error, execution_id: run.id }, 'finalizing an execution failed; recording a fallback completion');
      status = 'failed';
      try {
        applied = await this.#store.finalize(run.id, {
          status, path: 'fallback_completed', endedAt, completionFailure: failure, error: { message: failure, code: 'completion_failed' },
        });
      } catch (fallbackError) {
        this.#logger.error({ err: fallbackError, execution_id: run.id }, 'fallback completion failed too; the sweeper will finalize the execution');
      }
    }
    if (applied) this.#ended(run, status, endedAt, status === ending.status ? ending.path : 'fallback_completed');
    return applied;
  }

  /** Accounts for runs the store's sweep has just finalized (it returns each to exactly one sweeper). */
  swept(records: readonly ExecutionRecord[]): void {
    for (const record of records) {
      const previousStatus = record.previousStatus === 'pending' ? 'pending' : 'running';
      this.#telemetry.add('workflowExecutionsSwept', 1, { previous_status: previousStatus });
      this.#logger.warn({ execution_id: record.id, previous_status: previousStatus, last_started_task: record.lastStartedTask, last_completed_task: record.lastCompletedTask },
        'swept a stale execution: its engine stopped sending heartbeats');
      // No duration: the run did not end when it was swept, its engine died some time before.
      this.#ended({ ...record, startedAt: null }, record.status as TerminalStatus, record.endedAt ?? Date.now(), record.finalizationPath ?? 'stale_swept');
    }
  }

  /** Counts and announces an ending this process's write applied: one info line per ending, whoever ended it. */
  #ended(run: FinalizedRun, status: TerminalStatus | 'paused', endedAt: number, path: FinalizationPath): void {
    const durationMs = run.startedAt ? endedAt - run.startedAt : null;
    this.#logger.info({
      execution_id: run.id, kind: run.kind, target: run.target, status, finalization_path: path, duration_ms: durationMs,
      ...(run.traceId ? { trace_id: run.traceId } : {}),
    }, `${run.kind} ${run.target} ${status}${durationMs === null ? '' : ` in ${durationMs} ms`}`);
    if (run.kind === 'workflow' && status !== 'paused') {
      this.#telemetry.add('workflowExecutionsCompleted', 1, { trigger: run.trigger, status });
      if (run.startedAt) this.#telemetry.record('workflowExecutionDuration', (endedAt - run.startedAt) / 1000, { trigger: run.trigger, status });
    }
    this.#completions.notify(run.id);
  }
}
