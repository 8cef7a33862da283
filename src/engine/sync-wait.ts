import { isTerminal } from '../domain.ts';
import type { ExecutionRecord, Store } from '../store/store.ts';
import type { Telemetry } from '../telemetry/recorder.ts';
import type { CompletionNotifier } from './completion.ts';
import { NotFoundError } from './errors.ts';

export interface WaitResult {
  readonly record: ExecutionRecord;
  /** False when the wait ran out before the run reached a terminal or paused state. */
  readonly completed: boolean;
}

export interface SyncWaitDependencies {
  readonly store: Store;
  readonly telemetry: Telemetry;
  readonly completions: CompletionNotifier;
  /** First step of the fallback poll (doubles up to 2 s); the completion itself wakes waits sooner. */
  readonly fallbackFirstMs?: number;
}

const FALLBACK_FIRST_MS = 250;
const FALLBACK_MAX_MS = 2_000;

/**
 * Waits until the execution is terminal or paused, or `timeoutMs` passes, in `workflow.wait_completion`.
 * Woken by the completion itself; a fallback poll with backoff covers completions this process cannot see
 * (a sweeper or a cancel on another engine sharing the database) and a wake-up that was somehow missed.
 */
export async function waitForCompletion(deps: SyncWaitDependencies, id: string, timeoutMs: number, workflowId?: string): Promise<WaitResult> {
  const { telemetry, store, completions } = deps;
  const startedAt = performance.now();
  return telemetry.inSpan('workflowWaitCompletion', { 'switchyard.execution.id': id }, async (span) => {
    const deadline = Date.now() + timeoutMs;
    let attempt = 0;
    let backoff = deps.fallbackFirstMs ?? FALLBACK_FIRST_MS;
    let outcome: 'completed' | 'timeout' | 'error' = 'error';
    try {
      for (;;) {
        // Subscribed before the read, so a completion between the read and the wait is never missed.
        const subscription = completions.subscribe(id);
        try {
          const record = await store.getExecution(id);
          attempt++;
          if (!record) throw new NotFoundError(`execution "${id}" does not exist`);
          span.addEvent('poll_iteration', { 'switchyard.wait.attempt': attempt, 'switchyard.execution.status': record.status });
          const settled = isTerminal(record.status) || record.status === 'paused';
          const remaining = deadline - Date.now();
          if (settled || remaining <= 0) {
            outcome = settled ? 'completed' : 'timeout';
            return { record, completed: settled };
          }
          let timer: NodeJS.Timeout | undefined;
          const fallback = new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.min(backoff, remaining));
          });
          await Promise.race([subscription.completed, fallback]);
          clearTimeout(timer);
          backoff = Math.max(backoff, Math.min(backoff * 2, FALLBACK_MAX_MS));
        } finally {
          subscription.unsubscribe();
        }
      }
    } finally {
      span.setAttributes({ 'switchyard.wait.iterations': attempt, 'switchyard.wait.outcome': outcome });
      if (workflowId !== undefined) {
        telemetry.add('workflowSyncPolls', attempt, { workflow_id: workflowId, outcome });
        telemetry.record('workflowSyncPollDuration', (performance.now() - startedAt) / 1000, { workflow_id: workflowId });
      }
    }
  });
}
