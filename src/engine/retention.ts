import type { Logger } from 'pino';
import type { TerminalStatus } from '../domain.ts';
import type { Store } from '../store/store.ts';
import type { Telemetry } from '../telemetry/recorder.ts';

export interface RetentionOptions {
  readonly store: Store;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** How long an ended execution is kept after its end (SWITCHYARD_RETENTION_DAYS). */
  readonly periodMs: number;
  /** Executions deleted per statement (SWITCHYARD_RETENTION_BATCH): each batch is one short write. */
  readonly batchSize: number;
}

/**
 * Deletes ended executions once they are older than the retention period, in batches, oldest first. Each
 * batch is one short statement, and the event loop turns between batches, so a large backlog (the first run
 * on a database that kept everything) never holds the store's write lock or the engine for long. Engines
 * sharing the store may run it at the same time: the store hands each execution to one deleter, so each is
 * counted once (executions_retention_deleted_total). Paused executions are kept: they have not ended.
 */
export class Retention {
  readonly #o: RetentionOptions;
  #running: Promise<number> | undefined;

  constructor(options: RetentionOptions) {
    if (!(options.periodMs > 0) || !Number.isSafeInteger(options.batchSize) || options.batchSize < 1) {
      throw new Error(`retention needs a positive period and batch size, got ${options.periodMs} ms and ${options.batchSize}`);
    }
    this.#o = options;
  }

  /** Deletes every execution that ended before `now` minus the period; resolves with how many. One pass at a time. */
  deleteExpired(now = Date.now()): Promise<number> {
    this.#running ??= this.#deleteAll(now - this.#o.periodMs).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #deleteAll(endedBefore: number): Promise<number> {
    const { store, telemetry, logger, batchSize } = this.#o;
    const deleted: Partial<Record<TerminalStatus, number>> = {};
    let total = 0;
    try {
      for (;;) {
        const statuses = await store.deleteEnded(endedBefore, batchSize);
        const batch: Partial<Record<TerminalStatus, number>> = {};
        for (const status of statuses) batch[status] = (batch[status] ?? 0) + 1;
        for (const [status, count] of Object.entries(batch) as Array<[TerminalStatus, number]>) {
          telemetry.add('executionsDeleted', count, { status });
          deleted[status] = (deleted[status] ?? 0) + count;
        }
        total += statuses.length;
        if (statuses.length < batchSize) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      logger.error({ err: error, deleted: total }, 'deleting expired executions failed; the next pass tries again');
    }
    if (total > 0) logger.info({ deleted, ended_before: new Date(endedBefore).toISOString() }, `deleted ${total} executions past the retention period`);
    return total;
  }
}
