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

/** Why an abort signal fired, as the status the run ends with. */
export type StopReason = 'canceled' | 'timed_out' | 'shutdown';

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
