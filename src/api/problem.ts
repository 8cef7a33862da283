import type { Response } from 'express';

/** An RFC 9457 problem: what went wrong, for whom it went wrong, and what to do about it. */
export interface Problem {
  readonly status: number;
  /** Short, stable slug: becomes the problem `type` (urn:switchyard:problem:<slug>). */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly [extension: string]: unknown;
}

export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail);
    this.problem = problem;
  }
}

export function sendProblem(res: Response, problem: Problem, instance: string): void {
  const { type, ...rest } = problem;
  res.status(problem.status).type('application/problem+json').json({ type: `urn:switchyard:problem:${type}`, ...rest, instance });
}

export const problems = {
  malformedJson: (detail: string): Problem => ({ status: 400, type: 'malformed-json', title: 'Request body is not valid JSON', detail }),
  badRequest: (detail: string, extra: Record<string, unknown> = {}): Problem => ({ status: 400, type: 'bad-request', title: 'Bad request', detail, ...extra }),
  unsupportedMediaType: (got: string | undefined): Problem => ({
    status: 415, type: 'unsupported-media-type', title: 'Unsupported media type',
    detail: `send the body as application/json (got ${got ? `"${got}"` : 'no content type'})`,
  }),
  tooLarge: (limit: string): Problem => ({ status: 413, type: 'body-too-large', title: 'Request body too large', detail: `the body exceeds the limit of ${limit}` }),
  unauthorized: (detail: string): Problem => ({ status: 401, type: 'unauthorized', title: 'Authentication required', detail }),
  forbidden: (detail: string): Problem => ({ status: 403, type: 'forbidden', title: 'Forbidden', detail }),
  notFound: (detail: string): Problem => ({ status: 404, type: 'not-found', title: 'Not found', detail }),
  invalidInput: (detail: string, errors: string[]): Problem => ({ status: 422, type: 'invalid-input', title: 'Input does not match the schema', detail, errors }),
  unknownParent: (detail: string): Problem => ({ status: 422, type: 'unknown-parent', title: 'The parent execution does not exist', detail }),
  conflict: (detail: string, extra: Record<string, unknown> = {}): Problem => ({ status: 409, type: 'conflict', title: 'Conflict with the execution state', detail, ...extra }),
  methodNotAllowed: (method: string, allowed: string[]): Problem => ({
    status: 405, type: 'method-not-allowed', title: 'Method not allowed', detail: `${method} is not supported here; use ${allowed.join(' or ')}`,
  }),
  syncTimeout: (detail: string, execution: unknown): Problem => ({ status: 408, type: 'sync-timeout', title: 'Execution did not finish in time', detail, execution }),
  tooManyExecutions: (detail: string, retryAfterSeconds: number): Problem => ({
    status: 429, type: 'too-many-executions', title: 'Too many executions in flight for this caller', detail, retry_after_seconds: retryAfterSeconds,
  }),
  unavailable: (detail: string): Problem => ({ status: 503, type: 'unavailable', title: 'Service unavailable', detail }),
  internal: (): Problem => ({ status: 500, type: 'internal', title: 'Internal error', detail: 'the engine failed to handle this request; the error is in its log with this request\'s trace id' }),
};
