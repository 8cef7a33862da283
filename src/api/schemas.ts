/**
 * The HTTP API's shapes as zod schemas: what a request may hold (the routes validate with these) and what an
 * answer holds (presentExecution is typed by them). src/api/openapi.ts turns the same schemas into the
 * OpenAPI document, so the document cannot drift from what the routes accept.
 *
 * A bound that the operator configures (the longest sync wait) is a parameter: the engine validates with its
 * own, and the document it serves states that engine's bound.
 */
import { z } from 'zod';
import { EXECUTION_KINDS, EXECUTION_STATUSES, FINALIZATION_PATHS, TRIGGERS } from '../domain.ts';
import { ProblemError, problems } from './problem.ts';

/** A list page holds at most this many executions, and (with their data) at most this many bytes of JSON. */
export const MAX_LIST_LIMIT = 100;
export const MAX_LIST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_LIST_LIMIT = 50;
/** The longest id a parent execution reference may have (ids the engine makes are UUIDs). */
export const MAX_ID_LENGTH = 64;

export interface RequestBounds {
  /** The longest wait a sync start may ask for (`SWITCHYARD_SYNC_TIMEOUT_MAX_MS`). */
  readonly syncTimeoutMaxMs: number;
}

/** A query value of digits read as an integer; anything else is passed on as it came, for the schema to refuse. */
const queryDigits = (value: unknown) => (typeof value === 'string' && /^[0-9]{1,10}$/.test(value) ? Number(value) : value);

/** An integer in [min, max]; every way of missing that gets the same sentence, which says what to send. */
function boundedInteger(name: string, min: number, max: number) {
  const error = (issue: { input?: unknown }) => `${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(issue.input)?.slice(0, 40)})`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

const syncTimeoutMs = (bounds: RequestBounds) => boundedInteger('timeout_ms', 1, bounds.syncTimeoutMaxMs)
  .describe('How long a sync start waits for the run to finish, in milliseconds (default `SWITCHYARD_SYNC_TIMEOUT_MS`); the async start checks it and ignores it.');

const parentError = `parent_execution_id must be a string of 1 to ${MAX_ID_LENGTH} characters`;

/** The body of every start request. No body means `{}` (a JSON `null` is refused, like any body that is not an object). */
export function startBody(bounds: RequestBounds) {
  return z.strictObject({
    input: z.unknown().optional().describe('The run\'s input: a workflow checks it against its `input_schema` (see GET /api/v1/definitions); default `{}`.'),
    parent_execution_id: z.string({ error: parentError }).min(1, { error: parentError }).max(MAX_ID_LENGTH, { error: parentError }).nullable().optional().describe('An existing execution this run belongs to (422 when none has this id).'),
    timeout_ms: syncTimeoutMs(bounds).optional(),
  }, {
    error: (issue) => issue.code === 'unrecognized_keys'
      ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; expected input, parent_execution_id, timeout_ms`
      : 'the body must be a JSON object such as {"input": {...}}',
  });
}

/** `?timeout_ms=` of a sync start: digits only (`1.5`, `1e3`, `-5` and a repeated parameter are refused). */
export function syncQuery(bounds: RequestBounds) {
  return z.object({ timeout_ms: z.preprocess(queryDigits, syncTimeoutMs(bounds)).optional() });
}

const cursorError = 'cursor is not one this API returned as next_cursor';

export const listQuery = z.object({
  // `cancelled` is the old spelling (of the finalization path, once): accepted, and read as `canceled`.
  status: z.preprocess((value) => (value === 'cancelled' ? 'canceled' : value),
    z.enum(EXECUTION_STATUSES, { error: `status must be one of ${EXECUTION_STATUSES.join(', ')}` }))
    .optional().describe('Only executions with this status (the old spelling `cancelled` is read as `canceled`).'),
  limit: z.preprocess(queryDigits, boundedInteger('limit', 1, MAX_LIST_LIMIT)).default(DEFAULT_LIST_LIMIT)
    .describe(`At most this many executions (and, with \`include=io\`, at most ${MAX_LIST_BYTES} bytes of JSON).`),
  cursor: z.string({ error: cursorError }).regex(/^[A-Za-z0-9_-]+$/, { error: cursorError }).optional()
    .describe('The `next_cursor` of the previous page.'),
  include: z.literal('io', { error: 'include must be "io" (inputs and outputs in the list) or absent' }).optional()
    .describe('`io` adds each execution\'s input and output.'),
});

/**
 * Parses a request part with its schema; a mismatch is a 400 problem whose detail is each issue's sentence,
 * also listed one by one in `errors`.
 */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Each sentence names its field already.
  const messages = [...new Set(result.error.issues.map((issue) => issue.message))];
  throw new ProblemError(problems.badRequest(messages.join('; '), { errors: messages }));
}

const timestamp = z.iso.datetime();

export const ExecutionError = z.object({
  message: z.string(),
  code: z.string().describe('Short machine-readable kind: a tool error kind, `timeout`, `canceled`, `validation`, ...'),
  taskId: z.string().optional().describe('The task that failed, in a workflow.'),
});

const executionFields = {
  id: z.string(),
  kind: z.enum(EXECUTION_KINDS),
  target: z.string().describe('The workflow, task or agent id.'),
  status: z.enum(EXECUTION_STATUSES),
  trigger: z.enum(TRIGGERS),
  error: ExecutionError.nullable(),
  created_at: timestamp,
  started_at: timestamp.nullable(),
  ended_at: timestamp.nullable().describe('Null while the run is pending, running or paused.'),
  heartbeat_at: timestamp,
  duration_ms: z.int().nullable().describe('First start to end, pauses included.'),
  trace_id: z.string().nullable(),
  parent_execution_id: z.string().nullable(),
  caller_key_id: z.string().nullable().describe('The id (never the key) of the API key that started it; null without keys.'),
  diagnostics: z.object({
    last_started_task: z.string().nullable(),
    last_completed_task: z.string().nullable(),
    last_completed_success: z.boolean().nullable(),
    finalization_path: z.enum(FINALIZATION_PATHS).nullable(),
    previous_status: z.enum(EXECUTION_STATUSES).nullable().describe('The status the run had when it was last finalized.'),
    completion_failure: z.string().nullable(),
  }),
};

export const Execution = z.object({
  ...executionFields,
  input: z.unknown(),
  output: z.unknown(),
});

/** A list item: without input and output unless `include=io`; `data_omitted` when they were too big for a page. */
export const ExecutionListItem = z.object({
  ...executionFields,
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  data_omitted: z.literal(true).optional().describe('The execution\'s data is larger than a page: GET /api/v1/executions/{id} has it.'),
});

export const ExecutionList = z.object({
  executions: z.array(ExecutionListItem).describe('Newest first.'),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

export const Definitions = z.object({
  workflows: z.array(z.object({
    id: z.string(), description: z.string(), tasks: z.array(z.string()),
    input_schema: z.unknown().describe('The JSON Schema a start request\'s `input` must match; null when the workflow has none.'),
  })),
  tasks: z.array(z.object({ id: z.string(), description: z.string().nullable() })),
  agents: z.array(z.object({ id: z.string(), description: z.string(), provider: z.string(), tools: z.array(z.string()) })),
  tools: z.array(z.object({
    id: z.string(), description: z.string(), timeout_ms: z.int(),
    sandbox: z.object({ memory_mb: z.int().nullable(), processes: z.int().nullable(), network: z.boolean().nullable() })
      .describe('The tool\'s own `sandbox:` settings; null where the configured default applies.'),
  })),
  tool_sandbox: z.object({
    mode: z.enum(['enforce', 'off']),
    runs_tools: z.boolean().describe('False when this host cannot confine tools and the operator did not opt out: every tool call is refused.'),
    wrapper: z.string().nullable(),
    landlock_abi: z.int(),
    enforced: z.object({
      filesystem: z.boolean(), signals: z.boolean(), abstract_unix_sockets: z.boolean(), network: z.boolean(), memory: z.boolean(), processes: z.boolean(),
    }),
    problem: z.string().optional().describe('What is not enforced on this host, in words.'),
  }).nullable().describe('What the tool sandbox enforces on this host (README, Tool processes).'),
});

export const Health = z.object({ status: z.enum(['ok', 'ready']) });

/** RFC 9457 problem details: every error the API answers. */
export const Problem = z.looseObject({
  type: z.string().describe('urn:switchyard:problem:<slug>, stable'),
  title: z.string(),
  status: z.int().min(400).max(599),
  detail: z.string().describe('What went wrong and what to do about it.'),
  instance: z.string().optional().describe('The request\'s path and query.'),
  errors: z.array(z.string()).optional().describe('Each problem with the request or the input, where there are several.'),
});

/** A problem that carries the execution it is about: 409 (the run's state) and 408 (the run, still going). */
export const ExecutionProblem = Problem.extend({ execution: Execution });
