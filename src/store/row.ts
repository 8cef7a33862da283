import type { ExecutionKind, ExecutionStatus, FinalizationPath, Trigger } from '../domain.ts';
import type { ExecutionError, ExecutionRecord } from './store.ts';

/**
 * An executions row with its JSON columns decoded and its success flag a boolean: what PostgreSQL returns
 * as is, and what SqliteStore makes of its JSON text and 0/1. Both stores read records through `toRecord`.
 */
export interface DecodedRow {
  id: string; kind: string; target: string; status: string; trigger: string;
  input: unknown; output: unknown; error: unknown;
  created_at: number; started_at: number | null; ended_at: number | null; heartbeat_at: number;
  trace_id: string | null; traceparent: string | null; parent_execution_id: string | null; caller_key_id: string | null; owner_id: string;
  last_started_task: string | null; last_completed_task: string | null; last_completed_success: boolean | null;
  finalization_path: string | null; previous_status: string | null; completion_failure: string | null; task_outputs: unknown;
}

/** Rows finalized by a cancel before 0.1.0 spelt the path `cancelled`; it reads back as `canceled`, like the status. */
function finalizationPathOf(text: string | null): FinalizationPath | null {
  return text === 'cancelled' ? 'canceled' : (text as FinalizationPath | null);
}

export function toRecord(row: DecodedRow): ExecutionRecord {
  return {
    id: row.id,
    kind: row.kind as ExecutionKind,
    target: row.target,
    status: row.status as ExecutionStatus,
    trigger: row.trigger as Trigger,
    input: row.input,
    output: row.output,
    error: row.error as ExecutionError | null,
    createdAt: row.created_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    heartbeatAt: row.heartbeat_at,
    traceId: row.trace_id,
    traceparent: row.traceparent,
    parentExecutionId: row.parent_execution_id,
    callerKeyId: row.caller_key_id,
    ownerId: row.owner_id,
    lastStartedTask: row.last_started_task,
    lastCompletedTask: row.last_completed_task,
    lastCompletedSuccess: row.last_completed_success,
    finalizationPath: finalizationPathOf(row.finalization_path),
    previousStatus: row.previous_status as ExecutionStatus | null,
    completionFailure: row.completion_failure,
    taskOutputs: row.task_outputs as Record<string, unknown>,
  };
}
