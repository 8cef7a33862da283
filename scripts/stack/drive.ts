/**
 * Traffic the stack tests drive besides the load generator: synchronous requests whose every outcome
 * is recorded (execution id, status, trace id), and the sample inputs they use.
 */
import type { EngineHandle } from './stack.ts';

export const TICKET = {
  email: 'ada@analytical.example',
  subject: 'Refund for a double charge',
  body: 'I was charged twice for my invoice, please refund',
};

export interface Outcome {
  readonly httpStatus: number;
  readonly id?: string;
  readonly status?: string;
  readonly traceId?: string;
  readonly error?: string;
}

export interface Request {
  readonly path: string;
  readonly body: unknown;
}

/** Healthy synchronous work: the sample workflows, alternating (tool subprocesses and in-process agents). */
export function healthySync(n: number): Request {
  return n % 3 === 2
    ? { path: '/api/v1/workflows/quick_answer/executions/sync', body: { input: { question: 'Do you have an API?' } } }
    : { path: '/api/v1/workflows/support_triage/executions/sync', body: { input: TICKET } };
}

export async function send(engine: EngineHandle, request: Request): Promise<Outcome> {
  try {
    const { status, body } = await engine.post(request.path, request.body);
    return { httpStatus: status, id: body?.id ?? body?.execution?.id, status: body?.status ?? body?.execution?.status, traceId: body?.trace_id ?? body?.execution?.trace_id };
  } catch (error) {
    return { httpStatus: 0, error: (error as Error).message };
  }
}

/**
 * Sends requests from `workers` concurrent loops until `keepGoing()` turns false; resolves with every
 * outcome. Each loop waits for its answer before the next request, so the rate follows the engine.
 */
export async function driveUntil(engine: EngineHandle, options: {
  readonly workers: number;
  readonly keepGoing: () => boolean;
  readonly request: (n: number) => Request;
  readonly pauseMs?: number;
}): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let n = 0;
  const loop = async () => {
    while (options.keepGoing()) {
      outcomes.push(await send(engine, options.request(n++)));
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: options.workers }, loop));
  return outcomes;
}
