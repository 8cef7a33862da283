/**
 * The engine's vocabulary: what an execution is, how it can be, and how it ends. The store, the API and the
 * engine speak it; the telemetry catalogue builds its label sets from it (a status is a domain fact first,
 * a label second), so nothing here depends on telemetry.
 */

export const EXECUTION_KINDS = ['workflow', 'task', 'agent'] as const;
export type ExecutionKind = (typeof EXECUTION_KINDS)[number];

export const EXECUTION_STATUSES = ['pending', 'running', 'success', 'failed', 'timed_out', 'canceled', 'paused'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export const TERMINAL_STATUSES = ['success', 'failed', 'timed_out', 'canceled'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
/** The statuses of a run that an engine is working on (it has an owner keeping its heartbeat). */
export const LIVE_STATUSES = ['pending', 'running'] as const;
export type LiveStatus = (typeof LIVE_STATUSES)[number];

export function isTerminal(status: ExecutionStatus): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export const TRIGGERS = ['api', 'api_sync', 'loadgen'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/**
 * How a run ended, recorded with it: `completed` (by itself: success, failure or its own timeout), `canceled`,
 * `paused`, `force_failed` (shutdown grace expired, or an unexpected engine error), `fallback_completed` (the
 * normal completion write failed; a second write without the output recorded the failure), `stale_swept`.
 */
export const FINALIZATION_PATHS = ['completed', 'fallback_completed', 'force_failed', 'canceled', 'paused', 'stale_swept'] as const;
export type FinalizationPath = (typeof FINALIZATION_PATHS)[number];

/** Why a run was stopped from outside its own work. */
export type StopReason = 'canceled' | 'timed_out' | 'shutdown' | 'stale';

/**
 * The one table from a stop reason to how the run ends: its status, finalization path and error code. The
 * engine's finalizer and the store's sweep both read it.
 */
export const STOP_ENDINGS = {
  canceled: { status: 'canceled', path: 'canceled', code: 'canceled' },
  timed_out: { status: 'timed_out', path: 'completed', code: 'timeout' },
  shutdown: { status: 'failed', path: 'force_failed', code: 'shutdown' },
  stale: { status: 'failed', path: 'stale_swept', code: 'stale' },
} as const satisfies Record<StopReason, { status: TerminalStatus; path: FinalizationPath; code: string }>;

/** How one task of a run ended (`paused` for a pause task). */
export const TASK_TYPES = ['tool', 'agent', 'pause'] as const;
export const TASK_OUTCOMES = ['success', 'failed', 'timed_out', 'canceled', 'paused'] as const;
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];

/**
 * Why a tool call failed (engine/runtime/outcome.ts classifies; its header gives the order): the call was
 * refused before its process started, for a bad definition or a process that could not be spawned (`start`)
 * or for an input that does not match the tool's input_schema (`input`); a pipe failed (`stdin`, `stdout`,
 * `stderr`); it exited without a result (`wait`); its output was not the protocol (`parse`); it ran out of
 * time (`timeout`); it wrote too much (`output_limit`); the tool reported its own error (`tool`); the call was
 * canceled, by its caller or by a shutdown (`canceled`); or none of those, a bug of the runtime (`unknown`).
 */
export const TOOL_ERROR_KINDS = ['start', 'input', 'stdin', 'stdout', 'stderr', 'wait', 'parse', 'timeout', 'output_limit', 'tool', 'canceled', 'unknown'] as const;
export type ToolErrorKind = (typeof TOOL_ERROR_KINDS)[number];
/**
 * The error code (and error.type) of a failed tool call, the same on its span, its task, its run and the
 * stored execution: `tool_<kind>`, except a tool's own error (`tool_error`) and a canceled call (`canceled`,
 * the stop's own code).
 */
export function toolFailureCode(kind: ToolErrorKind): string {
  if (kind === 'tool') return 'tool_error';
  if (kind === 'canceled') return STOP_ENDINGS.canceled.code;
  return `tool_${kind}`;
}
export const TOOL_OUTCOMES = ['success', 'error', 'timeout'] as const;
export type ToolOutcome = (typeof TOOL_OUTCOMES)[number];

/** How an agent run ended: a final answer, its iteration bound, a failing model call or tool call, a cancel (or timeout). */
export const AGENT_OUTCOMES = ['final_answer', 'iteration_limit', 'model_error', 'tool_error', 'canceled'] as const;
export type AgentOutcome = (typeof AGENT_OUTCOMES)[number];
