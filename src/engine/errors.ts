import type { StopReason } from '../domain.ts';
import type { ExecutionRecord } from '../store/store.ts';

/** A run failed for a reason worth naming: `code` is short and stable (tool error kind, timeout, ...). */
export class ExecutionFailure extends Error {
  override name = 'ExecutionFailure';
  readonly code: string;
  readonly taskId: string | undefined;
  constructor(message: string, code: string, taskId?: string) {
    super(message);
    this.code = code;
    this.taskId = taskId;
  }
}

/** The reason an execution's abort signal fires with: why it was stopped (domain STOP_ENDINGS maps it to an ending). */
export class StopSignal extends Error {
  override name = 'StopSignal';
  readonly reason: StopReason;
  constructor(reason: StopReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export function stopReasonOf(signal: AbortSignal): StopReason | undefined {
  if (!signal.aborted) return undefined;
  return signal.reason instanceof StopSignal ? signal.reason.reason : 'canceled';
}

/** A request named something that does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  /** Its error.type (telemetry/error-type.ts). */
  readonly code = 'not_found';
}
/** The input does not satisfy the target's input schema. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  /** Its error.type (telemetry/error-type.ts). */
  readonly code = 'invalid_input';
  readonly problems: string[];
  constructor(message: string, problems: string[]) {
    super(message);
    this.problems = problems;
  }
}
/** The execution is not in a state that allows the operation. */
export class ConflictError extends Error {
  override name = 'ConflictError';
  /** Its error.type (telemetry/error-type.ts). */
  readonly code = 'conflict';
  readonly record: ExecutionRecord;
  constructor(message: string, record: ExecutionRecord) {
    super(message);
    this.record = record;
  }
}
/** The engine is shutting down and accepts no new work. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  /** Its error.type (telemetry/error-type.ts). */
  readonly code = 'unavailable';
}
/** The caller already has as many executions in flight (pending or running) as it may; it should retry later. */
export class TooManyExecutionsError extends Error {
  override name = 'TooManyExecutionsError';
  /** Its error.type (telemetry/error-type.ts). */
  readonly code = 'too_many_executions';
  /** When to try again: a slot frees as soon as one of the caller's runs ends, which the engine cannot foresee. */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
